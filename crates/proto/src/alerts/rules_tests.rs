use super::*;
use crate::alerts::{EVIDENCE_DAYS, Thresholds};

/// 2026-12-07 00:00 UTC.
const TODAY: i64 = 1_796_601_600;
/// Noon today: rules look at days, not the hour.
const NOW: i64 = TODAY + 12 * 3600;

/// The day `n` days before today.
fn ago(n: i64) -> i64 {
    TODAY - n * DAY
}

fn day(n: i64, org: &str, success: u64, failure: u64) -> TlsDay {
    TlsDay {
        day: ago(n),
        organization: org.into(),
        success,
        failure,
    }
}

fn failure(result: &str, mx: Option<&str>, count: u64, first: i64, last: i64) -> FailureSeen {
    FailureSeen {
        result: result.into(),
        receiving_mx: mx.map(str::to_owned),
        organization: "google.com".into(),
        count,
        first_day: ago(first),
        last_day: ago(last),
    }
}

fn patterns(list: &[&str]) -> Vec<MxPattern> {
    list.iter().map(|p| p.parse().unwrap()).collect()
}

fn run(days: &[TlsDay], failures: &[FailureSeen], mx: Option<&[MxPattern]>) -> Vec<Alert> {
    evaluate(
        &Evidence {
            domain: "example.com",
            days,
            failures,
            mx,
            records: &[],
        },
        Thresholds::default(),
        NOW,
    )
}

fn kinds(alerts: &[Alert]) -> Vec<(AlertKind, &str)> {
    alerts.iter().map(|a| (a.kind, a.key.as_str())).collect()
}

#[test]
fn no_evidence_no_alerts() {
    assert!(run(&[], &[], None).is_empty());
}

#[test]
fn the_evidence_window_covers_the_longest_rule() {
    const { assert!(EVIDENCE_DAYS > KNOWN_DAYS + RECENT_DAYS) };
}

// Rule (a): the failure rate.

#[test]
fn a_failure_rate_at_the_threshold_fires() {
    let alerts = run(&[day(1, "google.com", 95, 5)], &[], None);
    assert_eq!(kinds(&alerts), vec![(AlertKind::FailureRate, "")]);
    let a = &alerts[0];
    assert_eq!(a.since, ago(1));
    assert!(a.title.starts_with("5.0% of TLS sessions"), "{}", a.title);
    assert!(a.what.contains("5 failed of 100"), "{}", a.what);
}

#[test]
fn a_failure_rate_below_the_threshold_does_not_fire() {
    assert!(run(&[day(1, "google.com", 951, 49)], &[], None).is_empty());
}

#[test]
fn too_few_sessions_are_not_judged() {
    assert!(run(&[day(1, "google.com", 10, 9)], &[], None).is_empty());
}

#[test]
fn the_rate_is_judged_on_the_latest_day_over_all_organizations() {
    // Yesterday: 2 of 100 fail over two organizations; the day before was bad.
    let days = [
        day(2, "google.com", 50, 50),
        day(1, "google.com", 49, 1),
        day(1, "microsoft.com", 49, 1),
    ];
    assert!(run(&days, &[], None).is_empty());
}

#[test]
fn an_old_latest_day_is_not_judged() {
    assert!(run(&[day(5, "google.com", 50, 50)], &[], None).is_empty());
}

#[test]
fn the_rate_alert_dates_from_the_first_bad_day_of_the_run() {
    let days = [
        day(5, "google.com", 100, 0),
        day(4, "google.com", 50, 50),
        day(3, "google.com", 50, 50),
        day(2, "google.com", 50, 50),
        day(1, "google.com", 50, 50),
    ];
    let alerts = run(&days, &[], None);
    assert_eq!(alerts[0].since, ago(4));
}

#[test]
fn a_tenant_threshold_applies() {
    let alerts = evaluate(
        &Evidence {
            domain: "example.com",
            days: &[day(1, "google.com", 98, 2)],
            failures: &[],
            mx: None,
            records: &[],
        },
        Thresholds {
            failure_permille: 10,
            min_sessions: 100,
        },
        NOW,
    );
    assert_eq!(kinds(&alerts), vec![(AlertKind::FailureRate, "")]);
}

#[test]
fn the_rate_alert_fix_names_the_biggest_recent_failure() {
    let failures = [
        failure("certificate-expired", Some("mx2.example.com"), 40, 1, 1),
        failure("starttls-not-supported", Some("mx1.example.com"), 2, 1, 1),
    ];
    let alerts = run(
        &[day(1, "google.com", 50, 42)],
        &failures,
        Some(&patterns(&["*.example.com"])),
    );
    let rate = alerts
        .iter()
        .find(|a| a.kind == AlertKind::FailureRate)
        .unwrap();
    assert_eq!(rate.fix, "renew the certificate of mx2.example.com");
}

// Rule (b): a new failure type.

#[test]
fn a_failure_type_never_seen_before_is_new() {
    let failures = [failure(
        "certificate-expired",
        Some("mx.example.com"),
        3,
        1,
        1,
    )];
    let alerts = run(&[], &failures, Some(&patterns(&["mx.example.com"])));
    assert_eq!(
        kinds(&alerts),
        vec![(AlertKind::NewFailureType, "certificate-expired")]
    );
    assert_eq!(alerts[0].since, ago(1));
    assert_eq!(alerts[0].fix, "renew the certificate of mx.example.com");
}

#[test]
fn a_failure_type_seen_in_the_previous_thirty_days_is_not_new() {
    let failures = [
        failure("certificate-expired", None, 3, 20, 20),
        failure("certificate-expired", None, 3, 1, 1),
    ];
    assert!(run(&[], &failures, None).is_empty());
}

#[test]
fn a_failure_type_seen_more_than_thirty_days_before_is_new_again() {
    let failures = [
        failure("certificate-expired", None, 3, 39, 39),
        failure("certificate-expired", None, 3, 1, 1),
    ];
    assert_eq!(
        kinds(&run(&[], &failures, None)),
        vec![(AlertKind::NewFailureType, "certificate-expired")]
    );
}

#[test]
fn a_failure_type_going_on_for_days_is_no_longer_new() {
    let failures = [failure("certificate-expired", None, 30, 6, 1)];
    assert!(run(&[], &failures, None).is_empty());
}

#[test]
fn an_old_failure_is_not_new() {
    let failures = [failure("certificate-expired", None, 3, 10, 10)];
    assert!(run(&[], &failures, None).is_empty());
}

// Rule (c): the policy cannot be fetched.

#[test]
fn sts_policy_failures_fire_whatever_their_age() {
    let failures = [
        failure("sts-policy-fetch-error", None, 7, 9, 1),
        failure("sts-webpki-invalid", None, 2, 1, 1),
    ];
    let alerts = run(&[], &failures, None);
    assert_eq!(
        kinds(&alerts),
        vec![
            (AlertKind::NewFailureType, "sts-webpki-invalid"),
            (AlertKind::StsPolicy, "sts-policy-fetch-error"),
            (AlertKind::StsPolicy, "sts-webpki-invalid"),
        ]
    );
    let fetch = &alerts[1];
    assert_eq!(fetch.since, ago(9));
    assert!(fetch.fix.contains("fix the policy host"), "{}", fetch.fix);
}

#[test]
fn an_sts_policy_failure_that_stopped_clears() {
    let failures = [failure("sts-policy-invalid", None, 7, 9, 4)];
    assert!(run(&[], &failures, None).is_empty());
}

#[test]
fn only_sts_retrieval_results_are_policy_failures() {
    assert!(is_policy_failure("sts-policy-fetch-error"));
    assert!(is_policy_failure("sts-policy-invalid"));
    assert!(is_policy_failure("sts-webpki-invalid"));
    assert!(!is_policy_failure("validation-failure"));
    assert!(!is_policy_failure("certificate-expired"));
}

// Rule (d): an MX the policy does not cover.

#[test]
fn an_mx_outside_the_policy_fires_once_per_host() {
    let failures = [
        failure("validation-failure", Some("MX3.other.example."), 4, 3, 1),
        failure(
            "certificate-not-trusted",
            Some("mx3.other.example"),
            1,
            1,
            1,
        ),
        failure("validation-failure", Some("mx1.example.com"), 1, 3, 1),
    ];
    let alerts = run(&[], &failures, Some(&patterns(&["*.example.com"])));
    let uncovered: Vec<&Alert> = alerts
        .iter()
        .filter(|a| a.kind == AlertKind::UncoveredMx)
        .collect();
    assert_eq!(uncovered.len(), 1);
    assert_eq!(uncovered[0].key, "mx3.other.example");
    assert_eq!(uncovered[0].since, ago(3));
    assert!(
        uncovered[0].what.contains("*.example.com"),
        "{}",
        uncovered[0].what
    );
    assert!(uncovered[0].fix.contains("add mx: mx3.other.example"));
}

#[test]
fn without_a_policy_no_mx_is_uncovered() {
    let failures = [failure(
        "validation-failure",
        Some("mx3.other.example"),
        4,
        3,
        1,
    )];
    assert!(
        !run(&[], &failures, None)
            .iter()
            .any(|a| a.kind == AlertKind::UncoveredMx)
    );
}

#[test]
fn a_wildcard_covers_one_label_only() {
    let failures = [failure(
        "validation-failure",
        Some("a.b.example.com"),
        4,
        3,
        1,
    )];
    assert!(
        run(&[], &failures, Some(&patterns(&["*.example.com"])))
            .iter()
            .any(|a| a.kind == AlertKind::UncoveredMx)
    );
}

#[test]
fn an_uncovered_mx_of_old_reports_does_not_fire() {
    let failures = [failure(
        "validation-failure",
        Some("mx3.other.example"),
        4,
        9,
        5,
    )];
    assert!(run(&[], &failures, Some(&patterns(&["*.example.com"]))).is_empty());
}

// Rule (e): a reporter that stopped.

fn regular(org: &str, from: i64, to: i64) -> Vec<TlsDay> {
    (to..=from).map(|n| day(n, org, 10, 0)).collect()
}

#[test]
fn a_regular_reporter_silent_for_three_days_fires() {
    // Reports for days 11..=4 ago: days 3, 2 and 1 ago are missing.
    let days = regular("google.com", 11, 4);
    let alerts = run(&days, &[], None);
    assert_eq!(
        kinds(&alerts),
        vec![(AlertKind::ReporterSilent, "google.com")]
    );
    assert_eq!(alerts[0].since, ago(3));
}

#[test]
fn a_reporter_late_by_two_days_is_not_silent() {
    let days = regular("google.com", 11, 3);
    assert!(run(&days, &[], None).is_empty());
}

#[test]
fn an_occasional_reporter_is_not_expected() {
    let days = regular("small.example", 10, 5);
    assert_eq!(days.len(), 6);
    assert!(run(&days, &[], None).is_empty());
}

#[test]
fn each_silent_organization_is_its_own_alert() {
    let mut days = regular("google.com", 20, 10);
    days.extend(regular("microsoft.com", 20, 6));
    days.extend(regular("yahoo.com", 20, 1));
    assert_eq!(
        kinds(&run(&days, &[], None)),
        vec![
            (AlertKind::ReporterSilent, "google.com"),
            (AlertKind::ReporterSilent, "microsoft.com"),
        ]
    );
}

// Rule (f): a delegated record that stopped verifying.

#[test]
fn a_record_that_never_verified_is_not_broken() {
    let memory = RecordMemory::default().after_check(false, 100, "missing", "publish it");
    assert!(!memory.broken());
    assert_eq!(memory, RecordMemory::default());
}

#[test]
fn a_record_that_stopped_verifying_is_broken_since_the_first_failing_check() {
    let memory = RecordMemory::default()
        .after_check(true, 100, "", "")
        .after_check(false, 200, "points elsewhere", "publish the CNAME")
        .after_check(false, 300, "still elsewhere", "publish the CNAME");
    assert!(memory.broken());
    assert_eq!(memory.verified_at, Some(100));
    assert_eq!(memory.failing_since, Some(200));
    assert_eq!(memory.detail, "still elsewhere");
    let records = [("_mta-sts.example.com".to_owned(), memory.clone())];
    let alerts = evaluate(
        &Evidence {
            domain: "example.com",
            days: &[],
            failures: &[],
            mx: None,
            records: &records,
        },
        Thresholds::default(),
        NOW,
    );
    assert_eq!(
        kinds(&alerts),
        vec![(AlertKind::DelegationBroken, "_mta-sts.example.com")]
    );
    assert_eq!(alerts[0].since, 200);
    assert_eq!(alerts[0].fix, "publish the CNAME");
    let healed = memory.after_check(true, 400, "", "");
    assert!(!healed.broken());
    assert_eq!(healed.verified_at, Some(400));
}

#[test]
fn alerts_are_sorted_by_kind_then_key() {
    let failures = [
        failure("sts-policy-invalid", None, 7, 20, 1),
        failure("validation-failure", Some("zz.other.example"), 1, 1, 1),
        failure("validation-failure", Some("aa.other.example"), 1, 1, 1),
    ];
    let alerts = run(
        &[day(1, "google.com", 10, 90)],
        &failures,
        Some(&patterns(&["mx.example.com"])),
    );
    let got = kinds(&alerts);
    let mut sorted = got.clone();
    sorted.sort();
    assert_eq!(got, sorted);
    assert!(got.contains(&(AlertKind::UncoveredMx, "aa.other.example")));
}

#[test]
fn kinds_round_trip_by_name() {
    for kind in AlertKind::ALL {
        assert_eq!(kind.as_str().parse::<AlertKind>(), Ok(kind));
    }
    assert!("no-such".parse::<AlertKind>().is_err());
}
