//! What `mtasts query` and `mtasts cache` need: one lookup with every discovery detail, and
//! inspection and purging of the cache store.

use std::sync::Arc;

use mtasts_proto::domain::normalize_domain;
use mtasts_store::{Entry, PolicyStore};

use crate::config::{Config, ConfigError};
use crate::daemon::{Daemon, Edges, discovery_options};
use crate::decision::Decision;
use crate::error::RunError;
use crate::metrics::Metrics;
use crate::settings::Settings;

/// How [`query`] runs.
#[derive(Clone, Debug, Default)]
pub struct QueryOptions {
    /// The profile (socketmap name) to answer for; `None`: the default profile.
    pub profile: Option<String>,
    /// Read and update the configured cache store, as the daemon would. `false`: a fresh
    /// discovery in memory, leaving the store untouched.
    pub use_cache: bool,
}

/// Runs one lookup of `key` (a domain or any socketmap key) with the configuration's
/// settings, DNS, trust roots and (optionally) cache, and returns the full decision:
/// the Postfix answer, the policy, and what discovery saw.
pub async fn query(
    config: &Config,
    key: &str,
    options: &QueryOptions,
) -> Result<Decision, RunError> {
    let settings = Settings::from_config(config).map_err(RunError::Config)?;
    let metrics = Arc::new(Metrics::new());
    let edges = if options.use_cache {
        Edges::from_config(config, metrics.clone()).await?
    } else {
        Edges::with_store_url(config, "memory", metrics.clone()).await?
    };
    let profile = options
        .profile
        .clone()
        .unwrap_or_else(|| settings.default_profile.name.clone());
    let daemon = Daemon::new(settings, edges, metrics, discovery_options(config), None);
    Ok(daemon.lookup("query", &profile, key).await)
}

/// Opens the configured cache store directly (no memory fallback: an unreachable store is
/// an error here).
pub async fn open_store(config: &Config) -> Result<Arc<dyn PolicyStore>, RunError> {
    mtasts_store::open(&config.cache_url())
        .await
        .map_err(RunError::Store)
}

/// At most `limit` cache entries, sorted by domain.
pub async fn cache_list(config: &Config, limit: usize) -> Result<Vec<Entry>, RunError> {
    open_store(config)
        .await?
        .list(limit)
        .await
        .map_err(RunError::Store)
}

/// The cache entry of one domain.
pub async fn cache_get(config: &Config, domain: &str) -> Result<Option<Entry>, RunError> {
    let domain = cache_key(domain)?;
    open_store(config)
        .await?
        .get(&domain)
        .await
        .map_err(RunError::Store)
}

/// Removes the entry of `domain`, or every entry when `None`; returns how many were removed.
/// A running daemon keeps what it read from the store for at most `cache.grace` seconds, so it
/// discovers a purged domain again within that time (DANE findings live in its memory for
/// `cache.dane_ttl`).
pub async fn cache_purge(config: &Config, domain: Option<&str>) -> Result<u64, RunError> {
    let store = open_store(config).await?;
    match domain {
        Some(domain) => {
            let domain = cache_key(domain)?;
            let removed = store.delete(&domain).await.map_err(RunError::Store)?;
            Ok(u64::from(removed))
        }
        None => store.purge().await.map_err(RunError::Store),
    }
}

fn cache_key(domain: &str) -> Result<String, RunError> {
    normalize_domain(domain).map_err(|e| {
        RunError::Config(ConfigError::Invalid(format!(
            "{domain:?} is not a domain name: {e}"
        )))
    })
}
