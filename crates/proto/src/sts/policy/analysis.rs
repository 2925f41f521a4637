//! The line-by-line reading of a policy body shared by [`super::Policy::parse`] and
//! [`super::analyze`]: one pass, every problem recorded, the first error kept as a typed
//! [`PolicyError`].
//!
//! The grammar (8461 §3.2), restated:
//!
//! ```text
//! policy = field *WSP *(term field *WSP) [term]      ; term = LF / CRLF
//! field  = key ":" *WSP value
//! ```
//!
//! Leniencies, each reported as a warning: blank lines are skipped (C51).

use std::collections::{HashMap, HashSet};

use super::typo::typo_of;
use super::{MaxAge, Mode, Policy, PolicyError, parse_max_age_digits};
use crate::diagnostic::quote;
use crate::sts::mx_pattern::MxPattern;
use crate::txt::Extension;
use crate::txt::fields::{is_ext_name, trim_wsp};
use crate::{Diagnostic, Severity};

/// The section every policy diagnostic cites.
const RULE: &str = "RFC 8461 §3.2";
/// The only valid version value.
const VERSION: &str = "STSv1";

/// What one pass over the body produced.
pub(super) struct Reading {
    /// The policy a compliant sender applies.
    pub(super) policy: Option<Policy>,
    /// Everything found.
    pub(super) diagnostics: Vec<Diagnostic>,
    /// The first error, typed.
    pub(super) first_error: Option<PolicyError>,
}

/// A valid reading of a single-valued key, with where it came from.
struct First<T> {
    line: usize,
    raw: String,
    value: T,
}

#[derive(Default)]
struct Reader {
    diagnostics: Vec<Diagnostic>,
    first_error: Option<PolicyError>,
    /// Lines holding a field (not blank, not rejected before the key was known).
    field_lines: usize,
    /// The first key seen, to tell whether `version` came first (C57).
    first_key: Option<String>,
    /// Known keys seen at all, valid or not: `missing` is only reported when absent.
    seen: HashSet<&'static str>,
    version: Option<First<()>>,
    mode: Option<First<Mode>>,
    max_age: Option<First<MaxAge>>,
    mx: Vec<MxPattern>,
    mx_lines: HashMap<MxPattern, usize>,
    extensions: Vec<Extension>,
    /// `(line, key, known key it resembles)` for the missing-key fix.
    typos: Vec<(usize, String, &'static str)>,
}

/// Reads a body. Never panics; linear in `body.len()`.
pub(super) fn read(body: &[u8]) -> Reading {
    let mut reader = Reader::default();
    if body.is_empty() {
        reader.error(
            PolicyError::Empty,
            Diagnostic {
                severity: Severity::Error,
                code: "policy-empty",
                line: None,
                message: "the policy body is empty".to_owned(),
                rule: RULE,
                fix: "serve the policy: version, mode, max_age and mx lines".to_owned(),
            },
        );
        return reader.finish();
    }
    let body = body.strip_suffix(b"\n").unwrap_or(body);
    for (index, raw_line) in body.split(|b| *b == b'\n').enumerate() {
        reader.line(index + 1, raw_line);
    }
    reader.check_required();
    reader.finish()
}

impl Reader {
    fn error(&mut self, error: PolicyError, diagnostic: Diagnostic) {
        debug_assert_eq!(diagnostic.severity, Severity::Error);
        self.first_error.get_or_insert(error);
        self.diagnostics.push(diagnostic);
    }

    fn note(
        &mut self,
        severity: Severity,
        code: &'static str,
        line: Option<usize>,
        message: String,
        fix: String,
    ) {
        self.diagnostics.push(Diagnostic {
            severity,
            code,
            line,
            message,
            rule: RULE,
            fix,
        });
    }

    /// An error on one line.
    fn line_error(
        &mut self,
        error: PolicyError,
        code: &'static str,
        line: usize,
        message: String,
        fix: String,
    ) {
        self.error(
            error,
            Diagnostic {
                severity: Severity::Error,
                code,
                line: Some(line),
                message,
                rule: RULE,
                fix,
            },
        );
    }

    /// One `\n`-separated line, terminator removed (a CR before it is still there).
    fn line(&mut self, n: usize, bytes: &[u8]) {
        let bytes = bytes.strip_suffix(b"\r").unwrap_or(bytes);
        if bytes.iter().all(|b| *b == b' ' || *b == b'\t') {
            let what = if bytes.is_empty() {
                "blank line"
            } else {
                "line holding only whitespace"
            };
            self.note(
                Severity::Warning,
                "policy-blank-line",
                Some(n),
                format!(
                    "{what}: outside the grammar; most senders skip it, but strict senders (mox, maddy) reject the whole policy"
                ),
                "remove the line (including a blank line at the end of the file)".to_owned(),
            );
            return;
        }
        let text = match std::str::from_utf8(bytes) {
            Ok(text) => text,
            Err(e) => {
                self.line_error(
                    PolicyError::Encoding { line: n },
                    "policy-invalid-utf8",
                    n,
                    format!(
                        "the line is not valid UTF-8 (bad byte at column {})",
                        e.valid_up_to() + 1
                    ),
                    "save the policy as UTF-8 (plain ASCII is best)".to_owned(),
                );
                return;
            }
        };
        let text = if n == 1 && text.starts_with('\u{feff}') {
            self.line_error(
                PolicyError::ByteOrderMark,
                "policy-bom",
                n,
                "the policy starts with a UTF-8 byte order mark (U+FEFF), so the first key is not \"version\" for strict and ASCII-only senders".to_owned(),
                "remove the BOM (save the file as UTF-8 without BOM)".to_owned(),
            );
            // Read on without it, to report the other problems too.
            let rest = &text['\u{feff}'.len_utf8()..];
            if rest.bytes().all(|b| b == b' ' || b == b'\t') {
                return;
            }
            rest
        } else {
            text
        };
        if text.contains('\r') {
            self.line_error(
                PolicyError::Line { line: n, reason: "bare CR: lines end with LF or CRLF".to_owned() },
                "policy-bare-cr",
                n,
                format!("the line {} contains a CR that is not followed by LF; lines end with LF or CRLF only", quote(text)),
                "use LF or CRLF line endings".to_owned(),
            );
            // Read the pieces as lenient readers would, so their problems show too.
            for piece in text.split('\r').filter(|p| !p.is_empty()) {
                self.field(n, piece);
            }
            return;
        }
        self.field(n, text);
    }

    /// One line that should be `key: value`.
    fn field(&mut self, n: usize, text: &str) {
        if let Some(c) = text.chars().find(|c| c.is_ascii_control() && *c != '\t') {
            self.line_error(
                PolicyError::Encoding { line: n },
                "policy-control-character",
                n,
                format!(
                    "the line {} contains the control character U+{:04X}; \\v, \\f, NUL and other controls are neither allowed nor line terminators",
                    quote(text),
                    u32::from(c)
                ),
                "remove the control character".to_owned(),
            );
            return;
        }
        if text.starts_with([' ', '\t']) {
            self.line_error(
                PolicyError::Line {
                    line: n,
                    reason: "leading whitespace".to_owned(),
                },
                "policy-leading-whitespace",
                n,
                format!("the line {} starts with whitespace", quote(text)),
                "remove the whitespace before the key".to_owned(),
            );
            return;
        }
        if text.starts_with('#') {
            self.line_error(
                PolicyError::Line {
                    line: n,
                    reason: "comments are not allowed".to_owned(),
                },
                "policy-comment",
                n,
                format!(
                    "the line {} is a comment; policies have no comment syntax",
                    quote(text)
                ),
                "remove the comment line".to_owned(),
            );
            return;
        }
        let Some((key, value)) = text.split_once(':') else {
            let hint = if text.contains('=') {
                " (it uses '=' where ':' belongs)"
            } else {
                ""
            };
            self.line_error(
                PolicyError::Line {
                    line: n,
                    reason: "not a key: value line".to_owned(),
                },
                "policy-invalid-line",
                n,
                format!("the line {} is not \"key: value\"{hint}", quote(text)),
                "write each line as key: value".to_owned(),
            );
            return;
        };
        if key.ends_with([' ', '\t']) {
            self.line_error(
                PolicyError::Line {
                    line: n,
                    reason: "whitespace before ':'".to_owned(),
                },
                "policy-space-before-colon",
                n,
                format!(
                    "the line {} has whitespace between the key and ':'",
                    quote(text)
                ),
                format!("write {}: {}", trim_wsp(key), trim_wsp(value)),
            );
            return;
        }
        self.field_lines += 1;
        if self.first_key.is_none() {
            self.first_key = Some(key.to_owned());
        }
        let value = trim_wsp(value);
        match key {
            "version" => self.version_line(n, value),
            "mode" => self.mode_line(n, value),
            "max_age" => self.max_age_line(n, value),
            "mx" => self.mx_line(n, value),
            _ => self.extension_line(n, key, value),
        }
    }

    fn version_line(&mut self, n: usize, value: &str) {
        self.seen.insert("version");
        if value != VERSION {
            self.line_error(
                PolicyError::InvalidVersion(value.to_owned()),
                "policy-invalid-version",
                n,
                format!(
                    "version is {}; the only valid value is STSv1 (case-sensitive)",
                    quote(value)
                ),
                "write version: STSv1".to_owned(),
            );
            return;
        }
        if let Some(first) = &self.version {
            let first_line = first.line;
            self.duplicate(n, "version", first_line, VERSION, value);
        } else {
            self.version = Some(First {
                line: n,
                raw: value.to_owned(),
                value: (),
            });
        }
    }

    fn mode_line(&mut self, n: usize, value: &str) {
        self.seen.insert("mode");
        let mode: Mode = match value.parse() {
            Ok(mode) => mode,
            Err(error) => {
                let fix = match value {
                    "report" => {
                        "write mode: testing (\"report\" is the early draft name of testing)"
                            .to_owned()
                    }
                    v if v.parse::<Mode>().is_err()
                        && ["enforce", "testing", "none"]
                            .contains(&v.to_ascii_lowercase().as_str()) =>
                    {
                        format!(
                            "write mode: {} (values are case-sensitive)",
                            v.to_ascii_lowercase()
                        )
                    }
                    _ => "write mode: enforce, mode: testing or mode: none".to_owned(),
                };
                self.line_error(
                    error,
                    "policy-invalid-mode",
                    n,
                    format!(
                        "mode is {}; valid values are enforce, testing and none (case-sensitive)",
                        quote(value)
                    ),
                    fix,
                );
                return;
            }
        };
        if let Some(first) = &self.mode {
            let (line, raw) = (first.line, first.raw.clone());
            self.duplicate(n, "mode", line, &raw, value);
        } else {
            self.mode = Some(First {
                line: n,
                raw: value.to_owned(),
                value: mode,
            });
        }
    }

    fn max_age_line(&mut self, n: usize, value: &str) {
        self.seen.insert("max_age");
        let max_age: MaxAge = match value.parse() {
            Ok(max_age) => max_age,
            Err(error) => {
                if parse_max_age_digits(value).is_some() {
                    self.line_error(
                        error,
                        "policy-max-age-above-cap",
                        n,
                        format!(
                            "max_age is {value}, above the maximum of 31557600 seconds (one year)"
                        ),
                        "write max_age: 31557600 or less (senders reject or clamp larger values)"
                            .to_owned(),
                    );
                } else {
                    self.line_error(
                        error,
                        "policy-invalid-max-age",
                        n,
                        format!(
                            "max_age is {}; it must be 1 to 10 digits and nothing else (no sign, '_', exponent, decimals or spaces)",
                            quote(value)
                        ),
                        "write max_age as plain seconds, e.g. max_age: 604800".to_owned(),
                    );
                }
                return;
            }
        };
        if let Some(first) = &self.max_age {
            let (line, raw) = (first.line, first.raw.clone());
            self.duplicate(n, "max_age", line, &raw, value);
        } else {
            self.max_age = Some(First {
                line: n,
                raw: value.to_owned(),
                value: max_age,
            });
        }
    }

    fn mx_line(&mut self, n: usize, value: &str) {
        self.seen.insert("mx");
        let pattern: MxPattern = match value.parse() {
            Ok(pattern) => pattern,
            Err(error) => {
                let fix = match &error {
                    crate::sts::mx_pattern::MxPatternError::TrailingDot(v) => format!(
                        "write mx: {} (many senders strip the dot, strict ones reject the policy)",
                        v.trim_end_matches('.')
                    ),
                    crate::sts::mx_pattern::MxPatternError::NotALabel(v) => match crate::domain::normalize_domain(v) {
                        Ok(a) => format!("write mx: {a}"),
                        Err(_) => "write the host name in A-label (xn--) form".to_owned(),
                    },
                    _ => "write one MX host name per mx line, optionally starting with *. for one label".to_owned(),
                };
                self.line_error(
                    PolicyError::InvalidMx {
                        line: n,
                        error: error.clone(),
                    },
                    "policy-invalid-mx",
                    n,
                    format!("invalid mx value: {error}"),
                    fix,
                );
                return;
            }
        };
        if pattern.looks_like_ip() {
            self.note(
                Severity::Warning,
                "policy-mx-ip-address",
                Some(n),
                format!("mx: {pattern} looks like an IP address; it is a valid name but never matches an MX host name"),
                "list MX host names, not addresses".to_owned(),
            );
        }
        if pattern.is_broad_wildcard() {
            self.note(
                Severity::Warning,
                "policy-mx-broad-wildcard",
                Some(n),
                format!(
                    "mx: {pattern} allows any host under the top-level domain {}",
                    pattern.domain()
                ),
                "list your own MX host names (RFC 8461 §10.4)".to_owned(),
            );
        }
        if let Some(first) = self.mx_lines.get(&pattern) {
            let first = *first;
            self.note(
                Severity::Info,
                "policy-duplicate-mx",
                Some(n),
                format!("mx: {pattern} repeats line {first}; harmless"),
                "remove the repeated line".to_owned(),
            );
        } else {
            self.mx_lines.insert(pattern.clone(), n);
        }
        self.mx.push(pattern);
    }

    fn extension_line(&mut self, n: usize, key: &str, value: &str) {
        if !is_ext_name(key) {
            let reason = if key.is_empty() {
                "the key is empty"
            } else {
                "a key is a letter or digit followed by up to 31 letters, digits, '_', '-' or '.'"
            };
            self.line_error(
                PolicyError::InvalidExtension {
                    line: n,
                    key: key.to_owned(),
                    reason,
                },
                "policy-invalid-key",
                n,
                format!("invalid key {}: {reason}", quote(key)),
                "fix the key or remove the line".to_owned(),
            );
            return;
        }
        let problem = if value.is_empty() {
            Some("the value is empty")
        } else if value.contains('\t') {
            Some("TAB inside the value")
        } else {
            None
        };
        if let Some(reason) = problem {
            self.line_error(
                PolicyError::InvalidExtension {
                    line: n,
                    key: key.to_owned(),
                    reason,
                },
                "policy-invalid-extension",
                n,
                format!(
                    "invalid extension {}: {reason}; strict senders (mox) reject the policy",
                    quote(key)
                ),
                "give the extension a value without TABs, or remove the line".to_owned(),
            );
            return;
        }
        if let Some(known) = typo_of(key) {
            self.typos.push((n, key.to_owned(), known));
            self.note(
                Severity::Warning,
                "policy-key-typo",
                Some(n),
                format!(
                    "{} is not a policy key (keys are case-sensitive), so senders ignore this line",
                    quote(key)
                ),
                format!("did you mean {known}? write {known}: {value}"),
            );
        }
        self.extensions.push(Extension {
            name: key.to_owned(),
            value: value.to_owned(),
        });
    }

    /// A repeated single-valued key: first wins (8461 §3.2), C58.
    fn duplicate(&mut self, n: usize, key: &str, first_line: usize, first: &str, value: &str) {
        if first == value {
            self.note(
                Severity::Info,
                "policy-duplicate-key",
                Some(n),
                format!("{key} repeats line {first_line} with the same value"),
                format!("remove line {n}"),
            );
        } else {
            // The RFC says to ignore all but the first, so this does not lower a verdict; the
            // message still names the readings that diverge.
            self.note(
                Severity::Info,
                "policy-duplicate-key",
                Some(n),
                format!(
                    "{key} appears on lines {first_line} ({first:?}) and {n} ({value:?}): RFC 8461 senders use the first ({first}); several libraries (mailauth, go-mtasts, postfix-mta-sts-resolver, Stalwart) use the last ({value})"
                ),
                format!("keep one {key} line"),
            );
        }
    }

    /// The required keys (8461 §3.2), and the version-first note (C57).
    fn check_required(&mut self) {
        if self.field_lines == 0 && self.first_error.is_none() {
            self.error(
                PolicyError::Empty,
                Diagnostic {
                    severity: Severity::Error,
                    code: "policy-empty",
                    line: None,
                    message: "the policy has no key: value lines".to_owned(),
                    rule: RULE,
                    fix: "serve the policy: version, mode, max_age and mx lines".to_owned(),
                },
            );
            return;
        }
        for key in ["version", "mode", "max_age"] {
            if !self.seen.contains(key) {
                self.missing(key);
            }
        }
        if let Some(mode) = &self.mode
            && mode.value != Mode::None
            && !self.seen.contains("mx")
        {
            self.missing("mx");
        }
        if self.seen.contains("version")
            && self.first_key.as_deref().is_some_and(|k| k != "version")
        {
            let line = self.version.as_ref().map(|v| v.line);
            self.note(
                Severity::Info,
                "policy-version-not-first",
                line,
                "version is not the first line: valid (field order is free), but some guides say it must come first".to_owned(),
                "move version: STSv1 to the first line".to_owned(),
            );
        }
    }

    fn missing(&mut self, key: &'static str) {
        let typo = self.typos.iter().find(|(_, _, known)| *known == key);
        let fix = match typo {
            Some((line, found, _)) => {
                format!("did you mean {key}? line {line} has {found:?}; rename it to {key}")
            }
            None => match key {
                "version" => "add the line version: STSv1".to_owned(),
                "mode" => "add a mode line: mode: testing, mode: enforce or mode: none".to_owned(),
                "max_age" => "add a max_age line, e.g. max_age: 604800".to_owned(),
                _ => "add one mx line per MX host (mx: mail.example.com or mx: *.example.com)"
                    .to_owned(),
            },
        };
        let message = if key == "mx" {
            "no mx line: mode enforce and testing need at least one".to_owned()
        } else {
            format!("the required key {key} is missing")
        };
        self.error(
            PolicyError::Missing(key),
            Diagnostic {
                severity: Severity::Error,
                code: "policy-missing-key",
                line: None,
                message,
                rule: RULE,
                fix,
            },
        );
    }

    fn finish(self) -> Reading {
        let rejected = self
            .diagnostics
            .iter()
            .any(|d| d.severity == Severity::Error);
        let policy = match (rejected, self.version, self.mode, self.max_age) {
            (false, Some(_), Some(mode), Some(max_age)) => Some(Policy {
                mode: mode.value,
                max_age: max_age.value,
                mx: self.mx,
                extensions: self.extensions,
            }),
            _ => None,
        };
        Reading {
            policy,
            diagnostics: self.diagnostics,
            first_error: self.first_error,
        }
    }
}
