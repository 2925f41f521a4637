//! The received-reports database of `mtasts report` and `mtasts serve`: SMTP TLS reports
//! (RFC 8460) and DMARC aggregate reports, the inputs they arrived in, per-policy, per-failure
//! and per-record rows, and daily rollups (totals and breakdowns) so that views over a year
//! stay fast and outlive the raw reports.
//!
//! | URL               | Database |
//! |-------------------|----------|
//! | `sqlite:PATH`     | SQLite file, created if missing, WAL mode |
//! | `postgres://…`    | PostgreSQL (sqlx URL syntax, e.g. `?options[search_path]=…`) |
//!
//! It lives in the serve database: migrations (embedded from
//! `migrations/reports/{sqlite,postgres}`) run at open, are recorded in
//! `_mtasts_reports_migrations`, and every table is prefixed `report_`.
//!
//! # What is stored
//!
//! - **Inputs** (`report_inputs`): every input as received (a file, a mail message, standard
//!   input), gzip-compressed by the caller, identified by the SHA-256 of its bytes: the same
//!   bytes arriving again (a mailbox imported twice) are stored once, and `arrivals` counts
//!   them. The inputs are what `reparse` walks again with a later version.
//! - **Reports** (`report_reports`): identified by (kind, organization, report id, begin, end)
//!   and stored once however often they arrive (a sender's retry, the same report by mail and
//!   by HTTPS): a repeat adds one to `duplicates` and is reported as [`Inserted::Duplicate`].
//!   Each keeps its normalized JSON (the output contract's object, records included) and its
//!   document (the JSON or XML as found, gzip-compressed by the caller).
//! - **Rows** for the summaries: `report_policies` (TLS: each `policies` entry; DMARC:
//!   `policy_published`), `report_tls_failures` (failure details), `report_dmarc_records` (the
//!   records the reader kept: at most `mtasts_proto::dmarc::MAX_RECORDS`; the counts of the
//!   report and its rollups include all), `report_domains` (a report's counts per domain),
//!   `report_dkim_selectors` (DMARC: the DKIM signing domains and selectors of the records,
//!   with their messages; what `mtasts serve` checks a domain's key records with).
//! - **Daily rollups** (`report_daily`) per (kind, domain, UTC day, organization): a report's
//!   per-domain counts spread over the days of its range by `mtasts_proto::rollup` (in
//!   proportion to seconds; a range longer than 31 days or empty goes to its begin day).
//!   Each column's days sum to the report's count exactly; a DMARC day's `messages` is its
//!   `success` (= `dmarc_pass`) plus its `failure` exactly, and the other columns are each
//!   within one of their proportional share. `reports` counts a report on every day it covers,
//!   `begun` on its first day only (so a window counts each report once: those covering its
//!   first day plus those beginning later), and `last_received` is the latest arrival of a
//!   report beginning on the day.
//! - **Breakdown rollups**, spread by the same rule, each row with the `reports` covering it:
//!   `report_daily_tls_failures` (failed sessions per domain, day, organization, result type,
//!   receiving MX, receiving IP and sending IP), `report_daily_dmarc_sources` (messages per
//!   domain, day, source IP and header-from, with DMARC, DKIM and SPF passes and the three
//!   dispositions) and `report_daily_policies` (the policies reports showed per domain, day
//!   and kind, with the latest report end). Labels are cut to [`MAX_LABEL_BYTES`]; a report
//!   adds at most [`MAX_ROLLUP_ROWS`] rows to each (past it, its smallest groups are counted
//!   without labels), on top of the readers' own caps (`MAX_RECORDS` records in
//!   `mtasts_proto::dmarc`, `MAX_FAILURE_DETAILS` failure details in
//!   `mtasts_proto::tlsrpt::report`). The breakdowns hold the records kept only: a
//!   DMARC report past `MAX_RECORDS` has its whole totals in `report_daily`, not in its
//!   sources. Reports stored before these tables existed are backfilled from their rows when
//!   the database is first opened after the upgrade (`report_rollup_backfill` marks the
//!   progress; several nodes take turns); reports already deleted by retention then are not.
//!
//!   Every rollup is written in the transaction that writes (or rewrites, or reparses) its
//!   report, taken away again when a reparse replaces the report, never touched by a
//!   duplicate, its rows deleted when no report is left, and never deleted by retention:
//!   `mtasts serve`'s views ([`Scope`] reads) answer from them alone, over whole UTC days.
//! - **Errors** (`report_errors`): every unreadable piece with the input it came from, stored
//!   when the input is first stored (a repeated input's errors are already there).
//!
//! # Rules
//!
//! - [`ReportDb::store`] writes one input with all its reports and errors in **one
//!   transaction**: when it returns `Ok`, everything is committed; on an error nothing is.
//!   Child rows are inserted in multi-row statements of [`BATCH_ROWS`] rows.
//! - Times are Unix seconds supplied by the caller. Domains are stored lowercased without a
//!   trailing dot ([`domain_key`]: the crate's one domain-key rule, and a policy domain that is
//!   not a host name kept as sent, lowercased and cut to [`crate::MAX_DOMAIN_BYTES`]); `""`
//!   stands for a TLS policy without a domain or a DMARC report without
//!   `policy_published/domain`.
//! - Every text is bounded: organization and report id (the identity) at [`MAX_KEY_BYTES`],
//!   sources, codes and messages at [`MAX_TEXT_BYTES`], cut at a character boundary; the
//!   documents are bounded by the readers' limits.
//! - Every operation is bounded in time ([`crate::OP_TIMEOUT`], and storing a large input one
//!   more second per [`BATCH_ROWS`] rows); a database that does not answer is
//!   [`ReportDbError::Unavailable`].
//! - Text columns are sorted in Rust, never with `ORDER BY`, so SQLite and PostgreSQL (whose
//!   collations differ) return the same order.

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
            $crate::reports::Backend::Sqlite { pool: $pool } => $body,
            $crate::reports::Backend::Postgres { pool: $pool } => $body,
        }
    };
}

// First: its macros (`apply_rollups!`, `read_stored!`) are used by the modules after it.
#[macro_use]
mod rollup;

pub mod arrivals;
mod backfill;
mod error;
mod prepare;
mod read;
mod retention;
mod scope;
mod selectors;
mod sql;
mod types;
mod write;

pub use arrivals::{ArrivalRow, MailWithoutReports, NewArrival};
pub use error::ReportDbError;
pub use prepare::domain_key;
pub use read::MAX_LIST;
pub use retention::{Purged, RETENTION_BATCH};
pub use rollup::{MAX_LABEL_BYTES, MAX_ROLLUP_ROWS};
pub use scope::{DOMAIN_CHUNK, FailureDetail, OrganizationCount, ReportKey, Scope};
pub use selectors::{MAX_SELECTORS, SelectorSeen};
pub use types::{
    Content, DailyRow, ErrorRow, FailureGroup, Filter, Inserted, Kind, NewError, NewInput,
    NewReport, PolicySeen, ReportRow, SourceGroup, Stored, StoredInput, StoredReport, UnknownKind,
};

/// The longest organization name and report id stored (they form the identity; PostgreSQL
/// cannot index longer keys). Longer ones are cut; the normalized JSON keeps them whole.
pub const MAX_KEY_BYTES: usize = 1024;
/// The longest source label, error code or message, and per-row text, stored.
pub const MAX_TEXT_BYTES: usize = 4096;
/// Rows per multi-row `INSERT` (SQLite allows 32,766 parameters; the widest row binds 16).
pub const BATCH_ROWS: usize = 500;

/// SQLite connections in the pool (readers run concurrently in WAL mode; writers serialise).
const SQLITE_CONNECTIONS: u32 = 4;
/// PostgreSQL connections in the pool.
const POSTGRES_CONNECTIONS: u32 = 8;

/// The reports database: cheap to clone (clones share the pool).
#[derive(Clone)]
pub struct ReportDb {
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
}

impl std::fmt::Debug for ReportDb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReportDb")
            .field("backend", &self.backend())
            .finish_non_exhaustive()
    }
}

impl ReportDb {
    /// Opens (creating and migrating as needed) the database named by `url`: `sqlite:PATH` or
    /// `postgres://…`. Fails with [`ReportDbError::Unavailable`] when the database cannot be
    /// reached, [`ReportDbError::Invalid`] for a URL of another kind, and
    /// [`ReportDbError::Corrupt`] when it was migrated by a version of mtasts this one does not
    /// know.
    pub async fn open(url: &str) -> Result<ReportDb, ReportDbError> {
        let url = url.trim();
        let opened = crate::sql::open_database(
            url,
            Database {
                what: "reports",
                migrations_table: sql::MIGRATIONS_TABLE,
                sqlite_connections: SQLITE_CONNECTIONS,
                durability: Durability::Normal,
                sqlite_migrations: sqlx::migrate!("migrations/reports/sqlite"),
                application_name: "mtasts-report",
                // No server statement_timeout: operations are bounded here, a store by its size.
                statement_timeout: None,
                postgres_connections: POSTGRES_CONNECTIONS,
                postgres_migrations: sqlx::migrate!("migrations/reports/postgres"),
            },
        )
        .await
        .map_err(|err| {
            err.into_db_error(
                error::db_error,
                ReportDbError::Unavailable,
                ReportDbError::Invalid,
                ReportDbError::Corrupt,
            )
        })?;
        let backend = match opened {
            Opened::Sqlite(pool) => Backend::Sqlite { pool },
            Opened::Postgres(pool) => Backend::Postgres { pool },
        };
        let db = ReportDb { backend };
        db.backfill_rollups().await?;
        Ok(db)
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

/// Runs `fut` within `limit`; a timeout is [`ReportDbError::Unavailable`].
async fn bounded<T>(
    limit: Duration,
    fut: impl Future<Output = Result<T, ReportDbError>>,
) -> Result<T, ReportDbError> {
    match tokio::time::timeout(limit, fut).await {
        Ok(result) => result,
        Err(_) => Err(ReportDbError::Unavailable(format!(
            "the reports database did not answer within {} s",
            limit.as_secs()
        ))),
    }
}

/// A count read from the database; a negative one means the data is corrupt.
fn unsigned(what: &str, value: i64) -> Result<u64, ReportDbError> {
    u64::try_from(value).map_err(|_| ReportDbError::Corrupt(format!("{what} is {value}")))
}

/// A count as the database stores it (counts are capped by the readers far below `i64::MAX`;
/// past it is refused rather than wrapped).
fn signed(what: &str, value: u64) -> Result<i64, ReportDbError> {
    i64::try_from(value).map_err(|_| ReportDbError::Invalid(format!("{what} {value} is too large")))
}
