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
//! * **Requires TLS on receiving, per partner** ([`inbound`]): a Postfix
//!   `check_policy_service` server refusing plaintext or unverified sessions from the senders,
//!   client hosts and networks the `[inbound]` section names.
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

pub mod admin;
pub mod clock;
pub mod config;
pub mod daemon;
pub mod dane;
pub mod decision;
pub mod discovery;
pub mod error;
pub mod fallback;
pub mod framed;
pub mod http;
pub mod inbound;
pub mod metrics;
pub mod refresh;
pub mod server;
pub mod settings;
pub mod socketmap;
pub mod tlsrpt;

pub use config::{Config, ConfigError};
pub use daemon::Daemon;
pub use decision::Decision;
pub use error::RunError;
pub use server::{Server, bind, run};
pub use settings::Settings;
