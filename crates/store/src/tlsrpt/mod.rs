//! The outgoing TLS-report database of `mtasts resolver` (RFC 8460, sending side): the TLS
//! results its MTAs report, counted per UTC day, recipient domain, TLSRPT record, policy and
//! failure detail; the daily reports built from them; and the outbox of their deliveries.
//!
//! | URL               | Database |
//! |-------------------|----------|
//! | `sqlite:PATH`     | SQLite file, created if missing (private), WAL mode, `synchronous = FULL` |
//! | `postgres://…`    | PostgreSQL, for a fleet of resolvers sharing one database |
//!
//! Migrations (embedded from `migrations/tlsrpt/{sqlite,postgres}`) run at open, are recorded
//! in `_mtasts_tlsrpt_migrations`, and every table is prefixed `tlsrpt_`, so the database may
//! share a file or a PostgreSQL database with the others.
//!
//! # Rules
//!
//! - [`TlsrptDb::record`] adds a batch of counted results in **one transaction** (upserts that
//!   add to the stored counts): when it returns `Ok` the batch is committed, on an error none
//!   of it is. On SQLite every commit is synced (`synchronous = FULL`): what the collector
//!   acknowledges survives a crash of the machine, not only of the process; it commits batches
//!   (every `commit_interval_ms`), so the sync is paid once per batch, not per result.
//! - A fleet of resolvers on one PostgreSQL builds **one report per (day, domain, record)**:
//!   [`TlsrptDb::insert_report`] inserts under a unique key with `ON CONFLICT DO NOTHING`, and
//!   only the caller whose row went in gets [`Inserted::New`] (and stores the outbox entries).
//! - Deliveries are **leased** ([`TlsrptDb::lease_due`]): a delivery leased to one node is not
//!   leased again until the lease expires, so two nodes never send it at once (PostgreSQL:
//!   `FOR UPDATE SKIP LOCKED`; SQLite: one writer at a time).
//! - Every text is bounded: a domain at [`crate::MAX_DOMAIN_BYTES`], a record at
//!   [`MAX_RECORD_BYTES`], policy and failure keys at [`MAX_KEY_BYTES`], destinations at
//!   [`MAX_DESTINATION_BYTES`], report ids and file names at [`MAX_NAME_BYTES`]. A row over a
//!   cap is refused ([`TlsrptDbError::Invalid`], nothing stored) rather than cut, since a cut key
//!   would no longer parse; [`ResultRow::check`] lets a caller drop such rows first. Errors
//!   stored with deliveries are cut to [`MAX_ERROR_BYTES`].
//! - Long texts are identified by their SHA-256, so unique keys stay small on PostgreSQL
//!   (whose index entries are limited to about 2.7 kB).
//! - Every operation is bounded in time ([`crate::OP_TIMEOUT`], plus a second per
//!   [`BATCH_ROWS`] rows written); a database that does not answer is
//!   [`TlsrptDbError::Unavailable`].
//! - Text columns are sorted in Rust; the only `ORDER BY` on text is the page order of
//!   [`TlsrptDb::day_groups`], which compares bytes on both databases (PostgreSQL columns are
//!   `COLLATE "C"`).

use std::time::Duration;

use sqlx::postgres::PgPool;
use sqlx::sqlite::SqlitePool;

use crate::OP_TIMEOUT;
use crate::sql::{Database, Durability, Opened, cut};

/// Runs `$body` with `$pool` bound to the backend's pool: the body is compiled once per
/// driver, so the statements and the row handling are written once.
macro_rules! with_pool {
    ($db:expr, |$pool:ident| $body:expr) => {
        match &$db.backend {
            $crate::tlsrpt::Backend::Sqlite { pool: $pool } => $body,
            $crate::tlsrpt::Backend::Postgres { pool: $pool } => $body,
        }
    };
}

mod error;
mod outbox;
mod results;
mod retention;
mod sql;
mod status;
mod types;

pub use error::TlsrptDbError;
pub use retention::PRUNE_BATCH;
pub use status::MAX_RECENT;
pub use types::{
    DayGroup, Delivery, DeliveryEvent, DeliveryOutcome, DeliveryState, DestinationState, Inserted,
    NewReport, PolicyRow, ResultRow, Status, StoredReport, Suppressed,
};

/// The longest TLSRPT record stored (a `_smtp._tls` TXT record; real ones are far shorter).
pub const MAX_RECORD_BYTES: usize = 8192;
/// The longest policy or failure key stored (a policy key holds the whole MTA-STS policy text,
/// itself at most 64 KiB, RFC 8461 §3.2).
pub const MAX_KEY_BYTES: usize = 65_536 + 4096;
/// The longest destination (rua URI) stored.
pub const MAX_DESTINATION_BYTES: usize = 2048;
/// The longest report id, file name, node name or suppression reason stored.
pub const MAX_NAME_BYTES: usize = 1024;
/// The longest delivery error stored (longer ones are cut).
pub const MAX_ERROR_BYTES: usize = 4096;
/// The most destinations one report may have.
pub const MAX_DESTINATIONS: usize = 64;
/// The largest page [`TlsrptDb::day_groups`] and [`TlsrptDb::lease_due`] return.
pub const MAX_PAGE: usize = 10_000;
/// Rows per multi-row statement (SQLite allows 32,766 parameters; the widest row binds 6).
pub const BATCH_ROWS: usize = 500;
/// Seconds in a UTC day.
pub const DAY: i64 = 86_400;

/// SQLite connections in the pool (readers run concurrently in WAL mode; writers serialise).
const SQLITE_CONNECTIONS: u32 = 4;
/// PostgreSQL connections in the pool.
const POSTGRES_CONNECTIONS: u32 = 8;
/// How often a write that collided with a concurrent one is tried in all.
const WRITE_ATTEMPTS: u32 = 3;

/// The outgoing TLS-report database: cheap to clone (clones share the pool).
#[derive(Clone)]
pub struct TlsrptDb {
    backend: Backend,
}

#[derive(Clone)]
enum Backend {
    Sqlite { pool: SqlitePool },
    Postgres { pool: PgPool },
}

impl Backend {
    /// How a write transaction begins (see [`crate::sql::SQLITE_BEGIN_WRITE`]).
    fn begin_write(&self) -> &'static str {
        match self {
            Backend::Sqlite { .. } => crate::sql::SQLITE_BEGIN_WRITE,
            Backend::Postgres { .. } => "BEGIN",
        }
    }

    /// How a read of several statements begins: in one snapshot (SQLite: a deferred
    /// transaction reads one snapshot in WAL mode; PostgreSQL: repeatable read).
    fn begin_read(&self) -> &'static str {
        match self {
            Backend::Sqlite { .. } => "BEGIN",
            Backend::Postgres { .. } => "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY",
        }
    }
}

impl std::fmt::Debug for TlsrptDb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsrptDb")
            .field("backend", &self.backend())
            .finish_non_exhaustive()
    }
}

impl TlsrptDb {
    /// Opens (creating and migrating as needed) the database named by `url`: `sqlite:PATH` or
    /// `postgres://…`. Fails with [`TlsrptDbError::Unavailable`] when the database cannot be
    /// reached, [`TlsrptDbError::Invalid`] for a URL of another kind, and
    /// [`TlsrptDbError::Corrupt`] when it was migrated by a version of mtasts this one does not
    /// know.
    pub async fn open(url: &str) -> Result<TlsrptDb, TlsrptDbError> {
        let url = url.trim();
        let opened = crate::sql::open_database(
            url,
            Database {
                what: "TLS-report",
                migrations_table: sql::MIGRATIONS_TABLE,
                sqlite_connections: SQLITE_CONNECTIONS,
                durability: Durability::Synced,
                sqlite_migrations: sqlx::migrate!("migrations/tlsrpt/sqlite"),
                application_name: "mtasts-tlsrpt",
                // No server statement_timeout: operations are bounded here, a write by its size.
                statement_timeout: None,
                postgres_connections: POSTGRES_CONNECTIONS,
                postgres_migrations: sqlx::migrate!("migrations/tlsrpt/postgres"),
            },
        )
        .await
        .map_err(|err| {
            err.into_db_error(
                error::db_error,
                TlsrptDbError::Unavailable,
                TlsrptDbError::Invalid,
                TlsrptDbError::Corrupt,
            )
        })?;
        let backend = match opened {
            Opened::Sqlite(pool) => Backend::Sqlite { pool },
            Opened::Postgres(pool) => Backend::Postgres { pool },
        };
        Ok(TlsrptDb { backend })
    }

    /// `"sqlite"` or `"postgres"`.
    pub fn backend(&self) -> &'static str {
        match self.backend {
            Backend::Sqlite { .. } => "sqlite",
            Backend::Postgres { .. } => "postgres",
        }
    }

    /// Closes the pool, waiting for connections in use to be returned.
    pub async fn close(&self) {
        with_pool!(self, |pool| pool.close().await)
    }
}

/// Runs `fut` within `limit`; a timeout is [`TlsrptDbError::Unavailable`].
async fn bounded<T>(
    limit: Duration,
    fut: impl Future<Output = Result<T, TlsrptDbError>>,
) -> Result<T, TlsrptDbError> {
    match tokio::time::timeout(limit, fut).await {
        Ok(result) => result,
        Err(_) => Err(TlsrptDbError::Unavailable(format!(
            "the TLS-report database did not answer within {} s",
            limit.as_secs()
        ))),
    }
}

/// How long a write of `rows` rows may take: [`OP_TIMEOUT`], plus a second per [`BATCH_ROWS`].
fn write_limit(rows: usize) -> Duration {
    OP_TIMEOUT + Duration::from_secs((rows / BATCH_ROWS) as u64)
}

/// Runs the write `attempt` again when it collided with a concurrent transaction (rolled back,
/// so trying again is safe), up to [`WRITE_ATTEMPTS`] in all.
async fn retrying<T, F, Fut>(mut attempt: F) -> Result<T, TlsrptDbError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, TlsrptDbError>>,
{
    let mut tries = 1;
    loop {
        match attempt().await {
            Err(TlsrptDbError::Conflict(_)) if tries < WRITE_ATTEMPTS => tries += 1,
            other => return other,
        }
    }
}

/// A count read from the database; a negative one means the data is corrupt.
fn unsigned(what: &str, value: i64) -> Result<u64, TlsrptDbError> {
    u64::try_from(value).map_err(|_| TlsrptDbError::Corrupt(format!("{what} is {value}")))
}

/// A count as the database stores it (past `i64::MAX` is refused rather than wrapped).
fn signed(what: &str, value: u64) -> Result<i64, TlsrptDbError> {
    i64::try_from(value).map_err(|_| TlsrptDbError::Invalid(format!("{what} {value} is too large")))
}

/// Refuses `text` (named `what`) when it is longer than `max` bytes.
fn capped(what: &str, text: &str, max: usize) -> Result<(), TlsrptDbError> {
    if text.len() > max {
        return Err(TlsrptDbError::Invalid(format!(
            "{what} is {} bytes, over the limit of {max}",
            text.len()
        )));
    }
    Ok(())
}

/// Refuses a `day` that is not the start of a UTC day.
fn check_day(day: i64) -> Result<(), TlsrptDbError> {
    if day.rem_euclid(DAY) != 0 {
        return Err(TlsrptDbError::Invalid(format!(
            "day {day} is not the start of a UTC day"
        )));
    }
    Ok(())
}

/// The SHA-256 of `text`: how long texts are identified in unique keys.
fn hash(text: &str) -> Vec<u8> {
    aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, text.as_bytes())
        .as_ref()
        .to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_and_days_are_checked() {
        assert!(capped("x", "abc", 3).is_ok());
        assert!(matches!(
            capped("x", "abcd", 3),
            Err(TlsrptDbError::Invalid(_))
        ));
        assert!(check_day(19_000 * DAY).is_ok());
        assert!(check_day(19_000 * DAY + 1).is_err());
        assert!(check_day(-DAY).is_ok());
    }

    #[test]
    fn hashes_differ_per_text() {
        assert_eq!(hash("a").len(), 32);
        assert_ne!(hash("a"), hash("b"));
        assert_eq!(hash("a"), hash("a"));
    }
}
