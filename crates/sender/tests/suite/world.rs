//! The fixtures: a TestNet with MTA-STS domains, a running daemon, a netstring client.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mtasts_proto::socketmap::{MAX_REPLY_BYTES, decode_netstring, encode_netstring};
use mtasts_sender::clock::ManualClock;
use mtasts_sender::daemon::{Daemon, Edges, discovery_options};
use mtasts_sender::fallback::FallbackStore;
use mtasts_sender::metrics::Metrics;
use mtasts_sender::{Config, RunError, Settings};
use mtasts_store::PolicyStore;
use mtasts_testkit::TestNet;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// The start of the manual clock (2026-11-22).
pub(super) const T0: u64 = 1_795_000_000;

pub(super) fn policy_text(mode: &str, mx: &[&str], max_age: u32) -> String {
    let mut text = format!("version: STSv1\r\nmode: {mode}\r\n");
    for m in mx {
        text.push_str(&format!("mx: {m}\r\n"));
    }
    text.push_str(&format!("max_age: {max_age}\r\n"));
    text
}

/// Publishes an MTA-STS domain: TXT `v=STSv1; id=<id>` and a policy host serving a policy in
/// `mode` for `mx.<domain>` and `*.mx.<domain>`, max_age one week.
pub(super) async fn sts_domain(net: &TestNet, domain: &str, mode: &str, id: &str) {
    let mx = format!("mx.{domain}");
    let wildcard = format!("*.mx.{domain}");
    net.add_sts_domain(
        domain,
        &policy_text(mode, &[&mx, &wildcard], 604_800),
        &format!("v=STSv1; id={id}"),
    )
    .await;
}

/// Replaces the `_mta-sts` TXT record of `domain`.
pub(super) fn set_id(net: &TestNet, domain: &str, id: &str) {
    let name = format!("_mta-sts.{domain}");
    net.zone().remove(&name);
    net.zone().add_txt(&name, &[&format!("v=STSv1; id={id}")]);
}

/// The OK answer for a domain made by [`sts_domain`] under the default profile.
pub(super) fn secure_answer(domain: &str) -> String {
    format!("OK secure match=mx.{domain}:.mx.{domain} servername=hostname")
}

/// Policy fetches the HTTPS hosts saw for `domain`.
pub(super) fn fetches(net: &TestNet, domain: &str) -> usize {
    let sni = format!("mta-sts.{domain}");
    net.policy_requests()
        .iter()
        .filter(|r| r.sni == sni)
        .count()
}

/// TXT queries the DNS server saw for `_mta-sts.<domain>`.
pub(super) fn txt_queries(net: &TestNet, domain: &str) -> usize {
    let name = format!("_mta-sts.{domain}");
    net.zone()
        .queries()
        .iter()
        .filter(|(n, t)| *n == name && t.to_string() == "TXT")
        .count()
}

/// A running daemon on a TestNet.
pub(super) struct World {
    pub(super) net: Arc<TestNet>,
    pub(super) clock: Arc<ManualClock>,
    pub(super) daemon: Arc<Daemon>,
    pub(super) socketmap: SocketAddr,
    pub(super) http: SocketAddr,
    pub(super) shutdown: CancellationToken,
    pub(super) reload: Arc<Notify>,
    pub(super) server: Option<JoinHandle<Result<(), RunError>>>,
    pub(super) config_path: PathBuf,
    /// Keeps the configuration directory alive.
    pub(super) _dir: Arc<tempfile::TempDir>,
}

/// The configuration text pointing at the TestNet (top-level keys only; tests append tables).
pub(super) fn base_toml(net: &TestNet) -> String {
    format!(
        "timeout = 2\nbuiltin_roots = false\nca_files = [{:?}]\ndns_servers = [\"{}\"]\nhttps_port = {}\ndrain_timeout = 2\n",
        net.ca_file().display().to_string(),
        net.dns_addr(),
        net.https_port()
    )
}

impl World {
    /// A daemon with the base configuration plus `extra` TOML (tables), listening on
    /// loopback ports chosen by the system, caching in memory.
    pub(super) async fn start(net: TestNet, extra: &str) -> World {
        let dir = Arc::new(tempfile::tempdir().unwrap());
        Self::start_in(Arc::new(net), dir, extra, |_| {}).await
    }

    /// Like [`World::start`] with a hook to adjust the configuration after loading.
    pub(super) async fn start_in(
        net: Arc<TestNet>,
        dir: Arc<tempfile::TempDir>,
        extra: &str,
        adjust: impl FnOnce(&mut Config),
    ) -> World {
        Self::launch(net, dir, extra, adjust, None).await
    }

    /// Like [`World::start`], caching in `store` (an open backend, e.g. one reached through a
    /// `TcpProxy` with a test's own key prefix or schema) behind the daemon's memory fallback,
    /// retried every `cache.store_retry` seconds of the configuration.
    pub(super) async fn start_with_store(
        net: TestNet,
        extra: &str,
        store: Arc<dyn PolicyStore>,
    ) -> World {
        let dir = Arc::new(tempfile::tempdir().unwrap());
        Self::launch(Arc::new(net), dir, extra, |_| {}, Some(store)).await
    }

    async fn launch(
        net: Arc<TestNet>,
        dir: Arc<tempfile::TempDir>,
        extra: &str,
        adjust: impl FnOnce(&mut Config),
        store: Option<Arc<dyn PolicyStore>>,
    ) -> World {
        let config_path = dir.path().join("resolver.toml");
        std::fs::write(&config_path, format!("{}{extra}", base_toml(&net))).unwrap();
        let mut config = Config::load(&config_path).unwrap();
        config.socketmap.tcp = vec!["127.0.0.1:0".parse().unwrap()];
        config.http.listen = vec!["127.0.0.1:0".parse().unwrap()];
        if config.cache.url.is_none() {
            config.cache.url = Some("memory".into());
        }
        adjust(&mut config);
        let metrics = Arc::new(Metrics::new());
        let settings = Settings::from_config(&config).unwrap();
        let mut edges = Edges::from_config(&config, metrics.clone()).await.unwrap();
        let clock = Arc::new(ManualClock::new(T0));
        edges.clock = clock.clone();
        if let Some(store) = store {
            edges.store = Arc::new(FallbackStore::with_primary(
                store,
                metrics.clone(),
                Duration::from_secs(config.cache.store_retry),
            ));
        }
        let daemon = Daemon::new(
            settings,
            edges,
            metrics,
            discovery_options(&config),
            Some(config_path.clone()),
        );
        let server = mtasts_sender::server::bind_with(config, daemon.clone())
            .await
            .unwrap();
        let socketmap = server.socketmap_addrs()[0];
        let http = server.http_addrs()[0];
        let shutdown = CancellationToken::new();
        let reload = Arc::new(Notify::new());
        let handle = tokio::spawn(server.run(shutdown.clone(), reload.clone()));
        World {
            net,
            clock,
            daemon,
            socketmap,
            http,
            shutdown,
            reload,
            server: Some(handle),
            config_path,
            _dir: dir,
        }
    }

    /// A socketmap client connected to the daemon.
    pub(super) async fn client(&self) -> Client<tokio::net::TcpStream> {
        Client::new(
            tokio::net::TcpStream::connect(self.socketmap)
                .await
                .unwrap(),
        )
    }

    /// One lookup on a fresh connection.
    pub(super) async fn ask(&self, name: &str, key: &str) -> String {
        self.client().await.ask(name, key).await
    }

    /// Stops the daemon and waits for it.
    pub(super) async fn stop(&mut self) {
        self.shutdown.cancel();
        if let Some(server) = self.server.take() {
            server.await.unwrap().unwrap();
        }
    }

    /// `GET path` over HTTP/1.1; returns the status code, the headers and the body.
    pub(super) async fn http_get(&self, path: &str) -> (u16, String, String) {
        let mut stream = tokio::net::TcpStream::connect(self.http).await.unwrap();
        stream
            .write_all(
                format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
                    .as_bytes(),
            )
            .await
            .unwrap();
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).await.unwrap();
        let text = String::from_utf8(raw).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        let status = head[9..12].parse().unwrap();
        (status, head.to_string(), body.to_string())
    }
}

impl Drop for World {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// A netstring client that keeps bytes of later replies.
pub(super) struct Client<S> {
    stream: S,
    buf: Vec<u8>,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Client<S> {
    pub(super) fn new(stream: S) -> Self {
        Client {
            stream,
            buf: Vec::new(),
        }
    }

    /// Sends `NAME KEY` and returns the reply payload as text.
    pub(super) async fn ask(&mut self, name: &str, key: &str) -> String {
        self.send(name, key).await;
        self.reply().await.expect("a reply")
    }

    pub(super) async fn send(&mut self, name: &str, key: &str) {
        self.send_raw(&encode_netstring(format!("{name} {key}").as_bytes()))
            .await;
    }

    pub(super) async fn send_raw(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).await.unwrap();
    }

    /// The next reply, or `None` when the server closed the connection.
    pub(super) async fn reply(&mut self) -> Option<String> {
        let mut chunk = [0u8; 4096];
        loop {
            if let Some((payload, used)) = decode_netstring(&self.buf, MAX_REPLY_BYTES).unwrap() {
                self.buf.drain(..used);
                return Some(String::from_utf8(payload).unwrap());
            }
            let n = self.stream.read(&mut chunk).await.ok()?;
            if n == 0 {
                return None;
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }
}

/// Whether `path` exists (for the UNIX socket test).
pub(super) fn exists(path: &Path) -> bool {
    std::fs::symlink_metadata(path).is_ok()
}

/// The daemon's log lines, captured (the test runtime runs every task on the test's thread,
/// so a thread-local subscriber sees them all).
#[derive(Clone, Default)]
pub(super) struct Logs(Arc<Mutex<Vec<u8>>>);

impl Logs {
    /// Captures INFO and above until the guard is dropped.
    pub(super) fn capture(&self) -> tracing::subscriber::DefaultGuard {
        let subscriber = tracing_subscriber::fmt()
            .with_writer(self.clone())
            .with_ansi(false)
            .with_max_level(tracing::Level::INFO)
            .finish();
        tracing::subscriber::set_default(subscriber)
    }

    pub(super) fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap_or_else(|p| p.into_inner())).into_owned()
    }

    pub(super) fn contains(&self, needle: &str) -> bool {
        self.text().contains(needle)
    }

    /// Waits until a line containing `needle` is logged: the event that proves the daemon
    /// processed something, where "nothing changed" would otherwise be asserted after a
    /// sleep.
    pub(super) async fn wait_for(&self, needle: &str) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while !self.contains(needle) {
            assert!(
                tokio::time::Instant::now() < deadline,
                "no log line with {needle:?}:\n{}",
                self.text()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

impl std::io::Write for Logs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Logs {
    type Writer = Logs;

    fn make_writer(&'a self) -> Logs {
        self.clone()
    }
}
