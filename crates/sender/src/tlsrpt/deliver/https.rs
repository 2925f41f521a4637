//! HTTPS delivery (RFC 8460 §5.4): one POST of the gzip report as `application/tlsrpt+gzip`.
//!
//! The host is resolved once and every address checked: a name with any loopback, private,
//! link-local or otherwise non-public address is refused ([`is_public`]) unless
//! `allow_private_destinations` (a rua is published by whoever owns the recipient domain, so
//! without this check anyone could make the resolver POST into its own network). The request
//! goes to the checked address itself. The certificate is verified against the configured
//! roots. Redirects are not followed (a 3xx is a failure, retried), the answer's body is read
//! to at most `max_response_bytes`, and the whole exchange has one time limit. A 2xx is a
//! delivery.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::Request;
use hyper::header::{CONNECTION, CONTENT_TYPE, HOST, USER_AGENT};
use hyper_util::rt::TokioIo;
use mtasts_net::dns::DnsLookup;
use mtasts_net::public_only::is_public;
use mtasts_proto::alerts::target::WebhookTarget;
use rustls::RootCertStore;
use rustls_pki_types::ServerName;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use super::Attempt;

/// The media type of a compressed report (RFC 8460 §6.5).
pub const CONTENT_TYPE_GZIP: &str = "application/tlsrpt+gzip";

/// How long the answer's body is waited for once its status arrived.
pub const BODY_TIMEOUT: Duration = Duration::from_secs(5);

/// POSTs reports.
pub struct HttpsDelivery {
    dns: Arc<dyn DnsLookup>,
    tls: TlsConnector,
    allow_private: bool,
    timeout: Duration,
    max_response: usize,
}

impl HttpsDelivery {
    /// Resolves with `dns`, trusts `roots`, refuses private addresses unless `allow_private`,
    /// gives each POST `timeout` and reads at most `max_response` bytes of an answer.
    pub fn new(
        dns: Arc<dyn DnsLookup>,
        roots: Arc<RootCertStore>,
        allow_private: bool,
        timeout: Duration,
        max_response: usize,
    ) -> Self {
        let config = rustls::ClientConfig::builder()
            .with_root_certificates(roots)
            .with_no_client_auth();
        HttpsDelivery {
            dns,
            tls: TlsConnector::from(Arc::new(config)),
            allow_private,
            timeout,
            max_response,
        }
    }

    /// One POST of `gz` to `uri`.
    pub async fn post(&self, uri: &str, gz: &[u8]) -> Attempt {
        let target = match WebhookTarget::parse(uri) {
            Ok(t) if t.https => t,
            Ok(_) => return Attempt::refused(format!("{uri}: reports are POSTed over https")),
            Err(e) => return Attempt::refused(format!("{uri}: {e}")),
        };
        // `timeout` bounds everything up to the answer's status; its body gets BODY_TIMEOUT.
        match tokio::time::timeout(self.timeout + BODY_TIMEOUT, self.exchange(&target, gz)).await {
            Ok(attempt) => attempt,
            Err(_) => Attempt::retry(format!(
                "{uri}: no answer within {} s",
                self.timeout.as_secs()
            )),
        }
    }

    async fn addresses(&self, target: &WebhookTarget) -> Result<Vec<IpAddr>, Attempt> {
        let addresses = match target.ip() {
            Some(ip) => vec![ip],
            None => self
                .dns
                .ip(&target.host)
                .await
                .map_err(|e| Attempt::retry(format!("resolving {}: {e}", target.host)))?,
        };
        if !self.allow_private
            && let Some(ip) = addresses.iter().find(|ip| !is_public(**ip))
        {
            return Err(Attempt::refused(format!(
                "{} resolves to {ip}, which is not a public address",
                target.host
            )));
        }
        if addresses.is_empty() {
            return Err(Attempt::retry(format!("{} has no address", target.host)));
        }
        Ok(addresses)
    }

    async fn exchange(&self, target: &WebhookTarget, gz: &[u8]) -> Attempt {
        let addresses = match self.addresses(target).await {
            Ok(a) => a,
            Err(attempt) => return attempt,
        };
        let mut last = String::from("no address to connect to");
        let mut tcp = None;
        for ip in addresses {
            let addr = SocketAddr::new(ip, target.port);
            match TcpStream::connect(addr).await {
                Ok(stream) => {
                    tcp = Some(stream);
                    break;
                }
                Err(e) => last = format!("connecting to {addr}: {e}"),
            }
        }
        let Some(tcp) = tcp else {
            return Attempt::retry(last);
        };
        let request = match Request::post(target.path.as_str())
            .header(HOST, target.authority())
            .header(CONTENT_TYPE, CONTENT_TYPE_GZIP)
            .header(USER_AGENT, concat!("mtasts/", env!("CARGO_PKG_VERSION")))
            .header(CONNECTION, "close")
            .body(Full::new(Bytes::copy_from_slice(gz)))
        {
            Ok(r) => r,
            Err(e) => return Attempt::refused(format!("{target}: building the request: {e}")),
        };
        let name = match target.ip() {
            Some(ip) => ServerName::from(ip),
            None => match ServerName::try_from(target.host.clone()) {
                Ok(n) => n,
                Err(e) => return Attempt::refused(format!("{}: {e}", target.host)),
            },
        };
        let tls = match self.tls.connect(name, tcp).await {
            Ok(t) => t,
            Err(e) => return Attempt::retry(format!("TLS with {}: {e}", target.host)),
        };
        match send(TokioIo::new(tls), request, self.max_response).await {
            Ok(status) if status.is_success() => Attempt::Delivered(format!("{target}: {status}")),
            Ok(status) if status.is_redirection() => Attempt::retry(format!(
                "{target} answered {status}; redirects are not followed"
            )),
            Ok(status) => Attempt::retry(format!("{target} answered {status}")),
            Err(e) => Attempt::retry(format!("{target}: HTTP: {e}")),
        }
    }
}

async fn send<T>(
    io: TokioIo<T>,
    request: Request<Full<Bytes>>,
    max_response: usize,
) -> Result<hyper::StatusCode, hyper::Error>
where
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, connection) = hyper::client::conn::http1::handshake(io).await?;
    let driver = tokio::spawn(connection);
    let outcome = async {
        let response = sender.send_request(request).await?;
        let status = response.status();
        // The answer is read (bounded in size and time) so the receiver is not cut off
        // mid-write; its content does not matter, an oversized one is not read further, and a
        // body that stalls after the status does not turn a delivery into a retry.
        let _ = tokio::time::timeout(
            BODY_TIMEOUT,
            Limited::new(response.into_body(), max_response).collect(),
        )
        .await;
        Ok(status)
    }
    .await;
    driver.abort();
    outcome
}
