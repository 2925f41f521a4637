//! `mtasts serve` and `mtasts admin` through the binary, as a new user runs them.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn mtasts() -> Command {
    Command::new(env!("CARGO_BIN_EXE_mtasts"))
}

/// A loopback address of its own for this test run.
fn loopback() -> String {
    let n = std::process::id();
    format!("127.{}.{}.{}", 100 + n % 100, (n / 100) % 250 + 1, 7)
}

#[test]
fn first_start_prints_the_admin_token_and_the_dashboard() {
    let dir = tempfile::tempdir().unwrap();
    let ip = loopback();
    let mut child = mtasts()
        .args(["serve", "--zone", "hosted.test", "--public-ip", &ip])
        .args(["--https-listen", &format!("{ip}:0")])
        .args(["--http-listen", &format!("{ip}:0")])
        .args(["--dns-listen", &format!("{ip}:0")])
        .args(["--api-listen", &format!("{ip}:0")])
        .args(["--acme-directory", ""])
        .arg("--data-dir")
        .arg(dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let mut seen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut token = None;
    while Instant::now() < deadline {
        let Some(Ok(line)) = lines.next() else { break };
        if line.trim().starts_with("mtasts_") {
            token = Some(line.trim().to_owned());
        }
        seen.push(line);
        if token.is_some() {
            break;
        }
    }
    let _ = Command::new("kill").arg(child.id().to_string()).status();
    let status = child.wait().unwrap();
    let text = seen.join("\n");
    assert!(token.is_some(), "no token printed:\n{text}");
    assert!(text.contains("dashboard:"), "{text}");
    assert!(text.contains(&format!("http://{ip}:")), "{text}");
    assert!(status.success(), "SIGTERM ends serve cleanly: {status:?}");
    assert!(dir.path().join("serve.db").exists());

    // A second start on the same database prints no new token.
    let again = mtasts()
        .args(["admin", "tenant", "create", "acme"])
        .arg("--data-dir")
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(
        again.status.success(),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
    assert!(String::from_utf8_lossy(&again.stdout).contains("tenant acme created"));
    let token = mtasts()
        .args(["admin", "token", "create", "--tenant", "acme"])
        .arg("--data-dir")
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(
        token.status.success(),
        "{}",
        String::from_utf8_lossy(&token.stderr)
    );
    assert!(
        String::from_utf8_lossy(&token.stdout)
            .trim()
            .starts_with("mtasts_")
    );
    let missing = mtasts()
        .args(["admin", "token", "create", "--tenant", "nobody"])
        .arg("--data-dir")
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(missing.status.code(), Some(2));
}

#[test]
fn serve_without_a_zone_says_what_is_missing() {
    let dir = tempfile::tempdir().unwrap();
    let out = mtasts()
        .arg("serve")
        .arg("--data-dir")
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--zone is required"));
}

#[test]
fn a_zone_too_long_for_its_own_soa_is_refused_before_anything_starts() {
    let dir = tempfile::tempdir().unwrap();
    // 4 labels of 60 plus "test": valid as a name, but `hostmaster.<zone>` exceeds 253.
    let zone = format!("{0}.{0}.{0}.{0}.test", "a".repeat(60));
    let out = mtasts()
        .args(["serve", "--zone", &zone, "--public-ip", "127.0.0.1"])
        .arg("--data-dir")
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("zone (--zone)"), "{stderr}");
}
