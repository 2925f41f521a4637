//! `mtasts report reparse`: reads every stored input and report again with this version's
//! readers (`mtasts_report::intake::Intake::reparse`): reports an older version could not read
//! are stored, errors are replaced by what the inputs give now, and reports whose contract
//! object changed are rewritten with their rows and daily rollups.

use std::io::{self, Write};
use std::process::ExitCode;

use anyhow::Context;
use mtasts_report::intake::{Intake, Reparsed};
use mtasts_report::{DEFAULT_MAX_REPORT_BYTES, Limits};

use crate::serve::DatabaseArgs;

/// Arguments of `mtasts report reparse`.
#[derive(Debug, clap::Args)]
pub(crate) struct ReparseArgs {
    #[command(flatten)]
    db: DatabaseArgs,
}

/// Runs `mtasts report reparse`: exit 0 when every stored report still reads and no input has
/// errors left, 1 otherwise, 2 when the database failed.
pub(crate) fn run(args: ReparseArgs) -> anyhow::Result<ExitCode> {
    let ReparseArgs { db } = args;
    let done = super::with_db(&db, async |db| {
        let mut limits = Limits::default();
        limits.max_report_bytes = DEFAULT_MAX_REPORT_BYTES;
        Intake::new(db.clone(), limits)
            .reparse()
            .await
            .context("reparsing")
    })?;
    print(&mut io::stdout().lock(), &done)?;
    Ok(if done.errors_after == 0 && done.unreadable.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// The reports no longer readable, then `N inputs, N reports, N new, N updated, N error (was
/// N)`.
fn print(out: &mut impl Write, r: &Reparsed) -> io::Result<()> {
    for (id, why) in &r.unreadable {
        writeln!(
            out,
            "report {id}: no longer readable (kept as stored): {why}"
        )?;
    }
    writeln!(
        out,
        "{} inputs, {} reports, {} new, {} updated, {} error (was {})",
        r.inputs, r.reports, r.new, r.updated, r.errors_after, r.errors_before
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_counts_line() {
        let mut out = Vec::new();
        print(&mut out, &Reparsed::default()).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "0 inputs, 0 reports, 0 new, 0 updated, 0 error (was 0)\n"
        );
    }
}
