//! The configured policy store with an in-memory stand-in for when it is unavailable.
//!
//! When the configured backend answers [`StoreError::Unavailable`] (or cannot be opened at
//! start), lookups keep working from a bounded in-memory store: the daemon logs one warning
//! per transition, sets the `mtasts_store_fallback` gauge (and `/healthz` says
//! `"fallback": true`), and retries the backend once the retry interval has passed
//! (`cache.store_retry`, default [`RETRY_INTERVAL`]): the next store operation (or, when
//! none comes along, a watchdog ticking at that interval) starts a
//! recovery attempt in the background and itself goes on with memory, so no lookup waits for
//! a backend that may still be gone. The attempt probes the backend with a read; when it
//! answers, what was learned meanwhile is copied into it, the memory store is emptied, the
//! gauge goes back to 0 and one info line says so.
//!
//! Entries cached only in the backend are not visible while it is down: a domain may be
//! discovered again then, which the RFC allows (the cache is an optimisation plus downgrade
//! protection, and the memory store restores the protection after the first lookup).

use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use futures::future::BoxFuture;
use mtasts_store::memory::MemoryStore;
use mtasts_store::{Entry, PolicyStore, StoreError};
use thiserror::Error;
use tokio::time::Instant;

use crate::metrics::Metrics;

/// Least time between two attempts to reach an unavailable backend, by default.
pub const RETRY_INTERVAL: Duration = Duration::from_secs(10);

/// The domain read to probe a backend before leaving the fallback (a reserved name that
/// is never a policy domain, RFC 2606).
const PROBE_DOMAIN: &str = "mtasts-store-probe.invalid";

/// Most entries kept in memory while the backend is down.
pub const FALLBACK_MAX_ENTRIES: usize = 100_000;

/// Most bytes of entry data kept in memory while the backend is down.
pub const FALLBACK_MAX_BYTES: usize = 256 * 1024 * 1024;

/// Why an attempt to leave the fallback failed (the memory stand-in stays in use).
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum RecoveryError {
    /// The backend could not be opened at start and there is no URL to open it again.
    #[error("no store URL to reopen")]
    NoUrl,
    /// Opening the backend failed.
    #[error("cannot open the policy store: {0}")]
    Open(StoreError),
    /// The backend is still unavailable.
    #[error("{0}")]
    Unavailable(String),
    /// The entries learned meanwhile could not be read from memory.
    #[error("cannot list the in-memory entries: {0}")]
    Memory(StoreError),
}

/// A [`PolicyStore`] that falls back to memory (see the module docs).
pub struct FallbackStore {
    inner: Arc<Inner>,
}

/// The shared part, also held by a recovery running in the background.
struct Inner {
    /// The URL to (re)open when the backend could not be opened at start.
    url: Option<String>,
    primary: RwLock<Option<Arc<dyn PolicyStore>>>,
    memory: MemoryStore,
    state: Mutex<State>,
    metrics: Arc<Metrics>,
    backend: &'static str,
    /// Least time between two attempts to reach the backend while it is unavailable.
    retry_interval: Duration,
}

#[derive(Debug, Default)]
struct State {
    /// The backend failed and memory is in use.
    degraded: bool,
    /// When the backend may be tried again.
    retry_at: Option<Instant>,
    /// A recovery attempt is running in the background.
    recovering: bool,
}

impl FallbackStore {
    /// Opens the store at `url`, retrying it at most every `retry_interval` while it is
    /// unavailable. `Unavailable` at start is not an error: the daemon starts on memory and
    /// keeps trying. Configuration errors are returned.
    pub async fn open(
        url: &str,
        metrics: Arc<Metrics>,
        retry_interval: Duration,
    ) -> Result<FallbackStore, StoreError> {
        match mtasts_store::open(url).await {
            Ok(store) => Ok(FallbackStore::with_primary(store, metrics, retry_interval)),
            Err(StoreError::Unavailable(reason)) => {
                let store = FallbackStore::new(
                    Some(url.to_string()),
                    None,
                    backend_name(url),
                    metrics,
                    retry_interval,
                );
                store.inner.enter_degraded(&reason);
                Ok(store)
            }
            Err(e) => Err(e),
        }
    }

    /// Wraps an open store, retrying it at most every `retry_interval` while it is
    /// unavailable.
    pub fn with_primary(
        primary: Arc<dyn PolicyStore>,
        metrics: Arc<Metrics>,
        retry_interval: Duration,
    ) -> FallbackStore {
        let backend = primary.backend();
        FallbackStore::new(None, Some(primary), backend, metrics, retry_interval)
    }

    fn new(
        url: Option<String>,
        primary: Option<Arc<dyn PolicyStore>>,
        backend: &'static str,
        metrics: Arc<Metrics>,
        retry_interval: Duration,
    ) -> FallbackStore {
        let store = FallbackStore {
            inner: Arc::new(Inner {
                url,
                primary: RwLock::new(primary),
                memory: memory_store(),
                state: Mutex::new(State::default()),
                metrics,
                backend,
                retry_interval,
            }),
        };
        store.spawn_watchdog();
        store
    }

    /// While degraded, tries the backend every retry interval even when no store operation
    /// comes along (cache hits are answered from the discovery memo without touching the
    /// store). Ends when the store is dropped.
    fn spawn_watchdog(&self) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let weak = Arc::downgrade(&self.inner);
        let interval = self.inner.retry_interval.max(Duration::from_millis(100));
        runtime.spawn(async move {
            loop {
                tokio::time::sleep(interval).await;
                let Some(inner) = weak.upgrade() else {
                    return;
                };
                if inner.lock_state().degraded {
                    FallbackStore { inner }.current();
                }
            }
        });
    }

    /// Whether the memory stand-in is in use.
    pub fn degraded(&self) -> bool {
        self.inner.lock_state().degraded
    }

    /// The configured backend's name.
    pub fn configured_backend(&self) -> &'static str {
        self.inner.backend
    }

    /// The backend for the next operation, or `None` for memory. While the backend is
    /// unavailable, once the retry interval has passed, a recovery attempt starts in the
    /// background: no lookup waits for a backend that may still be gone (connecting alone
    /// may take seconds) or for the entries being copied back.
    fn current(&self) -> Option<Arc<dyn PolicyStore>> {
        let mut state = self.inner.lock_state();
        if !state.degraded {
            drop(state);
            return self.inner.primary();
        }
        let due = state.retry_at.is_none_or(|at| Instant::now() >= at);
        if due && !state.recovering {
            // Without a runtime (never in the daemon) the next operation tries again.
            if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                state.recovering = true;
                state.retry_at = Some(Instant::now() + self.inner.retry_interval);
                let inner = self.inner.clone();
                runtime.spawn(async move {
                    if let Err(reason) = inner.try_recover().await {
                        tracing::debug!(backend = inner.backend, error = %reason, "policy store still unavailable");
                    }
                    let mut state = inner.lock_state();
                    state.recovering = false;
                    if state.degraded {
                        // Count the interval from the end of this attempt.
                        state.retry_at = Some(Instant::now() + inner.retry_interval);
                    }
                });
            }
        }
        None
    }
}

impl Inner {
    fn lock_state(&self) -> std::sync::MutexGuard<'_, State> {
        // The state is plain fields; a panic elsewhere cannot leave it inconsistent.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn primary(&self) -> Option<Arc<dyn PolicyStore>> {
        self.primary
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    fn enter_degraded(&self, reason: &str) {
        let mut state = self.lock_state();
        state.retry_at = Some(Instant::now() + self.retry_interval);
        if !state.degraded {
            state.degraded = true;
            self.metrics.store_fallback.set(1);
            self.metrics.store_fallback_transitions.inc();
            tracing::warn!(
                backend = self.backend,
                error = %reason,
                "policy store unavailable; caching in memory until it is back"
            );
        }
    }

    /// Reopens the backend if needed, probes it, copies the memory entries into it, and
    /// leaves the degraded state. Entries written to memory while the copy runs, after the
    /// list was taken, are dropped with the memory store (they are discovered again).
    async fn try_recover(&self) -> Result<(), RecoveryError> {
        let primary = match self.primary() {
            Some(primary) => primary,
            None => {
                let url = self.url.as_deref().ok_or(RecoveryError::NoUrl)?;
                let opened = mtasts_store::open(url).await.map_err(RecoveryError::Open)?;
                *self.primary.write().unwrap_or_else(|p| p.into_inner()) = Some(opened.clone());
                opened
            }
        };
        // Without entries to copy nothing else would touch the backend before declaring it
        // back; any answer but "unavailable" means it is reachable.
        if let Err(StoreError::Unavailable(reason)) = primary.get(PROBE_DOMAIN).await {
            return Err(RecoveryError::Unavailable(reason));
        }
        let entries = self
            .memory
            .list(FALLBACK_MAX_ENTRIES)
            .await
            .map_err(RecoveryError::Memory)?;
        for entry in &entries {
            match primary.put(entry).await {
                Ok(()) => {}
                Err(StoreError::Unavailable(reason)) => {
                    return Err(RecoveryError::Unavailable(reason));
                }
                Err(e) => {
                    tracing::warn!(domain = %entry.domain, error = %e, "cannot copy a cached entry back to the policy store")
                }
            }
        }
        {
            let mut state = self.lock_state();
            if state.degraded {
                state.degraded = false;
                state.retry_at = None;
                self.metrics.store_fallback.set(0);
                tracing::info!(
                    backend = self.backend,
                    copied = entries.len(),
                    "policy store available again"
                );
            }
        }
        let _ = self.memory.purge().await;
        Ok(())
    }
}

/// Runs `$call` on the backend (bound to `$s`), or on memory when the backend is (or just
/// became) unavailable.
macro_rules! with_fallback {
    ($self:ident, $s:ident => $call:expr) => {{
        if let Some(primary) = $self.current() {
            let $s: &dyn PolicyStore = &*primary;
            match $call.await {
                Err(StoreError::Unavailable(reason)) => $self.inner.enter_degraded(&reason),
                other => return other,
            }
        }
        let $s: &dyn PolicyStore = &$self.inner.memory;
        $call.await
    }};
}

impl PolicyStore for FallbackStore {
    fn get<'a>(&'a self, domain: &'a str) -> BoxFuture<'a, Result<Option<Entry>, StoreError>> {
        Box::pin(async move { with_fallback!(self, s => s.get(domain)) })
    }

    fn put<'a>(&'a self, entry: &'a Entry) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move { with_fallback!(self, s => s.put(entry)) })
    }

    fn delete<'a>(&'a self, domain: &'a str) -> BoxFuture<'a, Result<bool, StoreError>> {
        Box::pin(async move { with_fallback!(self, s => s.delete(domain)) })
    }

    fn list<'a>(&'a self, limit: usize) -> BoxFuture<'a, Result<Vec<Entry>, StoreError>> {
        Box::pin(async move { with_fallback!(self, s => s.list(limit)) })
    }

    fn purge<'a>(&'a self) -> BoxFuture<'a, Result<u64, StoreError>> {
        Box::pin(async move { with_fallback!(self, s => s.purge()) })
    }

    fn backend(&self) -> &'static str {
        if self.degraded() {
            "memory"
        } else {
            self.inner.backend
        }
    }
}

fn memory_store() -> MemoryStore {
    MemoryStore::with_limits(FALLBACK_MAX_ENTRIES, FALLBACK_MAX_BYTES)
}

/// The backend name for a URL, for logs before the store is open.
fn backend_name(url: &str) -> &'static str {
    let url = url.trim();
    if url.starts_with("sqlite:") {
        "sqlite"
    } else if url.starts_with("postgres") {
        "postgres"
    } else if url.starts_with("redis") {
        "redis"
    } else {
        "memory"
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};

    use mtasts_store::EntryState;

    use super::*;

    /// A real memory store that can be switched off, standing in for a backend that goes away.
    struct Switchable {
        inner: MemoryStore,
        down: AtomicBool,
    }

    impl Switchable {
        fn check(&self) -> Result<(), StoreError> {
            if self.down.load(Ordering::SeqCst) {
                Err(StoreError::Unavailable("switched off".into()))
            } else {
                Ok(())
            }
        }
    }

    impl PolicyStore for Switchable {
        fn get<'a>(&'a self, d: &'a str) -> BoxFuture<'a, Result<Option<Entry>, StoreError>> {
            Box::pin(async move {
                self.check()?;
                self.inner.get(d).await
            })
        }
        fn put<'a>(&'a self, e: &'a Entry) -> BoxFuture<'a, Result<(), StoreError>> {
            Box::pin(async move {
                self.check()?;
                self.inner.put(e).await
            })
        }
        fn delete<'a>(&'a self, d: &'a str) -> BoxFuture<'a, Result<bool, StoreError>> {
            Box::pin(async move {
                self.check()?;
                self.inner.delete(d).await
            })
        }
        fn list<'a>(&'a self, n: usize) -> BoxFuture<'a, Result<Vec<Entry>, StoreError>> {
            Box::pin(async move {
                self.check()?;
                self.inner.list(n).await
            })
        }
        fn purge<'a>(&'a self) -> BoxFuture<'a, Result<u64, StoreError>> {
            Box::pin(async move {
                self.check()?;
                self.inner.purge().await
            })
        }
        fn backend(&self) -> &'static str {
            "switchable"
        }
    }

    /// Lets a background recovery attempt run to its end (the backends here answer at once).
    async fn settle() {
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
    }

    /// A backend that never answers stands for one whose host is gone: lookups must not
    /// wait for the recovery attempts.
    struct Hanging;

    impl PolicyStore for Hanging {
        fn get<'a>(&'a self, _: &'a str) -> BoxFuture<'a, Result<Option<Entry>, StoreError>> {
            Box::pin(futures::future::pending())
        }
        fn put<'a>(&'a self, _: &'a Entry) -> BoxFuture<'a, Result<(), StoreError>> {
            Box::pin(futures::future::pending())
        }
        fn delete<'a>(&'a self, _: &'a str) -> BoxFuture<'a, Result<bool, StoreError>> {
            Box::pin(futures::future::pending())
        }
        fn list<'a>(&'a self, _: usize) -> BoxFuture<'a, Result<Vec<Entry>, StoreError>> {
            Box::pin(futures::future::pending())
        }
        fn purge<'a>(&'a self) -> BoxFuture<'a, Result<u64, StoreError>> {
            Box::pin(futures::future::pending())
        }
        fn backend(&self) -> &'static str {
            "hanging"
        }
    }

    #[tokio::test(start_paused = true)]
    async fn lookups_do_not_wait_for_a_recovery_attempt() {
        let metrics = Arc::new(Metrics::new());
        let retry = Duration::from_secs(1);
        let store = FallbackStore::with_primary(Arc::new(Hanging), metrics.clone(), retry);
        store.inner.enter_degraded("gone");
        for _ in 0..3 {
            tokio::time::advance(retry).await;
            // Each would start (or find running) an attempt that never ends; none waits.
            let started = Instant::now();
            store.put(&entry("a.example")).await.unwrap();
            assert_eq!(
                store.get("a.example").await.unwrap(),
                Some(entry("a.example"))
            );
            assert_eq!(started.elapsed(), Duration::ZERO);
            assert!(store.degraded());
        }
        // One attempt at a time.
        assert!(store.inner.lock_state().recovering);
    }

    fn entry(domain: &str) -> Entry {
        Entry {
            domain: domain.into(),
            state: EntryState::NoPolicy { until: 10 },
            last_failure: None,
            last_used: 1,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn falls_back_to_memory_and_recovers() {
        let backend = Arc::new(Switchable {
            inner: MemoryStore::new(),
            down: AtomicBool::new(false),
        });
        let metrics = Arc::new(Metrics::new());
        let store = FallbackStore::with_primary(backend.clone(), metrics.clone(), RETRY_INTERVAL);
        store.put(&entry("a.example")).await.unwrap();
        assert!(!store.degraded());

        backend.down.store(true, Ordering::SeqCst);
        store.put(&entry("b.example")).await.unwrap();
        assert!(store.degraded());
        assert_eq!(store.backend(), "memory");
        assert_eq!(metrics.store_fallback.get(), 1);
        assert_eq!(
            store.get("b.example").await.unwrap(),
            Some(entry("b.example"))
        );
        // The backend's own entry is not visible while it is down.
        assert_eq!(store.get("a.example").await.unwrap(), None);

        backend.down.store(false, Ordering::SeqCst);
        // Not retried before the interval.
        assert_eq!(store.get("a.example").await.unwrap(), None);
        settle().await;
        assert!(store.degraded());
        tokio::time::advance(RETRY_INTERVAL).await;
        // This operation starts the recovery and is answered from memory meanwhile.
        assert_eq!(store.get("a.example").await.unwrap(), None);
        settle().await;
        assert!(!store.degraded());
        assert_eq!(
            store.get("a.example").await.unwrap(),
            Some(entry("a.example"))
        );
        assert_eq!(metrics.store_fallback.get(), 0);
        assert_eq!(metrics.store_fallback_transitions.get(), 1);
        // What was learned meanwhile was copied back.
        assert_eq!(
            backend.inner.get("b.example").await.unwrap(),
            Some(entry("b.example"))
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_retry_probes_the_backend_before_leaving_the_fallback() {
        let backend = Arc::new(Switchable {
            inner: MemoryStore::new(),
            down: AtomicBool::new(true),
        });
        let metrics = Arc::new(Metrics::new());
        let retry = Duration::from_secs(1);
        let store = FallbackStore::with_primary(backend.clone(), metrics.clone(), retry);
        assert_eq!(store.get("a.example").await.unwrap(), None);
        assert!(store.degraded());
        // Nothing was learned meanwhile, so nothing to copy: the probe alone tells the
        // backend is still down, and the state does not flap.
        for _ in 0..3 {
            tokio::time::advance(retry).await;
            assert_eq!(store.get("a.example").await.unwrap(), None);
            settle().await;
            assert!(store.degraded());
            assert_eq!(metrics.store_fallback.get(), 1);
        }
        assert_eq!(metrics.store_fallback_transitions.get(), 1);
        // The configured interval applies: back after one second, not ten.
        backend.down.store(false, Ordering::SeqCst);
        backend.inner.put(&entry("a.example")).await.unwrap();
        tokio::time::advance(retry).await;
        assert_eq!(store.get("a.example").await.unwrap(), None);
        settle().await;
        assert!(!store.degraded());
        assert_eq!(metrics.store_fallback.get(), 0);
        assert_eq!(
            store.get("a.example").await.unwrap(),
            Some(entry("a.example"))
        );
    }

    #[tokio::test]
    async fn unreachable_backend_at_start_means_memory() {
        let metrics = Arc::new(Metrics::new());
        // Nothing listens on port 1 of loopback.
        let store = FallbackStore::open("redis://127.0.0.1:1/", metrics.clone(), RETRY_INTERVAL)
            .await
            .unwrap();
        assert!(store.degraded());
        assert_eq!(store.configured_backend(), "redis");
        store.put(&entry("a.example")).await.unwrap();
        assert_eq!(
            store.get("a.example").await.unwrap(),
            Some(entry("a.example"))
        );
        assert_eq!(metrics.store_fallback.get(), 1);
    }

    #[tokio::test]
    async fn configuration_errors_are_errors() {
        let metrics = Arc::new(Metrics::new());
        assert!(matches!(
            FallbackStore::open("bogus://x", metrics, RETRY_INTERVAL).await,
            Err(StoreError::Config(_))
        ));
    }
}
