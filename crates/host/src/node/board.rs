//! The ACME challenge board of a node: a challenge goes into the database, and `publish`
//! returns only once every live node has loaded it, because the CA may reach any of them.

use std::time::Duration;

use futures::future::BoxFuture;
use mtasts_store::host::{ChallengeRow, HostDb};

use crate::acme::{AcmeError, Challenge, ChallengeBoard};

/// How long a published challenge stays in the database at most (orders time out sooner).
const CHALLENGE_LIFETIME_SECS: i64 = 900;

/// Challenges shared through the database.
pub(crate) struct DbChallengeBoard {
    pub(crate) db: HostDb,
    /// How recently a node must have reported to count as live.
    pub(crate) live_window: Duration,
    /// How long to wait for every live node to serve a challenge.
    pub(crate) propagation_timeout: Duration,
    pub(crate) clock: fn() -> i64,
    /// The names of the service's own certificate (`reports.<zone>`,
    /// `mta-sts.reports.<zone>`): their challenges are the service's, kept under the host
    /// name itself.
    pub(crate) service_hosts: [String; 2],
}

fn row(challenge: &Challenge, expires_at: i64, service: bool) -> ChallengeRow {
    let (cert_pem, key_pem) = match challenge {
        Challenge::Http01 { .. } => (None, None),
        Challenge::TlsAlpn01 {
            cert_pem, key_pem, ..
        } => (Some(cert_pem.clone()), Some(key_pem.clone())),
    };
    ChallengeRow {
        token: challenge.token().to_owned(),
        // Rows belong to the hosted (policy) domain, so removing a domain removes them; the
        // service's own rows are kept under the host (the loader reads them back by it).
        domain: if service {
            challenge.host().to_owned()
        } else {
            challenge
                .host()
                .strip_prefix("mta-sts.")
                .unwrap_or(challenge.host())
                .to_owned()
        },
        kind: challenge.kind().as_str().to_owned(),
        key_authorization: challenge.key_authorization().to_owned(),
        cert_pem,
        key_pem,
        expires_at,
    }
}

impl DbChallengeBoard {
    async fn wait_for_nodes(&self, generation: u64) -> Result<(), AcmeError> {
        let give_up = tokio::time::Instant::now() + self.propagation_timeout;
        loop {
            // Liveness on the database's clock: node clocks may differ.
            let window = i64::try_from(self.live_window.as_secs()).unwrap_or(i64::MAX);
            let nodes =
                self.db
                    .live_nodes_within(window)
                    .await
                    .map_err(|e| AcmeError::Unavailable {
                        detail: format!("database: {e}"),
                    })?;
            let loaded: Vec<u64> = nodes.iter().map(|n| n.loaded_generation).collect();
            if mtasts_proto::hosted::versions::publishable(generation, &loaded) {
                return Ok(());
            }
            if tokio::time::Instant::now() >= give_up {
                return Err(AcmeError::Unavailable {
                    detail: "not every serve node loaded the challenge in time".to_owned(),
                });
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

impl ChallengeBoard for DbChallengeBoard {
    fn publish<'a>(&'a self, challenge: &'a Challenge) -> BoxFuture<'a, Result<(), AcmeError>> {
        Box::pin(async move {
            let expires_at = (self.clock)() + CHALLENGE_LIFETIME_SECS;
            let unavailable = |e: mtasts_store::host::HostDbError| AcmeError::Unavailable {
                detail: format!("database: {e}"),
            };
            let service = self.service_hosts.iter().any(|h| h == challenge.host());
            let row = row(challenge, expires_at, service);
            let stored = if service {
                self.db.put_service_challenge(row).await
            } else {
                self.db.put_challenge(row).await
            };
            stored.map_err(unavailable)?;
            let generation = self.db.generation().await.map_err(unavailable)?;
            self.wait_for_nodes(generation).await
        })
    }

    fn withdraw<'a>(&'a self, challenge: &'a Challenge) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            if let Err(error) = self.db.delete_challenge(challenge.token()).await {
                // It expires by itself; a stale challenge answers nothing useful to anyone.
                tracing::warn!(%error, "could not withdraw an ACME challenge");
            }
        })
    }
}
