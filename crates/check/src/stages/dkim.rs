//! The DKIM key stage (RFC 6376 §3.6): the answer for `<selector>._domainkey.<domain>` into one
//! entry of the `dkim` section and its findings.

use mtasts_net::dns::DnsError;
use mtasts_proto::Severity;
use mtasts_proto::dkim::{self, KeyStatus};
use mtasts_proto::txt::TxtRr;

use crate::finding::{Finding, Stage};
use crate::report::DkimKeyReport;

/// Evaluates one selector's key record.
pub fn evaluate(
    selector: &str,
    domain: &str,
    answer: &Result<Vec<TxtRr>, DnsError>,
) -> (DkimKeyReport, Vec<Finding>) {
    let name = dkim::key_name(selector, domain);
    let rrset = match answer {
        Ok(rrset) => rrset.as_slice(),
        Err(e) if e.is_not_found() => &[],
        Err(e) => {
            let finding = Finding::new(
                Stage::Dkim,
                Severity::Error,
                "dkim-dns-error",
                format!(
                    "The TXT lookup of {name} failed temporarily ({e}); verifiers cannot check signatures with selector {selector:?} and treat them as temporarily unverifiable (RFC 6376 §6.1.2)."
                ),
                format!("Make sure the name servers of {domain} answer TXT queries for {name}."),
                "RFC 6376 §6.1.2",
            );
            let report = DkimKeyReport {
                selector: selector.to_owned(),
                name,
                status: KeyStatus::TempError,
                raw: None,
                key_type: None,
                bits: None,
                testing: false,
            };
            return (report, vec![finding]);
        }
    };
    let outcome = dkim::evaluate(selector, domain, rrset);
    let findings = outcome
        .diagnostics
        .iter()
        .map(|d| Finding::from_diagnostic(Stage::Dkim, d, None))
        .collect();
    let key = outcome.key.as_ref();
    let report = DkimKeyReport {
        selector: selector.to_owned(),
        name,
        status: outcome.status,
        raw: outcome.raw,
        key_type: key.map(|k| k.key_type.clone()),
        bits: key.and_then(|k| k.bits),
        testing: key.is_some_and(|k| k.testing),
    };
    (report, findings)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dns_errors_map_to_missing_or_temp_error() {
        let (report, findings) = evaluate("s1", "example.com", &Err(DnsError::NxDomain));
        assert_eq!(report.status, KeyStatus::Missing);
        assert_eq!(findings[0].code, "dkim-key-missing");
        assert_eq!(findings[0].stage, Stage::Dkim);
        let (report, findings) = evaluate("s1", "example.com", &Err(DnsError::Timeout));
        assert_eq!(report.status, KeyStatus::TempError);
        assert_eq!(findings[0].code, "dkim-dns-error");
        assert_eq!(findings[0].severity, Severity::Error);
        let (report, findings) = evaluate(
            "s1",
            "example.com",
            &Ok(vec![TxtRr::single("v=DKIM1; k=rsa; p=")]),
        );
        assert_eq!(report.status, KeyStatus::Revoked);
        assert_eq!(report.name, "s1._domainkey.example.com");
        assert_eq!(findings[0].code, "dkim-key-revoked");
    }
}
