//! DNS lookups through hickory-resolver.
//!
//! NXDOMAIN and NODATA ("no such record") are kept apart from SERVFAIL, REFUSED and timeouts
//! ("could not find out"): the latter are temporary and never mean "no policy" (RFC 8461 C27).
//! CNAME chains are followed by the resolver.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use futures::future::BoxFuture;
use hickory_resolver::TokioResolver;
use hickory_resolver::config::{ConnectionConfig, NameServerConfig, ResolveHosts, ResolverConfig};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::net::{DnsError as HickoryDnsError, NetError};
use hickory_resolver::proto::op::{Edns, Message, MessageType, Query, ResponseCode};
use hickory_resolver::proto::rr::rdata::TLSA;
use hickory_resolver::proto::rr::{Name, RData, RecordType};
use mtasts_proto::txt::TxtRr;
use thiserror::Error;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::Instant;

/// Why a lookup gave no records.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum DnsError {
    /// The name does not exist (NXDOMAIN), possibly at the end of a CNAME chain.
    #[error("NXDOMAIN: the name does not exist")]
    NxDomain,
    /// The name exists but has no record of this type (NODATA).
    #[error("NODATA: no record of this type")]
    NoData,
    /// The server answered SERVFAIL, REFUSED or another error code: a temporary failure.
    #[error("DNS server failure ({0})")]
    ServerFailure(String),
    /// No answer within the time limit: a temporary failure.
    #[error("DNS lookup timed out")]
    Timeout,
    /// Anything else (network unreachable, malformed answer): treated as temporary.
    #[error("DNS error: {0}")]
    Other(String),
}

impl DnsError {
    /// NXDOMAIN or NODATA: the record does not exist.
    pub fn is_not_found(&self) -> bool {
        matches!(self, DnsError::NxDomain | DnsError::NoData)
    }

    /// Anything but NXDOMAIN/NODATA: we could not find out, try again later.
    pub fn is_temporary(&self) -> bool {
        !self.is_not_found()
    }
}

/// One MX record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MxRecord {
    /// The preference value (lower is preferred).
    pub preference: u16,
    /// The exchange host name as published, lowercased, without the trailing dot. `""` (from
    /// `.`) for a null MX (RFC 7505).
    pub exchange: String,
}

/// One TLSA record (RFC 6698), for DANE presence checks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsaRecord {
    /// Certificate usage (0–3).
    pub usage: u8,
    /// Selector (0–1).
    pub selector: u8,
    /// Matching type (0–2).
    pub matching: u8,
    /// Association data, hex.
    pub data_hex: String,
}

/// A DNS answer together with whether the resolver vouched for it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Secured<T> {
    /// The answer.
    pub value: T,
    /// The AD (authentic data) bit of the answer from the configured recursive resolver: it
    /// validated the answer with DNSSEC (RFC 4035 §3.2.3, RFC 6840 §5.7). Meaningful only when
    /// that resolver is trusted and the path to it is (a local validating resolver, as Postfix
    /// assumes with `smtp_dns_support_level = dnssec`).
    pub authenticated: bool,
}

/// The DNS edge. Names are absolute, without the trailing dot.
pub trait DnsLookup: Send + Sync {
    /// TXT records at `name`, each as its character-strings.
    fn txt<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<Vec<TxtRr>, DnsError>>;
    /// MX records of `domain`, sorted by preference.
    fn mx<'a>(&'a self, domain: &'a str) -> BoxFuture<'a, Result<Vec<MxRecord>, DnsError>>;
    /// A and AAAA addresses of `host` (looked up concurrently). `NoData` only when both are
    /// empty; a temporary error on one family with addresses on the other returns those addresses.
    fn ip<'a>(&'a self, host: &'a str) -> BoxFuture<'a, Result<Vec<IpAddr>, DnsError>>;
    /// TLSA records at `name` (e.g. `_25._tcp.mx.example.com`).
    fn tlsa<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<Vec<TlsaRecord>, DnsError>>;

    /// TLSA records at `name` and whether the resolver authenticated them (its AD bit), for
    /// DANE (RFC 7672 §2.2: only DNSSEC-validated TLSA records count). Errors are classified
    /// as for [`DnsLookup::tlsa`].
    ///
    /// The default implementation calls [`DnsLookup::tlsa`] and reports
    /// `authenticated: false` (never usable for DANE), so fakes need not implement it.
    fn tlsa_secure<'a>(
        &'a self,
        name: &'a str,
    ) -> BoxFuture<'a, Result<Secured<Vec<TlsaRecord>>, DnsError>> {
        Box::pin(async move {
            Ok(Secured {
                value: self.tlsa(name).await?,
                authenticated: false,
            })
        })
    }

    /// MX records of `domain` (sorted as by [`DnsLookup::mx`]) and whether the resolver
    /// authenticated the MX RRset (its AD bit), for DANE: TLSA records of the MX hosts count
    /// only when the MX lookup itself was DNSSEC-validated (RFC 7672 §2.2.1; Postfix's
    /// `smtp_dns_support_level = dnssec` model). Errors are classified as for
    /// [`DnsLookup::mx`].
    ///
    /// The default implementation calls [`DnsLookup::mx`] and reports
    /// `authenticated: false`, as [`DnsLookup::tlsa_secure`] does.
    fn mx_secure<'a>(
        &'a self,
        domain: &'a str,
    ) -> BoxFuture<'a, Result<Secured<Vec<MxRecord>>, DnsError>> {
        Box::pin(async move {
            Ok(Secured {
                value: self.mx(domain).await?,
                authenticated: false,
            })
        })
    }

    /// A and AAAA addresses of `host` (as by [`DnsLookup::ip`]) and whether the resolver
    /// authenticated them: true when every address family that returned records had the
    /// AD bit set (a family without records does not count). For DANE with an implicit MX
    /// (a domain without MX records is its own MX host, RFC 5321 §5.1), whose address
    /// records take the place of the MX RRset (RFC 7672 §2.2.1).
    ///
    /// The default implementation calls [`DnsLookup::ip`] and reports
    /// `authenticated: false`, as [`DnsLookup::tlsa_secure`] does.
    fn ip_secure<'a>(
        &'a self,
        host: &'a str,
    ) -> BoxFuture<'a, Result<Secured<Vec<IpAddr>>, DnsError>> {
        Box::pin(async move {
            Ok(Secured {
                value: self.ip(host).await?,
                authenticated: false,
            })
        })
    }
}

/// How to build a [`Resolver`].
#[derive(Clone, Debug)]
pub struct DnsConfig {
    /// Name servers to ask (UDP, falling back to TCP for truncated answers). `None`: the system
    /// configuration (`/etc/resolv.conf`).
    pub servers: Option<Vec<SocketAddr>>,
    /// Time limit for one lookup, all retries included.
    pub timeout: Duration,
}

impl Default for DnsConfig {
    fn default() -> Self {
        DnsConfig {
            servers: None,
            timeout: Duration::from_secs(5),
        }
    }
}

/// Parses `--dns IP[:PORT]` (IPv6 with a port as `[::1]:5353`); the port defaults to 53.
pub fn parse_server(s: &str) -> Result<SocketAddr, String> {
    let s = s.trim();
    if let Ok(addr) = s.parse::<SocketAddr>() {
        return Ok(addr);
    }
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Ok(SocketAddr::new(ip, 53));
    }
    if let Some(inner) = s.strip_prefix('[').and_then(|rest| rest.strip_suffix(']'))
        && let Ok(ip) = inner.parse::<std::net::Ipv6Addr>()
    {
        return Ok(SocketAddr::new(IpAddr::V6(ip), 53));
    }
    Err(format!(
        "invalid DNS server {s:?}: expected IP, IP:PORT or [IPv6]:PORT"
    ))
}

/// A hickory-backed [`DnsLookup`] without a cache (every call asks the server).
pub struct Resolver {
    inner: TokioResolver,
    timeout: Duration,
    /// The servers asked directly by the authenticated lookups ([`DnsLookup::tlsa_secure`],
    /// [`DnsLookup::mx_secure`], [`DnsLookup::ip_secure`]), in order.
    servers: Vec<SocketAddr>,
}

/// Why a resolver could not be set up (unreadable system configuration).
#[derive(Debug, Error)]
#[error("cannot set up the DNS resolver: {0}")]
pub struct DnsSetupError(pub String);

impl Resolver {
    /// Builds a resolver from the configuration.
    ///
    /// Custom servers are asked over UDP, with TCP for truncated answers, on their given
    /// ports. The hosts file is never used and nothing is cached. Each lookup (A and AAAA
    /// together for [`DnsLookup::ip`]) is bounded by `config.timeout`.
    ///
    /// The authenticated lookups ([`DnsLookup::tlsa_secure`], [`DnsLookup::mx_secure`],
    /// [`DnsLookup::ip_secure`]) send their queries themselves, to the same servers (with the
    /// system configuration: the name servers of `/etc/resolv.conf`, in order).
    pub fn new(config: &DnsConfig) -> Result<Self, DnsSetupError> {
        let servers = match &config.servers {
            Some(servers) => servers.clone(),
            None => system_servers()?,
        };
        let mut builder = match &config.servers {
            Some(servers) => {
                if servers.is_empty() {
                    return Err(DnsSetupError("no DNS server given".to_string()));
                }
                let name_servers = servers
                    .iter()
                    .map(|addr| {
                        let mut udp = ConnectionConfig::udp();
                        udp.port = addr.port();
                        let mut tcp = ConnectionConfig::tcp();
                        tcp.port = addr.port();
                        let mut ns = NameServerConfig::udp_and_tcp(addr.ip());
                        ns.connections = vec![udp, tcp];
                        ns
                    })
                    .collect();
                TokioResolver::builder_with_config(
                    ResolverConfig::from_name_servers(name_servers),
                    TokioRuntimeProvider::default(),
                )
            }
            None => TokioResolver::builder_tokio().map_err(|e| DnsSetupError(e.to_string()))?,
        };
        let opts = builder.options_mut();
        opts.cache_size = 0;
        opts.use_hosts_file = ResolveHosts::Never;
        opts.preserve_intermediates = true;
        // One attempt per server with most of the budget; the outer limit covers the rest.
        opts.timeout = config.timeout.mul_f32(0.9).max(Duration::from_millis(10));
        opts.attempts = 1;
        opts.ndots = 0;
        let inner = builder.build().map_err(|e| DnsSetupError(e.to_string()))?;
        Ok(Resolver {
            inner,
            timeout: config.timeout,
            servers,
        })
    }

    /// One lookup of `record_type` at `name`, bounded in time, mapped to [`DnsError`].
    async fn records(&self, name: &str, record_type: RecordType) -> Result<Vec<RData>, DnsError> {
        let fqdn = absolute(name)?;
        let lookup = tokio::time::timeout(self.timeout, self.inner.lookup(fqdn, record_type))
            .await
            .map_err(|_| DnsError::Timeout)?
            .map_err(map_error)?;
        let records: Vec<RData> = lookup
            .answers()
            .iter()
            .filter(|r| r.record_type() == record_type)
            .map(|r| r.data.clone())
            .collect();
        if records.is_empty() {
            // Only CNAMEs (the resolver normally reports this as NODATA itself).
            return Err(DnsError::NoData);
        }
        Ok(records)
    }
}

/// `name` as an absolute hickory name (a trailing dot added, so no search domain applies).
fn absolute(name: &str) -> Result<Name, DnsError> {
    let trimmed = name.trim_end_matches('.');
    if trimmed.is_empty() {
        return Err(DnsError::Other(format!("invalid DNS name {name:?}")));
    }
    Name::from_ascii(format!("{trimmed}."))
        .map_err(|e| DnsError::Other(format!("invalid DNS name {name:?}: {e}")))
}

fn map_error(err: NetError) -> DnsError {
    match err {
        NetError::Dns(HickoryDnsError::NoRecordsFound(no_records)) => {
            match no_records.response_code {
                ResponseCode::NXDomain => DnsError::NxDomain,
                ResponseCode::NoError => DnsError::NoData,
                code => DnsError::ServerFailure(code_name(code)),
            }
        }
        NetError::Dns(HickoryDnsError::ResponseCode(code)) => {
            DnsError::ServerFailure(code_name(code))
        }
        NetError::Timeout => DnsError::Timeout,
        NetError::Io(e) if e.kind() == std::io::ErrorKind::TimedOut => DnsError::Timeout,
        other => DnsError::Other(other.to_string()),
    }
}

/// The conventional upper-case name of a response code (`SERVFAIL`, `REFUSED`, …).
fn code_name(code: ResponseCode) -> String {
    match code {
        ResponseCode::ServFail => "SERVFAIL".to_string(),
        ResponseCode::Refused => "REFUSED".to_string(),
        ResponseCode::FormErr => "FORMERR".to_string(),
        ResponseCode::NotImp => "NOTIMP".to_string(),
        ResponseCode::NXDomain => "NXDOMAIN".to_string(),
        ResponseCode::NotAuth => "NOTAUTH".to_string(),
        other => format!("rcode {}", u16::from(other)),
    }
}

/// The exchange of an MX record as [`MxRecord::exchange`] wants it.
fn exchange_name(name: &Name) -> String {
    name.to_ascii().trim_end_matches('.').to_ascii_lowercase()
}

impl DnsLookup for Resolver {
    fn txt<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<Vec<TxtRr>, DnsError>> {
        Box::pin(async move {
            let records = self.records(name, RecordType::TXT).await?;
            Ok(records
                .into_iter()
                .filter_map(|r| match r {
                    RData::TXT(txt) => {
                        Some(TxtRr(txt.txt_data.iter().map(|s| s.to_vec()).collect()))
                    }
                    _ => None,
                })
                .collect())
        })
    }

    fn mx<'a>(&'a self, domain: &'a str) -> BoxFuture<'a, Result<Vec<MxRecord>, DnsError>> {
        Box::pin(async move {
            let records = self.records(domain, RecordType::MX).await?;
            let mut mx: Vec<MxRecord> = records.iter().filter_map(mx_record).collect();
            sort_mx(&mut mx);
            Ok(mx)
        })
    }

    fn ip<'a>(&'a self, host: &'a str) -> BoxFuture<'a, Result<Vec<IpAddr>, DnsError>> {
        Box::pin(async move {
            let (v4, v6) = futures::join!(
                self.records(host, RecordType::A),
                self.records(host, RecordType::AAAA)
            );
            combine_families(v4, v6)
        })
    }

    fn tlsa<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<Vec<TlsaRecord>, DnsError>> {
        Box::pin(async move {
            let records = self.records(name, RecordType::TLSA).await?;
            Ok(records
                .iter()
                .filter_map(|r| match r {
                    RData::TLSA(tlsa) => Some(tlsa_record(tlsa)),
                    _ => None,
                })
                .collect())
        })
    }

    /// Asks the configured servers directly (hickory's lookup API does not expose the
    /// response header); see `Resolver::secure_records`.
    fn tlsa_secure<'a>(
        &'a self,
        name: &'a str,
    ) -> BoxFuture<'a, Result<Secured<Vec<TlsaRecord>>, DnsError>> {
        Box::pin(
            self.secure_records(name, RecordType::TLSA, |data| match data {
                RData::TLSA(tlsa) => Some(tlsa_record(tlsa)),
                _ => None,
            }),
        )
    }

    /// Asks the configured servers directly, as [`DnsLookup::tlsa_secure`] does.
    fn mx_secure<'a>(
        &'a self,
        domain: &'a str,
    ) -> BoxFuture<'a, Result<Secured<Vec<MxRecord>>, DnsError>> {
        Box::pin(async move {
            let mut secured = self
                .secure_records(domain, RecordType::MX, mx_record)
                .await?;
            sort_mx(&mut secured.value);
            Ok(secured)
        })
    }

    /// Asks the configured servers directly for A and AAAA (concurrently), as
    /// [`DnsLookup::tlsa_secure`] does; the families combine as in [`DnsLookup::ip`].
    fn ip_secure<'a>(
        &'a self,
        host: &'a str,
    ) -> BoxFuture<'a, Result<Secured<Vec<IpAddr>>, DnsError>> {
        Box::pin(async move {
            let address = |data: &RData| match data {
                RData::A(a) => Some(IpAddr::V4(a.0)),
                RData::AAAA(aaaa) => Some(IpAddr::V6(aaaa.0)),
                _ => None,
            };
            let (v4, v6) = futures::join!(
                self.secure_records(host, RecordType::A, address),
                self.secure_records(host, RecordType::AAAA, address)
            );
            combine_secure_families(v4, v6)
        })
    }
}

/// The [`MxRecord`] of hickory's MX data.
fn mx_record(data: &RData) -> Option<MxRecord> {
    match data {
        RData::MX(mx) => Some(MxRecord {
            preference: mx.preference,
            exchange: exchange_name(&mx.exchange),
        }),
        _ => None,
    }
}

/// Sorts MX records by preference, then by name (a stable order for equal preferences).
fn sort_mx(mx: &mut [MxRecord]) {
    mx.sort_by(|a, b| {
        a.preference
            .cmp(&b.preference)
            .then(a.exchange.cmp(&b.exchange))
    });
}

/// The [`TlsaRecord`] of hickory's TLSA data.
fn tlsa_record(tlsa: &TLSA) -> TlsaRecord {
    TlsaRecord {
        usage: u8::from(tlsa.cert_usage),
        selector: u8::from(tlsa.selector),
        matching: u8::from(tlsa.matching),
        data_hex: tlsa.cert_data.iter().map(|b| format!("{b:02x}")).collect(),
    }
}

// ---- Direct queries (for the AD bit) ----

/// EDNS payload size advertised (the DNS Flag Day 2020 value).
const EDNS_PAYLOAD: u16 = 1232;

/// Receive buffer for UDP answers; a larger datagram is cut and then fails to parse.
const UDP_BUFFER_BYTES: usize = 4096;

/// How many CNAMEs [`chain_records`] follows inside one answer.
const MAX_CNAME_CHAIN: usize = 16;

/// The name servers of the system configuration (`/etc/resolv.conf`), with their UDP ports.
fn system_servers() -> Result<Vec<SocketAddr>, DnsSetupError> {
    let (config, _) = hickory_resolver::system_conf::read_system_conf()
        .map_err(|e| DnsSetupError(e.to_string()))?;
    let mut servers: Vec<SocketAddr> = Vec::new();
    for ns in config.name_servers() {
        let port = ns.connections.first().map_or(53, |c| c.port);
        let addr = SocketAddr::new(ns.ip, port);
        if !servers.contains(&addr) {
            servers.push(addr);
        }
    }
    if servers.is_empty() {
        return Err(DnsSetupError(
            "no name server in the system configuration".to_string(),
        ));
    }
    Ok(servers)
}

impl Resolver {
    /// The records of `qtype` at `name` (following CNAMEs from `name` inside the answer),
    /// converted by `extract`, with the AD bit of the answer: the one direct-query machinery
    /// behind [`DnsLookup::tlsa_secure`], [`DnsLookup::mx_secure`] and
    /// [`DnsLookup::ip_secure`].
    ///
    /// One query with RD, AD and EDNS DO set (so a validating resolver reports its verdict,
    /// RFC 6840 §5.7), over UDP with a 4 KiB receive buffer, repeated over TCP when
    /// truncated; answers that do not match the query are ignored. Servers are tried in
    /// order (the next one on a timeout, network error, SERVFAIL or REFUSED) within the
    /// configured time limit for the whole lookup. No records of the type: NXDOMAIN or
    /// NODATA after the response code, as for the plain lookups.
    async fn secure_records<T>(
        &self,
        name: &str,
        qtype: RecordType,
        extract: impl Fn(&RData) -> Option<T>,
    ) -> Result<Secured<Vec<T>>, DnsError> {
        let qname = absolute(name)?;
        let response = self.query_direct(&qname, qtype).await?;
        let value: Vec<T> = chain_records(&response, &qname, qtype)
            .filter_map(|r| extract(&r.data))
            .collect();
        if value.is_empty() {
            return Err(match response.metadata.response_code {
                ResponseCode::NXDomain => DnsError::NxDomain,
                _ => DnsError::NoData,
            });
        }
        Ok(Secured {
            value,
            authenticated: response.metadata.authentic_data,
        })
    }

    /// One query of `qtype` at `qname`, sent by us to the configured servers; the first
    /// NOERROR or NXDOMAIN response, or the last failure.
    async fn query_direct(&self, qname: &Name, qtype: RecordType) -> Result<Message, DnsError> {
        let deadline = Instant::now() + self.timeout;
        let mut last = DnsError::Other("no DNS server configured".to_string());
        for (i, server) in self.servers.iter().enumerate() {
            let remaining = deadline.saturating_duration_since(Instant::now());
            if remaining.is_zero() {
                last = DnsError::Timeout;
                break;
            }
            // Leave each remaining server an equal share of the time left.
            let share = remaining / u32::try_from(self.servers.len() - i).unwrap_or(u32::MAX);
            let outcome = tokio::time::timeout(share, exchange(*server, qname, qtype)).await;
            match outcome {
                Err(_) => last = DnsError::Timeout,
                Ok(Err(e)) => last = e,
                Ok(Ok(response)) => match response.metadata.response_code {
                    ResponseCode::NoError | ResponseCode::NXDomain => return Ok(response),
                    code => last = DnsError::ServerFailure(code_name(code)),
                },
            }
        }
        Err(last)
    }
}

/// One query to one server: UDP, then TCP when truncated; without EDNS again when the
/// server does not understand EDNS (FORMERR without an OPT record, RFC 6891 §7).
async fn exchange(
    server: SocketAddr,
    qname: &Name,
    qtype: RecordType,
) -> Result<Message, DnsError> {
    let response = exchange_with(server, qname, qtype, true).await?;
    if response.metadata.response_code == ResponseCode::FormErr && response.edns.is_none() {
        return exchange_with(server, qname, qtype, false).await;
    }
    Ok(response)
}

async fn exchange_with(
    server: SocketAddr,
    qname: &Name,
    qtype: RecordType,
    edns: bool,
) -> Result<Message, DnsError> {
    let request = build_query(qname, qtype, edns);
    let bytes = request
        .to_vec()
        .map_err(|e| DnsError::Other(format!("cannot encode DNS query: {e}")))?;
    let response = exchange_udp(server, &request, &bytes).await?;
    if !response.metadata.truncation {
        return Ok(response);
    }
    exchange_tcp(server, &request, &bytes).await
}

/// A recursive query asking for DNSSEC status: RD, AD and (with EDNS) DO set.
fn build_query(qname: &Name, qtype: RecordType, edns: bool) -> Message {
    let mut request = Message::query();
    request.metadata.recursion_desired = true;
    request.metadata.authentic_data = true;
    request.add_query(Query::query(qname.clone(), qtype));
    if edns {
        let mut opt = Edns::new();
        opt.set_max_payload(EDNS_PAYLOAD);
        opt.set_dnssec_ok(true);
        request.set_edns(opt);
    }
    request
}

fn io_error(what: &str, server: SocketAddr, e: std::io::Error) -> DnsError {
    if e.kind() == std::io::ErrorKind::TimedOut {
        return DnsError::Timeout;
    }
    DnsError::Other(format!("{what} {server}: {e}"))
}

/// UDP from a fresh socket (random port) connected to the server, so only its datagrams
/// arrive; datagrams that do not answer our query are skipped. The caller bounds the time.
async fn exchange_udp(
    server: SocketAddr,
    request: &Message,
    bytes: &[u8],
) -> Result<Message, DnsError> {
    let local = match server {
        SocketAddr::V4(_) => SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0)),
        SocketAddr::V6(_) => SocketAddr::from((Ipv6Addr::UNSPECIFIED, 0)),
    };
    let socket = tokio::net::UdpSocket::bind(local)
        .await
        .map_err(|e| io_error("UDP socket for", server, e))?;
    socket
        .connect(server)
        .await
        .map_err(|e| io_error("UDP to", server, e))?;
    socket
        .send(bytes)
        .await
        .map_err(|e| io_error("UDP to", server, e))?;
    let mut buf = vec![0u8; UDP_BUFFER_BYTES];
    loop {
        let n = socket
            .recv(&mut buf)
            .await
            .map_err(|e| io_error("UDP from", server, e))?;
        if let Ok(response) = Message::from_vec(&buf[..n])
            && answers(request, &response)
        {
            return Ok(response);
        }
        tracing::debug!(%server, "ignoring a UDP datagram that does not answer the query");
    }
}

/// TCP with the two-byte length prefix (RFC 1035 §4.2.2); the prefix bounds the answer at
/// 65535 bytes. The caller bounds the time.
async fn exchange_tcp(
    server: SocketAddr,
    request: &Message,
    bytes: &[u8],
) -> Result<Message, DnsError> {
    let len = u16::try_from(bytes.len())
        .map_err(|_| DnsError::Other("DNS query too long for TCP".to_string()))?;
    let mut stream = tokio::net::TcpStream::connect(server)
        .await
        .map_err(|e| io_error("TCP to", server, e))?;
    let mut framed = Vec::with_capacity(bytes.len() + 2);
    framed.extend_from_slice(&len.to_be_bytes());
    framed.extend_from_slice(bytes);
    stream
        .write_all(&framed)
        .await
        .map_err(|e| io_error("TCP to", server, e))?;
    let mut prefix = [0u8; 2];
    stream
        .read_exact(&mut prefix)
        .await
        .map_err(|e| io_error("TCP from", server, e))?;
    let mut buf = vec![0u8; usize::from(u16::from_be_bytes(prefix))];
    stream
        .read_exact(&mut buf)
        .await
        .map_err(|e| io_error("TCP from", server, e))?;
    let response = Message::from_vec(&buf)
        .map_err(|e| DnsError::Other(format!("malformed DNS answer from {server}: {e}")))?;
    if !answers(request, &response) {
        return Err(DnsError::Other(format!(
            "DNS answer from {server} does not match the query"
        )));
    }
    Ok(response)
}

/// Whether `response` answers `request`: same id, a response, the same single question.
fn answers(request: &Message, response: &Message) -> bool {
    response.metadata.id == request.metadata.id
        && response.metadata.message_type == MessageType::Response
        && response.queries.len() == 1
        && request.queries.first().is_some_and(|q| {
            let r = &response.queries[0];
            r.name() == q.name() && r.query_type() == q.query_type()
        })
}

/// The records of `qtype` for `qname` in the answer section, following CNAMEs from `qname`
/// (at most [`MAX_CNAME_CHAIN`]); records owned by other names are ignored.
fn chain_records<'m>(
    response: &'m Message,
    qname: &Name,
    qtype: RecordType,
) -> impl Iterator<Item = &'m hickory_resolver::proto::rr::Record> {
    let mut owner = qname.clone();
    for _ in 0..MAX_CNAME_CHAIN {
        let has_type = response
            .answers
            .iter()
            .any(|r| r.record_type() == qtype && r.name == owner);
        if has_type {
            break;
        }
        let next = response.answers.iter().find_map(|r| match &r.data {
            RData::CNAME(target) if r.name == owner => Some(target.0.clone()),
            _ => None,
        });
        match next {
            Some(target) => owner = target,
            None => break,
        }
    }
    response
        .answers
        .iter()
        .filter(move |r| r.record_type() == qtype && r.name == owner)
}

/// Merges the A and AAAA outcomes (A first): any addresses win; both "not found" is
/// NXDOMAIN when both said so, else NODATA; otherwise the temporary error.
fn combine_families(
    v4: Result<Vec<RData>, DnsError>,
    v6: Result<Vec<RData>, DnsError>,
) -> Result<Vec<IpAddr>, DnsError> {
    let mut addrs = Vec::new();
    for records in [&v4, &v6].into_iter().flatten() {
        addrs.extend(records.iter().filter_map(|r| match r {
            RData::A(a) => Some(IpAddr::V4(a.0)),
            RData::AAAA(aaaa) => Some(IpAddr::V6(aaaa.0)),
            _ => None,
        }));
    }
    if !addrs.is_empty() {
        return Ok(addrs);
    }
    no_addresses(v4.err(), v6.err())
}

/// The error when neither family gave addresses: NXDOMAIN when both said so, a temporary
/// error if there was one, else NODATA.
fn no_addresses<T>(v4: Option<DnsError>, v6: Option<DnsError>) -> Result<T, DnsError> {
    match (v4, v6) {
        (Some(DnsError::NxDomain), Some(DnsError::NxDomain)) => Err(DnsError::NxDomain),
        (Some(e), _) if e.is_temporary() => Err(e),
        (_, Some(e)) if e.is_temporary() => Err(e),
        _ => Err(DnsError::NoData),
    }
}

/// [`combine_families`] for authenticated lookups: the addresses of both families,
/// authenticated when every family that returned addresses was.
fn combine_secure_families(
    v4: Result<Secured<Vec<IpAddr>>, DnsError>,
    v6: Result<Secured<Vec<IpAddr>>, DnsError>,
) -> Result<Secured<Vec<IpAddr>>, DnsError> {
    let found: Vec<&Secured<Vec<IpAddr>>> = [&v4, &v6].into_iter().flatten().collect();
    if found.is_empty() {
        return no_addresses(v4.err(), v6.err());
    }
    Ok(Secured {
        value: found.iter().flat_map(|s| s.value.iter().copied()).collect(),
        authenticated: found.iter().all(|s| s.authenticated),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_syntax() {
        assert_eq!(
            parse_server("192.0.2.1"),
            Ok("192.0.2.1:53".parse().unwrap())
        );
        assert_eq!(
            parse_server("192.0.2.1:5353"),
            Ok("192.0.2.1:5353".parse().unwrap())
        );
        assert_eq!(
            parse_server("[::1]:5353"),
            Ok("[::1]:5353".parse().unwrap())
        );
        assert_eq!(parse_server("::1"), Ok("[::1]:53".parse().unwrap()));
        assert_eq!(
            parse_server("[2001:db8::1]"),
            Ok("[2001:db8::1]:53".parse().unwrap())
        );
        assert!(parse_server("example.com").is_err());
        assert!(parse_server("192.0.2.1:99999").is_err());
        assert!(parse_server("").is_err());
    }

    #[test]
    fn families_combine() {
        let a = |ip: [u8; 4]| RData::A(hickory_resolver::proto::rr::rdata::A(ip.into()));
        let timeout = || Err(DnsError::Timeout);
        assert_eq!(
            combine_families(Ok(vec![a([192, 0, 2, 1])]), timeout()),
            Ok(vec![IpAddr::from([192, 0, 2, 1])])
        );
        assert_eq!(
            combine_families(Err(DnsError::NxDomain), Err(DnsError::NxDomain)),
            Err(DnsError::NxDomain)
        );
        assert_eq!(
            combine_families(Err(DnsError::NoData), Err(DnsError::NxDomain)),
            Err(DnsError::NoData)
        );
        assert_eq!(
            combine_families(Err(DnsError::NoData), timeout()),
            Err(DnsError::Timeout)
        );
        assert_eq!(
            combine_families(Ok(vec![]), Err(DnsError::NoData)),
            Err(DnsError::NoData)
        );
    }

    #[test]
    fn secure_families_combine() {
        let secured = |ip: [u8; 4], authenticated| {
            Ok(Secured {
                value: vec![IpAddr::from(ip)],
                authenticated,
            })
        };
        // Both families authenticated.
        assert_eq!(
            combine_secure_families(secured([192, 0, 2, 1], true), secured([192, 0, 2, 2], true)),
            Ok(Secured {
                value: vec![IpAddr::from([192, 0, 2, 1]), IpAddr::from([192, 0, 2, 2])],
                authenticated: true
            })
        );
        // One insecure family spoils it.
        assert!(
            !combine_secure_families(
                secured([192, 0, 2, 1], true),
                secured([192, 0, 2, 2], false)
            )
            .unwrap()
            .authenticated
        );
        // A family without records does not count, nor does a temporary error beside addresses.
        assert!(
            combine_secure_families(secured([192, 0, 2, 1], true), Err(DnsError::NoData))
                .unwrap()
                .authenticated
        );
        assert!(
            combine_secure_families(Err(DnsError::Timeout), secured([192, 0, 2, 1], true))
                .unwrap()
                .authenticated
        );
        // Without addresses, the same errors as the plain lookup.
        assert_eq!(
            combine_secure_families(Err(DnsError::NxDomain), Err(DnsError::NxDomain)),
            Err(DnsError::NxDomain)
        );
        assert_eq!(
            combine_secure_families(Err(DnsError::NoData), Err(DnsError::Timeout)),
            Err(DnsError::Timeout)
        );
        assert_eq!(
            combine_secure_families(Err(DnsError::NoData), Err(DnsError::NxDomain)),
            Err(DnsError::NoData)
        );
    }

    #[test]
    fn only_matching_responses_count() {
        let qname = absolute("_25._tcp.mx.example.com").unwrap();
        let request = build_query(&qname, RecordType::TLSA, true);
        assert!(request.metadata.authentic_data && request.metadata.recursion_desired);
        assert!(request.edns.as_ref().is_some_and(|e| e.flags().dnssec_ok));
        let mut response = request.clone();
        response.metadata.message_type = MessageType::Response;
        assert!(answers(&request, &response));
        // Names compare case-insensitively.
        response.queries = vec![Query::query(
            absolute("_25._TCP.MX.example.com").unwrap(),
            RecordType::TLSA,
        )];
        assert!(answers(&request, &response));
        let mut other = response.clone();
        other.metadata.id = request.metadata.id.wrapping_add(1);
        assert!(!answers(&request, &other));
        let mut other = response.clone();
        other.queries = vec![Query::query(qname.clone(), RecordType::A)];
        assert!(!answers(&request, &other));
        let mut other = response.clone();
        other.metadata.message_type = MessageType::Query;
        assert!(!answers(&request, &other));
        let mut other = response;
        other.queries.clear();
        assert!(!answers(&request, &other));
    }

    #[test]
    fn chains_end_at_the_right_owner() {
        use hickory_resolver::proto::rr::Record;
        use hickory_resolver::proto::rr::rdata::CNAME;
        let a = absolute("a.example").unwrap();
        let b = absolute("b.example").unwrap();
        let txt = |owner: &Name, s: &str| {
            Record::from_rdata(
                owner.clone(),
                60,
                RData::TXT(hickory_resolver::proto::rr::rdata::TXT::new(vec![
                    s.to_string(),
                ])),
            )
        };
        let mut response = Message::response(1, hickory_resolver::proto::op::OpCode::Query);
        response.add_answer(Record::from_rdata(
            a.clone(),
            60,
            RData::CNAME(CNAME(b.clone())),
        ));
        response.add_answer(txt(&b, "at b"));
        // A stray record for an unrelated owner is not part of the answer.
        response.add_answer(txt(&absolute("c.example").unwrap(), "stray"));
        let found: Vec<_> = chain_records(&response, &a, RecordType::TXT).collect();
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].name, b);
        // A loop ends without records.
        let mut looped = Message::response(1, hickory_resolver::proto::op::OpCode::Query);
        looped.add_answer(Record::from_rdata(
            a.clone(),
            60,
            RData::CNAME(CNAME(b.clone())),
        ));
        looped.add_answer(Record::from_rdata(
            b.clone(),
            60,
            RData::CNAME(CNAME(a.clone())),
        ));
        assert_eq!(chain_records(&looped, &a, RecordType::TXT).count(), 0);
    }

    #[test]
    fn names_become_absolute() {
        assert_eq!(absolute("example.com").unwrap().to_ascii(), "example.com.");
        assert_eq!(
            absolute("_mta-sts.example.com.").unwrap().to_ascii(),
            "_mta-sts.example.com."
        );
        assert!(absolute("").is_err());
        assert!(absolute(".").is_err());
    }
}
