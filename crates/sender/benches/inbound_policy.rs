//! Inbound policy service benchmark: Postfix `check_policy_service` requests answered per
//! second, with p50/p99 latency, at 1, 10 and 50 connections, against the resolver's policy
//! service in this process (on 127.0.0.1) with 1,000 sender rules, 100 client rules and 100
//! network rules. Each connection sends a Postfix-3.7-shaped RCPT request, waits for the
//! answer, and repeats; the requests cycle through refused, satisfied and no-rule sessions.
//! Not a test: run by hand (see docs/benchmarks.md).
//!
//! Environment:
//! - `BENCH_SECONDS` (default 5): measuring time per point.
//! - `BENCH_CONNECTIONS` (default `1,10,50`): the connection counts measured.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mtasts_sender::Config;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn main() {
    let seconds: u64 = env_or("BENCH_SECONDS", 5);
    let connections: Vec<usize> = std::env::var("BENCH_CONNECTIONS")
        .unwrap_or_else(|_| "1,10,50".to_owned())
        .split(',')
        .map(|n| n.trim().parse().expect("BENCH_CONNECTIONS: numbers"))
        .collect();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(run(Duration::from_secs(seconds), &connections));
}

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

async fn run(duration: Duration, connections: &[usize]) {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut toml = format!(
        "data_dir = \"{}\"\n[socketmap]\ntcp = []\n[http]\nlisten = []\n[cache]\nurl = \"memory\"\n[refresh]\nenabled = false\n[inbound]\ntcp = [\"127.0.0.1:0\"]\n[inbound.senders]\n",
        dir.path().display()
    );
    for i in 0..1000 {
        toml.push_str(&format!("\"partner{i}.example\" = \"encrypt\"\n"));
    }
    toml.push_str("[inbound.clients]\n");
    for i in 0..100 {
        toml.push_str(&format!("\".relay{i}.example\" = \"verify\"\n"));
    }
    toml.push_str("[inbound.networks]\n");
    for i in 0..100 {
        toml.push_str(&format!("\"10.{i}.0.0/16\" = \"encrypt\"\n"));
    }
    let config = Config::from_toml_str(&toml).expect("bench configuration");
    let server = mtasts_sender::bind(config, None).await.expect("bind");
    let addr = server.inbound_addrs()[0];
    let shutdown = tokio_util::sync::CancellationToken::new();
    let stop = shutdown.clone();
    tokio::spawn(async move {
        let _ = server.run(stop, Arc::new(tokio::sync::Notify::new())).await;
    });
    println!("| connections | requests/s | p50 µs | p99 µs |");
    println!("|---|---|---|---|");
    for &n in connections {
        let (count, mut latencies) = measure(addr, n, duration).await;
        latencies.sort_unstable();
        let pick =
            |q: f64| latencies[((latencies.len() as f64 * q) as usize).min(latencies.len() - 1)];
        println!(
            "| {n} | {:.0} | {} | {} |",
            count as f64 / duration.as_secs_f64(),
            pick(0.5),
            pick(0.99)
        );
    }
    shutdown.cancel();
}

/// A Postfix 3.7 RCPT request (every attribute it sends) for session `i`.
fn request(i: usize) -> Vec<u8> {
    let (sender, tls, client) = match i % 3 {
        0 => (format!("a@partner{}.example", i % 1000), "", "192.0.2.1"),
        1 => (
            format!("a@partner{}.example", i % 1000),
            "TLSv1.3",
            "192.0.2.1",
        ),
        _ => ("a@stranger.example".to_owned(), "", "198.51.100.1"),
    };
    format!(
        "request=smtpd_access_policy\nprotocol_state=RCPT\nprotocol_name=ESMTP\nclient_address={client}\nclient_name=unknown\nclient_port=40000\nreverse_client_name=unknown\nserver_address=127.0.0.1\nserver_port=25\nhelo_name=mx.partner.example\nsender={sender}\nrecipient=bob@inbound.example\nrecipient_count=0\nqueue_id=\ninstance=1c2b.6570d2f1.8a3f1.0\nsize=0\netrn_domain=\nstress=\nsasl_method=\nsasl_username=\nsasl_sender=\nccert_subject=\nccert_issuer=\nccert_fingerprint=\nccert_pubkey_fingerprint=\nencryption_protocol={tls}\nencryption_cipher=\nencryption_keysize=0\npolicy_context=\n\n"
    )
    .into_bytes()
}

async fn measure(addr: SocketAddr, connections: usize, duration: Duration) -> (u64, Vec<u32>) {
    let deadline = Instant::now() + duration;
    let mut tasks = Vec::new();
    for c in 0..connections {
        tasks.push(tokio::spawn(async move {
            let mut stream = TcpStream::connect(addr).await.expect("connect");
            stream.set_nodelay(true).expect("nodelay");
            let requests: Vec<Vec<u8>> = (0..300).map(|i| request(i + c)).collect();
            let mut latencies = Vec::new();
            let mut buf = vec![0u8; 4096];
            let mut i = 0;
            while Instant::now() < deadline {
                let started = Instant::now();
                stream
                    .write_all(&requests[i % requests.len()])
                    .await
                    .expect("write");
                let mut got = 0;
                loop {
                    let n = stream.read(&mut buf[got..]).await.expect("read");
                    assert!(n > 0, "closed");
                    got += n;
                    if buf[..got].ends_with(b"\n\n") {
                        break;
                    }
                }
                latencies.push(started.elapsed().as_micros() as u32);
                i += 1;
            }
            latencies
        }));
    }
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await.expect("client task"));
    }
    (all.len() as u64, all)
}
