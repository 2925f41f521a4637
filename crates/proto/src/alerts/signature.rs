//! The webhook signature: `X-Mtasts-Signature: sha256=<hex>`, the lowercase hex HMAC-SHA256 of
//! the request body under the tenant's webhook secret, and `X-Mtasts-Timestamp: <unix
//! seconds>`, the time of sending (also the body's `sent_at`, so the signature covers it: a
//! receiver that rejects old timestamps rejects replays).
//!
//! This module writes and reads the header value; the caller computes the HMAC.

use crate::hex;

/// The header carrying the signature.
pub const SIGNATURE_HEADER: &str = "X-Mtasts-Signature";
/// The header carrying the time of sending (Unix seconds).
pub const TIMESTAMP_HEADER: &str = "X-Mtasts-Timestamp";
/// The scheme prefix of the signature value.
pub const SCHEME: &str = "sha256=";
/// Length of an HMAC-SHA256.
pub const MAC_BYTES: usize = 32;

/// The header value for `mac` (the HMAC-SHA256 of the body): `sha256=<64 hex digits>`.
pub fn header_value(mac: &[u8; MAC_BYTES]) -> String {
    format!("{SCHEME}{}", hex::encode(mac))
}

/// The MAC in a header value, or `None` when it is not `sha256=` and 64 hex digits.
pub fn parse_header(value: &str) -> Option<[u8; MAC_BYTES]> {
    let digits = value.trim().strip_prefix(SCHEME)?;
    if digits.len() != 2 * MAC_BYTES {
        return None;
    }
    hex::decode(digits)?.try_into().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_header_value_round_trips() {
        let mac = [0xab; MAC_BYTES];
        let value = header_value(&mac);
        assert_eq!(value, format!("sha256={}", "ab".repeat(32)));
        assert_eq!(parse_header(&value), Some(mac));
    }

    #[test]
    fn other_schemes_and_lengths_are_refused() {
        assert_eq!(parse_header(&format!("sha1={}", "ab".repeat(32))), None);
        assert_eq!(parse_header(&format!("sha256={}", "ab".repeat(31))), None);
        assert_eq!(parse_header(&format!("sha256={}", "zz".repeat(32))), None);
        assert_eq!(parse_header(""), None);
    }
}
