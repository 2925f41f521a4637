//! Administrators' page of the mail that held no report (`/admin/mail`): what the SMTP intake
//! accepted and kept because nothing in it could be read as a TLS or DMARC report, so that it
//! is seen rather than lost. The same list as `GET /api/v1/admin/mail`, 50 a page, newest
//! first, each message with how it arrived (client, envelope, TLS, DKIM), why its parts could
//! not be read, and a link to download the message as it was received
//! (`/admin/mail/{input}/message`).
//!
//! Anyone but an administrator gets the 404 an unknown page gets, on both routes. The
//! download is sent as an attachment (`message/rfc822`): the browser saves it and never
//! renders it, and the page's CSP and `nosniff` apply as to every dashboard response.

use std::fmt::Write as _;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use mtasts_store::reports::{MailWithoutReports, ReportDb, ReportDbError};
use serde::Deserialize;

use super::context::Dash;
use super::domains::{DASHBOARD_PAGE_SIZE, bad_page_link};
use super::html::{self, Header, Pager, escape, page, when};
use super::reply::{header_of, html_response, unavailable, viewer};
use super::report_html::dkim_results;
use super::session::Viewer;
use mtasts_proto::hosted::cursor::{Cursor, mail_after};

/// The list's path.
const BASE: &str = "/admin/mail";

/// The query of the list: which page (`?cursor=`, from its "Next page" link).
#[derive(Deserialize)]
pub(super) struct CursorQuery {
    cursor: Option<String>,
}

pub(super) async fn mail_page(
    State(dash): State<Dash>,
    headers: HeaderMap,
    query: Result<Query<CursorQuery>, QueryRejection>,
) -> Response {
    let viewer = match viewer(&dash, &headers).await {
        Ok(viewer) => viewer,
        Err(response) => return response,
    };
    if !viewer.principal.is_admin() {
        return no_page(&viewer);
    }
    let Ok(Query(query)) = query else {
        return bad_page_link(&viewer);
    };
    let cursor = query.cursor.as_deref();
    let Ok(after) = cursor.map(mail_after).transpose() else {
        return bad_page_link(&viewer);
    };
    let Some(db) = &dash.app.reports else {
        return unavailable(Some(&viewer), "no reports database");
    };
    // One more than a page: whether a next page exists is then known, not guessed.
    let mut mail = match db
        .mail_without_reports_page(after, DASHBOARD_PAGE_SIZE + 1)
        .await
    {
        Ok(mail) => mail,
        Err(e) => return unavailable(Some(&viewer), &e.to_string()),
    };
    let next = (mail.len() > DASHBOARD_PAGE_SIZE as usize).then(|| {
        mail.truncate(DASHBOARD_PAGE_SIZE as usize);
        let last = &mail[mail.len() - 1].arrival;
        Cursor::MailAfter {
            received_at: last.received_at,
            id: last.id,
        }
        .encode()
    });
    html_response(
        StatusCode::OK,
        mail_html(
            &header_of(&viewer),
            &mail,
            &Pager {
                base: BASE,
                first: cursor.is_some(),
                next: next.as_deref(),
            },
        ),
    )
}

/// One kept message as it was received.
pub(super) async fn message(
    State(dash): State<Dash>,
    headers: HeaderMap,
    Path(input): Path<String>,
) -> Response {
    let viewer = match viewer(&dash, &headers).await {
        Ok(viewer) => viewer,
        Err(response) => return response,
    };
    if !viewer.principal.is_admin() {
        return no_page(&viewer);
    }
    // An id that is not a number names no message: the same 404 as an unknown one.
    let Ok(input) = input.parse::<i64>() else {
        return no_message(&viewer);
    };
    let Some(db) = &dash.app.reports else {
        return unavailable(Some(&viewer), "no reports database");
    };
    match kept_message(db, input).await {
        Ok(Some(bytes)) => {
            let disposition = format!("attachment; filename=\"mail-{input}.eml\"");
            let mut response = (
                [(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("message/rfc822"),
                )],
                bytes,
            )
                .into_response();
            if let Ok(value) = HeaderValue::from_str(&disposition) {
                response
                    .headers_mut()
                    .insert(header::CONTENT_DISPOSITION, value);
            }
            response
        }
        Ok(None) => no_message(&viewer),
        Err(e) => unavailable(Some(&viewer), &e),
    }
}

/// The bytes of input `input` as received, if it is mail kept without reports (an input
/// that carried a report is reached through its report instead).
async fn kept_message(db: &ReportDb, input: i64) -> Result<Option<Vec<u8>>, String> {
    let text = |e: ReportDbError| e.to_string();
    let arrivals = db.arrivals_of_input(input).await.map_err(text)?;
    if !arrivals.iter().any(|a| a.reports.is_empty()) {
        return Ok(None);
    }
    let Some(stored) = db.input(input).await.map_err(text)? else {
        return Ok(None);
    };
    // Inflating up to the input limit is CPU work: off the async workers.
    let inflated = tokio::task::spawn_blocking(move || {
        mtasts_report::intake::stored_input(&stored, &mtasts_report::Limits::default())
    })
    .await
    .map_err(|e| e.to_string())?;
    inflated.map(Some)
}

fn no_page(viewer: &Viewer) -> Response {
    html_response(
        StatusCode::NOT_FOUND,
        html::message(
            "Not found",
            Some(&header_of(viewer)),
            "There is no such page here.",
        ),
    )
}

fn no_message(viewer: &Viewer) -> Response {
    html_response(
        StatusCode::NOT_FOUND,
        html::message(
            "Not found",
            Some(&header_of(viewer)),
            "There is no such kept message here.",
        ),
    )
}

/// The page: one row per message, newest first.
fn mail_html(header: &Header<'_>, mail: &[MailWithoutReports], pager: &Pager<'_>) -> String {
    let e = escape;
    let table = if mail.is_empty() {
        r#"<p class="muted">No mail without reports.</p>"#.to_owned()
    } else {
        let mut rows = String::new();
        for m in mail {
            let a = &m.arrival;
            let tls = match (&a.tls_version, &a.tls_cipher) {
                (Some(version), Some(cipher)) => format!("{version} ({cipher})"),
                (Some(version), None) => version.clone(),
                _ => "none (plain SMTP)".to_owned(),
            };
            let why = if m.errors.is_empty() {
                "nothing that looks like a report".to_owned()
            } else {
                m.errors
                    .iter()
                    .map(|err| format!("{}: {} ({})", err.source, err.message, err.code))
                    .collect::<Vec<_>>()
                    .join("; ")
            };
            let sender = if a.mail_from.is_empty() {
                "<>".to_owned()
            } else {
                a.mail_from.clone()
            };
            let _ = write!(
                rows,
                r#"<tr class="mail-row"><td>{received}</td><td><code>{peer}</code><br>{helo}</td><td>{sender}<br>→ {recipients}</td><td>{tls}</td><td>{dkim}</td><td class="why">{why}</td><td><a href="{BASE}/{input}/message" class="download" download>mail-{input}.eml</a></td></tr>"#,
                received = e(&when(a.received_at)),
                peer = e(&a.peer_ip),
                helo = e(&a.helo),
                sender = e(&sender),
                recipients = e(&a.recipients.join(", ")),
                tls = e(&tls),
                dkim = e(&dkim_results(&a.dkim)),
                why = e(&why),
                input = a.input,
            );
        }
        format!(
            r#"<table class="mail"><thead><tr><th>Received</th><th>Client (HELO)</th><th>Sender → recipients</th><th>TLS</th><th>DKIM</th><th>Why no report</th><th>Message</th></tr></thead><tbody>{rows}</tbody></table>"#
        )
    };
    let body = format!(
        r#"<section class="card"><h1>Mail without reports</h1>
<p class="hint">Mail the SMTP intake accepted for the report mailboxes that held no TLS or DMARC report it could read (a sender's notice, a broken attachment, spam). It is kept for you here, newest first; download a message to see it as it was received.</p>
{table}{pages}</section>"#,
        pages = pager.links(),
    );
    page("Mail without reports", Some(header), &body)
}
