//! The persistent MTA-STS policy cache of the sender-side daemon (RFC 8461 §3.3, §5.1), feature
//! `policy-cache` (Redis with feature `redis`).
//!
//! One trait, [`PolicyStore`], with four backends of identical semantics:
//!
//! | URL                      | Backend                     | Notes |
//! |--------------------------|-----------------------------|-------|
//! | `memory`                 | [`memory::MemoryStore`]     | bounded, least recently used evicted |
//! | `sqlite:PATH`            | [`sqlite::SqliteStore`]     | file created, WAL, migrated |
//! | `postgres://…`           | [`postgres::PostgresStore`] | table `sts_policy_cache`, migrated |
//! | `redis://…`              | `redis_store::RedisStore`   | one key per domain, `mtasts:sts:<domain>`, with a TTL (feature `redis`) |
//!
//! What this module does not do: it does not parse policies (the body is stored as received and
//! re-parsed by the caller), decide when to fetch (that is `mtasts_proto::sts::cache`), or fall
//! back to memory when a backend is down (the daemon does that on
//! [`StoreError::Unavailable`]).
//!
//! Shared semantics, enforced in this file so every backend behaves the same:
//! - keys are domains: ASCII (A-labels), at most [`MAX_DOMAIN_BYTES`] bytes, stored lowercased
//!   without a trailing dot; anything else is [`StoreError::Invalid`];
//! - policy bodies are at most [`MAX_BODY_BYTES`] and ids at most [`MAX_ID_BYTES`]; times are
//!   Unix seconds up to `i64::MAX`;
//! - every value read back is bounded and checked: a corrupt or oversized value is
//!   [`StoreError::Corrupt`] from [`PolicyStore::get`] and skipped (with a warning) by
//!   [`PolicyStore::list`];
//! - every operation is bounded in time ([`OP_TIMEOUT`]); connecting is bounded by
//!   [`CONNECT_TIMEOUT`](crate::CONNECT_TIMEOUT); a backend that cannot be reached is [`StoreError::Unavailable`].
//!
//! ```
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! use mtasts_store::{Entry, EntryState};
//!
//! let store = mtasts_store::open("memory").await?;
//! let entry = Entry {
//!     domain: "example.com".to_string(),
//!     state: EntryState::NoPolicy { until: 1_700_000_300 },
//!     last_failure: None,
//!     last_used: 1_700_000_000,
//! };
//! store.put(&entry).await?;
//! assert_eq!(store.get("example.com").await?, Some(entry));
//! # Ok::<(), mtasts_store::StoreError>(())
//! # }).unwrap();
//! ```
use std::sync::Arc;

use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};
use thiserror::Error;

pub mod memory;
pub mod postgres;
#[cfg(feature = "redis")]
pub mod redis_store;
mod sql;
pub mod sqlite;

use crate::{MAX_DOMAIN_BYTES, OP_TIMEOUT, domain, redacted};

/// Largest policy body stored: the sender's cap ([`mtasts_proto::sts::POLICY_MAX_BYTES`],
/// RFC 8461 §3.3).
pub const MAX_BODY_BYTES: usize = mtasts_proto::sts::POLICY_MAX_BYTES;

/// Longest policy id stored (RFC 8461 §3.1 allows 1–32 characters; we allow slack so a
/// lenient caller's value still round-trips).
pub const MAX_ID_BYTES: usize = 255;

/// Largest serialized entry read back from a key-value backend (body, id, domain and JSON
/// overhead, with room for escaping).
pub const MAX_ENTRY_JSON_BYTES: usize = 8 * MAX_BODY_BYTES;

/// What the cache knows about one policy domain.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// The policy domain: ASCII (A-labels), lowercase, no trailing dot.
    pub domain: String,
    /// A cached policy, or the knowledge that there is none.
    pub state: EntryState,
    /// Unix seconds of the last failed discovery (for the RFC 8461 fetch backoff).
    pub last_failure: Option<u64>,
    /// Unix seconds of the last time the entry answered a lookup (for refresh-ahead of
    /// policies in use).
    pub last_used: u64,
}

/// The cached state of a policy domain.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum EntryState {
    /// A policy fetched over HTTPS (RFC 8461 §3.3).
    Policy {
        /// The `id=` of the TXT record the policy was fetched for.
        id: String,
        /// The policy body as received; the caller re-parses it.
        body: String,
        /// Unix seconds of the fetch; the policy expires `max_age` seconds later.
        fetched_at: u64,
    },
    /// Negative cache: the domain had no usable policy.
    NoPolicy {
        /// Unix seconds until which "no policy" may be assumed.
        until: u64,
    },
}

/// Why a store operation failed.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum StoreError {
    /// The backend cannot be reached or did not answer in time (transient): the caller
    /// should fall back to an in-memory store.
    #[error("policy store unavailable: {0}")]
    Unavailable(String),
    /// A value read back is malformed, oversized or of the wrong type (the stored data is
    /// at fault).
    #[error("policy store holds a corrupt value: {0}")]
    Corrupt(String),
    /// The store URL or backend setup is wrong (our configuration is at fault).
    #[error("policy store configuration error: {0}")]
    Config(String),
    /// The caller passed a domain or entry the store does not accept (API misuse): a
    /// non-ASCII or overlong domain, an oversized body or id, a time beyond `i64::MAX`.
    #[error("invalid policy store input: {0}")]
    Invalid(String),
}

/// The policy cache. All backends share the semantics described in the crate docs.
///
/// Object safe: the daemon holds an `Arc<dyn PolicyStore>`.
pub trait PolicyStore: Send + Sync {
    /// The entry of `domain`, if any. `domain` is matched case-insensitively, a trailing
    /// dot ignored.
    fn get<'a>(&'a self, domain: &'a str) -> BoxFuture<'a, Result<Option<Entry>, StoreError>>;

    /// Inserts or replaces the entry of `entry.domain` (stored with the domain normalised).
    fn put<'a>(&'a self, entry: &'a Entry) -> BoxFuture<'a, Result<(), StoreError>>;

    /// Removes the entry of `domain`; `true` when there was one.
    fn delete<'a>(&'a self, domain: &'a str) -> BoxFuture<'a, Result<bool, StoreError>>;

    /// At most `limit` entries, sorted by domain. When more exist, which ones are returned is
    /// unspecified. Corrupt values are skipped with a warning.
    fn list<'a>(&'a self, limit: usize) -> BoxFuture<'a, Result<Vec<Entry>, StoreError>>;

    /// Removes every entry of this store (and nothing else); returns how many were removed.
    fn purge<'a>(&'a self) -> BoxFuture<'a, Result<u64, StoreError>>;

    /// The backend's name: `"memory"`, `"sqlite"`, `"redis"` or `"postgres"`.
    fn backend(&self) -> &'static str;
}

/// Opens the store named by `url` (see the crate docs for the forms), creating and migrating
/// it as needed. Fails with [`StoreError::Unavailable`] within about [`CONNECT_TIMEOUT`](crate::CONNECT_TIMEOUT) when
/// the backend cannot be reached, and with [`StoreError::Config`] for an unknown URL.
pub async fn open(url: &str) -> Result<Arc<dyn PolicyStore>, StoreError> {
    let url = url.trim();
    if url == "memory" || url == "memory:" {
        return Ok(Arc::new(memory::MemoryStore::new()));
    }
    if url.starts_with("sqlite:") {
        return Ok(Arc::new(sqlite::SqliteStore::open(url).await?));
    }
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        return Ok(Arc::new(postgres::PostgresStore::connect(url).await?));
    }
    if url.starts_with("redis://") || url.starts_with("rediss://") || url.starts_with("redis+unix:")
    {
        #[cfg(feature = "redis")]
        return Ok(Arc::new(redis_store::RedisStore::connect(url).await?));
        #[cfg(not(feature = "redis"))]
        return Err(StoreError::Config(
            "this build has no Redis policy store (mtasts-store feature `redis`)".to_string(),
        ));
    }
    Err(StoreError::Config(format!(
        "unknown policy store {:?}: expected memory, sqlite:PATH, postgres://… or redis://…",
        redacted(url)
    )))
}

/// The key under which `domain` is stored: lowercase, one trailing dot removed, checked.
pub fn normalize_domain(domain: &str) -> Result<String, StoreError> {
    domain::normalize(domain).map_err(|e| StoreError::Invalid(e.to_string()))
}

/// Checks an entry before it is written and returns it with its domain normalised.
pub(crate) fn checked(entry: &Entry) -> Result<Entry, StoreError> {
    let domain = normalize_domain(&entry.domain)?;
    check_time("last_used", entry.last_used)?;
    if let Some(t) = entry.last_failure {
        check_time("last_failure", t)?;
    }
    match &entry.state {
        EntryState::Policy {
            id,
            body,
            fetched_at,
        } => {
            check_time("fetched_at", *fetched_at)?;
            if id.len() > MAX_ID_BYTES {
                return Err(StoreError::Invalid(format!(
                    "policy id longer than {MAX_ID_BYTES} bytes"
                )));
            }
            if body.len() > MAX_BODY_BYTES {
                return Err(StoreError::Invalid(format!(
                    "policy body longer than {MAX_BODY_BYTES} bytes"
                )));
            }
        }
        EntryState::NoPolicy { until } => check_time("until", *until)?,
    }
    Ok(Entry {
        domain,
        ..entry.clone()
    })
}

/// Checks an entry read back from a backend (the same limits as [`checked`], as corruption).
pub(crate) fn verified(entry: Entry) -> Result<Entry, StoreError> {
    match checked(&entry) {
        Ok(normalized) if normalized.domain == entry.domain => Ok(entry),
        Ok(_) => Err(StoreError::Corrupt(format!(
            "stored domain {:?} is not normalised",
            entry.domain
        ))),
        Err(e) => Err(StoreError::Corrupt(e.to_string())),
    }
}

fn check_time(what: &str, t: u64) -> Result<(), StoreError> {
    if i64::try_from(t).is_err() {
        return Err(StoreError::Invalid(format!("{what} {t} beyond i64::MAX")));
    }
    Ok(())
}

/// Runs `fut` with the [`OP_TIMEOUT`] limit; a timeout is [`StoreError::Unavailable`].
pub(crate) async fn bounded<T>(
    backend: &str,
    fut: impl Future<Output = Result<T, StoreError>>,
) -> Result<T, StoreError> {
    match tokio::time::timeout(OP_TIMEOUT, fut).await {
        Ok(result) => result,
        Err(_) => Err(StoreError::Unavailable(format!(
            "{backend} did not answer within {} s",
            OP_TIMEOUT.as_secs()
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domains_normalise() {
        assert_eq!(normalize_domain("Example.COM.").unwrap(), "example.com");
        assert_eq!(
            normalize_domain("xn--bcher-kva.example").unwrap(),
            "xn--bcher-kva.example"
        );
        assert!(matches!(
            normalize_domain("bücher.example"),
            Err(StoreError::Invalid(_))
        ));
        assert!(normalize_domain("").is_err());
        assert!(normalize_domain(".").is_err());
        assert!(normalize_domain("a b").is_err());
        assert!(normalize_domain(&"a".repeat(254)).is_err());
        assert!(normalize_domain(&"a".repeat(253)).is_ok());
    }

    #[test]
    fn oversized_input_is_invalid() {
        let entry = Entry {
            domain: "example.com".into(),
            state: EntryState::Policy {
                id: "1".into(),
                body: "x".repeat(MAX_BODY_BYTES + 1),
                fetched_at: 0,
            },
            last_failure: None,
            last_used: 0,
        };
        assert!(matches!(checked(&entry), Err(StoreError::Invalid(_))));
        let entry = Entry {
            state: EntryState::NoPolicy { until: u64::MAX },
            ..entry
        };
        assert!(matches!(checked(&entry), Err(StoreError::Invalid(_))));
    }

    #[test]
    fn entries_serialise_with_a_tag() {
        let entry = Entry {
            domain: "example.com".into(),
            state: EntryState::NoPolicy { until: 5 },
            last_failure: Some(3),
            last_used: 4,
        };
        let json = serde_json::to_string(&entry).unwrap();
        assert_eq!(
            json,
            r#"{"domain":"example.com","state":{"kind":"no_policy","until":5},"last_failure":3,"last_used":4}"#
        );
        assert_eq!(serde_json::from_str::<Entry>(&json).unwrap(), entry);
    }
}
