//! The SMTP intake of `mtasts serve` over real TCP (and TLS) on loopback, storing into a real
//! reports database: a report by mail is committed before the `250`, STARTTLS with the
//! service certificate (and a self-signed one until ACME issued it), the limits (size, lines,
//! recipients, errors, per-client connections, timeouts), mail without a report kept, a
//! sender leaving mid-DATA and a database that fails. `swaks` is the independent client of
//! one test.

pub(crate) mod harness;

use std::time::Duration;

use mtasts_host::mail::MailConfig;
use mtasts_net::cert::CertProblem;
use mtasts_proto::smtp_server::Limits;
use mtasts_store::reports::Filter;

use harness::{Running, TLSRPT, sample};

const GOOGLE: &str = "tlsrpt/mox/example.eml";

#[tokio::test]
async fn a_report_by_mail_is_committed_before_the_250() {
    let run = Running::start(MailConfig::default(), false).await;
    let mut c = run.client().await;
    let greeting = c.expect(220).await;
    assert!(greeting.contains("reports.hosted.test"), "{greeting}");
    let ehlo = c.command("EHLO sender.test", 250).await;
    assert!(
        ehlo.contains("SIZE 26214400") && ehlo.contains("PIPELINING"),
        "{ehlo}"
    );
    // No certificate: no STARTTLS offered.
    assert!(!ehlo.contains("STARTTLS"), "{ehlo}");
    let (code, text) = c.send_mail(&sample(GOOGLE)).await;
    assert_eq!(code, 250, "{text}");
    assert!(text.contains("1 new report"), "{text}");
    // Committed at the 250: the report is in the database now.
    let reports = run.db.list(&Filter::default(), 10).await.unwrap();
    assert_eq!(reports.len(), 1);
    assert_eq!(reports[0].organization, "Google Inc.");
    let arrivals = run.db.arrivals_of_report(reports[0].id).await.unwrap();
    assert_eq!(arrivals.len(), 1);
    let a = &arrivals[0];
    assert_eq!(a.channel, "smtp");
    assert!(a.peer_ip.starts_with("127."), "{}", a.peer_ip);
    assert_eq!(a.helo, "sender.test");
    assert_eq!(a.mail_from, "noreply@sender.test");
    assert_eq!(a.recipients, [TLSRPT]);
    assert_eq!(a.tls_version, None);

    // The same message again (a retry after a lost 250): accepted, counted once.
    let (code, text) = c.send_mail(&sample(GOOGLE)).await;
    assert_eq!(code, 250, "{text}");
    assert!(text.contains("1 duplicate"), "{text}");
    let reports = run.db.list(&Filter::default(), 10).await.unwrap();
    assert_eq!(reports.len(), 1);
    assert_eq!(reports[0].duplicates, 1);
    assert_eq!(
        run.db
            .arrivals_of_report(reports[0].id)
            .await
            .unwrap()
            .len(),
        2
    );
    c.command("QUIT", 221).await;
}

#[tokio::test]
async fn starttls_presents_the_service_certificate_and_is_recorded() {
    let run = Running::start(MailConfig::default(), true).await;
    let mut c = run.client().await;
    c.expect(220).await;
    let ehlo = c.command("EHLO sender.test", 250).await;
    assert!(ehlo.contains("STARTTLS"), "{ehlo}");
    c.command("STARTTLS", 220).await;
    // The client verifies the chain to the test root for reports.hosted.test.
    c.start_tls(&run.ca).await;
    // EHLO again inside TLS; STARTTLS is no longer offered.
    let ehlo = c.command("EHLO sender.test", 250).await;
    assert!(!ehlo.contains("STARTTLS"), "{ehlo}");
    let (code, text) = c.send_mail(&sample("dmarc/mail-auth/100.eml")).await;
    assert_eq!(code, 250, "{text}");
    let reports = run.db.list(&Filter::default(), 10).await.unwrap();
    assert_eq!(reports.len(), 1, "{text}");
    let arrival = &run.db.arrivals_of_report(reports[0].id).await.unwrap()[0];
    assert_eq!(arrival.tls_version.as_deref(), Some("TLSv1.3"));
    assert!(arrival.tls_cipher.as_deref().unwrap().starts_with("TLS13_"));
}

/// What `serve` presents: before ACME issued the service certificate (or without ACME),
/// STARTTLS is offered all the same with a self-signed certificate for the report host, so
/// opportunistic senders still encrypt; once the certificate is in the snapshot, the next
/// connection gets it, without a restart.
#[tokio::test]
async fn starttls_is_offered_before_the_acme_certificate_and_then_presents_it() {
    use std::sync::Arc;

    use mtasts_host::mail::tls::ServiceCertificate;
    use mtasts_host::snapshot::{self, Snapshot};

    let snapshot = snapshot::handle(Snapshot::default());
    let certificates = Arc::new(ServiceCertificate::new(snapshot.clone(), harness::HOST));
    let run = Running::start_from(
        MailConfig::default(),
        mtasts_testkit::TestCa::new(),
        certificates,
        None,
    )
    .await;

    let mut c = run.client().await;
    c.expect(220).await;
    let ehlo = c.command("EHLO sender.test", 250).await;
    assert!(ehlo.contains("STARTTLS"), "{ehlo}");
    c.command("STARTTLS", 220).await;
    let seen = c.start_tls_seen(&run.ca).await;
    let info = seen.cert_info().unwrap();
    // Self-signed, for the report host: not the test CA's.
    assert_eq!(info.dns_names, [harness::HOST]);
    assert_eq!(info.chain_len, 1);
    assert!(
        matches!(seen.result, Err(CertProblem::Untrusted { .. })),
        "{:?}",
        seen.result
    );
    c.command("EHLO sender.test", 250).await;
    let (code, text) = c.send_mail(&sample(GOOGLE)).await;
    assert_eq!(code, 250, "{text}");
    let reports = run.db.list(&Filter::default(), 10).await.unwrap();
    let arrival = &run.db.arrivals_of_report(reports[0].id).await.unwrap()[0];
    assert!(arrival.tls_version.is_some(), "{arrival:?}");

    // ACME issued the service certificate: the node's loader puts it in the snapshot.
    snapshot.store(Arc::new(Snapshot {
        service_certificate: Some(harness::certified_key(&run.ca)),
        ..Snapshot::default()
    }));
    let mut c = run.client().await;
    c.expect(220).await;
    c.command("EHLO sender.test", 250).await;
    c.command("STARTTLS", 220).await;
    // Verifies to the test root for reports.hosted.test.
    c.start_tls(&run.ca).await;
    c.command("EHLO sender.test", 250).await;
    c.command("QUIT", 221).await;
}

#[tokio::test]
async fn commands_pipelined_after_starttls_are_dropped() {
    let run = Running::start(MailConfig::default(), true).await;
    let mut c = run.client().await;
    c.expect(220).await;
    c.command("EHLO sender.test", 250).await;
    // A command injected after STARTTLS in the same packet must not run inside TLS.
    c.send(b"STARTTLS\r\nMAIL FROM:<injected@evil.test>\r\n")
        .await;
    c.expect(220).await;
    c.start_tls(&run.ca).await;
    c.command("EHLO sender.test", 250).await;
    // Had the MAIL run, this would be "nested MAIL" (503).
    c.command("MAIL FROM:<a@sender.test>", 250).await;
}

#[tokio::test]
async fn only_report_mailboxes_are_recipients() {
    let run = Running::start(MailConfig::default(), false).await;
    let mut c = run.client().await;
    c.expect(220).await;
    c.command("EHLO sender.test", 250).await;
    c.command("MAIL FROM:<a@sender.test>", 250).await;
    let refused = c.command("RCPT TO:<victim@elsewhere.test>", 550).await;
    assert!(refused.contains("5.1.1"), "{refused}");
    c.command("RCPT TO:<postmaster@reports.hosted.test>", 550)
        .await;
    c.command("DATA", 554).await;
    c.command("RCPT TO:<DMARC@reports.hosted.test>", 250).await;
}

#[tokio::test]
async fn sizes_are_announced_and_enforced() {
    let config = MailConfig {
        limits: Limits {
            max_message_bytes: 2000,
            ..Limits::default()
        },
        ..MailConfig::default()
    };
    let run = Running::start(config, false).await;
    let mut c = run.client().await;
    c.expect(220).await;
    let ehlo = c.command("EHLO sender.test", 250).await;
    assert!(ehlo.contains("SIZE 2000"), "{ehlo}");
    let refused = c.command("MAIL FROM:<a@sender.test> SIZE=2001", 552).await;
    assert!(refused.contains("5.3.4"), "{refused}");
    // Over the cap in DATA: read to the end, dropped, 552; the session goes on.
    let big = format!("Subject: big\r\n\r\n{}\r\n", "x".repeat(900)).repeat(3);
    let (code, text) = c.send_mail(big.as_bytes()).await;
    assert_eq!(code, 552, "{text}");
    assert!(
        run.db
            .list(&Filter::default(), 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(run.db.mail_without_reports(10).await.unwrap().is_empty());
    c.command("NOOP", 250).await;
}

#[tokio::test]
async fn a_line_over_1000_octets_is_500_and_junk_lines_end_the_session() {
    let config = MailConfig {
        limits: Limits {
            max_errors: 3,
            ..Limits::default()
        },
        ..MailConfig::default()
    };
    let run = Running::start(config, false).await;
    let mut c = run.client().await;
    c.expect(220).await;
    let long = format!("NOOP {}", "a".repeat(995));
    c.command(&long, 500).await;
    // 999 octets + CRLF = 1001 > 1000; 998 + CRLF is fine.
    c.command(&format!("NOOP {}", "a".repeat(993)), 250).await;
    c.command("FOO", 500).await;
    let last = c.command("BAR", 421).await;
    assert!(last.contains("4.7.0"), "{last}");
    assert!(c.reply().await.is_none(), "the connection is closed");
}

#[tokio::test]
async fn a_client_over_its_connection_cap_hears_421() {
    let config = MailConfig {
        max_connections_per_client: 2,
        ..MailConfig::default()
    };
    let run = Running::start(config, false).await;
    let mut a = run.client().await;
    a.expect(220).await;
    let mut b = run.client().await;
    b.expect(220).await;
    let mut third = run.client().await;
    let refused = third.expect(421).await;
    assert!(refused.contains("too many connections"), "{refused}");
    drop(a);
    // A place comes back once a connection ends.
    let mut again = None;
    for _ in 0..50 {
        let mut c = run.client().await;
        if c.reply().await.map(|(code, _)| code) == Some(220) {
            again = Some(c);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(again.is_some(), "no place came back");
    b.command("NOOP", 250).await;
}

#[tokio::test]
async fn a_silent_client_gets_421_after_the_timeout() {
    let config = MailConfig {
        timeout: Duration::from_secs(1),
        ..MailConfig::default()
    };
    let run = Running::start(config, false).await;
    let mut c = run.client().await;
    c.expect(220).await;
    c.command("EHLO sender.test", 250).await;
    let started = std::time::Instant::now();
    let timeout = c.expect(421).await;
    assert!(timeout.contains("4.4.2"), "{timeout}");
    assert!(started.elapsed() >= Duration::from_millis(900));
    // A sender that stalls inside DATA is cut off the same way, and nothing is stored.
    let mut c = run.client().await;
    c.expect(220).await;
    c.command("EHLO sender.test", 250).await;
    c.command("MAIL FROM:<a@sender.test>", 250).await;
    c.command(&format!("RCPT TO:<{TLSRPT}>"), 250).await;
    c.command("DATA", 354).await;
    c.send(b"Subject: half\r\n").await;
    c.expect(421).await;
    assert!(run.db.mail_without_reports(10).await.unwrap().is_empty());
}

#[tokio::test]
async fn a_sender_leaving_mid_data_leaves_nothing_acknowledged() {
    let run = Running::start(MailConfig::default(), false).await;
    let mut c = run.client().await;
    c.expect(220).await;
    c.command("EHLO sender.test", 250).await;
    c.command("MAIL FROM:<a@sender.test>", 250).await;
    c.command(&format!("RCPT TO:<{TLSRPT}>"), 250).await;
    c.command("DATA", 354).await;
    let message = sample(GOOGLE);
    c.send(&message[..message.len() / 2]).await;
    drop(c);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        run.db
            .list(&Filter::default(), 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(run.db.mail_without_reports(10).await.unwrap().is_empty());
    // Nor does a body that ends with ".\n" (a bare LF is not the end of data).
    let mut c = run.client().await;
    c.expect(220).await;
    c.command("EHLO sender.test", 250).await;
    c.command("MAIL FROM:<a@sender.test>", 250).await;
    c.command(&format!("RCPT TO:<{TLSRPT}>"), 250).await;
    c.command("DATA", 354).await;
    c.send(b"Subject: x\r\n\r\nbody\r\n.\nMAIL FROM:<smuggled@evil.test>\r\n")
        .await;
    drop(c);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(run.db.mail_without_reports(10).await.unwrap().is_empty());
}

#[tokio::test]
async fn mail_without_a_report_is_kept_for_an_administrator() {
    let run = Running::start(MailConfig::default(), false).await;
    let mut c = run.client().await;
    c.expect(220).await;
    c.command("EHLO sender.test", 250).await;
    let (code, text) = c
        .send_mail(b"From: someone@sender.test\r\nSubject: hello\r\n\r\nNo report here.\r\n")
        .await;
    assert_eq!(code, 250, "{text}");
    assert!(text.contains("0 new report"), "{text}");
    let kept = run.db.mail_without_reports(10).await.unwrap();
    assert_eq!(kept.len(), 1);
    assert_eq!(kept[0].arrival.mail_from, "noreply@sender.test");
    assert!(kept[0].arrival.reports.is_empty());
}

#[tokio::test]
async fn a_database_that_fails_gets_451_not_250() {
    let run = Running::start(MailConfig::default(), false).await;
    let mut c = run.client().await;
    c.expect(220).await;
    c.command("EHLO sender.test", 250).await;
    run.db.close().await;
    let (code, text) = c.send_mail(&sample(GOOGLE)).await;
    assert_eq!(code, 451, "{text}");
    assert!(text.contains("4.3.0"), "{text}");
}

#[tokio::test]
async fn swaks_delivers_a_report_over_starttls() {
    use mtasts_testkit::services::{Service, command_or_skip};
    if !command_or_skip(Service::Swaks, "swaks", &["--version"]) {
        return;
    }
    let run = Running::start(MailConfig::default(), true).await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("report.eml");
    std::fs::write(&file, sample(GOOGLE)).unwrap();
    let out = tokio::process::Command::new("swaks")
        .args([
            "--server",
            &run.addr.to_string(),
            "--tls",
            "--ehlo",
            "sender.test",
        ])
        .args(["--from", "noreply@sender.test", "--to", TLSRPT])
        .arg("--data")
        .arg(format!("@{}", file.display()))
        .output()
        .await
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("<~  250 2.0.0 stored"), "{text}");
    let reports = run.db.list(&Filter::default(), 10).await.unwrap();
    assert_eq!(reports.len(), 1);
    let arrival = &run.db.arrivals_of_report(reports[0].id).await.unwrap()[0];
    assert!(arrival.tls_version.is_some(), "{arrival:?}");
    if let Some(intake) = harness_intake(run) {
        intake.shutdown().await;
    }
}

fn harness_intake(mut run: Running) -> Option<mtasts_host::mail::MailIntake> {
    run.intake.take()
}

mod dkim {
    //! DKIM results recorded with each arrival: a message signed by a test key whose TXT
    //! record the testkit DNS serves passes; the same message altered after signing fails;
    //! both are stored and answered 250 (DKIM is never required).

    use std::sync::Arc;

    use aws_lc_rs::rand::SystemRandom;
    use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair};
    use base64::Engine;
    use mail_auth::common::crypto::Ed25519Key;
    use mail_auth::common::headers::HeaderWriter;
    use mail_auth::dkim::DkimSigner;
    use mtasts_host::mail::MailConfig;
    use mtasts_host::mail::dkim::DkimVerifier;
    use mtasts_store::reports::Filter;
    use mtasts_testkit::Zone;
    use mtasts_testkit::dns::DnsServer;

    use super::harness::{Running, sample};

    #[tokio::test]
    async fn signatures_are_verified_and_recorded_never_required() {
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).unwrap();
        let public = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref())
            .unwrap()
            .public_key()
            .as_ref()
            .to_vec();
        let zone = Arc::new(Zone::new());
        zone.add_txt_long(
            "sel._domainkey.sender.test",
            &format!(
                "v=DKIM1; k=ed25519; p={}",
                base64::engine::general_purpose::STANDARD.encode(&public)
            ),
        );
        let dns = DnsServer::start(mtasts_testkit::random_loopback(), zone)
            .await
            .unwrap();
        let verifier = DkimVerifier::new(&[dns.addr()]).unwrap();
        let run = Running::start_with(MailConfig::default(), false, Some(verifier)).await;

        let message = sample("dmarc/mail-auth/100.eml");
        let signature = DkimSigner::from_key(Ed25519Key::from_pkcs8_der(pkcs8.as_ref()).unwrap())
            .domain("sender.test")
            .selector("sel")
            .headers(["From", "To", "Subject", "Date"])
            .sign(&message)
            .unwrap();
        let mut signed = signature.to_header().into_bytes();
        signed.extend_from_slice(&message);
        // The same message with a signed header altered after signing: the same report (a
        // duplicate), stored and answered like the first.
        let text = String::from_utf8(signed.clone()).unwrap();
        let tampered = text
            .replacen("Subject:", "Subject: altered", 1)
            .into_bytes();

        let mut c = run.client().await;
        c.expect(220).await;
        c.command("EHLO sender.test", 250).await;
        let (code, good) = c.send_mail(&signed).await;
        assert_eq!(code, 250, "{good}");
        let (code, bad) = c.send_mail(&tampered).await;
        assert_eq!(code, 250, "{bad}");

        let reports = run.db.list(&Filter::default(), 10).await.unwrap();
        assert_eq!(reports.len(), 1, "the same report twice");
        let arrivals = run.db.arrivals_of_report(reports[0].id).await.unwrap();
        assert_eq!(arrivals.len(), 2);
        let first = &arrivals[0].dkim[0];
        assert_eq!(first["result"], "pass", "{}", arrivals[0].dkim);
        assert_eq!(first["domain"], "sender.test");
        assert_eq!(first["selector"], "sel");
        let second = &arrivals[1].dkim[0];
        assert_eq!(second["result"], "fail", "{}", arrivals[1].dkim);
        assert!(second["reason"].as_str().is_some(), "{}", arrivals[1].dkim);

        // An unsigned message records no result.
        let (code, _) = c.send_mail(&sample("tlsrpt/mox/example.eml")).await;
        assert_eq!(code, 250);
        let tls = run
            .db
            .list(&Filter::default(), 10)
            .await
            .unwrap()
            .into_iter()
            .find(|r| r.kind.to_string() == "tlsrpt")
            .unwrap();
        let arrival = &run.db.arrivals_of_report(tls.id).await.unwrap()[0];
        // Google's own signature is there, but its key is not in the test DNS.
        assert!(
            arrival
                .dkim
                .as_array()
                .unwrap()
                .iter()
                .all(|d| d["result"] != "pass"),
            "{}",
            arrival.dkim
        );
    }
}

mod admin {
    //! `GET /api/v1/admin/mail`: administrators see the mail that held no report with its
    //! errors; a tenant's token gets 404.

    use std::net::SocketAddr;
    use std::sync::Arc;

    use axum::http::{Method, StatusCode};
    use mtasts_host::mail::MailConfig;
    use mtasts_host::state::AppState;
    use mtasts_net::dns::{DnsConfig, HickoryDns};
    use mtasts_proto::hosted::delegation::Delegation;
    use mtasts_store::host::HostDb;

    use super::harness::Running;
    use crate::support::{api, app};

    #[tokio::test]
    async fn administrators_see_mail_without_reports() {
        let run = Running::start(MailConfig::default(), false).await;
        let mut c = run.client().await;
        c.expect(220).await;
        c.command("EHLO junk.sender.test", 250).await;
        let message =
            b"From: a@sender.test\r\nSubject: report?\r\nContent-Type: application/gzip\r\n\
                        Content-Transfer-Encoding: base64\r\n\r\nbm90IGd6aXA=\r\n";
        let (code, text) = c.send_mail(message).await;
        assert_eq!(code, 250, "{text}");

        let url = format!("sqlite:{}", run.dir.path().join("serve.db").display());
        let db = HostDb::open(&url).await.unwrap();
        let resolver = HickoryDns::new(&DnsConfig {
            servers: Some(vec!["127.0.0.1:9".parse().unwrap()]),
            ..DnsConfig::default()
        })
        .unwrap();
        let state = AppState::new(
            db.clone(),
            Delegation::new("hosted.test").unwrap(),
            Arc::new(resolver),
        )
        .with_reports(run.db.clone());
        let listener = tokio::net::TcpListener::bind(SocketAddr::new(run.addr.ip(), 0))
            .await
            .unwrap();
        let addr = listener.local_addr().unwrap();
        let service =
            mtasts_host::api::router(state).into_make_service_with_connect_info::<SocketAddr>();
        let server = tokio::spawn(async move {
            axum::serve(listener, service).await.unwrap();
        });
        let admin = app::admin_token(&db, "admin").await;
        api::create_tenant(addr, &admin, "acme").await;
        let owner = api::create_token(addr, &admin, "acme", "owner", "o").await;

        let (status, body) = api::call(addr, Method::GET, "/api/v1/admin/mail", &owner, None).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
        let (status, body) = api::call(addr, Method::GET, "/api/v1/admin/mail", &admin, None).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let mail = body["mail"].as_array().unwrap();
        assert_eq!(mail.len(), 1, "{body}");
        assert_eq!(mail[0]["helo"], "junk.sender.test");
        assert_eq!(mail[0]["recipients"][0], super::TLSRPT);
        assert!(mail[0]["tls"].is_null());
        assert!(!mail[0]["errors"].as_array().unwrap().is_empty(), "{body}");
        server.abort();
    }
}
