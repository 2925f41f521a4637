//! A real `mtasts serve` process for the tests that talk to it from outside (included as
//! `mod serve_process` by serve_mail.rs and serve_walkthrough.rs): ACME off, every listener
//! on a free port of one loopback address, its addresses read from its start-up lines.

// Each test binary uses only some of these.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Where a started serve listens.
pub(crate) struct Addrs {
    /// The first SMTP intake listener.
    pub(crate) smtp: SocketAddr,
    /// The API and dashboard listener.
    pub(crate) api: SocketAddr,
}

/// Starts `mtasts serve` for `zone` with its data in `data_dir` and every listener on a free
/// port of `ip`, and returns it with its addresses. Stop it with SIGTERM (`kill PID`) or
/// SIGKILL ([`Child::kill`]).
pub(crate) fn start(zone: &str, ip: &str, data_dir: &Path) -> (Child, Addrs) {
    // Samples from 2022 must outlive the default retention of 400 days.
    let config = data_dir.join("serve.toml");
    std::fs::create_dir_all(data_dir).unwrap();
    std::fs::write(&config, "report_retention_days = 36500\n").unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_mtasts"))
        .args(["serve", "--zone", zone, "--public-ip", ip])
        .arg("--config")
        .arg(&config)
        .args(["--acme-directory", ""])
        .arg("--data-dir")
        .arg(data_dir)
        .args(["--password-iterations", "1000"])
        .args(
            [
                "--https-listen",
                "--http-listen",
                "--dns-listen",
                "--api-listen",
                "--smtp-listen",
            ]
            .iter()
            .flat_map(|flag| [flag.to_string(), format!("{ip}:0")]),
        )
        .env_remove("MTASTS_SERVE_CONFIG")
        .env_remove("MTASTS_DATABASE")
        .env_remove("MTASTS_DATA_DIR")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Serve's output is read to its end on a thread: a closed pipe would fail its later prints.
    let stdout = BufReader::new(child.stdout.take().unwrap());
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in stdout.lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut smtp = None;
    while let Ok(line) = rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
        if let Some(list) = line.split("report mail (SMTP):").nth(1) {
            let first = list
                .trim()
                .trim_start_matches('[')
                .trim_end_matches(']')
                .split(',')
                .next()
                .unwrap()
                .trim();
            smtp = Some(first.parse().unwrap_or_else(|e| panic!("{line}: {e}")));
        }
        // The dashboard line comes after the listeners'.
        if let Some(url) = line.split("dashboard:").nth(1) {
            let api = url
                .trim()
                .trim_start_matches("http://")
                .trim_end_matches('/')
                .parse()
                .unwrap_or_else(|e| panic!("{line}: {e}"));
            let smtp = smtp.unwrap_or_else(|| panic!("serve printed no SMTP address"));
            return (child, Addrs { smtp, api });
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("serve printed no dashboard address");
}
