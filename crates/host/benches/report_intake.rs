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
//! - `BENCH_SECONDS` (default 5): measuring time per server, after a 1 s warm-up.
//! - `BENCH_CONNECTIONS` (default 8): concurrent clients (the intake stores at most 8 at once
//!   and answers 503 beyond that; 503s are counted and retried, not counted as accepted).
//! - `BENCH_BACKENDS` (default `sqlite,postgres`): which databases to measure; PostgreSQL is
//!   the local test server (`MTASTS_TEST_POSTGRES_URL`), in a schema of its own.
//! - `BENCH_GZIP` (default 0): 1 posts `application/tlsrpt+gzip` bodies instead of JSON.
//! - `BENCH_CHANNEL` (default `https`): `smtp` sends each report as a mail message instead
//!   (plain SMTP with PIPELINING on one connection per client, the report as a gzip
//!   `application/tlsrpt+gzip` attachment of a `multipart/report`, as senders mail it); a
//!   `250` after the data is only sent once the message is committed.
//! - `BENCH_PEER` (default 1): after the backends, measure a peer in the same run with the
//!   same client code, bodies, connections and duration; 0 measures `mtasts serve` alone.
//!   HTTPS: Debian's nginx (`BENCH_NGINX`, default `/usr/sbin/nginx`) storing each body as a
//!   file by WebDAV `PUT` to a path unique per request (nginx cannot store a POST body without
//!   a backend): TLS, HTTP and writing the bytes, no parsing, no database, no fsync. SMTP: a
//!   private Postfix (`mtasts_testkit::postfix_smtpd`, needs root) receiving for the report
//!   domain and delivering to `discard:`; its `250` comes once `cleanup` has written and
//!   fsynced the queue file. A peer that is not installed is skipped with a printed note.

use std::io::{BufRead, BufReader, Read as _, Write as _};
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
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
/// nginx gets an address of its own, so nothing else on the machine can be listening there.
const NGINX_IP: Ipv4Addr = Ipv4Addr::new(127, 84, 62, 2);
/// Where nginx stores the bodies (under its document root).
const PUT_DIR: &str = "/tlsrpt-put/";

/// How a client hands a report to the server under test.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Channel {
    /// HTTPS `POST` to the intake (`mtasts serve`).
    Post,
    /// HTTPS `PUT` to a path unique per request (the nginx peer).
    Put,
    /// SMTP, the report attached to a mail (`mtasts serve` and the Postfix peer).
    Mail,
}

/// What every measured server gets alike.
struct Load {
    sample: serde_json::Value,
    gzip: bool,
    connections: usize,
    duration: Duration,
}

fn main() -> ExitCode {
    if std::env::var("BENCH_ROLE").as_deref() == Ok("serve") {
        serve_role();
        return ExitCode::SUCCESS;
    }
    let seconds = env_or("BENCH_SECONDS", 5);
    let connections = env_or("BENCH_CONNECTIONS", 8).max(1);
    let gzip = env_or("BENCH_GZIP", 0) == 1;
    let smtp = std::env::var("BENCH_CHANNEL").as_deref() == Ok("smtp");
    let peer = env_or("BENCH_PEER", 1) == 1;
    let backends = std::env::var("BENCH_BACKENDS").unwrap_or_else(|_| "sqlite,postgres".into());
    let Some(sample) = sample_report() else {
        eprintln!("the shared samples (../shared/samples) are missing: nothing to post");
        return ExitCode::FAILURE;
    };
    let load = Load {
        sample,
        gzip,
        connections,
        duration: Duration::from_secs(seconds as u64),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    if smtp {
        println!(
            "report intake over SMTP: {connections} clients, {seconds} s per server, gzip attachments, load {}",
            load_average()
        );
    } else {
        println!(
            "report intake over HTTPS: {connections} clients, {seconds} s per server, {} bodies, load {}",
            if gzip { "gzip" } else { "JSON" },
            load_average()
        );
    }
    println!(
        "| server | stores into | clients | reports/s | p50 ms | p99 ms | {} busy | errors | server CPU ms/report |",
        if smtp { 451 } else { 503 }
    );
    println!("|---|---|---|---|---|---|---|---|---|");
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
        let (addr, channel) = if smtp {
            (server.smtp, Channel::Mail)
        } else {
            (server.addr, Channel::Post)
        };
        let result = runtime.block_on(measure(addr, channel, server.child.id(), &load));
        print_row("mtasts serve", backend, connections, &result);
    }
    if !peer {
        return ExitCode::SUCCESS;
    }
    if smtp {
        postfix_peer(&runtime, &load);
    } else {
        nginx_peer(&runtime, &load);
    }
    ExitCode::SUCCESS
}

fn print_row(server: &str, store: &str, connections: usize, result: &Measured) {
    println!(
        "| {server} | {store} | {connections} | {:.0} | {:.1} | {:.1} | {} | {} | {:.2} |",
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

/// Runs `load.connections` clients against `addr` for the warm-up and `load.duration`; the
/// server's CPU is that of `server_pid` and every process under it (nginx's workers, all of
/// Postfix's daemons).
async fn measure(addr: SocketAddr, channel: Channel, server_pid: u32, load: &Load) -> Measured {
    let connector = TlsConnector::from(Arc::new(client_config()));
    let start = Instant::now();
    let measure_from = start + WARM_UP;
    let end = measure_from + load.duration;
    let mut tasks = Vec::new();
    // The server's CPU is read when the warm-up ends, from a task of its own.
    let cpu_at_start = tokio::spawn(async move {
        tokio::time::sleep_until(measure_from.into()).await;
        tree_cpu_seconds(server_pid)
    });
    for client in 0..load.connections {
        let connector = connector.clone();
        let sample = load.sample.clone();
        let gzip = load.gzip;
        tasks.push(tokio::spawn(async move {
            match channel {
                Channel::Mail => mail_loop(addr, sample, client, measure_from, end).await,
                Channel::Post | Channel::Put => {
                    let put = channel == Channel::Put;
                    client_loop(
                        addr,
                        connector,
                        sample,
                        gzip,
                        put,
                        client,
                        measure_from,
                        end,
                    )
                    .await
                }
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
    let cpu_end = tree_cpu_seconds(server_pid);
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
        seconds: load.duration.as_secs_f64(),
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
/// `end`, counting only answers that arrive after `measure_from`. With `put`, the same body
/// is `PUT` to a path named after its `report-id` instead (the nginx peer), so each request
/// creates a new file and is answered 201 like a stored report.
#[allow(clippy::too_many_arguments)]
async fn client_loop(
    addr: SocketAddr,
    connector: TlsConnector,
    mut report: serde_json::Value,
    gzip: bool,
    put: bool,
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
        let id = format!("bench-{}-{client}-{n}", std::process::id());
        report["report-id"] = id.clone().into();
        let json = serde_json::to_vec(&report).expect("serialize");
        let (body, content_type, suffix) = if gzip {
            (gzipped(&json), "application/tlsrpt+gzip", "json.gz")
        } else {
            (json, "application/tlsrpt+json", "json")
        };
        let head = if put {
            format!("PUT {PUT_DIR}{id}.{suffix}")
        } else {
            format!("POST {TLSRPT_PATH}")
        };
        let mut request = format!(
            "{head} HTTP/1.1\r\nHost: {host}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\r\n",
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

/// The SMTP peer: a private Postfix smtpd on 127.0.0.1 receiving for the report domain
/// (`relay_domains`, delivered to `discard:`), measured like the serve process. Skipped with
/// a note when Postfix cannot run here.
fn postfix_peer(runtime: &tokio::runtime::Runtime, load: &Load) {
    use mtasts_testkit::postfix_smtpd::{PostfixSmtpd, SmtpdConfig};
    if let Some(reason) = mtasts_testkit::postfix::unavailable() {
        println!("note: Postfix peer skipped: {reason}");
        return;
    }
    let ca = mtasts_testkit::TestCa::new();
    let config = SmtpdConfig {
        policy_service: None,
        ask_ccert: false,
        extra: vec![("relay_domains".to_owned(), report_host())],
    };
    let smtpd = match runtime.block_on(PostfixSmtpd::start(&ca, config)) {
        Ok(smtpd) => smtpd,
        Err(e) => {
            println!("note: Postfix peer skipped: it did not start: {e}");
            return;
        }
    };
    let pid = smtpd.pid().expect("a running Postfix has a pid");
    runtime.block_on(wait_listening(smtpd.addr()));
    let result = runtime.block_on(measure(smtpd.addr(), Channel::Mail, pid, load));
    print_row(
        "Postfix (peer)",
        "queue file, fsynced; then discard:",
        load.connections,
        &result,
    );
    let log = smtpd.log();
    let discarded = log.lines().filter(|l| l.contains("status=sent")).count();
    let warnings: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("warning:") || l.contains("fatal:"))
        .collect();
    println!("  Postfix discarded {discarded} messages by the end of the run (warm-up included)");
    for line in warnings.iter().take(5) {
        eprintln!("  Postfix log: {line}");
    }
}

/// The HTTPS peer: Debian's nginx storing every request body as a file (WebDAV `PUT`),
/// measured like the serve process. Skipped with a note when nginx is not installed.
fn nginx_peer(runtime: &tokio::runtime::Runtime, load: &Load) {
    let binary =
        PathBuf::from(std::env::var("BENCH_NGINX").unwrap_or_else(|_| "/usr/sbin/nginx".into()));
    if !binary.exists() {
        println!(
            "note: nginx peer skipped: {} not found (Debian: apt-get install nginx-light)",
            binary.display()
        );
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir for nginx");
    let nginx = Nginx::start(&binary, dir.path());
    runtime.block_on(wait_listening(nginx.addr));
    let result = runtime.block_on(measure(nginx.addr, Channel::Put, nginx.child.id(), load));
    print_row(
        "nginx (peer)",
        "a file per body, no fsync",
        load.connections,
        &result,
    );
    let stored = std::fs::read_dir(dir.path().join("www").join(PUT_DIR.trim_matches('/')))
        .map_or(0, Iterator::count);
    println!("  nginx stored {stored} files (warm-up included)");
    drop(nginx);
    let log = std::fs::read_to_string(dir.path().join("error.log")).unwrap_or_default();
    for line in log.lines().filter(|l| !l.contains("[notice]")).take(5) {
        eprintln!("  nginx error.log: {line}");
    }
}

/// Waits until something accepts TCP connections at `addr` (a peer that was just started).
async fn wait_listening(addr: SocketAddr) {
    for _ in 0..200 {
        if TcpStream::connect(addr).await.is_ok() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("nothing listens at {addr}");
}

/// Debian's nginx with the serve's kind of certificate (self-signed ECDSA P-256 for the report
/// host, from rcgen), stopped by SIGTERM to its master when dropped.
struct Nginx {
    child: Child,
    addr: SocketAddr,
}

impl Nginx {
    fn start(binary: &Path, dir: &Path) -> Nginx {
        let port = std::net::TcpListener::bind((NGINX_IP, 0))
            .and_then(|l| l.local_addr())
            .expect("free port for nginx")
            .port();
        let addr = SocketAddr::from((NGINX_IP, port));
        let generated =
            rcgen::generate_simple_self_signed(vec![report_host()]).expect("self-signed cert");
        write_file(&dir.join("cert.pem"), &generated.cert.pem(), 0o644);
        write_file(
            &dir.join("key.pem"),
            &generated.signing_key.serialize_pem(),
            0o600,
        );
        // As root, the workers run as nobody: they write the bodies, so the directory is
        // theirs to write (the key is read by the master before it drops privileges).
        let put_dir = dir.join("www").join(PUT_DIR.trim_matches('/'));
        std::fs::create_dir_all(&put_dir).expect("nginx put directory");
        set_mode(dir, 0o755);
        set_mode(&dir.join("www"), 0o755);
        set_mode(&put_dir, 0o777);
        let d = dir.display();
        // The body is written to a temp file in client_body_temp_path (nginx always buffers a
        // PUT body to a file) and renamed into place: one directory, one filesystem.
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
        listen {addr} ssl;
        ssl_certificate {d}/cert.pem;
        ssl_certificate_key {d}/key.pem;
        ssl_protocols TLSv1.2 TLSv1.3;
        keepalive_requests 100000;
        root {d}/www;
        location {PUT_DIR} {{
            dav_methods PUT;
            dav_access user:rw group:r all:r;
        }}
    }}
}}
"
        );
        write_file(&dir.join("nginx.conf"), &config, 0o644);
        let child = Command::new(binary)
            .arg("-p")
            .arg(dir)
            .arg("-e")
            .arg(dir.join("error.log"))
            .arg("-c")
            .arg(dir.join("nginx.conf"))
            .stdin(Stdio::null())
            .spawn()
            .expect("start nginx");
        Nginx { child, addr }
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        // SIGKILL would leave the workers running; SIGTERM makes the master stop them.
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }
}

fn write_file(path: &Path, contents: &str, mode: u32) {
    std::fs::write(path, contents).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    set_mode(path, mode);
}

fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .unwrap_or_else(|e| panic!("chmod {}: {e}", path.display()));
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

/// The CPU time, in seconds, of `root` and every process under it: for each live one its own
/// utime + stime (all its threads) plus cutime + cstime, the time of the children it has
/// reaped. Postfix's daemons come and go during a run (a `cleanup` exits after 100 messages)
/// and `master` reaps them, so each process's time is counted once, by itself while it lives
/// and by its parent after. `None` if `root` is gone. (100 clock ticks per second on Linux.)
fn tree_cpu_seconds(root: u32) -> Option<f64> {
    let mut processes = Vec::new();
    for entry in std::fs::read_dir("/proc").ok()? {
        let Some(pid) = entry
            .ok()
            .and_then(|e| e.file_name().to_str()?.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        let Some((_, rest)) = stat.rsplit_once(')') else {
            continue;
        };
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let field = |i: usize| fields.get(i).and_then(|f| f.parse::<u64>().ok());
        if let (Some(ppid), Some(u), Some(s), Some(cu), Some(cs)) =
            (field(1), field(11), field(12), field(13), field(14))
        {
            processes.push((pid, ppid as u32, u + s + cu + cs));
        }
    }
    processes.iter().find(|p| p.0 == root)?;
    let mut tree = vec![root];
    let mut ticks = 0;
    while let Some(pid) = tree.pop() {
        for &(child, parent, t) in &processes {
            if child == pid {
                ticks += t;
            }
            if parent == pid {
                tree.push(child);
            }
        }
    }
    Some(ticks as f64 / 100.0)
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
