//! HTTPS policy hosts: `/.well-known/mta-sts.txt` served per SNI name, with faults.
//!
//! One [`PolicyServer`] listens on one address and serves every host registered in a shared
//! [`PolicyHosts`] table, choosing the host (certificate and answer) by the SNI name of the
//! ClientHello. A ClientHello without SNI or with an unknown name gets no answer: the
//! connection is closed, so the client's handshake fails.
//!
//! The HTTP side is a small hand-written HTTP/1.1 responder, so tests get byte-level faults:
//! a delay before the head, a body trickled byte by byte, bodies framed by `Content-Length`,
//! chunked or by closing the connection, gzip, or raw garbage instead of HTTP.

use std::collections::HashMap;
use std::io::Write;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;

use crate::ca::{CertSpec, TestCa};

/// The path policy hosts serve (RFC 8461 §3.2).
pub const POLICY_PATH: &str = "/.well-known/mta-sts.txt";

/// Largest request head the server reads.
const MAX_REQUEST_HEAD: usize = 16 * 1024;

/// Time limit for the handshake and for reading the request head.
const IO_TIMEOUT: Duration = Duration::from_secs(10);

/// How the response body is delimited.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum BodyFraming {
    /// A `Content-Length` header.
    #[default]
    ContentLength,
    /// `Transfer-Encoding: chunked`.
    Chunked,
    /// Neither: the body ends when the server closes the connection.
    CloseDelimited,
}

/// How a policy host answers `GET /.well-known/mta-sts.txt`. Other paths get a 404.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PolicyResponse {
    /// The status code.
    pub status: u16,
    /// The `Content-Type` header; `None` sends none.
    pub content_type: Option<String>,
    /// The body (before gzip).
    pub body: Vec<u8>,
    /// Extra headers, sent as given (e.g. `Location`).
    pub headers: Vec<(String, String)>,
    /// Compress the body with gzip and send `Content-Encoding: gzip`, whatever the client
    /// asked for.
    pub gzip: bool,
    /// How the body is delimited.
    pub framing: BodyFraming,
    /// Wait this long before sending the response head.
    pub header_delay: Option<Duration>,
    /// Send the body one byte at a time with this pause before each byte.
    pub trickle: Option<Duration>,
    /// Send these bytes instead of an HTTP response (then close).
    pub raw: Option<Vec<u8>>,
}

impl Default for PolicyResponse {
    /// 200, `text/plain`, an empty body.
    fn default() -> Self {
        PolicyResponse {
            status: 200,
            content_type: Some("text/plain".to_string()),
            body: Vec::new(),
            headers: Vec::new(),
            gzip: false,
            framing: BodyFraming::ContentLength,
            header_delay: None,
            trickle: None,
            raw: None,
        }
    }
}

impl PolicyResponse {
    /// 200, `text/plain`, this body.
    pub fn policy(body: impl Into<Vec<u8>>) -> Self {
        PolicyResponse {
            body: body.into(),
            ..Default::default()
        }
    }

    /// This status with a short `text/plain` body.
    pub fn status(status: u16) -> Self {
        let body = if status == 204 || status == 304 {
            Vec::new()
        } else {
            format!("status {status}\n").into_bytes()
        };
        PolicyResponse {
            status,
            body,
            ..Default::default()
        }
    }

    /// A redirect (`301`, `302`, …) to `location`.
    pub fn redirect(status: u16, location: &str) -> Self {
        PolicyResponse::status(status).header("Location", location)
    }

    /// A 200 `text/plain` body of `len` bytes of policy-looking text.
    pub fn oversized(len: usize) -> Self {
        let mut body = b"version: STSv1\r\nmode: testing\r\nmax_age: 86400\r\n".to_vec();
        while body.len() < len {
            body.extend_from_slice(b"mx: filler.example.com\r\n");
        }
        body.truncate(len);
        PolicyResponse::policy(body)
    }

    /// Replaces the `Content-Type` (`None`: no header).
    pub fn content_type(mut self, content_type: Option<&str>) -> Self {
        self.content_type = content_type.map(str::to_string);
        self
    }

    /// Adds a header.
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }

    /// Sends the body gzip-compressed with `Content-Encoding: gzip`.
    pub fn gzip(mut self) -> Self {
        self.gzip = true;
        self
    }

    /// Chooses how the body is delimited.
    pub fn framing(mut self, framing: BodyFraming) -> Self {
        self.framing = framing;
        self
    }

    /// Waits before sending the response head.
    pub fn header_delay(mut self, delay: Duration) -> Self {
        self.header_delay = Some(delay);
        self
    }

    /// Sends the body one byte at a time, pausing before each.
    pub fn trickle(mut self, pause: Duration) -> Self {
        self.trickle = Some(pause);
        self
    }

    /// Sends raw bytes instead of an HTTP response.
    pub fn raw(bytes: impl Into<Vec<u8>>) -> Self {
        PolicyResponse {
            raw: Some(bytes.into()),
            ..Default::default()
        }
    }
}

/// Which TLS versions a policy host offers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum TlsVersions {
    /// TLS 1.2 and 1.3.
    #[default]
    Both,
    /// TLS 1.2 only.
    Tls12Only,
    /// TLS 1.3 only.
    Tls13Only,
}

/// One policy host: its certificate and its answer.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PolicyHostSpec {
    /// The certificate presented for the host's name.
    pub cert: CertSpec,
    /// The answer to `GET /.well-known/mta-sts.txt`.
    pub response: PolicyResponse,
    /// The TLS versions offered.
    pub tls: TlsVersions,
}

impl PolicyHostSpec {
    /// A valid certificate and this answer.
    pub fn new(response: PolicyResponse) -> Self {
        PolicyHostSpec {
            response,
            ..Default::default()
        }
    }

    /// This certificate and answer.
    pub fn with_cert(cert: CertSpec, response: PolicyResponse) -> Self {
        PolicyHostSpec {
            cert,
            response,
            ..Default::default()
        }
    }
}

/// A request a policy host received.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordedRequest {
    /// The SNI name.
    pub sni: String,
    /// The request method.
    pub method: String,
    /// The request target (path).
    pub target: String,
    /// The HTTP version token, e.g. `HTTP/1.1`.
    pub version: String,
    /// The headers, names as sent.
    pub headers: Vec<(String, String)>,
}

impl RecordedRequest {
    /// The first header of this name (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

struct HostEntry {
    spec: PolicyHostSpec,
    config: Arc<rustls::ServerConfig>,
}

/// The table of policy hosts by SNI name, shared by all [`PolicyServer`]s of a TestNet, and
/// the log of requests they received.
#[derive(Default)]
pub struct PolicyHosts {
    hosts: RwLock<HashMap<String, Arc<HostEntry>>>,
    log: Mutex<Vec<RecordedRequest>>,
}

impl PolicyHosts {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    /// Serves `spec` for SNI `host_name` (replacing what was there); the certificate is
    /// issued by `ca` now.
    pub fn set(&self, host_name: &str, spec: PolicyHostSpec, ca: &TestCa) {
        let host_name = host_name.trim_end_matches('.').to_ascii_lowercase();
        let cert = ca.issue(&host_name, &spec.cert);
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let versions: &[&'static rustls::SupportedProtocolVersion] = match spec.tls {
            TlsVersions::Both => &[&rustls::version::TLS13, &rustls::version::TLS12],
            TlsVersions::Tls12Only => &[&rustls::version::TLS12],
            TlsVersions::Tls13Only => &[&rustls::version::TLS13],
        };
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_protocol_versions(versions)
            .expect("aws-lc-rs supports TLS 1.2 and 1.3")
            .with_no_client_auth()
            .with_single_cert(cert.chain.clone(), cert.key())
            .expect("testkit certificate and key match");
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        let entry = Arc::new(HostEntry {
            spec,
            config: Arc::new(config),
        });
        self.hosts
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(host_name, entry);
    }

    /// Stops serving `host_name` (its handshakes fail from now on).
    pub fn remove(&self, host_name: &str) {
        let host_name = host_name.trim_end_matches('.').to_ascii_lowercase();
        self.hosts
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&host_name);
    }

    /// Every request received so far.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.log.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn get(&self, host_name: &str) -> Option<Arc<HostEntry>> {
        let host_name = host_name.trim_end_matches('.').to_ascii_lowercase();
        self.hosts
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(&host_name)
            .cloned()
    }
}

/// An HTTPS listener serving a [`PolicyHosts`] table. Stops (with its connections) when
/// dropped.
pub struct PolicyServer {
    addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl PolicyServer {
    /// Binds `addr` and serves `hosts` there.
    pub async fn start(addr: SocketAddr, hosts: Arc<PolicyHosts>) -> std::io::Result<Self> {
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let task = tokio::spawn(accept_loop(listener, hosts));
        Ok(PolicyServer { addr, task })
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for PolicyServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn accept_loop(listener: TcpListener, hosts: Arc<PolicyHosts>) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((tcp, _)) => {
                    connections.spawn(serve_connection(tcp, hosts.clone()));
                }
                Err(e) => {
                    tracing::debug!(error = %e, "policy host accept failed");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

async fn serve_connection(tcp: TcpStream, hosts: Arc<PolicyHosts>) {
    let acceptor = tokio_rustls::LazyConfigAcceptor::new(rustls::server::Acceptor::default(), tcp);
    let Ok(Ok(start)) = tokio::time::timeout(IO_TIMEOUT, acceptor).await else {
        return;
    };
    let sni = start.client_hello().server_name().map(str::to_string);
    let Some(entry) = sni.as_deref().and_then(|name| hosts.get(name)) else {
        // Unknown or missing SNI: close without a certificate.
        return;
    };
    let sni = sni.unwrap_or_default();
    let Ok(Ok(mut tls)) =
        tokio::time::timeout(IO_TIMEOUT, start.into_stream(entry.config.clone())).await
    else {
        return;
    };
    let Some(request) = read_request_head(&mut tls, &sni).await else {
        return;
    };
    let is_policy = request.method == "GET" && request.target == POLICY_PATH;
    hosts
        .log
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .push(request);
    let response = if is_policy {
        entry.spec.response.clone()
    } else {
        PolicyResponse::status(404)
    };
    let _ = write_response(&mut tls, &response).await;
    let _ = tls.shutdown().await;
}

/// Reads and parses the request head; `None` on timeout, EOF, an over-long head or garbage.
async fn read_request_head<S: AsyncReadExt + Unpin>(
    stream: &mut S,
    sni: &str,
) -> Option<RecordedRequest> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 1024];
    let end = loop {
        if let Some(pos) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break pos;
        }
        if buf.len() > MAX_REQUEST_HEAD {
            return None;
        }
        let n = tokio::time::timeout(IO_TIMEOUT, stream.read(&mut chunk))
            .await
            .ok()?
            .ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = std::str::from_utf8(&buf[..end]).ok()?;
    let mut lines = head.split("\r\n");
    let mut request_line = lines.next()?.split(' ');
    let method = request_line.next()?.to_string();
    let target = request_line.next()?.to_string();
    let version = request_line.next()?.to_string();
    let headers = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(n, v)| (n.trim().to_string(), v.trim().to_string()))
        .collect();
    Some(RecordedRequest {
        sni: sni.to_string(),
        method,
        target,
        version,
        headers,
    })
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        204 => "No Content",
        301 => "Moved Permanently",
        302 => "Found",
        304 => "Not Modified",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        403 => "Forbidden",
        404 => "Not Found",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Status",
    }
}

async fn write_response<S: AsyncWrite + Unpin>(
    stream: &mut S,
    response: &PolicyResponse,
) -> std::io::Result<()> {
    if let Some(delay) = response.header_delay {
        tokio::time::sleep(delay).await;
    }
    if let Some(raw) = &response.raw {
        stream.write_all(raw).await?;
        return stream.flush().await;
    }
    let body = if response.gzip {
        gzip(&response.body)
    } else {
        response.body.clone()
    };
    let mut head = format!(
        "HTTP/1.1 {} {}\r\n",
        response.status,
        reason(response.status)
    );
    if let Some(ct) = &response.content_type {
        head.push_str(&format!("Content-Type: {ct}\r\n"));
    }
    if response.gzip {
        head.push_str("Content-Encoding: gzip\r\n");
    }
    for (name, value) in &response.headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    match response.framing {
        BodyFraming::ContentLength => head.push_str(&format!("Content-Length: {}\r\n", body.len())),
        BodyFraming::Chunked => head.push_str("Transfer-Encoding: chunked\r\n"),
        BodyFraming::CloseDelimited => {}
    }
    head.push_str("Connection: close\r\n\r\n");
    stream.write_all(head.as_bytes()).await?;
    stream.flush().await?;
    let pieces: Vec<&[u8]> = match response.trickle {
        Some(_) => body.chunks(1).collect(),
        None => body.chunks(16 * 1024).collect(),
    };
    for piece in pieces {
        if let Some(pause) = response.trickle {
            tokio::time::sleep(pause).await;
        }
        if response.framing == BodyFraming::Chunked {
            stream
                .write_all(format!("{:x}\r\n", piece.len()).as_bytes())
                .await?;
            stream.write_all(piece).await?;
            stream.write_all(b"\r\n").await?;
        } else {
            stream.write_all(piece).await?;
        }
        stream.flush().await?;
    }
    if response.framing == BodyFraming::Chunked {
        stream.write_all(b"0\r\n\r\n").await?;
    }
    stream.flush().await
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    // Writing to a Vec cannot fail.
    encoder.write_all(data).expect("gzip into memory");
    encoder.finish().expect("gzip into memory")
}
