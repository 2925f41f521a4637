//! Unit tests of the SPF grammar, macros and tree walk, answering the walk's queries from an
//! in-memory table.

use std::collections::HashMap;
use std::net::IpAddr;

use super::macros::{MacroString, domain_spec};
use super::*;
use crate::txt::TxtRr;

fn parse(text: &str) -> Result<SpfRecord, SpfSyntaxError> {
    SpfRecord::parse(text)
}

#[test]
fn version_is_exact_and_ends_at_space() {
    assert!(is_spf(b"v=spf1"));
    assert!(is_spf(b"v=spf1 -all"));
    assert!(is_spf(b"V=SPF1 -all"));
    assert!(!is_spf(b"v=spf10 -all"));
    assert!(!is_spf(b"v=spf1;-all"));
    assert!(!is_spf(b" v=spf1 -all"));
    assert!(!is_spf(b"v=spf2.0/pra -all"));
    assert!(!is_spf(b"spf1"));
}

#[test]
fn every_mechanism_parses() {
    let r = parse(
        "v=spf1 +all -all ~all ?all include:_spf.example.com a a:mail.example.com a/24 a//64 \
         a:x.example.com/24//64 mx mx/28 MX:example.org ptr ptr:example.net ip4:192.0.2.0/24 \
         ip4:192.0.2.1 ip6:2001:db8::/32 ip6:::1 exists:%{i}.bl.example.com redirect=_spf.example.com \
         exp=explain.%{d} foo=bar",
    )
    .unwrap();
    assert_eq!(r.terms.len(), 23);
    assert!(matches!(
        r.terms[0].1,
        Term::Directive(Qualifier::Pass, Mechanism::All)
    ));
    assert!(matches!(
        r.terms[1].1,
        Term::Directive(Qualifier::Fail, Mechanism::All)
    ));
    assert!(matches!(
        r.terms[2].1,
        Term::Directive(Qualifier::SoftFail, Mechanism::All)
    ));
    assert!(matches!(
        r.terms[3].1,
        Term::Directive(Qualifier::Neutral, Mechanism::All)
    ));
    assert!(matches!(
        r.terms[8].1,
        Term::Directive(
            _,
            Mechanism::A {
                domain: None,
                v4: None,
                v6: Some(64)
            }
        )
    ));
    assert!(matches!(
        r.terms[9].1,
        Term::Directive(
            _,
            Mechanism::A {
                domain: Some(_),
                v4: Some(24),
                v6: Some(64)
            }
        )
    ));
    assert!(matches!(
        r.terms[15].1,
        Term::Directive(_, Mechanism::Ip4(_, Some(24)))
    ));
    assert!(matches!(
        r.terms[18].1,
        Term::Directive(_, Mechanism::Ip6(_, None))
    ));
    assert!(matches!(r.terms[20].1, Term::Redirect(_)));
    assert!(matches!(&r.terms[22].1, Term::Unknown { name, .. } if name == "foo"));
    assert!(r.has_all());
    // Several spaces between terms and trailing spaces are allowed (§4.5 `terms = *(1*SP ...)`, `*SP`).
    assert_eq!(parse("v=spf1  a   -all  ").unwrap().terms.len(), 2);
    assert!(parse("v=spf1").unwrap().terms.is_empty());
}

#[test]
fn bad_terms_are_permerrors() {
    let bad = [
        "v=spf1 foo",
        "v=spf1 all:x",
        "v=spf1 include",
        "v=spf1 include:",
        "v=spf1 include:localhost",
        "v=spf1 include:example.123",
        "v=spf1 include:exa..mple.com",
        "v=spf1 ip4:192.0.2.0/33",
        "v=spf1 ip4:192.0.2.0/024",
        "v=spf1 ip4:192.0.2",
        "v=spf1 ip4:192.0.02.1",
        "v=spf1 ip4:2001:db8::1",
        "v=spf1 ip6:2001:db8::/129",
        "v=spf1 ip6:192.0.2.1",
        "v=spf1 a/33",
        "v=spf1 mx//129",
        "v=spf1 a:example.com/",
        "v=spf1 ptr/24",
        "v=spf1 exists:%{x}.example.com",
        "v=spf1 exists:%{i0}.example.com",
        "v=spf1 exists:%{c}.example.com",
        "v=spf1 exists:%{i.example.com",
        "v=spf1 include:50%.example.com",
        "v=spf1 redirect=a.example redirect=b.example",
        "v=spf1 exp=a.example exp=b.example",
        "v=spf1 1foo=bar",
        "v=spf1 a -all\u{e9}",
        "v=spf1 a\t-all",
    ];
    for text in bad {
        assert!(parse(text).is_err(), "{text} should not parse");
    }
    assert!(matches!(
        parse("v=spf1 redirect=a.example redirect=b.example"),
        Err(SpfSyntaxError::DuplicateModifier("redirect"))
    ));
    assert!(matches!(
        parse("v=spf1 foo"),
        Err(SpfSyntaxError::UnknownMechanism(_))
    ));
}

#[test]
fn macro_strings() {
    assert!(domain_spec("%{d}").is_ok());
    assert!(domain_spec("%{ir}.%{v}._spf.%{d2}").is_ok());
    assert!(domain_spec("%{l1r+-}.example.com").is_ok());
    assert!(domain_spec("_spf.example.com.").is_ok());
    assert!(domain_spec("a%%b.example.com").is_ok());
    assert!(domain_spec("x.example.com-").is_err());
    assert!(domain_spec("%{d}.x").is_ok());
    assert!(domain_spec("%{d}x").is_err());
    assert!(domain_spec("a.123-4").is_ok());
    assert!(MacroString::parse("%{t}", true).is_ok());
    assert!(MacroString::parse("%{t}", false).is_err());
    let spec = domain_spec("_spf.%{d}").unwrap();
    assert_eq!(
        spec.expand("example.com").as_deref(),
        Some("_spf.example.com")
    );
    let spec = domain_spec("%{d2}").unwrap();
    assert_eq!(
        spec.expand("a.b.example.com").as_deref(),
        Some("example.com")
    );
    let spec = domain_spec("%{dr}.x.example").unwrap();
    assert_eq!(spec.expand("a.b.c").as_deref(), Some("c.b.a.x.example"));
    let spec = domain_spec("%{i}.bl.example.com").unwrap();
    assert!(spec.has_macros());
    assert_eq!(spec.expand("example.com"), None);
}

/// An in-memory DNS for the walk.
#[derive(Default)]
struct Table {
    txt: HashMap<String, Result<Vec<&'static str>, DnsFailure>>,
    mx: HashMap<String, Vec<String>>,
    ip: HashMap<String, Vec<IpAddr>>,
    fail: Vec<String>,
    asked: Vec<Query>,
}

impl Table {
    fn spf(mut self, name: &str, records: &[&'static str]) -> Self {
        self.txt.insert(name.into(), Ok(records.to_vec()));
        self
    }
    fn servfail(mut self, name: &str) -> Self {
        self.fail.push(name.into());
        self
    }
    fn ip(mut self, name: &str, ip: &str) -> Self {
        self.ip
            .entry(name.into())
            .or_default()
            .push(ip.parse().unwrap());
        self
    }
    fn mx(mut self, name: &str, n: usize) -> Self {
        self.mx.insert(
            name.into(),
            (0..n).map(|i| format!("mx{i}.{name}")).collect(),
        );
        self
    }
    fn run(&mut self, domain: &str) -> SpfOutcome {
        let mut walk = SpfWalk::new(domain);
        let mut steps = 0;
        while let Step::Query(q) = walk.step() {
            steps += 1;
            assert!(steps < 100, "the walk does not end");
            self.asked.push(q.clone());
            let temp = |name: &str| self.fail.iter().any(|f| f == name);
            let answer = match &q {
                Query::Txt(n) if temp(n) => {
                    Answer::Txt(Err(DnsFailure::Temporary("SERVFAIL".into())))
                }
                Query::Txt(n) => Answer::Txt(match self.txt.get(n) {
                    Some(Ok(r)) => Ok(r.iter().map(|t| TxtRr::single(t)).collect()),
                    Some(Err(e)) => Err(e.clone()),
                    None => Err(DnsFailure::NotFound),
                }),
                Query::Mx(n) if temp(n) => {
                    Answer::Mx(Err(DnsFailure::Temporary("SERVFAIL".into())))
                }
                Query::Mx(n) => Answer::Mx(self.mx.get(n).cloned().ok_or(DnsFailure::NotFound)),
                Query::Addresses { name, .. } if temp(name) => {
                    Answer::Addresses(Err(DnsFailure::Temporary("SERVFAIL".into())))
                }
                Query::Addresses { name, .. } => {
                    Answer::Addresses(self.ip.get(name).cloned().ok_or(DnsFailure::NotFound))
                }
            };
            walk.answer(answer);
        }
        walk.finish()
    }
}

fn codes(o: &SpfOutcome) -> Vec<&'static str> {
    o.diagnostics.iter().map(|d| d.code).collect()
}

fn severity_of(o: &SpfOutcome, code: &str) -> crate::Severity {
    o.diagnostics
        .iter()
        .find(|d| d.code == code)
        .unwrap_or_else(|| panic!("no {code} in {:?}", codes(o)))
        .severity
}

#[test]
fn a_clean_tree_is_valid_and_counts_lookups() {
    let mut t = Table::default()
        .spf(
            "example.com",
            &[
                "v=spf1 mx a:mail.example.com include:_spf.example.net -all",
                "google-site-verification=x",
            ],
        )
        .spf("_spf.example.net", &["v=spf1 ip4:192.0.2.0/24 ~all"])
        .mx("example.com", 2)
        .ip("mail.example.com", "192.0.2.1");
    let o = t.run("example.com");
    assert_eq!(o.status, SpfStatus::Valid, "{:?}", o.diagnostics);
    assert_eq!(o.dns_lookups, 3);
    assert_eq!(o.void_lookups, 0);
    assert!(o.diagnostics.is_empty(), "{:?}", o.diagnostics);
    assert_eq!(
        o.record.as_deref(),
        Some("v=spf1 mx a:mail.example.com include:_spf.example.net -all")
    );
    let include = o.tree.terms[2].target.as_ref().unwrap();
    assert_eq!(include.domain, "_spf.example.net");
    assert_eq!(include.via, Via::Include);
    assert_eq!(o.tree.terms[2].lookup, Some(3));
    assert_eq!(o.tree.terms[0].note.as_deref(), Some("2 MX record(s)"));
}

#[test]
fn missing_multiple_and_invalid_records() {
    let o = Table::default()
        .spf("example.com", &["hello"])
        .run("example.com");
    assert_eq!(o.status, SpfStatus::None);
    assert_eq!(codes(&o), ["spf-record-missing"]);
    assert_eq!(
        severity_of(&o, "spf-record-missing"),
        crate::Severity::Warning
    );

    let o = Table::default().run("example.com");
    assert_eq!(o.status, SpfStatus::None);
    assert_eq!(
        o.void_lookups, 0,
        "the root lookup is not a void lookup of the tree"
    );

    let o = Table::default()
        .spf("example.com", &["v=spf1 -all", "v=spf1 mx -all"])
        .run("example.com");
    assert_eq!(o.status, SpfStatus::Permerror);
    assert_eq!(codes(&o), ["spf-record-multiple"]);
    assert_eq!(o.tree.records.len(), 2);

    let o = Table::default()
        .spf("example.com", &["v=spf1 ip4:1.2.3.4/40 -all"])
        .run("example.com");
    assert_eq!(o.status, SpfStatus::Permerror);
    assert_eq!(codes(&o), ["spf-record-invalid"]);
    assert_eq!(o.tree.status, NodeStatus::Invalid);
}

#[test]
fn more_than_ten_lookups_is_a_permerror_at_the_eleventh() {
    let mut t = Table::default().spf(
        "example.com",
        &["v=spf1 include:a.example include:b.example include:c.example -all"],
    );
    for name in ["a.example", "b.example", "c.example"] {
        t = t
            .spf(
                name,
                &["v=spf1 a:h1.example a:h2.example a:h3.example ~all"],
            )
            .ip("h1.example", "192.0.2.1");
    }
    t = t
        .ip("h2.example", "192.0.2.2")
        .ip("h3.example", "192.0.2.3");
    let o = t.run("example.com");
    assert_eq!(o.dns_lookups, 12);
    assert_eq!(o.status, SpfStatus::Permerror);
    assert_eq!(codes(&o), ["spf-lookup-limit"]);
    let d = &o.diagnostics[0];
    assert!(
        d.message
            .contains("\"a:h2.example\" in the record of c.example"),
        "{}",
        d.message
    );

    // Exactly ten is fine.
    let ten = "v=spf1 a:h1.example a:h1.example a:h1.example a:h1.example a:h1.example a:h1.example a:h1.example a:h1.example a:h1.example a:h1.example -all";
    let o = Table::default()
        .spf("example.com", &[ten])
        .ip("h1.example", "192.0.2.1")
        .run("example.com");
    assert_eq!((o.status, o.dns_lookups), (SpfStatus::Valid, 10));
    // ip4, ip6, all and exp do not count.
    let o = Table::default()
        .spf(
            "example.com",
            &["v=spf1 ip4:192.0.2.1 ip6:2001:db8::1 exp=x.example.com -all"],
        )
        .run("example.com");
    assert_eq!(o.dns_lookups, 0);
}

#[test]
fn the_walk_is_capped() {
    // Every include names another include: a receiver stops at 11, the walk at the cap.
    let mut t = Table::default();
    let records: Vec<&'static str> = (0..60)
        .map(|i| &*Box::leak(format!("v=spf1 include:d{}.example -all", i + 1).into_boxed_str()))
        .collect();
    for (i, r) in records.iter().enumerate() {
        t = t.spf(&format!("d{i}.example"), &[r]);
    }
    let o = t.run("d0.example");
    assert_eq!(o.dns_lookups, walk::WALK_LOOKUP_CAP + 1);
    assert!(t.asked.len() <= walk::WALK_LOOKUP_CAP + 2);
    assert_eq!(o.status, SpfStatus::Permerror);
}

#[test]
fn void_lookups_over_two_are_a_permerror() {
    let o = Table::default()
        .spf(
            "example.com",
            &["v=spf1 a:gone1.example mx:gone2.example -all"],
        )
        .run("example.com");
    assert_eq!(o.void_lookups, 2);
    assert_eq!(o.status, SpfStatus::Valid);
    assert_eq!(codes(&o), ["spf-void-lookup", "spf-void-lookup"]);
    assert!(o.tree.terms[0].void);

    let o = Table::default()
        .spf(
            "example.com",
            &["v=spf1 a:gone1.example mx:gone2.example exists:gone3.example -all"],
        )
        .run("example.com");
    assert_eq!(o.void_lookups, 3);
    assert_eq!(o.status, SpfStatus::Permerror);
    assert!(codes(&o).contains(&"spf-void-lookup-limit"));
    // exists counts only A records: an AAAA-only name is void for it.
    let o = Table::default()
        .spf("example.com", &["v=spf1 exists:v6.example -all"])
        .ip("v6.example", "2001:db8::1")
        .run("example.com");
    assert_eq!(o.void_lookups, 1);
}

#[test]
fn include_targets_missing_or_broken() {
    let o = Table::default()
        .spf("example.com", &["v=spf1 include:nothing.example -all"])
        .run("example.com");
    assert_eq!(o.status, SpfStatus::Permerror);
    assert_eq!(codes(&o), ["spf-include-missing"]);
    assert_eq!(o.void_lookups, 1);

    let o = Table::default()
        .spf("example.com", &["v=spf1 redirect=other.example"])
        .spf("other.example", &["v=spf1 a -all", "v=spf1 mx -all"])
        .run("example.com");
    assert_eq!(o.status, SpfStatus::Permerror);
    assert_eq!(codes(&o), ["spf-record-multiple"]);
}

#[test]
fn loops_are_detected() {
    let o = Table::default()
        .spf("example.com", &["v=spf1 include:a.example -all"])
        .spf("a.example", &["v=spf1 include:example.com ~all"])
        .run("example.com");
    assert_eq!(o.status, SpfStatus::Permerror);
    assert_eq!(codes(&o), ["spf-loop"]);
    let o = Table::default()
        .spf("example.com", &["v=spf1 redirect=%{d}"])
        .run("example.com");
    assert_eq!(codes(&o), ["spf-loop"]);
    // The same include twice in different branches is not a loop.
    let o = Table::default()
        .spf(
            "example.com",
            &["v=spf1 include:a.example include:a.example -all"],
        )
        .spf("a.example", &["v=spf1 ip4:192.0.2.1 ~all"])
        .run("example.com");
    assert_eq!(o.status, SpfStatus::Valid);
    assert_eq!(o.dns_lookups, 2);
}

#[test]
fn temporary_failures_are_temperrors() {
    let o = Table::default().servfail("example.com").run("example.com");
    assert_eq!(o.status, SpfStatus::Temperror);
    assert_eq!(codes(&o), ["spf-dns-error"]);
    let o = Table::default()
        .spf(
            "example.com",
            &["v=spf1 include:slow.example a:down.example -all"],
        )
        .servfail("slow.example")
        .servfail("down.example")
        .run("example.com");
    assert_eq!(o.status, SpfStatus::Temperror);
    assert_eq!(codes(&o), ["spf-dns-error", "spf-dns-error"]);
    assert_eq!(
        o.tree.terms[0].target.as_ref().unwrap().status,
        NodeStatus::TempError
    );
    assert_eq!(o.void_lookups, 0);
}

#[test]
fn all_qualifiers_and_missing_all() {
    let run = |r: &'static str| Table::default().spf("example.com", &[r]).run("example.com");
    let o = run("v=spf1 +all");
    assert_eq!(severity_of(&o, "spf-all-pass"), crate::Severity::Error);
    let o = run("v=spf1 all");
    assert!(codes(&o).contains(&"spf-all-pass"));
    let o = run("v=spf1 ?all");
    assert_eq!(codes(&o), ["spf-all-neutral"]);
    assert_eq!(severity_of(&o, "spf-all-neutral"), crate::Severity::Warning);
    let o = run("v=spf1 ip4:192.0.2.1");
    assert_eq!(codes(&o), ["spf-all-missing"]);
    let o = run("v=spf1 ~all");
    assert!(o.diagnostics.is_empty());
    let o = run("v=spf1 -all ip4:192.0.2.1");
    assert_eq!(codes(&o), ["spf-terms-after-all"]);
    let o = run("v=spf1 ptr -all");
    assert_eq!(codes(&o), ["spf-ptr"]);
    assert_eq!(o.dns_lookups, 1);
    let o = run("v=spf1 ip4:0.0.0.0/1 -all");
    assert_eq!(codes(&o), ["spf-wide-range"]);
    let o = run("v=spf1 -all redirect=x.example");
    assert_eq!(codes(&o), ["spf-redirect-ignored"]);
    assert_eq!(o.dns_lookups, 0, "an ignored redirect is not followed");
    let o = run("v=spf1 -all foo=bar");
    assert_eq!(codes(&o), ["spf-unknown-modifier"]);

    // An included +all passes everyone; an included ?all or missing all does not matter.
    let o = Table::default()
        .spf(
            "example.com",
            &["v=spf1 include:a.example include:b.example -all"],
        )
        .spf("a.example", &["v=spf1 +all"])
        .spf("b.example", &["v=spf1 ip4:192.0.2.1 ?all"])
        .run("example.com");
    assert_eq!(codes(&o), ["spf-all-pass"]);
    // A redirect target is the root's policy: its ?all counts.
    let o = Table::default()
        .spf("example.com", &["v=spf1 redirect=_spf.example.com"])
        .spf("_spf.example.com", &["v=spf1 ?all"])
        .run("example.com");
    assert_eq!(codes(&o), ["spf-all-neutral"]);
    assert_eq!(o.tree.terms[0].target.as_ref().unwrap().via, Via::Redirect);
    assert_eq!(o.dns_lookups, 1);
}

#[test]
fn macros_depending_on_the_message_are_counted_not_followed() {
    let o = Table::default()
        .spf(
            "example.com",
            &["v=spf1 exists:%{i}._spf.%{d} include:_i.%{d} -all"],
        )
        .spf("_i.example.com", &["v=spf1 ip4:192.0.2.1 -all"])
        .run("example.com");
    assert_eq!(o.dns_lookups, 2);
    assert_eq!(codes(&o), ["spf-macro-not-evaluated"]);
    assert_eq!(
        o.tree.terms[1].target.as_ref().unwrap().domain,
        "_i.example.com"
    );
}

#[test]
fn mx_with_more_than_ten_records_is_a_permerror() {
    let o = Table::default()
        .spf("example.com", &["v=spf1 mx -all"])
        .mx("example.com", 11)
        .run("example.com");
    assert_eq!(o.status, SpfStatus::Permerror);
    assert_eq!(codes(&o), ["spf-mx-too-many"]);
    let o = Table::default()
        .spf("example.com", &["v=spf1 mx -all"])
        .mx("example.com", 10)
        .run("example.com");
    assert_eq!(o.status, SpfStatus::Valid);
}

#[test]
fn tree_serializes() {
    let o = Table::default()
        .spf("example.com", &["v=spf1 include:a.example -all"])
        .spf("a.example", &["v=spf1 ip4:192.0.2.1 -all"])
        .run("example.com");
    let v = serde_json::to_value(&o.tree).unwrap();
    assert_eq!(v["terms"][0]["target"]["domain"], "a.example");
    assert_eq!(v["terms"][0]["target"]["via"], "include");
    assert_eq!(v["status"], "valid");
}

proptest::proptest! {
    /// Any text parses or is refused without a panic, and any answers end the walk within its cap.
    #[test]
    fn parser_and_walk_never_panic(
        text in "v=spf1( [-+~?]?(all|a|mx|ptr|include:|exists:|ip4:|ip6:|redirect=|exp=|x=)[a-z0-9%{}./:_-]{0,12}){0,8}",
        answers in proptest::collection::vec("[ -~]{0,40}", 0..40),
    ) {
        let _ = SpfRecord::parse(&text);
        let mut walk = SpfWalk::new("example.com");
        let mut answers = answers.into_iter();
        let mut steps = 0;
        while let Step::Query(q) = walk.step() {
            steps += 1;
            proptest::prop_assert!(steps <= walk::WALK_LOOKUP_CAP * 2 + 2);
            let answer = match (q, answers.next()) {
                (Query::Txt(_), Some(a)) if steps == 1 => Answer::Txt(Ok(vec![TxtRr::single(&text), TxtRr::single(&a)])),
                (Query::Txt(_), Some(a)) => Answer::Txt(Ok(vec![TxtRr::single(&format!("v=spf1 {a}"))])),
                (Query::Mx(_), Some(a)) => Answer::Mx(Ok(vec![String::new(); a.len() % 13])),
                (Query::Addresses { .. }, Some(a)) if a.len() % 3 == 0 => Answer::Addresses(Err(DnsFailure::NotFound)),
                (Query::Addresses { .. }, Some(_)) => Answer::Addresses(Ok(vec!["192.0.2.1".parse().unwrap()])),
                (_, None) => Answer::Txt(Err(DnsFailure::Temporary("gone".into()))),
            };
            walk.answer(answer);
        }
        let o = walk.finish();
        proptest::prop_assert!(o.dns_lookups <= walk::WALK_LOOKUP_CAP + 1);
    }
}
