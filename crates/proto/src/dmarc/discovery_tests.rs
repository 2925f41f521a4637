//! Unit tests of DMARC policy discovery: RFC 7489 (Public Suffix List) and the RFC 9989 tree walk.

use std::collections::HashMap;

use super::*;
use crate::dmarc::record::select;
use crate::txt::TxtRr;

/// A zone: `_dmarc` name → TXT texts; `None` marks a temporary failure.
struct Zone(HashMap<String, Option<RecordSet>>);

impl Zone {
    fn new(records: &[(&str, &[&str])], failing: &[&str]) -> Zone {
        let mut map = HashMap::new();
        for (domain, texts) in records {
            let rrs: Vec<TxtRr> = texts.iter().map(|t| TxtRr::single(t)).collect();
            map.insert(record_name(domain), Some(select(&rrs)));
        }
        for domain in failing {
            map.insert(record_name(domain), None);
        }
        Zone(map)
    }

    fn get(&self, name: &str) -> Answer<'_> {
        static MISSING: std::sync::LazyLock<RecordSet> =
            std::sync::LazyLock::new(|| RecordSet::Missing {
                diagnostics: Vec::new(),
            });
        match self.0.get(name) {
            Some(Some(set)) => Answer::Found(set),
            Some(None) => Answer::TempError,
            None => Answer::Found(&MISSING),
        }
    }
}

#[test]
fn organizational_domains_by_the_public_suffix_list() {
    assert_eq!(organizational_domain("a.b.example.com"), "example.com");
    assert_eq!(organizational_domain("example.com"), "example.com");
    assert_eq!(organizational_domain("mail.example.co.uk"), "example.co.uk");
    assert_eq!(organizational_domain("x.user.github.io"), "user.github.io");
    assert_eq!(organizational_domain("mail.corp.test"), "corp.test");
    assert_eq!(organizational_domain("com"), "com");
}

#[test]
fn tree_walk_names() {
    assert_eq!(
        tree_walk("a.b.example.com"),
        ["a.b.example.com", "b.example.com", "example.com", "com"]
    );
    assert_eq!(tree_walk("com"), ["com"]);
    // Eight labels or more: jump to the last seven, then one at a time: eight queries at most.
    let long = "a.b.c.d.e.f.g.h.i.j.example.com";
    let walk = tree_walk(long);
    assert_eq!(walk.len(), MAX_WALK_QUERIES);
    assert_eq!(walk[0], long);
    assert_eq!(walk[1], "f.g.h.i.j.example.com");
    assert_eq!(walk[7], "com");
    let eight = "a.b.c.d.e.f.example.com";
    assert_eq!(tree_walk(eight)[1], "b.c.d.e.f.example.com");
    assert_eq!(tree_walk(eight).len(), 8);
    let seven = "b.c.d.e.f.example.com";
    assert_eq!(tree_walk(seven)[1], "c.d.e.f.example.com");
    assert_eq!(tree_walk(seven).len(), 7);
    assert_eq!(
        names_to_query("mail.example.co.uk"),
        [
            "_dmarc.mail.example.co.uk",
            "_dmarc.example.co.uk",
            "_dmarc.co.uk",
            "_dmarc.uk"
        ]
    );
}

#[test]
fn own_record_applies_p() {
    let zone = Zone::new(
        &[
            ("example.com", &["v=DMARC1; p=reject; sp=none"]),
            ("com", &["v=DMARC1; p=none; psd=y"]),
        ],
        &[],
    );
    let old = rfc7489("example.com", |n: &str| zone.get(n));
    assert_eq!(old.outcome, Outcome::Applied);
    assert_eq!(old.policy, Some(RequestedPolicy::Reject));
    assert_eq!(old.record_domain.as_deref(), Some("example.com"));
    assert_eq!(old.queried, ["_dmarc.example.com"]);
    let bis = rfc9989("example.com", |n: &str| zone.get(n));
    assert_eq!(bis.policy, Some(RequestedPolicy::Reject));
    assert_eq!(bis.organizational_domain, "example.com");
    // The organizational-domain walk goes on to `com`, whose psd=y ends it.
    assert_eq!(bis.queried, ["_dmarc.example.com", "_dmarc.com"]);
}

#[test]
fn subdomains_inherit_sp_from_the_organizational_domain() {
    let zone = Zone::new(
        &[("example.com", &["v=DMARC1; p=reject; sp=quarantine"])],
        &[],
    );
    let old = rfc7489("a.b.example.com", |n: &str| zone.get(n));
    assert_eq!(
        old.queried,
        ["_dmarc.a.b.example.com", "_dmarc.example.com"]
    );
    assert_eq!(old.policy, Some(RequestedPolicy::Quarantine));
    assert_eq!(old.record_domain.as_deref(), Some("example.com"));
    let bis = rfc9989("a.b.example.com", |n: &str| zone.get(n));
    assert_eq!(bis.policy, Some(RequestedPolicy::Quarantine));
    assert_eq!(bis.record_domain.as_deref(), Some("example.com"));
    assert_eq!(bis.organizational_domain, "example.com");
    assert_eq!(
        bis.queried,
        [
            "_dmarc.a.b.example.com",
            "_dmarc.b.example.com",
            "_dmarc.example.com",
            "_dmarc.com"
        ]
    );
    let no_sp = Zone::new(&[("example.com", &["v=DMARC1; p=reject"])], &[]);
    assert_eq!(
        rfc7489("mail.example.com", |n: &str| no_sp.get(n)).policy,
        Some(RequestedPolicy::Reject)
    );
}

#[test]
fn an_intermediate_record_is_seen_only_by_the_tree_walk() {
    let zone = Zone::new(
        &[
            ("b.example.com", &["v=DMARC1; p=none"]),
            ("example.com", &["v=DMARC1; p=reject"]),
        ],
        &[],
    );
    let old = rfc7489("a.b.example.com", |n: &str| zone.get(n));
    assert_eq!(old.record_domain.as_deref(), Some("example.com"));
    assert_eq!(old.policy, Some(RequestedPolicy::Reject));
    let bis = rfc9989("a.b.example.com", |n: &str| zone.get(n));
    assert_eq!(bis.record_domain.as_deref(), Some("b.example.com"));
    assert_eq!(bis.policy, Some(RequestedPolicy::None));
    // Shortest name with a record, no psd tags anywhere.
    assert_eq!(bis.organizational_domain, "example.com");
}

#[test]
fn several_records_end_rfc7489_discovery_but_not_the_walk() {
    let zone = Zone::new(
        &[
            ("a.example.com", &["v=DMARC1; p=none", "v=DMARC1; p=reject"]),
            ("example.com", &["v=DMARC1; p=quarantine"]),
        ],
        &[],
    );
    let old = rfc7489("a.example.com", |n: &str| zone.get(n));
    assert_eq!(old.outcome, Outcome::Multiple);
    assert_eq!(old.policy, None);
    assert_eq!(old.queried, ["_dmarc.a.example.com"]);
    let bis = rfc9989("a.example.com", |n: &str| zone.get(n));
    assert_eq!(bis.outcome, Outcome::Applied);
    assert_eq!(bis.record_domain.as_deref(), Some("example.com"));
    assert_eq!(bis.policy, Some(RequestedPolicy::Quarantine));
}

#[test]
fn psd_tags_set_the_organizational_domain() {
    // A PSD record on a public-suffix-like private registry.
    let zone = Zone::new(&[("registry.example", &["v=DMARC1; p=reject; psd=y"])], &[]);
    let bis = rfc9989("mail.shop.registry.example", |n: &str| zone.get(n));
    assert_eq!(bis.organizational_domain, "shop.registry.example");
    assert_eq!(bis.record_domain.as_deref(), Some("registry.example"));
    assert_eq!(bis.policy, Some(RequestedPolicy::Reject));
    // RFC 7489 receivers take the PSL organizational domain, registry.example here (the
    // `example` TLD is unknown, so the default rule makes it the suffix), and find the same
    // record there.
    let old = rfc7489("mail.shop.registry.example", |n: &str| zone.get(n));
    assert_eq!(old.organizational_domain, "registry.example");

    let psd_n = Zone::new(
        &[
            ("dept.example.com", &["v=DMARC1; p=quarantine; psd=n"]),
            ("example.com", &["v=DMARC1; p=reject"]),
        ],
        &[],
    );
    let bis = rfc9989("a.dept.example.com", |n: &str| psd_n.get(n));
    assert_eq!(bis.organizational_domain, "dept.example.com");
    // psd=n stops the walk: example.com and com are not asked.
    assert_eq!(
        bis.queried,
        ["_dmarc.a.dept.example.com", "_dmarc.dept.example.com"]
    );
    let old = rfc7489("a.dept.example.com", |n: &str| psd_n.get(n));
    assert_eq!(old.organizational_domain, "example.com");
    assert_eq!(old.policy, Some(RequestedPolicy::Reject));
}

#[test]
fn no_record_anywhere() {
    let zone = Zone::new(&[], &[]);
    let old = rfc7489("mail.example.com", |n: &str| zone.get(n));
    assert_eq!(old.outcome, Outcome::NoRecord);
    let bis = rfc9989("mail.example.com", |n: &str| zone.get(n));
    assert_eq!(bis.outcome, Outcome::NoRecord);
    assert_eq!(bis.organizational_domain, "mail.example.com");
    assert_eq!(bis.queried.len(), 3);
}

#[test]
fn temporary_failures() {
    let zone = Zone::new(
        &[("example.com", &["v=DMARC1; p=reject"])],
        &["mail.example.com"],
    );
    assert_eq!(
        rfc7489("mail.example.com", |n: &str| zone.get(n)).outcome,
        Outcome::TempError
    );
    assert_eq!(
        rfc9989("mail.example.com", |n: &str| zone.get(n)).outcome,
        Outcome::TempError
    );
    // A failure above the record found does not matter for the policy.
    let above = Zone::new(&[("example.com", &["v=DMARC1; p=reject"])], &["com"]);
    let bis = rfc9989("example.com", |n: &str| above.get(n));
    assert_eq!(bis.outcome, Outcome::Applied);
}

#[test]
fn ignored_records() {
    let zone = Zone::new(&[("example.com", &["v=DMARC1; adkim=s"])], &[]);
    let old = rfc7489("example.com", |n: &str| zone.get(n));
    assert_eq!(old.outcome, Outcome::Ignored);
    assert_eq!(old.policy, None);
    let bis = rfc9989("example.com", |n: &str| zone.get(n));
    assert_eq!(bis.outcome, Outcome::Applied);
    assert_eq!(bis.policy, Some(RequestedPolicy::None));
}
