//! `mtasts report fetch` through the binary, against a real Dovecot on loopback (testkit's
//! `dovecot`) and a real database: sample report mails stored in SQLite and marked, a second
//! run importing nothing, STARTTLS with the password from the environment, a wrong password
//! and an unknown CA refused (exit 2), the move and delete modes, an oversized message,
//! `--watch` importing a message that arrives while it idles and stopping on SIGTERM, and — on
//! PostgreSQL behind a proxy that is cut — a message that cannot be stored left unmarked and
//! imported once the database is back.

use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use mtasts_store::reports::{Filter, ReportDb};
use mtasts_testkit::dovecot::{Dovecot, MaildirMessage};
use mtasts_testkit::proxy::TcpProxy;
use mtasts_testkit::{CertSpec, TestCa};

#[path = "support/report.rs"]
mod support;

use support::{drop_schema, last_line, postgres_schema, samples, stderr, stdout};

/// Real report mails from the samples, one report each.
const MAILS: &[&str] = &[
    "tlsrpt/mox/example.eml",
    "tlsrpt/mox/microsoft.eml",
    "dmarc/mox/google.eml",
];

const KEYWORD: &str = "$MtastsImported";

struct World {
    ca: TestCa,
    dovecot: Dovecot,
    dir: tempfile::TempDir,
    samples: PathBuf,
}

fn world() -> Option<World> {
    let samples = samples()?;
    let ca = TestCa::new();
    let cert = ca.issue("localhost", &CertSpec::Valid);
    let dovecot = Dovecot::start_or_skip(&cert, "reports", "pa55 word")?;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("password"), "pa55 word\n").unwrap();
    support::serve_config(dir.path());
    Some(World {
        ca,
        dovecot,
        dir,
        samples,
    })
}

impl World {
    fn url(&self, scheme: &str) -> String {
        let port = match scheme {
            "imaps" => self.dovecot.imaps().port(),
            _ => self.dovecot.imap().port(),
        };
        format!("{scheme}://reports@localhost:{port}/INBOX")
    }

    fn command(&self, extra: &[&str]) -> Command {
        let mut command = support::command(&["report", "fetch", "--ca-file"]);
        command
            .arg(self.ca.root_file())
            .arg("--no-builtin-roots")
            .args(extra)
            .env("MTASTS_SERVE_CONFIG", self.dir.path().join("serve.toml"))
            .env_remove("MTASTS_IMAP_PASSWORD")
            .env_remove("SSL_CERT_FILE");
        command
    }

    /// `mtasts report fetch --imap imaps://… --password-file … EXTRA…`.
    fn fetch(&self, extra: &[&str]) -> Output {
        let password = self.dir.path().join("password");
        let mut args = vec![
            "--imap".to_owned(),
            self.url("imaps"),
            "--password-file".to_owned(),
            password.display().to_string(),
        ];
        args.extend(extra.iter().map(|s| (*s).to_owned()));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        self.command(&args).output().unwrap()
    }

    fn deliver_samples(&self) {
        for path in MAILS {
            self.deliver_sample(path);
        }
    }

    fn deliver_sample(&self, path: &str) {
        let bytes = std::fs::read(self.samples.join(path)).unwrap();
        self.dovecot.deliver("INBOX", &bytes).unwrap();
    }

    fn inbox(&self) -> Vec<MaildirMessage> {
        self.dovecot.messages("INBOX").unwrap()
    }

    fn sqlite(&self) -> String {
        format!("sqlite:{}", self.dir.path().join("data/serve.db").display())
    }
}

fn all_marked(messages: &[MaildirMessage]) -> bool {
    messages.iter().all(|m| m.keywords == [KEYWORD])
}

async fn sources(url: &str) -> Vec<String> {
    let db = ReportDb::open(url).await.unwrap();
    let rows = db.list(&Filter::default(), 100).await.unwrap();
    db.close().await;
    rows.into_iter().map(|r| r.source).collect()
}

#[tokio::test]
async fn fetch_stores_the_sample_mails_marks_them_and_a_second_run_imports_nothing() {
    let Some(w) = world() else { return };
    w.deliver_samples();
    let out = w.fetch(&[]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    assert_eq!(last_line(&out), "3 messages, 3 new, 0 duplicate, 0 error");
    assert!(all_marked(&w.inbox()));
    let sources = sources(&w.sqlite()).await;
    assert_eq!(sources.len(), 3);
    let prefix = format!("{}#", w.url("imaps"));
    assert!(
        sources.iter().all(|s| s.starts_with(&prefix)),
        "{sources:?}"
    );

    let again = w.fetch(&[]);
    assert_eq!(again.status.code(), Some(0), "{}", stderr(&again));
    assert_eq!(last_line(&again), "0 messages, 0 new, 0 duplicate, 0 error");

    // The same report mailed again is a duplicate, not a new report.
    w.deliver_sample(MAILS[0]);
    let resent = w.fetch(&[]);
    assert_eq!(
        last_line(&resent),
        "1 messages, 0 new, 1 duplicate, 0 error"
    );
    assert!(all_marked(&w.inbox()));
}

#[tokio::test]
async fn starttls_with_the_password_from_the_environment() {
    let Some(w) = world() else { return };
    w.deliver_samples();
    let out = w
        .command(&["--imap", &w.url("imap")])
        .env("MTASTS_IMAP_PASSWORD", "pa55 word")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(last_line(&out), "3 messages, 3 new, 0 duplicate, 0 error");
    assert!(all_marked(&w.inbox()));
}

#[tokio::test]
async fn no_password_a_wrong_password_and_a_password_in_the_url_are_refused() {
    let Some(w) = world() else { return };
    w.deliver_samples();
    let none = w.command(&["--imap", &w.url("imaps")]).output().unwrap();
    assert_eq!(none.status.code(), Some(2));
    assert!(
        stderr(&none).contains("MTASTS_IMAP_PASSWORD"),
        "{}",
        stderr(&none)
    );

    let wrong = w
        .command(&["--imap", &w.url("imaps")])
        .env("MTASTS_IMAP_PASSWORD", "wrong")
        .output()
        .unwrap();
    assert_eq!(wrong.status.code(), Some(2));
    assert!(
        stderr(&wrong).contains("login refused"),
        "{}",
        stderr(&wrong)
    );

    let in_url = w
        .command(&[
            "--imap",
            &format!(
                "imaps://reports:pa55@localhost:{}/INBOX",
                w.dovecot.imaps().port()
            ),
        ])
        .env("MTASTS_IMAP_PASSWORD", "pa55 word")
        .output()
        .unwrap();
    assert_eq!(in_url.status.code(), Some(2));
    assert!(stderr(&in_url).contains("password"), "{}", stderr(&in_url));
    assert!(w.inbox().iter().all(|m| m.keywords.is_empty()));
}

#[tokio::test]
async fn a_certificate_from_an_unknown_ca_is_refused() {
    let Some(w) = world() else { return };
    w.deliver_samples();
    let other = TestCa::new();
    let out = support::command(&[
        "report",
        "fetch",
        "--imap",
        &w.url("imaps"),
        "--no-builtin-roots",
    ])
    .arg("--ca-file")
    .arg(other.root_file())
    .env("MTASTS_IMAP_PASSWORD", "pa55 word")
    .env("MTASTS_SERVE_CONFIG", w.dir.path().join("serve.toml"))
    .env_remove("SSL_CERT_FILE")
    .output()
    .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("certificate"), "{}", stderr(&out));
    assert!(w.inbox().iter().all(|m| m.keywords.is_empty()));
}

#[tokio::test]
async fn move_and_delete_modes() {
    let Some(w) = world() else { return };
    w.deliver_samples();
    let out = w.fetch(&["--processed", "move:Processed"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(last_line(&out), "3 messages, 3 new, 0 duplicate, 0 error");
    assert!(w.inbox().is_empty());
    assert_eq!(w.dovecot.messages("Processed").unwrap().len(), 3);

    w.deliver_samples();
    let out = w.fetch(&["--processed", "delete"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(last_line(&out), "3 messages, 0 new, 3 duplicate, 0 error");
    assert!(w.inbox().is_empty());
    assert_eq!(w.dovecot.messages("Processed").unwrap().len(), 3);
}

#[tokio::test]
async fn an_oversized_message_is_an_error_and_is_not_retried() {
    let Some(w) = world() else { return };
    w.deliver_sample("tlsrpt/mox/example.eml");
    let out = w.fetch(&["--max-message-bytes", "1K"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert_eq!(last_line(&out), "1 messages, 0 new, 0 duplicate, 1 error");
    assert!(stdout(&out).contains(": too-large: "), "{}", stdout(&out));
    assert!(all_marked(&w.inbox()));
    let again = w.fetch(&["--max-message-bytes", "1K"]);
    assert_eq!(last_line(&again), "0 messages, 0 new, 0 duplicate, 0 error");
}

#[tokio::test]
async fn watch_imports_what_arrives_and_stops_on_sigterm() {
    let Some(w) = world() else { return };
    let child = w
        .command(&["--imap", &w.url("imaps"), "--watch"])
        .env("MTASTS_IMAP_PASSWORD", "pa55 word")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut child = Running(Some(child));
    wait_for("the login", || {
        w.dovecot.log().contains("Login: user=<reports>")
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    w.deliver_sample(MAILS[2]);
    wait_for("the message marked", || {
        let inbox = w.inbox();
        !inbox.is_empty() && all_marked(&inbox)
    })
    .await;
    let out = child.sigterm().await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(last_line(&out), "1 messages, 1 new, 0 duplicate, 0 error");
    assert_eq!(sources(&w.sqlite()).await.len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_message_the_database_cannot_take_stays_unmarked_until_it_is_back() {
    let Some(w) = world() else { return };
    let Some(url) = postgres_schema("fetch_") else {
        return;
    };
    let upstream = upstream_addr(&url);
    let proxy = TcpProxy::start(upstream).await;
    let via_proxy = url.replacen(&upstream.to_string(), &proxy.addr().to_string(), 1);
    let child = w
        .command(&[
            "--imap",
            &w.url("imaps"),
            "--watch",
            "--database",
            &via_proxy,
        ])
        .env("MTASTS_IMAP_PASSWORD", "pa55 word")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut child = Running(Some(child));
    wait_for("the login", || {
        w.dovecot.log().contains("Login: user=<reports>")
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    proxy.cut();
    w.deliver_sample(MAILS[0]);
    // The pass runs, the store fails, the session ends: the message stays unmarked.
    wait_for("a second login (the reconnection)", || {
        w.dovecot.log().matches("Login: user=<reports>").count() >= 2
    })
    .await;
    assert_eq!(w.inbox().len(), 1);
    assert!(
        w.inbox()[0].keywords.is_empty(),
        "marked without being stored"
    );
    proxy.restore();
    wait_for("the message marked", || all_marked(&w.inbox())).await;
    let out = child.sigterm().await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(last_line(&out), "1 messages, 1 new, 0 duplicate, 0 error");
    assert_eq!(sources(&url).await.len(), 1);
    drop_schema(&url);
}

fn upstream_addr(url: &str) -> std::net::SocketAddr {
    let host = url
        .split("://")
        .nth(1)
        .and_then(|rest| rest.split('@').next_back())
        .and_then(|rest| rest.split('/').next())
        .expect("host:port in the PostgreSQL URL");
    std::net::ToSocketAddrs::to_socket_addrs(host)
        .expect("resolvable PostgreSQL host")
        .next()
        .expect("an address")
}

/// A running `mtasts report fetch --watch`, killed if the test ends early.
struct Running(Option<Child>);

impl Running {
    async fn sigterm(&mut self) -> Output {
        let child = self.0.take().expect("running");
        let status = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        tokio::time::timeout(
            Duration::from_secs(20),
            tokio::task::spawn_blocking(move || child.wait_with_output().unwrap()),
        )
        .await
        .expect("stops within 20 s of SIGTERM")
        .unwrap()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

async fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(45);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
