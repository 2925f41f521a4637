//! The daemon's shared state: settings (swappable on reload), MTA-STS discovery, DANE, metrics.
//! Socketmap and HTTP both ask [`Daemon::lookup`].

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use futures::future::BoxFuture;
use mtasts_net::dns::{DnsConfig, DnsLookup, HickoryDns};
use mtasts_net::fetch::{FetchConfig, PolicyFetch, PolicyFetcher};
use mtasts_net::trust::TrustConfig;
use mtasts_proto::postfix::render_level;
use mtasts_proto::socketmap::{NextHop, Reply, Request, classify_key};
use mtasts_store::PolicyStore;

use crate::clock::{Clock, SystemClock};
use crate::config::Config;
use crate::dane::DaneChecker;
use crate::decision::{Decision, Source, Verdict, sts_reply};
use crate::discovery::{Discovery, DiscoveryOptions};
use crate::error::RunError;
use crate::fallback::FallbackStore;
use crate::metrics::Metrics;
use crate::settings::{Profile, Settings};
use crate::socketmap::SocketmapHandler;

/// The network and storage edges a daemon works through.
pub struct Edges {
    /// DNS (TXT, MX, TLSA).
    pub dns: Arc<dyn DnsLookup>,
    /// The policy fetcher.
    pub fetcher: Arc<dyn PolicyFetch>,
    /// The policy cache.
    pub store: Arc<FallbackStore>,
    /// The clock.
    pub clock: Arc<dyn Clock>,
}

impl Edges {
    /// The real edges for a configuration: hickory DNS, the strict fetcher with the configured
    /// roots and timeout, and the configured store (with the memory fallback).
    pub async fn from_config(config: &Config, metrics: Arc<Metrics>) -> Result<Edges, RunError> {
        Self::with_store_url(config, &config.cache_url(), metrics).await
    }

    /// Like [`Edges::from_config`] with another store (`memory` for a cache-less query).
    pub async fn with_store_url(
        config: &Config,
        store_url: &str,
        metrics: Arc<Metrics>,
    ) -> Result<Edges, RunError> {
        mtasts_net::install_crypto_provider();
        let timeout = Duration::from_secs(config.timeout);
        let servers = if config.dns_servers.is_empty() {
            None
        } else {
            let mut servers = Vec::new();
            for s in &config.dns_servers {
                servers.push(mtasts_net::dns::parse_server(s).map_err(|e| {
                    RunError::Config(crate::config::ConfigError::Invalid(format!(
                        "dns_servers: {e}"
                    )))
                })?);
            }
            Some(servers)
        };
        let dns: Arc<dyn DnsLookup> =
            Arc::new(HickoryDns::new(&DnsConfig { servers, timeout }).map_err(RunError::Dns)?);
        let roots = TrustConfig {
            builtin_roots: config.builtin_roots,
            ca_files: config.ca_files.clone(),
        }
        .root_store()
        .map_err(RunError::Trust)?;
        let mut fetch = FetchConfig::new(roots);
        fetch.timeout = timeout;
        fetch.port = config.https_port;
        let fetcher: Arc<dyn PolicyFetch> = Arc::new(PolicyFetcher::new(fetch, dns.clone()));
        prepare_sqlite_dir(store_url)?;
        let store = Arc::new(
            FallbackStore::open(
                store_url,
                metrics,
                Duration::from_secs(config.cache.store_retry),
            )
            .await
            .map_err(RunError::Store)?,
        );
        Ok(Edges {
            dns,
            fetcher,
            store,
            clock: Arc::new(SystemClock),
        })
    }
}

/// Creates the directory of a `sqlite:PATH` store if it is missing.
pub(crate) fn prepare_sqlite_dir(url: &str) -> Result<(), RunError> {
    let Some(path) = url.trim().strip_prefix("sqlite:") else {
        return Ok(());
    };
    let path = path.strip_prefix("//").unwrap_or(path);
    let path = path.split('?').next().unwrap_or(path);
    if path.is_empty() || path == ":memory:" {
        return Ok(());
    }
    if let Some(dir) = Path::new(path).parent()
        && !dir.as_os_str().is_empty()
        && !dir.exists()
    {
        std::fs::create_dir_all(dir).map_err(|source| RunError::Io {
            what: format!("cannot create the store directory {}", dir.display()),
            source,
        })?;
    }
    Ok(())
}

/// The daemon: decides lookups. Cheap to share (`Arc`).
pub struct Daemon {
    /// Read by every lookup, replaced on reload: no lock on the lookup path.
    settings: ArcSwap<Settings>,
    discovery: Arc<Discovery>,
    dane: DaneChecker,
    store: Arc<FallbackStore>,
    metrics: Arc<Metrics>,
    config_path: Option<PathBuf>,
}

impl Daemon {
    /// A daemon over these edges.
    pub fn new(
        settings: Settings,
        edges: Edges,
        metrics: Arc<Metrics>,
        options: DiscoveryOptions,
        config_path: Option<PathBuf>,
    ) -> Arc<Daemon> {
        let store: Arc<dyn PolicyStore> = edges.store.clone();
        let memo = options.max_memo_entries;
        let discovery = Discovery::new(
            edges.dns.clone(),
            edges.fetcher,
            store,
            edges.clock,
            metrics.clone(),
            options,
        );
        Arc::new(Daemon {
            settings: ArcSwap::from_pointee(settings),
            discovery,
            dane: DaneChecker::new(edges.dns, memo),
            store: edges.store,
            metrics,
            config_path,
        })
    }

    /// A daemon built from a configuration with the real edges.
    pub async fn from_config(
        config: &Config,
        config_path: Option<PathBuf>,
        metrics: Arc<Metrics>,
    ) -> Result<Arc<Daemon>, RunError> {
        let settings = Settings::from_config(config).map_err(RunError::Config)?;
        let edges = Edges::from_config(config, metrics.clone()).await?;
        Ok(Daemon::new(
            settings,
            edges,
            metrics,
            discovery_options(config),
            config_path,
        ))
    }

    /// The settings in force.
    pub fn settings(&self) -> Arc<Settings> {
        self.settings.load_full()
    }

    /// Swaps the decision settings (static levels, profiles, DANE switch, cache lifetimes).
    /// Lookups in progress finish with the old ones; open connections stay open.
    pub fn replace_settings(&self, settings: Settings) {
        self.discovery
            .set_ttls(settings.negative_ttl, settings.grace);
        self.dane.clear();
        self.settings.store(Arc::new(settings));
    }

    /// Re-reads the configuration file given at start and swaps the decision settings. On any
    /// error the old settings stay. Keys that need a restart (listeners, cache URL, DNS,
    /// timeouts) are read but not applied.
    pub fn reload(&self) -> Result<(), RunError> {
        let Some(path) = &self.config_path else {
            return Err(RunError::Config(crate::config::ConfigError::Invalid(
                "no configuration file to reload".to_string(),
            )));
        };
        let config = Config::load(path).map_err(RunError::Config)?;
        let settings = Settings::from_config(&config).map_err(RunError::Config)?;
        self.replace_settings(settings);
        tracing::info!(path = %path.display(), "configuration reloaded");
        Ok(())
    }

    /// MTA-STS discovery and its cache.
    pub fn discovery(&self) -> &Arc<Discovery> {
        &self.discovery
    }

    /// The metrics.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// The cache store (with its fallback state).
    pub fn store(&self) -> &Arc<FallbackStore> {
        &self.store
    }

    /// One lookup, counted in the metrics under `protocol`, written up as a [`Decision`]
    /// (HTTP and `mtasts query`; with the policy view unless `protocol` is `socketmap`).
    pub async fn lookup(&self, protocol: &'static str, profile: &str, key: &str) -> Decision {
        let now = self.discovery.clock().now();
        let (settings, verdict) = self.judge(protocol, profile, key, now).await;
        // Postfix only reads the reply; the views of the policy are for HTTP and `query`.
        let profile = settings.profile(profile);
        Decision::from_verdict(key, profile, verdict, protocol != "socketmap", now)
    }

    /// One socketmap lookup: the reply alone, counted in the metrics like [`Daemon::lookup`]
    /// but without writing up the decision (Postfix reads only the reply).
    pub async fn answer(&self, profile: &str, key: &str) -> Reply {
        let now = self.discovery.clock().now();
        self.judge("socketmap", profile, key, now).await.1.reply
    }

    /// The decision for `key` under the profile named `profile` (see [`crate::decision`]),
    /// not counted in the metrics.
    pub async fn decide(&self, profile: &str, key: &str) -> Decision {
        let now = self.discovery.clock().now();
        let settings = self.settings();
        let profile = settings.profile(profile);
        let verdict = self.verdict(&settings, profile, key, now).await;
        Decision::from_verdict(key, profile, verdict, true, now)
    }

    /// The verdict for one lookup, counted in the metrics and logged.
    async fn judge(
        &self,
        protocol: &'static str,
        name: &str,
        key: &str,
        now: u64,
    ) -> (Arc<Settings>, Verdict) {
        let started = Instant::now();
        let settings = self.settings();
        let verdict = self
            .verdict(&settings, settings.profile(name), key, now)
            .await;
        self.metrics.lookup_answered(
            protocol,
            verdict.status().as_str(),
            verdict.source.as_str(),
            started.elapsed().as_secs_f64(),
        );
        tracing::debug!(
            protocol,
            profile = name,
            key,
            answer = %Payload(&verdict.reply),
            source = verdict.source.as_str(),
            "lookup answered"
        );
        (settings, verdict)
    }

    /// What decides `key` under `profile` (the precedence of [`crate::decision`]).
    async fn verdict(
        &self,
        settings: &Settings,
        profile: &Profile,
        key: &str,
        now: u64,
    ) -> Verdict {
        let domain = match classify_key(key) {
            NextHop::Domain(domain) => domain,
            NextHop::ParentProbe => {
                return Verdict::new(
                    None,
                    Reply::NotFound,
                    Source::Key,
                    "parent-domain probe: MTA-STS policies never apply to subdomains (RFC 8461 §3.4)",
                );
            }
            NextHop::AddressLiteral => {
                return Verdict::new(
                    None,
                    Reply::NotFound,
                    Source::Key,
                    "address literal: no domain, so no MTA-STS policy (RFC 8461 §3.4)",
                );
            }
            NextHop::Invalid(_) => {
                return Verdict::new(
                    None,
                    Reply::NotFound,
                    Source::Key,
                    "the key is not a domain name",
                );
            }
        };
        if let Some((entry, level)) = settings.static_levels.lookup(&domain) {
            let reason = format!("static level from tls_levels {entry:?}");
            let mut verdict = Verdict::new(
                Some(domain.into_owned()),
                Reply::Ok(render_level(level, &profile.style).into()),
                Source::Static,
                reason,
            );
            verdict.static_entry = Some(entry);
            return verdict;
        }
        if settings.dane {
            // Boxed, like discovery below: a cache hit does not carry this future's space.
            let finding = Box::pin(self.dane.check(&domain, now, settings.dane_ttl)).await;
            let decided = if let Some(error) = &finding.temp_error {
                Some((
                    Reply::Temp("DANE TLSA lookup failed temporarily".to_string()),
                    format!(
                        "cannot tell whether DANE applies ({error}); an MTA-STS answer could override DANE (RFC 8461 §2)"
                    ),
                ))
            } else {
                finding.tls_level().map(|level| {
                    (
                        Reply::Ok(render_level(&level, &profile.style).into()),
                        format!(
                            "the MX RRset is DNSSEC-authenticated and MX hosts publish DNSSEC-authenticated TLSA records: DANE takes precedence over MTA-STS (RFC 8461 §2); {}",
                            if level.as_str() == "dane-only" {
                                "every MX host has them"
                            } else {
                                "only some MX hosts have them, so DANE where possible"
                            }
                        ),
                    )
                })
            };
            if let Some((reply, reason)) = decided {
                let mut verdict =
                    Verdict::new(Some(domain.into_owned()), reply, Source::Dane, reason);
                verdict.dane = Some(finding);
                return verdict;
            }
        }
        let outcome = match self.discovery.from_memo(&domain, now) {
            Some(outcome) => outcome,
            // The discovery future (store, DNS, fetch) is large; boxed, so that the lookup
            // future of a cache hit stays small and is not copied around at its full size
            // (docs/benchmarks.md).
            None => Box::pin(self.discovery.lookup_at(&domain, now)).await,
        };
        let (reply, reason) = sts_reply(&outcome, profile);
        let mut verdict = Verdict::new(
            Some(domain.into_owned()),
            reply,
            outcome.source.into(),
            reason,
        );
        verdict.sts = Some(outcome);
        verdict
    }
}

/// A reply shown as its payload, rendered only when the log line is written.
struct Payload<'a>(&'a Reply);

impl std::fmt::Display for Payload<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&String::from_utf8_lossy(&self.0.to_payload()))
    }
}

impl SocketmapHandler for Daemon {
    fn handle<'a>(&'a self, request: Request<'a>) -> BoxFuture<'a, Reply> {
        Box::pin(self.answer(request.name, request.key))
    }
}

/// The discovery options of a configuration.
pub fn discovery_options(config: &Config) -> DiscoveryOptions {
    DiscoveryOptions {
        negative_ttl: config.cache.negative_ttl,
        grace: config.cache.grace,
        max_discoveries: config.cache.max_discoveries,
        // DNS, then the fetch (which resolves the policy host itself), plus slack.
        discovery_timeout: Duration::from_secs(config.timeout.saturating_mul(3) + 5),
        max_memo_entries: config.cache.max_memo_entries,
    }
}
