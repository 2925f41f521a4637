//! A serve node on a TestNet address, with Pebble, and helpers to reach it.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use axum::http::{Method, StatusCode};
use mtasts_host::config::ServeConfig;
use mtasts_host::serve::Serve;
use mtasts_net::dns::DnsLookup;
use mtasts_net::fetch::{FetchConfig, PolicyFetch, PolicyFetcher};
use mtasts_proto::txt::TxtRr;
use mtasts_testkit::TestNet;
use mtasts_testkit::pebble::{Pebble, PebbleOptions};
use serde_json::Value;

use crate::support;

pub(crate) const ZONE: &str = "hosted.test";

/// Free ports on `ip` for the serve listeners (Pebble must know them before serve starts,
/// and serve must know Pebble's directory).
pub(crate) async fn free_port(ip: IpAddr) -> u16 {
    let listener = tokio::net::TcpListener::bind(SocketAddr::new(ip, 0))
        .await
        .unwrap();
    let port = listener.local_addr().unwrap().port();
    // The DNS listener needs the UDP port free as well.
    let _udp = std::net::UdpSocket::bind(SocketAddr::new(ip, port)).unwrap();
    port
}

/// The ports every node of a test shares: the CA validates on one port for all nodes.
#[derive(Clone, Copy)]
pub(crate) struct Ports {
    pub(crate) https: u16,
    pub(crate) http: u16,
    pub(crate) dns: u16,
}

impl Ports {
    pub(crate) async fn pick(ip: IpAddr) -> Ports {
        Ports {
            https: free_port(ip).await,
            http: free_port(ip).await,
            dns: free_port(ip).await,
        }
    }
}

/// Starts Pebble for `net`, validating on `ports` (`None`: skipped, see `start_or_skip`).
pub(crate) async fn pebble(net: &TestNet, ports: Ports) -> Option<Pebble> {
    Pebble::start_or_skip(
        net.next_ip(),
        net.dns_addr(),
        ports.http,
        ports.https,
        PebbleOptions::default(),
    )
    .await
}

/// The configuration of a node on `ip` (its public address) with `ports`.
pub(crate) fn config(
    net: &TestNet,
    ip: IpAddr,
    ports: Ports,
    database: String,
    pebble: &Pebble,
    dir: &std::path::Path,
) -> ServeConfig {
    let ca = dir.join("pebble-listener.pem");
    std::fs::write(&ca, pebble.listener_root_pem()).unwrap();
    let issuance = dir.join("pebble-issuance.pem");
    std::fs::write(&issuance, pebble.issuance_root_pem()).unwrap();
    ServeConfig {
        database: Some(database),
        data_dir: dir.to_path_buf(),
        zone: ZONE.to_owned(),
        public_ip: vec![ip],
        https_listen: vec![SocketAddr::new(ip, ports.https)],
        http_listen: vec![SocketAddr::new(ip, ports.http)],
        dns_listen: vec![SocketAddr::new(ip, ports.dns)],
        smtp_listen: vec![SocketAddr::new(ip, 0)],
        api_listen: SocketAddr::new(ip, 0),
        acme_directory: pebble.directory_url().to_owned(),
        acme_ca_file: Some(ca),
        dns: vec![net.dns_addr()],
        ca_file: vec![issuance],
        pending_verify_interval: 1,
        poll_interval_ms: 200,
        password_iterations: 1000,
        verify_https_port: ports.https,
        verify_smtp_port: net.smtp_port(),
        ..ServeConfig::default()
    }
}

/// Points `domain`'s three names at the service the way an owner would, and forwards the
/// service zone to the serve node's DNS authority. The TXT targets carry the label of the
/// tenant hosting the domain, so the domain must have been added on `serve` already.
pub(crate) async fn delegate(net: &TestNet, serve: &Serve, domain: &str, dns: SocketAddr) {
    let tenant_id = serve
        .db()
        .domain(domain)
        .await
        .unwrap()
        .unwrap_or_else(|| panic!("{domain} is not hosted yet"))
        .tenant_id;
    let zone = net.zone();
    zone.forward(ZONE, dns);
    zone.add_cname(
        &format!("_mta-sts.{domain}"),
        &format!("_mta-sts.{domain}.t{tenant_id}.{ZONE}"),
    );
    zone.add_cname(&format!("mta-sts.{domain}"), &format!("policy.{ZONE}"));
    zone.add_cname(
        &format!("_smtp._tls.{domain}"),
        &format!("_smtp._tls.{domain}.t{tenant_id}.{ZONE}"),
    );
}

/// A JSON API call to `serve`'s API listener.
pub(crate) async fn api(
    serve: &Serve,
    method: Method,
    path: &str,
    token: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    support::api::call(serve.addrs().api, method, path, token, body).await
}

/// A resolver asking the test internet's DNS, as a sender's would.
pub(crate) fn resolver(net: &TestNet) -> Arc<dyn DnsLookup> {
    Arc::new(crate::support::dns::resolver(net, Duration::from_secs(3)))
}

/// The `id` senders see at `_mta-sts.<domain>` (through the owner's CNAME), if any.
pub(crate) async fn txt_id(dns: &dyn DnsLookup, domain: &str) -> Option<String> {
    let rrset: Vec<TxtRr> = dns.txt(&format!("_mta-sts.{domain}")).await.ok()?;
    match mtasts_proto::sts::record::select(&rrset) {
        mtasts_proto::txt::Selection::Found { record, .. } => Some(record.id.as_str().to_owned()),
        _ => None,
    }
}

/// Fetches the policy as a strict sender does, trusting only Pebble's issuing root; the body
/// on success.
pub(crate) async fn fetch_policy(
    dns: Arc<dyn DnsLookup>,
    pebble: &Pebble,
    port: u16,
    domain: &str,
) -> Result<String, String> {
    let fetcher = PolicyFetcher::new(
        FetchConfig {
            timeout: Duration::from_secs(5),
            roots: pebble.issuance_roots(),
            port,
            max_bytes: 64 * 1024,
        },
        dns,
    );
    let report = fetcher.fetch(domain).await;
    report
        .outcome
        .map(|p| String::from_utf8_lossy(&p.body).into_owned())
        .map_err(|e| e.to_string())
}

/// Polls `check` every 200 ms until it returns `Some`, failing after `limit`.
pub(crate) async fn eventually<T, F, Fut>(what: &str, limit: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let give_up = tokio::time::Instant::now() + limit;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            tokio::time::Instant::now() < give_up,
            "timed out after {limit:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
