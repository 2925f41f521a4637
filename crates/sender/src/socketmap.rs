//! The Postfix socketmap server (interop §1.1–§1.3) over TCP and UNIX sockets.
//!
//! * Netstring framing both ways; requests up to [`MAX_QUERY_BYTES`], replies up to
//!   [`mtasts_proto::socketmap::MAX_REPLY_BYTES`] (larger ones become `TEMP`, see
//!   [`Reply::to_payload`]).
//! * The connection machinery ([`crate::framed`], shared with the inbound policy service):
//!   many connections at once, on the shared accept loop of `mtasts-listen` (its policy:
//!   a permit before `accept`, bounded pauses on accept errors, graceful drain): capped at
//!   [`ServeOptions::max_connections`]. At the cap, the connection quiet for the longest (at
//!   least [`ServeOptions::evict_after`]) is closed between requests to make room for the new
//!   one, so idle connections of one local process cannot stall every Postfix lookup; when
//!   none is, the new one waits for a free slot up to the request timeout.
//! * One request at a time per connection; pipelined requests are answered in order.
//! * Idle connections are closed after the idle timeout; a request must arrive completely and
//!   be answered within the request timeout.
//! * Broken framing (a non-digit length, an oversized length, a missing comma) closes that
//!   connection only: the stream cannot be resynchronised. A well-framed request that is not
//!   `NAME KEY` gets `PERM`.
//! * Shutdown: stop accepting, let each connection finish the request in progress (and those
//!   already received), close idle ones, and wait for them up to the drain deadline.

use std::io;
use std::ops::Range;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use futures::future::BoxFuture;
use mtasts_listen::{ConnectionLimits, Listener, Server};
use mtasts_proto::socketmap::{
    MAX_QUERY_BYTES, Reply, Request, decode_netstring_span, parse_request,
};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::framed::{Framing, Refuse};
use crate::metrics::Metrics;

/// Answers one socketmap request. The daemon implements it.
pub trait SocketmapHandler: Send + Sync + 'static {
    /// The reply to one well-formed request (borrowed from the connection's input buffer).
    fn handle<'a>(&'a self, request: Request<'a>) -> BoxFuture<'a, Reply>;
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
    /// At the cap, a connection quiet this long may be closed to make room for a new one.
    pub evict_after: Duration,
}

impl Default for ServeOptions {
    /// 512 connections, 30 s idle, 60 s per request, 10 s drain, 1 s quiet to make room.
    fn default() -> Self {
        ServeOptions {
            max_connections: 512,
            idle_timeout: Duration::from_secs(30),
            request_timeout: Duration::from_secs(60),
            drain_timeout: Duration::from_secs(10),
            evict_after: Duration::from_secs(1),
        }
    }
}

impl ServeOptions {
    /// What the shared accept loop applies. Every Postfix process connects from the same
    /// address (or the UNIX socket), so the per-client cap is the whole cap. The loop's idle
    /// limit is only a backstop: `converse` enforces the idle and request timeouts exactly.
    pub fn connection_limits(&self) -> ConnectionLimits {
        ConnectionLimits {
            max_connections: self.max_connections,
            max_per_client: self.max_connections,
            idle_timeout: self.idle_timeout + self.request_timeout,
            evict_after: self.evict_after,
            admit_wait: self.request_timeout,
            drain_grace: self.drain_timeout,
        }
    }
}

/// Starts serving socketmap requests on `listener` (TCP or UNIX); cancelling `shutdown`
/// stops accepting, lets each connection finish the request in progress and closes it, and
/// [`Server::wait`] completes once all are gone (at most `drain_timeout` later).
pub fn spawn(
    listener: impl Into<Listener>,
    handler: Arc<dyn SocketmapHandler>,
    options: ServeOptions,
    metrics: Arc<Metrics>,
    shutdown: &CancellationToken,
) -> Server {
    let protocol = Arc::new(Socketmap {
        handler,
        metrics: metrics.clone(),
    });
    crate::framed::spawn(listener, protocol, options, metrics, shutdown)
}

/// Serves socketmap requests on `listener` until `shutdown` is cancelled, then drains.
pub async fn serve(
    listener: impl Into<Listener>,
    handler: Arc<dyn SocketmapHandler>,
    options: ServeOptions,
    metrics: Arc<Metrics>,
    shutdown: CancellationToken,
) -> io::Result<()> {
    spawn(listener, handler, options, metrics, &shutdown)
        .wait()
        .await;
    Ok(())
}

/// The socketmap on the shared connection machinery: netstrings both ways.
struct Socketmap {
    handler: Arc<dyn SocketmapHandler>,
    metrics: Arc<Metrics>,
}

impl Framing for Socketmap {
    const LABEL: &'static str = "socketmap";

    fn frame(buf: &[u8]) -> Result<Option<(Range<usize>, usize)>, String> {
        decode_netstring_span(buf, MAX_QUERY_BYTES).map_err(|e| e.to_string())
    }

    async fn answer(
        &self,
        request: &[u8],
        until: Instant,
        out: &mut Vec<u8>,
    ) -> Result<(), Refuse> {
        let reply = match parse_request(request) {
            Ok(request) => {
                let mut lookup = self.handler.handle(request);
                match futures::poll!(lookup.as_mut()) {
                    Poll::Ready(reply) => reply,
                    Poll::Pending => match tokio::time::timeout_at(until, lookup).await {
                        Ok(reply) => reply,
                        Err(_) => Reply::Temp("lookup timed out".to_string()),
                    },
                }
            }
            Err(e) => Reply::Perm(format!("malformed request: {e}")),
        };
        reply.append_netstring(out);
        Ok(())
    }

    fn count_end(&self, kind: &'static str) {
        self.metrics.socketmap_error(kind);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mtasts_proto::socketmap::{decode_netstring, encode_netstring};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// Echoes the key back, for framing tests (the decisions are tested end to end).
    struct Echo;

    impl SocketmapHandler for Echo {
        fn handle<'a>(&'a self, request: Request<'a>) -> BoxFuture<'a, Reply> {
            Box::pin(async move {
                if request.key == "slow" {
                    tokio::time::sleep(Duration::from_secs(3600)).await;
                }
                Reply::Ok(format!("{} {}", request.name, request.key).into())
            })
        }
    }

    async fn start(options: ServeOptions) -> (std::net::SocketAddr, CancellationToken) {
        use tokio::net::TcpListener;
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
            // The first connection is never quiet long enough to make room (see below).
            evict_after: Duration::from_secs(60),
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
    async fn idle_connections_of_another_process_do_not_stall_lookups() {
        /// One request and its reply (`None`: closed).
        async fn ask(stream: &mut tokio::net::TcpStream, query: &[u8]) -> Option<Vec<u8>> {
            stream.write_all(&encode_netstring(query)).await.ok()?;
            read_reply(stream).await
        }
        let options = ServeOptions {
            max_connections: 4,
            evict_after: Duration::from_millis(100),
            ..ServeOptions::default()
        };
        let (addr, _shutdown) = start(options).await;
        let mut idle = Vec::new();
        for _ in 0..4 {
            let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
            assert!(ask(&mut stream, b"m a.example").await.is_some());
            idle.push(stream);
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        // A lookup is answered at once, not after the idle timeout (30 s)…
        let started = Instant::now();
        let mut lookup = tokio::net::TcpStream::connect(addr).await.unwrap();
        let reply = ask(&mut lookup, b"m b.example").await;
        assert_eq!(reply.unwrap(), b"OK m b.example");
        assert!(started.elapsed() < Duration::from_secs(2));
        // …and the connection idle the longest was closed for it.
        assert_eq!(read_reply(&mut idle[0]).await, None);
        let reply = ask(&mut idle[1], b"m c.example").await;
        assert_eq!(reply.unwrap(), b"OK m c.example");
    }

    #[tokio::test]
    async fn shutdown_closes_idle_connections_and_returns() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
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
