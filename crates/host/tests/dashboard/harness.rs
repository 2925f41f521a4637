//! A real dashboard over a real SQLite database, on a random 127.X.Y.Z address, with DNS from
//! a testkit zone (for the MX lookup when a domain is added without mx).

use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use axum::http::{HeaderMap, Method, Request, StatusCode, header};
use bytes::Bytes;
use http_body_util::Full;
use mtasts_host::auth::hash_password;
use mtasts_host::client_addr::TrustedProxies;
use mtasts_host::dashboard;
use mtasts_host::dashboard::DashboardConfig;
use mtasts_host::state::{ApiLimits, AppState, Clock};
use mtasts_proto::hosted::delegation::Delegation;
use mtasts_store::host::{HostDb, NewUser, Role};
use mtasts_store::reports::ReportDb;
use mtasts_testkit::TestNet;

use crate::support::{app, http};

/// The service zone.
pub(crate) const ZONE: &str = "mta-sts.provider.test";
/// Every test user's password.
pub(crate) const PASSWORD: &str = "correct horse battery staple";

/// One tenant with an owner account.
pub(crate) struct TestTenant {
    pub(crate) id: i64,
    pub(crate) owner_email: String,
}

/// A running dashboard.
pub(crate) struct Harness {
    pub(crate) addr: SocketAddr,
    pub(crate) state: AppState,
    pub(crate) net: TestNet,
    /// An administrator API token (the first-start administrator has only this).
    pub(crate) admin_token: String,
    pub(crate) alpha: TestTenant,
    pub(crate) beta: TestTenant,
    /// The database's URL (a second node opens it too).
    pub(crate) db_url: String,
    _dir: tempfile::TempDir,
    /// Stops serving when the harness is dropped.
    _server: app::Served,
}

/// The answer to one request.
#[derive(Debug)]
pub(crate) struct Reply {
    pub(crate) status: StatusCode,
    pub(crate) headers: HeaderMap,
    pub(crate) body: String,
}

impl Reply {
    /// The value of cookie `name` set by this reply, with its attributes.
    pub(crate) fn set_cookie(&self, name: &str) -> Option<String> {
        self.headers
            .get_all(header::SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find(|v| v.starts_with(&format!("{name}=")))
            .map(str::to_owned)
    }

    /// The value of the first hidden `csrf` field.
    pub(crate) fn csrf(&self) -> String {
        let marker = r#"name="csrf" value=""#;
        let start = self.body.find(marker).expect("a csrf field") + marker.len();
        let end = self.body[start..].find('"').unwrap();
        self.body[start..start + end].to_owned()
    }

    pub(crate) fn location(&self) -> &str {
        self.headers
            .get(header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }
}

/// A logged-in browser-less client.
#[derive(Clone, Debug)]
pub(crate) struct Session {
    pub(crate) cookie: String,
    pub(crate) csrf: String,
}

/// `application/x-www-form-urlencoded` encoding.
pub(crate) fn form(fields: &[(&str, &str)]) -> String {
    fields
        .iter()
        .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

fn encode(text: &str) -> String {
    let mut out = String::new();
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.*".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// How a harness is set up beyond the defaults.
#[derive(Default)]
pub(crate) struct Options {
    pub(crate) limits: ApiLimits,
    pub(crate) config: DashboardConfig,
    pub(crate) proxies: TrustedProxies,
    pub(crate) clock: Option<Clock>,
}

impl Harness {
    pub(crate) async fn start() -> Harness {
        Harness::start_with(ApiLimits::default()).await
    }

    pub(crate) async fn start_with(limits: ApiLimits) -> Harness {
        Harness::start_options(Options {
            limits,
            ..Options::default()
        })
        .await
    }

    pub(crate) async fn start_options(options: Options) -> Harness {
        let Options {
            mut limits,
            config,
            proxies,
            clock,
        } = options;
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite:{}", dir.path().join("host.db").display());
        let db = HostDb::open(&url).await.unwrap();
        let net = TestNet::start().await;
        let resolver = crate::support::dns::resolver(&net, Duration::from_secs(3));
        // The format and the check are the real ones; only the cost is lowered.
        limits.password_iterations = NonZeroU32::new(1_000).unwrap();
        // The reports live in the same database, as `serve` keeps them.
        let reports = ReportDb::open(&url).await.unwrap();
        let mut state = AppState::new(db, Delegation::new(ZONE).unwrap(), Arc::new(resolver))
            .with_limits(limits)
            .with_trusted_proxies(proxies)
            .with_reports(reports);
        if let Some(clock) = clock {
            state = state.with_clock(clock);
        }
        let admin_token = app::admin_token(&state.db, "bootstrap").await;
        let alpha = tenant(&state, "alpha").await;
        let beta = tenant(&state, "beta").await;
        let server = app::serve(&net, dashboard::router_with(state.clone(), config)).await;
        let addr = server.addr;
        Harness {
            addr,
            state,
            net,
            admin_token,
            alpha,
            beta,
            db_url: url,
            _dir: dir,
            _server: server,
        }
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// One request; `headers` are added as given (a `Host` is always sent).
    pub(crate) async fn send(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<String>,
    ) -> Reply {
        let mut request = Request::builder().method(method).uri(path);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        if body.is_some() {
            request = request.header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
        }
        let request = request
            .body(Full::new(Bytes::from(body.unwrap_or_default())))
            .unwrap();
        let http::Response {
            status,
            headers,
            body,
        } = http::send(self.addr, request).await;
        Reply {
            status,
            headers,
            body: String::from_utf8(body.to_vec()).unwrap(),
        }
    }

    pub(crate) async fn get(&self, path: &str, session: &Session) -> Reply {
        self.send(Method::GET, path, &[("cookie", &session.cookie)], None)
            .await
    }

    /// A form POST with the session's cookie and CSRF token and this host's `Origin`.
    pub(crate) async fn post(
        &self,
        path: &str,
        session: &Session,
        fields: &[(&str, &str)],
    ) -> Reply {
        let mut all = vec![("csrf", session.csrf.as_str())];
        all.extend_from_slice(fields);
        let origin = self.url("");
        self.send(
            Method::POST,
            path,
            &[("cookie", &session.cookie), ("origin", &origin)],
            Some(form(&all)),
        )
        .await
    }

    /// Submits the login form; returns the reply to the POST.
    pub(crate) async fn login_reply(&self, email: &str, password: &str) -> Reply {
        self.login_reply_with(email, password, &[]).await
    }

    /// Submits the login form, both requests with `headers` (e.g. `X-Forwarded-For`).
    pub(crate) async fn login_reply_with(
        &self,
        email: &str,
        password: &str,
        headers: &[(&str, &str)],
    ) -> Reply {
        let page = self.send(Method::GET, "/login", headers, None).await;
        assert_eq!(page.status, StatusCode::OK);
        let login_cookie = page.set_cookie("mtasts_login").expect("a login cookie");
        let login_cookie = login_cookie.split(';').next().unwrap().to_owned();
        let csrf = page.csrf();
        let mut all = vec![("cookie", login_cookie.as_str())];
        all.extend_from_slice(headers);
        self.send(
            Method::POST,
            "/login",
            &all,
            Some(form(&[
                ("csrf", &csrf),
                ("email", email),
                ("password", password),
            ])),
        )
        .await
    }

    /// Logs in and returns the session (cookie and the CSRF token its pages carry).
    pub(crate) async fn login(&self, email: &str, password: &str) -> Session {
        let reply = self.login_reply(email, password).await;
        assert_eq!(reply.status, StatusCode::SEE_OTHER, "{}", reply.body);
        let cookie = reply
            .set_cookie("mtasts_session")
            .expect("a session cookie");
        let cookie = cookie.split(';').next().unwrap().to_owned();
        let mut session = Session {
            cookie,
            csrf: String::new(),
        };
        let home = self.get("/", &session).await;
        assert_eq!(home.status, StatusCode::OK, "{}", home.body);
        session.csrf = home.csrf();
        session
    }
}

async fn tenant(state: &AppState, name: &str) -> TestTenant {
    let tenant = state.db.create_tenant(name).await.unwrap();
    let owner_email = format!("owner@{name}.example");
    state
        .db
        .create_user(NewUser {
            tenant_id: Some(tenant.id),
            email: owner_email.clone(),
            password_hash: hash_password(PASSWORD, NonZeroU32::new(1_000).unwrap()),
            role: Role::Owner,
        })
        .await
        .unwrap();
    TestTenant {
        id: tenant.id,
        owner_email,
    }
}
