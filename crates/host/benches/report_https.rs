//! TLS reports accepted per second by the HTTPS intake (`POST https://reports.<zone>/tlsrpt`),
//! into SQLite and, when `BENCH_POSTGRES` names a database, PostgreSQL. Every report is
//! distinct (its own report id), gzip-compressed, about 1 KiB before compression, and is
//! answered 201 only once committed, so this measures the whole path: TLS, HTTP, the walk and
//! one database transaction per report. Not a test: run by hand (see docs/benchmarks.md).
//!
//! Environment:
//! - `BENCH_REPORTS` (default 2000): reports per database.
//! - `BENCH_CONNECTIONS` (default 8): concurrent senders, each on one keep-alive connection.
//! - `BENCH_POSTGRES`: a `postgres://` URL whose `report_*` tables may be filled.

use std::io::Write as _;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use mtasts_host::client_addr::TrustedProxies;
use mtasts_host::policy_host::{
    IntakeLimits, ListenerLimits, PolicyHost, ReportIntake, certified_key_from_pem,
};
use mtasts_host::ratelimit::Rate;
use mtasts_host::snapshot::{Snapshot, ZoneSettings, handle};
use mtasts_proto::hosted::delegation::Delegation;
use mtasts_proto::hosted::reporting::{ReportAddresses, TLSRPT_PATH};
use mtasts_store::reports::ReportDb;
use mtasts_testkit::{CertSpec, TestCa};
use rustls::pki_types::ServerName;
use rustls::{ClientConfig, RootCertStore};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsConnector;

const ZONE: &str = "bench.example";
const SERVER_IP: Ipv4Addr = Ipv4Addr::new(127, 84, 62, 1);

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Report `n`, gzip-compressed.
fn report(n: usize) -> Bytes {
    let json = format!(
        r#"{{"organization-name":"Bench Org {org}","date-range":{{"start-datetime":"2026-11-01T00:00:00Z","end-datetime":"2026-11-01T23:59:59Z"}},"contact-info":"tlsrpt@org{org}.example","report-id":"bench-{n}","policies":[{{"policy":{{"policy-type":"sts","policy-string":["version: STSv1","mode: testing","mx: mx1.example.com","mx: mx2.example.com","max_age: 86400"],"policy-domain":"example.com","mx-host":["mx1.example.com","mx2.example.com"]}},"summary":{{"total-successful-session-count":{ok},"total-failure-session-count":2}},"failure-details":[{{"result-type":"certificate-expired","sending-mta-ip":"192.0.2.{a}","receiving-mx-hostname":"mx1.example.com","receiving-ip":"198.51.100.1","failed-session-count":1}},{{"result-type":"starttls-not-supported","sending-mta-ip":"192.0.2.{b}","receiving-mx-hostname":"mx2.example.com","receiving-ip":"198.51.100.2","failed-session-count":1}}]}}]}}"#,
        org = n % 50,
        ok = 1000 + n,
        a = n % 250,
        b = (n + 7) % 250,
    );
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(json.as_bytes()).expect("gzip");
    Bytes::from(encoder.finish().expect("gzip"))
}

async fn measure(url: &str, reports: usize, connections: usize) -> (f64, Duration) {
    let db = ReportDb::open(url)
        .await
        .expect("open the reports database");
    let ca = TestCa::new();
    let host = ReportAddresses::new(&Delegation::new(ZONE).unwrap())
        .host()
        .to_owned();
    let cert = ca.issue(&host, &CertSpec::Valid);
    let key = certified_key_from_pem(&cert.chain_pem(), &cert.key_pem()).expect("bench key");
    let listener = TcpListener::bind((SERVER_IP, 0)).await.expect("bind");
    let addr = listener.local_addr().unwrap();
    let snapshot = Snapshot {
        generation: 1,
        service_certificate: Some(key),
        ..Default::default()
    };
    let limits = IntakeLimits {
        rate: Rate::per_minute(u32::MAX, u32::MAX),
        max_concurrent: connections,
        ..IntakeLimits::default()
    };
    let intake = Arc::new(ReportIntake::with_db(
        db.clone(),
        limits,
        TrustedProxies::default(),
    ));
    let server = PolicyHost::start_with_intake(
        listener,
        handle(snapshot),
        ZoneSettings {
            delegation: Delegation::new(ZONE).unwrap(),
            public_ips: vec![IpAddr::V4(SERVER_IP)],
            ttl: 300,
            report_mail: false,
            own_policy_mode: mtasts_proto::sts::policy::Mode::Testing,
        },
        ListenerLimits::default(),
        Some(intake),
    );
    let mut roots = RootCertStore::empty();
    roots.add(ca.root_der()).expect("bench root");
    let mut config = ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let connector = TlsConnector::from(Arc::new(config));
    let bodies: Arc<Vec<Bytes>> = Arc::new((0..reports).map(report).collect());
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut senders = Vec::new();
    for _ in 0..connections {
        let (connector, host, bodies, next) = (
            connector.clone(),
            host.clone(),
            bodies.clone(),
            next.clone(),
        );
        senders.push(tokio::spawn(async move {
            send(addr, &connector, &host, &bodies, &next).await;
        }));
    }
    for sender in senders {
        sender.await.expect("sender");
    }
    let elapsed = started.elapsed();
    server.shutdown().await;
    db.close().await;
    (reports as f64 / elapsed.as_secs_f64(), elapsed)
}

async fn send(
    addr: SocketAddr,
    connector: &TlsConnector,
    host: &str,
    bodies: &[Bytes],
    next: &AtomicUsize,
) {
    let tcp = TcpStream::connect(addr).await.expect("connect");
    let name = ServerName::try_from(host.to_owned()).unwrap();
    let tls = connector.connect(name, tcp).await.expect("TLS");
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tls))
            .await
            .expect("HTTP/1.1");
    tokio::spawn(connection);
    loop {
        let n = next.fetch_add(1, Ordering::Relaxed);
        let Some(body) = bodies.get(n) else {
            return;
        };
        let request = hyper::Request::post(TLSRPT_PATH)
            .header("host", host)
            .header("content-type", "application/tlsrpt+gzip")
            .body(Full::new(body.clone()))
            .unwrap();
        let response = sender.send_request(request).await.expect("response");
        let status = response.status();
        let _ = response.into_body().collect().await;
        assert_eq!(status, 201, "report {n}");
    }
}

fn main() {
    let reports = env_or("BENCH_REPORTS", 2000);
    let connections = env_or("BENCH_CONNECTIONS", 8);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let dir = tempfile::tempdir().expect("temp dir");
    let mut targets = vec![(
        "sqlite".to_owned(),
        format!("sqlite:{}", dir.path().join("reports.db").display()),
    )];
    if let Ok(url) = std::env::var("BENCH_POSTGRES") {
        targets.push(("postgres".to_owned(), url));
    }
    for (name, url) in targets {
        let (rate, elapsed) = runtime.block_on(measure(&url, reports, connections));
        println!(
            "{name}: {reports} reports over {connections} connections in {:.2} s: {rate:.0} reports/s",
            elapsed.as_secs_f64()
        );
    }
}
