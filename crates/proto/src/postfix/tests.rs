//! Policy table answers (interop §1.5–§1.7): levels, the STS answer per style, and the
//! reader that checks them.

use proptest::prelude::*;

use super::*;
use crate::socketmap::Reply;

const BODY: &str = "version: STSv1\r\nmode: enforce\r\nmx: mx1.example.com\r\nmx: *.mx.example.com\r\nmax_age: 86400\r\n";

fn policy(body: &str) -> Policy {
    Policy::parse(body).unwrap()
}

fn lines(body: &str) -> Vec<String> {
    policy_lines(body)
}

fn attrs(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
        .collect()
}

// --- levels -------------------------------------------------------------------------------

#[test]
fn level_keywords_round_trip() {
    for keyword in [
        "none",
        "may",
        "encrypt",
        "verify",
        "secure",
        "dane",
        "dane-only",
    ] {
        let level: TlsLevel = keyword.parse().unwrap();
        assert_eq!(level.to_string(), keyword);
        assert_eq!(render_level(&level, &AnswerStyle::POSTFIX_3_3), keyword);
    }
}

#[test]
fn level_unknown() {
    for bad in ["fingerprint", "Secure", "", "dane_only", " may"] {
        assert_eq!(
            bad.parse::<TlsLevel>(),
            Err(TlsLevelError::Unknown(bad.to_owned())),
            "{bad:?}"
        );
    }
}

/// `name: level, style => answer,` asserts `render_level`.
macro_rules! level_cases {
    ($($name:ident: $level:expr, $style:expr => $answer:expr,)*) => {$(
        #[test]
        fn $name() {
            assert_eq!(render_level(&$level, &$style), $answer);
        }
    )*};
}

fn secure(matches: &[&str]) -> TlsLevel {
    TlsLevel::Secure {
        matches: matches.iter().map(|m| (*m).to_owned()).collect(),
    }
}

fn verify(matches: &[&str]) -> TlsLevel {
    TlsLevel::Verify {
        matches: matches.iter().map(|m| (*m).to_owned()).collect(),
    }
}

level_cases! {
    level_may_ignores_servername: TlsLevel::May, AnswerStyle::POSTFIX_3_10 => "may",
    level_dane_only: TlsLevel::DaneOnly, AnswerStyle::POSTFIX_3_10 => "dane-only",
    level_secure_default_match: secure(&[]), AnswerStyle::POSTFIX_3_10 => "secure",
    level_secure_matches: secure(&["nexthop", ".example.com"]), AnswerStyle::POSTFIX_3_3 => "secure match=nexthop:.example.com",
    level_secure_matches_servername: secure(&["mx.example.com"]), AnswerStyle::POSTFIX_3_4 => "secure match=mx.example.com servername=hostname",
    level_verify_default_servername: verify(&[]), AnswerStyle::POSTFIX_3_4 => "verify servername=hostname",
    level_verify_matches: verify(&["hostname"]), AnswerStyle::POSTFIX_3_3 => "verify match=hostname",
    level_invalid_matches_dropped: secure(&["", "a b", "x:y", "{z}", "ok.example"]), AnswerStyle::POSTFIX_3_3 => "secure match=ok.example",
    c95_no_empty_match: secure(&["", " "]), AnswerStyle::POSTFIX_3_4 => "secure",
}

#[test]
fn match_entries() {
    assert!(is_valid_match_entry("dot-nexthop"));
    assert!(is_valid_match_entry(".example.com"));
    for bad in ["", "a b", "a:b", "a,b", "{", "}", "a=b", "é", "a\tb"] {
        assert!(!is_valid_match_entry(bad), "{bad:?}");
    }
}

// --- the STS answer -------------------------------------------------------------------------

#[test]
fn sts_legacy_style() {
    let answer = render_sts(
        "example.com",
        &policy(BODY),
        &lines(BODY),
        &AnswerStyle::POSTFIX_3_3,
    );
    assert_eq!(answer, "secure match=mx1.example.com:.mx.example.com");
}

#[test]
fn sts_servername_style() {
    let answer = render_sts(
        "example.com",
        &policy(BODY),
        &lines(BODY),
        &AnswerStyle::POSTFIX_3_4,
    );
    assert_eq!(
        answer,
        "secure match=mx1.example.com:.mx.example.com servername=hostname"
    );
}

#[test]
fn sts_attributes_style() {
    let answer = render_sts(
        "Example.COM",
        &policy(BODY),
        &lines(BODY),
        &AnswerStyle::POSTFIX_3_10,
    );
    assert_eq!(
        answer,
        "secure match=mx1.example.com:.mx.example.com servername=hostname \
         policy_type=sts policy_domain=example.com \
         mx_host_pattern=mx1.example.com mx_host_pattern=*.mx.example.com \
         { policy_string = version: STSv1 } { policy_string = mode: enforce } \
         { policy_string = mx: mx1.example.com } { policy_string = mx: *.mx.example.com } \
         { policy_string = max_age: 86400 }"
    );
    let data = parse_reply_data(&answer).unwrap();
    assert_eq!(data.level, "secure");
    assert_eq!(
        data.attributes,
        attrs(&[
            ("match", "mx1.example.com:.mx.example.com"),
            ("servername", "hostname"),
            ("policy_type", "sts"),
            ("policy_domain", "example.com"),
            ("mx_host_pattern", "mx1.example.com"),
            ("mx_host_pattern", "*.mx.example.com"),
            ("policy_string", "version: STSv1"),
            ("policy_string", "mode: enforce"),
            ("policy_string", "mx: mx1.example.com"),
            ("policy_string", "mx: *.mx.example.com"),
            ("policy_string", "max_age: 86400"),
        ])
    );
}

#[test]
fn sts_attributes_without_servername() {
    let style = AnswerStyle {
        servername: false,
        sts_attributes: true,
    };
    let data = parse_reply_data(&render_sts("example.com", &policy(BODY), &[], &style)).unwrap();
    assert_eq!(data.get("servername"), None);
    assert_eq!(data.get("policy_type"), Some("sts"));
    assert!(data.all("policy_string").is_empty());
}

#[test]
fn policy_string_keeps_original_order_and_extensions() {
    let body = "version: STSv1\nmx: b.example\nmode: enforce\nmax_age: 600\nmx: a.example\nx-note: a, b = c\n";
    let answer = render_sts(
        "example.com",
        &policy(body),
        &lines(body),
        &AnswerStyle::POSTFIX_3_10,
    );
    let data = parse_reply_data(&answer).unwrap();
    assert_eq!(
        data.all("policy_string"),
        [
            "version: STSv1",
            "mx: b.example",
            "mode: enforce",
            "max_age: 600",
            "mx: a.example",
            "x-note: a, b = c"
        ]
    );
    assert_eq!(data.get("match"), Some("b.example:a.example"));
}

#[test]
fn policy_string_leaves_out_braces_and_line_breaks() {
    let body = "version: STSv1\nmode: enforce\nmx: a.example\nmax_age: 600\n";
    let mut policy_lines = lines(body);
    policy_lines.push("x-a: {".into());
    policy_lines.push("x-b: }".into());
    policy_lines.push("x-c: one\rtwo".into());
    policy_lines.push("x-d: one\ntwo".into());
    policy_lines.push("   ".into());
    let data = parse_reply_data(&render_sts(
        "example.com",
        &policy(body),
        &policy_lines,
        &AnswerStyle::POSTFIX_3_10,
    ))
    .unwrap();
    assert_eq!(data.all("policy_string").len(), 4);
}

#[test]
fn c65_ip_patterns_are_left_out() {
    let body = "version: STSv1\nmode: enforce\nmx: 192.0.2.1\nmx: mx.example.com\nmax_age: 600\n";
    let data = parse_reply_data(&render_sts(
        "example.com",
        &policy(body),
        &lines(body),
        &AnswerStyle::POSTFIX_3_10,
    ))
    .unwrap();
    assert_eq!(data.get("match"), Some("mx.example.com"));
    assert_eq!(data.all("mx_host_pattern"), ["mx.example.com"]);
    // The original line is still reported in policy_string.
    assert!(data.all("policy_string").contains(&"mx: 192.0.2.1"));
}

#[test]
fn tlspol_95_only_ip_patterns_give_no_sts_answer() {
    let body = "version: STSv1\nmode: enforce\nmx: 192.0.2.1\nmx: 198.51.100.7\nmax_age: 600\n";
    let policy = policy(body);
    for style in [
        AnswerStyle::POSTFIX_3_3,
        AnswerStyle::POSTFIX_3_4,
        AnswerStyle::POSTFIX_3_10,
    ] {
        assert_eq!(
            sts_answer("example.com", &policy, &lines(body), &style),
            None
        );
        let answer = render_sts("example.com", &policy, &lines(body), &style);
        let data = parse_reply_data(&answer).unwrap();
        assert_eq!(data.level, "secure");
        assert_eq!(data.all("match"), ["nexthop"], "{answer}");
        assert!(data.all("mx_host_pattern").is_empty());
    }
}

#[test]
fn repeated_patterns_written_once() {
    let body = "version: STSv1\nmode: enforce\nmx: a.example\nmx: A.example\nmx: *.a.example\nmax_age: 600\n";
    let data = parse_reply_data(&render_sts(
        "example.com",
        &policy(body),
        &[],
        &AnswerStyle::POSTFIX_3_10,
    ))
    .unwrap();
    assert_eq!(data.get("match"), Some("a.example:.a.example"));
    assert_eq!(data.all("mx_host_pattern"), ["a.example", "*.a.example"]);
}

#[test]
fn bad_domain_gets_no_sts_attributes() {
    let answer = render_sts(
        "exa mple.com",
        &policy(BODY),
        &lines(BODY),
        &AnswerStyle::POSTFIX_3_10,
    );
    assert_eq!(
        answer,
        "secure match=mx1.example.com:.mx.example.com servername=hostname"
    );
}

#[test]
fn u_label_domain_becomes_a_label() {
    let data = parse_reply_data(&render_sts(
        "münchen.example",
        &policy(BODY),
        &[],
        &AnswerStyle::POSTFIX_3_10,
    ))
    .unwrap();
    assert_eq!(data.get("policy_domain"), Some("xn--mnchen-3ya.example"));
}

#[test]
fn oversize_answer_drops_policy_strings() {
    let body = "version: STSv1\nmode: enforce\nmx: a.example\nmax_age: 600\n";
    let many: Vec<String> = (0..3000)
        .map(|i| format!("x-filler{i}: {}", "z".repeat(30)))
        .collect();
    let answer = render_sts(
        "example.com",
        &policy(body),
        &many,
        &AnswerStyle::POSTFIX_3_10,
    );
    assert!(answer.len() < MAX_REPLY_BYTES);
    let data = parse_reply_data(&answer).unwrap();
    assert!(data.all("policy_string").is_empty());
    assert_eq!(data.all("mx_host_pattern"), ["a.example"]);
    // Just under the limit, they stay.
    let some = &many[..100];
    let data = parse_reply_data(&render_sts(
        "example.com",
        &policy(body),
        some,
        &AnswerStyle::POSTFIX_3_10,
    ))
    .unwrap();
    assert_eq!(data.all("policy_string").len(), 100);
}

#[test]
fn answer_fits_a_reply() {
    let answer = render_sts(
        "example.com",
        &policy(BODY),
        &lines(BODY),
        &AnswerStyle::POSTFIX_3_10,
    );
    assert_eq!(
        Reply::from_payload(&Reply::Ok(answer.as_str().into()).to_payload()),
        Ok(Reply::Ok(answer.into()))
    );
}

#[test]
fn policy_lines_split() {
    assert_eq!(
        policy_lines("a: 1\r\nb: 2\n\nc: 3\r\n  \n"),
        ["a: 1", "b: 2", "c: 3"]
    );
    assert!(policy_lines("").is_empty());
}

// --- reading answers ------------------------------------------------------------------------

#[test]
fn reply_data_commas_and_braces() {
    let data = parse_reply_data("secure,match=a:b , { policy_string = x, y  z }{a=b}").unwrap();
    assert_eq!(data.level, "secure");
    assert_eq!(
        data.attributes,
        attrs(&[("match", "a:b"), ("policy_string", "x, y  z"), ("a", "b")])
    );
}

#[test]
fn reply_data_errors() {
    assert_eq!(parse_reply_data(""), Err(ReplyDataError::Empty));
    assert_eq!(parse_reply_data(" ,, "), Err(ReplyDataError::Empty));
    assert_eq!(
        parse_reply_data("secure { a = b"),
        Err(ReplyDataError::UnbalancedBraces)
    );
    assert_eq!(
        parse_reply_data("secure a = b }"),
        Err(ReplyDataError::UnbalancedBraces)
    );
    assert_eq!(
        parse_reply_data("match=x"),
        Err(ReplyDataError::MissingLevel)
    );
    assert_eq!(
        parse_reply_data("{ a = b } secure"),
        Err(ReplyDataError::MissingLevel)
    );
    assert_eq!(
        parse_reply_data("secure match"),
        Err(ReplyDataError::NotAttribute("match".into()))
    );
    assert_eq!(
        parse_reply_data("secure =x"),
        Err(ReplyDataError::NotAttribute("=x".into()))
    );
}

fn arb_policy() -> impl Strategy<Value = (Policy, String)> {
    (
        proptest::collection::vec(
            (
                any::<bool>(),
                proptest::collection::vec("[a-z0-9]([a-z0-9-]{0,6}[a-z0-9])?", 1..4),
            ),
            1..5,
        ),
        proptest::collection::vec("x-[a-z]{1,5}: [!-z|~][ -z|~]{0,19}", 0..3),
    )
        .prop_map(|(mx, extensions)| {
            let mut body = String::from("version: STSv1\nmode: enforce\n");
            for (wild, labels) in mx {
                let prefix = if wild { "*." } else { "" };
                body.push_str(&format!("mx: {prefix}{}\n", labels.join(".")));
            }
            body.push_str("max_age: 86400\n");
            for ext in extensions {
                body.push_str(ext.trim_end());
                body.push('\n');
            }
            (Policy::parse(&body).unwrap(), body)
        })
}

proptest! {
    /// Whatever the policy, the rendered answer reads back into the expected attributes, and
    /// never holds an empty match list.
    #[test]
    fn rendered_answers_round_trip((policy, body) in arb_policy()) {
        let lines = policy_lines(&body);
        let answer = render_sts("example.com", &policy, &lines, &AnswerStyle::POSTFIX_3_10);
        let data = parse_reply_data(&answer).unwrap();
        prop_assert_eq!(&data.level, "secure");
        let matches = data.all("match");
        prop_assert_eq!(matches.len(), 1);
        prop_assert!(!matches[0].is_empty() && matches[0].split(':').all(|m| !m.is_empty()));
        let usable: Vec<String> = usable_patterns(&policy).iter().map(|p| p.to_string()).collect();
        if usable.is_empty() {
            prop_assert_eq!(matches[0], "nexthop");
        } else {
            let expected: Vec<String> = usable.iter().map(|p| p.replacen("*.", ".", 1)).collect();
            prop_assert_eq!(matches[0], expected.join(":"));
        }
        prop_assert_eq!(data.all("mx_host_pattern"), usable.iter().map(String::as_str).collect::<Vec<_>>());
        let carried: Vec<&str> = lines.iter().map(|l| l.trim()).filter(|l| !l.contains(['{', '}'])).collect();
        prop_assert_eq!(data.all("policy_string"), carried);
    }

    #[test]
    fn reply_data_never_panics(data in "\\PC*") {
        let _ = parse_reply_data(&data);
    }
}

#[test]
fn policy_string_leaves_out_control_characters() {
    let body = "version: STSv1\nmode: enforce\nmx: a.example\nmax_age: 600\n";
    let data = parse_reply_data(&render_sts(
        "example.com",
        &policy(body),
        &["x-a: one\0two".to_owned(), "x-b: ok".to_owned()],
        &AnswerStyle::POSTFIX_3_10,
    ))
    .unwrap();
    assert_eq!(data.all("policy_string"), ["x-b: ok"]);
}
