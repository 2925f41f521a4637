//! The HTTPS report intake (RFC 8460 §5.3): `POST https://reports.<zone>/tlsrpt` on the policy
//! host's listener, stored through the report core ([`mtasts_report::intake::Intake`]).
//!
//! | request | answer |
//! |---|---|
//! | a readable report, stored for the first time | 201 |
//! | the same report again (stored before; its duplicate count goes up) | 200 |
//! | `Content-Length` over [`IntakeLimits::max_body_bytes`], or a longer body | 413 |
//! | a body that inflates past the limit (a zip bomb) | 413 (the input is kept, with its error) |
//! | a declared type that is not a report (`text/html`, `multipart/…`, `br` encoding) | 415 |
//! | a body with no readable report | 400 (the input is kept, with its errors, for an administrator) |
//! | the body not complete within [`IntakeLimits::body_timeout`] | 408 |
//! | the client over its rate ([`IntakeLimits::rate`]) | 429 + `Retry-After` |
//! | [`IntakeLimits::max_concurrent`] intakes already running, or a database error | 503 + `Retry-After` |
//!
//! 200 and 201 are sent only after [`Intake::input`] returned, that is once the input and every
//! report in it are committed: a sender that sees success may forget the report, and one that
//! sees anything else retries (RFC 8460 §5.3), which at worst stores a duplicate, counted once.
//! The declared media type is only checked for being plausible; the bytes decide
//! ([`mtasts_proto::tlsrpt::upload`]).

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use http_body_util::{BodyExt, Full};
use hyper::header::{
    CACHE_CONTROL, CONTENT_ENCODING, CONTENT_LENGTH, CONTENT_TYPE, HeaderValue, RETRY_AFTER,
    X_CONTENT_TYPE_OPTIONS,
};
use hyper::{Request, Response, StatusCode};
use mtasts_proto::tlsrpt::upload;
use mtasts_report::Code;
use mtasts_report::intake::{Intake, Outcome, unix_now};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::client_addr::{TrustedProxies, limit_key};
use crate::metrics::ServeMetrics;
use crate::ratelimit::{KeyedLimiter, Rate};

/// Default [`IntakeLimits::max_body_bytes`] and decompressed-report cap: 10 MiB, a common
/// receiver limit (senders gzip; real reports are kilobytes).
pub const DEFAULT_MAX_REPORT_BYTES: u64 = 10 * 1024 * 1024;

/// The bounds of the HTTPS intake. `IntakeLimits::default()` suits the internet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IntakeLimits {
    /// The largest request body, and the most one report (and all of one body's reports
    /// together) may inflate to.
    pub max_body_bytes: u64,
    /// How long the whole body may take to arrive, from the request head.
    pub body_timeout: Duration,
    /// POSTs per client address (IPv6 by /64): a sender posts a few reports a day per domain;
    /// the burst covers a large provider posting for many hosted domains at once.
    pub rate: Rate,
    /// Most client addresses the rate limiter remembers.
    pub max_clients: usize,
    /// Most intakes reading or storing at once: bounds the memory of bodies held and keeps a
    /// flood from taking every database connection from the API and the node.
    pub max_concurrent: usize,
    /// What `Retry-After` says when the intake is busy or the database failed.
    pub retry_after: Duration,
}

impl Default for IntakeLimits {
    fn default() -> Self {
        IntakeLimits {
            max_body_bytes: DEFAULT_MAX_REPORT_BYTES,
            body_timeout: Duration::from_secs(60),
            rate: Rate::per_minute(120, 60),
            max_clients: 100_000,
            max_concurrent: 8,
            retry_after: Duration::from_secs(60),
        }
    }
}

impl IntakeLimits {
    /// The report core's limits: every decompressed stream and all of them together within
    /// [`IntakeLimits::max_body_bytes`].
    pub fn walk_limits(&self) -> mtasts_report::Limits {
        let mut limits = mtasts_report::Limits::default();
        limits.max_report_bytes = self.max_body_bytes;
        limits.max_total_bytes = self.max_body_bytes;
        limits.max_input_bytes = self.max_body_bytes;
        limits
    }
}

/// The intake behind the policy host's `reports.<zone>` name (cheap to share).
#[derive(Debug)]
pub struct ReportIntake {
    intake: Intake,
    limits: IntakeLimits,
    limiter: KeyedLimiter<IpAddr>,
    permits: Arc<Semaphore>,
    proxies: TrustedProxies,
    metrics: ServeMetrics,
}

impl ReportIntake {
    /// Stores into `intake` (whose database takes the reports) within `limits`; the client of
    /// a request is its TCP peer or, when that is one of `proxies`, the address the proxy names.
    pub fn new(intake: Intake, limits: IntakeLimits, proxies: TrustedProxies) -> ReportIntake {
        ReportIntake {
            intake,
            limiter: KeyedLimiter::new(limits.rate, limits.max_clients),
            permits: Arc::new(Semaphore::new(limits.max_concurrent.max(1))),
            limits,
            proxies,
            metrics: ServeMetrics::default(),
        }
    }

    /// Counts every POST into `metrics` (`report_received("https", …)`).
    pub fn with_metrics(mut self, metrics: ServeMetrics) -> ReportIntake {
        self.metrics = metrics;
        self
    }

    /// An intake into `db`, walking bodies with [`IntakeLimits::walk_limits`].
    pub fn with_db(
        db: mtasts_store::reports::ReportDb,
        limits: IntakeLimits,
        proxies: TrustedProxies,
    ) -> ReportIntake {
        let intake = Intake::new(db, limits.walk_limits());
        Self::new(intake, limits, proxies)
    }

    /// The answer to a `POST` of the intake path from `peer` (see the module docs), and the
    /// request body when it was refused unread: the caller holds it until the answer is sent
    /// (see `HoldingBody`), so an HTTP/2 client still uploading is told to stop, not that
    /// its request was cancelled.
    pub(crate) async fn receive<B>(
        &self,
        request: Request<B>,
        peer: Option<SocketAddr>,
    ) -> (Answer, Option<B>)
    where
        B: hyper::body::Body<Data = Bytes> + Unpin,
        B::Error: std::fmt::Display,
    {
        let (head, body) = request.into_parts();
        match self.refuse_unread(&head, peer) {
            Err(answer) => (*answer, Some(body)),
            Ok((permit, client)) => (self.read_and_store(body, client, permit).await, None),
        }
    }

    /// The checks made before the body is read: the declared length and types, the client's
    /// rate, a free intake slot. Returns the slot and the client address.
    fn refuse_unread(
        &self,
        head: &hyper::http::request::Parts,
        peer: Option<SocketAddr>,
    ) -> Result<(OwnedSemaphorePermit, Option<IpAddr>), Box<Answer>> {
        let max = self.limits.max_body_bytes;
        let declared_length = head
            .headers
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok());
        if declared_length.is_some_and(|length| length > max) {
            self.metrics.report_received("https", "refused");
            return Err(Box::new(too_large(max)));
        }
        let header = |name| {
            head.headers
                .get(name)
                .map(|v: &HeaderValue| v.to_str().unwrap_or("\u{fffd}"))
        };
        if let Err(refusal) = upload::check_headers(header(CONTENT_TYPE), header(CONTENT_ENCODING))
        {
            self.metrics.report_received("https", "refused");
            return Err(Box::new(text(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                format!("{refusal}\n"),
            )));
        }
        let client = self.proxies.client_ip(peer, &head.headers);
        if let Err(wait) = self.limiter.acquire(&limit_key(client), Instant::now()) {
            self.metrics.report_received("https", "refused");
            return Err(Box::new(retry_later(
                StatusCode::TOO_MANY_REQUESTS,
                "too many reports from this address; try again later\n",
                wait.seconds(),
            )));
        }
        match self.permits.clone().try_acquire_owned() {
            Ok(permit) => Ok((permit, client)),
            Err(_) => Err(Box::new(self.refused(retry_later(
                StatusCode::SERVICE_UNAVAILABLE,
                "busy receiving other reports; try again later\n",
                self.limits.retry_after.as_secs().max(1),
            )))),
        }
    }

    /// Counts a refusal and passes its answer on.
    fn refused(&self, answer: Answer) -> Answer {
        self.metrics.report_received("https", "refused");
        answer
    }

    /// Reads the body within the limits and stores it, holding `_permit` throughout.
    async fn read_and_store<B>(
        &self,
        body: B,
        client: Option<IpAddr>,
        _permit: OwnedSemaphorePermit,
    ) -> Answer
    where
        B: hyper::body::Body<Data = Bytes> + Unpin,
        B::Error: std::fmt::Display,
    {
        let max = self.limits.max_body_bytes;
        let bytes =
            match tokio::time::timeout(self.limits.body_timeout, read_capped(body, max)).await {
                Err(_) => {
                    self.metrics.report_received("https", "refused");
                    return text(
                        StatusCode::REQUEST_TIMEOUT,
                        format!(
                            "the body did not arrive within {:?}\n",
                            self.limits.body_timeout
                        ),
                    );
                }
                Ok(Err(BodyError::TooLarge)) => {
                    self.metrics.report_received("https", "refused");
                    return too_large(max);
                }
                Ok(Err(BodyError::Read(why))) => {
                    self.metrics.report_received("https", "refused");
                    return text(
                        StatusCode::BAD_REQUEST,
                        format!("the body could not be read: {why}\n"),
                    );
                }
                Ok(Ok(bytes)) => bytes,
            };
        if let Err(refusal) = upload::sniff(&bytes) {
            self.metrics.report_received("https", "invalid");
            return text(StatusCode::BAD_REQUEST, format!("{refusal}\n"));
        }
        let source = match client {
            Some(ip) => format!("https:{ip}"),
            None => "https:unknown".to_owned(),
        };
        match self.intake.input(&bytes, &source, unix_now()).await {
            Ok(outcome) => answer(&outcome, max, &self.metrics),
            Err(e) => {
                tracing::warn!(error = %e, %source, "a TLS report could not be stored");
                self.metrics.report_received("https", "error");
                retry_later(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "the report could not be stored; try again later\n",
                    self.limits.retry_after.as_secs().max(1),
                )
            }
        }
    }
}

/// A response of the intake.
pub(crate) type Answer = Response<Full<Bytes>>;

/// The answer once the input is committed.
fn answer(outcome: &Outcome, max: u64, metrics: &ServeMetrics) -> Answer {
    if outcome.reports.is_empty() {
        // The input and its errors are stored for an administrator; the sender learns why.
        let too_large = outcome.errors.iter().any(|e| e.code == Code::TooLarge);
        let why = outcome
            .errors
            .first()
            .map_or("no report found", |e| e.message.as_str());
        if too_large {
            metrics.report_received("https", "refused");
            return text(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("the report is larger than {max} bytes once decompressed: {why}\n"),
            );
        }
        metrics.report_received("https", "invalid");
        return text(
            StatusCode::BAD_REQUEST,
            format!("no readable TLS report in the body: {why}\n"),
        );
    }
    if outcome.new > 0 {
        metrics.report_received("https", "new");
        text(
            StatusCode::CREATED,
            format!(
                "stored: {} new, {} duplicate\n",
                outcome.new, outcome.duplicate
            ),
        )
    } else {
        metrics.report_received("https", "duplicate");
        text(
            StatusCode::OK,
            format!("stored before: {} duplicate\n", outcome.duplicate),
        )
    }
}

/// Why a body was not read whole.
enum BodyError {
    TooLarge,
    Read(String),
}

/// The body, at most `max` bytes (frames are added up as they arrive, so nothing past the cap
/// is ever held).
async fn read_capped<B>(mut body: B, max: u64) -> Result<Bytes, BodyError>
where
    B: hyper::body::Body<Data = Bytes> + Unpin,
    B::Error: std::fmt::Display,
{
    let mut out = BytesMut::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| BodyError::Read(e.to_string()))?;
        if let Ok(data) = frame.into_data() {
            if (out.len() + data.len()) as u64 > max {
                return Err(BodyError::TooLarge);
            }
            out.extend_from_slice(&data);
        }
    }
    Ok(out.freeze())
}

fn too_large(max: u64) -> Answer {
    text(
        StatusCode::PAYLOAD_TOO_LARGE,
        format!("the body is larger than {max} bytes\n"),
    )
}

fn retry_later(status: StatusCode, message: &'static str, seconds: u64) -> Answer {
    let mut response = text(status, message.to_owned());
    response
        .headers_mut()
        .insert(RETRY_AFTER, HeaderValue::from(seconds));
    response
}

/// A short `text/plain` answer.
fn text(status: StatusCode, message: String) -> Answer {
    let mut response = Response::new(Full::new(Bytes::from(message)));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    response
}
