//! The serve nodes: each reports which generation its listeners serve, so the promoter knows
//! when a new version has reached all of them.

use super::error::db_error;
use super::sql::{self, NodeRowRaw};
use super::types::NodeRow;
use super::{HostDb, HostDbError, bounded, limits};

impl HostDb {
    /// Records that node `node_id` serves `loaded_generation` at `now` (its `started_at` is
    /// the `now` of its first heartbeat). Does not bump the generation: nodes heartbeat every
    /// second, and a bump would make every node reload forever.
    pub async fn heartbeat(
        &self,
        node_id: &str,
        loaded_generation: u64,
        now: i64,
    ) -> Result<(), HostDbError> {
        let node_id = limits::required("node id", node_id, limits::MAX_NAME_BYTES)?;
        let loaded_generation = limits::signed("loaded generation", loaded_generation)?;
        bounded(async {
            with_pool!(self, |pool| sqlx::query(sql::HEARTBEAT)
                .bind(node_id)
                .bind(loaded_generation)
                .bind(now)
                .execute(pool)
                .await
                .map_err(db_error)?
                .rows_affected());
            Ok(())
        })
        .await
    }

    /// The nodes whose last heartbeat is at or after `since`, sorted by id.
    pub async fn live_nodes(&self, since: i64) -> Result<Vec<NodeRow>, HostDbError> {
        bounded(async {
            let rows: Vec<NodeRowRaw> = with_pool!(self, |pool| sqlx::query_as(sql::LIVE_NODES)
                .bind(since)
                .fetch_all(pool)
                .await
                .map_err(db_error)?);
            Ok(sql::sorted(sql::convert(rows)?, |n: &NodeRow| &n.node_id))
        })
        .await
    }
}
