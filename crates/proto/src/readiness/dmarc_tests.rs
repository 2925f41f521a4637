//! One test per branch of the DMARC rule.

use super::*;

/// 2026-12-07T00:00:00Z.
const DEC7: i64 = 1_796_601_600;
const NOW: i64 = DEC7 + 10 * 3600;

/// `n` days ending yesterday, each organization reporting `messages` of which `pass` pass.
fn days(n: i64, orgs: &[&str], messages: u64, pass: u64) -> Vec<DmarcDay> {
    let mut out = Vec::new();
    for i in 0..n {
        for org in orgs {
            out.push(DmarcDay {
                day: DEC7 - (i + 1) * DAY,
                organization: (*org).to_owned(),
                messages,
                dmarc_pass: pass,
            });
        }
    }
    out
}

fn source(ip: &str, messages: u64, pass: u64) -> DmarcSource {
    DmarcSource {
        source_ip: ip.into(),
        header_from: "example.com".into(),
        messages,
        dmarc_pass: pass,
        dkim_pass: pass,
        spf_pass: pass / 2,
    }
}

fn evidence(days: Vec<DmarcDay>, sources: Vec<DmarcSource>, p: &str) -> DmarcEvidence {
    DmarcEvidence {
        domain: "example.com".into(),
        days,
        sources,
        p: Some(p.into()),
        now: NOW,
    }
}

const ORGS: &[&str] = &["google.com", "Outlook.com"];

/// 14 days × 2 organizations × 1,000 messages = 28,000, of which 27,216 pass (97.2%).
fn failing_case(p: &str) -> DmarcEvidence {
    let sources = vec![
        source("192.0.2.1", 27_000, 27_000),
        source("198.51.100.7", 500, 0),
        source("203.0.113.9", 284, 0),
        source("192.0.2.77", 216, 216),
    ];
    evidence(days(14, ORGS, 1000, 972), sources, p)
}

#[test]
fn no_messages_is_no_data() {
    let a = assess(&evidence(Vec::new(), Vec::new(), "none"));
    assert_eq!(a.verdict.level, Level::NoData);
    assert_eq!(
        a.verdict.headline,
        "no DMARC reports for example.com: receivers send them to the rua of _dmarc.example.com"
    );
    assert_eq!(a.pass_rate, None);
    let a = assess(&evidence(days(14, ORGS, 0, 0), Vec::new(), "none"));
    assert_eq!(a.verdict.level, Level::NoData);
}

#[test]
fn failing_sources_are_named_with_what_quarantine_and_reject_would_do() {
    let a = assess(&failing_case("none"));
    assert_eq!(a.verdict.level, Level::Review);
    assert_eq!(
        a.verdict.headline,
        "97.2% pass; 2 sources fail: 784 messages would be quarantined or rejected (198.51.100.7, 203.0.113.9): check that none is yours before raising the policy"
    );
    assert_eq!((a.messages, a.dmarc_pass), (28_000, 27_216));
    assert_eq!((a.would_quarantine, a.would_reject), (784, 784));
    assert_eq!(a.failing_sources.len(), 2);
    assert_eq!(a.failing_sources[0].source_ip, "198.51.100.7");
    assert_eq!(
        a.verdict.details[0],
        "28,000 messages from 4 sources on 14 days (23 Nov to 6 Dec) reported by 2 organizations: 27,216 pass DMARC (97.2%)"
    );
    assert_eq!(
        a.verdict.details[1],
        "198.51.100.7 (example.com): 500 of 500 messages fail (aligned DKIM passed 0, SPF 0)"
    );
    let one = assess(&evidence(
        days(1, &["x"], 1, 0),
        vec![source("192.0.2.9", 1, 0)],
        "reject",
    ));
    assert_eq!(
        one.verdict.details[1],
        "192.0.2.9 (example.com): 1 of 1 message fails (aligned DKIM passed 0, SPF 0)"
    );
    assert_eq!(
        one.verdict.headline,
        "p=reject; 0% pass; 1 message from 1 source (192.0.2.9) failed and was subject to rejection"
    );
}

#[test]
fn under_quarantine_the_next_step_is_reject() {
    let a = assess(&failing_case("quarantine"));
    assert_eq!(a.verdict.level, Level::Review);
    assert!(
        a.verdict
            .headline
            .contains("784 messages would be rejected (198.51.100.7, 203.0.113.9)"),
        "{}",
        a.verdict.headline
    );
}

#[test]
fn more_failing_sources_than_the_headline_shows_get_an_ellipsis() {
    let mut e = failing_case("none");
    e.sources.push(source("203.0.113.10", 1, 0));
    let a = assess(&e);
    assert!(
        a.verdict.headline.contains("(198.51.100.7, 203.0.113.9 …)"),
        "{}",
        a.verdict.headline
    );
    assert!(a.verdict.headline.contains("3 sources fail"));
}

#[test]
fn one_failing_source_is_singular() {
    let sources = vec![
        source("192.0.2.1", 13_000, 13_000),
        source("198.51.100.7", 1, 0),
    ];
    let a = assess(&evidence(days(7, ORGS, 1000, 999), sources, "none"));
    assert!(
        a.verdict.headline.contains("1 source fails: 14 messages"),
        "{}",
        a.verdict.headline
    );
}

#[test]
fn a_partly_passing_source_is_probably_the_owners() {
    let sources = vec![source("192.0.2.1", 100, 90)];
    let a = assess(&evidence(days(14, ORGS, 100, 90), sources, "none"));
    assert!(
        a.verdict.details[1]
            .ends_with("likely yours (forwarded, a mailing list, or a missing DKIM signature)")
    );
}

#[test]
fn the_details_name_at_most_ten_sources() {
    let sources: Vec<_> = (0..15)
        .map(|i| source(&format!("198.51.100.{i}"), 10, 0))
        .collect();
    let a = assess(&evidence(days(14, ORGS, 100, 0), sources, "none"));
    assert_eq!(a.verdict.details.len(), 1 + DETAIL_SOURCES + 1);
    assert_eq!(
        a.verdict.details.last().unwrap(),
        "and 5 more failing sources"
    );
    assert_eq!(a.pass_rate.as_deref(), Some("0%"));
}

#[test]
fn all_passing_is_ready() {
    let sources = vec![source("192.0.2.1", 28_000, 28_000)];
    let a = assess(&evidence(
        days(14, ORGS, 1000, 1000),
        sources.clone(),
        "none",
    ));
    assert_eq!(a.verdict.level, Level::Ready);
    assert_eq!(
        a.verdict.headline,
        "100% pass from 2 organizations over 14 days: p=quarantine, then p=reject, are safe"
    );
    let a = assess(&evidence(days(14, ORGS, 1000, 1000), sources, "quarantine"));
    assert_eq!(
        a.verdict.headline,
        "100% pass from 2 organizations over 14 days: p=reject is safe"
    );
}

#[test]
fn reject_is_enforced() {
    let a = assess(&failing_case("reject"));
    assert_eq!(a.verdict.level, Level::Enforced);
    assert_eq!(
        a.verdict.headline,
        "p=reject; 97.2% pass; 784 messages from 2 sources (198.51.100.7, 203.0.113.9) failed and were subject to rejection"
    );
    let a = assess(&evidence(
        days(1, ORGS, 10, 10),
        vec![source("192.0.2.1", 20, 20)],
        "REJECT",
    ));
    assert_eq!(a.verdict.level, Level::Enforced);
    assert_eq!(a.verdict.headline, "p=reject; 100% pass from 1 source");
}

#[test]
fn too_few_days_means_wait() {
    let a = assess(&evidence(
        days(2, ORGS, 100, 100),
        vec![source("192.0.2.1", 400, 400)],
        "none",
    ));
    assert_eq!(a.verdict.level, Level::Wait);
    assert_eq!(
        a.verdict.headline,
        "100% pass over only 2 days of reports: wait for 5 more days before raising the policy"
    );
}

#[test]
fn one_organization_means_wait() {
    let a = assess(&evidence(
        days(14, &["google.com"], 100, 100),
        Vec::new(),
        "none",
    ));
    assert_eq!(a.verdict.level, Level::Wait);
    assert_eq!(
        a.verdict.headline,
        "100% pass, but reports from only one organization (google.com): wait for a second receiver's"
    );
}

#[test]
fn stale_reports_mean_wait() {
    let mut e = failing_case("none");
    for d in &mut e.days {
        d.day -= 10 * DAY;
    }
    let a = assess(&e);
    assert_eq!(a.verdict.level, Level::Wait);
    assert!(
        a.verdict.headline.starts_with("no reports since 26 Nov:"),
        "{}",
        a.verdict.headline
    );
}

#[test]
fn pass_counts_above_messages_are_capped() {
    let a = assess(&evidence(days(14, ORGS, 10, 50), Vec::new(), "none"));
    assert_eq!(a.dmarc_pass, a.messages);
    assert_eq!(a.would_reject, 0);
}

#[test]
fn the_assessment_serializes_with_stable_names() {
    let v = serde_json::to_value(assess(&failing_case("none"))).unwrap();
    assert_eq!(v["verdict"]["level"], "review");
    assert_eq!(v["pass_rate"], "97.2%");
    assert_eq!(v["would_reject"], 784);
    assert_eq!(v["p"], "none");
    assert_eq!(v["failing_sources"][0]["failing"], 500);
}

mod never_panics {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #[test]
        fn any_evidence_gets_a_consistent_verdict(
            days in proptest::collection::vec(
                (-40_000i64..40_000, "[a-c]", any::<u64>(), any::<u64>()), 0..20),
            sources in proptest::collection::vec(
                ("[0-9.]{1,15}", any::<u64>(), any::<u64>()), 0..20),
            p in proptest::option::of("none|quarantine|reject|REJECT|[a-z]{0,5}"),
            now in -40_000i64..40_000,
        ) {
            let e = DmarcEvidence {
                domain: "example.com".into(),
                days: days
                    .into_iter()
                    .map(|(d, organization, messages, dmarc_pass)| DmarcDay {
                        day: DEC7 + d * DAY,
                        organization,
                        messages,
                        dmarc_pass,
                    })
                    .collect(),
                sources: sources
                    .into_iter()
                    .map(|(ip, messages, pass)| DmarcSource {
                        source_ip: ip,
                        header_from: "example.com".into(),
                        messages,
                        dmarc_pass: pass,
                        dkim_pass: pass,
                        spf_pass: 0,
                    })
                    .collect(),
                p,
                now: DEC7 + now * DAY,
            };
            let a = assess(&e);
            prop_assert!(a.dmarc_pass <= a.messages);
            prop_assert_eq!(a.would_reject, a.messages - a.dmarc_pass);
            prop_assert_eq!(a.verdict.level == Level::NoData, a.messages == 0);
            prop_assert_eq!(a.pass_rate.is_none(), a.messages == 0);
            prop_assert!(a.failing_sources.iter().all(|s| s.failing > 0 && s.failing <= s.messages));
            prop_assert!(a.failing_sources.windows(2).all(|w| w[0].failing >= w[1].failing));
        }
    }
}
