//! The HTTP endpoint (axum): the same decision as the socketmap as JSON, Prometheus metrics
//! and a health check.
//!
//! | Route | Answer |
//! |---|---|
//! | `GET /v1/policy/{domain}` (`?profile=NAME`) | a [`Decision`] as JSON |
//! | `GET /metrics` | OpenMetrics text ([`crate::metrics`]) |
//! | `GET /healthz` | `{"status":"ok","store":{"backend":…,"fallback":…}}` |
//!
//! Every request is bounded by the request timeout (503 when it runs out), and each listener
//! serves at most `max_connections` connections at once (further ones wait in the kernel's
//! backlog).

use std::future::IntoFuture;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::extract::{Path, Query, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;

use crate::daemon::Daemon;
use crate::decision::Decision;

/// Query parameters of `/v1/policy/{domain}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyQuery {
    /// The profile (as a socketmap name would select it). Default: the default profile.
    pub profile: Option<String>,
}

/// The routes, over a daemon, with a per-request time limit.
pub fn router(daemon: Arc<Daemon>, request_timeout: Duration) -> Router {
    Router::new()
        .route("/v1/policy/{domain}", get(policy))
        .route("/metrics", get(metrics))
        .route("/healthz", get(healthz))
        .layer(middleware::from_fn(move |request: Request, next: Next| {
            bounded(request, next, request_timeout)
        }))
        .with_state(daemon)
}

async fn bounded(request: Request, next: Next, limit: Duration) -> Response {
    match tokio::time::timeout(limit, next.run(request)).await {
        Ok(response) => response,
        Err(_) => (StatusCode::SERVICE_UNAVAILABLE, "request timed out\n").into_response(),
    }
}

async fn policy(
    State(daemon): State<Arc<Daemon>>,
    Path(domain): Path<String>,
    Query(query): Query<PolicyQuery>,
) -> Json<Decision> {
    let profile = query
        .profile
        .unwrap_or_else(|| daemon.settings().default_profile.name.clone());
    Json(daemon.lookup("http", &profile, &domain).await)
}

async fn metrics(State(daemon): State<Arc<Daemon>>) -> Response {
    (
        [(header::CONTENT_TYPE, crate::metrics::CONTENT_TYPE)],
        daemon.metrics().encode(),
    )
        .into_response()
}

async fn healthz(State(daemon): State<Arc<Daemon>>) -> Json<serde_json::Value> {
    let store = daemon.store();
    Json(serde_json::json!({
        "status": "ok",
        "store": {
            "backend": store.configured_backend(),
            "fallback": store.degraded(),
        },
    }))
}

/// Serves `router` on `listener` until `shutdown`, then lets requests in progress finish
/// (at most `drain_timeout`).
pub async fn serve(
    listener: TcpListener,
    router: Router,
    max_connections: usize,
    drain_timeout: Duration,
    shutdown: CancellationToken,
) -> io::Result<()> {
    let listener = Limited {
        inner: listener,
        permits: Arc::new(Semaphore::new(max_connections.max(1))),
    };
    let server = axum::serve(listener, router)
        .with_graceful_shutdown(shutdown.clone().cancelled_owned())
        .into_future();
    tokio::select! {
        result = server => result,
        _ = async {
            shutdown.cancelled().await;
            tokio::time::sleep(drain_timeout).await;
        } => {
            tracing::warn!("HTTP connections still open at the drain deadline; closing them");
            Ok(())
        }
    }
}

/// A listener that holds a permit per open connection.
struct Limited {
    inner: TcpListener,
    permits: Arc<Semaphore>,
}

impl axum::serve::Listener for Limited {
    type Io = PermitStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        let mut errors = 0u32;
        loop {
            let permit = match self.permits.clone().acquire_owned().await {
                Ok(permit) => permit,
                // The semaphore is never closed; wait instead of spinning if it were.
                Err(_) => {
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            };
            match self.inner.accept().await {
                Ok((stream, addr)) => {
                    let _ = stream.set_nodelay(true);
                    return (
                        PermitStream {
                            stream,
                            _permit: permit,
                        },
                        addr,
                    );
                }
                Err(e) => {
                    if matches!(
                        e.kind(),
                        io::ErrorKind::ConnectionRefused
                            | io::ErrorKind::ConnectionAborted
                            | io::ErrorKind::ConnectionReset
                    ) {
                        continue;
                    }
                    errors = errors.saturating_add(1);
                    tracing::error!(error = %e, "HTTP accept failed");
                    tokio::time::sleep(Duration::from_millis(100 * u64::from(errors.min(10))))
                        .await;
                }
            }
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.inner.local_addr()
    }
}

/// A connection and the permit it holds.
struct PermitStream {
    stream: TcpStream,
    _permit: OwnedSemaphorePermit,
}

impl AsyncRead for PermitStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for PermitStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }
}
