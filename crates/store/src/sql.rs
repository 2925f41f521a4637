//! The SQL core the SQL databases share (feature `sql`): how every SQLite database of mtasts is
//! opened. Each database embeds its own migrations and records them in its own table, so
//! several of them can live in one SQLite file or PostgreSQL database and be migrated
//! independently.

use std::str::FromStr;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

use crate::CONNECT_TIMEOUT;

/// Whether `url` names an in-memory SQLite database.
pub(crate) fn sqlite_in_memory(url: &str) -> bool {
    url.contains(":memory:") || url.contains("mode=memory")
}

/// How every SQLite database of mtasts is opened: created when missing, WAL with normal
/// sync, waiting on a busy database up to [`CONNECT_TIMEOUT`]; a pool of `max_connections`,
/// or exactly one connection kept forever for an in-memory database (which exists once per
/// connection).
pub(crate) fn sqlite_options(
    url: &str,
    max_connections: u32,
) -> Result<(SqliteConnectOptions, SqlitePoolOptions), sqlx::Error> {
    let options = SqliteConnectOptions::from_str(url)?
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Normal)
        .busy_timeout(CONNECT_TIMEOUT);
    let pool_options = if sqlite_in_memory(url) {
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
