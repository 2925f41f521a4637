//! Built reports and the outbox of their deliveries: storing a report once across a fleet,
//! leasing due deliveries, recording outcomes, and suppressing destinations that keep failing.

use super::{
    Delivery, DeliveryOutcome, Inserted, NewReport, StoredReport, TlsrptDb, TlsrptDbError,
};

impl TlsrptDb {
    /// Stores the built report of (day, domain, record) and its outbox entries (one per
    /// destination, due at `first_try`) in one transaction, unless one is already stored:
    /// [`Inserted::New`] for exactly one caller across a fleet.
    pub async fn insert_report(&self, report: &NewReport) -> Result<Inserted, TlsrptDbError> {
        let _ = report;
        Err(TlsrptDbError::Unavailable("not implemented yet".into()))
    }

    /// Leases up to `limit` due deliveries (pending, `next_try <= now`, no unexpired lease) to
    /// `node` until `now + lease_secs`, oldest due first, so two resolvers never send the same
    /// delivery at once. Suppression is the caller's to check ([`TlsrptDb::suppressed_until`]).
    pub async fn lease_due(
        &self,
        now: i64,
        node: &str,
        lease_secs: i64,
        limit: usize,
    ) -> Result<Vec<Delivery>, TlsrptDbError> {
        let _ = (now, node, lease_secs, limit);
        Err(TlsrptDbError::Unavailable("not implemented yet".into()))
    }

    /// Records how an attempt of delivery `id` ended at `now` and releases its lease. Also
    /// keeps the destination's count of reports given up in a row
    /// ([`TlsrptDb::gave_up_in_row`]): reset by a delivery, one more per give-up.
    pub async fn finish(
        &self,
        id: i64,
        outcome: &DeliveryOutcome,
        now: i64,
    ) -> Result<(), TlsrptDbError> {
        let _ = (id, outcome, now);
        Err(TlsrptDbError::Unavailable("not implemented yet".into()))
    }

    /// A stored report with its body and destinations.
    pub async fn report_body(&self, report: i64) -> Result<Option<StoredReport>, TlsrptDbError> {
        let _ = report;
        Err(TlsrptDbError::Unavailable("not implemented yet".into()))
    }

    /// Every stored report of `day`, sorted by (domain, record).
    pub async fn reports_for_day(&self, day: i64) -> Result<Vec<StoredReport>, TlsrptDbError> {
        let _ = day;
        Err(TlsrptDbError::Unavailable("not implemented yet".into()))
    }

    /// Until when `destination` is suppressed, if it is (the time may be past).
    pub async fn suppressed_until(&self, destination: &str) -> Result<Option<i64>, TlsrptDbError> {
        let _ = destination;
        Err(TlsrptDbError::Unavailable("not implemented yet".into()))
    }

    /// Suppresses `destination` until `until` (Unix seconds), saying why.
    pub async fn suppress(
        &self,
        destination: &str,
        until: i64,
        reason: &str,
    ) -> Result<(), TlsrptDbError> {
        let _ = (destination, until, reason);
        Err(TlsrptDbError::Unavailable("not implemented yet".into()))
    }

    /// How many reports in a row `destination` has been given up for (0 after a delivery).
    pub async fn gave_up_in_row(&self, destination: &str) -> Result<u32, TlsrptDbError> {
        let _ = destination;
        Err(TlsrptDbError::Unavailable("not implemented yet".into()))
    }

    /// Makes the pending deliveries of `day`'s reports due at `now` (`mtasts tlsrpt send`);
    /// returns how many.
    pub async fn reschedule_day(&self, day: i64, now: i64) -> Result<u64, TlsrptDbError> {
        let _ = (day, now);
        Err(TlsrptDbError::Unavailable("not implemented yet".into()))
    }
}
