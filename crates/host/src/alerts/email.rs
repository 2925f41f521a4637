//! The e-mail edge: one plain-text message through the configured SMTP relay
//! (`alert_smtp_relay`).
//!
//! The relay is the operator's own (often a local Postfix), so its address is not checked the
//! way tenants' webhook URLs are. The SMTP exchange is the workspace's one client,
//! [`mtasts_net::smtp::submit`]: STARTTLS when the relay offers it (verified against the trust
//! roots; skipped for a relay on a loopback address, whose certificate is typically
//! self-signed), bounded replies, one time limit for the whole message.

use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use mtasts_net::smtp::submit::{self, Server, Starttls, SubmitConfig, SubmitError};
use rustls::RootCertStore;

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
    roots: Arc<RootCertStore>,
}

impl SmtpRelay {
    /// Sends through `relay` (`host:port`), greeting as `helo`, verifying STARTTLS with `roots`.
    pub fn new(relay: String, helo: String, roots: Arc<RootCertStore>) -> Self {
        SmtpRelay { relay, helo, roots }
    }

    async fn deliver(&self, from: &str, to: &[String], message: &[u8]) -> Result<(), SendError> {
        let addr = tokio::time::timeout(MAIL_TIMEOUT, tokio::net::lookup_host(&self.relay))
            .await
            .map_err(|_| SendError::Failed(format!("relay {}: resolving timed out", self.relay)))?
            .map_err(|e| SendError::Failed(format!("relay {}: resolving: {e}", self.relay)))?
            .next()
            .ok_or_else(|| SendError::Failed(format!("relay {}: no address", self.relay)))?;
        let name = self
            .relay
            .rsplit_once(':')
            .map_or(self.relay.as_str(), |(h, _)| h)
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        let config = SubmitConfig {
            helo: self.helo.clone(),
            starttls: if addr.ip().is_loopback() {
                Starttls::Never
            } else {
                Starttls::Opportunistic
            },
            roots: self.roots.clone(),
            auth: None,
            timeout: MAIL_TIMEOUT,
        };
        match submit::submit(&config, &Server { name, addr }, from, to, message).await {
            Ok(_) => Ok(()),
            Err(e @ (SubmitError::BadAddress(_) | SubmitError::NoRecipients)) => {
                Err(SendError::Refused(e.to_string()))
            }
            Err(e) => Err(SendError::Failed(format!("relay {}: {e}", self.relay))),
        }
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
            self.deliver(from, to, &message).await
        })
    }
}

/// The message: headers and the text with CRLF line endings (the client dot-stuffs).
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
