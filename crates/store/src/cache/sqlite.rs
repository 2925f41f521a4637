//! The SQLite backend: `sqlite:PATH` (or `sqlite://PATH`, with sqlx's `?…` options).
//!
//! The file is created when missing, put in WAL mode and migrated with the migrations embedded
//! from `migrations/sqlite` (recorded in `_mtasts_store_migrations`). Writers wait up to
//! [`CONNECT_TIMEOUT`] for a lock held by another process.

use futures::future::BoxFuture;
use sqlx::sqlite::SqlitePool;
use sqlx::{FromRow, Row};

use super::sql::{self, SqlRow, SqlValues};
use super::{CONNECT_TIMEOUT, Entry, StoreError, bounded, checked, normalize_domain};

const BACKEND: &str = "sqlite";

/// Connections in the pool (readers run concurrently in WAL mode; writes serialise anyway).
const MAX_CONNECTIONS: u32 = 4;

/// The SQLite [`super::PolicyStore`].
pub struct SqliteStore {
    pool: SqlitePool,
}

impl SqliteStore {
    /// Opens (creating and migrating) the database named by `url` (`sqlite:PATH`).
    pub async fn open(url: &str) -> Result<SqliteStore, StoreError> {
        let (options, pool_options) = crate::sql::sqlite_options(url, MAX_CONNECTIONS)
            .map_err(|e| sql::map_error(BACKEND, e))?;
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

super::sql::impl_sql_store!(SqliteStore);
