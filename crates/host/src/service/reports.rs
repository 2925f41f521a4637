//! The received reports as the API and the dashboard show them: per domain, TLS sessions and
//! DMARC messages per day with their breakdowns, the readiness advice, an overview of every
//! domain's health, the report list and one report whole.
//!
//! # Tenant mapping
//!
//! A report belongs to the tenant that hosts one of its domains *now* (TLS-RPT: a policy
//! domain; DMARC: the `policy_published` domain), decided at query time: a domain that moves
//! to another tenant takes its reports along. Reports none of whose domains is hosted are on
//! the administrators' list ([`unowned`]). A tenant never sees another tenant's reports: a
//! domain or report it may not see is [`ServiceError::NotFound`], as for domains. Reports
//! imported with `mtasts report import --database <the serve database>` land in the same
//! tables and are mapped the same way.
//!
//! # Where the numbers come from
//!
//! Charts, totals, breakdowns (TLS failures by result, MX, address and organization; the
//! DMARC sources), the latest policies, reports per organization and the last arrival come
//! from the rollups (`report_daily` and the breakdown rollups of `mtasts_store::reports`),
//! which retention keeps, summed over the window's days: a year-long page reads a few
//! hundred rollup rows per domain, and its numbers stay after the reports are deleted. Only
//! the report lists and [`report`] read the stored reports, and the readiness reads the newest
//! TLS report's policy for its `mx` lines (none left: the MX list is not judged). The
//! readiness verdict is `mtasts_proto::readiness`'s, from the evidence
//! `mtasts_report::evidence` builds, as `mtasts report summary` does (which reads the
//! per-report rows: for reports inside the window the two agree).

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use mtasts_proto::hosted::cursor::{self, Cursor, MAX_PAGE_SIZE};
use mtasts_proto::readiness::date::{DAY, day_start};
use mtasts_proto::readiness::{Level, dmarc, tls};
use mtasts_report::evidence;
use mtasts_store::host::Domain;
use mtasts_store::reports::{
    DailyRow, Filter, Kind, ReportDb, ReportDbError, ReportKey, ReportRow, Scope,
};
use serde::{Serialize, Serializer};

use super::error::ServiceError;
use super::report_visibility;
use super::views::Page;
use crate::auth::Principal;
use crate::state::AppState;

/// Reports listed in a domain's TLS or DMARC view (the list pages through the rest).
pub const VIEW_REPORTS: u32 = 100;
/// Report rows an [`unowned`] page looks at, at most, to fill itself: a page may come back
/// short (with a cursor) when few of them are unowned.
pub const UNOWNED_SCAN: u32 = 5_000;

/// The days a view covers, ending today (UTC): 30, 90 or 365.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Window(u32);

impl Window {
    /// The windows offered.
    pub const ALL: [Window; 3] = [Window(30), Window(90), Window(365)];

    /// `"30"`, `"90"` or `"365"`; anything else is `None`.
    pub fn parse(text: &str) -> Option<Window> {
        Window::ALL.into_iter().find(|w| w.0.to_string() == text)
    }

    /// Its length in days.
    pub fn days(self) -> u32 {
        self.0
    }

    /// `[since, until)` in Unix seconds: the window's first day 00:00 UTC to the end of the
    /// day of `now`.
    pub fn range(self, now: i64) -> (i64, i64) {
        let until = day_start(now) + DAY;
        (until - i64::from(self.0) * DAY, until)
    }
}

impl Default for Window {
    fn default() -> Self {
        Window(30)
    }
}

impl Serialize for Window {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u32(self.0)
    }
}

/// TLS sessions of one day (every day of a window, zeros included, oldest first).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DayPoint {
    /// The day, Unix seconds at 00:00 UTC.
    pub day: i64,
    /// Successful sessions.
    pub success: u64,
    /// Failed sessions.
    pub failure: u64,
}

/// A count under a label, largest first.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Count {
    /// What is counted (a result type, a host name, an address).
    pub label: String,
    /// How many.
    pub count: u64,
}

/// What one reporting organization said about a domain in a window.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct OrgCount {
    /// `organization-name` / `org_name`.
    pub organization: String,
    /// Reports stored from it (each once, however often it arrived).
    pub reports: u64,
    /// TLS: successful sessions; DMARC: messages passing DMARC.
    pub success: u64,
    /// TLS: failed sessions; DMARC: messages failing DMARC.
    pub failure: u64,
}

/// One stored report, as listed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ReportSummary {
    /// Its id (`/api/v1/reports/{id}`).
    pub id: i64,
    /// `tlsrpt` or `dmarc`.
    #[serde(serialize_with = "kind_word")]
    pub kind: Kind,
    /// The reporting organization.
    pub organization: String,
    /// The sender's report id.
    pub report_id: String,
    /// The domains it is about.
    pub domains: Vec<String>,
    /// Its range's begin, Unix seconds.
    pub begin: i64,
    /// Its range's end, Unix seconds.
    pub end: i64,
    /// When it first arrived, Unix seconds.
    pub received_at: i64,
    /// Where it first arrived.
    pub source: String,
    /// How many more times it arrived (counted once).
    pub duplicates: u64,
    /// TLS: successful sessions; DMARC: messages passing DMARC.
    pub success: u64,
    /// TLS: failed sessions; DMARC: messages failing DMARC.
    pub failure: u64,
}

/// A domain's TLS reports over a window.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TlsView {
    /// The policy domain.
    pub domain: String,
    /// The window.
    pub window: Window,
    /// Sessions per day.
    pub days: Vec<DayPoint>,
    /// Successful sessions in the window.
    pub success: u64,
    /// Failed sessions in the window.
    pub failure: u64,
    /// Failed sessions by result type.
    pub by_result: Vec<Count>,
    /// Failed sessions by receiving MX host (`unknown` when the sender named none).
    pub by_mx: Vec<Count>,
    /// Failed sessions by receiving IP.
    pub by_receiving_ip: Vec<Count>,
    /// Reports and sessions by reporting organization.
    pub by_organization: Vec<OrgCount>,
    /// Failed sessions by sending MTA IP.
    pub by_sending_ip: Vec<Count>,
    /// The newest reports (at most [`VIEW_REPORTS`]).
    pub reports: Vec<ReportSummary>,
}

/// DMARC messages of one day by disposition.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DmarcDay {
    /// The day, Unix seconds at 00:00 UTC.
    pub day: i64,
    /// Messages.
    pub messages: u64,
    /// Messages passing DMARC.
    pub pass: u64,
    /// Disposition `none` (and RFC 9990 `pass`).
    pub none: u64,
    /// Disposition `quarantine`.
    pub quarantine: u64,
    /// Disposition `reject`.
    pub reject: u64,
}

/// Messages from one source (IP and header-from).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DmarcSourceRow {
    /// `source_ip`.
    pub source_ip: String,
    /// `header_from`.
    pub header_from: String,
    /// Messages.
    pub messages: u64,
    /// Messages whose aligned SPF passed.
    pub spf_aligned: u64,
    /// Messages whose aligned DKIM passed.
    pub dkim_aligned: u64,
    /// Messages passing DMARC.
    pub pass: u64,
    /// Messages `p=quarantine` would send to spam (the failing ones, at `pct=100`).
    pub if_quarantine: u64,
    /// Messages `p=reject` would refuse (the failing ones, at `pct=100`).
    pub if_reject: u64,
}

/// A domain's DMARC aggregate reports over a window.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DmarcView {
    /// The policy domain.
    pub domain: String,
    /// The window.
    pub window: Window,
    /// Messages per day.
    pub days: Vec<DmarcDay>,
    /// Messages in the window.
    pub messages: u64,
    /// Messages passing DMARC in the window.
    pub pass: u64,
    /// The published `p` of the newest report.
    pub published_p: Option<String>,
    /// The sources, most failing messages first.
    pub sources: Vec<DmarcSourceRow>,
    /// The newest reports (at most [`VIEW_REPORTS`]).
    pub reports: Vec<ReportSummary>,
}

/// Whether a domain's MTA-STS policy can move to `enforce`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TlsReadiness {
    /// The mode the service serves now.
    pub mode: String,
    /// Reports in the window.
    pub reports: u64,
    /// Reporting organizations.
    pub organizations: u64,
    /// Days with sessions.
    pub days: u64,
    /// Failed sessions.
    pub failures: u64,
    /// Failed sessions by result type.
    pub failures_by_type: Vec<Count>,
    /// The verdict's level.
    #[serde(serialize_with = "level_word")]
    pub level: Level,
    /// One sentence: what the reports say and what to do.
    pub headline: String,
    /// The evidence and every other problem, one sentence each.
    pub advice: Vec<String>,
    /// True when the mode is `testing` and the verdict is ready: switching to `enforce` is
    /// safe.
    pub enforce_safe: bool,
}

/// Whether a domain's DMARC policy can go one step stricter.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DmarcReadiness {
    /// The published `p` of the newest report.
    pub published_p: Option<String>,
    /// The next step (`quarantine` after `none`, `reject` after `quarantine`); none at
    /// `reject` or when `p` is not known.
    pub next_step: Option<String>,
    /// The verdict's level.
    #[serde(serialize_with = "level_word")]
    pub level: Level,
    /// One sentence.
    pub headline: String,
    /// The details.
    pub advice: Vec<String>,
    /// The sources the next step would hurt (some messages failing), worst first.
    pub hurt: Vec<DmarcSourceRow>,
}

/// One domain at a glance.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DomainHealth {
    /// The domain.
    pub domain: String,
    /// The mode served now.
    pub mode: String,
    /// Successful TLS sessions in the last 30 days.
    pub tls_success: u64,
    /// Failed TLS sessions in the last 30 days.
    pub tls_failure: u64,
    /// DMARC messages in the last 30 days.
    pub dmarc_messages: u64,
    /// DMARC messages passing in the last 30 days.
    pub dmarc_pass: u64,
    /// When a report about it last arrived, Unix seconds.
    pub last_report_at: Option<i64>,
    /// The TLS readiness level (without the MX-list check, which needs a report read).
    #[serde(serialize_with = "level_word")]
    pub level: Level,
    /// Its headline.
    pub headline: String,
}

/// One report whole.
#[derive(Clone, Debug, PartialEq)]
pub struct ReportDetail {
    /// What the list shows.
    pub summary: ReportSummary,
    /// The output contract's JSON object (`shared/spec/report-output.md`), records included.
    pub normalized: serde_json::Value,
    /// The document as received (JSON or XML), decompressed.
    pub raw: Vec<u8>,
    /// How it came in, oldest first: each delivery by mail (client, envelope, TLS, DKIM
    /// results) recorded by the SMTP intake; empty for reports posted or imported.
    pub arrivals: Vec<mtasts_store::reports::ArrivalRow>,
}

impl ReportDetail {
    /// The media type of [`ReportDetail::raw`]: RFC 8460 §5.3's for TLS reports, XML for DMARC.
    pub fn raw_content_type(&self) -> &'static str {
        match self.summary.kind {
            Kind::TlsRpt => "application/tlsrpt+json",
            Kind::Dmarc => "application/xml",
        }
    }
}

/// A domain's TLS view over `window`.
pub async fn tls_view(
    state: &AppState,
    who: &Principal,
    domain: &str,
    window: Window,
) -> Result<TlsView, ServiceError> {
    let (db, domain) = visible(state, who, domain).await?;
    let (since, until) = window.range(state.now());
    let scope = Scope::new(vec![domain.name.clone()], since, until, Some(Kind::TlsRpt));
    let daily = db.daily_of(&scope).await.map_err(report_error)?;
    let details = db.tls_failure_details(&scope).await.map_err(report_error)?;
    let orgs = db.organizations_of(&scope).await.map_err(report_error)?;
    let reports = listed(db, &domain.name, Kind::TlsRpt, since, until).await?;
    let days = tls_days(&daily, since, until);
    let count_by = |label: &dyn Fn(&mtasts_store::reports::FailureDetail) -> String| {
        largest_first(details.iter().map(|d| (label(d), d.count)))
    };
    Ok(TlsView {
        success: total(days.iter().map(|d| d.success)),
        failure: total(days.iter().map(|d| d.failure)),
        days,
        by_result: count_by(&|d| d.result.clone()),
        by_mx: count_by(&|d| d.receiving_mx.clone().unwrap_or_else(|| UNKNOWN.into())),
        by_receiving_ip: count_by(&|d| d.receiving_ip.clone().unwrap_or_else(|| UNKNOWN.into())),
        by_sending_ip: count_by(&|d| d.sending_ip.clone().unwrap_or_else(|| UNKNOWN.into())),
        by_organization: organizations(&daily, &orgs, |r| (r.success, r.failure)),
        reports,
        domain: domain.name,
        window,
    })
}

/// A domain's DMARC view over `window`.
pub async fn dmarc_view(
    state: &AppState,
    who: &Principal,
    domain: &str,
    window: Window,
) -> Result<DmarcView, ServiceError> {
    let (db, domain) = visible(state, who, domain).await?;
    let (since, until) = window.range(state.now());
    let scope = Scope::new(vec![domain.name.clone()], since, until, Some(Kind::Dmarc));
    let daily = db.daily_of(&scope).await.map_err(report_error)?;
    let policies = db.policies_of(&scope).await.map_err(report_error)?;
    let sources = dmarc_sources(db, &domain.name, since, until).await?;
    let reports = listed(db, &domain.name, Kind::Dmarc, since, until).await?;
    let days = dmarc_days(&daily, since, until);
    Ok(DmarcView {
        messages: total(days.iter().map(|d| d.messages)),
        pass: total(days.iter().map(|d| d.pass)),
        days,
        published_p: evidence::latest_policy(&policies, Kind::Dmarc, &domain.name)
            .and_then(|p| p.p),
        sources: sources.iter().map(source_row).collect(),
        reports,
        domain: domain.name,
        window,
    })
}

/// A domain's readiness over `window`: TLS always (it has a hosted policy); DMARC once a
/// DMARC report about it arrived in the window.
pub async fn readiness(
    state: &AppState,
    who: &Principal,
    domain: &str,
    window: Window,
) -> Result<(Option<TlsReadiness>, Option<DmarcReadiness>), ServiceError> {
    let (db, domain) = visible(state, who, domain).await?;
    let now = state.now();
    let (since, until) = window.range(now);
    let name = domain.name.clone();
    let mode = current_mode(state, &domain).await?;
    let scope = Scope::new(vec![name.clone()], since, until, None);
    let daily = db.daily_of(&scope).await.map_err(report_error)?;
    let policies = db.policies_of(&scope).await.map_err(report_error)?;
    let tls_scope = Scope {
        kind: Some(Kind::TlsRpt),
        ..scope.clone()
    };
    let failures = db.tls_failures_of(&tls_scope).await.map_err(report_error)?;
    let orgs = db
        .organizations_of(&tls_scope)
        .await
        .map_err(report_error)?;
    let filter = Filter {
        domain: Some(name.clone()),
        since: Some(since),
        until: Some(until),
        kind: Some(Kind::TlsRpt),
    };
    let mx = evidence::policy_mx(db, &name, &filter)
        .await
        .map_err(report_error)?;
    let tls_days: Vec<DailyRow> = of_kind(&daily, Kind::TlsRpt);
    let tls_policy = evidence::latest_policy(&policies, Kind::TlsRpt, &name);
    let assessment = tls::assess(&evidence::tls_evidence(
        &name,
        &tls_days,
        &failures,
        tls_policy.as_ref(),
        mx,
        now,
    ));
    let verdict = assessment.verdict;
    let tls = TlsReadiness {
        enforce_safe: mode == "testing" && verdict.level == Level::Ready,
        mode,
        reports: total(orgs.iter().map(|o| o.reports)),
        organizations: assessment.organizations.len() as u64,
        days: assessment.days as u64,
        failures: assessment.failure,
        failures_by_type: largest_first(failures.iter().map(|f| (f.result.clone(), f.count))),
        level: verdict.level,
        headline: verdict.headline,
        advice: verdict.details,
    };
    let dmarc_days: Vec<DailyRow> = of_kind(&daily, Kind::Dmarc);
    let dmarc_policy = evidence::latest_policy(&policies, Kind::Dmarc, &name);
    if dmarc_days.is_empty() && dmarc_policy.is_none() {
        return Ok((Some(tls), None));
    }
    let sources = dmarc_sources(db, &name, since, until).await?;
    let assessment = dmarc::assess(&evidence::dmarc_evidence(
        &name,
        &dmarc_days,
        &sources,
        dmarc_policy.as_ref(),
        now,
    ));
    let published_p = dmarc_policy.and_then(|p| p.p);
    let next_step = match published_p.as_deref() {
        Some("none") => Some("quarantine".to_owned()),
        Some("quarantine") => Some("reject".to_owned()),
        _ => None,
    };
    let dmarc = DmarcReadiness {
        published_p,
        next_step,
        level: assessment.verdict.level,
        headline: assessment.verdict.headline,
        advice: assessment.verdict.details,
        hurt: sources
            .iter()
            .filter(|s| s.messages > s.dmarc_pass)
            .map(source_row)
            .collect(),
    };
    Ok((Some(tls), Some(dmarc)))
}

/// Every domain `who` sees, with the last 30 days at a glance, by name. The reports are read
/// for all of them at once (a few statements however many domains there are).
pub async fn health(state: &AppState, who: &Principal) -> Result<Vec<DomainHealth>, ServiceError> {
    let db = reports_db(state)?;
    let mut domains = state.db.list_domains(who.tenant_id).await?;
    domains.retain(|d| who.can_see(d.tenant_id));
    domains.sort_by(|a, b| a.name.cmp(&b.name));
    let now = state.now();
    let (since, until) = Window::default().range(now);
    let names: Vec<String> = domains.iter().map(|d| d.name.clone()).collect();
    let scope = Scope::new(names, since, until, None);
    let daily = db.daily_of(&scope).await.map_err(report_error)?;
    let tls_scope = Scope {
        kind: Some(Kind::TlsRpt),
        ..scope.clone()
    };
    let failures = db.tls_failures_of(&tls_scope).await.map_err(report_error)?;
    let policies = db.policies_of(&tls_scope).await.map_err(report_error)?;
    let last = db.last_received_of(&scope).await.map_err(report_error)?;
    let mut by_domain: HashMap<&str, Vec<DailyRow>> = HashMap::new();
    for row in &daily {
        by_domain.entry(&row.domain).or_default().push(row.clone());
    }
    let mut out = Vec::with_capacity(domains.len());
    for domain in &domains {
        let rows = by_domain.remove(domain.name.as_str()).unwrap_or_default();
        let tls_rows = of_kind(&rows, Kind::TlsRpt);
        let domain_failures: Vec<_> = failures
            .iter()
            .filter(|f| f.domain == domain.name)
            .cloned()
            .collect();
        let policy = evidence::latest_policy(&policies, Kind::TlsRpt, &domain.name);
        let verdict = tls::assess(&evidence::tls_evidence(
            &domain.name,
            &tls_rows,
            &domain_failures,
            policy.as_ref(),
            Vec::new(),
            now,
        ))
        .verdict;
        let dmarc_rows = of_kind(&rows, Kind::Dmarc);
        out.push(DomainHealth {
            domain: domain.name.clone(),
            mode: current_mode(state, domain).await?,
            tls_success: total(tls_rows.iter().map(|r| r.success)),
            tls_failure: total(tls_rows.iter().map(|r| r.failure)),
            dmarc_messages: total(dmarc_rows.iter().map(|r| r.messages)),
            dmarc_pass: total(dmarc_rows.iter().map(|r| r.dmarc_pass)),
            last_report_at: last.get(&domain.name).copied(),
            level: verdict.level,
            headline: verdict.headline,
        });
    }
    Ok(out)
}

/// One report whole, if `who` may see it: a tenant sees a report one of whose domains it
/// hosts; an administrator sees every report.
pub async fn report(
    state: &AppState,
    who: &Principal,
    id: i64,
) -> Result<ReportDetail, ServiceError> {
    let db = reports_db(state)?;
    let stored = db
        .get(id)
        .await
        .map_err(report_error)?
        .ok_or(ServiceError::NotFound)?;
    let own = match who.is_admin() {
        true => None,
        false => Some(own_domains(state, who).await?),
    };
    if let Some(own) = &own
        && !stored.row.domains.iter().any(|d| own.contains(d))
    {
        return Err(ServiceError::NotFound);
    }
    let mut raw =
        mtasts_report::intake::stored_document(&stored, &mtasts_report::Limits::default())
            .map_err(|e| ServiceError::Internal(format!("report {id}: {e}")))?;
    let mut normalized: serde_json::Value = serde_json::from_str(&stored.normalized)
        .map_err(|e| ServiceError::Internal(format!("report {id}: normalized JSON: {e}")))?;
    let mut summary = summary(stored.row);
    if let Some(own) = own.filter(|own| !report_visibility::all_own(&summary.domains, own)) {
        (summary.success, summary.failure) =
            report_visibility::restrict_normalized(&mut normalized, &own);
        summary.domains.retain(|d| own.contains(d));
        raw = match report_visibility::restrict_raw(&raw, &own) {
            Some(restricted) => restricted,
            None => serde_json::to_vec_pretty(&normalized)
                .map_err(|e| ServiceError::Internal(format!("report {id}: {e}")))?,
        };
    }
    let arrivals = db.arrivals_of_report(id).await.map_err(report_error)?;
    Ok(ReportDetail {
        summary,
        normalized,
        raw,
        arrivals,
    })
}

/// One page of the reports `who` sees, newest first: about `domain` (one it sees) or all its
/// domains, of `kind` or both; at most `limit` (1 to [`MAX_PAGE_SIZE`]) after `cursor`.
/// Administrators without a domain see every report, hosted or not.
pub async fn reports(
    state: &AppState,
    who: &Principal,
    domain: Option<&str>,
    kind: Option<Kind>,
    limit: u32,
    cursor: Option<&str>,
) -> Result<Page<ReportSummary>, ServiceError> {
    let after = page_start(cursor)?;
    let limit = limit.clamp(1, MAX_PAGE_SIZE);
    let domains: Option<Vec<String>> = match domain {
        Some(name) => Some(vec![visible(state, who, name).await?.1.name]),
        None if who.is_admin() => None,
        None => Some(own_domains(state, who).await?.into_iter().collect()),
    };
    let db = reports_db(state)?;
    if domains.as_ref().is_some_and(Vec::is_empty) {
        return Ok(Page {
            items: Vec::new(),
            next_cursor: None,
        });
    }
    let mut rows = db
        .reports_page(domains.as_deref(), kind, after, limit + 1)
        .await
        .map_err(report_error)?;
    let more = rows.len() > limit as usize;
    rows.truncate(limit as usize);
    let next_cursor = more
        .then(|| rows.last())
        .flatten()
        .map(|r| next(r.begin, r.id));
    let items = match who.is_admin() {
        true => rows.into_iter().map(summary).collect(),
        false => own_parts(db, rows, &own_domains(state, who).await?).await?,
    };
    Ok(Page { items, next_cursor })
}

/// One page of the reports none of whose domains is hosted (administrators only; `NotFound`
/// for everyone else), newest first. A page looks at [`UNOWNED_SCAN`] rows at most and may
/// then come back short, with a cursor to continue.
pub async fn unowned(
    state: &AppState,
    who: &Principal,
    kind: Option<Kind>,
    limit: u32,
    cursor: Option<&str>,
) -> Result<Page<ReportSummary>, ServiceError> {
    super::error::require_admin(who)?;
    let mut after = page_start(cursor)?;
    let limit = limit.clamp(1, MAX_PAGE_SIZE) as usize;
    let db = reports_db(state)?;
    let hosted: HashSet<String> = state
        .db
        .list_domains(None)
        .await?
        .into_iter()
        .map(|d| d.name)
        .collect();
    let mut items = Vec::new();
    let mut scanned = 0;
    loop {
        let batch = db
            .reports_page(None, kind, after, MAX_PAGE_SIZE)
            .await
            .map_err(report_error)?;
        let exhausted = batch.len() < MAX_PAGE_SIZE as usize;
        for row in batch {
            scanned += 1;
            after = Some(ReportKey {
                begin: row.begin,
                id: row.id,
            });
            if !row.domains.iter().any(|d| hosted.contains(d)) {
                items.push(summary(row));
                if items.len() == limit {
                    // Whether more follow is only known by looking: offer the cursor.
                    return Ok(Page {
                        next_cursor: after.map(|k| next(k.begin, k.id)),
                        items,
                    });
                }
            }
        }
        if exhausted {
            return Ok(Page {
                items,
                next_cursor: None,
            });
        }
        if scanned >= UNOWNED_SCAN {
            return Ok(Page {
                items,
                next_cursor: after.map(|k| next(k.begin, k.id)),
            });
        }
    }
}

/// The label of a failure detail the sender left out.
const UNKNOWN: &str = "unknown";

fn kind_word<S: Serializer>(kind: &Kind, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(kind.as_str())
}

fn level_word<S: Serializer>(level: &Level, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(level.as_str())
}

/// The reports database, or `Unavailable` on a node started without one.
fn reports_db(state: &AppState) -> Result<&ReportDb, ServiceError> {
    state
        .reports
        .as_ref()
        .ok_or_else(|| ServiceError::Unavailable("reports are not kept on this node".to_owned()))
}

/// The hosted domain `name` with the reports database, if `who` may see it (the domains'
/// visibility rule).
async fn visible<'a>(
    state: &'a AppState,
    who: &Principal,
    name: &str,
) -> Result<(&'a ReportDb, Domain), ServiceError> {
    let domain = super::domains::visible_domain(state, who, name).await?;
    Ok((reports_db(state)?, domain))
}

/// The names of the domains `who`'s tenant hosts (administrators: every hosted domain).
async fn own_domains(state: &AppState, who: &Principal) -> Result<BTreeSet<String>, ServiceError> {
    Ok(state
        .db
        .list_domains(who.tenant_id)
        .await?
        .into_iter()
        .filter(|d| who.can_see(d.tenant_id))
        .map(|d| d.name)
        .collect())
}

/// The mode the service serves for `domain` now (its newest version's).
async fn current_mode(state: &AppState, domain: &Domain) -> Result<String, ServiceError> {
    Ok(state
        .db
        .version(domain.id, domain.latest_version)
        .await?
        .map(|v| v.mode)
        .unwrap_or_default())
}

fn report_error(e: ReportDbError) -> ServiceError {
    match e {
        ReportDbError::Unavailable(m) | ReportDbError::Conflict(m) => ServiceError::Unavailable(m),
        other => ServiceError::Internal(other.to_string()),
    }
}

fn page_start(cursor: Option<&str>) -> Result<Option<ReportKey>, ServiceError> {
    cursor
        .map(cursor::reports_after)
        .transpose()
        .map(|key| key.map(|(begin, id)| ReportKey { begin, id }))
        .map_err(ServiceError::Invalid)
}

fn next(begin: i64, id: i64) -> String {
    Cursor::ReportsAfter { begin, id }.encode()
}

fn summary(row: ReportRow) -> ReportSummary {
    ReportSummary {
        id: row.id,
        kind: row.kind,
        organization: row.organization,
        report_id: row.report_id,
        domains: row.domains,
        begin: row.begin,
        end: row.end,
        received_at: row.received_at,
        source: row.source,
        duplicates: row.duplicates,
        success: row.success,
        failure: row.failure,
    }
}

/// The newest reports of `kind` about `domain` in `[since, until)`.
async fn listed(
    db: &ReportDb,
    domain: &str,
    kind: Kind,
    since: i64,
    until: i64,
) -> Result<Vec<ReportSummary>, ServiceError> {
    let filter = Filter {
        domain: Some(domain.to_owned()),
        since: Some(since),
        until: Some(until),
        kind: Some(kind),
    };
    let rows = db.list(&filter, VIEW_REPORTS).await.map_err(report_error)?;
    own_parts(db, rows, &BTreeSet::from([domain.to_owned()])).await
}

/// The summaries of `rows` as a viewer of the domains `own` sees them: a report that also
/// names other domains counts only the policies of `own` ones (rare: such a report is read
/// whole for its per-policy counts).
async fn own_parts(
    db: &ReportDb,
    rows: Vec<ReportRow>,
    own: &BTreeSet<String>,
) -> Result<Vec<ReportSummary>, ServiceError> {
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        if report_visibility::all_own(&row.domains, own) {
            out.push(summary(row));
            continue;
        }
        let id = row.id;
        let mut summary = summary(row);
        if let Some(stored) = db.get(id).await.map_err(report_error)? {
            let mut normalized: serde_json::Value = serde_json::from_str(&stored.normalized)
                .map_err(|e| {
                    ServiceError::Internal(format!("report {id}: normalized JSON: {e}"))
                })?;
            (summary.success, summary.failure) =
                report_visibility::restrict_normalized(&mut normalized, own);
        }
        summary.domains.retain(|d| own.contains(d));
        out.push(summary);
    }
    Ok(out)
}

/// The DMARC sources of `domain` in `[since, until)` (from the rollups), worst first.
async fn dmarc_sources(
    db: &ReportDb,
    domain: &str,
    since: i64,
    until: i64,
) -> Result<Vec<mtasts_store::reports::SourceGroup>, ServiceError> {
    let scope = Scope::new(vec![domain.to_owned()], since, until, Some(Kind::Dmarc));
    let mut sources = db.dmarc_sources_of(&scope).await.map_err(report_error)?;
    evidence::worst_sources_first(&mut sources);
    Ok(sources)
}

fn source_row(s: &mtasts_store::reports::SourceGroup) -> DmarcSourceRow {
    let failing = s.messages.saturating_sub(s.dmarc_pass);
    DmarcSourceRow {
        source_ip: s.source_ip.clone(),
        header_from: s.header_from.clone(),
        messages: s.messages,
        spf_aligned: s.spf_pass,
        dkim_aligned: s.dkim_pass,
        pass: s.dmarc_pass,
        if_quarantine: failing,
        if_reject: failing,
    }
}

fn of_kind(rows: &[DailyRow], kind: Kind) -> Vec<DailyRow> {
    rows.iter().filter(|r| r.kind == kind).cloned().collect()
}

/// Every day of `[since, until)` with its sessions, zeros included.
fn tls_days(daily: &[DailyRow], since: i64, until: i64) -> Vec<DayPoint> {
    let mut days: BTreeMap<i64, DayPoint> = (0..)
        .map(|i| since + i * DAY)
        .take_while(|day| *day < until)
        .map(|day| {
            (
                day,
                DayPoint {
                    day,
                    success: 0,
                    failure: 0,
                },
            )
        })
        .collect();
    for row in daily.iter().filter(|r| r.kind == Kind::TlsRpt) {
        if let Some(point) = days.get_mut(&row.day) {
            point.success = point.success.saturating_add(row.success);
            point.failure = point.failure.saturating_add(row.failure);
        }
    }
    days.into_values().collect()
}

/// Every day of `[since, until)` with its messages, zeros included.
fn dmarc_days(daily: &[DailyRow], since: i64, until: i64) -> Vec<DmarcDay> {
    let mut days: BTreeMap<i64, DmarcDay> = (0..)
        .map(|i| since + i * DAY)
        .take_while(|day| *day < until)
        .map(|day| {
            (
                day,
                DmarcDay {
                    day,
                    messages: 0,
                    pass: 0,
                    none: 0,
                    quarantine: 0,
                    reject: 0,
                },
            )
        })
        .collect();
    for row in daily.iter().filter(|r| r.kind == Kind::Dmarc) {
        if let Some(point) = days.get_mut(&row.day) {
            point.messages = point.messages.saturating_add(row.messages);
            point.pass = point.pass.saturating_add(row.dmarc_pass);
            point.none = point.none.saturating_add(row.none);
            point.quarantine = point.quarantine.saturating_add(row.quarantine);
            point.reject = point.reject.saturating_add(row.reject);
        }
    }
    days.into_values().collect()
}

/// Per organization: reports and counts from the rollups (which outlive the reports), most
/// failures first, then most successes, then by name.
fn organizations(
    daily: &[DailyRow],
    orgs: &[mtasts_store::reports::OrganizationCount],
    counts: impl Fn(&DailyRow) -> (u64, u64),
) -> Vec<OrgCount> {
    let mut by: BTreeMap<String, OrgCount> = BTreeMap::new();
    let entry = |by: &mut BTreeMap<String, OrgCount>, org: &str| {
        by.entry(org.to_owned())
            .or_insert_with(|| OrgCount {
                organization: org.to_owned(),
                reports: 0,
                success: 0,
                failure: 0,
            })
            .clone()
    };
    for row in daily {
        let mut org = entry(&mut by, &row.organization);
        let (success, failure) = counts(row);
        org.success = org.success.saturating_add(success);
        org.failure = org.failure.saturating_add(failure);
        by.insert(row.organization.clone(), org);
    }
    for o in orgs {
        let mut org = entry(&mut by, &o.organization);
        org.reports = org.reports.saturating_add(o.reports);
        by.insert(o.organization.clone(), org);
    }
    let mut out: Vec<OrgCount> = by.into_values().collect();
    out.sort_by(|a, b| {
        b.failure
            .cmp(&a.failure)
            .then(b.success.cmp(&a.success))
            .then_with(|| a.organization.cmp(&b.organization))
    });
    out
}

/// Sums per label, largest first, then by label.
fn largest_first(items: impl Iterator<Item = (String, u64)>) -> Vec<Count> {
    let mut sums: BTreeMap<String, u64> = BTreeMap::new();
    for (label, count) in items {
        let sum = sums.entry(label).or_default();
        *sum = sum.saturating_add(count);
    }
    let mut out: Vec<Count> = sums
        .into_iter()
        .map(|(label, count)| Count { label, count })
        .collect();
    out.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.label.cmp(&b.label)));
    out
}

/// A sum of remote counts that saturates instead of overflowing.
fn total(counts: impl Iterator<Item = u64>) -> u64 {
    counts.fold(0, u64::saturating_add)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_are_the_three_offered() {
        assert_eq!(Window::parse("30"), Some(Window(30)));
        assert_eq!(Window::parse("90"), Some(Window(90)));
        assert_eq!(Window::parse("365"), Some(Window(365)));
        for bad in ["", "0", "31", "030", "365 ", "-30", "1e2"] {
            assert_eq!(Window::parse(bad), None, "{bad:?}");
        }
        assert_eq!(Window::default().days(), 30);
        // 2027-01-15T08:00:00Z: the window ends at the end of that day.
        let (since, until) = Window(30).range(1_800_000_000);
        assert_eq!(until, 1_800_057_600);
        assert_eq!(until - since, 30 * DAY);
    }

    fn row(kind: Kind, day: i64, org: &str, success: u64, failure: u64) -> DailyRow {
        DailyRow {
            kind,
            domain: "example.com".into(),
            day,
            organization: org.into(),
            reports: 1,
            success,
            failure,
            messages: success + failure,
            dmarc_pass: success,
            dkim_pass: success,
            spf_pass: 0,
            none: success + failure,
            quarantine: 0,
            reject: 0,
        }
    }

    #[test]
    fn every_day_of_the_window_is_present_and_summed_over_organizations() {
        let since = 1_799_971_200 - 2 * DAY;
        let until = since + 3 * DAY;
        let daily = [
            row(Kind::TlsRpt, since, "a", 5, 1),
            row(Kind::TlsRpt, since, "b", 7, 0),
            row(Kind::TlsRpt, since + 2 * DAY, "a", 3, 2),
            row(Kind::Dmarc, since + DAY, "a", 9, 9),
            // Outside the window: not counted.
            row(Kind::TlsRpt, until, "a", 100, 100),
        ];
        let days = tls_days(&daily, since, until);
        assert_eq!(
            days,
            [
                DayPoint {
                    day: since,
                    success: 12,
                    failure: 1
                },
                DayPoint {
                    day: since + DAY,
                    success: 0,
                    failure: 0
                },
                DayPoint {
                    day: since + 2 * DAY,
                    success: 3,
                    failure: 2
                },
            ]
        );
        let dmarc = dmarc_days(&daily, since, until);
        assert_eq!(dmarc.len(), 3);
        assert_eq!((dmarc[1].messages, dmarc[1].pass), (18, 9));
        assert_eq!(dmarc[0].messages, 0);
    }

    #[test]
    fn counts_are_summed_per_label_largest_first() {
        let got = largest_first(
            [("b", 2), ("a", 2), ("c", 5), ("b", 1)]
                .into_iter()
                .map(|(l, n)| (l.to_owned(), n)),
        );
        let got: Vec<(&str, u64)> = got.iter().map(|c| (c.label.as_str(), c.count)).collect();
        assert_eq!(got, [("c", 5), ("b", 3), ("a", 2)]);
    }

    #[test]
    fn organizations_take_counts_from_rollups_and_reports_from_the_list() {
        let daily = [
            row(Kind::TlsRpt, 0, "google", 10, 0),
            row(Kind::TlsRpt, DAY, "google", 10, 1),
            row(Kind::TlsRpt, 0, "microsoft", 4, 3),
        ];
        let orgs = [mtasts_store::reports::OrganizationCount {
            domain: "example.com".into(),
            organization: "google".into(),
            reports: 2,
        }];
        let got = organizations(&daily, &orgs, |r| (r.success, r.failure));
        assert_eq!(got[0].organization, "microsoft");
        assert_eq!((got[0].reports, got[0].success, got[0].failure), (0, 4, 3));
        assert_eq!((got[1].reports, got[1].success, got[1].failure), (2, 20, 1));
    }
}
