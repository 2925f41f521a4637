//! What the `mtasts report` tests share (included by each `report_*.rs` as `mod support`,
//! and by serve_walkthrough.rs): running the binary without the environment's
//! configuration, reading its output, the samples folder, a serve configuration in a
//! temporary directory, and a fresh PostgreSQL schema made with `psql`.

// Each test binary uses only some of these.
#![allow(dead_code)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use mtasts_testkit::services::{self, Service};

/// `mtasts ARGS…` with no configuration or database from the environment, no colours and
/// nothing on standard input.
pub(crate) fn command(args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_mtasts"));
    command
        .args(args)
        .env_remove("MTASTS_SERVE_CONFIG")
        .env_remove("MTASTS_DATABASE")
        .env_remove("MTASTS_DATA_DIR")
        .env("NO_COLOR", "1")
        .stdin(Stdio::null());
    command
}

/// Runs `command` to its end, writing `stdin` (if any) to its standard input, and returns
/// what it printed.
pub(crate) fn output(command: &mut Command, stdin: Option<&[u8]>) -> Output {
    if stdin.is_some() {
        command.stdin(Stdio::piped());
    }
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run mtasts");
    if let Some(bytes) = stdin {
        let mut pipe = child.stdin.take().expect("stdin");
        // The child may stop reading early (a limit); a broken pipe here is its answer, not ours.
        let _ = pipe.write_all(bytes);
    }
    child.wait_with_output().expect("wait for mtasts")
}

/// `mtasts ARGS…` (see [`command`]) run to its end.
pub(crate) fn mtasts(args: &[&str], stdin: Option<&[u8]>) -> Output {
    output(&mut command(args), stdin)
}

/// Standard output, which must be UTF-8.
pub(crate) fn stdout(out: &Output) -> String {
    String::from_utf8(out.stdout.clone()).expect("UTF-8 output")
}

pub(crate) fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The last line of standard output (the counts line of import, reparse and fetch).
pub(crate) fn last_line(out: &Output) -> String {
    stdout(out).lines().last().unwrap_or_default().to_owned()
}

/// The samples folder, or `None` (after the testkit's one skip rule) when it is absent.
pub(crate) fn samples() -> Option<PathBuf> {
    services::samples_dir()
}

pub(crate) fn path(p: &Path) -> &str {
    p.to_str().expect("UTF-8 path")
}

/// `DIR/serve.toml` naming `DIR/data` as the data directory, written on first use.
pub(crate) fn serve_config(dir: &Path) -> PathBuf {
    let config = dir.join("serve.toml");
    if !config.exists() {
        let data = dir.join("data");
        std::fs::write(&config, format!("data_dir = {:?}\n", path(&data)))
            .expect("write serve.toml");
    }
    config
}

/// A fresh schema (named `PREFIX…`) on the PostgreSQL test server, made with `psql` (which
/// comes with it), as a database URL; `None` after the skip rule when the server or `psql` is
/// missing. [`drop_schema`] removes it.
pub(crate) fn postgres_schema(prefix: &str) -> Option<String> {
    let base = services::postgres_url();
    let schema = services::unique(prefix);
    let psql = Command::new("psql")
        .arg(&base)
        .args(["-q", "-c", &format!("CREATE SCHEMA {schema}")])
        .stdin(Stdio::null())
        .output();
    match psql {
        Ok(out) if out.status.success() => Some(services::postgres_url_in_schema(&base, &schema)),
        Ok(out) => {
            services::skip(
                Service::Postgres,
                &format_args!(
                    "psql {base}: {}",
                    String::from_utf8_lossy(&out.stderr).trim()
                ),
            );
            None
        }
        Err(e) => {
            services::skip(Service::Postgres, &format_args!("cannot run psql: {e}"));
            None
        }
    }
}

/// Drops the schema of a URL from [`postgres_schema`] with everything in it.
pub(crate) fn drop_schema(url: &str) {
    let schema = url.rsplit('=').next().expect("a search path");
    let _ = Command::new("psql")
        .arg(services::postgres_url())
        .args(["-q", "-c", &format!("DROP SCHEMA {schema} CASCADE")])
        .stdin(Stdio::null())
        .output();
}
