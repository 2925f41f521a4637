//! One conformance suite, run against every backend: the four must behave the same.
//!
//! Memory and SQLite always run. PostgreSQL and Redis run when the local servers answer (see
//! `mtasts_testkit::services`); each run works in its own schema or key prefix so parallel runs do not
//! collide, and cleans up after itself.

use std::str::FromStr;
use std::sync::Arc;

use mtasts_store::memory::MemoryStore;
use mtasts_store::postgres::PostgresStore;
use mtasts_store::redis_store::RedisStore;
use mtasts_store::sqlite::SqliteStore;
use mtasts_store::{
    Entry, EntryState, MAX_BODY_BYTES, MAX_ENTRY_JSON_BYTES, PolicyStore, StoreError,
};

use mtasts_testkit::services::{Service, postgres_url, redis_url, skip, unique};

const BODY: &str = "version: STSv1\r\nmode: enforce\r\nmx: mx.example.com\r\nmax_age: 86400\r\n";

fn policy(domain: &str, id: &str, fetched_at: u64) -> Entry {
    Entry {
        domain: domain.to_string(),
        state: EntryState::Policy {
            id: id.to_string(),
            body: BODY.to_string(),
            fetched_at,
        },
        last_failure: None,
        last_used: fetched_at + 10,
    }
}

fn no_policy(domain: &str, until: u64) -> Entry {
    Entry {
        domain: domain.to_string(),
        state: EntryState::NoPolicy { until },
        last_failure: Some(until - 300),
        last_used: until - 100,
    }
}

/// Raw access to a backend's storage, to plant values the store itself never writes.
enum Raw {
    None,
    Sqlite(sqlx::SqlitePool),
    Postgres(sqlx::PgPool),
    Redis(redis::aio::ConnectionManager, String),
}

impl Raw {
    /// Plants corrupt values for `huge.example`, `negative.example` (and for Redis
    /// `garbage.example`, `wrongtype.example`, `mismatch.example`); returns their domains.
    async fn plant_corrupt(&self) -> Vec<&'static str> {
        const INSERT: &str = "INSERT INTO sts_policy_cache (domain, kind, policy_id, body, \
                              fetched_at, no_policy_until, last_failure, last_used) \
                              VALUES ($1, 'policy', '1', $2, 1, NULL, NULL, $3)";
        let huge = "x".repeat(MAX_BODY_BYTES + 10);
        match self {
            Raw::None => vec![],
            Raw::Sqlite(pool) => {
                for (domain, body, last_used) in [
                    ("huge.example", huge.as_str(), 1i64),
                    ("negative.example", "b", -1),
                ] {
                    sqlx::query(INSERT)
                        .bind(domain)
                        .bind(body)
                        .bind(last_used)
                        .execute(pool)
                        .await
                        .expect("plant a row");
                }
                vec!["huge.example", "negative.example"]
            }
            Raw::Postgres(pool) => {
                for (domain, body, last_used) in [
                    ("huge.example", huge.as_str(), 1i64),
                    ("negative.example", "b", -1),
                ] {
                    sqlx::query(INSERT)
                        .bind(domain)
                        .bind(body)
                        .bind(last_used)
                        .execute(pool)
                        .await
                        .expect("plant a row");
                }
                vec!["huge.example", "negative.example"]
            }
            Raw::Redis(conn, prefix) => {
                let mut conn = conn.clone();
                let huge_json = format!(
                    "{{\"domain\":\"huge.example\",\"pad\":\"{}\"}}",
                    "x".repeat(MAX_ENTRY_JSON_BYTES)
                );
                let negative = serde_json::json!({
                    "domain": "negative.example",
                    "state": {"kind": "no_policy", "until": -1},
                    "last_failure": null,
                    "last_used": 1,
                })
                .to_string();
                let mismatch = serde_json::to_string(&policy("other.example", "1", 1)).unwrap();
                for (domain, value) in [
                    ("huge.example", huge_json),
                    ("negative.example", negative),
                    ("garbage.example", "not json".to_string()),
                    ("mismatch.example", mismatch),
                ] {
                    let () = redis::cmd("SET")
                        .arg(format!("{prefix}{domain}"))
                        .arg(value)
                        .query_async(&mut conn)
                        .await
                        .expect("plant a key");
                }
                let _: u64 = redis::cmd("HSET")
                    .arg(format!("{prefix}wrongtype.example"))
                    .arg("a")
                    .arg("b")
                    .query_async(&mut conn)
                    .await
                    .expect("plant a hash");
                vec![
                    "huge.example",
                    "negative.example",
                    "garbage.example",
                    "mismatch.example",
                    "wrongtype.example",
                ]
            }
        }
    }
}

/// Runs every behaviour against `store`, starting each from an empty store.
async fn conformance(shared: Arc<dyn PolicyStore>, raw: Raw) {
    let store = shared.as_ref();
    for (name, behaviour) in [
        ("get_missing", 0),
        ("round_trip", 1),
        ("overwrite", 2),
        ("delete", 3),
        ("list", 4),
        ("purge", 5),
        ("a_labels", 6),
        ("invalid_input", 7),
        ("concurrent_puts", 8),
        ("corrupt_values", 9),
    ] {
        store
            .purge()
            .await
            .unwrap_or_else(|e| panic!("{}: purge before {name}: {e}", store.backend()));
        eprintln!("{}: {name}", store.backend());
        match behaviour {
            0 => get_missing(store).await,
            1 => round_trip(store).await,
            2 => overwrite(store).await,
            3 => delete(store).await,
            4 => list(store).await,
            5 => purge(store).await,
            6 => a_labels(store).await,
            7 => invalid_input(store).await,
            8 => concurrent_puts(&shared).await,
            _ => corrupt_values(store, &raw).await,
        }
    }
    store.purge().await.expect("final purge");
}

async fn get_missing(store: &dyn PolicyStore) {
    assert_eq!(store.get("missing.example").await, Ok(None));
    assert_eq!(store.list(10).await, Ok(vec![]));
}

async fn round_trip(store: &dyn PolicyStore) {
    let p = policy("policy.example", "20240101T000000", 1_700_000_000);
    let n = no_policy("none.example", 1_700_000_600);
    store.put(&p).await.unwrap();
    store.put(&n).await.unwrap();
    assert_eq!(store.get("policy.example").await, Ok(Some(p.clone())));
    assert_eq!(store.get("none.example").await, Ok(Some(n.clone())));
    // Edge values survive: empty body, the largest allowed body, i64::MAX times.
    let big = Entry {
        domain: "big.example".into(),
        state: EntryState::Policy {
            id: String::new(),
            body: "é".repeat(MAX_BODY_BYTES / 2),
            fetched_at: i64::MAX as u64,
        },
        last_failure: Some(0),
        last_used: i64::MAX as u64,
    };
    store.put(&big).await.unwrap();
    assert_eq!(store.get("big.example").await, Ok(Some(big)));
}

async fn overwrite(store: &dyn PolicyStore) {
    store
        .put(&policy("over.example", "1", 1_700_000_000))
        .await
        .unwrap();
    let newer = Entry {
        last_failure: Some(1_700_000_500),
        ..policy("over.example", "2", 1_700_000_100)
    };
    store.put(&newer).await.unwrap();
    assert_eq!(store.get("over.example").await, Ok(Some(newer)));
    // A policy can become a negative entry and back.
    let negative = no_policy("over.example", 1_700_001_000);
    store.put(&negative).await.unwrap();
    assert_eq!(store.get("over.example").await, Ok(Some(negative)));
    let again = policy("over.example", "3", 1_700_002_000);
    store.put(&again).await.unwrap();
    assert_eq!(store.get("over.example").await, Ok(Some(again)));
    assert_eq!(store.list(10).await.unwrap().len(), 1);
}

async fn delete(store: &dyn PolicyStore) {
    store.put(&policy("gone.example", "1", 1)).await.unwrap();
    store.put(&policy("kept.example", "1", 1)).await.unwrap();
    assert_eq!(store.delete("gone.example").await, Ok(true));
    assert_eq!(store.delete("gone.example").await, Ok(false));
    assert_eq!(store.delete("never.example").await, Ok(false));
    assert_eq!(store.get("gone.example").await, Ok(None));
    assert!(store.get("kept.example").await.unwrap().is_some());
}

async fn list(store: &dyn PolicyStore) {
    let domains = [
        "d.example",
        "a.example",
        "c.example",
        "b.example",
        "e.example",
    ];
    for (i, d) in domains.iter().enumerate() {
        store.put(&policy(d, "1", i as u64)).await.unwrap();
    }
    let all = store.list(100).await.unwrap();
    let names: Vec<&str> = all.iter().map(|e| e.domain.as_str()).collect();
    assert_eq!(
        names,
        [
            "a.example",
            "b.example",
            "c.example",
            "d.example",
            "e.example"
        ]
    );
    assert_eq!(all[0], policy("a.example", "1", 1));
    let some = store.list(3).await.unwrap();
    assert_eq!(some.len(), 3);
    assert!(some.windows(2).all(|w| w[0].domain < w[1].domain));
    assert!(some.iter().all(|e| all.contains(e)));
    assert_eq!(store.list(0).await, Ok(vec![]));
}

async fn purge(store: &dyn PolicyStore) {
    for d in ["a.example", "b.example", "c.example"] {
        store.put(&no_policy(d, 1000)).await.unwrap();
    }
    assert_eq!(store.purge().await, Ok(3));
    assert_eq!(store.list(10).await, Ok(vec![]));
    assert_eq!(store.get("a.example").await, Ok(None));
    assert_eq!(store.purge().await, Ok(0));
}

async fn a_labels(store: &dyn PolicyStore) {
    let e = policy("xn--bcher-kva.example", "1", 5);
    store.put(&e).await.unwrap();
    assert_eq!(
        store.get("xn--bcher-kva.example").await,
        Ok(Some(e.clone()))
    );
    // Lookups ignore case and one trailing dot; the stored domain is normalised.
    assert_eq!(
        store.get("XN--Bcher-KVA.Example.").await,
        Ok(Some(e.clone()))
    );
    store.put(&policy("Mixed.Example.", "1", 5)).await.unwrap();
    assert_eq!(
        store.get("mixed.example").await,
        Ok(Some(policy("mixed.example", "1", 5)))
    );
    assert_eq!(store.delete("MIXED.example").await, Ok(true));
    // U-labels are refused: the caller must convert to A-labels first.
    assert!(matches!(
        store.get("bücher.example").await,
        Err(StoreError::Invalid(_))
    ));
    assert!(matches!(
        store.put(&policy("bücher.example", "1", 5)).await,
        Err(StoreError::Invalid(_))
    ));
    let long = format!("{}.example", "a".repeat(250));
    assert!(matches!(
        store.get(&long).await,
        Err(StoreError::Invalid(_))
    ));
    assert_eq!(store.list(10).await.unwrap(), vec![e]);
}

async fn invalid_input(store: &dyn PolicyStore) {
    let huge = Entry {
        state: EntryState::Policy {
            id: "1".into(),
            body: "x".repeat(MAX_BODY_BYTES + 1),
            fetched_at: 1,
        },
        ..policy("huge.example", "1", 1)
    };
    assert!(matches!(
        store.put(&huge).await,
        Err(StoreError::Invalid(_))
    ));
    let late = Entry {
        last_used: u64::MAX,
        ..policy("late.example", "1", 1)
    };
    assert!(matches!(
        store.put(&late).await,
        Err(StoreError::Invalid(_))
    ));
    assert!(matches!(store.get("").await, Err(StoreError::Invalid(_))));
    assert!(matches!(
        store.delete("a b.example").await,
        Err(StoreError::Invalid(_))
    ));
    assert_eq!(store.list(10).await, Ok(vec![]));
}

async fn concurrent_puts(shared: &Arc<dyn PolicyStore>) {
    let store = shared.as_ref();
    // Distinct domains and one contended domain, all at once, from separate tasks.
    let entries: Vec<Entry> = (0..40u64)
        .map(|i| policy(&format!("d{i:02}.example"), "1", i))
        .chain((0..20u64).map(|i| policy("hot.example", &format!("v{i}"), i)))
        .collect();
    let tasks: Vec<_> = entries
        .into_iter()
        .map(|entry| {
            let store = Arc::clone(shared);
            tokio::spawn(async move { store.put(&entry).await })
        })
        .collect();
    for result in futures::future::join_all(tasks).await {
        assert_eq!(result.expect("task"), Ok(()));
    }
    let all = store.list(1000).await.unwrap();
    assert_eq!(all.len(), 41);
    for i in 0..40u64 {
        let d = format!("d{i:02}.example");
        assert_eq!(store.get(&d).await, Ok(Some(policy(&d, "1", i))));
    }
    // The contended key holds exactly one of the writes, intact.
    let hot = store.get("hot.example").await.unwrap().expect("hot entry");
    let EntryState::Policy { id, fetched_at, .. } = &hot.state else {
        panic!("hot.example is not a policy: {hot:?}");
    };
    assert_eq!(id, &format!("v{fetched_at}"));
    assert_eq!(hot, policy("hot.example", id, *fetched_at));
}

async fn corrupt_values(store: &dyn PolicyStore, raw: &Raw) {
    store.put(&policy("good.example", "1", 1)).await.unwrap();
    let corrupt = raw.plant_corrupt().await;
    for domain in &corrupt {
        match store.get(domain).await {
            Err(StoreError::Corrupt(_)) => {}
            other => panic!(
                "{}: {domain}: expected Corrupt, got {other:?}",
                store.backend()
            ),
        }
    }
    // list skips what it cannot read; delete and purge still remove it.
    assert_eq!(
        store.list(100).await,
        Ok(vec![policy("good.example", "1", 1)])
    );
    if let Some(first) = corrupt.first() {
        assert_eq!(store.delete(first).await, Ok(true));
    }
    assert_eq!(
        store.purge().await,
        Ok(corrupt.len().saturating_sub(1) as u64 + 1)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn memory_conforms() {
    conformance(Arc::new(MemoryStore::new()), Raw::None).await;
    // open() gives the same backend.
    let store = mtasts_store::open("memory").await.unwrap();
    assert_eq!(store.backend(), "memory");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_conforms() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nested-name.db");
    let url = format!("sqlite:{}", path.display());
    let store = mtasts_store::open(&url).await.unwrap();
    assert_eq!(store.backend(), "sqlite");
    assert!(path.exists(), "the database file is created");
    let raw = sqlx::SqlitePool::connect(&url).await.unwrap();
    conformance(store.clone(), Raw::Sqlite(raw.clone())).await;

    // Data survives closing and reopening (migrations are idempotent).
    store.put(&policy("kept.example", "1", 1)).await.unwrap();
    drop(store);
    let again = SqliteStore::open(&url).await.unwrap();
    assert_eq!(
        again.get("kept.example").await,
        Ok(Some(policy("kept.example", "1", 1)))
    );
    let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
        .fetch_one(&raw)
        .await
        .unwrap();
    assert_eq!(mode, "wal");
    again.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_in_memory_conforms() {
    let store = SqliteStore::open("sqlite::memory:").await.unwrap();
    conformance(Arc::new(store), Raw::None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_conforms() {
    let url = postgres_url();
    let url = url.as_str();
    let schema = unique("mtasts_test_");
    let store = match PostgresStore::connect_in_schema(url, &schema).await {
        Ok(store) => Arc::new(store),
        Err(e) => return skip(Service::Postgres, &e),
    };
    assert_eq!(store.backend(), "postgres");
    let options = sqlx::postgres::PgConnectOptions::from_str(url)
        .unwrap()
        .options([("search_path", schema.as_str())]);
    let raw = sqlx::PgPool::connect_with(options).await.unwrap();
    conformance(store.clone(), Raw::Postgres(raw.clone())).await;
    raw.close().await;

    // A second store on the same schema sees the same data (migrations are idempotent).
    store.put(&policy("shared.example", "1", 1)).await.unwrap();
    let second = PostgresStore::connect_in_schema(url, &schema)
        .await
        .unwrap();
    assert_eq!(
        second.get("shared.example").await,
        Ok(Some(policy("shared.example", "1", 1)))
    );
    second.close().await;
    let store = Arc::into_inner(store).expect("no other reference");
    store.drop_schema(&schema).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redis_conforms() {
    let url = redis_url();
    let url = url.as_str();
    let prefix = format!("{}:", unique("mtasts-test:"));
    let store = match RedisStore::connect_with_prefix(url, &prefix).await {
        Ok(store) => Arc::new(store),
        Err(e) => return skip(Service::Redis, &e),
    };
    assert_eq!(store.backend(), "redis");
    let client = redis::Client::open(url).unwrap();
    let mut raw = redis::aio::ConnectionManager::new(client).await.unwrap();

    // A key outside the prefix must survive purge.
    let foreign = format!("{}-foreign", prefix.trim_end_matches(':'));
    let () = redis::cmd("SET")
        .arg(&foreign)
        .arg("x")
        .arg("EX")
        .arg(60)
        .query_async(&mut raw)
        .await
        .unwrap();

    conformance(store.clone(), Raw::Redis(raw.clone(), prefix.clone())).await;

    let exists: u64 = redis::cmd("EXISTS")
        .arg(&foreign)
        .query_async(&mut raw)
        .await
        .unwrap();
    assert_eq!(exists, 1, "purge removed a key outside its prefix");

    // Keys get a TTL: a bit more than the useful life.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    store.put(&policy("ttl.example", "1", now)).await.unwrap();
    let ttl: i64 = redis::cmd("TTL")
        .arg(format!("{prefix}ttl.example"))
        .query_async(&mut raw)
        .await
        .unwrap();
    let expected = 86400 + mtasts_store::redis_store::RETENTION_GRACE_SECS as i64;
    assert!(
        (expected - 5..=expected).contains(&ttl),
        "TTL {ttl}, expected about {expected}"
    );
    store.purge().await.unwrap();
    let _: u64 = redis::cmd("DEL")
        .arg(&foreign)
        .query_async(&mut raw)
        .await
        .unwrap();
}
