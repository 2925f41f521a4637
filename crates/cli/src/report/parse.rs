//! `mtasts report parse`: read reports from files, directories or standard input and print the output
//! contract's objects (`shared/spec/report-output.md`) without storing anything.
//!
//! Each input is walked by `mtasts-report` and its objects are printed as soon as it is done, so memory
//! holds one input's results at a time, never all of them. Exit status as the contract says: 0 when every
//! input held at least one report and nothing failed, 1 when some input (or part of one) is an `error`
//! object, 2 when an input could not be opened at all (the others are still read).

use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use mtasts_proto::dmarc::Mode;
use mtasts_report::output::output;
use mtasts_report::{Found, Limits, intake, walk, walk_path};

/// Arguments of `mtasts report parse`.
#[derive(Debug, clap::Args)]
#[command(after_help = EXIT_STATUS)]
pub(crate) struct ParseArgs {
    /// Print one JSON object per line, each input's as soon as it is read (the default).
    #[arg(long, conflicts_with = "json")]
    jsonl: bool,
    /// Print one JSON array holding every object.
    #[arg(long)]
    json: bool,
    /// Counts only: DMARC records are not kept (memory does not grow with their number) and the
    /// `records` key is left out.
    #[arg(long)]
    summary: bool,
    /// The most bytes one report may inflate to (gzip, zip); larger is a `too-large` error. A byte
    /// count with an optional unit: 1048576, 512K, 64M or 64MiB (binary), 400MB (decimal). Files and
    /// standard input may be at least this large too.
    #[arg(long, value_name = "N", default_value = DEFAULT_MAX_REPORT_BYTES_TEXT, value_parser = super::byte_count)]
    max_report_bytes: u64,
    /// Files (mail messages, mbox, gzip, zip, JSON, XML), directories (every file below, Maildir
    /// included) or `-` for standard input.
    #[arg(value_name = "INPUT", required = true)]
    inputs: Vec<PathBuf>,
}

/// Runs `mtasts report parse`.
pub(crate) fn run(args: ParseArgs) -> anyhow::Result<ExitCode> {
    let ParseArgs {
        jsonl: _,
        json,
        summary,
        max_report_bytes,
        inputs,
    } = args;
    let limits = limits(max_report_bytes, summary);
    let mut out = Printer::new(io::BufWriter::new(io::stdout().lock()), json, summary)?;
    let mut status = Status::default();
    for input in &inputs {
        let found = match read_input(input, &limits) {
            Ok(found) => found,
            Err(e) => {
                // Print what came before, so that stdout and stderr stay in order on a terminal.
                out.flush()?;
                eprintln!("mtasts: error: {e}");
                status.unopened = true;
                continue;
            }
        };
        for item in &found {
            status.errors |= matches!(item, Found::Error(_));
            out.print(item)?;
        }
        out.flush()?;
    }
    out.finish()?;
    Ok(status.exit_code())
}

/// The walk's limits for `--max-report-bytes` and `--summary`: one report may inflate to
/// `max_report_bytes`, and an input (or everything inflated from it) may be at least that large.
fn limits(max_report_bytes: u64, summary: bool) -> Limits {
    let mut limits = Limits::with_max_report_bytes(max_report_bytes);
    limits.dmarc_mode = if summary { Mode::Summary } else { Mode::Full };
    limits
}

/// What one input gave: its reports and errors, or one `unrecognized` error when it held nothing (an
/// empty directory). `Err` when it could not be opened or read.
fn read_input(input: &Path, limits: &Limits) -> io::Result<Vec<Found>> {
    let source = input.display().to_string();
    let found = if input == Path::new(STDIN) {
        read_stdin(limits)?
    } else {
        walk_path(input, limits)?
    };
    if !found.is_empty() {
        return Ok(found);
    }
    // Nothing at all below a directory: the walker's answer for an empty input.
    Ok(walk(&[], &source, limits))
}

/// Standard input, read whole within `max_input_bytes` (more is a `too-large` error, not an allocation)
/// and walked like a file.
fn read_stdin(limits: &Limits) -> io::Result<Vec<Found>> {
    let bytes = intake::read_input(io::stdin().lock(), STDIN, limits)
        .map_err(|e| io::Error::new(e.kind(), format!("standard input: {e}")))?;
    Ok(match bytes {
        Ok(bytes) => walk(&bytes, STDIN, limits),
        Err(too_large) => vec![Found::Error(too_large)],
    })
}

/// Writes the objects as JSON Lines, or as the items of one JSON array (still written one by one).
struct Printer<W: Write> {
    out: W,
    array: bool,
    summary: bool,
    first: bool,
}

impl<W: Write> Printer<W> {
    fn new(mut out: W, array: bool, summary: bool) -> io::Result<Self> {
        if array {
            out.write_all(b"[")?;
        }
        Ok(Self {
            out,
            array,
            summary,
            first: true,
        })
    }

    fn print(&mut self, found: &Found) -> io::Result<()> {
        if self.array {
            self.out
                .write_all(if self.first { b"\n" } else { b",\n" })?;
        }
        self.first = false;
        serde_json::to_writer(&mut self.out, &output(found, self.summary))?;
        if !self.array {
            self.out.write_all(b"\n")?;
        }
        Ok(())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }

    fn finish(mut self) -> io::Result<()> {
        if self.array {
            self.out
                .write_all(if self.first { b"]\n" } else { b"\n]\n" })?;
        }
        self.out.flush()
    }
}

/// What decides the exit status.
#[derive(Debug, Default)]
struct Status {
    /// Some input could not be opened or read (exit 2).
    unopened: bool,
    /// Some `error` object was printed (exit 1).
    errors: bool,
}

impl Status {
    fn exit_code(&self) -> ExitCode {
        if self.unopened {
            ExitCode::from(2)
        } else if self.errors {
            ExitCode::from(1)
        } else {
            ExitCode::SUCCESS
        }
    }
}

/// The exit statuses, as `--help` shows them (the contract's).
const EXIT_STATUS: &str = "Exit status: 0 every input held at least one report and none failed; 1 some \
    input, or part of one, could not be read (an error object was printed); 2 usage error, or an input \
    could not be opened (the others are still read).";

/// The input name that means standard input.
const STDIN: &str = "-";

/// [`mtasts_report::DEFAULT_MAX_REPORT_BYTES`] as `--help` shows it.
const DEFAULT_MAX_REPORT_BYTES_TEXT: &str = "64MiB";

#[cfg(test)]
mod tests {
    use mtasts_report::DEFAULT_MAX_REPORT_BYTES;

    use super::*;

    #[test]
    fn the_default_limit_is_the_crate_default() {
        assert_eq!(
            super::super::byte_count(DEFAULT_MAX_REPORT_BYTES_TEXT),
            Ok(DEFAULT_MAX_REPORT_BYTES)
        );
    }

    #[test]
    fn a_large_report_limit_raises_the_input_and_total_limits() {
        let limits = limits(1 << 30, true);
        assert_eq!(limits.max_report_bytes, 1 << 30);
        assert_eq!(limits.max_input_bytes, 1 << 30);
        assert_eq!(limits.max_total_bytes, 1 << 30);
        assert_eq!(limits.dmarc_mode, Mode::Summary);
        let small = super::limits(1024, false);
        assert_eq!(small.max_report_bytes, 1024);
        assert_eq!(small.max_input_bytes, Limits::default().max_input_bytes);
        assert_eq!(small.max_total_bytes, Limits::default().max_total_bytes);
        assert_eq!(small.dmarc_mode, Mode::Full);
    }

    #[test]
    fn zero_and_junk_are_refused() {
        assert!(super::super::byte_count("0").is_err());
        assert!(
            super::super::byte_count("64X")
                .expect_err("junk")
                .contains("unit")
        );
        assert_eq!(super::super::byte_count("1K"), Ok(1024));
    }

    #[test]
    fn the_array_is_valid_json_with_and_without_items() {
        let error = walk(b"broken", "x", &Limits::default()).remove(0);
        for n in 0..3 {
            let mut buf = Vec::new();
            let mut printer = Printer::new(&mut buf, true, false).expect("write");
            for _ in 0..n {
                printer.print(&error).expect("write");
            }
            printer.finish().expect("write");
            let v: serde_json::Value = serde_json::from_slice(&buf).expect("valid JSON");
            assert_eq!(v.as_array().map(Vec::len), Some(n));
        }
    }

    #[test]
    fn exit_status_follows_the_contract() {
        let code = |unopened, errors| Status { unopened, errors }.exit_code();
        assert_eq!(code(false, false), ExitCode::SUCCESS);
        assert_eq!(code(false, true), ExitCode::from(1));
        assert_eq!(code(true, false), ExitCode::from(2));
        assert_eq!(code(true, true), ExitCode::from(2));
    }
}
