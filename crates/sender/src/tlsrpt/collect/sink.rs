//! Where collected results are committed: one small trait, implemented by the TLS-RPT store
//! (`mtasts_store::tlsrpt::TlsrptDb`, SQLite or PostgreSQL).

use futures::future::BoxFuture;
use mtasts_store::tlsrpt::{ResultRow, TlsrptDb};

/// Commits batches of aggregated results.
pub trait ResultSink: Send + Sync + 'static {
    /// Adds `batch` to the stored counts in one transaction. `Ok` means committed (durable);
    /// an error means nothing of the batch was stored and it may be tried again.
    fn record<'a>(&'a self, batch: &'a [ResultRow]) -> BoxFuture<'a, Result<(), String>>;
}

impl ResultSink for TlsrptDb {
    fn record<'a>(&'a self, batch: &'a [ResultRow]) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async move {
            TlsrptDb::record(self, batch)
                .await
                .map_err(|e| e.to_string())
        })
    }
}
