//! How fast `dmarc::parse` reads large DMARC aggregate reports: the largest XML among the report samples
//! and a generated report of many records, in summary and full mode, best of a few runs, in MB/s. Not a
//! test: run it by hand (`cargo bench -p mtasts-proto --bench dmarc`, see docs/benchmarks.md).
//!
//! Environment:
//! - `DMARC_BENCH_RECORDS` (default 1000000): records in the generated report.
//! - `DMARC_BENCH_RUNS` (default 5): runs per input and mode; the fastest is printed.
//! - `DMARC_BENCH_DIGEST` (a directory): instead of timing, print one line per file there with a hash of
//!   what `parse` answers in both modes (the report or the error), so two builds of the reader can be
//!   compared on a whole corpus (for example the fuzz corpus) for identical results.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use mtasts_proto::dmarc::{Mode, parse, parse_within};

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A report of `records` records shaped like the report bench's big report (`crates/report/benches`):
/// varying source addresses, counts and results, with `auth_results`.
fn generated(records: usize) -> Vec<u8> {
    let mut xml = Vec::with_capacity(records * 480 + 1024);
    xml.extend_from_slice(
        b"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<feedback>\n  <version>1.0</version>\n\
          <report_metadata>\n    <org_name>bulk-sender.example</org_name>\n\
          <email>dmarc-reports@bulk-sender.example</email>\n    <report_id>bench</report_id>\n\
          <date_range><begin>1764547200</begin><end>1764633599</end></date_range>\n\
          </report_metadata>\n  <policy_published>\n    <domain>example.com</domain><adkim>r</adkim>\
          <aspf>r</aspf><p>reject</p><sp>reject</sp><pct>100</pct>\n  </policy_published>\n",
    );
    for i in 0..records {
        let count = i % 13 + 1;
        let (dkim, spf, disposition) = match i % 5 {
            0 => ("fail", "fail", "reject"),
            1 => ("pass", "fail", "none"),
            _ => ("pass", "pass", "none"),
        };
        write!(
            xml,
            "  <record>\n    <row>\n      <source_ip>10.{}.{}.{}</source_ip>\n      <count>{count}</count>\n\
             <policy_evaluated><disposition>{disposition}</disposition><dkim>{dkim}</dkim><spf>{spf}</spf></policy_evaluated>\n\
             </row>\n    <identifiers><header_from>example.com</header_from></identifiers>\n    <auth_results>\n\
             <dkim><domain>example.com</domain><selector>s{}</selector><result>{dkim}</result></dkim>\n\
             <spf><domain>mail{}.example.net</domain><result>{spf}</result></spf>\n    </auth_results>\n  </record>\n",
            i >> 16 & 255,
            i >> 8 & 255,
            i & 255,
            i % 4,
            i % 97,
        )
        .expect("write to a Vec");
    }
    xml.extend_from_slice(b"</feedback>\n");
    xml
}

/// The largest `.xml` file below `dir`.
fn largest_xml(dir: &Path) -> Option<PathBuf> {
    let mut best: Option<(u64, PathBuf)> = None;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let path = entry.path();
            let Ok(meta) = entry.metadata() else { continue };
            if meta.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "xml")
                && best.as_ref().is_none_or(|(size, _)| meta.len() > *size)
            {
                best = Some((meta.len(), path));
            }
        }
    }
    best.map(|(_, path)| path)
}

/// Times `parse` on `xml` in `mode` (with the limit raised to its size, as `--max-report-bytes` does):
/// the fastest of `runs`.
fn time(xml: &[u8], mode: Mode, runs: usize) -> Duration {
    let mut best = Duration::MAX;
    for _ in 0..runs {
        let started = Instant::now();
        let report =
            parse_within(xml, mode, xml.len() as u64).expect("the bench input is a valid report");
        let took = started.elapsed();
        std::hint::black_box(report);
        best = best.min(took);
    }
    best
}

fn bench(label: &str, xml: &[u8], runs: usize) {
    let report = parse_within(xml, Mode::Summary, xml.len() as u64)
        .expect("the bench input is a valid report");
    println!(
        "{label}: {:.1} MB, {} records, {} messages",
        xml.len() as f64 / 1e6,
        report.rows,
        report.messages
    );
    for (name, mode) in [("summary", Mode::Summary), ("full", Mode::Full)] {
        let took = time(xml, mode, runs);
        println!(
            "  {name:7} {:9.2} ms  {:7.1} MB/s",
            took.as_secs_f64() * 1e3,
            xml.len() as f64 / 1e6 / took.as_secs_f64()
        );
    }
}

/// One line per file below `dir` (sorted): its name and a hash of both modes' answers, for the file and
/// for the file without its first byte (a fuzz corpus entry's first byte is the target's own parameter).
fn digest(dir: &Path) {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("read the digest directory")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    for path in files {
        let data = std::fs::read(&path).expect("read a corpus file");
        let mut hasher = DefaultHasher::new();
        for xml in [&data[..], data.get(1..).unwrap_or_default()] {
            for mode in [Mode::Summary, Mode::Full] {
                format!("{:?}", parse(xml, mode)).hash(&mut hasher);
            }
        }
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        println!("{name} {:016x}", hasher.finish());
    }
}

fn main() {
    if let Some(dir) = std::env::var_os("DMARC_BENCH_DIGEST") {
        digest(Path::new(&dir));
        return;
    }
    // `cargo test --benches` runs bench targets with `--test`: nothing to time then.
    if std::env::args().any(|a| a == "--test") {
        return;
    }
    let runs = env_or("DMARC_BENCH_RUNS", 5usize).max(1);
    match mtasts_testkit::services::samples_dir().and_then(|s| largest_xml(&s.join("dmarc"))) {
        Some(path) => {
            let xml = std::fs::read(&path).expect("read the largest sample");
            bench(&path.display().to_string(), &xml, runs);
        }
        None => println!("no DMARC sample: the largest sample skipped"),
    }
    let records = env_or("DMARC_BENCH_RECORDS", 1_000_000usize);
    let xml = generated(records);
    bench("generated", &xml, runs);
}
