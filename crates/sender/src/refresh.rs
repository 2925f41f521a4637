//! Refresh-ahead: keep the policies in use fresh before they expire (RFC 8461 §3.3: senders
//! should refresh proactively, e.g. daily; §10.2), so a lookup rarely waits for a fetch and a
//! policy never lapses between messages.
//!
//! Every `interval` seconds the task scans up to `batch` cache entries and re-discovers each
//! policy that
//!
//! * was used for a lookup within `used_within` seconds,
//! * expires within `before_expiry` seconds ([`mtasts_proto::sts::cache::refresh_due`]) or was
//!   fetched more than `max_staleness` seconds ago (the daily proactive refresh), and
//! * is not in the 5-minute backoff after a failed fetch.
//!
//! A refresh is a discovery that fetches whenever a TXT record exists (see
//! [`crate::discovery::Discovery::refresh`]); its failure keeps the cached policy.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use mtasts_proto::sts::cache::{in_backoff, refresh_due};
use tokio_util::sync::CancellationToken;

use crate::config::RefreshConfig;
use crate::discovery::{Discovery, steps};
use crate::metrics::{Metrics, OutcomeLabels};

/// What one scan did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ScanReport {
    /// Entries examined.
    pub examined: usize,
    /// Refreshes run.
    pub refreshed: usize,
}

/// Runs scans every `config.interval` seconds until `shutdown`.
pub async fn run(
    discovery: Arc<Discovery>,
    config: RefreshConfig,
    metrics: Arc<Metrics>,
    shutdown: CancellationToken,
) {
    if !config.enabled {
        return;
    }
    let interval = Duration::from_secs(config.interval.max(1));
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(interval) => {}
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            report = scan(&discovery, &config, &metrics) => {
                if report.refreshed > 0 {
                    tracing::debug!(examined = report.examined, refreshed = report.refreshed, "refresh-ahead scan");
                }
            }
        }
    }
}

/// One scan (see the module docs).
pub async fn scan(
    discovery: &Arc<Discovery>,
    config: &RefreshConfig,
    metrics: &Metrics,
) -> ScanReport {
    let entries = match discovery.store().list(config.batch).await {
        Ok(entries) => entries,
        Err(e) => {
            tracing::warn!(error = %e, "refresh-ahead cannot list the policy cache");
            return ScanReport::default();
        }
    };
    let now = discovery.clock().now();
    let due: Vec<String> = entries
        .iter()
        .filter(|entry| entry.last_used.saturating_add(config.used_within) >= now)
        .filter(|entry| !in_backoff(entry.last_failure, now))
        .filter(|entry| {
            // An entry that no longer parses is left to the next lookup, which says so.
            let Some(Ok(cached)) = steps::parse_stored(entry) else {
                return false;
            };
            refresh_due(&cached, now, config.before_expiry)
                || now >= cached.fetched_at.saturating_add(config.max_staleness)
        })
        .map(|entry| entry.domain.clone())
        .collect();
    let refreshed = due.len();
    futures::stream::iter(due)
        .for_each_concurrent(config.concurrency.max(1), |domain| async move {
            let outcome = discovery.refresh(&domain).await;
            let label = outcome.details.outcome.unwrap_or("none");
            metrics
                .refreshes
                .get_or_create(&OutcomeLabels { outcome: label })
                .inc();
        })
        .await;
    ScanReport {
        examined: entries.len(),
        refreshed,
    }
}
