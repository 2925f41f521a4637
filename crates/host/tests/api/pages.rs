//! Pagination: `GET /api/v1/domains` and `GET /api/v1/domains/{domain}/versions` answer a page
//! (`limit`, default 100, at most 500) with an opaque `next_cursor`, and refuse a bad `limit` or
//! `cursor` with a 400 naming it.

use axum::http::StatusCode;
use mtasts_proto::hosted::cursor::Cursor;
use mtasts_store::host::{NewDomain, NewVersion};
use serde_json::{Value, json};

use crate::api::harness::{Harness, T0};

crate::api::on_both_databases!(
    domains_come_in_pages,
    the_default_page_is_100,
    versions_come_in_pages,
    bad_page_parameters_are_400
);

fn names(reply: &Value) -> Vec<String> {
    reply["domains"]
        .as_array()
        .unwrap_or_else(|| panic!("no domains: {reply}"))
        .iter()
        .map(|d| d["domain"].as_str().unwrap().to_owned())
        .collect()
}

/// Every page of `path` (which has a query already) as the list of its `member`'s entries.
async fn pages(h: &Harness, token: &str, path: &str, member: &str) -> Vec<Vec<Value>> {
    let mut out = Vec::new();
    let mut next: Option<String> = None;
    loop {
        let url = match &next {
            Some(cursor) => format!("{path}&cursor={cursor}"),
            None => path.to_owned(),
        };
        let reply = h.get(&url, token).await;
        assert_eq!(reply.status, StatusCode::OK, "{url}: {}", reply.json);
        out.push(reply.json[member].as_array().unwrap().clone());
        match &reply.json["next_cursor"] {
            Value::String(cursor) => {
                assert!(cursor.len() <= 600, "{cursor}");
                next = Some(cursor.clone());
            }
            Value::Null => return out,
            other => panic!("next_cursor is {other}"),
        }
        assert!(out.len() < 100, "the pages never end");
    }
}

/// A tenant's domains in name order, `limit` at a time, and none of another tenant's.
async fn domains_come_in_pages(h: Harness) {
    let a = h.tenant("a").await;
    let b = h.tenant("b").await;
    let mut expected = Vec::new();
    for label in ["m", "a-b", "a", "zz", "a0", "b", "q"] {
        let name = h.domain(label);
        h.hosted(&a.owner, &name, "testing").await;
        expected.push(name);
    }
    h.hosted(&b.owner, &h.domain("theirs"), "testing").await;
    expected.sort();

    let all = h.get("/api/v1/domains", &a.readonly).await;
    assert_eq!(all.status, StatusCode::OK);
    assert_eq!(names(&all.json), expected);
    assert_eq!(all.json["next_cursor"], Value::Null);

    let paged = pages(&h, &a.readonly, "/api/v1/domains?limit=3", "domains").await;
    let sizes: Vec<usize> = paged.iter().map(Vec::len).collect();
    assert_eq!(sizes, [3, 3, 1]);
    let flat: Vec<Value> = paged.concat();
    assert_eq!(flat, all.json["domains"].as_array().unwrap().clone());

    // A page exactly full at the end says there is no next one.
    let paged = pages(&h, &a.owner, "/api/v1/domains?limit=7", "domains").await;
    assert_eq!(paged.len(), 1);

    // The other tenant sees only its own, whatever cursor it is handed.
    let cursor = Cursor::DomainsAfter("a.example".to_owned()).encode();
    let theirs = h
        .get(
            &format!("/api/v1/domains?limit=1&cursor={cursor}"),
            &b.owner,
        )
        .await;
    assert_eq!(names(&theirs.json), [h.domain("theirs")]);
    assert_eq!(theirs.json["next_cursor"], Value::Null);
    h.cleanup().await;
}

/// Without `limit`, a page holds 100 domains.
async fn the_default_page_is_100(h: Harness) {
    let a = h.tenant("many").await;
    // Made in the store directly: 105 API calls would be slow and spend the token's rate.
    for i in 0..105 {
        h.state
            .db
            .create_domain(
                NewDomain {
                    tenant_id: a.id,
                    name: h.domain(&format!("d{i:03}")),
                    rua: None,
                    reports_to_service: true,
                },
                NewVersion {
                    policy_id: "20270115T080000".to_owned(),
                    mode: "testing".to_owned(),
                    mx: vec!["mx.example.net".to_owned()],
                    max_age: 86400,
                    body: "version: STSv1\r\nmode: testing\r\nmx: mx.example.net\r\n\
                           max_age: 86400\r\n"
                        .to_owned(),
                    now: T0,
                },
            )
            .await
            .unwrap();
    }
    let first = h.get("/api/v1/domains", &a.owner).await;
    assert_eq!(names(&first.json).len(), 100);
    let cursor = first.json["next_cursor"].as_str().unwrap();
    let rest = h
        .get(&format!("/api/v1/domains?cursor={cursor}"), &a.owner)
        .await;
    assert_eq!(names(&rest.json).len(), 5);
    assert_eq!(rest.json["next_cursor"], Value::Null);
    assert_eq!(names(&rest.json)[4], h.domain("d104"));
    let max = h.get("/api/v1/domains?limit=500", &a.owner).await;
    assert_eq!(names(&max.json).len(), 105);
    h.cleanup().await;
}

/// A domain's versions newest first, `limit` at a time; its cursor is no good elsewhere.
async fn versions_come_in_pages(h: Harness) {
    let a = h.tenant("a").await;
    let b = h.tenant("b").await;
    let domain = h.domain("history");
    h.hosted(&a.owner, &domain, "testing").await;
    let path = format!("/api/v1/domains/{domain}");
    for max_age in 86_401..86_407 {
        h.advance(1);
        let reply = h.patch(&path, &a.owner, json!({"max_age": max_age})).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.json);
    }
    let all = h.get(&format!("{path}/versions"), &a.readonly).await;
    assert_eq!(all.json["next_cursor"], Value::Null);
    let numbers = |list: &[Value]| -> Vec<i64> {
        list.iter()
            .map(|v| v["version"].as_i64().unwrap())
            .collect()
    };
    assert_eq!(
        numbers(all.json["versions"].as_array().unwrap()),
        [7, 6, 5, 4, 3, 2, 1]
    );
    let paged = pages(
        &h,
        &a.readonly,
        &format!("{path}/versions?limit=3"),
        "versions",
    )
    .await;
    let paged: Vec<Vec<i64>> = paged.iter().map(|p| numbers(p)).collect();
    assert_eq!(paged, [vec![7, 6, 5], vec![4, 3, 2], vec![1]]);

    // Another tenant's domain stays not found, cursor or not.
    let cursor = Cursor::VersionsBefore(5).encode();
    let other = h
        .get(&format!("{path}/versions?cursor={cursor}"), &b.owner)
        .await;
    other.assert_error(StatusCode::NOT_FOUND, "not_found");
    // A domain-list cursor is not a version cursor, nor the other way round.
    let wrong = Cursor::DomainsAfter("example.com".to_owned()).encode();
    h.get(&format!("{path}/versions?cursor={wrong}"), &a.owner)
        .await
        .assert_invalid("cursor");
    h.get(&format!("/api/v1/domains?cursor={cursor}"), &a.owner)
        .await
        .assert_invalid("cursor");
    h.cleanup().await;
}

/// `limit` 0, above 500 or not a number, a repeated parameter, or a cursor this service did
/// not make: 400 naming the parameter.
async fn bad_page_parameters_are_400(h: Harness) {
    let a = h.tenant("a").await;
    let domain = h.domain("params");
    h.hosted(&a.owner, &domain, "testing").await;
    for list in [
        "/api/v1/domains".to_owned(),
        format!("/api/v1/domains/{domain}/versions"),
    ] {
        for limit in ["0", "501", "-1", "ten", "1.5", "", "99999999999999999999"] {
            let rule = h
                .get(&format!("{list}?limit={limit}"), &a.owner)
                .await
                .assert_invalid("limit");
            assert!(rule.contains("500"), "{rule}");
        }
        assert_eq!(
            h.get(&format!("{list}?limit=500"), &a.owner).await.status,
            StatusCode::OK
        );
        h.get(&format!("{list}?limit=1&limit=2"), &a.owner)
            .await
            .assert_invalid("limit");
        let long = "61".repeat(5_000);
        for cursor in ["zz", "", "6431", &long, "%ff%fe"] {
            h.get(&format!("{list}?cursor={cursor}"), &a.owner)
                .await
                .assert_invalid("cursor");
        }
        h.get(&format!("{list}?cursor=a&cursor=b"), &a.owner)
            .await
            .assert_invalid("cursor");
        // Parameters of no meaning here are ignored, as on every route.
        assert_eq!(
            h.get(&format!("{list}?page=2"), &a.owner).await.status,
            StatusCode::OK
        );
    }
    h.cleanup().await;
}
