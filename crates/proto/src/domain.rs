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
    let trimmed = input.trim();
    if trimmed.starts_with('[') {
        return Err(DomainError::AddressLiteral(trimmed.to_owned()));
    }
    let name = trimmed.strip_suffix('.').unwrap_or(trimmed);
    if name.is_empty() {
        return Err(DomainError::Empty);
    }
    let ascii = if name.is_ascii() {
        name.to_ascii_lowercase()
    } else {
        // UTS 46 processing maps U-labels to lowercase A-labels; the LDH check below still
        // applies to its output (the empty deny list lets us report our own, precise error).
        idna::domain_to_ascii_cow(name.as_bytes(), idna::AsciiDenyList::EMPTY)
            .map_err(|_| DomainError::Idna(name.to_owned()))?
            .into_owned()
    };
    check_ldh_name(&ascii).map_err(|label| DomainError::Label {
        name: ascii.clone(),
        label: label.to_owned(),
    })?;
    if ascii.len() > MAX_NAME_LEN {
        return Err(DomainError::TooLong);
    }
    Ok(ascii)
}

/// The longest domain name in presentation form without the trailing dot (RFC 1035 §2.3.4).
pub const MAX_NAME_LEN: usize = 253;
/// The longest label (RFC 1035 §2.3.4).
pub const MAX_LABEL_LEN: usize = 63;

/// Why a label is not an LDH label (RFC 5321 §4.1.2 `sub-domain`, RFC 1035 §2.3.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum LabelProblem {
    /// Two dots in a row, or a leading dot.
    Empty,
    /// More than 63 octets.
    TooLong,
    /// An underscore (service labels like `_mta-sts` are not host names).
    Underscore,
    /// A character other than a letter, digit or hyphen.
    BadChar,
    /// A hyphen at the start or end.
    Hyphen,
}

impl LabelProblem {
    /// A short human explanation.
    pub(crate) fn reason(self) -> &'static str {
        match self {
            LabelProblem::Empty => "empty label (two dots in a row or a leading dot)",
            LabelProblem::TooLong => "a label is longer than 63 characters",
            LabelProblem::Underscore => "underscores are not allowed in host names",
            LabelProblem::BadChar => "only letters, digits, hyphens and dots are allowed",
            LabelProblem::Hyphen => "a label cannot start or end with a hyphen",
        }
    }
}

/// Checks one ASCII label against the LDH rule.
pub(crate) fn check_ldh_label(label: &str) -> Result<(), LabelProblem> {
    let bytes = label.as_bytes();
    let (Some(first), Some(last)) = (bytes.first(), bytes.last()) else {
        return Err(LabelProblem::Empty);
    };
    if bytes.len() > MAX_LABEL_LEN {
        return Err(LabelProblem::TooLong);
    }
    if bytes.contains(&b'_') {
        return Err(LabelProblem::Underscore);
    }
    if !bytes
        .iter()
        .all(|b| b.is_ascii_alphanumeric() || *b == b'-')
    {
        return Err(LabelProblem::BadChar);
    }
    if *first == b'-' || *last == b'-' {
        return Err(LabelProblem::Hyphen);
    }
    Ok(())
}

/// Checks every label of a dot-separated ASCII name; returns the first bad label.
fn check_ldh_name(name: &str) -> Result<(), &str> {
    for label in name.split('.') {
        if check_ldh_label(label).is_err() {
            return Err(label);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn c1_case_and_trailing_dot() {
        assert_eq!(
            normalize_domain("Example.COM.").as_deref(),
            Ok("example.com")
        );
    }

    #[test]
    fn c2_u_labels_become_a_labels() {
        assert_eq!(
            normalize_domain("münchen.example").as_deref(),
            Ok("xn--mnchen-3ya.example")
        );
        assert_eq!(
            normalize_domain("MÜNCHEN.Example.").as_deref(),
            Ok("xn--mnchen-3ya.example")
        );
    }

    #[test]
    fn c5_address_literal_has_no_policy() {
        assert!(matches!(
            normalize_domain("[192.0.2.1]"),
            Err(DomainError::AddressLiteral(_))
        ));
        assert!(matches!(
            normalize_domain("[IPv6:2001:db8::1]"),
            Err(DomainError::AddressLiteral(_))
        ));
    }

    #[test]
    fn empty_and_dot_only() {
        assert_eq!(normalize_domain(""), Err(DomainError::Empty));
        assert_eq!(normalize_domain("."), Err(DomainError::Empty));
        assert_eq!(normalize_domain("  "), Err(DomainError::Empty));
    }

    #[test]
    fn only_one_trailing_dot_is_stripped() {
        assert!(matches!(
            normalize_domain("example.com.."),
            Err(DomainError::Label { .. })
        ));
    }

    #[test]
    fn ldh_violations() {
        for bad in [
            "_mta-sts.example.com",
            "-a.example",
            "a-.example",
            "a b.example",
            "a..b",
            ".a",
        ] {
            assert!(
                matches!(normalize_domain(bad), Err(DomainError::Label { .. })),
                "{bad}"
            );
        }
        let long_label = format!("{}.example", "a".repeat(64));
        assert!(matches!(
            normalize_domain(&long_label),
            Err(DomainError::Label { .. })
        ));
        let ok_label = format!("{}.example", "a".repeat(63));
        assert!(normalize_domain(&ok_label).is_ok());
    }

    #[test]
    fn too_long() {
        let name = [
            "a".repeat(63),
            "b".repeat(63),
            "c".repeat(63),
            "d".repeat(63),
        ]
        .join(".");
        assert_eq!(normalize_domain(&name), Err(DomainError::TooLong));
        let name = [
            "a".repeat(63),
            "b".repeat(63),
            "c".repeat(63),
            "d".repeat(61),
        ]
        .join(".");
        assert_eq!(name.len(), 253);
        assert!(normalize_domain(&name).is_ok());
    }

    #[test]
    fn whitespace_is_trimmed() {
        assert_eq!(
            normalize_domain(" example.com\n").as_deref(),
            Ok("example.com")
        );
    }

    proptest::proptest! {
        #[test]
        fn never_panics(s in "\\PC*") {
            let _ = normalize_domain(&s);
        }

        #[test]
        fn idempotent(s in "[a-zA-Z0-9.-]{0,80}") {
            if let Ok(once) = normalize_domain(&s) {
                proptest::prop_assert_eq!(normalize_domain(&once), Ok(once.clone()));
            }
        }
    }
}
