//! Logging in (e-mail and password, or an API token) and out.

use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

use axum::extract::rejection::FormRejection;
use axum::extract::{Form, State};
use axum::http::{Extensions, HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use serde::Deserialize;

use mtasts_store::host::User;

use super::context::Dash;
use super::html;
use super::login_csrf::LOGIN_FORM_SECONDS;
use super::reply::*;
use super::session::{self, LOGIN_COOKIE, SESSION_COOKIE};
use crate::auth::{self, AuthError, Principal};
use crate::state::{AppState, client_key};

pub(super) async fn login_page(State(dash): State<Dash>, headers: HeaderMap) -> Response {
    let now = dash.app.now();
    if session::load(&dash.app.db, &headers, now, dash.config.sessions())
        .await
        .is_ok()
    {
        return redirect("/");
    }
    login_form(&dash, StatusCode::OK, "", None).await
}

/// The login form with a fresh server-issued token ([`super::login_csrf`]) in its cookie and
/// its hidden field.
pub(super) async fn login_form(
    dash: &Dash,
    status: StatusCode,
    email: &str,
    error: Option<&str>,
) -> Response {
    let token = match dash.login_key.issue(&dash.app.db, dash.app.now()).await {
        Ok(token) => token,
        Err(e) => return unavailable(None, &e.to_string()),
    };
    let cookie = session::set_cookie(
        LOGIN_COOKIE,
        &token,
        "/login",
        LOGIN_FORM_SECONDS,
        dash.config.secure(),
    );
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
    let client = dash.app.client_key(peer(&extensions), &headers);
    let Ok(Form(form)) = form else {
        return login_form(
            &dash,
            StatusCode::BAD_REQUEST,
            "",
            Some("The form was incomplete."),
        )
        .await;
    };
    let now = dash.app.now();
    let expected = session::cookie(&headers, LOGIN_COOKIE).unwrap_or("");
    if expected.is_empty() || !session::same_secret(&form.csrf, expected) {
        return csrf_refused();
    }
    // Equal is not enough: a value planted as both cookie and field must have come from us.
    match dash.login_key.verify(&dash.app.db, &form.csrf, now).await {
        Ok(true) => {}
        Ok(false) => return csrf_refused(),
        Err(e) => return unavailable(None, &e.to_string()),
    }
    let email = form.email.trim();
    let user = if email.is_empty() {
        token_login(&dash, client, form.password.trim(), now).await
    } else {
        limited_login(&dash.app, client, Some(email), async {
            auth::authenticate_password(
                &dash.app.db,
                email,
                &form.password,
                dash.app.limits.password_iterations,
            )
            .await
            .map(|(user, _)| user)
        })
        .await
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
                        "Too many failed logins from your address or for this account. Try again in {} seconds.",
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
            )
            .await;
        }
    };
    let lifetimes = dash.config.sessions();
    // Expired and idle sessions are only ever read and refused; clearing them here keeps the
    // table small.
    if let Err(e) = dash.app.db.purge_sessions(now).await {
        tracing::warn!(error = %e, "dashboard: cannot purge expired sessions");
    }
    if let Err(e) = dash
        .app
        .db
        .purge_idle_sessions(now.saturating_sub(lifetimes.idle))
        .await
    {
        tracing::warn!(error = %e, "dashboard: cannot purge idle sessions");
    }
    let id = match session::create(&dash.app.db, user.id, now, lifetimes).await {
        Ok(id) => id,
        Err(e) => return unavailable(None, &e.to_string()),
    };
    let secure = dash.config.secure();
    let mut response = redirect("/");
    let headers = response.headers_mut();
    for cookie in [
        session::set_cookie(SESSION_COOKIE, &id, "/", lifetimes.total, secure),
        session::set_cookie(LOGIN_COOKIE, "", "/login", 0, secure),
    ] {
        if let Ok(value) = HeaderValue::from_str(&cookie) {
            headers.append(header::SET_COOKIE, value);
        }
    }
    response
}

/// A login with an API token in the password field: the same per-client limit of failures as
/// password logins, then a session for the token's stand-in user.
pub(super) async fn token_login(
    dash: &Dash,
    client: IpAddr,
    token: &str,
    now: i64,
) -> Result<User, AuthError> {
    limited_login(&dash.app, client, None, async {
        if !auth::is_token_shaped(token) {
            return Err(AuthError::Invalid);
        }
        let principal = auth::authenticate_token(&dash.app.db, token, now).await?;
        match session::token_user(&dash.app.db, &principal).await {
            Ok(Some(user)) => Ok(user),
            Ok(None) => Err(AuthError::Invalid),
            Err(e) => Err(AuthError::Unavailable(e.to_string())),
        }
    })
    .await
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
    logged_out(&dash)
}

/// Logs the user out everywhere: every session of the viewer's user ends (this one too).
pub(super) async fn logout_all(
    State(dash): State<Dash>,
    headers: HeaderMap,
    form: Result<Form<CsrfOnly>, FormRejection>,
) -> Response {
    let csrf = form.map(|Form(f)| f.csrf).unwrap_or_default();
    // Like logging out, never rate limited: ending sessions must always be possible.
    let viewer = match session_of_post(&dash, &headers, &csrf).await {
        Ok(viewer) => viewer,
        Err(response) => return response,
    };
    let ended = match viewer.principal.user_id {
        Some(user_id) => dash.app.db.delete_user_sessions(user_id).await,
        None => dash
            .app
            .db
            .delete_session(&viewer.id_hash)
            .await
            .map(u64::from),
    };
    match ended {
        Ok(count) => {
            tracing::info!(
                user = viewer.principal.user_id,
                sessions = count,
                "dashboard: logged out everywhere"
            );
            logged_out(&dash)
        }
        Err(e) => unavailable(Some(&viewer), &e.to_string()),
    }
}

/// The answer once a session is over: the login page, and the cookie cleared.
fn logged_out(dash: &Dash) -> Response {
    let mut response = redirect("/login");
    let cookie = session::set_cookie(SESSION_COOKIE, "", "/", 0, dash.config.secure());
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    response
}

/// Runs a login `attempt` behind the failed-login limits: per client address (`client`,
/// [`crate::state::ApiLimits::login`]) and, for a password login, per account (the
/// normalised `email`, [`crate::state::ApiLimits::login_account`]). An attempt is refused
/// with [`AuthError::RateLimited`] when either is used up; only a failed attempt uses them
/// (the action taken up front is given back when it succeeds, or when the database could not
/// tell), so any number of correct logins behind one proxy address lock nobody out.
pub(crate) async fn limited_login<T>(
    state: &AppState,
    client: IpAddr,
    email: Option<&str>,
    attempt: impl Future<Output = Result<T, AuthError>>,
) -> Result<T, AuthError> {
    let limiters = &state.limiters;
    let account = email.map(account_key);
    let started = Instant::now();
    limiters
        .login
        .acquire(&client, started)
        .map_err(AuthError::RateLimited)?;
    if let Some(account) = &account
        && let Err(retry) = limiters.login_account.acquire(account, started)
    {
        limiters.login.refund(&client, started);
        tracing::info!(client = %client, "dashboard login refused: too many failures for the account");
        return Err(AuthError::RateLimited(retry));
    }
    let result = attempt.await;
    match &result {
        Err(AuthError::Invalid | AuthError::Missing) => {
            tracing::info!(client = %client, "dashboard login failed");
        }
        Ok(_) | Err(_) => {
            let now = Instant::now();
            limiters.login.refund(&client, now);
            if let Some(account) = &account {
                limiters.login_account.refund(account, now);
            }
        }
    }
    result
}

/// The per-account limiter's key: the address as stored (trimmed, ASCII lowercase), cut to
/// the longest address the database keeps, so keys stay small.
fn account_key(email: &str) -> String {
    let mut key = email.trim().to_ascii_lowercase();
    let mut end = key.len().min(mtasts_store::host::MAX_EMAIL_BYTES);
    while !key.is_char_boundary(end) {
        end -= 1;
    }
    key.truncate(end);
    key
}

/// A dashboard login by e-mail and password behind the failed-login limits (per client
/// address and per account), for a connection from `peer` (forwarding headers are not looked
/// at: the dashboard's handler passes the client address it found itself).
pub async fn password_login(
    state: &AppState,
    peer: Option<SocketAddr>,
    email: &str,
    password: &str,
) -> Result<(User, Principal), AuthError> {
    limited_login(state, client_key(peer), Some(email), async {
        auth::authenticate_password(&state.db, email, password, state.limits.password_iterations)
            .await
    })
    .await
}
