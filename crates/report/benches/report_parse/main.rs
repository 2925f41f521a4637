//! Reading reports, mtasts against parsedmarc: a directory of a few thousand mixed reports (made at run
//! time from the report samples, in every container) read whole-process by `mtasts report parse --jsonl
//! --summary` and by parsedmarc in offline mode, then DMARC reports of many records (a million by
//! default) read by both. Prints reports per second, peak resident memory (GNU time) and how many of the
//! reports each tool read correctly (organization, id and total count as generated). Not a test: run it
//! by hand (see docs/benchmarks.md).
//!
//! Environment:
//! - `BENCH_SAMPLES` (default: the testkit's samples folder): where the sample reports are.
//! - `BENCH_REPORTS` (default 3000): how many reports the mixed directory has.
//! - `BENCH_RECORDS` (default `1000000`): comma-separated record counts of the big DMARC reports (each
//!   written as `.xml` and `.xml.gz`); empty for none.
//! - `BENCH_DIR` (default: a temporary directory, removed afterwards): where the corpus is written (an
//!   existing corpus there is rewritten).
//! - `BENCH_MTASTS` (default `target/release/mtasts` when it exists): the mtasts binary. Without one,
//!   this bench program itself is run as the reader (`walk_path` and the output contract's JSON lines).
//! - `BENCH_PARSEDMARC` (path to the parsedmarc command): also run parsedmarc `--offline`.
//! - `BENCH_TIMEOUT` (default 3600): seconds after which one run is killed.
//! - `BENCH_WALK` (set by this program for its own reader processes): the path to walk, and
//!   `BENCH_WALK_MAX_REPORT_BYTES` its `max_report_bytes`.

mod corpus;
mod run;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use mtasts_proto::dmarc::Mode;
use mtasts_report::{Limits, output, walk_path};

use crate::corpus::Expected;
use crate::run::{Measured, measure, score_mtasts, score_parsedmarc};

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The reader this program stands in for when there is no mtasts binary: `report parse --jsonl --summary`.
fn walk_and_print(path: &Path, max_report_bytes: u64) {
    let mut limits = Limits::with_max_report_bytes(max_report_bytes);
    limits.dmarc_mode = Mode::Summary;
    let found = walk_path(path, &limits).expect("walk");
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    for item in &found {
        output::write_jsonl(item, true, &mut out).expect("write");
    }
    out.flush().expect("flush");
}

struct Reader {
    label: String,
    program: PathBuf,
    args: Vec<String>,
    /// Run as this program's own reader: the input and the limit go in the environment.
    env_path: bool,
    /// `--max-report-bytes` in bytes, for this program's own reader.
    max_report_bytes: Option<u64>,
}

/// The mtasts reader's command for `input` (and `--max-report-bytes` when `max` is given).
fn mtasts_reader(mtasts: Option<&Path>, max: Option<&str>) -> Reader {
    match mtasts {
        Some(program) => {
            let mut args: Vec<String> = ["report", "parse", "--jsonl", "--summary"]
                .map(String::from)
                .to_vec();
            if let Some(max) = max {
                args.extend(["--max-report-bytes".into(), max.into()]);
            }
            let label = format!("mtasts {}", args.join(" "));
            Reader {
                label,
                program: program.to_path_buf(),
                args,
                env_path: false,
                max_report_bytes: None,
            }
        }
        None => Reader {
            label: format!(
                "walk_path (bench program, summary{})",
                if max.is_some() { ", 1 GiB limits" } else { "" }
            ),
            program: std::env::current_exe().expect("this program"),
            args: Vec::new(),
            env_path: true,
            max_report_bytes: max.map(|_| 1 << 30),
        },
    }
}

fn run_reader(reader: &Reader, input: &Path, out: &Path, timeout: Duration) -> Measured {
    if reader.env_path {
        let mut envs = vec![("BENCH_WALK", input.display().to_string())];
        if let Some(max) = reader.max_report_bytes {
            envs.push(("BENCH_WALK_MAX_REPORT_BYTES", max.to_string()));
        }
        measure(&reader.program, &[], &envs, out, timeout)
    } else {
        let mut args = reader.args.clone();
        args.push(input.display().to_string());
        measure(&reader.program, &args, &[], out, timeout)
    }
}

fn row(label: &str, reports: usize, m: &Measured, correct: &str) {
    let secs = m.wall.as_secs_f64();
    println!(
        "| {label} | {reports} | {secs:.2} s | {:.0} | {:.1} MiB | {correct} | {} |",
        reports as f64 / secs,
        m.peak_kib as f64 / 1024.0,
        m.status
    );
}

fn main() {
    if let Ok(path) = std::env::var("BENCH_WALK") {
        let max = env_or(
            "BENCH_WALK_MAX_REPORT_BYTES",
            mtasts_report::DEFAULT_MAX_REPORT_BYTES,
        );
        walk_and_print(Path::new(&path), max);
        return;
    }
    let samples = match std::env::var("BENCH_SAMPLES") {
        Ok(dir) => PathBuf::from(dir),
        Err(_) => {
            mtasts_testkit::services::samples_dir().expect("no samples folder: set BENCH_SAMPLES")
        }
    };
    let reports: usize = env_or("BENCH_REPORTS", 3000);
    let records: Vec<usize> = std::env::var("BENCH_RECORDS")
        .unwrap_or_else(|_| "1000000".into())
        .split(',')
        .filter(|s| !s.trim().is_empty())
        .map(|s| {
            s.trim()
                .parse()
                .expect("BENCH_RECORDS: numbers separated by commas")
        })
        .collect();
    let timeout = Duration::from_secs(env_or("BENCH_TIMEOUT", 3600));
    let temp;
    let work = match std::env::var("BENCH_DIR") {
        Ok(dir) => PathBuf::from(dir),
        Err(_) => {
            temp = tempfile::tempdir().expect("temp dir");
            temp.path().to_path_buf()
        }
    };
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mtasts = match std::env::var("BENCH_MTASTS") {
        Ok(path) => Some(PathBuf::from(path)),
        Err(_) => Some(root.join("target/release/mtasts")).filter(|p| p.is_file()),
    };
    let parsedmarc = std::env::var("BENCH_PARSEDMARC").ok().map(PathBuf::from);

    let corpus_dir = work.join("corpus");
    let outputs = work.join("out");
    let _ = std::fs::remove_dir_all(&corpus_dir);
    std::fs::create_dir_all(&outputs).expect("create the output directory");
    let expected = corpus::mixed(&samples, &corpus_dir, reports);
    let tls = expected.iter().filter(|e| e.kind == "tlsrpt").count();
    println!(
        "corpus: {reports} reports ({tls} TLS-RPT, {} DMARC) in {}",
        reports - tls,
        corpus_dir.display()
    );
    println!();
    println!("| reader | reports | wall time | reports/s | peak RSS | read correctly | status |");
    println!("|---|---|---|---|---|---|---|");
    let reader = mtasts_reader(mtasts.as_deref(), None);
    let m = run_reader(
        &reader,
        &corpus_dir,
        &outputs.join("mtasts-mixed.jsonl"),
        timeout,
    );
    let (ok, printed, errors) = score_mtasts(&expected, &m.stdout);
    let ours = m.wall;
    row(
        &reader.label,
        reports,
        &m,
        &format!("{ok} ({printed} reports, {errors} errors)"),
    );
    if let Some(parsedmarc) = &parsedmarc {
        let args = vec![
            "--offline".into(),
            "--no-prettify-json".into(),
            corpus_dir.display().to_string(),
        ];
        let m = measure(
            parsedmarc,
            &args,
            &[],
            &outputs.join("parsedmarc-mixed.json"),
            timeout,
        );
        let (ok, printed, _) = score_parsedmarc(&expected, &m.stdout);
        row(
            "parsedmarc --offline",
            reports,
            &m,
            &format!("{ok} ({printed} reports)"),
        );
        println!();
        println!(
            "throughput ratio: {:.0}x",
            m.wall.as_secs_f64() / ours.as_secs_f64()
        );
    }

    for count in records {
        let big = work.join("big");
        std::fs::create_dir_all(&big).expect("create the big report directory");
        let xml = big.join(format!("dmarc-{count}.xml"));
        let gz = big.join(format!("dmarc-{count}.xml.gz"));
        let want: Expected = corpus::big_dmarc(&xml, Some(&gz), count);
        let size = std::fs::metadata(&xml).map(|m| m.len()).unwrap_or(0);
        let gz_size = std::fs::metadata(&gz).map(|m| m.len()).unwrap_or(0);
        println!();
        println!(
            "DMARC report of {count} records: {:.1} MB as XML, {:.1} MB gzipped",
            size as f64 / 1e6,
            gz_size as f64 / 1e6
        );
        println!();
        println!("| reader | input | wall time | peak RSS | read correctly | status |");
        println!("|---|---|---|---|---|---|");
        let reader = mtasts_reader(mtasts.as_deref(), Some("1G"));
        for input in [&xml, &gz] {
            let name = input
                .file_name()
                .expect("name")
                .to_string_lossy()
                .into_owned();
            let m = run_reader(
                &reader,
                input,
                &outputs.join(format!("mtasts-{name}.jsonl")),
                timeout,
            );
            let (ok, _, _) = score_mtasts(std::slice::from_ref(&want), &m.stdout);
            big_row(&reader.label, &name, &m, ok == 1);
        }
        if let Some(parsedmarc) = &parsedmarc {
            // Both forms: parsedmarc refuses a gzip that inflates past its fixed 100 MiB
            // (MAX_DECOMPRESSED_REPORT_SIZE), but reads a bare XML file of any size.
            for input in [&xml, &gz] {
                let name = input
                    .file_name()
                    .expect("name")
                    .to_string_lossy()
                    .into_owned();
                let args = vec![
                    "--offline".into(),
                    "--no-prettify-json".into(),
                    input.display().to_string(),
                ];
                let out = outputs.join(format!("parsedmarc-{name}.json"));
                let m = measure(parsedmarc, &args, &[], &out, timeout);
                // The output of a million records is too large to load here: look for the report's id.
                let found = contains(&out, &format!("\"report_id\": \"{}\"", want.report_id));
                big_row("parsedmarc --offline", &name, &m, found);
            }
        }
        if std::env::var("BENCH_DIR").is_err() {
            let _ = std::fs::remove_dir_all(&big);
        }
    }
}

fn big_row(label: &str, input: &str, m: &Measured, ok: bool) {
    println!(
        "| {label} | {input} | {:.2} s | {:.1} MiB | {} | {} |",
        m.wall.as_secs_f64(),
        m.peak_kib as f64 / 1024.0,
        if ok { "yes" } else { "no" },
        m.status
    );
}

/// Whether the file at `path` contains `needle`, read in pieces.
fn contains(path: &Path, needle: &str) -> bool {
    use std::io::Read;
    let Ok(mut file) = std::fs::File::open(path) else {
        return false;
    };
    let needle = needle.as_bytes();
    let mut window: Vec<u8> = Vec::new();
    let mut buf = vec![0; 1 << 20];
    loop {
        let n = match file.read(&mut buf) {
            Ok(0) | Err(_) => return false,
            Ok(n) => n,
        };
        window.extend_from_slice(&buf[..n]);
        if window.windows(needle.len()).any(|w| w == needle) {
            return true;
        }
        let keep = window.len().saturating_sub(needle.len());
        window.drain(..keep);
    }
}
