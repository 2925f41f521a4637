//! `GET /api/v1/admin/mail`: the received mail that held no report (administrators only),
//! newest first, with how it arrived and why its parts could not be read — so that nothing
//! the SMTP intake accepted is lost from sight.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde_json::{Value, json};

use super::{ApiError, ApiResult, Auth};
use crate::state::AppState;

/// The most messages one answer lists.
const MAIL_LIST_LIMIT: u32 = 100;

pub(super) async fn mail_without_reports(
    State(state): State<AppState>,
    Auth(who): Auth,
) -> ApiResult<Json<Value>> {
    if !who.is_admin() {
        return Err(ApiError::not_found());
    }
    let Some(reports) = &state.reports else {
        return Ok(Json(json!({ "mail": [] })));
    };
    let kept = reports
        .mail_without_reports(MAIL_LIST_LIMIT)
        .await
        .map_err(|e| {
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                format!("the reports database: {e}"),
            )
        })?;
    let mail: Vec<Value> = kept
        .into_iter()
        .map(|m| {
            let mut mail = arrival_json(&m.arrival);
            mail["errors"] = m
                .errors
                .iter()
                .map(|e| json!({"source": e.source, "code": e.code, "message": e.message}))
                .collect();
            mail
        })
        .collect();
    Ok(Json(json!({ "mail": mail })))
}

/// One arrival as the API shows it (in the administrators' mail list and in a report's
/// detail): the client, the envelope, TLS and the DKIM results.
pub(super) fn arrival_json(a: &mtasts_store::reports::ArrivalRow) -> Value {
    json!({
        "arrival": a.id,
        "input": a.input,
        "received_at": a.received_at,
        "channel": a.channel,
        "peer_ip": a.peer_ip,
        "helo": a.helo,
        "mail_from": a.mail_from,
        "recipients": a.recipients,
        "tls": a.tls_version.as_ref().map(|v| json!({"version": v, "cipher": a.tls_cipher})),
        "dkim": a.dkim,
    })
}
