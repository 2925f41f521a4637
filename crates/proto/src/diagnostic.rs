//! Diagnostics: what a parser found, where, and which rule it breaks.
//!
//! Strict parsers return a `Result`; the analysing entry points (used by the checker) return the
//! value a compliant sender would derive *and* every [`Diagnostic`] found on the way, so a user
//! sees all problems at once.

use std::fmt;

/// How much a diagnostic matters to a sender honouring the RFC.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    /// A compliant sender rejects the input (no policy, invalid record).
    Error,
    /// Informational: style or guidance, no sender behaves differently.
    Info,
    /// Valid per the RFC, but some real senders diverge, or protection is weak.
    Warning,
}

impl Severity {
    /// The lowercase name used in JSON output: `error`, `warning`, `info`.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Error => "error",
            Severity::Info => "info",
            Severity::Warning => "warning",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One problem found in a record or policy body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    /// Error, warning or info.
    pub severity: Severity,
    /// A stable kebab-case identifier, e.g. `policy-duplicate-key` or `record-trailing-whitespace`.
    pub code: &'static str,
    /// 1-based line number in a policy body; `None` for whole-input problems and TXT records.
    pub line: Option<usize>,
    /// What is wrong, in one sentence, naming the offending text.
    pub message: String,
    /// The rule broken, e.g. `RFC 8461 §3.2`.
    pub rule: &'static str,
    /// What to change to fix it.
    pub fix: String,
}

/// At most this many characters of offending text are quoted in a message.
const QUOTE_MAX: usize = 80;

/// Quotes offending text for a message (Rust debug quoting, so control characters and a BOM
/// are visible), shortening very long text.
pub(crate) fn quote(text: &str) -> String {
    if text.chars().count() <= QUOTE_MAX {
        format!("{text:?}")
    } else {
        let head: String = text.chars().take(QUOTE_MAX).collect();
        format!("{head:?}…")
    }
}
