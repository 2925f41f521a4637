//! Tests of `mtasts_store::reports::ReportDb`: every case runs against SQLite (a temporary file)
//! and PostgreSQL (a fresh schema per test; skipped with a message when the server is down,
//! unless `MTASTS_REQUIRE_SERVICES=1`).

use std::future::Future;

use mtasts_proto::dmarc::{self, Mode};
use mtasts_proto::tlsrpt::report::TlsReport;
use mtasts_store::reports::{
    Content, Filter, Inserted, Kind, NewError, NewInput, NewReport, ReportDb, ReportDbError,
    StoredInput,
};

use mtasts_testkit::services::unique;

pub(crate) const DAY: i64 = 86_400;
/// 2024-03-25T00:00:00Z.
pub(crate) const D: i64 = 1_711_324_800;

#[derive(Clone, Copy, Debug)]
pub(crate) enum Backend {
    Sqlite,
    Postgres,
}

/// Opens a fresh database of `backend`, runs `case` on it and cleans up.
pub(crate) async fn run<F, Fut>(backend: Backend, case: F)
where
    F: FnOnce(ReportDb) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    match backend {
        Backend::Sqlite => {
            let dir = tempfile::tempdir().unwrap();
            let url = format!("sqlite:{}", dir.path().join("reports.db").display());
            let db = ReportDb::open(&url).await.unwrap();
            assert_eq!(db.backend(), "sqlite");
            let outcome = tokio::spawn(case(db.clone())).await;
            db.close().await;
            if let Err(e) = outcome {
                std::panic::resume_unwind(e.into_panic());
            }
        }
        Backend::Postgres => {
            let Some(schema) = crate::schema::Schema::create(&unique("reports_test_")).await else {
                return;
            };
            let outcome = match ReportDb::open(&schema.url).await {
                Ok(db) => {
                    assert_eq!(db.backend(), "postgres");
                    let outcome = tokio::spawn(case(db.clone())).await;
                    db.close().await;
                    Ok(outcome)
                }
                Err(e) => Err(format!("open {}: {e}", schema.url)),
            };
            schema.drop().await;
            crate::schema::finish(outcome);
        }
    }
}

/// A TLS report: example.com (sts testing, 90 ok, 10 failed: 7 certificate-expired at
/// mx1, 3 starttls-not-supported at mx2) and other.org (no-policy-found, 5 ok).
pub(crate) fn tls(org: &str, id: &str, begin: &str, end: &str) -> TlsReport {
    let json = format!(
        r#"{{"organization-name": "{org}", "report-id": "{id}",
          "date-range": {{"start-datetime": "{begin}", "end-datetime": "{end}"}},
          "policies": [
            {{"policy": {{"policy-type": "sts", "policy-domain": "example.com",
                        "policy-string": ["version: STSv1", "mode: testing", "mx: mx1.example.com"],
                        "mx-host": ["mx1.example.com"]}},
             "summary": {{"total-successful-session-count": 90, "total-failure-session-count": 10}},
             "failure-details": [
               {{"result-type": "certificate-expired", "failed-session-count": 7,
                 "receiving-mx-hostname": "mx1.example.com"}},
               {{"result-type": "starttls-not-supported", "failed-session-count": 3,
                 "receiving-mx-hostname": "mx2.example.com"}}]}},
            {{"policy": {{"policy-type": "no-policy-found", "policy-domain": "other.org"}},
             "summary": {{"total-successful-session-count": 5, "total-failure-session-count": 0}}}}]}}"#
    );
    TlsReport::parse(json.as_bytes()).unwrap()
}

/// A DMARC report for example.com with `records` records of `count` messages from
/// 192.0.2.(i % 4): dkim pass on even i, spf fail everywhere, quarantine when neither passes.
fn dmarc_xml(id: &str, begin: i64, end: i64, records: usize, count: u64) -> String {
    let mut rows = String::new();
    for i in 0..records {
        let dkim = if i % 2 == 0 { "pass" } else { "fail" };
        let disposition = if i % 2 == 0 { "none" } else { "quarantine" };
        rows.push_str(&format!(
            "<record><row><source_ip>192.0.2.{}</source_ip><count>{count}</count>\
             <policy_evaluated><disposition>{disposition}</disposition><dkim>{dkim}</dkim>\
             <spf>fail</spf></policy_evaluated></row><identifiers><header_from>example.com\
             </header_from></identifiers><auth_results><spf><domain>example.com</domain>\
             <result>fail</result></spf></auth_results></record>",
            i % 4
        ));
    }
    format!(
        "<?xml version=\"1.0\"?><feedback><report_metadata><org_name>dmarc.example</org_name>\
         <email>d@dmarc.example</email><report_id>{id}</report_id><date_range><begin>{begin}\
         </begin><end>{end}</end></date_range></report_metadata><policy_published>\
         <domain>example.com</domain><p>none</p><pct>100</pct></policy_published>{rows}</feedback>"
    )
}

pub(crate) fn input(bytes: &[u8], source: &'static str) -> NewInput<'static> {
    let mut sha256 = [0u8; 32];
    // Distinct enough for tests: the bytes' length and first bytes.
    sha256[..8].copy_from_slice(&(bytes.len() as u64).to_be_bytes());
    for (slot, b) in sha256[8..].iter_mut().zip(bytes.iter().rev()) {
        *slot = *b;
    }
    NewInput {
        sha256,
        source,
        received_at: D + 2 * DAY,
        size: bytes.len() as u64,
        gzip: b"not really gzip",
    }
}

pub(crate) fn tls_new<'a>(report: &'a TlsReport, raw: &'a [u8]) -> NewReport<'a> {
    NewReport {
        source: "in.json",
        content: Content::TlsRpt(report),
        normalized: "{\"kind\":\"tlsrpt\"}",
        raw,
    }
}

fn all() -> Filter {
    Filter::default()
}

mod cases {
    use super::*;

    both_databases!(crate::reports::run, crate::reports::Backend;
        a_report_is_stored_with_its_rows,
        the_same_input_and_report_are_stored_once,
        a_range_over_two_days_is_spread,
        filters_select_reports_and_days,
        dmarc_records_are_batched_and_grouped,
        reparse_operations_keep_rollups_exact,
        concurrent_inputs_with_the_same_reports_store_each_once,
        an_end_at_the_next_midnight_is_not_a_day_of_its_own,
        dkim_selectors_are_summed_per_signing_domain,
    );

    pub(crate) async fn a_report_is_stored_with_its_rows(db: ReportDb) {
        let report = tls(
            "Org A",
            "r1",
            "2024-03-25T00:00:00Z",
            "2024-03-25T23:59:59Z",
        );
        let errors = [NewError {
            source: "in.eml#3",
            code: "malformed",
            message: "not JSON",
        }];
        let stored = db
            .store(
                &input(b"input one", "in.eml"),
                &[tls_new(&report, b"{raw}")],
                &errors,
            )
            .await
            .unwrap();
        assert!(stored.input_new);
        let [Inserted::New(id)] = stored.reports[..] else {
            panic!("{stored:?}")
        };

        let rows = db.list(&all(), 10).await.unwrap();
        assert_eq!(rows.len(), 1);
        let row = &rows[0];
        assert_eq!(
            (row.id, row.kind, &*row.organization, &*row.report_id),
            (id, Kind::TlsRpt, "Org A", "r1")
        );
        assert_eq!((row.begin, row.end), (D, D + DAY - 1));
        assert_eq!(row.domains, ["example.com", "other.org"]);
        assert_eq!((row.success, row.failure, row.duplicates), (95, 10, 0));
        assert_eq!((&*row.source, row.received_at), ("in.json", D + 2 * DAY));

        let got = db.get(id).await.unwrap().unwrap();
        assert_eq!(&got.row, row);
        assert_eq!(got.raw, b"{raw}");
        assert_eq!(got.normalized, "{\"kind\":\"tlsrpt\"}");
        assert_eq!(db.get(id + 1000).await.unwrap(), None);

        let daily = db.daily(&all()).await.unwrap();
        let summary: Vec<_> = daily
            .iter()
            .map(|d| {
                (
                    d.kind,
                    &*d.domain,
                    d.day,
                    &*d.organization,
                    d.reports,
                    d.success,
                    d.failure,
                )
            })
            .collect();
        assert_eq!(
            summary,
            [
                (Kind::TlsRpt, "example.com", D, "Org A", 1, 90, 10),
                (Kind::TlsRpt, "other.org", D, "Org A", 1, 5, 0),
            ]
        );

        let failures = db.tls_failures(&all()).await.unwrap();
        let f: Vec<_> = failures
            .iter()
            .map(|f| {
                (
                    &*f.domain,
                    &*f.result,
                    f.receiving_mx.as_deref(),
                    f.count,
                    f.first_day,
                    f.last_day,
                )
            })
            .collect();
        assert_eq!(
            f,
            [
                (
                    "example.com",
                    "certificate-expired",
                    Some("mx1.example.com"),
                    7,
                    D,
                    D
                ),
                (
                    "example.com",
                    "starttls-not-supported",
                    Some("mx2.example.com"),
                    3,
                    D,
                    D
                ),
            ]
        );

        let policies = db.policies(&all()).await.unwrap();
        let p: Vec<_> = policies
            .iter()
            .map(|p| (p.kind, &*p.domain, &*p.policy, p.p.as_deref(), p.last_seen))
            .collect();
        assert_eq!(
            p,
            [
                (
                    Kind::TlsRpt,
                    "example.com",
                    "sts testing",
                    Some("testing"),
                    D + DAY - 1
                ),
                (
                    Kind::TlsRpt,
                    "other.org",
                    "no-policy-found",
                    None,
                    D + DAY - 1
                ),
            ]
        );

        let errors = db.errors(&all(), 10).await.unwrap();
        assert_eq!(errors.len(), 1);
        assert_eq!(
            (&*errors[0].source, &*errors[0].code, &*errors[0].message),
            ("in.eml#3", "malformed", "not JSON")
        );
        assert!(db.dmarc_sources(&all()).await.unwrap().is_empty());
    }

    pub(crate) async fn the_same_input_and_report_are_stored_once(db: ReportDb) {
        let report = tls(
            "Org A",
            "r1",
            "2024-03-25T00:00:00Z",
            "2024-03-25T23:59:59Z",
        );
        let errors = [NewError {
            source: "x#1",
            code: "unrecognized",
            message: "nothing",
        }];
        let first = db
            .store(&input(b"same", "a"), &[tls_new(&report, b"{}")], &errors)
            .await
            .unwrap();
        let again = db
            .store(&input(b"same", "a"), &[tls_new(&report, b"{}")], &errors)
            .await
            .unwrap();
        assert_eq!(again.input, first.input);
        assert!(!again.input_new);
        let Inserted::New(id) = first.reports[0] else {
            panic!()
        };
        assert_eq!(again.reports, [Inserted::Duplicate(id)]);
        // The same report in other bytes (by mail, then by HTTPS).
        let other = db
            .store(&input(b"other bytes", "b"), &[tls_new(&report, b"{}")], &[])
            .await
            .unwrap();
        assert!(other.input_new);
        assert_eq!(other.reports, [Inserted::Duplicate(id)]);
        // A different report id is a different report.
        let second = tls(
            "Org A",
            "r2",
            "2024-03-25T00:00:00Z",
            "2024-03-25T23:59:59Z",
        );
        let third = db
            .store(&input(b"third", "c"), &[tls_new(&second, b"{}")], &[])
            .await
            .unwrap();
        assert!(matches!(third.reports[..], [Inserted::New(_)]));

        let rows = db.list(&all(), 10).await.unwrap();
        assert_eq!(rows.len(), 2);
        let r1 = rows.iter().find(|r| r.report_id == "r1").unwrap();
        assert_eq!(r1.duplicates, 2);
        // The errors of the repeated input were stored once; duplicates add nothing to rollups.
        assert_eq!(db.errors(&all(), 10).await.unwrap().len(), 1);
        let daily = db.daily(&all()).await.unwrap();
        let ex = daily.iter().find(|d| d.domain == "example.com").unwrap();
        assert_eq!((ex.reports, ex.success, ex.failure), (2, 180, 20));
        assert_eq!(db.input_ids().await.unwrap().len(), 3);
    }

    pub(crate) async fn a_range_over_two_days_is_spread(db: ReportDb) {
        // 18:00 to 06:00 next day: half the seconds on each day.
        let xml = dmarc_xml("d1", D + 18 * 3600, D + DAY + 6 * 3600, 2, 51);
        let report = dmarc::parse(xml.as_bytes(), Mode::Full).unwrap();
        let new = NewReport {
            source: "d.xml",
            content: Content::Dmarc(&report),
            normalized: "{}",
            raw: xml.as_bytes(),
        };
        db.store(&input(xml.as_bytes(), "d.xml"), &[new], &[])
            .await
            .unwrap();
        let daily = db.daily(&all()).await.unwrap();
        let got: Vec<_> = daily
            .iter()
            .map(|d| {
                (
                    d.day,
                    d.reports,
                    d.messages,
                    d.dmarc_pass,
                    d.success,
                    d.failure,
                    d.none,
                    d.quarantine,
                )
            })
            .collect();
        // 51 pass (DKIM) and 51 fail, each split 26 + 25 (a tie goes to the earlier day);
        // messages are their sum. 51 none and 51 quarantined: 26 + 25 each.
        assert_eq!(
            got,
            [
                (D, 1, 52, 26, 26, 26, 26, 26),
                (D + DAY, 1, 50, 25, 25, 25, 25, 25),
            ]
        );
        assert!(
            daily
                .iter()
                .all(|d| d.kind == Kind::Dmarc && d.domain == "example.com")
        );
        let total: u64 = daily.iter().map(|d| d.messages).sum();
        assert_eq!(total, 102);
        let rows = db.list(&all(), 10).await.unwrap();
        assert_eq!((rows[0].success, rows[0].failure), (51, 51));
        assert_eq!(rows[0].organization, "dmarc.example");
        let policies = db.policies(&all()).await.unwrap();
        assert_eq!(policies.len(), 1);
        assert_eq!(
            (
                &*policies[0].policy,
                policies[0].p.as_deref(),
                policies[0].pct
            ),
            ("p=none", Some("none"), Some(100))
        );
    }

    pub(crate) async fn an_end_at_the_next_midnight_is_not_a_day_of_its_own(db: ReportDb) {
        // Mail.ru ends its day at the next 00:00:00Z (exclusive); two reports of two days.
        let first = tls(
            "Org A",
            "r1",
            "2024-03-25T00:00:00Z",
            "2024-03-26T00:00:00Z",
        );
        let second = tls(
            "Org A",
            "r2",
            "2024-03-26T00:00:00Z",
            "2024-03-27T00:00:00Z",
        );
        for (report, name) in [(&first, "one.json"), (&second, "two.json")] {
            db.store(
                &input(name.as_bytes(), "in.json"),
                &[tls_new(report, b"{}")],
                &[],
            )
            .await
            .unwrap();
        }
        let days: Vec<_> = db
            .daily(&all())
            .await
            .unwrap()
            .iter()
            .filter(|d| d.domain == "example.com")
            .map(|d| (d.day, d.reports))
            .collect();
        assert_eq!(days, [(D, 1), (D + DAY, 1)]);
        let failures = db.tls_failures(&all()).await.unwrap();
        assert!(!failures.is_empty());
        for f in &failures {
            assert_eq!((f.first_day, f.last_day), (D, D + DAY), "{f:?}");
        }
    }

    pub(crate) async fn filters_select_reports_and_days(db: ReportDb) {
        let a = tls("Org A", "a", "2024-03-25T00:00:00Z", "2024-03-25T23:59:59Z");
        let b = tls("Org B", "b", "2024-03-27T00:00:00Z", "2024-03-27T23:59:59Z");
        let xml = dmarc_xml("d", D + DAY, D + 2 * DAY - 1, 1, 4);
        let d = dmarc::parse(xml.as_bytes(), Mode::Full).unwrap();
        db.store(&input(b"a", "a"), &[tls_new(&a, b"{}")], &[])
            .await
            .unwrap();
        db.store(&input(b"b", "b"), &[tls_new(&b, b"{}")], &[])
            .await
            .unwrap();
        let dn = NewReport {
            source: "d",
            content: Content::Dmarc(&d),
            normalized: "{}",
            raw: b"<x/>",
        };
        db.store(&input(b"d", "d"), &[dn], &[]).await.unwrap();

        let ids = |rows: Vec<mtasts_store::reports::ReportRow>| -> Vec<String> {
            rows.into_iter().map(|r| r.report_id).collect()
        };
        // Newest begin first.
        assert_eq!(ids(db.list(&all(), 10).await.unwrap()), ["b", "d", "a"]);
        assert_eq!(ids(db.list(&all(), 2).await.unwrap()), ["b", "d"]);
        let kind = Filter {
            kind: Some(Kind::Dmarc),
            ..Filter::default()
        };
        assert_eq!(ids(db.list(&kind, 10).await.unwrap()), ["d"]);
        let domain = Filter {
            domain: Some("Other.ORG.".to_owned()),
            ..Filter::default()
        };
        assert_eq!(ids(db.list(&domain, 10).await.unwrap()), ["b", "a"]);
        let window = Filter {
            since: Some(D + DAY),
            until: Some(D + 2 * DAY),
            ..Filter::default()
        };
        assert_eq!(ids(db.list(&window, 10).await.unwrap()), ["d"]);
        let days: Vec<i64> = db
            .daily(&window)
            .await
            .unwrap()
            .iter()
            .map(|d| d.day)
            .collect();
        assert_eq!(days, [D + DAY]);
        let since = Filter {
            since: Some(D + DAY),
            ..Filter::default()
        };
        assert_eq!(ids(db.list(&since, 10).await.unwrap()), ["b", "d"]);
        let f = db.tls_failures(&since).await.unwrap();
        assert!(f.iter().all(|f| f.organization == "Org B"), "{f:?}");
        let p = db
            .policies(&Filter {
                domain: Some("example.com".to_owned()),
                ..Filter::default()
            })
            .await
            .unwrap();
        let seen: Vec<_> = p.iter().map(|p| (p.kind, p.last_seen)).collect();
        assert_eq!(
            seen,
            [
                (Kind::TlsRpt, D + 3 * DAY - 1),
                (Kind::Dmarc, D + 2 * DAY - 1)
            ]
        );
    }

    pub(crate) async fn dmarc_records_are_batched_and_grouped(db: ReportDb) {
        // More records than one batch.
        let xml = dmarc_xml("big", D, D + DAY - 1, 1_203, 2);
        let report = dmarc::parse(xml.as_bytes(), Mode::Full).unwrap();
        let new = NewReport {
            source: "big.xml",
            content: Content::Dmarc(&report),
            normalized: "{}",
            raw: xml.as_bytes(),
        };
        db.store(&input(xml.as_bytes(), "big.xml"), &[new], &[])
            .await
            .unwrap();
        let sources = db.dmarc_sources(&all()).await.unwrap();
        let got: Vec<_> = sources
            .iter()
            .map(|s| {
                (
                    &*s.source_ip,
                    &*s.header_from,
                    s.messages,
                    s.dmarc_pass,
                    s.dkim_pass,
                    s.spf_pass,
                    s.none,
                    s.quarantine,
                    s.reject,
                )
            })
            .collect();
        // i % 4 = 0, 2 pass (DKIM, none); 1, 3 fail (quarantine). 1,203 records: 301 of
        // .0, .1, .2 and 300 of .3, 2 messages each.
        assert_eq!(
            got,
            [
                ("192.0.2.0", "example.com", 602, 602, 602, 0, 602, 0, 0),
                ("192.0.2.1", "example.com", 602, 0, 0, 0, 0, 602, 0),
                ("192.0.2.2", "example.com", 602, 602, 602, 0, 602, 0, 0),
                ("192.0.2.3", "example.com", 600, 0, 0, 0, 0, 600, 0),
            ]
        );
        let daily = db.daily(&all()).await.unwrap();
        assert_eq!((daily[0].messages, daily[0].dmarc_pass), (2_406, 1_204));
    }

    pub(crate) async fn concurrent_inputs_with_the_same_reports_store_each_once(db: ReportDb) {
        // Two reports about different domains, in one order in half the inputs and in the
        // other order in the rest, stored at once: rows locked in opposite orders.
        let a = tls("Org A", "a", "2024-03-25T00:00:00Z", "2024-03-25T23:59:59Z");
        let xml = dmarc_xml("b", D, D + DAY - 1, 3, 1);
        let b = dmarc::parse(xml.as_bytes(), Mode::Full).unwrap();
        let mut tasks = Vec::new();
        for i in 0..16u8 {
            let (db, a, b) = (db.clone(), a.clone(), b.clone());
            tasks.push(tokio::spawn(async move {
                let ra = tls_new(&a, b"{}");
                let rb = NewReport {
                    source: "b",
                    content: Content::Dmarc(&b),
                    normalized: "{}",
                    raw: b"<b/>",
                };
                let reports = if i % 2 == 0 { [ra, rb] } else { [rb, ra] };
                let bytes = [i; 4];
                let mut new = input(&bytes, "in");
                new.sha256 = [i; 32];
                db.store(&new, &reports, &[]).await.unwrap()
            }));
        }
        let mut new = 0;
        for task in tasks {
            let stored = task.await.unwrap();
            new += stored
                .reports
                .iter()
                .filter(|r| matches!(r, Inserted::New(_)))
                .count();
        }
        assert_eq!(new, 2);
        let rows = db.list(&all(), 10).await.unwrap();
        assert_eq!(rows.len(), 2);
        assert!(rows.iter().all(|r| r.duplicates == 15), "{rows:?}");
        let daily = db.daily(&all()).await.unwrap();
        assert!(daily.iter().all(|d| d.reports == 1), "{daily:?}");
        assert_eq!(db.input_ids().await.unwrap().len(), 16);
    }

    pub(crate) async fn dkim_selectors_are_summed_per_signing_domain(db: ReportDb) {
        // (source, count, [(d=, s=)]): the owner's two selectors, a third party's, one
        // signature without a selector and one whose selector is not a DNS label.
        type Row = (&'static str, u64, &'static [(&'static str, &'static str)]);
        let rows: [Row; 4] = [
            (
                "192.0.2.1",
                10,
                &[("Example.COM", "S1"), ("esp.example", "k1")],
            ),
            (
                "192.0.2.2",
                5,
                &[("example.com", "s2"), ("example.com", "s1")],
            ),
            ("192.0.2.3", 7, &[("example.com", "bad selector!")]),
            ("192.0.2.4", 3, &[("example.com", "")]),
        ];
        let xml_of = |id: &str, begin: i64| {
            let mut records = String::new();
            for (ip, count, sigs) in rows {
                let mut auth = String::new();
                for (d, sel) in sigs {
                    auth.push_str(&format!(
                        "<dkim><domain>{d}</domain><selector>{sel}</selector><result>pass</result></dkim>"
                    ));
                }
                records.push_str(&format!(
                    "<record><row><source_ip>{ip}</source_ip><count>{count}</count>\
                     <policy_evaluated><disposition>none</disposition><dkim>pass</dkim>\
                     <spf>fail</spf></policy_evaluated></row><identifiers><header_from>example.com\
                     </header_from></identifiers><auth_results>{auth}<spf><domain>example.com</domain>\
                     <result>fail</result></spf></auth_results></record>"
                ));
            }
            format!(
                "<?xml version=\"1.0\"?><feedback><report_metadata><org_name>dmarc.example</org_name>\
                 <email>d@dmarc.example</email><report_id>{id}</report_id><date_range><begin>{begin}\
                 </begin><end>{}</end></date_range></report_metadata><policy_published>\
                 <domain>example.com</domain><p>none</p></policy_published>{records}</feedback>",
                begin + DAY - 1
            )
        };
        for (id, begin) in [("old", D - 40 * DAY), ("new", D)] {
            let xml = xml_of(id, begin);
            let report = dmarc::parse(xml.as_bytes(), Mode::Full).unwrap();
            let new = NewReport {
                source: "d.xml",
                content: Content::Dmarc(&report),
                normalized: "{}",
                raw: xml.as_bytes(),
            };
            db.store(&input(xml.as_bytes(), "d.xml"), &[new], &[])
                .await
                .unwrap();
        }
        let seen = |since| {
            let db = db.clone();
            async move {
                db.dkim_selectors_of("EXAMPLE.com.", since, 10)
                    .await
                    .unwrap()
                    .into_iter()
                    .map(|s| (s.selector, s.messages, s.last_seen))
                    .collect::<Vec<_>>()
            }
        };
        // Both reports: s1 signed 15 messages in each; only the newer one since D.
        assert_eq!(
            seen(D - 50 * DAY).await,
            [
                ("s1".to_owned(), 30, D + DAY - 1),
                ("s2".to_owned(), 10, D + DAY - 1)
            ]
        );
        assert_eq!(
            seen(D).await,
            [
                ("s1".to_owned(), 15, D + DAY - 1),
                ("s2".to_owned(), 5, D + DAY - 1)
            ]
        );
        let third_party = db.dkim_selectors_of("esp.example", 0, 10).await.unwrap();
        assert_eq!(third_party.len(), 1);
        assert_eq!(third_party[0].selector, "k1");
        assert_eq!(
            db.dkim_selectors_of("example.com", 0, 1)
                .await
                .unwrap()
                .len(),
            1
        );
        // Retention takes the selectors with their reports.
        db.delete_older_than(D).await.unwrap();
        assert_eq!(seen(0).await.len(), 2);
        assert_eq!(seen(0).await[0].1, 15);
    }

    pub(crate) async fn reparse_operations_keep_rollups_exact(db: ReportDb) {
        // An older version stored an input with an error and no report.
        let report = tls(
            "Org A",
            "r1",
            "2024-03-25T12:00:00Z",
            "2024-03-26T12:00:00Z",
        );
        let errors = [NewError {
            source: "old#1",
            code: "invalid",
            message: "older reader refused it",
        }];
        let stored = db.store(&input(b"old", "old"), &[], &errors).await.unwrap();
        let input_row = db.input(stored.input).await.unwrap().unwrap();
        assert_eq!(input_row.source, "old");
        assert_eq!(input_row.gzip, b"not really gzip");
        // Read again: the report is new, the error gone.
        let (inserted, before) = db
            .restore_input(&input_row, &[tls_new(&report, b"{}")], &[])
            .await
            .unwrap();
        assert_eq!(before, 1);
        let [Inserted::New(id)] = inserted[..] else {
            panic!("{inserted:?}")
        };
        assert!(db.errors(&all(), 10).await.unwrap().is_empty());
        // Read again once more: nothing new, not a duplicate either.
        let (inserted, before) = db
            .restore_input(
                &StoredInput {
                    gzip: Vec::new(),
                    ..input_row.clone()
                },
                &[tls_new(&report, b"{}")],
                &[],
            )
            .await
            .unwrap();
        assert_eq!((inserted, before), (vec![Inserted::Duplicate(id)], 0));
        assert_eq!(db.list(&all(), 10).await.unwrap()[0].duplicates, 0);
        let daily = db.daily(&all()).await.unwrap();
        let ex: Vec<_> = daily
            .iter()
            .filter(|d| d.domain == "example.com")
            .map(|d| (d.day, d.success, d.failure))
            .collect();
        assert_eq!(ex, [(D, 45, 5), (D + DAY, 45, 5)]);

        // The same normalized JSON changes nothing.
        assert!(
            !db.replace_report(id, &tls_new(&report, b"{}"))
                .await
                .unwrap()
        );
        // A report read differently now (another org, another day) moves its rollups.
        let changed = tls(
            "Org B",
            "r1",
            "2024-03-27T00:00:00Z",
            "2024-03-27T23:59:59Z",
        );
        let new = NewReport {
            normalized: "{\"changed\":true}",
            ..tls_new(&changed, b"{new}")
        };
        assert!(db.replace_report(id, &new).await.unwrap());
        let daily = db.daily(&all()).await.unwrap();
        let got: Vec<_> = daily
            .iter()
            .map(|d| {
                (
                    &*d.domain,
                    d.day,
                    &*d.organization,
                    d.reports,
                    d.success,
                    d.failure,
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                ("example.com", D + 2 * DAY, "Org B", 1, 90, 10),
                ("other.org", D + 2 * DAY, "Org B", 1, 5, 0),
            ]
        );
        let got = db.get(id).await.unwrap().unwrap();
        assert_eq!(
            (&*got.row.organization, got.raw.as_slice()),
            ("Org B", &b"{new}"[..])
        );
        assert_eq!(got.normalized, "{\"changed\":true}");
        assert_eq!(db.tls_failures(&all()).await.unwrap().len(), 2);
        assert_eq!(db.report_ids().await.unwrap(), [id]);
        assert!(!db.replace_report(id + 99, &new).await.unwrap());
    }
}

#[tokio::test]
async fn urls_of_another_kind_are_invalid() {
    let e = ReportDb::open("mysql://u:secret@host/db")
        .await
        .unwrap_err();
    assert!(
        matches!(&e, ReportDbError::Invalid(m) if m.contains("u:***@")),
        "{e}"
    );
}

#[tokio::test]
async fn an_unreachable_postgres_is_unavailable() {
    // Port 1 on loopback: nothing listens there.
    let e = ReportDb::open("postgres://u@127.0.0.1:1/db")
        .await
        .unwrap_err();
    assert!(matches!(e, ReportDbError::Unavailable(_)), "{e}");
}

#[test]
fn kinds_read_and_write_their_words() {
    assert_eq!("tlsrpt".parse::<Kind>().unwrap(), Kind::TlsRpt);
    assert_eq!("dmarc".parse::<Kind>().unwrap(), Kind::Dmarc);
    assert_eq!(Kind::Dmarc.to_string(), "dmarc");
    assert!("TLSRPT".parse::<Kind>().is_err());
}

/// The SMTP intake's arrivals (`mtasts_store::reports::arrivals`).
#[path = "arrivals.rs"]
mod arrivals;
