//! The in-memory backend: a bounded map, least recently used entries evicted first.
//!
//! Used when the configuration says `memory` and as the daemon's fallback when the configured
//! backend is unavailable. Nothing survives a restart.
//!
//! Bounds: at most [`DEFAULT_MAX_ENTRIES`] entries and about [`DEFAULT_MAX_BYTES`] of domains,
//! ids and bodies by default ([`MemoryStore::with_limits`] changes both). A `put` that would
//! exceed either limit first evicts the entries least recently read or written (`get` and
//! `put` count as use; `list` does not).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, MutexGuard};

use futures::future::BoxFuture;

use super::{Entry, EntryState, PolicyStore, StoreError, checked, normalize_domain};

/// Default cap on the number of entries.
pub const DEFAULT_MAX_ENTRIES: usize = 1_000_000;

/// Default cap on the bytes held (domains, ids and bodies; bookkeeping overhead not counted).
pub const DEFAULT_MAX_BYTES: usize = 512 * 1024 * 1024;

/// The bounded in-memory [`PolicyStore`].
pub struct MemoryStore {
    inner: Mutex<Lru>,
}

struct Slot {
    entry: Entry,
    tick: u64,
    bytes: usize,
}

/// The map plus its recency order (`order`: tick → domain, oldest first).
struct Lru {
    map: HashMap<String, Slot>,
    order: BTreeMap<u64, String>,
    next_tick: u64,
    bytes: usize,
    max_entries: usize,
    max_bytes: usize,
}

impl Default for MemoryStore {
    fn default() -> Self {
        MemoryStore::new()
    }
}

impl MemoryStore {
    /// An empty store with the default limits ([`DEFAULT_MAX_ENTRIES`], [`DEFAULT_MAX_BYTES`]).
    pub fn new() -> Self {
        MemoryStore::with_limits(DEFAULT_MAX_ENTRIES, DEFAULT_MAX_BYTES)
    }

    /// An empty store holding at most `max_entries` entries (at least 1) and about
    /// `max_bytes` bytes of entry data.
    pub fn with_limits(max_entries: usize, max_bytes: usize) -> Self {
        MemoryStore {
            inner: Mutex::new(Lru {
                map: HashMap::new(),
                order: BTreeMap::new(),
                next_tick: 0,
                bytes: 0,
                max_entries: max_entries.max(1),
                max_bytes,
            }),
        }
    }

    /// How many entries the store holds now.
    pub fn len(&self) -> usize {
        self.lock().map.len()
    }

    /// Whether the store is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> MutexGuard<'_, Lru> {
        // A panic while holding the lock cannot leave the map half-updated in a way that
        // matters for a cache; keep serving.
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn get_now(&self, domain: &str) -> Result<Option<Entry>, StoreError> {
        let key = normalize_domain(domain)?;
        let mut lru = self.lock();
        let tick = lru.tick();
        let Some(slot) = lru.map.get_mut(&key) else {
            return Ok(None);
        };
        let old = std::mem::replace(&mut slot.tick, tick);
        let entry = slot.entry.clone();
        lru.order.remove(&old);
        lru.order.insert(tick, key);
        Ok(Some(entry))
    }

    fn put_now(&self, entry: &Entry) -> Result<(), StoreError> {
        let entry = checked(entry)?;
        let bytes = entry_bytes(&entry);
        let mut lru = self.lock();
        lru.remove(&entry.domain);
        while !lru.map.is_empty()
            && (lru.map.len() >= lru.max_entries || lru.bytes + bytes > lru.max_bytes)
        {
            lru.evict_oldest();
        }
        let tick = lru.tick();
        lru.order.insert(tick, entry.domain.clone());
        lru.bytes += bytes;
        lru.map
            .insert(entry.domain.clone(), Slot { entry, tick, bytes });
        Ok(())
    }

    fn delete_now(&self, domain: &str) -> Result<bool, StoreError> {
        let key = normalize_domain(domain)?;
        Ok(self.lock().remove(&key))
    }

    fn list_now(&self, limit: usize) -> Vec<Entry> {
        let lru = self.lock();
        let mut domains: Vec<&String> = lru.map.keys().collect();
        if domains.len() > limit {
            domains.select_nth_unstable(limit);
            domains.truncate(limit);
        }
        domains.sort();
        domains
            .into_iter()
            .filter_map(|d| lru.map.get(d).map(|slot| slot.entry.clone()))
            .collect()
    }

    fn purge_now(&self) -> u64 {
        let mut lru = self.lock();
        let n = lru.map.len() as u64;
        lru.map.clear();
        lru.order.clear();
        lru.bytes = 0;
        n
    }
}

impl Lru {
    fn tick(&mut self) -> u64 {
        self.next_tick += 1;
        self.next_tick
    }

    fn remove(&mut self, key: &str) -> bool {
        match self.map.remove(key) {
            Some(slot) => {
                self.order.remove(&slot.tick);
                self.bytes -= slot.bytes;
                true
            }
            None => false,
        }
    }

    fn evict_oldest(&mut self) {
        if let Some((_, key)) = self.order.pop_first()
            && let Some(slot) = self.map.remove(&key)
        {
            self.bytes -= slot.bytes;
        }
    }
}

/// The bytes an entry accounts for.
fn entry_bytes(entry: &Entry) -> usize {
    let state = match &entry.state {
        EntryState::Policy { id, body, .. } => id.len() + body.len(),
        EntryState::NoPolicy { .. } => 0,
    };
    entry.domain.len() + state
}

impl PolicyStore for MemoryStore {
    fn get<'a>(&'a self, domain: &'a str) -> BoxFuture<'a, Result<Option<Entry>, StoreError>> {
        Box::pin(async move { self.get_now(domain) })
    }

    fn put<'a>(&'a self, entry: &'a Entry) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move { self.put_now(entry) })
    }

    fn delete<'a>(&'a self, domain: &'a str) -> BoxFuture<'a, Result<bool, StoreError>> {
        Box::pin(async move { self.delete_now(domain) })
    }

    fn list<'a>(&'a self, limit: usize) -> BoxFuture<'a, Result<Vec<Entry>, StoreError>> {
        Box::pin(async move { Ok(self.list_now(limit)) })
    }

    fn purge<'a>(&'a self) -> BoxFuture<'a, Result<u64, StoreError>> {
        Box::pin(async move { Ok(self.purge_now()) })
    }

    fn backend(&self) -> &'static str {
        "memory"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(domain: &str, body: &str) -> Entry {
        Entry {
            domain: domain.to_string(),
            state: EntryState::Policy {
                id: "1".to_string(),
                body: body.to_string(),
                fetched_at: 1,
            },
            last_failure: None,
            last_used: 1,
        }
    }

    #[test]
    fn least_recently_used_is_evicted_first() {
        let store = MemoryStore::with_limits(2, usize::MAX);
        store.put_now(&entry("a.example", "")).unwrap();
        store.put_now(&entry("b.example", "")).unwrap();
        // Reading a makes b the oldest.
        assert!(store.get_now("a.example").unwrap().is_some());
        store.put_now(&entry("c.example", "")).unwrap();
        assert_eq!(store.len(), 2);
        assert!(store.get_now("b.example").unwrap().is_none());
        assert!(store.get_now("a.example").unwrap().is_some());
        assert!(store.get_now("c.example").unwrap().is_some());
        // Overwriting does not evict anything.
        store.put_now(&entry("c.example", "x")).unwrap();
        assert_eq!(store.len(), 2);
    }

    #[test]
    fn byte_limit_evicts() {
        let store = MemoryStore::with_limits(100, 40);
        store.put_now(&entry("a.example", &"x".repeat(20))).unwrap();
        store.put_now(&entry("b.example", &"x".repeat(20))).unwrap();
        assert_eq!(store.len(), 1);
        assert!(store.get_now("b.example").unwrap().is_some());
        // An entry larger than the whole budget is still kept (alone).
        store
            .put_now(&entry("c.example", &"x".repeat(100)))
            .unwrap();
        assert_eq!(store.len(), 1);
        store.delete_now("c.example").unwrap();
        assert!(store.is_empty());
        assert_eq!(store.lock().bytes, 0);
    }

    #[test]
    fn list_is_sorted_and_limited() {
        let store = MemoryStore::new();
        for d in ["d.example", "b.example", "a.example", "c.example"] {
            store.put_now(&entry(d, "")).unwrap();
        }
        let listed: Vec<String> = store.list_now(3).into_iter().map(|e| e.domain).collect();
        assert_eq!(listed.len(), 3);
        let mut sorted = listed.clone();
        sorted.sort();
        assert_eq!(listed, sorted);
        assert_eq!(store.list_now(10).len(), 4);
        assert_eq!(store.list_now(0).len(), 0);
    }
}
