//! Per-address SMTP, STARTTLS and certificate findings (RFC 8461 §4.2, §5, §7).

use mtasts_net::cert::CertProblem;
use mtasts_net::dns::DnsError;
use mtasts_net::smtp::{ProbeError, ProbeReport};
use mtasts_proto::ResultType;
use mtasts_proto::Severity;

use super::Enforcement;
use super::policy::certificate_report;
use crate::finding::{Finding, Stage};
use crate::report::AddressReport;

const RULE: &str = "RFC 8461 §4.2";

/// The finding for an MX host without any address.
pub fn no_address(host: &str, error: &DnsError) -> Finding {
    Finding::new(
        Stage::MxTls,
        Severity::Warning,
        "mx-unreachable",
        format!("MX host {host} has no usable address ({error}); senders skip it."),
        format!("Publish A and/or AAAA records for {host}, or remove the MX record."),
        "RFC 5321 §5.1",
    )
    .with_host(host)
}

/// The report entry and findings for one probed address.
pub fn evaluate(probe: &ProbeReport, enforcement: Enforcement) -> (AddressReport, Vec<Finding>) {
    let host = &probe.host;
    let at = format!("{host} [{}]", probe.ip);
    let severity = enforcement.tls_failure_severity();
    let consequence = enforcement.consequence();
    let mut findings = Vec::new();
    let problem = probe.tls.as_ref().and_then(|t| t.validation.as_ref().err());
    match &probe.error {
        None => {}
        Some(error @ (ProbeError::StarttlsNotOffered | ProbeError::StarttlsRefused(_))) => findings.push(
            Finding::new(
                Stage::MxTls,
                severity,
                "mx-starttls-missing",
                format!("{at}: {error}; {consequence} (RFC 8461 §5)."),
                format!("Enable STARTTLS on {host} with a certificate for {host} from a public CA."),
                "RFC 8461 §5",
            )
            .with_result(ResultType::StarttlsNotSupported),
        ),
        Some(ProbeError::LegacyTls(version)) => findings.push(
            Finding::new(
                Stage::MxTls,
                severity,
                "mx-tls-version",
                format!("{at} negotiates only {version}; MTA-STS requires TLS 1.2 or later, so {consequence} (RFC 8461 §7.2)."),
                format!("Enable TLS 1.2 and 1.3 on {host} (and disable TLS 1.0/1.1)."),
                "RFC 8461 §7.2",
            )
            .with_result(ResultType::ValidationFailure),
        ),
        Some(error @ ProbeError::Handshake(_)) => findings.push(
            Finding::new(
                Stage::MxTls,
                severity,
                "mx-tls-handshake-failed",
                format!("{at}: {error}; {consequence}."),
                format!("Check the TLS configuration of {host}: TLS 1.2 or 1.3, a certificate for {host}, common cipher suites."),
                "RFC 8461 §7.2",
            )
            .with_result(ResultType::ValidationFailure),
        ),
        Some(error) => findings.push(Finding::new(
            Stage::MxTls,
            Severity::Warning,
            "mx-unreachable",
            format!("{at}: {error}. Senders try the next MX or retry later."),
            format!("Make sure {host} accepts SMTP connections on port 25 from the internet and greets with 220."),
            "RFC 5321 §3.1",
        )),
    }
    if let Some(problem) = problem {
        let (code, fix) = match problem {
            CertProblem::Expired | CertProblem::NotYetValid => (
                "mx-certificate-expired",
                format!("Renew the certificate of {host} and automate renewal."),
            ),
            CertProblem::NameMismatch { .. } => (
                "mx-certificate-name-mismatch",
                format!(
                    "Serve a certificate whose subjectAltName includes {host} (the MX host name, not the mail domain)."
                ),
            ),
            _ => (
                "mx-certificate-untrusted",
                format!(
                    "Serve a certificate for {host} from a publicly trusted CA, including the intermediate certificates."
                ),
            ),
        };
        let names = probe
            .tls
            .as_ref()
            .and_then(|t| t.certificate.as_ref())
            .map(|c| c.dns_names.join(", "))
            .filter(|n| !n.is_empty())
            .map(|n| format!(" (it names {n})"))
            .unwrap_or_default();
        findings.push(
            Finding::new(
                Stage::MxTls,
                severity,
                code,
                format!("{at}: {problem}{names}; {consequence} ({RULE})."),
                fix,
                RULE,
            )
            .with_result(problem.mx_result_type()),
        );
    }
    for f in &mut findings {
        f.host = Some(host.clone());
    }
    let report = AddressReport {
        ip: probe.ip,
        starttls: probe.starttls_offered,
        tls_version: probe.tls.as_ref().map(|t| t.version.clone()),
        cipher: probe.tls.as_ref().and_then(|t| t.cipher.clone()),
        certificate: probe
            .tls
            .as_ref()
            .and_then(|t| certificate_report(t.certificate.as_ref(), problem)),
        error: probe.error.as_ref().map(|e| e.to_string()),
    };
    (report, findings)
}
