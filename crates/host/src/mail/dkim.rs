//! DKIM (RFC 6376) verification of received report mail, with mail-auth: every signature's
//! result is recorded with the message's arrival and shown to administrators. It is **never
//! required**: real senders' signatures often do not cover the report headers, and a report
//! is data about the recipient's own domain, not a message to trust or reject.

use std::net::SocketAddr;
use std::time::Duration;

use mail_auth::hickory_resolver::TokioResolver;
use mail_auth::hickory_resolver::config::{
    ConnectionConfig, NameServerConfig, ResolveHosts, ResolverConfig,
};
use mail_auth::hickory_resolver::net::runtime::TokioRuntimeProvider;
use mail_auth::{AuthenticatedMessage, DkimResult, MessageAuthenticator};
use serde_json::{Value, json};

/// How long verifying one message's signatures may take (DNS lookups included).
const VERIFY_TIMEOUT: Duration = Duration::from_secs(10);
/// The most signatures looked at in one message.
const MAX_SIGNATURES: usize = 10;

/// Verifies the DKIM signatures of messages.
#[derive(Clone)]
pub struct DkimVerifier {
    authenticator: MessageAuthenticator,
}

impl std::fmt::Debug for DkimVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DkimVerifier").finish_non_exhaustive()
    }
}

impl DkimVerifier {
    /// Looks keys up through `servers` (serve's `dns` setting), or the system's resolvers
    /// when empty.
    ///
    /// # Errors
    ///
    /// The system's resolver configuration cannot be read.
    pub fn new(servers: &[SocketAddr]) -> Result<DkimVerifier, String> {
        let mut builder = if servers.is_empty() {
            TokioResolver::builder_tokio().map_err(|e| e.to_string())?
        } else {
            let name_servers = servers
                .iter()
                .map(|addr| {
                    let mut udp = ConnectionConfig::udp();
                    udp.port = addr.port();
                    let mut tcp = ConnectionConfig::tcp();
                    tcp.port = addr.port();
                    let mut ns = NameServerConfig::udp_and_tcp(addr.ip());
                    ns.connections = vec![udp, tcp];
                    ns
                })
                .collect();
            TokioResolver::builder_with_config(
                ResolverConfig::from_name_servers(name_servers),
                TokioRuntimeProvider::default(),
            )
        };
        let opts = builder.options_mut();
        opts.use_hosts_file = ResolveHosts::Never;
        opts.timeout = Duration::from_secs(4);
        opts.attempts = 1;
        opts.ndots = 0;
        let resolver = builder.build().map_err(|e| e.to_string())?;
        Ok(DkimVerifier {
            authenticator: MessageAuthenticator(resolver),
        })
    }

    /// One object per signature: `domain`, `selector`, `result` (`pass`, `fail`, `neutral`,
    /// `permerror`, `temperror`) and `reason` when not `pass`. An unsigned (or unparsable)
    /// message gives an empty array.
    pub async fn verify(&self, message: &[u8]) -> Value {
        let Some(parsed) = AuthenticatedMessage::parse(message) else {
            return Value::Array(Vec::new());
        };
        if parsed.dkim_headers.is_empty() && parsed.errors.is_empty() {
            return Value::Array(Vec::new());
        }
        let outputs =
            match tokio::time::timeout(VERIFY_TIMEOUT, self.authenticator.verify_dkim(&parsed))
                .await
            {
                Ok(outputs) => outputs,
                Err(_) => {
                    return json!([{ "result": "temperror", "reason": "DNS lookups timed out" }]);
                }
            };
        Value::Array(
            outputs
                .iter()
                .take(MAX_SIGNATURES)
                .map(|output| {
                    let (result, reason) = match output.result() {
                        DkimResult::Pass => ("pass", None),
                        DkimResult::Neutral(e) => ("neutral", Some(e.to_string())),
                        DkimResult::Fail(e) => ("fail", Some(e.to_string())),
                        DkimResult::PermError(e) => ("permerror", Some(e.to_string())),
                        DkimResult::TempError(e) => ("temperror", Some(e.to_string())),
                        DkimResult::None => ("none", None),
                    };
                    let mut entry = json!({ "result": result });
                    if let Some(signature) = output.signature() {
                        entry["domain"] = json!(signature.d);
                        entry["selector"] = json!(signature.s);
                    }
                    if let Some(reason) = reason {
                        entry["reason"] = json!(reason);
                    }
                    entry
                })
                .collect(),
        )
    }
}
