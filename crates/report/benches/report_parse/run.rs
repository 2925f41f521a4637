//! Running one reader as a whole process under GNU time (wall time, peak resident memory) and scoring what
//! it printed against the corpus' list of expected reports.

use std::collections::BTreeMap;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::corpus::Expected;

/// One process run: how long, how much memory at most, how it ended, and where its output went.
pub(crate) struct Measured {
    pub wall: Duration,
    pub peak_kib: u64,
    pub status: String,
    pub stdout: PathBuf,
}

/// Runs `program args…` (with `envs` added to its environment) under `/usr/bin/time`, its output in `out`, killed (with its process group) after
/// `timeout`.
pub(crate) fn measure(
    program: &Path,
    args: &[String],
    envs: &[(&str, String)],
    out: &Path,
    timeout: Duration,
) -> Measured {
    let times = out.with_extension("time");
    let stdout = std::fs::File::create(out).expect("create the output file");
    let start = Instant::now();
    let mut child = Command::new("/usr/bin/time")
        .arg("-f")
        .arg("%e %M %x")
        .arg("-o")
        .arg(&times)
        .arg(program)
        .args(args)
        .envs(envs.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .expect("run /usr/bin/time (install the `time` package)");
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status.to_string();
        }
        if start.elapsed() > timeout {
            let _ = Command::new("kill")
                .args(["-KILL", "--", &format!("-{}", child.id())])
                .status();
            let _ = child.wait();
            break format!("killed after {} s", timeout.as_secs());
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let wall = start.elapsed();
    let timed = std::fs::read_to_string(&times).unwrap_or_default();
    // The last line is ours; a line before it says why the program died, if it did.
    let last = timed.lines().last().unwrap_or("");
    let peak_kib = last
        .split_whitespace()
        .nth(1)
        .and_then(|k| k.parse().ok())
        .unwrap_or(0);
    let exit = last.split_whitespace().nth(2).unwrap_or("?");
    Measured {
        wall,
        peak_kib,
        status: if status.starts_with("killed") {
            status
        } else {
            format!("exit {exit}")
        },
        stdout: out.to_path_buf(),
    }
}

/// How many of `expected` appear in `found` (each at most once), and how many items `found` has. A
/// report matches on kind, id and total count; the organization is compared without case (parsedmarc
/// lowercases it), and a report that names none matches whatever a reader filled in.
fn score(expected: &[Expected], found: Vec<Expected>) -> (usize, usize) {
    let mut wanted: BTreeMap<(&str, &str, u64), Vec<String>> = BTreeMap::new();
    for e in expected {
        wanted
            .entry((e.kind, &e.report_id, e.count))
            .or_default()
            .push(e.organization.to_lowercase());
    }
    let total = found.len();
    let mut matched = 0;
    for f in &found {
        let Some(orgs) = wanted.get_mut(&(f.kind, f.report_id.as_str(), f.count)) else {
            continue;
        };
        let org = f.organization.to_lowercase();
        if let Some(at) = orgs.iter().position(|o| *o == org || o.is_empty()) {
            orgs.swap_remove(at);
            matched += 1;
        }
    }
    (matched, total)
}

fn text(value: &Value) -> String {
    value.as_str().unwrap_or_default().to_owned()
}

fn number(value: &Value) -> u64 {
    value
        .as_u64()
        .or_else(|| value.as_str().and_then(|s| s.parse().ok()))
        .unwrap_or(0)
}

/// Scores mtasts' JSON lines (the output contract): (reports matching the list, reports printed, errors).
pub(crate) fn score_mtasts(expected: &[Expected], out: &Path) -> (usize, usize, usize) {
    let text_out = std::fs::read_to_string(out).unwrap_or_default();
    let mut found = Vec::new();
    let mut errors = 0;
    for line in text_out.lines() {
        let Ok(v) = serde_json::from_str::<Value>(line) else {
            errors += 1;
            continue;
        };
        match v["kind"].as_str() {
            Some("tlsrpt") => found.push(Expected {
                kind: "tlsrpt",
                organization: text(&v["organization"]),
                report_id: text(&v["report_id"]),
                count: v["policies"]
                    .as_array()
                    .map(|ps| {
                        ps.iter()
                            .map(|p| number(&p["success"]) + number(&p["failure"]))
                            .sum()
                    })
                    .unwrap_or(0),
            }),
            Some("dmarc") => found.push(Expected {
                kind: "dmarc",
                organization: text(&v["organization"]),
                report_id: text(&v["report_id"]),
                count: number(&v["messages"]),
            }),
            _ => errors += 1,
        }
    }
    let (matched, total) = score(expected, found);
    (matched, total, errors)
}

/// Scores parsedmarc's JSON document (`aggregate_reports`, `smtp_tls_reports`): (reports matching the
/// list, reports printed, 0).
pub(crate) fn score_parsedmarc(expected: &[Expected], out: &Path) -> (usize, usize, usize) {
    let Ok(bytes) = std::fs::read(out) else {
        return (0, 0, 0);
    };
    let Ok(v) = serde_json::from_slice::<Value>(&bytes) else {
        return (0, 0, 0);
    };
    let mut found = Vec::new();
    for r in v["aggregate_reports"].as_array().into_iter().flatten() {
        let meta = &r["report_metadata"];
        found.push(Expected {
            kind: "dmarc",
            organization: text(&meta["org_name"]),
            report_id: text(&meta["report_id"]),
            count: r["records"]
                .as_array()
                .map(|rs| rs.iter().map(|rec| number(&rec["count"])).sum())
                .unwrap_or(0),
        });
    }
    for r in v["smtp_tls_reports"].as_array().into_iter().flatten() {
        found.push(Expected {
            kind: "tlsrpt",
            organization: text(&r["organization_name"]),
            report_id: text(&r["report_id"]),
            count: r["policies"]
                .as_array()
                .map(|ps| {
                    ps.iter()
                        .map(|p| {
                            number(&p["successful_session_count"])
                                + number(&p["failed_session_count"])
                        })
                        .sum()
                })
                .unwrap_or(0),
        });
    }
    let (matched, total) = score(expected, found);
    (matched, total, 0)
}
