//! Trust roots for WebPKI validation: the built-in Mozilla roots (webpki-roots), plus extra PEM
//! files (`--ca-file`, and the standard `SSL_CERT_FILE` variable read by the caller).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::RootCertStore;
use thiserror::Error;

/// Where to find trusted roots.
#[derive(Clone, Debug)]
pub struct TrustConfig {
    /// Include the built-in Mozilla root set. Default true.
    pub builtin_roots: bool,
    /// Extra PEM files whose certificates become trusted roots.
    pub ca_files: Vec<PathBuf>,
}

impl Default for TrustConfig {
    fn default() -> Self {
        TrustConfig {
            builtin_roots: true,
            ca_files: Vec::new(),
        }
    }
}

/// A PEM file that could not be used.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum TrustError {
    /// The file could not be read.
    #[error("cannot read CA file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file holds no certificate, or one rustls rejects.
    #[error("CA file {path} holds no usable certificate: {reason}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
}

impl TrustConfig {
    /// Builds the root store: the built-in roots (if enabled) plus every certificate of every
    /// CA file. A file that cannot be read, holds no certificate, holds a malformed PEM
    /// section or a certificate rustls cannot use as a trust anchor is an error naming the file.
    pub fn root_store(&self) -> Result<Arc<RootCertStore>, TrustError> {
        let mut store = RootCertStore::empty();
        if self.builtin_roots {
            store.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        }
        for path in &self.ca_files {
            add_pem_file(&mut store, path)?;
        }
        Ok(Arc::new(store))
    }
}

/// Largest CA file we read (a full Mozilla bundle is ~250 KB).
const CA_FILE_MAX_BYTES: u64 = 16 * 1024 * 1024;

fn add_pem_file(store: &mut RootCertStore, path: &Path) -> Result<(), TrustError> {
    let invalid = |reason: String| TrustError::Invalid {
        path: path.to_path_buf(),
        reason,
    };
    let read_err = |source| TrustError::Read {
        path: path.to_path_buf(),
        source,
    };
    let meta = std::fs::metadata(path).map_err(read_err)?;
    if meta.len() > CA_FILE_MAX_BYTES {
        return Err(invalid(format!("larger than {CA_FILE_MAX_BYTES} bytes")));
    }
    let bytes = std::fs::read(path).map_err(read_err)?;
    let chain = crate::pem::parse_chain(&bytes).map_err(|e| invalid(e.to_string()))?;
    for (index, cert) in chain.into_iter().enumerate() {
        store.add(cert).map_err(|e| {
            invalid(format!(
                "certificate #{} is not a usable root: {e}",
                index + 1
            ))
        })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, content: &[u8]) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, content).unwrap();
        path
    }

    #[test]
    fn builtin_roots_are_many() {
        let store = TrustConfig::default().root_store().unwrap();
        assert!(store.len() > 100);
        let none = TrustConfig {
            builtin_roots: false,
            ca_files: vec![],
        }
        .root_store()
        .unwrap();
        assert!(none.is_empty());
    }

    #[test]
    fn missing_file_is_a_read_error() {
        let config = TrustConfig {
            builtin_roots: false,
            ca_files: vec![PathBuf::from("/nonexistent/mtasts/ca.pem")],
        };
        assert!(matches!(config.root_store(), Err(TrustError::Read { .. })));
    }

    #[test]
    fn file_without_certificates_is_invalid() {
        let dir = std::env::temp_dir().join(format!("mtasts-trust-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let empty = write(&dir, "empty.pem", b"just text\n");
        let config = TrustConfig {
            builtin_roots: false,
            ca_files: vec![empty],
        };
        let err = config.root_store().unwrap_err();
        assert!(matches!(err, TrustError::Invalid { .. }), "{err}");
        let garbage = write(
            &dir,
            "garbage.pem",
            b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
        );
        let config = TrustConfig {
            builtin_roots: false,
            ca_files: vec![garbage],
        };
        let err = config.root_store().unwrap_err();
        assert!(matches!(err, TrustError::Invalid { .. }), "{err}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
