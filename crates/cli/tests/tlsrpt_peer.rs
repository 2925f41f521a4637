//! The judged comparison of issue 12: the same libtlsrpt datagrams (several domains, every
//! policy type, successes, every failure code, odd characters; `tlsrpt_support::sequence`) go
//! to `mtasts resolver` and to sys4's tlsrpt-reporter 0.6.0 (PyPI): its `tlsrpt-collectd` on a
//! socket of its own, its development day roll-over (SIGUSR2), then its `tlsrpt-reportd`
//! running its `tlsrpt-fetcher` and writing each report it would send into a folder
//! (`debug_send_file_dest`). Our reports come from `mtasts tlsrpt report --day … --out DIR`.
//!
//! Both must carry the same reports (recipient domain and TLSRPT record), policies, counts and
//! failure details. Where the peer deviates from RFC 8460 the comparison names it
//! ([`PeerDeviation`]) and holds ours to the RFC instead; ours must also validate against the
//! RFC 8460 schema (`assets/tlsrpt-report.schema.json`, with the venv's `jsonschema`).
//!
//! The peer lives in a virtual environment (`/opt/mtasts-tlsrpt-peer`, or
//! `MTASTS_TLSRPT_PEER`), installed by `.ci/run`; without it the test is skipped, except under
//! `MTASTS_REQUIRE_SERVICES=1`, where it fails.

#[path = "support/tlsrpt.rs"]
mod tlsrpt_support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use mtasts_testkit::services::{self, Service};
use serde_json::{Value, json};
use tlsrpt_support::{Daemon, Resolver};

/// The peer's virtual environment, or `None` after skipping.
fn peer_venv() -> Option<PathBuf> {
    let dir = PathBuf::from(
        std::env::var("MTASTS_TLSRPT_PEER").unwrap_or_else(|_| "/opt/mtasts-tlsrpt-peer".into()),
    );
    for tool in [
        "tlsrpt-collectd",
        "tlsrpt-reportd",
        "tlsrpt-fetcher",
        "python3",
    ] {
        if !dir.join("bin").join(tool).is_file() {
            services::skip(
                Service::TlsrptReporter,
                &format_args!(
                    "{} is missing (python3 -m venv {venv} && {venv}/bin/pip install tlsrpt-reporter==0.6.0 jsonschema)",
                    dir.join("bin").join(tool).display(),
                    venv = dir.display()
                ),
            );
            return None;
        }
    }
    Some(dir)
}

/// Runs the venv's Python on `script` with `args`; returns standard output.
fn python(venv: &Path, script: &str, args: &[&str]) -> String {
    let out = Command::new(venv.join("bin/python3"))
        .arg("-c")
        .arg(script)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run the venv's python3");
    assert!(
        out.status.success(),
        "python3 -c {script:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// The sessions the peer's collectd database holds (sum of `cntrtotal`), 0 while it has none.
fn peer_total(venv: &Path, db: &Path) -> u64 {
    if !db.exists() {
        return 0;
    }
    python(
        venv,
        "import sqlite3,sys\ntry:\n print(sqlite3.connect(sys.argv[1]).execute('select coalesce(sum(cntrtotal),0) from finalresults').fetchone()[0])\nexcept sqlite3.OperationalError:\n print(0)",
        &[db.to_str().unwrap()],
    )
    .trim()
    .parse()
    .unwrap()
}

fn wait_until(what: &str, limit: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !done() {
        assert!(Instant::now() < deadline, "{what} within {limit:?}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The peer's reports for the sequence: (recipient domain, record) → report JSON. Runs
/// collectd, sends the datagrams, rolls its day over, runs reportd until it has written a
/// report for every destination.
fn peer_reports(venv: &Path, dir: &Path) -> BTreeMap<(String, String), Value> {
    let bin = venv.join("bin");
    let socket = dir.join("peer.sock");
    let db = dir.join("collectd.sqlite");
    let mut collectd = Daemon(
        Command::new(bin.join("tlsrpt-collectd"))
            .arg("--storage")
            .arg(format!("sqlite://{}", db.display()))
            .arg("--socketname")
            .arg(&socket)
            .args(["--sockettimeout", "1", "--max_uncommited_datagrams", "1"])
            .arg("--logfilename")
            .arg(dir.join("collectd.log"))
            .args(["--log_level", "info"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("collectd.stderr")).unwrap())
            .spawn()
            .expect("start tlsrpt-collectd"),
    );
    tlsrpt_support::wait_for_path(&socket, &mut collectd.0, "tlsrpt-collectd");
    // collectd rolls over once at start (it creates `<db>.yesterday`); wait for the fresh
    // database before sending.
    wait_until(
        "tlsrpt-collectd set up its databases",
        Duration::from_secs(30),
        || db.with_extension("sqlite.yesterday").exists() && db.exists(),
    );
    let sessions = tlsrpt_support::sequence();
    tlsrpt_support::send_all(&socket, &sessions);
    let expected = tlsrpt_support::policy_count(&sessions);
    wait_until(
        "tlsrpt-collectd committed every datagram",
        Duration::from_secs(60),
        || peer_total(venv, &db) == expected,
    );
    // The development roll-over: today's results become yesterday's, in `<db>.yesterday`,
    // which is what its fetcher reads.
    let status = Command::new("kill")
        .args(["-USR2", &collectd.0.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let yesterday = db.with_extension("sqlite.yesterday");
    wait_until(
        "tlsrpt-collectd rolled its day over (SIGUSR2)",
        Duration::from_secs(30),
        || peer_total(venv, &yesterday) == expected,
    );

    let out = dir.join("peer-out");
    std::fs::create_dir(&out).unwrap();
    let fetcher = format!(
        "{} --storage sqlite://{}",
        bin.join("tlsrpt-fetcher").display(),
        db.display()
    );
    let mut reportd = Daemon(
        Command::new(bin.join("tlsrpt-reportd"))
            .arg("--dbname")
            .arg(dir.join("reportd.sqlite"))
            .arg("--fetchers")
            .arg(&fetcher)
            .args([
                "--organization_name",
                "mtasts test sender",
                "--contact_info",
                "tlsrpt@sender.test",
                "--sender_address",
                "tlsrpt@sender.test",
            ])
            .arg("--debug_send_file_dest")
            .arg(&out)
            // Nothing leaves the machine: every delivery "succeeds" without sending.
            .args(["--http_script", "true", "--sendmail_script", "true"])
            .args(["--spread_out_delivery", "1", "--interval_main_loop", "1"])
            .args(["--min_wait_delivery", "0", "--max_wait_delivery", "1"])
            .args(["--min_wait_domainlist", "0", "--max_wait_domainlist", "1"])
            .args([
                "--min_wait_domaindetails",
                "0",
                "--max_wait_domaindetails",
                "1",
            ])
            .arg("--logfilename")
            .arg(dir.join("reportd.log"))
            .args(["--log_level", "info"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("reportd.stderr")).unwrap())
            .spawn()
            .expect("start tlsrpt-reportd"),
    );
    let record_of_rua = tlsrpt_support::record_of_rua();
    let groups = tlsrpt_support::expected_groups();
    let destinations: usize = groups
        .iter()
        .map(|(_, record)| record_of_rua.values().filter(|r| *r == record).count())
        .sum();
    let report_files = || -> Vec<PathBuf> {
        let mut files: Vec<_> = std::fs::read_dir(&out)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| {
                let name = p.file_name().unwrap().to_str().unwrap();
                name.starts_with("testreport-") && !name.contains("THE_EMAIL_TO")
            })
            .collect();
        files.sort();
        files
    };
    wait_until(
        "tlsrpt-reportd wrote a report for every destination",
        Duration::from_secs(90),
        || report_files().len() >= destinations,
    );
    let _ = Command::new("kill")
        .args(["-TERM", &reportd.0.id().to_string()])
        .status();
    let _ = reportd.0.wait();

    let mut reports = BTreeMap::new();
    for path in report_files() {
        // testreport-<domain>-<n>-<destination with / as _>.json
        let name = path.file_name().unwrap().to_str().unwrap().to_owned();
        let rest = name
            .strip_prefix("testreport-")
            .and_then(|n| n.strip_suffix(".json"))
            .unwrap();
        let at = rest
            .find("-mailto:")
            .or_else(|| rest.find("-https:"))
            .unwrap_or_else(|| panic!("no destination in the peer's file name {name}"));
        let destination = &rest[at + 1..];
        let (record, rua) = record_of_rua
            .iter()
            .find(|(rua, _)| rua.replace('/', "_") == destination)
            .map(|(rua, record)| (*record, rua))
            .unwrap_or_else(|| panic!("{name}: a destination not in the sequence"));
        let domain = rest[..at].rsplit_once('-').unwrap().0.to_owned();
        let json: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        // A record with two ruas gets the same report twice.
        if let Some(previous) = reports.insert((domain.clone(), record.to_owned()), json.clone()) {
            assert_eq!(
                previous["policies"], json["policies"],
                "the peer sent different reports of {domain} to {rua}"
            );
        }
    }
    reports
}

/// Where tlsrpt-reporter 0.6.0 departs from RFC 8460, found by this comparison; ours follows
/// the RFC there.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum PeerDeviation {
    /// A policy without a policy domain in the datagram (Postfix's no-policy-found) has no
    /// `policy-domain` in the peer's report (its issue #51); RFC 8460 §4.4 requires it: the
    /// recipient domain.
    PolicyDomainMissing,
    /// Failure code 901 (libtlsrpt's "internal") has no `result-type` in the peer's report
    /// (its code table stops at 306); RFC 8460 §4.4 requires one. Ours: `validation-failure`
    /// (§4.3.3's bucket for failures no other type names) with the failure reason code
    /// `libtlsrpt-code-901` unless the MTA gave one.
    ResultTypeMissing,
}

/// A policy of a report, normalised for comparison: the policy object, the two counts, and
/// the failure details as a multiset (canonical JSON without the count → count).
type Normalised = BTreeMap<String, (u64, u64, BTreeMap<String, u64>)>;

fn canonical(v: &Value) -> String {
    // serde_json's Map is a BTreeMap here (no preserve_order), so keys come out sorted.
    serde_json::to_string(v).unwrap()
}

/// `report`'s policies normalised. For the peer, the deviations are repaired as RFC 8460
/// wants (as `mtasts_proto::tlsrpt::datagram` reads libtlsrpt) and recorded in `seen`.
fn normalise(
    report: &Value,
    domain: &str,
    mut seen: Option<&mut BTreeSet<PeerDeviation>>,
) -> Normalised {
    let mut out = Normalised::new();
    for p in report["policies"].as_array().expect("policies") {
        let mut policy = p["policy"].clone();
        // An empty list and a missing one say the same (RFC 8460 §4.4 makes both optional).
        for list in ["policy-string", "mx-host"] {
            if policy[list].as_array().is_some_and(Vec::is_empty) {
                policy.as_object_mut().unwrap().remove(list);
            }
        }
        if policy.get("policy-domain").is_none()
            && let Some(seen) = seen.as_mut()
        {
            seen.insert(PeerDeviation::PolicyDomainMissing);
            policy["policy-domain"] = json!(domain);
        }
        let summary = &p["summary"];
        let successes = summary["total-successful-session-count"].as_u64().unwrap();
        let failures = summary["total-failure-session-count"].as_u64().unwrap();
        let mut details = BTreeMap::new();
        for d in p["failure-details"].as_array().into_iter().flatten() {
            let mut d = d.clone();
            let count = d["failed-session-count"].as_u64().unwrap();
            d.as_object_mut().unwrap().remove("failed-session-count");
            // Only code 901 lacks a result type in the peer's reports; ours files it under
            // validation-failure and keeps the code as the failure reason code when the MTA
            // gave none.
            if d.get("result-type").is_none()
                && let Some(seen) = seen.as_mut()
            {
                seen.insert(PeerDeviation::ResultTypeMissing);
                d["result-type"] = json!("validation-failure");
                if d.get("failure-reason-code").is_none() {
                    d["failure-reason-code"] = json!("libtlsrpt-code-901");
                }
            }
            *details.entry(canonical(&d)).or_insert(0) += count;
        }
        let entry = out
            .entry(canonical(&policy))
            .or_insert((0, 0, BTreeMap::new()));
        entry.0 += successes;
        entry.1 += failures;
        for (k, v) in details {
            *entry.2.entry(k).or_insert(0) += v;
        }
    }
    out
}

/// Validates `report` against the RFC 8460 schema with the venv's `jsonschema`; returns the
/// errors.
fn schema_errors(venv: &Path, report: &Value) -> Vec<String> {
    let schema =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/assets/tlsrpt-report.schema.json");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("report.json");
    std::fs::write(&file, serde_json::to_vec(report).unwrap()).unwrap();
    let out = python(
        venv,
        "import json,sys,jsonschema\n\
         s=json.load(open(sys.argv[1]))\n\
         jsonschema.Draft202012Validator.check_schema(s)\n\
         v=jsonschema.Draft202012Validator(s)\n\
         for e in v.iter_errors(json.load(open(sys.argv[2]))): print('/'.join(map(str,e.absolute_path)) + ': ' + e.message)",
        &[schema.to_str().unwrap(), file.to_str().unwrap()],
    );
    out.lines().map(str::to_owned).collect()
}

#[test]
fn reports_match_sys4_tlsrpt_reporter_and_the_rfc_schema() {
    let Some(venv) = peer_venv() else { return };
    let day = tlsrpt_support::day_with_margin(Duration::from_secs(180));

    // Ours.
    let resolver = Resolver::start("", "", "");
    let sessions = tlsrpt_support::sequence();
    tlsrpt_support::send_all(&resolver.socket, &sessions);
    resolver.wait_for_results(tlsrpt_support::policy_count(&sessions));
    let out = resolver.dir.path().join("out");
    resolver.mtasts_ok(&[
        "tlsrpt",
        "report",
        "--day",
        &day,
        "--out",
        out.to_str().unwrap(),
    ]);
    let ours = tlsrpt_support::read_reports(&out);

    // The peer's.
    let peer_dir = tempfile::tempdir().unwrap();
    let theirs = peer_reports(&venv, peer_dir.path());

    let groups = tlsrpt_support::expected_groups();
    let our_groups: BTreeSet<(String, String)> = ours
        .iter()
        .map(|r| (r.domain.clone(), r.record.clone()))
        .collect();
    let their_groups: BTreeSet<(String, String)> = theirs.keys().cloned().collect();
    let wanted: BTreeSet<(String, String)> = groups
        .iter()
        .map(|(d, r)| (d.clone(), (*r).to_owned()))
        .collect();
    assert_eq!(their_groups, wanted, "the peer's reports");
    assert_eq!(our_groups, wanted, "our reports (index.json)");

    let mut deviations = BTreeSet::new();
    for report in &ours {
        let key = (report.domain.clone(), report.record.clone());
        let peer = &theirs[&key];
        let mine = normalise(&report.json, &report.domain, None);
        let theirs = normalise(peer, &report.domain, Some(&mut deviations));
        assert_eq!(
            mine, theirs,
            "{key:?}: our report and the peer's differ\nours: {:#}\npeer's: {peer:#}",
            report.json
        );
        // What the file and index say agrees with the body.
        assert_eq!(report.json["report-id"], json!(report.report_id));
        assert_eq!(
            report.json["date-range"],
            json!({"start-datetime": format!("{day}T00:00:00Z"), "end-datetime": format!("{day}T23:59:59Z")})
        );
        assert_eq!(
            report.json["organization-name"],
            json!("mtasts test sender")
        );
        assert_eq!(report.json["contact-info"], json!("tlsrpt@sender.test"));
        let rua: Vec<String> = tlsrpt_support::record_of_rua()
            .into_iter()
            .filter(|(_, r)| *r == report.record)
            .map(|(u, _)| u)
            .collect();
        let mut listed = report.rua.clone();
        listed.sort();
        assert_eq!(listed, rua, "{key:?}: index.json's rua");
        assert!(
            report
                .file
                .starts_with(&format!("sender.test!{}!", report.domain))
                && report.file.ends_with(".json"),
            "{}: not named as RFC 8460 §5.1 says",
            report.file
        );
        let errors = schema_errors(&venv, &report.json);
        assert!(
            errors.is_empty(),
            "{}: not valid by RFC 8460's schema:\n{}",
            report.file,
            errors.join("\n")
        );
    }
    // The deviations this sequence provokes are the known ones, and each is real: the peer's
    // own reports fail the schema there.
    assert_eq!(
        deviations,
        BTreeSet::from([
            PeerDeviation::PolicyDomainMissing,
            PeerDeviation::ResultTypeMissing
        ])
    );
    let gamma = &theirs[&(
        "gamma.test".to_owned(),
        tlsrpt_support::GAMMA_RECORD.to_owned(),
    )];
    assert!(
        schema_errors(&venv, gamma)
            .iter()
            .any(|e| e.contains("policy-domain")),
        "the peer's no-policy-found report is expected to lack policy-domain (#51)"
    );
    // Odd characters came through both unchanged.
    let odd = ours
        .iter()
        .find(|r| r.domain == "odd.test")
        .expect("a report for odd.test");
    let text = serde_json::to_string(&odd.json).unwrap();
    let odd_json = serde_json::to_string(tlsrpt_support::ODD).unwrap();
    assert!(
        text.contains(&odd_json),
        "the odd string is not in our odd.test report: {text}"
    );
}
