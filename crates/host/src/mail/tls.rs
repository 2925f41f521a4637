//! STARTTLS for the SMTP intake: which certificate to present, and the TLS server settings.
//!
//! The certificate is the service's own (`reports.<zone>`, issued by ACME with
//! `mta-sts.reports.<zone>`), read per connection so that an issue or a renewal takes effect
//! without a restart. Until it exists (or without ACME) STARTTLS presents a self-signed
//! certificate for the report host, by the same rule as the HTTPS policy host's fallback
//! ([`ServiceCertificate`]): senders that deliver reports opportunistically accept it, and
//! offering no STARTTLS at all would make every sender deliver in plain text.

use std::sync::Arc;

use rustls::ServerConfig;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

use crate::policy_host::cert_choice;
use crate::snapshot::SnapshotHandle;

/// Where the current certificate comes from.
pub trait CertificateSource: Send + Sync {
    /// The certificate to present now; `None`: STARTTLS is not offered.
    fn certificate(&self) -> Option<Arc<CertifiedKey>>;
}

/// What `serve` presents: the snapshot's service certificate, or a self-signed one for the
/// report host until ACME issued it.
#[derive(Clone, Debug)]
pub struct ServiceCertificate {
    snapshot: SnapshotHandle,
    fallback: Option<Arc<CertifiedKey>>,
}

impl ServiceCertificate {
    /// Reads the certificate from `snapshot` at every STARTTLS, with a self-signed
    /// certificate for `host` (the report host) generated now as the fallback.
    pub fn new(snapshot: SnapshotHandle, host: &str) -> ServiceCertificate {
        ServiceCertificate {
            snapshot,
            fallback: cert_choice::fallback_certificate(host),
        }
    }
}

impl CertificateSource for ServiceCertificate {
    fn certificate(&self) -> Option<Arc<CertifiedKey>> {
        cert_choice::service_certificate(&self.snapshot.load(), self.fallback.as_ref())
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
