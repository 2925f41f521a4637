//! Tests of the libtlsrpt datagram reader: datagrams from the testkit's byte-exact libtlsrpt
//! emitter (every policy type and failure code, several policies, odd strings) and hand-written
//! byte strings as the library's source would produce them; every refusal kind; properties
//! (emitter round trip, random bytes never panic).

use mtasts_testkit::libtlsrpt::{
    DeliveryRequest, FAILURE_CODES, Failure, NO_POLICY_FOUND, POLICY_STS, POLICY_TLSA,
};
use proptest::prelude::*;

use super::*;
use crate::tlsrpt::report::{MAX_POLICY_LINES, MAX_STRING_BYTES};

const RECORD: &[u8] = b"v=TLSRPTv1; rua=mailto:tlsrpt@example.com";

fn kind(bytes: &[u8]) -> &'static str {
    match parse_datagram(bytes) {
        Err(e) => e.kind(),
        Ok(r) => panic!("{} was read: {r:?}", String::from_utf8_lossy(bytes)),
    }
}

/// Postfix's datagram for a failed STS delivery, written out by hand from libtlsrpt's source.
const POSTFIX_FAILURE: &[u8] = b"{\"dpv\": \"1\",\"d\": \"example.com\",\"pr\": \"v=TLSRPTv1; rua=mailto:tlsrpt@example.com\",\"policies\":[{\"policy-type\":2,\"policy-domain\": \"example.com\",\"policy-string\":[\"version: STSv1\",\"mode: testing\",\"mx: *.mx.example.com\",\"max_age: 86400\"],\"mx-host\":[\"*.mx.example.com\"],\"failure-details\":[{\"c\":203,\"s\": \"192.0.2.25\",\"n\": \"a.mx.example.com\",\"r\": \"198.51.100.7\",\"f\": \"unable to get local issuer certificate\"}],\"t\":1,\"f\":1}]}";

#[test]
fn postfix_failure_is_read_with_every_field() {
    let (result, notes) = parse_datagram_with_notes(POSTFIX_FAILURE).unwrap();
    assert!(notes.is_empty(), "{notes:?}");
    assert_eq!(result.domain, "example.com");
    assert_eq!(result.record, "v=TLSRPTv1; rua=mailto:tlsrpt@example.com");
    assert_eq!(result.policies.len(), 1);
    let p = &result.policies[0];
    assert!(p.failed);
    assert_eq!(p.policy.policy_type, PolicyType::Sts);
    assert_eq!(p.policy.domain.as_deref(), Some("example.com"));
    assert_eq!(p.policy.strings.len(), 4);
    assert_eq!(p.policy.strings[2], "mx: *.mx.example.com");
    assert_eq!(p.policy.mx, ["*.mx.example.com"]);
    assert_eq!(
        p.failures,
        [FailureKey {
            result_type: ResultType::CertificateNotTrusted,
            sending_ip: Some("192.0.2.25".into()),
            receiving_mx: Some("a.mx.example.com".into()),
            receiving_helo: None,
            receiving_ip: Some("198.51.100.7".into()),
            additional: None,
            reason_code: Some("unable to get local issuer certificate".into()),
        }]
    );
}

#[test]
fn the_emitter_writes_what_the_hand_written_bytes_say() {
    let mut dr = DeliveryRequest::new(b"example.com", RECORD);
    dr.init_policy(POLICY_STS, Some(b"example.com"));
    for line in [
        &b"version: STSv1"[..],
        b"mode: testing",
        b"mx: *.mx.example.com",
        b"max_age: 86400",
    ] {
        dr.add_policy_string(line);
    }
    dr.add_mx_host_pattern(b"*.mx.example.com")
        .add_failure(&Failure {
            code: 203,
            sending_mta_ip: Some(b"192.0.2.25"),
            receiving_mx_hostname: Some(b"a.mx.example.com"),
            receiving_ip: Some(b"198.51.100.7"),
            failure_reason_code: Some(b"unable to get local issuer certificate"),
            ..Failure::default()
        })
        .finish_policy(1);
    assert_eq!(
        String::from_utf8(dr.finish()).unwrap(),
        String::from_utf8(POSTFIX_FAILURE.to_vec()).unwrap()
    );
}

#[test]
fn success_without_dpv_is_read() {
    let bytes = b"{\"d\": \"example.org\",\"pr\": \"v=TLSRPTv1; rua=https://r.example/v1\",\"policies\":[{\"policy-type\":9,\"t\":0,\"f\":0}]}";
    let result = parse_datagram(bytes).unwrap();
    assert_eq!(result.domain, "example.org");
    let p = &result.policies[0];
    assert!(!p.failed);
    assert!(p.failures.is_empty());
    assert_eq!(p.policy.policy_type, PolicyType::NoPolicyFound);
    // sys4 #51: no policy-domain for no-policy-found; the recipient domain stands in.
    assert_eq!(p.policy.domain.as_deref(), Some("example.org"));
    assert!(p.policy.strings.is_empty() && p.policy.mx.is_empty());
}

#[test]
fn every_policy_type_code() {
    for (code, expected) in [
        (POLICY_TLSA, PolicyType::Tlsa),
        (POLICY_STS, PolicyType::Sts),
        (NO_POLICY_FOUND, PolicyType::NoPolicyFound),
    ] {
        let mut dr = DeliveryRequest::new(b"example.com", RECORD);
        dr.init_policy(code, Some(b"example.com")).finish_policy(0);
        let result = parse_datagram(&dr.finish()).unwrap();
        assert_eq!(result.policies[0].policy.policy_type, expected);
    }
    for code in [0, 3, 8, 10, -1, 2_147_483_647] {
        let mut dr = DeliveryRequest::new(b"example.com", RECORD);
        dr.init_policy(code, None).finish_policy(0);
        let bytes = dr.finish();
        assert_eq!(kind(&bytes), "unknown-policy-type", "{code}");
        assert!(
            parse_datagram(&bytes)
                .unwrap_err()
                .to_string()
                .contains(&code.to_string())
        );
    }
}

#[test]
fn every_failure_code() {
    for &(code, name) in FAILURE_CODES {
        let mut dr = DeliveryRequest::new(b"example.com", RECORD);
        dr.init_policy(POLICY_STS, Some(b"example.com"))
            .add_failure(&Failure {
                code,
                ..Failure::default()
            })
            .finish_policy(1);
        let (result, notes) = parse_datagram_with_notes(&dr.finish()).unwrap();
        let failure = &result.policies[0].failures[0];
        match name {
            Some(name) => {
                assert_eq!(failure.result_type.as_str(), name);
                assert_eq!(failure.reason_code, None);
                assert!(notes.is_empty());
                assert_eq!(result_type_of_code(i64::from(code)).unwrap().as_str(), name);
            }
            None => {
                assert_eq!(failure.result_type, ResultType::ValidationFailure);
                assert_eq!(failure.reason_code.as_deref(), Some("libtlsrpt-code-901"));
                assert_eq!(notes, [DatagramNote::UnknownFailureCode { code: 901 }]);
            }
        }
    }
}

#[test]
fn unknown_failure_codes_keep_the_mtas_reason() {
    let mut dr = DeliveryRequest::new(b"example.com", RECORD);
    dr.init_policy(POLICY_STS, None)
        .add_failure(&Failure {
            code: 999,
            failure_reason_code: Some(b"something new"),
            ..Failure::default()
        })
        .add_failure(&Failure {
            code: 999,
            ..Failure::default()
        })
        .add_failure(&Failure {
            code: 0,
            ..Failure::default()
        })
        .finish_policy(1);
    let (result, notes) = parse_datagram_with_notes(&dr.finish()).unwrap();
    let failures = &result.policies[0].failures;
    assert!(
        failures
            .iter()
            .all(|f| f.result_type == ResultType::ValidationFailure)
    );
    assert_eq!(failures[0].reason_code.as_deref(), Some("something new"));
    assert_eq!(
        failures[1].reason_code.as_deref(),
        Some("libtlsrpt-code-999")
    );
    assert_eq!(failures[2].reason_code.as_deref(), Some("libtlsrpt-code-0"));
    // One note per code.
    assert_eq!(
        notes,
        [
            DatagramNote::UnknownFailureCode { code: 999 },
            DatagramNote::UnknownFailureCode { code: 0 }
        ]
    );
    assert_eq!(notes[0].kind(), "unknown-failure-code");
}

#[test]
fn several_policies_in_one_datagram() {
    let mut dr = DeliveryRequest::new(b"example.com", RECORD);
    dr.init_policy(POLICY_STS, Some(b"example.com"))
        .add_policy_string(b"version: STSv1")
        .add_mx_host_pattern(b"*.mail.example.com")
        .add_mx_host_pattern(b"*.mail2.example.com")
        .add_failure(&Failure {
            code: 302,
            sending_mta_ip: Some(b"1.2.3.4"),
            ..Failure::default()
        })
        .add_failure(&Failure {
            code: 303,
            sending_mta_ip: Some(b"1.2.3.5"),
            ..Failure::default()
        })
        .finish_policy(1)
        .init_policy(POLICY_TLSA, Some(b"example.com"))
        .add_policy_string(
            b"3 0 1 1F850A337E6DB9C609C522D136A475638CC43E1ED424F8EEC8513D747D1D085D",
        )
        .finish_policy(0);
    let result = parse_datagram(&dr.finish()).unwrap();
    assert_eq!(result.policies.len(), 2);
    assert_eq!(result.policies[0].failures.len(), 2);
    assert_eq!(
        result.policies[0].failures[1].result_type,
        ResultType::StsWebpkiInvalid
    );
    assert_eq!(
        result.policies[0].policy.mx,
        ["*.mail.example.com", "*.mail2.example.com"]
    );
    assert!(!result.policies[1].failed);
    assert_eq!(result.policies[1].policy.policy_type, PolicyType::Tlsa);
}

#[test]
fn t_differing_from_the_details_is_noted_and_the_details_count() {
    let bytes = b"{\"d\": \"example.com\",\"pr\": \"r\",\"policies\":[{\"policy-type\":2,\"failure-details\":[{\"c\":201},{\"c\":202}],\"t\":3,\"f\":1},{\"policy-type\":9,\"t\":1,\"f\":1}]}";
    let (result, notes) = parse_datagram_with_notes(bytes).unwrap();
    assert_eq!(result.policies[0].failures.len(), 2);
    assert!(result.policies[1].failures.is_empty() && result.policies[1].failed);
    assert_eq!(
        notes,
        [
            DatagramNote::FailureCountMismatch {
                policy: 0,
                sent: 3,
                details: 2
            },
            DatagramNote::FailureCountMismatch {
                policy: 1,
                sent: 1,
                details: 0
            }
        ]
    );
    assert_eq!(notes[0].kind(), "failure-count-mismatch");
    // `t` may be absent (the details are what counts).
    let bytes =
        b"{\"d\": \"example.com\",\"pr\": \"r\",\"policies\":[{\"policy-type\":2,\"f\":0}]}";
    assert!(parse_datagram_with_notes(bytes).unwrap().1.is_empty());
}

#[test]
fn dpv_other_than_the_string_1_is_refused() {
    for dpv in ["\"2\"", "1", "\"\"", "null", "\"1.0\""] {
        let bytes = format!(
            "{{\"dpv\": {dpv},\"d\": \"example.com\",\"pr\": \"r\",\"policies\":[{{\"policy-type\":2,\"t\":0,\"f\":0}}]}}"
        );
        assert_eq!(kind(bytes.as_bytes()), "unknown-version", "{dpv}");
    }
    let err = parse_datagram(b"{\"dpv\": \"7\",\"d\": \"e.com\",\"pr\": \"r\",\"policies\":[]}")
        .unwrap_err();
    assert!(err.to_string().contains("\"7\""), "{err}");
}

#[test]
fn odd_strings_survive() {
    let odd = b"quote \" backslash \\ slash / tab\t nl\n cr\r bs\x08 ff\x0c ctl\x01\x1f del\x7f \xc3\xa9t\xc3\xa9 \xe2\x80\xa8 \xf0\x9f\x94\x92 {}[],:";
    let mut dr = DeliveryRequest::new(
        b"example.com",
        b"v=TLSRPTv1; rua=mailto:a@example.com,https://r.example/p?x=\"y\"",
    );
    dr.init_policy(POLICY_STS, Some(b"example.com"))
        .add_policy_string(odd)
        .add_mx_host_pattern(odd)
        .add_failure(&Failure {
            code: 205,
            sending_mta_ip: Some(odd),
            receiving_mx_hostname: Some(odd),
            receiving_mx_helo: Some(odd),
            receiving_ip: Some(odd),
            additional_information: Some(odd),
            failure_reason_code: Some(odd),
        })
        .finish_policy(1);
    let (result, notes) = parse_datagram_with_notes(&dr.finish()).unwrap();
    assert!(notes.is_empty(), "{notes:?}");
    let odd = std::str::from_utf8(odd).unwrap();
    assert_eq!(
        result.record,
        "v=TLSRPTv1; rua=mailto:a@example.com,https://r.example/p?x=\"y\""
    );
    let p = &result.policies[0];
    assert_eq!(p.policy.strings, [odd]);
    assert_eq!(p.policy.mx, [odd]);
    let f = &p.failures[0];
    for value in [
        &f.sending_ip,
        &f.receiving_mx,
        &f.receiving_helo,
        &f.receiving_ip,
        &f.additional,
        &f.reason_code,
    ] {
        assert_eq!(value.as_deref(), Some(odd));
    }
}

#[test]
fn bytes_that_are_not_utf8_are_replaced_and_noted() {
    let mut dr = DeliveryRequest::new(b"example.com", RECORD);
    dr.init_policy(POLICY_STS, None)
        .add_failure(&Failure {
            code: 202,
            receiving_mx_helo: Some(b"mx\xff\xfe.example\xc3"),
            ..Failure::default()
        })
        .finish_policy(1);
    let (result, notes) = parse_datagram_with_notes(&dr.finish()).unwrap();
    assert_eq!(notes, [DatagramNote::NotUtf8]);
    assert_eq!(notes[0].kind(), "not-utf8");
    assert_eq!(
        result.policies[0].failures[0].receiving_helo.as_deref(),
        Some("mx\u{fffd}\u{fffd}.example\u{fffd}")
    );
}

#[test]
fn unicode_escapes_from_other_writers_are_read_and_lone_surrogates_refused() {
    let bytes = br#"{"d": "example.com","pr": "r\u00e9","policies":[{"policy-type":2,"f":0,"policy-string":["\ud83d\udd12"]}]}"#;
    let result = parse_datagram(bytes).unwrap();
    assert_eq!(result.record, "r\u{e9}");
    assert_eq!(result.policies[0].policy.strings, ["\u{1f512}"]);
    let lone = br#"{"d": "example.com","pr": "\udc80","policies":[{"policy-type":2,"f":0}]}"#;
    assert_eq!(kind(lone), "not-json");
}

#[test]
fn domains_are_keys() {
    for (sent, key) in [
        ("Example.COM.", "example.com"),
        ("  example.com ", "example.com"),
        ("b\u{fc}cher.example", "xn--bcher-kva.example"),
        ("not a host name.", "not a host name"),
    ] {
        let mut dr = DeliveryRequest::new(sent.as_bytes(), RECORD);
        dr.init_policy(POLICY_STS, Some(sent.to_uppercase().as_bytes()))
            .finish_policy(0);
        let result = parse_datagram(&dr.finish()).unwrap();
        assert_eq!(result.domain, key);
        assert_eq!(result.policies[0].policy.domain.as_deref(), Some(key));
    }
    for empty in ["", ".", "   "] {
        let mut dr = DeliveryRequest::new(empty.as_bytes(), RECORD);
        dr.init_policy(POLICY_STS, None).finish_policy(0);
        assert_eq!(kind(&dr.finish()), "bad-value", "{empty:?}");
    }
    // An empty policy-domain is absent: the recipient domain stands in.
    let mut dr = DeliveryRequest::new(b"example.com", RECORD);
    dr.init_policy(POLICY_STS, Some(b"")).finish_policy(0);
    let result = parse_datagram(&dr.finish()).unwrap();
    assert_eq!(
        result.policies[0].policy.domain.as_deref(),
        Some("example.com")
    );
}

#[test]
fn empty_detail_strings_are_absent() {
    let mut dr = DeliveryRequest::new(b"example.com", RECORD);
    dr.init_policy(POLICY_STS, None)
        .add_failure(&Failure {
            code: 201,
            sending_mta_ip: Some(b""),
            receiving_mx_hostname: Some(b"\0hidden"),
            ..Failure::default()
        })
        .finish_policy(1);
    let result = parse_datagram(&dr.finish()).unwrap();
    let f = &result.policies[0].failures[0];
    assert_eq!((&f.sending_ip, &f.receiving_mx), (&None, &None));
}

#[test]
fn missing_members_are_refused() {
    for (bytes, path) in [
        (&br#"{"pr": "r","policies":[{"policy-type":2,"f":0}]}"#[..], "d"),
        (br#"{"d": "e.com","policies":[{"policy-type":2,"f":0}]}"#, "pr"),
        (br#"{"d": "e.com","pr": "r"}"#, "policies"),
        (
            br#"{"d": "e.com","pr": "r","policies":[{"f":0}]}"#,
            "policies[0].policy-type",
        ),
        (
            br#"{"d": "e.com","pr": "r","policies":[{"policy-type":2,"t":0}]}"#,
            "policies[0].f",
        ),
        (
            br#"{"d": "e.com","pr": "r","policies":[{"policy-type":2,"f":1,"failure-details":[{"s": "1.2.3.4"}]}]}"#,
            "policies[0].failure-details[0].c",
        ),
    ] {
        let err = parse_datagram(bytes).unwrap_err();
        assert_eq!(err, DatagramError::Missing { path: path.into() });
        assert_eq!(err.kind(), "missing-member");
    }
}

#[test]
fn wrong_types_and_values_are_refused() {
    for (bytes, expected) in [
        (&b"[]"[..], "wrong-type"),
        (b"\"x\"", "wrong-type"),
        (br#"{"d": 1,"pr": "r","policies":[{"policy-type":2,"f":0}]}"#, "wrong-type"),
        (br#"{"d": "e.com","pr": null,"policies":[{"policy-type":2,"f":0}]}"#, "wrong-type"),
        (br#"{"d": "e.com","pr": "r","policies":{}}"#, "wrong-type"),
        (br#"{"d": "e.com","pr": "r","policies":[1]}"#, "wrong-type"),
        (br#"{"d": "e.com","pr": "r","policies":[{"policy-type":"sts","f":0}]}"#, "wrong-type"),
        (br#"{"d": "e.com","pr": "r","policies":[{"policy-type":2.5,"f":0}]}"#, "bad-value"),
        (br#"{"d": "e.com","pr": "r","policies":[{"policy-type":2,"f":2}]}"#, "bad-value"),
        (br#"{"d": "e.com","pr": "r","policies":[{"policy-type":2,"f":true}]}"#, "wrong-type"),
        (br#"{"d": "e.com","pr": "r","policies":[{"policy-type":2,"f":0,"policy-string":"x"}]}"#, "wrong-type"),
        (br#"{"d": "e.com","pr": "r","policies":[{"policy-type":2,"f":0,"mx-host":[1]}]}"#, "wrong-type"),
        (br#"{"d": "e.com","pr": "r","policies":[{"policy-type":2,"f":1,"failure-details":{}}]}"#, "wrong-type"),
        (br#"{"d": "e.com","pr": "r","policies":[{"policy-type":2,"f":1,"failure-details":[[]]}]}"#, "wrong-type"),
        (br#"{"d": "e.com","pr": "r","policies":[{"policy-type":2,"f":1,"failure-details":[{"c":"201"}]}]}"#, "wrong-type"),
        (br#"{"d": "e.com","pr": "r","policies":[{"policy-type":2,"f":1,"failure-details":[{"c":201,"n":5}]}]}"#, "wrong-type"),
        (br#"{"d": "e.com","pr": "r","policies":[]}"#, "bad-value"),
        (br#"{"d": "e.com","pr": "r","policies":[{"policy-type":2,"f":0}],"d": "x.com"}"#, "duplicate-member"),
        (br#"{"d": "e.com","pr": "r","policies":[{"policy-type":2,"f":0,"f":1}]}"#, "duplicate-member"),
        (b"", "not-json"),
        (b"{", "not-json"),
        (br#"{"d": "e.com"} x"#, "not-json"),
        (br#"{"d": "e.com","pr": "r","policies":[{"policy-type":2,"f":0}]}{}"#, "not-json"),
    ] {
        assert_eq!(kind(bytes), expected, "{}", String::from_utf8_lossy(bytes));
    }
    // Unknown members are ignored (sys4 does the same), and a null string is absent.
    let bytes = br#"{"x": [1, {"y": null}], "d": "e.com","pr": "r","policies":[{"z": 1,"policy-type":2,"f":1,"policy-domain": null,"failure-details":[{"c":201,"q":"?","s":null}]}]}"#;
    let result = parse_datagram(bytes).unwrap();
    assert_eq!(result.policies[0].failures[0].sending_ip, None);
}

#[test]
fn size_and_depth_are_bounded() {
    let big = vec![b' '; MAX_DATAGRAM_BYTES + 1];
    assert_eq!(
        parse_datagram(&big).unwrap_err(),
        DatagramError::TooLarge {
            size: MAX_DATAGRAM_BYTES + 1,
            limit: MAX_DATAGRAM_BYTES
        }
    );
    // Exactly at the limit is read.
    let mut dr = DeliveryRequest::new(b"example.com", RECORD);
    dr.init_policy(POLICY_STS, None)
        .add_policy_string(b"")
        .finish_policy(0);
    let mut bytes = dr.finish();
    let pad = MAX_DATAGRAM_BYTES - bytes.len();
    let at = bytes.len() - 1;
    bytes.splice(at..at, std::iter::repeat_n(b' ', pad));
    assert_eq!(bytes.len(), MAX_DATAGRAM_BYTES);
    assert!(parse_datagram(&bytes).is_ok());

    let deep = format!(
        "{{\"d\": \"e.com\",\"pr\": \"r\",\"x\": {}{},\"policies\":[{{\"policy-type\":2,\"f\":0}}]}}",
        "[".repeat(500),
        "]".repeat(500)
    );
    assert_eq!(kind(deep.as_bytes()), "not-json");

    let many_policies = format!(
        "{{\"d\": \"e.com\",\"pr\": \"r\",\"policies\":[{}]}}",
        vec![r#"{"policy-type":2,"f":0}"#; MAX_POLICIES_PER_SESSION + 1].join(",")
    );
    assert_eq!(kind(many_policies.as_bytes()), "too-many");
    let many_details = format!(
        "{{\"d\": \"e.com\",\"pr\": \"r\",\"policies\":[{{\"policy-type\":2,\"f\":1,\"failure-details\":[{}]}}]}}",
        vec![r#"{"c":201}"#; MAX_DETAILS_PER_POLICY + 1].join(",")
    );
    assert_eq!(kind(many_details.as_bytes()), "too-many");
    let many_lines = format!(
        "{{\"d\": \"e.com\",\"pr\": \"r\",\"policies\":[{{\"policy-type\":2,\"f\":0,\"mx-host\":[{}]}}]}}",
        vec!["\"a\""; MAX_POLICY_LINES + 1].join(",")
    );
    assert_eq!(kind(many_lines.as_bytes()), "too-many");

    // A 64 KiB policy sent as policy strings fits; a string no report could carry does not.
    let mut dr = DeliveryRequest::new(b"example.com", RECORD);
    dr.init_policy(POLICY_STS, None);
    let line = "mx: \"quoted\".example\t".repeat(60);
    for _ in 0..(64 * 1024 / line.len()) {
        dr.add_policy_string(line.as_bytes());
    }
    dr.finish_policy(0);
    assert!(parse_datagram(&dr.finish()).is_ok());
    let mut dr = DeliveryRequest::new(b"example.com", RECORD);
    dr.init_policy(POLICY_STS, None)
        .add_failure(&Failure {
            code: 205,
            failure_reason_code: Some(&vec![b'x'; MAX_STRING_BYTES + 1]),
            ..Failure::default()
        })
        .finish_policy(1);
    let err = parse_datagram(&dr.finish()).unwrap_err();
    assert_eq!(
        err,
        DatagramError::StringTooLong {
            path: "policies[0].failure-details[0].f".into(),
            limit: MAX_STRING_BYTES
        }
    );
    assert_eq!(err.kind(), "string-too-long");
}

#[test]
fn error_kinds_are_distinct_labels() {
    let errors = [
        DatagramError::TooLarge { size: 0, limit: 0 },
        DatagramError::NotJson {
            message: String::new(),
        },
        DatagramError::DuplicateMember {
            message: String::new(),
        },
        DatagramError::UnknownVersion {
            found: String::new(),
        },
        DatagramError::Missing {
            path: String::new(),
        },
        DatagramError::WrongType {
            path: String::new(),
            expected: "",
            found: "",
        },
        DatagramError::UnknownPolicyType {
            path: String::new(),
            code: String::new(),
        },
        DatagramError::BadValue {
            path: String::new(),
            reason: String::new(),
        },
        DatagramError::TooMany {
            path: String::new(),
            limit: 0,
        },
        DatagramError::StringTooLong {
            path: String::new(),
            limit: 0,
        },
    ];
    let mut kinds: Vec<&str> = errors.iter().map(DatagramError::kind).collect();
    kinds.sort_unstable();
    kinds.dedup();
    assert_eq!(kinds.len(), errors.len());
}

/// Bytes a C string can hold (no NUL; the library would stop there).
fn c_string() -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(1u8..=255, 0..40)
}

proptest! {
    /// Whatever strings the MTA passes, the emitter's datagram reads back to them (invalid UTF-8
    /// replaced, empty detail strings absent).
    #[test]
    fn emitter_round_trip(
        strings in proptest::collection::vec(c_string(), 0..4),
        mx in proptest::collection::vec(c_string(), 0..3),
        details in proptest::collection::vec((
            prop::sample::select(vec![201, 202, 203, 204, 205, 301, 302, 303, 304, 305, 306]),
            proptest::option::of(c_string()),
            proptest::option::of(c_string()),
            proptest::option::of(c_string()),
        ), 0..4),
        failed in any::<bool>(),
        dpv in any::<bool>(),
    ) {
        let mut dr = if dpv {
            DeliveryRequest::new(b"example.com", RECORD)
        } else {
            DeliveryRequest::without_dpv(b"example.com", RECORD)
        };
        dr.init_policy(POLICY_STS, Some(b"example.com"));
        for s in &strings {
            dr.add_policy_string(s);
        }
        for m in &mx {
            dr.add_mx_host_pattern(m);
        }
        for (code, helo, info, reason) in &details {
            dr.add_failure(&Failure {
                code: *code,
                receiving_mx_helo: helo.as_deref(),
                additional_information: info.as_deref(),
                failure_reason_code: reason.as_deref(),
                ..Failure::default()
            });
        }
        dr.finish_policy(i32::from(failed));
        let result = parse_datagram(&dr.finish()).unwrap();
        let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        let optional = |b: &Option<Vec<u8>>| b.as_deref().map(text).filter(|s| !s.is_empty());
        let p = &result.policies[0];
        prop_assert_eq!(p.failed, failed || !details.is_empty());
        prop_assert_eq!(&p.policy.strings, &strings.iter().map(|s| text(s)).collect::<Vec<_>>());
        prop_assert_eq!(&p.policy.mx, &mx.iter().map(|s| text(s)).collect::<Vec<_>>());
        prop_assert_eq!(p.failures.len(), details.len());
        for (got, (code, helo, info, reason)) in p.failures.iter().zip(&details) {
            prop_assert_eq!(Some(got.result_type.clone()), result_type_of_code(i64::from(*code)));
            prop_assert_eq!(&got.receiving_helo, &optional(helo));
            prop_assert_eq!(&got.additional, &optional(info));
            prop_assert_eq!(&got.reason_code, &optional(reason));
        }
    }

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = parse_datagram(&bytes);
    }

    /// Mutations of a real datagram (a byte replaced, a cut) never panic.
    #[test]
    fn mutated_datagrams_never_panic(at in 0usize..POSTFIX_FAILURE.len(), byte in any::<u8>(), cut in any::<bool>()) {
        let mut bytes = POSTFIX_FAILURE.to_vec();
        if cut {
            bytes.truncate(at);
        } else {
            bytes[at] = byte;
        }
        let _ = parse_datagram(&bytes);
    }
}

#[test]
fn failure_details_make_a_failure_whatever_f_says() {
    let bytes = b"{\"d\": \"example.com\",\"pr\": \"r\",\"policies\":[{\"policy-type\":2,\"failure-details\":[{\"c\":302}],\"t\":1,\"f\":0},{\"policy-type\":9,\"t\":0,\"f\":0}]}";
    let (result, notes) = parse_datagram_with_notes(bytes).unwrap();
    assert!(result.policies[0].failed);
    assert!(!result.policies[1].failed);
    assert_eq!(notes, [DatagramNote::FailureDetailsOnSuccess { policy: 0 }]);
    assert_eq!(notes[0].kind(), "failure-details-on-success");
}
