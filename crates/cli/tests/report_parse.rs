//! `mtasts report parse` as scripts run it: the contract's objects on standard output, one bad input
//! never stopping the others, and the exit status (0 all read, 1 some error object, 2 usage or an input
//! that could not be opened).

use std::process::{Output, Stdio};

use serde_json::Value;

#[path = "support/report.rs"]
mod support;

use support::{command, mtasts, path, samples, stderr};

fn parse(args: &[&str]) -> Output {
    let mut all = vec!["report", "parse"];
    all.extend_from_slice(args);
    mtasts(&all, None)
}

/// The JSON Lines on standard output, each a JSON object.
fn lines(o: &Output) -> Vec<Value> {
    String::from_utf8(o.stdout.clone())
        .expect("UTF-8 output")
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

fn code(o: &Output) -> Option<i32> {
    o.status.code()
}

fn count(objects: &[Value], kind: &str) -> usize {
    objects.iter().filter(|o| o["kind"] == kind).count()
}

#[test]
fn the_sample_folder_gives_every_report_and_exit_1_for_its_broken_files() {
    let Some(root) = samples() else { return };
    let o = parse(&["--summary", path(&root)]);
    assert_eq!(code(&o), Some(1), "{}", stderr(&o));
    let objects = lines(&o);
    // Exactly what the library finds there, in the same order (crates/report/tests/samples.rs lists
    // it): the command adds and loses nothing.
    let limits = summary_limits();
    let expected: Vec<Value> = mtasts_report::walk_path(&root, &limits)
        .expect("walk the samples")
        .iter()
        .map(|f| mtasts_report::output::to_value(f, true))
        .collect();
    assert_eq!(objects, expected);
    assert!(
        count(&objects, "tlsrpt") >= 20,
        "TLS reports from six sources"
    );
    assert!(
        count(&objects, "dmarc") >= 45,
        "DMARC reports from six sources"
    );
    assert!(objects.iter().all(|o| o.get("records").is_none()));
    // README.md at the top of the folder holds no report, and the broken samples are errors.
    let readme = format!("{}/README.md", root.display());
    assert!(
        objects
            .iter()
            .any(|o| o["source"] == readme.as_str() && o["code"] == "unrecognized")
    );
    for broken in ["invalid_xml.xml", "invalid_utf_8.xml"] {
        let source = format!("{}/dmarc/parsedmarc/{broken}", root.display());
        let object = objects.iter().find(|o| o["source"] == source.as_str());
        assert_eq!(
            object.map(|o| &o["code"]),
            Some(&Value::from("malformed")),
            "{broken}"
        );
    }
}

fn summary_limits() -> mtasts_report::Limits {
    let mut limits = mtasts_report::Limits::default();
    limits.dmarc_mode = mtasts_proto::dmarc::Mode::Summary;
    limits
}

#[test]
fn a_good_file_exits_0_with_its_report() {
    let Some(root) = samples() else { return };
    let file = root.join("tlsrpt/mail-auth/rpt01.json");
    let o = parse(&[path(&file)]);
    assert_eq!(code(&o), Some(0), "{}", stderr(&o));
    let objects = lines(&o);
    assert_eq!(objects.len(), 1);
    assert_eq!(objects[0]["kind"], "tlsrpt");
    assert_eq!(objects[0]["source"], path(&file));
    assert_eq!(objects[0]["organization"], "Company-X");
    assert_eq!(objects[0]["policies"][0]["failure"], 303);
    assert!(stderr(&o).is_empty(), "{}", stderr(&o));
}

#[test]
fn jsonl_is_the_default_and_keys_come_in_contract_order() {
    let Some(root) = samples() else { return };
    let file = root.join("dmarc/parsedmarc/rfc9990-sample.xml");
    let default = parse(&[path(&file)]);
    let jsonl = parse(&["--jsonl", path(&file)]);
    assert_eq!(code(&default), Some(0));
    assert_eq!(default.stdout, jsonl.stdout);
    let text = String::from_utf8(default.stdout).expect("UTF-8");
    let prefix = format!(
        r#"{{"kind":"dmarc","source":{},"organization":"Sample Reporter","report_id":"#,
        Value::from(path(&file))
    );
    assert!(text.starts_with(&prefix), "{text}");
    assert!(text.contains(r#""dispositions":{"none":0,"quarantine":0,"reject":0,"pass":123},"records":[{"source_ip":"192.0.2.123""#), "{text}");
}

#[test]
fn standard_input_is_read_with_dash() {
    let Some(root) = samples() else { return };
    let bytes = std::fs::read(root.join("dmarc/parsedmarc/nice-input.xml.gz")).expect("sample");
    let o = mtasts(&["report", "parse", "--summary", "-"], Some(&bytes));
    assert_eq!(code(&o), Some(0), "{}", stderr(&o));
    let objects = lines(&o);
    assert_eq!(objects.len(), 1);
    assert_eq!(objects[0]["kind"], "dmarc");
    assert_eq!(objects[0]["source"], "-");

    let o = mtasts(&["report", "parse", "-"], Some(b"not a report"));
    assert_eq!(code(&o), Some(1));
    let objects = lines(&o);
    assert_eq!(
        (&objects[0]["source"], &objects[0]["code"]),
        (&Value::from("-"), &Value::from("unrecognized"))
    );
}

#[test]
fn json_prints_one_valid_array() {
    let Some(root) = samples() else { return };
    let good = root.join("tlsrpt/mail-auth/rpt01.json");
    let bad = root.join("dmarc/parsedmarc/invalid_xml.xml");
    let o = parse(&["--json", path(&good), path(&bad)]);
    assert_eq!(code(&o), Some(1), "{}", stderr(&o));
    let v: Value = serde_json::from_slice(&o.stdout).expect("one JSON document");
    let items = v.as_array().expect("an array");
    assert_eq!(items.len(), 2);
    assert_eq!(items[0]["kind"], "tlsrpt");
    assert_eq!(items[1]["kind"], "error");
    assert_eq!(items[1]["code"], "malformed");

    let o = parse(&["--json", "--summary", path(&root)]);
    let v: Value = serde_json::from_slice(&o.stdout).expect("one JSON document");
    let jsonl = lines(&parse(&["--summary", path(&root)]));
    assert_eq!(v, Value::Array(jsonl), "the same objects as --jsonl");

    let o = parse(&["--json", "--jsonl", path(&good)]);
    assert_eq!(code(&o), Some(2), "the two formats exclude each other");
}

#[test]
fn summary_leaves_records_out_and_keeps_the_counts() {
    let Some(root) = samples() else { return };
    let file = root.join("dmarc/parsedmarc/!large-example.com!1711897200!1711983600.xml");
    let full = lines(&parse(&[path(&file)]));
    let summary = lines(&parse(&["--summary", path(&file)]));
    assert!(full[0]["records"].as_array().is_some_and(|r| !r.is_empty()));
    assert!(summary[0].get("records").is_none());
    let mut without = full[0].clone();
    without.as_object_mut().expect("object").remove("records");
    assert_eq!(without, summary[0]);
}

#[test]
fn a_small_max_report_bytes_makes_a_gzip_too_large() {
    let Some(root) = samples() else { return };
    let file = root.join("dmarc/parsedmarc/nice-input.xml.gz");
    let o = parse(&["--max-report-bytes", "1K", path(&file)]);
    assert_eq!(code(&o), Some(1), "{}", stderr(&o));
    let objects = lines(&o);
    assert_eq!(objects.len(), 1);
    assert_eq!(objects[0]["kind"], "error");
    assert_eq!(objects[0]["code"], "too-large");
    let message = objects[0]["error"].as_str().expect("message");
    assert!(message.contains("1024 bytes"), "{message}");
    // The library names the limit; the contract's wording names the flag that raises it.
    assert!(
        message.contains("--max-report-bytes") || message.contains("max_report_bytes"),
        "{message}"
    );
    // The same file with the default limit is read.
    assert_eq!(code(&parse(&[path(&file)])), Some(0));
}

#[test]
fn a_missing_file_exits_2_and_the_others_are_still_printed() {
    let Some(root) = samples() else { return };
    let good = root.join("tlsrpt/mail-auth/rpt01.json");
    let missing = root.join("no/such/file.json");
    let o = parse(&[path(&missing), path(&good)]);
    assert_eq!(code(&o), Some(2));
    let objects = lines(&o);
    assert_eq!(objects.len(), 1);
    assert_eq!(objects[0]["organization"], "Company-X");
    let err = stderr(&o);
    assert!(err.starts_with("mtasts: error: "), "{err}");
    assert!(err.contains("no/such/file.json"), "{err}");

    // With --json the array stays valid even when nothing could be read.
    let o = parse(&["--json", path(&missing)]);
    assert_eq!(code(&o), Some(2));
    assert_eq!(
        serde_json::from_slice::<Value>(&o.stdout).ok(),
        Some(Value::Array(vec![]))
    );
}

#[test]
fn an_empty_directory_is_unrecognized() {
    let dir = tempfile::tempdir().expect("temp dir");
    let o = parse(&[path(dir.path())]);
    assert_eq!(code(&o), Some(1));
    let objects = lines(&o);
    assert_eq!(objects.len(), 1);
    assert_eq!(objects[0]["code"], "unrecognized");
    assert_eq!(objects[0]["source"], path(dir.path()));
}

#[test]
fn bad_max_report_bytes_values_are_usage_errors() {
    for value in [
        "lots",
        "-1",
        "1.5G",
        "0",
        "64X",
        "99999999999999999999999",
        "",
    ] {
        let flag = format!("--max-report-bytes={value}");
        let o = parse(&[&flag, "-"]);
        assert_eq!(code(&o), Some(2), "{value}");
        let err = stderr(&o);
        assert!(
            err.starts_with("error:") && err.contains("--max-report-bytes"),
            "{value}: {err}"
        );
        assert!(o.stdout.is_empty(), "{value}");
    }
    let o = parse(&[]);
    assert_eq!(code(&o), Some(2), "an INPUT is required");
}

#[test]
fn a_closed_pipe_ends_quietly() {
    let Some(root) = samples() else { return };
    let mut child = command(&["report", "parse", path(&root)])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run mtasts");
    drop(child.stdout.take());
    let o = child.wait_with_output().expect("wait");
    assert!(stderr(&o).is_empty(), "{}", stderr(&o));
}

/// Whatever the number of workers, the bytes printed are the same, in the order of one sequential
/// walk (the sample folder's own order is checked against the library's walk above).
#[test]
fn every_jobs_count_prints_the_same_bytes() {
    let Some(root) = samples() else { return };
    let good = root.join("tlsrpt/mail-auth/rpt01.json");
    let missing = root.join("no/such/file.json");
    let args = |jobs: &'static str| {
        vec![
            "--summary",
            "--jobs",
            jobs,
            path(&root),
            path(&missing),
            path(&good),
            path(&root),
        ]
    };
    let one = parse(&args("1"));
    assert_eq!(code(&one), Some(2), "{}", stderr(&one));
    let objects = lines(&one);
    let single = lines(&parse(&["--summary", path(&root)]));
    // The folder, then the good file, then the folder again: the missing file only on stderr.
    assert_eq!(objects.len(), 2 * single.len() + 1);
    assert_eq!(objects[..single.len()], single[..]);
    assert_eq!(objects[single.len()]["source"], path(&good));
    assert_eq!(objects[single.len() + 1..], single[..]);
    for jobs in ["2", "3", "16"] {
        let many = parse(&args(jobs));
        assert_eq!(code(&many), Some(2), "--jobs {jobs}");
        assert!(
            many.stdout == one.stdout,
            "--jobs {jobs} prints other bytes"
        );
        assert_eq!(stderr(&many), stderr(&one), "--jobs {jobs}");
    }
    let default = parse(&["--summary", "--json", path(&root), path(&good)]);
    let three = parse(&[
        "--summary",
        "--json",
        "--jobs",
        "3",
        path(&root),
        path(&good),
    ]);
    assert_eq!(code(&default), Some(1));
    assert!(
        default.stdout == three.stdout,
        "--json with the default jobs"
    );
}

/// An input that cannot be opened, between directories walked on several workers, is `mtasts: error:`
/// on standard error and the files of the directories around it are all printed, in order.
#[test]
fn an_unopenable_input_between_directories_hides_nothing() {
    let Some(root) = samples() else { return };
    let dir = tempfile::tempdir().expect("temp dir");
    let report = std::fs::read(root.join("tlsrpt/mail-auth/rpt01.json")).expect("sample");
    std::fs::write(dir.path().join("a.json"), &report).expect("write");
    std::fs::write(dir.path().join("c.json"), &report).expect("write");
    // File modes cannot make a file unreadable to root (CI's containers): a dangling symbolic link
    // cannot be opened by anyone.
    let missing = dir.path().join("b.json");
    std::os::unix::fs::symlink(dir.path().join("nowhere"), &missing).expect("symlink");
    for jobs in ["1", "4"] {
        let o = parse(&[
            "--jobs",
            jobs,
            path(dir.path()),
            path(&missing),
            path(dir.path()),
        ]);
        assert_eq!(code(&o), Some(2), "{}", stderr(&o));
        let sources: Vec<String> = lines(&o)
            .iter()
            .map(|o| o["source"].as_str().unwrap_or_default().to_owned())
            .collect();
        let a = path(&dir.path().join("a.json")).to_owned();
        let c = path(&dir.path().join("c.json")).to_owned();
        // The link below the directory is not followed (and so not an error); given directly it
        // is followed and cannot be opened.
        assert_eq!(sources, [a.as_str(), &c, &a, &c], "--jobs {jobs}");
        let err = stderr(&o);
        assert!(err.starts_with("mtasts: error: "), "{err}");
        assert!(err.contains("b.json"), "{err}");
    }
}

#[test]
fn bad_jobs_values_are_usage_errors() {
    for value in ["0", "257", "-1", "many", ""] {
        let flag = format!("--jobs={value}");
        let o = parse(&[&flag, "-"]);
        assert_eq!(code(&o), Some(2), "{value}");
        let err = stderr(&o);
        assert!(
            err.starts_with("error:") && err.contains("--jobs"),
            "{value}: {err}"
        );
        assert!(o.stdout.is_empty(), "{value}");
    }
}
