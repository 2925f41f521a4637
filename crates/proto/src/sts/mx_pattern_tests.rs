//! RFC 8461 §3.2 `mx` syntax (C64, C65, C66) and §4.1 matching (C71–C75, C81), one test each.

use proptest::prelude::*;

use super::*;

/// `name: value => pattern,` asserts `value.parse::<MxPattern>()` matches the pattern.
macro_rules! parse_cases {
    ($($name:ident: $input:expr => $pat:pat $(if $guard:expr)?,)*) => {$(
        #[test]
        #[allow(clippy::redundant_pattern_matching)] // uniform `pattern if guard` cases
        fn $name() {
            let parsed = $input.parse::<MxPattern>();
            assert!(matches!(&parsed, $pat $(if $guard)?), "{:?} parsed as {parsed:?}", $input);
        }
    )*};
}

/// `name: pattern, host => bool,` asserts whether the pattern matches the host.
macro_rules! match_cases {
    ($($name:ident: $pattern:expr, $host:expr => $expected:expr,)*) => {$(
        #[test]
        fn $name() {
            let pattern: MxPattern = $pattern.parse().unwrap();
            assert_eq!(pattern.matches($host), $expected, "{} vs {}", $pattern, $host);
        }
    )*};
}

fn syntax(e: &MxPatternError) -> bool {
    matches!(e, MxPatternError::Syntax { .. })
}

parse_cases! {
    literal: "mail.example.com" => Ok(p) if !p.is_wildcard() && p.domain() == "mail.example.com",
    wildcard: "*.example.com" => Ok(p) if p.is_wildcard() && p.domain() == "example.com",
    uppercase_is_lowercased: "MX1.Example.COM" => Ok(p) if p.to_string() == "mx1.example.com",
    uppercase_is_published_as_written: "*.MX1.Example.COM" => Ok(p) if p.published() == "*.MX1.Example.COM",
    uppercase_equals_lowercase: "MX1.Example.COM" => Ok(p) if *p == "mx1.example.com".parse::<MxPattern>().unwrap(),
    lowercase_is_published_as_is: "*.mx1.example.com" => Ok(p) if p.published() == "*.mx1.example.com",
    single_label_is_a_domain: "localhost" => Ok(_),
    a_label_ok: "xn--mnchen-3ya.example" => Ok(_),
    label_63_ok: &format!("{}.example", "a".repeat(63)) => Ok(_),
    c64_trailing_dot: "mail.example.com." => Err(MxPatternError::TrailingDot(_)),
    c64_wildcard_trailing_dot: "*.example.com." => Err(MxPatternError::TrailingDot(_)),
    c64_star_alone: "*" => Err(MxPatternError::Wildcard(_)),
    c64_star_dot: "*." => Err(MxPatternError::Wildcard(_)),
    c64_double_wildcard_labels: "*.*.example" => Err(MxPatternError::Wildcard(_)),
    c64_double_star: "**.example" => Err(MxPatternError::Wildcard(_)),
    c64_inner_wildcard: "mail.*.example.com" => Err(MxPatternError::Wildcard(_)),
    c64_partial_wildcard: "*mail.example.com" => Err(MxPatternError::Wildcard(_)),
    c64_trailing_wildcard: "mail.example.*" => Err(MxPatternError::Wildcard(_)),
    c64_leading_dot: ".example.com" => Err(e) if syntax(e),
    c64_leading_hyphen: "-x.example" => Err(e) if syntax(e),
    c64_trailing_hyphen: "x-.example" => Err(e) if syntax(e),
    c64_label_over_63: &format!("{}.example", "a".repeat(64)) => Err(e) if syntax(e),
    c64_underscore: "mail_1.example.com" => Err(e) if syntax(e),
    c64_port: "mx:25" => Err(e) if syntax(e),
    c64_host_with_port: "mail.example.com:25" => Err(e) if syntax(e),
    c64_url: "https://mail.example.com" => Err(e) if syntax(e),
    c64_path: "mail.example.com/x" => Err(e) if syntax(e),
    c64_u_label: "münchen.example" => Err(MxPatternError::NotALabel(_)),
    c64_empty: "" => Err(MxPatternError::Empty),
    c64_double_dot: "mail..example" => Err(e) if syntax(e),
    c64_space_inside: "mail example.com" => Err(e) if syntax(e),
    c64_email_address: "postmaster@example.com" => Err(e) if syntax(e),
    name_over_253: &["a".repeat(63), "b".repeat(63), "c".repeat(63), "d".repeat(63)].join(".") => Err(e) if syntax(e),
    c65_ip_parses: "212.114.86.56" => Ok(p) if p.looks_like_ip(),
    c66_broad_wildcard_parses: "*.com" => Ok(p) if p.is_broad_wildcard(),
}

#[test]
fn c65_looks_like_ip() {
    let ip: MxPattern = "212.114.86.56".parse().unwrap();
    assert!(ip.looks_like_ip());
    assert!(!ip.matches("mail.example.com"));
    let name: MxPattern = "mx1.example.com".parse().unwrap();
    assert!(!name.looks_like_ip());
    let mixed: MxPattern = "1.2.3.example".parse().unwrap();
    assert!(!mixed.looks_like_ip());
}

#[test]
fn c66_broad_wildcard() {
    assert!("*.com".parse::<MxPattern>().unwrap().is_broad_wildcard());
    assert!(
        !"*.example.com"
            .parse::<MxPattern>()
            .unwrap()
            .is_broad_wildcard()
    );
    assert!(!"com".parse::<MxPattern>().unwrap().is_broad_wildcard());
}

match_cases! {
    literal_matches_itself: "mx1.example.com", "mx1.example.com" => true,
    c71_case_insensitive: "mx1.example.com", "MX1.Example.COM" => true,
    c71_pattern_case_insensitive: "MX1.EXAMPLE.com", "mx1.example.com" => true,
    c72_root_dot_stripped: "mx1.example.com", "mx1.example.com." => true,
    c72_wildcard_root_dot_stripped: "*.example.com", "mail.example.com." => true,
    c73_wildcard_one_label: "*.example.com", "mail.example.com" => true,
    c73_wildcard_not_the_parent: "*.example.com", "example.com" => false,
    c73_wildcard_not_two_labels: "*.example.com", "foo.bar.example.com" => false,
    c74_anchored_left: "*.example.com", "xexample.com" => false,
    c74_anchored_right: "*.example.com", "mail.example.com.evil.net" => false,
    c74_literal_not_suffix: "example.com", "mail.example.com" => false,
    c74_literal_not_prefix: "mail.example.com", "mail.example.com.evil.net" => false,
    c75_idn_host_as_a_label: "mx.xn--mnchen-3ya.example", "mx.münchen.example" => true,
    c75_idn_wildcard: "*.xn--mnchen-3ya.example", "MX.MÜNCHEN.example" => true,
    uppercase_pattern_matches_any_case: "*.MX.Example.com", "a.mx.EXAMPLE.com" => true,
    c81_google_wildcard_alt: "*.aspmx.l.google.com", "alt1.aspmx.l.google.com" => true,
    c81_google_wildcard_not_base: "*.aspmx.l.google.com", "aspmx.l.google.com" => false,
    c81_microsoft_two_labels: "*.mx.microsoft", "example-com.a-v1.mx.microsoft" => false,
    empty_host: "mx.example.com", "" => false,
    root_only_host: "*.example.com", "." => false,
    host_with_two_trailing_dots: "mx.example.com", "mx.example.com.." => false,
    leading_dot_host: "*.example.com", ".example.com" => false,
    wildcard_host_does_not_match_literal: "mail.example.com", "*.example.com" => false,
}

proptest! {
    #[test]
    fn roundtrip(wild in any::<bool>(), labels in proptest::collection::vec("[a-z0-9]([a-z0-9-]{0,10}[a-z0-9])?", 1..5)) {
        let text = format!("{}{}", if wild { "*." } else { "" }, labels.join("."));
        let pattern: MxPattern = text.parse().unwrap();
        prop_assert_eq!(pattern.to_string(), text.clone());
        prop_assert_eq!(pattern.to_string().parse::<MxPattern>(), Ok(pattern.clone()));
        prop_assert_eq!(pattern.is_wildcard(), wild);
    }

    #[test]
    fn wildcard_matches_exactly_one_label(
        label in "[a-z0-9]{1,10}",
        extra in "[a-z0-9]{1,10}",
        domain in "[a-z]{1,8}\\.[a-z]{2,4}",
    ) {
        let pattern: MxPattern = format!("*.{domain}").parse().unwrap();
        let one_label = format!("{label}.{domain}");
        let two_labels = format!("{extra}.{label}.{domain}");
        prop_assert!(pattern.matches(&one_label));
        prop_assert!(pattern.matches(&one_label.to_uppercase()));
        prop_assert!(!pattern.matches(&two_labels));
        prop_assert!(!pattern.matches(&domain));
    }

    #[test]
    fn parse_never_panics(s in "\\PC*") {
        let _ = s.parse::<MxPattern>();
    }

    #[test]
    fn matches_never_panics(p in "(\\*\\.)?[a-z]{1,5}\\.[a-z]{2,3}", host in "\\PC*") {
        let pattern: MxPattern = p.parse().unwrap();
        let _ = pattern.matches(&host);
    }
}
