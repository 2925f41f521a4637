//! `mtasts serve` and `mtasts admin` through the binary, as a new user runs them.

use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use mtasts_store::host::{HostDb, HostDbError, SealError, Sealer, SecretKey};

fn mtasts() -> Command {
    Command::new(env!("CARGO_BIN_EXE_mtasts"))
}

/// A loopback address of its own for this test run.
fn loopback() -> String {
    let n = std::process::id();
    format!("127.{}.{}.{}", 100 + n % 100, (n / 100) % 250 + 1, 7)
}

/// Runs `mtasts ARGS`, reads its output until the first-start line, stops it with SIGTERM,
/// and returns the admin token read from the file that line names (if any), what it printed,
/// and whether it exited cleanly. The token itself must never be printed.
fn first_start(args: &[String]) -> (Option<String>, String, bool) {
    first_start_with(args, &[])
}

/// [`first_start`] with extra environment variables.
fn first_start_with(args: &[String], env: &[(&str, &str)]) -> (Option<String>, String, bool) {
    // Under the usual umask 022, whatever this test runs under: the modes must not depend on it.
    let mut child = Command::new("sh")
        .args(["-c", "umask 022 && exec \"$0\" \"$@\""])
        .arg(env!("CARGO_BIN_EXE_mtasts"))
        .args(args)
        .envs(env.iter().copied())
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
    let mut token_file = None;
    // The first-start line, when there is one, follows the listener lines at once; after the
    // dashboard line, a short silence means there is none.
    let mut wait = Duration::from_secs(30);
    while token_file.is_none() && Instant::now() < deadline {
        let Ok(line) = rx.recv_timeout(wait) else {
            break;
        };
        if let Some(path) = line.strip_prefix("First start: admin token written to ") {
            token_file = Some(std::path::PathBuf::from(path.trim()));
        }
        if line.contains("dashboard:") {
            wait = Duration::from_secs(2);
        }
        seen.push(line);
    }
    let _ = Command::new("kill").arg(child.id().to_string()).status();
    let status = child.wait().unwrap();
    let text = seen.join("\n");
    let token = token_file.map(|path| {
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{}", path.display());
        let token = std::fs::read_to_string(&path).unwrap().trim().to_owned();
        assert!(token.starts_with("mtasts_"), "{token}");
        assert!(!text.contains(&token), "the token was printed:\n{text}");
        token
    });
    (token, text, status.success())
}

/// `mtasts serve` on `ip` (every listener on a free port), ACME off, data in `data_dir`.
fn serve_args(ip: &str, data_dir: &std::path::Path) -> Vec<String> {
    let mut args: Vec<String> = ["serve", "--zone", "hosted.test", "--public-ip", ip]
        .iter()
        .map(|s| s.to_string())
        .collect();
    for flag in [
        "--https-listen",
        "--http-listen",
        "--dns-listen",
        "--api-listen",
        "--smtp-listen",
    ] {
        args.push(flag.to_owned());
        args.push(format!("{ip}:0"));
    }
    args.extend(["--acme-directory".to_owned(), String::new()]);
    args.extend(["--data-dir".to_owned(), data_dir.display().to_string()]);
    args
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
             smtp_listen = [\"{ip}:0\"]\nacme_directory = \"\"\ndata_dir = \"{}\"\n",
            dir.path().display()
        ),
    )
    .unwrap();
    let (token, text, clean) = first_start(&[
        "serve".into(),
        "--config".into(),
        file.display().to_string(),
    ]);
    assert!(token.is_some(), "no token file named:\n{text}");
    assert!(text.contains("zone hosted.test"), "{text}");
    assert!(clean);
}

#[test]
fn first_start_writes_the_admin_token_to_a_private_file_and_prints_the_dashboard() {
    let dir = tempfile::tempdir().unwrap();
    // Readable by everyone, as `mkdir` under the usual umask makes it: serve tightens it.
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let ip = loopback();
    let args = serve_args(&ip, dir.path());
    let (token, text, clean) = first_start(&args);
    assert!(token.is_some(), "no token file named:\n{text}");
    let file = dir.path().join("admin-token");
    assert!(
        text.contains(&format!(
            "First start: admin token written to {}",
            file.display()
        )),
        "{text}"
    );
    assert!(text.contains("dashboard:"), "{text}");
    assert!(text.contains(&format!("http://{ip}:")), "{text}");
    assert!(clean, "SIGTERM ends serve cleanly");
    // The data directory was tightened and the database is its owner's alone, whatever the
    // umask (a clean stop removes -wal and -shm; crates/store/tests checks them while open).
    for (path, expected) in [
        (dir.path().to_path_buf(), 0o700),
        (dir.path().join("serve.db"), 0o600),
        (dir.path().join("serve.db-wal"), 0o600),
        (dir.path().join("serve.db-shm"), 0o600),
    ] {
        let Ok(meta) = std::fs::metadata(&path) else {
            assert!(path.to_string_lossy().contains("db-"), "{}", path.display());
            continue;
        };
        let mode = meta.permissions().mode() & 0o777;
        assert_eq!(mode, expected, "{}", path.display());
    }

    // A second start on the same database makes no new token and leaves the file alone.
    let (second, text, _) = first_start(&args);
    assert!(second.is_none(), "{text}");
    assert!(text.contains("dashboard:"), "{text}");
    assert_eq!(
        std::fs::read_to_string(&file).unwrap().trim(),
        token.unwrap()
    );

    // A database made readable by others (a restore, a careless copy) is tightened on the next
    // open, with a warning naming it.
    let db = dir.path().join("serve.db");
    std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o644)).unwrap();
    let listed = mtasts()
        .args(["admin", "tenant", "list"])
        .arg("--data-dir")
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(listed.status.success());
    let stderr = String::from_utf8_lossy(&listed.stderr);
    assert!(
        stderr.contains("tightened") && stderr.contains(&db.display().to_string()),
        "{stderr}"
    );
    let mode = std::fs::metadata(&db).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);

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

/// `mtasts admin token`: create with an expiry, list (one line per token, no secrets),
/// revoke by id; the same rules as the API.
#[test]
fn admin_tokens_are_listed_and_revoked() {
    let dir = tempfile::tempdir().unwrap();
    let admin = |args: &[&str]| {
        let out = mtasts()
            .arg("admin")
            .args(args)
            .arg("--data-dir")
            .arg(dir.path())
            .output()
            .unwrap();
        let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        (out.status.code(), text(&out.stdout), text(&out.stderr))
    };
    assert_eq!(admin(&["tenant", "create", "acme"]).0, Some(0));
    assert_eq!(admin(&["tenant", "create", "other"]).0, Some(0));
    let (code, ci, err) = admin(&[
        "token",
        "create",
        "--tenant",
        "acme",
        "--label",
        "ci deploy",
        "--expires-in-days",
        "30",
    ]);
    assert_eq!(code, Some(0), "{err}");
    let ci = ci.trim().to_owned();
    assert!(ci.starts_with("mtasts_"), "{ci}");
    let (code, root, err) = admin(&["token", "create", "--label", "root"]);
    assert_eq!(code, Some(0), "{err}");
    let (code, _, _) = admin(&["token", "create", "--tenant", "other", "--role", "readonly"]);
    assert_eq!(code, Some(0));
    for bad in ["0", "3651", "-3"] {
        let flag = format!("--expires-in-days={bad}");
        let (code, out, err) = admin(&["token", "create", "--tenant", "acme", &flag]);
        assert_eq!(code, Some(2), "{bad}: {out}");
        assert!(err.contains("--expires-in-days"), "{bad}: {err}");
    }

    let (code, list, err) = admin(&["token", "list"]);
    assert_eq!(code, Some(0), "{err}");
    let lines: Vec<Vec<&str>> = list.lines().map(|l| l.split('\t').collect()).collect();
    assert_eq!(lines.len(), 3, "{list}");
    for line in &lines {
        assert_eq!(
            line.len(),
            7,
            "id, tenant, role, label, created, expires, last used: {line:?}"
        );
        assert!(line[4].ends_with('Z'), "{line:?}");
        assert_eq!(line[6], "-", "never used: {line:?}");
    }
    let ci_line = lines.iter().find(|l| l[3] == "ci deploy").unwrap();
    assert_eq!(&ci_line[1..3], ["acme", "owner"]);
    assert!(
        ci_line[5].ends_with('Z') && ci_line[5] > ci_line[4],
        "{ci_line:?}"
    );
    let root_line = lines.iter().find(|l| l[3] == "root").unwrap();
    assert_eq!(
        (root_line[1], root_line[2], root_line[5]),
        ("-", "admin", "-")
    );
    assert!(
        !list.contains(&ci) && !list.contains(root.trim()),
        "no secrets: {list}"
    );

    let (code, acme, _) = admin(&["token", "list", "--tenant", "acme"]);
    assert_eq!(code, Some(0));
    assert_eq!(acme.lines().count(), 1, "{acme}");
    let (code, _, err) = admin(&["token", "list", "--tenant", "nobody"]);
    assert_eq!(code, Some(2));
    assert!(err.contains("no tenant named"), "{err}");

    let id = ci_line[0].to_owned();
    let (code, out, err) = admin(&["token", "revoke", &id]);
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains(&format!("token {id} revoked")), "{out}");
    let (_, list, _) = admin(&["token", "list"]);
    assert_eq!(list.lines().count(), 2, "{list}");
    assert!(!list.contains("ci deploy"), "{list}");
    let (code, _, err) = admin(&["token", "revoke", &id]);
    assert_eq!(code, Some(2));
    assert!(err.contains(&format!("no token with id {id}")), "{err}");
}

#[test]
fn a_secret_key_seals_and_a_missing_one_stops_serve() {
    let dir = tempfile::tempdir().unwrap();
    let new = mtasts()
        .args(["admin", "secret-key", "new"])
        .output()
        .unwrap();
    assert!(new.status.success());
    let key = String::from_utf8(new.stdout).unwrap();
    let key = key.trim();
    assert_eq!(key.len(), 64, "{key}");
    assert!(key.bytes().all(|b| b.is_ascii_hexdigit()), "{key}");
    let other = mtasts()
        .args(["admin", "secret-key", "new"])
        .output()
        .unwrap();
    assert_ne!(String::from_utf8_lossy(&other.stdout).trim(), key);

    let ip = loopback().replace(".7", ".9");
    let args = serve_args(&ip, dir.path());
    // A database that holds a secret in plaintext, as before a key was configured.
    let (token, text, clean) = first_start(&args);
    assert!(token.is_some() && clean, "{text}");
    let database = format!("sqlite:{}", dir.path().join("serve.db").display());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let account = "{\"key_pkcs8\":\"secret\"}";
    runtime.block_on(async {
        let db = HostDb::open(&database).await.unwrap();
        db.put_acme_account("https://acme.test/dir", account)
            .await
            .unwrap();
        db.close().await;
    });
    // The first start with a key seals it.
    let (_, text, clean) = first_start_with(&args, &[("MTASTS_SECRET_KEY", key)]);
    assert!(clean && text.contains("dashboard:"), "{text}");
    let key = SecretKey::from_hex(key).unwrap();
    let key_id = key.id().to_owned();
    runtime.block_on(async {
        let db = HostDb::open(&database).await.unwrap();
        match db.acme_account("https://acme.test/dir").await {
            Err(HostDbError::Sealed(SealError::UnknownKey { key_id: id })) => {
                assert_eq!(id, key_id)
            }
            other => panic!("not sealed: {other:?}"),
        }
        let db = db.with_secret_keys(Sealer::new(&key, &[]));
        assert_eq!(
            db.acme_account("https://acme.test/dir").await.unwrap(),
            Some(account.to_owned())
        );
        db.close().await;
    });
    // Without the key, serve refuses to start and names the key and the setting.
    let out = mtasts().args(&args).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(&key_id), "{stderr}");
    assert!(stderr.contains("secret_key_file"), "{stderr}");
    // With it, in a key file, serve starts.
    let key_file = dir.path().join("secret.key");
    std::fs::write(&key_file, format!("{}\n", key.to_hex())).unwrap();
    let config = dir.path().join("serve.toml");
    std::fs::write(
        &config,
        format!("secret_key_file = \"{}\"\n", key_file.display()),
    )
    .unwrap();
    let mut with_file = args.clone();
    with_file.extend(["--config".to_owned(), config.display().to_string()]);
    let (_, text, clean) = first_start(&with_file);
    assert!(clean && text.contains("dashboard:"), "{text}");
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
