//! Prometheus metrics of `mtasts serve` (text exposition via prometheus-client, the same
//! format and library as the resolver's `/metrics`), served on `metrics_listen`.
//!
//! | Metric | Labels | Meaning |
//! |---|---|---|
//! | `mtasts_serve_policy_requests_total` | `outcome` (`served`, `not_found`, `misdirected`, `method_not_allowed`, `unavailable`) | requests to the HTTPS policy host |
//! | `mtasts_serve_dns_queries_total` | `outcome` (`answered`, `nxdomain`, `refused`, `servfail`, `formerr`, `notimp`, `badvers`, `other`) | DNS queries answered by the authority |
//! | `mtasts_serve_acme_orders_total` | `outcome` (`issued`, `failed`) | certificate orders |
//! | `mtasts_serve_reports_received_total` | `channel` (`https`, `smtp`), `outcome` (`new`, `duplicate`, `invalid`, `refused`, `error`) | TLS and DMARC reports received |
//! | `mtasts_serve_alerts_sent_total` | `channel` (`webhook`, `email`), `outcome` (`sent`, `failed`) | alert deliveries |
//! | `mtasts_serve_certificate_expiry_days` | `domain` | days until the certificate of `mta-sts.<domain>` expires (negative: expired), read from the snapshot at scrape time; the service's own certificate (`reports.<zone>` and `mta-sts.reports.<zone>`) as `domain="reports.<zone>"` |
//! | `mtasts_serve_domains` | — | hosted domains in the current snapshot |
//! | `mtasts_serve_snapshot_fresh` | — | 1 while this node may answer from its snapshot, 0 when it lost the database |
//! | `mtasts_serve_snapshot_generation` | — | the database generation the node serves |
//!
//! Every series of the known label values exists from the start (at 0), so `rate()` and
//! `increase()` see the first event and a dashboard shows zero rather than "no data".

use std::sync::{Arc, Mutex, OnceLock};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::registry::Registry;

use crate::snapshot::{Snapshot, SnapshotHandle};

/// The content type of [`ServeMetrics::encode`].
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Outcomes of a policy host request.
pub const POLICY_OUTCOMES: [&str; 5] = [
    "served",
    "not_found",
    "misdirected",
    "method_not_allowed",
    "unavailable",
];
/// Outcomes of a DNS query (the response code, `answered` for NOERROR).
pub const DNS_OUTCOMES: [&str; 8] = [
    "answered", "nxdomain", "refused", "servfail", "formerr", "notimp", "badvers", "other",
];
/// Outcomes of an ACME order.
pub const ACME_OUTCOMES: [&str; 2] = ["issued", "failed"];
/// Channels a report arrives by.
pub const REPORT_CHANNELS: [&str; 2] = ["https", "smtp"];
/// Outcomes of a received report.
pub const REPORT_OUTCOMES: [&str; 5] = ["new", "duplicate", "invalid", "refused", "error"];
/// Channels an alert is delivered by.
pub const ALERT_CHANNELS: [&str; 2] = ["webhook", "email"];
/// Outcomes of an alert delivery.
pub const ALERT_OUTCOMES: [&str; 2] = ["sent", "failed"];

/// Labels with one `outcome`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: &'static str,
}

/// Labels with a `channel` and an `outcome`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ChannelLabels {
    channel: &'static str,
    outcome: &'static str,
}

/// Labels with one `domain`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DomainLabels {
    domain: String,
}

/// A counter family whose series for the known label values are created up front and kept,
/// so counting one of them is a scan of a short list and one atomic increment (the policy
/// host counts every request) instead of hashing labels under the family's lock.
struct Counted<L> {
    family: Family<L, Counter>,
    known: Vec<(L, Counter)>,
}

impl<L: Clone + std::hash::Hash + Eq + EncodeLabelSet + std::fmt::Debug + Send + Sync + 'static>
    Counted<L>
{
    fn new(registry: &mut Registry, name: &str, help: &str, known: Vec<L>) -> Self {
        let family = Family::<L, Counter>::default();
        registry.register(name, help, family.clone());
        let known = known
            .into_iter()
            .map(|labels| {
                let counter = family.get_or_create(&labels).clone();
                (labels, counter)
            })
            .collect();
        Counted { family, known }
    }

    fn inc(&self, labels: L) {
        match self.known.iter().find(|(known, _)| *known == labels) {
            Some((_, counter)) => {
                counter.inc();
            }
            None => {
                self.family.get_or_create(&labels).inc();
            }
        }
    }
}

struct Inner {
    registry: Registry,
    policy_requests: Counted<OutcomeLabels>,
    dns_queries: Counted<OutcomeLabels>,
    acme_orders: Counted<OutcomeLabels>,
    reports_received: Counted<ChannelLabels>,
    alerts_sent: Counted<ChannelLabels>,
    snapshot: Arc<SnapshotGauges>,
}

/// Every metric of `mtasts serve`. Cheap to clone (one `Arc`); every clone counts into the
/// same registry. `ServeMetrics::default()` is a fresh registry whose snapshot gauges stay
/// empty until [`ServeMetrics::watch`] is called.
#[derive(Clone)]
pub struct ServeMetrics {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for ServeMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServeMetrics").finish_non_exhaustive()
    }
}

impl Default for ServeMetrics {
    fn default() -> Self {
        Self::new()
    }
}

fn outcomes(values: &[&'static str]) -> Vec<OutcomeLabels> {
    values
        .iter()
        .map(|&outcome| OutcomeLabels { outcome })
        .collect()
}

fn channels(channels: &[&'static str], outcomes: &[&'static str]) -> Vec<ChannelLabels> {
    channels
        .iter()
        .flat_map(|&channel| {
            outcomes
                .iter()
                .map(move |&outcome| ChannelLabels { channel, outcome })
        })
        .collect()
}

impl ServeMetrics {
    /// A fresh registry with every metric registered.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("mtasts_serve");
        let policy_requests = Counted::new(
            &mut registry,
            "policy_requests",
            "Requests to the HTTPS policy host by outcome",
            outcomes(&POLICY_OUTCOMES),
        );
        let dns_queries = Counted::new(
            &mut registry,
            "dns_queries",
            "DNS queries answered by the zone's authority, by response",
            outcomes(&DNS_OUTCOMES),
        );
        let acme_orders = Counted::new(
            &mut registry,
            "acme_orders",
            "ACME certificate orders by outcome",
            outcomes(&ACME_OUTCOMES),
        );
        let reports_received = Counted::new(
            &mut registry,
            "reports_received",
            "TLS and DMARC reports received, by channel and outcome",
            channels(&REPORT_CHANNELS, &REPORT_OUTCOMES),
        );
        let alerts_sent = Counted::new(
            &mut registry,
            "alerts_sent",
            "Alert deliveries by channel and outcome",
            channels(&ALERT_CHANNELS, &ALERT_OUTCOMES),
        );
        let snapshot = Arc::new(SnapshotGauges::default());
        registry.register_collector(Box::new(snapshot.clone()));
        ServeMetrics {
            inner: Arc::new(Inner {
                registry,
                policy_requests,
                dns_queries,
                acme_orders,
                reports_received,
                alerts_sent,
                snapshot,
            }),
        }
    }

    /// Reads the certificate, domain and freshness gauges from `snapshot` at every scrape;
    /// the service's own certificate ([`Snapshot::service_certificate`]) is shown under
    /// `service_host` (`reports.<zone>`, the key it is stored under). Only the first call
    /// takes effect (a serve process has one snapshot handle).
    pub fn watch(&self, snapshot: SnapshotHandle, service_host: &str) {
        let _ = self
            .inner
            .snapshot
            .handle
            .set((snapshot, service_host.to_owned()));
    }

    /// The OpenMetrics text exposition of every metric.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.inner.registry);
        out
    }

    /// Counts a request to the policy host ([`POLICY_OUTCOMES`]).
    pub fn policy_request(&self, outcome: &'static str) {
        self.inner.policy_requests.inc(OutcomeLabels { outcome });
    }

    /// Counts a DNS query answered by the authority ([`DNS_OUTCOMES`]).
    pub fn dns_query(&self, outcome: &'static str) {
        self.inner.dns_queries.inc(OutcomeLabels { outcome });
    }

    /// Counts a finished ACME order ([`ACME_OUTCOMES`]).
    pub fn acme_order(&self, outcome: &'static str) {
        self.inner.acme_orders.inc(OutcomeLabels { outcome });
    }

    /// Counts a received report ([`REPORT_CHANNELS`], [`REPORT_OUTCOMES`]).
    pub fn report_received(&self, channel: &'static str, outcome: &'static str) {
        self.inner
            .reports_received
            .inc(ChannelLabels { channel, outcome });
    }

    /// Counts an alert delivery ([`ALERT_CHANNELS`], [`ALERT_OUTCOMES`]).
    pub fn alert_sent(&self, channel: &'static str, outcome: &'static str) {
        self.inner
            .alerts_sent
            .inc(ChannelLabels { channel, outcome });
    }
}

/// The gauges read from the snapshot at scrape time. Certificate expiry dates are parsed
/// once per snapshot (a scrape of an unchanged snapshot parses nothing).
#[derive(Debug, Default)]
struct SnapshotGauges {
    /// The snapshot, and the name the service's own certificate is shown under.
    handle: OnceLock<(SnapshotHandle, String)>,
    /// The snapshot the expiry dates were read from, and the dates (domain, not-after in
    /// Unix seconds), sorted by domain.
    expiry: Mutex<Option<(Arc<Snapshot>, ExpiryDates)>>,
}

/// (domain, certificate not-after in Unix seconds), sorted by domain.
type ExpiryDates = Arc<Vec<(String, i64)>>;

impl SnapshotGauges {
    fn expiry_dates(&self, snapshot: &Arc<Snapshot>, service_host: &str) -> ExpiryDates {
        let mut cached = self.expiry.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((seen, dates)) = cached.as_ref()
            && Arc::ptr_eq(seen, snapshot)
        {
            return dates.clone();
        }
        let mut dates: Vec<(String, i64)> = snapshot
            .domains
            .values()
            .filter_map(|domain| {
                let certificate = domain.certificate.as_ref()?;
                Some((
                    domain.name.clone(),
                    not_after(certificate.end_entity_cert().ok()?)?,
                ))
            })
            .collect();
        // The service's own certificate: when it lapses, senders' STARTTLS to the report
        // host and the HTTPS intake fail for every tenant at once. A hosted domain cannot
        // have its name (the zone's own names are refused), so the series is its own.
        if let Some(certificate) = &snapshot.service_certificate
            && let Some(end) = certificate.end_entity_cert().ok().and_then(not_after)
        {
            dates.push((service_host.to_owned(), end));
        }
        dates.sort();
        let dates = Arc::new(dates);
        *cached = Some((snapshot.clone(), dates.clone()));
        dates
    }
}

/// The end of a certificate's validity, in Unix seconds.
fn not_after(der: &rustls_pki_types::CertificateDer<'_>) -> Option<i64> {
    let (_, certificate) = x509_parser::parse_x509_certificate(der.as_ref()).ok()?;
    Some(certificate.validity().not_after.timestamp())
}

impl Collector for SnapshotGauges {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let Some((handle, service_host)) = self.handle.get() else {
            return Ok(());
        };
        let snapshot = handle.load_full();
        let gauge = |encoder: &mut DescriptorEncoder, name, help, value: i64| {
            let gauge = ConstGauge::new(value);
            let metric = encoder.encode_descriptor(name, help, None, MetricType::Gauge)?;
            gauge.encode(metric)
        };
        gauge(
            &mut encoder,
            "domains",
            "Hosted domains in the snapshot this node answers from",
            i64::try_from(snapshot.domains.len()).unwrap_or(i64::MAX),
        )?;
        gauge(
            &mut encoder,
            "snapshot_fresh",
            "1 while this node may answer from its snapshot, 0 once it lost the database",
            i64::from(snapshot.is_fresh()),
        )?;
        gauge(
            &mut encoder,
            "snapshot_generation",
            "The database generation this node answers from",
            i64::try_from(snapshot.generation).unwrap_or(i64::MAX),
        )?;
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let dates = self.expiry_dates(&snapshot, service_host);
        let family = Family::<DomainLabels, Gauge<f64, std::sync::atomic::AtomicU64>>::default();
        for (domain, not_after) in dates.iter() {
            family
                .get_or_create(&DomainLabels {
                    domain: domain.clone(),
                })
                .set(days_between(now, *not_after));
        }
        let metric = encoder.encode_descriptor(
            "certificate_expiry_days",
            "Days until the certificate of mta-sts.<domain> (or the service's own, under reports.<zone>) expires (negative once expired)",
            None,
            MetricType::Gauge,
        )?;
        family.encode(metric)
    }
}

/// Days from `now` to `then` (Unix seconds), with a fraction, negative when `then` is past.
fn days_between(now: i64, then: i64) -> f64 {
    (then - now) as f64 / 86_400.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_family_is_exposed_from_the_start() {
        let metrics = ServeMetrics::new();
        let text = metrics.encode();
        for line in [
            "mtasts_serve_policy_requests_total{outcome=\"served\"} 0",
            "mtasts_serve_dns_queries_total{outcome=\"nxdomain\"} 0",
            "mtasts_serve_acme_orders_total{outcome=\"issued\"} 0",
            "mtasts_serve_reports_received_total{channel=\"smtp\",outcome=\"duplicate\"} 0",
            "mtasts_serve_alerts_sent_total{channel=\"webhook\",outcome=\"failed\"} 0",
        ] {
            assert!(text.contains(line), "{line} missing from\n{text}");
        }
        // No snapshot watched: no snapshot gauges.
        assert!(!text.contains("mtasts_serve_domains"), "{text}");
        assert!(text.ends_with("# EOF\n"), "{text}");
    }

    #[test]
    fn counts_known_and_unknown_outcomes() {
        let metrics = ServeMetrics::new();
        let clone = metrics.clone();
        metrics.policy_request("served");
        clone.policy_request("served");
        metrics.dns_query("yxdomain");
        metrics.report_received("https", "new");
        metrics.alert_sent("email", "sent");
        metrics.acme_order("failed");
        let text = metrics.encode();
        for line in [
            "mtasts_serve_policy_requests_total{outcome=\"served\"} 2",
            "mtasts_serve_dns_queries_total{outcome=\"yxdomain\"} 1",
            "mtasts_serve_reports_received_total{channel=\"https\",outcome=\"new\"} 1",
            "mtasts_serve_alerts_sent_total{channel=\"email\",outcome=\"sent\"} 1",
            "mtasts_serve_acme_orders_total{outcome=\"failed\"} 1",
        ] {
            assert!(text.contains(line), "{line} missing from\n{text}");
        }
    }

    #[test]
    fn days_are_signed_fractions() {
        assert_eq!(days_between(0, 86_400 * 30), 30.0);
        assert_eq!(days_between(86_400, 43_200), -0.5);
    }

    #[test]
    fn snapshot_gauges_follow_the_handle() {
        let metrics = ServeMetrics::new();
        let handle = crate::snapshot::handle(Snapshot {
            generation: 7,
            ..Snapshot::default()
        });
        metrics.watch(handle.clone(), "reports.zone.example");
        let text = metrics.encode();
        assert!(text.contains("mtasts_serve_domains 0\n"), "{text}");
        assert!(text.contains("mtasts_serve_snapshot_fresh 1\n"), "{text}");
        assert!(
            text.contains("mtasts_serve_snapshot_generation 7\n"),
            "{text}"
        );
        assert!(
            text.contains("# TYPE mtasts_serve_certificate_expiry_days gauge"),
            "{text}"
        );
        handle.store(Arc::new(Snapshot {
            generation: 8,
            ..Snapshot::default()
        }));
        assert!(
            metrics
                .encode()
                .contains("mtasts_serve_snapshot_generation 8\n")
        );
    }

    #[test]
    fn certificate_expiry_per_domain() {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params =
            rcgen::CertificateParams::new(vec!["mta-sts.example.com".to_owned()]).unwrap();
        let in_ten_days = time::OffsetDateTime::now_utc() + time::Duration::days(10);
        params.not_after = in_ten_days;
        let cert = params.self_signed(&key).unwrap();
        let certified =
            crate::policy_host::certified_key_from_pem(&cert.pem(), &key.serialize_pem()).unwrap();
        let domain = crate::snapshot::HostedDomain {
            name: "example.com".to_owned(),
            tenant_id: 1,
            policy_body: Arc::from(""),
            txt_id: None,
            tlsrpt: None,
            certificate: Some(certified),
            reports_to_service: false,
        };
        let mut without = domain.clone();
        without.name = "pending.example".to_owned();
        without.certificate = None;
        let metrics = ServeMetrics::new();
        let handle = crate::snapshot::handle(Snapshot {
            domains: [domain, without]
                .into_iter()
                .map(|d| (d.name.clone(), d))
                .collect(),
            ..Snapshot::default()
        });
        metrics.watch(handle.clone(), "reports.zone.example");
        let text = metrics.encode();
        assert!(text.contains("mtasts_serve_domains 2\n"), "{text}");
        let days = |text: &str, domain: &str| -> Option<f64> {
            let series = format!("mtasts_serve_certificate_expiry_days{{domain=\"{domain}\"}} ");
            let line = text.lines().find(|l| l.starts_with(&series))?;
            Some(line[series.len()..].parse().unwrap())
        };
        let left = days(&text, "example.com").unwrap_or_else(|| panic!("{text}"));
        assert!((9.99..=10.0).contains(&left), "{left}");
        assert!(!text.contains("pending.example"), "{text}");
        // No service certificate yet (ACME has not issued it): no series for it.
        assert_eq!(days(&text, "reports.zone.example"), None, "{text}");

        // The service's own certificate, 40 days from expiry, once it is in the snapshot.
        let mut params = rcgen::CertificateParams::new(vec![
            "reports.zone.example".to_owned(),
            "mta-sts.reports.zone.example".to_owned(),
        ])
        .unwrap();
        params.not_after = time::OffsetDateTime::now_utc() + time::Duration::days(40);
        let cert = params.self_signed(&key).unwrap();
        let service =
            crate::policy_host::certified_key_from_pem(&cert.pem(), &key.serialize_pem()).unwrap();
        let mut next = (*handle.load_full()).clone();
        next.service_certificate = Some(service);
        handle.store(Arc::new(next));
        let text = metrics.encode();
        let left = days(&text, "reports.zone.example").unwrap_or_else(|| panic!("{text}"));
        assert!((39.99..=40.0).contains(&left), "{left}");
        assert!(days(&text, "example.com").is_some(), "{text}");
    }
}
