//! Policy delegation: framing bounds, attribute reading, rule precedence and every decided
//! case of missing or odd attributes.

use std::net::IpAddr;

use super::*;

/// A Postfix 3.7 RCPT request, as smtpd sends it (attributes we do not read included).
fn wire(extra: &[(&str, &str)]) -> Vec<u8> {
    let mut attrs: Vec<(&str, &str)> = vec![
        ("request", "smtpd_access_policy"),
        ("protocol_state", "RCPT"),
        ("protocol_name", "ESMTP"),
        ("helo_name", "mx.partner.example"),
        ("queue_id", ""),
        ("sender", "alice@partner.example"),
        ("recipient", "bob@inbound.example"),
        ("recipient_count", "0"),
        ("client_address", "192.0.2.10"),
        ("client_name", "unknown"),
        ("reverse_client_name", "mx.partner.example"),
        ("instance", "1c2b.6570d2f1.8a3f1.0"),
        ("sasl_method", ""),
        ("size", "0"),
        ("ccert_subject", ""),
        ("ccert_issuer", ""),
        ("ccert_fingerprint", ""),
        ("encryption_protocol", ""),
        ("encryption_cipher", ""),
        ("encryption_keysize", "0"),
        ("etrn_domain", ""),
        ("stress", ""),
        ("ccert_pubkey_fingerprint", ""),
        ("client_port", "40000"),
        ("policy_context", ""),
        ("server_address", "192.0.2.1"),
        ("server_port", "25"),
    ];
    for (name, value) in extra {
        match attrs.iter_mut().find(|(n, _)| n == name) {
            Some(slot) => slot.1 = value,
            None => attrs.push((name, value)),
        }
    }
    let mut out = Vec::new();
    for (n, v) in attrs {
        out.extend_from_slice(format!("{n}={v}\n").as_bytes());
    }
    out.push(b'\n');
    out
}

const TLS13: &[(&str, &str)] = &[
    ("encryption_protocol", "TLSv1.3"),
    ("encryption_cipher", "TLS_AES_256_GCM_SHA384"),
    ("encryption_keysize", "256"),
];

fn session(extra: &[(&str, &str)]) -> Session {
    let bytes = wire(extra);
    let request = parse_request(&bytes).unwrap();
    Session::from_request(&request)
}

fn with(
    base: &[(&'static str, &'static str)],
    more: &[(&'static str, &'static str)],
) -> Vec<(&'static str, &'static str)> {
    base.iter().chain(more).copied().collect()
}

fn rules() -> InboundRules {
    let mut rules = InboundRules::default();
    rules
        .add_sender("partner.example", InboundRule::level(InboundLevel::Encrypt))
        .unwrap();
    rules
        .add_sender(".subs.example", InboundRule::level(InboundLevel::Encrypt))
        .unwrap();
    rules
        .add_sender("relaxed.example", InboundRule::level(InboundLevel::May))
        .unwrap();
    rules
        .add_sender(
            "modern.example",
            InboundRule {
                min_tls: Some(TlsVersion::Tls1_2),
                ..InboundRule::level(InboundLevel::Encrypt)
            },
        )
        .unwrap();
    rules
        .add_sender("certs.example", InboundRule::level(InboundLevel::Verify))
        .unwrap();
    rules
        .add_sender(
            "pinned.example",
            InboundRule {
                fingerprints: vec!["ab:cd:ef:01".into()],
                ..InboundRule::level(InboundLevel::Verify)
            },
        )
        .unwrap();
    rules
        .add_sender(
            "strict.example",
            InboundRule {
                refuse: Some("550 5.7.0".parse().unwrap()),
                ..InboundRule::level(InboundLevel::Encrypt)
            },
        )
        .unwrap();
    rules
}

fn action(rules: &InboundRules, extra: &[(&str, &str)]) -> String {
    rules.judge(&session(extra)).action()
}

// --- framing --------------------------------------------------------------------------------

#[test]
fn request_end_is_found_across_splits() {
    let bytes = wire(&[]);
    for cut in 0..bytes.len() {
        assert_eq!(find_request_end(&bytes[..cut]).unwrap(), None, "cut {cut}");
    }
    assert_eq!(find_request_end(&bytes).unwrap(), Some(bytes.len()));
    let mut two = bytes.clone();
    two.extend_from_slice(&bytes);
    assert_eq!(find_request_end(&two).unwrap(), Some(bytes.len()));
    // CRLF lines are read too.
    let crlf = b"request=smtpd_access_policy\r\nsender=a@b.example\r\n\r\nrest";
    assert_eq!(find_request_end(crlf).unwrap(), Some(crlf.len() - 4));
}

#[test]
fn oversized_input_is_refused_before_the_end() {
    let long_line = vec![b'x'; MAX_LINE_BYTES + 1];
    assert_eq!(
        find_request_end(&long_line),
        Err(PolicyRequestError::LineTooLong { line: 1 })
    );
    let mut many = Vec::new();
    for i in 0..=MAX_ATTRIBUTES {
        many.extend_from_slice(format!("a{i}=1\n").as_bytes());
    }
    assert_eq!(
        find_request_end(&many),
        Err(PolicyRequestError::TooManyAttributes)
    );
    let mut big = Vec::new();
    while big.len() <= MAX_REQUEST_BYTES {
        big.extend_from_slice(&[b'y'; 1000]);
        big.extend_from_slice(b"=1\n");
    }
    assert_eq!(find_request_end(&big), Err(PolicyRequestError::TooLarge));
    assert_eq!(parse_request(&big), Err(PolicyRequestError::TooLarge));
    // Exactly at the line limit is fine.
    let mut ok = b"request=".to_vec();
    ok.resize(MAX_LINE_BYTES, b'z');
    ok.extend_from_slice(b"\n\n");
    assert_eq!(find_request_end(&ok).unwrap(), Some(ok.len()));
}

// --- parsing --------------------------------------------------------------------------------

#[test]
fn a_postfix_request_is_read() {
    let bytes = wire(TLS13);
    let request = parse_request(&bytes).unwrap();
    assert_eq!(request.protocol_state, Some("RCPT"));
    assert_eq!(request.sender, Some("alice@partner.example"));
    assert_eq!(request.client_address, Some("192.0.2.10".parse().unwrap()));
    assert_eq!(request.client_name, Some("unknown"));
    assert_eq!(request.reverse_client_name, Some("mx.partner.example"));
    assert_eq!(request.encryption_protocol, Some("TLSv1.3"));
    assert_eq!(request.encryption_keysize, Some(256));
    assert_eq!(request.queue_id, None, "empty is absent");
    assert_eq!(request.ccert_subject, None);
    let plain = wire(&[]);
    assert_eq!(
        parse_request(&plain).unwrap().encryption_keysize,
        None,
        "0 is absent"
    );
}

#[test]
fn malformed_requests_are_refused() {
    let cases: Vec<(Vec<u8>, PolicyRequestError)> = vec![
        (
            b"request=smtpd_access_policy\nnoequals\n\n".to_vec(),
            PolicyRequestError::NotAttribute { line: 2 },
        ),
        (
            b"=value\n\n".to_vec(),
            PolicyRequestError::NotAttribute { line: 1 },
        ),
        (
            b"sender=a@b.example\n\n".to_vec(),
            PolicyRequestError::MissingRequest,
        ),
        (b"request=\n\n".to_vec(), PolicyRequestError::MissingRequest),
        (b"\n".to_vec(), PolicyRequestError::MissingRequest),
        (
            b"request=junk\n\n".to_vec(),
            PolicyRequestError::UnknownRequest("junk".into()),
        ),
        (
            wire(&[("client_address", "not-an-ip")]),
            PolicyRequestError::BadClientAddress("not-an-ip".into()),
        ),
        (
            wire(&[("encryption_keysize", "big")]),
            PolicyRequestError::BadKeysize("big".into()),
        ),
        (
            b"request=smtpd_access_policy\nsender=a@x.example\nsender=a@partner.example\n\n"
                .to_vec(),
            PolicyRequestError::Duplicate { name: "sender" },
        ),
        (
            b"request=smtpd_access_policy\nsender=a@\xff.example\n\n".to_vec(),
            PolicyRequestError::BadText { name: "sender" },
        ),
        (
            b"request=smtpd_access_policy\nencryption_protocol=TLS\x01v1.3\n\n".to_vec(),
            PolicyRequestError::BadText {
                name: "encryption_protocol",
            },
        ),
    ];
    for (bytes, error) in cases {
        assert_eq!(
            parse_request(&bytes),
            Err(error),
            "{}",
            String::from_utf8_lossy(&bytes)
        );
    }
}

#[test]
fn attributes_not_read_are_skipped_unchecked() {
    let bytes =
        b"request=smtpd_access_policy\nhelo_nam\xffe=x\nstress=\nstress=yes\nfuture=\xfe\n\n";
    let request = parse_request(bytes).unwrap();
    assert_eq!(request.sender, None);
}

#[test]
fn answers_are_one_attribute_and_an_empty_line() {
    let mut out = Vec::new();
    encode_answer("DUNNO", &mut out);
    assert_eq!(out, b"action=DUNNO\n\n");
    out.clear();
    encode_answer("450 4.7.0 a\nb", &mut out);
    assert_eq!(out, b"action=450 4.7.0 a b\n\n");
}

// --- rules and precedence -------------------------------------------------------------------

#[test]
fn no_rule_is_dunno_for_every_session() {
    let rules = rules();
    for extra in [
        &[("sender", "x@nobody.example")][..],
        &with(TLS13, &[("sender", "x@nobody.example")]),
    ] {
        let verdict = rules.judge(&session(extra));
        assert_eq!(verdict.outcome, Outcome::NoRule);
        assert_eq!(verdict.action(), "DUNNO");
    }
    assert_eq!(
        InboundRules::default().judge(&session(&[])).action(),
        "DUNNO"
    );
}

#[test]
fn encrypt_refuses_plaintext_and_accepts_tls() {
    let rules = rules();
    let verdict = rules.judge(&session(&[]));
    assert_eq!(verdict.outcome.as_str(), "refused");
    assert_eq!(
        verdict.action(),
        "450 4.7.0 TLS (STARTTLS) is required for mail from here (inbound rule sender partner.example: encrypt)"
    );
    assert_eq!(action(&rules, TLS13), "DUNNO");
    assert_eq!(rules.judge(&session(TLS13)).outcome, Outcome::Satisfied);
    // The sender's case and a trailing dot do not matter.
    assert!(action(&rules, &[("sender", "Alice@PARTNER.Example.")]).starts_with("450 4.7.0"));
}

#[test]
fn suffix_keys_cover_subdomains_only() {
    let rules = rules();
    assert!(action(&rules, &[("sender", "a@x.subs.example")]).starts_with("450"));
    assert!(action(&rules, &[("sender", "a@y.x.subs.example")]).starts_with("450"));
    assert_eq!(action(&rules, &[("sender", "a@subs.example")]), "DUNNO");
    assert_eq!(
        action(&rules, &[("sender", "a@x.partner.example")]),
        "DUNNO"
    );
}

#[test]
fn refusal_code_is_configurable_per_rule() {
    let rules = rules();
    assert!(
        action(&rules, &[("sender", "a@strict.example")])
            .starts_with("550 5.7.0 TLS (STARTTLS) is required")
    );
    let mut other = InboundRules::new("550 5.7.1".parse().unwrap());
    other
        .add_sender("partner.example", InboundRule::level(InboundLevel::Encrypt))
        .unwrap();
    assert!(action(&other, &[]).starts_with("550 5.7.1 "));
}

#[test]
fn minimum_tls_version() {
    let rules = rules();
    let modern = |version: &'static str| {
        action(
            &rules,
            &[
                ("sender", "a@modern.example"),
                ("encryption_protocol", version),
            ],
        )
    };
    assert_eq!(modern("TLSv1.2"), "DUNNO");
    assert_eq!(modern("TLSv1.3"), "DUNNO");
    assert!(
        modern("TLSv1.1").contains("TLSv1.2 or later is required, not TLSv1.1"),
        "{}",
        modern("TLSv1.1")
    );
    assert!(modern("TLSv1").contains("not TLSv1 "));
    assert!(modern("SSLv3").starts_with("450"));
    // Unknown names meet `encrypt` but not a minimum.
    assert!(modern("TLSv1.4").contains("the TLS version is not known"));
    assert_eq!(
        action(&rules, &[("encryption_protocol", "TLSv1.4")]),
        "DUNNO"
    );
    assert!(
        action(&rules, &[("sender", "a@modern.example")]).contains("TLS (STARTTLS) is required")
    );
}

#[test]
fn verify_needs_a_certificate_postfix_trusted() {
    let rules = rules();
    let certs = with(TLS13, &[("sender", "a@certs.example")]);
    assert!(action(&rules, &certs).contains("client certificate this server verifies"));
    // Presented but untrusted: Postfix sends the fingerprint without the subject.
    let untrusted = with(&certs, &[("ccert_fingerprint", "AB:CD:EF:01")]);
    assert!(action(&rules, &untrusted).starts_with("450 4.7.0"));
    let trusted = with(
        &untrusted,
        &[
            ("ccert_subject", "client.partner.example"),
            ("ccert_issuer", "Test+20CA"),
        ],
    );
    assert_eq!(action(&rules, &trusted), "DUNNO");
    // Plaintext is refused for TLS first.
    assert!(
        action(
            &rules,
            &[("sender", "a@certs.example"), ("ccert_subject", "x")]
        )
        .contains("STARTTLS")
    );
}

#[test]
fn verify_with_fingerprints_needs_a_pinned_certificate() {
    let rules = rules();
    let base = with(TLS13, &[("sender", "a@pinned.example")]);
    let trusted_other = with(
        &base,
        &[("ccert_subject", "x"), ("ccert_fingerprint", "00:11")],
    );
    assert!(action(&rules, &trusted_other).contains("configured fingerprint"));
    for name in ["ccert_fingerprint", "ccert_pubkey_fingerprint"] {
        let pinned = with(&base, &[(name, "AB:CD:EF:01")]);
        assert_eq!(action(&rules, &pinned), "DUNNO", "{name}");
    }
    let lower = with(&base, &[("ccert_fingerprint", "abcdef01")]);
    assert_eq!(action(&rules, &lower), "DUNNO");
}

#[test]
fn network_beats_client_name_beats_sender() {
    let mut rules = rules();
    rules
        .add_network("192.0.2.0/24", InboundRule::level(InboundLevel::May))
        .unwrap();
    rules
        .add_network("192.0.2.128/25", InboundRule::level(InboundLevel::Verify))
        .unwrap();
    rules
        .add_network("2001:db8::/32", InboundRule::level(InboundLevel::Encrypt))
        .unwrap();
    rules
        .add_client(".relay.example", InboundRule::level(InboundLevel::May))
        .unwrap();
    rules
        .add_client(
            "mx.strict.example",
            InboundRule::level(InboundLevel::Encrypt),
        )
        .unwrap();
    let key = |extra: &[(&str, &str)]| {
        rules
            .judge(&session(extra))
            .rule
            .map(|(k, _)| k.to_string())
    };
    assert_eq!(key(&[]), Some("network 192.0.2.0/24".into()));
    assert_eq!(
        action(&rules, &[]),
        "DUNNO",
        "the network's may overrides the sender's encrypt"
    );
    assert_eq!(
        key(&[("client_address", "192.0.2.200")]),
        Some("network 192.0.2.128/25".into())
    );
    assert_eq!(
        key(&[("client_address", "2001:db8::1")]),
        Some("network 2001:db8::/32".into())
    );
    assert_eq!(
        key(&[("client_address", "::ffff:192.0.2.200")]),
        Some("network 192.0.2.128/25".into())
    );
    let elsewhere = [
        ("client_address", "198.51.100.7"),
        ("client_name", "a.relay.example"),
    ];
    assert_eq!(key(&elsewhere), Some("client .relay.example".into()));
    let named = [
        ("client_address", "198.51.100.7"),
        ("client_name", "MX.strict.example"),
        ("sender", "x@relaxed.example"),
    ];
    assert_eq!(key(&named), Some("client mx.strict.example".into()));
    assert!(action(&rules, &named).starts_with("450 4.7.0"));
    assert_eq!(
        key(&[("client_address", "198.51.100.7")]),
        Some("sender partner.example".into())
    );
}

#[test]
fn unverified_names_and_null_senders_do_not_match() {
    let mut rules = InboundRules::default();
    rules
        .add_client(
            "mx.partner.example",
            InboundRule::level(InboundLevel::Encrypt),
        )
        .unwrap();
    rules
        .add_sender("partner.example", InboundRule::level(InboundLevel::Encrypt))
        .unwrap();
    // reverse_client_name is mx.partner.example, client_name unknown: no client rule.
    for sender in ["", "postmaster", "a@[192.0.2.1]", "a@bad_domain!"] {
        let verdict = rules.judge(&session(&[("sender", sender)]));
        assert_eq!(verdict.outcome, Outcome::NoRule, "{sender:?}");
    }
    // The verified name does match, whatever the sender.
    assert!(
        action(
            &rules,
            &[("sender", ""), ("client_name", "mx.partner.example")]
        )
        .starts_with("450")
    );
    // The last @ separates the domain.
    assert!(action(&rules, &[("sender", "\"a@x\"@partner.example")]).starts_with("450"));
}

#[test]
fn requests_before_mail_from_are_not_answered_dunno() {
    let rules = rules();
    for state in ["CONNECT", "EHLO", "HELO", "helo"] {
        let verdict = rules.judge(&session(&with(TLS13, &[("protocol_state", state)])));
        assert_eq!(verdict.outcome, Outcome::TooEarly, "{state}");
        assert!(verdict.action().starts_with("451 4.3.5 "));
    }
    // Without rules nothing is required at any stage.
    assert_eq!(
        InboundRules::default()
            .judge(&session(&[("protocol_state", "CONNECT")]))
            .action(),
        "DUNNO"
    );
    // MAIL, DATA, an unknown or missing state: judged with what the request holds.
    for state in ["MAIL", "DATA", "END-OF-MESSAGE", "VRFY", "BDAT-FUTURE", ""] {
        assert!(
            action(&rules, &[("protocol_state", state)]).starts_with("450"),
            "{state:?}"
        );
    }
}

#[test]
fn missing_client_address_leaves_other_rules() {
    let mut rules = rules();
    rules
        .add_network("0.0.0.0/0", InboundRule::level(InboundLevel::May))
        .unwrap();
    assert_eq!(action(&rules, &[]), "DUNNO");
    assert!(action(&rules, &[("client_address", "")]).starts_with("450"));
}

// --- configuration values -------------------------------------------------------------------

#[test]
fn rule_values_are_checked() {
    assert_eq!(
        "verify".parse::<InboundLevel>().unwrap(),
        InboundLevel::Verify
    );
    assert!("secure".parse::<InboundLevel>().is_err());
    assert_eq!("TLSv1.0".parse::<TlsVersion>().unwrap(), TlsVersion::Tls1_0);
    assert!("1.2".parse::<TlsVersion>().is_err());
    for good in ["450 4.7.0", "550 5.7.0", "421 4.7.1", "554 5.7.100"] {
        assert_eq!(good.parse::<Refusal>().unwrap().as_str(), good);
    }
    for bad in [
        "450",
        "250 2.0.0",
        "450 5.7.0",
        "550 4.7.0",
        "45 4.7.0",
        "450 4.7",
        "450 4.7.x",
        "450 4.7.0 text",
        "",
    ] {
        assert!(bad.parse::<Refusal>().is_err(), "{bad:?}");
    }
    let mut rules = InboundRules::default();
    let may_min = InboundRule {
        min_tls: Some(TlsVersion::Tls1_2),
        ..InboundRule::level(InboundLevel::May)
    };
    assert!(matches!(
        rules.add_sender("a.example", may_min),
        Err(RuleError::Inconsistent(_))
    ));
    let encrypt_pins = InboundRule {
        fingerprints: vec!["AB".into()],
        ..InboundRule::level(InboundLevel::Encrypt)
    };
    assert!(matches!(
        rules.add_sender("a.example", encrypt_pins),
        Err(RuleError::Inconsistent(_))
    ));
    let bad_pin = InboundRule {
        fingerprints: vec!["XYZ".into()],
        ..InboundRule::level(InboundLevel::Verify)
    };
    assert!(matches!(
        rules.add_sender("a.example", bad_pin),
        Err(RuleError::Fingerprint(_))
    ));
    assert!(
        rules
            .add_network("10.0.0.1/8", InboundRule::level(InboundLevel::May))
            .is_err()
    );
    rules
        .add_network("10.0.0.0/8", InboundRule::level(InboundLevel::May))
        .unwrap();
    assert!(matches!(
        rules.add_network("10.0.0.0/8", InboundRule::level(InboundLevel::May)),
        Err(RuleError::DuplicateNetwork(_))
    ));
    assert!(
        rules
            .add_client("not a host", InboundRule::level(InboundLevel::May))
            .is_err()
    );
    assert_eq!(normalize_fingerprint("ab:Cd"), Some("ABCD".into()));
    assert_eq!(normalize_fingerprint("abc"), None);
    let _: IpAddr = "::1".parse().unwrap();
}
