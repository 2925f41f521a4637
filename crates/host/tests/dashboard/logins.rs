//! Logins behind a reverse proxy (only failures count, per forwarded client and per
//! account), the server-issued login CSRF token, and sessions that end: idle timeout,
//! lifetime, logout seen by a second node, log out everywhere.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use axum::http::{Method, Request, StatusCode};
use bytes::Bytes;
use http_body_util::Full;
use mtasts_host::client_addr::TrustedProxies;
use mtasts_host::dashboard::{self, DashboardConfig};
use mtasts_host::ratelimit::Rate;
use mtasts_host::state::{ApiLimits, AppState};
use mtasts_proto::hosted::delegation::Delegation;
use mtasts_store::host::HostDb;

use super::harness::{Harness, Options, PASSWORD, Reply, Session, ZONE, form};
use crate::support::{app, http};

fn loopback_proxy() -> TrustedProxies {
    TrustedProxies::new(vec!["127.0.0.0/8".parse().unwrap()])
}

fn behind_proxy(limits: ApiLimits) -> Options {
    Options {
        limits,
        proxies: loopback_proxy(),
        ..Options::default()
    }
}

fn retry_after(reply: &Reply) -> u64 {
    reply
        .headers
        .get("retry-after")
        .expect("a Retry-After header")
        .to_str()
        .unwrap()
        .parse()
        .unwrap()
}

fn assert_limited(reply: &Reply) {
    assert_eq!(
        reply.status,
        StatusCode::TOO_MANY_REQUESTS,
        "{}",
        reply.body
    );
    let seconds = retry_after(reply);
    assert!(seconds >= 1, "{seconds}");
    assert!(
        reply
            .body
            .contains(&format!("Try again in {seconds} seconds")),
        "{}",
        reply.body
    );
    assert!(reply.set_cookie("mtasts_session").is_none());
}

/// Behind a trusted proxy every user arrives from the proxy's address: correct logins must
/// not use up anyone's budget, and one attacker's failures lock only the attacker's
/// forwarded address.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn behind_a_trusted_proxy_only_the_failing_client_is_locked() {
    let h = Harness::start_options(behind_proxy(ApiLimits::default())).await;
    // More correct logins than the burst (10), from one peer and one forwarded client, with
    // different headers (whatever the client wrote on the left).
    for i in 0..12 {
        let client = format!("192.0.2.{i}, 198.51.100.1");
        let reply = h
            .login_reply_with(
                &h.alpha.owner_email,
                PASSWORD,
                &[("x-forwarded-for", &client)],
            )
            .await;
        assert_eq!(
            reply.status,
            StatusCode::SEE_OTHER,
            "login {i}: {}",
            reply.body
        );
    }
    // An attacker (one forwarded address, with a forged left-hand entry) fails ten times on
    // ten accounts, which stay under their own limit.
    let attacker = [("x-forwarded-for", "192.0.2.1, 203.0.113.66")];
    for i in 0..10 {
        let reply = h
            .login_reply_with(&format!("victim{i}@alpha.example"), "guess", &attacker)
            .await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{}", reply.body);
    }
    let locked = h
        .login_reply_with(&h.beta.owner_email, PASSWORD, &attacker)
        .await;
    assert_limited(&locked);
    // The same attacker through `Forwarded`.
    let locked = h
        .login_reply_with(
            &h.beta.owner_email,
            PASSWORD,
            &[("forwarded", "for=203.0.113.66;proto=https")],
        )
        .await;
    assert_limited(&locked);
    // Everyone else, including the address the attacker forged, still logs in.
    for client in ["198.51.100.1", "192.0.2.1"] {
        let reply = h
            .login_reply_with(
                &h.beta.owner_email,
                PASSWORD,
                &[("x-forwarded-for", client)],
            )
            .await;
        assert_eq!(
            reply.status,
            StatusCode::SEE_OTHER,
            "{client}: {}",
            reply.body
        );
    }
}

/// Without `trusted_proxies`, forwarding headers are the client's own words and change
/// nothing: rotating them does not escape the limit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_untrusted_peers_forwarding_headers_are_ignored() {
    let h = Harness::start_with(ApiLimits {
        login: Rate {
            burst: 3,
            refill_every: Duration::from_secs(600),
        },
        ..ApiLimits::default()
    })
    .await;
    for i in 0..3 {
        let forged = format!("203.0.113.{i}");
        let reply = h
            .login_reply_with(
                &format!("nobody{i}@example.com"),
                "guess",
                &[
                    ("x-forwarded-for", &forged),
                    ("forwarded", &format!("for={forged}")),
                ],
            )
            .await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    }
    let locked = h
        .login_reply_with(
            &h.alpha.owner_email,
            PASSWORD,
            &[("x-forwarded-for", "203.0.113.200")],
        )
        .await;
    assert_limited(&locked);
    assert!(retry_after(&locked) > 100, "the 600 s refill");
}

/// Failures against one account lock that account whatever address they come from; other
/// accounts are unaffected.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_logins_are_limited_per_account() {
    let h = Harness::start_options(behind_proxy(ApiLimits::default())).await;
    for i in 0..10 {
        let client = format!("203.0.113.{i}");
        let reply = h
            .login_reply_with(
                // The account key is the normalised address.
                &h.alpha.owner_email.to_uppercase(),
                "guess",
                &[("x-forwarded-for", &client)],
            )
            .await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{}", reply.body);
    }
    let locked = h
        .login_reply_with(
            &h.alpha.owner_email,
            PASSWORD,
            &[("x-forwarded-for", "198.51.100.77")],
        )
        .await;
    assert_limited(&locked);
    // 10 per minute: one more try within about six seconds.
    assert!(retry_after(&locked) <= 6, "{}", retry_after(&locked));
    let other = h
        .login_reply_with(
            &h.beta.owner_email,
            PASSWORD,
            &[("x-forwarded-for", "198.51.100.77")],
        )
        .await;
    assert_eq!(other.status, StatusCode::SEE_OTHER, "{}", other.body);
}

/// A login CSRF value the attacker made up and planted as both cookie and field (the
/// double-submit check alone accepts any equal pair) is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_self_made_login_csrf_pair_is_refused() {
    let h = Harness::start().await;
    for forged in [
        "a".repeat(64),
        // Shaped like ours, signed by nobody.
        format!("{}.{}.{}", "0".repeat(32), i64::MAX, "0".repeat(64)),
    ] {
        let reply = h
            .send(
                Method::POST,
                "/login",
                &[("cookie", &format!("mtasts_login={forged}"))],
                Some(form(&[
                    ("csrf", &forged),
                    ("email", &h.alpha.owner_email),
                    ("password", PASSWORD),
                ])),
            )
            .await;
        assert_eq!(
            reply.status,
            StatusCode::FORBIDDEN,
            "{forged}: {}",
            reply.body
        );
        assert!(reply.set_cookie("mtasts_session").is_none());
    }
    // The form's own token works, and is shaped as documented.
    let page = h.send(Method::GET, "/login", &[], None).await;
    assert_eq!(page.csrf().split('.').count(), 3);
    let reply = h.login_reply(&h.alpha.owner_email, PASSWORD).await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER);
}

/// A session unused longer than `session_idle_timeout` is over; use keeps it alive until
/// `session_lifetime`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_end_when_idle_and_at_their_lifetime() {
    let now = Arc::new(AtomicI64::new(1_900_000_000));
    let clock = {
        let now = now.clone();
        Arc::new(move || now.load(Ordering::SeqCst))
    };
    let h = Harness::start_options(Options {
        config: DashboardConfig {
            session_idle_timeout: 600,
            session_lifetime: 2000,
            ..DashboardConfig::default()
        },
        clock: Some(clock),
        ..Options::default()
    })
    .await;
    let advance = |secs: i64| now.fetch_add(secs, Ordering::SeqCst);
    let session = h.login(&h.alpha.owner_email, PASSWORD).await;
    // The cookie lives as long as the session may.
    let reply = h.login_reply(&h.alpha.owner_email, PASSWORD).await;
    assert!(
        reply
            .set_cookie("mtasts_session")
            .unwrap()
            .contains("Max-Age=2000;")
    );
    // Used every 550 s: alive until the lifetime.
    for _ in 0..3 {
        advance(550);
        let home = h.get("/", &session).await;
        assert_eq!(home.status, StatusCode::OK, "{}", home.location());
    }
    advance(350); // 2000 s after login
    assert_eq!(h.get("/", &session).await.location(), "/login");

    // Idle: 601 s unused is over, and stays over.
    let idle = h.login(&h.alpha.owner_email, PASSWORD).await;
    advance(600);
    assert_eq!(h.get("/", &idle).await.status, StatusCode::OK);
    advance(601);
    assert_eq!(h.get("/", &idle).await.location(), "/login");
    advance(-601);
    assert_eq!(
        h.get("/", &idle).await.location(),
        "/login",
        "an idle session is deleted, not just refused"
    );
}

/// A second node (another `AppState` and router on the same database) sees a session, and
/// sees it end at once when the first node logs it out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logout_ends_the_session_on_every_node() {
    let h = Harness::start().await;
    let db = HostDb::open(&h.db_url).await.unwrap();
    let resolver = crate::support::dns::resolver(&h.net, Duration::from_secs(3));
    let second = AppState::new(db, Delegation::new(ZONE).unwrap(), Arc::new(resolver));
    let node2 = app::serve(&h.net, dashboard::router(second)).await;
    let home_on_node2 = |session: &Session| {
        let request = Request::builder()
            .uri("/")
            .header("cookie", session.cookie.as_str())
            .body(Full::new(Bytes::new()))
            .unwrap();
        http::send(node2.addr, request)
    };
    let session = h.login(&h.alpha.owner_email, PASSWORD).await;
    assert_eq!(home_on_node2(&session).await.status, StatusCode::OK);
    let out = h.post("/logout", &session, &[]).await;
    assert_eq!(out.location(), "/login");
    let after = home_on_node2(&session).await;
    assert_eq!(after.status, StatusCode::SEE_OTHER);
    assert_eq!(after.headers.get("location").unwrap(), "/login");
    assert_eq!(h.get("/", &session).await.location(), "/login");
}

/// "Log out everywhere" ends every session of that user, and nobody else's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_out_everywhere_ends_every_session_of_the_user() {
    let h = Harness::start().await;
    let first = h.login(&h.alpha.owner_email, PASSWORD).await;
    let second = h.login(&h.alpha.owner_email, PASSWORD).await;
    let other = h.login(&h.beta.owner_email, PASSWORD).await;
    let home = h.get("/", &first).await;
    assert!(home.body.contains(r#"action="/logout-all""#));
    assert!(home.body.contains("Log out everywhere"));
    // Without the session's CSRF token: refused, nothing ends.
    let forged = h
        .post(
            "/logout-all",
            &Session {
                csrf: "0".repeat(64),
                ..first.clone()
            },
            &[],
        )
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    assert_eq!(h.get("/", &second).await.status, StatusCode::OK);
    let out = h.post("/logout-all", &first, &[]).await;
    assert_eq!(out.status, StatusCode::SEE_OTHER);
    assert_eq!(out.location(), "/login");
    assert!(
        out.set_cookie("mtasts_session")
            .unwrap()
            .contains("Max-Age=0")
    );
    assert_eq!(h.get("/", &first).await.location(), "/login");
    assert_eq!(h.get("/", &second).await.location(), "/login");
    assert_eq!(h.get("/", &other).await.status, StatusCode::OK);
}

/// The API's per-client limit of failed authentications uses the same client address: behind
/// a trusted proxy one client's bad tokens lock only that client.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_auth_failures_are_counted_per_forwarded_client() {
    let h = Harness::start().await;
    let resolver = crate::support::dns::resolver(&h.net, Duration::from_secs(3));
    let state = AppState::new(
        h.state.db.clone(),
        Delegation::new(ZONE).unwrap(),
        Arc::new(resolver),
    )
    .with_limits(ApiLimits {
        auth_failures: Rate {
            burst: 2,
            refill_every: Duration::from_secs(600),
        },
        ..ApiLimits::default()
    })
    .with_trusted_proxies(loopback_proxy());
    let api = app::serve(&h.net, mtasts_host::api::router(state)).await;
    let call = |client: &'static str| {
        let request = Request::builder()
            .uri("/api/v1/domains")
            .header("authorization", "Bearer not-a-token")
            .header("x-forwarded-for", client)
            .body(Full::new(Bytes::new()))
            .unwrap();
        http::send(api.addr, request)
    };
    for _ in 0..2 {
        assert_eq!(call("203.0.113.66").await.status, StatusCode::UNAUTHORIZED);
    }
    let locked = call("203.0.113.66").await;
    assert_eq!(locked.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(locked.headers.get("retry-after").is_some());
    assert_eq!(call("198.51.100.1").await.status, StatusCode::UNAUTHORIZED);
}
