//! Unit tests of the `_dmarc` record grammar, tag values, selection and reporting URIs.

use super::*;

fn codes(p: &Parsed) -> Vec<&'static str> {
    p.diagnostics.iter().map(|d| d.code).collect()
}

fn has(p: &Parsed, code: &str, severity: Severity) -> bool {
    p.diagnostics
        .iter()
        .any(|d| d.code == code && d.severity == severity)
}

#[test]
fn a_full_record_reads_every_tag() {
    let p = parse(
        "v=DMARC1; p=reject; sp=quarantine; np=reject; adkim=s; aspf=r; pct=100; fo=1:d; \
         rua=mailto:a@example.com,mailto:b@reports.example.net!10m; ruf=mailto:f@example.com; \
         ri=3600; rf=afrf; psd=n; t=n",
    );
    let r = &p.record;
    assert_eq!(r.p, Some(RequestedPolicy::Reject));
    assert_eq!(r.sp, Some(RequestedPolicy::Quarantine));
    assert_eq!(r.np, Some(RequestedPolicy::Reject));
    assert!(r.adkim_strict && !r.aspf_strict);
    assert_eq!(r.pct, 100);
    assert_eq!(r.fo, ["1", "d"]);
    assert_eq!(r.rua.len(), 2);
    assert_eq!(r.rua[1].uri, "mailto:b@reports.example.net");
    assert_eq!(r.rua[1].destination.as_deref(), Some("reports.example.net"));
    assert_eq!(r.ruf[0].destination.as_deref(), Some("example.com"));
    assert_eq!(r.ri, Some(3600));
    assert_eq!(r.psd, Psd::No);
    assert!(!r.testing);
    // The removed tags are notes; the size suffix too. Nothing worse.
    assert!(
        p.diagnostics.iter().all(|d| d.severity == Severity::Info),
        "{:#?}",
        p.diagnostics
    );
    let c = codes(&p);
    assert_eq!(
        c.iter().filter(|c| **c == "dmarc-tag-removed").count(),
        3,
        "{c:?}"
    );
    assert!(c.contains(&"dmarc-uri-size-limit"));
    assert_eq!(r.policy_7489(), Some(RequestedPolicy::Reject));
    assert_eq!(r.policy_9989(), Some(RequestedPolicy::Reject));
}

#[test]
fn whitespace_around_separators_and_equals_is_allowed() {
    let p =
        parse("v = DMARC1 ;\tp = quarantine ; rua = mailto:a@example.com , mailto:b@example.com ;");
    assert_eq!(p.record.p, Some(RequestedPolicy::Quarantine));
    assert_eq!(p.record.rua.len(), 2);
    assert!(
        p.diagnostics.iter().all(|d| d.severity == Severity::Info),
        "{:#?}",
        p.diagnostics
    );
    assert!(codes(&p).contains(&"dmarc-version-spacing"));
    assert!(is_candidate("v =DMARC1"));
    assert!(is_candidate("v=DMARC1"));
    assert!(is_candidate("v=DMARC1 ; p=none"));
}

#[test]
fn version_must_be_first_exact_and_followed_by_a_separator() {
    assert!(!is_candidate("p=reject; v=DMARC1"));
    assert!(!is_candidate("v=dmarc1; p=reject"));
    assert!(!is_candidate("v=DMARC10; p=reject"));
    assert!(!is_candidate("v=DMARC1 p=reject"));
    assert!(!is_candidate("v=spf1 -all"));
    assert!(!is_candidate(""));
    let set = select(&[
        TxtRr::single("v=dmarc1; p=reject"),
        TxtRr::single("p=reject; v=DMARC1"),
        TxtRr::single("v=DMARC1 p=reject"),
        TxtRr::single("v=spf1 -all"),
        TxtRr::single("google-site-verification=x"),
    ]);
    let RecordSet::Missing { diagnostics } = set else {
        panic!("{set:?}")
    };
    let c: Vec<_> = diagnostics.iter().map(|d| d.code).collect();
    assert_eq!(
        c,
        [
            "dmarc-version-case",
            "dmarc-version-not-first",
            "dmarc-version-near-miss",
            "dmarc-spf-at-dmarc",
            "dmarc-unrelated-txt"
        ]
    );
    assert!(diagnostics.iter().all(|d| d.severity == Severity::Info));
}

#[test]
fn exactly_one_record_is_selected_from_split_strings() {
    let rr = TxtRr(vec![b"v=DMARC1; p=re".to_vec(), b"ject".to_vec()]);
    let set = select(&[rr, TxtRr::single("v=spf1 -all")]);
    assert_eq!(set.one().and_then(|r| r.p), Some(RequestedPolicy::Reject));
    let two = select(&[
        TxtRr::single("v=DMARC1; p=none"),
        TxtRr::single("v=DMARC1; p=reject"),
    ]);
    assert!(matches!(two, RecordSet::Multiple { ref raws, .. } if raws.len() == 2));
    assert!(two.one().is_none());
    assert!(matches!(select(&[]), RecordSet::Missing { .. }));
}

#[test]
fn bad_values_fall_back_to_defaults_as_errors() {
    let p = parse(
        "v=DMARC1; p=reject; adkim=x; aspf=strict; pct=101; fo=2; psd=maybe; t=yes; ri=soon; rf=iodef",
    );
    let r = &p.record;
    assert_eq!(r.p, Some(RequestedPolicy::Reject));
    assert!(!r.adkim_strict && !r.aspf_strict);
    assert_eq!(r.pct, 100);
    assert!(!r.pct_given);
    assert_eq!(r.fo, ["0"]);
    assert_eq!(r.psd, Psd::Unknown);
    assert!(!r.testing);
    assert_eq!(r.ri, None);
    let invalid = p
        .diagnostics
        .iter()
        .filter(|d| d.code == "dmarc-tag-invalid" && d.severity == Severity::Error)
        .count();
    assert_eq!(invalid, 8, "{:#?}", p.diagnostics);
    for bad in ["pct=-1", "pct=1000", "pct=", "pct=5.5", "pct=0100"] {
        let p = parse(&format!("v=DMARC1; p=none; {bad}"));
        assert!(has(&p, "dmarc-tag-invalid", Severity::Error), "{bad}");
    }
    let zero = parse("v=DMARC1; p=reject; pct=0");
    assert_eq!(zero.record.pct, 0);
    assert!(zero.record.pct_given);
}

#[test]
fn missing_p_depends_on_rua_for_rfc7489_receivers() {
    let bare = parse("v=DMARC1");
    assert!(has(&bare, "dmarc-p-missing", Severity::Error));
    assert_eq!(bare.record.policy_7489(), None);
    assert_eq!(bare.record.policy_9989(), Some(RequestedPolicy::None));

    let with_rua = parse("v=DMARC1; rua=mailto:d@example.com");
    assert!(has(&with_rua, "dmarc-p-missing", Severity::Warning));
    assert_eq!(with_rua.record.policy_7489(), Some(RequestedPolicy::None));

    let bad_p = parse("v=DMARC1; p=rejected; rua=mailto:d@example.com");
    assert!(has(&bad_p, "dmarc-tag-invalid", Severity::Error));
    assert!(codes(&bad_p).contains(&"dmarc-p-missing"));
    assert_eq!(bad_p.record.policy_7489(), Some(RequestedPolicy::None));

    let bad_p_no_rua = parse("v=DMARC1; p=rejected");
    assert_eq!(bad_p_no_rua.record.policy_7489(), None);
    assert!(has(&bad_p_no_rua, "dmarc-p-missing", Severity::Error));
}

#[test]
fn an_invalid_sp_spoils_p_for_rfc7489_receivers() {
    let p = parse("v=DMARC1; p=reject; sp=block");
    assert_eq!(p.record.policy_7489(), None);
    assert_eq!(p.record.policy_9989(), Some(RequestedPolicy::Reject));
    let with_rua = parse("v=DMARC1; p=reject; sp=block; rua=mailto:d@example.com");
    assert_eq!(with_rua.record.policy_7489(), Some(RequestedPolicy::None));
}

#[test]
fn p_must_follow_v_for_rfc7489() {
    let p = parse("v=DMARC1; rua=mailto:d@example.com; p=reject");
    assert_eq!(p.record.p, Some(RequestedPolicy::Reject));
    assert!(has(&p, "dmarc-p-not-second", Severity::Warning));
    assert!(
        !codes(&parse("v=DMARC1; p=reject; rua=mailto:d@example.com"))
            .contains(&"dmarc-p-not-second")
    );
}

#[test]
fn repeated_tags_invalidate_the_record() {
    for text in [
        "v=DMARC1; p=none; p=reject",
        "v=DMARC1; p=none; rua=mailto:a@example.com; RUA=mailto:b@example.com",
        "v=DMARC1; p=none; v=DMARC1",
    ] {
        let p = parse(text);
        assert!(p.record.duplicate_tag, "{text}");
        assert!(has(&p, "dmarc-tag-duplicate", Severity::Error), "{text}");
        assert_eq!(p.record.policy_7489(), None, "{text}");
        assert_eq!(p.record.policy_9989(), None, "{text}");
    }
}

#[test]
fn case_is_accepted_with_a_warning() {
    let p = parse("v=DMARC1; P=Reject; ADKIM=S");
    assert_eq!(p.record.p, Some(RequestedPolicy::Reject));
    assert!(p.record.adkim_strict);
    assert!(has(&p, "dmarc-tag-case", Severity::Warning));
    let count = codes(&p).iter().filter(|c| **c == "dmarc-tag-case").count();
    assert_eq!(count, 1, "one warning per record is enough");
    let v_upper = parse("V=DMARC1; p=none");
    assert!(is_candidate("V=DMARC1; p=none"));
    assert_eq!(v_upper.record.p, Some(RequestedPolicy::None));
}

#[test]
fn unknown_tags_and_empty_fields_are_ignored() {
    let p = parse("v=DMARC1;; p=none; rau=mailto:a@example.com; x_y=1;");
    assert_eq!(p.record.p, Some(RequestedPolicy::None));
    let unknown: Vec<_> = p
        .diagnostics
        .iter()
        .filter(|d| d.code == "dmarc-tag-unknown")
        .collect();
    assert_eq!(unknown.len(), 2);
    assert!(unknown.iter().all(|d| d.severity == Severity::Info));
    let syntax = parse("v=DMARC1; p=none; rejectall; 1x=2");
    assert_eq!(
        codes(&syntax)
            .iter()
            .filter(|c| **c == "dmarc-tag-syntax")
            .count(),
        2
    );
}

#[test]
fn report_uris() {
    let (uri, size) = report_uri("mailto:dmarc@Reports.Example.NET!50k").unwrap();
    assert_eq!(uri.uri, "mailto:dmarc@Reports.Example.NET");
    assert_eq!(uri.destination.as_deref(), Some("reports.example.net"));
    assert_eq!(size.as_deref(), Some("50k"));
    let (https, _) = report_uri("https://example.com/dmarc").unwrap();
    assert_eq!(https.destination, None);
    for bad in [
        "",
        "dmarc@example.com",
        "mailto:",
        "mailto:@example.com",
        "mailto:dmarc",
        "mailto:dmarc@",
        "mailto:dmarc@bad_domain.example",
        "mailto:a b@example.com",
        "mailto:a@example.com!big",
        "1x:abc",
        "mailto:a@localhost",
    ] {
        assert!(report_uri(bad).is_err(), "{bad:?}");
    }
    let p = parse(
        "v=DMARC1; p=none; rua=https://example.com/r, dmarc@example.com, mailto:ok@example.com",
    );
    assert_eq!(p.record.rua.len(), 2);
    assert!(has(&p, "dmarc-uri-scheme", Severity::Warning));
    assert!(has(&p, "dmarc-uri-invalid", Severity::Error));
}

#[test]
fn too_many_uris_are_cut() {
    let uris: Vec<String> = (0..40)
        .map(|i| format!("mailto:r{i}@example.com"))
        .collect();
    let p = parse(&format!("v=DMARC1; p=none; rua={}", uris.join(",")));
    assert_eq!(p.record.rua.len(), MAX_URIS);
    assert!(codes(&p).contains(&"dmarc-uri-too-many"));
}

#[test]
fn names_and_text() {
    assert_eq!(record_name("example.com"), "_dmarc.example.com");
    assert_eq!(
        authorization_name("example.com", "reports.example.net"),
        "example.com._report._dmarc.reports.example.net"
    );
    let text = record_text(
        RequestedPolicy::Quarantine,
        &["mailto:d@example.com".to_owned()],
    );
    assert_eq!(text, "v=DMARC1; p=quarantine; rua=mailto:d@example.com");
    let p = parse(&text);
    assert!(p.diagnostics.is_empty(), "{:#?}", p.diagnostics);
    assert_eq!(
        RequestedPolicy::None.next_step(),
        Some(RequestedPolicy::Quarantine)
    );
    assert_eq!(
        RequestedPolicy::Quarantine.next_step(),
        Some(RequestedPolicy::Reject)
    );
    assert_eq!(RequestedPolicy::Reject.next_step(), None);
}

#[test]
fn huge_and_odd_input_is_bounded() {
    let long = format!("v=DMARC1; p=none; {}", "x=1; ".repeat(10_000));
    let set = select(&[TxtRr::single(&long)]);
    let RecordSet::One { raw, .. } = set else {
        panic!()
    };
    assert!(raw.len() <= MAX_RECORD_BYTES);
    let p = parse("v=DMARC1; p=none; rua=mailto:\u{e9}@example.com");
    assert!(has(&p, "dmarc-uri-invalid", Severity::Error));
}

proptest::proptest! {
    #[test]
    fn never_panics(s in "\\PC*") {
        let _ = parse(&s);
        let _ = select(&[TxtRr::single(&s)]);
        let _ = parse(&format!("v=DMARC1;{s}"));
    }
}
