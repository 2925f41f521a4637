//! The accept loop, the connection cap, timeouts and graceful shutdown, shared by the HTTPS
//! policy host and the HTTP-01 listener.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use hyper_util::server::graceful::GracefulConnection;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::Limits;

/// How long the accept loop pauses after an accept error (typically out of file
/// descriptors), so it does not spin while connections drain.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(50);

/// Shutdown state shared by a listener's accept loop and its connections.
#[derive(Debug, Default)]
pub(crate) struct Control {
    /// Stop accepting; open connections finish what they are doing and close.
    stop: CancellationToken,
    /// Drop every connection now (always after `stop`).
    kill: CancellationToken,
    tracker: TaskTracker,
}

impl Control {
    /// A connection's own view of `stop`. Polling a token's future takes its waiter lock,
    /// and a connection polls it on every wake-up; a child token per connection keeps that
    /// lock uncontended instead of shared by every connection of the listener.
    pub(crate) fn stop_token(&self) -> CancellationToken {
        self.stop.child_token()
    }
}

/// A running listener: its accept loop and connections.
#[derive(Debug)]
pub(crate) struct Server {
    control: Arc<Control>,
    local_addr: Option<SocketAddr>,
    grace: Duration,
}

impl Server {
    /// Spawns the accept loop on `listener`; each accepted connection, while under
    /// `limits.max_connections`, is served by `serve` on its own task.
    pub(crate) fn start<F, Fut>(listener: TcpListener, limits: &Limits, serve: F) -> Server
    where
        F: Fn(TcpStream, Arc<Control>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let control = Arc::new(Control::default());
        let local_addr = listener.local_addr().ok();
        let permits = Arc::new(Semaphore::new(
            limits.max_connections.min(Semaphore::MAX_PERMITS),
        ));
        control
            .tracker
            .spawn(accept_loop(listener, permits, control.clone(), serve));
        Server {
            control,
            local_addr,
            grace: limits.shutdown_grace,
        }
    }

    pub(crate) fn local_addr(&self) -> Option<SocketAddr> {
        self.local_addr
    }

    /// Stops accepting (the listening socket is closed), lets open connections finish their
    /// requests for up to the grace period, then drops what is left.
    pub(crate) async fn shutdown(&self) {
        self.control.stop.cancel();
        self.control.tracker.close();
        if tokio::time::timeout(self.grace, self.control.tracker.wait())
            .await
            .is_err()
        {
            self.control.kill.cancel();
            self.control.tracker.wait().await;
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.control.stop.cancel();
        self.control.kill.cancel();
        self.control.tracker.close();
    }
}

async fn accept_loop<F, Fut>(
    listener: TcpListener,
    permits: Arc<Semaphore>,
    control: Arc<Control>,
    serve: F,
) where
    F: Fn(TcpStream, Arc<Control>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    loop {
        let accepted = tokio::select! {
            biased;
            () = control.stop.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((tcp, peer)) => {
                let Ok(permit) = permits.clone().try_acquire_owned() else {
                    // Closing at once is cheaper for everyone than queueing: the client
                    // retries or tries another address.
                    tracing::debug!(%peer, "connection limit reached, closing");
                    drop(tcp);
                    continue;
                };
                // Responses are one small write; Nagle would only delay them.
                let _ = tcp.set_nodelay(true);
                let connection = serve(tcp, control.clone());
                control.tracker.spawn(async move {
                    connection.await;
                    drop(permit);
                });
            }
            Err(e) => {
                tracing::warn!(error = %e, "accept failed");
                tokio::select! {
                    () = control.stop.cancelled() => break,
                    () = tokio::time::sleep(ACCEPT_ERROR_PAUSE) => {}
                }
            }
        }
    }
}

/// Counts successful reads and writes of one connection, for the idle timeout.
#[derive(Debug, Default)]
pub(crate) struct Activity(AtomicU64);

impl Activity {
    fn touch(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }

    /// Completes once no byte has moved for at least `idle` (and at most 1.5 × `idle`):
    /// checking a counter every `idle / 2` is far cheaper than reading the clock on every
    /// read and write.
    async fn idle(&self, idle: Duration) {
        let tick = (idle / 2).max(Duration::from_millis(1));
        let mut last = self.0.load(Ordering::Relaxed);
        let mut quiet_ticks = 0;
        loop {
            tokio::time::sleep(tick).await;
            let now = self.0.load(Ordering::Relaxed);
            if now == last {
                quiet_ticks += 1;
                if quiet_ticks >= 2 {
                    return;
                }
            } else {
                quiet_ticks = 0;
                last = now;
            }
        }
    }
}

/// A stream that records its traffic in an [`Activity`].
#[derive(Debug)]
pub(crate) struct Tracked<S> {
    inner: S,
    activity: Arc<Activity>,
}

impl<S> Tracked<S> {
    pub(crate) fn new(inner: S, activity: Arc<Activity>) -> Self {
        Tracked { inner, activity }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Tracked<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let result = Pin::new(&mut this.inner).poll_read(cx, buf);
        if buf.filled().len() != before {
            this.activity.touch();
        }
        result
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Tracked<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let result = Pin::new(&mut this.inner).poll_write(cx, buf);
        if matches!(result, Poll::Ready(Ok(n)) if n > 0) {
            this.activity.touch();
        }
        result
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let result = Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        if matches!(result, Poll::Ready(Ok(n)) if n > 0) {
            this.activity.touch();
        }
        result
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

/// Runs one HTTP connection to its end: closes it gracefully (in-flight requests finish,
/// HTTP/2 gets a GOAWAY) when it has been idle for `limits.idle_timeout` or `stop` (from
/// [`Control::stop_token`]) fires, and drops it if that takes longer than
/// `limits.shutdown_grace` (a client that does not read its response) or the listener is
/// killed.
pub(crate) async fn drive<C>(
    conn: C,
    activity: &Activity,
    limits: &Limits,
    stop: &CancellationToken,
    control: &Control,
) where
    C: GracefulConnection,
    C::Error: std::fmt::Display,
{
    let mut conn = pin!(conn);
    let reason = tokio::select! {
        result = conn.as_mut() => {
            if let Err(e) = result {
                tracing::debug!(error = %e, "connection ended with an error");
            }
            return;
        }
        () = activity.idle(limits.idle_timeout) => "idle",
        // `kill` always comes with `stop`, so it is only watched from here on.
        () = stop.cancelled() => "shutdown",
    };
    tracing::trace!(reason, "closing connection");
    conn.as_mut().graceful_shutdown();
    tokio::select! {
        _ = conn => {}
        () = tokio::time::sleep(limits.shutdown_grace) => {}
        () = control.kill.cancelled() => {}
    }
}
