//! Two serve nodes on one PostgreSQL database receive the same TLS report by HTTPS at the same
//! moment: both acknowledge it, and it is stored once with one duplicate.

use std::net::SocketAddr;

use mtasts_host::config::ServeConfig;
use mtasts_host::serve::Serve;
use mtasts_proto::hosted::delegation::Delegation;
use mtasts_proto::hosted::reporting::{ReportAddresses, TLSRPT_PATH};
use mtasts_store::reports::{Filter, ReportDb};
use mtasts_testkit::TestNet;
use mtasts_testkit::services::{self, Service};

use super::harness::{ZONE, free_port};
use super::scale_out::fresh_database;

/// A node on `ip` without ACME work to do (no domains are added).
fn config(
    net: &TestNet,
    ip: std::net::IpAddr,
    dns_port: u16,
    database: &str,
    dir: &std::path::Path,
) -> ServeConfig {
    ServeConfig {
        database: Some(database.to_owned()),
        data_dir: dir.to_path_buf(),
        zone: ZONE.to_owned(),
        public_ip: vec![ip],
        https_listen: vec![SocketAddr::new(ip, 0)],
        smtp_listen: vec![SocketAddr::new(ip, 0)],
        http_listen: vec![SocketAddr::new(ip, 0)],
        dns_listen: vec![SocketAddr::new(ip, dns_port)],
        api_listen: SocketAddr::new(ip, 0),
        dns: vec![net.dns_addr()],
        poll_interval_ms: 200,
        password_iterations: 1000,
        ..ServeConfig::default()
    }
}

/// curl POSTs `file` to the intake at `addr` (the report host resolved there; the service
/// certificate is not issued in this test, and RFC 8460 §5.3 lets reporters ignore
/// certificate errors) and returns the status code.
async fn post(addr: SocketAddr, file: &std::path::Path) -> Option<String> {
    let host = ReportAddresses::new(&Delegation::new(ZONE).unwrap())
        .host()
        .to_owned();
    let resolve = format!("{host}:{}:{}", addr.port(), addr.ip());
    let url = format!("https://{host}:{}{TLSRPT_PATH}", addr.port());
    let data = format!("@{}", file.display());
    let output = match tokio::process::Command::new("curl")
        .args([
            "--silent",
            "--show-error",
            "--insecure",
            "--resolve",
            &resolve,
            "--data-binary",
            &data,
            "-H",
            "Content-Type: application/tlsrpt+json",
            "--write-out",
            "%{http_code}",
            "--output",
            "/dev/null",
            &url,
        ])
        .output()
        .await
    {
        Ok(output) => output,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            services::skip(Service::Curl, &format_args!("curl is not installed ({e})"));
            return None;
        }
        Err(e) => panic!("cannot run curl: {e}"),
    };
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    Some(String::from_utf8_lossy(&output.stdout).into_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_nodes_accept_the_same_report_at_once_and_count_it_once() {
    let Some(fresh) = fresh_database().await else {
        return;
    };
    let database = fresh.url.clone();
    let net = TestNet::start().await;
    let (ip_a, ip_b) = (net.next_ip(), net.next_ip());
    let dir = tempfile::tempdir().unwrap();
    let a = Serve::start(config(
        &net,
        ip_a,
        free_port(ip_a).await,
        &database,
        dir.path(),
    ))
    .await
    .unwrap();
    let b = Serve::start(config(
        &net,
        ip_b,
        free_port(ip_b).await,
        &database,
        dir.path(),
    ))
    .await
    .unwrap();
    let Some(samples) = services::samples_dir() else {
        return;
    };
    let file = samples.join("tlsrpt/mta-sts-exporter/google.json");
    for round in 0..3 {
        let (code_a, code_b) = tokio::join!(
            post(a.addrs().https[0], &file),
            post(b.addrs().https[0], &file)
        );
        let (Some(code_a), Some(code_b)) = (code_a, code_b) else {
            return;
        };
        let mut codes = [code_a, code_b];
        codes.sort();
        let want = if round == 0 {
            ["200", "201"]
        } else {
            ["200", "200"]
        };
        assert_eq!(codes, want, "round {round}");
    }
    let reports = ReportDb::open(&database).await.unwrap();
    let rows = reports.list(&Filter::default(), 10).await.unwrap();
    assert_eq!(rows.len(), 1, "{rows:#?}");
    assert_eq!(rows[0].duplicates, 5);
    a.shutdown().await;
    b.shutdown().await;
}
