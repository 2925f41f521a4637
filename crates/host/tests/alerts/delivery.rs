//! Delivery: signed webhooks (retried after a 500, never resent, re-notified a day later,
//! resolved when the reports age out), e-mail through a real SMTP listener, tenant isolation
//! and refused private targets.

use std::sync::Arc;

use aws_lc_rs::hmac;
use mtasts_host::alerts::email::SmtpRelay;
use mtasts_proto::alerts::signature::{SIGNATURE_HEADER, TIMESTAMP_HEADER, parse_header};
use mtasts_testkit::ca::TestCa;
use mtasts_testkit::smtp::{MxHostSpec, MxServer};
use serde_json::Value;

use super::harness::{DOMAIN, Hook, Received, SECRET, World};

/// The kinds and keys the RFC 8460 example report raises for `company-y.example`, whose
/// policy names mx1 and mx2 but not mx-backup.
const EXPECTED: [(&str, &str); 5] = [
    ("failure-rate", ""),
    ("new-failure-type", "certificate-expired"),
    ("new-failure-type", "starttls-not-supported"),
    ("new-failure-type", "validation-failure"),
    ("uncovered-mx", "mx-backup.mail.company-y.example"),
];

fn json(received: &Received) -> Value {
    serde_json::from_slice(&received.body).unwrap()
}

fn kinds(received: &[Received]) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = received
        .iter()
        .map(|r| {
            let v = json(r);
            (
                v["alert"]["kind"].as_str().unwrap().to_owned(),
                v["alert"]["key"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    out.sort();
    out
}

fn expected() -> Vec<(String, String)> {
    EXPECTED
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Checks the signature as a receiver would: HMAC-SHA256 of the body under the secret.
fn assert_signed(received: &Received) {
    let header = received.headers[SIGNATURE_HEADER].to_str().unwrap();
    let mac = parse_header(header).expect("sha256=<64 hex digits>");
    let key = hmac::Key::new(hmac::HMAC_SHA256, SECRET.as_bytes());
    hmac::verify(&key, &received.body, &mac).expect("the signature verifies");
    let timestamp: i64 = received.headers[TIMESTAMP_HEADER]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(json(received)["sent_at"], timestamp);
}

/// The same check with an independent implementation: `openssl dgst -hmac`.
fn assert_openssl_agrees(received: &Received) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("body.json");
    std::fs::write(&path, &received.body).unwrap();
    let Ok(out) = std::process::Command::new("openssl")
        .args(["dgst", "-sha256", "-hmac", SECRET, "-r"])
        .arg(&path)
        .output()
    else {
        eprintln!("openssl not found: skipping the independent signature check");
        return;
    };
    let text = String::from_utf8(out.stdout).unwrap();
    let hex = text.split_whitespace().next().unwrap();
    let header = received.headers[SIGNATURE_HEADER].to_str().unwrap();
    assert_eq!(header, format!("sha256={hex}"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhooks_are_signed_retried_not_resent_reminded_and_resolved() {
    let Some(world) = World::start().await else {
        return;
    };
    let (hook_a, hook_b) = (Hook::start().await, Hook::start().await);
    world.settings(world.a.id, Some(hook_a.url()), &[]).await;
    world.settings(world.b.id, Some(hook_b.url()), &[]).await;
    hook_a.answer(&[500]);
    let alerts = world.alerts(true, None);

    let round = alerts.run_once().await.unwrap();
    assert!(round.ran);
    assert_eq!((round.opened, round.sent, round.failed), (5, 4, 1));
    let first = hook_a.received();
    assert_eq!(kinds(&first), expected());
    for r in &first {
        assert_signed(r);
        let v = json(r);
        assert_eq!(v["event"], "opened");
        assert_eq!(v["tenant"], "a");
        assert_eq!(v["alert"]["domain"], DOMAIN);
        assert!(!v["alert"]["fix"].as_str().unwrap().is_empty());
    }
    assert_openssl_agrees(&first[0]);
    let uncovered = first
        .iter()
        .map(json)
        .find(|v| v["alert"]["kind"] == "uncovered-mx")
        .unwrap();
    assert_eq!(uncovered["alert"]["since_day"], "2016-04-01");
    assert!(
        uncovered["alert"]["fix"]
            .as_str()
            .unwrap()
            .contains("add mx: mx-backup.mail.company-y.example"),
        "{uncovered}"
    );
    // The other tenant hosts nothing that failed: its receiver gets nothing.
    assert!(hook_b.received().is_empty());

    // The same evaluation again sends nothing: the alerts are open and notified, and the
    // failed one waits for its retry.
    let round = alerts.run_once().await.unwrap();
    assert_eq!((round.opened, round.sent, round.failed), (0, 0, 0));
    assert_eq!(hook_a.received().len(), 5);

    // After the backoff the one the receiver refused is sent again, once.
    world.advance(31);
    let round = alerts.run_once().await.unwrap();
    assert_eq!((round.sent, round.failed), (1, 0));
    let after = hook_a.received();
    assert_eq!(after.len(), 6);
    assert_eq!(
        json(&after[5])["alert"]["id"],
        json(&first[0])["alert"]["id"]
    );
    assert_signed(&after[5]);
    assert_eq!(alerts.run_once().await.unwrap().sent, 0);
    for alert in world.db.alerts(Some(world.a.id), 100).await.unwrap() {
        for d in world.db.alert_deliveries(alert.id).await.unwrap() {
            assert_eq!(d.state, "sent", "{d:?}");
        }
    }

    // A day later the report still holds: one reminder per alert.
    world.advance(86_400);
    let round = alerts.run_once().await.unwrap();
    assert_eq!((round.opened, round.sent), (0, 5));
    let reminders: Vec<Received> = hook_a.received().split_off(6);
    assert!(reminders.iter().all(|r| json(r)["event"] == "reminder"));
    assert_eq!(kinds(&reminders), expected());

    // Days later the report is old news: every alert resolves, and says so.
    world.advance(3 * 86_400);
    let round = alerts.run_once().await.unwrap();
    assert_eq!((round.resolved, round.sent), (5, 5));
    let resolved: Vec<Received> = hook_a.received().split_off(11);
    assert!(resolved.iter().all(|r| json(r)["event"] == "resolved"));
    assert!(
        resolved
            .iter()
            .all(|r| json(r)["alert"]["resolved_at"].is_i64())
    );
    assert!(world.db.open_alerts(world.a.id).await.unwrap().is_empty());
    assert!(hook_b.received().is_empty());
    assert!(
        world
            .db
            .alerts(Some(world.b.id), 100)
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn email_reaches_a_real_smtp_listener() {
    let Some(world) = World::start().await else {
        return;
    };
    let ca = TestCa::new();
    let relay = MxServer::start(
        "127.0.0.1:0".parse().unwrap(),
        "relay.provider.test",
        MxHostSpec::default(),
        &ca,
    )
    .await
    .unwrap();
    world
        .settings(world.a.id, None, &["owner@company-y.example"])
        .await;
    let mail = SmtpRelay::new(
        relay.addr().to_string(),
        "provider.test".into(),
        Arc::new(rustls::RootCertStore::empty()),
    );
    let alerts = world.alerts(false, Some(Arc::new(mail)));
    let round = alerts.run_once().await.unwrap();
    assert_eq!((round.opened, round.sent, round.failed), (5, 5, 0));
    let received = relay.received();
    assert_eq!(received.len(), 5);
    for mail in &received {
        assert_eq!(mail.mail_from, "mtasts@provider.test");
        assert_eq!(mail.rcpt_to, vec!["owner@company-y.example"]);
        assert_eq!(mail.helo, "provider.test");
    }
    let uncovered = received
        .iter()
        .map(|m| m.text())
        .find(|t| t.contains("Kind:   uncovered-mx"))
        .expect("the uncovered-mx alert by mail");
    assert!(
        uncovered.contains(
            "Subject: [mtasts alert] mx-backup.mail.company-y.example is not in the MTA-STS policy of company-y.example"
        ),
        "{uncovered}"
    );
    assert!(uncovered.contains("Since:  2016-04-01"), "{uncovered}");
    assert!(
        uncovered.contains("The fix:\r\nadd mx: mx-backup.mail.company-y.example"),
        "{uncovered}"
    );
    assert!(uncovered.contains("Auto-Submitted: auto-generated"));
    // Nothing more on the next round.
    assert_eq!(alerts.run_once().await.unwrap().sent, 0);
    assert_eq!(relay.received().len(), 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn private_webhook_targets_are_refused_without_the_setting() {
    let Some(world) = World::start().await else {
        return;
    };
    let hook = Hook::start().await;
    // An https URL on a loopback address: refused before anything connects, and not retried.
    world
        .settings(world.a.id, Some(format!("https://{}/hook", hook.addr)), &[])
        .await;
    let alerts = world.alerts(false, None);
    let round = alerts.run_once().await.unwrap();
    assert_eq!((round.opened, round.sent, round.failed), (5, 0, 5));
    assert!(hook.received().is_empty());
    for alert in world.db.alerts(Some(world.a.id), 100).await.unwrap() {
        let deliveries = world.db.alert_deliveries(alert.id).await.unwrap();
        assert_eq!(deliveries.len(), 1);
        assert_eq!(deliveries[0].state, "failed");
        let error = deliveries[0].last_error.as_deref().unwrap();
        assert!(error.contains("not a public address"), "{error}");
    }
    // Plain http is refused the same way.
    world.settings(world.a.id, Some(hook.url()), &[]).await;
    world.advance(86_400);
    let round = alerts.run_once().await.unwrap();
    assert_eq!((round.sent, round.failed), (0, 5));
    assert!(hook.received().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_name_with_any_private_address_is_refused() {
    let Some(world) = World::start().await else {
        return;
    };
    // Real DNS (the testkit's authority): one public and one private address for the name.
    let net = mtasts_testkit::TestNet::start().await;
    net.zone()
        .add_a("hooks.mixed.test", std::net::Ipv4Addr::new(8, 8, 8, 8));
    net.zone()
        .add_a("hooks.mixed.test", std::net::Ipv4Addr::new(10, 0, 0, 5));
    world
        .settings(
            world.a.id,
            Some("https://hooks.mixed.test/hook".into()),
            &[],
        )
        .await;
    let dns = crate::support::dns::resolver(&net, std::time::Duration::from_secs(3));
    let alerts = world.alerts_with_dns(Arc::new(dns), false, None);
    let round = alerts.run_once().await.unwrap();
    assert_eq!((round.sent, round.failed), (0, 5));
    for alert in world.db.alerts(Some(world.a.id), 100).await.unwrap() {
        let deliveries = world.db.alert_deliveries(alert.id).await.unwrap();
        assert_eq!(deliveries[0].state, "failed");
        let error = deliveries[0].last_error.as_deref().unwrap();
        assert!(
            error.contains("hooks.mixed.test resolves to 10.0.0.5"),
            "{error}"
        );
    }
}
