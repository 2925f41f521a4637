//! The domain pages: the list with the add form, one domain's detail with its change and
//! remove forms (or, while it is being removed, the cancel form), and their POSTs, all
//! through [`crate::service`]. The list and a domain's history show [`DASHBOARD_PAGE_SIZE`]
//! rows a page, with a "Next page" link (`?cursor=`).

use axum::extract::rejection::{FormRejection, QueryRejection};
use axum::extract::{Form, Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde::Deserialize;

use super::context::Dash;
use super::html::{self, AddForm, ChangeForm, FormError};
use super::reply::*;
use super::session::Viewer;
use crate::auth::Principal;
use crate::service::{self, DomainChange, DomainDetail, NewDomainRequest, ServiceError};
use crate::state::AppState;

/// Rows per dashboard page, of domains and of a domain's versions: the page stays small
/// however many there are.
pub(crate) const DASHBOARD_PAGE_SIZE: u32 = 50;

/// The query of a dashboard page: which page (`?cursor=`, from a "Next page" link).
#[derive(Deserialize)]
pub(super) struct PageQuery {
    cursor: Option<String>,
}

/// The cursor a link asks for (`Some(None)`: the first page); `None` when the query cannot
/// be read (a repeated `cursor`, broken percent-encoding).
fn cursor_of(query: &Result<Query<PageQuery>, QueryRejection>) -> Option<Option<&str>> {
    query
        .as_ref()
        .ok()
        .map(|Query(page)| page.cursor.as_deref())
}

pub(super) async fn list_page(
    State(dash): State<Dash>,
    headers: HeaderMap,
    query: Result<Query<PageQuery>, QueryRejection>,
) -> Response {
    let viewer = match viewer(&dash, &headers).await {
        Ok(viewer) => viewer,
        Err(response) => return response,
    };
    let Some(cursor) = cursor_of(&query) else {
        return bad_page_link(&viewer);
    };
    render_list_page(
        &dash,
        &viewer,
        cursor,
        StatusCode::OK,
        &AddForm::default(),
        None,
    )
    .await
}

/// The first page of the list, with the add form as given and its error.
pub(super) async fn render_list(
    dash: &Dash,
    viewer: &Viewer,
    status: StatusCode,
    form: &AddForm,
    error: Option<&FormError>,
) -> Response {
    render_list_page(dash, viewer, None, status, form, error).await
}

async fn render_list_page(
    dash: &Dash,
    viewer: &Viewer,
    cursor: Option<&str>,
    status: StatusCode,
    form: &AddForm,
    error: Option<&FormError>,
) -> Response {
    let page =
        service::domains_page(&dash.app, &viewer.principal, DASHBOARD_PAGE_SIZE, cursor).await;
    let health = super::reports::health_by_domain(dash, viewer).await;
    match page {
        Ok(page) => html_response(
            status,
            html::domains(
                &header_of(viewer),
                &page
                    .items
                    .iter()
                    .map(|detail| html::Listed {
                        detail,
                        health: health.get(&detail.domain),
                    })
                    .collect::<Vec<_>>(),
                &html::Pager {
                    base: "/",
                    first: cursor.is_some(),
                    next: page.next_cursor.as_deref(),
                },
                viewer.principal.is_admin(),
                viewer.principal.can_write(),
                form,
                error,
            ),
        ),
        // The only field a listing reads is the cursor.
        Err(ServiceError::Invalid(_)) => bad_page_link(viewer),
        Err(e) => service_error(viewer, e, |_, _| unreachable_form()),
    }
}

/// A page link whose cursor is not one this dashboard made: 400, with the way back.
pub(super) fn bad_page_link(viewer: &Viewer) -> Response {
    html_response(
        StatusCode::BAD_REQUEST,
        html::message(
            "Page not found",
            Some(&header_of(viewer)),
            "This page link is not valid (cursor). Start again from the first page.",
        ),
    )
}

/// Listing has no form to return errors to; field errors cannot happen there.
pub(super) fn unreachable_form() -> Response {
    html_response(
        StatusCode::INTERNAL_SERVER_ERROR,
        html::message("Internal error", None, "Unexpected error while listing."),
    )
}

#[derive(Deserialize)]
pub(super) struct AddFields {
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
    /// The checkbox: present (any value) when checked, absent when not.
    reports_to_service: Option<String>,
}

/// The mx textarea: one pattern per line (commas and spaces also separate).
pub(super) fn mx_lines(text: &str) -> Vec<String> {
    text.split(|c: char| c == ',' || c.is_whitespace())
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

/// The rua field: empty (or only spaces) is `None`, no report address.
pub(super) fn rua_field(text: &str) -> Option<String> {
    let text = text.trim();
    (!text.is_empty()).then(|| text.to_owned())
}

/// The max_age field: empty is `None`.
pub(super) fn max_age_field(text: &str) -> Result<Option<u64>, FormError> {
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

pub(super) async fn add_domain(
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
    let written = write_domain(&viewer, new_domain_request(&fields), async |request| {
        service::create_domain(&dash.app, &viewer.principal, request).await
    });
    let (status, error) = match written.await {
        Ok(page) => return page,
        Err(shown) => shown,
    };
    let again = AddForm {
        domain: fields.domain,
        tenant: fields.tenant,
        mode: fields.mode,
        mx: fields.mx,
        max_age: fields.max_age,
        rua: fields.rua,
        reports_to_service: fields.reports_to_service.is_some(),
    };
    render_list(&dash, &viewer, status, &again, Some(&error)).await
}

/// A form's write of a domain: the domain's page once written, a message page for an error
/// the form cannot show, or else the error to show above the form again.
async fn write_domain<R>(
    viewer: &Viewer,
    request: Result<R, FormError>,
    write: impl AsyncFnOnce(R) -> Result<DomainDetail, ServiceError>,
) -> Result<Response, (StatusCode, FormError)> {
    let request = request.map_err(|error| (StatusCode::BAD_REQUEST, error))?;
    match write(request).await {
        Ok(detail) => Ok(redirect(&format!("/domains/{}", detail.domain))),
        Err(error) => match form_error(viewer, error) {
            WriteFailure::Form(status, error) => Err((status, error)),
            WriteFailure::Page(page) => Ok(page),
        },
    }
}

/// The add form as the service's request; a field the form itself can judge is refused here.
fn new_domain_request(fields: &AddFields) -> Result<NewDomainRequest, FormError> {
    let mx = mx_lines(&fields.mx);
    let tenant = fields.tenant.trim();
    Ok(NewDomainRequest {
        domain: fields.domain.trim().to_owned(),
        tenant: (!tenant.is_empty()).then(|| tenant.to_owned()),
        mode: fields.mode.trim().to_owned(),
        mx: (!mx.is_empty()).then_some(mx),
        max_age: max_age_field(&fields.max_age)?,
        rua: rua_field(&fields.rua),
        reports_to_service: Some(fields.reports_to_service.is_some()),
    })
}

pub(super) async fn detail_page(
    State(dash): State<Dash>,
    headers: HeaderMap,
    Path(name): Path<String>,
    query: Result<Query<PageQuery>, QueryRejection>,
) -> Response {
    let viewer = match viewer(&dash, &headers).await {
        Ok(viewer) => viewer,
        Err(response) => return response,
    };
    let Some(cursor) = cursor_of(&query) else {
        return bad_page_link(&viewer);
    };
    render_detail_page(&dash, &viewer, &name, cursor, StatusCode::OK, None, None).await
}

/// A domain's page with the newest versions, with the change form as given and its error.
pub(super) async fn render_detail(
    dash: &Dash,
    viewer: &Viewer,
    name: &str,
    status: StatusCode,
    form: Option<&ChangeForm>,
    error: Option<&FormError>,
) -> Response {
    render_detail_page(dash, viewer, name, None, status, form, error).await
}

async fn render_detail_page(
    dash: &Dash,
    viewer: &Viewer,
    name: &str,
    cursor: Option<&str>,
    status: StatusCode,
    form: Option<&ChangeForm>,
    error: Option<&FormError>,
) -> Response {
    let who = &viewer.principal;
    let detail = match service::domain_detail(&dash.app, who, name).await {
        Ok(detail) => detail,
        Err(e) => return service_error(viewer, e, |_, _| not_found(viewer)),
    };
    let history =
        match service::versions_page(&dash.app, who, name, DASHBOARD_PAGE_SIZE, cursor).await {
            Ok(history) => history,
            Err(ServiceError::Invalid(_)) => return bad_page_link(viewer),
            Err(e) => return service_error(viewer, e, |_, _| not_found(viewer)),
        };
    let base = format!("/domains/{}", detail.domain);
    let reports = super::reports::readiness_blocks(dash, viewer, &detail).await;
    html_response(
        status,
        html::detail(
            &header_of(viewer),
            &detail,
            &html::History {
                versions: &history.items,
                pager: html::Pager {
                    base: &base,
                    first: cursor.is_some(),
                    next: history.next_cursor.as_deref(),
                },
            },
            who.can_write(),
            form,
            error,
            &reports,
        ),
    )
}

#[derive(Deserialize)]
pub(super) struct ChangeFields {
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
    /// The checkbox: present (any value) when checked, absent when not.
    reports_to_service: Option<String>,
}

pub(super) async fn change_domain(
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
    let written = write_domain(&viewer, domain_change(&fields), async |change| {
        service::update_domain(&dash.app, &viewer.principal, &name, change).await
    });
    let (status, error) = match written.await {
        Ok(page) => return page,
        Err(shown) => shown,
    };
    let again = ChangeForm {
        mode: fields.mode,
        mx: fields.mx,
        max_age: fields.max_age,
        rua: fields.rua,
        reports_to_service: fields.reports_to_service.is_some(),
    };
    render_detail(&dash, &viewer, &name, status, Some(&again), Some(&error)).await
}

/// The change form as the service's change. The form always sends every field: the service
/// keeps the version when nothing changed, and an emptied rua field removes the report
/// address.
fn domain_change(fields: &ChangeFields) -> Result<DomainChange, FormError> {
    let mode = fields.mode.trim();
    Ok(DomainChange {
        mode: (!mode.is_empty()).then(|| mode.to_owned()),
        mx: Some(mx_lines(&fields.mx)),
        max_age: max_age_field(&fields.max_age)?,
        rua: Some(rua_field(&fields.rua)),
        // The form always shows the checkbox: absent means unchecked.
        reports_to_service: Some(fields.reports_to_service.is_some()),
    })
}

/// A failed write on the detail page: field errors and conflicts are shown above its forms.
pub(super) async fn form_failure(
    dash: &Dash,
    viewer: &Viewer,
    name: &str,
    error: ServiceError,
    again: Option<&ChangeForm>,
) -> Response {
    match form_error(viewer, error) {
        WriteFailure::Form(status, error) => {
            render_detail(dash, viewer, name, status, again, Some(&error)).await
        }
        WriteFailure::Page(page) => page,
    }
}

pub(super) async fn remove_domain(
    State(dash): State<Dash>,
    headers: HeaderMap,
    Path(name): Path<String>,
    form: Result<Form<CsrfOnly>, FormRejection>,
) -> Response {
    domain_button(&dash, &headers, &name, form, service::remove_domain).await
}

pub(super) async fn restore_domain(
    State(dash): State<Dash>,
    headers: HeaderMap,
    Path(name): Path<String>,
    form: Result<Form<CsrfOnly>, FormRejection>,
) -> Response {
    domain_button(&dash, &headers, &name, form, service::restore_domain).await
}

/// A button of the domain page with nothing to fill in (remove, cancel the removal): the
/// CSRF check, then `action`, then back to the domain page or the page with the error.
async fn domain_button(
    dash: &Dash,
    headers: &HeaderMap,
    name: &str,
    form: Result<Form<CsrfOnly>, FormRejection>,
    action: impl AsyncFnOnce(&AppState, &Principal, &str) -> Result<DomainDetail, ServiceError>,
) -> Response {
    let csrf = form.map(|Form(f)| f.csrf).unwrap_or_default();
    let viewer = match checked_viewer(dash, headers, &csrf).await {
        Ok(viewer) => viewer,
        Err(response) => return response,
    };
    match action(&dash.app, &viewer.principal, name).await {
        Ok(detail) => redirect(&format!("/domains/{}", detail.domain)),
        Err(error) => form_failure(dash, &viewer, name, error, None).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
