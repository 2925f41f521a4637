//! The PostgreSQL backend: `postgres://…` (sqlx's URL syntax; no TLS is compiled in, so use
//! a local server or a UNIX socket).
//!
//! The table is `sts_policy_cache`, migrated on open with the migrations embedded from
//! `migrations/postgres` (recorded in `_mtasts_store_migrations`). Connecting, and taking a
//! connection from the pool, is bounded by [`CONNECT_TIMEOUT`](crate::CONNECT_TIMEOUT); each statement is also bounded
//! on the server (`statement_timeout`).

use futures::future::BoxFuture;
use sqlx::postgres::PgPool;
use sqlx::{Executor, FromRow, Row};

use super::sql::{self, SqlRow, SqlValues};
use super::{Entry, OP_TIMEOUT, StoreError, bounded, checked, normalize_domain};
use crate::sql::OpenError;

const BACKEND: &str = "postgres";

/// Connections in the pool.
const MAX_CONNECTIONS: u32 = 8;

/// The PostgreSQL [`super::PolicyStore`].
pub struct PostgresStore {
    pool: PgPool,
}

impl PostgresStore {
    /// Connects to `url` and migrates the `sts_policy_cache` table in the default schema.
    pub async fn connect(url: &str) -> Result<PostgresStore, StoreError> {
        PostgresStore::connect_in(url, None).await
    }

    /// Like [`PostgresStore::connect`], but everything (table and migration record) lives in
    /// `schema`, created if missing. `schema` must match `[a-z_][a-z0-9_]{0,62}`. Tests use a
    /// fresh schema per run; [`PostgresStore::drop_schema`] removes it.
    pub async fn connect_in_schema(url: &str, schema: &str) -> Result<PostgresStore, StoreError> {
        PostgresStore::connect_in(url, Some(schema)).await
    }

    async fn connect_in(url: &str, schema: Option<&str>) -> Result<PostgresStore, StoreError> {
        if let Some(schema) = schema {
            check_schema(schema)?;
        }
        let mut options = crate::sql::postgres_options(url, "mtasts-store", Some(OP_TIMEOUT))
            .map_err(|e| sql::map_error(BACKEND, e))?;
        if let Some(schema) = schema {
            options = options.options([("search_path", schema)]);
        }
        let connect = async {
            let pool = crate::sql::postgres_pool(url, options, MAX_CONNECTIONS).await?;
            if let Some(schema) = schema {
                // Safe: `check_schema` allows only [a-z0-9_].
                let statement = format!("CREATE SCHEMA IF NOT EXISTS \"{schema}\"");
                pool.execute(sqlx::AssertSqlSafe(statement)).await?;
            }
            let migrator = sqlx::migrate!("migrations/postgres");
            crate::sql::migrate(&pool, migrator, sql::MIGRATIONS_TABLE).await?;
            Ok(pool)
        };
        let pool = crate::sql::within_open_timeout(url, connect)
            .await
            .map_err(|err| match err {
                OpenError::Driver(e) => sql::map_error(BACKEND, e),
                OpenError::Migrate(e) => sql::map_migrate_error(BACKEND, e),
                OpenError::Unavailable(text) => {
                    StoreError::Unavailable(format!("{BACKEND}: {text}"))
                }
                OpenError::UnknownUrl(text) => StoreError::Config(format!("{BACKEND}: {text}")),
            })?;
        Ok(PostgresStore { pool })
    }

    /// Drops `schema` with everything in it (for tests that used
    /// [`PostgresStore::connect_in_schema`]), then closes the pool.
    pub async fn drop_schema(self, schema: &str) -> Result<(), StoreError> {
        check_schema(schema)?;
        bounded(BACKEND, async {
            // Safe: `check_schema` allows only [a-z0-9_].
            let statement = format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE");
            self.pool
                .execute(sqlx::AssertSqlSafe(statement))
                .await
                .map_err(|e| sql::map_error(BACKEND, e))
        })
        .await?;
        self.pool.close().await;
        Ok(())
    }

    /// Closes the pool (waiting for connections in use to be returned).
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

super::sql::impl_sql_store!(PostgresStore);

/// Schema names are put into SQL text: allow only plain lowercase identifiers.
fn check_schema(schema: &str) -> Result<(), StoreError> {
    let mut bytes = schema.bytes();
    let ok = matches!(bytes.next(), Some(b'a'..=b'z' | b'_'))
        && bytes.all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        && schema.len() <= 63;
    if ok {
        Ok(())
    } else {
        Err(StoreError::Config(format!(
            "invalid schema name {schema:?}: expected [a-z_][a-z0-9_]{{0,62}}"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_names() {
        assert!(check_schema("mtasts_test_123").is_ok());
        assert!(check_schema("_x").is_ok());
        assert!(check_schema("").is_err());
        assert!(check_schema("1x").is_err());
        assert!(check_schema("a\"; drop").is_err());
        assert!(check_schema("Upper").is_err());
        assert!(check_schema(&"a".repeat(64)).is_err());
    }
}
