//! `mtasts resolver`, `mtasts query` and `mtasts cache`: flags and signals around
//! `mtasts-sender`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use mtasts_sender::admin::{self, QueryOptions};
use mtasts_sender::decision::Status;
use mtasts_sender::{Config, Settings};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// Where the configuration is read from when `--config` is not given (if it exists).
const DEFAULT_CONFIG: &str = "/etc/mtasts/mtasts.toml";

/// Options shared by the resolver commands: the configuration file and the overrides every
/// command may need.
#[derive(Debug, clap::Args)]
pub(crate) struct ConfigArgs {
    /// The TOML configuration (default: /etc/mtasts/mtasts.toml when it exists, else built-in
    /// defaults).
    #[arg(
        long,
        short = 'c',
        value_name = "FILE",
        env = "MTASTS_CONFIG",
        global = true
    )]
    config: Option<PathBuf>,
    /// The policy cache: memory, sqlite:PATH, redis://…, postgres://… (default:
    /// `sqlite:<data dir>/cache.sqlite`).
    #[arg(long, value_name = "URL", env = "MTASTS_CACHE", global = true)]
    cache: Option<String>,
    /// Where the SQLite cache lives by default.
    #[arg(long, value_name = "DIR", env = "MTASTS_DATA_DIR", global = true)]
    data_dir: Option<PathBuf>,
    /// Seconds allowed for each DNS lookup and each policy fetch.
    #[arg(long, value_name = "SECONDS", env = "MTASTS_TIMEOUT", global = true)]
    timeout: Option<u64>,
    /// Also trust the CA certificates in this PEM file (repeatable). SSL_CERT_FILE is honoured too.
    #[arg(long = "ca-file", value_name = "PEM", global = true)]
    ca_files: Vec<PathBuf>,
    /// Use this DNS server instead of the system's (repeatable): `IP`, `IP:PORT` or `[IPv6]:PORT`.
    #[arg(long = "dns", value_name = "IP[:PORT]", global = true, value_parser = mtasts_net::dns::parse_server)]
    dns: Vec<SocketAddr>,
    /// Test only: fetch policies from this port instead of 443.
    #[arg(
        long,
        value_name = "PORT",
        hide = true,
        env = "MTASTS_TEST_HTTPS_PORT",
        global = true
    )]
    https_port: Option<u16>,
}

impl ConfigArgs {
    /// The configuration file in effect, if any.
    fn path(&self) -> Option<PathBuf> {
        crate::netargs::config_path(self.config.as_ref(), DEFAULT_CONFIG)
    }

    /// The file (or defaults) with the flags applied on top.
    pub(crate) fn load(&self) -> anyhow::Result<(Config, Option<PathBuf>)> {
        let path = self.path();
        let mut config = match &path {
            Some(path) => {
                Config::load(path).with_context(|| format!("reading {}", path.display()))?
            }
            None => Config::default(),
        };
        if let Some(cache) = &self.cache {
            config.cache.url = Some(cache.clone());
        }
        if let Some(dir) = &self.data_dir {
            config.data_dir = dir.clone();
        }
        if let Some(timeout) = self.timeout {
            anyhow::ensure!(
                (1..=3600).contains(&timeout),
                "--timeout must be 1 to 3600 seconds"
            );
            config.timeout = timeout;
        }
        config.ca_files.extend(self.ca_files.iter().cloned());
        config.ca_files.extend(crate::netargs::ssl_cert_file());
        if !self.dns.is_empty() {
            config.dns_servers = self.dns.iter().map(SocketAddr::to_string).collect();
        }
        if let Some(port) = self.https_port {
            config.https_port = port;
        }
        Ok((config, path))
    }
}

/// Arguments of `mtasts resolver`.
#[derive(Debug, clap::Args)]
pub(crate) struct ResolverArgs {
    /// Serve the Postfix socketmap on this address (repeatable; default 127.0.0.1:8461).
    #[arg(
        long = "listen",
        value_name = "ADDR",
        env = "MTASTS_LISTEN",
        value_delimiter = ','
    )]
    listen: Vec<SocketAddr>,
    /// Serve HTTP (/v1/policy/{domain}, /metrics, /healthz) on this address (repeatable).
    #[arg(
        long = "http-listen",
        value_name = "ADDR",
        env = "MTASTS_HTTP_LISTEN",
        value_delimiter = ','
    )]
    http_listen: Vec<SocketAddr>,
    /// Check the configuration, print a summary and exit.
    #[arg(long)]
    check_config: bool,
    #[command(flatten)]
    config: ConfigArgs,
}

pub(crate) fn run_resolver(args: ResolverArgs) -> anyhow::Result<ExitCode> {
    let ResolverArgs {
        listen,
        http_listen,
        check_config,
        config: config_args,
    } = args;
    let (mut config, path) = config_args.load()?;
    if !listen.is_empty() {
        config.socketmap.tcp = listen;
    }
    if !http_listen.is_empty() {
        config.http.listen = http_listen;
    }
    let settings = Settings::from_config(&config).context("invalid configuration")?;
    if check_config {
        println!(
            "configuration OK ({}): socketmap {:?}, http {:?}, cache {}, default profile {:?}, {} static TLS levels, {} inbound rules (policy service {:?})",
            path.as_deref()
                .map_or("built-in defaults".to_owned(), |p| p.display().to_string()),
            config.socketmap.tcp,
            config.http.listen,
            config.cache_url(),
            settings.default_profile.name,
            config.tls_levels.len(),
            settings.inbound.len(),
            config.inbound.tcp,
        );
        return Ok(ExitCode::SUCCESS);
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let shutdown = CancellationToken::new();
        let reload = Arc::new(Notify::new());
        crate::signals::install(shutdown.clone(), Some(reload.clone()))?;
        tracing::info!(socketmap = ?config.socketmap.tcp, http = ?config.http.listen, cache = %config.cache_url(), "mtasts resolver starting");
        let server = mtasts_sender::bind(config, path).await.context("resolver")?;
        server.run(shutdown, reload).await.context("resolver")?;
        Ok(ExitCode::SUCCESS)
    })
}

/// Arguments of `mtasts query`.
#[derive(Debug, clap::Args)]
pub(crate) struct QueryArgs {
    /// The destination: a domain, or any Postfix socketmap key such as [relay.example]:587.
    #[arg(value_name = "DOMAIN", required_unless_present = "inbound")]
    key: Option<String>,
    /// Instead of a destination, show the inbound rule for mail from SENDER (an address, or
    /// `<>`) arriving from CLIENT (an address, `hostname[address]` as Postfix logs it, or a
    /// verified hostname), and what a plaintext, TLS or verified-certificate session gets.
    #[arg(long, num_args = 2, value_names = ["SENDER", "CLIENT"], conflicts_with_all = ["key", "profile", "use_cache"])]
    inbound: Option<Vec<String>>,
    /// Answer as this socketmap name (profile) would; default: the default profile.
    #[arg(long, value_name = "NAME")]
    profile: Option<String>,
    /// Read and update the configured cache as the daemon would (default: a fresh discovery in
    /// memory that leaves the cache alone).
    #[arg(long)]
    use_cache: bool,
    /// Print the full decision as JSON.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    config: ConfigArgs,
}

pub(crate) fn run_query(args: QueryArgs) -> anyhow::Result<ExitCode> {
    let QueryArgs {
        key,
        inbound,
        profile,
        use_cache,
        json,
        config: config_args,
    } = args;
    let (config, _) = config_args.load()?;
    if let Some([sender, client]) = inbound.as_deref() {
        return run_inbound_query(&config, sender, client, json);
    }
    let key = key.context("a DOMAIN is required")?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let decision = runtime.block_on(admin::query(
        &config,
        &key,
        &QueryOptions { profile, use_cache },
    ))?;
    if json {
        println!("{}", serde_json::to_string_pretty(&decision)?);
    } else {
        println!("{key}: {}", decision.answer);
        println!("  source: {}", decision.source.as_str());
        println!("  why: {}", decision.reason);
        if let Some(policy) = &decision.policy {
            println!("  policy: {}", serde_json::to_string(policy)?);
        }
        if let Some(discovery) = &decision.discovery {
            println!("  discovery: {}", serde_json::to_string(discovery)?);
        }
        if let Some(cache) = &decision.cache {
            println!("  cache: {}", serde_json::to_string(cache)?);
        }
        if let Some(dane) = &decision.dane {
            println!("  dane: {}", serde_json::to_string(dane)?);
        }
    }
    Ok(query_exit_code(decision.status))
}

/// `mtasts query --inbound SENDER CLIENT`: the matching rule and each kind of session's
/// answer. Exits 0 (it describes, it does not judge a real session).
fn run_inbound_query(
    config: &Config,
    sender: &str,
    client: &str,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let settings = Settings::from_config(config).context("invalid configuration")?;
    let report = mtasts_sender::inbound::query::inbound_report(&settings.inbound, sender, client)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(ExitCode::SUCCESS);
    }
    let who = match (&report.client_name, report.client_address) {
        (Some(name), Some(ip)) => format!("{name}[{ip}]"),
        (Some(name), None) => name.clone(),
        (None, Some(ip)) => ip.to_string(),
        (None, None) => "unknown".to_owned(),
    };
    println!(
        "mail from {} via {who}",
        report
            .sender_domain
            .as_deref()
            .unwrap_or("<> (no sender domain)")
    );
    match (&report.rule, &report.level) {
        (Some(rule), Some(level)) => println!("  rule: {rule} ({level})"),
        _ => println!("  rule: none (every session gets DUNNO)"),
    }
    for session in &report.sessions {
        println!("  {}: action={}", session.session, session.action);
    }
    Ok(ExitCode::SUCCESS)
}

/// `mtasts query` exits 1 when Postfix would defer the message (`TEMP`, `PERM`), else 0.
fn query_exit_code(status: Status) -> ExitCode {
    if status.defers() {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

/// Arguments of `mtasts cache`.
#[derive(Debug, clap::Args)]
pub(crate) struct CacheArgs {
    #[command(subcommand)]
    command: CacheCommand,
    #[command(flatten)]
    config: ConfigArgs,
}

#[derive(Debug, clap::Subcommand)]
enum CacheCommand {
    /// List cached entries (JSON lines), sorted by domain.
    List {
        /// At most this many entries.
        #[arg(long, default_value_t = 1000)]
        limit: usize,
    },
    /// Show the entry of one domain (JSON).
    Show {
        /// The domain.
        domain: String,
    },
    /// Remove the entry of one domain, or every entry with --all.
    Purge {
        /// The domain.
        #[arg(required_unless_present = "all")]
        domain: Option<String>,
        /// Remove every entry.
        #[arg(long, conflicts_with = "domain")]
        all: bool,
    },
}

pub(crate) fn run_cache(args: CacheArgs) -> anyhow::Result<ExitCode> {
    let CacheArgs {
        command,
        config: config_args,
    } = args;
    let (config, _) = config_args.load()?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        match command {
            CacheCommand::List { limit } => {
                for entry in admin::cache_list(&config, limit).await? {
                    println!("{}", serde_json::to_string(&entry)?);
                }
                Ok(ExitCode::SUCCESS)
            }
            CacheCommand::Show { domain } => match admin::cache_get(&config, &domain).await? {
                Some(entry) => {
                    println!("{}", serde_json::to_string_pretty(&entry)?);
                    Ok(ExitCode::SUCCESS)
                }
                None => {
                    eprintln!("{domain}: not cached");
                    Ok(ExitCode::from(1))
                }
            },
            CacheCommand::Purge { domain, all: _ } => {
                let removed = admin::cache_purge(&config, domain.as_deref()).await?;
                println!(
                    "removed {removed} entr{}",
                    if removed == 1 { "y" } else { "ies" }
                );
                Ok(ExitCode::SUCCESS)
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_exits_1_exactly_when_postfix_defers() {
        for (status, code) in [
            (Status::Ok, ExitCode::SUCCESS),
            (Status::NotFound, ExitCode::SUCCESS),
            (Status::Temp, ExitCode::from(1)),
            (Status::Perm, ExitCode::from(1)),
        ] {
            assert_eq!(query_exit_code(status), code, "{status:?}");
        }
    }
}
