//! The outgoing TLS-report database (`mtasts_store::tlsrpt`) at fleet scale: the time to
//! record a day's results for many recipient domains in one batch (new rows, then the same
//! rows again as upserts), to page through that day's groups as the report builder does, to
//! store one report per domain with its outbox entry, and to lease and finish every delivery,
//! on SQLite and on PostgreSQL. Not a test: run by hand (see docs/benchmarks.md).
//!
//! Environment:
//! - `BENCH_DOMAINS` (default 10000): recipient domains, each with an MTA-STS policy of 90
//!   successes and a failure detail, and a no-policy-found policy.
//! - `BENCH_PAGE` (default 1000): groups per `day_groups` page and deliveries per lease.
//! - `BENCH_BACKENDS` (default `sqlite,postgres`): which databases to measure; PostgreSQL is
//!   the local test server (`MTASTS_TEST_POSTGRES_URL`), in a schema of its own.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use mtasts_store::tlsrpt::{DeliveryOutcome, Inserted, NewReport, ResultRow, TlsrptDb};

/// 2024-03-25T00:00:00Z.
const DAY_START: i64 = 1_711_324_800;
const DAY: i64 = 86_400;

fn main() -> ExitCode {
    let domains = env_or("BENCH_DOMAINS", 10_000);
    let page = env_or("BENCH_PAGE", 1000).max(1);
    let backends = std::env::var("BENCH_BACKENDS").unwrap_or_else(|_| "sqlite,postgres".into());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    println!("{domains} domains x 2 policies (+1 failure detail), pages of {page}; times in ms");
    println!(
        "| database | record (new) | record (upsert) | day_groups (all pages) | insert_report (all) | lease + finish (all) |"
    );
    println!("|---|---|---|---|---|---|");
    for backend in backends.split(',').map(str::trim).filter(|b| !b.is_empty()) {
        let dir = tempfile::tempdir().expect("temp dir");
        let url = match backend {
            "sqlite" => format!("sqlite:{}", dir.path().join("tlsrpt.sqlite").display()),
            "postgres" => match runtime.block_on(fresh_schema()) {
                Some(url) => url,
                None => continue,
            },
            other => {
                eprintln!("unknown backend {other:?} (sqlite, postgres)");
                return ExitCode::FAILURE;
            }
        };
        let times = runtime.block_on(measure(&url, domains, page));
        println!(
            "| {backend} | {} | {} | {} | {} | {} |",
            ms(times[0]),
            ms(times[1]),
            ms(times[2]),
            ms(times[3]),
            ms(times[4])
        );
    }
    ExitCode::SUCCESS
}

async fn measure(url: &str, domains: usize, page: usize) -> [Duration; 5] {
    let db = TlsrptDb::open(url).await.expect("open");
    let batch: Vec<ResultRow> = (0..domains)
        .flat_map(|i| {
            let domain = format!("d{i:06}.example");
            let record = format!("v=TLSRPTv1; rua=mailto:tlsrpt@{domain}");
            [
                ResultRow {
                    day: DAY_START,
                    domain: domain.clone(),
                    record: record.clone(),
                    policy: format!(
                        r#"{{"policy-type":"sts","policy-domain":"{domain}","policy-string":["version: STSv1","mode: enforce","mx: mx.{domain}","max_age: 604800"],"mx-host":["mx.{domain}"]}}"#
                    ),
                    successes: 90,
                    failures: 1,
                    details: vec![(
                        format!(
                            r#"{{"result-type":"certificate-expired","receiving-mx-hostname":"mx.{domain}","sending-mta-ip":"192.0.2.1"}}"#
                        ),
                        1,
                    )],
                },
                ResultRow {
                    day: DAY_START,
                    domain,
                    record,
                    policy: r#"{"policy-type":"no-policy-found"}"#.into(),
                    successes: 3,
                    failures: 0,
                    details: Vec::new(),
                },
            ]
        })
        .collect();

    let started = Instant::now();
    db.record(&batch).await.expect("record");
    let record_new = started.elapsed();
    let started = Instant::now();
    db.record(&batch).await.expect("record again");
    let record_upsert = started.elapsed();

    let started = Instant::now();
    let mut groups = Vec::with_capacity(domains);
    let mut after: Option<(String, String)> = None;
    loop {
        let got = db
            .day_groups(
                DAY_START,
                after.as_ref().map(|(d, r)| (d.as_str(), r.as_str())),
                page,
            )
            .await
            .expect("day_groups");
        let last = got.last().map(|g| (g.domain.clone(), g.record.clone()));
        let full = got.len() == page;
        groups.extend(got);
        match last {
            Some(last) if full => after = Some(last),
            _ => break,
        }
    }
    let paging = started.elapsed();
    assert_eq!(groups.len(), domains, "every group read once");

    let first_try = DAY_START + DAY;
    let started = Instant::now();
    for group in &groups {
        let inserted = db
            .insert_report(&NewReport {
                day: DAY_START,
                domain: group.domain.clone(),
                record: group.record.clone(),
                report_id: format!("{DAY_START}.{}@example.net", group.domain),
                file_name: format!(
                    "example.net!{}!{DAY_START}!{}.json.gz",
                    group.domain,
                    first_try - 1
                ),
                json_bytes: 700,
                gz: vec![0x1f; 400],
                destinations: vec![format!("mailto:tlsrpt@{}", group.domain)],
                first_try,
                give_up_at: first_try + DAY,
            })
            .await
            .expect("insert_report");
        assert!(matches!(inserted, Inserted::New(_)));
    }
    let inserting = started.elapsed();

    let started = Instant::now();
    let mut finished = 0;
    loop {
        let leased = db
            .lease_due(first_try, "bench", 600, page)
            .await
            .expect("lease_due");
        if leased.is_empty() {
            break;
        }
        for delivery in leased {
            db.finish(delivery.id, &DeliveryOutcome::Delivered, first_try)
                .await
                .expect("finish");
            finished += 1;
        }
    }
    let leasing = started.elapsed();
    assert_eq!(finished, domains, "every delivery leased once");
    db.close().await;
    [record_new, record_upsert, paging, inserting, leasing]
}

async fn fresh_schema() -> Option<String> {
    use mtasts_testkit::services;
    let url = services::postgres_url();
    let schema = services::unique("bench_tlsrpt_");
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

fn ms(d: Duration) -> String {
    format!("{:.1}", d.as_secs_f64() * 1000.0)
}

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}
