//! PEM certificate chains: the one reader of `CERTIFICATE` sections, for trust roots
//! (`--ca-file`, the ACME CA's root) and for the chains `mtasts serve` stores and serves.

use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use thiserror::Error;

/// Why a PEM text gave no certificate chain.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum PemError {
    /// A `CERTIFICATE` section could not be decoded (bad base64, no end line, …).
    #[error("PEM certificate #{index}: {reason}")]
    Malformed {
        /// The section's position among the certificates, from 1.
        index: usize,
        /// What the PEM reader said.
        reason: String,
    },
    /// The text holds no `CERTIFICATE` section at all.
    #[error("no PEM CERTIFICATE section found")]
    NoCertificate,
}

/// Every certificate of `pem` in order (for a chain: end-entity first). Sections of other
/// kinds (keys, parameters) are skipped; the first malformed certificate is an error, and so
/// is a text without any.
pub fn parse_chain(pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, PemError> {
    let chain = CertificateDer::pem_slice_iter(pem)
        .enumerate()
        .map(|(index, cert)| {
            cert.map_err(|e| PemError::Malformed {
                index: index + 1,
                reason: e.to_string(),
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    if chain.is_empty() {
        return Err(PemError::NoCertificate);
    }
    Ok(chain)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_without_sections_has_no_certificate() {
        assert_eq!(parse_chain(b"just text\n"), Err(PemError::NoCertificate));
    }

    #[test]
    fn bad_base64_names_the_section() {
        let pem = b"-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n";
        assert!(matches!(
            parse_chain(pem),
            Err(PemError::Malformed { index: 1, .. })
        ));
    }
}
