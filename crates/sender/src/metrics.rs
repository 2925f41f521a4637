//! Prometheus metrics (text exposition via prometheus-client), served at `/metrics`.
//!
//! | Metric | Labels | Meaning |
//! |---|---|---|
//! | `mtasts_lookups_total` | `protocol` (`socketmap`, `http`, `query`), `answer` (`ok`, `notfound`, `temp`, `perm`), `source` | answered lookups |
//! | `mtasts_lookup_duration_seconds` | `protocol` | time to answer one lookup |
//! | `mtasts_cache_requests_total` | `result` (`hit`, `miss`, `negative`) | policy cache consultations |
//! | `mtasts_discoveries_total` | `outcome`, `result_type` (RFC 8460, empty when none) | TXT lookups plus fetches |
//! | `mtasts_refreshes_total` | `outcome` | refresh-ahead runs |
//! | `mtasts_store_fallback` | — | 1 while the configured store is unavailable and memory is used |
//! | `mtasts_store_fallback_transitions_total` | — | times the store went away |
//! | `mtasts_connections_open` | `protocol` | open socketmap connections |
//! | `mtasts_socketmap_errors_total` | `kind` | connections closed for malformed or oversized input, timeouts |
//! | `mtasts_resolver_tlsrpt_results_total` | `outcome` (`success`, `failure`) | TLS-RPT policy results collected (datagram or HTTP) |
//! | `mtasts_resolver_tlsrpt_datagrams_dropped_total` | `kind` | TLS-RPT datagrams dropped: malformed or oversized (the parser's kind), or `backlog` (too many results not yet committed) |
//! | `mtasts_resolver_tlsrpt_pending_results` | — | TLS-RPT results held in memory, not yet committed |
//! | `mtasts_resolver_tlsrpt_commits_total` | `outcome` (`ok`, `error`) | batches of TLS-RPT results written to the store |
//! | `mtasts_resolver_tlsrpt_reports_built_total` | — | TLS reports built and stored (one per day, domain and record) |
//! | `mtasts_resolver_tlsrpt_deliveries_total` | `scheme` (`https`, `mailto`), `outcome` (`delivered`, `retry`, `gave_up`, `suppressed`) | TLS report delivery attempts |
//! | `mtasts_resolver_inbound_requests_total` | `outcome` (`no-rule`, `satisfied`, `refused`, `too-early`, `malformed`) | inbound policy requests (sessions checked) |
//! | `mtasts_resolver_inbound_refusals_total` | `rule` (`sender partner.example`, `client …`, `network …`) | inbound sessions refused, by rule |

use std::sync::OnceLock;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// Labels of `mtasts_lookups_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct LookupLabels {
    /// `socketmap`, `http` or `query`.
    pub protocol: &'static str,
    /// `ok`, `notfound`, `temp` or `perm`.
    pub answer: &'static str,
    /// Where the decision came from.
    pub source: &'static str,
}

/// Labels with one `protocol`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ProtocolLabels {
    /// The protocol.
    pub protocol: &'static str,
}

/// Labels of `mtasts_discoveries_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DiscoveryLabels {
    /// `policy`, `no-record`, `dns-error`, `fetch-error`, `invalid`, `backoff`, `unchanged`.
    pub outcome: &'static str,
    /// The RFC 8460 result type, or empty.
    pub result_type: String,
}

/// One label called `result`, `outcome` or `kind`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabels {
    /// The value.
    pub result: &'static str,
}

/// Labels of `mtasts_refreshes_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabels {
    /// The value.
    pub outcome: &'static str,
}

/// Labels of `mtasts_socketmap_errors_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabels {
    /// The value.
    pub kind: &'static str,
}

/// Labels of `mtasts_resolver_tlsrpt_deliveries_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TlsrptDeliveryLabels {
    /// `https` or `mailto`.
    pub scheme: &'static str,
    /// `delivered`, `retry`, `gave_up` or `suppressed`.
    pub outcome: &'static str,
}

/// Labels of `mtasts_resolver_inbound_refusals_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RuleLabels {
    /// The rule (`sender partner.example`).
    pub rule: String,
}

/// Every metric of the daemon.
pub struct Metrics {
    registry: Registry,
    /// Answered lookups.
    pub lookups: Family<LookupLabels, Counter>,
    /// Lookup latency.
    pub lookup_duration: Family<ProtocolLabels, Histogram>,
    /// Cache consultations.
    pub cache: Family<ResultLabels, Counter>,
    /// Discoveries.
    pub discoveries: Family<DiscoveryLabels, Counter>,
    /// Refresh-ahead runs.
    pub refreshes: Family<OutcomeLabels, Counter>,
    /// 1 while the memory fallback store is in use.
    pub store_fallback: Gauge,
    /// Times the configured store went away.
    pub store_fallback_transitions: Counter,
    /// Open connections.
    pub connections: Family<ProtocolLabels, Gauge>,
    /// Connection-level errors.
    pub socketmap_errors: Family<KindLabels, Counter>,
    /// TLS-RPT policy results collected, by `outcome`.
    pub tlsrpt_results: Family<OutcomeLabels, Counter>,
    /// TLS-RPT datagrams dropped, by `kind`.
    pub tlsrpt_datagrams_dropped: Family<KindLabels, Counter>,
    /// TLS-RPT results held in memory, not yet committed.
    pub tlsrpt_pending_results: Gauge,
    /// Batches of TLS-RPT results written, by `outcome`.
    pub tlsrpt_commits: Family<OutcomeLabels, Counter>,
    /// TLS reports built and stored.
    pub tlsrpt_reports_built: Counter,
    /// TLS report delivery attempts by scheme and outcome.
    pub tlsrpt_deliveries: Family<TlsrptDeliveryLabels, Counter>,
    /// Inbound policy requests by outcome.
    pub inbound_requests: Family<OutcomeLabels, Counter>,
    /// Inbound refusals by rule.
    pub inbound_refusals: Family<RuleLabels, Counter>,
    /// Handles of the series every lookup touches, resolved once (see [`Handles`]).
    handles: Handles,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// A fresh registry with every metric registered.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("mtasts");
        let lookups = Family::<LookupLabels, Counter>::default();
        registry.register("lookups", "Answered lookups", lookups.clone());
        let lookup_duration = Family::<ProtocolLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.0005, 4.0, 10))
        });
        registry.register(
            "lookup_duration_seconds",
            "Time to answer one lookup",
            lookup_duration.clone(),
        );
        let cache = Family::<ResultLabels, Counter>::default();
        registry.register(
            "cache_requests",
            "Policy cache consultations by result",
            cache.clone(),
        );
        let discoveries = Family::<DiscoveryLabels, Counter>::default();
        registry.register(
            "discoveries",
            "MTA-STS discoveries (TXT lookup and policy fetch) by outcome and RFC 8460 result type",
            discoveries.clone(),
        );
        let refreshes = Family::<OutcomeLabels, Counter>::default();
        registry.register(
            "refreshes",
            "Refresh-ahead runs by outcome",
            refreshes.clone(),
        );
        let store_fallback = Gauge::default();
        registry.register(
            "store_fallback",
            "1 while the configured cache store is unavailable and an in-memory store is used",
            store_fallback.clone(),
        );
        let store_fallback_transitions = Counter::default();
        registry.register(
            "store_fallback_transitions",
            "Times the configured cache store became unavailable",
            store_fallback_transitions.clone(),
        );
        let connections = Family::<ProtocolLabels, Gauge>::default();
        registry.register("connections_open", "Open connections", connections.clone());
        let socketmap_errors = Family::<KindLabels, Counter>::default();
        registry.register(
            "socketmap_errors",
            "Socketmap connections closed because of bad input or timeouts",
            socketmap_errors.clone(),
        );
        let tlsrpt_results = Family::<OutcomeLabels, Counter>::default();
        registry.register(
            "resolver_tlsrpt_results",
            "TLS-RPT policy results collected (datagrams and HTTP), by outcome",
            tlsrpt_results.clone(),
        );
        let tlsrpt_datagrams_dropped = Family::<KindLabels, Counter>::default();
        registry.register(
            "resolver_tlsrpt_datagrams_dropped",
            "TLS-RPT datagrams dropped: malformed, oversized, or beyond the backlog bound",
            tlsrpt_datagrams_dropped.clone(),
        );
        let tlsrpt_pending_results = Gauge::default();
        registry.register(
            "resolver_tlsrpt_pending_results",
            "TLS-RPT results held in memory and not yet committed",
            tlsrpt_pending_results.clone(),
        );
        let tlsrpt_commits = Family::<OutcomeLabels, Counter>::default();
        registry.register(
            "resolver_tlsrpt_commits",
            "Batches of TLS-RPT results written to the store, by outcome",
            tlsrpt_commits.clone(),
        );
        let tlsrpt_reports_built = Counter::default();
        registry.register(
            "resolver_tlsrpt_reports_built",
            "TLS reports built and stored (one per UTC day, recipient domain and TLSRPT record)",
            tlsrpt_reports_built.clone(),
        );
        let tlsrpt_deliveries = Family::<TlsrptDeliveryLabels, Counter>::default();
        registry.register(
            "resolver_tlsrpt_deliveries",
            "TLS report delivery attempts by scheme and outcome",
            tlsrpt_deliveries.clone(),
        );

        let inbound_requests = Family::<OutcomeLabels, Counter>::default();
        registry.register(
            "resolver_inbound_requests",
            "Inbound TLS policy requests (Postfix check_policy_service) by outcome",
            inbound_requests.clone(),
        );
        let inbound_refusals = Family::<RuleLabels, Counter>::default();
        registry.register(
            "resolver_inbound_refusals",
            "Inbound sessions refused by the inbound TLS policy, by rule",
            inbound_refusals.clone(),
        );
        // Zero but present, so dashboards and alert rules see the series before the first
        // event (label values that depend on configuration or input are created when seen).
        for outcome in ["success", "failure"] {
            let _ = tlsrpt_results.get_or_create(&OutcomeLabels { outcome });
        }
        for outcome in ["ok", "error"] {
            let _ = tlsrpt_commits.get_or_create(&OutcomeLabels { outcome });
        }
        let _ = tlsrpt_datagrams_dropped.get_or_create(&KindLabels { kind: "backlog" });
        for scheme in ["https", "mailto"] {
            for outcome in ["delivered", "retry", "gave_up", "suppressed"] {
                let _ = tlsrpt_deliveries.get_or_create(&TlsrptDeliveryLabels { scheme, outcome });
            }
        }
        for outcome in ["no-rule", "satisfied", "refused", "too-early", "malformed"] {
            let _ = inbound_requests.get_or_create(&OutcomeLabels { outcome });
        }
        Metrics {
            inbound_requests,
            inbound_refusals,
            handles: Handles::default(),
            tlsrpt_results,
            tlsrpt_datagrams_dropped,
            tlsrpt_pending_results,
            tlsrpt_commits,
            registry,
            lookups,
            lookup_duration,
            cache,
            discoveries,
            refreshes,
            store_fallback,
            store_fallback_transitions,
            connections,
            socketmap_errors,
            tlsrpt_reports_built,
            tlsrpt_deliveries,
        }
    }

    /// The OpenMetrics text exposition of every metric.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }

    /// Counts a cache consultation.
    pub fn cache_result(&self, result: &'static str) {
        match position(&RESULTS, result) {
            Some(i) => self.handles.cache[i]
                .get_or_init(|| self.cache.get_or_create(&ResultLabels { result }).clone())
                .inc(),
            None => self.cache.get_or_create(&ResultLabels { result }).inc(),
        };
    }

    /// Counts one answered lookup and records how long it took.
    pub fn lookup_answered(
        &self,
        protocol: &'static str,
        answer: &'static str,
        source: &'static str,
        seconds: f64,
    ) {
        let labels = || LookupLabels {
            protocol,
            answer,
            source,
        };
        let p = position(&PROTOCOLS, protocol);
        match (p, position(&ANSWERS, answer), position(&SOURCES, source)) {
            (Some(p), Some(a), Some(s)) => {
                self.handles.lookups[(p * ANSWERS.len() + a) * SOURCES.len() + s]
                    .get_or_init(|| self.lookups.get_or_create(&labels()).clone())
                    .inc();
            }
            _ => {
                self.lookups.get_or_create(&labels()).inc();
            }
        }
        let duration = || {
            self.lookup_duration
                .get_or_create(&ProtocolLabels { protocol })
                .clone()
        };
        match p {
            Some(p) => self.handles.durations[p]
                .get_or_init(duration)
                .observe(seconds),
            None => duration().observe(seconds),
        }
    }

    /// Counts one TLS report delivery attempt.
    pub fn tlsrpt_delivery(&self, scheme: &'static str, outcome: &'static str) {
        self.tlsrpt_deliveries
            .get_or_create(&TlsrptDeliveryLabels { scheme, outcome })
            .inc();
    }

    /// Counts an inbound policy request by outcome.
    pub fn inbound_request(&self, outcome: &'static str) {
        self.inbound_requests
            .get_or_create(&OutcomeLabels { outcome })
            .inc();
    }

    /// Counts an inbound refusal by the rule that refused (bounded by the configuration).
    pub fn inbound_refusal(&self, rule: &str) {
        self.inbound_refusals
            .get_or_create(&RuleLabels {
                rule: rule.to_owned(),
            })
            .inc();
    }

    /// Counts a socketmap connection error.
    pub fn socketmap_error(&self, kind: &'static str) {
        self.socketmap_errors
            .get_or_create(&KindLabels { kind })
            .inc();
    }
}

/// The content type of [`Metrics::encode`].
/// The label values of the series in [`Handles`]; others take the families' own lookup.
const PROTOCOLS: [&str; 3] = ["socketmap", "http", "query"];
const ANSWERS: [&str; 4] = ["ok", "notfound", "temp", "perm"];
const SOURCES: [&str; 8] = [
    "key", "static", "dane", "cache", "fresh", "negative", "none", "internal",
];
const RESULTS: [&str; 3] = ["hit", "miss", "negative"];

/// Series resolved on first use and kept, so a lookup counts itself with a few atomic
/// increments instead of hashing labels under the families' locks (the socketmap's
/// per-request cost, docs/benchmarks.md). A series appears in the exposition when first
/// used, exactly as through `get_or_create`.
struct Handles {
    lookups: Vec<OnceLock<Counter>>,
    durations: [OnceLock<Histogram>; PROTOCOLS.len()],
    cache: [OnceLock<Counter>; RESULTS.len()],
}

impl Default for Handles {
    fn default() -> Self {
        Handles {
            lookups: (0..PROTOCOLS.len() * ANSWERS.len() * SOURCES.len())
                .map(|_| OnceLock::new())
                .collect(),
            durations: Default::default(),
            cache: Default::default(),
        }
    }
}

fn position(values: &[&str], value: &str) -> Option<usize> {
    values.iter().position(|v| *v == value)
}

pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposition_names_every_family() {
        let metrics = Metrics::new();
        metrics
            .lookups
            .get_or_create(&LookupLabels {
                protocol: "socketmap",
                answer: "ok",
                source: "fresh",
            })
            .inc();
        metrics.cache_result("hit");
        metrics.store_fallback.set(1);
        metrics
            .lookup_duration
            .get_or_create(&ProtocolLabels {
                protocol: "socketmap",
            })
            .observe(0.01);
        let text = metrics.encode();
        assert!(
            text.contains(
                "mtasts_lookups_total{protocol=\"socketmap\",answer=\"ok\",source=\"fresh\"} 1"
            ),
            "{text}"
        );
        assert!(
            text.contains("mtasts_cache_requests_total{result=\"hit\"} 1"),
            "{text}"
        );
        assert!(text.contains("mtasts_store_fallback 1"), "{text}");
        assert!(
            text.contains("mtasts_lookup_duration_seconds_bucket"),
            "{text}"
        );
        assert!(text.ends_with("# EOF\n"), "{text}");
    }
}
