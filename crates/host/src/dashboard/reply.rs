//! The responses handlers share: pages, redirects, the viewer behind a request, and how a
//! refused service operation is shown.

use std::net::SocketAddr;
use std::time::Instant;

use axum::extract::ConnectInfo;
use axum::http::{Extensions, HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::context::Dash;
use super::html::{self, FormError, Header};
use super::session::{self, SessionError, Viewer};
use crate::ratelimit::RetryAfter;
use crate::service::ServiceError;

pub(super) fn html_response(status: StatusCode, body: String) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        body,
    )
        .into_response()
}

pub(super) fn redirect(to: &str) -> Response {
    (StatusCode::SEE_OTHER, [(header::LOCATION, to)]).into_response()
}

pub(super) fn peer(request_parts: &Extensions) -> Option<SocketAddr> {
    request_parts
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| *addr)
}

pub(super) fn unavailable(viewer: Option<&Viewer>, detail: &str) -> Response {
    tracing::warn!(error = %detail, "dashboard: database unavailable");
    let header = viewer.map(header_of);
    html_response(
        StatusCode::SERVICE_UNAVAILABLE,
        html::message(
            "Temporarily unavailable",
            header.as_ref(),
            "The service cannot reach its database right now. Try again in a moment.",
        ),
    )
}

pub(super) fn header_of(viewer: &Viewer) -> Header<'_> {
    Header {
        who: &viewer.name,
        role: html::role_label(viewer.principal.role),
        csrf: &viewer.csrf,
    }
}

/// The logged-in viewer, or the response to send instead (a redirect to the login page).
pub(super) async fn viewer(dash: &Dash, headers: &HeaderMap) -> Result<Viewer, Response> {
    match session::load(
        &dash.app.db,
        headers,
        dash.app.now(),
        dash.config.sessions(),
    )
    .await
    {
        Ok(viewer) => Ok(viewer),
        Err(SessionError::None) => Err(redirect("/login")),
        Err(SessionError::Unavailable(e)) => Err(unavailable(None, &e.to_string())),
    }
}

/// The viewer of a POST that changes something: its CSRF token must match its session (403
/// otherwise), and the change is taken from the principal's budget, the one its API calls
/// also spend ([`crate::state::RateLimiters::take_call`]; 429 with `Retry-After` when used up).
pub(super) async fn checked_viewer(
    dash: &Dash,
    headers: &HeaderMap,
    csrf: &str,
) -> Result<Viewer, Response> {
    let viewer = session_of_post(dash, headers, csrf).await?;
    match dash
        .app
        .limiters
        .take_call(&viewer.principal, Instant::now())
    {
        Ok(()) => Ok(viewer),
        Err(retry) => Err(too_many_changes(&viewer, retry)),
    }
}

/// The viewer of a POST whose CSRF token matches its session (403 otherwise), whatever its
/// budget: for ending a session, which is never refused.
pub(super) async fn session_of_post(
    dash: &Dash,
    headers: &HeaderMap,
    csrf: &str,
) -> Result<Viewer, Response> {
    let viewer = match session::load(
        &dash.app.db,
        headers,
        dash.app.now(),
        dash.config.sessions(),
    )
    .await
    {
        Ok(viewer) => viewer,
        Err(SessionError::None) => return Err(csrf_refused()),
        Err(SessionError::Unavailable(e)) => return Err(unavailable(None, &e.to_string())),
    };
    if session::same_secret(csrf, &viewer.csrf) {
        Ok(viewer)
    } else {
        Err(csrf_refused())
    }
}

/// 429 with `Retry-After`: the viewer made changes faster than its budget allows.
pub(super) fn too_many_changes(viewer: &Viewer, retry: RetryAfter) -> Response {
    let seconds = retry.seconds();
    tracing::info!(
        token_id = viewer.principal.token_id,
        user_id = viewer.principal.user_id,
        "dashboard: changes rate limited"
    );
    let mut response = html_response(
        StatusCode::TOO_MANY_REQUESTS,
        html::message(
            "Too many changes",
            Some(&header_of(viewer)),
            &format!("Too many changes in a short time. Try again in {seconds} seconds."),
        ),
    );
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
    response
}

pub(super) fn csrf_refused() -> Response {
    html_response(
        StatusCode::FORBIDDEN,
        html::message(
            "Forbidden",
            None,
            "The form had expired or did not come from this dashboard. Reload the page and try again.",
        ),
    )
}

/// A service error as a page: field errors go back into the form (`form`), the rest become
/// message pages.
pub(super) fn service_error(
    viewer: &Viewer,
    error: ServiceError,
    form: impl FnOnce(StatusCode, FormError) -> Response,
) -> Response {
    match form_error(viewer, error) {
        WriteFailure::Form(status, error) => form(status, error),
        WriteFailure::Page(page) => page,
    }
}

/// What a failed write shows.
pub(super) enum WriteFailure {
    /// The form again, with this error above its fields.
    Form(StatusCode, FormError),
    /// A message page instead of the form.
    Page(Response),
}

/// A service error a form shows above its fields (a field error, a conflict) with its status,
/// or else the message page for it.
pub(super) fn form_error(viewer: &Viewer, error: ServiceError) -> WriteFailure {
    let header = header_of(viewer);
    WriteFailure::Page(match error {
        ServiceError::Invalid(field) => {
            return WriteFailure::Form(
                StatusCode::BAD_REQUEST,
                FormError {
                    field: field.field.to_owned(),
                    message: field.message,
                    rule: Some(field.rule.to_owned()),
                },
            );
        }
        ServiceError::Conflict(message) | ServiceError::Busy { message, .. } => {
            return WriteFailure::Form(
                StatusCode::CONFLICT,
                FormError {
                    field: String::new(),
                    message,
                    rule: None,
                },
            );
        }
        ServiceError::NotFound => not_found(viewer),
        ServiceError::Forbidden => html_response(
            StatusCode::FORBIDDEN,
            html::message(
                "Read-only",
                Some(&header),
                "This account can look but not change anything.",
            ),
        ),
        ServiceError::Unavailable(message) => html_response(
            StatusCode::SERVICE_UNAVAILABLE,
            html::message("Temporarily unavailable", Some(&header), &message),
        ),
        ServiceError::Overloaded {
            message,
            retry_after,
        } => {
            let mut response = html_response(
                StatusCode::SERVICE_UNAVAILABLE,
                html::message("Temporarily unavailable", Some(&header), &message),
            );
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(retry_after));
            response
        }
        ServiceError::Internal(message) => {
            tracing::error!(error = %message, "dashboard: internal error");
            html_response(
                StatusCode::INTERNAL_SERVER_ERROR,
                html::message(
                    "Internal error",
                    Some(&header),
                    "Something went wrong on our side; it has been logged.",
                ),
            )
        }
    })
}

pub(super) fn not_found(viewer: &Viewer) -> Response {
    html_response(
        StatusCode::NOT_FOUND,
        html::message(
            "Not found",
            Some(&header_of(viewer)),
            "There is no such domain here.",
        ),
    )
}

// ---------------------------------------------------------------- login and logout

/// A POST form that carries nothing but the CSRF token (logout, removal).
#[derive(Deserialize)]
pub(super) struct CsrfOnly {
    #[serde(default)]
    pub(super) csrf: String,
}
