//! The daemon as a service: HTTP, the UNIX socket, reload, the store, restarts, admin calls.

use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::sync::Arc;
use std::time::Duration;

use mtasts_sender::admin::{self, QueryOptions};
use mtasts_sender::config::UnixSocketConfig;
use mtasts_testkit::TestNet;

use super::world::*;

#[tokio::test]
async fn http_answers_json_metrics_and_health() {
    let net = TestNet::start().await;
    sts_domain(&net, "h.test", "enforce", "7").await;
    let world = World::start(net, "").await;

    let (status, head, body) = world.http_get("/v1/policy/H.test").await;
    assert_eq!(status, 200, "{head}");
    let json: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(json["domain"], "h.test");
    assert_eq!(json["status"], "ok");
    assert_eq!(json["answer"], secure_answer("h.test"));
    assert_eq!(json["level"], "secure");
    assert_eq!(json["source"], "fresh");
    assert_eq!(json["profile"], "postfix");
    assert_eq!(json["policy"]["mode"], "enforce");
    assert_eq!(json["policy"]["id"], "7");
    assert_eq!(json["policy"]["max_age"], 604800);
    assert_eq!(
        json["policy"]["mx"],
        serde_json::json!(["mx.h.test", "*.mx.h.test"])
    );
    assert_eq!(json["cache"], "miss");
    assert_eq!(json["discovery"]["txt"]["status"], "record");
    assert_eq!(json["discovery"]["txt"]["id"], "7");
    assert_eq!(json["discovery"]["step"], "fetch");
    assert_eq!(json["discovery"]["outcome"], "fetched");
    assert_eq!(json["discovery"]["fetch"]["status"], 200);

    // The second time from the cache, and with another profile.
    let (_, _, body) = world
        .http_get("/v1/policy/h.test?profile=postfix-pre34")
        .await;
    let json: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(json["source"], "cache");
    assert_eq!(json["cache"], "hit");
    assert_eq!(json["profile"], "postfix-pre34");
    assert_eq!(json["answer"], "OK secure match=mx.h.test:.mx.h.test");

    let (_, _, body) = world.http_get("/v1/policy/nothing.test").await;
    let json: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(json["answer"], "NOTFOUND ");
    assert_eq!(json["status"], "notfound");
    assert_eq!(json["discovery"]["outcome"], "no-record");
    assert!(json["discovery"]["negative_until"].as_u64().unwrap() > T0);

    world.ask("postfix", "h.test").await;
    let (status, head, metrics) = world.http_get("/metrics").await;
    assert_eq!(status, 200);
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: application/openmetrics-text"),
        "{head}"
    );
    for line in [
        "mtasts_lookups_total{protocol=\"http\",answer=\"ok\",source=\"fresh\"} 1",
        "mtasts_lookups_total{protocol=\"http\",answer=\"ok\",source=\"cache\"} 1",
        "mtasts_lookups_total{protocol=\"http\",answer=\"notfound\",source=\"none\"} 1",
        "mtasts_lookups_total{protocol=\"socketmap\",answer=\"ok\",source=\"cache\"} 1",
        "mtasts_cache_requests_total{result=\"hit\"} 2",
        "mtasts_discoveries_total{outcome=\"fetched\",result_type=\"\"} 1",
        "mtasts_discoveries_total{outcome=\"no-record\",result_type=\"\"} 1",
        "mtasts_store_fallback 0",
        "mtasts_lookup_duration_seconds_count{protocol=\"socketmap\"} 1",
    ] {
        assert!(metrics.contains(line), "{line} missing from\n{metrics}");
    }

    let (status, _, body) = world.http_get("/healthz").await;
    assert_eq!(status, 200);
    let json: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(json["status"], "ok");
    assert_eq!(json["store"]["backend"], "memory");
    assert_eq!(json["store"]["fallback"], false);
}

#[tokio::test]
async fn unix_socket_with_mode_answers_and_is_removed_at_shutdown() {
    let net = Arc::new(TestNet::start().await);
    sts_domain(&net, "u.test", "enforce", "1").await;
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let socket = dir.path().join("mtasts.sock");
    // A stale socket file from an earlier run is replaced.
    drop(std::os::unix::net::UnixListener::bind(&socket).unwrap());
    let path = socket.clone();
    let mut world = World::start_in(net, dir, "", move |config| {
        config.socketmap.unix = Some(UnixSocketConfig {
            path,
            owner: None,
            group: None,
            mode: "0600".into(),
        });
    })
    .await;
    let meta = std::fs::metadata(&socket).unwrap();
    assert!(meta.file_type().is_socket());
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    let stream = tokio::net::UnixStream::connect(&socket).await.unwrap();
    let mut client = Client::new(stream);
    assert_eq!(
        client.ask("postfix", "u.test").await,
        secure_answer("u.test")
    );
    assert_eq!(client.ask("postfix", "[192.0.2.1]").await, "NOTFOUND ");
    world.stop().await;
    assert!(!exists(&socket));
}

#[tokio::test]
async fn reload_swaps_static_levels_without_dropping_connections() {
    let net = TestNet::start().await;
    sts_domain(&net, "partner.test", "enforce", "1").await;
    let logs = Logs::default();
    let _logging = logs.capture();
    let world = World::start(net, "[tls_levels]\n\"partner.test\" = \"encrypt\"\n").await;
    let mut client = world.client().await;
    assert_eq!(client.ask("postfix", "partner.test").await, "OK encrypt");

    std::fs::write(
        &world.config_path,
        format!(
            "{}[tls_levels]\n\"partner.test\" = \"dane-only\"\n",
            base_toml(&world.net)
        ),
    )
    .unwrap();
    world.reload.notify_one();
    let mut answer = String::new();
    for _ in 0..100 {
        answer = client.ask("postfix", "partner.test").await;
        if answer != "OK encrypt" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(answer, "OK dane-only");

    // A broken file keeps the settings in force.
    std::fs::write(&world.config_path, "bogus_key = 1\n").unwrap();
    world.reload.notify_one();
    // The daemon says it tried (and kept the settings) before the answer is checked.
    logs.wait_for("reload failed; the previous settings stay")
        .await;
    assert_eq!(client.ask("postfix", "partner.test").await, "OK dane-only");

    // Without the entry, MTA-STS applies again, on the same connection.
    std::fs::write(&world.config_path, base_toml(&world.net)).unwrap();
    world.daemon.reload().unwrap();
    assert_eq!(
        client.ask("postfix", "partner.test").await,
        secure_answer("partner.test")
    );
}

#[tokio::test]
async fn unavailable_store_falls_back_to_memory() {
    let net = TestNet::start().await;
    sts_domain(&net, "s.test", "enforce", "1").await;
    // Nothing listens on port 1: the store is unavailable from the start.
    let world = World::start(net, "[cache]\nurl = \"redis://127.0.0.1:1/\"\n").await;
    assert_eq!(
        world.ask("postfix", "s.test").await,
        secure_answer("s.test")
    );
    assert_eq!(
        world.ask("postfix", "s.test").await,
        secure_answer("s.test")
    );
    assert_eq!(fetches(&world.net, "s.test"), 1);
    let (_, _, body) = world.http_get("/healthz").await;
    let json: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(json["store"]["backend"], "redis");
    assert_eq!(json["store"]["fallback"], true);
    let (_, _, metrics) = world.http_get("/metrics").await;
    assert!(metrics.contains("mtasts_store_fallback 1"), "{metrics}");
    assert!(
        metrics.contains("mtasts_store_fallback_transitions_total 1"),
        "{metrics}"
    );
}

#[tokio::test]
async fn sqlite_cache_survives_a_restart() {
    let net = Arc::new(TestNet::start().await);
    sts_domain(&net, "p.test", "enforce", "1").await;
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let url = format!("sqlite:{}", dir.path().join("cache.sqlite").display());
    let extra = format!("[cache]\nurl = {url:?}\n");
    let mut first = World::start_in(net.clone(), dir.clone(), &extra, |_| {}).await;
    assert_eq!(
        first.ask("postfix", "p.test").await,
        secure_answer("p.test")
    );
    first.stop().await;
    drop(first);

    let second = World::start_in(net.clone(), dir.clone(), &extra, |_| {}).await;
    assert_eq!(
        second.ask("postfix", "p.test").await,
        secure_answer("p.test")
    );
    // The TXT id was checked again, the policy came from the file.
    assert_eq!(fetches(&net, "p.test"), 1);
    assert_eq!(txt_queries(&net, "p.test"), 2);

    // The same file through the admin functions.
    let mut config = mtasts_sender::Config::default();
    config.cache.url = Some(url);
    let entries = admin::cache_list(&config, 10).await.unwrap();
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].domain, "p.test");
    assert!(
        admin::cache_get(&config, "P.test.")
            .await
            .unwrap()
            .is_some()
    );
    assert_eq!(
        admin::cache_purge(&config, Some("p.test")).await.unwrap(),
        1
    );
    assert_eq!(admin::cache_purge(&config, None).await.unwrap(), 0);
    assert!(admin::cache_list(&config, 10).await.unwrap().is_empty());
}

#[tokio::test]
async fn query_runs_one_lookup_with_every_detail() {
    let net = TestNet::start().await;
    sts_domain(&net, "q.test", "testing", "3").await;
    let mut config = mtasts_sender::Config::from_toml_str(&base_toml(&net)).unwrap();
    config.cache.url = Some("sqlite:/nonexistent-dir-that-is-not-used/cache.sqlite".into());
    let options = QueryOptions {
        profile: Some("strict-testing".into()),
        use_cache: false,
    };
    let decision = admin::query(&config, "q.test", &options).await.unwrap();
    assert_eq!(decision.answer, secure_answer("q.test"));
    assert_eq!(decision.profile, "strict-testing");
    let details = decision.discovery.unwrap();
    assert_eq!(details.txt.unwrap().id.as_deref(), Some("3"));
    assert_eq!(details.fetch.unwrap().status, Some(200));
    assert_eq!(decision.policy.unwrap().mode, "testing");
    let decision = admin::query(&config, "q.test", &QueryOptions::default())
        .await
        .unwrap();
    assert_eq!(decision.answer, "NOTFOUND ");
    assert!(decision.reason.contains("testing"), "{}", decision.reason);
}

#[tokio::test]
async fn shutdown_lets_the_request_in_progress_finish() {
    let net = TestNet::start().await;
    net.zone().add_txt("_mta-sts.slow.test", &["v=STSv1; id=1"]);
    net.add_policy_host(
        "slow.test",
        mtasts_testkit::PolicyHostSpec::new(
            mtasts_testkit::PolicyResponse::policy(policy_text(
                "enforce",
                &["mx.slow.test"],
                86_400,
            ))
            .header_delay(Duration::from_millis(400)),
        ),
    )
    .await;
    let mut world = World::start(net, "").await;
    let mut busy = world.client().await;
    let mut idle = world.client().await;
    assert_eq!(idle.ask("postfix", "[192.0.2.1]").await, "NOTFOUND ");
    busy.send("postfix", "slow.test").await;
    // Cancel once the lookup is in flight: its policy request has reached the (slow) host.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !world
        .net
        .policy_requests()
        .iter()
        .any(|r| r.sni == "mta-sts.slow.test")
    {
        assert!(tokio::time::Instant::now() < deadline, "no policy fetch");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    world.shutdown.cancel();
    assert_eq!(
        busy.reply().await.as_deref(),
        Some("OK secure match=mx.slow.test servername=hostname")
    );
    assert_eq!(busy.reply().await, None);
    assert_eq!(idle.reply().await, None);
    world.stop().await;
    assert!(
        tokio::net::TcpStream::connect(world.socketmap)
            .await
            .is_err()
    );
}
