//! Writing: an input with its reports and errors in one transaction, the rollups (daily and
//! breakdowns, [`super::rollup`]) kept in step, and the reparse operations (reports stored
//! again without counting duplicates, errors replaced, a report's rows and rollups rewritten).

use std::time::Duration;

use super::prepare::{Prepared, prepare};
use super::rollup::{Contribution, MAX_ROLLUP_ROWS, Rollups};
use super::types::{Inserted, NewError, NewInput, NewReport, Stored, StoredInput};
use super::{
    BATCH_ROWS, MAX_TEXT_BYTES, OP_TIMEOUT, ReportDb, ReportDbError, bounded, cut, error::db_error,
    sql,
};

/// Inserts `$rows` into the table of `$head` in statements of [`BATCH_ROWS`] rows, each row's
/// values pushed by `$push` (`|separated, row|`).
macro_rules! insert_batched {
    ($tx:ident, $head:expr, $rows:expr, |$b:ident, $row:ident| $push:block) => {
        for chunk in $rows.chunks(BATCH_ROWS) {
            let mut builder = sqlx::QueryBuilder::new($head);
            builder.push_values(chunk, |mut $b, $row| $push);
            builder.build().execute(&mut *$tx).await.map_err(db_error)?;
        }
    };
}

/// Inserts a prepared report's child rows and gathers its rollups (a report that arrived at
/// `$received_at`) into `$rollups`.
macro_rules! insert_children {
    ($tx:ident, $id:expr, $p:expr, $received_at:expr, $rollups:expr) => {{
        let id: i64 = $id;
        let p: &Prepared = $p;
        insert_batched!($tx, sql::INSERT_DOMAINS, p.per_domain, |b, row| {
            b.push_bind(id).push_bind(row.domain.clone());
            for value in row.counts {
                b.push_bind(value);
            }
        });
        let kind = p.kind.as_str();
        let indexed: Vec<_> = p.policies.iter().enumerate().collect();
        insert_batched!($tx, sql::INSERT_POLICIES, indexed, |b, item| {
            let (idx, row) = *item;
            b.push_bind(id)
                .push_bind(idx as i64)
                .push_bind(kind)
                .push_bind(row.domain.clone())
                .push_bind(row.policy.clone())
                .push_bind(row.p.clone())
                .push_bind(row.pct)
                .push_bind(row.strings.clone())
                .push_bind(row.mx.clone())
                .push_bind(row.success)
                .push_bind(row.failure)
                .push_bind(p.end);
        });
        let indexed: Vec<_> = p.failures.iter().enumerate().collect();
        insert_batched!($tx, sql::INSERT_FAILURES, indexed, |b, item| {
            let (idx, row) = *item;
            b.push_bind(id)
                .push_bind(idx as i64)
                .push_bind(row.policy_idx)
                .push_bind(row.domain.clone())
                .push_bind(row.result.clone())
                .push_bind(row.count)
                .push_bind(row.sending_ip.clone())
                .push_bind(row.receiving_mx.clone())
                .push_bind(row.receiving_helo.clone())
                .push_bind(row.receiving_ip.clone())
                .push_bind(row.additional_info.clone())
                .push_bind(row.reason_code.clone());
        });
        let domain = p.domains.clone();
        let indexed: Vec<_> = p.records.iter().enumerate().collect();
        insert_batched!($tx, sql::INSERT_RECORDS, indexed, |b, item| {
            let (idx, row) = *item;
            b.push_bind(id)
                .push_bind(idx as i64)
                .push_bind(domain.clone())
                .push_bind(row.source_ip.clone())
                .push_bind(row.count)
                .push_bind(row.disposition)
                .push_bind(row.dkim.clone())
                .push_bind(row.spf.clone())
                .push_bind(row.header_from.clone())
                .push_bind(row.envelope_from.clone())
                .push_bind(row.envelope_to.clone());
        });
        insert_batched!($tx, sql::INSERT_SELECTORS, p.selectors, |b, row| {
            b.push_bind(id)
                .push_bind(row.domain.clone())
                .push_bind(row.selector.clone())
                .push_bind(row.messages);
        });
        let rollups: &mut Rollups = $rollups;
        rollups.add(&Contribution::of(p, $received_at), 1);
    }};
}

/// Stores one report (new, or a duplicate adding `$again` to its count) and evaluates to its
/// [`Inserted`].
macro_rules! insert_report {
    ($tx:ident, $p:expr, $report:expr, $received_at:expr, $again:expr, $rollups:expr) => {{
        let p: &Prepared = $p;
        let report: &NewReport<'_> = $report;
        let id: Option<i64> = sqlx::query_scalar(sql::INSERT_REPORT)
            .bind(p.kind.as_str())
            .bind(&p.organization)
            .bind(&p.report_id)
            .bind(p.begin)
            .bind(p.end)
            .bind(&p.domains)
            .bind(&p.source)
            .bind($received_at)
            .bind(p.success)
            .bind(p.failure)
            .bind(report.normalized)
            .bind(report.raw)
            .fetch_optional(&mut *$tx)
            .await
            .map_err(db_error)?;
        match id {
            Some(id) => {
                insert_children!($tx, id, p, $received_at, $rollups);
                Inserted::New(id)
            }
            None => {
                let id: i64 = sqlx::query_scalar(sql::REPORT_AGAIN)
                    .bind(p.kind.as_str())
                    .bind(&p.organization)
                    .bind(&p.report_id)
                    .bind(p.begin)
                    .bind(p.end)
                    .bind($again)
                    .fetch_one(&mut *$tx)
                    .await
                    .map_err(db_error)?;
                Inserted::Duplicate(id)
            }
        }
    }};
}

/// Inserts an input's errors.
macro_rules! insert_errors {
    ($tx:ident, $input:expr, $errors:expr, $received_at:expr) => {{
        let input: i64 = $input;
        let received_at: i64 = $received_at;
        insert_batched!($tx, sql::INSERT_ERRORS, $errors, |b, e| {
            b.push_bind(input)
                .push_bind(cut(e.source, MAX_TEXT_BYTES).to_owned())
                .push_bind(cut(e.code, 64).to_owned())
                .push_bind(cut(e.message, MAX_TEXT_BYTES).to_owned())
                .push_bind(received_at);
        });
    }};
}

impl ReportDb {
    /// Stores an input as received, every report found in it and every error, in one
    /// transaction: when this returns `Ok` all of it is committed, and on an error none of it
    /// is. An input whose bytes were stored before counts one more arrival and keeps its
    /// stored errors; a report stored before counts one more duplicate. A transaction that
    /// collides with a concurrent one is tried again, up to three times in all.
    pub async fn store(
        &self,
        input: &NewInput<'_>,
        reports: &[NewReport<'_>],
        errors: &[NewError<'_>],
    ) -> Result<Stored, ReportDbError> {
        let prepared = reports.iter().map(prepare).collect::<Result<Vec<_>, _>>()?;
        let sha256 = hex(&input.sha256);
        let size = super::signed("input size", input.size)?;
        let mut attempt = 1;
        loop {
            match self
                .store_once(input, reports, errors, &prepared, &sha256, size)
                .await
            {
                Err(ReportDbError::Conflict(_)) if attempt < STORE_ATTEMPTS => attempt += 1,
                other => return other,
            }
        }
    }

    /// One attempt of [`ReportDb::store`].
    async fn store_once(
        &self,
        input: &NewInput<'_>,
        reports: &[NewReport<'_>],
        errors: &[NewError<'_>],
        prepared: &[Prepared],
        sha256: &str,
        size: i64,
    ) -> Result<Stored, ReportDbError> {
        bounded(write_limit(prepared, errors.len()), async {
            with_pool!(self, |pool| {
                let mut tx = pool
                    .begin_with(self.backend.begin_write())
                    .await
                    .map_err(db_error)?;
                let inserted: Option<i64> = sqlx::query_scalar(sql::INSERT_INPUT)
                    .bind(sha256)
                    .bind(cut(input.source, MAX_TEXT_BYTES))
                    .bind(input.received_at)
                    .bind(size)
                    .bind(input.gzip)
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(db_error)?;
                let (input_id, input_new) = match inserted {
                    Some(id) => (id, true),
                    None => {
                        let id: i64 = sqlx::query_scalar(sql::INPUT_AGAIN)
                            .bind(sha256)
                            .fetch_one(&mut *tx)
                            .await
                            .map_err(db_error)?;
                        (id, false)
                    }
                };
                let mut out = vec![Inserted::New(0); reports.len()];
                let mut rollups = Rollups::default();
                for i in lock_order(prepared) {
                    out[i] = insert_report!(
                        tx,
                        &prepared[i],
                        &reports[i],
                        input.received_at,
                        1i64,
                        &mut rollups
                    );
                }
                apply_rollups!(tx, &rollups);
                if input_new {
                    insert_errors!(tx, input_id, errors, input.received_at);
                }
                tx.commit().await.map_err(db_error)?;
                Ok(Stored {
                    input: input_id,
                    input_new,
                    reports: out,
                })
            })
        })
        .await
    }

    /// The ids of every stored input, oldest first (for reparsing).
    pub async fn input_ids(&self) -> Result<Vec<i64>, ReportDbError> {
        bounded(OP_TIMEOUT, async {
            with_pool!(self, |pool| sqlx::query_scalar(sql::INPUT_IDS)
                .fetch_all(pool)
                .await
                .map_err(db_error))
        })
        .await
    }

    /// One stored input.
    pub async fn input(&self, id: i64) -> Result<Option<StoredInput>, ReportDbError> {
        bounded(OP_TIMEOUT, async {
            let row: Option<(i64, String, i64, Vec<u8>)> =
                with_pool!(self, |pool| sqlx::query_as(sql::INPUT)
                    .bind(id)
                    .fetch_optional(pool)
                    .await
                    .map_err(db_error)?);
            Ok(row.map(|(id, source, received_at, gzip)| StoredInput {
                id,
                source,
                received_at,
                gzip,
            }))
        })
        .await
    }

    /// The ids of every stored report, oldest first (for reparsing).
    pub async fn report_ids(&self) -> Result<Vec<i64>, ReportDbError> {
        bounded(OP_TIMEOUT, async {
            with_pool!(self, |pool| sqlx::query_scalar(sql::REPORT_IDS)
                .fetch_all(pool)
                .await
                .map_err(db_error))
        })
        .await
    }

    /// A stored input read again: reports not stored yet are stored (reports already stored
    /// are left alone, not counted as duplicates), and the input's errors are replaced by
    /// `errors`, in one transaction. Returns what happened to each report and how many errors
    /// the input had before.
    pub async fn restore_input(
        &self,
        input: &StoredInput,
        reports: &[NewReport<'_>],
        errors: &[NewError<'_>],
    ) -> Result<(Vec<Inserted>, u64), ReportDbError> {
        let prepared = reports.iter().map(prepare).collect::<Result<Vec<_>, _>>()?;
        bounded(write_limit(&prepared, errors.len()), async {
            with_pool!(self, |pool| {
                let mut tx = pool
                    .begin_with(self.backend.begin_write())
                    .await
                    .map_err(db_error)?;
                let mut out = vec![Inserted::New(0); reports.len()];
                let mut rollups = Rollups::default();
                for i in lock_order(&prepared) {
                    out[i] = insert_report!(
                        tx,
                        &prepared[i],
                        &reports[i],
                        input.received_at,
                        0i64,
                        &mut rollups
                    );
                }
                apply_rollups!(tx, &rollups);
                let before: i64 = sqlx::query_scalar(sql::COUNT_ERRORS)
                    .bind(input.id)
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(db_error)?;
                sqlx::query(sql::DELETE_ERRORS)
                    .bind(input.id)
                    .execute(&mut *tx)
                    .await
                    .map_err(db_error)?;
                insert_errors!(tx, input.id, errors, input.received_at);
                tx.commit().await.map_err(db_error)?;
                Ok((out, super::unsigned("error count", before)?))
            })
        })
        .await
    }

    /// Rewrites stored report `id` from `report` (read again from its document) when its
    /// normalized JSON changed: its identity, totals, child rows and rollups, in one
    /// transaction. Returns whether anything changed; `false` also when `id` does not exist.
    pub async fn replace_report(
        &self,
        id: i64,
        report: &NewReport<'_>,
    ) -> Result<bool, ReportDbError> {
        let new = prepare(report)?;
        bounded(write_limit(std::slice::from_ref(&new), 0), async {
            with_pool!(self, |pool| {
                let mut tx = pool
                    .begin_with(self.backend.begin_write())
                    .await
                    .map_err(db_error)?;
                let old: Option<String> = sqlx::query_scalar(sql::OLD_NORMALIZED)
                    .bind(id)
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(db_error)?;
                let Some(normalized) = old else {
                    return Ok(false);
                };
                if normalized == report.normalized {
                    return Ok(false);
                }
                // What the stored version added to the rollups is taken away, read back from
                // its rows (the same rows, so the same keys, days and shares as when stored).
                let stored = read_stored!(tx, id, id);
                let Some(old) = stored.get(&id) else {
                    return Ok(false);
                };
                let mut rollups = Rollups::default();
                rollups.add(&old.contribution(), -1);
                let received_at = old.received_at();
                for statement in [
                    sql::DELETE_DOMAINS,
                    sql::DELETE_POLICIES,
                    sql::DELETE_FAILURES,
                    sql::DELETE_RECORDS,
                    sql::DELETE_SELECTORS,
                ] {
                    sqlx::query(statement)
                        .bind(id)
                        .execute(&mut *tx)
                        .await
                        .map_err(db_error)?;
                }
                sqlx::query(sql::UPDATE_REPORT)
                    .bind(id)
                    .bind(new.kind.as_str())
                    .bind(&new.organization)
                    .bind(&new.report_id)
                    .bind(new.begin)
                    .bind(new.end)
                    .bind(&new.domains)
                    .bind(new.success)
                    .bind(new.failure)
                    .bind(report.normalized)
                    .bind(report.raw)
                    .execute(&mut *tx)
                    .await
                    .map_err(db_error)?;
                insert_children!(tx, id, &new, received_at, &mut rollups);
                apply_rollups!(tx, &rollups);
                tx.commit().await.map_err(db_error)?;
                Ok(true)
            })
        })
        .await
    }
}

/// How often [`ReportDb::store`] tries a transaction that collided with a concurrent one
/// (two inputs holding the same reports or days, stored at once, can deadlock on PostgreSQL).
const STORE_ATTEMPTS: u32 = 3;

/// The order reports are written in: by identity, so that concurrent transactions holding
/// some of the same reports lock them in the same order (no deadlock on PostgreSQL).
fn lock_order(prepared: &[Prepared]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..prepared.len()).collect();
    order.sort_by(|&a, &b| {
        let (a, b) = (&prepared[a], &prepared[b]);
        (a.kind, &a.organization, &a.report_id, a.begin, a.end).cmp(&(
            b.kind,
            &b.organization,
            &b.report_id,
            b.begin,
            b.end,
        ))
    });
    order
}

/// How long a write may take: [`OP_TIMEOUT`], plus a second per [`BATCH_ROWS`] rows (child
/// rows, and rollup rows over up to 32 days).
fn write_limit(prepared: &[Prepared], errors: usize) -> Duration {
    let rows: usize = prepared
        .iter()
        .map(|p| {
            let children = p.policies.len() + p.failures.len() + p.records.len();
            let breakdowns = (children * 32).min(3 * MAX_ROLLUP_ROWS);
            2 + p.per_domain.len() * 32 + children + breakdowns
        })
        .sum::<usize>()
        + errors;
    OP_TIMEOUT + Duration::from_secs((rows / BATCH_ROWS) as u64)
}

fn hex(bytes: &[u8]) -> String {
    mtasts_proto::hex::encode(bytes)
}
