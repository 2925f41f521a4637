//! A dashboard session opened with an API token lasts only as long as the token: revoking it
//! (issue 10) or its expiry ends the session at once.

use std::time::Duration;

use axum::http::StatusCode;
use mtasts_host::auth::{Principal, new_token};
use mtasts_host::service;
use mtasts_store::host::{NewToken, Role};

use crate::dashboard::harness::{Harness, PASSWORD};

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// An owner token of tenant alpha that expires at `expires_at`; its text and id.
async fn token(h: &Harness, expires_at: Option<i64>) -> (String, i64) {
    let (plain, hash) = new_token();
    let row = h
        .state
        .db
        .create_token(NewToken {
            tenant_id: Some(h.alpha.id),
            role: Role::Owner,
            label: "dashboard".into(),
            token_hash: hash,
            expires_at,
        })
        .await
        .unwrap();
    (plain, row.id)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_login_ends_when_the_token_is_revoked() {
    let h = Harness::start().await;
    let (plain, id) = token(&h, None).await;
    let session = h.login("", &plain).await;
    let other = h.login(&h.alpha.owner_email, PASSWORD).await;
    assert_eq!(h.get("/", &session).await.status, StatusCode::OK);

    service::revoke_token(&h.state.db, &Principal::operator(), id)
        .await
        .unwrap();
    let after = h.get("/", &session).await;
    assert_eq!(after.status, StatusCode::SEE_OTHER, "{}", after.body);
    assert_eq!(after.location(), "/login");
    assert_eq!(
        h.login_reply("", &plain).await.status,
        StatusCode::UNAUTHORIZED
    );
    // A password session of the same tenant is not affected.
    assert_eq!(h.get("/", &other).await.status, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_login_ends_when_the_token_expires() {
    let h = Harness::start().await;
    let expires_at = unix_now() + 3;
    let (plain, _) = token(&h, Some(expires_at)).await;
    let session = h.login("", &plain).await;
    assert_eq!(h.get("/", &session).await.status, StatusCode::OK);
    let wait = expires_at + 1 - unix_now();
    tokio::time::sleep(Duration::from_secs(u64::try_from(wait.max(0)).unwrap())).await;
    let after = h.get("/", &session).await;
    assert_eq!(after.status, StatusCode::SEE_OTHER, "{}", after.body);
    assert_eq!(
        h.login_reply("", &plain).await.status,
        StatusCode::UNAUTHORIZED
    );
}
