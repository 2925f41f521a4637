//! Sending the queued notifications that are due: each through its channel, then recorded as
//! sent, retried later ([`mtasts_proto::alerts::suppression::retry_delay`]) or given up.
//!
//! The content is built at sending time from the alert as it is then, so a retry a day later
//! says what is true a day later; the webhook body is signed anew each attempt
//! ([`sign`]).

use std::collections::BTreeMap;

use aws_lc_rs::hmac;
use mtasts_proto::alerts::notice::{Event, Notice};
use mtasts_proto::alerts::signature::{MAC_BYTES, header_value};
use mtasts_proto::alerts::suppression::retry_delay;
use mtasts_proto::alerts::target::WebhookTarget;
use mtasts_proto::alerts::{Alert, AlertKind};
use mtasts_store::host::{AlertRow, AlertSettings, DeliveryRow};

use super::{AlertError, Alerts, SendError};

/// Notifications handled per round at most (the rest wait for the next round).
pub const BATCH: u32 = 100;

/// The `X-Mtasts-Signature` value of `body` under `secret`.
pub fn sign(secret: &str, body: &[u8]) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret.as_bytes());
    let tag = hmac::sign(&key, body);
    let mut mac = [0u8; MAC_BYTES];
    mac.copy_from_slice(tag.as_ref());
    header_value(&mac)
}

/// Sends every due notification; returns how many were sent and how many attempts failed.
pub(super) async fn deliver_due(alerts: &Alerts) -> Result<(u64, u64), AlertError> {
    let now = alerts.now();
    let due = alerts.db.due_deliveries(now, BATCH).await?;
    let mut tenants: BTreeMap<i64, (String, Option<AlertSettings>)> = BTreeMap::new();
    let (mut sent, mut failed) = (0, 0);
    for (delivery, alert) in due {
        if let std::collections::btree_map::Entry::Vacant(slot) = tenants.entry(alert.tenant_id) {
            let name = alerts
                .db
                .tenant(alert.tenant_id)
                .await?
                .map_or_else(|| alert.tenant_id.to_string(), |t| t.name);
            let settings = alerts
                .db
                .alert_settings(alert.tenant_id)
                .await
                .ok()
                .flatten();
            slot.insert((name, settings));
        }
        let (tenant, settings) = &tenants[&alert.tenant_id];
        let outcome = send_one(alerts, &delivery, &alert, tenant, settings.as_ref(), now).await;
        let channel: &'static str = if delivery.channel == "email" {
            "email"
        } else {
            "webhook"
        };
        let now = alerts.now();
        match outcome {
            Ok(()) => {
                alerts.db.delivery_sent(delivery.id, now).await?;
                sent += 1;
                alerts.metrics.alert_sent(channel, "sent");
                tracing::info!(alert = alert.id, channel = %delivery.channel, event = %delivery.event, "alert notification sent");
            }
            Err(error) => {
                failed += 1;
                alerts.metrics.alert_sent(channel, "failed");
                let retry_at = match &error {
                    SendError::Refused(_) => None,
                    SendError::Failed(_) => retry_delay(delivery.attempts + 1).map(|d| now + d),
                };
                tracing::warn!(alert = alert.id, channel = %delivery.channel, %error, retry_at, "alert notification failed");
                alerts
                    .db
                    .delivery_failed(delivery.id, &error.to_string(), retry_at, now)
                    .await?;
            }
        }
    }
    Ok((sent, failed))
}

async fn send_one(
    alerts: &Alerts,
    delivery: &DeliveryRow,
    row: &AlertRow,
    tenant: &str,
    settings: Option<&AlertSettings>,
    now: i64,
) -> Result<(), SendError> {
    let event = Event::parse(&delivery.event)
        .ok_or_else(|| SendError::Refused(format!("unknown event {:?}", delivery.event)))?;
    let kind: AlertKind = row
        .kind
        .parse()
        .map_err(|e| SendError::Refused(format!("{e}")))?;
    let notice = Notice {
        event,
        sent_at: now,
        tenant: tenant.to_owned(),
        id: row.id,
        alert: Alert {
            kind,
            domain: row.domain.clone(),
            key: row.key.clone(),
            title: row.title.clone(),
            what: row.what.clone(),
            since: row.since,
            fix: row.fix.clone(),
        },
        first_seen: row.first_seen,
        last_seen: row.last_seen,
        resolved_at: row.resolved_at,
    };
    let settings =
        settings.ok_or_else(|| SendError::Refused("the tenant has no alert settings".into()))?;
    match delivery.channel.as_str() {
        "webhook" => {
            let url = settings
                .webhook_url
                .as_deref()
                .ok_or_else(|| SendError::Refused("no webhook URL is configured".into()))?;
            let target =
                WebhookTarget::parse(url).map_err(|e| SendError::Refused(e.to_string()))?;
            let secret = settings.webhook_secret.as_deref().unwrap_or_default();
            let body = notice.json();
            let signature = sign(secret, body.as_bytes());
            alerts.webhook.post(&target, &signature, now, body).await
        }
        "email" => {
            let mail = alerts
                .mail
                .as_ref()
                .ok_or_else(|| SendError::Refused("no alert_smtp_relay is configured".into()))?;
            if settings.email_to.is_empty() {
                return Err(SendError::Refused("no e-mail recipients".into()));
            }
            mail.send(
                &alerts.config.from,
                &settings.email_to,
                &notice.subject(),
                &notice.text(),
                now,
            )
            .await
        }
        other => Err(SendError::Refused(format!("unknown channel {other:?}"))),
    }
}
