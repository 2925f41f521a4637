//! The HTTPS client instant-acme talks to the CA through.
//!
//! Our own rather than instant-acme's default for three reasons: every exchange is bounded in
//! time (the default client has no timeouts), the trust store is ours (the Mozilla roots plus
//! an optional extra root such as Pebble's), and the status and `Retry-After` of the last
//! answer are recorded so a `rateLimited` problem can carry the delay the CA asked for —
//! instant-acme's problem documents do not keep response headers.
//!
//! One connection per request: an issuance is a dozen requests, spread over seconds, so
//! connection reuse would save little and cost a pool with its own failure modes.

use std::cell::Cell;
use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::header::{HOST, RETRY_AFTER};
use hyper::{Request, Response, Uri};
use hyper_util::rt::TokioIo;
use instant_acme::{BodyWrapper, BytesResponse, HttpClient};
use rustls::RootCertStore;
use rustls_pki_types::ServerName;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

/// Largest response body accepted from the CA (a certificate chain is a few KiB).
const MAX_BODY_BYTES: usize = 1024 * 1024;

/// What the last answer of the CA said beyond its body.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct LastResponse {
    /// The HTTP status.
    pub(crate) status: Option<u16>,
    /// The `Retry-After` header, as a delay from when it arrived.
    pub(crate) retry_after: Option<Duration>,
}

tokio::task_local! {
    /// Per ACME operation: set by [`recording`], written by the client. Task-local rather than
    /// a field of the client because one client serves concurrent issuances.
    static LAST: Cell<LastResponse>;
}

/// Runs `f`, recording the status and `Retry-After` of every CA answer it receives, for
/// [`last`] to read from within.
pub(crate) async fn recording<F: Future>(f: F) -> F::Output {
    LAST.scope(Cell::new(LastResponse::default()), f).await
}

/// The last answer of the CA in the current [`recording`] (nothing outside one).
pub(crate) fn last() -> LastResponse {
    LAST.try_with(Cell::get).unwrap_or_default()
}

/// A transport failure: no answer from the CA (connect, TLS, HTTP or time limit).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub(crate) struct TransportError(pub(crate) String);

/// The client (cheap to share).
#[derive(Clone)]
pub(crate) struct AcmeHttp {
    tls: TlsConnector,
    timeout: Duration,
}

impl AcmeHttp {
    /// A client trusting `roots`, giving each exchange `timeout` in total.
    pub(crate) fn new(roots: Arc<RootCertStore>, timeout: Duration) -> Self {
        let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::aws_lc_rs::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        // The aws-lc-rs provider supports the default versions; failing here is a rustls bug.
        .expect("aws-lc-rs supports the default TLS versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        AcmeHttp {
            tls: TlsConnector::from(Arc::new(config)),
            timeout,
        }
    }

    async fn exchange(
        &self,
        req: Request<BodyWrapper<Bytes>>,
    ) -> Result<Response<Full<Bytes>>, TransportError> {
        let fail = |what: &str, e: &dyn std::fmt::Display| TransportError(format!("{what}: {e}"));
        let uri = req.uri().clone();
        if uri.scheme_str() != Some("https") {
            return Err(TransportError(format!("{uri}: only https URLs are used")));
        }
        let host = uri
            .host()
            .ok_or_else(|| TransportError(format!("{uri}: no host")))?;
        let port = uri.port_u16().unwrap_or(443);
        // `Uri::host` keeps the brackets of an IPv6 literal.
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        let server_name = match bare.parse::<IpAddr>() {
            Ok(ip) => ServerName::from(ip),
            Err(_) => ServerName::try_from(bare.to_string())
                .map_err(|e| fail(&format!("invalid host {bare:?}"), &e))?,
        };
        let tcp = match bare.parse::<IpAddr>() {
            Ok(ip) => TcpStream::connect((ip, port)).await,
            Err(_) => TcpStream::connect((bare, port)).await,
        }
        .map_err(|e| fail(&format!("connect {host}:{port}"), &e))?;
        let _ = tcp.set_nodelay(true);
        let tls = self
            .tls
            .connect(server_name, tcp)
            .await
            .map_err(|e| fail(&format!("TLS with {host}:{port}"), &e))?;
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
            .await
            .map_err(|e| fail("HTTP", &e))?;
        let driver = AbortOnDrop(tokio::spawn(connection));

        let (mut parts, body) = req.into_parts();
        let authority = uri
            .authority()
            .map(|a| a.as_str().to_string())
            .unwrap_or_default();
        parts.uri = uri
            .path_and_query()
            .map(|pq| pq.as_str())
            .unwrap_or("/")
            .parse::<Uri>()
            .map_err(|e| fail("request path", &e))?;
        parts
            .headers
            .insert(HOST, authority.parse().map_err(|e| fail("Host", &e))?);
        let response = sender
            .send_request(Request::from_parts(parts, body))
            .await
            .map_err(|e| fail("HTTP", &e))?;
        let (parts, body) = response.into_parts();
        let body = Limited::new(body, MAX_BODY_BYTES)
            .collect()
            .await
            .map_err(|e| fail("response body", &*e))?
            .to_bytes();
        drop(driver);
        Ok(Response::from_parts(parts, Full::new(body)))
    }
}

impl HttpClient for AcmeHttp {
    fn request(
        &self,
        req: Request<BodyWrapper<Bytes>>,
    ) -> Pin<Box<dyn Future<Output = Result<BytesResponse, instant_acme::Error>> + Send>> {
        let this = self.clone();
        Box::pin(async move {
            let uri = req.uri().clone();
            let result = match tokio::time::timeout(this.timeout, this.exchange(req)).await {
                Ok(result) => result,
                Err(_) => Err(TransportError(format!(
                    "{uri}: no complete answer within {:?}",
                    this.timeout
                ))),
            };
            let response = result.map_err(|e| instant_acme::Error::Other(Box::new(e)))?;
            let seen = LastResponse {
                status: Some(response.status().as_u16()),
                retry_after: response
                    .headers()
                    .get(RETRY_AFTER)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| parse_retry_after(v, SystemTime::now())),
            };
            // Outside `recording` (never in this crate) there is nothing to record into.
            let _ = LAST.try_with(|last| last.set(seen));
            Ok(BytesResponse::from(response))
        })
    }
}

/// `Retry-After` (RFC 9110 §10.2.3): delay-seconds or an HTTP-date, as a delay from `now`.
pub(crate) fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let format = time::macros::format_description!(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
    );
    let at = time::PrimitiveDateTime::parse(value, &format)
        .ok()?
        .assume_utc();
    let at = SystemTime::from(at);
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

/// Aborts the HTTP connection driver when the exchange ends (or is cancelled).
struct AbortOnDrop(tokio::task::JoinHandle<Result<(), hyper::Error>>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_seconds_and_dates() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(784_111_777);
        assert_eq!(
            parse_retry_after(" 120 ", now),
            Some(Duration::from_secs(120))
        );
        // RFC 9110's example date is 784111777.
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(
            parse_retry_after(
                "Sun, 06 Nov 1994 08:49:37 GMT",
                now - Duration::from_secs(60)
            ),
            Some(Duration::from_secs(60))
        );
        assert_eq!(parse_retry_after("soon", now), None);
        assert_eq!(parse_retry_after("-5", now), None);
    }
}
