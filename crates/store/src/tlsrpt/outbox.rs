//! Built reports and the outbox of their deliveries: storing a report once across a fleet,
//! leasing due deliveries, recording outcomes, and suppressing destinations that keep failing.

use std::collections::HashMap;

use super::{
    BATCH_ROWS, Delivery, DeliveryOutcome, DeliveryState, DestinationState, Inserted,
    MAX_DESTINATION_BYTES, MAX_DESTINATIONS, MAX_ERROR_BYTES, MAX_NAME_BYTES, MAX_PAGE,
    MAX_RECORD_BYTES, NewReport, OP_TIMEOUT, StoredReport, TlsrptDb, TlsrptDbError, bounded,
    capped, check_day, cut, error::db_error, hash, retrying, signed, sql, unsigned, write_limit,
};

/// A `tlsrpt_reports` row as read: id, day, domain, record, report id, file name, JSON size, gz.
type ReportRow = (i64, i64, String, String, String, String, i64, Vec<u8>);
/// A `tlsrpt_deliveries` row as read (see `sql::destination_columns`).
type DestinationRow = (
    i64,
    i64,
    String,
    String,
    i64,
    i64,
    i64,
    Option<i64>,
    Option<String>,
);

impl NewReport {
    /// Refuses a report the database does not take: a day that is not a day start, a text over
    /// its cap, no destination or more than [`MAX_DESTINATIONS`].
    fn check(&self) -> Result<(), TlsrptDbError> {
        check_day(self.day)?;
        capped("domain", &self.domain, crate::MAX_DOMAIN_BYTES)?;
        capped("record", &self.record, MAX_RECORD_BYTES)?;
        capped("report id", &self.report_id, MAX_NAME_BYTES)?;
        capped("file name", &self.file_name, MAX_NAME_BYTES)?;
        signed("JSON size", self.json_bytes)?;
        if self.destinations.is_empty() || self.destinations.len() > MAX_DESTINATIONS {
            return Err(TlsrptDbError::Invalid(format!(
                "a report needs 1 to {MAX_DESTINATIONS} destinations, not {}",
                self.destinations.len()
            )));
        }
        for destination in &self.destinations {
            capped("destination", destination, MAX_DESTINATION_BYTES)?;
        }
        Ok(())
    }
}

impl TlsrptDb {
    /// Stores the built report of (day, domain, record) and its outbox entries (one per
    /// distinct destination, due at `first_try`) in one transaction, unless a report of that
    /// (day, domain, record) is already stored: then nothing changes and the stored one's id
    /// is returned as [`Inserted::AlreadyBuilt`]. Across a fleet sharing one database exactly
    /// one caller gets [`Inserted::New`] (a unique key; a concurrent caller waits for the
    /// first one's transaction and then finds its report).
    pub async fn insert_report(&self, report: &NewReport) -> Result<Inserted, TlsrptDbError> {
        report.check()?;
        let mut destinations: Vec<&str> = report.destinations.iter().map(String::as_str).collect();
        destinations.sort_unstable();
        destinations.dedup();
        let record_hash = hash(&report.record);
        let json_bytes = signed("JSON size", report.json_bytes)?;
        let limit = write_limit(destinations.len() + report.gz.len() / (64 * 1024));
        retrying(|| {
            bounded(limit, async {
                with_pool!(self, |pool| {
                    let mut tx = pool
                        .begin_with(self.backend.begin_write())
                        .await
                        .map_err(db_error)?;
                    let id: Option<i64> = sqlx::query_scalar(sql::INSERT_REPORT)
                        .bind(report.day)
                        .bind(&report.domain)
                        .bind(&report.record)
                        .bind(&record_hash)
                        .bind(&report.report_id)
                        .bind(&report.file_name)
                        .bind(json_bytes)
                        .bind(&report.gz)
                        .fetch_optional(&mut *tx)
                        .await
                        .map_err(db_error)?;
                    let Some(id) = id else {
                        let id: i64 = sqlx::query_scalar(sql::REPORT_ID_OF)
                            .bind(report.day)
                            .bind(&report.domain)
                            .bind(&record_hash)
                            .fetch_one(&mut *tx)
                            .await
                            .map_err(db_error)?;
                        tx.rollback().await.map_err(db_error)?;
                        return Ok(Inserted::AlreadyBuilt(id));
                    };
                    for chunk in destinations.chunks(BATCH_ROWS) {
                        let mut builder = sqlx::QueryBuilder::new(sql::INSERT_DELIVERIES);
                        builder.push_values(chunk, |mut b, destination| {
                            b.push_bind(id)
                                .push_bind(destination.to_string())
                                .push_bind(report.first_try)
                                .push_bind(report.first_try)
                                .push_bind(report.give_up_at);
                        });
                        builder.build().execute(&mut *tx).await.map_err(db_error)?;
                    }
                    tx.commit().await.map_err(db_error)?;
                    Ok(Inserted::New(id))
                })
            })
        })
        .await
    }

    /// Leases up to `limit` (at most [`MAX_PAGE`]) due deliveries (pending, `next_try <= now`,
    /// no unexpired lease) to `node` until `now + lease_secs`, the longest due first, so two
    /// resolvers never send the same delivery at once: another node gets a delivery again
    /// only once [`TlsrptDb::finish`] released it or its lease expired (the node holding it
    /// stopped). Returned sorted by id. Suppression is the caller's to check
    /// ([`TlsrptDb::suppressed_until`]). `lease_secs` must exceed the time an attempt may
    /// take: a node finishing after its lease expired could release another node's lease.
    pub async fn lease_due(
        &self,
        now: i64,
        node: &str,
        lease_secs: i64,
        limit: usize,
    ) -> Result<Vec<Delivery>, TlsrptDbError> {
        capped("node name", node, MAX_NAME_BYTES)?;
        if lease_secs <= 0 {
            return Err(TlsrptDbError::Invalid(format!(
                "a lease of {lease_secs} s: it must be positive"
            )));
        }
        let until = now.saturating_add(lease_secs);
        let limit = limit.clamp(1, MAX_PAGE) as i64;
        let statement = match self.backend() {
            "sqlite" => sql::LEASE_SQLITE,
            _ => sql::LEASE_POSTGRES,
        };
        let rows: Vec<(i64, i64, String, i64, i64, i64, i64)> = retrying(|| {
            bounded(write_limit(limit as usize), async {
                with_pool!(self, |pool| {
                    let mut tx = pool
                        .begin_with(self.backend.begin_write())
                        .await
                        .map_err(db_error)?;
                    let rows = sqlx::query_as(statement)
                        .bind(node)
                        .bind(until)
                        .bind(now)
                        .bind(limit)
                        .fetch_all(&mut *tx)
                        .await
                        .map_err(db_error)?;
                    tx.commit().await.map_err(db_error)?;
                    Ok(rows)
                })
            })
        })
        .await?;
        let mut out = rows
            .into_iter()
            .map(
                |(id, report, destination, attempts, first_try, give_up_at, _next_try)| {
                    Ok(Delivery {
                        id,
                        report,
                        destination,
                        attempts: u32::try_from(unsigned("attempts", attempts)?)
                            .unwrap_or(u32::MAX),
                        first_try,
                        give_up_at,
                    })
                },
            )
            .collect::<Result<Vec<_>, TlsrptDbError>>()?;
        out.sort_by_key(|d| d.id);
        Ok(out)
    }

    /// Records how an attempt of delivery `id` ended at `now` and releases its lease; keeps
    /// the destination's count of reports given up in a row ([`TlsrptDb::gave_up_in_row`]):
    /// reset by a delivery, one more per give-up. A delivery that is no longer pending (or
    /// unknown) is left as it is: finishing is idempotent.
    pub async fn finish(
        &self,
        id: i64,
        outcome: &DeliveryOutcome,
        now: i64,
    ) -> Result<(), TlsrptDbError> {
        retrying(|| {
            bounded(OP_TIMEOUT, async {
                with_pool!(self, |pool| {
                    let mut tx = pool
                        .begin_with(self.backend.begin_write())
                        .await
                        .map_err(db_error)?;
                    let (destination, follow_up): (Option<String>, Option<&str>) = match outcome {
                        DeliveryOutcome::Delivered => (
                            sqlx::query_scalar(sql::DELIVERED)
                                .bind(id)
                                .bind(now)
                                .fetch_optional(&mut *tx)
                                .await
                                .map_err(db_error)?,
                            Some(sql::DESTINATION_DELIVERED),
                        ),
                        DeliveryOutcome::Retry { error, next_try } => (
                            sqlx::query_scalar(sql::RETRY)
                                .bind(id)
                                .bind(now)
                                .bind(cut(error, MAX_ERROR_BYTES))
                                .bind(*next_try)
                                .fetch_optional(&mut *tx)
                                .await
                                .map_err(db_error)?,
                            None,
                        ),
                        DeliveryOutcome::GaveUp { error } => (
                            sqlx::query_scalar(sql::GAVE_UP)
                                .bind(id)
                                .bind(now)
                                .bind(cut(error, MAX_ERROR_BYTES))
                                .fetch_optional(&mut *tx)
                                .await
                                .map_err(db_error)?,
                            Some(sql::DESTINATION_GAVE_UP),
                        ),
                    };
                    if let (Some(destination), Some(statement)) = (destination, follow_up) {
                        sqlx::query(statement)
                            .bind(destination)
                            .execute(&mut *tx)
                            .await
                            .map_err(db_error)?;
                    }
                    tx.commit().await.map_err(db_error)?;
                    Ok(())
                })
            })
        })
        .await
    }

    /// A stored report with its body and destinations (sorted by destination).
    pub async fn report_body(&self, report: i64) -> Result<Option<StoredReport>, TlsrptDbError> {
        let (reports, destinations) = bounded(
            OP_TIMEOUT,
            self.read_reports(sql::REPORT, sql::DESTINATIONS_OF, report),
        )
        .await?;
        Ok(assemble(reports, destinations)?.pop())
    }

    /// Every stored report of `day` with its destinations, sorted by (domain, record).
    pub async fn reports_for_day(&self, day: i64) -> Result<Vec<StoredReport>, TlsrptDbError> {
        check_day(day)?;
        let (reports, destinations) = bounded(
            OP_TIMEOUT * 4,
            self.read_reports(sql::REPORTS_OF_DAY, sql::DESTINATIONS_OF_DAY, day),
        )
        .await?;
        assemble(reports, destinations)
    }

    /// Until when `destination` is suppressed, if it ever was (the time may be past).
    pub async fn suppressed_until(&self, destination: &str) -> Result<Option<i64>, TlsrptDbError> {
        let until: Option<Option<i64>> = bounded(OP_TIMEOUT, async {
            with_pool!(self, |pool| sqlx::query_scalar(sql::SUPPRESSED_UNTIL)
                .bind(destination)
                .fetch_optional(pool)
                .await
                .map_err(db_error))
        })
        .await?;
        Ok(until.flatten())
    }

    /// Suppresses `destination` until `until` (Unix seconds), saying why (cut to
    /// [`MAX_ERROR_BYTES`]), and starts its count of reports given up in a row afresh, so
    /// that after `until` it is suppressed again only when it keeps failing as long again.
    pub async fn suppress(
        &self,
        destination: &str,
        until: i64,
        reason: &str,
    ) -> Result<(), TlsrptDbError> {
        capped("destination", destination, MAX_DESTINATION_BYTES)?;
        bounded(OP_TIMEOUT, async {
            with_pool!(self, |pool| sqlx::query(sql::SUPPRESS)
                .bind(destination)
                .bind(until)
                .bind(cut(reason, MAX_ERROR_BYTES))
                .execute(pool)
                .await
                .map(|_| ())
                .map_err(db_error))
        })
        .await
    }

    /// How many reports in a row `destination` has been given up for (0 after a delivery, a
    /// suppression, or when it never failed).
    pub async fn gave_up_in_row(&self, destination: &str) -> Result<u32, TlsrptDbError> {
        let count: Option<i64> = bounded(OP_TIMEOUT, async {
            with_pool!(self, |pool| sqlx::query_scalar(sql::GAVE_UP_IN_ROW)
                .bind(destination)
                .fetch_optional(pool)
                .await
                .map_err(db_error))
        })
        .await?;
        let count = unsigned("gave_up_in_row", count.unwrap_or(0))?;
        Ok(u32::try_from(count).unwrap_or(u32::MAX))
    }

    /// Makes every pending delivery of `day`'s reports due at `now` (`mtasts tlsrpt send`);
    /// returns how many. Delivered and given-up ones are left alone; a leased one is still
    /// sent by its node only.
    pub async fn reschedule_day(&self, day: i64, now: i64) -> Result<u64, TlsrptDbError> {
        check_day(day)?;
        retrying(|| {
            bounded(OP_TIMEOUT, async {
                with_pool!(self, |pool| sqlx::query(sql::RESCHEDULE_DAY)
                    .bind(day)
                    .bind(now)
                    .execute(pool)
                    .await
                    .map(|done| done.rows_affected())
                    .map_err(db_error))
            })
        })
        .await
    }
}

/// Stored reports from their rows and their destinations' rows, sorted.
fn assemble(
    reports: Vec<ReportRow>,
    destinations: Vec<DestinationRow>,
) -> Result<Vec<StoredReport>, TlsrptDbError> {
    let mut of_report: HashMap<i64, Vec<DestinationState>> = HashMap::new();
    for row in destinations {
        let (
            id,
            report,
            destination,
            state,
            attempts,
            next_try,
            give_up_at,
            last_attempt,
            last_error,
        ) = row;
        let state = DeliveryState::parse(&state).ok_or_else(|| {
            TlsrptDbError::Corrupt(format!("delivery {id} is in state {state:?}"))
        })?;
        of_report.entry(report).or_default().push(DestinationState {
            id,
            destination,
            state,
            attempts: u32::try_from(unsigned("attempts", attempts)?).unwrap_or(u32::MAX),
            next_try,
            give_up_at,
            last_attempt,
            last_error,
        });
    }
    let mut out = reports
        .into_iter()
        .map(
            |(id, day, domain, record, report_id, file_name, json_bytes, gz)| {
                let mut destinations = of_report.remove(&id).unwrap_or_default();
                destinations.sort_by(|a, b| a.destination.cmp(&b.destination));
                Ok(StoredReport {
                    id,
                    day,
                    domain,
                    record,
                    report_id,
                    file_name,
                    json_bytes: unsigned("json_bytes", json_bytes)?,
                    gz,
                    destinations,
                })
            },
        )
        .collect::<Result<Vec<_>, TlsrptDbError>>()?;
    out.sort_by(|a, b| (&a.domain, &a.record).cmp(&(&b.domain, &b.record)));
    Ok(out)
}

impl TlsrptDb {
    /// The rows that `reports` and `destinations` (each binding `key`) select, read in one
    /// snapshot so that they agree.
    async fn read_reports(
        &self,
        reports: &'static str,
        destinations: &'static str,
        key: i64,
    ) -> Result<(Vec<ReportRow>, Vec<DestinationRow>), TlsrptDbError> {
        with_pool!(self, |pool| {
            let mut tx = pool
                .begin_with(self.backend.begin_read())
                .await
                .map_err(db_error)?;
            let report_rows: Vec<ReportRow> = sqlx::query_as(reports)
                .bind(key)
                .fetch_all(&mut *tx)
                .await
                .map_err(db_error)?;
            let destination_rows: Vec<DestinationRow> = sqlx::query_as(destinations)
                .bind(key)
                .fetch_all(&mut *tx)
                .await
                .map_err(db_error)?;
            tx.commit().await.map_err(db_error)?;
            Ok((report_rows, destination_rows))
        })
    }
}
