//! Certificate facts and WebPKI validation outcomes, shared by the policy fetcher and the SMTP
//! prober.
//!
//! Validation follows RFC 8461 §3.3 / §4.2 through rustls' WebPKI verifier: subjectAltName
//! dNSName only (never the CN), a wildcard only as the whole left-most label, a chain to a trusted
//! root, within its validity period. The verifier used here *records* the outcome and the
//! presented chain, so a caller can report an expired certificate's dates and names.

use std::sync::{Arc, Mutex};

use mtasts_proto::ResultType;
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};
use thiserror::Error;
use time::OffsetDateTime;
use x509_parser::extensions::GeneralName;

/// What a certificate says about itself (the end-entity certificate of a chain).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertInfo {
    /// subjectAltName dNSName entries, as written.
    pub dns_names: Vec<String>,
    /// The subject CN, if any (informational: WebPKI ignores it).
    pub common_name: Option<String>,
    /// The issuer, as an RFC 4514 string.
    pub issuer: String,
    /// Start of validity.
    pub not_before: OffsetDateTime,
    /// End of validity.
    pub not_after: OffsetDateTime,
    /// How many certificates the peer presented (end-entity included).
    pub chain_len: usize,
}

/// Why WebPKI validation failed, kept apart as RFC 8460 needs (C84, C133).
#[derive(Clone, Debug, Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum CertProblem {
    /// Past `notAfter`.
    #[error("the certificate expired")]
    Expired,
    /// Before `notBefore`.
    #[error("the certificate is not valid yet")]
    NotYetValid,
    /// No subjectAltName dNSName matches the expected name (a CN-only certificate lands here).
    #[error("the certificate is not valid for {expected}")]
    NameMismatch {
        /// The name that was expected.
        expected: String,
    },
    /// Unknown issuer, self-signed, incomplete chain, bad signature.
    #[error("the certificate does not chain to a trusted root ({reason})")]
    Untrusted {
        /// rustls' description.
        reason: String,
    },
    /// Any other rejection (bad encoding, unsupported algorithm, revoked…).
    #[error("the certificate was rejected ({reason})")]
    Other {
        /// rustls' description.
        reason: String,
    },
}

impl CertProblem {
    /// The RFC 8460 result type for an MX certificate with this problem.
    pub fn mx_result_type(&self) -> ResultType {
        match self {
            CertProblem::Expired | CertProblem::NotYetValid => ResultType::CertificateExpired,
            CertProblem::NameMismatch { .. } => ResultType::CertificateHostMismatch,
            CertProblem::Untrusted { .. } => ResultType::CertificateNotTrusted,
            CertProblem::Other { .. } => ResultType::ValidationFailure,
        }
    }

    /// Classifies a rustls certificate error. `expected` is the name the certificate had to be
    /// valid for (the SNI name), reported in [`CertProblem::NameMismatch`].
    pub fn from_rustls(err: &rustls::CertificateError, expected: &str) -> Self {
        use rustls::CertificateError as E;
        match err {
            E::Expired | E::ExpiredContext { .. } => CertProblem::Expired,
            E::NotValidYet | E::NotValidYetContext { .. } => CertProblem::NotYetValid,
            E::NotValidForName | E::NotValidForNameContext { .. } => CertProblem::NameMismatch {
                expected: expected.to_string(),
            },
            E::UnknownIssuer | E::BadSignature => CertProblem::Untrusted {
                reason: err.to_string(),
            },
            _ => CertProblem::Other {
                reason: err.to_string(),
            },
        }
    }

    /// Classifies any rustls error raised while validating a certificate: certificate errors
    /// through [`CertProblem::from_rustls`], everything else as [`CertProblem::Other`].
    pub fn from_rustls_error(err: &rustls::Error, expected: &str) -> Self {
        match err {
            rustls::Error::InvalidCertificate(e) => CertProblem::from_rustls(e, expected),
            other => CertProblem::Other {
                reason: other.to_string(),
            },
        }
    }
}

/// Parses the end-entity certificate (DER) into [`CertInfo`]; `None` if it does not parse.
pub fn cert_info(chain: &[rustls_pki_types::CertificateDer<'_>]) -> Option<CertInfo> {
    let end_entity = chain.first()?;
    let (_, cert) = x509_parser::parse_x509_certificate(end_entity.as_ref()).ok()?;
    let dns_names = match cert.subject_alternative_name() {
        Ok(Some(san)) => san
            .value
            .general_names
            .iter()
            .filter_map(|name| match name {
                GeneralName::DNSName(dns) => Some((*dns).to_string()),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    };
    let common_name = cert
        .subject()
        .iter_common_name()
        .next()
        .and_then(|cn| cn.as_str().ok())
        .map(str::to_string);
    Some(CertInfo {
        dns_names,
        common_name,
        issuer: cert.issuer().to_string(),
        not_before: cert.validity().not_before.to_datetime(),
        not_after: cert.validity().not_after.to_datetime(),
        chain_len: chain.len(),
    })
}

/// What a [`RecordingVerifier`] does when WebPKI validation fails.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OnInvalid {
    /// Record the outcome, then fail the handshake with the rustls error (the strict policy
    /// fetcher: RFC 8461 §3.3 says the client must abort).
    Abort,
    /// Record the outcome and let the handshake go on (the SMTP prober, which reports both the
    /// TLS version and the certificate problem). Handshake signatures are still checked
    /// against the presented end-entity key.
    Continue,
}

/// One certificate validation seen by a [`RecordingVerifier`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChainValidation {
    /// The name the certificate was validated against (the SNI name).
    pub server_name: String,
    /// The chain as presented, end-entity first.
    pub chain: Vec<CertificateDer<'static>>,
    /// The WebPKI outcome.
    pub result: Result<(), CertProblem>,
}

impl ChainValidation {
    /// Facts about the presented end-entity certificate (see [`cert_info`]).
    pub fn cert_info(&self) -> Option<CertInfo> {
        cert_info(&self.chain)
    }
}

/// A rustls [`ServerCertVerifier`] that validates with rustls' [`WebPkiServerVerifier`] and
/// *records* the presented chain and the outcome, so the caller can report an invalid
/// certificate's names and dates.
///
/// Use one verifier per connection (it keeps only the latest validation):
///
/// ```no_run
/// # use std::sync::Arc;
/// # use mtasts_net::cert::{OnInvalid, RecordingVerifier};
/// # async fn demo(roots: Arc<rustls::RootCertStore>, tcp: tokio::net::TcpStream) {
/// let verifier = RecordingVerifier::new(roots, OnInvalid::Continue);
/// let config = verifier.client_config(&[]);
/// let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
/// let name = rustls_pki_types::ServerName::try_from("mx.example.com").unwrap();
/// let handshake = connector.connect(name, tcp).await;
/// // Whether or not the handshake succeeded, the verifier saw the chain if one was sent:
/// if let Some(seen) = verifier.validation() {
///     println!("{:?} {:?}", seen.cert_info(), seen.result);
/// }
/// # let _ = handshake; }
/// ```
///
/// With [`OnInvalid::Abort`] a failed validation also fails the handshake (with
/// `rustls::Error::InvalidCertificate`); with [`OnInvalid::Continue`] the handshake completes
/// and [`ChainValidation::result`] carries the problem. A verifier built from an empty root store
/// records every chain as [`CertProblem::Untrusted`].
///
/// To build a custom `ClientConfig` (other protocol versions, say), pass the `Arc` to
/// `.dangerous().with_custom_certificate_verifier(..)`; see [`RecordingVerifier::provider`].
#[derive(Debug)]
pub struct RecordingVerifier {
    inner: Option<Arc<WebPkiServerVerifier>>,
    provider: Arc<CryptoProvider>,
    on_invalid: OnInvalid,
    last: Mutex<Option<ChainValidation>>,
}

impl RecordingVerifier {
    /// A verifier trusting `roots`, using the aws-lc-rs crypto provider.
    pub fn new(roots: Arc<RootCertStore>, on_invalid: OnInvalid) -> Arc<Self> {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        // Fails only for an empty root store; then every chain is recorded as untrusted.
        let inner = WebPkiServerVerifier::builder_with_provider(roots, provider.clone())
            .build()
            .ok();
        Arc::new(RecordingVerifier {
            inner,
            provider,
            on_invalid,
            last: Mutex::new(None),
        })
    }

    /// The crypto provider the verifier checks signatures with (use it for the `ClientConfig`).
    pub fn provider(&self) -> Arc<CryptoProvider> {
        self.provider.clone()
    }

    /// The failure mode chosen at construction.
    pub fn on_invalid(&self) -> OnInvalid {
        self.on_invalid
    }

    /// A client config (TLS 1.2 and 1.3, no client certificate, no session resumption)
    /// validating through this verifier, offering the `alpn` protocols.
    pub fn client_config(self: &Arc<Self>, alpn: &[&[u8]]) -> ClientConfig {
        let mut config = ClientConfig::builder_with_provider(self.provider.clone())
            .with_safe_default_protocol_versions()
            // aws-lc-rs supports both default protocol versions; failure is a rustls bug.
            .expect("aws-lc-rs supports TLS 1.2 and 1.3")
            .dangerous()
            .with_custom_certificate_verifier(self.clone())
            .with_no_client_auth();
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        config.resumption = rustls::client::Resumption::disabled();
        config
    }

    /// The latest validation, if a certificate was presented.
    pub fn validation(&self) -> Option<ChainValidation> {
        self.lock().clone()
    }

    /// Takes the latest validation out of the verifier.
    pub fn take(&self) -> Option<ChainValidation> {
        self.lock().take()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<ChainValidation>> {
        // A panic while holding the lock cannot leave the Option inconsistent.
        self.last
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl ServerCertVerifier for RecordingVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let name = server_name.to_str().into_owned();
        let outcome = match &self.inner {
            Some(inner) => {
                inner.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
            }
            None => Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::UnknownIssuer,
            )),
        };
        let result = match &outcome {
            Ok(_) => Ok(()),
            Err(e) => Err(CertProblem::from_rustls_error(e, &name)),
        };
        let mut chain = Vec::with_capacity(1 + intermediates.len());
        chain.push(end_entity.clone().into_owned());
        chain.extend(intermediates.iter().map(|c| c.clone().into_owned()));
        *self.lock() = Some(ChainValidation {
            server_name: name,
            chain,
            result,
        });
        match (outcome, self.on_invalid) {
            (Ok(verified), _) => Ok(verified),
            (Err(_), OnInvalid::Continue) => Ok(ServerCertVerified::assertion()),
            (Err(e), OnInvalid::Abort) => Err(e),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls::CertificateError as E;

    #[test]
    fn rustls_errors_are_classified() {
        let name = "mta-sts.example.com";
        assert_eq!(
            CertProblem::from_rustls(&E::Expired, name),
            CertProblem::Expired
        );
        assert_eq!(
            CertProblem::from_rustls(&E::NotValidYet, name),
            CertProblem::NotYetValid
        );
        assert_eq!(
            CertProblem::from_rustls(&E::NotValidForName, name),
            CertProblem::NameMismatch {
                expected: name.to_string()
            }
        );
        assert!(matches!(
            CertProblem::from_rustls(&E::UnknownIssuer, name),
            CertProblem::Untrusted { .. }
        ));
        assert!(matches!(
            CertProblem::from_rustls(&E::BadSignature, name),
            CertProblem::Untrusted { .. }
        ));
        assert!(matches!(
            CertProblem::from_rustls(&E::Revoked, name),
            CertProblem::Other { .. }
        ));
        assert!(matches!(
            CertProblem::from_rustls_error(&rustls::Error::HandshakeNotComplete, name),
            CertProblem::Other { .. }
        ));
    }

    #[test]
    fn garbage_is_no_cert_info() {
        assert_eq!(cert_info(&[]), None);
        assert_eq!(cert_info(&[CertificateDer::from(vec![1u8, 2, 3])]), None);
    }
}
