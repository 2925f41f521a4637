//! Netstring decoding: never panics, respects the limit, decodes a stream fed in pieces the same
//! as the whole, and re-encodes every payload it returns.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mtasts_proto::socketmap::{NetstringError, decode_netstring, encode_netstring};

/// Payloads until the first error or incomplete tail; `chunk` bytes are appended at a time.
fn decode_stream(bytes: &[u8], max: usize, chunk: usize) -> (Vec<Vec<u8>>, Option<NetstringError>) {
    let mut buffer = Vec::new();
    let mut payloads = Vec::new();
    for piece in bytes.chunks(chunk.max(1)) {
        buffer.extend_from_slice(piece);
        loop {
            match decode_netstring(&buffer, max) {
                Ok(Some((payload, used))) => {
                    assert!(used > 0 && used <= buffer.len());
                    assert!(payload.len() <= max);
                    assert_eq!(encode_netstring(&payload), buffer[..used]);
                    payloads.push(payload);
                    buffer.drain(..used);
                }
                Ok(None) => break,
                Err(e) => return (payloads, Some(e)),
            }
        }
        // An incomplete netstring never needs more than the limit plus its framing.
        assert!(buffer.len() <= max + max.to_string().len() + 2);
    }
    (payloads, None)
}

fuzz_target!(|data: &[u8]| {
    // Byte 0 picks the limit, byte 1 the piece size; the rest is the stream.
    let [limit, chunk, stream @ ..] = data else {
        return;
    };
    let max = usize::from(*limit) * 4;
    let whole = decode_stream(stream, max, stream.len());
    assert_eq!(decode_stream(stream, max, usize::from(*chunk)), whole);
    assert_eq!(decode_stream(stream, max, 1), whole);
});
