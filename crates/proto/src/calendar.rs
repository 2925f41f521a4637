//! The one calendar of the crate: the proleptic Gregorian calendar in UTC, days counted from
//! 1970-01-01, as report times are read and written (`tlsrpt::report::UtcTime`), summary
//! dates parsed and shown (`readiness::date`) and report ranges spread over days (`rollup`).
//! Pure integer arithmetic; callers bound the range they accept.

/// Seconds in a UTC day (Unix time has no leap seconds).
pub const DAY: i64 = 86_400;

/// The start of the UTC day holding `t` (Unix seconds); `i64::MIN` for the first partial day of
/// the `i64` range, whose midnight it cannot name.
pub fn day_of(t: i64) -> i64 {
    t.saturating_sub(t.rem_euclid(DAY))
}

/// Whether `y` is a leap year (every fourth, except centuries not divisible by 400).
pub(crate) fn is_leap(y: i64) -> bool {
    y % 4 == 0 && (y % 100 != 0 || y % 400 == 0)
}

/// The days of month `m` (1–12) of year `y`.
pub(crate) fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        2 if is_leap(y) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date, counting whole 400-year eras
/// (146,097 days each) from 0000-03-01 so that the leap day ends a year (H. Hinnant's
/// algorithm). `m` is 1–12 and `d` 1–31; years far beyond ±10^15 overflow.
pub(crate) fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let year_of_era = y - era * 400;
    let month_from_march = (m + 9) % 12;
    let day_of_year = (153 * month_from_march + 2) / 5 + d - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// The inverse of [`days_from_civil`]: `(year, month 1–12, day 1–31)`.
pub(crate) fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_from_march = (5 * day_of_year + 2) / 153;
    let d = day_of_year - (153 * month_from_march + 2) / 5 + 1;
    let m = if month_from_march < 10 {
        month_from_march + 3
    } else {
        month_from_march - 9
    };
    (year_of_era + era * 400 + i64::from(m <= 2), m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_days() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(1969, 12, 31), -1);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        assert_eq!(days_from_civil(2024, 3, 25), 19_807);
        assert_eq!(days_from_civil(0, 1, 1), -719_528);
        assert_eq!(days_from_civil(9999, 12, 31), 2_932_896);
        assert_eq!(civil_from_days(19_807), (2024, 3, 25));
        assert_eq!(civil_from_days(-719_528), (0, 1, 1));
    }

    #[test]
    fn leap_years_and_month_lengths() {
        assert!(is_leap(2024) && is_leap(2000) && is_leap(0));
        assert!(!is_leap(1900) && !is_leap(2026));
        assert_eq!(days_in_month(2024, 2), 29);
        assert_eq!(days_in_month(1900, 2), 28);
        assert_eq!(days_in_month(2026, 4), 30);
        assert_eq!(days_in_month(2026, 12), 31);
    }

    /// Consecutive days are consecutive dates, each valid, over four centuries around the
    /// epoch and through year 0 to 9999.
    #[test]
    fn days_and_dates_round_trip() {
        let mut previous = civil_from_days(-146_098);
        for day in (-146_097..146_097)
            .chain(-719_528..-719_000)
            .chain(2_932_000..2_932_897)
        {
            let (y, m, d) = civil_from_days(day);
            assert!(
                (1..=12).contains(&m) && (1..=days_in_month(y, m)).contains(&d),
                "{day}"
            );
            assert_eq!(days_from_civil(y, m, d), day);
            let next = if previous.2 < days_in_month(previous.0, previous.1) {
                (previous.0, previous.1, previous.2 + 1)
            } else if previous.1 < 12 {
                (previous.0, previous.1 + 1, 1)
            } else {
                (previous.0 + 1, 1, 1)
            };
            if day != -719_528 && day != 2_932_000 {
                assert_eq!((y, m, d), next, "{day}");
            }
            previous = (y, m, d);
        }
    }

    #[test]
    fn day_of_is_the_midnight_before() {
        assert_eq!(day_of(0), 0);
        assert_eq!(day_of(DAY - 1), 0);
        assert_eq!(day_of(-1), -DAY);
        assert_eq!(day_of(i64::MIN), i64::MIN);
    }
}
