//! TLS report delivery end to end, over real parts on loopback: the SQLite store, the testkit
//! DNS server and CA, a real HTTPS receiver (hyper + rustls), the testkit SMTP MX with
//! STARTTLS, a scripted submission relay with STARTTLS and AUTH, DKIM checked by mail-auth
//! and by Debian's dkimpy, and a `kill -9` of a process between building and delivering.

use std::collections::VecDeque;
use std::io::Read as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use mail_parser::MimeHeaders as _;
use mtasts_net::dns::{DnsConfig, DnsLookup, HickoryDns};
use mtasts_proto::ResultType;
use mtasts_proto::tlsrpt::report::{PolicyType, TlsReport};
use mtasts_proto::tlsrpt::session::{FailureKey, PolicyKey};
use mtasts_sender::clock::ManualClock;
use mtasts_sender::metrics::Metrics;
use mtasts_sender::tlsrpt::deliver::Attempt;
use mtasts_sender::tlsrpt::deliver::https::HttpsDelivery;
use mtasts_sender::tlsrpt::{Tlsrpt, TlsrptConfig, deliverer};
use mtasts_store::tlsrpt::{Inserted, ResultRow, TlsrptDb};
use mtasts_testkit::TestNet;
use mtasts_testkit::ca::CertSpec;
use mtasts_testkit::services::{self, Service};
use mtasts_testkit::smtp::MxHostSpec;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

const DAY: i64 = 86_400;
/// A past UTC day (2026-12-01).
const REPORT_DAY: i64 = 20_788 * DAY;
const CONTACT: &str = "tlsrpt@sender.example";

fn policy() -> PolicyKey {
    PolicyKey {
        policy_type: PolicyType::Sts,
        domain: Some("example.com".into()),
        strings: vec![
            "version: STSv1".into(),
            "mode: testing".into(),
            "mx: mx.example.com".into(),
            "max_age: 86400".into(),
        ],
        mx: vec!["mx.example.com".into()],
    }
}

fn failure() -> FailureKey {
    FailureKey {
        result_type: ResultType::CertificateExpired,
        sending_ip: Some("192.0.2.1".into()),
        receiving_mx: Some("mx.example.com".into()),
        receiving_helo: None,
        receiving_ip: Some("198.51.100.7".into()),
        additional: None,
        reason_code: None,
    }
}

/// A store in `dir` with one day of results for example.com: 10 successes, 2 failures.
async fn store_with_results(dir: &Path, rua: &str) -> TlsrptDb {
    let db = TlsrptDb::open(&format!("sqlite:{}", dir.join("tlsrpt.sqlite").display()))
        .await
        .expect("open the store");
    db.record(&[ResultRow {
        day: REPORT_DAY,
        domain: "example.com".into(),
        record: format!("v=TLSRPTv1; rua={rua}"),
        policy: policy().to_key(),
        successes: 10,
        failures: 2,
        details: vec![(failure().to_key(), 2)],
    }])
    .await
    .expect("record results");
    db
}

fn config() -> TlsrptConfig {
    TlsrptConfig {
        enabled: true,
        organization: "Sender Org".into(),
        contact: CONTACT.into(),
        allow_private_destinations: true,
        http_timeout: 10,
        ..TlsrptConfig::default()
    }
}

fn dns(net: &TestNet) -> Arc<dyn DnsLookup> {
    Arc::new(
        HickoryDns::new(&DnsConfig {
            servers: Some(vec![net.dns_addr()]),
            timeout: Duration::from_secs(5),
        })
        .expect("DNS client"),
    )
}

fn subsystem(
    net: &TestNet,
    db: TlsrptDb,
    config: TlsrptConfig,
    clock: Arc<ManualClock>,
) -> (Tlsrpt, Arc<Metrics>) {
    mtasts_net::install_crypto_provider();
    let metrics = Arc::new(Metrics::new());
    let deliver = deliverer(&config, dns(net), net.root_store()).expect("deliverer");
    let t = Tlsrpt::new(db, config, Arc::new(deliver), metrics.clone(), clock).expect("subsystem");
    (t, metrics)
}

fn gunzip(gz: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(gz)
        .read_to_end(&mut out)
        .expect("gzip");
    out
}

/// The report as a receiver reads it: the proto parser, with the numbers stored.
fn assert_report(json: &[u8], report_id: &str) {
    let report = TlsReport::parse(json).expect("the report parses");
    assert_eq!(report.report_id, report_id);
    assert_eq!(report.organization, "Sender Org");
    assert_eq!(report.contact.as_deref(), Some(CONTACT));
    assert!(report.notes.is_empty(), "{:?}", report.notes);
    assert_eq!(report.policies.len(), 1);
    let p = &report.policies[0];
    assert_eq!(p.policy_type, PolicyType::Sts);
    assert_eq!(p.domain.as_deref(), Some("example.com"));
    assert_eq!((p.success, p.failure), (10, 2));
    assert_eq!(p.failures.len(), 1);
    assert_eq!(p.failures[0].result, ResultType::CertificateExpired);
    assert_eq!(p.failures[0].count, 2);
    assert_eq!(p.failures[0].receiving_ip.as_deref(), Some("198.51.100.7"));
}

// ---------------------------------------------------------------------------------------------
// A real HTTPS receiver

#[derive(Clone, Debug)]
struct Hit {
    content_type: String,
    status: u16,
    body: Vec<u8>,
}

struct Receiver {
    url: String,
    hits: Arc<Mutex<Vec<Hit>>>,
    _task: tokio::task::JoinHandle<()>,
}

/// An HTTPS receiver for `host` at a fresh TestNet address, answering `statuses` in turn and
/// then 200; records every request.
async fn start_receiver(net: &TestNet, host: &str, statuses: Vec<u16>) -> Receiver {
    let ip = net.next_ip();
    let listener = TcpListener::bind(SocketAddr::new(ip, 0))
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    net.zone().add_ip(host, ip);
    let acceptor = TlsAcceptor::from(
        net.ca()
            .issue(host, &CertSpec::Valid)
            .server_config(&[b"http/1.1"]),
    );
    let hits = Arc::new(Mutex::new(Vec::new()));
    let statuses = Arc::new(Mutex::new(VecDeque::from(statuses)));
    let task_hits = hits.clone();
    let task = tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let acceptor = acceptor.clone();
            let hits = task_hits.clone();
            let statuses = statuses.clone();
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let service = service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                    let hits = hits.clone();
                    let statuses = statuses.clone();
                    async move {
                        let content_type = req
                            .headers()
                            .get("content-type")
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or("")
                            .to_owned();
                        let body = req.into_body().collect().await?.to_bytes().to_vec();
                        let status = statuses.lock().unwrap().pop_front().unwrap_or(200);
                        hits.lock().unwrap().push(Hit {
                            content_type,
                            status,
                            body,
                        });
                        Ok::<_, hyper::Error>(
                            hyper::Response::builder()
                                .status(status)
                                .body(Full::new(Bytes::from_static(b"noted")))
                                .unwrap(),
                        )
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(tls), service)
                    .await;
            });
        }
    });
    Receiver {
        url: format!("https://{host}:{port}/v1/tlsrpt"),
        hits,
        _task: task,
    }
}

#[tokio::test]
async fn https_receiver_failing_twice_gets_the_report_exactly_once() {
    let net = TestNet::start().await;
    let receiver = start_receiver(&net, "reports.example.com", vec![500, 503]).await;
    let dir = tempfile::tempdir().unwrap();
    let db = store_with_results(dir.path(), &receiver.url).await;
    let clock = Arc::new(ManualClock::new((REPORT_DAY + DAY + 60) as u64));
    let (t, metrics) = subsystem(&net, db, config(), clock.clone());

    let built = t.build_day(REPORT_DAY, true).await.expect("build");
    assert_eq!(built.len(), 1);
    assert_eq!(built[0].rua, vec![receiver.url.clone()]);
    assert!(matches!(built[0].stored, Some(Inserted::New(_))));
    // Building again finds the report already stored: no second report, no second delivery.
    let again = t.build_day(REPORT_DAY, true).await.expect("build again");
    assert!(matches!(again[0].stored, Some(Inserted::AlreadyBuilt(_))));

    let first = t.deliver_due().await.expect("first pass");
    assert_eq!((first.leased, first.retried), (1, 1));
    // Not due again before the backoff.
    assert_eq!(t.deliver_due().await.unwrap().leased, 0);
    clock.advance(299);
    assert_eq!(t.deliver_due().await.unwrap().leased, 0);
    clock.advance(1);
    assert_eq!(t.deliver_due().await.unwrap().retried, 1);
    clock.advance(600);
    let third = t.deliver_due().await.unwrap();
    assert_eq!(third.delivered, 1);
    clock.advance(10 * DAY as u64);
    assert_eq!(t.deliver_due().await.unwrap().leased, 0);

    let hits = receiver.hits.lock().unwrap().clone();
    let statuses: Vec<u16> = hits.iter().map(|h| h.status).collect();
    assert_eq!(statuses, vec![500, 503, 200], "retried, then accepted once");
    for hit in &hits {
        assert_eq!(hit.content_type, "application/tlsrpt+gzip");
        assert_eq!(hit.body, built[0].gz);
    }
    assert_report(&gunzip(&hits[2].body), &built[0].report_id);

    let exposition = metrics.encode();
    for line in [
        "mtasts_resolver_tlsrpt_reports_built_total 1",
        "mtasts_resolver_tlsrpt_deliveries_total{scheme=\"https\",outcome=\"retry\"} 2",
        "mtasts_resolver_tlsrpt_deliveries_total{scheme=\"https\",outcome=\"delivered\"} 1",
    ] {
        assert!(exposition.contains(line), "{line} missing in\n{exposition}");
    }
    let status = t.status().await.unwrap();
    assert_eq!((status.delivered, status.outbox_pending), (1, 0));
}

#[tokio::test]
async fn https_refuses_private_addresses_and_redirects() {
    let net = TestNet::start().await;
    mtasts_net::install_crypto_provider();
    let receiver = start_receiver(&net, "private.example.com", vec![302]).await;
    let strict = HttpsDelivery::new(
        dns(&net),
        net.root_store(),
        false,
        Duration::from_secs(5),
        1024,
    );
    match strict.post(&receiver.url, b"x").await {
        Attempt::Failed { error, permanent } => {
            assert!(permanent, "{error}");
            assert!(error.contains("not a public address"), "{error}");
        }
        other => panic!("delivered to a loopback address: {other:?}"),
    }
    assert!(receiver.hits.lock().unwrap().is_empty(), "nothing was sent");
    let open = HttpsDelivery::new(
        dns(&net),
        net.root_store(),
        true,
        Duration::from_secs(5),
        1024,
    );
    match open.post(&receiver.url, b"x").await {
        Attempt::Failed { error, permanent } => {
            assert!(!permanent);
            assert!(error.contains("redirects are not followed"), "{error}");
        }
        other => panic!("a redirect counted as delivered: {other:?}"),
    }
    assert!(matches!(
        open.post(&receiver.url, b"x").await,
        Attempt::Delivered(_)
    ));
}

// ---------------------------------------------------------------------------------------------
// Report mail to a real MX, DKIM-signed

/// Generates a DKIM key with openssl: (PEM file, DNS TXT record).
fn dkim_key(dir: &Path, kind: &str) -> (PathBuf, String) {
    let pem = dir.join(format!("dkim-{kind}.pem"));
    let mut keygen = std::process::Command::new("openssl");
    keygen.arg("genpkey");
    match kind {
        "rsa" => keygen.args(["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"]),
        _ => keygen.args(["-algorithm", "ed25519"]),
    };
    let out = keygen.arg("-out").arg(&pem).output().expect("run openssl");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = std::process::Command::new("openssl")
        .args(["pkey", "-pubout", "-outform", "DER", "-in"])
        .arg(&pem)
        .output()
        .expect("run openssl");
    assert!(out.status.success());
    let b64 = base64::engine::general_purpose::STANDARD;
    let record = match kind {
        "rsa" => format!("v=DKIM1; k=rsa; p={}", b64.encode(&out.stdout)),
        // The SubjectPublicKeyInfo of an Ed25519 key ends with the 32-byte raw key (RFC 8463).
        _ => format!(
            "v=DKIM1; k=ed25519; p={}",
            b64.encode(&out.stdout[out.stdout.len() - 32..])
        ),
    };
    (pem, record)
}

/// The record as 255-byte strings (one TXT RR).
fn publish_txt(net: &TestNet, name: &str, text: &str) {
    let chunks: Vec<&str> = text
        .as_bytes()
        .chunks(255)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect();
    net.zone().add_txt(name, &chunks);
}

async fn mail_auth_verdict(net: &TestNet, message: &[u8]) -> Vec<String> {
    use mail_auth::hickory_resolver::TokioResolver;
    use mail_auth::hickory_resolver::config::{ConnectionConfig, NameServerConfig, ResolverConfig};
    use mail_auth::hickory_resolver::net::runtime::TokioRuntimeProvider;
    use mail_auth::{AuthenticatedMessage, DkimResult, MessageAuthenticator};
    let addr = net.dns_addr();
    let mut udp = ConnectionConfig::udp();
    udp.port = addr.port();
    let mut tcp = ConnectionConfig::tcp();
    tcp.port = addr.port();
    let mut ns = NameServerConfig::udp_and_tcp(addr.ip());
    ns.connections = vec![udp, tcp];
    let resolver = TokioResolver::builder_with_config(
        ResolverConfig::from_name_servers(vec![ns]),
        TokioRuntimeProvider::default(),
    )
    .build()
    .expect("resolver");
    let auth = MessageAuthenticator(resolver);
    let parsed = AuthenticatedMessage::parse(message).expect("parse the mail");
    auth.verify_dkim(&parsed)
        .await
        .iter()
        .map(|o| match o.result() {
            DkimResult::Pass => "pass".to_string(),
            other => format!("{other:?}"),
        })
        .collect()
}

/// dkimpy's verdict, the key given through its `dnsfunc` (no DNS involved).
fn dkimpy_verdict(message: &[u8], record: &str) -> Option<bool> {
    const SCRIPT: &str = r#"
import sys, dkim
record = sys.argv[1].encode()
message = sys.stdin.buffer.read()
ok = dkim.verify(message, dnsfunc=lambda name, timeout=5: record)
print("pass" if ok else "fail")
"#;
    // Debian's python3-dkim is installed for the system interpreter (a pyenv or venv
    // `python3` earlier on PATH would not see it).
    let python = if Path::new("/usr/bin/python3").exists() {
        "/usr/bin/python3"
    } else {
        "python3"
    };
    let mut child = match std::process::Command::new(python)
        .args(["-c", SCRIPT, record])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
    {
        Ok(c) => c,
        Err(e) => {
            services::skip(Service::Dkimpy, &format_args!("cannot run python3: {e}"));
            return None;
        }
    };
    use std::io::Write as _;
    child.stdin.take().unwrap().write_all(message).unwrap();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    if stderr.contains("No module named 'dkim'") {
        services::skip(Service::Dkimpy, &"python3 has no dkim module");
        return None;
    }
    match String::from_utf8_lossy(&out.stdout).trim() {
        "pass" => Some(true),
        "fail" => Some(false),
        other => panic!("dkimpy: {other} {stderr}"),
    }
}

async fn mail_round(kind: &str) {
    let net = TestNet::start().await;
    net.add_mx_host("mx.example.com", MxHostSpec::default())
        .await;
    net.zone().add_mx("example.com", 10, "mx.example.com");
    let dir = tempfile::tempdir().unwrap();
    let (pem, record) = dkim_key(dir.path(), kind);
    publish_txt(&net, "tlsrpt._domainkey.sender.example", &record);
    let db = store_with_results(dir.path(), "mailto:tls-reports@example.com").await;
    let mut config = config();
    config.mail.dkim_domain = Some("sender.example".into());
    config.mail.dkim_selector = Some("tlsrpt".into());
    config.mail.dkim_key = Some(pem);
    config.mail.mx_port = net.smtp_port();
    let clock = Arc::new(ManualClock::new((REPORT_DAY + DAY + 60) as u64));
    let (t, metrics) = subsystem(&net, db, config, clock);

    let built = t.build_day(REPORT_DAY, true).await.expect("build");
    let pass = t.deliver_due().await.expect("deliver");
    assert_eq!(pass.delivered, 1, "{pass:?}");
    let received = net.received("mx.example.com");
    assert_eq!(received.len(), 1);
    let mail = &received[0];
    assert!(mail.over_tls(), "STARTTLS was offered and used");
    assert_eq!(mail.mail_from, CONTACT);
    assert_eq!(mail.rcpt_to, vec!["tls-reports@example.com".to_string()]);
    let text = mail.text();
    for header in [
        "TLS-Report-Domain: example.com",
        "TLS-Report-Submitter: sender.example",
        "TLS-Required: No",
        "report-type=\"tlsrpt\"",
        "application/tlsrpt+gzip",
    ] {
        assert!(text.contains(header), "{header} missing in\n{text}");
    }
    let signature_header = text
        .split("\r\n")
        .skip_while(|l| !l.starts_with("DKIM-Signature:"))
        .take_while(|l| l.starts_with("DKIM-Signature:") || l.starts_with([' ', '\t']))
        .collect::<String>();
    assert!(!signature_header.is_empty(), "no DKIM-Signature in\n{text}");
    assert!(!signature_header.contains(" l="), "l= must never be used");
    let h = signature_header.to_ascii_lowercase();
    for signed in [
        "tls-report-domain",
        "tls-report-submitter",
        "subject",
        "from",
    ] {
        assert!(h.contains(signed), "h= lacks {signed}: {signature_header}");
    }
    // The attachment is the stored report.
    let parsed = mail_parser::MessageParser::default()
        .parse(&mail.data)
        .expect("parse the mail");
    let attachment = parsed
        .attachments()
        .find(|a| a.attachment_name() == Some(built[0].file_name.as_str()))
        .expect("the report attachment, named as RFC 8460 §5.1 says");
    assert_eq!(attachment.contents(), built[0].gz.as_slice());
    assert_report(&gunzip(attachment.contents()), &built[0].report_id);

    assert_eq!(
        mail_auth_verdict(&net, &mail.data).await,
        vec!["pass".to_string()]
    );
    // A changed header breaks the signature: the verifiers above really check it.
    let tampered = text.replace(
        "TLS-Report-Domain: example.com",
        "TLS-Report-Domain: example.org",
    );
    assert_ne!(
        mail_auth_verdict(&net, tampered.as_bytes()).await,
        vec!["pass".to_string()]
    );
    if let Some(ok) = dkimpy_verdict(&mail.data, &record) {
        assert!(ok, "dkimpy does not accept the signature");
        assert_eq!(dkimpy_verdict(tampered.as_bytes(), &record), Some(false));
    }
    assert!(metrics.encode().contains(
        "mtasts_resolver_tlsrpt_deliveries_total{scheme=\"mailto\",outcome=\"delivered\"} 1"
    ));
}

#[tokio::test]
async fn mail_report_signed_with_ed25519_reaches_the_mx_and_verifies() {
    mail_round("ed25519").await;
}

#[tokio::test]
async fn mail_report_signed_with_rsa_reaches_the_mx_and_verifies() {
    mail_round("rsa").await;
}

#[tokio::test]
async fn mail_without_dkim_configuration_is_not_sent_unsigned() {
    let net = TestNet::start().await;
    net.add_mx_host("mx.example.com", MxHostSpec::default())
        .await;
    net.zone().add_mx("example.com", 10, "mx.example.com");
    let dir = tempfile::tempdir().unwrap();
    let db = store_with_results(dir.path(), "mailto:tls-reports@example.com").await;
    let clock = Arc::new(ManualClock::new((REPORT_DAY + DAY + 60) as u64));
    let (t, _) = subsystem(&net, db, config(), clock);
    t.build_day(REPORT_DAY, true).await.unwrap();
    let pass = t.deliver_due().await.unwrap();
    assert_eq!(pass.retried, 1, "kept for when DKIM is configured");
    assert!(net.received("mx.example.com").is_empty());
    let status = t.status().await.unwrap();
    assert!(
        status.failures[0]
            .last_error
            .as_deref()
            .is_some_and(|e| e.contains("DKIM")),
        "{status:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// A submission relay: STARTTLS first, AUTH only inside TLS

/// A scripted relay: logs every command (prefixed `TLS ` once inside TLS), offers AUTH before
/// and after STARTTLS (so a client that would authenticate in the clear is caught), and
/// accepts the message.
async fn start_relay(
    net: &TestNet,
    host: &str,
    offer_starttls: bool,
    mechanisms: &'static str,
) -> (u16, Arc<Mutex<Vec<String>>>) {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    let ip = net.next_ip();
    let listener = TcpListener::bind(SocketAddr::new(ip, 0))
        .await
        .expect("bind");
    let port = listener.local_addr().unwrap().port();
    net.zone().add_ip(host, ip);
    let acceptor = TlsAcceptor::from(net.ca().issue(host, &CertSpec::Valid).server_config(&[]));
    let log = Arc::new(Mutex::new(Vec::new()));
    let task_log = log.clone();

    async fn dialogue<S>(
        stream: S,
        log: &Mutex<Vec<String>>,
        tls: bool,
        offer_starttls: bool,
        mechanisms: &str,
    ) -> Option<S>
    where
        S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
    {
        let mut stream = BufReader::new(stream);
        let prefix = if tls { "TLS " } else { "" };
        loop {
            let mut line = String::new();
            if stream.read_line(&mut line).await.unwrap_or(0) == 0 {
                return None;
            }
            let line = line.trim_end().to_string();
            log.lock().unwrap().push(format!("{prefix}{line}"));
            let upper = line.to_ascii_uppercase();
            let reply: Vec<u8> = if upper.starts_with("EHLO") {
                if offer_starttls && !tls {
                    format!("250-relay.example\r\n250-AUTH {mechanisms}\r\n250 STARTTLS\r\n")
                        .into_bytes()
                } else {
                    format!("250-relay.example\r\n250 AUTH {mechanisms}\r\n").into_bytes()
                }
            } else if upper == "STARTTLS" && !tls {
                stream.get_mut().write_all(b"220 go ahead\r\n").await.ok()?;
                return Some(stream.into_inner());
            } else if !tls && upper.starts_with("AUTH") {
                b"538 5.7.11 encryption required\r\n".to_vec()
            } else if upper == "AUTH LOGIN" {
                // RFC 4954 LOGIN: "Username:" and "Password:" challenges, base64 answers.
                for challenge in ["VXNlcm5hbWU6", "UGFzc3dvcmQ6"] {
                    let prompt = format!("334 {challenge}\r\n");
                    stream.get_mut().write_all(prompt.as_bytes()).await.ok()?;
                    let mut answer = String::new();
                    if stream.read_line(&mut answer).await.unwrap_or(0) == 0 {
                        return None;
                    }
                    log.lock()
                        .unwrap()
                        .push(format!("{prefix}{}", answer.trim_end()));
                }
                b"235 2.7.0 authenticated\r\n".to_vec()
            } else if upper.starts_with("AUTH") {
                b"235 2.7.0 authenticated\r\n".to_vec()
            } else if upper == "DATA" {
                stream.get_mut().write_all(b"354 go on\r\n").await.ok()?;
                loop {
                    let mut data = String::new();
                    if stream.read_line(&mut data).await.unwrap_or(0) == 0 {
                        return None;
                    }
                    if data == ".\r\n" {
                        break;
                    }
                }
                b"250 2.0.0 queued as R1\r\n".to_vec()
            } else if upper == "QUIT" {
                let _ = stream.get_mut().write_all(b"221 bye\r\n").await;
                return None;
            } else {
                b"250 ok\r\n".to_vec()
            };
            stream.get_mut().write_all(&reply).await.ok()?;
        }
    }

    tokio::spawn(async move {
        while let Ok((mut tcp, _)) = listener.accept().await {
            let log = task_log.clone();
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                if tcp.write_all(b"220 relay.example ESMTP\r\n").await.is_err() {
                    return;
                }
                if let Some(tcp) = dialogue(tcp, &log, false, offer_starttls, mechanisms).await
                    && let Ok(tls) = acceptor.accept(tcp).await
                {
                    dialogue(tls, &log, true, offer_starttls, mechanisms).await;
                }
            });
        }
    });
    (port, log)
}

async fn relay_round(
    offer_starttls: bool,
    mechanisms: &'static str,
) -> (Vec<String>, mtasts_sender::tlsrpt::PassSummary) {
    let net = TestNet::start().await;
    let (port, log) = start_relay(&net, "relay.example", offer_starttls, mechanisms).await;
    let dir = tempfile::tempdir().unwrap();
    let (pem, _) = dkim_key(dir.path(), "ed25519");
    let password = dir.path().join("relay.pass");
    std::fs::write(&password, "s3cret\n").unwrap();
    let db = store_with_results(dir.path(), "mailto:tls-reports@example.com").await;
    let mut config = config();
    config.mail.dkim_domain = Some("sender.example".into());
    config.mail.dkim_selector = Some("tlsrpt".into());
    config.mail.dkim_key = Some(pem);
    config.mail.relay = Some(format!("relay.example:{port}"));
    config.mail.relay_username = Some("reporter".into());
    config.mail.relay_password_file = Some(password);
    config.validate().unwrap();
    let clock = Arc::new(ManualClock::new((REPORT_DAY + DAY + 60) as u64));
    let (t, _) = subsystem(&net, db, config, clock);
    t.build_day(REPORT_DAY, true).await.unwrap();
    let pass = t.deliver_due().await.unwrap();
    let log = log.lock().unwrap().clone();
    (log, pass)
}

#[tokio::test]
async fn relay_gets_auth_only_after_starttls() {
    let (log, pass) = relay_round(true, "PLAIN LOGIN").await;
    assert_eq!(pass.delivered, 1, "{log:?}");
    let token = base64::engine::general_purpose::STANDARD.encode("\0reporter\0s3cret");
    assert_eq!(
        log,
        vec![
            "EHLO sender.example".to_string(),
            "STARTTLS".into(),
            "TLS EHLO sender.example".into(),
            format!("TLS AUTH PLAIN {token}"),
            format!("TLS MAIL FROM:<{CONTACT}>"),
            "TLS RCPT TO:<tls-reports@example.com>".into(),
            "TLS DATA".into(),
            "TLS QUIT".into(),
        ]
    );
}

#[tokio::test]
async fn relay_without_starttls_gets_no_credentials() {
    let (log, pass) = relay_round(false, "PLAIN LOGIN").await;
    assert_eq!((pass.delivered, pass.retried), (0, 1), "{log:?}");
    assert_eq!(log, vec!["EHLO sender.example".to_string(),]);
    assert!(!log.iter().any(|l| l.contains("AUTH")));
}

#[tokio::test]
async fn relay_offering_only_login_gets_auth_login_inside_tls() {
    let (log, pass) = relay_round(true, "LOGIN").await;
    assert_eq!(pass.delivered, 1, "{log:?}");
    let b64 = base64::engine::general_purpose::STANDARD;
    assert_eq!(
        log[..6],
        [
            "EHLO sender.example".to_string(),
            "STARTTLS".into(),
            "TLS EHLO sender.example".into(),
            "TLS AUTH LOGIN".into(),
            format!("TLS {}", b64.encode("reporter")),
            format!("TLS {}", b64.encode("s3cret")),
        ]
    );
}

// ---------------------------------------------------------------------------------------------
// kill -9 between building and delivering

const CHILD_ENV: &str = "MTASTS_TLSRPT_KILL9_CHILD_DIR";
const CHILD_BUILT: &str = "MTASTS-TLSRPT-CHILD-BUILT";

/// In the parent: stores results, runs this test binary again as a child that builds the
/// reports and then waits, kills it with SIGKILL, and delivers from a fresh process state: the
/// receiver gets the report exactly once. In the child (the environment variable set): builds,
/// says so, and sleeps until killed.
#[tokio::test]
async fn kill_9_between_building_and_delivering_loses_nothing() {
    let net = TestNet::start().await;
    let clock = Arc::new(ManualClock::new((REPORT_DAY + DAY + 60) as u64));
    if let Ok(dir) = std::env::var(CHILD_ENV) {
        let db = TlsrptDb::open(&format!("sqlite:{dir}/tlsrpt.sqlite"))
            .await
            .unwrap();
        let (t, _) = subsystem(&net, db, config(), clock);
        let built = t.build_day(REPORT_DAY, true).await.unwrap();
        assert_eq!(built.len(), 1);
        println!("{CHILD_BUILT}");
        tokio::time::sleep(Duration::from_secs(300)).await;
        panic!("the child was not killed");
    }
    let receiver = start_receiver(&net, "reports.example.com", Vec::new()).await;
    let dir = tempfile::tempdir().unwrap();
    drop(store_with_results(dir.path(), &receiver.url).await);

    let mut child = tokio::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "kill_9_between_building_and_delivering_loses_nothing",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, dir.path())
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("run the child");
    let stdout = child.stdout.take().unwrap();
    let mut lines = tokio::io::AsyncBufReadExt::lines(tokio::io::BufReader::new(stdout));
    let built = tokio::time::timeout(Duration::from_secs(120), async {
        while let Ok(Some(line)) = lines.next_line().await {
            if line.contains(CHILD_BUILT) {
                return true;
            }
        }
        false
    })
    .await
    .unwrap_or(false);
    assert!(built, "the child did not build the reports");
    child.start_kill().unwrap(); // SIGKILL
    let status = child.wait().await.unwrap();
    assert!(!status.success());
    assert!(
        receiver.hits.lock().unwrap().is_empty(),
        "nothing delivered before the kill"
    );

    let db = TlsrptDb::open(&format!("sqlite:{}/tlsrpt.sqlite", dir.path().display()))
        .await
        .unwrap();
    let (t, _) = subsystem(&net, db, config(), clock);
    // The day is done and its report stored: no rebuild, one delivery.
    assert!(
        t.db()
            .pending_days(REPORT_DAY + 2 * DAY)
            .await
            .unwrap()
            .is_empty()
    );
    let pass = t.deliver_due().await.unwrap();
    assert_eq!(pass.delivered, 1, "{pass:?}");
    assert_eq!(t.deliver_due().await.unwrap().leased, 0);
    let hits = receiver.hits.lock().unwrap().clone();
    assert_eq!(hits.len(), 1);
    let reports = t.db().reports_for_day(REPORT_DAY).await.unwrap();
    assert_eq!(reports.len(), 1);
    assert_report(&gunzip(&hits[0].body), &reports[0].report_id);
}

// ---------------------------------------------------------------------------------------------
// Giving up and suppression

#[tokio::test]
async fn a_destination_given_up_repeatedly_is_suppressed() {
    let net = TestNet::start().await;
    // An address of the TestNet where nothing listens: every connection is refused.
    let ip = net.next_ip();
    net.zone().add_ip("down.example.com", ip);
    let url = "https://down.example.com:9/v1/tlsrpt";
    let dir = tempfile::tempdir().unwrap();
    let db = store_with_results(dir.path(), url).await;
    for day in 1..=2 {
        db.record(&[ResultRow {
            day: REPORT_DAY + day * DAY,
            domain: "example.com".into(),
            record: format!("v=TLSRPTv1; rua={url}"),
            policy: policy().to_key(),
            successes: 1,
            failures: 0,
            details: Vec::new(),
        }])
        .await
        .unwrap();
    }
    let mut config = config();
    config.retry_for = 600;
    config.suppress_after = 2;
    config.suppress_for = 7 * DAY as u64;
    let clock = Arc::new(ManualClock::new((REPORT_DAY + DAY + 60) as u64));
    let (t, metrics) = subsystem(&net, db, config, clock.clone());
    // Two reports given up after their retries: the destination is then suppressed.
    for day in 0..2 {
        t.build_day(REPORT_DAY + day * DAY, true).await.unwrap();
        assert_eq!(t.deliver_due().await.unwrap().retried, 1);
        clock.advance(300);
        assert_eq!(
            t.deliver_due().await.unwrap().retried,
            1,
            "the last retry falls on give-up time"
        );
        clock.advance(300);
        assert_eq!(t.deliver_due().await.unwrap().gave_up, 1);
        clock.advance(DAY as u64 - 600);
    }
    let status = t.status().await.unwrap();
    assert_eq!(status.suppressed.len(), 1, "{status:?}");
    assert_eq!(status.suppressed[0].destination, url);
    // The third report is not attempted while the destination is suppressed.
    t.build_day(REPORT_DAY + 2 * DAY, true).await.unwrap();
    let pass = t.deliver_due().await.unwrap();
    assert_eq!((pass.leased, pass.gave_up), (1, 1));
    let exposition = metrics.encode();
    assert!(
        exposition.contains(
            "mtasts_resolver_tlsrpt_deliveries_total{scheme=\"https\",outcome=\"suppressed\"} 1"
        ),
        "{exposition}"
    );
    assert!(
        exposition.contains(
            "mtasts_resolver_tlsrpt_deliveries_total{scheme=\"https\",outcome=\"gave_up\"} 2"
        ),
        "{exposition}"
    );
    // Every report is still stored, each destination with its final state.
    assert_eq!(
        t.db()
            .reports_for_day(REPORT_DAY + 2 * DAY)
            .await
            .unwrap()
            .len(),
        1
    );
}

// ---------------------------------------------------------------------------------------------
// The resolver daemon runs the subsystem

#[tokio::test]
async fn the_resolver_builds_and_delivers_ended_days_on_its_own() {
    let net = TestNet::start().await;
    let receiver = start_receiver(&net, "reports.example.com", Vec::new()).await;
    let dir = tempfile::tempdir().unwrap();
    drop(store_with_results(dir.path(), &receiver.url).await);
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, net.ca().root_pem()).unwrap();
    let config = mtasts_sender::Config::from_toml_str(&format!(
        r#"
        data_dir = "{dir}"
        dns_servers = ["{dns}"]
        ca_files = ["{ca}"]
        builtin_roots = false
        [socketmap]
        tcp = []
        [http]
        listen = []
        [cache]
        url = "memory"
        [refresh]
        enabled = false
        [tlsrpt]
        enabled = true
        organization = "Sender Org"
        contact = "{CONTACT}"
        send_delay_max = 0
        allow_private_destinations = true
        "#,
        dir = dir.path().display(),
        dns = net.dns_addr(),
        ca = ca.display(),
    ))
    .expect("config");
    config.check_limits().expect("valid");
    let server = mtasts_sender::bind(config, None).await.expect("bind");
    assert!(server.tlsrpt().is_some());
    let shutdown = tokio_util::sync::CancellationToken::new();
    let run = tokio::spawn(server.run(shutdown.clone(), Arc::new(tokio::sync::Notify::new())));
    // REPORT_DAY ended long ago: the first round builds its report and delivers it.
    let delivered = tokio::time::timeout(Duration::from_secs(60), async {
        loop {
            if receiver
                .hits
                .lock()
                .unwrap()
                .iter()
                .any(|h| h.status == 200)
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await;
    shutdown.cancel();
    run.await.unwrap().unwrap();
    assert!(delivered.is_ok(), "the resolver delivered nothing");
    let hits = receiver.hits.lock().unwrap().clone();
    assert_eq!(hits.len(), 1);
    let json = gunzip(&hits[0].body);
    let report = TlsReport::parse(&json).unwrap();
    assert_eq!(report.policies[0].success, 10);
}

/// Report mail must be delivered despite TLS problems at the MX (RFC 8460 §5.3.1): an expired
/// certificate still gets the mail over TLS, a host without STARTTLS gets it in plain text.
#[tokio::test]
async fn mail_reaches_an_mx_with_a_bad_certificate_or_no_starttls() {
    use mtasts_testkit::smtp::Starttls;
    let net = TestNet::start().await;
    net.add_mx_host(
        "mx.expired.example",
        MxHostSpec {
            cert: CertSpec::Expired,
            ..MxHostSpec::default()
        },
    )
    .await;
    net.zone()
        .add_mx("expired.example", 10, "mx.expired.example");
    net.add_mx_host(
        "mx.plain.example",
        MxHostSpec {
            starttls: Starttls::NotOffered,
            ..MxHostSpec::default()
        },
    )
    .await;
    net.zone().add_mx("plain.example", 10, "mx.plain.example");
    let dir = tempfile::tempdir().unwrap();
    let (pem, _) = dkim_key(dir.path(), "ed25519");
    let db = store_with_results(
        dir.path(),
        "mailto:r@expired.example,mailto:r@plain.example",
    )
    .await;
    let mut config = config();
    config.mail.dkim_domain = Some("sender.example".into());
    config.mail.dkim_selector = Some("tlsrpt".into());
    config.mail.dkim_key = Some(pem);
    config.mail.mx_port = net.smtp_port();
    let clock = Arc::new(ManualClock::new((REPORT_DAY + DAY + 60) as u64));
    let (t, _) = subsystem(&net, db, config, clock);
    let built = t.build_day(REPORT_DAY, true).await.unwrap();
    assert_eq!(built[0].rua.len(), 2, "one report, two destinations");
    let pass = t.deliver_due().await.unwrap();
    assert_eq!(pass.delivered, 2, "{pass:?}");
    let expired = net.received("mx.expired.example");
    assert_eq!(expired.len(), 1);
    assert!(expired[0].over_tls());
    let plain = net.received("mx.plain.example");
    assert_eq!(plain.len(), 1);
    assert!(!plain[0].over_tls());
}

// ---------------------------------------------------------------------------------------------
// A fleet: two resolvers on one PostgreSQL

#[tokio::test]
async fn two_resolvers_on_one_postgres_build_one_report_and_deliver_it_once() {
    use sqlx::Connection as _;
    let base = services::postgres_url();
    let mut admin = match sqlx::PgConnection::connect(&base).await {
        Ok(c) => c,
        Err(e) => return services::skip(Service::Postgres, &e),
    };
    let schema = services::unique("tlsrpt_deliver_");
    // Safe: `unique` gives lowercase letters, digits and '_'.
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
        .execute(&mut admin)
        .await
        .unwrap();
    let url = services::postgres_url_in_schema(&base, &schema);
    let outcome = tokio::spawn(async move {
        let net = TestNet::start().await;
        let receiver = start_receiver(&net, "reports.example.com", Vec::new()).await;
        let db1 = TlsrptDb::open(&url).await.expect("open PostgreSQL");
        let db2 = TlsrptDb::open(&url).await.expect("open PostgreSQL");
        db1.record(&[ResultRow {
            day: REPORT_DAY,
            domain: "example.com".into(),
            record: format!("v=TLSRPTv1; rua={}", receiver.url),
            policy: policy().to_key(),
            successes: 10,
            failures: 2,
            details: vec![(failure().to_key(), 2)],
        }])
        .await
        .unwrap();
        let clock = Arc::new(ManualClock::new((REPORT_DAY + DAY + 60) as u64));
        let (a, _) = subsystem(&net, db1, config(), clock.clone());
        let (b, _) = subsystem(&net, db2, config(), clock);
        let (a, b) = (a.with_node("resolver-a"), b.with_node("resolver-b"));
        let (built_a, built_b) =
            tokio::join!(a.build_day(REPORT_DAY, true), b.build_day(REPORT_DAY, true));
        let stored: Vec<_> = built_a
            .unwrap()
            .into_iter()
            .chain(built_b.unwrap())
            .map(|r| r.stored)
            .collect();
        let new = stored
            .iter()
            .filter(|s| matches!(s, Some(Inserted::New(_))))
            .count();
        assert_eq!(
            new, 1,
            "one report per domain and day across the fleet: {stored:?}"
        );
        let (pass_a, pass_b) = tokio::join!(a.deliver_due(), b.deliver_due());
        let (pass_a, pass_b) = (pass_a.unwrap(), pass_b.unwrap());
        assert_eq!(
            pass_a.delivered + pass_b.delivered,
            1,
            "{pass_a:?} {pass_b:?}"
        );
        assert_eq!(receiver.hits.lock().unwrap().len(), 1);
    })
    .await;
    sqlx::query(sqlx::AssertSqlSafe(format!("DROP SCHEMA {schema} CASCADE")))
        .execute(&mut admin)
        .await
        .unwrap();
    if let Err(e) = outcome {
        std::panic::resume_unwind(e.into_panic());
    }
}
