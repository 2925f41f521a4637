//! The SQLite backend: `sqlite:PATH` (or `sqlite://PATH`, with sqlx's `?…` options).
//!
//! The file is created when missing, put in WAL mode and migrated with the migrations embedded
//! from `migrations/sqlite` (recorded in `_mtasts_store_migrations`). Writers wait up to
//! [`CONNECT_TIMEOUT`] for a lock held by another process.

use std::str::FromStr;

use futures::future::BoxFuture;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{FromRow, Row};

use crate::sql::{self, SqlRow, SqlValues};
use crate::{CONNECT_TIMEOUT, Entry, StoreError, bounded, checked, normalize_domain};

const BACKEND: &str = "sqlite";

/// Connections in the pool (readers run concurrently in WAL mode; writes serialise anyway).
const MAX_CONNECTIONS: u32 = 4;

/// Whether `url` names an in-memory SQLite database.
pub(crate) fn in_memory(url: &str) -> bool {
    url.contains(":memory:") || url.contains("mode=memory")
}

/// How every SQLite database of mtasts is opened: created when missing, WAL with normal
/// sync, waiting on a busy database up to [`CONNECT_TIMEOUT`]; a pool of `max_connections`,
/// or exactly one connection kept forever for an in-memory database (which exists once per
/// connection).
pub(crate) fn connect_options(
    url: &str,
    max_connections: u32,
) -> Result<(SqliteConnectOptions, SqlitePoolOptions), sqlx::Error> {
    let options = SqliteConnectOptions::from_str(url)?
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Normal)
        .busy_timeout(CONNECT_TIMEOUT);
    let pool_options = if in_memory(url) {
        SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
    } else {
        SqlitePoolOptions::new().max_connections(max_connections)
    };
    Ok((options, pool_options))
}

/// The SQLite [`crate::PolicyStore`].
pub struct SqliteStore {
    pool: SqlitePool,
}

impl SqliteStore {
    /// Opens (creating and migrating) the database named by `url` (`sqlite:PATH`).
    pub async fn open(url: &str) -> Result<SqliteStore, StoreError> {
        let (options, pool_options) =
            connect_options(url, MAX_CONNECTIONS).map_err(|e| sql::map_error(BACKEND, e))?;
        let pool = bounded(BACKEND, async {
            let pool = pool_options
                .acquire_timeout(CONNECT_TIMEOUT)
                .connect_with(options)
                .await
                .map_err(|e| sql::map_error(BACKEND, e))?;
            let mut migrator = sqlx::migrate!("migrations/sqlite");
            // A fresh name, not a rename of an existing table: nothing to copy.
            migrator.dangerous_set_table_name(sql::MIGRATIONS_TABLE);
            migrator
                .run(&pool)
                .await
                .map_err(|e| sql::map_migrate_error(BACKEND, e))?;
            Ok(pool)
        })
        .await?;
        Ok(SqliteStore { pool })
    }

    /// Closes the pool (waiting for connections in use to be returned).
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

crate::sql::impl_sql_store!(SqliteStore);
