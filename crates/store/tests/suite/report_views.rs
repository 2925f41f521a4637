//! The reads `mtasts serve`'s report views make over sets of domains, and retention: every
//! case on SQLite and PostgreSQL (a fresh schema each).

use mtasts_store::reports::{DOMAIN_CHUNK, Filter, Kind, ReportDb, ReportKey, Scope};

use crate::reports::{D, DAY, input, tls, tls_new};

mod cases {
    use super::*;

    both_databases!(crate::reports::run, crate::reports::Backend;
        scoped_reads_cover_exactly_the_domains_asked_for,
        the_report_list_pages_by_key_over_chunks,
        retention_deletes_raw_reports_and_keeps_the_rollups,
    );

    /// Stores report `id` of `org` for the day `day` (Unix seconds), received at `received`.
    async fn store(db: &ReportDb, org: &str, id: &str, day: i64, received: i64) -> i64 {
        let begin = mtasts_proto::tlsrpt::report::UtcTime::from_unix_seconds(day).unwrap();
        let end = mtasts_proto::tlsrpt::report::UtcTime::from_unix_seconds(day + DAY - 1).unwrap();
        let report = tls(org, id, &begin.to_string(), &end.to_string());
        let raw = format!("{org}/{id}");
        let label = format!("{org}/{id}/{day}");
        let mut new = input(label.as_bytes(), "in.eml");
        new.received_at = received;
        let stored = db
            .store(&new, &[tls_new(&report, raw.as_bytes())], &[])
            .await
            .unwrap();
        match stored.reports[0] {
            mtasts_store::reports::Inserted::New(id)
            | mtasts_store::reports::Inserted::Duplicate(id) => id,
        }
    }

    /// Many names that have no reports, with `wanted` among them past the first chunk.
    fn many(wanted: &[&str]) -> Vec<String> {
        let mut names: Vec<String> = (0..DOMAIN_CHUNK + 20)
            .map(|i| format!("d{i}.example"))
            .collect();
        names.extend(wanted.iter().map(|w| w.to_uppercase()));
        names
    }

    pub(crate) async fn scoped_reads_cover_exactly_the_domains_asked_for(db: ReportDb) {
        store(&db, "Org A", "a1", D, D + DAY).await;
        store(&db, "Org B", "b1", D + DAY, D + 3 * DAY).await;
        let since = D - 10 * DAY;
        let until = D + 10 * DAY;
        let only = Scope::new(many(&["example.com"]), since, until, Some(Kind::TlsRpt));
        let daily = db.daily_of(&only).await.unwrap();
        assert_eq!(daily.len(), 2, "{daily:?}");
        assert!(daily.iter().all(|d| d.domain == "example.com"));
        assert_eq!(daily.iter().map(|d| d.success).sum::<u64>(), 180);
        assert_eq!(daily.iter().map(|d| d.failure).sum::<u64>(), 20);
        // The same as the single-domain read the CLI makes.
        let filter = Filter {
            domain: Some("example.com".into()),
            since: Some(since),
            until: Some(until),
            kind: Some(Kind::TlsRpt),
        };
        assert_eq!(daily, db.daily(&filter).await.unwrap());
        assert_eq!(
            db.tls_failures_of(&only).await.unwrap(),
            db.tls_failures(&filter).await.unwrap()
        );
        let details = db.tls_failure_details(&only).await.unwrap();
        let by_result: Vec<(&str, u64)> = details
            .iter()
            .map(|d| (d.result.as_str(), d.count))
            .collect();
        assert_eq!(
            by_result,
            [
                ("certificate-expired", 7),
                ("certificate-expired", 7),
                ("starttls-not-supported", 3),
                ("starttls-not-supported", 3)
            ]
        );
        assert_eq!(details[0].receiving_mx.as_deref(), Some("mx1.example.com"));
        let policies = db.policies_of(&only).await.unwrap();
        assert_eq!(policies, db.policies(&filter).await.unwrap());
        assert_eq!(policies.len(), 1);
        assert_eq!(
            (&*policies[0].policy, policies[0].last_seen),
            ("sts testing", D + 2 * DAY - 1)
        );
        let orgs = db.organizations_of(&only).await.unwrap();
        let orgs: Vec<(&str, u64)> = orgs
            .iter()
            .map(|o| (o.organization.as_str(), o.reports))
            .collect();
        assert_eq!(orgs, [("Org A", 1), ("Org B", 1)]);

        // Both domains, no kind: the other one's rows come too; the window cuts days.
        let both = Scope::new(
            vec!["example.com".into(), "Other.ORG.".into()],
            D + DAY,
            until,
            None,
        );
        let daily = db.daily_of(&both).await.unwrap();
        let got: Vec<(&str, i64)> = daily.iter().map(|d| (d.domain.as_str(), d.day)).collect();
        assert_eq!(got, [("example.com", D + DAY), ("other.org", D + DAY)]);
        let last = db.last_received_of(&both).await.unwrap();
        assert_eq!(last.get("example.com"), Some(&(D + 3 * DAY)));
        assert_eq!(last.get("other.org"), Some(&(D + 3 * DAY)));
        let none = Scope::new(many(&[]), since, until, None);
        assert!(db.daily_of(&none).await.unwrap().is_empty());
        assert!(db.last_received_of(&none).await.unwrap().is_empty());
        assert!(db.daily_of(&Scope::default()).await.unwrap().is_empty());
    }

    pub(crate) async fn the_report_list_pages_by_key_over_chunks(db: ReportDb) {
        let mut ids = Vec::new();
        for i in 0..5 {
            ids.push(store(&db, "Org A", &format!("r{i}"), D + i * DAY, D + 9 * DAY).await);
        }
        // Two reports on one day: the higher id first.
        ids.push(store(&db, "Org B", "same-day", D + 4 * DAY, D + 9 * DAY).await);
        let domains = many(&["example.com"]);
        let mut seen = Vec::new();
        let mut after = None;
        loop {
            let page = db
                .reports_page(Some(&domains), Some(Kind::TlsRpt), after, 2)
                .await
                .unwrap();
            let Some(last) = page.last() else { break };
            after = Some(ReportKey {
                begin: last.begin,
                id: last.id,
            });
            seen.extend(page.iter().map(|r| r.id));
        }
        assert_eq!(seen, [ids[5], ids[4], ids[3], ids[2], ids[1], ids[0]]);
        let all = db.reports_page(None, None, None, 100).await.unwrap();
        assert_eq!(all.len(), 6);
        let nothing = db
            .reports_page(Some(&many(&[])), None, None, 100)
            .await
            .unwrap();
        assert!(nothing.is_empty());
        let dmarc = db
            .reports_page(Some(&domains), Some(Kind::Dmarc), None, 100)
            .await
            .unwrap();
        assert!(dmarc.is_empty());
    }

    pub(crate) async fn retention_deletes_raw_reports_and_keeps_the_rollups(db: ReportDb) {
        let old = store(&db, "Org A", "old", D, D + DAY).await;
        let new = store(&db, "Org A", "new", D + 5 * DAY, D + 6 * DAY).await;
        let all = Filter::default();
        let before = db.daily(&all).await.unwrap();
        assert_eq!(before.len(), 4, "two days, two domains");

        // Nothing is old enough yet.
        let purged = db.delete_older_than(D).await.unwrap();
        assert_eq!((purged.reports, purged.inputs), (0, 0));

        let purged = db.delete_older_than(D + 3 * DAY).await.unwrap();
        assert_eq!((purged.reports, purged.inputs), (1, 1));
        assert_eq!(db.get(old).await.unwrap(), None);
        assert!(db.get(new).await.unwrap().is_some());
        let listed: Vec<i64> = db
            .list(&all, 10)
            .await
            .unwrap()
            .iter()
            .map(|r| r.id)
            .collect();
        assert_eq!(listed, [new]);
        // The rollups, and so every chart's days and totals, are untouched.
        assert_eq!(db.daily(&all).await.unwrap(), before);
        // The old report's rows went with it: its failures no longer group.
        let failures = db.tls_failures(&all).await.unwrap();
        assert!(
            failures.iter().all(|f| f.first_day >= D + 5 * DAY),
            "{failures:?}"
        );
        assert_eq!(db.input_ids().await.unwrap().len(), 1);

        // Repeating deletes nothing more.
        let purged = db.delete_older_than(D + 3 * DAY).await.unwrap();
        assert_eq!((purged.reports, purged.inputs), (0, 0));
    }
}
