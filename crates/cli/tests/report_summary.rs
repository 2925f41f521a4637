//! `mtasts report summary`, `list` and `show` run as a domain owner runs them: real samples
//! imported with `mtasts report import` into a temporary SQLite database, then read back —
//! the numbers against what the samples hold, the verdicts, the raw bytes exactly as stored.

use std::path::Path;
use std::process::Output;

use serde_json::Value;

#[path = "support/report.rs"]
mod support;

use support::{drop_schema, output, path, postgres_schema, samples, stderr, stdout};

/// Samples with counts known by reading them (see each test).
const TLS_FAILING: &str = "tlsrpt/parsedmarc/smtp_tls.json";
const TLS_ENFORCED: &str = "tlsrpt/dmarc-report-viewer/google.json";
const DMARC_REJECT: &str = "dmarc/dmarc-report-viewer/google.xml";
const DMARC_HARDFAIL: &str = "dmarc/dmarc-report-viewer/hardfail.xml";

/// A temporary data directory with the samples named imported into its database.
struct World {
    dir: tempfile::TempDir,
}

impl World {
    fn empty() -> World {
        World {
            dir: tempfile::tempdir().expect("temp dir"),
        }
    }

    fn with(samples: &Path, files: &[&str]) -> World {
        let world = World::empty();
        let mut args = vec!["report".to_owned(), "import".to_owned()];
        args.extend(files.iter().map(|f| path(&samples.join(f)).to_owned()));
        let o = world.run(&args.iter().map(String::as_str).collect::<Vec<_>>());
        assert_eq!(
            o.status.code(),
            Some(0),
            "import: {}{}",
            stdout(&o),
            stderr(&o)
        );
        world
    }

    fn run(&self, args: &[&str]) -> Output {
        // No system configuration: only this world's database.
        let config = support::serve_config(self.dir.path());
        output(
            support::command(args).env("MTASTS_SERVE_CONFIG", config),
            None,
        )
    }

    /// Runs a command that must succeed and returns its standard output.
    fn ok(&self, args: &[&str]) -> String {
        let o = self.run(args);
        assert_eq!(
            o.status.code(),
            Some(0),
            "{args:?}: {}{}",
            stdout(&o),
            stderr(&o)
        );
        stdout(&o)
    }

    fn json(&self, args: &[&str]) -> Value {
        let text = self.ok(args);
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"))
    }
}

fn find<'a>(list: &'a Value, domain: &str) -> &'a Value {
    list.as_array()
        .expect("a list")
        .iter()
        .find(|d| d["domain"] == domain)
        .unwrap_or_else(|| panic!("{domain} not in {list}"))
}

#[test]
fn summary_json_counts_what_the_samples_hold() {
    let Some(samples) = samples() else { return };
    let w = World::with(
        &samples,
        &[TLS_FAILING, TLS_ENFORCED, DMARC_REJECT, DMARC_HARDFAIL],
    );
    let text = w.ok(&["report", "summary", "--json"]);
    assert!(
        text.starts_with("{\n  \"filter\": {"),
        "keys in the documented order: {text}"
    );
    let doc: Value = serde_json::from_str(&text).unwrap();

    // smtp_tls.json: example.com, 9 Jan 2024, 0 successful and 3 failed sessions, two
    // validation-failure details (2 + 1) at receiving MX example.com.
    let tls = find(&doc["tlsrpt"], "example.com");
    assert_eq!(tls["success"], 0);
    assert_eq!(tls["failure"], 3);
    assert_eq!(tls["policy"], "sts testing");
    assert_eq!(tls["days"][0]["day"], "2024-01-09");
    assert_eq!(tls["days"][0]["failure"], 3);
    assert_eq!(tls["failures"][0]["result"], "validation-failure");
    assert_eq!(tls["failures"][0]["receiving_mx"], "example.com");
    assert_eq!(tls["failures"][0]["organization"], "Example Inc.");
    assert_eq!(tls["failures"][0]["count"], 3);
    // The failure is on the newest day with sessions: fix it. The policy's `mx: example.com`
    // covers the MX, so the advice is about validation, not the MX list.
    assert_eq!(tls["verdict"]["level"], "fix");
    assert_eq!(tls["problems"][0]["mx_in_policy"], true);
    assert!(
        tls["verdict"]["headline"]
            .as_str()
            .unwrap()
            .starts_with("validation-failure at example.com since 9 Jan 2024: senders could not validate example.com"),
        "{}",
        tls["verdict"]["headline"]
    );

    // google.json: foo-bar.io in enforce, 1 successful session on 22 May 2025, long ago.
    let tls = find(&doc["tlsrpt"], "foo-bar.io");
    assert_eq!(
        (tls["success"].as_u64(), tls["failure"].as_u64()),
        (Some(1), Some(0))
    );
    assert_eq!(tls["policy"], "sts enforce");
    assert_eq!(
        tls["verdict"]["level"], "wait",
        "old reports say nothing about today"
    );

    // google.xml: foo-bar.io, p=reject, one message passing DKIM and SPF.
    let dmarc = find(&doc["dmarc"], "foo-bar.io");
    assert_eq!(dmarc["messages"], 1);
    assert_eq!(dmarc["dmarc_pass"], 1);
    assert_eq!(dmarc["pass_rate"], "100%");
    assert_eq!(dmarc["policy"]["p"], "reject");
    assert_eq!(dmarc["verdict"]["level"], "enforced");

    // hardfail.xml: mydomain.org, p=quarantine, one message from 42.42.42.42 failing both and
    // quarantined by the receiver.
    let dmarc = find(&doc["dmarc"], "mydomain.org");
    assert_eq!(dmarc["messages"], 1);
    assert_eq!(dmarc["dmarc_pass"], 0);
    assert_eq!(dmarc["pass_rate"], "0%");
    assert_eq!(dmarc["dispositions"]["quarantine"], 1);
    assert_eq!(dmarc["would_reject"], 1);
    assert_eq!(dmarc["sources"][0]["source_ip"], "42.42.42.42");
    assert_eq!(dmarc["sources"][0]["header_from"], "mydomain.org");
    assert_eq!(dmarc["sources"][0]["messages"], 1);
    assert_eq!(dmarc["sources"][0]["dkim_pass"], 0);
    assert_eq!(doc["errors"], Value::Array(Vec::new()));
}

#[test]
fn summary_tables_show_days_failures_sources_and_verdicts() {
    let Some(samples) = samples() else { return };
    let w = World::with(&samples, &[TLS_FAILING, DMARC_HARDFAIL]);
    let text = w.ok(&["report", "summary"]);
    assert!(
        !text.contains('\x1b'),
        "no colour when not a terminal:\n{text}"
    );
    for expected in [
        "example.com — TLS reports (policy sts testing)",
        "  FIX validation-failure at example.com since 9 Jan 2024",
        "Day (UTC)",
        "2024-01-09",
        "validation-failure  example.com   Example Inc.",
        "mydomain.org — DMARC reports (p=quarantine)",
        "42.42.42.42",
        "p=quarantine would have sent 1 message to spam and p=reject would have refused 1 message; receivers quarantined 1 and rejected 0.",
    ] {
        assert!(
            text.contains(expected),
            "{expected:?} missing from:\n{text}"
        );
    }
    // --color always colours even into a pipe.
    let coloured = w.ok(&["report", "summary", "--color", "always"]);
    assert!(coloured.contains("\x1b[1;31mFIX\x1b[0m"), "{coloured}");
}

#[test]
fn summary_filters_by_kind_domain_and_dates() {
    let Some(samples) = samples() else { return };
    let w = World::with(&samples, &[TLS_FAILING, TLS_ENFORCED, DMARC_HARDFAIL]);
    let doc = w.json(&["report", "summary", "--json", "--kind", "dmarc"]);
    assert_eq!(doc["tlsrpt"].as_array().unwrap().len(), 0);
    assert_eq!(doc["dmarc"].as_array().unwrap().len(), 1);
    assert_eq!(doc["filter"]["kind"], "dmarc");

    let doc = w.json(&["report", "summary", "--json", "--domain", "Example.COM."]);
    assert_eq!(doc["tlsrpt"].as_array().unwrap().len(), 1);
    assert_eq!(doc["tlsrpt"][0]["domain"], "example.com");
    // A domain asked for by name gets a verdict even without reports.
    assert_eq!(doc["dmarc"][0]["verdict"]["level"], "no-data");

    // 9 Jan 2024 only, then the day after it: the report is in, then out.
    let doc = w.json(&[
        "report",
        "summary",
        "--json",
        "--kind",
        "tlsrpt",
        "--since",
        "2024-01-09",
        "--until",
        "2024-01-09",
    ]);
    assert_eq!(doc["tlsrpt"].as_array().unwrap().len(), 1, "{doc}");
    assert_eq!(doc["filter"]["until"], "2024-01-10T00:00:00Z");
    let doc = w.json(&[
        "report",
        "summary",
        "--json",
        "--kind",
        "tlsrpt",
        "--since",
        "2024-01-10",
        "--until",
        "2024-12-31",
    ]);
    assert_eq!(doc["tlsrpt"].as_array().unwrap().len(), 0, "{doc}");
    let text = w.ok(&[
        "report",
        "summary",
        "--since",
        "7d",
        "--kind",
        "tlsrpt",
        "--domain",
        "nothing.example",
    ]);
    assert!(
        text.contains("no TLS reports for nothing.example"),
        "{text}"
    );
}

#[test]
fn bad_dates_and_kinds_are_usage_errors() {
    let w = World::empty();
    for args in [
        ["report", "summary", "--since", "yesterday"],
        ["report", "summary", "--until", "2026-02-30"],
        ["report", "summary", "--kind", "arf"],
        ["report", "list", "--since", "14"],
    ] {
        let o = w.run(&args);
        assert_eq!(o.status.code(), Some(2), "{args:?}");
        assert!(stderr(&o).starts_with("error:"), "{args:?}: {}", stderr(&o));
    }
    let o = w.run(&["report", "list", "--limit", "0"]);
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn an_empty_database_says_so_and_exits_0() {
    let w = World::empty();
    let o = w.run(&["report", "summary"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("No reports stored yet"),
        "{}",
        stderr(&o)
    );
    assert!(
        !w.dir.path().join("data/serve.db").exists(),
        "reading must not create the database"
    );
    let doc = w.json(&["report", "summary", "--json"]);
    assert_eq!(doc["tlsrpt"], Value::Array(Vec::new()));
    assert_eq!(doc["dmarc"], Value::Array(Vec::new()));
    assert_eq!(
        w.json(&["report", "list", "--json"]),
        Value::Array(Vec::new())
    );
    let o = w.run(&["report", "show", "1"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("no stored report has id 1"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn list_shows_each_report_once_with_its_duplicates() {
    let Some(samples) = samples() else { return };
    let w = World::with(&samples, &[TLS_FAILING, DMARC_HARDFAIL]);
    // The same TLS report again: stored once, counted as a duplicate.
    let o = w.run(&["report", "import", path(&samples.join(TLS_FAILING))]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let text = w.ok(&["report", "list", "--json"]);
    assert!(
        text.starts_with("[\n  {\n    \"id\": "),
        "keys in the documented order: {text}"
    );
    let list: Value = serde_json::from_str(&text).unwrap();
    let rows = list.as_array().unwrap();
    assert_eq!(rows.len(), 2);
    let tls = rows.iter().find(|r| r["kind"] == "tlsrpt").unwrap();
    assert_eq!(tls["organization"], "Example Inc.");
    assert_eq!(tls["report_id"], "2024-01-09T00:00:00Z_example.com");
    assert_eq!(tls["begin"], "2024-01-09T00:00:00Z");
    assert_eq!(tls["end"], "2024-01-09T23:59:59Z");
    assert_eq!(tls["domains"], serde_json::json!(["example.com"]));
    assert_eq!(
        (tls["success"].as_u64(), tls["failure"].as_u64()),
        (Some(0), Some(3))
    );
    assert_eq!(tls["duplicates"], 1);
    let dmarc = rows.iter().find(|r| r["kind"] == "dmarc").unwrap();
    assert_eq!(dmarc["organization"], "reporting org");
    assert_eq!(dmarc["report_id"], "abcdef");
    assert_eq!(dmarc["begin"], "2024-09-23T00:00:00Z");
    assert_eq!(dmarc["duplicates"], 0);
    // Newest first: the DMARC report (Sep 2024) before the TLS one (Jan 2024).
    assert_eq!(rows[0]["kind"], "dmarc");

    let only = w.json(&["report", "list", "--json", "--kind", "tlsrpt"]);
    assert_eq!(only.as_array().unwrap().len(), 1);
    let one = w.json(&["report", "list", "--json", "--limit", "1"]);
    assert_eq!(one.as_array().unwrap().len(), 1);
    let none = w.json(&["report", "list", "--json", "--since", "2025-01-01"]);
    assert_eq!(none.as_array().unwrap().len(), 0);
    let none = w.json(&["report", "list", "--json", "--domain", "other.example"]);
    assert_eq!(none.as_array().unwrap().len(), 0);

    let text = w.ok(&["report", "list"]);
    for expected in [
        "ID",
        "Example Inc.",
        "2024-01-09 00:00",
        "2024-01-09 23:59",
        "example.com",
        "reporting org",
        "mydomain.org",
    ] {
        assert!(
            text.contains(expected),
            "{expected:?} missing from:\n{text}"
        );
    }
}

#[test]
fn show_prints_the_normalized_report_and_the_raw_bytes() {
    let Some(samples) = samples() else { return };
    let w = World::with(&samples, &[TLS_FAILING, DMARC_HARDFAIL]);
    let list = w.json(&["report", "list", "--json"]);
    for row in list.as_array().unwrap() {
        let id = row["id"].as_i64().unwrap().to_string();
        let text = w.ok(&["report", "show", &id]);
        assert!(
            text.starts_with("{\n  \"kind\": "),
            "pretty, contract order first: {text}"
        );
        let shown: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(shown["kind"], row["kind"]);
        assert_eq!(shown["organization"], row["organization"]);
        assert_eq!(shown["report_id"], row["report_id"]);

        let sample = if row["kind"] == "tlsrpt" {
            TLS_FAILING
        } else {
            DMARC_HARDFAIL
        };
        let o = w.run(&["report", "show", &id, "--raw"]);
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
        assert_eq!(
            o.stdout,
            std::fs::read(samples.join(sample)).unwrap(),
            "{sample} byte for byte"
        );
    }
    let tls = w.json(&[
        "report",
        "show",
        &list[1]["id"].as_i64().unwrap().to_string(),
    ]);
    assert_eq!(
        tls["policies"][0]["failures"][0]["result"],
        "validation-failure"
    );
    assert_eq!(tls["policies"][0]["failures"][0]["count"], 2);

    let o = w.run(&["report", "show", "999999"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("no stored report has id 999999"));
}

#[test]
fn postgresql_answers_as_sqlite_does() {
    let Some(samples) = samples() else { return };
    let Some(url) = postgres_schema("summary_") else {
        return;
    };
    let files = [TLS_FAILING, TLS_ENFORCED, DMARC_REJECT, DMARC_HARDFAIL];
    let sqlite = World::with(&samples, &files);
    let pg = World::empty();
    let mut import = vec![
        "report".to_owned(),
        "import".to_owned(),
        "--database".to_owned(),
        url.clone(),
    ];
    import.extend(files.iter().map(|f| path(&samples.join(f)).to_owned()));
    pg.ok(&import.iter().map(String::as_str).collect::<Vec<_>>());

    let mut on_sqlite = sqlite.json(&["report", "summary", "--json"]);
    let mut on_pg = pg.json(&["report", "summary", "--json", "--database", &url]);
    on_sqlite["now"] = Value::Null;
    on_pg["now"] = Value::Null;
    assert_eq!(on_pg, on_sqlite);
    let pg_list = pg.json(&["report", "list", "--json", "--database", &url]);
    assert_eq!(pg_list.as_array().unwrap().len(), 4);
    let id = pg_list
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["report_id"] == "abcdef")
        .unwrap()["id"]
        .to_string();
    let o = pg.run(&["report", "show", &id, "--raw", "--database", &url]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(
        o.stdout,
        std::fs::read(samples.join(DMARC_HARDFAIL)).unwrap()
    );
    assert!(
        !pg.dir.path().join("data/serve.db").exists(),
        "nothing went to SQLite"
    );
    drop_schema(&url);
}
