//! DANE precedence (RFC 8461 §2, rules §8): MTA-STS must never override DANE.
//!
//! When DANE is enabled, a lookup first asks whether DANE applies to the destination the
//! way Postfix decides it (with `smtp_dns_support_level = dnssec`), using the AD bit of the
//! configured validating resolver:
//!
//! 1. **The MX RRset must be DNSSEC-authenticated** ([`DnsLookup::mx_secure`]): Postfix uses
//!    TLSA records only for MX hosts it learned from a validated MX lookup (RFC 7672
//!    §2.2.1). With an unauthenticated MX RRset Postfix does not do DANE, so DANE has no
//!    opinion here and MTA-STS decides (it overrides nothing); answering `dane-only` would
//!    only make Postfix defer the mail. A domain without MX records is its own MX host
//!    (RFC 5321 §5.1, "implicit MX"); its address records take the place of the MX RRset
//!    and must be authenticated ([`DnsLookup::ip_secure`]), as in Postfix. A null MX
//!    (RFC 7505) has no DANE.
//! 2. Then, whether the MX hosts publish DNSSEC-authenticated TLSA records (`_25._tcp.<mx>`,
//!    [`DnsLookup::tlsa_secure`]):
//!
//! * **every** MX host has them → `dane-only`: Postfix requires DANE for every MX, and no
//!   MTA-STS answer can lower that;
//! * **some** do → `dane`: Postfix applies DANE to the MX hosts with usable TLSA records and
//!   opportunistic TLS to the others. `dane-only` would make the hosts without TLSA
//!   undeliverable (a self-inflicted outage whenever the DANE hosts are down), and an
//!   MTA-STS `secure` answer would switch DANE off for the hosts that have it (the
//!   postfix-mta-sts-resolver flaw, C104). One table answer covers all MX hosts of a
//!   destination, so `dane` is the only answer that never overrides DANE and never blocks
//!   a host DANE does not cover; the price is that MTA-STS does not protect the hosts
//!   without TLSA records in such mixed setups;
//! * **none** → no DANE opinion; MTA-STS decides;
//! * a lookup fails temporarily (SERVFAIL, timeout on the MX, address or a TLSA query) →
//!   `TEMP`: we cannot tell whether DANE applies, and answering with MTA-STS might override
//!   it (C106, as postfix-tlspol does). NXDOMAIN and NODATA are answers, not failures.
//!
//! At most [`MAX_MX_HOSTS`] MX hosts are examined.
//!
//! Postfix itself must resolve MX records with DNSSEC (`smtp_dns_support_level = dnssec`)
//! through the same validating resolver, so that it sees the MX RRset as authenticated
//! exactly when this module does.
//!
//! Findings other than temporary failures are reused for `dane_ttl` seconds.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use mtasts_net::dns::DnsLookup;
use mtasts_proto::postfix::TlsLevel;
use serde::Serialize;

/// Most MX hosts examined per destination.
pub const MAX_MX_HOSTS: usize = 16;

/// What the TLSA lookups found.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DaneFinding {
    /// `dane-only`, `dane`, or `None` when DANE does not apply.
    pub level: Option<&'static str>,
    /// A lookup failed temporarily: whether DANE applies is unknown.
    pub temp_error: Option<String>,
    /// The MX RRset (for an implicit MX, the domain's address records) was
    /// DNSSEC-authenticated. Without it DANE does not apply and no TLSA record is looked up.
    pub mx_authenticated: bool,
    /// The domain has no MX records and is its own MX host (RFC 5321 §5.1).
    pub implicit_mx: bool,
    /// Per MX host (empty when the TLSA records were not looked up).
    pub hosts: Vec<DaneHost>,
}

impl DaneFinding {
    /// The Postfix level to answer, when DANE decides.
    pub fn tls_level(&self) -> Option<TlsLevel> {
        match self.level {
            Some("dane-only") => Some(TlsLevel::DaneOnly),
            Some("dane") => Some(TlsLevel::Dane),
            _ => None,
        }
    }
}

/// One MX host's TLSA lookup.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DaneHost {
    /// The MX host name.
    pub host: String,
    /// TLSA records found.
    pub tlsa_records: usize,
    /// Whether the validating DNS resolver authenticated them (AD bit).
    pub authenticated: bool,
    /// A lookup error (NXDOMAIN and NODATA included, for the record).
    pub error: Option<String>,
    /// The error is temporary (SERVFAIL, timeout).
    pub temporary: bool,
}

/// Looks up and remembers DANE findings.
pub struct DaneChecker {
    dns: Arc<dyn DnsLookup>,
    memo: Mutex<HashMap<String, (u64, Arc<DaneFinding>)>>,
    max_entries: usize,
}

impl DaneChecker {
    /// A checker asking `dns` (which must be a validating resolver to be meaningful).
    pub fn new(dns: Arc<dyn DnsLookup>, max_entries: usize) -> Self {
        DaneChecker {
            dns,
            memo: Mutex::new(HashMap::new()),
            max_entries: max_entries.max(1),
        }
    }

    /// The finding for a normalised domain at `now`, reusing one younger than `ttl` seconds.
    pub async fn check(&self, domain: &str, now: u64, ttl: u64) -> Arc<DaneFinding> {
        if let Some((until, finding)) = self.lock().get(domain)
            && now < *until
        {
            return finding.clone();
        }
        let finding = Arc::new(self.lookup(domain).await);
        if finding.temp_error.is_none() && ttl > 0 {
            let mut memo = self.lock();
            if memo.len() >= self.max_entries {
                memo.clear();
            }
            memo.insert(
                domain.to_string(),
                (now.saturating_add(ttl), finding.clone()),
            );
        }
        finding
    }

    /// Forgets every finding (on reload).
    pub fn clear(&self) {
        self.lock().clear();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, (u64, Arc<DaneFinding>)>> {
        self.memo.lock().unwrap_or_else(|p| p.into_inner())
    }

    async fn lookup(&self, domain: &str) -> DaneFinding {
        let temp = |error: String, implicit_mx: bool| DaneFinding {
            level: None,
            temp_error: Some(error),
            mx_authenticated: false,
            implicit_mx,
            hosts: Vec::new(),
        };
        let (hosts, mx_authenticated, implicit_mx) = match self.dns.mx_secure(domain).await {
            Ok(secured) => {
                let mut hosts: Vec<String> = Vec::new();
                for record in secured.value {
                    if !record.exchange.is_empty() && !hosts.contains(&record.exchange) {
                        hosts.push(record.exchange);
                    }
                }
                hosts.truncate(MAX_MX_HOSTS);
                (hosts, secured.authenticated, false)
            }
            Err(e) if e.is_not_found() => {
                // Implicit MX: the address records stand in for the MX RRset.
                let authenticated = match self.dns.ip_secure(domain).await {
                    Ok(secured) => secured.authenticated,
                    // No address either: nothing to deliver to, no DANE.
                    Err(e) if e.is_not_found() => false,
                    Err(e) => return temp(format!("address lookup of {domain}: {e}"), true),
                };
                (vec![domain.to_string()], authenticated, true)
            }
            Err(e) => return temp(format!("MX lookup of {domain}: {e}"), false),
        };
        if !mx_authenticated {
            // Postfix does not use TLSA records behind an unauthenticated MX RRset.
            return DaneFinding {
                level: None,
                temp_error: None,
                mx_authenticated,
                implicit_mx,
                hosts: Vec::new(),
            };
        }
        let lookups = hosts.iter().map(|host| async move {
            let name = format!("_25._tcp.{host}");
            match self.dns.tlsa_secure(&name).await {
                Ok(secured) => DaneHost {
                    host: host.clone(),
                    tlsa_records: secured.value.len(),
                    authenticated: secured.authenticated,
                    error: None,
                    temporary: false,
                },
                Err(e) => DaneHost {
                    host: host.clone(),
                    tlsa_records: 0,
                    authenticated: false,
                    error: Some(e.to_string()),
                    temporary: e.is_temporary(),
                },
            }
        });
        let hosts: Vec<DaneHost> = futures::future::join_all(lookups).await;
        let temp_error = hosts.iter().find(|h| h.temporary).map(|h| {
            format!(
                "TLSA lookup for {}: {}",
                h.host,
                h.error.clone().unwrap_or_default()
            )
        });
        let secured = hosts
            .iter()
            .filter(|h| h.authenticated && h.tlsa_records > 0)
            .count();
        let level = if temp_error.is_some() || secured == 0 {
            None
        } else if secured == hosts.len() {
            Some("dane-only")
        } else {
            Some("dane")
        };
        DaneFinding {
            level,
            temp_error,
            mx_authenticated,
            implicit_mx,
            hosts,
        }
    }
}
