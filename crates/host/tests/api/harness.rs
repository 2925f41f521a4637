//! A real API server over a real database, reached over real HTTP.
//!
//! SQLite lives in a temporary directory; PostgreSQL is the local test database
//! (`MTASTS_TEST_POSTGRES_URL`, else `postgres://postgres@127.0.0.1:5432/test`), skipped with
//! a message when unreachable unless `MTASTS_REQUIRE_SERVICES=1`. The PostgreSQL database is
//! shared, so every name a test creates is unique to the run. DNS is a testkit zone served by
//! its DNS server; the API listens on an address of the same random 127.X.Y.0/24 block.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use axum::http::{HeaderMap, Method, Request, StatusCode, header};
use bytes::Bytes;
use http_body_util::Full;
use mtasts_host::api;
use mtasts_host::state::{ApiLimits, AppState, DomainVerifier};
use mtasts_proto::hosted::delegation::Delegation;
use mtasts_store::host::HostDb;
use mtasts_testkit::TestNet;
use mtasts_testkit::services::{self, Service, unique};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::{self, app, http};

/// The service zone every test uses.
pub(crate) const ZONE: &str = "mta-sts.provider.test";

/// The clock's start: 2027-01-15T08:00:00Z.
pub(crate) const T0: i64 = 1_800_000_000;

/// PBKDF2 iterations for tests: the format and the check are the same, only cheaper.
pub(crate) const TEST_ITERATIONS: u32 = 1_000;

/// Which database.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Backend {
    Sqlite,
    Postgres,
}

/// What the test can change about the server.
#[derive(Default)]
pub(crate) struct Options {
    pub(crate) limits: Option<ApiLimits>,
    pub(crate) verifier: Option<Arc<dyn DomainVerifier>>,
}

/// One running API.
pub(crate) struct Harness {
    pub(crate) backend: Backend,
    pub(crate) addr: SocketAddr,
    pub(crate) state: AppState,
    pub(crate) net: TestNet,
    pub(crate) clock: Arc<AtomicI64>,
    /// An administrator token.
    pub(crate) admin: String,
    /// Distinguishes this test's names from every other test's.
    pub(crate) tag: String,
    /// The database's URL, for a second node on the same database.
    pub(crate) db_url: String,
    _dir: Option<tempfile::TempDir>,
    /// Stops serving when the harness is dropped.
    _server: app::Served,
}

/// The answer to one request.
#[derive(Debug)]
pub(crate) struct Reply {
    pub(crate) status: StatusCode,
    pub(crate) headers: HeaderMap,
    pub(crate) json: Value,
}

impl Reply {
    /// Asserts a 400 naming `field`, and returns the rule.
    #[track_caller]
    pub(crate) fn assert_invalid(&self, field: &str) -> String {
        assert_eq!(self.status, StatusCode::BAD_REQUEST, "{}", self.json);
        assert_eq!(self.json["error"]["code"], "invalid", "{}", self.json);
        assert_eq!(self.json["error"]["field"], field, "{}", self.json);
        let rule = self.json["error"]["rule"].as_str().unwrap_or_default();
        assert!(!rule.is_empty(), "no rule: {}", self.json);
        assert!(
            self.json["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty()),
            "{}",
            self.json
        );
        rule.to_owned()
    }

    /// Asserts the status and an error code.
    #[track_caller]
    pub(crate) fn assert_error(&self, status: StatusCode, code: &str) {
        assert_eq!(self.status, status, "{}", self.json);
        assert_eq!(self.json["error"]["code"], code, "{}", self.json);
    }
}

/// Runs `case` against a fresh server on `backend`; a PostgreSQL test is skipped (with a
/// message) when the server is unreachable.
pub(crate) async fn run<F, Fut>(backend: Backend, options: Options, case: F)
where
    F: FnOnce(Harness) -> Fut,
    Fut: Future<Output = ()>,
{
    if let Some(harness) = Harness::start(backend, options).await {
        case(harness).await;
    }
}

impl Harness {
    /// Starts a server; `None` when PostgreSQL is wanted but unreachable.
    pub(crate) async fn start(backend: Backend, options: Options) -> Option<Harness> {
        let (db, dir, db_url) = match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().unwrap();
                let url = format!("sqlite:{}", dir.path().join("host.db").display());
                (HostDb::open(&url).await.unwrap(), Some(dir), url)
            }
            Backend::Postgres => match HostDb::open(&services::postgres_url()).await {
                Ok(db) => (db, None, services::postgres_url()),
                Err(e) => {
                    services::skip(Service::Postgres, &e);
                    return None;
                }
            },
        };
        let net = TestNet::start().await;
        let resolver = crate::support::dns::resolver(&net, Duration::from_secs(3));
        let clock = Arc::new(AtomicI64::new(T0));
        let now = clock.clone();
        let mut limits = options.limits.unwrap_or_default();
        limits.password_iterations = std::num::NonZeroU32::new(TEST_ITERATIONS).unwrap();
        let mut state = AppState::new(db, Delegation::new(ZONE).unwrap(), Arc::new(resolver))
            .with_limits(limits)
            .with_clock(Arc::new(move || now.load(Ordering::SeqCst)));
        if let Some(verifier) = options.verifier {
            state = state.with_verifier(verifier);
        }
        // The reports live in the serve database, as `mtasts serve` opens them.
        let reports = mtasts_store::reports::ReportDb::open(&db_url)
            .await
            .unwrap();
        state = state.with_reports(reports);
        let admin = app::admin_token(&state.db, "test admin").await;
        let server = app::serve(&net, api::router(state.clone())).await;
        let addr = server.addr;
        Some(Harness {
            backend,
            addr,
            state,
            net,
            clock,
            admin,
            tag: unique("t"),
            db_url,
            _dir: dir,
            _server: server,
        })
    }

    /// A domain name unique to this test.
    pub(crate) fn domain(&self, label: &str) -> String {
        format!("{label}.{}.example", self.tag)
    }

    /// A tenant name unique to this test.
    pub(crate) fn tenant_name(&self, label: &str) -> String {
        format!("{label}-{}", self.tag)
    }

    /// Moves the clock.
    pub(crate) fn advance(&self, seconds: i64) {
        self.clock.fetch_add(seconds, Ordering::SeqCst);
    }

    /// A JSON request.
    pub(crate) async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Reply {
        self.send(http::json_request(method, path, token, body))
            .await
    }

    /// Any request.
    pub(crate) async fn send(&self, mut request: Request<Full<Bytes>>) -> Reply {
        request
            .headers_mut()
            .insert(header::HOST, self.addr.to_string().parse().unwrap());
        let http::Response {
            status,
            headers,
            body,
        } = http::send(self.addr, request).await;
        let json = if body.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&body).unwrap_or_else(|e| {
                panic!(
                    "{status}: not JSON ({e}): {}",
                    String::from_utf8_lossy(&body)
                )
            })
        };
        Reply {
            status,
            headers,
            json,
        }
    }

    /// Writes `raw` (a whole HTTP/1.1 request) on a fresh connection and returns the status
    /// line's code, for framings the client does not produce on its own.
    pub(crate) async fn raw(&self, raw: &[u8]) -> u16 {
        let mut stream = TcpStream::connect(self.addr).await.unwrap();
        stream.write_all(raw).await.unwrap();
        let mut head = Vec::new();
        let mut buf = [0u8; 1024];
        while !head.windows(2).any(|w| w == b"\r\n") {
            let n = stream.read(&mut buf).await.unwrap();
            assert!(n > 0, "connection closed without an answer");
            head.extend_from_slice(&buf[..n]);
        }
        let line = String::from_utf8_lossy(&head);
        line.split(' ').nth(1).unwrap().parse().unwrap()
    }

    pub(crate) async fn get(&self, path: &str, token: &str) -> Reply {
        self.call(Method::GET, path, Some(token), None).await
    }

    pub(crate) async fn post(&self, path: &str, token: &str, body: Value) -> Reply {
        self.call(Method::POST, path, Some(token), Some(body)).await
    }

    pub(crate) async fn patch(&self, path: &str, token: &str, body: Value) -> Reply {
        self.call(Method::PATCH, path, Some(token), Some(body))
            .await
    }

    pub(crate) async fn delete(&self, path: &str, token: &str) -> Reply {
        self.call(Method::DELETE, path, Some(token), None).await
    }

    /// Every domain `token` may see, following `next_cursor` through the pages of
    /// `GET /api/v1/domains` (the shared PostgreSQL database may hold more than one page).
    pub(crate) async fn all_domains(&self, token: &str) -> Vec<Value> {
        let mut all = Vec::new();
        let mut path = "/api/v1/domains?limit=500".to_owned();
        loop {
            let reply = self.get(&path, token).await;
            assert_eq!(reply.status, StatusCode::OK, "{}", reply.json);
            all.extend(reply.json["domains"].as_array().unwrap().iter().cloned());
            match reply.json["next_cursor"].as_str() {
                Some(next) => path = format!("/api/v1/domains?limit=500&cursor={next}"),
                None => return all,
            }
        }
    }

    /// Creates a tenant with an owner and a read-only token (through the API).
    pub(crate) async fn tenant(&self, label: &str) -> TenantTokens {
        let name = self.tenant_name(label);
        support::api::create_tenant(self.addr, &self.admin, &name).await;
        let owner =
            support::api::create_token(self.addr, &self.admin, &name, "owner", "owner token").await;
        let readonly =
            support::api::create_token(self.addr, &self.admin, &name, "readonly", "readonly token")
                .await;
        let id = self
            .state
            .db
            .tenant_by_name(&name)
            .await
            .unwrap()
            .expect("the tenant was just created")
            .id;
        TenantTokens {
            name,
            id,
            owner,
            readonly,
        }
    }

    /// Creates a domain as `token` with explicit mx and returns the detail.
    pub(crate) async fn hosted(&self, token: &str, domain: &str, mode: &str) -> Value {
        let reply = self
            .post(
                "/api/v1/domains",
                token,
                serde_json::json!({
                    "domain": domain,
                    "mode": mode,
                    "mx": [format!("mx1.{domain}"), format!("*.mx.{domain}")],
                    "max_age": 86400,
                }),
            )
            .await;
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.json);
        reply.json
    }

    /// Deletes what this test hosted (the PostgreSQL database is shared between runs).
    pub(crate) async fn cleanup(&self) {
        if self.backend != Backend::Postgres {
            return;
        }
        for domain in self.state.db.list_domains(None).await.unwrap() {
            if domain.name.contains(&self.tag) {
                self.state.db.delete_domain(domain.id).await.unwrap();
            }
        }
    }
}

/// A tenant and its two tokens.
pub(crate) struct TenantTokens {
    pub(crate) name: String,
    /// The database id: the TXT targets of its domains carry the label `t<id>`.
    pub(crate) id: i64,
    pub(crate) owner: String,
    pub(crate) readonly: String,
}
