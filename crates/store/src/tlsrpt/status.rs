//! What `mtasts tlsrpt status` shows: today's counters, the outbox, recent deliveries and
//! failures, suppressed destinations.

use super::{Status, TlsrptDb, TlsrptDbError};

impl TlsrptDb {
    /// Today's counters (the UTC day of `now`), the outbox counts, the `recent` latest
    /// attempts and failures, and the destinations suppressed at `now`.
    pub async fn status(&self, now: i64, recent: usize) -> Result<Status, TlsrptDbError> {
        let _ = (now, recent);
        Err(TlsrptDbError::Unavailable("not implemented yet".into()))
    }
}
