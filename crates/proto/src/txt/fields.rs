//! The shared field grammar of the `_mta-sts` and `_smtp._tls` records (8461 §3.1, 8460 §3):
//!
//! ```text
//! record      = version 1*(field-delim field) [field-delim]
//! field-delim = *WSP ";" *WSP
//! field       = name "=" value
//! ext-name    = (ALPHA / DIGIT) 0*31(ALPHA / DIGIT / "_" / "-" / ".")
//! ext-value   = 1*(%x21-3A / %x3C / %x3E-7E)
//! ```
//!
//! This module splits a record into raw fields and checks the generic rules; the `id` and
//! `rua` values are checked by their owners.

use super::RecordError;

/// A record split into fields, plus the whitespace quirks the checker reports.
#[derive(Debug)]
pub(crate) struct RawRecord<'a> {
    /// `(name, value)` pairs in order. Names are case-preserved; values are untrimmed inside.
    pub(crate) fields: Vec<(&'a str, &'a str)>,
    /// WSP between the version and the first `;` (`v=STSv1 ;`, C13 / C117, EID 6285).
    pub(crate) space_before_first_delim: bool,
    /// WSP after the last field with no `;` (`v=STSv1; id=a `, C15): outside the ABNF.
    pub(crate) trailing_space: Option<&'a str>,
}

/// Whether a byte is WSP (SP or HTAB, RFC 5234).
pub(crate) fn is_wsp(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

/// Trims WSP (only SP and HTAB) from both ends.
pub(crate) fn trim_wsp(s: &str) -> &str {
    s.trim_matches(|c| c == ' ' || c == '\t')
}

/// Whether `name` is an extension name: ALPHA/DIGIT then up to 31 of ALPHA/DIGIT/`_`/`-`/`.`.
pub(crate) fn is_ext_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    match bytes.split_first() {
        Some((first, rest)) => {
            first.is_ascii_alphanumeric()
                && rest.len() <= 31
                && rest
                    .iter()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
        }
        None => false,
    }
}

/// Why an extension value is not `1*(%x21-3A / %x3C / %x3E-7E)`, if it is not.
pub(crate) fn ext_value_problem(value: &str) -> Option<&'static str> {
    if value.is_empty() {
        return Some("empty value");
    }
    if value.bytes().any(is_wsp) {
        return Some("whitespace inside the value");
    }
    if value.contains('=') {
        return Some("'=' inside the value");
    }
    if !value.bytes().all(|b| (0x21..=0x7e).contains(&b)) {
        return Some("a control character inside the value");
    }
    None
}

/// Why a field name is not valid, given the raw text before `=`.
fn name_problem(name: &str) -> Option<&'static str> {
    if name.is_empty() {
        return Some("the field has no name");
    }
    if name.ends_with([' ', '\t']) {
        return Some("whitespace before '='");
    }
    if !is_ext_name(name) {
        return Some(
            "a field name is a letter or digit followed by up to 31 letters, digits, '_', '-' or '.'",
        );
    }
    None
}

/// Checks that `text` is US-ASCII (C23) and starts with `version`, then splits the fields.
///
/// WSP before the first `;` is ABNF-valid but fails the literal discovery test (C13, EID
/// 6285): accepted and flagged. Trailing WSP without a closing `;` (C15) is outside the ABNF:
/// accepted (our one leniency) and flagged, so the checker can warn that mox rejects it.
pub(crate) fn split_record<'a>(
    text: &'a str,
    version: &'static str,
) -> Result<RawRecord<'a>, RecordError> {
    if let Some(offset) = text.bytes().position(|b| !b.is_ascii()) {
        return Err(RecordError::NotAscii { offset });
    }
    let Some(rest) = text.strip_prefix(version) else {
        return Err(RecordError::VersionNotFirst { expected: version });
    };
    let mut segments = rest.split(';');
    // The text between the version and the first `;` may only be WSP.
    let head = segments.next().unwrap_or("");
    if head
        .as_bytes()
        .first()
        .is_some_and(|b| !b.is_ascii_whitespace())
    {
        // `v=STSv10`, `v=STSv1x`: the version token itself is different.
        return Err(RecordError::VersionNotFirst { expected: version });
    }
    let head_body = trim_wsp(head);
    if !head_body.is_empty() {
        if head_body.bytes().any(|b| b.is_ascii_control()) {
            return Err(RecordError::InvalidField {
                field: head_body.to_owned(),
                reason: "a control character inside the record",
            });
        }
        return Err(RecordError::InvalidField {
            field: head_body.to_owned(),
            reason: "missing ';' between the version and this field",
        });
    }
    let space_before_first_delim = !head.is_empty();
    let segments: Vec<&str> = segments.collect();
    let mut fields = Vec::new();
    let mut trailing_space = None;
    let count = segments.len();
    for (index, segment) in segments.iter().enumerate() {
        let is_last = index + 1 == count;
        let field = trim_wsp(segment);
        if field.is_empty() {
            if is_last {
                // A trailing delimiter is allowed (`[field-delim]`).
                break;
            }
            return Err(RecordError::EmptyField);
        }
        if is_last {
            let trailing = &segment[segment.trim_end_matches([' ', '\t']).len()..];
            if !trailing.is_empty() {
                trailing_space = Some(trailing);
            }
        }
        fields.push(split_field(field)?);
    }
    if fields.is_empty() {
        return Err(RecordError::NoFields);
    }
    Ok(RawRecord {
        fields,
        space_before_first_delim,
        trailing_space,
    })
}

/// Splits one trimmed field at its first `=` and checks the name. Values are checked by the
/// caller (the `id`, `rua` and extension rules differ).
fn split_field(field: &str) -> Result<(&str, &str), RecordError> {
    let invalid = |reason| RecordError::InvalidField {
        field: field.to_owned(),
        reason,
    };
    let Some((name, value)) = field.split_once('=') else {
        if field.bytes().any(is_wsp) {
            return Err(invalid("missing ';' between two fields"));
        }
        return Err(invalid("a field is name=value"));
    };
    if let Some(reason) = name_problem(name) {
        return Err(invalid(reason));
    }
    if value.starts_with([' ', '\t']) {
        return Err(invalid("whitespace after '='"));
    }
    Ok((name, value))
}

/// Checks an extension value, returning the error for the whole field.
pub(crate) fn check_extension(name: &str, value: &str) -> Result<(), RecordError> {
    match ext_value_problem(value) {
        Some(reason) => Err(RecordError::InvalidField {
            field: format!("{name}={value}"),
            reason,
        }),
        None => Ok(()),
    }
}
