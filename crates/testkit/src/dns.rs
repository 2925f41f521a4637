//! An authoritative DNS server (hickory-server) on loopback with a mutable zone and faults.
//!
//! The server answers for *every* name from one in-memory [`Zone`]: NXDOMAIN for names that
//! do not exist (empty non-terminals exist), NODATA (NOERROR, no answer, an SOA in the
//! authority section) for names without records of the asked type. CNAMEs are answered with
//! the chain as far as it stays in the zone. Per-name [`Fault`]s make the server answer
//! SERVFAIL or REFUSED, or not at all. UDP answers that do not fit are truncated (TC set), so
//! resolvers retry over TCP, which the server also serves on the same port.
//!
//! Names at or under a suffix given to [`Zone::forward`] are answered by another server (the
//! service's own DNS authority in end-to-end tests): the test server asks it and appends its
//! answer to the CNAME chain, so resolvers that expect the whole chain in one answer (Go's,
//! in Pebble) see one.
//!
//! The server can also play a validating recursive resolver: answers about names marked with
//! [`Zone::set_secure`] carry the AD bit when the query asked for it (AD or EDNS DO set, as
//! real resolvers require, RFC 6840 §5.7). No signatures are served.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use hickory_proto::op::{
    Edns, Header, HeaderCounts, Message, MessageType, Metadata, Query, ResponseCode,
};
use hickory_proto::rr::rdata::tlsa::{CertUsage, Matching, Selector};
use hickory_proto::rr::rdata::{A, AAAA, CNAME, MX, SOA, TLSA, TXT};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use hickory_server::Server;
use hickory_server::net::runtime::Time;
use hickory_server::server::{Request, RequestHandler, ResponseHandler, ResponseInfo};
use hickory_server::zone_handler::MessageResponseBuilder;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// TTL of every record served.
pub const TTL: u32 = 60;

/// How long a CNAME chain the server follows inside the zone.
const MAX_CHAIN: usize = 8;

/// How long a forwarded query may take, TCP retry included, before the answer is SERVFAIL.
const FORWARD_TIMEOUT: Duration = Duration::from_secs(2);

/// The EDNS buffer size forwarded queries advertise, and the UDP receive buffer.
const FORWARD_UDP_BYTES: u16 = 4096;

/// A misbehaviour of the server for one name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Answer SERVFAIL.
    ServFail,
    /// Answer REFUSED.
    Refused,
    /// Never answer (the client times out).
    Drop,
}

#[derive(Default)]
struct ZoneData {
    /// Owner name (lowercase, no trailing dot) → records, in insertion order.
    records: HashMap<String, Vec<RData>>,
    /// Faults per (name, type); `None` as the type: every type.
    faults: HashMap<(String, Option<RecordType>), Fault>,
    /// A fault for every name.
    global_fault: Option<Fault>,
    /// Names (lowercase, no trailing dot) whose answers are "validated": AD set.
    secure: HashSet<String>,
    /// Every query seen, as (name, type).
    queries: Vec<(String, RecordType)>,
    /// Suffixes (lowercase, no trailing dot) answered by another server.
    forwards: Vec<(String, SocketAddr)>,
}

impl ZoneData {
    fn fault(&self, key: &str, qtype: RecordType) -> Option<Fault> {
        let k = key.to_string();
        self.faults
            .get(&(k.clone(), Some(qtype)))
            .or_else(|| self.faults.get(&(k, None)))
            .copied()
    }

    /// The server answering for `key`: the one forwarded the longest matching suffix.
    fn forward_for(&self, key: &str) -> Option<SocketAddr> {
        self.forwards
            .iter()
            .filter(|(suffix, _)| {
                key == suffix
                    || suffix.is_empty()
                    || key
                        .strip_suffix(suffix.as_str())
                        .is_some_and(|rest| rest.ends_with('.'))
            })
            .max_by_key(|(suffix, _)| suffix.len())
            .map(|(_, server)| *server)
    }
}

/// The in-memory zone the test DNS server answers from. Every method takes `&self` so tests
/// can change records and faults while the server runs. Names are absolute, case-insensitive,
/// with or without the trailing dot.
#[derive(Default)]
pub struct Zone {
    data: RwLock<ZoneData>,
}

/// The key under which a name is stored: lowercase, without the trailing dot.
fn key(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

/// A hickory name for a key; panics on names hickory cannot represent (a test bug).
fn to_name(key: &str) -> Name {
    if key.is_empty() {
        return Name::root();
    }
    Name::from_ascii(format!("{key}.")).unwrap_or_else(|e| panic!("bad test DNS name {key:?}: {e}"))
}

impl Zone {
    /// An empty zone.
    pub fn new() -> Self {
        Self::default()
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, ZoneData> {
        self.data.write().unwrap_or_else(|p| p.into_inner())
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, ZoneData> {
        self.data.read().unwrap_or_else(|p| p.into_inner())
    }

    fn add(&self, name: &str, rdata: RData) {
        self.write()
            .records
            .entry(key(name))
            .or_default()
            .push(rdata);
    }

    /// Adds one TXT RR made of these character-strings (each at most 255 bytes).
    pub fn add_txt(&self, name: &str, strings: &[&str]) {
        let bytes: Vec<&[u8]> = strings.iter().map(|s| s.as_bytes()).collect();
        self.add_txt_bytes(name, &bytes);
    }

    /// Adds one TXT RR made of these raw character-strings (each at most 255 bytes; any bytes).
    pub fn add_txt_bytes(&self, name: &str, strings: &[&[u8]]) {
        for s in strings {
            assert!(
                s.len() <= 255,
                "a TXT character-string holds at most 255 bytes"
            );
        }
        self.add(name, RData::TXT(TXT::from_bytes(strings.to_vec())));
    }

    /// Adds a TXT RR holding `text`, split into 255-byte character-strings as needed.
    pub fn add_txt_long(&self, name: &str, text: &str) {
        let chunks: Vec<&[u8]> = text.as_bytes().chunks(255).collect();
        self.add_txt_bytes(name, &chunks);
    }

    /// Adds an MX record. An `exchange` of `""` or `"."` makes a null MX (RFC 7505).
    pub fn add_mx(&self, name: &str, preference: u16, exchange: &str) {
        self.add(
            name,
            RData::MX(MX::new(preference, to_name(&key(exchange)))),
        );
    }

    /// Adds a null MX (`0 .`, RFC 7505).
    pub fn add_null_mx(&self, name: &str) {
        self.add_mx(name, 0, ".");
    }

    /// Adds an A record.
    pub fn add_a(&self, name: &str, ip: Ipv4Addr) {
        self.add(name, RData::A(A(ip)));
    }

    /// Adds an AAAA record.
    pub fn add_aaaa(&self, name: &str, ip: Ipv6Addr) {
        self.add(name, RData::AAAA(AAAA(ip)));
    }

    /// Adds an A or AAAA record.
    pub fn add_ip(&self, name: &str, ip: IpAddr) {
        match ip {
            IpAddr::V4(v4) => self.add_a(name, v4),
            IpAddr::V6(v6) => self.add_aaaa(name, v6),
        }
    }

    /// Adds a CNAME from `name` to `target`.
    pub fn add_cname(&self, name: &str, target: &str) {
        self.add(name, RData::CNAME(CNAME(to_name(&key(target)))));
    }

    /// Adds a TLSA record.
    pub fn add_tlsa(&self, name: &str, usage: u8, selector: u8, matching: u8, data: &[u8]) {
        let tlsa = TLSA::new(
            CertUsage::from(usage),
            Selector::from(selector),
            Matching::from(matching),
            data.to_vec(),
        );
        self.add(name, RData::TLSA(tlsa));
    }

    /// Removes every record at `name` (the fault, if any, stays).
    pub fn remove(&self, name: &str) {
        self.write().records.remove(&key(name));
    }

    /// Removes the records of one type at `name`.
    pub fn remove_type(&self, name: &str, record_type: RecordType) {
        let mut data = self.write();
        let k = key(name);
        if let Some(list) = data.records.get_mut(&k) {
            list.retain(|r| r.record_type() != record_type);
            if list.is_empty() {
                data.records.remove(&k);
            }
        }
    }

    /// Makes the server misbehave for queries of `name` (any type).
    pub fn set_fault(&self, name: &str, fault: Fault) {
        self.write().faults.insert((key(name), None), fault);
    }

    /// Makes the server misbehave for queries of `name` with this type only (e.g. AAAA
    /// queries time out while A queries are answered).
    pub fn set_type_fault(&self, name: &str, record_type: RecordType, fault: Fault) {
        self.write()
            .faults
            .insert((key(name), Some(record_type)), fault);
    }

    /// Lets the server answer `name` normally again (all its faults are removed).
    pub fn clear_fault(&self, name: &str) {
        let k = key(name);
        self.write().faults.retain(|(n, _), _| *n != k);
    }

    /// Makes the server misbehave for every name (`None`: answer normally).
    pub fn set_global_fault(&self, fault: Option<Fault>) {
        self.write().global_fault = fault;
    }

    /// Marks `name` as DNSSEC-validated (`true`) or not (`false`, the default): answers about
    /// it then carry AD=1 when the query set AD or EDNS DO, else AD=0. An answer through a
    /// CNAME chain is authenticated only when every name in the chain is secure. Faults
    /// (SERVFAIL, REFUSED) never carry AD.
    pub fn set_secure(&self, name: &str, secure: bool) {
        let mut data = self.write();
        if secure {
            data.secure.insert(key(name));
        } else {
            data.secure.remove(&key(name));
        }
    }

    /// Lets `server` answer every name at or under `suffix` (UDP, TCP when the answer is
    /// truncated): a direct query, or a CNAME chain that reaches such a name, is sent there
    /// as (that name, the query's type), and the server's answer records, response code and
    /// negative-answer SOA complete the answer. No answer within two seconds: SERVFAIL.
    /// Faults set here still apply first. Calling it again for the same suffix replaces the
    /// server; the longest matching suffix wins.
    pub fn forward(&self, suffix: &str, server: SocketAddr) {
        let suffix = key(suffix);
        let mut data = self.write();
        data.forwards.retain(|(s, _)| *s != suffix);
        data.forwards.push((suffix, server));
    }

    /// Every query received so far, as (lowercase name without the dot, type).
    pub fn queries(&self) -> Vec<(String, RecordType)> {
        self.read().queries.clone()
    }

    /// Whether `key` owns records or is an empty non-terminal above a name that does.
    fn exists(data: &ZoneData, key: &str) -> bool {
        let suffix = format!(".{key}");
        data.records.contains_key(key) || data.records.keys().any(|k| k.ends_with(&suffix))
    }

    /// Computes the answer to one query, asking the forwarding target when the chain leads
    /// there (without holding the lock meanwhile).
    async fn resolve(&self, qname: &Name, qtype: RecordType) -> Answer {
        let (server, name, mut answers, secure) = match self.resolve_local(qname, qtype) {
            Local::Done(answer) => return answer,
            Local::Forward {
                server,
                name,
                answers,
                secure,
            } => (server, name, answers, secure),
        };
        match tokio::time::timeout(FORWARD_TIMEOUT, forward_query(server, &name, qtype)).await {
            Ok(Ok(response)) => {
                let soa = response
                    .authorities
                    .iter()
                    .find(|r| r.record_type() == RecordType::SOA)
                    .cloned()
                    .map(Box::new);
                answers.extend(response.answers);
                Answer::Records {
                    code: response.metadata.response_code,
                    answers,
                    soa,
                    secure,
                }
            }
            Ok(Err(e)) => {
                tracing::debug!(%server, %name, error = %e, "forwarded DNS query failed");
                Answer::Fault(Fault::ServFail)
            }
            Err(_) => {
                tracing::debug!(%server, %name, "forwarded DNS query timed out");
                Answer::Fault(Fault::ServFail)
            }
        }
    }

    /// The part of [`Zone::resolve`] the zone answers itself, under the lock.
    fn resolve_local(&self, qname: &Name, qtype: RecordType) -> Local {
        let mut data = self.write();
        let first = key(&qname.to_ascii());
        data.queries.push((first.clone(), qtype));
        if let Some(fault) = data.global_fault.or_else(|| data.fault(&first, qtype)) {
            return Local::Done(Answer::Fault(fault));
        }
        let mut answers = Vec::new();
        let mut owner = qname.clone();
        let mut current = first;
        let mut secure = true;
        for _ in 0..MAX_CHAIN {
            secure &= data.secure.contains(&current);
            if let Some(server) = data.forward_for(&current) {
                return Local::Forward {
                    server,
                    name: owner,
                    answers,
                    secure,
                };
            }
            let records = data.records.get(&current).map(Vec::as_slice).unwrap_or(&[]);
            let cname = records.iter().find_map(|r| match r {
                RData::CNAME(c) => Some(c.0.clone()),
                _ => None,
            });
            if let (Some(target), false) = (cname, qtype == RecordType::CNAME) {
                answers.push(Record::from_rdata(
                    owner.clone(),
                    TTL,
                    RData::CNAME(CNAME(target.clone())),
                ));
                let next = key(&target.to_ascii());
                if data.fault(&next, qtype).is_some() {
                    // The resolver asks for the target itself and meets the fault then.
                    return Local::Done(Answer::Records {
                        code: ResponseCode::NoError,
                        answers,
                        soa: None,
                        secure,
                    });
                }
                owner = target;
                current = next;
                continue;
            }
            let matching: Vec<Record> = records
                .iter()
                .filter(|r| qtype == RecordType::ANY || r.record_type() == qtype)
                .map(|r| Record::from_rdata(owner.clone(), TTL, r.clone()))
                .collect();
            if !matching.is_empty() {
                answers.extend(matching);
                return Local::Done(Answer::Records {
                    code: ResponseCode::NoError,
                    answers,
                    soa: None,
                    secure,
                });
            }
            let code = if Self::exists(&data, &current) {
                ResponseCode::NoError
            } else {
                ResponseCode::NXDomain
            };
            return Local::Done(Answer::Records {
                code,
                answers,
                soa: Some(Box::new(soa_for(&current))),
                secure,
            });
        }
        // A CNAME loop or an over-long chain.
        Local::Done(Answer::Fault(Fault::ServFail))
    }
}

/// A synthetic SOA for negative answers, owned by the last two labels of the name.
fn soa_for(key: &str) -> Record {
    let labels: Vec<&str> = key.split('.').filter(|l| !l.is_empty()).collect();
    let apex = labels[labels.len().saturating_sub(2)..].join(".");
    let apex_name = to_name(&apex);
    let mname = if apex.is_empty() {
        "ns.invalid".to_string()
    } else {
        format!("ns.{apex}")
    };
    let soa = SOA::new(
        to_name(&mname),
        to_name("hostmaster.invalid"),
        1,
        3600,
        600,
        86400,
        TTL,
    );
    Record::from_rdata(apex_name, TTL, RData::SOA(soa))
}

/// How far the zone itself got with a query.
enum Local {
    Done(Answer),
    /// The chain (`answers` so far) reached `name`, which `server` answers.
    Forward {
        server: SocketAddr,
        name: Name,
        answers: Vec<Record>,
        secure: bool,
    },
}

enum Answer {
    Fault(Fault),
    Records {
        code: ResponseCode,
        answers: Vec<Record>,
        soa: Option<Box<Record>>,
        /// Every name involved is marked secure.
        secure: bool,
    },
}

/// The request handler serving a [`Zone`].
struct ZoneHandler {
    zone: Arc<Zone>,
}

impl ZoneHandler {
    async fn answer<R: ResponseHandler>(&self, request: &Request, mut handle: R) -> ResponseInfo {
        let mut metadata = Metadata::response_from_request(&request.metadata);
        metadata.authoritative = true;
        let Some(query) = request.queries.queries().first() else {
            metadata.response_code = ResponseCode::FormErr;
            return send(&mut handle, request, metadata, &[], None).await;
        };
        let qname: Name = query.name().clone().into();
        match self.zone.resolve(&qname, query.query_type()).await {
            Answer::Fault(Fault::Drop) => ResponseInfo::from(Header {
                metadata,
                counts: HeaderCounts::default(),
            }),
            Answer::Fault(Fault::ServFail) => {
                metadata.response_code = ResponseCode::ServFail;
                metadata.authoritative = false;
                send(&mut handle, request, metadata, &[], None).await
            }
            Answer::Fault(Fault::Refused) => {
                metadata.response_code = ResponseCode::Refused;
                metadata.authoritative = false;
                send(&mut handle, request, metadata, &[], None).await
            }
            Answer::Records {
                code,
                answers,
                soa,
                secure,
            } => {
                metadata.response_code = code;
                // Only a forwarding target's failure gets here with another code.
                metadata.authoritative =
                    matches!(code, ResponseCode::NoError | ResponseCode::NXDomain);
                // RFC 6840 §5.7: AD only for a query that signalled it understands it.
                let asked = request.metadata.authentic_data
                    || request
                        .edns
                        .as_ref()
                        .is_some_and(|edns| edns.flags().dnssec_ok);
                metadata.authentic_data = secure && asked;
                send(&mut handle, request, metadata, &answers, soa.as_deref()).await
            }
        }
    }
}

/// One query to the forwarding target: UDP from a fresh socket connected to it, TCP when the
/// answer is truncated. The caller bounds the time.
async fn forward_query(server: SocketAddr, name: &Name, qtype: RecordType) -> io::Result<Message> {
    let mut request = Message::query();
    request.metadata.id = query_id();
    request.add_query(Query::query(name.clone(), qtype));
    let mut edns = Edns::new();
    edns.set_max_payload(FORWARD_UDP_BYTES);
    request.set_edns(edns);
    let bytes = request.to_vec().map_err(io::Error::other)?;

    let local: SocketAddr = match server {
        SocketAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
        SocketAddr::V6(_) => (Ipv6Addr::UNSPECIFIED, 0).into(),
    };
    let socket = tokio::net::UdpSocket::bind(local).await?;
    socket.connect(server).await?;
    socket.send(&bytes).await?;
    let mut buf = vec![0u8; usize::from(FORWARD_UDP_BYTES)];
    let response = loop {
        let n = socket.recv(&mut buf).await?;
        if let Ok(response) = Message::from_vec(&buf[..n])
            && answers_query(&request, &response)
        {
            break response;
        }
    };
    if !response.metadata.truncation {
        return Ok(response);
    }

    let mut stream = tokio::net::TcpStream::connect(server).await?;
    let len = u16::try_from(bytes.len()).map_err(io::Error::other)?;
    let mut framed = len.to_be_bytes().to_vec();
    framed.extend_from_slice(&bytes);
    stream.write_all(&framed).await?;
    let mut prefix = [0u8; 2];
    stream.read_exact(&mut prefix).await?;
    let mut buf = vec![0u8; usize::from(u16::from_be_bytes(prefix))];
    stream.read_exact(&mut buf).await?;
    let response = Message::from_vec(&buf).map_err(io::Error::other)?;
    if !answers_query(&request, &response) {
        return Err(io::Error::other("the TCP answer does not match the query"));
    }
    Ok(response)
}

/// A query id that differs between queries (not secret: the socket is connected).
fn query_id() -> u16 {
    static NEXT: std::sync::atomic::AtomicU16 = std::sync::atomic::AtomicU16::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed) ^ (nanos as u16)
}

/// Whether `response` answers `request`: same id, a response, the same question.
fn answers_query(request: &Message, response: &Message) -> bool {
    response.metadata.id == request.metadata.id
        && response.metadata.message_type == MessageType::Response
        && response.queries.len() == 1
        && request.queries.first().is_some_and(|q| {
            let r = &response.queries[0];
            r.name() == q.name() && r.query_type() == q.query_type()
        })
}

async fn send<R: ResponseHandler>(
    handle: &mut R,
    request: &Request,
    metadata: Metadata,
    answers: &[Record],
    soa: Option<&Record>,
) -> ResponseInfo {
    let builder = MessageResponseBuilder::new(&request.queries, request.edns.as_ref());
    let response = builder.build(
        metadata,
        answers.iter(),
        std::iter::empty(),
        soa,
        std::iter::empty(),
    );
    match handle.send_response(response).await {
        Ok(info) => info,
        Err(e) => {
            tracing::debug!(error = %e, "test DNS server could not send a response");
            let mut failed = metadata;
            failed.response_code = ResponseCode::ServFail;
            ResponseInfo::from(Header {
                metadata: failed,
                counts: HeaderCounts::default(),
            })
        }
    }
}

// `RequestHandler` is declared with `#[async_trait]`; this is its expansion written out, so the
// testkit does not need the macro crate.
impl RequestHandler for ZoneHandler {
    fn handle_request<'life0, 'life1, 'async_trait, R, T>(
        &'life0 self,
        request: &'life1 Request,
        response_handle: R,
    ) -> Pin<Box<dyn Future<Output = ResponseInfo> + Send + 'async_trait>>
    where
        R: 'async_trait + ResponseHandler,
        T: 'async_trait + Time,
        'life0: 'async_trait,
        'life1: 'async_trait,
        Self: 'async_trait,
    {
        Box::pin(self.answer(request, response_handle))
    }
}

/// A running DNS server (UDP and TCP on one address and port). Stops when dropped.
pub struct DnsServer {
    addr: SocketAddr,
    zone: Arc<Zone>,
    _server: Server<ZoneHandler>,
}

impl DnsServer {
    /// Starts a server on `ip` (a free port chosen by the system, the same for UDP and TCP),
    /// answering from `zone`.
    pub async fn start(ip: IpAddr, zone: Arc<Zone>) -> io::Result<DnsServer> {
        let mut last_err = None;
        for _ in 0..20 {
            let udp = tokio::net::UdpSocket::bind(SocketAddr::new(ip, 0)).await?;
            let addr = udp.local_addr()?;
            match tokio::net::TcpListener::bind(addr).await {
                Ok(tcp) => return Ok(Self::serve(addr, zone, udp, tcp)),
                Err(e) => last_err = Some(e),
            }
        }
        Err(last_err.unwrap_or_else(|| io::Error::other("no free port")))
    }

    /// Starts a server on exactly `addr`.
    pub async fn start_at(addr: SocketAddr, zone: Arc<Zone>) -> io::Result<DnsServer> {
        let udp = tokio::net::UdpSocket::bind(addr).await?;
        let addr = udp.local_addr()?;
        let tcp = tokio::net::TcpListener::bind(addr).await?;
        Ok(Self::serve(addr, zone, udp, tcp))
    }

    fn serve(
        addr: SocketAddr,
        zone: Arc<Zone>,
        udp: tokio::net::UdpSocket,
        tcp: tokio::net::TcpListener,
    ) -> DnsServer {
        let mut server = Server::new(ZoneHandler { zone: zone.clone() });
        server.register_socket(udp);
        server.register_listener(tcp, Duration::from_secs(10), 64 * 1024);
        DnsServer {
            addr,
            zone,
            _server: server,
        }
    }

    /// The address (UDP and TCP).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The zone served.
    pub fn zone(&self) -> &Arc<Zone> {
        &self.zone
    }
}
