//! Who a request came from behind reverse proxies: the `Forwarded` header (RFC 7239) and the
//! de-facto `X-Forwarded-For`, and the address networks (`10.0.0.0/8`) an operator trusts.
//!
//! Both headers list one hop per proxy, the client first and the nearest proxy's own client
//! last; every proxy appends, so only the right-hand end was written by proxies the operator
//! runs — everything to its left may be forged by the client. [`client_address`] therefore
//! walks from the right, skipping addresses inside the trusted networks, and takes the first
//! one outside them.
//!
//! Bounded: a header list longer than [`MAX_HEADER_BYTES`] or with more than [`MAX_HOPS`] hops
//! is refused as a whole ([`ForwardedError`]), so a hostile header costs at most a few
//! kilobytes of scanning.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::str::FromStr;

use thiserror::Error;

/// The most bytes of forwarding headers read (all lines of one header together).
pub const MAX_HEADER_BYTES: usize = 8 * 1024;
/// The most hops (list elements) read.
pub const MAX_HOPS: usize = 64;

/// Why a forwarding header was not read.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum ForwardedError {
    /// Longer than [`MAX_HEADER_BYTES`].
    #[error("the forwarding header is longer than {MAX_HEADER_BYTES} bytes")]
    TooLong,
    /// More than [`MAX_HOPS`] elements.
    #[error("the forwarding header has more than {MAX_HOPS} hops")]
    TooManyHops,
    /// Not the header's syntax (the message says where).
    #[error("malformed forwarding header: {0}")]
    Syntax(&'static str),
}

/// One hop of a forwarding header: an address, or a node the proxy did not name
/// (`unknown`, an obfuscated `_name`, an element without `for=`, or an `X-Forwarded-For`
/// entry that is not an address).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Hop {
    /// The hop's address (the port, if given, is dropped).
    Address(IpAddr),
    /// No usable address.
    Unknown,
}

/// An address network: an address and a prefix length (`10.0.0.0/8`, `2001:db8::/32`, or a
/// single address, `192.0.2.1`, which is its full-length network).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Network {
    addr: IpAddr,
    prefix: u8,
}

/// Why a network was not read.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[error("{text:?} is not an address or a network like 10.0.0.0/8: {reason}")]
pub struct NetworkError {
    text: String,
    reason: &'static str,
}

impl Network {
    /// The network of `addr` with `prefix` bits; `None` when the prefix is longer than the
    /// address.
    pub fn new(addr: IpAddr, prefix: u8) -> Option<Network> {
        let max = match addr {
            IpAddr::V4(_) => 32,
            IpAddr::V6(_) => 128,
        };
        (prefix <= max).then_some(Network { addr, prefix })
    }

    /// The prefix length (the longer, the more specific).
    pub fn prefix(&self) -> u8 {
        self.prefix
    }

    /// Whether `ip` is inside this network. An IPv4-mapped IPv6 address (`::ffff:192.0.2.1`)
    /// is the IPv4 address it maps, as sockets on a dual-stack listener report them.
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip.to_canonical()) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                prefix_eq(&net.octets(), &ip.octets(), self.prefix)
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                prefix_eq(&net.octets(), &ip.octets(), self.prefix)
            }
            _ => false,
        }
    }
}

fn prefix_eq(a: &[u8], b: &[u8], prefix: u8) -> bool {
    let full = usize::from(prefix / 8);
    let rest = prefix % 8;
    if a[..full] != b[..full] {
        return false;
    }
    if rest == 0 {
        return true;
    }
    let mask = 0xffu8 << (8 - rest);
    (a[full] & mask) == (b[full] & mask)
}

impl FromStr for Network {
    type Err = NetworkError;

    fn from_str(text: &str) -> Result<Network, NetworkError> {
        let error = |reason| NetworkError {
            text: text.to_owned(),
            reason,
        };
        let (addr, prefix) = match text.trim().split_once('/') {
            Some((addr, prefix)) => (addr, Some(prefix)),
            None => (text.trim(), None),
        };
        let addr: IpAddr = addr.parse().map_err(|_| error("not an IP address"))?;
        let addr = addr.to_canonical();
        let max = match addr {
            IpAddr::V4(_) => 32,
            IpAddr::V6(_) => 128,
        };
        let prefix = match prefix {
            None => max,
            Some(p) if !p.is_empty() && p.len() <= 3 && p.bytes().all(|b| b.is_ascii_digit()) => p
                .parse()
                .map_err(|_| error("the prefix length is not a number"))?,
            Some(_) => return Err(error("the prefix length is not a number")),
        };
        if prefix > max {
            return Err(error("the prefix length is longer than the address"));
        }
        // Host bits set (`10.0.0.1/8`) are almost always a typo for something else.
        let network = Network { addr, prefix };
        let zeroed = match addr {
            IpAddr::V4(v4) => {
                let bits = u32::from(v4);
                let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
                bits & !mask == 0
            }
            IpAddr::V6(v6) => {
                let bits = u128::from(v6);
                let mask = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
                bits & !mask == 0
            }
        };
        if !zeroed {
            return Err(error("the address has bits set beyond the prefix length"));
        }
        Ok(network)
    }
}

impl fmt::Display for Network {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// The hops of the `Forwarded` header lines `values` (RFC 7239 §4), in order: the `for=`
/// parameter of each element. Lines are one list, as if joined with commas (RFC 9110 §5.3).
pub fn parse_forwarded<'a>(
    values: impl IntoIterator<Item = &'a [u8]>,
) -> Result<Vec<Hop>, ForwardedError> {
    let mut hops = Vec::new();
    for value in bounded(values) {
        parse_forwarded_line(value?, &mut hops)?;
    }
    Ok(hops)
}

/// The header lines `values`, each once the lines up to it stay within [`MAX_HEADER_BYTES`];
/// past that, [`ForwardedError::TooLong`].
fn bounded<'a>(
    values: impl IntoIterator<Item = &'a [u8]>,
) -> impl Iterator<Item = Result<&'a [u8], ForwardedError>> {
    let mut total = 0usize;
    values.into_iter().map(move |value| {
        total = total.saturating_add(value.len());
        if total > MAX_HEADER_BYTES {
            Err(ForwardedError::TooLong)
        } else {
            Ok(value)
        }
    })
}

/// RFC 7239 §4: `Forwarded = 1#forwarded-element`, `forwarded-element = [ forwarded-pair ]
/// *( ";" [ forwarded-pair ] )`, `forwarded-pair = token "=" value`, `value = token /
/// quoted-string`. Empty list elements are allowed (RFC 9110 §5.6.1).
fn parse_forwarded_line(line: &[u8], hops: &mut Vec<Hop>) -> Result<(), ForwardedError> {
    let mut p = Cursor { text: line, at: 0 };
    loop {
        p.skip_ows();
        if p.done() {
            return Ok(());
        }
        if p.eat(b',') {
            continue;
        }
        // One element: pairs separated by ';'.
        let mut hop = None;
        loop {
            p.skip_ows();
            if p.eat(b';') {
                continue;
            }
            if p.done() || p.peek() == Some(b',') {
                break;
            }
            let name = p
                .token()
                .ok_or(ForwardedError::Syntax("expected a parameter name"))?;
            if !p.eat(b'=') {
                return Err(ForwardedError::Syntax(
                    "expected '=' after a parameter name",
                ));
            }
            let value = if p.peek() == Some(b'"') {
                p.quoted()?
            } else {
                p.token()
                    .ok_or(ForwardedError::Syntax("expected a parameter value"))?
                    .to_vec()
            };
            if name.eq_ignore_ascii_case(b"for") {
                if hop.is_some() {
                    return Err(ForwardedError::Syntax("an element names `for` twice"));
                }
                hop = Some(node(&value));
            }
            p.skip_ows();
            if !(p.done() || p.peek() == Some(b';') || p.peek() == Some(b',')) {
                return Err(ForwardedError::Syntax("expected ';' or ',' after a value"));
            }
        }
        if hops.len() >= MAX_HOPS {
            return Err(ForwardedError::TooManyHops);
        }
        hops.push(hop.unwrap_or(Hop::Unknown));
    }
}

/// RFC 7239 §6: `node = nodename [ ":" node-port ]`, `nodename = IPv4address / "[" IPv6address
/// "]" / "unknown" / obfnode`.
fn node(value: &[u8]) -> Hop {
    let Ok(text) = std::str::from_utf8(value) else {
        return Hop::Unknown;
    };
    if let Some(rest) = text.strip_prefix('[') {
        let Some((v6, port)) = rest.split_once(']') else {
            return Hop::Unknown;
        };
        if !(port.is_empty() || valid_port(port.strip_prefix(':'))) {
            return Hop::Unknown;
        }
        return v6
            .parse::<Ipv6Addr>()
            .map_or(Hop::Unknown, |a| Hop::Address(IpAddr::V6(a)));
    }
    let (v4, port) = match text.split_once(':') {
        Some((v4, port)) => (v4, Some(port)),
        None => (text, None),
    };
    if port.is_some() && !valid_port(port) {
        return Hop::Unknown;
    }
    v4.parse::<Ipv4Addr>()
        .map_or(Hop::Unknown, |a| Hop::Address(IpAddr::V4(a)))
}

/// `node-port = port / obfport` (a number, or `_` and letters, digits, `.`, `_`, `-`).
fn valid_port(port: Option<&str>) -> bool {
    match port {
        Some(p) if p.starts_with('_') => {
            p.len() > 1
                && p.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
        }
        Some(p) => !p.is_empty() && p.len() <= 5 && p.parse::<u16>().is_ok(),
        None => false,
    }
}

/// The hops of the `X-Forwarded-For` header lines `values`: comma-separated addresses
/// (`192.0.2.1`, `2001:db8::1`, and the forms some proxies write: `192.0.2.1:5000`,
/// `[2001:db8::1]:5000`). An entry that is no address is [`Hop::Unknown`].
pub fn parse_x_forwarded_for<'a>(
    values: impl IntoIterator<Item = &'a [u8]>,
) -> Result<Vec<Hop>, ForwardedError> {
    let mut hops = Vec::new();
    for value in bounded(values) {
        for entry in value?.split(|&b| b == b',') {
            let entry = entry.trim_ascii();
            if entry.is_empty() {
                continue;
            }
            if hops.len() >= MAX_HOPS {
                return Err(ForwardedError::TooManyHops);
            }
            hops.push(xff_entry(entry));
        }
    }
    Ok(hops)
}

fn xff_entry(entry: &[u8]) -> Hop {
    let Ok(text) = std::str::from_utf8(entry) else {
        return Hop::Unknown;
    };
    if let Ok(ip) = text.parse::<IpAddr>() {
        return Hop::Address(ip);
    }
    text.parse::<SocketAddr>()
        .map_or(Hop::Unknown, |a| Hop::Address(a.ip()))
}

/// The client's address: the right-most hop of `hops` that is not inside `trusted`, given
/// that the connection came from `peer` (which the caller has found trusted). When every hop
/// is trusted, the left-most one (the client is itself on a trusted network). When the walk
/// meets a hop without an address before any untrusted one, `peer`: what lies to its left
/// cannot be told from a forgery.
pub fn client_address(peer: IpAddr, hops: &[Hop], trusted: &[Network]) -> IpAddr {
    let is_trusted = |ip: IpAddr| trusted.iter().any(|n| n.contains(ip));
    let mut last = peer;
    for hop in hops.iter().rev() {
        match *hop {
            Hop::Address(ip) => {
                let ip = ip.to_canonical();
                if !is_trusted(ip) {
                    return ip;
                }
                last = ip;
            }
            Hop::Unknown => return peer,
        }
    }
    last
}

struct Cursor<'a> {
    text: &'a [u8],
    at: usize,
}

impl<'a> Cursor<'a> {
    fn done(&self) -> bool {
        self.at >= self.text.len()
    }

    fn peek(&self) -> Option<u8> {
        self.text.get(self.at).copied()
    }

    fn eat(&mut self, b: u8) -> bool {
        if self.peek() == Some(b) {
            self.at += 1;
            true
        } else {
            false
        }
    }

    fn skip_ows(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.at += 1;
        }
    }

    /// RFC 9110 §5.6.2 `token = 1*tchar`.
    fn token(&mut self) -> Option<&'a [u8]> {
        let start = self.at;
        while self.peek().is_some_and(is_tchar) {
            self.at += 1;
        }
        let text = self.text;
        (self.at > start).then(|| &text[start..self.at])
    }

    /// RFC 9110 §5.6.4 `quoted-string`, unescaped.
    fn quoted(&mut self) -> Result<Vec<u8>, ForwardedError> {
        self.at += 1;
        let mut out = Vec::new();
        loop {
            match self.peek() {
                None => return Err(ForwardedError::Syntax("an unterminated quoted string")),
                Some(b'"') => {
                    self.at += 1;
                    return Ok(out);
                }
                Some(b'\\') => {
                    self.at += 1;
                    match self.peek() {
                        Some(b)
                            if b == b'\t'
                                || b == b' '
                                || (0x21..=0x7e).contains(&b)
                                || b >= 0x80 =>
                        {
                            out.push(b);
                            self.at += 1;
                        }
                        _ => return Err(ForwardedError::Syntax("a bad escape in a quoted string")),
                    }
                }
                Some(b)
                    if b == b'\t'
                        || b == b' '
                        || b == 0x21
                        || (0x23..=0x7e).contains(&b)
                        || b >= 0x80 =>
                {
                    out.push(b);
                    self.at += 1;
                }
                Some(_) => {
                    return Err(ForwardedError::Syntax(
                        "a control character in a quoted string",
                    ));
                }
            }
        }
    }
}

fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    fn fwd(lines: &[&str]) -> Result<Vec<Hop>, ForwardedError> {
        parse_forwarded(lines.iter().map(|l| l.as_bytes()))
    }

    fn xff(lines: &[&str]) -> Result<Vec<Hop>, ForwardedError> {
        parse_x_forwarded_for(lines.iter().map(|l| l.as_bytes()))
    }

    fn nets(list: &[&str]) -> Vec<Network> {
        list.iter().map(|n| n.parse().unwrap()).collect()
    }

    #[test]
    fn networks_parse_and_contain() {
        let net: Network = "10.0.0.0/8".parse().unwrap();
        assert!(net.contains(ip("10.255.1.2")));
        assert!(!net.contains(ip("11.0.0.1")));
        assert!(net.contains(ip("::ffff:10.1.2.3")), "mapped IPv4");
        assert!(!net.contains(ip("::1")));
        let single: Network = "192.0.2.7".parse().unwrap();
        assert_eq!(single.to_string(), "192.0.2.7/32");
        assert!(single.contains(ip("192.0.2.7")));
        assert!(!single.contains(ip("192.0.2.8")));
        let v6: Network = "2001:db8::/32".parse().unwrap();
        assert!(v6.contains(ip("2001:db8:ffff::1")));
        assert!(!v6.contains(ip("2001:db9::1")));
        let odd: Network = "192.0.2.0/25".parse().unwrap();
        assert!(odd.contains(ip("192.0.2.127")));
        assert!(!odd.contains(ip("192.0.2.128")));
        let all: Network = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains(ip("203.0.113.1")));
        let mapped: Network = "::ffff:127.0.0.1".parse().unwrap();
        assert!(mapped.contains(ip("127.0.0.1")));
        for bad in [
            "",
            "10.0.0.0/",
            "10.0.0.0/33",
            "10.0.0.1/8",
            "2001:db8::/129",
            "10.0.0.0/+8",
            "10.0.0.0/0008",
            "example.com",
            "10.0.0.0/8/8",
        ] {
            assert!(bad.parse::<Network>().is_err(), "{bad}");
        }
        assert!(Network::new(ip("10.0.0.0"), 33).is_none());
        assert!(Network::new(ip("10.0.0.0"), 8).is_some());
    }

    #[test]
    fn forwarded_elements_and_nodes() {
        assert_eq!(
            fwd(&[r#"for=192.0.2.60;proto=http;by=203.0.113.43, for="[2001:db8:cafe::17]:4711""#]),
            Ok(vec![
                Hop::Address(ip("192.0.2.60")),
                Hop::Address(ip("2001:db8:cafe::17"))
            ])
        );
        assert_eq!(
            fwd(&[
                "For=\"192.0.2.1:8080\"",
                "for=unknown, for=_hidden, proto=https"
            ]),
            Ok(vec![
                Hop::Address(ip("192.0.2.1")),
                Hop::Unknown,
                Hop::Unknown,
                Hop::Unknown
            ])
        );
        // Empty list elements and stray semicolons are allowed.
        assert_eq!(
            fwd(&[" , ;for=192.0.2.2; ,"]),
            Ok(vec![Hop::Address(ip("192.0.2.2"))])
        );
        // A quoted comma belongs to the value, not the list.
        assert_eq!(
            fwd(&[r#"for="a, for=192.0.2.9", for=192.0.2.3"#]),
            Ok(vec![Hop::Unknown, Hop::Address(ip("192.0.2.3"))])
        );
        // Unbracketed IPv6, bad ports and garbage are no address.
        for node in [
            "for=\"2001:db8::1\"",
            "for=\"[2001:db8::1\"",
            "for=\"192.0.2.1:99999\"",
            "for=\"[2001:db8::1]x\"",
            "for=\"192.0.2.1:\"",
            "for=999.1.1.1",
        ] {
            assert_eq!(fwd(&[node]), Ok(vec![Hop::Unknown]), "{node}");
        }
        assert_eq!(
            fwd(&["for=\"192.0.2.1:_p0rt\""]),
            Ok(vec![Hop::Address(ip("192.0.2.1"))])
        );
    }

    #[test]
    fn malformed_forwarded_is_refused() {
        for bad in [
            "for",
            "for=",
            "=192.0.2.1",
            "for=192.0.2.1 proto=http",
            "for=\"192.0.2.1",
            "for=\"a\\",
            "for=\"a\u{1}\"",
            "for=192.0.2.1;for=192.0.2.2",
            "for=[2001:db8::1]",
        ] {
            assert!(
                matches!(fwd(&[bad]), Err(ForwardedError::Syntax(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn headers_are_bounded() {
        let long = "for=192.0.2.1,".repeat(MAX_HEADER_BYTES / 14 + 1);
        assert_eq!(fwd(&[&long]), Err(ForwardedError::TooLong));
        assert_eq!(xff(&[&long]), Err(ForwardedError::TooLong));
        // Split over lines, the total counts.
        let half = "x".repeat(MAX_HEADER_BYTES / 2 + 1);
        assert_eq!(xff(&[&half, &half]), Err(ForwardedError::TooLong));
        let many = vec!["for=192.0.2.1"; MAX_HOPS + 1];
        assert_eq!(fwd(&many), Err(ForwardedError::TooManyHops));
        assert_eq!(fwd(&many[..MAX_HOPS]).unwrap().len(), MAX_HOPS);
        let many = "192.0.2.1,".repeat(MAX_HOPS + 1);
        assert_eq!(xff(&[&many]), Err(ForwardedError::TooManyHops));
    }

    #[test]
    fn x_forwarded_for_entries() {
        assert_eq!(
            xff(&[
                "203.0.113.9, 2001:db8::1",
                "192.0.2.1:5000,[2001:db8::2]:80, junk,,"
            ]),
            Ok(vec![
                Hop::Address(ip("203.0.113.9")),
                Hop::Address(ip("2001:db8::1")),
                Hop::Address(ip("192.0.2.1")),
                Hop::Address(ip("2001:db8::2")),
                Hop::Unknown
            ])
        );
        assert_eq!(xff(&[""]), Ok(vec![]));
        assert_eq!(
            parse_x_forwarded_for([&b"\xff192.0.2.1"[..]]),
            Ok(vec![Hop::Unknown]),
            "not UTF-8"
        );
    }

    #[test]
    fn the_client_is_the_rightmost_untrusted_hop() {
        let trusted = nets(&["10.0.0.0/8", "2001:db8:ffff::/48"]);
        let peer = ip("10.0.0.1");
        let hops = |text: &str| xff(&[text]).unwrap();
        // The client forged a left-hand entry; the proxy appended the real one.
        assert_eq!(
            client_address(peer, &hops("198.51.100.1, 203.0.113.5"), &trusted),
            ip("203.0.113.5")
        );
        // Trusted proxies in the chain are skipped.
        assert_eq!(
            client_address(peer, &hops("198.51.100.1, 203.0.113.5, 10.1.1.1"), &trusted),
            ip("203.0.113.5")
        );
        assert_eq!(
            client_address(peer, &hops("2001:db8:1::1, 2001:db8:ffff::9"), &trusted),
            ip("2001:db8:1::1")
        );
        // Everyone trusted: the left-most.
        assert_eq!(
            client_address(peer, &hops("10.9.9.9, 10.1.1.1"), &trusted),
            ip("10.9.9.9")
        );
        // No header: the peer.
        assert_eq!(client_address(peer, &[], &trusted), peer);
        // An unnamed hop: what is left of it cannot be trusted.
        assert_eq!(
            client_address(peer, &hops("203.0.113.5, junk, 10.1.1.1"), &trusted),
            peer
        );
        // Mapped addresses compare as IPv4.
        assert_eq!(
            client_address(peer, &hops("::ffff:203.0.113.5, ::ffff:10.1.1.1"), &trusted),
            ip("203.0.113.5")
        );
    }
}
