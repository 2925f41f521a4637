//! One test per branch of the TLS-RPT rule, and the advice per result type.

use super::*;

/// 2026-12-07T00:00:00Z, a Monday.
const DEC7: i64 = 1_796_601_600;
/// 2026-12-07T10:00:00Z: the day's reports (for 6 Dec) have arrived.
const NOW: i64 = DEC7 + 10 * 3600;
const DOMAIN: &str = "example.com";

fn dec(d: i64) -> i64 {
    DEC7 + (d - 7) * DAY
}

/// `n` clean days ending yesterday (6 Dec), one row per organization per day.
fn clean(n: i64, orgs: &[&str]) -> Vec<TlsDay> {
    let mut days = Vec::new();
    for i in 0..n {
        for org in orgs {
            days.push(TlsDay {
                day: dec(6 - i),
                organization: (*org).to_owned(),
                success: 1000,
                failure: 0,
            });
        }
    }
    days
}

fn evidence(days: Vec<TlsDay>, failures: Vec<TlsFailure>, published: Published) -> TlsEvidence {
    TlsEvidence {
        domain: DOMAIN.into(),
        days,
        failures,
        published,
        mx: vec![
            "mail.example.com".parse().unwrap(),
            "mail2.example.com".parse().unwrap(),
        ],
        now: NOW,
    }
}

fn failure(
    result: ResultType,
    mx: Option<&str>,
    org: &str,
    count: u64,
    first: i64,
    last: i64,
) -> TlsFailure {
    TlsFailure {
        result,
        receiving_mx: mx.map(str::to_owned),
        organization: org.into(),
        count,
        first_day: dec(first),
        last_day: dec(last),
    }
}

/// Adds the failed sessions of `f` to the day rows, as a store's rollup would have them.
fn with_failure(mut days: Vec<TlsDay>, f: &TlsFailure) -> Vec<TlsDay> {
    let n = (f.last_day - f.first_day) / DAY + 1;
    for d in days.iter_mut() {
        if d.organization == f.organization && (f.first_day..=f.last_day).contains(&d.day) {
            d.failure += f.count / n as u64;
        }
    }
    days
}

const ORGS: &[&str] = &["Google Inc.", "Microsoft Corporation"];
const SEVEN: &[&str] = &["a", "b", "c", "d", "e", "f", "g"];

#[test]
fn no_reports_is_no_data() {
    let a = assess(&evidence(Vec::new(), Vec::new(), Published::Unknown));
    assert_eq!(a.verdict.level, Level::NoData);
    assert_eq!(
        a.verdict.headline,
        "no TLS reports for example.com: senders send them to the rua of _smtp._tls.example.com"
    );
    assert_eq!((a.days, a.success, a.failure), (0, 0, 0));
}

#[test]
fn days_without_sessions_are_no_data() {
    let mut days = clean(10, ORGS);
    for d in &mut days {
        d.success = 0;
    }
    let a = assess(&evidence(days, Vec::new(), Published::Testing));
    assert_eq!(a.verdict.level, Level::NoData);
    assert_eq!(a.days, 0);
}

#[test]
fn fourteen_clean_days_from_seven_organizations_are_ready() {
    let a = assess(&evidence(clean(14, SEVEN), Vec::new(), Published::Testing));
    assert_eq!(a.verdict.level, Level::Ready);
    assert_eq!(
        a.verdict.headline,
        "no failures from 7 organizations over 14 days: enforce is safe"
    );
    assert_eq!(
        a.verdict.details,
        [
            "98,000 successful and 0 failed sessions on 14 days (23 Nov to 6 Dec) from a, b, c and 4 others"
        ]
    );
    assert_eq!((a.days, a.success, a.failure), (14, 98_000, 0));
    assert!(a.problems.is_empty());
}

#[test]
fn exactly_the_minimum_is_ready() {
    let a = assess(&evidence(
        clean(MIN_DAYS as i64, ORGS),
        Vec::new(),
        Published::Testing,
    ));
    assert_eq!(a.verdict.level, Level::Ready);
    assert_eq!(
        a.verdict.headline,
        "no failures from 2 organizations over 7 days: enforce is safe"
    );
}

#[test]
fn a_current_failure_must_be_fixed() {
    let f = failure(
        ResultType::CertificateExpired,
        Some("mail2.example.com"),
        "Google Inc.",
        30,
        3,
        6,
    );
    let days = with_failure(clean(14, ORGS), &f);
    let a = assess(&evidence(days, vec![f], Published::Testing));
    assert_eq!(a.verdict.level, Level::Fix);
    assert_eq!(
        a.verdict.headline,
        "certificate-expired at mail2 since 3 Dec: renew the certificate of mail2.example.com before enforcing"
    );
    assert_eq!(
        a.failure, 28,
        "7 per day over the 4 days, as the rollup spread it"
    );
    assert_eq!(
        a.verdict.details[1],
        "certificate-expired at mail2: 30 failed sessions from 3 Dec to 6 Dec, reported by Google Inc.: renew the certificate of mail2.example.com"
    );
    assert_eq!(a.problems[0].state, State::Current);
    assert_eq!(a.problems[0].mx_in_policy, Some(true));
}

#[test]
fn a_current_failure_under_enforce_says_mail_is_refused() {
    let f = failure(
        ResultType::StarttlsNotSupported,
        Some("mail.example.com"),
        "Google Inc.",
        5,
        6,
        6,
    );
    let a = assess(&evidence(clean(30, ORGS), vec![f], Published::Enforce));
    assert_eq!(a.verdict.level, Level::Fix);
    assert_eq!(
        a.verdict.headline,
        "enforced and failing: starttls-not-supported at mail since 6 Dec: senders defer or refuse this mail; mail.example.com does not offer STARTTLS: enable it"
    );
}

#[test]
fn a_current_failure_outranks_too_little_data() {
    let f = failure(
        ResultType::CertificateExpired,
        Some("mail.example.com"),
        "Google Inc.",
        2,
        6,
        6,
    );
    let a = assess(&evidence(
        clean(1, &["Google Inc."]),
        vec![f],
        Published::Testing,
    ));
    assert_eq!(a.verdict.level, Level::Fix);
}

#[test]
fn several_current_problems_are_counted_biggest_first() {
    let fs = vec![
        failure(
            ResultType::CertificateExpired,
            Some("mail2.example.com"),
            "Google Inc.",
            3,
            5,
            6,
        ),
        failure(
            ResultType::StsPolicyFetchError,
            None,
            "Microsoft Corporation",
            40,
            6,
            6,
        ),
        failure(
            ResultType::CertificateExpired,
            Some("mail2.example.com"),
            "Microsoft Corporation",
            4,
            4,
            6,
        ),
        failure(
            ResultType::TlsaInvalid,
            Some("mail.example.com"),
            "Google Inc.",
            1,
            6,
            6,
        ),
    ];
    let a = assess(&evidence(clean(14, ORGS), fs, Published::Testing));
    assert_eq!(a.verdict.level, Level::Fix);
    assert_eq!(
        a.verdict.headline,
        "sts-policy-fetch-error since 6 Dec: senders could not fetch https://mta-sts.example.com/.well-known/mta-sts.txt: fix the policy host before enforcing (and 2 more problems)"
    );
    // Merged across organizations: one problem per (result, MX).
    assert_eq!(a.problems.len(), 3);
    let expired = &a.problems[1];
    assert_eq!(expired.count, 7);
    assert_eq!(
        expired.organizations,
        ["Google Inc.", "Microsoft Corporation"]
    );
    assert_eq!((expired.first_day, expired.last_day), (dec(4), dec(6)));
}

#[test]
fn mx_names_are_merged_whatever_their_case_and_dot() {
    let fs = vec![
        failure(
            ResultType::CertificateExpired,
            Some("MAIL2.example.com."),
            "a",
            1,
            6,
            6,
        ),
        failure(
            ResultType::CertificateExpired,
            Some("mail2.example.com"),
            "b",
            1,
            6,
            6,
        ),
    ];
    let a = assess(&evidence(clean(14, ORGS), fs, Published::Testing));
    assert_eq!(a.problems.len(), 1);
    assert_eq!(
        a.problems[0].receiving_mx.as_deref(),
        Some("mail2.example.com")
    );
}

#[test]
fn a_failure_that_stopped_recently_means_wait() {
    let f = failure(
        ResultType::CertificateExpired,
        Some("mail2.example.com"),
        "Google Inc.",
        30,
        1,
        3,
    );
    let a = assess(&evidence(clean(14, ORGS), vec![f], Published::Testing));
    assert_eq!(a.verdict.level, Level::Wait);
    assert_eq!(
        a.verdict.headline,
        "certificate-expired at mail2 last seen 3 Dec: it looks fixed; enforce after 10 Dec if it does not come back"
    );
    assert_eq!(a.problems[0].state, State::Settling);
}

#[test]
fn a_failure_that_stopped_recently_under_enforce_is_enforced() {
    let f = failure(
        ResultType::CertificateExpired,
        Some("mail2.example.com"),
        "Google Inc.",
        30,
        1,
        3,
    );
    let a = assess(&evidence(clean(14, ORGS), vec![f], Published::Enforce));
    assert_eq!(a.verdict.level, Level::Enforced);
    assert_eq!(
        a.verdict.headline,
        "enforced; certificate-expired at mail2 last seen 3 Dec, none since"
    );
}

#[test]
fn an_old_failure_is_fixed_and_does_not_block() {
    // Last seen 29 Nov; the recent window of the newest day (6 Dec) starts on 30 Nov.
    let f = failure(
        ResultType::CertificateExpired,
        Some("mail2.example.com"),
        "Google Inc.",
        12,
        27,
        29,
    );
    let mut f = f;
    f.first_day = dec(-3);
    f.last_day = dec(6 - RECENT_DAYS);
    let a = assess(&evidence(clean(30, ORGS), vec![f], Published::Testing));
    assert_eq!(a.verdict.level, Level::Ready);
    assert_eq!(a.problems[0].state, State::Fixed);
    assert_eq!(
        a.verdict.details[1],
        "certificate-expired at mail2: fixed since 30 Nov (12 failed sessions from 27 Nov to 29 Nov, reported by Google Inc.)"
    );
}

#[test]
fn the_recent_window_is_seven_days_up_to_the_newest_report() {
    let mut f = failure(
        ResultType::CertificateExpired,
        Some("mail.example.com"),
        "a",
        1,
        6,
        6,
    );
    f.first_day = dec(6 - (RECENT_DAYS - 1));
    f.last_day = f.first_day;
    let a = assess(&evidence(clean(30, ORGS), vec![f], Published::Testing));
    assert_eq!(a.problems[0].state, State::Settling);
}

#[test]
fn stale_reports_mean_wait() {
    let mut days = clean(14, ORGS);
    for d in &mut days {
        d.day -= (STALE_DAYS + 1) * DAY;
    }
    let a = assess(&evidence(days, Vec::new(), Published::Testing));
    assert_eq!(a.verdict.level, Level::Wait);
    assert_eq!(
        a.verdict.headline,
        "no reports since 2 Dec: they say nothing about today; check that senders still reach the rua of _smtp._tls.example.com"
    );
}

#[test]
fn reports_three_days_old_are_not_stale() {
    let mut days = clean(14, ORGS);
    for d in &mut days {
        d.day -= (STALE_DAYS - 1) * DAY;
    }
    let a = assess(&evidence(days, Vec::new(), Published::Testing));
    assert_eq!(a.verdict.level, Level::Ready);
}

#[test]
fn stale_reports_under_enforce_mean_wait_too() {
    let mut days = clean(14, ORGS);
    for d in &mut days {
        d.day -= 30 * DAY;
    }
    let a = assess(&evidence(days, Vec::new(), Published::Enforce));
    assert_eq!(a.verdict.level, Level::Wait);
}

#[test]
fn enforced_and_clean() {
    let a = assess(&evidence(clean(3, SEVEN), Vec::new(), Published::Enforce));
    assert_eq!(a.verdict.level, Level::Enforced);
    assert_eq!(
        a.verdict.headline,
        "enforced; no failures from 7 organizations over 3 days"
    );
}

#[test]
fn too_few_days_means_wait() {
    let a = assess(&evidence(clean(2, ORGS), Vec::new(), Published::Testing));
    assert_eq!(a.verdict.level, Level::Wait);
    assert_eq!(
        a.verdict.headline,
        "only 2 days of reports: wait for 5 more days before enforcing"
    );
    let a = assess(&evidence(clean(6, ORGS), Vec::new(), Published::Testing));
    assert_eq!(
        a.verdict.headline,
        "only 6 days of reports: wait for 1 more day before enforcing"
    );
    let a = assess(&evidence(clean(1, ORGS), Vec::new(), Published::Testing));
    assert_eq!(
        a.verdict.headline,
        "only 1 day of reports: wait for 6 more days before enforcing"
    );
}

#[test]
fn one_organization_means_wait() {
    let a = assess(&evidence(
        clean(14, &["Google Inc."]),
        Vec::new(),
        Published::Testing,
    ));
    assert_eq!(a.verdict.level, Level::Wait);
    assert_eq!(
        a.verdict.headline,
        "reports from only one organization (Google Inc.): wait for a second sender's before enforcing"
    );
}

#[test]
fn no_policy_found_must_be_fixed() {
    let a = assess(&evidence(clean(14, ORGS), Vec::new(), Published::NoPolicy));
    assert_eq!(a.verdict.level, Level::Fix);
    assert!(
        a.verdict
            .headline
            .starts_with("senders found no MTA-STS policy for example.com")
    );
}

#[test]
fn mode_none_means_wait() {
    let a = assess(&evidence(clean(14, ORGS), Vec::new(), Published::None));
    assert_eq!(a.verdict.level, Level::Wait);
    assert!(a.verdict.headline.starts_with("the policy is in mode none"));
}

#[test]
fn unknown_policy_with_clean_reports_is_ready() {
    let a = assess(&evidence(clean(14, ORGS), Vec::new(), Published::Unknown));
    assert_eq!(a.verdict.level, Level::Ready);
}

#[test]
fn an_mx_outside_the_policy_means_the_mx_list_is_incomplete() {
    let f = failure(
        ResultType::ValidationFailure,
        Some("mx3.example.net"),
        "Google Inc.",
        9,
        6,
        6,
    );
    let a = assess(&evidence(clean(14, ORGS), vec![f], Published::Testing));
    assert_eq!(a.verdict.level, Level::Fix);
    assert_eq!(a.problems[0].mx_in_policy, Some(false));
    assert_eq!(
        a.verdict.headline,
        "validation-failure at mx3.example.net since 6 Dec: mx3.example.net is not in the policy's mx list: add it (or a pattern that covers it) to the policy, or stop using it as an MX before enforcing"
    );
}

#[test]
fn without_known_patterns_the_mx_list_is_not_judged() {
    let f = failure(
        ResultType::ValidationFailure,
        Some("mx3.example.net"),
        "Google Inc.",
        9,
        6,
        6,
    );
    let mut e = evidence(clean(14, ORGS), vec![f], Published::Testing);
    e.mx.clear();
    let a = assess(&e);
    assert_eq!(a.problems[0].mx_in_policy, None);
    assert!(
        a.problems[0]
            .advice
            .starts_with("senders could not validate mx3.example.net")
    );
}

#[test]
fn wildcard_patterns_cover_their_hosts() {
    let f = failure(
        ResultType::CertificateExpired,
        Some("a.mx.example.com"),
        "x",
        1,
        6,
        6,
    );
    let mut e = evidence(clean(14, ORGS), vec![f], Published::Testing);
    e.mx = vec!["*.mx.example.com".parse().unwrap()];
    assert_eq!(assess(&e).problems[0].mx_in_policy, Some(true));
}

#[test]
fn failures_without_details_still_block() {
    let mut days = clean(14, ORGS);
    days[0].failure = 4; // 6 Dec, Google Inc.
    let a = assess(&evidence(days, Vec::new(), Published::Testing));
    assert_eq!(a.verdict.level, Level::Fix);
    assert_eq!(a.problems[0].result.as_str(), UNSPECIFIED);
    assert_eq!(
        a.verdict.headline,
        "unspecified since 6 Dec: senders counted failed sessions without saying why: read the reports' failure details before enforcing"
    );
}

#[test]
fn zero_count_failure_groups_are_ignored() {
    let f = failure(
        ResultType::CertificateExpired,
        Some("mail.example.com"),
        "a",
        0,
        6,
        6,
    );
    let a = assess(&evidence(clean(14, ORGS), vec![f], Published::Testing));
    assert_eq!(a.verdict.level, Level::Ready);
}

#[test]
fn every_result_type_has_its_advice() {
    let mx = Some("mail.example.com");
    let cases = [
        (
            ResultType::CertificateExpired,
            "renew the certificate of mail.example.com",
        ),
        (
            ResultType::CertificateHostMismatch,
            "the certificate of mail.example.com does not name it: add mail.example.com to the certificate",
        ),
        (
            ResultType::CertificateNotTrusted,
            "the certificate of mail.example.com is not trusted: use one from a public CA and serve the full chain",
        ),
        (
            ResultType::DaneRequired,
            "senders require DANE but found no DNSSEC-signed TLSA records for mail.example.com: publish them",
        ),
        (
            ResultType::DnssecInvalid,
            "DNSSEC validation failed for example.com's records: fix the zone's signatures or DS record",
        ),
        (
            ResultType::StarttlsNotSupported,
            "mail.example.com does not offer STARTTLS: enable it",
        ),
        (
            ResultType::StsPolicyFetchError,
            "senders could not fetch https://mta-sts.example.com/.well-known/mta-sts.txt: fix the policy host",
        ),
        (
            ResultType::StsPolicyInvalid,
            "the policy at mta-sts.example.com is invalid: fix it (mtasts check example.com says how)",
        ),
        (
            ResultType::StsWebpkiInvalid,
            "the certificate of mta-sts.example.com is not valid: fix the policy host's certificate",
        ),
        (
            ResultType::TlsaInvalid,
            "the TLSA records of mail.example.com do not match its certificate: update them (publish the next key's TLSA before a rollover)",
        ),
        (
            ResultType::ValidationFailure,
            "senders could not validate mail.example.com against the policy: check its certificate and that the policy's mx lines name it",
        ),
        (
            ResultType::Other("x-custom".into()),
            "senders report x-custom: read the reports' failure details",
        ),
    ];
    for (result, expected) in cases {
        assert_eq!(advice(&result, mx, DOMAIN), expected, "{result}");
    }
    assert_eq!(
        advice(&ResultType::CertificateExpired, None, DOMAIN),
        "renew the certificate of the MX host"
    );
}

#[test]
fn policy_labels_are_read() {
    assert_eq!(Published::from_label("sts enforce"), Published::Enforce);
    assert_eq!(Published::from_label("sts testing"), Published::Testing);
    assert_eq!(Published::from_label("sts none"), Published::None);
    assert_eq!(Published::from_label("sts"), Published::Unknown);
    assert_eq!(Published::from_label("sts Enforce"), Published::Unknown);
    assert_eq!(
        Published::from_label("no-policy-found"),
        Published::NoPolicy
    );
    assert_eq!(Published::from_label("tlsa"), Published::Unknown);
    assert_eq!(Published::from_label(""), Published::Unknown);
}

#[test]
fn the_assessment_serializes_with_stable_names() {
    let f = failure(
        ResultType::CertificateExpired,
        Some("mail2.example.com"),
        "Google Inc.",
        3,
        6,
        6,
    );
    let a = assess(&evidence(clean(14, ORGS), vec![f], Published::Testing));
    let v = serde_json::to_value(&a).unwrap();
    assert_eq!(v["verdict"]["level"], "fix");
    assert_eq!(v["problems"][0]["result"], "certificate-expired");
    assert_eq!(v["problems"][0]["state"], "current");
    assert_eq!(v["problems"][0]["mx_in_policy"], true);
    assert_eq!(v["problems"][0]["first_day"], dec(6));
    assert_eq!(v["days"], 14);
    assert_eq!(v["organizations"][1], "Microsoft Corporation");
    assert_eq!(serde_json::to_value(Level::NoData).unwrap(), "no-data");
}

#[test]
fn a_report_ending_at_the_next_midnight_adds_no_failure_day() {
    // The failure group runs to 7 Dec (the report's exclusive end), the sessions to 6 Dec.
    let mut f = failure(ResultType::StsPolicyFetchError, None, "Mail.ru", 2, 6, 6);
    f.last_day = dec(7);
    let a = assess(&evidence(clean(14, ORGS), vec![f], Published::Testing));
    assert_eq!(a.problems[0].last_day, dec(6));
    assert_eq!(a.problems[0].state, State::Current);
    assert!(
        a.verdict.details[1].contains("from 6 Dec to 6 Dec"),
        "{:?}",
        a.verdict.details
    );
}

mod never_panics {
    use proptest::prelude::*;

    use super::*;

    fn result() -> impl Strategy<Value = ResultType> {
        prop_oneof![
            Just(ResultType::CertificateExpired),
            Just(ResultType::StsPolicyFetchError),
            Just(ResultType::ValidationFailure),
            "[a-z-]{0,12}".prop_map(|s| s.parse::<ResultType>().unwrap_or_else(|e| match e {})),
        ]
    }

    fn day() -> impl Strategy<Value = i64> {
        (-40_000i64..40_000).prop_map(|d| DEC7 + d * DAY)
    }

    fn tls_day() -> impl Strategy<Value = TlsDay> {
        (
            day(),
            "[a-c]",
            any::<u64>(),
            prop_oneof![Just(0u64), any::<u64>()],
        )
            .prop_map(|(day, organization, success, failure)| TlsDay {
                day,
                organization,
                success,
                failure,
            })
    }

    fn tls_failure() -> impl Strategy<Value = TlsFailure> {
        (
            result(),
            proptest::option::of("[a-z.]{0,20}"),
            "[a-c]",
            any::<u64>(),
            day(),
            day(),
        )
            .prop_map(
                |(result, receiving_mx, organization, count, a, b)| TlsFailure {
                    result,
                    receiving_mx,
                    organization,
                    count,
                    first_day: a.min(b),
                    last_day: a.max(b),
                },
            )
    }

    fn published() -> impl Strategy<Value = Published> {
        prop_oneof![
            Just(Published::Enforce),
            Just(Published::NoPolicy),
            Just(Published::None),
            Just(Published::Testing),
            Just(Published::Unknown),
        ]
    }

    proptest! {
        #[test]
        fn any_evidence_gets_a_consistent_verdict(
            days in proptest::collection::vec(tls_day(), 0..20),
            failures in proptest::collection::vec(tls_failure(), 0..6),
            published in published(),
            now in day(),
        ) {
            let e = TlsEvidence {
                domain: DOMAIN.into(),
                days: days.clone(),
                failures,
                published,
                mx: vec!["mail.example.com".parse().unwrap()],
                now,
            };
            let a = assess(&e);
            let with_sessions: BTreeSet<i64> = days
                .iter()
                .filter(|d| d.success > 0 || d.failure > 0)
                .map(|d| d.day)
                .collect();
            prop_assert_eq!(a.days, with_sessions.len());
            prop_assert_eq!(a.verdict.level == Level::NoData, with_sessions.is_empty());
            if a.problems.iter().any(|p| p.state == State::Current) {
                prop_assert_eq!(a.verdict.level, Level::Fix);
            }
            if a.verdict.level == Level::Ready {
                prop_assert!(a.days >= MIN_DAYS && a.organizations.len() >= MIN_ORGANIZATIONS);
                prop_assert!(a.problems.iter().all(|p| p.state == State::Fixed));
            }
            for p in &a.problems {
                prop_assert!(p.first_day <= p.last_day);
                prop_assert!(!p.advice.is_empty());
            }
        }
    }
}
