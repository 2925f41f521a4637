//! Conformance cases of the node rows of `HostDb`: heartbeats, liveness on the database's
//! clock, and deleting the rows of nodes that are gone. A child of `host`, run on SQLite and
//! PostgreSQL.

use super::*;

both_databases!(crate::host::run, crate::host::Kind;
    nodes,
    nodes_on_the_database_clock,
    nodes_unseen_for_the_retention_are_deleted,
);

pub(crate) async fn nodes(ctx: Ctx) {
    let db = &ctx.db;
    // Heartbeats are bookkeeping: they must not move the generation (nodes would reload
    // forever).
    bumps(db, 0, async {
        db.heartbeat("node-a", 0, 100).await.unwrap();
        db.heartbeat("node-b", 0, 150).await.unwrap();
        db.heartbeat("node-a", 7, 200).await.unwrap();
    })
    .await;
    let live = db.live_nodes(150).await.unwrap();
    assert_eq!(live.len(), 2);
    assert_eq!(live[0].node_id, "node-a");
    assert_eq!(
        (
            live[0].loaded_generation,
            live[0].last_seen,
            live[0].started_at
        ),
        (7, 200, 100)
    );
    assert_eq!(live[1].node_id, "node-b");
    let recent: Vec<String> = db
        .live_nodes(151)
        .await
        .unwrap()
        .into_iter()
        .map(|n| n.node_id)
        .collect();
    assert_eq!(recent, vec!["node-a".to_string()]);
    assert!(db.live_nodes(201).await.unwrap().is_empty());
    invalid(db.heartbeat("", 0, 1).await);
    invalid(db.heartbeat("n", u64::MAX, 1).await);
}

pub(crate) async fn nodes_on_the_database_clock(ctx: Ctx) {
    let db = &ctx.db;
    let clock = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64
    };
    // A node whose own clock is an hour behind stamped itself with it: by its clock it
    // is live, by the database's it is not.
    db.heartbeat("lagging", 0, clock() - 3600).await.unwrap();
    let before = clock();
    bumps(db, 0, async {
        db.heartbeat_db_time("node-b", 0).await.unwrap();
        db.heartbeat_db_time("node-a", 3).await.unwrap();
    })
    .await;
    let after = clock();
    let live = db.live_nodes_within(60).await.unwrap();
    let ids: Vec<&str> = live.iter().map(|n| n.node_id.as_str()).collect();
    assert_eq!(
        ids,
        vec!["node-a", "node-b"],
        "sorted, the lagging node left out"
    );
    // The database runs on this machine here, so its clock is ours (to the second).
    for node in &live {
        assert!(
            (before - 1..=after + 1).contains(&node.last_seen),
            "{node:?} stamped between {before} and {after}"
        );
        assert_eq!(node.started_at, node.last_seen);
    }
    assert_eq!(live[0].loaded_generation, 3);

    // A later heartbeat moves the generation and `last_seen`, not `started_at`.
    let started = live[0].started_at;
    db.heartbeat("node-a", 3, 1).await.unwrap();
    db.heartbeat_db_time("node-a", 9).await.unwrap();
    let a = db.live_nodes_within(60).await.unwrap().remove(0);
    assert_eq!((a.node_id.as_str(), a.loaded_generation), ("node-a", 9));
    assert_eq!(a.started_at, started);
    assert!(a.last_seen >= before - 1);

    // The window counts back from the database's clock: an hour covers the lagging node.
    let all = db.live_nodes_within(7200).await.unwrap();
    assert_eq!(all.len(), 3);
    invalid(db.live_nodes_within(-1).await);
    invalid(db.heartbeat_db_time("", 0).await);
    invalid(db.heartbeat_db_time("n", u64::MAX).await);
}

pub(crate) async fn nodes_unseen_for_the_retention_are_deleted(ctx: Ctx) {
    let db = &ctx.db;
    // The database runs on this machine here, so its clock is ours (to the second).
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    db.heartbeat("gone-a-day", 4, now - 86_400 - 100)
        .await
        .unwrap();
    db.heartbeat("gone-an-hour", 4, now - 3_600).await.unwrap();
    db.heartbeat("quiet-a-minute", 5, now - 60).await.unwrap();
    db.heartbeat_db_time("live", 6).await.unwrap();
    // A clock far ahead stamped this one: by the database's clock it was seen "later".
    db.heartbeat("ahead", 6, now + 3_600).await.unwrap();
    let ids = |nodes: Vec<mtasts_store::host::NodeRow>| -> Vec<String> {
        nodes.into_iter().map(|n| n.node_id).collect()
    };

    // Cleaning up is bookkeeping: no reload.
    let deleted = bumps(db, 0, db.delete_nodes_unseen_for(86_400))
        .await
        .unwrap();
    assert_eq!(deleted, 1);
    assert_eq!(
        ids(db.live_nodes(i64::MIN).await.unwrap()),
        ["ahead", "gone-an-hour", "live", "quiet-a-minute"]
    );
    assert_eq!(db.delete_nodes_unseen_for(86_400).await.unwrap(), 0);
    assert_eq!(db.delete_nodes_unseen_for(1_800).await.unwrap(), 1);

    // With the retention equal to the liveness window, exactly the live nodes stay.
    let live = ids(db.live_nodes_within(30).await.unwrap());
    assert_eq!(live, ["ahead", "live"]);
    assert_eq!(db.delete_nodes_unseen_for(30).await.unwrap(), 1);
    assert_eq!(ids(db.live_nodes(i64::MIN).await.unwrap()), live);

    // A deleted node that comes back reports in as new.
    db.heartbeat_db_time("gone-an-hour", 7).await.unwrap();
    let back = db.live_nodes_within(30).await.unwrap();
    assert!(
        back.iter()
            .any(|n| n.node_id == "gone-an-hour" && n.loaded_generation == 7)
    );
    invalid(db.delete_nodes_unseen_for(-1).await);
}
