//! Retention: results, reports and deliveries of days before a cutoff are deleted.

use super::{TlsrptDb, TlsrptDbError};

impl TlsrptDb {
    /// Deletes the results, reports (with their deliveries) and day marks of days before
    /// `before_day`; returns how many groups and reports were deleted.
    pub async fn prune(&self, before_day: i64) -> Result<u64, TlsrptDbError> {
        let _ = before_day;
        Err(TlsrptDbError::Unavailable("not implemented yet".into()))
    }
}
