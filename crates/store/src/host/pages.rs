//! Bounded reads of the lists that grow without limit: domains by name and a domain's
//! versions, a page at a time by key (keyset pagination: the page after a name, the versions
//! below a number), never by offset, so every page costs the same however deep it is. And one
//! version by number, so a domain's view need not read its whole history.
//!
//! Names are compared in byte order on both databases: SQLite's default collation is byte
//! order, and PostgreSQL is told `COLLATE "C"` (its own collation may sort `a-b` after `ab`),
//! with indexes in that order (migration `20261208000004_pages`).

use super::error::db_error;
use super::sql::{self, DomainRow, VersionRow, domain_columns, version_columns};
use super::types::{Domain, PolicyVersion};
use super::{Backend, HostDb, HostDbError, bounded, limits};

/// The most rows one page read returns, whatever the caller asks.
pub const MAX_PAGE_ROWS: u32 = 1_000;

const SQLITE_DOMAINS_AFTER: &str = concat!(
    "SELECT ",
    domain_columns!(),
    " FROM host_domains WHERE name > $1 ORDER BY name LIMIT $2"
);
const SQLITE_TENANT_DOMAINS_AFTER: &str = concat!(
    "SELECT ",
    domain_columns!(),
    " FROM host_domains WHERE tenant_id = $1 AND name > $2 ORDER BY name LIMIT $3"
);
const POSTGRES_DOMAINS_AFTER: &str = concat!(
    "SELECT ",
    domain_columns!(),
    " FROM host_domains WHERE name COLLATE \"C\" > $1 ORDER BY name COLLATE \"C\" LIMIT $2"
);
const POSTGRES_TENANT_DOMAINS_AFTER: &str = concat!(
    "SELECT ",
    domain_columns!(),
    " FROM host_domains WHERE tenant_id = $1 AND name COLLATE \"C\" > $2 \
     ORDER BY name COLLATE \"C\" LIMIT $3"
);
const VERSIONS_BEFORE: &str = concat!(
    "SELECT ",
    version_columns!(),
    " FROM host_policy_versions WHERE domain_id = $1 AND version < $2 \
     ORDER BY version DESC LIMIT $3"
);
const VERSION: &str = concat!(
    "SELECT ",
    version_columns!(),
    " FROM host_policy_versions WHERE domain_id = $1 AND version = $2"
);

impl HostDb {
    /// At most `limit` (and at most [`MAX_PAGE_ROWS`]) domains of `tenant_id` (`None`: of
    /// every tenant) whose names come after `after` in byte order (`None`: from the first), in
    /// that order. The next page starts after the last name of this one.
    pub async fn domains_page(
        &self,
        tenant_id: Option<i64>,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<Domain>, HostDbError> {
        // Every stored name is longer than the empty string: "from the first".
        let after = match after {
            Some(name) => limits::domain(name)?,
            None => String::new(),
        };
        let limit = i64::from(limit.min(MAX_PAGE_ROWS));
        bounded(async {
            let rows: Vec<DomainRow> = match (&self.backend, tenant_id) {
                (Backend::Sqlite { pool, .. }, None) => {
                    sqlx::query_as(SQLITE_DOMAINS_AFTER)
                        .bind(&after)
                        .bind(limit)
                        .fetch_all(pool)
                        .await
                }
                (Backend::Sqlite { pool, .. }, Some(id)) => {
                    sqlx::query_as(SQLITE_TENANT_DOMAINS_AFTER)
                        .bind(id)
                        .bind(&after)
                        .bind(limit)
                        .fetch_all(pool)
                        .await
                }
                (Backend::Postgres { pool }, None) => {
                    sqlx::query_as(POSTGRES_DOMAINS_AFTER)
                        .bind(&after)
                        .bind(limit)
                        .fetch_all(pool)
                        .await
                }
                (Backend::Postgres { pool }, Some(id)) => {
                    sqlx::query_as(POSTGRES_TENANT_DOMAINS_AFTER)
                        .bind(id)
                        .bind(&after)
                        .bind(limit)
                        .fetch_all(pool)
                        .await
                }
            }
            .map_err(db_error)?;
            sql::convert(rows)
        })
        .await
    }

    /// At most `limit` (and at most [`MAX_PAGE_ROWS`]) versions of `domain_id` numbered
    /// below `before` (`None`: from the newest), newest first. [`HostDbError::NotFound`] when
    /// there is no such domain.
    pub async fn versions_page(
        &self,
        domain_id: i64,
        before: Option<i64>,
        limit: u32,
    ) -> Result<Vec<PolicyVersion>, HostDbError> {
        let before = before.unwrap_or(i64::MAX);
        let limit = i64::from(limit.min(MAX_PAGE_ROWS));
        bounded(async {
            let rows: Vec<VersionRow> = with_pool!(self, |pool| sqlx::query_as(VERSIONS_BEFORE)
                .bind(domain_id)
                .bind(before)
                .bind(limit)
                .fetch_all(pool)
                .await
                .map_err(db_error)?);
            if rows.is_empty() {
                // Past the oldest version, or no such domain: only the second is an error.
                let exists: Option<i64> =
                    with_pool!(self, |pool| sqlx::query_scalar(sql::DOMAIN_EXISTS)
                        .bind(domain_id)
                        .fetch_optional(pool)
                        .await
                        .map_err(db_error)?);
                if exists.is_none() {
                    return Err(HostDbError::NotFound);
                }
            }
            sql::convert(rows)
        })
        .await
    }

    /// Version `version` of `domain_id`, if there is one.
    pub async fn version(
        &self,
        domain_id: i64,
        version: i64,
    ) -> Result<Option<PolicyVersion>, HostDbError> {
        bounded(async {
            let row: Option<VersionRow> = with_pool!(self, |pool| sqlx::query_as(VERSION)
                .bind(domain_id)
                .bind(version)
                .fetch_optional(pool)
                .await
                .map_err(db_error)?);
            row.map(PolicyVersion::try_from).transpose()
        })
        .await
    }
}
