//! A world for the alert tests: one SQLite serve database (hosting and reports tables), two
//! tenants (`a` hosts `company-y.example`, `b` hosts `other.example`), the RFC 8460 example
//! report stored through the intake, a movable clock, and webhook receivers on loopback.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use mtasts_host::alerts::email::MailSend;
use mtasts_host::alerts::webhook::HttpWebhook;
use mtasts_host::alerts::{AlertConfig, Alerts};
use mtasts_net::dns::{DnsConfig, HickoryDns};
use mtasts_store::host::{HostDb, NewAlertSettings, NewDomain, NewVersion, Tenant};
use mtasts_store::reports::ReportDb;

/// 2016-04-02 12:00 UTC: the day after the RFC example report's day.
pub(crate) const T0: i64 = 1_459_598_400;
/// The hosted domain of the RFC 8460 example report.
pub(crate) const DOMAIN: &str = "company-y.example";
/// Tenant `a`'s webhook secret.
pub(crate) const SECRET: &str = "a shared secret of the tenant";

/// One request a receiver got.
#[derive(Clone, Debug)]
pub(crate) struct Received {
    pub(crate) headers: HeaderMap,
    pub(crate) body: Bytes,
}

#[derive(Clone, Default)]
struct HookState {
    received: Arc<Mutex<Vec<Received>>>,
    /// Statuses to answer, in order; 200 once used up.
    statuses: Arc<Mutex<VecDeque<u16>>>,
}

/// A webhook receiver: axum on 127.0.0.1.
pub(crate) struct Hook {
    pub(crate) addr: SocketAddr,
    state: HookState,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for Hook {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl Hook {
    pub(crate) async fn start() -> Hook {
        let state = HookState::default();
        let app = axum::Router::new()
            .route("/hook", axum::routing::post(receive))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Hook {
            addr,
            state,
            server,
        }
    }

    /// Answers the next requests with `statuses`.
    pub(crate) fn answer(&self, statuses: &[u16]) {
        self.state
            .statuses
            .lock()
            .unwrap()
            .extend(statuses.iter().copied());
    }

    pub(crate) fn received(&self) -> Vec<Received> {
        self.state.received.lock().unwrap().clone()
    }

    pub(crate) fn url(&self) -> String {
        format!("http://{}/hook", self.addr)
    }
}

async fn receive(State(state): State<HookState>, headers: HeaderMap, body: Bytes) -> StatusCode {
    state
        .received
        .lock()
        .unwrap()
        .push(Received { headers, body });
    let status = state.statuses.lock().unwrap().pop_front().unwrap_or(200);
    StatusCode::from_u16(status).unwrap()
}

/// The databases, tenants and clock.
pub(crate) struct World {
    pub(crate) db: HostDb,
    pub(crate) reports: ReportDb,
    pub(crate) a: Tenant,
    pub(crate) b: Tenant,
    pub(crate) clock: Arc<AtomicI64>,
    _dir: tempfile::TempDir,
}

impl World {
    /// The world with the report stored; `None` (skipped) without the shared samples.
    pub(crate) async fn start() -> Option<World> {
        let samples = mtasts_testkit::services::samples_dir()?;
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite:{}", dir.path().join("serve.db").display());
        let db = HostDb::open(&url).await.unwrap();
        let reports = ReportDb::open(&url).await.unwrap();
        let a = db.create_tenant("a").await.unwrap();
        let b = db.create_tenant("b").await.unwrap();
        host(
            &db,
            a.id,
            DOMAIN,
            &["mx1.mail.company-y.example", "mx2.mail.company-y.example"],
        )
        .await;
        host(&db, b.id, "other.example", &["mx.other.example"]).await;
        let bytes = std::fs::read(samples.join("tlsrpt/parsedmarc/rfc8460.json")).unwrap();
        let intake = mtasts_report::intake::Intake::new(reports.clone(), Default::default());
        let outcome = intake.input(&bytes, "https", T0 - 3600).await.unwrap();
        assert_eq!(outcome.new, 1);
        Some(World {
            db,
            reports,
            a,
            b,
            clock: Arc::new(AtomicI64::new(T0)),
            _dir: dir,
        })
    }

    pub(crate) fn advance(&self, seconds: i64) {
        self.clock.fetch_add(seconds, Ordering::SeqCst);
    }

    /// The alert machinery over this world's databases and clock.
    pub(crate) fn alerts(&self, allow_private: bool, mail: Option<Arc<dyn MailSend>>) -> Alerts {
        // Targets in these tests are addresses: nothing is looked up.
        let dns = HickoryDns::new(&DnsConfig {
            servers: Some(vec!["127.0.0.1:9".parse().unwrap()]),
            timeout: Duration::from_secs(1),
        })
        .unwrap();
        self.alerts_with_dns(Arc::new(dns), allow_private, mail)
    }

    /// The alert machinery resolving webhook hosts with `dns`.
    pub(crate) fn alerts_with_dns(
        &self,
        dns: Arc<dyn mtasts_net::dns::DnsLookup>,
        allow_private: bool,
        mail: Option<Arc<dyn MailSend>>,
    ) -> Alerts {
        let roots = Arc::new(rustls::RootCertStore::empty());
        let clock = self.clock.clone();
        Alerts::new(
            self.db.clone(),
            self.reports.clone(),
            AlertConfig {
                from: "mtasts@provider.test".into(),
                interval: Duration::from_secs(300),
            },
            Arc::new(HttpWebhook::new(dns, roots, allow_private)),
            mail,
        )
        .with_clock(Arc::new(move || clock.load(Ordering::SeqCst)))
    }

    /// Sets tenant `tenant_id`'s webhook to `url` with [`SECRET`] and e-mail to `email_to`.
    pub(crate) async fn settings(&self, tenant_id: i64, url: Option<String>, email_to: &[&str]) {
        self.db
            .put_alert_settings(
                tenant_id,
                &NewAlertSettings {
                    webhook_url: url,
                    webhook_secret: Some(SECRET.into()),
                    email_to: email_to.iter().map(|s| s.to_string()).collect(),
                    failure_permille: 50,
                    min_sessions: 20,
                },
                T0,
            )
            .await
            .unwrap();
    }
}

/// Hosts `name` for `tenant_id` in `testing` with `mx`, its id published.
async fn host(db: &HostDb, tenant_id: i64, name: &str, mx: &[&str]) {
    let body = format!(
        "version: STSv1\r\nmode: testing\r\n{}max_age: 86400\r\n",
        mx.iter()
            .map(|m| format!("mx: {m}\r\n"))
            .collect::<String>()
    );
    let (domain, version) = db
        .create_domain(
            NewDomain {
                tenant_id,
                name: name.into(),
                rua: None,
                reports_to_service: true,
            },
            NewVersion {
                policy_id: "20160401".into(),
                mode: "testing".into(),
                mx: mx.iter().map(|m| m.to_string()).collect(),
                max_age: 86_400,
                body,
                now: T0 - 86_400 * 30,
            },
        )
        .await
        .unwrap();
    db.publish_version(domain.id, version.version, T0 - 86_400 * 30)
        .await
        .unwrap();
}
