//! `mtasts serve` in one process: the database, the node, and every listener.
//!
//! Two steps, like every daemon here: [`Listeners::bind`] binds every socket (the CLI does it
//! before announcing), then [`Serve::start_on`] opens the database, starts the node and serves
//! on those listeners, each on the shared accept loop of `mtasts-listen`, with connection caps
//! sized below the open-files limit (raised to the hard limit first; both are logged).
//! [`Serve::run`] serves until a cancellation token fires, then drains.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use mtasts_check::{CheckOptions, Checker};
use mtasts_listen::files::OpenFiles;
use mtasts_net::dns::{DnsConfig, DnsLookup, HickoryDns};
use mtasts_net::fetch::{FetchConfig, PolicyFetcher};
use mtasts_net::public_only::PublicOnly;
use mtasts_net::smtp::{ProbeConfig, SmtpProber};
use mtasts_net::trust::TrustConfig;
use mtasts_store::host::HostDb;
use thiserror::Error;
use tokio::net::{TcpListener, UdpSocket};
use tokio_util::sync::CancellationToken;

use crate::acme::{AcmeConfig, ChallengeKind};
use crate::config::ServeConfig;
use crate::dns::DnsAuthority;
use crate::metrics::ServeMetrics;
use crate::node::{Node, NodeOptions, NodeParts, zone_settings};
use crate::policy_host::{
    AppListener, Http01, IntakeLimits, ListenerLimits, PolicyHost, ReportIntake,
};
use crate::snapshot::{self, Snapshot};
use crate::state::AppState;

/// Why `serve` could not start.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ServeError {
    /// The configuration is unusable.
    #[error("configuration: {0}")]
    Config(String),
    /// The database could not be opened or migrated.
    #[error("database: {0}")]
    Database(#[from] mtasts_store::host::HostDbError),
    /// A listener could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The system's reason.
        source: std::io::Error,
    },
}

/// The addresses actually bound (ports chosen by the system when 0 was asked for).
#[derive(Clone, Debug)]
pub struct BoundAddrs {
    /// HTTPS policy host.
    pub https: Vec<SocketAddr>,
    /// ACME HTTP-01.
    pub http: Vec<SocketAddr>,
    /// DNS (UDP and TCP share each address).
    pub dns: Vec<SocketAddr>,
    /// API and dashboard.
    pub api: SocketAddr,
    /// Prometheus metrics, when `metrics_listen` is set.
    pub metrics: Option<SocketAddr>,
    /// SMTP intake of the report mailboxes.
    pub smtp: Vec<SocketAddr>,
}

/// Every listening socket of `serve`, bound and not yet served.
#[derive(Debug)]
pub struct Listeners {
    /// DNS: a UDP socket and a TCP listener on each address.
    dns: Vec<(UdpSocket, TcpListener)>,
    https: Vec<TcpListener>,
    http: Vec<TcpListener>,
    api: TcpListener,
    metrics: Option<TcpListener>,
    smtp: Vec<TcpListener>,
    addrs: BoundAddrs,
}

impl Listeners {
    /// Binds the addresses of `config` (port 0 picks a free port; see [`Listeners::addrs`]),
    /// after checking the settings [`Serve::start_on`] needs, so that a configuration mistake
    /// is reported before anything is bound.
    pub async fn bind(config: &ServeConfig) -> Result<Listeners, ServeError> {
        checked_settings(config)?;
        mail_config(config)?;
        let mut addrs = BoundAddrs {
            https: Vec::new(),
            http: Vec::new(),
            dns: Vec::new(),
            api: config.api_listen,
            metrics: None,
            smtp: Vec::new(),
        };
        let mut dns = Vec::new();
        for addr in &config.dns_listen {
            let (udp, tcp) = bind_dns(*addr).await?;
            addrs.dns.push(udp.local_addr().map_err(bind_error(*addr))?);
            dns.push((udp, tcp));
        }
        let mut https = Vec::new();
        for addr in &config.https_listen {
            let listener = TcpListener::bind(addr).await.map_err(bind_error(*addr))?;
            addrs
                .https
                .push(listener.local_addr().map_err(bind_error(*addr))?);
            https.push(listener);
        }
        let mut http = Vec::new();
        for addr in &config.http_listen {
            let listener = TcpListener::bind(addr).await.map_err(bind_error(*addr))?;
            addrs
                .http
                .push(listener.local_addr().map_err(bind_error(*addr))?);
            http.push(listener);
        }
        let api = TcpListener::bind(config.api_listen)
            .await
            .map_err(bind_error(config.api_listen))?;
        addrs.api = api.local_addr().map_err(bind_error(config.api_listen))?;
        let metrics = match config.metrics_listen {
            Some(addr) => {
                let listener = TcpListener::bind(addr).await.map_err(bind_error(addr))?;
                addrs.metrics = Some(listener.local_addr().map_err(bind_error(addr))?);
                Some(listener)
            }
            None => None,
        };
        let mut smtp = Vec::new();
        for addr in &config.smtp_listen {
            let listener = TcpListener::bind(addr).await.map_err(bind_error(*addr))?;
            addrs
                .smtp
                .push(listener.local_addr().map_err(bind_error(*addr))?);
            smtp.push(listener);
        }
        Ok(Listeners {
            dns,
            https,
            http,
            api,
            metrics,
            smtp,
            addrs,
        })
    }

    /// The bound addresses.
    pub fn addrs(&self) -> &BoundAddrs {
        &self.addrs
    }
}

/// Binds DNS over UDP and TCP on one port. With port 0 the system picks the UDP port, and
/// that number may already be taken for TCP (by any connection's ephemeral port), so a few
/// other picks are tried before giving up; a fixed port is tried once.
async fn bind_dns(addr: SocketAddr) -> Result<(UdpSocket, TcpListener), ServeError> {
    const ATTEMPTS: usize = 16;
    let mut attempt = 0;
    loop {
        attempt += 1;
        let udp = UdpSocket::bind(addr).await.map_err(bind_error(addr))?;
        let bound = udp.local_addr().map_err(bind_error(addr))?;
        match TcpListener::bind(bound).await {
            Ok(tcp) => return Ok((udp, tcp)),
            Err(err)
                if addr.port() == 0
                    && err.kind() == std::io::ErrorKind::AddrInUse
                    && attempt < ATTEMPTS => {}
            Err(err) => return Err(bind_error(bound)(err)),
        }
    }
}

/// A running `serve` process.
pub struct Serve {
    addrs: BoundAddrs,
    admin_token: Option<String>,
    admin_token_file: Option<std::path::PathBuf>,
    node: Option<Node>,
    dns: Vec<DnsAuthority>,
    policy_hosts: Vec<PolicyHost>,
    http01: Vec<Http01>,
    api: Option<AppListener>,
    mail: Vec<crate::mail::MailIntake>,
    db: HostDb,
    metrics: ServeMetrics,
    metrics_listener: Option<AppListener>,
    reports: mtasts_store::reports::ReportDb,
}

fn bind_error(addr: SocketAddr) -> impl FnOnce(std::io::Error) -> ServeError {
    move |source| ServeError::Bind { addr, source }
}

/// The HTTPS report intake's limits from `config`.
fn report_intake_limits(config: &ServeConfig) -> Result<IntakeLimits, ServeError> {
    if config.report_max_bytes == 0 {
        return Err(ServeError::Config(
            "report_max_bytes must be at least 1".to_owned(),
        ));
    }
    if config.report_rate_burst == 0 || config.report_rate_per_minute == 0 {
        return Err(ServeError::Config(
            "report_rate_burst and report_rate_per_minute must be at least 1".to_owned(),
        ));
    }
    Ok(IntakeLimits {
        max_body_bytes: config.report_max_bytes,
        rate: crate::ratelimit::Rate::per_minute(
            config.report_rate_burst,
            config.report_rate_per_minute,
        ),
        ..IntakeLimits::default()
    })
}

/// The zone settings of `config`, or why they cannot be served.
fn checked_settings(config: &ServeConfig) -> Result<crate::snapshot::ZoneSettings, ServeError> {
    if config.public_ip.is_empty() {
        return Err(ServeError::Config(
            "public_ip (--public-ip) is required: the addresses mta-sts.<domain> resolve to"
                .to_owned(),
        ));
    }
    if let Some(ip) = config.public_ip.iter().find(|ip| ip.is_unspecified()) {
        return Err(ServeError::Config(format!(
            "public_ip {ip} is not an address senders can reach"
        )));
    }
    // RFC 2181 §8: a TTL is at most 2^31 - 1.
    if config.ttl > i32::MAX as u32 {
        return Err(ServeError::Config(format!(
            "ttl {} is above 2147483647 seconds",
            config.ttl
        )));
    }
    let mut settings = zone_settings(&config.zone, config.public_ip.clone(), config.ttl)
        .map_err(|e| ServeError::Config(format!("zone (--zone) {:?}: {e}", config.zone)))?;
    settings.own_policy_mode = match config.report_policy_mode.as_str() {
        "testing" => mtasts_proto::sts::policy::Mode::Testing,
        "enforce" => mtasts_proto::sts::policy::Mode::Enforce,
        other => {
            return Err(ServeError::Config(format!(
                "report_policy_mode {other:?}: use testing or enforce"
            )));
        }
    };
    // The mailto: URIs are published (and the MX record served) only while mail is received.
    settings.report_mail = !config.smtp_listen.is_empty();
    crate::dns::check_settings(&settings)
        .map_err(|e| ServeError::Config(format!("zone (--zone) {:?}: {e}", config.zone)))?;
    Ok(settings)
}

/// The SMTP intake's settings of `config`, or why they are unusable.
fn mail_config(config: &ServeConfig) -> Result<crate::mail::MailConfig, ServeError> {
    if config.smtp_max_message_bytes == 0 {
        return Err(ServeError::Config(
            "smtp_max_message_bytes must be at least 1".to_owned(),
        ));
    }
    if config.smtp_max_connections_per_client == 0 {
        return Err(ServeError::Config(
            "smtp_max_connections_per_client must be at least 1".to_owned(),
        ));
    }
    if !(1..=3600).contains(&config.smtp_timeout) {
        return Err(ServeError::Config(
            "smtp_timeout must be 1 to 3600 seconds".to_owned(),
        ));
    }
    let defaults = crate::mail::MailConfig::default();
    Ok(crate::mail::MailConfig {
        limits: mtasts_proto::smtp_server::Limits {
            max_message_bytes: config.smtp_max_message_bytes,
            ..defaults.limits
        },
        max_connections_per_client: config.smtp_max_connections_per_client,
        timeout: Duration::from_secs(config.smtp_timeout),
        ..defaults
    })
}

fn node_id() -> String {
    let host = std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "node".to_owned());
    format!("{host}-{}", std::process::id())
}

fn checker(config: &ServeConfig, dns: Arc<dyn DnsLookup>) -> Result<Checker, ServeError> {
    let roots = TrustConfig {
        builtin_roots: true,
        ca_files: config.ca_file.clone(),
    }
    .root_store()
    .map_err(|e| ServeError::Config(format!("trust roots: {e}")))?;
    let timeout = Duration::from_secs(10);
    let fetcher = PolicyFetcher::new(
        FetchConfig {
            timeout,
            roots: roots.clone(),
            port: config.verify_https_port,
            max_bytes: mtasts_proto::sts::POLICY_MAX_BYTES,
        },
        dns.clone(),
    );
    let prober = SmtpProber::new(ProbeConfig {
        timeout,
        roots,
        port: config.verify_smtp_port,
        helo_name: format!("verify.{}", config.zone),
    });
    Ok(Checker::new(
        dns,
        Arc::new(fetcher),
        Arc::new(prober),
        CheckOptions {
            deadline: Duration::from_secs(60),
            ..CheckOptions::default()
        },
    ))
}

fn acme_config(config: &ServeConfig) -> Result<Option<AcmeConfig>, ServeError> {
    if config.acme_directory.is_empty() {
        return Ok(None);
    }
    let ca_root_pem = match &config.acme_ca_file {
        Some(path) => Some(
            std::fs::read_to_string(path)
                .map_err(|e| ServeError::Config(format!("acme_ca_file {}: {e}", path.display())))?,
        ),
        None => None,
    };
    let challenge = match config.acme_challenge.as_str() {
        "http-01" => ChallengeKind::Http01,
        "tls-alpn-01" => ChallengeKind::TlsAlpn01,
        other => {
            return Err(ServeError::Config(format!(
                "acme_challenge {other:?}: use http-01 or tls-alpn-01"
            )));
        }
    };
    let mut acme = AcmeConfig::new(config.acme_directory.clone());
    acme.ca_root_pem = ca_root_pem;
    acme.contact_email = config.acme_email.clone();
    acme.challenge = challenge;
    Ok(Some(acme))
}

/// The alert machinery of `config`: webhooks through `dns` (private targets refused unless
/// `alert_allow_private_targets`), e-mail through `alert_smtp_relay` when set.
fn alerts(
    config: &ServeConfig,
    db: &HostDb,
    reports: &mtasts_store::reports::ReportDb,
    dns: Arc<dyn DnsLookup>,
) -> Result<crate::alerts::Alerts, ServeError> {
    use crate::alerts::email::{MailSend, SmtpRelay};
    use crate::alerts::webhook::HttpWebhook;
    let roots = TrustConfig {
        builtin_roots: true,
        ca_files: config.ca_file.clone(),
    }
    .root_store()
    .map_err(|e| ServeError::Config(format!("trust roots: {e}")))?;
    let mail: Option<Arc<dyn MailSend>> = match &config.alert_smtp_relay {
        Some(relay) => {
            let valid = relay.rsplit_once(':').is_some_and(|(host, port)| {
                !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p > 0)
            });
            if !valid {
                return Err(ServeError::Config(format!(
                    "alert_smtp_relay {relay:?}: write host:port"
                )));
            }
            Some(Arc::new(SmtpRelay::new(
                relay.clone(),
                config.zone.clone(),
                roots.clone(),
            )))
        }
        None => None,
    };
    let from = config
        .alert_from
        .clone()
        .unwrap_or_else(|| format!("mtasts@{}", config.zone));
    Ok(crate::alerts::Alerts::new(
        db.clone(),
        reports.clone(),
        crate::alerts::AlertConfig {
            from,
            interval: Duration::from_secs(config.alert_interval.max(1)),
        },
        Arc::new(HttpWebhook::new(
            dns,
            roots,
            config.alert_allow_private_targets,
        )),
        mail,
    ))
}

impl Serve {
    /// Binds every listener ([`Listeners::bind`]) and starts serving on them
    /// ([`Serve::start_on`]).
    pub async fn start(config: ServeConfig) -> Result<Serve, ServeError> {
        let listeners = Listeners::bind(&config).await?;
        Self::start_on(config, listeners).await
    }

    /// Opens the database (migrating it; a SQLite one private to its owner), reseals its
    /// secrets under the configured key ([`crate::secrets`]), creates the first admin token on
    /// a new database (written to `<data_dir>/admin-token`), loads the hosted domains and
    /// starts serving on `listeners`.
    pub async fn start_on(config: ServeConfig, listeners: Listeners) -> Result<Serve, ServeError> {
        let settings = checked_settings(&config)?;
        let url = config.database_url();
        config
            .ensure_database_dir()
            .map_err(|e| ServeError::Config(format!("the database directory for {url}: {e}")))?;
        if config.data_dir.exists() {
            crate::secrets::private_dir(&config.data_dir).map_err(|e| {
                ServeError::Config(format!("data_dir {}: {e}", config.data_dir.display()))
            })?;
        }
        let sealer = crate::secrets::sealer(&config, |name| std::env::var(name).ok())?;
        let db = HostDb::open(&url).await?;
        let db = match sealer {
            Some(sealer) => db.with_secret_keys(sealer),
            None => db,
        };
        crate::secrets::reseal_at_start(&db).await?;
        let reports = mtasts_store::reports::ReportDb::open(&url)
            .await
            .map_err(|e| ServeError::Config(format!("the reports database {url}: {e}")))?;

        let dns: Arc<dyn DnsLookup> = Arc::new(
            HickoryDns::new(&DnsConfig {
                servers: (!config.dns.is_empty()).then(|| config.dns.clone()),
                timeout: Duration::from_secs(5),
            })
            .map_err(|e| ServeError::Config(format!("dns: {e}")))?,
        );
        let checker_dns: Arc<dyn DnsLookup> = if config.verify_private_addresses {
            dns.clone()
        } else {
            Arc::new(PublicOnly::new(dns.clone()))
        };
        let checker = Arc::new(checker(&config, checker_dns)?);
        let iterations = std::num::NonZeroU32::new(config.password_iterations)
            .filter(|n| n.get() <= crate::auth::MAX_PBKDF2_ITERATIONS)
            .ok_or_else(|| {
                ServeError::Config(format!(
                    "password_iterations must be 1 to {}",
                    crate::auth::MAX_PBKDF2_ITERATIONS
                ))
            })?;
        let limits = crate::state::ApiLimits {
            password_iterations: iterations,
            ..crate::state::ApiLimits::default()
        };
        let state = AppState::new(db.clone(), settings.delegation.clone(), dns.clone())
            .with_limits(limits)
            .with_trusted_proxies(config.trusted_proxies.clone())
            .with_report_mail(settings.report_mail)
            .with_reports(reports.clone());
        let snapshot = snapshot::handle(Snapshot::default());
        let metrics = ServeMetrics::default();
        metrics.watch(snapshot.clone(), settings.reports().host());
        let mut options = NodeOptions::new(config.node_id.clone().unwrap_or_else(node_id));
        options.poll_interval = Duration::from_millis(config.poll_interval_ms.max(50));
        options.node_retention = Duration::from_secs(config.node_retention);
        options.verify_interval = Duration::from_secs(config.verify_interval.max(1));
        options.pending_verify_interval =
            Duration::from_secs(config.pending_verify_interval.max(1));
        options.maintenance_interval = options
            .maintenance_interval
            .min(options.pending_verify_interval);
        options.metrics = metrics.clone();
        let mut node = Node::start(
            db.clone(),
            snapshot.clone(),
            NodeParts {
                settings: settings.clone(),
                options,
                dns: dns.clone(),
                checker: Some(checker),
                reports: Some(reports.clone()),
                acme: acme_config(&config)?,
            },
        )
        .await?;
        node.start_retention(crate::node::retention::Retention {
            db: db.clone(),
            reports: reports.clone(),
            days: config.report_retention_days.max(1),
        });
        node.run_alerts(alerts(&config, &db, &reports, dns.clone())?.with_metrics(metrics.clone()));
        let state = state.with_verifier(Arc::new(node.verifier()));

        let Listeners {
            dns: dns_sockets,
            https,
            http,
            api: api_listener,
            metrics: metrics_socket,
            smtp,
            addrs,
        } = listeners;
        // Every connection is a descriptor: raise the limit, and keep the caps below it.
        let files = OpenFiles::raise();
        let host_limits = ListenerLimits::default();
        let dns_limits = crate::dns::tcp_limits();
        let wanted: Vec<usize> =
            std::iter::repeat_n(host_limits.max_connections, https.len() + http.len() + 1)
                .chain(std::iter::repeat_n(
                    METRICS_MAX_CONNECTIONS,
                    usize::from(metrics_socket.is_some()),
                ))
                .chain(std::iter::repeat_n(
                    dns_limits.max_connections,
                    dns_sockets.len(),
                ))
                .chain(std::iter::repeat_n(
                    crate::mail::MailConfig::default().max_connections,
                    smtp.len(),
                ))
                .collect();
        let caps = files.caps(&wanted);
        let host_limits = ListenerLimits {
            max_connections: caps[0],
            ..host_limits
        };
        let dns_limits = mtasts_listen::ConnectionLimits {
            max_connections: caps
                .get(https.len() + http.len() + 1 + usize::from(metrics_socket.is_some()))
                .copied()
                .unwrap_or(dns_limits.max_connections),
            ..dns_limits
        };
        tracing::info!(
            open_files = files.limit,
            open_files_at_start = files.was,
            http_max_connections = host_limits.max_connections,
            dns_tcp_max_connections = dns_limits.max_connections,
            "open-files limit and connection caps"
        );
        let dns_servers = dns_sockets
            .into_iter()
            .map(|(udp, tcp)| {
                DnsAuthority::start_with_metrics(
                    udp,
                    tcp,
                    settings.clone(),
                    snapshot.clone(),
                    dns_limits.clone(),
                    metrics.clone(),
                )
            })
            .collect();
        // One intake for every HTTPS listener: a client's rate and the cap on concurrent
        // intakes are the node's, whichever address it reaches.
        let intake = Arc::new(
            ReportIntake::with_db(
                reports.clone(),
                report_intake_limits(&config)?,
                config.trusted_proxies.clone(),
            )
            .with_metrics(metrics.clone()),
        );
        let policy_hosts = https
            .into_iter()
            .map(|listener| {
                PolicyHost::start_with_metrics(
                    listener,
                    snapshot.clone(),
                    settings.clone(),
                    host_limits.clone(),
                    Some(intake.clone()),
                    metrics.clone(),
                )
            })
            .collect();
        let http01 = http
            .into_iter()
            .map(|listener| {
                Http01::start_with_limits(listener, snapshot.clone(), host_limits.clone())
            })
            .collect();
        let mail_config = crate::mail::MailConfig {
            max_connections: caps
                .last()
                .copied()
                .unwrap_or(crate::mail::MailConfig::default().max_connections),
            ..mail_config(&config)?
        };
        let mut intake_limits = mtasts_report::Limits::default();
        intake_limits.max_input_bytes = intake_limits
            .max_input_bytes
            .max(config.smtp_max_message_bytes);
        let mut deliver = crate::mail::deliver::Deliver::new(mtasts_report::intake::Intake::new(
            reports.clone(),
            intake_limits,
        ))
        .with_metrics(metrics.clone());
        match crate::mail::dkim::DkimVerifier::new(&config.dns) {
            Ok(verifier) => deliver = deliver.with_dkim(verifier),
            Err(e) => tracing::warn!(error = %e, "DKIM of received report mail is not verified"),
        }
        let report_addresses = settings.reports();
        // One fallback certificate for all SMTP listeners, made once (generation costs a key).
        let certificates = Arc::new(crate::mail::tls::ServiceCertificate::new(
            snapshot.clone(),
            report_addresses.host(),
        ));
        let mail = smtp
            .into_iter()
            .map(|listener| {
                crate::mail::MailIntake::start(
                    listener,
                    report_addresses.clone(),
                    mail_config.clone(),
                    deliver.clone(),
                    certificates.clone(),
                )
            })
            .collect();
        // Only once everything is bound: a start that fails must not use up the one showing
        // of the first token. The lock keeps two nodes starting together from both creating one.
        let (admin_token, admin_token_file) =
            first_admin_token(&state, &config.data_dir).await?.unzip();
        let dashboard = crate::dashboard::router_with(
            state.clone(),
            crate::dashboard::DashboardConfig {
                public_url: config.public_url.clone(),
                session_idle_timeout: config.session_idle_timeout,
                session_lifetime: config.session_lifetime,
            },
        );
        // The API bounds its own bodies; this covers the dashboard's forms too.
        let router = crate::api::router(state)
            .merge(dashboard)
            .layer(axum::extract::DefaultBodyLimit::max(64 * 1024));
        // The policy host's accept loop: a connection cap and header/idle time limits, which
        // `axum::serve` lacks (a slow client must not hold connections for ever).
        let metrics_listener = metrics_socket.map(|listener| {
            let limits = ListenerLimits {
                max_connections: METRICS_MAX_CONNECTIONS,
                ..host_limits.clone()
            };
            AppListener::start(listener, metrics_router(metrics.clone()), limits)
        });
        let api = AppListener::start(api_listener, router, host_limits);
        Ok(Serve {
            addrs,
            admin_token,
            admin_token_file,
            node: Some(node),
            dns: dns_servers,
            policy_hosts,
            http01,
            api: Some(api),
            mail,
            db,
            metrics,
            metrics_listener,
            reports,
        })
    }

    /// The bound addresses.
    pub fn addrs(&self) -> &BoundAddrs {
        &self.addrs
    }

    /// The admin token created by this start, when the database was new.
    pub fn admin_token(&self) -> Option<&str> {
        self.admin_token.as_deref()
    }

    /// The file the admin token created by this start was written to.
    pub fn admin_token_file(&self) -> Option<&std::path::Path> {
        self.admin_token_file.as_deref()
    }

    /// The metrics every listener and the node count into (the report intakes and alerts
    /// count into clones of it).
    pub fn metrics(&self) -> &ServeMetrics {
        &self.metrics
    }

    /// The database.
    pub fn db(&self) -> &HostDb {
        &self.db
    }

    /// The reports database (the serve database's `report_` tables).
    pub fn report_db(&self) -> &mtasts_store::reports::ReportDb {
        &self.reports
    }

    /// Certificate rounds the node has finished since it started (0 once shut down).
    pub fn certificate_rounds(&self) -> u64 {
        self.node.as_ref().map_or(0, Node::certificate_rounds)
    }

    /// Serves until `shutdown` is cancelled, then stops every listener (letting requests in
    /// progress finish) and the node.
    pub async fn run(self, shutdown: CancellationToken) {
        shutdown.cancelled().await;
        tracing::info!("mtasts serve shutting down");
        self.shutdown().await;
    }

    /// Stops every listener and the node.
    pub async fn shutdown(mut self) {
        for mail in self.mail.drain(..) {
            mail.shutdown().await;
        }
        if let Some(api) = self.api.take() {
            api.shutdown().await;
        }
        if let Some(metrics) = self.metrics_listener.take() {
            metrics.shutdown().await;
        }
        for host in self.policy_hosts.drain(..) {
            host.shutdown().await;
        }
        for http in self.http01.drain(..) {
            http.shutdown().await;
        }
        for dns in self.dns.drain(..) {
            let _ = dns.shutdown().await;
        }
        if let Some(node) = self.node.take() {
            node.shutdown().await;
        }
    }
}

/// Connections the metrics listener keeps open at once: a few scrapers, not the internet.
const METRICS_MAX_CONNECTIONS: usize = 64;

/// `GET /metrics`: the OpenMetrics text of `metrics`; everything else 404.
fn metrics_router(metrics: ServeMetrics) -> axum::Router {
    axum::Router::new().route(
        "/metrics",
        axum::routing::get(move || {
            let metrics = metrics.clone();
            async move {
                (
                    [(
                        axum::http::header::CONTENT_TYPE,
                        crate::metrics::CONTENT_TYPE,
                    )],
                    metrics.encode(),
                )
            }
        }),
    )
}

/// The first admin token on a database that has none, created under a lock and written to a
/// private file in `data_dir` (never to the log), with that file.
async fn first_admin_token(
    state: &AppState,
    data_dir: &std::path::Path,
) -> Result<Option<(String, std::path::PathBuf)>, ServeError> {
    let _lock = crate::secrets::wait_for_lock(&state.db, "bootstrap-admin-token").await?;
    if state.db.count_admin_tokens().await? > 0 {
        return Ok(None);
    }
    let written = crate::secrets::write_admin_token(data_dir, async || {
        crate::service::bootstrap_admin_token(state)
            .await
            .map_err(|e| ServeError::Config(format!("creating the first admin token: {e}")))
    })
    .await?;
    if let Some((_, path)) = &written {
        tracing::warn!(
            path = %path.display(),
            "First start: admin token written to {}",
            path.display()
        );
    }
    Ok(written)
}

#[cfg(test)]
mod report_policy_mode_tests {
    use super::*;

    fn config(mode: &str) -> ServeConfig {
        ServeConfig {
            zone: "zone.example".to_owned(),
            public_ip: vec!["192.0.2.1".parse().unwrap()],
            report_policy_mode: mode.to_owned(),
            ..ServeConfig::default()
        }
    }

    #[test]
    fn report_policy_mode_sets_the_own_policy_mode() {
        use mtasts_proto::sts::policy::Mode;
        let testing = checked_settings(&ServeConfig {
            report_policy_mode: ServeConfig::default().report_policy_mode,
            ..config("")
        })
        .unwrap();
        assert_eq!(testing.own_policy_mode, Mode::Testing);
        assert!(testing.report_mail);
        let enforce = checked_settings(&config("enforce")).unwrap();
        assert_eq!(enforce.own_policy_mode, Mode::Enforce);
        for bad in ["none", "Enforce", ""] {
            let error = checked_settings(&config(bad)).unwrap_err().to_string();
            assert!(error.contains("report_policy_mode"), "{bad}: {error}");
        }
    }
}
