//! `mtasts report summary`: what the stored reports say per domain — TLS sessions per day,
//! failures by result type, MX and organization, DMARC sources with their alignment — and the
//! verdict of `mtasts_proto::readiness` (is enforcing safe?), as tables or one JSON document.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::process::ExitCode;

use mtasts_proto::readiness::dmarc::DmarcAssessment;
use mtasts_proto::readiness::number::{percent, thousands};
use mtasts_proto::readiness::tls::{State, TlsAssessment};
use mtasts_proto::readiness::{Level, Verdict, date, dmarc, tls};
use mtasts_proto::tlsrpt::report::UtcTime;
use mtasts_store::reports::{
    DailyRow, ErrorRow, FailureGroup, Filter, Kind, PolicySeen, ReportDb, SourceGroup,
};
use serde::Serialize;

use super::table::{self, Align, BAD, Cell, GOOD, Paint, Table, WARN};

mod json;
mod tables;

use crate::serve::DatabaseArgs;
use json::Document;
pub(super) use json::print_json;
use mtasts_report::evidence::{self, latest_policy};
use mtasts_report::intake::unix_now;

/// Days shown in a domain's day table (the JSON has them all).
const SHOWN_DAYS: usize = 31;
/// DMARC sources shown per domain (the JSON has them all).
const SHOWN_SOURCES: usize = 25;
/// Unreadable inputs named at the end (newest first).
const SHOWN_ERRORS: u32 = 5;
/// Unreadable inputs in the JSON document.
const JSON_ERRORS: u32 = 100;

/// Arguments of `mtasts report summary`.
#[derive(Debug, clap::Args)]
pub(crate) struct SummaryArgs {
    /// Only this domain (the TLS policy domain or the DMARC policy domain).
    #[arg(long, value_name = "DOMAIN")]
    domain: Option<String>,
    /// From this UTC day on: YYYY-MM-DD, or days or weeks before today (14d, 2w).
    #[arg(long, value_name = "DATE", value_parser = parse_since)]
    since: Option<i64>,
    /// Up to and including this UTC day: YYYY-MM-DD, or days or weeks before today.
    #[arg(long, value_name = "DATE", value_parser = parse_until)]
    until: Option<i64>,
    /// Only TLS reports (tlsrpt) or only DMARC aggregate reports (dmarc).
    #[arg(long, value_name = "KIND", value_parser = parse_kind)]
    kind: Option<Kind>,
    /// Print one JSON document (its shape is in docs/report/summary.md).
    #[arg(long)]
    json: bool,
    /// Colour: auto (when printing to a terminal and NO_COLOR is unset), always, never.
    #[arg(long, value_name = "WHEN", default_value = "auto", value_parser = ["auto", "always", "never"])]
    color: String,
    #[command(flatten)]
    db: DatabaseArgs,
}

/// Runs `mtasts report summary`.
pub(crate) fn run(args: SummaryArgs) -> anyhow::Result<ExitCode> {
    let SummaryArgs {
        domain,
        since,
        until,
        kind,
        json,
        color,
        db,
    } = args;
    let filter = Filter {
        // The store's one domain-key rule, so that the document names the domain as stored.
        domain: domain.as_deref().map(mtasts_store::reports::domain_key),
        since,
        until,
        kind,
    };
    let paint = Paint {
        on: !json && table::colour_wanted(&color),
    };
    super::with_existing_db(&db, async |db| {
        let Some(db) = db else {
            if json {
                print_json(&Document::empty(&filter, unix_now()))?;
            }
            return Ok(ExitCode::SUCCESS);
        };
        let summary = gather(db, &filter).await?;
        if json {
            print_json(&summary.to_json())?;
        } else {
            summary.print(&mut std::io::stdout().lock(), paint)?;
        }
        Ok(ExitCode::SUCCESS)
    })
}

pub(super) fn parse_since(text: &str) -> Result<i64, date::DateError> {
    date::since(text, unix_now())
}

fn parse_until(text: &str) -> Result<i64, date::DateError> {
    date::until(text, unix_now())
}

pub(super) fn parse_kind(text: &str) -> Result<Kind, String> {
    text.parse::<Kind>().map_err(|e| e.to_string())
}

/// `2026-12-01T00:00:00Z`.
pub(super) fn rfc3339(unix_seconds: i64) -> String {
    UtcTime::from_unix_seconds(unix_seconds)
        .map(|t| t.to_string())
        .unwrap_or_else(|| unix_seconds.to_string())
}

/// Everything the summary shows.
struct Summary {
    filter: Filter,
    now: i64,
    tls: Vec<TlsDomain>,
    dmarc: Vec<DmarcDomain>,
    errors: Vec<ErrorRow>,
}

struct TlsDomain {
    policy: Option<PolicySeen>,
    days: Vec<DailyRow>,
    failures: Vec<FailureGroup>,
    assessment: TlsAssessment,
}

struct DmarcDomain {
    policy: Option<PolicySeen>,
    days: Vec<DailyRow>,
    sources: Vec<SourceGroup>,
    assessment: DmarcAssessment,
}

async fn gather(db: &ReportDb, filter: &Filter) -> anyhow::Result<Summary> {
    // A summary that ends in the past is judged as of its end (reports are not "stale" then).
    let now = match filter.until {
        Some(until) => unix_now().min(until),
        None => unix_now(),
    };
    let wants = |k: Kind| filter.kind.is_none_or(|f| f == k);
    let mut summary = Summary {
        filter: filter.clone(),
        now,
        tls: Vec::new(),
        dmarc: Vec::new(),
        errors: Vec::new(),
    };
    let daily = db.daily(filter).await?;
    let policies = db.policies(filter).await?;
    if wants(Kind::TlsRpt) {
        let f = Filter {
            kind: Some(Kind::TlsRpt),
            ..filter.clone()
        };
        let failures = db.tls_failures(&f).await?;
        for domain in domains(Kind::TlsRpt, filter, &daily) {
            let days: Vec<DailyRow> = of(&daily, Kind::TlsRpt, &domain);
            let failures: Vec<FailureGroup> = failures
                .iter()
                .filter(|g| g.domain == domain)
                .cloned()
                .collect();
            let policy = latest_policy(&policies, Kind::TlsRpt, &domain);
            let mx = evidence::policy_mx(db, &domain, &f).await?;
            let evidence =
                evidence::tls_evidence(&domain, &days, &failures, policy.as_ref(), mx, now);
            summary.tls.push(TlsDomain {
                assessment: tls::assess(&evidence),
                policy,
                days,
                failures,
            });
        }
    }
    if wants(Kind::Dmarc) {
        let f = Filter {
            kind: Some(Kind::Dmarc),
            ..filter.clone()
        };
        let sources = db.dmarc_sources(&f).await?;
        for domain in domains(Kind::Dmarc, filter, &daily) {
            let days = of(&daily, Kind::Dmarc, &domain);
            let mut sources: Vec<SourceGroup> = sources
                .iter()
                .filter(|s| s.domain == domain)
                .cloned()
                .collect();
            evidence::worst_sources_first(&mut sources);
            let policy = latest_policy(&policies, Kind::Dmarc, &domain);
            let evidence = evidence::dmarc_evidence(&domain, &days, &sources, policy.as_ref(), now);
            summary.dmarc.push(DmarcDomain {
                assessment: dmarc::assess(&evidence),
                policy,
                days,
                sources,
            });
        }
    }
    let errors_filter = Filter {
        domain: None,
        kind: None,
        ..filter.clone()
    };
    summary.errors = db.errors(&errors_filter, JSON_ERRORS).await?;
    Ok(summary)
}

/// The domains of `kind` in the rollups, or the one asked for (even without reports: its
/// verdict then says there are none).
fn domains(kind: Kind, filter: &Filter, daily: &[DailyRow]) -> Vec<String> {
    if let Some(d) = &filter.domain {
        return vec![d.clone()];
    }
    let set: BTreeSet<&str> = daily
        .iter()
        .filter(|r| r.kind == kind)
        .map(|r| r.domain.as_str())
        .collect();
    set.into_iter().map(str::to_owned).collect()
}

fn of(daily: &[DailyRow], kind: Kind, domain: &str) -> Vec<DailyRow> {
    daily
        .iter()
        .filter(|r| r.kind == kind && r.domain == domain)
        .cloned()
        .collect()
}

/// One day's sessions or messages, all organizations together.
#[derive(Default)]
struct DayTotal {
    reports: u64,
    organizations: BTreeSet<String>,
    success: u64,
    failure: u64,
    messages: u64,
    dmarc_pass: u64,
    dkim_pass: u64,
    spf_pass: u64,
}

fn per_day(rows: &[DailyRow]) -> BTreeMap<i64, DayTotal> {
    let mut out: BTreeMap<i64, DayTotal> = BTreeMap::new();
    for r in rows {
        let t = out.entry(r.day).or_default();
        // Counts come from remote reports: saturate rather than overflow.
        t.reports = t.reports.saturating_add(r.reports);
        t.organizations.insert(r.organization.clone());
        t.success = t.success.saturating_add(r.success);
        t.failure = t.failure.saturating_add(r.failure);
        t.messages = t.messages.saturating_add(r.messages);
        t.dmarc_pass = t.dmarc_pass.saturating_add(r.dmarc_pass);
        t.dkim_pass = t.dkim_pass.saturating_add(r.dkim_pass);
        t.spf_pass = t.spf_pass.saturating_add(r.spf_pass);
    }
    out
}

/// A sum of remote counts that saturates instead of overflowing.
fn total(counts: impl Iterator<Item = u64>) -> u64 {
    counts.fold(0, u64::saturating_add)
}

#[cfg(test)]
mod tests {
    use super::tables::describe_filter;
    use super::*;

    #[test]
    fn filters_are_described() {
        let f = Filter {
            domain: Some("example.com".into()),
            since: Some(1_796_083_200),
            until: Some(1_796_169_600),
            kind: Some(Kind::Dmarc),
        };
        assert_eq!(
            describe_filter(&f),
            " (domain example.com, kind dmarc, since 2026-12-01, until 2026-12-01)"
        );
        assert_eq!(describe_filter(&Filter::default()), "");
    }
}
