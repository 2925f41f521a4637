//! RFC 8461 §3.3/§5.1 cache rules (C44, C90–C94, C96), one named test each, with explicit
//! times.

use proptest::prelude::*;

use super::*;

const DAY: u64 = 86_400;
const T0: u64 = 1_700_000_000;

fn id(s: &str) -> PolicyId {
    s.parse().unwrap()
}

fn body(max_age: u64) -> String {
    format!("version: STSv1\nmode: enforce\nmx: mx.example.com\nmax_age: {max_age}\n")
}

fn cached(policy_id: &str, max_age: u64, fetched_at: u64) -> CachedPolicy {
    CachedPolicy::new(id(policy_id), body(max_age), fetched_at).unwrap()
}

fn record(policy_id: &str) -> TxtState {
    TxtState::Record(id(policy_id))
}

#[test]
fn construction_parses_the_body() {
    let c = cached("abc", DAY, T0);
    assert_eq!(c.policy.max_age.seconds(), 86_400);
    assert_eq!(c.body, body(DAY));
    assert_eq!(c.expires_at(), T0 + DAY);
    assert_eq!(CachedPolicy::from_stored("abc", body(DAY), T0), Ok(c));
}

#[test]
fn construction_errors() {
    assert!(matches!(
        CachedPolicy::from_stored("a-b", body(DAY), T0),
        Err(CacheError::Id(_))
    ));
    assert!(matches!(
        CachedPolicy::new(id("a"), "version: STSv1\n".into(), T0),
        Err(CacheError::Policy(_))
    ));
}

#[test]
fn expiry_boundary() {
    let c = cached("a", 600, T0);
    assert!(!c.is_expired(T0));
    assert!(!c.is_expired(T0 + 599));
    assert!(c.is_expired(T0 + 600));
    assert!(c.is_expired(T0 + 601));
}

#[test]
fn c90_same_id_unexpired_uses_cache() {
    let c = cached("v1", DAY, T0);
    assert_eq!(
        next_step(Some(&c), &record("v1"), None, T0 + 10),
        Step::UseCached
    );
    // Even right after a failure: nothing to fetch.
    assert_eq!(
        next_step(Some(&c), &record("v1"), Some(T0 + 5), T0 + 10),
        Step::UseCached
    );
}

#[test]
fn c90_same_id_expired_fetches() {
    let c = cached("v1", 600, T0);
    assert_eq!(
        next_step(Some(&c), &record("v1"), None, T0 + 600),
        Step::Fetch
    );
}

#[test]
fn c91_new_id_fetches() {
    let c = cached("v1", DAY, T0);
    assert_eq!(
        next_step(Some(&c), &record("v2"), None, T0 + 10),
        Step::Fetch
    );
}

#[test]
fn c91_failed_fetch_keeps_unexpired_cache() {
    let c = cached("v1", DAY, T0);
    let failed = T0 + 100;
    assert_eq!(
        next_step(Some(&c), &record("v2"), Some(failed), failed + 1),
        Step::UseCached
    );
}

#[test]
fn c91_failed_fetch_with_expired_cache_is_no_policy() {
    let c = cached("v1", 600, T0);
    let failed = T0 + 700;
    assert_eq!(
        next_step(Some(&c), &record("v2"), Some(failed), failed + 1),
        Step::NoPolicy
    );
}

#[test]
fn c44_backoff_is_five_minutes() {
    let failed = T0;
    assert_eq!(FETCH_BACKOFF_SECS, 300);
    assert_eq!(
        next_step(None, &record("v1"), Some(failed), failed),
        Step::NoPolicy
    );
    assert_eq!(
        next_step(None, &record("v1"), Some(failed), failed + 299),
        Step::NoPolicy
    );
    assert_eq!(
        next_step(None, &record("v1"), Some(failed), failed + 300),
        Step::Fetch
    );
    assert!(in_backoff(Some(failed), failed + 299));
    assert!(!in_backoff(Some(failed), failed + 300));
    assert!(!in_backoff(None, failed));
}

#[test]
fn c44_failure_in_the_future_counts_as_recent() {
    assert!(in_backoff(Some(T0 + 1000), T0));
    assert!(in_backoff(Some(u64::MAX), T0));
}

#[test]
fn c44_backoff_with_new_id_and_valid_cache() {
    let c = cached("v1", DAY, T0);
    let failed = T0 + 1000;
    assert_eq!(
        next_step(Some(&c), &record("v2"), Some(failed), failed + 299),
        Step::UseCached
    );
    assert_eq!(
        next_step(Some(&c), &record("v2"), Some(failed), failed + 300),
        Step::Fetch
    );
}

#[test]
fn c92_refetch_resets_expiry() {
    let first = cached("v1", 600, T0);
    let again = cached("v1", 600, T0 + 500);
    assert_eq!(first.expires_at(), T0 + 600);
    assert_eq!(again.expires_at(), T0 + 1100);
    assert_eq!(
        next_step(Some(&again), &record("v1"), None, T0 + 900),
        Step::UseCached
    );
}

#[test]
fn c93_txt_gone_keeps_unexpired_cache() {
    let c = cached("v1", DAY, T0);
    assert_eq!(
        next_step(Some(&c), &TxtState::NoRecord, None, T0 + DAY - 1),
        Step::UseCached
    );
    assert_eq!(
        next_step(Some(&c), &TxtState::NoRecord, None, T0 + DAY),
        Step::NoPolicy
    );
}

#[test]
fn c93_no_record_without_cache() {
    assert_eq!(
        next_step(None, &TxtState::NoRecord, None, T0),
        Step::NoPolicy
    );
}

#[test]
fn c94_max_age_zero_serves_only_the_triggering_lookup() {
    let c = cached("v1", 0, T0);
    assert_eq!(c.expires_at(), T0);
    assert!(c.is_expired(T0));
    assert_eq!(next_step(Some(&c), &record("v1"), None, T0), Step::Fetch);
    assert_eq!(
        next_step(Some(&c), &TxtState::NoRecord, None, T0),
        Step::NoPolicy
    );
}

#[test]
fn c96_dns_temp_error_keeps_unexpired_cache() {
    let c = cached("v1", DAY, T0);
    assert_eq!(
        next_step(Some(&c), &TxtState::TempError, None, T0 + 10),
        Step::UseCached
    );
}

#[test]
fn c96_dns_temp_error_without_cache() {
    assert_eq!(
        next_step(None, &TxtState::TempError, None, T0),
        Step::NoPolicy
    );
    let expired = cached("v1", 600, T0);
    assert_eq!(
        next_step(Some(&expired), &TxtState::TempError, None, T0 + 600),
        Step::NoPolicy
    );
}

#[test]
fn refresh_ahead() {
    let c = cached("v1", DAY, T0);
    assert!(!refresh_due(&c, T0, 3600));
    assert!(!refresh_due(&c, T0 + DAY - 3601, 3600));
    assert!(refresh_due(&c, T0 + DAY - 3600, 3600));
    assert!(refresh_due(&c, T0 + DAY + 5, 3600));
    assert!(refresh_due(&c, T0, u64::MAX));
    assert!(refresh_due(&cached("v1", 0, T0), T0, 0));
}

#[test]
fn saturating_expiry() {
    let c = cached("v1", 31_557_600, u64::MAX - 5);
    assert_eq!(c.expires_at(), u64::MAX);
}

fn arb_txt() -> impl Strategy<Value = TxtState> {
    prop_oneof![
        Just(TxtState::NoRecord),
        Just(TxtState::TempError),
        "v[12]".prop_map(|s| TxtState::Record(id(&s))),
    ]
}

proptest! {
    /// A cache entry that is expired is never used; a failure within the backoff never fetches.
    #[test]
    fn invariants(
        has_cache in any::<bool>(),
        cache_id in "v[12]",
        max_age in 0u64..2000,
        txt in arb_txt(),
        failure in proptest::option::of(0u64..3000),
        now in 0u64..3000,
    ) {
        let c = cached(&cache_id, max_age, 0);
        let cached = has_cache.then_some(&c);
        let step = next_step(cached, &txt, failure, now);
        if step == Step::UseCached {
            prop_assert!(cached.is_some_and(|c| !c.is_expired(now)));
        }
        if step == Step::Fetch {
            prop_assert!(!in_backoff(failure, now));
            prop_assert!(matches!(txt, TxtState::Record(_)));
        }
    }
}
