//! DNS lookups through hickory-resolver.
//!
//! NXDOMAIN and NODATA ("no such record") are kept apart from SERVFAIL, REFUSED and timeouts
//! ("could not find out"): the latter are temporary and never mean "no policy" (RFC 8461 C27).
//! CNAME chains are followed by the resolver.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use futures::future::BoxFuture;
use hickory_resolver::TokioResolver;
use hickory_resolver::config::{ConnectionConfig, NameServerConfig, ResolveHosts, ResolverConfig};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::net::{DnsError as HickoryDnsError, NetError};
use hickory_resolver::proto::op::ResponseCode;
use hickory_resolver::proto::rr::{Name, RData, RecordType};
use mtasts_proto::txt::TxtRr;
use thiserror::Error;

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
    pub fn new(config: &DnsConfig) -> Result<Self, DnsSetupError> {
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
            let mut mx: Vec<MxRecord> = records
                .into_iter()
                .filter_map(|r| match r {
                    RData::MX(mx) => Some(MxRecord {
                        preference: mx.preference,
                        exchange: exchange_name(&mx.exchange),
                    }),
                    _ => None,
                })
                .collect();
            mx.sort_by(|a, b| {
                a.preference
                    .cmp(&b.preference)
                    .then(a.exchange.cmp(&b.exchange))
            });
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
                .into_iter()
                .filter_map(|r| match r {
                    RData::TLSA(tlsa) => Some(TlsaRecord {
                        usage: u8::from(tlsa.cert_usage),
                        selector: u8::from(tlsa.selector),
                        matching: u8::from(tlsa.matching),
                        data_hex: tlsa.cert_data.iter().map(|b| format!("{b:02x}")).collect(),
                    }),
                    _ => None,
                })
                .collect())
        })
    }
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
    match (v4, v6) {
        (Err(DnsError::NxDomain), Err(DnsError::NxDomain)) => Err(DnsError::NxDomain),
        (Err(e), _) if e.is_temporary() => Err(e),
        (_, Err(e)) if e.is_temporary() => Err(e),
        _ => Err(DnsError::NoData),
    }
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
