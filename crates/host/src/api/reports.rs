//! The report routes of the API: a domain's TLS and DMARC views and readiness, the report
//! list, one report (and its document as received), the overview of every domain, and the
//! administrators' list of reports no tenant hosts. They answer from
//! [`crate::service::reports`], tenant-isolated like the domain routes.

use axum::Json;
use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use mtasts_store::reports::Kind;
use serde_json::{Value, json};

use super::error::ApiError;
use super::extract::Auth;
use super::page::PageParams;
use crate::service::reports::{self, Window};
use crate::state::AppState;

const QUERY_RULE: &str = "RFC 3986 §3.4: the query is name=value pairs, percent-encoded";
const ONCE_RULE: &str = "mtasts API: each query parameter is given at most once";
const DAYS_RULE: &str = "mtasts API: days is 30, 90 or 365 (default 30)";
const KIND_RULE: &str = "mtasts API: kind is tlsrpt or dmarc";

/// The report filters of a query: `days`, `domain`, `kind` (each at most once; other
/// parameters are ignored, as everywhere in the API).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(super) struct ReportQuery {
    window: Window,
    domain: Option<String>,
    kind: Option<Kind>,
}

impl<S: Send + Sync> FromRequestParts<S> for ReportQuery {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        let Query(pairs) = Query::<Vec<(String, String)>>::try_from_uri(&parts.uri)
            .map_err(|e| ApiError::invalid("query", QUERY_RULE, e.body_text()))?;
        let mut seen: Vec<&'static str> = Vec::new();
        let mut query = ReportQuery::default();
        for (name, value) in pairs {
            let field = match name.as_str() {
                "days" => "days",
                "domain" => "domain",
                "kind" => "kind",
                _ => continue,
            };
            if seen.contains(&field) {
                return Err(ApiError::invalid(field, ONCE_RULE, "given twice"));
            }
            seen.push(field);
            let shown: String = value.chars().take(20).collect();
            match field {
                "days" => {
                    query.window = Window::parse(&value).ok_or_else(|| {
                        ApiError::invalid("days", DAYS_RULE, format!("{shown:?} is not offered"))
                    })?
                }
                "kind" => {
                    query.kind = Some(value.parse().map_err(|_| {
                        ApiError::invalid("kind", KIND_RULE, format!("{shown:?} is not a kind"))
                    })?)
                }
                _ => query.domain = Some(value),
            }
        }
        Ok(query)
    }
}

type ApiResult<T> = Result<T, ApiError>;

pub(super) async fn tls_view(
    State(state): State<AppState>,
    Auth(who): Auth,
    Path(domain): Path<String>,
    query: ReportQuery,
) -> ApiResult<Response> {
    Ok(Json(reports::tls_view(&state, &who, &domain, query.window).await?).into_response())
}

pub(super) async fn dmarc_view(
    State(state): State<AppState>,
    Auth(who): Auth,
    Path(domain): Path<String>,
    query: ReportQuery,
) -> ApiResult<Response> {
    Ok(Json(reports::dmarc_view(&state, &who, &domain, query.window).await?).into_response())
}

pub(super) async fn readiness(
    State(state): State<AppState>,
    Auth(who): Auth,
    Path(domain): Path<String>,
    query: ReportQuery,
) -> ApiResult<Json<Value>> {
    let (tls, dmarc) = reports::readiness(&state, &who, &domain, query.window).await?;
    Ok(Json(json!({
        "domain": mtasts_proto::domain::normalize_domain(&domain).unwrap_or(domain),
        "window": query.window,
        "tls": tls,
        "dmarc": dmarc,
    })))
}

pub(super) async fn list(
    State(state): State<AppState>,
    Auth(who): Auth,
    query: ReportQuery,
    page: PageParams,
) -> ApiResult<Json<Value>> {
    let page = reports::reports(
        &state,
        &who,
        query.domain.as_deref(),
        query.kind,
        page.limit,
        page.cursor.as_deref(),
    )
    .await?;
    Ok(Json(
        json!({ "reports": page.items, "next_cursor": page.next_cursor }),
    ))
}

pub(super) async fn unowned(
    State(state): State<AppState>,
    Auth(who): Auth,
    query: ReportQuery,
    page: PageParams,
) -> ApiResult<Json<Value>> {
    let page =
        reports::unowned(&state, &who, query.kind, page.limit, page.cursor.as_deref()).await?;
    Ok(Json(
        json!({ "reports": page.items, "next_cursor": page.next_cursor }),
    ))
}

pub(super) async fn health(
    State(state): State<AppState>,
    Auth(who): Auth,
) -> ApiResult<Json<Value>> {
    let domains = reports::health(&state, &who).await?;
    Ok(Json(
        json!({ "window": Window::default(), "domains": domains }),
    ))
}

/// A report id from the path: anything but a positive number names no report.
fn report_id(text: &str) -> ApiResult<i64> {
    text.parse::<i64>()
        .ok()
        .filter(|id| *id >= 1)
        .ok_or_else(ApiError::not_found)
}

pub(super) async fn detail(
    State(state): State<AppState>,
    Auth(who): Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let detail = reports::report(&state, &who, report_id(&id)?).await?;
    let content_type = detail.raw_content_type();
    Ok(Json(json!({
        "summary": detail.summary,
        "report": detail.normalized,
        "raw": String::from_utf8(detail.raw).ok(),
        "raw_content_type": content_type,
        "arrivals": detail
            .arrivals
            .iter()
            .map(super::admin_mail::arrival_json)
            .collect::<Vec<_>>(),
    })))
}

pub(super) async fn raw(
    State(state): State<AppState>,
    Auth(who): Auth,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let id = report_id(&id)?;
    let detail = reports::report(&state, &who, id).await?;
    let content_type = detail.raw_content_type();
    let extension = if content_type.ends_with("xml") {
        "xml"
    } else {
        "json"
    };
    let mut response = detail.raw.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    // A sender's document, served from the dashboard's origin: never rendered there.
    headers.insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_str(&format!("attachment; filename=\"report-{id}.{extension}\""))
            .map_err(|_| ApiError::not_found())?,
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; sandbox"),
    );
    Ok(response)
}
