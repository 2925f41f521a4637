//! Policy `mx` patterns and MX host matching (RFC 8461 §3.2, §4.1).

use std::fmt;
use std::str::FromStr;

use thiserror::Error;

/// An `mx` pattern: a domain name, optionally prefixed by `*.` which stands for exactly one
/// left-most label. Stored as lowercase A-labels without a trailing dot.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct MxPattern {
    wildcard: bool,
    domain: String,
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

    /// Whether the pattern's domain is made only of numeric labels, like an IPv4 address
    /// (C65): valid syntax, but it never matches a real MX name.
    pub fn looks_like_ip(&self) -> bool {
        todo!("helper")
    }

    /// RFC 8461 §4.1: does an MX host name (as in the MX RDATA, any case, trailing dot
    /// allowed, U-labels converted) match this pattern? `*.example.com` matches
    /// `mail.example.com` but neither `example.com` nor `a.b.example.com`.
    pub fn matches(&self, mx_host: &str) -> bool {
        let _ = mx_host;
        todo!("helper")
    }
}

impl FromStr for MxPattern {
    type Err = MxPatternError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let _ = s;
        todo!("helper")
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
