//! Secrets at rest for `mtasts serve`: the keys that seal private keys in the database (from
//! files or the environment), the data directory kept private, resealing at start, and the
//! first admin token written to a private file instead of the log.
//!
//! The sealing itself (format, cipher, which columns) is `mtasts_store::host`'s; the SQLite
//! file modes are set where every SQLite database is opened (`mtasts_store`).

use std::fs::File;
use std::io::{Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use mtasts_store::host::{HostDb, HostDbError, LockGuard, SealError, Sealer, SecretKey};

use crate::config::ServeConfig;
use crate::serve::ServeError;

/// The environment variable holding the current key (64 hex digits) when `secret_key_file` is
/// not set.
pub const SECRET_KEY_ENV: &str = "MTASTS_SECRET_KEY";

/// The environment variable holding previous keys, comma-separated (added to
/// `previous_secret_key_files`).
pub const PREVIOUS_SECRET_KEYS_ENV: &str = "MTASTS_PREVIOUS_SECRET_KEYS";

/// The file in the data directory the first admin token is written to.
pub const ADMIN_TOKEN_FILE: &str = "admin-token";

/// The sealer `config` and the environment (`env`, e.g. `|name| std::env::var(name).ok()`)
/// configure: the current key from `secret_key_file` or else [`SECRET_KEY_ENV`], the previous
/// ones from `previous_secret_key_files` and [`PREVIOUS_SECRET_KEYS_ENV`]. `None` when no current
/// key is configured (previous keys alone are an error: nothing could reseal under them).
pub fn sealer(
    config: &ServeConfig,
    env: impl Fn(&str) -> Option<String>,
) -> Result<Option<Sealer>, ServeError> {
    let current = match &config.secret_key_file {
        Some(path) => Some(key_file(path, "secret_key_file")?),
        None => env(SECRET_KEY_ENV)
            .filter(|text| !text.trim().is_empty())
            .map(|text| key_text(&text, SECRET_KEY_ENV))
            .transpose()?,
    };
    let mut previous = Vec::new();
    for path in &config.previous_secret_key_files {
        previous.push(key_file(path, "previous_secret_key_files")?);
    }
    if let Some(list) = env(PREVIOUS_SECRET_KEYS_ENV) {
        for text in list.split(',').filter(|t| !t.trim().is_empty()) {
            previous.push(key_text(text, PREVIOUS_SECRET_KEYS_ENV)?);
        }
    }
    match current {
        Some(current) => Ok(Some(Sealer::new(&current, &previous))),
        None if previous.is_empty() => Ok(None),
        None => Err(ServeError::Config(format!(
            "previous secret keys are configured but no current one: set secret_key_file \
             (or {SECRET_KEY_ENV}) to the key secrets are sealed under from now on"
        ))),
    }
}

/// Reseals every secret of `db` under its current key (see
/// [`HostDb::reseal_secrets`]) under an advisory lock, so that nodes starting together do not
/// do the work twice, and says what it did. A secret sealed under a key that is not
/// configured stops the start, naming the key and the settings.
pub async fn reseal_at_start(db: &HostDb) -> Result<(), ServeError> {
    let _lock = wait_for_lock(db, "reseal-secrets").await?;
    let resealed = db.reseal_secrets().await.map_err(|e| match e {
        HostDbError::Sealed(SealError::UnknownKey { key_id }) => ServeError::Config(format!(
            "the database holds secrets sealed under secret key {key_id}, which is not \
             configured: set secret_key_file (or {SECRET_KEY_ENV}) to that key, or add it to \
             previous_secret_key_files (or {PREVIOUS_SECRET_KEYS_ENV}) while rotating"
        )),
        other => ServeError::Database(other),
    })?;
    match db.sealer() {
        Some(sealer) => tracing::info!(
            key_id = sealer.key_id(),
            resealed,
            "secrets in the database are sealed under secret key {}",
            sealer.key_id()
        ),
        None => tracing::warn!(
            "certificate private keys and ACME account credentials are stored unencrypted in \
             the database: set secret_key_file (or {SECRET_KEY_ENV}) to a key made by \
             `mtasts admin secret-key new` to seal them"
        ),
    }
    Ok(())
}

/// Makes `dir` private to its owner: created `0700` (with its missing parents) when missing,
/// tightened with a warning when group or others may use it. A directory with the sticky bit
/// (such as `/tmp`) is shared by design and only warned about.
pub fn private_dir(dir: &Path) -> std::io::Result<()> {
    if !dir.exists() {
        return std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir);
    }
    let mode = std::fs::metadata(dir)?.permissions().mode() & 0o7777;
    if mode & 0o077 == 0 {
        return Ok(());
    }
    if mode & 0o1000 != 0 {
        tracing::warn!(
            path = %dir.display(),
            "the data directory {} is shared ({mode:04o}); use a directory of its own",
            dir.display()
        );
        return Ok(());
    }
    let private = mode & !0o077;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(private))?;
    tracing::warn!(
        path = %dir.display(),
        "tightened the permissions of {} from {mode:04o} to {private:04o}: \
         the data directory must be readable by its owner only",
        dir.display()
    );
    Ok(())
}

/// Creates the first admin token with `create` and writes it to [`ADMIN_TOKEN_FILE`] in
/// `data_dir` (created private if missing), a file only its owner can read, which is never
/// overwritten: when one is left from an earlier database the start stops instead, so the new
/// token is not lost. The file is created before the token, so a failure leaves no token that
/// nobody has seen. Returns the token and the file, or `None` when `create` made none.
pub async fn write_admin_token<F>(
    data_dir: &Path,
    create: F,
) -> Result<Option<(String, PathBuf)>, ServeError>
where
    F: AsyncFnOnce() -> Result<Option<String>, ServeError>,
{
    let path = data_dir.join(ADMIN_TOKEN_FILE);
    let file_error = |e: std::io::Error| {
        ServeError::Config(format!(
            "writing the admin token to {}: {e}",
            path.display()
        ))
    };
    private_dir(data_dir).map_err(file_error)?;
    let mut file = match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
    {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            return Err(ServeError::Config(format!(
                "{} is left from an earlier first start (the database now has no admin token) \
                 and is never overwritten: move it away so that a new admin token can be \
                 written there, or create one with `mtasts admin token create`",
                path.display()
            )));
        }
        Err(e) => return Err(file_error(e)),
    };
    let written = async {
        let Some(token) = create().await? else {
            return Ok(None);
        };
        write_token(&mut file, &token).map_err(file_error)?;
        Ok(Some(token))
    }
    .await;
    match written {
        Ok(Some(token)) => Ok(Some((token, path))),
        outcome => {
            drop(file);
            let _ = std::fs::remove_file(&path);
            outcome.map(|_| None)
        }
    }
}

/// Takes the advisory lock `name`, waiting while another node holds it.
pub(crate) async fn wait_for_lock(db: &HostDb, name: &str) -> Result<LockGuard, ServeError> {
    loop {
        if let Some(lock) = db.try_lock(name).await? {
            return Ok(lock);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn write_token(file: &mut File, token: &str) -> std::io::Result<()> {
    file.write_all(token.as_bytes())?;
    file.write_all(b"\n")?;
    file.sync_all()
}

/// The key in the file at `path` (the setting `setting` names it), read bounded.
fn key_file(path: &Path, setting: &str) -> Result<SecretKey, ServeError> {
    let failed = |e: String| ServeError::Config(format!("{setting} {}: {e}", path.display()));
    let file = File::open(path).map_err(|e| failed(e.to_string()))?;
    let mode = file
        .metadata()
        .map_err(|e| failed(e.to_string()))?
        .permissions()
        .mode();
    if mode & 0o077 != 0 {
        tracing::warn!(
            path = %path.display(),
            "the secret key file {} can be read by group or others ({:04o}); chmod 600 it",
            path.display(),
            mode & 0o7777
        );
    }
    let mut text = String::new();
    file.take(MAX_KEY_FILE_BYTES + 1)
        .read_to_string(&mut text)
        .map_err(|e| failed(e.to_string()))?;
    if text.len() as u64 > MAX_KEY_FILE_BYTES {
        return Err(failed("too long for a key file".to_owned()));
    }
    SecretKey::from_hex(&text).map_err(|e| failed(e.to_string()))
}

fn key_text(text: &str, setting: &str) -> Result<SecretKey, ServeError> {
    SecretKey::from_hex(text).map_err(|e| ServeError::Config(format!("{setting}: {e}")))
}

/// A key file holds 64 hex digits and perhaps a newline; anything much longer is not one.
const MAX_KEY_FILE_BYTES: u64 = 1024;

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    fn hex(byte: u8) -> String {
        format!("{byte:02x}").repeat(32)
    }

    fn id(byte: u8) -> String {
        SecretKey::from_hex(&hex(byte)).unwrap().id().to_owned()
    }

    #[test]
    fn keys_come_from_files_or_the_environment() {
        let dir = tempfile::tempdir().unwrap();
        let current = dir.path().join("current.key");
        let old = dir.path().join("old.key");
        std::fs::write(&current, format!("{}\n", hex(1))).unwrap();
        std::fs::write(&old, hex(2)).unwrap();
        let no_env = |_: &str| None;

        assert!(sealer(&ServeConfig::default(), no_env).unwrap().is_none());

        let config = ServeConfig {
            secret_key_file: Some(current.clone()),
            previous_secret_key_files: vec![old.clone()],
            ..ServeConfig::default()
        };
        let from_files = sealer(&config, no_env).unwrap().unwrap();
        assert_eq!(from_files.key_id(), id(1));
        assert_eq!(from_files.previous_key_ids().collect::<Vec<_>>(), [id(2)]);

        let env = |name: &str| match name {
            SECRET_KEY_ENV => Some(hex(3)),
            PREVIOUS_SECRET_KEYS_ENV => Some(format!("{}, {}", hex(4), hex(5))),
            _ => None,
        };
        let from_env = sealer(&ServeConfig::default(), env).unwrap().unwrap();
        assert_eq!(from_env.key_id(), id(3));
        assert_eq!(
            from_env.previous_key_ids().collect::<Vec<_>>(),
            [id(4), id(5)]
        );
        // The file wins over the environment for the current key; previous ones add up.
        let both = sealer(&config, env).unwrap().unwrap();
        assert_eq!(both.key_id(), id(1));
        assert_eq!(both.previous_key_ids().count(), 3);

        // Errors name the setting.
        std::fs::write(&old, "not a key").unwrap();
        let err = sealer(&config, no_env).unwrap_err().to_string();
        assert!(err.contains("previous_secret_key_files"), "{err}");
        std::fs::write(&current, "a".repeat(5000)).unwrap();
        let err = sealer(&config, no_env).unwrap_err().to_string();
        assert!(
            err.contains("secret_key_file") && err.contains("too long"),
            "{err}"
        );
        let only_previous = ServeConfig {
            previous_secret_key_files: vec![current],
            ..ServeConfig::default()
        };
        std::fs::write(&only_previous.previous_secret_key_files[0], hex(1)).unwrap();
        let err = sealer(&only_previous, no_env).unwrap_err().to_string();
        assert!(err.contains("no current one"), "{err}");
        let bad_env = |name: &str| (name == SECRET_KEY_ENV).then(|| "12".to_owned());
        let err = sealer(&ServeConfig::default(), bad_env)
            .unwrap_err()
            .to_string();
        assert!(err.contains(SECRET_KEY_ENV), "{err}");
    }

    #[test]
    fn data_directories_are_created_private_and_tightened() {
        let dir = tempfile::tempdir().unwrap();
        let new = dir.path().join("a/b");
        private_dir(&new).unwrap();
        assert_eq!(mode(&new), 0o700);
        let open = dir.path().join("open");
        std::fs::create_dir(&open).unwrap();
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o755)).unwrap();
        private_dir(&open).unwrap();
        assert_eq!(mode(&open), 0o700);
    }

    #[tokio::test]
    async fn the_admin_token_goes_to_a_private_file_never_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let (token, path) = write_admin_token(&data, async || Ok(Some("mtasts_abc".to_owned())))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(token, "mtasts_abc");
        assert_eq!(path, data.join(ADMIN_TOKEN_FILE));
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "mtasts_abc\n");
        assert_eq!(mode(&path), 0o600);
        assert_eq!(mode(&data), 0o700);

        // Present: never overwritten, and no token is created.
        let mut created = false;
        let err = write_admin_token(&data, async || {
            created = true;
            Ok(Some("mtasts_new".to_owned()))
        })
        .await
        .unwrap_err();
        assert!(err.to_string().contains("never overwritten"), "{err}");
        assert!(!created);
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "mtasts_abc\n");

        // No token made (another node made it) or a failure: no file left behind.
        std::fs::remove_file(&path).unwrap();
        assert!(
            write_admin_token(&data, async || Ok(None))
                .await
                .unwrap()
                .is_none()
        );
        assert!(!path.exists());
        assert!(
            write_admin_token(&data, async || Err(ServeError::Config("no".into())))
                .await
                .is_err()
        );
        assert!(!path.exists());
    }
}
