//! The daemon's configuration file (TOML).
//!
//! Every key is optional: with no file at all the daemon listens for socketmap lookups on
//! `127.0.0.1:8461`, serves HTTP on `127.0.0.1:8462`, caches in
//! `sqlite:/var/lib/mtasts/cache.sqlite`, asks the system's DNS resolver and trusts the
//! Mozilla roots. Unknown keys are errors (`deny_unknown_fields` on every table), so a typo
//! never silently falls back to a default. Durations are whole seconds.
//!
//! ```toml
//! timeout = 10
//! dane = true
//!
//! [socketmap]
//! tcp = ["127.0.0.1:8461"]
//! unix = { path = "/var/spool/postfix/private/mtasts", group = "postfix", mode = "0660" }
//!
//! [tls_levels]
//! "partner.example" = "encrypt"
//! ".corp.example" = { level = "secure", match = ["mx.corp.example"] }
//!
//! [profiles.postfix-new]
//! sts_attributes = true
//! ```
//!
//! Checking the meaning of values (levels, profile names, DNS servers) happens when the
//! configuration is turned into running settings ([`crate::settings::Settings::from_config`]); this
//! module only reads the file.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use thiserror::Error;

/// Largest configuration file read.
pub const CONFIG_MAX_BYTES: u64 = 4 * 1024 * 1024;

/// The default socketmap address.
pub const DEFAULT_SOCKETMAP_ADDR: &str = "127.0.0.1:8461";
/// The default HTTP address.
pub const DEFAULT_HTTP_ADDR: &str = "127.0.0.1:8462";
/// The default data directory.
pub const DEFAULT_DATA_DIR: &str = "/var/lib/mtasts";
/// The profile used for unknown socketmap names unless `default_profile` says otherwise.
pub const DEFAULT_PROFILE: &str = "postfix";

/// The whole configuration file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Directory for the daemon's state; the default cache lives here. Default
    /// `/var/lib/mtasts`.
    pub data_dir: PathBuf,
    /// Time limit in seconds for one DNS lookup and for one whole policy fetch. Default 10.
    pub timeout: u64,
    /// DNS servers to ask (`IP`, `IP:PORT` or `[IPv6]:PORT`); empty means the system
    /// configuration (`/etc/resolv.conf`). For DANE this must be a validating resolver whose
    /// AD bit you trust (a local one). Default empty.
    pub dns_servers: Vec<String>,
    /// Extra PEM files whose certificates are trusted roots for policy hosts. Default none.
    pub ca_files: Vec<PathBuf>,
    /// Trust the built-in Mozilla roots for policy hosts. Default true.
    pub builtin_roots: bool,
    /// The HTTPS port of policy hosts. Default 443 (RFC 8461); other values only for tests.
    pub https_port: u16,
    /// Let DANE take precedence: when the destination's MX RRset is DNSSEC-authenticated and
    /// its MX hosts have DNSSEC-authenticated TLSA records, answer `dane-only` (every MX has
    /// them) or `dane` (some do) instead of the MTA-STS answer, so MTA-STS never overrides
    /// DANE (RFC 8461 §2). Default false.
    pub dane: bool,
    /// The profile for socketmap names that are not in `profiles` (or built in). Default
    /// `postfix`.
    pub default_profile: String,
    /// Seconds to wait at shutdown for requests in progress before closing connections.
    /// Default 10.
    pub drain_timeout: u64,
    /// Socketmap listeners.
    pub socketmap: SocketmapConfig,
    /// The HTTP endpoint (JSON lookups, metrics, health).
    pub http: HttpConfig,
    /// The policy cache.
    pub cache: CacheConfig,
    /// Refresh-ahead of cached policies in use.
    pub refresh: RefreshConfig,
    /// Static TLS levels per destination, taking precedence over DANE and MTA-STS. Keys are a
    /// domain (exact match) or `.domain` (every subdomain of it, not the domain itself), as in
    /// Postfix tables; the most specific entry wins. Default empty.
    pub tls_levels: BTreeMap<String, StaticLevel>,
    /// Answer profiles selected by the socketmap name, added to (or replacing) the built-in
    /// ones (`postfix`, `postfix-pre34`, `postfix310`, `strict-testing`, `strict-dns`).
    /// Default empty.
    pub profiles: BTreeMap<String, ProfileConfig>,
    /// TLS-RPT for the sending side: collecting results, building and delivering reports.
    pub tlsrpt: crate::tlsrpt::config::TlsrptConfig,
    /// Inbound TLS requirements per partner and the policy service that enforces them
    /// ([`crate::inbound`]). Default: no rules, no listener.
    pub inbound: crate::inbound::InboundConfig,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            data_dir: PathBuf::from(DEFAULT_DATA_DIR),
            timeout: 10,
            dns_servers: Vec::new(),
            ca_files: Vec::new(),
            builtin_roots: true,
            https_port: 443,
            dane: false,
            default_profile: DEFAULT_PROFILE.to_string(),
            drain_timeout: 10,
            socketmap: SocketmapConfig::default(),
            http: HttpConfig::default(),
            cache: CacheConfig::default(),
            refresh: RefreshConfig::default(),
            tls_levels: BTreeMap::new(),
            profiles: BTreeMap::new(),
            tlsrpt: crate::tlsrpt::config::TlsrptConfig::default(),
            inbound: crate::inbound::InboundConfig::default(),
        }
    }
}

/// Socketmap listeners (Postfix `socketmap:inet:HOST:PORT:NAME` or
/// `socketmap:unix:PATH:NAME`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SocketmapConfig {
    /// TCP addresses to listen on. Default `["127.0.0.1:8461"]`; `[]` for none.
    pub tcp: Vec<SocketAddr>,
    /// A UNIX socket to listen on. Default none.
    pub unix: Option<UnixSocketConfig>,
    /// Most connections open at once per listener (lowered at start to fit the open-files
    /// limit). At the cap, the connection quiet the longest makes room for a new one; when all
    /// are busy, the new one waits for a slot. Default 512.
    pub max_connections: usize,
    /// Seconds a connection may sit idle between requests before it is closed. Postfix closes
    /// its own side after 10 s. Default 30.
    pub idle_timeout: u64,
    /// Seconds allowed for one whole request (reading the rest of it, the lookup and writing
    /// the reply). Default 60 (Postfix waits 100 s).
    pub request_timeout: u64,
}

impl Default for SocketmapConfig {
    fn default() -> Self {
        SocketmapConfig {
            tcp: vec![parse_default_addr(DEFAULT_SOCKETMAP_ADDR)],
            unix: None,
            max_connections: 512,
            idle_timeout: 30,
            request_timeout: 60,
        }
    }
}

/// A UNIX socket listener.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UnixSocketConfig {
    /// The socket path. A stale socket file there is replaced. Required.
    pub path: PathBuf,
    /// Owner (user name or numeric uid) to give the socket. Default: unchanged.
    #[serde(default)]
    pub owner: Option<String>,
    /// Group (group name or numeric gid) to give the socket. Default: unchanged.
    #[serde(default)]
    pub group: Option<String>,
    /// Permission bits, octal (`"0660"`). Default `"0660"`.
    #[serde(default = "default_unix_mode")]
    pub mode: String,
}

fn default_unix_mode() -> String {
    "0660".to_string()
}

/// The HTTP endpoint.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpConfig {
    /// Addresses to listen on. Default `["127.0.0.1:8462"]`; `[]` turns HTTP off.
    pub listen: Vec<SocketAddr>,
    /// Most connections open at once per listener (lowered at start to fit the open-files
    /// limit); a connection quiet for `request_timeout` is closed. Default 64.
    pub max_connections: usize,
    /// Seconds allowed for one request. Default 60.
    pub request_timeout: u64,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            listen: vec![parse_default_addr(DEFAULT_HTTP_ADDR)],
            max_connections: 64,
            request_timeout: 60,
        }
    }
}

/// The policy cache.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CacheConfig {
    /// Where cached policies are kept: `memory`, `sqlite:PATH`, `redis://…` or
    /// `postgres://…`. Default `sqlite:<data_dir>/cache.sqlite`.
    pub url: Option<String>,
    /// Seconds a domain without MTA-STS (no TXT record, or a failed first fetch) is
    /// remembered as such before DNS is asked again. Default 600.
    pub negative_ttl: u64,
    /// Seconds after a successful TXT check during which a cached policy is served without
    /// asking DNS again (Postfix asks once per smtp process and destination). Default 60.
    pub grace: u64,
    /// Most discoveries (TXT lookup plus fetch) running at once; lookups beyond wait. Default 256.
    pub max_discoveries: usize,
    /// Seconds a DANE (TLSA) finding is reused. Default 300.
    pub dane_ttl: u64,
    /// Most domains kept in the in-memory memos (recent checks, DANE findings). Default 100000.
    pub max_memo_entries: usize,
    /// Seconds between attempts to reach the store again while it is unavailable (lookups
    /// are answered from memory meanwhile). Default 10.
    pub store_retry: u64,
}

impl Default for CacheConfig {
    fn default() -> Self {
        CacheConfig {
            url: None,
            negative_ttl: 600,
            grace: 60,
            max_discoveries: 256,
            dane_ttl: 300,
            max_memo_entries: 100_000,
            store_retry: 10,
        }
    }
}

/// Refresh-ahead: a background task re-discovers cached policies that are in use before they
/// expire, and at least daily (RFC 8461 §3.3, §10.2).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RefreshConfig {
    /// Run the refresh task. Default true.
    pub enabled: bool,
    /// Seconds between scans of the cache. Default 300.
    pub interval: u64,
    /// Refresh a policy this many seconds before it expires. Default 3600.
    pub before_expiry: u64,
    /// Refresh a policy fetched longer ago than this, whatever its expiry (the RFC's daily
    /// proactive refresh). Default 86400.
    pub max_staleness: u64,
    /// Only policies looked up within this many seconds are refreshed. Default 604800.
    pub used_within: u64,
    /// Most entries examined per scan. Default 10000.
    pub batch: usize,
    /// Most refreshes running at once. Default 8.
    pub concurrency: usize,
}

impl Default for RefreshConfig {
    fn default() -> Self {
        RefreshConfig {
            enabled: true,
            interval: 300,
            before_expiry: 3600,
            max_staleness: 86_400,
            used_within: 604_800,
            batch: 10_000,
            concurrency: 8,
        }
    }
}

/// A static TLS level: `"encrypt"`, or `{ level = "secure", match = ["mx.example.net"] }`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum StaticLevel {
    /// A level without attributes: `none`, `may`, `encrypt`, `verify`, `secure`, `dane`,
    /// `dane-only`.
    Level(String),
    /// A level with a match list (for `verify` and `secure`).
    WithMatch(StaticLevelTable),
}

/// The table form of [`StaticLevel`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StaticLevelTable {
    /// The level.
    pub level: String,
    /// Names or strategies for Postfix's `match=` (`hostname`, `nexthop`, `dot-nexthop`,
    /// `example.net`, `.example.net`). Default empty (Postfix's default strategy).
    #[serde(default, rename = "match")]
    pub matches: Vec<String>,
}

/// One answer profile.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ProfileConfig {
    /// Add `servername=hostname` to MTA-STS answers (Postfix ≥ 3.4). Default true.
    pub servername: bool,
    /// Add the Postfix 3.10 STS attributes (`policy_type=sts`, `mx_host_pattern=`, …), which
    /// also turn on Postfix 3.10.5's per-MX pattern enforcement. Default false.
    pub sts_attributes: bool,
    /// Treat `testing` policies as `enforce` (for trials). Default false.
    pub strict_testing: bool,
    /// Answer `TEMP` when the `_mta-sts` lookup fails temporarily and no cached policy
    /// exists, instead of `NOTFOUND` (fail closed; mail waits for DNS). Default false.
    pub temp_on_dns_error: bool,
}

impl Default for ProfileConfig {
    fn default() -> Self {
        ProfileConfig {
            servername: true,
            sts_attributes: false,
            strict_testing: false,
            temp_on_dns_error: false,
        }
    }
}

/// Why a configuration file could not be read.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is larger than [`CONFIG_MAX_BYTES`].
    #[error("{0} is larger than {CONFIG_MAX_BYTES} bytes")]
    TooLarge(PathBuf),
    /// The TOML does not parse or has unknown keys or wrong types.
    #[error("{origin}: {message}")]
    Syntax {
        /// The file, or `<string>`.
        origin: String,
        /// The parser's message (with line and column).
        message: String,
    },
    /// A value is out of range or inconsistent with another.
    #[error("invalid configuration: {0}")]
    Invalid(String),
}

impl Config {
    /// Parses TOML text.
    pub fn from_toml_str(text: &str) -> Result<Config, ConfigError> {
        toml::from_str(text).map_err(|e| ConfigError::Syntax {
            origin: "<string>".to_string(),
            message: e.to_string(),
        })
    }

    /// Reads and parses a TOML file (at most [`CONFIG_MAX_BYTES`]).
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let read_err = |source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        };
        let meta = std::fs::metadata(path).map_err(read_err)?;
        if meta.len() > CONFIG_MAX_BYTES {
            return Err(ConfigError::TooLarge(path.to_path_buf()));
        }
        let text = std::fs::read_to_string(path).map_err(read_err)?;
        toml::from_str(&text).map_err(|e| ConfigError::Syntax {
            origin: path.display().to_string(),
            message: e.to_string(),
        })
    }

    /// The cache URL in effect: `cache.url`, or `sqlite:<data_dir>/cache.sqlite`.
    pub fn cache_url(&self) -> String {
        match &self.cache.url {
            Some(url) => url.clone(),
            None => format!("sqlite:{}", self.data_dir.join("cache.sqlite").display()),
        }
    }

    /// Checks ranges that do not need the protocol crate: non-zero limits and timeouts,
    /// the UNIX socket mode. [`crate::settings::Settings::from_config`] checks the rest.
    pub fn check_limits(&self) -> Result<(), ConfigError> {
        let nonzero: [(&str, u64); 9] = [
            ("timeout", self.timeout),
            (
                "socketmap.max_connections",
                self.socketmap.max_connections as u64,
            ),
            ("socketmap.idle_timeout", self.socketmap.idle_timeout),
            ("socketmap.request_timeout", self.socketmap.request_timeout),
            ("http.max_connections", self.http.max_connections as u64),
            ("http.request_timeout", self.http.request_timeout),
            ("cache.max_discoveries", self.cache.max_discoveries as u64),
            ("cache.store_retry", self.cache.store_retry),
            ("refresh.concurrency", self.refresh.concurrency as u64),
        ];
        for (key, value) in nonzero {
            if value == 0 {
                return Err(ConfigError::Invalid(format!("{key} must be at least 1")));
            }
        }
        if self.refresh.enabled && self.refresh.interval == 0 {
            return Err(ConfigError::Invalid(
                "refresh.interval must be at least 1".to_string(),
            ));
        }
        if self.timeout > 300 {
            return Err(ConfigError::Invalid(
                "timeout above 300 s would outlast Postfix's 100 s socketmap timeout".to_string(),
            ));
        }
        if let Some(unix) = &self.socketmap.unix {
            parse_mode(&unix.mode)?;
            if unix.path.as_os_str().is_empty() {
                return Err(ConfigError::Invalid(
                    "socketmap.unix.path is empty".to_string(),
                ));
            }
        }
        self.tlsrpt.validate()?;
        Ok(())
    }
}

/// Parses an octal permission string such as `"0660"` or `"660"`.
pub fn parse_mode(mode: &str) -> Result<u32, ConfigError> {
    let digits = mode.trim().trim_start_matches("0o");
    if digits.is_empty() || digits.len() > 4 || !digits.bytes().all(|b| (b'0'..=b'7').contains(&b))
    {
        return Err(ConfigError::Invalid(format!(
            "socket mode {mode:?} is not an octal permission such as \"0660\""
        )));
    }
    u32::from_str_radix(digits, 8)
        .map_err(|e| ConfigError::Invalid(format!("socket mode {mode:?}: {e}")))
}

fn parse_default_addr(addr: &str) -> SocketAddr {
    // The constants above are valid socket addresses (checked by a test).
    addr.parse()
        .unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 0)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_file_means_safe_defaults() {
        let config = Config::from_toml_str("").unwrap();
        assert_eq!(config, Config::default());
        assert_eq!(
            config.socketmap.tcp,
            vec![DEFAULT_SOCKETMAP_ADDR.parse().unwrap()]
        );
        assert_eq!(config.http.listen, vec![DEFAULT_HTTP_ADDR.parse().unwrap()]);
        assert_eq!(config.cache_url(), "sqlite:/var/lib/mtasts/cache.sqlite");
        assert_eq!(config.timeout, 10);
        assert_eq!(config.cache.negative_ttl, 600);
        assert!(config.dns_servers.is_empty());
        assert!(!config.dane);
        config.check_limits().unwrap();
    }

    #[test]
    fn cache_url_follows_data_dir() {
        let config = Config::from_toml_str("data_dir = \"/srv/mtasts\"").unwrap();
        assert_eq!(config.cache_url(), "sqlite:/srv/mtasts/cache.sqlite");
        let config = Config::from_toml_str("[cache]\nurl = \"memory\"").unwrap();
        assert_eq!(config.cache_url(), "memory");
    }

    #[test]
    fn static_levels_take_both_forms() {
        let config = Config::from_toml_str(
            r#"
            [tls_levels]
            "partner.example" = "encrypt"
            ".corp.example" = { level = "secure", match = ["mx.corp.example", ".corp.example"] }
            "#,
        )
        .unwrap();
        assert_eq!(
            config.tls_levels["partner.example"],
            StaticLevel::Level("encrypt".into())
        );
        assert_eq!(
            config.tls_levels[".corp.example"],
            StaticLevel::WithMatch(StaticLevelTable {
                level: "secure".into(),
                matches: vec!["mx.corp.example".into(), ".corp.example".into()],
            })
        );
    }

    #[test]
    fn unknown_keys_are_rejected_everywhere() {
        for text in [
            "bogus = 1",
            "[socketmap]\nbogus = 1",
            "[socketmap.unix]\npath = \"/x\"\nbogus = 1",
            "[http]\nbogus = 1",
            "[cache]\nbogus = 1",
            "[refresh]\nbogus = 1",
            "[profiles.p]\nbogus = 1",
            "[tls_levels]\n\"a.example\" = { level = \"secure\", bogus = 1 }",
        ] {
            let err = Config::from_toml_str(text).unwrap_err();
            assert!(matches!(err, ConfigError::Syntax { .. }), "{text}: {err}");
        }
    }

    #[test]
    fn modes_are_octal() {
        assert_eq!(parse_mode("0660").unwrap(), 0o660);
        assert_eq!(parse_mode("666").unwrap(), 0o666);
        assert_eq!(parse_mode("0o600").unwrap(), 0o600);
        assert!(parse_mode("0980").is_err());
        assert!(parse_mode("").is_err());
        assert!(parse_mode("rw-rw----").is_err());
    }

    #[test]
    fn zero_limits_are_rejected() {
        let config = Config::from_toml_str("[socketmap]\nmax_connections = 0").unwrap();
        assert!(matches!(
            config.check_limits(),
            Err(ConfigError::Invalid(_))
        ));
        let config = Config::from_toml_str("timeout = 0").unwrap();
        assert!(config.check_limits().is_err());
        let config = Config::from_toml_str("[cache]\nstore_retry = 0").unwrap();
        assert!(config.check_limits().is_err());
        let config = Config::from_toml_str("[cache]\nstore_retry = 2").unwrap();
        assert_eq!(config.cache.store_retry, 2);
        config.check_limits().unwrap();
    }
}
