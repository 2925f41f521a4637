//! Which address a request comes from, for every per-client limit and log line of the API
//! and the dashboard: the TCP peer, or — only when the peer is a configured trusted proxy
//! (`trusted_proxies`) — the client named by its `Forwarded` (RFC 7239) or, without one,
//! `X-Forwarded-For` header ([`mtasts_proto::forwarded`] reads both).
//!
//! A header the peer is not trusted for is ignored: anyone can write one. A malformed or
//! oversized header from a trusted proxy gives the proxy's own address (stricter, never
//! looser), and so does a `Forwarded` header that cannot be read even when an
//! `X-Forwarded-For` is present: a proxy that writes `Forwarded` may pass a client's forged
//! `X-Forwarded-For` through untouched.

use std::net::{IpAddr, Ipv6Addr, SocketAddr};

use axum::http::HeaderMap;
use mtasts_proto::forwarded::{self, Network};
use serde::{Deserialize, Deserializer};

/// The networks whose connections may name the client in forwarding headers (default: none).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<Network>);

impl TrustedProxies {
    /// Trusts `networks`.
    pub fn new(networks: Vec<Network>) -> Self {
        TrustedProxies(networks)
    }

    /// The trusted networks.
    pub fn networks(&self) -> &[Network] {
        &self.0
    }

    /// Whether `ip` is a trusted proxy.
    pub fn contains(&self, ip: IpAddr) -> bool {
        self.0.iter().any(|n| n.contains(ip))
    }

    /// The client's address for a request from `peer` with `headers` (see the module docs).
    /// `None` only when the connection's address is unknown.
    pub fn client_ip(&self, peer: Option<SocketAddr>, headers: &HeaderMap) -> Option<IpAddr> {
        let peer = peer?.ip().to_canonical();
        if !self.contains(peer) {
            return Some(peer);
        }
        let hops = if headers.contains_key("forwarded") {
            forwarded::parse_forwarded(headers.get_all("forwarded").iter().map(|v| v.as_bytes()))
        } else {
            forwarded::parse_x_forwarded_for(
                headers
                    .get_all("x-forwarded-for")
                    .iter()
                    .map(|v| v.as_bytes()),
            )
        };
        match hops {
            Ok(hops) => Some(forwarded::client_address(peer, &hops, &self.0)),
            Err(e) => {
                tracing::debug!(error = %e, proxy = %peer, "forwarding header ignored");
                Some(peer)
            }
        }
    }
}

impl<'de> Deserialize<'de> for TrustedProxies {
    /// A list of addresses or networks (`["127.0.0.1", "10.0.0.0/8"]`); an entry that is
    /// neither is an error naming it.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let texts = Vec::<String>::deserialize(deserializer)?;
        texts
            .iter()
            .map(|t| t.parse::<Network>().map_err(serde::de::Error::custom))
            .collect::<Result<Vec<_>, _>>()
            .map(TrustedProxies)
    }
}

/// The rate-limiting key of a client address: IPv4 as is, IPv6 by its /64, since one host
/// usually controls a whole /64 and could otherwise rotate addresses to escape the limit.
pub fn limit_key(ip: Option<IpAddr>) -> IpAddr {
    match ip.map(|a| a.to_canonical()) {
        Some(IpAddr::V6(v6)) => {
            let mut segments = v6.segments();
            segments[4..].fill(0);
            IpAddr::V6(Ipv6Addr::from(segments))
        }
        Some(v4) => v4,
        // Without connection information every client shares one bucket: stricter, never looser.
        None => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            map.append(*k, HeaderValue::from_static(v));
        }
        map
    }

    fn proxies(list: &[&str]) -> TrustedProxies {
        TrustedProxies::new(list.iter().map(|n| n.parse().unwrap()).collect())
    }

    fn peer(text: &str) -> Option<SocketAddr> {
        Some(text.parse().unwrap())
    }

    fn ip(text: &str) -> Option<IpAddr> {
        Some(text.parse().unwrap())
    }

    #[test]
    fn headers_count_only_from_trusted_peers() {
        let trusted = proxies(&["127.0.0.1", "10.0.0.0/8"]);
        let forged = headers(&[("x-forwarded-for", "203.0.113.5")]);
        assert_eq!(
            TrustedProxies::default().client_ip(peer("127.0.0.1:1"), &forged),
            ip("127.0.0.1")
        );
        assert_eq!(
            trusted.client_ip(peer("192.0.2.9:1"), &forged),
            ip("192.0.2.9")
        );
        assert_eq!(
            trusted.client_ip(peer("127.0.0.1:1"), &forged),
            ip("203.0.113.5")
        );
        assert_eq!(
            trusted.client_ip(peer("[::ffff:10.0.0.2]:1"), &forged),
            ip("203.0.113.5"),
            "a mapped peer is its IPv4 address"
        );
        assert_eq!(trusted.client_ip(None, &forged), None);
    }

    #[test]
    fn forwarded_wins_and_a_bad_one_gives_the_proxy() {
        let trusted = proxies(&["127.0.0.0/8"]);
        let both = headers(&[
            ("forwarded", "for=198.51.100.7"),
            ("x-forwarded-for", "203.0.113.5"),
        ]);
        assert_eq!(
            trusted.client_ip(peer("127.0.0.1:1"), &both),
            ip("198.51.100.7")
        );
        let bad = headers(&[
            ("forwarded", "for=\"unterminated"),
            ("x-forwarded-for", "203.0.113.5"),
        ]);
        assert_eq!(
            trusted.client_ip(peer("127.0.0.2:1"), &bad),
            ip("127.0.0.2")
        );
        let none = HeaderMap::new();
        assert_eq!(
            trusted.client_ip(peer("127.0.0.2:1"), &none),
            ip("127.0.0.2")
        );
    }

    #[test]
    fn config_lists_are_read_and_bad_entries_named() {
        #[derive(Deserialize)]
        struct Wrap {
            p: TrustedProxies,
        }
        let w: Wrap = toml::from_str(r#"p = ["127.0.0.1", "10.0.0.0/8", "::1"]"#).unwrap();
        assert_eq!(w.p.networks().len(), 3);
        let err = toml::from_str::<Wrap>(r#"p = ["10.0.0.0/33"]"#)
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("10.0.0.0/33"), "{err}");
    }

    #[test]
    fn ipv6_clients_are_keyed_by_their_64() {
        let a = ip("2001:db8:1:2:aaaa::1");
        let b = ip("2001:db8:1:2:bbbb::2");
        let c = ip("2001:db8:1:3::1");
        assert_eq!(limit_key(a), limit_key(b));
        assert_ne!(limit_key(a), limit_key(c));
        assert_eq!(
            limit_key(ip("192.0.2.7")),
            limit_key(ip("::ffff:192.0.2.7"))
        );
        assert_eq!(limit_key(None), IpAddr::V6(Ipv6Addr::UNSPECIFIED));
    }
}
