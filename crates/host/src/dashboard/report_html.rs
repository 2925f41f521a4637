//! The report pages: a domain's TLS and DMARC reports with their charts, the readiness
//! advice (with the one-button switch to `enforce`), one report with its documents, and the
//! health column of the overview.
//!
//! Like [`super::html`], plain `format!` templates where every value from outside goes
//! through [`escape`]; the charts come from [`super::charts`].

use std::fmt::Write as _;

use mtasts_proto::readiness::Level;
use mtasts_proto::readiness::date::iso_day;
use mtasts_proto::readiness::number::{percent, thousands};

use super::charts::{self, Bar, Column, Series};
use super::html::{Header, Pager, escape, page, when};
use crate::service::reports::{
    Count, DmarcReadiness, DmarcSourceRow, DmarcView, DomainHealth, ReportDetail, ReportSummary,
    TlsReadiness, TlsView, VIEW_REPORTS, Window,
};
use mtasts_store::reports::Kind;

/// The most of a report document the page shows; the API serves the whole of it.
const MAX_SHOWN_DOCUMENT: usize = 512 * 1024;

/// What a chart says when the window holds no report.
const NO_REPORTS: &str = "No reports yet for these days.";

const TLS_SERIES: [Series; 2] = [
    Series {
        name: "successful sessions",
        class: "chart-ok",
    },
    Series {
        name: "failed sessions",
        class: "chart-bad",
    },
];

const DMARC_SERIES: [Series; 3] = [
    Series {
        name: "delivered (none)",
        class: "chart-ok",
    },
    Series {
        name: "quarantined",
        class: "chart-warn",
    },
    Series {
        name: "rejected",
        class: "chart-bad",
    },
];

fn e(text: &str) -> String {
    escape(text)
}

/// The current policy, for the "Switch to enforce" form: the change form's fields with
/// `mode=enforce`, so the existing change workflow publishes it.
pub(crate) struct EnforceForm<'a> {
    /// The domain.
    pub domain: &'a str,
    /// The session's CSRF token.
    pub csrf: &'a str,
    /// The current MX patterns.
    pub mx: &'a [String],
    /// The current max_age.
    pub max_age: i64,
    /// The current TLS-RPT address, if any.
    pub rua: Option<&'a str>,
}

/// The CSS class of a readiness level's badge.
pub(crate) fn level_class(level: Level) -> &'static str {
    match level {
        Level::Enforced | Level::Ready => "ok",
        Level::Fix => "bad",
        Level::Review | Level::Wait => "warn",
        _ => "neutral",
    }
}

/// A readiness level as a coloured badge.
pub(crate) fn level_badge(level: Level) -> String {
    format!(
        r#"<span class="badge level {class}">{word}</span>"#,
        class = level_class(level),
        word = level_word(level),
    )
}

/// What a person reads for a level.
fn level_word(level: Level) -> &'static str {
    match level {
        Level::Enforced => "enforced",
        Level::Fix => "fix first",
        Level::NoData => "no reports",
        Level::Ready => "ready",
        Level::Review => "review",
        Level::Wait => "wait",
        _ => "unknown",
    }
}

/// The links between a domain's pages; `current` is `policy`, `tls` or `dmarc`.
pub(crate) fn domain_tabs(domain: &str, current: &str) -> String {
    let tabs = [
        ("policy", "Policy", format!("/domains/{}", e(domain))),
        (
            "tls",
            "TLS reports",
            format!("/domains/{}/reports", e(domain)),
        ),
        (
            "dmarc",
            "DMARC reports",
            format!("/domains/{}/dmarc", e(domain)),
        ),
    ];
    let links: String = tabs
        .iter()
        .map(|(key, name, href)| {
            if *key == current {
                format!(r#"<a href="{href}" class="tab current" aria-current="page">{name}</a>"#)
            } else {
                format!(r#"<a href="{href}" class="tab">{name}</a>"#)
            }
        })
        .collect();
    format!(
        r#"<nav class="tabs" aria-label="{}">{links}</nav>"#,
        e(domain)
    )
}

fn window_links(base: &str, window: Window) -> String {
    let links: String = Window::ALL
        .iter()
        .map(|w| {
            let days = w.days();
            if *w == window {
                format!(r#"<a href="{base}?days={days}" class="window current" aria-current="page">{days} days</a>"#)
            } else {
                format!(r#"<a href="{base}?days={days}" class="window">{days} days</a>"#)
            }
        })
        .collect();
    format!(r#"<p class="windows">{links}</p>"#)
}

/// The readiness of a domain's TLS: the evidence, the verdict and, when enforcing is safe and
/// the domain is in `testing`, the one button that switches it.
pub(crate) fn tls_readiness(r: &TlsReadiness, enforce: Option<&EnforceForm<'_>>) -> String {
    let by_type = if r.failures_by_type.is_empty() {
        String::new()
    } else {
        format!(
            " ({})",
            r.failures_by_type
                .iter()
                .map(|c| format!("{} {}", thousands(c.count), c.label))
                .collect::<Vec<_>>()
                .join(", ")
        )
    };
    let evidence = format!(
        "{} reports from {} organizations over {} days, {} failures{by_type}.",
        thousands(r.reports),
        thousands(r.organizations),
        thousands(r.days),
        thousands(r.failures),
    );
    let advice = advice_list(&r.advice);
    let button = match enforce {
        Some(form) if r.enforce_safe && r.mode == "testing" => enforce_button(form),
        _ => String::new(),
    };
    format!(
        r#"<section class="card readiness" id="tls-readiness"><h2>Ready to enforce? {badge} <span class="hint">last 30 days</span></h2>
<p class="evidence">{evidence}</p>
<p class="headline">{headline}</p>
{advice}{button}</section>"#,
        badge = level_badge(r.level),
        evidence = e(&evidence),
        headline = e(&r.headline),
    )
}

fn enforce_button(form: &EnforceForm<'_>) -> String {
    format!(
        r#"<form method="post" action="/domains/{domain}" class="enforce">
<input type="hidden" name="csrf" value="{csrf}">
<input type="hidden" name="mode" value="enforce">
<input type="hidden" name="mx" value="{mx}">
<input type="hidden" name="max_age" value="{max_age}">
<input type="hidden" name="rua" value="{rua}">
<button type="submit">Switch to enforce</button>
<span class="hint">Publishes a new policy version with <code>mode: enforce</code>, the same MX patterns and max_age, like the change form.</span>
</form>"#,
        domain = e(form.domain),
        csrf = e(form.csrf),
        mx = e(&form.mx.join("\n")),
        max_age = form.max_age,
        rua = e(form.rua.unwrap_or("")),
    )
}

/// The DMARC step (none → quarantine → reject) and the sources it would hurt.
pub(crate) fn dmarc_readiness(r: &DmarcReadiness) -> String {
    let published = match &r.published_p {
        Some(p) => format!("<code>p={}</code>", e(p)),
        None => r#"<span class="muted">not seen in any report</span>"#.to_owned(),
    };
    let step = match &r.next_step {
        Some(next) => format!(
            r#"<p class="step">Next step: {published} → <code>p={}</code></p>"#,
            e(next)
        ),
        None => format!(r#"<p class="step">Published: {published}</p>"#),
    };
    let hurt = if r.hurt.is_empty() {
        String::new()
    } else {
        format!(
            r#"<h3>Sources the next step would hurt</h3>{}"#,
            sources_table(&r.hurt, "hurt-sources")
        )
    };
    format!(
        r#"<section class="card readiness" id="dmarc-readiness"><h2>DMARC policy {badge} <span class="hint">last 30 days</span></h2>
{step}<p class="headline">{headline}</p>
{advice}{hurt}</section>"#,
        badge = level_badge(r.level),
        headline = e(&r.headline),
        advice = advice_list(&r.advice),
    )
}

fn advice_list(advice: &[String]) -> String {
    if advice.is_empty() {
        return String::new();
    }
    let items: String = advice
        .iter()
        .map(|a| format!("<li>{}</li>", e(a)))
        .collect();
    format!(r#"<ul class="advice">{items}</ul>"#)
}

fn counts(list: &[Count]) -> Vec<Bar> {
    list.iter()
        .map(|c| Bar {
            label: c.label.clone(),
            value: c.count,
        })
        .collect()
}

/// A domain's TLS reports over a window.
pub(crate) fn tls_page(
    header: &Header<'_>,
    view: &TlsView,
    readiness: Option<&TlsReadiness>,
    enforce: Option<&EnforceForm<'_>>,
) -> String {
    let base = format!("/domains/{}/reports", e(&view.domain));
    let columns: Vec<Column> = view
        .days
        .iter()
        .map(|d| Column {
            label: iso_day(d.day),
            values: vec![d.success, d.failure],
        })
        .collect();
    let daily = charts::stacked_days("Sessions per day", &TLS_SERIES, &columns, NO_REPORTS);
    let total = view.success + view.failure;
    let rate = percent(view.success, total)
        .map(|p| format!(", {p} successful"))
        .unwrap_or_default();
    let organizations: Vec<Bar> = view
        .by_organization
        .iter()
        .map(|o| Bar {
            label: o.organization.clone(),
            value: o.failure,
        })
        .collect();
    let org_sessions: Vec<Bar> = view
        .by_organization
        .iter()
        .map(|o| Bar {
            label: o.organization.clone(),
            value: o.success + o.failure,
        })
        .collect();
    let no_failures = "No failures in these days.";
    let breakdown = [
        charts::bar_list(
            "Failures by result type",
            "failed sessions",
            "chart-bad",
            &counts(&view.by_result),
            no_failures,
        ),
        charts::bar_list(
            "Failures by receiving MX",
            "failed sessions",
            "chart-bad",
            &counts(&view.by_mx),
            no_failures,
        ),
        charts::bar_list(
            "Failures by receiving IP",
            "failed sessions",
            "chart-bad",
            &counts(&view.by_receiving_ip),
            no_failures,
        ),
        charts::bar_list(
            "Failures by reporting organization",
            "failed sessions",
            "chart-bad",
            &organizations,
            no_failures,
        ),
        charts::bar_list(
            "Failures by sending IP",
            "failed sessions",
            "chart-bad",
            &counts(&view.by_sending_ip),
            no_failures,
        ),
        charts::bar_list(
            "Sessions by reporting organization",
            "sessions",
            "chart-ok",
            &org_sessions,
            NO_REPORTS,
        ),
    ]
    .join("\n");
    let readiness = readiness
        .map(|r| tls_readiness(r, enforce))
        .unwrap_or_default();
    let body = format!(
        r#"{tabs}<section class="card"><h1>TLS reports for {name}</h1>
{windows}<p class="totals">{success} successful and {failure} failed sessions in the last {days} days{rate}.</p>
{daily}</section>
{readiness}<section class="card breakdown">{breakdown}</section>
<section class="card"><h2>Reports</h2>{reports}</section>"#,
        tabs = domain_tabs(&view.domain, "tls"),
        name = e(&view.domain),
        windows = window_links(&base, view.window),
        success = thousands(view.success),
        failure = thousands(view.failure),
        days = view.window.days(),
        rate = e(&rate),
        reports = report_table(&view.reports, "sessions"),
    );
    page(
        &format!("TLS reports · {}", view.domain),
        Some(header),
        &body,
    )
}

/// A domain's DMARC reports over a window.
pub(crate) fn dmarc_page(
    header: &Header<'_>,
    view: &DmarcView,
    readiness: Option<&DmarcReadiness>,
) -> String {
    let base = format!("/domains/{}/dmarc", e(&view.domain));
    let columns: Vec<Column> = view
        .days
        .iter()
        .map(|d| Column {
            label: iso_day(d.day),
            values: vec![d.none, d.quarantine, d.reject],
        })
        .collect();
    let daily = charts::stacked_days(
        "Messages per day by disposition",
        &DMARC_SERIES,
        &columns,
        NO_REPORTS,
    );
    let rate = charts::pass_rate("DMARC pass rate", view.pass, view.messages, NO_REPORTS);
    let published = match &view.published_p {
        Some(p) => format!("<code>p={}</code>", e(p)),
        None => r#"<span class="muted">unknown</span>"#.to_owned(),
    };
    let sources: Vec<Bar> = view
        .sources
        .iter()
        .map(|s| Bar {
            label: s.source_ip.clone(),
            value: s.messages,
        })
        .collect();
    let readiness = readiness.map(dmarc_readiness).unwrap_or_default();
    let body = format!(
        r#"{tabs}<section class="card"><h1>DMARC reports for {name}</h1>
{windows}<p class="totals">{messages} messages in the last {days} days, {pass} passed DMARC. Published policy: {published}.</p>
{daily}{rate}</section>
{readiness}<section class="card"><h2>Sources</h2>
<p class="hint">A message passes DMARC when SPF or DKIM passed aligned with the header-from domain. The last two columns are the messages that <code>p=quarantine</code> would have sent to spam and <code>p=reject</code> would have refused.</p>
{sources_chart}{sources}</section>
<section class="card"><h2>Reports</h2>{reports}</section>"#,
        tabs = domain_tabs(&view.domain, "dmarc"),
        name = e(&view.domain),
        windows = window_links(&base, view.window),
        messages = thousands(view.messages),
        pass = thousands(view.pass),
        days = view.window.days(),
        sources_chart = charts::bar_list(
            "Messages by source",
            "messages",
            "chart-ok",
            &sources,
            NO_REPORTS
        ),
        sources = sources_table(&view.sources, "sources"),
        reports = report_table(&view.reports, "messages"),
    );
    page(
        &format!("DMARC reports · {}", view.domain),
        Some(header),
        &body,
    )
}

fn sources_table(rows: &[DmarcSourceRow], class: &str) -> String {
    if rows.is_empty() {
        return format!(r#"<p class="muted">{NO_REPORTS}</p>"#);
    }
    let mut out = String::new();
    for s in rows {
        let _ = write!(
            out,
            r#"<tr class="source-row"><td><code>{ip}</code></td><td>{from}</td><td>{messages}</td><td>{spf}</td><td>{dkim}</td><td>{pass}</td><td>{quarantine}</td><td>{reject}</td></tr>"#,
            ip = e(&s.source_ip),
            from = e(&s.header_from),
            messages = thousands(s.messages),
            spf = aligned(s.spf_aligned, s.messages),
            dkim = aligned(s.dkim_aligned, s.messages),
            pass = aligned(s.pass, s.messages),
            quarantine = hit(s.if_quarantine),
            reject = hit(s.if_reject),
        );
    }
    format!(
        r#"<table class="{class}"><thead><tr><th>Source IP</th><th>Header-from</th><th>Messages</th><th>SPF aligned</th><th>DKIM aligned</th><th>DMARC pass</th><th>If quarantine</th><th>If reject</th></tr></thead><tbody>{out}</tbody></table>"#
    )
}

/// `n` of `of` with its share: `980 (98.0%)`.
fn aligned(n: u64, of: u64) -> String {
    match percent(n, of) {
        Some(p) => format!("{} ({})", thousands(n), e(&p)),
        None => thousands(n),
    }
}

/// Messages a stricter policy would hit, marked when there are any.
fn hit(n: u64) -> String {
    if n == 0 {
        "0".to_owned()
    } else {
        format!(r#"<span class="hurt">{}</span>"#, thousands(n))
    }
}

fn report_table(reports: &[ReportSummary], unit: &str) -> String {
    if reports.is_empty() {
        return format!(r#"<p class="muted">{NO_REPORTS}</p>"#);
    }
    let more = if reports.len() as u64 >= u64::from(VIEW_REPORTS) {
        format!(
            r#"<p class="hint">The newest {VIEW_REPORTS} reports; <code>GET /api/v1/reports?domain=…</code> pages through all of them.</p>"#
        )
    } else {
        String::new()
    };
    let mut rows = String::new();
    for r in reports {
        let _ = write!(
            rows,
            r#"<tr class="report-row"><td><a href="/reports/{id}">{organization}</a></td><td><code>{report_id}</code></td><td>{begin} – {end}</td><td>{received}</td><td>{duplicates}</td><td>{success}</td><td>{failure}</td></tr>"#,
            id = r.id,
            organization = e(organization(&r.organization)),
            report_id = e(&r.report_id),
            begin = e(&when(r.begin)),
            end = e(&when(r.end)),
            received = e(&when(r.received_at)),
            duplicates = thousands(r.duplicates),
            success = thousands(r.success),
            failure = thousands(r.failure),
        );
    }
    let (ok, bad) = if unit == "messages" {
        ("Passed", "Failed")
    } else {
        ("Successful", "Failed")
    };
    format!(
        r#"<table class="reports"><thead><tr><th>Organization</th><th>Report id</th><th>Period</th><th>Received</th><th>Duplicates</th><th>{ok}</th><th>{bad}</th></tr></thead><tbody>{rows}</tbody></table>{more}"#
    )
}

fn organization(name: &str) -> &str {
    if name.is_empty() { "(unnamed)" } else { name }
}

/// The administrators' list of reports about domains nobody hosts here, a page at a time.
pub(crate) fn unowned_page(
    header: &Header<'_>,
    reports: &[ReportSummary],
    pager: &Pager<'_>,
) -> String {
    let table = if reports.is_empty() {
        r#"<p class="muted">No reports about domains nobody hosts.</p>"#.to_owned()
    } else {
        let mut rows = String::new();
        for r in reports {
            let _ = write!(
                rows,
                r#"<tr class="report-row"><td><a href="/reports/{id}">{organization}</a></td><td>{kind}</td><td>{domains}</td><td>{begin} – {end}</td><td>{received}</td><td>{source}</td></tr>"#,
                id = r.id,
                organization = e(organization(&r.organization)),
                kind = r.kind.as_str(),
                domains = e(&r.domains.join(", ")),
                begin = e(&when(r.begin)),
                end = e(&when(r.end)),
                received = e(&when(r.received_at)),
                source = e(&r.source),
            );
        }
        format!(
            r#"<table class="reports"><thead><tr><th>Organization</th><th>Kind</th><th>Domains</th><th>Period</th><th>Received</th><th>Source</th></tr></thead><tbody>{rows}</tbody></table>"#
        )
    };
    let body = format!(
        r#"<section class="card"><h1>Reports nobody's</h1>
<p class="hint">Reports whose domains no tenant hosts (a domain removed, a sender's mistake, a report addressed here by someone else). They move to a tenant's pages as soon as it hosts one of their domains.</p>
{table}{pages}</section>"#,
        pages = pager.links(),
    );
    page("Reports nobody's", Some(header), &body)
}

/// One report: its summary, the normalized JSON and the document as received.
/// How a report came in by mail: each delivery's client, TLS and DKIM results (shown, never
/// required: real senders' signatures often do not cover the TLS-Report headers). Nothing for
/// reports posted over HTTPS or imported.
fn arrivals(arrivals: &[mtasts_store::reports::ArrivalRow]) -> String {
    if arrivals.is_empty() {
        return String::new();
    }
    let rows: String = arrivals
        .iter()
        .map(|a| {
            let tls = a.tls_version.as_deref().unwrap_or("none (plain SMTP)");
            let dkim = dkim_results(&a.dkim);
            format!(
                r#"<tr class="arrival-row"><td>{when}</td><td><code>{peer}</code></td><td>{helo}</td><td>{from}</td><td>{tls}</td><td>{dkim}</td></tr>"#,
                when = e(&when(a.received_at)),
                peer = e(&a.peer_ip),
                helo = e(&a.helo),
                from = e(&a.mail_from),
                tls = e(tls),
                dkim = e(&dkim),
            )
        })
        .collect();
    format!(
        r#"<section class="card"><h2>How it arrived (mail)</h2>
<table><thead><tr><th>Received</th><th>Client</th><th>HELO</th><th>Sender</th><th>TLS</th><th>DKIM</th></tr></thead>
<tbody>{rows}</tbody></table></section>
"#
    )
}

/// An arrival's DKIM results in words, unescaped: `pass (d=…, s=…)` per signature, or
/// `not signed`.
pub(super) fn dkim_results(dkim: &serde_json::Value) -> String {
    match dkim.as_array() {
        Some(signatures) if !signatures.is_empty() => signatures
            .iter()
            .map(|sig| {
                let field = |name: &str| sig[name].as_str().unwrap_or("?").to_owned();
                format!(
                    "{} (d={}, s={})",
                    field("result"),
                    field("domain"),
                    field("selector")
                )
            })
            .collect::<Vec<_>>()
            .join("; "),
        _ => "not signed".to_owned(),
    }
}

pub(crate) fn report_page(header: &Header<'_>, detail: &ReportDetail) -> String {
    let r = &detail.summary;
    let kind = match r.kind {
        Kind::TlsRpt => "TLS report",
        Kind::Dmarc => "DMARC report",
    };
    let (ok, bad) = match r.kind {
        Kind::TlsRpt => ("Successful sessions", "Failed sessions"),
        Kind::Dmarc => ("Messages passing DMARC", "Messages failing DMARC"),
    };
    let tab = match r.kind {
        Kind::TlsRpt => "reports",
        Kind::Dmarc => "dmarc",
    };
    let domains: String = r
        .domains
        .iter()
        .map(|d| format!(r#"<a href="/domains/{d}/{tab}">{d}</a>"#, d = e(d)))
        .collect::<Vec<_>>()
        .join(", ");
    let raw = String::from_utf8_lossy(&detail.raw);
    let body = format!(
        r#"<section class="card"><h1>{kind} from {organization}</h1>
<dl>
<dt>Report id</dt><dd><code>{report_id}</code></dd>
<dt>Domains</dt><dd>{domains}</dd>
<dt>Period</dt><dd>{begin} – {end}</dd>
<dt>Received</dt><dd>{received}</dd>
<dt>Duplicates</dt><dd>{duplicates}</dd>
<dt>{ok}</dt><dd>{success}</dd>
<dt>{bad}</dt><dd>{failure}</dd>
</dl></section>
{arrivals}<section class="card"><h2>As read (normalized JSON)</h2>{normalized}</section>
<section class="card"><h2>As received</h2>{raw}</section>"#,
        arrivals = arrivals(&detail.arrivals),
        organization = e(organization(&r.organization)),
        report_id = e(&r.report_id),
        begin = e(&when(r.begin)),
        end = e(&when(r.end)),
        received = e(&when(r.received_at)),
        duplicates = thousands(r.duplicates),
        success = thousands(r.success),
        failure = thousands(r.failure),
        normalized =
            document(&serde_json::to_string_pretty(&detail.normalized).unwrap_or_default()),
        raw = document(&raw),
    );
    page(&format!("{kind} {}", r.report_id), Some(header), &body)
}

/// A document in a `<pre>`, escaped, cut at [`MAX_SHOWN_DOCUMENT`] bytes.
fn document(text: &str) -> String {
    if text.len() <= MAX_SHOWN_DOCUMENT {
        return format!(r#"<pre class="document">{}</pre>"#, e(text));
    }
    let mut cut = MAX_SHOWN_DOCUMENT;
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    format!(
        r#"<pre class="document">{}</pre><p class="hint">Cut at {} bytes of {}; the API returns the whole document.</p>"#,
        e(&text[..cut]),
        thousands(cut as u64),
        thousands(text.len() as u64)
    )
}

/// The overview's health columns' headings.
pub(crate) const HEALTH_HEAD: &str =
    "<th>Readiness</th><th>Reports (30 days)</th><th>Last report</th>";

/// The overview's health at a glance for one domain: its readiness badge (linking to its TLS
/// reports), successful and failed TLS sessions and DMARC pass rate over 30 days, and when
/// the last report arrived.
pub(crate) fn health_cells(domain: &str, health: Option<&DomainHealth>) -> String {
    let Some(h) = health else {
        return format!(
            r#"<td>{}</td><td class="muted">–</td><td class="muted">never</td>"#,
            level_badge(Level::NoData)
        );
    };
    let dmarc = match percent(h.dmarc_pass, h.dmarc_messages) {
        Some(p) => format!(
            r#"<br><a href="/domains/{d}/dmarc" class="hint">DMARC {} pass</a>"#,
            e(&p),
            d = e(domain),
        ),
        None => String::new(),
    };
    let last = h
        .last_report_at
        .map(|t| format!(r#"<span title="{}">{}</span>"#, e(&when(t)), e(&iso_day(t))))
        .unwrap_or_else(|| r#"<span class="muted">never</span>"#.to_owned());
    format!(
        r#"<td class="health"><a href="/domains/{d}/reports" title="{headline}">{badge}</a></td><td class="health"><span class="ok-text">{success} ok</span><br><span class="bad-text">{failure} failed</span>{dmarc}</td><td class="health">{last}</td>"#,
        d = e(domain),
        headline = e(&h.headline),
        badge = level_badge(h.level),
        success = thousands(h.tls_success),
        failure = thousands(h.tls_failure),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service::reports::{DayPoint, OrgCount};

    fn header() -> Header<'static> {
        Header {
            who: "owner@example.com",
            role: "owner",
            csrf: "csrf-token",
        }
    }

    fn readiness(safe: bool, mode: &str) -> TlsReadiness {
        TlsReadiness {
            mode: mode.to_owned(),
            reports: 12,
            organizations: 3,
            days: 14,
            failures: 5,
            failures_by_type: vec![Count {
                label: "certificate-expired".to_owned(),
                count: 5,
            }],
            level: if safe { Level::Ready } else { Level::Fix },
            headline: "headline <b>".to_owned(),
            advice: vec!["renew <it>".to_owned()],
            enforce_safe: safe,
        }
    }

    #[test]
    fn the_enforce_button_needs_safe_testing_and_a_writer() {
        let form = EnforceForm {
            domain: "example.com",
            csrf: "tok\"en",
            mx: &["mx1.example.com".to_owned(), "*.mx.example.com".to_owned()],
            max_age: 604_800,
            rua: Some("mailto:a@example.com"),
        };
        let ready = tls_readiness(&readiness(true, "testing"), Some(&form));
        assert!(ready.contains("Switch to enforce"));
        assert!(ready.contains(r#"action="/domains/example.com""#));
        assert!(ready.contains(r#"name="mode" value="enforce""#));
        assert!(ready.contains("mx1.example.com\n*.mx.example.com"));
        assert!(ready.contains(r#"name="max_age" value="604800""#));
        assert!(ready.contains(r#"name="csrf" value="tok&quot;en""#));
        assert!(ready.contains(
            "12 reports from 3 organizations over 14 days, 5 failures (5 certificate-expired)."
        ));
        assert!(ready.contains("headline &lt;b&gt;"));
        assert!(
            !tls_readiness(&readiness(false, "testing"), Some(&form)).contains("Switch to enforce")
        );
        assert!(
            !tls_readiness(&readiness(true, "enforce"), Some(&form)).contains("Switch to enforce")
        );
        assert!(!tls_readiness(&readiness(true, "testing"), None).contains("Switch to enforce"));
    }

    #[test]
    fn tls_page_shows_numbers_and_escapes_organizations() {
        let evil = "<img src=x onerror=alert(1)>";
        let view = TlsView {
            domain: "example.com".to_owned(),
            window: Window::default(),
            days: vec![
                DayPoint {
                    day: 1_795_305_600,
                    success: 90,
                    failure: 10,
                },
                DayPoint {
                    day: 1_795_392_000,
                    success: 0,
                    failure: 0,
                },
            ],
            success: 90,
            failure: 10,
            by_result: vec![Count {
                label: "certificate-expired".to_owned(),
                count: 10,
            }],
            by_mx: vec![],
            by_receiving_ip: vec![],
            by_organization: vec![OrgCount {
                organization: evil.to_owned(),
                reports: 1,
                success: 90,
                failure: 10,
            }],
            by_sending_ip: vec![],
            reports: vec![ReportSummary {
                id: 7,
                kind: Kind::TlsRpt,
                organization: evil.to_owned(),
                report_id: "r-1".to_owned(),
                domains: vec!["example.com".to_owned()],
                source: "https".to_owned(),
                begin: 1_795_305_600,
                end: 1_795_391_999,
                received_at: 1_795_400_000,
                duplicates: 1,
                success: 90,
                failure: 10,
            }],
        };
        let html = tls_page(&header(), &view, None, None);
        assert!(!html.contains("<img"), "{html}");
        assert!(html.contains("&lt;img src=x onerror=alert(1)&gt;"));
        assert!(html.contains(r#"href="/reports/7""#));
        assert!(html.contains(
            "90 successful and 10 failed sessions in the last 30 days, 90.0% successful."
        ));
        assert!(html.contains("2026-11-22: 10 failed sessions"));
        assert!(
            html.contains("No failures in these days."),
            "empty MX list says so"
        );
        assert!(html.contains(r#"href="/domains/example.com/reports?days=90" class="window""#));
        assert!(html.contains(r#"class="window current" aria-current="page">30 days"#));
    }

    #[test]
    fn documents_are_escaped_and_cut() {
        assert_eq!(document("<a>"), r#"<pre class="document">&lt;a&gt;</pre>"#);
        let big = "é".repeat(MAX_SHOWN_DOCUMENT);
        let shown = document(&big);
        assert!(shown.contains("Cut at"));
        assert!(shown.len() < MAX_SHOWN_DOCUMENT + 1_000);
    }

    #[test]
    fn levels_have_known_classes() {
        assert!(level_badge(Level::Ready).contains("badge level ok"));
        assert!(level_badge(Level::Fix).contains("badge level bad"));
        assert!(level_badge(Level::Wait).contains("badge level warn"));
        assert!(level_badge(Level::NoData).contains("badge level neutral"));
    }
}
