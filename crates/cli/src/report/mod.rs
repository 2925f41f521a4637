//! `mtasts report`: read SMTP TLS reports (RFC 8460) and DMARC aggregate reports, store them in
//! the serve database, and explain them. The work happens in `mtasts-report`, `mtasts-store`
//! (`reports`) and `mtasts-proto`; this module only parses flags.

use std::process::ExitCode;

use anyhow::Context;
use mtasts_store::reports::ReportDb;

use crate::serve::DatabaseArgs;

mod fetch;
mod import;
mod list;
mod parse;
mod reparse;
mod show;
mod summary;
mod table;

/// Arguments of `mtasts report`.
#[derive(Debug, clap::Args)]
pub(crate) struct ReportArgs {
    #[command(subcommand)]
    command: ReportCommand,
}

#[derive(Debug, clap::Subcommand)]
enum ReportCommand {
    /// Read reports from files, directories, mail messages, mbox, Maildir, gzip, zip or `-`
    /// (standard input) and print them as JSON without storing them (exit 1 when an input
    /// could not be read).
    Parse(parse::ParseArgs),
    /// Store the reports found in files, directories, mbox, Maildir or `-` in the database.
    Import(import::ImportArgs),
    /// Read again every stored raw input and report with this version's parsers.
    Reparse(reparse::ReparseArgs),
    /// Import reports from an IMAP mailbox, marking each message once its reports are stored.
    Fetch(fetch::FetchArgs),
    /// What the stored reports say, per domain: sessions and failures (TLS-RPT), sources and
    /// alignment (DMARC), and whether enforcing is safe.
    Summary(summary::SummaryArgs),
    /// The stored reports, newest first.
    List(list::ListArgs),
    /// One stored report, normalized or raw.
    Show(show::ShowArgs),
}

/// Runs `mtasts report …`.
pub(crate) fn run(args: ReportArgs) -> anyhow::Result<ExitCode> {
    match args.command {
        ReportCommand::Parse(args) => parse::run(args),
        ReportCommand::Import(args) => import::run(args),
        ReportCommand::Reparse(args) => reparse::run(args),
        ReportCommand::Fetch(args) => fetch::run(args),
        ReportCommand::Summary(args) => summary::run(args),
        ReportCommand::List(args) => list::run(args),
        ReportCommand::Show(args) => show::run(args),
    }
}

/// A `--max-*-bytes` value: a byte count with an optional unit (`64MiB`, `1G`; see
/// `mtasts_proto::bytesize`), at least one byte.
fn byte_count(text: &str) -> Result<u64, String> {
    match mtasts_proto::bytesize::parse(text) {
        Ok(0) => Err("a limit of 0 bytes would refuse everything".to_owned()),
        Ok(n) => Ok(n),
        Err(e) => Err(e.to_string()),
    }
}

/// Runs `work` on a runtime of its own with the reports database that `args` names (the serve
/// database), created with its data directory when missing, and closes the database after.
fn with_db<T>(
    args: &DatabaseArgs,
    work: impl AsyncFnOnce(&ReportDb) -> anyhow::Result<T>,
) -> anyhow::Result<T> {
    let config = args.load()?;
    config
        .ensure_database_dir()
        .context("creating the data directory")?;
    let url = config.database_url();
    runtime()?.block_on(async {
        let db = ReportDb::open(&url).await.with_context(|| {
            format!(
                "opening the reports database {}",
                mtasts_store::redacted(&url)
            )
        })?;
        let result = work(&db).await;
        db.close().await;
        result
    })
}

/// Like [`with_db`] for the commands that only read: a SQLite file that does not exist yet is
/// not created (`work` gets `None`; see `summary::open_existing`).
fn with_existing_db<T>(
    args: &DatabaseArgs,
    work: impl AsyncFnOnce(Option<&ReportDb>) -> anyhow::Result<T>,
) -> anyhow::Result<T> {
    runtime()?.block_on(async {
        let Some(db) = open_existing(args).await? else {
            return work(None).await;
        };
        let result = work(Some(&db)).await;
        db.close().await;
        result
    })
}

/// Opens the reports database to read it. A SQLite file that does not exist yet is not
/// created: a line says how to fill it (on standard error), and the answer is `None`.
async fn open_existing(args: &DatabaseArgs) -> anyhow::Result<Option<ReportDb>> {
    let config = args.load()?;
    let url = config.database_url();
    if let Some(path) = sqlite_path(&url)
        && !std::path::Path::new(path).exists()
    {
        eprintln!(
            "No reports stored yet ({path} does not exist): store some with `mtasts report import FILE…` or `mtasts report fetch`."
        );
        return Ok(None);
    }
    let db = ReportDb::open(&url)
        .await
        .with_context(|| "opening the reports database")?;
    Ok(Some(db))
}

/// The file of a `sqlite:` URL (`sqlite:PATH`, `sqlite://PATH`, with or without `?options`).
pub(crate) fn sqlite_path(url: &str) -> Option<&str> {
    let rest = url.trim().strip_prefix("sqlite:")?;
    let rest = rest.strip_prefix("//").unwrap_or(rest);
    let path = rest.split('?').next().unwrap_or(rest);
    (!path.is_empty() && path != ":memory:").then_some(path)
}

/// The runtime of one command.
fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the runtime")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_paths_are_found_in_urls() {
        assert_eq!(
            sqlite_path("sqlite:/var/lib/mtasts/serve.db"),
            Some("/var/lib/mtasts/serve.db")
        );
        assert_eq!(sqlite_path("sqlite:///tmp/x.db"), Some("/tmp/x.db"));
        assert_eq!(sqlite_path("sqlite:x.db?mode=rwc"), Some("x.db"));
        assert_eq!(sqlite_path("sqlite::memory:"), None);
        assert_eq!(sqlite_path("postgres://localhost/test"), None);
    }

    #[test]
    fn byte_counts_need_a_byte() {
        assert_eq!(byte_count("64MiB"), Ok(64 << 20));
        assert!(byte_count("0").is_err());
        assert!(byte_count("lots").is_err());
    }
}
