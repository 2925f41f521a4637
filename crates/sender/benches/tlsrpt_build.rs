//! The time to build and sign a day's TLS reports for many recipient domains (issue 12): the
//! resolver's store holds one day of results for `BENCH_DOMAINS` domains (one STS policy each,
//! successes, failures and two failure details); then, timed separately,
//!
//! 1. building every report as the daemon does after midnight (`tlsrpt::build::build_day`:
//!    read the day's groups in pages, render the RFC 8460 JSON, gzip it, store report and
//!    outbox rows in one transaction each), and
//! 2. composing and DKIM-signing the report mail of each (RFC 8460 §5.3 message, signed by
//!    the same signer as delivery), with an RSA-2048 and an Ed25519 key.
//!
//! Not a test: run by hand (see docs/benchmarks.md). Environment:
//! - `BENCH_DOMAINS` (default 10000): recipient domains, one report each.
//! - `BENCH_BACKENDS` (default `sqlite`; `sqlite,postgres` for both): PostgreSQL is the local
//!   test server (`MTASTS_TEST_POSTGRES_URL`) in a schema of its own.

use std::process::ExitCode;
use std::time::Instant;

use mtasts_proto::ResultType;
use mtasts_proto::tlsrpt::outgoing::{ReportMail, compose_mail};
use mtasts_proto::tlsrpt::report::PolicyType;
use mtasts_proto::tlsrpt::session::{FailureKey, PolicyKey};
use mtasts_sender::tlsrpt::build::{self, Sender, StoreAs};
use mtasts_sender::tlsrpt::deliver::mail::{DkimSigning, dkim_key_from_pem};
use mtasts_store::tlsrpt::{ResultRow, TlsrptDb};

/// 2026-12-06T00:00:00Z: the day the results are for.
const DAY: i64 = 1_796_515_200;
/// Rows per `record` call, as the collector commits them.
const BATCH: usize = 1000;

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() -> ExitCode {
    let domains = env_or("BENCH_DOMAINS", 10_000);
    let backends = std::env::var("BENCH_BACKENDS").unwrap_or_else(|_| "sqlite".into());
    mtasts_net::install_crypto_provider();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let keys = [("RSA-2048", "rsa"), ("Ed25519", "ed25519")]
        .map(|(name, algorithm)| (name, generate_key(algorithm)));
    println!("TLS reports of one day for {domains} recipient domains");
    println!(
        "| database | build + gzip + store (s) | reports/s | compose + sign, {} (s) | compose + sign, {} (s) |",
        keys[0].0, keys[1].0
    );
    println!("|---|---|---|---|---|");
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
        let row = runtime.block_on(async {
            let db = TlsrptDb::open(&url).await.expect("open the store");
            fill(&db, domains).await;
            let sender = Sender {
                organization: "Bench Mail".into(),
                contact: "tlsrpt@bench.example".into(),
                submitter: "bench.example".into(),
                max_report_bytes: mtasts_proto::tlsrpt::outgoing::DEFAULT_MAX_REPORT_BYTES,
            };
            let started = Instant::now();
            let built = build::build_day(
                &db,
                &sender,
                DAY,
                Some(StoreAs {
                    first_try: DAY + 86_400,
                    give_up_at: DAY + 2 * 86_400,
                }),
            )
            .await
            .expect("build the day");
            let build_secs = started.elapsed().as_secs_f64();
            assert_eq!(built.len(), domains, "one report per domain");
            let mut sign_secs = Vec::new();
            for (_, pem) in &keys {
                let signer = DkimSigning::new(
                    "bench.example",
                    "tlsrpt",
                    dkim_key_from_pem(pem).expect("DKIM key"),
                );
                let started = Instant::now();
                let mut bytes = 0usize;
                for report in &built {
                    let to = format!("tlsrpt@{}", report.domain);
                    let message_id = format!("{}@bench.example", report.report_id);
                    let mail = compose_mail(&ReportMail {
                        from: "tlsrpt@bench.example",
                        to: &to,
                        domain: &report.domain,
                        submitter: "bench.example",
                        report_id: &report.report_id,
                        organization: "Bench Mail",
                        date: DAY + 86_400,
                        message_id: &message_id,
                        file_name: &report.file_name,
                        gz: &report.gz,
                    });
                    let signature = signer.sign(&mail).expect("sign");
                    bytes += signature.len() + mail.len();
                }
                std::hint::black_box(bytes);
                sign_secs.push(started.elapsed().as_secs_f64());
            }
            db.close().await;
            format!(
                "| {backend} | {build_secs:.2} | {:.0} | {:.2} | {:.2} |",
                domains as f64 / build_secs,
                sign_secs[0],
                sign_secs[1]
            )
        });
        println!("{row}");
    }
    ExitCode::SUCCESS
}

/// One day of results: per domain, one STS policy with 1000 successes, 12 failures and two
/// failure details.
async fn fill(db: &TlsrptDb, domains: usize) {
    let mut batch = Vec::with_capacity(BATCH);
    for i in 0..domains {
        let domain = format!("d{i:06}.example");
        let mx = format!("mx.{domain}");
        let policy = PolicyKey {
            policy_type: PolicyType::Sts,
            domain: Some(domain.clone()),
            strings: vec![
                "version: STSv1".into(),
                "mode: enforce".into(),
                format!("mx: {mx}"),
                "max_age: 604800".into(),
            ],
            mx: vec![mx.clone()],
        };
        let detail = |result_type: ResultType, ip: &str| FailureKey {
            result_type,
            sending_ip: Some("192.0.2.1".into()),
            receiving_mx: Some(mx.clone()),
            receiving_helo: Some(mx.clone()),
            receiving_ip: Some(ip.into()),
            additional: None,
            reason_code: None,
        };
        batch.push(ResultRow {
            day: DAY,
            domain: domain.clone(),
            record: format!("v=TLSRPTv1; rua=mailto:tlsrpt@{domain},https://tlsrpt.{domain}/v1"),
            policy: policy.to_key(),
            successes: 1000,
            failures: 12,
            details: vec![
                (
                    detail(ResultType::CertificateExpired, "198.51.100.1").to_key(),
                    10,
                ),
                (
                    detail(ResultType::StarttlsNotSupported, "198.51.100.2").to_key(),
                    2,
                ),
            ],
        });
        if batch.len() == BATCH {
            db.record(&batch).await.expect("record results");
            batch.clear();
        }
    }
    if !batch.is_empty() {
        db.record(&batch).await.expect("record results");
    }
}

/// A private key in PKCS#8 PEM made by `openssl genpkey` (`rsa` is 2048 bits).
fn generate_key(algorithm: &str) -> String {
    let mut command = std::process::Command::new("openssl");
    command.args(["genpkey", "-algorithm", algorithm]);
    if algorithm == "rsa" {
        command.args(["-pkeyopt", "rsa_keygen_bits:2048"]);
    }
    let out = command.output().expect("run openssl genpkey");
    assert!(
        out.status.success(),
        "openssl genpkey -algorithm {algorithm}"
    );
    String::from_utf8(out.stdout).expect("PEM")
}

/// A fresh schema on the local PostgreSQL test server, or `None` (said) when it is down.
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
    admin.close().await;
    Some(services::postgres_url_in_schema(&url, &schema))
}
