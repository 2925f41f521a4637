//! The mtasts resolver daemon (sender side): answers Postfix `smtp_tls_policy_maps` lookups
//! over the socketmap protocol, and the same decision over HTTP/JSON.
//!
//! ```text
//! smtp_tls_policy_maps = socketmap:inet:127.0.0.1:8461:postfix
//! ```
//!
//! What it does:
//!
//! * **Decides** per destination ([`decision`]): static levels from the configuration, then
//!   DANE when enabled ([`dane`]; MTA-STS never overrides DANE), then the MTA-STS policy
//!   (`enforce` → `OK secure match=… servername=hostname`), else `NOTFOUND `.
//! * **Discovers and caches** MTA-STS policies with RFC 8461 semantics ([`discovery`]): no
//!   refetch while the TXT id is unchanged, a failed fetch keeps an unexpired policy, 5-minute
//!   backoff, negative cache, single flight per domain, refresh-ahead ([`refresh`]), persistent
//!   across restarts (`mtasts-store`), with an in-memory stand-in while the store is
//!   unavailable ([`fallback`]).
//! * **Serves** socketmap over TCP and UNIX sockets ([`socketmap`]) and HTTP ([`http`]:
//!   `/v1/policy/{domain}`, `/metrics`, `/healthz`).
//!
//! What it does not do: signals, flags and logging setup (the `mtasts` CLI), protocol rules
//! (`mtasts-proto`), network edges (`mtasts-net`), storage (`mtasts-store`).
//!
//! # Entry points for the CLI
//!
//! * [`run`]`(config, config_path, shutdown, reload)`: bind everything and serve until
//!   `shutdown` is cancelled; each `reload.notify_one()` re-reads `config_path` and swaps the
//!   decision settings. The CLI maps SIGTERM/SIGINT to `shutdown.cancel()` and SIGHUP to
//!   `reload.notify_one()`. [`bind`] + [`Server::run`] do the same in two steps (to report
//!   bound addresses, or to fail on a busy port before daemonising).
//! * [`Config::load`] / [`Config::from_toml_str`] / [`Config::default`] (no file), and
//!   [`Settings::from_config`] to validate a configuration completely (`--check-config`).
//! * [`admin::query`] for `mtasts query DOMAIN`; [`admin::cache_list`], [`admin::cache_get`]
//!   and [`admin::cache_purge`] for cache inspection.
//!
//! ```no_run
//! # async fn cli() -> Result<(), mtasts_sender::RunError> {
//! use std::sync::Arc;
//! use mtasts_sender::{Config, run};
//! use tokio_util::sync::CancellationToken;
//!
//! let path = std::path::PathBuf::from("/etc/mtasts/resolver.toml");
//! let config = Config::load(&path)?;
//! let shutdown = CancellationToken::new();
//! let reload = Arc::new(tokio::sync::Notify::new());
//! // signal handlers: SIGTERM → shutdown.cancel(), SIGHUP → reload.notify_one()
//! run(config, Some(path), shutdown, reload).await
//! # }
//! ```

use std::path::PathBuf;
use std::sync::Arc;

use thiserror::Error;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

pub mod admin;
pub mod clock;
pub mod config;
pub mod daemon;
pub mod dane;
pub mod decision;
pub mod discovery;
pub mod fallback;
pub mod http;
pub mod metrics;
pub mod refresh;
pub mod server;
pub mod settings;
pub mod socketmap;

pub use config::{Config, ConfigError};
pub use daemon::Daemon;
pub use decision::Decision;
pub use server::{Server, bind};
pub use settings::Settings;

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
    /// Binding a listener or another I/O step failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The error.
        source: std::io::Error,
    },
}

/// Binds every listener of `config` and serves until `shutdown` is cancelled (see the crate
/// docs). Returns after the drain, or with an error if binding fails or a listener dies.
pub async fn run(
    config: Config,
    config_path: Option<PathBuf>,
    shutdown: CancellationToken,
    reload: Arc<Notify>,
) -> Result<(), RunError> {
    bind(config, config_path).await?.run(shutdown, reload).await
}
