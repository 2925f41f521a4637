//! The connection machinery shared by the resolver's request-answer protocols on a byte
//! stream (the socketmap, the inbound policy service): one request at a time per
//! connection, pipelined requests answered in order, idle and per-request timeouts, broken
//! framing closes the connection, graceful drain on shutdown. Connections come from the
//! shared accept loop of `mtasts-listen` with the limits of [`ServeOptions`].
//!
//! A protocol says where a request ends in the bytes read so far ([`Framing::frame`]) and
//! writes the answer to one request ([`Framing::answer`]); everything else is here, once.

use std::future::Future;
use std::ops::Range;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use mtasts_listen::{Listener, Server};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::metrics::{Metrics, ProtocolLabels};
use crate::socketmap::ServeOptions;

/// The answer to one request could not be given: close the connection without one.
#[derive(Debug, PartialEq, Eq)]
pub struct Refuse;

/// One request-answer protocol.
pub trait Framing: Send + Sync + 'static {
    /// The `protocol` label of `mtasts_connections_open`, and the name in logs.
    const LABEL: &'static str;

    /// Where the first request in `buf` ends: `Ok(Some((request, used)))` when `buf[request]`
    /// is a whole request and `used` bytes are consumed with it, `Ok(None)` when more bytes
    /// are needed, `Err(why)` when the stream cannot be resynchronised.
    fn frame(buf: &[u8]) -> Result<Option<(Range<usize>, usize)>, String>;

    /// Appends the answer to `request` to `out`, which is written once the future completes.
    /// `until` is when the answer is due. `Err(Refuse)`: the request cannot be answered and
    /// the connection is closed (the implementation logs why).
    fn answer<'a>(
        &'a self,
        request: &'a [u8],
        until: Instant,
        out: &'a mut Vec<u8>,
    ) -> impl Future<Output = Result<(), Refuse>> + Send + 'a;

    /// Counts a connection that ended abnormally (`truncated`, `idle-timeout`,
    /// `request-timeout`, `framing`, `refused`, `io`).
    fn count_end(&self, kind: &'static str);
}

/// Starts serving `protocol` on `listener` (TCP or UNIX); cancelling `shutdown` stops
/// accepting, lets each connection finish the request in progress and closes it, and
/// [`Server::wait`] completes once all are gone (at most `drain_timeout` later).
pub fn spawn<P: Framing>(
    listener: impl Into<Listener>,
    protocol: Arc<P>,
    options: ServeOptions,
    metrics: Arc<Metrics>,
    shutdown: &CancellationToken,
) -> Server {
    let limits = options.connection_limits();
    let options = Arc::new(options);
    Server::spawn(listener, limits, shutdown, move |stream, context| {
        let protocol = protocol.clone();
        let options = options.clone();
        let metrics = metrics.clone();
        async move {
            let gauge = metrics
                .connections
                .get_or_create(&ProtocolLabels { protocol: P::LABEL })
                .clone();
            gauge.inc();
            // Idle, making room for another client, or shutdown: all end the connection
            // between requests.
            let stop = context.stop_token();
            connection(stream, &*protocol, &options, &stop).await;
            gauge.dec();
        }
    })
}

/// Why a connection ended.
#[derive(Debug, PartialEq, Eq)]
enum End {
    /// The client closed (cleanly, between requests).
    Closed,
    /// The client closed in the middle of a request.
    Truncated,
    /// Idle too long.
    Idle,
    /// A request did not arrive or could not be answered in time.
    Slow,
    /// Broken framing.
    Framing,
    /// A request the protocol would not answer.
    Refused,
    /// Shutdown.
    Shutdown,
    /// A read or write error.
    Io,
}

impl End {
    fn metric(&self) -> Option<&'static str> {
        match self {
            End::Closed | End::Shutdown => None,
            End::Truncated => Some("truncated"),
            End::Idle => Some("idle-timeout"),
            End::Slow => Some("request-timeout"),
            End::Framing => Some("framing"),
            End::Refused => Some("refused"),
            End::Io => Some("io"),
        }
    }
}

/// One connection: read a request, answer it, repeat.
async fn connection<S, P>(
    mut stream: S,
    protocol: &P,
    options: &ServeOptions,
    shutdown: &CancellationToken,
) where
    S: AsyncRead + AsyncWrite + Unpin,
    P: Framing,
{
    let end = converse(&mut stream, protocol, options, shutdown).await;
    if let Some(kind) = end.metric() {
        protocol.count_end(kind);
    }
    tracing::debug!(protocol = P::LABEL, reason = ?end, "connection closed");
    let _ = tokio::time::timeout(Duration::from_secs(1), stream.shutdown()).await;
}

/// The bytes read from a socket at once.
const READ_CHUNK: usize = 4096;

async fn converse<S, P>(
    stream: &mut S,
    protocol: &P,
    options: &ServeOptions,
    shutdown: &CancellationToken,
) -> End
where
    S: AsyncRead + AsyncWrite + Unpin,
    P: Framing,
{
    let mut buf: Vec<u8> = Vec::with_capacity(512);
    // Answers are written straight into this buffer, reused for every request.
    let mut out: Vec<u8> = Vec::with_capacity(256);
    let mut chunk = [0u8; READ_CHUNK];
    // When the request now in `buf` must be complete and answered.
    let mut deadline: Option<Instant> = None;
    // Per-request cost (docs/benchmarks.md): the shutdown waiter and the read timer live as
    // long as the connection instead of being registered anew for every request. Moving the
    // timer later does not touch the timer wheel; a lookup or a write that completes at once
    // (a cache hit, a reply that fits the socket buffer) never starts a timer.
    let mut cancelled = std::pin::pin!(shutdown.cancelled());
    let mut read_timer = std::pin::pin!(tokio::time::sleep_until(
        Instant::now() + options.idle_timeout
    ));
    loop {
        match P::frame(&buf) {
            Ok(Some((request, used))) => {
                let until = deadline
                    .take()
                    .unwrap_or_else(|| Instant::now() + options.request_timeout);
                // The request is read where it arrived in `buf`; the bytes are dropped once
                // it is answered.
                out.clear();
                if protocol
                    .answer(&buf[request], until, &mut out)
                    .await
                    .is_err()
                {
                    return End::Refused;
                }
                buf.drain(..used);
                let mut write = std::pin::pin!(async {
                    stream.write_all(&out).await?;
                    stream.flush().await
                });
                let written = match futures::poll!(write.as_mut()) {
                    Poll::Ready(written) => written,
                    Poll::Pending => {
                        // The reply gets at least a few seconds even when the lookup used the
                        // budget.
                        let write_until = until.max(Instant::now() + Duration::from_secs(5));
                        match tokio::time::timeout_at(write_until, write).await {
                            Ok(written) => written,
                            Err(_) => return End::Slow,
                        }
                    }
                };
                if written.is_err() {
                    return End::Io;
                }
                if !buf.is_empty() {
                    deadline = Some(Instant::now() + options.request_timeout);
                    continue;
                }
                if shutdown.is_cancelled() {
                    return End::Shutdown;
                }
            }
            Ok(None) => {
                let idle = buf.is_empty();
                let until = if idle {
                    Instant::now() + options.idle_timeout
                } else {
                    *deadline.get_or_insert_with(|| Instant::now() + options.request_timeout)
                };
                read_timer.as_mut().reset(until);
                // The read comes first: checking the token takes a lock shared by every
                // connection, so it is polled only while no request is waiting. A request
                // that arrives with the shutdown is answered (the check after each reply then
                // ends the connection).
                let read = tokio::select! {
                    biased;
                    read = stream.read(&mut chunk) => Some(read),
                    _ = &mut cancelled, if idle => return End::Shutdown,
                    _ = &mut read_timer => None,
                };
                match read {
                    None if idle => return End::Idle,
                    None => return End::Slow,
                    Some(Err(_)) => return End::Io,
                    Some(Ok(0)) if idle => return End::Closed,
                    Some(Ok(0)) => return End::Truncated,
                    Some(Ok(n)) => {
                        if idle {
                            deadline = Some(Instant::now() + options.request_timeout);
                        }
                        buf.extend_from_slice(&chunk[..n]);
                    }
                }
            }
            Err(e) => {
                tracing::warn!(protocol = P::LABEL, error = %e, "framing error; closing the connection");
                return End::Framing;
            }
        }
    }
}
