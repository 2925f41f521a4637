//! Report retention: raw reports (with their rows) and inputs older than
//! `report_retention_days` are deleted; the daily rollups stay, so charts and totals over
//! older days are unchanged. One node at a time does it, under an advisory lock.

use std::time::Duration;

use mtasts_store::host::HostDb;
use mtasts_store::reports::{Purged, ReportDb};
use tokio_util::sync::CancellationToken;

/// The default retention of raw reports, in days.
pub const DEFAULT_RETENTION_DAYS: u32 = 400;
/// How often a node looks for reports past the retention.
pub const RETENTION_INTERVAL: Duration = Duration::from_secs(3600);

/// The advisory lock that keeps retention to one node at a time.
const RETENTION_LOCK: &str = "report-retention";
const DAY: i64 = 86_400;

/// What a retention run needs.
#[derive(Clone, Debug)]
pub struct Retention {
    /// The serve database (for the lock).
    pub db: HostDb,
    /// The reports database.
    pub reports: ReportDb,
    /// Raw reports are kept this many days after their range ended (at least 1).
    pub days: u32,
}

impl Retention {
    /// Deletes what is older than the retention at `now` (Unix seconds), unless another node
    /// holds the lock; `None` then.
    pub async fn run_once(&self, now: i64) -> Result<Option<Purged>, String> {
        let Some(_lock) = self
            .db
            .try_lock(RETENTION_LOCK)
            .await
            .map_err(|e| e.to_string())?
        else {
            return Ok(None);
        };
        let cutoff = now.saturating_sub(i64::from(self.days.max(1)) * DAY);
        let purged = self
            .reports
            .delete_older_than(cutoff)
            .await
            .map_err(|e| e.to_string())?;
        if purged != Purged::default() {
            tracing::info!(
                reports = purged.reports,
                inputs = purged.inputs,
                cutoff,
                "deleted raw reports past the retention; daily rollups kept"
            );
        }
        Ok(Some(purged))
    }

    /// Runs [`Retention::run_once`] every `interval` (the first soon after start) until
    /// `cancel`.
    pub async fn run(self, interval: Duration, clock: fn() -> i64, cancel: CancellationToken) {
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = tick.tick() => {}
            }
            tokio::select! {
                _ = cancel.cancelled() => return,
                result = self.run_once(clock()) => if let Err(error) = result {
                    tracing::warn!(%error, "report retention failed; retrying on the next round");
                }
            }
        }
    }
}
