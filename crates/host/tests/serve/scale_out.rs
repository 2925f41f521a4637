//! Two serve nodes on one PostgreSQL database.

use std::time::Duration;

use axum::http::{Method, StatusCode};
use mtasts_host::serve::Serve;
use mtasts_testkit::TestNet;
use mtasts_testkit::services::{self, Service};
use serde_json::json;

use super::harness::{Ports, api, config, delegate, eventually, fetch_policy, pebble, resolver};

/// A fresh schema per run, so parallel runs and other tests do not see each other's rows;
/// dropped again when the test ends (CI runs on a machine whose database outlives it).
pub(crate) struct FreshDatabase {
    /// The URL of the schema.
    pub(crate) url: String,
    admin_url: String,
    schema: String,
}

impl Drop for FreshDatabase {
    fn drop(&mut self) {
        let (admin_url, schema) = (self.admin_url.clone(), self.schema.clone());
        // Drop runs inside the test's runtime, which cannot be blocked on: a thread of its own.
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async {
                if let Ok(pool) = sqlx::PgPool::connect(&admin_url).await {
                    let _ = sqlx::query("SET lock_timeout = '10s'").execute(&pool).await;
                    let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
                        "DROP SCHEMA IF EXISTS {schema} CASCADE"
                    )))
                    .execute(&pool)
                    .await;
                    pool.close().await;
                }
            });
        })
        .join();
    }
}

pub(crate) async fn fresh_database() -> Option<FreshDatabase> {
    let schema = services::unique("serve_scale_");
    let url = services::postgres_url();
    let admin = match sqlx::PgPool::connect(&url).await {
        Ok(pool) => pool,
        Err(e) => {
            services::skip(Service::Postgres, &e);
            return None;
        }
    };
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
        .execute(&admin)
        .await
        .unwrap();
    admin.close().await;
    Some(FreshDatabase {
        url: services::postgres_url_in_schema(&url, &schema),
        admin_url: url,
        schema,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_nodes_serve_the_same_domains_and_one_orders_the_certificate() {
    let Some(fresh) = fresh_database().await else {
        return;
    };
    let database = fresh.url.clone();
    let net = TestNet::start().await;
    // Both nodes answer on one public address's ports in production (anycast, a load
    // balancer); here each has its own address, and the CA reaches the first.
    let ip_a = net.next_ip();
    let ip_b = net.next_ip();
    let ports = Ports::pick(ip_a).await;
    let Some(pebble) = pebble(&net, ports).await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let mut config_a = config(&net, ip_a, ports, database.clone(), &pebble, dir.path());
    config_a.node_id = Some("node-a".to_owned());
    let mut config_b = config(&net, ip_b, ports, database, &pebble, dir.path());
    config_b.node_id = Some("node-b".to_owned());
    // Here the checker may reach loopback, so its full view can be asserted.
    config_a.verify_private_addresses = true;
    config_b.verify_private_addresses = true;
    // Node B is a second process behind the same public name; the CA validates at A's
    // address, so both must be able to answer the challenge there: B's listeners are its own.
    config_b.public_ip = vec![ip_a];
    let a = Serve::start(config_a).await.unwrap();
    let b = Serve::start(config_b).await.unwrap();
    let admin = a.admin_token().expect("first start").to_owned();
    assert!(
        b.admin_token().is_none(),
        "the second node finds the admin token"
    );
    net.zone().add_mx("example.org", 10, "mail.example.org");

    crate::support::api::create_tenant(a.addrs().api, &admin, "t").await;
    let (status, body) = api(
        &a,
        Method::POST,
        "/api/v1/domains",
        &admin,
        Some(json!({"domain": "example.org", "mode": "testing", "mx": ["mail.example.org"], "tenant": "t"})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    delegate(&net, &a, "example.org", a.addrs().dns[0]).await;

    // The certificate is ordered once, by one node, and both serve it.
    let dns = resolver(&net);
    eventually("the certificate", Duration::from_secs(60), || async {
        fetch_policy(dns.clone(), &pebble, ports.https, "example.org")
            .await
            .ok()
    })
    .await;
    // And the service's own (one order for reports.<zone> and mta-sts.reports.<zone>).
    eventually(
        "the service certificate",
        Duration::from_secs(60),
        || async {
            a.db()
                .certificate("reports.hosted.test")
                .await
                .ok()
                .flatten()
        },
    )
    .await;
    // Both nodes see the delegation and look for due certificates every second; wait until
    // each has finished a few more rounds, in which it could (wrongly) order a second one.
    let since = (a.certificate_rounds(), b.certificate_rounds());
    eventually(
        "three more certificate rounds on each node",
        Duration::from_secs(30),
        || async {
            (a.certificate_rounds() >= since.0 + 3 && b.certificate_rounds() >= since.1 + 3)
                .then_some(())
        },
    )
    .await;
    let log = pebble.log();
    assert_eq!(
        log.matches("Added order").count(),
        2,
        "one order of each certificate (the domain's, the service's) for both nodes:\n{log}"
    );
    // One account, shared through the database: a node that orders after another created it
    // looks it up (a second sign-me-up that adds none) instead of creating its own.
    assert_eq!(
        log.matches("There are now 1 accounts").count(),
        1,
        "one ACME account:\n{log}"
    );
    assert!(
        !log.contains("There are now 2 accounts"),
        "one ACME account:\n{log}"
    );
    let cert = a.db().certificate("example.org").await.unwrap().unwrap();
    assert!(["node-a", "node-b"].contains(&cert.issued_by.as_str()));
    let orders = a.db().acme_state("example.org").await.unwrap();
    assert!(
        orders.as_ref().is_none_or(|s| s.failures == 0),
        "{orders:?}"
    );

    // The checker engine behind verification fetches the policy the way senders do.
    let (status, verified) = api(
        &b,
        Method::POST,
        "/api/v1/domains/example.org/verify",
        &admin,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{verified}");
    let findings = verified["verification"]["check"]["findings"].to_string();
    assert!(!findings.contains("policy-fetch-failed"), "{findings}");
    assert_eq!(verified["verification"]["points_here"], true);

    // Senders now ask node B's DNS authority (the zone forwards there).
    net.zone().forward(super::harness::ZONE, b.addrs().dns[0]);
    let b_dns = resolver(&net);
    let old_id = super::harness::txt_id(b_dns.as_ref(), "example.org")
        .await
        .expect("node B answers the published id");

    // A change made through node A is served by node B within seconds, and the new id is
    // published (by either node's DNS) only once both serve the new policy.
    let (status, body) = api(
        &a,
        Method::PATCH,
        "/api/v1/domains/example.org",
        &admin,
        Some(json!({"mode": "enforce"})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let changed = tokio::time::Instant::now();
    eventually("the new id at node B", Duration::from_secs(10), || async {
        let id = super::harness::txt_id(b_dns.as_ref(), "example.org").await?;
        if id == old_id {
            return None;
        }
        for node in [&a, &b] {
            let policy = fetch_via(node, &pebble).await.expect("both nodes serve");
            assert!(
                policy.contains("mode: enforce"),
                "id {id} published while a node still serves {policy}"
            );
        }
        Some(())
    })
    .await;
    assert!(changed.elapsed() < Duration::from_secs(10));

    b.shutdown().await;
    a.shutdown().await;
}

/// The policy as one node's HTTPS listener serves it (each has its own address here).
async fn fetch_via(node: &Serve, pebble: &mtasts_testkit::pebble::Pebble) -> Option<String> {
    use std::sync::Arc;
    let addr = node.addrs().https[0];
    let connector = tokio_rustls::TlsConnector::from(Arc::new(
        rustls::ClientConfig::builder()
            .with_root_certificates(pebble.issuance_roots())
            .with_no_client_auth(),
    ));
    let stream = tokio::net::TcpStream::connect(addr).await.ok()?;
    let name = rustls_pki_types::ServerName::try_from("mta-sts.example.org").ok()?;
    let mut tls = connector.connect(name, stream).await.ok()?;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    tls.write_all(b"GET /.well-known/mta-sts.txt HTTP/1.1\r\nHost: mta-sts.example.org\r\nConnection: close\r\n\r\n")
        .await
        .ok()?;
    let mut out = Vec::new();
    tls.read_to_end(&mut out).await.ok();
    let text = String::from_utf8_lossy(&out).into_owned();
    text.starts_with("HTTP/1.1 200").then_some(text)
}
