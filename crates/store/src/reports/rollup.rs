//! The rollups kept in step with the stored reports: what a report adds to (or, with sign
//! −1, takes from) `report_daily` and the breakdown rollups `report_daily_tls_failures`,
//! `report_daily_dmarc_sources` and `report_daily_policies`, and the statements that apply
//! it. Every table is spread over a report's days by the one rule of `mtasts_proto::rollup`,
//! so that a breakdown over a window sums the same days as the charts.
//!
//! The gathering is pure ([`Rollups::add`]); [`apply_rollups!`] writes it inside the caller's
//! transaction, table by table in a fixed order and each table in key order, so concurrent
//! transactions lock rollup rows in the same order (no deadlock on PostgreSQL).

use std::collections::BTreeMap;

use mtasts_proto::rollup::Span;

use super::prepare::{DomainCounts, Prepared};
use super::types::Kind;
use super::{ReportDbError, cut};

/// The longest label a breakdown rollup keys on (a result type, an address, a policy label,
/// a DMARC `p`), in bytes; longer ones are cut at a character boundary. Every real value is
/// far shorter (an IPv6 address is at most 45 bytes); the bound keeps the widest key
/// (domain, organization and four labels) under PostgreSQL's index-row limit.
pub const MAX_LABEL_BYTES: usize = 255;

/// The most rows one report adds to one breakdown rollup table (distinct keys × days). The
/// readers already bound the keys of a report (`MAX_FAILURE_DETAILS` failure details and
/// `MAX_POLICIES` policies in `mtasts_proto::tlsrpt::report`, `MAX_RECORDS` records in
/// `mtasts_proto::dmarc`); spread over up to 32 days they
/// could still make millions of rows that retention never deletes. Past this, a report's
/// smallest groups are counted together under empty labels (failures, sources) or left out
/// (policies beyond the first; only the newest policy is ever read). A report of one or two
/// days within the readers' limits never reaches it.
pub const MAX_ROLLUP_ROWS: usize = 100_000;

/// A `report_daily` key: kind, domain, day, organization.
pub(super) type DailyKey = (&'static str, String, i64, String);
/// `report_daily` changes: reports, success, failure, messages, dmarc_pass, dkim_pass,
/// spf_pass, none, quarantine, reject, begun (reports that begin on the day), and
/// last_received (the latest arrival of a report beginning on the day: a maximum, never
/// lowered).
pub(super) type DailyValues = [i64; 12];
/// A `report_daily_tls_failures` key: domain, day, organization, result, receiving MX,
/// receiving IP, sending IP (labels `""` when not given).
pub(super) type TlsKey = (String, i64, String, String, String, String, String);
/// `report_daily_tls_failures` changes: reports, failed sessions.
pub(super) type TlsValues = [i64; 2];
/// A `report_daily_dmarc_sources` key: domain, day, source IP, header-from (`""` when
/// absent).
pub(super) type DmarcKey = (String, i64, String, String);
/// `report_daily_dmarc_sources` changes: reports, messages, dmarc_pass, dkim_pass, spf_pass,
/// none, quarantine, reject.
pub(super) type DmarcValues = [i64; 8];
/// A `report_daily_policies` key: domain, day, kind, policy label, `p` (`""` when absent),
/// `pct` (−1 when absent).
pub(super) type PolicyKey = (String, i64, &'static str, String, String, i64);
/// `report_daily_policies` changes: reports, and seen_at (the latest end of a report counted:
/// a maximum, never lowered).
pub(super) type PolicyValues = [i64; 2];

/// A failure detail as the rollups see it.
#[derive(Clone, Copy, Debug)]
pub(super) struct FailureItem<'a> {
    pub(super) domain: &'a str,
    pub(super) result: &'a str,
    pub(super) receiving_mx: Option<&'a str>,
    pub(super) receiving_ip: Option<&'a str>,
    pub(super) sending_ip: Option<&'a str>,
    pub(super) count: i64,
}

/// A DMARC record as the rollups see it.
#[derive(Clone, Copy, Debug)]
pub(super) struct RecordItem<'a> {
    pub(super) domain: &'a str,
    pub(super) source_ip: &'a str,
    pub(super) header_from: Option<&'a str>,
    pub(super) dkim: Option<&'a str>,
    pub(super) spf: Option<&'a str>,
    pub(super) disposition: &'a str,
    pub(super) count: i64,
}

/// A policy as the rollups see it.
#[derive(Clone, Copy, Debug)]
pub(super) struct PolicyItem<'a> {
    pub(super) domain: &'a str,
    pub(super) policy: &'a str,
    pub(super) p: Option<&'a str>,
    pub(super) pct: Option<i64>,
}

/// What one report adds to the rollups: from a report being stored ([`Contribution::of`]),
/// or read back from its stored rows (to take it away again, or to backfill).
#[derive(Clone, Debug)]
pub(super) struct Contribution<'a> {
    pub(super) kind: Kind,
    pub(super) organization: &'a str,
    pub(super) begin: i64,
    pub(super) end: i64,
    pub(super) received_at: i64,
    pub(super) per_domain: &'a [DomainCounts],
    pub(super) failures: Vec<FailureItem<'a>>,
    pub(super) records: Vec<RecordItem<'a>>,
    pub(super) policies: Vec<PolicyItem<'a>>,
}

impl<'a> Contribution<'a> {
    /// A prepared report's contribution, arrived at `received_at`.
    pub(super) fn of(p: &'a Prepared, received_at: i64) -> Contribution<'a> {
        Contribution {
            kind: p.kind,
            organization: &p.organization,
            begin: p.begin,
            end: p.end,
            received_at,
            per_domain: &p.per_domain,
            failures: p
                .failures
                .iter()
                .map(|f| FailureItem {
                    domain: &f.domain,
                    result: &f.result,
                    receiving_mx: f.receiving_mx.as_deref(),
                    receiving_ip: f.receiving_ip.as_deref(),
                    sending_ip: f.sending_ip.as_deref(),
                    count: f.count,
                })
                .collect(),
            records: p
                .records
                .iter()
                .map(|r| RecordItem {
                    // A DMARC report has one domain; its records are about it.
                    domain: &p.domains,
                    source_ip: &r.source_ip,
                    header_from: r.header_from.as_deref(),
                    dkim: r.dkim.as_deref(),
                    spf: r.spf.as_deref(),
                    disposition: r.disposition,
                    count: r.count,
                })
                .collect(),
            policies: p
                .policies
                .iter()
                .map(|q| PolicyItem {
                    domain: &q.domain,
                    policy: &q.policy,
                    p: q.p.as_deref(),
                    pct: q.pct,
                })
                .collect(),
        }
    }
}

/// Rollup changes gathered over a transaction, per table, in key order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(super) struct Rollups {
    pub(super) daily: BTreeMap<DailyKey, DailyValues>,
    pub(super) tls: BTreeMap<TlsKey, TlsValues>,
    pub(super) dmarc: BTreeMap<DmarcKey, DmarcValues>,
    pub(super) policies: BTreeMap<PolicyKey, PolicyValues>,
}

impl Rollups {
    /// Adds `c` times `sign` (1 to count a report, −1 to take it away) to every rollup.
    pub(super) fn add(&mut self, c: &Contribution<'_>, sign: i64) {
        self.add_daily(c, sign);
        self.add_breakdowns(c, sign);
    }

    /// Adds `c`'s per-domain counts, spread over its days, times `sign` to `report_daily`.
    pub(super) fn add_daily(&mut self, c: &Contribution<'_>, sign: i64) {
        let span = Span::new(c.begin, c.end);
        for d in c.per_domain {
            // Counts are never negative (they were checked when stored).
            let mut shares: Vec<Vec<u64>> = d
                .counts
                .iter()
                .map(|&n| span.split(n.max(0) as u64))
                .collect();
            if c.kind == Kind::Dmarc {
                // Messages are split as their two parts (passing, failing) so that every
                // day's messages equal its success plus failure; dmarc_pass is the success.
                shares[2] = sum_shares(&shares[0], &shares[1]);
                shares[3] = shares[0].clone();
            }
            for (i, day) in span.days().enumerate() {
                let key = (
                    c.kind.as_str(),
                    d.domain.clone(),
                    day,
                    c.organization.to_owned(),
                );
                let values = self.daily.entry(key).or_insert([0; 12]);
                values[0] += sign;
                for (slot, share) in values[1..10].iter_mut().zip(&shares) {
                    // A share is at most its count, an i64.
                    *slot += sign * share[i] as i64;
                }
                if i == 0 {
                    values[10] += sign;
                    if sign > 0 {
                        values[11] = values[11].max(c.received_at);
                    }
                }
            }
        }
    }

    /// Adds `c`'s failure details, records and policies, spread over its days, times `sign`
    /// to the breakdown rollups.
    pub(super) fn add_breakdowns(&mut self, c: &Contribution<'_>, sign: i64) {
        let span = Span::new(c.begin, c.end);
        let days: Vec<i64> = span.days().collect();

        // Failure details: one group per key, failed sessions summed.
        let mut tls: BTreeMap<(String, String, String, String, String), i64> = BTreeMap::new();
        for f in &c.failures {
            let key = (
                f.domain.to_owned(),
                label(f.result),
                optional_label(f.receiving_mx),
                optional_label(f.receiving_ip),
                optional_label(f.sending_ip),
            );
            let sum = tls.entry(key).or_default();
            *sum = sum.saturating_add(f.count.max(0));
        }
        let tls = bounded(
            tls,
            days.len(),
            |n| *n,
            |k| Some(other_failure(k)),
            |a, b| *a = a.saturating_add(*b),
        );
        for ((domain, result, mx, rip, sip), count) in tls {
            let shares = span.split(count as u64);
            for (i, &day) in days.iter().enumerate() {
                let key = (
                    domain.clone(),
                    day,
                    c.organization.to_owned(),
                    result.clone(),
                    mx.clone(),
                    rip.clone(),
                    sip.clone(),
                );
                let values = self.tls.entry(key).or_insert([0; 2]);
                values[0] += sign;
                values[1] += sign * shares[i] as i64;
            }
        }

        // Records: per (domain, source IP, header-from) the passing and failing messages,
        // then DKIM pass, SPF pass and the three dispositions.
        let mut sources: BTreeMap<(String, String, String), [i64; 7]> = BTreeMap::new();
        for r in &c.records {
            let n = r.count.max(0);
            let dkim = r.dkim == Some("pass");
            let spf = r.spf == Some("pass");
            let pass = dkim || spf;
            // RFC 9990's disposition `pass` means nothing was done to the message: as none.
            let values = [
                if pass { n } else { 0 },
                if pass { 0 } else { n },
                if dkim { n } else { 0 },
                if spf { n } else { 0 },
                if matches!(r.disposition, "none" | "pass") {
                    n
                } else {
                    0
                },
                if r.disposition == "quarantine" { n } else { 0 },
                if r.disposition == "reject" { n } else { 0 },
            ];
            let key = (
                r.domain.to_owned(),
                label(r.source_ip),
                r.header_from.unwrap_or("").to_owned(),
            );
            let sums = sources.entry(key).or_insert([0; 7]);
            for (sum, value) in sums.iter_mut().zip(values) {
                *sum = sum.saturating_add(value);
            }
        }
        let sources = bounded(
            sources,
            days.len(),
            |v| v[0].saturating_add(v[1]),
            |(domain, _, _)| Some((domain.clone(), String::new(), String::new())),
            |a, b| {
                for (x, y) in a.iter_mut().zip(b) {
                    *x = x.saturating_add(*y);
                }
            },
        );
        for ((domain, source_ip, header_from), sums) in sources {
            let shares: Vec<Vec<u64>> = sums.iter().map(|&n| span.split(n as u64)).collect();
            let messages = sum_shares(&shares[0], &shares[1]);
            for (i, &day) in days.iter().enumerate() {
                let key = (domain.clone(), day, source_ip.clone(), header_from.clone());
                let values = self.dmarc.entry(key).or_insert([0; 8]);
                let changes = [
                    1,
                    messages[i],
                    shares[0][i],
                    shares[2][i],
                    shares[3][i],
                    shares[4][i],
                    shares[5][i],
                    shares[6][i],
                ];
                for (slot, change) in values.iter_mut().zip(changes) {
                    *slot += sign * change as i64;
                }
            }
        }

        // Policies: a report counts once per distinct policy it shows a domain.
        let mut policies: BTreeMap<(String, String, String, i64), ()> = BTreeMap::new();
        for q in &c.policies {
            let key = (
                q.domain.to_owned(),
                label(q.policy),
                optional_label(q.p),
                q.pct.unwrap_or(-1),
            );
            policies.insert(key, ());
        }
        let policies = bounded(policies, days.len(), |_| 0, |_| None, |_, _| {});
        for (domain, policy, p, pct) in policies.into_keys() {
            for &day in &days {
                let key = (
                    domain.clone(),
                    day,
                    c.kind.as_str(),
                    policy.clone(),
                    p.clone(),
                    pct,
                );
                let values = self.policies.entry(key).or_insert([0; 2]);
                values[0] += sign;
                if sign > 0 {
                    values[1] = values[1].max(c.end);
                }
            }
        }
    }
}

/// The groups of one report within [`MAX_ROLLUP_ROWS`] rows over `days` days: when there
/// are too many, the largest (by `weight`, then by key) stay and each other one is merged
/// into its `other` group, or left out when it has none.
fn bounded<K: Ord + Clone, V: Clone>(
    groups: BTreeMap<K, V>,
    days: usize,
    weight: impl Fn(&V) -> i64,
    other: impl Fn(&K) -> Option<K>,
    merge: impl Fn(&mut V, &V),
) -> BTreeMap<K, V> {
    let days = days.max(1);
    if groups.len().saturating_mul(days) <= MAX_ROLLUP_ROWS {
        return groups;
    }
    // The groups folded add one `other` group per domain at most (a report with many domains
    // has as many rows in `report_daily` already), so the bound is the kept groups plus those.
    let keep = (MAX_ROLLUP_ROWS / days).max(1);
    let mut ordered: Vec<(K, V)> = groups.into_iter().collect();
    ordered.sort_by(|a, b| weight(&b.1).cmp(&weight(&a.1)).then_with(|| a.0.cmp(&b.0)));
    let rest = ordered.split_off(keep.min(ordered.len()));
    let mut out: BTreeMap<K, V> = ordered.into_iter().collect();
    for (key, value) in rest {
        if let Some(other) = other(&key) {
            match out.get_mut(&other) {
                Some(sum) => merge(sum, &value),
                None => {
                    out.insert(other, value);
                }
            }
        }
    }
    out
}

/// The group a failure detail is counted in past [`MAX_ROLLUP_ROWS`]: its domain, no labels.
fn other_failure(
    key: &(String, String, String, String, String),
) -> (String, String, String, String, String) {
    (
        key.0.clone(),
        String::new(),
        String::new(),
        String::new(),
        String::new(),
    )
}

/// A label as a rollup keys on it: cut to [`MAX_LABEL_BYTES`].
pub(super) fn label(text: &str) -> String {
    cut(text, MAX_LABEL_BYTES).to_owned()
}

/// An optional label: `""` when absent (key columns cannot be NULL); an empty value reads
/// back as absent too.
pub(super) fn optional_label(text: Option<&str>) -> String {
    text.map(label).unwrap_or_default()
}

/// An optional label read back: `None` for `""`.
pub(super) fn label_read(text: String) -> Option<String> {
    (!text.is_empty()).then_some(text)
}

fn sum_shares(a: &[u64], b: &[u64]) -> Vec<u64> {
    a.iter().zip(b).map(|(x, y)| x + y).collect()
}

/// A report row read back: id, kind, organization, begin, end, received_at.
pub(super) type ReportTuple = (i64, String, String, i64, i64, i64);
/// A `report_domains` row read back: report, domain, then the nine counts.
pub(super) type DomainTuple = (i64, String, i64, i64, i64, i64, i64, i64, i64, i64, i64);
/// A failure detail read back: report, domain, result, count, receiving MX, receiving IP,
/// sending IP.
pub(super) type FailureTuple = (
    i64,
    String,
    String,
    i64,
    Option<String>,
    Option<String>,
    Option<String>,
);
/// A record read back: report, domain, source IP, count, disposition, DKIM, SPF,
/// header-from.
pub(super) type RecordTuple = (
    i64,
    String,
    String,
    i64,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
);
/// A policy read back: report, domain, policy label, `p`, `pct`.
pub(super) type PolicyTuple = (i64, String, String, Option<String>, Option<i64>);

/// One stored report's rows, as read back for the rollups.
#[derive(Clone, Debug)]
pub(super) struct StoredRows {
    kind: Kind,
    organization: String,
    begin: i64,
    end: i64,
    received_at: i64,
    per_domain: Vec<DomainCounts>,
    failures: Vec<FailureTuple>,
    records: Vec<RecordTuple>,
    policies: Vec<PolicyTuple>,
}

impl StoredRows {
    /// The reports read back, by id, with their rows.
    pub(super) fn group(
        reports: Vec<ReportTuple>,
        domains: Vec<DomainTuple>,
        failures: Vec<FailureTuple>,
        records: Vec<RecordTuple>,
        policies: Vec<PolicyTuple>,
    ) -> Result<BTreeMap<i64, StoredRows>, ReportDbError> {
        let mut out = BTreeMap::new();
        for (id, kind, organization, begin, end, received_at) in reports {
            let kind = kind
                .parse()
                .map_err(|e| ReportDbError::Corrupt(format!("report {id}: {e}")))?;
            out.insert(
                id,
                StoredRows {
                    kind,
                    organization,
                    begin,
                    end,
                    received_at,
                    per_domain: Vec::new(),
                    failures: Vec::new(),
                    records: Vec::new(),
                    policies: Vec::new(),
                },
            );
        }
        // Rows of a report that is not in `reports` cannot be: the rows cascade with it.
        for (report, domain, a, b, c, d, e, f, g, h, i) in domains {
            if let Some(r) = out.get_mut(&report) {
                r.per_domain.push(DomainCounts {
                    domain,
                    counts: [a, b, c, d, e, f, g, h, i],
                });
            }
        }
        for row in failures {
            if let Some(r) = out.get_mut(&row.0) {
                r.failures.push(row);
            }
        }
        for row in records {
            if let Some(r) = out.get_mut(&row.0) {
                r.records.push(row);
            }
        }
        for row in policies {
            if let Some(r) = out.get_mut(&row.0) {
                r.policies.push(row);
            }
        }
        Ok(out)
    }

    /// When the report first arrived.
    pub(super) fn received_at(&self) -> i64 {
        self.received_at
    }

    /// What the report added to the rollups when it was stored.
    pub(super) fn contribution(&self) -> Contribution<'_> {
        Contribution {
            kind: self.kind,
            organization: &self.organization,
            begin: self.begin,
            end: self.end,
            received_at: self.received_at,
            per_domain: &self.per_domain,
            failures: self
                .failures
                .iter()
                .map(|(_, domain, result, count, mx, rip, sip)| FailureItem {
                    domain,
                    result,
                    receiving_mx: mx.as_deref(),
                    receiving_ip: rip.as_deref(),
                    sending_ip: sip.as_deref(),
                    count: *count,
                })
                .collect(),
            records: self
                .records
                .iter()
                .map(
                    |(_, domain, source_ip, count, disposition, dkim, spf, header_from)| {
                        RecordItem {
                            domain,
                            source_ip,
                            header_from: header_from.as_deref(),
                            dkim: dkim.as_deref(),
                            spf: spf.as_deref(),
                            disposition,
                            count: *count,
                        }
                    },
                )
                .collect(),
            policies: self
                .policies
                .iter()
                .map(|(_, domain, policy, p, pct)| PolicyItem {
                    domain,
                    policy,
                    p: p.as_deref(),
                    pct: *pct,
                })
                .collect(),
        }
    }
}

/// Reads back the rows of the stored reports with ids in `[$first, $last]`, inside `$tx`,
/// and evaluates to their [`StoredRows`] by id.
macro_rules! read_stored {
    ($tx:ident, $first:expr, $last:expr) => {{
        use $crate::reports::rollup as r;
        let (first, last): (i64, i64) = ($first, $last);
        let reports: Vec<r::ReportTuple> = sqlx::query_as(sql::ROLLUP_REPORTS)
            .bind(first)
            .bind(last)
            .fetch_all(&mut *$tx)
            .await
            .map_err(db_error)?;
        let domains: Vec<r::DomainTuple> = sqlx::query_as(sql::ROLLUP_DOMAINS)
            .bind(first)
            .bind(last)
            .fetch_all(&mut *$tx)
            .await
            .map_err(db_error)?;
        let failures: Vec<r::FailureTuple> = sqlx::query_as(sql::ROLLUP_FAILURES)
            .bind(first)
            .bind(last)
            .fetch_all(&mut *$tx)
            .await
            .map_err(db_error)?;
        let records: Vec<r::RecordTuple> = sqlx::query_as(sql::ROLLUP_RECORDS)
            .bind(first)
            .bind(last)
            .fetch_all(&mut *$tx)
            .await
            .map_err(db_error)?;
        let policies: Vec<r::PolicyTuple> = sqlx::query_as(sql::ROLLUP_POLICIES)
            .bind(first)
            .bind(last)
            .fetch_all(&mut *$tx)
            .await
            .map_err(db_error)?;
        r::StoredRows::group(reports, domains, failures, records, policies)?
    }};
}

/// Writes a [`Rollups`] inside the transaction `$tx`: each table in key order, the tables in
/// one fixed order, entries that change nothing skipped; rows left with no report deleted.
macro_rules! apply_rollups {
    ($tx:ident, $rollups:expr) => {{
        let rollups: &$crate::reports::rollup::Rollups = $rollups;
        apply_rollups!(@table $tx, rollups.daily, sql::UPSERT_DAILY, sql::UPSERT_DAILY_TAIL,
            sql::DELETE_EMPTY_DAILY, |b, key| {
                b.push_bind(key.0)
                    .push_bind(key.1.clone())
                    .push_bind(key.2)
                    .push_bind(key.3.clone());
            });
        apply_rollups!(@table $tx, rollups.tls, sql::UPSERT_TLS, sql::UPSERT_TLS_TAIL,
            sql::DELETE_EMPTY_TLS, |b, key| {
                b.push_bind(key.0.clone())
                    .push_bind(key.1)
                    .push_bind(key.2.clone())
                    .push_bind(key.3.clone())
                    .push_bind(key.4.clone())
                    .push_bind(key.5.clone())
                    .push_bind(key.6.clone());
            });
        apply_rollups!(@table $tx, rollups.dmarc, sql::UPSERT_DMARC, sql::UPSERT_DMARC_TAIL,
            sql::DELETE_EMPTY_DMARC, |b, key| {
                b.push_bind(key.0.clone())
                    .push_bind(key.1)
                    .push_bind(key.2.clone())
                    .push_bind(key.3.clone());
            });
        apply_rollups!(@table $tx, rollups.policies, sql::UPSERT_POLICIES,
            sql::UPSERT_POLICIES_TAIL, sql::DELETE_EMPTY_POLICIES, |b, key| {
                b.push_bind(key.0.clone())
                    .push_bind(key.1)
                    .push_bind(key.2)
                    .push_bind(key.3.clone())
                    .push_bind(key.4.clone())
                    .push_bind(key.5);
            });
    }};
    (@table $tx:ident, $map:expr, $head:expr, $tail:expr, $delete:expr,
        |$b:ident, $key:ident| $push:block) => {{
        let rows: Vec<_> = $map
            .iter()
            .filter(|(_, values)| values.iter().any(|&v| v != 0))
            .collect();
        for chunk in rows.chunks($crate::reports::BATCH_ROWS) {
            let mut builder = sqlx::QueryBuilder::new($head);
            builder.push_values(chunk, |mut $b, ($key, values)| {
                $push
                for value in values.iter() {
                    $b.push_bind(*value);
                }
            });
            builder.push($tail);
            builder.build().execute(&mut *$tx).await.map_err(db_error)?;
        }
        // The first value is always the reports counted: a row left with none goes.
        if rows.iter().any(|(_, values)| values[0] < 0) {
            sqlx::query($delete)
                .execute(&mut *$tx)
                .await
                .map_err(db_error)?;
        }
    }};
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: i64 = 1_711_324_800; // 2024-03-25T00:00:00Z
    const DAY: i64 = 86_400;

    fn contribution<'a>(
        begin: i64,
        end: i64,
        failures: Vec<FailureItem<'a>>,
        records: Vec<RecordItem<'a>>,
    ) -> Contribution<'a> {
        Contribution {
            kind: Kind::TlsRpt,
            organization: "Org",
            begin,
            end,
            received_at: end + 10,
            per_domain: &[],
            failures,
            records,
            policies: Vec::new(),
        }
    }

    fn failure<'a>(result: &'a str, sip: Option<&'a str>, count: i64) -> FailureItem<'a> {
        FailureItem {
            domain: "example.com",
            result,
            receiving_mx: None,
            receiving_ip: None,
            sending_ip: sip,
            count,
        }
    }

    #[test]
    fn failures_are_grouped_and_spread_like_the_daily_counts() {
        // 18:00 to 06:00: half on each day, the odd unit on the first.
        let c = contribution(
            D + 18 * 3600,
            D + DAY + 6 * 3600,
            vec![
                failure("certificate-expired", Some("192.0.2.1"), 2),
                failure("certificate-expired", Some("192.0.2.1"), 1),
                failure("starttls-not-supported", None, 0),
            ],
            Vec::new(),
        );
        let mut r = Rollups::default();
        r.add(&c, 1);
        let got: Vec<(i64, &str, &str, [i64; 2])> = r
            .tls
            .iter()
            .map(|(k, v)| (k.1, k.3.as_str(), k.6.as_str(), *v))
            .collect();
        assert_eq!(
            got,
            [
                (D, "certificate-expired", "192.0.2.1", [1, 2]),
                (D, "starttls-not-supported", "", [1, 0]),
                (D + DAY, "certificate-expired", "192.0.2.1", [1, 1]),
                (D + DAY, "starttls-not-supported", "", [1, 0]),
            ]
        );
        // Taking the same report away leaves nothing.
        r.add(&c, -1);
        assert!(r.tls.values().all(|v| *v == [0, 0]));
    }

    #[test]
    fn records_split_messages_as_passing_and_failing() {
        let records = vec![
            RecordItem {
                domain: "example.com",
                source_ip: "192.0.2.1",
                header_from: Some("example.com"),
                dkim: Some("pass"),
                spf: Some("fail"),
                disposition: "none",
                count: 3,
            },
            RecordItem {
                domain: "example.com",
                source_ip: "192.0.2.1",
                header_from: Some("example.com"),
                dkim: Some("fail"),
                spf: None,
                disposition: "quarantine",
                count: 2,
            },
        ];
        let c = Contribution {
            kind: Kind::Dmarc,
            ..contribution(D + 12 * 3600, D + DAY + 12 * 3600, Vec::new(), records)
        };
        let mut r = Rollups::default();
        r.add(&c, 1);
        let days: Vec<DmarcValues> = r.dmarc.values().copied().collect();
        // 3 passing → 2, 1; 2 failing → 1, 1; messages = passing + failing each day.
        assert_eq!(days[0], [1, 3, 2, 2, 0, 2, 1, 0]);
        assert_eq!(days[1], [1, 2, 1, 1, 0, 1, 1, 0]);
    }

    #[test]
    fn a_report_with_too_many_groups_is_bounded() {
        // A 31-day report with more distinct sending IPs than the bound allows per day.
        let ips: Vec<String> = (0..10_000)
            .map(|i| format!("10.0.{}.{}", i / 256, i % 256))
            .collect();
        let failures = ips
            .iter()
            .enumerate()
            .map(|(i, ip)| FailureItem {
                sending_ip: Some(ip.as_str()),
                ..failure("validation-failure", None, 1 + i as i64 % 3)
            })
            .collect();
        let c = contribution(D, D + 31 * DAY, failures, Vec::new());
        let mut r = Rollups::default();
        r.add(&c, 1);
        assert!(r.tls.len() <= MAX_ROLLUP_ROWS + 31, "{}", r.tls.len());
        // Nothing is lost: the failed sessions still sum to the report's.
        let total: i64 = r.tls.values().map(|v| v[1]).sum();
        let expected: i64 = (0..10_000).map(|i| 1 + i % 3).sum();
        assert_eq!(total, expected);
        // The folded ones are counted without their labels.
        assert!(r.tls.keys().any(|k| k.3.is_empty() && k.6.is_empty()));
    }

    #[test]
    fn labels_are_cut_and_absent_ones_are_empty() {
        let long = "x".repeat(1000);
        assert_eq!(label(&long).len(), MAX_LABEL_BYTES);
        assert_eq!(optional_label(None), "");
        assert_eq!(label_read(String::new()), None);
        assert_eq!(label_read("a".into()).as_deref(), Some("a"));
    }
}
