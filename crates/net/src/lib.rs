//! The network edges of mtasts: DNS lookups, the strict MTA-STS policy fetcher and the SMTP
//! STARTTLS prober. Every read from the network is bounded in size and time; every failure is
//! classified so callers can map it onto RFC 8460 result types.
//!
//! Decisions about what the observations *mean* live in `mtasts-proto` and `mtasts-check`;
//! this crate only observes. Each edge sits behind one small trait ([`dns::DnsLookup`],
//! [`fetch::PolicyFetch`], [`smtp::SmtpProbe`]) so tests and other crates can swap it; the
//! implementations are [`dns::HickoryDns`], [`fetch::PolicyFetcher`] and [`smtp::SmtpProber`].
//! [`trust`] builds the WebPKI root store and [`pem`] reads PEM certificate chains for every
//! crate that needs one.

pub mod cert;
pub mod dns;
pub mod fetch;
pub mod pem;
pub mod public_only;
pub mod smtp;
pub mod trust;

/// Installs aws-lc-rs as the process-wide rustls crypto provider. Idempotent.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
}
