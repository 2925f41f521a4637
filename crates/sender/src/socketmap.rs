//! The Postfix socketmap server (interop §1.1–§1.3) over TCP and UNIX sockets.
//!
//! * Netstring framing both ways; requests up to [`MAX_QUERY_BYTES`], replies up to
//!   [`mtasts_proto::socketmap::MAX_REPLY_BYTES`] (larger ones become `TEMP`, see
//!   [`Reply::to_payload`]).
//! * Many connections at once, capped: a permit is taken *before* `accept`, so at the limit
//!   the listener stops accepting instead of queueing work.
//! * One request at a time per connection; pipelined requests are answered in order.
//! * Idle connections are closed after the idle timeout; a request must arrive completely and
//!   be answered within the request timeout.
//! * Broken framing (a non-digit length, an oversized length, a missing comma) closes that
//!   connection only: the stream cannot be resynchronised. A well-framed request that is not
//!   `NAME KEY` gets `PERM`.
//! * Shutdown: stop accepting, let each connection finish the request in progress (and those
//!   already received), close idle ones, and wait for them up to the drain deadline.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use mtasts_proto::socketmap::{MAX_QUERY_BYTES, Reply, Request, decode_netstring, parse_request};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, UnixListener};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::metrics::{Metrics, ProtocolLabels};

/// Answers one socketmap request. The daemon implements it.
pub trait SocketmapHandler: Send + Sync + 'static {
    /// The reply to one well-formed request.
    fn handle(&self, request: Request) -> BoxFuture<'_, Reply>;
}

/// Limits of a socketmap server.
#[derive(Clone, Debug)]
pub struct ServeOptions {
    /// Most connections open at once.
    pub max_connections: usize,
    /// Close a connection idle (between requests) this long.
    pub idle_timeout: Duration,
    /// Time for one request: from its first byte to the reply written.
    pub request_timeout: Duration,
    /// After shutdown, how long to wait for open connections before closing them.
    pub drain_timeout: Duration,
}

impl Default for ServeOptions {
    /// 512 connections, 30 s idle, 60 s per request, 10 s drain.
    fn default() -> Self {
        ServeOptions {
            max_connections: 512,
            idle_timeout: Duration::from_secs(30),
            request_timeout: Duration::from_secs(60),
            drain_timeout: Duration::from_secs(10),
        }
    }
}

/// A bound socketmap listener.
#[derive(Debug)]
pub enum SocketmapListener {
    /// `socketmap:inet:HOST:PORT:NAME`.
    Tcp(TcpListener),
    /// `socketmap:unix:PATH:NAME`.
    Unix(UnixListener),
}

impl From<TcpListener> for SocketmapListener {
    fn from(listener: TcpListener) -> Self {
        SocketmapListener::Tcp(listener)
    }
}

impl From<UnixListener> for SocketmapListener {
    fn from(listener: UnixListener) -> Self {
        SocketmapListener::Unix(listener)
    }
}

/// The bytes read from a socket at once.
const READ_CHUNK: usize = 4096;

/// Most consecutive resource errors (EMFILE…) on `accept` before the listener gives up.
const MAX_ACCEPT_ERRORS: u32 = 64;

/// Serves socketmap requests on `listener` until `shutdown` is cancelled, then drains.
///
/// Returns `Ok` after a shutdown; an error when the listener failed for good (too many
/// consecutive accept errors).
pub async fn serve(
    listener: impl Into<SocketmapListener>,
    handler: Arc<dyn SocketmapHandler>,
    options: ServeOptions,
    metrics: Arc<Metrics>,
    shutdown: CancellationToken,
) -> io::Result<()> {
    let listener = listener.into();
    let permits = Arc::new(Semaphore::new(options.max_connections.max(1)));
    let mut connections = JoinSet::new();
    let mut accept_errors = 0u32;
    let result = loop {
        while connections.try_join_next().is_some() {}
        let permit = tokio::select! {
            _ = shutdown.cancelled() => break Ok(()),
            permit = permits.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                // The semaphore is never closed.
                Err(_) => break Ok(()),
            },
        };
        let accepted = tokio::select! {
            _ = shutdown.cancelled() => break Ok(()),
            accepted = accept(&listener) => accepted,
        };
        let conn = match accepted {
            Ok(conn) => {
                accept_errors = 0;
                conn
            }
            Err(e) if is_connection_error(&e) => continue,
            Err(e) => {
                accept_errors += 1;
                tracing::error!(error = %e, "socketmap accept failed");
                if accept_errors >= MAX_ACCEPT_ERRORS {
                    break Err(e);
                }
                // Out of file descriptors and the like: wait for connections to close.
                let pause = Duration::from_millis(100 * u64::from(accept_errors.min(10)));
                tokio::select! {
                    _ = shutdown.cancelled() => break Ok(()),
                    _ = tokio::time::sleep(pause) => continue,
                }
            }
        };
        let handler = handler.clone();
        let options = options.clone();
        let metrics = metrics.clone();
        let shutdown = shutdown.clone();
        connections.spawn(async move {
            let gauge = metrics
                .connections
                .get_or_create(&ProtocolLabels {
                    protocol: "socketmap",
                })
                .clone();
            gauge.inc();
            match conn {
                Conn::Tcp(stream) => {
                    let _ = stream.set_nodelay(true);
                    connection(stream, &*handler, &options, &metrics, &shutdown).await
                }
                Conn::Unix(stream) => {
                    connection(stream, &*handler, &options, &metrics, &shutdown).await
                }
            }
            gauge.dec();
            drop(permit);
        });
    };
    drain(connections, options.drain_timeout).await;
    result
}

/// Waits for the connections to end, up to `deadline`, then aborts the rest.
async fn drain(mut connections: JoinSet<()>, deadline: Duration) {
    let all = async { while connections.join_next().await.is_some() {} };
    if tokio::time::timeout(deadline, all).await.is_err() {
        tracing::warn!(
            open = connections.len(),
            "socketmap connections still open at the drain deadline; closing them"
        );
        connections.shutdown().await;
    }
}

enum Conn {
    Tcp(tokio::net::TcpStream),
    Unix(tokio::net::UnixStream),
}

async fn accept(listener: &SocketmapListener) -> io::Result<Conn> {
    match listener {
        SocketmapListener::Tcp(l) => l.accept().await.map(|(s, _)| Conn::Tcp(s)),
        SocketmapListener::Unix(l) => l.accept().await.map(|(s, _)| Conn::Unix(s)),
    }
}

fn is_connection_error(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    )
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
            End::Io => Some("io"),
        }
    }
}

/// One connection: read a netstring, answer it, repeat.
async fn connection<S>(
    mut stream: S,
    handler: &dyn SocketmapHandler,
    options: &ServeOptions,
    metrics: &Metrics,
    shutdown: &CancellationToken,
) where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let end = converse(&mut stream, handler, options, shutdown).await;
    if let Some(kind) = end.metric() {
        metrics.socketmap_error(kind);
    }
    tracing::debug!(reason = ?end, "socketmap connection closed");
    let _ = tokio::time::timeout(Duration::from_secs(1), stream.shutdown()).await;
}

async fn converse<S>(
    stream: &mut S,
    handler: &dyn SocketmapHandler,
    options: &ServeOptions,
    shutdown: &CancellationToken,
) -> End
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut buf: Vec<u8> = Vec::with_capacity(512);
    let mut chunk = [0u8; READ_CHUNK];
    // When the request now in `buf` must be complete and answered.
    let mut deadline: Option<Instant> = None;
    loop {
        match decode_netstring(&buf, MAX_QUERY_BYTES) {
            Ok(Some((payload, used))) => {
                buf.drain(..used);
                let until = deadline
                    .take()
                    .unwrap_or_else(|| Instant::now() + options.request_timeout);
                let reply = match parse_request(&payload) {
                    Ok(request) => {
                        match tokio::time::timeout_at(until, handler.handle(request)).await {
                            Ok(reply) => reply,
                            Err(_) => Reply::Temp("lookup timed out".to_string()),
                        }
                    }
                    Err(e) => Reply::Perm(format!("malformed request: {e}")),
                };
                let wire = reply.to_netstring();
                let write = async {
                    stream.write_all(&wire).await?;
                    stream.flush().await
                };
                // The reply gets at least a few seconds even when the lookup used the budget.
                let write_until = until.max(Instant::now() + Duration::from_secs(5));
                match tokio::time::timeout_at(write_until, write).await {
                    Ok(Ok(())) => {}
                    Ok(Err(_)) => return End::Io,
                    Err(_) => return End::Slow,
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
                let read = tokio::select! {
                    biased;
                    _ = shutdown.cancelled(), if idle => return End::Shutdown,
                    read = tokio::time::timeout_at(until, stream.read(&mut chunk)) => read,
                };
                match read {
                    Err(_) if idle => return End::Idle,
                    Err(_) => return End::Slow,
                    Ok(Err(_)) => return End::Io,
                    Ok(Ok(0)) if idle => return End::Closed,
                    Ok(Ok(0)) => return End::Truncated,
                    Ok(Ok(n)) => {
                        if idle {
                            deadline = Some(Instant::now() + options.request_timeout);
                        }
                        buf.extend_from_slice(&chunk[..n]);
                    }
                }
            }
            Err(e) => {
                tracing::debug!(error = %e, "socketmap framing error; closing the connection");
                return End::Framing;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mtasts_proto::socketmap::encode_netstring;

    /// Echoes the key back, for framing tests (the decisions are tested end to end).
    struct Echo;

    impl SocketmapHandler for Echo {
        fn handle(&self, request: Request) -> BoxFuture<'_, Reply> {
            Box::pin(async move {
                if request.key == "slow" {
                    tokio::time::sleep(Duration::from_secs(3600)).await;
                }
                Reply::Ok(format!("{} {}", request.name, request.key))
            })
        }
    }

    async fn start(options: ServeOptions) -> (std::net::SocketAddr, CancellationToken) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let shutdown = CancellationToken::new();
        tokio::spawn(serve(
            listener,
            Arc::new(Echo),
            options,
            Arc::new(Metrics::new()),
            shutdown.clone(),
        ));
        (addr, shutdown)
    }

    /// Reads one reply; bytes of later replies stay in the stream's kernel buffer because
    /// the helper reads one byte at a time.
    async fn read_reply(stream: &mut tokio::net::TcpStream) -> Option<Vec<u8>> {
        let mut buf = Vec::new();
        let mut byte = [0u8; 1];
        loop {
            if let Ok(Some((payload, _))) = decode_netstring(&buf, 200_000) {
                return Some(payload);
            }
            let n = stream.read(&mut byte).await.ok()?;
            if n == 0 {
                return None;
            }
            buf.push(byte[0]);
        }
    }

    #[tokio::test]
    async fn answers_split_and_pipelined_requests_in_order() {
        let (addr, _shutdown) = start(ServeOptions::default()).await;
        let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        let mut wire = encode_netstring(b"m a.example");
        wire.extend(encode_netstring(b"m b.example"));
        wire.extend(encode_netstring(b"m c.example"));
        // Split in the middle of the second request.
        stream.write_all(&wire[..20]).await.unwrap();
        tokio::time::sleep(Duration::from_millis(20)).await;
        stream.write_all(&wire[20..]).await.unwrap();
        for expected in ["OK m a.example", "OK m b.example", "OK m c.example"] {
            assert_eq!(read_reply(&mut stream).await.unwrap(), expected.as_bytes());
        }
    }

    #[tokio::test]
    async fn malformed_request_gets_perm_and_connection_stays() {
        let (addr, _shutdown) = start(ServeOptions::default()).await;
        let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        stream
            .write_all(&encode_netstring(b"nospace"))
            .await
            .unwrap();
        let reply = read_reply(&mut stream).await.unwrap();
        assert!(reply.starts_with(b"PERM "), "{reply:?}");
        stream
            .write_all(&encode_netstring(b"m x.example"))
            .await
            .unwrap();
        assert_eq!(read_reply(&mut stream).await.unwrap(), b"OK m x.example");
    }

    #[tokio::test]
    async fn broken_framing_closes_only_that_connection() {
        let (addr, _shutdown) = start(ServeOptions::default()).await;
        let mut good = tokio::net::TcpStream::connect(addr).await.unwrap();
        for bad in [&b"x5:hello,"[..], b"5:hello!", b"10001:"] {
            let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
            stream.write_all(bad).await.unwrap();
            assert_eq!(read_reply(&mut stream).await, None, "{bad:?}");
        }
        good.write_all(&encode_netstring(b"m ok.example"))
            .await
            .unwrap();
        assert_eq!(read_reply(&mut good).await.unwrap(), b"OK m ok.example");
    }

    #[tokio::test]
    async fn query_of_the_maximum_size_is_accepted() {
        let (addr, _shutdown) = start(ServeOptions::default()).await;
        let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        let mut payload = b"m ".to_vec();
        payload.resize(MAX_QUERY_BYTES, b'a');
        stream.write_all(&encode_netstring(&payload)).await.unwrap();
        let reply = read_reply(&mut stream).await.unwrap();
        assert!(reply.starts_with(b"OK m aaaa"));
    }

    #[tokio::test]
    async fn idle_connections_are_closed() {
        let options = ServeOptions {
            idle_timeout: Duration::from_millis(100),
            ..ServeOptions::default()
        };
        let (addr, _shutdown) = start(options).await;
        let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        stream
            .write_all(&encode_netstring(b"m a.example"))
            .await
            .unwrap();
        assert!(read_reply(&mut stream).await.is_some());
        // Nothing more is sent: the server closes.
        assert_eq!(read_reply(&mut stream).await, None);
    }

    #[tokio::test]
    async fn slow_lookup_gets_temp() {
        let options = ServeOptions {
            request_timeout: Duration::from_millis(100),
            ..ServeOptions::default()
        };
        let (addr, _shutdown) = start(options).await;
        let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        stream
            .write_all(&encode_netstring(b"m slow"))
            .await
            .unwrap();
        let reply = read_reply(&mut stream).await.unwrap();
        assert!(reply.starts_with(b"TEMP "), "{reply:?}");
    }

    #[tokio::test]
    async fn connection_cap_holds_back_accepts() {
        let options = ServeOptions {
            max_connections: 1,
            ..ServeOptions::default()
        };
        let (addr, _shutdown) = start(options).await;
        let mut first = tokio::net::TcpStream::connect(addr).await.unwrap();
        first
            .write_all(&encode_netstring(b"m a.example"))
            .await
            .unwrap();
        assert!(read_reply(&mut first).await.is_some());
        // The second connection is queued by the kernel but not served while the first is open.
        let mut second = tokio::net::TcpStream::connect(addr).await.unwrap();
        second
            .write_all(&encode_netstring(b"m b.example"))
            .await
            .unwrap();
        let early = tokio::time::timeout(Duration::from_millis(200), read_reply(&mut second)).await;
        assert!(early.is_err(), "served beyond the cap");
        drop(first);
        assert_eq!(read_reply(&mut second).await.unwrap(), b"OK m b.example");
    }

    #[tokio::test]
    async fn shutdown_closes_idle_connections_and_returns() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let shutdown = CancellationToken::new();
        let server = tokio::spawn(serve(
            listener,
            Arc::new(Echo),
            ServeOptions::default(),
            Arc::new(Metrics::new()),
            shutdown.clone(),
        ));
        let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        stream
            .write_all(&encode_netstring(b"m a.example"))
            .await
            .unwrap();
        assert!(read_reply(&mut stream).await.is_some());
        shutdown.cancel();
        assert_eq!(read_reply(&mut stream).await, None);
        server.await.unwrap().unwrap();
        assert!(tokio::net::TcpStream::connect(addr).await.is_err());
    }
}
