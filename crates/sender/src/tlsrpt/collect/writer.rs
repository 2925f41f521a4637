//! The writer: a task that commits what [`Pending`] holds, one batch (one transaction) every
//! commit interval, or sooner when a batch grows large. A failed commit puts the batch back
//! and waits longer each time (up to [`MAX_BACKOFF`]) while the bound keeps memory in check.
//! At shutdown, once the receiver has stopped, it commits what is left, retrying until the
//! drain deadline.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::aggregate::Pending;
use super::sink::ResultSink;
use crate::metrics::{Metrics, OutcomeLabels};

/// The longest wait between attempts while the store fails.
pub const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// Everything the writer task works with.
pub(crate) struct Writer {
    pub(crate) pending: Arc<Pending>,
    pub(crate) sink: Arc<dyn ResultSink>,
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) interval: Duration,
    pub(crate) wake: Arc<Notify>,
    /// Cancelled once the receiver has stopped: commit the rest and return.
    pub(crate) finish: CancellationToken,
    /// How long the final commit may keep retrying.
    pub(crate) drain: Duration,
}

impl Writer {
    pub(crate) async fn run(self) {
        let mut delay = self.interval;
        let mut failing = false;
        loop {
            if failing {
                // Backing off: a large batch does not cut the wait short.
                tokio::select! {
                    biased;
                    _ = self.finish.cancelled() => break,
                    _ = tokio::time::sleep(delay) => {}
                }
            } else {
                tokio::select! {
                    biased;
                    _ = self.finish.cancelled() => break,
                    _ = tokio::time::sleep(delay) => {}
                    _ = self.wake.notified() => {}
                }
            }
            match self.commit().await {
                Ok(()) => {
                    failing = false;
                    delay = self.interval;
                }
                Err(()) => {
                    delay = if failing {
                        (delay * 2).min(MAX_BACKOFF)
                    } else {
                        self.interval.max(Duration::from_millis(100))
                    };
                    failing = true;
                }
            }
        }
        self.drain().await;
    }

    /// Commits everything waiting now (one batch).
    async fn commit(&self) -> Result<(), ()> {
        let Some(batch) = self.pending.take() else {
            return Ok(());
        };
        let outcome = match self.sink.record(&batch.rows).await {
            Ok(()) => {
                self.pending.committed(&batch);
                tracing::debug!(
                    rows = batch.rows.len(),
                    results = batch.results,
                    "TLS-RPT results committed"
                );
                Ok(())
            }
            Err(e) => {
                tracing::warn!(
                    error = %e,
                    results = batch.results,
                    "cannot commit TLS-RPT results; keeping them in memory and retrying"
                );
                self.pending.restore(batch);
                Err(())
            }
        };
        let label = if outcome.is_ok() { "ok" } else { "error" };
        self.metrics
            .tlsrpt_commits
            .get_or_create(&OutcomeLabels { outcome: label })
            .inc();
        self.metrics
            .tlsrpt_pending_results
            .set(i64::try_from(self.pending.held()).unwrap_or(i64::MAX));
        outcome
    }

    /// After the receiver stopped: commit what is left, retrying until the drain deadline.
    async fn drain(&self) {
        let deadline = Instant::now() + self.drain;
        let mut delay = Duration::from_millis(100);
        while self.pending.waiting() > 0 {
            if self.commit().await.is_ok() {
                continue;
            }
            if Instant::now() + delay > deadline {
                tracing::error!(
                    results = self.pending.held(),
                    "the TLS-RPT store stayed unavailable during shutdown; these results are lost"
                );
                return;
            }
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(MAX_BACKOFF);
        }
    }
}
