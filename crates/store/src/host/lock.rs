//! Advisory locks: at most one holder of a name (e.g. the ACME order of one domain) at a time.
//!
//! PostgreSQL: a session-level `pg_try_advisory_lock` taken on a pooled connection that the
//! [`LockGuard`] then owns. The lock lives exactly as long as that session, so whatever goes
//! wrong (a failed unlock, a cancelled future, a dead node) the rule is the same: a connection
//! that may hold a lock is never returned to the pool; it is closed, and the server drops its
//! locks with the session. SQLite: a process-local set of names per database file.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use sqlx::Postgres;
use sqlx::pool::PoolConnection;

use super::error::db_error;
use super::{Backend, HostDb, HostDbError, bounded, limits, sql};
use crate::OP_TIMEOUT;

/// Names held through SQLite databases in this process, by database file.
static SQLITE_LOCKS: Mutex<BTreeSet<(Arc<str>, String)>> = Mutex::new(BTreeSet::new());

/// Keeps the advisory keys of mtasts apart from those of other programs on the same server.
const KEY_NAMESPACE: &str = "mtasts-host-lock:";

/// A held advisory lock; dropping it releases the lock.
///
/// On PostgreSQL the release runs on a spawned task (the unlock is a query); outside a Tokio
/// runtime, or when the unlock fails, the connection is closed instead, which releases the
/// lock too. [`LockGuard::release`] releases it before returning.
#[must_use = "the lock is released when the guard is dropped"]
pub struct LockGuard {
    name: String,
    held: Held,
}

enum Held {
    Postgres { conn: Unsure, key: i64 },
    Sqlite { scope: Arc<str> },
    Released,
}

impl std::fmt::Debug for LockGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LockGuard")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl HostDb {
    /// Takes the advisory lock `name` if no one (no node, on PostgreSQL) holds it: `None` when
    /// it is held. Never waits for the holder. Does not bump the generation. On PostgreSQL
    /// each held lock keeps one of the pool's connections until it is released.
    pub async fn try_lock(&self, name: &str) -> Result<Option<LockGuard>, HostDbError> {
        let name = limits::required("lock name", name, limits::MAX_LOCK_NAME_BYTES)?;
        match &self.backend {
            Backend::Sqlite { lock_scope, .. } => {
                let fresh = SQLITE_LOCKS
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .insert((lock_scope.clone(), name.to_string()));
                Ok(fresh.then(|| LockGuard {
                    name: name.to_string(),
                    held: Held::Sqlite {
                        scope: lock_scope.clone(),
                    },
                }))
            }
            Backend::Postgres { pool } => {
                let key = lock_key(name);
                bounded(async {
                    let conn = pool.acquire().await.map_err(db_error)?;
                    // From here until we know the answer, the connection may hold the lock:
                    // if this future is dropped or fails, `Unsure` closes it.
                    let mut conn = Unsure(Some(conn));
                    let locked: bool = sqlx::query_scalar(sql::TRY_LOCK)
                        .bind(key)
                        .fetch_one(conn.get()?)
                        .await
                        .map_err(db_error)?;
                    if !locked {
                        conn.return_to_pool();
                        return Ok(None);
                    }
                    Ok(Some(LockGuard {
                        name: name.to_string(),
                        held: Held::Postgres { conn, key },
                    }))
                })
                .await
            }
        }
    }
}

impl LockGuard {
    /// The lock's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether the lock is still held: on PostgreSQL `false` once the guard's session is gone
    /// (the database restarted or the connection broke), when another node may have taken
    /// the lock. A holder of a long-lived lock checks before acting on it.
    pub async fn is_held(&mut self) -> Result<bool, HostDbError> {
        match &mut self.held {
            Held::Postgres { conn, key } => {
                let bits = u64::from_le_bytes(key.to_le_bytes());
                let high = i64::from((bits >> 32) as u32);
                let low = i64::from(bits as u32);
                let held = tokio::time::timeout(
                    OP_TIMEOUT,
                    sqlx::query_scalar(sql::LOCK_HELD)
                        .bind(high)
                        .bind(low)
                        .fetch_one(conn.get()?),
                )
                .await;
                match held {
                    Ok(Ok(held)) => Ok(held),
                    // No answer from the session: whatever it held is as good as lost.
                    Ok(Err(_)) | Err(_) => Ok(false),
                }
            }
            Held::Sqlite { scope } => Ok(SQLITE_LOCKS
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .contains(&(scope.clone(), self.name.clone()))),
            Held::Released => Ok(false),
        }
    }

    /// Releases the lock now; when this returns, another holder can take it.
    pub async fn release(mut self) {
        match std::mem::replace(&mut self.held, Held::Released) {
            Held::Postgres { conn, key } => unlock(conn, key).await,
            Held::Sqlite { scope } => forget(scope, &self.name),
            Held::Released => {}
        }
    }
}

impl Drop for LockGuard {
    fn drop(&mut self) {
        match std::mem::replace(&mut self.held, Held::Released) {
            Held::Postgres { conn, key } => match tokio::runtime::Handle::try_current() {
                Ok(runtime) => {
                    // If the runtime is shutting down the task is dropped unrun: `Unsure`
                    // then closes the connection, which releases the lock all the same.
                    runtime.spawn(unlock(conn, key));
                }
                Err(_) => drop(conn),
            },
            Held::Sqlite { scope } => forget(scope, &self.name),
            Held::Released => {}
        }
    }
}

/// Unlocks on the session that holds the lock, then returns the connection to the pool; if
/// that cannot be confirmed, closes the connection (ending the session ends its locks).
async fn unlock(mut conn: Unsure, key: i64) {
    let unlocked = match conn.get() {
        Ok(c) => tokio::time::timeout(
            OP_TIMEOUT,
            sqlx::query_scalar::<_, bool>(sql::UNLOCK)
                .bind(key)
                .fetch_one(c),
        )
        .await
        .ok()
        .and_then(Result::ok),
        Err(_) => None,
    };
    if unlocked == Some(true) {
        conn.return_to_pool();
    } else {
        tracing::debug!(
            ?unlocked,
            "advisory unlock not confirmed; closing its connection"
        );
        conn.close().await;
    }
}

fn forget(scope: Arc<str>, name: &str) {
    SQLITE_LOCKS
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .remove(&(scope, name.to_string()));
}

/// A pooled connection that may hold an advisory lock: dropped, it is detached from the pool
/// and closed, never reused.
struct Unsure(Option<PoolConnection<Postgres>>);

impl Unsure {
    fn get(&mut self) -> Result<&mut sqlx::PgConnection, HostDbError> {
        match self.0.as_mut() {
            Some(conn) => Ok(&mut **conn),
            None => Err(HostDbError::Unavailable(
                "advisory lock connection already closed".to_string(),
            )),
        }
    }

    /// The connection is known to hold no lock: back to the pool with it.
    fn return_to_pool(mut self) {
        drop(self.0.take());
    }

    /// Closes the connection politely (bounded); dropped on timeout, which closes it too.
    async fn close(mut self) {
        if let Some(conn) = self.0.take() {
            let _ = tokio::time::timeout(OP_TIMEOUT, conn.close()).await;
        }
    }
}

impl Drop for Unsure {
    fn drop(&mut self) {
        if let Some(conn) = self.0.take() {
            // Dropping the detached connection closes its socket; the server then ends the
            // session and releases its locks.
            drop(conn.detach());
        }
    }
}

/// A unique scope for the locks of an in-memory SQLite database (one per [`HostDb::open`]).
pub(super) fn private_scope() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    // NUL cannot start a canonical file path, so this never names a file's scope.
    format!("\0memory-{}", NEXT.fetch_add(1, Ordering::Relaxed))
}

/// The PostgreSQL advisory key of lock `name`: a 64-bit FNV-1a hash, the same on every node
/// and every build (unlike std's randomly seeded hasher).
pub(super) fn lock_key(name: &str) -> i64 {
    let hash = fnv1a64(KEY_NAMESPACE.bytes().chain(name.bytes()));
    i64::from_le_bytes(hash.to_le_bytes())
}

fn fnv1a64(bytes: impl Iterator<Item = u8>) -> u64 {
    const OFFSET_BASIS: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    bytes.fold(OFFSET_BASIS, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(PRIME)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv1a_matches_the_reference_vectors() {
        // From the FNV reference test suite (draft-eastlake-fnv).
        assert_eq!(fnv1a64("".bytes()), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a64("a".bytes()), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a64("foobar".bytes()), 0x8594_4171_f739_67e8);
    }

    #[test]
    fn lock_keys_are_stable_and_distinct() {
        assert_eq!(lock_key("acme:example.com"), lock_key("acme:example.com"));
        assert_ne!(lock_key("acme:example.com"), lock_key("acme:example.net"));
        // Pinned: a change would let old and new nodes hold the same lock at once.
        assert_eq!(lock_key("acme:example.com"), -8_274_991_784_683_970_195);
    }

    #[test]
    fn private_scopes_differ() {
        assert_ne!(private_scope(), private_scope());
    }
}
