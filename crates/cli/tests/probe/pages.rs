//! Item 4 of issue 10: bounded pages (a cursor and a maximum page size in the API, 50 rows and
//! a "Next page" link in the dashboard) and dashboard writes under the API's per-principal
//! rate limit.

use std::collections::BTreeSet;

use serde_json::{Value, json};

use super::harness::{Running, Site};
use super::http::{self, Browser};

/// Adds `count` domains `pNNN.example` with three owner tokens in parallel (each token stays
/// inside its burst of API calls).
fn many_domains(serve: &Running, count: usize) -> Vec<String> {
    let tokens: Vec<String> = (0..3).map(|_| serve.token("alpha", "owner")).collect();
    let api = serve.api;
    let handles: Vec<_> = tokens
        .into_iter()
        .enumerate()
        .map(|(t, token)| {
            std::thread::spawn(move || {
                for n in (t..count).step_by(3) {
                    let domain = format!("p{n:03}.example");
                    let body = json!({"domain": domain, "mode": "testing", "mx": [format!("mx.{domain}")]});
                    let reply = http::api(api, "POST", "/api/v1/domains", Some(&token), Some(&body));
                    assert_eq!(reply.status, 201, "{domain}: {}", reply.text());
                }
            })
        })
        .collect();
    for handle in handles {
        handle.join().unwrap();
    }
    (0..count).map(|n| format!("p{n:03}.example")).collect()
}

/// Every item of a paginated list at `path` (`key`: `domains` or `versions`), page by page.
fn walk(serve: &Running, token: &str, path: &str, key: &str, limit: usize) -> Vec<Vec<Value>> {
    let mut pages = Vec::new();
    let mut url = format!("{path}?limit={limit}");
    for _ in 0..1_000 {
        let page = http::api(serve.api, "GET", &url, Some(token), None);
        assert_eq!(page.status, 200, "{url}: {}", page.text());
        let json = page.json();
        let items = json[key].as_array().cloned().unwrap_or_default();
        assert!(items.len() <= limit, "{url}: {} items", items.len());
        assert!(json.get("next_cursor").is_some(), "{url}: no next_cursor");
        pages.push(items);
        match json["next_cursor"].as_str() {
            Some(cursor) => url = format!("{path}?limit={limit}&cursor={cursor}"),
            None => break,
        }
    }
    pages
}

#[test]
fn lists_are_paginated_in_the_api_and_the_dashboard() {
    let mut site = Site::new("");
    let serve = site.start();
    serve.tenant("alpha");
    let owner = serve.token("alpha", "owner");
    let names = many_domains(&serve, 300);

    // API: pages of at most `limit`, in name order, every domain once.
    let pages = walk(&serve, &owner, "/api/v1/domains", "domains", 70);
    assert!(pages.len() >= 5, "{} pages", pages.len());
    let seen: Vec<String> = pages
        .iter()
        .flatten()
        .map(|d| d["domain"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(seen, names);
    let first = http::api(serve.api, "GET", "/api/v1/domains", Some(&owner), None);
    assert_eq!(first.json()["domains"].as_array().unwrap().len(), 100);
    assert!(first.json()["next_cursor"].is_string());
    for (query, parameter) in [
        ("limit=0", "limit"),
        ("limit=501", "limit"),
        ("limit=ten", "limit"),
        ("cursor=not-a-cursor!!", "cursor"),
    ] {
        let reply = http::api(
            serve.api,
            "GET",
            &format!("/api/v1/domains?{query}"),
            Some(&owner),
            None,
        );
        assert_eq!(reply.status, 400, "{query}: {}", reply.text());
        assert!(
            reply.text().contains(parameter),
            "{query}: {}",
            reply.text()
        );
    }
    let max = http::api(
        serve.api,
        "GET",
        "/api/v1/domains?limit=500",
        Some(&owner),
        None,
    );
    assert_eq!(max.json()["domains"].as_array().unwrap().len(), 300);

    // Versions: newest first, in pages.
    for i in 1..=60u64 {
        let body = json!({ "max_age": 90_000 + i });
        let reply = http::api(
            serve.api,
            "PATCH",
            "/api/v1/domains/p000.example",
            Some(&owner),
            Some(&body),
        );
        assert_eq!(reply.status, 200, "{}", reply.text());
    }
    let pages = walk(
        &serve,
        &owner,
        "/api/v1/domains/p000.example/versions",
        "versions",
        25,
    );
    let numbers: Vec<i64> = pages
        .iter()
        .flatten()
        .map(|v| v["version"].as_i64().unwrap())
        .collect();
    assert_eq!(numbers, (1..=61).rev().collect::<Vec<_>>());

    // Dashboard: at most 50 rows a page, a link to the next.
    let mut browser = Browser::new(serve.api);
    assert_eq!(browser.login("", &owner).status, 303);
    let mut shown = BTreeSet::new();
    let mut path = "/".to_owned();
    for _ in 0..20 {
        let page = browser.get(&path);
        assert_eq!(page.status, 200, "{}", page.text());
        assert!(
            page.body.len() < 128 * 1024,
            "{path}: {} bytes",
            page.body.len()
        );
        let text = page.text();
        let here: Vec<&String> = names.iter().filter(|n| text.contains(n.as_str())).collect();
        assert!(
            here.len() <= 50,
            "{path}: {} domains on one page",
            here.len()
        );
        shown.extend(here.into_iter().cloned());
        match next_link(&text) {
            Some(next) => path = next,
            None => break,
        }
    }
    assert_eq!(shown.len(), 300, "following Next page shows every domain");
    let detail = browser.get("/domains/p000.example");
    let history: Vec<String> = pages
        .iter()
        .flatten()
        .map(|v| v["policy_id"].as_str().unwrap().to_owned())
        .collect();
    // Ids made in the same second share a prefix: count whole cells. The current and the
    // pending id may be shown above the history too.
    let listed = history
        .iter()
        .filter(|id| detail.text().contains(&format!("<code>{id}</code>")))
        .count();
    assert!(listed <= 52, "{listed} versions on the domain page");
    assert!(
        next_link(&detail.text()).is_some(),
        "no Next page on the history"
    );
    assert!(serve.stop());
}

/// The `href` of the "Next page" link (HTML-unescaped), if there is one.
fn next_link(html: &str) -> Option<String> {
    let at = html.find("Next page")?;
    let before = &html[..at];
    let href = before.rfind("href=\"")? + 6;
    let end = before[href..].find('"')? + href;
    Some(before[href..end].replace("&amp;", "&"))
}

#[test]
fn dashboard_writes_share_the_api_rate_limit() {
    let mut site = Site::new("");
    let serve = site.start();
    serve.tenant("alpha");
    let owner = serve.token("alpha", "owner");
    assert_eq!(serve.add_domain(&owner, "busy.example").status, 201);
    let mut browser = Browser::new(serve.api);
    assert_eq!(browser.login("", &owner).status, 303);
    let csrf = browser.csrf_of("/domains/busy.example");
    // The API allows a burst of 120 calls, then 600 a minute; the dashboard the same.
    let mut limited = None;
    for i in 0..300u64 {
        let max_age = (86_400 + i).to_string();
        let reply = browser.post(
            "/domains/busy.example",
            &[
                ("csrf", &csrf),
                ("mode", "testing"),
                ("mx", "mx.busy.example"),
                ("max_age", &max_age),
                ("rua", ""),
            ],
        );
        if reply.status == 429 {
            limited = Some((i, reply));
            break;
        }
        assert_eq!(reply.status, 303, "{}", reply.text());
    }
    let (i, reply) = limited.expect("300 dashboard changes in a row were not limited");
    assert!(i >= 100, "limited after only {i} changes");
    assert!(reply.header("retry-after").is_some());
    assert!(serve.stop());
}
