//! [`Server`]: the accept loop, admission (caps and eviction), the per-connection idle watch
//! and the graceful drain. The policy is described in the crate docs.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::pin;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;
use tokio_util::sync::{CancellationToken, WaitForCancellationFuture};
use tokio_util::task::TaskTracker;

use crate::limits::ConnectionLimits;
pub use crate::registry::StopReason;
use crate::registry::{Entry, Registry};
use crate::stream::{Activity, Clock, Listener, Peer, Stream};

/// The first pause after an accept error; it doubles with each consecutive error.
const ACCEPT_PAUSE_MIN: Duration = Duration::from_millis(10);
/// The longest pause after accept errors.
const ACCEPT_PAUSE_MAX: Duration = Duration::from_secs(1);
/// At most one log line per this interval for accept errors; the others are counted.
const ACCEPT_LOG_INTERVAL: Duration = Duration::from_secs(10);

/// What a connection's handler gets besides the stream: who the peer is, and when to stop.
#[derive(Debug)]
pub struct ConnectionContext {
    peer: Peer,
    entry: Arc<Entry>,
}

impl ConnectionContext {
    /// The client.
    pub fn peer(&self) -> Peer {
        self.peer
    }

    /// Completes when the loop asks this connection to close (idle, evicted, shutdown): end
    /// after the current request. A handler that does not is dropped
    /// [`ConnectionLimits::drain_grace`] later.
    pub fn stopped(&self) -> WaitForCancellationFuture<'_> {
        self.entry.stop.cancelled()
    }

    /// Whether the connection was asked to close.
    pub fn is_stopped(&self) -> bool {
        self.entry.stop.is_cancelled()
    }

    /// The token behind [`stopped`](Self::stopped), for code that wants to own it. Each
    /// connection has its own (a child of the listener's), so waiting on it does not contend
    /// with the other connections.
    pub fn stop_token(&self) -> CancellationToken {
        self.entry.stop.clone()
    }

    /// Why the connection was asked to close, once it was.
    pub fn stop_reason(&self) -> Option<StopReason> {
        self.entry.reason()
    }
}

#[derive(Debug)]
struct Shared {
    limits: ConnectionLimits,
    /// Stop accepting and ask every connection to close.
    stop: CancellationToken,
    /// Drop every connection now (only when the [`Server`] is dropped).
    kill: CancellationToken,
    tracker: TaskTracker,
    registry: Arc<Registry>,
}

/// A running listener: its accept loop and its connections. Dropping it stops everything at
/// once; [`Server::shutdown`] (or cancelling the token given to [`Server::spawn`] and
/// awaiting [`Server::wait`]) drains gracefully.
#[derive(Debug)]
pub struct Server {
    shared: Arc<Shared>,
    local_addr: Option<SocketAddr>,
}

impl Server {
    /// Spawns the accept loop on `listener`. Each admitted connection runs
    /// `handler(stream, context)` on its own task. Cancelling `shutdown` starts the drain.
    ///
    /// # Panics
    ///
    /// Outside a Tokio runtime.
    pub fn spawn<H, Fut>(
        listener: impl Into<Listener>,
        limits: ConnectionLimits,
        shutdown: &CancellationToken,
        handler: H,
    ) -> Server
    where
        H: Fn(Stream, ConnectionContext) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let listener = listener.into();
        let local_addr = listener.local_addr();
        let shared = Arc::new(Shared {
            limits,
            stop: shutdown.child_token(),
            kill: CancellationToken::new(),
            tracker: TaskTracker::new(),
            registry: Arc::new(Registry::new()),
        });
        shared
            .tracker
            .spawn(accept_loop(listener, shared.clone(), handler));
        Server { shared, local_addr }
    }

    /// Serves `listener` until `shutdown` is cancelled, then drains and returns.
    pub async fn run<H, Fut>(
        listener: impl Into<Listener>,
        limits: ConnectionLimits,
        shutdown: &CancellationToken,
        handler: H,
    ) where
        H: Fn(Stream, ConnectionContext) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        Server::spawn(listener, limits, shutdown, handler)
            .wait()
            .await;
    }

    /// The TCP address it listens on (`None` for a UNIX socket).
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.local_addr
    }

    /// Connections open now.
    pub fn open_connections(&self) -> usize {
        self.shared.registry.count_all()
    }

    /// Completes once the loop has stopped (its token was cancelled) and every connection has
    /// ended: at most [`ConnectionLimits::drain_grace`] after the cancellation.
    pub async fn wait(&self) {
        self.shared.stop.cancelled().await;
        self.shared.tracker.wait().await;
    }

    /// Stops accepting (the listening socket is closed), asks every connection to finish its
    /// current request, and completes when they are gone (dropped after the grace period).
    pub async fn shutdown(&self) {
        self.shared.stop.cancel();
        self.wait().await;
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.shared.stop.cancel();
        self.shared.kill.cancel();
    }
}

async fn accept_loop<H, Fut>(listener: Listener, shared: Arc<Shared>, handler: H)
where
    H: Fn(Stream, ConnectionContext) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let limits = &shared.limits;
    let permits = Arc::new(Semaphore::new(
        limits.max_connections.clamp(1, Semaphore::MAX_PERMITS),
    ));
    let mut pause = Duration::ZERO;
    let mut errors = ErrorLog::default();
    let clock = shared.registry.clone();
    let clock_stop = shared.stop.clone();
    shared.tracker.spawn(async move {
        // Keeps the cheap clock of the connections' traffic stamps fresh while accepting.
        loop {
            tokio::select! {
                () = clock_stop.cancelled() => return,
                () = tokio::time::sleep(Clock::RESOLUTION) => { clock.now_ms(); }
            }
        }
    });
    loop {
        // A permit before `accept` when one is free. At the cap the loop still accepts the
        // next client, alone, and makes room for it before accepting anything else.
        let free = permits.clone().try_acquire_owned().ok();
        let accepted = tokio::select! {
            biased;
            () = shared.stop.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        let (socket, peer) = match accepted {
            Ok(accepted) => {
                pause = Duration::ZERO;
                accepted
            }
            // The client gave up before we got to it: nothing to do.
            Err(e) if is_connection_error(&e) => continue,
            Err(e) => {
                pause = (pause * 2).clamp(ACCEPT_PAUSE_MIN, ACCEPT_PAUSE_MAX);
                errors.record(&e, pause);
                if is_out_of_files(&e)
                    && let Some(victim) = shared.registry.longest_idle(None, limits.evict_after)
                {
                    victim.stop(StopReason::Evicted);
                }
                tokio::select! {
                    () = shared.stop.cancelled() => break,
                    () = tokio::time::sleep(pause) => continue,
                }
            }
        };
        let permit = match free {
            Some(permit) => permit,
            None => match admit(&shared, &permits).await {
                Some(permit) => permit,
                None => {
                    tracing::debug!(?peer, "connection limit reached, closing");
                    continue;
                }
            },
        };
        let client = peer.client();
        if shared.registry.count(client) >= limits.max_per_client.max(1) {
            match shared
                .registry
                .longest_idle(Some(client), limits.evict_after)
            {
                Some(victim) => victim.stop(StopReason::Evicted),
                None => {
                    tracing::debug!(?peer, "per-client connection limit reached, closing");
                    continue;
                }
            }
        }
        let activity = Arc::new(Activity::new(shared.registry.clock.clone()));
        let registered =
            shared
                .registry
                .insert(client, activity.clone(), shared.stop.child_token());
        let entry = registered.entry.clone();
        let connection = handler(
            Stream::new(socket, activity),
            ConnectionContext {
                peer,
                entry: entry.clone(),
            },
        );
        let task_shared = shared.clone();
        shared.tracker.spawn(async move {
            // Dropped in reverse order: the table is updated before the slot is released, so
            // the loop admitting with that slot sees the right counts.
            let _permit = permit;
            let _registered = registered;
            let mut connection = pin!(connection);
            let limits = &task_shared.limits;
            tokio::select! {
                biased;
                () = &mut connection => return,
                () = entry.stop.cancelled() => {}
                () = watch_idle(&task_shared.registry, &entry, limits.idle_timeout) => {
                    entry.stop(StopReason::Idle);
                }
            }
            tokio::select! {
                () = connection => {}
                () = tokio::time::sleep(limits.drain_grace) => {
                    tracing::debug!(?peer, reason = ?entry.reason(), "connection did not finish within the grace period; dropped");
                }
                () = task_shared.kill.cancelled() => {}
            }
        });
    }
    // Closing the tracker lets `wait` complete once the connections are gone; the listening
    // socket is closed when `listener` drops here.
    shared.tracker.close();
}

/// Makes room for one client at the cap: asks the longest-idle connection to close and waits
/// for its slot, or waits up to `admit_wait` for one to free. `None`: no room came.
async fn admit(shared: &Shared, permits: &Arc<Semaphore>) -> Option<OwnedSemaphorePermit> {
    // A slot may have freed while the loop waited in `accept`.
    if let Ok(permit) = permits.clone().try_acquire_owned() {
        return Some(permit);
    }
    let limits = &shared.limits;
    let recheck = (limits.evict_after / 2).clamp(Duration::from_millis(10), Duration::from_secs(1));
    let mut deadline = Instant::now() + limits.admit_wait;
    let mut evicted = false;
    loop {
        if !evicted && let Some(victim) = shared.registry.longest_idle(None, limits.evict_after) {
            victim.stop(StopReason::Evicted);
            evicted = true;
            // The victim ends within its grace period, and its slot comes back then.
            deadline =
                deadline.max(Instant::now() + limits.drain_grace + Duration::from_millis(100));
        }
        let check = if evicted {
            deadline
        } else {
            deadline.min(Instant::now() + recheck)
        };
        tokio::select! {
            biased;
            () = shared.stop.cancelled() => return None,
            permit = permits.clone().acquire_owned() => return permit.ok(),
            () = tokio::time::sleep_until(check) => {
                if Instant::now() >= deadline {
                    return None;
                }
            }
        }
    }
}

/// Completes once no byte has moved on the connection for `idle` (noticed within 1.25 ×
/// `idle`: sampling a counter every `idle / 4` is cheaper than reading the clock per I/O).
async fn watch_idle(registry: &Registry, entry: &Entry, idle: Duration) {
    let tick = (idle / 4).max(Duration::from_millis(1));
    let idle_ms = u64::try_from(idle.as_millis()).unwrap_or(u64::MAX).max(1);
    loop {
        tokio::time::sleep(tick).await;
        if entry.quiet_ms(registry.now_ms()) >= idle_ms {
            return;
        }
    }
}

/// Errors about one connection that the client already abandoned.
fn is_connection_error(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    )
}

/// EMFILE or ENFILE: closing a connection frees what the next accept needs.
fn is_out_of_files(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(code) if code == rustix::io::Errno::MFILE.raw_os_error() || code == rustix::io::Errno::NFILE.raw_os_error())
}

/// Logs accept errors at a bounded rate: the first at once, then at most one line per
/// [`ACCEPT_LOG_INTERVAL`] with the number not logged in between.
#[derive(Debug, Default)]
struct ErrorLog {
    last: Option<Instant>,
    suppressed: u64,
}

impl ErrorLog {
    fn record(&mut self, error: &io::Error, pause: Duration) {
        let now = Instant::now();
        if self
            .last
            .is_some_and(|last| now.duration_since(last) < ACCEPT_LOG_INTERVAL)
        {
            self.suppressed += 1;
            return;
        }
        tracing::warn!(
            %error,
            pause_ms = pause.as_millis(),
            not_logged = self.suppressed,
            "accept failed; pausing"
        );
        self.last = Some(now);
        self.suppressed = 0;
    }
}

#[cfg(test)]
mod tests;
