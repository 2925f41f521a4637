//! Alerts in `HostDb`: settings (the webhook secret sealed, kept when not given, cleared with
//! the URL), one open alert per (tenant, domain, kind, key), notifications queued with the
//! alert and retried or given up, and the delegation records' memory; SQLite and PostgreSQL.

use mtasts_proto::alerts::rules::RecordMemory;
use mtasts_store::host::{HostDbError, NewAlert, NewAlertSettings, Sealer, SecretKey};

use super::Ctx;

both_databases!(crate::host::run, crate::host::Kind;
    alert_settings_round_trip_and_seal_the_secret,
    one_open_alert_per_key_with_its_notifications,
    deliveries_are_retried_then_given_up,
    delegation_records_are_remembered);

fn settings(url: Option<&str>, secret: Option<&str>) -> NewAlertSettings {
    NewAlertSettings {
        webhook_url: url.map(str::to_owned),
        webhook_secret: secret.map(str::to_owned),
        email_to: vec!["Ops@Example.com".into(), "noc@example.com".into()],
        failure_permille: 50,
        min_sessions: 20,
    }
}

fn alert<'a>(tenant_id: i64, key: &'a str) -> NewAlert<'a> {
    NewAlert {
        tenant_id,
        domain: "example.com",
        kind: "uncovered-mx",
        key,
        title: "mx3 is not in the policy",
        what: "senders reached mx3",
        fix: "add mx: mx3",
        since: 1000,
    }
}

async fn alert_settings_round_trip_and_seal_the_secret(ctx: Ctx) {
    let tenant = ctx.db.create_tenant("acme").await.unwrap();
    assert_eq!(ctx.db.alert_settings(tenant.id).await.unwrap(), None);
    let key = SecretKey::from_hex(&"11".repeat(32)).unwrap();
    let db = ctx.db.clone().with_secret_keys(Sealer::new(&key, &[]));
    let stored = db
        .put_alert_settings(
            tenant.id,
            &settings(Some("https://hooks.example/x"), Some("s3cret")),
            10,
        )
        .await
        .unwrap();
    assert_eq!(stored.webhook_secret.as_deref(), Some("s3cret"));
    assert_eq!(stored.email_to, vec!["ops@example.com", "noc@example.com"]);
    // At rest the secret is sealed.
    let raw: String = match &ctx.raw {
        super::Raw::Sqlite(pool) => {
            sqlx::query_scalar("SELECT webhook_secret FROM host_alert_settings")
                .fetch_one(pool)
                .await
                .unwrap()
        }
        super::Raw::Postgres(pool) => {
            sqlx::query_scalar("SELECT webhook_secret FROM host_alert_settings")
                .fetch_one(pool)
                .await
                .unwrap()
        }
    };
    assert!(raw.starts_with("mtasts-sealed:"), "{raw}");
    assert!(!raw.contains("s3cret"));
    // Without the key it cannot be read, and says so.
    assert!(matches!(
        ctx.db.alert_settings(tenant.id).await,
        Err(HostDbError::Sealed(_))
    ));
    // Rotating the key reseals it: afterwards the new key alone opens it.
    let new_key = SecretKey::from_hex(&"22".repeat(32)).unwrap();
    let rotating = ctx
        .db
        .clone()
        .with_secret_keys(Sealer::new(&new_key, std::slice::from_ref(&key)));
    assert!(rotating.reseal_secrets().await.unwrap() >= 1);
    let only_new = ctx.db.clone().with_secret_keys(Sealer::new(&new_key, &[]));
    assert_eq!(
        only_new
            .alert_settings(tenant.id)
            .await
            .unwrap()
            .unwrap()
            .webhook_secret
            .as_deref(),
        Some("s3cret")
    );
    let db = only_new;
    // Not given: kept; no URL: cleared.
    let kept = db
        .put_alert_settings(
            tenant.id,
            &settings(Some("https://hooks.example/y"), None),
            11,
        )
        .await
        .unwrap();
    assert_eq!(kept.webhook_secret.as_deref(), Some("s3cret"));
    assert_eq!(kept.webhook_url.as_deref(), Some("https://hooks.example/y"));
    let cleared = db
        .put_alert_settings(tenant.id, &settings(None, None), 12)
        .await
        .unwrap();
    assert_eq!((cleared.webhook_url, cleared.webhook_secret), (None, None));
    // Bounds.
    let mut bad = settings(None, None);
    bad.failure_permille = 0;
    assert!(matches!(
        db.put_alert_settings(tenant.id, &bad, 13).await,
        Err(HostDbError::Invalid(_))
    ));
    let mut bad = settings(None, None);
    bad.email_to = vec!["x@example.com".into(); 11];
    assert!(matches!(
        db.put_alert_settings(tenant.id, &bad, 13).await,
        Err(HostDbError::Invalid(_))
    ));
    let mut bad = settings(None, None);
    bad.email_to = vec!["not an address".into()];
    assert!(matches!(
        db.put_alert_settings(tenant.id, &bad, 13).await,
        Err(HostDbError::Invalid(_))
    ));
    assert!(matches!(
        db.put_alert_settings(9999, &settings(None, None), 13).await,
        Err(HostDbError::NotFound)
    ));
}

async fn one_open_alert_per_key_with_its_notifications(ctx: Ctx) {
    let a = ctx.db.create_tenant("a").await.unwrap();
    let b = ctx.db.create_tenant("b").await.unwrap();
    let opened = ctx
        .db
        .open_alert(alert(a.id, "mx3.example.com"), 2000, &["webhook", "email"])
        .await
        .unwrap();
    assert_eq!(opened.first_seen, 2000);
    assert_eq!(opened.notified_at, Some(2000));
    assert_eq!(opened.resolved_at, None);
    // A second open one for the same key is a conflict; another key or tenant is not.
    assert!(matches!(
        ctx.db
            .open_alert(alert(a.id, "mx3.example.com"), 2001, &[])
            .await,
        Err(HostDbError::Conflict(_))
    ));
    let other_key = ctx
        .db
        .open_alert(alert(a.id, "mx4.example.com"), 2001, &[])
        .await
        .unwrap();
    assert_eq!(other_key.notified_at, None);
    ctx.db
        .open_alert(alert(b.id, "mx3.example.com"), 2001, &["webhook"])
        .await
        .unwrap();
    let deliveries = ctx.db.alert_deliveries(opened.id).await.unwrap();
    let shape: Vec<(&str, &str, &str)> = deliveries
        .iter()
        .map(|d| (d.channel.as_str(), d.event.as_str(), d.state.as_str()))
        .collect();
    assert_eq!(
        shape,
        vec![
            ("webhook", "opened", "pending"),
            ("email", "opened", "pending")
        ]
    );
    // Keeping refreshes; a reminder queues one more per channel.
    let mut newer = alert(a.id, "mx3.example.com");
    newer.what = "senders reached mx3 again";
    ctx.db
        .keep_alert(opened.id, newer, 3000, false, &["webhook"])
        .await
        .unwrap();
    let kept = ctx.db.alert(opened.id).await.unwrap().unwrap();
    assert_eq!((kept.last_seen, kept.notified_at), (3000, Some(2000)));
    assert_eq!(kept.what, "senders reached mx3 again");
    ctx.db
        .keep_alert(opened.id, newer, 90_000, true, &["webhook"])
        .await
        .unwrap();
    assert_eq!(
        ctx.db.alert(opened.id).await.unwrap().unwrap().notified_at,
        Some(90_000)
    );
    assert_eq!(ctx.db.alert_deliveries(opened.id).await.unwrap().len(), 3);
    // Each tenant sees its own.
    assert_eq!(ctx.db.open_alerts(a.id).await.unwrap().len(), 2);
    assert_eq!(ctx.db.open_alerts(b.id).await.unwrap().len(), 1);
    assert_eq!(ctx.db.alerts(Some(b.id), 100).await.unwrap().len(), 1);
    assert_eq!(ctx.db.alerts(None, 100).await.unwrap().len(), 3);
    // Resolving once; after it the same key opens a new alert.
    assert!(
        ctx.db
            .resolve_alert(opened.id, 95_000, &["email"])
            .await
            .unwrap()
    );
    assert!(
        !ctx.db
            .resolve_alert(opened.id, 95_001, &["email"])
            .await
            .unwrap()
    );
    let events: Vec<String> = ctx
        .db
        .alert_deliveries(opened.id)
        .await
        .unwrap()
        .into_iter()
        .map(|d| d.event)
        .collect();
    assert_eq!(events, vec!["opened", "opened", "reminder", "resolved"]);
    let again = ctx
        .db
        .open_alert(alert(a.id, "mx3.example.com"), 96_000, &[])
        .await
        .unwrap();
    assert_ne!(again.id, opened.id);
    // The list shows open alerts first, then newest first.
    let listed: Vec<i64> = ctx
        .db
        .alerts(Some(a.id), 100)
        .await
        .unwrap()
        .iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(listed, vec![again.id, other_key.id, opened.id]);
    // Long texts are cut, not refused.
    let long = "x".repeat(10_000);
    let mut big = alert(a.id, "big");
    big.what = &long;
    let stored = ctx.db.open_alert(big, 97_000, &[]).await.unwrap();
    assert_eq!(stored.what.len(), mtasts_store::host::MAX_ALERT_TEXT_BYTES);
}

async fn deliveries_are_retried_then_given_up(ctx: Ctx) {
    let a = ctx.db.create_tenant("a").await.unwrap();
    let opened = ctx
        .db
        .open_alert(alert(a.id, "k"), 100, &["webhook", "email"])
        .await
        .unwrap();
    let due = ctx.db.due_deliveries(100, 10).await.unwrap();
    assert_eq!(due.len(), 2);
    assert_eq!(due[0].1.id, opened.id);
    let (webhook, email) = (due[0].0.id, due[1].0.id);
    ctx.db
        .delivery_failed(webhook, "HTTP 500", Some(130), 100)
        .await
        .unwrap();
    ctx.db.delivery_sent(email, 100).await.unwrap();
    assert!(ctx.db.due_deliveries(129, 10).await.unwrap().is_empty());
    let due = ctx.db.due_deliveries(130, 10).await.unwrap();
    assert_eq!(due.len(), 1);
    assert_eq!(due[0].0.attempts, 1);
    assert_eq!(due[0].0.last_error.as_deref(), Some("HTTP 500"));
    ctx.db
        .delivery_failed(webhook, "HTTP 500 again", None, 131)
        .await
        .unwrap();
    assert!(
        ctx.db
            .due_deliveries(i64::MAX, 10)
            .await
            .unwrap()
            .is_empty()
    );
    let states: Vec<(String, u32, Option<i64>)> = ctx
        .db
        .alert_deliveries(opened.id)
        .await
        .unwrap()
        .into_iter()
        .map(|d| (d.state, d.attempts, d.done_at))
        .collect();
    assert_eq!(
        states,
        vec![
            ("failed".to_owned(), 2, Some(131)),
            ("sent".to_owned(), 0, Some(100))
        ]
    );
    // A sent delivery is not failed afterwards.
    ctx.db
        .delivery_failed(email, "late", None, 200)
        .await
        .unwrap();
    assert_eq!(
        ctx.db.alert_deliveries(opened.id).await.unwrap()[1].state,
        "sent"
    );
}

async fn delegation_records_are_remembered(ctx: Ctx) {
    assert!(
        ctx.db
            .alert_records("example.com")
            .await
            .unwrap()
            .is_empty()
    );
    let memory = RecordMemory::default()
        .after_check(true, 100, "", "")
        .after_check(false, 200, "points elsewhere", "publish the CNAME");
    ctx.db
        .put_alert_record("Example.COM.", "mta-sts.example.com", &memory)
        .await
        .unwrap();
    ctx.db
        .put_alert_record(
            "example.com",
            "_mta-sts.example.com",
            &RecordMemory::default(),
        )
        .await
        .unwrap();
    let got = ctx.db.alert_records("example.com").await.unwrap();
    assert_eq!(
        got,
        vec![
            ("_mta-sts.example.com".to_owned(), RecordMemory::default()),
            ("mta-sts.example.com".to_owned(), memory.clone()),
        ]
    );
    let healed = memory.after_check(true, 300, "", "");
    ctx.db
        .put_alert_record("example.com", "mta-sts.example.com", &healed)
        .await
        .unwrap();
    assert_eq!(
        ctx.db.alert_records("example.com").await.unwrap()[1].1,
        healed
    );
}
