//! Items 5, 6 and the cross-tenant oracle of item 7 of issue 10: names that are not domains
//! refused with the rule, a removal that can be cancelled, and no "already hosted" answer to
//! another tenant — unless it proves control of the domain with a TXT record.

use std::time::Duration;

use serde_json::{Value, json};

use super::harness::Site;
use super::http;

#[test]
fn ip_addresses_numeric_tlds_and_public_suffixes_are_refused() {
    let mut site = Site::new("");
    let serve = site.start();
    serve.tenant("alpha");
    let owner = serve.token("alpha", "owner");
    for name in ["127.0.0.1", "999.999.999.999", "0x7f.1", "10.1", "mail.123"] {
        let reply = serve.add_domain(&owner, name);
        assert_eq!(reply.status, 400, "{name}: {}", reply.text());
        let error = &reply.json()["error"];
        assert_eq!(error["field"], "domain", "{name}: {error}");
        let message = error["message"].as_str().unwrap_or("").to_ascii_lowercase();
        assert!(
            message.contains("ip address") || message.contains("numeric"),
            "{name}: {message}"
        );
    }
    for name in ["co.uk", "com", "github.io"] {
        let reply = serve.add_domain(&owner, name);
        assert_eq!(reply.status, 400, "{name}: {}", reply.text());
        let error = &reply.json()["error"];
        assert_eq!(error["field"], "domain", "{name}: {error}");
        assert!(
            error["message"]
                .as_str()
                .unwrap_or("")
                .contains("public suffix"),
            "{name}: {error}"
        );
    }
    // Refused before issue 10 and still refused.
    assert_eq!(serve.add_domain(&owner, "[::1]").status, 400);
    // Names under a suffix are fine.
    for name in ["example.co.uk", "someone.github.io", "x0x7f.example"] {
        let reply = serve.add_domain(&owner, name);
        assert_eq!(reply.status, 201, "{name}: {}", reply.text());
    }
    let list = http::api(serve.api, "GET", "/api/v1/domains", Some(&owner), None);
    assert!(!list.text().contains("127.0.0.1"), "{}", list.text());
    assert!(serve.stop());
}

#[test]
fn a_removal_can_be_cancelled_and_the_policy_returns_under_a_new_id() {
    let mut site = Site::new("");
    let serve = site.start();
    serve.tenant("alpha");
    let owner = serve.token("alpha", "owner");
    let call = |method: &str, path: &str, body: Option<&Value>| {
        http::api(serve.api, method, path, Some(&owner), body)
    };
    assert_eq!(serve.add_domain(&owner, "undo.example").status, 201);
    let changed = call(
        "PATCH",
        "/api/v1/domains/undo.example",
        Some(&json!({"mode": "enforce", "max_age": 604_800})),
    );
    assert_eq!(changed.status, 200, "{}", changed.text());
    let before = changed.json();
    // Outside a removal there is nothing to restore.
    let early = call("POST", "/api/v1/domains/undo.example/restore", None);
    assert_eq!(early.status, 409, "{}", early.text());

    let removing = call("DELETE", "/api/v1/domains/undo.example", None);
    assert_eq!(removing.status, 202, "{}", removing.text());
    assert_eq!(removing.json()["state"], "removing");
    // The dashboard offers the way back.
    let mut browser = http::Browser::new(serve.api);
    assert_eq!(browser.login("", &owner).status, 303);
    assert!(
        browser
            .get("/domains/undo.example")
            .text()
            .contains("Cancel removal")
    );
    // Another tenant cannot restore it.
    serve.tenant("beta");
    let beta = serve.token("beta", "owner");
    let foreign = http::api(
        serve.api,
        "POST",
        "/api/v1/domains/undo.example/restore",
        Some(&beta),
        None,
    );
    assert_eq!(foreign.status, 404, "{}", foreign.text());

    let restored = call("POST", "/api/v1/domains/undo.example/restore", None);
    assert_eq!(restored.status, 200, "{}", restored.text());
    let after = restored.json();
    assert_eq!(after["state"], "active", "{after}");
    assert_eq!(after["mode"], "enforce");
    assert_eq!(after["max_age"], 604_800);
    assert!(after["remove_after"].is_null(), "{after}");
    // A new version (new id) with the policy as it was before the removal.
    let versions = call("GET", "/api/v1/domains/undo.example/versions", None).json();
    let versions = versions["versions"].as_array().unwrap();
    let newest = &versions[0];
    assert_eq!(newest["mode"], "enforce", "{newest}");
    assert!(newest["version"].as_i64() > before["version"].as_i64());
    let ids: Vec<&str> = versions
        .iter()
        .filter_map(|v| v["policy_id"].as_str())
        .collect();
    assert_eq!(
        ids.iter().filter(|id| **id == newest["policy_id"]).count(),
        1,
        "{ids:?}"
    );
    // Changes work again.
    let patched = call(
        "PATCH",
        "/api/v1/domains/undo.example",
        Some(&json!({"mode": "testing"})),
    );
    assert_eq!(patched.status, 200, "{}", patched.text());
    assert!(serve.stop());
}

#[test]
fn adding_another_tenants_domain_answers_like_any_cross_tenant_call() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let net = runtime.block_on(mtasts_testkit::TestNet::start());
    let mut site = Site::new("");
    site.resolve_through(net.dns_addr());
    let serve = site.start();
    serve.tenant("alpha");
    serve.tenant("beta");
    let alpha = serve.token("alpha", "owner");
    let beta = serve.token("beta", "owner");
    assert_eq!(serve.add_domain(&alpha, "taken.example").status, 201);

    let unknown = http::api(
        serve.api,
        "GET",
        "/api/v1/domains/nowhere.example",
        Some(&beta),
        None,
    );
    let taken = serve.add_domain(&beta, "taken.example");
    assert_eq!(taken.status, 404, "{}", taken.text());
    assert_eq!(taken.code(), "not_found");
    assert_eq!(taken.json(), unknown.json());
    assert!(!taken.text().to_ascii_lowercase().contains("hosted"));

    // A claim is issued for any valid name, hosted or not: it tells nothing either.
    let claim = |token: &str, domain: &str| {
        http::api(
            serve.api,
            "POST",
            &format!("/api/v1/domains/{domain}/claim"),
            Some(token),
            None,
        )
    };
    let free = claim(&beta, "free.example");
    assert_eq!(free.status, 201, "{}", free.text());
    let challenge = claim(&beta, "taken.example");
    assert_eq!(challenge.status, 201, "{}", challenge.text());
    let body = challenge.json();
    for key in ["domain", "txt_name", "txt_value", "expires_at"] {
        assert!(!body[key].is_null(), "{key} missing: {body}");
    }
    let txt_name = body["txt_name"].as_str().unwrap().trim_end_matches('.');
    let txt_value = body["txt_value"].as_str().unwrap();
    assert!(
        txt_name.ends_with("taken.example"),
        "the TXT is published under the domain: {txt_name}"
    );

    // Proven control: the add succeeds and the domain moves to beta.
    net.zone().add_txt(txt_name, &[txt_value]);
    let mut moved = serve.add_domain(&beta, "taken.example");
    for _ in 0..5 {
        if moved.status == 201 {
            break;
        }
        std::thread::sleep(Duration::from_millis(500));
        moved = serve.add_domain(&beta, "taken.example");
    }
    assert_eq!(
        moved.status,
        201,
        "the claim was not honoured: {}",
        moved.text()
    );
    let now_beta = http::api(
        serve.api,
        "GET",
        "/api/v1/domains/taken.example",
        Some(&beta),
        None,
    );
    assert_eq!(now_beta.status, 200);
    assert_eq!(now_beta.json()["tenant"], "beta");
    let gone = http::api(
        serve.api,
        "GET",
        "/api/v1/domains/taken.example",
        Some(&alpha),
        None,
    );
    assert_eq!(gone.status, 404);
    assert!(serve.stop());
    drop(net);
    runtime.shutdown_timeout(Duration::from_secs(1));
}
