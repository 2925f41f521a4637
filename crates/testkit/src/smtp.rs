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
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::process::{Child, Command};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;

use crate::ca::{CertSpec, ServerCert, TestCa};

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

/// What the dialogue ended with.
enum Next {
    Close,
    StartTls,
}

/// The state of one SMTP session (plaintext, or inside TLS).
struct Session<'a> {
    host: &'a Host,
    peer: SocketAddr,
    tls: Option<ReceivedTls>,
    /// The `EHLO`/`HELO` argument, once greeted.
    helo: Option<String>,
    /// The open transaction's `MAIL FROM` path.
    mail_from: Option<String>,
    rcpt_to: Vec<String>,
}

impl<'a> Session<'a> {
    fn new(host: &'a Host, peer: SocketAddr, tls: Option<ReceivedTls>) -> Self {
        Session {
            host,
            peer,
            tls,
            helo: None,
            mail_from: None,
            rcpt_to: Vec::new(),
        }
    }

    fn reset(&mut self) {
        self.mail_from = None;
        self.rcpt_to.clear();
    }

    fn mail(&mut self, args: &str) -> String {
        if self.helo.is_none() {
            return "503 5.5.1 send EHLO or HELO first\r\n".to_owned();
        }
        if self.mail_from.is_some() {
            return "503 5.5.1 nested MAIL command\r\n".to_owned();
        }
        let Some((path, params)) = parse_path(args, "FROM:") else {
            return "501 5.5.4 syntax: MAIL FROM:<address>\r\n".to_owned();
        };
        let declared_size = params.split_ascii_whitespace().find_map(|param| {
            let (key, value) = param.split_once('=')?;
            key.eq_ignore_ascii_case("SIZE")
                .then(|| value.parse::<u64>().ok())
                .flatten()
        });
        if declared_size.is_some_and(|size| size > MAX_MESSAGE_BYTES as u64) {
            return "552 5.3.4 message size exceeds fixed limit\r\n".to_owned();
        }
        self.mail_from = Some(path.to_owned());
        "250 2.1.0 OK\r\n".to_owned()
    }

    fn rcpt(&mut self, args: &str) -> String {
        if self.mail_from.is_none() {
            return "503 5.5.1 need MAIL command\r\n".to_owned();
        }
        let Some((path, _)) = parse_path(args, "TO:").filter(|(path, _)| !path.is_empty()) else {
            return "501 5.5.4 syntax: RCPT TO:<address>\r\n".to_owned();
        };
        if self.rcpt_to.len() >= MAX_RECIPIENTS {
            return "452 4.5.3 too many recipients\r\n".to_owned();
        }
        self.rcpt_to.push(path.to_owned());
        "250 2.1.5 OK\r\n".to_owned()
    }

    /// Answers `DATA`; reads and stores the message when the transaction is complete.
    async fn data<S>(&mut self, stream: &mut BufReader<S>) -> std::io::Result<String>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        if self.mail_from.is_none() {
            return Ok("503 5.5.1 need MAIL command\r\n".to_owned());
        }
        if self.rcpt_to.is_empty() {
            return Ok("554 5.5.1 no valid recipients\r\n".to_owned());
        }
        if !self.host.mailbox.has_room() {
            self.reset();
            return Ok("452 4.3.1 insufficient system storage\r\n".to_owned());
        }
        write(stream, "354 End data with <CR><LF>.<CR><LF>\r\n").await?;
        let body = tokio::time::timeout(DATA_TIMEOUT, read_data(stream))
            .await
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "DATA"))??;
        let mail_from = self.mail_from.take().unwrap_or_default();
        let rcpt_to = std::mem::take(&mut self.rcpt_to);
        let Some(data) = body else {
            return Ok("552 5.3.4 message too big\r\n".to_owned());
        };
        let number = self.host.mailbox.store(ReceivedMail {
            mx_host: self.host.name.clone(),
            peer: self.peer,
            helo: self.helo.clone().unwrap_or_default(),
            mail_from,
            rcpt_to,
            data,
            tls: self.tls.clone(),
        });
        Ok(format!("250 2.0.0 OK: queued as {number}\r\n"))
    }
}

/// Splits `FROM:<path> params` (keyword case-insensitive, spaces allowed after the colon) into
/// the path without brackets and the parameters.
fn parse_path<'a>(args: &'a str, keyword: &str) -> Option<(&'a str, &'a str)> {
    let args = args.trim_start();
    let head = args.get(..keyword.len())?;
    if !head.eq_ignore_ascii_case(keyword) {
        return None;
    }
    let rest = args[keyword.len()..].trim_start().strip_prefix('<')?;
    let end = rest.find('>')?;
    Some((&rest[..end], rest[end + 1..].trim()))
}

/// Reads a `DATA` body up to the line holding a single dot, undoing dot-stuffing. `Ok(None)`:
/// the body exceeded `MAX_MESSAGE_BYTES` (it is still read to its end, then dropped).
async fn read_data<S: AsyncRead + Unpin>(
    stream: &mut BufReader<S>,
) -> std::io::Result<Option<Vec<u8>>> {
    let mut body = Vec::new();
    let mut too_big = false;
    let mut at_line_start = true;
    let mut chunk = Vec::new();
    loop {
        chunk.clear();
        let mut limited = (&mut *stream).take(DATA_CHUNK as u64);
        let n = tokio::time::timeout(IDLE_TIMEOUT, limited.read_until(b'\n', &mut chunk))
            .await
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "DATA idle"))??;
        if n == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "end of input inside DATA",
            ));
        }
        let mut piece = &chunk[..];
        if at_line_start {
            if piece == b".\r\n" || piece == b".\n" {
                return Ok((!too_big).then_some(body));
            }
            if piece.first() == Some(&b'.') {
                piece = &piece[1..];
            }
        }
        at_line_start = chunk.last() == Some(&b'\n');
        if too_big || body.len() + piece.len() > MAX_MESSAGE_BYTES {
            too_big = true;
            body = Vec::new();
        } else {
            body.extend_from_slice(piece);
        }
    }
}

/// Answers commands until `QUIT`, end of input, or (before TLS) an accepted `STARTTLS`.
async fn dialogue<S>(stream: &mut BufReader<S>, session: &mut Session<'_>) -> std::io::Result<Next>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let name = session.host.name.clone();
    let starttls = session.host.spec.starttls;
    let tls = session.tls.is_some();
    while let Some(line) = read_command(stream).await? {
        let (verb, args) = line.split_once(' ').unwrap_or((line.as_str(), ""));
        let verb = verb.to_ascii_uppercase();
        let reply = match verb.as_str() {
            "EHLO" | "HELO" => {
                session.reset();
                session.helo = Some(args.trim().to_owned());
                if verb == "EHLO" {
                    ehlo_reply(&name, starttls != Starttls::NotOffered && !tls)
                } else {
                    format!("250 {name}\r\n")
                }
            }
            "STARTTLS" if tls => "503 5.5.1 TLS already active\r\n".to_owned(),
            "STARTTLS" => match starttls {
                Starttls::Offered => {
                    write(stream, "220 2.0.0 Ready to start TLS\r\n").await?;
                    return Ok(Next::StartTls);
                }
                Starttls::NotOffered => "502 5.5.1 STARTTLS not implemented\r\n".to_owned(),
                Starttls::Refused => {
                    "454 4.7.0 TLS not available due to temporary reason\r\n".to_owned()
                }
            },
            "MAIL" => session.mail(args),
            "RCPT" => session.rcpt(args),
            "DATA" => session.data(stream).await?,
            "RSET" => {
                session.reset();
                "250 2.0.0 OK\r\n".to_owned()
            }
            "NOOP" => "250 2.0.0 OK\r\n".to_owned(),
            "QUIT" => {
                write(stream, &format!("221 2.0.0 {name} closing connection\r\n")).await?;
                return Ok(Next::Close);
            }
            "VRFY" | "EXPN" => "502 5.5.1 not implemented\r\n".to_owned(),
            _ => "500 5.5.2 command not recognized\r\n".to_owned(),
        };
        write(stream, &reply).await?;
    }
    Ok(Next::Close)
}

fn ehlo_reply(name: &str, starttls: bool) -> String {
    let size = format!("SIZE {MAX_MESSAGE_BYTES}");
    let mut keywords = vec!["PIPELINING", &size, "8BITMIME", "ENHANCEDSTATUSCODES"];
    if starttls {
        keywords.insert(2, "STARTTLS");
    }
    let mut reply = format!("250-{name} greets you\r\n");
    for (i, keyword) in keywords.iter().enumerate() {
        let sep = if i + 1 == keywords.len() { ' ' } else { '-' };
        reply.push_str(&format!("250{sep}{keyword}\r\n"));
    }
    reply
}

/// After a 554 greeting: `QUIT` gets 221, everything else 503 (RFC 5321 §3.1).
async fn rejecting(mut stream: BufReader<TcpStream>) -> std::io::Result<()> {
    while let Some(line) = read_command(&mut stream).await? {
        if line.trim().eq_ignore_ascii_case("QUIT") {
            return write(&mut stream, "221 2.0.0 bye\r\n").await;
        }
        write(&mut stream, "503 5.5.1 no SMTP service here\r\n").await?;
    }
    Ok(())
}

/// Reads and discards input until the client closes (or goes idle for too long).
async fn drain<S: AsyncRead + Unpin>(mut stream: S) -> std::io::Result<()> {
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout(IDLE_TIMEOUT, stream.read(&mut buf)).await {
            Ok(Ok(0)) | Err(_) => return Ok(()),
            Ok(Ok(_)) => {}
            Ok(Err(error)) => return Err(error),
        }
    }
}

/// One command line, without its line ending; `None` at end of input or after an idle timeout.
/// Over-long lines are an error.
async fn read_command<S: AsyncRead + Unpin>(
    stream: &mut BufReader<S>,
) -> std::io::Result<Option<String>> {
    let mut line = Vec::new();
    let mut limited = (&mut *stream).take(MAX_COMMAND_LINE as u64);
    let n = match tokio::time::timeout(IDLE_TIMEOUT, limited.read_until(b'\n', &mut line)).await {
        Ok(result) => result?,
        Err(_) => return Ok(None),
    };
    if n == 0 {
        return Ok(None);
    }
    if line.last() != Some(&b'\n') {
        let error = if n >= MAX_COMMAND_LINE {
            "command line too long"
        } else {
            "unterminated line"
        };
        return Err(std::io::Error::new(std::io::ErrorKind::InvalidData, error));
    }
    Ok(Some(String::from_utf8_lossy(&line).trim_end().to_owned()))
}

async fn write<S: AsyncWrite + Unpin>(stream: &mut S, text: &str) -> std::io::Result<()> {
    stream.write_all(text.as_bytes()).await?;
    stream.flush().await
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

/// A child `openssl s_server` speaking only TLS 1.0 or 1.1, under a watchdog shell: dropping
/// `_watchdog` closes the shell's stdin, and the shell then kills openssl.
struct LegacyBackend {
    addr: SocketAddr,
    _watchdog: Child,
    /// The certificate and key files openssl reads.
    _dir: tempfile::TempDir,
}

impl LegacyBackend {
    async fn start(
        front: SocketAddr,
        cert: &ServerCert,
        tls: MxTls,
        tasks: &mut JoinSet<()>,
    ) -> std::io::Result<LegacyBackend> {
        let dir = tempfile::tempdir()?;
        let mut leaf_pem = String::new();
        let mut chain_pem = String::new();
        for (i, der) in cert.chain.iter().enumerate() {
            let one = ServerCert {
                chain: vec![der.clone()],
                key_der: Vec::new(),
            }
            .chain_pem();
            if i == 0 {
                leaf_pem = one
            } else {
                chain_pem.push_str(&one)
            }
        }
        let leaf = dir.path().join("cert.pem");
        let key = dir.path().join("key.pem");
        std::fs::write(&leaf, leaf_pem)?;
        std::fs::write(&key, cert.key_pem())?;
        let version = if tls == MxTls::Tls10Only {
            "-tls1"
        } else {
            "-tls1_1"
        };
        // `sh` runs openssl in the background and kills it once its own stdin (a pipe from us)
        // closes: when the MxServer is dropped, and also when the test process dies abruptly,
        // so no TLS 1.0 server outlives its test.
        let mut command = Command::new("/bin/sh");
        command
            .arg("-c")
            .arg(WATCHDOG)
            .arg(OPENSSL)
            .arg("s_server")
            .arg(version)
            .args(["-cipher", "DEFAULT@SECLEVEL=0", "-www", "-accept"])
            .arg(SocketAddr::new(front.ip(), 0).to_string())
            .arg("-cert")
            .arg(&leaf)
            .arg("-key")
            .arg(&key);
        if !chain_pem.is_empty() {
            let chain = dir.path().join("chain.pem");
            std::fs::write(&chain, chain_pem)?;
            command.arg("-cert_chain").arg(chain);
        }
        command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        let mut child = command.spawn()?;
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| std::io::Error::other("openssl s_server has no stdout"))?;
        let mut lines = BufReader::new(stdout).lines();
        // s_server prints `ACCEPT <ip>:<port>` once it listens.
        let addr = tokio::time::timeout(OPENSSL_STARTUP, async {
            while let Some(line) = lines.next_line().await? {
                if let Some(addr) = line
                    .strip_prefix("ACCEPT ")
                    .and_then(|a| a.trim().parse().ok())
                {
                    return Ok(addr);
                }
            }
            Err(std::io::Error::other(
                "openssl s_server exited before listening",
            ))
        })
        .await
        .map_err(|_| {
            std::io::Error::new(std::io::ErrorKind::TimedOut, "openssl s_server start")
        })??;
        // Keep draining its output so it never blocks on a full pipe.
        tasks.spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Ok(LegacyBackend {
            addr,
            _watchdog: child,
            _dir: dir,
        })
    }
}

/// The OpenSSL command-line tool used for TLS 1.0/1.1.
const OPENSSL: &str = "/usr/bin/openssl";
/// Runs `$0 "$@"` (openssl) until the shell's stdin closes, then stops it.
const WATCHDOG: &str =
    r#""$0" "$@" </dev/null & pid=$!; cat >/dev/null; kill "$pid" 2>/dev/null; wait"#;
/// How long the `openssl` child may take to start listening.
const OPENSSL_STARTUP: Duration = Duration::from_secs(10);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ehlo_reply_is_multi_line_with_starttls_when_offered() {
        let reply = ehlo_reply("mx.example.test", true);
        assert!(reply.starts_with("250-mx.example.test"));
        assert!(reply.contains("250-STARTTLS\r\n"));
        assert!(reply.ends_with("250 ENHANCEDSTATUSCODES\r\n"));
        assert!(!ehlo_reply("mx.example.test", false).contains("STARTTLS"));
    }

    /// Runs `openssl s_client -starttls smtp` against `spec` and returns its brief output.
    async fn s_client(spec: MxHostSpec, flags: &[&str]) -> String {
        let ca = TestCa::new();
        let addr: SocketAddr = "127.0.0.1:0".parse().unwrap();
        let server = MxServer::start(addr, "mx.example.test", spec, &ca)
            .await
            .unwrap();
        let output = Command::new(OPENSSL)
            .args(["s_client", "-brief", "-starttls", "smtp", "-connect"])
            .arg(server.addr().to_string())
            .args(["-cipher", "DEFAULT@SECLEVEL=0"])
            .args(flags)
            .stdin(Stdio::null())
            .output();
        let output = tokio::time::timeout(Duration::from_secs(20), output)
            .await
            .unwrap()
            .unwrap();
        String::from_utf8_lossy(&output.stderr).into_owned()
            + &String::from_utf8_lossy(&output.stdout)
    }

    #[tokio::test]
    async fn modern_host_negotiates_tls13() {
        let out = s_client(MxHostSpec::default(), &[]).await;
        assert!(out.contains("Protocol version: TLSv1.3"), "{out}");
    }

    #[tokio::test]
    async fn tls12_only_host_negotiates_tls12() {
        let spec = MxHostSpec {
            tls: MxTls::Tls12Only,
            ..Default::default()
        };
        let out = s_client(spec, &[]).await;
        assert!(out.contains("Protocol version: TLSv1.2"), "{out}");
    }

    #[tokio::test]
    async fn openssl_backend_stops_with_the_server() {
        let ca = TestCa::new();
        let spec = MxHostSpec {
            tls: MxTls::Tls10Only,
            ..Default::default()
        };
        let addr: SocketAddr = "127.0.0.1:0".parse().unwrap();
        let server = MxServer::start(addr, "mx.example.test", spec, &ca)
            .await
            .unwrap();
        let backend = server._legacy.as_ref().unwrap().addr;
        TcpStream::connect(backend).await.unwrap();
        drop(server);
        for _ in 0..100 {
            if TcpStream::connect(backend).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("openssl s_server still listens on {backend}");
    }

    #[tokio::test]
    async fn legacy_hosts_negotiate_tls10_and_tls11_through_openssl() {
        let spec = MxHostSpec {
            tls: MxTls::Tls10Only,
            ..Default::default()
        };
        let out = s_client(spec, &["-tls1"]).await;
        assert!(out.contains("Protocol version: TLSv1\n"), "{out}");
        let spec = MxHostSpec {
            tls: MxTls::Tls11Only,
            ..Default::default()
        };
        let out = s_client(spec, &["-tls1_1"]).await;
        assert!(out.contains("Protocol version: TLSv1.1"), "{out}");
    }

    /// A minimal SMTP client for the mail tests.
    struct Client<S> {
        stream: BufReader<S>,
    }

    impl<S: AsyncRead + AsyncWrite + Unpin> Client<S> {
        /// Reads one whole (possibly multi-line) reply.
        async fn reply(&mut self) -> String {
            let mut text = String::new();
            loop {
                let mut line = String::new();
                let n =
                    tokio::time::timeout(Duration::from_secs(10), self.stream.read_line(&mut line))
                        .await
                        .expect("reply in time")
                        .expect("read reply");
                assert!(n > 0, "connection closed after {text:?}");
                text.push_str(&line);
                if line.as_bytes().get(3) == Some(&b' ') {
                    return text;
                }
            }
        }

        async fn send(&mut self, text: &str) {
            write(self.stream.get_mut(), text).await.expect("send");
        }

        /// Sends one command line and returns the reply.
        async fn cmd(&mut self, line: &str) -> String {
            self.send(&format!("{line}\r\n")).await;
            self.reply().await
        }

        /// Sends each command in turn and checks that its reply starts with the given code
        /// and a space: an SMTP dialogue as a table, one row per exchange.
        async fn dialogue(&mut self, steps: &[(&str, &str)]) {
            for (line, code) in steps {
                let reply = self.cmd(line).await;
                assert!(
                    reply.starts_with(&format!("{code} ")),
                    "{line:?}: expected {code}, got {reply:?}"
                );
            }
        }
    }

    async fn connect(server: &MxServer) -> Client<TcpStream> {
        let tcp = TcpStream::connect(server.addr()).await.unwrap();
        let mut client = Client {
            stream: BufReader::new(tcp),
        };
        assert!(client.reply().await.starts_with("220 "));
        client
    }

    async fn start(spec: MxHostSpec) -> (TestCa, MxServer) {
        let ca = TestCa::new();
        let addr: SocketAddr = "127.0.0.1:0".parse().unwrap();
        let server = MxServer::start(addr, "mx.example.test", spec, &ca)
            .await
            .unwrap();
        (ca, server)
    }

    #[tokio::test]
    async fn plaintext_delivery_is_recorded_without_tls() {
        let (_ca, server) = start(MxHostSpec::default()).await;
        let mut c = connect(&server).await;
        assert!(
            c.cmd("EHLO client.test")
                .await
                .contains("250 ENHANCEDSTATUSCODES")
        );
        c.dialogue(&[
            ("MAIL FROM:<a@client.test> SIZE=100 BODY=8BITMIME", "250"),
            ("RCPT TO:<b@example.test>", "250"),
            ("rcpt to: <c@example.test>", "250"),
            ("DATA", "354"),
            ("Subject: hi\r\n\r\n..leading dot\r\nbody\r\n.", "250 2.0.0"),
            ("QUIT", "221"),
        ])
        .await;
        let mail = server.received();
        assert_eq!(mail.len(), 1);
        let m = &mail[0];
        assert_eq!(m.mx_host, "mx.example.test");
        assert_eq!(m.helo, "client.test");
        assert_eq!(m.mail_from, "a@client.test");
        assert_eq!(m.rcpt_to, ["b@example.test", "c@example.test"]);
        assert_eq!(m.text(), "Subject: hi\r\n\r\n.leading dot\r\nbody\r\n");
        assert!(!m.over_tls());
    }

    #[tokio::test]
    async fn pipelined_transaction_and_null_sender() {
        let (_ca, server) = start(MxHostSpec::default()).await;
        let mut c = connect(&server).await;
        c.cmd("EHLO client.test").await;
        c.send("MAIL FROM:<>\r\nRCPT TO:<b@example.test>\r\nDATA\r\n")
            .await;
        assert!(c.reply().await.starts_with("250 "));
        assert!(c.reply().await.starts_with("250 "));
        assert!(c.reply().await.starts_with("354 "));
        c.send("x\r\n.\r\nQUIT\r\n").await;
        assert!(c.reply().await.starts_with("250 "));
        assert!(c.reply().await.starts_with("221 "));
        let mail = server.received();
        assert_eq!(mail.len(), 1);
        assert_eq!(mail[0].mail_from, "");
    }

    #[tokio::test]
    async fn commands_out_of_order_are_refused() {
        let (_ca, server) = start(MxHostSpec::default()).await;
        let mut c = connect(&server).await;
        c.dialogue(&[("MAIL FROM:<a@client.test>", "503")]).await;
        c.cmd("HELO client.test").await;
        c.dialogue(&[
            ("RCPT TO:<b@example.test>", "503"),
            ("DATA", "503"),
            ("MAIL FROM:a@client.test", "501"),
            ("MAIL FROM:<a@client.test>", "250"),
            ("MAIL FROM:<a@client.test>", "503"),
            ("RCPT TO:<>", "501"),
            ("DATA", "554"),
            ("RSET", "250"),
            ("RCPT TO:<b@example.test>", "503"),
            ("VRFY b", "502"),
        ])
        .await;
        assert!(server.received().is_empty());
    }

    #[tokio::test]
    async fn oversized_messages_are_refused() {
        let (_ca, server) = start(MxHostSpec::default()).await;
        let mut c = connect(&server).await;
        c.cmd("EHLO client.test").await;
        let too_big = format!("MAIL FROM:<a@client.test> SIZE={}", MAX_MESSAGE_BYTES + 1);
        assert!(c.cmd(&too_big).await.starts_with("552 "));
        assert!(c.cmd("MAIL FROM:<a@client.test>").await.starts_with("250 "));
        c.cmd("RCPT TO:<b@example.test>").await;
        assert!(c.cmd("DATA").await.starts_with("354 "));
        // One long line, sent in pieces, then the end of data.
        let piece = "y".repeat(64 * 1024);
        for _ in 0..(MAX_MESSAGE_BYTES / piece.len() + 1) {
            c.send(&piece).await;
        }
        assert!(c.cmd("\r\n.").await.starts_with("552 "));
        // The session goes on.
        assert!(c.cmd("NOOP").await.starts_with("250 "));
        assert!(server.received().is_empty());
    }

    #[tokio::test]
    async fn host_without_starttls_accepts_plaintext_mail() {
        let spec = MxHostSpec {
            starttls: Starttls::NotOffered,
            ..Default::default()
        };
        let (_ca, server) = start(spec).await;
        let mut c = connect(&server).await;
        assert!(!c.cmd("EHLO client.test").await.contains("STARTTLS"));
        c.cmd("MAIL FROM:<a@client.test>").await;
        c.cmd("RCPT TO:<b@example.test>").await;
        c.cmd("DATA").await;
        assert!(c.cmd("hello\r\n.").await.starts_with("250 "));
        let mail = server.received();
        assert_eq!(mail.len(), 1);
        assert_eq!(mail[0].tls, None);
    }

    #[tokio::test]
    async fn delivery_after_starttls_records_version_and_sni() {
        let (ca, server) = start(MxHostSpec::default()).await;
        let mut c = connect(&server).await;
        c.cmd("EHLO client.test").await;
        // Begun in plaintext, abandoned by STARTTLS: nothing of it survives.
        c.cmd("MAIL FROM:<early@client.test>").await;
        assert!(c.cmd("STARTTLS").await.starts_with("220 "));
        let config = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::aws_lc_rs::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(ca.root_store())
        .with_no_client_auth();
        let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
        let name = rustls_pki_types::ServerName::try_from("mx.example.test").unwrap();
        let tls = connector
            .connect(name, c.stream.into_inner())
            .await
            .unwrap();
        let mut c = Client {
            stream: BufReader::new(tls),
        };
        c.dialogue(&[("MAIL FROM:<a@client.test>", "503")]).await;
        let ehlo = c.cmd("EHLO client.test").await;
        assert!(!ehlo.contains("STARTTLS"), "{ehlo}");
        c.dialogue(&[("STARTTLS", "503"), ("MAIL FROM:<a@client.test>", "250")])
            .await;
        c.cmd("RCPT TO:<b@example.test>").await;
        c.cmd("DATA").await;
        assert!(c.cmd("secret\r\n.").await.starts_with("250 "));
        c.cmd("QUIT").await;
        let mail = server.received();
        assert_eq!(mail.len(), 1);
        let tls = mail[0].tls.as_ref().unwrap();
        assert_eq!(tls.version, "TLSv1.3");
        assert_eq!(tls.sni.as_deref(), Some("mx.example.test"));
        assert!(!tls.cipher.is_empty());
        assert_eq!(mail[0].mail_from, "a@client.test");
    }
}
