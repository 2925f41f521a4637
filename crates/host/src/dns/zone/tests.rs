//! Tests of the pure zone answers ([`super::ZoneView`]): the apex, the hosts and the TXT
//! records, NXDOMAIN against NODATA against REFUSED, TXT names only under the hosting tenant's
//! label, and an exhaustive comparison of small names with an independent model.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType};
use mtasts_proto::hosted::delegation::{Delegation, ZoneName};
use mtasts_proto::sts::policy::Mode;

use super::{Answer, ZoneView, txt_rdata};
use crate::snapshot::{HostedDomain, Snapshot, ZoneSettings};

const ZONE: &str = "hosted.test";
const TTL: u32 = 300;

fn settings() -> ZoneSettings {
    ZoneSettings {
        delegation: Delegation::new(ZONE).unwrap(),
        public_ips: vec![
            "192.0.2.1".parse().unwrap(),
            "2001:db8::1".parse().unwrap(),
            "192.0.2.2".parse().unwrap(),
            "192.0.2.1".parse().unwrap(),
        ],
        ttl: TTL,
        report_mail: true,
        own_policy_mode: mtasts_proto::sts::policy::Mode::Testing,
    }
}

fn domain(name: &str, tenant_id: i64, txt_id: Option<&str>, tlsrpt: Option<&str>) -> HostedDomain {
    HostedDomain {
        name: name.to_string(),
        tenant_id,
        policy_body: Arc::from(
            "version: STSv1\r\nmode: testing\r\nmx: mx.example\r\nmax_age: 86400\r\n",
        ),
        txt_id: txt_id.map(str::to_string),
        tlsrpt: tlsrpt.map(str::to_string),
        certificate: None,
        reports_to_service: true,
    }
}

const TLSRPT: &str = "v=TLSRPTv1; rua=mailto:tlsrpt@example.com";

fn long_tlsrpt() -> String {
    let mut value = String::from("v=TLSRPTv1; rua=");
    let uris: Vec<String> = (0..20)
        .map(|i| format!("mailto:reports-{i:02}-abcdefghij@reporting.example.net"))
        .collect();
    value.push_str(&uris.join(","));
    value
}

fn snapshot(generation: u64) -> Snapshot {
    let mut domains = HashMap::new();
    for d in [
        domain("example.com", 1, Some("20240101T000000"), Some(TLSRPT)),
        domain("a.b.example.org", 2, None, None),
        domain("long.example", 1, Some("1"), Some(&long_tlsrpt())),
        domain("empty.example", 12, Some("2"), Some("")),
    ] {
        domains.insert(d.name.clone(), d);
    }
    Snapshot {
        generation,
        domains,
        challenges: Default::default(),
        freshness: None,
        service_certificate: None,
    }
}

fn view() -> ZoneView {
    ZoneView::new(&settings(), Arc::new(snapshot(7))).unwrap()
}

fn name(s: &str) -> Name {
    Name::from_ascii(s).unwrap()
}

fn ask(view: &ZoneView, qname: &str, qtype: RecordType) -> Answer {
    view.answer(&name(qname), qtype, DNSClass::IN)
}

/// The answer records as (owner as sent, type, rdata text).
fn answers(answer: &Answer) -> Vec<(String, RecordType, String)> {
    answer
        .answers
        .iter()
        .map(|r| (r.name.to_string(), r.record_type(), r.data.to_string()))
        .collect()
}

fn txt_strings(record: &Record) -> Vec<Vec<u8>> {
    match &record.data {
        RData::TXT(txt) => txt.txt_data.iter().map(|s| s.to_vec()).collect(),
        other => panic!("not a TXT record: {other:?}"),
    }
}

#[track_caller]
fn assert_positive(answer: &Answer) {
    assert_eq!(answer.code, ResponseCode::NoError);
    assert!(answer.authoritative);
    assert!(!answer.answers.is_empty());
    assert!(answer.authority.is_empty());
}

#[track_caller]
fn assert_negative(view: &ZoneView, answer: &Answer, code: ResponseCode) {
    assert_eq!(answer.code, code);
    assert!(answer.authoritative);
    assert!(answer.answers.is_empty(), "{:?}", answer.answers);
    assert_eq!(answer.authority, vec![view.soa().clone()]);
    assert!(answer.additionals.is_empty());
}

#[track_caller]
fn assert_refused(answer: &Answer) {
    assert_eq!(answer.code, ResponseCode::Refused);
    assert!(!answer.authoritative);
    assert!(answer.answers.is_empty());
    assert!(answer.authority.is_empty());
    assert!(answer.additionals.is_empty());
}

#[test]
fn apex_has_soa_ns_and_the_public_addresses() {
    let v = view();
    let soa = ask(&v, "hosted.test.", RecordType::SOA);
    assert_positive(&soa);
    assert_eq!(soa.answers, vec![v.soa().clone()]);
    let RData::SOA(data) = &soa.answers[0].data else {
        panic!("not an SOA")
    };
    assert_eq!(data.mname, name("ns.hosted.test."));
    assert_eq!(data.rname, name("hostmaster.hosted.test."));
    assert_eq!(data.serial, 7);
    assert_eq!(data.minimum, TTL);
    assert!(data.refresh > 0 && data.retry > 0 && data.expire > data.refresh);
    assert_eq!(soa.answers[0].ttl, TTL);
    assert_eq!(soa.answers[0].name, name("hosted.test."));

    let ns = ask(&v, "hosted.test.", RecordType::NS);
    assert_positive(&ns);
    assert_eq!(
        answers(&ns),
        vec![(
            "hosted.test.".to_string(),
            RecordType::NS,
            "ns.hosted.test.".to_string()
        )]
    );
    // The name server's addresses ride along.
    let glue: Vec<String> = ns.additionals.iter().map(|r| r.to_string()).collect();
    assert_eq!(ns.additionals.len(), 3, "{glue:?}");
    assert!(
        ns.additionals
            .iter()
            .all(|r| r.name == name("ns.hosted.test."))
    );

    let any = ask(&v, "hosted.test.", RecordType::ANY);
    assert_positive(&any);
    let types: Vec<RecordType> = any.answers.iter().map(Record::record_type).collect();
    assert_eq!(
        types,
        [
            RecordType::SOA,
            RecordType::NS,
            RecordType::A,
            RecordType::A,
            RecordType::AAAA
        ]
    );

    // The apex is also a policy host: the provider's own domain `d` with zone `mta-sts.d`.
    let a = ask(&v, "hosted.test.", RecordType::A);
    assert_positive(&a);
    assert_eq!(a.answers.len(), 2);
    assert_eq!(ask(&v, "hosted.test.", RecordType::AAAA).answers.len(), 1);

    for qtype in [RecordType::TXT, RecordType::MX, RecordType::CNAME] {
        assert_negative(&v, &ask(&v, "hosted.test.", qtype), ResponseCode::NoError);
    }
}

#[test]
fn soa_serial_is_the_generation_truncated() {
    for (generation, serial) in [
        (0u64, 0u32),
        (1, 1),
        (u64::from(u32::MAX), u32::MAX),
        ((1 << 32) + 5, 5),
    ] {
        let v = ZoneView::new(&settings(), Arc::new(snapshot(generation))).unwrap();
        let RData::SOA(soa) = &v.soa().data else {
            panic!("not an SOA")
        };
        assert_eq!(soa.serial, serial, "generation {generation}");
    }
}

#[test]
fn name_server_and_policy_host_have_the_public_addresses() {
    let v = view();
    for host in [
        "ns.hosted.test.",
        "policy.hosted.test.",
        "POLICY.Hosted.TEST.",
    ] {
        let a = ask(&v, host, RecordType::A);
        assert_positive(&a);
        // Configured duplicates are served once.
        let rdata: Vec<String> = answers(&a).into_iter().map(|(_, _, d)| d).collect();
        assert_eq!(rdata, ["192.0.2.1", "192.0.2.2"]);
        assert!(
            a.answers
                .iter()
                .all(|r| r.name.to_string() == host && r.ttl == TTL)
        );

        let aaaa = ask(&v, host, RecordType::AAAA);
        assert_positive(&aaaa);
        let rdata: Vec<String> = answers(&aaaa).into_iter().map(|(_, _, d)| d).collect();
        assert_eq!(rdata, ["2001:db8::1"]);

        let any = ask(&v, host, RecordType::ANY);
        assert_eq!(any.answers.len(), 3);

        for qtype in [
            RecordType::TXT,
            RecordType::NS,
            RecordType::SOA,
            RecordType::CNAME,
        ] {
            assert_negative(&v, &ask(&v, host, qtype), ResponseCode::NoError);
        }
    }
}

#[test]
fn without_public_addresses_the_hosts_exist_but_have_no_records() {
    let mut s = settings();
    s.public_ips.clear();
    let v = ZoneView::new(&s, Arc::new(snapshot(1))).unwrap();
    for host in ["ns.hosted.test.", "policy.hosted.test."] {
        for qtype in [RecordType::A, RecordType::AAAA, RecordType::ANY] {
            assert_negative(&v, &ask(&v, host, qtype), ResponseCode::NoError);
        }
    }
    let ns = ask(&v, "hosted.test.", RecordType::NS);
    assert_positive(&ns);
    assert!(ns.additionals.is_empty());
}

#[test]
fn sts_record_carries_the_published_id() {
    let v = view();
    let txt = ask(&v, "_mta-sts.example.com.t1.hosted.test.", RecordType::TXT);
    assert_positive(&txt);
    assert_eq!(txt.answers.len(), 1);
    assert_eq!(
        txt_strings(&txt.answers[0]),
        vec![b"v=STSv1; id=20240101T000000".to_vec()]
    );
    assert_eq!(txt.answers[0].ttl, TTL);
    assert_eq!(
        ask(&v, "_mta-sts.example.com.t1.hosted.test.", RecordType::ANY).answers,
        txt.answers
    );
    for qtype in [RecordType::A, RecordType::CNAME, RecordType::SOA] {
        assert_negative(
            &v,
            &ask(&v, "_mta-sts.example.com.t1.hosted.test.", qtype),
            ResponseCode::NoError,
        );
    }
}

#[test]
fn answers_echo_the_question_case() {
    let v = view();
    let qname = "_MTA-STS.Example.COM.T1.Hosted.Test.";
    let txt = ask(&v, qname, RecordType::TXT);
    assert_positive(&txt);
    assert_eq!(txt.answers[0].name.to_string(), qname);
    assert_eq!(
        txt_strings(&txt.answers[0]),
        vec![b"v=STSv1; id=20240101T000000".to_vec()]
    );
    let soa = ask(&v, "HOSTED.test.", RecordType::SOA);
    assert_eq!(soa.answers[0].name.to_string(), "HOSTED.test.");
    assert_eq!(soa.answers[0].data, v.soa().data);
    // The SOA of a negative answer is the zone's own, lowercase.
    let nx = ask(&v, "Nope.Hosted.Test.", RecordType::TXT);
    assert_eq!(nx.authority[0].name.to_string(), "hosted.test.");
}

#[test]
fn sts_name_without_a_published_id_is_nodata() {
    let v = view();
    for qtype in [RecordType::TXT, RecordType::ANY, RecordType::A] {
        assert_negative(
            &v,
            &ask(&v, "_mta-sts.a.b.example.org.t2.hosted.test.", qtype),
            ResponseCode::NoError,
        );
    }
}

#[test]
fn tlsrpt_record_is_the_domains_value() {
    let v = view();
    let txt = ask(
        &v,
        "_smtp._tls.example.com.t1.hosted.test.",
        RecordType::TXT,
    );
    assert_positive(&txt);
    assert_eq!(
        txt_strings(&txt.answers[0]),
        vec![TLSRPT.as_bytes().to_vec()]
    );
    // A domain without a rua: the name exists, the record does not.
    for qtype in [RecordType::TXT, RecordType::ANY] {
        assert_negative(
            &v,
            &ask(&v, "_smtp._tls.a.b.example.org.t2.hosted.test.", qtype),
            ResponseCode::NoError,
        );
    }
}

#[test]
fn long_txt_values_are_split_into_character_strings() {
    let v = view();
    let value = long_tlsrpt();
    assert!(value.len() > 2 * 255, "the fixture must need three strings");
    let txt = ask(
        &v,
        "_smtp._tls.long.example.t1.hosted.test.",
        RecordType::TXT,
    );
    assert_positive(&txt);
    let strings = txt_strings(&txt.answers[0]);
    assert_eq!(strings.len(), value.len().div_ceil(255));
    assert!(strings.iter().all(|s| s.len() <= 255));
    assert!(strings[..strings.len() - 1].iter().all(|s| s.len() == 255));
    assert_eq!(strings.concat(), value.as_bytes());

    assert_eq!(txt_rdata("").txt_data.len(), 1);
    assert_eq!(txt_rdata(&"x".repeat(255)).txt_data.len(), 1);
    assert_eq!(txt_rdata(&"x".repeat(256)).txt_data.len(), 2);
    let empty = ask(
        &v,
        "_smtp._tls.empty.example.t12.hosted.test.",
        RecordType::TXT,
    );
    assert_eq!(txt_strings(&empty.answers[0]), vec![Vec::<u8>::new()]);
}

#[test]
fn empty_non_terminals_are_nodata() {
    let v = view();
    for ent in [
        "t1.hosted.test.",
        "t2.hosted.test.",
        "t12.hosted.test.",
        "T12.hosted.test.",
        "example.com.t1.hosted.test.",
        "com.t1.hosted.test.",
        "_tls.example.com.t1.hosted.test.",
        "a.b.example.org.t2.hosted.test.",
        "b.example.org.t2.hosted.test.",
        "example.org.t2.hosted.test.",
        "org.t2.hosted.test.",
        "_tls.a.b.example.org.t2.hosted.test.",
        "EXAMPLE.com.T1.hosted.test.",
        "long.example.t1.hosted.test.",
        "example.t1.hosted.test.",
        "empty.example.t12.hosted.test.",
    ] {
        for qtype in [
            RecordType::TXT,
            RecordType::A,
            RecordType::ANY,
            RecordType::NS,
        ] {
            assert_negative(&v, &ask(&v, ent, qtype), ResponseCode::NoError);
        }
    }
}

#[test]
fn unknown_names_are_nxdomain() {
    let v = view();
    for missing in [
        "nope.hosted.test.",
        "_mta-sts.hosted.test.",
        "_smtp._tls.hosted.test.",
        "_tls.hosted.test.",
        "_smtp.hosted.test.",
        "_mta-sts.unknown.example.t1.hosted.test.",
        "_smtp._tls.unknown.example.t1.hosted.test.",
        "www.example.com.t1.hosted.test.",
        "_smtp.example.com.t1.hosted.test.",
        "_tls._smtp.example.com.t1.hosted.test.",
        "x._mta-sts.example.com.t1.hosted.test.",
        "x.ns.hosted.test.",
        "x.policy.hosted.test.",
        "_mta-sts.b.example.org.t2.hosted.test.",
        "_mta-sts._mta-sts.example.com.t1.hosted.test.",
        "_mta-sts.t1.hosted.test.",
        "_smtp._tls.t1.hosted.test.",
        // The untenanted names of before are gone, with their empty non-terminals.
        "_mta-sts.example.com.hosted.test.",
        "_smtp._tls.example.com.hosted.test.",
        "example.com.hosted.test.",
        "com.hosted.test.",
        "_tls.example.com.hosted.test.",
        // Tenants without domains, and other spellings of a tenant label.
        "t3.hosted.test.",
        "t0.hosted.test.",
        "t01.hosted.test.",
        "_mta-sts.example.com.t01.hosted.test.",
        "_mta-sts.example.com.t0.hosted.test.",
        "_mta-sts.example.com.t-1.hosted.test.",
        "_mta-sts.example.com.t99999999999999999999.hosted.test.",
        // No wildcards.
        "*.hosted.test.",
        "*.example.com.hosted.test.",
    ] {
        for qtype in [
            RecordType::TXT,
            RecordType::A,
            RecordType::ANY,
            RecordType::CNAME,
        ] {
            assert_negative(&v, &ask(&v, missing, qtype), ResponseCode::NXDomain);
        }
    }
}

#[test]
fn labels_that_no_hosted_name_can_have_are_nxdomain() {
    let v = view();
    // One label "example.com" (with a dot inside) must not be mistaken for two.
    let dotted = Name::from_labels(vec![
        b"_mta-sts".as_slice(),
        b"example.com",
        b"t1",
        b"hosted",
        b"test",
    ])
    .unwrap();
    let answer = v.answer(&dotted, RecordType::TXT, DNSClass::IN);
    assert_negative(&v, &answer, ResponseCode::NXDomain);
    let binary = Name::from_labels(vec![b"\x00\xff".as_slice(), b"hosted", b"test"]).unwrap();
    assert_negative(
        &v,
        &v.answer(&binary, RecordType::A, DNSClass::IN),
        ResponseCode::NXDomain,
    );
    // A dotted label at the apex side does not put a name in the zone.
    let fake_apex = Name::from_labels(vec![b"x".as_slice(), b"hosted.test"]).unwrap();
    assert_refused(&v.answer(&fake_apex, RecordType::A, DNSClass::IN));
}

#[test]
fn names_outside_the_zone_are_refused() {
    let v = view();
    for outside in [
        ".",
        "test.",
        "example.com.",
        "_mta-sts.example.com.",
        "evilhosted.test.",
        "hosted.test.evil.",
        "hosted.tes.",
    ] {
        for qtype in [
            RecordType::TXT,
            RecordType::A,
            RecordType::SOA,
            RecordType::ANY,
        ] {
            assert_refused(&ask(&v, outside, qtype));
        }
    }
}

#[test]
fn other_classes_and_zone_transfers_are_refused() {
    let v = view();
    let apex = name("hosted.test.");
    assert_refused(&v.answer(&apex, RecordType::TXT, DNSClass::CH));
    assert_refused(&v.answer(&apex, RecordType::SOA, DNSClass::HS));
    assert_refused(&v.answer(&apex, RecordType::SOA, DNSClass::ANY));
    assert_refused(&v.answer(&apex, RecordType::ANY, DNSClass::ANY));
    assert_refused(&v.answer(&apex, RecordType::SOA, DNSClass::NONE));
    assert_refused(&v.answer(&name("version.bind"), RecordType::TXT, DNSClass::CH));
    assert_positive(&v.answer(&apex, RecordType::SOA, DNSClass::IN));
    assert_refused(&v.answer(&apex, RecordType::AXFR, DNSClass::IN));
    assert_refused(&v.answer(&apex, RecordType::IXFR, DNSClass::IN));
}

#[test]
fn a_relative_question_name_is_answered_as_absolute() {
    let v = view();
    let answer = v.answer(&name("policy.hosted.test"), RecordType::A, DNSClass::IN);
    assert_positive(&answer);
    assert!(answer.answers.iter().all(|r| r.name.is_fqdn()));
}

/// The TXT names are bound to the tenant hosting the domain: another tenant's label is
/// NXDOMAIN, so an owner's stale CNAMEs to one tenant's names publish nothing for another
/// tenant that adds the domain.
#[test]
fn txt_names_exist_only_under_the_hosting_tenants_label() {
    let v = view();
    let owner = ask(&v, "_mta-sts.example.com.t1.hosted.test.", RecordType::TXT);
    assert_positive(&owner);
    let owner_rpt = ask(
        &v,
        "_smtp._tls.example.com.t1.hosted.test.",
        RecordType::TXT,
    );
    assert_positive(&owner_rpt);
    for other in ["t2", "t3", "t12", "t11", "t10"] {
        for qname in [
            format!("_mta-sts.example.com.{other}.hosted.test."),
            format!("_smtp._tls.example.com.{other}.hosted.test."),
            format!("_tls.example.com.{other}.hosted.test."),
            format!("example.com.{other}.hosted.test."),
        ] {
            for qtype in [RecordType::TXT, RecordType::ANY] {
                assert_negative(&v, &ask(&v, &qname, qtype), ResponseCode::NXDomain);
            }
        }
    }

    // The domain moves to tenant 2 (the first tenant removed it, the second added it):
    // the names under t1, where the owner's stale CNAMEs point, are gone.
    let mut next = snapshot(8);
    next.domains.insert(
        "example.com".to_string(),
        domain("example.com", 2, Some("20250101T000000"), Some(TLSRPT)),
    );
    let after = ZoneView::new(&settings(), Arc::new(next)).unwrap();
    for qname in [
        "_mta-sts.example.com.t1.hosted.test.",
        "_smtp._tls.example.com.t1.hosted.test.",
        "example.com.t1.hosted.test.",
    ] {
        assert_negative(
            &after,
            &ask(&after, qname, RecordType::TXT),
            ResponseCode::NXDomain,
        );
    }
    let moved = ask(
        &after,
        "_mta-sts.example.com.t2.hosted.test.",
        RecordType::TXT,
    );
    assert_positive(&moved);
    assert_eq!(
        txt_strings(&moved.answers[0]),
        vec![b"v=STSv1; id=20250101T000000".to_vec()]
    );
}

#[test]
fn adding_and_removing_a_domain_takes_a_new_view() {
    let before = view();
    let qname = "_mta-sts.new.example.t3.hosted.test.";
    assert_negative(
        &before,
        &ask(&before, qname, RecordType::TXT),
        ResponseCode::NXDomain,
    );

    let mut next = snapshot(8);
    next.domains.insert(
        "new.example".to_string(),
        domain("new.example", 3, Some("n1"), None),
    );
    next.domains.remove("example.com");
    let after = ZoneView::new(&settings(), Arc::new(next)).unwrap();
    assert_positive(&ask(&after, qname, RecordType::TXT));
    assert_negative(
        &after,
        &ask(
            &after,
            "_mta-sts.example.com.t1.hosted.test.",
            RecordType::TXT,
        ),
        ResponseCode::NXDomain,
    );
    assert_negative(
        &after,
        &ask(&after, "example.com.t1.hosted.test.", RecordType::TXT),
        ResponseCode::NXDomain,
    );
    // `com.t1` existed only for `example.com`: nothing below it now, so it is gone too;
    // `t1` stays for the tenant's other domain.
    assert_negative(
        &after,
        &ask(&after, "com.t1.hosted.test.", RecordType::TXT),
        ResponseCode::NXDomain,
    );
    assert_negative(
        &after,
        &ask(&after, "t1.hosted.test.", RecordType::TXT),
        ResponseCode::NoError,
    );
    assert_negative(
        &after,
        &ask(&after, "t3.hosted.test.", RecordType::TXT),
        ResponseCode::NoError,
    );
}

#[test]
fn an_overlong_zone_is_an_error_not_a_panic() {
    let label = "a".repeat(60);
    let zone = [label.as_str(); 4].join(".");
    let mut s = settings();
    s.delegation = Delegation::new(&zone).unwrap();
    assert!(ZoneView::new(&s, Arc::new(Snapshot::default())).is_err());
}

/// Every name built from a small label alphabet, up to four labels below the apex, with the
/// interesting query types: the answer agrees with an independent list of the zone's names,
/// negative answers never contradict each other (RFC 8020: below an NXDOMAIN there is
/// nothing), and the classification matches `Delegation::classify`.
#[test]
fn exhaustive_small_names_agree_with_an_independent_model() {
    let v = view();
    let delegation = Delegation::new(ZONE).unwrap();
    // The model: names that own records, then every ancestor of them up to the apex.
    let owners: Vec<(&str, Vec<RecordType>)> = vec![
        (
            "",
            vec![
                RecordType::SOA,
                RecordType::NS,
                RecordType::A,
                RecordType::A,
                RecordType::AAAA,
            ],
        ),
        // Two IPv4 addresses and one IPv6 address are configured.
        ("ns", vec![RecordType::A, RecordType::A, RecordType::AAAA]),
        (
            "policy",
            vec![RecordType::A, RecordType::A, RecordType::AAAA],
        ),
        // Each TXT name sits under the label of the tenant hosting the domain.
        ("_mta-sts.example.com.t1", vec![RecordType::TXT]),
        ("_smtp._tls.example.com.t1", vec![RecordType::TXT]),
        ("_mta-sts.a.b.example.org.t2", vec![]),
        ("_smtp._tls.a.b.example.org.t2", vec![]),
        ("_mta-sts.long.example.t1", vec![RecordType::TXT]),
        ("_smtp._tls.long.example.t1", vec![RecordType::TXT]),
        ("_mta-sts.empty.example.t12", vec![RecordType::TXT]),
        ("_smtp._tls.empty.example.t12", vec![RecordType::TXT]),
    ];
    let mut existing = BTreeSet::new();
    for (owner, _) in &owners {
        let labels: Vec<&str> = owner.split('.').filter(|l| !l.is_empty()).collect();
        for i in 0..=labels.len() {
            existing.insert(labels[i..].join("."));
        }
    }
    let types_at = |relative: &str| -> Vec<RecordType> {
        owners
            .iter()
            .find(|(o, _)| *o == relative)
            .map(|(_, t)| t.clone())
            .unwrap_or_default()
    };

    let alphabet = [
        "_mta-sts", "_smtp", "_tls", "ns", "policy", "example", "com", "org", "b", "a", "long",
        "t1", "t2", "t12", "t01",
    ];
    // Tenant labels sit right below the apex; `_smtp._tls.<d>.t<id>` needs five labels.
    let tenant_labels = ["t1", "t2", "t3"];
    let qtypes = [
        RecordType::A,
        RecordType::AAAA,
        RecordType::TXT,
        RecordType::NS,
        RecordType::SOA,
        RecordType::CNAME,
        RecordType::MX,
        RecordType::ANY,
    ];
    let mut names: Vec<Vec<&str>> = vec![vec![]];
    let mut frontier: Vec<Vec<&str>> = vec![vec![]];
    for depth in 0..5 {
        let mut next = Vec::new();
        for base in &frontier {
            // The fifth label only below a tenant label: all other five-label names are
            // like their four-label parents, and the full product would take long.
            if depth == 4 && !base.last().is_some_and(|top| tenant_labels.contains(top)) {
                continue;
            }
            for label in alphabet {
                let mut n = vec![label];
                n.extend(base.iter().copied());
                next.push(n);
            }
        }
        names.extend(next.iter().cloned());
        frontier = next;
    }
    assert!(names.len() > 100_000);

    let mut nxdomain = BTreeSet::new();
    for labels in &names {
        let relative = labels.join(".");
        let qname = if relative.is_empty() {
            format!("{ZONE}.")
        } else {
            format!("{relative}.{ZONE}.")
        };
        let exists = existing.contains(&relative);
        let has = types_at(&relative);
        for qtype in qtypes {
            let answer = ask(&v, &qname, qtype);
            assert!(answer.authoritative, "{qname} {qtype}");
            let expected: Vec<RecordType> = has
                .iter()
                .copied()
                .filter(|t| qtype == RecordType::ANY || *t == qtype)
                .collect();
            let got: Vec<RecordType> = answer.answers.iter().map(Record::record_type).collect();
            assert_eq!(got, expected, "{qname} {qtype}");
            assert!(
                answer.answers.iter().all(|r| r.name == name(&qname)),
                "{qname} {qtype}"
            );
            if expected.is_empty() {
                let code = if exists {
                    ResponseCode::NoError
                } else {
                    ResponseCode::NXDomain
                };
                assert_negative(&v, &answer, code);
            } else {
                assert_positive(&answer);
            }
            if answer.code == ResponseCode::NXDomain {
                nxdomain.insert(relative.clone());
            }
        }
        // RFC 8020: a name below an NXDOMAIN name is NXDOMAIN too.
        if let Some((_, parent)) = relative.split_once('.')
            && nxdomain.contains(parent)
        {
            assert!(
                nxdomain.contains(&relative),
                "{qname} exists below NXDOMAIN"
            );
        }
        // The delegation's own classification agrees on the named records.
        match delegation.classify(&qname) {
            ZoneName::Apex => assert_eq!(relative, ""),
            ZoneName::Nameserver => assert_eq!(relative, "ns"),
            ZoneName::PolicyHost => assert_eq!(relative, "policy"),
            ZoneName::StsRecord { domain, tenant_id } => {
                assert_eq!(relative, format!("_mta-sts.{domain}.t{tenant_id}"))
            }
            ZoneName::TlsRpt { domain, tenant_id } => {
                assert_eq!(relative, format!("_smtp._tls.{domain}.t{tenant_id}"))
            }
            ZoneName::Other => assert!(!types_at(&relative).contains(&RecordType::TXT)),
            ZoneName::Outside => panic!("{qname} classified outside"),
        }
    }
}

#[test]
fn the_view_keeps_its_snapshot() {
    let snap = Arc::new(snapshot(3));
    let v = ZoneView::new(&settings(), Arc::clone(&snap)).unwrap();
    assert!(Arc::ptr_eq(v.snapshot(), &snap));
    assert_eq!(v.apex(), &name("hosted.test."));
}

/// The report host: `reports.Z` has the public addresses and its MX (while mail intake runs),
/// its own policy host and records, and every hosted domain's DMARC authorization.
#[test]
fn report_host_names_and_records() {
    let v = view();
    let reports = settings().reports();
    let host = format!("{}.", reports.host());
    assert_eq!(host, "reports.hosted.test.");

    let a = ask(&v, &host, RecordType::A);
    assert_positive(&a);
    let rdata: Vec<String> = answers(&a).into_iter().map(|(_, _, d)| d).collect();
    assert_eq!(rdata, ["192.0.2.1", "192.0.2.2"]);
    assert_eq!(ask(&v, &host, RecordType::AAAA).answers.len(), 1);
    let mx = ask(&v, &host, RecordType::MX);
    assert_positive(&mx);
    assert_eq!(
        answers(&mx),
        vec![(
            host.clone(),
            RecordType::MX,
            "10 reports.hosted.test.".to_string()
        )]
    );
    assert_eq!(ask(&v, &host, RecordType::ANY).answers.len(), 4);
    for qtype in [RecordType::TXT, RecordType::NS, RecordType::CNAME] {
        assert_negative(&v, &ask(&v, &host, qtype), ResponseCode::NoError);
    }

    let policy_host = format!("{}.", reports.own_policy_host());
    assert_eq!(policy_host, "mta-sts.reports.hosted.test.");
    assert_eq!(ask(&v, &policy_host, RecordType::A).answers.len(), 2);
    assert_eq!(ask(&v, &policy_host, RecordType::AAAA).answers.len(), 1);
    for qtype in [RecordType::MX, RecordType::TXT] {
        assert_negative(&v, &ask(&v, &policy_host, qtype), ResponseCode::NoError);
    }

    let sts = ask(&v, "_mta-sts.reports.hosted.test.", RecordType::TXT);
    assert_positive(&sts);
    let text = String::from_utf8(txt_strings(&sts.answers[0]).concat()).unwrap();
    assert_eq!(
        text,
        format!("v=STSv1; id={}", reports.own_policy_id(Mode::Testing))
    );
    mtasts_proto::sts::record::StsRecord::parse(&text).unwrap();

    let rpt = ask(&v, "_smtp._tls.reports.hosted.test.", RecordType::TXT);
    assert_positive(&rpt);
    let text = String::from_utf8(txt_strings(&rpt.answers[0]).concat()).unwrap();
    assert_eq!(
        text,
        "v=TLSRPTv1; rua=mailto:tlsrpt@reports.hosted.test,https://reports.hosted.test/tlsrpt"
    );

    // Every hosted domain, whichever tenant hosts it, is authorized; nothing else is.
    for d in [
        "example.com",
        "a.b.example.org",
        "long.example",
        "empty.example",
    ] {
        let qname = format!("{}.", reports.dmarc_authorization_name(d));
        let txt = ask(&v, &qname, RecordType::TXT);
        assert_positive(&txt);
        assert_eq!(txt_strings(&txt.answers[0]), vec![b"v=DMARC1".to_vec()]);
        assert_negative(&v, &ask(&v, &qname, RecordType::A), ResponseCode::NoError);
        let upper = qname.to_uppercase();
        assert_eq!(ask(&v, &upper, RecordType::TXT).answers.len(), 1);
    }
    for missing in [
        "other.example._report._dmarc.reports.hosted.test.",
        "example.net._report._dmarc.reports.hosted.test.",
        "www.example.com._report._dmarc.reports.hosted.test.",
        "example.com._report._dmarc.hosted.test.",
        "example.com._dmarc.reports.hosted.test.",
        "x.reports.hosted.test.",
        "x.mta-sts.reports.hosted.test.",
        "_mta-sts.mta-sts.reports.hosted.test.",
        "_smtp.reports.hosted.test.",
        "_tls._smtp.reports.hosted.test.",
        "mta-sts.hosted.test.",
        "report.hosted.test.",
    ] {
        for qtype in [RecordType::TXT, RecordType::A, RecordType::ANY] {
            assert_negative(&v, &ask(&v, missing, qtype), ResponseCode::NXDomain);
        }
    }
    // The empty non-terminals above them.
    for ent in [
        "_tls.reports.hosted.test.",
        "_dmarc.reports.hosted.test.",
        "_report._dmarc.reports.hosted.test.",
        "com._report._dmarc.reports.hosted.test.",
        "org._report._dmarc.reports.hosted.test.",
        "example.org._report._dmarc.reports.hosted.test.",
        "b.example.org._report._dmarc.reports.hosted.test.",
        "example._report._dmarc.reports.hosted.test.",
    ] {
        for qtype in [RecordType::TXT, RecordType::A, RecordType::ANY] {
            assert_negative(&v, &ask(&v, ent, qtype), ResponseCode::NoError);
        }
    }
}

/// Without mail intake the report host has no MX, and its own rua is the HTTPS URL alone;
/// the own policy's id follows the configured mode.
#[test]
fn report_host_follows_the_settings() {
    let mut s = settings();
    s.report_mail = false;
    s.own_policy_mode = Mode::Enforce;
    let v = ZoneView::new(&s, Arc::new(snapshot(1))).unwrap();
    assert_negative(
        &v,
        &ask(&v, "reports.hosted.test.", RecordType::MX),
        ResponseCode::NoError,
    );
    assert_eq!(
        ask(&v, "reports.hosted.test.", RecordType::A).answers.len(),
        2
    );
    let rpt = ask(&v, "_smtp._tls.reports.hosted.test.", RecordType::TXT);
    assert_eq!(
        txt_strings(&rpt.answers[0]).concat(),
        b"v=TLSRPTv1; rua=https://reports.hosted.test/tlsrpt".to_vec()
    );
    let sts = ask(&v, "_mta-sts.reports.hosted.test.", RecordType::TXT);
    assert_eq!(
        String::from_utf8(txt_strings(&sts.answers[0]).concat()).unwrap(),
        format!("v=STSv1; id={}", s.reports().own_policy_id(Mode::Enforce))
    );
    assert_ne!(
        s.reports().own_policy_id(Mode::Enforce),
        s.reports().own_policy_id(Mode::Testing)
    );
}

/// A domain's DMARC authorization appears with the domain and goes with it.
#[test]
fn dmarc_authorization_follows_the_hosted_domains() {
    let qname = "new.example._report._dmarc.reports.hosted.test.";
    let before = view();
    assert_negative(
        &before,
        &ask(&before, qname, RecordType::TXT),
        ResponseCode::NXDomain,
    );
    let mut next = snapshot(8);
    next.domains.insert(
        "new.example".to_string(),
        domain("new.example", 3, None, None),
    );
    next.domains.remove("example.com");
    let after = ZoneView::new(&settings(), Arc::new(next)).unwrap();
    assert_positive(&ask(&after, qname, RecordType::TXT));
    assert_negative(
        &after,
        &ask(
            &after,
            "example.com._report._dmarc.reports.hosted.test.",
            RecordType::TXT,
        ),
        ResponseCode::NXDomain,
    );
    // `com._report…` existed only for example.com.
    assert_negative(
        &after,
        &ask(
            &after,
            "com._report._dmarc.reports.hosted.test.",
            RecordType::TXT,
        ),
        ResponseCode::NXDomain,
    );
}

/// Every name of a small alphabet below `reports.Z`, up to four labels: the answers agree
/// with the list of the report host's names, and nothing exists below an NXDOMAIN.
#[test]
fn exhaustive_report_names_agree_with_an_independent_model() {
    let v = view();
    let owners: Vec<(&str, Vec<RecordType>)> = vec![
        (
            "reports",
            vec![
                RecordType::A,
                RecordType::A,
                RecordType::AAAA,
                RecordType::MX,
            ],
        ),
        (
            "mta-sts.reports",
            vec![RecordType::A, RecordType::A, RecordType::AAAA],
        ),
        ("_mta-sts.reports", vec![RecordType::TXT]),
        ("_smtp._tls.reports", vec![RecordType::TXT]),
        ("example.com._report._dmarc.reports", vec![RecordType::TXT]),
        ("long.example._report._dmarc.reports", vec![RecordType::TXT]),
        (
            "empty.example._report._dmarc.reports",
            vec![RecordType::TXT],
        ),
    ];
    let mut existing = BTreeSet::new();
    for (owner, _) in &owners {
        let labels: Vec<&str> = owner.split('.').collect();
        for i in 0..labels.len() {
            existing.insert(labels[i..].join("."));
        }
    }
    // `a.b.example.org` adds its own ancestors.
    for s in ["org", "example.org", "b.example.org", "a.b.example.org"] {
        existing.insert(format!("{s}._report._dmarc.reports"));
    }
    let types_at = |relative: &str| -> Vec<RecordType> {
        owners
            .iter()
            .find(|(o, _)| *o == relative)
            .map(|(_, t)| t.clone())
            .unwrap_or_default()
    };
    let alphabet = [
        "_mta-sts", "mta-sts", "_smtp", "_tls", "_report", "_dmarc", "example", "com", "long",
        "reports",
    ];
    let mut names: Vec<Vec<&str>> = Vec::new();
    let mut frontier: Vec<Vec<&str>> = vec![vec!["reports"]];
    names.extend(frontier.iter().cloned());
    for _ in 0..5 {
        let mut next = Vec::new();
        for base in &frontier {
            for label in alphabet {
                let mut n = vec![label];
                n.extend(base.iter().copied());
                next.push(n);
            }
        }
        names.extend(next.iter().cloned());
        frontier = next;
    }
    let mut nxdomain = BTreeSet::new();
    for labels in &names {
        let relative = labels.join(".");
        let qname = format!("{relative}.{ZONE}.");
        let has = types_at(&relative);
        for qtype in [
            RecordType::A,
            RecordType::TXT,
            RecordType::MX,
            RecordType::ANY,
        ] {
            let answer = ask(&v, &qname, qtype);
            let expected: Vec<RecordType> = has
                .iter()
                .copied()
                .filter(|t| qtype == RecordType::ANY || *t == qtype)
                .collect();
            let got: Vec<RecordType> = answer.answers.iter().map(Record::record_type).collect();
            assert_eq!(got, expected, "{qname} {qtype}");
            if expected.is_empty() {
                let code = if existing.contains(&relative) {
                    ResponseCode::NoError
                } else {
                    ResponseCode::NXDomain
                };
                assert_negative(&v, &answer, code);
            }
            if answer.code == ResponseCode::NXDomain {
                nxdomain.insert(relative.clone());
            }
        }
        if let Some((_, parent)) = relative.split_once('.')
            && nxdomain.contains(parent)
        {
            assert!(
                nxdomain.contains(&relative),
                "{qname} exists below NXDOMAIN"
            );
        }
    }
}
