//! docs/serve.md's "Try it end to end", run as written (its script blocks, by the runner
//! docs.rs uses), then checked from outside: the reports its files hold — posted with curl as
//! JSON and gzip, one of them twice, mailed with swaks over STARTTLS, imported from an mbox —
//! are each counted once in the API's daily numbers, breakdowns and readiness; the
//! dashboard pages of the domain show the same totals, the charts and the readiness
//! headline; the second tenant gets 404s and an empty list.
//!
//! What was sent is read from the files the walkthrough left (every `*.json`, `*.json.gz`
//! and `*.xml` it wrote), not copied here, so the numbers in the document and the checks
//! cannot drift apart. After the script (which stops its `serve`), `serve` is started again on
//! the same data directory: what was acknowledged is still there.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use mtasts_testkit::services::{self, Service};
use serde_json::Value;

#[path = "support/report.rs"]
mod report_support;
#[path = "support/script.rs"]
mod script;
#[path = "support/serve.rs"]
mod serve_process;

/// The names the walkthrough uses.
const ZONE: &str = "mta-sts.provider.example";
const DOMAIN: &str = "example.com";
const TENANT: &str = "acme";
const OTHER_TENANT: &str = "globex";

/// One TLS report the walkthrough sent: organization, successful and failed sessions.
#[derive(Debug, Clone, PartialEq, Eq)]
struct SentTls {
    organization: String,
    success: u64,
    failure: u64,
}

/// The TLS reports in the walkthrough's files, by report id (a report in two files — JSON
/// and gzip — is one report), and the DMARC messages and how many passed.
fn sent(dir: &Path) -> (BTreeMap<String, SentTls>, (u64, u64)) {
    let mut tls = BTreeMap::new();
    let mut dmarc = (0, 0);
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_str().unwrap().to_owned();
        let text = if name.ends_with(".json.gz") {
            let out = Command::new("gzip").arg("-dc").arg(&path).output().unwrap();
            assert!(out.status.success(), "gzip -dc {name}");
            String::from_utf8(out.stdout).unwrap()
        } else if name.ends_with(".json") || name.ends_with(".xml") {
            std::fs::read_to_string(&path).unwrap()
        } else {
            continue;
        };
        if name.ends_with(".xml") {
            let (messages, pass) = dmarc_counts(&text);
            dmarc.0 += messages;
            dmarc.1 += pass;
            continue;
        }
        let report: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
        let sum = |key: &str| {
            report["policies"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| p["summary"][key].as_u64().unwrap())
                .sum()
        };
        let one = SentTls {
            organization: report["organization-name"].as_str().unwrap().to_owned(),
            success: sum("total-successful-session-count"),
            failure: sum("total-failure-session-count"),
        };
        let id = report["report-id"].as_str().unwrap().to_owned();
        if let Some(before) = tls.insert(id, one.clone()) {
            assert_eq!(before, one, "{name}: one report id, two reports");
        }
    }
    (tls, dmarc)
}

/// Messages of a DMARC aggregate report and those that passed (DKIM or SPF passed as
/// evaluated), read from its `<record>` elements.
fn dmarc_counts(xml: &str) -> (u64, u64) {
    let inner = |text: &str, tag: &str| -> Option<String> {
        let start = text.find(&format!("<{tag}>"))? + tag.len() + 2;
        let end = text[start..].find(&format!("</{tag}>"))? + start;
        Some(text[start..end].trim().to_owned())
    };
    let mut totals = (0, 0);
    for record in xml.split("<record>").skip(1) {
        let count: u64 = inner(record, "count").unwrap().parse().unwrap();
        let evaluated = inner(record, "policy_evaluated").unwrap();
        let passed = ["dkim", "spf"]
            .iter()
            .any(|tag| inner(&evaluated, tag).as_deref() == Some("pass"));
        totals.0 += count;
        if passed {
            totals.1 += count;
        }
    }
    totals
}

/// `mtasts admin token create --tenant TENANT` on the walkthrough's database: an owner token.
fn owner_token(data: &Path, tenant: &str) -> String {
    let data = report_support::path(data);
    let out = report_support::mtasts(
        &[
            "admin",
            "token",
            "create",
            "--tenant",
            tenant,
            "--data-dir",
            data,
        ],
        None,
    );
    assert!(out.status.success(), "{}", report_support::stderr(&out));
    report_support::stdout(&out).trim().to_owned()
}

/// An HTTP client with a cookie jar of its own (real curl, like the walkthrough).
struct Client {
    base: String,
    jar: std::path::PathBuf,
}

impl Client {
    /// `curl ARGS… URL`: the status and the body.
    fn request(&self, args: &[&str], path: &str) -> (u16, String) {
        let out = Command::new("curl")
            .args(["-sS", "-b"])
            .arg(&self.jar)
            .arg("-c")
            .arg(&self.jar)
            .args(args)
            .args(["-w", "\n%{http_code}"])
            .arg(format!("{}{path}", self.base))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "curl {path}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8(out.stdout).unwrap();
        let (body, status) = text.rsplit_once('\n').unwrap();
        (status.parse().unwrap(), body.to_owned())
    }

    /// An API call with `token`: the status and the JSON answer (`null` when there is none).
    fn api(&self, token: &str, path: &str) -> (u16, Value) {
        let (status, body) = self.request(&["-H", &format!("Authorization: Bearer {token}")], path);
        (status, serde_json::from_str(&body).unwrap_or(Value::Null))
    }

    /// Logs in to the dashboard with `token` (no e-mail), as the walkthrough tells.
    fn log_in(&self, token: &str) {
        let (status, form) = self.request(&[], "/login");
        assert_eq!(status, 200, "{form}");
        let csrf = form
            .split("name=\"csrf\" value=\"")
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .expect("the login form's csrf field");
        let (status, page) = self.request(
            &[
                "--data-urlencode",
                "email=",
                "--data-urlencode",
                &format!("password={token}"),
                "--data-urlencode",
                &format!("csrf={csrf}"),
            ],
            "/login",
        );
        assert_eq!(status, 303, "{page}");
    }
}

fn u64_at(value: &Value, key: &str) -> u64 {
    value[key]
        .as_u64()
        .unwrap_or_else(|| panic!("no {key} in {value}"))
}

/// Text as the dashboard writes it into HTML.
fn escaped(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

#[test]
fn the_walkthrough_reports_are_counted_once_shown_alike_and_seen_by_their_tenant_only() {
    if !services::command_or_skip(Service::Curl, "curl", &["--version"])
        || !services::command_or_skip(Service::Swaks, "swaks", &["--version"])
    {
        return;
    }
    let doc = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/serve.md");
    let text = std::fs::read_to_string(&doc).unwrap();
    let walkthrough = script::script("docs/serve.md", &text).expect("docs/serve.md has a script");
    let ran = script::run(&walkthrough).unwrap_or_else(|e| panic!("the walkthrough: {e}"));
    let (tls, (dmarc_messages, dmarc_pass)) = sent(ran.dir.path());
    // What the walkthrough promises: four reports from four organizations, a DMARC report.
    assert_eq!(tls.len(), 4, "{tls:?}");
    assert!(dmarc_messages > dmarc_pass && dmarc_pass > 0);
    let success: u64 = tls.values().map(|r| r.success).sum();
    let failure: u64 = tls.values().map(|r| r.failure).sum();

    let data = ran.dir.path().join("try");
    let (mut serve, addrs) = serve_process::start(ZONE, &ran.ip.to_string(), &data);
    let owner = owner_token(&data, TENANT);
    let other = owner_token(&data, OTHER_TENANT);
    let client = |name: &str| Client {
        base: format!("http://{}", addrs.api),
        jar: ran.dir.path().join(format!("{name}.cookies")),
    };
    let acme = client(TENANT);
    let globex = client(OTHER_TENANT);

    // The API: totals, every day of the window, by organization, each report once.
    let path = format!("/api/v1/domains/{DOMAIN}/reports/tls?days=30");
    let (status, daily) = acme.api(&owner, &path);
    assert_eq!(status, 200, "{daily}");
    assert_eq!(u64_at(&daily, "success"), success, "{daily}");
    assert_eq!(u64_at(&daily, "failure"), failure, "{daily}");
    let days = daily["days"].as_array().unwrap();
    assert_eq!(days.len(), 30);
    let day_sum = |key: &str| days.iter().map(|d| u64_at(d, key)).sum::<u64>();
    assert_eq!((day_sum("success"), day_sum("failure")), (success, failure));
    let mut by_org: Vec<(String, u64, u64, u64)> = daily["by_organization"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| {
            (
                o["organization"].as_str().unwrap().to_owned(),
                u64_at(o, "reports"),
                u64_at(o, "success"),
                u64_at(o, "failure"),
            )
        })
        .collect();
    by_org.sort();
    let mut expected: Vec<_> = tls
        .values()
        .map(|r| (r.organization.clone(), 1, r.success, r.failure))
        .collect();
    expected.sort();
    assert_eq!(by_org, expected);
    let reports = daily["reports"].as_array().unwrap();
    assert_eq!(reports.len(), tls.len(), "{daily}");
    // The report posted twice is stored once, its duplicate counted.
    let duplicates: u64 = reports.iter().map(|r| u64_at(r, "duplicates")).sum();
    assert_eq!(duplicates, 1, "{daily}");
    // Every channel delivered: HTTPS, SMTP and the imported mailbox.
    let sources: Vec<&str> = reports
        .iter()
        .map(|r| r["source"].as_str().unwrap())
        .collect();
    for channel in ["https:", "smtp:", "reports.mbox"] {
        assert!(
            sources.iter().any(|s| s.starts_with(channel)),
            "{channel}: {sources:?}"
        );
    }

    let (status, readiness) = acme.api(&owner, &format!("/api/v1/domains/{DOMAIN}/readiness"));
    assert_eq!(status, 200, "{readiness}");
    let verdict = &readiness["tls"];
    assert_eq!(u64_at(verdict, "reports"), tls.len() as u64, "{verdict}");
    assert_eq!(u64_at(verdict, "organizations"), tls.len() as u64);
    assert_eq!(u64_at(verdict, "failures"), failure);
    // Failures on the newest reported day: fix first, never "enforce is safe".
    assert_eq!(verdict["level"], "fix", "{verdict}");
    assert_eq!(verdict["enforce_safe"], false);
    assert_eq!(readiness["dmarc"]["published_p"], "none", "{readiness}");

    let (status, dmarc) = acme.api(&owner, &format!("/api/v1/domains/{DOMAIN}/reports/dmarc"));
    assert_eq!(status, 200, "{dmarc}");
    assert_eq!(
        (u64_at(&dmarc, "messages"), u64_at(&dmarc, "pass")),
        (dmarc_messages, dmarc_pass),
        "{dmarc}"
    );

    // The dashboard shows the same numbers, the charts and the advice.
    acme.log_in(&owner);
    let (status, page) = acme.request(&[], &format!("/domains/{DOMAIN}/reports"));
    assert_eq!(status, 200, "{page}");
    let totals = format!("{success} successful and {failure} failed sessions in the last 30 days");
    assert!(page.contains(&totals), "{totals}:\n{page}");
    assert!(page.contains("<svg"), "no chart:\n{page}");
    let headline = verdict["headline"].as_str().unwrap();
    assert!(page.contains(&escaped(headline)), "{headline}:\n{page}");
    let (status, page) = acme.request(&[], &format!("/domains/{DOMAIN}/dmarc"));
    assert_eq!(status, 200, "{page}");
    let totals =
        format!("{dmarc_messages} messages in the last 30 days, {dmarc_pass} passed DMARC");
    assert!(page.contains(&totals), "{totals}:\n{page}");

    // The second tenant sees none of it, in the API and in the dashboard.
    let (status, _) = globex.api(&other, &path);
    assert_eq!(status, 404);
    let (status, list) = globex.api(&other, "/api/v1/reports");
    assert_eq!(status, 200, "{list}");
    assert_eq!(list["reports"], serde_json::json!([]), "{list}");
    for report in reports {
        let (status, _) = globex.api(&other, &format!("/api/v1/reports/{}", report["id"]));
        assert_eq!(status, 404, "{report}");
    }
    globex.log_in(&other);
    let (status, _) = globex.request(&[], &format!("/domains/{DOMAIN}/reports"));
    assert_eq!(status, 404);

    let _ = Command::new("kill").arg(serve.id().to_string()).status();
    assert!(serve.wait().unwrap().success());
}
