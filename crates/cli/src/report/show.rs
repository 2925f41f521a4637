//! `mtasts report show ID`: one stored report, as the output contract's JSON object (pretty,
//! in the contract's key order) or, with `--raw`, the document bytes exactly as received.

use std::io::Write;
use std::process::ExitCode;

use crate::serve::DatabaseArgs;

/// Arguments of `mtasts report show`.
#[derive(Debug, clap::Args)]
pub(crate) struct ShowArgs {
    /// The report's id (from `mtasts report list`).
    #[arg(value_name = "ID")]
    id: i64,
    /// Print the report document (JSON or XML) as received, decompressed, byte for byte.
    #[arg(long)]
    raw: bool,
    #[command(flatten)]
    db: DatabaseArgs,
}

/// Runs `mtasts report show`.
pub(crate) fn run(args: ShowArgs) -> anyhow::Result<ExitCode> {
    let ShowArgs { id, raw, db } = args;
    let stored = super::with_existing_db(&db, async |db| match db {
        Some(db) => Ok(db.get(id).await?),
        None => Ok(None),
    })?;
    let Some(stored) = stored else {
        anyhow::bail!("no stored report has id {id} (see `mtasts report list`)");
    };
    let mut out = std::io::stdout().lock();
    if raw {
        // Stored documents were read within the limits of the import that stored them; this
        // bound only keeps a damaged database from inflating without end.
        let limits = mtasts_report::Limits::with_max_report_bytes(SHOW_MAX_BYTES);
        let document = mtasts_report::intake::stored_document(&stored, &limits)
            .map_err(|e| anyhow::anyhow!("report {id}: {e}"))?;
        out.write_all(&document)?;
    } else {
        out.write_all(pretty(&stored.normalized).as_bytes())?;
        out.write_all(b"\n")?;
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

/// Indents compact JSON text two spaces per level, keeping the keys in their stored order
/// (the contract's; a `serde_json::Value` would sort them).
fn pretty(compact: &str) -> String {
    let mut out = String::with_capacity(compact.len() * 2);
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    let mut chars = compact.chars().peekable();
    let newline = |out: &mut String, depth: usize| {
        out.push('\n');
        out.push_str(&"  ".repeat(depth));
    };
    while let Some(c) = chars.next() {
        if in_string {
            out.push(c);
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_string = false;
            }
            continue;
        }
        match c {
            '"' => {
                in_string = true;
                out.push(c);
            }
            '{' | '[' => {
                out.push(c);
                let close = if c == '{' { '}' } else { ']' };
                while chars.peek().is_some_and(|n| n.is_ascii_whitespace()) {
                    chars.next();
                }
                if chars.peek() == Some(&close) {
                    chars.next();
                    out.push(close);
                } else {
                    depth += 1;
                    newline(&mut out, depth);
                }
            }
            '}' | ']' => {
                depth = depth.saturating_sub(1);
                newline(&mut out, depth);
                out.push(c);
            }
            ',' => {
                out.push(c);
                newline(&mut out, depth);
            }
            ':' => out.push_str(": "),
            c if c.is_ascii_whitespace() => {}
            c => out.push(c),
        }
    }
    out
}

/// The most bytes `show --raw` inflates a stored document to (4 GiB).
const SHOW_MAX_BYTES: u64 = 4 << 30;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pretty_keeps_order_and_meaning() {
        let compact = r#"{"kind":"tlsrpt","b":[1,{"x":"a,b:{\"}"}],"e":[],"o":{},"n":null}"#;
        let p = pretty(compact);
        assert_eq!(
            p,
            "{\n  \"kind\": \"tlsrpt\",\n  \"b\": [\n    1,\n    {\n      \"x\": \"a,b:{\\\"}\"\n    }\n  ],\n  \"e\": [],\n  \"o\": {},\n  \"n\": null\n}"
        );
        let a: serde_json::Value = serde_json::from_str(compact).unwrap();
        let b: serde_json::Value = serde_json::from_str(&p).unwrap();
        assert_eq!(a, b);
    }

    #[test]
    fn pretty_reindents_already_spaced_json() {
        let p = pretty("{ \"a\" : [ ] , \"b\" : 1 }");
        assert_eq!(p, "{\n  \"a\": [],\n  \"b\": 1\n}");
    }
}
