//! The breakdown rollups of the reports stored before they existed: the migration that made
//! the tables left one marker row (`report_rollup_backfill`: the highest report id then, and
//! how far the backfill got), and [`ReportDb::open`] finishes the work before it returns, in
//! batches of whole reports, each its own transaction.
//!
//! The rows are read back and spread exactly as a report being stored is
//! ([`super::rollup`]), so a backfilled report is later taken away (a reparse) to the unit.
//! Reports stored after the migration add their own rollups; those ids are past the marker.
//! Every batch first claims the marker row (an `UPDATE`, which holds it until commit), so
//! several nodes opening one PostgreSQL database at once take turns instead of counting a
//! report twice, and one that is stopped half-way leaves the rest to the next open.

use std::time::Duration;

use super::rollup::Rollups;
use super::{
    BATCH_ROWS, OP_TIMEOUT, ReportDb, ReportDbError, bounded, error::db_error, sql, unsigned,
};

/// Reports looked at per batch, at most.
const BATCH_REPORTS: i64 = 500;
/// Child rows read per batch, about (a batch always takes at least one whole report).
const BATCH_CHILD_ROWS: i64 = 20_000;
/// How long a batch may wait for the marker row (another node's batch holding it).
const CLAIM_WAIT: Duration = Duration::from_secs(120);

impl ReportDb {
    /// Backfills the breakdown rollups of reports stored before them; returns how many
    /// reports it counted (0 once done).
    pub(super) async fn backfill_rollups(&self) -> Result<u64, ReportDbError> {
        let mut counted = 0;
        while let Some(n) = self.backfill_batch().await? {
            counted += n;
        }
        Ok(counted)
    }

    /// One batch: `None` when there is nothing (left) to backfill.
    async fn backfill_batch(&self) -> Result<Option<u64>, ReportDbError> {
        with_pool!(self, |pool| {
            let (mut tx, claim) = bounded(CLAIM_WAIT, async {
                let mut tx = pool
                    .begin_with(self.backend.begin_write())
                    .await
                    .map_err(db_error)?;
                let claim: Option<(i64, i64)> = sqlx::query_as(sql::BACKFILL_CLAIM)
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(db_error)?;
                Ok((tx, claim))
            })
            .await?;
            let Some((next, max)) = claim else {
                tx.commit().await.map_err(db_error)?;
                return Ok(None);
            };
            let batch: Vec<(i64, i64)> = bounded(OP_TIMEOUT, async {
                sqlx::query_as(sql::BACKFILL_BATCH)
                    .bind(next)
                    .bind(max)
                    .bind(BATCH_REPORTS)
                    .fetch_all(&mut *tx)
                    .await
                    .map_err(db_error)
            })
            .await?;
            if batch.is_empty() {
                bounded(OP_TIMEOUT, async {
                    sqlx::query(sql::BACKFILL_DONE)
                        .execute(&mut *tx)
                        .await
                        .map_err(db_error)?;
                    tx.commit().await.map_err(db_error)
                })
                .await?;
                return Ok(None);
            }
            // Whole reports up to about BATCH_CHILD_ROWS rows.
            let mut last = next;
            let mut rows = 0i64;
            let mut reports = 0u64;
            for (id, children) in batch {
                if reports > 0 && rows + children > BATCH_CHILD_ROWS {
                    break;
                }
                last = id;
                rows += children;
                reports += 1;
            }
            let read_limit = OP_TIMEOUT + per_batch(unsigned("rows", rows)?);
            let rollups = bounded(read_limit, async {
                let stored = read_stored!(tx, next + 1, last);
                let mut rollups = Rollups::default();
                for report in stored.values() {
                    rollups.add_breakdowns(&report.contribution(), 1);
                }
                Ok(rollups)
            })
            .await?;
            let written = rollups.tls.len() + rollups.dmarc.len() + rollups.policies.len();
            bounded(OP_TIMEOUT + per_batch(written as u64), async {
                apply_rollups!(tx, &rollups);
                sqlx::query(sql::BACKFILL_ADVANCE)
                    .bind(last)
                    .execute(&mut *tx)
                    .await
                    .map_err(db_error)?;
                tx.commit().await.map_err(db_error)
            })
            .await?;
            Ok(Some(reports))
        })
    }
}

/// A second per [`BATCH_ROWS`] rows.
fn per_batch(rows: u64) -> Duration {
    Duration::from_secs(rows / BATCH_ROWS as u64)
}
