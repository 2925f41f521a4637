//! Submitting one prebuilt message over SMTP: to a relay (STARTTLS required or opportunistic,
//! AUTH PLAIN/LOGIN only over TLS) or directly to a mail exchanger (opportunistic TLS that
//! accepts any certificate, as RFC 8460 §5.3.1 asks of report mail).
//!
//! The one SMTP client of the workspace: `mtasts serve`'s alert mail and the resolver's
//! TLS-RPT report mail both use [`submit`]. Every reply is bounded ([`super::reply`]) and the
//! whole exchange has one time limit. The message is given as RFC 5322 text with CRLF line
//! ends; dot-stuffing and the final `.` are done here.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use rustls::RootCertStore;
use rustls_pki_types::ServerName;
use thiserror::Error;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use super::reply::{Reply, parse_reply};
use crate::cert::{OnInvalid, RecordingVerifier};

/// How long the answer to QUIT is waited for (the message is already accepted then).
pub const QUIT_TIMEOUT: Duration = Duration::from_secs(5);

/// How STARTTLS is used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Starttls {
    /// The server must offer STARTTLS and present a certificate valid for its name.
    Require,
    /// STARTTLS when offered, with the certificate verified; plain when not offered.
    Opportunistic,
    /// STARTTLS when offered, any certificate accepted; plain when not offered. For delivery
    /// that must not fail on TLS problems (RFC 8460 §5.3.1 report mail to an MX).
    OpportunisticUnverified,
    /// Never (a loopback relay with a self-signed certificate).
    Never,
}

/// AUTH credentials; sent only over TLS.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The user name.
    pub username: String,
    /// The password.
    pub password: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

/// How one submission is made.
#[derive(Clone, Debug)]
pub struct SubmitConfig {
    /// The name sent in EHLO.
    pub helo: String,
    /// STARTTLS use.
    pub starttls: Starttls,
    /// Roots for verified STARTTLS.
    pub roots: Arc<RootCertStore>,
    /// AUTH at the server (PLAIN when offered, else LOGIN), only after STARTTLS.
    pub auth: Option<Credentials>,
    /// Time limit of the exchange (connecting, every command, the data); [`QUIT_TIMEOUT`] more
    /// is allowed for the QUIT after the message was accepted.
    pub timeout: Duration,
}

/// The server to talk to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Server {
    /// The host name (or IP literal) the TLS certificate must match.
    pub name: String,
    /// The address to connect to.
    pub addr: SocketAddr,
}

/// A message the server accepted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Submitted {
    /// Whether the message went over TLS.
    pub tls: bool,
    /// The server's answer to the end of the data (for logs: often carries a queue id).
    pub reply: String,
}

/// Why a message was not accepted.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum SubmitError {
    /// An envelope address is empty, too long or contains characters SMTP cannot carry.
    #[error("{0:?} is not an address")]
    BadAddress(String),
    /// No recipients.
    #[error("no recipients")]
    NoRecipients,
    /// No TCP connection.
    #[error("cannot connect to {server}: {error}")]
    Connect {
        /// The server.
        server: String,
        /// The I/O error.
        error: String,
    },
    /// The whole exchange took longer than the time limit.
    #[error("{server}: no answer within {secs} s")]
    Timeout {
        /// The server.
        server: String,
        /// The limit.
        secs: u64,
    },
    /// STARTTLS was required but not offered.
    #[error("{0}: STARTTLS is required but not offered")]
    NoStarttls(String),
    /// The TLS handshake failed (with a required or verified STARTTLS).
    #[error("{server}: TLS: {error}")]
    Tls {
        /// The server.
        server: String,
        /// The handshake error.
        error: String,
    },
    /// Credentials are configured but the session is not encrypted: AUTH is never sent in
    /// the clear.
    #[error("{0}: refusing AUTH without TLS")]
    AuthWithoutTls(String),
    /// The server offers neither AUTH PLAIN nor AUTH LOGIN.
    #[error("{0}: no AUTH PLAIN or LOGIN offered")]
    AuthUnsupported(String),
    /// The server answered a step with an unexpected code.
    #[error("{server} answered {step} with {reply}")]
    Rejected {
        /// The server.
        server: String,
        /// The command (or `greeting`, `end of data`).
        step: String,
        /// The reply code.
        code: u16,
        /// The reply, summarised.
        reply: String,
    },
    /// Reading or writing failed, or the server sent something that is not SMTP.
    #[error("{server}: {error}")]
    Protocol {
        /// The server.
        server: String,
        /// What went wrong.
        error: String,
    },
}

impl SubmitError {
    /// A failure that retrying the same message cannot cure: a 5xx answer, a bad address,
    /// missing AUTH support or TLS. Timeouts, connection failures and 4xx answers may pass.
    pub fn is_permanent(&self) -> bool {
        match self {
            SubmitError::Rejected { code, .. } => *code >= 500,
            SubmitError::BadAddress(_)
            | SubmitError::NoRecipients
            | SubmitError::AuthWithoutTls(_)
            | SubmitError::AuthUnsupported(_) => true,
            _ => false,
        }
    }
}

/// Checks that an envelope address can be put in `MAIL FROM:<…>` / `RCPT TO:<…>`.
fn check_address(address: &str, may_be_empty: bool) -> Result<(), SubmitError> {
    if (address.is_empty() && !may_be_empty)
        || address.len() > 254
        || address
            .chars()
            .any(|c| c.is_control() || c.is_whitespace() || c == '<' || c == '>')
    {
        return Err(SubmitError::BadAddress(address.to_owned()));
    }
    Ok(())
}

/// Sends `message` from `from` to every address of `to` through `server`. `Ok` when the
/// server accepted the data (250); the message is then the server's responsibility.
pub async fn submit(
    config: &SubmitConfig,
    server: &Server,
    from: &str,
    to: &[String],
    message: &[u8],
) -> Result<Submitted, SubmitError> {
    if to.is_empty() {
        return Err(SubmitError::NoRecipients);
    }
    check_address(from, true)?;
    for rcpt in to {
        check_address(rcpt, false)?;
    }
    let label = format!("{} ({})", server.name, server.addr);
    // `timeout` bounds everything up to the answer to the data; QUIT has its own limit on top,
    // so a server that accepted the message and then stalls does not make it look unsent.
    match tokio::time::timeout(
        config.timeout + QUIT_TIMEOUT,
        exchange(config, server, &label, from, to, message),
    )
    .await
    {
        Ok(result) => result,
        Err(_) => Err(SubmitError::Timeout {
            server: label,
            secs: config.timeout.as_secs(),
        }),
    }
}

async fn exchange(
    config: &SubmitConfig,
    server: &Server,
    label: &str,
    from: &str,
    to: &[String],
    message: &[u8],
) -> Result<Submitted, SubmitError> {
    let tcp = TcpStream::connect(server.addr)
        .await
        .map_err(|e| SubmitError::Connect {
            server: label.to_owned(),
            error: e.to_string(),
        })?;
    let mut conn = Conn::new(tcp, label);
    conn.expect(220, "greeting").await?;
    let ehlo = conn.command(&format!("EHLO {}", config.helo), 250).await?;
    let offered = ehlo.ehlo_keywords().iter().any(|k| k == "STARTTLS");
    let verified = match config.starttls {
        Starttls::Never => None,
        Starttls::Require if !offered => return Err(SubmitError::NoStarttls(label.to_owned())),
        Starttls::Require | Starttls::Opportunistic if offered => Some(OnInvalid::Abort),
        Starttls::OpportunisticUnverified if offered => Some(OnInvalid::Continue),
        _ => None,
    };
    let Some(on_invalid) = verified else {
        if config.auth.is_some() {
            return Err(SubmitError::AuthWithoutTls(label.to_owned()));
        }
        return transaction(&mut conn, from, to, message, false).await;
    };
    conn.command("STARTTLS", 220).await?;
    let name = match server.name.parse::<std::net::IpAddr>() {
        Ok(ip) => ServerName::from(ip),
        Err(_) => ServerName::try_from(server.name.clone()).map_err(|e| SubmitError::Tls {
            server: label.to_owned(),
            error: format!("server name: {e}"),
        })?,
    };
    let verifier = RecordingVerifier::new(config.roots.clone(), on_invalid);
    let tls = TlsConnector::from(Arc::new(verifier.client_config(&[])))
        .connect(name, conn.stream)
        .await
        .map_err(|e| SubmitError::Tls {
            server: label.to_owned(),
            error: e.to_string(),
        })?;
    // Anything the server sent before the handshake is discarded with the plain connection
    // (RFC 3207 §4.2: no pipelining across STARTTLS).
    let mut conn = Conn::new(tls, label);
    let ehlo = conn.command(&format!("EHLO {}", config.helo), 250).await?;
    if let Some(credentials) = &config.auth {
        authenticate(&mut conn, &ehlo, credentials).await?;
    }
    transaction(&mut conn, from, to, message, true).await
}

/// AUTH PLAIN when offered (RFC 4616), else AUTH LOGIN.
async fn authenticate<S: AsyncRead + AsyncWrite + Unpin>(
    conn: &mut Conn<S>,
    ehlo: &Reply,
    credentials: &Credentials,
) -> Result<(), SubmitError> {
    let mechanisms: Vec<String> = ehlo
        .lines
        .iter()
        .skip(1)
        .filter_map(|line| {
            let mut words = line.split_ascii_whitespace();
            let keyword = words.next()?.to_ascii_uppercase();
            (keyword == "AUTH" || keyword == "AUTH=").then_some(words)
        })
        .flatten()
        .map(str::to_ascii_uppercase)
        .collect();
    let b64 = |bytes: &[u8]| base64::engine::general_purpose::STANDARD.encode(bytes);
    if mechanisms.iter().any(|m| m == "PLAIN") {
        let token = b64(format!("\0{}\0{}", credentials.username, credentials.password).as_bytes());
        conn.secret_command(&format!("AUTH PLAIN {token}"), "AUTH PLAIN", 235)
            .await?;
        return Ok(());
    }
    if mechanisms.iter().any(|m| m == "LOGIN") {
        conn.command("AUTH LOGIN", 334).await?;
        conn.secret_command(
            &b64(credentials.username.as_bytes()),
            "AUTH LOGIN user",
            334,
        )
        .await?;
        conn.secret_command(
            &b64(credentials.password.as_bytes()),
            "AUTH LOGIN password",
            235,
        )
        .await?;
        return Ok(());
    }
    Err(SubmitError::AuthUnsupported(conn.label.clone()))
}

/// MAIL, RCPT, DATA, the dot-stuffed message, QUIT.
async fn transaction<S: AsyncRead + AsyncWrite + Unpin>(
    conn: &mut Conn<S>,
    from: &str,
    to: &[String],
    message: &[u8],
    tls: bool,
) -> Result<Submitted, SubmitError> {
    conn.command(&format!("MAIL FROM:<{from}>"), 250).await?;
    for rcpt in to {
        // 251 (user not local; will forward) is an acceptance too.
        let reply = conn.send_line(&format!("RCPT TO:<{rcpt}>")).await?;
        if reply.code != 250 && reply.code != 251 {
            return Err(conn.rejected("RCPT", &reply));
        }
    }
    conn.command("DATA", 354).await?;
    conn.write(&dot_stuff(message)).await?;
    let end = conn.expect(250, "end of data").await?;
    // The message is accepted; a failed or unanswered QUIT changes nothing.
    let _ = tokio::time::timeout(QUIT_TIMEOUT, conn.command("QUIT", 221)).await;
    Ok(Submitted {
        tls,
        reply: end.summary(),
    })
}

/// The DATA payload: line ends normalised to CRLF, a `.` doubled at the start of a line, and
/// the terminating `.` line (RFC 5321 §4.5.2).
pub fn dot_stuff(message: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(message.len() + message.len() / 64 + 5);
    let mut at_line_start = true;
    let mut i = 0;
    while i < message.len() {
        let b = message[i];
        if at_line_start && b == b'.' {
            out.push(b'.');
        }
        match b {
            b'\r' if message.get(i + 1) == Some(&b'\n') => {
                out.extend_from_slice(b"\r\n");
                i += 1;
                at_line_start = true;
            }
            b'\n' | b'\r' => {
                out.extend_from_slice(b"\r\n");
                at_line_start = true;
            }
            _ => {
                out.push(b);
                at_line_start = false;
            }
        }
        i += 1;
    }
    if !at_line_start {
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b".\r\n");
    out
}

/// One SMTP connection: bounded replies.
struct Conn<S> {
    stream: S,
    buf: Vec<u8>,
    label: String,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Conn<S> {
    fn new(stream: S, label: &str) -> Self {
        Conn {
            stream,
            buf: Vec::new(),
            label: label.to_owned(),
        }
    }

    fn protocol(&self, error: impl std::fmt::Display) -> SubmitError {
        SubmitError::Protocol {
            server: self.label.clone(),
            error: error.to_string(),
        }
    }

    fn rejected(&self, step: &str, reply: &Reply) -> SubmitError {
        SubmitError::Rejected {
            server: self.label.clone(),
            step: step.to_owned(),
            code: reply.code,
            reply: reply.summary(),
        }
    }

    async fn write(&mut self, bytes: &[u8]) -> Result<(), SubmitError> {
        self.stream
            .write_all(bytes)
            .await
            .map_err(|e| self.protocol(format_args!("writing: {e}")))?;
        self.stream
            .flush()
            .await
            .map_err(|e| self.protocol(format_args!("writing: {e}")))
    }

    async fn send_line(&mut self, line: &str) -> Result<Reply, SubmitError> {
        self.write(format!("{line}\r\n").as_bytes()).await?;
        self.reply().await
    }

    async fn command(&mut self, line: &str, want: u16) -> Result<Reply, SubmitError> {
        let verb = line.split([' ', ':']).next().unwrap_or(line).to_owned();
        self.secret_command(line, &verb, want).await
    }

    /// A command whose text must not appear in errors (credentials): `step` names it instead.
    async fn secret_command(
        &mut self,
        line: &str,
        step: &str,
        want: u16,
    ) -> Result<Reply, SubmitError> {
        let reply = self.send_line(line).await?;
        if reply.code == want {
            Ok(reply)
        } else {
            Err(self.rejected(step, &reply))
        }
    }

    async fn expect(&mut self, want: u16, step: &str) -> Result<Reply, SubmitError> {
        let reply = self.reply().await?;
        if reply.code == want {
            Ok(reply)
        } else {
            Err(self.rejected(step, &reply))
        }
    }

    async fn reply(&mut self) -> Result<Reply, SubmitError> {
        loop {
            match parse_reply(&self.buf) {
                Ok(Some((reply, used))) => {
                    self.buf.drain(..used);
                    return Ok(reply);
                }
                Ok(None) => {}
                Err(e) => return Err(self.protocol(e)),
            }
            let mut chunk = [0u8; 4096];
            let n = self
                .stream
                .read(&mut chunk)
                .await
                .map_err(|e| self.protocol(format_args!("reading: {e}")))?;
            if n == 0 {
                return Err(self.protocol("the server closed the connection"));
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dot_stuffing_doubles_leading_dots_and_terminates() {
        assert_eq!(dot_stuff(b"a\r\n.b\r\n"), b"a\r\n..b\r\n.\r\n");
        assert_eq!(dot_stuff(b".\nx"), b"..\r\nx\r\n.\r\n");
        assert_eq!(dot_stuff(b""), b".\r\n");
        assert_eq!(dot_stuff(b"a.b\r\n"), b"a.b\r\n.\r\n");
    }

    #[test]
    fn addresses_are_checked_before_connecting() {
        assert!(check_address("", true).is_ok());
        assert!(check_address("", false).is_err());
        assert!(check_address("a b@c", false).is_err());
        assert!(check_address("a>@c", false).is_err());
        assert!(check_address("a@c", false).is_ok());
    }

    #[test]
    fn permanence_follows_the_reply_class() {
        let rejected = |code| SubmitError::Rejected {
            server: "s".into(),
            step: "RCPT".into(),
            code,
            reply: String::new(),
        };
        assert!(rejected(550).is_permanent());
        assert!(!rejected(451).is_permanent());
        assert!(
            !SubmitError::Timeout {
                server: "s".into(),
                secs: 1
            }
            .is_permanent()
        );
    }
}
