//! The serve nodes: each reports which generation its listeners serve, so the promoter knows
//! when a new version has reached all of them.
//!
//! Liveness compares heartbeat times, so every node should stamp and compare them with one
//! clock: [`HostDb::heartbeat_db_time`] and [`HostDb::live_nodes_within`] use the database's.
//! [`HostDb::heartbeat`] and [`HostDb::live_nodes`] take the caller's clock, which is only
//! right when every node's clock agrees. [`HostDb::delete_nodes_unseen_for`] removes the rows of
//! nodes that are gone, on the database's clock too.

use super::error::db_error;
use super::sql::{self, NodeRowRaw};
use super::types::NodeRow;
use super::{Backend, HostDb, HostDbError, bounded, limits};

// The rows of nodes gone for longer than $1 seconds by the database's clock: the exact
// complement of `live_within!` in sql.rs for the same number of seconds, so a node that
// `live_nodes_within(w)` counts is never deleted by `delete_nodes_unseen_for(r)` with r >= w.
const SQLITE_DELETE_UNSEEN: &str = "DELETE FROM host_nodes WHERE last_seen < unixepoch() - $1";
const POSTGRES_DELETE_UNSEEN: &str = "DELETE FROM host_nodes \
     WHERE last_seen < CAST(floor(extract(epoch FROM now())) AS bigint) - $1";

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

    /// Records that node `node_id` serves `loaded_generation`, stamping `last_seen` (and, on
    /// its first heartbeat, `started_at`) with the *database's* clock, so nodes whose clocks
    /// disagree are still compared fairly by [`HostDb::live_nodes_within`]. Does not bump the
    /// generation.
    pub async fn heartbeat_db_time(
        &self,
        node_id: &str,
        loaded_generation: u64,
    ) -> Result<(), HostDbError> {
        let node_id = limits::required("node id", node_id, limits::MAX_NAME_BYTES)?;
        let loaded_generation = limits::signed("loaded generation", loaded_generation)?;
        bounded(async {
            match &self.backend {
                Backend::Sqlite { pool, .. } => sqlx::query(sql::SQLITE_HEARTBEAT_DB_TIME)
                    .bind(node_id)
                    .bind(loaded_generation)
                    .execute(pool)
                    .await
                    .map(drop),
                Backend::Postgres { pool } => sqlx::query(sql::POSTGRES_HEARTBEAT_DB_TIME)
                    .bind(node_id)
                    .bind(loaded_generation)
                    .execute(pool)
                    .await
                    .map(drop),
            }
            .map_err(db_error)
        })
        .await
    }

    /// The nodes whose last heartbeat is at most `window_secs` seconds old by the *database's*
    /// clock (the counterpart of [`HostDb::heartbeat_db_time`]), sorted by id.
    /// [`HostDbError::Invalid`] for a negative window.
    pub async fn live_nodes_within(&self, window_secs: i64) -> Result<Vec<NodeRow>, HostDbError> {
        if window_secs < 0 {
            return Err(HostDbError::Invalid(format!(
                "liveness window {window_secs} s: must not be negative"
            )));
        }
        bounded(async {
            let rows: Vec<NodeRowRaw> = match &self.backend {
                Backend::Sqlite { pool, .. } => {
                    sqlx::query_as(sql::SQLITE_LIVE_NODES_WITHIN)
                        .bind(window_secs)
                        .fetch_all(pool)
                        .await
                }
                Backend::Postgres { pool } => {
                    sqlx::query_as(sql::POSTGRES_LIVE_NODES_WITHIN)
                        .bind(window_secs)
                        .fetch_all(pool)
                        .await
                }
            }
            .map_err(db_error)?;
            Ok(sql::sorted(sql::convert(rows)?, |n: &NodeRow| &n.node_id))
        })
        .await
    }

    /// Deletes the rows of nodes whose last heartbeat is more than `retention_secs` seconds
    /// old by the *database's* clock (nodes that stopped or were replaced), and returns how
    /// many went. A node whose heartbeat is at most `retention_secs` old stays, so with a
    /// retention at least the liveness window of [`HostDb::live_nodes_within`] no live node
    /// is ever deleted; a deleted node that comes back simply reports in again. Does not bump
    /// the generation. [`HostDbError::Invalid`] for a negative retention.
    pub async fn delete_nodes_unseen_for(&self, retention_secs: i64) -> Result<u64, HostDbError> {
        if retention_secs < 0 {
            return Err(HostDbError::Invalid(format!(
                "node retention {retention_secs} s: must not be negative"
            )));
        }
        bounded(async {
            match &self.backend {
                Backend::Sqlite { pool, .. } => sqlx::query(SQLITE_DELETE_UNSEEN)
                    .bind(retention_secs)
                    .execute(pool)
                    .await
                    .map(|done| done.rows_affected()),
                Backend::Postgres { pool } => sqlx::query(POSTGRES_DELETE_UNSEEN)
                    .bind(retention_secs)
                    .execute(pool)
                    .await
                    .map(|done| done.rows_affected()),
            }
            .map_err(db_error)
        })
        .await
    }
}
