//! `mtasts tlsrpt status|report|send`: the operator's view of the resolver's TLS-RPT sending
//! side. Flags and printing only: collecting, building and delivering are
//! `mtasts_sender::tlsrpt`'s, and the store is `mtasts_store::tlsrpt`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use mtasts_proto::readiness::date;
use mtasts_sender::tlsrpt::{BuiltDayReport, Tlsrpt};
use serde_json::json;

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
    /// Build the reports of a UTC day if not built yet, and deliver every pending destination
    /// of that day now.
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
        let tlsrpt = Tlsrpt::open(&config)
            .await
            .context("opening the TLS-RPT store")?;
        match command {
            TlsrptCommand::Status { json, recent } => {
                let status = tlsrpt.status(recent).await?;
                if json {
                    println!("{}", serde_json::to_string_pretty(&status)?);
                } else {
                    print!("{}", status.render());
                }
                Ok(ExitCode::SUCCESS)
            }
            TlsrptCommand::Report { day, out } => {
                let reports = tlsrpt.build_day(day, false).await?;
                write_reports(&out, &reports)?;
                println!(
                    "{} report{} of {} written to {}",
                    reports.len(),
                    if reports.len() == 1 { "" } else { "s" },
                    date::iso_day(day),
                    out.display()
                );
                Ok(ExitCode::SUCCESS)
            }
            TlsrptCommand::Send { day } => {
                let outcome = tlsrpt.send_day(day).await?;
                print!("{}", outcome.render());
                Ok(if outcome.all_delivered() {
                    ExitCode::SUCCESS
                } else {
                    ExitCode::from(1)
                })
            }
        }
    })
}

/// Writes each report as `<RFC 8460 §5.1 name>.json` into `dir`, and `index.json` listing
/// them: `[{"file", "domain", "record", "rua", "report-id"}]`.
fn write_reports(dir: &Path, reports: &[BuiltDayReport]) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut index = Vec::with_capacity(reports.len());
    for report in reports {
        let path = dir.join(&report.file_name);
        std::fs::write(&path, &report.json)
            .with_context(|| format!("writing {}", path.display()))?;
        index.push(json!({
            "file": report.file_name,
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
        assert!(day_at("2026-12-08", NOW).unwrap_err().contains("after today"));
        assert!(day_at("yesterday", NOW).is_err());
        assert!(day_at("2026-02-30", NOW).is_err());
    }
}
