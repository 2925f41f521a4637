//! A minimal DNS client over real sockets (hickory-proto messages), and a running authority
//! on a random loopback address.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use hickory_proto::op::{Edns, Message, OpCode, Query, ResponseCode};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use mtasts_host::dns::DnsAuthority;
use mtasts_host::snapshot::{self, HostedDomain, Snapshot, SnapshotHandle, ZoneSettings};
use mtasts_proto::hosted::delegation::Delegation;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};

/// Every network step of a test is bounded by this.
pub(crate) const T: Duration = Duration::from_secs(5);

pub(crate) const ZONE: &str = "hosted.test";
pub(crate) const TTL: u32 = 300;
/// The tenant hosting the fixture domains: their TXT names carry the label `t1`.
pub(crate) const TENANT: i64 = 1;
pub(crate) const TLSRPT: &str = "v=TLSRPTv1; rua=mailto:tlsrpt@example.com";

pub(crate) use mtasts_testkit::{random_loopback, random_u64};

/// A UDP socket and a TCP listener on the same random loopback address and port.
pub(crate) async fn bind_pair() -> (UdpSocket, TcpListener, SocketAddr) {
    for _ in 0..20 {
        let udp = UdpSocket::bind(SocketAddr::new(random_loopback(), 0))
            .await
            .unwrap();
        let addr = udp.local_addr().unwrap();
        if let Ok(tcp) = TcpListener::bind(addr).await {
            return (udp, tcp, addr);
        }
    }
    panic!("no free UDP+TCP port pair on loopback");
}

pub(crate) fn settings(public_ips: &[&str]) -> ZoneSettings {
    ZoneSettings {
        delegation: Delegation::new(ZONE).unwrap(),
        public_ips: public_ips.iter().map(|ip| ip.parse().unwrap()).collect(),
        ttl: TTL,
        report_mail: true,
        own_policy_mode: mtasts_proto::sts::policy::Mode::Testing,
    }
}

pub(crate) fn hosted(name: &str, txt_id: Option<&str>, tlsrpt: Option<&str>) -> HostedDomain {
    HostedDomain {
        name: name.to_string(),
        tenant_id: TENANT,
        policy_body: Arc::from(
            "version: STSv1\r\nmode: enforce\r\nmx: mx.example.com\r\nmax_age: 86400\r\n",
        ),
        txt_id: txt_id.map(str::to_string),
        tlsrpt: tlsrpt.map(str::to_string),
        certificate: None,
        reports_to_service: true,
    }
}

pub(crate) fn snapshot_of(generation: u64, domains: Vec<HostedDomain>) -> Snapshot {
    Snapshot {
        generation,
        domains: domains
            .into_iter()
            .map(|d| (d.name.clone(), d))
            .collect::<HashMap<_, _>>(),
        challenges: Default::default(),
        freshness: None,
        service_certificate: None,
    }
}

/// A TLSRPT value long enough to need several character-strings and more than 1232 bytes.
pub(crate) fn long_tlsrpt() -> String {
    let uris: Vec<String> = (0..40)
        .map(|i| format!("mailto:tlsrpt-{i:02}-reports@reporting.example.net"))
        .collect();
    format!("v=TLSRPTv1; rua={}", uris.join(","))
}

/// The usual fixture: example.com fully published, pending.example without an id or rua,
/// long.example with a long rua.
pub(crate) fn fixture_snapshot(generation: u64) -> Snapshot {
    snapshot_of(
        generation,
        vec![
            hosted("example.com", Some("20240101T000000"), Some(TLSRPT)),
            hosted("pending.example", None, None),
            hosted("long.example", Some("1"), Some(&long_tlsrpt())),
        ],
    )
}

/// A running authority and what the test needs to talk to it and change its snapshot.
pub(crate) struct Running {
    pub(crate) addr: SocketAddr,
    pub(crate) snapshot: SnapshotHandle,
    pub(crate) authority: Option<DnsAuthority>,
}

pub(crate) async fn start(settings: ZoneSettings, snapshot: Snapshot) -> Running {
    let (udp, tcp, addr) = bind_pair().await;
    let handle = snapshot::handle(snapshot);
    let authority = DnsAuthority::start(udp, tcp, settings, Arc::clone(&handle));
    Running {
        addr,
        snapshot: handle,
        authority: Some(authority),
    }
}

pub(crate) async fn start_default() -> Running {
    start(
        settings(&["192.0.2.10", "2001:db8::10"]),
        fixture_snapshot(41),
    )
    .await
}

pub(crate) fn name(s: &str) -> Name {
    Name::from_ascii(s).unwrap()
}

/// A query as a stub would send it (RD set, so we see the server clear RA), with EDNS
/// (4096 bytes) or without.
pub(crate) fn query(qname: &str, qtype: RecordType, edns: bool) -> Message {
    let mut message = Message::query();
    message.metadata.id = (random_u64() & 0xffff) as u16;
    message.metadata.recursion_desired = true;
    message.metadata.op_code = OpCode::Query;
    message.add_query(Query::query(name(qname), qtype));
    if edns {
        let mut opt = Edns::new();
        opt.set_max_payload(4096);
        message.set_edns(opt);
    }
    message
}

/// Sends raw bytes over UDP; the raw answer, or `None` when none came within `wait`.
pub(crate) async fn raw_udp(server: SocketAddr, bytes: &[u8], wait: Duration) -> Option<Vec<u8>> {
    let socket = UdpSocket::bind(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0))
        .await
        .unwrap();
    socket.connect(server).await.unwrap();
    socket.send(bytes).await.unwrap();
    let mut buf = vec![0u8; 65535];
    match tokio::time::timeout(wait, socket.recv(&mut buf)).await {
        Ok(Ok(n)) => Some(buf[..n].to_vec()),
        // A port nobody listens on answers with ICMP, which surfaces here.
        Ok(Err(_)) | Err(_) => None,
    }
}

/// Sends raw bytes over a fresh TCP connection (length-prefixed); the raw answer, or `None`
/// when the server closed the connection or sent nothing within `wait`.
pub(crate) async fn raw_tcp(server: SocketAddr, bytes: &[u8], wait: Duration) -> Option<Vec<u8>> {
    let mut stream = tokio::time::timeout(T, TcpStream::connect(server))
        .await
        .unwrap()
        .unwrap();
    tcp_exchange(&mut stream, bytes, wait).await
}

/// One length-prefixed exchange on an open connection; `None` as for [`raw_tcp`].
pub(crate) async fn tcp_exchange(
    stream: &mut TcpStream,
    bytes: &[u8],
    wait: Duration,
) -> Option<Vec<u8>> {
    let mut framed = u16::try_from(bytes.len()).unwrap().to_be_bytes().to_vec();
    framed.extend_from_slice(bytes);
    stream.write_all(&framed).await.ok()?;
    let mut prefix = [0u8; 2];
    match tokio::time::timeout(wait, stream.read_exact(&mut prefix)).await {
        Ok(Ok(_)) => {}
        Ok(Err(_)) | Err(_) => return None,
    }
    let mut buf = vec![0u8; usize::from(u16::from_be_bytes(prefix))];
    tokio::time::timeout(T, stream.read_exact(&mut buf))
        .await
        .unwrap()
        .unwrap();
    Some(buf)
}

fn parse(request: &Message, bytes: &[u8]) -> Message {
    let response = Message::from_vec(bytes).unwrap();
    assert_eq!(response.metadata.id, request.metadata.id);
    assert_eq!(response.queries, request.queries, "the question is echoed");
    response
}

pub(crate) async fn udp(server: SocketAddr, request: &Message) -> Message {
    let bytes = raw_udp(server, &request.to_vec().unwrap(), T)
        .await
        .unwrap_or_else(|| panic!("no UDP answer from {server} within {T:?}"));
    parse(request, &bytes)
}

pub(crate) async fn tcp(server: SocketAddr, request: &Message) -> Message {
    let bytes = raw_tcp(server, &request.to_vec().unwrap(), T)
        .await
        .unwrap_or_else(|| panic!("no TCP answer from {server} within {T:?}"));
    parse(request, &bytes)
}

/// The same question over UDP (with EDNS) and TCP; both answers, which must agree.
pub(crate) async fn both(server: SocketAddr, qname: &str, qtype: RecordType) -> Message {
    let over_udp = udp(server, &query(qname, qtype, true)).await;
    let over_tcp = tcp(server, &query(qname, qtype, true)).await;
    assert_eq!(
        over_udp.metadata.response_code,
        over_tcp.metadata.response_code
    );
    assert_eq!(
        over_udp.metadata.authoritative,
        over_tcp.metadata.authoritative
    );
    assert_eq!(over_udp.answers, over_tcp.answers, "{qname} {qtype}");
    assert_eq!(
        over_udp.authorities, over_tcp.authorities,
        "{qname} {qtype}"
    );
    assert_eq!(
        over_udp.additionals, over_tcp.additionals,
        "{qname} {qtype}"
    );
    over_tcp
}

/// The character-strings of every TXT record in the answer section.
pub(crate) fn txt_strings(message: &Message) -> Vec<Vec<Vec<u8>>> {
    message
        .answers
        .iter()
        .filter_map(|r| match &r.data {
            RData::TXT(txt) => Some(txt.txt_data.iter().map(|s| s.to_vec()).collect()),
            _ => None,
        })
        .collect()
}

/// The rdata (presentation form) of the answers of one type.
pub(crate) fn rdata_of(message: &Message, qtype: RecordType) -> Vec<String> {
    message
        .answers
        .iter()
        .filter(|r| r.record_type() == qtype)
        .map(|r| r.data.to_string())
        .collect()
}

/// The SOA serial in a section.
pub(crate) fn soa_serial(records: &[Record]) -> Option<u32> {
    records.iter().find_map(|r| match &r.data {
        RData::SOA(soa) => Some(soa.serial),
        _ => None,
    })
}

/// Asserts a negative answer: `code`, AA, no answers, exactly the zone's SOA in authority.
#[track_caller]
pub(crate) fn assert_negative(message: &Message, code: ResponseCode) {
    assert_eq!(message.metadata.response_code, code);
    assert!(message.metadata.authoritative, "AA on a negative answer");
    assert!(!message.metadata.recursion_available);
    assert!(message.answers.is_empty(), "{:?}", message.answers);
    assert_eq!(message.authorities.len(), 1, "{:?}", message.authorities);
    let soa = &message.authorities[0];
    assert_eq!(soa.record_type(), RecordType::SOA);
    assert_eq!(soa.name, name("hosted.test."));
    assert_eq!(soa.ttl, TTL);
}
