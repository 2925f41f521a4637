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
        TrustConfig { builtin_roots: true, ca_files: Vec::new() }
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
    /// Builds the root store.
    pub fn root_store(&self) -> Result<Arc<RootCertStore>, TrustError> {
        let _ = Path::new("");
        todo!("helper")
    }
}
