//! RFC 3339 §5.6 `date-time` values read into UTC seconds, and written back as `…Z`.
//!
//! Small and pure (no clock): the proleptic Gregorian calendar for years 0000–9999 in UTC.
//! A value without a time zone (Microsoft) is read as UTC and flagged so the caller can say so.

use std::fmt;

use crate::calendar::{DAY, civil_from_days, days_from_civil, days_in_month};

/// An instant in UTC, whole seconds since 1970-01-01T00:00:00Z (fractions are dropped).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct UtcTime(i64);

/// The most bytes a `date-time` may have (`9999-12-31T23:59:59.999999999+00:00` is 35).
pub const MAX_DATETIME_BYTES: usize = 64;

/// 0000-01-01T00:00:00Z and 9999-12-31T23:59:59Z in Unix seconds.
const MIN_SECONDS: i64 = -62_167_219_200;
const MAX_SECONDS: i64 = 253_402_300_799;

impl UtcTime {
    /// The instant `seconds` after the Unix epoch, or `None` outside years 0000–9999.
    pub fn from_unix_seconds(seconds: i64) -> Option<UtcTime> {
        (MIN_SECONDS..=MAX_SECONDS)
            .contains(&seconds)
            .then_some(UtcTime(seconds))
    }

    /// Seconds since the Unix epoch.
    pub fn unix_seconds(self) -> i64 {
        self.0
    }
}

/// `2024-03-25T23:59:59Z`.
impl fmt::Display for UtcTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let days = self.0.div_euclid(DAY);
        let secs = self.0.rem_euclid(DAY);
        let (y, m, d) = civil_from_days(days);
        write!(
            f,
            "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
            secs / 3600,
            secs / 60 % 60,
            secs % 60
        )
    }
}

/// A parsed `date-time`: the instant, and whether the text carried a time zone.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Parsed {
    pub(super) time: UtcTime,
    pub(super) had_zone: bool,
}

/// Reads `YYYY-MM-DDTHH:MM:SS[.frac][Z|±HH:MM]` (`t`/`z` in lower case too). Without a zone the
/// value is UTC. A leap second (`:60`) is the next second, as in Unix time.
pub(super) fn parse(text: &str) -> Result<Parsed, &'static str> {
    let b = text.as_bytes();
    if b.len() > MAX_DATETIME_BYTES {
        return Err("too long");
    }
    if b.len() < 19 {
        return Err("too short for YYYY-MM-DDTHH:MM:SS");
    }
    if b[4] != b'-' || b[7] != b'-' || b[13] != b':' || b[16] != b':' {
        return Err("expected YYYY-MM-DDTHH:MM:SS");
    }
    if b[10] != b'T' && b[10] != b't' {
        return Err("date and time must be separated by T");
    }
    let year = digits(&b[0..4])?;
    let month = digits(&b[5..7])?;
    let day = digits(&b[8..10])?;
    let hour = digits(&b[11..13])?;
    let minute = digits(&b[14..16])?;
    let second = digits(&b[17..19])?;
    if !(1..=12).contains(&month) {
        return Err("month out of range");
    }
    if day < 1 || day > days_in_month(year, month) {
        return Err("day out of range");
    }
    if hour > 23 || minute > 59 || second > 60 {
        return Err("time out of range");
    }
    let mut rest = &b[19..];
    if let Some((b'.', frac)) = rest.split_first() {
        let n = frac.iter().take_while(|c| c.is_ascii_digit()).count();
        if n == 0 {
            return Err("empty fraction of a second");
        }
        rest = &frac[n..];
    }
    let (offset, had_zone) = match rest {
        [] => (0, false),
        [b'Z' | b'z'] => (0, true),
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
            let oh = digits(&[*h1, *h2])?;
            let om = digits(&[*m1, *m2])?;
            if oh > 23 || om > 59 {
                return Err("time zone offset out of range");
            }
            let off = (oh * 60 + om) * 60;
            (if *sign == b'-' { -off } else { off }, true)
        }
        _ => return Err("unexpected text after the time"),
    };
    let seconds =
        days_from_civil(year, month, day) * DAY + hour * 3600 + minute * 60 + second - offset;
    let time = UtcTime::from_unix_seconds(seconds).ok_or("outside years 0000-9999 in UTC")?;
    Ok(Parsed { time, had_zone })
}

fn digits(b: &[u8]) -> Result<i64, &'static str> {
    b.iter().try_fold(0i64, |acc, c| {
        if c.is_ascii_digit() {
            Ok(acc * 10 + i64::from(c - b'0'))
        } else {
            Err("expected a digit")
        }
    })
}
