//! An authoritative DNS server (hickory-server) on loopback with a mutable zone and faults.
//!
//! The server answers for *every* name from one in-memory [`Zone`]: NXDOMAIN for names that
//! do not exist (empty non-terminals exist), NODATA (NOERROR, no answer, an SOA in the
//! authority section) for names without records of the asked type. CNAMEs are answered with
//! the chain as far as it stays in the zone. Per-name [`Fault`]s make the server answer
//! SERVFAIL or REFUSED, or not at all. UDP answers that do not fit are truncated (TC set), so
//! resolvers retry over TCP, which the server also serves on the same port.
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

use hickory_proto::op::{Header, HeaderCounts, Metadata, ResponseCode};
use hickory_proto::rr::rdata::tlsa::{CertUsage, Matching, Selector};
use hickory_proto::rr::rdata::{A, AAAA, CNAME, MX, SOA, TLSA, TXT};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use hickory_server::Server;
use hickory_server::net::runtime::Time;
use hickory_server::server::{Request, RequestHandler, ResponseHandler, ResponseInfo};
use hickory_server::zone_handler::MessageResponseBuilder;

/// TTL of every record served.
pub const TTL: u32 = 60;

/// How long a CNAME chain the server follows inside the zone.
const MAX_CHAIN: usize = 8;

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
}

impl ZoneData {
    fn fault(&self, key: &str, qtype: RecordType) -> Option<Fault> {
        let k = key.to_string();
        self.faults
            .get(&(k.clone(), Some(qtype)))
            .or_else(|| self.faults.get(&(k, None)))
            .copied()
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

    /// Every query received so far, as (lowercase name without the dot, type).
    pub fn queries(&self) -> Vec<(String, RecordType)> {
        self.read().queries.clone()
    }

    /// Whether `key` owns records or is an empty non-terminal above a name that does.
    fn exists(data: &ZoneData, key: &str) -> bool {
        let suffix = format!(".{key}");
        data.records.contains_key(key) || data.records.keys().any(|k| k.ends_with(&suffix))
    }

    /// Computes the answer to one query.
    fn resolve(&self, qname: &Name, qtype: RecordType) -> Answer {
        let mut data = self.write();
        let first = key(&qname.to_ascii());
        data.queries.push((first.clone(), qtype));
        if let Some(fault) = data.global_fault.or_else(|| data.fault(&first, qtype)) {
            return Answer::Fault(fault);
        }
        let mut answers = Vec::new();
        let mut owner = qname.clone();
        let mut current = first;
        let mut secure = true;
        for _ in 0..MAX_CHAIN {
            secure &= data.secure.contains(&current);
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
                    return Answer::Records {
                        code: ResponseCode::NoError,
                        answers,
                        soa: None,
                        secure,
                    };
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
                return Answer::Records {
                    code: ResponseCode::NoError,
                    answers,
                    soa: None,
                    secure,
                };
            }
            let code = if Self::exists(&data, &current) {
                ResponseCode::NoError
            } else {
                ResponseCode::NXDomain
            };
            return Answer::Records {
                code,
                answers,
                soa: Some(Box::new(soa_for(&current))),
                secure,
            };
        }
        // A CNAME loop or an over-long chain.
        Answer::Fault(Fault::ServFail)
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
        match self.zone.resolve(&qname, query.query_type()) {
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
