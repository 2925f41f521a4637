//! Retention: the results, reports (with their deliveries) and day marks of days before a
//! cutoff are deleted, in batches so that no statement holds a long write lock.

use super::{OP_TIMEOUT, TlsrptDb, TlsrptDbError, bounded, check_day, error::db_error, sql};

/// Groups or reports deleted per statement.
pub const PRUNE_BATCH: i64 = 1000;

impl TlsrptDb {
    /// Deletes the results and the reports (with their deliveries) of days before
    /// `before_day`, [`PRUNE_BATCH`] per statement (each its own transaction: an interrupted
    /// prune leaves whole groups and reports and is finished by the next), then the day marks
    /// before it and the destinations with nothing to remember (not failing, not suppressed
    /// past `before_day`). A report with a delivery still pending is kept until it is
    /// delivered or given up. Returns how many groups and reports were deleted.
    pub async fn prune(&self, before_day: i64) -> Result<u64, TlsrptDbError> {
        check_day(before_day)?;
        let mut deleted = 0;
        for statement in [sql::PRUNE_GROUPS, sql::PRUNE_REPORTS] {
            loop {
                let done = bounded(OP_TIMEOUT, async {
                    with_pool!(self, |pool| sqlx::query(statement)
                        .bind(before_day)
                        .bind(PRUNE_BATCH)
                        .execute(pool)
                        .await
                        .map(|done| done.rows_affected())
                        .map_err(db_error))
                })
                .await?;
                deleted += done;
                if done < PRUNE_BATCH as u64 {
                    break;
                }
            }
        }
        for statement in [sql::PRUNE_DAYS, sql::PRUNE_DESTINATIONS] {
            bounded(OP_TIMEOUT, async {
                with_pool!(self, |pool| sqlx::query(statement)
                    .bind(before_day)
                    .execute(pool)
                    .await
                    .map(|_| ())
                    .map_err(db_error))
            })
            .await?;
        }
        Ok(deleted)
    }
}
