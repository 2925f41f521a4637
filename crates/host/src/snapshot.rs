//! What every listener of a `serve` node answers from: one immutable picture of the hosted
//! domains, swapped whole when the database changes.
//!
//! The node's loader builds a [`Snapshot`] from the database and stores it in the shared
//! [`SnapshotHandle`]; the DNS authority, the HTTPS policy host and the ACME HTTP-01 listener
//! only read. A reader never sees half of a change: it loads one `Arc<Snapshot>` per request.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use arc_swap::ArcSwap;
use mtasts_proto::hosted::reporting::ReportAddresses;
use mtasts_proto::sts::policy::Mode;
use rustls::sign::CertifiedKey;

/// The shared, swappable current snapshot.
pub type SnapshotHandle = Arc<ArcSwap<Snapshot>>;

/// Creates a handle holding `snapshot`.
pub fn handle(snapshot: Snapshot) -> SnapshotHandle {
    Arc::new(ArcSwap::from_pointee(snapshot))
}

/// The state of all hosted domains at one database generation.
#[derive(Clone, Debug, Default)]
pub struct Snapshot {
    /// The database generation this snapshot was built from; also the zone's SOA serial
    /// (truncated to 32 bits).
    pub generation: u64,
    /// Hosted domains by normalised name (lowercase A-labels, no trailing dot).
    pub domains: HashMap<String, HostedDomain>,
    /// Pending ACME challenges.
    pub challenges: Challenges,
    /// Whether this node may still answer from the snapshot (`None`: always, for snapshots
    /// built by hand). See [`Freshness`].
    pub freshness: Option<Arc<Freshness>>,
    /// The service's own certificate, for `reports.<zone>` and `mta-sts.reports.<zone>`
    /// ([`ReportAddresses`]): the HTTPS policy host presents it for those two names, the
    /// SMTP intake for STARTTLS. `None` until ACME has issued it (or without ACME).
    pub service_certificate: Option<Arc<CertifiedKey>>,
}

impl Snapshot {
    /// Whether the listeners may answer from this snapshot now.
    pub fn is_fresh(&self) -> bool {
        self.freshness.as_ref().is_none_or(|f| f.is_fresh())
    }
}

/// How long a node may keep answering without reaching the database.
///
/// Other nodes publish a new TXT id once every node that reported recently serves the new
/// policy (RFC 8461 §8.1). A node that can no longer report drops out of that set after the
/// live window, so it must stop answering before then: otherwise a sender could get the new
/// id from one node and the old policy from this one, and cache that pair for `max_age`.
/// The node extends the deadline after every successful report; the listeners refuse
/// (SERVFAIL, 503) once it has passed.
#[derive(Debug)]
pub struct Freshness {
    origin: Instant,
    /// Milliseconds after `origin` until which answering is allowed.
    until_ms: AtomicU64,
}

impl Freshness {
    /// A deadline that has already passed: nothing is answered until the first report.
    pub fn new() -> Freshness {
        Freshness {
            origin: Instant::now(),
            until_ms: AtomicU64::new(0),
        }
    }

    /// Allows answering until `deadline`.
    pub fn extend_to(&self, deadline: Instant) {
        let ms = deadline.saturating_duration_since(self.origin).as_millis();
        self.until_ms
            .store(u64::try_from(ms).unwrap_or(u64::MAX), Ordering::Release);
    }

    /// Whether the deadline is still ahead.
    pub fn is_fresh(&self) -> bool {
        let now = self.origin.elapsed().as_millis();
        u128::from(self.until_ms.load(Ordering::Acquire)) > now
    }
}

impl Default for Freshness {
    fn default() -> Self {
        Freshness::new()
    }
}

/// One hosted domain as the listeners see it.
#[derive(Clone, Debug)]
pub struct HostedDomain {
    /// The policy domain (`example.com`).
    pub name: String,
    /// The tenant hosting the domain: its TXT names are `_mta-sts.<name>.t<tenant_id>.<zone>`
    /// and `_smtp._tls.<name>.t<tenant_id>.<zone>`.
    pub tenant_id: i64,
    /// The newest policy body, CRLF line endings: served at
    /// `https://mta-sts.<name>/.well-known/mta-sts.txt` as soon as this node has it.
    pub policy_body: Arc<str>,
    /// The `id` the `_mta-sts` TXT record carries: the newest version that every live node
    /// serves (RFC 8461 §8.1). `None` until the first version has reached every node: then
    /// the TXT name exists but has no TXT record (NODATA).
    pub txt_id: Option<String>,
    /// The full `_smtp._tls` TXT value (`v=TLSRPTv1; rua=…`: the service's own addresses
    /// unless the owner opted out, then the owner's own), when there is any `rua` to publish.
    pub tlsrpt: Option<String>,
    /// Whether the TLS-RPT record names the service's own report addresses.
    pub reports_to_service: bool,
    /// The certificate for `mta-sts.<name>`, once ACME has issued one.
    pub certificate: Option<Arc<CertifiedKey>>,
}

/// ACME challenges this node must answer (any node may be the one the CA reaches).
#[derive(Clone, Debug, Default)]
pub struct Challenges {
    /// HTTP-01: token → key authorization, served at `/.well-known/acme-challenge/<token>`.
    pub http01: HashMap<String, String>,
    /// TLS-ALPN-01: host name (`mta-sts.<domain>`) → the `acme-tls/1` certificate.
    pub tls_alpn01: HashMap<String, Arc<CertifiedKey>>,
}

/// The fixed, configured facts of the service's DNS zone and policy host.
#[derive(Clone, Debug)]
pub struct ZoneSettings {
    /// The delegation names (`--zone`).
    pub delegation: mtasts_proto::hosted::delegation::Delegation,
    /// Public addresses of the policy host and the name server (`--public-ip`).
    pub public_ips: Vec<IpAddr>,
    /// TTL of every record the zone serves, in seconds.
    pub ttl: u32,
    /// Whether the SMTP intake listens: then the report host has an MX record and the
    /// published `rua` URIs include the `mailto:` ones.
    pub report_mail: bool,
    /// The mode of the report host's own MTA-STS policy (`report_policy_mode`).
    pub own_policy_mode: Mode,
}

impl ZoneSettings {
    /// The service's report addresses in this zone.
    pub fn reports(&self) -> ReportAddresses {
        ReportAddresses::new(&self.delegation)
    }

    /// The `_smtp._tls` TXT value of a hosted domain whose owner gave `owner_rua` and chose
    /// `to_service`; `None` when there is no `rua` to publish.
    pub fn tlsrpt_record(&self, owner_rua: Option<&str>, to_service: bool) -> Option<String> {
        self.reports()
            .tlsrpt_rua(owner_rua, to_service, self.report_mail)
            .map(|rua| mtasts_proto::tlsrpt::record::record_text(&rua))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(report_mail: bool) -> ZoneSettings {
        ZoneSettings {
            delegation: mtasts_proto::hosted::delegation::Delegation::new("zone.example").unwrap(),
            public_ips: Vec::new(),
            ttl: 300,
            report_mail,
            own_policy_mode: Mode::Testing,
        }
    }

    #[test]
    fn the_published_tlsrpt_record_follows_the_owner_and_the_mail_intake() {
        let with_mail = settings(true);
        assert_eq!(with_mail.reports().host(), "reports.zone.example");
        assert_eq!(
            with_mail
                .tlsrpt_record(Some("mailto:me@example.com"), true)
                .as_deref(),
            Some(
                "v=TLSRPTv1; rua=mailto:tlsrpt@reports.zone.example,https://reports.zone.example/tlsrpt,mailto:me@example.com"
            )
        );
        assert_eq!(
            with_mail
                .tlsrpt_record(Some("mailto:me@example.com"), false)
                .as_deref(),
            Some("v=TLSRPTv1; rua=mailto:me@example.com")
        );
        assert_eq!(with_mail.tlsrpt_record(None, false), None);
        assert_eq!(
            settings(false).tlsrpt_record(None, true).as_deref(),
            Some("v=TLSRPTv1; rua=https://reports.zone.example/tlsrpt")
        );
    }
}
