//! `mtasts_host::acme` against a real Pebble on loopback (skipped, with a message, when
//! Debian's `pebble` package is not installed), plus a fake CA for rate limiting.

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::BoxFuture;
use mtasts_host::acme::{
    AcmeConfig, AcmeError, AcmeTimeouts, Challenge, ChallengeBoard, ChallengeKind, Issuer,
    certified_key,
};
use mtasts_host::snapshot::{self, Snapshot, SnapshotHandle};
use mtasts_testkit::{Pebble, PebbleOptions, TestNet};
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::ServerCertVerifier;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};

const HOST: &str = "mta-sts.example.com";

/// A board that puts challenges straight into a node's snapshot, and remembers what it did.
struct SnapshotBoard {
    snapshot: SnapshotHandle,
    events: Mutex<Vec<String>>,
}

impl SnapshotBoard {
    fn new(snapshot: SnapshotHandle) -> Self {
        SnapshotBoard {
            snapshot,
            events: Mutex::new(Vec::new()),
        }
    }

    fn events(&self) -> Vec<String> {
        self.events.lock().unwrap().clone()
    }

    fn edit(&self, f: impl FnOnce(&mut Snapshot)) {
        let mut next = Snapshot::clone(&self.snapshot.load());
        f(&mut next);
        next.generation += 1;
        self.snapshot.store(Arc::new(next));
    }
}

impl ChallengeBoard for SnapshotBoard {
    fn publish<'a>(&'a self, challenge: &'a Challenge) -> BoxFuture<'a, Result<(), AcmeError>> {
        Box::pin(async move {
            self.events.lock().unwrap().push(format!(
                "publish {} {}",
                challenge.kind(),
                challenge.host()
            ));
            match challenge {
                Challenge::Http01 {
                    token,
                    key_authorization,
                    ..
                } => self.edit(|s| {
                    s.challenges
                        .http01
                        .insert(token.clone(), key_authorization.clone());
                }),
                Challenge::TlsAlpn01 {
                    host,
                    cert_pem,
                    key_pem,
                    ..
                } => {
                    let key = certified_key(cert_pem, key_pem)?;
                    self.edit(|s| {
                        s.challenges.tls_alpn01.insert(host.clone(), key);
                    });
                }
            }
            Ok(())
        })
    }

    fn withdraw<'a>(&'a self, challenge: &'a Challenge) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            self.events.lock().unwrap().push(format!(
                "withdraw {} {}",
                challenge.kind(),
                challenge.host()
            ));
            self.edit(|s| match challenge {
                Challenge::Http01 { token, .. } => {
                    s.challenges.http01.remove(token);
                }
                Challenge::TlsAlpn01 { host, .. } => {
                    s.challenges.tls_alpn01.remove(host);
                }
            });
        })
    }
}

/// A Pebble on a fresh address of `net`, validating on `http_port` / `tls_port`; `None`
/// (after saying so) when Pebble is not installed.
async fn start_pebble(
    net: &TestNet,
    http_port: u16,
    tls_port: u16,
    opts: PebbleOptions,
) -> Option<Pebble> {
    match Pebble::start(net.next_ip(), net.dns_addr(), http_port, tls_port, opts).await {
        Ok(pebble) => Some(pebble),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            eprintln!("skipping: pebble not installed ({e})");
            None
        }
        Err(e) => panic!("cannot start pebble: {e}"),
    }
}

/// Two free ports on `ip` (nothing listens on them afterwards).
fn unused_ports(ip: IpAddr) -> (u16, u16) {
    let a = std::net::TcpListener::bind(SocketAddr::new(ip, 0)).unwrap();
    let b = std::net::TcpListener::bind(SocketAddr::new(ip, 0)).unwrap();
    (
        a.local_addr().unwrap().port(),
        b.local_addr().unwrap().port(),
    )
}

fn config(pebble: &Pebble, challenge: ChallengeKind) -> AcmeConfig {
    AcmeConfig {
        ca_root_pem: Some(pebble.listener_root_pem().to_string()),
        contact_email: Some("hostmaster@example.net".to_string()),
        challenge,
        timeouts: AcmeTimeouts {
            request: Duration::from_secs(10),
            publish: Duration::from_secs(10),
            validation: Duration::from_secs(30),
            issuance: Duration::from_secs(60),
        },
        ..AcmeConfig::new(pebble.directory_url())
    }
}

/// Verifies `chain_pem` for `host` against Pebble's issuing root.
fn verify_chain(pebble: &Pebble, chain_pem: &str, host: &str) -> Result<(), rustls::Error> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(chain_pem.as_bytes())
        .collect::<Result<_, _>>()
        .unwrap();
    let verifier = WebPkiServerVerifier::builder_with_provider(
        pebble.issuance_roots(),
        Arc::new(rustls::crypto::aws_lc_rs::default_provider()),
    )
    .build()
    .unwrap();
    verifier
        .verify_server_cert(
            &chain[0],
            &chain[1..],
            &ServerName::try_from(host.to_string()).unwrap(),
            &[],
            UnixTime::now(),
        )
        .map(|_| ())
}

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

#[tokio::test]
async fn always_valid_order_issues_a_chain_for_the_host() {
    let net = TestNet::start().await;
    let web = net.next_ip();
    net.zone().add_ip(HOST, web);
    let (http_port, tls_port) = unused_ports(web);
    let opts = PebbleOptions {
        always_valid: true,
        ..PebbleOptions::default()
    };
    let Some(pebble) = start_pebble(&net, http_port, tls_port, opts).await else {
        return;
    };

    let (issuer, credentials) = Issuer::connect(config(&pebble, ChallengeKind::Http01), None)
        .await
        .unwrap();
    let credentials = credentials.expect("a new account returns its credentials");
    assert!(!format!("{issuer:?}").contains(&credentials));

    let snapshot = snapshot::handle(Snapshot::default());
    let board = SnapshotBoard::new(snapshot.clone());
    let cert = issuer.issue("MTA-STS.example.com.", &board).await.unwrap();

    verify_chain(&pebble, &cert.chain_pem, HOST).unwrap();
    assert!(verify_chain(&pebble, &cert.chain_pem, "mta-sts.example.org").is_err());
    assert!(
        cert.not_before <= now() && now() < cert.not_after,
        "{cert:?}"
    );
    assert!(cert.key_pem.starts_with("-----BEGIN PRIVATE KEY-----"));
    assert!(!format!("{cert:?}").contains("PRIVATE KEY"));
    let key = cert.certified_key().unwrap();
    assert!(key.cert.len() >= 2, "leaf and intermediate");

    assert_eq!(
        board.events(),
        vec![
            format!("publish http-01 {HOST}"),
            format!("withdraw http-01 {HOST}")
        ]
    );
    assert!(snapshot.load().challenges.http01.is_empty());

    // The saved credentials restore the same account (no new credentials to persist).
    let (again, none) = Issuer::connect(config(&pebble, ChallengeKind::Http01), Some(&credentials))
        .await
        .unwrap();
    assert!(none.is_none());
    assert_eq!(again.account_id(), issuer.account_id());
    let second = again.issue(HOST, &board).await.unwrap();
    verify_chain(&pebble, &second.chain_pem, HOST).unwrap();
    assert_ne!(
        second.key_pem, cert.key_pem,
        "every certificate gets a fresh key"
    );
}

#[tokio::test]
async fn tls_alpn01_is_used_when_configured() {
    let net = TestNet::start().await;
    let web = net.next_ip();
    net.zone().add_ip(HOST, web);
    let (http_port, tls_port) = unused_ports(web);
    let opts = PebbleOptions {
        always_valid: true,
        ..PebbleOptions::default()
    };
    let Some(pebble) = start_pebble(&net, http_port, tls_port, opts).await else {
        return;
    };
    let (issuer, _) = Issuer::connect(config(&pebble, ChallengeKind::TlsAlpn01), None)
        .await
        .unwrap();
    let board = SnapshotBoard::new(snapshot::handle(Snapshot::default()));
    let cert = issuer.issue(HOST, &board).await.unwrap();
    verify_chain(&pebble, &cert.chain_pem, HOST).unwrap();
    assert_eq!(
        board.events(),
        vec![
            format!("publish tls-alpn-01 {HOST}"),
            format!("withdraw tls-alpn-01 {HOST}")
        ]
    );
}

#[tokio::test]
async fn reused_authorization_needs_no_challenge() {
    let net = TestNet::start().await;
    let web = net.next_ip();
    net.zone().add_ip(HOST, web);
    let (http_port, tls_port) = unused_ports(web);
    let opts = PebbleOptions {
        always_valid: true,
        authz_reuse_percent: 100,
        ..PebbleOptions::default()
    };
    let Some(pebble) = start_pebble(&net, http_port, tls_port, opts).await else {
        return;
    };
    let (issuer, _) = Issuer::connect(config(&pebble, ChallengeKind::Http01), None)
        .await
        .unwrap();
    let board = SnapshotBoard::new(snapshot::handle(Snapshot::default()));
    issuer.issue(HOST, &board).await.unwrap();
    let cert = issuer.issue(HOST, &board).await.unwrap();
    verify_chain(&pebble, &cert.chain_pem, HOST).unwrap();
    assert_eq!(board.events().len(), 2, "{:?}", board.events());
}

#[tokio::test]
async fn unserved_challenge_is_rejected_and_withdrawn() {
    let net = TestNet::start().await;
    // The name resolves, but nothing listens there.
    let web = net.next_ip();
    net.zone().add_ip(HOST, web);
    let (http_port, tls_port) = unused_ports(web);
    let Some(pebble) = start_pebble(&net, http_port, tls_port, PebbleOptions::default()).await
    else {
        return;
    };
    for kind in [ChallengeKind::Http01, ChallengeKind::TlsAlpn01] {
        let (issuer, _) = Issuer::connect(config(&pebble, kind), None).await.unwrap();
        let snapshot = snapshot::handle(Snapshot::default());
        let board = SnapshotBoard::new(snapshot.clone());
        let err = issuer.issue(HOST, &board).await.unwrap_err();
        assert!(matches!(err, AcmeError::Rejected { .. }), "{kind}: {err:?}");
        assert_eq!(
            board.events(),
            vec![
                format!("publish {kind} {HOST}"),
                format!("withdraw {kind} {HOST}")
            ]
        );
        let challenges = &snapshot.load().challenges;
        assert!(challenges.http01.is_empty() && challenges.tls_alpn01.is_empty());
    }
}

#[tokio::test]
async fn name_without_address_is_rejected() {
    let net = TestNet::start().await;
    let (http_port, tls_port) = unused_ports(net.next_ip());
    let Some(pebble) = start_pebble(&net, http_port, tls_port, PebbleOptions::default()).await
    else {
        return;
    };
    let (issuer, _) = Issuer::connect(config(&pebble, ChallengeKind::Http01), None)
        .await
        .unwrap();
    let board = SnapshotBoard::new(snapshot::handle(Snapshot::default()));
    let err = issuer
        .issue("mta-sts.nowhere.example", &board)
        .await
        .unwrap_err();
    assert!(matches!(err, AcmeError::Rejected { .. }), "{err:?}");
}

#[tokio::test]
async fn persistent_bad_nonces_are_unavailable() {
    let net = TestNet::start().await;
    let (http_port, tls_port) = unused_ports(net.next_ip());
    let opts = PebbleOptions {
        nonce_reject_percent: 100,
        ..PebbleOptions::default()
    };
    let Some(pebble) = start_pebble(&net, http_port, tls_port, opts).await else {
        return;
    };
    let err = Issuer::connect(config(&pebble, ChallengeKind::Http01), None)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, AcmeError::Unavailable { detail } if detail.contains("badNonce")),
        "{err:?}"
    );
}

#[tokio::test]
async fn saved_credentials_must_match_the_directory() {
    let net = TestNet::start().await;
    let (http_port, tls_port) = unused_ports(net.next_ip());
    let Some(pebble) = start_pebble(&net, http_port, tls_port, PebbleOptions::default()).await
    else {
        return;
    };
    let (_, credentials) = Issuer::connect(config(&pebble, ChallengeKind::Http01), None)
        .await
        .unwrap();
    let credentials = credentials.unwrap();
    let mut other = config(&pebble, ChallengeKind::Http01);
    other.directory_url = other.directory_url.replace("/dir", "/directory");
    let err = Issuer::connect(other, Some(&credentials))
        .await
        .unwrap_err();
    assert!(matches!(err, AcmeError::Invalid { .. }), "{err:?}");
    let err = Issuer::connect(config(&pebble, ChallengeKind::Http01), Some("{\"id\": 3}"))
        .await
        .unwrap_err();
    assert!(matches!(err, AcmeError::Invalid { .. }), "{err:?}");
    assert!(!err.to_string().contains('3'), "{err}");
}

#[tokio::test]
async fn a_forgotten_account_is_replaced() {
    let net = TestNet::start().await;
    let (http_port, tls_port) = unused_ports(net.next_ip());
    let opts = PebbleOptions {
        always_valid: true,
        ..PebbleOptions::default()
    };
    let Some(first) = start_pebble(&net, http_port, tls_port, opts).await else {
        return;
    };
    let (_, credentials) = Issuer::connect(config(&first, ChallengeKind::Http01), None)
        .await
        .unwrap();
    let credentials = credentials.unwrap();
    // A second Pebble knows no accounts; same directory URL as far as the credentials care.
    let Some(second) = start_pebble(&net, http_port, tls_port, opts).await else {
        return;
    };
    let credentials = credentials.replace(first.directory_url(), second.directory_url());
    let (issuer, replaced) =
        Issuer::connect(config(&second, ChallengeKind::Http01), Some(&credentials))
            .await
            .unwrap();
    assert!(replaced.is_some(), "a new account to persist");
    let board = SnapshotBoard::new(snapshot::handle(Snapshot::default()));
    issuer.issue(HOST, &board).await.unwrap();
}

#[tokio::test]
async fn unreachable_ca_is_unavailable() {
    let net = TestNet::start().await;
    let (port, _) = unused_ports(net.next_ip());
    let mut config = AcmeConfig::new(format!("https://{}:{port}/dir", net.next_ip()));
    config.timeouts.request = Duration::from_secs(5);
    let err = Issuer::connect(config, None).await.unwrap_err();
    assert!(matches!(err, AcmeError::Unavailable { .. }), "{err:?}");
}

#[tokio::test]
async fn tls_alpn01_certificate_carries_the_digest() {
    use x509_parser::prelude::*;
    let key_authorization = "token-abc.thumbprint-xyz";
    let challenge = Challenge::tls_alpn01(HOST, "token-abc", key_authorization).unwrap();
    let Challenge::TlsAlpn01 {
        cert_pem, key_pem, ..
    } = &challenge
    else {
        panic!("{challenge:?}");
    };
    assert!(!format!("{challenge:?}").contains("PRIVATE"));
    let der = CertificateDer::from_pem_slice(cert_pem.as_bytes()).unwrap();
    let (_, cert) = X509Certificate::from_der(der.as_ref()).unwrap();

    // Self-signed, for exactly the host.
    assert_eq!(cert.issuer(), cert.subject());
    let san = cert.subject_alternative_name().unwrap().unwrap();
    assert_eq!(san.value.general_names, vec![GeneralName::DNSName(HOST)]);

    // id-pe-acmeIdentifier: critical, an OCTET STRING of SHA-256(key authorization).
    let acme_oid = x509_parser::oid_registry::Oid::from(&[1, 3, 6, 1, 5, 5, 7, 1, 31]).unwrap();
    let ext = cert
        .extensions()
        .iter()
        .find(|e| e.oid == acme_oid)
        .expect("acmeIdentifier extension");
    assert!(ext.critical);
    let digest =
        aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, key_authorization.as_bytes());
    let mut expected = vec![0x04, 0x20];
    expected.extend_from_slice(digest.as_ref());
    assert_eq!(ext.value, expected.as_slice());

    // rustls accepts it as a server certificate with its key, and not with another key.
    certified_key(cert_pem, key_pem).unwrap();
    let Challenge::TlsAlpn01 { key_pem: other, .. } =
        Challenge::tls_alpn01(HOST, "token-abc", key_authorization).unwrap()
    else {
        unreachable!()
    };
    let err = certified_key(cert_pem, &other).unwrap_err();
    assert!(matches!(err, AcmeError::Invalid { .. }), "{err:?}");
    assert!(!err.to_string().contains("PRIVATE"), "{err}");
}

#[tokio::test]
async fn rate_limit_carries_retry_after() {
    let (directory_url, root_pem, _server) = fake_ca::start().await;
    let mut config = AcmeConfig::new(directory_url);
    config.ca_root_pem = Some(root_pem);
    let err = Issuer::connect(config, None).await.unwrap_err();
    assert_eq!(
        err,
        AcmeError::RateLimited {
            retry_after: Some(Duration::from_secs(3600))
        }
    );
}

/// A CA that answers every account request with `rateLimited` and `Retry-After: 3600`.
mod fake_ca {
    use bytes::Bytes;
    use http_body_util::Full;
    use hyper::{Request, Response};
    use hyper_util::rt::TokioIo;
    use mtasts_testkit::{CertSpec, TestCa};
    use tokio::net::TcpListener;

    pub(super) struct Server {
        _ca: TestCa,
        task: tokio::task::JoinHandle<()>,
    }

    impl Drop for Server {
        fn drop(&mut self) {
            self.task.abort();
        }
    }

    pub(super) async fn start() -> (String, String, Server) {
        let ca = TestCa::new();
        let cert = ca.issue("localhost", &CertSpec::Valid);
        let tls = tokio_rustls::TlsAcceptor::from(cert.server_config(&[b"http/1.1"]));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!(
            "https://localhost:{}",
            listener.local_addr().unwrap().port()
        );
        let directory = format!(
            r#"{{"newNonce":"{base}/nonce","newAccount":"{base}/account","newOrder":"{base}/order"}}"#
        );
        let task = tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    return;
                };
                let tls = tls.clone();
                let directory = directory.clone();
                tokio::spawn(async move {
                    let Ok(stream) = tls.accept(tcp).await else {
                        return;
                    };
                    let service = hyper::service::service_fn(move |req: Request<_>| {
                        let directory = directory.clone();
                        async move { Ok::<_, std::convert::Infallible>(answer(&req, &directory)) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        (
            format!("{base}/dir"),
            ca.root_pem(),
            Server { _ca: ca, task },
        )
    }

    fn answer<B>(req: &Request<B>, directory: &str) -> Response<Full<Bytes>> {
        let builder = Response::builder().header("Replay-Nonce", "nonce-1");
        match req.uri().path() {
            "/dir" => builder.body(Full::from(directory.to_string())),
            "/nonce" => builder.body(Full::default()),
            _ => builder
                .status(429)
                .header("Content-Type", "application/problem+json")
                .header("Retry-After", "3600")
                .body(Full::from(
                    r#"{"type":"urn:ietf:params:acme:error:rateLimited","detail":"too many new accounts","status":429}"#,
                )),
        }
        .unwrap()
    }
}
