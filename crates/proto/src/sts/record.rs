//! The `_mta-sts` TXT record (RFC 8461 §3.1).

use std::fmt;
use std::str::FromStr;

use crate::txt::{Extension, RecordError, Selection, TxtRr};

/// The version literal every STS record begins with.
pub const STS_VERSION: &str = "v=STSv1";

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

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let _ = s;
        todo!("helper")
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
        StsRecord { id, extensions: Vec::new() }
    }

    /// Parses one record text per the §3.1 ABNF.
    pub fn parse(text: &str) -> Result<Self, RecordError> {
        let _ = text;
        todo!("helper")
    }
}

impl fmt::Display for StsRecord {
    /// `v=STSv1; id=<id>;` followed by extensions, `; `-separated.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let _ = f;
        todo!("helper")
    }
}

/// Applies the §3.1 discovery rule to the RRset at `_mta-sts.<domain>`, with diagnostics for the
/// checker (unrelated TXT records, `v=STSv1 ;` whitespace, SPF at the name, …).
pub fn select(rrset: &[TxtRr]) -> Selection<StsRecord> {
    let _ = rrset;
    todo!("helper")
}
