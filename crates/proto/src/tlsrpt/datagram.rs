//! libtlsrpt's datagram protocol (sys4/libtlsrpt, `shared/reference/interop.md` §2): what
//! Postfix 3.10+ (`smtp_tlsrpt_enable = yes`) sends to the collector's UNIX datagram socket,
//! one datagram per delivery request, read into a [`SessionResult`].
//!
//! ```text
//! {"dpv": "1","d": "example.com","pr": "v=TLSRPTv1; rua=mailto:t@example.com","policies":[
//!   {"policy-type":2,"policy-domain": "example.com","policy-string":["version: STSv1", …],
//!    "mx-host":["*.mx.example.com"],
//!    "failure-details":[{"c":204,"s": "192.0.2.1","n": "a.mx.example.com","h": "…","r": "…","a": "…","f": "…"}],
//!    "t":1,"f":1}]}
//! ```
//!
//! Readings (each a choice where sys4's collector is silent or lossy):
//!
//! * `dpv` absent is protocol version 1 (libtlsrpt before 0.5.0); any `dpv` but the string `"1"`
//!   is refused ([`DatagramError::UnknownVersion`]): a later version may change what members
//!   mean, and counting it wrongly is worse than counting it as dropped. (sys4 logs and reads on.)
//! * Policy types 1 (`tlsa`), 2 (`sts`), 9 (`no-policy-found`); any other code refuses the
//!   datagram ([`DatagramError::UnknownPolicyType`]): a report can only name the three
//!   registered types. (sys4 stores it and fails building the report.)
//! * Failure codes 201–205 and 301–306 are the RFC 8460 result types. 901 (libtlsrpt
//!   "internal") and any unknown code become `validation-failure`, the RFC's bucket for failures
//!   no other type names (§4.3.3), and, when the MTA gave no reason, the failure reason code
//!   `libtlsrpt-code-<n>` so the code is not lost. (sys4 writes a detail without `result-type`.)
//! * `t` differing from the number of failure details: the details are counted, as sent, and a
//!   [`DatagramNote::FailureCountMismatch`] says so (sys4 logs it).
//! * A policy finished as a success (`f` 0) but with failure details counts as a failure
//!   (C127; libtlsrpt allows it, Postfix never sends it), with a
//!   [`DatagramNote::FailureDetailsOnSuccess`]. So a report's failure details never sum above
//!   its failure count unless an MTA reports several details for one session, which RFC 8460 §4
//!   allows (result types are not exclusive, C125).
//! * libtlsrpt copies bytes ≥ 0x80 unescaped, so a string that was not UTF-8 in the MTA makes a
//!   datagram that is not UTF-8. It is read with each invalid sequence replaced by U+FFFD and a
//!   [`DatagramNote::NotUtf8`]: the session still counts (a remote MX's HELO must not erase a
//!   failure). (sys4 drops such a datagram.)
//! * A missing `policy-domain` is the recipient domain (sys4 #51); `""` is absent; domains are
//!   [`domain_key`]s. Members this format does not have are ignored, as sys4 does.

use std::borrow::Cow;

use crate::ResultType;
use crate::json::Json;
use crate::tlsrpt::members::{
    MemberError, array, document, integer, missing, optional, string, string_list, wrong,
};
use crate::tlsrpt::report::PolicyType;
use crate::tlsrpt::session::{
    FailureKey, MAX_DETAILS_PER_POLICY, MAX_POLICIES_PER_SESSION, PolicyKey, PolicyResult,
    SessionResult, domain_key,
};

/// The largest datagram read; larger ones are refused (kind `too-large`). libtlsrpt builds
/// datagrams in memory without a limit; a typical one is a few hundred bytes, but an STS policy
/// may be 64 KiB ([`crate::sts::POLICY_MAX_BYTES`]) and is sent again as escaped
/// `policy-string` lines, so the bound leaves room for that, escaped, twice over. It stays
/// below what Linux passes with default buffers (`net.core.wmem_default` 212,992 bytes, less
/// 32), so a datagram one byte too large can still be sent and counted as `too-large`.
/// Collectors size their receive buffer from this constant.
pub const MAX_DATAGRAM_BYTES: usize = 192 * 1024;

/// The only datagram protocol version there is (libtlsrpt 0.5.0+ sends `"dpv": "1"`).
pub const DATAGRAM_PROTOCOL_VERSION: &str = "1";

/// Why a datagram was refused. [`DatagramError::kind`] is a short stable label per kind.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DatagramError {
    /// Larger than [`MAX_DATAGRAM_BYTES`].
    #[error("the datagram is {size} bytes, above the {limit}-byte limit")]
    TooLarge {
        /// Its size.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// Not JSON, or nested too deeply.
    #[error("not JSON: {message}")]
    NotJson {
        /// The parser's message.
        message: String,
    },
    /// An object names a member twice.
    #[error("ambiguous JSON: {message}")]
    DuplicateMember {
        /// The parser's message.
        message: String,
    },
    /// `dpv` is not `"1"`.
    #[error("datagram protocol version {found} is not supported (only \"1\")")]
    UnknownVersion {
        /// The value sent, as JSON.
        found: String,
    },
    /// A required member is absent.
    #[error("{path} is missing")]
    Missing {
        /// Where, e.g. `policies[0].f`.
        path: String,
    },
    /// A member has the wrong JSON type.
    #[error("{path} is {found}, expected {expected}")]
    WrongType {
        /// Where.
        path: String,
        /// What the protocol has.
        expected: &'static str,
        /// What was sent.
        found: &'static str,
    },
    /// A policy type code other than 1, 2 and 9.
    #[error("{path}: policy type {code} is not 1 (tlsa), 2 (sts) or 9 (no-policy-found)")]
    UnknownPolicyType {
        /// Where.
        path: String,
        /// The code sent.
        code: String,
    },
    /// A value outside the protocol (an `f` other than 0 or 1, an empty `d`, no policies).
    #[error("{path}: {reason}")]
    BadValue {
        /// Where.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// An array has more entries than its limit.
    #[error("{path} has more than {limit} entries")]
    TooMany {
        /// Where.
        path: String,
        /// The limit.
        limit: usize,
    },
    /// A string is longer than [`MAX_STRING_BYTES`](crate::tlsrpt::report::MAX_STRING_BYTES) (a
    /// report could not carry it).
    #[error("{path} is longer than {limit} bytes")]
    StringTooLong {
        /// Where.
        path: String,
        /// The limit.
        limit: usize,
    },
}

impl DatagramError {
    /// A short stable label per kind, for metrics and log-once: `too-large`, `not-json`,
    /// `duplicate-member`, `unknown-version`, `missing-member`, `wrong-type`,
    /// `unknown-policy-type`, `bad-value`, `too-many`, `string-too-long`.
    pub fn kind(&self) -> &'static str {
        match self {
            DatagramError::TooLarge { .. } => "too-large",
            DatagramError::NotJson { .. } => "not-json",
            DatagramError::DuplicateMember { .. } => "duplicate-member",
            DatagramError::UnknownVersion { .. } => "unknown-version",
            DatagramError::Missing { .. } => "missing-member",
            DatagramError::WrongType { .. } => "wrong-type",
            DatagramError::UnknownPolicyType { .. } => "unknown-policy-type",
            DatagramError::BadValue { .. } => "bad-value",
            DatagramError::TooMany { .. } => "too-many",
            DatagramError::StringTooLong { .. } => "string-too-long",
        }
    }
}

/// Something odd in a datagram that was still read (log once per kind; nothing is dropped).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum DatagramNote {
    /// The bytes were not UTF-8; invalid sequences were replaced by U+FFFD.
    NotUtf8,
    /// A policy's `t` differs from its number of failure details (the details were counted).
    FailureCountMismatch {
        /// Which policy (index).
        policy: usize,
        /// `t` as sent.
        sent: u64,
        /// Details present.
        details: usize,
    },
    /// A policy finished as a success (`f` 0) carries failure details; it is counted as a
    /// failure (C127: validation failed, even if the mail was delivered).
    FailureDetailsOnSuccess {
        /// Which policy (index).
        policy: usize,
    },
    /// A failure code outside 201–205 and 301–306 (901 is libtlsrpt's "internal") was read as
    /// `validation-failure`.
    UnknownFailureCode {
        /// The code sent.
        code: i64,
    },
}

impl DatagramNote {
    /// A short stable label per kind: `not-utf8`, `failure-count-mismatch`,
    /// `failure-details-on-success`, `unknown-failure-code`.
    pub fn kind(&self) -> &'static str {
        match self {
            DatagramNote::NotUtf8 => "not-utf8",
            DatagramNote::FailureCountMismatch { .. } => "failure-count-mismatch",
            DatagramNote::FailureDetailsOnSuccess { .. } => "failure-details-on-success",
            DatagramNote::UnknownFailureCode { .. } => "unknown-failure-code",
        }
    }
}

/// Reads one datagram (at most [`MAX_DATAGRAM_BYTES`]).
pub fn parse_datagram(bytes: &[u8]) -> Result<SessionResult, DatagramError> {
    parse_datagram_with_notes(bytes).map(|(result, _)| result)
}

/// As [`parse_datagram`], with what was odd but read anyway.
pub fn parse_datagram_with_notes(
    bytes: &[u8],
) -> Result<(SessionResult, Vec<DatagramNote>), DatagramError> {
    if bytes.len() > MAX_DATAGRAM_BYTES {
        return Err(DatagramError::TooLarge {
            size: bytes.len(),
            limit: MAX_DATAGRAM_BYTES,
        });
    }
    let text = String::from_utf8_lossy(bytes);
    let root = document(text.as_bytes())?;
    let (result, mut notes) = from_json(root)?;
    if let Cow::Owned(_) = text {
        notes.insert(0, DatagramNote::NotUtf8);
    }
    Ok((result, notes))
}

/// Reads a datagram already parsed as JSON (also how the HTTP intake reads a datagram object).
pub(crate) fn from_json(root: Json) -> Result<(SessionResult, Vec<DatagramNote>), DatagramError> {
    let Json::Object(members) = root else {
        return Err(wrong("the datagram", "an object", &root).into());
    };
    let mut notes = Vec::new();
    let mut domain = None;
    let mut record = None;
    let mut policies = None;
    for (name, value) in members {
        match name.as_str() {
            "dpv" => match &value {
                Json::String(v) if v == DATAGRAM_PROTOCOL_VERSION => {}
                other => {
                    return Err(DatagramError::UnknownVersion {
                        found: serde_json::Value::from(other.clone()).to_string(),
                    });
                }
            },
            "d" => domain = Some(string(value, "d")?),
            "pr" => record = Some(string(value, "pr")?),
            "policies" => policies = Some(value),
            _ => {}
        }
    }
    let domain = domain.ok_or_else(|| missing("d"))?;
    let domain = domain_key(&domain).ok_or_else(|| DatagramError::BadValue {
        path: "d".into(),
        reason: "an empty recipient domain".into(),
    })?;
    let record = record.ok_or_else(|| missing("pr"))?;
    let list = array(
        policies.ok_or_else(|| missing("policies"))?,
        "policies",
        MAX_POLICIES_PER_SESSION,
    )?;
    if list.is_empty() {
        return Err(DatagramError::BadValue {
            path: "policies".into(),
            reason: "no policies".into(),
        });
    }
    let policies = list
        .into_iter()
        .enumerate()
        .map(|(i, p)| policy(p, i, &domain, &mut notes))
        .collect::<Result<_, _>>()?;
    Ok((
        SessionResult {
            domain,
            record,
            policies,
        },
        notes,
    ))
}

fn policy(
    value: Json,
    index: usize,
    domain: &str,
    notes: &mut Vec<DatagramNote>,
) -> Result<PolicyResult, DatagramError> {
    let path = format!("policies[{index}]");
    let Json::Object(members) = value else {
        return Err(wrong(&path, "an object", &value).into());
    };
    let mut policy_type = None;
    let mut policy_domain = None;
    let mut strings = Vec::new();
    let mut mx = Vec::new();
    let mut details = Vec::new();
    let mut count = None;
    let mut failed = None;
    for (name, value) in members {
        let member = format!("{path}.{name}");
        match name.as_str() {
            "policy-type" => {
                policy_type = Some(match integer(&value, &member)? {
                    1 => PolicyType::Tlsa,
                    2 => PolicyType::Sts,
                    9 => PolicyType::NoPolicyFound,
                    code => {
                        return Err(DatagramError::UnknownPolicyType {
                            path: member,
                            code: code.to_string(),
                        });
                    }
                })
            }
            "policy-domain" => policy_domain = optional(value, &member)?,
            "policy-string" => strings = string_list(value, &member)?,
            "mx-host" => mx = string_list(value, &member)?,
            "failure-details" => {
                details = array(value, &member, MAX_DETAILS_PER_POLICY)?;
            }
            "t" => count = Some(integer(&value, &member)?),
            "f" => {
                failed = Some(match integer(&value, &member)? {
                    0 => false,
                    1 => true,
                    other => {
                        return Err(DatagramError::BadValue {
                            path: member,
                            reason: format!("{other} is not 0 (success) or 1 (failure)"),
                        });
                    }
                })
            }
            _ => {}
        }
    }
    let policy_type = policy_type.ok_or_else(|| missing(&format!("{path}.policy-type")))?;
    let failed_sent = failed.ok_or_else(|| missing(&format!("{path}.f")))?;
    let failures = details
        .into_iter()
        .enumerate()
        .map(|(i, d)| detail(d, &format!("{path}.failure-details[{i}]"), notes))
        .collect::<Result<Vec<_>, _>>()?;
    // C127: a session whose policy validation failed is a failure even if the mail went out.
    let failed = failed_sent || !failures.is_empty();
    if failed != failed_sent {
        notes.push(DatagramNote::FailureDetailsOnSuccess { policy: index });
    }
    if let Some(sent) = count
        && u64::try_from(sent).ok() != u64::try_from(failures.len()).ok()
    {
        notes.push(DatagramNote::FailureCountMismatch {
            policy: index,
            sent: u64::try_from(sent).unwrap_or(0),
            details: failures.len(),
        });
    }
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

/// The RFC 8460 result type of a libtlsrpt failure code (`tlsrpt_failure_t`); `None` for 901
/// (internal) and codes libtlsrpt does not define.
pub fn result_type_of_code(code: i64) -> Option<ResultType> {
    Some(match code {
        201 => ResultType::StarttlsNotSupported,
        202 => ResultType::CertificateHostMismatch,
        203 => ResultType::CertificateNotTrusted,
        204 => ResultType::CertificateExpired,
        205 => ResultType::ValidationFailure,
        301 => ResultType::StsPolicyFetchError,
        302 => ResultType::StsPolicyInvalid,
        303 => ResultType::StsWebpkiInvalid,
        304 => ResultType::TlsaInvalid,
        305 => ResultType::DnssecInvalid,
        306 => ResultType::DaneRequired,
        _ => return None,
    })
}

fn detail(
    value: Json,
    path: &str,
    notes: &mut Vec<DatagramNote>,
) -> Result<FailureKey, DatagramError> {
    let Json::Object(members) = value else {
        return Err(wrong(path, "an object", &value).into());
    };
    let mut code = None;
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
        let member = format!("{path}.{name}");
        let slot = match name.as_str() {
            "c" => {
                code = Some(integer(&value, &member)?);
                continue;
            }
            "s" => &mut failure.sending_ip,
            "n" => &mut failure.receiving_mx,
            "h" => &mut failure.receiving_helo,
            "r" => &mut failure.receiving_ip,
            "a" => &mut failure.additional,
            "f" => &mut failure.reason_code,
            _ => continue,
        };
        *slot = optional(value, &member)?;
    }
    let code = code.ok_or_else(|| missing(&format!("{path}.c")))?;
    match result_type_of_code(code) {
        Some(result_type) => failure.result_type = result_type,
        None => {
            failure.result_type = ResultType::ValidationFailure;
            if failure.reason_code.is_none() {
                failure.reason_code = Some(format!("libtlsrpt-code-{code}"));
            }
            if !notes
                .iter()
                .any(|n| matches!(n, DatagramNote::UnknownFailureCode { code: c } if *c == code))
            {
                notes.push(DatagramNote::UnknownFailureCode { code });
            }
        }
    }
    Ok(failure)
}

impl From<MemberError> for DatagramError {
    fn from(error: MemberError) -> Self {
        match error {
            MemberError::NotJson { message } => DatagramError::NotJson { message },
            MemberError::DuplicateMember { message } => DatagramError::DuplicateMember { message },
            MemberError::Missing { path } => DatagramError::Missing { path },
            MemberError::WrongType {
                path,
                expected,
                found,
            } => DatagramError::WrongType {
                path,
                expected,
                found,
            },
            MemberError::NotWhole { path, reason } => DatagramError::BadValue { path, reason },
            MemberError::StringTooLong { path, limit } => {
                DatagramError::StringTooLong { path, limit }
            }
            MemberError::TooMany { path, limit } => DatagramError::TooMany { path, limit },
        }
    }
}

#[cfg(test)]
#[path = "datagram_tests.rs"]
mod tests;
