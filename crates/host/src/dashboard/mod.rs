//! The web dashboard: server-rendered HTML for domain owners and administrators, no
//! JavaScript.
//!
//! | Route | Answer |
//! |---|---|
//! | `GET /login`, `POST /login` | the login form; e-mail + password, or an empty e-mail and an API token |
//! | `POST /logout` | ends the session (on every node: it is deleted from the database) |
//! | `POST /logout-all` | ends every session of the logged-in user |
//! | `GET /`, `GET /?cursor=` | a page of the domains (50) with their status, and the add form |
//! | `POST /domains` | adds a domain (mx empty: looked up in DNS; rua: the owner's own TLS-RPT address; `reports_to_service` checkbox: the service's too) |
//! | `GET /domains/{domain}`, `…?cursor=` | policy, CNAMEs with their status and fix, certificate, a page of the history (50), change and remove forms |
//! | `POST /domains/{domain}` | changes mode, mx, max_age (a new version when the policy changed), rua (empty: removed) and the `reports_to_service` checkbox (absent: unticked) |
//! | `POST /domains/{domain}/remove` | starts the safe removal (RFC 8461 §8.3) |
//! | `POST /domains/{domain}/restore` | cancels a removal under way (the policy returns under a new id) |
//! | `GET /domains/{domain}/reports?days=30\|90\|365` | the domain's TLS reports: sessions per day, failures by result type, MX, IP, organization and sending IP, readiness and the switch to enforce, the report list |
//! | `GET /domains/{domain}/dmarc?days=` | the domain's DMARC reports: messages per day by disposition, pass rate, sources and what quarantine/reject would do to them, the next policy step |
//! | `GET /reports`, `…?cursor=` | administrators: a page (50) of the reports about domains nobody hosts |
//! | `GET /admin/mail`, `…?cursor=` | administrators: a page (50) of the mail that held no report, newest first, with how it arrived and why nothing was read |
//! | `GET /admin/mail/{input}/message` | administrators: one such message as received (`message/rfc822`, an attachment) |
//! | `GET /reports/{id}` | one report: its summary, normalized JSON and the document as received |
//! | `GET /static/style.css` | the stylesheet |
//! | `GET /alerts` | the alerts (open first) and the tenant's alert settings form |
//! | `POST /alerts/settings` | saves the alert settings (webhook, e-mail, threshold) |
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
//! by `Sec-Fetch-Site`); the login form, which has no session yet, uses a double-submit
//! cookie whose value the server issued and signed (`login_csrf`: a value made up by someone
//! else is refused). Sessions end after `session_idle_timeout` unused and at
//! `session_lifetime`. Every response carries a strict
//! `Content-Security-Policy` (no script at all), `X-Frame-Options: DENY`, `nosniff`,
//! `Referrer-Policy: no-referrer` and `Cache-Control: no-store`. Failed logins are rate
//! limited per client address ([`crate::state::AppState::client_key`], which reads forwarding
//! headers of trusted proxies only) and per account ([`crate::state::RateLimiters`]); a
//! successful login does not count.
//! Every POST that changes something spends the principal's budget of API calls
//! ([`crate::state::RateLimiters::take_call`]: a password session as its user, a token session
//! as its token), so the dashboard is no way around the API's rate; over it, 429 with
//! `Retry-After`. Logging out is never limited.
//!
//! The router expects `into_make_service_with_connect_info::<SocketAddr>()`, like the API.
//!
//! Modules: `guard` (security headers, the origin check), `login` (log in and out),
//! `domains` (the domain pages and their forms), `reply` (responses the handlers share, the
//! viewer of a request, service errors as pages), `session` (sessions and cookies), `html`
//! (the pages), `context` (the router's state and [`DashboardConfig`]), `reports` (the report
//! pages, readiness and health), `report_html` (their templates), `charts` (inline SVG),
//! `admin_mail` (the administrators' list of mail without reports).

mod admin_mail;
mod alerts;
mod check_html;
mod context;
mod domains;
mod guard;
mod html;
mod login;
mod login_csrf;
mod reply;
mod session;
// dashboard: report pages
mod charts;
mod report_html;
mod reports;

use axum::Router;
use axum::http::header;
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

pub use context::DashboardConfig;
pub use html::escape;
pub use login::password_login;
pub use session::{SESSION_COOKIE, SESSION_SECONDS};

use crate::state::AppState;
use context::Dash;
use domains::{add_domain, change_domain, detail_page, list_page, remove_domain, restore_domain};
use guard::guard;
use login::{login, login_page, logout, logout_all};

/// The stylesheet, served at `/static/style.css` (the CSP allows styles from this origin only).
const STYLE: &str = include_str!("style.css");

/// The dashboard router with the default [`DashboardConfig`] (no public URL: cookies are not
/// `Secure`, only the request's own host is an accepted `Origin`).
pub fn router(state: AppState) -> Router {
    router_with(state, DashboardConfig::default())
}

/// The dashboard router.
pub fn router_with(state: AppState, config: DashboardConfig) -> Router {
    let dash = Dash {
        app: state,
        config: std::sync::Arc::new(config),
        login_key: std::sync::Arc::default(),
    };
    Router::new()
        .route("/", get(list_page))
        .route("/login", get(login_page).post(login))
        .route("/logout", post(logout))
        .route("/logout-all", post(logout_all))
        .route("/domains", post(add_domain))
        .route("/domains/{domain}", get(detail_page).post(change_domain))
        .route("/domains/{domain}/remove", post(remove_domain))
        .route("/domains/{domain}/restore", post(restore_domain))
        .route("/domains/{domain}/reports", get(reports::tls_page))
        .route("/domains/{domain}/dmarc", get(reports::dmarc_page))
        .route("/reports", get(reports::unowned_page))
        .route("/reports/{id}", get(reports::report_page))
        .route("/admin/mail", get(admin_mail::mail_page))
        .route("/admin/mail/{input}/message", get(admin_mail::message))
        .route("/static/style.css", get(style))
        .route("/alerts", get(alerts::alerts_page))
        .route("/alerts/settings", post(alerts::save_settings))
        .layer(middleware::from_fn_with_state(dash.clone(), guard))
        .with_state(dash)
}

async fn style() -> Response {
    ([(header::CONTENT_TYPE, "text/css; charset=utf-8")], STYLE).into_response()
}
