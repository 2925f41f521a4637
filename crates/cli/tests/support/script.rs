//! A document's script: its blocks fenced ```` ```sh script ````, in order, run by bash as one
//! script exactly as a reader pastes them (included as `mod script` by docs.rs, which runs
//! every document's, and by serve_walkthrough.rs, which checks what docs/serve.md's leaves
//! behind).
//!
//! Such blocks are written to work as they stand on a fresh machine (the built `mtasts` on
//! `PATH`, loopback addresses, files in the current directory), so nothing in them is
//! emulated or replaced but one thing: `127.0.0.1` becomes a loopback address of the run's
//! own, so that the documented ports cannot meet another test's (or a developer's own
//! service's) on a shared machine. The script runs in a fresh directory under
//! `bash -eu -o pipefail` (a command that fails stops it), in a process group of its own; it
//! must exit 0 within [`SCRIPT_TIMEOUT`] and must stop whatever it started in the background.

// Each test binary uses only some of these.
#![allow(dead_code)]

use std::net::IpAddr;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The info string of the blocks that form a document's script.
pub(crate) const SCRIPT_FENCE: &str = "sh script";

/// The most a document's script may take.
pub(crate) const SCRIPT_TIMEOUT: Duration = Duration::from_secs(180);

/// Whether a fence's info string (after the backquotes) opens a script block.
pub(crate) fn is_script_fence(info: &str) -> bool {
    info.split_whitespace().eq(SCRIPT_FENCE.split_whitespace())
}

/// The script of the Markdown text `text` of document `doc`: its script blocks in order, each
/// after a comment naming where it starts, or `None` when it has none.
pub(crate) fn script(doc: &str, text: &str) -> Option<String> {
    let mut script = String::new();
    let mut open: Option<bool> = None;
    for (i, line) in text.lines().enumerate() {
        let trimmed = line.trim_start();
        if let Some(info) = trimmed.strip_prefix("```") {
            open = match open {
                Some(_) => None,
                None => {
                    let is_script = is_script_fence(info);
                    if is_script {
                        script.push_str(&format!("# {doc}:{}\n", i + 1));
                    }
                    Some(is_script)
                }
            };
            continue;
        }
        if open == Some(true) {
            script.push_str(line);
            script.push('\n');
        }
    }
    (!script.is_empty()).then_some(script)
}

/// A script that ran to its end.
pub(crate) struct Ran {
    /// The directory it ran in, with every file it left.
    pub(crate) dir: tempfile::TempDir,
    /// The loopback address that stood for `127.0.0.1`.
    pub(crate) ip: IpAddr,
    /// What it printed (standard output and error, interleaved).
    pub(crate) output: String,
}

/// Runs `script` (see the module docs); Err says what went wrong, with what it printed.
pub(crate) fn run(script: &str) -> Result<Ran, String> {
    let dir = tempfile::tempdir().unwrap();
    let ip = mtasts_testkit::random_loopback();
    let path = dir.path().join("script.sh");
    std::fs::write(&path, script.replace("127.0.0.1", &ip.to_string())).unwrap();
    let log = dir.path().join("output.txt");
    let out = std::fs::File::create(&log).unwrap();
    let binary = Path::new(env!("CARGO_BIN_EXE_mtasts"));
    let search = std::env::join_paths(
        std::iter::once(binary.parent().unwrap().to_path_buf()).chain(
            std::env::var_os("PATH")
                .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
                .unwrap_or_default(),
        ),
    )
    .unwrap();
    let mut command = Command::new("bash");
    command
        .args(["-eu", "-o", "pipefail"])
        .arg(&path)
        .current_dir(dir.path())
        .env("PATH", search)
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(out.try_clone().unwrap())
        .stderr(out)
        // Its own group, so that whatever it leaves behind can be found and stopped.
        .process_group(0);
    for (k, _) in std::env::vars() {
        if k.starts_with("MTASTS_") || k == "SSL_CERT_FILE" {
            command.env_remove(k);
        }
    }
    let mut child = command.spawn().map_err(|e| format!("bash: {e}"))?;
    let group = child.id().to_string();
    let deadline = Instant::now() + SCRIPT_TIMEOUT;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Some(status),
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(50)),
            _ => break None,
        }
    };
    // Anything of the group still running was started by the script and not stopped by it.
    let left = signal_group("-0", &group);
    signal_group("-KILL", &group);
    let _ = child.wait();
    let output = std::fs::read_to_string(&log).unwrap_or_default();
    let ran = Ran { dir, ip, output };
    match status {
        None => Err(format!(
            "still running after {SCRIPT_TIMEOUT:?}\n{}",
            ran.output
        )),
        Some(status) if !status.success() => Err(format!("{status}\n{}", ran.output)),
        Some(_) if left => Err(format!(
            "the script left processes running (stop what it starts: `kill %1 && wait`)\n{}",
            ran.output
        )),
        Some(_) => Ok(ran),
    }
}

/// Sends `signal` (`-0`: none, only the check) to every process of the group `group`;
/// whether one received it.
fn signal_group(signal: &str, group: &str) -> bool {
    Command::new("kill")
        .args([signal, "--", &format!("-{group}")])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}
