//! The administrators' page of mail without reports (`/admin/mail`): messages stored through
//! the SMTP intake's own delivery step ([`Deliver`]: the report core's intake, then the
//! arrival) into the dashboard's database, then listed as an administrator and as a tenant
//! owner would see them: newest first, paged, escaped, each message downloadable as received;
//! for anyone but an administrator the page and the downloads do not exist.

use axum::http::StatusCode;
use mtasts_host::mail::deliver::{Deliver, Received};
use mtasts_proto::hosted::reporting::Mailbox;
use mtasts_proto::smtp_server::Envelope;
use mtasts_report::intake::Intake;

use crate::dashboard::harness::{Harness, PASSWORD};

/// A HELO name that would be markup if it were not escaped.
const HOSTILE_HELO: &str = r#"<img src=x onerror=alert(1)>"helo""#;

/// Message number `n`: plain text, no report in it; distinct bytes for each `n`.
fn message(n: usize) -> Vec<u8> {
    format!(
        "From: someone{n}@sender.test\r\nTo: tlsrpt@reports.{zone}\r\nSubject: not a report {n}\r\n\
         \r\nHello, is this where reports go? ({n})\r\n",
        zone = crate::dashboard::harness::ZONE,
    )
    .into_bytes()
}

/// Stores `count` messages without reports, message `n` received `n` seconds after
/// `start`, and one that carries a TLS report; returns the input ids by `n`, and the input of
/// the message with a report.
async fn seed(h: &Harness, start: i64, count: usize) -> (Vec<i64>, Option<i64>) {
    let db = h.state.reports.clone().expect("the harness keeps reports");
    let deliver = Deliver::new(Intake::new(db, mtasts_report::Limits::default()));
    let received = |n: usize, bytes: Vec<u8>| Received {
        peer: "192.0.2.7".parse().unwrap(),
        helo: if n == 0 {
            HOSTILE_HELO.to_owned()
        } else {
            format!("mta{n}.sender.test")
        },
        envelope: Envelope {
            mail_from: format!("bounce{n}@sender.test"),
            recipients: vec![(
                format!("tlsrpt@reports.{}", crate::dashboard::harness::ZONE),
                Mailbox::TlsRpt,
            )],
            eight_bit: false,
            smtputf8: false,
        },
        tls: n
            .is_multiple_of(2)
            .then(|| ("TLSv1.3".to_owned(), "TLS13_AES_128_GCM_SHA256".to_owned())),
        message: bytes,
        received_at: start + n as i64,
    };
    let mut inputs = Vec::new();
    for n in 0..count {
        let delivered = deliver.deliver(&received(n, message(n))).await.unwrap();
        assert_eq!(delivered.outcome.new, 0, "message {n} holds no report");
        inputs.push(delivered.outcome.input);
    }
    // A message with a report: listed with its report, not here.
    let report = mtasts_testkit::services::samples_dir().map(|dir| {
        let text = std::fs::read_to_string(dir.join("tlsrpt/mox/example.eml")).unwrap();
        text.replace("\r\n", "\n")
            .replace('\n', "\r\n")
            .into_bytes()
    });
    let with_report = match report {
        Some(bytes) => {
            let delivered = deliver.deliver(&received(count, bytes)).await.unwrap();
            assert_eq!(delivered.outcome.new, 1);
            Some(delivered.outcome.input)
        }
        None => None,
    };
    (inputs, with_report)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn administrators_page_through_the_mail_without_reports() {
    let h = Harness::start().await;
    let start = 1_800_000_000;
    // One more than a page.
    let (inputs, with_report) = seed(&h, start, 51).await;
    let admin = h.login("", &h.admin_token).await;

    // The navigation links the page for administrators.
    let home = h.get("/", &admin).await;
    assert!(
        home.body
            .contains(r#"<a href="/admin/mail">Mail without reports</a>"#),
        "{}",
        home.body
    );

    let first = h.get("/admin/mail", &admin).await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.body);
    assert!(
        first.headers["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("default-src 'none'")
    );
    let rows: Vec<&str> = first
        .body
        .split(r#"<tr class="mail-row">"#)
        .skip(1)
        .collect();
    assert_eq!(rows.len(), 50, "a page of 50");
    // Newest first: message 50 (received last) heads the list, message 1 ends it.
    assert!(rows[0].contains("mta50.sender.test"), "{}", rows[0]);
    assert!(rows[49].contains("mta1.sender.test"), "{}", rows[49]);
    assert!(rows[0].contains("bounce50@sender.test"), "{}", rows[0]);
    assert!(rows[0].contains("TLSv1.3 (TLS13_AES_128_GCM_SHA256)"));
    assert!(rows[1].contains("none (plain SMTP)"), "{}", rows[1]);
    assert!(rows[0].contains("not signed"), "{}", rows[0]);
    assert!(
        rows[0].contains(&format!(r#"href="/admin/mail/{}/message""#, inputs[50])),
        "{}",
        rows[0]
    );
    assert!(!first.body.contains("first-page"));
    let next = first
        .body
        .split(r#"href="/admin/mail?cursor="#)
        .nth(1)
        .expect("a next page link")
        .split('"')
        .next()
        .unwrap()
        .to_owned();

    let second = h.get(&format!("/admin/mail?cursor={next}"), &admin).await;
    assert_eq!(second.status, StatusCode::OK, "{}", second.body);
    let rows: Vec<&str> = second
        .body
        .split(r#"<tr class="mail-row">"#)
        .skip(1)
        .collect();
    assert_eq!(rows.len(), 1, "{}", second.body);
    // Message 0, whose HELO is markup: shown as text.
    assert!(
        rows[0].contains("&lt;img src=x onerror=alert(1)&gt;&quot;helo&quot;"),
        "{}",
        rows[0]
    );
    assert!(!second.body.contains("<img"), "{}", second.body);
    assert!(second.body.contains("first-page"));
    assert!(!second.body.contains("next-page"));

    // The download: the message as received, as an attachment.
    let download = h
        .get(&format!("/admin/mail/{}/message", inputs[7]), &admin)
        .await;
    assert_eq!(download.status, StatusCode::OK, "{}", download.body);
    assert_eq!(download.headers["content-type"], "message/rfc822");
    assert_eq!(
        download.headers["content-disposition"],
        format!("attachment; filename=\"mail-{}.eml\"", inputs[7]).as_str()
    );
    assert_eq!(download.headers["x-content-type-options"], "nosniff");
    assert_eq!(download.body.as_bytes(), message(7));

    // A message that carried a report is not one of these; nor is an unknown id.
    if let Some(input) = with_report {
        let reply = h.get(&format!("/admin/mail/{input}/message"), &admin).await;
        assert_eq!(reply.status, StatusCode::NOT_FOUND);
    }
    for path in ["/admin/mail/999999/message", "/admin/mail/x/message"] {
        assert_eq!(h.get(path, &admin).await.status, StatusCode::NOT_FOUND);
    }

    // Cursors: nonsense, and a cursor of another list (the unowned reports).
    let report_cursor = mtasts_proto::hosted::cursor::Cursor::ReportsAfter {
        begin: start,
        id: 1,
    }
    .encode();
    for cursor in ["nonsense", report_cursor.as_str()] {
        let reply = h.get(&format!("/admin/mail?cursor={cursor}"), &admin).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{cursor}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenant_owners_have_no_mail_page() {
    let h = Harness::start().await;
    let (inputs, _) = seed(&h, 1_800_000_000, 2).await;
    let owner = h.login(&h.alpha.owner_email, PASSWORD).await;
    let home = h.get("/", &owner).await;
    assert_eq!(home.status, StatusCode::OK);
    assert!(!home.body.contains("/admin/mail"), "{}", home.body);
    let page = h.get("/admin/mail", &owner).await;
    assert_eq!(page.status, StatusCode::NOT_FOUND, "{}", page.body);
    assert!(!page.body.contains("mta1.sender.test"), "{}", page.body);
    let download = h
        .get(&format!("/admin/mail/{}/message", inputs[1]), &owner)
        .await;
    assert_eq!(download.status, StatusCode::NOT_FOUND);
    assert!(!download.body.contains("is this where reports go"));

    // Without a session: to the login page, like every other page.
    let anonymous = h
        .send(axum::http::Method::GET, "/admin/mail", &[], None)
        .await;
    assert_eq!(anonymous.status, StatusCode::SEE_OTHER);
    assert!(anonymous.location().starts_with("/login"));
}
