//! `mtasts report`: read SMTP TLS reports (RFC 8460) and DMARC aggregate reports, store them in
//! the serve database, and explain them. The work happens in `mtasts-report`, `mtasts-store`
//! (`reports`) and `mtasts-proto`; this module only parses flags.

use std::process::ExitCode;

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
