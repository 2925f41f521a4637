//! The e-mail edge: one plain-text message through the configured SMTP relay
//! (`alert_smtp_relay`).
//!
//! The relay is the operator's own (often a local Postfix), so its address is not checked the
//! way tenants' webhook URLs are. The client speaks EHLO, STARTTLS when the relay offers it
//! (verified against the trust roots; skipped for a relay on a loopback address, whose
//! certificate is typically self-signed), MAIL, one RCPT per recipient, DATA and QUIT. Every
//! reply is bounded ([`mtasts_net::smtp::reply`]) and the whole exchange is time-limited.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use mtasts_net::smtp::reply::{Reply, parse_reply};
use rustls::RootCertStore;
use rustls_pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use super::SendError;

/// Time limit of one whole message (connecting, every command, the data).
pub const MAIL_TIMEOUT: Duration = Duration::from_secs(60);

/// Sends one alert e-mail.
pub trait MailSend: Send + Sync {
    /// Sends a plain-text message from `from` to every address of `to`; `Ok` when the relay
    /// accepted it (250 after the data).
    fn send<'a>(
        &'a self,
        from: &'a str,
        to: &'a [String],
        subject: &'a str,
        text: &'a str,
        date: i64,
    ) -> BoxFuture<'a, Result<(), SendError>>;
}

/// [`MailSend`] through one SMTP relay.
pub struct SmtpRelay {
    relay: String,
    helo: String,
    tls: TlsConnector,
}

impl SmtpRelay {
    /// Sends through `relay` (`host:port`), greeting as `helo`, verifying STARTTLS with `roots`.
    pub fn new(relay: String, helo: String, roots: Arc<RootCertStore>) -> Self {
        let config = rustls::ClientConfig::builder()
            .with_root_certificates(roots)
            .with_no_client_auth();
        SmtpRelay {
            relay,
            helo,
            tls: TlsConnector::from(Arc::new(config)),
        }
    }

    async fn deliver(&self, from: &str, to: &[String], message: &[u8]) -> Result<(), SendError> {
        let failed = |what: &str, e: &dyn std::fmt::Display| {
            SendError::Failed(format!("relay {}: {what}: {e}", self.relay))
        };
        let addr: SocketAddr = tokio::net::lookup_host(&self.relay)
            .await
            .map_err(|e| failed("resolving", &e))?
            .next()
            .ok_or_else(|| failed("resolving", &"no address"))?;
        let tcp = TcpStream::connect(addr)
            .await
            .map_err(|e| failed("connecting", &e))?;
        let mut conn = Conn::new(tcp);
        conn.expect(220, "greeting").await?;
        conn.command(&format!("EHLO {}", self.helo), 250).await?;
        let ehlo = conn.last.clone();
        let starttls = ehlo
            .as_ref()
            .is_some_and(|r| r.ehlo_keywords().iter().any(|k| k == "STARTTLS"));
        if starttls && !addr.ip().is_loopback() {
            conn.command("STARTTLS", 220).await?;
            let host = self
                .relay
                .rsplit_once(':')
                .map_or(self.relay.as_str(), |(h, _)| h)
                .trim_start_matches('[')
                .trim_end_matches(']');
            let name = match host.parse::<std::net::IpAddr>() {
                Ok(ip) => ServerName::from(ip),
                Err(_) => {
                    ServerName::try_from(host.to_owned()).map_err(|e| failed("server name", &e))?
                }
            };
            let tls = self
                .tls
                .connect(name, conn.into_inner())
                .await
                .map_err(|e| failed("STARTTLS", &e))?;
            let mut conn = Conn::new(tls);
            conn.command(&format!("EHLO {}", self.helo), 250).await?;
            return transaction(&mut conn, from, to, message).await;
        }
        transaction(&mut conn, from, to, message).await
    }
}

impl MailSend for SmtpRelay {
    fn send<'a>(
        &'a self,
        from: &'a str,
        to: &'a [String],
        subject: &'a str,
        text: &'a str,
        date: i64,
    ) -> BoxFuture<'a, Result<(), SendError>> {
        Box::pin(async move {
            if to.is_empty() {
                return Err(SendError::Refused("no recipients".into()));
            }
            for address in std::iter::once(from).chain(to.iter().map(String::as_str)) {
                if address.is_empty()
                    || address.len() > 254
                    || address
                        .chars()
                        .any(|c| c.is_control() || c.is_whitespace() || c == '<' || c == '>')
                {
                    return Err(SendError::Refused(format!("{address:?} is not an address")));
                }
            }
            let message = message(from, to, subject, text, date);
            match tokio::time::timeout(MAIL_TIMEOUT, self.deliver(from, to, &message)).await {
                Ok(result) => result,
                Err(_) => Err(SendError::Failed(format!(
                    "relay {}: no answer within {} s",
                    self.relay,
                    MAIL_TIMEOUT.as_secs()
                ))),
            }
        })
    }
}

/// MAIL, RCPT, DATA, QUIT.
async fn transaction<S: AsyncRead + AsyncWrite + Unpin>(
    conn: &mut Conn<S>,
    from: &str,
    to: &[String],
    message: &[u8],
) -> Result<(), SendError> {
    conn.command(&format!("MAIL FROM:<{from}>"), 250).await?;
    for rcpt in to {
        conn.command(&format!("RCPT TO:<{rcpt}>"), 250).await?;
    }
    conn.command("DATA", 354).await?;
    conn.write(message).await?;
    conn.write(b".\r\n").await?;
    conn.expect(250, "end of data").await?;
    // The message is accepted; a failed QUIT changes nothing.
    let _ = conn.command("QUIT", 221).await;
    Ok(())
}

/// The message: headers and the dot-stuffed text with CRLF line endings.
fn message(from: &str, to: &[String], subject: &str, text: &str, date: i64) -> Vec<u8> {
    let date = time::OffsetDateTime::from_unix_timestamp(date)
        .ok()
        .and_then(|d| {
            d.format(&time::format_description::well_known::Rfc2822)
                .ok()
        })
        .unwrap_or_default();
    let mut out = String::new();
    out.push_str(&format!("From: {from}\r\n"));
    out.push_str(&format!("To: {}\r\n", to.join(", ")));
    out.push_str(&format!("Subject: {}\r\n", encode_subject(subject)));
    if !date.is_empty() {
        out.push_str(&format!("Date: {date}\r\n"));
    }
    out.push_str("MIME-Version: 1.0\r\n");
    out.push_str("Content-Type: text/plain; charset=utf-8\r\n");
    out.push_str("Content-Transfer-Encoding: 8bit\r\n");
    out.push_str("Auto-Submitted: auto-generated\r\n\r\n");
    for line in text.lines() {
        if line.starts_with('.') {
            out.push('.');
        }
        out.push_str(line);
        out.push_str("\r\n");
    }
    out.into_bytes()
}

/// A subject as an RFC 2047 encoded word when it is not plain ASCII.
fn encode_subject(subject: &str) -> String {
    if subject.is_ascii() {
        return subject.to_owned();
    }
    use base64::Engine;
    format!(
        "=?utf-8?B?{}?=",
        base64::engine::general_purpose::STANDARD.encode(subject)
    )
}

/// One SMTP connection: bounded replies.
struct Conn<S> {
    stream: S,
    buf: Vec<u8>,
    last: Option<Reply>,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Conn<S> {
    fn new(stream: S) -> Self {
        Conn {
            stream,
            buf: Vec::new(),
            last: None,
        }
    }

    fn into_inner(self) -> S {
        self.stream
    }

    async fn write(&mut self, bytes: &[u8]) -> Result<(), SendError> {
        self.stream
            .write_all(bytes)
            .await
            .map_err(|e| SendError::Failed(format!("writing to the relay: {e}")))
    }

    async fn command(&mut self, line: &str, want: u16) -> Result<(), SendError> {
        self.write(format!("{line}\r\n").as_bytes()).await?;
        let verb = line.split([' ', ':']).next().unwrap_or(line);
        self.expect(want, verb).await
    }

    async fn expect(&mut self, want: u16, after: &str) -> Result<(), SendError> {
        let reply = self.reply().await?;
        let ok = reply.code == want;
        let summary = reply.summary();
        self.last = Some(reply);
        if ok {
            Ok(())
        } else {
            Err(SendError::Failed(format!(
                "the relay answered {after} with {summary}"
            )))
        }
    }

    async fn reply(&mut self) -> Result<Reply, SendError> {
        loop {
            match parse_reply(&self.buf) {
                Ok(Some((reply, used))) => {
                    self.buf.drain(..used);
                    return Ok(reply);
                }
                Ok(None) => {}
                Err(e) => return Err(SendError::Failed(format!("the relay: {e}"))),
            }
            let mut chunk = [0u8; 4096];
            let n = self
                .stream
                .read(&mut chunk)
                .await
                .map_err(|e| SendError::Failed(format!("reading from the relay: {e}")))?;
            if n == 0 {
                return Err(SendError::Failed("the relay closed the connection".into()));
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }
}
