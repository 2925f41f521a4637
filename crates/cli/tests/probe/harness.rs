//! Runs `mtasts serve` as an operator does: a configuration file, a data directory, one
//! loopback address (127.x.y.z) of its own for every listener, ACME off. Starts, restarts on
//! the same data, stops with SIGTERM or SIGKILL, and reads the first admin token.

use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::http::{self, Reply};

/// The service zone of every probe server.
pub(crate) const ZONE: &str = "mta-sts.probe.test";
/// The password of every user the probe creates.
pub(crate) const PASSWORD: &str = "probe password 1234";

/// How long a server may take to start.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// A data directory and an address for `mtasts serve`, across restarts.
pub(crate) struct Site {
    dir: tempfile::TempDir,
    /// The loopback address every listener binds.
    pub(crate) ip: String,
    /// The DNS listener's port, fixed across restarts (the service also resolves through it,
    /// so its own lookups are answered at once instead of leaving the machine).
    dns_port: u16,
    /// Extra TOML lines of the configuration.
    extra: String,
    starts: u32,
    /// The first start's admin token, for the starts after it.
    admin: Option<String>,
    /// The DNS server the service resolves through, when not its own.
    resolver: Option<SocketAddr>,
    /// Environment variables of the next start.
    env: Vec<(String, String)>,
}

/// A running `mtasts serve`. Killed (SIGKILL) when dropped.
pub(crate) struct Running {
    child: Child,
    /// API and dashboard.
    pub(crate) api: SocketAddr,
    /// DNS authority (UDP and TCP).
    pub(crate) dns: SocketAddr,
    /// HTTPS policy host.
    pub(crate) https: SocketAddr,
    /// The first admin token (read from `<data_dir>/admin-token`).
    pub(crate) admin: String,
    stdout: PathBuf,
    stderr: PathBuf,
}

impl Site {
    /// A new site whose configuration has `extra` appended (TOML lines).
    pub(crate) fn new(extra: &str) -> Site {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let pid = std::process::id();
        let ip = format!("127.{}.{}.{}", 20 + pid % 80, (pid / 80) % 250 + 1, 10 + n);
        let dns_port = free_port(&ip);
        Site {
            dir: tempfile::tempdir().unwrap(),
            ip,
            dns_port,
            extra: extra.to_owned(),
            starts: 0,
            admin: None,
            resolver: None,
            env: Vec::new(),
        }
    }

    /// Replaces the extra TOML lines (for the next start).
    pub(crate) fn set_extra(&mut self, extra: &str) {
        self.extra = extra.to_owned();
    }

    /// Sets the environment of the next starts to `vars`.
    pub(crate) fn set_env(&mut self, vars: &[(&str, &str)]) {
        self.env = vars
            .iter()
            .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
            .collect();
    }

    /// Resolves through `server` instead of the service's own DNS (for records the probe
    /// publishes in a testkit zone).
    pub(crate) fn resolve_through(&mut self, server: SocketAddr) {
        self.resolver = Some(server);
    }

    /// The SQLite database file.
    pub(crate) fn database(&self) -> PathBuf {
        self.data_dir().join("serve.db")
    }

    /// The data directory (`data_dir`), which `serve` creates.
    pub(crate) fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// The configuration file.
    pub(crate) fn config_file(&self) -> PathBuf {
        self.dir.path().join("serve.toml")
    }

    /// A path in the site's temporary directory (outside the data directory).
    pub(crate) fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn write_config(&self) {
        let ip = &self.ip;
        let port = self.dns_port;
        let resolver = self
            .resolver
            .map_or_else(|| format!("{ip}:{port}"), |r| r.to_string());
        let text = format!(
            "zone = \"{ZONE}\"\npublic_ip = [\"{ip}\"]\nhttps_listen = [\"{ip}:0\"]\n\
             http_listen = [\"{ip}:0\"]\ndns_listen = [\"{ip}:{port}\"]\napi_listen = \"{ip}:0\"\n\
             smtp_listen = [\"{ip}:0\"]\ndns = [\"{resolver}\"]\nacme_directory = \"\"\ndata_dir = \"{}\"\n\
             password_iterations = 1000\npoll_interval_ms = 200\nnode_id = \"probe\"\n{}\n",
            self.data_dir().display(),
            self.extra
        );
        std::fs::write(self.config_file(), text).unwrap();
    }

    /// `mtasts serve --config <file>` under umask 022 (a normal operator's), with its output
    /// in files of the site; waits until it listens.
    pub(crate) fn start(&mut self) -> Running {
        self.try_start().unwrap_or_else(|e| panic!("{e}"))
    }

    /// Like [`Site::start`], with why it did not start as the error (its output included).
    pub(crate) fn try_start(&mut self) -> Result<Running, String> {
        self.write_config();
        self.starts += 1;
        let stdout = self.path(&format!("stdout-{}.txt", self.starts));
        let stderr = self.path(&format!("stderr-{}.txt", self.starts));
        let child = Command::new("sh")
            .arg("-c")
            .arg("umask 022; exec \"$0\" serve --config \"$1\"")
            .arg(env!("CARGO_BIN_EXE_mtasts"))
            .arg(self.config_file())
            .env("MTASTS_LOG", "warn")
            .env_remove("MTASTS_SECRET_KEY")
            .env_remove("MTASTS_PREVIOUS_SECRET_KEYS")
            .envs(self.env.iter().map(|(n, v)| (n, v)))
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&stdout).unwrap())
            .stderr(std::fs::File::create(&stderr).unwrap())
            .spawn()
            .unwrap();
        let mut running = Running {
            child,
            api: "0.0.0.0:0".parse().unwrap(),
            dns: "0.0.0.0:0".parse().unwrap(),
            https: "0.0.0.0:0".parse().unwrap(),
            admin: String::new(),
            stdout,
            stderr,
        };
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            let text = running.stdout();
            if text.contains("dashboard:") {
                running.api = addresses(&text, "API:")[0];
                running.dns = addresses(&text, "DNS authority:")[0];
                running.https = addresses(&text, "policy host (HTTPS):")[0];
                break;
            }
            if let Ok(Some(status)) = running.child.try_wait() {
                return Err(format!(
                    "serve exited ({status}) before listening:\n{}",
                    running.output()
                ));
            }
            if Instant::now() > deadline {
                return Err(format!("serve did not start:\n{}", running.output()));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        if self.admin.is_none() {
            self.admin = self.first_admin_token();
        }
        running.admin = self.admin.clone().unwrap_or_default();
        Ok(running)
    }

    /// The first admin token, from the `admin-token` file of the data directory (written
    /// before the listener lines are printed).
    fn first_admin_token(&self) -> Option<String> {
        let text = std::fs::read_to_string(self.data_dir().join("admin-token")).ok()?;
        let token = text.trim();
        token.starts_with("mtasts_").then(|| token.to_owned())
    }
}

impl Running {
    /// What the process printed on stdout so far.
    pub(crate) fn stdout(&self) -> String {
        std::fs::read_to_string(&self.stdout).unwrap_or_default()
    }

    /// What the process logged on stderr so far.
    pub(crate) fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    /// stdout and stderr, for failure messages.
    pub(crate) fn output(&self) -> String {
        format!("--- stdout\n{}--- stderr\n{}", self.stdout(), self.stderr())
    }

    /// Whether the process is still running.
    pub(crate) fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// SIGTERM, then waits (at most 15 s) for a clean exit; returns whether it exited 0.
    pub(crate) fn stop(mut self) -> bool {
        let _ = Command::new("kill")
            .arg(self.child.id().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status.success();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }

    /// SIGKILL, at once.
    pub(crate) fn kill9(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// An API call with the admin token.
    pub(crate) fn admin_call(&self, method: &str, path: &str, body: Option<&Value>) -> Reply {
        http::api(self.api, method, path, Some(&self.admin), body)
    }

    /// Creates tenant `name`, asserting success.
    pub(crate) fn tenant(&self, name: &str) {
        let reply = self.admin_call("POST", "/api/v1/tenants", Some(&json!({ "name": name })));
        assert_eq!(
            reply.status,
            201,
            "creating tenant {name}: {}",
            reply.text()
        );
    }

    /// A new token of `tenant` with `role` (`owner`, `readonly`), through the API.
    pub(crate) fn token(&self, tenant: &str, role: &str) -> String {
        let reply = self.admin_call(
            "POST",
            &format!("/api/v1/tenants/{tenant}/tokens"),
            Some(&json!({ "role": role, "label": format!("probe {role}") })),
        );
        assert_eq!(reply.status, 201, "creating a token: {}", reply.text());
        reply.json()["token"].as_str().unwrap().to_owned()
    }

    /// A new user of `tenant` (password [`PASSWORD`]) with `role`.
    pub(crate) fn user(&self, tenant: &str, email: &str, role: &str) {
        let reply = self.admin_call(
            "POST",
            &format!("/api/v1/tenants/{tenant}/users"),
            Some(&json!({ "email": email, "password": PASSWORD, "role": role })),
        );
        assert_eq!(reply.status, 201, "creating a user: {}", reply.text());
    }

    /// Adds `domain` (testing, an explicit MX, so no lookup) with `token`; returns the reply.
    pub(crate) fn add_domain(&self, token: &str, domain: &str) -> Reply {
        http::api(
            self.api,
            "POST",
            "/api/v1/domains",
            Some(token),
            Some(&json!({ "domain": domain, "mode": "testing", "mx": [format!("mx.{domain}")] })),
        )
    }

    /// Polls `check` every 50 ms until it holds, for at most `limit`.
    pub(crate) fn wait_until(&self, limit: Duration, mut check: impl FnMut() -> bool) -> bool {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if check() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        check()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The addresses listed on the stdout line starting with `label` (`[a, b]` or `http://a/…`).
fn addresses(text: &str, label: &str) -> Vec<SocketAddr> {
    let line = text
        .lines()
        .map(str::trim)
        .find(|l| l.starts_with(label))
        .unwrap_or_else(|| panic!("no {label} line in:\n{text}"));
    let rest = line[label.len()..].trim();
    let rest = rest.strip_prefix("http://").unwrap_or(rest);
    let list = rest
        .trim_start_matches('[')
        .split([']', '/', ' '])
        .next()
        .unwrap_or("");
    list.split(',')
        .filter_map(|a| a.trim().parse().ok())
        .collect()
}

/// A port free for both UDP and TCP on `ip` right now.
fn free_port(ip: &str) -> u16 {
    for _ in 0..50 {
        let udp = UdpSocket::bind(format!("{ip}:0")).unwrap();
        let port = udp.local_addr().unwrap().port();
        if TcpListener::bind(format!("{ip}:{port}")).is_ok() {
            return port;
        }
    }
    panic!("no free port on {ip}");
}

/// The mode bits (permissions) of `path`.
pub(crate) fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// `mtasts admin ARGS --config <site's file>`: exit code, stdout, stderr.
pub(crate) fn admin(site: &Site, args: &[&str]) -> (Option<i32>, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_mtasts"))
        .arg("admin")
        .args(args)
        .arg("--config")
        .arg(site.config_file())
        .env_remove("MTASTS_SECRET_KEY")
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Runs `statement` on the SQLite database at `path` (beside a running server: SQLite lets
/// several processes at it) and returns the first column of every row as text.
pub(crate) fn sqlite(path: &Path, statement: &str) -> Vec<String> {
    use sqlx::Row;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let options = sqlx::sqlite::SqliteConnectOptions::new()
            .filename(path)
            .busy_timeout(Duration::from_secs(10));
        let pool = sqlx::SqlitePool::connect_with(options).await.unwrap();
        let rows = sqlx::query(sqlx::AssertSqlSafe(statement.to_owned()))
            .fetch_all(&pool)
            .await
            .unwrap();
        let out = rows
            .iter()
            .map(|row| {
                row.try_get::<String, _>(0)
                    .or_else(|_| row.try_get::<i64, _>(0).map(|n| n.to_string()))
                    .unwrap_or_default()
            })
            .collect();
        pool.close().await;
        out
    })
}
