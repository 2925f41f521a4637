//! `mtasts report reparse` (being built in this session).

use std::process::ExitCode;

/// Arguments of `mtasts report reparse`.
#[derive(Debug, clap::Args)]
pub(crate) struct ReparseArgs {}

/// Runs `mtasts report reparse`.
pub(crate) fn run(_args: ReparseArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("mtasts report reparse is not built yet")
}
