//! Postfix SMTP access policy delegation (`check_policy_service`, SMTPD_POLICY_README) for
//! inbound TLS requirements per partner: the request reader ([`request`]) and the rules and
//! decision ([`rules`]). No I/O: the resolver's policy server frames bytes with
//! [`find_request_end`], parses with [`parse_request`], judges with [`InboundRules::judge`]
//! and writes [`encode_answer`].
//!
//! ```
//! use mtasts_proto::postfix::policy::*;
//! let mut rules = InboundRules::default();
//! rules.add_sender("partner.example", InboundRule::level(InboundLevel::Encrypt)).unwrap();
//! let wire = b"request=smtpd_access_policy\nprotocol_state=RCPT\nsender=a@partner.example\nclient_address=192.0.2.1\n\n";
//! let end = find_request_end(wire).unwrap().unwrap();
//! let request = parse_request(&wire[..end]).unwrap();
//! let verdict = rules.judge(&Session::from_request(&request));
//! assert!(verdict.action().starts_with("450 4.7.0 TLS (STARTTLS) is required"));
//! ```

pub mod request;
pub mod rules;

pub use request::{
    MAX_ATTRIBUTES, MAX_LINE_BYTES, MAX_REQUEST_BYTES, PolicyRequest, PolicyRequestError,
    encode_answer, find_request_end, parse_request,
};
pub use rules::{
    Identity, InboundLevel, InboundRule, InboundRules, Outcome, Refusal, RuleError, RuleKey,
    Session, Shortfall, TlsState, TlsVersion, Verdict, normalize_fingerprint, sender_domain,
};

#[cfg(test)]
#[path = "policy/tests.rs"]
mod tests;
