//! Why the daemon could not start, or stopped with an error: [`RunError`], returned by
//! [`crate::run`], [`crate::bind`] and the [`crate::admin`] commands.

use thiserror::Error;

use crate::config::ConfigError;

/// Why the daemon could not start or stopped with an error.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum RunError {
    /// The configuration is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The DNS resolver could not be set up.
    #[error(transparent)]
    Dns(mtasts_net::dns::DnsSetupError),
    /// A CA file could not be used.
    #[error(transparent)]
    Trust(mtasts_net::trust::TrustError),
    /// The cache store could not be opened (a configuration error; an unreachable backend
    /// is not fatal for the daemon).
    #[error("policy cache: {0}")]
    Store(mtasts_store::StoreError),
    /// TLS-RPT (`[tlsrpt] enabled = true`) could not be started.
    #[error(transparent)]
    Tlsrpt(#[from] crate::tlsrpt::TlsrptError),
    /// Binding a listener or another I/O step failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The error.
        source: std::io::Error,
    },
}
