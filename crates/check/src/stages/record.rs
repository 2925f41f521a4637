//! The `_mta-sts` TXT record stage (RFC 8461 §3.1).

use mtasts_net::dns::DnsError;
use mtasts_proto::Severity;
use mtasts_proto::sts::record::{self, StsRecord};
use mtasts_proto::txt::{Selection, TxtRr};

use crate::finding::{Finding, Stage};
use crate::report::PolicyStatus;

const RULE: &str = "RFC 8461 §3.1";

/// What the record stage decided.
#[derive(Clone, Debug)]
pub struct RecordOutcome {
    /// The usable record and its text; `None` means a sender sees no policy.
    pub record: Option<(StsRecord, String)>,
    /// The policy status when there is no usable record (`none` or `temp-error`).
    pub status: Option<PolicyStatus>,
    /// Findings.
    pub findings: Vec<Finding>,
}

/// Applies the discovery rule to the answer for `_mta-sts.<domain>`.
pub fn evaluate(domain: &str, answer: &Result<Vec<TxtRr>, DnsError>) -> RecordOutcome {
    let name = mtasts_proto::sts::record_name(domain);
    let rrset = match answer {
        Ok(rrset) => rrset.as_slice(),
        Err(e) if e.is_not_found() => &[],
        Err(e) => {
            return RecordOutcome {
                record: None,
                status: Some(PolicyStatus::TempError),
                findings: vec![Finding::new(
                    Stage::StsRecord,
                    Severity::Error,
                    "sts-dns-error",
                    format!(
                        "The TXT lookup of {name} failed temporarily ({e}). A sender cannot tell whether a policy exists; it keeps using a cached policy, and without one delivers as if there were none (RFC 8461 §3.1, §5.1)."
                    ),
                    format!(
                        "Make sure every authoritative name server of {domain} answers TXT queries for {name} (NXDOMAIN or an answer, never SERVFAIL or a timeout); check DNSSEC signatures if the zone is signed."
                    ),
                    RULE,
                )],
            };
        }
    };
    // Each arm yields the record (if usable), the finding explaining why not, and the
    // selection's own notes.
    let (record, problem, diagnostics) = match record::select(rrset) {
        Selection::Found { record, raw, diagnostics } => (Some((record, raw)), None, diagnostics),
        Selection::Missing { diagnostics } => (
            None,
            Some((
                "sts-record-missing",
                format!("No TXT record starting with \"v=STSv1\" at {name}: senders see no MTA-STS policy and deliver with opportunistic TLS only (RFC 8461 §3.1)."),
                format!("Publish {name} TXT \"v=STSv1; id=<1-32 letters or digits>\" (`mtasts generate {domain}` prints one), after the policy file is served at {}.", mtasts_proto::sts::policy_url(domain)),
            )),
            diagnostics,
        ),
        Selection::Multiple { raws, diagnostics } => (
            None,
            Some((
                "sts-record-multiple",
                format!("{} TXT records at {name} start with \"v=STSv1\" ({}); with more than one, senders treat the domain as having no policy (RFC 8461 §3.1).", raws.len(), raws.iter().map(|r| format!("{r:?}")).collect::<Vec<_>>().join(", ")),
                "Keep exactly one v=STSv1 record: delete the old one when you change the id.".to_owned(),
            )),
            diagnostics,
        ),
        Selection::Invalid { raw, error, diagnostics } => (
            None,
            Some((
                "sts-record-invalid",
                format!("The record {raw:?} at {name} is invalid: {error}. Senders treat the domain as having no policy ({}).", error.rule()),
                "Publish exactly `v=STSv1; id=<id>;` where the id is 1 to 32 letters and digits (for example a timestamp like 20261122T153000 written as 20261122153000), with no other characters.".to_owned(),
            )),
            diagnostics,
        ),
    };
    let mut findings: Vec<Finding> = problem
        .into_iter()
        .map(|(code, message, fix)| {
            Finding::new(Stage::StsRecord, Severity::Error, code, message, fix, RULE)
        })
        .collect();
    findings.extend(
        diagnostics
            .iter()
            .map(|d| Finding::from_diagnostic(Stage::StsRecord, d, None)),
    );
    let status = record.is_none().then_some(PolicyStatus::None);
    RecordOutcome {
        record,
        status,
        findings,
    }
}
