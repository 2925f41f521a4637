//! STARTTLS for the SMTP intake: which certificate to present, and the TLS server settings.
//!
//! The certificate is the service's own (`reports.<zone>`, issued by ACME with
//! `mta-sts.reports.<zone>`), read per connection so that a renewal takes effect without a
//! restart. Without one, STARTTLS is not offered.

use std::sync::Arc;

use rustls::ServerConfig;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

use crate::snapshot::SnapshotHandle;

/// Where the current certificate comes from.
pub trait CertificateSource: Send + Sync {
    /// The certificate to present now, if any.
    fn certificate(&self) -> Option<Arc<CertifiedKey>>;
}

impl CertificateSource for SnapshotHandle {
    fn certificate(&self) -> Option<Arc<CertifiedKey>> {
        self.load().service_certificate.clone()
    }
}

/// One fixed certificate (or none).
#[derive(Clone, Debug)]
pub struct FixedCertificate(pub Option<Arc<CertifiedKey>>);

impl CertificateSource for FixedCertificate {
    fn certificate(&self) -> Option<Arc<CertifiedKey>> {
        self.0.clone()
    }
}

/// The TLS server settings for one connection presenting `certificate`: TLS 1.2 and 1.3
/// (RFC 8461 §3 asks senders for 1.2 or later; older clients deliver in plain text instead).
pub fn server_config(certificate: Arc<CertifiedKey>) -> Arc<ServerConfig> {
    let config = ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
    // aws-lc-rs implements both versions; failing here would be a rustls build problem.
    .expect("aws-lc-rs supports TLS 1.3 and 1.2")
    .with_no_client_auth()
    .with_cert_resolver(Arc::new(Always(certificate)));
    Arc::new(config)
}

#[derive(Debug)]
struct Always(Arc<CertifiedKey>);

impl ResolvesServerCert for Always {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.0.clone())
    }
}
