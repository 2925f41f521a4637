//! The Redis backend: `redis://…` (or `redis+unix:…`).
//!
//! One key per domain, `<prefix><domain>` (default prefix [`DEFAULT_PREFIX`], so
//! `mtasts:sts:example.com`), holding the [`Entry`] as JSON. Every key gets a TTL a bit longer
//! than the entry's useful life ([`retention_secs`]), so Redis does not grow forever with
//! domains nobody sends to any more. [`PolicyStore::list`] and [`PolicyStore::purge`] walk the
//! prefix with `SCAN`; `purge` deletes only keys under the prefix.
//!
//! Values are read with `GETRANGE` so at most [`MAX_ENTRY_JSON_BYTES`] + 1 bytes come back; a
//! longer value, a value that is not an entry for its key, or a key of another type is
//! [`StoreError::Corrupt`]. An empty string value counts as missing.

use std::collections::BTreeSet;
use std::time::{SystemTime, UNIX_EPOCH};

use futures::future::BoxFuture;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use super::{
    Entry, EntryState, MAX_ENTRY_JSON_BYTES, OP_TIMEOUT, PolicyStore, StoreError, bounded, checked,
    normalize_domain, redacted,
};
use crate::CONNECT_TIMEOUT;

const BACKEND: &str = "redis";

/// The key prefix used by [`RedisStore::connect`].
pub const DEFAULT_PREFIX: &str = "mtasts:sts:";

/// How long a key outlives the entry's useful life (see [`retention_secs`]).
pub const RETENTION_GRACE_SECS: u64 = 24 * 60 * 60;

/// The longest `max_age` RFC 8461 §3.2 allows (31557600 s, about a year); also assumed when
/// a stored body has no readable `max_age`.
const MAX_AGE_LIMIT: u64 = 31_557_600;

/// Longest TTL given to a key (two RFC `max_age` limits: an entry cannot stay useful longer,
/// whatever times it claims; also keeps the TTL within what Redis accepts).
pub const MAX_RETENTION_SECS: u64 = 2 * MAX_AGE_LIMIT;

/// Keys asked for per `SCAN` call.
const SCAN_COUNT: usize = 500;

/// Values read per pipeline in `list`.
const READ_BATCH: usize = 100;

/// The Redis [`PolicyStore`].
pub struct RedisStore {
    conn: ConnectionManager,
    prefix: String,
}

impl RedisStore {
    /// Connects to `url` with the key prefix [`DEFAULT_PREFIX`].
    pub async fn connect(url: &str) -> Result<RedisStore, StoreError> {
        RedisStore::connect_with_prefix(url, DEFAULT_PREFIX).await
    }

    /// Connects to `url`, keeping keys under `prefix` (non-empty, printable ASCII without
    /// spaces; tests use a random prefix per run). Fails with [`StoreError::Unavailable`]
    /// within about [`CONNECT_TIMEOUT`] when the server cannot be reached.
    pub async fn connect_with_prefix(url: &str, prefix: &str) -> Result<RedisStore, StoreError> {
        if prefix.is_empty() || !prefix.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(StoreError::Config(format!(
                "invalid Redis key prefix {prefix:?}: expected printable ASCII without spaces"
            )));
        }
        let client = redis::Client::open(url)
            .map_err(|e| StoreError::Config(format!("{BACKEND} URL {}: {e}", redacted(url))))?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(CONNECT_TIMEOUT))
            .set_response_timeout(Some(OP_TIMEOUT))
            .set_number_of_retries(1);
        // The manager's own limits cover the TCP connect and each reply separately; bound
        // the whole setup (connect plus handshake) as well.
        let conn = match tokio::time::timeout(
            CONNECT_TIMEOUT,
            ConnectionManager::new_with_config(client, config),
        )
        .await
        {
            Ok(Ok(conn)) => conn,
            Ok(Err(e)) => return Err(map_error(e)),
            Err(_) => {
                return Err(StoreError::Unavailable(format!(
                    "{BACKEND}: connecting to {} timed out",
                    redacted(url)
                )));
            }
        };
        Ok(RedisStore {
            conn,
            prefix: prefix.to_string(),
        })
    }

    /// The key prefix.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    fn key(&self, domain: &str) -> String {
        format!("{}{domain}", self.prefix)
    }

    /// `SCAN` pattern matching exactly the keys under the prefix.
    fn pattern(&self) -> String {
        let mut pattern = String::with_capacity(self.prefix.len() + 1);
        for c in self.prefix.chars() {
            if matches!(c, '*' | '?' | '[' | ']' | '\\') {
                pattern.push('\\');
            }
            pattern.push(c);
        }
        pattern.push('*');
        pattern
    }

    async fn get_now(&self, domain: &str) -> Result<Option<Entry>, StoreError> {
        let domain = normalize_domain(domain)?;
        let mut conn = self.conn.clone();
        let raw: Vec<u8> = redis::cmd("GETRANGE")
            .arg(self.key(&domain))
            .arg(0)
            .arg(MAX_ENTRY_JSON_BYTES)
            .query_async(&mut conn)
            .await
            .map_err(map_error)?;
        if raw.is_empty() {
            return Ok(None);
        }
        decode(&domain, &raw).map(Some)
    }

    async fn put_now(&self, entry: &Entry) -> Result<(), StoreError> {
        let entry = checked(entry)?;
        let json = serde_json::to_vec(&entry)
            .map_err(|e| StoreError::Invalid(format!("cannot serialise entry: {e}")))?;
        let ttl = retention_secs(&entry, unix_now());
        let mut conn = self.conn.clone();
        let () = redis::cmd("SET")
            .arg(self.key(&entry.domain))
            .arg(json)
            .arg("EX")
            .arg(ttl)
            .query_async(&mut conn)
            .await
            .map_err(map_error)?;
        Ok(())
    }

    async fn delete_now(&self, domain: &str) -> Result<bool, StoreError> {
        let domain = normalize_domain(domain)?;
        let mut conn = self.conn.clone();
        let removed: u64 = redis::cmd("DEL")
            .arg(self.key(&domain))
            .query_async(&mut conn)
            .await
            .map_err(map_error)?;
        Ok(removed > 0)
    }

    /// One `SCAN` step: the next cursor and the keys found.
    async fn scan(
        &self,
        conn: &mut ConnectionManager,
        cursor: u64,
    ) -> Result<(u64, Vec<String>), StoreError> {
        redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(self.pattern())
            .arg("COUNT")
            .arg(SCAN_COUNT)
            .query_async(conn)
            .await
            .map_err(map_error)
    }

    async fn list_now(&self, limit: usize) -> Result<Vec<Entry>, StoreError> {
        let mut conn = self.conn.clone();
        // SCAN may report a key twice; a set keeps each once. Stop once `limit` are known.
        let mut domains = BTreeSet::new();
        let mut cursor = 0;
        loop {
            if domains.len() >= limit {
                break;
            }
            let (next, keys) = self.scan(&mut conn, cursor).await?;
            for key in keys {
                if domains.len() >= limit {
                    break;
                }
                if let Some(domain) = key.strip_prefix(&self.prefix) {
                    domains.insert(domain.to_string());
                }
            }
            if next == 0 {
                break;
            }
            cursor = next;
        }
        let domains: Vec<String> = domains.into_iter().collect();
        let mut entries = Vec::with_capacity(domains.len());
        for batch in domains.chunks(READ_BATCH) {
            let mut pipe = redis::pipe();
            pipe.ignore_errors();
            for domain in batch {
                pipe.cmd("GETRANGE")
                    .arg(self.key(domain))
                    .arg(0)
                    .arg(MAX_ENTRY_JSON_BYTES);
            }
            let values: Vec<redis::Value> = pipe.query_async(&mut conn).await.map_err(map_error)?;
            for (domain, value) in batch.iter().zip(values) {
                let decoded = match value {
                    // Deleted or expired since the scan.
                    redis::Value::Nil => continue,
                    redis::Value::BulkString(raw) if raw.is_empty() => continue,
                    redis::Value::BulkString(raw) => decode(domain, &raw),
                    other => Err(StoreError::Corrupt(format!(
                        "unexpected reply {}",
                        reply_kind(&other)
                    ))),
                };
                match decoded {
                    Ok(entry) => entries.push(entry),
                    Err(error) => {
                        tracing::warn!(%domain, %error, "skipping corrupt policy cache key");
                    }
                }
            }
        }
        Ok(entries)
    }

    async fn purge_now(&self) -> Result<u64, StoreError> {
        let mut conn = self.conn.clone();
        let mut removed = 0u64;
        let mut cursor = 0;
        loop {
            let (next, keys) = self.scan(&mut conn, cursor).await?;
            if !keys.is_empty() {
                let n: u64 = redis::cmd("DEL")
                    .arg(&keys)
                    .query_async(&mut conn)
                    .await
                    .map_err(map_error)?;
                removed += n;
            }
            if next == 0 {
                break;
            }
            cursor = next;
        }
        Ok(removed)
    }
}

/// Seconds a key is kept: until the entry's useful life ends (a policy's `fetched_at +
/// max_age`, a negative entry's `until`) plus [`RETENTION_GRACE_SECS`], and at least the
/// grace period from `now`; at most [`MAX_RETENTION_SECS`].
pub fn retention_secs(entry: &Entry, now: u64) -> u64 {
    let useful_until = match &entry.state {
        EntryState::Policy {
            body, fetched_at, ..
        } => fetched_at.saturating_add(max_age(body).unwrap_or(MAX_AGE_LIMIT)),
        EntryState::NoPolicy { until } => *until,
    };
    useful_until
        .max(now)
        .saturating_add(RETENTION_GRACE_SECS)
        .saturating_sub(now)
        .min(MAX_RETENTION_SECS)
}

/// The `max_age` of a policy body (RFC 8461 §3.2), capped at the RFC's limit; `None` when
/// it cannot be read. Only for retention: the caller does the real parsing.
fn max_age(body: &str) -> Option<u64> {
    body.lines().find_map(|line| {
        let value = line.strip_prefix("max_age:")?.trim();
        if value.is_empty() || value.len() > 10 || !value.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        value.parse::<u64>().ok().map(|v| v.min(MAX_AGE_LIMIT))
    })
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// The entry stored for `domain`, checked.
fn decode(domain: &str, raw: &[u8]) -> Result<Entry, StoreError> {
    if raw.len() > MAX_ENTRY_JSON_BYTES {
        return Err(StoreError::Corrupt(format!(
            "value longer than {MAX_ENTRY_JSON_BYTES} bytes"
        )));
    }
    let entry: Entry = serde_json::from_slice(raw)
        .map_err(|e| StoreError::Corrupt(format!("not an entry: {e}")))?;
    let entry = super::verified(entry)?;
    if entry.domain != domain {
        return Err(StoreError::Corrupt(format!(
            "key of {domain:?} holds the entry of {:?}",
            entry.domain
        )));
    }
    Ok(entry)
}

fn reply_kind(value: &redis::Value) -> &'static str {
    match value {
        redis::Value::ServerError(_) => "server error",
        redis::Value::Int(_) => "integer",
        redis::Value::Array(_) => "array",
        _ => "of another type",
    }
}

/// Maps a Redis error: a key of another type or an unreadable reply is `Corrupt`, a bad
/// client setup `Config`, everything else (connection, timeout, server trouble) `Unavailable`.
fn map_error(err: redis::RedisError) -> StoreError {
    use redis::ErrorKind as K;
    if err.code() == Some("WRONGTYPE") {
        return StoreError::Corrupt(format!("{BACKEND}: {err}"));
    }
    match err.kind() {
        K::UnexpectedReturnType | K::Parse => StoreError::Corrupt(format!("{BACKEND}: {err}")),
        K::InvalidClientConfig => StoreError::Config(format!("{BACKEND}: {err}")),
        _ => StoreError::Unavailable(format!("{BACKEND}: {err}")),
    }
}

impl PolicyStore for RedisStore {
    fn get<'a>(&'a self, domain: &'a str) -> BoxFuture<'a, Result<Option<Entry>, StoreError>> {
        Box::pin(bounded(BACKEND, self.get_now(domain)))
    }

    fn put<'a>(&'a self, entry: &'a Entry) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(bounded(BACKEND, self.put_now(entry)))
    }

    fn delete<'a>(&'a self, domain: &'a str) -> BoxFuture<'a, Result<bool, StoreError>> {
        Box::pin(bounded(BACKEND, self.delete_now(domain)))
    }

    fn list<'a>(&'a self, limit: usize) -> BoxFuture<'a, Result<Vec<Entry>, StoreError>> {
        Box::pin(bounded(BACKEND, self.list_now(limit)))
    }

    fn purge<'a>(&'a self) -> BoxFuture<'a, Result<u64, StoreError>> {
        // Purging a large keyspace takes many round trips: bound each, not the whole walk.
        Box::pin(self.purge_now())
    }

    fn backend(&self) -> &'static str {
        BACKEND
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(body: &str, fetched_at: u64) -> Entry {
        Entry {
            domain: "example.com".into(),
            state: EntryState::Policy {
                id: "1".into(),
                body: body.into(),
                fetched_at,
            },
            last_failure: None,
            last_used: fetched_at,
        }
    }

    #[test]
    fn retention_follows_useful_life() {
        let body = "version: STSv1\r\nmode: enforce\r\nmx: mx.example.com\r\nmax_age: 86400\r\n";
        assert_eq!(
            retention_secs(&policy(body, 1000), 1000),
            86400 + RETENTION_GRACE_SECS
        );
        // Already expired: kept for the grace period only.
        assert_eq!(
            retention_secs(&policy(body, 1000), 1_000_000),
            RETENTION_GRACE_SECS
        );
        // Unreadable max_age: the RFC limit.
        assert_eq!(
            retention_secs(&policy("max_age: 99999999999999", 0), 0),
            MAX_AGE_LIMIT + RETENTION_GRACE_SECS
        );
        let negative = Entry {
            state: EntryState::NoPolicy { until: 700 },
            ..policy("", 0)
        };
        assert_eq!(retention_secs(&negative, 400), 300 + RETENTION_GRACE_SECS);
        let far = Entry {
            state: EntryState::NoPolicy {
                until: i64::MAX as u64,
            },
            ..policy("", 0)
        };
        assert_eq!(retention_secs(&far, 400), MAX_RETENTION_SECS);
    }

    #[test]
    fn max_age_is_capped() {
        assert_eq!(max_age("max_age: 604800\n"), Some(604800));
        assert_eq!(max_age("max_age:99999999\n"), Some(MAX_AGE_LIMIT));
        assert_eq!(max_age("max_age: -1\n"), None);
        assert_eq!(max_age("mode: none"), None);
    }

    #[test]
    fn decode_checks_values() {
        assert!(matches!(
            decode("example.com", b"not json"),
            Err(StoreError::Corrupt(_))
        ));
        let other = serde_json::to_vec(&policy("", 0)).unwrap();
        assert!(matches!(
            decode("example.org", &other),
            Err(StoreError::Corrupt(_))
        ));
        assert!(decode("example.com", &other).is_ok());
        let huge = vec![b' '; MAX_ENTRY_JSON_BYTES + 1];
        assert!(matches!(
            decode("example.com", &huge),
            Err(StoreError::Corrupt(_))
        ));
    }
}
