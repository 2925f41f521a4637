//! The outbox: deliveries that are due are leased from the store, attempted, and finished
//! there. Each destination of a report is tracked on its own (one that fails does not hold up
//! or repeat the others), the report stays stored until every destination was delivered or
//! given up (RFC 8460 §3 and C141: never deleted before it is sent), failures are retried with
//! exponential backoff from 5 minutes capped at 4 hours until `retry_for` after the first
//! attempt (§4.1 asks for at least a day), and a destination given up for `suppress_after`
//! reports in a row is suppressed for `suppress_for` (like mox's suppression list: a rua that
//! never accepts anything is not hammered daily).

use std::sync::Arc;

use futures::StreamExt;
use mtasts_store::tlsrpt::{Delivery, DeliveryOutcome, TlsrptDb, TlsrptDbError};

use super::deliver::{Attempt, Deliver, scheme};
use crate::metrics::Metrics;

/// First retry delay, seconds.
pub const BACKOFF_FIRST: i64 = 300;
/// Longest retry delay, seconds.
pub const BACKOFF_MAX: i64 = 4 * 3600;
/// Deliveries attempted at once.
pub const CONCURRENCY: usize = 8;
/// Deliveries leased per pass.
pub const BATCH: usize = 256;

/// Seconds to wait after the `attempts`-th failed attempt (1 = the first): 5 min, 10 min,
/// 20 min, … capped at 4 h.
pub fn backoff(attempts: u32) -> i64 {
    let shift = attempts.saturating_sub(1).min(16);
    (BACKOFF_FIRST << shift).min(BACKOFF_MAX)
}

/// The outcome to store for a failed attempt made at `now`: given up when permanent or past
/// `give_up_at`, else retried after [`backoff`] (the last retry falls on `give_up_at`).
pub fn failed_outcome(
    delivery: &Delivery,
    error: String,
    permanent: bool,
    now: i64,
) -> DeliveryOutcome {
    if permanent || now >= delivery.give_up_at {
        return DeliveryOutcome::GaveUp { error };
    }
    let next_try = (now + backoff(delivery.attempts + 1)).min(delivery.give_up_at);
    DeliveryOutcome::Retry { error, next_try }
}

/// How the outbox behaves.
#[derive(Clone, Debug)]
pub struct OutboxPolicy {
    /// This resolver's name in leases.
    pub node: String,
    /// Seconds a lease lasts (longer than one attempt can take).
    pub lease_secs: i64,
    /// Consecutive given-up reports before a destination is suppressed.
    pub suppress_after: u32,
    /// Seconds a destination stays suppressed.
    pub suppress_for: i64,
}

/// What one pass did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PassSummary {
    /// Deliveries attempted (or given up as suppressed).
    pub leased: usize,
    /// Accepted by their destination.
    pub delivered: usize,
    /// Failed, to be retried.
    pub retried: usize,
    /// Given up (including suppressed).
    pub gave_up: usize,
}

/// Leases and attempts every due delivery (in batches of [`BATCH`], [`CONCURRENCY`] at a
/// time) until none is due at `now`.
pub async fn deliver_due(
    db: &TlsrptDb,
    deliver: &Arc<dyn Deliver>,
    metrics: &Metrics,
    policy: &OutboxPolicy,
    now: impl Fn() -> i64,
) -> Result<PassSummary, TlsrptDbError> {
    let mut summary = PassSummary::default();
    loop {
        let due = db
            .lease_due(now(), &policy.node, policy.lease_secs, BATCH)
            .await?;
        if due.is_empty() {
            return Ok(summary);
        }
        let results: Vec<Result<&'static str, TlsrptDbError>> = futures::stream::iter(due)
            .map(|d| attempt_one(db, deliver, metrics, policy, d, now()))
            .buffer_unordered(CONCURRENCY)
            .collect()
            .await;
        for result in results {
            summary.leased += 1;
            match result? {
                "delivered" => summary.delivered += 1,
                "retry" => summary.retried += 1,
                _ => summary.gave_up += 1,
            }
        }
    }
}

/// One delivery: suppressed → given up; else attempted and finished. Returns the metric
/// outcome.
async fn attempt_one(
    db: &TlsrptDb,
    deliver: &Arc<dyn Deliver>,
    metrics: &Metrics,
    policy: &OutboxPolicy,
    delivery: Delivery,
    now: i64,
) -> Result<&'static str, TlsrptDbError> {
    let scheme = scheme(&delivery.destination);
    if let Some(until) = db.suppressed_until(&delivery.destination).await?
        && until > now
    {
        let error = format!("destination suppressed until {until} after repeated failures");
        db.finish(delivery.id, &DeliveryOutcome::GaveUp { error }, now)
            .await?;
        metrics.tlsrpt_delivery(scheme, "suppressed");
        return Ok("suppressed");
    }
    let Some(report) = db.report_body(delivery.report).await? else {
        let error = "the report is no longer stored".to_string();
        db.finish(delivery.id, &DeliveryOutcome::GaveUp { error }, now)
            .await?;
        metrics.tlsrpt_delivery(scheme, "gave_up");
        return Ok("gave_up");
    };
    let attempt = deliver.deliver(&delivery.destination, &report, now).await;
    let outcome = match attempt {
        Attempt::Delivered(note) => {
            tracing::info!(
                report = %report.report_id,
                destination = %delivery.destination,
                "TLS report delivered: {note}"
            );
            DeliveryOutcome::Delivered
        }
        Attempt::Failed { error, permanent } => {
            tracing::warn!(
                report = %report.report_id,
                destination = %delivery.destination,
                attempt = delivery.attempts + 1,
                permanent,
                "TLS report delivery failed: {error}"
            );
            failed_outcome(&delivery, error, permanent, now)
        }
    };
    db.finish(delivery.id, &outcome, now).await?;
    let label = match &outcome {
        DeliveryOutcome::Delivered => "delivered",
        DeliveryOutcome::Retry { .. } => "retry",
        DeliveryOutcome::GaveUp { error } => {
            let in_row = db.gave_up_in_row(&delivery.destination).await?;
            if in_row >= policy.suppress_after {
                let until = now + policy.suppress_for;
                tracing::warn!(
                    destination = %delivery.destination,
                    "suppressing a TLS report destination until {until}: given up {in_row} times in a row"
                );
                db.suppress(&delivery.destination, until, error).await?;
            }
            "gave_up"
        }
    };
    metrics.tlsrpt_delivery(scheme, label);
    Ok(label)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn delivery(attempts: u32, give_up_at: i64) -> Delivery {
        Delivery {
            id: 1,
            report: 1,
            destination: "https://r.example/".into(),
            attempts,
            first_try: 0,
            give_up_at,
        }
    }

    #[test]
    fn backoff_doubles_from_five_minutes_to_four_hours() {
        assert_eq!(backoff(1), 300);
        assert_eq!(backoff(2), 600);
        assert_eq!(backoff(3), 1200);
        assert_eq!(backoff(6), 9600);
        assert_eq!(backoff(7), BACKOFF_MAX);
        assert_eq!(backoff(1000), BACKOFF_MAX);
        assert_eq!(backoff(0), 300);
    }

    #[test]
    fn failures_retry_until_give_up_then_stop() {
        let d = delivery(0, 100_000);
        assert_eq!(
            failed_outcome(&d, "x".into(), false, 1000),
            DeliveryOutcome::Retry {
                error: "x".into(),
                next_try: 1300
            }
        );
        // The last retry is at give_up_at, not after it.
        let d = delivery(9, 100_000);
        assert_eq!(
            failed_outcome(&d, "x".into(), false, 99_000),
            DeliveryOutcome::Retry {
                error: "x".into(),
                next_try: 100_000
            }
        );
        assert!(matches!(
            failed_outcome(&d, "x".into(), false, 100_000),
            DeliveryOutcome::GaveUp { .. }
        ));
        assert!(matches!(
            failed_outcome(&delivery(0, 100_000), "x".into(), true, 0),
            DeliveryOutcome::GaveUp { .. }
        ));
    }
}
