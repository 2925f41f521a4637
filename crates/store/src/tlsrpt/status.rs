//! What `mtasts tlsrpt status` shows: today's counters, the outbox, recent deliveries and
//! failures, suppressed destinations.

use super::{
    DAY, DeliveryEvent, DeliveryState, OP_TIMEOUT, Status, Suppressed, TlsrptDb, TlsrptDbError,
    bounded, error::db_error, sql, unsigned,
};

/// The most attempts or failures [`TlsrptDb::status`] lists.
pub const MAX_RECENT: usize = 1000;

/// A delivery event as read: id, day, domain, destination, state, attempts, last attempt, error.
type EventRow = (
    i64,
    i64,
    String,
    String,
    String,
    i64,
    Option<i64>,
    Option<String>,
);

impl TlsrptDb {
    /// Today's counters (the UTC day of `now`), the outbox counts, the `recent` (at most
    /// [`MAX_RECENT`]) latest attempts and failures, and the destinations suppressed at `now`.
    /// Read in one snapshot.
    pub async fn status(&self, now: i64, recent: usize) -> Result<Status, TlsrptDbError> {
        let today = now - now.rem_euclid(DAY);
        let recent = recent.min(MAX_RECENT) as i64;
        bounded(OP_TIMEOUT * 2, async {
            with_pool!(self, |pool| {
                let mut tx = pool
                    .begin_with(self.backend.begin_read())
                    .await
                    .map_err(db_error)?;
                let (successes, failures): (i64, i64) = sqlx::query_as(sql::TODAY_COUNTS)
                    .bind(today)
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(db_error)?;
                let groups: i64 = sqlx::query_scalar(sql::TODAY_GROUPS)
                    .bind(today)
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(db_error)?;
                let pending_days: i64 = sqlx::query_scalar(sql::PENDING_DAY_COUNT)
                    .bind(today - DAY)
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(db_error)?;
                let outbox: Vec<(String, i64, i64, i64)> = sqlx::query_as(sql::OUTBOX)
                    .bind(now)
                    .fetch_all(&mut *tx)
                    .await
                    .map_err(db_error)?;
                let recent_rows: Vec<EventRow> = sqlx::query_as(sql::RECENT)
                    .bind(recent)
                    .fetch_all(&mut *tx)
                    .await
                    .map_err(db_error)?;
                let failure_rows: Vec<EventRow> = sqlx::query_as(sql::RECENT_FAILURES)
                    .bind(recent)
                    .fetch_all(&mut *tx)
                    .await
                    .map_err(db_error)?;
                let suppressed: Vec<(String, i64, String)> = sqlx::query_as(sql::SUPPRESSED)
                    .bind(now)
                    .fetch_all(&mut *tx)
                    .await
                    .map_err(db_error)?;
                tx.commit().await.map_err(db_error)?;
                let mut status = Status {
                    today,
                    today_successes: unsigned("successes", successes)?,
                    today_failures: unsigned("failures", failures)?,
                    today_groups: unsigned("groups", groups)?,
                    pending_days: unsigned("pending days", pending_days)?,
                    recent: events(recent_rows)?,
                    failures: events(failure_rows)?,
                    ..Status::default()
                };
                for (state, count, due, leased) in outbox {
                    let count = unsigned("deliveries", count)?;
                    match DeliveryState::parse(&state) {
                        Some(DeliveryState::Pending) => {
                            status.outbox_pending = count;
                            status.outbox_due = unsigned("due deliveries", due)?;
                            status.outbox_leased = unsigned("leased deliveries", leased)?;
                        }
                        Some(DeliveryState::Delivered) => status.delivered = count,
                        Some(DeliveryState::GaveUp) => status.gave_up = count,
                        None => {
                            return Err(TlsrptDbError::Corrupt(format!(
                                "deliveries in state {state:?}"
                            )));
                        }
                    }
                }
                status.suppressed = suppressed
                    .into_iter()
                    .map(|(destination, until, reason)| Suppressed {
                        destination,
                        until,
                        reason,
                    })
                    .collect();
                status
                    .suppressed
                    .sort_by(|a, b| a.destination.cmp(&b.destination));
                Ok(status)
            })
        })
        .await
    }
}

fn events(rows: Vec<EventRow>) -> Result<Vec<DeliveryEvent>, TlsrptDbError> {
    rows.into_iter()
        .map(
            |(id, day, domain, destination, state, attempts, last_attempt, last_error)| {
                Ok(DeliveryEvent {
                    id,
                    day,
                    domain,
                    destination,
                    state: DeliveryState::parse(&state).ok_or_else(|| {
                        TlsrptDbError::Corrupt(format!("delivery {id} is in state {state:?}"))
                    })?,
                    attempts: u32::try_from(unsigned("attempts", attempts)?).unwrap_or(u32::MAX),
                    last_attempt,
                    last_error,
                })
            },
        )
        .collect()
}
