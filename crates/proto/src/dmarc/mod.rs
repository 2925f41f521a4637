//! DMARC aggregate reports (RFC 7489 Appendix C, RFC 9990): the typed report, its errors and limits, and a
//! streaming XML reader that never builds a document tree. The `_dmarc` record itself is in [`record`] (grammar,
//! tags, report URIs) and [`discovery`] (which record RFC 7489 and RFC 9989 receivers use).
//!
//! Elements are matched by local name, so the RFC 7489 form (no namespace), `http://dmarc.org/dmarc-xml/0.1`
//! and the RFC 9990 namespace `urn:ietf:params:xml:ns:dmarc-2.0` all read the same way. Unknown elements
//! (extensions, `fo`, `discovery_method`, `human_result`, …) are skipped. Hostile input is bounded: no DTD
//! (a DOCTYPE is an error, nothing is ever expanded), only the five predefined entities and numeric
//! character references, and every size, depth and count has a named limit below.
//!
//! [`parse`] in [`Mode::Summary`] folds records into the counts of the output contract
//! (`shared/spec/report-output.md`) with memory that does not grow with the number of records;
//! [`Mode::Full`] also keeps the records, the first [`MAX_RECORDS`] of them (the counts include all). [`parse_reader`] reads from a byte stream
//! (a decompressor) without holding the document whole.

pub mod discovery;
mod parse;
pub mod record;
pub mod report;

#[cfg(test)]
mod tests;

pub use parse::{Mode, parse, parse_reader, parse_reader_within, parse_within};
pub use report::{
    AuthDkim, AuthSpf, Disposition, Dispositions, Note, NoteCode, PolicyPublished, Reason, Record,
    Report,
};

/// The largest XML document read, in bytes (the contract's default `--max-report-bytes`).
pub const REPORT_MAX_BYTES: usize = 64 * 1024 * 1024;
/// The deepest element nesting accepted (a report needs 5; extensions get some room).
pub const MAX_DEPTH: usize = 16;
/// The longest text of one element, in bytes (after entity resolution).
pub const MAX_TEXT_BYTES: usize = 4096;
/// The most records [`Mode::Full`] keeps; past it the records are dropped (with a `records-truncated` note)
/// and only counted.
pub const MAX_RECORDS: usize = 50_000;
/// The most `reason`, `auth_results/dkim` or `auth_results/spf` entries in one record (each).
pub const MAX_ITEMS_PER_RECORD: usize = 64;
/// The largest message count of one row; more is an absurd count, and the report is `invalid`.
pub const MAX_ROW_COUNT: u64 = 1_000_000_000_000;
/// The latest accepted timestamp in `date_range` (9999-12-31T23:59:59Z), in Unix seconds.
pub const MAX_TIMESTAMP: u64 = 253_402_300_799;
/// The most notes one report carries (one per code at most, so this is never reached today).
pub const MAX_NOTES: usize = 32;

/// Why a DMARC aggregate report could not be read. [`DmarcError::code`] gives the contract's error class.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DmarcError {
    /// Peer data is not well-formed XML (the reader's description and the byte offset where it stopped).
    #[error("not well-formed XML at byte {offset}: {reason}")]
    Malformed {
        /// Byte offset into the input.
        offset: u64,
        /// What the XML reader found wrong.
        reason: String,
    },
    /// The document has a DOCTYPE: DTDs are refused (never expanded), as entity bombs and XXE live there.
    #[error("the document has a DOCTYPE; DTDs are not accepted in DMARC reports")]
    Doctype,
    /// An entity reference other than the five predefined ones or a numeric character reference.
    #[error("unknown entity reference &{0};")]
    UnknownEntity(String),
    /// The XML declaration names an encoding other than UTF-8 (or its ASCII subset).
    #[error("encoding {0:?} is not supported (only UTF-8)")]
    UnsupportedEncoding(String),
    /// The document's root element is not `feedback`: it is not a DMARC aggregate report.
    #[error("the root element is <{0}>, not <feedback>: not a DMARC aggregate report")]
    NotAReport(String),
    /// A required element is missing or empty (its path below `feedback`).
    #[error("required element {0} is missing or empty")]
    Missing(&'static str),
    /// An element that may appear once appears twice: which one is meant would be a guess.
    #[error("element {0} appears more than once")]
    Duplicate(&'static str),
    /// An element's value has the wrong type or an absurd value.
    #[error("element {field} has an invalid value {value:?}")]
    BadValue {
        /// Path of the element below `feedback`.
        field: &'static str,
        /// The text as sent (cut to 64 characters).
        value: String,
    },
    /// The byte stream under the XML failed (for a decompressor: its stream is corrupt); its description.
    #[error("the report could not be read: {0}")]
    Read(String),
    /// A size, depth or count limit was reached.
    #[error("{what} exceeds the limit of {limit}")]
    TooLarge {
        /// What grew too large.
        what: &'static str,
        /// The limit (the named constant's value).
        limit: u64,
    },
}

impl DmarcError {
    /// The contract's error class: `malformed`, `invalid`, `too-large` or `unsupported`.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Malformed { .. } | Self::UnknownEntity(_) | Self::Read(_) => "malformed",
            Self::Doctype | Self::UnsupportedEncoding(_) => "unsupported",
            Self::NotAReport(_) | Self::Missing(_) | Self::Duplicate(_) | Self::BadValue { .. } => {
                "invalid"
            }
            Self::TooLarge { .. } => "too-large",
        }
    }
}
