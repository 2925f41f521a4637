//! The SMTP STARTTLS prober (port 25): banner, EHLO, STARTTLS, TLS handshake.
//!
//! It records the TLS version, cipher suite, certificate chain and the WebPKI outcome against
//! the MX host name (expired / name mismatch / untrusted kept apart) *without* aborting on a bad
//! certificate, so a report can say both "TLSv1.3" and "expired". A server that only speaks
//! TLS 1.0/1.1, which rustls refuses, is detected with a second connection that sends a legacy
//! ClientHello and reads the ServerHello version, and is reported as such (RFC 8461 §7.2).

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use rustls::RootCertStore;
use rustls::client::danger::ServerCertVerifier;
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};
use thiserror::Error;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_rustls::TlsConnector;

use crate::cert::{
    CertInfo, CertProblem, ChainValidation, OnInvalid, RecordingVerifier, cert_info,
};

mod legacy;
pub mod reply;
pub mod submit;

use reply::{Reply, ReplyError};

/// How the prober behaves.
#[derive(Clone, Debug)]
pub struct ProbeConfig {
    /// Limit for each network step (connect, each reply, handshake); the whole probe is bounded
    /// by a few times this.
    pub timeout: Duration,
    /// Trusted roots for validating MX certificates.
    pub roots: Arc<RootCertStore>,
    /// The SMTP port. 25 by the RFC; other values are for tests only.
    pub port: u16,
    /// The name sent in EHLO.
    pub helo_name: String,
}

/// The TLS session established after STARTTLS.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsSession {
    /// `TLSv1.2`, `TLSv1.3`, or for legacy-only servers `TLSv1.0` / `TLSv1.1` (`SSLv3`).
    pub version: String,
    /// The cipher suite name, when the handshake completed.
    pub cipher: Option<String>,
    /// The end-entity certificate, when one was seen.
    pub certificate: Option<CertInfo>,
    /// WebPKI validation against the MX host name; `Ok` when valid.
    pub validation: Result<(), CertProblem>,
}

/// Why a probe did not reach a TLS session.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProbeError {
    /// No TCP connection (refused, unreachable).
    #[error("cannot connect: {0}")]
    Connect(String),
    /// A step did not finish in time.
    #[error("timed out waiting for {0}")]
    Timeout(&'static str),
    /// The greeting was not a 220 (e.g. 554), or not SMTP at all.
    #[error("unexpected greeting: {0}")]
    Banner(String),
    /// EHLO was refused.
    #[error("EHLO refused: {0}")]
    Ehlo(String),
    /// EHLO did not list STARTTLS (C82).
    #[error("STARTTLS is not offered")]
    StarttlsNotOffered,
    /// STARTTLS was offered but the command was refused.
    #[error("STARTTLS refused: {0}")]
    StarttlsRefused(String),
    /// The server only speaks a TLS version below 1.2 (C86); the session facts are in `tls`.
    #[error("the server only offers {0}")]
    LegacyTls(String),
    /// The TLS handshake failed for another reason.
    #[error("TLS handshake failed: {0}")]
    Handshake(String),
    /// The server broke the protocol (over-long line, garbage, early close).
    #[error("SMTP protocol error: {0}")]
    Protocol(String),
}

/// Everything observed when probing one MX address.
#[derive(Clone, Debug)]
pub struct ProbeReport {
    /// The MX host name (used for SNI and certificate validation).
    pub host: String,
    /// The address probed.
    pub ip: IpAddr,
    /// The greeting line(s), truncated.
    pub banner: Option<String>,
    /// EHLO keywords (upper-cased), e.g. `STARTTLS`, `PIPELINING`.
    pub ehlo_keywords: Vec<String>,
    /// Whether EHLO listed STARTTLS; `None` when EHLO was not reached.
    pub starttls_offered: Option<bool>,
    /// The TLS session, when a handshake (or a legacy ServerHello) was seen.
    pub tls: Option<TlsSession>,
    /// Why the probe stopped short of a valid modern TLS session; `None` on success (a bad
    /// certificate is not an error here: see `tls.validation`).
    pub error: Option<ProbeError>,
}

/// The SMTP probe edge.
pub trait SmtpProbe: Send + Sync {
    /// Probes `host` at `ip`.
    fn probe<'a>(&'a self, host: &'a str, ip: IpAddr) -> BoxFuture<'a, ProbeReport>;
}

/// The tokio + rustls implementation of [`SmtpProbe`]. Cheap to clone and share: the
/// configuration sits behind an `Arc`.
///
/// One probe opens one connection: greeting, `EHLO`, `STARTTLS`, a TLS 1.2/1.3 handshake with
/// SNI = the MX host name (no trailing dot, C83) that accepts and records any certificate, then
/// `EHLO` and `QUIT` inside TLS. Only when rustls refuses the server's TLS version does it open
/// a second connection and send a legacy ClientHello (see [`ProbeError::LegacyTls`]). Every
/// step is bounded by [`ProbeConfig::timeout`], the whole probe by [`PROBE_BUDGET`] times it.
#[derive(Clone, Debug)]
pub struct SmtpProber {
    config: Arc<ProbeConfig>,
}

impl SmtpProber {
    /// A prober with this configuration.
    pub fn new(config: ProbeConfig) -> Self {
        SmtpProber {
            config: Arc::new(config),
        }
    }

    /// The configuration the prober was built with.
    pub fn config(&self) -> &ProbeConfig {
        &self.config
    }

    async fn run(&self, host: &str, ip: IpAddr) -> ProbeReport {
        let mut report = ProbeReport {
            host: host.to_owned(),
            ip,
            banner: None,
            ehlo_keywords: Vec::new(),
            starttls_offered: None,
            tls: None,
            error: None,
        };
        let clock = Clock::new(self.config.timeout);
        // C83: the SNI and validation name never carry the root's trailing dot.
        let name = host.trim_end_matches('.');
        let outcome = match self.modern(name, ip, &clock, &mut report).await {
            Err(Stop::Legacy(reason)) => self.legacy(name, ip, &clock, reason, &mut report).await,
            other => other,
        };
        if let Err(stop) = outcome {
            report.error = Some(stop.into_error());
        }
        tracing::debug!(%host, %ip, error = ?report.error, tls = ?report.tls.as_ref().map(|t| &t.version), "SMTP probe done");
        report
    }

    /// The first (and usually only) connection, up to a completed rustls handshake.
    async fn modern(
        &self,
        name: &str,
        ip: IpAddr,
        clock: &Clock,
        report: &mut ProbeReport,
    ) -> Result<(), Stop> {
        let server_name = server_name(name)?;
        let smtp = self.until_starttls(ip, clock, report).await?;
        let tcp = smtp.into_inner();
        let verifier = RecordingVerifier::new(self.config.roots.clone(), OnInvalid::Continue);
        let connector = TlsConnector::from(Arc::new(verifier.client_config(&[])));
        let tls = match clock
            .step("the TLS handshake", connector.connect(server_name, tcp))
            .await?
        {
            Ok(tls) => tls,
            Err(error) => return Err(classify_handshake_error(&error)),
        };
        let connection = tls.get_ref().1;
        let version = match connection.protocol_version() {
            Some(rustls::ProtocolVersion::TLSv1_3) => "TLSv1.3".to_owned(),
            Some(rustls::ProtocolVersion::TLSv1_2) => "TLSv1.2".to_owned(),
            Some(other) => format!("{other:?}"),
            None => "unknown".to_owned(),
        };
        let cipher = connection
            .negotiated_cipher_suite()
            .and_then(|suite| legacy::cipher_name(u16::from(suite.suite())));
        let verification = verifier.take();
        report.tls = Some(TlsSession {
            version,
            cipher,
            certificate: verification.as_ref().and_then(ChainValidation::cert_info),
            validation: match verification {
                Some(seen) => seen.result,
                None => Err(CertProblem::Other {
                    reason: "the server presented no certificate".to_owned(),
                }),
            },
        });
        // Be polite inside TLS; what happens here does not change the report.
        let mut smtp = Smtp::new(tls);
        if let Err(error) = async {
            smtp.command(
                clock,
                "EHLO after STARTTLS",
                &format!("EHLO {}", self.config.helo_name),
            )
            .await?;
            let reply = smtp.reply(clock, "the EHLO reply after STARTTLS").await?;
            tracing::trace!(code = reply.code, "EHLO after STARTTLS");
            Ok::<_, Stop>(())
        }
        .await
        {
            tracing::debug!(host = %name, error = ?error, "EHLO after STARTTLS failed");
        }
        smtp.quit(clock).await;
        let mut tls = smtp.into_inner();
        let _ = clock.short("TLS close", tls.shutdown()).await;
        Ok(())
    }

    /// The second connection for a server whose TLS version rustls refused: the SMTP steps
    /// again, then a legacy ClientHello and the server's first flight.
    async fn legacy(
        &self,
        name: &str,
        ip: IpAddr,
        clock: &Clock,
        reason: String,
        report: &mut ProbeReport,
    ) -> Result<(), Stop> {
        let failed = |why: String| {
            Stop::Error(ProbeError::Handshake(format!(
                "{reason}; legacy probe: {why}"
            )))
        };
        let mut fresh = report.clone();
        let smtp = match self.until_starttls(ip, clock, &mut fresh).await {
            Ok(smtp) => smtp,
            Err(stop) => return Err(failed(stop.into_error().to_string())),
        };
        let mut tcp = smtp.into_inner();
        let mut random = [0u8; 32];
        let provider = rustls::crypto::aws_lc_rs::default_provider();
        provider
            .secure_random
            .fill(&mut random)
            .map_err(|_| failed("no random bytes for the ClientHello".to_owned()))?;
        let hello = legacy::client_hello(name, random);
        match clock
            .step("the legacy ClientHello", tcp.write_all(&hello))
            .await
        {
            Ok(Ok(())) => {}
            Ok(Err(error)) => return Err(failed(error.to_string())),
            Err(stop) => return Err(failed(stop.into_error().to_string())),
        }
        let flight = match read_server_flight(&mut tcp, clock).await {
            Ok(flight) => flight,
            Err(why) => return Err(failed(why.to_string())),
        };
        let Some(hello) = flight.hello else {
            return Err(failed("no ServerHello".to_owned()));
        };
        let chain: Vec<CertificateDer<'static>> = flight
            .certificates
            .unwrap_or_default()
            .into_iter()
            .map(CertificateDer::from)
            .collect();
        let version = legacy::version_name(hello.version);
        report.tls = Some(TlsSession {
            version: version.clone(),
            cipher: legacy::cipher_name(hello.cipher_suite),
            certificate: cert_info(&chain),
            validation: self.validate(name, &chain),
        });
        tracing::debug!(host = %name, %ip, %version, "legacy ServerHello");
        if hello.version < TLS12 {
            return Err(Stop::Error(ProbeError::LegacyTls(version)));
        }
        // The server speaks TLS 1.2 to a legacy client but not to rustls (CBC-only suites, say).
        Err(Stop::Error(ProbeError::Handshake(reason)))
    }

    /// Connects and walks greeting, `EHLO` and `STARTTLS`, filling `report`; returns the
    /// connection ready for the TLS ClientHello.
    async fn until_starttls(
        &self,
        ip: IpAddr,
        clock: &Clock,
        report: &mut ProbeReport,
    ) -> Result<Smtp<TcpStream>, Stop> {
        let addr = SocketAddr::new(ip, self.config.port);
        let tcp = clock
            .step("the TCP connection", TcpStream::connect(addr))
            .await?
            .map_err(|error| Stop::Error(ProbeError::Connect(error.to_string())))?;
        let mut smtp = Smtp::new(tcp);
        let greeting = match smtp.reply(clock, "the greeting").await {
            Ok(reply) => reply,
            Err(Stop::Garbage(line)) => {
                report.banner = Some(line.clone());
                return Err(Stop::Error(ProbeError::Banner(format!("not SMTP: {line}"))));
            }
            Err(stop) => return Err(stop),
        };
        report.banner = Some(greeting.summary());
        if greeting.code != 220 {
            smtp.quit(clock).await;
            return Err(Stop::Error(ProbeError::Banner(greeting.summary())));
        }
        smtp.command(clock, "EHLO", &format!("EHLO {}", self.config.helo_name))
            .await?;
        let ehlo = smtp.reply(clock, "the EHLO reply").await?;
        if ehlo.code != 250 {
            smtp.quit(clock).await;
            return Err(Stop::Error(ProbeError::Ehlo(ehlo.summary())));
        }
        report.ehlo_keywords = ehlo.ehlo_keywords();
        let offered = report.ehlo_keywords.iter().any(|k| k == "STARTTLS");
        report.starttls_offered = Some(offered);
        if !offered {
            smtp.quit(clock).await;
            return Err(Stop::Error(ProbeError::StarttlsNotOffered));
        }
        smtp.command(clock, "STARTTLS", "STARTTLS").await?;
        let reply = smtp.reply(clock, "the STARTTLS reply").await?;
        if reply.code != 220 {
            smtp.quit(clock).await;
            return Err(Stop::Error(ProbeError::StarttlsRefused(reply.summary())));
        }
        Ok(smtp)
    }

    /// WebPKI validation of a chain seen outside rustls (the legacy path).
    fn validate(&self, name: &str, chain: &[CertificateDer<'static>]) -> Result<(), CertProblem> {
        let Some((end_entity, intermediates)) = chain.split_first() else {
            return Err(CertProblem::Other {
                reason: "no certificate seen in the legacy handshake".to_owned(),
            });
        };
        let server_name =
            ServerName::try_from(name.to_owned()).map_err(|error| CertProblem::Other {
                reason: format!("invalid host name: {error}"),
            })?;
        let verifier = RecordingVerifier::new(self.config.roots.clone(), OnInvalid::Abort);
        let outcome = verifier.verify_server_cert(
            end_entity,
            intermediates,
            &server_name,
            &[],
            UnixTime::now(),
        );
        match verifier.take() {
            Some(seen) => seen.result,
            None => outcome
                .map(|_| ())
                .map_err(|error| CertProblem::from_rustls_error(&error, name)),
        }
    }
}

impl SmtpProbe for SmtpProber {
    fn probe<'a>(&'a self, host: &'a str, ip: IpAddr) -> BoxFuture<'a, ProbeReport> {
        Box::pin(self.run(host, ip))
    }
}

/// The whole probe (both connections, if the legacy path runs) is bounded by this many times
/// [`ProbeConfig::timeout`].
pub const PROBE_BUDGET: u32 = 6;

/// Why a probe stopped, before it is turned into a [`ProbeError`].
#[derive(Debug)]
enum Stop {
    /// Report this.
    Error(ProbeError),
    /// A reply was not SMTP; holds the offending line. A banner error for the greeting, a
    /// protocol error later.
    Garbage(String),
    /// rustls refused the server's TLS version; try the legacy ClientHello. Holds rustls' error.
    Legacy(String),
}

impl Stop {
    fn into_error(self) -> ProbeError {
        match self {
            Stop::Error(error) => error,
            Stop::Garbage(line) => ProbeError::Protocol(format!("not an SMTP reply: {line}")),
            Stop::Legacy(reason) => ProbeError::Handshake(reason),
        }
    }
}

/// Per-step deadlines inside one overall deadline.
struct Clock {
    step: Duration,
    end: Instant,
}

impl Clock {
    fn new(step: Duration) -> Self {
        Clock {
            step,
            end: Instant::now() + step * PROBE_BUDGET,
        }
    }

    /// Runs `future` for at most one step (and not past the overall deadline).
    async fn step<F: Future>(&self, what: &'static str, future: F) -> Result<F::Output, Stop> {
        self.within(self.step, what, future).await
    }

    /// Like [`Clock::step`], but for courtesy steps (QUIT, close) that are worth less waiting.
    async fn short<F: Future>(&self, what: &'static str, future: F) -> Result<F::Output, Stop> {
        self.within(self.step.min(COURTESY_WAIT), what, future)
            .await
    }

    async fn within<F: Future>(
        &self,
        limit: Duration,
        what: &'static str,
        future: F,
    ) -> Result<F::Output, Stop> {
        let deadline = (Instant::now() + limit).min(self.end);
        tokio::time::timeout_at(deadline, future)
            .await
            .map_err(|_| Stop::Error(ProbeError::Timeout(what)))
    }
}

/// An SMTP client connection: commands out, bounded replies in.
struct Smtp<S> {
    stream: S,
    buf: Vec<u8>,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Smtp<S> {
    fn new(stream: S) -> Self {
        Smtp {
            stream,
            buf: Vec::new(),
        }
    }

    /// The stream, for the TLS handshake. Bytes the server sent after its reply are dropped
    /// (they must not be mistaken for TLS, nor read as plaintext later).
    fn into_inner(self) -> S {
        self.stream
    }

    async fn command(&mut self, clock: &Clock, what: &'static str, line: &str) -> Result<(), Stop> {
        let mut bytes = Vec::with_capacity(line.len() + 2);
        bytes.extend_from_slice(line.as_bytes());
        bytes.extend_from_slice(b"\r\n");
        clock
            .step(what, async {
                self.stream.write_all(&bytes).await?;
                self.stream.flush().await
            })
            .await?
            .map_err(|error| {
                Stop::Error(ProbeError::Protocol(format!("cannot send {what}: {error}")))
            })
    }

    /// Reads one reply, bounded by [`reply::LINE_MAX`], [`reply::REPLY_MAX`] and one step.
    async fn reply(&mut self, clock: &Clock, what: &'static str) -> Result<Reply, Stop> {
        clock.step(what, self.read_reply(what)).await?
    }

    async fn read_reply(&mut self, what: &'static str) -> Result<Reply, Stop> {
        let mut chunk = [0u8; 4096];
        loop {
            match reply::parse_reply(&self.buf) {
                Ok(Some((reply, used))) => {
                    self.buf.drain(..used);
                    return Ok(reply);
                }
                Ok(None) => {}
                Err(ReplyError::Malformed(line)) => return Err(Stop::Garbage(line)),
                Err(error) => {
                    return Err(Stop::Error(ProbeError::Protocol(format!(
                        "{error} in {what}"
                    ))));
                }
            }
            let n = self.stream.read(&mut chunk).await.map_err(|error| {
                Stop::Error(ProbeError::Protocol(format!(
                    "connection failed while waiting for {what}: {error}"
                )))
            })?;
            if n == 0 {
                return Err(Stop::Error(ProbeError::Protocol(format!(
                    "connection closed while waiting for {what}"
                ))));
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    /// Says `QUIT` and waits briefly for the answer; failures do not matter any more.
    async fn quit(&mut self, clock: &Clock) {
        let polite = async {
            self.stream.write_all(b"QUIT\r\n").await.ok()?;
            self.stream.flush().await.ok()?;
            self.read_reply("the QUIT reply").await.ok()
        };
        let _ = clock.short("QUIT", polite).await;
    }
}

/// Why the legacy probe got no ServerHello: the part of the handshake failure message that
/// names what the legacy ClientHello met.
#[derive(Debug, Error)]
enum FlightReadError {
    /// The connection failed before the ServerHello.
    #[error("{0}")]
    Read(std::io::Error),
    /// The step's deadline or the probe's stop came before the ServerHello.
    #[error("{0}")]
    Stopped(ProbeError),
    /// The bytes received are not a TLS server flight.
    #[error("{0}")]
    Flight(legacy::FlightError),
}

/// Reads the server's answer to the legacy ClientHello until the plaintext flight is over, the
/// server stops sending, or [`LEGACY_FLIGHT_MAX`] bytes arrived.
async fn read_server_flight(
    tcp: &mut TcpStream,
    clock: &Clock,
) -> Result<legacy::ServerFlight, FlightReadError> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let mut flight = legacy::ServerFlight::default();
    while buf.len() < LEGACY_FLIGHT_MAX {
        let room = chunk.len().min(LEGACY_FLIGHT_MAX - buf.len());
        let n = match clock
            .step("the legacy ServerHello", tcp.read(&mut chunk[..room]))
            .await
        {
            Ok(Ok(n)) => n,
            Ok(Err(error)) if flight.hello.is_none() => return Err(FlightReadError::Read(error)),
            Err(stop) if flight.hello.is_none() => {
                return Err(FlightReadError::Stopped(stop.into_error()));
            }
            // The ServerHello is in; a stalled or broken rest of the flight only costs the
            // certificate.
            Ok(Err(_)) | Err(_) => break,
        };
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
        flight = legacy::parse_server_flight(&buf).map_err(FlightReadError::Flight)?;
        if flight.complete {
            break;
        }
    }
    Ok(flight)
}

/// Splits handshake failures into "try the legacy ClientHello" and everything else.
fn classify_handshake_error(error: &std::io::Error) -> Stop {
    use rustls::{AlertDescription, PeerIncompatible};
    let rustls_error = error
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>());
    let legacy = match rustls_error {
        Some(rustls::Error::PeerIncompatible(PeerIncompatible::ServerDoesNotSupportTls12Or13)) => {
            true
        }
        Some(rustls::Error::AlertReceived(
            AlertDescription::ProtocolVersion
            | AlertDescription::HandshakeFailure
            | AlertDescription::InsufficientSecurity,
        )) => true,
        Some(_) => false,
        // Old stacks sometimes hang up on a ClientHello they do not understand.
        None => matches!(
            error.kind(),
            std::io::ErrorKind::UnexpectedEof | std::io::ErrorKind::ConnectionReset
        ),
    };
    let reason = match rustls_error {
        Some(inner) => inner.to_string(),
        None => error.to_string(),
    };
    if legacy {
        Stop::Legacy(reason)
    } else {
        Stop::Error(ProbeError::Handshake(reason))
    }
}

fn server_name(name: &str) -> Result<ServerName<'static>, Stop> {
    ServerName::try_from(name.to_owned()).map_err(|error| {
        Stop::Error(ProbeError::Handshake(format!(
            "cannot use {name:?} as the TLS server name: {error}"
        )))
    })
}

/// How long courtesy steps (`QUIT`, TLS close) may take at most.
const COURTESY_WAIT: Duration = Duration::from_secs(2);
/// The most bytes read while waiting for the legacy ServerHello and Certificate.
const LEGACY_FLIGHT_MAX: usize = 96 * 1024;
/// `server_version` of TLS 1.2; anything below is legacy (C86).
const TLS12: u16 = 0x0303;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prober_is_cheap_to_share() {
        fn assert_send_sync<T: Send + Sync + Clone + 'static>() {}
        assert_send_sync::<SmtpProber>();
    }

    #[test]
    fn stops_turn_into_errors() {
        assert_eq!(
            Stop::Garbage("SSH-2.0".into()).into_error(),
            ProbeError::Protocol("not an SMTP reply: SSH-2.0".into())
        );
        assert_eq!(
            Stop::Legacy("x".into()).into_error(),
            ProbeError::Handshake("x".into())
        );
    }

    #[tokio::test]
    async fn replies_are_read_across_chunks_and_leftovers_kept() {
        let (client, mut server) = tokio::io::duplex(64);
        let clock = Clock::new(Duration::from_secs(5));
        let mut smtp = Smtp::new(client);
        let writer = tokio::spawn(async move {
            for piece in [
                "25",
                "0-mx.example\r",
                "\n250-STARTTLS\r\n",
                "250 8BITMIME\r\n220 next\r\n",
            ] {
                server.write_all(piece.as_bytes()).await.unwrap();
                tokio::task::yield_now().await;
            }
            server
        });
        let reply = smtp.reply(&clock, "EHLO").await.unwrap();
        assert_eq!(reply.code, 250);
        assert_eq!(reply.ehlo_keywords(), ["STARTTLS", "8BITMIME"]);
        let next = smtp.reply(&clock, "next").await.unwrap();
        assert_eq!(next.lines, ["next"]);
        drop(writer.await.unwrap());
        let closed = smtp.reply(&clock, "the QUIT reply").await.unwrap_err();
        assert_eq!(
            closed.into_error(),
            ProbeError::Protocol("connection closed while waiting for the QUIT reply".into())
        );
    }

    #[tokio::test(start_paused = true)]
    async fn silent_peer_times_out_per_step() {
        let (client, _server) = tokio::io::duplex(64);
        let clock = Clock::new(Duration::from_secs(5));
        let mut smtp = Smtp::new(client);
        let stop = smtp.reply(&clock, "the greeting").await.unwrap_err();
        assert_eq!(stop.into_error(), ProbeError::Timeout("the greeting"));
    }

    #[tokio::test]
    async fn garbage_after_the_greeting_is_a_protocol_error() {
        let (client, mut server) = tokio::io::duplex(64);
        let clock = Clock::new(Duration::from_secs(5));
        let mut smtp = Smtp::new(client);
        server
            .write_all(b"HTTP/1.1 400 Bad Request\r\n")
            .await
            .unwrap();
        let stop = smtp.reply(&clock, "the EHLO reply").await.unwrap_err();
        assert!(matches!(stop.into_error(), ProbeError::Protocol(e) if e.contains("HTTP/1.1 400")));
    }

    #[test]
    fn handshake_errors_are_classified() {
        let wrap =
            |error: rustls::Error| std::io::Error::new(std::io::ErrorKind::InvalidData, error);
        let legacy = [
            rustls::Error::PeerIncompatible(
                rustls::PeerIncompatible::ServerDoesNotSupportTls12Or13,
            ),
            rustls::Error::AlertReceived(rustls::AlertDescription::ProtocolVersion),
            rustls::Error::AlertReceived(rustls::AlertDescription::HandshakeFailure),
        ];
        for error in legacy {
            assert!(matches!(
                classify_handshake_error(&wrap(error)),
                Stop::Legacy(_)
            ));
        }
        let other = wrap(rustls::Error::AlertReceived(
            rustls::AlertDescription::InternalError,
        ));
        assert!(matches!(
            classify_handshake_error(&other),
            Stop::Error(ProbeError::Handshake(_))
        ));
        let eof = std::io::Error::from(std::io::ErrorKind::UnexpectedEof);
        assert!(matches!(classify_handshake_error(&eof), Stop::Legacy(_)));
        let timeout = std::io::Error::from(std::io::ErrorKind::TimedOut);
        assert!(matches!(classify_handshake_error(&timeout), Stop::Error(_)));
    }
}
