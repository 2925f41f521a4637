//! HTTP on the loop: run a hyper connection until the loop asks it to close, then close it
//! gracefully (in-flight requests finish, HTTP/2 gets a GOAWAY); and serve an axum router.

use std::fmt::Display;
use std::pin::pin;

use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulConnection;

use crate::{ConnectionContext, Stream};

/// Runs `conn` to its end; when `context` is stopped (idle, evicted, shutdown), starts its
/// graceful shutdown. The loop drops it if that takes longer than the grace period (a client
/// that does not read its response).
pub async fn drive<C>(conn: C, context: &ConnectionContext)
where
    C: GracefulConnection,
    C::Error: Display,
{
    let mut conn = pin!(conn);
    tokio::select! {
        result = conn.as_mut() => {
            if let Err(e) = result {
                tracing::debug!(error = %e, "connection ended with an error");
            }
            return;
        }
        () = context.stopped() => {}
    }
    tracing::trace!(reason = ?context.stop_reason(), "closing connection");
    conn.as_mut().graceful_shutdown();
    if let Err(e) = conn.await {
        tracing::debug!(error = %e, "connection ended with an error");
    }
}

/// Serves `router` on one plain-HTTP connection with `builder`'s protocol settings. Handlers
/// see the client address as `ConnectInfo<SocketAddr>` (TCP peers only).
pub async fn serve_router(
    stream: Stream,
    context: ConnectionContext,
    builder: &auto::Builder<TokioExecutor>,
    router: axum::Router,
) {
    let peer = context.peer().addr();
    let service = service_fn(move |mut request: hyper::Request<Incoming>| {
        if let Some(peer) = peer {
            request
                .extensions_mut()
                .insert(axum::extract::ConnectInfo(peer));
        }
        // A Router is always ready; its error type is `Infallible`.
        let mut router = router.clone();
        async move { tower_service::Service::call(&mut router, request).await }
    });
    let conn = builder.serve_connection(TokioIo::new(stream), service);
    drive(conn, &context).await;
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::{TcpListener, TcpStream};
    use tokio_util::sync::CancellationToken;

    use super::*;
    use crate::{ConnectionLimits, Server};

    async fn start(idle: Duration) -> (Server, std::net::SocketAddr) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let builder = Arc::new(auto::Builder::new(TokioExecutor::new()));
        let router = axum::Router::new().route("/", axum::routing::get(|| async { "hello" }));
        let limits = ConnectionLimits {
            idle_timeout: idle,
            drain_grace: Duration::from_millis(300),
            ..ConnectionLimits::default()
        };
        let server = Server::spawn(listener, limits, &CancellationToken::new(), move |s, c| {
            let builder = builder.clone();
            let router = router.clone();
            async move { serve_router(s, c, &builder, router).await }
        });
        let addr = server.local_addr().unwrap();
        (server, addr)
    }

    /// Reads until the server closes; `None` if it does not within `within`.
    async fn read_to_close(stream: &mut TcpStream, within: Duration) -> Option<Vec<u8>> {
        let mut all = Vec::new();
        let read = async {
            let mut buf = [0u8; 4096];
            loop {
                match stream.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => all.extend_from_slice(&buf[..n]),
                }
            }
        };
        tokio::time::timeout(within, read).await.ok()?;
        Some(all)
    }

    #[tokio::test]
    async fn an_http2_connection_that_never_sends_a_request_is_closed_at_the_idle_limit() {
        let idle = Duration::from_millis(300);
        let (_server, addr) = start(idle).await;
        let mut stream = TcpStream::connect(addr).await.unwrap();
        let started = Instant::now();
        // The client preface and an empty SETTINGS frame, then nothing.
        stream
            .write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00")
            .await
            .unwrap();
        let answer = read_to_close(&mut stream, Duration::from_secs(5))
            .await
            .expect("closed at the idle limit");
        let elapsed = started.elapsed();
        assert!(elapsed >= idle - Duration::from_millis(100), "{elapsed:?}");
        // Idle limit (noticed within 1.25 ×) plus the grace period: hyper sends GOAWAY and
        // then waits for the client, which the loop does not.
        assert!(elapsed < Duration::from_secs(2), "{elapsed:?}");
        // SETTINGS, its ACK, then GOAWAY (type 7) before the close.
        let mut rest = &answer[..];
        let mut goaway = false;
        while rest.len() >= 9 {
            let len =
                (usize::from(rest[0]) << 16) | (usize::from(rest[1]) << 8) | usize::from(rest[2]);
            goaway |= rest[3] == 0x7;
            rest = rest.get(9 + len..).unwrap_or(&[]);
        }
        assert!(goaway, "no GOAWAY in {answer:?}");
    }

    #[tokio::test]
    async fn a_router_answers_http1_with_the_client_address() {
        let (_server, addr) = start(Duration::from_secs(60)).await;
        let mut stream = TcpStream::connect(addr).await.unwrap();
        stream
            .write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        let answer = read_to_close(&mut stream, Duration::from_secs(5))
            .await
            .unwrap();
        let text = String::from_utf8_lossy(&answer);
        assert!(text.starts_with("HTTP/1.1 200"), "{text}");
        assert!(text.ends_with("hello"), "{text}");
    }
}
