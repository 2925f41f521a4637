//! `mtasts serve` end to end: a report for yesterday stored in the serve database, a tenant's
//! webhook set through the API, and the node's alert rounds delivering the signed POST.

use std::net::SocketAddr;
use std::time::Duration;

use axum::http::{Method, StatusCode};
use mtasts_host::config::ServeConfig;
use mtasts_host::serve::Serve;
use mtasts_report::intake::Intake;
use mtasts_store::reports::ReportDb;
use serde_json::json;

use super::harness::Hook;
use crate::support::api;

/// A TLS report for yesterday: `mx9.elsewhere.example` is not in the policy.
pub(crate) fn report_for_yesterday() -> Vec<u8> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let yesterday = now - now % 86_400 - 86_400;
    let day = time::OffsetDateTime::from_unix_timestamp(yesterday).unwrap();
    let date = format!(
        "{:04}-{:02}-{:02}",
        day.year(),
        u8::from(day.month()),
        day.day()
    );
    json!({
        "organization-name": "Sender Inc.",
        "date-range": {
            "start-datetime": format!("{date}T00:00:00Z"),
            "end-datetime": format!("{date}T23:59:59Z")
        },
        "contact-info": "tlsrpt@sender.example",
        "report-id": format!("serve-alert-{date}"),
        "policies": [{
            "policy": {
                "policy-type": "sts",
                "policy-string": ["version: STSv1", "mode: testing",
                    "mx: mx1.company-y.example", "max_age: 86400"],
                "policy-domain": "company-y.example"
            },
            "summary": {"total-successful-session-count": 90, "total-failure-session-count": 10},
            "failure-details": [{
                "result-type": "validation-failure",
                "sending-mta-ip": "198.51.100.7",
                "receiving-mx-hostname": "mx9.elsewhere.example",
                "failed-session-count": 10
            }]
        }]
    })
    .to_string()
    .into_bytes()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_delivers_a_signed_webhook_for_a_failing_mx() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite:{}", dir.path().join("serve.db").display());
    let any: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let config = ServeConfig {
        database: Some(url.clone()),
        data_dir: dir.path().to_path_buf(),
        zone: "hosted.test".into(),
        public_ip: vec!["127.0.0.1".parse().unwrap()],
        https_listen: vec![any],
        http_listen: vec![any],
        dns_listen: vec![any],
        smtp_listen: vec![any],
        api_listen: any,
        acme_directory: String::new(),
        dns: vec!["127.0.0.1:9".parse().unwrap()],
        password_iterations: 1000,
        alert_allow_private_targets: true,
        alert_interval: 1,
        ..ServeConfig::default()
    };
    let serve = Serve::start(config).await.unwrap();
    let admin = serve.admin_token().unwrap().to_owned();
    let addr = serve.addrs().api;
    api::create_tenant(addr, &admin, "acme").await;
    let owner = api::create_token(addr, &admin, "acme", "owner", "owner").await;
    let (status, body) = api::call(
        addr,
        Method::POST,
        "/api/v1/domains",
        &owner,
        Some(json!({"domain": "company-y.example", "mode": "testing",
            "mx": ["mx1.company-y.example"]})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let hook = Hook::start().await;
    let (status, body) = api::call(
        addr,
        Method::PUT,
        "/api/v1/alert-settings",
        &owner,
        Some(json!({"webhook_url": hook.url()})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let secret = body["new_webhook_secret"].as_str().unwrap().to_owned();
    let reports = ReportDb::open(&url).await.unwrap();
    Intake::new(reports, Default::default())
        .input(&report_for_yesterday(), "https", 0)
        .await
        .unwrap();

    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let uncovered = loop {
        let found = hook.received().into_iter().find(|r| {
            serde_json::from_slice::<serde_json::Value>(&r.body).unwrap()["alert"]["kind"]
                == "uncovered-mx"
        });
        if let Some(found) = found {
            break found;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no uncovered-mx webhook within 20 s: {:?}",
            hook.received().len()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, secret.as_bytes());
    let header = uncovered.headers["x-mtasts-signature"].to_str().unwrap();
    let mac = mtasts_proto::alerts::signature::parse_header(header).unwrap();
    aws_lc_rs::hmac::verify(&key, &uncovered.body, &mac).unwrap();
    let v: serde_json::Value = serde_json::from_slice(&uncovered.body).unwrap();
    assert_eq!(v["alert"]["key"], "mx9.elsewhere.example");
    assert_eq!(v["tenant"], "acme");
    let (status, body) = api::call(addr, Method::GET, "/api/v1/alerts", &owner, None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        body["alerts"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["kind"] == "uncovered-mx"),
        "{body}"
    );
    serve.shutdown().await;
}
