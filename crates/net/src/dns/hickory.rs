//! [`HickoryDns`]: [`DnsLookup`] through hickory-resolver (no cache, no hosts file, one
//! deadline per lookup), with the authenticated lookups delegated to the AD-bit client.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use futures::future::BoxFuture;
use hickory_resolver::TokioResolver;
use hickory_resolver::config::{ConnectionConfig, NameServerConfig, ResolveHosts, ResolverConfig};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::net::{DnsError as HickoryDnsError, NetError};
use hickory_resolver::proto::op::ResponseCode;
use hickory_resolver::proto::rr::rdata::TLSA;
use hickory_resolver::proto::rr::{Name, RData, RecordType};
use mtasts_proto::txt::TxtRr;

use super::ad_bit::AdBitClient;
use super::lookup::{DnsConfig, DnsError, DnsLookup, DnsSetupError, MxRecord, Secured, TlsaRecord};
use super::name::{absolute, code_name};

/// A hickory-backed [`DnsLookup`] without a cache (every call asks the server).
pub struct HickoryDns {
    inner: TokioResolver,
    timeout: Duration,
    /// Asks the same servers directly for the authenticated lookups
    /// ([`DnsLookup::tlsa_secure`], [`DnsLookup::mx_secure`], [`DnsLookup::ip_secure`]).
    ad_bit: AdBitClient,
}

impl HickoryDns {
    /// Builds the DNS client from the configuration.
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
                    return Err(DnsSetupError::NoServer("no DNS server given"));
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
            None => TokioResolver::builder_tokio()
                .map_err(|e| DnsSetupError::SystemConfig(e.to_string()))?,
        };
        let opts = builder.options_mut();
        opts.cache_size = 0;
        opts.use_hosts_file = ResolveHosts::Never;
        opts.preserve_intermediates = true;
        // One attempt per server with most of the budget; the outer limit covers the rest.
        opts.timeout = config.timeout.mul_f32(0.9).max(Duration::from_millis(10));
        opts.attempts = 1;
        opts.ndots = 0;
        let inner = builder
            .build()
            .map_err(|e| DnsSetupError::Build(e.to_string()))?;
        Ok(HickoryDns {
            inner,
            timeout: config.timeout,
            ad_bit: AdBitClient::new(servers, config.timeout),
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

/// The exchange of an MX record as [`MxRecord::exchange`] wants it.
fn exchange_name(name: &Name) -> String {
    name.to_ascii().trim_end_matches('.').to_ascii_lowercase()
}

impl DnsLookup for HickoryDns {
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

    /// Asks the configured servers directly, through the AD-bit client (the module doc of
    /// `ad_bit` says why hickory-resolver cannot give this answer).
    fn tlsa_secure<'a>(
        &'a self,
        name: &'a str,
    ) -> BoxFuture<'a, Result<Secured<Vec<TlsaRecord>>, DnsError>> {
        Box::pin(
            self.ad_bit
                .records(name, RecordType::TLSA, |data| match data {
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
                .ad_bit
                .records(domain, RecordType::MX, mx_record)
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
                self.ad_bit.records(host, RecordType::A, address),
                self.ad_bit.records(host, RecordType::AAAA, address)
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

/// The name servers of the system configuration (`/etc/resolv.conf`), with their UDP ports.
fn system_servers() -> Result<Vec<SocketAddr>, DnsSetupError> {
    let (config, _) = hickory_resolver::system_conf::read_system_conf()
        .map_err(|e| DnsSetupError::SystemConfig(e.to_string()))?;
    let mut servers: Vec<SocketAddr> = Vec::new();
    for ns in config.name_servers() {
        let port = ns.connections.first().map_or(53, |c| c.port);
        let addr = SocketAddr::new(ns.ip, port);
        if !servers.contains(&addr) {
            servers.push(addr);
        }
    }
    if servers.is_empty() {
        return Err(DnsSetupError::NoServer(
            "no name server in the system configuration",
        ));
    }
    Ok(servers)
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
}
