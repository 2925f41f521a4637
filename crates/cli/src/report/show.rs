//! `mtasts report show` (being built in this session).

use std::process::ExitCode;

/// Arguments of `mtasts report show`.
#[derive(Debug, clap::Args)]
pub(crate) struct ShowArgs {}

/// Runs `mtasts report show`.
pub(crate) fn run(_args: ShowArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("mtasts report show is not built yet")
}
