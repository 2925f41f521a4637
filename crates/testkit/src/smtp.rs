//! SMTP MX hosts with STARTTLS and faults.
//!
//! An [`MxServer`] listens on one loopback address and speaks enough SMTP for a STARTTLS probe:
//! a greeting, `EHLO`/`HELO`, `STARTTLS`, `NOOP`, `RSET` and `QUIT`, before and after TLS. It
//! does not accept mail. [`MxHostSpec`] chooses the certificate, the TLS versions and the faults
//! (refused or missing STARTTLS, bad greetings, silence, endless lines, stalled handshakes).
//!
//! TLS 1.2 and 1.3 are served by rustls. rustls cannot serve TLS 1.0 or 1.1, so for
//! [`MxTls::Tls10Only`] and [`MxTls::Tls11Only`] the server starts a child
//! `openssl s_server -tls1` (or `-tls1_1`) on the same loopback address and, after answering
//! `STARTTLS` with 220, proxies the connection's bytes to it: the client sees a real legacy
//! handshake from a real TLS stack.

use std::net::SocketAddr;
use std::process::Stdio;
use std::sync::Arc;
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

/// A running test MX host. Dropping it stops the listener, every connection and the `openssl`
/// child, if any.
pub struct MxServer {
    addr: SocketAddr,
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
        let host = Arc::new(Host {
            name: host_name.trim_end_matches('.').to_owned(),
            spec,
            tls,
        });
        tasks.spawn(accept_loop(listener, host));
        Ok(MxServer {
            addr,
            tasks,
            _legacy: legacy,
        })
    }

    /// The address the server listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
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
            .finish_non_exhaustive()
    }
}

/// Everything a connection needs to know.
struct Host {
    name: String,
    spec: MxHostSpec,
    tls: TlsBackend,
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
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(error) => {
                tracing::debug!(%error, "test MX accept error");
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let host = host.clone();
        connections.spawn(async move {
            if let Err(error) = serve(stream, &host).await {
                tracing::debug!(%error, host = %host.name, "test MX connection ended");
            }
            drop(permit);
        });
        // Reap finished connections so the set does not grow without bound.
        while connections.try_join_next().is_some() {}
    }
}

/// One SMTP connection: greeting, plaintext dialogue, then TLS and the dialogue again.
async fn serve(stream: TcpStream, host: &Host) -> std::io::Result<()> {
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
    match dialogue(&mut stream, name, host.spec.starttls, false).await? {
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
            let mut tls = BufReader::new(tls);
            dialogue(&mut tls, name, host.spec.starttls, true).await?;
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

/// What the dialogue ended with.
enum Next {
    Close,
    StartTls,
}

/// Answers commands until `QUIT`, end of input, or (before TLS) an accepted `STARTTLS`.
async fn dialogue<S>(
    stream: &mut BufReader<S>,
    name: &str,
    starttls: Starttls,
    tls: bool,
) -> std::io::Result<Next>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    while let Some(line) = read_command(stream).await? {
        let verb = line
            .split_ascii_whitespace()
            .next()
            .unwrap_or("")
            .to_ascii_uppercase();
        let reply = match verb.as_str() {
            "EHLO" => ehlo_reply(name, starttls != Starttls::NotOffered && !tls),
            "HELO" => format!("250 {name}\r\n"),
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
            "NOOP" | "RSET" => "250 2.0.0 OK\r\n".to_owned(),
            "QUIT" => {
                write(stream, &format!("221 2.0.0 {name} closing connection\r\n")).await?;
                return Ok(Next::Close);
            }
            "MAIL" | "RCPT" | "DATA" | "VRFY" | "EXPN" => {
                "502 5.5.1 the test MX accepts no mail\r\n".to_owned()
            }
            _ => "500 5.5.2 command not recognized\r\n".to_owned(),
        };
        write(stream, &reply).await?;
    }
    Ok(Next::Close)
}

fn ehlo_reply(name: &str, starttls: bool) -> String {
    let mut keywords = vec![
        "PIPELINING",
        "SIZE 10240000",
        "8BITMIME",
        "ENHANCEDSTATUSCODES",
    ];
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
}
