//! `mtasts report import`: stores the reports found in files, directories (Maildir included),
//! mbox files and standard input in the reports database, each input once
//! (`mtasts_report::intake`). Prints the unreadable pieces (`source: code: message`) and a final
//! line of counts; a progress bar on a terminal only.

use std::io::{self, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use futures::StreamExt;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use mtasts_report::intake::{Intake, Outcome, input_files, read_input, unix_now};
use mtasts_report::{DEFAULT_MAX_REPORT_BYTES, FoundError, Limits};

use crate::serve::DatabaseArgs;

/// The label of standard input.
const STDIN: &str = "-";

/// Inputs read and stored at once on PostgreSQL, where commits of separate connections
/// overlap. SQLite has one writer: concurrent transactions only wait on its lock (measured
/// slower), so there one input is stored at a time.
const POSTGRES_IN_FLIGHT: usize = 4;

/// Arguments of `mtasts report import`.
#[derive(Debug, clap::Args)]
pub(crate) struct ImportArgs {
    /// The most bytes one report may inflate to (gzip, zip); larger is a `too-large` error. A
    /// byte count with an optional unit: 1048576, 512K, 64M or 64MiB (binary), 400MB (decimal).
    /// Files and standard input may be at least this large too.
    #[arg(long, value_name = "N", value_parser = super::byte_count)]
    max_report_bytes: Option<u64>,
    /// Files (mail messages, mbox, gzip, zip, JSON, XML), directories (every file below, Maildir
    /// included) or `-` for standard input.
    #[arg(value_name = "INPUT", required = true)]
    inputs: Vec<PathBuf>,
    #[command(flatten)]
    db: DatabaseArgs,
}

/// Counts over all inputs.
#[derive(Debug, Default)]
pub(super) struct Totals {
    pub(super) new: u64,
    pub(super) duplicate: u64,
    pub(super) errors: Vec<FoundError>,
}

impl Totals {
    /// `N new, N duplicate, N error`.
    pub(super) fn line(&self) -> String {
        format!(
            "{} new, {} duplicate, {} error",
            self.new,
            self.duplicate,
            self.errors.len()
        )
    }
}

/// Runs `mtasts report import`: exit 0 when every input was read, 1 when some input (or part
/// of one) could not be, 2 when an input could not be opened or the database failed.
pub(crate) fn run(args: ImportArgs) -> anyhow::Result<ExitCode> {
    let ImportArgs {
        max_report_bytes,
        inputs,
        db,
    } = args;
    let limits = limits(max_report_bytes.unwrap_or(DEFAULT_MAX_REPORT_BYTES));
    super::with_db(&db, async |db| {
        import(&Intake::new(db.clone(), limits), &inputs).await
    })
}

async fn import(intake: &Intake, inputs: &[PathBuf]) -> anyhow::Result<ExitCode> {
    let mut totals = Totals::default();
    let mut io_failed = false;
    // First the list of files, so that the bar knows its length.
    let mut files: Vec<PathBuf> = Vec::new();
    for input in inputs {
        if input.as_os_str() == STDIN {
            files.push(input.clone());
            continue;
        }
        match input_files(input, intake.limits()) {
            Ok((found, errors)) => {
                files.extend(found);
                totals.errors.extend(errors);
            }
            Err(e) => {
                eprintln!("mtasts: error: {e}");
                io_failed = true;
            }
        }
    }
    let progress = if files.len() > 1 && io::stderr().is_terminal() {
        progress_bar(files.len(), ProgressDrawTarget::stderr())
    } else {
        ProgressBar::hidden()
    };
    // On PostgreSQL a few inputs at once: one is walked while others commit. Output order
    // stays the input order.
    let in_flight = match intake.db().backend() {
        "postgres" => POSTGRES_IN_FLIGHT,
        _ => 1,
    };
    let mut stored = futures::stream::iter(&files)
        .map(|file| store_one(intake, file))
        .buffered(in_flight);
    while let Some(result) = stored.next().await {
        match result? {
            Ok(outcome) => {
                totals.new += outcome.new;
                totals.duplicate += outcome.duplicate;
                totals.errors.extend(outcome.errors);
            }
            Err(Stored::TooLarge(too_large)) => totals.errors.push(too_large),
            Err(Stored::Io(e)) => {
                progress.suspend(|| eprintln!("mtasts: error: {e}"));
                io_failed = true;
            }
        }
        progress.inc(1);
    }
    progress.finish_and_clear();
    let mut out = io::stdout().lock();
    print_totals(&mut out, &totals)?;
    Ok(if io_failed {
        ExitCode::from(2)
    } else if totals.errors.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// Why an input was not stored.
enum Stored {
    /// Past `max_input_bytes`.
    TooLarge(FoundError),
    /// It could not be opened or read.
    Io(io::Error),
}

/// Reads one input and stores it; the outer error is the database's (the import stops).
async fn store_one(intake: &Intake, file: &Path) -> anyhow::Result<Result<Outcome, Stored>> {
    let source = file.display().to_string();
    let read = if file.as_os_str() == STDIN {
        read_input(io::stdin().lock(), STDIN, intake.limits())
    } else {
        std::fs::File::open(file)
            .and_then(|f| read_input(f, &source, intake.limits()))
            .map_err(|e| io::Error::new(e.kind(), format!("{source}: {e}")))
    };
    let bytes = match read {
        Ok(Ok(bytes)) => bytes,
        Ok(Err(too_large)) => return Ok(Err(Stored::TooLarge(too_large))),
        Err(e) => return Ok(Err(Stored::Io(e))),
    };
    let outcome = intake
        .input(&bytes, &source, unix_now())
        .await
        .with_context(|| format!("storing {source}"))?;
    Ok(Ok(outcome))
}

/// The errors (`source: code: message`), then the line of counts.
pub(super) fn print_totals(out: &mut impl Write, totals: &Totals) -> io::Result<()> {
    for e in &totals.errors {
        writeln!(out, "{}: {}: {}", e.source, e.code.as_str(), e.message)?;
    }
    writeln!(out, "{}", totals.line())
}

/// The limits of an import: reports may inflate to `max_report_bytes`, and an input (or all
/// that inflates from it) may be at least that large.
fn limits(max_report_bytes: u64) -> Limits {
    Limits::with_max_report_bytes(max_report_bytes)
}

/// The import progress bar: `[###---] 3/10 inputs`, 30 cells wide.
fn progress_bar(total: usize, target: ProgressDrawTarget) -> ProgressBar {
    let style = ProgressStyle::with_template("[{bar:30}] {pos}/{len} inputs")
        .expect("the template is a constant and valid")
        .progress_chars("#-");
    ProgressBar::with_draw_target(Some(total as u64), target).with_style(style)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_follow_max_report_bytes() {
        let big = limits(1 << 30);
        assert_eq!(
            (
                big.max_report_bytes,
                big.max_total_bytes,
                big.max_input_bytes
            ),
            (1 << 30, 1 << 30, 1 << 30)
        );
        let small = limits(1024);
        assert_eq!(small.max_report_bytes, 1024);
        assert_eq!(small.max_input_bytes, Limits::default().max_input_bytes);
    }

    #[test]
    fn the_bar_counts_inputs() {
        let term = indicatif::InMemoryTerm::new(1, 80);
        let bar = progress_bar(4, ProgressDrawTarget::term_like(Box::new(term.clone())));
        bar.inc(2);
        bar.tick();
        assert!(
            term.contents().contains("2/4 inputs"),
            "{}",
            term.contents()
        );
    }

    #[test]
    fn totals_print_errors_then_counts() {
        let mut out = Vec::new();
        let totals = Totals {
            new: 3,
            duplicate: 1,
            errors: Vec::new(),
        };
        print_totals(&mut out, &totals).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "3 new, 1 duplicate, 0 error\n"
        );
    }
}
