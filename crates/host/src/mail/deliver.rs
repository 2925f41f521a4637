//! Storing an accepted message: the report core reads and stores it
//! ([`Intake::input`]: the input, every report and every error in one transaction), then its
//! arrival is recorded. Only when both are committed does the sender get `250`; on a database
//! error it gets `451` and retries (the retry is the same input: its reports count once).
//!
//! A message in which the report core finds no report is stored all the same (with the
//! errors found) and answered `250`: it is kept for an administrator
//! (`GET /api/v1/admin/mail`), not bounced.

use std::net::IpAddr;

use mtasts_proto::smtp_server::Envelope;
use mtasts_report::intake::{Intake, Outcome};
use mtasts_store::reports::{NewArrival, ReportDbError};

use super::dkim::DkimVerifier;

/// One message as received.
#[derive(Clone, Debug)]
pub struct Received {
    /// The client's address.
    pub peer: IpAddr,
    /// The EHLO/HELO name.
    pub helo: String,
    /// The envelope.
    pub envelope: Envelope,
    /// `(version, cipher suite)` when the message came over TLS.
    pub tls: Option<(String, String)>,
    /// The message, dot unstuffing undone.
    pub message: Vec<u8>,
    /// Unix seconds.
    pub received_at: i64,
}

/// What storing a message did.
#[derive(Clone, Debug)]
pub struct Delivered {
    /// The report core's outcome (input id, reports new and duplicate, errors).
    pub outcome: Outcome,
    /// The arrival's id.
    pub arrival: i64,
}

impl Delivered {
    /// The text of the `250` reply.
    pub fn summary(&self) -> String {
        let o = &self.outcome;
        format!(
            "as input {}: {} new report(s), {} duplicate(s), {} unreadable part(s)",
            o.input,
            o.new,
            o.duplicate,
            o.errors.len()
        )
    }
}

/// Stores messages into the reports database.
#[derive(Clone, Debug)]
pub struct Deliver {
    intake: Intake,
    dkim: Option<DkimVerifier>,
    metrics: crate::metrics::ServeMetrics,
}

impl Deliver {
    /// Stores through `intake`, without DKIM verification.
    pub fn new(intake: Intake) -> Deliver {
        Deliver {
            intake,
            dkim: None,
            metrics: crate::metrics::ServeMetrics::default(),
        }
    }

    /// Counts every message into `metrics` (`report_received("smtp", …)`).
    pub fn with_metrics(self, metrics: crate::metrics::ServeMetrics) -> Deliver {
        Deliver { metrics, ..self }
    }

    /// Where messages are counted.
    pub(crate) fn metrics(&self) -> &crate::metrics::ServeMetrics {
        &self.metrics
    }

    /// Also verifies every message's DKIM signatures with `verifier` (recorded, never
    /// required).
    pub fn with_dkim(self, verifier: DkimVerifier) -> Deliver {
        Deliver {
            dkim: Some(verifier),
            ..self
        }
    }

    /// Stores `received` and records its arrival; returns once both are committed.
    ///
    /// # Errors
    ///
    /// The database's error: nothing may be acknowledged.
    pub async fn deliver(&self, received: &Received) -> Result<Delivered, ReportDbError> {
        let dkim = match &self.dkim {
            Some(verifier) => verifier.verify(&received.message).await,
            None => serde_json::Value::Array(Vec::new()),
        };
        let source = format!("smtp:{}", received.peer);
        let outcome = self
            .intake
            .input(&received.message, &source, received.received_at)
            .await?;
        let recipients: Vec<String> = received
            .envelope
            .recipients
            .iter()
            .map(|(path, _)| path.clone())
            .collect();
        let peer = received.peer.to_canonical().to_string();
        let arrival = self
            .intake
            .db()
            .add_arrival(&NewArrival {
                input: outcome.input,
                channel: "smtp",
                peer_ip: &peer,
                helo: &received.helo,
                mail_from: &received.envelope.mail_from,
                recipients: &recipients,
                tls_version: received.tls.as_ref().map(|(v, _)| v.as_str()),
                tls_cipher: received.tls.as_ref().map(|(_, c)| c.as_str()),
                dkim: &dkim,
                reports: &outcome.reports,
                received_at: received.received_at,
            })
            .await?;
        Ok(Delivered { outcome, arrival })
    }
}
