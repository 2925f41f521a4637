//! `POST /v1/tlsrpt/results`: other MTAs report the same facts as libtlsrpt's datagrams as
//! JSON (one object or an array; `mtasts_proto::tlsrpt::session::parse_results_json`).
//!
//! | Answer | When |
//! |---|---|
//! | 200 `{"accepted": N}` | the N results are committed to the store |
//! | 400 `{"error": …}` | the body is not valid results JSON (nothing is stored) |
//! | 413 | the body is larger than `MAX_RESULTS_BODY_BYTES` |
//! | 503 `{"error": …}` | the store failed (nothing is stored; send again later) |
//!
//! A request is committed in its own transaction, apart from the datagram batches, so the
//! 200 means exactly "stored"; the day counted is the UTC day the request arrived.

use std::sync::Arc;

use axum::Json;
use axum::body::Body;
use axum::extract::Request;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use mtasts_proto::rollup::day_of;
use mtasts_proto::tlsrpt::session::{MAX_RESULTS_BODY_BYTES, parse_results_json};
use serde_json::json;

use super::aggregate::Pending;
use super::sink::ResultSink;
use crate::clock::Clock;
use crate::metrics::{Metrics, OutcomeLabels};

/// The route of the intake.
pub const RESULTS_PATH: &str = "/v1/tlsrpt/results";

/// What the intake handler needs; cheap to clone.
#[derive(Clone)]
pub struct Intake {
    pub(crate) sink: Arc<dyn ResultSink>,
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) clock: Arc<dyn Clock>,
}

impl Intake {
    /// An intake committing to `sink`.
    pub fn new(sink: Arc<dyn ResultSink>, metrics: Arc<Metrics>, clock: Arc<dyn Clock>) -> Self {
        Intake {
            sink,
            metrics,
            clock,
        }
    }

    /// Handles one request (see the module docs for the answers).
    pub async fn post(&self, request: Request) -> Response {
        let declared = request
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        let too_large = || {
            error(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("the body is larger than {MAX_RESULTS_BODY_BYTES} bytes"),
            )
        };
        if declared.is_some_and(|n| n > MAX_RESULTS_BODY_BYTES as u64) {
            return too_large();
        }
        let bytes = match read_bounded(request.into_body(), MAX_RESULTS_BODY_BYTES).await {
            Ok(bytes) => bytes,
            Err(BodyError::TooLarge) => return too_large(),
            Err(BodyError::Read(e)) => {
                return error(
                    StatusCode::BAD_REQUEST,
                    format!("cannot read the body: {e}"),
                );
            }
        };
        let results = match parse_results_json(&bytes) {
            Ok(results) => results,
            Err(e) => return error(StatusCode::BAD_REQUEST, e.to_string()),
        };
        let day = day_of(i64::try_from(self.clock.now()).unwrap_or(i64::MAX));
        // The same aggregation as the datagrams; the body bound keeps it small.
        let pending = Pending::with_byte_limit(usize::MAX, usize::MAX);
        let (mut successes, mut failures) = (0, 0);
        for result in &results {
            if let Ok(added) = pending.add(day, result) {
                successes += added.successes;
                failures += added.failures;
            }
        }
        if let Some(batch) = pending.take()
            && let Err(e) = self.sink.record(&batch.rows).await
        {
            tracing::warn!(error = %e, "cannot commit TLS-RPT results received over HTTP");
            self.metrics
                .tlsrpt_commits
                .get_or_create(&OutcomeLabels { outcome: "error" })
                .inc();
            return error(
                StatusCode::SERVICE_UNAVAILABLE,
                "the TLS-RPT store is unavailable; nothing was stored".to_string(),
            );
        }
        self.metrics
            .tlsrpt_commits
            .get_or_create(&OutcomeLabels { outcome: "ok" })
            .inc();
        for (outcome, n) in [("success", successes), ("failure", failures)] {
            self.metrics
                .tlsrpt_results
                .get_or_create(&OutcomeLabels { outcome })
                .inc_by(n);
        }
        (StatusCode::OK, Json(json!({ "accepted": results.len() }))).into_response()
    }
}

/// Why a body was not read.
#[derive(Debug)]
enum BodyError {
    TooLarge,
    Read(axum::Error),
}

/// Reads at most `limit` bytes of `body`; more is [`BodyError::TooLarge`], found before the
/// excess is buffered.
async fn read_bounded(body: Body, limit: usize) -> Result<Vec<u8>, BodyError> {
    let mut stream = body.into_data_stream();
    let mut out = Vec::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(BodyError::Read)?;
        if out.len() + chunk.len() > limit {
            return Err(BodyError::TooLarge);
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}

fn error(status: StatusCode, reason: String) -> Response {
    (
        status,
        [(header::CACHE_CONTROL, "no-store")],
        Json(json!({ "error": reason })),
    )
        .into_response()
}
