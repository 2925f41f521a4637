//! TLS-RPT collection: the results MTAs report about each delivery's TLS, received as
//! libtlsrpt datagrams on a UNIX socket (Postfix 3.10+ `smtp_tlsrpt_socket_name`, a drop-in
//! for tlsrpt-collectd) and as JSON over HTTP ([`intake`]), aggregated in memory per (UTC
//! day of arrival, recipient domain, TLSRPT record, policy) and committed to the TLS-RPT
//! store in batches.
//!
//! ```text
//! datagram socket ─ receiver thread ─ parse ─▶ Pending (bounded) ─▶ writer task ─▶ store
//! POST /v1/tlsrpt/results ─ parse ─ aggregate ─────────────────────────────────▶ store ─▶ 200
//! ```
//!
//! * [`socket`]: binding (stale socket replaced, owner/group/mode, receive buffer).
//! * [`receive`]: the receiver thread; it never waits for the database.
//! * [`aggregate`]: what waits in memory, bounded by `max_pending_results`; beyond it
//!   datagrams are dropped and counted (`kind="backlog"`).
//! * [`writer`]: one transaction every `commit_interval_ms`, sooner when a quarter of the
//!   bound waits; retries with backoff; commits the rest at shutdown.
//!
//! What is durable: a datagram has no acknowledgement, so its result is safe once the
//! writer's batch is committed (at most one commit interval later); `kill -9` loses only
//! the results of that interval. An HTTP 200 is sent after its own commit.

pub mod aggregate;
pub mod intake;
pub mod receive;
pub mod sink;
pub mod socket;
pub mod writer;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::clock::Clock;
use crate::config::UnixSocketConfig;
use crate::error::RunError;
use crate::metrics::Metrics;

pub use aggregate::Pending;
pub use intake::{Intake, RESULTS_PATH};
pub use sink::ResultSink;

/// How the collector runs (from `[tlsrpt]`).
#[derive(Clone, Debug)]
pub struct CollectOptions {
    /// The datagram socket; none: HTTP intake only.
    pub socket: Option<UnixSocketConfig>,
    /// Most results held in memory before datagrams are dropped.
    pub max_pending_results: usize,
    /// Time between commits.
    pub commit_interval: Duration,
    /// How long the final commit at shutdown may keep retrying.
    pub drain: Duration,
}

/// The running collector.
pub struct Collector {
    pending: Arc<Pending>,
    intake: Intake,
    socket_path: Option<PathBuf>,
    recv_buffer: usize,
    stop: CancellationToken,
    finish: CancellationToken,
    receiver: Option<std::thread::JoinHandle<()>>,
    writer: tokio::task::JoinHandle<()>,
}

impl Collector {
    /// Binds the socket (if configured) and starts the receiver thread and the writer task
    /// (call within a Tokio runtime). Results are committed through `sink`.
    pub fn start(
        options: &CollectOptions,
        sink: Arc<dyn ResultSink>,
        metrics: Arc<Metrics>,
        clock: Arc<dyn Clock>,
    ) -> Result<Collector, RunError> {
        let pending = Arc::new(Pending::new(options.max_pending_results));
        let wake = Arc::new(Notify::new());
        let stop = CancellationToken::new();
        let finish = CancellationToken::new();
        let bound = options.socket.as_ref().map(socket::bind).transpose()?;
        let recv_buffer = bound.as_ref().map_or(0, |b| b.recv_buffer);
        let receiver = match bound {
            Some(bound) => {
                let receiver = receive::Receiver {
                    socket: bound.socket,
                    pending: pending.clone(),
                    metrics: metrics.clone(),
                    clock: clock.clone(),
                    wake: wake.clone(),
                    large: (options.max_pending_results / 4).max(1),
                    stop: stop.clone(),
                };
                Some(
                    std::thread::Builder::new()
                        .name("tlsrpt-receiver".to_string())
                        .spawn(move || receiver.run())
                        .map_err(|source| RunError::Io {
                            what: "cannot start the TLS-RPT receiver thread".to_string(),
                            source,
                        })?,
                )
            }
            None => None,
        };
        let writer = tokio::spawn(
            writer::Writer {
                pending: pending.clone(),
                sink: sink.clone(),
                metrics: metrics.clone(),
                interval: options.commit_interval,
                wake,
                finish: finish.clone(),
                drain: options.drain,
            }
            .run(),
        );
        let socket_path = options.socket.as_ref().map(|s| s.path.clone());
        tracing::info!(
            socket = ?socket_path,
            recv_buffer,
            max_pending_results = options.max_pending_results,
            commit_interval_ms = options.commit_interval.as_millis() as u64,
            "TLS-RPT collector running"
        );
        Ok(Collector {
            pending,
            intake: Intake::new(sink, metrics, clock),
            socket_path,
            recv_buffer,
            stop,
            finish,
            receiver,
            writer,
        })
    }

    /// The HTTP intake committing to the same store.
    pub fn intake(&self) -> Intake {
        self.intake.clone()
    }

    /// The datagram socket's path, if one is bound.
    pub fn socket_path(&self) -> Option<&Path> {
        self.socket_path.as_deref()
    }

    /// The receive buffer the kernel gave the socket (0 without a socket).
    pub fn recv_buffer(&self) -> usize {
        self.recv_buffer
    }

    /// Results received and not yet committed.
    pub fn held(&self) -> usize {
        self.pending.held()
    }

    /// Stops receiving, commits what is pending (retrying up to the drain time), removes the
    /// socket file.
    pub async fn shutdown(mut self) {
        self.stop.cancel();
        if let Some(receiver) = self.receiver.take() {
            // The receiver notices the stop within its poll interval.
            let _ = tokio::task::spawn_blocking(move || receiver.join()).await;
        }
        self.finish.cancel();
        let _ = (&mut self.writer).await;
        if let Some(path) = &self.socket_path {
            let _ = std::fs::remove_file(path);
        }
        tracing::info!("TLS-RPT collector stopped");
    }
}

/// The collector options of a configuration's `[tlsrpt]` section.
pub fn options(config: &crate::Config) -> CollectOptions {
    CollectOptions {
        socket: config.tlsrpt.socket.clone(),
        max_pending_results: config.tlsrpt.max_pending_results,
        commit_interval: Duration::from_millis(config.tlsrpt.commit_interval_ms),
        drain: Duration::from_secs(config.drain_timeout.max(1)),
    }
}

/// Starts the collector of `config` committing to `db` (the TLS-RPT subsystem's store).
pub fn start_with_db(
    config: &crate::Config,
    db: mtasts_store::tlsrpt::TlsrptDb,
    metrics: Arc<Metrics>,
) -> Result<Collector, RunError> {
    Collector::start(
        &options(config),
        Arc::new(db),
        metrics,
        Arc::new(crate::clock::SystemClock),
    )
}
