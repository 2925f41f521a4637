//! The alerts page: the alerts the viewer may see (open first) with what happened, since
//! when and the fix, and the tenant's alert settings form (webhook URL and secret, e-mail
//! recipients, failure threshold), all through [`crate::alerts::service`].
//!
//! | Route | Answer |
//! |---|---|
//! | `GET /alerts` | the alerts and, for a viewer bound to a tenant, its settings form |
//! | `POST /alerts/settings` | saves the settings; a generated webhook secret is shown once |

use axum::extract::rejection::FormRejection;
use axum::extract::{Form, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde::Deserialize;

use super::context::Dash;
use super::html::{self, FormError, escape as e, when};
use super::reply::*;
use super::session::Viewer;
use crate::alerts::service::{self, AlertView, SettingsChange, SettingsView};

/// Alerts listed on the page at most.
const PAGE_ALERTS: u32 = 200;

pub(super) async fn alerts_page(State(dash): State<Dash>, headers: HeaderMap) -> Response {
    let viewer = match viewer(&dash, &headers).await {
        Ok(viewer) => viewer,
        Err(response) => return response,
    };
    render(&dash, &viewer, StatusCode::OK, None, None).await
}

#[derive(Deserialize)]
pub(super) struct SettingsFields {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    webhook_url: String,
    #[serde(default)]
    webhook_secret: String,
    #[serde(default)]
    email_to: String,
    #[serde(default)]
    failure_percent: String,
    #[serde(default)]
    min_sessions: String,
}

pub(super) async fn save_settings(
    State(dash): State<Dash>,
    headers: HeaderMap,
    form: Result<Form<SettingsFields>, FormRejection>,
) -> Response {
    let Ok(Form(fields)) = form else {
        return csrf_refused();
    };
    let viewer = match checked_viewer(&dash, &headers, &fields.csrf).await {
        Ok(viewer) => viewer,
        Err(response) => return response,
    };
    let change = match change_of(&fields) {
        Ok(change) => change,
        Err(error) => {
            return render(&dash, &viewer, StatusCode::BAD_REQUEST, Some(&error), None).await;
        }
    };
    match service::put_settings(&dash.app, &viewer.principal, None, change).await {
        Ok(saved) => {
            let status = StatusCode::OK;
            render(
                &dash,
                &viewer,
                status,
                None,
                saved.new_webhook_secret.as_deref(),
            )
            .await
        }
        Err(error) => match form_error(&viewer, error) {
            WriteFailure::Form(status, error) => {
                render(&dash, &viewer, status, Some(&error), None).await
            }
            WriteFailure::Page(page) => page,
        },
    }
}

/// The form's fields as a change; the threshold is entered in percent.
fn change_of(fields: &SettingsFields) -> Result<SettingsChange, FormError> {
    let number = |field: &str, text: &str, what: &str| -> Result<Option<f64>, FormError> {
        let text = text.trim();
        if text.is_empty() {
            return Ok(None);
        }
        text.parse::<f64>()
            .ok()
            .filter(|n| n.is_finite() && *n >= 0.0)
            .map(Some)
            .ok_or_else(|| FormError {
                field: field.to_owned(),
                message: format!("{text:?} is not {what}"),
                rule: None,
            })
    };
    let percent = number("failure_percent", &fields.failure_percent, "a percentage")?;
    let sessions = number("min_sessions", &fields.min_sessions, "a whole number")?;
    Ok(SettingsChange {
        webhook_url: Some(fields.webhook_url.trim().to_owned()).filter(|u| !u.is_empty()),
        webhook_secret: Some(fields.webhook_secret.trim().to_owned()).filter(|s| !s.is_empty()),
        email_to: fields
            .email_to
            .split(|c: char| c == ',' || c.is_whitespace())
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect(),
        failure_permille: percent.map(|p| (p * 10.0).round().min(1e6) as u32),
        min_sessions: sessions.map(|n| n.round().min(1e12) as u64),
    })
}

async fn render(
    dash: &Dash,
    viewer: &Viewer,
    status: StatusCode,
    error: Option<&FormError>,
    new_secret: Option<&str>,
) -> Response {
    let who = &viewer.principal;
    let alerts = match service::list(&dash.app, who, PAGE_ALERTS).await {
        Ok(alerts) => alerts,
        Err(err) => return service_error(viewer, err, |_, _| not_found(viewer)),
    };
    // Administrators without a tenant see every alert but set no tenant's settings here.
    let settings = if who.tenant_id.is_some() {
        match service::settings(&dash.app, who, None).await {
            Ok(settings) => Some(settings),
            Err(err) => return service_error(viewer, err, |_, _| not_found(viewer)),
        }
    } else {
        None
    };
    let mut body = String::from("<h1>Alerts</h1>\n");
    if let Some(secret) = new_secret {
        body.push_str(&format!(
            r#"<p class="notice" role="status">Webhook secret (shown once; every POST is signed with it): <code>{}</code></p>"#,
            e(secret)
        ));
    }
    body.push_str(&alert_list(&alerts));
    if let Some(settings) = settings {
        body.push_str(&settings_form(
            &settings,
            &viewer.csrf,
            who.can_write(),
            error,
        ));
    }
    html_response(
        status,
        html::page("Alerts", Some(&header_of(viewer)), &body),
    )
}

fn alert_list(alerts: &[AlertView]) -> String {
    if alerts.is_empty() {
        return r#"<p class="empty">No alerts: nothing in the reports or the delegation checks needs attention.</p>"#.to_owned();
    }
    let mut out = String::from(
        r#"<table class="alerts"><thead><tr><th>State</th><th>Domain</th><th>Alert</th><th>Since</th><th>What happened</th><th>The fix</th></tr></thead><tbody>"#,
    );
    for a in alerts {
        let state = match a.resolved_at {
            Some(at) => format!("resolved {}", e(&when(at))),
            None => "open".to_owned(),
        };
        out.push_str(&format!(
            r#"<tr class="alert {class}" data-kind="{kind}"><td>{state}</td><td>{domain}</td><td><strong>{title}</strong><br><span class="rule">{kind}</span></td><td>{since}</td><td>{what}</td><td>{fix}</td></tr>"#,
            class = if a.resolved_at.is_some() { "resolved" } else { "open" },
            kind = e(&a.kind),
            domain = e(&a.domain),
            title = e(&a.title),
            since = e(&mtasts_proto::readiness::date::iso_day(a.since)),
            what = e(&a.what),
            fix = e(&a.fix),
        ));
    }
    out.push_str("</tbody></table>\n");
    out
}

fn settings_form(
    s: &SettingsView,
    csrf: &str,
    can_write: bool,
    error: Option<&FormError>,
) -> String {
    let error = error
        .map(|err| {
            let field = if err.field.is_empty() {
                String::new()
            } else {
                format!("<strong>{}</strong>: ", e(&err.field))
            };
            format!(
                r#"<p class="error" role="alert">{field}{}</p>"#,
                e(&err.message)
            )
        })
        .unwrap_or_default();
    let disabled = if can_write { "" } else { " disabled" };
    let secret_note = if s.webhook_secret_set {
        "a secret is set (leave empty to keep it)"
    } else {
        "leave empty to have one generated"
    };
    format!(
        r#"<h2>Alert settings of {tenant}</h2>
{error}<form method="post" action="/alerts/settings" class="settings">
<input type="hidden" name="csrf" value="{csrf}">
<label>Webhook URL <input name="webhook_url" value="{url}" placeholder="https://hooks.example.com/mtasts"{disabled}></label>
<label>Webhook secret ({secret_note}) <input name="webhook_secret" type="password" autocomplete="off"{disabled}></label>
<label>E-mail recipients (comma-separated) <input name="email_to" value="{email}"{disabled}></label>
<label>Failure rate threshold (%) <input name="failure_percent" value="{percent}"{disabled}></label>
<label>Fewest sessions a day to judge the rate <input name="min_sessions" value="{min}"{disabled}></label>
<button type="submit"{disabled}>Save alert settings</button>
</form>
"#,
        tenant = e(&s.tenant),
        csrf = e(csrf),
        url = e(s.webhook_url.as_deref().unwrap_or("")),
        email = e(&s.email_to.join(", ")),
        percent = f64::from(s.failure_permille) / 10.0,
        min = s.min_sessions,
    )
}
