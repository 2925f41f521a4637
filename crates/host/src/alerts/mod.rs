//! Alerts of `mtasts serve` (issue 11 item 7): per tenant and hosted domain, the rules of
//! [`mtasts_proto::alerts`] over the reports database and the delegation checks, suppressed
//! like incidents, and delivered by webhook and e-mail.
//!
//! * [`evaluate`] — gathers each domain's evidence, runs the rules and records which alerts
//!   open, stay (re-notified at most daily) and resolve, queueing their notifications in the
//!   same transaction.
//! * [`deliver`] — sends the queued notifications that are due, retried with backoff (the
//!   queue is in the database: a notification survives a restart).
//! * [`webhook`] and [`email`] — the two edges, each behind a small trait.
//! * [`service`] — listing alerts and changing settings, for the API and the dashboard.
//!
//! A node runs [`Alerts::run_once`] every `alert_interval` under the advisory lock
//! [`LOCK_NAME`], so one node evaluates and delivers at a time.

pub mod deliver;
pub mod email;
pub mod evaluate;
pub mod service;
pub mod webhook;

use std::sync::Arc;
use std::time::Duration;

use mtasts_store::host::{HostDb, HostDbError};
use mtasts_store::reports::{ReportDb, ReportDbError};
use thiserror::Error;

use crate::state::Clock;
use email::MailSend;
use webhook::WebhookSend;

/// The advisory lock under which one node evaluates and delivers.
pub const LOCK_NAME: &str = "alerts";

/// How alerts are delivered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AlertConfig {
    /// The sender address of alert mail (`alert_from`, default `mtasts@<zone>`).
    pub from: String,
    /// How often alerts are evaluated and due notifications sent (`alert_interval`).
    pub interval: Duration,
}

/// Why delivering one notification failed.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum SendError {
    /// It cannot succeed as configured (a private webhook target, a malformed address): not
    /// retried.
    #[error("refused: {0}")]
    Refused(String),
    /// It may succeed later (no answer, a 5xx, a relay refusing for now): retried.
    #[error("{0}")]
    Failed(String),
}

/// Why a round of alert work failed (it is tried again next round).
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum AlertError {
    /// The hosting database.
    #[error("hosting database: {0}")]
    Host(#[from] HostDbError),
    /// The reports database.
    #[error("reports database: {0}")]
    Reports(#[from] ReportDbError),
}

/// What one round did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Round {
    /// Whether this node held the lock (else it did nothing).
    pub ran: bool,
    /// Alerts opened.
    pub opened: u64,
    /// Alerts resolved.
    pub resolved: u64,
    /// Notifications sent.
    pub sent: u64,
    /// Notification attempts that failed (retried later or given up).
    pub failed: u64,
}

/// The alert machinery of one node: the two databases, the edges and the clock.
#[derive(Clone)]
pub struct Alerts {
    db: HostDb,
    reports: ReportDb,
    config: AlertConfig,
    webhook: Arc<dyn WebhookSend>,
    mail: Option<Arc<dyn MailSend>>,
    clock: Clock,
    metrics: crate::metrics::ServeMetrics,
}

impl Alerts {
    /// Alerts over `db` and `reports`, delivered through `webhook` and (when a relay is
    /// configured) `mail`.
    pub fn new(
        db: HostDb,
        reports: ReportDb,
        config: AlertConfig,
        webhook: Arc<dyn WebhookSend>,
        mail: Option<Arc<dyn MailSend>>,
    ) -> Self {
        Alerts {
            db,
            reports,
            config,
            webhook,
            mail,
            clock: crate::state::system_clock(),
            metrics: crate::metrics::ServeMetrics::default(),
        }
    }

    /// Counts deliveries into `metrics` (`alert_sent` by channel and outcome).
    pub fn with_metrics(mut self, metrics: crate::metrics::ServeMetrics) -> Self {
        self.metrics = metrics;
        self
    }

    /// Replaces the clock (tests move time to cross a day or a retry).
    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// The configuration.
    pub fn config(&self) -> &AlertConfig {
        &self.config
    }

    /// One round, if this node gets the lock: evaluate every tenant's domains, then send what
    /// is due.
    pub async fn run_once(&self) -> Result<Round, AlertError> {
        let Some(_lock) = self.db.try_lock(LOCK_NAME).await? else {
            return Ok(Round::default());
        };
        let mut round = evaluate::evaluate_all(self).await?;
        let (sent, failed) = deliver::deliver_due(self).await?;
        round.ran = true;
        round.sent = sent;
        round.failed = failed;
        Ok(round)
    }

    /// The channels a tenant's notifications go to now: `webhook` when it has a URL, `email`
    /// when it has recipients and a relay is configured.
    fn channels(&self, settings: Option<&mtasts_store::host::AlertSettings>) -> Vec<&'static str> {
        let mut out = Vec::new();
        if let Some(s) = settings {
            if s.webhook_url.is_some() {
                out.push("webhook");
            }
            if !s.email_to.is_empty() && self.mail.is_some() {
                out.push("email");
            }
        }
        out
    }

    fn now(&self) -> i64 {
        (self.clock)()
    }
}

/// Runs `alerts` every interval until `cancel` fires; a failed round is logged and tried
/// again next time.
pub async fn run(alerts: Alerts, cancel: tokio_util::sync::CancellationToken) {
    let mut tick = tokio::time::interval(alerts.config.interval.max(Duration::from_secs(1)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tick.tick() => {}
        }
        tokio::select! {
            _ = cancel.cancelled() => return,
            result = alerts.run_once() => match result {
                Ok(round) if round.opened + round.resolved + round.sent + round.failed > 0 => {
                    tracing::info!(
                        opened = round.opened,
                        resolved = round.resolved,
                        sent = round.sent,
                        failed = round.failed,
                        "alerts"
                    );
                }
                Ok(_) => {}
                Err(error) => tracing::warn!(%error, "alert round failed; retrying next round"),
            }
        }
    }
}
