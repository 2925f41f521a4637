//! The strict MTA-STS policy fetcher (RFC 8461 §3.3).
//!
//! `GET https://mta-sts.<domain>/.well-known/mta-sts.txt` over HTTP/1.1 with SNI, WebPKI
//! validation, no redirects, no caching headers, status 200 only, `text/plain` checked, the
//! body capped at 64 KiB while streaming, and one time limit for the whole fetch. Every
//! failure is classified ([`FetchError`]) so it maps onto an RFC 8460 result type.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use mtasts_proto::ResultType;
use rustls::RootCertStore;
use thiserror::Error;

use crate::cert::{CertInfo, CertProblem};
use crate::dns::{DnsError, DnsLookup};

/// How the fetcher behaves.
#[derive(Clone, Debug)]
pub struct FetchConfig {
    /// Limit for the whole fetch: DNS, connect, handshake, headers and body.
    pub timeout: Duration,
    /// Trusted roots.
    pub roots: Arc<RootCertStore>,
    /// The HTTPS port. 443 by the RFC; other values are for tests only.
    pub port: u16,
    /// Body cap; 64 KiB by default.
    pub max_bytes: usize,
}

/// A fetch that returned 200 with an acceptable content type and a body under the cap.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FetchedPolicy {
    /// The body bytes (gzip-decoded if the server used `Content-Encoding: gzip`, capped again).
    pub body: Vec<u8>,
    /// The `Content-Type` header; `None` when absent (accepted, the checker warns — C40).
    pub content_type: Option<String>,
}

/// Why a policy could not be fetched.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum FetchError {
    /// `mta-sts.<domain>` has no address (or its lookup failed).
    #[error("mta-sts host has no address: {0}")]
    Dns(DnsError),
    /// No TCP connection to any address.
    #[error("cannot connect: {0}")]
    Connect(String),
    /// The TLS handshake failed for a reason other than the certificate.
    #[error("TLS handshake failed: {0}")]
    Tls(String),
    /// The certificate failed WebPKI validation.
    #[error("{0}")]
    Certificate(CertProblem),
    /// The whole fetch did not finish in time.
    #[error("no complete answer within {0:?}")]
    Timeout(Duration),
    /// A 3xx answer, which senders must not follow (C33).
    #[error("redirect ({status}) to {location:?}")]
    Redirect {
        /// The status code.
        status: u16,
        /// The `Location` header, if any.
        location: Option<String>,
    },
    /// Any status other than 200 and 3xx (C31, C32).
    #[error("HTTP status {0}")]
    Status(u16),
    /// A `Content-Type` other than `text/plain` (parameters are ignored, C40).
    #[error("content type {0:?} is not text/plain")]
    ContentType(String),
    /// The body (or its decoded form) exceeds the cap (C39, C41).
    #[error("the body exceeds {0} bytes")]
    TooLarge(usize),
    /// A malformed HTTP answer.
    #[error("HTTP error: {0}")]
    Http(String),
}

impl FetchError {
    /// RFC 8460: certificate problems are `sts-webpki-invalid`, the rest `sts-policy-fetch-error`
    /// (a wrong content type included).
    pub fn result_type(&self) -> ResultType {
        match self {
            FetchError::Certificate(_) => ResultType::StsWebpkiInvalid,
            _ => ResultType::StsPolicyFetchError,
        }
    }
}

/// Everything observed during one fetch, successful or not.
#[derive(Clone, Debug)]
pub struct FetchReport {
    /// The URL fetched.
    pub url: String,
    /// The addresses `mta-sts.<domain>` resolved to.
    pub addresses: Vec<IpAddr>,
    /// The address the answer (or the last failure) came from.
    pub ip: Option<IpAddr>,
    /// The negotiated TLS version, e.g. `TLSv1.3`.
    pub tls_version: Option<String>,
    /// The policy host's certificate, when one was presented (even if invalid).
    pub certificate: Option<CertInfo>,
    /// The HTTP status, when an answer arrived.
    pub status: Option<u16>,
    /// The outcome.
    pub outcome: Result<FetchedPolicy, FetchError>,
}

/// The policy-fetch edge.
pub trait PolicyFetch: Send + Sync {
    /// Fetches the policy of a normalised policy domain.
    fn fetch<'a>(&'a self, domain: &'a str) -> BoxFuture<'a, FetchReport>;
}

/// The hyper + rustls implementation of [`PolicyFetch`]. Tries each address of the policy host
/// in turn (IPv6 and IPv4 as DNS returns them) until one answers.
pub struct PolicyFetcher {
    _private: (),
}

impl PolicyFetcher {
    /// A fetcher using `dns` to find the policy host.
    pub fn new(config: FetchConfig, dns: Arc<dyn DnsLookup>) -> Self {
        let _ = (config, dns);
        todo!("helper")
    }
}
