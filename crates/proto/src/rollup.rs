//! Spreading a report's counts over the UTC days its date range covers (daily rollups).
//!
//! A report covers the half-open range `[begin, end)` in Unix seconds. Senders write the end either
//! as the last second of the day (`23:59:59Z`, Google) or as the next midnight (`00:00:00Z`); read as
//! half-open, both give one whole day. A report whose range crosses midnight (Microsoft's DMARC
//! reports run 22:13 to 22:13) is spread over the days it touches **in proportion to the seconds it
//! spends in each**, in whole numbers, with the sums exact (largest remainder: each day gets the
//! floor of its share, then the units left over go to the days with the largest fractions, the
//! earlier day first on a tie).
//!
//! Ranges that cannot be meant as written go to the begin day only, whole: an empty range
//! (`end <= begin`, which the readers refuse except `end == begin`) and one longer than
//! [`MAX_DAYS`] days (a sender's clock or arithmetic gone wrong; spreading a count thin over
//! years would hide it). So a report never touches more than [`MAX_DAYS`] + 1 days (a range of
//! exactly [`MAX_DAYS`] days that does not start at midnight touches one more).
//!
//! ```
//! use mtasts_proto::rollup::Span;
//! // 2023-11-14T22:13:20Z .. 2023-11-15T22:13:19Z: 6,400 s on the 14th, 79,999 on the 15th.
//! let span = Span::new(1_700_000_000, 1_700_086_399);
//! assert_eq!(span.days().collect::<Vec<_>>(), [1_699_920_000, 1_700_006_400]);
//! assert_eq!(span.split(1_000), [74, 926]);
//! ```

pub use crate::calendar::{DAY, day_of};

/// The longest range spread over its days, in days; longer ranges go to the begin day.
pub const MAX_DAYS: i64 = 31;

/// The UTC days a report's range covers and how many of its seconds fall on each.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Span {
    /// `(day, seconds)`: the day's start in Unix seconds, and the range's seconds on it (> 0, or
    /// the one entry of a range that goes to its begin day whole).
    days: Vec<(i64, u64)>,
}

impl Span {
    /// The days `[begin, end)` covers (see the module docs for empty and absurd ranges).
    pub fn new(begin: i64, end: i64) -> Span {
        let first = day_of(begin);
        let absurd = end <= begin || end.saturating_sub(begin) > MAX_DAYS * DAY;
        if absurd {
            return Span {
                days: vec![(first, 1)],
            };
        }
        let mut days = Vec::new();
        let mut day = first;
        while day < end {
            let from = begin.max(day);
            let to = end.min(day.saturating_add(DAY));
            if to > from {
                days.push((day, (to - from) as u64));
            }
            day = day.saturating_add(DAY);
        }
        Span { days }
    }

    /// The start (Unix seconds at 00:00 UTC) of every day covered, in order.
    pub fn days(&self) -> impl Iterator<Item = i64> + '_ {
        self.days.iter().map(|&(day, _)| day)
    }

    /// How many days are covered (at least 1).
    pub fn len(&self) -> usize {
        self.days.len()
    }

    /// Always false: every span covers at least its begin day.
    pub fn is_empty(&self) -> bool {
        self.days.is_empty()
    }

    /// `total` spread over the days in proportion to their seconds: one number per day, summing
    /// to `total` exactly.
    pub fn split(&self, total: u64) -> Vec<u64> {
        let seconds: u128 = self.days.iter().map(|&(_, s)| u128::from(s)).sum();
        if self.days.len() == 1 || seconds == 0 {
            return vec![total];
        }
        let total_wide = u128::from(total);
        // Floors and remainders; the floors sum to at most `total`, and fall short by fewer
        // units than there are days.
        let mut shares: Vec<u64> = Vec::with_capacity(self.days.len());
        let mut remainders: Vec<(u128, usize)> = Vec::with_capacity(self.days.len());
        for (index, &(_, s)) in self.days.iter().enumerate() {
            let product = total_wide * u128::from(s);
            // Fits: the quotient is at most `total`.
            shares.push((product / seconds) as u64);
            remainders.push((product % seconds, index));
        }
        let given: u64 = shares.iter().sum();
        let left = total - given;
        // Largest remainder first; the earlier day on a tie.
        remainders.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
        for &(_, index) in remainders.iter().take(left as usize) {
            shares[index] += 1;
        }
        shares
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const D: i64 = 1_711_324_800; // 2024-03-25T00:00:00Z

    fn days(span: &Span) -> Vec<i64> {
        span.days().collect()
    }

    #[test]
    fn a_whole_day_ending_on_its_last_second() {
        let span = Span::new(D, D + DAY - 1);
        assert_eq!(days(&span), [D]);
        assert_eq!(span.split(123), [123]);
    }

    #[test]
    fn a_whole_day_ending_at_the_next_midnight() {
        let span = Span::new(D, D + DAY);
        assert_eq!(days(&span), [D]);
        assert_eq!(span.split(7), [7]);
    }

    #[test]
    fn crossing_midnight_splits_by_seconds() {
        // 18:00 to 06:00: half and half.
        let span = Span::new(D + 18 * 3600, D + DAY + 6 * 3600);
        assert_eq!(days(&span), [D, D + DAY]);
        assert_eq!(span.split(100), [50, 50]);
        assert_eq!(span.split(101), [51, 50]); // the tie goes to the earlier day
        assert_eq!(span.split(0), [0, 0]);
        assert_eq!(span.split(1), [1, 0]);
    }

    #[test]
    fn three_days_unequal() {
        // 12:00 day 1 to 06:00 day 3: 12 h, 24 h, 6 h of 42 h.
        let span = Span::new(D + 12 * 3600, D + 2 * DAY + 6 * 3600);
        assert_eq!(days(&span), [D, D + DAY, D + 2 * DAY]);
        // 42 * 12/42 = 12, 24, 6.
        assert_eq!(span.split(42), [12, 24, 6]);
        // 10: 2.857, 5.714, 1.428 → floors 2, 5, 1 (8); the two largest remainders get one more.
        assert_eq!(span.split(10), [3, 6, 1]);
    }

    #[test]
    fn microsoft_style_range() {
        let span = Span::new(1_700_000_000, 1_700_086_399);
        assert_eq!(days(&span), [1_699_920_000, 1_700_006_400]);
        assert_eq!(span.split(1_000), [74, 926]);
    }

    #[test]
    fn an_empty_range_goes_to_its_day() {
        let span = Span::new(D + 5, D + 5);
        assert_eq!(days(&span), [D]);
        assert_eq!(span.split(9), [9]);
    }

    #[test]
    fn an_end_before_the_begin_goes_to_the_begin_day() {
        let span = Span::new(D + DAY + 5, D);
        assert_eq!(days(&span), [D + DAY]);
        assert_eq!(span.split(9), [9]);
    }

    #[test]
    fn longer_than_max_days_goes_to_the_begin_day() {
        let span = Span::new(D + 3600, D + 3600 + MAX_DAYS * DAY + 1);
        assert_eq!(days(&span), [D]);
        assert_eq!(span.split(1_000), [1_000]);
    }

    #[test]
    fn exactly_max_days_is_spread() {
        let span = Span::new(D, D + MAX_DAYS * DAY);
        assert_eq!(span.len(), MAX_DAYS as usize);
        assert_eq!(span.split(MAX_DAYS as u64 * 3), vec![3; MAX_DAYS as usize]);
        // Not at midnight: one day more.
        let span = Span::new(D + 1, D + 1 + MAX_DAYS * DAY);
        assert_eq!(span.len(), MAX_DAYS as usize + 1);
    }

    #[test]
    fn before_1970() {
        let span = Span::new(-DAY - 3600, -DAY + 3600);
        assert_eq!(days(&span), [-2 * DAY, -DAY]);
        assert_eq!(span.split(2), [1, 1]);
        assert_eq!(day_of(-1), -DAY);
    }

    #[test]
    fn the_extremes_do_not_overflow() {
        let span = Span::new(i64::MAX - 10, i64::MAX);
        assert_eq!(span.split(u64::MAX).iter().sum::<u64>(), u64::MAX);
        let span = Span::new(i64::MIN, i64::MAX);
        assert_eq!(span.len(), 1);
        let span = Span::new(D + 3600, D + DAY + 3600);
        assert_eq!(span.split(u64::MAX).iter().sum::<u64>(), u64::MAX);
    }

    proptest! {
        #[test]
        fn sums_are_exact_and_days_are_in_order(
            begin in -10_000_000_000i64..300_000_000_000,
            length in -100_000i64..(40 * DAY),
            total in any::<u64>(),
        ) {
            let span = Span::new(begin, begin + length);
            let shares = span.split(total);
            prop_assert_eq!(shares.len(), span.len());
            prop_assert!(!span.is_empty());
            prop_assert!(span.len() <= MAX_DAYS as usize + 1);
            let sum: u128 = shares.iter().map(|&s| u128::from(s)).sum();
            prop_assert_eq!(sum, u128::from(total));
            let days = days(&span);
            prop_assert_eq!(days[0], day_of(begin));
            for pair in days.windows(2) {
                prop_assert_eq!(pair[1] - pair[0], DAY);
            }
            for &day in &days {
                prop_assert_eq!(day.rem_euclid(DAY), 0);
            }
        }

        #[test]
        fn shares_follow_the_seconds(
            begin in 0i64..10_000_000_000,
            length in 1i64..(MAX_DAYS * DAY),
            total in 0u64..1_000_000_000,
        ) {
            // Each share is within one unit of the exact proportion.
            let span = Span::new(begin, begin + length);
            let shares = span.split(total);
            for (i, day) in days(&span).into_iter().enumerate() {
                let seconds = (begin + length).min(day + DAY) - begin.max(day);
                let exact = total as f64 * seconds as f64 / length as f64;
                prop_assert!((shares[i] as f64 - exact).abs() < 1.0 + 1e-6,
                    "day {} share {} exact {}", i, shares[i], exact);
            }
        }
    }
}
