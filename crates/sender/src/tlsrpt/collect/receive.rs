//! The receiver: a thread of its own reading the datagram socket, parsing each datagram
//! (libtlsrpt's protocol, `mtasts_proto::tlsrpt::datagram`) and counting it into
//! [`Pending`]. It never waits for the database: senders write without blocking, so every
//! moment not spent reading is a chance for the kernel queue to overflow and a result to
//! be lost at the sender. A bad datagram is counted by kind, logged the first time its kind
//! is seen, and dropped; the loop goes on.

use std::collections::HashSet;
use std::io::ErrorKind;
use std::os::unix::net::UnixDatagram;
use std::sync::Arc;
use std::time::Duration;

use mtasts_proto::rollup::day_of;
use mtasts_proto::tlsrpt::datagram::{MAX_DATAGRAM_BYTES, parse_datagram};
use prometheus_client::metrics::counter::Counter;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::aggregate::Pending;
use crate::clock::Clock;
use crate::metrics::{KindLabels, Metrics, OutcomeLabels};

/// How often the blocked read wakes up to notice a shutdown.
const STOP_POLL: Duration = Duration::from_millis(100);

/// Everything the receiver thread works with.
pub(crate) struct Receiver {
    pub(crate) socket: UnixDatagram,
    pub(crate) pending: Arc<Pending>,
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) clock: Arc<dyn Clock>,
    /// Woken when a batch is worth writing before the interval ends.
    pub(crate) wake: Arc<Notify>,
    /// Results waiting that make a batch "large".
    pub(crate) large: usize,
    pub(crate) stop: CancellationToken,
}

impl Receiver {
    /// Reads until `stop` is cancelled (noticed within [`STOP_POLL`]).
    pub(crate) fn run(self) {
        if let Err(e) = self.socket.set_read_timeout(Some(STOP_POLL)) {
            tracing::error!(error = %e, "cannot set the TLS-RPT socket's read timeout");
        }
        // One byte more than the largest datagram accepted: a longer one arrives truncated
        // to this length and the parser refuses it as too large.
        let mut buf = vec![0u8; MAX_DATAGRAM_BYTES + 1];
        let success = self.outcome_counter("success");
        let failure = self.outcome_counter("failure");
        let mut logged: HashSet<&'static str> = HashSet::new();
        while !self.stop.is_cancelled() {
            let n = match self.socket.recv(&mut buf) {
                Ok(n) => n,
                Err(e)
                    if matches!(
                        e.kind(),
                        ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted
                    ) =>
                {
                    continue;
                }
                Err(e) => {
                    // Not expected on a bound datagram socket; pause so a persistent error
                    // does not spin.
                    tracing::error!(error = %e, "reading the TLS-RPT socket failed");
                    std::thread::sleep(STOP_POLL);
                    continue;
                }
            };
            let kind = match parse_datagram(&buf[..n]) {
                Ok(result) => {
                    let day = day_of(i64::try_from(self.clock.now()).unwrap_or(i64::MAX));
                    match self.pending.add(day, &result) {
                        Ok(added) => {
                            success.inc_by(added.successes);
                            failure.inc_by(added.failures);
                            self.metrics
                                .tlsrpt_pending_results
                                .set(i64::try_from(added.held).unwrap_or(i64::MAX));
                            if added.waiting >= self.large {
                                self.wake.notify_one();
                            }
                            continue;
                        }
                        Err(refused) => {
                            if logged.insert(refused.kind()) {
                                tracing::warn!(
                                    kind = refused.kind(),
                                    held = self.pending.held(),
                                    "TLS-RPT results are not being committed fast enough; \
                                     dropping datagrams until the store catches up \
                                     (logged once; counted in mtasts_resolver_tlsrpt_datagrams_dropped_total)"
                                );
                            }
                            refused.kind()
                        }
                    }
                }
                Err(e) => {
                    let kind = e.kind();
                    if logged.insert(kind) {
                        tracing::warn!(
                            kind,
                            bytes = n,
                            error = %e,
                            "dropped a bad TLS-RPT datagram (logged once per kind; counted in \
                             mtasts_resolver_tlsrpt_datagrams_dropped_total)"
                        );
                    } else {
                        tracing::debug!(kind, bytes = n, error = %e, "dropped a bad TLS-RPT datagram");
                    }
                    kind
                }
            };
            self.metrics
                .tlsrpt_datagrams_dropped
                .get_or_create(&KindLabels { kind })
                .inc();
        }
        // The writer commits whatever is left after this returns.
        self.wake.notify_one();
    }

    fn outcome_counter(&self, outcome: &'static str) -> Counter {
        self.metrics
            .tlsrpt_results
            .get_or_create(&OutcomeLabels { outcome })
            .clone()
    }
}
