//! Reads over a set of domains (a tenant's, or one), for `mtasts serve`'s report views: the
//! daily rollups, the TLS failure and DMARC source breakdowns, the latest policies,
//! per-organization report counts and the newest arrival per domain — all from the rollups,
//! which retention keeps, never from the per-report rows — and a keyset-paginated report list
//! (the one read of the reports themselves). A set is sent in chunks of [`DOMAIN_CHUNK`]
//! names, so a tenant with thousands of domains costs a few statements, not one per domain.
//!
//! The rollups count days: a day belongs to a scope when it overlaps `[since, until)`, and a
//! report over several days adds its share of each (`mtasts_proto::rollup`), so a breakdown
//! over a window sums to the charts of the same window. The row-based reads of
//! [`ReportDb::tls_failures`] and friends count a whole report when its range overlaps; for a
//! report inside the window the two agree.

use std::collections::{BTreeMap, HashMap};

use sqlx::QueryBuilder;

use mtasts_proto::rollup::day_of;

use super::prepare::domain_key;
use super::read::{DailyTuple, daily_row, kind_of, report_row};
use super::rollup::label_read;
use super::types::{DailyRow, FailureGroup, Kind, PolicySeen, ReportRow, SourceGroup};
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
                    push_days(&mut q, &chunk, scope);
                    push_kind(&mut q, scope);
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
    /// failed sessions first, from the breakdown rollups: the failed sessions on the days of
    /// the scope (a report over several days counts its share of each), and the first and
    /// last of those days with a report showing the group. Groups without a failed session
    /// on those days are left out.
    pub async fn tls_failures_of(&self, scope: &Scope) -> Result<Vec<FailureGroup>, ReportDbError> {
        if scope.kind == Some(Kind::Dmarc) {
            return Ok(Vec::new());
        }
        let mut out = Vec::new();
        for chunk in scope.chunks() {
            bounded(OP_TIMEOUT, async {
                let rows: Vec<(String, String, String, String, i64, i64, i64)> =
                    with_pool!(self, |pool| {
                        let mut q = QueryBuilder::new(
                            "SELECT domain, result, receiving_mx, organization, \
                             CAST(SUM(count) AS BIGINT), MIN(day), MAX(day) \
                             FROM report_daily_tls_failures WHERE domain IN (",
                        );
                        push_days(&mut q, &chunk, scope);
                        q.push(
                            " GROUP BY domain, result, receiving_mx, organization \
                             HAVING SUM(count) > 0",
                        );
                        q.build_query_as().fetch_all(pool).await.map_err(db_error)?
                    });
                for (domain, result, mx, organization, count, first, last) in rows {
                    out.push(FailureGroup {
                        domain,
                        result,
                        receiving_mx: label_read(mx),
                        organization,
                        count: unsigned("failed sessions", count)?,
                        first_day: first,
                        last_day: last,
                    });
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
    /// sessions first, from the breakdown rollups (the days of the scope, as
    /// [`ReportDb::tls_failures_of`]).
    pub async fn tls_failure_details(
        &self,
        scope: &Scope,
    ) -> Result<Vec<FailureDetail>, ReportDbError> {
        if scope.kind == Some(Kind::Dmarc) {
            return Ok(Vec::new());
        }
        let mut out = Vec::new();
        for chunk in scope.chunks() {
            bounded(OP_TIMEOUT, async {
                type Row = (String, String, String, String, String, String, i64);
                let rows: Vec<Row> = with_pool!(self, |pool| {
                    let mut q = QueryBuilder::new(
                        "SELECT domain, result, receiving_mx, receiving_ip, sending_ip, \
                         organization, CAST(SUM(count) AS BIGINT) \
                         FROM report_daily_tls_failures WHERE domain IN (",
                    );
                    push_days(&mut q, &chunk, scope);
                    q.push(
                        " GROUP BY domain, result, receiving_mx, receiving_ip, sending_ip, \
                         organization HAVING SUM(count) > 0",
                    );
                    q.build_query_as().fetch_all(pool).await.map_err(db_error)?
                });
                for (domain, result, receiving_mx, receiving_ip, sending_ip, organization, n) in
                    rows
                {
                    out.push(FailureDetail {
                        domain,
                        result,
                        receiving_mx: label_read(receiving_mx),
                        receiving_ip: label_read(receiving_ip),
                        sending_ip: label_read(sending_ip),
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

    /// The DMARC sources of `scope` (as [`ReportDb::dmarc_sources`] groups them) from the
    /// breakdown rollups: the messages on the days of the scope (a report over several days
    /// counts its share of each); sources without a message on those days are left out.
    /// Sorted by domain, most messages first, then by address and header-from.
    pub async fn dmarc_sources_of(&self, scope: &Scope) -> Result<Vec<SourceGroup>, ReportDbError> {
        if scope.kind == Some(Kind::TlsRpt) {
            return Ok(Vec::new());
        }
        let mut out = Vec::new();
        for chunk in scope.chunks() {
            bounded(OP_TIMEOUT, async {
                type Row = (String, String, String, i64, i64, i64, i64, i64, i64, i64);
                let rows: Vec<Row> = with_pool!(self, |pool| {
                    let mut q = QueryBuilder::new(
                        "SELECT domain, source_ip, header_from, CAST(SUM(messages) AS BIGINT), \
                         CAST(SUM(dmarc_pass) AS BIGINT), CAST(SUM(dkim_pass) AS BIGINT), \
                         CAST(SUM(spf_pass) AS BIGINT), CAST(SUM(disp_none) AS BIGINT), \
                         CAST(SUM(quarantine) AS BIGINT), CAST(SUM(reject) AS BIGINT) \
                         FROM report_daily_dmarc_sources WHERE domain IN (",
                    );
                    push_days(&mut q, &chunk, scope);
                    q.push(" GROUP BY domain, source_ip, header_from HAVING SUM(messages) > 0");
                    q.build_query_as().fetch_all(pool).await.map_err(db_error)?
                });
                for (domain, source_ip, header_from, m, dp, dk, sp, n, q, r) in rows {
                    out.push(SourceGroup {
                        domain,
                        source_ip,
                        header_from,
                        messages: unsigned("messages", m)?,
                        dmarc_pass: unsigned("dmarc_pass", dp)?,
                        dkim_pass: unsigned("dkim_pass", dk)?,
                        spf_pass: unsigned("spf_pass", sp)?,
                        none: unsigned("none", n)?,
                        quarantine: unsigned("quarantine", q)?,
                        reject: unsigned("reject", r)?,
                    });
                }
                Ok(())
            })
            .await?;
        }
        out.sort_by(|a, b| {
            (
                &a.domain,
                std::cmp::Reverse(a.messages),
                &a.source_ip,
                &a.header_from,
            )
                .cmp(&(
                    &b.domain,
                    std::cmp::Reverse(b.messages),
                    &b.source_ip,
                    &b.header_from,
                ))
        });
        Ok(out)
    }

    /// The latest policy seen per (kind, domain) of `scope`, as [`ReportDb::policies`], from
    /// the policy rollups: among the policies reports showed on the days of the scope, the one
    /// of the latest report end; on a tie, the larger label (then `p`, then `pct`).
    pub async fn policies_of(&self, scope: &Scope) -> Result<Vec<PolicySeen>, ReportDbError> {
        let mut latest: BTreeMap<(Kind, String), PolicySeen> = BTreeMap::new();
        for chunk in scope.chunks() {
            bounded(OP_TIMEOUT, async {
                let rows: Vec<(String, String, String, String, i64, i64)> =
                    with_pool!(self, |pool| {
                        // Only the rows at each (kind, domain)'s newest `seen_at`.
                        let mut q = QueryBuilder::new(
                            "SELECT p.kind, p.domain, p.policy, p.p, p.pct, p.seen_at \
                             FROM report_daily_policies p JOIN (SELECT kind AS k, \
                             domain AS d, MAX(seen_at) AS m FROM report_daily_policies \
                             WHERE domain IN (",
                        );
                        push_days(&mut q, &chunk, scope);
                        push_kind(&mut q, scope);
                        q.push(
                            " GROUP BY kind, domain) latest ON p.kind = latest.k \
                             AND p.domain = latest.d AND p.seen_at = latest.m \
                             WHERE p.domain IN (",
                        );
                        push_days(&mut q, &chunk, scope);
                        push_kind(&mut q, scope);
                        q.build_query_as().fetch_all(pool).await.map_err(db_error)?
                    });
                for (kind, domain, policy, p, pct, seen) in rows {
                    let row = PolicySeen {
                        kind: kind_of(&kind)?,
                        domain,
                        policy,
                        p: label_read(p),
                        pct: u32::try_from(pct).ok(),
                        last_seen: seen,
                    };
                    let key = (row.kind, row.domain.clone());
                    // The newest wins; on a tie, the larger label (the same rule every run).
                    let rank = |r: &PolicySeen| (r.last_seen, r.policy.clone(), r.p.clone(), r.pct);
                    match latest.get(&key) {
                        Some(old) if rank(old) >= rank(&row) => {}
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

    /// Reports per (domain, organization) of `scope`, from the daily rollups: each report
    /// once, those covering the scope's first day plus those beginning on a later day of it
    /// (at day granularity, as the charts).
    pub async fn organizations_of(
        &self,
        scope: &Scope,
    ) -> Result<Vec<OrganizationCount>, ReportDbError> {
        // The first day of the scope: the day holding `since` (days are whole UTC days).
        let first = scope.since.map(day_of);
        let mut out = Vec::new();
        for chunk in scope.chunks() {
            bounded(OP_TIMEOUT, async {
                let rows: Vec<(String, String, i64)> = with_pool!(self, |pool| {
                    let mut q = QueryBuilder::new("SELECT domain, organization, CAST(SUM(");
                    match first {
                        Some(first) => {
                            q.push("CASE WHEN day = ")
                                .push_bind(first)
                                .push(" THEN reports ELSE begun END");
                        }
                        None => {
                            q.push("begun");
                        }
                    }
                    q.push(") AS BIGINT) FROM report_daily WHERE domain IN (");
                    push_days(&mut q, &chunk, scope);
                    push_kind(&mut q, scope);
                    q.push(" GROUP BY domain, organization");
                    q.build_query_as().fetch_all(pool).await.map_err(db_error)?
                });
                for (domain, organization, n) in rows {
                    let reports = unsigned("reports", n)?;
                    if reports > 0 {
                        out.push(OrganizationCount {
                            domain,
                            organization,
                            reports,
                        });
                    }
                }
                Ok(())
            })
            .await?;
        }
        out.sort_by(|a, b| (&a.domain, &a.organization).cmp(&(&b.domain, &b.organization)));
        Ok(out)
    }

    /// When a report naming each domain of `scope` last arrived (Unix seconds), for the
    /// domains that have one, from the daily rollups (which keep it after the report is
    /// deleted); the range of `scope` is ignored.
    pub async fn last_received_of(
        &self,
        scope: &Scope,
    ) -> Result<HashMap<String, i64>, ReportDbError> {
        let mut out = HashMap::new();
        for chunk in scope.chunks() {
            bounded(OP_TIMEOUT, async {
                let rows: Vec<(String, i64)> = with_pool!(self, |pool| {
                    let mut q = QueryBuilder::new(
                        "SELECT domain, MAX(last_received) FROM report_daily WHERE domain IN (",
                    );
                    let mut list = q.separated(", ");
                    for d in &chunk {
                        list.push_bind(d.clone());
                    }
                    q.push(")");
                    if let Some(kind) = scope.kind {
                        q.push(" AND kind = ").push_bind(kind.as_str());
                    }
                    q.push(" GROUP BY domain HAVING MAX(last_received) > 0");
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

/// Appends the domains of `chunk` (closing the `IN (` list) and the days of `scope` to a
/// rollup read: a day counts when it overlaps `[since, until)`. Every rollup table has
/// `domain` and `day`; the kind, a column of `report_daily` and `report_daily_policies`
/// only, is [`push_kind`]'s (the breakdown tables hold one kind each).
fn push_days<DB: sqlx::Database>(q: &mut QueryBuilder<DB>, chunk: &[String], scope: &Scope)
where
    i64: for<'q> sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    String: for<'q> sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    &'static str: for<'q> sqlx::Encode<'q, DB> + sqlx::Type<DB>,
{
    let mut list = q.separated(", ");
    for d in chunk {
        list.push_bind(d.clone());
    }
    q.push(")");
    if let Some(since) = scope.since {
        // Whole days: the day holding `since` is the first (`day + 86400 > since`).
        q.push(" AND day >= ").push_bind(day_of(since));
    }
    if let Some(until) = scope.until {
        q.push(" AND day < ").push_bind(until);
    }
}

/// Appends the kind of `scope`, if any, to a read of a rollup table with a `kind` column.
fn push_kind<DB: sqlx::Database>(q: &mut QueryBuilder<DB>, scope: &Scope)
where
    &'static str: for<'q> sqlx::Encode<'q, DB> + sqlx::Type<DB>,
{
    if let Some(kind) = scope.kind {
        q.push(" AND kind = ").push_bind(kind.as_str());
    }
}
