//! Who may do what: 401 without valid credentials, 403 for read-only writes, 404 for
//! everything of another tenant and for tenant administration by non-administrators.

use std::num::NonZeroU32;
use std::sync::Arc;

use axum::http::{Method, Request, StatusCode, header};
use bytes::Bytes;
use http_body_util::Full;
use mtasts_host::auth::{self, AuthError};
use mtasts_host::service;
use mtasts_host::state::AppState;
use mtasts_net::dns::{DnsConfig, HickoryDns};
use mtasts_proto::hosted::delegation::Delegation;
use mtasts_store::host::{HostDb, Role};
use serde_json::{Value, json};

use crate::api::harness::{Backend, Harness, Options, TEST_ITERATIONS, ZONE, run};

crate::api::on_both_databases!(
    tenants_are_isolated_on_every_endpoint,
    tenant_administration
);

/// Every endpoint that takes a domain, with a body where it needs one.
fn domain_endpoints(domain: &str) -> Vec<(Method, String, Option<Value>)> {
    let path = format!("/api/v1/domains/{domain}");
    vec![
        (Method::GET, path.clone(), None),
        (
            Method::PATCH,
            path.clone(),
            Some(json!({"mode": "enforce"})),
        ),
        (Method::DELETE, path.clone(), None),
        (Method::GET, format!("{path}/versions"), None),
        (Method::POST, format!("{path}/verify"), None),
    ]
}

/// Table-driven: another tenant's owner and read-only tokens get exactly the answer a
/// domain that does not exist gets, on every domain endpoint, and nothing changes.
async fn tenants_are_isolated_on_every_endpoint(h: Harness) {
    let a = h.tenant("a").await;
    let b = h.tenant("b").await;
    let domain = h.domain("private");
    let before = h.hosted(&a.owner, &domain, "testing").await;
    let absent = h.domain("absent");

    for token in [&b.owner, &b.readonly] {
        for spelling in [domain.clone(), domain.to_uppercase(), format!("{domain}.")] {
            for ((method, path, body), (_, absent_path, _)) in domain_endpoints(&spelling)
                .into_iter()
                .zip(domain_endpoints(&absent))
            {
                let theirs = h
                    .call(method.clone(), &path, Some(token), body.clone())
                    .await;
                let nothing = h
                    .call(method.clone(), &absent_path, Some(token), body)
                    .await;
                theirs.assert_error(StatusCode::NOT_FOUND, "not_found");
                assert_eq!(theirs.json, nothing.json, "{method} {path}");
            }
        }
        let list = h.get("/api/v1/domains", token).await;
        assert_eq!(list.status, StatusCode::OK);
        assert_eq!(list.json["domains"], json!([]));
        // Naming the other tenant when creating is refused without saying whether it exists.
        let reply = h
            .post(
                "/api/v1/domains",
                token,
                json!({"domain": h.domain("grab"), "tenant": a.name, "mode": "testing",
                       "mx": ["mx.example.net"]}),
            )
            .await;
        if token == &b.owner {
            reply.assert_invalid("tenant");
        } else {
            reply.assert_error(StatusCode::FORBIDDEN, "forbidden");
        }
    }
    // Untouched.
    assert_eq!(
        h.get(&format!("/api/v1/domains/{domain}"), &a.owner)
            .await
            .json,
        before
    );
    let history = h
        .get(&format!("/api/v1/domains/{domain}/versions"), &a.owner)
        .await;
    assert_eq!(history.json["versions"].as_array().unwrap().len(), 1);

    // Tenant administration does not exist for owners and read-only tokens.
    for token in [&a.owner, &a.readonly, &b.owner] {
        let admin_endpoints = [
            (Method::GET, "/api/v1/tenants".to_owned(), None),
            (
                Method::POST,
                "/api/v1/tenants".to_owned(),
                Some(json!({"name": h.tenant_name("sneaky")})),
            ),
            (
                Method::POST,
                format!("/api/v1/tenants/{}/tokens", a.name),
                Some(json!({"role": "owner", "label": "mine now"})),
            ),
            (
                Method::POST,
                format!("/api/v1/tenants/{}/users", a.name),
                Some(
                    json!({"email": "x@example.com", "password": "long enough password",
                            "role": "owner"}),
                ),
            ),
        ];
        for (method, path, body) in admin_endpoints {
            let reply = h.call(method.clone(), &path, Some(token), body).await;
            reply.assert_error(StatusCode::NOT_FOUND, "not_found");
            assert_eq!(
                reply.json,
                h.get("/api/v1/nowhere", token).await.json,
                "{method} {path}"
            );
        }
    }
    let tenants = h.get("/api/v1/tenants", &h.admin).await.json;
    assert!(
        !tenants["tenants"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["name"] == h.tenant_name("sneaky").as_str())
    );
    h.cleanup().await;
}

/// Read-only tokens read everything of their tenant and change nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_only_tokens_cannot_write() {
    run(Backend::Sqlite, Options::default(), |h| async move {
        let a = h.tenant("a").await;
        let domain = h.domain("ro");
        h.hosted(&a.owner, &domain, "testing").await;
        let path = format!("/api/v1/domains/{domain}");
        for (method, path, body) in [
            (
                Method::POST,
                "/api/v1/domains".to_owned(),
                Some(
                    json!({"domain": h.domain("ro2"), "mode": "testing", "mx": ["mx.example.net"]}),
                ),
            ),
            (
                Method::PATCH,
                path.clone(),
                Some(json!({"mode": "enforce"})),
            ),
            (Method::DELETE, path.clone(), None),
        ] {
            let reply = h.call(method.clone(), &path, Some(&a.readonly), body).await;
            reply.assert_error(StatusCode::FORBIDDEN, "forbidden");
        }
        for path in [
            path.clone(),
            format!("{path}/versions"),
            "/api/v1/domains".to_owned(),
            "/api/v1/me".to_owned(),
        ] {
            assert_eq!(
                h.get(&path, &a.readonly).await.status,
                StatusCode::OK,
                "{path}"
            );
        }
        let detail = h.get(&path, &a.owner).await.json;
        assert_eq!(
            (detail["version"].clone(), detail["state"].clone()),
            (json!(1), json!("active"))
        );
        let me = h.get("/api/v1/me", &a.readonly).await.json;
        assert_eq!(me, json!({"role": "readonly", "tenant": a.name}));
    })
    .await;
}

/// 401 without a token, with a malformed one, an unknown one, or another scheme.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_credentials_are_401() {
    run(Backend::Sqlite, Options::default(), |h| async move {
        let (unknown, _) = auth::new_token();
        let cases: Vec<(&str, Option<String>)> = vec![
            ("none", None),
            ("empty", Some(String::new())),
            ("garbage", Some("Bearer garbage".to_owned())),
            ("unknown", Some(format!("Bearer {unknown}"))),
            ("basic", Some(format!("Basic {}", h.admin))),
            ("bare", Some(h.admin.clone())),
            (
                "truncated",
                Some(format!("Bearer {}", &h.admin[..h.admin.len() - 1])),
            ),
        ];
        for (what, authorization) in cases {
            let mut request = Request::builder().uri("/api/v1/domains");
            if let Some(value) = authorization {
                request = request.header(header::AUTHORIZATION, value);
            }
            let reply = h.send(request.body(Full::new(Bytes::new())).unwrap()).await;
            reply.assert_error(StatusCode::UNAUTHORIZED, "unauthorized");
            let challenge = reply.headers[header::WWW_AUTHENTICATE].to_str().unwrap();
            assert!(challenge.starts_with("Bearer"), "{what}: {challenge}");
        }
        // The scheme is case-insensitive.
        let request = Request::builder()
            .uri("/api/v1/me")
            .header(header::AUTHORIZATION, format!("bearer {}", h.admin))
            .body(Full::new(Bytes::new()))
            .unwrap();
        let reply = h.send(request).await;
        assert_eq!(reply.json, json!({"role": "admin", "tenant": null}));
    })
    .await;
}

/// Tenants, tokens and users through the API; passwords are stored hashed and check out.
async fn tenant_administration(h: Harness) {
    let name = h.tenant_name("admin");
    let reply = h
        .post("/api/v1/tenants", &h.admin, json!({"name": name}))
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.json);
    assert_eq!(reply.json["name"], name.as_str());
    let again = h
        .post("/api/v1/tenants", &h.admin, json!({"name": name}))
        .await;
    again.assert_error(StatusCode::CONFLICT, "conflict");
    let tenants = h.get("/api/v1/tenants", &h.admin).await.json;
    assert!(
        tenants["tenants"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["name"] == name.as_str())
    );

    let reply = h
        .post(
            &format!("/api/v1/tenants/{name}/tokens"),
            &h.admin,
            json!({"role": "owner", "label": "deploy bot"}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.json);
    assert_eq!(reply.json["role"], "owner");
    assert_eq!(reply.json["label"], "deploy bot");
    assert_eq!(reply.json["tenant"], name.as_str());
    let token = reply.json["token"].as_str().unwrap().to_owned();
    assert!(auth::is_token_shaped(&token));
    let row = h
        .state
        .db
        .token_by_hash(&auth::hash_token(&token))
        .await
        .unwrap()
        .expect("stored by its hash");
    assert_eq!(row.role, Role::Owner);
    assert_ne!(row.token_hash, token);
    let me = h.get("/api/v1/me", &token).await.json;
    assert_eq!(me, json!({"role": "owner", "tenant": name}));

    let email = format!("Owner@{}.Example", h.tag);
    let password = "correct horse battery staple";
    let reply = h
        .post(
            &format!("/api/v1/tenants/{name}/users"),
            &h.admin,
            json!({"email": email, "password": password, "role": "readonly"}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.json);
    assert_eq!(reply.json["email"], email.to_lowercase());
    assert_eq!(reply.json["role"], "readonly");
    assert!(reply.json.get("password").is_none());
    let again = h
        .post(
            &format!("/api/v1/tenants/{name}/users"),
            &h.admin,
            json!({"email": email.to_lowercase(), "password": password, "role": "owner"}),
        )
        .await;
    again.assert_error(StatusCode::CONFLICT, "conflict");

    let user = h
        .state
        .db
        .user_by_email(&email.to_lowercase())
        .await
        .unwrap()
        .unwrap();
    assert!(
        user.password_hash
            .starts_with(&format!("pbkdf2-sha256${TEST_ITERATIONS}$")),
        "{}",
        user.password_hash
    );
    assert!(!user.password_hash.contains(password));
    let iterations = NonZeroU32::new(TEST_ITERATIONS).unwrap();
    let (found, principal) = auth::authenticate_password(&h.state.db, &email, password, iterations)
        .await
        .unwrap();
    assert_eq!(found.id, user.id);
    assert_eq!(principal.role, Role::ReadOnly);
    assert_eq!(principal.user_id, Some(user.id));
    for (who, pw) in [
        (email.as_str(), "correct horse battery stapler"),
        ("nobody@example.com", password),
    ] {
        assert_eq!(
            auth::authenticate_password(&h.state.db, who, pw, iterations)
                .await
                .unwrap_err(),
            AuthError::Invalid
        );
    }
    h.cleanup().await;
}

/// The first start creates one administrator token; later starts create none.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bootstrap_creates_one_admin_token() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite:{}", dir.path().join("boot.db").display());
    let db = HostDb::open(&url).await.unwrap();
    let resolver = HickoryDns::new(&DnsConfig {
        servers: Some(vec!["127.0.0.1:9".parse().unwrap()]),
        ..DnsConfig::default()
    })
    .unwrap();
    let state = AppState::new(db, Delegation::new(ZONE).unwrap(), Arc::new(resolver));
    let token = service::bootstrap_admin_token(&state)
        .await
        .unwrap()
        .expect("the first time");
    assert_eq!(service::bootstrap_admin_token(&state).await.unwrap(), None);
    let principal = auth::authenticate_token(&state.db, &token, 0)
        .await
        .unwrap();
    assert!(principal.is_admin());
    assert_eq!(principal.tenant_id, None);
}
