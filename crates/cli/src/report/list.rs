//! `mtasts report list`: the stored reports, newest first — id, kind, organization, report id,
//! date range, domains, counts and how often each arrived again.

use std::io::Write;
use std::process::ExitCode;

use mtasts_proto::readiness::number::thousands;
use mtasts_store::reports::{Filter, Kind, ReportRow};
use serde::Serialize;

use super::summary::{parse_kind, parse_since, print_json, rfc3339};
use super::table::{self, Align, Cell, Paint, Table, WARN};
use crate::serve::DatabaseArgs;

/// The most reports one listing may ask for.
const MAX_LIMIT: u32 = 100_000;

/// Arguments of `mtasts report list`.
#[derive(Debug, clap::Args)]
pub(crate) struct ListArgs {
    /// Only reports about this domain.
    #[arg(long, value_name = "DOMAIN")]
    domain: Option<String>,
    /// Only reports that end on or after this UTC day: YYYY-MM-DD, or days or weeks before
    /// today (14d, 2w).
    #[arg(long, value_name = "DATE", value_parser = parse_since)]
    since: Option<i64>,
    /// Only TLS reports (tlsrpt) or only DMARC aggregate reports (dmarc).
    #[arg(long, value_name = "KIND", value_parser = parse_kind)]
    kind: Option<Kind>,
    /// How many reports at most (the newest).
    #[arg(long, value_name = "N", default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..=MAX_LIMIT as i64))]
    limit: u32,
    /// Print one JSON array.
    #[arg(long)]
    json: bool,
    /// Colour: auto (when printing to a terminal and NO_COLOR is unset), always, never.
    #[arg(long, value_name = "WHEN", default_value = "auto", value_parser = ["auto", "always", "never"])]
    color: String,
    #[command(flatten)]
    db: DatabaseArgs,
}

/// Runs `mtasts report list`.
pub(crate) fn run(args: ListArgs) -> anyhow::Result<ExitCode> {
    let ListArgs {
        domain,
        since,
        kind,
        limit,
        json,
        color,
        db,
    } = args;
    let filter = Filter {
        // The store reads it through its one domain-key rule.
        domain,
        since,
        until: None,
        kind,
    };
    let paint = Paint {
        on: !json && table::colour_wanted(&color),
    };
    let rows = super::with_existing_db(&db, async |db| match db {
        Some(db) => Ok(db.list(&filter, limit).await?),
        None => Ok(Vec::new()),
    })?;
    if json {
        print_json(&rows.iter().map(row_json).collect::<Vec<_>>())?;
        return Ok(ExitCode::SUCCESS);
    }
    let mut out = std::io::stdout().lock();
    if rows.is_empty() {
        writeln!(out, "No reports stored match.")?;
        return Ok(ExitCode::SUCCESS);
    }
    let mut t = Table::new(&[
        ("ID", Align::Right),
        ("Kind", Align::Left),
        ("Organization", Align::Left),
        ("Report ID", Align::Left),
        ("Begin (UTC)", Align::Left),
        ("End (UTC)", Align::Left),
        ("Domains", Align::Left),
        ("OK", Align::Right),
        ("Failed", Align::Right),
        ("Again", Align::Right),
    ]);
    for r in &rows {
        t.row(vec![
            r.id.to_string().into(),
            r.kind.as_str().into(),
            r.organization.as_str().into(),
            r.report_id.as_str().into(),
            short_time(r.begin).into(),
            short_time(r.end).into(),
            r.domains.join(" ").into(),
            thousands(r.success).into(),
            if r.failure > 0 {
                Cell::from(thousands(r.failure)).coloured(table::BAD)
            } else {
                Cell::from("0")
            },
            if r.duplicates > 0 {
                Cell::from(thousands(r.duplicates)).coloured(WARN)
            } else {
                Cell::from("0")
            },
        ]);
    }
    t.write(&mut out, "", paint)?;
    if rows.len() == limit as usize {
        writeln!(
            out,
            "{}",
            paint.dim(&format!("(the newest {limit}; --limit N for more)"))
        )?;
    }
    writeln!(
        out,
        "{}",
        paint.dim("OK/Failed: TLS sessions, or DMARC messages passing/failing; Again: duplicates received.")
    )?;
    Ok(ExitCode::SUCCESS)
}

/// The JSON object of one listed report (docs/report/summary.md), keys in this order.
#[derive(Serialize)]
struct RowJson<'a> {
    id: i64,
    kind: &'static str,
    organization: &'a str,
    report_id: &'a str,
    begin: String,
    end: String,
    domains: &'a [String],
    source: &'a str,
    received_at: String,
    duplicates: u64,
    success: u64,
    failure: u64,
}

fn row_json(r: &ReportRow) -> RowJson<'_> {
    RowJson {
        id: r.id,
        kind: r.kind.as_str(),
        organization: &r.organization,
        report_id: &r.report_id,
        begin: rfc3339(r.begin),
        end: rfc3339(r.end),
        domains: &r.domains,
        source: &r.source,
        received_at: rfc3339(r.received_at),
        duplicates: r.duplicates,
        success: r.success,
        failure: r.failure,
    }
}

/// `2026-12-01 00:00` (UTC; seconds are left out as they are nearly always :00 or :59).
fn short_time(unix_seconds: i64) -> String {
    let full = rfc3339(unix_seconds);
    match (full.get(..10), full.get(11..16)) {
        (Some(day), Some(time)) if full.len() == 20 => format!("{day} {time}"),
        _ => full,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_shortened() {
        assert_eq!(short_time(1_796_083_200), "2026-12-01 00:00");
        assert_eq!(short_time(1_796_169_599), "2026-12-01 23:59");
    }
}
