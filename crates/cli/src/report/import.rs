//! `mtasts report import` (being built in this session).

use std::process::ExitCode;

/// Arguments of `mtasts report import`.
#[derive(Debug, clap::Args)]
pub(crate) struct ImportArgs {}

/// Runs `mtasts report import`.
pub(crate) fn run(_args: ImportArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("mtasts report import is not built yet")
}
