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

/// Whether `input` is an IP address in any spelling a resolver or URL parser accepts: IPv6
/// text, or one to four dot-separated numbers, each decimal, octal (leading `0`) or hex
/// (`0x`), as `inet_aton(3)` and the WHATWG URL host parser read them (`127.0.0.1`,
/// `0x7f.1`, `0177.0.0.1`, `2130706433`). Out-of-range numbers count too
/// (`999.999.999.999`): such a name is an address typed wrongly, never a domain.
pub fn is_ip_spelling(input: &str) -> bool {
    let name = input.trim();
    let name = name.strip_suffix('.').unwrap_or(name);
    if name.parse::<std::net::IpAddr>().is_ok() {
        return true;
    }
    let labels: Vec<&str> = name.split('.').collect();
    (1..=4).contains(&labels.len()) && labels.iter().all(|label| is_number_label(label))
}

/// The top-level label of `name` when it is a number (RFC 3696 §2: a top-level domain is
/// never all-numeric; the WHATWG URL parser reads a host ending in a number as IPv4).
pub fn numeric_top_label(name: &str) -> Option<&str> {
    let name = name.strip_suffix('.').unwrap_or(name);
    let last = name.rsplit('.').next()?;
    is_number_label(last).then_some(last)
}

/// The first `xn--` label of `name` (lowercase ASCII) that is not a valid A-label (RFC 5890
/// §2.3.2.1: it must decode as Punycode to a valid U-label and encode back to itself).
pub fn invalid_a_label(name: &str) -> Option<&str> {
    name.split('.')
        .filter(|label| label.starts_with("xn--"))
        .find(|label| {
            // UTS 46 processing decodes the Punycode, validates the U-label and encodes it
            // again; a label that does not come back unchanged was not a real A-label.
            idna::domain_to_ascii_cow(label.as_bytes(), idna::AsciiDenyList::EMPTY)
                .map_or(true, |ascii| ascii != *label)
        })
}

/// Whether `name` (lowercase A-labels, no trailing dot) is itself a public suffix in the
/// Public Suffix List compiled into the `psl` crate (ICANN and private sections: `com`,
/// `co.uk`, `github.io`, `*.ck`). Names under an unknown top-level label are not.
pub fn is_public_suffix(name: &str) -> bool {
    psl::suffix(name.as_bytes())
        .is_some_and(|suffix| suffix.is_known() && suffix.as_bytes() == name.as_bytes())
}

/// A label the WHATWG URL parser reads as a number: decimal digits, or `0x`/`0X` followed
/// by hex digits (possibly none). Octal is decimal digits with a leading zero.
fn is_number_label(label: &str) -> bool {
    if let Some(hex) = label
        .strip_prefix("0x")
        .or_else(|| label.strip_prefix("0X"))
    {
        return hex.bytes().all(|b| b.is_ascii_hexdigit());
    }
    !label.is_empty() && label.bytes().all(|b| b.is_ascii_digit())
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

    #[test]
    fn ip_spellings() {
        for ip in [
            "127.0.0.1",
            "999.999.999.999",
            "0x7f.1",
            "0X7F.0.0.1",
            "1.2.3",
            "0177.0.0.1",
            "2130706433",
            "127.0.0.1.",
            "::1",
            "2001:db8::1",
            "0x",
        ] {
            assert!(is_ip_spelling(ip), "{ip}");
        }
        for name in ["example.com", "0x7f.com", "1.2.3.4.5", "1e3.example", "a.1"] {
            assert!(!is_ip_spelling(name), "{name}");
        }
    }

    #[test]
    fn numeric_top_labels() {
        assert_eq!(numeric_top_label("a.123"), Some("123"));
        assert_eq!(numeric_top_label("a.0x1f"), Some("0x1f"));
        assert_eq!(numeric_top_label("1.2.3.4.5."), Some("5"));
        assert_eq!(numeric_top_label("123.example"), None);
        assert_eq!(numeric_top_label("a.1a"), None);
    }

    #[test]
    fn a_labels_must_round_trip() {
        for bad in [
            "xn--.example",
            "xn--zz.example",
            "xn--abc-.example",
            "xn--a.example",
            "www.xn--0.example",
            "xn--mnchen-3ya-.example",
        ] {
            assert!(invalid_a_label(bad).is_some(), "{bad}");
        }
        assert_eq!(invalid_a_label("a.xn--zz.example"), Some("xn--zz"));
        for good in [
            "xn--mnchen-3ya.example",
            "xn--53h.example",
            "ab--cd.example",
        ] {
            assert_eq!(invalid_a_label(good), None, "{good}");
        }
    }

    #[test]
    fn public_suffixes() {
        for suffix in ["com", "co.uk", "github.io", "foo.ck", "xn--55qx5d.cn", "uk"] {
            assert!(is_public_suffix(suffix), "{suffix}");
        }
        for name in [
            "example.com",
            "example.co.uk",
            "user.github.io",
            "www.ck",
            "example.invalid",
            "invalid",
        ] {
            assert!(!is_public_suffix(name), "{name}");
        }
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
