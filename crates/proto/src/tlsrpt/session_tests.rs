//! Tests of session results: canonical keys (examples, refusals of every non-canonical
//! spelling, round-trip properties), the domain key rule, and the JSON results format (every
//! error kind, a datagram object inside, never panics).

use proptest::prelude::*;

use super::*;
use crate::tlsrpt::report::MAX_STRING_BYTES;

fn sts() -> PolicyKey {
    PolicyKey {
        policy_type: PolicyType::Sts,
        domain: Some("example.com".into()),
        strings: vec!["version: STSv1".into(), "mode: testing".into()],
        mx: vec!["*.mx.example.com".into()],
    }
}

fn failure() -> FailureKey {
    FailureKey {
        result_type: ResultType::CertificateExpired,
        sending_ip: Some("192.0.2.1".into()),
        receiving_mx: Some("a.mx.example.com".into()),
        receiving_helo: Some("helo \"x\"".into()),
        receiving_ip: Some("198.51.100.1".into()),
        additional: Some("https://e.example/\u{e9}".into()),
        reason_code: Some("X509_V_ERR\n".into()),
    }
}

#[test]
fn policy_key_is_compact_json_with_rfc_names() {
    assert_eq!(
        sts().to_key(),
        r#"{"policy-type":"sts","policy-string":["version: STSv1","mode: testing"],"policy-domain":"example.com","mx-host":["*.mx.example.com"]}"#
    );
    let none = PolicyKey {
        policy_type: PolicyType::NoPolicyFound,
        domain: None,
        strings: vec![],
        mx: vec![],
    };
    assert_eq!(
        none.to_key(),
        r#"{"policy-type":"no-policy-found","policy-string":[]}"#
    );
    assert_eq!(PolicyKey::from_key(&none.to_key()).unwrap(), none);
    assert_eq!(PolicyKey::from_key(&sts().to_key()).unwrap(), sts());
}

#[test]
fn failure_key_is_compact_json_with_rfc_names() {
    assert_eq!(
        failure().to_key(),
        "{\"result-type\":\"certificate-expired\",\"sending-mta-ip\":\"192.0.2.1\",\"receiving-mx-hostname\":\"a.mx.example.com\",\"receiving-mx-helo\":\"helo \\\"x\\\"\",\"receiving-ip\":\"198.51.100.1\",\"additional-information\":\"https://e.example/\u{e9}\",\"failure-reason-code\":\"X509_V_ERR\\n\"}"
    );
    assert_eq!(
        FailureKey::from_key(&failure().to_key()).unwrap(),
        failure()
    );
    let bare = FailureKey {
        result_type: ResultType::StarttlsNotSupported,
        sending_ip: None,
        receiving_mx: None,
        receiving_helo: None,
        receiving_ip: None,
        additional: None,
        reason_code: None,
    };
    assert_eq!(bare.to_key(), r#"{"result-type":"starttls-not-supported"}"#);
    assert_eq!(FailureKey::from_key(&bare.to_key()).unwrap(), bare);
}

#[test]
fn keys_in_any_other_spelling_are_refused() {
    for key in [
        "",
        "[]",
        "{}",
        r#"{"policy-type": "sts","policy-string":[]}"#,
        r#"{"policy-string":[],"policy-type":"sts"}"#,
        r#"{"policy-type":"sts","policy-string":[],"mx-host":[]}"#,
        r#"{"policy-type":"sts","policy-string":[],"x":1}"#,
        r#"{"policy-type":"st\u0073","policy-string":[]}"#,
        r#"{"policy-type":"sts","policy-string":[1]}"#,
        r#"{"policy-type":2,"policy-string":[]}"#,
        r#"{"policy-type":"sts","policy-string":[]} "#,
    ] {
        assert!(PolicyKey::from_key(key).is_err(), "{key}");
    }
    for key in [
        "{}",
        r#"{"sending-mta-ip":"1.2.3.4","result-type":"dane-required"}"#,
        r#"{"result-type":"dane-required","sending-mta-ip":1}"#,
        r#"{"result-type":"dane-required","failed-session-count":"1"}"#,
        r#"{"result-type":"dane-required","receiving-ip":"a","sending-mta-ip":"b"}"#,
        r#"{"result-type":"dane-required","result-type":"dane-required"}"#,
    ] {
        let err = FailureKey::from_key(key).unwrap_err();
        assert!(
            err.to_string().starts_with("not a canonical"),
            "{key}: {err}"
        );
    }
}

#[test]
fn domain_key_rule() {
    assert_eq!(domain_key("Example.COM.").as_deref(), Some("example.com"));
    assert_eq!(domain_key(" a.example ").as_deref(), Some("a.example"));
    assert_eq!(
        domain_key("B\u{fc}cher.example").as_deref(),
        Some("xn--bcher-kva.example")
    );
    assert_eq!(domain_key("x_y.Example").as_deref(), Some("x_y.example"));
    assert_eq!(domain_key(".."), None);
    assert_eq!(domain_key(""), None);
    assert_eq!(domain_key("."), None);
    assert_eq!(domain_key("  "), None);
}

const ONE: &str = r#"{"recipient-domain": "Example.COM.", "tlsrpt-record": "v=TLSRPTv1; rua=mailto:t@example.com",
  "policies": [{"policy-type": "sts", "policy-domain": "example.com", "policy-string": ["version: STSv1"],
                "mx-host": ["*.mx.example.com"], "result": "failure",
                "failure-details": [{"result-type": "certificate-expired", "sending-mta-ip": "192.0.2.1",
                  "receiving-mx-hostname": "a.mx.example.com", "receiving-mx-helo": "a", "receiving-ip": "198.51.100.1",
                  "additional-information": "", "failure-reason-code": null}]},
               {"policy-type": "no-policy-found", "result": "success"}]}"#;

#[test]
fn one_result_object() {
    let results = parse_results_json(ONE.as_bytes()).unwrap();
    assert_eq!(results.len(), 1);
    let r = &results[0];
    assert_eq!(r.domain, "example.com");
    assert_eq!(r.record, "v=TLSRPTv1; rua=mailto:t@example.com");
    assert_eq!(r.policies.len(), 2);
    assert!(r.policies[0].failed);
    let f = &r.policies[0].failures[0];
    assert_eq!(f.result_type, ResultType::CertificateExpired);
    assert_eq!(f.receiving_helo.as_deref(), Some("a"));
    assert_eq!((&f.additional, &f.reason_code), (&None, &None));
    assert!(!r.policies[1].failed);
    assert_eq!(r.policies[1].policy.domain.as_deref(), Some("example.com"));
    assert_eq!(r.policies[1].policy.policy_type, PolicyType::NoPolicyFound);
}

#[test]
fn an_array_of_results_and_datagram_objects() {
    let body = format!(
        r#"[{ONE}, {{"d": "Other.example", "pr": "v=TLSRPTv1; rua=https://r.example/", "policies": [{{"policy-type": 1, "t": 0, "f": 0}}]}}]"#
    );
    let results = parse_results_json(body.as_bytes()).unwrap();
    assert_eq!(results.len(), 2);
    assert_eq!(results[1].domain, "other.example");
    assert_eq!(results[1].policies[0].policy.policy_type, PolicyType::Tlsa);
    assert_eq!(parse_results_json(b"[]").unwrap(), []);
    // A bad datagram object refuses the body with the datagram's kind.
    let err = parse_results_json(
        br#"[{"d": "x.example", "pr": "r", "policies": [{"policy-type": 5, "f": 0}]}]"#,
    )
    .unwrap_err();
    assert_eq!(err.kind(), "unknown-policy-type");
    assert!(err.to_string().starts_with("[0]: "), "{err}");
}

fn error(body: &str) -> SessionError {
    match parse_results_json(body.as_bytes()) {
        Err(e) => e,
        Ok(r) => panic!("{body} was read: {r:?}"),
    }
}

#[test]
fn refusals_name_the_member() {
    let policy = r#""policy-type": "sts", "result": "success""#;
    let wrap = |p: &str| {
        format!(r#"{{"recipient-domain": "e.com", "tlsrpt-record": "r", "policies": [{{{p}}}]}}"#)
    };
    for (body, kind, path) in [
        (
            r#"{"tlsrpt-record": "r", "policies": []}"#.to_owned(),
            "missing-member",
            "recipient-domain",
        ),
        (
            r#"{"recipient-domain": "e.com", "policies": []}"#.into(),
            "missing-member",
            "tlsrpt-record",
        ),
        (
            r#"{"recipient-domain": "e.com", "tlsrpt-record": "r"}"#.into(),
            "missing-member",
            "policies",
        ),
        (
            r#"{"recipient-domain": "e.com", "tlsrpt-record": "r", "policies": []}"#.into(),
            "bad-value",
            "policies",
        ),
        (
            r#"{"recipient-domain": ".", "tlsrpt-record": "r", "policies": []}"#.into(),
            "bad-value",
            "recipient-domain",
        ),
        (
            r#"{"recipient-domain": "e.com", "tlsrpt-record": 1, "policies": []}"#.into(),
            "wrong-type",
            "tlsrpt-record",
        ),
        (
            r#"{"recipient-domain": "e.com", "tlsrpt-record": "r", "policies": [], "extra": 1}"#
                .into(),
            "unknown-member",
            "extra",
        ),
        (
            wrap(r#""result": "success""#),
            "missing-member",
            "policies[0].policy-type",
        ),
        (
            wrap(r#""policy-type": "sts""#),
            "missing-member",
            "policies[0].result",
        ),
        (
            wrap(r#""policy-type": "dane", "result": "success""#),
            "bad-value",
            "policies[0].policy-type",
        ),
        (
            wrap(r#""policy-type": 2, "result": "success""#),
            "wrong-type",
            "policies[0].policy-type",
        ),
        (
            wrap(r#""policy-type": "sts", "result": "ok""#),
            "bad-value",
            "policies[0].result",
        ),
        (
            wrap(&format!(r#"{policy}, "mx-host-pattern": ["a"]"#)),
            "unknown-member",
            "policies[0].mx-host-pattern",
        ),
        (
            wrap(&format!(r#"{policy}, "mx-host": "a""#)),
            "wrong-type",
            "policies[0].mx-host",
        ),
        (
            wrap(&format!(r#"{policy}, "policy-string": [null]"#)),
            "wrong-type",
            "policies[0].policy-string[0]",
        ),
        (
            wrap(&format!(r#"{policy}, "failure-details": [{{}}]"#)),
            "missing-member",
            "policies[0].failure-details[0].result-type",
        ),
        (
            wrap(&format!(
                r#"{policy}, "failure-details": [{{"result-type": "mx-mismatch"}}]"#
            )),
            "bad-value",
            "policies[0].failure-details[0].result-type",
        ),
        (
            wrap(&format!(
                r#"{policy}, "failure-details": [{{"result-type": "dane-required", "failed-session-count": 3}}]"#
            )),
            "unknown-member",
            "policies[0].failure-details[0].failed-session-count",
        ),
        (
            wrap(&format!(
                r#"{policy}, "failure-details": [{{"result-type": "dane-required", "receiving-ip": 1}}]"#
            )),
            "wrong-type",
            "policies[0].failure-details[0].receiving-ip",
        ),
    ] {
        let err = error(&body);
        assert_eq!(err.kind(), kind, "{body}: {err}");
        assert!(err.to_string().starts_with(path), "{body}: {err}");
    }
    let err = error(&format!("[1, {ONE}]"));
    assert_eq!(err.kind(), "wrong-type");
    assert!(err.to_string().starts_with("[0] "), "{err}");
    assert_eq!(error("7").kind(), "wrong-type");
}

#[test]
fn syntax_size_and_count_limits() {
    assert_eq!(error("{").kind(), "not-json");
    assert_eq!(error("").kind(), "not-json");
    assert_eq!(
        error(r#"{"recipient-domain": "a", "recipient-domain": "b"}"#).kind(),
        "duplicate-member"
    );
    assert_eq!(
        error(&format!("{}{}", "[".repeat(300), "]".repeat(300))).kind(),
        "not-json"
    );
    let big = " ".repeat(MAX_RESULTS_BODY_BYTES + 1);
    assert_eq!(
        error(&big),
        SessionError::TooLarge {
            size: MAX_RESULTS_BODY_BYTES + 1,
            limit: MAX_RESULTS_BODY_BYTES
        }
    );
    let many = format!("[{}]", vec!["1"; MAX_RESULTS_PER_BODY + 1].join(","));
    assert_eq!(error(&many).kind(), "too-many");
    let long = format!(
        r#"{{"recipient-domain": "e.com", "tlsrpt-record": "{}", "policies": []}}"#,
        "r".repeat(MAX_STRING_BYTES + 1)
    );
    assert_eq!(error(&long).kind(), "too-many");
    let policies =
        vec![r#"{"policy-type": "sts", "result": "success"}"#; MAX_POLICIES_PER_SESSION + 1];
    let body = format!(
        r#"{{"recipient-domain": "e.com", "tlsrpt-record": "r", "policies": [{}]}}"#,
        policies.join(",")
    );
    assert_eq!(error(&body).kind(), "too-many");
}

fn policy_type() -> impl Strategy<Value = PolicyType> {
    prop_oneof![
        Just(PolicyType::Sts),
        Just(PolicyType::Tlsa),
        Just(PolicyType::NoPolicyFound),
        "x-[a-z]{0,5}".prop_map(PolicyType::Other),
    ]
}

fn result_type() -> impl Strategy<Value = ResultType> {
    prop_oneof![
        Just(ResultType::StarttlsNotSupported),
        Just(ResultType::CertificateHostMismatch),
        Just(ResultType::CertificateNotTrusted),
        Just(ResultType::CertificateExpired),
        Just(ResultType::ValidationFailure),
        Just(ResultType::StsPolicyFetchError),
        Just(ResultType::StsPolicyInvalid),
        Just(ResultType::StsWebpkiInvalid),
        Just(ResultType::TlsaInvalid),
        Just(ResultType::DnssecInvalid),
        Just(ResultType::DaneRequired),
        "x-[a-z]{0,5}".prop_map(ResultType::Other),
    ]
}

fn text() -> impl Strategy<Value = String> {
    any::<String>().prop_map(|s| s.chars().take(12).collect())
}

pub(crate) fn policy_key() -> impl Strategy<Value = PolicyKey> {
    (
        policy_type(),
        proptest::option::of(text()),
        proptest::collection::vec(text(), 0..4),
        proptest::collection::vec(text(), 0..3),
    )
        .prop_map(|(policy_type, domain, strings, mx)| PolicyKey {
            policy_type,
            domain,
            strings,
            mx,
        })
}

pub(crate) fn failure_key() -> impl Strategy<Value = FailureKey> {
    let field = || proptest::option::of(text());
    (
        result_type(),
        field(),
        field(),
        field(),
        field(),
        field(),
        field(),
    )
        .prop_map(
            |(
                result_type,
                sending_ip,
                receiving_mx,
                receiving_helo,
                receiving_ip,
                additional,
                reason_code,
            )| {
                FailureKey {
                    result_type,
                    sending_ip,
                    receiving_mx,
                    receiving_helo,
                    receiving_ip,
                    additional,
                    reason_code,
                }
            },
        )
}

proptest! {
    #[test]
    fn policy_keys_round_trip(key in policy_key()) {
        let text = key.to_key();
        prop_assert_eq!(PolicyKey::from_key(&text).unwrap(), key.clone());
        // The key is valid JSON that serde reads to the same members.
        let value: serde_json::Value = serde_json::from_str(&text).unwrap();
        prop_assert_eq!(value["policy-type"].as_str(), Some(key.policy_type.as_str()));
    }

    #[test]
    fn failure_keys_round_trip(key in failure_key()) {
        let text = key.to_key();
        prop_assert_eq!(FailureKey::from_key(&text).unwrap(), key.clone());
        let value: serde_json::Value = serde_json::from_str(&text).unwrap();
        prop_assert_eq!(value["result-type"].as_str(), Some(key.result_type.as_str()));
    }

    /// Different values never share a key.
    #[test]
    fn keys_are_injective(a in failure_key(), b in failure_key()) {
        prop_assert_eq!(a == b, a.to_key() == b.to_key());
    }

    #[test]
    fn results_json_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = parse_results_json(&bytes);
    }

    #[test]
    fn mutated_results_never_panic(at in 0usize..ONE.len(), byte in any::<u8>()) {
        let mut bytes = ONE.as_bytes().to_vec();
        bytes[at] = byte;
        let _ = parse_results_json(&bytes);
    }
}

#[test]
fn tallies_count_each_session_once_and_each_detail_as_often_as_it_occurs() {
    let result = SessionResult {
        domain: "example.com".into(),
        record: "r".into(),
        policies: vec![
            PolicyResult {
                policy: sts(),
                failed: true,
                failures: vec![failure(), failure(), {
                    let mut other = failure();
                    other.result_type = ResultType::DaneRequired;
                    other
                }],
            },
            PolicyResult {
                policy: sts(),
                failed: false,
                failures: vec![],
            },
        ],
    };
    let tallies = result.tallies();
    assert_eq!(tallies.len(), 2);
    assert_eq!(tallies[0].policy, sts().to_key());
    assert_eq!((tallies[0].successes, tallies[0].failures), (0, 1));
    assert_eq!(tallies[0].details.len(), 2);
    assert_eq!(tallies[0].details[0], (failure().to_key(), 2));
    assert_eq!(tallies[0].details[1].1, 1);
    assert_eq!((tallies[1].successes, tallies[1].failures), (1, 0));
    assert!(tallies[1].details.is_empty());
}
