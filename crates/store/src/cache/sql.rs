//! What the SQLite and PostgreSQL backends share: the statements, the row shape and the
//! mapping of rows and errors. The statements use `$N` placeholders and functions
//! (`substr`, `ON CONFLICT … DO UPDATE`) that both databases understand.

use super::{Entry, EntryState, MAX_BODY_BYTES, MAX_DOMAIN_BYTES, MAX_ID_BYTES, StoreError};

/// Name of the table that records applied migrations (kept apart from sqlx's default
/// `_sqlx_migrations` so other components can migrate the same database independently).
pub(crate) const MIGRATIONS_TABLE: &str = "_mtasts_store_migrations";

/// The columns read back, each text column cut one character beyond its limit so an
/// oversized value is seen (and rejected) without being loaded whole.
macro_rules! select_columns {
    () => {
        concat!(
            "SELECT substr(domain, 1, 254) AS domain, substr(kind, 1, 16) AS kind, ",
            "substr(policy_id, 1, 256) AS policy_id, substr(body, 1, 65537) AS body, ",
            "fetched_at, no_policy_until, last_failure, last_used FROM sts_policy_cache"
        )
    };
}

pub(crate) const GET: &str = concat!(select_columns!(), " WHERE domain = $1");

pub(crate) const LIST: &str = concat!(select_columns!(), " ORDER BY domain LIMIT $1");

pub(crate) const PUT: &str = "INSERT INTO sts_policy_cache \
     (domain, kind, policy_id, body, fetched_at, no_policy_until, last_failure, last_used) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
     ON CONFLICT (domain) DO UPDATE SET kind = excluded.kind, policy_id = excluded.policy_id, \
     body = excluded.body, fetched_at = excluded.fetched_at, \
     no_policy_until = excluded.no_policy_until, last_failure = excluded.last_failure, \
     last_used = excluded.last_used";

pub(crate) const DELETE: &str = "DELETE FROM sts_policy_cache WHERE domain = $1";

pub(crate) const PURGE: &str = "DELETE FROM sts_policy_cache";

// The cut-offs above must stay one beyond the limits checked in `super::verified`.
const _: () = assert!(MAX_DOMAIN_BYTES + 1 == 254);
const _: () = assert!(MAX_ID_BYTES + 1 == 256);
const _: () = assert!(MAX_BODY_BYTES + 1 == 65537);

/// One row as read back.
#[derive(sqlx::FromRow)]
pub(crate) struct SqlRow {
    domain: String,
    kind: String,
    policy_id: Option<String>,
    body: Option<String>,
    fetched_at: Option<i64>,
    no_policy_until: Option<i64>,
    last_failure: Option<i64>,
    last_used: i64,
}

/// One row as written (already checked by `super::checked`).
pub(crate) struct SqlValues {
    pub(crate) domain: String,
    pub(crate) kind: &'static str,
    pub(crate) policy_id: Option<String>,
    pub(crate) body: Option<String>,
    pub(crate) fetched_at: Option<i64>,
    pub(crate) no_policy_until: Option<i64>,
    pub(crate) last_failure: Option<i64>,
    pub(crate) last_used: i64,
}

impl SqlValues {
    /// The column values of a checked entry.
    pub(crate) fn of(entry: Entry) -> Result<SqlValues, StoreError> {
        let (kind, policy_id, body, fetched_at, no_policy_until) = match entry.state {
            EntryState::Policy {
                id,
                body,
                fetched_at,
            } => (
                "policy",
                Some(id),
                Some(body),
                Some(to_i64(fetched_at)?),
                None,
            ),
            EntryState::NoPolicy { until } => ("no_policy", None, None, None, Some(to_i64(until)?)),
        };
        Ok(SqlValues {
            domain: entry.domain,
            kind,
            policy_id,
            body,
            fetched_at,
            no_policy_until,
            last_failure: entry.last_failure.map(to_i64).transpose()?,
            last_used: to_i64(entry.last_used)?,
        })
    }
}

impl SqlRow {
    /// The entry this row holds, checked like every value read back.
    pub(crate) fn into_entry(self) -> Result<Entry, StoreError> {
        let state = match self.kind.as_str() {
            "policy" => EntryState::Policy {
                id: required(self.policy_id, "policy_id")?,
                body: required(self.body, "body")?,
                fetched_at: to_u64(required(self.fetched_at, "fetched_at")?)?,
            },
            "no_policy" => EntryState::NoPolicy {
                until: to_u64(required(self.no_policy_until, "no_policy_until")?)?,
            },
            other => {
                return Err(StoreError::Corrupt(format!(
                    "unknown entry kind {:?}",
                    other.escape_debug().to_string()
                )));
            }
        };
        super::verified(Entry {
            domain: self.domain,
            state,
            last_failure: self.last_failure.map(to_u64).transpose()?,
            last_used: to_u64(self.last_used)?,
        })
    }
}

fn required<T>(value: Option<T>, column: &str) -> Result<T, StoreError> {
    value.ok_or_else(|| StoreError::Corrupt(format!("{column} is NULL")))
}

fn to_i64(t: u64) -> Result<i64, StoreError> {
    i64::try_from(t).map_err(|_| StoreError::Invalid(format!("time {t} beyond i64::MAX")))
}

fn to_u64(t: i64) -> Result<u64, StoreError> {
    u64::try_from(t).map_err(|_| StoreError::Corrupt(format!("negative time {t}")))
}

/// Maps a sqlx error: connection and server trouble is `Unavailable`, undecodable data
/// `Corrupt`, a bad URL `Config`.
pub(crate) fn map_error(backend: &str, err: sqlx::Error) -> StoreError {
    use sqlx::Error as E;
    match err {
        E::Configuration(e) => StoreError::Config(format!("{backend}: {e}")),
        E::ColumnDecode { .. }
        | E::Decode(_)
        | E::ColumnNotFound(_)
        | E::ColumnIndexOutOfBounds { .. }
        | E::TypeNotFound { .. } => StoreError::Corrupt(format!("{backend}: {err}")),
        other => StoreError::Unavailable(format!("{backend}: {other}")),
    }
}

/// Maps a migration error: a failed statement is mapped like any query error, a mismatch
/// between the embedded and the applied migrations is a configuration problem.
pub(crate) fn map_migrate_error(backend: &str, err: sqlx::migrate::MigrateError) -> StoreError {
    match err {
        sqlx::migrate::MigrateError::Execute(e) => map_error(backend, e),
        other => StoreError::Config(format!("{backend} migration: {other}")),
    }
}

/// The [`super::PolicyStore`] methods of a backend struct with a `pool` field and a `BACKEND`
/// constant in scope: the same code for SQLite and PostgreSQL, monomorphised per driver.
macro_rules! impl_sql_store {
    ($store:ty) => {
        impl $store {
    async fn get_now(&self, domain: &str) -> Result<Option<Entry>, StoreError> {
        let key = normalize_domain(domain)?;
        let row: Option<SqlRow> = sqlx::query_as(sql::GET)
            .bind(&key)
            .fetch_optional(&self.pool)
            .await
            .map_err(|e| sql::map_error(BACKEND, e))?;
        row.map(SqlRow::into_entry).transpose()
    }

    async fn put_now(&self, entry: &Entry) -> Result<(), StoreError> {
        let v = SqlValues::of(checked(entry)?)?;
        sqlx::query(sql::PUT)
            .bind(v.domain)
            .bind(v.kind)
            .bind(v.policy_id)
            .bind(v.body)
            .bind(v.fetched_at)
            .bind(v.no_policy_until)
            .bind(v.last_failure)
            .bind(v.last_used)
            .execute(&self.pool)
            .await
            .map_err(|e| sql::map_error(BACKEND, e))?;
        Ok(())
    }

    async fn delete_now(&self, domain: &str) -> Result<bool, StoreError> {
        let key = normalize_domain(domain)?;
        let done = sqlx::query(sql::DELETE)
            .bind(&key)
            .execute(&self.pool)
            .await
            .map_err(|e| sql::map_error(BACKEND, e))?;
        Ok(done.rows_affected() > 0)
    }

    async fn list_now(&self, limit: usize) -> Result<Vec<Entry>, StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = sqlx::query(sql::LIST)
            .bind(limit)
            .fetch_all(&self.pool)
            .await
            .map_err(|e| sql::map_error(BACKEND, e))?;
        Ok(rows
            .iter()
            .filter_map(|row| {
                match SqlRow::from_row(row)
                    .map_err(|e| sql::map_error(BACKEND, e))
                    .and_then(SqlRow::into_entry)
                {
                    Ok(entry) => Some(entry),
                    Err(error) => {
                        let domain: Option<String> = row.try_get("domain").ok();
                        tracing::warn!(?domain, %error, "skipping corrupt policy cache row");
                        None
                    }
                }
            })
            .collect())
    }

    async fn purge_now(&self) -> Result<u64, StoreError> {
        let done = sqlx::query(sql::PURGE)
            .execute(&self.pool)
            .await
            .map_err(|e| sql::map_error(BACKEND, e))?;
        Ok(done.rows_affected())
    }
        }

        impl $crate::cache::PolicyStore for $store {
    fn get<'a>(&'a self, domain: &'a str) -> BoxFuture<'a, Result<Option<Entry>, StoreError>> {
        Box::pin(bounded(BACKEND, self.get_now(domain)))
    }

    fn put<'a>(&'a self, entry: &'a Entry) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(bounded(BACKEND, self.put_now(entry)))
    }

    fn delete<'a>(&'a self, domain: &'a str) -> BoxFuture<'a, Result<bool, StoreError>> {
        Box::pin(bounded(BACKEND, self.delete_now(domain)))
    }

    fn list<'a>(&'a self, limit: usize) -> BoxFuture<'a, Result<Vec<Entry>, StoreError>> {
        Box::pin(bounded(BACKEND, self.list_now(limit)))
    }

    fn purge<'a>(&'a self) -> BoxFuture<'a, Result<u64, StoreError>> {
        Box::pin(bounded(BACKEND, self.purge_now()))
    }

    fn backend(&self) -> &'static str {
        BACKEND
    }
}
    };
}
pub(crate) use impl_sql_store;
