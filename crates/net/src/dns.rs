//! DNS lookups through hickory-resolver.
//!
//! NXDOMAIN and NODATA ("no such record") are kept apart from SERVFAIL, REFUSED and timeouts
//! ("could not find out"): the latter are temporary and never mean "no policy" (RFC 8461 C27).
//! CNAME chains are followed by the resolver.

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
        DnsConfig { servers: None, timeout: Duration::from_secs(5) }
    }
}

/// Parses `--dns IP[:PORT]` (IPv6 with a port as `[::1]:5353`); the port defaults to 53.
pub fn parse_server(s: &str) -> Result<SocketAddr, String> {
    let _ = s;
    todo!("helper")
}

/// A hickory-backed [`DnsLookup`] without a cache (every call asks the server).
pub struct Resolver {
    _private: (),
}

/// Why a resolver could not be set up (unreadable system configuration).
#[derive(Debug, Error)]
#[error("cannot set up the DNS resolver: {0}")]
pub struct DnsSetupError(pub String);

impl Resolver {
    /// Builds a resolver from the configuration.
    pub fn new(config: &DnsConfig) -> Result<Self, DnsSetupError> {
        let _ = config;
        todo!("helper")
    }
}
