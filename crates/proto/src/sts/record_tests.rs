//! RFC 8461 §3.1 corner cases for the `_mta-sts` record (C7–C23, C26), one test each.

use proptest::prelude::*;

use super::*;
use crate::Severity;

/// One named test per corner case: `name: input => pattern;` asserts
/// `StsRecord::parse(input)` matches the pattern.
macro_rules! parse_cases {
    ($($name:ident: $input:expr => $pat:pat $(if $guard:expr)?,)*) => {$(
        #[test]
        #[allow(clippy::redundant_pattern_matching)] // uniform `pattern if guard` cases
        fn $name() {
            let parsed = StsRecord::parse($input);
            assert!(matches!(&parsed, $pat $(if $guard)?), "{:?} parsed as {parsed:?}", $input);
        }
    )*};
}

/// One named test per selection case: `name: [rr, …] => pattern;`.
macro_rules! select_cases {
    ($($name:ident: [$($rr:expr),* $(,)?] => $pat:pat $(if $guard:expr)?,)*) => {$(
        #[test]
        fn $name() {
            let rrset = vec![$(TxtRr::single($rr)),*];
            let selected = select(&rrset);
            assert!(matches!(&selected, $pat $(if $guard)?), "{rrset:?} selected as {selected:#?}");
        }
    )*};
}

fn id(r: &StsRecord) -> &str {
    r.id.as_str()
}

fn has(diagnostics: &[crate::Diagnostic], code: &str, severity: Severity) -> bool {
    diagnostics
        .iter()
        .any(|d| d.code == code && d.severity == severity)
}

fn invalid_field(e: &RecordError) -> bool {
    matches!(e, RecordError::InvalidField { .. })
}

parse_cases! {
    basic: "v=STSv1; id=20160831085700Z;" => Ok(r) if id(r) == "20160831085700Z",
    basic_no_trailing_delimiter: "v=STSv1; id=1" => Ok(r) if id(r) == "1",
    c10_version_not_first: "id=1; v=STSv1" => Err(RecordError::VersionNotFirst { .. }),
    c11_version_upper_v: "V=STSv1; id=a" => Err(RecordError::VersionNotFirst { .. }),
    c11_version_lower: "v=stsv1; id=a" => Err(RecordError::VersionNotFirst { .. }),
    c11_version_upper: "v=STSV1; id=a" => Err(RecordError::VersionNotFirst { .. }),
    c11_version_longer: "v=STSv10; id=a" => Err(RecordError::VersionNotFirst { .. }),
    c12_version_only: "v=STSv1" => Err(RecordError::NoFields),
    c12_version_and_delimiter: "v=STSv1;" => Err(RecordError::NoFields),
    c12_version_and_spaced_delimiter: "v=STSv1 ; " => Err(RecordError::NoFields),
    c13_space_before_semicolon: "v=STSv1 ; id=a" => Ok(r) if id(r) == "a",
    c13_tab_before_semicolon: "v=STSv1\t;id=a" => Ok(r) if id(r) == "a",
    c14_wsp_after_semicolon: "v=STSv1;\tid=a  ;" => Ok(r) if id(r) == "a",
    c14_wsp_around_later_delimiters: "v=STSv1; id=a \t; foo=bar ;  " => Ok(r) if r.extensions.len() == 1,
    c15_trailing_semicolon: "v=STSv1; id=a;" => Ok(_),
    c15_trailing_semicolon_space: "v=STSv1; id=a; " => Ok(_),
    c15_trailing_space_without_semicolon_accepted: "v=STSv1; id=a " => Ok(r) if id(r) == "a",
    c16_empty_field: "v=STSv1;; id=a" => Err(RecordError::EmptyField),
    c16_empty_field_at_end: "v=STSv1; id=a;;" => Err(RecordError::EmptyField),
    c16_empty_field_with_space: "v=STSv1; id=a; ;" => Err(RecordError::EmptyField),
    c17_empty_id: "v=STSv1; id=" => Err(RecordError::InvalidId { value }) if value.is_empty(),
    c17_id_33_chars: "v=STSv1; id=123456789012345678901234567890123" => Err(RecordError::InvalidId { .. }),
    c17_id_32_chars_ok: "v=STSv1; id=12345678901234567890123456789012" => Ok(_),
    c17_id_with_hyphen_is_invalid: "v=STSv1; id=2024-01-01" => Err(RecordError::InvalidId { .. }),
    c17_id_with_underscore_is_invalid: "v=STSv1; id=a_b" => Err(RecordError::InvalidId { .. }),
    c17_id_with_dot_is_invalid: "v=STSv1; id=1.2" => Err(RecordError::InvalidId { .. }),
    c17_id_with_colon_is_invalid: "v=STSv1; id=20240101T01:01" => Err(RecordError::InvalidId { .. }),
    c17_id_with_plus_is_invalid: "v=STSv1; id=ab+c" => Err(RecordError::InvalidId { .. }),
    c17_id_with_slash_is_invalid: "v=STSv1; id=ab/c" => Err(RecordError::InvalidId { .. }),
    c17_id_with_equals_is_invalid: "v=STSv1; id=abc=" => Err(RecordError::InvalidId { .. }),
    c17_id_non_ascii_is_invalid: "v=STSv1; id=abcé" => Err(RecordError::NotAscii { offset: 15 }),
    c17_valid_iso_basic: "v=STSv1; id=20190429T010101" => Ok(r) if id(r) == "20190429T010101",
    c17_valid_one_char: "v=STSv1; id=1" => Ok(_),
    c18_missing_id: "v=STSv1; foo=bar" => Err(RecordError::MissingId),
    c18_upper_id_is_an_extension: "v=STSv1; ID=a" => Err(RecordError::MissingId),
    c19_space_before_equals: "v=STSv1; id =a" => Err(e) if invalid_field(e),
    c19_space_after_equals: "v=STSv1; id= a" => Err(e) if invalid_field(e),
    c19_space_around_equals: "v=STSv1; id = a" => Err(e) if invalid_field(e),
    c20_duplicate_id_first_wins: "v=STSv1; id=first; id=second" => Ok(r) if id(r) == "first",
    c20_duplicate_invalid_id_rejected: "v=STSv1; id=first; id=b+d" => Err(RecordError::InvalidId { .. }),
    c21_unknown_extension_ignored: "v=STSv1; id=a; foo=bar" => Ok(r) if r.extensions == vec![Extension { name: "foo".into(), value: "bar".into() }],
    c21_extension_empty_value: "v=STSv1; id=a; more=" => Err(e) if invalid_field(e),
    c21_extension_double_equals: "v=STSv1; id=a; test==" => Err(e) if invalid_field(e),
    c21_extension_underscore_name: "v=STSv1; id=a; _x=1" => Err(e) if invalid_field(e),
    c21_extension_33_char_name: "v=STSv1; id=a; a23456789012345678901234567890123=1" => Err(e) if invalid_field(e),
    c21_extension_32_char_name_ok: "v=STSv1; id=a; a2345678901234567890123456789012=1" => Ok(_),
    c21_extension_value_with_space: "v=STSv1; id=a; foo=b ar" => Err(e) if invalid_field(e),
    c21_extension_without_equals: "v=STSv1; id=a; foo" => Err(e) if invalid_field(e),
    c21_extension_name_with_dot_dash: "v=STSv1; id=a; x.y-z_1=ok!" => Ok(r) if r.extensions[0].name == "x.y-z_1",
    c23_non_ascii_rejected: "v=STSv1; id=a; x=ü" => Err(RecordError::NotAscii { .. }),
    missing_delimiter_between_version_and_field: "v=STSv1 id=a" => Err(e) if invalid_field(e),
    missing_delimiter_between_fields: "v=STSv1; id=a foo=b" => Err(RecordError::InvalidId { .. }),
    missing_delimiter_between_extensions: "v=STSv1; id=a; x=1 y=2" => Err(e) if invalid_field(e),
    control_character_in_value: "v=STSv1; id=a; x=a\u{7f}" => Err(e) if invalid_field(e),
    newline_after_version: "v=STSv1\n; id=a" => Err(e) if invalid_field(e),
}

#[test]
fn c22_split_strings_are_concatenated_without_separator() {
    let rr = TxtRr(vec![b"v=STSv1; id=20".to_vec(), b"240101".to_vec()]);
    match select(&[rr]) {
        Selection::Found { record, raw, .. } => {
            assert_eq!(record.id.as_str(), "20240101");
            assert_eq!(raw, "v=STSv1; id=20240101");
        }
        other => panic!("{other:?}"),
    }
    // Splitting inside the version literal too.
    let rr = TxtRr(vec![b"v=ST".to_vec(), b"Sv1;".to_vec(), b" id=x".to_vec()]);
    assert!(matches!(select(&[rr]), Selection::Found { .. }));
}

select_cases! {
    c6_no_records: [] => Selection::Missing { diagnostics } if diagnostics.is_empty(),
    c7_spf_and_sts: ["v=spf1 -all", "v=STSv1; id=a"] =>
        Selection::Found { record, diagnostics, .. }
            if record.id.as_str() == "a" && has(diagnostics, "record-spf", Severity::Info),
    c7_unrelated_txt_is_a_note: ["google-site-verification=abc", "v=STSv1; id=a"] =>
        Selection::Found { diagnostics, .. } if has(diagnostics, "record-unrelated-txt", Severity::Info),
    c8_two_records: ["v=STSv1; id=a", "v=STSv1; id=b"] => Selection::Multiple { raws, .. } if raws.len() == 2,
    c8_two_identical_records: ["v=STSv1; id=a", "v=STSv1; id=a"] => Selection::Multiple { .. },
    c8_two_records_one_spaced: ["v=STSv1; id=a", "v=STSv1 ; id=b"] => Selection::Multiple { .. },
    c9_single_invalid: ["v=STSv1; id=a+b"] => Selection::Invalid { error: RecordError::InvalidId { .. }, .. },
    c10_version_not_first_is_discarded: ["id=1; v=STSv1"] =>
        Selection::Missing { diagnostics } if has(diagnostics, "record-version-not-first", Severity::Info),
    c11_wrong_case_is_discarded: ["V=STSv1; id=a"] =>
        Selection::Missing { diagnostics } if has(diagnostics, "record-version-case", Severity::Info),
    c11_lowercase_is_discarded: ["v=stsv1; id=a"] =>
        Selection::Missing { diagnostics } if diagnostics[0].message.contains("v=stsv1; id=a"),
    c11_does_not_count_towards_multiple: ["v=STSV1; id=a", "v=STSv1; id=b"] =>
        Selection::Found { record, .. } if record.id.as_str() == "b",
    c12_bare_version_is_a_candidate: ["v=STSv1"] => Selection::Invalid { error: RecordError::NoFields, .. },
    c12_version_semicolon_only: ["v=STSv1;"] => Selection::Invalid { error: RecordError::NoFields, .. },
    c13_space_before_semicolon_selected_with_note: ["v=STSv1 ; id=a"] =>
        Selection::Found { diagnostics, .. } if has(diagnostics, "record-space-before-semicolon", Severity::Info),
    c13_tab_before_semicolon_selected_with_note: ["v=STSv1\t; id=a"] =>
        Selection::Found { diagnostics, .. } if has(diagnostics, "record-space-before-semicolon", Severity::Info),
    c14_no_warning_for_space_after_semicolon: ["v=STSv1;\tid=a  ;"] =>
        Selection::Found { diagnostics, .. } if diagnostics.is_empty(),
    c15_trailing_space_warns: ["v=STSv1; id=a "] =>
        Selection::Found { diagnostics, .. } if has(diagnostics, "record-trailing-whitespace", Severity::Warning),
    c15_trailing_semicolon_space_is_clean: ["v=STSv1; id=a; "] =>
        Selection::Found { diagnostics, .. } if diagnostics.is_empty(),
    c16_empty_field_selected_invalid: ["v=STSv1;;id=a"] => Selection::Invalid { error: RecordError::EmptyField, .. },
    c18_missing_id_selected_invalid: ["v=STSv1; ID=a"] => Selection::Invalid { error: RecordError::MissingId, .. },
    c20_duplicate_id_noted_first_wins: ["v=STSv1; id=a; id=b"] =>
        Selection::Found { record, diagnostics, .. }
            if record.id.as_str() == "a" && has(diagnostics, "record-duplicate-field", Severity::Info),
    c20_identical_duplicate_id_is_info: ["v=STSv1; id=a; id=a"] =>
        Selection::Found { diagnostics, .. } if has(diagnostics, "record-duplicate-field", Severity::Info),
    c21_invalid_extension_notes_lenient_senders: ["v=STSv1; id=a; more="] =>
        Selection::Invalid { diagnostics, .. } if has(diagnostics, "record-lenient-senders-accept", Severity::Info),
    c21_invalid_id_field_gets_no_lenient_note: ["v=STSv1; id = a"] =>
        Selection::Invalid { diagnostics, .. } if diagnostics.is_empty(),
    c21_lenient_note_only_if_the_rest_is_usable: ["v=STSv1; x=; foo"] =>
        Selection::Invalid { diagnostics, .. } if diagnostics.is_empty(),
    c23_non_ascii_selected_invalid: ["v=STSv1; id=ä"] => Selection::Invalid { error: RecordError::NotAscii { offset: 12 }, .. },
    c26_spf_only: ["v=spf1 include:_spf.example.com ~all"] =>
        Selection::Missing { diagnostics } if has(diagnostics, "record-spf", Severity::Info),
    near_miss_longer_version: ["v=STSv10; id=a"] =>
        Selection::Missing { diagnostics } if has(diagnostics, "record-version-near-miss", Severity::Info),
    near_miss_missing_semicolon: ["v=STSv1 id=a"] =>
        Selection::Missing { diagnostics } if has(diagnostics, "record-version-near-miss", Severity::Info),
    tlsrpt_record_is_unrelated: ["v=TLSRPTv1; rua=mailto:a@example.com"] =>
        Selection::Missing { diagnostics } if has(diagnostics, "record-unrelated-txt", Severity::Info),
}

#[test]
fn c23_invalid_utf8_bytes_selected_invalid() {
    let rr = TxtRr(vec![b"v=STSv1; id=a\xff".to_vec()]);
    assert!(matches!(
        select(&[rr]),
        Selection::Invalid {
            error: RecordError::NotAscii { offset: 13 },
            ..
        }
    ));
}

#[test]
fn diagnostics_cite_the_rule_and_carry_a_fix() {
    let rrset = [
        TxtRr::single("v=spf1 -all"),
        TxtRr::single("hello"),
        TxtRr::single("v=STSv1 ; id=a; id=b "),
    ];
    let Selection::Found { diagnostics, .. } = select(&rrset) else {
        panic!()
    };
    assert_eq!(diagnostics.len(), 5, "{diagnostics:#?}");
    for d in &diagnostics {
        assert_eq!(d.rule, "RFC 8461 §3.1");
        assert!(!d.fix.is_empty());
        assert!(d.line.is_none());
    }
}

#[test]
fn long_unrelated_record_is_quoted_shortened() {
    let long = "x".repeat(1000);
    let Selection::Missing { diagnostics } = select(&[TxtRr::single(&long)]) else {
        panic!()
    };
    assert!(diagnostics[0].message.len() < 200);
}

#[test]
fn policy_id_from_str() {
    assert_eq!(
        "abc123"
            .parse::<PolicyId>()
            .map(|i| i.to_string())
            .as_deref(),
        Ok("abc123")
    );
    assert!("".parse::<PolicyId>().is_err());
    assert!("a b".parse::<PolicyId>().is_err());
}

/// The text `mtasts serve` publishes parses back to the id it was written for.
#[test]
fn record_text_round_trips() {
    assert_eq!(record_text("20261122T1200"), "v=STSv1; id=20261122T1200");
    let parsed = StsRecord::parse(&record_text("20261122T1200")).unwrap();
    assert_eq!(parsed, StsRecord::new("20261122T1200".parse().unwrap()));
}

#[test]
fn display_format() {
    let record = StsRecord {
        id: "abc".parse().unwrap(),
        extensions: vec![Extension {
            name: "foo".into(),
            value: "bar".into(),
        }],
    };
    assert_eq!(record.to_string(), "v=STSv1; id=abc; foo=bar;");
    assert_eq!(
        StsRecord::new("x1".parse().unwrap()).to_string(),
        "v=STSv1; id=x1;"
    );
}

fn arb_id() -> impl Strategy<Value = PolicyId> {
    "[A-Za-z0-9]{1,32}".prop_map(|s| s.parse().unwrap())
}

fn arb_extension() -> impl Strategy<Value = Extension> {
    ("[A-Za-z0-9][A-Za-z0-9_.-]{0,31}", "[!-:<>-~]{1,20}")
        .prop_filter("id is not an extension", |(name, _)| name != "id")
        .prop_map(|(name, value)| Extension { name, value })
}

proptest! {
    #[test]
    fn roundtrip(id in arb_id(), extensions in proptest::collection::vec(arb_extension(), 0..4).prop_filter("distinct extension names (repeats are their own corner case)", |v: &Vec<Extension>| { let mut n: Vec<&str> = v.iter().map(|e| e.name.as_str()).collect(); n.sort_unstable(); n.windows(2).all(|w| w[0] != w[1]) })) {
        let record = StsRecord { id, extensions };
        let text = record.to_string();
        prop_assert_eq!(StsRecord::parse(&text), Ok(record.clone()));
        let selected = select(&[TxtRr::single(&text)]);
        let is_found = matches!(&selected, Selection::Found { record: r, .. } if r == &record);
        prop_assert!(is_found);
    }

    #[test]
    fn parse_never_panics(s in "\\PC*") {
        let _ = StsRecord::parse(&s);
    }

    #[test]
    fn parse_never_panics_near_grammar(s in "v=STSv1[ \t;]{0,3}([ \t;=a-zA-Z0-9_.+-]{0,20})") {
        let _ = StsRecord::parse(&s);
    }

    #[test]
    fn select_never_panics(rrs in proptest::collection::vec(proptest::collection::vec(any::<Vec<u8>>(), 0..3), 0..4)) {
        let rrset: Vec<TxtRr> = rrs.into_iter().map(TxtRr).collect();
        let _ = select(&rrset);
    }
}
