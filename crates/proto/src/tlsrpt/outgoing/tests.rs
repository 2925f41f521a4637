//! Tests of the sending side: built reports read back with the crate's own report reader
//! without notes (examples and properties over random aggregates and size caps), the size-cap
//! reduction, the names, and the report mail read with an independent MIME parser.

use proptest::prelude::*;

use super::mail::rfc5322_date;
use super::*;
use crate::ResultType;
use crate::tlsrpt::report::{MAX_COUNT, PolicyType, TlsReport};
use crate::tlsrpt::session::{FailureKey, PolicyKey};

/// 2026-12-07T00:00:00Z.
const DAY: i64 = 1_796_601_600;

fn meta() -> ReportMeta {
    ReportMeta {
        organization: "Example \"Mail\"".into(),
        contact: "tlsrpt@sender.example".into(),
        day: DAY,
        domain: "example.com".into(),
        report_id: report_id(
            DAY,
            "example.com",
            "v=TLSRPTv1; rua=mailto:r@example.com",
            "sender.example",
        ),
    }
}

fn sts() -> PolicyKey {
    PolicyKey {
        policy_type: PolicyType::Sts,
        domain: Some("example.com".into()),
        strings: vec![
            "version: STSv1".into(),
            "mode: testing".into(),
            "mx: *.mx.example.com".into(),
            "max_age: 86400".into(),
        ],
        mx: vec!["*.mx.example.com".into()],
    }
}

fn detail(result_type: ResultType, mx: &str) -> FailureKey {
    FailureKey {
        result_type,
        sending_ip: Some("192.0.2.1".into()),
        receiving_mx: Some(mx.into()),
        receiving_helo: None,
        receiving_ip: Some("198.51.100.2".into()),
        additional: None,
        reason_code: Some("reason".into()),
    }
}

fn aggregate() -> Vec<AggregatedPolicy> {
    vec![
        AggregatedPolicy {
            policy: sts(),
            successes: 90,
            failures: 12,
            details: vec![
                (
                    detail(ResultType::CertificateExpired, "a.mx.example.com"),
                    2,
                ),
                (
                    detail(ResultType::ValidationFailure, "b.mx.example.com"),
                    10,
                ),
            ],
        },
        AggregatedPolicy {
            policy: PolicyKey {
                policy_type: PolicyType::NoPolicyFound,
                domain: None,
                strings: vec![],
                mx: vec![],
            },
            successes: 3,
            failures: 0,
            details: vec![],
        },
    ]
}

#[test]
fn a_built_report_reads_back_without_notes() {
    let built = build_report(&meta(), &aggregate(), DEFAULT_MAX_REPORT_BYTES).unwrap();
    assert_eq!(built.details_dropped, 0);
    let report = TlsReport::parse(built.json.as_bytes()).unwrap();
    assert!(report.notes.is_empty(), "{:?}", report.notes);
    assert_eq!(report.organization, "Example \"Mail\"");
    assert_eq!(report.contact.as_deref(), Some("tlsrpt@sender.example"));
    assert_eq!(report.report_id, meta().report_id);
    assert_eq!(report.begin.to_string(), "2026-12-07T00:00:00Z");
    assert_eq!(report.end.to_string(), "2026-12-07T23:59:59Z");
    assert_eq!(report.policies.len(), 2);
    // Sorted by key: "no-policy-found" before "sts".
    let none = &report.policies[0];
    assert_eq!(none.policy_type, PolicyType::NoPolicyFound);
    assert_eq!(none.domain.as_deref(), Some("example.com"), "sys4 #51");
    assert_eq!((none.success, none.failure), (3, 0));
    assert!(none.failures.is_empty());
    assert!(
        built
            .json
            .contains(r#""total-failure-session-count":0},"failure-details":[]}"#)
    );
    let p = &report.policies[1];
    assert_eq!(p.policy_type, PolicyType::Sts);
    assert_eq!(p.strings, sts().strings);
    assert_eq!(p.mx, sts().mx);
    assert_eq!((p.success, p.failure), (90, 12));
    // Largest count first.
    assert_eq!(p.failures[0].count, 10);
    assert_eq!(p.failures[0].result, ResultType::ValidationFailure);
    assert_eq!(p.failures[1].count, 2);
    assert_eq!(
        p.failures[1].receiving_mx.as_deref(),
        Some("a.mx.example.com")
    );
    assert_eq!(p.failures[1].reason_code.as_deref(), Some("reason"));
    // RFC names exactly, none of the prose names (C119, C120).
    for name in [
        "\"organization-name\"",
        "\"date-range\"",
        "\"start-datetime\"",
        "\"end-datetime\"",
        "\"contact-info\"",
        "\"report-id\"",
        "\"policy-type\"",
        "\"policy-string\"",
        "\"policy-domain\"",
        "\"mx-host\"",
        "\"total-successful-session-count\"",
        "\"total-failure-session-count\"",
        "\"failure-details\"",
        "\"result-type\"",
        "\"sending-mta-ip\"",
        "\"receiving-mx-hostname\"",
        "\"receiving-ip\"",
        "\"failed-session-count\"",
        "\"failure-reason-code\"",
    ] {
        assert!(built.json.contains(name), "{name}");
    }
    for prose in [
        "mx-host-pattern",
        "additional-info-uri",
        "email-address",
        "ip-address",
    ] {
        assert!(!built.json.contains(prose), "{prose}");
    }
}

#[test]
fn building_is_deterministic_whatever_the_input_order() {
    let mut reversed = aggregate();
    reversed.reverse();
    reversed[1].details.reverse();
    assert_eq!(
        build_report(&meta(), &aggregate(), DEFAULT_MAX_REPORT_BYTES),
        build_report(&meta(), &reversed, DEFAULT_MAX_REPORT_BYTES)
    );
}

#[test]
fn equal_policies_and_details_are_merged() {
    let mut twice = aggregate();
    twice.extend(aggregate());
    twice[0].details.push((
        detail(ResultType::CertificateExpired, "a.mx.example.com"),
        5,
    ));
    let built = build_report(&meta(), &twice, DEFAULT_MAX_REPORT_BYTES).unwrap();
    let report = TlsReport::parse(built.json.as_bytes()).unwrap();
    assert_eq!(report.policies.len(), 2);
    let p = &report.policies[1];
    assert_eq!((p.success, p.failure), (180, 24));
    let counts: Vec<u64> = p.failures.iter().map(|f| f.count).collect();
    assert_eq!(counts, [20, 9]);
    // A policy without a domain is the report domain's: it merges with the explicit one.
    let mut implicit = aggregate();
    implicit[0].policy.domain = None;
    implicit.extend(aggregate());
    let report = TlsReport::parse(
        build_report(&meta(), &implicit, DEFAULT_MAX_REPORT_BYTES)
            .unwrap()
            .json
            .as_bytes(),
    )
    .unwrap();
    assert_eq!(report.policies.len(), 2);
    // Zero-count details are left out.
    let mut zero = aggregate();
    zero[0].details[0].1 = 0;
    let report = TlsReport::parse(
        build_report(&meta(), &zero, DEFAULT_MAX_REPORT_BYTES)
            .unwrap()
            .json
            .as_bytes(),
    )
    .unwrap();
    assert_eq!(report.policies[1].failures.len(), 1);
}

fn many_details(n: u64) -> Vec<AggregatedPolicy> {
    let mut policies = aggregate();
    policies[0].details = (1..=n)
        .map(|i| {
            (
                detail(
                    ResultType::CertificateNotTrusted,
                    &format!("mx{i}.example.com"),
                ),
                i,
            )
        })
        .collect();
    policies[0].failures = n * (n + 1) / 2;
    policies
}

#[test]
fn over_the_cap_the_smallest_details_go_and_summaries_stay() {
    let policies = many_details(200);
    let full = build_report(&meta(), &policies, DEFAULT_MAX_REPORT_BYTES).unwrap();
    assert_eq!(full.details_dropped, 0);
    let cap = full.json.len() / 2;
    let built = build_report(&meta(), &policies, cap).unwrap();
    assert!(built.json.len() <= cap, "{} > {cap}", built.json.len());
    assert!(built.details_dropped > 0);
    let report = TlsReport::parse(built.json.as_bytes()).unwrap();
    assert!(report.notes.is_empty(), "{:?}", report.notes);
    let p = &report.policies[1];
    assert_eq!((p.success, p.failure), (90, 200 * 201 / 2));
    assert_eq!(p.failures.len() + built.details_dropped, 200);
    // Exactly the largest counts are kept, and one more would not fit.
    let kept: Vec<u64> = p.failures.iter().map(|f| f.count).collect();
    let expected: Vec<u64> = (1..=200).rev().take(kept.len()).collect();
    assert_eq!(kept, expected);
    let one_more = build_report(&meta(), &policies, cap + 1000).unwrap();
    assert!(one_more.details_dropped < built.details_dropped);
    // Dropping every detail leaves an empty failure-details array.
    let summaries_only = {
        let mut none = policies.clone();
        none[0].details.clear();
        build_report(&meta(), &none, DEFAULT_MAX_REPORT_BYTES)
            .unwrap()
            .json
    };
    let bare = build_report(&meta(), &policies, summaries_only.len()).unwrap();
    assert_eq!(bare.json, summaries_only);
    assert_eq!(bare.details_dropped, 200);
    assert_eq!(
        build_report(&meta(), &policies, summaries_only.len() - 1),
        Err(BuildError::TooLarge {
            size: summaries_only.len(),
            limit: summaries_only.len() - 1
        })
    );
}

#[test]
fn bad_meta_and_counts_are_refused() {
    type Change = fn(&mut ReportMeta);
    let cases: [(Change, &str); 6] = [
        (|m| m.organization = " ".into(), "organization"),
        (|m| m.contact = String::new(), "contact"),
        (|m| m.report_id = String::new(), "report-id"),
        (|m| m.domain = String::new(), "domain"),
        (|m| m.day += 1, "midnight"),
        (|m| m.day = 300_000_000_000, "0000-9999"),
    ];
    for (change, what) in cases {
        let mut m = meta();
        change(&mut m);
        let err = build_report(&m, &aggregate(), DEFAULT_MAX_REPORT_BYTES).unwrap_err();
        assert!(matches!(err, BuildError::BadMeta(_)), "{what}: {err}");
        assert!(err.to_string().contains(what), "{what}: {err}");
    }
    let mut huge = aggregate();
    huge[0].successes = MAX_COUNT;
    huge.push(huge[0].clone());
    assert!(matches!(
        build_report(&meta(), &huge, DEFAULT_MAX_REPORT_BYTES),
        Err(BuildError::CountTooLarge { .. })
    ));
    let mut huge = aggregate();
    huge[0].details[0].1 = u64::MAX;
    assert!(matches!(
        build_report(&meta(), &huge, DEFAULT_MAX_REPORT_BYTES),
        Err(BuildError::CountTooLarge { .. })
    ));
    // The biggest exact count is fine.
    let mut max = aggregate();
    max[0].successes = MAX_COUNT;
    let built = build_report(&meta(), &max, DEFAULT_MAX_REPORT_BYTES).unwrap();
    assert_eq!(
        TlsReport::parse(built.json.as_bytes()).unwrap().policies[1].success,
        MAX_COUNT
    );
    let too_many: Vec<AggregatedPolicy> = (0..=crate::tlsrpt::report::MAX_POLICIES)
        .map(|i| AggregatedPolicy {
            policy: PolicyKey {
                policy_type: PolicyType::Sts,
                domain: None,
                strings: vec![i.to_string()],
                mx: vec![],
            },
            successes: 1,
            failures: 0,
            details: vec![],
        })
        .collect();
    assert!(matches!(
        build_report(&meta(), &too_many, usize::MAX),
        Err(BuildError::TooManyPolicies { .. })
    ));
}

#[test]
fn report_ids_are_stable_unique_and_msg_id_safe() {
    let a = report_id(
        DAY,
        "example.com",
        "v=TLSRPTv1; rua=mailto:a@example.com",
        "sender.example",
    );
    assert_eq!(
        a,
        report_id(
            DAY,
            "example.com",
            "v=TLSRPTv1; rua=mailto:a@example.com",
            "sender.example"
        )
    );
    assert!(a.starts_with("2026-12-07.example.com."), "{a}");
    assert_eq!(a.len(), "2026-12-07.example.com.".len() + 16);
    let others = [
        report_id(
            DAY + 86_400,
            "example.com",
            "v=TLSRPTv1; rua=mailto:a@example.com",
            "sender.example",
        ),
        report_id(
            DAY,
            "example.org",
            "v=TLSRPTv1; rua=mailto:a@example.com",
            "sender.example",
        ),
        report_id(
            DAY,
            "example.com",
            "v=TLSRPTv1; rua=mailto:b@example.com",
            "sender.example",
        ),
        report_id(
            DAY,
            "example.com",
            "v=TLSRPTv1; rua=mailto:a@example.com",
            "other.example",
        ),
        // Moving text between the parts changes the id too.
        report_id(
            DAY,
            "example.co",
            "mv=TLSRPTv1; rua=mailto:a@example.com",
            "sender.example",
        ),
    ];
    for other in &others {
        assert_ne!(&a, other);
    }
    let odd = report_id(DAY, "we<ird> @dom\"ain", "r", "s");
    assert!(
        odd.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.'),
        "{odd}"
    );
    let none = report_id(DAY, "@@@", "r", "s");
    assert_eq!(none.len(), "2026-12-07.".len() + 16, "{none}");
}

#[test]
fn submitter_is_the_contact_domain() {
    assert_eq!(submitter("tlsrpt@sender.example"), Some("sender.example"));
    assert_eq!(submitter(" a@b@Sender.Example. "), Some("Sender.Example"));
    assert_eq!(submitter("<tlsrpt@sender.example>"), Some("sender.example"));
    assert_eq!(submitter("sender.example"), None);
    assert_eq!(submitter("tlsrpt@"), None);
    assert_eq!(submitter("tlsrpt@bad domain"), None);
}

#[test]
fn file_names_follow_rfc_8460_5_1() {
    assert_eq!(
        file_name(
            "mail.sender.example",
            "example.com",
            1_470_009_600,
            "a-1",
            true
        ),
        "mail.sender.example!example.com!1470009600!1470095999!a1.json.gz"
    );
    assert_eq!(
        file_name("s.example", "example.com", DAY, "", false),
        format!("s.example!example.com!{DAY}!{}.json", DAY + 86_399)
    );
    assert_eq!(
        file_name("s.example", "example.com", DAY, "-.!", false),
        format!("s.example!example.com!{DAY}!{}.json", DAY + 86_399)
    );
    // Never a path, never an extra `!` field.
    assert_eq!(
        file_name("s/x", "../../etc/p!w d", DAY, "1", false),
        format!("s_x!.._.._etc_p_w_d!{DAY}!{}!1.json", DAY + 86_399)
    );
    assert_eq!(
        file_name("", "..", DAY, "", true),
        format!("_!__!{DAY}!{}.json.gz", DAY + 86_399)
    );
}

#[test]
fn dates_are_rfc_5322() {
    assert_eq!(rfc5322_date(0), "Thu, 01 Jan 1970 00:00:00 +0000");
    assert_eq!(
        rfc5322_date(1_796_767_520),
        "Tue, 08 Dec 2026 22:05:20 +0000"
    );
    assert_eq!(rfc5322_date(-1), "Wed, 31 Dec 1969 23:59:59 +0000");
    assert_eq!(rfc5322_date(951_782_400), "Tue, 29 Feb 2000 00:00:00 +0000");
}

fn mail<'a>(gz: &'a [u8], id: &'a str, organization: &'a str) -> ReportMail<'a> {
    ReportMail {
        from: "tlsrpt@sender.example",
        to: "reports@example.com",
        domain: "example.com",
        submitter: "sender.example",
        report_id: id,
        organization,
        date: 1_796_767_520,
        message_id: "abc.1@sender.example",
        file_name: "sender.example!example.com!1796601600!1796687999!1.json.gz",
        gz,
    }
}

#[test]
fn the_report_mail_is_rfc_8460_5_3() {
    use mail_parser::{MessageParser, MimeHeaders};
    let gz: Vec<u8> = (0..=255u8).cycle().take(1000).collect();
    let id = "2026-12-07.example.com.0123456789abcdef";
    let bytes = compose_mail(&mail(&gz, id, "Example Mail"));
    let text = String::from_utf8(bytes.clone()).unwrap();
    assert!(text.is_ascii());
    // CRLF only, short lines.
    assert!(!text.replace("\r\n", "").contains(['\r', '\n']));
    assert!(text.split("\r\n").all(|line| line.len() <= 78), "{text}");
    let (head, _) = text.split_once("\r\n\r\n").unwrap();
    for header in [
        "From: tlsrpt@sender.example",
        "To: reports@example.com",
        "Date: Tue, 08 Dec 2026 22:05:20 +0000",
        "Message-ID: <abc.1@sender.example>",
        "TLS-Report-Domain: example.com",
        "TLS-Report-Submitter: sender.example",
        "TLS-Required: No",
        "MIME-Version: 1.0",
        "Content-Type: multipart/report; report-type=\"tlsrpt\";",
    ] {
        assert!(
            head.contains(&format!("{header}\r\n")),
            "{header} in {head}"
        );
    }
    for name in SIGNED_HEADERS {
        assert!(
            head.contains(&format!("\r\n{name}: ")) || head.starts_with(&format!("{name}: ")),
            "{name}"
        );
    }

    let message = MessageParser::default().parse(&bytes).unwrap();
    assert_eq!(
        message.subject(),
        Some(
            "Report Domain: example.com Submitter: sender.example Report-ID: <2026-12-07.example.com.0123456789abcdef@sender.example>"
        )
    );
    let ct = message.content_type().unwrap();
    assert_eq!(ct.ctype(), "multipart");
    assert_eq!(ct.subtype(), Some("report"));
    assert_eq!(ct.attribute("report-type"), Some("tlsrpt"));
    assert_eq!(message.attachment_count(), 1);
    let attachment = message.attachment(0).unwrap();
    let act = attachment.content_type().unwrap();
    assert_eq!(
        (act.ctype(), act.subtype()),
        ("application", Some("tlsrpt+gzip"))
    );
    assert_eq!(
        attachment.attachment_name(),
        Some("sender.example!example.com!1796601600!1796687999!1.json.gz")
    );
    assert_eq!(attachment.contents(), &gz[..]);
    let body = message.body_text(0).unwrap();
    assert!(body.contains("Example Mail"), "{body}");
}

#[test]
fn the_mail_survives_odd_values() {
    use mail_parser::MessageParser;
    let gz = b"\x1f\x8b";
    // A long id folds the Subject; a CR/LF in a value cannot add a header; a non-ASCII
    // organization is base64 in the text part.
    let id = "2026-12-07.a-very-long-recipient-domain-name.example.com.0123456789abcdef";
    let mut m = mail(gz, id, "Caf\u{e9} \r\nBcc: victim@example.net");
    m.domain = "example.com\r\nBcc: victim@example.net";
    m.message_id = "<id@sender.example>";
    let bytes = compose_mail(&m);
    let text = String::from_utf8(bytes.clone()).unwrap();
    assert!(text.is_ascii());
    assert!(!text.contains("\r\nBcc:"), "{text}");
    assert!(text.split("\r\n").all(|line| line.len() <= 998));
    assert!(text.contains("Message-ID: <id@sender.example>\r\n"));
    let message = MessageParser::default().parse(&bytes).unwrap();
    assert!(
        message
            .subject()
            .unwrap()
            .ends_with(&format!("Report-ID: <{id}@sender.example>"))
    );
    assert!(message.body_text(0).unwrap().contains("Caf\u{e9}"));
    assert_eq!(message.attachment(0).unwrap().contents(), gz);
    // Empty attachment: still a valid part.
    let bytes = compose_mail(&mail(b"", "x", "O"));
    let message = MessageParser::default().parse(&bytes).unwrap();
    assert_eq!(message.attachment(0).unwrap().contents(), b"");
}

fn strategy_policies() -> impl Strategy<Value = Vec<AggregatedPolicy>> {
    let policy = (
        crate::tlsrpt::session::tests::policy_key().prop_filter("registered types", |p| {
            !matches!(p.policy_type, PolicyType::Other(_))
        }),
        0u64..1000,
        0u64..1000,
        proptest::collection::vec(
            (
                crate::tlsrpt::session::tests::failure_key().prop_filter("registered types", |f| {
                    !matches!(f.result_type, ResultType::Other(_))
                }),
                0u64..100,
            ),
            0..6,
        ),
    )
        .prop_map(|(mut policy, successes, failures, details)| {
            // Empty strings are absent in sessions (the reader would note them).
            policy.domain = policy.domain.filter(|d| !d.is_empty());
            let details: Vec<(FailureKey, u64)> = details
                .into_iter()
                .map(|(mut f, n)| {
                    for field in [
                        &mut f.sending_ip,
                        &mut f.receiving_mx,
                        &mut f.receiving_helo,
                        &mut f.receiving_ip,
                        &mut f.additional,
                        &mut f.reason_code,
                    ] {
                        *field = field.take().filter(|s| !s.is_empty());
                    }
                    (f, n)
                })
                .collect();
            // As sessions aggregate: each failed session brings at most one detail (several
            // details per session make the reader note a sum above the total, C125).
            let sum: u64 = details.iter().map(|(_, n)| n).sum();
            AggregatedPolicy {
                policy,
                successes,
                failures: failures + sum,
                details,
            }
        });
    proptest::collection::vec(policy, 0..6)
}

proptest! {
    /// Any aggregate builds a report that reads back without notes, with every policy's sums
    /// exact, and within any cap it fits (or an error says it cannot).
    #[test]
    fn built_reports_read_back_with_exact_sums(policies in strategy_policies(), cap in 300usize..4000) {
        let m = meta();
        for max in [usize::MAX, cap] {
            let built = match build_report(&m, &policies, max) {
                Ok(built) => built,
                Err(BuildError::TooLarge { size, limit }) => {
                    prop_assert!(size > limit);
                    continue;
                }
                Err(e) => return Err(TestCaseError::fail(e.to_string())),
            };
            prop_assert!(built.json.len() <= max);
            let report = TlsReport::parse(built.json.as_bytes()).unwrap();
            prop_assert!(report.notes.is_empty(), "{:?}", report.notes);
            // Expected sums per policy key.
            let mut expected = std::collections::BTreeMap::new();
            let mut details = std::collections::BTreeSet::new();
            for p in &policies {
                let mut key = p.policy.clone();
                key.domain = key.domain.or(Some(m.domain.clone()));
                let e = expected.entry(key.to_key()).or_insert((0u64, 0u64, 0u64));
                e.0 += p.successes;
                e.1 += p.failures;
                for (f, n) in &p.details {
                    e.2 += n;
                    if *n > 0 {
                        details.insert((key.to_key(), f.to_key()));
                    }
                }
            }
            prop_assert_eq!(report.policies.len(), expected.len());
            let mut written = 0;
            for (r, (key, (s, f, d))) in report.policies.iter().zip(&expected) {
                let got = PolicyKey {
                    policy_type: r.policy_type.clone(),
                    domain: r.domain.clone(),
                    strings: r.strings.clone(),
                    mx: r.mx.clone(),
                };
                prop_assert_eq!(&got.to_key(), key);
                prop_assert_eq!((r.success, r.failure), (*s, *f));
                let sum: u64 = r.failures.iter().map(|x| x.count).sum();
                written += r.failures.len();
                if built.details_dropped == 0 {
                    prop_assert_eq!(sum, *d);
                } else {
                    prop_assert!(sum <= *d);
                }
                prop_assert!(r.failures.windows(2).all(|w| w[0].count >= w[1].count));
            }
            prop_assert_eq!(written + built.details_dropped, details.len());
        }
    }
}

/// The one note a built report can carry: an MTA that reports two failure details for one
/// session (libtlsrpt allows it; result types are not exclusive, RFC 8460 §4, C125) makes the
/// details sum above the session count, and the reader says so. The counts stay as reported.
#[test]
fn several_details_for_one_session_sum_above_the_total() {
    let mut policies = aggregate();
    policies[0].failures = 1;
    policies[0].details = vec![
        (detail(ResultType::StsPolicyInvalid, "a.mx.example.com"), 1),
        (detail(ResultType::StsWebpkiInvalid, "a.mx.example.com"), 1),
    ];
    let built = build_report(&meta(), &policies, DEFAULT_MAX_REPORT_BYTES).unwrap();
    let report = TlsReport::parse(built.json.as_bytes()).unwrap();
    let codes: Vec<&str> = report.notes.iter().map(|n| n.code.as_str()).collect();
    assert_eq!(codes, ["failure-sum-above-total"]);
    assert_eq!(report.policies[1].failure, 1);
    assert_eq!(report.policies[1].failures.len(), 2);
}

#[test]
fn aggregated_policies_come_from_stored_keys() {
    let stored = [(
        detail(ResultType::CertificateExpired, "a.mx.example.com").to_key(),
        4,
    )];
    let policy = AggregatedPolicy::from_keys(&sts().to_key(), 7, 4, &stored).unwrap();
    assert_eq!(policy.policy, sts());
    assert_eq!((policy.successes, policy.failures), (7, 4));
    assert_eq!(
        policy.details,
        [(
            detail(ResultType::CertificateExpired, "a.mx.example.com"),
            4
        )]
    );
    assert!(AggregatedPolicy::from_keys("{}", 0, 0, &[]).is_err());
    assert!(AggregatedPolicy::from_keys(&sts().to_key(), 0, 0, &[("x".into(), 1)]).is_err());
}
