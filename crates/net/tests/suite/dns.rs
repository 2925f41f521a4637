//! `HickoryDns` against the testkit DNS server.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use hickory_proto::rr::RecordType;
use mtasts_net::dns::{DnsError, DnsLookup, MxRecord, TlsaRecord};
use mtasts_proto::txt::TxtRr;
use mtasts_testkit::TestNet;
use mtasts_testkit::dns::Fault;

use crate::util::dns_client;

const T: Duration = Duration::from_secs(5);

#[tokio::test]
async fn txt_single_and_multi_string() {
    let net = TestNet::start().await;
    net.zone()
        .add_txt("_mta-sts.example.com", &["v=STSv1; id=20", "240101"]);
    net.zone().add_txt("_mta-sts.example.com", &["v=spf1 -all"]);
    let dns = dns_client(&net, T);
    let mut txt = dns.txt("_mta-sts.example.com").await.unwrap();
    txt.sort_by_key(|rr| rr.0.len());
    assert_eq!(
        txt,
        vec![
            TxtRr::single("v=spf1 -all"),
            TxtRr(vec![b"v=STSv1; id=20".to_vec(), b"240101".to_vec()])
        ]
    );
    assert_eq!(txt[1].concat(), b"v=STSv1; id=20240101");
}

#[tokio::test]
async fn txt_raw_bytes_survive() {
    let net = TestNet::start().await;
    net.zone()
        .add_txt_bytes("_mta-sts.bytes.test", &[b"v=STSv1; id=\xff\x00a"]);
    let dns = dns_client(&net, T);
    let txt = dns.txt("_mta-sts.bytes.test.").await.unwrap();
    assert_eq!(txt, vec![TxtRr(vec![b"v=STSv1; id=\xff\x00a".to_vec()])]);
}

#[tokio::test]
async fn big_txt_answer_comes_over_tcp() {
    let net = TestNet::start().await;
    // Twenty RRs of ~1 KiB each: far beyond one UDP answer.
    for i in 0..20 {
        net.zone()
            .add_txt_long("big.example.com", &format!("{i:02}{}", "x".repeat(1000)));
    }
    let dns = dns_client(&net, T);
    let txt = dns.txt("big.example.com").await.unwrap();
    assert_eq!(txt.len(), 20);
    assert!(
        txt.iter()
            .all(|rr| rr.concat().len() == 1002 && rr.0.len() == 4)
    );
}

#[tokio::test]
async fn nxdomain_and_nodata() {
    let net = TestNet::start().await;
    net.zone()
        .add_txt("_mta-sts.example.com", &["v=STSv1; id=1"]);
    let dns = dns_client(&net, T);
    assert_eq!(
        dns.txt("_mta-sts.missing.example").await,
        Err(DnsError::NxDomain)
    );
    assert_eq!(dns.mx("_mta-sts.example.com").await, Err(DnsError::NoData));
    // An empty non-terminal exists: NODATA, not NXDOMAIN.
    assert_eq!(dns.txt("example.com").await, Err(DnsError::NoData));
    assert!(DnsError::NoData.is_not_found() && DnsError::NxDomain.is_not_found());
}

#[tokio::test]
async fn servfail_refused_and_timeout() {
    let net = TestNet::start().await;
    for name in ["sf.example.com", "ref.example.com", "drop.example.com"] {
        net.zone().add_txt(name, &["x"]);
    }
    net.zone().set_fault("sf.example.com", Fault::ServFail);
    net.zone().set_fault("ref.example.com", Fault::Refused);
    net.zone().set_fault("drop.example.com", Fault::Drop);
    let dns = dns_client(&net, Duration::from_millis(800));
    let sf = dns.txt("sf.example.com").await.unwrap_err();
    assert!(
        matches!(&sf, DnsError::ServerFailure(code) if code == "SERVFAIL"),
        "{sf:?}"
    );
    let refused = dns.txt("ref.example.com").await.unwrap_err();
    assert!(
        matches!(&refused, DnsError::ServerFailure(code) if code == "REFUSED"),
        "{refused:?}"
    );
    assert_eq!(dns.txt("drop.example.com").await, Err(DnsError::Timeout));
    assert!(sf.is_temporary() && refused.is_temporary() && DnsError::Timeout.is_temporary());
    // Faults can be lifted while the server runs.
    net.zone().clear_fault("sf.example.com");
    assert_eq!(
        dns.txt("sf.example.com").await,
        Ok(vec![TxtRr::single("x")])
    );
}

#[tokio::test]
async fn nothing_listening_is_temporary() {
    let net = TestNet::start().await;
    let config = mtasts_net::dns::DnsConfig {
        servers: Some(vec![std::net::SocketAddr::new(
            net.next_ip(),
            net.dns_addr().port(),
        )]),
        timeout: Duration::from_millis(800),
    };
    let dns = mtasts_net::dns::HickoryDns::new(&config).unwrap();
    let err = dns.txt("example.com").await.unwrap_err();
    assert!(err.is_temporary(), "{err:?}");
}

#[tokio::test]
async fn cname_chains_are_followed() {
    let net = TestNet::start().await;
    let zone = net.zone();
    zone.add_cname("_mta-sts.customer.example", "_mta-sts.provider.example");
    zone.add_cname("_mta-sts.provider.example", "sts.provider.example");
    zone.add_txt("sts.provider.example", &["v=STSv1; id=42"]);
    zone.add_cname("_mta-sts.dangling.example", "gone.provider.example");
    zone.add_cname("mta-sts.customer.example", "policy.provider.example");
    zone.add_a("policy.provider.example", Ipv4Addr::new(127, 0, 0, 9));
    zone.add_cname("_mta-sts.loop.example", "_mta-sts.loop.example");
    let dns = dns_client(&net, Duration::from_secs(2));
    assert_eq!(
        dns.txt("_mta-sts.customer.example").await,
        Ok(vec![TxtRr::single("v=STSv1; id=42")])
    );
    assert_eq!(
        dns.txt("_mta-sts.dangling.example").await,
        Err(DnsError::NxDomain)
    );
    assert_eq!(
        dns.ip("mta-sts.customer.example").await,
        Ok(vec![IpAddr::V4(Ipv4Addr::new(127, 0, 0, 9))])
    );
    let err = dns.txt("_mta-sts.loop.example").await.unwrap_err();
    assert!(err.is_temporary(), "{err:?}");
}

#[tokio::test]
async fn cname_to_a_target_with_a_fault() {
    let net = TestNet::start().await;
    net.zone()
        .add_cname("_mta-sts.a.example", "_mta-sts.b.example");
    net.zone().add_txt("_mta-sts.b.example", &["v=STSv1; id=1"]);
    net.zone().set_fault("_mta-sts.b.example", Fault::ServFail);
    let dns = dns_client(&net, T);
    let err = dns.txt("_mta-sts.a.example").await.unwrap_err();
    assert!(matches!(err, DnsError::ServerFailure(_)), "{err:?}");
}

#[tokio::test]
async fn mx_sorted_lowercased_and_null() {
    let net = TestNet::start().await;
    net.zone().add_mx("example.com", 20, "MX2.Example.COM.");
    net.zone().add_mx("example.com", 10, "mx1.example.com");
    net.zone().add_null_mx("null.example");
    let dns = dns_client(&net, T);
    assert_eq!(
        dns.mx("EXAMPLE.com").await.unwrap(),
        vec![
            MxRecord {
                preference: 10,
                exchange: "mx1.example.com".into()
            },
            MxRecord {
                preference: 20,
                exchange: "mx2.example.com".into()
            },
        ]
    );
    assert_eq!(
        dns.mx("null.example").await.unwrap(),
        vec![MxRecord {
            preference: 0,
            exchange: String::new()
        }]
    );
    assert_eq!(dns.mx("nomx.example").await, Err(DnsError::NxDomain));
}

#[tokio::test]
async fn ip_merges_both_families() {
    let net = TestNet::start().await;
    let zone = net.zone();
    zone.add_a("dual.example", Ipv4Addr::new(127, 0, 0, 2));
    zone.add_aaaa("dual.example", Ipv6Addr::LOCALHOST);
    zone.add_aaaa("v6only.example", Ipv6Addr::LOCALHOST);
    zone.add_txt("noaddr.example", &["x"]);
    let dns = dns_client(&net, T);
    let mut both = dns.ip("dual.example").await.unwrap();
    both.sort();
    assert_eq!(
        both,
        vec![
            IpAddr::from([127, 0, 0, 2]),
            IpAddr::V6(Ipv6Addr::LOCALHOST)
        ]
    );
    assert_eq!(
        dns.ip("v6only.example").await,
        Ok(vec![IpAddr::V6(Ipv6Addr::LOCALHOST)])
    );
    assert_eq!(dns.ip("noaddr.example").await, Err(DnsError::NoData));
    assert_eq!(dns.ip("nothing.example").await, Err(DnsError::NxDomain));
}

#[tokio::test]
async fn ip_with_one_family_failing_keeps_the_other() {
    let net = TestNet::start().await;
    net.zone()
        .add_a("host.example", Ipv4Addr::new(127, 0, 0, 3));
    net.zone()
        .set_type_fault("host.example", RecordType::AAAA, Fault::Drop);
    net.zone()
        .add_a("half.example", Ipv4Addr::new(127, 0, 0, 4));
    net.zone()
        .set_type_fault("half.example", RecordType::A, Fault::ServFail);
    net.zone().add_txt("broken.example", &["x"]);
    net.zone()
        .set_type_fault("broken.example", RecordType::AAAA, Fault::Refused);
    let dns = dns_client(&net, Duration::from_millis(800));
    assert_eq!(
        dns.ip("host.example").await,
        Ok(vec![IpAddr::from([127, 0, 0, 3])])
    );
    // A fails, AAAA is NODATA: we could not find out.
    assert!(matches!(
        dns.ip("half.example").await,
        Err(DnsError::ServerFailure(_))
    ));
    // A is NODATA, AAAA is refused: temporary as well.
    assert!(matches!(
        dns.ip("broken.example").await,
        Err(DnsError::ServerFailure(_))
    ));
}

#[tokio::test]
async fn tlsa_records() {
    let net = TestNet::start().await;
    net.zone()
        .add_tlsa("_25._tcp.mx.example.com", 3, 1, 1, &[0xab, 0x01, 0xff]);
    let dns = dns_client(&net, T);
    assert_eq!(
        dns.tlsa("_25._tcp.mx.example.com").await.unwrap(),
        vec![TlsaRecord {
            usage: 3,
            selector: 1,
            matching: 1,
            data_hex: "ab01ff".into()
        }]
    );
    assert_eq!(
        dns.tlsa("_25._tcp.other.example.com").await,
        Err(DnsError::NxDomain)
    );
}

#[tokio::test]
async fn answers_are_fresh() {
    let net = TestNet::start().await;
    let dns = dns_client(&net, T);
    assert_eq!(
        dns.txt("_mta-sts.fresh.example").await,
        Err(DnsError::NxDomain)
    );
    net.zone()
        .add_txt("_mta-sts.fresh.example", &["v=STSv1; id=1"]);
    assert_eq!(
        dns.txt("_mta-sts.fresh.example").await,
        Ok(vec![TxtRr::single("v=STSv1; id=1")])
    );
    net.zone().remove("_mta-sts.fresh.example");
    net.zone()
        .add_txt("_mta-sts.fresh.example", &["v=STSv1; id=2"]);
    assert_eq!(
        dns.txt("_mta-sts.fresh.example").await,
        Ok(vec![TxtRr::single("v=STSv1; id=2")])
    );
}
