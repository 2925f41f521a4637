//! When to renew a certificate and how long to wait after a failed attempt. Pure functions
//! of their arguments; times are Unix seconds like the database's.
//!
//! **Renewal rule.** A certificate with lifetime `L = not_after - not_before` is due once the
//! time left is at most `margin`, where `margin = L / 3`, raised to 30 days when `L` is at
//! least 60 days. For the usual 90-day certificate (Let's Encrypt's is 90 days minus one
//! second) that is exactly 30 days before expiry, never later; a one-year certificate renews
//! with ~122 days left; short-lived certificates (6 days) renew with a third left. A
//! certificate whose dates are inverted or equal is always due.
//!
//! **Retry rule.** After `n` consecutive failures the next attempt waits
//! `5 min · 2^(n-1)`, capped at 24 h. A rate-limited attempt waits at least what the CA's
//! `Retry-After` said (honoured up to 7 days, beyond the 24 h cap) or, without one, at least
//! an hour: rate limits are counted per hour or per week, a quick retry only burns quota.

use std::time::Duration;

use super::AcmeError;

const DAY: i64 = 24 * 60 * 60;

/// The first retry delay.
pub const RETRY_BASE: Duration = Duration::from_secs(5 * 60);
/// The largest exponential retry delay.
pub const RETRY_CAP: Duration = Duration::from_secs(24 * 60 * 60);
/// The largest `Retry-After` honoured.
pub const RETRY_AFTER_CAP: Duration = Duration::from_secs(7 * 24 * 60 * 60);
/// The least delay after a rate limit without `Retry-After`.
pub const RATE_LIMIT_FLOOR: Duration = Duration::from_secs(60 * 60);

/// Whether the certificate valid from `not_before` to `not_after` should be renewed at `now`
/// (see the module docs for the rule).
pub fn renewal_due(not_before: i64, not_after: i64, now: i64) -> bool {
    let lifetime = not_after.saturating_sub(not_before);
    if lifetime <= 0 {
        return true;
    }
    let mut margin = lifetime / 3;
    if lifetime >= 60 * DAY {
        margin = margin.max(30 * DAY);
    }
    now >= not_after.saturating_sub(margin)
}

/// How long to wait before the next attempt after `failures` consecutive failures (counting
/// the one just seen; 0 is treated as 1), the last one being `error`.
pub fn retry_delay(failures: u32, error: &AcmeError) -> Duration {
    let doublings = failures.saturating_sub(1).min(31);
    let exponential = RETRY_BASE
        .checked_mul(1u32 << doublings)
        .map_or(RETRY_CAP, |d| d.min(RETRY_CAP));
    match error {
        AcmeError::RateLimited {
            retry_after: Some(after),
        } => exponential.max((*after).min(RETRY_AFTER_CAP)),
        AcmeError::RateLimited { retry_after: None } => exponential.max(RATE_LIMIT_FLOOR),
        _ => exponential,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: i64 = 1_750_000_000;

    #[test]
    fn ninety_day_certificates_renew_thirty_days_before_expiry() {
        let not_after = T0 + 90 * DAY;
        assert!(!renewal_due(T0, not_after, T0));
        assert!(!renewal_due(T0, not_after, not_after - 30 * DAY - 1));
        assert!(renewal_due(T0, not_after, not_after - 30 * DAY));
        assert!(renewal_due(T0, not_after, not_after + DAY));
        // Let's Encrypt: 90 days minus one second; still 30 days, not a second later.
        let le_after = T0 + 90 * DAY - 1;
        assert!(!renewal_due(T0, le_after, le_after - 30 * DAY - 1));
        assert!(renewal_due(T0, le_after, le_after - 30 * DAY));
    }

    #[test]
    fn other_lifetimes_renew_with_a_third_left() {
        let year = 365 * DAY;
        let margin = year / 3;
        assert!(!renewal_due(T0, T0 + year, T0 + year - margin - 1));
        assert!(renewal_due(T0, T0 + year, T0 + year - margin));
        let short = 6 * DAY;
        assert!(!renewal_due(T0, T0 + short, T0 + 4 * DAY - 1));
        assert!(renewal_due(T0, T0 + short, T0 + 4 * DAY));
        // 60 days: the 30-day floor means half-life.
        assert!(!renewal_due(T0, T0 + 60 * DAY, T0 + 30 * DAY - 1));
        assert!(renewal_due(T0, T0 + 60 * DAY, T0 + 30 * DAY));
    }

    #[test]
    fn broken_dates_are_due_and_future_certificates_are_not() {
        assert!(renewal_due(T0, T0, T0 - DAY));
        assert!(renewal_due(T0, T0 - DAY, T0 - 2 * DAY));
        assert!(!renewal_due(T0, T0 + 90 * DAY, T0 - DAY));
        // Extreme values saturate instead of overflowing.
        assert!(!renewal_due(i64::MIN, i64::MAX, 0));
        assert!(renewal_due(i64::MAX, i64::MIN, 0));
    }

    #[test]
    fn retries_back_off_exponentially_up_to_a_day() {
        let err = AcmeError::unavailable("down");
        let minutes = |n| retry_delay(n, &err).as_secs() / 60;
        assert_eq!(minutes(0), 5);
        assert_eq!(minutes(1), 5);
        assert_eq!(minutes(2), 10);
        assert_eq!(minutes(3), 20);
        assert_eq!(minutes(9), 5 * 256);
        assert_eq!(retry_delay(10, &err), RETRY_CAP);
        assert_eq!(retry_delay(u32::MAX, &err), RETRY_CAP);
        assert_eq!(
            retry_delay(3, &AcmeError::rejected("caa")),
            Duration::from_secs(20 * 60)
        );
    }

    #[test]
    fn rate_limits_honour_retry_after() {
        let limited = |secs| AcmeError::RateLimited {
            retry_after: Some(Duration::from_secs(secs)),
        };
        assert_eq!(retry_delay(1, &limited(7200)), Duration::from_secs(7200));
        // Shorter than the backoff: the backoff wins.
        assert_eq!(retry_delay(3, &limited(60)), Duration::from_secs(20 * 60));
        // Longer than the 24 h cap: honoured up to a week.
        assert_eq!(
            retry_delay(1, &limited(3 * 86_400)),
            Duration::from_secs(3 * 86_400)
        );
        assert_eq!(retry_delay(1, &limited(30 * 86_400)), RETRY_AFTER_CAP);
        assert_eq!(
            retry_delay(1, &AcmeError::RateLimited { retry_after: None }),
            RATE_LIMIT_FLOOR
        );
    }
}
