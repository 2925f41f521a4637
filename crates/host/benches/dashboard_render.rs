//! A year of TLS reports and a year of DMARC reports from 50 organizations for one hosted
//! domain: the time to store them through the report core's intake, and the time to answer
//! the domain's TLS page and its DMARC page (the dashboard's HTML with its charts, and the
//! same view as JSON from the API) for 30, 90 and 365 days, on SQLite and on PostgreSQL. Not
//! a test: run by hand (see docs/benchmarks.md).
//!
//! A `mtasts serve` node runs in this process on loopback (no ACME); the reports are written
//! with `mtasts_report::intake::Intake` into its database, exactly as the HTTPS and SMTP
//! intakes store them; the pages are fetched over HTTP like a browser (logged in with an API
//! token through the login form) and timed from the request to the last byte. The TLS pages
//! are timed before any DMARC report is stored, so their numbers stay comparable with runs
//! that stored TLS reports only.
//!
//! Each DMARC report (aggregate XML, RFC 7489 appendix C) has `BENCH_RECORDS` rows, each a
//! source IP address with its own volume and results; the rows of the organizations together
//! cover `BENCH_SOURCES` addresses, a few of which fail SPF and DKIM (a forger, a service not
//! yet aligned), so the sources table and "what quarantine/reject would do" have rows of both.
//!
//! Environment:
//! - `BENCH_DAYS` (default 365) and `BENCH_ORGS` (default 50): the reports stored, one TLS and
//!   one DMARC report per organization and day.
//! - `BENCH_SOURCES` (default 300) and `BENCH_RECORDS` (default 6): the DMARC sources in all,
//!   and the rows of one DMARC report.
//! - `BENCH_REPEAT` (default 5): requests per page; the median is reported.
//! - `BENCH_BACKENDS` (default `sqlite,postgres`): which databases to measure; PostgreSQL is
//!   the local test server (`MTASTS_TEST_POSTGRES_URL`), in a schema of its own.
//!
//! A quick check that it works, in the debug build and in seconds:
//! `BENCH_DAYS=3 BENCH_ORGS=2 BENCH_REPEAT=1 cargo test -p mtasts-host --bench dashboard_render`.

use std::net::{Ipv4Addr, SocketAddr};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use mtasts_host::config::ServeConfig;
use mtasts_host::serve::Serve;
use mtasts_report::intake::Intake;
use mtasts_store::reports::ReportDb;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const DOMAIN: &str = "example.com";
const DAY: i64 = 86_400;

/// What one run stores and how often it asks.
#[derive(Clone, Copy)]
struct Sizes {
    days: i64,
    orgs: usize,
    sources: usize,
    records: usize,
    repeat: usize,
}

fn main() -> ExitCode {
    let sizes = Sizes {
        days: env_or("BENCH_DAYS", 365) as i64,
        orgs: env_or("BENCH_ORGS", 50),
        sources: env_or("BENCH_SOURCES", 300).max(1),
        records: env_or("BENCH_RECORDS", 6).max(1),
        repeat: env_or("BENCH_REPEAT", 5).max(1),
    };
    let Sizes {
        days,
        orgs,
        sources,
        records,
        repeat,
    } = sizes;
    let backends = std::env::var("BENCH_BACKENDS").unwrap_or_else(|_| "sqlite,postgres".into());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    println!(
        "a domain's report pages: {days} days x {orgs} organizations = {} TLS reports and as many \
         DMARC reports ({records} rows each, {sources} sources in all), median of {repeat}",
        days * orgs as i64
    );
    println!("| database | store (reports/s) | page | 30 days ms | 90 days ms | 365 days ms |");
    println!("|---|---|---|---|---|---|");
    for backend in backends.split(',').map(str::trim).filter(|b| !b.is_empty()) {
        let dir = tempfile::tempdir().expect("temp dir");
        let database = match backend {
            "sqlite" => format!("sqlite:{}", dir.path().join("serve.db").display()),
            "postgres" => match runtime.block_on(fresh_schema()) {
                Some(url) => url,
                None => continue,
            },
            other => {
                eprintln!("unknown backend {other:?} (sqlite, postgres)");
                return ExitCode::FAILURE;
            }
        };
        let rows = runtime.block_on(run(&database, dir.path(), sizes));
        for row in rows {
            println!("| {backend} | {row}");
        }
    }
    ExitCode::SUCCESS
}

async fn run(database: &str, dir: &std::path::Path, sizes: Sizes) -> Vec<String> {
    let Sizes {
        days, orgs, repeat, ..
    } = sizes;
    let local = SocketAddr::from((Ipv4Addr::LOCALHOST, 0));
    let serve = Serve::start(ServeConfig {
        database: Some(database.to_owned()),
        data_dir: dir.to_path_buf(),
        zone: "hosting.example".to_owned(),
        public_ip: vec![Ipv4Addr::LOCALHOST.into()],
        https_listen: vec![local],
        http_listen: vec![local],
        dns_listen: vec![local],
        api_listen: local,
        acme_directory: String::new(),
        password_iterations: 1000,
        smtp_listen: Vec::new(),
        ..ServeConfig::default()
    })
    .await
    .expect("mtasts serve starts");
    let api = serve.addrs().api;
    let admin = serve.admin_token().expect("a new database").to_owned();
    let bearer = format!("Bearer {admin}");
    let (status, body) = http(
        api,
        "POST",
        "/api/v1/tenants",
        &[
            ("Authorization", bearer.as_str()),
            ("Content-Type", "application/json"),
        ],
        json!({"name": "acme"}).to_string().as_bytes(),
    )
    .await;
    assert!(status < 300, "tenant: {status} {body}");
    let (status, body) = http(
        api,
        "POST",
        "/api/v1/tenants/acme/tokens",
        &[
            ("Authorization", bearer.as_str()),
            ("Content-Type", "application/json"),
        ],
        json!({"role": "owner", "label": "bench"})
            .to_string()
            .as_bytes(),
    )
    .await;
    assert!(status < 300, "token: {status} {body}");
    let token: Value = serde_json::from_str(&body).expect("token JSON");
    let token = token["token"].as_str().expect("a token").to_owned();
    let bearer = format!("Bearer {token}");
    let (status, body) = http(
        api,
        "POST",
        "/api/v1/domains",
        &[
            ("Authorization", bearer.as_str()),
            ("Content-Type", "application/json"),
        ],
        json!({"domain": DOMAIN, "mode": "testing", "mx": ["mail.example.com"]})
            .to_string()
            .as_bytes(),
    )
    .await;
    assert!(status < 300, "domain: {status} {body}");

    // A year of reports, stored as the intakes store them.
    let reports = ReportDb::open(database)
        .await
        .expect("the reports database");
    let intake = Intake::new(reports, mtasts_report::Limits::default());
    let today = time::OffsetDateTime::now_utc().unix_timestamp() / DAY * DAY;
    let cookie = login(api, &token).await;
    let mut rows = Vec::new();

    // TLS first, timed before any DMARC report is stored.
    let store_rate = store(&intake, today, days, orgs, |begin, org| {
        tls_report(begin, org).into_bytes()
    })
    .await;
    let pages: [Page; 2] = [
        (
            "TLS dashboard HTML",
            format!("/domains/{DOMAIN}/reports?days="),
            vec![("Cookie", cookie.clone())],
        ),
        (
            "TLS API JSON",
            format!("/api/v1/domains/{DOMAIN}/reports/tls?days="),
            vec![("Authorization", bearer.clone())],
        ),
    ];
    rows.extend(time_pages(api, &pages, store_rate, repeat).await);

    let store_rate = store(&intake, today, days, orgs, |begin, org| {
        dmarc_report(begin, org, sizes).into_bytes()
    })
    .await;
    let pages: [Page; 2] = [
        (
            "DMARC dashboard HTML",
            format!("/domains/{DOMAIN}/dmarc?days="),
            vec![("Cookie", cookie.clone())],
        ),
        (
            "DMARC API JSON",
            format!("/api/v1/domains/{DOMAIN}/reports/dmarc?days="),
            vec![("Authorization", bearer.clone())],
        ),
    ];
    rows.extend(time_pages(api, &pages, store_rate, repeat).await);
    serve.shutdown().await;
    rows
}

/// Stores one report per organization and day, `report(begin, org)`, as the intakes do
/// (received an hour after its day); the reports stored per second.
async fn store(
    intake: &Intake,
    today: i64,
    days: i64,
    orgs: usize,
    report: impl Fn(i64, usize) -> Vec<u8>,
) -> f64 {
    let started = Instant::now();
    let mut stored = 0u64;
    for day in 0..days {
        let begin = today - (days - day) * DAY;
        for org in 0..orgs {
            let outcome = intake
                .input(&report(begin, org), "bench", begin + DAY + 3600)
                .await
                .expect("store a report");
            assert_eq!(outcome.new, 1, "{:?}", outcome.errors);
            stored += 1;
        }
    }
    stored as f64 / started.elapsed().as_secs_f64()
}

/// The median time of each page for 30, 90 and 365 days: one table row per page.
async fn time_pages(
    api: SocketAddr,
    pages: &[Page],
    store_rate: f64,
    repeat: usize,
) -> Vec<String> {
    let mut rows = Vec::new();
    for (name, path, headers) in pages {
        let mut cells = Vec::new();
        for window in [30, 90, 365] {
            let headers: Vec<(&str, &str)> =
                headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
            let url = format!("{path}{window}");
            let mut times = Vec::new();
            for _ in 0..repeat {
                let began = Instant::now();
                let (status, body) = http(api, "GET", &url, &headers, b"").await;
                times.push(began.elapsed());
                assert_eq!(status, 200, "{url}: {body}");
                assert!(body.len() > 1000, "{url}: {body}");
            }
            cells.push(format!("{:.1}", median(&mut times).as_secs_f64() * 1000.0));
        }
        rows.push(format!(
            "{store_rate:.0} | {name} | {} |",
            cells.join(" | ")
        ));
    }
    rows
}

/// A page timed: its name in the table, its path without the window, its request headers.
type Page = (&'static str, String, Vec<(&'static str, String)>);

/// One organization's TLS report for the day starting at `begin`: a few thousand sessions,
/// and some failures of a type that depends on the organization (so the failure breakdowns
/// have several rows).
fn tls_report(begin: i64, org: usize) -> String {
    let date = |t: i64| {
        time::OffsetDateTime::from_unix_timestamp(t)
            .expect("a date")
            .format(&time::format_description::well_known::Rfc3339)
            .expect("RFC 3339")
    };
    let failures = (begin / DAY + org as i64) % 7;
    let result_type = [
        "certificate-expired",
        "starttls-not-supported",
        "validation-failure",
    ][org % 3];
    json!({
        "organization-name": format!("Organization {org}"),
        "date-range": {"start-datetime": date(begin), "end-datetime": date(begin + DAY - 1)},
        "contact-info": format!("tlsrpt@org{org}.example"),
        "report-id": format!("{}-{org}", date(begin)),
        "policies": [{
            "policy": {
                "policy-type": "sts",
                "policy-string": ["version: STSv1", "mode: testing", "mx: mail.example.com", "max_age: 604800"],
                "policy-domain": DOMAIN,
                "mx-host": ["mail.example.com"]
            },
            "summary": {
                "total-successful-session-count": 1000 + org as i64 * 10,
                "total-failure-session-count": failures
            },
            "failure-details": if failures > 0 {
                json!([{
                    "result-type": result_type,
                    "sending-mta-ip": format!("198.51.100.{}", org + 1),
                    "receiving-mx-hostname": "mail.example.com",
                    "receiving-ip": "192.0.2.25",
                    "failed-session-count": failures
                }])
            } else {
                json!([])
            }
        }]
    })
    .to_string()
}

/// The address of DMARC source `i` (of the three documentation networks: 768 addresses).
fn source_ip(i: usize) -> String {
    let network = ["192.0.2", "198.51.100", "203.0.113"][(i / 256) % 3];
    format!("{network}.{}", i % 256)
}

/// One organization's DMARC aggregate report for the day starting at `begin`: `records` rows,
/// the sources of organization `org` (which move by one each day, so that over the window
/// every source is seen). Every 10th source fails SPF and DKIM (some quarantined), every 7th
/// passes DKIM only; the rest pass both. Volumes differ by source.
fn dmarc_report(begin: i64, org: usize, sizes: Sizes) -> String {
    let mut records = String::new();
    for k in 0..sizes.records {
        let source = (org * sizes.records + k + (begin / DAY) as usize) % sizes.sources;
        let count = 1 + (source * 37 + org) % 200;
        let (dkim, spf, disposition, from) = if source.is_multiple_of(10) {
            (
                "fail",
                "fail",
                if org.is_multiple_of(2) {
                    "quarantine"
                } else {
                    "none"
                },
                format!("forger{source}.example"),
            )
        } else if source.is_multiple_of(7) {
            ("pass", "fail", "none", format!("mailer{source}.example"))
        } else {
            ("pass", "pass", "none", DOMAIN.to_owned())
        };
        records.push_str(&format!(
            "<record><row><source_ip>{ip}</source_ip><count>{count}</count>\
             <policy_evaluated><disposition>{disposition}</disposition><dkim>{dkim}</dkim><spf>{spf}</spf></policy_evaluated></row>\
             <identifiers><header_from>{DOMAIN}</header_from></identifiers>\
             <auth_results><dkim><domain>{DOMAIN}</domain><result>{dkim}</result><selector>s{k}</selector></dkim>\
             <spf><domain>{from}</domain><result>{spf}</result></spf></auth_results></record>\n",
            ip = source_ip(source),
        ));
    }
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\" ?>\n<feedback>\
         <report_metadata><org_name>Organization {org}</org_name><email>dmarc@org{org}.example</email>\
         <report_id>dmarc-{begin}-{org}</report_id><date_range><begin>{begin}</begin><end>{end}</end></date_range></report_metadata>\
         <policy_published><domain>{DOMAIN}</domain><adkim>r</adkim><aspf>r</aspf><p>none</p><sp>none</sp><pct>100</pct></policy_published>\n\
         {records}</feedback>\n",
        end = begin + DAY - 1,
    )
}

/// Logs in to the dashboard with an API token through the login form, as a browser does;
/// the `Cookie` header value of the session.
async fn login(api: SocketAddr, token: &str) -> String {
    let (status, head, _) = http_full(api, "GET", "/login", &[], b"").await;
    assert_eq!(status, 200, "login page");
    let login_cookie = set_cookie(&head, "mtasts_login").expect("the login form's cookie");
    let form = format!("csrf={login_cookie}&email=&password={token}");
    let cookie = format!("mtasts_login={login_cookie}");
    let (status, head, body) = http_full(
        api,
        "POST",
        "/login",
        &[
            ("Cookie", cookie.as_str()),
            ("Content-Type", "application/x-www-form-urlencoded"),
        ],
        form.as_bytes(),
    )
    .await;
    let session = set_cookie(&head, "mtasts_session")
        .unwrap_or_else(|| panic!("no session after logging in: {status} {body}"));
    format!("mtasts_session={session}")
}

fn set_cookie(head: &str, name: &str) -> Option<String> {
    head.lines().find_map(|line| {
        let (field, value) = line.split_once(':')?;
        if !field.eq_ignore_ascii_case("set-cookie") {
            return None;
        }
        let pair = value.trim().split(';').next()?;
        let (cookie, value) = pair.split_once('=')?;
        (cookie == name && !value.is_empty()).then(|| value.to_owned())
    })
}

async fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> (u16, String) {
    let (status, _, body) = http_full(addr, method, path, headers, body).await;
    (status, body)
}

/// One HTTP/1.1 request on a new connection; the status, the head and the body.
async fn http_full(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> (u16, String, String) {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    let mut request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes()).await.expect("write");
    stream.write_all(body).await.expect("write");
    let mut response = Vec::new();
    tokio::time::timeout(Duration::from_secs(120), stream.read_to_end(&mut response))
        .await
        .expect("an answer in time")
        .expect("read");
    let text = String::from_utf8_lossy(&response).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, head.to_owned(), body.to_owned())
}

/// A PostgreSQL URL whose tables live in a new schema of the test database.
async fn fresh_schema() -> Option<String> {
    use mtasts_testkit::services;
    let url = services::postgres_url();
    let schema = services::unique("bench_render_");
    let admin = match sqlx::PgPool::connect(&url).await {
        Ok(pool) => pool,
        Err(e) => {
            eprintln!("PostgreSQL at {url} is not reachable ({e}): skipping it");
            return None;
        }
    };
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
        .execute(&admin)
        .await
        .expect("create the bench schema");
    Some(services::postgres_url_in_schema(&url, &schema))
}

fn median(times: &mut [Duration]) -> Duration {
    times.sort();
    times[times.len() / 2]
}

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}
