//! A small keyed token bucket: per client address for failed authentication and logins, per
//! principal (token or dashboard user) for API calls and dashboard writes.
//!
//! Memory is bounded: at most `max_keys` buckets are kept. Buckets that have refilled
//! completely carry no information and are dropped first; after that the least recently used
//! one goes. An attacker rotating keys can therefore only reset buckets, never grow memory.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How fast a key may act: `burst` actions at once, then one more every `refill_every`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rate {
    /// The bucket size: actions allowed in a burst (at least 1).
    pub burst: u32,
    /// The time to earn one more action.
    pub refill_every: Duration,
}

impl Rate {
    /// `burst` at once, refilled at `per_minute` actions per minute.
    pub fn per_minute(burst: u32, per_minute: u32) -> Rate {
        Rate {
            burst,
            refill_every: Duration::from_secs(60) / per_minute.max(1),
        }
    }
}

/// Refused: try again after this long (for `Retry-After`, RFC 9110 §10.2.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryAfter(pub Duration);

impl RetryAfter {
    /// Whole seconds, rounded up and at least 1, as `Retry-After` wants.
    pub fn seconds(self) -> u64 {
        (self.0.as_secs() + u64::from(self.0.subsec_nanos() > 0)).max(1)
    }
}

#[derive(Clone, Copy, Debug)]
struct Bucket {
    /// Tokens available at `updated`, in units of `1 / SCALE` of an action so partial refills
    /// are kept without floating point.
    tokens: u64,
    updated: Instant,
}

const SCALE: u64 = 1_000;

/// Token buckets by key.
#[derive(Debug)]
pub struct KeyedLimiter<K> {
    rate: Rate,
    max_keys: usize,
    buckets: Mutex<HashMap<K, Bucket>>,
}

impl<K: Hash + Eq + Clone> KeyedLimiter<K> {
    /// A limiter keeping at most `max_keys` buckets (at least 1).
    pub fn new(rate: Rate, max_keys: usize) -> Self {
        KeyedLimiter {
            rate: Rate {
                burst: rate.burst.max(1),
                refill_every: rate.refill_every.max(Duration::from_micros(1)),
            },
            max_keys: max_keys.max(1),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// The configured rate.
    pub fn rate(&self) -> Rate {
        self.rate
    }

    /// Takes one action from `key`'s bucket, or says how long until one is available.
    pub fn acquire(&self, key: &K, now: Instant) -> Result<(), RetryAfter> {
        self.update(key, now, true)
    }

    /// Whether `key` could act now, without using an action (a client whose failures used up
    /// its bucket gets 429 for credentials that need no lookup to be refused).
    pub fn check(&self, key: &K, now: Instant) -> Result<(), RetryAfter> {
        self.update(key, now, false)
    }

    /// Gives back one action taken from `key`'s bucket by [`KeyedLimiter::acquire`] (a login
    /// attempt that succeeded: only failures count). Never fills a bucket beyond its burst.
    pub fn refund(&self, key: &K, now: Instant) {
        let full = u64::from(self.rate.burst) * SCALE;
        let mut buckets = self.lock();
        if let Some(bucket) = buckets.get_mut(key) {
            let tokens = self.refilled(bucket, now, full);
            bucket.tokens = tokens.saturating_add(SCALE).min(full);
            bucket.updated = now;
        }
    }

    /// Forgets `key` (a successful login clears its failures).
    pub fn reset(&self, key: &K) {
        self.lock().remove(key);
    }

    /// The number of keys currently tracked.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether no key is tracked.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<K, Bucket>> {
        // The map holds no invariant a panicking holder could break half-way.
        self.buckets
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn update(&self, key: &K, now: Instant, take: bool) -> Result<(), RetryAfter> {
        let full = u64::from(self.rate.burst) * SCALE;
        let mut buckets = self.lock();
        let tokens = match buckets.get(key) {
            Some(bucket) => self.refilled(bucket, now, full),
            None => full,
        };
        if tokens < SCALE {
            let missing = SCALE - tokens;
            let per_unit = self.rate.refill_every.as_nanos() / u128::from(SCALE);
            let wait = u64::try_from(per_unit * u128::from(missing)).unwrap_or(u64::MAX);
            return Err(RetryAfter(Duration::from_nanos(wait)));
        }
        if !take {
            return Ok(());
        }
        if !buckets.contains_key(key) && buckets.len() >= self.max_keys {
            self.evict(&mut buckets, now, full);
        }
        buckets.insert(
            key.clone(),
            Bucket {
                tokens: tokens - SCALE,
                updated: now,
            },
        );
        Ok(())
    }

    fn refilled(&self, bucket: &Bucket, now: Instant, full: u64) -> u64 {
        let elapsed = now.saturating_duration_since(bucket.updated).as_nanos();
        let earned = elapsed * u128::from(SCALE) / self.rate.refill_every.as_nanos();
        let earned = u64::try_from(earned).unwrap_or(u64::MAX);
        bucket.tokens.saturating_add(earned).min(full)
    }

    fn evict(&self, buckets: &mut HashMap<K, Bucket>, now: Instant, full: u64) {
        buckets.retain(|_, bucket| self.refilled(bucket, now, full) < full);
        if buckets.len() < self.max_keys {
            return;
        }
        if let Some(oldest) = buckets
            .iter()
            .min_by_key(|(_, bucket)| bucket.updated)
            .map(|(key, _)| key.clone())
        {
            buckets.remove(&oldest);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rate(burst: u32, secs: u64) -> Rate {
        Rate {
            burst,
            refill_every: Duration::from_secs(secs),
        }
    }

    #[test]
    fn burst_then_refill() {
        let limiter = KeyedLimiter::new(rate(3, 10), 100);
        let t0 = Instant::now();
        for _ in 0..3 {
            assert_eq!(limiter.acquire(&"a", t0), Ok(()));
        }
        let refused = limiter.acquire(&"a", t0).unwrap_err();
        assert_eq!(refused.seconds(), 10);
        assert_eq!(limiter.acquire(&"b", t0), Ok(()), "keys are independent");
        let later = t0 + Duration::from_secs(4);
        assert_eq!(limiter.acquire(&"a", later).unwrap_err().seconds(), 6);
        assert_eq!(limiter.acquire(&"a", t0 + Duration::from_secs(10)), Ok(()));
        assert!(limiter.acquire(&"a", t0 + Duration::from_secs(10)).is_err());
    }

    #[test]
    fn check_does_not_consume() {
        let limiter = KeyedLimiter::new(rate(1, 60), 100);
        let t0 = Instant::now();
        assert_eq!(limiter.check(&1, t0), Ok(()));
        assert_eq!(limiter.check(&1, t0), Ok(()));
        assert!(limiter.is_empty());
        assert_eq!(limiter.acquire(&1, t0), Ok(()));
        assert!(limiter.check(&1, t0).is_err());
        limiter.reset(&1);
        assert_eq!(limiter.check(&1, t0), Ok(()));
    }

    #[test]
    fn refund_gives_back_one_action() {
        let limiter = KeyedLimiter::new(rate(2, 60), 100);
        let t0 = Instant::now();
        limiter.acquire(&"a", t0).unwrap();
        limiter.acquire(&"a", t0).unwrap();
        assert!(limiter.check(&"a", t0).is_err());
        limiter.refund(&"a", t0);
        assert_eq!(limiter.acquire(&"a", t0), Ok(()));
        assert!(limiter.check(&"a", t0).is_err());
        // Never beyond the burst, and an unknown key stays untracked.
        limiter.refund(&"a", t0);
        limiter.refund(&"a", t0);
        limiter.refund(&"a", t0);
        limiter.acquire(&"a", t0).unwrap();
        limiter.acquire(&"a", t0).unwrap();
        assert!(limiter.check(&"a", t0).is_err());
        limiter.refund(&"b", t0);
        assert_eq!(limiter.len(), 1);
    }

    #[test]
    fn keys_are_bounded_refilled_first_then_oldest() {
        let limiter = KeyedLimiter::new(rate(2, 60), 3);
        let t0 = Instant::now();
        for (i, key) in ["a", "b", "c"].iter().enumerate() {
            limiter
                .acquire(key, t0 + Duration::from_secs(i as u64))
                .unwrap();
            limiter
                .acquire(key, t0 + Duration::from_secs(i as u64))
                .unwrap();
        }
        assert_eq!(limiter.len(), 3);
        // All three are empty; "a" is the least recently used and makes room.
        limiter.acquire(&"d", t0 + Duration::from_secs(5)).unwrap();
        assert_eq!(limiter.len(), 3);
        assert_eq!(limiter.check(&"a", t0 + Duration::from_secs(5)), Ok(()));
        assert!(limiter.check(&"b", t0 + Duration::from_secs(5)).is_err());
        // Two minutes later every bucket is full again: they all go before anything else.
        limiter
            .acquire(&"e", t0 + Duration::from_secs(300))
            .unwrap();
        assert_eq!(limiter.len(), 1);
    }

    #[test]
    fn retry_after_rounds_up() {
        assert_eq!(RetryAfter(Duration::from_millis(1)).seconds(), 1);
        assert_eq!(RetryAfter(Duration::from_millis(1500)).seconds(), 2);
        assert_eq!(RetryAfter(Duration::from_secs(3)).seconds(), 3);
        assert_eq!(RetryAfter(Duration::ZERO).seconds(), 1);
        assert_eq!(Rate::per_minute(5, 30).refill_every, Duration::from_secs(2));
    }
}
