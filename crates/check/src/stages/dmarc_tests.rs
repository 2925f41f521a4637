//! Unit tests of the DMARC stage with hand-built DNS answers.

use mtasts_net::dns::DnsError;
use mtasts_proto::Severity;
use mtasts_proto::dmarc::discovery::names_to_query;
use mtasts_proto::txt::TxtRr;

use super::*;
use crate::report_dmarc::DmarcStatus;

type Lookups = Vec<(String, Result<Vec<TxtRr>, DnsError>)>;

/// Every name a checker asks for `domain`: the records given, NXDOMAIN elsewhere.
fn answers(domain: &str, records: &[(&str, Result<&[&str], DnsError>)]) -> Answers {
    let lookups: Lookups = names_to_query(domain)
        .into_iter()
        .map(|name| {
            let answer = records
                .iter()
                .find(|(d, _)| record_name(d) == name)
                .map(|(_, a)| match a {
                    Ok(texts) => Ok(texts.iter().map(|t| TxtRr::single(t)).collect()),
                    Err(e) => Err(e.clone()),
                })
                .unwrap_or(Err(DnsError::NxDomain));
            (name, answer)
        })
        .collect();
    Answers::new(lookups)
}

fn codes(findings: &[Finding]) -> Vec<&str> {
    findings.iter().map(|f| f.code.as_str()).collect()
}

fn severity_of(findings: &[Finding], code: &str) -> Severity {
    findings
        .iter()
        .find(|f| f.code == code)
        .unwrap_or_else(|| panic!("no {code} in {findings:#?}"))
        .severity
}

#[test]
fn reject_with_reports_has_no_problems() {
    let a = answers(
        "example.com",
        &[(
            "example.com",
            Ok(&["v=DMARC1; p=reject; rua=mailto:d@example.com"]),
        )],
    );
    assert!(authorization_names("example.com", &a).is_empty());
    let (report, findings) = evaluate("example.com", &a, &[]);
    assert_eq!(report.status, DmarcStatus::Valid);
    assert_eq!(report.policy.as_deref(), Some("reject"));
    assert!(findings.is_empty(), "{findings:#?}");
    let record = report.record.unwrap();
    assert_eq!(record.domain, "example.com");
    assert!(!record.rua[0].external);
    assert_eq!(report.rfc7489.queried, ["_dmarc.example.com"]);
    assert_eq!(report.rfc9989.queried, ["_dmarc.example.com", "_dmarc.com"]);
}

#[test]
fn missing_record_is_a_warning_with_the_record_to_publish() {
    let a = answers("example.com", &[]);
    let (report, findings) = evaluate("example.com", &a, &[]);
    assert_eq!(report.status, DmarcStatus::None);
    assert!(report.record.is_none());
    assert_eq!(codes(&findings), ["dmarc-record-missing"]);
    assert_eq!(findings[0].severity, Severity::Warning);
    assert!(
        findings[0]
            .fix
            .contains("_dmarc.example.com TXT \"v=DMARC1; p=none; rua=mailto:dmarc@example.com\"")
    );
}

#[test]
fn weak_policies_get_the_next_step() {
    let none = answers("example.com", &[("example.com", Ok(&["v=DMARC1; p=none"]))]);
    let (_, f) = evaluate("example.com", &none, &[]);
    assert_eq!(severity_of(&f, "dmarc-policy-none"), Severity::Warning);
    assert!(
        f.iter()
            .find(|f| f.code == "dmarc-policy-none")
            .unwrap()
            .fix
            .contains("p=quarantine")
    );
    assert_eq!(severity_of(&f, "dmarc-rua-missing"), Severity::Warning);

    let q = answers(
        "example.com",
        &[(
            "example.com",
            Ok(&["v=DMARC1; p=quarantine; pct=20; rua=mailto:d@example.com"]),
        )],
    );
    let (_, f) = evaluate("example.com", &q, &[]);
    assert_eq!(severity_of(&f, "dmarc-policy-quarantine"), Severity::Info);
    assert!(
        f.iter()
            .find(|f| f.code == "dmarc-policy-quarantine")
            .unwrap()
            .fix
            .contains("p=reject")
    );
    assert_eq!(severity_of(&f, "dmarc-pct-partial"), Severity::Warning);

    let t = answers(
        "example.com",
        &[(
            "example.com",
            Ok(&["v=DMARC1; p=reject; t=y; sp=none; rua=mailto:d@example.com"]),
        )],
    );
    let (_, f) = evaluate("example.com", &t, &[]);
    assert_eq!(severity_of(&f, "dmarc-testing"), Severity::Warning);
    assert_eq!(
        severity_of(&f, "dmarc-subdomain-policy-none"),
        Severity::Warning
    );
}

#[test]
fn broken_records_are_errors() {
    let dup = answers(
        "example.com",
        &[("example.com", Ok(&["v=DMARC1; p=reject; p=none"]))],
    );
    let (report, f) = evaluate("example.com", &dup, &[]);
    assert_eq!(report.status, DmarcStatus::Invalid);
    assert_eq!(severity_of(&f, "dmarc-tag-duplicate"), Severity::Error);
    assert_eq!(severity_of(&f, "dmarc-record-invalid"), Severity::Error);

    let two = answers(
        "example.com",
        &[(
            "example.com",
            Ok(&["v=DMARC1; p=reject", "v=DMARC1; p=none"]),
        )],
    );
    let (report, f) = evaluate("example.com", &two, &[]);
    assert_eq!(report.status, DmarcStatus::Invalid);
    assert_eq!(report.raw.len(), 2);
    assert_eq!(severity_of(&f, "dmarc-record-multiple"), Severity::Error);
    // Neither kind of receiver applies a policy: RFC 7489 ones stop at the two records, RFC
    // 9989 ones discard them and find nothing above. They agree (found by the checkdmarc
    // comparison, tests/checkdmarc_peer.rs).
    assert_eq!(report.rfc7489.policy, None);
    assert_eq!(report.rfc9989.policy, None);
    assert_eq!(codes(&f), ["dmarc-record-multiple"]);

    // With a record above, RFC 9989 receivers use it and RFC 7489 ones apply nothing: that
    // is a disagreement.
    let two_under_parent = answers(
        "mail.example.com",
        &[
            (
                "mail.example.com",
                Ok(&["v=DMARC1; p=reject", "v=DMARC1; p=none"]),
            ),
            ("example.com", Ok(&["v=DMARC1; p=quarantine"])),
        ],
    );
    let (report, f) = evaluate("mail.example.com", &two_under_parent, &[]);
    assert_eq!(report.rfc7489.policy, None);
    assert_eq!(report.rfc9989.policy.as_deref(), Some("quarantine"));
    assert_eq!(
        severity_of(&f, "dmarc-receivers-disagree"),
        Severity::Warning
    );

    let bad = answers(
        "example.com",
        &[("example.com", Ok(&["v=DMARC1; p=reject; adkim=x"]))],
    );
    let (report, f) = evaluate("example.com", &bad, &[]);
    assert_eq!(report.status, DmarcStatus::Valid);
    assert_eq!(severity_of(&f, "dmarc-tag-invalid"), Severity::Error);
}

#[test]
fn temporary_failure_is_reported_as_such() {
    let a = answers(
        "example.com",
        &[(
            "example.com",
            Err(DnsError::ServerFailure("SERVFAIL".into())),
        )],
    );
    let (report, f) = evaluate("example.com", &a, &[]);
    assert_eq!(report.status, DmarcStatus::TempError);
    assert_eq!(codes(&f), ["dmarc-dns-error"]);
    assert_eq!(f[0].severity, Severity::Error);
    assert!(f[0].message.contains("_dmarc.example.com"));
}

#[test]
fn subdomain_inherits_and_receivers_can_disagree() {
    let a = answers(
        "mail.example.com",
        &[(
            "example.com",
            Ok(&["v=DMARC1; p=reject; sp=quarantine; rua=mailto:d@example.com"]),
        )],
    );
    let (report, f) = evaluate("mail.example.com", &a, &[]);
    assert_eq!(report.policy.as_deref(), Some("quarantine"));
    assert_eq!(report.record.as_ref().unwrap().domain, "example.com");
    assert!(codes(&f).contains(&"dmarc-policy-inherited"));
    assert!(!codes(&f).contains(&"dmarc-receivers-disagree"));

    let split = answers(
        "a.b.example.com",
        &[
            (
                "b.example.com",
                Ok(&["v=DMARC1; p=none; rua=mailto:d@example.com"]),
            ),
            (
                "example.com",
                Ok(&["v=DMARC1; p=reject; rua=mailto:d@example.com"]),
            ),
        ],
    );
    let (report, f) = evaluate("a.b.example.com", &split, &[]);
    assert_eq!(report.rfc7489.record_domain.as_deref(), Some("example.com"));
    assert_eq!(
        report.rfc9989.record_domain.as_deref(),
        Some("b.example.com")
    );
    assert_eq!(
        severity_of(&f, "dmarc-receivers-disagree"),
        Severity::Warning
    );
}

#[test]
fn external_report_destinations_need_authorization() {
    let a = answers(
        "example.com",
        &[(
            "example.com",
            Ok(&[
                "v=DMARC1; p=reject; rua=mailto:a@reports.example.net,mailto:b@example.com,mailto:c@dmarc.example.org; ruf=mailto:f@reports.example.net",
            ]),
        )],
    );
    let names = authorization_names("example.com", &a);
    assert_eq!(
        names,
        [
            "example.com._report._dmarc.reports.example.net",
            "example.com._report._dmarc.dmarc.example.org"
        ]
    );
    let auth: Lookups = vec![
        (names[0].clone(), Ok(vec![TxtRr::single("v=DMARC1")])),
        (names[1].clone(), Err(DnsError::NxDomain)),
    ];
    let (report, f) = evaluate("example.com", &a, &auth);
    let rua = &report.record.as_ref().unwrap().rua;
    assert_eq!(rua[0].authorized, Some(true));
    assert!(rua[0].external);
    assert_eq!(rua[1].authorization, None);
    assert_eq!(rua[2].authorized, Some(false));
    assert_eq!(codes(&f), ["dmarc-report-authorization-missing"]);
    assert!(
        f[0].message
            .contains("example.com._report._dmarc.dmarc.example.org")
    );

    let temp: Lookups = vec![
        (names[0].clone(), Err(DnsError::Timeout)),
        (names[1].clone(), Ok(vec![TxtRr::single("v=DMARC1;")])),
    ];
    let (_, f) = evaluate("example.com", &a, &temp);
    assert_eq!(
        codes(&f),
        [
            "dmarc-report-authorization-dns-error",
            "dmarc-report-authorization-dns-error"
        ],
        "rua and ruf name the same destination"
    );
}
