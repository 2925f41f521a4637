//! Inbound TLS rules per partner and the decision for one session.
//!
//! Rules are keyed three ways: by client network (`192.0.2.0/24`, `2001:db8::/32`, a single
//! address), by verified client hostname (`mx.partner.example`, `.partner.example`), and by
//! envelope sender domain (`partner.example`, `.partner.example`). When several match, the
//! kind decides, in this order: **network, then client hostname, then sender**; within a kind
//! the most specific entry (longest prefix; exact name over `.parent`, closest `.parent`)
//! wins. The machine a session comes from cannot be forged the way a MAIL FROM can, so a
//! rule about the machine is the administrator's more precise statement (for instance a
//! relay inside the network allowed to pass a partner's mail in plaintext).
//!
//! Levels: `may` (no requirement), `encrypt` (TLS: `encryption_protocol` present), `verify`
//! (TLS and a client certificate Postfix verified against `smtpd_tls_CAfile`:
//! `ccert_subject` present, which Postfix sends only for a trusted certificate; with
//! `fingerprints`, a certificate or public key fingerprint in the list instead: a pinned
//! certificate is its own trust anchor, as in Postfix's `check_ccert_access`), each with an
//! optional minimum TLS version.
//!
//! Cases decided here (each tested):
//!
//! * The null sender `<>`, a sender without `@`, or a sender domain that is not a domain name
//!   (an address literal): sender rules cannot match; network and hostname rules still apply.
//! * `client_name=unknown` (no forward-confirmed name): hostname rules cannot match.
//!   `reverse_client_name` is never matched (it is whatever the PTR record says).
//! * Missing `encryption_protocol`: plaintext.
//! * A TLS version string this module does not know: TLS for `encrypt`/`verify`, but it
//!   fails a minimum version (it cannot be shown to meet it).
//! * `protocol_state` `CONNECT`, `EHLO` or `HELO`: neither the sender nor STARTTLS is known
//!   yet; when any rule exists the answer is a `451 4.3.5` naming the misplaced
//!   `check_policy_service` (see [`Outcome::TooEarly`]), never a silent `DUNNO`.
//!   A missing or unknown state is judged like `RCPT` (with what the request holds).
//! * A session that meets its rule, and a session without a rule, get `DUNNO` (never `OK`,
//!   which would skip the restrictions after it, such as `reject_unauth_destination`).

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use thiserror::Error;

use super::request::PolicyRequest;
use crate::domain::normalize_domain;
use crate::domain_table::{DomainKeyError, DomainTable};
use crate::forwarded::{Network, NetworkError};

/// An inbound requirement level.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum InboundLevel {
    /// No requirement (the default for everyone).
    May,
    /// The session must use TLS.
    Encrypt,
    /// The session must use TLS with a verified client certificate.
    Verify,
}

impl InboundLevel {
    /// The keyword.
    pub fn as_str(self) -> &'static str {
        match self {
            InboundLevel::May => "may",
            InboundLevel::Encrypt => "encrypt",
            InboundLevel::Verify => "verify",
        }
    }
}

impl fmt::Display for InboundLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a rule is not valid.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum RuleError {
    /// Not `may`, `encrypt` or `verify`.
    #[error("unknown inbound level {0:?}: use may, encrypt or verify")]
    Level(String),
    /// Not a TLS version name.
    #[error("unknown TLS version {0:?}: use TLSv1, TLSv1.1, TLSv1.2 or TLSv1.3")]
    TlsVersion(String),
    /// Not `4NN 4.N.N` or `5NN 5.N.N`.
    #[error(
        "refusal {0:?} is not a reply code and enhanced status code such as \"450 4.7.0\" or \"550 5.7.0\""
    )]
    Refusal(String),
    /// A fingerprint that is not hex bytes (colons optional).
    #[error("fingerprint {0:?} is not hex bytes such as \"AB:CD:…\"")]
    Fingerprint(String),
    /// `min_tls` or `fingerprints` on a level they do not apply to.
    #[error("{0}")]
    Inconsistent(&'static str),
    /// A bad sender or client hostname key.
    #[error(transparent)]
    DomainKey(#[from] DomainKeyError),
    /// A bad network key.
    #[error(transparent)]
    Network(#[from] NetworkError),
    /// A network given twice.
    #[error("network {0} is given twice")]
    DuplicateNetwork(Network),
}

impl FromStr for InboundLevel {
    type Err = RuleError;

    fn from_str(s: &str) -> Result<Self, RuleError> {
        match s {
            "may" => Ok(InboundLevel::May),
            "encrypt" => Ok(InboundLevel::Encrypt),
            "verify" => Ok(InboundLevel::Verify),
            other => Err(RuleError::Level(other.to_owned())),
        }
    }
}

/// A TLS protocol version, as OpenSSL names it in `encryption_protocol`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TlsVersion {
    /// SSLv3.
    Ssl3,
    /// TLSv1 (1.0).
    Tls1_0,
    /// TLSv1.1.
    Tls1_1,
    /// TLSv1.2.
    Tls1_2,
    /// TLSv1.3.
    Tls1_3,
}

impl TlsVersion {
    /// OpenSSL's name (`TLSv1.2`).
    pub fn as_str(self) -> &'static str {
        match self {
            TlsVersion::Ssl3 => "SSLv3",
            TlsVersion::Tls1_0 => "TLSv1",
            TlsVersion::Tls1_1 => "TLSv1.1",
            TlsVersion::Tls1_2 => "TLSv1.2",
            TlsVersion::Tls1_3 => "TLSv1.3",
        }
    }
}

impl fmt::Display for TlsVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for TlsVersion {
    type Err = RuleError;

    /// OpenSSL's names, and `TLSv1.0` for `TLSv1`.
    fn from_str(s: &str) -> Result<Self, RuleError> {
        Ok(match s {
            "SSLv3" => TlsVersion::Ssl3,
            "TLSv1" | "TLSv1.0" => TlsVersion::Tls1_0,
            "TLSv1.1" => TlsVersion::Tls1_1,
            "TLSv1.2" => TlsVersion::Tls1_2,
            "TLSv1.3" => TlsVersion::Tls1_3,
            other => return Err(RuleError::TlsVersion(other.to_owned())),
        })
    }
}

/// The reply code and enhanced status code of a refusal (`450 4.7.0`); the text naming the
/// requirement is added per session.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Refusal(String);

impl Refusal {
    /// `450 4.7.0`: mail is retried by the sender, not lost, while a partner fixes TLS.
    pub fn default_temporary() -> Refusal {
        Refusal("450 4.7.0".to_owned())
    }

    /// The code pair as written (`550 5.7.0`).
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Default for Refusal {
    fn default() -> Self {
        Refusal::default_temporary()
    }
}

impl FromStr for Refusal {
    type Err = RuleError;

    /// `4NN 4.X.Y` or `5NN 5.X.Y` (the enhanced code's class must match the reply code's).
    fn from_str(s: &str) -> Result<Self, RuleError> {
        let bad = || RuleError::Refusal(s.to_owned());
        let (code, enhanced) = s.trim().split_once(' ').ok_or_else(bad)?;
        let class = code.as_bytes().first().copied().ok_or_else(bad)?;
        if code.len() != 3
            || !code.bytes().all(|b| b.is_ascii_digit())
            || !matches!(class, b'4' | b'5')
        {
            return Err(bad());
        }
        let parts: Vec<&str> = enhanced.split('.').collect();
        let digits = |p: &str, max: usize| {
            !p.is_empty() && p.len() <= max && p.bytes().all(|b| b.is_ascii_digit())
        };
        if parts.len() != 3
            || parts[0].as_bytes() != [class]
            || !digits(parts[1], 3)
            || !digits(parts[2], 3)
        {
            return Err(bad());
        }
        Ok(Refusal(format!("{code} {enhanced}")))
    }
}

/// One inbound rule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InboundRule {
    /// The level.
    pub level: InboundLevel,
    /// The lowest TLS version accepted (`encrypt` and `verify` only).
    pub min_tls: Option<TlsVersion>,
    /// Accepted certificate or public key fingerprints, uppercase hex without colons
    /// (`verify` only); empty: any certificate Postfix verified.
    pub fingerprints: Vec<String>,
    /// The refusal for this rule; `None`: the rule set's default.
    pub refuse: Option<Refusal>,
}

impl InboundRule {
    /// A rule of `level` alone.
    pub fn level(level: InboundLevel) -> InboundRule {
        InboundRule {
            level,
            min_tls: None,
            fingerprints: Vec::new(),
            refuse: None,
        }
    }

    /// Checks that `min_tls` and `fingerprints` fit the level, and normalises fingerprints.
    pub fn checked(mut self) -> Result<InboundRule, RuleError> {
        if self.level == InboundLevel::May && self.min_tls.is_some() {
            return Err(RuleError::Inconsistent(
                "min_tls needs level encrypt or verify",
            ));
        }
        if self.level != InboundLevel::Verify && !self.fingerprints.is_empty() {
            return Err(RuleError::Inconsistent("fingerprints need level verify"));
        }
        self.fingerprints = self
            .fingerprints
            .iter()
            .map(|f| normalize_fingerprint(f).ok_or_else(|| RuleError::Fingerprint(f.clone())))
            .collect::<Result<_, _>>()?;
        Ok(self)
    }
}

/// Uppercase hex without colons; `None` when `text` is not hex bytes.
pub fn normalize_fingerprint(text: &str) -> Option<String> {
    let hex: String = text.trim().chars().filter(|&c| c != ':').collect();
    (!hex.is_empty() && hex.len().is_multiple_of(2) && hex.bytes().all(|b| b.is_ascii_hexdigit()))
        .then(|| hex.to_ascii_uppercase())
}

/// Which entry matched.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum RuleKey {
    /// A client network.
    Network(Network),
    /// A client hostname key (`name` or `.parent`).
    Client(String),
    /// A sender domain key (`domain` or `.parent`).
    Sender(String),
}

impl RuleKey {
    /// `network`, `client` or `sender`.
    pub fn kind(&self) -> &'static str {
        match self {
            RuleKey::Network(_) => "network",
            RuleKey::Client(_) => "client",
            RuleKey::Sender(_) => "sender",
        }
    }
}

impl fmt::Display for RuleKey {
    /// `network 192.0.2.0/24`, `client .partner.example`, `sender partner.example`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RuleKey::Network(n) => write!(f, "network {n}"),
            RuleKey::Client(k) => write!(f, "client {k}"),
            RuleKey::Sender(k) => write!(f, "sender {k}"),
        }
    }
}

/// Every inbound rule and the default refusal.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct InboundRules {
    /// Longest prefix first, so the first match is the most specific.
    networks: Vec<(Network, InboundRule)>,
    clients: DomainTable<InboundRule>,
    senders: DomainTable<InboundRule>,
    /// The refusal of rules without their own.
    pub default_refusal: Refusal,
}

impl InboundRules {
    /// No rules; refusals `default_refusal`.
    pub fn new(default_refusal: Refusal) -> InboundRules {
        InboundRules {
            default_refusal,
            ..InboundRules::default()
        }
    }

    /// Adds a network rule (`192.0.2.0/24`, `2001:db8::/32`, `192.0.2.7`).
    pub fn add_network(&mut self, key: &str, rule: InboundRule) -> Result<(), RuleError> {
        let network: Network = key.parse()?;
        let rule = rule.checked()?;
        if self.networks.iter().any(|(n, _)| *n == network) {
            return Err(RuleError::DuplicateNetwork(network));
        }
        self.networks.push((network, rule));
        self.networks
            .sort_by_key(|(n, _)| std::cmp::Reverse(n.prefix()));
        Ok(())
    }

    /// Adds a client hostname rule (`mx.partner.example` or `.partner.example`).
    pub fn add_client(&mut self, key: &str, rule: InboundRule) -> Result<(), RuleError> {
        let rule = rule.checked()?;
        Ok(self.clients.insert(key, rule)?)
    }

    /// Adds a sender domain rule (`partner.example` or `.partner.example`).
    pub fn add_sender(&mut self, key: &str, rule: InboundRule) -> Result<(), RuleError> {
        let rule = rule.checked()?;
        Ok(self.senders.insert(key, rule)?)
    }

    /// Number of rules.
    pub fn len(&self) -> usize {
        self.networks.len() + self.clients.len() + self.senders.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The rule for a session's identity, by the precedence of the module docs.
    pub fn find(&self, identity: &Identity) -> Option<(RuleKey, &InboundRule)> {
        if let Some(ip) = identity.client_address
            && let Some((network, rule)) = self.networks.iter().find(|(n, _)| n.contains(ip))
        {
            return Some((RuleKey::Network(*network), rule));
        }
        if let Some(name) = &identity.client_name
            && let Some((key, rule)) = self.clients.lookup(name)
        {
            return Some((RuleKey::Client(key), rule));
        }
        if let Some(domain) = &identity.sender_domain
            && let Some((key, rule)) = self.senders.lookup(domain)
        {
            return Some((RuleKey::Sender(key), rule));
        }
        None
    }

    /// The decision for one session.
    pub fn judge(&self, session: &Session) -> Verdict {
        if self.is_empty() {
            return Verdict::new(None, Outcome::NoRule);
        }
        if session.too_early {
            return Verdict::new(None, Outcome::TooEarly);
        }
        let Some((key, rule)) = self.find(&session.identity) else {
            return Verdict::new(None, Outcome::NoRule);
        };
        let refusal = rule.refuse.as_ref().unwrap_or(&self.default_refusal);
        let outcome = match shortfall(rule, &session.tls) {
            None => Outcome::Satisfied,
            Some(shortfall) => Outcome::Refused {
                refusal: refusal.clone(),
                shortfall,
            },
        };
        Verdict::new(Some((key, rule.clone())), outcome)
    }
}

/// What identifies a session for rule matching (normalised).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Identity {
    /// The envelope sender's domain; `None` for `<>`, no `@`, or not a domain name.
    pub sender_domain: Option<String>,
    /// The client address.
    pub client_address: Option<IpAddr>,
    /// The verified client hostname; `None` when `unknown`.
    pub client_name: Option<String>,
}

impl Identity {
    /// The identity from a sender address, a client address and a verified hostname, as
    /// the request gives them.
    pub fn new(
        sender: Option<&str>,
        client_address: Option<IpAddr>,
        client_name: Option<&str>,
    ) -> Identity {
        Identity {
            sender_domain: sender.and_then(sender_domain),
            client_address: client_address.map(|ip| ip.to_canonical()),
            client_name: client_name
                .filter(|name| !name.eq_ignore_ascii_case("unknown"))
                .and_then(|name| normalize_domain(name).ok()),
        }
    }
}

/// The domain of an envelope sender (after the last `@`), normalised; `None` without `@`
/// or when it is not a domain name (an address literal).
pub fn sender_domain(sender: &str) -> Option<String> {
    let (_, domain) = sender.rsplit_once('@')?;
    normalize_domain(domain).ok()
}

/// The TLS state of a session.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TlsState {
    /// `encryption_protocol`; `None`: plaintext.
    pub protocol: Option<String>,
    /// A certificate Postfix verified (`ccert_subject` present).
    pub trusted_cert: bool,
    /// Fingerprints of a presented certificate and its key, normalised.
    pub fingerprints: Vec<String>,
}

/// One session as the rules see it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Session {
    /// Who.
    pub identity: Identity,
    /// How.
    pub tls: TlsState,
    /// Asked before MAIL FROM (`CONNECT`, `EHLO`, `HELO`).
    pub too_early: bool,
}

impl Session {
    /// The session of a parsed request.
    pub fn from_request(request: &PolicyRequest<'_>) -> Session {
        let fingerprints = [request.ccert_fingerprint, request.ccert_pubkey_fingerprint]
            .into_iter()
            .flatten()
            .filter_map(normalize_fingerprint)
            .collect();
        Session {
            identity: Identity::new(request.sender, request.client_address, request.client_name),
            tls: TlsState {
                protocol: request.encryption_protocol.map(str::to_owned),
                trusted_cert: request.ccert_subject.is_some(),
                fingerprints,
            },
            too_early: matches!(
                request
                    .protocol_state
                    .map(str::to_ascii_uppercase)
                    .as_deref(),
                Some("CONNECT" | "EHLO" | "HELO")
            ),
        }
    }
}

/// What a session lacks.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Shortfall {
    /// Plaintext.
    NoTls,
    /// TLS older than the minimum.
    TlsTooOld {
        /// The session's version.
        have: TlsVersion,
        /// The minimum.
        need: TlsVersion,
    },
    /// A TLS version name this module does not know, under a minimum.
    TlsUnknown {
        /// The minimum.
        need: TlsVersion,
    },
    /// No client certificate Postfix verified.
    NoVerifiedCert,
    /// No client certificate with a configured fingerprint.
    NoPinnedCert,
}

impl fmt::Display for Shortfall {
    /// The requirement, for the refusal text and logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Shortfall::NoTls => f.write_str("TLS (STARTTLS) is required"),
            Shortfall::TlsTooOld { have, need } => {
                write!(f, "{need} or later is required, not {have}")
            }
            Shortfall::TlsUnknown { need } => {
                write!(
                    f,
                    "{need} or later is required, the TLS version is not known"
                )
            }
            Shortfall::NoVerifiedCert => {
                f.write_str("TLS with a client certificate this server verifies is required")
            }
            Shortfall::NoPinnedCert => {
                f.write_str("TLS with a client certificate of a configured fingerprint is required")
            }
        }
    }
}

fn shortfall(rule: &InboundRule, tls: &TlsState) -> Option<Shortfall> {
    if rule.level == InboundLevel::May {
        return None;
    }
    let Some(protocol) = &tls.protocol else {
        return Some(Shortfall::NoTls);
    };
    if let Some(need) = rule.min_tls {
        match protocol.parse::<TlsVersion>() {
            Ok(have) if have < need => return Some(Shortfall::TlsTooOld { have, need }),
            Ok(_) => {}
            Err(_) => return Some(Shortfall::TlsUnknown { need }),
        }
    }
    if rule.level == InboundLevel::Verify {
        if !rule.fingerprints.is_empty() {
            if !tls
                .fingerprints
                .iter()
                .any(|f| rule.fingerprints.contains(f))
            {
                return Some(Shortfall::NoPinnedCert);
            }
        } else if !tls.trusted_cert {
            return Some(Shortfall::NoVerifiedCert);
        }
    }
    None
}

/// How a session fared.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Outcome {
    /// No rule applies: `DUNNO`.
    NoRule,
    /// The rule is met: `DUNNO`.
    Satisfied,
    /// The rule is not met: the refusal.
    Refused {
        /// The code pair.
        refusal: Refusal,
        /// What is missing.
        shortfall: Shortfall,
    },
    /// Asked before MAIL FROM while rules exist: `451 4.3.5`, because neither the sender nor
    /// STARTTLS is known yet (with `smtpd_delay_reject = no` and the check in
    /// `smtpd_client_restrictions` or `smtpd_helo_restrictions`).
    TooEarly,
}

impl Outcome {
    /// The metric label: `no-rule`, `satisfied`, `refused`, `too-early`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Outcome::NoRule => "no-rule",
            Outcome::Satisfied => "satisfied",
            Outcome::Refused { .. } => "refused",
            Outcome::TooEarly => "too-early",
        }
    }
}

/// The decision for one session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verdict {
    /// The rule that applied and its key.
    pub rule: Option<(RuleKey, InboundRule)>,
    /// The outcome.
    pub outcome: Outcome,
}

impl Verdict {
    fn new(rule: Option<(RuleKey, InboundRule)>, outcome: Outcome) -> Verdict {
        Verdict { rule, outcome }
    }

    /// The `action=` value: `DUNNO`, or the refusal with a text naming the requirement and
    /// the rule (`450 4.7.0 TLS (STARTTLS) is required for this sender (inbound rule sender
    /// partner.example: encrypt)`).
    pub fn action(&self) -> String {
        match (&self.outcome, &self.rule) {
            (Outcome::Refused { refusal, shortfall }, Some((key, rule))) => format!(
                "{} {shortfall} for mail from here (inbound rule {key}: {})",
                refusal.as_str(),
                rule.level
            ),
            (Outcome::TooEarly, _) => "451 4.3.5 Server configuration problem: the inbound TLS policy service must be called from smtpd_recipient_restrictions".to_owned(),
            _ => "DUNNO".to_owned(),
        }
    }
}
