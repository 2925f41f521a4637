//! Tests of `mtasts_store::tlsrpt::TlsrptDb`, the resolver's outgoing TLS-report database:
//! every case runs against SQLite (a temporary file) and PostgreSQL (a fresh schema per test;
//! skipped with a message when the server is down, unless `MTASTS_REQUIRE_SERVICES=1`). Cases
//! that need a second resolver open a second handle (its own pool) on the same database, as a
//! second node of a fleet would.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;

use mtasts_store::tlsrpt::{
    DAY, DeliveryOutcome, DeliveryState, Inserted, MAX_KEY_BYTES, MAX_RECORD_BYTES, NewReport,
    ResultRow, TlsrptDb, TlsrptDbError,
};
use mtasts_testkit::services::unique;

#[path = "suite/schema.rs"]
#[allow(dead_code)]
mod schema;

/// 2024-03-25T00:00:00Z.
const D: i64 = 1_711_324_800;
const RECORD: &str = "v=TLSRPTv1; rua=mailto:tlsrpt@example.com";
const STS: &str = r#"{"policy-type":"sts","policy-domain":"example.com"}"#;
const NONE: &str = r#"{"policy-type":"no-policy-found","policy-domain":"example.com"}"#;
const EXPIRED: &str = r#"{"result-type":"certificate-expired","receiving-mx-hostname":"mx1"}"#;
const NO_STARTTLS: &str = r#"{"result-type":"starttls-not-supported"}"#;

#[derive(Clone, Copy, Debug)]
enum Backend {
    Sqlite,
    Postgres,
}

/// Opens a fresh database of `backend`, runs `case` on it (with the URL, for a second
/// handle) and cleans up.
async fn run<F, Fut>(backend: Backend, case: F)
where
    F: FnOnce(TlsrptDb, String) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    match backend {
        Backend::Sqlite => {
            let dir = tempfile::tempdir().unwrap();
            let url = format!("sqlite:{}", dir.path().join("tlsrpt.sqlite").display());
            let db = TlsrptDb::open(&url).await.unwrap();
            assert_eq!(db.backend(), "sqlite");
            let outcome = tokio::spawn(case(db.clone(), url)).await;
            db.close().await;
            if let Err(e) = outcome {
                std::panic::resume_unwind(e.into_panic());
            }
        }
        Backend::Postgres => {
            let Some(schema) = schema::Schema::create(&unique("tlsrpt_test_")).await else {
                return;
            };
            let outcome = match TlsrptDb::open(&schema.url).await {
                Ok(db) => {
                    assert_eq!(db.backend(), "postgres");
                    let outcome = tokio::spawn(case(db.clone(), schema.url.clone())).await;
                    db.close().await;
                    Ok(outcome)
                }
                Err(e) => Err(format!("open {}: {e}", schema.url)),
            };
            schema.drop().await;
            schema::finish(outcome);
        }
    }
}

/// Each case as one SQLite and one PostgreSQL test.
macro_rules! both_databases {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::run(super::Backend::Sqlite, super::$name).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::run(super::Backend::Postgres, super::$name).await;
                }
            )*
        }
    };
}

both_databases!(
    record_adds_batches_up,
    a_batch_with_a_bad_row_stores_nothing,
    pending_days_are_ended_days_not_done,
    day_groups_page_through_ten_thousand_domains_in_byte_order,
    a_report_is_stored_once_with_its_destinations,
    two_nodes_building_the_same_reports_store_each_once,
    leases_give_each_delivery_to_one_node_at_a_time,
    two_nodes_leasing_at_once_never_share_a_delivery,
    outcomes_and_suppression_are_kept_per_destination,
    status_counts_today_and_the_outbox,
    reschedule_day_makes_pending_deliveries_due,
    prune_deletes_old_days_but_keeps_pending_reports,
    concurrent_records_from_two_nodes_add_up,
    a_batch_acknowledged_survives_kill_9,
);

fn row(day: i64, domain: &str, policy: &str, ok: u64, failed: u64) -> ResultRow {
    ResultRow {
        day,
        domain: domain.to_string(),
        record: RECORD.to_string(),
        policy: policy.to_string(),
        successes: ok,
        failures: failed,
        details: Vec::new(),
    }
}

fn report(day: i64, domain: &str, destinations: &[&str], first_try: i64) -> NewReport {
    NewReport {
        day,
        domain: domain.to_string(),
        record: RECORD.to_string(),
        report_id: format!("{day}.{domain}@example.net"),
        file_name: format!("example.net!{domain}!{day}!{}!x.json.gz", day + DAY - 1),
        json_bytes: 321,
        gz: format!("gz of {domain}").into_bytes(),
        destinations: destinations.iter().map(|d| d.to_string()).collect(),
        first_try,
        give_up_at: first_try + DAY,
    }
}

async fn record_adds_batches_up(db: TlsrptDb, _url: String) {
    let mut failing = row(D, "example.com", STS, 0, 3);
    failing.details = vec![(EXPIRED.into(), 2), (NO_STARTTLS.into(), 1)];
    // The same policy twice in one batch is summed before it is written.
    db.record(&[
        row(D, "example.com", STS, 10, 0),
        failing.clone(),
        row(D, "example.com", NONE, 4, 0),
    ])
    .await
    .unwrap();
    let mut again = row(D, "example.com", STS, 1, 1);
    again.details = vec![(EXPIRED.into(), 1)];
    db.record(&[again, row(D, "other.org", NONE, 7, 0)])
        .await
        .unwrap();
    db.record(&[]).await.unwrap();

    let groups = db.day_groups(D, None, 100).await.unwrap();
    assert_eq!(
        groups
            .iter()
            .map(|g| (&*g.domain, &*g.record))
            .collect::<Vec<_>>(),
        [("example.com", RECORD), ("other.org", RECORD)]
    );
    let policies = &groups[0].policies;
    // Sorted by key: "{\"policy-type\":\"no-…" < "{\"policy-type\":\"sts…".
    assert_eq!(policies.len(), 2);
    assert_eq!(
        (
            &*policies[0].policy,
            policies[0].successes,
            policies[0].failures
        ),
        (NONE, 4, 0)
    );
    assert!(policies[0].details.is_empty());
    assert_eq!(
        (
            &*policies[1].policy,
            policies[1].successes,
            policies[1].failures
        ),
        (STS, 11, 4)
    );
    let mut expected = vec![(EXPIRED.to_string(), 3), (NO_STARTTLS.to_string(), 1)];
    expected.sort();
    assert_eq!(policies[1].details, expected);
    assert_eq!(groups[1].policies[0].successes, 7);
    // Another day is apart.
    assert!(db.day_groups(D + DAY, None, 100).await.unwrap().is_empty());
}

async fn a_batch_with_a_bad_row_stores_nothing(db: TlsrptDb, _url: String) {
    let good = row(D, "example.com", STS, 1, 0);
    let long_record = ResultRow {
        record: "x".repeat(MAX_RECORD_BYTES + 1),
        ..good.clone()
    };
    let long_key = ResultRow {
        details: vec![("k".repeat(MAX_KEY_BYTES + 1), 1)],
        ..good.clone()
    };
    let long_domain = ResultRow {
        domain: "a".repeat(254),
        ..good.clone()
    };
    let not_a_day = ResultRow {
        day: D + 1,
        ..good.clone()
    };
    let too_many = ResultRow {
        successes: u64::MAX,
        ..good.clone()
    };
    for bad in [long_record, long_key, long_domain, not_a_day, too_many] {
        assert!(matches!(bad.check(), Err(TlsrptDbError::Invalid(_))));
        let err = db.record(&[good.clone(), bad]).await.unwrap_err();
        assert!(matches!(err, TlsrptDbError::Invalid(_)), "{err}");
    }
    assert!(db.day_groups(D, None, 10).await.unwrap().is_empty());
    // The largest accepted texts are stored whole (PostgreSQL indexes their hashes, not them).
    let big = ResultRow {
        record: "r".repeat(MAX_RECORD_BYTES),
        policy: "p".repeat(MAX_KEY_BYTES),
        details: vec![("d".repeat(MAX_KEY_BYTES), 2)],
        ..good.clone()
    };
    big.check().unwrap();
    db.record(&[big.clone(), good]).await.unwrap();
    let groups = db.day_groups(D, None, 10).await.unwrap();
    assert_eq!(groups.len(), 2);
    let stored = groups.iter().find(|g| g.record == big.record).unwrap();
    assert_eq!(stored.policies[0].policy, big.policy);
    assert_eq!(stored.policies[0].details, big.details);
}

async fn pending_days_are_ended_days_not_done(db: TlsrptDb, _url: String) {
    for day in [D, D + DAY, D + 2 * DAY] {
        db.record(&[row(day, "example.com", STS, 1, 0)])
            .await
            .unwrap();
    }
    // During day D+2: D and D+1 have ended.
    let now = D + 2 * DAY + 3600;
    assert_eq!(db.pending_days(now).await.unwrap(), [D, D + DAY]);
    // A day ends at its next midnight exactly.
    assert_eq!(db.pending_days(D + DAY).await.unwrap(), [D]);
    assert_eq!(
        db.pending_days(D + DAY - 1).await.unwrap(),
        Vec::<i64>::new()
    );
    db.mark_day_done(D).await.unwrap();
    db.mark_day_done(D).await.unwrap();
    assert_eq!(db.pending_days(now).await.unwrap(), [D + DAY]);
    assert!(matches!(
        db.mark_day_done(D + 5).await,
        Err(TlsrptDbError::Invalid(_))
    ));
}

async fn day_groups_page_through_ten_thousand_domains_in_byte_order(db: TlsrptDb, _url: String) {
    // 10,001 domains in one batch; some domains with two records, names whose byte order
    // differs from a linguistic collation ("a-b" < "a.b" < "aB"-like cases in lowercase
    // digits and hyphens).
    let mut batch = Vec::new();
    let mut expected = BTreeSet::new();
    for i in 0..10_001u32 {
        let domain = format!("d{:05}-{}.example", (i * 7919) % 10_001, i % 3);
        let mut r = row(D, &domain, STS, u64::from(i), 0);
        if i % 1000 == 0 {
            let mut second = r.clone();
            second.record = format!("{RECORD}, mailto:b{i}@example.com");
            expected.insert((second.domain.clone(), second.record.clone()));
            batch.push(second);
        }
        expected.insert((r.domain.clone(), r.record.clone()));
        r.details = vec![(EXPIRED.into(), 1)];
        r.failures = 1;
        batch.push(r);
    }
    for odd in ["a-b.example", "a.b.example", "a0.example", "a_b.example"] {
        expected.insert((odd.to_string(), RECORD.to_string()));
        batch.push(row(D, odd, NONE, 1, 0));
    }
    db.record(&batch).await.unwrap();
    db.record(&[row(D + DAY, "next-day.example", STS, 1, 0)])
        .await
        .unwrap();

    let mut seen = Vec::new();
    let mut after: Option<(String, String)> = None;
    let mut pages = 0;
    loop {
        let page = db
            .day_groups(
                D,
                after.as_ref().map(|(d, r)| (d.as_str(), r.as_str())),
                1000,
            )
            .await
            .unwrap();
        pages += 1;
        assert!(page.len() <= 1000);
        for group in &page {
            assert!(!group.policies.is_empty());
            seen.push((group.domain.clone(), group.record.clone()));
        }
        match page.last() {
            Some(last) if page.len() == 1000 => {
                after = Some((last.domain.clone(), last.record.clone()));
            }
            _ => break,
        }
    }
    assert_eq!(pages, expected.len().div_ceil(1000));
    let expected: Vec<_> = expected.into_iter().collect();
    assert_eq!(seen.len(), expected.len());
    assert!(
        seen == expected,
        "pages are not in byte order or miss groups"
    );
}

async fn a_report_is_stored_once_with_its_destinations(db: TlsrptDb, _url: String) {
    let first_try = D + DAY + 600;
    let new = report(
        D,
        "example.com",
        &[
            "mailto:b@example.com",
            "https://r.example.com/v1",
            "mailto:b@example.com",
        ],
        first_try,
    );
    let Inserted::New(id) = db.insert_report(&new).await.unwrap() else {
        panic!("not new")
    };
    let mut again = new.clone();
    again.report_id = "another id".into();
    assert_eq!(
        db.insert_report(&again).await.unwrap(),
        Inserted::AlreadyBuilt(id)
    );
    // Another record of the same domain and day is another report.
    let mut other = new.clone();
    other.record = format!("{RECORD}, mailto:c@example.com");
    assert!(matches!(
        db.insert_report(&other).await.unwrap(),
        Inserted::New(_)
    ));

    let stored = db.report_body(id).await.unwrap().unwrap();
    assert_eq!(
        (
            stored.id,
            stored.day,
            &*stored.domain,
            &*stored.record,
            &*stored.report_id
        ),
        (id, D, "example.com", RECORD, &*new.report_id)
    );
    assert_eq!(
        (&*stored.file_name, stored.json_bytes, &stored.gz),
        (&*new.file_name, 321, &new.gz)
    );
    let destinations: Vec<_> = stored
        .destinations
        .iter()
        .map(|d| {
            (
                &*d.destination,
                d.state,
                d.attempts,
                d.next_try,
                d.give_up_at,
            )
        })
        .collect();
    assert_eq!(
        destinations,
        [
            (
                "https://r.example.com/v1",
                DeliveryState::Pending,
                0,
                first_try,
                first_try + DAY
            ),
            (
                "mailto:b@example.com",
                DeliveryState::Pending,
                0,
                first_try,
                first_try + DAY
            ),
        ]
    );
    assert_eq!(db.report_body(id + 1000).await.unwrap(), None);

    let day = db.reports_for_day(D).await.unwrap();
    assert_eq!(day.len(), 2);
    assert_eq!(day[0], stored);
    assert_eq!(day[1].record, other.record);
    assert_eq!(day[1].destinations.len(), 2);
    assert!(db.reports_for_day(D + DAY).await.unwrap().is_empty());

    let mut bad = new.clone();
    bad.destinations.clear();
    assert!(matches!(
        db.insert_report(&bad).await,
        Err(TlsrptDbError::Invalid(_))
    ));
}

async fn two_nodes_building_the_same_reports_store_each_once(db: TlsrptDb, url: String) {
    // Two resolvers of a fleet (each its own pool) build the same 40 reports at once, in
    // opposite orders.
    let other = TlsrptDb::open(&url).await.unwrap();
    let domains: Vec<String> = (0..40).map(|i| format!("d{i}.example")).collect();
    let mut tasks = Vec::new();
    for (node, db) in [(0, db.clone()), (1, other.clone())] {
        let mut domains = domains.clone();
        if node == 1 {
            domains.reverse();
        }
        tasks.push(tokio::spawn(async move {
            let mut out = Vec::new();
            for domain in domains {
                let mut new = report(D, &domain, &["mailto:r@example.com"], D + DAY);
                new.report_id = format!("node{node}");
                out.push((domain, db.insert_report(&new).await.unwrap()));
            }
            out
        }));
    }
    let mut new: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    let mut ids: BTreeMap<String, BTreeSet<i64>> = BTreeMap::new();
    for task in tasks {
        for (domain, inserted) in task.await.unwrap() {
            match inserted {
                Inserted::New(id) => {
                    new.entry(domain.clone()).or_default().push(id);
                    ids.entry(domain).or_default().insert(id);
                }
                Inserted::AlreadyBuilt(id) => {
                    ids.entry(domain).or_default().insert(id);
                }
            }
        }
    }
    assert_eq!(new.len(), 40, "every report built once: {new:?}");
    // And head to head: both nodes released at the same instant for each report.
    for i in 0..10 {
        let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(2));
        let racers: Vec<_> = [db.clone(), other.clone()]
            .into_iter()
            .map(|db| {
                let barrier = barrier.clone();
                tokio::spawn(async move {
                    let new = report(D, &format!("race{i}.example"), &["mailto:r@x"], D + DAY);
                    barrier.wait().await;
                    db.insert_report(&new).await.unwrap()
                })
            })
            .collect();
        let mut outcomes = Vec::new();
        for racer in racers {
            outcomes.push(racer.await.unwrap());
        }
        let ids: BTreeSet<i64> = outcomes
            .iter()
            .map(|o| match o {
                Inserted::New(id) | Inserted::AlreadyBuilt(id) => *id,
            })
            .collect();
        assert_eq!(ids.len(), 1, "{outcomes:?}");
        assert_eq!(
            outcomes
                .iter()
                .filter(|o| matches!(o, Inserted::New(_)))
                .count(),
            1,
            "{outcomes:?}"
        );
    }
    assert!(new.values().all(|v| v.len() == 1), "{new:?}");
    assert!(
        ids.values().all(|v| v.len() == 1),
        "both saw one id: {ids:?}"
    );
    let stored = db.reports_for_day(D).await.unwrap();
    assert_eq!(stored.len(), 50);
    assert!(stored.iter().all(|r| r.destinations.len() == 1));
    other.close().await;
}

async fn leases_give_each_delivery_to_one_node_at_a_time(db: TlsrptDb, _url: String) {
    let t0 = D + DAY;
    let Inserted::New(report_id) = db
        .insert_report(&report(
            D,
            "example.com",
            &[
                "mailto:a@x.example",
                "mailto:b@x.example",
                "https://c.x.example/",
            ],
            t0,
        ))
        .await
        .unwrap()
    else {
        panic!("not new")
    };
    // Not due yet.
    assert!(db.lease_due(t0 - 1, "n1", 60, 10).await.unwrap().is_empty());
    let first = db.lease_due(t0, "n1", 60, 2).await.unwrap();
    assert_eq!(first.len(), 2);
    assert!(
        first
            .iter()
            .all(|d| d.report == report_id && d.attempts == 0)
    );
    let second = db.lease_due(t0 + 10, "n2", 60, 10).await.unwrap();
    assert_eq!(second.len(), 1, "only the one not leased");
    assert!(
        db.lease_due(t0 + 59, "n2", 60, 10)
            .await
            .unwrap()
            .is_empty()
    );
    // n1 stopped: its leases expire and another node takes them.
    let taken = db.lease_due(t0 + 60, "n2", 60, 10).await.unwrap();
    assert_eq!(
        taken.iter().map(|d| d.id).collect::<Vec<_>>(),
        first.iter().map(|d| d.id).collect::<Vec<_>>()
    );
    for d in &taken {
        db.finish(d.id, &DeliveryOutcome::Delivered, t0 + 70)
            .await
            .unwrap();
    }
    // A retry releases the lease and is due again at its next try.
    let d = &second[0];
    db.finish(
        d.id,
        &DeliveryOutcome::Retry {
            error: "connection refused".into(),
            next_try: t0 + 600,
        },
        t0 + 20,
    )
    .await
    .unwrap();
    assert!(
        db.lease_due(t0 + 599, "n3", 60, 10)
            .await
            .unwrap()
            .is_empty()
    );
    let again = db.lease_due(t0 + 600, "n3", 60, 10).await.unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!((again[0].id, again[0].attempts), (d.id, 1));
    // Delivered: never leased again.
    for d in &again {
        db.finish(d.id, &DeliveryOutcome::Delivered, t0 + 700)
            .await
            .unwrap();
    }
    assert!(
        db.lease_due(t0 + 10 * DAY, "n1", 60, 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(matches!(
        db.lease_due(t0, "n1", 0, 10).await,
        Err(TlsrptDbError::Invalid(_))
    ));
}

async fn two_nodes_leasing_at_once_never_share_a_delivery(db: TlsrptDb, url: String) {
    let other = TlsrptDb::open(&url).await.unwrap();
    let t0 = D + DAY;
    let destinations: Vec<String> = (0..5).map(|i| format!("mailto:r{i}@x.example")).collect();
    let destinations: Vec<&str> = destinations.iter().map(String::as_str).collect();
    for i in 0..40 {
        db.insert_report(&report(D, &format!("d{i}.example"), &destinations, t0))
            .await
            .unwrap();
    }
    // 200 deliveries; four workers on two nodes lease 7 at a time until none is left, each
    // holding its lease (not finishing), as nodes do while they send.
    let mut tasks = Vec::new();
    for worker in 0..4 {
        let db = if worker % 2 == 0 {
            db.clone()
        } else {
            other.clone()
        };
        tasks.push(tokio::spawn(async move {
            let mut got = Vec::new();
            loop {
                let leased = db
                    .lease_due(t0 + 5, &format!("node{worker}"), 3600, 7)
                    .await
                    .unwrap();
                if leased.is_empty() {
                    break;
                }
                got.extend(leased.into_iter().map(|d| d.id));
            }
            got
        }));
    }
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await.unwrap());
    }
    let distinct: BTreeSet<i64> = all.iter().copied().collect();
    assert_eq!(all.len(), 200, "every delivery leased exactly once");
    assert_eq!(distinct.len(), 200);
    other.close().await;
}

async fn outcomes_and_suppression_are_kept_per_destination(db: TlsrptDb, _url: String) {
    let t0 = D + DAY;
    let dest = "https://bad.example/";
    assert_eq!(db.gave_up_in_row(dest).await.unwrap(), 0);
    assert_eq!(db.suppressed_until(dest).await.unwrap(), None);
    let mut ids = Vec::new();
    for i in 0..3 {
        let Inserted::New(id) = db
            .insert_report(&report(D, &format!("d{i}.example"), &[dest], t0))
            .await
            .unwrap()
        else {
            panic!("not new")
        };
        let body = db.report_body(id).await.unwrap().unwrap();
        ids.push(body.destinations[0].id);
    }
    let long_error = "e".repeat(10_000);
    for (n, id) in ids[..2].iter().enumerate() {
        db.finish(
            *id,
            &DeliveryOutcome::GaveUp {
                error: long_error.clone(),
            },
            t0 + 5,
        )
        .await
        .unwrap();
        assert_eq!(db.gave_up_in_row(dest).await.unwrap(), n as u32 + 1);
    }
    // Finishing again changes nothing (not pending any more).
    db.finish(ids[0], &DeliveryOutcome::Delivered, t0 + 6)
        .await
        .unwrap();
    assert_eq!(db.gave_up_in_row(dest).await.unwrap(), 2);
    let stored = db.reports_for_day(D).await.unwrap();
    let gave_up = &stored[0].destinations[0];
    assert_eq!(
        (gave_up.state, gave_up.attempts),
        (DeliveryState::GaveUp, 1)
    );
    assert_eq!(gave_up.last_error.as_ref().unwrap().len(), 4096);
    assert_eq!(gave_up.last_attempt, Some(t0 + 5));

    db.suppress(dest, t0 + 7 * DAY, "gave up 2 reports in a row")
        .await
        .unwrap();
    assert_eq!(db.suppressed_until(dest).await.unwrap(), Some(t0 + 7 * DAY));
    assert_eq!(db.gave_up_in_row(dest).await.unwrap(), 0);
    let status = db.status(t0 + 10, 10).await.unwrap();
    assert_eq!(status.suppressed.len(), 1);
    assert_eq!(status.suppressed[0].reason, "gave up 2 reports in a row");
    assert!(
        db.status(t0 + 8 * DAY, 10)
            .await
            .unwrap()
            .suppressed
            .is_empty()
    );

    // A delivery resets the count.
    db.finish(
        ids[2],
        &DeliveryOutcome::GaveUp { error: "x".into() },
        t0 + 9,
    )
    .await
    .unwrap();
    assert_eq!(db.gave_up_in_row(dest).await.unwrap(), 1);
    let Inserted::New(id) = db
        .insert_report(&report(D + DAY, "d0.example", &[dest], t0))
        .await
        .unwrap()
    else {
        panic!("not new")
    };
    let delivery = db.report_body(id).await.unwrap().unwrap().destinations[0].id;
    db.finish(delivery, &DeliveryOutcome::Delivered, t0 + 11)
        .await
        .unwrap();
    assert_eq!(db.gave_up_in_row(dest).await.unwrap(), 0);
}

async fn status_counts_today_and_the_outbox(db: TlsrptDb, _url: String) {
    let now = D + DAY + 7200;
    let today = D + DAY;
    db.record(&[
        row(today, "a.example", STS, 5, 2),
        row(today, "b.example", NONE, 1, 0),
        row(D, "a.example", STS, 100, 100),
    ])
    .await
    .unwrap();
    let empty = db.status(now, 10).await.unwrap();
    assert_eq!(
        (
            empty.today,
            empty.today_successes,
            empty.today_failures,
            empty.today_groups,
            empty.pending_days
        ),
        (today, 6, 2, 2, 1)
    );
    assert_eq!(
        (empty.outbox_pending, empty.delivered, empty.gave_up),
        (0, 0, 0)
    );
    assert!(empty.recent.is_empty());

    db.insert_report(&report(
        D,
        "a.example",
        &["mailto:x@a.example", "https://a.example/r"],
        now,
    ))
    .await
    .unwrap();
    db.insert_report(&report(D, "c.example", &["mailto:x@c.example"], now + 3600))
        .await
        .unwrap();
    db.mark_day_done(D).await.unwrap();
    let leased = db.lease_due(now, "n1", 300, 10).await.unwrap();
    assert_eq!(leased.len(), 2);
    let status = db.status(now, 10).await.unwrap();
    assert_eq!(
        (
            status.pending_days,
            status.outbox_pending,
            status.outbox_due,
            status.outbox_leased
        ),
        (0, 3, 2, 2)
    );
    db.finish(leased[0].id, &DeliveryOutcome::Delivered, now + 1)
        .await
        .unwrap();
    db.finish(
        leased[1].id,
        &DeliveryOutcome::Retry {
            error: "503".into(),
            next_try: now + 900,
        },
        now + 2,
    )
    .await
    .unwrap();
    let status = db.status(now + 3, 10).await.unwrap();
    assert_eq!(
        (
            status.outbox_pending,
            status.outbox_due,
            status.outbox_leased,
            status.delivered
        ),
        (2, 0, 0, 1)
    );
    assert_eq!(
        status.recent.iter().map(|e| e.id).collect::<Vec<_>>(),
        [leased[1].id, leased[0].id],
        "newest first"
    );
    assert_eq!(status.recent[0].state, DeliveryState::Pending);
    assert_eq!(status.recent[0].last_error.as_deref(), Some("503"));
    assert_eq!(status.recent[1].state, DeliveryState::Delivered);
    assert_eq!(status.recent[1].domain, "a.example");
    assert_eq!(status.failures.len(), 1);
    assert_eq!(status.failures[0].id, leased[1].id);
    assert_eq!(db.status(now + 3, 1).await.unwrap().recent.len(), 1);
}

async fn reschedule_day_makes_pending_deliveries_due(db: TlsrptDb, _url: String) {
    let now = D + DAY + 60;
    db.insert_report(&report(
        D,
        "a.example",
        &["mailto:x@a.example", "mailto:y@a.example"],
        now + 7200,
    ))
    .await
    .unwrap();
    db.insert_report(&report(
        D + DAY,
        "a.example",
        &["mailto:x@a.example"],
        now + 7200,
    ))
    .await
    .unwrap();
    assert!(db.lease_due(now, "n", 60, 10).await.unwrap().is_empty());
    assert_eq!(db.reschedule_day(D, now).await.unwrap(), 2);
    let due = db.lease_due(now, "n", 60, 10).await.unwrap();
    assert_eq!(due.len(), 2);
    db.finish(due[0].id, &DeliveryOutcome::Delivered, now)
        .await
        .unwrap();
    assert_eq!(
        db.reschedule_day(D, now).await.unwrap(),
        1,
        "delivered ones stay"
    );
    assert_eq!(db.reschedule_day(D + 2 * DAY, now).await.unwrap(), 0);
}

async fn prune_deletes_old_days_but_keeps_pending_reports(db: TlsrptDb, _url: String) {
    let t = D + 10 * DAY;
    let mut with_details = row(D, "old.example", STS, 1, 1);
    with_details.details = vec![(EXPIRED.into(), 1)];
    db.record(&[
        with_details,
        row(D + DAY, "old.example", STS, 1, 0),
        row(D + 5 * DAY, "kept.example", STS, 1, 0),
    ])
    .await
    .unwrap();
    db.mark_day_done(D).await.unwrap();
    let Inserted::New(done) = db
        .insert_report(&report(D, "old.example", &["mailto:x@old.example"], t))
        .await
        .unwrap()
    else {
        panic!("not new")
    };
    let Inserted::New(pending) = db
        .insert_report(&report(
            D + DAY,
            "old.example",
            &["mailto:x@old.example"],
            t,
        ))
        .await
        .unwrap()
    else {
        panic!("not new")
    };
    let delivery = db.report_body(done).await.unwrap().unwrap().destinations[0].id;
    db.finish(delivery, &DeliveryOutcome::Delivered, t)
        .await
        .unwrap();

    // Groups of D and D+1, and the delivered report of D; the pending one of D+1 stays.
    assert_eq!(db.prune(D + 5 * DAY).await.unwrap(), 3);
    assert!(db.day_groups(D, None, 10).await.unwrap().is_empty());
    assert!(db.day_groups(D + DAY, None, 10).await.unwrap().is_empty());
    assert_eq!(db.day_groups(D + 5 * DAY, None, 10).await.unwrap().len(), 1);
    assert_eq!(db.report_body(done).await.unwrap(), None);
    assert!(db.report_body(pending).await.unwrap().is_some());
    assert_eq!(db.pending_days(t).await.unwrap(), [D + 5 * DAY]);
    assert_eq!(db.prune(D + 5 * DAY).await.unwrap(), 0);
    assert!(matches!(
        db.prune(D + 1).await,
        Err(TlsrptDbError::Invalid(_))
    ));
}

async fn concurrent_records_from_two_nodes_add_up(db: TlsrptDb, url: String) {
    // Two collectors (two pools) add overlapping batches at once, in opposite orders: rows
    // are written in key order, so nothing deadlocks for good and every count adds up.
    let other = TlsrptDb::open(&url).await.unwrap();
    let mut tasks = Vec::new();
    for worker in 0..4 {
        let db = if worker % 2 == 0 {
            db.clone()
        } else {
            other.clone()
        };
        tasks.push(tokio::spawn(async move {
            for round in 0..10 {
                let mut batch: Vec<ResultRow> = (0..50)
                    .map(|i| {
                        let mut r = row(D, &format!("d{i}.example"), STS, 1, 1);
                        r.details = vec![(EXPIRED.into(), 1)];
                        r
                    })
                    .collect();
                if (worker + round) % 2 == 1 {
                    batch.reverse();
                }
                db.record(&batch).await.unwrap();
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let groups = db.day_groups(D, None, 100).await.unwrap();
    assert_eq!(groups.len(), 50);
    for g in groups {
        let p = &g.policies[0];
        assert_eq!((p.successes, p.failures), (40, 40), "{}", g.domain);
        assert_eq!(p.details, [(EXPIRED.to_string(), 40)]);
    }
    other.close().await;
}

#[tokio::test]
async fn an_unknown_url_is_invalid_and_migrations_have_their_own_table() {
    assert!(matches!(
        TlsrptDb::open("mysql://x").await,
        Err(TlsrptDbError::Invalid(_))
    ));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.sqlite");
    let url = format!("sqlite:{}", path.display());
    let db = TlsrptDb::open(&url).await.unwrap();
    db.record(&[row(D, "example.com", STS, 1, 0)])
        .await
        .unwrap();
    db.close().await;
    // Opened again (migrations already applied), the results are there.
    let db = TlsrptDb::open(&url).await.unwrap();
    assert_eq!(db.day_groups(D, None, 10).await.unwrap().len(), 1);
    db.close().await;
    let out = std::process::Command::new("sqlite3")
        .arg(&path)
        .arg("SELECT COUNT(*) FROM _mtasts_tlsrpt_migrations")
        .output();
    if let Ok(out) = out
        && out.status.success()
    {
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "1");
    }
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "the database file is private");
}

/// The environment variable that makes [`killed_child_records`] the child of
/// [`a_batch_acknowledged_survives_kill_9`]: the database URL it records into.
const CHILD_URL_ENV: &str = "MTASTS_TLSRPT_KILL_CHILD_URL";

async fn a_batch_acknowledged_survives_kill_9(db: TlsrptDb, url: String) {
    // A child process (this test binary, running only `killed_child_records`) records a
    // batch, says so once `record` returned Ok, and is killed with SIGKILL right then,
    // without closing anything: the batch must be there.
    let mut child = tokio::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "killed_child_records",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_URL_ENV, &url)
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut lines = tokio::io::AsyncBufReadExt::lines(tokio::io::BufReader::new(stdout));
    let acknowledged = tokio::time::timeout(std::time::Duration::from_secs(60), async {
        while let Some(line) = lines.next_line().await.unwrap() {
            if line == "recorded" {
                return true;
            }
        }
        false
    })
    .await
    .unwrap();
    assert!(acknowledged, "the child never said it recorded");
    child.start_kill().unwrap();
    let status = child.wait().await.unwrap();
    assert!(!status.success(), "the child was killed, not finished");
    let groups = db.day_groups(D, None, 10).await.unwrap();
    assert_eq!(groups.len(), 1);
    assert_eq!(groups[0].policies[0].successes, 12_345);
    // The database opens again as after any crash.
    let again = TlsrptDb::open(&url).await.unwrap();
    assert_eq!(again.day_groups(D, None, 10).await.unwrap(), groups);
    again.close().await;
}

/// The child of [`a_batch_acknowledged_survives_kill_9`]; does nothing when run on its own.
#[tokio::test]
async fn killed_child_records() {
    let Ok(url) = std::env::var(CHILD_URL_ENV) else {
        return;
    };
    let db = TlsrptDb::open(&url).await.unwrap();
    db.record(&[row(D, "example.com", STS, 12_345, 0)])
        .await
        .unwrap();
    // On a line of its own: the harness has printed "test killed_child_records ... ".
    println!("\nrecorded");
    // Waits to be killed; never closes the database.
    tokio::time::sleep(std::time::Duration::from_secs(120)).await;
    std::process::exit(0);
}
