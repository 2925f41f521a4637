//! Socketmap benchmark: cached Postfix TLS-policy lookups per second and p50/p99 latency at 1,
//! 10 and 50 connections, against (a) `mtasts resolver`, (b) postfix-mta-sts-resolver and (c) a
//! trivial server that answers a constant (the floor of this machine), all in one run on the
//! same fixture. Optionally the resident memory of `mtasts resolver` holding N cached policies.
//! Not a test: run by hand as root (see docs/benchmarks.md).
//!
//! Environment:
//! - `BENCH_SECONDS` (default 5): measuring time per point.
//! - `BENCH_PY_DAEMON`: path to postfix-mta-sts-resolver's `mta-sts-daemon` (skipped if unset).
//! - `BENCH_MEMORY_POLICIES`: also measure RSS after caching this many policies (e.g. 100000).
//! - `BENCH_MTASTS_BASELINE`: path to another `mtasts` binary (an earlier build) measured as one
//!   more server, for before/after comparisons in the same run.
//! - `BENCH_ROUNDS` (default 1): measure every server this many times, round after round, so
//!   that ratios can be taken from paired rounds on a shared machine.
//! - `BENCH_CONNECTIONS` (default `1,10,50`): the connection counts measured.

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mtasts_proto::socketmap::encode_netstring;
use mtasts_testkit::smtp::MxHostSpec;
use mtasts_testkit::{PolicyHostSpec, PolicyResponse, Ports, TestNet};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

/// Domains the load cycles through (all cached before measuring).
const DOMAINS: usize = 100;
const TRIVIAL_ANSWER: &[u8] = b"OK secure match=mx.bench.test servername=hostname";

fn main() {
    if std::env::var("BENCH_ROLE").as_deref() == Ok("trivial") {
        return trivial_server();
    }
    let seconds = env_or("BENCH_SECONDS", 5) as u64;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(run(Duration::from_secs(seconds)));
}

async fn run(duration: Duration) {
    let policies: usize = env_or("BENCH_MEMORY_POLICIES", 0);
    let net = TestNet::start_with_ports(Ports::standard())
        .await
        .expect("fixture on ports 53/443/25 (run as root)");
    let names = fixture(&net, DOMAINS.max(policies)).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let mut servers: Vec<(String, Server)> = Vec::new();
    servers.push(("trivial constant server (floor)".into(), Server::trivial()));
    servers.push((
        "mtasts resolver --cache memory".into(),
        Server::mtasts(&net, env!("CARGO_BIN_EXE_mtasts")),
    ));
    if let Ok(baseline) = std::env::var("BENCH_MTASTS_BASELINE") {
        servers.push((
            format!("mtasts resolver, baseline build {baseline}"),
            Server::mtasts(&net, &baseline),
        ));
    }
    if let Ok(daemon) = std::env::var("BENCH_PY_DAEMON") {
        servers.push((
            "postfix-mta-sts-resolver 1.5.1".into(),
            Server::python(&net, &daemon, dir.path()),
        ));
    }
    let rounds = env_or("BENCH_ROUNDS", 1).max(1);
    let connection_counts: Vec<usize> = std::env::var("BENCH_CONNECTIONS")
        .unwrap_or_else(|_| "1,10,50".into())
        .split(',')
        .map(|n| n.trim().parse().expect("BENCH_CONNECTIONS: numbers"))
        .collect();
    for (label, server) in &servers {
        server.wait_ready().await;
        // Warm the cache: every domain once, and check that the answer is a secure policy.
        for name in &names[..DOMAINS] {
            let reply = one_lookup(server.addr, name).await;
            assert!(
                reply.starts_with(b"OK secure"),
                "{label}: {name} -> {}",
                String::from_utf8_lossy(&reply)
            );
        }
    }
    println!(
        "| round | server | connections | lookups/s | p50 µs | p99 µs | server CPU µs/lookup |"
    );
    println!("|---|---|---|---|---|---|---|");
    for round in 1..=rounds {
        for (label, server) in &servers {
            for &connections in &connection_counts {
                let cpu_before = server.cpu_seconds();
                let (rate, p50, p99) =
                    load(server.addr, &names[..DOMAINS], connections, duration).await;
                let cpu = server.cpu_seconds() - cpu_before;
                let per_lookup = cpu * 1e6 / (rate * duration.as_secs_f64()).max(1.0);
                println!(
                    "| {round} | {label} | {connections} | {rate:.0} | {p50} | {p99} | {per_lookup:.1} |"
                );
            }
        }
    }
    if policies > 0 {
        let server = &servers[1].1;
        let start = Instant::now();
        for name in &names {
            let reply = one_lookup(server.addr, name).await;
            assert!(
                reply.starts_with(b"OK secure"),
                "{name} -> {}",
                String::from_utf8_lossy(&reply)
            );
        }
        let rss = server.rss_kib().unwrap_or(0);
        println!(
            "mtasts resolver holding {} cached policies: RSS {:.1} MiB (discovered in {:.1} s)",
            names.len(),
            rss as f64 / 1024.0,
            start.elapsed().as_secs_f64()
        );
    }
    drop(servers);
}

/// `n` enforce domains `dN.bench.test` with one MX, each with its own policy host name and
/// certificate on one shared HTTPS listener.
async fn fixture(net: &TestNet, n: usize) -> Vec<String> {
    net.add_mx_host("mx.bench.test", MxHostSpec::default())
        .await;
    let https_ip = net.next_ip();
    net.start_https_listener(https_ip).await;
    let policy = "version: STSv1\nmode: enforce\nmx: mx.bench.test\nmax_age: 604800\n";
    let mut names = Vec::with_capacity(n);
    for i in 0..n {
        let d = format!("d{i}.bench.test");
        net.zone().add_mx(&d, 10, "mx.bench.test");
        net.zone()
            .add_txt(&format!("_mta-sts.{d}"), &["v=STSv1; id=1"]);
        net.zone().add_ip(&format!("mta-sts.{d}"), https_ip);
        net.set_policy_host(&d, PolicyHostSpec::new(PolicyResponse::policy(policy)));
        names.push(d);
    }
    names
}

struct Server {
    addr: SocketAddr,
    child: Child,
}

impl Server {
    fn trivial() -> Server {
        let port = free_port();
        let child = Command::new(std::env::current_exe().expect("own path"))
            .env("BENCH_ROLE", "trivial")
            .env("BENCH_PORT", port.to_string())
            .stdout(Stdio::null())
            .spawn()
            .expect("start the trivial server");
        Server {
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            child,
        }
    }

    fn mtasts(net: &TestNet, binary: &str) -> Server {
        let port = free_port();
        let child = Command::new(binary)
            .args([
                "resolver",
                "--listen",
                &format!("127.0.0.1:{port}"),
                "--cache",
                "memory",
                "--timeout",
                "5",
            ])
            .args(["--ca-file", net.ca_file().to_str().expect("utf-8 path")])
            .args(["--dns", &net.dns_addr().to_string()])
            .env("MTASTS_LOG", "error")
            .stdout(Stdio::null())
            .spawn()
            .expect("start mtasts resolver");
        Server {
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            child,
        }
    }

    /// postfix-mta-sts-resolver resolves with the system resolver: run it in a private mount
    /// namespace whose /etc/resolv.conf names the fixture's DNS server.
    fn python(net: &TestNet, daemon: &str, dir: &std::path::Path) -> Server {
        let port = free_port();
        let config = dir.join("mta-sts-daemon.yml");
        std::fs::write(
            &config,
            format!(
                "host: 127.0.0.1\nport: {port}\nreuse_port: true\ncache_grace: 3600\ncache:\n  type: internal\n  options:\n    cache_size: 10000\ndefault_zone:\n  strict_testing: false\n  timeout: 5\n  require_sni: true\n"
            ),
        )
        .expect("write config");
        let resolv = dir.join("resolv.conf");
        std::fs::write(&resolv, format!("nameserver {}\n", net.dns_addr().ip()))
            .expect("write resolv.conf");
        let child = Command::new("unshare")
            .args([
                "-m",
                "sh",
                "-c",
                "mount --bind \"$0\" /etc/resolv.conf && exec \"$@\"",
            ])
            .arg(&resolv)
            .arg(daemon)
            .args(["-c", config.to_str().expect("utf-8 path"), "-v", "error"])
            .env("SSL_CERT_FILE", net.ca_file())
            .stdout(Stdio::null())
            .spawn()
            .expect("start mta-sts-daemon");
        Server {
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            child,
        }
    }

    async fn wait_ready(&self) {
        for _ in 0..200 {
            if TcpStream::connect(self.addr).await.is_ok() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("server at {} did not start", self.addr);
    }

    /// User plus system CPU time of the server process so far, from /proc/<pid>/stat.
    fn cpu_seconds(&self) -> f64 {
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{}/stat", self.child.id())) else {
            return 0.0;
        };
        // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
        let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else {
            return 0.0;
        };
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let ticks = |i: usize| {
            fields
                .get(i)
                .and_then(|f| f.parse::<f64>().ok())
                .unwrap_or(0.0)
        };
        // Clock ticks are 100 per second on Linux.
        (ticks(11) + ticks(12)) / 100.0
    }

    fn rss_kib(&self) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).ok()?;
        let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
        line.split_whitespace().nth(1)?.parse().ok()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `connections` clients, each sending one lookup at a time for `duration`.
async fn load(
    addr: SocketAddr,
    names: &[String],
    connections: usize,
    duration: Duration,
) -> (f64, u128, u128) {
    let names = Arc::new(names.to_vec());
    let deadline = Instant::now() + duration;
    let mut tasks = Vec::new();
    for c in 0..connections {
        let names = names.clone();
        tasks.push(tokio::spawn(async move {
            let stream = TcpStream::connect(addr).await.expect("connect");
            stream.set_nodelay(true).ok();
            let (read, mut write) = stream.into_split();
            let mut read = BufReader::new(read);
            let requests: Vec<Vec<u8>> = names
                .iter()
                .map(|n| encode_netstring(format!("postfix {n}").as_bytes()))
                .collect();
            let mut latencies = Vec::new();
            let mut buf = vec![0u8; 4096];
            let mut i = c;
            while Instant::now() < deadline {
                let request = &requests[i % requests.len()];
                i += 1;
                let start = Instant::now();
                write.write_all(request).await.expect("write");
                read_netstring(&mut read, &mut buf).await;
                latencies.push(start.elapsed().as_micros());
            }
            latencies
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.expect("client task"));
    }
    all.sort_unstable();
    let pct = |p: f64| {
        all.get(((all.len() as f64 * p) as usize).min(all.len().saturating_sub(1)))
            .copied()
            .unwrap_or(0)
    };
    (
        all.len() as f64 / duration.as_secs_f64(),
        pct(0.50),
        pct(0.99),
    )
}

async fn one_lookup(addr: SocketAddr, name: &str) -> Vec<u8> {
    let mut stream = BufReader::new(TcpStream::connect(addr).await.expect("connect"));
    stream
        .get_mut()
        .write_all(&encode_netstring(format!("postfix {name}").as_bytes()))
        .await
        .expect("write");
    let mut buf = vec![0u8; 100_016];
    read_netstring(&mut stream, &mut buf).await
}

/// Reads one netstring reply from a buffered stream (the load generator trusts the servers
/// under test).
async fn read_netstring<R: AsyncRead + Unpin>(
    stream: &mut BufReader<R>,
    buf: &mut Vec<u8>,
) -> Vec<u8> {
    let mut len = 0usize;
    loop {
        let b = stream.read_u8().await.expect("reply length");
        if b == b':' {
            break;
        }
        len = len * 10 + usize::from(b - b'0');
    }
    if buf.len() < len + 1 {
        buf.resize(len + 1, 0);
    }
    stream
        .read_exact(&mut buf[..len + 1])
        .await
        .expect("reply body");
    buf[..len].to_vec()
}

/// The floor: answers every netstring with the same reply, on the same multi-threaded tokio
/// runtime the daemon uses; no parsing, no lookup.
fn trivial_server() {
    let port: u16 = env_or("BENCH_PORT", 0) as u16;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async move {
        let listener = TcpListener::bind(("127.0.0.1", port)).await.expect("bind");
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            tokio::spawn(async move {
                stream.set_nodelay(true).ok();
                let (read, mut write) = stream.into_split();
                let mut read = BufReader::new(read);
                let reply = encode_netstring(TRIVIAL_ANSWER);
                let mut buf = vec![0u8; 10_016];
                loop {
                    let mut len = 0usize;
                    loop {
                        let Ok(b) = read.read_u8().await else {
                            return;
                        };
                        if b == b':' {
                            break;
                        }
                        len = len * 10 + usize::from(b.wrapping_sub(b'0'));
                        if len > 10_000 {
                            return;
                        }
                    }
                    if read.read_exact(&mut buf[..len + 1]).await.is_err()
                        || write.write_all(&reply).await.is_err()
                    {
                        return;
                    }
                }
            });
        }
    });
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}
