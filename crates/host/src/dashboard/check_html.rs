//! The "What the checker sees" card of a domain's page: the verdict and the errors and
//! warnings of the node's last check of the domain, grouped the way owners work on them
//! (MTA-STS and TLS reporting; DMARC, SPF and DKIM), each with its fix, and the DKIM
//! selectors whose keys were checked.

use std::fmt::Write;

use mtasts_check::report::Verdict;
use mtasts_proto::Severity;

use super::html::escape;
use crate::verification::{CheckFinding, CheckSummary};

/// The group a finding's check stage belongs to on the page.
fn group(finding: &CheckFinding) -> &'static str {
    match finding.stage.as_deref() {
        Some("dmarc" | "spf" | "dkim") => MAIL_AUTHENTICATION,
        _ => "MTA-STS and TLS reporting",
    }
}

const MAIL_AUTHENTICATION: &str = "DMARC, SPF and DKIM";
const GROUPS: [&str; 2] = ["MTA-STS and TLS reporting", MAIL_AUTHENTICATION];

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
        } else {
            findings_list(&mut body, &findings);
        }
        if name == MAIL_AUTHENTICATION {
            body.push_str(&selectors_line(&check.dkim_selectors));
        }
    }
    format!(
        r#"<section class="card checker"><h2>What the checker sees <span class="badge {class}">{verdict}</span></h2>
{body}</section>
"#
    )
}

/// The findings of one group, each with its fix.
fn findings_list(body: &mut String, findings: &[&CheckFinding]) {
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

/// Which DKIM keys the check looked up: without a selector no key can be checked, and the
/// owner should know that the reports are where selectors come from.
fn selectors_line(selectors: &[String]) -> String {
    if selectors.is_empty() {
        return r#"<p class="muted">DKIM keys: no selector known yet. The selectors the domain's DMARC reports name (signatures by the domain itself, last 30 days) are checked once reports arrive.</p>"#.to_owned();
    }
    let list: Vec<String> = selectors
        .iter()
        .map(|s| format!("<code>{}</code>", escape(s)))
        .collect();
    format!(
        r#"<p class="muted">DKIM keys checked for the selectors {}.</p>"#,
        list.join(", ")
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
                finding(Some("dkim"), "dkim-key-missing"),
                finding(Some("spf"), "spf-all-neutral"),
            ],
            dkim_selectors: vec!["s1".to_owned(), "<x>".to_owned()],
        };
        let html = card(Some(&check));
        let mta_sts = html.find("MTA-STS and TLS reporting").unwrap();
        let dmarc = html.find("<h3>DMARC, SPF and DKIM</h3>").unwrap();
        let dkim = html.find("dkim-key-missing").unwrap();
        let spf = html.find("spf-all-neutral").unwrap();
        assert!(dmarc < dkim && dmarc < spf, "{html}");
        assert!(html.contains("selectors <code>s1</code>, <code>&lt;x&gt;</code>."));
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
            dkim_selectors: vec![],
        }));
        assert_eq!(clean.matches("No errors or warnings.").count(), 2);
        assert!(clean.contains("no selector known yet"));
    }
}
