//! TLS-RPT collection end to end: libtlsrpt datagrams (written byte for byte as libtlsrpt
//! writes them, by the testkit emitter) over a real UNIX datagram socket into a real SQLite
//! and PostgreSQL store; bad datagrams counted while collection goes on; the socket's owner,
//! group and mode; the HTTP intake of the running resolver; a store outage; `kill -9` of a
//! collector process.

use std::collections::BTreeMap;
use std::io::{Read as _, Write as _};
use std::net::SocketAddr;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mtasts_proto::ResultType;
use mtasts_proto::rollup::day_of;
use mtasts_proto::tlsrpt::datagram::{MAX_DATAGRAM_BYTES, parse_datagram};
use mtasts_proto::tlsrpt::report::PolicyType;
use mtasts_proto::tlsrpt::session::{FailureKey, PolicyKey};
use mtasts_sender::clock::ManualClock;
use mtasts_sender::config::UnixSocketConfig;
use mtasts_sender::metrics::Metrics;
use mtasts_sender::tlsrpt::collect::{CollectOptions, Collector};
use mtasts_store::tlsrpt::TlsrptDb;
use mtasts_testkit::libtlsrpt::{Emitter, FAILURE_CODES};
use mtasts_testkit::services::{self, Service};

/// 2026-12-07 12:00:00 UTC: the arrival time of every result (the manual clock).
const NOW: u64 = 1_796_644_800;

fn day() -> i64 {
    day_of(NOW as i64)
}

// ---------------------------------------------------------------------------------------
// What the MTA reports, and its bytes (the testkit's libtlsrpt emitter).

/// One failure detail as libtlsrpt's `tlsrpt_add_failure_details` takes it.
#[derive(Clone, Debug, Default)]
struct Detail {
    code: u16,
    sending_ip: Option<&'static str>,
    receiving_mx: Option<&'static str>,
    receiving_helo: Option<&'static str>,
    receiving_ip: Option<&'static str>,
    additional: Option<&'static str>,
    reason: Option<&'static str>,
}

/// One policy of a delivery request.
#[derive(Clone, Debug)]
struct Policy {
    policy_type: u16,
    domain: Option<&'static str>,
    strings: Vec<&'static str>,
    mx: Vec<&'static str>,
    details: Vec<Detail>,
    failed: bool,
}

/// One delivery request: one datagram.
#[derive(Clone, Debug)]
struct Request {
    domain: &'static str,
    record: &'static str,
    policies: Vec<Policy>,
    /// Whether `dpv` is sent (libtlsrpt 0.5.0+).
    dpv: bool,
}

fn encode(request: &Request) -> Vec<u8> {
    emitter::encode(request)
}

fn sts(domain: &'static str, failed: bool, details: Vec<Detail>) -> Policy {
    Policy {
        policy_type: 2,
        domain: Some(domain),
        strings: vec![
            "version: STSv1",
            "mode: enforce",
            "mx: *.mx.example",
            "max_age: 86400",
        ],
        mx: vec!["*.mx.example"],
        details,
        failed,
    }
}

fn request(domain: &'static str, policies: Vec<Policy>) -> Request {
    Request {
        domain,
        record: "v=TLSRPTv1; rua=mailto:tlsrpt@example.net",
        policies,
        dpv: true,
    }
}

/// Sends one datagram as libtlsrpt does, but blocking while the socket queue is full, so the
/// test loses nothing to the kernel.
fn send(socket: &Path, bytes: &[u8]) {
    let emitter = Emitter::open(socket).expect("socket");
    emitter.set_blocking(true).expect("blocking");
    emitter.send(bytes).expect("send a datagram");
}

// ---------------------------------------------------------------------------------------
// Stores.

fn sqlite_url(dir: &Path) -> String {
    format!("sqlite:{}", dir.join("tlsrpt.sqlite").display())
}

/// A fresh schema on the PostgreSQL test server as a URL (made with `psql`), or `None` after
/// the skip rule.
fn postgres_schema() -> Option<(String, String)> {
    let base = services::postgres_url();
    let schema = services::unique("tlsrpt_collect_");
    match psql(&format!("CREATE SCHEMA {schema}")) {
        Ok(()) => Some((services::postgres_url_in_schema(&base, &schema), schema)),
        Err(e) => {
            services::skip(Service::Postgres, &e);
            None
        }
    }
}

fn psql(sql: &str) -> Result<(), String> {
    let base = services::postgres_url();
    let out = Command::new("psql")
        .arg(&base)
        .args(["-q", "-v", "ON_ERROR_STOP=1", "-c", sql])
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run psql: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "psql {base} -c {sql:?}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// The counts of one stored policy: successes, failures, failure details.
type Counts = (u64, u64, BTreeMap<String, u64>);

/// Everything stored for a day: (domain, policy key) → counts.
type Stored = BTreeMap<(String, String), Counts>;

async fn stored(db: &TlsrptDb, day: i64) -> Stored {
    let mut out = Stored::new();
    let mut after: Option<(String, String)> = None;
    loop {
        let page = db
            .day_groups(
                day,
                after.as_ref().map(|(d, r)| (d.as_str(), r.as_str())),
                100,
            )
            .await
            .expect("day_groups");
        let Some(last) = page.last() else { break };
        after = Some((last.domain.clone(), last.record.clone()));
        for group in page {
            for p in group.policies {
                let entry = out.entry((group.domain.clone(), p.policy)).or_default();
                entry.0 += p.successes;
                entry.1 += p.failures;
                for (k, c) in p.details {
                    *entry.2.entry(k).or_default() += c;
                }
            }
        }
    }
    out
}

fn totals(stored: &Stored) -> (u64, u64) {
    stored
        .values()
        .fold((0, 0), |(s, f), (ss, ff, _)| (s + ss, f + ff))
}

// ---------------------------------------------------------------------------------------
// A collector in this process.

fn options(dir: &Path, max_pending_results: usize) -> CollectOptions {
    CollectOptions {
        socket: Some(UnixSocketConfig {
            path: dir.join("tlsrpt.sock"),
            owner: None,
            group: None,
            mode: "0660".to_string(),
        }),
        max_pending_results,
        commit_interval: Duration::from_millis(50),
        drain: Duration::from_secs(10),
    }
}

fn start(options: &CollectOptions, db: &TlsrptDb, metrics: &Arc<Metrics>) -> Collector {
    Collector::start(
        options,
        Arc::new(db.clone()),
        metrics.clone(),
        Arc::new(ManualClock::new(NOW)),
    )
    .expect("start the collector")
}

/// Waits (up to 20 s) until `done` holds.
async fn until(what: &str, mut done: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !done().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The value of one series in the metrics exposition (0 when absent).
fn metric(metrics: &Metrics, series: &str) -> u64 {
    metrics
        .encode()
        .lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or(0)
}

// ---------------------------------------------------------------------------------------
// Every policy type and failure code, into SQLite and PostgreSQL.

/// Every libtlsrpt failure code (the testkit's table) with the RFC 8460 result type the store
/// must show: 901 ("internal") has none, and the parser files it under validation-failure.
fn codes() -> Vec<(u16, &'static str)> {
    FAILURE_CODES
        .iter()
        .map(|(code, name)| {
            (
                u16::try_from(*code).unwrap(),
                name.unwrap_or("validation-failure"),
            )
        })
        .collect()
}

fn full_detail(code: u16) -> Detail {
    Detail {
        code,
        sending_ip: Some("192.0.2.25"),
        receiving_mx: Some("a.mx.example"),
        receiving_helo: Some("a.mx.example \"quoted\" \\ back"),
        receiving_ip: Some("2001:db8::25"),
        additional: Some("caf\u{e9} \u{1}ctl\ttab"),
        reason: Some("X509_V_ERR_CERT_HAS_EXPIRED"),
    }
}

/// The datagrams of [`collect_everything`]: successes and every failure code for an STS
/// domain, TLSA and no-policy-found domains, two policies in one request, no `dpv`, a domain
/// spelled in capitals with a trailing dot, details with some members missing.
fn everything() -> Vec<Request> {
    let mut requests = Vec::new();
    for _ in 0..5 {
        requests.push(request(
            "sts.example",
            vec![sts("sts.example", false, vec![])],
        ));
    }
    for (code, _) in codes() {
        requests.push(request(
            "sts.example",
            vec![sts("sts.example", true, vec![full_detail(code)])],
        ));
    }
    let tlsa = |failed: bool, details: Vec<Detail>| Policy {
        policy_type: 1,
        domain: Some("tlsa.example"),
        strings: vec!["3 1 1 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"],
        mx: vec![],
        details,
        failed,
    };
    for _ in 0..3 {
        requests.push(request("tlsa.example", vec![tlsa(false, vec![])]));
    }
    let sparse = Detail {
        code: 305,
        receiving_mx: Some("mx.tlsa.example"),
        ..Detail::default()
    };
    requests.push(request("tlsa.example", vec![tlsa(true, vec![sparse])]));
    let none = Policy {
        policy_type: 9,
        domain: None,
        strings: vec![],
        mx: vec![],
        details: vec![],
        failed: false,
    };
    let mut old = request("none.example", vec![none.clone()]);
    old.dpv = false;
    requests.push(old);
    requests.push(request("none.example", vec![none]));
    requests.push(request(
        "multi.example",
        vec![
            sts("multi.example", false, vec![]),
            tlsa(true, vec![full_detail(202)]),
        ],
    ));
    requests.push(request(
        "ODD.Example.",
        vec![sts("ODD.Example.", true, vec![full_detail(201)])],
    ));
    requests
}

/// Feeds [`everything`] to a collector over `db` and checks what was stored.
async fn collect_everything(db: TlsrptDb) {
    let dir = tempfile::tempdir().unwrap();
    let metrics = Arc::new(Metrics::new());
    let collector = start(&options(dir.path(), 10_000), &db, &metrics);
    let socket = collector.socket_path().unwrap().to_path_buf();
    let requests = everything();
    for r in &requests {
        send(&socket, &encode(r));
    }
    until("the results to be committed", async || {
        metric(
            &metrics,
            "mtasts_resolver_tlsrpt_results_total{outcome=\"success\"}",
        ) + metric(
            &metrics,
            "mtasts_resolver_tlsrpt_results_total{outcome=\"failure\"}",
        ) == 26
            && collector.held() == 0
    })
    .await;
    collector.shutdown().await;
    assert!(!socket.exists(), "the socket file is removed at shutdown");

    let stored = stored(&db, day()).await;
    let by_domain = |domain: &str| -> Vec<(PolicyKey, Counts)> {
        stored
            .iter()
            .filter(|((d, _), _)| d == domain)
            .map(|((_, p), v)| (PolicyKey::from_key(p).expect("a policy key"), v.clone()))
            .collect()
    };
    // sts.example: 5 successes, one failure per code, each with its full detail.
    let sts_rows = by_domain("sts.example");
    assert_eq!(sts_rows.len(), 1, "{stored:#?}");
    let (policy, (successes, failures, details)) = &sts_rows[0];
    assert_eq!(policy.policy_type, PolicyType::Sts);
    assert_eq!(policy.domain.as_deref(), Some("sts.example"));
    assert_eq!(policy.strings[1], "mode: enforce");
    assert_eq!(policy.mx, vec!["*.mx.example".to_string()]);
    assert_eq!((*successes, *failures), (5, codes().len() as u64));
    let mut by_type: BTreeMap<String, u64> = BTreeMap::new();
    for (key, count) in details {
        let detail = FailureKey::from_key(key).expect("a failure key");
        assert_eq!(detail.sending_ip.as_deref(), Some("192.0.2.25"));
        assert_eq!(detail.receiving_ip.as_deref(), Some("2001:db8::25"));
        assert_eq!(
            detail.receiving_helo.as_deref(),
            Some("a.mx.example \"quoted\" \\ back")
        );
        assert_eq!(
            detail.additional.as_deref(),
            Some("caf\u{e9} \u{1}ctl\ttab")
        );
        *by_type
            .entry(detail.result_type.as_str().to_string())
            .or_default() += count;
    }
    let mut expected: BTreeMap<String, u64> = BTreeMap::new();
    for (_, t) in codes() {
        *expected.entry(t.to_string()).or_default() += 1;
    }
    assert_eq!(by_type, expected);
    // tlsa.example: 3 successes, 1 failure with only the members sent.
    let tlsa_rows = by_domain("tlsa.example");
    assert_eq!(tlsa_rows.len(), 1, "{stored:#?}");
    let (policy, (s, f, details)) = &tlsa_rows[0];
    assert_eq!(policy.policy_type, PolicyType::Tlsa);
    assert_eq!((*s, *f), (3, 1));
    let (key, count) = details.iter().next().unwrap();
    let sparse = FailureKey::from_key(key).unwrap();
    assert_eq!(*count, 1);
    assert_eq!(sparse.result_type, ResultType::DnssecInvalid);
    assert_eq!(sparse.receiving_mx.as_deref(), Some("mx.tlsa.example"));
    assert_eq!(sparse.sending_ip, None);
    // none.example: with and without dpv, one row.
    let none_rows = by_domain("none.example");
    assert_eq!(none_rows.len(), 1, "{stored:#?}");
    assert_eq!(none_rows[0].0.policy_type, PolicyType::NoPolicyFound);
    assert_eq!((none_rows[0].1.0, none_rows[0].1.1), (2, 0));
    // multi.example: two policies of one request, each counted.
    let multi = by_domain("multi.example");
    assert_eq!(multi.len(), 2, "{stored:#?}");
    assert_eq!(
        multi
            .iter()
            .map(|(_, v)| (v.0, v.1))
            .fold((0, 0), |a, b| (a.0 + b.0, a.1 + b.1)),
        (1, 1)
    );
    // The domain key: lowercase, no trailing dot.
    assert_eq!(by_domain("odd.example").len(), 1, "{stored:#?}");
    assert_eq!(
        totals(&stored),
        (5 + 3 + 2 + 1, codes().len() as u64 + 1 + 1 + 1)
    );
    assert_eq!(
        metric(
            &metrics,
            "mtasts_resolver_tlsrpt_results_total{outcome=\"failure\"}"
        ),
        codes().len() as u64 + 3
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_policy_type_and_failure_code_into_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let db = TlsrptDb::open(&sqlite_url(dir.path())).await.unwrap();
    collect_everything(db).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_policy_type_and_failure_code_into_postgres() {
    let Some((url, schema)) = postgres_schema() else {
        return;
    };
    let db = TlsrptDb::open(&url).await.unwrap();
    collect_everything(db.clone()).await;
    db.close().await;
    let _ = psql(&format!("DROP SCHEMA {schema} CASCADE"));
}

// ---------------------------------------------------------------------------------------
// Bad datagrams.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_datagrams_are_counted_by_kind_and_collection_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let db = TlsrptDb::open(&sqlite_url(dir.path())).await.unwrap();
    let metrics = Arc::new(Metrics::new());
    let collector = start(&options(dir.path(), 10_000), &db, &metrics);
    let socket = collector.socket_path().unwrap().to_path_buf();
    let good = encode(&request(
        "good.example",
        vec![sts("good.example", false, vec![])],
    ));
    let mut too_large = encode(&request(
        "big.example",
        vec![sts("big.example", false, vec![])],
    ));
    // Still valid JSON, only too long: padding inside the object.
    let pad = " ".repeat(MAX_DATAGRAM_BYTES + 10);
    too_large.splice(1..1, pad.bytes());
    let bad: Vec<Vec<u8>> = vec![
        b"\x00\x01\x02 not json".to_vec(),
        b"{\"d\": \"x.example\"".to_vec(),
        br#"{"dpv": "1","pr": "v=TLSRPTv1; rua=mailto:a@b.example","policies":[]}"#.to_vec(),
        br#"{"dpv": "7","d": "x.example","pr": "v=TLSRPTv1; rua=mailto:a@b.example","policies":[{"policy-type":2,"f":0}]}"#.to_vec(),
        br#"{"dpv": "1","d": "x.example","pr": "v=TLSRPTv1; rua=mailto:a@b.example","policies":[{"policy-type":5,"f":0}]}"#.to_vec(),
        too_large,
        Vec::new(),
    ];
    let mut kinds: BTreeMap<&'static str, u64> = BTreeMap::new();
    for b in &bad {
        let kind = parse_datagram(b)
            .expect_err("a datagram the parser refuses")
            .kind();
        *kinds.entry(kind).or_default() += 1;
    }
    assert!(kinds.len() >= 4, "several kinds: {kinds:?}");
    for (i, b) in bad.iter().enumerate() {
        send(&socket, b);
        send(&socket, &good);
        if i == 0 {
            send(&socket, &good);
        }
    }
    let good_sent = bad.len() as u64 + 1;
    until("every datagram to be read", async || {
        let dropped: u64 = kinds
            .keys()
            .map(|k| {
                metric(
                    &metrics,
                    &format!("mtasts_resolver_tlsrpt_datagrams_dropped_total{{kind=\"{k}\"}}"),
                )
            })
            .sum();
        dropped == bad.len() as u64
            && metric(
                &metrics,
                "mtasts_resolver_tlsrpt_results_total{outcome=\"success\"}",
            ) == good_sent
    })
    .await;
    for (kind, n) in &kinds {
        assert_eq!(
            metric(
                &metrics,
                &format!("mtasts_resolver_tlsrpt_datagrams_dropped_total{{kind=\"{kind}\"}}")
            ),
            *n,
            "kind {kind}"
        );
    }
    collector.shutdown().await;
    let stored = stored(&db, day()).await;
    assert_eq!(totals(&stored), (good_sent, 0), "{stored:#?}");
    assert_eq!(stored.len(), 1);
}

// ---------------------------------------------------------------------------------------
// The socket.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_socket_gets_its_owner_group_and_mode_and_replaces_a_stale_one() {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let dir = tempfile::tempdir().unwrap();
    let db = TlsrptDb::open(&sqlite_url(dir.path())).await.unwrap();
    let mut options = options(dir.path(), 100);
    let path = dir.path().join("tlsrpt.sock");
    // A stale socket left by a crashed collector.
    drop(UnixDatagram::bind(&path).unwrap());
    let root = rustix_uid() == 0;
    let socket = options.socket.as_mut().unwrap();
    socket.mode = "0620".to_string();
    if root {
        // Names are looked up in /etc/passwd and /etc/group (Debian has both).
        socket.owner = Some("nobody".to_string());
        socket.group = Some("nogroup".to_string());
    }
    let metrics = Arc::new(Metrics::new());
    let collector = start(&options, &db, &metrics);
    let meta = std::fs::metadata(&path).unwrap();
    assert_eq!(meta.permissions().mode() & 0o7777, 0o620);
    if root {
        assert_eq!((meta.uid(), meta.gid()), (65_534, 65_534));
    } else {
        eprintln!("not root: owner and group not changed by this test");
    }
    send(
        &path,
        &encode(&request("a.example", vec![sts("a.example", false, vec![])])),
    );
    until("the result", async || {
        metric(
            &metrics,
            "mtasts_resolver_tlsrpt_results_total{outcome=\"success\"}",
        ) == 1
    })
    .await;
    collector.shutdown().await;
    assert_eq!(totals(&stored(&db, day()).await), (1, 0));
}

fn rustix_uid() -> u32 {
    // The owner of a file this process creates is its effective uid.
    use std::os::unix::fs::MetadataExt;
    let f = tempfile::NamedTempFile::new().unwrap();
    f.as_file().metadata().unwrap().uid()
}

// ---------------------------------------------------------------------------------------
// A store outage: results wait in memory (bounded) and are committed when it is back.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_outage_keeps_results_up_to_the_bound_and_drops_the_rest_counted() {
    let Some((url, schema)) = postgres_schema() else {
        return;
    };
    let db = TlsrptDb::open(&url).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let metrics = Arc::new(Metrics::new());
    let collector = start(&options(dir.path(), 5), &db, &metrics);
    let socket = collector.socket_path().unwrap().to_path_buf();
    // The store goes away: every table with it.
    psql(&format!("DROP SCHEMA {schema} CASCADE")).unwrap();
    let r = encode(&request(
        "outage.example",
        vec![sts("outage.example", true, vec![full_detail(204)])],
    ));
    for _ in 0..8 {
        send(&socket, &r);
    }
    until("the bound to be reached and commits to fail", async || {
        metric(
            &metrics,
            "mtasts_resolver_tlsrpt_datagrams_dropped_total{kind=\"backlog\"}",
        ) == 3
            && metric(
                &metrics,
                "mtasts_resolver_tlsrpt_commits_total{outcome=\"error\"}",
            ) >= 1
    })
    .await;
    assert_eq!(collector.held(), 5);
    // The store comes back (opening it migrates the fresh schema).
    psql(&format!("CREATE SCHEMA {schema}")).unwrap();
    let again = TlsrptDb::open(&url).await.unwrap();
    until("the held results to be committed", async || {
        collector.held() == 0
    })
    .await;
    collector.shutdown().await;
    let stored = stored(&again, day()).await;
    assert_eq!(totals(&stored), (0, 5), "{stored:#?}");
    let details: u64 = stored.values().map(|v| v.2.values().sum::<u64>()).sum();
    assert_eq!(details, 5);
    db.close().await;
    again.close().await;
    let _ = psql(&format!("DROP SCHEMA {schema} CASCADE"));
}

// ---------------------------------------------------------------------------------------
// The running resolver: the socket and the HTTP intake.

/// A raw HTTP/1.1 POST (Connection: close); the status and the body.
fn http_post(addr: SocketAddr, path: &str, body: &[u8]) -> (u16, String) {
    let mut stream = std::net::TcpStream::connect(addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).unwrap();
    // The server may answer (413) before the body is sent; a broken pipe then is fine.
    let _ = stream.write_all(body);
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    let answer = String::from_utf8_lossy(&answer).into_owned();
    let status = answer
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no HTTP status in {answer:?}"));
    let body = answer
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

fn http_get(addr: SocketAddr, path: &str) -> String {
    let mut stream = std::net::TcpStream::connect(addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    answer
}

fn resolver_config(dir: &Path, database: String) -> mtasts_sender::Config {
    let mut config = mtasts_sender::Config {
        data_dir: dir.to_path_buf(),
        ..Default::default()
    };
    config.cache.url = Some("memory".to_string());
    config.socketmap.tcp = vec!["127.0.0.1:0".parse().unwrap()];
    config.http.listen = vec!["127.0.0.1:0".parse().unwrap()];
    config.drain_timeout = 5;
    config.tlsrpt.enabled = true;
    config.tlsrpt.organization = "Example Mail".to_string();
    config.tlsrpt.contact = "tlsrpt@example.net".to_string();
    config.tlsrpt.database = Some(database);
    config.tlsrpt.commit_interval_ms = 50;
    config.tlsrpt.socket = Some(UnixSocketConfig {
        path: dir.join("run/tlsrpt.sock"),
        owner: None,
        group: None,
        mode: "0666".to_string(),
    });
    config
}

const RESULTS_JSON: &str = r#"[
 {"recipient-domain": "http.example", "tlsrpt-record": "v=TLSRPTv1; rua=https://r.example/x",
  "policies": [{"policy-type": "sts", "policy-domain": "http.example",
                "policy-string": ["version: STSv1", "mode: testing", "mx: mx.http.example", "max_age: 86400"],
                "mx-host": ["mx.http.example"], "result": "success"}]},
 {"recipient-domain": "http.example", "tlsrpt-record": "v=TLSRPTv1; rua=https://r.example/x",
  "policies": [{"policy-type": "sts", "policy-domain": "http.example",
                "policy-string": ["version: STSv1", "mode: testing", "mx: mx.http.example", "max_age: 86400"],
                "mx-host": ["mx.http.example"], "result": "failure",
                "failure-details": [{"result-type": "certificate-expired", "sending-mta-ip": "192.0.2.1",
                                     "receiving-mx-hostname": "mx.http.example"}]}]}
]"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_resolver_collects_from_its_socket_and_its_http_intake() {
    let dir = tempfile::tempdir().unwrap();
    // The socket's folder (`run/`) does not exist: the resolver creates it.
    let url = sqlite_url(dir.path());
    let config = resolver_config(dir.path(), url.clone());
    let server = mtasts_sender::bind(config, None).await.expect("bind");
    let http = server.http_addrs()[0];
    let socket = server
        .tlsrpt_socket()
        .expect("a TLS-RPT socket")
        .to_path_buf();
    let shutdown = tokio_util::sync::CancellationToken::new();
    let running = tokio::spawn(server.run(shutdown.clone(), Arc::new(tokio::sync::Notify::new())));

    send(
        &socket,
        &encode(&request(
            "dgram.example",
            vec![sts("dgram.example", false, vec![])],
        )),
    );
    let (status, body) = tokio::task::spawn_blocking(move || {
        http_post(http, "/v1/tlsrpt/results", RESULTS_JSON.as_bytes())
    })
    .await
    .unwrap();
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&body).unwrap(),
        serde_json::json!({"accepted": 2})
    );
    // The 200 came after the commit: the results are in the store now.
    let db = TlsrptDb::open(&url).await.unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let today = day_of(now);
    let http_rows: Vec<_> = stored(&db, today)
        .await
        .into_iter()
        .filter(|((d, _), _)| d == "http.example")
        .collect();
    assert_eq!(http_rows.len(), 1, "{http_rows:#?}");
    assert_eq!((http_rows[0].1.0, http_rows[0].1.1), (1, 1));

    let (status, body) = tokio::task::spawn_blocking(move || {
        http_post(http, "/v1/tlsrpt/results", b"{\"recipient-domain\": 5}")
    })
    .await
    .unwrap();
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("error"), "{body}");
    let (status, _) = tokio::task::spawn_blocking(move || {
        let big = vec![b' '; mtasts_proto::tlsrpt::session::MAX_RESULTS_BODY_BYTES + 1];
        http_post(http, "/v1/tlsrpt/results", &big)
    })
    .await
    .unwrap();
    assert_eq!(status, 413);

    let exposition = tokio::task::spawn_blocking(move || http_get(http, "/metrics"))
        .await
        .unwrap();
    assert!(
        exposition.contains("mtasts_resolver_tlsrpt_results_total{outcome=\"failure\"} 1"),
        "{exposition}"
    );

    shutdown.cancel();
    running.await.unwrap().expect("the resolver stops cleanly");
    assert!(!socket.exists());
    // The datagram was committed at shutdown at the latest.
    let stored = stored(&db, today).await;
    assert_eq!(
        stored
            .iter()
            .filter(|((d, _), _)| d == "dgram.example")
            .map(|(_, v)| v.0)
            .sum::<u64>(),
        1,
        "{stored:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_http_intake_answers_503_when_the_store_fails() {
    let Some((url, schema)) = postgres_schema() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("run")).unwrap();
    let config = resolver_config(dir.path(), url.clone());
    let server = mtasts_sender::bind(config, None).await.expect("bind");
    let http = server.http_addrs()[0];
    let shutdown = tokio_util::sync::CancellationToken::new();
    let running = tokio::spawn(server.run(shutdown.clone(), Arc::new(tokio::sync::Notify::new())));
    psql(&format!("DROP SCHEMA {schema} CASCADE")).unwrap();
    let (status, body) = tokio::task::spawn_blocking(move || {
        http_post(http, "/v1/tlsrpt/results", RESULTS_JSON.as_bytes())
    })
    .await
    .unwrap();
    assert_eq!(status, 503, "{body}");
    shutdown.cancel();
    running.await.unwrap().expect("the resolver stops");
}

// ---------------------------------------------------------------------------------------
// kill -9: what was committed survives.

/// Set in the child process: run a collector on this folder until killed.
const CHILD_ENV: &str = "MTASTS_TLSRPT_COLLECT_CHILD";
/// What the child prints once its socket is bound.
const READY: &str = "tlsrpt-collector-ready";

/// A child process that is killed (SIGKILL) when dropped.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The child's role (a no-op in a normal test run): a collector on `$CHILD_ENV/tlsrpt.sock`
/// committing to `$CHILD_ENV/tlsrpt.sqlite`, announcing itself with a [`READY`] line.
#[test]
fn child_collector_role() {
    let Ok(dir) = std::env::var(CHILD_ENV) else {
        return;
    };
    let dir = PathBuf::from(dir);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let db = TlsrptDb::open(&sqlite_url(&dir)).await.unwrap();
        let metrics = Arc::new(Metrics::new());
        let mut options = options(&dir, 100_000);
        options.commit_interval = Duration::from_millis(20);
        let _collector = start(&options, &db, &metrics);
        println!("{READY}");
        std::io::stdout().flush().unwrap();
        loop {
            tokio::time::sleep(Duration::from_secs(3600)).await;
        }
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn committed_results_survive_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "child_collector_role",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn the collector process");
    let stdout = child.stdout.take().unwrap();
    // Killed on every way out of this test, so a failure never leaves it running.
    let mut child = KillOnDrop(child);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        // libtest writes "test child_collector_role ... " before the test's own output.
        for line in std::io::BufRead::lines(std::io::BufReader::new(stdout)) {
            let Ok(line) = line else { break };
            if line.contains(READY) {
                let _ = tx.send(());
                break;
            }
        }
    });
    rx.recv_timeout(Duration::from_secs(60))
        .expect("the child collector is ready in time");
    let socket = dir.path().join("tlsrpt.sock");
    let db = TlsrptDb::open(&sqlite_url(dir.path())).await.unwrap();
    // The child's clock is the manual one: every result is on NOW's day.
    let r = encode(&request(
        "kill.example",
        vec![sts("kill.example", false, vec![])],
    ));
    let sent = 200u64;
    for _ in 0..sent {
        send(&socket, &r);
    }
    // Committed: the store shows all of them to another connection.
    until("the results to be committed", async || {
        totals(&stored(&db, day()).await).0 == sent
    })
    .await;
    // More arrive while the process is killed: those may be lost (not yet committed).
    for _ in 0..50 {
        send(&socket, &r);
    }
    child.0.kill().expect("SIGKILL the collector");
    let _ = child.0.wait();
    db.close().await;
    let reopened = TlsrptDb::open(&sqlite_url(dir.path())).await.unwrap();
    let after = totals(&stored(&reopened, day()).await).0;
    assert!(
        (sent..=sent + 50).contains(&after),
        "committed results survive kill -9: {after} of {sent} committed (+50 in flight)"
    );
}

// ---------------------------------------------------------------------------------------
// The testkit emitter, adapted to this file's description of a request.

mod emitter {
    use mtasts_testkit::libtlsrpt::{DeliveryRequest, Failure};

    /// The datagram libtlsrpt sends for `request` (its API calls in order).
    pub(super) fn encode(request: &super::Request) -> Vec<u8> {
        let (domain, record) = (request.domain.as_bytes(), request.record.as_bytes());
        let mut dr = if request.dpv {
            DeliveryRequest::new(domain, record)
        } else {
            DeliveryRequest::without_dpv(domain, record)
        };
        for p in &request.policies {
            dr.init_policy(i32::from(p.policy_type), p.domain.map(str::as_bytes));
            for line in &p.strings {
                dr.add_policy_string(line.as_bytes());
            }
            for mx in &p.mx {
                dr.add_mx_host_pattern(mx.as_bytes());
            }
            for d in &p.details {
                dr.add_failure(&Failure {
                    code: i32::from(d.code),
                    sending_mta_ip: d.sending_ip.map(str::as_bytes),
                    receiving_mx_hostname: d.receiving_mx.map(str::as_bytes),
                    receiving_mx_helo: d.receiving_helo.map(str::as_bytes),
                    receiving_ip: d.receiving_ip.map(str::as_bytes),
                    additional_information: d.additional.map(str::as_bytes),
                    failure_reason_code: d.reason.map(str::as_bytes),
                });
            }
            dr.finish_policy(i32::from(p.failed));
        }
        dr.finish()
    }
}
