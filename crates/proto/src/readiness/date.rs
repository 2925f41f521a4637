//! The dates a report summary is asked about and shown with: `YYYY-MM-DD` or a relative `14d`
//! / `2w` read into Unix seconds at 00:00 UTC, and days written back as `2026-12-03` or
//! `3 Dec`. Pure: "today" is an argument.
//!
//! A summary works on whole UTC days (the stores roll reports up per day), so every bound is a
//! midnight: `--since 2026-12-01` starts at 2026-12-01T00:00:00Z, `--until 2026-12-05`
//! includes that whole day (the bound is 2026-12-06T00:00:00Z, exclusive), and `--since 14d`
//! starts 14 days before today's midnight, so the fourteen full days before today and today so
//! far are in (TLS reports cover a day and arrive the next, so "the last 14 days" of reports
//! are the 14 days before today).

use thiserror::Error;

use crate::calendar::{civil_from_days, day_of, days_from_civil, days_in_month};

pub use crate::calendar::DAY;

/// The most days a relative date may go back (100 years): more is a typo, not a question.
pub const MAX_RELATIVE_DAYS: i64 = 36_525;

/// 0001-01-01 and 9999-12-31 as days since 1970-01-01: the years a date may name.
const MIN_DAY: i64 = -719_162;
const MAX_DAY: i64 = 2_932_896;

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// Why a date argument was not understood.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum DateError {
    /// Neither `YYYY-MM-DD` nor a number of days or weeks.
    #[error(
        "{0:?} is not a date: write YYYY-MM-DD (UTC) or a number of days or weeks ago, as in 14d or 2w"
    )]
    Syntax(String),
    /// `2026-02-30`, month 13, year 0.
    #[error("{0:?} is not a day of the calendar")]
    NoSuchDay(String),
    /// `999999d`.
    #[error("{0:?} goes back more than {MAX_RELATIVE_DAYS} days")]
    TooFar(String),
}

/// The midnight (UTC) of the day holding `unix_seconds`.
pub fn day_start(unix_seconds: i64) -> i64 {
    day_of(unix_seconds)
}

/// A `--since` value: the first second it includes. `today` is now, in Unix seconds.
pub fn since(text: &str, today: i64) -> Result<i64, DateError> {
    parse(text, today)
}

/// An `--until` value: the first second it no longer includes (the day named is included).
pub fn until(text: &str, today: i64) -> Result<i64, DateError> {
    Ok(parse(text, today)? + DAY)
}

/// `2026-12-03`.
pub fn iso_day(unix_seconds: i64) -> String {
    let (y, m, d) = civil(unix_seconds);
    format!("{y:04}-{m:02}-{d:02}")
}

/// `3 Dec`, with the year (`3 Dec 2025`) when it is not the year of `today`.
pub fn short_day(unix_seconds: i64, today: i64) -> String {
    let (y, m, d) = civil(unix_seconds);
    let (this_year, _, _) = civil(today);
    // `m` is 1..=12 by construction of `civil_from_days`.
    let month = MONTHS[(m - 1) as usize];
    if y == this_year {
        format!("{d} {month}")
    } else {
        format!("{d} {month} {y}")
    }
}

/// Reads `YYYY-MM-DD` or `Nd` / `Nw` into the Unix seconds of that day's midnight.
fn parse(text: &str, today: i64) -> Result<i64, DateError> {
    let syntax = || DateError::Syntax(text.to_owned());
    let t = text.trim();
    if let Some((number, unit)) = t
        .strip_suffix('d')
        .map(|n| (n, 1))
        .or_else(|| t.strip_suffix('w').map(|n| (n, 7)))
    {
        if number.is_empty() || number.len() > 9 || !number.bytes().all(|b| b.is_ascii_digit()) {
            return Err(syntax());
        }
        let days = number.parse::<i64>().map_err(|_| syntax())? * unit;
        if days > MAX_RELATIVE_DAYS {
            return Err(DateError::TooFar(text.to_owned()));
        }
        return Ok(day_start(today) - days * DAY);
    }
    let b = t.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return Err(syntax());
    }
    let number = |range: std::ops::Range<usize>| -> Result<i64, DateError> {
        let part = &t[range];
        if !part.bytes().all(|b| b.is_ascii_digit()) {
            return Err(syntax());
        }
        part.parse::<i64>().map_err(|_| syntax())
    };
    let (y, m, d) = (number(0..4)?, number(5..7)?, number(8..10)?);
    if y == 0 || !(1..=12).contains(&m) || d < 1 || d > days_in_month(y, m) {
        return Err(DateError::NoSuchDay(text.to_owned()));
    }
    let days = days_from_civil(y, m, d);
    debug_assert!((MIN_DAY..=MAX_DAY).contains(&days));
    Ok(days * DAY)
}

/// The date of the day holding `unix_seconds`, within the years a date may name.
fn civil(unix_seconds: i64) -> (i64, i64, i64) {
    civil_from_days(unix_seconds.div_euclid(DAY).clamp(MIN_DAY, MAX_DAY))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tlsrpt::report::UtcTime;

    /// 2026-12-07T13:45:00Z.
    const NOW: i64 = 1_796_651_100;
    /// 2026-12-07T00:00:00Z.
    const TODAY: i64 = 1_796_601_600;

    #[test]
    fn absolute_dates_are_midnight_utc() {
        assert_eq!(since("2026-12-07", NOW), Ok(TODAY));
        assert_eq!(since("1970-01-01", NOW), Ok(0));
        assert_eq!(since(" 2024-02-29 ", NOW), Ok(1_709_164_800));
        assert_eq!(since("0001-01-01", NOW), Ok(MIN_DAY * DAY));
        assert_eq!(since("9999-12-31", NOW), Ok(MAX_DAY * DAY));
    }

    #[test]
    fn until_includes_the_day_named() {
        assert_eq!(until("2026-12-07", NOW), Ok(TODAY + DAY));
        assert_eq!(until("0d", NOW), Ok(TODAY + DAY));
    }

    #[test]
    fn relative_dates_count_back_from_todays_midnight() {
        assert_eq!(since("0d", NOW), Ok(TODAY));
        assert_eq!(since("1d", NOW), Ok(TODAY - DAY));
        assert_eq!(since("14d", NOW), Ok(TODAY - 14 * DAY));
        assert_eq!(since("2w", NOW), Ok(TODAY - 14 * DAY));
        assert_eq!(since("36525d", NOW), Ok(TODAY - MAX_RELATIVE_DAYS * DAY));
        // Before 1970 the midnight is still a midnight (floor, not truncation).
        assert_eq!(since("0d", -1), Ok(-DAY));
    }

    #[test]
    fn impossible_days_are_named() {
        for text in [
            "2026-02-29",
            "2026-13-01",
            "2026-00-10",
            "2026-04-31",
            "0000-01-01",
            "2026-01-00",
        ] {
            assert_eq!(
                since(text, NOW),
                Err(DateError::NoSuchDay(text.into())),
                "{text}"
            );
        }
        assert_eq!(since("2024-02-29", NOW).map(|_| ()), Ok(()));
        assert_eq!(since("2000-02-29", NOW).map(|_| ()), Ok(()));
        assert!(since("1900-02-29", NOW).is_err());
    }

    #[test]
    fn junk_is_a_syntax_error() {
        for text in [
            "",
            "d",
            "w",
            "-3d",
            "+3d",
            "3",
            "3h",
            "1.5d",
            "14 d",
            "2026-1-01",
            "2026/12/01",
            "20261201",
            "2026-12-01T00:00:00Z",
            "yesterday",
            "٣d",
            "9999999999d",
            "2026-1a-01",
        ] {
            assert_eq!(
                since(text, NOW),
                Err(DateError::Syntax(text.into())),
                "{text}"
            );
        }
    }

    #[test]
    fn too_far_back_is_refused() {
        assert_eq!(
            since("36526d", NOW),
            Err(DateError::TooFar("36526d".into()))
        );
        assert_eq!(
            since("999999999w", NOW),
            Err(DateError::TooFar("999999999w".into()))
        );
    }

    #[test]
    fn days_are_written_in_utc() {
        assert_eq!(iso_day(NOW), "2026-12-07");
        assert_eq!(iso_day(TODAY - 1), "2026-12-06");
        assert_eq!(short_day(TODAY - 4 * DAY, NOW), "3 Dec");
        assert_eq!(short_day(1_709_164_800, NOW), "29 Feb 2024");
        assert_eq!(short_day(0, 0), "1 Jan");
    }

    /// The calendar here agrees with the one that writes report times (tlsrpt's `UtcTime`),
    /// day by day over four centuries around the epoch and at the ends of the range.
    #[test]
    fn calendar_agrees_with_report_times() {
        let days = (-146_097..146_097)
            .chain(MAX_DAY - 800..=MAX_DAY)
            .chain(MIN_DAY..MIN_DAY + 800);
        for day in days {
            let written = UtcTime::from_unix_seconds(day * DAY).unwrap().to_string();
            assert_eq!(iso_day(day * DAY), written[..10], "day {day}");
            assert_eq!(since(&written[..10], NOW), Ok(day * DAY), "{written}");
        }
    }

    proptest::proptest! {
        #[test]
        fn any_text_is_a_day_or_an_error(text in ".{0,24}", now in -10_000_000_000i64..10_000_000_000) {
            if let Ok(t) = since(&text, now) {
                proptest::prop_assert_eq!(t.rem_euclid(DAY), 0);
            }
            let _ = until(&text, now);
        }
    }
}
