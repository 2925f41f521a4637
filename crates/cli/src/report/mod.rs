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
        let db = ReportDb::open(&url)
            .await
            .with_context(|| format!("opening the reports database {}", redact(&url)))?;
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
        let Some(db) = summary::open_existing(args).await? else {
            return work(None).await;
        };
        let result = work(Some(&db)).await;
        db.close().await;
        result
    })
}

/// The runtime of one command.
fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the runtime")
}

/// A database URL without its password, for messages.
fn redact(url: &str) -> String {
    if let Some((scheme, rest)) = url.split_once("://")
        && let Some((userinfo, host)) = rest.split_once('@')
        && let Some((user, _)) = userinfo.split_once(':')
    {
        return format!("{scheme}://{user}:***@{host}");
    }
    url.to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(redact("postgres://u:pw@h/db"), "postgres://u:***@h/db");
        assert_eq!(redact("sqlite:/x/serve.db"), "sqlite:/x/serve.db");
    }

    #[test]
    fn byte_counts_need_a_byte() {
        assert_eq!(byte_count("64MiB"), Ok(64 << 20));
        assert!(byte_count("0").is_err());
        assert!(byte_count("lots").is_err());
    }
}
