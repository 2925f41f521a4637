//! The `_dmarc` TXT record (RFC 7489 §6.3–6.4, RFC 9989): the tag grammar, every tag's value,
//! the exactly-one-record rule, and the reporting URIs with their RFC 7489 §7.1 authorization
//! names.
//!
//! The grammar is DKIM's tag-list (RFC 6376 §3.2) as RFC 7489 §6.4 narrows it:
//!
//! ```text
//! record    = version *(sep tag) [sep]
//! version   = "v" *WSP "=" *WSP %x44.4d.41.52.43.31      ; "DMARC1", case-sensitive
//! sep       = *WSP ";" *WSP
//! tag       = name *WSP "=" *WSP value
//! ```
//!
//! Readings taken where receivers differ (each reported as a [`Diagnostic`]):
//!
//! * A repeated tag makes the whole tag-list invalid (RFC 6376 §3.2, which RFC 7489 §6.4
//!   adopts): error `dmarc-tag-duplicate`, and the record is not used.
//! * An invalid value of a known tag is dropped in favour of the default (RFC 7489 §6.3
//!   "syntax errors in the remainder of the record SHOULD be discarded"), reported as an error
//!   because what the owner wrote is not what receivers apply.
//! * Unknown tags are ignored by receivers (both RFCs), so they are notes, not warnings.
//! * Tag names and keyword values in another case are accepted (ABNF literals are
//!   case-insensitive) with a warning, since tag-list parsers copied from DKIM compare names
//!   case-sensitively.
//! * A missing or invalid `p`: RFC 7489 §6.6.3 step 6 applies `p=none` only when `rua` holds a
//!   valid URI and otherwise ignores the record; RFC 9989 applies `p=none`.

use std::fmt;

use crate::diagnostic::quote;
use crate::domain::normalize_domain;
use crate::txt::TxtRr;
use crate::{Diagnostic, Severity};

/// The version value, case-sensitive.
pub const VERSION: &str = "DMARC1";
/// The longest record text read; a TXT RRset far beyond any real record is cut here.
pub const MAX_RECORD_BYTES: usize = 4096;
/// At most this many URIs are read from one `rua` or `ruf` tag.
pub const MAX_URIS: usize = 16;

const RULE_SYNTAX: &str = "RFC 7489 §6.4";
const RULE_TAGS: &str = "RFC 7489 §6.3";
const RULE_DISCOVERY: &str = "RFC 7489 §6.6.3";
const RULE_BIS: &str = "RFC 9989";

/// `_dmarc.<domain>`.
pub fn record_name(domain: &str) -> String {
    format!("_dmarc.{domain}")
}

/// The RFC 7489 §7.1 name that authorizes `destination` to receive reports for
/// `policy_domain`: `<policy_domain>._report._dmarc.<destination>`.
pub fn authorization_name(policy_domain: &str, destination: &str) -> String {
    format!("{policy_domain}._report._dmarc.{destination}")
}

/// The record text for `p=<policy>` with the given `rua` URIs (as `mtasts generate dmarc`
/// prints it): `v` first and `p` second, as RFC 7489 receivers require.
pub fn record_text(policy: RequestedPolicy, rua: &[String]) -> String {
    let mut text = format!("v={VERSION}; p={policy}");
    if !rua.is_empty() {
        text.push_str(&format!("; rua={}", rua.join(",")));
    }
    text
}

/// The next safe step from `policy` for `domain`, as advice: what to watch in the reports
/// before moving up the ladder none → quarantine → reject (RFC 9989 removed `pct`, so the
/// ramp uses it only for RFC 7489 receivers).
pub fn next_step_advice(policy: RequestedPolicy, domain: &str) -> String {
    match policy {
        RequestedPolicy::None => format!(
            "Read the aggregate reports until every legitimate source of mail from {domain} passes SPF or DKIM aligned with {domain} (usually two to four weeks); then publish p=quarantine (RFC 7489 receivers: optionally pct=25, then 50, then 100), then p=reject."
        ),
        RequestedPolicy::Quarantine => format!(
            "When the reports show no legitimate mail from {domain} quarantined for some weeks, publish p=reject."
        ),
        RequestedPolicy::Reject => format!(
            "p=reject is the last step: keep reading the reports, and check every new sending service for aligned SPF or DKIM before it sends as {domain}."
        ),
    }
}

/// A requested handling policy (`p`, `sp`, `np`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RequestedPolicy {
    /// `none`: monitor only.
    None,
    /// `quarantine`: treat failing mail as suspicious.
    Quarantine,
    /// `reject`: refuse failing mail.
    Reject,
}

impl RequestedPolicy {
    /// `none`, `quarantine` or `reject`.
    pub fn as_str(self) -> &'static str {
        match self {
            RequestedPolicy::None => "none",
            RequestedPolicy::Quarantine => "quarantine",
            RequestedPolicy::Reject => "reject",
        }
    }

    /// The next safe step up the ladder none → quarantine → reject; `None` at `reject`.
    pub fn next_step(self) -> Option<RequestedPolicy> {
        match self {
            RequestedPolicy::None => Some(RequestedPolicy::Quarantine),
            RequestedPolicy::Quarantine => Some(RequestedPolicy::Reject),
            RequestedPolicy::Reject => None,
        }
    }

    /// Case-insensitive (ABNF literals are).
    pub fn parse(value: &str) -> Option<RequestedPolicy> {
        [
            RequestedPolicy::None,
            RequestedPolicy::Quarantine,
            RequestedPolicy::Reject,
        ]
        .into_iter()
        .find(|p| value.eq_ignore_ascii_case(p.as_str()))
    }
}

impl fmt::Display for RequestedPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for RequestedPolicy {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        RequestedPolicy::parse(s).ok_or_else(|| format!("{s:?} is not none, quarantine or reject"))
    }
}

/// `psd`: whether the record's domain is a public suffix domain (RFC 9989).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Psd {
    /// `psd=y`: a public suffix operator's record.
    Yes,
    /// `psd=n`: the domain is an organizational domain.
    No,
    /// `psd=u` or absent: the tree walk decides.
    Unknown,
}

/// One reporting URI of `rua` or `ruf`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReportUri {
    /// The URI as published (without a `!size` suffix).
    pub uri: String,
    /// The destination host receivers authorize (RFC 7489 §7.1): the domain of a `mailto:`
    /// address, lowercase A-labels; `None` for other schemes.
    pub destination: Option<String>,
}

/// A parsed `_dmarc` record. Tags with invalid values hold their defaults (or `None`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DmarcRecord {
    /// `p`; `None` when absent or invalid.
    pub p: Option<RequestedPolicy>,
    /// `sp`; `None` when absent or invalid (then `p` applies to subdomains).
    pub sp: Option<RequestedPolicy>,
    /// `np` (RFC 9989); `None` when absent or invalid.
    pub np: Option<RequestedPolicy>,
    /// `adkim=s`.
    pub adkim_strict: bool,
    /// `aspf=s`.
    pub aspf_strict: bool,
    /// `pct` (RFC 7489 only; 100 when absent or invalid).
    pub pct: u8,
    /// Whether `pct` was given (valid).
    pub pct_given: bool,
    /// `fo` options, default `["0"]`.
    pub fo: Vec<String>,
    /// Valid `rua` URIs.
    pub rua: Vec<ReportUri>,
    /// Valid `ruf` URIs.
    pub ruf: Vec<ReportUri>,
    /// `ri` seconds (RFC 7489 only), when given.
    pub ri: Option<u32>,
    /// `rf` formats (RFC 7489 only), when given.
    pub rf: Option<String>,
    /// `psd` (RFC 9989).
    pub psd: Psd,
    /// `t=y` (RFC 9989 testing mode).
    pub testing: bool,
    /// Some tag was repeated: the tag-list is invalid and receivers do not use the record.
    pub duplicate_tag: bool,
    /// `sp` was given with an invalid value, which RFC 7489 §6.6.3 step 6 treats like an
    /// invalid `p`.
    pub sp_invalid: bool,
    /// Every tag as published (lowercased name, trimmed value), in order, after `v`.
    pub tags: Vec<(String, String)>,
}

impl DmarcRecord {
    /// The policy an RFC 7489 receiver applies to the record's own domain: `p`, or `none` when
    /// `p` is missing or invalid and `rua` holds a valid URI (§6.6.3 step 6); `None` when the
    /// receiver ignores the record.
    pub fn policy_7489(&self) -> Option<RequestedPolicy> {
        if self.duplicate_tag {
            return None;
        }
        match self.p.filter(|_| !self.sp_invalid) {
            Some(p) => Some(p),
            None if !self.rua.is_empty() => Some(RequestedPolicy::None),
            None => None,
        }
    }

    /// The policy an RFC 9989 receiver applies to the record's own domain (`p`, or `none`).
    pub fn policy_9989(&self) -> Option<RequestedPolicy> {
        if self.duplicate_tag {
            return None;
        }
        Some(self.p.unwrap_or(RequestedPolicy::None))
    }

    /// The policy for a subdomain that inherits this record: `sp`, else the record's policy.
    pub fn subdomain_policy(&self, own: Option<RequestedPolicy>) -> Option<RequestedPolicy> {
        own.map(|p| self.sp.unwrap_or(p))
    }
}

/// A record text parsed, with every diagnostic found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Parsed {
    /// The record as receivers read it.
    pub record: DmarcRecord,
    /// Problems and notes, tag by tag.
    pub diagnostics: Vec<Diagnostic>,
}

/// What the TXT RRset at a `_dmarc` name holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RecordSet {
    /// No record starts with `v=DMARC1`.
    Missing {
        /// Notes on the other TXT records there.
        diagnostics: Vec<Diagnostic>,
    },
    /// Exactly one record starts with `v=DMARC1`.
    One {
        /// Its text.
        raw: String,
        /// It, parsed.
        parsed: Box<Parsed>,
        /// Notes on the other TXT records there.
        diagnostics: Vec<Diagnostic>,
    },
    /// Several records start with `v=DMARC1`: receivers use none of them.
    Multiple {
        /// Their texts.
        raws: Vec<String>,
        /// Notes on the other TXT records there.
        diagnostics: Vec<Diagnostic>,
    },
}

impl RecordSet {
    /// The single record, if there is exactly one.
    pub fn one(&self) -> Option<&DmarcRecord> {
        match self {
            RecordSet::One { parsed, .. } => Some(&parsed.record),
            _ => None,
        }
    }
}

fn diag(
    severity: Severity,
    code: &'static str,
    rule: &'static str,
    message: String,
    fix: impl Into<String>,
) -> Diagnostic {
    Diagnostic {
        severity,
        code,
        line: None,
        message,
        rule,
        fix: fix.into(),
    }
}

fn is_wsp(c: char) -> bool {
    c == ' ' || c == '\t'
}

fn trim_wsp(s: &str) -> &str {
    s.trim_matches(is_wsp)
}

/// Where the tag-list starts when `text` begins with the DMARC version, else `None`.
/// `Err` holds a near-miss note (a record a receiver discards but the owner meant as DMARC).
fn version_end(text: &str) -> Result<Option<usize>, Diagnostic> {
    let Some(first) = text.chars().next() else {
        return Ok(None);
    };
    if first != 'v' && first != 'V' {
        if text.contains("DMARC1") {
            return Err(diag(
                Severity::Info,
                "dmarc-version-not-first",
                RULE_DISCOVERY,
                format!(
                    "the TXT record {} mentions DMARC1 but does not start with v=DMARC1, so receivers discard it",
                    quote(text)
                ),
                "start the record with \"v=DMARC1;\"",
            ));
        }
        return Ok(None);
    }
    let rest = trim_wsp_start(&text[1..]);
    let Some(rest) = rest.strip_prefix('=') else {
        return Ok(None);
    };
    let rest = trim_wsp_start(rest);
    let offset = text.len() - rest.len();
    if rest.len() >= VERSION.len()
        && rest.as_bytes()[..VERSION.len()].eq_ignore_ascii_case(VERSION.as_bytes())
    {
        // The first bytes are ASCII, so this is a character boundary.
        let after = &rest[VERSION.len()..];
        let tail = trim_wsp_start(after);
        let exact = &rest[..VERSION.len()] == VERSION;
        if !(tail.is_empty() || tail.starts_with(';')) {
            return Err(diag(
                Severity::Info,
                "dmarc-version-near-miss",
                RULE_DISCOVERY,
                format!(
                    "the TXT record {} starts like v=DMARC1 but the version is not followed by ';', so receivers discard it",
                    quote(text)
                ),
                "start the record with exactly \"v=DMARC1;\"",
            ));
        }
        if !exact {
            return Err(diag(
                Severity::Info,
                "dmarc-version-case",
                RULE_DISCOVERY,
                format!(
                    "the TXT record {} spells the version in the wrong case; \"DMARC1\" is case-sensitive, so receivers discard it",
                    quote(text)
                ),
                "write the version exactly as \"v=DMARC1\"",
            ));
        }
        return Ok(Some(offset + VERSION.len()));
    }
    Ok(None)
}

fn trim_wsp_start(s: &str) -> &str {
    s.trim_start_matches(is_wsp)
}

/// Whether a TXT record text is a DMARC record candidate (starts with `v=DMARC1`).
pub fn is_candidate(text: &str) -> bool {
    matches!(version_end(text), Ok(Some(_)))
}

/// Applies the discovery rule (RFC 7489 §6.6.3 steps 1–2, 5) to the RRset at one name.
pub fn select(rrset: &[TxtRr]) -> RecordSet {
    let mut diagnostics = Vec::new();
    let mut raws = Vec::new();
    for rr in rrset {
        let mut bytes = rr.concat();
        bytes.truncate(MAX_RECORD_BYTES);
        let text = String::from_utf8_lossy(&bytes).into_owned();
        match version_end(&text) {
            Ok(Some(_)) => raws.push(text),
            Ok(None) => {
                let (code, what) =
                    if text.len() >= 6 && text.as_bytes()[..6].eq_ignore_ascii_case(b"v=spf1") {
                        ("dmarc-spf-at-dmarc", "an SPF record")
                    } else {
                        ("dmarc-unrelated-txt", "an unrelated TXT record")
                    };
                diagnostics.push(diag(
                    Severity::Info,
                    code,
                    RULE_DISCOVERY,
                    format!("{what} {} is published at the _dmarc name; receivers ignore it", quote(&text)),
                    "remove it: only the v=DMARC1 record belongs at _dmarc.<domain> (a wildcard TXT record can put it there)",
                ));
            }
            Err(note) => diagnostics.push(note),
        }
    }
    match raws.len() {
        0 => RecordSet::Missing { diagnostics },
        1 => {
            let raw = raws.pop().expect("one record");
            let parsed = Box::new(parse(&raw));
            RecordSet::One {
                raw,
                parsed,
                diagnostics,
            }
        }
        _ => RecordSet::Multiple { raws, diagnostics },
    }
}

/// Parses one record text that starts with `v=DMARC1` (see [`is_candidate`]); anything else
/// yields a record without a policy and a `dmarc-version` error.
pub fn parse(text: &str) -> Parsed {
    let mut record = DmarcRecord {
        p: None,
        sp: None,
        np: None,
        adkim_strict: false,
        aspf_strict: false,
        pct: 100,
        pct_given: false,
        fo: vec!["0".to_owned()],
        rua: Vec::new(),
        ruf: Vec::new(),
        ri: None,
        rf: None,
        psd: Psd::Unknown,
        testing: false,
        duplicate_tag: false,
        sp_invalid: false,
        tags: Vec::new(),
    };
    let mut diagnostics = Vec::new();
    let start = match version_end(text) {
        Ok(Some(end)) => end,
        Ok(None) | Err(_) => {
            diagnostics.push(diag(
                Severity::Error,
                "dmarc-version",
                RULE_SYNTAX,
                format!("the record {} does not start with v=DMARC1", quote(text)),
                "start the record with \"v=DMARC1;\"",
            ));
            return Parsed {
                record,
                diagnostics,
            };
        }
    };
    if !text.starts_with("v=") {
        diagnostics.push(diag(
            Severity::Info,
            "dmarc-version-spacing",
            RULE_SYNTAX,
            format!(
                "the record {} writes the version tag with a capital V or spaces around '='; the grammar allows it, but write \"v=DMARC1\" as every example does",
                quote(text)
            ),
            "start the record with exactly \"v=DMARC1;\"",
        ));
    }
    let mut seen: Vec<String> = Vec::new();
    let mut case_noted = false;
    for (index, segment) in text[start..].split(';').enumerate() {
        let segment = trim_wsp(segment);
        if index == 0 {
            // What follows the version up to the first ';' is only WSP (checked by version_end).
            continue;
        }
        if segment.is_empty() {
            continue;
        }
        let Some((name, value)) = segment.split_once('=') else {
            diagnostics.push(diag(
                Severity::Error,
                "dmarc-tag-syntax",
                RULE_SYNTAX,
                format!("the tag {} has no '=': receivers ignore it", quote(segment)),
                "write every tag as name=value, separated by ';'",
            ));
            continue;
        };
        let raw_name = trim_wsp(name);
        let value = trim_wsp(value);
        if !is_tag_name(raw_name) {
            diagnostics.push(diag(
                Severity::Error,
                "dmarc-tag-syntax",
                RULE_SYNTAX,
                format!(
                    "{} is not a tag name (letters, digits and '_', starting with a letter): receivers ignore the tag",
                    quote(raw_name)
                ),
                "write every tag as name=value, separated by ';'",
            ));
            continue;
        }
        let name = raw_name.to_ascii_lowercase();
        if name != raw_name && !case_noted {
            case_noted = true;
            diagnostics.push(case_warning(raw_name));
        }
        if seen.contains(&name) || name == "v" {
            record.duplicate_tag = true;
            diagnostics.push(diag(
                Severity::Error,
                "dmarc-tag-duplicate",
                "RFC 7489 §6.4, RFC 6376 §3.2",
                format!(
                    "the tag {name}= appears more than once; a tag-list with a repeated tag is invalid, so receivers may ignore the whole record"
                ),
                format!("keep one {name}= tag"),
            ));
            continue;
        }
        seen.push(name.clone());
        record.tags.push((name.clone(), value.to_owned()));
        tag(&mut record, &mut diagnostics, &name, value, &mut case_noted);
    }
    if let Some(first) = record.tags.first()
        && first.0 != "p"
        && record.tags.iter().any(|(n, _)| n == "p")
    {
        diagnostics.push(diag(
            Severity::Warning,
            "dmarc-p-not-second",
            RULE_TAGS,
            format!(
                "p= is not the tag right after v=DMARC1 (the first is {}=); RFC 7489 requires v and p in that order and strict receivers ignore the record (RFC 9989 allows any order)",
                first.0
            ),
            "put p= right after v=DMARC1: \"v=DMARC1; p=...; ...\"",
        ));
    }
    if record.p.is_none() && !record.duplicate_tag {
        let what = if record.tags.iter().any(|(n, _)| n == "p") {
            "no valid p= tag"
        } else {
            "no p= tag"
        };
        let (severity, consequence) = if record.rua.is_empty() {
            (
                Severity::Error,
                "RFC 7489 receivers ignore the record (it has no valid rua either); RFC 9989 receivers apply p=none",
            )
        } else {
            (
                Severity::Warning,
                "RFC 7489 and RFC 9989 receivers act as if p=none were published, because rua holds a valid URI",
            )
        };
        diagnostics.push(diag(
            severity,
            "dmarc-p-missing",
            RULE_DISCOVERY,
            format!("the record has {what}: {consequence}"),
            "add p=none (to start monitoring), then move to quarantine and reject",
        ));
    }
    Parsed {
        record,
        diagnostics,
    }
}

fn case_warning(text: &str) -> Diagnostic {
    diag(
        Severity::Warning,
        "dmarc-tag-case",
        RULE_SYNTAX,
        format!(
            "{} is not in lowercase; the grammar is case-insensitive, but receivers whose tag-list parser follows DKIM compare tag names case-sensitively",
            quote(text)
        ),
        "write tag names and values in lowercase",
    )
}

fn is_tag_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn invalid(name: &str, value: &str, expected: &str, default: &str) -> Diagnostic {
    diag(
        Severity::Error,
        "dmarc-tag-invalid",
        RULE_TAGS,
        format!(
            "{name}={} is not valid ({expected}); receivers discard it and use {default}",
            quote(value)
        ),
        format!("write {name}= as {expected}"),
    )
}

fn removed(name: &str, value: &str, what: &str) -> Diagnostic {
    diag(
        Severity::Info,
        "dmarc-tag-removed",
        RULE_BIS,
        format!(
            "{name}={} is {what}; RFC 9989 removed the tag, so receivers following it ignore it (RFC 7489 receivers still read it)",
            quote(value)
        ),
        format!("remove {name}= once you no longer rely on RFC 7489 receivers reading it"),
    )
}

fn tag(
    record: &mut DmarcRecord,
    diagnostics: &mut Vec<Diagnostic>,
    name: &str,
    value: &str,
    case_noted: &mut bool,
) {
    let mut keyword = |value: &str, diagnostics: &mut Vec<Diagnostic>| {
        if value.chars().any(|c| c.is_ascii_uppercase()) && !*case_noted {
            *case_noted = true;
            diagnostics.push(case_warning(value));
        }
    };
    match name {
        "p" | "sp" | "np" => match RequestedPolicy::parse(value) {
            Some(policy) => {
                keyword(value, diagnostics);
                match name {
                    "p" => record.p = Some(policy),
                    "sp" => record.sp = Some(policy),
                    _ => record.np = Some(policy),
                }
            }
            None => {
                let default = match name {
                    "p" => "no policy (see dmarc-p-missing)",
                    "sp" => "RFC 7489 receivers then treat the whole record as if p were invalid (p=none with a valid rua, else no policy); RFC 9989 receivers use p= for subdomains",
                    _ => "the sp= (or p=) policy for non-existent subdomains",
                };
                diagnostics.push(invalid(name, value, "none, quarantine or reject", default));
                if name == "sp" {
                    record.sp_invalid = true;
                }
            }
        },
        "adkim" | "aspf" => {
            let strict = match value.to_ascii_lowercase().as_str() {
                "r" => Some(false),
                "s" => Some(true),
                _ => None,
            };
            match strict {
                Some(strict) => {
                    keyword(value, diagnostics);
                    if name == "adkim" {
                        record.adkim_strict = strict;
                    } else {
                        record.aspf_strict = strict;
                    }
                }
                None => diagnostics.push(invalid(
                    name,
                    value,
                    "r (relaxed) or s (strict)",
                    "r (relaxed)",
                )),
            }
        }
        "pct" => {
            let number = (1..=3).contains(&value.len()) && value.bytes().all(|b| b.is_ascii_digit());
            match value.parse::<u8>().ok().filter(|n| number && *n <= 100) {
                Some(pct) => {
                    record.pct = pct;
                    record.pct_given = true;
                    if pct == 100 {
                        diagnostics.push(removed(name, value, "the default"));
                    }
                }
                None => diagnostics.push(invalid(
                    name,
                    value,
                    "a whole number from 0 to 100",
                    "100",
                )),
            }
        }
        "fo" => {
            let options: Vec<String> = value.split(':').map(|o| trim_wsp(o).to_owned()).collect();
            if options
                .iter()
                .all(|o| matches!(o.as_str(), "0" | "1" | "d" | "s" | "D" | "S"))
            {
                keyword(value, diagnostics);
                record.fo = options.iter().map(|o| o.to_ascii_lowercase()).collect();
            } else {
                diagnostics.push(invalid(
                    name,
                    value,
                    "0, 1, d or s, separated by ':'",
                    "fo=0",
                ));
            }
        }
        "rua" | "ruf" => {
            let uris = report_uris(name, value, diagnostics);
            if name == "rua" {
                record.rua = uris;
            } else {
                record.ruf = uris;
            }
        }
        "ri" => match value.parse::<u32>().ok().filter(|_| value.bytes().all(|b| b.is_ascii_digit())) {
            Some(ri) => {
                record.ri = Some(ri);
                diagnostics.push(removed(name, value, "a report interval"));
            }
            None => diagnostics.push(invalid(name, value, "a number of seconds", "86400")),
        },
        "rf" => {
            let formats: Vec<&str> = value.split(':').map(trim_wsp).collect();
            if formats.iter().all(|f| f.eq_ignore_ascii_case("afrf")) {
                record.rf = Some(value.to_owned());
                diagnostics.push(removed(name, value, "a failure report format"));
            } else {
                diagnostics.push(invalid(name, value, "afrf", "afrf"));
            }
        }
        "psd" => match value.to_ascii_lowercase().as_str() {
            "y" => record.psd = Psd::Yes,
            "n" => record.psd = Psd::No,
            "u" => record.psd = Psd::Unknown,
            _ => diagnostics.push(invalid(name, value, "y, n or u", "u")),
        },
        "t" => match value.to_ascii_lowercase().as_str() {
            "y" => record.testing = true,
            "n" => record.testing = false,
            _ => diagnostics.push(invalid(name, value, "y or n", "n")),
        },
        _ => diagnostics.push(diag(
            Severity::Info,
            "dmarc-tag-unknown",
            "RFC 7489 §6.3, RFC 9989",
            format!("the tag {name}= is not a DMARC tag; receivers ignore it"),
            "remove it, or correct its name if it is a typo (p, sp, np, adkim, aspf, fo, rua, ruf, psd, t)",
        )),
    }
}

/// Reads the URIs of one `rua`/`ruf` value, reporting each invalid one.
fn report_uris(name: &str, value: &str, diagnostics: &mut Vec<Diagnostic>) -> Vec<ReportUri> {
    let mut uris = Vec::new();
    for (i, item) in value.split(',').enumerate() {
        let item = trim_wsp(item);
        if i >= MAX_URIS {
            diagnostics.push(diag(
                Severity::Warning,
                "dmarc-uri-too-many",
                RULE_TAGS,
                format!("{name}= lists more than {MAX_URIS} URIs; the rest are not checked"),
                "list one or two report addresses",
            ));
            break;
        }
        match report_uri(item) {
            Ok((uri, size)) => {
                if let Some(size) = size {
                    diagnostics.push(diag(
                        Severity::Info,
                        "dmarc-uri-size-limit",
                        RULE_BIS,
                        format!(
                            "{name} URI {} carries a size limit !{size}; RFC 9989 tells receivers to ignore it",
                            quote(item)
                        ),
                        "drop the !size suffix",
                    ));
                }
                if uri.destination.is_none() {
                    diagnostics.push(diag(
                        Severity::Warning,
                        "dmarc-uri-scheme",
                        "RFC 7489 §6.2, RFC 9989",
                        format!(
                            "{name} URI {} is not a mailto: URI; receivers send DMARC reports by mail only",
                            quote(item)
                        ),
                        format!("use {name}=mailto:<address>"),
                    ));
                }
                uris.push(uri);
            }
            Err(reason) => diagnostics.push(diag(
                Severity::Error,
                "dmarc-uri-invalid",
                "RFC 7489 §6.3",
                format!(
                    "{name} URI {} is invalid: {reason}; receivers skip it",
                    quote(item)
                ),
                format!("write {name}=mailto:reports@example.com (several separated by commas)"),
            )),
        }
    }
    uris
}

/// One reporting URI: the URI without its `!size` suffix and that suffix, or why it is invalid.
pub fn report_uri(item: &str) -> Result<(ReportUri, Option<String>), &'static str> {
    if item.is_empty() {
        return Err("it is empty");
    }
    if item
        .bytes()
        .any(|b| b.is_ascii_whitespace() || !b.is_ascii_graphic())
    {
        return Err("it contains whitespace or characters outside printable ASCII");
    }
    let (uri, size) = match item.rsplit_once('!') {
        Some((uri, size)) => {
            let digits = size.trim_end_matches(['k', 'm', 'g', 't', 'K', 'M', 'G', 'T']);
            if digits.is_empty()
                || !digits.bytes().all(|b| b.is_ascii_digit())
                || size.len() > digits.len() + 1
            {
                return Err("the part after '!' is not a size such as 10m");
            }
            (uri, Some(size.to_owned()))
        }
        None => (item, None),
    };
    let Some((scheme, rest)) = uri.split_once(':') else {
        return Err("it has no scheme (write mailto:)");
    };
    let scheme_ok = scheme
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic())
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    if !scheme_ok {
        return Err("the scheme is not valid");
    }
    if !scheme.eq_ignore_ascii_case("mailto") {
        if rest.is_empty() {
            return Err("nothing follows the scheme");
        }
        return Ok((
            ReportUri {
                uri: uri.to_owned(),
                destination: None,
            },
            size,
        ));
    }
    let address = rest.split('?').next().unwrap_or("");
    let Some((local, domain)) = address.rsplit_once('@') else {
        return Err("the mailto: address has no '@'");
    };
    if local.is_empty() {
        return Err("the mailto: address has no local part");
    }
    let destination =
        normalize_domain(domain).map_err(|_| "the mailto: address has no valid domain")?;
    if !destination.contains('.') {
        return Err("the mailto: address has no valid domain");
    }
    Ok((
        ReportUri {
            uri: uri.to_owned(),
            destination: Some(destination),
        },
        size,
    ))
}

#[cfg(test)]
#[path = "record_tests.rs"]
mod tests;
