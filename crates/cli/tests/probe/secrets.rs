//! Item 1 of issue 10, secrets at rest: a private data directory and database whatever the
//! umask, looser modes tightened at start, the first admin token in a private file instead of
//! the journal, and secrets sealed under a configured key (with rotation).

use std::time::Duration;

use super::harness::{self, Site, mode};
use super::http;

const SEALED: &str = "mtasts-sealed:v1:";

#[test]
fn the_data_directory_and_the_database_are_private_under_umask_022() {
    let mut site = Site::new("");
    let serve = site.start();
    let data = site.data_dir();
    assert_eq!(mode(&data), 0o700, "{}", data.display());
    // WAL mode: the -wal and -shm files exist while the server runs.
    for name in ["serve.db", "serve.db-wal", "serve.db-shm"] {
        let path = data.join(name);
        assert!(
            serve.wait_until(Duration::from_secs(5), || path.exists()),
            "{} missing",
            path.display()
        );
        assert_eq!(mode(&path), 0o600, "{}", path.display());
    }
    assert!(serve.stop());
}

#[test]
fn looser_modes_of_an_existing_database_are_tightened_with_a_warning() {
    use std::os::unix::fs::PermissionsExt;
    let mut site = Site::new("");
    assert!(site.start().stop());
    let data = site.data_dir();
    let loose = |path: &std::path::Path, bits: u32| {
        if path.exists() {
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(bits)).unwrap();
        }
    };
    loose(&data, 0o755);
    for name in ["serve.db", "serve.db-wal", "serve.db-shm"] {
        loose(&data.join(name), 0o644);
    }
    let serve = site.start();
    assert_eq!(mode(&data), 0o700);
    assert_eq!(mode(&site.database()), 0o600);
    let log = serve.stderr();
    assert!(log.contains("tightened"), "{}", serve.output());
    assert!(
        log.contains(&site.database().display().to_string()),
        "{}",
        serve.output()
    );
    assert!(serve.stop());
}

#[test]
fn the_first_admin_token_is_written_to_a_private_file_and_never_printed() {
    let mut site = Site::new("");
    let serve = site.start();
    let file = site.data_dir().join("admin-token");
    assert!(file.exists(), "no admin-token file:\n{}", serve.output());
    assert_eq!(mode(&file), 0o600);
    let token = std::fs::read_to_string(&file).unwrap().trim().to_owned();
    assert!(token.starts_with("mtasts_"), "{token}");
    let output = serve.output();
    assert!(
        output.contains(&format!(
            "First start: admin token written to {}",
            file.display()
        )),
        "{output}"
    );
    assert!(!output.contains(&token), "the token was printed:\n{output}");
    let me = http::api(serve.api, "GET", "/api/v1/me", Some(&token), None);
    assert_eq!(me.json()["role"], "admin", "{}", me.text());
    assert!(serve.stop());

    // A second start neither prints nor rewrites it.
    let serve = site.start();
    assert!(
        !serve.output().contains("First start"),
        "{}",
        serve.output()
    );
    assert_eq!(std::fs::read_to_string(&file).unwrap().trim(), token);
    assert!(serve.stop());
}

/// `mtasts admin secret-key new`: a fresh key of 64 hex characters.
fn new_key(site: &Site) -> String {
    let (code, out, err) = harness::admin(site, &["secret-key", "new"]);
    assert_eq!(code, Some(0), "{err}");
    let key = out.trim().to_owned();
    assert_eq!(key.len(), 64, "{out}");
    assert!(key.bytes().all(|b| b.is_ascii_hexdigit()), "{out}");
    key
}

#[test]
fn secrets_are_sealed_under_the_configured_key_and_rotate() {
    use std::os::unix::fs::PermissionsExt;
    let mut site = Site::new("");
    assert!(site.start().stop());
    // ACME is off here, so plant what it would have stored: account credentials, in plaintext
    // as a database written before issue 10 holds them.
    let db = site.database();
    let plain = r#"{"id":"https://acme.probe.test/acct/1","key_pkcs8":"PROBE-ACCOUNT-SECRET"}"#;
    harness::sqlite(
        &db,
        &format!(
            "INSERT INTO host_acme_accounts (directory_url, credentials_json) \
             VALUES ('https://acme.probe.test/dir', '{plain}') RETURNING directory_url"
        ),
    );
    let stored = || {
        harness::sqlite(
            &db,
            "SELECT credentials_json FROM host_acme_accounts WHERE directory_url = 'https://acme.probe.test/dir'",
        )
        .pop()
        .unwrap()
    };
    assert_eq!(stored(), plain);

    let first = new_key(&site);
    let second = new_key(&site);
    assert_ne!(first, second);
    let write_key = |name: &str, key: &str| {
        let path = site.path(name);
        // Surrounding whitespace is ignored.
        std::fs::write(&path, format!("  {key}\n")).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        path
    };
    let first_file = write_key("key-1", &first);
    let second_file = write_key("key-2", &second);

    // With a key, the plaintext row is sealed at start.
    site.set_extra(&format!("secret_key_file = \"{}\"", first_file.display()));
    assert!(site.start().stop());
    let sealed = stored();
    assert!(sealed.starts_with(SEALED), "{sealed}");
    assert!(!sealed.contains("PROBE-ACCOUNT-SECRET"), "{sealed}");

    // Without the key, serve refuses to start and names the setting to configure.
    site.set_extra("");
    let refused = site
        .try_start()
        .err()
        .expect("serve started without its key");
    assert!(refused.contains("secret_key_file"), "{refused}");

    // Rotation: the new key current, the old one previous; rows are resealed under the new.
    site.set_extra(&format!(
        "secret_key_file = \"{}\"\nprevious_secret_key_files = [\"{}\"]",
        second_file.display(),
        first_file.display()
    ));
    assert!(site.start().stop());
    let resealed = stored();
    assert!(resealed.starts_with(SEALED), "{resealed}");
    assert_ne!(resealed, sealed);
    // The old key is no longer needed.
    site.set_extra(&format!("secret_key_file = \"{}\"", second_file.display()));
    let serve = site.start();
    assert!(serve.stop());
    // The same key from the environment instead of a file.
    site.set_extra("");
    site.set_env(&[("MTASTS_SECRET_KEY", &second)]);
    let serve = site.start();
    assert!(serve.stop());
    assert!(stored().starts_with(SEALED));
}
