//! The `_smtp._tls` TXT record (RFC 8460 §3).

use std::fmt;

use crate::txt::fields::{RawRecord, check_extension, split_record, trim_wsp};
use crate::txt::select::RecordKind;
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

impl ReportUri {
    /// Parses one `rua` URI (8460 §3): `mailto:` or `https:` (scheme case-insensitive), then
    /// RFC 3986 characters with `,`, `!` and `;` percent-encoded. A bare address, `http:`,
    /// and a DMARC-style size suffix (`!10m`) are rejected (C112, C113).
    pub fn parse(uri: &str) -> Result<Self, RecordError> {
        let invalid = |reason| RecordError::InvalidRua {
            uri: uri.to_owned(),
            reason,
        };
        if uri.is_empty() {
            return Err(invalid("empty URI"));
        }
        let Some((scheme, rest)) = uri.split_once(':') else {
            if uri.contains('@') {
                return Err(invalid("a bare address: write mailto:address"));
            }
            return Err(invalid(
                "not a URI: use mailto:address or https://host/path",
            ));
        };
        if let Some(bad) = uri.bytes().find(|b| !is_uri_char(*b)) {
            return Err(invalid(match bad {
                b'!' => {
                    "'!' must be percent-encoded (%21); a DMARC-style size limit is not allowed"
                }
                b' ' | b'\t' => "whitespace inside the URI",
                _ => "a character that is not allowed in a URI",
            }));
        }
        if !percent_escapes_ok(uri) {
            return Err(invalid("'%' must be followed by two hexadecimal digits"));
        }
        if scheme.eq_ignore_ascii_case("mailto") {
            if rest.is_empty() || !rest.contains('@') {
                return Err(invalid(
                    "a mailto: URI needs an address, as in mailto:tlsrpt@example.com",
                ));
            }
            Ok(ReportUri::Mailto(uri.to_owned()))
        } else if scheme.eq_ignore_ascii_case("https") {
            let Some(after) = rest.strip_prefix("//") else {
                return Err(invalid(
                    "an https: URI needs a host, as in https://reports.example.com/v1",
                ));
            };
            let host = after.split(['/', '?', '#']).next().unwrap_or("");
            if host.is_empty() {
                return Err(invalid(
                    "an https: URI needs a host, as in https://reports.example.com/v1",
                ));
            }
            Ok(ReportUri::Https(uri.to_owned()))
        } else if scheme.contains('@') {
            Err(invalid("a bare address: write mailto:address"))
        } else {
            Err(invalid("only mailto: and https: URIs are allowed"))
        }
    }
}

/// RFC 3986 URI characters, minus `!` `,` `;` which 8460 §3 requires percent-encoded.
fn is_uri_char(b: u8) -> bool {
    b.is_ascii_alphanumeric()
        || matches!(
            b,
            b'-' | b'.'
                | b'_'
                | b'~'
                | b':'
                | b'/'
                | b'?'
                | b'#'
                | b'['
                | b']'
                | b'@'
                | b'$'
                | b'&'
                | b'\''
                | b'('
                | b')'
                | b'*'
                | b'+'
                | b'='
                | b'%'
        )
}

/// Every `%` is followed by two hex digits.
fn percent_escapes_ok(uri: &str) -> bool {
    let bytes = uri.as_bytes();
    bytes
        .iter()
        .enumerate()
        .filter(|(_, b)| **b == b'%')
        .all(|(i, _)| {
            bytes.get(i + 1).is_some_and(u8::is_ascii_hexdigit)
                && bytes.get(i + 2).is_some_and(u8::is_ascii_hexdigit)
        })
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
    ///
    /// Strict like [`crate::sts::record::StsRecord::parse`] (trailing WSP without `;` is the
    /// one accepted quirk, reported by [`select`]). Several `rua=` fields are merged in order
    /// (C114); `RUA=` is an extension (C110).
    pub fn parse(text: &str) -> Result<Self, RecordError> {
        Self::from_raw(&split_record(text, TLSRPT_VERSION)?)
    }

    fn from_raw(raw: &RawRecord<'_>) -> Result<Self, RecordError> {
        let mut rua = Vec::new();
        let mut seen_rua = false;
        let mut extensions = Vec::new();
        for &(name, value) in &raw.fields {
            if name == "rua" {
                seen_rua = true;
                // `tlsrpt-uri *(*WSP "," *WSP tlsrpt-uri)`
                for uri in value.split(',') {
                    rua.push(ReportUri::parse(trim_wsp(uri))?);
                }
            } else {
                check_extension(name, value)?;
                extensions.push(Extension {
                    name: name.to_owned(),
                    value: value.to_owned(),
                });
            }
        }
        if !seen_rua {
            return Err(RecordError::MissingRua);
        }
        Ok(TlsRptRecord { rua, extensions })
    }
}

/// `v=TLSRPTv1; rua=<rua>`: the record text for a `rua` value (one URI or several joined by
/// `,`), the one place that writes it (RFC 8460 §3). `mtasts generate`, `mtasts serve` and
/// [`TlsRptRecord`]'s `Display` all go through it.
pub fn record_text(rua: &str) -> String {
    format!("{TLSRPT_VERSION}; rua={rua}")
}

impl fmt::Display for TlsRptRecord {
    /// `v=TLSRPTv1; rua=<uri>,<uri>` followed by extensions, `; `-separated.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let rua: Vec<&str> = self.rua.iter().map(ReportUri::as_str).collect();
        f.write_str(&record_text(&rua.join(",")))?;
        for ext in &self.extensions {
            write!(f, "; {}={}", ext.name, ext.value)?;
        }
        Ok(())
    }
}

/// Applies the §3 discovery rule to the RRset at `_smtp._tls.<domain>`.
///
/// The same rule and diagnostics as [`crate::sts::record::select`] with `v=TLSRPTv1`
/// (`v=TLSRPTv1 ;` accepted with a warning, C117), plus `record-duplicate-rua` when the URIs
/// of several `rua=` fields were merged (C114).
pub fn select(rrset: &[TxtRr]) -> Selection<TlsRptRecord> {
    crate::txt::select::select(rrset, &TLSRPT_KIND)
}

/// The `_smtp._tls` record's place in the shared discovery code.
const TLSRPT_KIND: RecordKind<TlsRptRecord> = RecordKind {
    version: TLSRPT_VERSION,
    owner: "_smtp._tls",
    rule: "RFC 8460 §3",
    merged_field: Some("rua"),
    build: TlsRptRecord::from_raw,
};

#[cfg(test)]
#[path = "record_tests.rs"]
mod tests;
