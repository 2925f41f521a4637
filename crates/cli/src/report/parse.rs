//! `mtasts report parse`: read reports from files, directories or standard input and print the output
//! contract's objects (`shared/spec/report-output.md`) without storing anything.
//!
//! Every input is expanded into jobs: a directory into its files (`mtasts_report::intake::input_files`,
//! the one listing rule), each file walked on its own by `walk_path` (which streams a big XML or gzip).
//! The jobs run on `--jobs` worker threads (`ordered`), which also serialize the objects, and each
//! file's objects are printed as soon as it and every file before it are done, in the order a sequential walk gives them: memory holds a few
//! files' results per worker, never a whole directory's. Exit status as the contract says: 0 when every
//! input held at least one report and nothing failed, 1 when some input (or part of one) is an `error`
//! object, 2 when an input could not be opened at all (the others are still read).

use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use mtasts_proto::dmarc::Mode;
use mtasts_report::output::output;
use mtasts_report::{Found, FoundError, Limits, intake, walk, walk_path};

mod ordered;

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
    /// How many files are read at the same time (worker threads); the output is in the same order
    /// whatever the number. Default: the processors available. `--jobs 1` reads one file after the
    /// other on one thread.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=i64::from(MAX_JOBS)))]
    jobs: Option<u16>,
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
        jobs,
        inputs,
    } = args;
    let limits = limits(max_report_bytes, summary);
    let workers = jobs.map_or_else(default_jobs, usize::from);
    let mut out = Printer::new(io::BufWriter::new(io::stdout().lock()), json)?;
    let mut status = Status::default();
    let all_jobs = inputs.iter().flat_map(|input| expand(input, &limits));
    let work_limits = limits.clone();
    ordered::run_ordered(
        all_jobs,
        workers,
        move |job| job.run(&work_limits, summary),
        |outcome| print_outcome(&mut out, &mut status, outcome),
    )?;
    out.finish()?;
    Ok(status.exit_code())
}

/// The default `--jobs`: the processors this process may use, at most [`MAX_JOBS`].
fn default_jobs() -> usize {
    std::thread::available_parallelism()
        .map_or(1, usize::from)
        .min(usize::from(MAX_JOBS))
}

/// Prints one job's objects, or its input's error on standard error at its place.
fn print_outcome<W: Write>(
    out: &mut Printer<W>,
    status: &mut Status,
    outcome: io::Result<Rendered>,
) -> io::Result<()> {
    match outcome {
        Ok(rendered) => {
            status.errors |= rendered.errors;
            for object in &rendered.objects {
                out.print(object)?;
            }
        }
        Err(e) => {
            // Print what came before, so that stdout and stderr stay in order on a terminal.
            out.flush()?;
            eprintln!("mtasts: error: {e}");
            status.unopened = true;
        }
    }
    out.flush()
}

/// The walk's limits for `--max-report-bytes` and `--summary`: one report may inflate to
/// `max_report_bytes`, and an input (or everything inflated from it) may be at least that large.
fn limits(max_report_bytes: u64, summary: bool) -> Limits {
    let mut limits = Limits::with_max_report_bytes(max_report_bytes);
    limits.dmarc_mode = if summary { Mode::Summary } else { Mode::Full };
    limits
}

/// One piece of work, run on a worker: what it gives is printed at its place.
#[derive(Debug)]
enum Job {
    /// A file, walked from its path (its path is its `source`).
    File(PathBuf),
    /// Standard input, read whole on the main thread when its turn came.
    Stdin(Vec<u8>),
    /// Objects known without reading: the listing's `too-large` errors, an empty directory.
    Ready(Vec<Found>),
    /// An input (or a file below it) that could not be opened or read.
    Failed(io::Error),
}

impl Job {
    /// Reads the job's input and serializes what it found (on a worker: both are CPU work).
    fn run(self, limits: &Limits, summary: bool) -> io::Result<Rendered> {
        let found = match self {
            Job::File(path) => walk_path(&path, limits)?,
            Job::Stdin(bytes) => walk(&bytes, STDIN, limits),
            Job::Ready(found) => found,
            Job::Failed(e) => return Err(e),
        };
        Rendered::new(&found, summary)
    }
}

/// One job's objects as JSON text, ready to print.
#[derive(Debug)]
struct Rendered {
    /// Each object, serialized.
    objects: Vec<Vec<u8>>,
    /// Some object is an `error`.
    errors: bool,
}

impl Rendered {
    fn new(found: &[Found], summary: bool) -> io::Result<Self> {
        let objects = found
            .iter()
            .map(|f| serde_json::to_vec(&output(f, summary)))
            .collect::<Result<_, _>>()?;
        Ok(Rendered {
            objects,
            errors: found.iter().any(|f| matches!(f, Found::Error(_))),
        })
    }
}

/// The jobs of one input, in the order a walk of the whole input gives its objects: standard input,
/// or every file below a directory (or the file itself) with the listing's errors at their places.
/// An input with nothing in it (an empty directory) is one `unrecognized` error.
fn expand(input: &Path, limits: &Limits) -> Vec<Job> {
    if input == Path::new(STDIN) {
        return vec![match read_stdin(limits) {
            Ok(Ok(bytes)) => Job::Stdin(bytes),
            Ok(Err(too_large)) => Job::Ready(vec![Found::Error(too_large)]),
            Err(e) => Job::Failed(e),
        }];
    }
    let (files, errors) = match intake::input_files(input, limits) {
        Ok(listed) => listed,
        Err(e) => return vec![Job::Failed(e)],
    };
    if files.is_empty() && errors.is_empty() {
        // Nothing at all below a directory: the walker's answer for an empty input.
        return vec![Job::Ready(walk(&[], &input.display().to_string(), limits))];
    }
    in_walk_order(files, errors)
}

/// The listed files and the listing's errors merged into the order a depth-first walk meets them.
/// Both lists are in that order already, and it is the order of [`Path`]s (component by component,
/// a directory before what is below it), so an error (a directory nested too deep, the first file
/// past `max_files`) goes before the first file whose path sorts after its source.
fn in_walk_order(files: Vec<PathBuf>, errors: Vec<FoundError>) -> Vec<Job> {
    let mut jobs = Vec::with_capacity(files.len() + errors.len());
    let mut errors = errors.into_iter().peekable();
    for file in files {
        while let Some(error) = errors.next_if(|e| Path::new(&e.source) < file.as_path()) {
            jobs.push(Job::Ready(vec![Found::Error(error)]));
        }
        jobs.push(Job::File(file));
    }
    jobs.extend(errors.map(|e| Job::Ready(vec![Found::Error(e)])));
    jobs
}

/// Standard input, read whole within `max_input_bytes` (more is a `too-large` error, not an
/// allocation).
fn read_stdin(limits: &Limits) -> io::Result<Result<Vec<u8>, FoundError>> {
    intake::read_input(io::stdin().lock(), STDIN, limits)
        .map_err(|e| io::Error::new(e.kind(), format!("standard input: {e}")))
}

/// Writes the objects as JSON Lines, or as the items of one JSON array (still written one by one).
struct Printer<W: Write> {
    out: W,
    array: bool,
    first: bool,
}

impl<W: Write> Printer<W> {
    fn new(mut out: W, array: bool) -> io::Result<Self> {
        if array {
            out.write_all(b"[")?;
        }
        Ok(Self {
            out,
            array,
            first: true,
        })
    }

    /// Writes one serialized object.
    fn print(&mut self, object: &[u8]) -> io::Result<()> {
        if self.array {
            self.out
                .write_all(if self.first { b"\n" } else { b",\n" })?;
        }
        self.first = false;
        self.out.write_all(object)?;
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

/// The most `--jobs`: more threads than this would only hold more files in memory at once.
const MAX_JOBS: u16 = 256;

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
        let found = walk(b"broken", "x", &Limits::default());
        let rendered = Rendered::new(&found, false).expect("serialize");
        assert!(rendered.errors);
        let error = &rendered.objects[0];
        for n in 0..3 {
            let mut buf = Vec::new();
            let mut printer = Printer::new(&mut buf, true).expect("write");
            for _ in 0..n {
                printer.print(error).expect("write");
            }
            printer.finish().expect("write");
            let v: serde_json::Value = serde_json::from_slice(&buf).expect("valid JSON");
            assert_eq!(v.as_array().map(Vec::len), Some(n));
        }
    }

    /// What the jobs of `path` print, in order, as JSON values.
    fn expanded(path: &Path, limits: &Limits) -> Vec<serde_json::Value> {
        expand(path, limits)
            .into_iter()
            .flat_map(|job| job.run(limits, true).expect("readable").objects)
            .map(|o| serde_json::from_slice(&o).expect("JSON"))
            .collect()
    }

    /// With the listing's limits hit (a directory too deep, more files than allowed), the jobs still
    /// print exactly what one walk of the directory prints, errors at their places.
    #[test]
    fn the_jobs_give_what_the_walk_of_the_directory_gives() {
        let dir = tempfile::tempdir().expect("temp dir");
        let root = dir.path();
        for name in [
            "a/x",
            "a/deep/deeper/y",
            "a/deep/z",
            "b",
            "c/d/e",
            "c/f",
            "g",
            "h/i",
        ] {
            let file = root.join(name);
            std::fs::create_dir_all(file.parent().expect("parent")).expect("mkdir");
            std::fs::write(&file, name).expect("write");
        }
        std::fs::create_dir_all(root.join("a/empty")).expect("mkdir");
        let mut limits = limits(1 << 20, true);
        for (max_depth, max_files) in [(8, 100), (1, 100), (2, 3), (0, 2), (8, 0)] {
            limits.max_depth = max_depth;
            limits.max_files = max_files;
            let walked: Vec<serde_json::Value> = walk_path(root, &limits)
                .expect("walk")
                .iter()
                .map(|f| mtasts_report::output::to_value(f, true))
                .collect();
            assert!(!walked.is_empty());
            assert_eq!(expanded(root, &limits), walked, "{max_depth} {max_files}");
        }
        limits.max_depth = 1;
        limits.max_files = 3;
        let codes: Vec<_> = expanded(root, &limits)
            .iter()
            .map(|v| v["code"].as_str().map(str::to_owned))
            .collect();
        assert!(
            codes
                .iter()
                .filter(|c| c.as_deref() == Some("too-large"))
                .count()
                >= 2
        );
        // A single file is its own job; an empty directory is one `unrecognized` error.
        assert_eq!(expanded(&root.join("b"), &limits).len(), 1);
        let empty = expanded(&root.join("a/empty"), &limits);
        assert_eq!(empty.len(), 1);
        assert_eq!(empty[0]["code"], "unrecognized");
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
