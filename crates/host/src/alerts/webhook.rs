//! The webhook edge: one signed JSON POST to a tenant's URL.
//!
//! The host is resolved first and **every** address checked: a name with any loopback,
//! private, link-local or otherwise non-public address is refused
//! ([`mtasts_net::public_only::is_public`]) unless `alert_allow_private_targets` is set (tests).
//! Then the request goes to the checked address itself, so a second lookup cannot swap in
//! another. `https` is required for public targets; plain `http` only where private targets
//! are allowed. Connecting, the TLS handshake and the whole exchange are time-limited, the
//! answer's body is read to at most [`MAX_RESPONSE_BYTES`], and redirects are not followed.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::future::BoxFuture;
use http_body_util::{BodyExt, Full, Limited};
use hyper::Request;
use hyper::header::{CONNECTION, CONTENT_TYPE, HOST, USER_AGENT};
use hyper_util::rt::TokioIo;
use mtasts_net::dns::DnsLookup;
use mtasts_net::public_only::is_public;
use mtasts_proto::alerts::signature::{SIGNATURE_HEADER, TIMESTAMP_HEADER};
use mtasts_proto::alerts::target::WebhookTarget;
use rustls::RootCertStore;
use rustls_pki_types::ServerName;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use super::SendError;

/// The most of a receiver's answer body that is read (and then thrown away).
pub const MAX_RESPONSE_BYTES: usize = 16 * 1024;
/// Time limit of connecting to one address.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Time limit of one whole POST (resolving, connecting, TLS, request and answer).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Sends one webhook notification.
pub trait WebhookSend: Send + Sync {
    /// POSTs `body` (JSON) to `target` with the signature and timestamp headers; `Ok` when
    /// the receiver answered 2xx.
    fn post<'a>(
        &'a self,
        target: &'a WebhookTarget,
        signature: &'a str,
        timestamp: i64,
        body: String,
    ) -> BoxFuture<'a, Result<(), SendError>>;
}

/// [`WebhookSend`] over hyper and rustls.
pub struct HttpWebhook {
    dns: Arc<dyn DnsLookup>,
    tls: TlsConnector,
    allow_private: bool,
}

impl HttpWebhook {
    /// Resolves with `dns`, trusts `roots`, and refuses private targets unless
    /// `allow_private`.
    pub fn new(dns: Arc<dyn DnsLookup>, roots: Arc<RootCertStore>, allow_private: bool) -> Self {
        let config = rustls::ClientConfig::builder()
            .with_root_certificates(roots)
            .with_no_client_auth();
        HttpWebhook {
            dns,
            tls: TlsConnector::from(Arc::new(config)),
            allow_private,
        }
    }

    /// The addresses of `target`, every one checked.
    async fn addresses(&self, target: &WebhookTarget) -> Result<Vec<IpAddr>, SendError> {
        let addresses = match target.ip() {
            Some(ip) => vec![ip],
            None => self
                .dns
                .ip(&target.host)
                .await
                .map_err(|e| SendError::Failed(format!("resolving {}: {e}", target.host)))?,
        };
        if !self.allow_private {
            if !target.https {
                return Err(SendError::Refused(format!("{target}: webhooks use https")));
            }
            if let Some(ip) = addresses.iter().find(|ip| !is_public(**ip)) {
                return Err(SendError::Refused(format!(
                    "{} resolves to {ip}, which is not a public address",
                    target.host
                )));
            }
        }
        if addresses.is_empty() {
            return Err(SendError::Failed(format!("{} has no address", target.host)));
        }
        Ok(addresses)
    }

    async fn exchange(
        &self,
        target: &WebhookTarget,
        signature: &str,
        timestamp: i64,
        body: String,
    ) -> Result<(), SendError> {
        let addresses = self.addresses(target).await?;
        let mut last = None;
        let mut tcp = None;
        for ip in addresses {
            let addr = SocketAddr::new(ip, target.port);
            match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(addr)).await {
                Ok(Ok(stream)) => {
                    tcp = Some(stream);
                    break;
                }
                Ok(Err(e)) => last = Some(format!("connecting to {addr}: {e}")),
                Err(_) => last = Some(format!("connecting to {addr}: timed out")),
            }
        }
        let tcp = tcp.ok_or_else(|| {
            SendError::Failed(last.unwrap_or_else(|| "no address to connect to".into()))
        })?;
        let request = Request::post(target.path.as_str())
            .header(HOST, target.authority())
            .header(CONTENT_TYPE, "application/json")
            .header(USER_AGENT, concat!("mtasts/", env!("CARGO_PKG_VERSION")))
            .header(CONNECTION, "close")
            .header(SIGNATURE_HEADER, signature)
            .header(TIMESTAMP_HEADER, timestamp.to_string())
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| SendError::Failed(format!("building the request: {e}")))?;
        let status = if target.https {
            let name = match target.ip() {
                Some(ip) => ServerName::from(ip),
                None => ServerName::try_from(target.host.clone())
                    .map_err(|e| SendError::Refused(format!("{}: {e}", target.host)))?,
            };
            let tls = self
                .tls
                .connect(name, tcp)
                .await
                .map_err(|e| SendError::Failed(format!("TLS with {}: {e}", target.host)))?;
            send(TokioIo::new(tls), request).await?
        } else {
            send(TokioIo::new(tcp), request).await?
        };
        if status.is_success() {
            Ok(())
        } else {
            Err(SendError::Failed(format!("{target} answered {status}")))
        }
    }
}

impl WebhookSend for HttpWebhook {
    fn post<'a>(
        &'a self,
        target: &'a WebhookTarget,
        signature: &'a str,
        timestamp: i64,
        body: String,
    ) -> BoxFuture<'a, Result<(), SendError>> {
        Box::pin(async move {
            match tokio::time::timeout(
                REQUEST_TIMEOUT,
                self.exchange(target, signature, timestamp, body),
            )
            .await
            {
                Ok(result) => result,
                Err(_) => Err(SendError::Failed(format!(
                    "{target}: no answer within {} s",
                    REQUEST_TIMEOUT.as_secs()
                ))),
            }
        })
    }
}

async fn send<T>(
    io: TokioIo<T>,
    request: Request<Full<Bytes>>,
) -> Result<hyper::StatusCode, SendError>
where
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, connection) = hyper::client::conn::http1::handshake(io)
        .await
        .map_err(|e| SendError::Failed(format!("HTTP: {e}")))?;
    let driver = tokio::spawn(connection);
    let outcome = async {
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| SendError::Failed(format!("HTTP: {e}")))?;
        let status = response.status();
        // The answer is read (bounded) so the receiver is not cut off mid-write; its content
        // does not matter.
        let _ = Limited::new(response.into_body(), MAX_RESPONSE_BYTES)
            .collect()
            .await;
        Ok(status)
    }
    .await;
    driver.abort();
    outcome
}
