//! The decision settings in force: answer profiles and static TLS levels, checked and built
//! from a [`Config`]. They are what a reload swaps; everything else (listeners, cache, DNS)
//! needs a restart.

use std::collections::HashMap;
use std::sync::Arc;

use mtasts_proto::domain_table::DomainTable;
use mtasts_proto::postfix::{AnswerStyle, TlsLevel, is_valid_match_entry};

use crate::config::{Config, ConfigError, ProfileConfig, StaticLevel};

/// How answers are written and which choices apply, selected by the socketmap name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Profile {
    /// The profile's name.
    pub name: String,
    /// What the answer may contain.
    pub style: AnswerStyle,
    /// Treat `testing` policies as `enforce`.
    pub strict_testing: bool,
    /// Answer `TEMP` when the TXT lookup fails temporarily and nothing is cached.
    pub temp_on_dns_error: bool,
}

impl Profile {
    fn from_config(name: &str, config: &ProfileConfig) -> Self {
        Profile {
            name: name.to_string(),
            style: AnswerStyle {
                servername: config.servername,
                sts_attributes: config.sts_attributes,
            },
            strict_testing: config.strict_testing,
            temp_on_dns_error: config.temp_on_dns_error,
        }
    }
}

/// The built-in profiles, as configuration (a `[profiles.NAME]` table of the same name
/// replaces one):
///
/// | Name | servername | STS attributes | testing as enforce | TEMP on DNS error |
/// |---|---|---|---|---|
/// | `postfix` | yes | no | no | no |
/// | `postfix-pre34` | no | no | no | no |
/// | `postfix310` | yes | yes | no | no |
/// | `strict-testing` | yes | no | yes | no |
/// | `strict-dns` | yes | no | no | yes |
pub fn builtin_profiles() -> Vec<(&'static str, ProfileConfig)> {
    let base = ProfileConfig::default();
    vec![
        ("postfix", base.clone()),
        (
            "postfix-pre34",
            ProfileConfig {
                servername: false,
                ..base.clone()
            },
        ),
        (
            "postfix310",
            ProfileConfig {
                sts_attributes: true,
                ..base.clone()
            },
        ),
        (
            "strict-testing",
            ProfileConfig {
                strict_testing: true,
                ..base.clone()
            },
        ),
        (
            "strict-dns",
            ProfileConfig {
                temp_on_dns_error: true,
                ..base
            },
        ),
    ]
}

/// Static TLS levels: exact domains and `.parent` suffix entries.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StaticLevels {
    table: DomainTable<TlsLevel>,
}

impl StaticLevels {
    /// The level for a normalised domain and the table key that gave it: an exact entry
    /// first, then the closest `.parent` entry (`.example.com` covers `a.example.com` and
    /// `a.b.example.com`, not `example.com`).
    pub fn lookup(&self, domain: &str) -> Option<(String, &TlsLevel)> {
        self.table.lookup(domain)
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.table.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Everything a decision needs from the configuration.
#[derive(Clone, Debug)]
pub struct Settings {
    /// Profiles by socketmap name (hashed with foldhash: one look-up per request, by a name
    /// the local Postfix chose).
    pub profiles: HashMap<String, Arc<Profile>, foldhash::fast::RandomState>,
    /// The profile for names not in `profiles`.
    pub default_profile: Arc<Profile>,
    /// Static levels.
    pub static_levels: StaticLevels,
    /// Whether DANE takes precedence over MTA-STS.
    pub dane: bool,
    /// Negative cache lifetime, seconds.
    pub negative_ttl: u64,
    /// Seconds a TXT check is trusted before asking again.
    pub grace: u64,
    /// Seconds a DANE finding is reused.
    pub dane_ttl: u64,
    /// Inbound TLS rules per partner (the policy service).
    pub inbound: Arc<mtasts_proto::postfix::policy::InboundRules>,
}

impl Settings {
    /// Checks and builds the settings. Errors name the offending key.
    pub fn from_config(config: &Config) -> Result<Settings, ConfigError> {
        config.check_limits()?;
        for server in &config.dns_servers {
            mtasts_net::dns::parse_server(server)
                .map_err(|e| ConfigError::Invalid(format!("dns_servers: {e}")))?;
        }
        let mut profiles = HashMap::default();
        for (name, profile) in builtin_profiles() {
            profiles.insert(
                name.to_string(),
                Arc::new(Profile::from_config(name, &profile)),
            );
        }
        for (name, profile) in &config.profiles {
            if name.is_empty() || name.contains(char::is_whitespace) {
                return Err(ConfigError::Invalid(format!(
                    "profile name {name:?} must be non-empty and without spaces (it is the socketmap name)"
                )));
            }
            profiles.insert(name.clone(), Arc::new(Profile::from_config(name, profile)));
        }
        let default_profile = profiles
            .get(&config.default_profile)
            .cloned()
            .ok_or_else(|| {
                ConfigError::Invalid(format!(
                    "default_profile {:?} is not a profile (known: {})",
                    config.default_profile,
                    sorted_names(&profiles)
                ))
            })?;
        let mut static_levels = StaticLevels::default();
        for (key, level) in &config.tls_levels {
            let parsed = parse_static_level(key, level)?;
            static_levels
                .table
                .insert(key, parsed)
                .map_err(|e| ConfigError::Invalid(format!("tls_levels key {e}")))?;
        }
        Ok(Settings {
            profiles,
            default_profile,
            static_levels,
            dane: config.dane,
            negative_ttl: config.cache.negative_ttl,
            grace: config.cache.grace,
            dane_ttl: config.cache.dane_ttl,
            inbound: Arc::new(crate::inbound::rules_from_config(&config.inbound)?),
        })
    }

    /// The profile for a socketmap name (the default profile for unknown names).
    pub fn profile(&self, name: &str) -> &Arc<Profile> {
        self.profiles.get(name).unwrap_or(&self.default_profile)
    }
}

fn sorted_names<S>(profiles: &HashMap<String, Arc<Profile>, S>) -> String {
    let mut names: Vec<&str> = profiles.keys().map(String::as_str).collect();
    names.sort_unstable();
    names.join(", ")
}

fn parse_static_level(key: &str, level: &StaticLevel) -> Result<TlsLevel, ConfigError> {
    let invalid = |what: String| ConfigError::Invalid(format!("tls_levels {key:?}: {what}"));
    let (text, matches) = match level {
        StaticLevel::Level(text) => (text.as_str(), &[][..]),
        StaticLevel::WithMatch(table) => (table.level.as_str(), table.matches.as_slice()),
    };
    let parsed: TlsLevel = text.parse().map_err(|e| invalid(format!("{e}")))?;
    if matches.is_empty() {
        return Ok(parsed);
    }
    if let Some(bad) = matches.iter().find(|m| !is_valid_match_entry(m)) {
        return Err(invalid(format!(
            "match entry {bad:?} is empty or contains ':', ',', '=', braces or spaces"
        )));
    }
    let matches = matches.to_vec();
    match parsed {
        TlsLevel::Verify { .. } => Ok(TlsLevel::Verify { matches }),
        TlsLevel::Secure { .. } => Ok(TlsLevel::Secure { matches }),
        other => Err(invalid(format!(
            "a match list needs level verify or secure, not {other}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(toml: &str) -> Result<Settings, ConfigError> {
        Settings::from_config(&Config::from_toml_str(toml).unwrap())
    }

    #[test]
    fn builtin_profiles_and_default() {
        let s = settings("").unwrap();
        assert_eq!(s.default_profile.name, "postfix");
        assert_eq!(s.profile("postfix").style, AnswerStyle::POSTFIX_3_4);
        assert_eq!(s.profile("postfix-pre34").style, AnswerStyle::POSTFIX_3_3);
        assert_eq!(s.profile("postfix310").style, AnswerStyle::POSTFIX_3_10);
        assert!(s.profile("strict-testing").strict_testing);
        assert!(s.profile("strict-dns").temp_on_dns_error);
        assert_eq!(s.profile("whatever").name, "postfix");
    }

    #[test]
    fn configured_profiles_add_and_replace() {
        let s = settings(
            "default_profile = \"mine\"\n[profiles.mine]\nsts_attributes = true\nservername = false\n[profiles.postfix]\nstrict_testing = true",
        )
        .unwrap();
        assert_eq!(s.default_profile.name, "mine");
        assert!(s.profile("unknown").style.sts_attributes);
        assert!(!s.profile("unknown").style.servername);
        assert!(s.profile("postfix").strict_testing);
        assert!(matches!(
            settings("default_profile = \"nope\""),
            Err(ConfigError::Invalid(_))
        ));
    }

    #[test]
    fn static_levels_exact_then_closest_suffix() {
        let s = settings(
            r#"
            [tls_levels]
            "Partner.Example" = "encrypt"
            ".corp.example" = { level = "secure", match = ["mx.corp.example"] }
            ".eu.corp.example" = "dane-only"
            "corp.example" = "may"
            "#,
        )
        .unwrap();
        let levels = &s.static_levels;
        assert_eq!(
            levels.lookup("partner.example"),
            Some(("partner.example".to_string(), &TlsLevel::Encrypt))
        );
        assert_eq!(levels.lookup("x.partner.example"), None);
        assert_eq!(
            levels.lookup("corp.example"),
            Some(("corp.example".to_string(), &TlsLevel::May))
        );
        assert_eq!(
            levels.lookup("a.b.corp.example"),
            Some((
                ".corp.example".to_string(),
                &TlsLevel::Secure {
                    matches: vec!["mx.corp.example".into()]
                }
            ))
        );
        assert_eq!(
            levels.lookup("x.eu.corp.example"),
            Some((".eu.corp.example".to_string(), &TlsLevel::DaneOnly))
        );
        assert_eq!(levels.lookup("example"), None);
    }

    #[test]
    fn bad_static_levels_are_rejected() {
        for toml in [
            "[tls_levels]\n\"a.example\" = \"strong\"",
            "[tls_levels]\n\"a.example\" = { level = \"encrypt\", match = [\"x\"] }",
            "[tls_levels]\n\"a.example\" = { level = \"secure\", match = [\"a:b\"] }",
            "[tls_levels]\n\"a.example\" = { level = \"secure\", match = [\"\"] }",
            "[tls_levels]\n\"not a domain\" = \"may\"",
            "[tls_levels]\n\"..x\" = \"may\"",
            "[tls_levels]\n\"A.example\" = \"may\"\n\"a.example\" = \"encrypt\"",
        ] {
            assert!(
                matches!(settings(toml), Err(ConfigError::Invalid(_))),
                "{toml}"
            );
        }
    }

    #[test]
    fn bad_dns_server_is_rejected() {
        assert!(settings("dns_servers = [\"resolver.example\"]").is_err());
        assert!(settings("dns_servers = [\"127.0.0.1:5353\", \"::1\"]").is_ok());
    }
}
