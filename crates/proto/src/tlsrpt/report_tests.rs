//! Tests of the TLS report reader: one per quirk and error (inline JSON), the real samples, and
//! never-panics properties.

use std::path::{Path, PathBuf};

use proptest::prelude::*;

use super::*;

/// A report whose `policies` array is `policies` (JSON text).
fn with_policies(policies: &str) -> String {
    format!(
        r#"{{"organization-name": "Org", "report-id": "id-1", "contact-info": "tls@org.example",
            "date-range": {{"start-datetime": "2024-03-25T00:00:00Z", "end-datetime": "2024-03-25T23:59:59Z"}},
            "policies": {policies}}}"#
    )
}

/// A report with one `sts` policy whose failure-details array is `details` (JSON text).
fn with_details(details: &str) -> String {
    with_policies(&format!(
        r#"[{{"policy": {{"policy-type": "sts", "policy-domain": "example.com"}},
              "summary": {{"total-successful-session-count": 1, "total-failure-session-count": 5}},
              "failure-details": {details}}}]"#
    ))
}

/// A report with one policy whose `policy` object is `policy` (JSON text).
fn with_policy(policy: &str) -> String {
    with_policies(&format!(
        r#"[{{"policy": {policy}, "summary": {{"total-successful-session-count": 1, "total-failure-session-count": 0}}}}]"#
    ))
}

/// A report whose top-level members are `members` (JSON text, without braces).
fn with_members(members: &str) -> String {
    format!("{{{members}}}")
}

fn codes(report: &TlsReport) -> Vec<&'static str> {
    report.notes.iter().map(|n| n.code.as_str()).collect()
}

/// `name: input => pattern,` asserts `TlsReport::parse(input)` matches the pattern.
macro_rules! parse_cases {
    ($($name:ident: $input:expr => $pat:pat $(if $guard:expr)?,)*) => {$(
        #[test]
        #[allow(clippy::redundant_pattern_matching)] // uniform `pattern if guard` cases
        fn $name() {
            let input: String = $input.into();
            let parsed = TlsReport::parse(input.as_bytes());
            assert!(matches!(&parsed, $pat $(if $guard)?), "{input} parsed as {parsed:?}");
        }
    )*};
}

parse_cases! {
    // a clean report: no notes
    clean_report: with_policy(r#"{"policy-type": "sts", "policy-domain": "example.com", "policy-string": ["version: STSv1"], "mx-host": ["mx.example.com"]}"#)
        => Ok(r) if r.notes.is_empty() && r.contact.as_deref() == Some("tls@org.example")
            && r.policies[0].mx == ["mx.example.com"] && r.policies[0].strings == ["version: STSv1"],
    // dates
    time_without_zone_is_utc: with_members(r#""organization-name": "O", "report-id": "i", "contact-info": "c@o",
        "date-range": {"start-datetime": "2023-01-10T00:00:00", "end-datetime": "2023-01-10T23:59:59"}, "policies": []"#)
        => Ok(r) if codes(r) == ["time-without-zone"] && r.begin.to_string() == "2023-01-10T00:00:00Z",
    time_with_offset_is_converted: with_members(r#""organization-name": "O", "report-id": "i", "contact-info": "c@o",
        "date-range": {"start-datetime": "2024-03-25T02:00:00+02:00", "end-datetime": "2024-03-25t23:59:59.999z"}, "policies": []"#)
        => Ok(r) if r.notes.is_empty() && r.begin.to_string() == "2024-03-25T00:00:00Z" && r.end.to_string() == "2024-03-25T23:59:59Z",
    time_negative_offset_crosses_day: with_members(r#""organization-name": "O", "report-id": "i", "contact-info": "c@o",
        "date-range": {"start-datetime": "2024-02-28T20:00:00-05:00", "end-datetime": "2024-03-01T00:00:00Z"}, "policies": []"#)
        => Ok(r) if r.begin.to_string() == "2024-02-29T01:00:00Z",
    time_exclusive_next_midnight_end: with_members(r#""organization-name": "O", "report-id": "i", "contact-info": "c@o",
        "date-range": {"start-datetime": "2024-03-25T00:00:00Z", "end-datetime": "2024-03-26T00:00:00Z"}, "policies": []"#)
        => Ok(r) if r.end.unix_seconds() - r.begin.unix_seconds() == 86_400,
    time_date_only_is_invalid: with_members(r#""organization-name": "O", "report-id": "i",
        "date-range": {"start-datetime": "2024-03-25", "end-datetime": "2024-03-25T23:59:59Z"}, "policies": []"#)
        => Err(ReportError::BadDateTime { path, .. }) if path == "date-range.start-datetime",
    time_space_separator_is_invalid: with_members(r#""organization-name": "O", "report-id": "i",
        "date-range": {"start-datetime": "2024-03-25 00:00:00Z", "end-datetime": "2024-03-25T23:59:59Z"}, "policies": []"#)
        => Err(ReportError::BadDateTime { .. }),
    time_february_30_is_invalid: with_members(r#""organization-name": "O", "report-id": "i",
        "date-range": {"start-datetime": "2023-02-29T00:00:00Z", "end-datetime": "2024-03-25T23:59:59Z"}, "policies": []"#)
        => Err(ReportError::BadDateTime { reason: "day out of range", .. }),
    time_short_offset_is_invalid: with_members(r#""organization-name": "O", "report-id": "i",
        "date-range": {"start-datetime": "2024-03-25T00:00:00+0200", "end-datetime": "2024-03-25T23:59:59Z"}, "policies": []"#)
        => Err(ReportError::BadDateTime { .. }),
    time_as_epoch_number_is_invalid: with_members(r#""organization-name": "O", "report-id": "i",
        "date-range": {"start-datetime": 1700000000, "end-datetime": "2024-03-25T23:59:59Z"}, "policies": []"#)
        => Err(ReportError::WrongType { found: "a number", .. }),
    time_end_before_begin_is_invalid: with_members(r#""organization-name": "O", "report-id": "i",
        "date-range": {"start-datetime": "2024-03-26T00:00:00Z", "end-datetime": "2024-03-25T23:59:59Z"}, "policies": []"#)
        => Err(ReportError::EndBeforeBegin { .. }),
    time_too_long_is_too_large: with_members(&format!(r#""organization-name": "O", "report-id": "i",
        "date-range": {{"start-datetime": "2024-03-26T00:00:00.{}Z", "end-datetime": "2024-03-25T23:59:59Z"}}, "policies": []"#, "1".repeat(100)))
        => Err(e @ ReportError::StringTooLong { .. }) if e.code() == "too-large",
    // contact-info
    contact_info_null: with_members(r#""organization-name": "O", "report-id": "i", "contact-info": null,
        "date-range": {"start-datetime": "2024-03-25T00:00:00Z", "end-datetime": "2024-03-25T23:59:59Z"}, "policies": []"#)
        => Ok(r) if r.contact.is_none() && codes(r) == ["contact-info-null"],
    contact_info_absent: with_members(r#""organization-name": "O", "report-id": "i",
        "date-range": {"start-datetime": "2024-03-25T00:00:00Z", "end-datetime": "2024-03-25T23:59:59Z"}, "policies": []"#)
        => Ok(r) if r.contact.is_none() && codes(r) == ["contact-info-null"],
    contact_info_empty: with_members(r#""organization-name": "O", "report-id": "i", "contact-info": "",
        "date-range": {"start-datetime": "2024-03-25T00:00:00Z", "end-datetime": "2024-03-25T23:59:59Z"}, "policies": []"#)
        => Ok(r) if r.contact.is_none() && codes(r) == ["empty-string", "contact-info-null"],
    contact_info_number_is_invalid: with_members(r#""organization-name": "O", "report-id": "i", "contact-info": 5,
        "date-range": {"start-datetime": "2024-03-25T00:00:00Z", "end-datetime": "2024-03-25T23:59:59Z"}, "policies": []"#)
        => Err(ReportError::WrongType { path, .. }) if path == "contact-info",
    // required top-level members
    organization_missing_is_invalid: with_members(r#""report-id": "i",
        "date-range": {"start-datetime": "2024-03-25T00:00:00Z", "end-datetime": "2024-03-25T23:59:59Z"}, "policies": []"#)
        => Err(e @ ReportError::MissingField { path }) if path == "organization-name" && e.code() == "invalid",
    report_id_number_is_invalid: with_members(r#""organization-name": "O", "report-id": 7,
        "date-range": {"start-datetime": "2024-03-25T00:00:00Z", "end-datetime": "2024-03-25T23:59:59Z"}, "policies": []"#)
        => Err(ReportError::WrongType { path, .. }) if path == "report-id",
    date_range_missing_is_invalid: with_members(r#""organization-name": "O", "report-id": "i", "policies": []"#)
        => Err(ReportError::MissingField { path }) if path == "date-range",
    policies_missing_is_invalid: with_members(r#""organization-name": "O", "report-id": "i",
        "date-range": {"start-datetime": "2024-03-25T00:00:00Z", "end-datetime": "2024-03-25T23:59:59Z"}"#)
        => Err(ReportError::MissingField { path }) if path == "policies",
    policies_object_is_invalid: with_policies(r#"{"policy": {"policy-type": "sts"}}"#)
        => Err(ReportError::WrongType { path, expected: "an array", .. }) if path == "policies",
    policies_empty_is_read: with_policies("[]") => Ok(r) if r.policies.is_empty(),
    root_array_is_invalid: "[1, 2]" => Err(ReportError::WrongType { path, .. }) if path == "the document",
    dmarc_like_json_is_invalid: r#"{"feedback": {"report_metadata": {}}}"#
        => Err(ReportError::MissingField { path }) if path == "organization-name",
    // JSON itself
    not_json_is_malformed: "<feedback/>" => Err(e @ ReportError::Malformed { .. }) if e.code() == "malformed",
    empty_input_is_malformed: "" => Err(ReportError::Malformed { .. }),
    trailing_garbage_is_malformed: format!("{} x", with_policies("[]")) => Err(ReportError::Malformed { .. }),
    duplicate_member_is_invalid: with_members(r#""organization-name": "O", "organization-name": "P", "report-id": "i",
        "date-range": {"start-datetime": "2024-03-25T00:00:00Z", "end-datetime": "2024-03-25T23:59:59Z"}, "policies": []"#)
        => Err(e @ ReportError::DuplicateMember { message }) if message.contains("organization-name") && e.code() == "invalid",
    byte_order_mark_is_skipped: format!("\u{feff}{}", with_policies("[]")) => Ok(r) if codes(r) == ["byte-order-mark"],
    deep_nesting_is_too_large: format!("{}{}", "[".repeat(200), "]".repeat(200)) => Err(e @ ReportError::TooDeep { .. }) if e.code() == "too-large",
    // policy
    policy_missing_is_invalid: with_policies(r#"[{"summary": {}}]"#)
        => Err(ReportError::MissingField { path }) if path == "policies[0].policy",
    policy_type_missing_is_invalid: with_policy(r#"{"policy-domain": "example.com"}"#)
        => Err(ReportError::MissingField { path }) if path == "policies[0].policy.policy-type",
    policy_type_tlsa: with_policy(r#"{"policy-type": "tlsa", "policy-domain": "example.com", "policy-string": ["[\"3 1 1 AB\"]"]}"#)
        => Ok(r) if r.policies[0].policy_type == PolicyType::Tlsa && r.policies[0].strings == ["[\"3 1 1 AB\"]"] && r.notes.is_empty(),
    policy_type_unknown_kept_as_sent: with_policy(r#"{"policy-type": "Invalid-Type", "policy-domain": "example.com"}"#)
        => Ok(r) if r.policies[0].policy_type == PolicyType::Other("Invalid-Type".into()) && codes(r) == ["unknown-policy-type"],
    policy_domain_missing: with_policy(r#"{"policy-type": "no-policy-found"}"#)
        => Ok(r) if r.policies[0].domain.is_none() && codes(r) == ["policy-domain-missing"],
    mx_host_bare_string: with_policy(r#"{"policy-type": "sts", "policy-domain": "example.com", "mx-host": "*.mail.example.com"}"#)
        => Ok(r) if r.policies[0].mx == ["*.mail.example.com"] && codes(r) == ["mx-host-string"],
    mx_host_null_is_empty: with_policy(r#"{"policy-type": "sts", "policy-domain": "example.com", "mx-host": null}"#)
        => Ok(r) if r.policies[0].mx.is_empty() && r.notes.is_empty(),
    mx_host_number_element_is_invalid: with_policy(r#"{"policy-type": "sts", "policy-domain": "example.com", "mx-host": ["a", 1]}"#)
        => Err(ReportError::WrongType { path, .. }) if path == "policies[0].policy.mx-host[1]",
    mx_host_too_many: with_policy(&format!(r#"{{"policy-type": "sts", "policy-domain": "d", "mx-host": [{}]}}"#, vec!["\"m\""; MAX_POLICY_LINES + 1].join(",")))
        => Err(e @ ReportError::TooMany { limit: MAX_POLICY_LINES, .. }) if e.code() == "too-large",
    policy_string_bare_string: with_policy(r#"{"policy-type": "sts", "policy-domain": "example.com", "policy-string": "version: STSv1"}"#)
        => Ok(r) if r.policies[0].strings == ["version: STSv1"] && codes(r) == ["policy-string-string"],
    policy_string_too_long: with_policy(&format!(r#"{{"policy-type": "sts", "policy-domain": "d", "policy-string": ["{}"]}}"#, "a".repeat(MAX_STRING_BYTES + 1)))
        => Err(ReportError::StringTooLong { limit: MAX_STRING_BYTES, .. }),
    policies_too_many: with_policies(&format!("[{}]", vec![r#"{"policy": {"policy-type": "sts"}}"#; MAX_POLICIES + 1].join(",")))
        => Err(ReportError::TooMany { limit: MAX_POLICIES, .. }),
    // summary
    summary_missing_reads_zero: with_policies(r#"[{"policy": {"policy-type": "sts", "policy-domain": "d"}}]"#)
        => Ok(r) if r.policies[0].success == 0 && r.policies[0].failure == 0 && codes(r) == ["summary-count-missing"],
    summary_failure_count_missing: with_policies(r#"[{"policy": {"policy-type": "sts", "policy-domain": "d"}, "summary": {"total-successful-session-count": 4}}]"#)
        => Ok(r) if r.policies[0].success == 4 && codes(r) == ["summary-count-missing"],
    summary_negative_count_is_invalid: with_policies(r#"[{"policy": {"policy-type": "sts"}, "summary": {"total-successful-session-count": -1}}]"#)
        => Err(e @ ReportError::NegativeCount { path, .. }) if path == "policies[0].summary.total-successful-session-count" && e.code() == "invalid",
    summary_fractional_count_is_invalid: with_policies(r#"[{"policy": {"policy-type": "sts"}, "summary": {"total-successful-session-count": 1.5}}]"#)
        => Err(ReportError::AbsurdCount { .. }),
    summary_huge_count_is_invalid: with_policies(r#"[{"policy": {"policy-type": "sts"}, "summary": {"total-successful-session-count": 9007199254740992}}]"#)
        => Err(ReportError::AbsurdCount { .. }),
    summary_beyond_u64_is_invalid: with_policies(r#"[{"policy": {"policy-type": "sts"}, "summary": {"total-successful-session-count": 1e300}}]"#)
        => Err(ReportError::AbsurdCount { .. }),
    summary_largest_count_is_read: with_policies(r#"[{"policy": {"policy-type": "sts", "policy-domain": "d"}, "summary": {"total-successful-session-count": 9007199254740991, "total-failure-session-count": 0}}]"#)
        => Ok(r) if r.policies[0].success == MAX_COUNT,
    summary_count_as_string_is_invalid: with_policies(r#"[{"policy": {"policy-type": "sts"}, "summary": {"total-successful-session-count": "3"}}]"#)
        => Err(ReportError::WrongType { expected: "an integer", .. }),
    // failure details
    failure_details_full: with_details(r#"[{"result-type": "certificate-expired", "failed-session-count": 3, "sending-mta-ip": "203.0.113.5",
        "receiving-mx-hostname": "mx.example.com", "receiving-mx-helo": "mx", "receiving-ip": "192.0.2.25",
        "additional-information": "https://r.example/x", "failure-reason-code": "X509_V_ERR_CERT_HAS_EXPIRED"}]"#)
        => Ok(r) if r.notes.is_empty() && r.policies[0].failures[0] == FailureDetail {
            result: ResultType::CertificateExpired, count: 3, sending_ip: Some("203.0.113.5".into()),
            receiving_mx: Some("mx.example.com".into()), receiving_helo: Some("mx".into()), receiving_ip: Some("192.0.2.25".into()),
            additional_info: Some("https://r.example/x".into()), reason_code: Some("X509_V_ERR_CERT_HAS_EXPIRED".into()) },
    failure_details_sum_above_total: with_details(r#"[{"result-type": "sts-policy-fetch-error", "failed-session-count": 4},
        {"result-type": "validation-failure", "failed-session-count": 2}]"#)
        => Ok(r) if codes(r) == ["failure-sum-above-total"] && r.policies[0].failure == 5,
    failure_details_only_result_type: with_details(r#"[{"result-type": "sts-policy-fetch-error", "failed-session-count": 1}]"#)
        => Ok(r) if r.notes.is_empty() && r.policies[0].failures[0].sending_ip.is_none(),
    failure_details_empty_strings_are_absent: with_details(r#"[{"result-type": "sts-policy-fetch-error", "failed-session-count": 1, "sending-mta-ip": "", "receiving-ip": ""}]"#)
        => Ok(r) if codes(r) == ["empty-string"] && r.policies[0].failures[0].receiving_ip.is_none(),
    failure_details_unknown_result_type: with_details(r#"[{"result-type": "mx-mismatch", "failed-session-count": 1}]"#)
        => Ok(r) if r.policies[0].failures[0].result == ResultType::Other("mx-mismatch".into()) && codes(r) == ["unknown-result-type"],
    failure_details_result_type_missing: with_details(r#"[{"failed-session-count": 1}]"#)
        => Err(ReportError::MissingField { path }) if path == "policies[0].failure-details[0].result-type",
    failure_details_count_missing: with_details(r#"[{"result-type": "validation-failure"}]"#)
        => Ok(r) if r.policies[0].failures[0].count == 0 && codes(r) == ["failed-session-count-missing"],
    failure_details_negative_count: with_details(r#"[{"result-type": "validation-failure", "failed-session-count": -2}]"#)
        => Err(ReportError::NegativeCount { value, .. }) if value == "-2",
    failure_details_additional_info_uri_alias: with_details(r#"[{"result-type": "validation-failure", "failed-session-count": 1, "additional-info-uri": "https://x"}]"#)
        => Ok(r) if r.policies[0].failures[0].additional_info.as_deref() == Some("https://x") && codes(r) == ["additional-info-uri"],
    failure_details_both_spellings_agree: with_details(r#"[{"result-type": "validation-failure", "failed-session-count": 1, "additional-information": "u", "additional-info-uri": "u"}]"#)
        => Ok(r) if r.policies[0].failures[0].additional_info.as_deref() == Some("u") && r.notes.is_empty(),
    failure_details_both_spellings_differ: with_details(r#"[{"result-type": "validation-failure", "failed-session-count": 1, "additional-information": "u", "additional-info-uri": "v"}]"#)
        => Err(ReportError::ConflictingAlias { .. }),
    failure_details_rfc_broken_url_kept: with_details(r#"[{"result-type": "starttls-not-supported", "failed-session-count": 1, "additional-information": "https://reports.company-x.example/ report_info ? id = 5065427 c - 23 d3# StarttlsNotSupported "}]"#)
        => Ok(r) if r.policies[0].failures[0].additional_info.as_deref().is_some_and(|s| s.contains(" report_info ")),
    failure_details_null_is_empty: with_details("null") => Ok(r) if r.policies[0].failures.is_empty(),
    failure_details_object_is_invalid: with_details(r#"{"result-type": "validation-failure"}"#)
        => Err(ReportError::WrongType { expected: "an array", .. }),
    failure_details_element_string_is_invalid: with_details(r#"["validation-failure"]"#)
        => Err(ReportError::WrongType { path, .. }) if path == "policies[0].failure-details[0]",
    unknown_members_are_ignored: with_details(r#"[{"result-type": "validation-failure", "failed-session-count": 1, "x-extra": {"a": [1]}}]"#)
        => Ok(r) if r.notes.is_empty(),
}

#[test]
fn failure_details_capped_over_all_policies() {
    let detail = r#"{"result-type": "validation-failure", "failed-session-count": 1}"#;
    let half = vec![detail; MAX_FAILURE_DETAILS / 2 + 1].join(",");
    let policy = format!(
        r#"{{"policy": {{"policy-type": "sts", "policy-domain": "d"}}, "failure-details": [{half}]}}"#
    );
    let doc = with_policies(&format!("[{policy},{policy}]"));
    let parsed = TlsReport::parse(doc.as_bytes());
    assert!(
        matches!(&parsed, Err(ReportError::TooMany { path, .. }) if path == "policies[1].failure-details"),
        "{parsed:?}"
    );
}

#[test]
fn too_large_document() {
    let doc = vec![b' '; MAX_REPORT_BYTES + 1];
    let err = TlsReport::parse(&doc).unwrap_err();
    assert_eq!(err.code(), "too-large");
}

#[test]
fn notes_keep_one_per_code() {
    let doc = with_policies(
        r#"[{"policy": {"policy-type": "sts"}}, {"policy": {"policy-type": "tlsa"}}]"#,
    );
    let report = TlsReport::parse(doc.as_bytes()).unwrap();
    assert_eq!(
        codes(&report),
        ["policy-domain-missing", "summary-count-missing"]
    );
    assert!(report.notes[0].message.contains("policies[0]"));
}

#[test]
fn utc_time_bounds_and_display() {
    assert_eq!(
        UtcTime::from_unix_seconds(0).unwrap().to_string(),
        "1970-01-01T00:00:00Z"
    );
    assert_eq!(
        UtcTime::from_unix_seconds(-1).unwrap().to_string(),
        "1969-12-31T23:59:59Z"
    );
    assert_eq!(
        UtcTime::from_unix_seconds(951_782_400).unwrap().to_string(),
        "2000-02-29T00:00:00Z"
    );
    assert_eq!(
        UtcTime::from_unix_seconds(253_402_300_799)
            .unwrap()
            .to_string(),
        "9999-12-31T23:59:59Z"
    );
    assert_eq!(UtcTime::from_unix_seconds(253_402_300_800), None);
    assert_eq!(UtcTime::from_unix_seconds(-62_167_219_201), None);
    assert_eq!(
        UtcTime::from_unix_seconds(-62_167_219_200)
            .unwrap()
            .to_string(),
        "0000-01-01T00:00:00Z"
    );
}

// ---- the real samples ----

fn json_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "json") {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

/// Every TLS-RPT `.json` sample parses, with the notes its quirks call for.
#[test]
fn tlsrpt_samples() {
    let Some(dir) = mtasts_testkit::services::samples_dir() else {
        return;
    };
    let expected: &[(&str, usize, &[&str])] = &[
        ("dmarc-report-viewer/google.json", 1, &[]),
        ("dmarc-report-viewer/microsoft.json", 2, &[]),
        (
            "dmarc-report-viewer/no-contact.json",
            1,
            &["contact-info-null"],
        ),
        ("dmarc-report-viewer/no-policy.json", 1, &[]),
        ("dmarc-report-viewer/no_ip_and_mx.json", 1, &[]),
        ("dmarc-report-viewer/rfc-example.json", 1, &[]),
        ("mail-auth/rpt01.json", 1, &[]),
        ("mail-auth/rpt02.json", 1, &[]),
        (
            "mail-auth/rpt03.json",
            2,
            &[
                "policy-domain-missing",
                "summary-count-missing",
                "unknown-policy-type",
            ],
        ),
        ("mta-sts-exporter/google.json", 1, &[]),
        (
            "mta-sts-exporter/microsoft-2.json",
            1,
            &["time-without-zone"],
        ),
        ("mta-sts-exporter/microsoft.json", 1, &[]),
        ("mta-sts-exporter/rfc-errata-6241.json", 1, &[]),
        ("mta-sts-exporter/rfc.json", 1, &["mx-host-string"]),
        ("parsedmarc/mail.ru.json", 1, &["failure-sum-above-total"]),
        ("parsedmarc/rfc8460.json", 1, &["mx-host-string"]),
        ("parsedmarc/smtp_tls.json", 1, &[]),
    ];
    let tlsrpt = dir.join("tlsrpt");
    let found = json_files(&tlsrpt);
    assert_eq!(
        found.len(),
        expected.len(),
        "TLS-RPT .json samples changed: {found:?}"
    );
    for (file, policies, notes) in expected {
        let bytes = std::fs::read(tlsrpt.join(file)).unwrap();
        let report = TlsReport::parse(&bytes).unwrap_or_else(|e| panic!("{file}: {e}"));
        assert_eq!(report.policies.len(), *policies, "{file}");
        let mut got = codes(&report);
        got.sort_unstable();
        assert_eq!(got, *notes, "{file}: {:?}", report.notes);
        assert!(report.begin <= report.end, "{file}");
    }
}

/// The `.json` files among the DMARC samples are not TLS reports: each is `invalid`, none panics.
#[test]
fn dmarc_json_samples_are_not_tls_reports() {
    let Some(dir) = mtasts_testkit::services::samples_dir() else {
        return;
    };
    let files = json_files(&dir.join("dmarc"));
    assert!(!files.is_empty());
    for file in files {
        let err = TlsReport::parse(&std::fs::read(&file).unwrap()).unwrap_err();
        assert_eq!(err.code(), "invalid", "{}: {err}", file.display());
    }
}

proptest! {
    #[test]
    fn never_panics_on_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = TlsReport::parse(&bytes);
    }

    #[test]
    fn never_panics_on_report_like_text(
        text in r#"\{("(organization-name|report-id|contact-info|date-range|start-datetime|end-datetime|policies|policy|policy-type|policy-domain|mx-host|summary|failure-details|result-type|failed-session-count)"|[:,\[\]{}]|-?[0-9]{1,20}(\.[0-9])?|null|"[0-9T:Z+-]{0,25}"| ){0,60}\}"#
    ) {
        let _ = TlsReport::parse(text.as_bytes());
    }

    #[test]
    fn datetime_roundtrip(seconds in -62_167_219_200i64..=253_402_300_799) {
        let time = UtcTime::from_unix_seconds(seconds).unwrap();
        let parsed = datetime::parse(&time.to_string()).unwrap();
        prop_assert_eq!(parsed.time, time);
        prop_assert!(parsed.had_zone);
    }

    #[test]
    fn datetime_never_panics(text in "[0-9T:Zz.+ -]{0,40}") {
        let _ = datetime::parse(&text);
    }
}
