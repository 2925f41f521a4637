//! A loopback internet for tests.
//!
//! [`TestNet`] starts an authoritative DNS server (hickory-server), a test CA (rcgen), HTTPS
//! policy hosts and SMTP MX hosts on loopback addresses, each with configurable faults. Code
//! under test reaches them over their real protocols; only the DNS server address, the trust
//! roots and (test-only) the HTTPS and SMTP ports differ from the real internet.
//!
//! Every `TestNet` lives in its own randomly chosen `127.X.Y.0/24` block, so tests can run in
//! parallel, and binds nothing outside 127.0.0.0/8.
//!
//! [`proxy`] is a TCP relay a test can cut and restore, to take a real server (PostgreSQL,
//! Redis) away from the code under test and give it back.
//!
//! [`pebble`] runs a private Pebble, Let's Encrypt's ACME test CA, resolving through a
//! `TestNet`'s DNS server (needs Debian's `pebble` package).
//!
//! [`dovecot`] runs a private Dovecot IMAP server on loopback (Debian's `dovecot-imapd`) for the
//! report intake tests.
//!
//! [`services`] is the one rule for a test whose optional service (PostgreSQL, Redis, Pebble,
//! Chromium, Postfix, Dovecot, `dig`, `curl`) is missing: skip with a line naming it, or fail under
//! `MTASTS_REQUIRE_SERVICES=1`; and the unique names that keep tests on a shared server apart.
//!
//! [`postfix`] runs a private, real Postfix instance that delivers into a `TestNet` (end-to-end
//! tests of the policy daemon); it needs root and Debian's `postfix` package.
//!
//! [`libtlsrpt`] writes and sends TLS-RPT datagrams byte for byte as sys4's libtlsrpt (what
//! Postfix 3.10+ sends a TLS-RPT collector).

pub mod ca;
pub mod dns;
pub mod dovecot;
pub mod https;
pub mod libtlsrpt;
pub mod pebble;
pub mod postfix;
pub mod postfix_smtpd;
pub mod proxy;
pub mod services;
pub mod smtp;
mod world;

pub use ca::{CertSpec, ServerCert, TestCa};
pub use dns::{Fault, Zone};
pub use https::{BodyFraming, PolicyHostSpec, PolicyResponse, RecordedRequest, TlsVersions};
pub use pebble::{Pebble, PebbleOptions};
pub use world::{Ports, TestNet, free_port, random_loopback, random_u64};
