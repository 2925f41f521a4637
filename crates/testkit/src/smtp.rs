//! SMTP MX hosts with STARTTLS and faults.
//!
//! An [`MxServer`] listens on one loopback address and speaks enough SMTP for a STARTTLS probe
//! and for real deliveries: a greeting, `EHLO`/`HELO`, `STARTTLS`, `MAIL`, `RCPT`, `DATA`,
//! `NOOP`, `RSET` and `QUIT`, before and after TLS. Every accepted message is recorded as a
//! [`ReceivedMail`], with the TLS version and SNI it arrived under (none for plaintext), and
//! can be read back with [`MxServer::received`] (or `TestNet::received`). Messages, recipient
//! lists, lines and idle times are bounded. [`MxHostSpec`] chooses the certificate, the TLS
//! versions and the faults (refused or missing STARTTLS, bad greetings, silence, endless lines,
//! stalled handshakes).
//!
//! TLS 1.2 and 1.3 are served by rustls. rustls cannot serve TLS 1.0 or 1.1, so for
//! [`MxTls::Tls10Only`] and [`MxTls::Tls11Only`] the server starts a child
//! `openssl s_server -tls1` (or `-tls1_1`) on the same loopback address and, after answering
//! `STARTTLS` with 220, proxies the connection's bytes to it: the client sees a real legacy
//! handshake from a real TLS stack. Such hosts accept no mail after `STARTTLS` (inside TLS
//! they speak `s_server`'s HTTP); in plaintext they accept mail like any other host.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;

use crate::ca::{CertSpec, ServerCert, TestCa};
use dialogue::{Next, Session, dialogue, drain, rejecting, write};
use legacy::LegacyBackend;

/// How one test MX host behaves. `Default` is a good host: a 220 greeting, `EHLO` listing
/// `STARTTLS` (multi-line), TLS 1.2 and 1.3, and a [`CertSpec::Valid`] certificate for its name.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MxHostSpec {
    /// The certificate presented after `STARTTLS`. Default: [`CertSpec::Valid`].
    pub cert: CertSpec,
    /// The TLS versions served. Default: [`MxTls::Modern`] (1.2 and 1.3).
    pub tls: MxTls,
    /// The greeting. Default: [`Greeting::Ready`] (one `220` line).
    pub greeting: Greeting,
    /// Whether the `EHLO` reply lists `STARTTLS` and how the command is answered.
    /// Default: [`Starttls::Offered`].
    pub starttls: Starttls,
    /// What happens once `STARTTLS` was accepted. Default: [`Handshake::Normal`].
    pub handshake: Handshake,
}

/// The TLS versions an MX host serves after `STARTTLS`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum MxTls {
    /// TLS 1.2 and 1.3 (rustls).
    #[default]
    Modern,
    /// TLS 1.2 only (rustls).
    Tls12Only,
    /// TLS 1.3 only (rustls).
    Tls13Only,
    /// TLS 1.0 only, served by a child `openssl s_server -tls1` (C86). Inside TLS it speaks
    /// `s_server -www`'s HTTP, not SMTP: only the handshake is real.
    Tls10Only,
    /// TLS 1.1 only, served by a child `openssl s_server -tls1_1` (C86); as for `Tls10Only`.
    Tls11Only,
}

/// How an MX host greets a new connection.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Greeting {
    /// `220 <host> ESMTP` on one line.
    #[default]
    Ready,
    /// A three-line `220-` greeting.
    MultiLine,
    /// `554` (no SMTP service here); afterwards every command but `QUIT` gets `503`.
    Reject,
    /// A line that is not SMTP (an SSH banner).
    Garbage,
    /// Accepts the connection and never says anything.
    Silent,
    /// Sends a `220` greeting and closes the connection.
    CloseAfterGreeting,
    /// Starts a `220 ` line and never ends it (an endless stream without CRLF).
    EndlessLine,
}

/// Whether `STARTTLS` is offered, and how the command is answered.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Starttls {
    /// Listed in `EHLO`, answered with `220`.
    #[default]
    Offered,
    /// Not listed in `EHLO` (C82); the command gets `502`.
    NotOffered,
    /// Listed in `EHLO`, but the command gets `454 4.7.0 TLS not available`.
    Refused,
}

/// What the server does after answering `STARTTLS` with 220.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Handshake {
    /// Runs the TLS handshake at once.
    #[default]
    Normal,
    /// Waits this long before starting the handshake (the ClientHello sits unanswered).
    Delay(Duration),
    /// Never answers the ClientHello; holds the connection until the client gives up.
    Stall,
}

/// One message an MX host accepted (`DATA` answered with 250).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReceivedMail {
    /// The MX host name the message was delivered to (without a trailing dot).
    pub mx_host: String,
    /// The client's address.
    pub peer: SocketAddr,
    /// The `EHLO`/`HELO` argument of the transaction's session.
    pub helo: String,
    /// The `MAIL FROM` path, without the angle brackets (empty for the null sender).
    pub mail_from: String,
    /// The `RCPT TO` paths, in order, without the angle brackets.
    pub rcpt_to: Vec<String>,
    /// The message as received, dot-unstuffed, without the terminating `.` line.
    pub data: Vec<u8>,
    /// The TLS session the message arrived under; `None` for plaintext.
    pub tls: Option<ReceivedTls>,
}

impl ReceivedMail {
    /// Whether the message arrived after `STARTTLS`.
    pub fn over_tls(&self) -> bool {
        self.tls.is_some()
    }

    /// The message text (lossy UTF-8).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.data).into_owned()
    }
}

/// The TLS session a message arrived under.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReceivedTls {
    /// `TLSv1.3` or `TLSv1.2`.
    pub version: String,
    /// The server name the client sent (SNI), if any.
    pub sni: Option<String>,
    /// The negotiated cipher suite, as rustls names it.
    pub cipher: String,
}

/// The messages one host accepted, bounded in count and total size.
#[derive(Default)]
struct Mailbox {
    mail: Mutex<Vec<ReceivedMail>>,
}

impl Mailbox {
    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<ReceivedMail>> {
        // A poisoned list is still a valid list.
        self.mail.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether one more message of up to `MAX_MESSAGE_BYTES` fits.
    fn has_room(&self) -> bool {
        let mail = self.lock();
        let bytes: usize = mail.iter().map(|m| m.data.len()).sum();
        mail.len() < MAX_STORED_MESSAGES && bytes + MAX_MESSAGE_BYTES <= MAX_STORED_BYTES
    }

    /// Stores `mail` and returns its number (1-based).
    fn store(&self, mail: ReceivedMail) -> usize {
        let mut list = self.lock();
        list.push(mail);
        list.len()
    }
}

/// A running test MX host. Dropping it stops the listener, every connection and the `openssl`
/// child, if any.
pub struct MxServer {
    addr: SocketAddr,
    name: String,
    mailbox: Arc<Mailbox>,
    tasks: JoinSet<()>,
    /// The `openssl s_server` for TLS 1.0/1.1 hosts; stops when dropped.
    _legacy: Option<LegacyBackend>,
}

impl MxServer {
    /// Binds `addr` (port 0 picks a free port) and serves `host_name` as `spec` says, with a
    /// certificate issued by `ca`.
    pub async fn start(
        addr: SocketAddr,
        host_name: &str,
        spec: MxHostSpec,
        ca: &TestCa,
    ) -> std::io::Result<MxServer> {
        let cert = ca.issue(host_name, &spec.cert);
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let mut tasks = JoinSet::new();
        let (tls, legacy) = match spec.tls {
            MxTls::Modern | MxTls::Tls12Only | MxTls::Tls13Only => {
                (TlsBackend::Rustls(rustls_acceptor(&cert, spec.tls)?), None)
            }
            MxTls::Tls10Only | MxTls::Tls11Only => {
                let legacy = LegacyBackend::start(addr, &cert, spec.tls, &mut tasks).await?;
                (TlsBackend::Openssl(legacy.addr), Some(legacy))
            }
        };
        let name = host_name.trim_end_matches('.').to_owned();
        let mailbox = Arc::new(Mailbox::default());
        let host = Arc::new(Host {
            name: name.clone(),
            spec,
            tls,
            mailbox: mailbox.clone(),
        });
        tasks.spawn(accept_loop(listener, host));
        Ok(MxServer {
            addr,
            name,
            mailbox,
            tasks,
            _legacy: legacy,
        })
    }

    /// The address the server listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The host name the server presents (without a trailing dot).
    pub fn host_name(&self) -> &str {
        &self.name
    }

    /// Every message accepted so far, oldest first.
    pub fn received(&self) -> Vec<ReceivedMail> {
        self.mailbox.lock().clone()
    }
}

impl Drop for MxServer {
    fn drop(&mut self) {
        // Aborting the accept loop drops its JoinSet, which aborts every connection task.
        self.tasks.abort_all();
    }
}

impl std::fmt::Debug for MxServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MxServer")
            .field("addr", &self.addr)
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// Everything a connection needs to know.
struct Host {
    name: String,
    spec: MxHostSpec,
    tls: TlsBackend,
    mailbox: Arc<Mailbox>,
}

enum TlsBackend {
    Rustls(TlsAcceptor),
    /// The address of the `openssl s_server` child to proxy to.
    Openssl(SocketAddr),
}

async fn accept_loop(listener: TcpListener, host: Arc<Host>) {
    let permits = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let mut connections = JoinSet::new();
    loop {
        let Ok(permit) = permits.clone().acquire_owned().await else {
            return;
        };
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(error) => {
                tracing::debug!(%error, "test MX accept error");
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let host = host.clone();
        connections.spawn(async move {
            if let Err(error) = serve(stream, peer, &host).await {
                tracing::debug!(%error, host = %host.name, "test MX connection ended");
            }
            drop(permit);
        });
        // Reap finished connections so the set does not grow without bound.
        while connections.try_join_next().is_some() {}
    }
}

/// One SMTP connection: greeting, plaintext dialogue, then TLS and the dialogue again.
async fn serve(stream: TcpStream, peer: SocketAddr, host: &Host) -> std::io::Result<()> {
    let mut stream = BufReader::new(stream);
    let name = &host.name;
    match host.spec.greeting {
        Greeting::Ready => {
            write(&mut stream, &format!("220 {name} ESMTP mtasts test MX\r\n")).await?
        }
        Greeting::MultiLine => {
            let text = format!(
                "220-{name} ESMTP mtasts test MX\r\n220-No UCE, no UBE.\r\n220 {name} ready\r\n"
            );
            write(&mut stream, &text).await?;
        }
        Greeting::Reject => {
            write(
                &mut stream,
                &format!("554 5.3.2 {name} no SMTP service here\r\n"),
            )
            .await?;
            return rejecting(stream).await;
        }
        Greeting::Garbage => {
            write(&mut stream, "SSH-2.0-OpenSSH_9.6p1 Ubuntu-3ubuntu13\r\n").await?;
            return drain(stream).await;
        }
        Greeting::Silent => return drain(stream).await,
        Greeting::CloseAfterGreeting => {
            write(&mut stream, &format!("220 {name} ESMTP mtasts test MX\r\n")).await?;
            return stream.into_inner().shutdown().await;
        }
        Greeting::EndlessLine => {
            write(&mut stream, "220 ").await?;
            let chunk = vec![b'x'; 8192];
            // Ends when the client closes the connection (the write fails) or the server is
            // dropped; a client that stops reading blocks the write, not the test.
            loop {
                stream.write_all(&chunk).await?;
            }
        }
    }
    let mut session = Session::new(host, peer, None);
    match dialogue(&mut stream, &mut session).await? {
        Next::Close => return Ok(()),
        Next::StartTls => {}
    }
    // Bytes the client pipelined after STARTTLS are discarded, as a careful server must.
    let tcp = stream.into_inner();
    match host.spec.handshake {
        Handshake::Normal => {}
        Handshake::Delay(delay) => tokio::time::sleep(delay).await,
        Handshake::Stall => return drain(BufReader::new(tcp)).await,
    }
    match &host.tls {
        TlsBackend::Rustls(acceptor) => {
            let tls = tokio::time::timeout(IDLE_TIMEOUT, acceptor.accept(tcp))
                .await
                .map_err(|_| {
                    std::io::Error::new(std::io::ErrorKind::TimedOut, "TLS handshake")
                })??;
            // RFC 3207 §4.2: the client starts over with EHLO; nothing of the plaintext
            // session is kept.
            let mut session = Session::new(host, peer, Some(session_facts(tls.get_ref().1)));
            let mut tls = BufReader::new(tls);
            dialogue(&mut tls, &mut session).await?;
            tls.into_inner().shutdown().await
        }
        TlsBackend::Openssl(backend) => {
            let mut tcp = tcp;
            let mut upstream = TcpStream::connect(backend).await?;
            tokio::io::copy_bidirectional(&mut tcp, &mut upstream)
                .await
                .map(|_| ())
        }
    }
}

/// What a finished rustls handshake negotiated.
fn session_facts(conn: &rustls::ServerConnection) -> ReceivedTls {
    let version = match conn.protocol_version() {
        Some(rustls::ProtocolVersion::TLSv1_3) => "TLSv1.3".to_owned(),
        Some(rustls::ProtocolVersion::TLSv1_2) => "TLSv1.2".to_owned(),
        other => format!("{other:?}"),
    };
    ReceivedTls {
        version,
        sni: conn.server_name().map(str::to_owned),
        cipher: conn
            .negotiated_cipher_suite()
            .map(|suite| format!("{:?}", suite.suite()))
            .unwrap_or_default(),
    }
}

fn rustls_acceptor(cert: &ServerCert, tls: MxTls) -> std::io::Result<TlsAcceptor> {
    let versions: &[&'static rustls::SupportedProtocolVersion] = match tls {
        MxTls::Tls12Only => &[&rustls::version::TLS12],
        MxTls::Tls13Only => &[&rustls::version::TLS13],
        _ => &[&rustls::version::TLS13, &rustls::version::TLS12],
    };
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)
        .and_then(|builder| {
            builder
                .with_no_client_auth()
                .with_single_cert(cert.chain.clone(), cert.key())
        })
        .map_err(std::io::Error::other)?;
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// Commands longer than this (with CRLF) end the connection; RFC 5321 allows 512.
const MAX_COMMAND_LINE: usize = 1024;
/// How long a connection may sit idle before the server gives up on it.
const IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// Connections served at once; further clients wait in the kernel backlog.
const MAX_CONNECTIONS: usize = 64;
/// The largest message accepted (also announced as `SIZE`).
const MAX_MESSAGE_BYTES: usize = 1024 * 1024;
/// How much of a `DATA` line is read at once (longer lines are read in pieces).
const DATA_CHUNK: usize = 8192;
/// How long a whole `DATA` phase may take.
const DATA_TIMEOUT: Duration = Duration::from_secs(120);
/// Recipients per transaction.
const MAX_RECIPIENTS: usize = 100;
/// Messages one host keeps.
const MAX_STORED_MESSAGES: usize = 256;
/// Bytes of messages one host keeps.
const MAX_STORED_BYTES: usize = 64 * 1024 * 1024;

mod dialogue;
mod legacy;
#[cfg(test)]
mod tests;
