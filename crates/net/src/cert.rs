//! Certificate facts and WebPKI validation outcomes, shared by the policy fetcher and the SMTP
//! prober.
//!
//! Validation follows RFC 8461 §3.3 / §4.2 through rustls' WebPKI verifier: subjectAltName
//! dNSName only (never the CN), a wildcard only as the whole left-most label, a chain to a trusted
//! root, within its validity period. The verifier used here *records* the outcome and the
//! presented chain, so a caller can report an expired certificate's dates and names.

use mtasts_proto::ResultType;
use thiserror::Error;
use time::OffsetDateTime;

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

    /// Classifies a rustls certificate error.
    pub fn from_rustls(err: &rustls::CertificateError, expected: &str) -> Self {
        let _ = (err, expected);
        todo!("helper")
    }
}

/// Parses the end-entity certificate (DER) into [`CertInfo`]; `None` if it does not parse.
pub fn cert_info(chain: &[rustls_pki_types::CertificateDer<'_>]) -> Option<CertInfo> {
    let _ = chain;
    todo!("helper")
}
