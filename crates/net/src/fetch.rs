//! The strict MTA-STS policy fetcher (RFC 8461 §3.3).
//!
//! `GET https://mta-sts.<domain>/.well-known/mta-sts.txt` over HTTP/1.1 with SNI, WebPKI
//! validation, no redirects, no caching headers, status 200 only, `text/plain` checked, the
//! body capped at 64 KiB while streaming, and one time limit for the whole fetch. Every
//! failure is classified ([`FetchError`]) so it maps onto an RFC 8460 result type.

use std::io::Read;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::future::BoxFuture;
use http_body_util::{BodyExt, Empty};
use hyper::body::Incoming;
use hyper::header::{
    ACCEPT, CONNECTION, CONTENT_ENCODING, CONTENT_LENGTH, CONTENT_TYPE, HOST, LOCATION,
    USER_AGENT as USER_AGENT_HEADER,
};
use hyper::{Method, Request, Response};
use hyper_util::rt::TokioIo;
use mtasts_proto::ResultType;
use mtasts_proto::sts::{POLICY_MAX_BYTES, POLICY_PATH};
use rustls::RootCertStore;
use rustls_pki_types::ServerName;
use thiserror::Error;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use crate::cert::{
    CertInfo, CertProblem, ChainValidation, OnInvalid, RecordingVerifier, cert_info,
};
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
///
/// "Answers" means accepts the TCP connection: a TLS or HTTP failure on a connected address is
/// the outcome, it does not move on to the next address. Connection attempts are bounded by
/// [`CONNECT_TIMEOUT`] each (and all by the whole-fetch limit).
pub struct PolicyFetcher {
    config: FetchConfig,
    dns: Arc<dyn DnsLookup>,
}

/// Upper bound for one TCP connection attempt.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Largest response head (status line and headers) accepted.
const MAX_HEADER_BYTES: usize = 16 * 1024;

/// Most response headers accepted.
const MAX_HEADERS: usize = 64;

/// The `User-Agent` sent.
const USER_AGENT: &str = concat!("mtasts/", env!("CARGO_PKG_VERSION"));

impl FetchConfig {
    /// The defaults: a 30 s limit, port 443, a 64 KiB cap, trusting `roots`.
    pub fn new(roots: Arc<RootCertStore>) -> Self {
        FetchConfig {
            timeout: Duration::from_secs(30),
            roots,
            port: 443,
            max_bytes: POLICY_MAX_BYTES,
        }
    }
}

impl PolicyFetcher {
    /// A fetcher using `dns` to find the policy host.
    pub fn new(config: FetchConfig, dns: Arc<dyn DnsLookup>) -> Self {
        PolicyFetcher { config, dns }
    }

    /// The configuration.
    pub fn config(&self) -> &FetchConfig {
        &self.config
    }

    async fn fetch_report(&self, domain: &str) -> FetchReport {
        let domain = domain.trim_end_matches('.').to_ascii_lowercase();
        let host = mtasts_proto::sts::policy_host(&domain);
        let authority = if self.config.port == 443 {
            host.clone()
        } else {
            format!("{host}:{}", self.config.port)
        };
        let mut report = FetchReport {
            url: format!("https://{authority}{POLICY_PATH}"),
            addresses: Vec::new(),
            ip: None,
            tls_version: None,
            certificate: None,
            status: None,
            outcome: Err(FetchError::Timeout(self.config.timeout)),
        };
        // One connection gets a TLS handshake; its verifier outlives a timeout, so a
        // certificate seen before the deadline is still reported.
        let verifier = RecordingVerifier::new(self.config.roots.clone(), OnInvalid::Abort);
        let fetch = self.fetch_into(&host, &authority, &verifier, &mut report);
        report.outcome = match tokio::time::timeout(self.config.timeout, fetch).await {
            Ok(outcome) => outcome,
            Err(_) => Err(FetchError::Timeout(self.config.timeout)),
        };
        if report.certificate.is_none() {
            report.certificate = verifier
                .validation()
                .as_ref()
                .and_then(ChainValidation::cert_info);
        }
        report
    }

    /// The fetch proper; fills `report` as it learns things, so a timeout keeps them.
    async fn fetch_into(
        &self,
        host: &str,
        authority: &str,
        verifier: &Arc<RecordingVerifier>,
        report: &mut FetchReport,
    ) -> Result<FetchedPolicy, FetchError> {
        report.addresses = self.dns.ip(host).await.map_err(FetchError::Dns)?;
        let server_name = ServerName::try_from(host.to_string())
            .map_err(|e| FetchError::Tls(format!("invalid host name {host:?}: {e}")))?;
        let connect_timeout = CONNECT_TIMEOUT.min(self.config.timeout);
        let mut last_error = None;
        let mut connected = None;
        for ip in report.addresses.clone() {
            report.ip = Some(ip);
            let addr = SocketAddr::new(ip, self.config.port);
            match tokio::time::timeout(connect_timeout, TcpStream::connect(addr)).await {
                Ok(Ok(tcp)) => {
                    connected = Some(tcp);
                    break;
                }
                Ok(Err(e)) => last_error = Some(format!("{addr}: {e}")),
                Err(_) => {
                    last_error = Some(format!("{addr}: no answer within {connect_timeout:?}"))
                }
            }
        }
        let Some(tcp) = connected else {
            return Err(FetchError::Connect(
                last_error.unwrap_or_else(|| "no address to connect to".to_string()),
            ));
        };
        let _ = tcp.set_nodelay(true);

        // TLS: SNI = the policy host, ALPN http/1.1, WebPKI through the recording verifier.
        let connector = TlsConnector::from(Arc::new(verifier.client_config(&[b"http/1.1"])));
        let handshake = connector.connect(server_name, tcp).await;
        let seen = verifier.validation();
        report.certificate = seen.as_ref().and_then(ChainValidation::cert_info);
        let tls = match handshake {
            Ok(tls) => tls,
            Err(e) => {
                return Err(match seen.map(|v| v.result) {
                    Some(Err(problem)) => FetchError::Certificate(problem),
                    _ => FetchError::Tls(tls_error_text(&e)),
                });
            }
        };
        let (_, session) = tls.get_ref();
        report.tls_version = session.protocol_version().map(version_name);
        if report.certificate.is_none() {
            report.certificate = session.peer_certificates().and_then(cert_info);
        }

        // HTTP/1.1, one request, the connection closed afterwards.
        let (mut sender, connection) = hyper::client::conn::http1::Builder::new()
            .max_headers(MAX_HEADERS)
            .max_header_size(MAX_HEADER_BYTES)
            .max_buf_size(MAX_HEADER_BYTES.max(8192) * 2)
            .handshake::<_, Empty<Bytes>>(TokioIo::new(tls))
            .await
            .map_err(|e| FetchError::Http(e.to_string()))?;
        let driver = AbortOnDrop(tokio::spawn(connection));
        let request = Request::builder()
            .method(Method::GET)
            .uri(POLICY_PATH)
            .header(HOST, authority)
            .header(USER_AGENT_HEADER, USER_AGENT)
            .header(ACCEPT, "text/plain")
            .header(CONNECTION, "close")
            .body(Empty::<Bytes>::new())
            .map_err(|e| FetchError::Http(e.to_string()))?;
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| FetchError::Http(http_error_text(&e)))?;
        let status = response.status().as_u16();
        report.status = Some(status);
        let result = self.read_response(response).await;
        drop(driver);
        result
    }

    /// Checks status and headers, then reads the body under the cap.
    async fn read_response(
        &self,
        response: Response<Incoming>,
    ) -> Result<FetchedPolicy, FetchError> {
        let status = response.status().as_u16();
        let headers = response.headers();
        if (300..400).contains(&status) {
            let location = headers
                .get(LOCATION)
                .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
            return Err(FetchError::Redirect { status, location });
        }
        if status != 200 {
            return Err(FetchError::Status(status));
        }
        let content_type = match headers.get(CONTENT_TYPE) {
            None => None,
            Some(value) => {
                let text = String::from_utf8_lossy(value.as_bytes()).into_owned();
                if !is_text_plain(&text) {
                    return Err(FetchError::ContentType(text));
                }
                Some(text)
            }
        };
        let max = self.config.max_bytes;
        if let Some(length) = headers.get(CONTENT_LENGTH) {
            let length = length
                .to_str()
                .ok()
                .and_then(|l| l.trim().parse::<u64>().ok())
                .ok_or_else(|| FetchError::Http("invalid Content-Length".to_string()))?;
            if length > max as u64 {
                return Err(FetchError::TooLarge(max));
            }
        }
        let encoding = match headers.get(CONTENT_ENCODING) {
            None => Encoding::Identity,
            Some(value) => {
                let value = String::from_utf8_lossy(value.as_bytes())
                    .trim()
                    .to_ascii_lowercase();
                match value.as_str() {
                    "" | "identity" => Encoding::Identity,
                    "gzip" | "x-gzip" => Encoding::Gzip,
                    other => {
                        return Err(FetchError::Http(format!(
                            "unsupported Content-Encoding {other:?}"
                        )));
                    }
                }
            }
        };
        let mut body = response.into_body();
        let mut bytes = Vec::new();
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| FetchError::Http(http_error_text(&e)))?;
            if let Ok(data) = frame.into_data() {
                if bytes.len() + data.len() > max {
                    return Err(FetchError::TooLarge(max));
                }
                bytes.extend_from_slice(&data);
            }
        }
        if encoding == Encoding::Gzip {
            bytes = gunzip(&bytes, max)?;
        }
        Ok(FetchedPolicy {
            body: bytes,
            content_type,
        })
    }
}

impl PolicyFetch for PolicyFetcher {
    fn fetch<'a>(&'a self, domain: &'a str) -> BoxFuture<'a, FetchReport> {
        Box::pin(self.fetch_report(domain))
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Encoding {
    Identity,
    Gzip,
}

/// Aborts a spawned task when dropped (the HTTP connection driver).
struct AbortOnDrop(tokio::task::JoinHandle<Result<(), hyper::Error>>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// `type/subtype` is `text/plain`, case-insensitively; parameters are ignored (C40, C43).
fn is_text_plain(content_type: &str) -> bool {
    let media_type = content_type.split(';').next().unwrap_or("").trim();
    media_type.eq_ignore_ascii_case("text/plain")
}

/// Decodes a gzip body, failing with [`FetchError::TooLarge`] past `max` decoded bytes (C41).
fn gunzip(data: &[u8], max: usize) -> Result<Vec<u8>, FetchError> {
    let decoder = flate2::read::MultiGzDecoder::new(data);
    let mut out = Vec::new();
    decoder
        .take(max as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|e| FetchError::Http(format!("invalid gzip body: {e}")))?;
    if out.len() > max {
        return Err(FetchError::TooLarge(max));
    }
    Ok(out)
}

/// `TLSv1.3`, `TLSv1.2`, ….
pub(crate) fn version_name(version: rustls::ProtocolVersion) -> String {
    match version {
        rustls::ProtocolVersion::TLSv1_3 => "TLSv1.3".to_string(),
        rustls::ProtocolVersion::TLSv1_2 => "TLSv1.2".to_string(),
        rustls::ProtocolVersion::TLSv1_1 => "TLSv1.1".to_string(),
        rustls::ProtocolVersion::TLSv1_0 => "TLSv1.0".to_string(),
        rustls::ProtocolVersion::SSLv3 => "SSLv3".to_string(),
        other => format!("{other:?}"),
    }
}

/// The rustls error inside an I/O error from tokio-rustls, or the I/O error itself.
fn tls_error_text(err: &std::io::Error) -> String {
    match err
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
    {
        Some(tls) => tls.to_string(),
        None if err.kind() == std::io::ErrorKind::UnexpectedEof => {
            "the server closed the connection during the handshake".to_string()
        }
        None => err.to_string(),
    }
}

/// A hyper error with its source chain.
fn http_error_text(err: &hyper::Error) -> String {
    let mut text = err.to_string();
    let mut source = std::error::Error::source(err);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn media_type_check() {
        assert!(is_text_plain("text/plain"));
        assert!(is_text_plain("Text/Plain; charset=UTF-8"));
        assert!(is_text_plain(" text/plain ;charset=iso-8859-1"));
        assert!(!is_text_plain("text/html"));
        assert!(!is_text_plain("text/plainx"));
        assert!(!is_text_plain("application/octet-stream"));
        assert!(!is_text_plain(""));
    }

    #[test]
    fn gunzip_caps_the_decoded_size() {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        enc.write_all(&vec![b'a'; 10_000]).unwrap();
        let gz = enc.finish().unwrap();
        assert_eq!(gunzip(&gz, 10_000).unwrap().len(), 10_000);
        assert_eq!(gunzip(&gz, 9_999), Err(FetchError::TooLarge(9_999)));
        assert!(matches!(gunzip(b"not gzip", 100), Err(FetchError::Http(_))));
    }

    #[test]
    fn result_types() {
        assert_eq!(
            FetchError::Certificate(CertProblem::Expired).result_type(),
            ResultType::StsWebpkiInvalid
        );
        assert_eq!(
            FetchError::Status(404).result_type(),
            ResultType::StsPolicyFetchError
        );
        assert_eq!(
            FetchError::ContentType("text/html".into()).result_type(),
            ResultType::StsPolicyFetchError
        );
    }
}
