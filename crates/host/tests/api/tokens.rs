//! API tokens that end (expiry, revocation on every node), the token list per role, and the
//! request-level refusals of issue 10: two `Authorization` headers, repeated JSON member
//! names, and a held domain change lock (409 `busy` with `Retry-After`).

use std::collections::BTreeSet;
use std::sync::Arc;

use axum::http::{Method, Request, StatusCode, header};
use bytes::Bytes;
use http_body_util::Full;
use mtasts_host::api;
use mtasts_host::state::AppState;
use mtasts_proto::hosted::delegation::Delegation;
use mtasts_store::host::HostDb;
use serde_json::{Value, json};

use crate::api::harness::{Harness, T0, ZONE};
use crate::api::on_both_databases;
use crate::support::{self, app};

on_both_databases!(
    tokens_expire_after_their_days,
    tokens_are_listed_by_role_without_secrets,
    revoked_tokens_are_refused_by_every_node,
    two_authorization_headers_are_400,
    repeated_json_member_names_are_400_naming_them,
    a_held_domain_lock_is_409_busy_with_retry_after,
);

const DAY: i64 = 86_400;

/// Creates a token of `role` for `tenant` with `extra` members in the body; the reply.
async fn create(h: &Harness, tenant: &str, role: &str, extra: Value) -> crate::api::harness::Reply {
    let mut body = json!({"role": role, "label": "expiring"});
    body.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    h.post(&format!("/api/v1/tenants/{tenant}/tokens"), &h.admin, body)
        .await
}

async fn tokens_expire_after_their_days(h: Harness) {
    let a = h.tenant("a").await;
    let reply = create(&h, &a.name, "owner", json!({"expires_in_days": 1})).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.json);
    assert_eq!(reply.json["expires_at"], T0 + DAY);
    let token = reply.json["token"].as_str().unwrap().to_owned();
    let forever = create(&h, &a.name, "owner", json!({"expires_in_days": null})).await;
    assert_eq!(forever.status, StatusCode::CREATED, "{}", forever.json);
    assert_eq!(forever.json["expires_at"], Value::Null);
    let forever = forever.json["token"].as_str().unwrap().to_owned();

    h.advance(DAY - 1);
    assert_eq!(h.get("/api/v1/me", &token).await.status, StatusCode::OK);
    h.advance(1);
    // Expired: exactly like an unknown token.
    let refused = h.get("/api/v1/me", &token).await;
    refused.assert_error(StatusCode::UNAUTHORIZED, "unauthorized");
    assert_eq!(refused.json["error"]["message"], "invalid token");
    assert_eq!(h.get("/api/v1/me", &forever).await.status, StatusCode::OK);
    // Still listed (with its end), so it can be seen and revoked.
    let listed = h.get("/api/v1/tokens", &h.admin).await;
    assert!(
        listed.json["tokens"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["expires_at"] == T0 + DAY && t["tenant"] == a.name.as_str()),
        "{}",
        listed.json
    );

    for days in [json!(0), json!(3651), json!(-1), json!("7"), json!(1.5)] {
        create(&h, &a.name, "owner", json!({ "expires_in_days": days }))
            .await
            .assert_invalid("expires_in_days");
    }
    assert_eq!(
        create(&h, &a.name, "readonly", json!({"expires_in_days": 3650}))
            .await
            .json["expires_at"],
        T0 + DAY + 3650 * DAY
    );
}

/// The ids in a token list.
fn ids(reply: &crate::api::harness::Reply) -> BTreeSet<i64> {
    reply.json["tokens"]
        .as_array()
        .unwrap_or_else(|| panic!("{}", reply.json))
        .iter()
        .map(|t| t["id"].as_i64().unwrap())
        .collect()
}

async fn tokens_are_listed_by_role_without_secrets(h: Harness) {
    let a = h.tenant("a").await;
    let b = h.tenant("b").await;
    let a_ids: BTreeSet<i64> = h
        .state
        .db
        .tokens(Some(a.id))
        .await
        .unwrap()
        .iter()
        .map(|t| t.id)
        .collect();
    let b_ids: BTreeSet<i64> = h
        .state
        .db
        .tokens(Some(b.id))
        .await
        .unwrap()
        .iter()
        .map(|t| t.id)
        .collect();
    assert_eq!((a_ids.len(), b_ids.len()), (2, 2));

    h.advance(30);
    let owner = h.get("/api/v1/tokens", &a.owner).await;
    assert_eq!(owner.status, StatusCode::OK, "{}", owner.json);
    assert_eq!(ids(&owner), a_ids, "an owner sees its tenant's tokens only");
    let admin = h.get("/api/v1/tokens", &h.admin).await;
    assert_eq!(admin.status, StatusCode::OK, "{}", admin.json);
    let all = ids(&admin);
    assert!(
        all.is_superset(&a_ids) && all.is_superset(&b_ids),
        "{}",
        admin.json
    );
    let admin_own = h.state.db.tokens(None).await.unwrap();
    let admin_own = admin_own
        .iter()
        .find(|t| t.tenant_id.is_none() && t.label == "test admin")
        .unwrap();
    assert!(all.contains(&admin_own.id));
    h.get("/api/v1/tokens", &a.readonly)
        .await
        .assert_error(StatusCode::FORBIDDEN, "forbidden");
    h.call(Method::GET, "/api/v1/tokens", None, None)
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "unauthorized");

    // Exactly the documented members; never a hash or the token's text.
    for token in owner.json["tokens"].as_array().unwrap() {
        let keys: BTreeSet<&str> = token
            .as_object()
            .unwrap()
            .keys()
            .map(|k| k.as_str())
            .collect();
        assert_eq!(
            keys,
            BTreeSet::from([
                "id",
                "tenant",
                "role",
                "label",
                "created_at",
                "expires_at",
                "last_used"
            ])
        );
        assert_eq!(token["tenant"], a.name.as_str());
        assert_eq!(token["expires_at"], Value::Null);
        // The owner token was used by this very request (at T0 + 30), the read-only one not
        // yet.
        match token["role"].as_str().unwrap() {
            "owner" => assert_eq!(token["last_used"], T0 + 30, "{token}"),
            "readonly" => assert_eq!(token["last_used"], Value::Null, "{token}"),
            other => panic!("{other}"),
        }
    }
    // The refused listing still authenticated the read-only token: its use is recorded.
    h.advance(30);
    let again = h.get("/api/v1/tokens", &a.owner).await;
    for token in again.json["tokens"].as_array().unwrap() {
        assert_eq!(token["last_used"], T0 + 30, "{token}");
    }
    let text = admin.json.to_string();
    for secret in [&a.owner, &a.readonly, &b.owner, &h.admin] {
        assert!(!text.contains(secret.as_str()));
        assert!(!text.contains(&mtasts_host::auth::hash_token(secret)));
    }
    let admin_row = admin.json["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["id"] == admin_own.id)
        .unwrap();
    assert_eq!(admin_row["tenant"], Value::Null);
    assert_eq!(admin_row["role"], "admin");
}

async fn revoked_tokens_are_refused_by_every_node(h: Harness) {
    let a = h.tenant("a").await;
    let b = h.tenant("b").await;
    // A second node: its own state and pool on the same database, its own listener.
    let db = HostDb::open(&h.db_url).await.unwrap();
    let resolver = support::dns::resolver(&h.net, std::time::Duration::from_secs(3));
    let other = AppState::new(db, Delegation::new(ZONE).unwrap(), Arc::new(resolver));
    let second = app::serve(&h.net, api::router(other)).await;
    let on_second = |token: &str| {
        let token = token.to_owned();
        async move {
            support::api::call(second.addr, Method::GET, "/api/v1/me", &token, None)
                .await
                .0
        }
    };

    let victim = support::api::create_token(h.addr, &h.admin, &a.name, "owner", "victim").await;
    let id = h
        .state
        .db
        .token_by_hash(&mtasts_host::auth::hash_token(&victim))
        .await
        .unwrap()
        .unwrap()
        .id;
    assert_eq!(h.get("/api/v1/me", &victim).await.status, StatusCode::OK);
    assert_eq!(on_second(&victim).await, StatusCode::OK);

    let path = format!("/api/v1/tokens/{id}");
    // Another tenant's owner cannot tell it exists; a read-only token may not revoke.
    h.delete(&path, &b.owner)
        .await
        .assert_error(StatusCode::NOT_FOUND, "not_found");
    h.delete(&path, &a.readonly)
        .await
        .assert_error(StatusCode::FORBIDDEN, "forbidden");
    h.delete("/api/v1/tokens/not-a-number", &a.owner)
        .await
        .assert_error(StatusCode::NOT_FOUND, "not_found");
    assert_eq!(h.get("/api/v1/me", &victim).await.status, StatusCode::OK);

    // Revoked through the first node: refused by both at once.
    let revoked = h.delete(&path, &a.owner).await;
    assert_eq!(revoked.status, StatusCode::NO_CONTENT, "{}", revoked.json);
    h.get("/api/v1/me", &victim)
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "unauthorized");
    assert_eq!(on_second(&victim).await, StatusCode::UNAUTHORIZED);
    h.delete(&path, &a.owner)
        .await
        .assert_error(StatusCode::NOT_FOUND, "not_found");
    assert!(!ids(&h.get("/api/v1/tokens", &h.admin).await).contains(&id));

    // Owners cannot see administrator tokens; administrators revoke any token, also through
    // the second node, and a token may revoke itself.
    let admin_id = h
        .state
        .db
        .token_by_hash(&mtasts_host::auth::hash_token(&h.admin))
        .await
        .unwrap()
        .unwrap()
        .id;
    h.delete(&format!("/api/v1/tokens/{admin_id}"), &a.owner)
        .await
        .assert_error(StatusCode::NOT_FOUND, "not_found");
    let b_owner_id = h
        .state
        .db
        .token_by_hash(&mtasts_host::auth::hash_token(&b.owner))
        .await
        .unwrap()
        .unwrap()
        .id;
    let (status, _) = support::api::call(
        second.addr,
        Method::DELETE,
        &format!("/api/v1/tokens/{b_owner_id}"),
        &h.admin,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    h.get("/api/v1/me", &b.owner)
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "unauthorized");
    let a_owner_id = h
        .state
        .db
        .token_by_hash(&mtasts_host::auth::hash_token(&a.owner))
        .await
        .unwrap()
        .unwrap()
        .id;
    let itself = h
        .delete(&format!("/api/v1/tokens/{a_owner_id}"), &a.owner)
        .await;
    assert_eq!(itself.status, StatusCode::NO_CONTENT, "{}", itself.json);
    assert_eq!(on_second(&a.owner).await, StatusCode::UNAUTHORIZED);
}

async fn two_authorization_headers_are_400(h: Harness) {
    let a = h.tenant("a").await;
    let request = |values: &[&str]| {
        let mut request = Request::builder().method(Method::GET).uri("/api/v1/me");
        for value in values {
            request = request.header(header::AUTHORIZATION, *value);
        }
        request.body(Full::new(Bytes::new())).unwrap()
    };
    let admin = format!("Bearer {}", h.admin);
    let owner = format!("Bearer {}", a.owner);
    for values in [
        vec![admin.as_str(), admin.as_str()],
        vec![owner.as_str(), admin.as_str()],
        vec![admin.as_str(), "Bearer mtasts_nonsense"],
        vec!["Basic eDp5", admin.as_str()],
    ] {
        h.send(request(&values))
            .await
            .assert_error(StatusCode::BAD_REQUEST, "bad_request");
    }
    assert_eq!(h.send(request(&[&admin])).await.status, StatusCode::OK);
    // A write with two headers changes nothing.
    let domain = h.domain("twice");
    let mut create = crate::support::http::json_request(
        Method::POST,
        "/api/v1/domains",
        Some(&a.owner),
        Some(json!({"domain": domain, "mode": "testing", "mx": ["mx.example.net"]})),
    );
    create
        .headers_mut()
        .append(header::AUTHORIZATION, admin.parse().unwrap());
    h.send(create)
        .await
        .assert_error(StatusCode::BAD_REQUEST, "bad_request");
    assert_eq!(h.state.db.domain(&domain).await.unwrap(), None);
}

/// A raw JSON body (repeated names cannot be written with `json!`).
async fn post_text(
    h: &Harness,
    path: &str,
    token: &str,
    body: String,
) -> crate::api::harness::Reply {
    let request = Request::builder()
        .method(Method::POST)
        .uri(path)
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .header(header::CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from(body)))
        .unwrap();
    h.send(request).await
}

async fn repeated_json_member_names_are_400_naming_them(h: Harness) {
    let a = h.tenant("a").await;
    let domain = h.domain("dup");
    let cases = [
        // Top level: which mode was meant is unknown.
        (
            format!(
                r#"{{"domain":"{domain}","mode":"testing","mode":"enforce","mx":["mx.example.net"]}}"#
            ),
            "mode",
        ),
        (
            format!(
                r#"{{"domain":"{domain}","mode":"testing","domain":"other.example","mx":["mx.example.net"]}}"#
            ),
            "domain",
        ),
        // Nested, inside a member's value: refused before the value's type is looked at.
        (
            format!(r#"{{"domain":"{domain}","mode":"testing","mx":[{{"a":1,"a":2}}]}}"#),
            "mx[0].a",
        ),
        (
            format!(r#"{{"domain":"{domain}","mode":"testing","rua":{{"x":{{"y":1,"y":1}}}}}}"#),
            "rua.x.y",
        ),
    ];
    for (body, field) in cases {
        let reply = post_text(&h, "/api/v1/domains", &a.owner, body).await;
        let rule = reply.assert_invalid(field);
        assert!(rule.contains("RFC 7493"), "{rule}");
        let message = reply.json["error"]["message"].as_str().unwrap();
        let name = field.rsplit(['.', ']']).next().unwrap();
        assert!(message.contains(&format!("{name:?}")), "{message}");
    }
    assert_eq!(h.state.db.domain(&domain).await.unwrap(), None);

    // The same name in different objects is fine; depth stays bounded.
    let fine = format!(
        r#"{{"domain":"{domain}","mode":"testing","mx":["mx.example.net"],"max_age":86400}}"#
    );
    let reply = post_text(&h, "/api/v1/domains", &a.owner, fine).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.json);
    let deep = format!(r#"{{"mx":{}{}}}"#, "[".repeat(200), "]".repeat(200));
    let reply = post_text(&h, "/api/v1/domains", &a.owner, deep).await;
    reply.assert_invalid("body");
    // Every JSON body goes through the same reader: a PATCH and a tenant's token too.
    let reply = h
        .send(
            Request::builder()
                .method(Method::PATCH)
                .uri(format!("/api/v1/domains/{domain}"))
                .header(header::AUTHORIZATION, format!("Bearer {}", a.owner))
                .header(header::CONTENT_TYPE, "application/json")
                .body(Full::new(Bytes::from(
                    r#"{"mode":"none","mode":"enforce"}"#,
                )))
                .unwrap(),
        )
        .await;
    reply.assert_invalid("mode");
    let reply = post_text(
        &h,
        &format!("/api/v1/tenants/{}/tokens", a.name),
        &h.admin,
        r#"{"role":"readonly","label":"x","role":"owner"}"#.to_owned(),
    )
    .await;
    reply.assert_invalid("role");
    h.cleanup().await;
}

async fn a_held_domain_lock_is_409_busy_with_retry_after(h: Harness) {
    let a = h.tenant("a").await;
    let domain = h.domain("busy");
    h.hosted(&a.owner, &domain, "testing").await;
    let path = format!("/api/v1/domains/{domain}");
    // Another change in progress, perhaps on another node: it holds the domain's lock.
    let held = h
        .state
        .db
        .try_lock(&format!("api-domain:{domain}"))
        .await
        .unwrap()
        .expect("the lock is free");
    let refused = h.patch(&path, &a.owner, json!({"mode": "enforce"})).await;
    refused.assert_error(StatusCode::CONFLICT, "busy");
    assert_eq!(
        refused
            .headers
            .get(header::RETRY_AFTER)
            .map(|v| v.to_str().unwrap()),
        Some("1"),
        "{:?}",
        refused.headers
    );
    let refused = h.delete(&path, &a.owner).await;
    refused.assert_error(StatusCode::CONFLICT, "busy");
    assert!(refused.headers.contains_key(header::RETRY_AFTER));
    let stored = h.state.db.domain(&domain).await.unwrap().unwrap();
    assert_eq!(stored.latest_version, 1, "nothing changed");

    drop(held);
    let done = h.patch(&path, &a.owner, json!({"mode": "enforce"})).await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.json);
    assert!(!done.headers.contains_key(header::RETRY_AFTER));
    h.cleanup().await;
}
