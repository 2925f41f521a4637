//! The OpenAPI document describes exactly the routes the router serves.

use std::collections::BTreeSet;

use axum::http::{Method, StatusCode};
use mtasts_host::api;
use serde_json::{Value, json};

use crate::api::harness::{Backend, Options, run};

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
                .replace("{tenant}", "someone")
                .replace("{id}", "1");
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

fn property_names<'a>(doc: &'a Value, schema: &str) -> BTreeSet<&'a str> {
    doc["components"]["schemas"][schema]["properties"]
        .as_object()
        .unwrap_or_else(|| panic!("{schema} has no properties"))
        .keys()
        .map(String::as_str)
        .collect()
}

/// The domain schemas name exactly the members the API answers, and every request property
/// they document is read by the handler (a wrong type is refused under that name, not as an
/// unknown field).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn domain_schemas_match_the_fields() {
    run(Backend::Sqlite, Options::default(), |h| async move {
        let doc = api::openapi_document();
        let a = h.tenant("a").await;
        let domain = h.domain("schema");
        let valid = json!({
            "domain": domain, "tenant": a.name, "mode": "testing", "mx": ["mx.example.net"],
            "max_age": 86400, "rua": "mailto:tlsrpt@example.com", "reports_to_service": true,
        });
        let create = property_names(&doc, "CreateDomain");
        assert_eq!(
            valid
                .as_object()
                .unwrap()
                .keys()
                .map(String::as_str)
                .collect::<BTreeSet<_>>(),
            create
        );
        let reply = h.post("/api/v1/domains", &a.owner, valid.clone()).await;
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.json);
        let detail = reply.json;

        let members: BTreeSet<&str> = detail
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(members, property_names(&doc, "DomainDetail"));
        let required: BTreeSet<&str> = doc["components"]["schemas"]["DomainDetail"]["required"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        assert_eq!(members, required);
        assert_eq!(detail["records"].as_array().unwrap().len(), 3, "with rua");
        for record in detail["records"].as_array().unwrap() {
            let members: BTreeSet<&str> = record
                .as_object()
                .unwrap()
                .keys()
                .map(String::as_str)
                .collect();
            assert_eq!(members, property_names(&doc, "Record"));
        }

        let wrong = json!({"not": "a valid value"});
        for field in &create {
            let mut body = valid.clone();
            body["domain"] = json!(h.domain("other"));
            body[*field] = wrong.clone();
            let rule = h
                .post("/api/v1/domains", &a.owner, body)
                .await
                .assert_invalid(field);
            assert!(!rule.contains("documented fields"), "{field}: {rule}");
        }
        let path = format!("/api/v1/domains/{domain}");
        for field in property_names(&doc, "UpdateDomain") {
            let rule = h
                .patch(&path, &a.owner, json!({ field: wrong.clone() }))
                .await
                .assert_invalid(field);
            assert!(!rule.contains("documented fields"), "{field}: {rule}");
        }
        let rule = h
            .patch(&path, &a.owner, json!({"ruf": "mailto:tlsrpt@example.com"}))
            .await
            .assert_invalid("ruf");
        assert!(rule.contains("documented fields"), "{rule}");
    })
    .await;
}
