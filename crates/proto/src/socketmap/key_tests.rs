//! Socketmap key forms (interop §1.4), one case each, plus properties.

use proptest::prelude::*;

use super::*;

fn domain(name: &str) -> NextHop {
    NextHop::Domain(name.to_owned())
}

fn invalid(key: &str) -> NextHop {
    NextHop::Invalid(key.to_owned())
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

proptest! {
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
            prop_assert_eq!(classify_key(&format!("[{d}]:25")), NextHop::Domain(d.clone()));
        }
    }
}
