//! TLS-RPT for the sending side (RFC 8460): results collected from MTAs are counted per UTC
//! day in the store; after each day ends (plus a random delay) the reports are built, kept in
//! a persistent outbox and delivered to every `rua` of each recipient domain.
//!
//! * [`config`] — the `[tlsrpt]` section.
//! * [`build`] — one day's reports from the store (also for `mtasts tlsrpt report`).
//! * [`schedule`] — when a day's reports are due.
//! * [`outbox`] — leasing, attempting and finishing deliveries; backoff and suppression.
//! * [`deliver`] — HTTPS POST and DKIM-signed mail.
//!
//! Protocol rules (report JSON, names, the mail) live in `mtasts_proto::tlsrpt`; persistence
//! in `mtasts_store::tlsrpt`. [`Tlsrpt`] is the running subsystem: the daemon opens it when
//! `[tlsrpt] enabled = true` and runs [`Tlsrpt::run`]; the CLI calls [`Tlsrpt::build_day`],
//! [`Tlsrpt::send_day`] and [`Tlsrpt::status`].

pub mod build;
pub mod collect;
pub mod config;
pub mod deliver;
pub mod outbox;
pub mod schedule;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use mtasts_net::dns::{DnsConfig, DnsLookup, HickoryDns};
use mtasts_net::smtp::submit::{Credentials, Starttls};
use mtasts_net::trust::TrustConfig;
use mtasts_store::tlsrpt::{Status, TlsrptDb, TlsrptDbError};
use rustls::RootCertStore;
use thiserror::Error;
use tokio_util::sync::CancellationToken;

pub use build::BuiltDayReport;
pub use config::{StarttlsMode, TlsrptConfig, TlsrptMailConfig};
pub use outbox::PassSummary;

use crate::clock::{Clock, SystemClock};
use crate::config::Config;
use crate::metrics::Metrics;
use deliver::mail::{DkimSigning, MailDelivery, Route, load_dkim_key};
use deliver::{Deliver, Deliverer};
use schedule::{DAY, Schedule, random_delay, today};

/// How often the running subsystem looks for due days and deliveries.
pub const TICK: Duration = Duration::from_secs(30);
/// Time limit of one SMTP exchange of report mail.
pub const MAIL_TIMEOUT: Duration = Duration::from_secs(120);

/// Why a TLS-RPT operation failed.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum TlsrptError {
    /// The `[tlsrpt]` configuration is unusable (a key file, the relay password file).
    #[error("tlsrpt configuration: {0}")]
    Config(String),
    /// The database failed.
    #[error(transparent)]
    Db(#[from] TlsrptDbError),
    /// A report could not be built.
    #[error("building a TLS report: {0}")]
    Build(String),
    /// The day asked for has not ended yet (its reports would miss the rest of the day).
    #[error("the UTC day starting at {0} has not ended yet")]
    DayNotOver(i64),
}

/// The running TLS-RPT subsystem: its database, configuration, delivery edges and metrics.
pub struct Tlsrpt {
    db: TlsrptDb,
    config: TlsrptConfig,
    sender: build::Sender,
    deliver: Arc<dyn Deliver>,
    metrics: Arc<Metrics>,
    clock: Arc<dyn Clock>,
    node: String,
    tick: Duration,
}

impl Tlsrpt {
    /// Opens the subsystem of `config`: validates `[tlsrpt]`, opens (and migrates) the
    /// database, reads the DKIM key and relay password, and sets up DNS and trust roots for
    /// delivery.
    pub async fn open(config: &Config, metrics: Arc<Metrics>) -> Result<Tlsrpt, TlsrptError> {
        let t = &config.tlsrpt;
        t.validate()
            .map_err(|e| TlsrptError::Config(e.to_string()))?;
        mtasts_net::install_crypto_provider();
        let url = t.database_url(&config.data_dir);
        crate::daemon::prepare_sqlite_dir(&url).map_err(|e| TlsrptError::Config(e.to_string()))?;
        let db = TlsrptDb::open(&url).await?;
        let servers = if config.dns_servers.is_empty() {
            None
        } else {
            let mut servers = Vec::new();
            for s in &config.dns_servers {
                servers.push(
                    mtasts_net::dns::parse_server(s)
                        .map_err(|e| TlsrptError::Config(format!("dns_servers: {e}")))?,
                );
            }
            Some(servers)
        };
        let dns: Arc<dyn DnsLookup> = Arc::new(
            HickoryDns::new(&DnsConfig {
                servers,
                timeout: Duration::from_secs(config.timeout),
            })
            .map_err(|e| TlsrptError::Config(format!("DNS: {e}")))?,
        );
        let roots = TrustConfig {
            builtin_roots: config.builtin_roots,
            ca_files: config.ca_files.clone(),
        }
        .root_store()
        .map_err(|e| TlsrptError::Config(format!("trust roots: {e}")))?;
        let deliver = Arc::new(deliverer(t, dns, roots)?);
        Tlsrpt::new(db, t.clone(), deliver, metrics, Arc::new(SystemClock))
    }

    /// A subsystem over given parts (tests use a manual clock or their own edges).
    pub fn new(
        db: TlsrptDb,
        config: TlsrptConfig,
        deliver: Arc<dyn Deliver>,
        metrics: Arc<Metrics>,
        clock: Arc<dyn Clock>,
    ) -> Result<Tlsrpt, TlsrptError> {
        let submitter = mtasts_proto::tlsrpt::outgoing::submitter(&config.contact)
            .ok_or_else(|| {
                TlsrptError::Config(format!(
                    "tlsrpt.contact {:?} is not an e-mail address",
                    config.contact
                ))
            })?
            .to_owned();
        let sender = build::Sender {
            organization: config.organization.clone(),
            contact: config.contact.clone(),
            submitter,
            max_report_bytes: usize::try_from(config.max_report_bytes).unwrap_or(usize::MAX),
        };
        Ok(Tlsrpt {
            db,
            config,
            sender,
            deliver,
            metrics,
            clock,
            node: node_name(),
            tick: TICK,
        })
    }

    /// Looks for due work every `tick` instead of [`TICK`] (tests).
    pub fn with_tick(mut self, tick: Duration) -> Self {
        self.tick = tick;
        self
    }

    /// Names this resolver `node` in delivery leases instead of `hostname:pid` (tests running
    /// two resolvers in one process).
    pub fn with_node(mut self, node: impl Into<String>) -> Self {
        self.node = node.into();
        self
    }

    /// The database (the collector records results into it).
    pub fn db(&self) -> &TlsrptDb {
        &self.db
    }

    /// The configuration in use.
    pub fn config(&self) -> &TlsrptConfig {
        &self.config
    }

    fn now(&self) -> i64 {
        i64::try_from(self.clock.now()).unwrap_or(i64::MAX)
    }

    /// Builds the reports of the UTC day starting at `day` (today's so far too). With
    /// `store`, the day must have ended; each report is claimed in the store with its outbox
    /// entries (first attempt due now), and the day is marked done. Without, nothing is
    /// written (`mtasts tlsrpt report`).
    pub async fn build_day(
        &self,
        day: i64,
        store: bool,
    ) -> Result<Vec<BuiltDayReport>, TlsrptError> {
        let now = self.now();
        if !store {
            return build::build_day(&self.db, &self.sender, day, None).await;
        }
        if day + DAY > now {
            return Err(TlsrptError::DayNotOver(day));
        }
        let when = build::StoreAs {
            first_try: now,
            give_up_at: now
                .saturating_add(i64::try_from(self.config.retry_for).unwrap_or(i64::MAX)),
        };
        let built = build::build_day(&self.db, &self.sender, day, Some(when)).await?;
        let new = built
            .iter()
            .filter(|b| matches!(b.stored, Some(mtasts_store::tlsrpt::Inserted::New(_))))
            .count();
        self.metrics.tlsrpt_reports_built.inc_by(new as u64);
        self.db.mark_day_done(day).await?;
        tracing::info!(day, reports = built.len(), new, "TLS reports built");
        Ok(built)
    }

    /// Delivers the reports of `day` now: builds them if not built yet, makes that day's
    /// pending deliveries due, and runs the outbox once.
    pub async fn send_day(&self, day: i64) -> Result<PassSummary, TlsrptError> {
        self.build_day(day, true).await?;
        self.db.reschedule_day(day, self.now()).await?;
        self.deliver_due().await
    }

    /// Attempts every delivery due now.
    pub async fn deliver_due(&self) -> Result<PassSummary, TlsrptError> {
        let policy = outbox::OutboxPolicy {
            node: self.node.clone(),
            // An attempt can take the SMTP limit per MX host tried; the lease outlasts that.
            lease_secs: (MAIL_TIMEOUT.as_secs() as i64) * (deliver::mail::MAX_MX_TRIED as i64 + 1)
                + self.config.http_timeout as i64,
            suppress_after: self.config.suppress_after,
            suppress_for: i64::try_from(self.config.suppress_for).unwrap_or(i64::MAX),
        };
        Ok(
            outbox::deliver_due(&self.db, &self.deliver, &self.metrics, &policy, || {
                self.now()
            })
            .await?,
        )
    }

    /// Today's counters, the outbox, recent deliveries and failures.
    pub async fn status(&self) -> Result<Status, TlsrptError> {
        Ok(self.db.status(self.now(), 20).await?)
    }

    /// One round of the daemon's work: builds the days that are due, then delivers.
    pub async fn run_once(&self, schedule: &mut Schedule) -> Result<PassSummary, TlsrptError> {
        let now = self.now();
        let pending = self.db.pending_days(today(now)).await?;
        let max = self.config.send_delay_max;
        for day in schedule.due(&pending, now, || random_delay(max)) {
            self.build_day(day, true).await?;
        }
        self.deliver_due().await
    }

    /// Runs until `shutdown`: every tick, builds due days and delivers due reports. Errors
    /// (a database away) are logged and the next tick tries again.
    pub async fn run(self: Arc<Self>, shutdown: CancellationToken) {
        let mut schedule = Schedule::default();
        loop {
            // A shutdown interrupts a round: a delivery cut off after its destination took it
            // but before it was marked is sent again once its lease expires, and receivers drop
            // the duplicate by its report-id (RFC 8460 §5.3).
            tokio::select! {
                () = shutdown.cancelled() => return,
                result = self.run_once(&mut schedule) => {
                    if let Err(e) = result {
                        tracing::warn!("TLS reports: {e}; trying again in {} s", self.tick.as_secs());
                    }
                }
            }
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(self.tick) => {}
            }
        }
    }
}

/// The delivery edges of a configuration.
pub fn deliverer(
    t: &TlsrptConfig,
    dns: Arc<dyn DnsLookup>,
    roots: Arc<RootCertStore>,
) -> Result<Deliverer, TlsrptError> {
    let https = deliver::https::HttpsDelivery::new(
        dns.clone(),
        roots.clone(),
        t.allow_private_destinations,
        Duration::from_secs(t.http_timeout),
        usize::try_from(t.max_response_bytes).unwrap_or(usize::MAX),
    );
    Ok(Deliverer {
        https,
        mail: mail_delivery(t, dns, roots)?,
    })
}

/// Report mail of a configuration: `Err(why)` (kept, so `mailto:` attempts say it) when the
/// DKIM settings are absent — RFC 8460 §3 requires signed report mail.
fn mail_delivery(
    t: &TlsrptConfig,
    dns: Arc<dyn DnsLookup>,
    roots: Arc<RootCertStore>,
) -> Result<Result<MailDelivery, String>, TlsrptError> {
    let m = &t.mail;
    let (Some(domain), Some(selector), Some(key)) = (&m.dkim_domain, &m.dkim_selector, &m.dkim_key)
    else {
        return Ok(Err(
            "report mail is not configured: set tlsrpt.mail.dkim_domain, dkim_selector and \
             dkim_key (RFC 8460 requires DKIM-signed report mail)"
                .into(),
        ));
    };
    let key = load_dkim_key(key).map_err(TlsrptError::Config)?;
    let auth = match (&m.relay_username, &m.relay_password_file) {
        (Some(username), Some(file)) => Some(Credentials {
            username: username.clone(),
            password: read_password(file)?,
        }),
        _ => None,
    };
    let route = match &m.relay {
        Some(relay) => Route::Relay {
            relay: relay.clone(),
            starttls: match m.starttls {
                StarttlsMode::Require => Starttls::Require,
                StarttlsMode::Opportunistic => Starttls::Opportunistic,
            },
            auth,
        },
        None => Route::Direct { port: m.mx_port },
    };
    let from = t.mail_from().to_owned();
    let helo = m.helo.clone().unwrap_or_else(|| {
        from.rsplit_once('@')
            .map_or("localhost", |(_, d)| d)
            .to_owned()
    });
    let submitter = mtasts_proto::tlsrpt::outgoing::submitter(&t.contact)
        .unwrap_or_default()
        .to_owned();
    Ok(Ok(MailDelivery {
        from,
        helo,
        organization: t.organization.clone(),
        submitter,
        dkim: DkimSigning::new(domain, selector, key),
        route,
        dns,
        roots,
        allow_private: t.allow_private_destinations,
        timeout: MAIL_TIMEOUT,
    }))
}

/// The first line of a password file (at most 4 KiB).
fn read_password(path: &Path) -> Result<String, TlsrptError> {
    let err = |e: &dyn std::fmt::Display| TlsrptError::Config(format!("{}: {e}", path.display()));
    let meta = std::fs::metadata(path).map_err(|e| err(&e))?;
    if meta.len() > 4096 {
        return Err(err(&"larger than 4 KiB"));
    }
    let text = std::fs::read_to_string(path).map_err(|e| err(&e))?;
    Ok(text.lines().next().unwrap_or("").to_owned())
}

/// This resolver's name in delivery leases: host name and process id.
fn node_name() -> String {
    let host = std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "mtasts".to_owned());
    format!("{host}:{}", std::process::id())
}
