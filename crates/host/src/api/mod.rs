//! The REST API under `/api/v1`: JSON, bearer tokens, described by the OpenAPI document at
//! `/api/v1/openapi.json`.
//!
//! | Route | Who | Answer |
//! |---|---|---|
//! | `GET /api/v1/openapi.json` | anyone | the OpenAPI 3.1 document |
//! | `GET /api/v1/me` | any token | its role and tenant |
//! | `GET /api/v1/domains?limit=&cursor=` | any token | `{"domains": [detail…], "next_cursor"}`, by name |
//! | `POST /api/v1/domains` | admin, owner | 201, the new domain's detail |
//! | `GET /api/v1/domains/{domain}` | any token | the detail |
//! | `PATCH /api/v1/domains/{domain}` | admin, owner | the detail (a new version when the policy changed) |
//! | `DELETE /api/v1/domains/{domain}` | admin, owner | 202, the detail (removal under way) |
//! | `GET /api/v1/domains/{domain}/versions?limit=&cursor=` | any token | `{"versions": […], "next_cursor"}`, newest first |
//! | `POST /api/v1/domains/{domain}/verify` | any token | the detail after verifying now |
//! | `POST /api/v1/domains/{domain}/restore` | admin, owner | the detail: a removal under way cancelled |
//! | `POST /api/v1/domains/{domain}/claim` | admin, owner | 201, the claim's TXT record (any valid name) |
//! | `DELETE /api/v1/domains/{domain}/claim` | admin, owner | 204, the caller's claim withdrawn |
//! | `GET /api/v1/tenants` | admin | `{"tenants": […]}` |
//! | `POST /api/v1/tenants` | admin | 201, the tenant |
//! | `POST /api/v1/tenants/{tenant}/tokens` | admin | 201, the token (shown once) |
//! | `GET /api/v1/tokens` | admin, owner | `{"tokens": […]}` (admin: all; owner: its tenant's) |
//! | `DELETE /api/v1/tokens/{id}` | admin, owner | 204; the token is refused from then on |
//! | `POST /api/v1/tenants/{tenant}/users` | admin | 201, the user |
//! | `GET /api/v1/domains/{domain}/reports/tls?days=` | any token | the domain's TLS sessions per day and failures by type, MX, IP and organization |
//! | `GET /api/v1/domains/{domain}/reports/dmarc?days=` | any token | the domain's DMARC messages per day and sources |
//! | `GET /api/v1/domains/{domain}/readiness?days=` | any token | `{"tls", "dmarc"}`: the readiness advice |
//! | `GET /api/v1/reports?domain=&kind=&limit=&cursor=` | any token | `{"reports": […], "next_cursor"}`, newest first |
//! | `GET /api/v1/reports/{id}` | any token | the summary, the normalized report and its document |
//! | `GET /api/v1/reports/{id}/raw` | any token | the document as received (`application/tlsrpt+json` or `application/xml`) |
//! | `GET /api/v1/health` | any token | every visible domain's last 30 days at a glance |
//! | `GET /api/v1/admin/reports/unowned?kind=&limit=&cursor=` | admin | reports of domains nobody hosts |
//! | `GET /api/v1/alerts?limit=` | any token | `{"alerts": […]}`, open first (admin: every tenant's) |
//! | `GET /api/v1/alert-settings?tenant=` | any token | the tenant's alert settings (never the secret) |
//! | `PUT /api/v1/alert-settings?tenant=` | admin, owner | the settings; a generated webhook secret once |
//! | `GET /api/v1/admin/mail` | admin | `{"mail": […]}`: received mail that held no report, newest first |
//!
//! Lists are paginated ([`PageParams`]): `limit` rows (default 100, at most 500) and a
//! `next_cursor` to pass as `cursor` for the next page, `null` on the last.
//!
//! `rua` (the TLS-RPT report address, RFC 8460 §3) in a `PATCH` body: a string sets it, `null`
//! removes it, leaving it out keeps it. (Every other optional field treats `null` as absent.)
//! `reports_to_service` (default `true`) says whether the published `_smtp._tls` record names
//! the service's own report addresses besides the owner's `rua`.
//!
//! Another tenant's domain, and tenant administration for non-administrators, answer 404 as
//! if they did not exist (see [`crate::service`]); so does adding a name another tenant
//! hosts, unless the caller proved control of it with a claim. The router expects to be served with
//! `into_make_service_with_connect_info::<SocketAddr>()`: rate limits of failed
//! authentications are per client address.

mod admin_mail;
mod alerts;
mod error;
mod extract;
mod openapi;
mod page;
mod reports;

use std::net::SocketAddr;
use std::time::Instant;

use axum::extract::{ConnectInfo, FromRequest, Path, Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, delete, get, patch, post, put};
use axum::{Json, Router};
use serde_json::{Value, json};

pub use error::ApiError;
pub use extract::{Auth, JsonObject};
pub use openapi::document as openapi_document;
pub use page::PageParams;

use crate::service::{self, DomainChange, NewDomainRequest, NewTokenRequest, NewUserRequest};
use crate::state::AppState;

/// Every route with its handler, in documentation order. [`router`] and [`routes`] both
/// come from this list, so the OpenAPI test that compares [`routes`] with the document
/// covers the router too.
fn endpoints() -> Vec<(Method, &'static str, MethodRouter<AppState>)> {
    vec![
        (Method::GET, "/api/v1/openapi.json", get(openapi_json)),
        (Method::GET, "/api/v1/me", get(me)),
        (Method::GET, "/api/v1/domains", get(list_domains)),
        (Method::POST, "/api/v1/domains", post(create_domain)),
        (Method::GET, "/api/v1/domains/{domain}", get(get_domain)),
        (
            Method::PATCH,
            "/api/v1/domains/{domain}",
            patch(update_domain),
        ),
        (
            Method::DELETE,
            "/api/v1/domains/{domain}",
            delete(remove_domain),
        ),
        (
            Method::GET,
            "/api/v1/domains/{domain}/versions",
            get(versions),
        ),
        (
            Method::POST,
            "/api/v1/domains/{domain}/verify",
            post(verify),
        ),
        (
            Method::POST,
            "/api/v1/domains/{domain}/restore",
            post(restore),
        ),
        (Method::POST, "/api/v1/domains/{domain}/claim", post(claim)),
        (
            Method::DELETE,
            "/api/v1/domains/{domain}/claim",
            delete(drop_claim),
        ),
        (Method::GET, "/api/v1/tenants", get(list_tenants)),
        (Method::POST, "/api/v1/tenants", post(create_tenant)),
        (
            Method::POST,
            "/api/v1/tenants/{tenant}/tokens",
            post(create_token),
        ),
        (
            Method::POST,
            "/api/v1/tenants/{tenant}/users",
            post(create_user),
        ),
        (Method::GET, "/api/v1/tokens", get(list_tokens)),
        (Method::DELETE, "/api/v1/tokens/{id}", delete(revoke_token)),
        (
            Method::GET,
            "/api/v1/domains/{domain}/reports/tls",
            get(reports::tls_view),
        ),
        (
            Method::GET,
            "/api/v1/domains/{domain}/reports/dmarc",
            get(reports::dmarc_view),
        ),
        (
            Method::GET,
            "/api/v1/domains/{domain}/readiness",
            get(reports::readiness),
        ),
        (Method::GET, "/api/v1/reports", get(reports::list)),
        (Method::GET, "/api/v1/reports/{id}", get(reports::detail)),
        (Method::GET, "/api/v1/reports/{id}/raw", get(reports::raw)),
        (Method::GET, "/api/v1/health", get(reports::health)),
        (
            Method::GET,
            "/api/v1/admin/reports/unowned",
            get(reports::unowned),
        ),
        (Method::GET, "/api/v1/alerts", get(alerts::list_alerts)),
        (
            Method::GET,
            "/api/v1/alert-settings",
            get(alerts::get_settings),
        ),
        (
            Method::PUT,
            "/api/v1/alert-settings",
            put(alerts::put_settings),
        ),
        (
            Method::GET,
            "/api/v1/admin/mail",
            get(admin_mail::mail_without_reports),
        ),
    ]
}

/// The method and path template of every route the router serves.
pub fn routes() -> Vec<(Method, &'static str)> {
    endpoints()
        .into_iter()
        .map(|(method, path, _)| (method, path))
        .collect()
}

/// The API router. Serve it with connection information (see the module documentation).
pub fn router(state: AppState) -> Router {
    let timeout = state.limits.request_timeout;
    let mut router = Router::new();
    for (_, path, handler) in endpoints() {
        router = router.route(path, handler);
    }
    router
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::from_fn(move |request: Request, next: Next| {
            bounded(request, next, timeout)
        }))
        .layer(middleware::from_fn(log_and_protect))
        .with_state(state)
}

async fn not_found() -> ApiError {
    ApiError::not_found()
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "this method is not allowed here",
    )
}

async fn bounded(request: Request, next: Next, limit: std::time::Duration) -> Response {
    match tokio::time::timeout(limit, next.run(request)).await {
        Ok(response) => response,
        Err(_) => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "the request took too long",
        )
        .into_response(),
    }
}

/// Logs each request without its headers, query or body (they may carry tokens and
/// passwords), and marks every answer uncacheable (some carry new tokens).
async fn log_and_protect(request: Request, next: Next) -> Response {
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let client = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|info| info.0.ip());
    let started = Instant::now();
    let mut response = next.run(request).await;
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    tracing::info!(
        %method,
        path,
        client = client.map(tracing::field::display),
        status = response.status().as_u16(),
        elapsed_ms = started.elapsed().as_millis() as u64,
        "API request"
    );
    response
}

type ApiResult<T> = Result<T, ApiError>;

async fn openapi_json() -> Json<Value> {
    Json(openapi::document())
}

async fn me(State(state): State<AppState>, Auth(who): Auth) -> ApiResult<Json<Value>> {
    let tenant = match who.tenant_id {
        Some(id) => state
            .db
            .tenant(id)
            .await
            .map_err(service::ServiceError::from)?
            .map(|t| t.name),
        None => None,
    };
    Ok(Json(json!({"role": who.role.as_str(), "tenant": tenant})))
}

async fn list_domains(
    State(state): State<AppState>,
    Auth(who): Auth,
    page: PageParams,
) -> ApiResult<Json<Value>> {
    let page = service::domains_page(&state, &who, page.limit, page.cursor.as_deref()).await?;
    Ok(Json(
        json!({ "domains": page.items, "next_cursor": page.next_cursor }),
    ))
}

const A_STRING: &str = "a string";
const STRINGS: &str = "an array of strings";
const SECONDS: &str = "a whole number of seconds";
const DAYS: &str = "a whole number of days";
const A_STRING_OR_NULL: &str = "a string, or null to remove it";
const A_BOOLEAN: &str = "true or false";

async fn create_domain(
    State(state): State<AppState>,
    Auth(who): Auth,
    mut body: JsonObject,
) -> ApiResult<Response> {
    body.only(&[
        "domain",
        "tenant",
        "mode",
        "mx",
        "max_age",
        "rua",
        "reports_to_service",
    ])?;
    let request = NewDomainRequest {
        domain: body.required("domain", A_STRING)?,
        tenant: body.optional("tenant", A_STRING)?,
        mode: body.required("mode", A_STRING)?,
        mx: body.optional("mx", STRINGS)?,
        max_age: body.optional("max_age", SECONDS)?,
        rua: body.optional("rua", A_STRING)?,
        reports_to_service: body.optional("reports_to_service", A_BOOLEAN)?,
    };
    let detail = service::create_domain(&state, &who, request).await?;
    let location = format!("/api/v1/domains/{}", detail.domain);
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        Json(detail),
    )
        .into_response())
}

async fn get_domain(
    State(state): State<AppState>,
    Auth(who): Auth,
    Path(domain): Path<String>,
) -> ApiResult<Response> {
    Ok(Json(service::domain_detail(&state, &who, &domain).await?).into_response())
}

async fn update_domain(
    State(state): State<AppState>,
    Auth(who): Auth,
    Path(domain): Path<String>,
    mut body: JsonObject,
) -> ApiResult<Response> {
    body.only(&["mode", "mx", "max_age", "rua", "reports_to_service"])?;
    let change = DomainChange {
        mode: body.optional("mode", A_STRING)?,
        mx: body.optional("mx", STRINGS)?,
        max_age: body.optional("max_age", SECONDS)?,
        rua: body.nullable("rua", A_STRING_OR_NULL)?,
        reports_to_service: body.optional("reports_to_service", A_BOOLEAN)?,
    };
    Ok(Json(service::update_domain(&state, &who, &domain, change).await?).into_response())
}

async fn remove_domain(
    State(state): State<AppState>,
    Auth(who): Auth,
    Path(domain): Path<String>,
) -> ApiResult<Response> {
    let detail = service::remove_domain(&state, &who, &domain).await?;
    Ok((StatusCode::ACCEPTED, Json(detail)).into_response())
}

async fn versions(
    State(state): State<AppState>,
    Auth(who): Auth,
    Path(domain): Path<String>,
    page: PageParams,
) -> ApiResult<Json<Value>> {
    let page =
        service::versions_page(&state, &who, &domain, page.limit, page.cursor.as_deref()).await?;
    Ok(Json(
        json!({ "versions": page.items, "next_cursor": page.next_cursor }),
    ))
}

async fn verify(
    State(state): State<AppState>,
    Auth(who): Auth,
    Path(domain): Path<String>,
) -> ApiResult<Response> {
    Ok(Json(service::verify_domain(&state, &who, &domain).await?).into_response())
}

async fn restore(
    State(state): State<AppState>,
    Auth(who): Auth,
    Path(domain): Path<String>,
) -> ApiResult<Response> {
    Ok(Json(service::restore_domain(&state, &who, &domain).await?).into_response())
}

/// The optional body of the claim routes: only an administrator names a tenant, so an owner
/// may send none at all.
async fn claim_tenant(request: Request, state: &AppState) -> ApiResult<Option<String>> {
    let empty = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .is_none_or(|length| length.as_bytes() == b"0")
        && !request.headers().contains_key(header::TRANSFER_ENCODING);
    if empty {
        return Ok(None);
    }
    let mut body = JsonObject::from_request(request, state).await?;
    body.only(&["tenant"])?;
    body.optional("tenant", A_STRING)
}

async fn claim(
    State(state): State<AppState>,
    Auth(who): Auth,
    Path(domain): Path<String>,
    request: Request,
) -> ApiResult<Response> {
    let tenant = claim_tenant(request, &state).await?;
    let claim = service::claim_domain(&state, &who, &domain, tenant.as_deref()).await?;
    Ok((StatusCode::CREATED, Json(claim)).into_response())
}

async fn drop_claim(
    State(state): State<AppState>,
    Auth(who): Auth,
    Path(domain): Path<String>,
    request: Request,
) -> ApiResult<Response> {
    let tenant = claim_tenant(request, &state).await?;
    service::drop_claim(&state, &who, &domain, tenant.as_deref()).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn list_tenants(State(state): State<AppState>, Auth(who): Auth) -> ApiResult<Json<Value>> {
    let tenants = service::list_tenants(&state.db, &who).await?;
    Ok(Json(json!({ "tenants": tenants })))
}

async fn create_tenant(
    State(state): State<AppState>,
    Auth(who): Auth,
    mut body: JsonObject,
) -> ApiResult<Response> {
    // Non-administrators learn nothing, not even which fields exist.
    if !who.is_admin() {
        return Err(ApiError::not_found());
    }
    body.only(&["name"])?;
    let name: String = body.required("name", A_STRING)?;
    let tenant = service::create_tenant(&state.db, &who, &name).await?;
    Ok((StatusCode::CREATED, Json(tenant)).into_response())
}

async fn create_token(
    State(state): State<AppState>,
    Auth(who): Auth,
    Path(tenant): Path<String>,
    mut body: JsonObject,
) -> ApiResult<Response> {
    if !who.is_admin() {
        return Err(ApiError::not_found());
    }
    body.only(&["role", "label", "expires_in_days"])?;
    let request = NewTokenRequest {
        role: body.required("role", A_STRING)?,
        label: body.required("label", A_STRING)?,
        expires_in_days: body.optional("expires_in_days", DAYS)?,
    };
    let token = service::create_token(&state.db, &who, &tenant, request, state.now()).await?;
    Ok((StatusCode::CREATED, Json(token)).into_response())
}

async fn list_tokens(State(state): State<AppState>, Auth(who): Auth) -> ApiResult<Json<Value>> {
    let tokens = service::list_tokens(&state.db, &who, None).await?;
    Ok(Json(json!({ "tokens": tokens })))
}

async fn revoke_token(
    State(state): State<AppState>,
    Auth(who): Auth,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    // An id that is not a number names no token: 404 like any other.
    let id: i64 = id.parse().map_err(|_| ApiError::not_found())?;
    service::revoke_token(&state.db, &who, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn create_user(
    State(state): State<AppState>,
    Auth(who): Auth,
    Path(tenant): Path<String>,
    mut body: JsonObject,
) -> ApiResult<Response> {
    if !who.is_admin() {
        return Err(ApiError::not_found());
    }
    body.only(&["email", "password", "role"])?;
    let request = NewUserRequest {
        email: body.required("email", A_STRING)?,
        password: body.required("password", A_STRING)?,
        role: body.required("role", A_STRING)?,
    };
    let iterations = state.limits.password_iterations;
    let user = service::create_user(&state.db, iterations, &who, &tenant, request).await?;
    Ok((StatusCode::CREATED, Json(user)).into_response())
}
