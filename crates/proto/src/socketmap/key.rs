//! Socketmap lookup keys: the next-hop forms Postfix sends to an `smtp_tls_policy_maps` table
//! (interop §1.4) and what each means for MTA-STS (RFC 8461 §3.4).

use std::borrow::Cow;
use std::net::{IpAddr, Ipv6Addr};

use crate::domain::{MAX_LABEL_LEN, MAX_NAME_LEN, normalize_domain};

/// What a socketmap key names, after normalisation. Borrows from the key when it can: a key
/// that is already a lowercase host name is its own domain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NextHop<'a> {
    /// A domain to look up a policy for: lowercase A-labels, no trailing dot, no brackets, no
    /// port.
    Domain(Cow<'a, str>),
    /// Postfix's parent-domain probe `.example.com`, sent after `a.example.com` missed. RFC 8461
    /// §3.4 forbids falling back to a parent domain's policy: answer `NOTFOUND `.
    ParentProbe,
    /// An address literal (`[192.0.2.1]`, `[ipv6:2001:db8::1]`, a bare IP): no domain, so no
    /// MTA-STS policy (8461 §3.4).
    AddressLiteral,
    /// Anything else: not a host name, a bad port, unbalanced brackets, spaces. Holds the key as
    /// received, for logging.
    Invalid(Cow<'a, str>),
}

/// The longest port a key may carry: `:65535`.
const MAX_PORT: u32 = 65_535;

/// Classifies a socketmap key (interop §1.4).
///
/// Postfix sends the full next-hop verbatim and does not normalise it, so this:
///
/// 1. trims surrounding whitespace and lowercases ASCII letters (U-labels are mapped to
///    lowercase A-labels by [`normalize_domain`], UTS 46);
/// 2. strips a `:port` suffix, after a bracketed name (`[relay.example.net]:587`) or after a
///    bare name (`example.com:2525`); the port must be 1–5 digits, at most 65535;
/// 3. reads `[name]` as the name inside. This is the *smart-host reading* of RFC 8461 §3.4 that
///    postfix-mta-sts-resolver also takes: a bracketed next hop (`relayhost = [relay.example]`)
///    is delivered to without an MX lookup, and the policy applied is the relay's own domain
///    policy, not the recipient's;
/// 4. reads `[192.0.2.1]`, `[2001:db8::1]`, `[ipv6:2001:db8::1]` and bare IP addresses as
///    [`NextHop::AddressLiteral`];
/// 5. strips one trailing dot; a leading dot on a bare key is Postfix's parent-domain probe
///    ([`NextHop::ParentProbe`], only when the rest is a valid domain);
/// 6. converts the name with [`normalize_domain`] (LDH labels, length limits). A name whose
///    last label is all digits (`1.2.3`) is not a host name (RFC 1123 §2.1) and not an address
///    either: [`NextHop::Invalid`].
///
/// Every Postfix lookup comes through here, so the common key (a bare ASCII host name) is
/// recognised by one pass over its bytes and, when already lowercase, borrowed rather than
/// copied; other keys take the general path, which parses a part of the key as an IP address
/// only when it consists of hex digits, dots and colons (optionally after `ipv6:`).
///
/// Never panics; work is linear in the key length.
pub fn classify_key(key: &str) -> NextHop<'_> {
    match plain_domain(key) {
        Some(domain) => NextHop::Domain(domain),
        None => classify_general(key),
    }
}

/// The domain of a key that is a bare LDH host name (labels of 1–63 ASCII letters, digits and
/// inner hyphens, at most one trailing dot, a last label that is not all digits), or `None`
/// for every other key. For these keys the general path gives the same domain: no whitespace
/// to trim, no brackets or port, no IP address (an IPv4 address ends in digits, an IPv6 one
/// has colons), and [`normalize_domain`] only lowercases them. The label rules are those of
/// `normalize_domain`, checked in the same pass as the characters.
fn plain_domain(key: &str) -> Option<Cow<'_, str>> {
    let name = key.strip_suffix('.').unwrap_or(key);
    if name.is_empty() || name.len() > MAX_NAME_LEN {
        return None;
    }
    let mut upper = false;
    // Of the label being read: its length, whether it is all digits, its last byte.
    let mut label_len = 0usize;
    let mut digits = true;
    let mut last = b'.';
    for &b in name.as_bytes() {
        match b {
            b'a'..=b'z' => digits = false,
            b'A'..=b'Z' => {
                upper = true;
                digits = false;
            }
            b'0'..=b'9' => {}
            b'-' if label_len > 0 => digits = false,
            b'.' if label_len > 0 && last != b'-' => {
                label_len = 0;
                digits = true;
                last = b;
                continue;
            }
            _ => return None,
        }
        label_len += 1;
        if label_len > MAX_LABEL_LEN {
            return None;
        }
        last = b;
    }
    if digits || last == b'-' {
        return None;
    }
    Some(if upper {
        Cow::Owned(name.to_ascii_lowercase())
    } else {
        Cow::Borrowed(name)
    })
}

/// Every key form of [`classify_key`].
fn classify_general(key: &str) -> NextHop<'_> {
    let invalid = || NextHop::Invalid(Cow::Borrowed(key));
    let lowered = key.trim().to_ascii_lowercase();
    if lowered.is_empty() {
        return invalid();
    }

    if let Some(rest) = lowered.strip_prefix('[') {
        let Some((inside, after)) = rest.split_once(']') else {
            return invalid();
        };
        if !(after.is_empty() || after.strip_prefix(':').is_some_and(is_port)) {
            return invalid();
        }
        if is_address_literal(inside) {
            return NextHop::AddressLiteral;
        }
        // `[ipv6:…]` that is not an address, or a bracketed parent probe: not a next hop.
        if inside.starts_with("ipv6:") || inside.starts_with('.') {
            return invalid();
        }
        return domain_or_invalid(inside.strip_suffix('.').unwrap_or(inside), key);
    }

    // Bare IPv6 addresses contain colons: test them before looking for a port.
    if is_address_literal(&lowered) {
        return NextHop::AddressLiteral;
    }
    let host = match lowered.rsplit_once(':') {
        Some((host, port)) if is_port(port) && !host.contains(':') => host,
        Some(_) => return invalid(),
        None => &lowered,
    };
    let host = host.strip_suffix('.').unwrap_or(host);
    if host.len() != lowered.len() && is_address_literal(host) {
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

/// `1*5DIGIT`, at most 65535.
fn is_port(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 5
        && s.bytes().all(|b| b.is_ascii_digit())
        && s.parse::<u32>().is_ok_and(|port| port <= MAX_PORT)
}

/// An IPv4 or IPv6 address, optionally written with the RFC 5321 `IPv6:` tag (lowercased).
fn is_address_literal(s: &str) -> bool {
    match s.strip_prefix("ipv6:") {
        Some(v6) => may_be_address(v6) && v6.parse::<Ipv6Addr>().is_ok(),
        None => may_be_address(s) && s.parse::<IpAddr>().is_ok(),
    }
}

/// Whether `s` has only the bytes an IPv4 or IPv6 address is written with (lowercased): a
/// cheap test that spares host names the address parsers.
fn may_be_address(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f' | b'.' | b':'))
}

/// The normalised domain, or `Invalid(key)`.
fn domain_or_invalid<'a>(name: &str, key: &'a str) -> NextHop<'a> {
    // `normalize_domain` would strip a second trailing dot; one was already taken.
    if name.ends_with('.') || name.trim() != name {
        return NextHop::Invalid(Cow::Borrowed(key));
    }
    match normalize_domain(name) {
        Ok(domain) if !numeric_tld(&domain) => NextHop::Domain(Cow::Owned(domain)),
        _ => NextHop::Invalid(Cow::Borrowed(key)),
    }
}

/// Whether the last label is all digits (RFC 1123 §2.1: a top-level label is alphabetic).
fn numeric_tld(domain: &str) -> bool {
    domain
        .rsplit('.')
        .next()
        .is_some_and(|tld| tld.bytes().all(|b| b.is_ascii_digit()))
}

#[cfg(test)]
#[path = "key_tests.rs"]
mod tests;
