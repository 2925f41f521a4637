//! Arrivals: how each input came in over the network — the SMTP intake's client, envelope,
//! TLS and DKIM results, and the reports found — for the administrator's view of received
//! mail and for the mail that held no report ([`ReportDb::mail_without_reports`]).
//!
//! An arrival is written right after its input ([`ReportDb::store`]) and before the sender is
//! told it was accepted; a crash between the two keeps the input and its reports (the sender
//! retries, the input counts as arrived again) and only loses this row of metadata.

use super::types::{ErrorRow, Inserted};
use super::{
    MAX_TEXT_BYTES, OP_TIMEOUT, ReportDb, ReportDbError, bounded, cut, error::db_error,
    read::MAX_LIST,
};

/// The most recipients kept per arrival (the listener caps them far lower).
pub const MAX_RECIPIENTS: usize = 100;

const INSERT_ARRIVAL: &str = "INSERT INTO report_arrivals (input, channel, peer_ip, helo, \
     mail_from, recipients, tls_version, tls_cipher, dkim, report_count, received_at) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING id";
const INSERT_ARRIVAL_REPORT: &str = "INSERT INTO report_arrival_reports (arrival, report) \
     VALUES ($1, $2) ON CONFLICT DO NOTHING";
macro_rules! arrival_columns {
    () => {
        "SELECT a.id, a.input, a.channel, a.peer_ip, a.helo, a.mail_from, a.recipients, \
         a.tls_version, a.tls_cipher, a.dkim, a.report_count, a.received_at FROM report_arrivals a "
    };
}
const OF_INPUT: &str = concat!(arrival_columns!(), "WHERE a.input = $1 ORDER BY a.id");
const OF_REPORT: &str = concat!(
    arrival_columns!(),
    "JOIN report_arrival_reports l ON l.arrival = a.id WHERE l.report = $1 ORDER BY a.id"
);
/// Keyset paging, newest first: `$1`/`$2` are the (received_at, id) the page continues after.
const WITHOUT_REPORTS: &str = concat!(
    arrival_columns!(),
    "WHERE a.report_count = 0 AND (a.received_at < $1 OR (a.received_at = $1 AND a.id < $2)) \
     ORDER BY a.received_at DESC, a.id DESC LIMIT $3"
);
const ARRIVAL_REPORTS: &str =
    "SELECT report FROM report_arrival_reports WHERE arrival = $1 ORDER BY report";
const INPUT_ERRORS: &str = "SELECT id, source, code, message, received_at FROM report_errors \
     WHERE input = $1 ORDER BY id";

/// One arrival to record.
#[derive(Clone, Copy, Debug)]
pub struct NewArrival<'a> {
    /// The input it carried ([`super::Stored::input`]).
    pub input: i64,
    /// `smtp` (or `https`).
    pub channel: &'a str,
    /// The client's IP address.
    pub peer_ip: &'a str,
    /// The EHLO/HELO name (`""` when none applies).
    pub helo: &'a str,
    /// The SMTP reverse path (`""` for the null sender or when none applies).
    pub mail_from: &'a str,
    /// The accepted recipients.
    pub recipients: &'a [String],
    /// The TLS version (`TLSv1.3`), when the message came over TLS.
    pub tls_version: Option<&'a str>,
    /// The TLS cipher suite, when the message came over TLS.
    pub tls_cipher: Option<&'a str>,
    /// The DKIM results, one object per signature (an empty array when unsigned).
    pub dkim: &'a serde_json::Value,
    /// The reports found in the input, each new or duplicate.
    pub reports: &'a [Inserted],
    /// Unix seconds.
    pub received_at: i64,
}

/// One recorded arrival.
#[derive(Clone, Debug, PartialEq)]
pub struct ArrivalRow {
    /// The database's id.
    pub id: i64,
    /// The input it carried.
    pub input: i64,
    /// `smtp` or `https`.
    pub channel: String,
    /// The client's IP address.
    pub peer_ip: String,
    /// The EHLO/HELO name.
    pub helo: String,
    /// The reverse path.
    pub mail_from: String,
    /// The accepted recipients.
    pub recipients: Vec<String>,
    /// The TLS version, when over TLS.
    pub tls_version: Option<String>,
    /// The TLS cipher suite, when over TLS.
    pub tls_cipher: Option<String>,
    /// The DKIM results as recorded.
    pub dkim: serde_json::Value,
    /// The ids of the reports it carried.
    pub reports: Vec<i64>,
    /// Unix seconds.
    pub received_at: i64,
}

/// A message that held no report, with why its pieces could not be read.
#[derive(Clone, Debug, PartialEq)]
pub struct MailWithoutReports {
    /// How it arrived.
    pub arrival: ArrivalRow,
    /// Its input's errors (none when it held nothing that looked like a report at all).
    pub errors: Vec<ErrorRow>,
}

type ArrivalTuple = (
    i64,
    i64,
    String,
    String,
    String,
    String,
    String,
    Option<String>,
    Option<String>,
    String,
    i64,
    i64,
);

impl ReportDb {
    /// Records one arrival with the reports it carried, in one transaction.
    pub async fn add_arrival(&self, arrival: &NewArrival<'_>) -> Result<i64, ReportDbError> {
        let recipients: Vec<&str> = arrival
            .recipients
            .iter()
            .take(MAX_RECIPIENTS)
            .map(|r| cut(r, MAX_TEXT_BYTES))
            .collect();
        let recipients = serde_json::to_string(&recipients)
            .map_err(|e| ReportDbError::Invalid(format!("recipients: {e}")))?;
        let dkim = arrival.dkim.to_string();
        if dkim.len() > 16 * MAX_TEXT_BYTES {
            return Err(ReportDbError::Invalid(format!(
                "DKIM results of {} bytes",
                dkim.len()
            )));
        }
        let mut reports: Vec<i64> = arrival
            .reports
            .iter()
            .map(|r| match r {
                Inserted::New(id) | Inserted::Duplicate(id) => *id,
            })
            .collect();
        reports.sort_unstable();
        reports.dedup();
        let count = super::signed("report count", reports.len() as u64)?;
        bounded(OP_TIMEOUT, async {
            with_pool!(self, |pool| {
                let mut tx = pool
                    .begin_with(self.backend.begin_write())
                    .await
                    .map_err(db_error)?;
                let id: i64 = sqlx::query_scalar(INSERT_ARRIVAL)
                    .bind(arrival.input)
                    .bind(cut(arrival.channel, MAX_TEXT_BYTES))
                    .bind(cut(arrival.peer_ip, MAX_TEXT_BYTES))
                    .bind(cut(arrival.helo, MAX_TEXT_BYTES))
                    .bind(cut(arrival.mail_from, MAX_TEXT_BYTES))
                    .bind(&recipients)
                    .bind(arrival.tls_version.map(|t| cut(t, MAX_TEXT_BYTES)))
                    .bind(arrival.tls_cipher.map(|t| cut(t, MAX_TEXT_BYTES)))
                    .bind(&dkim)
                    .bind(count)
                    .bind(arrival.received_at)
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(db_error)?;
                for report in &reports {
                    sqlx::query(INSERT_ARRIVAL_REPORT)
                        .bind(id)
                        .bind(report)
                        .execute(&mut *tx)
                        .await
                        .map_err(db_error)?;
                }
                tx.commit().await.map_err(db_error)?;
                Ok(id)
            })
        })
        .await
    }

    /// The arrivals of one input, oldest first.
    pub async fn arrivals_of_input(&self, input: i64) -> Result<Vec<ArrivalRow>, ReportDbError> {
        self.arrivals(OF_INPUT, &[input]).await
    }

    /// The arrivals that carried one report, oldest first.
    pub async fn arrivals_of_report(&self, report: i64) -> Result<Vec<ArrivalRow>, ReportDbError> {
        self.arrivals(OF_REPORT, &[report]).await
    }

    /// The newest `limit` (at most [`MAX_LIST`]) arrivals that held no report, newest first,
    /// with their inputs' errors: mail kept for an administrator.
    pub async fn mail_without_reports(
        &self,
        limit: u32,
    ) -> Result<Vec<MailWithoutReports>, ReportDbError> {
        self.mail_without_reports_page(None, limit).await
    }

    /// A page of [`ReportDb::mail_without_reports`]: at most `limit` (and [`MAX_LIST`]),
    /// newest first, continuing after the arrival `after` = (received_at, id) — the last of
    /// the page before — when given. Keyset paging: a page costs the same however deep.
    pub async fn mail_without_reports_page(
        &self,
        after: Option<(i64, i64)>,
        limit: u32,
    ) -> Result<Vec<MailWithoutReports>, ReportDbError> {
        let (received_at, id) = after.unwrap_or((i64::MAX, i64::MAX));
        let arrivals = self
            .arrivals(
                WITHOUT_REPORTS,
                &[received_at, id, i64::from(limit.min(MAX_LIST))],
            )
            .await?;
        let mut out = Vec::with_capacity(arrivals.len());
        for arrival in arrivals {
            let errors = bounded(OP_TIMEOUT, async {
                let rows: Vec<(i64, String, String, String, i64)> =
                    with_pool!(self, |pool| sqlx::query_as(INPUT_ERRORS)
                        .bind(arrival.input)
                        .fetch_all(pool)
                        .await
                        .map_err(db_error)?);
                Ok(rows
                    .into_iter()
                    .map(|(id, source, code, message, received_at)| ErrorRow {
                        id,
                        source,
                        code,
                        message,
                        received_at,
                    })
                    .collect())
            })
            .await?;
            out.push(MailWithoutReports { arrival, errors });
        }
        Ok(out)
    }

    /// Runs an arrivals query with `$1`, `$2`, … bound to `binds` in order.
    async fn arrivals(
        &self,
        query: &'static str,
        binds: &[i64],
    ) -> Result<Vec<ArrivalRow>, ReportDbError> {
        bounded(OP_TIMEOUT, async {
            let rows: Vec<ArrivalTuple> = with_pool!(self, |pool| {
                let mut q = sqlx::query_as(query);
                for value in binds {
                    q = q.bind(*value);
                }
                q.fetch_all(pool).await.map_err(db_error)?
            });
            let mut out = Vec::with_capacity(rows.len());
            for row in rows {
                let reports: Vec<i64> =
                    with_pool!(self, |pool| sqlx::query_scalar(ARRIVAL_REPORTS)
                        .bind(row.0)
                        .fetch_all(pool)
                        .await
                        .map_err(db_error)?);
                out.push(arrival_row(row, reports)?);
            }
            Ok(out)
        })
        .await
    }
}

fn arrival_row(row: ArrivalTuple, reports: Vec<i64>) -> Result<ArrivalRow, ReportDbError> {
    let (
        id,
        input,
        channel,
        peer_ip,
        helo,
        mail_from,
        recipients,
        tls_version,
        tls_cipher,
        dkim,
        _count,
        received_at,
    ) = row;
    let recipients = serde_json::from_str(&recipients)
        .map_err(|e| ReportDbError::Corrupt(format!("arrival {id} recipients: {e}")))?;
    let dkim = serde_json::from_str(&dkim)
        .map_err(|e| ReportDbError::Corrupt(format!("arrival {id} DKIM results: {e}")))?;
    Ok(ArrivalRow {
        id,
        input,
        channel,
        peer_ip,
        helo,
        mail_from,
        recipients,
        tls_version,
        tls_cipher,
        dkim,
        reports,
        received_at,
    })
}
