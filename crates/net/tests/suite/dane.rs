//! DANE inputs: `tlsa_secure`, `mx_secure`, `ip_secure` and their AD bit against testkit's
//! DNS server playing a validating resolver (`Zone::set_secure`).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use hickory_proto::op::{Edns, Message, Query};
use hickory_proto::rr::{Name, RecordType};
use mtasts_net::dns::{DnsConfig, DnsError, DnsLookup, HickoryDns, MxRecord, Secured, TlsaRecord};
use mtasts_proto::txt::TxtRr;
use mtasts_testkit::TestNet;
use mtasts_testkit::dns::{DnsServer, Fault, Zone};

use crate::util::dns_client;

const T: Duration = Duration::from_secs(5);

const NAME: &str = "_25._tcp.mx.example.com";

fn record(data: &[u8]) -> TlsaRecord {
    TlsaRecord {
        usage: 3,
        selector: 1,
        matching: 1,
        data_hex: data.iter().map(|b| format!("{b:02x}")).collect(),
    }
}

#[tokio::test]
async fn secure_tlsa_is_authenticated() {
    let net = TestNet::start().await;
    net.zone().add_tlsa(NAME, 3, 1, 1, &[0xab; 32]);
    net.zone().add_tlsa(NAME, 2, 0, 1, &[0x01; 32]);
    net.zone().set_secure(NAME, true);
    let dns = dns_client(&net, T);
    let secured = dns.tlsa_secure(NAME).await.unwrap();
    assert!(secured.authenticated);
    assert_eq!(secured.value.len(), 2);
    assert!(secured.value.contains(&record(&[0xab; 32])));
    assert!(secured.value.contains(&TlsaRecord {
        usage: 2,
        selector: 0,
        matching: 1,
        data_hex: "01".repeat(32),
    }));
    // The plain lookup still works and sees the same records.
    let mut plain = dns.tlsa(NAME).await.unwrap();
    let mut direct = secured.value.clone();
    plain.sort_by(|a, b| a.data_hex.cmp(&b.data_hex));
    direct.sort_by(|a, b| a.data_hex.cmp(&b.data_hex));
    assert_eq!(plain, direct);
    // A trailing dot and upper case make no difference.
    let dotted = dns.tlsa_secure("_25._TCP.MX.example.com.").await.unwrap();
    assert!(dotted.authenticated);
}

#[tokio::test]
async fn insecure_tlsa_is_not_authenticated() {
    let net = TestNet::start().await;
    net.zone().add_tlsa(NAME, 3, 1, 1, &[0xab; 32]);
    let dns = dns_client(&net, T);
    assert_eq!(
        dns.tlsa_secure(NAME).await,
        Ok(Secured {
            value: vec![record(&[0xab; 32])],
            authenticated: false
        })
    );
    // Marking and unmarking while the server runs.
    net.zone().set_secure(NAME, true);
    assert!(dns.tlsa_secure(NAME).await.unwrap().authenticated);
    net.zone().set_secure(NAME, false);
    assert!(!dns.tlsa_secure(NAME).await.unwrap().authenticated);
    // Another secure name does not make this one secure.
    net.zone().set_secure("mx.example.com", true);
    assert!(!dns.tlsa_secure(NAME).await.unwrap().authenticated);
}

#[tokio::test]
async fn negative_answers_are_classified() {
    let net = TestNet::start().await;
    net.zone().add_tlsa(NAME, 3, 1, 1, &[0xab; 32]);
    net.zone()
        .add_a("mx.example.com", Ipv4Addr::new(127, 0, 0, 7));
    for name in [
        "_25._tcp.mx.example.com",
        "mx.example.com",
        "nx.example.com",
    ] {
        net.zone().set_secure(name, true);
    }
    let dns = dns_client(&net, T);
    // NXDOMAIN, secure or not.
    assert_eq!(
        dns.tlsa_secure("_25._tcp.nx.example.com").await,
        Err(DnsError::NxDomain)
    );
    // NODATA: the name exists without TLSA records.
    assert_eq!(
        dns.tlsa_secure("mx.example.com").await,
        Err(DnsError::NoData)
    );
    // An empty non-terminal exists: NODATA, not NXDOMAIN.
    assert_eq!(
        dns.tlsa_secure("_tcp.mx.example.com").await,
        Err(DnsError::NoData)
    );
    // The same classification as the plain lookup.
    assert_eq!(
        dns.tlsa("_25._tcp.nx.example.com").await,
        Err(DnsError::NxDomain)
    );
    assert_eq!(dns.tlsa("mx.example.com").await, Err(DnsError::NoData));
    assert!(matches!(dns.tlsa_secure("").await, Err(DnsError::Other(_))));
}

#[tokio::test]
async fn server_failures_are_temporary() {
    let net = TestNet::start().await;
    for name in [
        "_25._tcp.sf.example",
        "_25._tcp.ref.example",
        "_25._tcp.drop.example",
    ] {
        net.zone().add_tlsa(name, 3, 1, 1, &[1; 32]);
        net.zone().set_secure(name, true);
    }
    net.zone().set_fault("_25._tcp.sf.example", Fault::ServFail);
    net.zone().set_fault("_25._tcp.ref.example", Fault::Refused);
    net.zone()
        .set_type_fault("_25._tcp.drop.example", RecordType::TLSA, Fault::Drop);
    let dns = dns_client(&net, Duration::from_millis(800));
    let sf = dns.tlsa_secure("_25._tcp.sf.example").await.unwrap_err();
    assert!(
        matches!(&sf, DnsError::ServerFailure(code) if code == "SERVFAIL"),
        "{sf:?}"
    );
    let refused = dns.tlsa_secure("_25._tcp.ref.example").await.unwrap_err();
    assert!(
        matches!(&refused, DnsError::ServerFailure(code) if code == "REFUSED"),
        "{refused:?}"
    );
    let started = Instant::now();
    assert_eq!(
        dns.tlsa_secure("_25._tcp.drop.example").await,
        Err(DnsError::Timeout)
    );
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "bounded by the timeout"
    );
    assert!(sf.is_temporary() && refused.is_temporary());
    // Same as the plain lookup.
    assert_eq!(dns.tlsa("_25._tcp.sf.example").await.unwrap_err(), sf);
    net.zone().clear_fault("_25._tcp.sf.example");
    assert!(
        dns.tlsa_secure("_25._tcp.sf.example")
            .await
            .unwrap()
            .authenticated
    );
}

#[tokio::test]
async fn nothing_listening_is_temporary() {
    let net = TestNet::start().await;
    let config = DnsConfig {
        servers: Some(vec![SocketAddr::new(net.next_ip(), net.dns_addr().port())]),
        timeout: Duration::from_millis(800),
    };
    let dns = HickoryDns::new(&config).unwrap();
    let err = dns.tlsa_secure(NAME).await.unwrap_err();
    assert!(err.is_temporary(), "{err:?}");
}

#[tokio::test]
async fn next_server_after_a_failure() {
    let net = TestNet::start().await;
    net.zone().add_tlsa(NAME, 3, 1, 1, &[0xab; 32]);
    net.zone().set_secure(NAME, true);
    // A first server that fails everything, then the good one.
    let failing = Arc::new(Zone::new());
    failing.set_global_fault(Some(Fault::ServFail));
    let bad = DnsServer::start(IpAddr::V4(Ipv4Addr::LOCALHOST), failing)
        .await
        .unwrap();
    // And one that never answers.
    let silent = Arc::new(Zone::new());
    silent.set_global_fault(Some(Fault::Drop));
    let mute = DnsServer::start(IpAddr::V4(Ipv4Addr::LOCALHOST), silent)
        .await
        .unwrap();
    let config = DnsConfig {
        servers: Some(vec![bad.addr(), mute.addr(), net.dns_addr()]),
        timeout: Duration::from_secs(3),
    };
    let dns = HickoryDns::new(&config).unwrap();
    let secured = dns.tlsa_secure(NAME).await.unwrap();
    assert!(secured.authenticated);
    assert_eq!(secured.value, vec![record(&[0xab; 32])]);
}

#[tokio::test]
async fn secure_cname_chain_needs_every_link_secure() {
    let net = TestNet::start().await;
    let zone = net.zone();
    zone.add_cname(
        "_25._tcp.mx.customer.example",
        "_25._tcp.mx.provider.example",
    );
    zone.add_tlsa("_25._tcp.mx.provider.example", 3, 1, 1, &[7; 32]);
    zone.set_secure("_25._tcp.mx.provider.example", true);
    let dns = dns_client(&net, T);
    let via = dns
        .tlsa_secure("_25._tcp.mx.customer.example")
        .await
        .unwrap();
    assert_eq!(via.value, vec![record(&[7; 32])]);
    assert!(!via.authenticated, "the alias is not secure");
    zone.set_secure("_25._tcp.mx.customer.example", true);
    assert!(
        dns.tlsa_secure("_25._tcp.mx.customer.example")
            .await
            .unwrap()
            .authenticated
    );
    // A dangling alias: NXDOMAIN at the end of the chain.
    zone.add_cname("_25._tcp.dangling.example", "gone.provider.example");
    assert_eq!(
        dns.tlsa_secure("_25._tcp.dangling.example").await,
        Err(DnsError::NxDomain)
    );
}

#[tokio::test]
async fn big_answer_comes_over_tcp() {
    let net = TestNet::start().await;
    // 40 records of 64 bytes of data: far beyond the 1232-byte EDNS payload.
    for i in 0..40u8 {
        net.zone().add_tlsa(NAME, 3, 1, 2, &[i; 64]);
    }
    net.zone().set_secure(NAME, true);
    // Over UDP the answer does not fit: truncated.
    let udp = raw_udp(net.dns_addr(), NAME, true, Some(true)).await;
    assert!(udp.metadata.truncation);
    let dns = dns_client(&net, T);
    let secured = dns.tlsa_secure(NAME).await.unwrap();
    assert_eq!(secured.value.len(), 40);
    assert!(secured.authenticated);
}

fn mx(preference: u16, exchange: &str) -> MxRecord {
    MxRecord {
        preference,
        exchange: exchange.to_string(),
    }
}

#[tokio::test]
async fn mx_secure_reports_whether_the_mx_rrset_is_authenticated() {
    let net = TestNet::start().await;
    let zone = net.zone();
    zone.add_mx("signed.example", 20, "MX2.signed.example.");
    zone.add_mx("signed.example", 10, "mx1.signed.example");
    zone.add_mx("signed.example", 10, "mx0.signed.example");
    zone.set_secure("signed.example", true);
    zone.add_mx("unsigned.example", 10, "mx.unsigned.example");
    // Secure TLSA records below an insecure MX RRset do not make it secure.
    zone.add_tlsa("_25._tcp.mx.unsigned.example", 3, 1, 1, &[1; 32]);
    zone.set_secure("_25._tcp.mx.unsigned.example", true);
    zone.set_secure("mx.unsigned.example", true);
    let dns = dns_client(&net, T);
    let expected = vec![
        mx(10, "mx0.signed.example"),
        mx(10, "mx1.signed.example"),
        mx(20, "mx2.signed.example"),
    ];
    assert_eq!(
        dns.mx_secure("signed.example").await,
        Ok(Secured {
            value: expected.clone(),
            authenticated: true
        })
    );
    // The same records, in the same order, as the plain lookup.
    assert_eq!(dns.mx("signed.example").await, Ok(expected));
    assert_eq!(
        dns.mx_secure("unsigned.example").await,
        Ok(Secured {
            value: vec![mx(10, "mx.unsigned.example")],
            authenticated: false
        })
    );
    // Marking and unmarking while the server runs; case and a trailing dot do not matter.
    zone.set_secure("unsigned.example", true);
    assert!(
        dns.mx_secure("Unsigned.Example.")
            .await
            .unwrap()
            .authenticated
    );
    zone.set_secure("signed.example", false);
    assert!(!dns.mx_secure("signed.example").await.unwrap().authenticated);
}

#[tokio::test]
async fn mx_secure_errors_are_classified_like_mx() {
    let net = TestNet::start().await;
    let zone = net.zone();
    zone.add_a("nomx.example", Ipv4Addr::new(127, 0, 0, 9));
    zone.add_mx("sf.example", 10, "mx.sf.example");
    zone.set_fault("sf.example", Fault::ServFail);
    zone.add_null_mx("null.example");
    zone.set_secure("null.example", true);
    let dns = dns_client(&net, T);
    assert_eq!(dns.mx_secure("nomx.example").await, Err(DnsError::NoData));
    assert_eq!(dns.mx("nomx.example").await, Err(DnsError::NoData));
    assert_eq!(dns.mx_secure("nx.example").await, Err(DnsError::NxDomain));
    let sf = dns.mx_secure("sf.example").await.unwrap_err();
    assert!(sf.is_temporary(), "{sf:?}");
    assert_eq!(dns.mx("sf.example").await.unwrap_err(), sf);
    // A null MX (RFC 7505) is an answer: one record with an empty exchange.
    assert_eq!(
        dns.mx_secure("null.example").await,
        Ok(Secured {
            value: vec![mx(0, "")],
            authenticated: true
        })
    );
}

#[tokio::test]
async fn ip_secure_needs_every_family_with_addresses_authenticated() {
    let net = TestNet::start().await;
    let zone = net.zone();
    zone.add_a("v4.example", Ipv4Addr::new(127, 0, 0, 4));
    zone.set_secure("v4.example", true);
    zone.add_a("both.example", Ipv4Addr::new(127, 0, 0, 5));
    zone.add_aaaa("both.example", "::5".parse().unwrap());
    let dns = dns_client(&net, T);
    // IPv4 only: the AAAA NODATA does not count.
    assert_eq!(
        dns.ip_secure("v4.example").await,
        Ok(Secured {
            value: vec![IpAddr::from([127, 0, 0, 4])],
            authenticated: true
        })
    );
    let both = dns.ip_secure("both.example").await.unwrap();
    assert_eq!(both.value.len(), 2);
    assert!(!both.authenticated);
    zone.set_secure("both.example", true);
    assert!(dns.ip_secure("both.example").await.unwrap().authenticated);
    assert_eq!(dns.ip_secure("gone.example").await, Err(DnsError::NxDomain));
    zone.set_fault("gone.example", Fault::ServFail);
    assert!(
        dns.ip_secure("gone.example")
            .await
            .unwrap_err()
            .is_temporary()
    );
}

/// One raw UDP query to `server`, with the AD flag and EDNS (with DO) as given.
async fn raw_udp(server: SocketAddr, name: &str, ad: bool, dnssec_ok: Option<bool>) -> Message {
    let mut request = Message::query();
    request.metadata.recursion_desired = true;
    request.metadata.authentic_data = ad;
    let name = Name::from_ascii(format!("{name}.")).unwrap();
    request.add_query(Query::query(name, RecordType::TLSA));
    if let Some(dnssec_ok) = dnssec_ok {
        let mut edns = Edns::new();
        edns.set_max_payload(1232);
        edns.set_dnssec_ok(dnssec_ok);
        request.set_edns(edns);
    }
    let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    socket.connect(server).await.unwrap();
    socket.send(&request.to_vec().unwrap()).await.unwrap();
    let mut buf = vec![0u8; 4096];
    let n = tokio::time::timeout(T, socket.recv(&mut buf))
        .await
        .expect("an answer")
        .unwrap();
    let response = Message::from_vec(&buf[..n]).unwrap();
    assert_eq!(response.metadata.id, request.metadata.id);
    response
}

/// The server's AD behaviour itself: AD only when the query asked with AD or DO.
#[tokio::test]
async fn testkit_sets_ad_only_when_asked() {
    let net = TestNet::start().await;
    net.zone().add_tlsa(NAME, 3, 1, 1, &[0xab; 32]);
    net.zone().set_secure(NAME, true);
    let server = net.dns_addr();
    let ask = |ad: bool, dnssec_ok: Option<bool>| async move {
        let response = raw_udp(server, NAME, ad, dnssec_ok).await;
        assert_eq!(response.answers.len(), 1);
        response.metadata.authentic_data
    };
    assert!(!ask(false, None).await, "plain query");
    assert!(!ask(false, Some(false)).await, "EDNS without DO");
    assert!(ask(true, None).await, "AD set");
    assert!(ask(false, Some(true)).await, "DO set");
    assert!(ask(true, Some(true)).await, "AD and DO set");
    net.zone().set_secure(NAME, false);
    assert!(!ask(true, Some(true)).await, "insecure name");
    // Negative answers about secure names are authenticated too (authenticated denial).
    net.zone().set_secure("nx.example.com", true);
    let nx = raw_udp(net.dns_addr(), "nx.example.com", true, Some(true)).await;
    assert!(nx.metadata.authentic_data);
    // Faults never are.
    net.zone().set_secure(NAME, true);
    net.zone().set_fault(NAME, Fault::ServFail);
    let failed = raw_udp(net.dns_addr(), NAME, true, Some(true)).await;
    assert_eq!(
        failed.metadata.response_code,
        hickory_proto::op::ResponseCode::ServFail
    );
    assert!(!failed.metadata.authentic_data);
}

/// A fake without its own `tlsa_secure` gets the default: never authenticated.
struct Fake;

impl DnsLookup for Fake {
    fn txt<'a>(&'a self, _: &'a str) -> BoxFuture<'a, Result<Vec<TxtRr>, DnsError>> {
        Box::pin(async { Err(DnsError::NoData) })
    }
    fn mx<'a>(&'a self, domain: &'a str) -> BoxFuture<'a, Result<Vec<MxRecord>, DnsError>> {
        Box::pin(async move {
            if domain == "example.com" {
                Ok(vec![mx(10, "mx.example.com")])
            } else {
                Err(DnsError::NoData)
            }
        })
    }
    fn ip<'a>(&'a self, host: &'a str) -> BoxFuture<'a, Result<Vec<IpAddr>, DnsError>> {
        Box::pin(async move {
            if host == "mx.example.com" {
                Ok(vec![IpAddr::from([192, 0, 2, 1])])
            } else {
                Err(DnsError::NoData)
            }
        })
    }
    fn tlsa<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<Vec<TlsaRecord>, DnsError>> {
        Box::pin(async move {
            if name == NAME {
                Ok(vec![record(&[1; 32])])
            } else {
                Err(DnsError::NxDomain)
            }
        })
    }
}

#[tokio::test]
async fn default_implementations_are_never_authenticated() {
    let fake: Arc<dyn DnsLookup> = Arc::new(Fake);
    assert_eq!(
        fake.mx_secure("example.com").await,
        Ok(Secured {
            value: vec![mx(10, "mx.example.com")],
            authenticated: false
        })
    );
    assert_eq!(fake.mx_secure("other.example").await, Err(DnsError::NoData));
    assert_eq!(
        fake.ip_secure("mx.example.com").await,
        Ok(Secured {
            value: vec![IpAddr::from([192, 0, 2, 1])],
            authenticated: false
        })
    );
    assert_eq!(fake.ip_secure("other.example").await, Err(DnsError::NoData));
}

#[tokio::test]
async fn default_implementation_is_never_authenticated() {
    let fake: Arc<dyn DnsLookup> = Arc::new(Fake);
    assert_eq!(
        fake.tlsa_secure(NAME).await,
        Ok(Secured {
            value: vec![record(&[1; 32])],
            authenticated: false
        })
    );
    assert_eq!(
        fake.tlsa_secure("other.example").await,
        Err(DnsError::NxDomain)
    );
}
