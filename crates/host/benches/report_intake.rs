//! TLS reports accepted per second by `mtasts serve`, over HTTPS POST (RFC 8460 §5.3) or by
//! mail over SMTP (RFC 8460 §5.2), on SQLite and on PostgreSQL. Not a test: run by hand (see
//! docs/benchmarks.md).
//!
//! The serve node runs as a separate process (this binary with `BENCH_ROLE=serve`) with its
//! real configuration path (`Serve::start`: database, node, every listener), so its CPU time is
//! measured apart from the load generator's. Each client keeps one TLS connection and posts
//! distinct reports one after the other: a real sample (Google's, from the shared samples)
//! whose `report-id` is made unique per request, so every POST stores a new report (201) and
//! nothing is answered as a duplicate. A 201 is only sent once the report is committed, so
//! the rate is the committed rate.
//!
//! Environment:
//! - `BENCH_SECONDS` (default 5): measuring time per backend, after a 1 s warm-up.
//! - `BENCH_CONNECTIONS` (default 8): concurrent clients (the intake stores at most 8 at once
//!   and answers 503 beyond that; 503s are counted and retried, not counted as accepted).
//! - `BENCH_BACKENDS` (default `sqlite,postgres`): which databases to measure; PostgreSQL is
//!   the local test server (`MTASTS_TEST_POSTGRES_URL`), in a schema of its own.
//! - `BENCH_GZIP` (default 0): 1 posts `application/tlsrpt+gzip` bodies instead of JSON.
//! - `BENCH_CHANNEL` (default `https`): `smtp` sends each report as a mail message instead
//!   (plain SMTP with PIPELINING on one connection per client, the report as a gzip
//!   `application/tlsrpt+gzip` attachment of a `multipart/report`, as senders mail it); a
//!   `250` after the data is only sent once the message is committed.

use std::io::{BufRead, BufReader, Read as _, Write as _};
use std::net::{Ipv4Addr, SocketAddr};
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mtasts_host::config::ServeConfig;
use mtasts_host::serve::Serve;
use mtasts_proto::hosted::delegation::Delegation;
use mtasts_proto::hosted::reporting::{ReportAddresses, TLSRPT_PATH};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, SignatureScheme};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

const ZONE: &str = "hosting.example";
const WARM_UP: Duration = Duration::from_secs(1);
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(30);
const SERVE_IP: Ipv4Addr = Ipv4Addr::new(127, 84, 62, 1);

fn main() -> ExitCode {
    if std::env::var("BENCH_ROLE").as_deref() == Ok("serve") {
        serve_role();
        return ExitCode::SUCCESS;
    }
    let seconds = env_or("BENCH_SECONDS", 5);
    let connections = env_or("BENCH_CONNECTIONS", 8).max(1);
    let gzip = env_or("BENCH_GZIP", 0) == 1;
    let smtp = std::env::var("BENCH_CHANNEL").as_deref() == Ok("smtp");
    let backends = std::env::var("BENCH_BACKENDS").unwrap_or_else(|_| "sqlite,postgres".into());
    let Some(sample) = sample_report() else {
        eprintln!("the shared samples (../shared/samples) are missing: nothing to post");
        return ExitCode::FAILURE;
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    if smtp {
        println!(
            "report intake over SMTP: {connections} clients, {seconds} s per backend, gzip attachments, load {}",
            load_average()
        );
    } else {
        println!(
            "report intake over HTTPS: {connections} clients, {seconds} s per backend, {} bodies, load {}",
            if gzip { "gzip" } else { "JSON" },
            load_average()
        );
    }
    println!(
        "| database | clients | reports/s | p50 ms | p99 ms | 503 busy | errors | serve CPU ms/report |"
    );
    println!("|---|---|---|---|---|---|---|---|");
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
        let server = ServeProcess::start(&database, dir.path());
        let result = runtime.block_on(measure(
            if smtp { server.smtp } else { server.addr },
            &sample,
            gzip,
            smtp,
            connections,
            Duration::from_secs(seconds as u64),
            server.child.id(),
        ));
        println!(
            "| {backend} | {connections} | {:.0} | {:.1} | {:.1} | {} | {} | {:.2} |",
            result.accepted as f64 / result.seconds,
            result.p50_ms,
            result.p99_ms,
            result.busy,
            result.errors,
            result.server_cpu_ms_per_report,
        );
        if let Some(first) = &result.first_error {
            eprintln!("  first error: {first}");
        }
    }
    ExitCode::SUCCESS
}

/// Google's TLS report from the shared samples, as JSON.
fn sample_report() -> Option<serde_json::Value> {
    let dir = mtasts_testkit::services::samples_dir()?;
    let text = std::fs::read_to_string(dir.join("tlsrpt/mta-sts-exporter/google.json")).ok()?;
    serde_json::from_str(&text).ok()
}

/// A PostgreSQL URL whose tables live in a new schema of the test database.
async fn fresh_schema() -> Option<String> {
    use mtasts_testkit::services;
    let url = services::postgres_url();
    let schema = services::unique("bench_intake_");
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

struct Measured {
    accepted: u64,
    busy: u64,
    errors: u64,
    first_error: Option<String>,
    seconds: f64,
    p50_ms: f64,
    p99_ms: f64,
    server_cpu_ms_per_report: f64,
}

#[derive(Default)]
struct Tally {
    accepted: u64,
    busy: u64,
    errors: u64,
    first_error: Option<String>,
    latencies: Vec<Duration>,
}

#[allow(clippy::too_many_arguments)]
async fn measure(
    addr: SocketAddr,
    sample: &serde_json::Value,
    gzip: bool,
    smtp: bool,
    connections: usize,
    duration: Duration,
    server_pid: u32,
) -> Measured {
    let connector = TlsConnector::from(Arc::new(client_config()));
    let start = Instant::now();
    let measure_from = start + WARM_UP;
    let end = measure_from + duration;
    let mut tasks = Vec::new();
    // The server's CPU is read when the warm-up ends, from a task of its own.
    let cpu_at_start = tokio::spawn(async move {
        tokio::time::sleep_until(measure_from.into()).await;
        process_cpu_seconds(server_pid)
    });
    for client in 0..connections {
        let connector = connector.clone();
        let sample = sample.clone();
        tasks.push(tokio::spawn(async move {
            if smtp {
                mail_loop(addr, sample, client, measure_from, end).await
            } else {
                client_loop(addr, connector, sample, gzip, client, measure_from, end).await
            }
        }));
    }
    let mut total = Tally::default();
    for task in tasks {
        let tally = task.await.expect("client task");
        total.accepted += tally.accepted;
        total.busy += tally.busy;
        total.errors += tally.errors;
        total.first_error = total.first_error.or(tally.first_error);
        total.latencies.extend(tally.latencies);
    }
    let cpu_end = process_cpu_seconds(server_pid);
    let cpu_start = cpu_at_start.await.expect("cpu task");
    total.latencies.sort();
    let quantile = |q: f64| {
        total
            .latencies
            .get(
                ((total.latencies.len() as f64 * q) as usize).min(total.latencies.len().max(1) - 1),
            )
            .map_or(0.0, |d| d.as_secs_f64() * 1000.0)
    };
    let server_cpu = match (cpu_start, cpu_end) {
        (Some(a), Some(b)) => b - a,
        _ => 0.0,
    };
    Measured {
        accepted: total.accepted,
        busy: total.busy,
        errors: total.errors,
        first_error: total.first_error,
        seconds: duration.as_secs_f64(),
        p50_ms: quantile(0.5),
        p99_ms: quantile(0.99),
        server_cpu_ms_per_report: server_cpu * 1000.0 / total.accepted.max(1) as f64,
    }
}

type Tls = tokio_rustls::client::TlsStream<TcpStream>;

async fn connect(addr: SocketAddr, connector: &TlsConnector) -> Result<Tls, String> {
    let tcp = TcpStream::connect(addr)
        .await
        .map_err(|e| format!("connect: {e}"))?;
    tcp.set_nodelay(true).map_err(|e| format!("nodelay: {e}"))?;
    let host = report_host();
    let name = ServerName::try_from(host).map_err(|e| format!("name: {e}"))?;
    connector
        .connect(name, tcp)
        .await
        .map_err(|e| format!("TLS handshake: {e}"))
}

fn report_host() -> String {
    ReportAddresses::new(&Delegation::new(ZONE).expect("valid zone"))
        .host()
        .to_owned()
}

/// One client: posts distinct reports on one connection (reconnecting after an error) until
/// `end`, counting only answers that arrive after `measure_from`.
async fn client_loop(
    addr: SocketAddr,
    connector: TlsConnector,
    mut report: serde_json::Value,
    gzip: bool,
    client: usize,
    measure_from: Instant,
    end: Instant,
) -> Tally {
    let mut tally = Tally::default();
    let host = report_host();
    let mut tls: Option<Tls> = None;
    let mut n = 0u64;
    while Instant::now() < end {
        n += 1;
        report["report-id"] = format!("bench-{}-{client}-{n}", std::process::id()).into();
        let json = serde_json::to_vec(&report).expect("serialize");
        let (body, content_type) = if gzip {
            (gzipped(&json), "application/tlsrpt+gzip")
        } else {
            (json, "application/tlsrpt+json")
        };
        let mut request = format!(
            "POST {TLSRPT_PATH} HTTP/1.1\r\nHost: {host}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\r\n",
            body.len()
        )
        .into_bytes();
        request.extend_from_slice(&body);
        let began = Instant::now();
        let answer = async {
            if tls.is_none() {
                tls = Some(connect(addr, &connector).await?);
            }
            let stream = tls.as_mut().expect("connected");
            stream
                .write_all(&request)
                .await
                .map_err(|e| format!("write: {e}"))?;
            read_status(stream).await
        };
        let status = match tokio::time::timeout(RESPONSE_TIMEOUT, answer).await {
            Ok(result) => result,
            Err(_) => Err("no answer within the timeout".to_owned()),
        };
        let counted = began >= measure_from && Instant::now() <= end;
        match status {
            Ok(201) if counted => {
                tally.accepted += 1;
                tally.latencies.push(began.elapsed());
            }
            Ok(201) => {}
            Ok(503) => {
                if counted {
                    tally.busy += 1;
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            Ok(other) => {
                tally.errors += 1;
                tally
                    .first_error
                    .get_or_insert_with(|| format!("HTTP {other}"));
            }
            Err(e) => {
                tally.errors += 1;
                tally.first_error.get_or_insert(e);
                tls = None;
            }
        }
    }
    tally
}

/// One SMTP client: mails distinct reports on one connection (reconnecting after an error)
/// until `end`, counting only `250`s after the data that arrive after `measure_from`.
async fn mail_loop(
    addr: SocketAddr,
    mut report: serde_json::Value,
    client: usize,
    measure_from: Instant,
    end: Instant,
) -> Tally {
    let mut tally = Tally::default();
    let rcpt = ReportAddresses::new(&Delegation::new(ZONE).expect("valid zone"))
        .mailbox(mtasts_proto::hosted::reporting::Mailbox::TlsRpt);
    let mut conn: Option<tokio::io::BufReader<TcpStream>> = None;
    let mut n = 0u64;
    while Instant::now() < end {
        n += 1;
        let id = format!("bench-{}-{client}-{n}", std::process::id());
        report["report-id"] = id.clone().into();
        let attachment = gzipped(&serde_json::to_vec(&report).expect("serialize"));
        let message = report_mail(&id, &attachment);
        let began = Instant::now();
        let answer = async {
            if conn.is_none() {
                let tcp = TcpStream::connect(addr)
                    .await
                    .map_err(|e| format!("connect: {e}"))?;
                tcp.set_nodelay(true).map_err(|e| format!("nodelay: {e}"))?;
                let mut reader = tokio::io::BufReader::new(tcp);
                expect_reply(&mut reader, 220).await?;
                reader
                    .get_mut()
                    .write_all(b"EHLO bench.example\r\n")
                    .await
                    .map_err(|e| format!("write: {e}"))?;
                expect_reply(&mut reader, 250).await?;
                conn = Some(reader);
            }
            let reader = conn.as_mut().expect("connected");
            let envelope =
                format!("MAIL FROM:<bench@sender.example>\r\nRCPT TO:<{rcpt}>\r\nDATA\r\n");
            reader
                .get_mut()
                .write_all(envelope.as_bytes())
                .await
                .map_err(|e| format!("write: {e}"))?;
            expect_reply(reader, 250).await?;
            expect_reply(reader, 250).await?;
            expect_reply(reader, 354).await?;
            reader
                .get_mut()
                .write_all(&message)
                .await
                .map_err(|e| format!("write: {e}"))?;
            reply_code(reader).await
        };
        let code = match tokio::time::timeout(RESPONSE_TIMEOUT, answer).await {
            Ok(result) => result,
            Err(_) => Err("no answer within the timeout".to_owned()),
        };
        let counted = began >= measure_from && Instant::now() <= end;
        match code {
            Ok(250) if counted => {
                tally.accepted += 1;
                tally.latencies.push(began.elapsed());
            }
            Ok(250) => {}
            Ok(451) => {
                if counted {
                    tally.busy += 1;
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            Ok(other) => {
                tally.errors += 1;
                tally
                    .first_error
                    .get_or_insert_with(|| format!("SMTP {other}"));
            }
            Err(e) => {
                tally.errors += 1;
                tally.first_error.get_or_insert(e);
                conn = None;
            }
        }
    }
    tally
}

/// A report mail as senders send it (RFC 8460 §5.3): `multipart/report` with the gzip report
/// attached in base64, then the end of data.
fn report_mail(id: &str, gzip: &[u8]) -> Vec<u8> {
    use base64::Engine as _;
    let encoded = base64::engine::general_purpose::STANDARD.encode(gzip);
    let mut lines = String::new();
    for chunk in encoded.as_bytes().chunks(76) {
        lines.push_str(std::str::from_utf8(chunk).expect("base64 is ASCII"));
        lines.push_str("\r\n");
    }
    format!(
        "From: bench@sender.example\r\nTo: tlsrpt@reports.{ZONE}\r\nSubject: Report Domain: example.com Submitter: sender.example Report-ID: <{id}>\r\n\
         Message-ID: <{id}@sender.example>\r\nTLS-Report-Domain: example.com\r\nTLS-Report-Submitter: sender.example\r\n\
         MIME-Version: 1.0\r\nContent-Type: multipart/report; report-type=\"tlsrpt\"; boundary=\"b\"\r\n\r\n\
         --b\r\nContent-Type: text/plain\r\n\r\nThis is an aggregate TLS report.\r\n\
         --b\r\nContent-Type: application/tlsrpt+gzip\r\nContent-Transfer-Encoding: base64\r\n\
         Content-Disposition: attachment; filename=\"sender.example!example.com!1!2!{id}.json.gz\"\r\n\r\n\
         {lines}--b--\r\n.\r\n"
    )
    .into_bytes()
}

/// Reads one (possibly multi-line) SMTP reply and checks its code.
async fn expect_reply(
    reader: &mut tokio::io::BufReader<TcpStream>,
    want: u16,
) -> Result<(), String> {
    match reply_code(reader).await? {
        code if code == want => Ok(()),
        code => Err(format!("SMTP {code} where {want} was expected")),
    }
}

/// The code of one (possibly multi-line) SMTP reply.
async fn reply_code(reader: &mut tokio::io::BufReader<TcpStream>) -> Result<u16, String> {
    use tokio::io::AsyncBufReadExt as _;
    loop {
        let mut line = String::new();
        let n = reader
            .read_line(&mut line)
            .await
            .map_err(|e| format!("read: {e}"))?;
        if n == 0 {
            return Err("closed before the reply".to_owned());
        }
        let code: u16 = line
            .get(..3)
            .and_then(|c| c.parse().ok())
            .ok_or_else(|| format!("not an SMTP reply: {line:?}"))?;
        if line.as_bytes().get(3) != Some(&b'-') {
            return Ok(code);
        }
    }
}

/// Reads one response's head and its `Content-Length` body; the status code.
async fn read_status(stream: &mut Tls) -> Result<u16, String> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = stream
            .read(&mut chunk)
            .await
            .map_err(|e| format!("read: {e}"))?;
        if n == 0 {
            return Err("closed before the answer".to_owned());
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
    let status: u16 = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("not an HTTP answer: {head}"))?;
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    while buf.len() < head_end + length {
        let n = stream
            .read(&mut chunk)
            .await
            .map_err(|e| format!("read: {e}"))?;
        if n == 0 {
            return Err("closed in the body".to_owned());
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    Ok(status)
}

fn gzipped(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(bytes).expect("gzip into memory");
    encoder.finish().expect("gzip into memory")
}

/// The service presents its fallback certificate for the report host here (no ACME in the
/// bench): the client takes any certificate, as the thing measured is the intake.
#[derive(Debug)]
struct AnyCertificate(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

fn client_config() -> ClientConfig {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .expect("default versions")
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider)))
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    config
}

/// The serve node in its own process, stopped when dropped (stdin closes).
struct ServeProcess {
    child: Child,
    addr: SocketAddr,
    smtp: SocketAddr,
}

impl ServeProcess {
    fn start(database: &str, dir: &std::path::Path) -> ServeProcess {
        let mut child = Command::new(std::env::current_exe().expect("own path"))
            .env("BENCH_ROLE", "serve")
            .env("BENCH_DATABASE", database)
            .env("BENCH_DIR", dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("start the serve process");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("the serve process prints its address");
        let parsed: Option<(SocketAddr, SocketAddr)> = line
            .split_once(' ')
            .and_then(|(a, b)| Some((a.trim().parse().ok()?, b.trim().parse().ok()?)));
        let (addr, smtp) =
            parsed.unwrap_or_else(|| panic!("the serve process did not start: {line:?}"));
        ServeProcess { child, addr, smtp }
    }
}

impl Drop for ServeProcess {
    fn drop(&mut self) {
        drop(self.child.stdin.take());
        let _ = self.child.wait();
    }
}

/// The `serve` role: `mtasts serve` on `BENCH_DATABASE` with every listener on loopback (no
/// ACME, no rate limit in the way of one load generator), on a runtime of 2 workers; prints
/// the HTTPS and SMTP addresses, then serves until stdin closes.
fn serve_role() {
    let database = std::env::var("BENCH_DATABASE").expect("BENCH_DATABASE");
    let dir = std::path::PathBuf::from(std::env::var_os("BENCH_DIR").expect("BENCH_DIR"));
    let local = SocketAddr::from((SERVE_IP, 0));
    let config = ServeConfig {
        database: Some(database),
        data_dir: dir,
        zone: ZONE.to_owned(),
        public_ip: vec![SERVE_IP.into()],
        https_listen: vec![local],
        http_listen: vec![local],
        dns_listen: vec![local],
        api_listen: local,
        smtp_listen: vec![local],
        acme_directory: String::new(),
        password_iterations: 1000,
        report_rate_burst: u32::MAX,
        report_rate_per_minute: u32::MAX,
        ..ServeConfig::default()
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let serve = runtime
        .block_on(Serve::start(config))
        .expect("mtasts serve starts");
    let mut stdout = std::io::stdout();
    writeln!(
        stdout,
        "{} {}",
        serve.addrs().https[0],
        serve.addrs().smtp[0]
    )
    .and_then(|()| stdout.flush())
    .expect("print address");
    let mut sink = [0u8; 64];
    while matches!(std::io::stdin().read(&mut sink), Ok(n) if n > 0) {}
    runtime.block_on(serve.shutdown());
}

/// utime + stime of every thread of `pid`, in seconds (100 clock ticks per second on Linux).
fn process_cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<f64>().ok());
    Some((ticks(11)? + ticks(12)?) / 100.0)
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}
