//! The HTTP endpoint (axum): the same decision as the socketmap as JSON, Prometheus metrics
//! and a health check.
//!
//! | Route | Answer |
//! |---|---|
//! | `GET /v1/policy/{domain}` (`?profile=NAME`) | a [`Decision`] as JSON |
//! | `GET /metrics` | OpenMetrics text ([`crate::metrics`]) |
//! | `GET /healthz` | `{"status":"ok","store":{"backend":…,"fallback":…}}` |
//! | `POST /v1/tlsrpt/results` | TLS-RPT results from MTAs ([`crate::tlsrpt::collect::intake`]), when TLS-RPT is enabled |
//!
//! Every request is bounded by the request timeout (503 when it runs out). Connections run on
//! the shared accept loop of `mtasts-listen` ([`spawn`]): at most `max_connections` at once,
//! the longest-idle one making room for a newcomer at the cap, an idle limit on bytes moved,
//! and a graceful drain on shutdown.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, Query, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use hyper_util::rt::{TokioExecutor, TokioTimer};
use hyper_util::server::conn::auto;
use mtasts_listen::{ConnectionLimits, Server};
use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;
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

/// The routes, over a daemon, with a per-request time limit; with `tlsrpt`, the TLS-RPT
/// results intake too.
pub fn router(
    daemon: Arc<Daemon>,
    request_timeout: Duration,
    tlsrpt: Option<crate::tlsrpt::collect::Intake>,
) -> Router {
    let mut router = Router::new()
        .route("/v1/policy/{domain}", get(policy))
        .route("/metrics", get(metrics))
        .route("/healthz", get(healthz));
    if let Some(intake) = tlsrpt {
        router = router.route(
            crate::tlsrpt::collect::RESULTS_PATH,
            post(move |request: Request| async move { intake.post(request).await }),
        );
    }
    router
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

/// The body of `GET /healthz`.
#[derive(Serialize)]
struct Health {
    status: &'static str,
    store: StoreHealth,
}

/// The policy store's part of [`Health`].
#[derive(Serialize)]
struct StoreHealth {
    backend: &'static str,
    fallback: bool,
}

async fn healthz(State(daemon): State<Arc<Daemon>>) -> Json<Health> {
    let store = daemon.store();
    Json(Health {
        status: "ok",
        store: StoreHealth {
            backend: store.configured_backend(),
            fallback: store.degraded(),
        },
    })
}

/// The connection limits of an HTTP listener: `max_connections`, an idle limit of the request
/// timeout (a kept-alive connection is closed once quiet that long), and `drain` to finish
/// requests in progress at shutdown.
pub fn connection_limits(
    max_connections: usize,
    request_timeout: Duration,
    drain: Duration,
) -> ConnectionLimits {
    ConnectionLimits {
        max_connections,
        idle_timeout: request_timeout,
        drain_grace: drain,
        ..ConnectionLimits::default()
    }
}

/// Starts serving `router` (HTTP/1.1) on `listener`; cancelling `shutdown` stops accepting
/// and lets requests in progress finish, and [`Server::wait`] completes once the connections
/// are gone. A request head must arrive within `limits.idle_timeout`.
pub fn spawn(
    listener: TcpListener,
    router: Router,
    limits: ConnectionLimits,
    shutdown: &CancellationToken,
) -> Server {
    let mut builder = auto::Builder::new(TokioExecutor::new()).http1_only();
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.idle_timeout)
        .keep_alive(true);
    let builder = Arc::new(builder);
    Server::spawn(listener, limits, shutdown, move |stream, context| {
        let builder = builder.clone();
        let router = router.clone();
        async move { mtasts_listen::http::serve_router(stream, context, &builder, router).await }
    })
}
