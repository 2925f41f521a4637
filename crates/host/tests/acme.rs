//! `mtasts_host::acme` against a real Pebble on loopback (skipped, with a message, when
//! Debian's `pebble` package is not installed), plus a fake CA for rate limiting. The
//! validation tests serve the challenges with the node's own listeners
//! (`mtasts_host::policy_host`) and check the result with the strict policy fetcher.

use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::BoxFuture;
use mtasts_host::acme::{
    AcmeConfig, AcmeError, AcmeTimeouts, Challenge, ChallengeBoard, ChallengeKind, IssuedCert,
    Issuer, certified_key,
};
use mtasts_host::policy_host::{Http01, ListenerLimits, PolicyHost};
use mtasts_host::snapshot::{self, HostedDomain, Snapshot, SnapshotHandle, ZoneSettings};
use mtasts_net::fetch::{FetchConfig, FetchReport, PolicyFetch, PolicyFetcher};
use mtasts_proto::hosted::delegation::Delegation;
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
    Pebble::start_or_skip(net.next_ip(), net.dns_addr(), http_port, tls_port, opts).await
}

/// Two free ports on `ip` (nothing listens on them afterwards).
fn unused_ports(ip: IpAddr) -> (u16, u16) {
    let http = mtasts_testkit::free_port(ip, &[]).unwrap();
    (http, mtasts_testkit::free_port(ip, &[http]).unwrap())
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

/// Real validation: the policy host (TLS-ALPN-01) and the HTTP-01 listener of a node serve
/// the challenges from its snapshot on the address `mta-sts.example.com` resolves to.
struct Node {
    net: TestNet,
    snapshot: SnapshotHandle,
    board: SnapshotBoard,
    https_port: u16,
    _policy_host: PolicyHost,
    _http01: Http01,
}

const POLICY: &str = "version: STSv1\r\nmode: testing\r\nmx: mx.example.com\r\nmax_age: 86400\r\n";

impl Node {
    async fn start() -> Node {
        let net = TestNet::start().await;
        let web = net.next_ip();
        net.zone().add_ip(HOST, web);
        let https = tokio::net::TcpListener::bind((web, 0)).await.unwrap();
        let http = tokio::net::TcpListener::bind((web, 0)).await.unwrap();
        let https_port = https.local_addr().unwrap().port();
        let mut hosted = Snapshot::default();
        hosted.domains.insert(
            "example.com".to_string(),
            HostedDomain {
                name: "example.com".to_string(),
                tenant_id: 1,
                policy_body: POLICY.into(),
                txt_id: Some("1".to_string()),
                tlsrpt: None,
                certificate: None,
                reports_to_service: true,
            },
        );
        let snapshot = snapshot::handle(hosted);
        let settings = ZoneSettings {
            delegation: Delegation::new("hosting.example").unwrap(),
            public_ips: vec![web],
            ttl: 300,
            report_mail: true,
            own_policy_mode: mtasts_proto::sts::policy::Mode::Testing,
        };
        Node {
            _policy_host: PolicyHost::start(
                https,
                snapshot.clone(),
                settings,
                ListenerLimits::default(),
            ),
            _http01: Http01::start(http, snapshot.clone()),
            board: SnapshotBoard::new(snapshot.clone()),
            snapshot,
            https_port,
            net,
        }
    }

    fn http_port(&self) -> u16 {
        self._http01.local_addr().unwrap().port()
    }

    async fn pebble(&self) -> Option<Pebble> {
        start_pebble(
            &self.net,
            self.http_port(),
            self.https_port,
            PebbleOptions::default(),
        )
        .await
    }

    /// Serves `cert` for `mta-sts.example.com` from now on.
    fn install(&self, cert: &IssuedCert) {
        let key = cert.certified_key().unwrap();
        self.board.edit(|s| {
            s.domains.get_mut("example.com").unwrap().certificate = Some(key);
        });
    }

    /// The strict policy fetcher of `mtasts_net`, trusting only Pebble's issuing root.
    async fn fetch(&self, pebble: &Pebble) -> FetchReport {
        mtasts_net::install_crypto_provider();
        let dns = crate::support::dns::resolver(&self.net, Duration::from_secs(5));
        let mut config = FetchConfig::new(pebble.issuance_roots());
        config.port = self.https_port;
        config.timeout = Duration::from_secs(10);
        PolicyFetcher::new(config, Arc::new(dns))
            .fetch("example.com")
            .await
    }

    fn no_challenges_left(&self) -> bool {
        let challenges = &self.snapshot.load().challenges;
        challenges.http01.is_empty() && challenges.tls_alpn01.is_empty()
    }
}

#[tokio::test]
async fn http01_validation_through_the_http01_listener() {
    let node = Node::start().await;
    let Some(pebble) = node.pebble().await else {
        return;
    };
    let (issuer, _) = Issuer::connect(config(&pebble, ChallengeKind::Http01), None)
        .await
        .unwrap();
    let cert = issuer.issue(HOST, &node.board).await.unwrap_or_else(|e| {
        panic!("{e}\npebble log:\n{}", pebble.log());
    });
    verify_chain(&pebble, &cert.chain_pem, HOST).unwrap();
    assert_eq!(
        node.board.events(),
        vec![
            format!("publish http-01 {HOST}"),
            format!("withdraw http-01 {HOST}")
        ]
    );
    assert!(node.no_challenges_left());

    // (d) Served by the policy host, the certificate satisfies the strict fetcher.
    assert!(
        node.fetch(&pebble).await.outcome.is_err(),
        "no certificate yet"
    );
    node.install(&cert);
    let report = node.fetch(&pebble).await;
    assert_eq!(report.outcome.unwrap().body, POLICY.as_bytes());
}

#[tokio::test]
async fn tls_alpn01_validation_through_the_policy_host() {
    let node = Node::start().await;
    let Some(pebble) = node.pebble().await else {
        return;
    };
    let (issuer, _) = Issuer::connect(config(&pebble, ChallengeKind::TlsAlpn01), None)
        .await
        .unwrap();
    let first = issuer.issue(HOST, &node.board).await.unwrap_or_else(|e| {
        panic!("{e}\npebble log:\n{}", pebble.log());
    });
    verify_chain(&pebble, &first.chain_pem, HOST).unwrap();
    assert!(node.no_challenges_left());

    // (d) The issued certificate passes the strict fetcher.
    node.install(&first);
    let report = node.fetch(&pebble).await;
    assert_eq!(report.outcome.unwrap().body, POLICY.as_bytes());

    // Renewal: the challenge is answered on the same port while the current certificate
    // keeps serving everyone else.
    let renewed = issuer.issue(HOST, &node.board).await.unwrap_or_else(|e| {
        panic!("{e}\npebble log:\n{}", pebble.log());
    });
    assert_ne!(renewed.chain_pem, first.chain_pem);
    node.install(&renewed);
    let report = node.fetch(&pebble).await;
    assert_eq!(report.outcome.unwrap().body, POLICY.as_bytes());
    let round = [
        format!("publish tls-alpn-01 {HOST}"),
        format!("withdraw tls-alpn-01 {HOST}"),
    ];
    assert_eq!(node.board.events(), [round.clone(), round].concat());
}
