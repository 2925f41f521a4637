//! Network options shared by the subcommands: DNS servers, trust roots, timeouts, and the
//! test-only port overrides.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use mtasts_net::dns::{DnsConfig, DnsLookup, HickoryDns};
use mtasts_net::trust::TrustConfig;

/// Options for every command that talks to the network.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct NetArgs {
    /// Seconds allowed for each network step (a DNS lookup, the whole policy fetch, each SMTP step).
    #[arg(long, value_name = "SECONDS", default_value_t = 10.0, value_parser = parse_seconds)]
    pub(crate) timeout: f64,
    /// Use this DNS server instead of the system's (repeatable): `IP`, `IP:PORT` or `[IPv6]:PORT`.
    #[arg(long = "dns", value_name = "IP[:PORT]", value_parser = mtasts_net::dns::parse_server)]
    pub(crate) dns: Vec<std::net::SocketAddr>,
    /// Also trust the CA certificates in this PEM file (repeatable). SSL_CERT_FILE is honoured too.
    #[arg(long = "ca-file", value_name = "PEM")]
    pub(crate) ca_files: Vec<PathBuf>,
    /// Trust only --ca-file / SSL_CERT_FILE roots, not the built-in Mozilla roots.
    #[arg(long)]
    pub(crate) no_builtin_roots: bool,
    /// Test only: fetch policies from this port instead of 443.
    #[arg(
        long,
        value_name = "PORT",
        default_value_t = 443,
        hide = true,
        env = "MTASTS_TEST_HTTPS_PORT"
    )]
    pub(crate) https_port: u16,
    /// Test only: probe MX hosts on this port instead of 25.
    #[arg(
        long,
        value_name = "PORT",
        default_value_t = 25,
        hide = true,
        env = "MTASTS_TEST_SMTP_PORT"
    )]
    pub(crate) smtp_port: u16,
}

/// The standard `SSL_CERT_FILE` variable, honoured as one more trusted CA file.
pub(crate) fn ssl_cert_file() -> Option<PathBuf> {
    std::env::var_os("SSL_CERT_FILE")
        .filter(|f| !f.is_empty())
        .map(PathBuf::from)
}

fn parse_seconds(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v > 0.0 && v <= 3600.0 => Ok(v),
        _ => Err(format!(
            "{s:?} is not a number of seconds between 0 and 3600"
        )),
    }
}

impl NetArgs {
    pub(crate) fn timeout(&self) -> Duration {
        Duration::from_secs_f64(self.timeout)
    }

    pub(crate) fn dns(&self) -> anyhow::Result<Arc<dyn DnsLookup>> {
        let config = DnsConfig {
            servers: (!self.dns.is_empty()).then(|| self.dns.clone()),
            timeout: self.timeout(),
        };
        Ok(Arc::new(HickoryDns::new(&config)?))
    }

    pub(crate) fn roots(&self) -> anyhow::Result<Arc<rustls::RootCertStore>> {
        let mut ca_files = self.ca_files.clone();
        ca_files.extend(ssl_cert_file());
        let trust = TrustConfig {
            builtin_roots: !self.no_builtin_roots,
            ca_files,
        };
        trust.root_store().context("loading trust roots")
    }
}

/// The configuration file in effect: the one given, else `default` when it exists.
pub(crate) fn config_path(
    explicit: Option<&std::path::PathBuf>,
    default: &str,
) -> Option<std::path::PathBuf> {
    match explicit {
        Some(path) => Some(path.clone()),
        None => Some(std::path::PathBuf::from(default)).filter(|p| p.exists()),
    }
}
