//! A DNS lookup that hides non-public addresses, for probing on behalf of others.
//!
//! A hosted service checks domains its tenants name. Without a filter a tenant could point
//! `mta-sts.<domain>` or an MX host at `127.0.0.1`, `10.0.0.5` or `169.254.169.254` and read
//! the service's view of its internal network from the verification results (server-side
//! request forgery; rules file §13). Wrapping the checker's DNS in [`PublicOnly`] makes
//! such addresses look absent, so nothing connects to them.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

use futures::future::BoxFuture;
use mtasts_proto::txt::TxtRr;

use crate::dns::{DnsError, DnsLookup, MxRecord, Secured, TlsaRecord};

/// Whether `ip` is a globally routable unicast address (not loopback, private, shared,
/// link-local, documentation, benchmarking, multicast, reserved or unspecified; IPv4-mapped
/// and NAT64 IPv6 addresses are judged by their IPv4 part).
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => is_public_v6(v6),
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_multicast()
        || ip.is_broadcast()
        || ip.is_documentation()
        || a == 0
        || (a == 100 && (64..128).contains(&b)) // shared address space, RFC 6598
        || (a == 192 && b == 0 && c == 0) // IETF protocol assignments, RFC 6890
        || (a == 198 && (b == 18 || b == 19)) // benchmarking, RFC 2544
        || a >= 240) // reserved, RFC 1112
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return is_public_v4(v4);
    }
    let segments = ip.segments();
    // NAT64 well-known prefix 64:ff9b::/96 (RFC 6052) reaches the embedded IPv4 address.
    if segments[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        let [a, b] = segments[6].to_be_bytes();
        let [c, d] = segments[7].to_be_bytes();
        return is_public_v4(Ipv4Addr::new(a, b, c, d));
    }
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_multicast()
        || (segments[0] & 0xfe00) == 0xfc00 // unique local, RFC 4193
        || (segments[0] & 0xffc0) == 0xfe80 // link-local
        || (segments[0] == 0x2001 && segments[1] == 0x0db8) // documentation, RFC 3849
        || segments[..6] == [0, 0, 0, 0, 0, 0]) // IPv4-compatible (deprecated)
}

/// Wraps a DNS lookup so that address lookups return only public addresses; a name whose
/// addresses are all non-public looks like a name without addresses (`NoData`).
pub struct PublicOnly {
    inner: Arc<dyn DnsLookup>,
}

impl PublicOnly {
    /// Wraps `inner`.
    pub fn new(inner: Arc<dyn DnsLookup>) -> Self {
        PublicOnly { inner }
    }
}

fn only_public(addresses: Vec<IpAddr>) -> Result<Vec<IpAddr>, DnsError> {
    let public: Vec<IpAddr> = addresses.into_iter().filter(|ip| is_public(*ip)).collect();
    if public.is_empty() {
        Err(DnsError::NoData)
    } else {
        Ok(public)
    }
}

impl DnsLookup for PublicOnly {
    fn txt<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<Vec<TxtRr>, DnsError>> {
        self.inner.txt(name)
    }

    fn mx<'a>(&'a self, domain: &'a str) -> BoxFuture<'a, Result<Vec<MxRecord>, DnsError>> {
        self.inner.mx(domain)
    }

    fn ip<'a>(&'a self, host: &'a str) -> BoxFuture<'a, Result<Vec<IpAddr>, DnsError>> {
        Box::pin(async move { only_public(self.inner.ip(host).await?) })
    }

    fn tlsa<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<Vec<TlsaRecord>, DnsError>> {
        self.inner.tlsa(name)
    }

    fn tlsa_secure<'a>(
        &'a self,
        name: &'a str,
    ) -> BoxFuture<'a, Result<Secured<Vec<TlsaRecord>>, DnsError>> {
        self.inner.tlsa_secure(name)
    }

    fn mx_secure<'a>(
        &'a self,
        domain: &'a str,
    ) -> BoxFuture<'a, Result<Secured<Vec<MxRecord>>, DnsError>> {
        self.inner.mx_secure(domain)
    }

    fn ip_secure<'a>(
        &'a self,
        host: &'a str,
    ) -> BoxFuture<'a, Result<Secured<Vec<IpAddr>>, DnsError>> {
        Box::pin(async move {
            let secured = self.inner.ip_secure(host).await?;
            Ok(Secured {
                value: only_public(secured.value)?,
                authenticated: secured.authenticated,
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn internal_addresses_are_not_public() {
        for s in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "0.1.2.3",
            "255.255.255.255",
            "224.0.0.1",
            "240.0.0.1",
            "192.0.2.1",
            "198.18.0.1",
            "192.0.0.8",
            "::1",
            "::",
            "fc00::1",
            "fd12:3456::1",
            "fe80::1",
            "ff02::1",
            "2001:db8::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "64:ff9b::a9fe:a9fe",
            "::10.0.0.1",
        ] {
            assert!(!is_public(ip(s)), "{s}");
        }
    }

    #[test]
    fn internet_addresses_are_public() {
        for s in [
            "8.8.8.8",
            "1.1.1.1",
            "100.128.0.1",
            "172.32.0.1",
            "2a00:1450:4001::1",
            "2606:4700::1111",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
        ] {
            assert!(is_public(ip(s)), "{s}");
        }
    }

    struct Fixed(Vec<IpAddr>);

    impl DnsLookup for Fixed {
        fn txt<'a>(&'a self, _: &'a str) -> BoxFuture<'a, Result<Vec<TxtRr>, DnsError>> {
            Box::pin(async { Err(DnsError::NoData) })
        }
        fn mx<'a>(&'a self, _: &'a str) -> BoxFuture<'a, Result<Vec<MxRecord>, DnsError>> {
            Box::pin(async { Err(DnsError::NoData) })
        }
        fn ip<'a>(&'a self, _: &'a str) -> BoxFuture<'a, Result<Vec<IpAddr>, DnsError>> {
            Box::pin(async { Ok(self.0.clone()) })
        }
        fn tlsa<'a>(&'a self, _: &'a str) -> BoxFuture<'a, Result<Vec<TlsaRecord>, DnsError>> {
            Box::pin(async { Err(DnsError::NoData) })
        }
    }

    #[tokio::test]
    async fn lookups_drop_internal_addresses() {
        let mixed = PublicOnly::new(Arc::new(Fixed(vec![
            ip("10.0.0.5"),
            ip("8.8.8.8"),
            ip("::1"),
        ])));
        assert_eq!(mixed.ip("x.example").await.unwrap(), vec![ip("8.8.8.8")]);
        assert_eq!(
            mixed.ip_secure("x.example").await.unwrap().value,
            vec![ip("8.8.8.8")]
        );
        let internal = PublicOnly::new(Arc::new(Fixed(vec![ip("169.254.169.254")])));
        assert!(matches!(
            internal.ip("x.example").await,
            Err(DnsError::NoData)
        ));
    }
}
