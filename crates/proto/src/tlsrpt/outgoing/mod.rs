//! The sending side of RFC 8460: turning one UTC day's aggregated results for one (recipient
//! domain, TLSRPT record) into the report JSON ([`build_report`]), naming it ([`report_id`],
//! [`file_name`]) and wrapping it in the §5.3 mail ([`compose_mail`], signed by the caller
//! over [`SIGNED_HEADERS`]).
//!
//! Every report built here parses back with [`super::report::TlsReport::parse`] without a
//! note, with the RFC's JSON names (C119–C126 are readers' quirks, never ours).

mod build;
mod mail;
mod name;

pub use build::{
    AggregatedPolicy, BuildError, BuiltReport, DEFAULT_MAX_REPORT_BYTES, ReportMeta, build_report,
};
pub use mail::{ReportMail, SIGNED_HEADERS, compose_mail};
pub use name::{file_name, report_id, submitter};

#[cfg(test)]
mod tests;
