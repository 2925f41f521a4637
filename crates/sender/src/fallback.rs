//! The configured policy store with an in-memory stand-in for when it is unavailable.
//!
//! When the configured backend answers [`StoreError::Unavailable`] (or cannot be opened at
//! start), lookups keep working from a bounded in-memory store: the daemon logs one warning
//! per transition, sets the `mtasts_store_fallback` gauge (and `/healthz` says
//! `"fallback": true`), and retries the backend with the next store operation once the
//! retry interval has passed (`cache.store_retry`, default [`RETRY_INTERVAL`]). A retry first
//! probes the backend with a read; when it answers, what was learned meanwhile is copied
//! into it, the memory store is emptied, the gauge goes back to 0 and one info line says so.
//!
//! Entries cached only in the backend are not visible while it is down: a domain may be
//! discovered again then, which the RFC allows (the cache is an optimisation plus downgrade
//! protection, and the memory store restores the protection after the first lookup).

use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use futures::future::BoxFuture;
use mtasts_store::memory::MemoryStore;
use mtasts_store::{Entry, PolicyStore, StoreError};
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

/// A [`PolicyStore`] that falls back to memory (see the module docs).
pub struct FallbackStore {
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

#[derive(Debug)]
struct State {
    /// The backend failed and memory is in use.
    degraded: bool,
    /// When the backend may be tried again.
    retry_at: Option<Instant>,
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
        let backend = backend_name(url);
        match mtasts_store::open(url).await {
            Ok(store) => Ok(FallbackStore::with_primary(store, metrics, retry_interval)),
            Err(StoreError::Unavailable(reason)) => {
                let store = FallbackStore {
                    url: Some(url.to_string()),
                    primary: RwLock::new(None),
                    memory: memory_store(),
                    state: Mutex::new(State {
                        degraded: false,
                        retry_at: None,
                    }),
                    metrics,
                    backend,
                    retry_interval,
                };
                store.enter_degraded(&reason);
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
        FallbackStore {
            url: None,
            primary: RwLock::new(Some(primary)),
            memory: memory_store(),
            state: Mutex::new(State {
                degraded: false,
                retry_at: None,
            }),
            metrics,
            backend,
            retry_interval,
        }
    }

    /// Whether the memory stand-in is in use.
    pub fn degraded(&self) -> bool {
        self.lock_state().degraded
    }

    /// The configured backend's name.
    pub fn configured_backend(&self) -> &'static str {
        self.backend
    }

    fn lock_state(&self) -> std::sync::MutexGuard<'_, State> {
        // The state is two plain fields; a panic elsewhere cannot leave it inconsistent.
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

    /// The backend to use for the next operation, after recovering it if it is time to try.
    async fn current(&self) -> Option<Arc<dyn PolicyStore>> {
        let due = {
            let state = self.lock_state();
            if !state.degraded {
                return self.primary();
            }
            state.retry_at.is_none_or(|at| Instant::now() >= at)
        };
        if !due {
            return None;
        }
        {
            // One caller tries; the others keep using memory meanwhile.
            let mut state = self.lock_state();
            state.retry_at = Some(Instant::now() + self.retry_interval);
        }
        match self.try_recover().await {
            Ok(primary) => Some(primary),
            Err(reason) => {
                tracing::debug!(backend = self.backend, error = %reason, "policy store still unavailable");
                None
            }
        }
    }

    /// Reopens the backend if needed, probes it, copies the memory entries into it, and
    /// leaves the degraded state.
    async fn try_recover(&self) -> Result<Arc<dyn PolicyStore>, String> {
        let primary = match self.primary() {
            Some(primary) => primary,
            None => {
                let url = self.url.as_deref().ok_or("no store URL")?;
                let opened = mtasts_store::open(url).await.map_err(|e| e.to_string())?;
                *self.primary.write().unwrap_or_else(|p| p.into_inner()) = Some(opened.clone());
                opened
            }
        };
        // Without entries to copy nothing else would touch the backend before declaring it
        // back; any answer but "unavailable" means it is reachable.
        if let Err(StoreError::Unavailable(reason)) = primary.get(PROBE_DOMAIN).await {
            return Err(reason);
        }
        let entries = self
            .memory
            .list(FALLBACK_MAX_ENTRIES)
            .await
            .map_err(|e| e.to_string())?;
        for entry in &entries {
            match primary.put(entry).await {
                Ok(()) => {}
                Err(StoreError::Unavailable(reason)) => return Err(reason),
                Err(e) => {
                    tracing::warn!(domain = %entry.domain, error = %e, "cannot copy a cached entry back to the policy store")
                }
            }
        }
        let _ = self.memory.purge().await;
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
        Ok(primary)
    }
}

/// Runs `$call` on the backend (bound to `$s`), or on memory when the backend is (or just
/// became) unavailable.
macro_rules! with_fallback {
    ($self:ident, $s:ident => $call:expr) => {{
        if let Some(primary) = $self.current().await {
            let $s: &dyn PolicyStore = &*primary;
            match $call.await {
                Err(StoreError::Unavailable(reason)) => $self.enter_degraded(&reason),
                other => return other,
            }
        }
        let $s: &dyn PolicyStore = &$self.memory;
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
            self.backend
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
        tokio::time::advance(RETRY_INTERVAL).await;
        assert_eq!(
            store.get("a.example").await.unwrap(),
            Some(entry("a.example"))
        );
        assert!(!store.degraded());
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
            assert!(store.degraded());
            assert_eq!(metrics.store_fallback.get(), 1);
        }
        assert_eq!(metrics.store_fallback_transitions.get(), 1);
        // The configured interval applies: back after one second, not ten.
        backend.down.store(false, Ordering::SeqCst);
        backend.inner.put(&entry("a.example")).await.unwrap();
        tokio::time::advance(retry).await;
        assert_eq!(
            store.get("a.example").await.unwrap(),
            Some(entry("a.example"))
        );
        assert!(!store.degraded());
        assert_eq!(metrics.store_fallback.get(), 0);
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
