//! What the `mtasts tlsrpt` tests share (included by each `tlsrpt_*.rs` as `mod tlsrpt_support`):
//! a sequence of delivery results as Postfix reports them through libtlsrpt (several domains,
//! every policy type, successes, every failure code, odd characters), a `mtasts resolver` with
//! `[tlsrpt]` enabled in a temporary directory, the `mtasts` commands run against its
//! configuration, and the reports `mtasts tlsrpt report --out` writes, read back.

// Each test binary uses only some of these.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// One failure detail of a policy, as libtlsrpt's `tlsrpt_add_failure_details` takes it.
#[derive(Clone, Debug)]
pub(crate) struct Failure {
    /// libtlsrpt's failure code (201…306, 901).
    pub(crate) code: u16,
    pub(crate) sending_ip: Option<&'static str>,
    pub(crate) mx_name: Option<&'static str>,
    pub(crate) mx_helo: Option<&'static str>,
    pub(crate) mx_ip: Option<&'static str>,
    pub(crate) additional: Option<&'static str>,
    pub(crate) reason: Option<&'static str>,
}

/// One policy of a delivery request.
#[derive(Clone, Debug)]
pub(crate) struct Policy {
    /// libtlsrpt's policy type: 1 TLSA, 2 STS, 9 no-policy-found.
    pub(crate) policy_type: u8,
    pub(crate) domain: Option<&'static str>,
    pub(crate) strings: &'static [&'static str],
    pub(crate) mx: &'static [&'static str],
    pub(crate) failed: bool,
    pub(crate) failures: Vec<Failure>,
}

/// One delivery request (one datagram).
#[derive(Clone, Debug)]
pub(crate) struct Session {
    pub(crate) domain: &'static str,
    pub(crate) record: &'static str,
    pub(crate) policies: Vec<Policy>,
}

/// Every libtlsrpt failure code (interop.md §2).
pub(crate) const FAILURE_CODES: &[u16] =
    &[201, 202, 203, 204, 205, 301, 302, 303, 304, 305, 306, 901];

/// Strings no report generator should mangle: quotes, backslashes, control characters,
/// non-ASCII letters, an emoji, markup characters.
pub(crate) const ODD: &str = "odd \"quoted\" back\\slash\ttab é ü 漢 😀 <&> ';";

const STS_STRINGS: &[&str] = &[
    "version: STSv1",
    "mode: testing",
    "mx: mx1.alpha.test",
    "mx: *.alpha.test",
    "max_age: 86400",
];
const STS_MX: &[&str] = &["mx1.alpha.test", "*.alpha.test"];
const TLSA_STRINGS: &[&str] = &[
    "3 1 1 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
    "2 0 1 fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210",
];
const ODD_STRINGS: &[&str] = &[
    "version: STSv1",
    "mode: enforce",
    "mx: odd \"quoted\" back\\slash\ttab é ü 漢 😀 <&> ';",
    "max_age: 604800",
];
const ODD_MX: &[&str] = &["odd \"quoted\" back\\slash\ttab é ü 漢 😀 <&> ';"];

/// The TLSRPT records of the sequence, each with its own rua (so a report can be told by
/// where it is sent).
pub(crate) const ALPHA_RECORD: &str = "v=TLSRPTv1; rua=mailto:tlsrpt@alpha.test";
pub(crate) const ALPHA_RECORD_2: &str =
    "v=TLSRPTv1;rua=https://reports.alpha.test/v1/tlsrpt,mailto:tls-2@alpha.test";
pub(crate) const BETA_RECORD: &str = "v=TLSRPTv1; rua=https://reports.beta.test/tlsrpt";
pub(crate) const GAMMA_RECORD: &str = "v=TLSRPTv1; rua=mailto:reports@gamma.test";
pub(crate) const ODD_RECORD: &str = "v=TLSRPTv1; rua=mailto:tlsrpt@odd.test";

fn failure(code: u16) -> Failure {
    Failure {
        code,
        sending_ip: Some("192.0.2.10"),
        mx_name: Some("mx1.beta.test"),
        mx_helo: Some("mx1.beta.test"),
        mx_ip: Some("198.51.100.25"),
        additional: None,
        reason: None,
    }
}

/// The sequence: successes and failures under each policy type, every failure code (with all
/// fields, with none), repeated sessions (counts above 1), a domain written in capitals with
/// a trailing dot (the same domain as its lower-case form), a domain whose record changed
/// during the day (two reports), several policies in one datagram, odd characters in every
/// string a policy and a failure can carry.
pub(crate) fn sequence() -> Vec<Session> {
    let sts = |failed: bool, failures: Vec<Failure>| Policy {
        policy_type: 2,
        domain: Some("alpha.test"),
        strings: STS_STRINGS,
        mx: STS_MX,
        failed,
        failures,
    };
    let mut out = Vec::new();
    // alpha.test: STS successes (one spelled Alpha.TEST.), STS failures, then a new record.
    for _ in 0..5 {
        out.push(Session {
            domain: "alpha.test",
            record: ALPHA_RECORD,
            policies: vec![sts(false, vec![])],
        });
    }
    out.push(Session {
        domain: "Alpha.TEST.",
        record: ALPHA_RECORD,
        policies: vec![sts(false, vec![])],
    });
    for _ in 0..3 {
        out.push(Session {
            domain: "alpha.test",
            record: ALPHA_RECORD,
            policies: vec![sts(
                true,
                vec![Failure {
                    code: 202,
                    sending_ip: Some("192.0.2.1"),
                    mx_name: Some("mx1.alpha.test"),
                    mx_helo: Some("mx1.alpha.test"),
                    mx_ip: Some("203.0.113.5"),
                    additional: Some("https://sender.test/why"),
                    reason: Some("X509_V_ERR_HOSTNAME_MISMATCH"),
                }],
            )],
        });
    }
    out.push(Session {
        domain: "alpha.test",
        record: ALPHA_RECORD_2,
        policies: vec![sts(false, vec![])],
    });
    // beta.test: DANE (TLSA) successes, then every failure code once under TLSA, with all
    // fields; then the same codes with no field but the code.
    for _ in 0..2 {
        out.push(Session {
            domain: "beta.test",
            record: BETA_RECORD,
            policies: vec![Policy {
                policy_type: 1,
                domain: Some("beta.test"),
                strings: TLSA_STRINGS,
                mx: &[],
                failed: false,
                failures: vec![],
            }],
        });
    }
    for &code in FAILURE_CODES {
        out.push(Session {
            domain: "beta.test",
            record: BETA_RECORD,
            policies: vec![Policy {
                policy_type: 1,
                domain: Some("beta.test"),
                strings: TLSA_STRINGS,
                mx: &[],
                failed: true,
                failures: vec![failure(code)],
            }],
        });
        out.push(Session {
            domain: "beta.test",
            record: BETA_RECORD,
            policies: vec![Policy {
                policy_type: 1,
                domain: Some("beta.test"),
                strings: TLSA_STRINGS,
                mx: &[],
                failed: true,
                failures: vec![Failure {
                    code,
                    sending_ip: None,
                    mx_name: None,
                    mx_helo: None,
                    mx_ip: None,
                    additional: None,
                    reason: None,
                }],
            }],
        });
    }
    // gamma.test: no policy found, with and without a policy domain; a success and a
    // starttls-not-supported failure; and a datagram with two policies (no-policy-found and STS).
    for _ in 0..4 {
        out.push(Session {
            domain: "gamma.test",
            record: GAMMA_RECORD,
            policies: vec![Policy {
                policy_type: 9,
                domain: None,
                strings: &[],
                mx: &[],
                failed: false,
                failures: vec![],
            }],
        });
    }
    out.push(Session {
        domain: "gamma.test",
        record: GAMMA_RECORD,
        policies: vec![Policy {
            policy_type: 9,
            domain: Some("gamma.test"),
            strings: &[],
            mx: &[],
            failed: true,
            failures: vec![Failure {
                code: 201,
                sending_ip: Some("2001:db8::1"),
                mx_name: Some("mx.gamma.test"),
                mx_helo: None,
                mx_ip: Some("2001:db8::25"),
                additional: None,
                reason: None,
            }],
        }],
    });
    out.push(Session {
        domain: "gamma.test",
        record: GAMMA_RECORD,
        policies: vec![
            Policy {
                policy_type: 9,
                domain: Some("gamma.test"),
                strings: &[],
                mx: &[],
                failed: false,
                failures: vec![],
            },
            Policy {
                policy_type: 2,
                domain: Some("gamma.test"),
                strings: &[
                    "version: STSv1",
                    "mode: enforce",
                    "mx: mx.gamma.test",
                    "max_age: 3600",
                ],
                mx: &["mx.gamma.test"],
                failed: false,
                failures: vec![],
            },
        ],
    });
    // odd.test: odd characters in the policy strings, MX patterns and every failure field.
    for failed in [false, true, true] {
        out.push(Session {
            domain: "odd.test",
            record: ODD_RECORD,
            policies: vec![Policy {
                policy_type: 2,
                domain: Some("odd.test"),
                strings: ODD_STRINGS,
                mx: ODD_MX,
                failed,
                failures: if failed {
                    vec![Failure {
                        code: 203,
                        sending_ip: Some("192.0.2.99"),
                        mx_name: Some(ODD),
                        mx_helo: Some(ODD),
                        mx_ip: Some("198.51.100.99"),
                        additional: Some(ODD),
                        reason: Some(ODD),
                    }]
                } else {
                    vec![]
                },
            }],
        });
    }
    out
}

/// The datagram libtlsrpt sends for `session`, byte for byte (the testkit's emitter): the
/// calls Postfix makes, in its order.
pub(crate) fn datagram(session: &Session) -> Vec<u8> {
    use mtasts_testkit::libtlsrpt::{DeliveryRequest, Failure as LibFailure};
    let mut request = DeliveryRequest::new(session.domain.as_bytes(), session.record.as_bytes());
    for policy in &session.policies {
        request.init_policy(
            i32::from(policy.policy_type),
            policy.domain.map(str::as_bytes),
        );
        for line in policy.strings {
            request.add_policy_string(line.as_bytes());
        }
        for pattern in policy.mx {
            request.add_mx_host_pattern(pattern.as_bytes());
        }
        for f in &policy.failures {
            request.add_failure(&LibFailure {
                code: i32::from(f.code),
                sending_mta_ip: f.sending_ip.map(str::as_bytes),
                receiving_mx_hostname: f.mx_name.map(str::as_bytes),
                receiving_mx_helo: f.mx_helo.map(str::as_bytes),
                receiving_ip: f.mx_ip.map(str::as_bytes),
                additional_information: f.additional.map(str::as_bytes),
                failure_reason_code: f.reason.map(str::as_bytes),
            });
        }
        request.finish_policy(i32::from(policy.failed));
    }
    request.finish()
}

/// The sequence's records by the rua they name (each rua belongs to one record).
pub(crate) fn record_of_rua() -> BTreeMap<String, &'static str> {
    let mut out = BTreeMap::new();
    for record in [
        ALPHA_RECORD,
        ALPHA_RECORD_2,
        BETA_RECORD,
        GAMMA_RECORD,
        ODD_RECORD,
    ] {
        let rua = record.split("rua=").nth(1).unwrap();
        for uri in rua.split(',') {
            out.insert(uri.trim().to_owned(), record);
        }
    }
    out
}

/// The (recipient domain, record) pairs the sequence has results for.
pub(crate) fn expected_groups() -> Vec<(String, &'static str)> {
    let mut out: Vec<_> = sequence()
        .iter()
        .map(|s| (s.domain.trim_end_matches('.').to_lowercase(), s.record))
        .collect();
    out.sort();
    out.dedup();
    out
}

/// Sends every datagram of `sessions` to the socket at `path`.
pub(crate) fn send_all(path: &Path, sessions: &[Session]) {
    let socket = UnixDatagram::unbound().unwrap();
    for session in sessions {
        let bytes = datagram(session);
        socket
            .send_to(&bytes, path)
            .unwrap_or_else(|e| panic!("sending a datagram to {}: {e}", path.display()));
    }
}

/// The number of policy results in `sessions` (what the collector counts).
pub(crate) fn policy_count(sessions: &[Session]) -> u64 {
    sessions.iter().map(|s| s.policies.len() as u64).sum()
}

/// Waits until `path` exists (a socket a daemon binds), at most 30 s.
pub(crate) fn wait_for_path(path: &Path, child: &mut Child, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !path.exists() {
        if let Ok(Some(status)) = child.try_wait() {
            panic!(
                "{what} exited ({status}) before creating {}",
                path.display()
            );
        }
        assert!(
            Instant::now() < deadline,
            "{what} did not create {} within 30 s",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A child process killed when dropped.
pub(crate) struct Daemon(pub(crate) Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A `mtasts resolver` with `[tlsrpt]` enabled in a directory of its own: the datagram socket
/// at `socket`, the store in `tlsrpt.sqlite`, no socketmap or HTTP listener unless `extra`
/// adds one.
pub(crate) struct Resolver {
    pub(crate) dir: tempfile::TempDir,
    pub(crate) config: PathBuf,
    pub(crate) socket: PathBuf,
    pub(crate) daemon: Daemon,
}

impl Resolver {
    /// Writes the configuration and starts the resolver: `top` adds top-level keys, `tlsrpt`
    /// more `[tlsrpt]` keys, `tables` more tables (`[tlsrpt.mail]`…), each as TOML lines.
    pub(crate) fn start(top: &str, tlsrpt: &str, tables: &str) -> Resolver {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("tlsrpt.sock");
        let config = dir.path().join("mtasts.toml");
        std::fs::write(
            &config,
            format!(
                r#"data_dir = "{data}"
{top}

[socketmap]
tcp = []

[http]
listen = []

[tlsrpt]
enabled = true
organization = "mtasts test sender"
contact = "tlsrpt@sender.test"
database = "sqlite:{data}/tlsrpt.sqlite"
socket = {{ path = "{socket}", mode = "0600" }}
commit_interval_ms = 50
{tlsrpt}

{tables}
"#,
                data = dir.path().display(),
                socket = socket.display(),
            ),
        )
        .unwrap();
        let mut child = mtasts_command(&config, &["resolver"])
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.path().join("resolver.log")).unwrap())
            .spawn()
            .expect("start mtasts resolver");
        wait_for_path(&socket, &mut child, "mtasts resolver");
        Resolver {
            dir,
            config,
            socket,
            daemon: Daemon(child),
        }
    }

    /// Stops the resolver with SIGTERM and waits (at most 30 s) until it has exited.
    pub(crate) fn stop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.daemon.0.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(Some(_)) = self.daemon.0.try_wait() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the resolver did not stop on SIGTERM\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// `mtasts ARGS… --config <this resolver's>` run to its end.
    pub(crate) fn mtasts(&self, args: &[&str]) -> Output {
        mtasts_command(&self.config, args)
            .stdin(Stdio::null())
            .output()
            .expect("run mtasts")
    }

    /// Like [`Resolver::mtasts`], failing the test unless it exits 0; returns standard output.
    pub(crate) fn mtasts_ok(&self, args: &[&str]) -> String {
        let out = self.mtasts(args);
        assert!(
            out.status.success(),
            "mtasts {args:?} exited {:?}\nstdout:\n{}\nstderr:\n{}\nresolver log:\n{}",
            out.status.code(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            self.log(),
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// What the resolver logged so far.
    pub(crate) fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("resolver.log")).unwrap_or_default()
    }

    /// Waits until `mtasts tlsrpt status --json` counts `n` results today (at most 30 s).
    pub(crate) fn wait_for_results(&self, n: u64) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let status: Value =
                serde_json::from_str(&self.mtasts_ok(&["tlsrpt", "status", "--json"]))
                    .expect("status --json is JSON");
            let got = today_results(&status);
            if got == n {
                return;
            }
            assert!(
                got < n && Instant::now() < deadline,
                "the resolver counts {got} results today, expected {n}\nstatus: {status:#}\nlog:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// Today's result count in `mtasts tlsrpt status --json` (successes and failures).
pub(crate) fn today_results(status: &Value) -> u64 {
    let today = &status["today"];
    today["successes"].as_u64().unwrap_or(0) + today["failures"].as_u64().unwrap_or(0)
}

/// `mtasts ARGS… --config FILE` with nothing from the environment's configuration.
pub(crate) fn mtasts_command(config: &Path, args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_mtasts"));
    for (k, _) in std::env::vars() {
        if k.starts_with("MTASTS_") && k != "MTASTS_LOG" {
            command.env_remove(k);
        }
    }
    command
        .args(args)
        .arg("--config")
        .arg(config)
        .env("NO_COLOR", "1");
    command
}

/// One report `mtasts tlsrpt report --out` wrote, with its `index.json` entry.
#[derive(Debug)]
pub(crate) struct WrittenReport {
    pub(crate) file: String,
    pub(crate) domain: String,
    pub(crate) record: String,
    pub(crate) rua: Vec<String>,
    pub(crate) report_id: String,
    pub(crate) json: Value,
}

/// Reads `index.json` and every file it names from `dir`.
pub(crate) fn read_reports(dir: &Path) -> Vec<WrittenReport> {
    let index: Value = serde_json::from_slice(
        &std::fs::read(dir.join("index.json")).expect("index.json is written"),
    )
    .expect("index.json is JSON");
    let entries = index.as_array().expect("index.json is an array");
    let mut out = Vec::new();
    for entry in entries {
        let file = entry["file"].as_str().expect("file").to_owned();
        let text = std::fs::read(dir.join(&file))
            .unwrap_or_else(|e| panic!("index.json names {file}, which cannot be read: {e}"));
        out.push(WrittenReport {
            domain: entry["domain"].as_str().expect("domain").to_owned(),
            record: entry["record"].as_str().expect("record").to_owned(),
            rua: entry["rua"]
                .as_array()
                .expect("rua")
                .iter()
                .map(|r| r.as_str().unwrap().to_owned())
                .collect(),
            report_id: entry["report-id"].as_str().expect("report-id").to_owned(),
            json: serde_json::from_slice(&text).expect("report is JSON"),
            file,
        });
    }
    out
}

/// The UTC day of now as `YYYY-MM-DD`, waiting first when midnight is less than `margin`
/// away, so that a test's results all fall on one day.
pub(crate) fn day_with_margin(margin: Duration) -> String {
    loop {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        let left = 86_400 - now.rem_euclid(86_400);
        if left as u64 > margin.as_secs() {
            return mtasts_proto::readiness::date::iso_day(now);
        }
        std::thread::sleep(Duration::from_secs(left as u64 + 1));
    }
}

/// One POST an [`HttpsReceiver`] received, and what it answered.
#[derive(Clone, Debug)]
pub(crate) struct Posted {
    pub(crate) path: String,
    pub(crate) content_type: Option<String>,
    pub(crate) body: Vec<u8>,
    pub(crate) status: u16,
}

/// An HTTPS report receiver on loopback (a real TLS server with a certificate from `ca`
/// for `host`): it answers each POST with the next status of its plan (200 once the plan is
/// used up) and keeps what it received.
pub(crate) struct HttpsReceiver {
    pub(crate) addr: std::net::SocketAddr,
    posted: std::sync::Arc<std::sync::Mutex<Vec<Posted>>>,
}

impl HttpsReceiver {
    pub(crate) fn start(
        ip: std::net::IpAddr,
        host: &str,
        ca: &mtasts_testkit::ca::TestCa,
        plan: &[u16],
    ) -> HttpsReceiver {
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        let config = ca
            .issue(host, &mtasts_testkit::ca::CertSpec::Valid)
            .server_config(&[b"http/1.1"]);
        let listener = std::net::TcpListener::bind((ip, 0)).unwrap();
        let addr = listener.local_addr().unwrap();
        let posted = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let plan = std::sync::Arc::new(std::sync::Mutex::new(
            plan.iter()
                .copied()
                .collect::<std::collections::VecDeque<u16>>(),
        ));
        let log = posted.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let (config, log, plan) = (config.clone(), log.clone(), plan.clone());
                std::thread::spawn(move || {
                    let _ = serve_one(stream, config, &log, &plan);
                });
            }
        });
        HttpsReceiver { addr, posted }
    }

    /// Every POST so far.
    pub(crate) fn posted(&self) -> Vec<Posted> {
        self.posted.lock().unwrap().clone()
    }
}

fn serve_one(
    stream: std::net::TcpStream,
    config: std::sync::Arc<rustls::ServerConfig>,
    log: &std::sync::Mutex<Vec<Posted>>,
    plan: &std::sync::Mutex<std::collections::VecDeque<u16>>,
) -> std::io::Result<()> {
    use std::io::{Read, Write};
    stream.set_read_timeout(Some(Duration::from_secs(20)))?;
    let connection = rustls::ServerConnection::new(config).map_err(std::io::Error::other)?;
    let mut tls = rustls::StreamOwned::new(connection, stream);
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = tls.read(&mut chunk)?;
        if n == 0 || buf.len() > 65_536 {
            return Ok(());
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let request_line = lines.next().unwrap_or("");
    let path = request_line.split(' ').nth(1).unwrap_or("").to_owned();
    let mut length = 0usize;
    let mut content_type = None;
    for line in lines {
        if let Some((name, value)) = line.split_once(':') {
            if name.eq_ignore_ascii_case("content-length") {
                length = value.trim().parse().unwrap_or(0);
            } else if name.eq_ignore_ascii_case("content-type") {
                content_type = Some(value.trim().to_owned());
            }
        }
    }
    let mut body = buf[head_end..].to_vec();
    while body.len() < length {
        let n = tls.read(&mut chunk)?;
        if n == 0 {
            break;
        }
        body.extend_from_slice(&chunk[..n]);
    }
    let status = plan.lock().unwrap().pop_front().unwrap_or(200);
    log.lock().unwrap().push(Posted {
        path,
        content_type,
        body,
        status,
    });
    let reason = if status == 200 { "OK" } else { "Error" };
    write!(
        tls,
        "HTTP/1.1 {status} {reason}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )?;
    tls.flush()?;
    tls.conn.send_close_notify();
    let _ = tls.flush();
    Ok(())
}
