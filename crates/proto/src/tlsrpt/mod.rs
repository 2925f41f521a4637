//! SMTP TLS Reporting, RFC 8460.

pub mod datagram;
mod members;
pub mod outgoing;
pub mod record;
pub mod report;
pub mod session;
pub mod upload;

/// The TXT record name for a (normalised) policy domain: `_smtp._tls.<domain>`.
pub fn record_name(domain: &str) -> String {
    format!("_smtp._tls.{domain}")
}
