//! The database of `mtasts serve` (hosted MTA-STS): tenants, users, API tokens, sessions,
//! hosted domains and their policy versions, serve nodes, certificates, ACME bookkeeping and
//! challenges, shared by every serve node.
//!
//! | URL               | Database |
//! |-------------------|----------|
//! | `sqlite:PATH`     | SQLite file, created if missing, WAL mode |
//! | `postgres://…`    | PostgreSQL (sqlx URL syntax, e.g. `?options[search_path]=…`) |
//!
//! Migrations (embedded from `migrations/host/{sqlite,postgres}`) run at open and are recorded
//! in `_mtasts_host_migrations`, so the tables live beside the policy cache's in one database.
//! Every table is prefixed `host_`.
//!
//! # The generation
//!
//! A single counter, bumped by every mutation that changes what the nodes serve, in the same
//! transaction as the change: domains and their versions ([`HostDb::create_domain`],
//! [`HostDb::add_version`], [`HostDb::publish_version`], [`HostDb::set_rua`],
//! [`HostDb::start_removal`], [`HostDb::delete_domain`]), certificates
//! ([`HostDb::put_certificate`]) and challenges ([`HostDb::put_challenge`],
//! [`HostDb::delete_challenge`]). Nodes poll [`HostDb::generation`] and reload with
//! [`HostDb::load_state`] when it moved. The bump is each write transaction's *first*
//! statement: it takes the counter's row lock (SQLite: the database write lock) before anything
//! else, so write transactions commit in generation order and a reader that sees generation `g`
//! sees every change up to `g`. That is what lets the promoter publish a version once every
//! live node reports a loaded generation of at least its `created_generation`.
//!
//! Bookkeeping that no listener serves does not bump it, since every bump makes every node
//! reload: [`HostDb::heartbeat`] and [`HostDb::heartbeat_db_time`] (nodes heartbeat each
//! second, so bumping would make them reload forever), [`HostDb::touch_token`] (once per API
//! request), the session methods ([`HostDb::create_session`], [`HostDb::delete_session`],
//! [`HostDb::purge_sessions`], and those of `sessions.rs`) and the shared settings
//! ([`HostDb::setting_or_insert`]), who may use the service ([`HostDb::create_tenant`],
//! [`HostDb::create_user`], [`HostDb::create_token`], [`HostDb::delete_token`]: every request
//! looks its credentials up afresh), the delegation check's result
//! ([`HostDb::set_verification`]) and the ACME scheduler's own records
//! ([`HostDb::set_acme_state`], [`HostDb::put_acme_account`]).
//!
//! # Rules
//!
//! - Times are Unix seconds (`i64`), supplied by the caller (`now`) except the creation times
//!   of tenants and tokens and the challenge expiry in [`HostDb::load_state`], which use this
//!   machine's clock, and the node times of [`HostDb::heartbeat_db_time`] and
//!   [`HostDb::live_nodes_within`], which use the database's.
//! - Domain names are stored normalised (lowercase A-labels, no trailing dot) and are unique
//!   across all tenants. E-mail addresses are stored with ASCII letters lowercased.
//! - Every text is bounded on write (see the `MAX_*` constants); too long or malformed is
//!   [`HostDbError::Invalid`].
//! - Every operation is bounded in time ([`crate::OP_TIMEOUT`]; connecting by
//!   [`crate::CONNECT_TIMEOUT`]); a database that does not answer is
//!   [`HostDbError::Unavailable`].
//!
//! # Advisory locks
//!
//! [`HostDb::try_lock`] gives at most one holder per name. On PostgreSQL it is a session-level
//! `pg_try_advisory_lock` on a connection the [`LockGuard`] owns, so it is exclusive across all
//! serve nodes and dies with the connection. On SQLite it is a process-local set of names per
//! database file: **SQLite supports exactly one serve process**; run several nodes on
//! PostgreSQL.

use std::sync::Arc;

use sqlx::postgres::PgPool;
use sqlx::sqlite::SqlitePool;

use crate::OP_TIMEOUT;
use crate::sql::{Database, Durability, Opened};

/// Runs `$body` with `$pool` bound to the backend's pool: the body is compiled once per
/// driver, so the statements and the row handling are written once.
macro_rules! with_pool {
    ($db:expr, |$pool:ident| $body:expr) => {
        match &$db.backend {
            $crate::host::Backend::Sqlite { pool: $pool, .. } => $body,
            $crate::host::Backend::Postgres { pool: $pool } => $body,
        }
    };
}

/// A write transaction: begins it, bumps the generation first (see the module docs), binds
/// `$tx` to the transaction and `$generation` to the new generation (`i64`), evaluates `$body`
/// and commits. An early return (`?`) from `$body` rolls back.
macro_rules! write_tx {
    ($db:expr, |$tx:ident, $generation:ident| $body:expr) => {
        with_pool!($db, |pool| {
            let mut $tx = pool
                .begin_with($db.backend.begin_write())
                .await
                .map_err($crate::host::error::db_error)?;
            let $generation: i64 = sqlx::query_scalar($crate::host::sql::BUMP_GENERATION)
                .fetch_one(&mut *$tx)
                .await
                .map_err($crate::host::error::db_error)?;
            let value = $body;
            $tx.commit().await.map_err($crate::host::error::db_error)?;
            value
        })
    };
}

/// Runs one statement outside a write transaction (bookkeeping that bumps no generation),
/// with `$bind`s in order, within the operation time limit; evaluates to the rows it touched.
macro_rules! bookkeeping {
    ($db:expr, $sql:expr $(, $bind:expr)* $(,)?) => {
        $crate::host::bounded(async {
            Ok(with_pool!($db, |pool| sqlx::query($sql)
                $(.bind($bind))*
                .execute(pool)
                .await
                .map_err($crate::host::error::db_error)?
                .rows_affected()))
        })
        .await
    };
}

/// A read-only transaction that sees one snapshot of the database (PostgreSQL: REPEATABLE
/// READ; SQLite: a WAL read transaction), bound to `$tx`; ends it after `$body`.
macro_rules! read_tx {
    ($db:expr, |$tx:ident| $body:expr) => {
        with_pool!($db, |pool| {
            let mut $tx = pool
                .begin_with($db.backend.begin_snapshot())
                .await
                .map_err($crate::host::error::db_error)?;
            let value = $body;
            // Nothing was written: ending the snapshot is all a commit does here.
            $tx.commit().await.map_err($crate::host::error::db_error)?;
            value
        })
    };
}

mod acme;
mod alerts;
mod claims;
mod domains;
mod error;
mod limits;
mod lock;
mod nodes;
mod pages;
mod seal;
mod secrets;
mod sessions;
mod sql;
mod state;
mod tenancy;
mod types;

pub use alerts::{
    AlertRow, AlertSettings, DeliveryRow, MAX_ALERT_KEY_BYTES, MAX_ALERT_RECIPIENTS,
    MAX_ALERT_TEXT_BYTES, NewAlert, NewAlertSettings,
};
pub use claims::{DomainClaim, MAX_CLAIM_TOKEN_BYTES};
pub use error::HostDbError;
pub use limits::{
    MAX_EMAIL_BYTES, MAX_ERROR_BYTES, MAX_JSON_BYTES, MAX_LOCK_NAME_BYTES, MAX_MAX_AGE, MAX_MX,
    MAX_NAME_BYTES, MAX_PEM_BYTES, MAX_POLICY_BYTES, MAX_POLICY_ID_BYTES, MAX_RUA_BYTES,
    MAX_SECRET_BYTES, MAX_TOKEN_BYTES, MAX_URL_BYTES,
};
pub use lock::LockGuard;
pub use pages::MAX_PAGE_ROWS;
pub use seal::{SEALED_MARK, SEALED_V1, SealError, Sealer, SecretKey};
pub use sessions::SessionTimes;
pub use types::{
    AcmeState, ApiToken, CertRow, ChallengeRow, Domain, DomainState, HostState, NewDomain,
    NewToken, NewUser, NewVersion, NodeRow, PolicyVersion, Role, Session, Tenant, User,
};

/// SQLite connections in the pool (readers run concurrently in WAL mode; writers serialise).
const SQLITE_CONNECTIONS: u32 = 4;

/// PostgreSQL connections in the pool; held advisory locks each keep one.
const POSTGRES_CONNECTIONS: u32 = 16;

/// The hosting database: cheap to clone (clones share the pool and, on SQLite, the locks).
#[derive(Clone)]
pub struct HostDb {
    backend: Backend,
    /// Seals and opens the secret columns (see [`HostDb::with_secret_keys`]).
    sealer: Option<Arc<Sealer>>,
}

#[derive(Clone)]
enum Backend {
    Sqlite {
        pool: SqlitePool,
        /// Which database file the process-local advisory locks belong to.
        lock_scope: Arc<str>,
    },
    Postgres {
        pool: PgPool,
    },
}

impl Backend {
    /// How a write transaction begins (see [`crate::sql::SQLITE_BEGIN_WRITE`]).
    fn begin_write(&self) -> &'static str {
        match self {
            Backend::Sqlite { .. } => crate::sql::SQLITE_BEGIN_WRITE,
            Backend::Postgres { .. } => "BEGIN",
        }
    }

    /// How a multi-statement read that must see one snapshot begins. PostgreSQL's default
    /// (READ COMMITTED) takes a new snapshot per statement; SQLite's read transaction keeps
    /// its first one.
    fn begin_snapshot(&self) -> &'static str {
        match self {
            Backend::Sqlite { .. } => "BEGIN",
            Backend::Postgres { .. } => "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY",
        }
    }
}

impl std::fmt::Debug for HostDb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HostDb")
            .field("backend", &self.backend())
            .finish_non_exhaustive()
    }
}

impl HostDb {
    /// Opens (creating and migrating as needed) the database named by `url`: `sqlite:PATH` or
    /// `postgres://…`. Fails with [`HostDbError::Unavailable`] when the database cannot be
    /// reached, [`HostDbError::Invalid`] for a URL of another kind, and
    /// [`HostDbError::Corrupt`] when it was migrated by a version of mtasts this one does not
    /// know.
    pub async fn open(url: &str) -> Result<HostDb, HostDbError> {
        let url = url.trim();
        let opened = crate::sql::open_database(
            url,
            Database {
                what: "hosting",
                migrations_table: sql::MIGRATIONS_TABLE,
                sqlite_connections: SQLITE_CONNECTIONS,
                durability: Durability::Normal,
                sqlite_migrations: sqlx::migrate!("migrations/host/sqlite"),
                application_name: "mtasts-serve",
                statement_timeout: Some(OP_TIMEOUT),
                postgres_connections: POSTGRES_CONNECTIONS,
                postgres_migrations: sqlx::migrate!("migrations/host/postgres"),
            },
        )
        .await
        .map_err(|err| {
            err.into_db_error(
                error::db_error,
                HostDbError::Unavailable,
                HostDbError::Invalid,
                HostDbError::Corrupt,
            )
        })?;
        let backend = match opened {
            Opened::Sqlite(pool) => {
                let lock_scope: Arc<str> = if crate::sql::sqlite_in_memory(url) {
                    lock::private_scope().into()
                } else {
                    // Canonical (now that the file exists), so two spellings of one file share
                    // locks.
                    let path = pool.connect_options().get_filename().to_path_buf();
                    let path = std::fs::canonicalize(&path).unwrap_or(path);
                    path.to_string_lossy().into()
                };
                Backend::Sqlite { pool, lock_scope }
            }
            Opened::Postgres(pool) => Backend::Postgres { pool },
        };
        Ok(HostDb {
            backend,
            sealer: None,
        })
    }

    /// `"sqlite"` or `"postgres"`.
    pub fn backend(&self) -> &'static str {
        match self.backend {
            Backend::Sqlite { .. } => "sqlite",
            Backend::Postgres { .. } => "postgres",
        }
    }

    /// Closes the pool, waiting for connections in use (held locks included) to be returned.
    pub async fn close(&self) {
        with_pool!(self, |pool| pool.close().await)
    }

    /// The current generation (0 for a fresh database).
    pub async fn generation(&self) -> Result<u64, HostDbError> {
        bounded(async {
            let value: i64 = with_pool!(self, |pool| sqlx::query_scalar(sql::GENERATION)
                .fetch_one(pool)
                .await
                .map_err(error::db_error)?);
            limits::unsigned("generation", value)
        })
        .await
    }
}

/// Runs `fut` with the [`OP_TIMEOUT`] limit; a timeout is [`HostDbError::Unavailable`].
async fn bounded<T>(fut: impl Future<Output = Result<T, HostDbError>>) -> Result<T, HostDbError> {
    match tokio::time::timeout(OP_TIMEOUT, fut).await {
        Ok(result) => result,
        Err(_) => Err(HostDbError::Unavailable(format!(
            "the hosting database did not answer within {} s",
            OP_TIMEOUT.as_secs()
        ))),
    }
}

/// This machine's clock in Unix seconds (for the few times the contract does not pass in).
fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}
