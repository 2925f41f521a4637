//! Real Postfix receiving, end to end: Debian's Postfix smtpd (a private instance on
//! 127.0.0.1, STARTTLS with a certificate from the test CA, `smtpd_tls_ask_ccert = yes`
//! with the test CA as `smtpd_tls_CAfile`) asks the resolver's inbound policy service at
//! RCPT time (`smtpd_recipient_restrictions = check_policy_service inet:127.0.0.1:PORT,
//! permit`), and swaks, an independent SMTP client, sends mail as each partner:
//!
//! * a partner that requires TLS, without STARTTLS → refused `450 4.7.0`; with STARTTLS →
//!   accepted;
//! * a partner whose rule refuses with `550 5.7.0`, without STARTTLS → refused `550 5.7.0`;
//! * a partner with no rule → accepted with and without STARTTLS;
//! * a partner that requires a verified client certificate → refused without one and with
//!   one from an untrusted CA, accepted with one from the configured CA.
//!
//! Needs root, the `postfix` package and swaks; otherwise each test prints why it is
//! skipped and passes, unless `MTASTS_REQUIRE_SERVICES=1` (CI), where that is a failure.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use mtasts_sender::Config;
use mtasts_testkit::postfix_smtpd::{PostfixSmtpd, RECEIVING_DOMAIN, SmtpdConfig};
use mtasts_testkit::services::{self, Service};
use mtasts_testkit::{CertSpec, TestCa};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const TLS_PARTNER: &str = "tls-partner.test";
const STRICT_PARTNER: &str = "strict-partner.test";
const CERT_PARTNER: &str = "cert-partner.test";
const PINNED_PARTNER: &str = "pinned-partner.test";
const NO_RULE: &str = "stranger.test";

/// How one swaks session went.
#[derive(Debug)]
struct Session {
    /// swaks exited 0 (the message was accepted).
    accepted: bool,
    /// Its transcript.
    transcript: String,
}

/// How the client connects.
enum Client<'a> {
    Plain,
    Starttls,
    /// STARTTLS presenting this certificate and key.
    Cert(&'a Path, &'a Path),
}

async fn swaks(addr: std::net::SocketAddr, sender_domain: &str, client: Client<'_>) -> Session {
    let mut command = tokio::process::Command::new("swaks");
    command
        .args([
            "--server",
            &addr.ip().to_string(),
            "--port",
            &addr.port().to_string(),
        ])
        .args(["--from", &format!("alice@{sender_domain}")])
        .args(["--to", &format!("bob@{RECEIVING_DOMAIN}")])
        .args(["--helo", &format!("mx.{sender_domain}")])
        .args(["--timeout", "30"]);
    match client {
        Client::Plain => {}
        Client::Starttls => {
            command.arg("--tls");
        }
        Client::Cert(cert, key) => {
            command
                .arg("--tls")
                .arg("--tls-cert")
                .arg(cert)
                .arg("--tls-key")
                .arg(key);
        }
    }
    let output = command.stdin(Stdio::null()).kill_on_drop(true).output();
    let output = tokio::time::timeout(Duration::from_secs(90), output)
        .await
        .expect("swaks finished within 90 s")
        .expect("run swaks");
    Session {
        accepted: output.status.success(),
        transcript: format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ),
    }
}

/// Stops the in-process resolver when the test ends, however it ends.
struct DaemonGuard(tokio_util::sync::CancellationToken);

impl Drop for DaemonGuard {
    fn drop(&mut self) {
        self.0.cancel();
    }
}

/// The resolver as an operator would configure it for the scenarios, with only the inbound
/// policy service listening.
async fn start_resolver(
    data_dir: &Path,
    pinned: &str,
) -> (
    std::net::SocketAddr,
    Arc<mtasts_sender::Daemon>,
    DaemonGuard,
) {
    let toml = format!(
        r#"
data_dir = "{data_dir}"
[socketmap]
tcp = []
[http]
listen = []
[cache]
url = "memory"
[refresh]
enabled = false

[inbound]
tcp = ["127.0.0.1:0"]

[inbound.senders]
"{TLS_PARTNER}" = "encrypt"
"{STRICT_PARTNER}" = {{ level = "encrypt", refuse = "550 5.7.0" }}
"{CERT_PARTNER}" = {{ level = "verify", min_tls = "TLSv1.2" }}
"{PINNED_PARTNER}" = {{ level = "verify", fingerprints = ["{pinned}"] }}
"#,
        data_dir = data_dir.display(),
    );
    let config = Config::from_toml_str(&toml).expect("resolver configuration");
    let server = mtasts_sender::bind(config, None)
        .await
        .expect("bind the resolver");
    let addr = server.inbound_addrs()[0];
    let daemon = server.daemon().clone();
    let shutdown = tokio_util::sync::CancellationToken::new();
    let stop = shutdown.clone();
    tokio::spawn(async move {
        if let Err(e) = server.run(stop, Arc::new(tokio::sync::Notify::new())).await {
            panic!("resolver stopped with an error: {e}");
        }
    });
    (addr, daemon, DaemonGuard(shutdown))
}

/// The SHA-256 fingerprint of a PEM certificate, by `openssl x509` (as Postfix computes it
/// with `smtpd_tls_fingerprint_digest = sha256`).
fn sha256_fingerprint(cert: &Path) -> String {
    let output = std::process::Command::new("openssl")
        .args(["x509", "-noout", "-fingerprint", "-sha256", "-in"])
        .arg(cert)
        .output()
        .expect("run openssl");
    let text = String::from_utf8_lossy(&output.stdout);
    text.trim()
        .rsplit_once('=')
        .expect("openssl fingerprint output")
        .1
        .to_owned()
}

/// Writes a client certificate for `host` as `spec` says; returns (certificate, key) files.
fn client_cert(ca: &TestCa, dir: &Path, host: &str, spec: &CertSpec) -> (PathBuf, PathBuf) {
    let cert = ca.issue(host, spec);
    let name = host.replace('.', "_");
    let cert_file = dir.join(format!("{name}.pem"));
    let key_file = dir.join(format!("{name}.key"));
    std::fs::write(&cert_file, cert.chain_pem()).unwrap();
    std::fs::write(&key_file, cert.key_pem()).unwrap();
    (cert_file, key_file)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postfix_smtpd_enforces_inbound_tls_per_partner() {
    if !mtasts_testkit::postfix::available_or_skip()
        || !services::command_or_skip(Service::Swaks, "swaks", &["--version"])
    {
        return;
    }
    let dir = tempfile::tempdir().expect("temporary directory");
    let ca = TestCa::new();
    let good = client_cert(
        &ca,
        dir.path(),
        &format!("mx.{CERT_PARTNER}"),
        &CertSpec::Valid,
    );
    let rogue = client_cert(&ca, dir.path(), "rogue.test", &CertSpec::UntrustedIssuer);
    let (policy, daemon, _resolver) =
        start_resolver(dir.path(), &sha256_fingerprint(&rogue.0)).await;
    let smtpd = PostfixSmtpd::start(
        &ca,
        SmtpdConfig {
            policy_service: Some(format!("inet:{policy}")),
            ask_ccert: true,
            extra: Vec::new(),
        },
    )
    .await
    .expect("start the receiving Postfix");
    let addr = smtpd.addr();

    let refused = |session: &Session, code: &str, text: &str| {
        assert!(
            !session.accepted,
            "accepted:\n{}\n{}",
            session.transcript,
            smtpd.log()
        );
        let reply = format!("{code} <bob@{RECEIVING_DOMAIN}>: Recipient address rejected: ");
        assert!(
            session.transcript.contains(&reply) && session.transcript.contains(text),
            "expected {reply} … {text}:\n{}\n{}",
            session.transcript,
            smtpd.log()
        );
    };
    let accepted = |session: &Session| {
        assert!(
            session.accepted,
            "refused:\n{}\n{}",
            session.transcript,
            smtpd.log()
        );
        assert!(
            session.transcript.contains("250 2.0.0 Ok: queued"),
            "{}",
            session.transcript
        );
    };

    // A partner that requires TLS.
    let plain = swaks(addr, TLS_PARTNER, Client::Plain).await;
    refused(&plain, "450 4.7.0", "TLS (STARTTLS) is required");
    accepted(&swaks(addr, TLS_PARTNER, Client::Starttls).await);
    // Its own refusal code.
    let strict = swaks(addr, STRICT_PARTNER, Client::Plain).await;
    refused(&strict, "550 5.7.0", "TLS (STARTTLS) is required");
    accepted(&swaks(addr, STRICT_PARTNER, Client::Starttls).await);
    // No rule: accepted either way.
    accepted(&swaks(addr, NO_RULE, Client::Plain).await);
    accepted(&swaks(addr, NO_RULE, Client::Starttls).await);
    // A verified client certificate required.
    let no_cert = swaks(addr, CERT_PARTNER, Client::Starttls).await;
    refused(
        &no_cert,
        "450 4.7.0",
        "client certificate this server verifies",
    );
    let untrusted = swaks(addr, CERT_PARTNER, Client::Cert(&rogue.0, &rogue.1)).await;
    refused(
        &untrusted,
        "450 4.7.0",
        "client certificate this server verifies",
    );
    accepted(&swaks(addr, CERT_PARTNER, Client::Cert(&good.0, &good.1)).await);
    let plain_cert_partner = swaks(addr, CERT_PARTNER, Client::Plain).await;
    refused(
        &plain_cert_partner,
        "450 4.7.0",
        "TLS (STARTTLS) is required",
    );

    // A pinned certificate is accepted without a CA, any other is not.
    accepted(&swaks(addr, PINNED_PARTNER, Client::Cert(&rogue.0, &rogue.1)).await);
    let other = swaks(addr, PINNED_PARTNER, Client::Cert(&good.0, &good.1)).await;
    refused(&other, "450 4.7.0", "configured fingerprint");

    // Garbage on the policy service's port does not keep Postfix from being answered.
    for junk in [
        vec![b'x'; 50_000],
        b"request=smtpd_access_policy\nsender=a\nsender=b\n\n".to_vec(),
    ] {
        let mut stream = tokio::net::TcpStream::connect(policy).await.unwrap();
        let _ = stream.write_all(&junk).await;
        let mut buf = Vec::new();
        let read =
            tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut buf)).await;
        assert!(read.is_ok() && buf.is_empty(), "junk was answered: {buf:?}");
    }
    let after = swaks(addr, TLS_PARTNER, Client::Plain).await;
    refused(&after, "450 4.7.0", "TLS (STARTTLS) is required");
    accepted(&swaks(addr, NO_RULE, Client::Plain).await);

    let metrics = daemon.metrics().encode();
    for (outcome, count) in [
        ("refused", 7),
        ("satisfied", 4),
        ("no-rule", 3),
        ("malformed", 2),
    ] {
        assert!(
            metrics.contains(&format!(
                "mtasts_resolver_inbound_requests_total{{outcome=\"{outcome}\"}} {count}"
            )),
            "{outcome} {count}:\n{metrics}"
        );
    }
    assert!(
        metrics.contains(&format!(
            "mtasts_resolver_inbound_refusals_total{{rule=\"sender {CERT_PARTNER}\"}} 3"
        )),
        "{metrics}"
    );
}
