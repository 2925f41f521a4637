//! The alerts in the dashboard (`GET /alerts`, the settings form) and the API
//! (`/api/v1/alerts`, `/api/v1/alert-settings`), each tenant seeing only its own.

use axum::http::{Method, StatusCode};
use mtasts_report::intake::Intake;
use mtasts_store::host::{NewDomain, NewVersion};
use mtasts_store::reports::ReportDb;
use serde_json::json;

use crate::dashboard::harness::{Harness, PASSWORD};
use crate::support::{api, app};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alerts_are_listed_in_the_dashboard_and_the_api_per_tenant() {
    let Some(samples) = mtasts_testkit::services::samples_dir() else {
        return;
    };
    let h = Harness::start().await;
    let db = h.state.db.clone();
    let reports = ReportDb::open(&h.db_url).await.unwrap();
    let (domain, version) = db
        .create_domain(
            NewDomain {
                tenant_id: h.alpha.id,
                name: "company-y.example".into(),
                rua: None,
                reports_to_service: true,
            },
            NewVersion {
                policy_id: "1".into(),
                mode: "testing".into(),
                mx: vec!["mx1.mail.company-y.example".into()],
                max_age: 86_400,
                body: "version: STSv1\r\nmode: testing\r\nmx: mx1.mail.company-y.example\r\nmax_age: 86400\r\n".into(),
                now: 1_459_000_000,
            },
        )
        .await
        .unwrap();
    db.publish_version(domain.id, version.version, 1_459_000_000)
        .await
        .unwrap();
    let bytes = std::fs::read(samples.join("tlsrpt/parsedmarc/rfc8460.json")).unwrap();
    Intake::new(reports.clone(), Default::default())
        .input(&bytes, "https", 1_459_594_800)
        .await
        .unwrap();
    let alerts = mtasts_host::alerts::Alerts::new(
        db.clone(),
        reports,
        mtasts_host::alerts::AlertConfig {
            from: "mtasts@provider.test".into(),
            interval: std::time::Duration::from_secs(300),
        },
        std::sync::Arc::new(mtasts_host::alerts::webhook::HttpWebhook::new(
            std::sync::Arc::new(crate::support::dns::resolver(
                &h.net,
                std::time::Duration::from_secs(1),
            )),
            std::sync::Arc::new(rustls::RootCertStore::empty()),
            false,
        )),
        None,
    )
    .with_clock(std::sync::Arc::new(|| 1_459_598_400));
    // mx1 is in the policy; mx2 and mx-backup are not: 6 alerts.
    assert_eq!(alerts.run_once().await.unwrap().opened, 6);

    // The dashboard: alpha's owner sees the alerts with since and the fix; beta's sees none.
    let alpha = h.login(&h.alpha.owner_email, PASSWORD).await;
    let page = h.get("/alerts", &alpha).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("<h1>Alerts</h1>"), "{}", page.body);
    assert!(
        page.body
            .contains("mx-backup.mail.company-y.example is not in the MTA-STS policy"),
        "{}",
        page.body
    );
    assert!(page.body.contains("2016-04-01"));
    assert!(
        page.body
            .contains("add mx: mx-backup.mail.company-y.example")
    );
    assert!(page.body.contains(r#"data-kind="uncovered-mx""#));
    assert!(page.body.contains("Alert settings of alpha"));
    let beta = h.login(&h.beta.owner_email, PASSWORD).await;
    let page = h.get("/alerts", &beta).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(!page.body.contains("company-y.example"), "{}", page.body);
    assert!(page.body.contains("No alerts"));

    // The settings form: a webhook without a secret gets one generated, shown once.
    let saved = h
        .post(
            "/alerts/settings",
            &alpha,
            &[
                ("webhook_url", "https://hooks.example.com/mtasts"),
                ("webhook_secret", ""),
                ("email_to", "ops@company-y.example"),
                ("failure_percent", "2.5"),
                ("min_sessions", "100"),
            ],
        )
        .await;
    assert_eq!(saved.status, StatusCode::OK, "{}", saved.body);
    assert!(
        saved.body.contains("Webhook secret (shown once"),
        "{}",
        saved.body
    );
    let stored = db.alert_settings(h.alpha.id).await.unwrap().unwrap();
    assert_eq!(stored.failure_permille, 25);
    assert_eq!(stored.min_sessions, 100);
    assert_eq!(stored.webhook_secret.as_deref().map(str::len), Some(64));
    assert!(
        saved
            .body
            .contains(stored.webhook_secret.as_deref().unwrap())
    );
    let again = h.get("/alerts", &alpha).await;
    assert!(
        !again
            .body
            .contains(stored.webhook_secret.as_deref().unwrap())
    );
    // A bad URL goes back to the form.
    let bad = h
        .post(
            "/alerts/settings",
            &alpha,
            &[("webhook_url", "ftp://x.example/")],
        )
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(bad.body.contains("webhook_url"), "{}", bad.body);
    // Without the session's CSRF token: refused.
    let mut stranger = alpha.clone();
    stranger.csrf = "nope".into();
    let forged = h
        .post("/alerts/settings", &stranger, &[("webhook_url", "")])
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);

    // The API, served beside it.
    let api_server = app::serve(&h.net, mtasts_host::api::router(h.state.clone())).await;
    let addr = api_server.addr;
    let alpha_token = api::create_token(addr, &h.admin_token, "alpha", "owner", "a").await;
    let beta_token = api::create_token(addr, &h.admin_token, "beta", "readonly", "b").await;
    let (status, body) = api::call(addr, Method::GET, "/api/v1/alerts", &alpha_token, None).await;
    assert_eq!(status, StatusCode::OK);
    let listed = body["alerts"].as_array().unwrap();
    assert_eq!(listed.len(), 6, "{body}");
    assert!(
        listed
            .iter()
            .all(|a| a["tenant"] == "alpha" && a["state"] == "open")
    );
    let (_, body) = api::call(addr, Method::GET, "/api/v1/alerts", &beta_token, None).await;
    assert_eq!(body["alerts"], json!([]));
    let (_, body) = api::call(addr, Method::GET, "/api/v1/alerts", &h.admin_token, None).await;
    assert_eq!(body["alerts"].as_array().unwrap().len(), 6);
    let (status, body) = api::call(
        addr,
        Method::GET,
        "/api/v1/alert-settings",
        &alpha_token,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["webhook_secret_set"], true);
    assert!(body.get("webhook_secret").is_none());
    assert_eq!(body["failure_permille"], 25);
    // A read-only token cannot change settings; an owner can; another tenant's are not found.
    let change = json!({"webhook_url": "https://hooks.example.com/b", "email_to": []});
    let (status, _) = api::call(
        addr,
        Method::PUT,
        "/api/v1/alert-settings",
        &beta_token,
        Some(change.clone()),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, body) = api::call(
        addr,
        Method::PUT,
        "/api/v1/alert-settings?tenant=beta",
        &alpha_token,
        Some(change.clone()),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    let (status, body) = api::call(
        addr,
        Method::PUT,
        "/api/v1/alert-settings?tenant=beta",
        &h.admin_token,
        Some(change),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["new_webhook_secret"].as_str().map(str::len), Some(64));
    let (status, body) = api::call(
        addr,
        Method::PUT,
        "/api/v1/alert-settings",
        &alpha_token,
        Some(json!({"webhook_url": "http://10.0.0.1/x", "bogus": 1})),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
}
