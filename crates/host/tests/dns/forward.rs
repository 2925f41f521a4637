//! The delegation end to end: the testkit's "internet" DNS holds the owners' CNAMEs and
//! forwards the service zone to the authority, as a real resolver would recurse into it.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::{RData, RecordType};
use mtasts_host::snapshot::HostedDomain;
use mtasts_net::dns::{DnsError, DnsLookup, HickoryDns};
use mtasts_proto::hosted::delegation::Delegation;
use mtasts_proto::sts::record::select;
use mtasts_proto::txt::{Selection, TxtRr};
use mtasts_testkit::TestNet;

use crate::dns::client::*;

/// A TestNet whose zone forwards `hosted.test` to a running authority, and the owners' three
/// CNAMEs for `example.com` (fully published), `pending.example` (no id yet),
/// `long.example` (a long rua) and `gone.example` (no longer hosted).
async fn delegated() -> (TestNet, Running) {
    let dns = start_default().await;
    let net = TestNet::start().await;
    net.zone().forward(ZONE, dns.addr);
    let delegation = Delegation::new(ZONE).unwrap();
    for domain in [
        "example.com",
        "pending.example",
        "long.example",
        "gone.example",
    ] {
        for record in delegation.records(domain, TENANT) {
            net.zone().add_cname(&record.name, &record.target);
        }
    }
    (net, dns)
}

fn resolver(net: &TestNet) -> HickoryDns {
    crate::support::dns::resolver(net, T)
}

#[tokio::test]
async fn testkit_forwarding_returns_cname_and_txt_in_one_answer() {
    let (net, _dns) = delegated().await;
    let answer = both(net.dns_addr(), "_mta-sts.example.com.", RecordType::TXT).await;
    assert_eq!(answer.metadata.response_code, ResponseCode::NoError);
    let chain: Vec<(String, RecordType)> = answer
        .answers
        .iter()
        .map(|r| (r.name.to_string(), r.record_type()))
        .collect();
    assert_eq!(
        chain,
        [
            ("_mta-sts.example.com.".to_string(), RecordType::CNAME),
            (
                "_mta-sts.example.com.t1.hosted.test.".to_string(),
                RecordType::TXT
            ),
        ]
    );
    let RData::CNAME(target) = &answer.answers[0].data else {
        panic!("not a CNAME")
    };
    assert_eq!(target.0, name("_mta-sts.example.com.t1.hosted.test."));
    assert_eq!(
        txt_strings(&answer),
        vec![vec![b"v=STSv1; id=20240101T000000".to_vec()]]
    );

    // The policy host: CNAME to policy.Z, then its addresses.
    let a = both(net.dns_addr(), "mta-sts.example.com.", RecordType::A).await;
    assert_eq!(a.answers.len(), 2);
    assert_eq!(a.answers[0].record_type(), RecordType::CNAME);
    assert_eq!(rdata_of(&a, RecordType::A), ["192.0.2.10"]);

    // A direct query under the forwarded suffix goes there too.
    let soa = both(net.dns_addr(), "hosted.test.", RecordType::SOA).await;
    assert_eq!(soa_serial(&soa.answers), Some(41));
}

#[tokio::test]
async fn testkit_forwarding_passes_on_negative_answers_with_the_soa() {
    let (net, dns) = delegated().await;
    // No longer hosted: the chain ends in NXDOMAIN, with the zone's SOA.
    let gone = both(net.dns_addr(), "_mta-sts.gone.example.", RecordType::TXT).await;
    assert_eq!(gone.metadata.response_code, ResponseCode::NXDomain);
    assert_eq!(gone.answers.len(), 1);
    assert_eq!(gone.answers[0].record_type(), RecordType::CNAME);
    assert_eq!(soa_serial(&gone.authorities), Some(41));
    assert_eq!(gone.authorities[0].name, name("hosted.test."));

    // Hosted but no id yet: NODATA through the chain.
    let pending = both(net.dns_addr(), "_mta-sts.pending.example.", RecordType::TXT).await;
    assert_eq!(pending.metadata.response_code, ResponseCode::NoError);
    assert_eq!(pending.answers.len(), 1);
    assert_eq!(soa_serial(&pending.authorities), Some(41));

    // The authority's own REFUSED is passed on, not made authoritative.
    net.zone().forward("elsewhere.test", dns.addr);
    let refused = both(net.dns_addr(), "x.elsewhere.test.", RecordType::A).await;
    assert_eq!(refused.metadata.response_code, ResponseCode::Refused);
    assert!(!refused.metadata.authoritative);
}

#[tokio::test]
async fn testkit_forwarding_to_a_silent_or_closed_server_is_servfail() {
    let net = TestNet::start().await;
    // Bound, never read: the query times out.
    let silent = tokio::net::UdpSocket::bind(SocketAddr::new(random_loopback(), 0))
        .await
        .unwrap();
    net.zone()
        .forward("silent.test", silent.local_addr().unwrap());
    net.zone().add_cname(
        "_mta-sts.owner.example",
        "_mta-sts.owner.example.silent.test",
    );
    let started = Instant::now();
    let answer = udp(
        net.dns_addr(),
        &query("_mta-sts.owner.example.", RecordType::TXT, true),
    )
    .await;
    assert_eq!(answer.metadata.response_code, ResponseCode::ServFail);
    assert!(started.elapsed() >= Duration::from_secs(1));

    // Nothing bound: refused at once, also SERVFAIL.
    let closed = {
        let socket = std::net::UdpSocket::bind(SocketAddr::new(random_loopback(), 0)).unwrap();
        socket.local_addr().unwrap()
    };
    net.zone().forward("closed.test", closed);
    let answer = udp(
        net.dns_addr(),
        &query("a.closed.test.", RecordType::A, true),
    )
    .await;
    assert_eq!(answer.metadata.response_code, ResponseCode::ServFail);
    drop(silent);
}

#[tokio::test]
async fn the_net_resolver_finds_the_records_through_the_delegation() {
    let (net, dns) = delegated().await;
    let resolver = resolver(&net);

    let txt = resolver.txt("_mta-sts.example.com").await.unwrap();
    let Selection::Found { record, .. } = select(&txt) else {
        panic!("no STS record selected from {txt:?}")
    };
    assert_eq!(record.id.as_str(), "20240101T000000");

    let tlsrpt = resolver.txt("_smtp._tls.example.com").await.unwrap();
    assert_eq!(tlsrpt, vec![TxtRr::single(TLSRPT)]);

    let mut ips = resolver.ip("mta-sts.example.com").await.unwrap();
    ips.sort();
    let expected: Vec<IpAddr> = vec![
        "192.0.2.10".parse().unwrap(),
        "2001:db8::10".parse().unwrap(),
    ];
    assert_eq!(ips, expected);

    // Larger than one UDP answer at both hops: TCP from the testkit to the authority and
    // from the resolver to the testkit.
    let long = resolver.txt("_smtp._tls.long.example").await.unwrap();
    assert_eq!(long.len(), 1);
    assert_eq!(long[0].concat(), long_tlsrpt().as_bytes());

    assert_eq!(
        resolver.txt("_mta-sts.pending.example").await,
        Err(DnsError::NoData)
    );
    assert_eq!(
        resolver.txt("_mta-sts.gone.example").await,
        Err(DnsError::NxDomain)
    );

    // A snapshot swap is seen through the whole path on the next lookup.
    dns.snapshot.store(std::sync::Arc::new(snapshot_of(
        42,
        vec![hosted("gone.example", Some("back"), None)],
    )));
    let back = resolver.txt("_mta-sts.gone.example").await.unwrap();
    assert_eq!(back, vec![TxtRr::single("v=STSv1; id=back")]);
    assert_eq!(
        resolver.txt("_mta-sts.example.com").await,
        Err(DnsError::NxDomain)
    );
}

/// The owner's CNAMEs name the tenant that hosted the domain: when another tenant adds it
/// (the first one removed it, the CNAMEs stayed), nothing is published through them.
#[tokio::test]
async fn stale_cnames_publish_nothing_for_another_tenant() {
    let (net, dns) = delegated().await;
    let resolver = resolver(&net);
    let other = TENANT + 1;
    dns.snapshot.store(std::sync::Arc::new(snapshot_of(
        42,
        vec![HostedDomain {
            tenant_id: other,
            ..hosted("gone.example", Some("taken"), Some(TLSRPT))
        }],
    )));
    for name in ["_mta-sts.gone.example", "_smtp._tls.gone.example"] {
        assert_eq!(resolver.txt(name).await, Err(DnsError::NxDomain), "{name}");
    }
    // Under the new tenant's own names the records are there, for its own CNAMEs.
    let own = both(
        dns.addr,
        &format!("_mta-sts.gone.example.t{other}.hosted.test."),
        RecordType::TXT,
    )
    .await;
    assert_eq!(txt_strings(&own), vec![vec![b"v=STSv1; id=taken".to_vec()]]);
    // The owner's stale target itself does not exist.
    let stale = both(
        dns.addr,
        "_mta-sts.gone.example.t1.hosted.test.",
        RecordType::TXT,
    )
    .await;
    assert_eq!(stale.metadata.response_code, ResponseCode::NXDomain);
    assert!(stale.answers.is_empty());
}
