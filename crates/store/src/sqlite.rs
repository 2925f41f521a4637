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

/// The SQLite [`crate::PolicyStore`].
pub struct SqliteStore {
    pool: SqlitePool,
}

impl SqliteStore {
    /// Opens (creating and migrating) the database named by `url` (`sqlite:PATH`).
    pub async fn open(url: &str) -> Result<SqliteStore, StoreError> {
        let options = SqliteConnectOptions::from_str(url)
            .map_err(|e| sql::map_error(BACKEND, e))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(CONNECT_TIMEOUT);
        // An in-memory database exists once per connection: keep exactly one, forever.
        let in_memory = url.contains(":memory:") || url.contains("mode=memory");
        let pool_options = if in_memory {
            SqlitePoolOptions::new()
                .max_connections(1)
                .min_connections(1)
                .idle_timeout(None)
                .max_lifetime(None)
        } else {
            SqlitePoolOptions::new().max_connections(MAX_CONNECTIONS)
        };
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
