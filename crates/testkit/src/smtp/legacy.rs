//! TLS 1.0 and 1.1 for test MX hosts: a child `openssl s_server` the host proxies to after
//! answering `STARTTLS` (rustls cannot serve these versions).

use std::net::SocketAddr;
use std::process::Stdio;
use std::time::Duration;

use tokio::process::{Child, Command};

use super::*;

/// A child `openssl s_server` speaking only TLS 1.0 or 1.1, under a watchdog shell: dropping
/// `_watchdog` closes the shell's stdin, and the shell then kills openssl.
pub(super) struct LegacyBackend {
    pub(super) addr: SocketAddr,
    _watchdog: Child,
    /// The certificate and key files openssl reads.
    _dir: tempfile::TempDir,
}

impl LegacyBackend {
    pub(super) async fn start(
        front: SocketAddr,
        cert: &ServerCert,
        tls: MxTls,
        tasks: &mut JoinSet<()>,
    ) -> std::io::Result<LegacyBackend> {
        let dir = tempfile::tempdir()?;
        let mut leaf_pem = String::new();
        let mut chain_pem = String::new();
        for (i, der) in cert.chain.iter().enumerate() {
            let one = ServerCert {
                chain: vec![der.clone()],
                key_der: Vec::new(),
            }
            .chain_pem();
            if i == 0 {
                leaf_pem = one
            } else {
                chain_pem.push_str(&one)
            }
        }
        let leaf = dir.path().join("cert.pem");
        let key = dir.path().join("key.pem");
        std::fs::write(&leaf, leaf_pem)?;
        std::fs::write(&key, cert.key_pem())?;
        let version = if tls == MxTls::Tls10Only {
            "-tls1"
        } else {
            "-tls1_1"
        };
        // `sh` runs openssl in the background and kills it once its own stdin (a pipe from us)
        // closes: when the MxServer is dropped, and also when the test process dies abruptly,
        // so no TLS 1.0 server outlives its test.
        let mut command = Command::new("/bin/sh");
        command
            .arg("-c")
            .arg(WATCHDOG)
            .arg(OPENSSL)
            .arg("s_server")
            .arg(version)
            .args(["-cipher", "DEFAULT@SECLEVEL=0", "-www", "-accept"])
            .arg(SocketAddr::new(front.ip(), 0).to_string())
            .arg("-cert")
            .arg(&leaf)
            .arg("-key")
            .arg(&key);
        if !chain_pem.is_empty() {
            let chain = dir.path().join("chain.pem");
            std::fs::write(&chain, chain_pem)?;
            command.arg("-cert_chain").arg(chain);
        }
        command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        let mut child = command.spawn()?;
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| std::io::Error::other("openssl s_server has no stdout"))?;
        let mut lines = BufReader::new(stdout).lines();
        // s_server prints `ACCEPT <ip>:<port>` once it listens.
        let addr = tokio::time::timeout(OPENSSL_STARTUP, async {
            while let Some(line) = lines.next_line().await? {
                if let Some(addr) = line
                    .strip_prefix("ACCEPT ")
                    .and_then(|a| a.trim().parse().ok())
                {
                    return Ok(addr);
                }
            }
            Err(std::io::Error::other(
                "openssl s_server exited before listening",
            ))
        })
        .await
        .map_err(|_| {
            std::io::Error::new(std::io::ErrorKind::TimedOut, "openssl s_server start")
        })??;
        // Keep draining its output so it never blocks on a full pipe.
        tasks.spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Ok(LegacyBackend {
            addr,
            _watchdog: child,
            _dir: dir,
        })
    }
}

/// The OpenSSL command-line tool used for TLS 1.0/1.1.
pub(super) const OPENSSL: &str = "/usr/bin/openssl";
/// Runs `$0 "$@"` (openssl) until the shell's stdin closes, then stops it.
const WATCHDOG: &str =
    r#""$0" "$@" </dev/null & pid=$!; cat >/dev/null; kill "$pid" 2>/dev/null; wait"#;
/// How long the `openssl` child may take to start listening.
const OPENSSL_STARTUP: Duration = Duration::from_secs(10);
