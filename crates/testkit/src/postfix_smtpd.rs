//! A private, real Postfix SMTP server (smtpd) receiving on a loopback port, with STARTTLS
//! from the test CA, optionally asking for client certificates, and optionally
//! `check_policy_service` pointing at a policy service under test. Mail it accepts is
//! discarded (after `cleanup` wrote and fsynced the queue file, as for any mail Postfix
//! accepts: the `250` after the data means the message is on disk).
//!
//! It is started like [`crate::postfix::Postfix`] (same isolation: own directories,
//! namespaces, watchdog) and needs the same things (root, the `postfix` package; see
//! [`crate::postfix::available_or_skip`]). The smtpd listens on `127.0.0.1:PORT` only; it
//! accepts mail for [`RECEIVING_DOMAIN`] from any client on 127.0.0.1 (`mynetworks`), and
//! asks the policy service, when there is one, at RCPT time:
//!
//! ```text
//! smtpd_recipient_restrictions = check_policy_service <endpoint>, permit
//! ```
//!
//! Without one it is a plain receiving MX for its relay domains (the report-intake benchmark
//! uses it so, as the peer of `mtasts serve`'s SMTP intake).

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};

use crate::ca::{CertSpec, TestCa};
use crate::postfix::{MASTER_CF, Postfix, instance_dir, set_mode};

/// The domain the smtpd accepts mail for.
pub const RECEIVING_DOMAIN: &str = "inbound.test";
/// The name in the smtpd's certificate and greeting.
pub const SERVER_NAME: &str = "mx.inbound.test";

/// How the smtpd is configured.
#[derive(Clone, Debug)]
pub struct SmtpdConfig {
    /// The `check_policy_service` endpoint: `inet:127.0.0.1:PORT` or `unix:/path`. `None`: no
    /// policy service, Postfix's default recipient checks only.
    pub policy_service: Option<String>,
    /// `smtpd_tls_ask_ccert`: ask clients for a certificate, verified against the test CA
    /// (`smtpd_tls_CAfile`).
    pub ask_ccert: bool,
    /// Further `main.cf` parameters. One that the fixed setup also sets replaces it in place
    /// (e.g. `relay_domains`, to receive for another domain than [`RECEIVING_DOMAIN`]), so
    /// every parameter is written once.
    pub extra: Vec<(String, String)>,
}

/// A running receiving Postfix. Dropping it stops every process and removes its files.
pub struct PostfixSmtpd {
    postfix: Postfix,
    addr: SocketAddr,
}

impl PostfixSmtpd {
    /// Writes and starts the instance, its smtpd on a free port of 127.0.0.1 with a
    /// certificate for [`SERVER_NAME`] from `ca`.
    pub async fn start(ca: &TestCa, config: SmtpdConfig) -> std::io::Result<PostfixSmtpd> {
        let (dir, config_dir) = instance_dir()?;
        let root = dir.path().to_owned();
        let ip = Ipv4Addr::LOCALHOST;
        let port = crate::free_port(ip.into(), &[])?;
        let cert = ca.issue(SERVER_NAME, &CertSpec::Valid);
        let cert_file = config_dir.join("smtpd.pem");
        let key_file = config_dir.join("smtpd.key");
        let ca_file = config_dir.join("ca.pem");
        std::fs::write(&cert_file, cert.chain_pem())?;
        std::fs::write(&key_file, cert.key_pem())?;
        std::fs::write(&ca_file, ca.root_pem())?;
        set_mode(&cert_file, 0o644)?;
        set_mode(&key_file, 0o600)?;
        set_mode(&ca_file, 0o644)?;
        // No DNS is needed: the client's name comes from /etc/hosts (127.0.0.1 localhost).
        let resolv = root.join("resolv.conf");
        std::fs::write(
            &resolv,
            "nameserver 127.0.0.1\noptions timeout:1 attempts:1\n",
        )?;
        set_mode(&resolv, 0o644)?;
        let maillog = root.join("maillog");
        let files = Files {
            root: &root,
            maillog: &maillog,
            cert: &cert_file,
            key: &key_file,
            ca: &ca_file,
        };
        std::fs::write(config_dir.join("main.cf"), main_cf(&files, &config))?;
        let master_cf = format!(
            "{MASTER_CF}{ip}:{port} inet n - n - - smtpd\n  -o syslog_name=postfix/inbound\n"
        );
        std::fs::write(config_dir.join("master.cf"), master_cf)?;
        let postfix = Postfix::launch(dir, config_dir, maillog, &resolv).await?;
        Ok(PostfixSmtpd {
            postfix,
            addr: SocketAddr::from((ip, port)),
        })
    }

    /// Where the smtpd listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The instance's mail log so far.
    pub fn log(&self) -> String {
        self.postfix.log()
    }

    /// The instance's root directory.
    pub fn dir(&self) -> &Path {
        self.postfix.dir()
    }

    /// The process id of the instance's outermost process (see [`Postfix::pid`]).
    pub fn pid(&self) -> Option<u32> {
        self.postfix.pid()
    }
}

struct Files<'a> {
    root: &'a Path,
    maillog: &'a Path,
    cert: &'a PathBuf,
    key: &'a PathBuf,
    ca: &'a PathBuf,
}

fn main_cf(files: &Files<'_>, config: &SmtpdConfig) -> String {
    let root = files.root.display();
    let yes_no = |b: bool| if b { "yes" } else { "no" }.to_owned();
    let mut params: Vec<(String, String)> = [
        ("compatibility_level", "3.6".to_owned()),
        ("config_directory", format!("{root}/etc")),
        ("queue_directory", format!("{root}/queue")),
        ("data_directory", format!("{root}/data")),
        ("maillog_file", files.maillog.display().to_string()),
        ("maillog_file_prefixes", root.to_string()),
        ("myhostname", SERVER_NAME.to_owned()),
        ("mydomain", RECEIVING_DOMAIN.to_owned()),
        ("mydestination", String::new()),
        ("inet_interfaces", "loopback-only".to_owned()),
        ("inet_protocols", "ipv4".to_owned()),
        ("mynetworks", "127.0.0.0/8".to_owned()),
        // Accepted mail goes nowhere: the test is about what smtpd accepts.
        ("relay_domains", RECEIVING_DOMAIN.to_owned()),
        ("relay_transport", "discard:".to_owned()),
        ("default_transport", "discard:".to_owned()),
        ("local_transport", "discard:".to_owned()),
        ("alias_maps", String::new()),
        ("alias_database", String::new()),
        ("smtputf8_enable", "no".to_owned()),
        ("biff", "no".to_owned()),
        ("smtpd_tls_security_level", "may".to_owned()),
        ("smtpd_tls_cert_file", files.cert.display().to_string()),
        ("smtpd_tls_key_file", files.key.display().to_string()),
        ("smtpd_tls_CAfile", files.ca.display().to_string()),
        ("smtpd_tls_ask_ccert", yes_no(config.ask_ccert)),
        ("smtpd_tls_loglevel", "1".to_owned()),
        ("smtpd_tls_session_cache_database", String::new()),
        ("smtpd_tls_received_header", "yes".to_owned()),
        // A policy service that fails answers quickly in tests (the default waits 100 s).
        ("smtpd_policy_service_timeout", "10s".to_owned()),
        ("smtpd_policy_service_retry_delay", "1s".to_owned()),
        ("smtpd_error_sleep_time", "0".to_owned()),
        ("smtpd_soft_error_limit", "100".to_owned()),
        ("smtpd_hard_error_limit", "200".to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    if let Some(endpoint) = &config.policy_service {
        params.push((
            "smtpd_recipient_restrictions".to_owned(),
            format!("check_policy_service {endpoint}, permit"),
        ));
    }
    // Postfix keeps the last of duplicate parameters but logs a warning for each: replace in
    // place instead, so the log holds only what the test is about.
    for (key, value) in &config.extra {
        match params.iter_mut().find(|(k, _)| k == key) {
            Some(param) => param.1 = value.clone(),
            None => params.push((key.clone(), value.clone())),
        }
    }
    let mut text = String::from("# mtasts receiving Postfix test instance\n");
    for (key, value) in params {
        text.push_str(&format!("{key} = {value}\n"));
    }
    text
}
