//! Policy domain and host name normalisation (RFC 8461 §3.2, §3.4, §4.1).

use thiserror::Error;

/// Why a name is not a usable domain name.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum DomainError {
    /// The name is empty (or only a dot).
    #[error("the domain name is empty")]
    Empty,
    /// IDNA conversion to A-labels failed.
    #[error("{0:?} cannot be converted to IDNA A-labels")]
    Idna(String),
    /// A label is empty, longer than 63 octets, or contains characters outside LDH.
    #[error("invalid label {label:?} in {name:?}")]
    Label {
        /// The whole name.
        name: String,
        /// The offending label.
        label: String,
    },
    /// The whole name is longer than 253 octets.
    #[error("the domain name is longer than 253 characters")]
    TooLong,
    /// An address literal such as `[192.0.2.1]` has no MTA-STS policy (8461 §3.4).
    #[error("{0:?} is an address literal, which has no MTA-STS policy")]
    AddressLiteral(String),
}

/// Normalises a domain: trims whitespace, strips one trailing dot, converts U-labels to
/// lowercase A-labels, and checks LDH syntax (letters, digits, hyphen; no leading or trailing
/// hyphen; labels 1–63 octets; total ≤ 253). `User@Example.COM.` style inputs are the caller's
/// job to split; this takes the part after `@`.
pub fn normalize_domain(input: &str) -> Result<String, DomainError> {
    let _ = input;
    todo!("helper: implement with the idna crate")
}
