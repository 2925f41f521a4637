//! The SPF stage (RFC 7208): DNS answers into the [`SpfWalk`] and its outcome into the `spf`
//! section and findings.

use mtasts_net::dns::DnsError;
use mtasts_proto::spf::{Answer, DnsFailure, SpfOutcome};
use mtasts_proto::txt::TxtRr;

use crate::finding::{Finding, Stage};
use crate::report::SpfReport;

/// How the walk sees a DNS error: no records, or a temporary failure.
pub fn failure(e: &DnsError) -> DnsFailure {
    if e.is_not_found() {
        DnsFailure::NotFound
    } else {
        DnsFailure::Temporary(e.to_string())
    }
}

/// A TXT answer for the walk.
pub fn txt_answer(answer: Result<Vec<TxtRr>, DnsError>) -> Answer {
    Answer::Txt(answer.map_err(|e| failure(&e)))
}

/// The `spf` section and the findings of a finished walk.
pub fn report(outcome: SpfOutcome) -> (SpfReport, Vec<Finding>) {
    let findings = outcome
        .diagnostics
        .iter()
        .map(|d| Finding::from_diagnostic(Stage::Spf, d, None))
        .collect();
    let report = SpfReport {
        status: outcome.status,
        record: outcome.record,
        dns_lookups: outcome.dns_lookups,
        dns_lookup_limit: mtasts_proto::spf::walk::MAX_DNS_LOOKUPS,
        void_lookups: outcome.void_lookups,
        void_lookup_limit: mtasts_proto::spf::walk::MAX_VOID_LOOKUPS,
        tree: outcome.tree,
    };
    (report, findings)
}
