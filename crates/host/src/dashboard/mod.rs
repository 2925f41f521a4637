//! The web dashboard: server-rendered HTML for domain owners and administrators, no
//! JavaScript.
//!
//! | Route | Answer |
//! |---|---|
//! | `GET /login`, `POST /login` | the login form; e-mail + password, or an empty e-mail and an API token |
//! | `POST /logout` | ends the session |
//! | `GET /` | the domains with their status, and the add form |
//! | `POST /domains` | adds a domain (mx empty: looked up in DNS; rua empty: no TLS-RPT record) |
//! | `GET /domains/{domain}` | policy, CNAMEs with their status and fix, certificate, history, change and remove forms |
//! | `POST /domains/{domain}` | changes mode, mx, max_age (a new version when the policy changed) and rua (empty: removed) |
//! | `POST /domains/{domain}/remove` | starts the safe removal (RFC 8461 §8.3) |
//! | `GET /static/style.css` | the stylesheet |
//!
//! Every domain read and write goes through [`crate::service`], so the dashboard and the API
//! apply the same visibility, role and validation rules: another tenant's domain is a 404
//! page here as it is a 404 there.
//!
//! Defences: sessions are random 32-byte ids whose SHA-256 is stored, in an `HttpOnly;
//! SameSite=Strict` cookie (`Secure` when the public URL is https); every form carries the
//! session's CSRF token, compared in constant time on every POST (403 otherwise); a POST with
//! an `Origin` that is not this host, or a `Sec-Fetch-Site` other than `same-origin`, is
//! refused (403; `Origin: null`, which our `no-referrer` pages make browsers send, is decided
//! by `Sec-Fetch-Site`); the login form uses a double-submit
//! cookie, since there is no session yet. Every response carries a strict
//! `Content-Security-Policy` (no script at all), `X-Frame-Options: DENY`, `nosniff`,
//! `Referrer-Policy: no-referrer` and `Cache-Control: no-store`. Logins are rate
//! limited per client address ([`crate::state::RateLimiters::login`], every attempt counts).
//!
//! The router expects `into_make_service_with_connect_info::<SocketAddr>()`, like the API.

mod html;
mod session;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use axum::extract::rejection::FormRejection;
use axum::extract::{ConnectInfo, Form, Path, State};
use axum::http::{Extensions, HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Router, extract::Request};
use serde::Deserialize;

pub use html::escape;
pub use session::{SESSION_COOKIE, SESSION_SECONDS};

use mtasts_store::host::User;

use crate::auth::{self, AuthError};
use crate::service::{self, DomainChange, NewDomainRequest, ServiceError};
use crate::state::{AppState, client_key};
use html::{AddForm, ChangeForm, FormError, Header};
use session::{LOGIN_COOKIE, SessionError, Viewer};

/// The stylesheet, served at `/static/style.css` (the CSP allows styles from this origin only).
const STYLE: &str = include_str!("style.css");

/// The security headers every dashboard response carries.
const SECURITY_HEADERS: [(&str, &str); 5] = [
    (
        "content-security-policy",
        "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    ),
    ("x-frame-options", "DENY"),
    ("x-content-type-options", "nosniff"),
    ("referrer-policy", "no-referrer"),
    ("cache-control", "no-store"),
];

/// How the dashboard is reached from browsers.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DashboardConfig {
    /// The configured public URL (`https://…` makes the cookies `Secure`); its origin is also
    /// accepted in `Origin` headers besides the request's own `Host`.
    pub public_url: Option<String>,
}

impl DashboardConfig {
    fn secure(&self) -> bool {
        self.public_url.as_deref().is_some_and(|u| {
            u.get(..8)
                .is_some_and(|s| s.eq_ignore_ascii_case("https://"))
        })
    }

    /// `scheme://host[:port]` of the public URL, lowercase.
    fn origin(&self) -> Option<String> {
        let url = self.public_url.as_deref()?;
        let (scheme, rest) = url.split_once("://")?;
        let authority = rest.split(['/', '?', '#']).next()?;
        Some(format!("{scheme}://{authority}").to_ascii_lowercase())
    }
}

#[derive(Clone)]
struct Dash {
    app: AppState,
    config: Arc<DashboardConfig>,
}

/// The dashboard router with the default [`DashboardConfig`] (no public URL: cookies are not
/// `Secure`, only the request's own host is an accepted `Origin`).
pub fn router(state: AppState) -> Router {
    router_with(state, DashboardConfig::default())
}

/// The dashboard router.
pub fn router_with(state: AppState, config: DashboardConfig) -> Router {
    let dash = Dash {
        app: state,
        config: Arc::new(config),
    };
    Router::new()
        .route("/", get(list_page))
        .route("/login", get(login_page).post(login))
        .route("/logout", post(logout))
        .route("/domains", post(add_domain))
        .route("/domains/{domain}", get(detail_page).post(change_domain))
        .route("/domains/{domain}/remove", post(remove_domain))
        .route("/static/style.css", get(style))
        .layer(middleware::from_fn_with_state(dash.clone(), guard))
        .with_state(dash)
}

/// Adds the security headers to every response and refuses cross-origin POSTs before any
/// handler runs.
async fn guard(State(dash): State<Dash>, request: Request, next: middleware::Next) -> Response {
    let mut response =
        if request.method() == Method::POST && !same_origin(request.headers(), &dash.config) {
            html_response(
                StatusCode::FORBIDDEN,
                html::message(
                    "Forbidden",
                    None,
                    "This form was sent from another site and was refused.",
                ),
            )
        } else {
            next.run(request).await
        };
    let headers = response.headers_mut();
    for (name, value) in SECURITY_HEADERS {
        headers.insert(name, HeaderValue::from_static(value));
    }
    response
}

/// Whether a POST comes from this dashboard's own pages, as far as the browser says.
///
/// * An `Origin` other than `null` must be this host (by the `Host` header) or the configured
///   public origin.
/// * `Origin: null` is what browsers send for a form POST from a page whose
///   `Referrer-Policy` is `no-referrer` — ours, on purpose. For those, `Sec-Fetch-Site`
///   (sent by every current browser, and not settable by pages) decides: only `same-origin`
///   passes. A `null` without it (an old browser) passes to the CSRF check.
/// * No `Origin` at all is a non-browser client; the CSRF token and the `SameSite=Strict`
///   cookie still apply.
fn same_origin(headers: &HeaderMap, config: &DashboardConfig) -> bool {
    let fetch_site = headers
        .get("sec-fetch-site")
        .map(|v| v.as_bytes().eq_ignore_ascii_case(b"same-origin"));
    if fetch_site == Some(false) {
        return false;
    }
    let Some(origin) = headers.get(header::ORIGIN) else {
        return true;
    };
    let Ok(origin) = origin.to_str() else {
        return false;
    };
    let origin = origin.to_ascii_lowercase();
    if origin == "null" {
        return true;
    }
    if config.origin().is_some_and(|o| o == origin) {
        return true;
    }
    let Some((_, authority)) = origin.split_once("://") else {
        return false;
    };
    headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .is_some_and(|host| host.eq_ignore_ascii_case(authority))
}

fn html_response(status: StatusCode, body: String) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        body,
    )
        .into_response()
}

fn redirect(to: &str) -> Response {
    (StatusCode::SEE_OTHER, [(header::LOCATION, to)]).into_response()
}

async fn style() -> Response {
    ([(header::CONTENT_TYPE, "text/css; charset=utf-8")], STYLE).into_response()
}

fn peer(request_parts: &Extensions) -> Option<SocketAddr> {
    request_parts
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| *addr)
}

fn unavailable(viewer: Option<&Viewer>, detail: &str) -> Response {
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

fn header_of(viewer: &Viewer) -> Header<'_> {
    Header {
        who: &viewer.name,
        role: viewer.principal.role.as_str(),
        csrf: &viewer.csrf,
    }
}

/// The logged-in viewer, or the response to send instead (a redirect to the login page).
async fn viewer(dash: &Dash, headers: &HeaderMap) -> Result<Viewer, Response> {
    match session::load(&dash.app.db, headers, dash.app.now()).await {
        Ok(viewer) => Ok(viewer),
        Err(SessionError::None) => Err(redirect("/login")),
        Err(SessionError::Unavailable(e)) => Err(unavailable(None, &e.to_string())),
    }
}

/// The viewer of a POST whose CSRF token matches its session; 403 otherwise.
async fn checked_viewer(dash: &Dash, headers: &HeaderMap, csrf: &str) -> Result<Viewer, Response> {
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

fn csrf_refused() -> Response {
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
fn service_error(
    viewer: &Viewer,
    error: ServiceError,
    form: impl FnOnce(StatusCode, FormError) -> Response,
) -> Response {
    let header = header_of(viewer);
    match error {
        ServiceError::Invalid(field) => form(
            StatusCode::BAD_REQUEST,
            FormError {
                field: field.field.to_owned(),
                message: field.message,
                rule: Some(field.rule.to_owned()),
            },
        ),
        ServiceError::Conflict(message) => form(
            StatusCode::CONFLICT,
            FormError {
                field: String::new(),
                message,
                rule: None,
            },
        ),
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
    }
}

fn not_found(viewer: &Viewer) -> Response {
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

async fn login_page(State(dash): State<Dash>, headers: HeaderMap) -> Response {
    if session::load(&dash.app.db, &headers, dash.app.now())
        .await
        .is_ok()
    {
        return redirect("/");
    }
    login_form(&dash, StatusCode::OK, "", None)
}

/// The login form with a fresh double-submit token in its cookie and its hidden field.
fn login_form(dash: &Dash, status: StatusCode, email: &str, error: Option<&str>) -> Response {
    let token = session::random_hex();
    let cookie = session::set_cookie(LOGIN_COOKIE, &token, "/login", 3600, dash.config.secure());
    let mut response = html_response(status, html::login(&token, email, error));
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    response
}

#[derive(Deserialize)]
struct LoginForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
}

async fn login(
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
        auth::login(&dash.app, peer, email, &form.password)
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
async fn token_login(
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

#[derive(Deserialize)]
struct CsrfOnly {
    #[serde(default)]
    csrf: String,
}

async fn logout(
    State(dash): State<Dash>,
    headers: HeaderMap,
    form: Result<Form<CsrfOnly>, FormRejection>,
) -> Response {
    let csrf = form.map(|Form(f)| f.csrf).unwrap_or_default();
    let viewer = match checked_viewer(&dash, &headers, &csrf).await {
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

async fn list_page(State(dash): State<Dash>, headers: HeaderMap) -> Response {
    let viewer = match viewer(&dash, &headers).await {
        Ok(viewer) => viewer,
        Err(response) => return response,
    };
    render_list(&dash, &viewer, StatusCode::OK, &AddForm::default(), None).await
}

async fn render_list(
    dash: &Dash,
    viewer: &Viewer,
    status: StatusCode,
    form: &AddForm,
    error: Option<&FormError>,
) -> Response {
    match service::list_domains(&dash.app, &viewer.principal).await {
        Ok(list) => html_response(
            status,
            html::domains(
                &header_of(viewer),
                &list,
                viewer.principal.is_admin(),
                viewer.principal.can_write(),
                form,
                error,
            ),
        ),
        Err(e) => service_error(viewer, e, |_, _| unreachable_form()),
    }
}

/// Listing has no form to return errors to; field errors cannot happen there.
fn unreachable_form() -> Response {
    html_response(
        StatusCode::INTERNAL_SERVER_ERROR,
        html::message("Internal error", None, "Unexpected error while listing."),
    )
}

#[derive(Deserialize)]
struct AddFields {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    domain: String,
    #[serde(default)]
    tenant: String,
    #[serde(default)]
    mode: String,
    #[serde(default)]
    mx: String,
    #[serde(default)]
    max_age: String,
    #[serde(default)]
    rua: String,
}

/// The mx textarea: one pattern per line (commas and spaces also separate).
fn mx_lines(text: &str) -> Vec<String> {
    text.split(|c: char| c == ',' || c.is_whitespace())
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

/// The rua field: empty (or only spaces) is `None`, no report address.
fn rua_field(text: &str) -> Option<String> {
    let text = text.trim();
    (!text.is_empty()).then(|| text.to_owned())
}

/// The max_age field: empty is `None`.
fn max_age_field(text: &str) -> Result<Option<u64>, FormError> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    text.parse().map(Some).map_err(|_| FormError {
        field: "max_age".to_owned(),
        message: format!("{text:?} is not a whole number of seconds"),
        rule: Some("RFC 8461 §3.2: max_age is 1 to 31557600 seconds".to_owned()),
    })
}

async fn add_domain(
    State(dash): State<Dash>,
    headers: HeaderMap,
    form: Result<Form<AddFields>, FormRejection>,
) -> Response {
    let Ok(Form(fields)) = form else {
        return csrf_refused();
    };
    let viewer = match checked_viewer(&dash, &headers, &fields.csrf).await {
        Ok(viewer) => viewer,
        Err(response) => return response,
    };
    let again = AddForm {
        domain: fields.domain.clone(),
        tenant: fields.tenant.clone(),
        mode: fields.mode.clone(),
        mx: fields.mx.clone(),
        max_age: fields.max_age.clone(),
        rua: fields.rua.clone(),
    };
    let max_age = match max_age_field(&fields.max_age) {
        Ok(v) => v,
        Err(error) => {
            return render_list(
                &dash,
                &viewer,
                StatusCode::BAD_REQUEST,
                &again,
                Some(&error),
            )
            .await;
        }
    };
    let mx = mx_lines(&fields.mx);
    let tenant = fields.tenant.trim();
    let request = NewDomainRequest {
        domain: fields.domain.trim().to_owned(),
        tenant: (!tenant.is_empty()).then(|| tenant.to_owned()),
        mode: fields.mode.trim().to_owned(),
        mx: (!mx.is_empty()).then_some(mx),
        max_age,
        rua: rua_field(&fields.rua),
    };
    match service::create_domain(&dash.app, &viewer.principal, request).await {
        Ok(detail) => redirect(&format!("/domains/{}", detail.domain)),
        Err(error) => {
            let mut failed = None;
            let response = service_error(&viewer, error, |status, form_error| {
                failed = Some((status, form_error));
                Response::default()
            });
            match failed {
                Some((status, form_error)) => {
                    render_list(&dash, &viewer, status, &again, Some(&form_error)).await
                }
                None => response,
            }
        }
    }
}

async fn detail_page(
    State(dash): State<Dash>,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> Response {
    let viewer = match viewer(&dash, &headers).await {
        Ok(viewer) => viewer,
        Err(response) => return response,
    };
    render_detail(&dash, &viewer, &name, StatusCode::OK, None, None).await
}

async fn render_detail(
    dash: &Dash,
    viewer: &Viewer,
    name: &str,
    status: StatusCode,
    form: Option<&ChangeForm>,
    error: Option<&FormError>,
) -> Response {
    let who = &viewer.principal;
    let detail = match service::domain_detail(&dash.app, who, name).await {
        Ok(detail) => detail,
        Err(e) => return service_error(viewer, e, |_, _| not_found(viewer)),
    };
    let history = match service::history(&dash.app, who, name).await {
        Ok(history) => history,
        Err(e) => return service_error(viewer, e, |_, _| not_found(viewer)),
    };
    html_response(
        status,
        html::detail(
            &header_of(viewer),
            &detail,
            &history,
            who.can_write(),
            form,
            error,
        ),
    )
}

#[derive(Deserialize)]
struct ChangeFields {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    mode: String,
    #[serde(default)]
    mx: String,
    #[serde(default)]
    max_age: String,
    #[serde(default)]
    rua: String,
}

async fn change_domain(
    State(dash): State<Dash>,
    headers: HeaderMap,
    Path(name): Path<String>,
    form: Result<Form<ChangeFields>, FormRejection>,
) -> Response {
    let Ok(Form(fields)) = form else {
        return csrf_refused();
    };
    let viewer = match checked_viewer(&dash, &headers, &fields.csrf).await {
        Ok(viewer) => viewer,
        Err(response) => return response,
    };
    let again = ChangeForm {
        mode: fields.mode.clone(),
        mx: fields.mx.clone(),
        max_age: fields.max_age.clone(),
        rua: fields.rua.clone(),
    };
    let max_age = match max_age_field(&fields.max_age) {
        Ok(v) => v,
        Err(error) => {
            return render_detail(
                &dash,
                &viewer,
                &name,
                StatusCode::BAD_REQUEST,
                Some(&again),
                Some(&error),
            )
            .await;
        }
    };
    let mode = fields.mode.trim();
    // The form always sends every field: the service keeps the version when nothing changed,
    // and an emptied rua field removes the report address.
    let change = DomainChange {
        mode: (!mode.is_empty()).then(|| mode.to_owned()),
        mx: Some(mx_lines(&fields.mx)),
        max_age,
        rua: Some(rua_field(&fields.rua)),
    };
    match service::update_domain(&dash.app, &viewer.principal, &name, change).await {
        Ok(detail) => redirect(&format!("/domains/{}", detail.domain)),
        Err(error) => form_failure(&dash, &viewer, &name, error, Some(&again)).await,
    }
}

/// A failed write on the detail page: field errors and conflicts are shown above its forms.
async fn form_failure(
    dash: &Dash,
    viewer: &Viewer,
    name: &str,
    error: ServiceError,
    again: Option<&ChangeForm>,
) -> Response {
    let mut failed = None;
    let response = service_error(viewer, error, |status, form_error| {
        failed = Some((status, form_error));
        Response::default()
    });
    match failed {
        Some((status, form_error)) => {
            render_detail(dash, viewer, name, status, again, Some(&form_error)).await
        }
        None => response,
    }
}

async fn remove_domain(
    State(dash): State<Dash>,
    headers: HeaderMap,
    Path(name): Path<String>,
    form: Result<Form<CsrfOnly>, FormRejection>,
) -> Response {
    let csrf = form.map(|Form(f)| f.csrf).unwrap_or_default();
    let viewer = match checked_viewer(&dash, &headers, &csrf).await {
        Ok(viewer) => viewer,
        Err(response) => return response,
    };
    match service::remove_domain(&dash.app, &viewer.principal, &name).await {
        Ok(detail) => redirect(&format!("/domains/{}", detail.domain)),
        Err(error) => form_failure(&dash, &viewer, &name, error, None).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            map.insert(*k, HeaderValue::from_static(v));
        }
        map
    }

    #[test]
    fn origin_must_be_this_host() {
        let config = DashboardConfig::default();
        assert!(same_origin(&headers(&[("host", "127.0.0.9:80")]), &config));
        assert!(same_origin(
            &headers(&[("host", "127.0.0.9:80"), ("origin", "http://127.0.0.9:80")]),
            &config
        ));
        assert!(!same_origin(
            &headers(&[("host", "127.0.0.9:80"), ("origin", "http://evil.example")]),
            &config
        ));
        // Our own no-referrer pages make browsers send `Origin: null`; Sec-Fetch-Site decides.
        assert!(same_origin(
            &headers(&[
                ("host", "127.0.0.9:80"),
                ("origin", "null"),
                ("sec-fetch-site", "same-origin")
            ]),
            &config
        ));
        for site in ["cross-site", "same-site", "none"] {
            assert!(!same_origin(
                &headers(&[
                    ("host", "127.0.0.9:80"),
                    ("origin", "null"),
                    ("sec-fetch-site", site)
                ]),
                &config
            ));
        }
        assert!(!same_origin(
            &headers(&[
                ("host", "127.0.0.9:80"),
                ("origin", "http://127.0.0.9:80"),
                ("sec-fetch-site", "cross-site")
            ]),
            &config
        ));
        let public = DashboardConfig {
            public_url: Some("https://Dash.Example/".to_owned()),
        };
        assert!(public.secure());
        assert!(same_origin(
            &headers(&[
                ("host", "10.0.0.1:8080"),
                ("origin", "https://dash.example")
            ]),
            &public
        ));
        assert!(!DashboardConfig::default().secure());
    }

    #[test]
    fn mx_and_max_age_fields() {
        assert_eq!(
            mx_lines("mx1.example.com\r\n\n mx2.example.com, *.mx.example.com "),
            ["mx1.example.com", "mx2.example.com", "*.mx.example.com"]
        );
        assert!(mx_lines("  \n").is_empty());
        assert_eq!(max_age_field(" "), Ok(None));
        assert_eq!(max_age_field("86400"), Ok(Some(86400)));
        assert_eq!(max_age_field("1d").unwrap_err().field, "max_age");
        assert_eq!(rua_field(" \r\n"), None);
        assert_eq!(
            rua_field(" mailto:tlsrpt@example.com\r\n").as_deref(),
            Some("mailto:tlsrpt@example.com")
        );
    }
}
