//! The `_smtp._tls` TXT record stage (RFC 8460 §3).

use mtasts_net::dns::DnsError;
use mtasts_proto::Severity;
use mtasts_proto::tlsrpt::record;
use mtasts_proto::txt::{Selection, TxtRr};

use crate::finding::{Finding, Stage};
use crate::report::{TlsRptReport, TlsRptStatus};

const RULE: &str = "RFC 8460 §3";

/// Evaluates the answer for `_smtp._tls.<domain>`.
pub fn evaluate(
    domain: &str,
    answer: &Result<Vec<TxtRr>, DnsError>,
) -> (TlsRptReport, Vec<Finding>) {
    let name = mtasts_proto::tlsrpt::record_name(domain);
    let example = format!("{name} TXT \"v=TLSRPTv1; rua=mailto:tlsrpt@{domain}\"");
    let rrset = match answer {
        Ok(rrset) => rrset.as_slice(),
        Err(e) if e.is_not_found() => &[],
        Err(e) => {
            let report = TlsRptReport {
                status: TlsRptStatus::None,
                rua: Vec::new(),
                raw: Vec::new(),
            };
            let finding = Finding::new(
                Stage::TlsRpt,
                Severity::Warning,
                "tlsrpt-dns-error",
                format!(
                    "The TXT lookup of {name} failed temporarily ({e}); senders cannot find where to send TLS reports."
                ),
                format!("Make sure the name servers of {domain} answer TXT queries for {name}."),
                RULE,
            );
            return (report, vec![finding]);
        }
    };
    let diags = |d: &[mtasts_proto::Diagnostic]| -> Vec<Finding> {
        d.iter()
            .map(|d| Finding::from_diagnostic(Stage::TlsRpt, d, None))
            .collect()
    };
    match record::select(rrset) {
        Selection::Found {
            record,
            raw,
            diagnostics,
        } => {
            let report = TlsRptReport {
                status: TlsRptStatus::Valid,
                rua: record.rua.iter().map(|u| u.to_string()).collect(),
                raw: vec![raw],
            };
            (report, diags(&diagnostics))
        }
        Selection::Missing { diagnostics } => {
            let mut findings = vec![Finding::new(
                Stage::TlsRpt,
                Severity::Warning,
                "tlsrpt-record-missing",
                format!(
                    "No TLS-RPT record at {name}: senders cannot tell you when TLS to your MX hosts fails, so you cannot safely move from testing to enforce (RFC 8460 §3)."
                ),
                format!("Publish {example} (or an https: endpoint)."),
                RULE,
            )];
            findings.extend(diags(&diagnostics));
            (
                TlsRptReport {
                    status: TlsRptStatus::None,
                    rua: Vec::new(),
                    raw: Vec::new(),
                },
                findings,
            )
        }
        Selection::Multiple { raws, diagnostics } => {
            let mut findings = vec![Finding::new(
                Stage::TlsRpt,
                Severity::Warning,
                "tlsrpt-record-multiple",
                format!(
                    "{} TXT records at {name} start with v=TLSRPTv1; with more than one, senders send no reports (RFC 8460 §3).",
                    raws.len()
                ),
                "Merge them into one record; one rua= field may list several URIs separated by commas.",
                RULE,
            )];
            findings.extend(diags(&diagnostics));
            (
                TlsRptReport {
                    status: TlsRptStatus::Invalid,
                    rua: Vec::new(),
                    raw: raws,
                },
                findings,
            )
        }
        Selection::Invalid {
            raw,
            error,
            diagnostics,
        } => {
            let mut findings = vec![Finding::new(
                Stage::TlsRpt,
                Severity::Warning,
                "tlsrpt-record-invalid",
                format!(
                    "The TLS-RPT record {raw:?} at {name} is invalid: {error}. Senders send no reports ({RULE})."
                ),
                format!(
                    "Publish {example}: rua= takes mailto: or https: URIs separated by commas."
                ),
                RULE,
            )];
            findings.extend(diags(&diagnostics));
            (
                TlsRptReport {
                    status: TlsRptStatus::Invalid,
                    rua: Vec::new(),
                    raw: vec![raw],
                },
                findings,
            )
        }
    }
}
