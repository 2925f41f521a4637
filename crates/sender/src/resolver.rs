//! MTA-STS discovery behind an RFC 8461 cache.
//!
//! [`Resolver::lookup`] answers "which MTA-STS policy applies to this domain now?":
//!
//! 1. A negative cache entry that has not run out → no policy, without DNS (domains without
//!    MTA-STS cost one TXT query per `negative_ttl`, not one per message).
//! 2. An unexpired cached policy whose TXT record was checked less than `grace` seconds ago →
//!    the cached policy, without DNS.
//! 3. Otherwise a *discovery*: the `_mta-sts` TXT lookup, then
//!    [`mtasts_proto::sts::cache::next_step`] decides between the cached policy, a fetch, and
//!    no policy (same id → no fetch, C90; a failed fetch keeps an unexpired cached policy, C91;
//!    at least [`FETCH_BACKOFF_SECS`] between failed fetches, C44; TXT gone or DNS failing →
//!    the cached policy while it lasts, C93, C96).
//!
//! Discoveries are single-flight: however many lookups of one domain arrive together, one
//! discovery runs (as its own task, so it completes and fills the cache even if every waiter
//! gives up) and they all get its outcome. At most `max_discoveries` run at once; beyond
//! `MAX_PENDING_PER_PERMIT × max_discoveries` distinct domains waiting, lookups are answered
//! as a temporary failure at once rather than queued without bound.
//!
//! Refresh-ahead ([`crate::refresh`]) uses [`Resolver::refresh`], a discovery that fetches
//! whenever a TXT record exists (and the backoff allows), which restarts the `max_age` clock.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use futures::FutureExt;
use futures::future::{BoxFuture, Shared};
use mtasts_net::dns::DnsLookup;
use mtasts_net::fetch::{FetchReport, PolicyFetch};
use mtasts_proto::ResultType;
use mtasts_proto::sts::cache::{
    CacheError, CachedPolicy, FETCH_BACKOFF_SECS, Step, TxtState, in_backoff, next_step,
};
use mtasts_proto::sts::record;
use mtasts_proto::txt::Selection;
use mtasts_store::{Entry, EntryState, PolicyStore, StoreError};
use serde::Serialize;
use tokio::sync::Semaphore;

use crate::clock::Clock;
use crate::metrics::{DiscoveryLabels, Metrics};

/// Distinct domains allowed to wait for a discovery slot, per slot.
pub const MAX_PENDING_PER_PERMIT: usize = 16;

/// A cache hit rewrites `last_used` at most this often (seconds).
const TOUCH_INTERVAL: u64 = 60;

/// Knobs of a [`Resolver`].
#[derive(Clone, Debug)]
pub struct ResolverOptions {
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

impl Default for ResolverOptions {
    /// 600 s negative cache, 60 s grace, 256 discoveries, 45 s wait, 100000 memo entries.
    fn default() -> Self {
        ResolverOptions {
            negative_ttl: 600,
            grace: 60,
            max_discoveries: 256,
            discovery_timeout: Duration::from_secs(45),
            max_memo_entries: 100_000,
        }
    }
}

/// Where a lookup's policy (or its absence) came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum StsSource {
    /// A cached policy.
    Cache,
    /// A policy fetched by this lookup's discovery.
    Fresh,
    /// The negative cache: known to have no policy.
    Negative,
    /// No policy (no record, a failed discovery without a usable cache, …).
    None,
}

/// How the cache took part in a lookup.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum CacheUse {
    /// Served from the cache without DNS.
    Hit,
    /// A discovery ran (or was joined).
    Miss,
    /// Served from the negative cache.
    Negative,
}

/// The outcome of a lookup: the policy to apply, if any, and how it was found.
#[derive(Clone, Debug, Serialize)]
pub struct StsOutcome {
    /// The policy domain.
    pub domain: String,
    /// The policy to apply (of any mode), when there is one.
    #[serde(skip)]
    pub policy: Option<Arc<HotPolicy>>,
    /// Where it came from.
    pub source: StsSource,
    /// How the cache took part.
    pub cache: CacheUse,
    /// Discovery failed temporarily (DNS error, timeout, overload) and nothing usable was
    /// cached: "could not find out", not "no policy" (C27).
    pub temp_error: bool,
    /// What discovery saw.
    pub details: DiscoveryDetails,
}

/// What one discovery (or cache consultation) saw, for logs, `/v1/policy` and `mtasts query`.
#[derive(Clone, Debug, Default, Serialize)]
pub struct DiscoveryDetails {
    /// The TXT lookup, when one was made.
    pub txt: Option<TxtDetails>,
    /// The cache decision after the TXT lookup: `use-cached`, `fetch` or `no-policy`.
    pub step: Option<&'static str>,
    /// The policy fetch, when one was made.
    pub fetch: Option<FetchDetails>,
    /// The discovery outcome (as in the `mtasts_discoveries_total` metric): `fetched`,
    /// `unchanged`, `no-record`, `dns-error`, `fetch-error`, `invalid`, `backoff`, `busy`,
    /// `timeout`.
    pub outcome: Option<&'static str>,
    /// The RFC 8460 result type of a failed discovery.
    pub result_type: Option<String>,
    /// Unix seconds of the last failed fetch for this domain.
    pub last_failure: Option<u64>,
    /// Until when no fetch is attempted (5-minute backoff after a failure).
    pub backoff_until: Option<u64>,
    /// Until when the negative cache entry holds.
    pub negative_until: Option<u64>,
    /// Anything else worth saying.
    pub note: Option<String>,
}

/// The `_mta-sts` TXT lookup.
#[derive(Clone, Debug, Serialize)]
pub struct TxtDetails {
    /// The name asked.
    pub name: String,
    /// `record`, `no-record`, `invalid`, `multiple`, `temp-error`.
    pub status: &'static str,
    /// The record's id.
    pub id: Option<String>,
    /// The record text (or texts, `; `-joined, for `multiple`).
    pub record: Option<String>,
    /// The DNS error or why the record is invalid.
    pub error: Option<String>,
}

/// The policy fetch.
#[derive(Clone, Debug, Serialize)]
pub struct FetchDetails {
    /// The URL.
    pub url: String,
    /// The address that answered (or failed last).
    pub ip: Option<String>,
    /// The HTTP status.
    pub status: Option<u16>,
    /// The TLS version.
    pub tls_version: Option<String>,
    /// Why the fetch or the policy failed.
    pub error: Option<String>,
    /// The RFC 8460 result type of the failure.
    pub result_type: Option<String>,
}

/// Recent TXT checks, in memory only.
#[derive(Clone, Debug)]
struct Checked {
    at: u64,
    temp_error: bool,
    /// The policy the store held when it was last read within this check's grace period,
    /// parsed, so cache hits skip the store read and the parse.
    hot: Option<Arc<HotPolicy>>,
    /// The store's negative entry, likewise: no policy until this time.
    negative_until: Option<u64>,
    /// `last_failure` of the entry behind `hot` / `negative_until`.
    last_failure: Option<u64>,
    /// `last_used` of the entry behind `hot`, for the touch interval.
    last_used: u64,
}

impl Checked {
    fn new(at: u64, temp_error: bool) -> Self {
        Checked {
            at,
            temp_error,
            hot: None,
            negative_until: None,
            last_failure: None,
            last_used: 0,
        }
    }
}

/// A cached policy, parsed once, with its Postfix answers rendered once per answer style.
///
/// Lookups share it through an `Arc`; it derefs to the [`CachedPolicy`].
#[derive(Debug)]
pub struct HotPolicy {
    cached: CachedPolicy,
    answers: Mutex<Vec<(mtasts_proto::postfix::AnswerStyle, Arc<str>)>>,
}

impl HotPolicy {
    /// Wraps a parsed cached policy.
    pub fn new(cached: CachedPolicy) -> Self {
        HotPolicy {
            cached,
            answers: Mutex::new(Vec::new()),
        }
    }

    /// The answer for `style`, rendered by `render` the first time it is asked for.
    pub fn answer(
        &self,
        style: mtasts_proto::postfix::AnswerStyle,
        render: impl FnOnce() -> String,
    ) -> Arc<str> {
        let mut answers = self.answers.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((_, answer)) = answers.iter().find(|(s, _)| *s == style) {
            return answer.clone();
        }
        let answer: Arc<str> = render().into();
        answers.push((style, answer.clone()));
        answer
    }
}

impl std::ops::Deref for HotPolicy {
    type Target = CachedPolicy;

    fn deref(&self) -> &CachedPolicy {
        &self.cached
    }
}

type Flight = Shared<BoxFuture<'static, Arc<StsOutcome>>>;

/// MTA-STS discovery with cache, single flight, backoff and negative cache.
pub struct Resolver {
    dns: Arc<dyn DnsLookup>,
    fetcher: Arc<dyn PolicyFetch>,
    store: Arc<dyn PolicyStore>,
    clock: Arc<dyn Clock>,
    metrics: Arc<Metrics>,
    options: RwLock<ResolverOptions>,
    flights: Mutex<HashMap<String, Flight>>,
    permits: Arc<Semaphore>,
    memo: Mutex<HashMap<String, Checked>>,
}

impl Resolver {
    /// A resolver over these edges.
    pub fn new(
        dns: Arc<dyn DnsLookup>,
        fetcher: Arc<dyn PolicyFetch>,
        store: Arc<dyn PolicyStore>,
        clock: Arc<dyn Clock>,
        metrics: Arc<Metrics>,
        options: ResolverOptions,
    ) -> Arc<Resolver> {
        Arc::new(Resolver {
            dns,
            fetcher,
            store,
            clock,
            metrics,
            permits: Arc::new(Semaphore::new(options.max_discoveries.max(1))),
            options: RwLock::new(options),
            flights: Mutex::new(HashMap::new()),
            memo: Mutex::new(HashMap::new()),
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
        let mut options = self.options.write().unwrap_or_else(|p| p.into_inner());
        options.negative_ttl = negative_ttl;
        options.grace = grace;
    }

    fn options(&self) -> ResolverOptions {
        self.options
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The policy that applies to `domain` (normalised) now. See the module docs.
    pub async fn lookup(self: &Arc<Self>, domain: &str) -> StsOutcome {
        let now = self.clock.now();
        let options = self.options();
        let memo = self.memo_get(domain);
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
                self.memo_put(domain, checked);
            }
            self.metrics.cache_result("negative");
            return StsOutcome {
                domain: domain.to_string(),
                policy: None,
                source: StsSource::Negative,
                cache: CacheUse::Negative,
                temp_error: false,
                details: DiscoveryDetails {
                    negative_until: Some(until),
                    last_failure: entry.last_failure,
                    backoff_until: backoff_until(entry.last_failure, now),
                    ..DiscoveryDetails::default()
                },
            };
        }
        let usable = entry
            .as_ref()
            .and_then(|e| stored_policy(domain, e))
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
                );
                return cached_outcome(domain, hot, entry.last_failure, now, None);
            }
            if checked.temp_error {
                self.metrics.cache_result("hit");
                return StsOutcome {
                    details: DiscoveryDetails {
                        outcome: Some("dns-error"),
                        note: Some(
                            "the last TXT lookup failed temporarily; not asked again yet".into(),
                        ),
                        ..DiscoveryDetails::default()
                    },
                    ..none_outcome(domain, true)
                };
            }
        }
        self.metrics.cache_result("miss");
        match tokio::time::timeout(options.discovery_timeout, self.flight(domain, false)).await {
            Ok(outcome) => (*outcome).clone(),
            Err(_) => {
                let note = "discovery did not finish in time; it goes on in the background";
                match (usable, &entry) {
                    (Some(policy), Some(entry)) => cached_outcome(
                        domain,
                        Arc::new(HotPolicy::new(policy)),
                        entry.last_failure,
                        now,
                        Some(note.to_string()),
                    ),
                    _ => StsOutcome {
                        details: DiscoveryDetails {
                            outcome: Some("timeout"),
                            note: Some(note.to_string()),
                            ..DiscoveryDetails::default()
                        },
                        ..none_outcome(domain, true)
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

    /// The running discovery of `domain`, or a new one.
    fn flight(self: &Arc<Self>, domain: &str, force: bool) -> Flight {
        let mut flights = self.flights.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(flight) = flights.get(domain) {
            return flight.clone();
        }
        let limit = self.options().max_discoveries.max(1) * MAX_PENDING_PER_PERMIT;
        if flights.len() >= limit {
            self.count_discovery("busy", None);
            let outcome = StsOutcome {
                details: DiscoveryDetails {
                    outcome: Some("busy"),
                    note: Some("too many discoveries waiting".to_string()),
                    ..DiscoveryDetails::default()
                },
                ..none_outcome(domain, true)
            };
            return futures::future::ready(Arc::new(outcome)).boxed().shared();
        }
        let this = self.clone();
        let owned = domain.to_string();
        let task = tokio::spawn(async move {
            let outcome = match this.permits.clone().acquire_owned().await {
                Ok(_permit) => this.discover(&owned, force).await,
                // The semaphore is never closed.
                Err(_) => none_outcome(&owned, true),
            };
            this.flights
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(&owned);
            Arc::new(outcome)
        });
        let owned = domain.to_string();
        let flight = async move {
            match task.await {
                Ok(outcome) => outcome,
                Err(e) => {
                    tracing::error!(domain = %owned, error = %e, "MTA-STS discovery task failed");
                    Arc::new(none_outcome(&owned, true))
                }
            }
        }
        .boxed()
        .shared();
        flights.insert(domain.to_string(), flight.clone());
        flight
    }

    /// One discovery: TXT lookup, the cache decision, maybe a fetch, the store updated.
    async fn discover(&self, domain: &str, force: bool) -> StsOutcome {
        let now = self.clock.now();
        let options = self.options();
        let entry = self.load(domain).await;
        if !force
            && let Some(entry) = &entry
            && let EntryState::NoPolicy { until } = entry.state
            && now < until
        {
            // Another discovery just found nothing.
            return StsOutcome {
                domain: domain.to_string(),
                policy: None,
                source: StsSource::Negative,
                cache: CacheUse::Negative,
                temp_error: false,
                details: DiscoveryDetails {
                    negative_until: Some(until),
                    last_failure: entry.last_failure,
                    ..DiscoveryDetails::default()
                },
            };
        }
        let cached = entry.as_ref().and_then(|e| stored_policy(domain, e));
        let last_failure = entry.as_ref().and_then(|e| e.last_failure);
        // A refresh is not a use: it keeps `last_used`, so unused policies age out of
        // refresh-ahead.
        let used = match (&entry, force) {
            (Some(entry), true) => entry.last_used,
            _ => now,
        };
        let (txt, txt_details) = self.txt(domain).await;
        self.memo_put(domain, Checked::new(now, txt == TxtState::TempError));
        let step = match (&txt, force) {
            (TxtState::Record(_), true) if !in_backoff(last_failure, now) => Step::Fetch,
            _ => next_step(cached.as_ref(), &txt, last_failure, now),
        };
        let mut details = DiscoveryDetails {
            txt: Some(txt_details),
            step: Some(step_name(step)),
            last_failure,
            backoff_until: backoff_until(last_failure, now),
            ..DiscoveryDetails::default()
        };
        let usable = cached.clone().filter(|c| !c.is_expired(now));
        match step {
            Step::UseCached => {
                let outcome = match &txt {
                    TxtState::Record(id) if usable.as_ref().is_some_and(|c| &c.id == id) => {
                        "unchanged"
                    }
                    TxtState::Record(_) => "backoff",
                    TxtState::NoRecord => "no-record",
                    TxtState::TempError => "dns-error",
                };
                self.count_discovery(outcome, None);
                details.outcome = Some(outcome);
                if let Some(entry) = &entry
                    && !force
                {
                    self.touch(entry, now).await;
                }
                // next_step only says UseCached with a usable policy.
                kept_outcome(domain, usable, details)
            }
            Step::NoPolicy => {
                let (outcome, temp) = match &txt {
                    TxtState::TempError => ("dns-error", true),
                    TxtState::NoRecord => ("no-record", false),
                    TxtState::Record(_) => ("backoff", false),
                };
                self.count_discovery(outcome, None);
                details.outcome = Some(outcome);
                if txt == TxtState::NoRecord && options.negative_ttl > 0 {
                    let until = now.saturating_add(options.negative_ttl);
                    details.negative_until = Some(until);
                    self.save(&Entry {
                        domain: domain.to_string(),
                        state: EntryState::NoPolicy { until },
                        last_failure,
                        last_used: used,
                    })
                    .await;
                }
                StsOutcome {
                    details,
                    ..none_outcome(domain, temp)
                }
            }
            Step::Fetch => {
                let TxtState::Record(id) = txt else {
                    // next_step fetches only for a record; keep a typed answer regardless.
                    return StsOutcome {
                        details,
                        ..none_outcome(domain, false)
                    };
                };
                let report = self.fetcher.fetch(domain).await;
                let (fetched, fetch_details) = read_fetch(&report, id, now);
                details.fetch = Some(fetch_details);
                match fetched {
                    Ok(policy) => {
                        self.count_discovery("fetched", None);
                        details.outcome = Some("fetched");
                        details.backoff_until = None;
                        details.last_failure = None;
                        self.save(&Entry {
                            domain: domain.to_string(),
                            state: EntryState::Policy {
                                id: policy.id.as_str().to_string(),
                                body: policy.body.clone(),
                                fetched_at: now,
                            },
                            last_failure: None,
                            last_used: used,
                        })
                        .await;
                        StsOutcome {
                            domain: domain.to_string(),
                            policy: Some(Arc::new(HotPolicy::new(policy))),
                            source: StsSource::Fresh,
                            cache: CacheUse::Miss,
                            temp_error: false,
                            details,
                        }
                    }
                    Err((outcome, result_type)) => {
                        tracing::info!(
                            %domain,
                            outcome,
                            result_type = %result_type,
                            "MTA-STS policy fetch failed"
                        );
                        self.count_discovery(outcome, Some(&result_type));
                        details.outcome = Some(outcome);
                        details.result_type = Some(result_type.to_string());
                        details.last_failure = Some(now);
                        details.backoff_until = Some(now.saturating_add(FETCH_BACKOFF_SECS));
                        // Keep a cached policy (C91); without one, remember the failure as a
                        // short negative entry so the backoff also spares DNS.
                        let state = match &entry {
                            Some(Entry {
                                state: state @ EntryState::Policy { .. },
                                ..
                            }) => state.clone(),
                            _ => EntryState::NoPolicy {
                                until: now.saturating_add(FETCH_BACKOFF_SECS),
                            },
                        };
                        if let EntryState::NoPolicy { until } = state {
                            details.negative_until = Some(until);
                        }
                        self.save(&Entry {
                            domain: domain.to_string(),
                            state,
                            last_failure: Some(now),
                            last_used: used,
                        })
                        .await;
                        kept_outcome(domain, usable, details)
                    }
                }
            }
        }
    }

    /// The `_mta-sts` TXT lookup, classified.
    async fn txt(&self, domain: &str) -> (TxtState, TxtDetails) {
        let name = mtasts_proto::sts::record_name(domain);
        let mut details = TxtDetails {
            name: name.clone(),
            status: "no-record",
            id: None,
            record: None,
            error: None,
        };
        let rrset = match self.dns.txt(&name).await {
            Ok(rrset) => rrset,
            Err(e) if e.is_not_found() => {
                details.error = Some(e.to_string());
                return (TxtState::NoRecord, details);
            }
            Err(e) => {
                details.status = "temp-error";
                details.error = Some(e.to_string());
                return (TxtState::TempError, details);
            }
        };
        let state = match record::select(&rrset) {
            Selection::Found { record, raw, .. } => {
                details.status = "record";
                details.id = Some(record.id.as_str().to_string());
                details.record = Some(raw);
                TxtState::Record(record.id)
            }
            Selection::Missing { .. } => TxtState::NoRecord,
            Selection::Multiple { raws, .. } => {
                details.status = "multiple";
                details.record = Some(raws.join("; "));
                details.error = Some("more than one v=STSv1 record".to_string());
                TxtState::NoRecord
            }
            Selection::Invalid { raw, error, .. } => {
                details.status = "invalid";
                details.record = Some(raw);
                details.error = Some(error.to_string());
                TxtState::NoRecord
            }
        };
        (state, details)
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
        options: &ResolverOptions,
    ) -> Option<StsOutcome> {
        if let Some(until) = memo.negative_until
            && now < until
        {
            self.metrics.cache_result("negative");
            return Some(StsOutcome {
                domain: domain.to_string(),
                policy: None,
                source: StsSource::Negative,
                cache: CacheUse::Negative,
                temp_error: false,
                details: DiscoveryDetails {
                    negative_until: Some(until),
                    last_failure: memo.last_failure,
                    backoff_until: backoff_until(memo.last_failure, now),
                    ..DiscoveryDetails::default()
                },
            });
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
            self.memo_put(domain, checked);
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
        Some(cached_outcome(
            domain,
            hot.clone(),
            memo.last_failure,
            now,
            None,
        ))
    }

    fn memo_get(&self, domain: &str) -> Option<Checked> {
        self.memo
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(domain)
            .cloned()
    }

    fn memo_put(&self, domain: &str, checked: Checked) {
        let max = self.options().max_memo_entries.max(1);
        let mut memo = self.memo.lock().unwrap_or_else(|p| p.into_inner());
        if memo.len() >= max && !memo.contains_key(domain) {
            // A memo only saves DNS queries; starting over is always correct.
            memo.clear();
        }
        memo.insert(domain.to_string(), checked);
    }

    /// Forgets the recent TXT checks (after a cache purge).
    pub fn forget(&self, domain: Option<&str>) {
        let mut memo = self.memo.lock().unwrap_or_else(|p| p.into_inner());
        match domain {
            Some(domain) => {
                memo.remove(domain);
            }
            None => memo.clear(),
        }
    }
}

/// The cached policy of an entry, if it holds a valid one.
fn stored_policy(domain: &str, entry: &Entry) -> Option<CachedPolicy> {
    let EntryState::Policy {
        id,
        body,
        fetched_at,
    } = &entry.state
    else {
        return None;
    };
    match CachedPolicy::from_stored(id, body.clone(), *fetched_at) {
        Ok(policy) => Some(policy),
        Err(e) => {
            tracing::warn!(%domain, error = %e, "cached policy no longer parses; ignoring it");
            None
        }
    }
}

/// After a discovery that did not fetch (or whose fetch failed): the usable cached policy if
/// there is one, else no policy.
fn kept_outcome(
    domain: &str,
    usable: Option<CachedPolicy>,
    details: DiscoveryDetails,
) -> StsOutcome {
    match usable {
        Some(policy) => StsOutcome {
            domain: domain.to_string(),
            policy: Some(Arc::new(HotPolicy::new(policy))),
            source: StsSource::Cache,
            cache: CacheUse::Miss,
            temp_error: false,
            details,
        },
        None => StsOutcome {
            details,
            ..none_outcome(domain, false)
        },
    }
}

fn none_outcome(domain: &str, temp_error: bool) -> StsOutcome {
    StsOutcome {
        domain: domain.to_string(),
        policy: None,
        source: StsSource::None,
        cache: CacheUse::Miss,
        temp_error,
        details: DiscoveryDetails::default(),
    }
}

fn cached_outcome(
    domain: &str,
    policy: Arc<HotPolicy>,
    last_failure: Option<u64>,
    now: u64,
    note: Option<String>,
) -> StsOutcome {
    StsOutcome {
        domain: domain.to_string(),
        policy: Some(policy),
        source: StsSource::Cache,
        cache: CacheUse::Hit,
        temp_error: false,
        details: DiscoveryDetails {
            last_failure,
            backoff_until: backoff_until(last_failure, now),
            note,
            ..DiscoveryDetails::default()
        },
    }
}

fn backoff_until(last_failure: Option<u64>, now: u64) -> Option<u64> {
    last_failure
        .filter(|_| in_backoff(last_failure, now))
        .map(|failed| failed.saturating_add(FETCH_BACKOFF_SECS))
}

fn step_name(step: Step) -> &'static str {
    match step {
        Step::UseCached => "use-cached",
        Step::Fetch => "fetch",
        Step::NoPolicy => "no-policy",
    }
}

/// The fetched policy, or the discovery outcome and RFC 8460 result type of the failure.
type FetchOutcome = Result<CachedPolicy, (&'static str, ResultType)>;

fn read_fetch(
    report: &FetchReport,
    id: mtasts_proto::sts::record::PolicyId,
    now: u64,
) -> (FetchOutcome, FetchDetails) {
    let mut details = FetchDetails {
        url: report.url.clone(),
        ip: report.ip.map(|ip| ip.to_string()),
        status: report.status,
        tls_version: report.tls_version.clone(),
        error: None,
        result_type: None,
    };
    let outcome = match &report.outcome {
        Err(e) => Err(("fetch-error", e.result_type(), e.to_string())),
        Ok(fetched) => match String::from_utf8(fetched.body.clone()) {
            Err(_) => Err((
                "invalid",
                ResultType::StsPolicyInvalid,
                "the policy is not UTF-8".to_string(),
            )),
            Ok(body) => CachedPolicy::new(id, body, now).map_err(|e| {
                let message = match &e {
                    CacheError::Policy(p) => p.to_string(),
                    other => other.to_string(),
                };
                ("invalid", ResultType::StsPolicyInvalid, message)
            }),
        },
    };
    let outcome = outcome.map_err(|(outcome, result_type, error)| {
        details.error = Some(error);
        details.result_type = Some(result_type.to_string());
        (outcome, result_type)
    });
    (outcome, details)
}
