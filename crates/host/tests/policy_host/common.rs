//! A policy host on a TestNet address with three hosted domains, and clients for it.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use mtasts_host::policy_host::{ListenerLimits, PolicyHost, certified_key_from_pem};
use mtasts_host::snapshot::{HostedDomain, Snapshot, SnapshotHandle, ZoneSettings, handle};
use mtasts_net::cert::OnInvalid;
use mtasts_net::fetch::{FetchConfig, FetchReport, PolicyFetch, PolicyFetcher};
use mtasts_proto::hosted::delegation::Delegation;
use mtasts_testkit::{CertSpec, ServerCert, TestNet};
use rustls::ClientConfig;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::sign::CertifiedKey;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

/// The service's zone: the fallback certificate is for `policy.hosting.example`.
pub(crate) const ZONE: &str = "hosting.example";
pub(crate) const FALLBACK_NAME: &str = "policy.hosting.example";

pub(crate) const POLICY_A: &str =
    "version: STSv1\r\nmode: enforce\r\nmx: mx.a.example\r\nmax_age: 86400\r\n";
pub(crate) const POLICY_B: &str =
    "version: STSv1\r\nmode: testing\r\nmx: *.b.example\r\nmax_age: 604800\r\n";
pub(crate) const POLICY_C: &str = "version: STSv1\r\nmode: none\r\nmax_age: 86400\r\n";

/// `a.example` and `b.example` with certificates, `c.example` without one yet.
pub(crate) struct Site {
    pub(crate) net: TestNet,
    pub(crate) addr: SocketAddr,
    pub(crate) snapshot: SnapshotHandle,
    pub(crate) host: Option<PolicyHost>,
    pub(crate) a_cert: ServerCert,
}

pub(crate) fn hosted(
    name: &str,
    body: &str,
    certificate: Option<Arc<CertifiedKey>>,
) -> HostedDomain {
    HostedDomain {
        name: name.to_string(),
        tenant_id: 1,
        policy_body: body.into(),
        txt_id: Some("1".to_string()),
        tlsrpt: None,
        certificate,
        reports_to_service: true,
    }
}

/// A certificate for `host` from the TestNet CA, loaded as the node loader will.
pub(crate) fn issue(net: &TestNet, host: &str) -> (ServerCert, Arc<CertifiedKey>) {
    let cert = net.ca().issue(host, &CertSpec::Valid);
    let key = certified_key_from_pem(&cert.chain_pem(), &cert.key_pem()).expect("load test cert");
    (cert, key)
}

/// Small timeouts for the tests that wait for them.
pub(crate) fn short_limits() -> ListenerLimits {
    ListenerLimits {
        handshake_timeout: Duration::from_millis(300),
        header_read_timeout: Duration::from_millis(300),
        idle_timeout: Duration::from_millis(300),
        shutdown_grace: Duration::from_secs(2),
        ..ListenerLimits::default()
    }
}

impl Site {
    pub(crate) async fn start() -> Site {
        Self::start_with(ListenerLimits::default()).await
    }

    pub(crate) async fn start_with(limits: ListenerLimits) -> Site {
        let net = TestNet::start().await;
        let ip = net.next_ip();
        let listener = TcpListener::bind((ip, 0))
            .await
            .expect("bind the policy host");
        let addr = listener.local_addr().unwrap();
        let (a_cert, a_key) = issue(&net, "mta-sts.a.example");
        let (_, b_key) = issue(&net, "mta-sts.b.example");
        let mut snapshot = Snapshot {
            generation: 1,
            ..Default::default()
        };
        for domain in [
            hosted("a.example", POLICY_A, Some(a_key)),
            hosted("b.example", POLICY_B, Some(b_key)),
            hosted("c.example", POLICY_C, None),
        ] {
            net.zone().add_ip(&format!("mta-sts.{}", domain.name), ip);
            snapshot.domains.insert(domain.name.clone(), domain);
        }
        let snapshot = handle(snapshot);
        let settings = ZoneSettings {
            delegation: Delegation::new(ZONE).unwrap(),
            public_ips: vec![ip],
            ttl: 300,
            report_mail: true,
            own_policy_mode: mtasts_proto::sts::policy::Mode::Testing,
        };
        let host = PolicyHost::start(listener, snapshot.clone(), settings, limits);
        assert_eq!(host.local_addr(), Some(addr));
        Site {
            net,
            addr,
            snapshot,
            host: Some(host),
            a_cert,
        }
    }

    pub(crate) fn ip(&self) -> IpAddr {
        self.addr.ip()
    }

    /// Replaces the snapshot by `change` applied to a copy of the current one.
    pub(crate) fn update(&self, change: impl FnOnce(&mut Snapshot)) {
        let mut next = Snapshot::clone(&self.snapshot.load());
        next.generation += 1;
        change(&mut next);
        self.snapshot.store(Arc::new(next));
    }

    /// The strict fetcher of `mtasts_net`, trusting the TestNet CA and resolving through its DNS.
    pub(crate) async fn fetch(&self, domain: &str) -> FetchReport {
        mtasts_net::install_crypto_provider();
        let dns = crate::support::dns::resolver(&self.net, Duration::from_secs(5));
        let mut config = FetchConfig::new(self.net.root_store());
        config.port = self.addr.port();
        config.timeout = Duration::from_secs(10);
        PolicyFetcher::new(config, Arc::new(dns))
            .fetch(domain)
            .await
    }

    /// A TLS connection with SNI `sni` (when `send_sni`) offering `alpn`.
    pub(crate) async fn tls(
        &self,
        sni: &str,
        send_sni: bool,
        alpn: &[&[u8]],
        trust: Trust,
    ) -> std::io::Result<TlsStream<TcpStream>> {
        let tcp = TcpStream::connect(self.addr).await?;
        let mut config = client_config(trust, &self.net);
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        config.enable_sni = send_sni;
        let name = ServerName::try_from(sni.to_string()).unwrap();
        TlsConnector::from(Arc::new(config))
            .connect(name, tcp)
            .await
    }

    /// One HTTP/1.1 request on a fresh, verified connection for `sni`.
    pub(crate) async fn http1(&self, sni: &str, request: &str) -> HttpResponse {
        let mut tls = self
            .tls(sni, true, &[b"http/1.1"], Trust::TestCa)
            .await
            .expect("TLS handshake");
        exchange(&mut tls, request).await
    }
}

/// What the client trusts.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Trust {
    /// Only the TestNet CA, with WebPKI name checks.
    TestCa,
    /// Anything (to look at the fallback and challenge certificates).
    Any,
}

pub(crate) fn client_config(trust: Trust, net: &TestNet) -> ClientConfig {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .unwrap();
    match trust {
        Trust::TestCa => builder.with_root_certificates(net.root_store()),
        // The prober's verifier records and lets any chain through, still checking the
        // handshake signature against the presented key.
        Trust::Any => builder.dangerous().with_custom_certificate_verifier(
            mtasts_net::cert::RecordingVerifier::new(net.root_store(), OnInvalid::Continue),
        ),
    }
    .with_no_client_auth()
}

/// The end-entity certificate the server presented.
pub(crate) fn peer_cert(tls: &TlsStream<TcpStream>) -> CertificateDer<'static> {
    tls.get_ref().1.peer_certificates().expect("a certificate")[0].clone()
}

/// The subjectAltName DNS names of a certificate.
pub(crate) fn dns_names(cert: &CertificateDer<'_>) -> Vec<String> {
    let (_, parsed) = x509_parser::parse_x509_certificate(cert.as_ref()).unwrap();
    parsed
        .subject_alternative_name()
        .unwrap()
        .map(|san| {
            san.value
                .general_names
                .iter()
                .filter_map(|name| match name {
                    x509_parser::extensions::GeneralName::DNSName(n) => Some(n.to_string()),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default()
}

/// A parsed HTTP/1.x response.
#[derive(Debug)]
pub(crate) struct HttpResponse {
    pub(crate) status_line: String,
    pub(crate) status: u16,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: Vec<u8>,
}

impl HttpResponse {
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Sends `request` (which should say `Connection: close`) and reads the response to EOF.
pub(crate) async fn exchange<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    request: &str,
) -> HttpResponse {
    stream.write_all(request.as_bytes()).await.unwrap();
    stream.flush().await.unwrap();
    let raw = read_to_close(stream, Duration::from_secs(10))
        .await
        .expect("a response before the connection closed");
    parse_response(&raw)
}

/// Everything until the peer closes (a missing TLS close_notify counts as a close);
/// `None` on timeout.
pub(crate) async fn read_to_close<S: AsyncRead + Unpin>(
    stream: &mut S,
    limit: Duration,
) -> Option<Vec<u8>> {
    let mut raw = Vec::new();
    let mut buf = [0u8; 4096];
    tokio::time::timeout(limit, async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => raw.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await
    .ok()?;
    Some(raw)
}

pub(crate) fn parse_response(raw: &[u8]) -> HttpResponse {
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no response head in {:?}", String::from_utf8_lossy(raw)));
    let head = std::str::from_utf8(&raw[..end]).unwrap();
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap().to_string();
    let status = status_line.split(' ').nth(1).unwrap().parse().unwrap();
    let headers = lines
        .map(|line| {
            let (name, value) = line.split_once(':').unwrap();
            (name.trim().to_string(), value.trim().to_string())
        })
        .collect();
    HttpResponse {
        status_line,
        status,
        headers,
        body: raw[end + 4..].to_vec(),
    }
}

/// A GET request for the policy of `host`.
pub(crate) fn get(path: &str, host: &str) -> String {
    request("GET", path, host)
}

pub(crate) fn request(method: &str, path: &str, host: &str) -> String {
    format!("{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n")
}

pub(crate) const POLICY_PATH: &str = "/.well-known/mta-sts.txt";
