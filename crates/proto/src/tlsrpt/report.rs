//! RFC 8460 §4 TLS report JSON read into typed values: exactly what the `tlsrpt` object of the
//! `mtasts report` output contract (`shared/spec/report-output.md`) needs.
//!
//! Real senders deviate (C119–C126, interop §4). Where the meaning is clear the report is read
//! and a [`Note`] says what was repaired: a `date-time` without a zone is UTC, `mx-host` may be a
//! bare string, `policy-domain` and `contact-info` may be missing or null, `""` is absent,
//! `additional-info-uri` is an alias, failure details may sum past the total, unknown policy
//! and result types are kept as sent. Where it is not clear (a member named twice, both alias
//! spellings with different values, a count that is negative, fractional or above
//! [`MAX_COUNT`]), the report is a [`ReportError`]. Every size and count is capped by a named
//! constant, and no input panics.
//!
//! ```
//! use mtasts_proto::tlsrpt::report::{PolicyType, TlsReport};
//! let json = br#"{"organization-name": "Example", "report-id": "r1",
//!   "date-range": {"start-datetime": "2024-03-25T00:00:00Z", "end-datetime": "2024-03-25T23:59:59Z"},
//!   "contact-info": "tls@example.net",
//!   "policies": [{"policy": {"policy-type": "sts", "policy-domain": "example.com"},
//!                 "summary": {"total-successful-session-count": 5, "total-failure-session-count": 0}}]}"#;
//! let report = TlsReport::parse(json).unwrap();
//! assert_eq!(report.policies[0].policy_type, PolicyType::Sts);
//! assert_eq!(report.end.to_string(), "2024-03-25T23:59:59Z");
//! assert!(report.notes.is_empty());
//! ```

mod datetime;

use std::fmt;

pub use datetime::{MAX_DATETIME_BYTES, UtcTime};

use crate::ResultType;
use crate::json::{self, Json, JsonError};

/// The largest report document read, in bytes (the contract's `--max-report-bytes` default).
pub const MAX_REPORT_BYTES: usize = 64 * 1024 * 1024;
/// The most `policies` entries in one report.
pub const MAX_POLICIES: usize = 10_000;
/// The most `failure-details` entries in one report, over all its policies.
pub const MAX_FAILURE_DETAILS: usize = 100_000;
/// The most `policy-string` elements, and the most `mx-host` elements, in one policy.
pub const MAX_POLICY_LINES: usize = 1_000;
/// The longest string value read, in bytes.
pub const MAX_STRING_BYTES: usize = 64 * 1024;
/// The largest session count: 2^53 − 1, the largest integer I-JSON (RFC 7493 §2.2) keeps exact.
pub const MAX_COUNT: u64 = (1 << 53) - 1;

/// One TLS report (RFC 8460 §4.4).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct TlsReport {
    /// `organization-name`.
    pub organization: String,
    /// `report-id`.
    pub report_id: String,
    /// `contact-info`; `None` when absent, null or empty.
    pub contact: Option<String>,
    /// `date-range.start-datetime`, in UTC.
    pub begin: UtcTime,
    /// `date-range.end-datetime`, in UTC (not before `begin`).
    pub end: UtcTime,
    /// `policies`, in the order sent.
    pub policies: Vec<PolicyReport>,
    /// What was repaired, at most one note per [`NoteCode`] (the first occurrence).
    pub notes: Vec<Note>,
}

/// One `policies` entry: the policy applied, its summary and its failure details.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct PolicyReport {
    /// `policy-type`.
    pub policy_type: PolicyType,
    /// `policy-domain`; `None` when the sender left it out (sys4 `no-policy-found`).
    pub domain: Option<String>,
    /// `policy-string`, as sent (a TLSA entry may be one JSON-encoded string, Microsoft).
    pub strings: Vec<String>,
    /// `mx-host`; a bare string is one element.
    pub mx: Vec<String>,
    /// `summary.total-successful-session-count` (0 when absent).
    pub success: u64,
    /// `summary.total-failure-session-count` (0 when absent).
    pub failure: u64,
    /// `failure-details`, in the order sent.
    pub failures: Vec<FailureDetail>,
}

/// One `failure-details` entry. Strings are raw (C132: an IP that does not parse stays here).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct FailureDetail {
    /// `result-type`; values outside the registry are kept as sent.
    pub result: ResultType,
    /// `failed-session-count` (0, with a note, when absent).
    pub count: u64,
    /// `sending-mta-ip`.
    pub sending_ip: Option<String>,
    /// `receiving-mx-hostname`.
    pub receiving_mx: Option<String>,
    /// `receiving-mx-helo`.
    pub receiving_helo: Option<String>,
    /// `receiving-ip`.
    pub receiving_ip: Option<String>,
    /// `additional-information` (or its alias `additional-info-uri`).
    pub additional_info: Option<String>,
    /// `failure-reason-code`, free text.
    pub reason_code: Option<String>,
}

/// `policy-type`: `sts`, `tlsa`, `no-policy-found`, or any other value as sent.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum PolicyType {
    /// `sts`
    Sts,
    /// `tlsa`
    Tlsa,
    /// `no-policy-found`
    NoPolicyFound,
    /// Another value, kept as received.
    Other(String),
}

impl PolicyType {
    /// The spelling sent.
    pub fn as_str(&self) -> &str {
        match self {
            PolicyType::Sts => "sts",
            PolicyType::Tlsa => "tlsa",
            PolicyType::NoPolicyFound => "no-policy-found",
            PolicyType::Other(s) => s,
        }
    }

    /// The type a sender wrote (`Other` for unregistered spellings).
    pub(crate) fn from_sent(s: &str) -> PolicyType {
        match s {
            "sts" => PolicyType::Sts,
            "tlsa" => PolicyType::Tlsa,
            "no-policy-found" => PolicyType::NoPolicyFound,
            other => PolicyType::Other(other.to_owned()),
        }
    }
}

impl fmt::Display for PolicyType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A repair made while reading a report (the contract's `notes` entries).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Note {
    /// What kind of repair.
    pub code: NoteCode,
    /// Where and what, for people.
    pub message: String,
}

/// The kinds of [`Note`]; [`NoteCode::as_str`] is the contract's `code`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum NoteCode {
    /// `byte-order-mark`: a UTF-8 BOM before the JSON was skipped.
    ByteOrderMark,
    /// `time-without-zone`: a `date-time` without a zone was read as UTC (Microsoft).
    TimeWithoutZone,
    /// `mx-host-string`: `mx-host` was a bare string, read as one element (RFC 8460 App. B).
    MxHostString,
    /// `policy-string-string`: `policy-string` was a bare string, read as one element.
    PolicyStringString,
    /// `policy-domain-missing`: `policy-domain` was absent, null or empty.
    PolicyDomainMissing,
    /// `contact-info-null`: `contact-info` was absent, null or empty.
    ContactInfoNull,
    /// `unknown-policy-type`: a `policy-type` outside `sts`/`tlsa`/`no-policy-found`, kept as sent.
    UnknownPolicyType,
    /// `unknown-result-type`: a `result-type` outside the registry, kept as sent.
    UnknownResultType,
    /// `failure-sum-above-total`: the failure details sum to more than `total-failure-session-count` (C125).
    FailureSumAboveTotal,
    /// `summary-count-missing`: a summary count (or the whole summary) was absent or null; read as 0.
    SummaryCountMissing,
    /// `failed-session-count-missing`: a failure detail had no count; read as 0.
    FailedSessionCountMissing,
    /// `additional-info-uri`: the non-RFC key `additional-info-uri` was read as `additional-information` (C120).
    AdditionalInfoUri,
    /// `empty-string`: an optional string was `""`, read as absent.
    EmptyString,
}

impl NoteCode {
    /// The contract's spelling, e.g. `time-without-zone`.
    pub fn as_str(self) -> &'static str {
        match self {
            NoteCode::ByteOrderMark => "byte-order-mark",
            NoteCode::TimeWithoutZone => "time-without-zone",
            NoteCode::MxHostString => "mx-host-string",
            NoteCode::PolicyStringString => "policy-string-string",
            NoteCode::PolicyDomainMissing => "policy-domain-missing",
            NoteCode::ContactInfoNull => "contact-info-null",
            NoteCode::UnknownPolicyType => "unknown-policy-type",
            NoteCode::UnknownResultType => "unknown-result-type",
            NoteCode::FailureSumAboveTotal => "failure-sum-above-total",
            NoteCode::SummaryCountMissing => "summary-count-missing",
            NoteCode::FailedSessionCountMissing => "failed-session-count-missing",
            NoteCode::AdditionalInfoUri => "additional-info-uri",
            NoteCode::EmptyString => "empty-string",
        }
    }
}

impl fmt::Display for NoteCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a document is not a readable TLS report. [`ReportError::code`] is the contract's class.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ReportError {
    /// The document is larger than the limit ([`MAX_REPORT_BYTES`] unless the caller set one).
    #[error("the report is {size} bytes, above the {limit}-byte limit")]
    TooLarge {
        /// Its size in bytes.
        size: usize,
        /// The limit, in bytes.
        limit: usize,
    },
    /// The JSON nests deeper than the parser allows.
    #[error("the JSON nests too deeply: {message}")]
    TooDeep {
        /// The parser's message, with line and column.
        message: String,
    },
    /// An array has more entries than its limit.
    #[error("{path} has more than {limit} entries")]
    TooMany {
        /// Where, e.g. `policies[0].mx-host`.
        path: String,
        /// The limit.
        limit: usize,
    },
    /// A string is longer than [`MAX_STRING_BYTES`] (or [`MAX_DATETIME_BYTES`] for a date-time).
    #[error("{path} is longer than {limit} bytes")]
    StringTooLong {
        /// Where.
        path: String,
        /// The limit.
        limit: usize,
    },
    /// Not JSON (or not UTF-8).
    #[error("not JSON: {message}")]
    Malformed {
        /// The parser's message, with line and column.
        message: String,
    },
    /// An object names a member twice.
    #[error("ambiguous JSON: {message}")]
    DuplicateMember {
        /// The parser's message, with the name, line and column.
        message: String,
    },
    /// A required member is absent.
    #[error("{path} is missing")]
    MissingField {
        /// Where, e.g. `date-range.start-datetime`.
        path: String,
    },
    /// A member has the wrong JSON type.
    #[error("{path} is {found}, expected {expected}")]
    WrongType {
        /// Where.
        path: String,
        /// What the report format wants.
        expected: &'static str,
        /// What was sent.
        found: &'static str,
    },
    /// A count is negative.
    #[error("{path} is negative ({value})")]
    NegativeCount {
        /// Where.
        path: String,
        /// The number as sent.
        value: String,
    },
    /// A count is fractional or above [`MAX_COUNT`].
    #[error("{path} is {value}, not a whole number up to {MAX_COUNT}")]
    AbsurdCount {
        /// Where.
        path: String,
        /// The number as sent.
        value: String,
    },
    /// A `date-time` does not parse.
    #[error("{path} is not an RFC 3339 date-time: {value:?} ({reason})")]
    BadDateTime {
        /// Where.
        path: String,
        /// The text sent.
        value: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// `end-datetime` is before `start-datetime`.
    #[error("date-range ends ({end}) before it starts ({begin})")]
    EndBeforeBegin {
        /// `start-datetime`.
        begin: UtcTime,
        /// `end-datetime`.
        end: UtcTime,
    },
    /// `additional-information` and `additional-info-uri` are both sent, with different values.
    #[error(
        "{path} has both additional-information and additional-info-uri, with different values"
    )]
    ConflictingAlias {
        /// Where, e.g. `policies[0].failure-details[1]`.
        path: String,
    },
}

impl ReportError {
    /// The contract's error `code`: `malformed`, `invalid` or `too-large`.
    pub fn code(&self) -> &'static str {
        match self {
            ReportError::TooLarge { .. }
            | ReportError::TooDeep { .. }
            | ReportError::TooMany { .. }
            | ReportError::StringTooLong { .. } => "too-large",
            ReportError::Malformed { .. } => "malformed",
            _ => "invalid",
        }
    }
}

impl TlsReport {
    /// Reads one report document (JSON bytes, already out of its mail/gzip container), at most
    /// [`MAX_REPORT_BYTES`] of them.
    pub fn parse(bytes: &[u8]) -> Result<TlsReport, ReportError> {
        Self::parse_within(bytes, MAX_REPORT_BYTES)
    }

    /// As [`TlsReport::parse`], with the caller's size limit (`--max-report-bytes`).
    pub fn parse_within(bytes: &[u8], max_bytes: usize) -> Result<TlsReport, ReportError> {
        if bytes.len() > max_bytes {
            return Err(ReportError::TooLarge {
                size: bytes.len(),
                limit: max_bytes,
            });
        }
        let mut notes = Notes::default();
        let bytes = match bytes.strip_prefix(b"\xEF\xBB\xBF") {
            Some(rest) => {
                notes.add(
                    NoteCode::ByteOrderMark,
                    "a UTF-8 byte order mark before the JSON was skipped".into(),
                );
                rest
            }
            None => bytes,
        };
        let root = json::parse(bytes).map_err(json_error)?;
        let root = object(&root, "the document")?;
        let organization = required_string(root, "organization-name", "")?;
        let report_id = required_string(root, "report-id", "")?;
        let contact = optional_string(root, "contact-info", "", &mut notes)?;
        if contact.is_none() {
            notes.add(
                NoteCode::ContactInfoNull,
                "contact-info is absent or null".into(),
            );
        }
        let range = object(required(root, "date-range", "")?, "date-range")?;
        let begin = datetime(range, "start-datetime", "date-range.", &mut notes)?;
        let end = datetime(range, "end-datetime", "date-range.", &mut notes)?;
        if end < begin {
            return Err(ReportError::EndBeforeBegin { begin, end });
        }
        let list = array(required(root, "policies", "")?, "policies", MAX_POLICIES)?;
        let mut policies = Vec::with_capacity(list.len());
        let mut details_left = MAX_FAILURE_DETAILS;
        for (i, entry) in list.iter().enumerate() {
            let path = format!("policies[{i}]");
            policies.push(policy_report(entry, &path, &mut details_left, &mut notes)?);
        }
        Ok(TlsReport {
            organization,
            report_id,
            contact,
            begin,
            end,
            policies,
            notes: notes.0,
        })
    }
}

/// The notes of one report, one per code.
#[derive(Default)]
struct Notes(Vec<Note>);

impl Notes {
    fn add(&mut self, code: NoteCode, message: String) {
        if !self.0.iter().any(|n| n.code == code) {
            self.0.push(Note { code, message });
        }
    }
}

fn json_error(e: JsonError) -> ReportError {
    match e {
        JsonError::Duplicate { message, .. } => ReportError::DuplicateMember { message },
        JsonError::TooDeep { message } => ReportError::TooDeep { message },
        JsonError::Malformed { message } => ReportError::Malformed { message },
    }
}

type Object = [(String, Json)];

fn get<'a>(obj: &'a Object, key: &str) -> Option<&'a Json> {
    obj.iter().find(|(k, _)| k == key).map(|(_, v)| v)
}

fn required<'a>(obj: &'a Object, key: &str, prefix: &str) -> Result<&'a Json, ReportError> {
    get(obj, key).ok_or_else(|| ReportError::MissingField {
        path: format!("{prefix}{key}"),
    })
}

fn object<'a>(value: &'a Json, path: &str) -> Result<&'a Object, ReportError> {
    match value {
        Json::Object(members) => Ok(members),
        other => Err(wrong(path, "an object", other)),
    }
}

fn array<'a>(value: &'a Json, path: &str, limit: usize) -> Result<&'a [Json], ReportError> {
    match value {
        Json::Array(items) if items.len() > limit => Err(ReportError::TooMany {
            path: path.to_owned(),
            limit,
        }),
        Json::Array(items) => Ok(items),
        other => Err(wrong(path, "an array", other)),
    }
}

fn wrong(path: &str, expected: &'static str, found: &Json) -> ReportError {
    ReportError::WrongType {
        path: path.to_owned(),
        expected,
        found: found.kind(),
    }
}

fn string(value: &Json, path: &str) -> Result<String, ReportError> {
    match value {
        Json::String(s) if s.len() > MAX_STRING_BYTES => Err(ReportError::StringTooLong {
            path: path.to_owned(),
            limit: MAX_STRING_BYTES,
        }),
        Json::String(s) => Ok(s.clone()),
        other => Err(wrong(path, "a string", other)),
    }
}

fn required_string(obj: &Object, key: &str, prefix: &str) -> Result<String, ReportError> {
    string(required(obj, key, prefix)?, &format!("{prefix}{key}"))
}

/// An optional string: absent, null and `""` (with a note) are `None`.
fn optional_string(
    obj: &Object,
    key: &str,
    prefix: &str,
    notes: &mut Notes,
) -> Result<Option<String>, ReportError> {
    match get(obj, key) {
        None | Some(Json::Null) => Ok(None),
        Some(value) => {
            let path = format!("{prefix}{key}");
            let s = string(value, &path)?;
            if s.is_empty() {
                notes.add(
                    NoteCode::EmptyString,
                    format!("{path} is an empty string; read as absent"),
                );
                return Ok(None);
            }
            Ok(Some(s))
        }
    }
}

/// A list of strings that may be sent as one bare string (noted with `bare`).
fn string_list(
    obj: &Object,
    key: &str,
    prefix: &str,
    bare: NoteCode,
    notes: &mut Notes,
) -> Result<Vec<String>, ReportError> {
    let path = format!("{prefix}{key}");
    match get(obj, key) {
        None | Some(Json::Null) => Ok(Vec::new()),
        Some(value @ Json::String(_)) => {
            let value = string(value, &path)?;
            notes.add(
                bare,
                format!("{path} is a string, not an array; read as one element"),
            );
            Ok(vec![value])
        }
        Some(value) => array(value, &path, MAX_POLICY_LINES)?
            .iter()
            .enumerate()
            .map(|(i, v)| string(v, &format!("{path}[{i}]")))
            .collect(),
    }
}

fn datetime(
    obj: &Object,
    key: &str,
    prefix: &str,
    notes: &mut Notes,
) -> Result<UtcTime, ReportError> {
    let path = format!("{prefix}{key}");
    let text = match required(obj, key, prefix)? {
        Json::String(s) if s.len() > MAX_DATETIME_BYTES => {
            return Err(ReportError::StringTooLong {
                path,
                limit: MAX_DATETIME_BYTES,
            });
        }
        Json::String(s) => s,
        other => return Err(wrong(&path, "an RFC 3339 date-time string", other)),
    };
    let parsed = datetime::parse(text).map_err(|reason| ReportError::BadDateTime {
        path: path.clone(),
        value: text.clone(),
        reason,
    })?;
    if !parsed.had_zone {
        notes.add(
            NoteCode::TimeWithoutZone,
            format!("{key} has no time zone; read as UTC"),
        );
    }
    Ok(parsed.time)
}

/// A count: absent or null is `None`; otherwise a whole number in `0..=MAX_COUNT`.
fn count(obj: &Object, key: &str, prefix: &str) -> Result<Option<u64>, ReportError> {
    let path = format!("{prefix}{key}");
    match get(obj, key) {
        None | Some(Json::Null) => Ok(None),
        Some(Json::Number(n)) => {
            if let Some(v) = n.as_u64() {
                if v <= MAX_COUNT {
                    return Ok(Some(v));
                }
            } else if n.as_f64().is_some_and(|f| f < 0.0) {
                return Err(ReportError::NegativeCount {
                    path,
                    value: n.to_string(),
                });
            }
            Err(ReportError::AbsurdCount {
                path,
                value: n.to_string(),
            })
        }
        Some(other) => Err(wrong(&path, "an integer", other)),
    }
}

fn policy_report(
    entry: &Json,
    path: &str,
    details_left: &mut usize,
    notes: &mut Notes,
) -> Result<PolicyReport, ReportError> {
    let entry = object(entry, path)?;
    let prefix = format!("{path}.policy.");
    let policy = object(
        required(entry, "policy", &format!("{path}."))?,
        &format!("{path}.policy"),
    )?;
    let policy_type = PolicyType::from_sent(&required_string(policy, "policy-type", &prefix)?);
    if let PolicyType::Other(sent) = &policy_type {
        notes.add(
            NoteCode::UnknownPolicyType,
            format!("{prefix}policy-type {sent:?} is not a registered type; kept as sent"),
        );
    }
    let domain = optional_string(policy, "policy-domain", &prefix, notes)?;
    if domain.is_none() {
        notes.add(
            NoteCode::PolicyDomainMissing,
            format!("{prefix}policy-domain is absent"),
        );
    }
    let strings = string_list(
        policy,
        "policy-string",
        &prefix,
        NoteCode::PolicyStringString,
        notes,
    )?;
    let mx = string_list(policy, "mx-host", &prefix, NoteCode::MxHostString, notes)?;

    let (success, failure) = match get(entry, "summary") {
        None | Some(Json::Null) => (None, None),
        Some(summary) => {
            let summary = object(summary, &format!("{path}.summary"))?;
            let sp = format!("{path}.summary.");
            (
                count(summary, "total-successful-session-count", &sp)?,
                count(summary, "total-failure-session-count", &sp)?,
            )
        }
    };
    if success.is_none() || failure.is_none() {
        notes.add(
            NoteCode::SummaryCountMissing,
            format!("{path}.summary lacks a session count; read as 0"),
        );
    }
    let (success, failure) = (success.unwrap_or(0), failure.unwrap_or(0));

    let details_path = format!("{path}.failure-details");
    let list: &[Json] = match get(entry, "failure-details") {
        None | Some(Json::Null) => &[],
        Some(value) => array(value, &details_path, *details_left)?,
    };
    *details_left -= list.len();
    let failures = list
        .iter()
        .enumerate()
        .map(|(i, d)| failure_detail(d, &format!("{details_path}[{i}]"), notes))
        .collect::<Result<Vec<_>, _>>()?;
    let sum = failures
        .iter()
        .fold(0u64, |acc, d| acc.saturating_add(d.count));
    if sum > failure {
        notes.add(
            NoteCode::FailureSumAboveTotal,
            format!(
                "{path}: failure details sum to {sum}, above total-failure-session-count {failure}"
            ),
        );
    }
    Ok(PolicyReport {
        policy_type,
        domain,
        strings,
        mx,
        success,
        failure,
        failures,
    })
}

fn failure_detail(
    detail: &Json,
    path: &str,
    notes: &mut Notes,
) -> Result<FailureDetail, ReportError> {
    let d = object(detail, path)?;
    let prefix = format!("{path}.");
    let result: ResultType = match required_string(d, "result-type", &prefix)?.parse() {
        Ok(result) => result,
        Err(never) => match never {},
    };
    if let ResultType::Other(sent) = &result {
        notes.add(
            NoteCode::UnknownResultType,
            format!("{prefix}result-type {sent:?} is not a registered type; kept as sent"),
        );
    }
    let count = match count(d, "failed-session-count", &prefix)? {
        Some(n) => n,
        None => {
            notes.add(
                NoteCode::FailedSessionCountMissing,
                format!("{prefix}failed-session-count is absent; read as 0"),
            );
            0
        }
    };
    let info = optional_string(d, "additional-information", &prefix, notes)?;
    let alias = optional_string(d, "additional-info-uri", &prefix, notes)?;
    let additional_info = match (info, alias) {
        (Some(a), Some(b)) if a != b => {
            return Err(ReportError::ConflictingAlias {
                path: path.to_owned(),
            });
        }
        (Some(a), _) => Some(a),
        (None, Some(b)) => {
            notes.add(
                NoteCode::AdditionalInfoUri,
                format!("{prefix}additional-info-uri read as additional-information"),
            );
            Some(b)
        }
        (None, None) => None,
    };
    Ok(FailureDetail {
        result,
        count,
        sending_ip: optional_string(d, "sending-mta-ip", &prefix, notes)?,
        receiving_mx: optional_string(d, "receiving-mx-hostname", &prefix, notes)?,
        receiving_helo: optional_string(d, "receiving-mx-helo", &prefix, notes)?,
        receiving_ip: optional_string(d, "receiving-ip", &prefix, notes)?,
        additional_info,
        reason_code: optional_string(d, "failure-reason-code", &prefix, notes)?,
    })
}

#[cfg(test)]
#[path = "report_tests.rs"]
mod tests;
