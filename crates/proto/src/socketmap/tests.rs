//! Socketmap requests and replies (interop §1.2, §1.3).

use proptest::prelude::*;

use super::*;

#[test]
fn request_splits_on_first_space() {
    assert_eq!(
        parse_request(b"mta-sts example.com"),
        Ok(Request {
            name: "mta-sts".into(),
            key: "example.com".into()
        })
    );
}

#[test]
fn request_key_keeps_later_spaces() {
    let request = parse_request(b"mta-sts a b").unwrap();
    assert_eq!(request.key, "a b");
    assert_eq!(classify_key(&request.key), NextHop::Invalid("a b".into()));
}

#[test]
fn request_empty_key_is_invalid_later() {
    let request = parse_request(b"mta-sts ").unwrap();
    assert_eq!(classify_key(&request.key), NextHop::Invalid(String::new()));
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
        classify_key(&request.key),
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
    reply_empty_ok_becomes_temp: Reply::Ok(String::new()) => format!("TEMP {REPLY_EMPTY_OK}"),
    reply_too_large_becomes_temp: Reply::Ok("x".repeat(MAX_REPLY_BYTES)) => format!("TEMP {REPLY_TOO_LARGE}"),
    reply_perm_too_large_becomes_temp: Reply::Perm("x".repeat(MAX_REPLY_BYTES)) => format!("TEMP {REPLY_TOO_LARGE}"),
    reply_just_fits: Reply::Ok("x".repeat(MAX_REPLY_BYTES - 3)) => format!("OK {}", "x".repeat(MAX_REPLY_BYTES - 3)),
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
        "[ -~]{1,60}".prop_map(Reply::Ok),
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
            let _ = classify_key(&request.key);
        }
    }
}
