//! When reports are built: after a UTC day ends plus a random delay in `[0, send_delay_max]`
//! (RFC 8460 §4.1 asks senders to spread their reports so receivers are not flooded at
//! midnight). Pending days come from the store (days with results and no report run), so a
//! resolver that was down catches up at its next start.

use std::collections::BTreeMap;

/// Seconds in a day.
pub const DAY: i64 = 86_400;

/// A random delay in `[0, max]` seconds.
pub fn random_delay(max: u64) -> i64 {
    use aws_lc_rs::rand::SecureRandom;
    if max == 0 {
        return 0;
    }
    let mut bytes = [0u8; 8];
    // Without randomness every resolver sends right after midnight: allowed, just not spread.
    if aws_lc_rs::rand::SystemRandom::new()
        .fill(&mut bytes)
        .is_err()
    {
        return 0;
    }
    (u64::from_le_bytes(bytes) % (max + 1)) as i64
}

/// The per-day send times this process chose: each pending day gets its random delay once.
#[derive(Debug, Default)]
pub struct Schedule {
    delays: BTreeMap<i64, i64>,
}

impl Schedule {
    /// The days of `pending` whose time has come at `now` (day end plus its delay, chosen with
    /// `pick` the first time the day is seen), oldest first.
    pub fn due(&mut self, pending: &[i64], now: i64, mut pick: impl FnMut() -> i64) -> Vec<i64> {
        let mut due = Vec::new();
        for &day in pending {
            let delay = *self.delays.entry(day).or_insert_with(&mut pick);
            if now >= day + DAY + delay {
                due.push(day);
            }
        }
        due.sort_unstable();
        // Forget days no longer pending so the map stays as small as the pending list.
        self.delays.retain(|d, _| pending.contains(d));
        due
    }
}

/// The start of the UTC day that contains `now` (reports are due for days before it).
pub fn today(now: i64) -> i64 {
    now - now.rem_euclid(DAY)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_wait_for_their_end_plus_delay() {
        let mut s = Schedule::default();
        let day = 20_000 * DAY;
        assert!(s.due(&[day], day + DAY - 1, || 0).is_empty());
        let mut s = Schedule::default();
        assert!(s.due(&[day], day + DAY + 99, || 100).is_empty());
        // The delay chosen first is kept.
        assert_eq!(s.due(&[day], day + DAY + 100, || 50_000), vec![day]);
        assert_eq!(s.due(&[], day + DAY + 100, || 0), Vec::<i64>::new());
        assert!(s.delays.is_empty());
    }

    #[test]
    fn random_delays_stay_in_range() {
        assert_eq!(random_delay(0), 0);
        for _ in 0..100 {
            let d = random_delay(10);
            assert!((0..=10).contains(&d));
        }
    }
}
