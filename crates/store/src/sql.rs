//! The SQL core the SQL databases share (feature `sql`): how every database of mtasts is
//! opened on SQLite and PostgreSQL. Each database embeds its own migrations and records them
//! in its own table, so several of them can live in one SQLite file or PostgreSQL database
//! and be migrated independently. The core returns [`OpenError`]; each database maps it onto
//! its own typed error.

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use sqlx::migrate::{Migrate, MigrateError, Migrator};
use sqlx::postgres::{PgConnectOptions, PgConnection, PgPool, PgPoolOptions};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{Connection, Pool};

use crate::{CONNECT_TIMEOUT, redacted};

/// Time limit for opening a database: connecting plus migrating (which may wait for another
/// process's migration).
pub(crate) const OPEN_TIMEOUT: Duration = Duration::from_secs(30);

/// How a write transaction begins on SQLite: IMMEDIATE takes the write lock at once (waiting
/// up to the busy timeout) instead of failing later when a deferred transaction cannot
/// upgrade. PostgreSQL's plain `BEGIN` locks rows as it goes.
#[cfg_attr(
    not(any(feature = "hosted", feature = "reports", feature = "tlsrpt")),
    allow(dead_code)
)]
pub(crate) const SQLITE_BEGIN_WRITE: &str = "BEGIN IMMEDIATE";

/// Why opening a database failed, before the database maps it onto its own error.
#[derive(Debug)]
pub(crate) enum OpenError {
    /// The driver failed: a malformed URL, a refused connection, a failing statement.
    Driver(sqlx::Error),
    /// Migrating failed.
    Migrate(MigrateError),
    /// The database did not answer in time; the text says what took too long.
    Unavailable(String),
    /// The URL names neither SQLite nor PostgreSQL; the text says so.
    #[cfg_attr(
        not(any(feature = "hosted", feature = "reports", feature = "tlsrpt")),
        allow(dead_code)
    )]
    UnknownUrl(String),
}

impl OpenError {
    /// Maps the error onto a database's own: a driver error as that database maps it (`driver`),
    /// a timeout as `unavailable`, a URL of another kind as `invalid`. A migration that failed
    /// in a statement is mapped like any query error; applied migrations this build does not
    /// know (or knows differently) mean another version owns the schema: `corrupt`.
    #[cfg_attr(
        not(any(feature = "hosted", feature = "reports", feature = "tlsrpt")),
        allow(dead_code)
    )]
    pub(crate) fn into_db_error<E>(
        self,
        driver: impl FnOnce(sqlx::Error) -> E,
        unavailable: impl FnOnce(String) -> E,
        invalid: impl FnOnce(String) -> E,
        corrupt: impl FnOnce(String) -> E,
    ) -> E {
        match self {
            OpenError::Driver(e)
            | OpenError::Migrate(MigrateError::Execute(e) | MigrateError::ExecuteMigration(e, _)) => {
                driver(e)
            }
            OpenError::Migrate(other) => corrupt(format!("migrations: {other}")),
            OpenError::Unavailable(text) => unavailable(text),
            OpenError::UnknownUrl(text) => invalid(text),
        }
    }
}

impl From<sqlx::Error> for OpenError {
    fn from(err: sqlx::Error) -> OpenError {
        OpenError::Driver(err)
    }
}

impl From<MigrateError> for OpenError {
    fn from(err: MigrateError) -> OpenError {
        OpenError::Migrate(err)
    }
}

/// Opens the `what` database (`"hosting"`, `"reports"`, `"TLS-report"`) named by `url` within
/// [`OPEN_TIMEOUT`]: a `sqlite:` URL with `sqlite`, a `postgres://` or `postgresql://` one with
/// `postgres`; any other is [`OpenError::UnknownUrl`].
#[cfg_attr(
    not(any(feature = "hosted", feature = "reports", feature = "tlsrpt")),
    allow(dead_code)
)]
pub(crate) async fn open<T>(
    what: &str,
    url: &str,
    sqlite: impl AsyncFnOnce(&str) -> Result<T, OpenError>,
    postgres: impl AsyncFnOnce(&str) -> Result<T, OpenError>,
) -> Result<T, OpenError> {
    within_open_timeout(url, async {
        if url.starts_with("sqlite:") {
            sqlite(url).await
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            postgres(url).await
        } else {
            Err(OpenError::UnknownUrl(format!(
                "unknown {what} database {:?}: expected sqlite:PATH or postgres://…",
                redacted(url)
            )))
        }
    })
    .await
}

/// Runs `opening` (of the database named by `url`) within [`OPEN_TIMEOUT`].
pub(crate) async fn within_open_timeout<T>(
    url: &str,
    opening: impl Future<Output = Result<T, OpenError>>,
) -> Result<T, OpenError> {
    match tokio::time::timeout(OPEN_TIMEOUT, opening).await {
        Ok(result) => result,
        Err(_) => Err(OpenError::Unavailable(format!(
            "opening {} took longer than {} s",
            redacted(url),
            OPEN_TIMEOUT.as_secs()
        ))),
    }
}

/// Whether `url` names an in-memory SQLite database.
pub(crate) fn sqlite_in_memory(url: &str) -> bool {
    url.contains(":memory:") || url.contains("mode=memory")
}

/// How every SQLite database of mtasts is opened: created when missing (private: see
/// [`private_sqlite_file`]), WAL with normal sync (`sqlite_pool_synced`: full), foreign keys enforced (cascades depend on it; sqlx's default, made explicit),
/// waiting on a busy database up to [`CONNECT_TIMEOUT`] and for a pooled connection as long;
/// a pool of `max_connections`, or exactly one connection kept forever for an in-memory
/// database (which exists once per connection).
#[cfg_attr(not(feature = "policy-cache"), allow(dead_code))]
pub(crate) async fn sqlite_pool(
    url: &str,
    max_connections: u32,
) -> Result<SqlitePool, sqlx::Error> {
    sqlite_pool_with(url, max_connections, SqliteSynchronous::Normal).await
}

/// How a SQLite database syncs its commits to disk.
#[cfg_attr(
    not(any(feature = "hosted", feature = "reports", feature = "tlsrpt")),
    allow(dead_code)
)]
#[derive(Clone, Copy, Debug)]
pub(crate) enum Durability {
    /// WAL with `synchronous = NORMAL` (see [`sqlite_pool`]).
    #[cfg_attr(not(any(feature = "hosted", feature = "reports")), allow(dead_code))]
    Normal,
    /// Every commit synced (`synchronous = FULL`), for a database whose commits are
    /// acknowledged to others and must survive a crash of the machine, not only of the process
    /// (WAL with `NORMAL` may lose the last commits on power loss).
    #[cfg_attr(not(feature = "tlsrpt"), allow(dead_code))]
    Synced,
}

/// What the opening of one SQL database of mtasts needs to know.
#[cfg_attr(
    not(any(feature = "hosted", feature = "reports", feature = "tlsrpt")),
    allow(dead_code)
)]
pub(crate) struct Database {
    /// Its name in errors (`"hosting"`, `"reports"`, `"TLS-report"`).
    pub(crate) what: &'static str,
    /// The table its migrations are recorded in (see [`migrate`]).
    pub(crate) migrations_table: &'static str,
    /// SQLite connections in the pool (an in-memory database keeps exactly one).
    pub(crate) sqlite_connections: u32,
    /// How SQLite syncs its commits.
    pub(crate) durability: Durability,
    /// Its SQLite migrations.
    pub(crate) sqlite_migrations: Migrator,
    /// The `application_name` it gives the PostgreSQL server.
    pub(crate) application_name: &'static str,
    /// The server-side bound on each PostgreSQL statement, if any (see [`postgres_options`]).
    pub(crate) statement_timeout: Option<Duration>,
    /// PostgreSQL connections in the pool.
    pub(crate) postgres_connections: u32,
    /// Its PostgreSQL migrations.
    pub(crate) postgres_migrations: Migrator,
}

/// The pool of an opened (and migrated) database.
#[cfg_attr(
    not(any(feature = "hosted", feature = "reports", feature = "tlsrpt")),
    allow(dead_code)
)]
pub(crate) enum Opened {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// Opens `database` at `url` as [`open`] does (trimmed by the caller), migrating it: a
/// [`sqlite_pool`] synced as its [`Durability`] says, or a [`postgres_pool`] with the options
/// [`postgres_options`] makes.
#[cfg_attr(
    not(any(feature = "hosted", feature = "reports", feature = "tlsrpt")),
    allow(dead_code)
)]
pub(crate) async fn open_database(url: &str, database: Database) -> Result<Opened, OpenError> {
    let Database {
        what,
        migrations_table,
        sqlite_connections,
        durability,
        sqlite_migrations,
        application_name,
        statement_timeout,
        postgres_connections,
        postgres_migrations,
    } = database;
    let sqlite = async |url: &str| {
        let synchronous = match durability {
            Durability::Normal => SqliteSynchronous::Normal,
            Durability::Synced => SqliteSynchronous::Full,
        };
        let pool = sqlite_pool_with(url, sqlite_connections, synchronous).await?;
        migrate(&pool, sqlite_migrations, migrations_table).await?;
        Ok(Opened::Sqlite(pool))
    };
    let postgres = async |url: &str| {
        let options = postgres_options(url, application_name, statement_timeout)?;
        let pool = postgres_pool(url, options, postgres_connections).await?;
        migrate(&pool, postgres_migrations, migrations_table).await?;
        Ok(Opened::Postgres(pool))
    };
    open(what, url, sqlite, postgres).await
}

/// `text` cut to at most `max` bytes at a character boundary.
#[cfg_attr(not(any(feature = "reports", feature = "tlsrpt")), allow(dead_code))]
pub(crate) fn cut(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

async fn sqlite_pool_with(
    url: &str,
    max_connections: u32,
    synchronous: SqliteSynchronous,
) -> Result<SqlitePool, sqlx::Error> {
    let options = SqliteConnectOptions::from_str(url)?;
    if !sqlite_in_memory(url) {
        private_sqlite_file(options.get_filename());
    }
    let options = options
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(synchronous)
        .foreign_keys(true)
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
    pool_options
        .acquire_timeout(CONNECT_TIMEOUT)
        .connect_with(options)
        .await
}

/// Makes the SQLite database at `path` readable by its owner only, whatever the umask: the
/// hosting database holds private keys and session material, the others what mail passes
/// through. A missing file is created `0600` before SQLite opens it, since SQLite creates the
/// `-wal` and `-shm` files with the database file's permissions (and would create the file
/// itself `0644` under the usual umask). An existing file, `-wal` or `-shm` that group or
/// others may use is tightened to its owner's bits, with a warning. Failures are left for
/// SQLite to report when it opens the file (or logged, when only tightening failed).
pub(crate) fn private_sqlite_file(path: &Path) {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};

    // `create_new`: never truncates, and an existing file is tightened below instead.
    let _ = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path);
    let mut files = vec![path.to_path_buf()];
    for suffix in ["-wal", "-shm"] {
        let mut name = path.as_os_str().to_owned();
        name.push(suffix);
        files.push(PathBuf::from(name));
    }
    for file in files {
        let Ok(meta) = std::fs::metadata(&file) else {
            continue;
        };
        let mode = meta.permissions().mode() & 0o7777;
        if mode & 0o077 == 0 {
            continue;
        }
        let private = mode & !0o077;
        match std::fs::set_permissions(&file, std::fs::Permissions::from_mode(private)) {
            Ok(()) => tracing::warn!(
                path = %file.display(),
                "tightened the permissions of {} from {mode:04o} to {private:04o}: \
                 the database must be readable by its owner only",
                file.display()
            ),
            Err(e) => tracing::warn!(
                path = %file.display(),
                "{} can be read by group or others ({mode:04o}) and could not be tightened: {e}",
                file.display()
            ),
        }
    }
}

/// The PostgreSQL options of `url`, naming `application_name` to the server and, when
/// given, bounding each statement on the server (`statement_timeout`).
pub(crate) fn postgres_options(
    url: &str,
    application_name: &str,
    statement_timeout: Option<Duration>,
) -> Result<PgConnectOptions, sqlx::Error> {
    let options = PgConnectOptions::from_str(url)?.application_name(application_name);
    Ok(match statement_timeout {
        Some(limit) => {
            options.options([("statement_timeout", limit.as_millis().to_string().as_str())])
        }
        None => options,
    })
}

/// A pool of `max_connections` to the PostgreSQL server of `options` (whose URL is `url`),
/// taking a connection within [`CONNECT_TIMEOUT`]. One direct attempt comes first: it fails
/// fast with the real cause (refused, auth, …) where the pool would retry until its acquire
/// timeout and say "timed out".
pub(crate) async fn postgres_pool(
    url: &str,
    options: PgConnectOptions,
    max_connections: u32,
) -> Result<PgPool, OpenError> {
    let probe = tokio::time::timeout(CONNECT_TIMEOUT, PgConnection::connect_with(&options))
        .await
        .map_err(|_| {
            OpenError::Unavailable(format!("connecting to {} timed out", redacted(url)))
        })??;
    // Closing is a courtesy to the server; a failure here changes nothing.
    let _ = probe.close().await;
    Ok(PgPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(CONNECT_TIMEOUT)
        .connect_with(options)
        .await?)
}

/// Runs the embedded `migrator` on `pool`, recording the migrations in `table` (a fresh name
/// per database, not a rename of an existing table: nothing to copy).
pub(crate) async fn migrate<DB>(
    pool: &Pool<DB>,
    mut migrator: Migrator,
    table: &'static str,
) -> Result<(), MigrateError>
where
    DB: sqlx::Database,
    DB::Connection: Migrate,
{
    migrator.dangerous_set_table_name(table);
    migrator.run(pool).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cut_keeps_whole_characters() {
        assert_eq!(cut("héllo", 2), "h");
        assert_eq!(cut("héllo", 3), "hé");
        assert_eq!(cut("abc", 10), "abc");
    }
}
