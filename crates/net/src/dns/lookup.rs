//! The DNS edge as the rest of the workspace sees it: [`DnsLookup`], its answers
//! ([`MxRecord`], [`TlsaRecord`], [`Secured`]) and errors ([`DnsError`]), and how to configure
//! the implementation ([`DnsConfig`], [`parse_server`]).

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use futures::future::BoxFuture;
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

/// How to build a [`HickoryDns`](super::HickoryDns).
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

/// A DNS server address that is not `IP`, `IP:PORT` or `[IPv6]:PORT`.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
#[error("invalid DNS server {0:?}: expected IP, IP:PORT or [IPv6]:PORT")]
pub struct InvalidDnsServer(pub String);

/// Parses `--dns IP[:PORT]` (IPv6 with a port as `[::1]:5353`); the port defaults to 53.
pub fn parse_server(s: &str) -> Result<SocketAddr, InvalidDnsServer> {
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
    Err(InvalidDnsServer(s.to_owned()))
}

/// Why DNS could not be set up. Every variant is our configuration's fault; the message
/// always starts "cannot set up the DNS resolver".
#[derive(Clone, Debug, Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum DnsSetupError {
    /// The system configuration (`/etc/resolv.conf`) could not be read.
    #[error("cannot set up the DNS resolver: {0}")]
    SystemConfig(String),
    /// No name server to ask: an empty list given, or none in the system configuration.
    #[error("cannot set up the DNS resolver: {0}")]
    NoServer(&'static str),
    /// hickory-resolver refused the configuration.
    #[error("cannot set up the DNS resolver: {0}")]
    Build(String),
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
}
