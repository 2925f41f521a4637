//! The record of a lookup: the policy that applies (if any), where it came from, how the
//! cache took part, and what discovery saw on the way (TXT lookup, fetch, backoff), for
//! logs, `/v1/policy/{domain}` and `mtasts query`.

use std::sync::Arc;

use mtasts_proto::sts::cache::{CachedPolicy, FETCH_BACKOFF_SECS, in_backoff};
use serde::Serialize;

use super::hot::HotPolicy;

/// Where a lookup's policy (or its absence) came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum StsSource {
    /// A cached policy.
    Cache,
    /// A policy fetched by this lookup's discovery.
    Fresh,
    /// The negative cache: known to have no policy.
    Negative,
    /// No policy (no record, a failed discovery without a usable cache, …).
    None,
}

/// How the cache took part in a lookup.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum CacheUse {
    /// Served from the cache without DNS.
    Hit,
    /// A discovery ran (or was joined).
    Miss,
    /// Served from the negative cache.
    Negative,
}

/// The outcome of a lookup: the policy to apply, if any, and how it was found.
#[derive(Clone, Debug, Serialize)]
pub struct StsOutcome {
    /// The policy domain.
    pub domain: String,
    /// The policy to apply (of any mode), when there is one.
    #[serde(skip)]
    pub policy: Option<Arc<HotPolicy>>,
    /// Where it came from.
    pub source: StsSource,
    /// How the cache took part.
    pub cache: CacheUse,
    /// Discovery failed temporarily (DNS error, timeout, overload) and nothing usable was
    /// cached: "could not find out", not "no policy" (C27).
    pub temp_error: bool,
    /// What discovery saw. Boxed: the details are large and a cache hit has almost none,
    /// while the outcome is moved through every lookup (docs/benchmarks.md).
    pub details: Box<DiscoveryDetails>,
}

/// What one discovery (or cache consultation) saw, for logs, `/v1/policy` and `mtasts query`.
#[derive(Clone, Debug, Default, Serialize)]
pub struct DiscoveryDetails {
    /// The TXT lookup, when one was made.
    pub txt: Option<TxtDetails>,
    /// The cache decision after the TXT lookup: `use-cached`, `fetch` or `no-policy`.
    pub step: Option<&'static str>,
    /// The policy fetch, when one was made.
    pub fetch: Option<FetchDetails>,
    /// The discovery outcome (as in the `mtasts_discoveries_total` metric): `fetched`,
    /// `unchanged`, `no-record`, `dns-error`, `fetch-error`, `invalid`, `backoff`, `busy`,
    /// `timeout`.
    pub outcome: Option<&'static str>,
    /// The RFC 8460 result type of a failed discovery.
    pub result_type: Option<String>,
    /// Unix seconds of the last failed fetch for this domain.
    pub last_failure: Option<u64>,
    /// Until when no fetch is attempted (5-minute backoff after a failure).
    pub backoff_until: Option<u64>,
    /// Until when the negative cache entry holds.
    pub negative_until: Option<u64>,
    /// Anything else worth saying.
    pub note: Option<String>,
}

/// The `_mta-sts` TXT lookup.
#[derive(Clone, Debug, Serialize)]
pub struct TxtDetails {
    /// The name asked.
    pub name: String,
    /// `record`, `no-record`, `invalid`, `multiple`, `temp-error`.
    pub status: &'static str,
    /// The record's id.
    pub id: Option<String>,
    /// The record text (or texts, `; `-joined, for `multiple`).
    pub record: Option<String>,
    /// The DNS error or why the record is invalid.
    pub error: Option<String>,
}

/// The policy fetch.
#[derive(Clone, Debug, Serialize)]
pub struct FetchDetails {
    /// The URL.
    pub url: String,
    /// The address that answered (or failed last).
    pub ip: Option<String>,
    /// The HTTP status.
    pub status: Option<u16>,
    /// The TLS version.
    pub tls_version: Option<String>,
    /// Why the fetch or the policy failed.
    pub error: Option<String>,
    /// The RFC 8460 result type of the failure.
    pub result_type: Option<String>,
}

impl StsOutcome {
    /// No policy; `temp_error` when discovery could not find out.
    pub(crate) fn none(domain: &str, temp_error: bool) -> StsOutcome {
        StsOutcome {
            domain: domain.to_string(),
            policy: None,
            source: StsSource::None,
            cache: CacheUse::Miss,
            temp_error,
            details: Box::default(),
        }
    }

    /// No policy, from the negative cache entry that holds `until`.
    pub(crate) fn negative(domain: &str, until: u64, last_failure: Option<u64>) -> StsOutcome {
        StsOutcome {
            domain: domain.to_string(),
            policy: None,
            source: StsSource::Negative,
            cache: CacheUse::Negative,
            temp_error: false,
            details: Box::new(DiscoveryDetails {
                negative_until: Some(until),
                last_failure,
                ..DiscoveryDetails::default()
            }),
        }
    }

    /// A cached policy answered without a discovery.
    pub(crate) fn cached(
        domain: &str,
        policy: Arc<HotPolicy>,
        last_failure: Option<u64>,
        now: u64,
        note: Option<String>,
    ) -> StsOutcome {
        StsOutcome {
            domain: domain.to_string(),
            policy: Some(policy),
            source: StsSource::Cache,
            cache: CacheUse::Hit,
            temp_error: false,
            details: Box::new(DiscoveryDetails {
                last_failure,
                backoff_until: backoff_until(last_failure, now),
                note,
                ..DiscoveryDetails::default()
            }),
        }
    }

    /// After a discovery that did not fetch (or whose fetch failed): the usable cached
    /// policy if there is one, else no policy.
    pub(crate) fn kept(
        domain: &str,
        usable: Option<CachedPolicy>,
        details: DiscoveryDetails,
    ) -> StsOutcome {
        match usable {
            Some(policy) => StsOutcome {
                domain: domain.to_string(),
                policy: Some(Arc::new(HotPolicy::new(policy))),
                source: StsSource::Cache,
                cache: CacheUse::Miss,
                temp_error: false,
                details: Box::new(details),
            },
            None => StsOutcome {
                details: Box::new(details),
                ..StsOutcome::none(domain, false)
            },
        }
    }
}

/// Until when no fetch is attempted after the failure at `last_failure`, if that is still
/// ahead at `now`.
pub(crate) fn backoff_until(last_failure: Option<u64>, now: u64) -> Option<u64> {
    last_failure
        .filter(|_| in_backoff(last_failure, now))
        .map(|failed| failed.saturating_add(FETCH_BACKOFF_SECS))
}
