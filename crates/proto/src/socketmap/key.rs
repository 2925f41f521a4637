//! Socketmap lookup keys: the next-hop forms Postfix sends to an `smtp_tls_policy_maps` table
//! (interop §1.4) and what each means for MTA-STS (RFC 8461 §3.4).

use std::net::{IpAddr, Ipv6Addr};

use crate::domain::normalize_domain;

/// What a socketmap key names, after normalisation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NextHop {
    /// A domain to look up a policy for: lowercase A-labels, no trailing dot, no brackets, no
    /// port.
    Domain(String),
    /// Postfix's parent-domain probe `.example.com`, sent after `a.example.com` missed. RFC 8461
    /// §3.4 forbids falling back to a parent domain's policy: answer `NOTFOUND `.
    ParentProbe,
    /// An address literal (`[192.0.2.1]`, `[ipv6:2001:db8::1]`, a bare IP): no domain, so no
    /// MTA-STS policy (8461 §3.4).
    AddressLiteral,
    /// Anything else: not a host name, a bad port, unbalanced brackets, spaces. Holds the key as
    /// received, for logging.
    Invalid(String),
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
/// Never panics; work is linear in the key length.
pub fn classify_key(key: &str) -> NextHop {
    let invalid = || NextHop::Invalid(key.to_owned());
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
    if is_address_literal(host) {
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
        Some(v6) => v6.parse::<Ipv6Addr>().is_ok(),
        None => s.parse::<IpAddr>().is_ok(),
    }
}

/// The normalised domain, or `Invalid(key)`.
fn domain_or_invalid(name: &str, key: &str) -> NextHop {
    // `normalize_domain` would strip a second trailing dot; one was already taken.
    if name.ends_with('.') || name.trim() != name {
        return NextHop::Invalid(key.to_owned());
    }
    match normalize_domain(name) {
        Ok(domain) if !numeric_tld(&domain) => NextHop::Domain(domain),
        _ => NextHop::Invalid(key.to_owned()),
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
