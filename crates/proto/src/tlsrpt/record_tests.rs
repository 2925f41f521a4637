//! RFC 8460 §3 corner cases for the `_smtp._tls` record (C108–C117), one test each.

use proptest::prelude::*;

use super::*;
use crate::Severity;

/// `name: input => pattern,` asserts `TlsRptRecord::parse(input)` matches the pattern.
macro_rules! parse_cases {
    ($($name:ident: $input:expr => $pat:pat $(if $guard:expr)?,)*) => {$(
        #[test]
        #[allow(clippy::redundant_pattern_matching)] // uniform `pattern if guard` cases
        fn $name() {
            let parsed = TlsRptRecord::parse($input);
            assert!(matches!(&parsed, $pat $(if $guard)?), "{:?} parsed as {parsed:?}", $input);
        }
    )*};
}

/// `name: [rr, …] => pattern,` asserts `select` on the RRset matches the pattern.
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

fn uris(r: &TlsRptRecord) -> Vec<&str> {
    r.rua.iter().map(ReportUri::as_str).collect()
}

fn bad_rua(e: &RecordError) -> bool {
    matches!(e, RecordError::InvalidRua { .. })
}

fn has(diagnostics: &[crate::Diagnostic], code: &str, severity: Severity) -> bool {
    diagnostics
        .iter()
        .any(|d| d.code == code && d.severity == severity)
}

parse_cases! {
    mailto: "v=TLSRPTv1; rua=mailto:tlsrpt@example.com" =>
        Ok(r) if r.rua == vec![ReportUri::Mailto("mailto:tlsrpt@example.com".into())],
    https: "v=TLSRPTv1; rua=https://reports.example.com/v1" =>
        Ok(r) if r.rua == vec![ReportUri::Https("https://reports.example.com/v1".into())],
    c109_version_only: "v=TLSRPTv1" => Err(RecordError::NoFields),
    c109_version_semicolon: "v=TLSRPTv1;" => Err(RecordError::NoFields),
    c109_trailing_semicolon: "v=TLSRPTv1; rua=mailto:a@example.com;" => Ok(_),
    c109_double_semicolon: "v=TLSRPTv1;; rua=mailto:a@example.com" => Err(RecordError::EmptyField),
    c110_upper_rua_is_extension: "v=TLSRPTv1; RUA=mailto:a@example.com" => Err(RecordError::MissingRua),
    c110_no_rua: "v=TLSRPTv1; foo=bar" => Err(RecordError::MissingRua),
    c111_empty_rua: "v=TLSRPTv1; rua=" => Err(e) if bad_rua(e),
    c111_commas_only: "v=TLSRPTv1; rua=,," => Err(e) if bad_rua(e),
    c111_trailing_comma: "v=TLSRPTv1; rua=mailto:a@example.com," => Err(e) if bad_rua(e),
    c111_double_comma: "v=TLSRPTv1; rua=mailto:a@example.com,,https://r.example/" => Err(e) if bad_rua(e),
    c112_http: "v=TLSRPTv1; rua=http://reports.example.com/" => Err(e) if bad_rua(e),
    c112_ftp: "v=TLSRPTv1; rua=ftp://reports.example.com/" => Err(e) if bad_rua(e),
    c112_bare_address: "v=TLSRPTv1; rua=reports@example.com" => Err(e) if bad_rua(e),
    c112_mailto_without_address: "v=TLSRPTv1; rua=mailto:" => Err(e) if bad_rua(e),
    c112_https_without_host: "v=TLSRPTv1; rua=https:///path" => Err(e) if bad_rua(e),
    c112_https_without_slashes: "v=TLSRPTv1; rua=https:reports.example.com" => Err(e) if bad_rua(e),
    c112_mixed_list: "v=TLSRPTv1; rua=mailto:a@x.example,https://r.x.example/v1" =>
        Ok(r) if uris(r) == ["mailto:a@x.example", "https://r.x.example/v1"],
    c112_list_with_spaces: "v=TLSRPTv1; rua=mailto:a@x.example , \thttps://r.x.example/v1" =>
        Ok(r) if uris(r) == ["mailto:a@x.example", "https://r.x.example/v1"],
    c112_scheme_case_insensitive: "v=TLSRPTv1; rua=MAILTO:a@example.com,HTTPS://r.example/" =>
        Ok(r) if matches!(r.rua[0], ReportUri::Mailto(_)) && matches!(r.rua[1], ReportUri::Https(_)),
    c112_space_inside_uri: "v=TLSRPTv1; rua=mailto:a b@example.com" => Err(e) if bad_rua(e),
    c113_size_suffix: "v=TLSRPTv1; rua=mailto:a@example.com!10m" => Err(e) if bad_rua(e),
    c113_percent_encoded_bang_ok: "v=TLSRPTv1; rua=mailto:a%21b@example.com" => Ok(_),
    bad_percent_escape: "v=TLSRPTv1; rua=mailto:a%2@example.com" => Err(e) if bad_rua(e),
    c114_two_rua_fields_merged: "v=TLSRPTv1; rua=mailto:a@example.com; rua=https://r.example/" =>
        Ok(r) if uris(r) == ["mailto:a@example.com", "https://r.example/"],
    c115_invalid_extension: "v=TLSRPTv1; rua=mailto:a@example.com; _x=1" =>
        Err(RecordError::InvalidField { .. }),
    c115_extension_empty_value: "v=TLSRPTv1; rua=mailto:a@example.com; x=" =>
        Err(RecordError::InvalidField { .. }),
    c115_valid_extension_ignored: "v=TLSRPTv1; rua=mailto:a@example.com; x=y" =>
        Ok(r) if r.extensions == vec![Extension { name: "x".into(), value: "y".into() }],
    c117_space_before_semicolon: "v=TLSRPTv1 ; rua=mailto:a@example.com" => Ok(_),
    space_after_equals: "v=TLSRPTv1; rua= mailto:a@example.com" => Err(RecordError::InvalidField { .. }),
    version_case: "v=tlsrptv1; rua=mailto:a@example.com" => Err(RecordError::VersionNotFirst { .. }),
    non_ascii: "v=TLSRPTv1; rua=mailto:ä@example.com" => Err(RecordError::NotAscii { .. }),
    trailing_space_accepted: "v=TLSRPTv1; rua=mailto:a@example.com " => Ok(_),
}

select_cases! {
    c108_nothing: [] => Selection::Missing { .. },
    c109_bare_version_candidate: ["v=TLSRPTv1"] => Selection::Invalid { error: RecordError::NoFields, .. },
    c110_missing_rua: ["v=TLSRPTv1; RUA=mailto:a@example.com"] => Selection::Invalid { error: RecordError::MissingRua, .. },
    c112_bare_address_invalid: ["v=TLSRPTv1; rua=reports@example.com"] =>
        Selection::Invalid { error: RecordError::InvalidRua { .. }, .. },
    c114_duplicate_rua_merged_with_note: ["v=TLSRPTv1; rua=mailto:a@example.com; rua=mailto:b@example.com"] =>
        Selection::Found { record, diagnostics, .. }
            if record.rua.len() == 2 && has(diagnostics, "record-duplicate-rua", Severity::Info),
    c117_space_before_semicolon_noted: ["v=TLSRPTv1 ; rua=mailto:a@example.com"] =>
        Selection::Found { diagnostics, .. } if has(diagnostics, "record-space-before-semicolon", Severity::Info),
    c117_two_records: ["v=TLSRPTv1; rua=mailto:a@example.com", "v=TLSRPTv1;rua=mailto:b@example.com"] =>
        Selection::Multiple { raws, .. } if raws.len() == 2,
    spf_next_to_tlsrpt: ["v=spf1 -all", "v=TLSRPTv1; rua=mailto:a@example.com"] =>
        Selection::Found { diagnostics, .. } if has(diagnostics, "record-spf", Severity::Info),
    sts_record_is_unrelated_here: ["v=STSv1; id=1"] =>
        Selection::Missing { diagnostics } if has(diagnostics, "record-unrelated-txt", Severity::Info),
    version_case_near_miss: ["v=TLSRPTV1; rua=mailto:a@example.com"] =>
        Selection::Missing { diagnostics } if has(diagnostics, "record-version-case", Severity::Info),
    rule_is_8460: ["hello", "v=TLSRPTv1; rua=mailto:a@example.com"] =>
        Selection::Found { diagnostics, .. } if diagnostics.iter().all(|d| d.rule == "RFC 8460 §3"),
}

/// The text written for a `rua` value parses back to its URIs, and `Display` writes the same.
#[test]
fn record_text_round_trips() {
    let text = record_text("mailto:a@example.com,https://r.example.com/v1");
    assert_eq!(
        text,
        "v=TLSRPTv1; rua=mailto:a@example.com,https://r.example.com/v1"
    );
    let parsed = TlsRptRecord::parse(&text).unwrap();
    assert_eq!(parsed.rua.len(), 2);
    assert_eq!(parsed.to_string(), text);
}

#[test]
fn display_format() {
    let record = TlsRptRecord {
        rua: vec![
            ReportUri::Mailto("mailto:a@example.com".into()),
            ReportUri::Https("https://r.example/v1".into()),
        ],
        extensions: vec![Extension {
            name: "x".into(),
            value: "y".into(),
        }],
    };
    assert_eq!(
        record.to_string(),
        "v=TLSRPTv1; rua=mailto:a@example.com,https://r.example/v1; x=y"
    );
}

fn arb_uri() -> impl Strategy<Value = ReportUri> {
    prop_oneof![
        "[a-z0-9._%+-]{1,10}@[a-z0-9-]{1,10}\\.[a-z]{2,5}"
            .prop_filter("valid percent escapes", |s| !s.contains('%'))
            .prop_map(|a| ReportUri::Mailto(format!("mailto:{a}"))),
        "[a-z0-9-]{1,10}\\.[a-z]{2,5}(/[a-zA-Z0-9._~-]{0,10}){0,3}"
            .prop_map(|h| ReportUri::Https(format!("https://{h}"))),
    ]
}

fn arb_extension() -> impl Strategy<Value = Extension> {
    ("[A-Za-z0-9][A-Za-z0-9_.-]{0,31}", "[!-:<>-~]{1,20}")
        .prop_filter("rua is not an extension", |(name, _)| name != "rua")
        .prop_map(|(name, value)| Extension { name, value })
}

proptest! {
    #[test]
    fn roundtrip(
        rua in proptest::collection::vec(arb_uri(), 1..4),
        extensions in proptest::collection::vec(arb_extension(), 0..3).prop_filter("distinct extension names (repeats are their own corner case)", |v: &Vec<Extension>| { let mut n: Vec<&str> = v.iter().map(|e| e.name.as_str()).collect(); n.sort_unstable(); n.windows(2).all(|w| w[0] != w[1]) }),
    ) {
        let record = TlsRptRecord { rua, extensions };
        let text = record.to_string();
        prop_assert_eq!(TlsRptRecord::parse(&text), Ok(record.clone()));
        let selected = select(&[TxtRr::single(&text)]);
        let is_found = matches!(&selected, Selection::Found { record: r, diagnostics, .. } if r == &record && diagnostics.is_empty());
        prop_assert!(is_found, "{:?}", selected);
    }

    #[test]
    fn report_uri_roundtrip(uri in arb_uri()) {
        prop_assert_eq!(ReportUri::parse(uri.as_str()), Ok(uri.clone()));
    }

    #[test]
    fn parse_never_panics(s in "\\PC*") {
        let _ = TlsRptRecord::parse(&s);
    }

    #[test]
    fn parse_never_panics_near_grammar(s in "v=TLSRPTv1[ \t;]{0,3}(rua=)?[ -~]{0,30}") {
        let _ = TlsRptRecord::parse(&s);
    }

    #[test]
    fn select_never_panics(rrs in proptest::collection::vec(proptest::collection::vec(any::<Vec<u8>>(), 0..3), 0..4)) {
        let rrset: Vec<TxtRr> = rrs.into_iter().map(TxtRr).collect();
        let _ = select(&rrset);
    }
}

#[test]
fn c108_record_lives_at_smtp_tls() {
    assert_eq!(
        crate::tlsrpt::record_name("example.com"),
        "_smtp._tls.example.com"
    );
}

#[test]
fn report_uri_reasons_are_specific() {
    let reason = |uri: &str| match ReportUri::parse(uri) {
        Err(RecordError::InvalidRua { reason, .. }) => reason,
        other => panic!("{uri}: {other:?}"),
    };
    assert!(reason("a@example.com").contains("bare address"));
    assert!(reason("mailto:a@example.com!10m").contains("percent-encoded"));
    assert!(reason("http://r.example/").contains("only mailto: and https:"));
    assert!(reason("").contains("empty"));
}
