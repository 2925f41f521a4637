//! `mtasts report parse` (being built in this session).

use std::process::ExitCode;

/// Arguments of `mtasts report parse`.
#[derive(Debug, clap::Args)]
pub(crate) struct ParseArgs {}

/// Runs `mtasts report parse`.
pub(crate) fn run(_args: ParseArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("mtasts report parse is not built yet")
}
