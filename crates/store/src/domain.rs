//! Domain names as database keys, one rule for every database of the crate: ASCII (A-labels),
//! at most [`MAX_DOMAIN_BYTES`] bytes, lowercased, one trailing dot removed.

use thiserror::Error;

use crate::MAX_DOMAIN_BYTES;

/// Why a domain is not a valid key; each database wraps it in its own error's `Invalid`.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum DomainKeyError {
    /// Nothing but (at most) the root dot.
    #[error("empty domain")]
    Empty,
    /// Longer than [`MAX_DOMAIN_BYTES`] without the trailing dot.
    #[error("domain longer than {MAX_DOMAIN_BYTES} bytes")]
    TooLong,
    /// A character outside letters, digits, `-`, `_` and `.` (U-labels must be converted first).
    #[error("domain {0:?} is not an ASCII host name (use A-labels)")]
    NotAscii(String),
}

/// The key under which `domain` is stored: lowercase, one trailing dot removed, checked.
#[cfg_attr(
    not(any(feature = "policy-cache", feature = "hosted")),
    allow(dead_code)
)]
pub(crate) fn normalize(domain: &str) -> Result<String, DomainKeyError> {
    let trimmed = domain.strip_suffix('.').unwrap_or(domain);
    if trimmed.is_empty() {
        return Err(DomainKeyError::Empty);
    }
    if trimmed.len() > MAX_DOMAIN_BYTES {
        return Err(DomainKeyError::TooLong);
    }
    if !trimmed
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || b == b'_')
    {
        return Err(DomainKeyError::NotAscii(trimmed.escape_debug().to_string()));
    }
    Ok(trimmed.to_ascii_lowercase())
}
