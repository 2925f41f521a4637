//! Arrivals: recorded with the reports they carried, listed by input and by report, and the
//! mail that held no report listed with its input's errors.

use mtasts_store::reports::{Inserted, NewArrival, NewError, ReportDb};
use serde_json::json;

use super::{input, tls, tls_new};

mod cases {
    use super::*;

    both_databases!(crate::reports::run, crate::reports::Backend;
        an_arrival_is_listed_by_input_and_by_report,
        mail_without_reports_lists_the_errors,
        mail_without_reports_come_in_pages,
    );

    pub(crate) async fn an_arrival_is_listed_by_input_and_by_report(db: ReportDb) {
        let report = tls(
            "Org A",
            "r1",
            "2024-03-25T00:00:00Z",
            "2024-03-25T23:59:59Z",
        );
        let stored = db
            .store(
                &input(b"mail one", "smtp:192.0.2.1"),
                &[tls_new(&report, b"{}")],
                &[],
            )
            .await
            .unwrap();
        let [Inserted::New(report_id)] = stored.reports[..] else {
            panic!("{stored:?}")
        };
        let dkim = json!([{"domain": "sender.example", "selector": "s1", "result": "pass"}]);
        let recipients = vec!["tlsrpt@reports.hosted.example".to_owned()];
        let arrival = NewArrival {
            input: stored.input,
            channel: "smtp",
            peer_ip: "192.0.2.1",
            helo: "mx.sender.example",
            mail_from: "noreply@sender.example",
            recipients: &recipients,
            tls_version: Some("TLSv1.3"),
            tls_cipher: Some("TLS13_AES_256_GCM_SHA384"),
            dkim: &dkim,
            reports: &stored.reports,
            received_at: 1_711_500_000,
        };
        let first = db.add_arrival(&arrival).await.unwrap();
        // The same message again (a retry): a second arrival of the same input and report.
        let again = db
            .store(
                &input(b"mail one", "smtp:192.0.2.1"),
                &[tls_new(&report, b"{}")],
                &[],
            )
            .await
            .unwrap();
        assert_eq!(again.input, stored.input);
        assert_eq!(again.reports, [Inserted::Duplicate(report_id)]);
        let second = db
            .add_arrival(&NewArrival {
                tls_version: None,
                tls_cipher: None,
                reports: &again.reports,
                ..arrival
            })
            .await
            .unwrap();
        assert!(second > first);

        let by_input = db.arrivals_of_input(stored.input).await.unwrap();
        assert_eq!(by_input.len(), 2);
        let row = &by_input[0];
        assert_eq!(row.id, first);
        assert_eq!(row.channel, "smtp");
        assert_eq!(row.peer_ip, "192.0.2.1");
        assert_eq!(row.helo, "mx.sender.example");
        assert_eq!(row.mail_from, "noreply@sender.example");
        assert_eq!(row.recipients, recipients);
        assert_eq!(row.tls_version.as_deref(), Some("TLSv1.3"));
        assert_eq!(row.tls_cipher.as_deref(), Some("TLS13_AES_256_GCM_SHA384"));
        assert_eq!(row.dkim, dkim);
        assert_eq!(row.reports, [report_id]);
        assert_eq!(row.received_at, 1_711_500_000);
        assert_eq!(by_input[1].tls_version, None);

        let by_report = db.arrivals_of_report(report_id).await.unwrap();
        assert_eq!(
            by_report.iter().map(|a| a.id).collect::<Vec<_>>(),
            [first, second]
        );
        assert!(
            db.arrivals_of_report(report_id + 1000)
                .await
                .unwrap()
                .is_empty()
        );
        assert!(db.mail_without_reports(10).await.unwrap().is_empty());
    }

    pub(crate) async fn mail_without_reports_lists_the_errors(db: ReportDb) {
        let errors = [NewError {
            source: "smtp:192.0.2.9#2",
            code: "malformed",
            message: "not JSON",
        }];
        let junk = db
            .store(&input(b"hello, no report", "smtp:192.0.2.9"), &[], &errors)
            .await
            .unwrap();
        let nothing = db
            .store(&input(b"plain text only", "smtp:192.0.2.9"), &[], &[])
            .await
            .unwrap();
        let report = tls(
            "Org B",
            "r2",
            "2024-03-25T00:00:00Z",
            "2024-03-25T23:59:59Z",
        );
        let good = db
            .store(
                &input(b"a report", "smtp:192.0.2.9"),
                &[tls_new(&report, b"{}")],
                &[],
            )
            .await
            .unwrap();
        let empty = json!([]);
        for (stored, at) in [(&junk, 100), (&nothing, 200), (&good, 300)] {
            db.add_arrival(&NewArrival {
                input: stored.input,
                channel: "smtp",
                peer_ip: "192.0.2.9",
                helo: "h",
                mail_from: "",
                recipients: &[],
                tls_version: None,
                tls_cipher: None,
                dkim: &empty,
                reports: &stored.reports,
                received_at: at,
            })
            .await
            .unwrap();
        }
        let kept = db.mail_without_reports(10).await.unwrap();
        // Newest first; the message with a report is not there.
        assert_eq!(
            kept.iter().map(|m| m.arrival.input).collect::<Vec<_>>(),
            [nothing.input, junk.input]
        );
        assert!(kept[0].errors.is_empty());
        assert_eq!(kept[1].errors.len(), 1);
        assert_eq!(kept[1].errors[0].code, "malformed");
        assert_eq!(kept[1].errors[0].message, "not JSON");
        assert_eq!(db.mail_without_reports(1).await.unwrap().len(), 1);
    }

    /// Keyset pages, newest first, continuing after the last arrival of the page before:
    /// arrivals received in the same second are told apart by id, none is skipped or shown
    /// twice, and the last page ends the list.
    pub(crate) async fn mail_without_reports_come_in_pages(db: ReportDb) {
        let empty = json!([]);
        let mut expected = Vec::new();
        // Five messages, the middle three in the same second.
        for (n, at) in [100, 200, 200, 200, 300].into_iter().enumerate() {
            let bytes = format!("message {n}");
            let stored = db
                .store(&input(bytes.as_bytes(), "smtp:192.0.2.9"), &[], &[])
                .await
                .unwrap();
            let arrival = db
                .add_arrival(&NewArrival {
                    input: stored.input,
                    channel: "smtp",
                    peer_ip: "192.0.2.9",
                    helo: "h",
                    mail_from: "",
                    recipients: &[],
                    tls_version: None,
                    tls_cipher: None,
                    dkim: &empty,
                    reports: &[],
                    received_at: at,
                })
                .await
                .unwrap();
            expected.push((at, arrival));
        }
        expected.sort_by(|a, b| b.cmp(a));
        let mut seen = Vec::new();
        let mut after = None;
        loop {
            let page = db.mail_without_reports_page(after, 2).await.unwrap();
            assert!(page.len() <= 2);
            let Some(last) = page.last() else {
                break;
            };
            after = Some((last.arrival.received_at, last.arrival.id));
            seen.extend(page.iter().map(|m| (m.arrival.received_at, m.arrival.id)));
        }
        assert_eq!(seen, expected);
        // The first page is the newest, as without a cursor.
        let first = db.mail_without_reports_page(None, 2).await.unwrap();
        let unpaged = db.mail_without_reports(2).await.unwrap();
        assert_eq!(first, unpaged);
        assert_eq!(first[0].arrival.received_at, 300);
    }
}
