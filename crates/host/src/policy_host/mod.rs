//! The HTTPS policy host and the ACME HTTP-01 listener.
//!
//! [`PolicyHost`] serves `https://mta-sts.<d>/.well-known/mta-sts.txt` for every hosted
//! domain `d` (RFC 8461 §3.2, §8.2) from the current [`Snapshot`](crate::snapshot::Snapshot):
//! the certificate of each handshake and the body of each request come from whatever
//! snapshot is current at that moment, so the node's loader changes both without a restart.
//! It also answers TLS-ALPN-01 validations (RFC 8737) on the same port. [`Http01`] answers
//! HTTP-01 validations (RFC 8555 §8.3) on port 80 and nothing else.
//!
//! Answers:
//!
//! | request | answer |
//! |---|---|
//! | `GET`/`HEAD /.well-known/mta-sts.txt`, Host `mta-sts.<d>` hosted, SNI absent or equal | 200 `text/plain`, the policy |
//! | same, SNI names another host | 421 |
//! | same resource, another method | 405, `Allow: GET, HEAD` |
//! | Host `reports.<zone>`, with a report intake (see [`PolicyHost::start_with_intake`]) | the TLS report intake: `POST /tlsrpt`, see [`ReportIntake`] |
//! | anything else | 404 `text/plain` |
//!
//! Never a redirect: senders must not follow one (RFC 8461 §3.3), so there is nothing a
//! redirect could fix. The path is matched exactly; a query string is ignored.
//!
//! `Cache-Control`: `no-store` unless [`ListenerLimits::proxy_max_age`] is set. Senders must not
//! cache by HTTP rules anyway (RFC 8461 §3.3); the header only matters to a reverse proxy in
//! front of the service. The node publishes a new TXT id only once every node serves the new
//! body (RFC 8461 §8.1), and a caching proxy would silently break that promise by serving
//! the old body under the new id, so caching is opt-in (§8.2 allows `max-age` for operators
//! who accept that staleness).

pub(crate) mod cert_choice;
mod intake;
mod respond;
mod route;

use std::convert::Infallible;
use std::future::ready;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use mtasts_listen::http::{drive, serve_router};
use mtasts_listen::{ConnectionContext, ConnectionLimits, Server, Stream};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;

pub use cert_choice::{CertificateError, certified_key_from_pem};
pub use intake::{DEFAULT_MAX_REPORT_BYTES, IntakeLimits, ReportIntake};

use crate::metrics::ServeMetrics;
use crate::snapshot::{SnapshotHandle, ZoneSettings};
use cert_choice::{ACME_TLS_ALPN, CertChooser};
use mtasts_proto::hosted::reporting::TLSRPT_PATH;
use respond::{HoldingBody, PolicyResponder};
use route::ReportRoute;

/// Resource limits and timeouts of the listeners. `ListenerLimits::default()` suits the internet.
///
/// The connection-level ones (caps, idle limit, grace) are applied by the shared accept loop
/// of `mtasts-listen`; see [`ListenerLimits::connection_limits`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListenerLimits {
    /// Most connections open at once (TLS handshakes included). At the cap, the connection
    /// quiet for the longest (at least [`ListenerLimits::evict_after`]) is closed to make room for a
    /// new one; when none is, the new one is closed as soon as it is accepted.
    pub max_connections: usize,
    /// Most connections of one client IP address; beyond it, that client's own longest-idle
    /// connection makes room, or the new one is closed.
    pub max_per_client: usize,
    /// How long a connection must have been quiet to be closed for a newcomer at a cap.
    pub evict_after: Duration,
    /// Limit for the TLS handshake, from accepting the connection.
    pub handshake_timeout: Duration,
    /// HTTP/1: limit for reading one request head, from the moment hyper waits for it, so
    /// it also bounds the wait for the next request on a keep-alive connection.
    pub header_read_timeout: Duration,
    /// A connection on which no byte moved for this long is closed gracefully (within 1.25 ×
    /// this). Covers HTTP/2, whose idle connections hyper never closes by itself. Must not
    /// be zero.
    pub idle_timeout: Duration,
    /// Largest request head: HTTP/1 read buffer (at least 8 KiB, hyper's minimum) and the
    /// HTTP/2 header list size.
    pub max_header_bytes: usize,
    /// Most request header fields (HTTP/1).
    pub max_headers: usize,
    /// Most concurrent streams per HTTP/2 connection.
    pub h2_max_concurrent_streams: u32,
    /// On shutdown, idle close or eviction, how long open requests may take to finish before
    /// their connections are dropped.
    pub shutdown_grace: Duration,
    /// `Some(n)`: policy responses carry `Cache-Control: max-age=n` for a reverse proxy in
    /// front (RFC 8461 §8.2); `None` (default): `no-store`. See the module docs.
    pub proxy_max_age: Option<u32>,
    /// Entries of the TLS session cache (TLS 1.2 clients without ticket support; everyone
    /// else resumes with tickets).
    pub tls_session_cache: usize,
}

impl Default for ListenerLimits {
    fn default() -> Self {
        ListenerLimits {
            max_connections: 10_000,
            max_per_client: 256,
            evict_after: Duration::from_secs(1),
            handshake_timeout: Duration::from_secs(10),
            header_read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            max_header_bytes: 16 * 1024,
            max_headers: 64,
            h2_max_concurrent_streams: 100,
            shutdown_grace: Duration::from_secs(5),
            proxy_max_age: None,
            tls_session_cache: 16 * 1024,
        }
    }
}

impl ListenerLimits {
    /// What the shared accept loop applies: the caps, the idle limit on bytes moved (which
    /// also ends HTTP/2 connections that never send a request) and the grace period.
    pub fn connection_limits(&self) -> ConnectionLimits {
        ConnectionLimits {
            max_connections: self.max_connections,
            max_per_client: self.max_per_client,
            idle_timeout: self.idle_timeout,
            evict_after: self.evict_after,
            admit_wait: Duration::ZERO,
            drain_grace: self.shutdown_grace,
        }
    }

    /// An HTTP/1 + HTTP/2 connection builder with these limits.
    fn builder(&self) -> auto::Builder<TokioExecutor> {
        let mut builder = auto::Builder::new(TokioExecutor::new());
        builder
            .http1()
            .timer(TokioTimer::new())
            .header_read_timeout(self.header_read_timeout)
            .max_buf_size(self.max_header_bytes.max(8 * 1024))
            .max_headers(self.max_headers)
            // Pipelined requests are all answered at once; flush them together.
            .pipeline_flush(true)
            .keep_alive(true);
        builder
            .http2()
            .timer(TokioTimer::new())
            .max_concurrent_streams(self.h2_max_concurrent_streams)
            .max_header_list_size(u32::try_from(self.max_header_bytes).unwrap_or(u32::MAX));
        builder
    }
}

/// What every connection of a policy host shares.
struct PolicyShared {
    acceptor: TlsAcceptor,
    responder: PolicyResponder,
    limits: ListenerLimits,
    /// Picks the HTTP version from the first bytes: TLS clients that negotiated no ALPN.
    any_version: auto::Builder<TokioExecutor>,
    http1: auto::Builder<TokioExecutor>,
    http2: auto::Builder<TokioExecutor>,
    /// The HTTPS report intake on `reports.<zone>`, when this host runs one.
    reports: Option<ReportSite>,
}

/// The report host's name and its intake.
struct ReportSite {
    host: String,
    intake: Arc<ReportIntake>,
}

/// The HTTPS policy host. Stops (dropping its connections) when dropped; see
/// [`PolicyHost::shutdown`] for a graceful stop.
#[derive(Debug)]
pub struct PolicyHost {
    server: Server,
}

impl PolicyHost {
    /// Serves HTTPS on `listener` (see the module docs for what), with certificates from
    /// `snapshot` and a fallback certificate for `policy.<zone>` generated now. Must be
    /// called inside a Tokio runtime.
    pub fn start(
        listener: TcpListener,
        snapshot: SnapshotHandle,
        settings: ZoneSettings,
        limits: ListenerLimits,
    ) -> PolicyHost {
        Self::start_with_intake(listener, snapshot, settings, limits, None)
    }

    /// Like [`PolicyHost::start`], and with `intake` it also receives TLS reports at
    /// `https://reports.<zone>/tlsrpt` (see [`ReportIntake`]), presenting the snapshot's
    /// service certificate for `reports.<zone>` and `mta-sts.reports.<zone>`. Listeners
    /// given the same intake share its rate and concurrency budgets.
    pub fn start_with_intake(
        listener: TcpListener,
        snapshot: SnapshotHandle,
        settings: ZoneSettings,
        limits: ListenerLimits,
        intake: Option<Arc<ReportIntake>>,
    ) -> PolicyHost {
        Self::start_with_metrics(
            listener,
            snapshot,
            settings,
            limits,
            intake,
            ServeMetrics::default(),
        )
    }

    /// Like [`PolicyHost::start_with_intake`], counting every policy answer into `metrics`.
    pub fn start_with_metrics(
        listener: TcpListener,
        snapshot: SnapshotHandle,
        settings: ZoneSettings,
        limits: ListenerLimits,
        intake: Option<Arc<ReportIntake>>,
        metrics: ServeMetrics,
    ) -> PolicyHost {
        let fallback = cert_choice::fallback_certificate(&settings.delegation.policy_host());
        let reports = settings.reports();
        let chooser = Arc::new(CertChooser::new(
            snapshot.clone(),
            fallback,
            cert_choice::ServiceNames::new(&reports),
        ));
        let config = cert_choice::server_config(chooser, &limits);
        let any_version = limits.builder();
        let shared = Arc::new(PolicyShared {
            acceptor: TlsAcceptor::from(Arc::new(config)),
            responder: PolicyResponder::new(snapshot, limits.proxy_max_age)
                .with_metrics(metrics)
                .with_own_policy(
                    reports.host(),
                    &reports.own_policy(settings.own_policy_mode).to_text("\r\n"),
                ),
            http1: any_version.clone().http1_only(),
            http2: any_version.clone().http2_only(),
            any_version,
            limits: limits.clone(),
            reports: intake.map(|intake| ReportSite {
                host: reports.host().to_ascii_lowercase(),
                intake,
            }),
        });
        let server = Server::spawn(
            listener,
            limits.connection_limits(),
            &CancellationToken::new(),
            move |stream, context| serve_tls(stream, context, shared.clone()),
        );
        PolicyHost { server }
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.server.local_addr()
    }

    /// Stops accepting connections, lets requests in progress finish for up to
    /// [`ListenerLimits::shutdown_grace`], then closes everything.
    pub async fn shutdown(self) {
        self.server.shutdown().await;
    }
}

async fn serve_tls(stream: Stream, context: ConnectionContext, shared: Arc<PolicyShared>) {
    let limits = &shared.limits;
    let handshake = tokio::time::timeout(limits.handshake_timeout, shared.acceptor.accept(stream));
    let mut tls = tokio::select! {
        result = handshake => match result {
            Ok(Ok(tls)) => tls,
            Ok(Err(e)) => {
                tracing::debug!(error = %e, "TLS handshake failed");
                return;
            }
            Err(_) => {
                tracing::debug!("TLS handshake timed out");
                return;
            }
        },
        () = context.stopped() => return,
    };
    let session = tls.get_ref().1;
    // Shared by every request of the connection (an `Arc` clone per request, no copy).
    let sni: Option<Arc<str>> = session.server_name().map(Into::into);
    let builder = match session.alpn_protocol() {
        Some(ACME_TLS_ALPN) => None,
        Some(b"h2") => Some(&shared.http2),
        Some(b"http/1.1") => Some(&shared.http1),
        _ => Some(&shared.any_version),
    };
    let Some(builder) = builder else {
        // RFC 8737 §3: the validation is the handshake itself; no application data
        // follows, so close cleanly right away.
        let _ = tokio::time::timeout(limits.handshake_timeout, tls.shutdown()).await;
        return;
    };
    let peer = context.peer().addr();
    let responder = shared.clone();
    let service = service_fn(move |request: hyper::Request<Incoming>| {
        let shared = responder.clone();
        let sni = sni.clone();
        async move { Ok::<_, Infallible>(respond_tls(&shared, request, sni.as_deref(), peer).await) }
    });
    let conn = builder.serve_connection(TokioIo::new(tls), service);
    drive(conn, &context).await;
}

/// The answer to one request on the HTTPS listener: the report intake for `reports.<zone>`,
/// the policy responder for everything else.
async fn respond_tls(
    shared: &PolicyShared,
    request: hyper::Request<Incoming>,
    sni: Option<&str>,
    peer: Option<SocketAddr>,
) -> hyper::Response<HoldingBody<Option<Incoming>>> {
    if let Some(site) = &shared.reports {
        let authority = respond::authority(&request);
        let route = route::classify_report(
            request.method(),
            request.uri().path(),
            authority,
            sni,
            &site.host,
            TLSRPT_PATH,
        );
        let response = match route {
            ReportRoute::OtherHost => None,
            ReportRoute::Intake => {
                let (response, unread) = site.intake.receive(request, peer).await;
                return response.map(|body| HoldingBody::new(body, unread));
            }
            ReportRoute::NotFound => Some(respond::not_found()),
            ReportRoute::Misdirected => Some(respond::misdirected()),
            ReportRoute::MethodNotAllowed => Some(respond::method_not_allowed("POST")),
        };
        if let Some(response) = response {
            let request_body = request.into_body();
            return response.map(|body| HoldingBody::new(body, Some(request_body)));
        }
    }
    let response = shared.responder.respond(&request, sni);
    let request_body = request.into_body();
    response.map(|body| HoldingBody::new(body, Some(request_body)))
}

/// The ACME HTTP-01 listener (plain HTTP/1.1): `GET /.well-known/acme-challenge/<token>`
/// → the key authorization from `snapshot.challenges.http01`, 404 for everything else.
/// Stops (dropping its connections) when dropped.
#[derive(Debug)]
pub struct Http01 {
    server: Server,
}

impl Http01 {
    /// Serves HTTP-01 challenges on `listener` with the default [`ListenerLimits`]. Must be called
    /// inside a Tokio runtime.
    pub fn start(listener: TcpListener, snapshot: SnapshotHandle) -> Http01 {
        Self::start_with_limits(listener, snapshot, ListenerLimits::default())
    }

    /// Like [`Http01::start`], with chosen limits ([`ListenerLimits::proxy_max_age`],
    /// [`ListenerLimits::h2_max_concurrent_streams`] and [`ListenerLimits::tls_session_cache`] do not apply).
    pub fn start_with_limits(
        listener: TcpListener,
        snapshot: SnapshotHandle,
        limits: ListenerLimits,
    ) -> Http01 {
        let builder = Arc::new(limits.builder().http1_only());
        let server = Server::spawn(
            listener,
            limits.connection_limits(),
            &CancellationToken::new(),
            move |stream, context| serve_http01(stream, context, builder.clone(), snapshot.clone()),
        );
        Http01 { server }
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.server.local_addr()
    }

    /// Stops accepting connections, lets requests in progress finish for up to
    /// [`ListenerLimits::shutdown_grace`], then closes everything.
    pub async fn shutdown(self) {
        self.server.shutdown().await;
    }
}

/// A plain-HTTP/1.1 listener for an axum [`Router`](axum::Router) (the API and dashboard) with
/// the same connection cap, header and idle time limits as the policy host, which
/// `axum::serve` does not offer. Handlers see the client address as
/// `ConnectInfo<SocketAddr>`.
#[derive(Debug)]
pub struct AppListener {
    server: Server,
}

impl AppListener {
    /// Serves `router` on `listener` with `limits` (the TLS and proxy settings do not apply).
    pub fn start(
        listener: TcpListener,
        router: axum::Router,
        limits: ListenerLimits,
    ) -> AppListener {
        let builder = Arc::new(limits.builder().http1_only());
        let server = Server::spawn(
            listener,
            limits.connection_limits(),
            &CancellationToken::new(),
            move |stream, context| {
                let builder = builder.clone();
                let router = router.clone();
                async move { serve_router(stream, context, &builder, router).await }
            },
        );
        AppListener { server }
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.server.local_addr()
    }

    /// Stops accepting, lets requests in progress finish for up to
    /// [`ListenerLimits::shutdown_grace`], then closes everything.
    pub async fn shutdown(self) {
        self.server.shutdown().await;
    }
}

async fn serve_http01(
    stream: Stream,
    context: ConnectionContext,
    builder: Arc<auto::Builder<TokioExecutor>>,
    snapshot: SnapshotHandle,
) {
    let io = TokioIo::new(stream);
    let service = service_fn(move |request: hyper::Request<Incoming>| {
        ready(Ok::<_, Infallible>(respond::respond_http01(
            &snapshot, &request,
        )))
    });
    let conn = builder.serve_connection(io, service);
    drive(conn, &context).await;
}
