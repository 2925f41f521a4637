//! Alerts end to end: a real TLS report (the RFC 8460 example) stored through the report
//! intake for a hosted domain, the evaluator over the real databases, notifications to a real
//! HTTP receiver on loopback (signature checked with aws-lc-rs and with `openssl dgst`) and
//! to a real SMTP listener (testkit), retries after a 500, no resend, tenant isolation,
//! refused private targets, and the dashboard and API listing.

mod delivery;
pub(crate) mod harness;
mod pages;
pub(crate) mod serve;
