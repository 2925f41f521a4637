//! What a sending MTA says about one delivery request: the TLS-RPT policy domain, the TLSRPT
//! record it found, and per applied policy whether the session succeeded and which failure
//! details it saw. Collected from libtlsrpt datagrams ([`super::datagram`]) and from JSON over
//! HTTP ([`parse_results_json`]), aggregated per UTC day by the store, and turned into RFC 8460
//! reports by [`super::outgoing`].
//!
//! Aggregation groups by canonical keys ([`PolicyKey::to_key`], [`FailureKey::to_key`]):
//! compact JSON with the RFC 8460 §4.4 names in a fixed order, so the same policy or failure
//! always has the same bytes and the store needs no knowledge of their inside.
//!
//! Invariants of every value this module and [`super::datagram`] hand out, so that a report
//! built from them parses back without notes: policy and result types are registered ones (no
//! `Other`), optional strings are never empty (`""` is absent), the policy domain is present
//! (the recipient domain when the MTA sent none: sys4 #51), and domains are keys
//! ([`domain_key`]).
//!
//! ```
//! use mtasts_proto::tlsrpt::session::parse_results_json;
//! let body = br#"{"recipient-domain": "Example.COM.", "tlsrpt-record": "v=TLSRPTv1; rua=mailto:t@example.com",
//!   "policies": [{"policy-type": "sts", "policy-string": ["version: STSv1", "mode: testing"],
//!                 "mx-host": ["*.mx.example.com"], "result": "failure",
//!                 "failure-details": [{"result-type": "certificate-expired", "receiving-mx-hostname": "a.mx.example.com"}]}]}"#;
//! let results = parse_results_json(body).unwrap();
//! assert_eq!(results[0].domain, "example.com");
//! let policy = &results[0].policies[0];
//! assert!(policy.failed);
//! assert_eq!(policy.policy.domain.as_deref(), Some("example.com"));
//! assert_eq!(policy.failures[0].to_key(),
//!     r#"{"result-type":"certificate-expired","receiving-mx-hostname":"a.mx.example.com"}"#);
//! ```

use std::fmt::Write as _;

use crate::ResultType;
use crate::json::{self, Json};
use crate::tlsrpt::members::{
    MemberError, array, document, missing, optional, string, string_list, wrong,
};
use crate::tlsrpt::report::PolicyType;

/// The largest JSON body of results read over HTTP, in bytes.
pub const MAX_RESULTS_BODY_BYTES: usize = 1 << 20;
/// The most result objects in one HTTP body.
pub const MAX_RESULTS_PER_BODY: usize = 10_000;
/// The most policies one delivery request may report (libtlsrpt allows several; Postfix sends one).
pub const MAX_POLICIES_PER_SESSION: usize = 64;
/// The most failure details one policy of one delivery request may carry (Postfix sends one).
pub const MAX_DETAILS_PER_POLICY: usize = 256;

/// One delivery request's TLS outcome as the MTA reports it (one datagram, or one JSON object).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct SessionResult {
    /// The recipient (policy) domain, as a key: see [`domain_key`].
    pub domain: String,
    /// The raw `_smtp._tls` TXT record text the MTA used (it names the report's recipients).
    pub record: String,
    /// One entry per policy applied, in the order sent (never empty).
    pub policies: Vec<PolicyResult>,
}

/// One applied policy's outcome within a delivery request.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct PolicyResult {
    /// The policy as the report names it.
    pub policy: PolicyKey,
    /// Whether the session failed under this policy (libtlsrpt `f`: 0 success, 1 failure).
    pub failed: bool,
    /// The failure details of this session (usually none or one; counted one each).
    pub failures: Vec<FailureKey>,
}

/// The policy as RFC 8460 §4.4 reports it; its canonical key is how aggregation groups sessions.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct PolicyKey {
    /// `policy-type`.
    pub policy_type: PolicyType,
    /// `policy-domain`.
    pub domain: Option<String>,
    /// `policy-string`, in order (STS policy lines, or TLSA records).
    pub strings: Vec<String>,
    /// `mx-host` patterns, in order.
    pub mx: Vec<String>,
}

/// One `failure-details` entry without its count: the grouping key (RFC 8460 §4.4 names).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct FailureKey {
    /// `result-type`.
    pub result_type: ResultType,
    /// `sending-mta-ip`.
    pub sending_ip: Option<String>,
    /// `receiving-mx-hostname`.
    pub receiving_mx: Option<String>,
    /// `receiving-mx-helo`.
    pub receiving_helo: Option<String>,
    /// `receiving-ip`.
    pub receiving_ip: Option<String>,
    /// `additional-information`.
    pub additional: Option<String>,
    /// `failure-reason-code`.
    pub reason_code: Option<String>,
}

/// What one policy of one session adds to the day's counts, in keys: the one counting rule
/// (a session counts once, as a success or a failure; each failure detail counts once, the
/// same detail twice in one session twice), for the store's upserts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tally {
    /// [`PolicyKey::to_key`].
    pub policy: String,
    /// 1 when the session succeeded under the policy, else 0.
    pub successes: u64,
    /// 1 when it failed, else 0.
    pub failures: u64,
    /// [`FailureKey::to_key`] with how often it occurred in this session.
    pub details: Vec<(String, u64)>,
}

impl SessionResult {
    /// The counts this session adds, one [`Tally`] per policy (equal policies within one
    /// session stay separate entries; adding them up is the store's upsert).
    pub fn tallies(&self) -> Vec<Tally> {
        self.policies
            .iter()
            .map(|p| {
                let mut details: Vec<(String, u64)> = Vec::with_capacity(p.failures.len());
                for failure in &p.failures {
                    let key = failure.to_key();
                    match details.iter_mut().find(|(k, _)| *k == key) {
                        Some((_, n)) => *n += 1,
                        None => details.push((key, 1)),
                    }
                }
                Tally {
                    policy: p.policy.to_key(),
                    successes: u64::from(!p.failed),
                    failures: u64::from(p.failed),
                    details,
                }
            })
            .collect()
    }
}

/// A key text that is not the canonical form [`PolicyKey::to_key`] or [`FailureKey::to_key`]
/// writes (a corrupted or foreign database row).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("not a canonical TLS-RPT key: {reason}")]
pub struct KeyError {
    /// What is wrong, for people.
    pub reason: String,
}

/// Why an HTTP body of results was refused. [`SessionError::kind`] is a short stable label.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SessionError {
    /// The body is larger than [`MAX_RESULTS_BODY_BYTES`].
    #[error("the body is {size} bytes, above the {limit}-byte limit")]
    TooLarge {
        /// Its size in bytes.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// Not JSON, not UTF-8, or nested too deeply.
    #[error("not JSON: {message}")]
    NotJson {
        /// The parser's message, with line and column.
        message: String,
    },
    /// An object names a member twice.
    #[error("ambiguous JSON: {message}")]
    DuplicateMember {
        /// The parser's message.
        message: String,
    },
    /// A required member is absent.
    #[error("{path} is missing")]
    Missing {
        /// Where, e.g. `[0].policies[1].result`.
        path: String,
    },
    /// A member has the wrong JSON type.
    #[error("{path} is {found}, expected {expected}")]
    WrongType {
        /// Where.
        path: String,
        /// What the format wants.
        expected: &'static str,
        /// What was sent.
        found: &'static str,
    },
    /// A member the format does not have (a typo such as `mx-host-pattern` loses data, C119).
    #[error("{path} is not a member of this format")]
    UnknownMember {
        /// Where.
        path: String,
    },
    /// A value outside what the format allows.
    #[error("{path}: {reason}")]
    BadValue {
        /// Where.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// An array has more entries than its limit, or a string more bytes.
    #[error("{path} is longer than its limit of {limit}")]
    TooMany {
        /// Where.
        path: String,
        /// The limit (entries or bytes).
        limit: usize,
    },
    /// A libtlsrpt datagram object inside the body was refused.
    #[error("{path}: {error}")]
    Datagram {
        /// Where.
        path: String,
        /// Why.
        error: Box<super::datagram::DatagramError>,
    },
}

impl SessionError {
    /// A short stable label per kind, for metrics and logs (`too-large`, `not-json`, …).
    pub fn kind(&self) -> &'static str {
        match self {
            SessionError::TooLarge { .. } => "too-large",
            SessionError::NotJson { .. } => "not-json",
            SessionError::DuplicateMember { .. } => "duplicate-member",
            SessionError::Missing { .. } => "missing-member",
            SessionError::WrongType { .. } => "wrong-type",
            SessionError::UnknownMember { .. } => "unknown-member",
            SessionError::BadValue { .. } => "bad-value",
            SessionError::TooMany { .. } => "too-many",
            SessionError::Datagram { error, .. } => error.kind(),
        }
    }
}

/// The key under which a recipient or policy domain is aggregated: lowercase A-labels without
/// the trailing dot when it is a host name ([`crate::domain::normalize_domain`]); otherwise (an
/// MTA may pass anything) the text trimmed, ASCII-lowercased, one trailing dot removed, as
/// sys4's collector does. `None` when nothing but dots is left.
pub fn domain_key(domain: &str) -> Option<String> {
    if let Ok(key) = crate::domain::normalize_domain(domain) {
        return Some(key);
    }
    let trimmed = domain.trim();
    let lower = trimmed
        .strip_suffix('.')
        .unwrap_or(trimmed)
        .to_ascii_lowercase();
    (!lower.bytes().all(|b| b == b'.')).then_some(lower)
}

/// Appends `s` as a JSON string literal (quotes and escapes), the one JSON string writer of the
/// TLS-RPT sender side.
pub(crate) fn push_json_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{08}' => out.push_str("\\b"),
            '\u{0c}' => out.push_str("\\f"),
            c if u32::from(c) < 0x20 || c == '\u{7f}' => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

fn push_member(out: &mut String, first: &mut bool, name: &str) {
    if !*first {
        out.push(',');
    }
    *first = false;
    push_json_string(out, name);
    out.push(':');
}

fn push_string_array(out: &mut String, items: &[String]) {
    out.push('[');
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        push_json_string(out, item);
    }
    out.push(']');
}

impl PolicyKey {
    /// Writes the members of the RFC 8460 `policy` object (without braces): `policy-type`,
    /// `policy-string`, `policy-domain` (when known), `mx-host` (when any).
    pub(crate) fn write_members(&self, out: &mut String) {
        let mut first = true;
        push_member(out, &mut first, "policy-type");
        push_json_string(out, self.policy_type.as_str());
        push_member(out, &mut first, "policy-string");
        push_string_array(out, &self.strings);
        if let Some(domain) = &self.domain {
            push_member(out, &mut first, "policy-domain");
            push_json_string(out, domain);
        }
        if !self.mx.is_empty() {
            push_member(out, &mut first, "mx-host");
            push_string_array(out, &self.mx);
        }
    }

    /// The canonical key: the RFC 8460 `policy` object as compact JSON, members in a fixed
    /// order; equal policies have equal bytes.
    pub fn to_key(&self) -> String {
        let mut out = String::from("{");
        self.write_members(&mut out);
        out.push('}');
        out
    }

    /// Reads a key written by [`PolicyKey::to_key`]; anything else (other member order,
    /// spacing, members) is an error, so one policy never has two keys.
    pub fn from_key(key: &str) -> Result<Self, KeyError> {
        let root = key_object(key)?;
        let mut policy_type = None;
        let mut domain = None;
        let mut strings = Vec::new();
        let mut mx = Vec::new();
        for (name, value) in &root {
            match (name.as_str(), value) {
                ("policy-type", Json::String(s)) => policy_type = Some(PolicyType::from_sent(s)),
                ("policy-domain", Json::String(s)) => domain = Some(s.clone()),
                ("policy-string", Json::Array(items)) => strings = key_strings(items)?,
                ("mx-host", Json::Array(items)) => mx = key_strings(items)?,
                _ => return Err(key_error(format!("unexpected member {name:?}"))),
            }
        }
        let policy = PolicyKey {
            policy_type: policy_type.ok_or_else(|| key_error("no policy-type".into()))?,
            domain,
            strings,
            mx,
        };
        canonical(key, policy.to_key())?;
        Ok(policy)
    }
}

impl FailureKey {
    /// Writes the members of a `failure-details` entry (without braces and count):
    /// `result-type` then each known field in RFC 8460 §4.4 order.
    pub(crate) fn write_members(&self, out: &mut String) {
        let mut first = true;
        push_member(out, &mut first, "result-type");
        push_json_string(out, self.result_type.as_str());
        for (name, value) in self.fields() {
            if let Some(value) = value {
                push_member(out, &mut first, name);
                push_json_string(out, value);
            }
        }
    }

    fn fields(&self) -> [(&'static str, &Option<String>); 6] {
        [
            ("sending-mta-ip", &self.sending_ip),
            ("receiving-mx-hostname", &self.receiving_mx),
            ("receiving-mx-helo", &self.receiving_helo),
            ("receiving-ip", &self.receiving_ip),
            ("additional-information", &self.additional),
            ("failure-reason-code", &self.reason_code),
        ]
    }

    /// The canonical key: the failure-details entry without `failed-session-count`, compact
    /// JSON, members in a fixed order, absent fields left out.
    pub fn to_key(&self) -> String {
        let mut out = String::from("{");
        self.write_members(&mut out);
        out.push('}');
        out
    }

    /// Reads a key written by [`FailureKey::to_key`]; anything else is an error.
    pub fn from_key(key: &str) -> Result<Self, KeyError> {
        let root = key_object(key)?;
        let mut failure = FailureKey {
            result_type: ResultType::Other(String::new()),
            sending_ip: None,
            receiving_mx: None,
            receiving_helo: None,
            receiving_ip: None,
            additional: None,
            reason_code: None,
        };
        let mut seen_type = false;
        for (name, value) in root {
            let Json::String(value) = value else {
                return Err(key_error(format!("{name} is not a string")));
            };
            let slot = match name.as_str() {
                "result-type" => {
                    failure.result_type = match value.parse() {
                        Ok(t) => t,
                        Err(never) => match never {},
                    };
                    seen_type = true;
                    continue;
                }
                "sending-mta-ip" => &mut failure.sending_ip,
                "receiving-mx-hostname" => &mut failure.receiving_mx,
                "receiving-mx-helo" => &mut failure.receiving_helo,
                "receiving-ip" => &mut failure.receiving_ip,
                "additional-information" => &mut failure.additional,
                "failure-reason-code" => &mut failure.reason_code,
                other => return Err(key_error(format!("unexpected member {other:?}"))),
            };
            *slot = Some(value);
        }
        if !seen_type {
            return Err(key_error("no result-type".into()));
        }
        canonical(key, failure.to_key())?;
        Ok(failure)
    }
}

fn key_error(reason: String) -> KeyError {
    KeyError { reason }
}

fn key_object(key: &str) -> Result<Vec<(String, Json)>, KeyError> {
    match json::parse(key.as_bytes()) {
        Ok(Json::Object(members)) => Ok(members),
        Ok(other) => Err(key_error(format!("{} instead of an object", other.kind()))),
        Err(e) => Err(key_error(e.to_string())),
    }
}

fn key_strings(items: &[Json]) -> Result<Vec<String>, KeyError> {
    items
        .iter()
        .map(|item| match item {
            Json::String(s) => Ok(s.clone()),
            other => Err(key_error(format!("{} in a string list", other.kind()))),
        })
        .collect()
}

/// The key text must be exactly what `to_key` writes for the value read from it.
fn canonical(key: &str, written: String) -> Result<(), KeyError> {
    if key == written {
        Ok(())
    } else {
        Err(key_error(format!(
            "{key:?} is not in canonical form ({written:?})"
        )))
    }
}

/// Reads the results other MTAs POST as JSON: one object or an array of objects with RFC
/// 8460-style names (`docs/tlsrpt.md`):
///
/// ```text
/// {"recipient-domain": "example.com", "tlsrpt-record": "v=TLSRPTv1; rua=…",
///  "policies": [{"policy-type": "sts", "policy-domain": "…", "policy-string": […], "mx-host": […],
///                "result": "success" | "failure",
///                "failure-details": [{"result-type": "…", "sending-mta-ip": "…", "receiving-mx-hostname": "…",
///                                     "receiving-mx-helo": "…", "receiving-ip": "…",
///                                     "additional-information": "…", "failure-reason-code": "…"}]}]}
/// ```
///
/// A policy with failure details is a failure whatever its `result` (C127).
/// An object with `d` is a libtlsrpt datagram and is read as one ([`super::datagram`]).
/// Strict: unknown members, unregistered policy or result types, and a body over
/// [`MAX_RESULTS_BODY_BYTES`] are errors, and one bad object refuses the whole body (nothing
/// is counted twice when the client retries after fixing it).
pub fn parse_results_json(bytes: &[u8]) -> Result<Vec<SessionResult>, SessionError> {
    if bytes.len() > MAX_RESULTS_BODY_BYTES {
        return Err(SessionError::TooLarge {
            size: bytes.len(),
            limit: MAX_RESULTS_BODY_BYTES,
        });
    }
    let root = document(bytes)?;
    match root {
        Json::Array(items) => {
            if items.len() > MAX_RESULTS_PER_BODY {
                return Err(SessionError::TooMany {
                    path: "the body".into(),
                    limit: MAX_RESULTS_PER_BODY,
                });
            }
            items
                .into_iter()
                .enumerate()
                .map(|(i, item)| one_result(item, &format!("[{i}]")))
                .collect()
        }
        object => Ok(vec![one_result(object, "")?]),
    }
}

fn path_of(prefix: &str, name: &str) -> String {
    if prefix.is_empty() {
        name.to_owned()
    } else {
        format!("{prefix}.{name}")
    }
}

fn one_result(value: Json, path: &str) -> Result<SessionResult, SessionError> {
    let here = if path.is_empty() { "the body" } else { path };
    let Json::Object(members) = value else {
        return Err(wrong(here, "an object", &value).into());
    };
    if members.iter().any(|(name, _)| name == "d") {
        return super::datagram::from_json(Json::Object(members))
            .map(|(result, _notes)| result)
            .map_err(|error| SessionError::Datagram {
                path: here.to_owned(),
                error: Box::new(error),
            });
    }
    let mut domain = None;
    let mut record = None;
    let mut policies = None;
    for (name, value) in members {
        let member_path = path_of(path, &name);
        match name.as_str() {
            "recipient-domain" => domain = Some(string(value, &member_path)?),
            "tlsrpt-record" => record = Some(string(value, &member_path)?),
            "policies" => policies = Some(array(value, &member_path, MAX_POLICIES_PER_SESSION)?),
            _ => return Err(SessionError::UnknownMember { path: member_path }),
        }
    }
    let domain_path = path_of(path, "recipient-domain");
    let domain = domain.ok_or_else(|| missing(&domain_path))?;
    let domain = domain_key(&domain).ok_or(SessionError::BadValue {
        path: domain_path,
        reason: "an empty domain".into(),
    })?;
    let record = record.ok_or_else(|| missing(&path_of(path, "tlsrpt-record")))?;
    let policies_path = path_of(path, "policies");
    let list = policies.ok_or_else(|| missing(&policies_path))?;
    if list.is_empty() {
        return Err(SessionError::BadValue {
            path: policies_path,
            reason: "no policies".into(),
        });
    }
    let policies = list
        .into_iter()
        .enumerate()
        .map(|(i, p)| one_policy(p, &format!("{policies_path}[{i}]"), &domain))
        .collect::<Result<_, _>>()?;
    Ok(SessionResult {
        domain,
        record,
        policies,
    })
}

fn one_policy(value: Json, path: &str, domain: &str) -> Result<PolicyResult, SessionError> {
    let Json::Object(members) = value else {
        return Err(wrong(path, "an object", &value).into());
    };
    let mut policy_type = None;
    let mut policy_domain = None;
    let mut strings = Vec::new();
    let mut mx = Vec::new();
    let mut failed = None;
    let mut failures = Vec::new();
    for (name, value) in members {
        let member_path = path_of(path, &name);
        match name.as_str() {
            "policy-type" => {
                let sent = string(value, &member_path)?;
                policy_type = Some(match PolicyType::from_sent(&sent) {
                    PolicyType::Other(other) => {
                        return Err(SessionError::BadValue {
                            path: member_path,
                            reason: format!(
                                "{other:?} is not sts, tlsa or no-policy-found (RFC 8460 §4.4)"
                            ),
                        });
                    }
                    known => known,
                });
            }
            "policy-domain" => policy_domain = optional(value, &member_path)?,
            "policy-string" => strings = string_list(value, &member_path)?,
            "mx-host" => mx = string_list(value, &member_path)?,
            "result" => {
                failed = Some(match string(value, &member_path)?.as_str() {
                    "success" => false,
                    "failure" => true,
                    other => {
                        return Err(SessionError::BadValue {
                            path: member_path,
                            reason: format!("{other:?} is not \"success\" or \"failure\""),
                        });
                    }
                })
            }
            "failure-details" => {
                failures = array(value, &member_path, MAX_DETAILS_PER_POLICY)?
                    .into_iter()
                    .enumerate()
                    .map(|(i, d)| one_detail(d, &format!("{member_path}[{i}]")))
                    .collect::<Result<_, _>>()?;
            }
            _ => return Err(SessionError::UnknownMember { path: member_path }),
        }
    }
    let policy_type = policy_type.ok_or_else(|| missing(&path_of(path, "policy-type")))?;
    // C127: a session whose policy validation failed is a failure even if the mail went out.
    let failed = failed.ok_or_else(|| missing(&path_of(path, "result")))? || !failures.is_empty();
    let domain = policy_domain
        .and_then(|d| domain_key(&d))
        .unwrap_or_else(|| domain.to_owned());
    Ok(PolicyResult {
        policy: PolicyKey {
            policy_type,
            domain: Some(domain),
            strings,
            mx,
        },
        failed,
        failures,
    })
}

fn one_detail(value: Json, path: &str) -> Result<FailureKey, SessionError> {
    let Json::Object(members) = value else {
        return Err(wrong(path, "an object", &value).into());
    };
    let mut result_type = None;
    let mut failure = FailureKey {
        result_type: ResultType::ValidationFailure,
        sending_ip: None,
        receiving_mx: None,
        receiving_helo: None,
        receiving_ip: None,
        additional: None,
        reason_code: None,
    };
    for (name, value) in members {
        let member_path = path_of(path, &name);
        let slot = match name.as_str() {
            "result-type" => {
                let sent = string(value, &member_path)?;
                let parsed: ResultType = match sent.parse() {
                    Ok(t) => t,
                    Err(never) => match never {},
                };
                if let ResultType::Other(other) = parsed {
                    return Err(SessionError::BadValue {
                        path: member_path,
                        reason: format!(
                            "{other:?} is not a registered result type (RFC 8460 §4.3)"
                        ),
                    });
                }
                result_type = Some(parsed);
                continue;
            }
            "sending-mta-ip" => &mut failure.sending_ip,
            "receiving-mx-hostname" => &mut failure.receiving_mx,
            "receiving-mx-helo" => &mut failure.receiving_helo,
            "receiving-ip" => &mut failure.receiving_ip,
            "additional-information" => &mut failure.additional,
            "failure-reason-code" => &mut failure.reason_code,
            _ => return Err(SessionError::UnknownMember { path: member_path }),
        };
        *slot = optional(value, &member_path)?;
    }
    failure.result_type = result_type.ok_or_else(|| missing(&path_of(path, "result-type")))?;
    Ok(failure)
}

impl From<MemberError> for SessionError {
    /// This format words a long string as it words a long array (kind `too-many`).
    fn from(error: MemberError) -> Self {
        match error {
            MemberError::NotJson { message } => SessionError::NotJson { message },
            MemberError::DuplicateMember { message } => SessionError::DuplicateMember { message },
            MemberError::Missing { path } => SessionError::Missing { path },
            MemberError::WrongType {
                path,
                expected,
                found,
            } => SessionError::WrongType {
                path,
                expected,
                found,
            },
            MemberError::NotWhole { path, reason } => SessionError::BadValue { path, reason },
            MemberError::StringTooLong { path, limit } | MemberError::TooMany { path, limit } => {
                SessionError::TooMany { path, limit }
            }
        }
    }
}

#[cfg(test)]
#[path = "session_tests.rs"]
pub(crate) mod tests;
