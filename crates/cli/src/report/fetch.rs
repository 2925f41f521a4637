//! `mtasts report fetch` (being built in this session).

use std::process::ExitCode;

/// Arguments of `mtasts report fetch`.
#[derive(Debug, clap::Args)]
pub(crate) struct FetchArgs {}

/// Runs `mtasts report fetch`.
pub(crate) fn run(_args: FetchArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("mtasts report fetch is not built yet")
}
