//! `mtasts tlsrpt status|report|send`: the operator's view of the resolver's TLS-RPT sending
//! side. Flags and printing only: collecting, building and delivering are
//! `mtasts_sender::tlsrpt`'s, and the store is `mtasts_store::tlsrpt`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use mtasts_proto::readiness::date;
use mtasts_proto::tlsrpt::report::UtcTime;
use mtasts_sender::Config;
use mtasts_sender::metrics::Metrics;
use mtasts_sender::tlsrpt::{BuiltDayReport, Tlsrpt};
use mtasts_store::tlsrpt::{DeliveryEvent, DeliveryState, Status, TlsrptDb};
use serde_json::{Value, json};

use crate::resolver::ConfigArgs;

/// Arguments of `mtasts tlsrpt`.
#[derive(Debug, clap::Args)]
pub(crate) struct TlsrptArgs {
    #[command(subcommand)]
    command: TlsrptCommand,
    #[command(flatten)]
    config: ConfigArgs,
}

#[derive(Debug, clap::Subcommand)]
enum TlsrptCommand {
    /// Today's counters (results collected, recipient domains), the outbox, and the most
    /// recent deliveries and failures.
    Status {
        /// Print it as JSON.
        #[arg(long)]
        json: bool,
        /// How many recent deliveries and failures to show.
        #[arg(long, default_value_t = 10, value_name = "N")]
        recent: usize,
    },
    /// Write the reports of a UTC day (today's so far, too) as JSON files named as RFC 8460
    /// §5.1 says, plus index.json, without storing or delivering them.
    Report {
        /// The UTC day: YYYY-MM-DD, or days before today (0d is today, 1d yesterday).
        #[arg(long, value_name = "DAY", value_parser = parse_day)]
        day: i64,
        /// The folder to write into (created if missing).
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
    },
    /// Build the reports of an ended UTC day if not built yet, and deliver every pending
    /// destination of that day now (exit 1 when one is still not delivered).
    Send {
        /// The UTC day: YYYY-MM-DD, or days before today (1d is yesterday).
        #[arg(long, value_name = "DAY", value_parser = parse_day)]
        day: i64,
    },
}

/// Now, in Unix seconds.
fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// A `--day` value: the midnight (UTC) starting that day; never a day after today.
fn parse_day(text: &str) -> Result<i64, String> {
    day_at(text, unix_now())
}

fn day_at(text: &str, now: i64) -> Result<i64, String> {
    let day = date::since(text, now).map_err(|e| e.to_string())?;
    if day > date::day_start(now) {
        return Err(format!(
            "{text:?} is after today ({}): there is nothing to report yet",
            date::iso_day(now)
        ));
    }
    Ok(day)
}

/// Runs `mtasts tlsrpt …`.
pub(crate) fn run(args: TlsrptArgs) -> anyhow::Result<ExitCode> {
    let TlsrptArgs { command, config } = args;
    let (config, _) = config.load()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?;
    runtime.block_on(async move {
        match command {
            TlsrptCommand::Status { json, recent } => status(&config, json, recent).await,
            TlsrptCommand::Report { day, out } => report(&config, day, &out).await,
            TlsrptCommand::Send { day } => send(&config, day).await,
        }
    })
}

/// Whether the store of `config` is a SQLite file that does not exist yet (said on standard
/// error): the commands that only read never create it.
fn store_missing(config: &Config) -> bool {
    let url = config.tlsrpt.database_url(&config.data_dir);
    match crate::report::sqlite_path(&url) {
        Some(path) if !Path::new(path).exists() => {
            eprintln!(
                "Nothing collected yet ({path} does not exist): the resolver creates it when [tlsrpt] enabled = true."
            );
            true
        }
        _ => false,
    }
}

/// The store of `config`, or `None` when [`store_missing`].
async fn open_existing(config: &Config) -> anyhow::Result<Option<TlsrptDb>> {
    if store_missing(config) {
        return Ok(None);
    }
    let url = config.tlsrpt.database_url(&config.data_dir);
    let db = TlsrptDb::open(&url)
        .await
        .with_context(|| format!("opening the TLS-RPT store {}", mtasts_store::redacted(&url)))?;
    Ok(Some(db))
}

async fn status(config: &Config, json: bool, recent: usize) -> anyhow::Result<ExitCode> {
    let now = unix_now();
    let status = match open_existing(config).await? {
        Some(db) => {
            let status = db.status(now, recent).await;
            db.close().await;
            status.context("reading the TLS-RPT status")?
        }
        None => Status {
            today: date::day_start(now),
            ..Status::default()
        },
    };
    if json {
        println!("{}", serde_json::to_string_pretty(&status_json(&status))?);
    } else {
        print!("{}", status_text(&status, now));
    }
    Ok(ExitCode::SUCCESS)
}

/// The TLS-RPT subsystem of `config` (the same the resolver runs), for one command.
async fn subsystem(config: &Config) -> anyhow::Result<Tlsrpt> {
    Tlsrpt::open(config, Arc::new(Metrics::new()))
        .await
        .context("opening the TLS-RPT store ([tlsrpt] in the configuration)")
}

async fn report(config: &Config, day: i64, out: &Path) -> anyhow::Result<ExitCode> {
    // Nothing collected yet: no reports, and no need for a complete [tlsrpt] section.
    let reports = if store_missing(config) {
        Vec::new()
    } else {
        subsystem(config).await?.build_day(day, false).await?
    };
    write_reports(out, &reports)?;
    let dropped: usize = reports.iter().map(|r| r.details_dropped).sum();
    println!(
        "{} report{} of {} written to {}{}",
        reports.len(),
        if reports.len() == 1 { "" } else { "s" },
        date::iso_day(day),
        out.display(),
        if dropped > 0 {
            format!(" ({dropped} failure details left out to fit the size limit)")
        } else {
            String::new()
        }
    );
    Ok(ExitCode::SUCCESS)
}

async fn send(config: &Config, day: i64) -> anyhow::Result<ExitCode> {
    let tlsrpt = subsystem(config).await?;
    let pass = tlsrpt.send_day(day).await?;
    let reports = tlsrpt.db().reports_for_day(day).await?;
    println!(
        "{}: {} attempted now: {} delivered, {} to retry, {} given up.",
        date::iso_day(day),
        pass.leased,
        pass.delivered,
        pass.retried,
        pass.gave_up
    );
    let mut undelivered = 0;
    for report in &reports {
        for d in &report.destinations {
            let mut line = format!(
                "  {} → {}: {}",
                report.domain,
                d.destination,
                d.state.as_str().replace('_', " ")
            );
            if d.state == DeliveryState::Pending {
                undelivered += 1;
                line.push_str(&format!(", next attempt {}", time(d.next_try)));
            }
            if d.state != DeliveryState::Delivered
                && let Some(error) = &d.last_error
            {
                line.push_str(&format!(" ({error})"));
            }
            if d.state == DeliveryState::GaveUp {
                undelivered += 1;
            }
            println!("{line}");
        }
    }
    Ok(if undelivered == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// Writes each report as `<RFC 8460 §5.1 name>.json` into `dir`, and `index.json` listing
/// them: `[{"file", "domain", "record", "rua", "report-id"}]`.
fn write_reports(dir: &Path, reports: &[BuiltDayReport]) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut index = Vec::with_capacity(reports.len());
    for report in reports {
        let path = dir.join(&report.json_file_name);
        std::fs::write(&path, &report.json)
            .with_context(|| format!("writing {}", path.display()))?;
        index.push(json!({
            "file": report.json_file_name,
            "domain": report.domain,
            "record": report.record,
            "rua": report.rua,
            "report-id": report.report_id,
        }));
    }
    let path = dir.join("index.json");
    std::fs::write(&path, serde_json::to_vec_pretty(&index)?)
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

/// Unix seconds as RFC 3339 UTC (`2026-12-07T13:45:00Z`).
fn time(t: i64) -> String {
    UtcTime::from_unix_seconds(t).map_or_else(|| t.to_string(), |u| u.to_string())
}

fn event_json(e: &DeliveryEvent) -> Value {
    json!({
        "id": e.id,
        "day": date::iso_day(e.day),
        "domain": e.domain,
        "destination": e.destination,
        "state": e.state.as_str(),
        "attempts": e.attempts,
        "last_attempt": e.last_attempt.map(time),
        "last_error": e.last_error,
    })
}

/// `mtasts tlsrpt status --json`.
fn status_json(s: &Status) -> Value {
    json!({
        "today": {
            "day": date::iso_day(s.today),
            "successes": s.today_successes,
            "failures": s.today_failures,
            "reports": s.today_groups,
        },
        "pending_days": s.pending_days,
        "outbox": {
            "pending": s.outbox_pending,
            "due": s.outbox_due,
            "leased": s.outbox_leased,
            "delivered": s.delivered,
            "gave_up": s.gave_up,
        },
        "recent": s.recent.iter().map(event_json).collect::<Vec<_>>(),
        "failures": s.failures.iter().map(event_json).collect::<Vec<_>>(),
        "suppressed": s.suppressed.iter().map(|x| json!({
            "destination": x.destination,
            "until": time(x.until),
            "reason": x.reason,
        })).collect::<Vec<_>>(),
    })
}

fn event_line(e: &DeliveryEvent) -> String {
    let mut line = format!(
        "  {} {} → {}: {} after {} attempt{}",
        date::iso_day(e.day),
        e.domain,
        e.destination,
        e.state.as_str().replace('_', " "),
        e.attempts,
        if e.attempts == 1 { "" } else { "s" }
    );
    if let Some(t) = e.last_attempt {
        line.push_str(&format!(", last {}", time(t)));
    }
    if let Some(error) = &e.last_error {
        line.push_str(&format!(" ({error})"));
    }
    line.push('\n');
    line
}

/// `mtasts tlsrpt status`, for people.
fn status_text(s: &Status, now: i64) -> String {
    let mut out = format!(
        "Today ({}, UTC): {} results collected ({} successful, {} failed) for {} report{}.\n",
        date::iso_day(s.today),
        s.today_successes + s.today_failures,
        s.today_successes,
        s.today_failures,
        s.today_groups,
        if s.today_groups == 1 { "" } else { "s" },
    );
    if s.pending_days > 0 {
        out.push_str(&format!(
            "Ended days whose reports are not built yet: {}.\n",
            s.pending_days
        ));
    }
    out.push_str(&format!(
        "Outbox: {} pending ({} due now, {} being sent), {} delivered, {} given up.\n",
        s.outbox_pending, s.outbox_due, s.outbox_leased, s.delivered, s.gave_up
    ));
    if !s.suppressed.is_empty() {
        out.push_str("Suppressed destinations:\n");
        for x in &s.suppressed {
            out.push_str(&format!(
                "  {} until {} ({}; {})\n",
                x.destination,
                time(x.until),
                x.reason,
                date::short_day(x.until, now)
            ));
        }
    }
    if !s.recent.is_empty() {
        out.push_str("Recent deliveries:\n");
        for e in &s.recent {
            out.push_str(&event_line(e));
        }
    }
    if !s.failures.is_empty() {
        out.push_str("Recent failures:\n");
        for e in &s.failures {
            out.push_str(&event_line(e));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2026-12-07T13:45:00Z.
    const NOW: i64 = 1_796_651_100;
    /// 2026-12-07T00:00:00Z.
    const TODAY: i64 = 1_796_601_600;

    #[test]
    fn days_are_utc_midnights_up_to_today() {
        assert_eq!(day_at("2026-12-07", NOW), Ok(TODAY));
        assert_eq!(day_at("0d", NOW), Ok(TODAY));
        assert_eq!(day_at("1d", NOW), Ok(TODAY - 86_400));
        assert_eq!(day_at("2026-12-01", NOW), Ok(TODAY - 6 * 86_400));
        assert!(
            day_at("2026-12-08", NOW)
                .unwrap_err()
                .contains("after today")
        );
        assert!(day_at("yesterday", NOW).is_err());
        assert!(day_at("2026-02-30", NOW).is_err());
    }

    #[test]
    fn status_says_counts_outbox_and_each_failure() {
        use mtasts_store::tlsrpt::{DeliveryState, Suppressed};
        let failed = DeliveryEvent {
            id: 7,
            day: TODAY - 86_400,
            domain: "example.com".into(),
            destination: "https://reports.example.com/tlsrpt".into(),
            state: DeliveryState::Pending,
            attempts: 2,
            last_attempt: Some(NOW - 60),
            last_error: Some("HTTP 503".into()),
        };
        let status = Status {
            today: TODAY,
            today_successes: 120,
            today_failures: 3,
            today_groups: 2,
            outbox_pending: 1,
            outbox_due: 1,
            delivered: 4,
            recent: vec![failed.clone()],
            failures: vec![failed],
            suppressed: vec![Suppressed {
                destination: "mailto:nobody@example.org".into(),
                until: NOW + 86_400,
                reason: "gave up 3 times in a row".into(),
            }],
            ..Status::default()
        };
        let text = status_text(&status, NOW);
        assert!(text.contains(
            "Today (2026-12-07, UTC): 123 results collected (120 successful, 3 failed) for 2 reports."
        ));
        assert!(
            text.contains("Outbox: 1 pending (1 due now, 0 being sent), 4 delivered, 0 given up.")
        );
        assert!(text.contains(
            "2026-12-06 example.com → https://reports.example.com/tlsrpt: pending after 2 attempts, last 2026-12-07T13:44:00Z (HTTP 503)"
        ));
        assert!(text.contains("mailto:nobody@example.org until 2026-12-08T13:45:00Z"));
        let json = status_json(&status);
        assert_eq!(json["today"]["successes"], 120);
        assert_eq!(json["today"]["failures"], 3);
        assert_eq!(json["outbox"]["delivered"], 4);
        assert_eq!(json["failures"][0]["last_error"], "HTTP 503");
        assert_eq!(json["failures"][0]["day"], "2026-12-06");
    }
}
