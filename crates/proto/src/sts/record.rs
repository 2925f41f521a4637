//! The `_mta-sts` TXT record (RFC 8461 §3.1).

use std::fmt;
use std::str::FromStr;

use crate::txt::fields::{RawRecord, check_extension, split_record};
use crate::txt::select::RecordKind;
use crate::txt::{Extension, RecordError, Selection, TxtRr};

/// The version literal every STS record begins with.
pub const STS_VERSION: &str = "v=STSv1";

/// The longest policy id (8461 §3.1: `1*32(ALPHA / DIGIT)`).
pub const POLICY_ID_MAX_LEN: usize = 32;

/// A policy id: 1 to 32 ASCII letters and digits (8461 §3.1). Only equality matters.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PolicyId(String);

impl PolicyId {
    /// The id text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for PolicyId {
    type Err = RecordError;

    /// Accepts exactly `1*32(ALPHA / DIGIT)`; `+`, `-`, `:`, `.` and the empty id are the
    /// common real-world mistakes (C17).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.is_empty()
            || s.len() > POLICY_ID_MAX_LEN
            || !s.bytes().all(|b| b.is_ascii_alphanumeric())
        {
            return Err(RecordError::InvalidId {
                value: s.to_owned(),
            });
        }
        Ok(PolicyId(s.to_owned()))
    }
}

impl fmt::Display for PolicyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A parsed `_mta-sts` record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StsRecord {
    /// The policy id (first occurrence wins, C20).
    pub id: PolicyId,
    /// Valid extension fields, ignored by senders, in order.
    pub extensions: Vec<Extension>,
}

impl StsRecord {
    /// A record with the given id and no extensions.
    pub fn new(id: PolicyId) -> Self {
        StsRecord {
            id,
            extensions: Vec::new(),
        }
    }

    /// Parses one record text per the §3.1 ABNF.
    ///
    /// Strict about everything the grammar says (case-sensitive version first, `;`
    /// delimiters, field syntax, an `id` of 1–32 letters and digits, US-ASCII only), with one
    /// documented leniency: whitespace after the last field without a closing `;` (C15) is
    /// accepted, and [`select`] reports it as a warning. Every `id` field must be valid; the
    /// first one is used (C20). Syntactically invalid extensions make the record invalid (C21,
    /// as mox does).
    pub fn parse(text: &str) -> Result<Self, RecordError> {
        Self::from_raw(&split_record(text, STS_VERSION)?)
    }

    fn from_raw(raw: &RawRecord<'_>) -> Result<Self, RecordError> {
        let mut id = None;
        let mut extensions = Vec::new();
        for &(name, value) in &raw.fields {
            if name == "id" {
                let parsed: PolicyId = value.parse()?;
                id.get_or_insert(parsed);
            } else {
                check_extension(name, value)?;
                extensions.push(Extension {
                    name: name.to_owned(),
                    value: value.to_owned(),
                });
            }
        }
        let id = id.ok_or(RecordError::MissingId)?;
        Ok(StsRecord { id, extensions })
    }
}

/// `v=STSv1; id=<id>`: the record text for a policy id, the one place that writes it.
///
/// `mtasts serve` publishes exactly this for a stored id; [`StsRecord`]'s `Display` (what
/// `mtasts generate` prints) closes it with `;` as the RFC's example does. Both are the §3.1
/// ABNF, and both outputs are pinned byte for byte, so the closing `;` stays a caller's choice.
pub fn record_text(id: &str) -> String {
    format!("{STS_VERSION}; id={id}")
}

impl fmt::Display for StsRecord {
    /// `v=STSv1; id=<id>;` followed by extensions, `; `-separated.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{};", record_text(self.id.as_str()))?;
        for ext in &self.extensions {
            write!(f, " {}={};", ext.name, ext.value)?;
        }
        Ok(())
    }
}

/// Applies the §3.1 discovery rule to the RRset at `_mta-sts.<domain>`, with diagnostics for the
/// checker (unrelated TXT records, `v=STSv1 ;` whitespace, SPF at the name, …).
///
/// Records starting with `v=STSv1;` are candidates, and so (unlike the literal §3.1 test) are
/// `v=STSv1 ;` (WSP before `;`, EID 6285, C13: accepted with a `record-space-before-semicolon`
/// note) and a bare `v=STSv1` (which then is [`Selection::Invalid`] with
/// [`RecordError::NoFields`]). Everything else is discarded, as senders discard it, with an
/// info diagnostic (it never lowers a verdict):
/// `record-unrelated-txt` (C7), `record-spf` (C26), `record-version-case` (C11),
/// `record-version-not-first` (C10), `record-version-near-miss` (`v=STSv10;`). For the
/// selected record: `record-trailing-whitespace` (C15), `record-duplicate-field` (C20), and,
/// when it is invalid because of a bad field, `record-lenient-senders-accept` (C21).
pub fn select(rrset: &[TxtRr]) -> Selection<StsRecord> {
    crate::txt::select::select(rrset, &STS_KIND)
}

/// The `_mta-sts` record's place in the shared discovery code.
const STS_KIND: RecordKind<StsRecord> = RecordKind {
    version: STS_VERSION,
    owner: "_mta-sts",
    rule: "RFC 8461 §3.1",
    merged_field: None,
    build: StsRecord::from_raw,
};

#[cfg(test)]
#[path = "record_tests.rs"]
mod tests;
