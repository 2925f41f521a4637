//! `mtasts serve` and `mtasts admin`: flags and configuration around `mtasts-host`.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use mtasts_host::auth::Principal;
use mtasts_host::config::ServeConfig;
use mtasts_host::service::{self, NewTokenRequest, ServiceError};
use mtasts_store::host::HostDb;
use tokio_util::sync::CancellationToken;

/// Where the serve configuration is read from when `--config` is not given (if it exists).
const DEFAULT_CONFIG: &str = "/etc/mtasts/serve.toml";

/// Options shared by `serve` and `admin`: the configuration file and the database.
#[derive(Debug, clap::Args)]
pub(crate) struct DatabaseArgs {
    /// The TOML configuration (default: /etc/mtasts/serve.toml when it exists). Its keys are
    /// the long flag names with `_` for `-`; flags override it.
    #[arg(
        long,
        short = 'c',
        value_name = "FILE",
        env = "MTASTS_SERVE_CONFIG",
        global = true
    )]
    config: Option<PathBuf>,
    /// The database: sqlite:PATH or postgres://… (default: `sqlite:<data dir>/serve.db`).
    #[arg(long, value_name = "URL", env = "MTASTS_DATABASE", global = true)]
    database: Option<String>,
    /// Where the SQLite database lives by default (default /var/lib/mtasts).
    #[arg(long, value_name = "DIR", env = "MTASTS_DATA_DIR", global = true)]
    data_dir: Option<PathBuf>,
}

impl DatabaseArgs {
    /// The serve configuration with these flags applied (`report` stores in the same database).
    pub(crate) fn load(&self) -> anyhow::Result<ServeConfig> {
        let path = crate::netargs::config_path(self.config.as_ref(), DEFAULT_CONFIG);
        let mut config = match &path {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("reading {}", path.display()))?;
                ServeConfig::from_toml(&text).with_context(|| format!("in {}", path.display()))?
            }
            None => ServeConfig::default(),
        };
        if let Some(database) = &self.database {
            config.database = Some(database.clone());
        }
        if let Some(dir) = &self.data_dir {
            config.data_dir = dir.clone();
        }
        Ok(config)
    }
}

/// Arguments of `mtasts serve`.
#[derive(Debug, clap::Args)]
pub(crate) struct ServeArgs {
    /// The service's own DNS zone, delegated to this server (e.g. mta-sts.provider.example).
    #[arg(long, value_name = "NAME", env = "MTASTS_ZONE")]
    zone: Option<String>,
    /// A public address of this service's policy host and name server (repeatable).
    #[arg(
        long = "public-ip",
        value_name = "IP",
        env = "MTASTS_PUBLIC_IP",
        value_delimiter = ','
    )]
    public_ip: Vec<IpAddr>,
    /// HTTPS policy host listener (repeatable; default 0.0.0.0:443).
    #[arg(
        long = "https-listen",
        value_name = "ADDR",
        env = "MTASTS_HTTPS_LISTEN",
        value_delimiter = ','
    )]
    https_listen: Vec<SocketAddr>,
    /// HTTP listener for ACME HTTP-01 challenges only (repeatable; default 0.0.0.0:80).
    #[arg(
        long = "http-listen",
        value_name = "ADDR",
        env = "MTASTS_HTTP_LISTEN",
        value_delimiter = ','
    )]
    http_listen: Vec<SocketAddr>,
    /// DNS listener, UDP and TCP (repeatable; default 0.0.0.0:53).
    #[arg(
        long = "dns-listen",
        value_name = "ADDR",
        env = "MTASTS_DNS_LISTEN",
        value_delimiter = ','
    )]
    dns_listen: Vec<SocketAddr>,
    /// SMTP listener for the report mailboxes (repeatable; default 0.0.0.0:25; the
    /// configuration file's `smtp_listen = []` turns mail intake off).
    #[arg(
        long = "smtp-listen",
        value_name = "ADDR",
        env = "MTASTS_SMTP_LISTEN",
        value_delimiter = ','
    )]
    smtp_listen: Vec<SocketAddr>,
    /// API and dashboard listener (default 127.0.0.1:8080).
    #[arg(long = "api-listen", value_name = "ADDR", env = "MTASTS_API_LISTEN")]
    api_listen: Option<SocketAddr>,
    /// ACME directory URL (default Let's Encrypt; "" turns ordering off).
    #[arg(
        long = "acme-directory",
        value_name = "URL",
        env = "MTASTS_ACME_DIRECTORY"
    )]
    acme_directory: Option<String>,
    /// Also trust this PEM root for the ACME server's HTTPS (e.g. Pebble's).
    #[arg(long = "acme-ca-file", value_name = "PEM", env = "MTASTS_ACME_CA_FILE")]
    acme_ca_file: Option<PathBuf>,
    /// Contact address for the ACME account.
    #[arg(long = "acme-email", value_name = "ADDRESS", env = "MTASTS_ACME_EMAIL")]
    acme_email: Option<String>,
    /// Preferred ACME challenge: http-01 or tls-alpn-01.
    #[arg(
        long = "acme-challenge",
        value_name = "TYPE",
        env = "MTASTS_ACME_CHALLENGE"
    )]
    acme_challenge: Option<String>,
    /// DNS server for verification lookups instead of the system's (repeatable).
    #[arg(long = "dns", value_name = "IP[:PORT]", value_parser = mtasts_net::dns::parse_server)]
    dns: Vec<SocketAddr>,
    /// Also trust these PEM roots when verifying policy hosts (repeatable).
    #[arg(long = "ca-file", value_name = "PEM")]
    ca_file: Vec<PathBuf>,
    /// The dashboard's public URL (https://… makes its cookies Secure; its origin is accepted
    /// behind a reverse proxy).
    #[arg(long = "public-url", value_name = "URL", env = "MTASTS_PUBLIC_URL")]
    public_url: Option<String>,
    /// TTL of the records the zone serves, in seconds (default 300).
    #[arg(long, value_name = "SECONDS")]
    ttl: Option<u32>,
    /// Test only: let verification connect to loopback and private addresses.
    #[arg(long = "verify-private-addresses", hide = true)]
    verify_private_addresses: bool,
    /// This node's name (default: host name and process id).
    #[arg(long = "node-id", value_name = "NAME", env = "MTASTS_NODE_ID")]
    node_id: Option<String>,
    /// Seconds between verifications of a delegated domain.
    #[arg(long = "verify-interval", value_name = "SECONDS")]
    verify_interval: Option<u64>,
    /// Seconds between verifications of a domain that does not point here yet.
    #[arg(long = "pending-verify-interval", value_name = "SECONDS")]
    pending_verify_interval: Option<u64>,
    /// Test only: milliseconds between database polls.
    #[arg(long = "poll-interval-ms", value_name = "MS", hide = true)]
    poll_interval_ms: Option<u64>,
    /// Test only: PBKDF2 iterations for new passwords.
    #[arg(long = "password-iterations", value_name = "N", hide = true)]
    password_iterations: Option<u32>,
    /// Test only: the HTTPS port verification uses instead of 443.
    #[arg(long = "verify-https-port", value_name = "PORT", hide = true)]
    verify_https_port: Option<u16>,
    /// Test only: the SMTP port verification probes instead of 25.
    #[arg(long = "verify-smtp-port", value_name = "PORT", hide = true)]
    verify_smtp_port: Option<u16>,
    /// Prometheus metrics listener, GET /metrics over plain HTTP (default: none).
    #[arg(
        long = "metrics-listen",
        value_name = "ADDR",
        env = "MTASTS_METRICS_LISTEN"
    )]
    metrics_listen: Option<SocketAddr>,
    /// The SMTP relay (host:port) alert e-mail goes through (default: no alert e-mail).
    #[arg(
        long = "alert-smtp-relay",
        value_name = "HOST:PORT",
        env = "MTASTS_ALERT_SMTP_RELAY"
    )]
    alert_smtp_relay: Option<String>,
    /// The sender address of alert e-mail (default `mtasts@<zone>`).
    #[arg(long = "alert-from", value_name = "ADDRESS", env = "MTASTS_ALERT_FROM")]
    alert_from: Option<String>,
    /// Seconds between evaluations of the alert rules (default 300).
    #[arg(long = "alert-interval", value_name = "SECONDS")]
    alert_interval: Option<u64>,
    /// Test only: let alert webhooks reach loopback and private addresses over plain http.
    #[arg(long = "alert-allow-private-targets", hide = true)]
    alert_allow_private_targets: bool,
    #[command(flatten)]
    db: DatabaseArgs,
}

macro_rules! set_if {
    ($config:ident, $($field:ident),+ $(,)?) => {
        $(if let Some(value) = $field { $config.$field = value; })+
    };
}
macro_rules! set_list {
    ($config:ident, $($field:ident),+ $(,)?) => {
        $(if !$field.is_empty() { $config.$field = $field; })+
    };
}

impl ServeArgs {
    fn config(self) -> anyhow::Result<ServeConfig> {
        let mut config = self.db.load()?;
        let ServeArgs {
            zone,
            public_ip,
            https_listen,
            http_listen,
            dns_listen,
            smtp_listen,
            api_listen,
            acme_directory,
            acme_ca_file,
            acme_email,
            acme_challenge,
            dns,
            ca_file,
            public_url,
            ttl,
            verify_private_addresses,
            node_id,
            verify_interval,
            pending_verify_interval,
            poll_interval_ms,
            password_iterations,
            verify_https_port,
            verify_smtp_port,
            metrics_listen,
            alert_smtp_relay,
            alert_from,
            alert_interval,
            alert_allow_private_targets,
            db: _,
        } = self;
        set_if!(
            config,
            zone,
            ttl,
            api_listen,
            acme_directory,
            acme_challenge,
            verify_interval,
            pending_verify_interval,
            poll_interval_ms,
            password_iterations,
            verify_https_port,
            verify_smtp_port,
            alert_interval
        );
        set_list!(
            config,
            public_ip,
            https_listen,
            http_listen,
            dns_listen,
            smtp_listen,
            dns,
            ca_file
        );
        if acme_ca_file.is_some() {
            config.acme_ca_file = acme_ca_file;
        }
        if acme_email.is_some() {
            config.acme_email = acme_email;
        }
        if node_id.is_some() {
            config.node_id = node_id;
        }
        if public_url.is_some() {
            config.public_url = public_url;
        }
        if metrics_listen.is_some() {
            config.metrics_listen = metrics_listen;
        }
        if verify_private_addresses {
            config.verify_private_addresses = true;
        }
        if alert_smtp_relay.is_some() {
            config.alert_smtp_relay = alert_smtp_relay;
        }
        if alert_from.is_some() {
            config.alert_from = alert_from;
        }
        if alert_allow_private_targets {
            config.alert_allow_private_targets = true;
        }
        anyhow::ensure!(
            !config.zone.is_empty(),
            "--zone is required (the DNS zone delegated to this service), e.g.\n  mtasts serve --zone mta-sts.provider.example --public-ip 203.0.113.7"
        );
        Ok(config)
    }
}

pub(crate) fn run_serve(args: ServeArgs) -> anyhow::Result<ExitCode> {
    let config = args.config()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let shutdown = CancellationToken::new();
        crate::signals::install(shutdown.clone(), None)?;
        let listeners = mtasts_host::serve::Listeners::bind(&config)
            .await
            .context("starting mtasts serve")?;
        let serve = mtasts_host::serve::Serve::start_on(config.clone(), listeners)
            .await
            .context("starting mtasts serve")?;
        let addrs = serve.addrs().clone();
        println!(
            "mtasts serve: zone {} on {}",
            config.zone,
            config.database_url()
        );
        println!("  policy host (HTTPS): {:?}", addrs.https);
        println!("  ACME HTTP-01:        {:?}", addrs.http);
        println!("  DNS authority:       {:?}", addrs.dns);
        println!("  report mail (SMTP):  {:?}", addrs.smtp);
        println!(
            "  API:                 http://{}/api/v1/ (OpenAPI: /api/v1/openapi.json)",
            addrs.api
        );
        println!("  dashboard:           http://{}/", addrs.api);
        if let Some(metrics) = addrs.metrics {
            println!("  metrics:             http://{metrics}/metrics");
        }
        // The token goes to a private file, never to stdout (the journal keeps stdout).
        if let Some(path) = serve.admin_token_file() {
            println!();
            println!("First start: admin token written to {}", path.display());
            println!("Use it as `Authorization: Bearer <token>` or to log in to the dashboard.");
        }
        use std::io::Write;
        let _ = std::io::stdout().flush();
        serve.run(shutdown).await;
        Ok(ExitCode::SUCCESS)
    })
}

/// Arguments of `mtasts admin`.
#[derive(Debug, clap::Args)]
pub(crate) struct AdminArgs {
    #[command(subcommand)]
    command: AdminCommand,
    #[command(flatten)]
    db: DatabaseArgs,
}

#[derive(Debug, clap::Subcommand)]
enum AdminCommand {
    /// Tenants: the customers or departments whose domains are hosted.
    #[command(subcommand)]
    Tenant(TenantCommand),
    /// API tokens.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Keys that seal private keys in the database (`secret_key_file`).
    #[command(subcommand)]
    SecretKey(SecretKeyCommand),
}

#[derive(Debug, clap::Subcommand)]
enum SecretKeyCommand {
    /// Print a new random key (64 hex digits) for `secret_key_file`.
    New,
}

#[derive(Debug, clap::Subcommand)]
enum TenantCommand {
    /// Create a tenant.
    Create {
        /// Its name.
        name: String,
    },
    /// List tenants.
    List,
}

#[derive(Debug, clap::Subcommand)]
enum TokenCommand {
    /// Create an API token and print it (shown once).
    Create {
        /// The tenant the token belongs to; without it, an admin token.
        #[arg(long, value_name = "NAME")]
        tenant: Option<String>,
        /// owner or readonly for a tenant token.
        #[arg(long, value_name = "ROLE", default_value = "owner")]
        role: String,
        /// A note to recognise the token by.
        #[arg(long, value_name = "TEXT", default_value = "created with mtasts admin")]
        label: String,
        /// Days until the token stops working (1 to 3650); without it, it never expires.
        #[arg(long, value_name = "N")]
        expires_in_days: Option<i64>,
    },
    /// List API tokens, one line each: id, tenant (- for admin tokens), role, label,
    /// created, expires, last used (tab-separated; times in UTC, - for none).
    List {
        /// Only this tenant's tokens.
        #[arg(long, value_name = "NAME")]
        tenant: Option<String>,
    },
    /// Revoke an API token: it is refused at once on every node, and dashboard sessions
    /// opened with it end.
    Revoke {
        /// The token's id (from `mtasts admin token list`).
        id: i64,
    },
}

pub(crate) fn run_admin(args: AdminArgs) -> anyhow::Result<ExitCode> {
    // Needs no database: a key is made before any is configured.
    if let AdminCommand::SecretKey(SecretKeyCommand::New) = args.command {
        return new_secret_key();
    }
    let config = args.db.load()?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let url = config.database_url();
        config
            .ensure_database_dir()
            .with_context(|| format!("creating the directory of {url}"))?;
        let db = HostDb::open(&url)
            .await
            .with_context(|| format!("opening {url}"))?;
        // The same operations, rules and spellings as the API's, as an administrator.
        let who = Principal::operator();
        match args.command {
            AdminCommand::Tenant(TenantCommand::Create { name }) => {
                let tenant = service::create_tenant(&db, &who, &name)
                    .await
                    .context("creating the tenant")?;
                println!("tenant {} created (id {})", tenant.name, tenant.id);
            }
            AdminCommand::Tenant(TenantCommand::List) => {
                for tenant in service::list_tenants(&db, &who).await? {
                    println!("{}\t{}", tenant.id, tenant.name);
                }
            }
            AdminCommand::Token(TokenCommand::Create {
                tenant,
                role,
                label,
                expires_in_days,
            }) => {
                let now = unix_now();
                let plain = match &tenant {
                    None => {
                        service::create_admin_token(&db, &who, &label, expires_in_days, now).await
                    }
                    Some(name) => {
                        let request = NewTokenRequest {
                            role: role.clone(),
                            label,
                            expires_in_days,
                        };
                        service::create_token(&db, &who, name, request, now)
                            .await
                            .map(|token| token.token)
                    }
                };
                let plain = plain.map_err(|e| match (e, &tenant) {
                    (ServiceError::NotFound, Some(name)) => {
                        anyhow::anyhow!("no tenant named {name:?}")
                    }
                    (ServiceError::Invalid(field), _) if field.field == "role" => {
                        anyhow::anyhow!("--role {role:?}: use owner or readonly")
                    }
                    (ServiceError::Invalid(field), _) if field.field == "expires_in_days" => {
                        anyhow::anyhow!("--expires-in-days: {}", field.message)
                    }
                    (e, _) => anyhow::Error::new(e).context("creating the token"),
                })?;
                println!("{plain}");
            }
            AdminCommand::SecretKey(SecretKeyCommand::New) => return new_secret_key(),
            AdminCommand::Token(TokenCommand::List { tenant }) => {
                let tokens = service::list_tokens(&db, &who, tenant.as_deref())
                    .await
                    .map_err(|e| match (e, &tenant) {
                        (ServiceError::NotFound, Some(name)) => {
                            anyhow::anyhow!("no tenant named {name:?}")
                        }
                        (e, _) => anyhow::Error::new(e).context("listing the tokens"),
                    })?;
                for token in tokens {
                    println!(
                        "{}\t{}\t{}\t{}\t{}\t{}\t{}",
                        token.id,
                        token.tenant.as_deref().unwrap_or("-"),
                        token.role.as_str(),
                        token.label,
                        utc(Some(token.created_at)),
                        utc(token.expires_at),
                        utc(token.last_used),
                    );
                }
            }
            AdminCommand::Token(TokenCommand::Revoke { id }) => {
                service::revoke_token(&db, &who, id)
                    .await
                    .map_err(|e| match e {
                        ServiceError::NotFound => anyhow::anyhow!("no token with id {id}"),
                        e => anyhow::Error::new(e).context("revoking the token"),
                    })?;
                println!("token {id} revoked");
            }
        }
        Ok(ExitCode::SUCCESS)
    })
}

/// `mtasts admin secret-key new`: a fresh random key for `secret_key_file`, as 64 hex digits.
fn new_secret_key() -> anyhow::Result<ExitCode> {
    let key = mtasts_store::host::SecretKey::generate().context("making a secret key")?;
    println!("{}", key.to_hex());
    Ok(ExitCode::SUCCESS)
}

/// The system clock in Unix seconds (token lifetimes start now).
fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// `2027-01-15T08:00:00Z`, or `-` for no time.
fn utc(seconds: Option<i64>) -> String {
    match seconds {
        None => "-".to_owned(),
        Some(s) => mtasts_proto::tlsrpt::report::UtcTime::from_unix_seconds(s)
            .map_or_else(|| s.to_string(), |t| t.to_string()),
    }
}
