use super::*;
use crate::hosted::delegation::Delegation;

fn addresses() -> ReportAddresses {
    ReportAddresses::new(&Delegation::new("hosted.example").unwrap())
}

fn session(starttls: bool) -> Session {
    Session::new(addresses(), Limits::default(), starttls)
}

/// The code of the reply an action sends.
fn code(action: &Action) -> u16 {
    match action {
        Action::Reply(r) | Action::Close(r) | Action::StartTls(r) | Action::Data(r) => r.code,
    }
}

fn reply(action: &Action) -> &Reply {
    match action {
        Action::Reply(r) | Action::Close(r) | Action::StartTls(r) | Action::Data(r) => r,
    }
}

/// Runs `lines`, returning every reply code.
fn run(s: &mut Session, lines: &[&str]) -> Vec<u16> {
    lines
        .iter()
        .map(|l| code(&s.command(l.as_bytes())))
        .collect()
}

#[test]
fn a_whole_transaction_in_order() {
    let mut s = session(false);
    assert_eq!(
        s.greeting().to_bytes(),
        b"220 reports.hosted.example ESMTP mtasts report intake\r\n"
    );
    let codes = run(
        &mut s,
        &[
            "EHLO mx.sender.example",
            "MAIL FROM:<noreply@sender.example> SIZE=2000",
            "RCPT TO:<tlsrpt@reports.hosted.example>",
            "RCPT TO:<DMARC@Reports.Hosted.Example.>",
        ],
    );
    assert_eq!(codes, [250, 250, 250, 250]);
    assert_eq!(s.helo(), Some("mx.sender.example"));
    assert_eq!(s.envelope().mail_from, "noreply@sender.example");
    assert_eq!(
        s.envelope()
            .recipients
            .iter()
            .map(|(_, m)| *m)
            .collect::<Vec<_>>(),
        [Mailbox::TlsRpt, Mailbox::Dmarc]
    );
    let data = s.command(b"DATA\r\n");
    assert!(matches!(data, Action::Data(ref r) if r.code == 354));
    assert_eq!(s.state(), State::Data);
    let done = s.data_ended(DataOutcome::Committed("input 7".into()));
    assert_eq!(reply(&done).to_bytes(), b"250 2.0.0 stored input 7\r\n");
    assert_eq!(s.state(), State::Ready);
    assert_eq!(s.envelope(), &Envelope::default());
    // The next transaction needs no new EHLO.
    assert_eq!(
        run(
            &mut s,
            &["MAIL FROM:<>", "RCPT TO:<tlsrpt@reports.hosted.example>"]
        ),
        [250, 250]
    );
    assert!(matches!(s.command(b"QUIT\r\n"), Action::Close(ref r) if r.code == 221));
    assert_eq!(s.state(), State::Closed);
}

#[test]
fn ehlo_announces_size_pipelining_and_starttls_only_with_a_certificate() {
    let mut s = session(true);
    let ehlo = s.command(b"EHLO client.example\r\n");
    let text = String::from_utf8(reply(&ehlo).to_bytes()).unwrap();
    assert_eq!(
        text,
        "250-reports.hosted.example greets client.example\r\n250-PIPELINING\r\n\
         250-SIZE 26214400\r\n250-8BITMIME\r\n250-SMTPUTF8\r\n250-ENHANCEDSTATUSCODES\r\n\
         250 STARTTLS\r\n"
    );
    let mut plain = session(false);
    let ehlo = plain.command(b"EHLO client.example\r\n");
    assert!(
        !String::from_utf8(reply(&ehlo).to_bytes())
            .unwrap()
            .contains("STARTTLS")
    );
    assert_eq!(code(&plain.command(b"STARTTLS\r\n")), 502);
    // After TLS it is not offered again, and EHLO is needed again.
    assert!(matches!(s.command(b"STARTTLS\r\n"), Action::StartTls(ref r) if r.code == 220));
    s.tls_started();
    assert!(s.tls());
    assert_eq!(s.helo(), None);
    assert_eq!(s.state(), State::Greeting);
    assert_eq!(code(&s.command(b"MAIL FROM:<a@b>\r\n")), 503);
    let ehlo = s.command(b"EHLO client.example\r\n");
    assert!(
        !String::from_utf8(reply(&ehlo).to_bytes())
            .unwrap()
            .contains("STARTTLS")
    );
    assert_eq!(code(&s.command(b"STARTTLS\r\n")), 503);
}

#[test]
fn helo_works_without_extensions() {
    let mut s = session(false);
    assert_eq!(
        reply(&s.command(b"HELO old.example\r\n")).to_bytes(),
        b"250 reports.hosted.example greets old.example\r\n"
    );
    assert_eq!(s.state(), State::Ready);
}

#[test]
fn starttls_is_refused_inside_a_transaction() {
    let mut s = session(true);
    run(&mut s, &["EHLO a", "MAIL FROM:<a@b>"]);
    assert_eq!(code(&s.command(b"STARTTLS\r\n")), 503);
    // Before EHLO it is allowed (RFC 3207 does not require EHLO first).
    let mut s = session(true);
    assert_eq!(code(&s.command(b"STARTTLS\r\n")), 220);
}

#[test]
fn commands_out_of_order_are_503() {
    let mut s = session(false);
    assert_eq!(
        run(
            &mut s,
            &[
                "MAIL FROM:<a@b>",
                "RCPT TO:<tlsrpt@reports.hosted.example>",
                "DATA"
            ]
        ),
        [503, 503, 503]
    );
    run(&mut s, &["EHLO a"]);
    assert_eq!(
        run(&mut s, &["RCPT TO:<tlsrpt@reports.hosted.example>", "DATA"]),
        [503, 503]
    );
    assert_eq!(
        run(&mut s, &["MAIL FROM:<a@b>", "MAIL FROM:<a@b>"]),
        [250, 503]
    );
    // MAIL accepted but no recipient: DATA is 554.
    assert_eq!(run(&mut s, &["DATA"]), [554]);
}

#[test]
fn only_the_report_mailboxes_are_recipients_and_nothing_is_relayed() {
    let mut s = session(false);
    run(&mut s, &["EHLO a", "MAIL FROM:<a@b>"]);
    for rcpt in [
        "RCPT TO:<postmaster@reports.hosted.example>",
        "RCPT TO:<tlsrpt@hosted.example>",
        "RCPT TO:<tlsrpt@reports.hosted.example.evil>",
        "RCPT TO:<victim@gmail.example>",
        "RCPT TO:<@reports.hosted.example:victim@elsewhere.example>",
        "RCPT TO:<tlsrpt%elsewhere.example@reports.hosted.example>",
    ] {
        let action = s.command(rcpt.as_bytes());
        assert_eq!(reply(&action).code, 550, "{rcpt}");
        assert_eq!(reply(&action).status, Some("5.1.1"), "{rcpt}");
    }
    assert!(s.envelope().recipients.is_empty());
    // A source route to one of ours is just that mailbox.
    assert_eq!(
        run(
            &mut s,
            &["RCPT TO:<@relay.example:tlsrpt@reports.hosted.example>"]
        ),
        [250]
    );
}

#[test]
fn the_recipient_count_is_capped() {
    let mut s = Session::new(
        addresses(),
        Limits {
            max_recipients: 2,
            ..Limits::default()
        },
        false,
    );
    run(&mut s, &["EHLO a", "MAIL FROM:<a@b>"]);
    let codes = run(
        &mut s,
        &[
            "RCPT TO:<tlsrpt@reports.hosted.example>",
            "RCPT TO:<dmarc@reports.hosted.example>",
            "RCPT TO:<tlsrpt@reports.hosted.example>",
        ],
    );
    assert_eq!(codes, [250, 250, 452]);
    assert_eq!(s.envelope().recipients.len(), 2);
}

#[test]
fn a_declared_size_over_the_cap_is_552() {
    let mut s = Session::new(
        addresses(),
        Limits {
            max_message_bytes: 1000,
            ..Limits::default()
        },
        false,
    );
    run(&mut s, &["EHLO a"]);
    let action = s.command(b"MAIL FROM:<a@b> SIZE=1001\r\n");
    assert_eq!(reply(&action).code, 552);
    assert_eq!(reply(&action).status, Some("5.3.4"));
    assert_eq!(s.state(), State::Ready);
    assert_eq!(run(&mut s, &["MAIL FROM:<a@b> SIZE=1000"]), [250]);
    assert!(s.envelope().mail_from == "a@b");
}

#[test]
fn data_outcomes_answer_250_552_or_451_and_end_the_transaction() {
    for (outcome, expected) in [
        (DataOutcome::Committed("x".into()), (250, Some("2.0.0"))),
        (DataOutcome::TooLarge, (552, Some("5.3.4"))),
        (DataOutcome::Unavailable, (451, Some("4.3.0"))),
    ] {
        let mut s = session(false);
        run(
            &mut s,
            &[
                "EHLO a",
                "MAIL FROM:<a@b>",
                "RCPT TO:<tlsrpt@reports.hosted.example>",
                "DATA",
            ],
        );
        let action = s.data_ended(outcome);
        assert_eq!((reply(&action).code, reply(&action).status), expected);
        assert_eq!(s.state(), State::Ready);
        assert!(s.envelope().recipients.is_empty());
    }
}

#[test]
fn rset_noop_vrfy_help_and_unknown_commands() {
    let mut s = session(false);
    run(
        &mut s,
        &[
            "EHLO a",
            "MAIL FROM:<a@b>",
            "RCPT TO:<tlsrpt@reports.hosted.example>",
        ],
    );
    assert_eq!(run(&mut s, &["RSET"]), [250]);
    assert_eq!(s.state(), State::Ready);
    assert!(s.envelope().recipients.is_empty());
    assert_eq!(
        run(&mut s, &["NOOP", "VRFY tlsrpt", "HELP"]),
        [250, 252, 214]
    );
    assert_eq!(
        run(&mut s, &["AUTH LOGIN", "EHLO", "MAIL FROM:<a@b> XYZ=1"]),
        [500, 501, 555]
    );
    // RSET before EHLO keeps the greeting state.
    let mut s = session(false);
    assert_eq!(run(&mut s, &["RSET"]), [250]);
    assert_eq!(s.state(), State::Greeting);
}

#[test]
fn too_many_errors_close_with_421() {
    let mut s = Session::new(
        addresses(),
        Limits {
            max_errors: 3,
            ..Limits::default()
        },
        false,
    );
    assert_eq!(code(&s.command(b"BAD\r\n")), 500);
    assert_eq!(code(&s.line_too_long()), 500);
    let last = s.command(b"BAD\r\n");
    assert!(matches!(last, Action::Close(ref r) if r.code == 421));
    assert_eq!(s.state(), State::Closed);
    // Refused recipients count as errors (no address harvesting).
    let mut s = Session::new(
        addresses(),
        Limits {
            max_errors: 2,
            ..Limits::default()
        },
        false,
    );
    run(&mut s, &["EHLO a", "MAIL FROM:<a@b>", "RCPT TO:<x@y>"]);
    assert!(matches!(s.command(b"RCPT TO:<x@y>\r\n"), Action::Close(ref r) if r.code == 421));
}

#[test]
fn too_many_commands_close_with_421() {
    let mut s = Session::new(
        addresses(),
        Limits {
            max_commands: 3,
            ..Limits::default()
        },
        false,
    );
    assert_eq!(run(&mut s, &["NOOP", "NOOP", "NOOP"]), [250, 250, 250]);
    let last = s.command(b"NOOP\r\n");
    assert!(matches!(last, Action::Close(ref r) if r.code == 421 && r.status == Some("4.7.0")));
    let mut s = Session::new(
        addresses(),
        Limits {
            max_commands: 1,
            ..Limits::default()
        },
        false,
    );
    s.command(b"NOOP\r\n");
    assert!(matches!(s.line_too_long(), Action::Close(_)));
}

#[test]
fn fixed_replies_close_with_421() {
    for r in [
        Session::too_many_connections(),
        Session::timeout(),
        Session::shutting_down(),
    ] {
        assert_eq!(r.code, 421);
        assert!(r.to_bytes().starts_with(b"421 4."));
    }
}

#[test]
fn a_line_in_data_state_is_refused_not_a_panic() {
    let mut s = session(false);
    run(
        &mut s,
        &[
            "EHLO a",
            "MAIL FROM:<a@b>",
            "RCPT TO:<tlsrpt@reports.hosted.example>",
            "DATA",
        ],
    );
    assert_eq!(code(&s.command(b"QUIT\r\n")), 503);
}
