//! `mtasts report import` and `mtasts report reparse` through the binary: the samples folder into
//! a temporary SQLite database (exact counts), a second import (all duplicates), standard input,
//! a missing input, PostgreSQL on a fresh schema, and reparse.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Output;

use mtasts_report::{Found, Limits, walk_path};

#[path = "support/report.rs"]
mod support;

use support::{drop_schema, last_line, output, postgres_schema, samples, stderr, stdout};

const TLS: &str = r#"{"organization-name": "Example Org", "report-id": "import-1",
  "date-range": {"start-datetime": "2024-03-25T00:00:00Z", "end-datetime": "2024-03-25T23:59:59Z"},
  "policies": [{"policy": {"policy-type": "sts", "policy-domain": "example.com"},
                "summary": {"total-successful-session-count": 5, "total-failure-session-count": 0}}]}"#;

/// `mtasts report ARGS… --data-dir DATA_DIR`.
fn mtasts(data_dir: &Path, args: &[&str], stdin: Option<&[u8]>) -> Output {
    let mut command = support::command(&["report"]);
    command.args(args).arg("--data-dir").arg(data_dir);
    output(&mut command, stdin)
}

/// What the walker finds in `dir`: distinct reports, all reports, errors.
fn expected(dir: &Path) -> (usize, usize, usize) {
    let found = walk_path(dir, &Limits::default()).unwrap();
    let mut identities = BTreeSet::new();
    let mut reports = 0;
    let mut errors = 0;
    for f in &found {
        match f {
            Found::TlsRpt { report, .. } => {
                reports += 1;
                identities.insert((
                    "tlsrpt",
                    report.organization.clone(),
                    report.report_id.clone(),
                    report.begin.unix_seconds(),
                    report.end.unix_seconds(),
                ));
            }
            Found::Dmarc { report, .. } => {
                reports += 1;
                identities.insert((
                    "dmarc",
                    report.organization.clone().unwrap_or_default(),
                    report.report_id.clone(),
                    report.begin as i64,
                    report.end as i64,
                ));
            }
            _ => errors += 1,
        }
    }
    (identities.len(), reports, errors)
}

#[test]
fn the_samples_import_once_and_then_as_duplicates() {
    let Some(samples) = samples() else {
        return;
    };
    let (distinct, reports, errors) = expected(&samples);
    let tmp = tempfile::tempdir().unwrap();
    // A data directory that does not exist yet is created.
    let data = tmp.path().join("new/data");
    let samples_arg = samples.to_str().unwrap();

    let first = mtasts(&data, &["import", samples_arg], None);
    // The broken samples are errors: exit 1.
    assert_eq!(first.status.code(), Some(1), "{}", stderr(&first));
    assert_eq!(
        last_line(&first),
        format!(
            "{distinct} new, {} duplicate, {errors} error",
            reports - distinct
        )
    );
    // Every error is listed as `source: code: message`.
    let listed: Vec<String> = stdout(&first).lines().map(str::to_owned).collect();
    assert_eq!(listed.len(), errors + 1);
    for line in &listed[..errors] {
        let mut parts = line.splitn(3, ": ");
        let (source, code) = (parts.next().unwrap(), parts.next().unwrap_or_default());
        assert!(source.starts_with(samples_arg), "{line}");
        assert!(
            [
                "unrecognized",
                "malformed",
                "invalid",
                "too-large",
                "unsupported"
            ]
            .contains(&code),
            "{line}"
        );
    }
    assert!(data.join("serve.db").is_file());
    // No progress bar when stderr is not a terminal.
    assert!(!stderr(&first).contains('['), "{}", stderr(&first));

    let second = mtasts(&data, &["import", samples_arg], None);
    assert_eq!(second.status.code(), Some(1), "{}", stderr(&second));
    assert_eq!(
        last_line(&second),
        format!("0 new, {reports} duplicate, {errors} error")
    );

    // Reading everything again changes nothing and keeps the errors. An empty file has
    // nothing to read again: reparse leaves it, and its one error, as they are.
    let empty = empty_files(&samples);
    assert!(empty < errors);
    let read_again = errors - empty;
    let reparse = mtasts(&data, &["reparse"], None);
    assert_eq!(reparse.status.code(), Some(1), "{}", stderr(&reparse));
    let line = last_line(&reparse);
    assert!(
        line.ends_with(&format!(
            "{distinct} reports, 0 new, 0 updated, {read_again} error (was {read_again})"
        )),
        "{line}"
    );
}

#[test]
fn standard_input_and_a_good_file_exit_0() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let out = mtasts(&data, &["import", "-"], Some(TLS.as_bytes()));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stdout(&out), "1 new, 0 duplicate, 0 error\n");
    let file = tmp.path().join("report.json");
    std::fs::write(&file, TLS).unwrap();
    let out = mtasts(&data, &["import", file.to_str().unwrap()], None);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stdout(&out), "0 new, 1 duplicate, 0 error\n");
    let reparse = mtasts(&data, &["reparse"], None);
    assert_eq!(reparse.status.code(), Some(0), "{}", stderr(&reparse));
    assert_eq!(
        stdout(&reparse),
        // Standard input and the file held the same bytes: one input.
        "1 inputs, 1 reports, 0 new, 0 updated, 0 error (was 0)\n"
    );
}

#[test]
fn a_missing_input_is_exit_2_and_the_others_are_imported() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let file = tmp.path().join("report.json");
    std::fs::write(&file, TLS).unwrap();
    let missing = tmp.path().join("missing.json");
    let out = mtasts(
        &data,
        &["import", missing.to_str().unwrap(), file.to_str().unwrap()],
        None,
    );
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("mtasts: error:"), "{}", stderr(&out));
    assert!(stderr(&out).contains("missing.json"), "{}", stderr(&out));
    assert_eq!(stdout(&out), "1 new, 0 duplicate, 0 error\n");
}

#[test]
fn a_report_past_max_report_bytes_is_an_error() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let file = tmp.path().join("report.json.gz");
    std::fs::write(&file, flate2_gzip(TLS.as_bytes())).unwrap();
    let out = mtasts(
        &data,
        &[
            "import",
            "--max-report-bytes",
            "100",
            file.to_str().unwrap(),
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains(": too-large: "), "{text}");
    assert!(text.ends_with("0 new, 0 duplicate, 1 error\n"), "{text}");
    let bad = mtasts(&data, &["import", "--max-report-bytes", "lots", "x"], None);
    assert_eq!(bad.status.code(), Some(2), "{}", stderr(&bad));
}

#[test]
fn postgres_with_database_on_a_fresh_schema() {
    let Some(url) = postgres_schema("import_") else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let file = tmp.path().join("report.json");
    std::fs::write(&file, TLS).unwrap();
    let args = ["import", "--database", &url, file.to_str().unwrap()];
    let out = mtasts(&data, &args, None);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stdout(&out), "1 new, 0 duplicate, 0 error\n");
    let out = mtasts(&data, &args, None);
    assert_eq!(stdout(&out), "0 new, 1 duplicate, 0 error\n");
    // Nothing went to SQLite.
    assert!(!data.join("serve.db").exists());
    let reparse = mtasts(&data, &["reparse", "--database", &url], None);
    assert_eq!(reparse.status.code(), Some(0), "{}", stderr(&reparse));
    drop_schema(&url);
}

/// `bytes` in a gzip stream, written by hand (stored blocks) so the test needs no compressor.
fn flate2_gzip(bytes: &[u8]) -> Vec<u8> {
    let mut out = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];
    for (i, chunk) in bytes.chunks(65_535).enumerate() {
        let last = (i + 1) * 65_535 >= bytes.len();
        out.push(u8::from(last));
        let len = chunk.len() as u16;
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&(!len).to_le_bytes());
        out.extend_from_slice(chunk);
    }
    out.extend_from_slice(&crc32(bytes).to_le_bytes());
    out.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
    out
}

fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xedb8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// The empty files below `dir`.
fn empty_files(dir: &std::path::Path) -> usize {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .map(|p| {
            if p.is_dir() {
                empty_files(&p)
            } else {
                usize::from(std::fs::metadata(&p).unwrap().len() == 0)
            }
        })
        .sum()
}
