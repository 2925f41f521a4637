//! Postfix TLS policy table answers (`postconf(5)` `smtp_tls_policy_maps`, interop §1.5–§1.7):
//! security levels, the MTA-STS answer, and a reader for answers.
//!
//! ```
//! use mtasts_proto::postfix::{AnswerStyle, parse_reply_data, sts_answer};
//! use mtasts_proto::sts::policy::Policy;
//! let body = "version: STSv1\nmode: enforce\nmx: *.mx.example.com\nmax_age: 86400\n";
//! let policy = Policy::parse(body).unwrap();
//! let answer = sts_answer("example.com", &policy, &[], &AnswerStyle::POSTFIX_3_4).unwrap();
//! assert_eq!(answer, "secure match=.mx.example.com servername=hostname");
//! assert_eq!(parse_reply_data(&answer).unwrap().level, "secure");
//! ```

use std::fmt;
use std::str::FromStr;

use thiserror::Error;

use crate::domain::normalize_domain;
use crate::socketmap::MAX_REPLY_BYTES;
use crate::sts::mx_pattern::MxPattern;
use crate::sts::policy::Policy;

pub mod policy;
mod reply_data;

pub use reply_data::{ReplyData, ReplyDataError, parse_reply_data};

/// What an answer may contain, chosen per socketmap name (profile), because older Postfix
/// versions reject attributes they do not know with a 4.7.5 deferral (interop §1.6).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct AnswerStyle {
    /// Emit `servername=hostname` (Postfix ≥ 3.4).
    pub servername: bool,
    /// Emit the STS attributes `policy_type`, `policy_domain`, `mx_host_pattern`,
    /// `policy_string` (Postfix ≥ 3.10; they enable TLSRPT and, from 3.10.5,
    /// `smtp_tls_enforce_sts_mx_patterns`, interop §1.7).
    pub sts_attributes: bool,
}

impl AnswerStyle {
    /// Postfix before 3.4: the level and `match=` only.
    pub const POSTFIX_3_3: AnswerStyle = AnswerStyle {
        servername: false,
        sts_attributes: false,
    };
    /// Postfix 3.4 to 3.9: adds `servername=hostname`.
    pub const POSTFIX_3_4: AnswerStyle = AnswerStyle {
        servername: true,
        sts_attributes: false,
    };
    /// Postfix 3.10 and later: adds the STS attributes.
    pub const POSTFIX_3_10: AnswerStyle = AnswerStyle {
        servername: true,
        sts_attributes: true,
    };
}

/// A TLS security level, as in `smtp_tls_security_level` and policy table answers
/// (`postconf(5)`, interop §1.5). `fingerprint` is not offered: it needs digests we never
/// configure.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum TlsLevel {
    /// No TLS.
    None,
    /// Opportunistic TLS with plaintext fallback.
    May,
    /// Mandatory TLS without authentication.
    Encrypt,
    /// PKIX and name check; `matches` empty means Postfix's default strategy (`hostname`).
    Verify {
        /// Names or strategies for `match=`, joined by `:`.
        matches: Vec<String>,
    },
    /// PKIX and name check without trusting MX DNS; `matches` empty means Postfix's default
    /// strategy (`nexthop:dot-nexthop`).
    Secure {
        /// Names or strategies for `match=`, joined by `:`.
        matches: Vec<String>,
    },
    /// Opportunistic DANE (RFC 7672).
    Dane,
    /// Mandatory DANE.
    DaneOnly,
}

impl TlsLevel {
    /// The level keyword: `none`, `may`, `encrypt`, `verify`, `secure`, `dane`, `dane-only`.
    pub fn as_str(&self) -> &'static str {
        match self {
            TlsLevel::None => "none",
            TlsLevel::May => "may",
            TlsLevel::Encrypt => "encrypt",
            TlsLevel::Verify { .. } => "verify",
            TlsLevel::Secure { .. } => "secure",
            TlsLevel::Dane => "dane",
            TlsLevel::DaneOnly => "dane-only",
        }
    }
}

/// Why a text is not a TLS level we support.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum TlsLevelError {
    /// Not one of `none`, `may`, `encrypt`, `verify`, `secure`, `dane`, `dane-only`.
    #[error("unknown TLS level {0:?}: use none, may, encrypt, verify, secure, dane or dane-only")]
    Unknown(String),
}

impl FromStr for TlsLevel {
    type Err = TlsLevelError;

    /// The level keyword, lowercase as Postfix writes it; `verify` and `secure` get an empty
    /// match list (Postfix's default strategy).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "none" => TlsLevel::None,
            "may" => TlsLevel::May,
            "encrypt" => TlsLevel::Encrypt,
            "verify" => TlsLevel::Verify {
                matches: Vec::new(),
            },
            "secure" => TlsLevel::Secure {
                matches: Vec::new(),
            },
            "dane" => TlsLevel::Dane,
            "dane-only" => TlsLevel::DaneOnly,
            other => return Err(TlsLevelError::Unknown(other.to_owned())),
        })
    }
}

impl fmt::Display for TlsLevel {
    /// The keyword only; [`render_level`] writes the full answer with `match=`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Whether `entry` can stand in a `match=` list: non-empty and free of the characters that
/// separate list items or attributes (`:`, `,`, whitespace, `{`, `}`, `=`), and printable
/// ASCII. Config loaders should reject other entries; [`render_level`] leaves them out.
pub fn is_valid_match_entry(entry: &str) -> bool {
    !entry.is_empty()
        && entry
            .bytes()
            .all(|b| b.is_ascii_graphic() && !matches!(b, b':' | b',' | b'{' | b'}' | b'='))
}

/// Renders a static level as policy table data: the keyword, then for `verify`/`secure` a
/// `match=` list of the valid entries (see [`is_valid_match_entry`]) and, when
/// `style.servername`, `servername=hostname`.
///
/// An empty `match=` is never written (postfix-tlspol #95): with no valid entry the attribute
/// is left out and Postfix applies its default strategy. `servername=hostname` is added to
/// `verify` always (its default match is the MX hostname) and to `secure` only with an explicit
/// match list (its default, `nexthop:dot-nexthop`, expects the certificate of the next-hop
/// domain, which SNI with the MX name might not select).
pub fn render_level(level: &TlsLevel, style: &AnswerStyle) -> String {
    let mut out = String::from(level.as_str());
    let (matches, verify) = match level {
        TlsLevel::Verify { matches } => (matches, true),
        TlsLevel::Secure { matches } => (matches, false),
        _ => return out,
    };
    let valid: Vec<&str> = matches
        .iter()
        .map(String::as_str)
        .filter(|m| is_valid_match_entry(m))
        .collect();
    if !valid.is_empty() {
        out.push_str(" match=");
        out.push_str(&valid.join(":"));
    }
    if style.servername && (verify || !valid.is_empty()) {
        out.push_str(" servername=hostname");
    }
    out
}

/// The MTA-STS answer for an enforced policy (interop §1.5–§1.7), or `None` when no usable
/// `mx` pattern remains.
///
/// `secure match=<p1>:<p2>…` with each `*.x` written `.x` (Postfix's `.x` matches any depth,
/// which over-accepts; the STS attributes below let Postfix ≥ 3.10.5 apply RFC 8461 §4.1
/// matching instead), then `servername=hostname` when `style.servername`, then, when
/// `style.sts_attributes`: `policy_type=sts policy_domain=<domain>`, one
/// `mx_host_pattern=<p>` per pattern (with `*.` kept), and one `{ policy_string = <line> }`
/// per policy line in original order.
///
/// * Patterns that look like IPv4 addresses (C65, [`MxPattern::looks_like_ip`]) never match an
///   MX name and are left out of both lists; repeated patterns are written once.
/// * When no pattern remains, `None`: `secure match=` with an empty list makes Postfix defer
///   every message (postfix-tlspol #95), so the caller decides (see [`render_sts`]).
/// * `policy_lines` are the body's lines (see [`policy_lines`]); lines that cannot be carried
///   inside `{ }` (containing `{`, `}`, CR, LF or another control character) and blank lines
///   are left out; surrounding whitespace is trimmed (Postfix trims it too).
/// * `domain` is normalised with [`normalize_domain`]; when that fails, no STS attribute is
///   written (a bad `policy_domain` would make Postfix defer).
/// * When the answer would not fit in a socketmap reply ([`MAX_REPLY_BYTES`]), the
///   `policy_string` attributes are all left out; they only feed TLSRPT.
pub fn sts_answer(
    domain: &str,
    policy: &Policy,
    policy_lines: &[String],
    style: &AnswerStyle,
) -> Option<String> {
    let patterns = usable_patterns(policy);
    if patterns.is_empty() {
        return None;
    }
    let match_list: Vec<String> = patterns.iter().map(|p| postfix_match(p)).collect();
    Some(render(
        &format!("secure match={}", match_list.join(":")),
        domain,
        &patterns,
        policy_lines,
        style,
    ))
}

/// Like [`sts_answer`], but always returns an answer. For a policy without a usable pattern
/// (every `mx` looks like an IP address, C65) it returns `secure match=nexthop` plus the
/// `servername` and STS attributes but no `mx_host_pattern`: still authenticated TLS (never a
/// downgrade to plaintext), the certificate must name the recipient domain itself, and the
/// §1.7 MX filter stays off because it would skip every MX. An empty `match=` is never
/// written.
pub fn render_sts(
    domain: &str,
    policy: &Policy,
    policy_lines: &[String],
    style: &AnswerStyle,
) -> String {
    sts_answer(domain, policy, policy_lines, style)
        .unwrap_or_else(|| render("secure match=nexthop", domain, &[], policy_lines, style))
}

/// Splits a policy body into the lines for `policy_string`: LF, CRLF or mixed terminators
/// (8461 §3.2, EID 6253), blank lines dropped, original order.
pub fn policy_lines(body: &str) -> Vec<String> {
    body.split('\n')
        .map(|line| line.strip_suffix('\r').unwrap_or(line))
        .filter(|line| !line.trim().is_empty())
        .map(str::to_owned)
        .collect()
}

/// The policy's patterns that can match an MX name, without repeats, in order.
fn usable_patterns(policy: &Policy) -> Vec<&MxPattern> {
    let mut out: Vec<&MxPattern> = Vec::new();
    for pattern in &policy.mx {
        if !pattern.looks_like_ip() && !out.contains(&pattern) {
            out.push(pattern);
        }
    }
    out
}

/// `*.x` → `.x`; literal names unchanged.
fn postfix_match(pattern: &MxPattern) -> String {
    if pattern.is_wildcard() {
        format!(".{}", pattern.domain())
    } else {
        pattern.domain().to_owned()
    }
}

/// Whether a policy line can be carried as `{ policy_string = <line> }`: not blank, no
/// braces (they would end or nest the group), no control characters (CR and LF above all).
fn carriable(line: &str) -> bool {
    !line.trim().is_empty() && !line.contains(['{', '}']) && !line.chars().any(char::is_control)
}

/// The level and match list, then the optional attributes.
fn render(
    head: &str,
    domain: &str,
    patterns: &[&MxPattern],
    policy_lines: &[String],
    style: &AnswerStyle,
) -> String {
    let mut out = head.to_owned();
    if style.servername {
        out.push_str(" servername=hostname");
    }
    if !style.sts_attributes {
        return out;
    }
    let Ok(domain) = normalize_domain(domain) else {
        return out;
    };
    out.push_str(" policy_type=sts policy_domain=");
    out.push_str(&domain);
    for pattern in patterns {
        out.push_str(" mx_host_pattern=");
        out.push_str(&pattern.to_string());
    }
    let mut strings = String::new();
    for line in policy_lines.iter().filter(|line| carriable(line)) {
        strings.push_str(" { policy_string = ");
        strings.push_str(line.trim());
        strings.push_str(" }");
    }
    // "OK " precedes the data in the reply payload.
    if out.len() + strings.len() + 3 <= MAX_REPLY_BYTES {
        out.push_str(&strings);
    }
    out
}

#[cfg(test)]
#[path = "postfix/tests.rs"]
mod tests;
