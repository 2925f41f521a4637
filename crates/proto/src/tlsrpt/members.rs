//! Typed readers for the members of a [`Json`] object, shared by the libtlsrpt datagram
//! ([`super::datagram`]) and the JSON results intake ([`super::session`]), so that both read a
//! string, an optional string, an integer or a bounded array by one rule, and map a document
//! that is not JSON (or names a member twice) to the same two kinds.
//!
//! A problem is a [`MemberError`]; each format converts it into its own public error, which
//! keeps its own wording and `kind()` labels (the two formats word a long string differently).

use crate::json::{self, Json, JsonError};
use crate::tlsrpt::report::{MAX_POLICY_LINES, MAX_STRING_BYTES};

/// Why one member (or the document holding it) was not read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum MemberError {
    /// Not JSON, or nested too deeply.
    NotJson { message: String },
    /// An object names a member twice.
    DuplicateMember { message: String },
    /// A required member is absent.
    Missing { path: String },
    /// The member has another JSON type.
    WrongType {
        path: String,
        expected: &'static str,
        found: &'static str,
    },
    /// A number that is not a whole number an `i64` holds.
    NotWhole { path: String, reason: String },
    /// A string longer than [`MAX_STRING_BYTES`] (no report could carry it).
    StringTooLong { path: String, limit: usize },
    /// An array with more entries than its limit.
    TooMany { path: String, limit: usize },
}

/// The document, read by [`json::parse`]; the caller has bounded its size.
pub(crate) fn document(bytes: &[u8]) -> Result<Json, MemberError> {
    json::parse(bytes).map_err(|e| match e {
        JsonError::Duplicate { message, .. } => MemberError::DuplicateMember { message },
        JsonError::TooDeep { message } | JsonError::Malformed { message } => {
            MemberError::NotJson { message }
        }
    })
}

pub(crate) fn missing(path: &str) -> MemberError {
    MemberError::Missing {
        path: path.to_owned(),
    }
}

pub(crate) fn wrong(path: &str, expected: &'static str, found: &Json) -> MemberError {
    MemberError::WrongType {
        path: path.to_owned(),
        expected,
        found: found.kind(),
    }
}

pub(crate) fn string(value: Json, path: &str) -> Result<String, MemberError> {
    match value {
        Json::String(s) if s.len() > MAX_STRING_BYTES => Err(MemberError::StringTooLong {
            path: path.to_owned(),
            limit: MAX_STRING_BYTES,
        }),
        Json::String(s) => Ok(s),
        other => Err(wrong(path, "a string", &other)),
    }
}

/// An optional string: null and `""` are absent.
pub(crate) fn optional(value: Json, path: &str) -> Result<Option<String>, MemberError> {
    match value {
        Json::Null => Ok(None),
        value => Ok(Some(string(value, path)?).filter(|s| !s.is_empty())),
    }
}

pub(crate) fn integer(value: &Json, path: &str) -> Result<i64, MemberError> {
    match value {
        Json::Number(n) => n.as_i64().ok_or_else(|| MemberError::NotWhole {
            path: path.to_owned(),
            reason: format!("{n} is not a whole number"),
        }),
        other => Err(wrong(path, "an integer", other)),
    }
}

/// An array of at most `limit` entries (checked before any entry is read).
pub(crate) fn array(value: Json, path: &str, limit: usize) -> Result<Vec<Json>, MemberError> {
    match value {
        Json::Array(items) if items.len() > limit => Err(MemberError::TooMany {
            path: path.to_owned(),
            limit,
        }),
        Json::Array(items) => Ok(items),
        other => Err(wrong(path, "an array", &other)),
    }
}

/// `policy-string` and `mx-host`: at most [`MAX_POLICY_LINES`] strings.
pub(crate) fn string_list(value: Json, path: &str) -> Result<Vec<String>, MemberError> {
    array(value, path, MAX_POLICY_LINES)?
        .into_iter()
        .enumerate()
        .map(|(i, item)| string(item, &format!("{path}[{i}]")))
        .collect()
}
