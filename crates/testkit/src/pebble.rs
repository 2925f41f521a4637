//! A private Pebble (Let's Encrypt's ACME test CA) for ACME client tests.
//!
//! [`Pebble::start`] writes a configuration that puts both of Pebble's listeners on one
//! loopback address, generates their TLS certificate (`localhost` and the address as
//! subjectAltNames, from a root made for this instance), starts `/usr/bin/pebble` with
//! `-dnsserver` pointing at a test DNS server, waits until the directory answers and fetches
//! the per-run issuing root. The process is killed when the [`Pebble`] is dropped.
//!
//! Pebble validates HTTP-01 on `http_port` and TLS-ALPN-01 on `tls_port` of whatever address
//! the host name resolves to through that DNS server, so a test serves its challenges on a
//! `TestNet` address with a matching A record.
//!
//! When Debian's `pebble` package is not installed, [`Pebble::start`] fails with
//! [`std::io::ErrorKind::NotFound`]; tests turn that into a skip.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType,
};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName};
use time::OffsetDateTime;

use crate::world::free_port;

/// Where Debian's `pebble` package installs the server.
pub const PEBBLE_BIN: &str = "/usr/bin/pebble";

/// How long Pebble may take to answer its directory after starting.
const START_TIMEOUT: Duration = Duration::from_secs(15);

/// Pebble's behaviour switches (its environment variables).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PebbleOptions {
    /// `PEBBLE_VA_ALWAYS_VALID`: every challenge passes without being checked.
    pub always_valid: bool,
    /// `PEBBLE_WFE_NONCEREJECT`: the percentage of good nonces rejected as `badNonce`. Pebble's
    /// own default is 5; 0 here, because instant-acme gives up after three `badNonce` answers
    /// to the same request, which a 5 % rate produces often enough over a test suite to make
    /// it flaky.
    pub nonce_reject_percent: u8,
    /// `PEBBLE_AUTHZREUSE`: the percentage of new orders that reuse a valid authorization of
    /// the same account and name (Pebble's own default is 50; 0 here, for determinism).
    pub authz_reuse_percent: u8,
}

/// A running Pebble.
pub struct Pebble {
    child: Child,
    dir: tempfile::TempDir,
    directory_url: String,
    management: SocketAddr,
    listener_root_pem: String,
    issuance_root_pem: String,
}

impl Pebble {
    /// Whether `/usr/bin/pebble` exists.
    pub fn installed() -> bool {
        Path::new(PEBBLE_BIN).is_file()
    }

    /// [`Pebble::start`] for a test: `None` (after saying why the test is skipped) when Pebble
    /// is not installed, unless `MTASTS_REQUIRE_SERVICES=1` (CI), where that is a failure; any
    /// other error is a failure.
    pub async fn start_or_skip(
        ip: IpAddr,
        dns: SocketAddr,
        http_port: u16,
        tls_port: u16,
        opts: PebbleOptions,
    ) -> Option<Pebble> {
        match Pebble::start(ip, dns, http_port, tls_port, opts).await {
            Ok(pebble) => Some(pebble),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                crate::services::skip(crate::services::Service::Pebble, &e);
                None
            }
            Err(e) => panic!("cannot start pebble: {e}"),
        }
    }

    /// Starts Pebble with its ACME and management listeners on free ports of `ip`, resolving
    /// names through the DNS server at `dns` and validating HTTP-01 on `http_port` and
    /// TLS-ALPN-01 on `tls_port`. Fails with `NotFound` when Pebble is not installed.
    pub async fn start(
        ip: IpAddr,
        dns: SocketAddr,
        http_port: u16,
        tls_port: u16,
        opts: PebbleOptions,
    ) -> io::Result<Pebble> {
        if !Self::installed() {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("pebble not installed ({PEBBLE_BIN}; Debian package `pebble`)"),
            ));
        }
        let (listener_root_pem, cert_pem, key_pem) = listener_certificate(ip)?;
        let roots = root_store(&listener_root_pem)?;
        let mut last_error = None;
        // Ports are picked by binding and releasing them; another process can take one in
        // between, so a failed start is retried on fresh ports.
        for _ in 0..3 {
            let dir = tempfile::tempdir()?;
            std::fs::write(dir.path().join("cert.pem"), &cert_pem)?;
            std::fs::write(dir.path().join("key.pem"), &key_pem)?;
            let acme = SocketAddr::new(ip, free_port(ip, &[http_port, tls_port])?);
            let management =
                SocketAddr::new(ip, free_port(ip, &[http_port, tls_port, acme.port()])?);
            let config = format!(
                r#"{{
  "pebble": {{
    "listenAddress": "{acme}",
    "managementListenAddress": "{management}",
    "certificate": "{cert}",
    "privateKey": "{key}",
    "httpPort": {http_port},
    "tlsPort": {tls_port},
    "ocspResponderURL": "",
    "externalAccountBindingRequired": false
  }}
}}
"#,
                acme = acme,
                management = management,
                cert = json_escape(&dir.path().join("cert.pem").to_string_lossy()),
                key = json_escape(&dir.path().join("key.pem").to_string_lossy()),
            );
            let config_path = dir.path().join("pebble-config.json");
            std::fs::write(&config_path, config)?;
            let log = std::fs::File::create(dir.path().join("pebble.log"))?;
            let mut command = Command::new(PEBBLE_BIN);
            command
                .arg("-config")
                .arg(&config_path)
                .arg("-dnsserver")
                .arg(dns.to_string())
                .current_dir(dir.path())
                .env("PEBBLE_VA_NOSLEEP", "1")
                .env(
                    "PEBBLE_WFE_NONCEREJECT",
                    opts.nonce_reject_percent.min(100).to_string(),
                )
                .env(
                    "PEBBLE_AUTHZREUSE",
                    opts.authz_reuse_percent.min(100).to_string(),
                )
                .stdin(Stdio::null())
                .stdout(log.try_clone()?)
                .stderr(log);
            if opts.always_valid {
                command.env("PEBBLE_VA_ALWAYS_VALID", "1");
            } else {
                command.env_remove("PEBBLE_VA_ALWAYS_VALID");
            }
            let child = command.spawn()?;
            let mut pebble = Pebble {
                child,
                dir,
                directory_url: format!("https://{}/dir", acme),
                management,
                listener_root_pem: listener_root_pem.clone(),
                issuance_root_pem: String::new(),
            };
            match pebble.wait_ready(acme, &roots).await {
                Ok(()) => {
                    let (status, body) =
                        https_get(management, ip, "/roots/0", &roots, Duration::from_secs(5))
                            .await?;
                    if status != 200 {
                        return Err(io::Error::other(format!(
                            "pebble /roots/0 answered {status}"
                        )));
                    }
                    pebble.issuance_root_pem = String::from_utf8(body)
                        .map_err(|_| io::Error::other("pebble's root is not UTF-8 PEM"))?;
                    return Ok(pebble);
                }
                Err(e) => last_error = Some(e),
            }
        }
        Err(last_error.unwrap_or_else(|| io::Error::other("pebble did not start")))
    }

    /// Polls the directory until it answers 200; fails with Pebble's log when it exits.
    async fn wait_ready(
        &mut self,
        acme: SocketAddr,
        roots: &Arc<rustls::RootCertStore>,
    ) -> io::Result<()> {
        let started = Instant::now();
        let ip = acme.ip();
        loop {
            if let Some(status) = self.child.try_wait()? {
                return Err(io::Error::other(format!(
                    "pebble exited ({status}):\n{}",
                    self.log()
                )));
            }
            if let Ok((200, _)) = https_get(acme, ip, "/dir", roots, Duration::from_secs(2)).await {
                return Ok(());
            }
            if started.elapsed() > START_TIMEOUT {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!(
                        "pebble's directory did not answer within {START_TIMEOUT:?}:\n{}",
                        self.log()
                    ),
                ));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The ACME directory URL (`https://<ip>:<port>/dir`).
    pub fn directory_url(&self) -> &str {
        &self.directory_url
    }

    /// The root of Pebble's HTTPS listeners' certificate, PEM: what the ACME client trusts.
    pub fn listener_root_pem(&self) -> &str {
        &self.listener_root_pem
    }

    /// The root Pebble issues certificates under (random per run), PEM: what clients
    /// verifying an issued certificate trust.
    pub fn issuance_root_pem(&self) -> &str {
        &self.issuance_root_pem
    }

    /// A rustls root store trusting only [`Pebble::issuance_root_pem`].
    pub fn issuance_roots(&self) -> Arc<rustls::RootCertStore> {
        root_store(&self.issuance_root_pem).expect("pebble's issuing root is a usable root")
    }

    /// The management interface's address (`/roots/0`, `/intermediates/0`, …).
    pub fn management_addr(&self) -> SocketAddr {
        self.management
    }

    /// Everything Pebble wrote so far (for failure messages).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("pebble.log")).unwrap_or_default()
    }
}

impl Drop for Pebble {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A root made for this Pebble and a leaf for `localhost` and `ip` signed by it:
/// (root PEM, leaf PEM, leaf key PEM).
fn listener_certificate(ip: IpAddr) -> io::Result<(String, String, String)> {
    let fail = |e: rcgen::Error| io::Error::other(format!("pebble listener certificate: {e}"));
    let now = OffsetDateTime::now_utc();
    let mut root = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, "mtasts pebble listener root");
    root.distinguished_name = dn;
    root.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    root.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    root.not_before = now - time::Duration::days(1);
    root.not_after = now + time::Duration::days(30);
    let root_key = KeyPair::generate().map_err(fail)?;
    let root_cert = root.self_signed(&root_key).map_err(fail)?;
    let issuer = Issuer::new(root, root_key);

    let mut leaf = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, "localhost");
    leaf.distinguished_name = dn;
    leaf.subject_alt_names = vec![
        SanType::DnsName("localhost".try_into().map_err(fail)?),
        SanType::IpAddress(ip),
    ];
    leaf.not_before = now - time::Duration::days(1);
    leaf.not_after = now + time::Duration::days(30);
    let leaf_key = KeyPair::generate().map_err(fail)?;
    let leaf_cert = leaf.signed_by(&leaf_key, &issuer).map_err(fail)?;
    Ok((root_cert.pem(), leaf_cert.pem(), leaf_key.serialize_pem()))
}

fn root_store(pem: &str) -> io::Result<Arc<rustls::RootCertStore>> {
    let mut store = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(pem.as_bytes()) {
        let cert = cert.map_err(|e| io::Error::other(format!("root PEM: {e}")))?;
        store
            .add(cert)
            .map_err(|e| io::Error::other(format!("root certificate: {e}")))?;
    }
    if store.is_empty() {
        return Err(io::Error::other("no root certificate in the PEM"));
    }
    Ok(Arc::new(store))
}

fn json_escape(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}

/// `GET path` over HTTPS to `addr`, verifying the certificate for `ip`: (status, body).
async fn https_get(
    addr: SocketAddr,
    ip: IpAddr,
    path: &str,
    roots: &Arc<rustls::RootCertStore>,
    timeout: Duration,
) -> io::Result<(u16, Vec<u8>)> {
    let get = async {
        let config = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::aws_lc_rs::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .map_err(io::Error::other)?
        .with_root_certificates(roots.clone())
        .with_no_client_auth();
        let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
        let tcp = tokio::net::TcpStream::connect(addr).await?;
        let tls = connector.connect(ServerName::from(ip), tcp).await?;
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
            .await
            .map_err(io::Error::other)?;
        let driver = tokio::spawn(connection);
        let request = hyper::Request::builder()
            .uri(path)
            .header(hyper::header::HOST, addr.to_string())
            .body(Empty::<Bytes>::new())
            .map_err(io::Error::other)?;
        let response = sender
            .send_request(request)
            .await
            .map_err(io::Error::other)?;
        let status = response.status().as_u16();
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(io::Error::other)?
            .to_bytes()
            .to_vec();
        driver.abort();
        Ok((status, body))
    };
    tokio::time::timeout(timeout, get)
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "no answer from pebble"))?
}
