//! Reading: the listed reports, one report whole, the daily rollups, and the groupings
//! `mtasts report summary` shows, from the per-report rows (`mtasts serve`'s views read the
//! breakdown rollups instead: [`super::scope`]).

use std::collections::BTreeMap;

use super::prepare::domain_key;
use super::types::{
    DailyRow, ErrorRow, FailureGroup, Filter, Kind, PolicySeen, ReportRow, SourceGroup,
    StoredReport,
};
use super::{OP_TIMEOUT, ReportDb, ReportDbError, bounded, error::db_error, sql, unsigned};

/// The most rows [`ReportDb::list`] and [`ReportDb::errors`] return, whatever is asked.
pub const MAX_LIST: u32 = 100_000;

pub(super) type ReportTuple = (
    i64,
    String,
    String,
    String,
    i64,
    i64,
    String,
    String,
    i64,
    i64,
    i64,
    i64,
);

/// Binds the four parameters of a filter (`$1` domain, `$2` since, `$3` until, `$4` kind).
macro_rules! bind_filter {
    ($query:expr, $filter:expr) => {{
        let filter: &Filter = $filter;
        $query
            .bind(filter.domain.as_deref().map(domain_key))
            .bind(filter.since)
            .bind(filter.until)
            .bind(filter.kind.map(Kind::as_str))
    }};
}

impl ReportDb {
    /// The reports `filter` selects, newest begin first, at most `limit` (and [`MAX_LIST`]).
    pub async fn list(&self, filter: &Filter, limit: u32) -> Result<Vec<ReportRow>, ReportDbError> {
        bounded(OP_TIMEOUT, async {
            let rows: Vec<ReportTuple> =
                with_pool!(self, |pool| bind_filter!(sqlx::query_as(sql::LIST), filter)
                    .bind(i64::from(limit.min(MAX_LIST)))
                    .fetch_all(pool)
                    .await
                    .map_err(db_error)?);
            rows.into_iter().map(report_row).collect()
        })
        .await
    }

    /// One stored report with its normalized JSON and its document.
    pub async fn get(&self, id: i64) -> Result<Option<StoredReport>, ReportDbError> {
        bounded(OP_TIMEOUT, async {
            type Row = (
                i64,
                String,
                String,
                String,
                i64,
                i64,
                String,
                String,
                i64,
                i64,
                i64,
                i64,
                String,
                Vec<u8>,
            );
            let row: Option<Row> = with_pool!(self, |pool| sqlx::query_as(sql::GET)
                .bind(id)
                .fetch_optional(pool)
                .await
                .map_err(db_error)?);
            let Some((a, b, c, d, e, f, g, h, i, j, k, l, normalized, raw)) = row else {
                return Ok(None);
            };
            Ok(Some(StoredReport {
                row: report_row((a, b, c, d, e, f, g, h, i, j, k, l))?,
                normalized,
                raw,
            }))
        })
        .await
    }

    /// The daily rollups of the days `filter` selects (a day counts when it overlaps
    /// `[since, until)`), sorted by kind, domain, day and organization.
    pub async fn daily(&self, filter: &Filter) -> Result<Vec<DailyRow>, ReportDbError> {
        bounded(OP_TIMEOUT, async {
            let rows: Vec<DailyTuple> = with_pool!(self, |pool| bind_filter!(
                sqlx::query_as(sql::DAILY),
                filter
            )
            .fetch_all(pool)
            .await
            .map_err(db_error)?);
            let mut out = rows
                .into_iter()
                .map(daily_row)
                .collect::<Result<Vec<_>, ReportDbError>>()?;
            out.sort_by(|a, b| {
                (a.kind, &a.domain, a.day, &a.organization).cmp(&(
                    b.kind,
                    &b.domain,
                    b.day,
                    &b.organization,
                ))
            });
            Ok(out)
        })
        .await
    }

    /// TLS failure details of the reports `filter` selects, grouped by domain, result type,
    /// receiving MX and organization; most failed sessions first. Read from the per-report
    /// rows (a report counts whole when its range overlaps the filter's); `mtasts serve` reads
    /// the rollups instead ([`ReportDb::tls_failures_of`]).
    pub async fn tls_failures(&self, filter: &Filter) -> Result<Vec<FailureGroup>, ReportDbError> {
        bounded(OP_TIMEOUT, async {
            let rows: Vec<FailureTuple> = with_pool!(self, |pool| bind_filter!(
                sqlx::query_as(sql::TLS_FAILURES),
                filter
            )
            .fetch_all(pool)
            .await
            .map_err(db_error)?);
            let mut out = rows
                .into_iter()
                .map(failure_group)
                .collect::<Result<Vec<_>, ReportDbError>>()?;
            out.sort_by(|a, b| {
                (
                    &a.domain,
                    std::cmp::Reverse(a.count),
                    &a.result,
                    &a.receiving_mx,
                    &a.organization,
                )
                    .cmp(&(
                        &b.domain,
                        std::cmp::Reverse(b.count),
                        &b.result,
                        &b.receiving_mx,
                        &b.organization,
                    ))
            });
            Ok(out)
        })
        .await
    }

    /// DMARC records of the reports `filter` selects, grouped by domain, source IP and
    /// header-from; most messages first. Only the records kept are here (a report past
    /// `MAX_RECORDS` has its totals in [`ReportDb::daily`]). Read from the per-report rows
    /// (a report counts whole when its range overlaps the filter's); `mtasts serve` reads the
    /// rollups instead ([`ReportDb::dmarc_sources_of`]).
    pub async fn dmarc_sources(&self, filter: &Filter) -> Result<Vec<SourceGroup>, ReportDbError> {
        bounded(OP_TIMEOUT, async {
            type Row = (String, String, String, i64, i64, i64, i64, i64, i64, i64);
            let rows: Vec<Row> = with_pool!(self, |pool| bind_filter!(
                sqlx::query_as(sql::DMARC_SOURCES),
                filter
            )
            .fetch_all(pool)
            .await
            .map_err(db_error)?);
            let mut out = rows
                .into_iter()
                .map(|(domain, source_ip, header_from, m, dp, dk, sp, n, q, r)| {
                    Ok(SourceGroup {
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
                    })
                })
                .collect::<Result<Vec<_>, ReportDbError>>()?;
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
        })
        .await
    }

    /// The latest policy seen per (kind, domain) in the reports `filter` selects (latest by
    /// report end; on a tie, the later stored), sorted by kind and domain.
    pub async fn policies(&self, filter: &Filter) -> Result<Vec<PolicySeen>, ReportDbError> {
        bounded(OP_TIMEOUT, async {
            let rows: Vec<PolicyTuple> = with_pool!(self, |pool| bind_filter!(
                sqlx::query_as(sql::POLICIES),
                filter
            )
            .fetch_all(pool)
            .await
            .map_err(db_error)?);
            let mut latest: BTreeMap<(Kind, String), PolicySeen> = BTreeMap::new();
            for row in rows {
                let seen_row = policy_seen(row)?;
                let key = (seen_row.kind, seen_row.domain.clone());
                match latest.get(&key) {
                    Some(old) if old.last_seen > seen_row.last_seen => {}
                    _ => {
                        latest.insert(key, seen_row);
                    }
                }
            }
            Ok(latest.into_values().collect())
        })
        .await
    }

    /// The stored errors whose input arrived within `filter`'s `[since, until)`, newest first,
    /// at most `limit` (and [`MAX_LIST`]). Errors have no domain or kind: those parts of the
    /// filter are ignored.
    pub async fn errors(
        &self,
        filter: &Filter,
        limit: u32,
    ) -> Result<Vec<ErrorRow>, ReportDbError> {
        bounded(OP_TIMEOUT, async {
            let rows: Vec<(i64, String, String, String, i64)> =
                with_pool!(self, |pool| sqlx::query_as(sql::ERRORS)
                    .bind(filter.since)
                    .bind(filter.until)
                    .bind(i64::from(limit.min(MAX_LIST)))
                    .fetch_all(pool)
                    .await
                    .map_err(db_error)?);
            Ok(rows
                .into_iter()
                .map(|(id, source, code, message, received_at)| ErrorRow {
                    id,
                    source,
                    code,
                    message,
                    received_at,
                })
                .collect())
        })
        .await
    }
}

/// A `report_daily` row as selected: kind, domain, day, organization, then the counts in
/// [`DailyRow`]'s order.
pub(super) type DailyTuple = (
    String,
    String,
    i64,
    String,
    i64,
    i64,
    i64,
    i64,
    i64,
    i64,
    i64,
    i64,
    i64,
    i64,
);

/// A [`DailyRow`] from its selected columns.
pub(super) fn daily_row(t: DailyTuple) -> Result<DailyRow, ReportDbError> {
    let (kind, domain, day, organization, r, s, f, m, dp, dk, sp, n, q, rj) = t;
    Ok(DailyRow {
        kind: kind_of(&kind)?,
        domain,
        day,
        organization,
        reports: unsigned("reports", r)?,
        success: unsigned("success", s)?,
        failure: unsigned("failure", f)?,
        messages: unsigned("messages", m)?,
        dmarc_pass: unsigned("dmarc_pass", dp)?,
        dkim_pass: unsigned("dkim_pass", dk)?,
        spf_pass: unsigned("spf_pass", sp)?,
        none: unsigned("none", n)?,
        quarantine: unsigned("quarantine", q)?,
        reject: unsigned("reject", rj)?,
    })
}

/// A TLS failure group as selected: domain, result, receiving MX, organization, failed
/// sessions, first and last day.
pub(super) type FailureTuple = (String, String, Option<String>, String, i64, i64, i64);

/// A [`FailureGroup`] from its selected columns.
pub(super) fn failure_group(t: FailureTuple) -> Result<FailureGroup, ReportDbError> {
    let (domain, result, receiving_mx, organization, count, first, last) = t;
    Ok(FailureGroup {
        domain,
        result,
        receiving_mx,
        organization,
        count: unsigned("failed sessions", count)?,
        first_day: first,
        last_day: last,
    })
}

/// A policy row as selected: kind, domain, policy label, DMARC `p`, `pct`, when seen.
pub(super) type PolicyTuple = (String, String, String, Option<String>, Option<i64>, i64);

/// A [`PolicySeen`] from its selected columns.
pub(super) fn policy_seen(t: PolicyTuple) -> Result<PolicySeen, ReportDbError> {
    let (kind, domain, policy, p, pct, seen) = t;
    Ok(PolicySeen {
        kind: kind_of(&kind)?,
        domain,
        policy,
        p,
        pct: pct.and_then(|v| u32::try_from(v).ok()),
        last_seen: seen,
    })
}

pub(super) fn kind_of(word: &str) -> Result<Kind, ReportDbError> {
    word.parse()
        .map_err(|e| ReportDbError::Corrupt(format!("{e}")))
}

pub(super) fn report_row(t: ReportTuple) -> Result<ReportRow, ReportDbError> {
    let (id, kind, organization, report_id, begin, end, domains, source, received_at, dup, s, f) =
        t;
    Ok(ReportRow {
        id,
        kind: kind_of(&kind)?,
        organization,
        report_id,
        begin,
        end,
        domains: domains
            .split(' ')
            .filter(|d| !d.is_empty())
            .map(str::to_owned)
            .collect(),
        source,
        received_at,
        duplicates: unsigned("duplicates", dup)?,
        success: unsigned("success", s)?,
        failure: unsigned("failure", f)?,
    })
}
