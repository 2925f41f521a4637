//! The exactly-one-record discovery rule shared by `_mta-sts` (8461 §3.1) and `_smtp._tls`
//! (8460 §3), with the checker's notes on everything else found at the name.

use std::collections::HashMap;

use super::fields::{RawRecord, is_wsp, split_record};
use super::{RecordError, Selection, TxtRr};
use crate::diagnostic::quote;
use crate::{Diagnostic, Severity};

/// What differs between the two record kinds.
pub(crate) struct RecordKind<T> {
    /// The version literal, `v=STSv1` or `v=TLSRPTv1`.
    pub(crate) version: &'static str,
    /// The owner name prefix for messages: `_mta-sts` or `_smtp._tls`.
    pub(crate) owner: &'static str,
    /// The rule cited in diagnostics.
    pub(crate) rule: &'static str,
    /// A field whose repeats are merged rather than first-wins (`rua`, C114).
    pub(crate) merged_field: Option<&'static str>,
    /// Builds the record from its split fields.
    pub(crate) build: fn(&RawRecord<'_>) -> Result<T, RecordError>,
}

/// How one RR relates to the record kind being discovered.
enum Class {
    /// Starts with the version followed by optional WSP and `;`, or is the bare version.
    Candidate,
    /// Looks like an attempt at this record but is discarded by the literal test.
    NearMiss {
        code: &'static str,
        message: String,
        fix: String,
    },
    /// An SPF record (C26).
    Spf,
    /// Anything else (C7).
    Unrelated,
}

fn classify(bytes: &[u8], version: &'static str) -> Class {
    let v = version.as_bytes();
    let text = String::from_utf8_lossy(bytes);
    if let Some(rest) = bytes.strip_prefix(v) {
        let after_wsp = rest
            .iter()
            .position(|b| !is_wsp(*b))
            .map_or(&[][..], |i| &rest[i..]);
        if matches!(after_wsp.first(), None | Some(b';')) {
            return Class::Candidate;
        }
        return Class::NearMiss {
            code: "record-version-near-miss",
            message: format!(
                "the TXT record {} starts with {version} but is not followed by ';', so senders discard it",
                quote(&text)
            ),
            fix: format!("start the record with exactly \"{version};\""),
        };
    }
    if bytes.len() >= v.len() && bytes[..v.len()].eq_ignore_ascii_case(v) {
        return Class::NearMiss {
            code: "record-version-case",
            message: format!(
                "the TXT record {} spells the version in the wrong case; the version is case-sensitive, so senders discard it",
                quote(&text)
            ),
            fix: format!("write the version exactly as \"{version}\""),
        };
    }
    if bytes.windows(v.len()).any(|w| w == v) {
        return Class::NearMiss {
            code: "record-version-not-first",
            message: format!(
                "the TXT record {} contains {version} but does not start with it, so senders discard it",
                quote(&text)
            ),
            fix: format!("move \"{version};\" to the very start of the record"),
        };
    }
    if bytes.len() >= 6 && bytes[..6].eq_ignore_ascii_case(b"v=spf1") {
        return Class::Spf;
    }
    Class::Unrelated
}

/// Applies the discovery rule for `kind` to an RRset.
///
/// Every RR that is not a candidate gets an Info note, never a Warning: the RFC tells senders
/// to discard it (8461 §3.1, 8460 §3), so it cannot change what a sender does and must not
/// lower a checker verdict. When nothing else is found, the missing record is the problem.
pub(crate) fn select<T>(rrset: &[TxtRr], kind: &RecordKind<T>) -> Selection<T> {
    let mut diagnostics = Vec::new();
    let mut candidates = Vec::new();
    for rr in rrset {
        let bytes = rr.concat();
        match classify(&bytes, kind.version) {
            Class::Candidate => candidates.push(String::from_utf8_lossy(&bytes).into_owned()),
            Class::NearMiss { code, message, fix } => diagnostics.push(Diagnostic {
                severity: Severity::Info,
                code,
                line: None,
                message,
                rule: kind.rule,
                fix,
            }),
            Class::Spf => diagnostics.push(Diagnostic {
                severity: Severity::Info,
                code: "record-spf",
                line: None,
                message: format!(
                    "an SPF record {} answers at {}, where the {} record should be (a wildcard TXT record?)",
                    quote(&String::from_utf8_lossy(&bytes)),
                    kind.owner,
                    kind.version
                ),
                rule: kind.rule,
                fix: format!(
                    "publish the {} record at {}.<domain>, and check that no wildcard SPF record covers that name",
                    kind.version, kind.owner
                ),
            }),
            Class::Unrelated => diagnostics.push(Diagnostic {
                severity: Severity::Info,
                code: "record-unrelated-txt",
                line: None,
                message: format!(
                    "an unrelated TXT record {} is published at {}; senders ignore it",
                    quote(&String::from_utf8_lossy(&bytes)),
                    kind.owner
                ),
                rule: kind.rule,
                fix: format!("remove it: only the {} record belongs at {}", kind.version, kind.owner),
            }),
        }
    }
    if candidates.len() > 1 {
        return Selection::Multiple {
            raws: candidates,
            diagnostics,
        };
    }
    let Some(raw) = candidates.pop() else {
        return Selection::Missing { diagnostics };
    };
    let parsed = split_record(&raw, kind.version).and_then(|fields| {
        let record = (kind.build)(&fields)?;
        Ok((record, quirks(&fields, kind)))
    });
    match parsed {
        Ok((record, notes)) => {
            diagnostics.extend(notes);
            Selection::Found {
                record,
                raw,
                diagnostics,
            }
        }
        Err(error) => {
            if matches!(error, RecordError::InvalidField { .. }) && lenient_accepts(&raw, kind) {
                diagnostics.push(Diagnostic {
                    severity: Severity::Info,
                    code: "record-lenient-senders-accept",
                    line: None,
                    message: format!(
                        "strict senders (mox) reject this record ({error}); lenient senders skip the bad field and may still use it"
                    ),
                    rule: kind.rule,
                    fix: "fix or remove the invalid field so that every sender reads the record the same way"
                        .to_owned(),
                });
            }
            Selection::Invalid {
                raw,
                error,
                diagnostics,
            }
        }
    }
}

/// Whether a lenient sender, which drops the fields it cannot read, still finds a usable
/// record (C21: mailauth, postfix-mta-sts-resolver and others skip invalid extensions).
fn lenient_accepts<T>(raw: &str, kind: &RecordKind<T>) -> bool {
    let Some(rest) = raw.strip_prefix(kind.version) else {
        return false;
    };
    let field_ok = |segment: &str| {
        let alone = format!("{};{segment}", kind.version);
        match split_record(&alone, kind.version) {
            Ok(fields) => matches!(
                (kind.build)(&fields),
                Ok(_) | Err(RecordError::MissingId | RecordError::MissingRua)
            ),
            Err(_) => false,
        }
    };
    let kept: Vec<&str> = rest
        .split(';')
        .skip(1)
        .filter(|segment| !segment.trim_matches([' ', '\t']).is_empty() && field_ok(segment))
        .collect();
    let text = format!("{};{}", kind.version, kept.join(";"));
    split_record(&text, kind.version)
        .and_then(|fields| (kind.build)(&fields))
        .is_ok()
}

/// Notes about a record that parses: whitespace quirks and repeated fields. What the grammar
/// allows or the RFC tells senders to ignore (whitespace around ';', repeated fields) is Info,
/// so it does not lower a checker verdict; text outside the grammar is a Warning.
fn quirks<T>(fields: &RawRecord<'_>, kind: &RecordKind<T>) -> Vec<Diagnostic> {
    let mut notes = Vec::new();
    if fields.space_before_first_delim {
        notes.push(Diagnostic {
            severity: Severity::Info,
            code: "record-space-before-semicolon",
            line: None,
            message: format!(
                "whitespace between {} and ';': the grammar allows it, but the discovery rule tests for the literal \"{};\" and some senders and checkers discard the record (EID 6285)",
                kind.version, kind.version
            ),
            rule: kind.rule,
            fix: format!("start the record with \"{};\" without a space", kind.version),
        });
    }
    if let Some(trailing) = fields.trailing_space {
        notes.push(Diagnostic {
            severity: Severity::Warning,
            code: "record-trailing-whitespace",
            line: None,
            message: format!(
                "the record ends in whitespace {trailing:?} without a ';': outside the grammar; strict senders (mox) reject it"
            ),
            rule: kind.rule,
            fix: "remove the trailing whitespace, or end the record with ';'".to_owned(),
        });
    }
    let mut seen: HashMap<&str, Vec<&str>> = HashMap::new();
    let mut order = Vec::new();
    for (name, value) in &fields.fields {
        let values = seen.entry(name).or_default();
        if values.is_empty() {
            order.push(*name);
        }
        values.push(value);
    }
    for name in order {
        let values = &seen[name];
        if values.len() < 2 {
            continue;
        }
        if kind.merged_field == Some(name) {
            notes.push(Diagnostic {
                severity: Severity::Info,
                code: "record-duplicate-rua",
                line: None,
                message: format!(
                    "{} {name}= fields: the URIs are merged, but some reporters use only one field",
                    values.len()
                ),
                rule: kind.rule,
                fix: format!("put every URI into one {name}= field, separated by ','"),
            });
        } else {
            let differ = values.iter().any(|v| v != &values[0]);
            notes.push(Diagnostic {
                severity: Severity::Info,
                code: "record-duplicate-field",
                line: None,
                message: if differ {
                    format!(
                        "the field {name} appears {} times with different values ({}); senders use the first ({:?}), some parsers use the last",
                        values.len(),
                        values.iter().map(|v| format!("{v:?}")).collect::<Vec<_>>().join(", "),
                        values[0]
                    )
                } else {
                    format!("the field {name} appears {} times with the same value", values.len())
                },
                rule: kind.rule,
                fix: format!("keep one {name} field"),
            });
        }
    }
    notes
}
