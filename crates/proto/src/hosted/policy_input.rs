//! Turning what an owner asks for (API or dashboard fields) into a policy the service can
//! serve, with errors that name the field and the rule.
//!
//! Stricter than the parser on purpose: the parser must accept what senders accept, while a
//! hosted policy should only ever contain what every sender reads the same way.

use std::fmt;
use std::str::FromStr;

use crate::sts::mx_pattern::MxPattern;
use crate::sts::policy::{MAX_AGE_CAP, MaxAge, Mode, Policy};

/// `max_age` when the owner gives none: one week, long enough to protect between refreshes,
/// short enough that a mistake ages out (RFC 8461 §3.2 suggests weeks or more for enforce).
pub const DEFAULT_MAX_AGE: u32 = 604_800;

/// At most this many `mx` lines: far above any real MX set, low enough to keep the body small.
pub const MAX_MX: usize = 64;

/// One rejected field.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldError {
    /// The request field: `mode`, `mx` or `max_age`.
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
}
