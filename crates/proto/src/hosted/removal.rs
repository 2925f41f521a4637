//! Removing a hosted domain without stranding senders (RFC 8461 §8.3).
//!
//! A sender that fetched a policy keeps applying it until its `max_age` runs out, even if the
//! TXT record and the policy host disappear (C93). Removing those first would leave such a
//! sender enforcing a policy nobody can update. So removal publishes a `mode: none` policy
//! under a new id, keeps serving it until every policy that was ever served could have
//! expired from every cache, and only then deletes the records.
//!
//! Until then the removal can be cancelled: the policy served before it comes back as a new
//! version with a new id ([`version_to_restore`]), published like any change (body on every
//! node first, then the id), so a sender that saw `mode: none` fetches it again.

/// `max_age` of the `mode: none` policy served while removing: one day, the "small"
/// value §8.3 asks for; senders that fetch it forget it quickly once the domain is gone.
pub const REMOVAL_MAX_AGE: u32 = 86_400;

/// One version as it was served: from its creation until the next version replaced it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ServedVersion {
    /// When the policy body was first served (its creation: the body goes out before its id).
    pub served_from: i64,
    /// When a newer version replaced it; `None` for the newest version, served until now.
    pub served_until: Option<i64>,
    /// Its `max_age` in seconds.
    pub max_age: u32,
}

/// When a domain whose removal starts at `now` may disappear: the latest moment any sender
/// could still hold one of `served` in its cache (a fetch just before the version was
/// replaced, plus that version's `max_age`), and never earlier than `now` plus
/// [`REMOVAL_MAX_AGE`], so the `mode: none` policy itself has a full day to be seen.
/// Older versions with a longer `max_age` count too, which is why all of them are passed.
pub fn removal_deadline(now: i64, served: &[ServedVersion]) -> i64 {
    served
        .iter()
        .map(|v| {
            let until = v.served_until.unwrap_or(now).min(now);
            until.saturating_add(i64::from(v.max_age))
        })
        .fold(now.saturating_add(i64::from(REMOVAL_MAX_AGE)), i64::max)
}

/// Turns a version history (creation time and `max_age`, oldest first) into the served
/// intervals [`removal_deadline`] takes: each version is served until the next one is created.
/// Versions are ordered by creation time; versions created in the same second keep the order
/// given, so pass them oldest first (by version number).
pub fn served_intervals(versions: &[(i64, u32)]) -> Vec<ServedVersion> {
    let mut sorted = versions.to_vec();
    sorted.sort_by_key(|(created, _)| *created);
    sorted
        .iter()
        .enumerate()
        .map(|(i, (created, max_age))| ServedVersion {
            served_from: *created,
            served_until: sorted.get(i + 1).map(|(next, _)| *next),
            max_age: *max_age,
        })
        .collect()
}

/// The number of the version whose policy a cancelled removal brings back, given the
/// number of the newest version while the domain is being removed: the one just before it,
/// as the removal's `mode: none` version is the newest (a domain being removed takes no
/// other change) and versions are numbered consecutively from 1. `None` when there is none
/// before it.
pub fn version_to_restore(removal_version: i64) -> Option<i64> {
    (removal_version > 1).then(|| removal_version - 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cancelled_removal_restores_the_version_before_it() {
        // v3 is the removal's `mode: none`; v2 the policy served before it.
        assert_eq!(version_to_restore(3), Some(2));
        // Removed, restored (v4, a copy of v2), removed again (v5): v4 comes back.
        assert_eq!(version_to_restore(5), Some(4));
        assert_eq!(version_to_restore(1), None);
        assert_eq!(version_to_restore(0), None);
    }

    const DAY: i64 = 86_400;

    #[test]
    fn the_current_policy_must_age_out() {
        let served = served_intervals(&[(0, 7 * DAY as u32)]);
        assert_eq!(removal_deadline(10 * DAY, &served), 17 * DAY);
    }

    #[test]
    fn an_older_longer_policy_can_outlive_the_current_one() {
        // enforce for 365 days' max_age until day 10, then testing with 1 day.
        let served = served_intervals(&[(10 * DAY, DAY as u32), (0, 365 * DAY as u32)]);
        assert_eq!(served[0].served_until, Some(10 * DAY));
        assert_eq!(removal_deadline(11 * DAY, &served), 375 * DAY);
    }

    #[test]
    fn an_expired_history_still_waits_for_the_none_policy() {
        let served = served_intervals(&[(0, 60)]);
        assert_eq!(removal_deadline(100 * DAY, &served), 101 * DAY);
        assert_eq!(removal_deadline(100 * DAY, &[]), 101 * DAY);
    }

    #[test]
    fn same_second_versions_keep_their_order() {
        // Version 1 (a year) replaced by version 2 (a day) within the same second.
        let served = served_intervals(&[(5, 365 * DAY as u32), (5, DAY as u32)]);
        assert_eq!(served[0].served_until, Some(5));
        assert_eq!(served[1].served_until, None);
        assert_eq!(removal_deadline(10, &served), 5 + 365 * DAY);
    }

    #[test]
    fn no_overflow_at_the_edges() {
        let served = [ServedVersion {
            served_from: 0,
            served_until: None,
            max_age: u32::MAX,
        }];
        assert_eq!(removal_deadline(i64::MAX - 5, &served), i64::MAX);
    }
}
