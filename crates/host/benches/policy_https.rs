//! Policy requests per second over HTTPS: `mtasts serve`'s policy host against Debian nginx
//! serving the same body with the same certificate, in the same run, with keep-alive and with
//! a full TLS handshake per request. Not a test: run by hand (see docs/benchmarks.md).
//!
//! Both servers run as separate processes on their own loopback addresses, so neither shares a
//! runtime with the load generator; all three share the machine's cores, which is why the
//! server CPU time per request is reported next to the throughput.
//!
//! Environment:
//! - `BENCH_SECONDS` (default 5): measuring time per point, after a 1 s warm-up.
//! - `BENCH_CONNECTIONS` (default 32): concurrent clients.
//! - `BENCH_RUNS` (default 3): rounds; each round measures every server in every mode, and the
//!   summary is the median of the rounds.
//! - `BENCH_NGINX` (default `/usr/sbin/nginx`): the nginx binary; skipped when absent.
//! - `BENCH_MODES` (default `keep-alive,handshake`): which modes to measure (one alone is
//!   handy under a profiler).

use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Read as _, Write as _};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mtasts_host::policy_host::{ListenerLimits, PolicyHost, certified_key_from_pem};
use mtasts_host::snapshot::{HostedDomain, Snapshot, ZoneSettings, handle};
use mtasts_proto::hosted::delegation::Delegation;
use mtasts_testkit::{CertSpec, TestCa};
use rustls::client::Resumption;
use rustls::pki_types::ServerName;
use rustls::{ClientConfig, RootCertStore};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

const HOST: &str = "mta-sts.example.com";
const POLICY: &str =
    "version: STSv1\r\nmode: enforce\r\nmx: mail.example.com\r\nmax_age: 604800\r\n";
const PATH: &str = "/.well-known/mta-sts.txt";
const WARM_UP: Duration = Duration::from_secs(1);
/// A response that takes longer than this is a failure, not a slow request.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(10);
/// Loopback addresses of their own, so nothing else on the machine is measured by mistake.
const MTASTS_IP: Ipv4Addr = Ipv4Addr::new(127, 84, 61, 1);
const NGINX_IP: Ipv4Addr = Ipv4Addr::new(127, 84, 61, 2);

fn main() -> ExitCode {
    if std::env::var("BENCH_ROLE").as_deref() == Ok("policy-host") {
        policy_host_role();
        return ExitCode::SUCCESS;
    }
    let seconds = env_or("BENCH_SECONDS", 5);
    let connections = env_or("BENCH_CONNECTIONS", 32);
    let runs = env_or("BENCH_RUNS", 3).max(1);

    let ca = TestCa::new();
    let cert = ca.issue(HOST, &CertSpec::Valid);
    let dir = tempfile::tempdir().expect("temp dir");
    write(&dir.path().join("cert.pem"), &cert.chain_pem());
    write(&dir.path().join("key.pem"), &cert.key_pem());
    write(&dir.path().join("mta-sts.txt"), POLICY);

    let mut servers = vec![Server::policy_host(dir.path())];
    let nginx = PathBuf::from(
        std::env::var("BENCH_NGINX").unwrap_or_else(|_| "/usr/sbin/nginx".to_string()),
    );
    if nginx.exists() {
        servers.push(Server::nginx(&nginx, dir.path()));
    } else {
        eprintln!(
            "{} not found: measuring the policy host alone (install Debian's nginx to compare)",
            nginx.display()
        );
    }

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let ok = runtime.block_on(run(
        &servers,
        ca.root_store(),
        Duration::from_secs(seconds as u64),
        connections,
        runs,
    ));
    drop(servers);
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    /// One TLS connection per client, requests back to back on it.
    KeepAlive,
    /// A new TCP connection and a full TLS 1.3 handshake for every request.
    Handshake,
}

impl Mode {
    /// The name `BENCH_MODES` uses.
    fn key(self) -> &'static str {
        match self {
            Mode::KeepAlive => "keep-alive",
            Mode::Handshake => "handshake",
        }
    }

    fn label(self) -> &'static str {
        match self {
            Mode::KeepAlive => "keep-alive",
            Mode::Handshake => "handshake per request",
        }
    }

    fn request(self) -> &'static [u8] {
        match self {
            Mode::KeepAlive => {
                b"GET /.well-known/mta-sts.txt HTTP/1.1\r\nHost: mta-sts.example.com\r\n\r\n"
            }
            Mode::Handshake => {
                b"GET /.well-known/mta-sts.txt HTTP/1.1\r\nHost: mta-sts.example.com\r\nConnection: close\r\n\r\n"
            }
        }
    }
}

/// One measured point.
#[derive(Clone, Debug, Default)]
struct Point {
    requests_per_second: f64,
    p50_us: f64,
    p99_us: f64,
    server_cpu_us: f64,
    client_cpu_us: f64,
    load_average: String,
}

async fn run(
    servers: &[Server],
    roots: Arc<RootCertStore>,
    duration: Duration,
    connections: usize,
    runs: usize,
) -> bool {
    let connector = TlsConnector::from(Arc::new(client_config(roots)));
    let target = |server: &Server| Target {
        addr: server.addr,
        connector: connector.clone(),
    };
    for server in servers {
        server.wait_ready(&target(server)).await;
    }
    println!(
        "{} clients, {} s per point after a {} s warm-up, rounds: {runs}; machine: {} CPUs, load {}",
        connections,
        duration.as_secs(),
        WARM_UP.as_secs(),
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        load_average()
    );
    let wanted = std::env::var("BENCH_MODES").unwrap_or_default();
    let modes: Vec<Mode> = [Mode::KeepAlive, Mode::Handshake]
        .into_iter()
        .filter(|mode| wanted.is_empty() || wanted.split(',').any(|w| w.trim() == mode.key()))
        .collect();
    // results[mode][server][round]
    let mut results = vec![vec![Vec::new(); servers.len()]; modes.len()];
    let mut failed = false;
    for round in 1..=runs {
        for (m, &mode) in modes.iter().enumerate() {
            // Alternating which server goes first evens out drift in the machine's other load.
            let mut order: Vec<usize> = (0..servers.len()).collect();
            if round % 2 == 0 {
                order.reverse();
            }
            for s in order {
                let server = &servers[s];
                let (point, failures) =
                    measure(server, target(server), mode, connections, duration).await;
                println!(
                    "round {round}: {} {}: {:.0} req/s, p50 {:.0} µs, p99 {:.0} µs, server CPU {:.1} µs/req, client CPU {:.1} µs/req (load {})",
                    server.label,
                    mode.label(),
                    point.requests_per_second,
                    point.p50_us,
                    point.p99_us,
                    point.server_cpu_us,
                    point.client_cpu_us,
                    point.load_average
                );
                if !failures.is_empty() {
                    failed = true;
                    eprintln!(
                        "{} {}: {} failed requests, first: {}",
                        server.label,
                        mode.label(),
                        failures.len(),
                        failures[0]
                    );
                }
                results[m][s].push(point);
            }
        }
    }
    println!();
    println!("{}", all_runs_table(servers, &modes, &results));
    println!("{}", median_table(servers, &modes, &results));
    for server in servers.iter().filter(|s| s.nginx) {
        server.report_nginx_errors();
    }
    if failed {
        eprintln!("some responses were wrong: see above");
    }
    !failed
}

fn all_runs_table(servers: &[Server], modes: &[Mode], results: &[Vec<Vec<Point>>]) -> String {
    let mut out = String::from(
        "| mode | server | round | requests/s | p50 µs | p99 µs | server CPU µs/req | client CPU µs/req | load average |\n|---|---|---|---|---|---|---|---|---|\n",
    );
    for (m, mode) in modes.iter().enumerate() {
        for (s, server) in servers.iter().enumerate() {
            for (r, p) in results[m][s].iter().enumerate() {
                let _ = writeln!(
                    out,
                    "| {} | {} | {} | {:.0} | {:.0} | {:.0} | {:.1} | {:.1} | {} |",
                    mode.label(),
                    server.label,
                    r + 1,
                    p.requests_per_second,
                    p.p50_us,
                    p.p99_us,
                    p.server_cpu_us,
                    p.client_cpu_us,
                    p.load_average
                );
            }
        }
    }
    out
}

/// Every column is the median of its own values over the rounds. "vs nginx" divides the
/// median throughputs; "round ratios" divides each round's pair, which cancels load that
/// changed between rounds (the two servers of a round run back to back).
fn median_table(servers: &[Server], modes: &[Mode], results: &[Vec<Vec<Point>>]) -> String {
    let mut out = String::from(
        "| mode | server | requests/s | p50 µs | p99 µs | server CPU µs/req | client CPU µs/req | vs nginx | round ratios |\n|---|---|---|---|---|---|---|---|---|\n",
    );
    for (m, mode) in modes.iter().enumerate() {
        let rps: Vec<f64> = results[m]
            .iter()
            .map(|points| median(points.iter().map(|p| p.requests_per_second)))
            .collect();
        for (s, server) in servers.iter().enumerate() {
            let points = &results[m][s];
            let (versus, rounds) = match (rps.get(1), results[m].get(1)) {
                (Some(nginx), Some(nginx_points)) if *nginx > 0.0 => {
                    let ratios: Vec<String> = points
                        .iter()
                        .zip(nginx_points)
                        .map(|(a, b)| {
                            format!("{:.2}", a.requests_per_second / b.requests_per_second)
                        })
                        .collect();
                    (format!("{:.2}×", rps[s] / nginx), ratios.join(" / "))
                }
                _ => ("–".to_string(), "–".to_string()),
            };
            let _ = writeln!(
                out,
                "| {} | {} | {:.0} | {:.0} | {:.0} | {:.1} | {:.1} | {versus} | {rounds} |",
                mode.label(),
                server.label,
                rps[s],
                median(points.iter().map(|p| p.p50_us)),
                median(points.iter().map(|p| p.p99_us)),
                median(points.iter().map(|p| p.server_cpu_us)),
                median(points.iter().map(|p| p.client_cpu_us)),
            );
        }
    }
    out
}

fn median(values: impl Iterator<Item = f64>) -> f64 {
    let mut values: Vec<f64> = values.collect();
    values.sort_by(f64::total_cmp);
    match values.len() {
        0 => 0.0,
        n if n % 2 == 1 => values[n / 2],
        n => (values[n / 2 - 1] + values[n / 2]) / 2.0,
    }
}

/// TLS 1.3 only, no resumption (every handshake in handshake mode is a full one, as for a
/// sender fetching a policy it has not seen), X25519 only so both servers do the same key
/// exchange whatever groups each prefers, and HTTP/1.1 by ALPN.
fn client_config(roots: Arc<RootCertStore>) -> ClientConfig {
    let mut provider = rustls::crypto::aws_lc_rs::default_provider();
    provider.kx_groups = vec![rustls::crypto::aws_lc_rs::kx_group::X25519];
    let mut config = ClientConfig::builder_with_provider(Arc::new(provider))
        .with_protocol_versions(&[&rustls::version::TLS13])
        .expect("aws-lc-rs supports TLS 1.3")
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.resumption = Resumption::disabled();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    config
}

#[derive(Clone)]
struct Target {
    addr: SocketAddr,
    connector: TlsConnector,
}

type Tls = tokio_rustls::client::TlsStream<TcpStream>;

impl Target {
    async fn connect(&self) -> Result<Tls, String> {
        let tcp = TcpStream::connect(self.addr)
            .await
            .map_err(|e| format!("connect: {e}"))?;
        // Requests are one small write; Nagle would only delay them.
        tcp.set_nodelay(true).map_err(|e| format!("nodelay: {e}"))?;
        let name = ServerName::try_from(HOST).expect("valid host name");
        self.connector
            .connect(name, tcp)
            .await
            .map_err(|e| format!("TLS handshake: {e}"))
    }
}

/// One request on `tls`: writes it and checks that the response is a 200 whose body is the
/// policy byte for byte.
async fn exchange(tls: &mut Tls, mode: Mode, buf: &mut Vec<u8>) -> Result<(), String> {
    tls.write_all(mode.request())
        .await
        .map_err(|e| format!("write: {e}"))?;
    tls.flush().await.map_err(|e| format!("flush: {e}"))?;
    let body = read_response(tls, buf).await?;
    if body != POLICY.as_bytes() {
        return Err(format!(
            "wrong body: {:?}",
            String::from_utf8_lossy(body).into_owned()
        ));
    }
    Ok(())
}

/// Reads one HTTP/1.1 response framed by Content-Length into `buf`; returns its body if the
/// status is 200. Requests are never pipelined, so a byte beyond the body is an error.
async fn read_response<'b, S: AsyncRead + Unpin>(
    stream: &mut S,
    buf: &'b mut Vec<u8>,
) -> Result<&'b [u8], String> {
    buf.clear();
    let head_end = loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break end + 4;
        }
        read_more(stream, buf).await?;
    };
    let head = std::str::from_utf8(&buf[..head_end]).map_err(|_| "head not UTF-8".to_string())?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    if !status_line.starts_with("HTTP/1.1 200 ") {
        return Err(format!("status line {status_line:?}"));
    }
    let length: usize = lines
        .filter_map(|line| line.split_once(':'))
        .find(|(name, _)| name.trim().eq_ignore_ascii_case("content-length"))
        .ok_or_else(|| "no Content-Length".to_string())?
        .1
        .trim()
        .parse()
        .map_err(|_| "bad Content-Length".to_string())?;
    while buf.len() < head_end + length {
        read_more(stream, buf).await?;
    }
    if buf.len() > head_end + length {
        return Err(format!(
            "{} bytes after the body",
            buf.len() - head_end - length
        ));
    }
    Ok(&buf[head_end..])
}

async fn read_more<S: AsyncRead + Unpin>(stream: &mut S, buf: &mut Vec<u8>) -> Result<(), String> {
    let mut chunk = [0u8; 4096];
    match stream.read(&mut chunk).await {
        Ok(0) => Err("connection closed mid-response".to_string()),
        Ok(n) => {
            buf.extend_from_slice(&chunk[..n]);
            Ok(())
        }
        Err(e) => Err(format!("read: {e}")),
    }
}

/// After a `Connection: close` response: the server must close, and nothing may come first.
async fn expect_close(tls: &mut Tls) -> Result<(), String> {
    let mut chunk = [0u8; 64];
    match tls.read(&mut chunk).await {
        Ok(0) => Ok(()),
        Ok(n) => Err(format!("{n} bytes after a Connection: close response")),
        // A peer that closes TCP without close_notify has still closed.
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Ok(()),
        Err(e) => Err(format!("read after response: {e}")),
    }
}

/// What one client did inside the measuring window.
#[derive(Default)]
struct ClientTally {
    latencies_us: Vec<u32>,
    failures: Vec<String>,
}

/// Runs `connections` clients for the warm-up plus `duration`, and measures only the requests
/// completed after the warm-up, with the server's and our own CPU time over the same window.
async fn measure(
    server: &Server,
    target: Target,
    mode: Mode,
    connections: usize,
    duration: Duration,
) -> (Point, Vec<String>) {
    let begin = Instant::now() + WARM_UP;
    let end = begin + duration;
    let clients: Vec<_> = (0..connections)
        .map(|_| tokio::spawn(client(target.clone(), mode, begin, end)))
        .collect();
    tokio::time::sleep_until(begin.into()).await;
    let (server_before, client_before) = (server.cpu_seconds(), own_cpu_seconds());
    let load_average = load_average();
    tokio::time::sleep_until(end.into()).await;
    let (server_after, client_after) = (server.cpu_seconds(), own_cpu_seconds());
    let mut latencies = Vec::new();
    let mut failures = Vec::new();
    for client in clients {
        let tally = client.await.expect("client task");
        latencies.extend(tally.latencies_us);
        failures.extend(tally.failures);
    }
    latencies.sort_unstable();
    let requests = latencies.len().max(1) as f64;
    let percentile = |p: f64| {
        latencies
            .get(((latencies.len() as f64 * p) as usize).min(latencies.len().saturating_sub(1)))
            .map_or(0.0, |&v| f64::from(v))
    };
    let point = Point {
        requests_per_second: latencies.len() as f64 / duration.as_secs_f64(),
        p50_us: percentile(0.50),
        p99_us: percentile(0.99),
        server_cpu_us: (server_after - server_before) * 1e6 / requests,
        client_cpu_us: (client_after - client_before) * 1e6 / requests,
        load_average,
    };
    (point, failures)
}

/// One client: requests back to back until `end`; counts those that complete in
/// `[begin, end)`. A failed connection is replaced by a new one.
async fn client(target: Target, mode: Mode, begin: Instant, end: Instant) -> ClientTally {
    let mut tally = ClientTally::default();
    let mut buf = Vec::with_capacity(1024);
    let mut kept: Option<Tls> = None;
    while Instant::now() < end {
        let start = Instant::now();
        let result = tokio::time::timeout(RESPONSE_TIMEOUT, async {
            let mut tls = match kept.take() {
                Some(tls) => tls,
                None => target.connect().await?,
            };
            exchange(&mut tls, mode, &mut buf).await?;
            Ok::<_, String>(tls)
        })
        .await
        .unwrap_or_else(|_| Err("no response within 10 s".to_string()));
        let done = Instant::now();
        let in_window = done >= begin && done < end;
        match result {
            Ok(mut tls) => {
                if in_window {
                    let us = done.duration_since(start).as_micros();
                    tally
                        .latencies_us
                        .push(u32::try_from(us).unwrap_or(u32::MAX));
                }
                match mode {
                    Mode::KeepAlive => kept = Some(tls),
                    Mode::Handshake => {
                        let closed = tokio::time::timeout(RESPONSE_TIMEOUT, expect_close(&mut tls))
                            .await
                            .unwrap_or_else(|_| Err("no close within 10 s".to_string()));
                        if let Err(e) = closed {
                            tally.failures.push(e);
                        }
                    }
                }
            }
            Err(e) => tally.failures.push(e),
        }
    }
    tally
}

/// A server under test, in its own process.
struct Server {
    label: &'static str,
    addr: SocketAddr,
    child: Child,
    /// nginx: the master, whose workers are counted too; they end when it gets SIGTERM.
    nginx: bool,
    error_log: Option<PathBuf>,
}

impl Server {
    /// This binary again in the `policy-host` role: a process of its own, like nginx.
    fn policy_host(dir: &Path) -> Server {
        let mut child = Command::new(std::env::current_exe().expect("own path"))
            .env("BENCH_ROLE", "policy-host")
            .env("BENCH_DIR", dir)
            .env("BENCH_LISTEN", SocketAddr::from((MTASTS_IP, 0)).to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("start the policy host process");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("piped stdout"))
            .read_line(&mut line)
            .expect("policy host address");
        let addr = line.trim().parse().unwrap_or_else(|_| {
            panic!("policy host process printed {line:?} instead of its address")
        });
        Server {
            label: "mtasts policy host",
            addr,
            child,
            nginx: false,
            error_log: None,
        }
    }

    fn nginx(binary: &Path, dir: &Path) -> Server {
        let port = std::net::TcpListener::bind((NGINX_IP, 0))
            .and_then(|l| l.local_addr())
            .expect("free port for nginx")
            .port();
        let addr = SocketAddr::from((NGINX_IP, port));
        let d = dir.display();
        let config = format!(
            "daemon off;
master_process on;
worker_processes auto;
pid {d}/nginx.pid;
error_log {d}/error.log;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {d}/client_body;
    proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fastcgi;
    uwsgi_temp_path {d}/uwsgi;
    scgi_temp_path {d}/scgi;
    server {{
        listen {addr} ssl http2;
        ssl_certificate {d}/cert.pem;
        ssl_certificate_key {d}/key.pem;
        ssl_protocols TLSv1.2 TLSv1.3;
        ssl_session_cache shared:SSL:10m;
        keepalive_requests 100000;
        location = {PATH} {{
            default_type text/plain;
            alias {d}/mta-sts.txt;
        }}
    }}
}}
"
        );
        write(&dir.join("nginx.conf"), &config);
        // As root the workers run as nobody: they must be able to read the policy (the key is
        // read by the master before it drops privileges).
        set_mode(dir, 0o755);
        set_mode(&dir.join("mta-sts.txt"), 0o644);
        let child = Command::new(binary)
            .arg("-p")
            .arg(dir)
            .arg("-e")
            .arg(dir.join("error.log"))
            .arg("-c")
            .arg(dir.join("nginx.conf"))
            .spawn()
            .expect("start nginx");
        Server {
            label: "nginx",
            addr,
            child,
            nginx: true,
            error_log: Some(dir.join("error.log")),
        }
    }

    /// Waits until the server answers the policy correctly.
    async fn wait_ready(&self, target: &Target) {
        let mut last = String::new();
        for _ in 0..100 {
            let attempt = async {
                let mut tls = target.connect().await?;
                let mut buf = Vec::new();
                exchange(&mut tls, Mode::KeepAlive, &mut buf).await?;
                let (_, session) = tls.get_ref();
                Ok::<_, String>(format!(
                    "{:?}, {:?}, {:?}",
                    session.protocol_version(),
                    session.negotiated_cipher_suite().map(|s| s.suite()),
                    session.negotiated_key_exchange_group().map(|g| g.name()),
                ))
            };
            match attempt.await {
                Ok(tls) => {
                    println!("{} at {} serves the policy ({tls})", self.label, self.addr);
                    return;
                }
                Err(e) => last = e,
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!(
            "{} at {} never served the policy: {last}",
            self.label, self.addr
        );
    }

    /// Prints what nginx logged above `notice` (its log is in the temp dir, gone after the
    /// run).
    fn report_nginx_errors(&self) {
        let Some(log) = &self.error_log else {
            return;
        };
        let text = std::fs::read_to_string(log).unwrap_or_default();
        for line in text.lines().filter(|l| !l.contains("[notice]")) {
            eprintln!("nginx error.log: {line}");
        }
    }

    /// User plus system CPU time so far of the server: the process, and for nginx also its
    /// workers.
    fn cpu_seconds(&self) -> f64 {
        let pid = self.child.id();
        let mut total = process_cpu_seconds(pid).unwrap_or(0.0);
        if self.nginx {
            for child in children_of(pid) {
                total += process_cpu_seconds(child).unwrap_or(0.0);
            }
        }
        total
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if self.nginx {
            // SIGKILL would leave the workers running; SIGTERM makes the master stop them.
            let _ = Command::new("kill")
                .args(["-TERM", &self.child.id().to_string()])
                .status();
        } else {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

/// Fields of /proc/<pid>/stat after the parenthesised command name (state is index 0).
fn stat_fields(pid: u32) -> Option<Vec<String>> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = stat.rsplit_once(')')?.1;
    Some(rest.split_whitespace().map(str::to_string).collect())
}

/// utime + stime of every thread of `pid`, in seconds (clock ticks are 100 per second on
/// Linux).
fn process_cpu_seconds(pid: u32) -> Option<f64> {
    let fields = stat_fields(pid)?;
    let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<f64>().ok());
    Some((ticks(11)? + ticks(12)?) / 100.0)
}

fn own_cpu_seconds() -> f64 {
    process_cpu_seconds(std::process::id()).unwrap_or(0.0)
}

fn children_of(parent: u32) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&pid| {
            stat_fields(pid)
                .and_then(|f| f.get(1)?.parse::<u32>().ok())
                .is_some_and(|ppid| ppid == parent)
        })
        .collect()
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

/// The `policy-host` role: PolicyHost with the bench's certificate and policy on
/// `BENCH_LISTEN`, on a runtime of 2 workers; prints its address, then serves until stdin
/// closes (the bench ended, however it ended).
fn policy_host_role() {
    let dir = PathBuf::from(std::env::var_os("BENCH_DIR").expect("BENCH_DIR"));
    let listen: SocketAddr = std::env::var("BENCH_LISTEN")
        .expect("BENCH_LISTEN")
        .parse()
        .expect("BENCH_LISTEN is an address");
    let read = |name: &str| std::fs::read_to_string(dir.join(name)).expect("bench file");
    let key = certified_key_from_pem(&read("cert.pem"), &read("key.pem")).expect("bench key");
    let mut snapshot = Snapshot {
        generation: 1,
        ..Default::default()
    };
    snapshot.domains.insert(
        "example.com".to_string(),
        HostedDomain {
            name: "example.com".to_string(),
            tenant_id: 1,
            policy_body: read("mta-sts.txt").into(),
            txt_id: Some("1".to_string()),
            tlsrpt: None,
            certificate: Some(key),
            reports_to_service: true,
        },
    );
    let settings = ZoneSettings {
        delegation: Delegation::new("hosting.example").expect("valid zone"),
        public_ips: vec![IpAddr::V4(MTASTS_IP)],
        ttl: 300,
        report_mail: true,
        own_policy_mode: mtasts_proto::sts::policy::Mode::Testing,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let host = runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .expect("bind the policy host");
        PolicyHost::start(
            listener,
            handle(snapshot),
            settings,
            ListenerLimits::default(),
        )
    });
    let addr = host.local_addr().expect("bound address");
    let mut stdout = std::io::stdout();
    writeln!(stdout, "{addr}")
        .and_then(|()| stdout.flush())
        .expect("print address");
    // The runtime's workers serve on their own; this thread only waits for the end.
    let mut sink = [0u8; 64];
    while matches!(std::io::stdin().read(&mut sink), Ok(n) if n > 0) {}
    drop(host);
}

fn write(path: &Path, contents: &str) {
    std::fs::write(path, contents).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
}

fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .unwrap_or_else(|e| panic!("chmod {}: {e}", path.display()));
}

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}
