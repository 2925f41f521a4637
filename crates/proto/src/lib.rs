//! The protocol core of mtasts: RFC 8461 (MTA-STS) and RFC 8460 (SMTP TLS Reporting).
//!
//! This crate parses, serializes and decides. It does no I/O: no sockets, files, clock or
//! environment. Callers hand it bytes or text (and, where time matters, an explicit `now`)
//! and get values, decisions and [`Diagnostic`]s back.
//!
//! * [`sts::record`] — the `_mta-sts` TXT record and the exactly-one-record discovery rule (§3.1).
//! * [`sts::policy`] — the policy file: strict parsing with line-level diagnostics, serialization (§3.2).
//! * [`sts::mx_pattern`] — `mx` patterns and MX host matching (§4.1).
//! * [`tlsrpt::record`] — the `_smtp._tls` TXT record (RFC 8460 §3).
//! * [`tlsrpt::report`] — TLS report JSON (RFC 8460 §4) read into typed values, with notes for what was repaired.
//! * [`tlsrpt::session`] — one delivery request's TLS results as an MTA reports them (JSON over
//!   HTTP), with the canonical policy and failure keys reports are aggregated by.
//! * [`tlsrpt::datagram`] — libtlsrpt's datagrams (what Postfix 3.10+ sends a TLS-RPT collector).
//! * [`tlsrpt::outgoing`] — the RFC 8460 report a sender builds, its names and its §5.3 mail.
//!
//! Every text that is published is written here and nowhere else: the record texts
//! ([`sts::record::record_text`], [`tlsrpt::record::record_text`]), the policy file (`Display`
//! of [`sts::policy::Policy`]), the names (`_mta-sts.<d>`, `mta-sts.<d>`, `_smtp._tls.<d>`), and
//! the size limit senders apply ([`sts::POLICY_MAX_BYTES`]); `mtasts generate`, `mtasts serve`
//! and the stores use them.
//! * [`result_type`] — the RFC 8460 §4.3 result types a sender reports.
//! * [`sts::cache`] — policy cache decisions: use, fetch, back off (§3.3, §5.1).
//! * [`socketmap`] — Postfix socketmap framing, requests, keys and replies.
//! * [`postfix`] — Postfix TLS policy table answers (levels, the MTA-STS answer).
//! * [`domain`] — policy domain normalisation (lowercase A-labels, no trailing dot).
//! * [`txt`] — what both TXT records share: the RRset type, [`txt::Selection`], errors.
//! * [`hosted`] — the hosted-policy service: delegation names, versions, removal, renewal.
//! * [`dmarc`] — DMARC aggregate report XML (RFC 7489 Appendix C, RFC 9990), read streaming.
//! * [`readiness`] — whether a domain is ready to enforce: verdicts from stored TLS-RPT and DMARC
//!   counts; summary dates and numbers.
//! * [`rollup`] — a report's counts spread over the UTC days of its date range.
//! * [`bytesize`] — byte counts as written on the command line (`64MiB`).
//! * [`imap_url`] — IMAP mailbox URLs for report intake.
//! * [`json`] — JSON read strictly: a member name repeated in one object is an error.
//! * [`alerts`] — the hosting service's alerts: rules, suppression, notices, webhook signatures.
//! * [`forwarded`] — `Forwarded` (RFC 7239) and `X-Forwarded-For`: the client behind trusted proxies.
//!
//! # Readings of ambiguous rules
//!
//! Where the RFCs, their errata and real senders disagree, this crate takes one reading (the
//! "compliant sender" answer in `policy`/`record`) and reports the divergence as a
//! [`Diagnostic`], so the checker can show both:
//!
//! * `v=STSv1 ;` / `v=TLSRPTv1 ;` (WSP before `;`, EID 6285, C13, C117): counted as a candidate
//!   record and accepted when it is the only one; info `record-space-before-semicolon` (the
//!   grammar allows it, so it must not lower a checker verdict; the note says who diverges).
//! * Trailing WSP without `;` in a record (C15): accepted; warning `record-trailing-whitespace`
//!   (mox rejects). A bare `v=STSv1` is a candidate that is invalid ([`txt::RecordError::NoFields`]).
//! * TXT records at the name that do not start with the version (8461 §3.1, 8460 §3): discarded,
//!   as senders discard them, with an info (`record-unrelated-txt`, `record-version-case`, …).
//! * Syntactically invalid extensions in records and policies (C21, C67, C115): the whole
//!   record or policy is invalid (strict, as mox); an info notes that lenient senders skip it.
//! * Repeated fields: first wins for `id` and for every policy key but `mx` (C20, C58), with a
//!   info naming both readings (the RFC tells senders to ignore the repeats, so the checker's
//!   verdict does not drop); every occurrence must still be valid. Several `rua=` fields are
//!   merged (C114), with an info. `mx` lines accumulate (C59).
//! * Policy blank lines, including a trailing blank line and whitespace-only lines (C51):
//!   skipped; warning `policy-blank-line` (mox and maddy reject).
//! * `max_age` (C62): `1*10DIGIT` read without a general integer parser, then values above
//!   31557600 are rejected (error `policy-max-age-above-cap`), not clamped.
//! * `mx` values that look like IPv4 addresses (C65) are valid patterns that never match a
//!   host name; warning `policy-mx-ip-address`. `*.com`-style wildcards (C66): warning.
//! * A UTF-8 BOM (C42) makes the policy invalid (error `policy-bom`); the rest is still read
//!   so every other problem is reported too. Bare CR (C49) likewise.
//! * Surrounding spaces of an extension value belong to the `:` delimiter and the allowed
//!   trailing WSP (8461 §3.2 ABNF), so `ext:  a b  ` is valid with value `a b`; a TAB inside
//!   the value is not.
//!
//! The sender side (Postfix socketmap daemon) takes these readings:
//!
//! * A bracketed socketmap key `[relay.example.net]:587` is looked up as `relay.example.net`
//!   (the smart-host reading of 8461 §3.4, as postfix-mta-sts-resolver does); address
//!   literals, the `.parent` probe and malformed keys get no policy ([`socketmap::classify_key`]).
//! * `mx` patterns that look like IP addresses (C65) are left out of Postfix answers. When none
//!   is left, [`postfix::sts_answer`] returns `None` and [`postfix::render_sts`] answers
//!   `secure match=nexthop` rather than an empty `match=` (postfix-tlspol #95).
//! * Policy lines that cannot sit inside `{ policy_string = … }` are left out of the answer,
//!   and all of them are left out when the answer would exceed the socketmap reply limit.
//! * A fetch failure blocks further fetches for the domain for 5 minutes whatever the id
//!   ([`sts::cache::next_step`], C44), and a `max_age: 0` policy is never served from cache.
//!
//! ```
//! use mtasts_proto::sts::policy::{Mode, Policy};
//! let policy = Policy::parse("version: STSv1\nmode: enforce\nmx: *.mx.example.com\nmax_age: 86400\n").unwrap();
//! assert_eq!(policy.mode, Mode::Enforce);
//! assert!(policy.mx[0].matches("a.mx.example.com"));
//! ```

pub mod alerts;
pub mod bytesize;
mod calendar;
pub mod diagnostic;
pub mod dmarc;
pub mod domain;
pub mod forwarded;
pub mod hex;
pub mod hosted;
pub mod imap_url;
pub mod json;
pub mod postfix;
pub mod readiness;
pub mod result_type;
pub mod rollup;
pub mod smtp_server;
pub mod socketmap;
pub mod sts;
pub mod tlsrpt;
pub mod txt;

pub use diagnostic::{Diagnostic, Severity};
pub use result_type::ResultType;
