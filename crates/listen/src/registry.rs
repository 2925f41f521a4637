//! The table of a listener's open connections: per-client counts, how long each has been
//! quiet, and the choice of the connection to close when room is needed.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::stream::{Activity, Clock};

/// Why the loop asked a connection to close.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum StopReason {
    /// No byte moved for the idle limit.
    Idle,
    /// Closed to make room for a new client.
    Evicted,
    /// The listener is shutting down.
    Shutdown,
}

impl StopReason {
    fn code(self) -> u8 {
        match self {
            StopReason::Idle => 1,
            StopReason::Evicted => 2,
            StopReason::Shutdown => 3,
        }
    }

    fn from_code(code: u8) -> Option<StopReason> {
        match code {
            1 => Some(StopReason::Idle),
            2 => Some(StopReason::Evicted),
            3 => Some(StopReason::Shutdown),
            _ => None,
        }
    }
}

/// One open connection as the registry sees it.
#[derive(Debug)]
pub(crate) struct Entry {
    id: u64,
    client: Option<IpAddr>,
    activity: Arc<Activity>,
    reason: AtomicU8,
    pub(crate) stop: CancellationToken,
}

impl Entry {
    /// How long no byte has moved, as of `now_ms`.
    pub(crate) fn quiet_ms(&self, now_ms: u64) -> u64 {
        self.activity.quiet_ms(now_ms)
    }

    /// Asks the connection to close; the first reason given is kept.
    pub(crate) fn stop(&self, reason: StopReason) {
        let _ =
            self.reason
                .compare_exchange(0, reason.code(), Ordering::Relaxed, Ordering::Relaxed);
        self.stop.cancel();
    }

    pub(crate) fn reason(&self) -> Option<StopReason> {
        match StopReason::from_code(self.reason.load(Ordering::Relaxed)) {
            Some(reason) => Some(reason),
            // Cancelled through the listener's token, not by `stop`.
            None if self.stop.is_cancelled() => Some(StopReason::Shutdown),
            None => None,
        }
    }
}

#[derive(Debug, Default)]
struct Inner {
    next_id: u64,
    connections: HashMap<u64, Arc<Entry>>,
    per_client: HashMap<Option<IpAddr>, usize>,
}

/// The open connections of one listener.
#[derive(Debug)]
pub(crate) struct Registry {
    pub(crate) clock: Arc<Clock>,
    inner: Mutex<Inner>,
}

impl Registry {
    pub(crate) fn new() -> Self {
        Registry {
            clock: Arc::new(Clock::new()),
            inner: Mutex::default(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // The table stays consistent across a panic elsewhere: every update is one step.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn now_ms(&self) -> u64 {
        self.clock.now_ms()
    }

    /// Open connections of `client`.
    pub(crate) fn count(&self, client: Option<IpAddr>) -> usize {
        self.lock().per_client.get(&client).copied().unwrap_or(0)
    }

    /// Open connections.
    pub(crate) fn count_all(&self) -> usize {
        self.lock().connections.len()
    }

    /// Records a new connection; it leaves the table when the returned guard is dropped.
    pub(crate) fn insert(
        self: &Arc<Self>,
        client: Option<IpAddr>,
        activity: Arc<Activity>,
        stop: CancellationToken,
    ) -> Registered {
        let mut inner = self.lock();
        let id = inner.next_id;
        inner.next_id += 1;
        let entry = Arc::new(Entry {
            id,
            client,
            activity,
            reason: AtomicU8::new(0),
            stop,
        });
        inner.connections.insert(id, entry.clone());
        *inner.per_client.entry(client).or_insert(0) += 1;
        Registered {
            registry: self.clone(),
            entry,
        }
    }

    /// The connection quiet the longest, at least `min_quiet`, among those of `client` (or
    /// all with `None`) not already asked to close.
    pub(crate) fn longest_idle(
        &self,
        client: Option<Option<IpAddr>>,
        min_quiet: Duration,
    ) -> Option<Arc<Entry>> {
        let now = self.now_ms();
        let min = u64::try_from(min_quiet.as_millis()).unwrap_or(u64::MAX);
        let inner = self.lock();
        inner
            .connections
            .values()
            .filter(|e| client.is_none_or(|c| e.client == c) && !e.stop.is_cancelled())
            .map(|e| (e.quiet_ms(now), e))
            .filter(|(quiet, _)| *quiet >= min)
            // Oldest first among equals, so the choice is stable.
            .max_by_key(|(quiet, e)| (*quiet, std::cmp::Reverse(e.id)))
            .map(|(_, e)| e.clone())
    }
}

/// A connection's place in the [`Registry`]; dropping it removes the connection.
#[derive(Debug)]
pub(crate) struct Registered {
    registry: Arc<Registry>,
    pub(crate) entry: Arc<Entry>,
}

impl Drop for Registered {
    fn drop(&mut self) {
        let mut inner = self.registry.lock();
        inner.connections.remove(&self.entry.id);
        if let Some(n) = inner.per_client.get_mut(&self.entry.client) {
            *n -= 1;
            if *n == 0 {
                inner.per_client.remove(&self.entry.client);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn the_longest_quiet_connection_is_chosen_and_traffic_resets_it() {
        let registry = Arc::new(Registry::new());
        let client = Some(IpAddr::from([127, 0, 0, 1]));
        let old_activity = Arc::new(Activity::new(registry.clock.clone()));
        let old = registry.insert(client, old_activity.clone(), CancellationToken::new());
        tokio::time::advance(Duration::from_secs(2)).await;
        let young_activity = Arc::new(Activity::new(registry.clock.clone()));
        let young = registry.insert(client, young_activity, CancellationToken::new());
        tokio::time::advance(Duration::from_secs(2)).await;
        assert_eq!(registry.count(client), 2);
        let chosen = registry.longest_idle(None, Duration::from_secs(1)).unwrap();
        assert_eq!(chosen.id, old.entry.id);
        // Too recent for a 3 s minimum: only the old one qualifies.
        let chosen = registry
            .longest_idle(Some(client), Duration::from_secs(3))
            .unwrap();
        assert_eq!(chosen.id, old.entry.id);
        // Traffic on the old one makes the young one the quietest.
        registry.now_ms();
        old_activity.touch();
        let chosen = registry.longest_idle(None, Duration::ZERO).unwrap();
        assert_eq!(chosen.id, young.entry.id);
        // One already asked to close is not chosen again.
        young.entry.stop(StopReason::Evicted);
        assert_eq!(young.entry.reason(), Some(StopReason::Evicted));
        assert!(
            registry
                .longest_idle(None, Duration::from_secs(1))
                .is_none()
        );
        drop(old);
        drop(young);
        assert_eq!(registry.count(client), 0);
    }
}
