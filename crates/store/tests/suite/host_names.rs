//! Conformance cases of the name operations of `HostDb`: cancelling a removal, the node's
//! conditional delete, claims and moving a domain to the tenant that proved control of it.
//! A child of `host`, so it runs each case on SQLite and PostgreSQL with the same harness.

use super::*;

both_databases!(crate::host::run, crate::host::Kind;

    restore_cancels_a_removal,
    a_restored_domain_is_not_deleted,
    claims_are_bounded_and_expire,
    transfer_moves_a_domain,
);

fn none_version(policy_id: &str, now: i64) -> NewVersion {
    NewVersion {
        mode: "none".into(),
        mx: vec![],
        ..version(policy_id, now)
    }
}

pub(crate) async fn restore_cancels_a_removal(ctx: Ctx) {
    let db = &ctx.db;
    let (_, id) = hosted(db, "back.example").await;
    bumps(db, 0, async {
        conflict(db.restore_domain(id, version("early", 2000)).await);
        not_found(db.restore_domain(9999, version("x", 2000)).await);
    })
    .await;
    db.start_removal(id, 9000, none_version("removal", 3000))
        .await
        .unwrap();
    let restored = bumps(db, 1, db.restore_domain(id, version("back", 4000)))
        .await
        .unwrap();
    assert_eq!((restored.version, restored.mode.as_str()), (3, "enforce"));
    assert_eq!(restored.policy_id, "back");
    let domain = db.domain_by_id(id).await.unwrap().unwrap();
    assert_eq!(domain.state, DomainState::Active);
    assert_eq!(domain.remove_after, None);
    assert_eq!(domain.latest_version, 3);
    assert!(
        db.domains_due_for_removal(i64::MAX)
            .await
            .unwrap()
            .is_empty()
    );
    bumps(db, 0, async {
        conflict(db.restore_domain(id, version("again", 5000)).await)
    })
    .await;
    db.start_removal(id, 9000, none_version("removal2", 6000))
        .await
        .unwrap();
    // An id used before is refused, as for any version, and nothing changes.
    bumps(db, 0, async {
        conflict(db.restore_domain(id, version("back", 7000)).await)
    })
    .await;
    let domain = db.domain_by_id(id).await.unwrap().unwrap();
    assert_eq!(domain.state, DomainState::Removing);
    assert_eq!(db.versions(id).await.unwrap().len(), 4);
}

pub(crate) async fn a_restored_domain_is_not_deleted(ctx: Ctx) {
    let db = &ctx.db;
    let (_, id) = hosted(db, "kept.example").await;
    db.start_removal(id, 9000, none_version("removal", 3000))
        .await
        .unwrap();
    // Listed as due, then restored before the node deletes it.
    assert_eq!(db.domains_due_for_removal(9000).await.unwrap().len(), 1);
    db.restore_domain(id, version("back", 4000)).await.unwrap();
    assert!(!db.delete_removed_domain(id, 9000).await.unwrap());
    assert!(db.domain_by_id(id).await.unwrap().is_some());
    // Not yet due: kept too; due: deleted once.
    db.start_removal(id, 20_000, none_version("removal2", 5000))
        .await
        .unwrap();
    assert!(!db.delete_removed_domain(id, 19_999).await.unwrap());
    assert!(db.delete_removed_domain(id, 20_000).await.unwrap());
    assert_eq!(db.domain_by_id(id).await.unwrap(), None);
    assert!(!db.delete_removed_domain(id, 20_000).await.unwrap());
}

pub(crate) async fn claims_are_bounded_and_expire(ctx: Ctx) {
    let db = &ctx.db;
    let tenant = db.create_tenant("claimer").await.unwrap();
    let other = db.create_tenant("other").await.unwrap();
    let claim = bumps(
        db,
        0,
        db.open_claim(tenant.id, "Claimed.Example.", "tok1", 100, 200, 2),
    )
    .await
    .unwrap();
    assert_eq!(
        (
            claim.domain.as_str(),
            claim.token.as_str(),
            claim.expires_at
        ),
        ("claimed.example", "tok1", 200)
    );
    // Asking again returns the open claim unchanged.
    let again = db
        .open_claim(tenant.id, "claimed.example", "tok2", 150, 250, 2)
        .await
        .unwrap();
    assert_eq!(again, claim);
    // Another tenant has its own claim on the same name.
    let theirs = db
        .open_claim(other.id, "claimed.example", "tok3", 150, 250, 2)
        .await
        .unwrap();
    assert_eq!(theirs.token, "tok3");
    db.open_claim(tenant.id, "second.example", "tok4", 150, 300, 2)
        .await
        .unwrap();
    conflict(
        db.open_claim(tenant.id, "third.example", "tok5", 150, 300, 2)
            .await,
    );
    assert_eq!(
        db.open_claim_of(tenant.id, "claimed.example", 199)
            .await
            .unwrap(),
        Some(claim.clone())
    );
    assert_eq!(
        db.open_claim_of(tenant.id, "claimed.example", 200)
            .await
            .unwrap(),
        None
    );
    // Once the first expired, it is purged and there is room again.
    let third = db
        .open_claim(tenant.id, "third.example", "tok5", 200, 400, 2)
        .await
        .unwrap();
    assert_eq!(third.token, "tok5");
    let renewed = db
        .open_claim(tenant.id, "claimed.example", "tok6", 300, 500, 3)
        .await
        .unwrap();
    assert_eq!(renewed.token, "tok6");
    assert!(db.delete_claim(tenant.id, "claimed.example").await.unwrap());
    assert!(!db.delete_claim(tenant.id, "claimed.example").await.unwrap());
    // The other tenant's tok3 (expired at 250); tok4 went when the tenant asked at 300.
    assert_eq!(db.purge_claims(300).await.unwrap(), 1);
    not_found(db.open_claim(9999, "x.example", "tok", 1, 2, 2).await);
    invalid(
        db.open_claim(tenant.id, "x.example", &"t".repeat(65), 1, 2, 2)
            .await,
    );
}

pub(crate) async fn transfer_moves_a_domain(ctx: Ctx) {
    let db = &ctx.db;
    let (old_owner, id) = hosted(db, "moving.example").await;
    let new_owner = db.create_tenant("new owner").await.unwrap();
    db.set_rua(id, Some("mailto:old@moving.example"))
        .await
        .unwrap();
    db.set_verification(id, "{}", 1500).await.unwrap();
    db.put_certificate(cert("moving.example", 1)).await.unwrap();
    db.start_removal(id, 9000, none_version("removal", 2000))
        .await
        .unwrap();
    db.open_claim(new_owner.id, "moving.example", "tok", 2500, 9999, 10)
        .await
        .unwrap();
    bumps(db, 0, async {
        conflict(
            db.transfer_domain(id, new_owner.id, old_owner, None, true, version("x", 3000))
                .await,
        );
        not_found(
            db.transfer_domain(
                9999,
                old_owner,
                new_owner.id,
                None,
                true,
                version("x", 3000),
            )
            .await,
        );
    })
    .await;
    let moved = bumps(
        db,
        1,
        db.transfer_domain(
            id,
            old_owner,
            new_owner.id,
            Some("mailto:new@moving.example"),
            false,
            version("moved", 3000),
        ),
    )
    .await
    .unwrap();
    assert_eq!(moved.version, 3);
    let domain = db.domain_by_id(id).await.unwrap().unwrap();
    assert_eq!(domain.tenant_id, new_owner.id);
    assert_eq!(domain.state, DomainState::Active);
    assert_eq!(domain.remove_after, None);
    assert_eq!(domain.rua.as_deref(), Some("mailto:new@moving.example"));
    assert!(!domain.reports_to_service);
    assert_eq!(domain.verification, None);
    assert_eq!(domain.verified_at, None);
    // The history and the certificate stay; the claim is consumed.
    assert_eq!(db.versions(id).await.unwrap().len(), 3);
    assert!(db.certificate("moving.example").await.unwrap().is_some());
    assert_eq!(
        db.open_claim_of(new_owner.id, "moving.example", 3000)
            .await
            .unwrap(),
        None
    );
    assert_eq!(db.list_domains(Some(old_owner)).await.unwrap(), vec![]);
    // Moving it again from the old owner is refused.
    conflict(
        db.transfer_domain(id, old_owner, new_owner.id, None, true, version("y", 4000))
            .await,
    );
}
