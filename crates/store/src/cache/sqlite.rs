//! The SQLite backend: `sqlite:PATH` (or `sqlite://PATH`, with sqlx's `?…` options).
//!
//! The file is created when missing, put in WAL mode and migrated with the migrations embedded
//! from `migrations/sqlite` (recorded in `_mtasts_store_migrations`). Writers wait up to
//! [`CONNECT_TIMEOUT`](crate::CONNECT_TIMEOUT) for a lock held by another process.

use futures::future::BoxFuture;
use sqlx::sqlite::SqlitePool;
use sqlx::{FromRow, Row};

use super::sql::{self, SqlRow, SqlValues};
use super::{Entry, StoreError, bounded, checked, normalize_domain};

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
        let pool = bounded(BACKEND, async {
            let pool = crate::sql::sqlite_pool(url, MAX_CONNECTIONS)
                .await
                .map_err(|e| sql::map_error(BACKEND, e))?;
            let migrator = sqlx::migrate!("migrations/sqlite");
            crate::sql::migrate(&pool, migrator, sql::MIGRATIONS_TABLE)
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
