//! Numbers as a domain owner reads them in a verdict or a table: `1,204`, `97.2%`.

/// `1204` → `1,204`.
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// `part` of `whole` as a percentage with one decimal, rounded down so that anything short of
/// all is never shown as `100.0%` (and anything above none never as `0.0%`: `<0.1%`). `None`
/// when `whole` is 0.
pub fn percent(part: u64, whole: u64) -> Option<String> {
    if whole == 0 {
        return None;
    }
    let part = part.min(whole);
    if part == whole {
        return Some("100%".to_owned());
    }
    if part == 0 {
        return Some("0%".to_owned());
    }
    // u128: part * 1000 cannot overflow.
    let tenths = (u128::from(part) * 1000 / u128::from(whole)) as u64;
    if tenths == 0 {
        return Some("<0.1%".to_owned());
    }
    Some(format!("{}.{}%", tenths / 10, tenths % 10))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thousands_are_grouped() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(1204), "1,204");
        assert_eq!(thousands(123_456), "123,456");
        assert_eq!(thousands(1_234_567), "1,234,567");
        assert_eq!(thousands(u64::MAX), "18,446,744,073,709,551,615");
    }

    #[test]
    fn percentages_never_round_to_all_or_nothing() {
        assert_eq!(percent(1, 0), None);
        assert_eq!(percent(0, 5), Some("0%".into()));
        assert_eq!(percent(5, 5), Some("100%".into()));
        assert_eq!(percent(9, 5), Some("100%".into()));
        assert_eq!(percent(972, 1000), Some("97.2%".into()));
        assert_eq!(percent(9999, 10_000), Some("99.9%".into()));
        assert_eq!(percent(1, 10_000), Some("<0.1%".into()));
        assert_eq!(percent(1, 3), Some("33.3%".into()));
        assert_eq!(percent(u64::MAX - 1, u64::MAX), Some("99.9%".into()));
    }
}
