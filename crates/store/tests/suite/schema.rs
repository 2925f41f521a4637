//! A fresh PostgreSQL schema per test, for the suites that run every case on SQLite and on
//! PostgreSQL: created before the case, dropped after it (also when the case panics), and the
//! skip rule applied once when the server is down.

use std::str::FromStr;
use std::time::Duration;

use sqlx::Connection;
use sqlx::postgres::{PgConnectOptions, PgConnection, PgPool, PgPoolOptions};

use mtasts_testkit::services::{Service, postgres_url, postgres_url_in_schema, skip};

/// A schema of the test server and a raw pool on it.
pub(crate) struct Schema {
    /// Two connections with the schema as `search_path`: for the case's own statements.
    pub(crate) raw: PgPool,
    /// The database URL whose connections use the schema.
    pub(crate) url: String,
    tag: String,
}

impl Schema {
    /// Creates the schema `tag` (lowercase letters, digits and `_`, as `services::unique` gives);
    /// `None`, after the skip rule, when the server cannot be reached.
    pub(crate) async fn create(tag: &str) -> Option<Schema> {
        let base = postgres_url();
        let options = PgConnectOptions::from_str(&base)
            .unwrap()
            .options([("search_path", tag)]);
        // One direct attempt first: a pool would retry a refused connection until its
        // acquire timeout, making every skipped case slow.
        match PgConnection::connect_with(&options).await {
            Ok(probe) => drop(probe.close().await),
            Err(e) => {
                skip(Service::Postgres, &e);
                return None;
            }
        }
        let raw = PgPoolOptions::new()
            .max_connections(2)
            .acquire_timeout(Duration::from_secs(3))
            .connect_with(options)
            .await
            .unwrap();
        // Safe: `unique` gives lowercase letters, digits and '_'.
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {tag}")))
            .execute(&raw)
            .await
            .unwrap();
        Some(Schema {
            raw,
            url: postgres_url_in_schema(&base, tag),
            tag: tag.to_owned(),
        })
    }

    /// Drops the schema and closes the pool.
    pub(crate) async fn drop(self) {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "DROP SCHEMA {} CASCADE",
            self.tag
        )))
        .execute(&self.raw)
        .await
        .unwrap();
        self.raw.close().await;
    }
}

/// Ends a test with its case's outcome: the case's own panic again (its message was printed
/// where it panicked), or a failure to open the database.
pub(crate) fn finish(outcome: Result<Result<(), tokio::task::JoinError>, String>) {
    match outcome {
        Ok(Ok(())) => {}
        Ok(Err(e)) => std::panic::resume_unwind(e.into_panic()),
        Err(open) => panic!("{open}"),
    }
}
