//! Netstrings, the framing of every Postfix socketmap request and reply (D. J. Bernstein's
//! netstring format, as used by Postfix `socketmap_table(5)`).
//!
//! A netstring is an ASCII decimal length, `:`, exactly that many bytes, and `,`: `5:hello,`.

use std::ops::Range;

use thiserror::Error;

/// Why a byte stream is not a netstring. Every variant means the peer broke the framing; the
/// only safe reaction is to close the connection (interop §1.2), because the stream cannot be
/// resynchronised.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum NetstringError {
    /// The length is empty, contains a non-digit, or has a leading zero (`05:`); only `0` itself
    /// may start with `0`.
    #[error("the netstring length is not a decimal number without leading zeros")]
    BadLength,
    /// The announced length is above the limit the caller set. Reported as soon as the digits
    /// read so far exceed the limit, before the payload arrives.
    #[error("the netstring announces {len} bytes, more than the limit of {max}")]
    TooLong {
        /// The announced length (saturated at `usize::MAX` when it does not fit).
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The byte after the payload is not `,`.
    #[error("the netstring payload is not followed by a comma")]
    MissingComma,
}

/// Decodes the netstring at the start of `buf`, accepting payloads of at most `max` bytes.
///
/// * `Ok(None)`: `buf` is a valid but incomplete prefix; read more bytes and call again with
///   the longer buffer. Because oversize lengths are rejected while their digits arrive, a
///   caller that keeps calling this never buffers more than `max` plus a few framing bytes.
/// * `Ok(Some((payload, consumed)))`: one netstring; `consumed` bytes of `buf` belong to it, the
///   rest is the start of the next one (Postfix does not pipeline, other clients may).
/// * `Err(_)`: the framing is broken (non-digit length, leading zero, length over `max`,
///   missing comma).
///
/// Never reads outside `buf`; work is linear in the bytes examined.
pub fn decode_netstring(
    buf: &[u8],
    max: usize,
) -> Result<Option<(Vec<u8>, usize)>, NetstringError> {
    Ok(decode_netstring_span(buf, max)?.map(|(payload, used)| (buf[payload].to_vec(), used)))
}

/// Like [`decode_netstring`], but gives where the payload lies in `buf` instead of a copy:
/// a server answers from the bytes where they arrived, then drops the `consumed` bytes.
pub fn decode_netstring_span(
    buf: &[u8],
    max: usize,
) -> Result<Option<(Range<usize>, usize)>, NetstringError> {
    let mut len: usize = 0;
    let mut digits = 0usize;
    let mut colon = None;
    for (i, &b) in buf.iter().enumerate() {
        match b {
            b'0'..=b'9' => {
                // `0` may only stand alone: `0:,` is the empty payload, `05:` is invalid.
                if digits == 1 && len == 0 {
                    return Err(NetstringError::BadLength);
                }
                digits += 1;
                len = match len
                    .checked_mul(10)
                    .and_then(|n| n.checked_add(usize::from(b - b'0')))
                {
                    Some(n) => n,
                    None => {
                        return Err(NetstringError::TooLong {
                            len: usize::MAX,
                            max,
                        });
                    }
                };
                if len > max {
                    return Err(NetstringError::TooLong { len, max });
                }
            }
            b':' if digits > 0 => {
                colon = Some(i);
                break;
            }
            _ => return Err(NetstringError::BadLength),
        }
    }
    let Some(colon) = colon else {
        // Only digits so far (or nothing): wait for the rest of the length.
        return Ok(None);
    };
    let start = colon + 1;
    // `len <= max` and `colon < buf.len()`: a sum past usize::MAX cannot be a buffer we hold.
    let Some(end) = start.checked_add(len) else {
        return Ok(None);
    };
    match buf.get(end) {
        None => Ok(None),
        Some(b',') => Ok(Some((start..end, end + 1))),
        Some(_) => Err(NetstringError::MissingComma),
    }
}

/// Encodes `payload` as a netstring: `<len>:<payload>,`.
pub fn encode_netstring(payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + 8);
    append_netstring(payload, &mut out);
    out
}

/// Appends `payload` framed as a netstring to `out` (a reusable output buffer).
pub fn append_netstring(payload: &[u8], out: &mut Vec<u8>) {
    append_length(payload.len(), out);
    out.extend_from_slice(payload);
    out.push(b',');
}

/// Appends the netstring header `<len>:` to `out`: the caller then appends exactly `len`
/// payload bytes and `,`.
pub(crate) fn append_length(len: usize, out: &mut Vec<u8>) {
    // usize::MAX has 20 decimal digits.
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    let mut n = len;
    loop {
        at -= 1;
        // `n % 10` is below 10: the cast cannot truncate.
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[at..]);
    out.push(b':');
}

#[cfg(test)]
#[path = "netstring_tests.rs"]
mod tests;
