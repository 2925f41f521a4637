//! What `_mta-sts` and `_smtp._tls` TXT records have in common: the RRset as received, the
//! field grammar (`key=value` fields separated by `;` with optional WSP, RFC 8461 §3.1 and
//! RFC 8460 §3), and the exactly-one-record selection rule.

use thiserror::Error;

use crate::Diagnostic;

pub(crate) mod fields;
pub(crate) mod select;

/// One TXT resource record as received: its character-strings, each at most 255 octets.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TxtRr(pub Vec<Vec<u8>>);

impl TxtRr {
    /// An RR holding one character-string (convenience for tests and generators).
    pub fn single(text: &str) -> Self {
        TxtRr(vec![text.as_bytes().to_vec()])
    }

    /// The character-strings concatenated without separators (8461 §3.1, 8460 §3).
    pub fn concat(&self) -> Vec<u8> {
        self.0.concat()
    }
}

/// The outcome of applying the discovery rule to a TXT RRset.
///
/// RFC 8461 §3.1 (and RFC 8460 §3 likewise): discard records that do not begin with the
/// version literal followed by `;`; if the remainder is not exactly one record, or that record
/// is invalid, the domain has no policy (no TLS-RPT record).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Selection<T> {
    /// Exactly one record with the version prefix, and it parses.
    Found {
        /// The parsed record.
        record: T,
        /// The record text (strings concatenated; non-UTF-8 bytes replaced).
        raw: String,
        /// Warnings and notes (whitespace quirks, unrelated TXT records at the name, …).
        diagnostics: Vec<Diagnostic>,
    },
    /// Exactly one record with the version prefix, and it does not parse.
    Invalid {
        /// The record text.
        raw: String,
        /// Why it does not parse.
        error: RecordError,
        /// Further notes.
        diagnostics: Vec<Diagnostic>,
    },
    /// No record begins with the version prefix.
    Missing {
        /// Notes on what was there instead (an SPF record, a misspelt version, …).
        diagnostics: Vec<Diagnostic>,
    },
    /// More than one record begins with the version prefix.
    Multiple {
        /// Every candidate record text.
        raws: Vec<String>,
        /// Further notes.
        diagnostics: Vec<Diagnostic>,
    },
}

/// Why a TXT record that claims the version does not parse.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum RecordError {
    /// A byte outside US-ASCII (C23).
    #[error("the record contains a byte outside US-ASCII at offset {offset}")]
    NotAscii {
        /// Offset of the first such byte.
        offset: usize,
    },
    /// The record does not begin with the version literal (C10, C11).
    #[error("the record does not begin with {expected:?}")]
    VersionNotFirst {
        /// `v=STSv1` or `v=TLSRPTv1`.
        expected: &'static str,
    },
    /// Only the version, no other field (C12, C109).
    #[error("the record has no field after the version")]
    NoFields,
    /// Two delimiters with nothing between them (C16).
    #[error("empty field between two ';' delimiters")]
    EmptyField,
    /// A field that is not `name=value` with a valid name and value (C19, C21, C115).
    #[error("invalid field {field:?}: {reason}")]
    InvalidField {
        /// The field text as found.
        field: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// Characters after the last field that are not a delimiter (C15 without `;`).
    #[error("unexpected trailing characters {0:?}")]
    Trailing(String),
    /// `id` has an invalid value (C17).
    #[error("invalid id {value:?}: an id is 1 to 32 letters and digits")]
    InvalidId {
        /// The value found.
        value: String,
    },
    /// The required `id` field is absent (C18).
    #[error("the required id field is missing")]
    MissingId,
    /// The required `rua` field is absent (C110).
    #[error("the required rua field is missing")]
    MissingRua,
    /// A `rua` URI is empty, of another scheme, or malformed (C111–C113).
    #[error("invalid rua URI {uri:?}: {reason}")]
    InvalidRua {
        /// The URI as found.
        uri: String,
        /// What is wrong with it.
        reason: &'static str,
    },
}

impl RecordError {
    /// The RFC rule this error breaks, e.g. `RFC 8461 §3.1`.
    pub fn rule(&self) -> &'static str {
        match self {
            RecordError::MissingRua | RecordError::InvalidRua { .. } => "RFC 8460 §3",
            _ => "RFC 8461 §3.1 / RFC 8460 §3",
        }
    }
}

/// A syntactically valid extension field (`name=value` or `key: value`) that the parser ignores.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Extension {
    /// The field name, case preserved.
    pub name: String,
    /// The field value.
    pub value: String,
}
