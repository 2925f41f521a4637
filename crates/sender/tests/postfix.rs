//! Real Postfix, end to end: Debian's Postfix, configured with
//! `smtp_tls_policy_maps = socketmap:inet:127.0.0.1:PORT:postfix`, delivers to testkit domains
//! whose DNS, HTTPS and MX hosts run for real on loopback addresses (see
//! `mtasts_testkit::postfix` for how the instance is isolated). The scenarios:
//!
//! * an enforce domain with a good MX receives the mail over verified TLS;
//! * an enforce domain whose MX certificate is wrong gets it deferred, never sent in plaintext;
//! * a testing domain receives it (even with a wrong MX certificate);
//! * a domain with a static `encrypt` level whose MX offers no STARTTLS gets it deferred.
//!
//! The real daemon runs in-process on `127.0.0.1:0`, with the TestNet's DNS server, CA and
//! HTTPS port in its configuration. A second test drives the same Postfix setup with fixed
//! socketmap replies (what the daemon should answer), so a failure can be told apart: harness
//! and Postfix, or the daemon.
//!
//! Needs root and the `postfix` package; otherwise each test prints why it is skipped and
//! passes, unless `MTASTS_REQUIRE_SERVICES=1` (CI), where that is a failure.

use std::sync::Arc;
use std::time::Duration;

use mtasts_sender::Config;
use mtasts_testkit::postfix::{self, FixedSocketmap, Postfix, PostfixConfig};
use mtasts_testkit::services::{self, Service};
use mtasts_testkit::smtp::{MxHostSpec, Starttls};
use mtasts_testkit::{CertSpec, Ports, TestNet};

/// How long any one delivery outcome may take to appear.
const WAIT: Duration = Duration::from_secs(30);
const SENDER: &str = "sender@client.test";

const ENFORCE: &str = "enforce.test";
const BAD_CERT: &str = "badcert.test";
const TESTING: &str = "testing.test";
const ENCRYPT: &str = "encrypt.test";

/// Returns true (after saying why) when the test cannot run here.
fn skip() -> bool {
    !postfix::available_or_skip()
}

fn policy(mode: &str, mx: &str) -> String {
    format!("version: STSv1\r\nmode: {mode}\r\nmx: {mx}\r\nmax_age: 86400\r\n")
}

/// A TestNet on the standard DNS and SMTP ports with the four scenario domains:
/// `enforce.test` (enforce policy, good MX), `badcert.test` (enforce policy, MX certificate for
/// another name), `testing.test` (testing policy, MX certificate for another name) and
/// `encrypt.test` (no policy, MX without STARTTLS).
/// `None` (after saying why) when ports 53 and 25 cannot be had on loopback, e.g. because a
/// local DNS server holds port 53 on every address.
async fn scenario_net() -> Option<TestNet> {
    let ports = Ports {
        dns: 53,
        https: 0,
        smtp: 25,
    };
    let net = match TestNet::start_with_ports(ports).await {
        Ok(net) => net,
        Err(e) => {
            let reason = format!("cannot listen on loopback ports 53 and 25: {e}");
            services::skip(Service::Postfix, &reason);
            return None;
        }
    };
    let wrong = || CertSpec::WrongName("mx.elsewhere.test".to_owned());
    for (domain, mode, spec) in [
        (ENFORCE, Some("enforce"), MxHostSpec::default()),
        (
            BAD_CERT,
            Some("enforce"),
            MxHostSpec {
                cert: wrong(),
                ..Default::default()
            },
        ),
        (
            TESTING,
            Some("testing"),
            MxHostSpec {
                cert: wrong(),
                ..Default::default()
            },
        ),
        (
            ENCRYPT,
            None,
            MxHostSpec {
                starttls: Starttls::NotOffered,
                ..Default::default()
            },
        ),
    ] {
        let mx = format!("mx.{domain}");
        net.zone().add_mx(domain, 10, &mx);
        net.add_mx_host(&mx, spec).await;
        if let Some(mode) = mode {
            net.add_sts_domain(domain, &policy(mode, &mx), "v=STSv1; id=20261122")
                .await;
        }
    }
    Some(net)
}

fn rcpt(domain: &str) -> String {
    format!("user@{domain}")
}

/// Sends one message to each scenario domain and checks every outcome.
async fn run_scenarios(net: &TestNet, postfix: &Postfix) {
    for domain in [ENFORCE, BAD_CERT, TESTING, ENCRYPT] {
        postfix
            .send(SENDER, &rcpt(domain), &format!("mtasts e2e {domain}"))
            .await
            .expect("submit with sendmail");
    }
    let outcome = |domain: &'static str| async move {
        postfix
            .wait_for_delivery(&rcpt(domain), WAIT)
            .await
            .unwrap_or_else(|e| panic!("{domain}: {e}"))
    };

    // Enforce, good MX: delivered over verified TLS, with the MX name as SNI.
    let enforce = outcome(ENFORCE).await;
    let log = postfix.log();
    assert_eq!(enforce.status, "sent", "{enforce:#?}\n{log}");
    assert!(
        log.contains(&format!(
            "Verified TLS connection established to mx.{ENFORCE}["
        )),
        "{log}"
    );
    let mail = net.received(&format!("mx.{ENFORCE}"));
    assert_eq!(mail.len(), 1, "{mail:#?}");
    assert_eq!(mail[0].rcpt_to, [rcpt(ENFORCE)]);
    assert_eq!(mail[0].mail_from, SENDER);
    let tls = mail[0].tls.as_ref().expect("enforce mail arrived over TLS");
    assert_eq!(tls.sni.as_deref(), Some(&*format!("mx.{ENFORCE}")));
    assert!(
        tls.version == "TLSv1.3" || tls.version == "TLSv1.2",
        "{tls:?}"
    );
    assert!(mail[0].text().contains(&format!("mtasts e2e {ENFORCE}")));

    // Enforce, wrong MX certificate: deferred for a TLS reason, never delivered.
    let bad = outcome(BAD_CERT).await;
    let diagnostics = postfix.diagnostics().await;
    assert_eq!(bad.status, "deferred", "{bad:#?}\n{diagnostics}");
    assert!(
        bad.reason.contains("certificate") || bad.reason.contains("TLS"),
        "{bad:#?}"
    );
    assert!(
        postfix.is_queued(&rcpt(BAD_CERT)).await.expect("postqueue"),
        "{diagnostics}"
    );
    assert_eq!(net.received(&format!("mx.{BAD_CERT}")), []);

    // Testing: delivered (over TLS: the level is `may`, the certificate is not checked).
    let testing = outcome(TESTING).await;
    assert_eq!(testing.status, "sent", "{testing:#?}\n{}", postfix.log());
    let mail = net.received(&format!("mx.{TESTING}"));
    assert_eq!(mail.len(), 1, "{mail:#?}");
    assert!(mail[0].over_tls(), "{mail:#?}");

    // Static `encrypt`, MX without STARTTLS: deferred, nothing sent in plaintext.
    let encrypt = outcome(ENCRYPT).await;
    let diagnostics = postfix.diagnostics().await;
    assert_eq!(encrypt.status, "deferred", "{encrypt:#?}\n{diagnostics}");
    assert!(encrypt.reason.contains("TLS is required"), "{encrypt:#?}");
    assert!(
        postfix.is_queued(&rcpt(ENCRYPT)).await.expect("postqueue"),
        "{diagnostics}"
    );
    assert_eq!(net.received(&format!("mx.{ENCRYPT}")), []);
}

/// The harness itself, with a socketmap that answers fixed replies: what the daemon is
/// expected to answer for each scenario domain.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postfix_follows_fixed_socketmap_replies() {
    if skip() {
        return;
    }
    let Some(net) = scenario_net().await else {
        return;
    };
    let map = FixedSocketmap::start(
        [
            (
                ENFORCE,
                "OK secure match=mx.enforce.test servername=hostname",
            ),
            (
                BAD_CERT,
                "OK secure match=mx.badcert.test servername=hostname",
            ),
            (ENCRYPT, "OK encrypt"),
        ],
        "NOTFOUND ",
    )
    .await
    .expect("start the fixed socketmap");
    let postfix = Postfix::start(&net, PostfixConfig::socketmap(map.addr(), "postfix"))
        .await
        .expect("start Postfix");
    run_scenarios(&net, &postfix).await;
    eprintln!("{}", postfix.log());
    let requests = map.requests();
    for domain in [ENFORCE, BAD_CERT, TESTING, ENCRYPT] {
        assert!(
            requests.contains(&format!("postfix {domain}")),
            "{domain} not asked: {requests:?}"
        );
    }
}

/// Stops the in-process daemon when the test ends, however it ends.
struct DaemonGuard(tokio_util::sync::CancellationToken);

impl Drop for DaemonGuard {
    fn drop(&mut self) {
        self.0.cancel();
    }
}

/// Starts the daemon as an operator would configure it, pointed at `net`: its DNS server, its
/// CA as the only trust anchor, its test HTTPS port; an in-memory cache; `encrypt.test` with a
/// static `encrypt` level. Returns the socketmap address.
async fn start_daemon(
    net: &TestNet,
    data_dir: &std::path::Path,
) -> (std::net::SocketAddr, DaemonGuard) {
    let toml = format!(
        r#"
data_dir = "{data_dir}"
timeout = 5
dns_servers = ["{dns}"]
ca_files = ["{ca}"]
builtin_roots = false
https_port = {https_port}

[socketmap]
tcp = ["127.0.0.1:0"]

[http]
listen = []

[cache]
url = "memory"

[refresh]
enabled = false

[tls_levels]
"{ENCRYPT}" = "encrypt"
"#,
        data_dir = data_dir.display(),
        dns = net.dns_addr(),
        ca = net.ca_file().display(),
        https_port = net.https_port(),
    );
    let config = Config::from_toml_str(&toml).expect("daemon configuration");
    let server = mtasts_sender::bind(config, None)
        .await
        .expect("bind the daemon");
    let addr = server.socketmap_addrs()[0];
    let shutdown = tokio_util::sync::CancellationToken::new();
    let stop = shutdown.clone();
    tokio::spawn(async move {
        if let Err(e) = server.run(stop, Arc::new(tokio::sync::Notify::new())).await {
            panic!("daemon stopped with an error: {e}");
        }
    });
    (addr, DaemonGuard(shutdown))
}

/// The issue's four scenarios with the real daemon answering Postfix's policy lookups.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postfix_follows_the_daemon() {
    if skip() {
        return;
    }
    let Some(net) = scenario_net().await else {
        return;
    };
    let data_dir = tempfile::tempdir().expect("daemon data directory");
    let (addr, _daemon) = start_daemon(&net, data_dir.path()).await;
    let postfix = Postfix::start(&net, PostfixConfig::socketmap(addr, "postfix"))
        .await
        .expect("start Postfix");
    run_scenarios(&net, &postfix).await;
    eprintln!("{}", postfix.log());
    // The daemon fetched the policies of the STS domains it was asked about, over HTTPS.
    let fetched: Vec<String> = net.policy_requests().into_iter().map(|r| r.sni).collect();
    for domain in [ENFORCE, BAD_CERT, TESTING] {
        assert!(
            fetched.contains(&format!("mta-sts.{domain}")),
            "{domain}: {fetched:?}"
        );
    }
}
