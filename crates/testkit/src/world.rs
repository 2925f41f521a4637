//! [`TestNet`]: the DNS server, CA, policy hosts and MX hosts together.

use std::collections::HashSet;
use std::hash::{BuildHasher, Hasher};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use crate::ca::TestCa;
use crate::dns::{DnsServer, Zone};
use crate::https::{PolicyHostSpec, PolicyHosts, PolicyResponse, PolicyServer, RecordedRequest};
use crate::smtp::{MxHostSpec, MxServer, ReceivedMail};

/// Blocks in use by this process, so parallel tests never share one.
fn blocks_in_use() -> &'static Mutex<HashSet<(u8, u8)>> {
    static BLOCKS: OnceLock<Mutex<HashSet<(u8, u8)>>> = OnceLock::new();
    BLOCKS.get_or_init(|| Mutex::new(HashSet::new()))
}

/// A random number for unique test names and blocks (no `rand` dependency needed).
pub fn random_u64() -> u64 {
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    );
    hasher.finish()
}

/// A random address in 127.0.0.0/8 outside 127.0.0.x (where other services like to live), for
/// a test server that needs no `TestNet` block, so parallel tests rarely share one.
pub fn random_loopback() -> IpAddr {
    let r = random_u64();
    IpAddr::V4(std::net::Ipv4Addr::new(
        127,
        (r % 254) as u8 + 1,
        (r >> 8) as u8,
        ((r >> 16) % 254) as u8 + 1,
    ))
}

/// A free TCP port on `ip` not in `avoid` (bound and released at once).
pub fn free_port(ip: IpAddr, avoid: &[u16]) -> std::io::Result<u16> {
    for _ in 0..20 {
        let port = std::net::TcpListener::bind(SocketAddr::new(ip, 0))?
            .local_addr()?
            .port();
        if !avoid.contains(&port) {
            return Ok(port);
        }
    }
    Err(std::io::Error::other("no free port"))
}

/// Ports for [`TestNet::start_with_ports`]; 0 picks a free port.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Ports {
    /// The DNS server's UDP and TCP port.
    pub dns: u16,
    /// The port of every HTTPS policy host.
    pub https: u16,
    /// The port of every SMTP MX host.
    pub smtp: u16,
}

impl Ports {
    /// 53, 443 and 25, as on the internet.
    pub fn standard() -> Self {
        Ports {
            dns: 53,
            https: 443,
            smtp: 25,
        }
    }
}

/// A loopback internet (see the crate docs).
///
/// Addresses: the DNS server is at `127.X.Y.1`, every host added gets the next address of the
/// block ([`TestNet::next_ip`]). Every HTTPS policy host listens on [`TestNet::https_port`],
/// every SMTP MX host on [`TestNet::smtp_port`]. Dropping the `TestNet` stops everything.
pub struct TestNet {
    block: (u8, u8),
    next_host: AtomicU16,
    dns: DnsServer,
    ca: TestCa,
    https_port: u16,
    smtp_port: u16,
    mx_servers: Mutex<Vec<MxServer>>,
    policy_hosts: Arc<PolicyHosts>,
    policy_servers: Mutex<Vec<PolicyServer>>,
}

impl TestNet {
    /// Starts the DNS server and the CA in a fresh random `127.X.Y.0/24` block.
    pub async fn start() -> TestNet {
        Self::start_with_ports(Ports::default())
            .await
            .unwrap_or_else(|e| panic!("cannot start a TestNet: {e}"))
    }

    /// Like [`TestNet::start`], with chosen ports (0 = any free port). Standard ports (53,
    /// 443, 25) let tools that cannot be told another port — other checkers in benchmarks —
    /// use the same fixtures; binding them needs root.
    pub async fn start_with_ports(ports: Ports) -> std::io::Result<TestNet> {
        let mut last_err = None;
        for _ in 0..50 {
            let r = random_u64();
            let block = ((r % 254) as u8 + 1, ((r >> 8) % 256) as u8);
            // A poisoned set is still a valid set.
            if !blocks_in_use()
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(block)
            {
                continue;
            }
            match Self::start_in(block, ports).await {
                Ok(net) => return Ok(net),
                Err(e) => {
                    blocks_in_use()
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .remove(&block);
                    last_err = Some(e);
                }
            }
        }
        Err(last_err.unwrap_or_else(|| std::io::Error::other("no free 127.X.Y.0/24 block")))
    }

    async fn start_in(block: (u8, u8), ports: Ports) -> std::io::Result<TestNet> {
        let dns_ip = IpAddr::V4(Ipv4Addr::new(127, block.0, block.1, 1));
        let dns =
            DnsServer::start_at(SocketAddr::new(dns_ip, ports.dns), Arc::new(Zone::new())).await?;
        let https_port = match ports.https {
            0 => free_port(dns_ip, &[dns.addr().port()])?,
            port => port,
        };
        let smtp_port = match ports.smtp {
            0 => free_port(dns_ip, &[dns.addr().port(), https_port])?,
            port => port,
        };
        Ok(TestNet {
            block,
            next_host: AtomicU16::new(2),
            dns,
            ca: TestCa::new(),
            https_port,
            smtp_port,
            mx_servers: Mutex::new(Vec::new()),
            policy_hosts: Arc::new(PolicyHosts::new()),
            policy_servers: Mutex::new(Vec::new()),
        })
    }

    /// The DNS server's address (UDP and TCP), for `--dns` / `DnsConfig.servers`.
    pub fn dns_addr(&self) -> SocketAddr {
        self.dns.addr()
    }

    /// The zone the DNS server answers from.
    pub fn zone(&self) -> &Zone {
        self.dns.zone()
    }

    /// The test CA.
    pub fn ca(&self) -> &TestCa {
        &self.ca
    }

    /// A PEM file holding the test root, for `--ca-file`.
    pub fn ca_file(&self) -> PathBuf {
        self.ca.root_file()
    }

    /// A rustls root store trusting only the test root.
    pub fn root_store(&self) -> Arc<rustls::RootCertStore> {
        self.ca.root_store()
    }

    /// The port every HTTPS policy host listens on.
    pub fn https_port(&self) -> u16 {
        self.https_port
    }

    /// The port every SMTP MX host listens on.
    pub fn smtp_port(&self) -> u16 {
        self.smtp_port
    }

    /// Allocates the next unused address of the block (nothing listens on it yet: connecting
    /// to it is refused).
    pub fn next_ip(&self) -> IpAddr {
        let n = self.next_host.fetch_add(1, Ordering::Relaxed);
        assert!(n <= 254, "a TestNet has at most 253 host addresses");
        IpAddr::V4(Ipv4Addr::new(127, self.block.0, self.block.1, n as u8))
    }

    /// Starts an SMTP MX host for `host_name` at `next_ip():smtp_port()`, publishes its A
    /// record and returns the address. The host runs until the `TestNet` is dropped.
    pub async fn add_mx_host(&self, host_name: &str, spec: MxHostSpec) -> IpAddr {
        let ip = self.next_ip();
        let server = MxServer::start(
            SocketAddr::new(ip, self.smtp_port),
            host_name,
            spec,
            &self.ca,
        )
        .await
        .unwrap_or_else(|e| panic!("cannot start the MX host {host_name} at {ip}: {e}"));
        self.zone().add_ip(host_name, ip);
        self.mx_servers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(server);
        ip
    }

    /// Every message the MX host(s) named `host_name` accepted so far, oldest first per host.
    pub fn received(&self, host_name: &str) -> Vec<ReceivedMail> {
        let name = host_name.trim_end_matches('.');
        self.mx_servers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .filter(|server| server.host_name().eq_ignore_ascii_case(name))
            .flat_map(|server| server.received())
            .collect()
    }

    /// Every message any MX host of this `TestNet` accepted so far.
    pub fn all_received(&self) -> Vec<ReceivedMail> {
        self.mx_servers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .flat_map(|server| server.received())
            .collect()
    }
}

impl TestNet {
    /// Starts an HTTPS policy host for `mta-sts.<domain>` at `next_ip():https_port()`,
    /// publishes its A record and returns the address.
    pub async fn add_policy_host(&self, domain: &str, spec: PolicyHostSpec) -> IpAddr {
        let ip = self.next_ip();
        self.set_policy_host(domain, spec);
        self.start_https_listener(ip).await;
        self.zone().add_ip(&policy_host_name(domain), ip);
        ip
    }

    /// The usual MTA-STS domain: publishes `_mta-sts.<domain>` TXT `record` (split into
    /// 255-byte strings if longer) and a valid policy host serving `policy` as `text/plain`.
    /// Nothing else (no MX). Returns the policy host's address.
    pub async fn add_sts_domain(&self, domain: &str, policy: &str, record: &str) -> IpAddr {
        self.zone()
            .add_txt_long(&format!("_mta-sts.{domain}"), record);
        self.add_policy_host(domain, PolicyHostSpec::new(PolicyResponse::policy(policy)))
            .await
    }

    /// Registers (or replaces) what every HTTPS listener of this TestNet serves for SNI
    /// `mta-sts.<domain>`, without touching DNS or starting a listener. A new certificate
    /// is issued.
    pub fn set_policy_host(&self, domain: &str, spec: PolicyHostSpec) {
        self.policy_hosts
            .set(&policy_host_name(domain), spec, &self.ca);
    }

    /// Registers what every HTTPS listener serves for SNI `host_name` (any name, e.g. a
    /// provider host a `mta-sts` CNAME points to).
    pub fn set_https_host(&self, host_name: &str, spec: PolicyHostSpec) {
        self.policy_hosts.set(host_name, spec, &self.ca);
    }

    /// Stops serving SNI `mta-sts.<domain>` (handshakes for it fail from now on).
    pub fn remove_policy_host(&self, domain: &str) {
        self.policy_hosts.remove(&policy_host_name(domain));
    }

    /// Starts an HTTPS listener at `ip:https_port()` serving every registered policy host by
    /// SNI (e.g. a second address of the same host).
    pub async fn start_https_listener(&self, ip: IpAddr) {
        let server = PolicyServer::start(
            SocketAddr::new(ip, self.https_port),
            self.policy_hosts.clone(),
        )
        .await
        .unwrap_or_else(|e| panic!("cannot start an HTTPS listener at {ip}: {e}"));
        self.policy_servers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(server);
    }

    /// Every request the HTTPS policy hosts received so far.
    pub fn policy_requests(&self) -> Vec<RecordedRequest> {
        self.policy_hosts.requests()
    }
}

/// `mta-sts.<domain>`.
fn policy_host_name(domain: &str) -> String {
    format!("mta-sts.{}", domain.trim_end_matches('.'))
}

impl Drop for TestNet {
    fn drop(&mut self) {
        blocks_in_use()
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&self.block);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::https::PolicyHostSpec;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    async fn https_get(net: &TestNet, ip: IpAddr, sni: &str) -> std::io::Result<String> {
        let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::aws_lc_rs::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(net.root_store())
        .with_no_client_auth();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
        let tcp = tokio::net::TcpStream::connect((ip, net.https_port())).await?;
        let name = rustls_pki_types::ServerName::try_from(sni.to_string()).unwrap();
        let mut tls = connector.connect(name, tcp).await?;
        tls.write_all(
            format!("GET /.well-known/mta-sts.txt HTTP/1.1\r\nHost: {sni}\r\n\r\n").as_bytes(),
        )
        .await?;
        let mut out = Vec::new();
        tls.read_to_end(&mut out).await?;
        Ok(String::from_utf8_lossy(&out).into_owned())
    }

    #[tokio::test]
    async fn nets_get_distinct_blocks() {
        let a = TestNet::start().await;
        let b = TestNet::start().await;
        assert_ne!(a.block, b.block);
        assert_ne!(a.dns_addr().ip(), b.dns_addr().ip());
        let first = a.next_ip();
        assert_ne!(first, a.dns_addr().ip());
        assert_ne!(first, a.next_ip());
    }

    #[tokio::test]
    async fn policy_host_serves_by_sni() {
        let net = TestNet::start().await;
        let policy = "version: STSv1\r\nmode: none\r\nmax_age: 86400\r\n";
        let ip = net
            .add_sts_domain("example.com", policy, "v=STSv1; id=1")
            .await;
        let answer = https_get(&net, ip, "mta-sts.example.com").await.unwrap();
        assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{answer}");
        assert!(answer.contains("Content-Type: text/plain\r\n"), "{answer}");
        assert!(answer.ends_with(policy), "{answer}");
        assert!(https_get(&net, ip, "mta-sts.other.example").await.is_err());
        assert_eq!(net.policy_requests().len(), 1);
        net.set_policy_host(
            "example.com",
            PolicyHostSpec::new(PolicyResponse::status(404)),
        );
        let answer = https_get(&net, ip, "mta-sts.example.com").await.unwrap();
        assert!(answer.starts_with("HTTP/1.1 404 Not Found\r\n"), "{answer}");
        net.remove_policy_host("example.com");
        assert!(https_get(&net, ip, "mta-sts.example.com").await.is_err());
    }

    #[tokio::test]
    async fn mx_host_listens_on_the_smtp_port() {
        let net = TestNet::start().await;
        let ip = net
            .add_mx_host("mx.example.com", MxHostSpec::default())
            .await;
        let mut tcp = tokio::net::TcpStream::connect((ip, net.smtp_port()))
            .await
            .unwrap();
        let mut greeting = [0u8; 4];
        tcp.read_exact(&mut greeting).await.unwrap();
        assert_eq!(&greeting, b"220 ");
    }
}
