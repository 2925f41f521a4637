//! Repeats suppressed like incidents: one open alert per (tenant, domain, kind, key) until its
//! condition clears, re-notified at most once per [`RENOTIFY_SECS`] while open; and how often
//! a failed delivery is tried again.

/// Least time between two notifications of one open alert: a day.
pub const RENOTIFY_SECS: i64 = 86_400;
/// Delivery attempts before a notification is given up (about a day of retries).
pub const MAX_ATTEMPTS: u32 = 12;
/// The wait after the first failed attempt; it doubles after each failure.
pub const FIRST_RETRY_SECS: i64 = 30;
/// The longest wait between two attempts.
pub const MAX_RETRY_SECS: i64 = 4 * 3600;

/// What is known of an alert that is open.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OpenAlert {
    /// When its owner was last notified (Unix seconds); `None`: not yet.
    pub notified_at: Option<i64>,
}

/// What to do with one (domain, kind, key) after an evaluation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// Open a new alert and notify.
    Open,
    /// Keep the open alert (refresh its text and last-seen time); `notify` when a day has
    /// passed since the last notification.
    Keep {
        /// Whether to notify again now.
        notify: bool,
    },
    /// The condition cleared: resolve the open alert and notify that it did.
    Resolve,
}

/// The step for an alert that is `open` (or not) when its condition is `firing` (or not) at
/// `now`; `None` when there is nothing to do (not open, not firing).
pub fn step(open: Option<OpenAlert>, firing: bool, now: i64) -> Option<Step> {
    match (open, firing) {
        (None, true) => Some(Step::Open),
        (None, false) => None,
        (Some(alert), true) => Some(Step::Keep {
            notify: alert
                .notified_at
                .is_none_or(|at| now.saturating_sub(at) >= RENOTIFY_SECS),
        }),
        (Some(_), false) => Some(Step::Resolve),
    }
}

/// After `attempts` failed attempts (1 or more), how long to wait before the next, or `None`
/// when the notification is given up ([`MAX_ATTEMPTS`]).
pub fn retry_delay(attempts: u32) -> Option<i64> {
    if attempts == 0 {
        return Some(0);
    }
    if attempts >= MAX_ATTEMPTS {
        return None;
    }
    let doublings = (attempts - 1).min(20);
    Some((FIRST_RETRY_SECS << doublings).min(MAX_RETRY_SECS))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_condition_opens_an_alert() {
        assert_eq!(step(None, true, 100), Some(Step::Open));
    }

    #[test]
    fn nothing_happens_without_alert_or_condition() {
        assert_eq!(step(None, false, 100), None);
    }

    #[test]
    fn an_open_alert_is_not_renotified_within_a_day() {
        let open = OpenAlert {
            notified_at: Some(1000),
        };
        assert_eq!(
            step(Some(open), true, 1000 + RENOTIFY_SECS - 1),
            Some(Step::Keep { notify: false })
        );
        assert_eq!(
            step(Some(open), true, 1000 + RENOTIFY_SECS),
            Some(Step::Keep { notify: true })
        );
    }

    #[test]
    fn an_open_alert_never_notified_is_notified() {
        let open = OpenAlert { notified_at: None };
        assert_eq!(step(Some(open), true, 5), Some(Step::Keep { notify: true }));
    }

    #[test]
    fn a_cleared_condition_resolves() {
        let open = OpenAlert {
            notified_at: Some(1),
        };
        assert_eq!(step(Some(open), false, 5), Some(Step::Resolve));
    }

    #[test]
    fn retries_back_off_doubling_to_a_cap_then_give_up() {
        assert_eq!(retry_delay(0), Some(0));
        assert_eq!(retry_delay(1), Some(30));
        assert_eq!(retry_delay(2), Some(60));
        assert_eq!(retry_delay(3), Some(120));
        assert_eq!(retry_delay(10), Some(MAX_RETRY_SECS));
        assert_eq!(retry_delay(MAX_ATTEMPTS - 1), Some(MAX_RETRY_SECS));
        assert_eq!(retry_delay(MAX_ATTEMPTS), None);
        assert_eq!(retry_delay(u32::MAX), None);
    }
}
