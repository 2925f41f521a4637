//! The `[tlsrpt]` section of the resolver's configuration: collecting TLS results and
//! delivering the daily RFC 8460 reports built from them.
//!
//! ```toml
//! [tlsrpt]
//! enabled = true
//! organization = "Example Mail"
//! contact = "tlsrpt@example.net"
//!
//! [tlsrpt.mail]
//! from = "tlsrpt@example.net"
//! dkim_domain = "example.net"
//! dkim_selector = "tlsrpt"
//! dkim_key = "/etc/mtasts/dkim.pem"
//! ```
//!
//! Reading the file only checks types and unknown keys; [`TlsrptConfig::validate`] checks
//! meanings (required keys when enabled, ranges, DKIM settings given together) so
//! `--check-config` and the daemon's start report the same clear error.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::config::ConfigError;

/// Default uncompressed report size cap (C144); the same number as the report builder's.
pub const DEFAULT_MAX_REPORT_BYTES: u64 = 5 * 1024 * 1024;

/// `[tlsrpt]`: TLS-RPT for the sending side.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TlsrptConfig {
    /// Collect results and build and deliver reports. Default false.
    pub enabled: bool,
    /// Where results, reports and the outbox are kept: `sqlite:PATH` or `postgres://…` (several
    /// resolvers sharing one database build one report per domain and day). Default
    /// `sqlite:<data_dir>/tlsrpt.sqlite`.
    pub database: Option<String>,
    /// `organization-name` of every report. Required when enabled.
    pub organization: String,
    /// `contact-info` of every report (an e-mail address); its domain is the
    /// `TLS-Report-Submitter`. Required when enabled.
    pub contact: String,
    /// Most seconds of random delay after the end of a UTC day before its reports are built
    /// and sent (RFC 8460 §4.1 asks senders to spread their reports). Default 14400.
    pub send_delay_max: u64,
    /// Seconds after the first attempt during which a failed delivery is retried before that
    /// destination is given up (RFC 8460 §4.1 asks for at least 24 h). Default 93600 (26 h).
    pub retry_for: u64,
    /// A destination that was given up for this many reports in a row is suppressed. Default 3.
    pub suppress_after: u32,
    /// Seconds a suppressed destination receives nothing. Default 604800 (a week).
    pub suppress_for: u64,
    /// Largest uncompressed report JSON; above it the failure details with the smallest
    /// counts are dropped (summaries stay exact). A rua's own `!size` limit can only lower it.
    /// Default 5242880.
    pub max_report_bytes: u64,
    /// Deliver to https destinations and mail exchangers on private, loopback or link-local
    /// addresses. Default false; tests set it.
    pub allow_private_destinations: bool,
    /// Seconds allowed for one HTTPS POST (connecting, sending, the answer). Default 30.
    pub http_timeout: u64,
    /// Most bytes of an HTTPS answer read (the rest is not waited for). Default 65536.
    pub max_response_bytes: u64,
    /// Report mail (`mailto:` destinations).
    pub mail: TlsrptMailConfig,
    /// The UNIX datagram socket MTAs send libtlsrpt results to (Postfix 3.10+
    /// `smtp_tlsrpt_socket_name`, as an absolute path); a missing folder is created, a stale
    /// socket file is replaced, then `owner`, `group` and `mode` (default `"0660"`) are
    /// applied. Default
    /// none: results arrive only over HTTP (`POST /v1/tlsrpt/results`).
    pub socket: Option<crate::config::UnixSocketConfig>,
    /// Most results held in memory before they are committed; beyond it datagrams are
    /// dropped and counted (`kind="backlog"`) until the store catches up. Default 100000.
    pub max_pending_results: usize,
    /// Milliseconds between commits of collected results (a datagram's result is durable
    /// at most this long after it arrived). Default 500.
    pub commit_interval_ms: u64,
}

impl Default for TlsrptConfig {
    fn default() -> Self {
        TlsrptConfig {
            enabled: false,
            database: None,
            organization: String::new(),
            contact: String::new(),
            send_delay_max: 14_400,
            retry_for: 93_600,
            suppress_after: 3,
            suppress_for: 604_800,
            max_report_bytes: DEFAULT_MAX_REPORT_BYTES,
            allow_private_destinations: false,
            http_timeout: 30,
            max_response_bytes: 65_536,
            mail: TlsrptMailConfig::default(),
            socket: None,
            max_pending_results: 100_000,
            commit_interval_ms: 500,
        }
    }
}

/// How the relay's STARTTLS is used.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StarttlsMode {
    /// The relay must offer STARTTLS and present a certificate valid for its name.
    #[default]
    Require,
    /// STARTTLS when offered (verified when used); plain otherwise, and then no AUTH.
    Opportunistic,
}

/// `[tlsrpt.mail]`: how report mail is signed and sent.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TlsrptMailConfig {
    /// Envelope sender and header `From`. Default: `contact`.
    pub from: Option<String>,
    /// The name sent in EHLO. Default: the domain of `from`.
    pub helo: Option<String>,
    /// A submission relay (`host:port`); absent, mail goes directly to the rua domain's MX on
    /// port 25 with opportunistic TLS (a report must be delivered despite TLS failures, RFC
    /// 8460 §5.3.1).
    pub relay: Option<String>,
    /// User name for AUTH at the relay (PLAIN or LOGIN, only ever over TLS).
    pub relay_username: Option<String>,
    /// File holding the relay password (first line, trailing newline removed).
    pub relay_password_file: Option<PathBuf>,
    /// STARTTLS at the relay: `require` (default) or `opportunistic`.
    pub starttls: StarttlsMode,
    /// DKIM `d=`; RFC 8460 §3 requires report mail to be signed by the reporting domain.
    pub dkim_domain: Option<String>,
    /// DKIM `s=`. Its key record should have service type `*` or list both `email` and
    /// `tlsrpt`, not `tlsrpt` alone (C135).
    pub dkim_selector: Option<String>,
    /// The private key: RSA (PKCS#1 or PKCS#8) or Ed25519 (PKCS#8), PEM.
    pub dkim_key: Option<PathBuf>,
    /// The MX port for direct delivery. Default 25; other values are for tests only.
    pub mx_port: u16,
}

impl Default for TlsrptMailConfig {
    fn default() -> Self {
        TlsrptMailConfig {
            from: None,
            helo: None,
            relay: None,
            relay_username: None,
            relay_password_file: None,
            starttls: StarttlsMode::Require,
            dkim_domain: None,
            dkim_selector: None,
            dkim_key: None,
            mx_port: 25,
        }
    }
}

impl TlsrptConfig {
    /// The database URL in effect: `database`, or `sqlite:<data_dir>/tlsrpt.sqlite`.
    pub fn database_url(&self, data_dir: &Path) -> String {
        match &self.database {
            Some(url) => url.clone(),
            None => format!("sqlite:{}", data_dir.join("tlsrpt.sqlite").display()),
        }
    }

    /// The submitter domain (the domain of `contact`), when `contact` is an address.
    pub fn submitter(&self) -> Option<&str> {
        mtasts_proto::tlsrpt::outgoing::submitter(&self.contact)
    }

    /// The envelope and header sender of report mail.
    pub fn mail_from(&self) -> &str {
        self.mail.from.as_deref().unwrap_or(&self.contact)
    }

    /// Checks meanings: nothing when disabled; when enabled, `organization` and `contact`
    /// present, non-zero limits, DKIM settings all or none, relay credentials complete.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if !self.enabled {
            return Ok(());
        }
        let invalid = |m: String| Err(ConfigError::Invalid(m));
        if self.organization.trim().is_empty() {
            return invalid("tlsrpt.organization is required when tlsrpt is enabled".into());
        }
        if self.contact.trim().is_empty() {
            return invalid("tlsrpt.contact is required when tlsrpt is enabled".into());
        }
        if self.submitter().is_none() {
            return invalid(format!(
                "tlsrpt.contact {:?} is not an e-mail address (its domain is the report submitter)",
                self.contact
            ));
        }
        if mtasts_proto::tlsrpt::outgoing::submitter(self.mail_from()).is_none() {
            return invalid(format!(
                "tlsrpt.mail.from {:?} is not an e-mail address",
                self.mail_from()
            ));
        }
        for (key, value) in [
            ("tlsrpt.retry_for", self.retry_for),
            ("tlsrpt.suppress_after", u64::from(self.suppress_after)),
            ("tlsrpt.max_report_bytes", self.max_report_bytes),
            ("tlsrpt.http_timeout", self.http_timeout),
            ("tlsrpt.max_response_bytes", self.max_response_bytes),
            ("tlsrpt.mail.mx_port", u64::from(self.mail.mx_port)),
            (
                "tlsrpt.max_pending_results",
                self.max_pending_results as u64,
            ),
            ("tlsrpt.commit_interval_ms", self.commit_interval_ms),
        ] {
            if value == 0 {
                return invalid(format!("{key} must be at least 1"));
            }
        }
        if self.send_delay_max > 86_400 {
            return invalid(
                "tlsrpt.send_delay_max above 86400 s would overlap the next day".into(),
            );
        }
        if self.commit_interval_ms > 60_000 {
            return invalid("tlsrpt.commit_interval_ms must be at most 60000".into());
        }
        if let Some(socket) = &self.socket {
            crate::config::parse_mode(&socket.mode)?;
            if !socket.path.is_absolute() {
                return invalid(format!(
                    "tlsrpt.socket.path {} must be absolute",
                    socket.path.display()
                ));
            }
        }
        if self.http_timeout > 600 {
            return invalid("tlsrpt.http_timeout must be at most 600 s".into());
        }
        let m = &self.mail;
        let dkim = [
            m.dkim_domain.is_some(),
            m.dkim_selector.is_some(),
            m.dkim_key.is_some(),
        ];
        if dkim.iter().any(|d| *d) && !dkim.iter().all(|d| *d) {
            return invalid(
                "tlsrpt.mail.dkim_domain, dkim_selector and dkim_key go together".into(),
            );
        }
        if m.relay_username.is_some() != m.relay_password_file.is_some() {
            return invalid(
                "tlsrpt.mail.relay_username and relay_password_file go together".into(),
            );
        }
        if m.relay_username.is_some() && m.relay.is_none() {
            return invalid("tlsrpt.mail.relay_username needs tlsrpt.mail.relay".into());
        }
        if m.relay_username.is_some() && m.starttls == StarttlsMode::Opportunistic {
            // AUTH is only ever sent over TLS; with opportunistic TLS a relay that drops
            // STARTTLS would silently make every delivery fail at AUTH.
            return invalid(
                "tlsrpt.mail.relay_username needs tlsrpt.mail.starttls = \"require\"".into(),
            );
        }
        if let Some(relay) = &m.relay
            && relay
                .rsplit_once(':')
                .is_none_or(|(h, p)| h.is_empty() || p.parse::<u16>().is_err())
        {
            return invalid(format!(
                "tlsrpt.mail.relay {relay:?} is not host:port (for example smtp.example.net:587)"
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enabled() -> TlsrptConfig {
        TlsrptConfig {
            enabled: true,
            organization: "Example Mail".into(),
            contact: "tlsrpt@example.net".into(),
            ..TlsrptConfig::default()
        }
    }

    #[test]
    fn disabled_needs_nothing() {
        TlsrptConfig::default().validate().unwrap();
    }

    #[test]
    fn enabled_needs_organization_and_contact() {
        enabled().validate().unwrap();
        let mut c = enabled();
        c.organization.clear();
        assert!(
            c.validate()
                .unwrap_err()
                .to_string()
                .contains("organization")
        );
        let mut c = enabled();
        c.contact = "not-an-address".into();
        assert!(c.validate().unwrap_err().to_string().contains("contact"));
    }

    #[test]
    fn submitter_is_the_contact_domain() {
        assert_eq!(enabled().submitter(), Some("example.net"));
        assert_eq!(enabled().mail_from(), "tlsrpt@example.net");
        let mut c = enabled();
        c.mail.from = Some("nobody".into());
        assert!(c.validate().unwrap_err().to_string().contains("mail.from"));
    }

    #[test]
    fn database_defaults_to_the_data_dir() {
        let c = TlsrptConfig::default();
        assert_eq!(
            c.database_url(Path::new("/srv/m")),
            "sqlite:/srv/m/tlsrpt.sqlite"
        );
    }

    #[test]
    fn dkim_settings_go_together() {
        let mut c = enabled();
        c.mail.dkim_domain = Some("example.net".into());
        assert!(c.validate().unwrap_err().to_string().contains("dkim"));
        c.mail.dkim_selector = Some("s".into());
        c.mail.dkim_key = Some("/k.pem".into());
        c.validate().unwrap();
    }

    #[test]
    fn relay_auth_needs_required_tls() {
        let mut c = enabled();
        c.mail.relay = Some("smtp.example.net:587".into());
        c.mail.relay_username = Some("u".into());
        c.mail.relay_password_file = Some("/p".into());
        c.validate().unwrap();
        c.mail.starttls = StarttlsMode::Opportunistic;
        assert!(c.validate().is_err());
        c.mail.relay = Some("smtp.example.net".into());
        c.mail.starttls = StarttlsMode::Require;
        assert!(c.validate().unwrap_err().to_string().contains("host:port"));
    }

    #[test]
    fn collector_keys_parse_and_are_checked() {
        let mut c: TlsrptConfig = toml::from_str(
            "enabled = true\norganization = \"O\"\ncontact = \"a@b.example\"\n\
             max_pending_results = 10\ncommit_interval_ms = 50\n\
             socket = { path = \"/run/t.sock\", owner = \"postfix\", mode = \"0620\" }\n",
        )
        .unwrap();
        c.validate().unwrap();
        let socket = c.socket.clone().unwrap();
        assert_eq!(socket.mode, "0620");
        assert_eq!(socket.owner.as_deref(), Some("postfix"));
        assert_eq!((c.max_pending_results, c.commit_interval_ms), (10, 50));
        c.socket.as_mut().unwrap().path = "relative.sock".into();
        assert!(c.validate().unwrap_err().to_string().contains("absolute"));
        c.socket.as_mut().unwrap().path = "/run/t.sock".into();
        c.socket.as_mut().unwrap().mode = "999".into();
        assert!(c.validate().is_err());
        c.socket = None;
        c.commit_interval_ms = 0;
        assert!(
            c.validate()
                .unwrap_err()
                .to_string()
                .contains("commit_interval_ms")
        );
    }

    #[test]
    fn zero_limits_are_rejected() {
        let mut c = enabled();
        c.retry_for = 0;
        assert!(c.validate().unwrap_err().to_string().contains("retry_for"));
    }

    #[test]
    fn toml_keys_parse_and_unknown_keys_fail() {
        let c: TlsrptConfig = toml::from_str(
            "enabled = true\norganization = \"O\"\ncontact = \"a@b.example\"\n\
             allow_private_destinations = true\n[mail]\nstarttls = \"opportunistic\"\nmx_port = 2525\n",
        )
        .unwrap();
        assert!(c.allow_private_destinations);
        assert_eq!(c.mail.starttls, StarttlsMode::Opportunistic);
        assert_eq!(c.mail.mx_port, 2525);
        assert!(toml::from_str::<TlsrptConfig>("bogus = 1").is_err());
        assert!(toml::from_str::<TlsrptConfig>("[mail]\nbogus = 1").is_err());
    }
}
