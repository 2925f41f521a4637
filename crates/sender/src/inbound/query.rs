//! `mtasts query --inbound SENDER CLIENT`: the rule a session from CLIENT with envelope
//! sender SENDER matches, and what it would get in plaintext, with TLS, and with a verified
//! client certificate.

use std::net::IpAddr;

use mtasts_proto::postfix::policy::{Identity, InboundRules, Session, TlsState};
use serde::Serialize;

use crate::config::ConfigError;

/// The report.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct InboundReport {
    /// The sender domain as matched (`None`: null sender or no domain).
    pub sender_domain: Option<String>,
    /// The client address, if given.
    pub client_address: Option<IpAddr>,
    /// The verified client hostname, if given.
    pub client_name: Option<String>,
    /// The matching rule (`sender partner.example`), or `None`.
    pub rule: Option<String>,
    /// The rule's level, or `None`.
    pub level: Option<String>,
    /// Each kind of session and its `action=`.
    pub sessions: Vec<SessionAnswer>,
}

/// One kind of session and its answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SessionAnswer {
    /// `plaintext`, `TLSv1.2`, `TLSv1.3`, `TLSv1.3 + verified client certificate`.
    pub session: &'static str,
    /// The `action=` value Postfix would get.
    pub action: String,
}

/// Reads CLIENT: an address (`192.0.2.1`, `2001:db8::1`), `hostname[address]` as Postfix
/// logs clients, or a hostname alone (taken as verified).
pub fn parse_client(client: &str) -> Result<(Option<String>, Option<IpAddr>), ConfigError> {
    let client = client.trim();
    let bad = || {
        ConfigError::Invalid(format!(
            "client {client:?} is not an address, hostname or hostname[address]"
        ))
    };
    if let Ok(ip) = client.parse::<IpAddr>() {
        return Ok((None, Some(ip)));
    }
    let (name, ip) = match client.split_once('[') {
        Some((name, rest)) => {
            let ip = rest
                .strip_suffix(']')
                .and_then(|ip| ip.strip_prefix("IPv6:").or(Some(ip)))
                .and_then(|ip| ip.parse::<IpAddr>().ok())
                .ok_or_else(bad)?;
            (name, Some(ip))
        }
        None => (client, None),
    };
    if name.is_empty() || name.eq_ignore_ascii_case("unknown") {
        return Ok((None, ip));
    }
    mtasts_proto::domain::normalize_domain(name).map_err(|_| bad())?;
    Ok((Some(name.to_owned()), ip))
}

/// The report for SENDER (`<>` or empty for the null sender) and CLIENT (see
/// [`parse_client`]) under `rules`.
pub fn inbound_report(
    rules: &InboundRules,
    sender: &str,
    client: &str,
) -> Result<InboundReport, ConfigError> {
    let (name, ip) = parse_client(client)?;
    let sender = sender.trim().trim_start_matches('<').trim_end_matches('>');
    let identity = Identity::new(Some(sender).filter(|s| !s.is_empty()), ip, name.as_deref());
    let found = rules.find(&identity);
    let tls = |protocol: Option<&str>, trusted_cert: bool| TlsState {
        protocol: protocol.map(str::to_owned),
        trusted_cert,
        fingerprints: Vec::new(),
    };
    let kinds: [(&'static str, TlsState); 4] = [
        ("plaintext", tls(None, false)),
        ("TLSv1.2", tls(Some("TLSv1.2"), false)),
        ("TLSv1.3", tls(Some("TLSv1.3"), false)),
        (
            "TLSv1.3 + verified client certificate",
            tls(Some("TLSv1.3"), true),
        ),
    ];
    let sessions = kinds
        .into_iter()
        .map(|(session, tls)| SessionAnswer {
            session,
            action: rules
                .judge(&Session {
                    identity: identity.clone(),
                    tls,
                    too_early: false,
                })
                .action(),
        })
        .collect();
    Ok(InboundReport {
        rule: found.as_ref().map(|(key, _)| key.to_string()),
        level: found.as_ref().map(|(_, rule)| rule.level.to_string()),
        sender_domain: identity.sender_domain,
        client_address: identity.client_address,
        client_name: identity.client_name,
        sessions,
    })
}

#[cfg(test)]
mod tests {
    use mtasts_proto::postfix::policy::{InboundLevel, InboundRule};

    use super::*;

    #[test]
    fn clients_are_read_as_postfix_logs_them() {
        assert_eq!(
            parse_client("192.0.2.1").unwrap(),
            (None, Some("192.0.2.1".parse().unwrap()))
        );
        assert_eq!(
            parse_client("mx.example[192.0.2.1]").unwrap(),
            (
                Some("mx.example".into()),
                Some("192.0.2.1".parse().unwrap())
            )
        );
        assert_eq!(
            parse_client("unknown[2001:db8::1]").unwrap(),
            (None, Some("2001:db8::1".parse().unwrap()))
        );
        assert_eq!(
            parse_client("mx.example").unwrap(),
            (Some("mx.example".into()), None)
        );
        assert!(parse_client("mx.example[nope]").is_err());
        assert!(parse_client("not a host").is_err());
    }

    #[test]
    fn report_shows_each_kind_of_session() {
        let mut rules = InboundRules::default();
        rules
            .add_sender("partner.example", InboundRule::level(InboundLevel::Verify))
            .unwrap();
        let report = inbound_report(&rules, "<a@partner.example>", "192.0.2.1").unwrap();
        assert_eq!(report.rule.as_deref(), Some("sender partner.example"));
        assert_eq!(report.level.as_deref(), Some("verify"));
        let actions: Vec<&str> = report.sessions.iter().map(|s| s.action.as_str()).collect();
        assert!(actions[0].contains("STARTTLS"), "{actions:?}");
        assert!(actions[1].contains("client certificate"), "{actions:?}");
        assert!(actions[2].contains("client certificate"), "{actions:?}");
        assert_eq!(actions[3], "DUNNO");
        let none = inbound_report(&rules, "<>", "192.0.2.1").unwrap();
        assert_eq!(none.rule, None);
        assert!(none.sessions.iter().all(|s| s.action == "DUNNO"));
    }
}
