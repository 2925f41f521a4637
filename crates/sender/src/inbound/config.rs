//! The `[inbound]` configuration section: listeners for the policy service, the default
//! refusal, and rules keyed by sender domain, client hostname and client network.
//!
//! ```toml
//! [inbound]
//! tcp = ["127.0.0.1:8463"]
//! refuse = "450 4.7.0"
//!
//! [inbound.senders]
//! "partner.example" = "encrypt"
//! ".partner.example" = { level = "verify", min_tls = "TLSv1.2" }
//!
//! [inbound.clients]
//! "mx.bank.example" = { level = "encrypt", refuse = "550 5.7.0" }
//!
//! [inbound.networks]
//! "192.0.2.0/24" = "encrypt"
//! ```

use std::collections::BTreeMap;
use std::net::SocketAddr;

use mtasts_proto::postfix::policy::{InboundLevel, InboundRule, InboundRules, Refusal, RuleError};
use serde::{Deserialize, Serialize};

use crate::config::{ConfigError, UnixSocketConfig, parse_mode};

/// The `[inbound]` section. The policy service runs only when a listener is configured;
/// the rules are used by `mtasts query --inbound` either way.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct InboundConfig {
    /// TCP addresses of the policy service (`check_policy_service inet:IP:PORT`). Default
    /// none. The connection limits and timeouts are the socketmap's.
    pub tcp: Vec<SocketAddr>,
    /// A UNIX socket for the policy service (`check_policy_service unix:PATH`). Default none.
    pub unix: Option<UnixSocketConfig>,
    /// The refusal of rules without their own: a reply code and enhanced status code.
    /// Default `450 4.7.0` (the sender retries; `550 5.7.0` bounces).
    pub refuse: Option<String>,
    /// Rules by envelope sender domain (`domain`, or `.domain` for its subdomains).
    pub senders: BTreeMap<String, InboundRuleConfig>,
    /// Rules by verified client hostname (`host`, or `.domain` for hosts under it).
    pub clients: BTreeMap<String, InboundRuleConfig>,
    /// Rules by client address or network (`192.0.2.0/24`, `2001:db8::/32`, `192.0.2.7`).
    pub networks: BTreeMap<String, InboundRuleConfig>,
}

/// One rule: `"encrypt"`, or a table with options.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum InboundRuleConfig {
    /// `may`, `encrypt` or `verify`.
    Level(String),
    /// A level with options.
    Table(InboundRuleTable),
}

/// The table form of [`InboundRuleConfig`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InboundRuleTable {
    /// `may`, `encrypt` or `verify`.
    pub level: String,
    /// The lowest TLS version accepted (`TLSv1.2`, `TLSv1.3`). Default: any.
    #[serde(default)]
    pub min_tls: Option<String>,
    /// For `verify`: accepted client certificate or public key fingerprints
    /// (`smtpd_tls_fingerprint_digest`, hex with or without colons); a listed certificate
    /// is accepted even when no CA in `smtpd_tls_CAfile` signed it. Default: any certificate
    /// Postfix verified.
    #[serde(default)]
    pub fingerprints: Vec<String>,
    /// This rule's refusal instead of `inbound.refuse`.
    #[serde(default)]
    pub refuse: Option<String>,
}

/// Checks the section into rules; errors name the key.
pub fn rules_from_config(config: &InboundConfig) -> Result<InboundRules, ConfigError> {
    let refusal = match &config.refuse {
        Some(text) => text
            .parse::<Refusal>()
            .map_err(|e| ConfigError::Invalid(format!("inbound.refuse: {e}")))?,
        None => Refusal::default_temporary(),
    };
    if let Some(unix) = &config.unix {
        parse_mode(&unix.mode)?;
        if unix.path.as_os_str().is_empty() {
            return Err(ConfigError::Invalid(
                "inbound.unix.path is empty".to_string(),
            ));
        }
    }
    let mut rules = InboundRules::new(refusal);
    type Add = fn(&mut InboundRules, &str, InboundRule) -> Result<(), RuleError>;
    let tables: [(&str, &BTreeMap<String, InboundRuleConfig>, Add); 3] = [
        ("senders", &config.senders, InboundRules::add_sender),
        ("clients", &config.clients, InboundRules::add_client),
        ("networks", &config.networks, InboundRules::add_network),
    ];
    for (table, entries, add) in tables {
        for (key, rule) in entries {
            let invalid =
                |e: RuleError| ConfigError::Invalid(format!("inbound.{table} {key:?}: {e}"));
            let rule = rule_from_config(rule).map_err(invalid)?;
            add(&mut rules, key, rule).map_err(invalid)?;
        }
    }
    Ok(rules)
}

fn rule_from_config(config: &InboundRuleConfig) -> Result<InboundRule, RuleError> {
    match config {
        InboundRuleConfig::Level(level) => Ok(InboundRule::level(level.parse::<InboundLevel>()?)),
        InboundRuleConfig::Table(table) => Ok(InboundRule {
            level: table.level.parse()?,
            min_tls: table.min_tls.as_deref().map(str::parse).transpose()?,
            fingerprints: table.fingerprints.clone(),
            refuse: table.refuse.as_deref().map(str::parse).transpose()?,
        }),
    }
}

#[cfg(test)]
mod tests {
    use mtasts_proto::postfix::policy::{Identity, Session, TlsState};

    use crate::config::Config;

    use super::*;

    fn rules(toml: &str) -> Result<InboundRules, ConfigError> {
        let config = Config::from_toml_str(toml)?;
        rules_from_config(&config.inbound)
    }

    #[test]
    fn every_key_kind_and_option_is_read() {
        let rules = rules(
            r#"
            [inbound]
            tcp = ["127.0.0.1:8463"]
            refuse = "550 5.7.1"
            [inbound.senders]
            "Partner.Example" = "encrypt"
            ".partner.example" = { level = "verify", min_tls = "TLSv1.2", fingerprints = ["ab:cd"], refuse = "450 4.7.1" }
            [inbound.clients]
            "mx.bank.example" = "verify"
            [inbound.networks]
            "192.0.2.0/24" = "may"
            "#,
        )
        .unwrap();
        assert_eq!(rules.len(), 4);
        assert_eq!(rules.default_refusal.as_str(), "550 5.7.1");
        let plain = |sender: &str| Session {
            identity: Identity::new(Some(sender), Some("198.51.100.1".parse().unwrap()), None),
            tls: TlsState::default(),
            too_early: false,
        };
        assert!(
            rules
                .judge(&plain("a@partner.example"))
                .action()
                .starts_with("550 5.7.1 ")
        );
        assert!(
            rules
                .judge(&plain("a@x.partner.example"))
                .action()
                .starts_with("450 4.7.1 ")
        );
        assert_eq!(rules.judge(&plain("a@other.example")).action(), "DUNNO");
    }

    #[test]
    fn bad_values_name_their_key() {
        for (toml, needle) in [
            (
                "[inbound.senders]\n\"a.example\" = \"secure\"",
                "inbound.senders \"a.example\"",
            ),
            (
                "[inbound.senders]\n\"not a domain\" = \"encrypt\"",
                "inbound.senders",
            ),
            (
                "[inbound.clients]\n\"a.example\" = { level = \"may\", min_tls = \"TLSv1.2\" }",
                "inbound.clients",
            ),
            (
                "[inbound.networks]\n\"10.0.0.1/8\" = \"encrypt\"",
                "inbound.networks",
            ),
            (
                "[inbound.networks]\n\"192.0.2.0/24\" = { level = \"encrypt\", refuse = \"250 2.0.0\" }",
                "refusal",
            ),
            (
                "[inbound.senders]\n\"a.example\" = { level = \"encrypt\", min_tls = \"TLSv9\" }",
                "TLS version",
            ),
            ("[inbound]\nrefuse = \"550\"", "inbound.refuse"),
            ("[inbound.unix]\npath = \"/tmp/x\"\nmode = \"999\"", "mode"),
        ] {
            let err = rules(toml).unwrap_err().to_string();
            assert!(err.contains(needle), "{toml}: {err}");
        }
        // Unknown keys are syntax errors, like everywhere else.
        assert!(matches!(
            Config::from_toml_str("[inbound]\nbogus = 1"),
            Err(ConfigError::Syntax { .. })
        ));
        assert!(
            Config::from_toml_str(
                "[inbound.senders]\n\"a.example\" = { level = \"may\", bogus = 1 }"
            )
            .is_err()
        );
    }

    #[test]
    fn no_section_means_no_rules_and_no_listener() {
        let config = Config::from_toml_str("").unwrap();
        assert!(config.inbound.tcp.is_empty() && config.inbound.unix.is_none());
        assert!(rules_from_config(&config.inbound).unwrap().is_empty());
    }
}
