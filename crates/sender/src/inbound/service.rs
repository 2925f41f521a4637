//! The inbound policy service: Postfix's `check_policy_service` protocol on the shared
//! connection machinery ([`crate::framed`]), answered from the rules in the daemon's current
//! settings (swapped on reload).
//!
//! A request that breaks the framing bounds or does not parse is logged (warning) and the
//! connection closed without an answer, as the protocol prescribes "in case of trouble":
//! Postfix retries (`smtpd_policy_service_try_limit`) and then applies
//! `smtpd_policy_service_default_action` (by default `451 4.3.5`), so mail is deferred, never
//! let through unchecked.

use std::future::Future;
use std::ops::Range;
use std::sync::Arc;

use mtasts_listen::{Listener, Server};
use mtasts_proto::postfix::policy::{
    Outcome, PolicyRequest, Session, Verdict, encode_answer, find_request_end, parse_request,
};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::daemon::Daemon;
use crate::framed::{Framing, Refuse};
use crate::socketmap::ServeOptions;

/// Starts the policy service on `listener` (TCP or UNIX) with the socketmap's limits.
pub fn spawn(
    listener: impl Into<Listener>,
    daemon: Arc<Daemon>,
    options: ServeOptions,
    shutdown: &CancellationToken,
) -> Server {
    let metrics = daemon.metrics().clone();
    crate::framed::spawn(
        listener,
        Arc::new(PolicyService { daemon }),
        options,
        metrics,
        shutdown,
    )
}

/// Answers policy requests from the daemon's inbound rules.
pub struct PolicyService {
    daemon: Arc<Daemon>,
}

impl PolicyService {
    /// Judges one parsed request with the rules in force, counts and logs it.
    pub fn decide(&self, request: &PolicyRequest<'_>) -> Verdict {
        let settings = self.daemon.settings();
        let verdict = settings.inbound.judge(&Session::from_request(request));
        let metrics = self.daemon.metrics();
        metrics.inbound_request(verdict.outcome.as_str());
        let rule = verdict.rule.as_ref().map(|(key, _)| key.to_string());
        match &verdict.outcome {
            Outcome::Refused { shortfall, .. } => {
                let rule = rule.unwrap_or_default();
                metrics.inbound_refusal(&rule);
                tracing::info!(
                    sender = request.sender.unwrap_or("<>"),
                    client_address = ?request.client_address,
                    client_name = request.client_name.unwrap_or(""),
                    queue_id = request.queue_id.unwrap_or(""),
                    tls = request.encryption_protocol.unwrap_or("none"),
                    %rule,
                    requirement = %shortfall,
                    "inbound session refused"
                );
            }
            Outcome::TooEarly => tracing::warn!(
                protocol_state = request.protocol_state.unwrap_or(""),
                "policy request before MAIL FROM: call check_policy_service from smtpd_recipient_restrictions (sender and TLS are not known yet); answering 451"
            ),
            _ => tracing::debug!(
                sender = request.sender.unwrap_or("<>"),
                client_address = ?request.client_address,
                rule = rule.as_deref().unwrap_or("none"),
                outcome = verdict.outcome.as_str(),
                "inbound session checked"
            ),
        }
        verdict
    }
}

impl Framing for PolicyService {
    const LABEL: &'static str = "policy";

    fn frame(buf: &[u8]) -> Result<Option<(Range<usize>, usize)>, String> {
        match find_request_end(buf) {
            Ok(end) => Ok(end.map(|n| (0..n, n))),
            Err(e) => Err(format!("policy request refused: {e}")),
        }
    }

    fn answer<'a>(
        &'a self,
        request: &'a [u8],
        _until: Instant,
        out: &'a mut Vec<u8>,
    ) -> impl Future<Output = Result<(), Refuse>> + Send + 'a {
        // The decision is pure and immediate: the deadline never matters.
        let result = match parse_request(request) {
            Ok(request) => {
                encode_answer(&self.decide(&request).action(), out);
                Ok(())
            }
            Err(e) => {
                self.daemon.metrics().inbound_request("malformed");
                tracing::warn!(error = %e, "malformed policy request; closing the connection without an answer (Postfix retries, then defers)");
                Err(Refuse)
            }
        };
        std::future::ready(result)
    }

    fn count_end(&self, kind: &'static str) {
        // Parse errors were counted when they happened; broken framing is a malformed
        // request too. Timeouts and closes are connection events, logged by `framed`.
        if kind == "framing" {
            self.daemon.metrics().inbound_request("malformed");
        }
    }
}
