//! The SMTP STARTTLS prober (port 25): banner, EHLO, STARTTLS, TLS handshake.
//!
//! It records the TLS version, cipher suite, certificate chain and the WebPKI outcome against
//! the MX host name (expired / name mismatch / untrusted kept apart) *without* aborting on a bad
//! certificate, so a report can say both "TLSv1.3" and "expired". A server that only speaks
//! TLS 1.0/1.1, which rustls refuses, is detected with a second connection that sends a legacy
//! ClientHello and reads the ServerHello version, and is reported as such (RFC 8461 §7.2).

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use rustls::RootCertStore;
use thiserror::Error;

use crate::cert::{CertInfo, CertProblem};

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

/// The tokio + rustls implementation of [`SmtpProbe`].
pub struct SmtpProber {
    _private: (),
}

impl SmtpProber {
    /// A prober with this configuration.
    pub fn new(config: ProbeConfig) -> Self {
        let _ = config;
        todo!("helper")
    }
}
