//! The responses handlers share: pages, redirects, the viewer behind a request, and how a
//! refused service operation is shown.

use std::net::SocketAddr;

use axum::extract::ConnectInfo;
use axum::http::{Extensions, HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::context::Dash;
use super::html::{self, FormError, Header};
use super::session::{self, SessionError, Viewer};
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
    match session::load(&dash.app.db, headers, dash.app.now()).await {
        Ok(viewer) => Ok(viewer),
        Err(SessionError::None) => Err(redirect("/login")),
        Err(SessionError::Unavailable(e)) => Err(unavailable(None, &e.to_string())),
    }
}

/// The viewer of a POST whose CSRF token matches its session; 403 otherwise.
pub(super) async fn checked_viewer(
    dash: &Dash,
    headers: &HeaderMap,
    csrf: &str,
) -> Result<Viewer, Response> {
    let viewer = match session::load(&dash.app.db, headers, dash.app.now()).await {
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
        ServiceError::Conflict(message) => {
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
