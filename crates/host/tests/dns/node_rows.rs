//! The rows of nodes that are gone (the heartbeats the authority's publish order relies on):
//! a running node deletes those not seen for the node retention, and never a live one.
//! Rows are stamped with the database's clock or, for the gone ones, back-dated through the
//! caller-clock heartbeat; the database (SQLite in a temporary folder) runs on this machine,
//! so both clocks agree.

use std::sync::Arc;
use std::time::{Duration, Instant};

use mtasts_host::node::{Node, NodeOptions, NodeParts, zone_settings};
use mtasts_host::snapshot::{self, Snapshot};
use mtasts_net::dns::{DnsConfig, HickoryDns};
use mtasts_store::host::HostDb;

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// A node on `db` with fast maintenance rounds and the given retention.
async fn node(db: &HostDb, retention: Duration) -> Node {
    let mut options = NodeOptions::new("node-under-test".to_owned());
    options.poll_interval = Duration::from_millis(100);
    options.maintenance_interval = Duration::from_millis(100);
    options.node_retention = retention;
    // Nothing is hosted, so nothing is looked up; the discard port answers nothing anyway.
    let dns = HickoryDns::new(&DnsConfig {
        servers: Some(vec!["127.0.0.1:9".parse().unwrap()]),
        ..DnsConfig::default()
    })
    .unwrap();
    Node::start(
        db.clone(),
        snapshot::handle(Snapshot::default()),
        NodeParts {
            settings: zone_settings("hosted.test", vec!["192.0.2.10".parse().unwrap()], 300)
                .unwrap(),
            options,
            dns: Arc::new(dns),
            checker: None,
            reports: None,
            acme: None,
        },
    )
    .await
    .unwrap()
}

async fn node_ids(db: &HostDb) -> Vec<String> {
    db.live_nodes(i64::MIN)
        .await
        .unwrap()
        .into_iter()
        .map(|n| n.node_id)
        .collect()
}

/// Waits (at most 10 s) until `gone` has no row; the rows at that moment.
async fn until_deleted(db: &HostDb, gone: &str) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let ids = node_ids(db).await;
        if !ids.iter().any(|id| id == gone) {
            return ids;
        }
        assert!(
            Instant::now() < deadline,
            "{gone} was never deleted: {ids:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn temporary_db() -> (HostDb, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite:{}", dir.path().join("nodes.db").display());
    (HostDb::open(&url).await.unwrap(), dir)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_running_node_deletes_the_rows_of_nodes_gone_longer_than_the_retention() {
    let (db, _dir) = temporary_db().await;
    let node = node(&db, Duration::from_secs(600)).await;
    let now = unix_now();
    db.heartbeat("gone-two-days", 3, now - 2 * 86_400)
        .await
        .unwrap();
    db.heartbeat("gone-an-hour", 3, now - 3_600).await.unwrap();
    db.heartbeat("quiet-five-minutes", 3, now - 300)
        .await
        .unwrap();
    db.heartbeat_db_time("peer", 3).await.unwrap();

    until_deleted(&db, "gone-two-days").await;
    let ids = until_deleted(&db, "gone-an-hour").await;
    assert_eq!(
        ids,
        ["node-under-test", "peer", "quiet-five-minutes"],
        "live nodes and nodes quiet for less than the retention stay"
    );
    // The cleanup is bookkeeping: the generation the nodes serve did not move.
    assert_eq!(db.generation().await.unwrap(), 0);
    node.shutdown().await;
}

/// A retention shorter than the liveness window (15 s) is raised to it: the promoter still
/// counts every node it counted before, and none of them loses its row.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_node_keeps_its_row_whatever_the_retention() {
    let (db, _dir) = temporary_db().await;
    let node = node(&db, Duration::ZERO).await;
    let now = unix_now();
    db.heartbeat("gone-a-minute", 3, now - 60).await.unwrap();
    db.heartbeat("seen-5-s-ago", 3, now - 5).await.unwrap();
    db.heartbeat_db_time("peer", 3).await.unwrap();
    let live_before: Vec<String> = db
        .live_nodes_within(15)
        .await
        .unwrap()
        .into_iter()
        .map(|n| n.node_id)
        .collect();
    assert_eq!(live_before, ["node-under-test", "peer", "seen-5-s-ago"]);

    let ids = until_deleted(&db, "gone-a-minute").await;
    assert_eq!(ids, live_before);
    // Several more rounds (100 ms apart) leave the live rows alone.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(node_ids(&db).await, live_before);
    node.shutdown().await;
}
