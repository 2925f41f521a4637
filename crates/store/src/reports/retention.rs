//! Retention: raw reports (with their rows) and inputs older than a cutoff are deleted; the
//! rollups (`report_daily` and the breakdown rollups) are kept, so charts, totals and
//! breakdowns over older days stay whole.

use super::{OP_TIMEOUT, ReportDb, ReportDbError, bounded, error::db_error, unsigned};

/// Rows deleted per statement, so one pass never holds a long write lock.
pub const RETENTION_BATCH: i64 = 1000;

/// What [`ReportDb::delete_older_than`] deleted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Purged {
    /// Reports (with their policies, failures, records and per-domain counts).
    pub reports: u64,
    /// Inputs (with their errors).
    pub inputs: u64,
}

const DELETE_REPORTS: &str = "DELETE FROM report_reports WHERE id IN \
     (SELECT id FROM report_reports WHERE end_at < $1 ORDER BY id LIMIT $2)";
// An input arrives after the reports in it end (senders report a period once it is over), so
// an input received before the cutoff holds only reports that end before it: none of its
// reports is kept any more.
const DELETE_INPUTS: &str = "DELETE FROM report_inputs WHERE id IN \
     (SELECT id FROM report_inputs WHERE received_at < $1 ORDER BY id LIMIT $2)";

impl ReportDb {
    /// Deletes the reports whose range ended before `cutoff` (Unix seconds) with their rows,
    /// and the inputs received before it with their errors, [`RETENTION_BATCH`] rows per
    /// statement (each its own transaction: an interrupted purge leaves whole reports and
    /// is finished by the next). The rollups are not touched.
    pub async fn delete_older_than(&self, cutoff: i64) -> Result<Purged, ReportDbError> {
        let mut purged = Purged::default();
        for (statement, counter) in [
            (DELETE_REPORTS, &mut purged.reports),
            (DELETE_INPUTS, &mut purged.inputs),
        ] {
            loop {
                let deleted = bounded(OP_TIMEOUT, async {
                    let done = with_pool!(self, |pool| sqlx::query(statement)
                        .bind(cutoff)
                        .bind(RETENTION_BATCH)
                        .execute(pool)
                        .await
                        .map_err(db_error)?
                        .rows_affected());
                    Ok(done)
                })
                .await?;
                *counter += deleted;
                if deleted < unsigned("batch", RETENTION_BATCH)? {
                    break;
                }
            }
        }
        Ok(purged)
    }
}
