//! Delegated hosting names (RFC 8461 §8.2).
//!
//! A domain owner publishes three CNAMEs once; from then on the service answers for the
//! targets inside its own zone:
//!
//! | owner's name           | CNAME target                           | answered by the service |
//! |------------------------|----------------------------------------|-------------------------|
//! | `_mta-sts.<domain>`    | `_mta-sts.<domain>.t<tenant>.<zone>`   | TXT `v=STSv1; id=…`     |
//! | `mta-sts.<domain>`     | `policy.<zone>` (the policy host)      | A/AAAA, HTTPS           |
//! | `_smtp._tls.<domain>`  | `_smtp._tls.<domain>.t<tenant>.<zone>` | TXT `v=TLSRPTv1; rua=…` |
//!
//! `<tenant>` is the numeric id of the tenant hosting the domain. The TXT targets are bound to
//! it so that CNAMEs an owner left pointing at the service (after the tenant removed the
//! domain, or before it finished signing up) cannot be taken over by another tenant adding
//! the same domain: the service answers under `t<tenant>` only for that tenant's domains, and
//! senders discover a policy only through the TXT record.
//!
//! The zone itself has SOA, NS and A/AAAA at its apex and the name server `ns.<zone>`.

use crate::domain::{DomainError, normalize_domain};

/// The label of the policy host inside the zone.
pub const POLICY_HOST_LABEL: &str = "policy";
/// The label of the service's name server inside the zone.
pub const NAMESERVER_LABEL: &str = "ns";

/// The label right below the apex that binds the TXT targets to a tenant: `t<id>`.
pub fn tenant_label(tenant_id: i64) -> String {
    format!("t{tenant_id}")
}

/// The tenant id of a `t<digits>` label: digits without leading zeros, fitting an `i64`,
/// at least 1. Case-insensitive (`T7` is `t7`).
pub fn parse_tenant_label(label: &str) -> Option<i64> {
    let digits = label
        .strip_prefix('t')
        .or_else(|| label.strip_prefix('T'))?;
    if digits.is_empty() || digits.starts_with('0') || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse::<i64>().ok().filter(|id| *id >= 1)
}

/// The service's DNS zone and the names derived from it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Delegation {
    zone: String,
}

/// Which of the three delegated records a [`DelegationRecord`] is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RecordKind {
    /// `_mta-sts.<domain>` (8461 §3.1).
    StsRecord,
    /// `mta-sts.<domain>`, the HTTPS policy host (8461 §3.2).
    PolicyHost,
    /// `_smtp._tls.<domain>` (RFC 8460 §3).
    TlsRpt,
}

impl RecordKind {
    /// A stable, machine-readable name: `sts_record`, `policy_host`, `tlsrpt`.
    pub fn as_str(self) -> &'static str {
        match self {
            RecordKind::StsRecord => "sts_record",
            RecordKind::PolicyHost => "policy_host",
            RecordKind::TlsRpt => "tlsrpt",
        }
    }
}

/// One CNAME the owner publishes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DelegationRecord {
    /// Which record this is.
    pub kind: RecordKind,
    /// The owner's name, absolute without the trailing dot (`_mta-sts.example.com`).
    pub name: String,
    /// The CNAME target inside the service's zone.
    pub target: String,
}

/// What a query name inside the zone refers to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ZoneName {
    /// The zone apex (SOA, NS).
    Apex,
    /// `ns.<zone>`.
    Nameserver,
    /// `policy.<zone>`.
    PolicyHost,
    /// `_mta-sts.<domain>.t<tenant_id>.<zone>` for the (normalised) domain.
    StsRecord {
        /// The policy domain.
        domain: String,
        /// The tenant named by the `t<id>` label.
        tenant_id: i64,
    },
    /// `_smtp._tls.<domain>.t<tenant_id>.<zone>` for the (normalised) domain.
    TlsRpt {
        /// The policy domain.
        domain: String,
        /// The tenant named by the `t<id>` label.
        tenant_id: i64,
    },
    /// Another name below the apex (it may still be an empty non-terminal).
    Other,
    /// Not in the zone at all.
    Outside,
}

impl Delegation {
    /// The service zone, e.g. `mta-sts.provider.example`; normalised like any domain.
    pub fn new(zone: &str) -> Result<Delegation, DomainError> {
        Ok(Delegation {
            zone: normalize_domain(zone)?,
        })
    }

    /// The zone apex, lowercase, without a trailing dot.
    pub fn zone(&self) -> &str {
        &self.zone
    }

    /// `policy.<zone>`: the host every `mta-sts.<domain>` points at.
    pub fn policy_host(&self) -> String {
        format!("{POLICY_HOST_LABEL}.{}", self.zone)
    }

    /// `ns.<zone>`: the name server named in the zone's NS and SOA records.
    pub fn nameserver(&self) -> String {
        format!("{NAMESERVER_LABEL}.{}", self.zone)
    }

    /// `_mta-sts.<domain>.t<tenant_id>.<zone>`.
    pub fn sts_target(&self, domain: &str, tenant_id: i64) -> String {
        format!(
            "{}.{}.{}",
            crate::sts::record_name(domain),
            tenant_label(tenant_id),
            self.zone
        )
    }

    /// `_smtp._tls.<domain>.t<tenant_id>.<zone>`.
    pub fn tlsrpt_target(&self, domain: &str, tenant_id: i64) -> String {
        format!(
            "{}.{}.{}",
            crate::tlsrpt::record_name(domain),
            tenant_label(tenant_id),
            self.zone
        )
    }

    /// The three CNAMEs the owner of `domain` (already normalised), hosted by the tenant
    /// `tenant_id`, publishes, in the order onboarding shows them.
    pub fn records(&self, domain: &str, tenant_id: i64) -> [DelegationRecord; 3] {
        [
            DelegationRecord {
                kind: RecordKind::StsRecord,
                name: crate::sts::record_name(domain),
                target: self.sts_target(domain, tenant_id),
            },
            DelegationRecord {
                kind: RecordKind::PolicyHost,
                name: crate::sts::policy_host(domain),
                target: self.policy_host(),
            },
            DelegationRecord {
                kind: RecordKind::TlsRpt,
                name: crate::tlsrpt::record_name(domain),
                target: self.tlsrpt_target(domain, tenant_id),
            },
        ]
    }

    /// Classifies a query name (any case, with or without the trailing dot).
    pub fn classify(&self, qname: &str) -> ZoneName {
        let name = qname
            .strip_suffix('.')
            .unwrap_or(qname)
            .to_ascii_lowercase();
        if name == self.zone {
            return ZoneName::Apex;
        }
        let Some(relative) = name
            .strip_suffix(self.zone.as_str())
            .and_then(|rest| rest.strip_suffix('.'))
        else {
            return ZoneName::Outside;
        };
        if relative == NAMESERVER_LABEL {
            return ZoneName::Nameserver;
        }
        if relative == POLICY_HOST_LABEL {
            return ZoneName::PolicyHost;
        }
        let Some((below, tenant)) = relative.rsplit_once('.') else {
            return ZoneName::Other;
        };
        let Some(tenant_id) = parse_tenant_label(tenant) else {
            return ZoneName::Other;
        };
        let owned = |rest: &str| normalize_domain(rest).ok().filter(|d| d == rest);
        if let Some(domain) = below.strip_prefix("_mta-sts.").and_then(owned) {
            return ZoneName::StsRecord { domain, tenant_id };
        }
        if let Some(domain) = below.strip_prefix("_smtp._tls.").and_then(owned) {
            return ZoneName::TlsRpt { domain, tenant_id };
        }
        ZoneName::Other
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn service() -> Delegation {
        Delegation::new("Hosted.Example.NET.").unwrap()
    }

    #[test]
    fn zone_is_normalised() {
        assert_eq!(service().zone(), "hosted.example.net");
        assert!(Delegation::new("").is_err());
        assert!(Delegation::new("bad..zone").is_err());
    }

    #[test]
    fn onboarding_records_point_into_the_zone() {
        let records = service().records("example.com", 42);
        assert_eq!(records[0].name, "_mta-sts.example.com");
        assert_eq!(
            records[0].target,
            "_mta-sts.example.com.t42.hosted.example.net"
        );
        assert_eq!(records[1].name, "mta-sts.example.com");
        assert_eq!(records[1].target, "policy.hosted.example.net");
        assert_eq!(records[2].name, "_smtp._tls.example.com");
        assert_eq!(
            records[2].target,
            "_smtp._tls.example.com.t42.hosted.example.net"
        );
        let kinds: Vec<&str> = records.iter().map(|r| r.kind.as_str()).collect();
        assert_eq!(kinds, ["sts_record", "policy_host", "tlsrpt"]);
    }

    #[test]
    fn every_target_classifies_back_to_its_domain() {
        let s = service();
        for domain in ["example.com", "a.b.example.org", "xn--bcher-kva.example"] {
            for tenant_id in [1, 7, 1234, i64::MAX] {
                assert_eq!(
                    s.classify(&s.sts_target(domain, tenant_id)),
                    ZoneName::StsRecord {
                        domain: domain.to_string(),
                        tenant_id
                    }
                );
                assert_eq!(
                    s.classify(&format!(
                        "{}.",
                        s.tlsrpt_target(domain, tenant_id).to_uppercase()
                    )),
                    ZoneName::TlsRpt {
                        domain: domain.to_string(),
                        tenant_id
                    }
                );
            }
        }
    }

    #[test]
    fn only_canonical_tenant_labels_classify() {
        let s = service();
        // The pre-tenant form (no tenant label) is not a TXT target any more.
        assert_eq!(
            s.classify("_mta-sts.example.com.hosted.example.net"),
            ZoneName::Other
        );
        for bad in [
            "t0",
            "t007",
            "t",
            "t-1",
            "t+1",
            "tx1",
            "x1",
            "1",
            "t1a",
            "t9223372036854775808",
            "t99999999999999999999",
        ] {
            for name in [
                format!("_mta-sts.example.com.{bad}.hosted.example.net"),
                format!("_smtp._tls.example.com.{bad}.hosted.example.net"),
            ] {
                assert_eq!(s.classify(&name), ZoneName::Other, "{name}");
            }
        }
        assert_eq!(
            s.classify("_mta-sts.example.com.T12.hosted.example.net"),
            ZoneName::StsRecord {
                domain: "example.com".to_string(),
                tenant_id: 12
            }
        );
        assert_eq!(parse_tenant_label("t9223372036854775807"), Some(i64::MAX));
        assert_eq!(tenant_label(5), "t5");
    }

    #[test]
    fn fixed_names_classify() {
        let s = service();
        assert_eq!(s.classify("hosted.example.net."), ZoneName::Apex);
        assert_eq!(s.classify("NS.hosted.example.net"), ZoneName::Nameserver);
        assert_eq!(
            s.classify("policy.hosted.example.net"),
            ZoneName::PolicyHost
        );
        assert_eq!(
            s.classify("example.com.hosted.example.net"),
            ZoneName::Other
        );
        assert_eq!(s.classify("_mta-sts.hosted.example.net"), ZoneName::Other);
        assert_eq!(
            s.classify("_mta-sts.t1.hosted.example.net"),
            ZoneName::Other
        );
        assert_eq!(s.classify("t1.hosted.example.net"), ZoneName::Other);
        assert_eq!(
            s.classify("_mta-sts.bad_label.hosted.example.net"),
            ZoneName::Other
        );
        assert_eq!(
            s.classify("_mta-sts.bad_label.t1.hosted.example.net"),
            ZoneName::Other
        );
        assert_eq!(s.classify("example.net"), ZoneName::Outside);
        assert_eq!(s.classify("xhosted.example.net"), ZoneName::Outside);
        assert_eq!(s.classify("_mta-sts.example.com"), ZoneName::Outside);
    }
}
