//! The report pages' handlers: a domain's TLS reports (`/domains/{d}/reports`), its DMARC
//! reports (`/domains/{d}/dmarc`), one report (`/reports/{id}`), and the readiness and health
//! the domain pages show. Every number comes from the report views of [`crate::service`],
//! which decide what the viewer may see (another tenant's domain or report is a 404 here as
//! in the API).

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde::Deserialize;

use super::context::Dash;
use super::domains::{DASHBOARD_PAGE_SIZE, bad_page_link};
use super::html;
use super::reply::*;
use super::report_html::{self, EnforceForm};
use super::session::Viewer;
use crate::service::reports::{self, DomainHealth, Window};
use crate::service::{self, DomainDetail, ServiceError};
use mtasts_store::host::DomainState;

/// The query of a report page: how many days (`?days=30|90|365`, 30 when absent).
#[derive(Deserialize)]
pub(super) struct WindowQuery {
    days: Option<String>,
}

/// The window a link asks for; `None` when the query is not one this dashboard makes.
fn window_of(query: &Result<Query<WindowQuery>, QueryRejection>) -> Option<Window> {
    let Ok(Query(q)) = query else {
        return None;
    };
    match q.days.as_deref() {
        None => Some(Window::default()),
        Some(days) => Window::parse(days),
    }
}

fn bad_window(viewer: &Viewer) -> Response {
    html_response(
        StatusCode::BAD_REQUEST,
        html::message(
            "Page not found",
            Some(&header_of(viewer)),
            "Reports are shown for 30, 90 or 365 days (?days=30, 90 or 365).",
        ),
    )
}

pub(super) async fn tls_page(
    State(dash): State<Dash>,
    headers: HeaderMap,
    Path(name): Path<String>,
    query: Result<Query<WindowQuery>, QueryRejection>,
) -> Response {
    let viewer = match viewer(&dash, &headers).await {
        Ok(viewer) => viewer,
        Err(response) => return response,
    };
    let Some(window) = window_of(&query) else {
        return bad_window(&viewer);
    };
    let who = &viewer.principal;
    let view = match reports::tls_view(&dash.app, who, &name, window).await {
        Ok(view) => view,
        Err(e) => return refused(&viewer, e),
    };
    // Readiness is judged over the default window on every page, so the TLS page and the
    // domain page give the same verdict whatever period the charts show.
    let (tls, _) = match reports::readiness(&dash.app, who, &name, Window::default()).await {
        Ok(readiness) => readiness,
        Err(e) => return refused(&viewer, e),
    };
    let detail = match service::domain_detail(&dash.app, who, &name).await {
        Ok(detail) => detail,
        Err(e) => return refused(&viewer, e),
    };
    let header = header_of(&viewer);
    let enforce = enforce_form(&viewer, &detail);
    html_response(
        StatusCode::OK,
        report_html::tls_page(&header, &view, tls.as_ref(), enforce.as_ref()),
    )
}

pub(super) async fn dmarc_page(
    State(dash): State<Dash>,
    headers: HeaderMap,
    Path(name): Path<String>,
    query: Result<Query<WindowQuery>, QueryRejection>,
) -> Response {
    let viewer = match viewer(&dash, &headers).await {
        Ok(viewer) => viewer,
        Err(response) => return response,
    };
    let Some(window) = window_of(&query) else {
        return bad_window(&viewer);
    };
    let who = &viewer.principal;
    let view = match reports::dmarc_view(&dash.app, who, &name, window).await {
        Ok(view) => view,
        Err(e) => return refused(&viewer, e),
    };
    let (_, dmarc) = match reports::readiness(&dash.app, who, &name, Window::default()).await {
        Ok(readiness) => readiness,
        Err(e) => return refused(&viewer, e),
    };
    html_response(
        StatusCode::OK,
        report_html::dmarc_page(&header_of(&viewer), &view, dmarc.as_ref()),
    )
}

pub(super) async fn report_page(
    State(dash): State<Dash>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let viewer = match viewer(&dash, &headers).await {
        Ok(viewer) => viewer,
        Err(response) => return response,
    };
    // An id that is not a number names no report: the same 404 as another tenant's.
    let Ok(id) = id.parse::<i64>() else {
        return no_report(&viewer);
    };
    match reports::report(&dash.app, &viewer.principal, id).await {
        Ok(detail) => html_response(
            StatusCode::OK,
            report_html::report_page(&header_of(&viewer), &detail),
        ),
        Err(ServiceError::NotFound) => no_report(&viewer),
        Err(e) => refused(&viewer, e),
    }
}

/// The query of the unowned list: which page (`?cursor=`, from its "Next page" link).
#[derive(Deserialize)]
pub(super) struct CursorQuery {
    cursor: Option<String>,
}

/// Administrators only: reports about domains nobody hosts, 50 a page. Anyone else gets the
/// 404 an unknown page gets.
pub(super) async fn unowned_page(
    State(dash): State<Dash>,
    headers: HeaderMap,
    query: Result<Query<CursorQuery>, QueryRejection>,
) -> Response {
    let viewer = match viewer(&dash, &headers).await {
        Ok(viewer) => viewer,
        Err(response) => return response,
    };
    if !viewer.principal.is_admin() {
        return no_report(&viewer);
    }
    let Ok(Query(query)) = query else {
        return bad_page_link(&viewer);
    };
    let cursor = query.cursor.as_deref();
    match reports::unowned(
        &dash.app,
        &viewer.principal,
        None,
        DASHBOARD_PAGE_SIZE,
        cursor,
    )
    .await
    {
        Ok(page) => html_response(
            StatusCode::OK,
            report_html::unowned_page(
                &header_of(&viewer),
                &page.items,
                &html::Pager {
                    base: "/reports",
                    first: cursor.is_some(),
                    next: page.next_cursor.as_deref(),
                },
            ),
        ),
        Err(ServiceError::Invalid(_)) => bad_page_link(&viewer),
        Err(e) => refused(&viewer, e),
    }
}

/// The readiness blocks of a domain's page (TLS with the enforce button, and DMARC), over the
/// default window; empty when the reports cannot be read (the page still shows the policy).
pub(super) async fn readiness_blocks(
    dash: &Dash,
    viewer: &Viewer,
    detail: &DomainDetail,
) -> String {
    let readiness = reports::readiness(
        &dash.app,
        &viewer.principal,
        &detail.domain,
        Window::default(),
    )
    .await;
    let (tls, dmarc) = match readiness {
        Ok(readiness) => readiness,
        Err(error) => {
            tracing::warn!(domain = %detail.domain, error = ?error, "dashboard: readiness unavailable");
            return String::new();
        }
    };
    let enforce = enforce_form(viewer, detail);
    let mut out = String::new();
    if let Some(tls) = tls {
        out.push_str(&report_html::tls_readiness(&tls, enforce.as_ref()));
    }
    if let Some(dmarc) = dmarc {
        out.push_str(&report_html::dmarc_readiness(&dmarc));
    }
    out
}

/// Every domain's health the viewer sees, by domain; empty when the reports cannot be read
/// (the list still shows the domains).
pub(super) async fn health_by_domain(
    dash: &Dash,
    viewer: &Viewer,
) -> std::collections::HashMap<String, DomainHealth> {
    match reports::health(&dash.app, &viewer.principal).await {
        Ok(list) => list.into_iter().map(|h| (h.domain.clone(), h)).collect(),
        Err(error) => {
            tracing::warn!(error = ?error, "dashboard: health unavailable");
            Default::default()
        }
    }
}

/// The switch-to-enforce form's fields, for a viewer who may change this active domain.
fn enforce_form<'a>(viewer: &'a Viewer, detail: &'a DomainDetail) -> Option<EnforceForm<'a>> {
    (viewer.principal.can_write() && detail.state == DomainState::Active).then(|| EnforceForm {
        domain: &detail.domain,
        csrf: &viewer.csrf,
        mx: &detail.mx,
        max_age: detail.max_age,
        rua: detail.rua.as_deref(),
    })
}

fn refused(viewer: &Viewer, error: ServiceError) -> Response {
    service_error(viewer, error, |_, _| not_found(viewer))
}

fn no_report(viewer: &Viewer) -> Response {
    html_response(
        StatusCode::NOT_FOUND,
        html::message(
            "Not found",
            Some(&header_of(viewer)),
            "There is no such report here.",
        ),
    )
}
