//! HTML output: the one escaping helper and the pages.
//!
//! Every value that did not come from this file goes through [`escape`] before it is
//! interpolated, attribute or text alike; the pages are plain `format!` templates so a
//! reviewer can see each interpolation.

use std::fmt::Write as _;

use mtasts_proto::hosted::delegation::RecordKind;
use mtasts_store::host::{DomainState, Role};

use super::report_html;
use crate::service::reports::DomainHealth;
use crate::service::{DomainDetail, VersionView};

/// Escapes `text` for an HTML text node or a double- or single-quoted attribute value.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Shorthand for [`escape`] inside the templates.
fn e(text: &str) -> String {
    escape(text)
}

/// Unix seconds as `YYYY-MM-DD HH:MM:SS UTC`.
pub(crate) fn when(unix: i64) -> String {
    let format =
        time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second] UTC");
    time::OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| t.format(&format).ok())
        .unwrap_or_else(|| unix.to_string())
}

/// What a person reads for a delegated record; the API's names (`sts_record`, …) are for
/// programs.
pub(crate) fn record_label(kind: RecordKind) -> &'static str {
    match kind {
        RecordKind::StsRecord => "MTA-STS record",
        RecordKind::PolicyHost => "Policy host",
        RecordKind::TlsRpt => "TLS-RPT record",
    }
}

/// What a person reads for a role (the API spells read-only `readonly`).
pub(crate) fn role_label(role: Role) -> &'static str {
    match role {
        Role::Admin => "admin",
        Role::Owner => "owner",
        Role::ReadOnly => "read-only",
    }
}

/// Who is logged in, as the page header shows it.
pub(crate) struct Header<'a> {
    /// The user's e-mail address or the token description.
    pub who: &'a str,
    /// The role, in words ([`role_label`]).
    pub role: &'a str,
    /// The session's CSRF token, for the logout form.
    pub csrf: &'a str,
}

/// A whole page around `body`.
pub(crate) fn page(title: &str, header: Option<&Header<'_>>, body: &str) -> String {
    let nav = match header {
        Some(h) => format!(
            r#"<nav><a href="/">Domains</a><a href="/alerts">Alerts</a>{unowned}<span class="who">{who} ({role})</span><form method="post" action="/logout" class="inline"><input type="hidden" name="csrf" value="{csrf}"><button type="submit" class="link">Log out</button></form><form method="post" action="/logout-all" class="inline"><input type="hidden" name="csrf" value="{csrf}"><button type="submit" class="link">Log out everywhere</button></form></nav>"#,
            who = e(h.who),
            role = e(h.role),
            csrf = e(h.csrf),
            unowned = if h.role == role_label(Role::Admin) {
                r#"<a href="/reports">Reports nobody's</a><a href="/admin/mail">Mail without reports</a>"#
            } else {
                ""
            },
        ),
        None => String::new(),
    };
    format!(
        r#"<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} · mtasts</title>
<link rel="stylesheet" href="/static/style.css">
</head>
<body>
<header><span class="brand">mtasts</span>{nav}</header>
<main>
{body}
</main>
</body>
</html>
"#,
        title = e(title),
    )
}

/// A form-level error: the field, what was wrong and the rule it breaks.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct FormError {
    /// The field name, or empty for the whole form.
    pub field: String,
    /// What was wrong.
    pub message: String,
    /// The rule, with its source, when there is one.
    pub rule: Option<String>,
}

fn error_box(error: Option<&FormError>) -> String {
    let Some(error) = error else {
        return String::new();
    };
    let field = if error.field.is_empty() {
        String::new()
    } else {
        format!("<strong>{}</strong>: ", e(&error.field))
    };
    let rule = error
        .rule
        .as_deref()
        .map(|r| format!(r#"<br><span class="rule">{}</span>"#, e(r)))
        .unwrap_or_default();
    format!(
        r#"<p class="error" role="alert">{field}{message}{rule}</p>"#,
        message = e(&error.message)
    )
}

/// The login page.
pub(crate) fn login(csrf: &str, email: &str, error: Option<&str>) -> String {
    let error = error
        .map(|m| format!(r#"<p class="error" role="alert">{}</p>"#, e(m)))
        .unwrap_or_default();
    let body = format!(
        r#"<section class="card narrow">
<h1>Log in</h1>
{error}<form method="post" action="/login">
<input type="hidden" name="csrf" value="{csrf}">
<label>E-mail <input type="email" name="email" value="{email}" autocomplete="username"></label>
<label>Password or API token <input type="password" name="password" autocomplete="current-password" required></label>
<p class="hint">Administrators without an account: leave the e-mail empty and paste an API token.</p>
<button type="submit">Log in</button>
</form>
</section>"#,
        csrf = e(csrf),
        email = e(email),
    );
    page("Log in", None, &body)
}

/// A page with only a message (errors, 404, 429).
pub(crate) fn message(title: &str, header: Option<&Header<'_>>, text: &str) -> String {
    let body = format!(
        r#"<section class="card"><h1>{}</h1><p>{}</p><p><a href="/">Back to the domains</a></p></section>"#,
        e(title),
        e(text)
    );
    page(title, header, &body)
}

fn badge(status: &str) -> String {
    // Only known statuses become class names; anything else is shown as unknown.
    let class = match status {
        "verified" | "valid" | "active" | "published" => "ok",
        "missing" | "expired" => "bad",
        "wrong" | "expiring" | "removing" | "pending" => "warn",
        _ => "neutral",
    };
    format!(r#"<span class="badge {class}">{}</span>"#, e(status))
}

/// What the add-domain form shows again after an error.
#[derive(Clone, Debug)]
pub(crate) struct AddForm {
    /// The domain typed.
    pub domain: String,
    /// The tenant typed (administrators).
    pub tenant: String,
    /// The mode chosen.
    pub mode: String,
    /// The mx text as typed.
    pub mx: String,
    /// The max_age as typed.
    pub max_age: String,
    /// The TLS-RPT report address as typed.
    pub rua: String,
    /// Whether the service's own report addresses are published (checked by default).
    pub reports_to_service: bool,
}

impl Default for AddForm {
    fn default() -> Self {
        AddForm {
            domain: String::new(),
            tenant: String::new(),
            mode: String::new(),
            mx: String::new(),
            max_age: String::new(),
            rua: String::new(),
            reports_to_service: true,
        }
    }
}

/// The checkbox that sends the reports to the service too.
fn reports_checkbox(checked: bool) -> String {
    let checked = if checked { " checked" } else { "" };
    format!(
        r#"<label class="check"><input type="checkbox" name="reports_to_service" value="on"{checked}> Send TLS reports to this service too (it then shows them as charts and advice)</label>"#
    )
}

/// Which TLS-RPT addresses are in effect for `d`, in words.
pub(crate) fn tlsrpt_in_effect(d: &DomainDetail) -> String {
    let own = d
        .rua
        .as_deref()
        .map(|rua| format!("<code>{}</code>", e(rua)));
    match (d.reports_to_service, own) {
        (true, Some(own)) => format!("Reports go to this service and to your own address {own}."),
        (true, None) => "Reports go to this service.".to_owned(),
        (false, Some(own)) => format!(
            "Reports go only to your own address {own}; this service receives none and cannot chart them."
        ),
        (false, None) => {
            "Reports go nowhere: no <code>_smtp._tls</code> record is published.".to_owned()
        }
    }
}

fn mode_options(selected: &str) -> String {
    let mut out = String::new();
    for mode in ["testing", "enforce", "none"] {
        let sel = if mode == selected { " selected" } else { "" };
        let _ = write!(out, r#"<option value="{mode}"{sel}>{mode}</option>"#);
    }
    out
}

fn policy_id_cell(d: &DomainDetail) -> String {
    let mut out = match &d.policy_id {
        Some(id) => format!("<code>{}</code>", e(id)),
        None => "<span class=\"muted\">not yet</span>".to_owned(),
    };
    if let Some(pending) = &d.pending_policy_id {
        let _ = write!(out, " {} <code>{}</code>", badge("pending"), e(pending));
    }
    out
}

/// Where a paginated table is and what comes after it.
pub(crate) struct Pager<'a> {
    /// The page's path without a query (`/`, `/domains/example.com`).
    pub base: &'a str,
    /// Whether this is a later page (then a link back to the first).
    pub first: bool,
    /// The cursor of the next page, if there is one.
    pub next: Option<&'a str>,
}

impl Pager<'_> {
    /// The "First page" and "Next page" links, or nothing on a lone page.
    pub(crate) fn links(&self) -> String {
        let mut links = Vec::new();
        if self.first {
            links.push(format!(
                r#"<a href="{base}" class="first-page">First page</a>"#,
                base = e(self.base)
            ));
        }
        if let Some(next) = self.next {
            links.push(format!(
                r#"<a href="{base}?cursor={next}" class="next-page" rel="next">Next page</a>"#,
                base = e(self.base),
                next = e(next)
            ));
        }
        if links.is_empty() {
            return String::new();
        }
        format!(r#"<p class="pager">{}</p>"#, links.join(" "))
    }
}

/// A domain of the list with its health at a glance (none: no reports could be read).
pub(crate) struct Listed<'a> {
    /// The domain.
    pub detail: &'a DomainDetail,
    /// What its reports say.
    pub health: Option<&'a DomainHealth>,
}

/// A page of the list of domains with the add form.
pub(crate) fn domains(
    header: &Header<'_>,
    list: &[Listed<'_>],
    pager: &Pager<'_>,
    admin: bool,
    can_write: bool,
    form: &AddForm,
    error: Option<&FormError>,
) -> String {
    let mut rows = String::new();
    for &Listed { detail: d, health } in list {
        let records: String = d
            .records
            .iter()
            .map(|r| {
                format!(
                    r#"<span class="record" title="{name}">{kind} {badge}</span>"#,
                    name = e(&r.name),
                    kind = e(record_label(r.kind)),
                    badge = badge(r.status.as_str())
                )
            })
            .collect::<Vec<_>>()
            .join(" ");
        let tenant = if admin {
            format!("<td>{}</td>", e(&d.tenant))
        } else {
            String::new()
        };
        let _ = write!(
            rows,
            r#"<tr class="domain-row"><td><a href="/domains/{href}">{name}</a></td>{tenant}<td>{state}</td><td>{mode}</td><td>{id}</td><td>{cert}</td><td>{records}</td>{health}</tr>"#,
            href = e(&d.domain),
            name = e(&d.domain),
            state = badge(d.state.as_str()),
            mode = badge_mode(&d.mode),
            id = policy_id_cell(d),
            cert = badge(d.certificate.status.as_str()),
            health = report_html::health_cells(&d.domain, health),
        );
    }
    let tenant_head = if admin { "<th>Tenant</th>" } else { "" };
    let table = if list.is_empty() && !pager.first {
        "<p class=\"muted\">No domains yet.</p>".to_owned()
    } else {
        format!(
            r#"<table class="domains"><thead><tr><th>Domain</th>{tenant_head}<th>State</th><th>Mode</th><th>Policy id</th><th>Certificate</th><th>Records</th>{health_head}</tr></thead><tbody>{rows}</tbody></table>{pages}"#,
            pages = pager.links(),
            health_head = report_html::HEALTH_HEAD,
        )
    };
    let add = if can_write {
        let tenant_field = if admin {
            format!(
                r#"<label>Tenant <input name="tenant" value="{}" required></label>"#,
                e(&form.tenant)
            )
        } else {
            String::new()
        };
        let mode = if form.mode.is_empty() {
            "testing"
        } else {
            &form.mode
        };
        format!(
            r#"<section class="card"><h2>Add a domain</h2>
{error}<form method="post" action="/domains">
<input type="hidden" name="csrf" value="{csrf}">
<label>Domain <input name="domain" value="{domain}" required placeholder="example.com"></label>
{tenant_field}
<label>Mode <select name="mode">{modes}</select></label>
<label>MX patterns, one per line (empty: use the domain's MX records) <textarea name="mx" rows="3">{mx}</textarea></label>
<label>max_age in seconds (empty: one week) <input name="max_age" value="{max_age}" inputmode="numeric"></label>
{reports_box}
<label>Your own TLS-RPT report address (rua), optional <input name="rua" value="{rua}" placeholder="mailto:tlsrpt@example.com"></label>
<p class="hint">Where senders mail or post their daily TLS reports (RFC 8460): this service's own addresses (unless unchecked) and any <code>mailto:</code> or <code>https:</code> URIs of yours, separated by commas. The service answers <code>_smtp._tls</code> with them; a fourth CNAME is listed.</p>
<button type="submit">Add</button>
</form></section>"#,
            error = error_box(error),
            csrf = e(header.csrf),
            domain = e(&form.domain),
            modes = mode_options(mode),
            mx = e(&form.mx),
            max_age = e(&form.max_age),
            rua = e(&form.rua),
            reports_box = reports_checkbox(form.reports_to_service),
        )
    } else {
        String::new()
    };
    let body = format!(
        r#"<section class="card"><h1>Domains</h1>{table}</section>
{add}"#
    );
    page("Domains", Some(header), &body)
}

fn badge_mode(mode: &str) -> String {
    let class = match mode {
        "enforce" => "ok",
        "testing" => "warn",
        _ => "neutral",
    };
    format!(r#"<span class="badge {class}">{}</span>"#, e(mode))
}

/// What the change form shows again after an error.
#[derive(Clone, Debug, Default)]
pub(crate) struct ChangeForm {
    /// The mode chosen.
    pub mode: String,
    /// The mx text.
    pub mx: String,
    /// The max_age text.
    pub max_age: String,
    /// The rua text.
    pub rua: String,
    /// Whether the service's own report addresses are published.
    pub reports_to_service: bool,
}

/// A page of a domain's versions.
pub(crate) struct History<'a> {
    /// The versions, newest first.
    pub versions: &'a [VersionView],
    /// Where the page is.
    pub pager: Pager<'a>,
}

/// One domain: policy, records, certificate, its readiness (`reports`, HTML), a page of its
/// history, change and remove forms.
pub(crate) fn detail(
    header: &Header<'_>,
    d: &DomainDetail,
    history: &History<'_>,
    can_write: bool,
    form: Option<&ChangeForm>,
    error: Option<&FormError>,
    reports: &str,
) -> String {
    let name = e(&d.domain);
    let mut records = String::new();
    for r in &d.records {
        let detail = r.detail.as_deref().map(e).unwrap_or_default();
        let fix = r
            .fix
            .as_deref()
            .map(|f| format!(r#"<div class="fix">Fix: {}</div>"#, e(f)))
            .unwrap_or_default();
        let _ = write!(
            records,
            r#"<tr><td>{kind}</td><td><code>{name}</code></td><td>{ty}</td><td><code>{target}.</code></td><td>{badge}</td><td>{detail}{fix}</td></tr>"#,
            kind = e(record_label(r.kind)),
            name = e(&r.name),
            ty = e(r.record_type),
            target = e(&r.target),
            badge = badge(r.status.as_str()),
        );
    }
    let mut versions = String::new();
    for v in history.versions {
        let published = v
            .published_at
            .map(|t| e(&when(t)))
            .unwrap_or_else(|| badge("pending"));
        let _ = write!(
            versions,
            r#"<tr class="version-row"><td>{version}</td><td><code>{id}</code></td><td>{mode}</td><td>{mx}</td><td>{max_age}</td><td>{created}</td><td>{published}</td></tr>"#,
            version = v.version,
            id = e(&v.policy_id),
            mode = badge_mode(&v.mode),
            mx = e(&v.mx.join(", ")),
            max_age = v.max_age,
            created = e(&when(v.created_at)),
        );
    }
    let cert = match d.certificate.not_after {
        Some(t) => format!(
            "{} until {}",
            badge(d.certificate.status.as_str()),
            e(&when(t))
        ),
        None => format!(
            "{} (issued once the CNAMEs resolve)",
            badge(d.certificate.status.as_str())
        ),
    };
    let removing = match (d.state, d.remove_after) {
        (DomainState::Removing, Some(t)) => format!(
            r#"<p class="notice">Removing: a <code>mode: none</code> policy is served until {}, when every cached policy has expired (RFC 8461 §8.3). Remove the three CNAMEs after that.</p>"#,
            e(&when(t))
        ),
        (DomainState::Removing, None) => r#"<p class="notice">Removing.</p>"#.to_owned(),
        _ => String::new(),
    };
    let forms = if can_write && d.state == DomainState::Active {
        let current = ChangeForm {
            mode: d.mode.clone(),
            mx: d.mx.join("\n"),
            max_age: d.max_age.to_string(),
            rua: d.rua.clone().unwrap_or_default(),
            reports_to_service: d.reports_to_service,
        };
        let form = form.unwrap_or(&current);
        format!(
            r#"<section class="card"><h2>Change the policy or report address</h2>
{error}<form method="post" action="/domains/{name}">
<input type="hidden" name="csrf" value="{csrf}">
<label>Mode <select name="mode">{modes}</select></label>
<label>MX patterns, one per line <textarea name="mx" rows="3">{mx}</textarea></label>
<label>max_age in seconds <input name="max_age" value="{max_age}" inputmode="numeric"></label>
{reports_box}
<label>Your own TLS-RPT report address (rua; empty: none) <input name="rua" value="{rua}" placeholder="mailto:tlsrpt@example.com"></label>
<p class="hint">A change of mode, MX patterns or max_age is saved as a new policy version with a new id. The report address is not part of the policy: changing it only changes the <code>_smtp._tls</code> record.</p>
<button type="submit">Save changes</button>
</form></section>
<section class="card danger"><h2>Remove</h2>
<p>Removing does not delete at once: senders keep a fetched policy until its <code>max_age</code> runs out, so the service first publishes <code>mode: none</code> under a new id and keeps serving it until every policy served so far has expired (RFC 8461 §8.3). The domain disappears after that; remove the CNAMEs then.</p>
<form method="post" action="/domains/{name}/remove">
<input type="hidden" name="csrf" value="{csrf}">
<button type="submit" class="danger">Remove {name}</button>
</form></section>"#,
            error = error_box(error),
            csrf = e(header.csrf),
            modes = mode_options(&form.mode),
            mx = e(&form.mx),
            max_age = e(&form.max_age),
            rua = e(&form.rua),
            reports_box = reports_checkbox(form.reports_to_service),
        )
    } else if can_write && d.state == DomainState::Removing {
        format!(
            r#"{error}<section class="card"><h2>Cancel removal</h2>
<p>The policy served before the removal returns as a new version with a new id, published like any change; senders that saw <code>mode: none</code> fetch it again.</p>
<form method="post" action="/domains/{name}/restore">
<input type="hidden" name="csrf" value="{csrf}">
<button type="submit">Cancel removal of {name}</button>
</form></section>"#,
            error = error_box(error),
            csrf = e(header.csrf),
        )
    } else {
        error_box(error)
    };
    let body = format!(
        r#"{tabs}<section class="card"><h1>{name} {state}</h1>
{removing}<dl>
<dt>Tenant</dt><dd>{tenant}</dd>
<dt>Mode</dt><dd>{mode}</dd>
<dt>Policy id</dt><dd>{id}</dd>
<dt>Version</dt><dd>{version}</dd>
<dt>TLS-RPT reports (rua)</dt><dd>{rua}</dd>
<dt>Certificate</dt><dd>{cert}</dd>
</dl>
<h2>Policy</h2>
<p class="muted">Served at <code>https://mta-sts.{name}/.well-known/mta-sts.txt</code></p>
<pre class="policy">{policy}</pre>
</section>
<section class="card reports"><h2>Reports</h2>
<p>{in_effect}</p>
<dl>
<dt>Published TLS-RPT rua</dt><dd>{tlsrpt_rua}</dd>
<dt>DMARC reports</dt><dd>To have DMARC aggregate reports sent here, add <code>{dmarc_rua}</code> to the <code>rua=</code> of your <code>_dmarc.{name}</code> record, for example <code>v=DMARC1; p=none; rua={dmarc_rua}</code>. The service publishes <code>{dmarc_auth}. TXT "v=DMARC1"</code>, which tells receivers that it accepts reports for {name} (RFC 7489 §7.1).</dd>
</dl>
</section>
{checks}{reports}<section class="card"><h2>DNS records to publish</h2>
<table class="records"><thead><tr><th>Record</th><th>Name</th><th>Type</th><th>Target</th><th>Status</th><th>Details</th></tr></thead><tbody>{records}</tbody></table>
</section>
{forms}
<section class="card"><h2>History</h2>
<table class="history"><thead><tr><th>Version</th><th>Id</th><th>Mode</th><th>MX</th><th>max_age</th><th>Created</th><th>Published</th></tr></thead><tbody>{versions}</tbody></table>
{pages}</section>"#,
        pages = history.pager.links(),
        checks = super::check_html::card(d.verification.as_ref().and_then(|v| v.check.as_ref())),
        tabs = report_html::domain_tabs(&d.domain, "policy"),
        state = badge(d.state.as_str()),
        tenant = e(&d.tenant),
        mode = badge_mode(&d.mode),
        id = policy_id_cell(d),
        version = d.version,
        rua = match &d.reports.tlsrpt_rua {
            Some(rua) => format!("<code>{}</code>", e(rua)),
            None =>
                r#"<span class="muted">none (no <code>_smtp._tls</code> record)</span>"#.to_owned(),
        },
        in_effect = tlsrpt_in_effect(d),
        tlsrpt_rua = match &d.reports.tlsrpt_rua {
            Some(rua) => format!("<code>{}</code>", e(rua)),
            None => r#"<span class="muted">none</span>"#.to_owned(),
        },
        dmarc_rua = e(&d.reports.dmarc_rua),
        dmarc_auth = e(&d.reports.dmarc_authorization),
        policy = e(&d.policy.replace("\r\n", "\n")),
    );
    page(&d.domain, Some(header), &body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_covers_text_and_both_attribute_quotes() {
        assert_eq!(
            escape(r#"<script>alert("x")</script> & 'y'"#),
            "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &#39;y&#39;"
        );
        assert_eq!(escape("plain example.com"), "plain example.com");
        assert_eq!(escape(""), "");
        assert_eq!(
            escape("&amp;"),
            "&amp;amp;",
            "escaping is not idempotent by design"
        );
        assert_eq!(escape("é<"), "é&lt;");
    }

    #[test]
    fn times_are_utc() {
        assert_eq!(when(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(when(1_795_350_896), "2026-11-22 12:34:56 UTC");
    }

    #[test]
    fn pager_links_carry_the_cursor_escaped() {
        let lone = Pager {
            base: "/",
            first: false,
            next: None,
        };
        assert_eq!(lone.links(), "");
        let middle = Pager {
            base: "/domains/example.com",
            first: true,
            next: Some("64313a78\"<"),
        };
        let links = middle.links();
        assert!(links.contains(r#"href="/domains/example.com" class="first-page""#));
        assert!(links.contains(r#"href="/domains/example.com?cursor=64313a78&quot;&lt;""#));
    }

    #[test]
    fn badges_only_use_known_classes() {
        assert!(badge("verified").contains("badge ok"));
        assert!(badge("\"><x").contains("badge neutral"));
        assert!(badge("\"><x").contains("&quot;&gt;&lt;x"));
    }
}
