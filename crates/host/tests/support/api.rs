//! The REST API as a client uses it: JSON calls with a bearer token, and the administrator's
//! first steps (a tenant, a token for it).

use std::net::SocketAddr;

use axum::http::{Method, StatusCode};
use serde_json::{Value, json};

use super::http;

/// A JSON API call to `addr` as `token`; the reply's status and JSON body (`Null` when the body
/// is empty or not JSON).
pub(crate) async fn call(
    addr: SocketAddr,
    method: Method,
    path: &str,
    token: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let response = http::send(addr, http::json_request(method, path, Some(token), body)).await;
    let json = serde_json::from_slice(&response.body).unwrap_or(Value::Null);
    (response.status, json)
}

/// Creates tenant `name` as administrator `admin`; asserts 201.
pub(crate) async fn create_tenant(addr: SocketAddr, admin: &str, name: &str) {
    let (status, body) = call(
        addr,
        Method::POST,
        "/api/v1/tenants",
        admin,
        Some(json!({ "name": name })),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "tenant {name}: {body}");
}

/// Creates a token of `role` for tenant `tenant` as administrator `admin`; asserts 201 and
/// returns the secret.
pub(crate) async fn create_token(
    addr: SocketAddr,
    admin: &str,
    tenant: &str,
    role: &str,
    label: &str,
) -> String {
    let (status, body) = call(
        addr,
        Method::POST,
        &format!("/api/v1/tenants/{tenant}/tokens"),
        admin,
        Some(json!({"role": role, "label": label})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body["token"].as_str().unwrap().to_owned()
}
