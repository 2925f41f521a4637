//! Domains: creation (with and without mx), detail, changes, history, safe removal, the
//! TLS-RPT report address, the verification and certificate status, and every 400.

use std::sync::Arc;

use axum::http::{Method, Request, StatusCode, header};
use bytes::Bytes;
use futures::future::BoxFuture;
use http_body_util::Full;
use mtasts_check::report::Verdict;
use mtasts_host::verification::{
    CheckSummary, DomainVerifier, RecordCheck, RecordChecks, RecordStatus, Verification,
    VerifyError,
};
use mtasts_proto::hosted::delegation::RecordKind;
use mtasts_proto::hosted::versions::next_policy_id;
use mtasts_proto::tlsrpt::record::TlsRptRecord;
use mtasts_store::host::CertRow;
use mtasts_testkit::Fault;
use serde_json::{Value, json};

use crate::api::harness::{Backend, Harness, Options, T0, ZONE, run};

crate::api::on_both_databases!(
    lifecycle,
    tls_report_address,
    invalid_domain_input,
    invalid_admin_input,
    domain_locks_are_bounded,
    lagging_clocks_never_repeat_a_policy_id
);

const DAY: i64 = 86_400;

/// Create, read, change, history, publish, remove: the whole life of a domain.
async fn lifecycle(h: Harness) {
    let a = h.tenant("a").await;
    let domain = h.domain("life");
    let path = format!("/api/v1/domains/{domain}");

    // Create, with the name in another case and a trailing dot.
    let reply = h
        .post(
            "/api/v1/domains",
            &a.owner,
            json!({
                "domain": format!("{}.", domain.to_uppercase()),
                "mode": "testing",
                "mx": [format!("MX1.{domain}"), format!("*.mx.{domain}.")],
                "max_age": 86400,
            }),
        )
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.json);
    assert_eq!(reply.headers[header::LOCATION], path.as_str());
    assert_eq!(reply.headers[header::CACHE_CONTROL], "no-store");
    let first_id = next_policy_id(T0, None);
    let created = reply.json;
    assert_eq!(created["domain"], domain.as_str());
    assert_eq!(created["tenant"], a.name.as_str());
    assert_eq!(created["state"], "active");
    assert_eq!(created["mode"], "testing");
    assert_eq!(
        created["mx"],
        json!([format!("mx1.{domain}"), format!("*.mx.{domain}")])
    );
    assert_eq!(created["max_age"], 86400);
    assert_eq!(
        created["policy"],
        format!(
            "version: STSv1\r\nmode: testing\r\nmx: mx1.{domain}\r\nmx: *.mx.{domain}\r\nmax_age: 86400\r\n"
        )
    );
    assert_eq!(created["policy_id"], Value::Null, "not published yet");
    assert_eq!(created["pending_policy_id"], first_id.as_str());
    assert_eq!(created["version"], 1);
    assert_eq!(
        created["records"],
        json!([
            {"kind": "sts_record", "name": format!("_mta-sts.{domain}"), "type": "CNAME",
             "target": format!("_mta-sts.{domain}.t{}.{ZONE}", a.id), "status": "unchecked",
             "detail": null, "fix": null},
            {"kind": "policy_host", "name": format!("mta-sts.{domain}"), "type": "CNAME",
             "target": format!("policy.{ZONE}"), "status": "unchecked",
             "detail": null, "fix": null},
            // Reports go to the service by default: its `_smtp._tls` record is published.
            {"kind": "tlsrpt", "name": format!("_smtp._tls.{domain}"), "type": "CNAME",
             "target": format!("_smtp._tls.{domain}.t{}.{ZONE}", a.id), "status": "unchecked",
             "detail": null, "fix": null},
        ])
    );
    assert_eq!(created["reports_to_service"], true);
    assert_eq!(
        created["reports"],
        json!({
            "tlsrpt_rua": format!("mailto:tlsrpt@reports.{ZONE},https://reports.{ZONE}/tlsrpt"),
            "dmarc_rua": format!("mailto:dmarc@reports.{ZONE}"),
            "dmarc_authorization": format!("{domain}._report._dmarc.reports.{ZONE}"),
        })
    );
    assert_eq!(
        created["certificate"],
        json!({"status": "none", "not_after": null})
    );
    assert_eq!(created["verification"], Value::Null);
    assert_eq!(created["remove_after"], Value::Null);
    assert_eq!(created["created_at"], T0);

    // Read it back, by any spelling of the name; list it.
    assert_eq!(h.get(&path, &a.owner).await.json, created);
    let upper = format!("/api/v1/domains/{}.", domain.to_uppercase());
    assert_eq!(h.get(&upper, &a.readonly).await.json, created);
    let list = h.get("/api/v1/domains", &a.readonly).await;
    assert_eq!(list.status, StatusCode::OK);
    assert_eq!(list.json["domains"], json!([created]));
    assert!(h.all_domains(&h.admin).await.contains(&created));

    // The name is taken, whoever asks.
    let again = h
        .post(
            "/api/v1/domains",
            &a.owner,
            json!({"domain": domain, "mode": "testing", "mx": ["mx.example.net"]}),
        )
        .await;
    again.assert_error(StatusCode::CONFLICT, "conflict");

    // Switch to enforce a minute later: version 2, a new id, mx kept.
    h.advance(60);
    let reply = h.patch(&path, &a.owner, json!({"mode": "enforce"})).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.json);
    let second_id = next_policy_id(T0 + 60, Some(&first_id));
    assert_ne!(second_id, first_id);
    assert_eq!(reply.json["version"], 2);
    assert_eq!(reply.json["mode"], "enforce");
    assert_eq!(reply.json["mx"], created["mx"]);
    assert_eq!(reply.json["pending_policy_id"], second_id.as_str());
    assert!(
        reply.json["policy"]
            .as_str()
            .unwrap()
            .contains("mode: enforce\r\n")
    );

    // The same values again change nothing.
    let same = h
        .patch(
            &path,
            &a.owner,
            json!({"mode": "enforce", "max_age": 86400}),
        )
        .await;
    assert_eq!(same.status, StatusCode::OK);
    assert_eq!(same.json["version"], 2);

    // A second change in the same second still gets a different id.
    let reply = h.patch(&path, &h.admin, json!({"max_age": 2 * DAY})).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.json);
    let third_id = next_policy_id(T0 + 60, Some(&second_id));
    assert_ne!(third_id, second_id);
    assert_eq!(reply.json["version"], 3);
    assert_eq!(reply.json["pending_policy_id"], third_id.as_str());

    // The history, newest first.
    let history = h.get(&format!("{path}/versions"), &a.readonly).await;
    assert_eq!(history.status, StatusCode::OK);
    let versions = history.json["versions"].as_array().unwrap().clone();
    let summary: Vec<(i64, &str, &str, i64, i64)> = versions
        .iter()
        .map(|v| {
            (
                v["version"].as_i64().unwrap(),
                v["policy_id"].as_str().unwrap(),
                v["mode"].as_str().unwrap(),
                v["max_age"].as_i64().unwrap(),
                v["created_at"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            (3, third_id.as_str(), "enforce", 2 * DAY, T0 + 60),
            (2, second_id.as_str(), "enforce", DAY, T0 + 60),
            (1, first_id.as_str(), "testing", DAY, T0),
        ]
    );
    assert!(versions.iter().all(|v| v["published_at"].is_null()));
    assert_eq!(versions[2]["mx"], created["mx"]);

    // Once the node publishes version 3, the detail says so.
    let row = h.state.db.domain(&domain).await.unwrap().unwrap();
    h.state
        .db
        .publish_version(row.id, 3, T0 + 70)
        .await
        .unwrap();
    let detail = h.get(&path, &a.owner).await.json;
    assert_eq!(detail["policy_id"], third_id.as_str());
    assert_eq!(detail["pending_policy_id"], Value::Null);
    let history = h.get(&format!("{path}/versions"), &a.owner).await.json;
    assert_eq!(history["versions"][0]["published_at"], T0 + 70);

    // Remove: mode none under a new id, kept until the longest max_age served has run out.
    h.advance(1000);
    let now = T0 + 1060;
    let reply = h.delete(&path, &a.owner).await;
    assert_eq!(reply.status, StatusCode::ACCEPTED, "{}", reply.json);
    let removing = reply.json;
    assert_eq!(removing["state"], "removing");
    assert_eq!(removing["mode"], "none");
    assert_eq!(removing["mx"], json!([]));
    assert_eq!(removing["max_age"], DAY);
    assert_eq!(removing["version"], 4);
    assert_eq!(
        removing["policy"],
        "version: STSv1\r\nmode: none\r\nmax_age: 86400\r\n"
    );
    let fourth_id = next_policy_id(now, Some(&third_id));
    assert_eq!(removing["pending_policy_id"], fourth_id.as_str());
    assert_eq!(
        removing["policy_id"],
        third_id.as_str(),
        "until the node publishes"
    );
    // Version 3 (two days) was served until now: senders may hold it for two more days.
    assert_eq!(removing["remove_after"], now + 2 * DAY);

    // Removing again changes nothing; changes are refused; reading still works.
    h.advance(5);
    let again = h.delete(&path, &h.admin).await;
    assert_eq!(again.status, StatusCode::ACCEPTED);
    assert_eq!(again.json, removing);
    let refused = h.patch(&path, &a.owner, json!({"mode": "testing"})).await;
    refused.assert_error(StatusCode::CONFLICT, "conflict");
    let history = h.get(&format!("{path}/versions"), &a.owner).await.json;
    assert_eq!(history["versions"].as_array().unwrap().len(), 4);
    assert_eq!(history["versions"][0]["mode"], "none");

    h.cleanup().await;
}

/// Changes hold a pooled connection with their domain lock, so at most
/// `DOMAIN_LOCK_PERMITS` are held at once: with every permit taken, a change waits, and is
/// answered 503 with `Retry-After` when none comes free in time, without touching the domain.
async fn domain_locks_are_bounded(h: Harness) {
    use mtasts_host::state::DOMAIN_LOCK_PERMITS;
    let a = h.tenant("a").await;
    let domain = h.domain("locks");
    h.hosted(&a.owner, &domain, "testing").await;
    let path = format!("/api/v1/domains/{domain}");
    let permits = u32::try_from(DOMAIN_LOCK_PERMITS).unwrap();

    let held = h
        .state
        .domain_locks
        .clone()
        .acquire_many_owned(permits)
        .await
        .unwrap();
    let refused = h.patch(&path, &a.owner, json!({"mode": "enforce"})).await;
    refused.assert_error(StatusCode::SERVICE_UNAVAILABLE, "unavailable");
    assert_eq!(
        refused
            .headers
            .get(header::RETRY_AFTER)
            .map(|v| v.to_str().unwrap()),
        Some("1"),
        "{:?}",
        refused.headers
    );
    let stored = h.state.db.domain(&domain).await.unwrap().unwrap();
    assert_eq!(stored.latest_version, 1, "nothing changed");

    // A change waits for a permit that comes free within its wait.
    let change = {
        let path = path.clone();
        let owner = a.owner.clone();
        let h = &h;
        async move { h.patch(&path, &owner, json!({"mode": "enforce"})).await }
    };
    let release = async {
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        drop(held);
    };
    let (reply, ()) = tokio::join!(change, release);
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.json);
    assert_eq!(reply.json["mode"], "enforce");
    assert_eq!(
        h.state.domain_locks.available_permits(),
        DOMAIN_LOCK_PERMITS,
        "every permit is given back"
    );
    h.cleanup().await;
}

/// A node whose clock lags the one that made the latest version (nodes' clocks differ) still
/// makes a policy id never used before, and version times never go back.
async fn lagging_clocks_never_repeat_a_policy_id(h: Harness) {
    let a = h.tenant("a").await;
    let domain = h.domain("clocks");
    let path = format!("/api/v1/domains/{domain}");
    h.hosted(&a.owner, &domain, "testing").await; // at T0
    h.advance(100);
    let ahead = h.patch(&path, &a.owner, json!({"mode": "enforce"})).await;
    assert_eq!(ahead.status, StatusCode::OK, "{}", ahead.json);
    let ahead_id = next_policy_id(T0 + 100, Some(&next_policy_id(T0, None)));
    assert_eq!(ahead.json["pending_policy_id"], ahead_id.as_str());

    // Back to T0, as on a node whose clock is 100 s behind: without care the id would be
    // T0's again (version 1's).
    h.advance(-100);
    let lagging = h.patch(&path, &a.owner, json!({"mode": "testing"})).await;
    assert_eq!(lagging.status, StatusCode::OK, "{}", lagging.json);
    let lagging_id = next_policy_id(T0 + 100, Some(&ahead_id));
    assert_eq!(lagging.json["pending_policy_id"], lagging_id.as_str());
    // And again, still behind but later than T0.
    h.advance(50);
    let again = h.patch(&path, &a.owner, json!({"max_age": 3600})).await;
    assert_eq!(again.status, StatusCode::OK, "{}", again.json);
    // Removal makes a version too.
    let removing = h.delete(&path, &a.owner).await;
    assert_eq!(removing.status, StatusCode::ACCEPTED, "{}", removing.json);

    let stored = h.state.db.domain(&domain).await.unwrap().unwrap();
    let versions = h.state.db.versions(stored.id).await.unwrap();
    assert_eq!(versions.len(), 5);
    let mut ids: Vec<&str> = versions.iter().map(|v| v.policy_id.as_str()).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 5, "every id differs: {versions:?}");
    let times: Vec<i64> = versions.iter().rev().map(|v| v.created_at).collect();
    assert_eq!(times, vec![T0, T0 + 100, T0 + 100, T0 + 100, T0 + 100]);
    h.cleanup().await;
}

/// The TLS-RPT report address (`rua`, RFC 8460 §3): set on creation and shown with the fourth
/// CNAME; changed, kept (absent) and removed (`null`) by PATCH without a new policy version;
/// every bad value a 400 naming `rua` and the rule; another tenant's domain a 404 as ever.
async fn tls_report_address(h: Harness) {
    let a = h.tenant("a").await;
    let b = h.tenant("b").await;
    let domain = h.domain("reports");
    let path = format!("/api/v1/domains/{domain}");
    let tlsrpt_record = json!({
        "kind": "tlsrpt", "name": format!("_smtp._tls.{domain}"), "type": "CNAME",
        "target": format!("_smtp._tls.{domain}.t{}.{ZONE}", a.id), "status": "unchecked",
        "detail": null, "fix": null,
    });
    let stored_rua = |name: String| {
        let db = h.state.db.clone();
        async move { db.domain(&name).await.unwrap().unwrap().rua }
    };

    // Created with two URIs, spaced and with an uppercase scheme: stored normalised.
    let reply = h
        .post(
            "/api/v1/domains",
            &a.owner,
            json!({"domain": domain, "mode": "testing", "mx": ["mx.example.net"],
                   "rua": " MAILTO:tlsrpt@example.com , https://reports.example.com/v1/tlsrpt\n"}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.json);
    let created = reply.json;
    let rua = "mailto:tlsrpt@example.com,https://reports.example.com/v1/tlsrpt";
    assert_eq!(created["rua"], rua);
    let records = created["records"].as_array().unwrap();
    assert_eq!(records.len(), 3, "{}", created["records"]);
    assert_eq!(records[2], tlsrpt_record);
    assert_eq!(stored_rua(domain.clone()).await.as_deref(), Some(rua));
    // What the zone will answer (`v=TLSRPTv1; rua=…`) reads back as the same URIs.
    let record = TlsRptRecord::parse(&format!("v=TLSRPTv1; rua={rua}")).unwrap();
    let uris: Vec<&str> = record.rua.iter().map(|u| u.as_str()).collect();
    assert_eq!(
        uris,
        [
            "mailto:tlsrpt@example.com",
            "https://reports.example.com/v1/tlsrpt"
        ]
    );
    assert_eq!(h.get(&path, &a.readonly).await.json, created);

    // The published rua: the service's own URIs, then the owner's.
    let service = format!("mailto:tlsrpt@reports.{ZONE},https://reports.{ZONE}/tlsrpt");
    assert_eq!(created["reports"]["tlsrpt_rua"], format!("{service},{rua}"));

    // A domain without one still sends its reports to the service (the fourth CNAME).
    let plain = h.hosted(&a.owner, &h.domain("plain"), "testing").await;
    assert_eq!(plain["rua"], Value::Null);
    assert_eq!(plain["records"].as_array().unwrap().len(), 3);
    assert_eq!(plain["reports"]["tlsrpt_rua"], service.as_str());
    // Opting out keeps only the owner's own rua, or publishes nothing without one.
    let own_only = h
        .post(
            "/api/v1/domains",
            &a.owner,
            json!({"domain": h.domain("ownonly"), "mode": "testing", "mx": ["mx.example.net"],
                   "rua": "mailto:me@example.com", "reports_to_service": false}),
        )
        .await;
    assert_eq!(own_only.status, StatusCode::CREATED, "{}", own_only.json);
    assert_eq!(own_only.json["reports_to_service"], false);
    assert_eq!(
        own_only.json["reports"]["tlsrpt_rua"],
        "mailto:me@example.com"
    );
    assert_eq!(own_only.json["records"].as_array().unwrap().len(), 3);
    let nowhere = h
        .post(
            "/api/v1/domains",
            &a.owner,
            json!({"domain": h.domain("nowhere"), "mode": "testing", "mx": ["mx.example.net"],
                   "reports_to_service": false}),
        )
        .await;
    assert_eq!(nowhere.status, StatusCode::CREATED, "{}", nowhere.json);
    assert_eq!(nowhere.json["reports"]["tlsrpt_rua"], Value::Null);
    assert_eq!(nowhere.json["records"].as_array().unwrap().len(), 2);
    for bad in [json!("yes"), json!(1), json!(null)] {
        let reply = h
            .post(
                "/api/v1/domains",
                &a.owner,
                json!({"domain": h.domain("badflag"), "mode": "testing",
                       "mx": ["mx.example.net"], "reports_to_service": bad}),
            )
            .await;
        if bad.is_null() {
            // null is absent, as for every optional field: the default.
            assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.json);
            assert_eq!(reply.json["reports_to_service"], true);
            continue;
        }
        reply.assert_invalid("reports_to_service");
    }

    // Another tenant gets exactly what a domain that does not exist gets, whatever the rua;
    // the tenant's read-only token may not change it.
    let absent = format!("/api/v1/domains/{}", h.domain("absent"));
    for body in [
        json!({"rua": "mailto:mine@evil.example"}),
        json!({"rua": null}),
        json!({"rua": "http://not-even-valid.example"}),
    ] {
        for token in [&b.owner, &b.readonly] {
            let theirs = h.patch(&path, token, body.clone()).await;
            theirs.assert_error(StatusCode::NOT_FOUND, "not_found");
            assert_eq!(
                theirs.json,
                h.patch(&absent, token, body.clone()).await.json
            );
        }
        h.patch(&path, &a.readonly, body)
            .await
            .assert_error(StatusCode::FORBIDDEN, "forbidden");
    }
    assert_eq!(h.get(&path, &a.owner).await.json, created);

    // Changing only the rua: no new policy version, the same pending id and policy.
    h.advance(60);
    let reply = h
        .patch(
            &path,
            &a.owner,
            json!({"rua": "mailto:reports@example.org"}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.json);
    assert_eq!(reply.json["rua"], "mailto:reports@example.org");
    for same in [
        "version",
        "policy",
        "pending_policy_id",
        "mode",
        "mx",
        "max_age",
    ] {
        assert_eq!(reply.json[same], created[same], "{same}");
    }
    assert_eq!(reply.json["records"].as_array().unwrap().len(), 3);
    let history = h.get(&format!("{path}/versions"), &a.owner).await.json;
    assert_eq!(history["versions"].as_array().unwrap().len(), 1);
    // The same value again is a valid change that changes nothing.
    let again = h
        .patch(
            &path,
            &a.owner,
            json!({"rua": "mailto:reports@example.org"}),
        )
        .await;
    assert_eq!(again.status, StatusCode::OK, "{}", again.json);
    assert_eq!(again.json, reply.json);

    // With a policy change at once: both.
    let reply = h
        .patch(
            &path,
            &a.owner,
            json!({"mode": "enforce", "rua": "https://reports.example.org/tlsrpt"}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.json);
    assert_eq!(reply.json["version"], 2);
    assert_eq!(reply.json["mode"], "enforce");
    assert_eq!(reply.json["rua"], "https://reports.example.org/tlsrpt");

    // Absent keeps it.
    let reply = h.patch(&path, &a.owner, json!({"max_age": 2 * DAY})).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.json);
    assert_eq!(reply.json["version"], 3);
    assert_eq!(reply.json["rua"], "https://reports.example.org/tlsrpt");

    // null removes it; the service's own addresses stay, and the fourth CNAME with them;
    // still no new version.
    let reply = h.patch(&path, &a.owner, json!({"rua": null})).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.json);
    assert_eq!(reply.json["rua"], Value::Null);
    assert_eq!(reply.json["version"], 3);
    assert_eq!(reply.json["reports"]["tlsrpt_rua"], service.as_str());
    assert_eq!(reply.json["records"].as_array().unwrap().len(), 3);
    assert_eq!(stored_rua(domain.clone()).await, None);
    // Without the service's addresses either, nothing is published: no fourth CNAME.
    let reply = h
        .patch(&path, &a.owner, json!({"reports_to_service": false}))
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.json);
    assert_eq!(reply.json["reports_to_service"], false);
    assert_eq!(reply.json["reports"]["tlsrpt_rua"], Value::Null);
    assert_eq!(reply.json["version"], 3);
    let kinds: Vec<&str> = reply.json["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["sts_record", "policy_host"]);
    let again = h.patch(&path, &a.owner, json!({"rua": null})).await;
    assert_eq!(again.status, StatusCode::OK, "{}", again.json);
    assert_eq!(again.json, reply.json);
    // And set again on a domain without one.
    let reply = h
        .patch(&path, &h.admin, json!({"rua": "mailto:tlsrpt@example.com"}))
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.json);
    assert_eq!(reply.json["records"][2], tlsrpt_record);
    let before = reply.json;

    // Bad values: a 400 naming rua and the rule, on creation and on change; nothing stored.
    let five: Vec<String> = (1..=5)
        .map(|i| format!("mailto:r{i}@example.com"))
        .collect();
    let long = format!("https://reports.example.com/{}", "a".repeat(1000));
    for (what, value, rfc) in [
        ("empty", json!(""), true),
        ("only spaces", json!("  "), true),
        ("http", json!("http://reports.example.com/v1"), true),
        ("mailto without address", json!("mailto:"), true),
        ("bare address", json!("tlsrpt@example.com"), true),
        ("another field", json!("mailto:a@example.com; ruf=x"), true),
        ("a line break", json!("mailto:a@example.com\nb"), true),
        ("size suffix", json!("mailto:a@example.com!10m"), true),
        (
            "empty between commas",
            json!("mailto:a@example.com,,"),
            true,
        ),
        ("five URIs", json!(five.join(",")), true),
        (
            "listed twice",
            json!("mailto:a@example.com,mailto:a@example.com"),
            true,
        ),
        ("too long", json!(long), true),
        ("a number", json!(5), false),
        ("an array", json!(["mailto:a@example.com"]), false),
    ] {
        let new = h.domain("badrua");
        let reply = h
            .post(
                "/api/v1/domains",
                &a.owner,
                json!({"domain": new, "mode": "testing", "mx": ["mx.example.net"], "rua": value}),
            )
            .await;
        let rule = reply.assert_invalid("rua");
        assert_eq!(rule.contains("RFC 8460 §3"), rfc, "{what}: {rule}");
        h.get(&format!("/api/v1/domains/{new}"), &a.owner)
            .await
            .assert_error(StatusCode::NOT_FOUND, "not_found");

        let reply = h
            .patch(&path, &a.owner, json!({"mode": "none", "rua": value}))
            .await;
        let rule = reply.assert_invalid("rua");
        assert_eq!(rule.contains("RFC 8460 §3"), rfc, "{what}: {rule}");
    }
    assert_eq!(h.get(&path, &a.owner).await.json, before);

    // Unknown fields are still refused, next to rua or not.
    h.post(
        "/api/v1/domains",
        &a.owner,
        json!({"domain": h.domain("ruf"), "mode": "none", "rua": "mailto:a@example.com",
               "ruf": "mailto:a@example.com"}),
    )
    .await
    .assert_invalid("ruf");
    h.patch(&path, &a.owner, json!({"RUA": "mailto:a@example.com"}))
        .await
        .assert_invalid("RUA");

    // A domain being removed cannot change its rua either.
    let removing = h.delete(&path, &a.owner).await;
    assert_eq!(removing.status, StatusCode::ACCEPTED, "{}", removing.json);
    h.patch(&path, &a.owner, json!({"rua": null}))
        .await
        .assert_error(StatusCode::CONFLICT, "conflict");

    h.cleanup().await;
}

/// The removal deadline counts every version ever served, not only the newest.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn removal_waits_for_the_longest_max_age_ever_served() {
    run(Backend::Sqlite, Options::default(), |h| async move {
        let a = h.tenant("a").await;
        let domain = h.domain("long");
        let path = format!("/api/v1/domains/{domain}");
        let reply = h
            .post(
                "/api/v1/domains",
                &a.owner,
                json!({"domain": domain, "mode": "testing", "mx": ["mx.example.net"],
                       "max_age": 30 * DAY}),
            )
            .await;
        assert_eq!(reply.status, StatusCode::CREATED);
        h.advance(DAY);
        h.patch(&path, &a.owner, json!({"max_age": DAY})).await;
        h.advance(DAY);
        let removing = h.delete(&path, &a.owner).await.json;
        // Version 1 (30 days) was served until T0 + 1 day.
        assert_eq!(removing["remove_after"], T0 + DAY + 30 * DAY);
    })
    .await;
}

/// Without mx, the domain's MX records become the patterns; no MX is a 400 naming mx, a
/// DNS failure a 503, and a bad mode is reported without asking DNS.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mx_comes_from_dns_when_omitted() {
    run(Backend::Sqlite, Options::default(), |h| async move {
        let a = h.tenant("a").await;
        let zone = h.net.zone();
        let with_mx = h.domain("withmx");
        zone.add_mx(&with_mx, 20, &format!("backup.{with_mx}."));
        zone.add_mx(&with_mx, 10, &format!("Primary.{with_mx}."));
        zone.add_mx(&with_mx, 30, &format!("primary.{with_mx}."));
        let reply = h
            .post(
                "/api/v1/domains",
                &a.owner,
                json!({"domain": with_mx, "mode": "testing"}),
            )
            .await;
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.json);
        assert_eq!(
            reply.json["mx"],
            json!([format!("primary.{with_mx}"), format!("backup.{with_mx}")])
        );
        assert_eq!(reply.json["max_age"], 604_800, "the default max_age");

        let without = h.domain("nomx");
        zone.add_a(&without, "192.0.2.1".parse().unwrap());
        let reply = h
            .post(
                "/api/v1/domains",
                &a.owner,
                json!({"domain": without, "mode": "enforce"}),
            )
            .await;
        reply.assert_invalid("mx");

        let missing = h.domain("nxdomain");
        let reply = h
            .post(
                "/api/v1/domains",
                &a.owner,
                json!({"domain": missing, "mode": "testing"}),
            )
            .await;
        reply.assert_invalid("mx");

        let null_mx = h.domain("nullmx");
        zone.add_null_mx(&null_mx);
        let reply = h
            .post(
                "/api/v1/domains",
                &a.owner,
                json!({"domain": null_mx, "mode": "testing"}),
            )
            .await;
        let rule = reply.assert_invalid("mx");
        assert!(rule.contains("RFC 8461"), "{rule}");

        let failing = h.domain("servfail");
        zone.set_fault(&failing, Fault::ServFail);
        let reply = h
            .post(
                "/api/v1/domains",
                &a.owner,
                json!({"domain": failing, "mode": "testing"}),
            )
            .await;
        reply.assert_error(StatusCode::SERVICE_UNAVAILABLE, "unavailable");

        let unasked = h.domain("badmode");
        let reply = h
            .post(
                "/api/v1/domains",
                &a.owner,
                json!({"domain": unasked, "mode": "strict"}),
            )
            .await;
        reply.assert_invalid("mode");
        assert!(
            !zone
                .queries()
                .iter()
                .any(|(name, _)| name.contains("badmode")),
            "a bad mode is refused before any DNS lookup"
        );
    })
    .await;
}

/// Every rule on a new domain and on a change, with the field it names.
async fn invalid_domain_input(h: Harness) {
    let a = h.tenant("a").await;
    let good = h.domain("good");
    let base = || json!({"domain": good, "mode": "testing", "mx": ["mx.example.net"]});
    let with = |key: &str, value: Value| {
        let mut body = base();
        body[key] = value;
        body
    };
    let without = |key: &str| {
        let mut body = base();
        body.as_object_mut().unwrap().remove(key);
        body
    };
    let many: Vec<String> = (0..65).map(|i| format!("mx{i}.example.net")).collect();
    let cases: Vec<(&str, Value, &str)> = vec![
        ("empty body", json!({}), "domain"),
        ("domain missing", without("domain"), "domain"),
        ("domain not a string", with("domain", json!(5)), "domain"),
        (
            "domain syntax",
            with("domain", json!("bad..example")),
            "domain",
        ),
        (
            "domain underscore",
            with("domain", json!("a_b.example")),
            "domain",
        ),
        (
            "domain address",
            with("domain", json!("[192.0.2.1]")),
            "domain",
        ),
        (
            "domain one label",
            with("domain", json!("localhost")),
            "domain",
        ),
        ("the service zone", with("domain", json!(ZONE)), "domain"),
        (
            "inside the zone",
            with("domain", json!(format!("x.{ZONE}"))),
            "domain",
        ),
        ("mode missing", without("mode"), "mode"),
        ("mode case", with("mode", json!("Enforce")), "mode"),
        ("mode unknown", with("mode", json!("strict")), "mode"),
        ("mode not a string", with("mode", json!(true)), "mode"),
        ("mx not an array", with("mx", json!("mx.example.net")), "mx"),
        ("mx not strings", with("mx", json!([1])), "mx"),
        ("mx empty for testing", with("mx", json!([])), "mx"),
        ("mx port", with("mx", json!(["mx.example.net:25"])), "mx"),
        ("mx ip", with("mx", json!(["192.0.2.1"])), "mx"),
        ("mx broad wildcard", with("mx", json!(["*.com"])), "mx"),
        (
            "mx inner wildcard",
            with("mx", json!(["mx.*.example.net"])),
            "mx",
        ),
        (
            "mx duplicate",
            with("mx", json!(["a.example.net", "A.example.net"])),
            "mx",
        ),
        ("mx too many", with("mx", json!(many)), "mx"),
        ("max_age zero", with("max_age", json!(0)), "max_age"),
        (
            "max_age above cap",
            with("max_age", json!(31_557_601)),
            "max_age",
        ),
        ("max_age negative", with("max_age", json!(-1)), "max_age"),
        ("max_age fraction", with("max_age", json!(1.5)), "max_age"),
        ("max_age string", with("max_age", json!("86400")), "max_age"),
        ("unknown field", with("modes", json!("testing")), "modes"),
        ("field case", with("Domain", json!("x.example")), "Domain"),
        (
            "someone else's tenant",
            with("tenant", json!("other")),
            "tenant",
        ),
    ];
    for (what, body, field) in cases {
        let reply = h.post("/api/v1/domains", &a.owner, body).await;
        assert_eq!(
            reply.json["error"]["field"], field,
            "{what}: {}",
            reply.json
        );
        reply.assert_invalid(field);
    }
    // Every name published for the domain must fit in 253 octets: the longest is
    // `_smtp._tls.<domain>.t<tenant>.<zone>` or `<domain>._report._dmarc.reports.<zone>`.
    let tlsrpt_room = 253 - "_smtp._tls.".len() - 1 - format!("t{}", a.id).len() - 1 - ZONE.len();
    let dmarc_room = 253 - "._report._dmarc.reports.".len() - ZONE.len();
    let room = tlsrpt_room.min(dmarc_room);
    let of_length = |n: usize| {
        let tail = format!(".{}.example", h.tag);
        let mut labels = String::new();
        while labels.len() + tail.len() < n {
            let left = n - tail.len() - labels.len();
            let label = "a".repeat(left.min(63));
            if labels.is_empty() {
                labels = label;
            } else if left >= 2 {
                labels = format!("{}.{labels}", "b".repeat((left - 1).min(63)));
            } else {
                break;
            }
        }
        let name = format!("{labels}{tail}");
        assert_eq!(name.len(), n, "{name}");
        name
    };
    let too_long = of_length(room + 1);
    let rule = h
        .post("/api/v1/domains", &a.owner, with("domain", json!(too_long)))
        .await
        .assert_invalid("domain");
    assert!(rule.contains("253 octets"), "{rule}");
    assert!(
        rule.contains("_smtp._tls.<domain>.t<tenant>.<zone>"),
        "{rule}"
    );
    assert!(
        rule.contains("<domain>._report._dmarc.reports.<zone>"),
        "{rule}"
    );
    assert_eq!(h.state.db.domain(&too_long).await.unwrap(), None);
    let fits = of_length(room);
    let mut body = with("domain", json!(fits));
    // With a report address, so the TLS-RPT record (the longest name) is shown too.
    body["rua"] = json!("mailto:tlsrpt@example.net");
    let reply = h.post("/api/v1/domains", &a.owner, body).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.json);
    let published = reply.json["records"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["target"].as_str())
        .chain(reply.json["reports"]["dmarc_authorization"].as_str())
        .map(str::len)
        .max();
    assert_eq!(published, Some(253), "{}", reply.json);

    // Rules cite where they come from.
    let rule = h
        .post("/api/v1/domains", &a.owner, with("mode", json!("Enforce")))
        .await
        .assert_invalid("mode");
    assert!(rule.contains("RFC 8461 §3.2"), "{rule}");

    // Bodies that are not a JSON object.
    for (what, content_type, body) in [
        ("not JSON", "application/json", "{\"domain\":"),
        ("an array", "application/json", "[]"),
        ("a string", "application/json", "\"x\""),
        (
            "form data",
            "application/x-www-form-urlencoded",
            "domain=x.example",
        ),
        ("no content type", "", "{}"),
    ] {
        let mut request = Request::builder()
            .method(Method::POST)
            .uri("/api/v1/domains")
            .header(header::AUTHORIZATION, format!("Bearer {}", a.owner));
        if !content_type.is_empty() {
            request = request.header(header::CONTENT_TYPE, content_type);
        }
        let reply = h
            .send(request.body(Full::new(Bytes::from(body))).unwrap())
            .await;
        assert_eq!(
            reply.status,
            StatusCode::BAD_REQUEST,
            "{what}: {}",
            reply.json
        );
        assert_eq!(reply.json["error"]["field"], "body", "{what}");
    }

    // Changes.
    h.hosted(&a.owner, &good, "testing").await;
    let path = format!("/api/v1/domains/{good}");
    for (what, body, field) in [
        ("nothing to change", json!({}), "body"),
        ("only nulls", json!({"mode": null}), "body"),
        ("mode", json!({"mode": "Testing"}), "mode"),
        ("mx emptied", json!({"mx": []}), "mx"),
        ("mx syntax", json!({"mx": ["mx example net"]}), "mx"),
        ("max_age", json!({"max_age": 0}), "max_age"),
        ("max_age type", json!({"max_age": "week"}), "max_age"),
        ("unknown", json!({"domain": "other.example"}), "domain"),
    ] {
        let reply = h.patch(&path, &a.owner, body).await;
        assert_eq!(
            reply.status,
            StatusCode::BAD_REQUEST,
            "{what}: {}",
            reply.json
        );
        reply.assert_invalid(field);
    }
    assert_eq!(h.get(&path, &a.owner).await.json["version"], 1);
    // mode none needs no mx.
    let none = h
        .patch(&path, &a.owner, json!({"mode": "none", "mx": []}))
        .await;
    assert_eq!(none.status, StatusCode::OK, "{}", none.json);
    assert_eq!(none.json["mx"], json!([]));
    h.cleanup().await;
}

/// The rules of the administrator-only inputs.
async fn invalid_admin_input(h: Harness) {
    let a = h.tenant("a").await;
    let body = |tenant: Option<&str>| {
        let mut body =
            json!({"domain": h.domain("admin"), "mode": "testing", "mx": ["mx.example.net"]});
        if let Some(tenant) = tenant {
            body["tenant"] = json!(tenant);
        }
        body
    };
    h.post("/api/v1/domains", &h.admin, body(None))
        .await
        .assert_invalid("tenant");
    h.post(
        "/api/v1/domains",
        &h.admin,
        body(Some("no-such-tenant-here")),
    )
    .await
    .assert_invalid("tenant");
    // Names the database would not even look up name no tenant either: 400, not 500.
    for unusable in ["bad\u{1}name".to_owned(), "x".repeat(300)] {
        let reply = h
            .post("/api/v1/domains", &h.admin, body(Some(&unusable)))
            .await;
        let rule = reply.assert_invalid("tenant");
        assert!(rule.contains("tenant must exist"), "{rule}");
    }
    // ... and in a URL, 404.
    for unusable in ["bad%01name".to_owned(), "x".repeat(300)] {
        h.post(
            &format!("/api/v1/tenants/{unusable}/tokens"),
            &h.admin,
            json!({"role": "owner", "label": "x"}),
        )
        .await
        .assert_error(StatusCode::NOT_FOUND, "not_found");
        h.post(
            &format!("/api/v1/tenants/{unusable}/users"),
            &h.admin,
            json!({"email": "u@example.com", "password": "correct horse battery staple",
                   "role": "owner"}),
        )
        .await
        .assert_error(StatusCode::NOT_FOUND, "not_found");
    }
    let made = h
        .post("/api/v1/domains", &h.admin, body(Some(&a.name)))
        .await;
    assert_eq!(made.status, StatusCode::CREATED, "{}", made.json);
    assert_eq!(made.json["tenant"], a.name.as_str());

    let long = "x".repeat(64);
    for (what, body, field) in [
        ("missing", json!({}), "name"),
        ("upper case", json!({"name": "Acme"}), "name"),
        ("space", json!({"name": "a b"}), "name"),
        ("leading hyphen", json!({"name": "-a"}), "name"),
        ("empty", json!({"name": ""}), "name"),
        ("too long", json!({"name": long}), "name"),
        ("type", json!({"name": 1}), "name"),
        ("unknown", json!({"name": "ok", "plan": "gold"}), "plan"),
    ] {
        let reply = h.post("/api/v1/tenants", &h.admin, body).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{what}");
        reply.assert_invalid(field);
    }
    let tokens = format!("/api/v1/tenants/{}/tokens", a.name);
    for (what, body, field) in [
        ("admin role", json!({"role": "admin", "label": "x"}), "role"),
        (
            "unknown role",
            json!({"role": "root", "label": "x"}),
            "role",
        ),
        ("no role", json!({"label": "x"}), "role"),
        ("no label", json!({"role": "owner"}), "label"),
        (
            "empty label",
            json!({"role": "owner", "label": " "}),
            "label",
        ),
        (
            "long label",
            json!({"role": "owner", "label": "x".repeat(101)}),
            "label",
        ),
        (
            "control in label",
            json!({"role": "owner", "label": "a\nb"}),
            "label",
        ),
        (
            "unknown",
            json!({"role": "owner", "label": "x", "tenant": "y"}),
            "tenant",
        ),
    ] {
        let reply = h.post(&tokens, &h.admin, body).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{what}");
        reply.assert_invalid(field);
    }
    let users = format!("/api/v1/tenants/{}/users", a.name);
    let pw = "correct horse battery staple";
    for (what, body, field) in [
        (
            "no at",
            json!({"email": "nobody", "password": pw, "role": "owner"}),
            "email",
        ),
        (
            "no domain",
            json!({"email": "a@", "password": pw, "role": "owner"}),
            "email",
        ),
        (
            "one label",
            json!({"email": "a@localhost", "password": pw, "role": "owner"}),
            "email",
        ),
        (
            "space",
            json!({"email": "a b@example.com", "password": pw, "role": "owner"}),
            "email",
        ),
        (
            "short password",
            json!({"email": "a@example.com", "password": "short", "role": "owner"}),
            "password",
        ),
        (
            "no password",
            json!({"email": "a@example.com", "role": "owner"}),
            "password",
        ),
        (
            "role",
            json!({"email": "a@example.com", "password": pw, "role": "admin"}),
            "role",
        ),
        (
            "unknown",
            json!({"email": "a@example.com", "password": pw, "role": "owner", "name": "A"}),
            "name",
        ),
    ] {
        let reply = h.post(&users, &h.admin, body).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{what}");
        reply.assert_invalid(field);
    }
    // Unknown tenants in the path are 404, even for administrators.
    let reply = h
        .post(
            "/api/v1/tenants/no-such-tenant-here/tokens",
            &h.admin,
            json!({"role": "owner", "label": "x"}),
        )
        .await;
    reply.assert_error(StatusCode::NOT_FOUND, "not_found");
    h.cleanup().await;
}

struct FixedVerifier;

impl DomainVerifier for FixedVerifier {
    fn verify<'a>(&'a self, domain: &'a str) -> BoxFuture<'a, Result<Verification, VerifyError>> {
        Box::pin(async move {
            let mut records = RecordChecks::default();
            records.set(
                RecordKind::StsRecord,
                RecordCheck {
                    status: RecordStatus::Verified,
                    detail: Some(format!("_mta-sts.{domain} found")),
                    fix: None,
                },
            );
            records.set(
                RecordKind::PolicyHost,
                RecordCheck {
                    status: RecordStatus::Wrong,
                    detail: Some("points elsewhere".to_owned()),
                    fix: Some(format!("point mta-sts.{domain} at policy.{ZONE}")),
                },
            );
            Ok(Verification {
                checked_at: 1,
                records,
                points_here: false,
                check: Some(CheckSummary {
                    verdict: Verdict::Warn,
                    findings: vec![],
                    dkim_selectors: vec![],
                }),
            })
        })
    }
}

/// On-demand verification stores the verifier's result and the detail shows it per record.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verification_is_stored_and_shown() {
    let options = Options {
        verifier: Some(Arc::new(FixedVerifier)),
        ..Options::default()
    };
    run(Backend::Sqlite, options, |h| async move {
        let a = h.tenant("a").await;
        let domain = h.domain("verify");
        h.hosted(&a.owner, &domain, "testing").await;
        h.advance(30);
        let reply = h
            .call(
                Method::POST,
                &format!("/api/v1/domains/{domain}/verify"),
                Some(&a.readonly),
                None,
            )
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.json);
        let records = &reply.json["records"];
        assert_eq!(records[0]["status"], "verified");
        assert_eq!(records[0]["detail"], format!("_mta-sts.{domain} found"));
        assert_eq!(records[1]["status"], "wrong");
        assert_eq!(
            records[1]["fix"],
            format!("point mta-sts.{domain} at policy.{ZONE}")
        );
        assert_eq!(reply.json["verification"]["checked_at"], T0 + 30);
        assert_eq!(reply.json["verification"]["check"]["verdict"], "warn");
        // Stored: a plain read shows the same.
        let detail = h.get(&format!("/api/v1/domains/{domain}"), &a.owner).await;
        assert_eq!(detail.json["records"], reply.json["records"]);
    })
    .await;
}

/// Without a verifier the route answers 503; the certificate status follows its dates.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_verifier_and_certificate_status() {
    run(Backend::Sqlite, Options::default(), |h| async move {
        let a = h.tenant("a").await;
        let domain = h.domain("cert");
        h.hosted(&a.owner, &domain, "testing").await;
        let path = format!("/api/v1/domains/{domain}");
        let reply = h
            .call(
                Method::POST,
                &format!("{path}/verify"),
                Some(&a.owner),
                None,
            )
            .await;
        reply.assert_error(StatusCode::SERVICE_UNAVAILABLE, "unavailable");

        let not_after = T0 + 90 * DAY;
        h.state
            .db
            .put_certificate(CertRow {
                domain: domain.clone(),
                chain_pem: "-----BEGIN CERTIFICATE-----\n".into(),
                key_pem: "-----BEGIN PRIVATE KEY-----\n".into(),
                not_before: T0,
                not_after,
                issued_by: "https://acme.test/directory".into(),
                updated_at: T0,
            })
            .await
            .unwrap();
        let status = |json: &Value| json["certificate"]["status"].as_str().unwrap().to_owned();
        let detail = h.get(&path, &a.owner).await.json;
        assert_eq!(status(&detail), "valid");
        assert_eq!(detail["certificate"]["not_after"], not_after);
        h.advance(80 * DAY);
        assert_eq!(status(&h.get(&path, &a.owner).await.json), "expiring");
        h.advance(10 * DAY);
        assert_eq!(status(&h.get(&path, &a.owner).await.json), "expired");
    })
    .await;
}
