//! Alerts of `mtasts serve`: each tenant's alert settings, the alerts (one open row per
//! tenant, domain, kind and key; resolved ones kept as history), the notifications to deliver
//! (a persistent outbox: pending deliveries survive a restart and are retried), and what the
//! delegation checks remember of each delegated record.
//!
//! Which alerts open, stay or resolve is decided by `mtasts_proto::alerts`; this module only
//! records it. None of it is served by a listener: nothing here bumps the generation. The
//! webhook secret is sealed like the other secrets when a key is configured.

use mtasts_proto::alerts::rules::RecordMemory;

use super::error::db_error;
use super::secrets::ALERT_WEBHOOK_SECRET;
use super::{HostDb, HostDbError, bounded, limits};

/// Queues one delivery of alert `$id`'s `$event` on each of `$channels`, inside the open
/// transaction `$tx` (so a notification exists exactly when its alert change does).
macro_rules! queue_deliveries {
    ($tx:ident, $id:expr, $channels:expr, $event:expr, $now:expr) => {
        for channel in $channels {
            sqlx::query(INSERT_DELIVERY)
                .bind($id)
                .bind(*channel)
                .bind($event)
                .bind($now)
                .execute(&mut *$tx)
                .await
                .map_err(db_error)?;
        }
    };
}

/// Most e-mail recipients of one tenant's alerts.
pub const MAX_ALERT_RECIPIENTS: usize = 10;
/// Longest stored alert text (title, what happened, fix); longer is cut, never refused, so an
/// alert is always recorded.
pub const MAX_ALERT_TEXT_BYTES: usize = 4096;
/// Longest alert key (a result type, MX host, organization or record name).
pub const MAX_ALERT_KEY_BYTES: usize = 1024;

/// A tenant's alert settings.
#[derive(Clone, PartialEq, Eq)]
pub struct AlertSettings {
    /// The tenant.
    pub tenant_id: i64,
    /// Where webhook notifications are POSTed; `None`: no webhook.
    pub webhook_url: Option<String>,
    /// The shared secret of the webhook signature (opened).
    pub webhook_secret: Option<String>,
    /// Where e-mail notifications go; empty: no e-mail.
    pub email_to: Vec<String>,
    /// Failed TLS sessions per thousand at which `failure-rate` fires.
    pub failure_permille: u32,
    /// Fewest sessions a day for `failure-rate` to judge.
    pub min_sessions: u64,
    /// When they were last changed (Unix seconds).
    pub updated_at: i64,
}

impl std::fmt::Debug for AlertSettings {
    /// Leaves out the webhook secret.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AlertSettings")
            .field("tenant_id", &self.tenant_id)
            .field("webhook_url", &self.webhook_url)
            .field("webhook_secret", &self.webhook_secret.as_ref().map(|_| "…"))
            .field("email_to", &self.email_to)
            .field("failure_permille", &self.failure_permille)
            .field("min_sessions", &self.min_sessions)
            .finish_non_exhaustive()
    }
}

/// Settings to store for a tenant.
#[derive(Clone, PartialEq, Eq)]
pub struct NewAlertSettings {
    /// Where webhook notifications are POSTed; `None`: no webhook.
    pub webhook_url: Option<String>,
    /// A new webhook secret; `None` keeps the stored one.
    pub webhook_secret: Option<String>,
    /// Where e-mail notifications go (at most [`MAX_ALERT_RECIPIENTS`]).
    pub email_to: Vec<String>,
    /// Failed TLS sessions per thousand at which `failure-rate` fires (1 to 1000).
    pub failure_permille: u32,
    /// Fewest sessions a day for `failure-rate` to judge.
    pub min_sessions: u64,
}

/// A stored alert.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AlertRow {
    /// Database id.
    pub id: i64,
    /// The tenant it belongs to.
    pub tenant_id: i64,
    /// The hosted domain.
    pub domain: String,
    /// The kind (`mtasts_proto::alerts::AlertKind::as_str`).
    pub kind: String,
    /// What tells alerts of one kind and domain apart.
    pub key: String,
    /// One line.
    pub title: String,
    /// What happened.
    pub what: String,
    /// The fix.
    pub fix: String,
    /// Since when the condition holds (Unix seconds).
    pub since: i64,
    /// When it was opened (Unix seconds).
    pub first_seen: i64,
    /// When the condition was last seen (Unix seconds).
    pub last_seen: i64,
    /// When a notification was last queued (Unix seconds).
    pub notified_at: Option<i64>,
    /// When it was resolved; `None` while open.
    pub resolved_at: Option<i64>,
}

/// An alert's content as the rules produce it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NewAlert<'a> {
    /// The tenant.
    pub tenant_id: i64,
    /// The hosted domain.
    pub domain: &'a str,
    /// The kind.
    pub kind: &'a str,
    /// The key.
    pub key: &'a str,
    /// One line.
    pub title: &'a str,
    /// What happened.
    pub what: &'a str,
    /// The fix.
    pub fix: &'a str,
    /// Since when.
    pub since: i64,
}

/// A notification to deliver (or delivered).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeliveryRow {
    /// Database id.
    pub id: i64,
    /// The alert it is about.
    pub alert_id: i64,
    /// `webhook` or `email`.
    pub channel: String,
    /// `opened`, `reminder` or `resolved`.
    pub event: String,
    /// `pending`, `sent` or `failed` (given up).
    pub state: String,
    /// Failed attempts so far.
    pub attempts: u32,
    /// Not before this time (Unix seconds).
    pub next_attempt_at: i64,
    /// Why the last attempt failed.
    pub last_error: Option<String>,
    /// When it was queued (Unix seconds).
    pub created_at: i64,
    /// When it was sent or given up (Unix seconds).
    pub done_at: Option<i64>,
}

impl HostDb {
    /// The alert settings of `tenant_id`, if it stored any.
    pub async fn alert_settings(
        &self,
        tenant_id: i64,
    ) -> Result<Option<AlertSettings>, HostDbError> {
        let row: Option<SettingsRow> = bounded(async {
            Ok(with_pool!(self, |pool| sqlx::query_as(SETTINGS)
                .bind(tenant_id)
                .fetch_optional(pool)
                .await
                .map_err(db_error)?))
        })
        .await?;
        row.map(|r| self.settings_from(r)).transpose()
    }

    /// Stores the alert settings of `tenant_id` at `now` ([`HostDbError::NotFound`] when the
    /// tenant does not exist; [`HostDbError::Invalid`] for a value out of bounds).
    pub async fn put_alert_settings(
        &self,
        tenant_id: i64,
        new: &NewAlertSettings,
        now: i64,
    ) -> Result<AlertSettings, HostDbError> {
        if let Some(url) = &new.webhook_url {
            limits::required("webhook URL", url, limits::MAX_URL_BYTES)?;
        }
        if new.email_to.len() > MAX_ALERT_RECIPIENTS {
            return Err(HostDbError::Invalid(format!(
                "more than {MAX_ALERT_RECIPIENTS} e-mail recipients"
            )));
        }
        let emails = new
            .email_to
            .iter()
            .map(|e| limits::email(e))
            .collect::<Result<Vec<_>, _>>()?;
        if emails.iter().any(|e| e.contains(',')) {
            return Err(HostDbError::Invalid(
                "an e-mail address contains a comma".to_owned(),
            ));
        }
        if !(1..=1000).contains(&new.failure_permille) {
            return Err(HostDbError::Invalid(
                "the failure threshold must be 1 to 1000 per thousand".to_owned(),
            ));
        }
        let min_sessions = limits::signed("minimum sessions", new.min_sessions)?;
        let secret = match &new.webhook_secret {
            Some(secret) => {
                limits::required("webhook secret", secret, limits::MAX_SECRET_BYTES)?;
                Some(self.seal_secret(&ALERT_WEBHOOK_SECRET, &tenant_id.to_string(), secret)?)
            }
            None => None,
        };
        bounded(async {
            with_pool!(self, |pool| sqlx::query(PUT_SETTINGS)
                .bind(tenant_id)
                .bind(new.webhook_url.as_deref())
                .bind(secret.as_deref())
                .bind(emails.join(","))
                .bind(i64::from(new.failure_permille))
                .bind(min_sessions)
                .bind(now)
                .execute(pool)
                .await
                .map_err(db_error)?
                .rows_affected());
            Ok(())
        })
        .await?;
        self.alert_settings(tenant_id)
            .await?
            .ok_or(HostDbError::NotFound)
    }

    /// The alerts of `tenant_id` (every tenant's for `None`), open ones first, then newest
    /// first, at most `limit`.
    pub async fn alerts(
        &self,
        tenant_id: Option<i64>,
        limit: u32,
    ) -> Result<Vec<AlertRow>, HostDbError> {
        let rows: Vec<AlertTuple> = bounded(async {
            Ok(with_pool!(self, |pool| sqlx::query_as(LIST_ALERTS)
                .bind(tenant_id)
                .bind(i64::from(limit.min(super::MAX_PAGE_ROWS)))
                .fetch_all(pool)
                .await
                .map_err(db_error)?))
        })
        .await?;
        Ok(rows.into_iter().map(alert_row).collect())
    }

    /// One alert.
    pub async fn alert(&self, id: i64) -> Result<Option<AlertRow>, HostDbError> {
        let row: Option<AlertTuple> = bounded(async {
            Ok(with_pool!(self, |pool| sqlx::query_as(ALERT_BY_ID)
                .bind(id)
                .fetch_optional(pool)
                .await
                .map_err(db_error)?))
        })
        .await?;
        Ok(row.map(alert_row))
    }

    /// The open alerts of `tenant_id`.
    pub async fn open_alerts(&self, tenant_id: i64) -> Result<Vec<AlertRow>, HostDbError> {
        let rows: Vec<AlertTuple> = bounded(async {
            Ok(with_pool!(self, |pool| sqlx::query_as(OPEN_ALERTS)
                .bind(tenant_id)
                .fetch_all(pool)
                .await
                .map_err(db_error)?))
        })
        .await?;
        Ok(rows.into_iter().map(alert_row).collect())
    }

    /// Opens an alert at `now` and queues its `opened` notification on each of `channels`,
    /// in one transaction ([`HostDbError::Conflict`] when one is open for the same tenant,
    /// domain, kind and key).
    pub async fn open_alert(
        &self,
        alert: NewAlert<'_>,
        now: i64,
        channels: &[&str],
    ) -> Result<AlertRow, HostDbError> {
        let key = limits::truncated(alert.key, MAX_ALERT_KEY_BYTES);
        let notified = (!channels.is_empty()).then_some(now);
        bounded(async {
            let row: AlertTuple = with_pool!(self, |pool| {
                let mut tx = pool
                    .begin_with(self.backend.begin_write())
                    .await
                    .map_err(db_error)?;
                let row: AlertTuple = sqlx::query_as(INSERT_ALERT)
                    .bind(alert.tenant_id)
                    .bind(alert.domain)
                    .bind(alert.kind)
                    .bind(key)
                    .bind(text(alert.title))
                    .bind(text(alert.what))
                    .bind(text(alert.fix))
                    .bind(alert.since)
                    .bind(now)
                    .bind(notified)
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(db_error)?;
                queue_deliveries!(tx, row.0, channels, "opened", now);
                tx.commit().await.map_err(db_error)?;
                row
            });
            Ok(alert_row(row))
        })
        .await
    }

    /// Refreshes open alert `id` with what the rules say at `now`; when `remind` is true,
    /// queues a `reminder` on each of `channels` (if any) in the same transaction.
    pub async fn keep_alert(
        &self,
        id: i64,
        alert: NewAlert<'_>,
        now: i64,
        remind: bool,
        channels: &[&str],
    ) -> Result<(), HostDbError> {
        let notify = remind && !channels.is_empty();
        bounded(async {
            with_pool!(self, |pool| {
                let mut tx = pool
                    .begin_with(self.backend.begin_write())
                    .await
                    .map_err(db_error)?;
                sqlx::query(KEEP_ALERT)
                    .bind(id)
                    .bind(text(alert.title))
                    .bind(text(alert.what))
                    .bind(text(alert.fix))
                    .bind(alert.since)
                    .bind(now)
                    .bind(notify)
                    .execute(&mut *tx)
                    .await
                    .map_err(db_error)?;
                if notify {
                    queue_deliveries!(tx, id, channels, "reminder", now);
                }
                tx.commit().await.map_err(db_error)?;
            });
            Ok(())
        })
        .await
    }

    /// Resolves open alert `id` at `now` and queues its `resolved` notification on each of
    /// `channels`, in one transaction; `false` when it was not open.
    pub async fn resolve_alert(
        &self,
        id: i64,
        now: i64,
        channels: &[&str],
    ) -> Result<bool, HostDbError> {
        bounded(async {
            let done = with_pool!(self, |pool| {
                let mut tx = pool
                    .begin_with(self.backend.begin_write())
                    .await
                    .map_err(db_error)?;
                let done = sqlx::query(RESOLVE_ALERT)
                    .bind(id)
                    .bind(now)
                    .execute(&mut *tx)
                    .await
                    .map_err(db_error)?
                    .rows_affected()
                    > 0;
                if done {
                    queue_deliveries!(tx, id, channels, "resolved", now);
                }
                tx.commit().await.map_err(db_error)?;
                done
            });
            Ok(done)
        })
        .await
    }

    /// Pending notifications due at `now` with their alerts, oldest first, at most `limit`.
    pub async fn due_deliveries(
        &self,
        now: i64,
        limit: u32,
    ) -> Result<Vec<(DeliveryRow, AlertRow)>, HostDbError> {
        let ids: Vec<DeliveryTuple> = bounded(async {
            Ok(with_pool!(self, |pool| sqlx::query_as(DUE_DELIVERIES)
                .bind(now)
                .bind(i64::from(limit.min(super::MAX_PAGE_ROWS)))
                .fetch_all(pool)
                .await
                .map_err(db_error)?))
        })
        .await?;
        let mut out = Vec::with_capacity(ids.len());
        for row in ids {
            let delivery = delivery_row(row)?;
            if let Some(alert) = self.alert(delivery.alert_id).await? {
                out.push((delivery, alert));
            }
        }
        Ok(out)
    }

    /// The notifications of alert `id`, oldest first.
    pub async fn alert_deliveries(&self, alert_id: i64) -> Result<Vec<DeliveryRow>, HostDbError> {
        let rows: Vec<DeliveryTuple> = bounded(async {
            Ok(with_pool!(self, |pool| sqlx::query_as(DELIVERIES_OF)
                .bind(alert_id)
                .fetch_all(pool)
                .await
                .map_err(db_error)?))
        })
        .await?;
        rows.into_iter().map(delivery_row).collect()
    }

    /// Records that delivery `id` was sent at `now`.
    pub async fn delivery_sent(&self, id: i64, now: i64) -> Result<(), HostDbError> {
        bookkeeping!(self, DELIVERY_SENT, id, now)?;
        Ok(())
    }

    /// Records a failed attempt of delivery `id` at `now`: tried again at `retry_at`, or given
    /// up when `None`.
    pub async fn delivery_failed(
        &self,
        id: i64,
        error: &str,
        retry_at: Option<i64>,
        now: i64,
    ) -> Result<(), HostDbError> {
        let error = limits::truncated(error, limits::MAX_ERROR_BYTES);
        match retry_at {
            Some(at) => bookkeeping!(self, DELIVERY_RETRY, id, error, at)?,
            None => bookkeeping!(self, DELIVERY_GIVE_UP, id, error, now)?,
        };
        Ok(())
    }

    /// What the delegation checks remember of each delegated record of `domain`, by record
    /// name.
    pub async fn alert_records(
        &self,
        domain: &str,
    ) -> Result<Vec<(String, RecordMemory)>, HostDbError> {
        let domain = limits::domain(domain)?;
        let rows: Vec<RecordRow> = bounded(async {
            Ok(with_pool!(self, |pool| sqlx::query_as(RECORDS)
                .bind(&domain)
                .fetch_all(pool)
                .await
                .map_err(db_error)?))
        })
        .await?;
        let mut out: Vec<(String, RecordMemory)> = rows
            .into_iter()
            .map(|(record, verified_at, failing_since, detail, fix)| {
                (
                    record,
                    RecordMemory {
                        verified_at,
                        failing_since,
                        detail,
                        fix,
                    },
                )
            })
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(out)
    }

    /// Stores what the delegation checks remember of `record` of `domain`.
    pub async fn put_alert_record(
        &self,
        domain: &str,
        record: &str,
        memory: &RecordMemory,
    ) -> Result<(), HostDbError> {
        let domain = limits::domain(domain)?;
        let record = limits::required("record name", record, limits::MAX_NAME_BYTES)?;
        bookkeeping!(
            self,
            PUT_RECORD,
            &domain,
            record,
            memory.verified_at,
            memory.failing_since,
            text(&memory.detail),
            text(&memory.fix),
        )?;
        Ok(())
    }

    fn settings_from(&self, r: SettingsRow) -> Result<AlertSettings, HostDbError> {
        let (tenant_id, webhook_url, secret, email_to, permille, min_sessions, updated_at) = r;
        let webhook_secret = secret
            .map(|s| self.open_secret(&ALERT_WEBHOOK_SECRET, &tenant_id.to_string(), s))
            .transpose()?;
        Ok(AlertSettings {
            tenant_id,
            webhook_url,
            webhook_secret,
            email_to: email_to
                .split(',')
                .filter(|e| !e.is_empty())
                .map(str::to_owned)
                .collect(),
            failure_permille: u32::try_from(permille)
                .map_err(|_| HostDbError::Corrupt(format!("failure threshold {permille}")))?,
            min_sessions: limits::unsigned("minimum sessions", min_sessions)?,
            updated_at,
        })
    }
}

/// `value` cut to [`MAX_ALERT_TEXT_BYTES`].
fn text(value: &str) -> &str {
    limits::truncated(value, MAX_ALERT_TEXT_BYTES)
}

/// A delegation record's memory as read: record, verified at, failing since, detail, fix.
type RecordRow = (String, Option<i64>, Option<i64>, String, String);

type SettingsRow = (i64, Option<String>, Option<String>, String, i64, i64, i64);

type AlertTuple = (
    i64,
    i64,
    String,
    String,
    String,
    String,
    String,
    String,
    i64,
    i64,
    i64,
    Option<i64>,
    Option<i64>,
);

fn alert_row(t: AlertTuple) -> AlertRow {
    let (
        id,
        tenant_id,
        domain,
        kind,
        key,
        title,
        what,
        fix,
        since,
        first,
        last,
        notified,
        resolved,
    ) = t;
    AlertRow {
        id,
        tenant_id,
        domain,
        kind,
        key,
        title,
        what,
        fix,
        since,
        first_seen: first,
        last_seen: last,
        notified_at: notified,
        resolved_at: resolved,
    }
}

/// A delivery as read, in the order of `delivery_columns!`.
type DeliveryTuple = (
    i64,
    i64,
    String,
    String,
    String,
    i64,
    i64,
    Option<String>,
    i64,
    Option<i64>,
);

fn delivery_row(t: DeliveryTuple) -> Result<DeliveryRow, HostDbError> {
    let (id, alert_id, channel, event, state, attempts, next, last_error, created_at, done_at) = t;
    Ok(DeliveryRow {
        id,
        alert_id,
        channel,
        event,
        state,
        attempts: u32::try_from(attempts)
            .map_err(|_| HostDbError::Corrupt(format!("delivery attempts {attempts}")))?,
        next_attempt_at: next,
        last_error,
        created_at,
        done_at,
    })
}

const SETTINGS: &str = "SELECT tenant_id, webhook_url, webhook_secret, email_to, \
     failure_permille, min_sessions, updated_at FROM host_alert_settings WHERE tenant_id = $1";
// A secret left out ($3 NULL) keeps the stored one; no webhook URL clears it.
const PUT_SETTINGS: &str = "INSERT INTO host_alert_settings (tenant_id, webhook_url, \
     webhook_secret, email_to, failure_permille, min_sessions, updated_at) \
     VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (tenant_id) DO UPDATE SET \
     webhook_url = excluded.webhook_url, \
     webhook_secret = CASE WHEN excluded.webhook_url IS NULL THEN NULL \
         ELSE COALESCE(excluded.webhook_secret, host_alert_settings.webhook_secret) END, \
     email_to = excluded.email_to, failure_permille = excluded.failure_permille, \
     min_sessions = excluded.min_sessions, updated_at = excluded.updated_at";
macro_rules! alert_columns {
    () => {
        "id, tenant_id, domain, kind, alert_key, title, what, fix, since, first_seen, \
         last_seen, notified_at, resolved_at"
    };
}
const LIST_ALERTS: &str = concat!(
    "SELECT ",
    alert_columns!(),
    " FROM host_alerts WHERE ($1 IS NULL OR tenant_id = $1) \
     ORDER BY CASE WHEN resolved_at IS NULL THEN 0 ELSE 1 END, id DESC LIMIT $2"
);
const ALERT_BY_ID: &str = concat!(
    "SELECT ",
    alert_columns!(),
    " FROM host_alerts WHERE id = $1"
);
const OPEN_ALERTS: &str = concat!(
    "SELECT ",
    alert_columns!(),
    " FROM host_alerts WHERE tenant_id = $1 AND resolved_at IS NULL ORDER BY id"
);
const INSERT_ALERT: &str = concat!(
    "INSERT INTO host_alerts (tenant_id, domain, kind, alert_key, title, what, fix, since, \
     first_seen, last_seen, notified_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9, $10) \
     RETURNING ",
    alert_columns!()
);
const KEEP_ALERT: &str = "UPDATE host_alerts SET title = $2, what = $3, fix = $4, since = $5, \
     last_seen = $6, notified_at = CASE WHEN $7 THEN $6 ELSE notified_at END \
     WHERE id = $1 AND resolved_at IS NULL";
const RESOLVE_ALERT: &str =
    "UPDATE host_alerts SET resolved_at = $2 WHERE id = $1 AND resolved_at IS NULL";
const INSERT_DELIVERY: &str = "INSERT INTO host_alert_deliveries (alert_id, channel, event, \
     state, attempts, next_attempt_at, created_at) VALUES ($1, $2, $3, 'pending', 0, $4, $4)";
macro_rules! delivery_columns {
    () => {
        "id, alert_id, channel, event, state, attempts, next_attempt_at, last_error, \
         created_at, done_at"
    };
}
const DUE_DELIVERIES: &str = concat!(
    "SELECT ",
    delivery_columns!(),
    " FROM host_alert_deliveries WHERE state = 'pending' AND next_attempt_at <= $1 \
     ORDER BY next_attempt_at, id LIMIT $2"
);
const DELIVERIES_OF: &str = concat!(
    "SELECT ",
    delivery_columns!(),
    " FROM host_alert_deliveries WHERE alert_id = $1 ORDER BY id"
);
const DELIVERY_SENT: &str = "UPDATE host_alert_deliveries SET state = 'sent', done_at = $2 \
     WHERE id = $1 AND state = 'pending'";
const DELIVERY_RETRY: &str = "UPDATE host_alert_deliveries SET attempts = attempts + 1, \
     last_error = $2, next_attempt_at = $3 WHERE id = $1 AND state = 'pending'";
const DELIVERY_GIVE_UP: &str = "UPDATE host_alert_deliveries SET attempts = attempts + 1, \
     last_error = $2, state = 'failed', done_at = $3 WHERE id = $1 AND state = 'pending'";
const RECORDS: &str = "SELECT record, verified_at, failing_since, detail, fix \
     FROM host_alert_records WHERE domain = $1";
const PUT_RECORD: &str = "INSERT INTO host_alert_records (domain, record, verified_at, \
     failing_since, detail, fix) VALUES ($1, $2, $3, $4, $5, $6) \
     ON CONFLICT (domain, record) DO UPDATE SET verified_at = excluded.verified_at, \
     failing_since = excluded.failing_since, detail = excluded.detail, fix = excluded.fix";
