//! Byte counts as people write them on the command line (`64M`, `1GiB`, `400MB`), for limits such as
//! `mtasts report parse --max-report-bytes`.
//!
//! The grammar: decimal digits, then optionally spaces, then an optional unit, case-insensitive.
//!
//! | Unit | Multiple | Example |
//! |---|---|---|
//! | none, `B` | 1 | `1048576` |
//! | `K`, `M`, `G`, `T` | 1024, 1024², 1024³, 1024⁴ | `64M` = 67,108,864 |
//! | `KiB`, `MiB`, `GiB`, `TiB` (also `Ki`, `Mi`, …) | the same binary multiples | `64MiB` = 67,108,864 |
//! | `KB`, `MB`, `GB`, `TB` | 1000, 1000², 1000³, 1000⁴ (SI) | `400MB` = 400,000,000 |
//!
//! A bare letter is binary because that is what limits in Unix tools (`sort -S`, `ulimit`, `dd`) and
//! the limits in our documentation mean ("64 MiB"); spelling out `B` asks for the SI unit, as on a disk's
//! label. What could be read two ways is refused rather than guessed: a fraction (`1.5G`), a sign, digit
//! separators, an unknown unit, a number past `u64::MAX`.
//!
//! ```
//! use mtasts_proto::bytesize::{ByteSizeError, parse};
//! assert_eq!(parse("64M"), Ok(64 * 1024 * 1024));
//! assert_eq!(parse("400MB"), Ok(400_000_000));
//! assert_eq!(parse("-1"), Err(ByteSizeError::Negative));
//! ```

/// Why a text is not a byte count.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ByteSizeError {
    /// Nothing but spaces.
    #[error("empty byte count (write digits and an optional unit, e.g. 64M)")]
    Empty,
    /// A fraction such as `1.5G`: write a whole number of a smaller unit (`1536M`).
    #[error("{0:?} is not a whole number of bytes: use a smaller unit (1.5G is 1536M)")]
    Fraction(String),
    /// A leading `-`.
    #[error("a byte count cannot be negative")]
    Negative,
    /// The text does not start with a digit (or holds something other than digits before the unit).
    #[error("{0:?} is not a byte count (digits, then an optional unit such as K, M, G, MiB or MB)")]
    NotANumber(String),
    /// The count is larger than 2⁶⁴ − 1 bytes.
    #[error("{0:?} is larger than 2^64 - 1 bytes")]
    Overflow(String),
    /// The unit after the digits is not one of the table's.
    #[error("unknown unit {0:?} (use B, K, M, G, T, KiB, MiB, GiB, TiB, KB, MB, GB or TB)")]
    UnknownUnit(String),
}

/// Reads a byte count: digits and an optional unit (see the module doc).
///
/// # Errors
///
/// A [`ByteSizeError`] saying what is wrong with `text`.
pub fn parse(text: &str) -> Result<u64, ByteSizeError> {
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Err(ByteSizeError::Empty);
    }
    if trimmed.starts_with('-') {
        return Err(ByteSizeError::Negative);
    }
    let digits_end = trimmed
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(trimmed.len());
    let (digits, rest) = trimmed.split_at(digits_end);
    if digits.is_empty() {
        return Err(ByteSizeError::NotANumber(text.to_owned()));
    }
    if rest.starts_with(['.', ',']) {
        return Err(ByteSizeError::Fraction(text.to_owned()));
    }
    let rest = rest.trim_start();
    let multiple = unit(rest).ok_or_else(|| {
        if rest.starts_with(|c: char| c.is_ascii_alphabetic()) {
            ByteSizeError::UnknownUnit(rest.to_owned())
        } else {
            ByteSizeError::NotANumber(text.to_owned())
        }
    })?;
    // `digits` is non-empty ASCII digits, so the only way `parse` fails is a number past u64::MAX.
    digits
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(multiple))
        .ok_or_else(|| ByteSizeError::Overflow(text.to_owned()))
}

/// The multiple a unit stands for; `None` for an unknown unit.
fn unit(unit: &str) -> Option<u64> {
    let lower = unit.to_ascii_lowercase();
    let (prefix, base) = match lower.as_str() {
        "" | "b" => return Some(1),
        s if s.len() == 1 => (s, KIBI),
        s if s.len() == 2 && s.ends_with('b') => (&s[..1], KILO),
        s if s.len() == 2 && s.ends_with('i') => (&s[..1], KIBI),
        s if s.len() == 3 && s.ends_with("ib") => (&s[..1], KIBI),
        _ => return None,
    };
    let power = match prefix {
        "k" => 1,
        "m" => 2,
        "g" => 3,
        "t" => 4,
        _ => return None,
    };
    Some(base.pow(power))
}

const KIBI: u64 = 1024;
const KILO: u64 = 1000;

#[cfg(test)]
mod tests {
    use super::{ByteSizeError, parse};

    const MIB: u64 = 1 << 20;

    macro_rules! cases {
        ($($name:ident: $text:expr => $want:expr;)*) => {$(
            #[test]
            fn $name() {
                assert_eq!(parse($text), $want, "{:?}", $text);
            }
        )*};
    }

    fn err(e: fn(String) -> ByteSizeError, text: &str) -> Result<u64, ByteSizeError> {
        Err(e(text.to_owned()))
    }

    cases! {
        plain_bytes: "1048576" => Ok(MIB);
        zero: "0" => Ok(0);
        leading_zeros: "007" => Ok(7);
        b_is_bytes: "512B" => Ok(512);
        lower_b_is_bytes: "512b" => Ok(512);
        k_is_kibi: "512K" => Ok(512 * 1024);
        lower_k_is_kibi: "512k" => Ok(512 * 1024);
        m_is_mebi: "64M" => Ok(64 * MIB);
        g_is_gibi: "1G" => Ok(1 << 30);
        t_is_tebi: "2T" => Ok(2 << 40);
        kib: "4KiB" => Ok(4096);
        mib: "64MiB" => Ok(64 * MIB);
        mib_lower: "64mib" => Ok(64 * MIB);
        gib: "1GiB" => Ok(1 << 30);
        tib: "1TiB" => Ok(1 << 40);
        ki_without_b: "8Ki" => Ok(8192);
        mi_without_b: "3Mi" => Ok(3 * MIB);
        kb_is_kilo: "2KB" => Ok(2_000);
        mb_is_mega: "400MB" => Ok(400_000_000);
        mb_lower_is_mega: "400mb" => Ok(400_000_000);
        gb_is_giga: "5GB" => Ok(5_000_000_000);
        tb_is_tera: "1TB" => Ok(1_000_000_000_000);
        space_before_unit: "64 MiB" => Ok(64 * MIB);
        surrounding_space: "  64M\n" => Ok(64 * MIB);
        u64_max: "18446744073709551615" => Ok(u64::MAX);
        largest_tib: "16777215TiB" => Ok(16_777_215 << 40);
        empty: "" => Err(ByteSizeError::Empty);
        only_spaces: "   " => Err(ByteSizeError::Empty);
        negative: "-1" => Err(ByteSizeError::Negative);
        negative_with_unit: "-64M" => Err(ByteSizeError::Negative);
        plus_sign: "+64M" => err(ByteSizeError::NotANumber, "+64M");
        unit_only: "M" => err(ByteSizeError::NotANumber, "M");
        words: "lots" => err(ByteSizeError::NotANumber, "lots");
        fraction: "1.5G" => err(ByteSizeError::Fraction, "1.5G");
        comma_fraction: "1,5G" => err(ByteSizeError::Fraction, "1,5G");
        digit_separator: "1_000" => err(ByteSizeError::NotANumber, "1_000");
        hex: "0x10" => err(ByteSizeError::UnknownUnit, "x10");
        exponent: "1e6" => err(ByteSizeError::UnknownUnit, "e6");
        unknown_prefix: "5P" => err(ByteSizeError::UnknownUnit, "P");
        unknown_long_unit: "5PiB" => err(ByteSizeError::UnknownUnit, "PiB");
        bits_spelled_out: "5Mbit" => err(ByteSizeError::UnknownUnit, "Mbit");
        bytes_spelled_out: "5 bytes" => err(ByteSizeError::UnknownUnit, "bytes");
        doubled_unit: "5MM" => err(ByteSizeError::UnknownUnit, "MM");
        ib_without_prefix: "5iB" => err(ByteSizeError::UnknownUnit, "iB");
        trailing_junk: "64M!" => err(ByteSizeError::UnknownUnit, "M!");
        junk_after_digits: "64!" => err(ByteSizeError::NotANumber, "64!");
        two_numbers: "64 64" => err(ByteSizeError::NotANumber, "64 64");
        non_ascii_digit: "٦٤" => err(ByteSizeError::NotANumber, "٦٤");
        past_u64: "18446744073709551616" => err(ByteSizeError::Overflow, "18446744073709551616");
        very_long: "99999999999999999999999999999999" => err(ByteSizeError::Overflow, "99999999999999999999999999999999");
        unit_overflows: "16777216TiB" => err(ByteSizeError::Overflow, "16777216TiB");
        si_unit_overflows: "18446745TB" => err(ByteSizeError::Overflow, "18446745TB");
    }

    #[test]
    fn every_error_says_what_to_write() {
        for text in ["", "-1", "1.5G", "x", "5P", "99999999999999999999999"] {
            let message = parse(text).expect_err(text).to_string();
            assert!(message.len() > 20, "{text:?}: {message}");
        }
        assert!(parse("5P").expect_err("unit").to_string().contains("MiB"));
    }
}
