//! Names: what is not a domain (IP spellings, public suffixes, bad A-labels) is a 400 naming
//! the rule; cancelling a removal; a name another tenant hosts answers like any domain the
//! caller cannot see, unless the caller proves control of it with a claim's TXT record.

use axum::http::StatusCode;
use mtasts_proto::hosted::claim::CLAIM_LIFETIME_SECONDS;
use mtasts_proto::hosted::policy_input::{
    DOMAIN_IDNA_RULE, DOMAIN_IP_RULE, DOMAIN_LABELS_RULE, DOMAIN_SUFFIX_RULE,
};
use mtasts_proto::hosted::versions::next_policy_id;
use serde_json::{Value, json};

use crate::api::harness::{Harness, T0, ZONE};

crate::api::on_both_databases!(
    names_that_are_not_domains,
    restore_cancels_a_removal,
    another_tenants_name_is_not_found,
    a_claim_moves_a_domain,
);

const DAY: i64 = 86_400;

fn new_domain(domain: &str) -> Value {
    json!({"domain": domain, "mode": "testing", "mx": ["mx.example.net"], "max_age": DAY})
}

/// Every spelling of an address, public suffixes and broken A-labels: 400 naming `domain`,
/// with the rule and a message that says what the name is. Registrable names under a
/// public suffix are accepted.
async fn names_that_are_not_domains(h: Harness) {
    let a = h.tenant("a").await;
    let cases: &[(&str, &str, &str)] = &[
        ("127.0.0.1", DOMAIN_IP_RULE, "IP address"),
        ("999.999.999.999", DOMAIN_IP_RULE, "IP address"),
        ("0x7f.1", DOMAIN_IP_RULE, "IP address"),
        ("1.2.3", DOMAIN_IP_RULE, "IP address"),
        ("0177.0.0.1", DOMAIN_IP_RULE, "IP address"),
        ("2130706433", DOMAIN_IP_RULE, "IP address"),
        ("::1", DOMAIN_IP_RULE, "IP address"),
        (
            "mail.example.123",
            DOMAIN_IP_RULE,
            "numeric top-level label",
        ),
        ("co.uk", DOMAIN_SUFFIX_RULE, "public suffix"),
        ("com", DOMAIN_SUFFIX_RULE, "public suffix"),
        ("github.io", DOMAIN_SUFFIX_RULE, "public suffix"),
        ("Co.UK.", DOMAIN_SUFFIX_RULE, "public suffix"),
        ("xn--zz.example", DOMAIN_IDNA_RULE, "A-label"),
        ("localhost", DOMAIN_LABELS_RULE, "single label"),
    ];
    for (name, rule, says) in cases {
        let reply = h.post("/api/v1/domains", &a.owner, new_domain(name)).await;
        assert_eq!(reply.assert_invalid("domain"), *rule, "{name}");
        let message = reply.json["error"]["message"].as_str().unwrap();
        assert!(message.contains(says), "{name}: {message}");
        // A claim checks the same rules.
        let claim = h
            .call(
                axum::http::Method::POST,
                &format!("/api/v1/domains/{name}/claim"),
                Some(&a.owner),
                None,
            )
            .await;
        if !name.contains(':') {
            assert_eq!(claim.assert_invalid("domain"), *rule, "claim {name}");
        }
    }
    // Address literals stay refused, under the same rule.
    for literal in ["[::1]", "[127.0.0.1]"] {
        let reply = h
            .post("/api/v1/domains", &a.owner, new_domain(literal))
            .await;
        assert_eq!(reply.assert_invalid("domain"), DOMAIN_IP_RULE, "{literal}");
    }
    for name in [
        format!("{}.github.io", h.tag),
        format!("{}.co.uk", h.tag),
        format!("0x7f.{}.example", h.tag),
    ] {
        let reply = h.post("/api/v1/domains", &a.owner, new_domain(&name)).await;
        assert_eq!(reply.status, StatusCode::CREATED, "{name}: {}", reply.json);
        assert_eq!(reply.json["domain"], name.as_str());
    }
    h.cleanup().await;
}

/// During the removal period the owner cancels it: the policy before the removal returns as
/// a new version with a new id, published like any change. Outside a removal: 409.
async fn restore_cancels_a_removal(h: Harness) {
    let a = h.tenant("a").await;
    let b = h.tenant("b").await;
    let domain = h.domain("undo");
    let path = format!("/api/v1/domains/{domain}");
    let restore = format!("{path}/restore");
    let created = h.hosted(&a.owner, &domain, "enforce").await;
    let row = h.state.db.domain(&domain).await.unwrap().unwrap();
    h.state
        .db
        .publish_version(row.id, 1, T0 + 10)
        .await
        .unwrap();

    // Not being removed: nothing to cancel.
    h.post(&restore, &a.owner, json!({}))
        .await
        .assert_error(StatusCode::CONFLICT, "conflict");

    h.advance(60);
    let removing = h.delete(&path, &a.owner).await;
    assert_eq!(removing.status, StatusCode::ACCEPTED, "{}", removing.json);
    let removal_id = next_policy_id(T0 + 60, created["pending_policy_id"].as_str());
    assert_eq!(removing.json["pending_policy_id"], removal_id.as_str());
    h.state
        .db
        .publish_version(row.id, 2, T0 + 70)
        .await
        .unwrap();
    // Re-adding is still a conflict for the owner, and says how to cancel.
    let again = h
        .post("/api/v1/domains", &a.owner, new_domain(&domain))
        .await;
    again.assert_error(StatusCode::CONFLICT, "conflict");
    assert!(
        again.json["error"]["message"]
            .as_str()
            .unwrap()
            .contains("/restore"),
        "{}",
        again.json
    );

    // Another tenant, a read-only token: as for any domain they cannot see, or cannot change.
    let hidden = h.post(&restore, &b.owner, json!({})).await;
    hidden.assert_error(StatusCode::NOT_FOUND, "not_found");
    let unknown = h
        .post(
            &format!("/api/v1/domains/{}/restore", h.domain("never")),
            &b.owner,
            json!({}),
        )
        .await;
    assert_eq!(hidden.json, unknown.json);
    h.post(&restore, &a.readonly, json!({}))
        .await
        .assert_error(StatusCode::FORBIDDEN, "forbidden");

    h.advance(60);
    let restored = h.post(&restore, &a.owner, json!({})).await;
    assert_eq!(restored.status, StatusCode::OK, "{}", restored.json);
    assert_eq!(restored.json["state"], "active");
    assert_eq!(restored.json["remove_after"], Value::Null);
    assert_eq!(restored.json["mode"], "enforce");
    assert_eq!(restored.json["mx"], created["mx"]);
    assert_eq!(restored.json["max_age"], created["max_age"]);
    assert_eq!(restored.json["policy"], created["policy"]);
    assert_eq!(restored.json["version"], 3);
    let restored_id = next_policy_id(T0 + 120, Some(&removal_id));
    assert_eq!(restored.json["pending_policy_id"], restored_id.as_str());
    assert_ne!(restored_id, created["pending_policy_id"].as_str().unwrap());
    assert_eq!(
        restored.json["policy_id"],
        removal_id.as_str(),
        "the removal's id stays in the TXT record until every node serves version 3"
    );
    h.state
        .db
        .publish_version(row.id, 3, T0 + 130)
        .await
        .unwrap();
    let now = h.get(&path, &a.owner).await.json;
    assert_eq!(now["policy_id"], restored_id.as_str());
    assert_eq!(now["pending_policy_id"], Value::Null);
    // The domain takes changes again, and no longer counts as due for removal.
    let changed = h.patch(&path, &a.owner, json!({"mode": "testing"})).await;
    assert_eq!(changed.status, StatusCode::OK, "{}", changed.json);
    assert!(
        h.state
            .db
            .domains_due_for_removal(i64::MAX)
            .await
            .unwrap()
            .iter()
            .all(|d| d.name != domain)
    );
    h.post(&restore, &a.owner, json!({}))
        .await
        .assert_error(StatusCode::CONFLICT, "conflict");
    h.cleanup().await;
}

/// Adding a name another tenant hosts: the 404 of any domain the caller cannot see, not a
/// "name taken"; an administrator, who sees every tenant, gets the conflict.
async fn another_tenants_name_is_not_found(h: Harness) {
    let a = h.tenant("a").await;
    let b = h.tenant("b").await;
    let domain = h.domain("taken");
    h.hosted(&a.owner, &domain, "testing").await;
    let taken = h
        .post("/api/v1/domains", &b.owner, new_domain(&domain))
        .await;
    taken.assert_error(StatusCode::NOT_FOUND, "not_found");
    let hidden = h.get(&format!("/api/v1/domains/{domain}"), &b.owner).await;
    let unknown = h
        .get(&format!("/api/v1/domains/{}", h.domain("never")), &b.owner)
        .await;
    assert_eq!(taken.json, unknown.json);
    assert_eq!(hidden.json, unknown.json);
    // In another spelling too.
    let upper = h
        .post(
            "/api/v1/domains",
            &b.owner,
            new_domain(&format!("{}.", domain.to_uppercase())),
        )
        .await;
    assert_eq!((upper.status, &upper.json), (taken.status, &taken.json));
    // Nothing changed for the owner.
    let mine = h.get(&format!("/api/v1/domains/{domain}"), &a.owner).await;
    assert_eq!(mine.json["tenant"], a.name.as_str());
    assert_eq!(mine.json["version"], 1);

    let mut admin_body = new_domain(&domain);
    admin_body["tenant"] = json!(b.name);
    h.post("/api/v1/domains", &h.admin, admin_body)
        .await
        .assert_error(StatusCode::CONFLICT, "conflict");
    h.cleanup().await;
}

/// The claim flow end to end over the loopback DNS: a claim for any name, a TXT record, and
/// adding the domain moves it to the claimant with a new version; without the record (or
/// after the claim expired) the answer stays the 404.
async fn a_claim_moves_a_domain(h: Harness) {
    let a = h.tenant("a").await;
    let b = h.tenant("b").await;
    let domain = h.domain("moving");
    let path = format!("/api/v1/domains/{domain}");
    let created = h.hosted(&a.owner, &domain, "enforce").await;
    let claim_path = format!("{path}/claim");
    let claim = |token: String| {
        let path = claim_path.clone();
        let h = &h;
        async move {
            h.call(axum::http::Method::POST, &path, Some(&token), None)
                .await
        }
    };

    // A claim is issued for any valid name, hosted or not, in the same shape.
    let issued = claim(b.owner.clone()).await;
    assert_eq!(issued.status, StatusCode::CREATED, "{}", issued.json);
    let keys = |v: &Value| {
        let mut keys: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
        keys.sort();
        keys
    };
    assert_eq!(
        keys(&issued.json),
        ["domain", "expires_at", "txt_name", "txt_value"]
    );
    assert_eq!(issued.json["domain"], domain.as_str());
    assert_eq!(
        issued.json["txt_name"],
        format!("_mtasts-claim.{domain}").as_str()
    );
    assert_eq!(issued.json["expires_at"], T0 + CLAIM_LIFETIME_SECONDS);
    let value = issued.json["txt_value"].as_str().unwrap().to_owned();
    let token = value.strip_prefix("mtasts-claim=").unwrap();
    assert_eq!(token.len(), 32);
    assert!(token.bytes().all(|b| b.is_ascii_hexdigit()));
    let free = h.domain("free");
    let unhosted = h
        .call(
            axum::http::Method::POST,
            &format!("/api/v1/domains/{free}/claim"),
            Some(&b.owner),
            None,
        )
        .await;
    assert_eq!(unhosted.status, StatusCode::CREATED);
    assert_eq!(keys(&unhosted.json), keys(&issued.json));
    assert_ne!(unhosted.json["txt_value"], issued.json["txt_value"]);
    // Asking again returns the same claim; a read-only token gets none.
    assert_eq!(claim(b.owner.clone()).await.json, issued.json);
    claim(b.readonly.clone())
        .await
        .assert_error(StatusCode::FORBIDDEN, "forbidden");

    // Without the TXT record (or with a wrong one): the 404 of any hidden domain.
    let unknown = h
        .get(&format!("/api/v1/domains/{}", h.domain("never")), &b.owner)
        .await;
    let refused = h
        .post("/api/v1/domains", &b.owner, new_domain(&domain))
        .await;
    assert_eq!(refused.status, StatusCode::NOT_FOUND);
    assert_eq!(refused.json, unknown.json);
    let zone = h.net.zone();
    let txt_name = format!("_mtasts-claim.{domain}");
    zone.add_txt(
        &txt_name,
        &["mtasts-claim=0123456789abcdef0123456789abcdef"],
    );
    let refused = h
        .post("/api/v1/domains", &b.owner, new_domain(&domain))
        .await;
    assert_eq!(refused.json, unknown.json);
    // Someone else's record does not prove the claim of a third tenant either.
    let c = h.tenant("c").await;
    zone.add_txt(&txt_name, &[&value]);
    let third = h
        .post("/api/v1/domains", &c.owner, new_domain(&domain))
        .await;
    assert_eq!(third.json, unknown.json);

    // Published: adding the domain moves it, with the policy asked for as a new version.
    h.advance(60);
    let moved = h
        .post(
            "/api/v1/domains",
            &b.owner,
            json!({"domain": domain, "mode": "testing", "mx": ["mx.b.example.net"],
                   "max_age": DAY, "rua": "mailto:tlsrpt@b.example.net"}),
        )
        .await;
    assert_eq!(moved.status, StatusCode::CREATED, "{}", moved.json);
    assert_eq!(moved.json["tenant"], b.name.as_str());
    assert_eq!(moved.json["state"], "active");
    assert_eq!(moved.json["mode"], "testing");
    assert_eq!(moved.json["mx"], json!(["mx.b.example.net"]));
    assert_eq!(moved.json["rua"], "mailto:tlsrpt@b.example.net");
    assert_eq!(moved.json["version"], 2);
    let moved_id = next_policy_id(T0 + 60, created["pending_policy_id"].as_str());
    assert_eq!(moved.json["pending_policy_id"], moved_id.as_str());
    // The CNAME targets now carry the new tenant's label.
    assert_eq!(
        moved.json["records"][0]["target"],
        format!("_mta-sts.{domain}.t{}.{ZONE}", b.id).as_str()
    );
    // The old owner no longer sees it; its history continues under the new owner.
    let gone = h.get(&path, &a.owner).await;
    assert_eq!(gone.status, StatusCode::NOT_FOUND);
    let list = h.get("/api/v1/domains", &a.owner).await.json;
    assert!(
        !list["domains"]
            .as_array()
            .unwrap()
            .iter()
            .any(|d| d["domain"] == domain.as_str())
    );
    let history = h.get(&format!("{path}/versions"), &b.owner).await.json;
    assert_eq!(history["versions"].as_array().unwrap().len(), 2);
    // The claim was consumed: a new one has a new token.
    let fresh = claim(b.owner.clone()).await;
    assert_eq!(fresh.status, StatusCode::CREATED);
    assert_ne!(fresh.json["txt_value"], value.as_str());
    // It can be withdrawn; withdrawing twice is 404.
    let dropped = h
        .call(
            axum::http::Method::DELETE,
            &claim_path,
            Some(&b.owner),
            None,
        )
        .await;
    assert_eq!(dropped.status, StatusCode::NO_CONTENT);
    h.call(
        axum::http::Method::DELETE,
        &claim_path,
        Some(&b.owner),
        None,
    )
    .await
    .assert_error(StatusCode::NOT_FOUND, "not_found");

    // Back to a: a claim that expired proves nothing, even with its record published.
    let back = claim(a.owner.clone()).await;
    zone.add_txt(&txt_name, &[back.json["txt_value"].as_str().unwrap()]);
    h.advance(CLAIM_LIFETIME_SECONDS);
    let late = h
        .post("/api/v1/domains", &a.owner, new_domain(&domain))
        .await;
    assert_eq!(late.json, unknown.json);
    assert_eq!(h.get(&path, &b.owner).await.json["tenant"], b.name.as_str());
    h.cleanup().await;
}
