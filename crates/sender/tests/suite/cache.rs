//! RFC 8461 cache behaviour, observed through the DNS queries and HTTPS requests the
//! loopback internet records.

use std::time::Duration;

use mtasts_sender::config::RefreshConfig;
use mtasts_testkit::{Fault, PolicyHostSpec, PolicyResponse, TestNet};

use super::world::*;

#[tokio::test]
async fn cached_policy_is_served_without_refetch_while_the_id_is_unchanged() {
    let net = TestNet::start().await;
    sts_domain(&net, "c.test", "enforce", "1").await;
    let world = World::start(net, "").await;
    let net = &world.net;
    assert_eq!(
        world.ask("postfix", "c.test").await,
        secure_answer("c.test")
    );
    assert_eq!((fetches(net, "c.test"), txt_queries(net, "c.test")), (1, 1));

    // Within the grace period: no DNS, no HTTPS.
    assert_eq!(
        world.ask("postfix", "c.test").await,
        secure_answer("c.test")
    );
    assert_eq!((fetches(net, "c.test"), txt_queries(net, "c.test")), (1, 1));

    // After it: the TXT record is checked, the id is the same, no fetch (C90).
    world.clock.advance(61);
    assert_eq!(
        world.ask("postfix", "c.test").await,
        secure_answer("c.test")
    );
    assert_eq!((fetches(net, "c.test"), txt_queries(net, "c.test")), (1, 2));

    // A new id: fetched again.
    set_id(net, "c.test", "2");
    world.clock.advance(61);
    assert_eq!(
        world.ask("postfix", "c.test").await,
        secure_answer("c.test")
    );
    assert_eq!(fetches(net, "c.test"), 2);
}

#[tokio::test]
async fn a_failed_fetch_keeps_the_cached_policy_and_backs_off() {
    let net = TestNet::start().await;
    sts_domain(&net, "f.test", "enforce", "1").await;
    let world = World::start(net, "").await;
    let net = &world.net;
    assert_eq!(
        world.ask("postfix", "f.test").await,
        secure_answer("f.test")
    );

    // The policy host breaks and the id changes: the fetch fails, the cached policy stays (C91).
    net.set_policy_host("f.test", PolicyHostSpec::new(PolicyResponse::status(500)));
    set_id(net, "f.test", "2");
    world.clock.advance(61);
    assert_eq!(
        world.ask("postfix", "f.test").await,
        secure_answer("f.test")
    );
    assert_eq!(fetches(net, "f.test"), 2);

    // Within 5 minutes of the failure: no new fetch (C44).
    world.clock.advance(61);
    assert_eq!(
        world.ask("postfix", "f.test").await,
        secure_answer("f.test")
    );
    world.clock.advance(170);
    assert_eq!(
        world.ask("postfix", "f.test").await,
        secure_answer("f.test")
    );
    assert_eq!(fetches(net, "f.test"), 2);

    // After it: fetched again; the host is back with a testing policy, which applies.
    net.set_policy_host(
        "f.test",
        PolicyHostSpec::new(PolicyResponse::policy(policy_text(
            "testing",
            &["mx.f.test"],
            86_400,
        ))),
    );
    world.clock.advance(70);
    assert_eq!(world.ask("postfix", "f.test").await, "NOTFOUND ");
    assert_eq!(fetches(net, "f.test"), 3);

    let metrics = world.daemon.metrics().encode();
    assert!(
        metrics.contains(
            "mtasts_discoveries_total{outcome=\"fetch-error\",result_type=\"sts-policy-fetch-error\"} 1"
        ),
        "{metrics}"
    );
}

#[tokio::test]
async fn a_failed_first_fetch_means_no_policy_and_backoff() {
    let net = TestNet::start().await;
    net.zone()
        .add_txt("_mta-sts.broken.test", &["v=STSv1; id=1"]);
    net.add_policy_host(
        "broken.test",
        PolicyHostSpec::new(PolicyResponse::policy(
            "version: STSv1\r\nmode: enforce\r\n",
        )),
    )
    .await;
    let world = World::start(net, "").await;
    assert_eq!(world.ask("postfix", "broken.test").await, "NOTFOUND ");
    world.clock.advance(120);
    assert_eq!(world.ask("postfix", "broken.test").await, "NOTFOUND ");
    assert_eq!(fetches(&world.net, "broken.test"), 1);
    world.clock.advance(200);
    assert_eq!(world.ask("postfix", "broken.test").await, "NOTFOUND ");
    assert_eq!(fetches(&world.net, "broken.test"), 2);
    let metrics = world.daemon.metrics().encode();
    assert!(
        metrics.contains("outcome=\"invalid\",result_type=\"sts-policy-invalid\""),
        "{metrics}"
    );
}

#[tokio::test]
async fn dns_failure_serves_the_cache_and_is_temp_only_in_the_strict_profile() {
    let net = TestNet::start().await;
    sts_domain(&net, "d.test", "enforce", "1").await;
    let world = World::start(net, "").await;
    let net = &world.net;
    assert_eq!(
        world.ask("postfix", "d.test").await,
        secure_answer("d.test")
    );

    net.zone().set_fault("_mta-sts.d.test", Fault::ServFail);
    world.clock.advance(61);
    assert_eq!(
        world.ask("postfix", "d.test").await,
        secure_answer("d.test")
    );
    assert!(txt_queries(net, "d.test") >= 2);

    // Without a cache: "could not find out" is not "no policy" (C27), but only the strict
    // profile defers mail for it.
    net.zone().set_fault("_mta-sts.cold.test", Fault::ServFail);
    assert_eq!(world.ask("postfix", "cold.test").await, "NOTFOUND ");
    let strict = world.ask("strict-dns", "cold.test").await;
    assert!(strict.starts_with("TEMP "), "{strict}");
}

#[tokio::test]
async fn negative_cache_spares_repeated_txt_queries() {
    let net = TestNet::start().await;
    let world = World::start(net, "[cache]\nnegative_ttl = 600\n").await;
    let net = &world.net;
    for _ in 0..3 {
        assert_eq!(world.ask("postfix", "plain.test").await, "NOTFOUND ");
    }
    world.clock.advance(500);
    assert_eq!(world.ask("postfix", "plain.test").await, "NOTFOUND ");
    assert_eq!(txt_queries(net, "plain.test"), 1);
    world.clock.advance(101);
    assert_eq!(world.ask("postfix", "plain.test").await, "NOTFOUND ");
    assert_eq!(txt_queries(net, "plain.test"), 2);
}

#[tokio::test]
async fn concurrent_lookups_of_a_cold_domain_share_one_discovery() {
    let net = TestNet::start().await;
    net.zone().add_txt("_mta-sts.busy.test", &["v=STSv1; id=1"]);
    net.add_policy_host(
        "busy.test",
        PolicyHostSpec::new(
            PolicyResponse::policy(policy_text(
                "enforce",
                &["mx.busy.test", "*.mx.busy.test"],
                86_400,
            ))
            .header_delay(Duration::from_millis(300)),
        ),
    )
    .await;
    let world = World::start(net, "").await;
    let mut lookups = Vec::new();
    for _ in 0..50 {
        let addr = world.socketmap;
        lookups.push(tokio::spawn(async move {
            let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
            Client::new(stream).ask("postfix", "busy.test").await
        }));
    }
    for lookup in lookups {
        assert_eq!(lookup.await.unwrap(), secure_answer("busy.test"));
    }
    assert_eq!(fetches(&world.net, "busy.test"), 1);
    assert_eq!(txt_queries(&world.net, "busy.test"), 1);
}

#[tokio::test]
async fn an_expired_policy_is_fetched_again() {
    let net = TestNet::start().await;
    net.add_sts_domain(
        "short.test",
        &policy_text("enforce", &["mx.short.test"], 100),
        "v=STSv1; id=1",
    )
    .await;
    let world = World::start(net, "").await;
    let answer = "OK secure match=mx.short.test servername=hostname";
    assert_eq!(world.ask("postfix", "short.test").await, answer);
    world.clock.advance(101);
    assert_eq!(world.ask("postfix", "short.test").await, answer);
    assert_eq!(fetches(&world.net, "short.test"), 2);
}

#[tokio::test]
async fn refresh_ahead_refetches_policies_in_use_before_they_expire() {
    let net = TestNet::start().await;
    net.add_sts_domain(
        "r.test",
        &policy_text("enforce", &["mx.r.test"], 7_200),
        "v=STSv1; id=1",
    )
    .await;
    sts_domain(&net, "long.test", "enforce", "1").await;
    let world = World::start(net, "").await;
    world.ask("postfix", "r.test").await;
    world.ask("postfix", "long.test").await;
    let discovery = world.daemon.discovery();
    let metrics = world.daemon.metrics();
    let config = RefreshConfig::default();

    // Nothing is due yet (expiry more than an hour away, fetched just now).
    let report = mtasts_sender::refresh::scan(discovery, &config, metrics).await;
    assert_eq!((report.examined, report.refreshed), (2, 0));

    // r.test now expires within the hour: refreshed, although its id did not change.
    world.clock.advance(3_700);
    let report = mtasts_sender::refresh::scan(discovery, &config, metrics).await;
    assert_eq!(report.refreshed, 1);
    assert_eq!(fetches(&world.net, "r.test"), 2);
    assert_eq!(fetches(&world.net, "long.test"), 1);

    // The daily proactive refresh catches the long-lived policy.
    world.clock.advance(86_400);
    let report = mtasts_sender::refresh::scan(discovery, &config, metrics).await;
    assert_eq!(report.refreshed, 2);
    assert_eq!(fetches(&world.net, "long.test"), 2);

    // Policies nobody looked up for a week are left alone.
    world.clock.advance(8 * 86_400);
    let report = mtasts_sender::refresh::scan(discovery, &config, metrics).await;
    assert_eq!(report.refreshed, 0);
}

#[tokio::test]
async fn a_max_age_zero_policy_serves_only_the_lookup_that_fetched_it() {
    let net = TestNet::start().await;
    net.add_sts_domain(
        "zero.test",
        &policy_text("enforce", &["mx.zero.test"], 0),
        "v=STSv1; id=1",
    )
    .await;
    let world = World::start(net, "").await;
    let answer = "OK secure match=mx.zero.test servername=hostname";
    assert_eq!(world.ask("postfix", "zero.test").await, answer);
    assert_eq!(world.ask("postfix", "zero.test").await, answer);
    // Never served from the cache (C94).
    assert_eq!(fetches(&world.net, "zero.test"), 2);
}

#[tokio::test]
async fn the_memo_alone_answers_a_cache_hit_within_the_grace_period() {
    let net = TestNet::start().await;
    sts_domain(&net, "memo.test", "enforce", "1").await;
    let world = World::start(net, "").await;
    let discovery = world.daemon.discovery();
    let now = discovery.clock().now();
    assert!(
        discovery.from_memo("memo.test", now).is_none(),
        "nothing remembered yet"
    );
    // The discovery, then a hit read from the store, which the memo keeps parsed.
    for _ in 0..2 {
        assert_eq!(
            world.ask("postfix", "memo.test").await,
            secure_answer("memo.test")
        );
    }
    let hit = discovery
        .from_memo("memo.test", now)
        .expect("a hot cache hit");
    assert_eq!(hit.cache, mtasts_sender::discovery::CacheUse::Hit);
    assert!(hit.policy.is_some());
    assert!(discovery.from_memo("other.test", now).is_none());
    // Past the grace period the memo does not answer alone: the TXT record is asked again.
    world.clock.advance(3_600);
    assert!(
        discovery
            .from_memo("memo.test", discovery.clock().now())
            .is_none()
    );
}
