//! Socketmap requests and replies (interop §1.2, §1.3).

use proptest::prelude::*;

use super::*;

#[test]
fn request_splits_on_first_space() {
    assert_eq!(
        parse_request(b"mta-sts example.com"),
        Ok(Request {
            name: "mta-sts",
            key: "example.com"
        })
    );
}

#[test]
fn request_key_keeps_later_spaces() {
    let request = parse_request(b"mta-sts a b").unwrap();
    assert_eq!(request.key, "a b");
    assert_eq!(classify_key(request.key), NextHop::Invalid("a b".into()));
}

#[test]
fn request_empty_key_is_invalid_later() {
    let request = parse_request(b"mta-sts ").unwrap();
    assert_eq!(classify_key(request.key), NextHop::Invalid("".into()));
}

#[test]
fn request_errors() {
    assert_eq!(
        parse_request(b"example.com"),
        Err(RequestError::MissingSpace)
    );
    assert_eq!(parse_request(b""), Err(RequestError::MissingSpace));
    assert_eq!(parse_request(b" example.com"), Err(RequestError::EmptyName));
    assert_eq!(parse_request(b"mta-sts \xff"), Err(RequestError::NotUtf8));
}

#[test]
fn request_utf8_key() {
    let request = parse_request("mta-sts münchen.example".as_bytes()).unwrap();
    assert_eq!(
        classify_key(request.key),
        NextHop::Domain("xn--mnchen-3ya.example".into())
    );
}

/// `name: reply => payload,` asserts `reply.to_payload()`.
macro_rules! reply_cases {
    ($($name:ident: $reply:expr => $payload:expr,)*) => {$(
        #[test]
        fn $name() {
            let payload = $reply.to_payload();
            assert_eq!(String::from_utf8_lossy(&payload), $payload);
        }
    )*};
}

reply_cases! {
    reply_ok: Reply::Ok("secure match=mx.example.com".into()) => "OK secure match=mx.example.com",
    reply_notfound_has_trailing_space: Reply::NotFound => "NOTFOUND ",
    reply_temp: Reply::Temp("dns timeout".into()) => "TEMP dns timeout",
    reply_perm: Reply::Perm("unknown profile".into()) => "PERM unknown profile",
    reply_temp_control_characters: Reply::Temp("a\r\nb\0c".into()) => "TEMP a  b c",
    reply_empty_ok_becomes_temp: Reply::Ok("".into()) => format!("TEMP {REPLY_EMPTY_OK}"),
    reply_too_large_becomes_temp: Reply::Ok("x".repeat(MAX_REPLY_BYTES).into()) => format!("TEMP {REPLY_TOO_LARGE}"),
    reply_perm_too_large_becomes_temp: Reply::Perm("x".repeat(MAX_REPLY_BYTES)) => format!("TEMP {REPLY_TOO_LARGE}"),
    reply_just_fits: Reply::Ok("x".repeat(MAX_REPLY_BYTES - 3).into()) => format!("OK {}", "x".repeat(MAX_REPLY_BYTES - 3)),
}

#[test]
fn reply_netstring() {
    assert_eq!(Reply::NotFound.to_netstring(), b"9:NOTFOUND ,");
}

#[test]
fn reply_from_payload() {
    assert_eq!(Reply::from_payload(b"NOTFOUND "), Ok(Reply::NotFound));
    assert_eq!(Reply::from_payload(b"NOTFOUND"), Ok(Reply::NotFound));
    assert_eq!(
        Reply::from_payload(b"TIMEOUT slow"),
        Ok(Reply::Temp("slow".into()))
    );
    assert_eq!(
        Reply::from_payload(b"ok x"),
        Err(ReplyError::UnknownStatus("ok".into()))
    );
    assert_eq!(Reply::from_payload(b"OK \xff"), Err(ReplyError::NotUtf8));
}

fn arb_reply() -> impl Strategy<Value = Reply> {
    prop_oneof![
        "[ -~]{1,60}".prop_map(|data| Reply::Ok(data.into())),
        Just(Reply::NotFound),
        "[ -~]{0,60}".prop_map(Reply::Temp),
        "[ -~]{0,60}".prop_map(Reply::Perm),
    ]
}

proptest! {
    #[test]
    fn reply_round_trip(reply in arb_reply()) {
        let framed = reply.to_netstring();
        let (payload, used) = decode_netstring(&framed, MAX_REPLY_BYTES).unwrap().unwrap();
        prop_assert_eq!(used, framed.len());
        prop_assert_eq!(Reply::from_payload(&payload), Ok(reply));
    }

    #[test]
    fn request_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..100)) {
        if let Ok(request) = parse_request(&bytes) {
            let _ = classify_key(request.key);
        }
    }
}

/// The payload as written before the reply was appended in place (a `format!` per reply):
/// the oracle for [`Reply::to_payload`] and [`Reply::append_netstring`].
fn reference_payload(reply: &Reply) -> Vec<u8> {
    fn sanitize(reason: &str) -> String {
        reason
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect()
    }
    let payload = match reply {
        Reply::Ok(data) if data.is_empty() => format!("TEMP {}", sanitize(REPLY_EMPTY_OK)),
        Reply::Ok(data) => format!("OK {data}"),
        Reply::NotFound => "NOTFOUND ".to_owned(),
        Reply::Temp(reason) => format!("TEMP {}", sanitize(reason)),
        Reply::Perm(reason) => format!("PERM {}", sanitize(reason)),
    };
    if payload.len() > MAX_REPLY_BYTES {
        return format!("TEMP {}", sanitize(REPLY_TOO_LARGE)).into_bytes();
    }
    payload.into_bytes()
}

#[test]
fn append_netstring_appends() {
    let mut out = b"9:NOTFOUND ,".to_vec();
    Reply::Ok("secure".into()).append_netstring(&mut out);
    assert_eq!(out, b"9:NOTFOUND ,9:OK secure,");
}

/// Replies at the size limit, where sanitising changes the length (C1 controls are two
/// bytes in UTF-8 and go out as one space).
#[test]
fn reply_size_limit_counts_the_sanitised_reason() {
    let c1 = "\u{85}";
    for reply in [
        Reply::Perm(format!("{}{c1}", "x".repeat(MAX_REPLY_BYTES - 6))),
        Reply::Perm(format!("{}{c1}", "x".repeat(MAX_REPLY_BYTES - 5))),
        Reply::Temp(format!("{}{c1}", "x".repeat(MAX_REPLY_BYTES - 6))),
        Reply::Temp("x".repeat(MAX_REPLY_BYTES - 4)),
        Reply::Ok("x".repeat(MAX_REPLY_BYTES - 2).into()),
    ] {
        assert_eq!(reply.to_payload(), reference_payload(&reply));
        assert_eq!(
            reply.to_netstring(),
            encode_netstring(&reference_payload(&reply))
        );
    }
    assert!(
        Reply::Perm(format!("{}{c1}", "x".repeat(MAX_REPLY_BYTES - 6)))
            .to_payload()
            .starts_with(b"PERM ")
    );
}

fn any_reply() -> impl Strategy<Value = Reply> {
    prop_oneof![
        "\\PC{0,40}".prop_map(|data| Reply::Ok(data.into())),
        Just(Reply::NotFound),
        ".{0,40}".prop_map(Reply::Temp),
        "[\\x00-\\x1f\\x7f\\u{80}-\\u{9f}a-zé ]{0,40}".prop_map(Reply::Temp),
        ".{0,40}".prop_map(Reply::Perm),
        "[\\x00-\\x1f\\x7f\\u{80}-\\u{9f}a-zé ]{0,40}".prop_map(Reply::Perm),
    ]
}

proptest! {
    /// The payload and the netstring written in place are the bytes of the old `format!`
    /// and `encode_netstring`.
    #[test]
    fn reply_bytes_as_before(reply in any_reply(), prefix in proptest::collection::vec(any::<u8>(), 0..8)) {
        let expected = reference_payload(&reply);
        prop_assert_eq!(reply.to_payload(), expected.clone());
        prop_assert_eq!(reply.to_netstring(), encode_netstring(&expected));
        let mut out = prefix.clone();
        reply.append_netstring(&mut out);
        let mut framed = prefix;
        framed.extend(encode_netstring(&expected));
        prop_assert_eq!(out, framed);
    }
}
