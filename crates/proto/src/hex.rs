//! Hexadecimal text of bytes: the one encoder and decoder behind token and session hashes,
//! the login form's signed values, secret-key files, key ids, page cursors and report digests.

const DIGITS: &[u8; 16] = b"0123456789abcdef";

/// `bytes` as lowercase hexadecimal, two digits per byte.
pub fn encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    out
}

/// The bytes of hexadecimal `text` (either case); `None` for an odd length or any other
/// character. An empty text is no bytes.
pub fn decode(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    text.as_bytes()
        .chunks_exact(2)
        .map(|pair| Some(digit(pair[0])? << 4 | digit(pair[1])?))
        .collect()
}

/// Whether `text` is non-empty lowercase hexadecimal of whole bytes: the form [`encode`]
/// writes, for values that must have exactly one spelling.
pub fn is_lower(text: &str) -> bool {
    !text.is_empty()
        && text.len().is_multiple_of(2)
        && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

fn digit(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_every_byte() {
        let all: Vec<u8> = (0..=255).collect();
        let text = encode(&all);
        assert_eq!(text.len(), 512);
        assert!(text.starts_with("000102") && text.ends_with("fdfeff"));
        assert!(is_lower(&text));
        assert_eq!(decode(&text).unwrap(), all);
        assert_eq!(decode(&text.to_ascii_uppercase()).unwrap(), all);
    }

    #[test]
    fn refuses_what_is_not_hex() {
        assert_eq!(decode(""), Some(Vec::new()));
        assert_eq!(decode("abc"), None);
        assert_eq!(decode("0g"), None);
        assert_eq!(decode("+1"), None);
        assert_eq!(decode("é1"), None);
        assert!(!is_lower(""));
        assert!(!is_lower("AB"));
        assert!(!is_lower("abc"));
        assert!(is_lower("00ff"));
    }
}
