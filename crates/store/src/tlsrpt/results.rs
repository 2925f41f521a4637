//! Collected results: adding a batch, the days waiting for their reports, and a day's groups
//! (what each report is built from).

use super::{DayGroup, ResultRow, TlsrptDb, TlsrptDbError};

impl ResultRow {
    /// Whether the database accepts this row: its day is the start of a UTC day and every text
    /// is within its cap. A collector drops (and counts) rows that fail this rather than
    /// losing the whole batch.
    pub fn check(&self) -> Result<(), TlsrptDbError> {
        Err(TlsrptDbError::Unavailable("not implemented yet".into()))
    }
}

impl TlsrptDb {
    /// Adds a batch of counted results in ONE transaction (upserts: +successes, +failures,
    /// +count per detail). `Ok` means committed.
    pub async fn record(&self, batch: &[ResultRow]) -> Result<(), TlsrptDbError> {
        let _ = batch;
        Err(TlsrptDbError::Unavailable("not implemented yet".into()))
    }

    /// UTC days (start, Unix seconds, ascending) that have results and whose reports are not
    /// all built yet ([`TlsrptDb::mark_day_done`]), ended at or before `before`.
    pub async fn pending_days(&self, before: i64) -> Result<Vec<i64>, TlsrptDbError> {
        let _ = before;
        Err(TlsrptDbError::Unavailable("not implemented yet".into()))
    }

    /// A page of the (domain, record) groups with results on `day`, each with its aggregated
    /// policies, in (domain, record) byte order, starting after `after`, at most `limit` (capped
    /// at [`super::MAX_PAGE`]). An empty page is the end.
    pub async fn day_groups(
        &self,
        day: i64,
        after: Option<(&str, &str)>,
        limit: usize,
    ) -> Result<Vec<DayGroup>, TlsrptDbError> {
        let _ = (day, after, limit);
        Err(TlsrptDbError::Unavailable("not implemented yet".into()))
    }

    /// Notes that every report of `day` is built: the day is no longer pending.
    pub async fn mark_day_done(&self, day: i64) -> Result<(), TlsrptDbError> {
        let _ = day;
        Err(TlsrptDbError::Unavailable("not implemented yet".into()))
    }
}
