//! Conformance cases of the tenancy operations of `HostDb`: tenants, users, API tokens,
//! sessions and shared settings. A child of `host`, run on SQLite and PostgreSQL.

use super::*;

both_databases!(crate::host::run, crate::host::Kind;
    tenants,
    users,
    tokens,
    sessions,
    session_times_and_settings,
);

pub(crate) async fn tenants(ctx: Ctx) {
    let db = &ctx.db;
    // Tenants are bookkeeping (nothing is served until a domain is added): no bump.
    let beta = bumps(db, 0, db.create_tenant("Beta GmbH")).await.unwrap();
    let alpha = bumps(db, 0, db.create_tenant("alpha")).await.unwrap();
    assert_eq!(beta.name, "Beta GmbH");
    assert!(beta.created_at > 1_700_000_000, "created_at is the clock");
    assert_ne!(alpha.id, beta.id);

    bumps(db, 0, async {
        assert_eq!(db.tenant(beta.id).await.unwrap(), Some(beta.clone()));
        assert_eq!(
            db.tenant_by_name("alpha").await.unwrap(),
            Some(alpha.clone())
        );
        assert_eq!(db.tenant(9999).await.unwrap(), None);
        assert_eq!(db.tenant_by_name("gamma").await.unwrap(), None);
        assert_eq!(
            db.list_tenants().await.unwrap(),
            vec![beta.clone(), alpha.clone()],
            "sorted by name (byte order)"
        );
    })
    .await;

    bumps(db, 0, async {
        conflict(db.create_tenant("alpha").await);
        invalid(db.create_tenant("").await);
        invalid(db.create_tenant("line\nbreak").await);
    })
    .await;
}

pub(crate) async fn users(ctx: Ctx) {
    let db = &ctx.db;
    let tenant = db.create_tenant("t").await.unwrap();
    // Users are bookkeeping: no bump.
    let owner = bumps(
        db,
        0,
        db.create_user(NewUser {
            tenant_id: Some(tenant.id),
            email: "Owner@Example.COM".into(),
            password_hash: "$argon2id$v=19$m=19456,t=2,p=1$salt$hash".into(),
            role: Role::Owner,
        }),
    )
    .await
    .unwrap();
    assert_eq!(owner.email, "owner@example.com");
    assert_eq!(owner.role, Role::Owner);
    assert_eq!(owner.tenant_id, Some(tenant.id));

    for (email, role) in [
        ("admin@x.example", Role::Admin),
        ("ro@x.example", Role::ReadOnly),
    ] {
        let user = db
            .create_user(NewUser {
                tenant_id: None,
                email: email.into(),
                password_hash: "h".into(),
                role,
            })
            .await
            .unwrap();
        assert_eq!(db.user(user.id).await.unwrap(), Some(user.clone()));
        assert_eq!(user.role, role);
        assert_eq!(user.tenant_id, None);
    }

    bumps(db, 0, async {
        assert_eq!(
            db.user_by_email("OWNER@example.com").await.unwrap(),
            Some(owner.clone())
        );
        assert_eq!(db.user(owner.id).await.unwrap(), Some(owner.clone()));
        assert_eq!(db.user_by_email("nobody@example.com").await.unwrap(), None);
        assert_eq!(db.user(9999).await.unwrap(), None);

        let mut again = NewUser {
            tenant_id: Some(tenant.id),
            email: "owner@EXAMPLE.com".into(),
            password_hash: "h".into(),
            role: Role::ReadOnly,
        };
        conflict(db.create_user(again.clone()).await);
        again.email = "other@example.com".into();
        again.tenant_id = Some(9999);
        not_found(db.create_user(again.clone()).await);
        again.email = "not-an-address".into();
        invalid(db.create_user(again.clone()).await);
        again.email = "fine@example.com".into();
        again.password_hash = String::new();
        invalid(db.create_user(again).await);
    })
    .await;
}

pub(crate) async fn tokens(ctx: Ctx) {
    let db = &ctx.db;
    let tenant = db.create_tenant("t").await.unwrap();
    // Tokens are bookkeeping (every request looks its token up afresh): no bump.
    let admin = bumps(
        db,
        0,
        db.create_token(NewToken {
            tenant_id: None,
            role: Role::Admin,
            label: "bootstrap".into(),
            token_hash: "hash-admin".into(),
            expires_at: None,
        }),
    )
    .await
    .unwrap();
    let owner = db
        .create_token(NewToken {
            tenant_id: Some(tenant.id),
            role: Role::Owner,
            label: "ci".into(),
            token_hash: "hash-owner".into(),
            expires_at: Some(7000),
        })
        .await
        .unwrap();
    assert_eq!(admin.last_used, None);
    // Expiry is stored as given and read back by every lookup.
    assert_eq!((admin.expires_at, owner.expires_at), (None, Some(7000)));
    assert!(owner.is_live(6999) && !owner.is_live(7000) && admin.is_live(i64::MAX));
    assert_eq!(db.token(owner.id).await.unwrap(), Some(owner.clone()));
    assert_eq!(db.token(9999).await.unwrap(), None);
    assert_eq!(owner.tenant_id, Some(tenant.id));
    assert_eq!(owner.label, "ci");

    bumps(db, 0, async {
        assert_eq!(
            db.token_by_hash("hash-owner").await.unwrap(),
            Some(owner.clone())
        );
        assert_eq!(db.token_by_hash("nope").await.unwrap(), None);
        assert_eq!(db.count_admin_tokens().await.unwrap(), 1);
        assert_eq!(
            db.tokens(None).await.unwrap(),
            vec![admin.clone(), owner.clone()]
        );
        assert_eq!(
            db.tokens(Some(tenant.id)).await.unwrap(),
            vec![owner.clone()]
        );

        // Use is bookkeeping: recorded, never moved backwards, no generation bump.
        db.touch_token(owner.id, 5000).await.unwrap();
        db.touch_token(owner.id, 4000).await.unwrap();
        let touched = db.token_by_hash("hash-owner").await.unwrap().unwrap();
        assert_eq!(touched.last_used, Some(5000));
        not_found(db.touch_token(9999, 1).await);

        conflict(
            db.create_token(NewToken {
                tenant_id: None,
                role: Role::ReadOnly,
                label: "dup".into(),
                token_hash: "hash-admin".into(),
                expires_at: None,
            })
            .await,
        );
        not_found(
            db.create_token(NewToken {
                tenant_id: Some(9999),
                role: Role::ReadOnly,
                label: "orphan".into(),
                token_hash: "hash-orphan".into(),
                expires_at: None,
            })
            .await,
        );
    })
    .await;

    assert!(bumps(db, 0, db.delete_token(admin.id)).await.unwrap());
    assert_eq!(db.token_by_hash("hash-admin").await.unwrap(), None);
    assert!(!bumps(db, 0, db.delete_token(admin.id)).await.unwrap());
    assert_eq!(db.count_admin_tokens().await.unwrap(), 0);
}

pub(crate) async fn sessions(ctx: Ctx) {
    let db = &ctx.db;
    let user = db
        .create_user(NewUser {
            tenant_id: None,
            email: "a@example.com".into(),
            password_hash: "h".into(),
            role: Role::Admin,
        })
        .await
        .unwrap();
    let session = |id: &str, expires_at| Session {
        id_hash: id.into(),
        user_id: user.id,
        csrf_token: format!("csrf-{id}"),
        expires_at,
    };
    // Sessions are bookkeeping: none of this moves the generation.
    bumps(db, 0, async {
        db.create_session(session("s1", 100)).await.unwrap();
        db.create_session(session("s2", 200)).await.unwrap();
        db.create_session(session("s3", 300)).await.unwrap();
        assert_eq!(db.session("s2").await.unwrap(), Some(session("s2", 200)));
        assert_eq!(db.session("nope").await.unwrap(), None);
        conflict(db.create_session(session("s1", 999)).await);
        not_found(
            db.create_session(Session {
                user_id: 9999,
                ..session("s4", 1)
            })
            .await,
        );

        assert!(db.delete_session("s3").await.unwrap());
        assert!(!db.delete_session("s3").await.unwrap());
        assert_eq!(db.purge_sessions(150).await.unwrap(), 1);
        assert_eq!(db.session("s1").await.unwrap(), None);
        assert!(db.session("s2").await.unwrap().is_some());
        assert_eq!(
            db.purge_sessions(200).await.unwrap(),
            1,
            "expiry is inclusive"
        );
    })
    .await;
}

pub(crate) async fn session_times_and_settings(ctx: Ctx) {
    let db = &ctx.db;
    let mut users = Vec::new();
    for email in ["a@example.com", "b@example.com"] {
        let user = db
            .create_user(NewUser {
                tenant_id: None,
                email: email.into(),
                password_hash: "h".into(),
                role: Role::Admin,
            })
            .await
            .unwrap();
        users.push(user.id);
    }
    let session = |id: &str, user_id| Session {
        id_hash: id.into(),
        user_id,
        csrf_token: format!("csrf-{id}"),
        expires_at: 10_000,
    };
    let times = |at: i64, seen: i64| SessionTimes {
        created_at: at,
        last_seen: seen,
    };
    bumps(db, 0, async {
        db.start_session(&session("a1", users[0]), 100)
            .await
            .unwrap();
        db.start_session(&session("a2", users[0]), 200)
            .await
            .unwrap();
        db.start_session(&session("b1", users[1]), 300)
            .await
            .unwrap();
        conflict(db.start_session(&session("a1", users[1]), 1).await);
        not_found(db.start_session(&session("x", 9999), 1).await);
        assert_eq!(
            db.session_with_times("a1").await.unwrap(),
            Some((session("a1", users[0]), times(100, 100)))
        );
        assert_eq!(db.session_with_times("nope").await.unwrap(), None);
        // Touching moves last_seen forward only.
        assert!(db.touch_session("a1", 150).await.unwrap());
        assert!(!db.touch_session("a1", 120).await.unwrap());
        assert!(!db.touch_session("nope", 999).await.unwrap());
        assert_eq!(
            db.session_with_times("a1").await.unwrap().unwrap().1,
            times(100, 150)
        );
        // Idle sessions: last used before 160 (a1 at 150) go.
        assert_eq!(db.purge_idle_sessions(160).await.unwrap(), 1);
        assert_eq!(db.session_with_times("a1").await.unwrap(), None);
        // Log out everywhere: every session of that user, no one else's.
        db.start_session(&session("a3", users[0]), 400)
            .await
            .unwrap();
        assert_eq!(db.delete_user_sessions(users[0]).await.unwrap(), 2);
        assert_eq!(db.session("a2").await.unwrap(), None);
        assert!(db.session("b1").await.unwrap().is_some());

        // The first value stored wins, for every instance (every node).
        let other = HostDb::open(&ctx.url).await.unwrap();
        assert_eq!(db.setting_or_insert("k", "first").await.unwrap(), "first");
        assert_eq!(
            other.setting_or_insert("k", "second").await.unwrap(),
            "first"
        );
        assert_eq!(db.setting_or_insert("k2", "v").await.unwrap(), "v");
        assert!(matches!(
            db.setting_or_insert("", "v").await,
            Err(HostDbError::Invalid(_))
        ));
        other.close().await;
    })
    .await;
}
