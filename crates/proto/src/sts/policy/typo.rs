//! Spotting misspelt policy keys (C52, C68): `max-age`, `maxage`, `nmx`, `mx_host`, `Mode`
//! are valid extension keys, so senders ignore them and then miss the required key. The
//! checker names the key the author probably meant.

/// The keys the RFC defines (8461 §3.2).
const KNOWN_KEYS: [&str; 4] = ["version", "mode", "max_age", "mx"];

/// The known key an extension key probably meant (C52, C68), if any.
pub(super) fn typo_of(key: &str) -> Option<&'static str> {
    let folded: String = key
        .chars()
        .map(|c| match c {
            '-' | '.' => '_',
            c => c.to_ascii_lowercase(),
        })
        .collect();
    KNOWN_KEYS.into_iter().find(|known| {
        folded == *known
            || folded.replace('_', "") == known.replace('_', "")
            || folded
                .strip_prefix(known)
                .is_some_and(|rest| rest.starts_with('_'))
            || edit_distance(&folded, known) <= if known.len() <= 2 { 1 } else { 2 }
    })
}

/// Levenshtein distance; both inputs are at most 32 characters here.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let current = row[j + 1];
            row[j + 1] = if ca == *cb {
                prev
            } else {
                1 + prev.min(row[j]).min(current)
            };
            prev = current;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typos() {
        for (key, known) in [
            ("Version", "version"),
            ("MODE", "mode"),
            ("nmx", "mx"),
            ("MX", "mx"),
            ("mx_host", "mx"),
            ("mx-host", "mx"),
            ("max-age", "max_age"),
            ("maxage", "max_age"),
            ("max_agee", "max_age"),
            ("Max_Age", "max_age"),
            ("verison", "version"),
        ] {
            assert_eq!(typo_of(key), Some(known), "{key}");
        }
        for key in ["x-note", "foo", "contact", "policy", "id"] {
            assert_eq!(typo_of(key), None, "{key}");
        }
    }

    #[test]
    fn distance() {
        assert_eq!(edit_distance("", ""), 0);
        assert_eq!(edit_distance("abc", ""), 3);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("maxage", "max_age"), 1);
    }
}
