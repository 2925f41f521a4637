//! Unit tests of the stage mappings, with hand-built observations.

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use mtasts_net::cert::CertProblem;
use mtasts_net::dns::{DnsError, MxRecord};
use mtasts_net::fetch::{FetchError, FetchReport, FetchedPolicy};
use mtasts_net::smtp::{ProbeError, ProbeReport, TlsSession};
use mtasts_proto::sts::policy::Policy;
use mtasts_proto::txt::TxtRr;
use mtasts_proto::{ResultType, Severity};

use super::*;
use crate::report::{PolicyStatus, TlsRptStatus, Verdict};

fn codes(findings: &[crate::Finding]) -> Vec<&str> {
    findings.iter().map(|f| f.code.as_str()).collect()
}

fn txt(records: &[&str]) -> Result<Vec<TxtRr>, DnsError> {
    Ok(records.iter().map(|r| TxtRr::single(r)).collect())
}

fn fetch(outcome: Result<FetchedPolicy, FetchError>) -> FetchReport {
    FetchReport {
        url: "https://mta-sts.example.com/.well-known/mta-sts.txt".into(),
        addresses: vec![],
        ip: None,
        tls_version: None,
        certificate: None,
        status: None,
        outcome,
    }
}

fn body(text: &str) -> Result<FetchedPolicy, FetchError> {
    Ok(FetchedPolicy {
        body: text.as_bytes().to_vec(),
        content_type: Some("text/plain".into()),
    })
}

const ENFORCE: &str =
    "version: STSv1\nmode: enforce\nmx: mail.example.com\nmx: *.mx.example.net\nmax_age: 604800\n";

#[test]
fn record_found_nxdomain_servfail_multiple_invalid() {
    let found = record::evaluate("example.com", &txt(&["v=STSv1; id=abc"]));
    assert_eq!(
        found.record.as_ref().map(|(r, _)| r.id.to_string()),
        Some("abc".into())
    );
    assert!(found.status.is_none());

    let missing = record::evaluate("example.com", &Err(DnsError::NxDomain));
    assert_eq!(missing.status, Some(PolicyStatus::None));
    assert_eq!(codes(&missing.findings), ["sts-record-missing"]);

    let temp = record::evaluate(
        "example.com",
        &Err(DnsError::ServerFailure("SERVFAIL".into())),
    );
    assert_eq!(temp.status, Some(PolicyStatus::TempError));
    assert_eq!(codes(&temp.findings), ["sts-dns-error"]);
    let timeout = record::evaluate("example.com", &Err(DnsError::Timeout));
    assert_eq!(timeout.status, Some(PolicyStatus::TempError));

    let multiple = record::evaluate("example.com", &txt(&["v=STSv1; id=a", "v=STSv1; id=a"]));
    assert_eq!(multiple.status, Some(PolicyStatus::None));
    assert_eq!(codes(&multiple.findings)[0], "sts-record-multiple");

    let invalid = record::evaluate("example.com", &txt(&["v=STSv1; id=a+b"]));
    assert_eq!(invalid.status, Some(PolicyStatus::None));
    assert_eq!(codes(&invalid.findings)[0], "sts-record-invalid");
}

#[test]
fn every_fetch_error_maps_to_its_contract_code_and_status() {
    let cases: Vec<(FetchError, &str, PolicyStatus, ResultType)> = vec![
        (
            FetchError::Dns(DnsError::NxDomain),
            "policy-fetch-failed",
            PolicyStatus::FetchError,
            ResultType::StsPolicyFetchError,
        ),
        (
            FetchError::Connect("refused".into()),
            "policy-fetch-failed",
            PolicyStatus::FetchError,
            ResultType::StsPolicyFetchError,
        ),
        (
            FetchError::Tls("alert".into()),
            "policy-fetch-failed",
            PolicyStatus::FetchError,
            ResultType::StsPolicyFetchError,
        ),
        (
            FetchError::Timeout(Duration::from_secs(5)),
            "policy-timeout",
            PolicyStatus::FetchError,
            ResultType::StsPolicyFetchError,
        ),
        (
            FetchError::Redirect {
                status: 301,
                location: Some("https://www.example.com/".into()),
            },
            "policy-redirect",
            PolicyStatus::FetchError,
            ResultType::StsPolicyFetchError,
        ),
        (
            FetchError::Status(404),
            "policy-http-status",
            PolicyStatus::FetchError,
            ResultType::StsPolicyFetchError,
        ),
        (
            FetchError::ContentType("text/html".into()),
            "policy-content-type",
            PolicyStatus::FetchError,
            ResultType::StsPolicyFetchError,
        ),
        (
            FetchError::TooLarge(65536),
            "policy-too-large",
            PolicyStatus::FetchError,
            ResultType::StsPolicyFetchError,
        ),
        (
            FetchError::Certificate(CertProblem::Expired),
            "policy-certificate-expired",
            PolicyStatus::WebpkiInvalid,
            ResultType::StsWebpkiInvalid,
        ),
        (
            FetchError::Certificate(CertProblem::NotYetValid),
            "policy-certificate-expired",
            PolicyStatus::WebpkiInvalid,
            ResultType::StsWebpkiInvalid,
        ),
        (
            FetchError::Certificate(CertProblem::NameMismatch {
                expected: "mta-sts.example.com".into(),
            }),
            "policy-certificate-name-mismatch",
            PolicyStatus::WebpkiInvalid,
            ResultType::StsWebpkiInvalid,
        ),
        (
            FetchError::Certificate(CertProblem::Untrusted {
                reason: "UnknownIssuer".into(),
            }),
            "policy-certificate-untrusted",
            PolicyStatus::WebpkiInvalid,
            ResultType::StsWebpkiInvalid,
        ),
    ];
    for (error, code, status, result) in cases {
        let outcome = policy::evaluate("example.com", &fetch(Err(error.clone())));
        assert_eq!(codes(&outcome.findings), [code], "{error:?}");
        assert_eq!(outcome.status, status, "{error:?}");
        assert_eq!(outcome.result_type, Some(result.clone()), "{error:?}");
        assert_eq!(outcome.findings[0].result_type, Some(result), "{error:?}");
        assert_eq!(outcome.findings[0].severity, Severity::Error);
    }
}

#[test]
fn valid_policy_modes_and_missing_content_type() {
    let enforce = policy::evaluate("example.com", &fetch(body(ENFORCE)));
    assert_eq!(enforce.status, PolicyStatus::Valid);
    assert!(enforce.findings.is_empty(), "{:?}", enforce.findings);

    let testing = policy::evaluate(
        "example.com",
        &fetch(body(&ENFORCE.replace("enforce", "testing"))),
    );
    assert_eq!(codes(&testing.findings), ["policy-mode-testing"]);
    let none = policy::evaluate(
        "example.com",
        &fetch(body("version: STSv1\nmode: none\nmax_age: 86400\n")),
    );
    assert_eq!(codes(&none.findings), ["policy-mode-none"]);

    let untyped = policy::evaluate(
        "example.com",
        &fetch(Ok(FetchedPolicy {
            body: ENFORCE.as_bytes().to_vec(),
            content_type: None,
        })),
    );
    assert_eq!(untyped.status, PolicyStatus::Valid);
    assert_eq!(codes(&untyped.findings), ["policy-content-type-missing"]);
}

#[test]
fn invalid_policy_is_policy_syntax_with_detail() {
    let outcome = policy::evaluate(
        "example.com",
        &fetch(body(
            "\u{feff}version: STSv1\nmode: enforce\nmx: a.example\nmax_age: 86400\n",
        )),
    );
    assert_eq!(outcome.status, PolicyStatus::Invalid);
    assert_eq!(outcome.result_type, Some(ResultType::StsPolicyInvalid));
    assert!(
        outcome
            .findings
            .iter()
            .any(|f| f.code == "policy-syntax" && f.detail.as_deref() == Some("policy-bom")),
        "{:?}",
        outcome.findings
    );

    let above_cap = policy::evaluate(
        "example.com",
        &fetch(body(&ENFORCE.replace("604800", "31557601"))),
    );
    assert_eq!(above_cap.status, PolicyStatus::Invalid);
    assert!(
        above_cap
            .findings
            .iter()
            .all(|f| f.code != "policy-syntax"
                || f.result_type == Some(ResultType::StsPolicyInvalid))
    );
}

#[test]
fn mx_implicit_null_nxdomain_and_temporary() {
    let implicit = mx::evaluate("example.com", &Err(DnsError::NoData));
    assert_eq!(
        implicit.candidates,
        [mx::Candidate {
            name: "example.com".into(),
            preference: None
        }]
    );
    assert_eq!(codes(&implicit.findings), ["mx-implicit"]);

    let null = mx::evaluate(
        "example.com",
        &Ok(vec![MxRecord {
            preference: 0,
            exchange: String::new(),
        }]),
    );
    assert!(null.null_mx && null.candidates.is_empty());

    assert_eq!(
        codes(&mx::evaluate("example.com", &Err(DnsError::NxDomain)).findings),
        ["mx-domain-missing"]
    );
    assert_eq!(
        codes(&mx::evaluate("example.com", &Err(DnsError::Timeout)).findings),
        ["mx-dns-error"]
    );

    let sorted = mx::evaluate(
        "example.com",
        &Ok(vec![
            MxRecord {
                preference: 20,
                exchange: "b.example.com".into(),
            },
            MxRecord {
                preference: 10,
                exchange: "a.example.com".into(),
            },
        ]),
    );
    assert_eq!(sorted.candidates[0].name, "a.example.com");
}

#[test]
fn coverage_severity_follows_the_mode_and_explains_wildcards() {
    let policy = Policy::parse(ENFORCE).unwrap();
    let candidates = vec![
        mx::Candidate {
            name: "mail.example.com".into(),
            preference: Some(10),
        },
        mx::Candidate {
            name: "a.b.mx.example.net".into(),
            preference: Some(20),
        },
    ];
    let (covered, findings) =
        mx::coverage("example.com", &policy, Enforcement::Enforce, &candidates);
    assert_eq!(covered, [true, false]);
    let f = findings
        .iter()
        .find(|f| f.code == "mx-not-covered")
        .unwrap();
    assert_eq!(f.severity, Severity::Error);
    assert_eq!(f.result_type, Some(ResultType::ValidationFailure));
    assert!(f.message.contains("exactly one label"), "{}", f.message);

    let (_, testing) = mx::coverage("example.com", &policy, Enforcement::Testing, &candidates);
    assert_eq!(
        testing
            .iter()
            .find(|f| f.code == "mx-not-covered")
            .unwrap()
            .severity,
        Severity::Warning
    );
}

fn probe(
    error: Option<ProbeError>,
    tls: Option<TlsSession>,
    starttls: Option<bool>,
) -> ProbeReport {
    ProbeReport {
        host: "mail.example.com".into(),
        ip: IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)),
        banner: Some("220 mail.example.com ESMTP".into()),
        ehlo_keywords: vec![],
        starttls_offered: starttls,
        tls,
        error,
    }
}

fn session(version: &str, validation: Result<(), CertProblem>) -> Option<TlsSession> {
    Some(TlsSession {
        version: version.into(),
        cipher: None,
        certificate: None,
        validation,
    })
}

#[test]
fn probe_outcomes_map_to_codes_and_result_types() {
    let cases: Vec<(ProbeReport, &str, Option<ResultType>)> = vec![
        (
            probe(Some(ProbeError::StarttlsNotOffered), None, Some(false)),
            "mx-starttls-missing",
            Some(ResultType::StarttlsNotSupported),
        ),
        (
            probe(
                Some(ProbeError::StarttlsRefused("454".into())),
                None,
                Some(true),
            ),
            "mx-starttls-missing",
            Some(ResultType::StarttlsNotSupported),
        ),
        (
            probe(
                Some(ProbeError::LegacyTls("TLSv1.0".into())),
                session("TLSv1.0", Ok(())),
                Some(true),
            ),
            "mx-tls-version",
            Some(ResultType::ValidationFailure),
        ),
        (
            probe(
                None,
                session("TLSv1.3", Err(CertProblem::Expired)),
                Some(true),
            ),
            "mx-certificate-expired",
            Some(ResultType::CertificateExpired),
        ),
        (
            probe(
                None,
                session(
                    "TLSv1.3",
                    Err(CertProblem::NameMismatch {
                        expected: "x".into(),
                    }),
                ),
                Some(true),
            ),
            "mx-certificate-name-mismatch",
            Some(ResultType::CertificateHostMismatch),
        ),
        (
            probe(
                None,
                session(
                    "TLSv1.2",
                    Err(CertProblem::Untrusted { reason: "x".into() }),
                ),
                Some(true),
            ),
            "mx-certificate-untrusted",
            Some(ResultType::CertificateNotTrusted),
        ),
        (
            probe(Some(ProbeError::Connect("refused".into())), None, None),
            "mx-unreachable",
            None,
        ),
        (
            probe(Some(ProbeError::Timeout("greeting")), None, None),
            "mx-unreachable",
            None,
        ),
        (
            probe(Some(ProbeError::Banner("554".into())), None, None),
            "mx-unreachable",
            None,
        ),
        (
            probe(
                Some(ProbeError::Handshake("alert".into())),
                None,
                Some(true),
            ),
            "mx-tls-handshake-failed",
            Some(ResultType::ValidationFailure),
        ),
    ];
    for (report, code, result) in cases {
        let (address, findings) = tls::evaluate(&report, Enforcement::Enforce);
        assert_eq!(codes(&findings), [code], "{:?}", report.error);
        assert_eq!(findings[0].result_type, result, "{code}");
        assert_eq!(findings[0].host.as_deref(), Some("mail.example.com"));
        assert_eq!(address.starttls, report.starttls_offered);
    }
    let (address, findings) = tls::evaluate(
        &probe(None, session("TLSv1.3", Ok(())), Some(true)),
        Enforcement::Enforce,
    );
    assert!(findings.is_empty());
    assert_eq!(address.tls_version.as_deref(), Some("TLSv1.3"));

    let bad = probe(
        None,
        session("TLSv1.3", Err(CertProblem::Expired)),
        Some(true),
    );
    assert_eq!(
        tls::evaluate(&bad, Enforcement::Testing).1[0].severity,
        Severity::Warning
    );
    assert_eq!(
        tls::evaluate(&bad, Enforcement::Withdrawn).1[0].severity,
        Severity::Info
    );
}

#[test]
fn tlsrpt_statuses() {
    let (valid, f) = tlsrpt::evaluate(
        "example.com",
        &txt(&["v=TLSRPTv1; rua=mailto:a@example.com,https://r.example.com/v1"]),
    );
    assert_eq!(valid.status, TlsRptStatus::Valid);
    assert_eq!(valid.rua.len(), 2);
    assert!(f.is_empty());
    let (none, f) = tlsrpt::evaluate("example.com", &Err(DnsError::NxDomain));
    assert_eq!(
        (none.status, codes(&f)),
        (TlsRptStatus::None, vec!["tlsrpt-record-missing"])
    );
    let (multi, f) = tlsrpt::evaluate(
        "example.com",
        &txt(&[
            "v=TLSRPTv1; rua=mailto:a@x.com",
            "v=TLSRPTv1; rua=mailto:b@x.com",
        ]),
    );
    assert_eq!(
        (multi.status, codes(&f)[0]),
        (TlsRptStatus::Invalid, "tlsrpt-record-multiple")
    );
    let (invalid, f) = tlsrpt::evaluate(
        "example.com",
        &txt(&["v=TLSRPTv1; rua=reports@example.com"]),
    );
    assert_eq!(
        (invalid.status, codes(&f)[0]),
        (TlsRptStatus::Invalid, "tlsrpt-record-invalid")
    );
    let (_, f) = tlsrpt::evaluate("example.com", &Err(DnsError::Timeout));
    assert_eq!(codes(&f), ["tlsrpt-dns-error"]);
}

#[test]
fn verdict_ignores_info() {
    let info = crate::Finding::new(crate::Stage::Mx, Severity::Info, "mx-implicit", "", "", "");
    let warn = crate::Finding::new(crate::Stage::Mx, Severity::Warning, "x", "", "", "");
    let err = crate::Finding::new(crate::Stage::Mx, Severity::Error, "y", "", "", "");
    assert_eq!(
        Verdict::from_findings(std::slice::from_ref(&info)),
        Verdict::Pass
    );
    assert_eq!(
        Verdict::from_findings(&[info.clone(), warn.clone()]),
        Verdict::Warn
    );
    assert_eq!(Verdict::from_findings(&[info, warn, err]), Verdict::Fail);
}
