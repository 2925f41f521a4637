//! Reads over a set of domains (a tenant's, or one), for `mtasts serve`'s report views: the
//! daily rollups, failure and policy groupings, per-organization counts, the newest arrival
//! per domain, and a keyset-paginated report list. A set is sent in chunks of
//! [`DOMAIN_CHUNK`] names, so a tenant with thousands of domains costs a few statements,
//! not one per domain.

use std::collections::{BTreeMap, HashMap};

use sqlx::QueryBuilder;

use super::prepare::domain_key;
use super::read::{
    DailyTuple, FailureTuple, PolicyTuple, daily_row, failure_group, policy_seen, report_row,
};
use super::types::{DailyRow, FailureGroup, Kind, PolicySeen, ReportRow};
use super::{OP_TIMEOUT, ReportDb, ReportDbError, bounded, error::db_error, sql, unsigned};

/// Domains bound in one statement (well below SQLite's parameter limit).
pub const DOMAIN_CHUNK: usize = 500;

/// Which days or reports a scoped read looks at.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Scope {
    /// The domains (any case, trailing dot allowed); a report counts when it names one.
    pub domains: Vec<String>,
    /// Unix seconds: only reports (days) that end after it.
    pub since: Option<i64>,
    /// Unix seconds: only reports (days) that begin before it.
    pub until: Option<i64>,
    /// Only this kind.
    pub kind: Option<Kind>,
}

impl Scope {
    /// The scope of `domains` within `[since, until)`, of `kind`.
    pub fn new(domains: Vec<String>, since: i64, until: i64, kind: Option<Kind>) -> Scope {
        Scope {
            domains,
            since: Some(since),
            until: Some(until),
            kind,
        }
    }

    /// The domains as stored, deduplicated, in chunks.
    fn chunks(&self) -> Vec<Vec<String>> {
        let mut keys: Vec<String> = self.domains.iter().map(|d| domain_key(d)).collect();
        keys.sort();
        keys.dedup();
        keys.chunks(DOMAIN_CHUNK).map(<[String]>::to_vec).collect()
    }
}

/// TLS failure details grouped by (domain, result, receiving MX, receiving IP, sending IP,
/// organization): what the per-address charts need.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FailureDetail {
    /// The policy domain.
    pub domain: String,
    /// The result type, as sent.
    pub result: String,
    /// `receiving-mx-hostname`, when given.
    pub receiving_mx: Option<String>,
    /// `receiving-ip`, when given.
    pub receiving_ip: Option<String>,
    /// `sending-mta-ip`, when given.
    pub sending_ip: Option<String>,
    /// The reporting organization.
    pub organization: String,
    /// Failed sessions.
    pub count: u64,
}

/// Reports and their counts per (domain, organization).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OrganizationCount {
    /// The domain.
    pub domain: String,
    /// The reporting organization.
    pub organization: String,
    /// Reports stored (each once, however often it arrived).
    pub reports: u64,
}

/// Where a keyset page of reports starts: after this (begin, id), newest first.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReportKey {
    /// The report's begin, Unix seconds.
    pub begin: i64,
    /// The report's id.
    pub id: i64,
}

impl ReportDb {
    /// The daily rollups of `scope`, sorted by kind, domain, day and organization.
    pub async fn daily_of(&self, scope: &Scope) -> Result<Vec<DailyRow>, ReportDbError> {
        let mut out = Vec::new();
        for chunk in scope.chunks() {
            bounded(OP_TIMEOUT, async {
                let rows: Vec<DailyTuple> = with_pool!(self, |pool| {
                    let mut q = QueryBuilder::new(
                        "SELECT kind, domain, day, organization, reports, success, failure, \
                         messages, dmarc_pass, dkim_pass, spf_pass, disp_none, quarantine, \
                         reject FROM report_daily WHERE domain IN (",
                    );
                    let mut list = q.separated(", ");
                    for d in &chunk {
                        list.push_bind(d.clone());
                    }
                    q.push(")");
                    if let Some(since) = scope.since {
                        q.push(" AND day + 86400 > ").push_bind(since);
                    }
                    if let Some(until) = scope.until {
                        q.push(" AND day < ").push_bind(until);
                    }
                    if let Some(kind) = scope.kind {
                        q.push(" AND kind = ").push_bind(kind.as_str());
                    }
                    q.build_query_as().fetch_all(pool).await.map_err(db_error)?
                });
                for row in rows {
                    out.push(daily_row(row)?);
                }
                Ok(())
            })
            .await?;
        }
        out.sort_by(|a, b| {
            (a.kind, &a.domain, a.day, &a.organization).cmp(&(
                b.kind,
                &b.domain,
                b.day,
                &b.organization,
            ))
        });
        Ok(out)
    }

    /// The TLS failure groups of `scope` (as [`ReportDb::tls_failures`] groups them), most
    /// failed sessions first.
    pub async fn tls_failures_of(&self, scope: &Scope) -> Result<Vec<FailureGroup>, ReportDbError> {
        let mut out = Vec::new();
        for chunk in scope.chunks() {
            bounded(OP_TIMEOUT, async {
                let rows: Vec<FailureTuple> = with_pool!(self, |pool| {
                    let mut q = QueryBuilder::new(
                        "SELECT f.domain, f.result, f.receiving_mx, r.organization, \
                         CAST(SUM(f.count) AS BIGINT), MIN(r.begin_at - (r.begin_at % 86400)), \
                         MAX(CASE WHEN r.end_at > r.begin_at THEN (r.end_at - 1) - \
                         ((r.end_at - 1) % 86400) ELSE r.begin_at - (r.begin_at % 86400) END) \
                         FROM report_tls_failures f JOIN report_reports r ON r.id = f.report \
                         WHERE r.kind = 'tlsrpt' AND f.domain IN (",
                    );
                    let mut list = q.separated(", ");
                    for d in &chunk {
                        list.push_bind(d.clone());
                    }
                    q.push(")");
                    push_range(&mut q, scope);
                    q.push(" GROUP BY f.domain, f.result, f.receiving_mx, r.organization");
                    q.build_query_as().fetch_all(pool).await.map_err(db_error)?
                });
                for row in rows {
                    out.push(failure_group(row)?);
                }
                Ok(())
            })
            .await?;
        }
        out.sort_by(|a, b| {
            b.count.cmp(&a.count).then_with(|| {
                (&a.domain, &a.result, &a.receiving_mx, &a.organization).cmp(&(
                    &b.domain,
                    &b.result,
                    &b.receiving_mx,
                    &b.organization,
                ))
            })
        });
        Ok(out)
    }

    /// The TLS failure details of `scope` grouped by address ([`FailureDetail`]), most failed
    /// sessions first.
    pub async fn tls_failure_details(
        &self,
        scope: &Scope,
    ) -> Result<Vec<FailureDetail>, ReportDbError> {
        let mut out = Vec::new();
        for chunk in scope.chunks() {
            bounded(OP_TIMEOUT, async {
                type Row = (
                    String,
                    String,
                    Option<String>,
                    Option<String>,
                    Option<String>,
                    String,
                    i64,
                );
                let rows: Vec<Row> = with_pool!(self, |pool| {
                    let mut q = QueryBuilder::new(
                        "SELECT f.domain, f.result, f.receiving_mx, f.receiving_ip, \
                         f.sending_ip, r.organization, CAST(SUM(f.count) AS BIGINT) \
                         FROM report_tls_failures f JOIN report_reports r ON r.id = f.report \
                         WHERE r.kind = 'tlsrpt' AND f.domain IN (",
                    );
                    let mut list = q.separated(", ");
                    for d in &chunk {
                        list.push_bind(d.clone());
                    }
                    q.push(")");
                    push_range(&mut q, scope);
                    q.push(
                        " GROUP BY f.domain, f.result, f.receiving_mx, f.receiving_ip, \
                         f.sending_ip, r.organization",
                    );
                    q.build_query_as().fetch_all(pool).await.map_err(db_error)?
                });
                for (domain, result, receiving_mx, receiving_ip, sending_ip, organization, n) in
                    rows
                {
                    out.push(FailureDetail {
                        domain,
                        result,
                        receiving_mx,
                        receiving_ip,
                        sending_ip,
                        organization,
                        count: unsigned("count", n)?,
                    });
                }
                Ok(())
            })
            .await?;
        }
        out.sort_by(|a, b| {
            b.count.cmp(&a.count).then_with(|| {
                (
                    &a.domain,
                    &a.result,
                    &a.receiving_mx,
                    &a.receiving_ip,
                    &a.sending_ip,
                    &a.organization,
                )
                    .cmp(&(
                        &b.domain,
                        &b.result,
                        &b.receiving_mx,
                        &b.receiving_ip,
                        &b.sending_ip,
                        &b.organization,
                    ))
            })
        });
        Ok(out)
    }

    /// The latest policy seen per (kind, domain) of `scope`, as [`ReportDb::policies`].
    pub async fn policies_of(&self, scope: &Scope) -> Result<Vec<PolicySeen>, ReportDbError> {
        let mut latest: BTreeMap<(Kind, String), PolicySeen> = BTreeMap::new();
        for chunk in scope.chunks() {
            bounded(OP_TIMEOUT, async {
                let rows: Vec<PolicyTuple> = with_pool!(self, |pool| {
                    // Only the rows at each (kind, domain)'s newest `seen_at`, not every
                    // report's: a year of daily reports is thousands of rows per domain.
                    let mut q = QueryBuilder::new(
                        "SELECT p.kind, p.domain, p.policy, p.p, p.pct, p.seen_at \
                         FROM report_policies p JOIN (SELECT p.kind AS k, p.domain AS d, \
                         MAX(p.seen_at) AS m FROM report_policies p \
                         JOIN report_reports r ON r.id = p.report WHERE p.domain IN (",
                    );
                    let mut list = q.separated(", ");
                    for d in &chunk {
                        list.push_bind(d.clone());
                    }
                    q.push(")");
                    push_range(&mut q, scope);
                    q.push(
                        " GROUP BY p.kind, p.domain) latest ON p.kind = latest.k \
                         AND p.domain = latest.d AND p.seen_at = latest.m",
                    );
                    q.build_query_as().fetch_all(pool).await.map_err(db_error)?
                });
                for row in rows {
                    let row = policy_seen(row)?;
                    let key = (row.kind, row.domain.clone());
                    // The newest wins; on a tie, the larger label (the same rule every run).
                    match latest.get(&key) {
                        Some(old)
                            if (old.last_seen, &old.policy) >= (row.last_seen, &row.policy) => {}
                        _ => {
                            latest.insert(key, row);
                        }
                    }
                }
                Ok(())
            })
            .await?;
        }
        Ok(latest.into_values().collect())
    }

    /// Reports stored per (domain, organization) of `scope`.
    pub async fn organizations_of(
        &self,
        scope: &Scope,
    ) -> Result<Vec<OrganizationCount>, ReportDbError> {
        let mut out = Vec::new();
        for chunk in scope.chunks() {
            bounded(OP_TIMEOUT, async {
                let rows: Vec<(String, String, i64)> = with_pool!(self, |pool| {
                    let mut q = QueryBuilder::new(
                        "SELECT d.domain, r.organization, COUNT(*) FROM report_domains d \
                         JOIN report_reports r ON r.id = d.report WHERE d.domain IN (",
                    );
                    let mut list = q.separated(", ");
                    for d in &chunk {
                        list.push_bind(d.clone());
                    }
                    q.push(")");
                    push_range(&mut q, scope);
                    q.push(" GROUP BY d.domain, r.organization");
                    q.build_query_as().fetch_all(pool).await.map_err(db_error)?
                });
                for (domain, organization, n) in rows {
                    out.push(OrganizationCount {
                        domain,
                        organization,
                        reports: unsigned("reports", n)?,
                    });
                }
                Ok(())
            })
            .await?;
        }
        out.sort_by(|a, b| (&a.domain, &a.organization).cmp(&(&b.domain, &b.organization)));
        Ok(out)
    }

    /// When a report naming each domain of `scope` last arrived (Unix seconds), for the
    /// domains that have one; the range of `scope` is ignored.
    pub async fn last_received_of(
        &self,
        scope: &Scope,
    ) -> Result<HashMap<String, i64>, ReportDbError> {
        let mut out = HashMap::new();
        for chunk in scope.chunks() {
            bounded(OP_TIMEOUT, async {
                let rows: Vec<(String, i64)> = with_pool!(self, |pool| {
                    let mut q = QueryBuilder::new(
                        "SELECT d.domain, MAX(r.received_at) FROM report_domains d \
                         JOIN report_reports r ON r.id = d.report WHERE d.domain IN (",
                    );
                    let mut list = q.separated(", ");
                    for d in &chunk {
                        list.push_bind(d.clone());
                    }
                    q.push(")");
                    if let Some(kind) = scope.kind {
                        q.push(" AND r.kind = ").push_bind(kind.as_str());
                    }
                    q.push(" GROUP BY d.domain");
                    q.build_query_as().fetch_all(pool).await.map_err(db_error)?
                });
                out.extend(rows);
                Ok(())
            })
            .await?;
        }
        Ok(out)
    }

    /// One page of the reports naming a domain of `scope` (every report when `domains` is
    /// `None`), newest begin first, after `after`, at most `limit` (and
    /// [`super::MAX_LIST`]).
    pub async fn reports_page(
        &self,
        domains: Option<&[String]>,
        kind: Option<Kind>,
        after: Option<ReportKey>,
        limit: u32,
    ) -> Result<Vec<ReportRow>, ReportDbError> {
        let limit = i64::from(limit.min(super::MAX_LIST));
        let chunks: Vec<Option<Vec<String>>> = match domains {
            None => vec![None],
            Some(list) => Scope {
                domains: list.to_vec(),
                ..Scope::default()
            }
            .chunks()
            .into_iter()
            .map(Some)
            .collect(),
        };
        let mut out: Vec<ReportRow> = Vec::new();
        for chunk in chunks {
            bounded(OP_TIMEOUT, async {
                let rows: Vec<super::read::ReportTuple> = with_pool!(self, |pool| {
                    let mut q = QueryBuilder::new(sql::SCOPED_LIST);
                    if let Some(chunk) = &chunk {
                        q.push(
                            " AND EXISTS (SELECT 1 FROM report_domains d WHERE d.report = r.id \
                             AND d.domain IN (",
                        );
                        let mut list = q.separated(", ");
                        for d in chunk {
                            list.push_bind(d.clone());
                        }
                        q.push("))");
                    }
                    if let Some(kind) = kind {
                        q.push(" AND r.kind = ").push_bind(kind.as_str());
                    }
                    if let Some(key) = after {
                        q.push(" AND (r.begin_at < ")
                            .push_bind(key.begin)
                            .push(" OR (r.begin_at = ")
                            .push_bind(key.begin)
                            .push(" AND r.id < ")
                            .push_bind(key.id)
                            .push("))");
                    }
                    q.push(" ORDER BY r.begin_at DESC, r.id DESC LIMIT ")
                        .push_bind(limit);
                    q.build_query_as().fetch_all(pool).await.map_err(db_error)?
                });
                for row in rows {
                    out.push(report_row(row)?);
                }
                Ok(())
            })
            .await?;
        }
        out.sort_by_key(|r| std::cmp::Reverse((r.begin, r.id)));
        out.dedup_by_key(|r| r.id);
        out.truncate(limit as usize);
        Ok(out)
    }
}

/// Appends the report range of `scope` (on `report_reports r`) and its kind.
fn push_range<DB: sqlx::Database>(q: &mut QueryBuilder<DB>, scope: &Scope)
where
    i64: for<'q> sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    &'static str: for<'q> sqlx::Encode<'q, DB> + sqlx::Type<DB>,
{
    if let Some(since) = scope.since {
        q.push(" AND r.end_at >= ").push_bind(since);
    }
    if let Some(until) = scope.until {
        q.push(" AND r.begin_at < ").push_bind(until);
    }
    if let Some(kind) = scope.kind {
        q.push(" AND r.kind = ").push_bind(kind.as_str());
    }
}
