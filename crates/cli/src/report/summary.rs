//! `mtasts report summary` (being built in this session).

use std::process::ExitCode;

/// Arguments of `mtasts report summary`.
#[derive(Debug, clap::Args)]
pub(crate) struct SummaryArgs {}

/// Runs `mtasts report summary`.
pub(crate) fn run(_args: SummaryArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("mtasts report summary is not built yet")
}
