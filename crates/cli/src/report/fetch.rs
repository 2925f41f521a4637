//! `mtasts report fetch`: import the reports in an IMAP mailbox into the reports database,
//! marking each message once stored (`mtasts_report::imap`), once or, with `--watch`, as mail
//! arrives until SIGTERM or ctrl-c. This module reads flags, the password and the trust roots.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use mtasts_net::trust::TrustConfig;
use mtasts_proto::imap_url::ImapUrl;
use mtasts_report::imap::{self, Counts, FetchConfig, Processed};
use mtasts_report::intake::Intake;
use mtasts_report::{DEFAULT_MAX_REPORT_BYTES, Limits};
use tokio_util::sync::CancellationToken;

use crate::serve::DatabaseArgs;

/// The variable holding the password when no `--password-file` is given.
const PASSWORD_ENV: &str = "MTASTS_IMAP_PASSWORD";
/// The largest password file read.
const PASSWORD_FILE_MAX_BYTES: u64 = 4096;

/// Arguments of `mtasts report fetch`.
#[derive(Debug, clap::Args)]
pub(crate) struct FetchArgs {
    /// The mailbox: imaps://USER@HOST/MAILBOX, or imaps://USER@HOST:PORT/MAILBOX (TLS from the
    /// start, port 993 by default), or imap://… (STARTTLS, required; port 143). The password is
    /// never part of it.
    #[arg(long, value_name = "URL", value_parser = parse_url)]
    imap: Box<ImapUrl>,
    /// A file whose first line is the password. Without it, the MTASTS_IMAP_PASSWORD
    /// environment variable is used.
    #[arg(long, value_name = "FILE")]
    password_file: Option<PathBuf>,
    /// What happens to a message once its reports are stored: flag (set the keyword
    /// $MtastsImported; messages with it are skipped), move:FOLDER, or delete.
    #[arg(long, value_name = "HOW", default_value = "flag", value_parser = parse_processed)]
    processed: Processed,
    /// The largest message fetched. A larger one is not fetched: it is recorded as a too-large
    /// error and marked like the others. A byte count with an optional unit (64M, 64MiB).
    #[arg(long, value_name = "N", default_value = "64MiB", value_parser = super::byte_count)]
    max_message_bytes: u64,
    /// The most bytes one report in a message may inflate to (gzip, zip).
    #[arg(long, value_name = "N", default_value_t = DEFAULT_MAX_REPORT_BYTES, value_parser = super::byte_count)]
    max_report_bytes: u64,
    /// Stay connected: import what arrives (IMAP IDLE), reconnect when the connection drops,
    /// stop on SIGTERM or ctrl-c.
    #[arg(long)]
    watch: bool,
    /// Seconds allowed for each IMAP step (connecting, each command; fetching a batch of
    /// messages gets more time for its size).
    #[arg(long, value_name = "SECONDS", default_value_t = 60.0, value_parser = parse_seconds)]
    timeout: f64,
    /// Also trust the CA certificates in this PEM file (repeatable). SSL_CERT_FILE is honoured too.
    #[arg(long = "ca-file", value_name = "PEM")]
    ca_files: Vec<PathBuf>,
    /// Trust only --ca-file / SSL_CERT_FILE roots, not the built-in Mozilla roots.
    #[arg(long)]
    no_builtin_roots: bool,
    #[command(flatten)]
    db: DatabaseArgs,
}

/// Runs `mtasts report fetch`: exit 0 when every message was read, 1 when some part of one
/// could not be (it is stored as an error), 2 when fetching stopped (the error is printed
/// after the counts of what was done).
pub(crate) fn run(args: FetchArgs) -> anyhow::Result<ExitCode> {
    let FetchArgs {
        imap: url,
        password_file,
        processed,
        max_message_bytes,
        max_report_bytes,
        watch,
        timeout,
        ca_files,
        no_builtin_roots,
        db,
    } = args;
    let password = password(password_file.as_deref())?;
    let mut ca_files = ca_files;
    ca_files.extend(crate::netargs::ssl_cert_file());
    let roots = TrustConfig {
        builtin_roots: !no_builtin_roots,
        ca_files,
    }
    .root_store()
    .context("loading trust roots")?;
    let mut config = FetchConfig::new(*url, password, roots);
    config.processed = processed;
    config.max_message_bytes = max_message_bytes;
    config.timeout = Duration::from_secs_f64(timeout);
    let mut limits = Limits::with_max_report_bytes(max_report_bytes);
    limits.max_input_bytes = limits.max_input_bytes.max(max_message_bytes);
    super::with_db(&db, async |db| {
        let intake = Intake::new(db.clone(), limits);
        let mut counts = Counts::default();
        let result = if watch {
            let shutdown = CancellationToken::new();
            crate::signals::install(shutdown.clone(), None)?;
            imap::watch(&config, &intake, &mut counts, shutdown.cancelled_owned()).await
        } else {
            imap::fetch(&config, &intake, &mut counts).await
        };
        print_counts(&counts);
        result.with_context(|| format!("fetching from {}", config.url))?;
        Ok(if counts.errors.is_empty() {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(1)
        })
    })
}

/// The errors (`source: code: message`), then the line of counts.
fn print_counts(counts: &Counts) {
    for error in &counts.errors {
        println!(
            "{}: {}: {}",
            error.source,
            error.code.as_str(),
            error.message
        );
    }
    // The same words as `import` (`N new, N duplicate, N error`), for scripts.
    println!(
        "{} messages, {} new, {} duplicate, {} error",
        counts.messages,
        counts.new,
        counts.duplicate,
        counts.errors.len(),
    );
}

/// The password: the first line of `file`, else `MTASTS_IMAP_PASSWORD`.
fn password(file: Option<&Path>) -> anyhow::Result<String> {
    let password = match file {
        Some(path) => {
            let mut text = String::new();
            std::fs::File::open(path)
                .with_context(|| format!("reading the password file {}", path.display()))?
                .take(PASSWORD_FILE_MAX_BYTES)
                .read_to_string(&mut text)
                .with_context(|| format!("reading the password file {}", path.display()))?;
            text.lines().next().unwrap_or("").to_owned()
        }
        None => std::env::var(PASSWORD_ENV).map_err(|_| {
            anyhow::anyhow!("no password: give --password-file FILE or set {PASSWORD_ENV}")
        })?,
    };
    anyhow::ensure!(!password.is_empty(), "the password is empty");
    Ok(password)
}

fn parse_url(text: &str) -> Result<Box<ImapUrl>, String> {
    ImapUrl::parse(text)
        .map(Box::new)
        .map_err(|e| e.to_string())
}

fn parse_processed(text: &str) -> Result<Processed, String> {
    text.parse()
}

fn parse_seconds(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(v) if v > 0.0 && v <= 3600.0 => Ok(v),
        _ => Err(format!(
            "{text:?} is not a number of seconds between 0 and 3600"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_password_is_the_first_line_of_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pw");
        std::fs::write(&path, "s3cret with spaces\r\nsecond line\n").unwrap();
        assert_eq!(password(Some(&path)).unwrap(), "s3cret with spaces");
        std::fs::write(&path, "\n").unwrap();
        assert!(password(Some(&path)).is_err());
        let missing = dir.path().join("missing");
        let err = password(Some(&missing)).unwrap_err();
        assert!(format!("{err:#}").contains("password file"), "{err:#}");
    }

    #[test]
    fn processed_modes() {
        assert_eq!(parse_processed("flag"), Ok(Processed::Flag));
        assert_eq!(parse_processed("delete"), Ok(Processed::Delete));
        assert_eq!(
            parse_processed("move:Reports.Done"),
            Ok(Processed::Move("Reports.Done".into()))
        );
        assert!(parse_processed("move:").is_err());
        assert!(parse_processed("archive").is_err());
    }
}
