//! Policy cache decisions (RFC 8461 §3.3, §5.1, Appendix B): when to use a cached policy, when
//! to fetch, when to back off. Pure: times are Unix seconds passed in by the caller; storing
//! entries is the caller's business.

use thiserror::Error;

use crate::sts::policy::{Policy, PolicyError};
use crate::sts::record::PolicyId;
use crate::txt::RecordError;

/// How long to wait after a failed fetch before fetching again for the same domain: 5 minutes
/// (8461 §3.3: "senders SHOULD NOT … retry … more often than once every 5 minutes", C44).
pub const FETCH_BACKOFF_SECS: u64 = 300;

/// A policy as fetched, with what identifies it and when it was fetched.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CachedPolicy {
    /// The id from the `_mta-sts` record that triggered the fetch (8461 §3.1).
    pub id: PolicyId,
    /// The parsed policy.
    pub policy: Policy,
    /// The body as received, for storage and for `policy_string` (interop §1.6).
    pub body: String,
    /// When the policy was fetched, Unix seconds. A successful re-fetch sets a new time, which
    /// restarts the `max_age` clock (C92).
    pub fetched_at: u64,
}

/// Why stored or fetched data cannot become a [`CachedPolicy`].
#[derive(Clone, Debug, Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum CacheError {
    /// The id is not 1–32 letters and digits (8461 §3.1).
    #[error("invalid policy id: {0}")]
    Id(#[from] RecordError),
    /// The body is not a valid policy (8461 §3.2).
    #[error("invalid policy body: {0}")]
    Policy(#[from] PolicyError),
}

impl CachedPolicy {
    /// Builds a cache entry from a fetched body, parsing it with [`Policy::parse`].
    pub fn new(id: PolicyId, body: String, fetched_at: u64) -> Result<Self, CacheError> {
        let policy = Policy::parse(&body)?;
        Ok(CachedPolicy {
            id,
            policy,
            body,
            fetched_at,
        })
    }

    /// Rebuilds a cache entry from stored text (id and body as stored), re-validating both.
    pub fn from_stored(id: &str, body: String, fetched_at: u64) -> Result<Self, CacheError> {
        CachedPolicy::new(id.parse()?, body, fetched_at)
    }

    /// When the policy stops being usable: `fetched_at + max_age` (8461 §3.2), saturating.
    pub fn expires_at(&self) -> u64 {
        self.fetched_at
            .saturating_add(u64::from(self.policy.max_age.seconds()))
    }

    /// Whether the policy may no longer be applied at `now` (`now >= expires_at`). A policy
    /// with `max_age: 0` is expired from the moment it was fetched: it serves only the lookup
    /// that fetched it, which uses it directly rather than from the cache (C94).
    pub fn is_expired(&self, now: u64) -> bool {
        now >= self.expires_at()
    }
}

/// What the `_mta-sts` TXT lookup said (8461 §3.1, §5.1).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TxtState {
    /// Exactly one valid record with this id.
    Record(PolicyId),
    /// No valid record (NXDOMAIN, no TXT, none or several `v=STSv1` records).
    NoRecord,
    /// The lookup failed temporarily (SERVFAIL, timeout): not the same as no record (C27, C96).
    TempError,
}

/// What to do for a lookup.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Step {
    /// Apply the cached policy.
    UseCached,
    /// Fetch the policy over HTTPS, then apply it (or, if the fetch fails, ask again with
    /// `last_failure` set: [`next_step`] then falls back to the cache).
    Fetch,
    /// Behave as if the domain had no policy.
    NoPolicy,
}

/// Decides what a lookup does (8461 §3.3, §5.1).
///
/// * TXT id equal to the cached id and cache unexpired → [`Step::UseCached`], no HTTPS request
///   (C90).
/// * TXT id differs, or the cache is expired or absent → [`Step::Fetch`], unless a fetch for
///   this domain failed less than [`FETCH_BACKOFF_SECS`] ago (C44); then the unexpired cached
///   policy if any ([`Step::UseCached`], C91: a failed fetch never drops a valid policy) or
///   else [`Step::NoPolicy`].
/// * No TXT record, or a temporary DNS failure, with an unexpired cache → [`Step::UseCached`]
///   (C93, C96); without one → [`Step::NoPolicy`]. The caller still sees `txt` and may answer
///   `TEMP` for [`TxtState::TempError`] in a strict profile.
///
/// `last_failure` in the future (clock stepped back) counts as recent.
pub fn next_step(
    cached: Option<&CachedPolicy>,
    txt: &TxtState,
    last_failure: Option<u64>,
    now: u64,
) -> Step {
    let usable = cached.filter(|c| !c.is_expired(now));
    let fallback = if usable.is_some() {
        Step::UseCached
    } else {
        Step::NoPolicy
    };
    match txt {
        TxtState::Record(id) => {
            if usable.is_some_and(|c| &c.id == id) {
                Step::UseCached
            } else if in_backoff(last_failure, now) {
                fallback
            } else {
                Step::Fetch
            }
        }
        TxtState::NoRecord | TxtState::TempError => fallback,
    }
}

/// Whether a fetch failure at `last_failure` still blocks a new fetch at `now` (C44).
pub fn in_backoff(last_failure: Option<u64>, now: u64) -> bool {
    last_failure.is_some_and(|failed| now < failed.saturating_add(FETCH_BACKOFF_SECS))
}

/// Whether a cached policy should be refreshed proactively (8461 §3.3: refresh before expiry,
/// C45): true once `now` is within `refresh_before_secs` of [`CachedPolicy::expires_at`], or
/// past it. A policy whose refresh fails stays usable until it expires ([`next_step`]).
pub fn refresh_due(cached: &CachedPolicy, now: u64, refresh_before_secs: u64) -> bool {
    now.saturating_add(refresh_before_secs) >= cached.expires_at()
}

#[cfg(test)]
#[path = "cache_tests.rs"]
mod tests;
