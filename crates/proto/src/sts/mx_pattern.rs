//! Policy `mx` patterns and MX host matching (RFC 8461 §3.2, §4.1).

use std::fmt;
use std::str::FromStr;

use thiserror::Error;

use crate::domain::{MAX_NAME_LEN, check_ldh_label, normalize_domain};

/// An `mx` pattern: a domain name, optionally prefixed by `*.` which stands for exactly one
/// left-most label. Stored as lowercase A-labels without a trailing dot; equality, hashing,
/// matching and `Display` use that form, while [`MxPattern::published`] keeps the letters as
/// the policy wrote them (what the checker shows).
#[derive(Clone, Debug)]
pub struct MxPattern {
    wildcard: bool,
    domain: String,
    /// The value as written when its letters differ from the lowercase form; `None` keeps the
    /// common all-lowercase pattern at one allocation (the `mtasts resolver` daemon holds many).
    published: Option<Box<str>>,
}

impl PartialEq for MxPattern {
    /// Names are case-insensitive (RFC 8461 §4.1), so `MX.Example.com` equals `mx.example.com`.
    fn eq(&self, other: &Self) -> bool {
        self.wildcard == other.wildcard && self.domain == other.domain
    }
}

impl Eq for MxPattern {}

impl std::hash::Hash for MxPattern {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.wildcard.hash(state);
        self.domain.hash(state);
    }
}

/// Why an `mx` value is not a valid pattern (C64).
#[derive(Clone, Debug, Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum MxPatternError {
    /// Nothing after `mx:`.
    #[error("the mx value is empty")]
    Empty,
    /// A wildcard anywhere but as the whole left-most label, or `*` / `*.` alone.
    #[error("{0:?}: a wildcard must be the whole left-most label, as in *.example.com")]
    Wildcard(String),
    /// A trailing dot (`mail.example.com.`).
    #[error("{0:?}: remove the trailing dot")]
    TrailingDot(String),
    /// Non-ASCII: IDN patterns must be written as A-labels.
    #[error("{0:?}: internationalised names must be written as A-labels (xn--…)")]
    NotALabel(String),
    /// Not a host name: bad label, port, URL, underscore, over-long label.
    #[error("{value:?} is not a valid host name: {reason}")]
    Syntax {
        /// The value found.
        value: String,
        /// What is wrong.
        reason: &'static str,
    },
}

impl MxPattern {
    /// Whether this pattern starts with `*.`.
    pub fn is_wildcard(&self) -> bool {
        self.wildcard
    }

    /// The domain part (after `*.` for wildcards), lowercase A-labels.
    pub fn domain(&self) -> &str {
        &self.domain
    }

    /// The pattern as the policy wrote it (letters in their published case); the `Display`
    /// form is lowercase.
    pub fn published(&self) -> std::borrow::Cow<'_, str> {
        match &self.published {
            Some(text) => std::borrow::Cow::Borrowed(text),
            None => std::borrow::Cow::Owned(self.to_string()),
        }
    }

    /// Whether the pattern's domain is made only of numeric labels, like an IPv4 address
    /// (C65): valid syntax, but it never matches a real MX name.
    pub fn looks_like_ip(&self) -> bool {
        self.domain
            .split('.')
            .all(|label| !label.is_empty() && label.bytes().all(|b| b.is_ascii_digit()))
    }

    /// Whether this is a wildcard over a single label, such as `*.com`: legal, but it accepts
    /// any host under a public suffix (8461 §10.4, C66).
    pub fn is_broad_wildcard(&self) -> bool {
        self.wildcard && !self.domain.contains('.')
    }

    /// RFC 8461 §4.1: does an MX host name (as in the MX RDATA, any case, trailing dot
    /// allowed, U-labels converted) match this pattern? `*.example.com` matches
    /// `mail.example.com` but neither `example.com` nor `a.b.example.com`.
    pub fn matches(&self, mx_host: &str) -> bool {
        let Ok(host) = normalize_domain(mx_host) else {
            return false;
        };
        if !self.wildcard {
            return host == self.domain;
        }
        // `*.` stands for exactly one label: split the host at its first dot and compare
        // the remainder exactly (anchored at both ends, C73, C74).
        match host.split_once('.') {
            Some((first, rest)) => !first.is_empty() && rest == self.domain,
            None => false,
        }
    }
}

impl FromStr for MxPattern {
    type Err = MxPatternError;

    /// Parses an `mx` value per 8461 §3.2: `["*."] Domain` (RFC 5321 `Domain`), A-labels only.
    /// Letters are lowercased; no surrounding whitespace is accepted (the policy parser strips
    /// the whitespace the grammar allows).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let syntax = |reason| MxPatternError::Syntax {
            value: s.to_owned(),
            reason,
        };
        if s.is_empty() {
            return Err(MxPatternError::Empty);
        }
        if !s.is_ascii() {
            return Err(MxPatternError::NotALabel(s.to_owned()));
        }
        if s.contains("://") || s.contains('/') {
            return Err(syntax("a URL; write only the host name"));
        }
        if s.contains(':') {
            return Err(syntax("a port or scheme; write only the host name"));
        }
        if s.contains('@') {
            return Err(syntax("an e-mail address; write only the host name"));
        }
        if s.bytes().any(|b| b == b' ' || b == b'\t') {
            return Err(syntax("whitespace inside the value"));
        }
        let (wildcard, domain) = match s.strip_prefix("*.") {
            Some(rest) => (true, rest),
            None => (false, s),
        };
        if domain.contains('*') || domain.is_empty() {
            return Err(MxPatternError::Wildcard(s.to_owned()));
        }
        if domain.ends_with('.') {
            return Err(MxPatternError::TrailingDot(s.to_owned()));
        }
        for label in domain.split('.') {
            check_ldh_label(label).map_err(|problem| syntax(problem.reason()))?;
        }
        if domain.len() > MAX_NAME_LEN {
            return Err(syntax("the name is longer than 253 characters"));
        }
        let lowercase = domain.to_ascii_lowercase();
        let published = (lowercase != domain).then(|| Box::from(s));
        Ok(MxPattern {
            wildcard,
            domain: lowercase,
            published,
        })
    }
}

impl fmt::Display for MxPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.wildcard {
            f.write_str("*.")?;
        }
        f.write_str(&self.domain)
    }
}

#[cfg(test)]
#[path = "mx_pattern_tests.rs"]
mod tests;
