//! TLS-RPT datagrams absorbed per second by the collector without loss. Not a test: run by
//! hand (see docs/benchmarks.md, "TLS-RPT datagram collection").
//!
//! K threads send N libtlsrpt datagrams (the testkit emitter's bytes: D recipient domains,
//! one STS policy each, one in ten a failure with a detail) as fast as they can to the
//! collector's real UNIX datagram socket; the collector commits into a real SQLite or
//! PostgreSQL store. Then the stored counts are compared with what was sent and with what the
//! kernel refused:
//!
//! * `nonblocking` senders behave as libtlsrpt: a full socket queue refuses the datagram
//!   (`EAGAIN`) and it is lost at the sender. That count is the kernel's loss; every datagram
//!   the kernel accepted must be in the store.
//! * `blocking` senders wait for room instead: nothing is refused, so the rate is what the
//!   collector absorbs at most.
//!
//! The Linux queue of a datagram socket holds `net.unix.max_dgram_qlen` datagrams (10 by
//! default; systemd raises it to 512), printed in the header: it, not the collector, decides
//! how many a burst from non-blocking senders loses.
//!
//! Environment: `BENCH_DATAGRAMS` (default 200000), `BENCH_THREADS` (default 4),
//! `BENCH_DOMAINS` (default 1000), `BENCH_BACKENDS` (default `sqlite,postgres`; PostgreSQL
//! is the local test server in a schema of its own), `BENCH_MODES` (default
//! `nonblocking,blocking`), `BENCH_RATE` (default 0: as fast as possible; else datagrams per
//! second over all threads, paced, as a busy MTA sends them).

use std::io::ErrorKind;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mtasts_proto::rollup::day_of;
use mtasts_sender::clock::ManualClock;
use mtasts_sender::config::UnixSocketConfig;
use mtasts_sender::metrics::Metrics;
use mtasts_sender::tlsrpt::collect::{CollectOptions, Collector};
use mtasts_store::tlsrpt::TlsrptDb;

/// Arrival time of every result (2026-12-07 12:00 UTC): one day for the whole run.
const NOW: u64 = 1_796_644_800;

fn main() -> ExitCode {
    let datagrams = env_or("BENCH_DATAGRAMS", 200_000);
    let threads = env_or("BENCH_THREADS", 4).max(1);
    let domains = env_or("BENCH_DOMAINS", 1000).max(1);
    let backends = std::env::var("BENCH_BACKENDS").unwrap_or_else(|_| "sqlite,postgres".into());
    let modes = std::env::var("BENCH_MODES").unwrap_or_else(|_| "nonblocking,blocking".into());
    let rate = env_or("BENCH_RATE", 0);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    println!(
        "TLS-RPT datagrams: {datagrams} from {threads} threads, {domains} domains, rate {}; \
         net.unix.max_dgram_qlen {}, net.core.rmem_max {}, load {}",
        if rate == 0 {
            "unpaced".to_string()
        } else {
            format!("{rate}/s")
        },
        sysctl("net/unix/max_dgram_qlen"),
        sysctl("net/core/rmem_max"),
        std::fs::read_to_string("/proc/loadavg")
            .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
            .unwrap_or_default()
    );
    println!(
        "| store | senders | sent | refused by the kernel (EAGAIN) | accepted by the kernel | stored | lost after the kernel | accepted/s | all committed after |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    let payloads = Arc::new(payloads(domains));
    let mut failed = false;
    for backend in backends.split(',').map(str::trim).filter(|b| !b.is_empty()) {
        for mode in modes.split(',').map(str::trim).filter(|m| !m.is_empty()) {
            match runtime.block_on(run(
                backend,
                mode == "blocking",
                datagrams,
                threads,
                rate,
                &payloads,
            )) {
                Ok(row) => println!("{row}"),
                Err(e) => {
                    eprintln!("{backend} {mode}: {e}");
                    failed = true;
                }
            }
        }
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

/// The datagrams sent, round robin: per domain one success and, for one domain in ten, a
/// failure.
fn payloads(domains: usize) -> Vec<(Vec<u8>, bool)> {
    let mut out = Vec::new();
    for i in 0..domains {
        let domain = format!("d{i}.bench.example");
        out.push((datagram(&domain, false), false));
        if i % 10 == 0 {
            out.push((datagram(&domain, true), true));
        }
    }
    out
}

fn datagram(domain: &str, failed: bool) -> Vec<u8> {
    emitter::datagram(domain, failed)
}

async fn run(
    backend: &str,
    blocking: bool,
    datagrams: usize,
    threads: usize,
    rate: usize,
    payloads: &Arc<Vec<(Vec<u8>, bool)>>,
) -> Result<String, String> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let (url, schema) = match backend {
        "sqlite" => (
            format!("sqlite:{}", dir.path().join("tlsrpt.sqlite").display()),
            None,
        ),
        "postgres" => {
            let schema = format!("bench_tlsrpt_{}", std::process::id());
            psql(&format!(
                "DROP SCHEMA IF EXISTS {schema} CASCADE; CREATE SCHEMA {schema}"
            ))?;
            let base = std::env::var("MTASTS_TEST_POSTGRES_URL")
                .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
            (
                format!("{base}?options[search_path]={schema}"),
                Some(schema),
            )
        }
        other => return Err(format!("unknown backend {other}")),
    };
    let db = TlsrptDb::open(&url).await.map_err(|e| e.to_string())?;
    let metrics = Arc::new(Metrics::new());
    let socket: PathBuf = dir.path().join("tlsrpt.sock");
    let collector = Collector::start(
        &CollectOptions {
            socket: Some(UnixSocketConfig {
                path: socket.clone(),
                owner: None,
                group: None,
                mode: "0660".into(),
            }),
            max_pending_results: 100_000,
            commit_interval: Duration::from_millis(500),
            drain: Duration::from_secs(30),
        },
        Arc::new(db.clone()),
        metrics.clone(),
        Arc::new(ManualClock::new(NOW)),
    )
    .map_err(|e| e.to_string())?;

    let start = Instant::now();
    let per_thread = datagrams.div_ceil(threads);
    let senders: Vec<_> = (0..threads)
        .map(|t| {
            let payloads = payloads.clone();
            let socket = socket.clone();
            let count = per_thread.min(datagrams.saturating_sub(t * per_thread));
            let interval =
                (rate > 0).then(|| Duration::from_secs_f64(threads as f64 / rate as f64));
            std::thread::spawn(move || send(&socket, &payloads, t, count, blocking, interval))
        })
        .collect();
    let (mut accepted, mut refused, mut failures_accepted) = (0u64, 0u64, 0u64);
    for s in senders {
        let (a, r, f) = s.join().map_err(|_| "a sender thread panicked")??;
        accepted += a;
        refused += r;
        failures_accepted += f;
    }
    let send_time = start.elapsed();
    // Everything read and committed: the collector counted every accepted datagram and holds
    // nothing (bounded wait).
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let counted = counter(&metrics, "success") + counter(&metrics, "failure");
        let dropped: u64 = dropped(&metrics);
        if counted + dropped >= accepted && collector.held() == 0 {
            break;
        }
        if Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let committed_after = start.elapsed();
    collector.shutdown().await;
    let (successes, failures) = stored(&db).await?;
    db.close().await;
    if let Some(schema) = schema {
        let _ = psql(&format!("DROP SCHEMA {schema} CASCADE"));
    }
    let stored = successes + failures;
    if failures != failures_accepted {
        return Err(format!(
            "stored {failures} failures, the kernel accepted {failures_accepted}"
        ));
    }
    Ok(format!(
        "| {backend} | {} × {threads} | {} | {refused} | {accepted} | {stored} | {} | {:.0} | {:.2} s |",
        if blocking { "blocking" } else { "non-blocking" },
        accepted + refused,
        accepted as i64 - stored as i64,
        accepted as f64 / send_time.as_secs_f64(),
        committed_after.as_secs_f64(),
    ))
}

/// One sender thread: `count` datagrams; (accepted, refused, failures accepted).
fn send(
    socket: &Path,
    payloads: &[(Vec<u8>, bool)],
    thread: usize,
    count: usize,
    blocking: bool,
    interval: Option<Duration>,
) -> Result<(u64, u64, u64), String> {
    let sender = UnixDatagram::unbound().map_err(|e| e.to_string())?;
    sender
        .set_nonblocking(!blocking)
        .map_err(|e| e.to_string())?;
    let (mut accepted, mut refused, mut failures) = (0, 0, 0);
    let start = Instant::now();
    for i in 0..count {
        if let Some(interval) = interval {
            let due = start + interval * i as u32;
            let now = Instant::now();
            if due > now {
                std::thread::sleep(due - now);
            }
        }
        let (bytes, failed) = &payloads[(thread * 7919 + i) % payloads.len()];
        match sender.send_to(bytes, socket) {
            Ok(_) => {
                accepted += 1;
                failures += u64::from(*failed);
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => refused += 1,
            Err(e) => return Err(format!("send: {e}")),
        }
    }
    Ok((accepted, refused, failures))
}

fn counter(metrics: &Metrics, outcome: &str) -> u64 {
    series(
        metrics,
        &format!("mtasts_resolver_tlsrpt_results_total{{outcome=\"{outcome}\"}}"),
    )
}

fn dropped(metrics: &Metrics) -> u64 {
    metrics
        .encode()
        .lines()
        .filter(|l| l.starts_with("mtasts_resolver_tlsrpt_datagrams_dropped_total{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

fn series(metrics: &Metrics, name: &str) -> u64 {
    metrics
        .encode()
        .lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or(0)
}

async fn stored(db: &TlsrptDb) -> Result<(u64, u64), String> {
    let day = day_of(NOW as i64);
    let (mut successes, mut failures) = (0, 0);
    let mut after: Option<(String, String)> = None;
    loop {
        let page = db
            .day_groups(
                day,
                after.as_ref().map(|(d, r)| (d.as_str(), r.as_str())),
                10_000,
            )
            .await
            .map_err(|e| e.to_string())?;
        let Some(last) = page.last() else { break };
        after = Some((last.domain.clone(), last.record.clone()));
        for group in page {
            for p in group.policies {
                successes += p.successes;
                failures += p.failures;
            }
        }
    }
    Ok((successes, failures))
}

fn psql(sql: &str) -> Result<(), String> {
    let base = std::env::var("MTASTS_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    let out = Command::new("psql")
        .arg(&base)
        .args(["-q", "-v", "ON_ERROR_STOP=1", "-c", sql])
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run psql: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).trim().to_string())
    }
}

fn sysctl(name: &str) -> String {
    std::fs::read_to_string(Path::new("/proc/sys").join(name))
        .map(|v| v.trim().to_string())
        .unwrap_or_else(|_| "?".into())
}

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

mod emitter {
    use mtasts_testkit::libtlsrpt::{DeliveryRequest, Failure, POLICY_STS};

    /// What Postfix sends for one delivery to `domain` under an STS policy.
    pub(super) fn datagram(domain: &str, failed: bool) -> Vec<u8> {
        let record = format!("v=TLSRPTv1; rua=mailto:tlsrpt@{domain}");
        let mut dr = DeliveryRequest::new(domain.as_bytes(), record.as_bytes());
        dr.init_policy(POLICY_STS, Some(domain.as_bytes()));
        for line in ["version: STSv1", "mode: enforce", "max_age: 604800"] {
            dr.add_policy_string(line.as_bytes());
        }
        let mx = format!("mx: *.mx.{domain}");
        dr.add_policy_string(mx.as_bytes());
        let pattern = format!("*.mx.{domain}");
        dr.add_mx_host_pattern(pattern.as_bytes());
        if failed {
            let host = format!("a.mx.{domain}");
            dr.add_failure(&Failure {
                code: 204,
                sending_mta_ip: Some(b"192.0.2.25"),
                receiving_mx_hostname: Some(host.as_bytes()),
                receiving_ip: Some(b"198.51.100.7"),
                ..Failure::default()
            });
        }
        dr.finish_policy(i32::from(failed));
        dr.finish()
    }
}
