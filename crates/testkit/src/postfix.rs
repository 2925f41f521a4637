//! A private, real Postfix instance delivering into a [`TestNet`], and a fixed-reply socketmap
//! server to drive its TLS policy lookups.
//!
//! [`Postfix::start`] writes a complete instance under a temporary directory (its own
//! `config_directory`, `queue_directory`, `data_directory` and `maillog_file`; every service
//! with `chroot = n`; no listener at all, mail is submitted with `sendmail -C`) and runs its
//! `master` daemon inside fresh mount and PID namespaces (`unshare --mount --pid --fork`):
//!
//! * Postfix's SMTP client resolves MX and A records through the system resolver, which cannot
//!   be given a port. Inside the mount namespace `/etc/resolv.conf` is bind-mounted over with
//!   a file naming only the TestNet DNS server, so the TestNet must serve DNS on port 53 and
//!   its MX hosts must listen on port 25 ([`Ports`](crate::Ports) `{ dns: 53, smtp: 25, .. }`).
//!   The machine's own resolver configuration is never touched.
//! * The PID namespace ties every Postfix process to a small watchdog shell (its init): when
//!   the [`Postfix`] value is dropped, or the test process dies and the watchdog's stdin
//!   closes, the shell stops `master`, and when the shell exits the kernel kills whatever is
//!   left. `master -e` is a last-resort time limit.
//!
//! Everything Postfix contacts is on loopback: the TestNet (127.X.Y.0/24) and the policy
//! socketmap (`socketmap:inet:127.0.0.1:PORT:NAME`). Running it needs root (namespaces, port
//! 53 and 25) and Debian's `postfix` package; [`available_or_skip`] tells a test whether to skip.

use std::collections::HashMap;
use std::io::Write as _;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;

use crate::world::TestNet;

/// The `postfix` command; its absence means Postfix is not installed.
const POSTFIX: &str = "/usr/sbin/postfix";
/// Postfix's `sendmail` and `postqueue` commands.
const SENDMAIL: &str = "/usr/sbin/sendmail";
const POSTQUEUE: &str = "/usr/sbin/postqueue";
const POSTCONF: &str = "/usr/sbin/postconf";
/// How long any one Postfix command may take.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(30);
/// How long `master` may take to come up.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(30);
/// How long dropping a [`Postfix`] waits for `master` to stop before killing everything.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);
/// `master -e`: the instance stops by itself after this many seconds, whatever happens.
const MASTER_EXIT_AFTER_SECS: u32 = 900;

/// Whether Postfix end-to-end tests can run here: Postfix must be installed, the process must
/// be root, and mount and PID namespaces must be available. When not, the test is skipped by
/// the one rule of [`crate::services::skip`] (under `MTASTS_REQUIRE_SERVICES=1`, CI, a panic
/// naming Postfix and why).
#[track_caller]
pub fn available_or_skip() -> bool {
    match unavailable() {
        Some(reason) => {
            crate::services::skip(crate::services::Service::Postfix, &reason);
            false
        }
        None => true,
    }
}

/// Why Postfix instances cannot run here (see [`available_or_skip`]), or `None` when they
/// can. For callers that are not tests (benchmarks), which skip with a note of their own.
pub fn unavailable() -> Option<String> {
    if !Path::new(POSTFIX).exists() {
        return Some(format!("postfix not installed ({POSTFIX} missing)"));
    }
    if effective_uid() != Some(0) {
        return Some("not root (needs namespaces and ports 25 and 53)".to_owned());
    }
    let probe = std::process::Command::new("unshare")
        .args(["--mount", "--pid", "--fork", "--", "/bin/true"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    match probe {
        Ok(status) if status.success() => None,
        Ok(status) => Some(format!(
            "cannot create mount and PID namespaces (unshare: {status})"
        )),
        Err(error) => Some(format!("cannot run unshare: {error}")),
    }
}

/// The effective user id, from `/proc/self/status`.
fn effective_uid() -> Option<u32> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("Uid:"))?;
    line.split_whitespace().nth(2)?.parse().ok()
}

/// The uid and gid of `user`, from `/etc/passwd`.
fn user_ids(user: &str) -> Option<(u32, u32)> {
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|line| {
        let fields: Vec<&str> = line.split(':').collect();
        (fields.first() == Some(&user) && fields.len() > 3)
            .then(|| Some((fields[2].parse().ok()?, fields[3].parse().ok()?)))
            .flatten()
    })
}

/// How a [`Postfix`] instance is configured beyond the fixed test setup.
#[derive(Clone, Debug)]
pub struct PostfixConfig {
    /// `smtp_tls_policy_maps`, e.g. from [`PostfixConfig::socketmap`]. `None`: no policy table.
    pub policy_maps: Option<String>,
    /// `smtp_tls_security_level`, the level for destinations the policy table does not match.
    /// Default `may`.
    pub default_level: String,
    /// Further `main.cf` parameters, written last (they override the defaults).
    pub extra: Vec<(String, String)>,
}

impl Default for PostfixConfig {
    fn default() -> Self {
        PostfixConfig {
            policy_maps: None,
            default_level: "may".to_owned(),
            extra: Vec::new(),
        }
    }
}

impl PostfixConfig {
    /// Policy lookups go to the socketmap at `addr` (an IPv4 loopback address) with map name
    /// `name`: `socketmap:inet:IP:PORT:NAME`.
    pub fn socketmap(addr: SocketAddr, name: &str) -> Self {
        PostfixConfig {
            policy_maps: Some(format!(
                "socketmap:inet:{}:{}:{name}",
                addr.ip(),
                addr.port()
            )),
            ..Default::default()
        }
    }
}

/// What Postfix logged as the outcome of one delivery attempt to one recipient.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Delivery {
    /// `sent`, `deferred`, `bounced` (or another `status=` word).
    pub status: String,
    /// The `dsn=` code, e.g. `2.0.0` or `4.7.5`.
    pub dsn: String,
    /// The `relay=` field, e.g. `mx.example.test[127.1.2.3]:25` or `none`.
    pub relay: String,
    /// The text in parentheses after the status.
    pub reason: String,
    /// The whole log line.
    pub line: String,
}

impl Delivery {
    /// Parses a `to=<…>, relay=…, dsn=…, status=… (…)` log line.
    fn parse(line: &str) -> Option<Delivery> {
        let field = |name: &str| {
            let start = line.find(&format!(" {name}="))? + name.len() + 2;
            let rest = &line[start..];
            let end = rest.find([',', ' ']).unwrap_or(rest.len());
            Some(rest[..end].to_owned())
        };
        let status = field("status")?;
        let reason = line
            .split_once(&format!("status={status} ("))
            .map(|(_, rest)| rest.strip_suffix(')').unwrap_or(rest).to_owned())
            .unwrap_or_default();
        Some(Delivery {
            status,
            dsn: field("dsn").unwrap_or_default(),
            relay: field("relay").unwrap_or_default(),
            reason,
            line: line.to_owned(),
        })
    }
}

/// A running private Postfix instance (see the module docs). Dropping it stops every Postfix
/// process and removes the instance directory.
pub struct Postfix {
    /// The unshare'd watchdog shell; closing its stdin stops the instance.
    watchdog: Option<std::process::Child>,
    config_dir: PathBuf,
    maillog: PathBuf,
    master_output: PathBuf,
    /// Removed last, after every process has stopped.
    dir: tempfile::TempDir,
}

impl Postfix {
    /// Writes an instance delivering into `net` and starts it. `net`'s DNS server must listen
    /// on port 53 and its MX hosts on port 25; the test CA is the only trust anchor
    /// (`smtp_tls_CAfile`). Fails when Postfix cannot start (see [`available_or_skip`] to skip
    /// first).
    pub async fn start(net: &TestNet, config: PostfixConfig) -> std::io::Result<Postfix> {
        if net.dns_addr().port() != 53 || net.smtp_port() != 25 {
            return Err(std::io::Error::other(format!(
                "Postfix needs the TestNet's DNS on port 53 and MX hosts on port 25 (have {} and {})",
                net.dns_addr().port(),
                net.smtp_port()
            )));
        }
        let (dir, config_dir) = instance_dir()?;
        let root = dir.path().to_owned();

        let ca_file = config_dir.join("ca.pem");
        std::fs::copy(net.ca_file(), &ca_file)?;
        set_mode(&ca_file, 0o644)?;
        let resolv = root.join("resolv.conf");
        std::fs::write(
            &resolv,
            format!(
                "# mtasts Postfix test: only the TestNet DNS server\nnameserver {}\noptions timeout:2 attempts:2\n",
                net.dns_addr().ip()
            ),
        )?;
        set_mode(&resolv, 0o644)?;
        let maillog = root.join("maillog");
        let main_cf = main_cf(&root, &config, &ca_file, &maillog);
        std::fs::write(config_dir.join("main.cf"), main_cf)?;
        std::fs::write(config_dir.join("master.cf"), MASTER_CF)?;
        Postfix::launch(dir, config_dir, maillog, &resolv).await
    }

    /// Starts the instance written under `dir` (configuration in `config_dir`, see
    /// [`instance_dir`]) in fresh namespaces with `resolv` over `/etc/resolv.conf`, and waits
    /// until `master` runs.
    pub(crate) async fn launch(
        dir: tempfile::TempDir,
        config_dir: PathBuf,
        maillog: PathBuf,
        resolv: &Path,
    ) -> std::io::Result<Postfix> {
        let root = dir.path().to_owned();
        // Creates the queue directories with the right owners.
        run(tokio::process::Command::new(POSTFIX)
            .arg("-c")
            .arg(&config_dir)
            .arg("check"))
        .await?;
        let daemon_dir =
            run(tokio::process::Command::new(POSTCONF).args(["-d", "-h", "daemon_directory"]))
                .await?;
        let master = Path::new(daemon_dir.trim()).join("master");

        let master_output = root.join("master.out");
        let out = std::fs::File::create(&master_output)?;
        let watchdog = std::process::Command::new("unshare")
            .args(["--mount", "--pid", "--fork", "--kill-child", "--"])
            .args(["/bin/sh", "-c", WATCHDOG, "sh"])
            .arg(resolv)
            .arg(&master)
            .arg(&config_dir)
            .arg(MASTER_EXIT_AFTER_SECS.to_string())
            .stdin(Stdio::piped())
            .stdout(out.try_clone()?)
            .stderr(out)
            .spawn()?;
        let mut postfix = Postfix {
            watchdog: Some(watchdog),
            config_dir,
            maillog,
            master_output,
            dir,
        };
        postfix.wait_started().await?;
        Ok(postfix)
    }

    /// Waits until `master` logged that it runs.
    async fn wait_started(&mut self) -> std::io::Result<()> {
        let deadline = Instant::now() + STARTUP_TIMEOUT;
        loop {
            if self.log().contains("daemon started") {
                return Ok(());
            }
            let exited = match self.watchdog.as_mut() {
                Some(child) => child.try_wait()?.is_some(),
                None => true,
            };
            if exited || Instant::now() > deadline {
                let what = if exited {
                    "exited"
                } else {
                    "did not start in time"
                };
                return Err(std::io::Error::other(format!(
                    "Postfix master {what}\n--- master output:\n{}\n--- maillog:\n{}",
                    std::fs::read_to_string(&self.master_output).unwrap_or_default(),
                    self.log()
                )));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The instance's configuration directory (holding `main.cf`).
    pub fn config_dir(&self) -> &Path {
        &self.config_dir
    }

    /// The instance's root directory (configuration, queue, logs).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The process id of the `unshare` process that holds the instance: every Postfix process
    /// (the watchdog, `master` and its daemons) descends from it, so a benchmark can add up
    /// the instance's CPU time from `/proc`. `None` once stopped.
    pub fn pid(&self) -> Option<u32> {
        self.watchdog.as_ref().map(std::process::Child::id)
    }

    /// Submits a small message from `from` to `to` with `sendmail -C`.
    pub async fn send(&self, from: &str, to: &str, subject: &str) -> std::io::Result<()> {
        let message =
            format!("From: <{from}>\nTo: <{to}>\nSubject: {subject}\n\nA test message for {to}.\n");
        let mut child = tokio::process::Command::new(SENDMAIL)
            .arg("-C")
            .arg(&self.config_dir)
            .args(["-f", from, "--", to])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()?;
        let mut stdin = child
            .stdin
            .take()
            .ok_or_else(|| std::io::Error::other("sendmail has no stdin"))?;
        stdin.write_all(message.as_bytes()).await?;
        drop(stdin);
        let output = tokio::time::timeout(COMMAND_TIMEOUT, child.wait_with_output())
            .await
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "sendmail"))??;
        if !output.status.success() {
            return Err(std::io::Error::other(format!(
                "sendmail {to}: {}: {}",
                output.status,
                String::from_utf8_lossy(&output.stderr)
            )));
        }
        Ok(())
    }

    /// The instance's mail log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.maillog).unwrap_or_default()
    }

    /// Every delivery outcome logged for recipient `rcpt` so far, oldest first.
    pub fn deliveries(&self, rcpt: &str) -> Vec<Delivery> {
        let needle = format!(" to=<{rcpt}>,");
        self.log()
            .lines()
            .filter(|line| line.contains(&needle))
            .filter_map(Delivery::parse)
            .collect()
    }

    /// Waits up to `timeout` for the first logged outcome for `rcpt`. The error holds the log
    /// and the queue, for the test's failure message.
    pub async fn wait_for_delivery(
        &self,
        rcpt: &str,
        timeout: Duration,
    ) -> Result<Delivery, String> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(first) = self.deliveries(rcpt).into_iter().next() {
                return Ok(first);
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "no delivery outcome for {rcpt} within {timeout:?}\n{}",
                    self.diagnostics().await
                ));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// The queue listing (`postqueue -p`).
    pub async fn queue(&self) -> std::io::Result<String> {
        run(tokio::process::Command::new(POSTQUEUE)
            .arg("-c")
            .arg(&self.config_dir)
            .arg("-p"))
        .await
    }

    /// Whether a message for `rcpt` is still in the queue.
    pub async fn is_queued(&self, rcpt: &str) -> std::io::Result<bool> {
        let queue = self.queue().await?;
        Ok(queue.lines().any(|line| line.trim() == rcpt))
    }

    /// The log and the queue, for failure messages.
    pub async fn diagnostics(&self) -> String {
        let queue = self
            .queue()
            .await
            .unwrap_or_else(|e| format!("(postqueue failed: {e})"));
        format!("--- maillog:\n{}--- queue:\n{queue}", self.log())
    }
}

impl Drop for Postfix {
    fn drop(&mut self) {
        let Some(mut child) = self.watchdog.take() else {
            return;
        };
        // EOF on its stdin tells the watchdog to stop master; its exit ends the namespace.
        drop(child.stdin.take());
        let deadline = Instant::now() + STOP_TIMEOUT;
        loop {
            match child.try_wait() {
                Ok(Some(_)) => return,
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(50))
                }
                _ => break,
            }
        }
        // Killing unshare kills the watchdog (--kill-child), and with it the PID namespace.
        let _ = child.kill();
        let _ = child.wait();
    }
}

impl std::fmt::Debug for Postfix {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Postfix")
            .field("dir", &self.dir.path())
            .finish_non_exhaustive()
    }
}

/// A fresh instance directory (removed on drop) with its `etc`, `queue` and `data`
/// subdirectories, reachable by the `postfix` user; returns it and `etc`.
pub(crate) fn instance_dir() -> std::io::Result<(tempfile::TempDir, PathBuf)> {
    let dir = tempfile::Builder::new()
        .prefix("mtasts-postfix")
        .tempdir()?;
    let root = dir.path().to_owned();
    let config_dir = root.join("etc");
    let queue_dir = root.join("queue");
    let data_dir = root.join("data");
    for d in [&config_dir, &queue_dir, &data_dir] {
        std::fs::create_dir(d)?;
    }
    // Postfix daemons run as `postfix` and must reach the queue through this directory.
    set_mode(&root, 0o755)?;
    let (uid, gid) = user_ids("postfix")
        .ok_or_else(|| std::io::Error::other("no postfix user in /etc/passwd"))?;
    std::os::unix::fs::chown(&data_dir, Some(uid), Some(gid))?;
    Ok((dir, config_dir))
}

pub(crate) fn set_mode(path: &Path, mode: u32) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
}

/// Runs a Postfix command to completion (bounded) and returns its stdout.
async fn run(command: &mut tokio::process::Command) -> std::io::Result<String> {
    let what = format!("{:?}", command.as_std());
    let output = command.stdin(Stdio::null()).kill_on_drop(true).output();
    let output = tokio::time::timeout(COMMAND_TIMEOUT, output)
        .await
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, what.clone()))??;
    if !output.status.success() {
        return Err(std::io::Error::other(format!(
            "{what}: {}: {}{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )));
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// The watchdog, PID 1 of the new namespaces: `$1` resolv.conf, `$2` master, `$3` config
/// directory, `$4` master's time limit. It runs master until its own stdin closes.
const WATCHDOG: &str = r#"
mount --bind "$1" /etc/resolv.conf || { echo "cannot bind-mount $1 over /etc/resolv.conf"; exit 1; }
"$2" -c "$3" -e "$4" </dev/null &
pid=$!
cat >/dev/null
kill -TERM "$pid" 2>/dev/null
wait "$pid"
"#;

fn main_cf(root: &Path, config: &PostfixConfig, ca_file: &Path, maillog: &Path) -> String {
    let root = root.display();
    let mut params: Vec<(String, String)> = [
        ("compatibility_level", "3.6".to_owned()),
        ("config_directory", format!("{root}/etc")),
        ("queue_directory", format!("{root}/queue")),
        ("data_directory", format!("{root}/data")),
        ("maillog_file", maillog.display().to_string()),
        ("maillog_file_prefixes", root.to_string()),
        ("myhostname", "postfix.client.test".to_owned()),
        ("mydomain", "client.test".to_owned()),
        ("myorigin", "$myhostname".to_owned()),
        // Nothing is local: every recipient goes out over SMTP.
        ("mydestination", String::new()),
        ("relay_domains", String::new()),
        (
            "local_transport",
            "error:5.1.1 no local delivery".to_owned(),
        ),
        // No listener; Postfix refuses interface addresses it does not own, and only
        // 127.0.0.1 is one. The MX hosts are elsewhere in 127/8, so never "myself".
        ("inet_interfaces", "loopback-only".to_owned()),
        ("inet_protocols", "ipv4".to_owned()),
        ("smtp_address_preference", "ipv4".to_owned()),
        ("smtp_host_lookup", "dns".to_owned()),
        ("smtp_dns_support_level", "enabled".to_owned()),
        ("smtputf8_enable", "no".to_owned()),
        ("biff", "no".to_owned()),
        ("delay_warning_time", "0".to_owned()),
        // Fast retries, bounded waits.
        ("queue_run_delay", "1s".to_owned()),
        ("minimal_backoff_time", "1s".to_owned()),
        ("maximal_backoff_time", "2s".to_owned()),
        ("smtp_connect_timeout", "5s".to_owned()),
        ("smtp_helo_timeout", "10s".to_owned()),
        ("smtp_starttls_timeout", "10s".to_owned()),
        ("smtp_tls_security_level", config.default_level.clone()),
        ("smtp_tls_CAfile", ca_file.display().to_string()),
        ("smtp_tls_loglevel", "1".to_owned()),
        ("smtp_tls_session_cache_database", String::new()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    if let Some(maps) = &config.policy_maps {
        params.push(("smtp_tls_policy_maps".to_owned(), maps.clone()));
    }
    params.extend(config.extra.iter().cloned());
    let mut text = String::from("# mtasts Postfix end-to-end test instance\n");
    for (key, value) in params {
        text.push_str(&format!("{key} = {value}\n"));
    }
    text
}

/// Every service Postfix needs to deliver over SMTP, none chrooted (they must see the
/// bind-mounted resolv.conf), no listener.
pub(crate) const MASTER_CF: &str = "\
# service type  private unpriv  chroot  wakeup  maxproc command
pickup     unix  n       -       n       60      1       pickup
cleanup    unix  n       -       n       -       0       cleanup
qmgr       unix  n       -       n       300     1       qmgr
tlsmgr     unix  -       -       n       1000?   1       tlsmgr
rewrite    unix  -       -       n       -       -       trivial-rewrite
bounce     unix  -       -       n       -       0       bounce
defer      unix  -       -       n       -       0       bounce
trace      unix  -       -       n       -       0       bounce
verify     unix  -       -       n       -       1       verify
flush      unix  n       -       n       1000?   0       flush
proxymap   unix  -       -       n       -       -       proxymap
proxywrite unix  -       -       n       -       1       proxymap
smtp       unix  -       -       n       -       -       smtp
relay      unix  -       -       n       -       -       smtp
showq      unix  n       -       n       -       -       showq
error      unix  -       -       n       -       -       error
retry      unix  -       -       n       -       -       error
discard    unix  -       -       n       -       -       discard
anvil      unix  -       -       n       -       1       anvil
scache     unix  -       -       n       -       1       scache
postlog    unix-dgram n  -       n       -       1       postlogd
";

/// A socketmap server with fixed answers, standing in for the policy daemon: each request's
/// key is looked up (lowercased) in a table of reply payloads (`OK secure match=…`,
/// `NOTFOUND `, `TEMP …`); unknown keys get the default reply. Listens on 127.0.0.1.
pub struct FixedSocketmap {
    addr: SocketAddr,
    requests: Arc<Mutex<Vec<String>>>,
    tasks: JoinSet<()>,
}

impl FixedSocketmap {
    /// Starts the server on `127.0.0.1:0`. `replies` maps keys (e.g. `example.com`) to reply
    /// payloads; every other key gets `default` (e.g. `NOTFOUND `).
    pub async fn start<K, V>(
        replies: impl IntoIterator<Item = (K, V)>,
        default: &str,
    ) -> std::io::Result<FixedSocketmap>
    where
        K: Into<String>,
        V: Into<String>,
    {
        let table: HashMap<String, String> = replies
            .into_iter()
            .map(|(k, v)| (k.into().to_ascii_lowercase(), v.into()))
            .collect();
        let listener =
            TcpListener::bind(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0)).await?;
        let addr = listener.local_addr()?;
        let requests = Arc::new(Mutex::new(Vec::new()));
        let mut tasks = JoinSet::new();
        let state = Arc::new((table, default.to_owned(), requests.clone()));
        tasks.spawn(async move {
            let mut connections = JoinSet::new();
            while let Ok((stream, _)) = listener.accept().await {
                let state = state.clone();
                connections.spawn(async move {
                    let (table, default, requests) = &*state;
                    if let Err(error) = serve_socketmap(stream, table, default, requests).await {
                        tracing::debug!(%error, "fixed socketmap connection ended");
                    }
                });
                while connections.try_join_next().is_some() {}
            }
        });
        Ok(FixedSocketmap {
            addr,
            requests,
            tasks,
        })
    }

    /// The listening address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Every request payload received so far (`NAME KEY`), oldest first.
    pub fn requests(&self) -> Vec<String> {
        self.requests
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

impl Drop for FixedSocketmap {
    fn drop(&mut self) {
        self.tasks.abort_all();
    }
}

impl std::fmt::Debug for FixedSocketmap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FixedSocketmap")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

/// Largest request accepted (Postfix's `socketmap_max_query_size`).
const MAX_SOCKETMAP_QUERY: usize = 10_000;

async fn serve_socketmap(
    stream: TcpStream,
    table: &HashMap<String, String>,
    default: &str,
    requests: &Mutex<Vec<String>>,
) -> std::io::Result<()> {
    let mut stream = BufReader::new(stream);
    loop {
        let mut length = Vec::new();
        let mut limited = (&mut stream).take(8);
        let read = limited.read_until(b':', &mut length);
        let n = match tokio::time::timeout(Duration::from_secs(60), read).await {
            Ok(n) => n?,
            Err(_) => return Ok(()),
        };
        if n == 0 {
            return Ok(());
        }
        let length: usize = std::str::from_utf8(length.strip_suffix(b":").unwrap_or(b"x"))
            .ok()
            .and_then(|digits| digits.parse().ok())
            .filter(|&len| len <= MAX_SOCKETMAP_QUERY)
            .ok_or_else(|| std::io::Error::other("bad netstring length"))?;
        let mut payload = vec![0; length + 1];
        stream.read_exact(&mut payload).await?;
        if payload.pop() != Some(b',') {
            return Err(std::io::Error::other("netstring without a comma"));
        }
        let request = String::from_utf8_lossy(&payload).into_owned();
        let key = request
            .split_once(' ')
            .map(|(_, key)| key.to_ascii_lowercase())
            .unwrap_or_default();
        let reply = table.get(&key).map_or(default, String::as_str);
        requests
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(request);
        let mut out = Vec::new();
        write!(out, "{}:{reply},", reply.len())?;
        let stream = stream.get_mut();
        stream.write_all(&out).await?;
        stream.flush().await?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delivery_lines_are_parsed() {
        let line = "Nov 22 16:05:23 client postfix/smtp[12344]: B310F98E6FD: to=<b@x.test>, \
                    relay=mx.x.test[127.1.2.3]:25, delay=0.1, delays=0/0/0/0, dsn=4.7.5, \
                    status=deferred (Server certificate not verified)";
        let d = Delivery::parse(line).unwrap();
        assert_eq!(d.status, "deferred");
        assert_eq!(d.dsn, "4.7.5");
        assert_eq!(d.relay, "mx.x.test[127.1.2.3]:25");
        assert_eq!(d.reason, "Server certificate not verified");
        assert!(Delivery::parse("postfix/qmgr[1]: X: removed").is_none());
    }

    #[test]
    fn main_cf_lists_the_policy_map_and_extras_last() {
        let mut config = PostfixConfig::socketmap("127.0.0.1:8461".parse().unwrap(), "postfix");
        config.extra.push(("smtp_tls_loglevel".into(), "2".into()));
        let text = main_cf(
            Path::new("/tmp/x"),
            &config,
            Path::new("/tmp/x/etc/ca.pem"),
            Path::new("/tmp/x/maillog"),
        );
        assert!(text.contains("smtp_tls_policy_maps = socketmap:inet:127.0.0.1:8461:postfix\n"));
        assert!(text.contains("smtp_tls_security_level = may\n"));
        assert!(text.ends_with("smtp_tls_loglevel = 2\n"));
    }

    #[tokio::test]
    async fn fixed_socketmap_answers_by_key() {
        let map = FixedSocketmap::start([("example.com", "OK encrypt")], "NOTFOUND ")
            .await
            .unwrap();
        let mut tcp = TcpStream::connect(map.addr()).await.unwrap();
        tcp.write_all(b"19:postfix Example.COM,13:postfix other,")
            .await
            .unwrap();
        let mut buf = vec![0; "10:OK encrypt,9:NOTFOUND ,".len()];
        tcp.read_exact(&mut buf).await.unwrap();
        assert_eq!(buf, b"10:OK encrypt,9:NOTFOUND ,");
        assert_eq!(map.requests(), ["postfix Example.COM", "postfix other"]);
    }
}
