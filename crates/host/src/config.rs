//! The configuration of `mtasts serve`: one TOML table whose keys are the long flag names
//! with `_` for `-`. Every key has a default except `zone` and `public_ip`.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

use serde::Deserialize;
use thiserror::Error;

use crate::client_addr::TrustedProxies;

/// Let's Encrypt's production directory: the default ACME CA.
pub const LETS_ENCRYPT: &str = "https://acme-v02.api.letsencrypt.org/directory";

/// Everything `mtasts serve` needs to run.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServeConfig {
    /// `sqlite:PATH` or `postgres://…`; default `sqlite:<data_dir>/serve.db`.
    pub database: Option<String>,
    /// Where the SQLite database lives when `database` is not set.
    pub data_dir: PathBuf,
    /// The service's own DNS zone (`--zone`), e.g. `mta-sts.provider.example`.
    pub zone: String,
    /// Public addresses of the policy host and name server (`--public-ip`, repeatable).
    pub public_ip: Vec<IpAddr>,
    /// HTTPS policy host listeners.
    pub https_listen: Vec<SocketAddr>,
    /// HTTP listeners: ACME HTTP-01 challenges only.
    pub http_listen: Vec<SocketAddr>,
    /// DNS authority listeners (UDP and TCP on each).
    pub dns_listen: Vec<SocketAddr>,
    /// API and dashboard listener.
    pub api_listen: SocketAddr,
    /// ACME directory URL; an empty string turns certificate ordering off.
    pub acme_directory: String,
    /// Extra trust root (PEM) for the ACME server's HTTPS, e.g. Pebble's.
    pub acme_ca_file: Option<PathBuf>,
    /// Contact address for the ACME account.
    pub acme_email: Option<String>,
    /// Preferred challenge: `http-01` or `tls-alpn-01`.
    pub acme_challenge: String,
    /// DNS servers for verification lookups (default: the system's).
    pub dns: Vec<SocketAddr>,
    /// Extra trust roots (PEM) for verification fetches.
    pub ca_file: Vec<PathBuf>,
    /// TTL of every record the zone serves.
    pub ttl: u32,
    /// This node's name in the database (default: host name and process id).
    pub node_id: Option<String>,
    /// Seconds between verifications of a domain whose delegation is in place.
    pub verify_interval: u64,
    /// Seconds between verifications of a domain whose policy host does not point here yet.
    pub pending_verify_interval: u64,
    /// Milliseconds between database polls.
    pub poll_interval_ms: u64,
    /// Seconds after its last heartbeat before the row of a node that is gone is deleted
    /// (never less than the 15 s liveness window).
    pub node_retention: u64,
    /// PBKDF2 iterations for new passwords.
    pub password_iterations: u32,
    /// The dashboard's public URL (e.g. `https://mta-sts.provider.example`): `https` makes its
    /// cookies `Secure`, and its origin is accepted behind a reverse proxy.
    pub public_url: Option<String>,
    /// A file holding the key (64 hex digits, `mtasts admin secret-key new`) that seals
    /// certificate private keys, ACME account credentials and TLS-ALPN-01 challenge keys in
    /// the database; else the `MTASTS_SECRET_KEY` environment variable; else they are stored
    /// unencrypted (with a warning at start).
    pub secret_key_file: Option<PathBuf>,
    /// Files of earlier keys, which still open what they sealed until it is resealed under
    /// the current key at start (rotation); `MTASTS_PREVIOUS_SECRET_KEYS` adds more.
    pub previous_secret_key_files: Vec<PathBuf>,
    /// Reverse proxies (addresses or networks, `["127.0.0.1", "10.0.0.0/8"]`) whose
    /// `Forwarded` / `X-Forwarded-For` headers name the client for per-client limits and logs;
    /// default none (the TCP peer is the client).
    pub trusted_proxies: TrustedProxies,
    /// Seconds a dashboard session may go unused before it ends.
    pub session_idle_timeout: u64,
    /// Seconds a dashboard session lasts at most.
    pub session_lifetime: u64,
    /// Test-only: let verification connect to loopback and private addresses (by default
    /// they look absent, so tenants cannot probe the service's network).
    pub verify_private_addresses: bool,
    /// Test-only: the HTTPS port verification fetches use (RFC 8461 fixes 443).
    pub verify_https_port: u16,
    /// Test-only: the SMTP port the verification checker probes.
    pub verify_smtp_port: u16,
    /// Prometheus metrics listener (`GET /metrics`, plain HTTP); default none. See
    /// docs/metrics.md.
    pub metrics_listen: Option<SocketAddr>,
    /// The mode of the report host's own MTA-STS policy (`mta-sts.reports.<zone>`):
    /// `testing` (default) or `enforce`.
    pub report_policy_mode: String,
    /// Days raw reports are kept after their range ended (at least 1; default 400); the
    /// daily rollups behind the charts are kept longer (never deleted by it).
    pub report_retention_days: u32,
    /// The largest TLS report the HTTPS intake accepts: the POST body, and the report once
    /// decompressed (default 10 MiB).
    pub report_max_bytes: u64,
    /// Report POSTs one client address (IPv6: its /64) may make at once before the
    /// per-minute rate applies (default 120).
    pub report_rate_burst: u32,
    /// Report POSTs per minute one client address may make after its burst (default 60).
    pub report_rate_per_minute: u32,
    /// The SMTP relay (`host:port`) alert e-mail goes through; none: no alert e-mail.
    pub alert_smtp_relay: Option<String>,
    /// The sender address of alert e-mail (default `mtasts@<zone>`).
    pub alert_from: Option<String>,
    /// Test-only: let alert webhooks reach loopback, private and link-local addresses, and
    /// plain `http://` URLs (by default they are refused, so tenants cannot make the service
    /// call into its own network).
    pub alert_allow_private_targets: bool,
    /// Seconds between two evaluations of the alert rules (and sends of due notifications).
    pub alert_interval: u64,
    /// SMTP intake listeners for the report mailboxes (`--smtp-listen`, repeatable); empty:
    /// no mail intake, and the published `rua` names only the HTTPS endpoint.
    pub smtp_listen: Vec<SocketAddr>,
    /// The largest message the SMTP intake takes, in octets (announced as `SIZE`).
    pub smtp_max_message_bytes: u64,
    /// SMTP connections one IP address may hold at once.
    pub smtp_max_connections_per_client: usize,
    /// Seconds the SMTP intake waits for each command or piece of a message.
    pub smtp_timeout: u64,
}

impl Default for ServeConfig {
    fn default() -> Self {
        ServeConfig {
            database: None,
            data_dir: PathBuf::from("/var/lib/mtasts"),
            zone: String::new(),
            public_ip: Vec::new(),
            https_listen: vec![SocketAddr::from(([0, 0, 0, 0], 443))],
            http_listen: vec![SocketAddr::from(([0, 0, 0, 0], 80))],
            dns_listen: vec![SocketAddr::from(([0, 0, 0, 0], 53))],
            api_listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            acme_directory: LETS_ENCRYPT.to_owned(),
            acme_ca_file: None,
            acme_email: None,
            acme_challenge: "http-01".to_owned(),
            dns: Vec::new(),
            ca_file: Vec::new(),
            ttl: 300,
            node_id: None,
            verify_interval: 600,
            pending_verify_interval: 60,
            poll_interval_ms: 1000,
            node_retention: 86_400,
            password_iterations: 600_000,
            public_url: None,
            secret_key_file: None,
            previous_secret_key_files: Vec::new(),
            trusted_proxies: TrustedProxies::default(),
            session_idle_timeout: 3600,
            session_lifetime: 43_200,
            verify_private_addresses: false,
            verify_https_port: 443,
            verify_smtp_port: 25,
            metrics_listen: None,
            report_policy_mode: "testing".to_owned(),
            report_retention_days: crate::node::retention::DEFAULT_RETENTION_DAYS,
            report_max_bytes: crate::policy_host::DEFAULT_MAX_REPORT_BYTES,
            report_rate_burst: 120,
            report_rate_per_minute: 60,
            alert_smtp_relay: None,
            alert_from: None,
            alert_allow_private_targets: false,
            alert_interval: 300,
            smtp_listen: vec![SocketAddr::from(([0, 0, 0, 0], 25))],
            smtp_max_message_bytes: 25 * 1024 * 1024,
            smtp_max_connections_per_client: 10,
            smtp_timeout: 300,
        }
    }
}

impl ServeConfig {
    /// The database URL in effect.
    pub fn database_url(&self) -> String {
        self.database
            .clone()
            .unwrap_or_else(|| format!("sqlite:{}", self.data_dir.join("serve.db").display()))
    }

    /// Creates the directory of a `sqlite:` database (a new machine has no data directory
    /// yet), readable by its owner only (`0700`); nothing for PostgreSQL.
    pub fn ensure_database_dir(&self) -> std::io::Result<()> {
        let url = self.database_url();
        match url
            .strip_prefix("sqlite:")
            .and_then(|path| std::path::Path::new(path).parent())
        {
            Some(dir) if !dir.as_os_str().is_empty() => {
                use std::os::unix::fs::DirBuilderExt;
                std::fs::DirBuilder::new()
                    .recursive(true)
                    .mode(0o700)
                    .create(dir)
            }
            _ => Ok(()),
        }
    }

    /// Reads a TOML file's text.
    pub fn from_toml(text: &str) -> Result<ServeConfig, ConfigError> {
        toml::from_str(text).map_err(ConfigError::Syntax)
    }
}

/// Why a serve configuration was refused.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The text is not TOML, names a key that does not exist, or gives a value of the wrong
    /// type (the message names the key, line and column).
    #[error("{0}")]
    Syntax(toml::de::Error),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_of_the_documented_example_is_read() {
        let config = ServeConfig::from_toml(
            r#"
            zone = "mta-sts.provider.example"
            public_ip = ["203.0.113.7", "2001:db8::7"]
            database = "postgres://mtasts@db.internal/mtasts"
            https_listen = ["0.0.0.0:443"]
            http_listen = ["0.0.0.0:80"]
            dns_listen = ["0.0.0.0:53", "[::]:53"]
            api_listen = "127.0.0.1:8080"
            acme_directory = "https://acme.example/dir"
            acme_ca_file = "/etc/mtasts/acme-root.pem"
            acme_email = "hostmaster@provider.example"
            acme_challenge = "tls-alpn-01"
            dns = ["192.0.2.53:53"]
            ca_file = ["/etc/mtasts/extra.pem"]
            ttl = 600
            node_id = "edge-1"
            verify_interval = 900
            pending_verify_interval = 30
            secret_key_file = "/etc/mtasts/secret.key"
            previous_secret_key_files = ["/etc/mtasts/old.key"]
            trusted_proxies = ["127.0.0.1", "10.0.0.0/8"]
            session_idle_timeout = 900
            session_lifetime = 28800
            report_retention_days = 730
            smtp_listen = ["0.0.0.0:25", "[::]:25"]
            smtp_max_message_bytes = 1048576
            smtp_max_connections_per_client = 3
            smtp_timeout = 60
            "#,
        )
        .unwrap();
        assert_eq!(config.zone, "mta-sts.provider.example");
        assert_eq!(config.public_ip.len(), 2);
        assert_eq!(config.dns_listen.len(), 2);
        assert_eq!(config.acme_challenge, "tls-alpn-01");
        assert_eq!(config.ttl, 600);
        assert_eq!(config.node_id.as_deref(), Some("edge-1"));
        assert_eq!(config.trusted_proxies.networks().len(), 2);
        assert_eq!(config.session_idle_timeout, 900);
        assert_eq!(config.session_lifetime, 28_800);
        assert_eq!(config.report_retention_days, 730);
        assert_eq!(
            config.secret_key_file,
            Some(PathBuf::from("/etc/mtasts/secret.key"))
        );
        assert_eq!(config.previous_secret_key_files.len(), 1);
        assert_eq!(config.smtp_listen.len(), 2);
        assert_eq!(config.smtp_max_message_bytes, 1_048_576);
        assert_eq!(config.smtp_max_connections_per_client, 3);
        assert_eq!(config.smtp_timeout, 60);
        assert_eq!(
            config.database_url(),
            "postgres://mtasts@db.internal/mtasts"
        );
    }

    #[test]
    fn alert_keys_are_read_with_their_defaults() {
        let config = ServeConfig::from_toml("zone = \"z.example\"\n").unwrap();
        assert_eq!(config.alert_smtp_relay, None);
        assert_eq!(config.alert_from, None);
        assert!(!config.alert_allow_private_targets);
        assert_eq!(config.alert_interval, 300);
        let config = ServeConfig::from_toml(
            "alert_smtp_relay = \"127.0.0.1:25\"\nalert_from = \"alerts@p.example\"\n\
             alert_allow_private_targets = true\nalert_interval = 60\n",
        )
        .unwrap();
        assert_eq!(config.alert_smtp_relay.as_deref(), Some("127.0.0.1:25"));
        assert_eq!(config.alert_from.as_deref(), Some("alerts@p.example"));
        assert!(config.alert_allow_private_targets);
        assert_eq!(config.alert_interval, 60);
    }

    #[test]
    fn unknown_keys_are_errors_and_defaults_fill_the_rest() {
        let err = ServeConfig::from_toml("zone = \"z.example\"\nzones = 1\n").unwrap_err();
        assert!(matches!(err, ConfigError::Syntax(_)));
        let err = err.to_string();
        assert!(err.contains("zones"), "{err}");
        let config =
            ServeConfig::from_toml("zone = \"z.example\"\ndata_dir = \"/srv/m\"\n").unwrap();
        assert_eq!(config.database_url(), "sqlite:/srv/m/serve.db");
        assert_eq!(config.acme_directory, LETS_ENCRYPT);
        assert_eq!(config.api_listen, SocketAddr::from(([127, 0, 0, 1], 8080)));
        assert!(config.trusted_proxies.networks().is_empty());
        assert_eq!(
            (config.session_idle_timeout, config.session_lifetime),
            (3600, 43_200)
        );
        let err = ServeConfig::from_toml("trusted_proxies = [\"10.0.0.0/33\"]\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("trusted_proxies") && err.contains("10.0.0.0/33"),
            "{err}"
        );
        assert_eq!(config.node_retention, 86_400);
        assert_eq!(config.report_retention_days, 400);
        assert_eq!(config.smtp_listen, [SocketAddr::from(([0, 0, 0, 0], 25))]);
        assert_eq!(
            (config.smtp_max_message_bytes, config.smtp_timeout),
            (25 * 1024 * 1024, 300)
        );
        let config =
            ServeConfig::from_toml("zone = \"z.example\"\nnode_retention = 3600\n").unwrap();
        assert_eq!(config.node_retention, 3_600);
    }

    #[test]
    fn report_intake_keys() {
        let config = ServeConfig::from_toml("zone = \"z.example\"\n").unwrap();
        assert_eq!(config.report_max_bytes, 10 * 1024 * 1024);
        assert_eq!(
            (config.report_rate_burst, config.report_rate_per_minute),
            (120, 60)
        );
        let config = ServeConfig::from_toml(
            "report_max_bytes = 1048576\nreport_rate_burst = 5\nreport_rate_per_minute = 2\n",
        )
        .unwrap();
        assert_eq!(config.report_max_bytes, 1_048_576);
        assert_eq!(
            (config.report_rate_burst, config.report_rate_per_minute),
            (5, 2)
        );
        assert!(ServeConfig::from_toml("report_max_bytes = -1\n").is_err());
    }
}
