//! The cache backend going away and coming back, with the real servers: the daemon reaches
//! Redis or PostgreSQL through a `TcpProxy` that the test cuts (every connection closed, new
//! ones closed at once) and restores, so the shared servers are never touched.
//!
//! Servers: `MTASTS_TEST_REDIS_URL` (default `redis://127.0.0.1:6379`) and
//! `MTASTS_TEST_POSTGRES_URL` (default `postgres://postgres@127.0.0.1:5432/test`), as
//! `mtasts_testkit::services` finds them. An unreachable server skips its test, unless
//! `MTASTS_REQUIRE_SERVICES=1`. Each run uses its
//! own Redis key prefix or PostgreSQL schema and removes it afterwards.

use std::net::SocketAddr;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;
use mtasts_store::postgres::PostgresStore;
use mtasts_store::redis_store::RedisStore;
use mtasts_store::{EntryState, PolicyStore};
use mtasts_testkit::TestNet;
use mtasts_testkit::proxy::TcpProxy;
use mtasts_testkit::services::{Service, postgres_url, redis_url, skip, unique};
use tokio::time::Instant;

use super::world::*;

/// How long the daemon may take to notice the outage or the return of the store. It
/// retries the store every second here (`cache.store_retry = 1`); one store operation is
/// bounded by 5 s.
const DEADLINE: Duration = Duration::from_secs(20);

/// The configuration of every world here: the store is retried every second.
const RETRY: &str = "[cache]\nstore_retry = 1\n";

#[tokio::test]
async fn redis_outage_falls_back_to_memory_and_recovers() {
    let url = redis_url();
    let prefix = format!("{}:", unique("mtasts:test:outage:"));
    let direct = match RedisStore::connect_with_prefix(&url, &prefix).await {
        Ok(store) => store,
        Err(e) => return skip(Service::Redis, &e),
    };
    let Some((server, proxied_url)) = proxied(&url, 6379).await else {
        return skip(
            Service::Redis,
            &format!("{url} names no TCP server to put a proxy before"),
        );
    };
    let proxy = TcpProxy::start(server).await;
    // The key prefix is not part of a Redis URL: the daemon gets the store itself, opened
    // through the proxy, behind its memory fallback.
    let through_proxy = RedisStore::connect_with_prefix(&proxied_url(proxy.addr()), &prefix)
        .await
        .expect("Redis through the proxy");
    let logs = Logs::default();
    let _logging = logs.capture();
    let result = AssertUnwindSafe(async {
        let net = TestNet::start().await;
        let world = World::start_with_store(net, RETRY, Arc::new(through_proxy)).await;
        outage(&world, &proxy, &direct, "redis", &logs).await;
    })
    .catch_unwind()
    .await;
    drop(proxy);
    direct.purge().await.expect("removing the test keys");
    if let Err(panic) = result {
        std::panic::resume_unwind(panic);
    }
}

#[tokio::test]
async fn postgres_outage_falls_back_to_memory_and_recovers() {
    let Some(pg) = Postgres::setup().await else {
        return;
    };
    let logs = Logs::default();
    let _logging = logs.capture();
    let result = AssertUnwindSafe(async {
        let net = TestNet::start().await;
        // Through the configuration, as in production: `cache.url` names the proxy.
        let world = World::start(net, &pg.config()).await;
        outage(&world, &pg.proxy, &pg.direct, "postgres", &logs).await;
    })
    .catch_unwind()
    .await;
    pg.finish(result).await;
}

/// A store unreachable when the daemon starts is not fatal: it starts on memory and moves to
/// the store (opening and migrating it then) once the store answers.
#[tokio::test]
async fn postgres_unreachable_at_start_is_used_once_it_answers() {
    let Some(pg) = Postgres::setup().await else {
        return;
    };
    let logs = Logs::default();
    let _logging = logs.capture();
    let result = AssertUnwindSafe(async {
        let net = TestNet::start().await;
        sts_domain(&net, "early.test", "enforce", "1").await;
        pg.proxy.cut();
        let world = World::start(net, &pg.config()).await;
        let health = healthz(&world).await;
        assert_eq!(health["store"]["backend"], "postgres");
        assert_eq!(health["store"]["fallback"], true);
        assert_eq!(gauge(&world).await, Some(1));
        assert!(logs.contains("policy store unavailable"), "{}", logs.text());
        for _ in 0..2 {
            assert_eq!(
                world.ask("postfix", "early.test").await,
                secure_answer("early.test")
            );
        }
        assert_eq!(fetches(&world.net, "early.test"), 1);

        pg.proxy.restore();
        wait_for_gauge(&world, &pg.proxy, "early.test", 0).await;
        assert!(
            logs.contains("policy store available again"),
            "{}",
            logs.text()
        );
        let copied = pg.direct.get("early.test").await.unwrap();
        assert!(copied.is_some(), "not copied into the store");
        assert_eq!(
            world.ask("postfix", "early.test").await,
            secure_answer("early.test")
        );
        assert_eq!(fetches(&world.net, "early.test"), 1);
    })
    .catch_unwind()
    .await;
    pg.finish(result).await;
}

/// The PostgreSQL test server behind a proxy, with a schema of its own.
struct Postgres {
    /// Straight to the server, in the test schema (checks and cleanup).
    direct: PostgresStore,
    schema: String,
    proxy: TcpProxy,
    /// The URL of the test schema through the proxy.
    proxied_url: String,
}

impl Postgres {
    /// Creates the schema (migrated) and the proxy; `None` (after reporting) when the server
    /// cannot be used.
    async fn setup() -> Option<Postgres> {
        let url = postgres_url();
        let schema = unique("mtasts_outage_");
        let direct = match PostgresStore::connect_in_schema(&url, &schema).await {
            Ok(store) => store,
            Err(e) => {
                skip(Service::Postgres, &e);
                return None;
            }
        };
        let Some((server, proxied_url)) = proxied(&url, 5432).await else {
            direct
                .drop_schema(&schema)
                .await
                .expect("dropping the test schema");
            skip(
                Service::Postgres,
                &format!("{url} names no TCP server to put a proxy before"),
            );
            return None;
        };
        let proxy = TcpProxy::start(server).await;
        // sqlx reads startup parameters from the URL: the daemon's tables live in the
        // test schema (created above).
        let base = proxied_url(proxy.addr());
        let separator = if base.contains('?') { '&' } else { '?' };
        let proxied_url = format!("{base}{separator}options[search_path]={schema}");
        Some(Postgres {
            direct,
            schema,
            proxy,
            proxied_url,
        })
    }

    /// The configuration text for a daemon caching in the test schema through the proxy.
    fn config(&self) -> String {
        format!("[cache]\nurl = {:?}\nstore_retry = 1\n", self.proxied_url)
    }

    /// Removes the schema, then re-raises the scenario's panic, if any.
    async fn finish(self, result: std::thread::Result<()>) {
        // Closing the proxy ends the daemon's sessions, so nothing holds the schema.
        drop(self.proxy);
        self.direct
            .drop_schema(&self.schema)
            .await
            .expect("dropping the test schema");
        if let Err(panic) = result {
            std::panic::resume_unwind(panic);
        }
    }
}

/// The scenario, the same for every backend: `direct` reaches the server itself (for
/// checks); the daemon of `world` reaches it through `proxy`.
async fn outage(
    world: &World,
    proxy: &TcpProxy,
    direct: &dyn PolicyStore,
    backend: &str,
    logs: &Logs,
) {
    sts_domain(&world.net, "warm.test", "enforce", "1").await;
    sts_domain(&world.net, "outage.test", "enforce", "2").await;

    // Warm: the policy is fetched once and written through to the store.
    assert_eq!(
        world.ask("postfix", "warm.test").await,
        secure_answer("warm.test")
    );
    let stored = direct
        .get("warm.test")
        .await
        .unwrap()
        .expect("in the store");
    assert!(
        matches!(&stored.state, EntryState::Policy { id, .. } if id == "1"),
        "{stored:?}"
    );
    assert_eq!(gauge(world).await, Some(0));
    let health = healthz(world).await;
    assert_eq!(health["store"]["backend"], backend);
    assert_eq!(health["store"]["fallback"], false);
    assert!(
        proxy.relayed() > 0,
        "the daemon does not go through the proxy"
    );

    // The store goes away: lookups keep being answered, and the daemon says so.
    proxy.cut();
    wait_for_gauge(world, proxy, "warm.test", 1).await;
    let health = healthz(world).await;
    assert_eq!(health["store"]["backend"], backend);
    assert_eq!(health["store"]["fallback"], true);
    let metrics = world.http_get("/metrics").await.2;
    assert!(
        metrics.contains("mtasts_store_fallback_transitions_total 1"),
        "{metrics}"
    );
    assert!(
        logs.contains("policy store unavailable; caching in memory until it is back"),
        "{}",
        logs.text()
    );

    // The warm policy is out of reach in the store, so it was discovered again (unless a
    // lookup still reached the store just after the cut); from then on it is served from
    // memory, without another fetch.
    assert_eq!(
        world.ask("postfix", "warm.test").await,
        secure_answer("warm.test")
    );
    let warm_fetches = fetches(&world.net, "warm.test");
    assert!((1..=2).contains(&warm_fetches), "{warm_fetches}");
    assert_eq!(
        world.ask("postfix", "warm.test").await,
        secure_answer("warm.test")
    );
    assert_eq!(fetches(&world.net, "warm.test"), warm_fetches);
    assert_eq!(policy_source(world, "warm.test").await, "cache");

    // A domain first seen during the outage: discovered, then served from memory.
    for _ in 0..2 {
        assert_eq!(
            world.ask("postfix", "outage.test").await,
            secure_answer("outage.test")
        );
    }
    assert_eq!(fetches(&world.net, "outage.test"), 1);
    assert_eq!(policy_source(world, "outage.test").await, "cache");
    assert_eq!(direct.get("outage.test").await.unwrap(), None);
    // Still in the fallback: every lookup went on without the store.
    assert_eq!(gauge(world).await, Some(1));

    // The store returns: the daemon goes back to it and copies what it learned meanwhile.
    proxy.restore();
    wait_for_gauge(world, proxy, "warm.test", 0).await;
    assert_eq!(healthz(world).await["store"]["fallback"], false);
    assert!(
        logs.contains("policy store available again"),
        "{}",
        logs.text()
    );
    let copied = direct
        .get("outage.test")
        .await
        .unwrap()
        .expect("the entry learned during the outage was copied into the store");
    assert!(
        matches!(&copied.state, EntryState::Policy { id, .. } if id == "2"),
        "{copied:?}"
    );
    // Answers come from the store again: no new fetch, and a new entry is written through.
    assert_eq!(
        world.ask("postfix", "outage.test").await,
        secure_answer("outage.test")
    );
    assert_eq!(fetches(&world.net, "outage.test"), 1);
    sts_domain(&world.net, "after.test", "enforce", "3").await;
    assert_eq!(
        world.ask("postfix", "after.test").await,
        secure_answer("after.test")
    );
    assert!(direct.get("after.test").await.unwrap().is_some());
    let metrics = world.http_get("/metrics").await.2;
    assert!(metrics.contains("mtasts_store_fallback 0"), "{metrics}");
    assert!(
        metrics.contains("mtasts_store_fallback_transitions_total 1"),
        "{metrics}"
    );
}

/// Asks for `domain` (each lookup is a store operation, which is what notices an outage
/// and starts a recovery) until the `mtasts_store_fallback` gauge reads `want`, at most
/// [`DEADLINE`]. Every answer must be the MTA-STS one meanwhile.
async fn wait_for_gauge(world: &World, proxy: &TcpProxy, domain: &str, want: u64) {
    let deadline = Instant::now() + DEADLINE;
    loop {
        assert_eq!(world.ask("postfix", domain).await, secure_answer(domain));
        if gauge(world).await == Some(want) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "mtasts_store_fallback did not become {want} within {DEADLINE:?} (proxy cut: {}, \
             relayed {}, refused {})",
            proxy.is_cut(),
            proxy.relayed(),
            proxy.refused()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The `mtasts_store_fallback` gauge from `/metrics`.
async fn gauge(world: &World) -> Option<u64> {
    let (_, _, metrics) = world.http_get("/metrics").await;
    metrics
        .lines()
        .find_map(|line| line.strip_prefix("mtasts_store_fallback "))
        .and_then(|value| value.trim().parse().ok())
}

/// `/healthz` as JSON.
async fn healthz(world: &World) -> serde_json::Value {
    let (status, _, body) = world.http_get("/healthz").await;
    assert_eq!(status, 200);
    serde_json::from_str(&body).unwrap()
}

/// The `source` of the `/v1/policy` decision for `domain`.
async fn policy_source(world: &World, domain: &str) -> String {
    let (_, _, body) = world.http_get(&format!("/v1/policy/{domain}")).await;
    let json: serde_json::Value = serde_json::from_str(&body).unwrap();
    json["source"].as_str().unwrap_or_default().to_string()
}

/// The server a URL names (`scheme://[user[:password]@]host[:port][/…]`, `default_port`
/// when none is given) and a function giving the same URL with another address in its
/// place. `None` when the URL names no TCP server (a UNIX socket).
async fn proxied(
    url: &str,
    default_port: u16,
) -> Option<(SocketAddr, impl Fn(SocketAddr) -> String)> {
    let (scheme, rest) = url.split_once("://")?;
    let end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    let (userinfo, hostport) = match authority.rfind('@') {
        Some(at) => (&authority[..=at], &authority[at + 1..]),
        None => ("", authority),
    };
    if hostport.is_empty() {
        return None;
    }
    // A port follows the last colon, unless that colon is inside an IPv6 literal.
    let has_port = hostport
        .rfind(':')
        .is_some_and(|colon| !hostport[colon..].contains(']'));
    let target = if has_port {
        hostport.to_string()
    } else {
        format!("{hostport}:{default_port}")
    };
    let server = tokio::net::lookup_host(target).await.ok()?.next()?;
    let (scheme, userinfo, tail) = (scheme.to_string(), userinfo.to_string(), tail.to_string());
    Some((server, move |addr: SocketAddr| {
        format!("{scheme}://{userinfo}{addr}{tail}")
    }))
}
