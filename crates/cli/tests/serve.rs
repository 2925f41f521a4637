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

/// Runs `mtasts ARGS`, reads its output until the admin token line, stops it with SIGTERM,
/// and returns the token (if any), what it printed, and whether it exited cleanly.
fn first_start(args: &[String]) -> (Option<String>, String, bool) {
    let mut child = mtasts()
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    let mut seen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut token = None;
    // The token, when there is one, follows the listener lines at once; after the dashboard
    // line, a short silence means there is none.
    let mut wait = Duration::from_secs(30);
    while token.is_none() && Instant::now() < deadline {
        let Ok(line) = rx.recv_timeout(wait) else {
            break;
        };
        if line.trim().starts_with("mtasts_") {
            token = Some(line.trim().to_owned());
        }
        if line.contains("dashboard:") {
            wait = Duration::from_secs(2);
        }
        seen.push(line);
    }
    let _ = Command::new("kill").arg(child.id().to_string()).status();
    let status = child.wait().unwrap();
    (token, seen.join("\n"), status.success())
}

#[test]
fn a_configuration_file_is_enough() {
    let dir = tempfile::tempdir().unwrap();
    let ip = loopback().replace(".7", ".8");
    let file = dir.path().join("serve.toml");
    std::fs::write(
        &file,
        format!(
            "zone = \"hosted.test\"\npublic_ip = [\"{ip}\"]\nhttps_listen = [\"{ip}:0\"]\n\
             http_listen = [\"{ip}:0\"]\ndns_listen = [\"{ip}:0\"]\napi_listen = \"{ip}:0\"\n\
             acme_directory = \"\"\ndata_dir = \"{}\"\n",
            dir.path().display()
        ),
    )
    .unwrap();
    let (token, text, clean) = first_start(&[
        "serve".into(),
        "--config".into(),
        file.display().to_string(),
    ]);
    assert!(token.is_some(), "no token printed:\n{text}");
    assert!(text.contains("zone hosted.test"), "{text}");
    assert!(clean);
}

#[test]
fn first_start_prints_the_admin_token_and_the_dashboard() {
    let dir = tempfile::tempdir().unwrap();
    let ip = loopback();
    let mut args: Vec<String> = ["serve", "--zone", "hosted.test", "--public-ip", &ip]
        .iter()
        .map(|s| s.to_string())
        .collect();
    for flag in [
        "--https-listen",
        "--http-listen",
        "--dns-listen",
        "--api-listen",
    ] {
        args.push(flag.to_owned());
        args.push(format!("{ip}:0"));
    }
    args.extend(["--acme-directory".to_owned(), String::new()]);
    args.extend(["--data-dir".to_owned(), dir.path().display().to_string()]);
    let (token, text, clean) = first_start(&args);
    assert!(token.is_some(), "no token printed:\n{text}");
    assert!(text.contains("dashboard:"), "{text}");
    assert!(text.contains(&format!("http://{ip}:")), "{text}");
    assert!(clean, "SIGTERM ends serve cleanly");
    assert!(dir.path().join("serve.db").exists());

    // A second start on the same database prints no new token.
    let (second, text, _) = first_start(&args);
    assert!(second.is_none(), "{text}");
    assert!(text.contains("dashboard:"), "{text}");

    // Tenants and their tokens from the command line.
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

    // `mtasts admin` follows the API's rules (issue 8): the role spelling the API refuses and
    // a tenant name it refuses are refused here too, and nothing is created.
    let admin = |args: &[&str]| {
        mtasts()
            .arg("admin")
            .args(args)
            .arg("--data-dir")
            .arg(dir.path())
            .output()
            .unwrap()
    };
    let hyphenated = admin(&["token", "create", "--tenant", "acme", "--role", "read-only"]);
    assert_eq!(hyphenated.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&hyphenated.stderr).contains("use owner or readonly"),
        "{}",
        String::from_utf8_lossy(&hyphenated.stderr)
    );
    assert!(hyphenated.stdout.is_empty());
    let readonly = admin(&["token", "create", "--tenant", "acme", "--role", "readonly"]);
    assert!(readonly.status.success());
    let bad_name = admin(&["tenant", "create", "Acme_Corp"]);
    assert_eq!(bad_name.status.code(), Some(2));
    let list = admin(&["tenant", "list"]);
    assert!(list.status.success());
    let list = String::from_utf8_lossy(&list.stdout);
    assert!(list.contains("\tacme\n"), "{list}");
    assert!(!list.contains("Acme_Corp"), "{list}");
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
