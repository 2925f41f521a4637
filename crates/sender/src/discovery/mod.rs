//! MTA-STS discovery behind an RFC 8461 cache: the engine that answers "which MTA-STS
//! policy applies to this domain now?" for the daemon's decisions.
//!
//! [`Discovery::lookup`]:
//!
//! 1. A negative cache entry that has not run out → no policy, without DNS (domains without
//!    MTA-STS cost one TXT query per `negative_ttl`, not one per message).
//! 2. An unexpired cached policy whose TXT record was checked less than `grace` seconds ago →
//!    the cached policy, without DNS ([`hot`]: the memo of recent checks and the parsed
//!    policy, so such a hit reads neither the store nor DNS).
//! 3. Otherwise a *discovery* ([`discover`]): the `_mta-sts` TXT lookup, then
//!    [`mtasts_proto::sts::cache::next_step`] decides between the cached policy, a fetch, and
//!    no policy (same id → no fetch, C90; a failed fetch keeps an unexpired cached policy, C91;
//!    at least [`FETCH_BACKOFF_SECS`](mtasts_proto::sts::cache::FETCH_BACKOFF_SECS) between
//!    failed fetches, C44; TXT gone or DNS failing → the cached policy while it lasts, C93,
//!    C96).
//!
//! Discoveries are single-flight and bounded ([`flight`]). Refresh-ahead
//! ([`crate::refresh`]) uses [`Discovery::refresh`], a discovery that fetches whenever a TXT
//! record exists (and the backoff allows), which restarts the `max_age` clock.
//!
//! | module | what |
//! |---|---|
//! | this one | [`Discovery`]: the lookup path and the store access |
//! | [`discover`] | one discovery: TXT, the cache step, maybe a fetch, the store updated |
//! | [`flight`] | single flight and the discovery slots |
//! | [`hot`] | [`HotPolicy`] and the memo of recent TXT checks |
//! | [`outcome`] | [`StsOutcome`] and the details record shown by `/v1/policy` and `mtasts query` |
//! | [`steps`] | the TXT lookup, the stored policy and the fetch read into typed state |
//!
//! (In this workspace "resolver" names only the daemon and its CLI command; this engine is
//! "discovery".)

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use mtasts_net::dns::DnsLookup;
use mtasts_net::fetch::PolicyFetch;
use mtasts_proto::ResultType;
use mtasts_store::{Entry, EntryState, PolicyStore, StoreError};

use crate::clock::Clock;
use crate::metrics::{DiscoveryLabels, Metrics};

pub mod discover;
pub mod flight;
pub mod hot;
pub mod outcome;
pub mod steps;

pub use flight::MAX_PENDING_PER_PERMIT;
pub use hot::HotPolicy;
pub use outcome::{CacheUse, DiscoveryDetails, FetchDetails, StsOutcome, StsSource, TxtDetails};

use flight::Flights;
use hot::{Checked, Memo};
use outcome::backoff_until;

/// A cache hit rewrites `last_used` at most this often (seconds).
const TOUCH_INTERVAL: u64 = 60;

/// Knobs of a [`Discovery`].
#[derive(Clone, Debug)]
pub struct DiscoveryOptions {
    /// Seconds a "no MTA-STS here" finding is cached.
    pub negative_ttl: u64,
    /// Seconds a TXT check is trusted before asking DNS again.
    pub grace: u64,
    /// Most discoveries at once.
    pub max_discoveries: usize,
    /// Longest a lookup waits for a discovery before answering from what it has.
    pub discovery_timeout: Duration,
    /// Most domains in the in-memory memo of recent TXT checks.
    pub max_memo_entries: usize,
}

impl Default for DiscoveryOptions {
    /// 600 s negative cache, 60 s grace, 256 discoveries, 45 s wait, 100000 memo entries.
    fn default() -> Self {
        DiscoveryOptions {
            negative_ttl: 600,
            grace: 60,
            max_discoveries: 256,
            discovery_timeout: Duration::from_secs(45),
            max_memo_entries: 100_000,
        }
    }
}

/// MTA-STS discovery with cache, single flight, backoff and negative cache.
pub struct Discovery {
    dns: Arc<dyn DnsLookup>,
    fetcher: Arc<dyn PolicyFetch>,
    store: Arc<dyn PolicyStore>,
    clock: Arc<dyn Clock>,
    metrics: Arc<Metrics>,
    /// The options fixed at start; `negative_ttl` and `grace` are read from the atomics
    /// below, which a reload changes (no lock on the lookup path).
    fixed: DiscoveryOptions,
    negative_ttl: AtomicU64,
    grace: AtomicU64,
    flights: Arc<Flights>,
    memo: Memo,
}

impl Discovery {
    /// Discovery over these edges.
    pub fn new(
        dns: Arc<dyn DnsLookup>,
        fetcher: Arc<dyn PolicyFetch>,
        store: Arc<dyn PolicyStore>,
        clock: Arc<dyn Clock>,
        metrics: Arc<Metrics>,
        options: DiscoveryOptions,
    ) -> Arc<Discovery> {
        Arc::new(Discovery {
            dns,
            fetcher,
            store,
            clock,
            metrics,
            flights: Flights::new(options.max_discoveries),
            negative_ttl: AtomicU64::new(options.negative_ttl),
            grace: AtomicU64::new(options.grace),
            fixed: options,
            memo: Memo::default(),
        })
    }

    /// The store the cache lives in.
    pub fn store(&self) -> &Arc<dyn PolicyStore> {
        &self.store
    }

    /// The DNS edge (shared with DANE lookups).
    pub fn dns(&self) -> &Arc<dyn DnsLookup> {
        &self.dns
    }

    /// The clock.
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    /// Changes the negative cache lifetime and the grace period (on reload).
    pub fn set_ttls(&self, negative_ttl: u64, grace: u64) {
        self.negative_ttl.store(negative_ttl, Ordering::Relaxed);
        self.grace.store(grace, Ordering::Relaxed);
    }

    fn options(&self) -> DiscoveryOptions {
        DiscoveryOptions {
            negative_ttl: self.negative_ttl.load(Ordering::Relaxed),
            grace: self.grace.load(Ordering::Relaxed),
            ..self.fixed.clone()
        }
    }

    /// The policy that applies to `domain` (normalised) now. See the module docs.
    pub async fn lookup(self: &Arc<Self>, domain: &str) -> StsOutcome {
        self.lookup_at(domain, self.clock.now()).await
    }

    /// What the memo alone says about `domain` at `now` (a hot cached policy, or a negative
    /// entry it remembers), without the store or the network: the first step of
    /// [`Discovery::lookup_at`], which a caller can take without awaiting anything. `None`:
    /// ask [`Discovery::lookup_at`].
    pub fn from_memo(self: &Arc<Self>, domain: &str, now: u64) -> Option<StsOutcome> {
        let memo = self.memo.get(domain)?;
        self.hot_outcome(domain, &memo, now, &self.options())
    }

    /// [`Discovery::lookup`] at `now`, for a caller that has just read the clock.
    pub async fn lookup_at(self: &Arc<Self>, domain: &str, now: u64) -> StsOutcome {
        let options = self.options();
        let memo = self.memo.get(domain);
        if let Some(outcome) = memo
            .as_ref()
            .and_then(|m| self.hot_outcome(domain, m, now, &options))
        {
            return outcome;
        }
        let entry = self.load(domain).await;
        if let Some(entry) = &entry
            && let EntryState::NoPolicy { until } = entry.state
            && now < until
        {
            if let Some(mut checked) = memo.clone() {
                checked.negative_until = Some(until);
                checked.last_failure = entry.last_failure;
                self.memo_put(domain, checked, &options);
            }
            self.metrics.cache_result("negative");
            let mut outcome = StsOutcome::negative(domain, until, entry.last_failure);
            outcome.details.backoff_until = backoff_until(entry.last_failure, now);
            return outcome;
        }
        let usable = entry
            .as_ref()
            .and_then(|e| steps::stored_policy(domain, e))
            .filter(|c| !c.is_expired(now));
        if let Some(checked) = memo
            && now < checked.at.saturating_add(options.grace)
        {
            if let (Some(policy), Some(entry)) = (usable.clone(), &entry) {
                self.metrics.cache_result("hit");
                self.touch(entry, now).await;
                let hot = Arc::new(HotPolicy::new(policy));
                self.memo_put(
                    domain,
                    Checked {
                        hot: Some(hot.clone()),
                        last_failure: entry.last_failure,
                        last_used: entry.last_used.max(now),
                        ..checked.clone()
                    },
                    &options,
                );
                return StsOutcome::cached(domain, hot, entry.last_failure, now, None);
            }
            if checked.temp_error {
                self.metrics.cache_result("hit");
                return StsOutcome {
                    details: Box::new(DiscoveryDetails {
                        outcome: Some("dns-error"),
                        note: Some(
                            "the last TXT lookup failed temporarily; not asked again yet".into(),
                        ),
                        ..DiscoveryDetails::default()
                    }),
                    ..StsOutcome::none(domain, true)
                };
            }
        }
        self.metrics.cache_result("miss");
        match tokio::time::timeout(options.discovery_timeout, self.flight(domain, false)).await {
            Ok(outcome) => (*outcome).clone(),
            Err(_) => {
                let note = "discovery did not finish in time; it goes on in the background";
                match (usable, &entry) {
                    (Some(policy), Some(entry)) => StsOutcome::cached(
                        domain,
                        Arc::new(HotPolicy::new(policy)),
                        entry.last_failure,
                        now,
                        Some(note.to_string()),
                    ),
                    _ => StsOutcome {
                        details: Box::new(DiscoveryDetails {
                            outcome: Some("timeout"),
                            note: Some(note.to_string()),
                            ..DiscoveryDetails::default()
                        }),
                        ..StsOutcome::none(domain, true)
                    },
                }
            }
        }
    }

    /// A discovery that fetches whenever a TXT record exists and the backoff allows, for
    /// refresh-ahead. Joins a discovery of the same domain already running.
    pub async fn refresh(self: &Arc<Self>, domain: &str) -> StsOutcome {
        (*self.flight(domain, true).await).clone()
    }

    /// The entry of `domain`; store errors are logged and read as "nothing cached".
    async fn load(&self, domain: &str) -> Option<Entry> {
        match self.store.get(domain).await {
            Ok(entry) => entry,
            Err(StoreError::Corrupt(reason)) => {
                tracing::warn!(%domain, error = %reason, "corrupt cache entry; discovering again");
                let _ = self.store.delete(domain).await;
                None
            }
            Err(e) => {
                tracing::warn!(%domain, error = %e, "cannot read the policy cache");
                None
            }
        }
    }

    async fn save(&self, entry: &Entry) {
        if let Err(e) = self.store.put(entry).await {
            tracing::warn!(domain = %entry.domain, error = %e, "cannot write the policy cache");
        }
    }

    /// Records that the entry answered a lookup (at most once per [`TOUCH_INTERVAL`]).
    async fn touch(&self, entry: &Entry, now: u64) {
        if now >= entry.last_used.saturating_add(TOUCH_INTERVAL) {
            let mut touched = entry.clone();
            touched.last_used = now;
            self.save(&touched).await;
        }
    }

    fn count_discovery(&self, outcome: &'static str, result_type: Option<&ResultType>) {
        self.metrics
            .discoveries
            .get_or_create(&DiscoveryLabels {
                outcome,
                result_type: result_type.map(|r| r.to_string()).unwrap_or_default(),
            })
            .inc();
    }

    /// A cache hit answered from the memo alone: the policy (or negative entry) read from the
    /// store within the grace period, without reading or parsing it again. Discoveries and
    /// refreshes replace the memo, so it never outlives a change made by this daemon; changes
    /// made elsewhere (another node, `mtasts cache purge`) are seen within `grace` seconds.
    fn hot_outcome(
        self: &Arc<Self>,
        domain: &str,
        memo: &Checked,
        now: u64,
        options: &DiscoveryOptions,
    ) -> Option<StsOutcome> {
        if let Some(until) = memo.negative_until
            && now < until
        {
            self.metrics.cache_result("negative");
            let mut outcome = StsOutcome::negative(domain, until, memo.last_failure);
            outcome.details.backoff_until = backoff_until(memo.last_failure, now);
            return Some(outcome);
        }
        let hot = memo.hot.as_ref()?;
        if now >= memo.at.saturating_add(options.grace) || hot.is_expired(now) {
            return None;
        }
        self.metrics.cache_result("hit");
        if now >= memo.last_used.saturating_add(TOUCH_INTERVAL) {
            // Record the use in the store (for refresh-ahead) at most once per interval, off
            // the lookup's path.
            let mut checked = memo.clone();
            checked.last_used = now;
            self.memo_put(domain, checked, options);
            let entry = Entry {
                domain: domain.to_string(),
                state: EntryState::Policy {
                    id: hot.id.to_string(),
                    body: hot.body.clone(),
                    fetched_at: hot.fetched_at,
                },
                last_failure: memo.last_failure,
                last_used: now,
            };
            let this = self.clone();
            tokio::spawn(async move { this.save(&entry).await });
        }
        Some(StsOutcome::cached(
            domain,
            hot.clone(),
            memo.last_failure,
            now,
            None,
        ))
    }

    fn memo_put(&self, domain: &str, checked: Checked, options: &DiscoveryOptions) {
        self.memo.put(domain, checked, options.max_memo_entries);
    }

    /// Forgets the recent TXT checks (after a cache purge).
    pub fn forget(&self, domain: Option<&str>) {
        self.memo.forget(domain);
    }
}
