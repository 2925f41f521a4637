//! Policy versions: their `id`s and when a new `id` may be published (RFC 8461 §3.1, §8.1).

use crate::calendar::{DAY, civil_from_days};

/// The `id` for a new version created at `now` (Unix seconds): the UTC time as
/// `YYYYMMDDTHHMMSS` (15 alphanumerics, readable, inside the 1–32 limit of §3.1), with a
/// counter appended when `previous` was made in the same second. Only equality between ids
/// matters to senders, so the only rule is to differ from the id before.
pub fn next_policy_id(now: i64, previous: Option<&str>) -> String {
    let base = utc_stamp(now);
    let Some(previous) = previous else {
        return base;
    };
    match previous.strip_prefix(base.as_str()) {
        None => base,
        Some("") => format!("{base}2"),
        Some(counter) => match counter.parse::<u64>() {
            // 15 + 17 digits stays within the 32-character limit.
            Ok(n) if n < 99_999_999_999_999_999 => format!("{base}{}", n + 1),
            _ => format!("{base}2"),
        },
    }
}

/// Whether a version created at `created_generation` may have its id published: only once
/// every live node serves at least that generation's policy (§8.1: the body first, then the
/// id). With no live node nothing is served, so nothing is published.
pub fn publishable(created_generation: u64, live_loaded_generations: &[u64]) -> bool {
    !live_loaded_generations.is_empty()
        && live_loaded_generations
            .iter()
            .all(|loaded| *loaded >= created_generation)
}

/// `YYYYMMDDTHHMMSS` in UTC; times before 1970 are clamped to the epoch.
fn utc_stamp(unix: i64) -> String {
    let secs = unix.max(0);
    let (days, rem) = (secs.div_euclid(DAY), secs.rem_euclid(DAY));
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}{m:02}{d:02}T{:02}{:02}{:02}",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sts::record;

    #[test]
    fn ids_are_utc_stamps() {
        assert_eq!(next_policy_id(0, None), "19700101T000000");
        assert_eq!(next_policy_id(1_795_350_896, None), "20261122T123456");
        assert_eq!(next_policy_id(951_782_400, None), "20000229T000000");
        assert_eq!(next_policy_id(-5, None), "19700101T000000");
    }

    #[test]
    fn same_second_gets_a_counter() {
        let t = 1_795_350_896;
        let first = next_policy_id(t, None);
        let second = next_policy_id(t, Some(&first));
        let third = next_policy_id(t, Some(&second));
        assert_eq!(second, "20261122T1234562");
        assert_eq!(third, "20261122T1234563");
        assert_eq!(next_policy_id(t + 1, Some(&third)), "20261122T123457");
        assert_ne!(
            next_policy_id(t, Some("20261122T123456x")),
            "20261122T123456x"
        );
    }

    #[test]
    fn every_id_is_valid_in_a_record() {
        let mut previous: Option<String> = None;
        for t in [
            0,
            1,
            1_795_350_896,
            1_795_350_896,
            4_102_444_800,
            i64::MAX / 4,
        ] {
            let id = next_policy_id(t, previous.as_deref());
            assert!(id.len() <= 32, "{id}");
            let txt = record::record_text(&id);
            assert!(record::StsRecord::parse(&txt).is_ok(), "{txt}");
            assert_ne!(Some(&id), previous.as_ref());
            previous = Some(id);
        }
    }

    #[test]
    fn publish_only_when_every_live_node_serves_the_version() {
        assert!(publishable(5, &[5, 7]));
        assert!(!publishable(5, &[4, 7]));
        assert!(!publishable(5, &[]));
        assert!(publishable(0, &[0]));
    }
}
