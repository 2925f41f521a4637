//! The SPF record grammar of RFC 7208 §4.5, §5, §6, §7.1 and §12: the version, every
//! mechanism with its qualifier, domain-spec and CIDR lengths, the modifiers, and the macro
//! syntax, checked strictly so that what a receiver would call `permerror` is an error here.

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};

use serde::Serialize;
use thiserror::Error;

use super::macros::{self, MacroString};

/// A directive's qualifier (§4.6.2); `+` when none is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Qualifier {
    /// `+`: pass.
    Pass,
    /// `-`: fail.
    Fail,
    /// `~`: softfail.
    SoftFail,
    /// `?`: neutral.
    Neutral,
}

impl Qualifier {
    /// The RFC 7208 result name a match yields: `pass`, `fail`, `softfail`, `neutral`.
    pub fn result(self) -> &'static str {
        match self {
            Qualifier::Pass => "pass",
            Qualifier::Fail => "fail",
            Qualifier::SoftFail => "softfail",
            Qualifier::Neutral => "neutral",
        }
    }
}

/// One mechanism (§5) with its arguments.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Mechanism {
    /// `all`.
    All,
    /// `include:<domain-spec>`.
    Include(MacroString),
    /// `a[:<domain-spec>][/v4][//v6]`.
    A {
        /// The target; `None` means the current domain.
        domain: Option<MacroString>,
        /// IPv4 CIDR length.
        v4: Option<u8>,
        /// IPv6 CIDR length.
        v6: Option<u8>,
    },
    /// `mx[:<domain-spec>][/v4][//v6]`.
    Mx {
        /// The target; `None` means the current domain.
        domain: Option<MacroString>,
        /// IPv4 CIDR length.
        v4: Option<u8>,
        /// IPv6 CIDR length.
        v6: Option<u8>,
    },
    /// `ptr[:<domain-spec>]`.
    Ptr(Option<MacroString>),
    /// `ip4:<network>[/len]`.
    Ip4(Ipv4Addr, Option<u8>),
    /// `ip6:<network>[/len]`.
    Ip6(Ipv6Addr, Option<u8>),
    /// `exists:<domain-spec>`.
    Exists(MacroString),
}

impl Mechanism {
    /// Whether evaluating it costs a DNS lookup counted against the limit of 10 (§4.6.4).
    pub fn counts_lookup(&self) -> bool {
        matches!(
            self,
            Mechanism::Include(_)
                | Mechanism::A { .. }
                | Mechanism::Mx { .. }
                | Mechanism::Ptr(_)
                | Mechanism::Exists(_)
        )
    }
}

/// One term of a record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Term {
    /// A directive: qualifier and mechanism.
    Directive(Qualifier, Mechanism),
    /// `redirect=<domain-spec>` (§6.1).
    Redirect(MacroString),
    /// `exp=<domain-spec>` (§6.2).
    Exp(MacroString),
    /// Any other `name=macro-string` modifier: ignored by receivers (§6).
    Unknown {
        /// The modifier name.
        name: String,
        /// Its value.
        value: MacroString,
    },
}

/// A parsed `v=spf1` record: its terms in order, with their text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SpfRecord {
    /// Every term with the text it was parsed from.
    pub terms: Vec<(String, Term)>,
}

impl SpfRecord {
    /// The `redirect=` target, if any.
    pub fn redirect(&self) -> Option<&MacroString> {
        self.terms.iter().find_map(|(_, t)| match t {
            Term::Redirect(d) => Some(d),
            _ => None,
        })
    }

    /// Whether the record has an `all` mechanism anywhere (which makes `redirect` ignored, §6.1).
    pub fn has_all(&self) -> bool {
        self.terms
            .iter()
            .any(|(_, t)| matches!(t, Term::Directive(_, Mechanism::All)))
    }
}

/// Why a record that begins with `v=spf1` does not parse: a receiver's `permerror` (§4.6).
#[derive(Clone, Debug, Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum SpfSyntaxError {
    /// A byte outside printable US-ASCII and space.
    #[error("the record contains a character outside printable US-ASCII at offset {0}")]
    NotAscii(usize),
    /// A term that is neither a known mechanism nor a `name=value` modifier.
    #[error("unknown mechanism {0:?}")]
    UnknownMechanism(String),
    /// A mechanism with a bad or missing argument.
    #[error("invalid term {term:?}: {reason}")]
    InvalidTerm {
        /// The term as written.
        term: String,
        /// What is wrong.
        reason: String,
    },
    /// `redirect` or `exp` more than once (§6).
    #[error("the {0} modifier appears more than once")]
    DuplicateModifier(&'static str),
}

/// The version literal that starts every SPF record (§4.5).
pub const VERSION: &str = "v=spf1";

/// Whether a TXT record is an SPF record candidate: it begins with `v=spf1` followed by a space
/// or the end (§4.5). Case does not matter (ABNF literals are case-insensitive).
pub fn is_spf(text: &[u8]) -> bool {
    text.len() >= VERSION.len()
        && text[..VERSION.len()].eq_ignore_ascii_case(VERSION.as_bytes())
        && matches!(text.get(VERSION.len()), None | Some(b' '))
}

impl SpfRecord {
    /// Parses a record that [`is_spf`] accepted. Terms are separated by one or more spaces.
    pub fn parse(text: &str) -> Result<SpfRecord, SpfSyntaxError> {
        if let Some(offset) = text.bytes().position(|b| !(0x20..0x7f).contains(&b)) {
            return Err(SpfSyntaxError::NotAscii(offset));
        }
        let rest = text.get(VERSION.len()..).unwrap_or("");
        let mut terms = Vec::new();
        let (mut redirect, mut exp) = (false, false);
        for word in rest.split(' ').filter(|w| !w.is_empty()) {
            let term = parse_term(word)?;
            match &term {
                Term::Redirect(_) if redirect => {
                    return Err(SpfSyntaxError::DuplicateModifier("redirect"));
                }
                Term::Redirect(_) => redirect = true,
                Term::Exp(_) if exp => return Err(SpfSyntaxError::DuplicateModifier("exp")),
                Term::Exp(_) => exp = true,
                _ => {}
            }
            terms.push((word.to_owned(), term));
        }
        Ok(SpfRecord { terms })
    }
}

fn invalid(term: &str, reason: impl Into<String>) -> SpfSyntaxError {
    SpfSyntaxError::InvalidTerm {
        term: term.to_owned(),
        reason: reason.into(),
    }
}

fn parse_term(word: &str) -> Result<Term, SpfSyntaxError> {
    // A modifier is `name=...` where name is ALPHA *(ALPHA / DIGIT / "-" / "_" / "."); a
    // mechanism never contains '=' before its first ':' or '/'.
    let name_end = word.find(['=', ':', '/']).unwrap_or(word.len());
    if word[name_end..].starts_with('=') {
        let name = &word[..name_end];
        let value = &word[name_end + 1..];
        let valid_name = name.starts_with(|c: char| c.is_ascii_alphabetic())
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
        if !valid_name {
            return Err(invalid(word, "a modifier name starts with a letter"));
        }
        return match name.to_ascii_lowercase().as_str() {
            "redirect" => Ok(Term::Redirect(domain_spec(word, value)?)),
            "exp" => Ok(Term::Exp(domain_spec(word, value)?)),
            _ => Ok(Term::Unknown {
                name: name.to_owned(),
                value: MacroString::parse(value, false).map_err(|e| invalid(word, e))?,
            }),
        };
    }
    let (qualifier, body) = match word.as_bytes()[0] {
        b'+' => (Qualifier::Pass, &word[1..]),
        b'-' => (Qualifier::Fail, &word[1..]),
        b'~' => (Qualifier::SoftFail, &word[1..]),
        b'?' => (Qualifier::Neutral, &word[1..]),
        _ => (Qualifier::Pass, word),
    };
    let name_end = body.find([':', '/']).unwrap_or(body.len());
    let (name, args) = body.split_at(name_end);
    let arg = args.strip_prefix(':');
    let mechanism = match name.to_ascii_lowercase().as_str() {
        "all" => {
            if !args.is_empty() {
                return Err(invalid(word, "all takes no argument"));
            }
            Mechanism::All
        }
        "include" => Mechanism::Include(domain_spec(word, required(word, arg)?)?),
        "exists" => Mechanism::Exists(domain_spec(word, required(word, arg)?)?),
        "ptr" => Mechanism::Ptr(match arg {
            Some(d) => Some(domain_spec(word, d)?),
            None if args.is_empty() => None,
            None => return Err(invalid(word, "ptr takes no CIDR length")),
        }),
        "a" | "mx" => {
            let (domain, cidr) = match arg {
                Some(a) => {
                    let split = a.find('/').unwrap_or(a.len());
                    (Some(domain_spec(word, &a[..split])?), &a[split..])
                }
                None => (None, args),
            };
            let (v4, v6) = dual_cidr(word, cidr)?;
            if name.eq_ignore_ascii_case("a") {
                Mechanism::A { domain, v4, v6 }
            } else {
                Mechanism::Mx { domain, v4, v6 }
            }
        }
        "ip4" => {
            let arg = required(word, arg)?;
            let (net, len) = split_cidr(word, arg, 32)?;
            let ip = net
                .parse::<Ipv4Addr>()
                .map_err(|_| invalid(word, format!("{net:?} is not a dotted-quad IPv4 address")))?;
            Mechanism::Ip4(ip, len)
        }
        "ip6" => {
            let arg = required(word, arg)?;
            let (net, len) = split_cidr(word, arg, 128)?;
            let ip = net
                .parse::<Ipv6Addr>()
                .map_err(|_| invalid(word, format!("{net:?} is not an IPv6 address")))?;
            Mechanism::Ip6(ip, len)
        }
        _ => return Err(SpfSyntaxError::UnknownMechanism(word.to_owned())),
    };
    Ok(Term::Directive(qualifier, mechanism))
}

fn required<'a>(word: &str, arg: Option<&'a str>) -> Result<&'a str, SpfSyntaxError> {
    arg.ok_or_else(|| invalid(word, "the mechanism needs \":\" and a value"))
}

fn domain_spec(word: &str, text: &str) -> Result<MacroString, SpfSyntaxError> {
    macros::domain_spec(text).map_err(|e| invalid(word, e))
}

/// `/len` with `len` in 0..=max, written without leading zeros (§12 `ip4-cidr-length`).
fn cidr_len(word: &str, digits: &str, max: u8) -> Result<u8, SpfSyntaxError> {
    let ok = !digits.is_empty()
        && digits.len() <= 3
        && digits.bytes().all(|b| b.is_ascii_digit())
        && (digits == "0" || !digits.starts_with('0'));
    match digits.parse::<u8>() {
        Ok(n) if ok && n <= max => Ok(n),
        _ => Err(invalid(
            word,
            format!("CIDR length /{digits} is not a number from 0 to {max}"),
        )),
    }
}

fn split_cidr<'a>(
    word: &str,
    arg: &'a str,
    max: u8,
) -> Result<(&'a str, Option<u8>), SpfSyntaxError> {
    match arg.split_once('/') {
        Some((net, len)) => Ok((net, Some(cidr_len(word, len, max)?))),
        None => Ok((arg, None)),
    }
}

/// `[/v4][//v6]` after `a` or `mx`.
fn dual_cidr(word: &str, text: &str) -> Result<(Option<u8>, Option<u8>), SpfSyntaxError> {
    if text.is_empty() {
        return Ok((None, None));
    }
    if let Some(v6) = text.strip_prefix("//") {
        return Ok((None, Some(cidr_len(word, v6, 128)?)));
    }
    let Some(rest) = text.strip_prefix('/') else {
        return Err(invalid(word, "unexpected text after the mechanism"));
    };
    match rest.split_once("//") {
        Some((v4, v6)) => Ok((
            Some(cidr_len(word, v4, 32)?),
            Some(cidr_len(word, v6, 128)?),
        )),
        None => Ok((Some(cidr_len(word, rest, 32)?), None)),
    }
}

impl fmt::Display for Qualifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.result())
    }
}
