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
//! * [`result_type`] — the RFC 8460 §4.3 result types a sender reports.
//! * [`domain`] — policy domain normalisation (lowercase A-labels, no trailing dot).
//!
//! ```
//! use mtasts_proto::sts::policy::{Mode, Policy};
//! let policy = Policy::parse("version: STSv1\nmode: enforce\nmx: *.mx.example.com\nmax_age: 86400\n").unwrap();
//! assert_eq!(policy.mode, Mode::Enforce);
//! assert!(policy.mx[0].matches("a.mx.example.com"));
//! ```

pub mod diagnostic;
pub mod domain;
pub mod result_type;
pub mod sts;
pub mod tlsrpt;
pub mod txt;

pub use diagnostic::{Diagnostic, Severity};
pub use result_type::ResultType;
