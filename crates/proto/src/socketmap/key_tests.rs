//! Socketmap key forms (interop §1.4), one case each, plus properties.

use proptest::prelude::*;

use std::borrow::Cow;

use super::*;

fn domain(name: &str) -> NextHop<'static> {
    NextHop::Domain(name.to_owned().into())
}

fn invalid(key: &str) -> NextHop<'static> {
    NextHop::Invalid(key.to_owned().into())
}

/// `name: key => expected,` asserts `classify_key(key)`.
macro_rules! key_cases {
    ($($name:ident: $key:expr => $expected:expr,)*) => {$(
        #[test]
        fn $name() {
            assert_eq!(classify_key($key), $expected, "{:?}", $key);
        }
    )*};
}

key_cases! {
    recipient_domain: "example.com" => domain("example.com"),
    uppercase_and_trailing_dot: "Example.COM." => domain("example.com"),
    surrounding_whitespace: " example.com\n" => domain("example.com"),
    single_label: "localhost" => domain("localhost"),
    u_labels_become_a_labels: "MÜNCHEN.example" => domain("xn--mnchen-3ya.example"),
    a_labels_kept: "xn--mnchen-3ya.example" => domain("xn--mnchen-3ya.example"),
    bare_name_with_port: "example.com:2525" => domain("example.com"),
    bare_name_dot_and_port: "example.com.:2525" => domain("example.com"),
    bracketed_smart_host: "[relay.example.net]" => domain("relay.example.net"),
    bracketed_with_port: "[relay.example.net]:587" => domain("relay.example.net"),
    bracketed_uppercase_trailing_dot: "[Relay.Example.NET.]:25" => domain("relay.example.net"),
    snawoot_bracketed_port: "[good.loc]:123" => domain("good.loc"),
    parent_probe: ".example.com" => NextHop::ParentProbe,
    parent_probe_tld: ".com" => NextHop::ParentProbe,
    parent_probe_trailing_dot: ".Example.COM." => NextHop::ParentProbe,
    snawoot_parent_probe: ".good.loc" => NextHop::ParentProbe,
    ipv4_literal: "[192.0.2.1]" => NextHop::AddressLiteral,
    ipv4_literal_port: "[192.0.2.1]:25" => NextHop::AddressLiteral,
    ipv6_literal_port: "[2001:db8::1]:25" => NextHop::AddressLiteral,
    ipv6_tagged: "[ipv6:2001:db8::1]" => NextHop::AddressLiteral,
    ipv6_tagged_uppercase: "[IPv6:2001:DB8::1]:25" => NextHop::AddressLiteral,
    snawoot_ipv6_port: "[a:bb:ccc::dddd]:123" => NextHop::AddressLiteral,
    bare_ipv4: "192.0.2.1" => NextHop::AddressLiteral,
    bare_ipv4_port: "192.0.2.1:25" => NextHop::AddressLiteral,
    bare_ipv6: "2001:db8::1" => NextHop::AddressLiteral,
    bare_ipv4_trailing_dot: "192.0.2.1." => NextHop::AddressLiteral,
    empty: "" => invalid(""),
    blank: "   " => invalid("   "),
    dot_only: "." => invalid("."),
    two_trailing_dots: "example.com.." => invalid("example.com.."),
    inner_space: "exa mple.com" => invalid("exa mple.com"),
    underscore: "_mta-sts.example.com" => invalid("_mta-sts.example.com"),
    empty_port: "example.com:" => invalid("example.com:"),
    port_letters: "example.com:smtp" => invalid("example.com:smtp"),
    port_too_big: "example.com:65536" => invalid("example.com:65536"),
    port_six_digits: "[relay.example]:000025" => invalid("[relay.example]:000025"),
    two_ports: "example.com:25:25" => invalid("example.com:25:25"),
    unclosed_bracket: "[relay.example.net" => invalid("[relay.example.net"),
    text_after_bracket: "[relay.example.net]x" => invalid("[relay.example.net]x"),
    empty_brackets: "[]" => invalid("[]"),
    bracketed_parent_probe: "[.example.com]" => invalid("[.example.com]"),
    bad_ipv6_tag: "[ipv6:relay.example]" => invalid("[ipv6:relay.example]"),
    bad_ipv4: "[192.0.2.300]" => invalid("[192.0.2.300]"),
    numeric_tld: "1.2.3" => invalid("1.2.3"),
    space_inside_brackets: "[ relay.example ]" => invalid("[ relay.example ]"),
    lmtp_prefix: "inet:example.com:24" => invalid("inet:example.com:24"),
    parent_probe_of_nothing: ".." => invalid(".."),
    parent_probe_bad: "._x.example" => invalid("._x.example"),
    email_address: "user@example.com" => invalid("user@example.com"),
}

/// The classification as written before the fast path (one lowercased copy, every IP parse):
/// the oracle the fast path is checked against.
fn reference(key: &str) -> NextHop<'static> {
    use std::net::{IpAddr, Ipv6Addr};
    fn address(s: &str) -> bool {
        match s.strip_prefix("ipv6:") {
            Some(v6) => v6.parse::<Ipv6Addr>().is_ok(),
            None => s.parse::<IpAddr>().is_ok(),
        }
    }
    fn domain_or_invalid(name: &str, key: &str) -> NextHop<'static> {
        if name.ends_with('.') || name.trim() != name {
            return invalid(key);
        }
        match normalize_domain(name) {
            Ok(d) if !super::numeric_tld(&d) => NextHop::Domain(d.into()),
            _ => invalid(key),
        }
    }
    let lowered = key.trim().to_ascii_lowercase();
    if lowered.is_empty() {
        return invalid(key);
    }
    if let Some(rest) = lowered.strip_prefix('[') {
        let Some((inside, after)) = rest.split_once(']') else {
            return invalid(key);
        };
        if !(after.is_empty() || after.strip_prefix(':').is_some_and(is_port)) {
            return invalid(key);
        }
        if address(inside) {
            return NextHop::AddressLiteral;
        }
        if inside.starts_with("ipv6:") || inside.starts_with('.') {
            return invalid(key);
        }
        return domain_or_invalid(inside.strip_suffix('.').unwrap_or(inside), key);
    }
    if address(&lowered) {
        return NextHop::AddressLiteral;
    }
    let host = match lowered.rsplit_once(':') {
        Some((host, port)) if is_port(port) && !host.contains(':') => host,
        Some(_) => return invalid(key),
        None => &lowered,
    };
    let host = host.strip_suffix('.').unwrap_or(host);
    if address(host) {
        return NextHop::AddressLiteral;
    }
    if let Some(parent) = host.strip_prefix('.') {
        return match domain_or_invalid(parent, key) {
            NextHop::Domain(_) => NextHop::ParentProbe,
            other => other,
        };
    }
    domain_or_invalid(host, key)
}

#[test]
fn lowercase_domain_is_borrowed() {
    let key = "mx1.example.com";
    match classify_key(key) {
        NextHop::Domain(Cow::Borrowed(d)) => assert!(std::ptr::eq(d, key)),
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        classify_key("example.com."),
        NextHop::Domain(Cow::Borrowed("example.com"))
    ));
    assert!(matches!(
        classify_key("Example.COM"),
        NextHop::Domain(Cow::Owned(_))
    ));
}

#[test]
fn plain_domain_leaves_other_keys_to_the_general_path() {
    for key in [
        "",
        ".",
        "..",
        "a..",
        ".example.com",
        "1.2.3",
        "192.0.2.1",
        "example.com:25",
        "[example.com]",
        " example.com",
        "exa_mple.com",
        "-a.example",
        "münchen.example",
        &"a.".repeat(128),
    ] {
        assert_eq!(plain_domain(key), None, "{key:?}");
    }
    let label = format!("{}.example", "a".repeat(63));
    assert_eq!(plain_domain(&label).as_deref(), Some(label.as_str()));
    assert_eq!(
        plain_domain("x-1.a--b.example").as_deref(),
        Some("x-1.a--b.example")
    );
    let longest = "a.".repeat(127);
    assert_eq!(plain_domain(&longest).as_deref(), Some(&longest[..253]));
}

#[test]
fn may_be_address_accepts_address_bytes_only() {
    assert!(may_be_address("192.0.2.1"));
    assert!(may_be_address("2001:db8::1"));
    assert!(may_be_address("::ffff:192.0.2.1"));
    assert!(!may_be_address(""));
    assert!(!may_be_address("example.com"));
    assert!(!may_be_address("2001:DB8::1"), "lowercased before the test");
}

proptest! {
    /// The fast path and the general path together classify every key as before: arbitrary
    /// text, key-like text, address-like keys and host names (the fast path's own keys).
    #[test]
    fn same_as_reference(key in prop_oneof![
        "\\PC{0,40}",
        "[\\[\\]:.a-zA-Z0-9_ -]{0,40}",
        "\\[?(ipv6:|IPv6:)?[0-9a-fA-F:.]{1,40}\\]?(:[0-9]{1,5})?",
        "[a-zA-Z0-9-]{1,20}(\\.[a-zA-Z0-9-]{1,20}){0,4}\\.?",
        "[a-z0-9-]{60,66}(\\.[a-z0-9-]{58,66}){0,4}\\.?",
    ]) {
        prop_assert_eq!(classify_key(&key), reference(&key));
    }

    #[test]
    fn never_panics(key in "\\PC*") {
        let _ = classify_key(&key);
    }

    #[test]
    fn never_panics_on_key_like_text(key in "[\\[\\]:.a-zA-Z0-9 ]{0,40}") {
        let _ = classify_key(&key);
    }

    /// A classified domain is already normalised: classifying it again gives itself.
    #[test]
    fn domains_are_fixed_points(key in "\\[?[a-zA-Z0-9.-]{1,30}\\]?(:[0-9]{1,5})?") {
        if let NextHop::Domain(d) = classify_key(&key) {
            prop_assert_eq!(classify_key(&d), NextHop::Domain(d.clone()));
            let bracketed = format!("[{d}]:25");
            prop_assert_eq!(classify_key(&bracketed), NextHop::Domain(d.clone()));
        }
    }
}
