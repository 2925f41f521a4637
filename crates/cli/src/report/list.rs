//! `mtasts report list` (being built in this session).

use std::process::ExitCode;

/// Arguments of `mtasts report list`.
#[derive(Debug, clap::Args)]
pub(crate) struct ListArgs {}

/// Runs `mtasts report list`.
pub(crate) fn run(_args: ListArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("mtasts report list is not built yet")
}
