//! `mtasts resolver` with `[tlsrpt]` enabled, as an operator runs it: libtlsrpt datagrams (the
//! testkit's byte-exact emitter) into its socket, `mtasts tlsrpt status`, `report` and `send`,
//! an HTTPS rua on loopback (a real TLS server; DNS from the testkit's world) that fails twice
//! and then accepts, and the round trip: what was written and what was delivered, read back by
//! `mtasts report parse`, gives the same numbers as the datagrams that were sent.

#[path = "support/tlsrpt.rs"]
mod tlsrpt_support;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use mtasts_testkit::TestNet;
use serde_json::Value;
use tlsrpt_support::{Failure, HttpsReceiver, Policy, Resolver, Session};

/// Per policy type: (successes, failures, failures by result type), from `mtasts report
/// parse`'s objects.
type Counts = BTreeMap<String, (u64, u64, BTreeMap<String, u64>)>;

fn counts_of_parsed(objects: &[Value]) -> Counts {
    let mut out = Counts::new();
    for object in objects {
        assert_eq!(object["kind"], "tlsrpt", "{object:#}");
        assert_eq!(
            object["notes"],
            serde_json::json!([]),
            "our report needed repairs to be read: {object:#}"
        );
        for p in object["policies"].as_array().unwrap() {
            let entry = out
                .entry(p["type"].as_str().unwrap().to_owned())
                .or_insert((0, 0, BTreeMap::new()));
            entry.0 += p["success"].as_u64().unwrap();
            entry.1 += p["failure"].as_u64().unwrap();
            for f in p["failures"].as_array().unwrap() {
                *entry
                    .2
                    .entry(f["result"].as_str().unwrap().to_owned())
                    .or_insert(0) += f["count"].as_u64().unwrap();
            }
        }
    }
    out
}

/// The same counts straight from the sessions sent (libtlsrpt codes → RFC names, as
/// interop.md §2 lists them; 901, which has none, as `validation-failure`).
fn counts_of_sessions(sessions: &[Session]) -> Counts {
    let mut out = Counts::new();
    for s in sessions {
        for p in &s.policies {
            let name = match p.policy_type {
                1 => "tlsa",
                2 => "sts",
                9 => "no-policy-found",
                other => panic!("policy type {other}"),
            };
            let entry = out
                .entry(name.to_owned())
                .or_insert((0, 0, BTreeMap::new()));
            if p.failed {
                entry.1 += 1;
            } else {
                entry.0 += 1;
            }
            for f in &p.failures {
                let result = match f.code {
                    201 => "starttls-not-supported",
                    202 => "certificate-host-mismatch",
                    203 => "certificate-not-trusted",
                    204 => "certificate-expired",
                    205 => "validation-failure",
                    301 => "sts-policy-fetch-error",
                    302 => "sts-policy-invalid",
                    303 => "sts-webpki-invalid",
                    304 => "tlsa-invalid",
                    305 => "dnssec-invalid",
                    306 => "dane-required",
                    901 => "validation-failure",
                    other => panic!("failure code {other}"),
                };
                *entry.2.entry(result.to_owned()).or_insert(0) += 1;
            }
        }
    }
    out
}

/// `mtasts report parse --json PATH…` → its objects.
fn parse_back(resolver: &Resolver, paths: &[&Path]) -> Vec<Value> {
    let mut args = vec!["report", "parse", "--json"];
    let texts: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
    args.extend(texts.iter().map(String::as_str));
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_mtasts"))
        .args(&args)
        .env_remove("MTASTS_SERVE_CONFIG")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "mtasts report parse: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let _ = resolver;
    serde_json::from_slice::<Value>(&out.stdout)
        .unwrap()
        .as_array()
        .unwrap()
        .clone()
}

#[test]
fn a_day_of_datagrams_is_reported_read_back_and_delivered_once_after_two_failures() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let net = runtime.block_on(TestNet::start());
    let ip = net.next_ip();
    // The rua's server fails twice (500, 503), then accepts.
    let receiver = HttpsReceiver::start(ip, "reports.e2e.test", net.ca(), &[500, 503]);
    net.zone().add_ip("reports.e2e.test", ip);
    let record: &'static str = Box::leak(
        format!(
            "v=TLSRPTv1; rua=https://reports.e2e.test:{}/v1/tlsrpt",
            receiver.addr.port()
        )
        .into_boxed_str(),
    );
    let day = tlsrpt_support::day_with_margin(Duration::from_secs(120));

    // A small day: STS successes and failures, a DANE failure, no policy found.
    let sts = |failed: bool, code: u16| Policy {
        policy_type: 2,
        domain: Some("e2e.test"),
        strings: &[
            "version: STSv1",
            "mode: testing",
            "mx: mx.e2e.test",
            "max_age: 86400",
        ],
        mx: &["mx.e2e.test"],
        failed,
        failures: if failed {
            vec![Failure {
                code,
                sending_ip: Some("192.0.2.7"),
                mx_name: Some("mx.e2e.test"),
                mx_helo: None,
                mx_ip: Some("198.51.100.7"),
                additional: None,
                reason: None,
            }]
        } else {
            vec![]
        },
    };
    let mut sessions = Vec::new();
    for _ in 0..7 {
        sessions.push(Session {
            domain: "e2e.test",
            record,
            policies: vec![sts(false, 0)],
        });
    }
    for code in [204, 204, 301] {
        sessions.push(Session {
            domain: "e2e.test",
            record,
            policies: vec![sts(true, code)],
        });
    }
    sessions.push(Session {
        domain: "E2E.test.",
        record,
        policies: vec![Policy {
            policy_type: 9,
            domain: None,
            strings: &[],
            mx: &[],
            failed: false,
            failures: vec![],
        }],
    });

    let mut resolver = Resolver::start(
        &format!(
            "dns_servers = [\"{}\"]\nca_files = [\"{}\"]\nbuiltin_roots = false\ntimeout = 5",
            net.dns_addr(),
            net.ca_file().display()
        ),
        "allow_private_destinations = true\nhttp_timeout = 5\nsend_delay_max = 0",
        "",
    );
    tlsrpt_support::send_all(&resolver.socket, &sessions);
    resolver.wait_for_results(tlsrpt_support::policy_count(&sessions));

    // status: today's counters.
    let status: Value =
        serde_json::from_str(&resolver.mtasts_ok(&["tlsrpt", "status", "--json"])).unwrap();
    assert_eq!(status["today"]["successes"], 8, "{status:#}");
    assert_eq!(status["today"]["failures"], 3, "{status:#}");
    let human = resolver.mtasts_ok(&["tlsrpt", "status"]);
    assert!(
        human.contains("11"),
        "the human status names the count: {human}"
    );

    // report --out: one report, read back with the same numbers.
    let out = resolver.dir.path().join("out");
    resolver.mtasts_ok(&[
        "tlsrpt",
        "report",
        "--day",
        &day,
        "--out",
        out.to_str().unwrap(),
    ]);
    let written = tlsrpt_support::read_reports(&out);
    assert_eq!(written.len(), 1, "{written:#?}");
    assert_eq!(written[0].domain, "e2e.test");
    assert_eq!(written[0].record, record);
    let file = out.join(&written[0].file);
    let parsed = parse_back(&resolver, &[&file]);
    assert_eq!(counts_of_parsed(&parsed), counts_of_sessions(&sessions));
    // `report` neither stores nor delivers.
    assert!(
        receiver.posted().is_empty(),
        "report --out delivered something"
    );

    // A day's reports are sent once the day is over. Stop the resolver (it would send them
    // itself), then make today's results yesterday's, as tlsrpt-collectd's SIGUSR2 does.
    resolver.stop();
    let yesterday = mtasts_proto::readiness::date::iso_day(
        mtasts_proto::readiness::date::since(&day, 0).unwrap() - 86_400,
    );
    runtime.block_on(async {
        let db = resolver.dir.path().join("tlsrpt.sqlite");
        let pool = sqlx::SqlitePool::connect(&format!("sqlite:{}", db.display()))
            .await
            .unwrap();
        let moved = sqlx::query("UPDATE tlsrpt_groups SET day = day - 86400")
            .execute(&pool)
            .await
            .unwrap()
            .rows_affected();
        assert_eq!(moved, 1);
        pool.close().await;
    });

    // send: fails (500), fails (503), delivers; a fourth send has nothing left to deliver.
    for (attempt, expect_ok) in [(1, false), (2, false), (3, true), (4, true)] {
        let out = resolver.mtasts(&["tlsrpt", "send", "--day", &yesterday]);
        assert_eq!(
            out.status.success(),
            expect_ok,
            "send #{attempt}: exit {:?}\n{}\n{}",
            out.status.code(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
        );
    }
    let posted = receiver.posted();
    let statuses: Vec<u16> = posted.iter().map(|p| p.status).collect();
    assert_eq!(statuses, [500, 503, 200], "what the rua received");
    for p in &posted {
        assert_eq!(p.path, "/v1/tlsrpt");
        assert_eq!(p.content_type.as_deref(), Some("application/tlsrpt+gzip"));
        assert_eq!(&p.body[..2], &[0x1f, 0x8b], "a gzip body");
    }
    // The delivered report reads back with the same numbers as the one `report --out` showed.
    let gz = resolver.dir.path().join("delivered.json.gz");
    std::fs::write(&gz, &posted[2].body).unwrap();
    let delivered = parse_back(&resolver, &[&gz]);
    assert_eq!(counts_of_parsed(&delivered), counts_of_parsed(&parsed));
    assert_eq!(delivered[0]["begin"], format!("{yesterday}T00:00:00Z"));

    // status shows the delivery.
    let status: Value =
        serde_json::from_str(&resolver.mtasts_ok(&["tlsrpt", "status", "--json"])).unwrap();
    assert_eq!(status["outbox"]["delivered"], 1, "{status:#}");
    assert_eq!(status["outbox"]["pending"], 0, "{status:#}");
    assert!(
        status["recent"].to_string().contains("reports.e2e.test"),
        "status names the delivery: {status:#}"
    );
    drop(runtime);
}
