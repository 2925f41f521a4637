//! Logging in (e-mail and password, or an API token) and out.

use std::net::SocketAddr;
use std::time::Instant;

use axum::extract::rejection::FormRejection;
use axum::extract::{Form, State};
use axum::http::{Extensions, HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use serde::Deserialize;

use mtasts_store::host::User;

use super::context::Dash;
use super::html;
use super::reply::*;
use super::session::{self, LOGIN_COOKIE, SESSION_COOKIE, SESSION_SECONDS};
use crate::auth::{self, AuthError, Principal};
use crate::state::{AppState, client_key};

pub(super) async fn login_page(State(dash): State<Dash>, headers: HeaderMap) -> Response {
    if session::load(&dash.app.db, &headers, dash.app.now())
        .await
        .is_ok()
    {
        return redirect("/");
    }
    login_form(&dash, StatusCode::OK, "", None)
}

/// The login form with a fresh double-submit token in its cookie and its hidden field.
pub(super) fn login_form(
    dash: &Dash,
    status: StatusCode,
    email: &str,
    error: Option<&str>,
) -> Response {
    let token = session::random_hex();
    let cookie = session::set_cookie(LOGIN_COOKIE, &token, "/login", 3600, dash.config.secure());
    let mut response = html_response(status, html::login(&token, email, error));
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    response
}

#[derive(Deserialize)]
pub(super) struct LoginForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
}

pub(super) async fn login(
    State(dash): State<Dash>,
    headers: HeaderMap,
    extensions: Extensions,
    form: Result<Form<LoginForm>, FormRejection>,
) -> Response {
    let peer = peer(&extensions);
    let Ok(Form(form)) = form else {
        return login_form(
            &dash,
            StatusCode::BAD_REQUEST,
            "",
            Some("The form was incomplete."),
        );
    };
    let expected = session::cookie(&headers, LOGIN_COOKIE).unwrap_or("");
    if expected.is_empty() || !session::same_secret(&form.csrf, expected) {
        return csrf_refused();
    }
    let now = dash.app.now();
    let email = form.email.trim();
    let user = if email.is_empty() {
        token_login(&dash, peer, form.password.trim(), now).await
    } else {
        password_login(&dash.app, peer, email, &form.password)
            .await
            .map(|(user, _)| user)
    };
    let user = match user {
        Ok(user) => user,
        Err(AuthError::Unavailable(e)) => return unavailable(None, &e),
        Err(AuthError::RateLimited(retry)) => {
            let mut response = html_response(
                StatusCode::TOO_MANY_REQUESTS,
                html::message(
                    "Too many attempts",
                    None,
                    &format!(
                        "Too many logins from your address. Try again in {} seconds.",
                        retry.seconds()
                    ),
                ),
            );
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(retry.seconds()));
            return response;
        }
        Err(AuthError::Missing | AuthError::Invalid) => {
            return login_form(
                &dash,
                StatusCode::UNAUTHORIZED,
                email,
                Some("Wrong e-mail address, password or token."),
            );
        }
    };
    // Expired sessions are only ever read and refused; clearing them here keeps the table small.
    if let Err(e) = dash.app.db.purge_sessions(now).await {
        tracing::warn!(error = %e, "dashboard: cannot purge expired sessions");
    }
    let id = match session::create(&dash.app.db, user.id, now).await {
        Ok(id) => id,
        Err(e) => return unavailable(None, &e.to_string()),
    };
    let secure = dash.config.secure();
    let mut response = redirect("/");
    let headers = response.headers_mut();
    for cookie in [
        session::set_cookie(SESSION_COOKIE, &id, "/", SESSION_SECONDS, secure),
        session::set_cookie(LOGIN_COOKIE, "", "/login", 0, secure),
    ] {
        if let Ok(value) = HeaderValue::from_str(&cookie) {
            headers.append(header::SET_COOKIE, value);
        }
    }
    response
}

/// A login with an API token in the password field: the same per-client limit as password
/// logins (every attempt counts), then a session for the token's stand-in user.
pub(super) async fn token_login(
    dash: &Dash,
    peer: Option<SocketAddr>,
    token: &str,
    now: i64,
) -> Result<User, AuthError> {
    dash.app
        .limiters
        .login
        .acquire(&client_key(peer), Instant::now())
        .map_err(AuthError::RateLimited)?;
    if !auth::is_token_shaped(token) {
        return Err(AuthError::Invalid);
    }
    let principal = auth::authenticate_token(&dash.app.db, token, now).await?;
    match session::token_user(&dash.app.db, &principal).await {
        Ok(Some(user)) => Ok(user),
        Ok(None) => Err(AuthError::Invalid),
        Err(e) => Err(AuthError::Unavailable(e.to_string())),
    }
}

pub(super) async fn logout(
    State(dash): State<Dash>,
    headers: HeaderMap,
    form: Result<Form<CsrfOnly>, FormRejection>,
) -> Response {
    let csrf = form.map(|Form(f)| f.csrf).unwrap_or_default();
    // Logging out is never rate limited.
    let viewer = match session_of_post(&dash, &headers, &csrf).await {
        Ok(viewer) => viewer,
        Err(response) => return response,
    };
    if let Err(e) = dash.app.db.delete_session(&viewer.id_hash).await {
        return unavailable(Some(&viewer), &e.to_string());
    }
    let mut response = redirect("/login");
    let cookie = session::set_cookie(SESSION_COOKIE, "", "/", 0, dash.config.secure());
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    response
}

// ---------------------------------------------------------------- domains

/// A dashboard login: [`auth::authenticate_password`] behind the per-client login rate limit
/// ([`crate::state::ApiLimits::login`]; every attempt counts). `peer` is the client's address.
pub async fn password_login(
    state: &AppState,
    peer: Option<SocketAddr>,
    email: &str,
    password: &str,
) -> Result<(User, Principal), AuthError> {
    state
        .limiters
        .login
        .acquire(&client_key(peer), Instant::now())
        .map_err(AuthError::RateLimited)?;
    let result =
        auth::authenticate_password(&state.db, email, password, state.limits.password_iterations)
            .await;
    if result.is_err() {
        tracing::info!(client = %client_key(peer), "dashboard login failed");
    }
    result
}
