//! Turning what an owner asks for (API or dashboard fields) into a policy the service can
//! serve, and into the TLS-RPT `rua` it publishes, with errors that name the field and the
//! rule.
//!
//! Stricter than the parser on purpose: the parser must accept what senders accept, while a
//! hosted policy should only ever contain what every sender reads the same way.

use std::fmt;
use std::str::FromStr;

use crate::domain::{
    invalid_a_label, is_ip_spelling, is_public_suffix, normalize_domain, numeric_top_label,
};
use crate::sts::mx_pattern::MxPattern;
use crate::sts::policy::{MAX_AGE_CAP, MaxAge, Mode, Policy};
use crate::tlsrpt::record::{ReportUri, TLSRPT_VERSION, TlsRptRecord};

/// `max_age` when the owner gives none: one week, long enough to protect between refreshes,
/// short enough that a mistake ages out (RFC 8461 §3.2 suggests weeks or more for enforce).
pub const DEFAULT_MAX_AGE: u32 = 604_800;

/// At most this many `mx` lines: far above any real MX set, low enough to keep the body small.
pub const MAX_MX: usize = 64;

/// At most this many `rua` URIs: a reporting address and a reporting endpoint, each with a
/// spare, is plenty; every URI gets every sender's daily report.
pub const MAX_RUA_URIS: usize = 4;

/// The longest `rua` value, in bytes (the store's limit; the whole TXT record stays below
/// 1100 bytes, a handful of 255-byte strings).
pub const MAX_RUA_BYTES: usize = 1024;

/// One rejected field.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldError {
    /// The request field: `mode`, `mx`, `max_age` or `rua`.
    pub field: &'static str,
    /// The rule broken, with its source.
    pub rule: &'static str,
    /// What was wrong with the value given.
    pub message: String,
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {} ({})", self.field, self.message, self.rule)
    }
}

impl std::error::Error for FieldError {}

const MODE_RULE: &str = "RFC 8461 §3.2: mode is one of enforce, testing, none (lowercase)";
const MX_REQUIRED_RULE: &str = "RFC 8461 §3.2: enforce and testing policies need at least one mx";
const MX_SYNTAX_RULE: &str =
    "RFC 8461 §3.2/§4.1: an mx is a host name, optionally starting with *. for one label";
const MX_IP_RULE: &str = "RFC 8461 §4.1: mx patterns match host names; an IP address never matches";
const MX_BROAD_RULE: &str =
    "RFC 8461 §10.4: a wildcard must not cover a public suffix such as *.com";
const MX_COUNT_RULE: &str = "mtasts: at most 64 mx patterns, each listed once";
const MAX_AGE_RULE: &str = "RFC 8461 §3.2: max_age is 1 to 31557600 seconds";
const RUA_RULE: &str = "RFC 8460 §3: rua is one or more mailto: or https: URIs separated by commas, \
     with any , ! ; inside a URI percent-encoded";
const RUA_LIMIT_RULE: &str =
    "RFC 8460 §3 (mtasts limits): at most 4 rua URIs, each listed once, 1024 characters in all";

/// RFC 1035 syntax of a hosted domain.
pub const DOMAIN_SYNTAX_RULE: &str =
    "RFC 1035 §2.3.1, RFC 5890: a domain name of letters, digits and hyphens (IDNs allowed)";
/// A hosted domain is not a single label.
pub const DOMAIN_LABELS_RULE: &str = "mtasts: a hosted domain has at least two labels";
/// An address, in whatever spelling, is not a domain.
pub const DOMAIN_IP_RULE: &str = "RFC 1123 §2.1, RFC 3696 §2: an IP address in any spelling \
     (127.0.0.1, 0x7f.1, 0177.0.0.1) is not a domain name, and no top-level label is numeric";
/// `xn--` labels must be real A-labels.
pub const DOMAIN_IDNA_RULE: &str =
    "RFC 5890 §2.3.2.1: an xn-- label must be a valid A-label (Punycode of a valid U-label)";
/// Public suffixes are shared by many owners.
pub const DOMAIN_SUFFIX_RULE: &str = "Public Suffix List: a public suffix (com, co.uk, \
     github.io) is shared by many owners; host a registrable domain under it";

/// Normalises the name of a domain to host (any case, U-labels or A-labels, one trailing dot
/// allowed) to lowercase A-labels, or says which rule it breaks (field `domain`): LDH
/// syntax, an IP address in any spelling or a numeric top-level label, an `xn--` label that
/// is not a valid A-label, a public suffix (checked before the single-label rule, so `com`
/// is reported as the public suffix it is), a single label.
pub fn hosted_domain(input: &str) -> Result<String, FieldError> {
    // `[192.0.2.1]`, `[IPv6:…]`: address literals (RFC 5321 §4.1.3) are addresses too.
    if is_ip_spelling(input) || input.trim().starts_with('[') {
        return Err(invalid(
            "domain",
            DOMAIN_IP_RULE,
            format!("{:?} is an IP address, not a domain name", input.trim()),
        ));
    }
    let name = normalize_domain(input)
        .map_err(|e| invalid("domain", DOMAIN_SYNTAX_RULE, e.to_string()))?;
    if let Some(top) = numeric_top_label(&name) {
        return Err(invalid(
            "domain",
            DOMAIN_IP_RULE,
            format!(
                "{name:?} has a numeric top-level label (TLD) {top:?}: URL parsers read such \
                 a name as an IP address, and no such top-level domain exists"
            ),
        ));
    }
    if let Some(label) = invalid_a_label(&name) {
        return Err(invalid(
            "domain",
            DOMAIN_IDNA_RULE,
            format!("{label:?} in {name:?} is not a valid A-label"),
        ));
    }
    if is_public_suffix(&name) {
        return Err(invalid(
            "domain",
            DOMAIN_SUFFIX_RULE,
            format!(
                "{name:?} is a public suffix (Public Suffix List): it is shared by many \
                 owners' domains, so no one owner can host its policy"
            ),
        ));
    }
    if !name.contains('.') {
        return Err(invalid(
            "domain",
            DOMAIN_LABELS_RULE,
            format!("{name:?} is a single label"),
        ));
    }
    Ok(name)
}

fn invalid(field: &'static str, rule: &'static str, message: String) -> FieldError {
    FieldError {
        field,
        rule,
        message,
    }
}

/// Builds the policy for `mode`, `mx` and `max_age` (default [`DEFAULT_MAX_AGE`]). Patterns
/// are normalised (lowercase A-labels) and kept in the order given.
pub fn build_policy(mode: &str, mx: &[String], max_age: Option<u64>) -> Result<Policy, FieldError> {
    let mode = Mode::from_str(mode)
        .map_err(|_| invalid("mode", MODE_RULE, format!("{mode:?} is not a mode")))?;
    let max_age = match max_age {
        None => MaxAge::new(DEFAULT_MAX_AGE).expect("the default is below the cap"),
        Some(0) => return Err(invalid("max_age", MAX_AGE_RULE, "0 is not allowed".into())),
        Some(n) => u32::try_from(n).ok().and_then(MaxAge::new).ok_or_else(|| {
            invalid(
                "max_age",
                MAX_AGE_RULE,
                format!("{n} is above the cap of {MAX_AGE_CAP}"),
            )
        })?,
    };
    let patterns = mx_patterns(mx)?;
    if patterns.is_empty() && mode != Mode::None {
        return Err(invalid(
            "mx",
            MX_REQUIRED_RULE,
            format!("mode {mode} has no mx"),
        ));
    }
    Ok(Policy {
        mode,
        max_age,
        mx: patterns,
        extensions: Vec::new(),
    })
}

fn mx_patterns(values: &[String]) -> Result<Vec<MxPattern>, FieldError> {
    if values.len() > MAX_MX {
        return Err(invalid(
            "mx",
            MX_COUNT_RULE,
            format!("{} patterns given", values.len()),
        ));
    }
    let mut patterns: Vec<MxPattern> = Vec::with_capacity(values.len());
    for value in values {
        // Owners paste MX names from `dig` output, which end in a dot; the policy must not.
        let trimmed = value.trim();
        let trimmed = trimmed.strip_suffix('.').unwrap_or(trimmed);
        let pattern = MxPattern::from_str(&trimmed.to_ascii_lowercase())
            .map_err(|e| invalid("mx", MX_SYNTAX_RULE, e.to_string()))?;
        if pattern.looks_like_ip() {
            return Err(invalid(
                "mx",
                MX_IP_RULE,
                format!("{value:?} is an IP address"),
            ));
        }
        if pattern.is_broad_wildcard() {
            return Err(invalid(
                "mx",
                MX_BROAD_RULE,
                format!("{value:?} covers a whole public suffix"),
            ));
        }
        if patterns.contains(&pattern) {
            return Err(invalid(
                "mx",
                MX_COUNT_RULE,
                format!("{value:?} is listed twice"),
            ));
        }
        patterns.push(pattern);
    }
    Ok(patterns)
}

/// Validates the value of a TLS-RPT `rua=` field (RFC 8460 §3) for the `_smtp._tls` record the
/// service publishes as `v=TLSRPTv1; rua=<value>`, and returns it normalised: surrounding
/// whitespace and whitespace around the commas removed, schemes lowercase
/// (`mailto:a@example.com,https://r.example/v1`).
///
/// Besides what [`TlsRptRecord::parse`] rejects (non-`mailto:`/`https:` URIs, a `mailto:`
/// without an address, an `https:` without a host, unencoded `!`, spaces), refused are: `;`
/// (it would end the field and start another one in the record), control characters, more
/// than [`MAX_RUA_URIS`] URIs, a URI listed twice, and more than [`MAX_RUA_BYTES`] bytes.
pub fn validate_rua(value: &str) -> Result<String, FieldError> {
    let value = value.trim();
    if value.is_empty() {
        return Err(invalid("rua", RUA_RULE, "rua is empty".into()));
    }
    if value.contains(';') {
        return Err(invalid(
            "rua",
            RUA_RULE,
            "';' is not allowed: percent-encode it inside a URI (%3B)".into(),
        ));
    }
    if value.chars().any(char::is_control) {
        return Err(invalid(
            "rua",
            RUA_RULE,
            "control characters (line breaks, tabs) are not allowed".into(),
        ));
    }
    let mut uris: Vec<String> = Vec::new();
    for part in value.split(',') {
        let part = part.trim();
        if part.is_empty() {
            return Err(invalid(
                "rua",
                RUA_RULE,
                "an empty URI between commas".into(),
            ));
        }
        let uri = match part.split_once(':') {
            Some((scheme, rest)) => format!("{}:{rest}", scheme.to_ascii_lowercase()),
            None => part.to_owned(),
        };
        let parsed = ReportUri::parse(&uri).map_err(|e| invalid("rua", RUA_RULE, e.to_string()))?;
        if let ReportUri::Mailto(text) = &parsed {
            mailto_address(text)?;
        }
        if uris.iter().any(|u| u.eq_ignore_ascii_case(&uri)) {
            return Err(invalid(
                "rua",
                RUA_LIMIT_RULE,
                format!("{part:?} is listed twice"),
            ));
        }
        uris.push(uri);
    }
    if uris.len() > MAX_RUA_URIS {
        return Err(invalid(
            "rua",
            RUA_LIMIT_RULE,
            format!("{} URIs given", uris.len()),
        ));
    }
    let normalised = uris.join(",");
    if normalised.len() > MAX_RUA_BYTES {
        return Err(invalid(
            "rua",
            RUA_LIMIT_RULE,
            format!("{} bytes long", normalised.len()),
        ));
    }
    // The record the zone will answer must read back as exactly these URIs and nothing else.
    let record = TlsRptRecord::parse(&format!("{TLSRPT_VERSION}; rua={normalised}"))
        .map_err(|e| invalid("rua", RUA_RULE, e.to_string()))?;
    let parsed: Vec<&str> = record.rua.iter().map(ReportUri::as_str).collect();
    if !record.extensions.is_empty() || parsed != uris {
        return Err(invalid(
            "rua",
            RUA_RULE,
            "the value does not read back as the same URIs".into(),
        ));
    }
    Ok(normalised)
}

/// A `mailto:` URI names one address `local@domain.tld` (the parser only asks for an `@`).
fn mailto_address(uri: &str) -> Result<(), FieldError> {
    let address = uri["mailto:".len()..].split('?').next().unwrap_or("");
    let ok = address.rsplit_once('@').is_some_and(|(local, domain)| {
        !local.is_empty()
            && !domain.contains('@')
            && domain.contains('.')
            && !domain.starts_with('.')
            && !domain.ends_with('.')
            && !domain.contains("..")
    });
    if ok {
        Ok(())
    } else {
        Err(invalid(
            "rua",
            RUA_RULE,
            format!("{uri:?}: a mailto: URI needs one address, as in mailto:tlsrpt@example.com"),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mx(values: &[&str]) -> Vec<String> {
        values.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn builds_a_crlf_policy_with_defaults() {
        let policy = build_policy(
            "testing",
            &mx(&["mx1.example.com", "*.mx.Example.com."]),
            None,
        )
        .unwrap();
        assert_eq!(
            policy.to_text("\r\n"),
            "version: STSv1\r\nmode: testing\r\nmx: mx1.example.com\r\nmx: *.mx.example.com\r\nmax_age: 604800\r\n"
        );
        assert_eq!(Policy::parse(&policy.to_text("\r\n")).unwrap(), policy);
    }

    #[test]
    fn mode_is_case_sensitive_and_named() {
        let err = build_policy("Enforce", &mx(&["mx.example.com"]), None).unwrap_err();
        assert_eq!(err.field, "mode");
        assert!(err.rule.contains("§3.2"));
        assert!(build_policy("enforce", &mx(&["mx.example.com"]), None).is_ok());
    }

    #[test]
    fn enforce_and_testing_need_mx_but_none_does_not() {
        for mode in ["enforce", "testing"] {
            assert_eq!(build_policy(mode, &[], None).unwrap_err().field, "mx");
        }
        assert!(
            build_policy("none", &[], Some(86400))
                .unwrap()
                .mx
                .is_empty()
        );
    }

    #[test]
    fn max_age_bounds() {
        let m = mx(&["mx.example.com"]);
        assert_eq!(
            build_policy("enforce", &m, Some(0)).unwrap_err().field,
            "max_age"
        );
        assert_eq!(
            build_policy("enforce", &m, Some(31_557_601))
                .unwrap_err()
                .field,
            "max_age"
        );
        assert_eq!(
            build_policy("enforce", &m, Some(u64::MAX))
                .unwrap_err()
                .field,
            "max_age"
        );
        let p = build_policy("enforce", &m, Some(31_557_600)).unwrap();
        assert_eq!(p.max_age.seconds(), 31_557_600);
    }

    #[test]
    fn bad_mx_values_are_rejected_with_their_rule() {
        let cases = [
            ("mx.example.com:25", MX_SYNTAX_RULE),
            ("*", MX_SYNTAX_RULE),
            ("mx.*.example.com", MX_SYNTAX_RULE),
            ("mail_1.example.com", MX_SYNTAX_RULE),
            ("", MX_SYNTAX_RULE),
            ("192.0.2.1", MX_IP_RULE),
            ("*.com", MX_BROAD_RULE),
        ];
        for (value, rule) in cases {
            let err = build_policy("enforce", &mx(&[value]), None).unwrap_err();
            assert_eq!((err.field, err.rule), ("mx", rule), "{value}");
        }
        let twice = build_policy("enforce", &mx(&["a.example.com", "A.example.com"]), None);
        assert_eq!(twice.unwrap_err().rule, MX_COUNT_RULE);
        let many: Vec<String> = (0..65).map(|i| format!("mx{i}.example.com")).collect();
        assert_eq!(
            build_policy("enforce", &many, None).unwrap_err().rule,
            MX_COUNT_RULE
        );
    }

    #[test]
    fn hosted_domain_refuses_addresses_with_their_rule() {
        for input in [
            "127.0.0.1",
            "999.999.999.999",
            "0x7f.1",
            "1.2.3",
            "0177.0.0.1",
            "2130706433",
            "127.0.0.1.",
            " 10.0.0.1 ",
            "::1",
            "2001:db8::1",
        ] {
            let err = hosted_domain(input).unwrap_err();
            assert_eq!((err.field, err.rule), ("domain", DOMAIN_IP_RULE), "{input}");
            assert!(err.message.contains("is an IP address"), "{input}: {err}");
        }
        for input in ["a.123", "1.2.3.4.5", "example.0x1f", "Mail.Example.42."] {
            let err = hosted_domain(input).unwrap_err();
            assert_eq!(err.rule, DOMAIN_IP_RULE, "{input}");
            assert!(
                err.message.contains("numeric top-level label"),
                "{input}: {err}"
            );
        }
    }

    #[test]
    fn hosted_domain_refuses_public_suffixes_and_bad_a_labels() {
        for input in [
            "co.uk",
            "com",
            "github.io",
            "CO.UK.",
            "foo.ck",
            "公司.cn",
            "uk",
        ] {
            let err = hosted_domain(input).unwrap_err();
            assert_eq!(
                (err.field, err.rule),
                ("domain", DOMAIN_SUFFIX_RULE),
                "{input}"
            );
            assert!(err.message.contains("public suffix"), "{input}: {err}");
        }
        for input in [
            "xn--zz.example",
            "mail.xn--a.example",
            "xn--0.example",
            "xn--a-ecp.com",
        ] {
            let err = hosted_domain(input).unwrap_err();
            assert_eq!(
                (err.field, err.rule),
                ("domain", DOMAIN_IDNA_RULE),
                "{input}"
            );
        }
        for (input, rule) in [
            ("localhost", DOMAIN_LABELS_RULE),
            ("[::1]", DOMAIN_IP_RULE),
            ("[127.0.0.1]", DOMAIN_IP_RULE),
            ("a..example", DOMAIN_SYNTAX_RULE),
            // A trailing hyphen is already an LDH error.
            ("xn--.example", DOMAIN_SYNTAX_RULE),
            ("xn--abc-.com", DOMAIN_SYNTAX_RULE),
            ("", DOMAIN_SYNTAX_RULE),
        ] {
            assert_eq!(hosted_domain(input).unwrap_err().rule, rule, "{input}");
        }
    }

    #[test]
    fn hosted_domain_accepts_registrable_names() {
        for (input, name) in [
            ("Example.COM.", "example.com"),
            ("example.co.uk", "example.co.uk"),
            ("user.github.io", "user.github.io"),
            ("münchen.example", "xn--mnchen-3ya.example"),
            ("xn--mnchen-3ya.example", "xn--mnchen-3ya.example"),
            ("0x7f.com", "0x7f.com"),
            ("123.example", "123.example"),
            ("www.ck", "www.ck"),
            ("mail.example.invalid", "mail.example.invalid"),
            ("公司.example.cn", "xn--55qx5d.example.cn"),
        ] {
            assert_eq!(hosted_domain(input).as_deref(), Ok(name), "{input}");
        }
    }

    #[test]
    fn good_rua_values_are_normalised() {
        let cases = [
            ("mailto:tlsrpt@example.com", "mailto:tlsrpt@example.com"),
            (
                "https://reports.example.com/v1/tlsrpt",
                "https://reports.example.com/v1/tlsrpt",
            ),
            (
                "  mailto:tlsrpt@example.com , https://reports.example.com/v1/tlsrpt\r\n",
                "mailto:tlsrpt@example.com,https://reports.example.com/v1/tlsrpt",
            ),
            ("MAILTO:TlsRpt@Example.com", "mailto:TlsRpt@Example.com"),
            (
                "mailto:a%2Cb@example.com?subject=tls%3Breport",
                "mailto:a%2Cb@example.com?subject=tls%3Breport",
            ),
        ];
        for (value, normalised) in cases {
            assert_eq!(validate_rua(value).as_deref(), Ok(normalised), "{value:?}");
            let record = TlsRptRecord::parse(&format!("v=TLSRPTv1; rua={normalised}")).unwrap();
            assert_eq!(record.to_string(), format!("v=TLSRPTv1; rua={normalised}"));
        }
        let four = (1..=4)
            .map(|i| format!("mailto:r{i}@example.com"))
            .collect::<Vec<_>>()
            .join(",");
        assert_eq!(validate_rua(&four).unwrap(), four);
    }

    #[test]
    fn bad_rua_values_are_rejected_with_their_rule() {
        let long = format!("https://reports.example.com/{}", "a".repeat(1000));
        let cases = [
            ("", RUA_RULE),
            ("   ", RUA_RULE),
            ("http://reports.example.com/v1", RUA_RULE),
            ("mailto:", RUA_RULE),
            ("mailto:?subject=report", RUA_RULE),
            ("mailto:tlsrpt@", RUA_RULE),
            ("mailto:@example.com", RUA_RULE),
            ("mailto:tlsrpt@localhost", RUA_RULE),
            ("tlsrpt@example.com", RUA_RULE),
            ("https://", RUA_RULE),
            ("mailto:tlsrpt@example.com; foo=bar", RUA_RULE),
            ("mailto:tlsrpt@example.com;", RUA_RULE),
            ("mailto:tlsrpt@example.com\nv=TLSRPTv1", RUA_RULE),
            ("mailto:tlsrpt@example.com!10m", RUA_RULE),
            ("mailto:tls rpt@example.com", RUA_RULE),
            ("mailto:tlsrpt@exämple.com", RUA_RULE),
            ("mailto:tlsrpt@example.com,", RUA_RULE),
            (",mailto:tlsrpt@example.com", RUA_RULE),
            (
                "mailto:tlsrpt@example.com,MAILTO:tlsrpt@example.com",
                RUA_LIMIT_RULE,
            ),
            (long.as_str(), RUA_LIMIT_RULE),
        ];
        for (value, rule) in cases {
            let err = validate_rua(value).unwrap_err();
            assert_eq!((err.field, err.rule), ("rua", rule), "{value:?}: {err}");
            assert!(err.rule.contains("RFC 8460 §3"));
            assert!(!err.message.is_empty());
        }
        let five = (1..=5)
            .map(|i| format!("mailto:r{i}@example.com"))
            .collect::<Vec<_>>()
            .join(",");
        assert_eq!(validate_rua(&five).unwrap_err().rule, RUA_LIMIT_RULE);
    }
}
