//! RFC 8461 §3.2 policy body corner cases (C42, C48–C70), one test each, plus properties.

use proptest::prelude::*;

use super::*;
use crate::Severity;
use crate::sts::mx_pattern::MxPatternError;

/// What a case expects of [`analyze`].
struct Expect {
    /// Whether a compliant sender accepts the body.
    valid: bool,
    /// Diagnostic codes that must be present, with their severity.
    codes: Vec<(&'static str, Severity)>,
    /// An extra check on the accepted policy.
    check: Option<fn(&Policy) -> bool>,
}

fn valid() -> Expect {
    Expect {
        valid: true,
        codes: Vec::new(),
        check: None,
    }
}

fn invalid(code: &'static str) -> Expect {
    Expect {
        valid: false,
        codes: vec![(code, Severity::Error)],
        check: None,
    }
}

impl Expect {
    fn with(mut self, code: &'static str, severity: Severity) -> Self {
        self.codes.push((code, severity));
        self
    }

    fn and(mut self, check: fn(&Policy) -> bool) -> Self {
        self.check = Some(check);
        self
    }
}

/// Asserts the invariants every analysis keeps, then the case's expectations.
fn run(body: &[u8], expect: Expect) -> PolicyAnalysis {
    let analysis = analyze(body);
    assert_invariants(body, &analysis);
    assert_eq!(
        analysis.policy.is_some(),
        expect.valid,
        "validity of {:?}: {:#?}",
        String::from_utf8_lossy(body),
        analysis.diagnostics
    );
    for (code, severity) in &expect.codes {
        assert!(
            analysis
                .diagnostics
                .iter()
                .any(|d| d.code == *code && d.severity == *severity),
            "expected {code} ({severity}) for {:?}: {:#?}",
            String::from_utf8_lossy(body),
            analysis.diagnostics
        );
    }
    if let (Some(check), Some(policy)) = (expect.check, &analysis.policy) {
        assert!(check(policy), "check failed on {policy:#?}");
    }
    analysis
}

fn assert_invariants(body: &[u8], analysis: &PolicyAnalysis) {
    let has_error = analysis
        .diagnostics
        .iter()
        .any(|d| d.severity == Severity::Error);
    assert_eq!(
        has_error,
        analysis.policy.is_none(),
        "errors ⇔ no policy: {:#?}",
        analysis.diagnostics
    );
    for d in &analysis.diagnostics {
        assert!(d.code.starts_with("policy-"), "{d:?}");
        assert!(
            d.code
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'),
            "{d:?}"
        );
        assert_eq!(d.rule, "RFC 8461 §3.2");
        assert!(!d.fix.is_empty() && !d.message.is_empty(), "{d:?}");
    }
    if let Ok(text) = std::str::from_utf8(body) {
        let parsed = Policy::parse(text);
        assert_eq!(
            parsed.as_ref().ok(),
            analysis.policy.as_ref(),
            "parse and analyze agree"
        );
        if analysis.policy.is_none() {
            assert!(parsed.is_err());
        }
    }
}

/// `name: body => expectation,` — one test per corner case.
macro_rules! policy_cases {
    ($($name:ident: $body:expr => $expect:expr,)*) => {$(
        #[test]
        fn $name() {
            let body: &[u8] = AsRef::<[u8]>::as_ref(&$body);
            run(body, $expect);
        }
    )*};
}

const GOOD: &str = "version: STSv1\nmode: enforce\nmx: mail.example.com\nmax_age: 86400\n";

fn mode_is(mode: Mode) -> impl Fn(&Policy) -> bool {
    move |p| p.mode == mode
}

policy_cases! {
    good_policy: GOOD => valid().and(|p| p.mode == Mode::Enforce && p.max_age.seconds() == 86400 && p.mx.len() == 1),
    c42_bom: "\u{feff}version: STSv1\nmode: enforce\nmx: a.example\nmax_age: 86400\n" => invalid("policy-bom"),
    c48_lf: GOOD => valid(),
    c48_crlf: "version: STSv1\r\nmode: enforce\r\nmx: a.example\r\nmax_age: 86400\r\n" => valid(),
    c48_mixed: "version: STSv1\r\nmode: enforce\nmx: a.example\r\nmax_age: 86400\n" => valid(),
    c49_bare_cr: "version: STSv1\rmode: enforce\rmx: a.example\rmax_age: 86400\r" => invalid("policy-bare-cr"),
    c49_bare_cr_inside: "version: STSv1\nmode: enforce\rmx: a.example\nmax_age: 86400\n" => invalid("policy-bare-cr"),
    c49_cr_cr_lf: "version: STSv1\r\r\nmode: enforce\nmx: a.example\nmax_age: 86400\n" => invalid("policy-bare-cr"),
    c49_vertical_tab_not_terminator: "version: STSv1\nmode: enforce\u{b}mx: a.example\nmax_age: 86400\n" => invalid("policy-control-character"),
    c49_form_feed_not_terminator: "version: STSv1\u{c}mode: enforce\nmx: a.example\nmax_age: 86400\n" => invalid("policy-control-character"),
    c49_line_separator_not_terminator: "version: STSv1\nmode: enforce\u{2028}mx: a.example\nmax_age: 86400\n" => invalid("policy-invalid-mode"),
    c49_file_separator_not_terminator: "version: STSv1\nmode: enforce\u{1c}mx: a.example\nmax_age: 86400\n" => invalid("policy-control-character"),
    c50_no_final_terminator: "version: STSv1\nmode: enforce\nmx: a.example\nmax_age: 86400" => valid(),
    c50_no_final_crlf: "version: STSv1\r\nmode: enforce\r\nmx: a.example\r\nmax_age: 86400" => valid(),
    c51_blank_line_between: "version: STSv1\n\nmode: enforce\nmx: a.example\nmax_age: 86400\n" => valid().with("policy-blank-line", Severity::Warning),
    c51_leading_blank_line: "\nversion: STSv1\nmode: enforce\nmx: a.example\nmax_age: 86400\n" => valid().with("policy-blank-line", Severity::Warning),
    c51_trailing_blank_line: "version: STSv1\nmode: enforce\nmx: a.example\nmax_age: 86400\n\n" => valid().with("policy-blank-line", Severity::Warning),
    c51_trailing_blank_crlf: "version: STSv1\r\nmode: enforce\r\nmx: a.example\r\nmax_age: 86400\r\n\r\n" => valid().with("policy-blank-line", Severity::Warning),
    c51_whitespace_only_line: "version: STSv1\n  \nmode: enforce\nmx: a.example\nmax_age: 86400\n" => valid().with("policy-blank-line", Severity::Warning),
    c52_capitalised_version_key: "Version: STSv1\nmode: enforce\nmx: a.example\nmax_age: 86400\n" => invalid("policy-missing-key").with("policy-key-typo", Severity::Warning),
    c52_uppercase_mode_key: "version: STSv1\nMODE: enforce\nmx: a.example\nmax_age: 86400\n" => invalid("policy-missing-key").with("policy-key-typo", Severity::Warning),
    c53_version_upper: "version: STSV1\nmode: enforce\nmx: a.example\nmax_age: 86400\n" => invalid("policy-invalid-version"),
    c53_mode_capitalised: "version: STSv1\nmode: Enforce\nmx: a.example\nmax_age: 86400\n" => invalid("policy-invalid-mode"),
    c53_mode_upper: "version: STSv1\nmode: TESTING\nmx: a.example\nmax_age: 86400\n" => invalid("policy-invalid-mode"),
    c54_no_space_after_colon: "version:STSv1\nmode:enforce\nmx:a.example\nmax_age:86400\n" => valid(),
    c54_tab_after_colon: "version:\tSTSv1\nmode: \tenforce\nmx: a.example\nmax_age: 86400\n" => valid(),
    c54_space_before_colon: "version: STSv1\nmode : enforce\nmx: a.example\nmax_age: 86400\n" => invalid("policy-space-before-colon"),
    c54_leading_space: "version: STSv1\n mode: enforce\nmx: a.example\nmax_age: 86400\n" => invalid("policy-leading-whitespace"),
    c54_leading_tab: "\tversion: STSv1\nmode: enforce\nmx: a.example\nmax_age: 86400\n" => invalid("policy-leading-whitespace"),
    c54_trailing_whitespace: "version: STSv1 \nmode: enforce   \nmx: a.example\t\nmax_age: 86400 \t\n" => valid().and(|p| p.mode == Mode::Enforce),
    c55_comment_line: "# MTA-STS policy\nversion: STSv1\nmode: enforce\nmx: a.example\nmax_age: 86400\n" => invalid("policy-comment"),
    c55_comment_after_fields: "version: STSv1\nmode: enforce\nmx: a.example\nmax_age: 86400\n# end\n" => invalid("policy-comment"),
    c56_none_without_mx: "version: STSv1\nmode: none\nmax_age: 86400\n" => valid().and(|p| p.mode == Mode::None && p.mx.is_empty()),
    c56_testing_without_mx: "version: STSv1\nmode: testing\nmax_age: 86400\n" => invalid("policy-missing-key"),
    c56_enforce_without_mx: "version: STSv1\nmode: enforce\nmax_age: 86400\n" => invalid("policy-missing-key"),
    c57_version_not_first: "mode: enforce\nmx: a.example\nmax_age: 86400\nversion: STSv1\n" => valid().with("policy-version-not-first", Severity::Info),
    c58_mode_first_wins: "version: STSv1\nmode: testing\nmode: enforce\nmx: a.example\nmax_age: 86400\n" =>
        valid().with("policy-duplicate-key", Severity::Info).and(|p| p.mode == Mode::Testing),
    c58_max_age_first_wins: "version: STSv1\nmode: enforce\nmx: a.example\nmax_age: 86400\nmax_age: 604800\n" =>
        valid().with("policy-duplicate-key", Severity::Info).and(|p| p.max_age.seconds() == 86400),
    c58_identical_duplicate_is_info: "version: STSv1\nversion: STSv1\nmode: enforce\nmx: a.example\nmax_age: 86400\n" =>
        valid().with("policy-duplicate-key", Severity::Info),
    c58_invalid_second_value_rejected: "version: STSv1\nmode: testing\nmode: Enforce\nmx: a.example\nmax_age: 86400\n" => invalid("policy-invalid-mode"),
    c59_mx_accumulate: "version: STSv1\nmode: enforce\nmx: a.example\nmx: *.b.example\nmx: c.example\nmax_age: 86400\n" =>
        valid().and(|p| p.mx.len() == 3 && p.mx[1].is_wildcard()),
    c59_duplicate_mx_harmless: "version: STSv1\nmode: enforce\nmx: a.example\nmx: a.example\nmax_age: 86400\n" =>
        valid().with("policy-duplicate-mx", Severity::Info).and(|p| p.mx.len() == 2),
    c60_version_stsv0: "version: STSv0\nmode: enforce\nmx: a.example\nmax_age: 86400\n" => invalid("policy-invalid-version"),
    c60_version_stsv10: "version: STSv10\nmode: enforce\nmx: a.example\nmax_age: 86400\n" => invalid("policy-invalid-version"),
    c60_version_stsv2: "version: STSv2\nmode: enforce\nmx: a.example\nmax_age: 86400\n" => invalid("policy-invalid-version"),
    c61_mode_report: "version: STSv1\nmode: report\nmx: a.example\nmax_age: 86400\n" => invalid("policy-invalid-mode"),
    c62_max_age_zero: "version: STSv1\nmode: enforce\nmx: a.example\nmax_age: 0\n" => valid().and(|p| p.max_age.seconds() == 0),
    c62_max_age_leading_zeros: "version: STSv1\nmode: enforce\nmx: a.example\nmax_age: 0086400\n" => valid().and(|p| p.max_age.seconds() == 86400),
    c62_max_age_cap: "version: STSv1\nmode: enforce\nmx: a.example\nmax_age: 31557600\n" => valid(),
    c62_max_age_above_cap: "version: STSv1\nmode: enforce\nmx: a.example\nmax_age: 31557601\n" => invalid("policy-max-age-above-cap"),
    c62_max_age_ten_digits_above_cap: "version: STSv1\nmode: enforce\nmx: a.example\nmax_age: 9999999999\n" => invalid("policy-max-age-above-cap"),
    c62_max_age_eleven_digits: "version: STSv1\nmode: enforce\nmx: a.example\nmax_age: 00000086400\n" => invalid("policy-invalid-max-age"),
    c62_max_age_negative: "version: STSv1\nmode: enforce\nmx: a.example\nmax_age: -1\n" => invalid("policy-invalid-max-age"),
    c62_max_age_plus: "version: STSv1\nmode: enforce\nmx: a.example\nmax_age: +5\n" => invalid("policy-invalid-max-age"),
    c62_max_age_underscore: "version: STSv1\nmode: enforce\nmx: a.example\nmax_age: 1_000\n" => invalid("policy-invalid-max-age"),
    c62_max_age_exponent: "version: STSv1\nmode: enforce\nmx: a.example\nmax_age: 1e6\n" => invalid("policy-invalid-max-age"),
    c62_max_age_decimal: "version: STSv1\nmode: enforce\nmx: a.example\nmax_age: 86400.0\n" => invalid("policy-invalid-max-age"),
    c62_max_age_inner_space: "version: STSv1\nmode: enforce\nmx: a.example\nmax_age: 1 000\n" => invalid("policy-invalid-max-age"),
    c62_max_age_empty: "version: STSv1\nmode: enforce\nmx: a.example\nmax_age:\n" => invalid("policy-invalid-max-age"),
    c62_max_age_unicode_digits: "version: STSv1\nmode: enforce\nmx: a.example\nmax_age: ８６４００\n" => invalid("policy-invalid-max-age"),
    c63_short_max_age_is_guidance_not_validity: "version: STSv1\nmode: enforce\nmx: a.example\nmax_age: 1\n" => valid().and(|p| p.max_age.seconds() == 1),
    c64_mx_trailing_dot: "version: STSv1\nmode: enforce\nmx: mail.example.com.\nmax_age: 86400\n" => invalid("policy-invalid-mx"),
    c64_mx_star: "version: STSv1\nmode: enforce\nmx: *\nmax_age: 86400\n" => invalid("policy-invalid-mx"),
    c64_mx_leading_dot: "version: STSv1\nmode: enforce\nmx: .example.com\nmax_age: 86400\n" => invalid("policy-invalid-mx"),
    c64_mx_u_label: "version: STSv1\nmode: enforce\nmx: mx.münchen.example\nmax_age: 86400\n" => invalid("policy-invalid-mx"),
    c64_mx_empty: "version: STSv1\nmode: enforce\nmx:\nmax_age: 86400\n" => invalid("policy-invalid-mx"),
    c64_mx_port: "version: STSv1\nmode: enforce\nmx: mx:25\nmax_age: 86400\n" => invalid("policy-invalid-mx"),
    c64_one_bad_mx_among_good: "version: STSv1\nmode: enforce\nmx: a.example\nmx: b_c.example\nmax_age: 86400\n" => invalid("policy-invalid-mx"),
    c65_mx_ip_address: "version: STSv1\nmode: enforce\nmx: 212.114.86.56\nmx: a.example\nmax_age: 86400\n" => valid().with("policy-mx-ip-address", Severity::Warning),
    c66_broad_wildcard: "version: STSv1\nmode: enforce\nmx: *.com\nmax_age: 86400\n" => valid().with("policy-mx-broad-wildcard", Severity::Warning),
    c67_extension_underscore_key: "version: STSv1\nmode: enforce\nmx: a.example\nmax_age: 86400\n_bad: x\n" => invalid("policy-invalid-key"),
    c67_extension_33_char_key: "version: STSv1\nmode: enforce\nmx: a.example\nmax_age: 86400\na23456789012345678901234567890123: x\n" => invalid("policy-invalid-key"),
    c67_extension_32_char_key: "version: STSv1\nmode: enforce\nmx: a.example\nmax_age: 86400\na2345678901234567890123456789012: x\n" => valid(),
    c67_extension_empty_value: "version: STSv1\nmode: enforce\nmx: a.example\nmax_age: 86400\next:\n" => invalid("policy-invalid-extension"),
    c67_extension_whitespace_value: "version: STSv1\nmode: enforce\nmx: a.example\nmax_age: 86400\next:   \n" => invalid("policy-invalid-extension"),
    c67_extension_tab_in_value: "version: STSv1\nmode: enforce\nmx: a.example\nmax_age: 86400\next: a\tb\n" => invalid("policy-invalid-extension"),
    c67_extension_valid: "version: STSv1\nmode: enforce\nmx: a.example\nmax_age: 86400\nx-note: hello world, ünïcode ✓\n" =>
        valid().and(|p| p.extensions.len() == 1 && p.extensions[0].value == "hello world, ünïcode ✓"),
    c67_extension_surrounding_spaces_belong_to_delimiters: "version: STSv1\nmode: enforce\nmx: a.example\nmax_age: 86400\next:   a b   \n" =>
        valid().and(|p| p.extensions[0].value == "a b"),
    c67_empty_key: "version: STSv1\nmode: enforce\nmx: a.example\nmax_age: 86400\n: x\n" => invalid("policy-invalid-key"),
    c68_typo_nmx: "version: STSv1\nmode: enforce\nnmx: a.example\nmax_age: 86400\n" => invalid("policy-missing-key").with("policy-key-typo", Severity::Warning),
    c68_typo_max_dash_age: "version: STSv1\nmode: enforce\nmx: a.example\nmax-age: 86400\n" => invalid("policy-missing-key").with("policy-key-typo", Severity::Warning),
    c68_typo_maxage: "version: STSv1\nmode: enforce\nmx: a.example\nmaxage: 86400\n" => invalid("policy-missing-key").with("policy-key-typo", Severity::Warning),
    c68_typo_mx_host: "version: STSv1\nmode: enforce\nmx_host: a.example\nmax_age: 86400\n" => invalid("policy-missing-key").with("policy-key-typo", Severity::Warning),
    c68_typo_with_key_present_only_warns: "version: STSv1\nmode: enforce\nmx: a.example\nmxs: b.example\nmax_age: 86400\n" => valid().with("policy-key-typo", Severity::Warning),
    c69_extension_value_with_colon: "version: STSv1\nmode: enforce\nmx: a.example\nmax_age: 86400\nurl: https://example.com:8443/x\n" =>
        valid().and(|p| p.extensions[0].value == "https://example.com:8443/x"),
    c69_mode_value_with_colon: "version: STSv1\nmode: enforce:x\nmx: a.example\nmax_age: 86400\n" => invalid("policy-invalid-mode"),
    c70_invalid_utf8: b"version: STSv1\nmode: enforce\nmx: a.example\nmax_age: 86400\nx: \xff\xfe\n" => invalid("policy-invalid-utf8"),
    c70_nul: "version: STSv1\nmode: enforce\0\nmx: a.example\nmax_age: 86400\n" => invalid("policy-control-character"),
    c70_del: "version: STSv1\nmode: enforce\nmx: a.example\nmax_age: 86400\nx: a\u{7f}\n" => invalid("policy-control-character"),
    c70_utf8_only_in_extension_values: "version: STSv1\nmode: enforce\nmx: a.example\nmax_age: 86400\nnötig: x\n" => invalid("policy-invalid-key"),
    empty_body: "" => invalid("policy-empty"),
    only_newlines: "\n\n" => invalid("policy-empty").with("policy-blank-line", Severity::Warning),
    not_key_value: "version: STSv1\nmode enforce\nmx: a.example\nmax_age: 86400\n" => invalid("policy-invalid-line"),
    equals_instead_of_colon: "version=STSv1\nmode: enforce\nmx: a.example\nmax_age: 86400\n" => invalid("policy-invalid-line"),
    html_error_page: "<!DOCTYPE html>\n<html><body>Not Found</body></html>\n" => invalid("policy-invalid-line"),
    json_body: "{\"version\": \"STSv1\"}" => invalid("policy-invalid-key"),
    missing_version: "mode: enforce\nmx: a.example\nmax_age: 86400\n" => invalid("policy-missing-key"),
    missing_max_age: "version: STSv1\nmode: enforce\nmx: a.example\n" => invalid("policy-missing-key"),
    missing_mode: "version: STSv1\nmx: a.example\nmax_age: 86400\n" => invalid("policy-missing-key"),
    testing_mode: "version: STSv1\nmode: testing\nmx: a.example\nmax_age: 86400\n" => valid().and(|p| p.mode == Mode::Testing),
}

#[test]
fn c42_bom_is_the_only_error_and_parse_reports_it() {
    let body = "\u{feff}version: STSv1\nmode: enforce\nmx: a.example\nmax_age: 86400\n";
    let analysis = analyze(body.as_bytes());
    let errors: Vec<_> = analysis
        .diagnostics
        .iter()
        .filter(|d| d.severity == Severity::Error)
        .collect();
    assert_eq!(errors.len(), 1, "{errors:#?}");
    assert_eq!(errors[0].code, "policy-bom");
    assert_eq!(errors[0].line, Some(1));
    assert!(errors[0].fix.contains("remove the BOM"));
    assert_eq!(Policy::parse(body), Err(PolicyError::ByteOrderMark));
}

#[test]
fn c58_duplicate_message_names_both_readings() {
    let body = "version: STSv1\nmode: testing\nmx: a.example\nmax_age: 86400\nmode: enforce\n";
    let analysis = run(body.as_bytes(), valid().and(|p| mode_is(Mode::Testing)(p)));
    let d = analysis
        .diagnostics
        .iter()
        .find(|d| d.code == "policy-duplicate-key")
        .unwrap();
    assert_eq!(d.line, Some(5));
    assert!(
        d.message.contains("testing") && d.message.contains("enforce"),
        "{}",
        d.message
    );
    assert!(d.message.contains("lines 2"), "{}", d.message);
}

#[test]
fn c68_missing_key_fix_suggests_the_typo() {
    let body = "version: STSv1\nmode: enforce\nmx: a.example\nmax-age: 86400\n";
    let analysis = analyze(body.as_bytes());
    let d = analysis
        .diagnostics
        .iter()
        .find(|d| d.code == "policy-missing-key")
        .unwrap();
    assert!(d.fix.contains("did you mean max_age"), "{}", d.fix);
    assert!(d.fix.contains("line 4"), "{}", d.fix);
    assert_eq!(Policy::parse(body), Err(PolicyError::Missing("max_age")));
}

#[test]
fn all_problems_are_reported() {
    let body = "# comment\nversion: STSv2\nmode : enforce\nmode: Enforce\nmx: *.*.example\nmax_age: +1\n_x: y\n\n";
    let analysis = analyze(body.as_bytes());
    let codes: Vec<_> = analysis
        .diagnostics
        .iter()
        .map(|d| (d.code, d.line))
        .collect();
    for expected in [
        ("policy-comment", Some(1)),
        ("policy-invalid-version", Some(2)),
        ("policy-space-before-colon", Some(3)),
        ("policy-invalid-mode", Some(4)),
        ("policy-invalid-mx", Some(5)),
        ("policy-invalid-max-age", Some(6)),
        ("policy-invalid-key", Some(7)),
        ("policy-blank-line", Some(8)),
    ] {
        assert!(codes.contains(&expected), "{expected:?} in {codes:?}");
    }
    assert!(analysis.policy.is_none());
    // The first error, typed.
    assert!(matches!(
        Policy::parse(body),
        Err(PolicyError::Line { line: 1, .. })
    ));
}

#[test]
fn line_numbers_count_crlf_lines() {
    let body = "version: STSv1\r\nmode: enforce\r\nmx: a_b.example\r\nmax_age: 86400\r\n";
    let analysis = analyze(body.as_bytes());
    let d = analysis
        .diagnostics
        .iter()
        .find(|d| d.code == "policy-invalid-mx")
        .unwrap();
    assert_eq!(d.line, Some(3));
    assert!(d.message.contains("a_b.example"));
    assert!(matches!(
        Policy::parse(body),
        Err(PolicyError::InvalidMx {
            line: 3,
            error: MxPatternError::Syntax { .. }
        })
    ));
}

#[test]
fn typed_first_errors() {
    let base = |line: &str| {
        format!("version: STSv1\nmode: enforce\nmx: a.example\nmax_age: 86400\n{line}\n")
    };
    assert_eq!(
        Policy::parse("version: STSv1\nmode: enforce\nmx: a.example\nmax_age: 31557601\n"),
        Err(PolicyError::InvalidMaxAge("31557601".into()))
    );
    assert_eq!(
        Policy::parse("version: STSv3\n"),
        Err(PolicyError::InvalidVersion("STSv3".into()))
    );
    assert_eq!(
        Policy::parse("mode: on\n"),
        Err(PolicyError::InvalidMode("on".into()))
    );
    assert_eq!(
        Policy::parse(&base("x: a\0")),
        Err(PolicyError::Encoding { line: 5 })
    );
    assert!(matches!(
        Policy::parse(&base("ext:")),
        Err(PolicyError::InvalidExtension { line: 5, .. })
    ));
    assert_eq!(Policy::parse(""), Err(PolicyError::Empty));
    assert_eq!(
        Policy::parse("version: STSv1\nmode: testing\nmax_age: 1\n"),
        Err(PolicyError::Missing("mx"))
    );
}

#[test]
fn max_age_from_str() {
    assert_eq!("86400".parse::<MaxAge>().map(MaxAge::seconds), Ok(86400));
    assert_eq!("0000000000".parse::<MaxAge>().map(MaxAge::seconds), Ok(0));
    for bad in [
        "",
        " 1",
        "1 ",
        "+1",
        "-1",
        "1_0",
        "0x10",
        "1e3",
        "4294967296",
        "99999999999",
        "٣",
    ] {
        assert!(bad.parse::<MaxAge>().is_err(), "{bad:?}");
    }
    assert_eq!(MaxAge::new(MAX_AGE_CAP + 1), None);
}

#[test]
fn to_text_layout() {
    let policy = Policy::parse(
        "max_age: 604800\nx: y z\nmx: b.example\nversion: STSv1\nmode: testing\nmx: *.a.example\n",
    )
    .unwrap();
    assert_eq!(
        policy.to_text("\n"),
        "version: STSv1\nmode: testing\nmx: b.example\nmx: *.a.example\nmax_age: 604800\nx: y z\n"
    );
    assert_eq!(policy.to_string(), policy.to_text("\r\n"));
    assert!(policy.to_string().ends_with("x: y z\r\n"));
}

#[test]
fn large_input_is_linear_enough() {
    // 64 KiB of mx lines and of one long line: both must finish quickly and not panic.
    let mut body = String::from("version: STSv1\nmode: enforce\nmax_age: 86400\n");
    while body.len() < 64 * 1024 {
        body.push_str("mx: *.mail.example.com\n");
    }
    let analysis = analyze(body.as_bytes());
    assert!(analysis.policy.is_some());
    let long = format!("version: STSv1\nx: {}\n", "a".repeat(64 * 1024));
    assert!(analyze(long.as_bytes()).policy.is_none());
    let many_blank = "\n".repeat(64 * 1024);
    // Every line is blank (the final LF only ends the last one), plus the empty-policy error.
    assert_eq!(
        analyze(many_blank.as_bytes()).diagnostics.len(),
        64 * 1024 + 1
    );
}

fn arb_mode() -> impl Strategy<Value = Mode> {
    prop_oneof![Just(Mode::Enforce), Just(Mode::Testing), Just(Mode::None)]
}

fn arb_mx() -> impl Strategy<Value = MxPattern> {
    (
        any::<bool>(),
        proptest::collection::vec("[a-z0-9]([a-z0-9-]{0,8}[a-z0-9])?", 1..4),
    )
        .prop_map(|(wild, labels)| {
            format!("{}{}", if wild { "*." } else { "" }, labels.join("."))
                .parse()
                .unwrap()
        })
}

fn arb_extension() -> impl Strategy<Value = Extension> {
    (
        "[A-Za-z0-9][A-Za-z0-9_.-]{0,31}",
        "[!-~\u{a0}-\u{2fff}]([ !-~\u{a0}-\u{2fff}]{0,20}[!-~\u{a0}-\u{2fff}])?",
    )
        .prop_filter("not a known key", |(name, _)| {
            !KNOWN.contains(&name.as_str())
        })
        .prop_map(|(name, value)| Extension { name, value })
}

const KNOWN: [&str; 4] = ["version", "mode", "max_age", "mx"];

fn arb_policy() -> impl Strategy<Value = Policy> {
    (
        arb_mode(),
        0..=MAX_AGE_CAP,
        proptest::collection::vec(arb_mx(), 0..4),
        proptest::collection::vec(arb_extension(), 0..3).prop_filter(
            "distinct extension names (repeats are their own corner case)",
            |v: &Vec<Extension>| {
                let mut n: Vec<&str> = v.iter().map(|e| e.name.as_str()).collect();
                n.sort_unstable();
                n.windows(2).all(|w| w[0] != w[1])
            },
        ),
    )
        .prop_filter_map(
            "enforce and testing need mx",
            |(mode, age, mx, extensions)| {
                let max_age = MaxAge::new(age)?;
                (mode == Mode::None || !mx.is_empty()).then_some(Policy {
                    mode,
                    max_age,
                    mx,
                    extensions,
                })
            },
        )
}

proptest! {
    #[test]
    fn roundtrip(policy in arb_policy(), crlf in any::<bool>()) {
        let text = policy.to_text(if crlf { "\r\n" } else { "\n" });
        prop_assert_eq!(Policy::parse(&text), Ok(policy.clone()));
        let analysis = analyze(text.as_bytes());
        prop_assert_eq!(analysis.policy, Some(policy));
    }

    #[test]
    fn analyze_never_panics(body in proptest::collection::vec(any::<u8>(), 0..512)) {
        let analysis = analyze(&body);
        assert_invariants(&body, &analysis);
    }

    #[test]
    fn analyze_never_panics_on_near_valid(lines in proptest::collection::vec(
        "(version|mode|max_age|mx|Mode|x|#|\u{feff}version| mode)[ :\t]{0,2}(STSv1|enforce|testing|none|86400|\\*\\.a\\.b|a\\.b\\.|[ -~]{0,6})[ \t\r]{0,2}",
        0..8,
    ), sep in "(\n|\r\n|\r|\n\n)") {
        let body = lines.join(&sep);
        let analysis = analyze(body.as_bytes());
        assert_invariants(body.as_bytes(), &analysis);
    }

    #[test]
    fn parse_never_panics(s in "\\PC*") {
        let _ = Policy::parse(&s);
    }

    #[test]
    fn max_age_never_panics(s in "\\PC{0,12}") {
        let _ = s.parse::<MaxAge>();
    }
}

#[test]
fn c49_group_and_record_separators_are_not_terminators() {
    for c in ['\u{1d}', '\u{1e}', '\u{85}'] {
        let body = format!("version: STSv1\nmode: enforce{c}mx: a.example\nmax_age: 86400\n");
        let analysis = analyze(body.as_bytes());
        assert!(analysis.policy.is_none(), "{c:?}");
        assert_invariants(body.as_bytes(), &analysis);
    }
}

#[test]
fn c42_bom_then_blank_line_reports_only_what_is_there() {
    let body = "\u{feff}\nversion: STSv1\nmode: none\nmax_age: 1\n";
    let analysis = analyze(body.as_bytes());
    let codes: Vec<_> = analysis.diagnostics.iter().map(|d| d.code).collect();
    assert_eq!(codes, ["policy-bom"]);
}

#[test]
fn fixes_are_concrete() {
    let fix_for = |line: &str, code: &str| {
        let body = format!("version: STSv1\nmax_age: 86400\nmx: a.example\n{line}\n");
        let analysis = analyze(body.as_bytes());
        analysis
            .diagnostics
            .iter()
            .find(|d| d.code == code)
            .map(|d| (d.fix.clone(), d.message.clone(), d.line))
            .unwrap_or_else(|| panic!("{code} for {line:?}: {:#?}", analysis.diagnostics))
    };
    let (fix, message, line) = fix_for("mode: Enforce", "policy-invalid-mode");
    assert_eq!(line, Some(4));
    assert!(fix.contains("mode: enforce"), "{fix}");
    assert!(message.contains("\"Enforce\""), "{message}");
    let (fix, ..) = fix_for("mode: report", "policy-invalid-mode");
    assert!(fix.contains("testing"), "{fix}");
    let (fix, ..) = fix_for("mode: testing\nmx: mail.example.com.", "policy-invalid-mx");
    assert!(fix.contains("mx: mail.example.com "), "{fix}");
    let (fix, ..) = fix_for("mode: testing\nmx: mx.münchen.example", "policy-invalid-mx");
    assert!(fix.contains("mx.xn--mnchen-3ya.example"), "{fix}");
    let (fix, ..) = fix_for("mode : testing", "policy-space-before-colon");
    assert_eq!(fix, "write mode: testing");
    let (fix, ..) = fix_for("Mode: testing", "policy-missing-key");
    assert!(fix.contains("did you mean mode?"), "{fix}");
    let (_, message, _) = fix_for("mode: testing\nmx: 192.0.2.1", "policy-mx-ip-address");
    assert!(message.contains("192.0.2.1"), "{message}");
}

#[test]
fn mode_none_still_checks_mx_lines() {
    let body = "version: STSv1\nmode: none\nmx: bad_host\nmax_age: 86400\n";
    run(body.as_bytes(), invalid("policy-invalid-mx"));
}

#[test]
fn unknown_valid_keys_are_kept_in_order() {
    let body = "version: STSv1\nb: 2\nmode: none\na: 1\nb: 3\nmax_age: 1\n";
    let policy = Policy::parse(body).unwrap();
    let names: Vec<_> = policy
        .extensions
        .iter()
        .map(|e| (e.name.as_str(), e.value.as_str()))
        .collect();
    assert_eq!(names, [("b", "2"), ("a", "1"), ("b", "3")]);
}
