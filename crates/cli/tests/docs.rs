//! Every command shown in README.md and docs/*.md, run as written, so the documents cannot
//! drift from the programs.
//!
//! The fenced `sh`, `bash`, `shell` and `console` blocks are read from the documents when the
//! test runs (in `console` blocks, the lines after a `$ ` prompt); nothing is copied here, so a
//! command added, changed or removed there is what runs. Each command line is handled by the
//! program it calls:
//!
//! - `mtasts …` runs the built binary with the same arguments against a loopback internet
//!   ([`TestNet`]) that publishes the domains in [`DOMAINS`] (so no host name is replaced: the
//!   world's DNS server answers for them). The only differences from the
//!   document are the [`SUBSTITUTIONS`], the files in [`FILES`], and what points the binary at
//!   that world: [`CHECK_FLAGS`] appended to `check` and `generate`, and configuration files
//!   named by environment variables for the daemons (`resolver`, `query`, `cache`: `MTASTS_CONFIG`;
//!   `serve`, `admin`: `MTASTS_SERVE_CONFIG`), which the document's own flags override. It must
//!   exit 0; a daemon (`serve`, `resolver`) must start, keep running through the rest of the
//!   document and stop cleanly on SIGTERM. The commands in [`PARSE_ONLY`] cannot run offline;
//!   clap must accept them.
//! - `curl …` runs against the `mtasts serve` the same document started earlier, with `$TOKEN`
//!   the owner token the document's `mtasts admin token create --tenant …` printed; the answer
//!   must have the status [`API_STATUS`] lists for the call.
//! - `postmap -q KEY socketmap:inet:ADDR:NAME` asks the document's `mtasts resolver` the same
//!   socketmap question postmap would ask; the answer must be `OK …`.
//! - `cargo …` is not run: the packages, benches and tests it names must exist
//!   (`cargo metadata`), the environment variables it sets must be read by the bench or test it
//!   names, and `cargo run -p mtasts -- ARGS` runs as `mtasts ARGS` above.
//! - Any other program must be in [`NOT_RUN`] with the reason. A new one fails this test until
//!   someone decides how it is tested. So does a line that starts like a command (`mtasts `,
//!   `curl `, `cargo `, `$ `) in a block of another kind, which would escape the test.
//!
//! Blocks fenced ```` ```sh script ```` are different: they are written to work as they stand on
//! a fresh machine (a walkthrough on loopback, like docs/serve.md's "Try it end to end"), so
//! they are not emulated but run, all of a document's in order, as one bash script in a fresh
//! directory with the built binary on `PATH` (only `127.0.0.1` is replaced, by a loopback
//! address of the run's own); it must exit 0 and stop what it started (see
//! `support/script.rs`). A script that calls `curl` or `swaks` is skipped without them by the
//! testkit's one rule.
//!
//! The binary exits 2 both for usage errors and for runtime errors; clap's usage errors are
//! told apart by their message, which starts with `error:` (the binary's own start with
//! `mtasts: error:`).
//!
//! The commands of one document run in order in one world of their own (a directory, a
//! [`TestNet`], the daemons it started), the way a reader follows it.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use mtasts_testkit::TestNet;
use mtasts_testkit::services::{self, Service};
use mtasts_testkit::smtp::MxHostSpec;

#[path = "support/script.rs"]
mod script;

/// The domains documented commands name. The world publishes each with an `enforce` policy,
/// an MX host with a valid certificate and a TLS-RPT record, so `mtasts check` passes.
const DOMAINS: &[&str] = &["example.com", "example.org", "gmail.com"];

/// Files the documents assume in the current directory.
const FILES: &[(&str, &str)] = &[
    ("domains.txt", "example.com\nexample.org\n"),
    ("report.json", REPORT_JSON),
    ("dmarc.xml", DMARC_XML),
];

/// The SMTP TLS report the `mtasts report` pages read as `report.json`: one day of example.com,
/// with one failure so that the summaries have something to explain.
const REPORT_JSON: &str = r#"{
  "organization-name": "Example Sender",
  "date-range": {"start-datetime": "2026-12-01T00:00:00Z", "end-datetime": "2026-12-01T23:59:59Z"},
  "contact-info": "tlsrpt@sender.example",
  "report-id": "2026-12-01T00:00:00Z_example.com",
  "policies": [{
    "policy": {"policy-type": "sts", "policy-domain": "example.com",
               "policy-string": ["version: STSv1", "mode: testing", "mx: mail.example.com", "max_age: 86400"],
               "mx-host": ["mail.example.com"]},
    "summary": {"total-successful-session-count": 120, "total-failure-session-count": 2},
    "failure-details": [{"result-type": "certificate-expired", "sending-mta-ip": "203.0.113.5",
                         "receiving-mx-hostname": "mail.example.com", "receiving-ip": "192.0.2.25",
                         "failed-session-count": 2}]
  }]
}
"#;

/// The DMARC aggregate report the `mtasts report` pages read as `dmarc.xml`.
const DMARC_XML: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<feedback>
  <report_metadata>
    <org_name>receiver.example</org_name>
    <email>dmarc-reports@receiver.example</email>
    <report_id>2026-12-01.example.com.1</report_id>
    <date_range><begin>1796083200</begin><end>1796169599</end></date_range>
  </report_metadata>
  <policy_published>
    <domain>example.com</domain><adkim>r</adkim><aspf>r</aspf><p>none</p><pct>100</pct>
  </policy_published>
  <record>
    <row><source_ip>192.0.2.1</source_ip><count>40</count>
      <policy_evaluated><disposition>none</disposition><dkim>pass</dkim><spf>pass</spf></policy_evaluated></row>
    <identifiers><header_from>example.com</header_from></identifiers>
    <auth_results><dkim><domain>example.com</domain><selector>s1</selector><result>pass</result></dkim>
      <spf><domain>example.com</domain><result>pass</result></spf></auth_results>
  </record>
  <record>
    <row><source_ip>198.51.100.7</source_ip><count>3</count>
      <policy_evaluated><disposition>none</disposition><dkim>fail</dkim><spf>fail</spf></policy_evaluated></row>
    <identifiers><header_from>example.com</header_from></identifiers>
    <auth_results><spf><domain>spammer.example</domain><result>fail</result></spf></auth_results>
  </record>
</feedback>
"#;

/// Text replaced in a documented command before it runs: (as documented, stand-in, why).
const SUBSTITUTIONS: &[(&str, &str, &str)] = &[
    (
        "/var/lib/mtasts",
        "{data}",
        "the test's own directory instead of the system's",
    ),
    (
        "http://127.0.0.1:8080",
        "http://{api}",
        "the document's `mtasts serve` listens on a loopback address and port of its own",
    ),
    (
        "127.0.0.1:8461",
        "{socketmap}",
        "the document's `mtasts resolver` listens on a loopback address of its own",
    ),
];

/// Appended to `mtasts check` and `mtasts generate`: the world's DNS server, its CA (and no
/// other), and the ports its HTTPS and SMTP hosts listen on (test-only flags).
const CHECK_FLAGS: &[&str] = &[
    "--dns",
    "{dns}",
    "--ca-file",
    "{ca}",
    "--no-builtin-roots",
    "--https-port",
    "{https_port}",
    "--smtp-port",
    "{smtp_port}",
];

/// Commands (by prefix) that cannot run offline: (prefix, why). Clap must accept them: the
/// binary must not stop with a usage error.
const PARSE_ONLY: &[(&str, &str)] = &[
    (
        "mtasts report fetch",
        "needs an IMAP server holding the reports mailbox; tested against Dovecot in crates/cli/tests/report_fetch.rs",
    ),
    (
        "MTASTS_IMAP_PASSWORD=secret mtasts report fetch",
        "as above, with the password from the environment",
    ),
];

/// Programs documented commands call that this test does not run: (program, why).
const NOT_RUN: &[(&str, &str)] = &[
    (
        "python3",
        "installs the tools the benchmarks compare against, from PyPI (needs the internet)",
    ),
    ("pip", "as python3"),
];

/// What the API answers to the documented calls, as docs/serve.md says: (method, path pattern
/// with `*` for one segment, status).
const API_STATUS: &[(&str, &str, u16)] = &[
    ("POST", "/api/v1/domains", 201),
    ("GET", "/api/v1/domains", 200),
    ("GET", "/api/v1/domains/*", 200),
    ("PATCH", "/api/v1/domains/*", 200),
    ("PUT", "/api/v1/alert-settings", 200),
    ("GET", "/api/v1/alerts", 200),
];

/// The most any one documented command may take.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(60);
/// The most a documented daemon may take to start, and to stop on SIGTERM.
const DAEMON_START: Duration = Duration::from_secs(30);

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// README.md and every Markdown file under docs/, relative to the repository root.
fn documents() -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        let mut entries: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        entries.sort();
        for path in entries {
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "md") {
                out.push(path);
            }
        }
    }
    let mut docs = vec![root().join("README.md")];
    walk(&root().join("docs"), &mut docs);
    docs.into_iter()
        .map(|p| p.strip_prefix(root()).unwrap().to_path_buf())
        .collect()
}

/// One command line of a document (continuation lines joined).
#[derive(Debug, Clone)]
struct DocCommand {
    doc: String,
    line: usize,
    text: String,
}

impl std::fmt::Display for DocCommand {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}: `{}`", self.doc, self.line, self.text)
    }
}

/// The info strings of the fenced blocks whose lines are commands.
const SHELL_FENCES: &[&str] = &["sh", "bash", "shell", "console"];

/// How a command starts, to find one in a block of another kind (config, output).
const COMMANDS_IN_DISGUISE: &[&str] = &["$ ", "mtasts ", "curl ", "cargo "];

/// The command lines of the shell blocks of a Markdown text, and the lines of other blocks
/// that look like commands (they should be in a shell block, so they are run).
fn extract(doc: &str, text: &str) -> (Vec<DocCommand>, Vec<DocCommand>) {
    let mut out = Vec::new();
    let mut unlabelled = Vec::new();
    let mut fence: Option<&str> = None;
    let mut pending: Option<DocCommand> = None;
    for (i, line) in text.lines().enumerate() {
        let trimmed = line.trim_start();
        if trimmed.starts_with("```") {
            fence = match fence {
                Some(_) => None,
                None => Some(trimmed.trim_start_matches('`').trim()),
            };
            pending = None;
            continue;
        }
        let Some(lang) = fence else { continue };
        if script::is_script_fence(lang) {
            // Run as written by bash (support/script.rs), not emulated.
            continue;
        }
        let lang = lang.split([' ', ',']).next().unwrap_or("");
        if !SHELL_FENCES.contains(&lang) {
            // A command in another block would silently escape this test.
            if COMMANDS_IN_DISGUISE.iter().any(|p| trimmed.starts_with(p)) {
                unlabelled.push(DocCommand {
                    doc: doc.to_owned(),
                    line: i + 1,
                    text: trimmed.trim_end().to_owned(),
                });
            }
            continue;
        }
        let content = match pending.take() {
            Some(mut cmd) => {
                cmd.text.push(' ');
                cmd.text.push_str(line.trim());
                cmd
            }
            None if lang == "console" => match trimmed.strip_prefix("$ ") {
                Some(rest) => DocCommand {
                    doc: doc.to_owned(),
                    line: i + 1,
                    text: rest.trim().to_owned(),
                },
                None => continue,
            },
            None => DocCommand {
                doc: doc.to_owned(),
                line: i + 1,
                text: line.trim().to_owned(),
            },
        };
        if let Some(joined) = content.text.strip_suffix('\\') {
            pending = Some(DocCommand {
                text: joined.trim_end().to_owned(),
                ..content
            });
        } else if !content.text.is_empty() && !content.text.starts_with('#') {
            out.push(content);
        }
    }
    (out, unlabelled)
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Word(String),
    Op(String),
}

/// Splits a command line the way a POSIX shell would for the subset documents use: words,
/// quotes, `$VAR`, comments, `&&`, `<` and `>`. `vars` expands a variable (None: not set).
fn tokenize(line: &str, vars: &dyn Fn(&str) -> Option<String>) -> Result<Vec<Token>, String> {
    let mut tokens = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut chars = line.chars().peekable();
    let expand = |chars: &mut std::iter::Peekable<std::str::Chars<'_>>,
                  word: &mut String|
     -> Result<(), String> {
        let braced = chars.peek() == Some(&'{');
        if chars.peek() == Some(&'(') {
            return Err("command substitution `$(…)` is not supported by this test".into());
        }
        if braced {
            chars.next();
        }
        let mut name = String::new();
        while let Some(&c) = chars.peek() {
            if c.is_ascii_alphanumeric() || c == '_' {
                name.push(c);
                chars.next();
            } else {
                break;
            }
        }
        if braced && chars.next() != Some('}') {
            return Err("unterminated `${`".into());
        }
        let value = vars(&name).ok_or_else(|| format!("${name} is not set by this test"))?;
        word.push_str(&value);
        Ok(())
    };
    while let Some(c) = chars.next() {
        match c {
            ' ' | '\t' => {
                if in_word {
                    tokens.push(Token::Word(std::mem::take(&mut word)));
                    in_word = false;
                }
            }
            '#' if !in_word => break,
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(c) => word.push(c),
                        None => return Err("unterminated '".into()),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(n @ ('"' | '\\' | '$' | '`')) => word.push(n),
                            Some(n) => {
                                word.push('\\');
                                word.push(n);
                            }
                            None => return Err("unterminated \"".into()),
                        },
                        Some('$') => expand(&mut chars, &mut word)?,
                        Some('`') => return Err("backquotes are not supported".into()),
                        Some(c) => word.push(c),
                        None => return Err("unterminated \"".into()),
                    }
                }
            }
            '\\' => {
                in_word = true;
                if let Some(n) = chars.next() {
                    word.push(n);
                }
            }
            '$' => {
                in_word = true;
                expand(&mut chars, &mut word)?;
            }
            '&' | '|' | ';' | '>' | '<' | '(' | ')' | '`' => {
                if in_word {
                    tokens.push(Token::Word(std::mem::take(&mut word)));
                    in_word = false;
                }
                let mut op = c.to_string();
                if let Some(&n) = chars.peek()
                    && ((c == '&' && n == '&') || (c == '|' && n == '|') || (c == '>' && n == '>'))
                {
                    op.push(n);
                    chars.next();
                }
                tokens.push(Token::Op(op));
            }
            c => {
                in_word = true;
                word.push(c);
            }
        }
    }
    if in_word {
        tokens.push(Token::Word(word));
    }
    Ok(tokens)
}

/// One program call of a command line.
#[derive(Debug, Default, Clone)]
struct Simple {
    env: Vec<(String, String)>,
    argv: Vec<String>,
    stdin: Option<String>,
    stdout: Option<String>,
}

impl Simple {
    fn program(&self) -> &str {
        let p = self.argv.first().map(String::as_str).unwrap_or("");
        p.rsplit('/').next().unwrap_or(p)
    }
}

/// The program calls of a command line, run in order, each only if the previous succeeded.
fn parse(tokens: Vec<Token>) -> Result<Vec<Simple>, String> {
    let mut out = vec![Simple::default()];
    let mut tokens = tokens.into_iter();
    while let Some(token) = tokens.next() {
        let current = out.last_mut().unwrap();
        match token {
            Token::Word(w) => {
                let is_assignment = current.argv.is_empty()
                    && w.split_once('=').is_some_and(|(name, _)| {
                        !name.is_empty()
                            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                    });
                if is_assignment {
                    let (name, value) = w.split_once('=').unwrap();
                    current.env.push((name.to_owned(), value.to_owned()));
                } else {
                    current.argv.push(w);
                }
            }
            Token::Op(op) if op == "&&" => out.push(Simple::default()),
            Token::Op(op) if op == "<" || op == ">" => {
                let Some(Token::Word(path)) = tokens.next() else {
                    return Err(format!("`{op}` without a file"));
                };
                if op == "<" {
                    current.stdin = Some(path);
                } else {
                    current.stdout = Some(path);
                }
            }
            Token::Op(op) => {
                return Err(format!(
                    "`{op}` is not supported by this test: write the command without it, or \
                     teach crates/cli/tests/docs.rs"
                ));
            }
        }
    }
    if out.iter().any(|s| s.argv.is_empty()) {
        return Err("an empty command".into());
    }
    Ok(out)
}

/// Variables as written: for deciding how a command is tested before anything runs.
fn as_written(name: &str) -> Option<String> {
    Some(format!("${name}"))
}

/// Workspace packages and their targets, from `cargo metadata`.
struct Metadata {
    /// package name → (target kind, target name) → the target's main source file
    packages: BTreeMap<String, BTreeMap<(String, String), PathBuf>>,
}

impl Metadata {
    fn load() -> Metadata {
        let out = Command::new(env!("CARGO"))
            .args([
                "metadata",
                "--format-version",
                "1",
                "--no-deps",
                "--offline",
            ])
            .current_dir(root())
            .output()
            .expect("run cargo metadata");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let mut packages = BTreeMap::new();
        for p in v["packages"].as_array().unwrap() {
            let mut targets = BTreeMap::new();
            for t in p["targets"].as_array().unwrap() {
                for kind in t["kind"].as_array().unwrap() {
                    targets.insert(
                        (
                            kind.as_str().unwrap().to_owned(),
                            t["name"].as_str().unwrap().to_owned(),
                        ),
                        PathBuf::from(t["src_path"].as_str().unwrap()),
                    );
                }
            }
            packages.insert(p["name"].as_str().unwrap().to_owned(), targets);
        }
        Metadata { packages }
    }

    /// Checks a `cargo …` call; returns the `mtasts` arguments of `cargo run -p mtasts -- …`.
    /// The environment variables set for a bench or test must be read by its source.
    fn check(&self, simple: &Simple) -> Result<Option<Vec<String>>, String> {
        let argv = &simple.argv;
        let sub = argv.get(1).map(String::as_str).unwrap_or("");
        if !matches!(sub, "run" | "test" | "bench" | "build" | "check" | "doc") {
            return Err(format!(
                "`cargo {sub}` is not known to this test; teach crates/cli/tests/docs.rs"
            ));
        }
        let mut packages = Vec::new();
        let mut targets = Vec::new();
        let mut rest = None;
        let mut args = argv[2..].iter();
        while let Some(arg) = args.next() {
            match arg.as_str() {
                "-p" | "--package" => packages.push(args.next().ok_or("-p without a name")?),
                "--bench" | "--test" | "--bin" | "--example" => {
                    let kind = arg.trim_start_matches('-');
                    targets.push((kind, args.next().ok_or("a target flag without a name")?));
                }
                "--workspace" | "--release" | "--all-targets" | "--locked" | "--no-deps" => {}
                "--" => {
                    rest = Some(args.by_ref().cloned().collect::<Vec<_>>());
                }
                other => {
                    return Err(format!(
                        "cargo argument `{other}` is not known to this test; teach \
                         crates/cli/tests/docs.rs"
                    ));
                }
            }
        }
        for p in &packages {
            if !self.packages.contains_key(p.as_str()) {
                return Err(format!("there is no package `{p}` in the workspace"));
            }
        }
        for (kind, name) in &targets {
            let source = self
                .packages
                .iter()
                .filter(|(p, _)| packages.is_empty() || packages.iter().any(|q| q == p))
                .find_map(|(_, t)| t.get(&(kind.to_string(), name.to_string())))
                .ok_or_else(|| format!("there is no {kind} target `{name}` in {packages:?}"))?;
            let text = std::fs::read_to_string(source).map_err(|e| e.to_string())?;
            for (var, _) in &simple.env {
                if !text.contains(&format!("\"{var}\"")) {
                    return Err(format!(
                        "{} does not read the environment variable {var}",
                        source.display()
                    ));
                }
            }
        }
        match rest {
            Some(rest) if sub == "run" => {
                if packages.iter().any(|p| *p == "mtasts") {
                    Ok(Some(rest))
                } else {
                    Err("`cargo run … --` of a package other than mtasts".into())
                }
            }
            _ => Ok(None),
        }
    }
}

/// How a command line is tested, decided before anything runs.
#[derive(Debug)]
enum Plan {
    Run(Vec<Simple>),
    NotRun(&'static str),
}

fn plan(
    cmd: &DocCommand,
    meta: &Metadata,
    vars: &dyn Fn(&str) -> Option<String>,
) -> Result<Plan, String> {
    let simples = parse(tokenize(&cmd.text, vars)?)?;
    let mut runnable = Vec::new();
    let mut skipped = None;
    for simple in simples {
        match simple.program() {
            "mtasts" | "curl" | "postmap" => runnable.push(simple),
            "cargo" => {
                if let Some(args) = meta.check(&simple)? {
                    let mut argv = vec!["mtasts".to_owned()];
                    argv.extend(args);
                    runnable.push(Simple { argv, ..simple });
                }
            }
            program => match NOT_RUN.iter().find(|(p, _)| *p == program) {
                Some((_, why)) => skipped = Some(*why),
                None => {
                    return Err(format!(
                        "`{program}` is neither run by this test nor listed in NOT_RUN with \
                         the reason (crates/cli/tests/docs.rs)"
                    ));
                }
            },
        }
    }
    Ok(match skipped {
        Some(why) => Plan::NotRun(why),
        None => Plan::Run(runnable),
    })
}

/// A daemon a document started, stopped with SIGTERM at the end of the document (killed
/// when dropped before that).
struct Daemon {
    name: &'static str,
    child: Child,
    log: PathBuf,
}

impl Daemon {
    fn spawn(
        name: &'static str,
        mut command: Command,
        dir: &Path,
        stdout: Stdio,
    ) -> Result<Daemon, String> {
        let log = dir.join(format!("{name}.log"));
        let child = command
            .stdout(stdout)
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .map_err(|e| format!("{name}: {e}"))?;
        Ok(Daemon { name, child, log })
    }

    /// What went wrong, with what the daemon logged; the daemon is killed.
    fn failed(self, why: &str) -> String {
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        format!("{} {why}\nstderr:\n{log}", self.name)
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One document's world: a directory, a loopback internet, the daemons the document started.
struct World {
    net: TestNet,
    dir: tempfile::TempDir,
    vars: BTreeMap<String, String>,
    daemons: Vec<Daemon>,
    _runtime: tokio::runtime::Runtime,
}

impl World {
    fn start() -> World {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let net = runtime.block_on(async {
            let net = TestNet::start().await;
            for domain in DOMAINS {
                let mx = format!("mx.{domain}");
                net.zone().add_mx(domain, 10, &mx);
                net.add_mx_host(&mx, MxHostSpec::default()).await;
                let policy = format!("version: STSv1\nmode: enforce\nmx: {mx}\nmax_age: 604800\n");
                net.add_sts_domain(domain, &policy, "v=STSv1; id=1").await;
                net.zone().add_txt(
                    &format!("_smtp._tls.{domain}"),
                    &[&format!("v=TLSRPTv1; rua=mailto:tlsrpt@{domain}")],
                );
            }
            net
        });
        let dir = tempfile::tempdir().unwrap();
        for (name, content) in FILES {
            std::fs::write(dir.path().join(name), content).unwrap();
        }
        let data = dir.path().join("data");
        std::fs::create_dir(&data).unwrap();
        let socketmap = SocketAddr::new(net.next_ip(), 8461);
        let serve_ip = net.next_ip();
        let mut vars = BTreeMap::new();
        vars.insert("dns".into(), net.dns_addr().to_string());
        vars.insert("ca".into(), net.ca_file().display().to_string());
        vars.insert("https_port".into(), net.https_port().to_string());
        vars.insert("smtp_port".into(), net.smtp_port().to_string());
        vars.insert("data".into(), data.display().to_string());
        vars.insert("socketmap".into(), socketmap.to_string());
        std::fs::write(
            dir.path().join("mtasts.toml"),
            format!(
                "data_dir = \"{data}\"\ndns_servers = [\"{dns}\"]\nca_files = [\"{ca}\"]\n\
                 builtin_roots = false\nhttps_port = {https}\n\n[socketmap]\ntcp = [\"{socketmap}\"]\n\n\
                 [http]\nlisten = [\"{http}\"]\n",
                data = data.display(),
                dns = net.dns_addr(),
                ca = net.ca_file().display(),
                https = net.https_port(),
                http = SocketAddr::new(socketmap.ip(), 8462),
            ),
        )
        .unwrap();
        std::fs::write(
            dir.path().join("serve.toml"),
            format!(
                "data_dir = \"{data}\"\nhttps_listen = [\"{ip}:0\"]\nhttp_listen = [\"{ip}:0\"]\n\
                 dns_listen = [\"{ip}:0\"]\napi_listen = \"{ip}:0\"\nacme_directory = \"\"\n\
                 smtp_listen = [\"{ip}:0\"]\n\
                 dns = [\"{dns}\"]\nca_file = [\"{ca}\"]\n",
                data = data.display(),
                ip = serve_ip,
                dns = net.dns_addr(),
                ca = net.ca_file().display(),
            ),
        )
        .unwrap();
        World {
            net,
            dir,
            vars,
            daemons: Vec::new(),
            _runtime: runtime,
        }
    }

    fn fill(&self, template: &str) -> String {
        let mut s = template.to_owned();
        for (k, v) in &self.vars {
            s = s.replace(&format!("{{{k}}}"), v);
        }
        s
    }

    fn substitute(&self, word: &str) -> Result<String, String> {
        let mut word = word.to_owned();
        for (documented, stand_in, _) in SUBSTITUTIONS {
            if word.contains(documented) {
                let stand_in = self.fill(stand_in);
                if stand_in.contains('{') {
                    return Err(format!(
                        "`{documented}` needs {stand_in}, which no earlier command of the \
                         document provided (is the daemon started first?)"
                    ));
                }
                word = word.replace(documented, &stand_in);
            }
        }
        Ok(word)
    }

    /// Runs one command line; Err says what is wrong.
    fn run(&mut self, cmd: &DocCommand, meta: &Metadata) -> Result<(), String> {
        // Variables expand now: earlier commands may have set them ($TOKEN).
        let vars = self.vars.clone();
        let Plan::Run(simples) = plan(cmd, meta, &|name| vars.get(name).cloned())? else {
            return Ok(());
        };
        for mut simple in simples {
            simple.argv = simple
                .argv
                .iter()
                .map(|w| self.substitute(w))
                .collect::<Result<_, _>>()?;
            match simple.program() {
                "mtasts" => self.mtasts(cmd, &simple)?,
                "curl" => self.curl(&simple)?,
                "postmap" => self.postmap(&simple)?,
                other => unreachable!("{other}"),
            }
        }
        Ok(())
    }

    fn mtasts_command(&self, simple: &Simple) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_mtasts"));
        command.args(&simple.argv[1..]);
        if matches!(
            simple.argv.get(1).map(String::as_str),
            Some("check" | "generate")
        ) {
            command.args(CHECK_FLAGS.iter().map(|f| self.fill(f)));
        }
        for (k, _) in std::env::vars() {
            if k.starts_with("MTASTS_") || k == "SSL_CERT_FILE" {
                command.env_remove(k);
            }
        }
        command
            .envs(simple.env.iter().map(|(k, v)| (k, v)))
            .env("NO_COLOR", "1")
            .env("MTASTS_CONFIG", self.dir.path().join("mtasts.toml"))
            .env("MTASTS_SERVE_CONFIG", self.dir.path().join("serve.toml"))
            .current_dir(self.dir.path());
        command
    }

    fn mtasts(&mut self, cmd: &DocCommand, simple: &Simple) -> Result<(), String> {
        let sub = simple.argv.get(1).cloned().unwrap_or_default();
        let command = self.mtasts_command(simple);
        if PARSE_ONLY
            .iter()
            .any(|(prefix, _)| cmd.text.starts_with(prefix))
        {
            let out = run_bounded(command, self.dir.path(), simple)?;
            return match usage_error(&out) {
                Some(e) => Err(format!("clap refuses it: {e}")),
                None => Ok(()),
            };
        }
        match sub.as_str() {
            "serve" => self.start_serve(command),
            "resolver" => self.start_resolver(command),
            _ => {
                let out = run_bounded(command, self.dir.path(), simple)?;
                if !out.status.success() {
                    return Err(format!(
                        "exit {:?}{}\nstdout:\n{}\nstderr:\n{}",
                        out.status.code(),
                        usage_error(&out)
                            .map(|e| format!(" (clap refuses it: {e})"))
                            .unwrap_or_default(),
                        out.stdout,
                        out.stderr
                    ));
                }
                // The owner token later `curl` calls use as $TOKEN.
                if sub == "admin"
                    && simple.argv[2..].starts_with(&["token".into(), "create".into()])
                    && simple.argv.iter().any(|a| a == "--tenant")
                    && !self.vars.contains_key("TOKEN")
                {
                    self.vars
                        .insert("TOKEN".into(), out.stdout.trim().to_owned());
                }
                Ok(())
            }
        }
    }

    /// Starts serve and reads the API address from its start-up lines.
    fn start_serve(&mut self, command: Command) -> Result<(), String> {
        let mut daemon = Daemon::spawn("serve", command, self.dir.path(), Stdio::piped())?;
        let stdout = daemon.child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let deadline = Instant::now() + DAEMON_START;
        let mut seen = Vec::new();
        let api = loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let Ok(line) = rx.recv_timeout(left) else {
                return Err(daemon.failed(&format!(
                    "did not print its dashboard address within {DAEMON_START:?}; stdout:\n{}",
                    seen.join("\n")
                )));
            };
            if let Some(url) = line.split("dashboard:").nth(1) {
                let url = url.trim().trim_start_matches("http://");
                break url.trim_end_matches('/').to_owned();
            }
            seen.push(line);
        };
        self.vars.insert("api".into(), api);
        self.daemons.push(daemon);
        Ok(())
    }

    /// Starts the resolver and waits until its socketmap accepts connections.
    fn start_resolver(&mut self, command: Command) -> Result<(), String> {
        let mut daemon = Daemon::spawn("resolver", command, self.dir.path(), Stdio::null())?;
        let addr: SocketAddr = self.vars["socketmap"].parse().unwrap();
        let deadline = Instant::now() + DAEMON_START;
        while TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_err() {
            let exited = daemon.child.try_wait().map_or(true, |s| s.is_some());
            if exited || Instant::now() > deadline {
                return Err(daemon.failed(&format!("did not listen on {addr}")));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        self.daemons.push(daemon);
        Ok(())
    }

    fn curl(&self, simple: &Simple) -> Result<(), String> {
        let mut method = None;
        let mut has_body = false;
        let mut url = None;
        let mut args = simple.argv[1..].iter();
        while let Some(arg) = args.next() {
            match arg.as_str() {
                "-X" | "--request" => method = args.next().cloned(),
                "-d" | "--data" | "--data-raw" | "--json" => {
                    has_body = true;
                    args.next();
                }
                "-H" | "--header" => {
                    args.next();
                }
                a if a.starts_with("http://") || a.starts_with("https://") => {
                    url = Some(a.to_owned())
                }
                a => return Err(format!("curl option `{a}` is not known to this test")),
            }
        }
        let method = method.unwrap_or_else(|| if has_body { "POST" } else { "GET" }.into());
        let url = url.ok_or("curl without a URL")?;
        let path = url
            .splitn(4, '/')
            .nth(3)
            .map(|p| format!("/{}", p.split('?').next().unwrap()))
            .unwrap_or_else(|| "/".into());
        let expected = API_STATUS
            .iter()
            .find(|(m, pattern, _)| *m == method && path_matches(pattern, &path))
            .map(|(_, _, status)| *status)
            .ok_or_else(|| {
                format!("no documented status for {method} {path}: add it to API_STATUS")
            })?;
        let body = self.dir.path().join("curl.out");
        let mut command = Command::new(&simple.argv[0]);
        command
            .args(&simple.argv[1..])
            .args(["-sS", "-o"])
            .arg(&body)
            .args(["-w", "%{http_code}"]);
        let out = run_bounded(command, self.dir.path(), simple)?;
        let status: u16 = out.stdout.trim().parse().unwrap_or(0);
        if status != expected || !out.status.success() {
            return Err(format!(
                "{method} {path} answered {status}, documented {expected}\n{}\n{}",
                std::fs::read_to_string(&body).unwrap_or_default(),
                out.stderr
            ));
        }
        Ok(())
    }

    /// `postmap -q KEY socketmap:inet:HOST:PORT:NAME`: the same socketmap request.
    fn postmap(&self, simple: &Simple) -> Result<(), String> {
        let [_, q, key, table] = simple.argv.as_slice() else {
            return Err("only `postmap -q KEY socketmap:inet:ADDR:NAME` is known".into());
        };
        let spec = table
            .strip_prefix("socketmap:inet:")
            .filter(|_| q == "-q")
            .ok_or("only `postmap -q KEY socketmap:inet:ADDR:NAME` is known")?;
        let (addr, name) = spec.rsplit_once(':').ok_or("no socketmap name")?;
        let mut stream = TcpStream::connect(addr).map_err(|e| format!("{addr}: {e}"))?;
        stream
            .set_read_timeout(Some(COMMAND_TIMEOUT))
            .map_err(|e| e.to_string())?;
        let request = format!("{name} {key}");
        write!(stream, "{}:{request},", request.len()).map_err(|e| e.to_string())?;
        let mut reply = Vec::new();
        let mut byte = [0u8; 1];
        while !reply.ends_with(b",") || !netstring_complete(&reply) {
            let n = stream.read(&mut byte).map_err(|e| e.to_string())?;
            if n == 0 {
                return Err("the resolver closed the connection".into());
            }
            reply.push(byte[0]);
        }
        let reply = String::from_utf8_lossy(&reply);
        let answer = reply
            .split_once(':')
            .map(|(_, a)| a.trim_end_matches(','))
            .unwrap_or("");
        if !answer.starts_with("OK ") {
            return Err(format!("the resolver answered {answer:?} for {key}"));
        }
        Ok(())
    }

    /// Stops the document's daemons with SIGTERM; each must exit cleanly.
    fn finish(mut self) -> Vec<String> {
        let mut problems = Vec::new();
        for mut daemon in self.daemons.drain(..).rev() {
            let _ = Command::new("kill")
                .arg(daemon.child.id().to_string())
                .status();
            match wait_bounded(&mut daemon.child, DAEMON_START) {
                Some(s) if s.success() => {}
                other => problems.push(format!(
                    "{} did not stop cleanly on SIGTERM: {other:?}",
                    daemon.name
                )),
            }
        }
        drop(self.net);
        problems
    }
}

fn netstring_complete(bytes: &[u8]) -> bool {
    let Some(colon) = bytes.iter().position(|&b| b == b':') else {
        return false;
    };
    let Ok(len) = std::str::from_utf8(&bytes[..colon])
        .unwrap_or("")
        .parse::<usize>()
    else {
        return false;
    };
    bytes.len() == colon + 1 + len + 1
}

fn path_matches(pattern: &str, path: &str) -> bool {
    let p: Vec<_> = pattern.split('/').collect();
    let q: Vec<_> = path.split('/').collect();
    p.len() == q.len() && p.iter().zip(&q).all(|(a, b)| *a == "*" || a == b)
}

struct Finished {
    status: ExitStatus,
    stdout: String,
    stderr: String,
}

/// Runs a command with the documented redirections, killed after [`COMMAND_TIMEOUT`].
fn run_bounded(mut command: Command, dir: &Path, simple: &Simple) -> Result<Finished, String> {
    let out_path = match &simple.stdout {
        Some(path) => dir.join(path),
        None => dir.join("stdout.txt"),
    };
    let err_path = dir.join("stderr.txt");
    command
        .stdout(std::fs::File::create(&out_path).unwrap())
        .stderr(std::fs::File::create(&err_path).unwrap());
    match &simple.stdin {
        Some(path) => {
            command.stdin(std::fs::File::open(dir.join(path)).map_err(|e| e.to_string())?)
        }
        None => command.stdin(Stdio::null()),
    };
    let mut child = command.spawn().map_err(|e| format!("{command:?}: {e}"))?;
    let Some(status) = wait_bounded(&mut child, COMMAND_TIMEOUT) else {
        let _ = child.kill();
        let _ = child.wait();
        return Err(format!("still running after {COMMAND_TIMEOUT:?}"));
    };
    Ok(Finished {
        status,
        stdout: std::fs::read_to_string(&out_path).unwrap_or_default(),
        stderr: std::fs::read_to_string(&err_path).unwrap_or_default(),
    })
}

/// The child's exit status, or None when it is still running after `limit`.
fn wait_bounded(child: &mut Child, limit: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + limit;
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Some(status),
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            _ => return None,
        }
    }
}

/// clap's own message when it refused the arguments. The binary exits 2 for usage errors and
/// for runtime errors alike; clap's messages start with `error:`, the binary's own with
/// `mtasts: error:`.
fn usage_error(out: &Finished) -> Option<String> {
    (out.status.code() == Some(2) && out.stderr.starts_with("error:"))
        .then(|| out.stderr.lines().next().unwrap_or("").to_owned())
}

#[test]
fn every_documented_command_works_as_written() {
    let meta = Metadata::load();
    // Without curl the API calls are skipped by the testkit's one rule (a failure in CI).
    let curl = services::command_or_skip(Service::Curl, "curl", &["--version"]);
    let mut failures = Vec::new();
    let mut ran = 0;
    for doc in documents() {
        let text = std::fs::read_to_string(root().join(&doc)).unwrap();
        if let Some(script) = script::script(&doc.display().to_string(), &text) {
            let needs = |program: &str| script.contains(&format!("{program} "));
            let present = (!needs("curl") || curl)
                && (!needs("swaks")
                    || services::command_or_skip(Service::Swaks, "swaks", &["--version"]));
            if present {
                eprintln!("running the script of {}", doc.display());
                ran += 1;
                if let Err(e) = script::run(&script) {
                    failures.push(format!("the script of {}: {e}", doc.display()));
                }
            } else {
                eprintln!(
                    "skipped (a program it calls is missing): the script of {}",
                    doc.display()
                );
            }
        }
        let (commands, unlabelled) = extract(&doc.display().to_string(), &text);
        for cmd in unlabelled {
            failures.push(format!(
                "{cmd}: a command outside a shell block; fence it as ```sh so it is run"
            ));
        }
        if commands.is_empty() {
            continue;
        }
        let mut plans = Vec::new();
        for cmd in &commands {
            match plan(cmd, &meta, &as_written) {
                Ok(Plan::NotRun(why)) => eprintln!("not run: {cmd}: {why}"),
                Ok(Plan::Run(simples)) if simples.is_empty() => {
                    eprintln!("checked, not run: {cmd}: what it names exists (cargo metadata)");
                }
                Ok(Plan::Run(simples)) => plans.push((cmd.clone(), simples)),
                Err(e) => failures.push(format!("{cmd}: {e}")),
            }
        }
        if plans.is_empty() {
            continue;
        }
        let mut world = World::start();
        for (cmd, simples) in &plans {
            if !curl && simples.iter().any(|s| s.program() == "curl") {
                eprintln!("skipped (curl is not installed): {cmd}");
                continue;
            }
            eprintln!("running: {cmd}");
            ran += 1;
            if let Err(e) = world.run(cmd, &meta) {
                failures.push(format!("{cmd}: {e}"));
            }
        }
        for problem in world.finish() {
            failures.push(format!("{}: {problem}", doc.display()));
        }
    }
    assert!(ran > 0, "no documented command ran");
    assert!(
        failures.is_empty(),
        "{} documented command(s) do not work as written:\n\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}

/// The harness itself refuses what it cannot vouch for, so the documents cannot drift past it.
#[test]
fn unknown_programs_packages_and_shell_syntax_are_refused() {
    let meta = Metadata::load();
    let cmd = |text: &str| DocCommand {
        doc: "test.md".into(),
        line: 1,
        text: text.into(),
    };
    let refused = |text: &str| plan(&cmd(text), &meta, &as_written).is_err();
    assert!(refused("systemctl reload mtasts-resolver"));
    assert!(refused("cargo bench -p mtasts --bench no_such_bench"));
    assert!(refused("cargo test -p no-such-package"));
    assert!(refused("mtasts check example.com | head"));
    assert!(refused("TOKEN=$(mtasts admin token create)"));
    assert!(refused(
        "BENCH_NO_SUCH=1 cargo bench -p mtasts --bench bulk_check"
    ));
    assert!(!refused(
        "BENCH_DOMAINS=10 cargo bench -p mtasts --bench bulk_check"
    ));
    assert!(matches!(
        plan(
            &cmd("python3 -m venv /tmp/x && /tmp/x/bin/pip install y"),
            &meta,
            &as_written
        ),
        Ok(Plan::NotRun(_))
    ));
    let Ok(Plan::Run(simples)) = plan(
        &cmd("cargo run --release -p mtasts -- check a.test"),
        &meta,
        &as_written,
    ) else {
        panic!("cargo run -p mtasts is run as mtasts");
    };
    assert_eq!(simples[0].argv, ["mtasts", "check", "a.test"]);

    let md = "text\n\n```sh\nmtasts check a.test   # comment\nmtasts generate a.test \\\n    --mode enforce\n# only a comment\n```\n\n```\nnot a command\n```\n\n```text\nmtasts check hidden.test\n```\n\n```console\n$ mtasts query a.test\noutput\n```\n";
    let (commands, unlabelled) = extract("t.md", md);
    let texts: Vec<_> = commands.into_iter().map(|c| (c.line, c.text)).collect();
    assert_eq!(
        texts,
        [
            (4, "mtasts check a.test   # comment".to_owned()),
            (5, "mtasts generate a.test --mode enforce".to_owned()),
            (19, "mtasts query a.test".to_owned()),
        ]
    );
    let unlabelled: Vec<_> = unlabelled.into_iter().map(|c| (c.line, c.text)).collect();
    assert_eq!(unlabelled, [(15, "mtasts check hidden.test".to_owned())]);

    // Script blocks are not emulated: they form one bash script, in order.
    let md = "```sh\nmtasts check a.test\n```\n\n```sh script\nmtasts serve &\n```\n\n```sh script\nkill %1 && wait\n```\n";
    let (commands, unlabelled) = extract("t.md", md);
    let texts: Vec<_> = commands.into_iter().map(|c| c.text).collect();
    assert_eq!(texts, ["mtasts check a.test"]);
    assert!(unlabelled.is_empty());
    assert_eq!(
        script::script("t.md", md).unwrap(),
        "# t.md:5\nmtasts serve &\n# t.md:9\nkill %1 && wait\n"
    );
    assert_eq!(
        script::script("t.md", "```sh\nmtasts check a.test\n```\n"),
        None
    );
}
