//! The SPF stage (RFC 7208): DNS answers into the [`SpfWalk`](mtasts_proto::spf::SpfWalk) and its outcome into the `spf`
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

#[cfg(test)]
mod tests {
    use super::*;
    use mtasts_proto::spf::{SpfStatus, SpfWalk, Step};

    #[test]
    fn dns_errors_map_to_void_or_temporary() {
        assert_eq!(failure(&DnsError::NxDomain), DnsFailure::NotFound);
        assert_eq!(failure(&DnsError::NoData), DnsFailure::NotFound);
        assert!(matches!(
            failure(&DnsError::ServerFailure("SERVFAIL".into())),
            DnsFailure::Temporary(m) if m.contains("SERVFAIL")
        ));
        assert!(matches!(
            failure(&DnsError::Timeout),
            DnsFailure::Temporary(_)
        ));
    }

    #[test]
    fn report_carries_limits_and_findings() {
        let mut walk = SpfWalk::new("example.com");
        assert!(matches!(walk.step(), Step::Query(_)));
        walk.answer(txt_answer(Ok(vec![TxtRr::single("v=spf1 ?all")])));
        assert_eq!(walk.step(), Step::Done);
        let (report, findings) = report(walk.finish());
        assert_eq!(report.status, SpfStatus::Valid);
        assert_eq!((report.dns_lookup_limit, report.void_lookup_limit), (10, 2));
        assert_eq!(findings[0].code, "spf-all-neutral");
        assert_eq!(findings[0].stage, Stage::Spf);
    }
}
