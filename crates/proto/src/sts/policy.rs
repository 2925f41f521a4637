//! The MTA-STS policy file (RFC 8461 §3.2).

use std::fmt;
use std::str::FromStr;

use thiserror::Error;

use crate::Diagnostic;
use crate::sts::mx_pattern::MxPattern;
use crate::txt::Extension;

/// The largest `max_age` the RFC allows: 31557600 seconds, about a year (8461 §3.2).
pub const MAX_AGE_CAP: u32 = 31_557_600;

/// The policy mode (8461 §5).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Mode {
    /// Senders must not deliver to an MX failing validation.
    Enforce,
    /// The policy is being withdrawn: senders behave as if there were no policy.
    None,
    /// Senders report failures but still deliver.
    Testing,
}

impl Mode {
    /// `enforce`, `testing` or `none`.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Enforce => "enforce",
            Mode::None => "none",
            Mode::Testing => "testing",
        }
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Mode {
    type Err = PolicyError;

    /// Case-sensitive (C53).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "enforce" => Ok(Mode::Enforce),
            "testing" => Ok(Mode::Testing),
            "none" => Ok(Mode::None),
            other => Err(PolicyError::InvalidMode(other.to_owned())),
        }
    }
}

/// `max_age` in seconds: 1–10 digits, at most [`MAX_AGE_CAP`] (8461 §3.2, EID 7282, C62).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MaxAge(u32);

impl MaxAge {
    /// A max_age, or `None` above the cap.
    pub fn new(seconds: u32) -> Option<Self> {
        (seconds <= MAX_AGE_CAP).then_some(MaxAge(seconds))
    }

    /// The number of seconds.
    pub fn seconds(self) -> u32 {
        self.0
    }
}

impl FromStr for MaxAge {
    type Err = PolicyError;

    /// Digits only: no sign, underscore, exponent or space (C62). Leading zeros are fine
    /// (`0086400`), as the ABNF is `1*10DIGIT`; values above [`MAX_AGE_CAP`] are rejected
    /// (strict reading of EID 7282; we do not clamp).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse_max_age_digits(s)
            .and_then(|n| u32::try_from(n).ok())
            .and_then(MaxAge::new)
            .ok_or_else(|| PolicyError::InvalidMaxAge(s.to_owned()))
    }
}

/// The longest `max_age` the ABNF allows: `1*10DIGIT` (8461 §3.2).
pub const MAX_AGE_MAX_DIGITS: usize = 10;

/// Reads `1*10DIGIT` as a number without a general integer parser (which would accept `+5`
/// or `1_000`). `None` for anything else.
fn parse_max_age_digits(s: &str) -> Option<u64> {
    if s.is_empty() || s.len() > MAX_AGE_MAX_DIGITS || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    // At most 10 digits: below 10^10, far inside u64.
    Some(s.bytes().fold(0u64, |n, b| n * 10 + u64::from(b - b'0')))
}

impl fmt::Display for MaxAge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A valid policy, as a compliant sender applies it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Policy {
    /// The mode (first occurrence wins, C58).
    pub mode: Mode,
    /// How long senders may cache the policy.
    pub max_age: MaxAge,
    /// The `mx` patterns in order (lines accumulate, C59). Empty only when mode is `none`.
    pub mx: Vec<MxPattern>,
    /// Valid unknown keys, ignored by senders.
    pub extensions: Vec<Extension>,
}

/// Why a policy body is not a valid policy: the first fatal problem.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum PolicyError {
    /// The body is not UTF-8, or contains NUL or other control characters (C70).
    #[error("line {line}: invalid character")]
    Encoding {
        /// 1-based line number.
        line: usize,
    },
    /// A line that is not `key: value` (leading whitespace, `#` comment, space before the colon…).
    #[error("line {line}: {reason}")]
    Line {
        /// 1-based line number.
        line: usize,
        /// What is wrong with it.
        reason: String,
    },
    /// `version`, `mode` or `max_age` is missing, or `mx` is missing for enforce/testing.
    #[error("required key {0:?} is missing")]
    Missing(&'static str),
    /// `version` is not exactly `STSv1` (C60).
    #[error("version must be STSv1, found {0:?}")]
    InvalidVersion(String),
    /// `mode` is not one of `enforce`, `testing`, `none` (C53, C61).
    #[error("mode must be enforce, testing or none, found {0:?}")]
    InvalidMode(String),
    /// `max_age` is not 1–10 digits or is above the cap (C62).
    #[error("max_age must be 0 to 31557600 written as digits only, found {0:?}")]
    InvalidMaxAge(String),
    /// The body starts with a UTF-8 byte order mark, so the first key is not `version` (C42).
    #[error("line 1: the policy starts with a UTF-8 byte order mark")]
    ByteOrderMark,
    /// A key that is neither a known key nor a valid extension name, or an extension whose
    /// value is empty or contains a TAB (C67).
    #[error("line {line}: invalid extension {key:?}: {reason}")]
    InvalidExtension {
        /// 1-based line number.
        line: usize,
        /// The key as found.
        key: String,
        /// What is wrong.
        reason: &'static str,
    },
    /// The body is empty.
    #[error("the policy is empty")]
    Empty,
    /// An `mx` value is not a valid pattern.
    #[error("line {line}: {error}")]
    InvalidMx {
        /// 1-based line number.
        line: usize,
        /// Why.
        error: crate::sts::mx_pattern::MxPatternError,
    },
}

/// The full reading of a policy body, for the checker.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PolicyAnalysis {
    /// The policy a compliant (RFC 8461) sender applies, or `None` when it rejects the body.
    pub policy: Option<Policy>,
    /// Every problem found, errors and warnings, with line numbers and fixes. When `policy`
    /// is `None` at least one diagnostic has severity `Error`.
    pub diagnostics: Vec<Diagnostic>,
}

impl Policy {
    /// Parses a policy body as a compliant sender does (the same reading as [`analyze`], errors
    /// only). LF, CRLF and mixed terminators; first occurrence wins for repeated keys; `mx`
    /// lines accumulate; unknown valid keys ignored; blank lines are skipped (C51: lenient, the
    /// checker warns).
    pub fn parse(body: &str) -> Result<Policy, PolicyError> {
        let reading = analysis::read(body.as_bytes());
        match (reading.policy, reading.first_error) {
            (Some(policy), _) => Ok(policy),
            (None, Some(error)) => Err(error),
            // `read` records an error whenever it rejects; keep a typed answer regardless.
            (None, None) => Err(PolicyError::Empty),
        }
    }

    /// Serializes the policy: `version`, `mode`, one `mx` line per pattern, `max_age`, then
    /// extensions, each line ended by `line_ending` (`"\r\n"` for serving, C48).
    pub fn to_text(&self, line_ending: &str) -> String {
        let mut out = String::new();
        let mut line = |text: &dyn fmt::Display| {
            out.push_str(&text.to_string());
            out.push_str(line_ending);
        };
        line(&"version: STSv1");
        line(&format_args!("mode: {}", self.mode));
        for mx in &self.mx {
            line(&format_args!("mx: {mx}"));
        }
        line(&format_args!("max_age: {}", self.max_age));
        for ext in &self.extensions {
            line(&format_args!("{}: {}", ext.name, ext.value));
        }
        out
    }
}

impl fmt::Display for Policy {
    /// The policy file as served: [`Policy::to_text`] with CRLF line endings (C48), the one
    /// place `mtasts generate` and `mtasts serve` take the file's text from.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_text("\r\n"))
    }
}

/// Reads a fetched policy body (raw bytes, possibly with a BOM or invalid UTF-8) and returns the
/// policy a compliant sender applies plus every diagnostic (C42, C48–C70): the checker's entry
/// point.
///
/// Diagnostic codes (stable): `policy-empty`, `policy-bom`, `policy-invalid-utf8`,
/// `policy-control-character`, `policy-bare-cr`, `policy-blank-line`,
/// `policy-leading-whitespace`, `policy-comment`, `policy-invalid-line`,
/// `policy-space-before-colon`, `policy-invalid-key`, `policy-invalid-extension`,
/// `policy-key-typo`, `policy-invalid-version`, `policy-invalid-mode`,
/// `policy-invalid-max-age`, `policy-max-age-above-cap`, `policy-invalid-mx`,
/// `policy-mx-ip-address`, `policy-mx-broad-wildcard`, `policy-duplicate-mx`,
/// `policy-duplicate-key`, `policy-missing-key`, `policy-version-not-first`.
///
/// `policy` is `Some` exactly when no diagnostic has severity [`crate::Severity::Error`].
/// Work is linear in the input size.
pub fn analyze(body: &[u8]) -> PolicyAnalysis {
    let reading = analysis::read(body);
    PolicyAnalysis {
        policy: reading.policy,
        diagnostics: reading.diagnostics,
    }
}

mod analysis;
mod typo;

#[cfg(test)]
#[path = "policy_tests.rs"]
mod tests;
