//! One `serve` node: keeps its [`Snapshot`](crate::snapshot::Snapshot) in step with the
//! database and runs the background work (promotion, removal, verification, certificates).
//!
//! Nodes share nothing but the database. Each polls the generation counter, reloads when it
//! moved, and reports the generation it serves in a heartbeat; the promoter publishes a new
//! TXT id only when every live node reports a generation at or past the version's.

pub mod board;
pub(crate) mod loader;
pub mod retention;
pub(crate) mod tasks;
pub mod verify;

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use mtasts_check::Checker;
use mtasts_net::dns::DnsLookup;
use mtasts_store::host::{HostDb, HostDbError};
use mtasts_store::reports::ReportDb;
use tokio::sync::Mutex;
use tokio_util::sync::CancellationToken;

use crate::acme::{AcmeConfig, ChallengeBoard, Issuer};
use crate::snapshot::{Freshness, SnapshotHandle, ZoneSettings};
use crate::verification::{DomainVerifier, Verification, VerifyError};

/// Timing of a node.
#[derive(Clone, Debug)]
pub struct NodeOptions {
    /// This node's name in the `nodes` table.
    pub node_id: String,
    /// How often the database generation is polled.
    pub poll_interval: Duration,
    /// A node that has not reported within this window is not counted as live.
    pub live_window: Duration,
    /// Re-verification interval for domains whose delegation is in place.
    pub verify_interval: Duration,
    /// Re-verification interval for domains not pointing here yet.
    pub pending_verify_interval: Duration,
    /// Time limit of one checker run.
    pub check_deadline: Duration,
    /// How often verification, certificates and removals are looked at.
    pub maintenance_interval: Duration,
    /// How long the row of a node that stopped reporting is kept before any node deletes it
    /// (never less than `live_window`).
    pub node_retention: Duration,
    /// Where certificate orders are counted (`acme_order`).
    pub metrics: crate::metrics::ServeMetrics,
}

impl NodeOptions {
    /// Production defaults for `node_id`.
    pub fn new(node_id: String) -> NodeOptions {
        NodeOptions {
            node_id,
            poll_interval: Duration::from_secs(1),
            live_window: Duration::from_secs(15),
            verify_interval: Duration::from_secs(600),
            pending_verify_interval: Duration::from_secs(60),
            check_deadline: Duration::from_secs(60),
            maintenance_interval: Duration::from_secs(5),
            node_retention: Duration::from_secs(86_400),
            metrics: crate::metrics::ServeMetrics::default(),
        }
    }
}

/// ACME state of a node: the configuration and, once connected, the account.
pub(crate) struct AcmeSlot {
    pub(crate) config: AcmeConfig,
    pub(crate) issuer: Mutex<Option<Arc<Issuer>>>,
}

/// What the node's tasks share.
pub(crate) struct NodeContext {
    pub(crate) db: HostDb,
    pub(crate) snapshot: SnapshotHandle,
    pub(crate) settings: ZoneSettings,
    pub(crate) options: NodeOptions,
    pub(crate) dns: Arc<dyn DnsLookup>,
    pub(crate) checker: Option<Arc<Checker>>,
    /// The received reports, for the DKIM selectors the checker looks up.
    pub(crate) reports: Option<ReportDb>,
    pub(crate) acme: Option<AcmeSlot>,
    pub(crate) board: Arc<dyn ChallengeBoard>,
    pub(crate) clock: fn() -> i64,
    /// How long the listeners may answer from the current snapshot.
    pub(crate) freshness: Arc<Freshness>,
    /// Certificate rounds finished (successfully or not), so an operator's probe or a test
    /// can tell that the node has looked at every due domain since some moment.
    pub(crate) certificate_rounds: AtomicU64,
}

/// The running background work of a node. Stops when dropped or on [`Node::shutdown`].
pub struct Node {
    cancel: CancellationToken,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    ctx: Arc<NodeContext>,
}

/// What a node needs besides the database and the snapshot handle.
pub struct NodeParts {
    /// The zone's fixed facts.
    pub settings: ZoneSettings,
    /// Timing.
    pub options: NodeOptions,
    /// DNS for verification and MX lookups.
    pub dns: Arc<dyn DnsLookup>,
    /// The checker engine for verification (`None`: record checks only).
    pub checker: Option<Arc<Checker>>,
    /// The received reports: the checker also looks up the DKIM keys of the selectors the
    /// domain's DMARC reports name (`None`: only the configured selectors).
    pub reports: Option<ReportDb>,
    /// ACME, when certificates are ordered.
    pub acme: Option<AcmeConfig>,
}

/// Unix seconds now.
pub(crate) fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

impl Node {
    /// Loads the first snapshot (so listeners started afterwards answer at once), reports
    /// in, and starts the loops.
    pub async fn start(
        db: HostDb,
        snapshot: SnapshotHandle,
        parts: NodeParts,
    ) -> Result<Node, HostDbError> {
        let board: Arc<dyn ChallengeBoard> = Arc::new(board::DbChallengeBoard {
            db: db.clone(),
            live_window: parts.options.live_window,
            propagation_timeout: Duration::from_secs(30),
            clock: unix_now,
            service_hosts: service_hosts(&parts.settings),
        });
        let ctx = Arc::new(NodeContext {
            db,
            snapshot,
            settings: parts.settings,
            options: parts.options,
            dns: parts.dns,
            checker: parts.checker,
            reports: parts.reports,
            acme: parts.acme.map(|config| AcmeSlot {
                config,
                issuer: Mutex::new(None),
            }),
            board,
            clock: unix_now,
            freshness: Arc::new(Freshness::new()),
            certificate_rounds: AtomicU64::new(0),
        });
        // Report in before loading: a version created between the load and the first report
        // must not be published while this node serves the state from before it.
        ctx.db.heartbeat_db_time(&ctx.options.node_id, 0).await?;
        let mut certs = loader::CertCache::default();
        sync_once(&ctx, &mut certs, true).await?;
        let cancel = CancellationToken::new();
        let tasks = vec![
            tokio::spawn(sync_loop(ctx.clone(), certs, cancel.clone())),
            tokio::spawn(maintenance_loop(
                ctx.clone(),
                Chore::CleanUp,
                cancel.clone(),
            )),
            tokio::spawn(maintenance_loop(ctx.clone(), Chore::Verify, cancel.clone())),
            tokio::spawn(maintenance_loop(
                ctx.clone(),
                Chore::Certificates,
                cancel.clone(),
            )),
        ];
        Ok(Node { cancel, tasks, ctx })
    }

    /// Starts deleting raw reports past the retention ([`retention`]) on this node's
    /// schedule; stops with the node.
    pub fn start_retention(&mut self, retention: retention::Retention) {
        let task = retention.run(
            retention::RETENTION_INTERVAL,
            self.ctx.clock,
            self.cancel.clone(),
        );
        self.tasks.push(tokio::spawn(task));
    }

    /// Runs the alert rounds ([`crate::alerts::run`]) beside the node's other loops, until
    /// the node stops. Each round takes the `alerts` advisory lock, so one node of several
    /// evaluates and delivers at a time.
    pub fn run_alerts(&mut self, alerts: crate::alerts::Alerts) {
        self.tasks.push(tokio::spawn(crate::alerts::run(
            alerts,
            self.cancel.clone(),
        )));
    }

    /// The node's name.
    pub fn node_id(&self) -> &str {
        &self.ctx.options.node_id
    }

    /// How many certificate rounds (orders and renewals of every due domain) this node has
    /// finished since it started.
    pub fn certificate_rounds(&self) -> u64 {
        self.ctx.certificate_rounds.load(Ordering::Acquire)
    }

    /// The on-demand verifier the API uses (`POST /api/v1/domains/{d}/verify`).
    pub fn verifier(&self) -> NodeVerifier {
        NodeVerifier {
            ctx: self.ctx.clone(),
        }
    }

    /// Stops the loops and waits for them.
    pub async fn shutdown(mut self) {
        self.cancel.cancel();
        for task in self.tasks.drain(..) {
            let _ = task.await;
        }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

/// Reloads the snapshot when the generation moved (or when `force`), then reports in.
async fn sync_once(
    ctx: &NodeContext,
    certs: &mut loader::CertCache,
    force: bool,
) -> Result<(), HostDbError> {
    // The deadline counts from before the database is asked: the report written below can
    // only be later than this instant, so this node stops answering before the others stop
    // counting it as live.
    let asked = tokio::time::Instant::now().into_std();
    let generation = ctx.db.generation().await?;
    if force || generation != ctx.snapshot.load().generation {
        let state = ctx.db.load_state().await?;
        let snapshot = loader::build_snapshot(&ctx.settings, state, certs, &ctx.freshness);
        tracing::debug!(
            generation = snapshot.generation,
            domains = snapshot.domains.len(),
            "snapshot loaded"
        );
        ctx.snapshot.store(Arc::new(snapshot));
    }
    let loaded = ctx.snapshot.load().generation;
    ctx.db
        .heartbeat_db_time(&ctx.options.node_id, loaded)
        .await?;
    let margin = ctx.options.poll_interval.max(Duration::from_secs(1));
    ctx.freshness
        .extend_to(asked + ctx.options.live_window.saturating_sub(margin));
    Ok(())
}

async fn sync_loop(ctx: Arc<NodeContext>, mut certs: loader::CertCache, cancel: CancellationToken) {
    let mut tick = tokio::time::interval(ctx.options.poll_interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tick.tick() => {}
        }
        // A short database outage keeps the last snapshot serving; a long one makes the
        // listeners refuse (see `Freshness`). The next tick tries again.
        if let Err(error) = sync_once(&ctx, &mut certs, false).await {
            tracing::warn!(%error, "database poll failed; serving the last snapshot while it is fresh");
            continue;
        }
        if let Err(error) = tasks::promote(&ctx).await {
            tracing::warn!(%error, "publishing new ids failed");
        }
    }
}

/// One background chore of the node.
#[derive(Clone, Copy, Debug)]
enum Chore {
    /// Removals whose deadline passed, expired sessions, rows of nodes that are gone.
    CleanUp,
    /// Delegation checks (DNS and the checker engine; can take a minute per domain).
    Verify,
    /// Certificate orders and renewals (can take minutes per order).
    Certificates,
}

/// Runs `chore` every maintenance interval. Each chore has its own loop, so a slow checker
/// run never delays a certificate renewal, and the other way round.
async fn maintenance_loop(ctx: Arc<NodeContext>, chore: Chore, cancel: CancellationToken) {
    let mut tick = tokio::time::interval(ctx.options.maintenance_interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tick.tick() => {}
        }
        let work = async {
            match chore {
                Chore::CleanUp => tasks::clean_up(&ctx).await,
                Chore::Verify => tasks::verify_due(&ctx).await,
                Chore::Certificates => tasks::order_certificates(&ctx).await,
            }
        };
        tokio::select! {
            _ = cancel.cancelled() => return,
            result = work => if let Err(error) = result {
                tracing::warn!(%error, ?chore, "maintenance failed; retrying on the next round");
            }
        }
        if let Chore::Certificates = chore {
            ctx.certificate_rounds.fetch_add(1, Ordering::Release);
        }
    }
}

/// The zone settings for `zone` and `public_ips`: mail intake on (the `mailto:` report URIs
/// published), the report host's own policy in `testing`.
pub fn zone_settings(
    zone: &str,
    public_ips: Vec<IpAddr>,
    ttl: u32,
) -> Result<ZoneSettings, mtasts_proto::domain::DomainError> {
    Ok(ZoneSettings {
        delegation: mtasts_proto::hosted::delegation::Delegation::new(zone)?,
        public_ips,
        ttl,
        report_mail: true,
        own_policy_mode: mtasts_proto::sts::policy::Mode::Testing,
    })
}

/// The names of the service's own certificate: the report host and its policy host.
pub(crate) fn service_hosts(settings: &ZoneSettings) -> [String; 2] {
    let reports = settings.reports();
    [reports.host().to_owned(), reports.own_policy_host()]
}

/// Time limit of a checker run asked for through the API (whose requests time out at 30 s).
const ON_DEMAND_CHECK_DEADLINE: Duration = Duration::from_secs(20);

/// Verification on demand through this node's DNS client and checker.
pub struct NodeVerifier {
    ctx: Arc<NodeContext>,
}

impl DomainVerifier for NodeVerifier {
    fn verify<'a>(
        &'a self,
        domain: &'a str,
    ) -> futures::future::BoxFuture<'a, Result<Verification, VerifyError>> {
        Box::pin(async move {
            let row = self
                .ctx
                .db
                .domain(domain)
                .await?
                .ok_or_else(|| VerifyError::NotHosted(domain.to_owned()))?;
            // Inside the API's request time limit, unlike the periodic runs.
            Ok(tasks::run_verification(&self.ctx, &row, ON_DEMAND_CHECK_DEADLINE).await?)
        })
    }
}
