//! Netstring framing (interop §1.2): valid, incomplete and broken inputs, plus properties.

use proptest::prelude::*;

use super::*;

const MAX: usize = 100;

/// `name: input => expected,` asserts `decode_netstring(input, MAX)`.
macro_rules! decode_cases {
    ($($name:ident: $input:expr => $expected:expr,)*) => {$(
        #[test]
        fn $name() {
            let input: Vec<u8> = $input.to_vec();
            let input = &input[..];
            assert_eq!(decode_netstring(input, MAX), $expected, "{:?}", String::from_utf8_lossy(input));
        }
    )*};
}

fn done(payload: &[u8], consumed: usize) -> Result<Option<(Vec<u8>, usize)>, NetstringError> {
    Ok(Some((payload.to_vec(), consumed)))
}

decode_cases! {
    hello: b"5:hello," => done(b"hello", 8),
    empty_payload: b"0:," => done(b"", 3),
    trailing_data_is_left: b"3:abc,4:next," => done(b"abc", 6),
    payload_with_colon_and_comma: b"3:a:,," => done(b"a:,", 6),
    binary_payload: b"2:\0\xff," => done(b"\0\xff", 5),
    exactly_max: format!("{MAX}:{},", "x".repeat(MAX)).as_bytes() => done("x".repeat(MAX).as_bytes(), MAX + 5),
    need_nothing_yet: b"" => Ok(None),
    need_more_digits: b"1" => Ok(None),
    need_colon: b"12" => Ok(None),
    need_payload: b"5:hel" => Ok(None),
    need_comma: b"5:hello" => Ok(None),
    zero_needs_colon: b"0" => Ok(None),
    non_digit_length: b"x:abc," => Err(NetstringError::BadLength),
    digit_then_letter: b"1x:a," => Err(NetstringError::BadLength),
    empty_length: b":," => Err(NetstringError::BadLength),
    leading_zero: b"05:hello," => Err(NetstringError::BadLength),
    double_zero: b"00:," => Err(NetstringError::BadLength),
    sign: b"+5:hello," => Err(NetstringError::BadLength),
    space_before_length: b" 5:hello," => Err(NetstringError::BadLength),
    space_after_length: b"5 :hello," => Err(NetstringError::BadLength),
    missing_comma: b"5:hello;" => Err(NetstringError::MissingComma),
    length_too_short: b"4:hello," => Err(NetstringError::MissingComma),
    over_max: b"101:" => Err(NetstringError::TooLong { len: 101, max: MAX }),
    over_max_before_colon: b"1000" => Err(NetstringError::TooLong { len: 1000, max: MAX }),
    over_max_stops_at_first_digit_past_it: b"99999999999999999999999999:" => Err(NetstringError::TooLong { len: 999, max: MAX }),
}

#[test]
fn overflow_is_too_long() {
    assert_eq!(
        decode_netstring(b"99999999999999999999999999:", usize::MAX),
        Err(NetstringError::TooLong {
            len: usize::MAX,
            max: usize::MAX
        })
    );
}

#[test]
fn encode_examples() {
    assert_eq!(encode_netstring(b"hello"), b"5:hello,");
    assert_eq!(encode_netstring(b""), b"0:,");
    assert_eq!(encode_netstring(&[b'x'; 10]), b"10:xxxxxxxxxx,");
}

#[test]
fn append_examples() {
    let mut out = b"1:a,".to_vec();
    append_netstring(b"hello", &mut out);
    append_netstring(b"", &mut out);
    assert_eq!(out, b"1:a,5:hello,0:,");
    for len in [0, 9, 10, 99, 100, 12_345, usize::MAX] {
        let mut header = Vec::new();
        append_length(len, &mut header);
        assert_eq!(header, format!("{len}:").as_bytes());
    }
}

#[test]
fn span_points_into_the_buffer() {
    assert_eq!(
        decode_netstring_span(b"3:abc,4:next,", MAX),
        Ok(Some((2..5, 6)))
    );
    assert_eq!(decode_netstring_span(b"0:,", MAX), Ok(Some((2..2, 3))));
    assert_eq!(decode_netstring_span(b"5:hel", MAX), Ok(None));
    assert_eq!(
        decode_netstring_span(b"5:hello;", MAX),
        Err(NetstringError::MissingComma)
    );
}

#[test]
fn every_strict_prefix_of_a_netstring_needs_more() {
    let wire = encode_netstring(b"mta-sts example.com");
    for end in 0..wire.len() {
        assert_eq!(
            decode_netstring(&wire[..end], MAX),
            Ok(None),
            "prefix {end}"
        );
    }
    assert_eq!(
        decode_netstring(&wire, MAX),
        Ok(Some((b"mta-sts example.com".to_vec(), wire.len())))
    );
}

/// What a stream of netstrings decodes to: the payloads until the first error or the end.
fn decode_all(bytes: &[u8], max: usize) -> (Vec<Vec<u8>>, Option<NetstringError>) {
    let mut payloads = Vec::new();
    let mut rest = bytes;
    loop {
        match decode_netstring(rest, max) {
            Ok(Some((payload, used))) => {
                assert!(used > 0 && used <= rest.len());
                payloads.push(payload);
                rest = &rest[used..];
            }
            Ok(None) => return (payloads, None),
            Err(e) => return (payloads, Some(e)),
        }
    }
}

/// The same stream fed in pieces, as a socket delivers it: append, decode, drop what was used.
fn decode_in_pieces(
    bytes: &[u8],
    cuts: &[usize],
    max: usize,
) -> (Vec<Vec<u8>>, Option<NetstringError>) {
    let mut points: Vec<usize> = cuts.iter().map(|c| c % (bytes.len() + 1)).collect();
    points.push(bytes.len());
    points.sort_unstable();
    let mut buffer = Vec::new();
    let mut payloads = Vec::new();
    let mut from = 0;
    for to in points {
        buffer.extend_from_slice(&bytes[from..to]);
        from = to;
        loop {
            match decode_netstring(&buffer, max) {
                Ok(Some((payload, used))) => {
                    payloads.push(payload);
                    buffer.drain(..used);
                }
                Ok(None) => break,
                Err(e) => return (payloads, Some(e)),
            }
        }
        // Bounded buffering: an incomplete netstring never needs more than max + framing.
        assert!(buffer.len() <= max + max.to_string().len() + 2);
    }
    (payloads, None)
}

proptest! {
    #[test]
    fn round_trip(payload in proptest::collection::vec(any::<u8>(), 0..300)) {
        let wire = encode_netstring(&payload);
        prop_assert_eq!(decode_netstring(&wire, 300), Ok(Some((payload, wire.len()))));
    }

    #[test]
    fn round_trip_stream(payloads in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..40), 0..6)) {
        let wire: Vec<u8> = payloads.iter().flat_map(|p| encode_netstring(p)).collect();
        prop_assert_eq!(decode_all(&wire, MAX), (payloads, None));
    }

    /// The appended netstring is the old encoding (`len.to_string()`, then the payload).
    #[test]
    fn append_is_the_plain_encoding(prefix in proptest::collection::vec(any::<u8>(), 0..10), payload in proptest::collection::vec(any::<u8>(), 0..300)) {
        let mut out = prefix.clone();
        append_netstring(&payload, &mut out);
        let mut expected = prefix;
        expected.extend_from_slice(payload.len().to_string().as_bytes());
        expected.push(b':');
        expected.extend_from_slice(&payload);
        expected.push(b',');
        prop_assert_eq!(out, expected);
    }

    /// The span and the copy agree on every input.
    #[test]
    fn span_and_copy_agree(bytes in proptest::collection::vec(prop_oneof![Just(b':'), Just(b','), Just(b'3'), any::<u8>()], 0..40)) {
        let copied = decode_netstring(&bytes, MAX);
        let span = decode_netstring_span(&bytes, MAX).map(|o| o.map(|(r, used)| (bytes[r].to_vec(), used)));
        prop_assert_eq!(copied, span);
    }

    #[test]
    fn never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200), max in 0usize..300) {
        if let Ok(Some((payload, used))) = decode_netstring(&bytes, max) {
            prop_assert!(payload.len() <= max && used <= bytes.len());
        }
    }

    #[test]
    fn pieces_decode_like_the_whole(
        payloads in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..30), 0..5),
        noise in proptest::collection::vec(any::<u8>(), 0..20),
        cuts in proptest::collection::vec(any::<usize>(), 0..8),
    ) {
        let mut wire: Vec<u8> = payloads.iter().flat_map(|p| encode_netstring(p)).collect();
        wire.extend_from_slice(&noise);
        prop_assert_eq!(decode_in_pieces(&wire, &cuts, MAX), decode_all(&wire, MAX));
    }

    #[test]
    fn arbitrary_bytes_in_pieces_decode_like_the_whole(
        bytes in proptest::collection::vec(prop_oneof![Just(b':'), Just(b','), Just(b'0'), Just(b'3'), any::<u8>()], 0..80),
        cuts in proptest::collection::vec(any::<usize>(), 0..8),
    ) {
        prop_assert_eq!(decode_in_pieces(&bytes, &cuts, 20), decode_all(&bytes, 20));
    }
}
