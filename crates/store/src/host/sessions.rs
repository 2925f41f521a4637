//! Dashboard sessions that end: when each was made and last used (for the idle timeout),
//! ending every session of a user, and the shared settings every node reads (the login
//! form's CSRF key). None of these bump the generation: no listener serves them, and every
//! request reads its session afresh, so a deleted session is over on every node at once.

use super::error::db_error;
use super::types::Session;
use super::{HostDb, HostDbError, bounded, limits};

const INSERT_SESSION_AT: &str = "INSERT INTO host_sessions \
     (id_hash, user_id, csrf_token, expires_at, created_at, last_seen) \
     VALUES ($1, $2, $3, $4, $5, $5)";
const SESSION_WITH_TIMES: &str = "SELECT id_hash, user_id, csrf_token, expires_at, created_at, \
     last_seen FROM host_sessions WHERE id_hash = $1";
const TOUCH_SESSION: &str =
    "UPDATE host_sessions SET last_seen = $2 WHERE id_hash = $1 AND last_seen < $2";
const DELETE_USER_SESSIONS: &str = "DELETE FROM host_sessions WHERE user_id = $1";
const PURGE_IDLE_SESSIONS: &str = "DELETE FROM host_sessions WHERE last_seen < $1";
const INSERT_SETTING: &str =
    "INSERT INTO host_settings (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING";
const SETTING: &str = "SELECT value FROM host_settings WHERE name = $1";

/// When a session was made and last used (Unix seconds).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SessionTimes {
    /// When it was made.
    pub created_at: i64,
    /// When it was last used (refreshed by [`HostDb::touch_session`]).
    pub last_seen: i64,
}

#[derive(sqlx::FromRow)]
struct SessionTimesRow {
    id_hash: String,
    user_id: i64,
    csrf_token: String,
    expires_at: i64,
    created_at: i64,
    last_seen: i64,
}

impl HostDb {
    /// Stores a new session made (and last used) at `now`. [`HostDbError::Conflict`] when the
    /// id hash is taken, [`HostDbError::NotFound`] when the user does not exist.
    pub async fn start_session(&self, session: &Session, now: i64) -> Result<(), HostDbError> {
        limits::required(
            "session id hash",
            &session.id_hash,
            limits::MAX_SECRET_BYTES,
        )?;
        limits::required("CSRF token", &session.csrf_token, limits::MAX_SECRET_BYTES)?;
        bounded(async {
            with_pool!(self, |pool| sqlx::query(INSERT_SESSION_AT)
                .bind(&session.id_hash)
                .bind(session.user_id)
                .bind(&session.csrf_token)
                .bind(session.expires_at)
                .bind(now)
                .execute(pool)
                .await
                .map_err(super::error::conflict_as(|| {
                    "a session with this id exists".to_string()
                }))?
                .rows_affected());
            Ok(())
        })
        .await
    }

    /// The session whose id hash is `id_hash` with its times, expired or idle or not (the
    /// caller decides with its clock).
    pub async fn session_with_times(
        &self,
        id_hash: &str,
    ) -> Result<Option<(Session, SessionTimes)>, HostDbError> {
        let id_hash = limits::text("session id hash", id_hash, limits::MAX_SECRET_BYTES)?;
        bounded(async {
            let row: Option<SessionTimesRow> =
                with_pool!(self, |pool| sqlx::query_as(SESSION_WITH_TIMES)
                    .bind(id_hash)
                    .fetch_optional(pool)
                    .await
                    .map_err(db_error)?);
            Ok(row.map(|r| {
                (
                    Session {
                        id_hash: r.id_hash,
                        user_id: r.user_id,
                        csrf_token: r.csrf_token,
                        expires_at: r.expires_at,
                    },
                    SessionTimes {
                        created_at: r.created_at,
                        last_seen: r.last_seen,
                    },
                )
            }))
        })
        .await
    }

    /// Records a use of session `id_hash` at `now` (an earlier `now` than the recorded one is
    /// ignored); `true` when the row changed.
    pub async fn touch_session(&self, id_hash: &str, now: i64) -> Result<bool, HostDbError> {
        let id_hash = limits::text("session id hash", id_hash, limits::MAX_SECRET_BYTES)?;
        Ok(bookkeeping!(self, TOUCH_SESSION, id_hash, now)? > 0)
    }

    /// Ends every session of user `user_id` (log out everywhere); returns how many.
    pub async fn delete_user_sessions(&self, user_id: i64) -> Result<u64, HostDbError> {
        bookkeeping!(self, DELETE_USER_SESSIONS, user_id)
    }

    /// Deletes the sessions last used before `last_seen_before` (idle too long); returns how
    /// many.
    pub async fn purge_idle_sessions(&self, last_seen_before: i64) -> Result<u64, HostDbError> {
        bookkeeping!(self, PURGE_IDLE_SESSIONS, last_seen_before)
    }

    /// The shared setting `name`, first storing `value` when it has none: whichever node
    /// writes first, every node then reads the same value.
    pub async fn setting_or_insert(&self, name: &str, value: &str) -> Result<String, HostDbError> {
        let name = limits::required("setting name", name, limits::MAX_NAME_BYTES)?;
        limits::required("setting value", value, limits::MAX_SECRET_BYTES)?;
        bounded(async {
            let stored: String = with_pool!(self, |pool| {
                sqlx::query(INSERT_SETTING)
                    .bind(name)
                    .bind(value)
                    .execute(pool)
                    .await
                    .map_err(db_error)?;
                sqlx::query_scalar(SETTING)
                    .bind(name)
                    .fetch_one(pool)
                    .await
                    .map_err(db_error)?
            });
            Ok(stored)
        })
        .await
    }
}
