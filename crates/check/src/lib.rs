//! The mtasts checker engine.
//!
//! [`Checker::check`] diagnoses one domain the way a sender honouring MTA-STS sees it: the MX
//! records, the `_mta-sts` record, the policy fetch and its certificate, the policy syntax, MX
//! coverage, STARTTLS, TLS version and certificate of every MX address, the TLS-RPT record and
//! DANE presence, and the mail authentication records: SPF with its evaluation tree and the
//! DKIM keys of the selectors asked for. The result is a [`DomainReport`], the `--json` contract of
//! `shared/spec/check-output.md`: a list of [`Finding`]s, each with what is wrong, the fix, the
//! RFC rule and the RFC 8460 result type a sender would log.
//!
//! The engine observes through the `mtasts-net` traits and decides through `mtasts-proto`;
//! the mapping from observations to findings lives in [`stages`] as pure functions. How a report
//! is printed is the caller's business.

mod engine;
pub mod finding;
pub mod only;
pub mod report;
pub mod report_dmarc;
pub mod stages;

pub use engine::{CheckOptions, Checker};
pub use finding::{Finding, Stage};
pub use only::StageSet;
pub use report::{DomainReport, Verdict};
