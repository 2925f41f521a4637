//! Limits: request size (413), rates (429 with Retry-After), and secrets kept out of logs.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::{Method, StatusCode, header};
use mtasts_host::auth::AuthError;
use mtasts_host::dashboard::password_login;
use mtasts_host::ratelimit::Rate;
use mtasts_host::state::ApiLimits;
use serde_json::json;

use crate::api::harness::{Backend, Harness, Options, run};

const LIMIT: usize = 64 * 1024;

/// A JSON body of exactly `size` bytes (the domain string is padded).
fn body_of(size: usize) -> String {
    let frame = r#"{"domain":"","mode":"testing"}"#;
    let body = format!(
        r#"{{"domain":"{}","mode":"testing"}}"#,
        "a".repeat(size - frame.len())
    );
    assert_eq!(body.len(), size);
    body
}

fn post_raw(h: &Harness, token: &str, body: &str, chunked: bool) -> Vec<u8> {
    let mut raw = format!(
        "POST /api/v1/domains HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/json\r\nConnection: close\r\n",
        h.addr
    );
    if chunked {
        raw.push_str("Transfer-Encoding: chunked\r\n\r\n");
        for chunk in body.as_bytes().chunks(8192) {
            raw.push_str(&format!(
                "{:x}\r\n{}\r\n",
                chunk.len(),
                String::from_utf8_lossy(chunk)
            ));
        }
        raw.push_str("0\r\n\r\n");
    } else {
        raw.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
    }
    raw.into_bytes()
}

/// 64 KiB is accepted (and then judged on its content); one byte more is 413, whether the
/// length is declared or the body is chunked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bodies_above_64_kib_are_413() {
    run(Backend::Sqlite, Options::default(), |h| async move {
        let at_limit = body_of(LIMIT);
        let over = body_of(LIMIT + 1);
        for chunked in [false, true] {
            let status = h.raw(&post_raw(&h, &h.admin, &at_limit, chunked)).await;
            assert_eq!(status, 400, "at the limit, chunked: {chunked}");
            let status = h.raw(&post_raw(&h, &h.admin, &over, chunked)).await;
            assert_eq!(status, 413, "over the limit, chunked: {chunked}");
        }
        let reply = h
            .call(
                Method::POST,
                "/api/v1/domains",
                Some(&h.admin),
                Some(serde_json::from_str(&over).unwrap()),
            )
            .await;
        reply.assert_error(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large");
    })
    .await;
}

fn tight() -> ApiLimits {
    ApiLimits {
        api: Rate {
            burst: 3,
            refill_every: Duration::from_secs(60),
        },
        auth_failures: Rate {
            burst: 2,
            refill_every: Duration::from_secs(60),
        },
        ..ApiLimits::default()
    }
}

/// Each token has its own budget of API calls.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_calls_are_rate_limited_per_token() {
    let options = Options {
        limits: Some(tight()),
        ..Options::default()
    };
    run(Backend::Sqlite, options, |h| async move {
        // Tokens made directly in the database: creating them through the API would spend
        // the admin token's budget.
        let a = h.tenant_quietly().await;
        for _ in 0..3 {
            assert_eq!(h.get("/api/v1/me", &a.0).await.status, StatusCode::OK);
        }
        let refused = h.get("/api/v1/me", &a.0).await;
        refused.assert_error(StatusCode::TOO_MANY_REQUESTS, "rate_limited");
        let retry: u64 = refused.headers[header::RETRY_AFTER]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!((1..=60).contains(&retry), "{retry}");
        assert_eq!(h.get("/api/v1/me", &a.1).await.status, StatusCode::OK);
    })
    .await;
}

/// Failed authentications use up the client's budget; then its invalid and missing
/// credentials are answered 429, but a valid token still works.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_authentication_is_rate_limited_per_client() {
    let options = Options {
        limits: Some(tight()),
        ..Options::default()
    };
    run(Backend::Sqlite, options, |h| async move {
        let (wrong, _) = mtasts_host::auth::new_token();
        for _ in 0..2 {
            h.get("/api/v1/me", &wrong)
                .await
                .assert_error(StatusCode::UNAUTHORIZED, "unauthorized");
        }
        let refused = h.get("/api/v1/me", &wrong).await;
        refused.assert_error(StatusCode::TOO_MANY_REQUESTS, "rate_limited");
        assert!(refused.headers.contains_key(header::RETRY_AFTER));
        let (other_wrong, _) = mtasts_host::auth::new_token();
        h.get("/api/v1/me", &other_wrong)
            .await
            .assert_error(StatusCode::TOO_MANY_REQUESTS, "rate_limited");
        let malformed = h
            .call(Method::GET, "/api/v1/me", Some("not-a-token"), None)
            .await;
        malformed.assert_error(StatusCode::TOO_MANY_REQUESTS, "rate_limited");
        let anonymous = h.call(Method::GET, "/api/v1/domains", None, None).await;
        anonymous.assert_error(StatusCode::TOO_MANY_REQUESTS, "rate_limited");
        assert!(anonymous.headers.contains_key(header::RETRY_AFTER));
        // A valid token from the same client is let through, again and again.
        for _ in 0..2 {
            let me = h.get("/api/v1/me", &h.admin).await;
            assert_eq!(me.status, StatusCode::OK, "{}", me.json);
        }
        // ... and does not refill the budget for the invalid ones.
        h.get("/api/v1/me", &wrong)
            .await
            .assert_error(StatusCode::TOO_MANY_REQUESTS, "rate_limited");
        // The OpenAPI document needs no authentication and stays reachable.
        let doc = h
            .call(Method::GET, "/api/v1/openapi.json", None, None)
            .await;
        assert_eq!(doc.status, StatusCode::OK);
    })
    .await;
}

impl Harness {
    /// An owner and a read-only token created directly in the database (no API calls, so
    /// no rate budget is spent).
    async fn tenant_quietly(&self) -> (String, String) {
        let tenant = self
            .state
            .db
            .create_tenant(&self.tenant_name("quiet"))
            .await
            .unwrap();
        let mut tokens = Vec::new();
        for role in [
            mtasts_store::host::Role::Owner,
            mtasts_store::host::Role::ReadOnly,
        ] {
            let (plain, hash) = mtasts_host::auth::new_token();
            self.state
                .db
                .create_token(mtasts_store::host::NewToken {
                    tenant_id: Some(tenant.id),
                    role,
                    label: role.as_str().to_owned(),
                    token_hash: hash,
                    expires_at: None,
                })
                .await
                .unwrap();
            tokens.push(plain);
        }
        (tokens.remove(0), tokens.remove(0))
    }
}

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Everything logged at every level while tokens and a password are used, created and
/// refused: none of them appears.
#[tokio::test(flavor = "current_thread")]
async fn tokens_and_passwords_are_never_logged() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    // The server runs on this thread (current-thread runtime), so a thread-local default
    // sees all of it.
    let _guard = tracing::subscriber::set_default(subscriber);
    // With a single dispatcher registered, tracing-core decides a callsite's interest from
    // the default of whichever thread hits it first; a parallel test hitting a callsite
    // first would disable it here for good. A second (silent) dispatcher makes it ask all
    // of them instead.
    let _second = tracing::Dispatch::new(tracing::subscriber::NoSubscriber::default());
    let password = "a very secret password 12345";
    let mut secrets = Vec::new();
    run(Backend::Sqlite, Options::default(), |h| async move {
        secrets.push(h.admin.clone());
        let a = h.tenant("logged").await;
        secrets.push(a.owner.clone());
        secrets.push(a.readonly.clone());
        let reply = h
            .post(
                &format!("/api/v1/tenants/{}/users", a.name),
                &h.admin,
                json!({"email": "user@example.com", "password": password, "role": "owner"}),
            )
            .await;
        assert_eq!(reply.status, StatusCode::CREATED);
        h.hosted(&a.owner, &h.domain("logged"), "testing").await;
        let (wrong, _) = mtasts_host::auth::new_token();
        secrets.push(wrong.clone());
        h.get("/api/v1/me", &wrong).await;
        h.call(Method::GET, "/api/v1/me", Some("not-even-a-token"), None)
            .await;
        secrets.push("not-even-a-token".to_owned());
        let log = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
        assert!(log.contains("API request"), "nothing captured: {log}");
        assert!(log.contains("API authentication failed"), "{log}");
        for secret in secrets.iter().map(String::as_str).chain([password]) {
            assert!(!log.contains(secret), "{secret} was logged");
            // Not even the random part alone.
            if let Some(random) = secret.strip_prefix(mtasts_host::auth::TOKEN_PREFIX) {
                assert!(!log.contains(random), "{random} was logged");
            }
        }
    })
    .await;
}

/// Dashboard logins are limited per client address, only failures counting; other
/// addresses are not affected.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logins_are_rate_limited_per_client() {
    let limits = ApiLimits {
        login: Rate {
            burst: 2,
            refill_every: Duration::from_secs(60),
        },
        ..ApiLimits::default()
    };
    let options = Options {
        limits: Some(limits),
        ..Options::default()
    };
    run(Backend::Sqlite, options, |h| async move {
        let a = h.tenant("login").await;
        let password = "correct horse battery staple";
        let reply = h
            .post(
                &format!("/api/v1/tenants/{}/users", a.name),
                &h.admin,
                json!({"email": "login@example.com", "password": password, "role": "owner"}),
            )
            .await;
        assert_eq!(reply.status, StatusCode::CREATED);
        let client: std::net::SocketAddr = "192.0.2.10:40000".parse().unwrap();
        let other: std::net::SocketAddr = "192.0.2.11:40000".parse().unwrap();
        let login = |peer, pw: &'static str| {
            let state = h.state.clone();
            async move { password_login(&state, Some(peer), "login@example.com", pw).await }
        };
        assert_eq!(
            login(client, "wrong password!").await.unwrap_err(),
            AuthError::Invalid
        );
        // Correct logins use nothing, however many.
        for _ in 0..3 {
            assert!(login(client, password).await.is_ok());
        }
        assert_eq!(
            login(client, "wrong password!").await.unwrap_err(),
            AuthError::Invalid
        );
        assert!(matches!(
            login(client, password).await,
            Err(AuthError::RateLimited(_))
        ));
        assert!(login(other, password).await.is_ok());
    })
    .await;
}

/// A login address the database refuses to look up (control characters, too long) is wrong
/// credentials (401), not an outage (503).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logins_with_unusable_addresses_are_wrong_credentials() {
    run(Backend::Sqlite, Options::default(), |h| async move {
        let client: std::net::SocketAddr = "192.0.2.20:40000".parse().unwrap();
        for email in [
            "a\u{1}b@example.com".to_owned(),
            format!("{}@example.com", "x".repeat(300)),
        ] {
            assert_eq!(
                password_login(&h.state, Some(client), &email, "some password 123")
                    .await
                    .unwrap_err(),
                AuthError::Invalid,
                "{email:?}"
            );
        }
    })
    .await;
}
