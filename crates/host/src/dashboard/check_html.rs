//! The "What the checker sees" card of a domain's page: the verdict and the errors and
//! warnings of the node's last check of the domain, grouped the way owners work on them
//! (MTA-STS and TLS reporting, DMARC), each with its fix.

use std::fmt::Write;

use mtasts_check::report::Verdict;
use mtasts_proto::Severity;

use super::html::escape;
use crate::verification::{CheckFinding, CheckSummary};

/// The group a finding's check stage belongs to on the page.
fn group(finding: &CheckFinding) -> &'static str {
    match finding.stage.as_deref() {
        Some("dmarc") => "DMARC",
        _ => "MTA-STS and TLS reporting",
    }
}

const GROUPS: [&str; 2] = ["MTA-STS and TLS reporting", "DMARC"];

/// The card, or an empty string when the domain has not been checked yet.
pub(crate) fn card(check: Option<&CheckSummary>) -> String {
    let Some(check) = check else {
        return String::new();
    };
    let (class, verdict) = match check.verdict {
        Verdict::Pass => ("ok", "pass"),
        Verdict::Warn => ("warn", "warn"),
        Verdict::Fail => ("bad", "fail"),
    };
    let mut body = String::new();
    for name in GROUPS {
        let findings: Vec<&CheckFinding> =
            check.findings.iter().filter(|f| group(f) == name).collect();
        let _ = write!(body, "<h3>{}</h3>", escape(name));
        if findings.is_empty() {
            body.push_str(r#"<p class="muted">No errors or warnings.</p>"#);
            continue;
        }
        body.push_str("<ul class=\"findings\">");
        for f in findings {
            let severity = match f.severity {
                Severity::Error => r#"<span class="badge bad">error</span>"#,
                _ => r#"<span class="badge warn">warning</span>"#,
            };
            let _ = write!(
                body,
                r#"<li>{severity} <code>{code}</code> {message}<div class="fix">Fix: {fix}</div></li>"#,
                code = escape(&f.code),
                message = escape(&f.message),
                fix = escape(&f.fix),
            );
        }
        body.push_str("</ul>");
    }
    format!(
        r#"<section class="card checker"><h2>What the checker sees <span class="badge {class}">{verdict}</span></h2>
{body}</section>
"#
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn finding(stage: Option<&str>, code: &str) -> CheckFinding {
        CheckFinding {
            severity: Severity::Warning,
            code: code.to_owned(),
            message: format!("{code} <message>"),
            fix: "do \"this\"".to_owned(),
            stage: stage.map(str::to_owned),
        }
    }

    #[test]
    fn dmarc_findings_are_shown_next_to_the_mta_sts_ones() {
        let check = CheckSummary {
            verdict: Verdict::Warn,
            findings: vec![
                finding(Some("tls-rpt"), "tlsrpt-record-missing"),
                finding(Some("dmarc"), "dmarc-policy-none"),
                // Stored before findings carried their stage.
                finding(None, "policy-mode-testing"),
            ],
        };
        let html = card(Some(&check));
        let mta_sts = html.find("MTA-STS and TLS reporting").unwrap();
        let dmarc = html.find("<h3>DMARC</h3>").unwrap();
        let tlsrpt = html.find("tlsrpt-record-missing").unwrap();
        let testing = html.find("policy-mode-testing").unwrap();
        let none = html.find("dmarc-policy-none").unwrap();
        assert!(mta_sts < tlsrpt && tlsrpt < dmarc && testing < dmarc && dmarc < none);
        assert!(html.contains("&lt;message&gt;"));
        assert!(html.contains("badge warn\">warn"));
        assert!(card(None).is_empty());
        let clean = card(Some(&CheckSummary {
            verdict: Verdict::Pass,
            findings: vec![],
        }));
        assert_eq!(clean.matches("No errors or warnings.").count(), 2);
    }
}
