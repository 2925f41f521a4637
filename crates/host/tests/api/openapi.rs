//! The OpenAPI document describes exactly the routes the router serves.

use std::collections::BTreeSet;

use axum::http::{Method, StatusCode};
use mtasts_host::api;
use serde_json::{Value, json};

use crate::harness::{Backend, Options, run};

fn documented(doc: &Value) -> BTreeSet<(String, String)> {
    let mut out = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            if method != "parameters" {
                out.insert((method.to_uppercase(), path.clone()));
            }
        }
    }
    out
}

fn refs<'a>(value: &'a Value, out: &mut Vec<&'a str>) {
    match value {
        Value::Object(map) => {
            for (key, value) in map {
                match (key.as_str(), value) {
                    ("$ref", Value::String(target)) => out.push(target),
                    _ => refs(value, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| refs(v, out)),
        _ => {}
    }
}

/// The served document lists every route and nothing else; every route it lists is served
/// (each answers 401 without a token, not 404 or 405), and every reference resolves.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openapi_document_matches_the_router() {
    run(Backend::Sqlite, Options::default(), |h| async move {
        let reply = h
            .call(Method::GET, "/api/v1/openapi.json", None, None)
            .await;
        assert_eq!(reply.status, StatusCode::OK);
        let doc = reply.json;
        assert_eq!(doc, api::openapi_document());
        assert_eq!(doc["openapi"], "3.1.0");

        let routes: BTreeSet<(String, String)> = api::routes()
            .into_iter()
            .map(|(method, path)| (method.to_string(), path.to_owned()))
            .collect();
        assert_eq!(documented(&doc), routes);

        for (method, path) in &routes {
            let concrete = path
                .replace("{domain}", "example.com")
                .replace("{tenant}", "someone");
            let method = Method::from_bytes(method.as_bytes()).unwrap();
            let body = matches!(method, Method::POST | Method::PATCH).then(|| json!({}));
            let reply = h.call(method.clone(), &concrete, None, body).await;
            let expected = if path == "/api/v1/openapi.json" {
                StatusCode::OK
            } else {
                StatusCode::UNAUTHORIZED
            };
            assert_eq!(reply.status, expected, "{method} {path}");
        }

        let mut targets = Vec::new();
        refs(&doc, &mut targets);
        assert!(!targets.is_empty());
        for target in targets {
            let name = target
                .strip_prefix("#/components/schemas/")
                .unwrap_or_else(|| panic!("unexpected $ref {target}"));
            assert!(
                doc["components"]["schemas"].get(name).is_some(),
                "{target} is not defined"
            );
        }

        // Anything else is a JSON 404 or 405.
        let reply = h.get("/api/v1/nothing-here", &h.admin).await;
        reply.assert_error(StatusCode::NOT_FOUND, "not_found");
        let reply = h
            .call(Method::PUT, "/api/v1/domains", Some(&h.admin), None)
            .await;
        reply.assert_error(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed");
    })
    .await;
}
