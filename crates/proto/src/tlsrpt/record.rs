//! The `_smtp._tls` TXT record (RFC 8460 §3).

use std::fmt;

use crate::txt::{Extension, RecordError, Selection, TxtRr};

/// The version literal every TLS-RPT record begins with.
pub const TLSRPT_VERSION: &str = "v=TLSRPTv1";

/// One reporting URI from `rua=`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum ReportUri {
    /// `https:` — reports are POSTed here. Holds the whole URI.
    Https(String),
    /// `mailto:` — reports are mailed here. Holds the whole URI.
    Mailto(String),
}

impl ReportUri {
    /// The URI text as published.
    pub fn as_str(&self) -> &str {
        match self {
            ReportUri::Https(s) | ReportUri::Mailto(s) => s,
        }
    }
}

impl fmt::Display for ReportUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A parsed `_smtp._tls` record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsRptRecord {
    /// Every reporting URI; several `rua=` fields are merged (C114).
    pub rua: Vec<ReportUri>,
    /// Valid extension fields, ignored.
    pub extensions: Vec<Extension>,
}

impl TlsRptRecord {
    /// Parses one record text per the RFC 8460 §3 ABNF.
    pub fn parse(text: &str) -> Result<Self, RecordError> {
        let _ = text;
        todo!("helper")
    }
}

impl fmt::Display for TlsRptRecord {
    /// `v=TLSRPTv1; rua=<uri>,<uri>`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let _ = f;
        todo!("helper")
    }
}

/// Applies the §3 discovery rule to the RRset at `_smtp._tls.<domain>`.
pub fn select(rrset: &[TxtRr]) -> Selection<TlsRptRecord> {
    let _ = rrset;
    todo!("helper")
}
