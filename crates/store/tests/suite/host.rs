//! Conformance tests of `mtasts_store::host::HostDb`: every case runs against SQLite (a temporary
//! file) and PostgreSQL (a fresh schema per test; skipped with a message when the server is
//! down, unless `MTASTS_REQUIRE_SERVICES=1`).

use std::future::Future;
use std::time::Duration;

use mtasts_store::host::{
    AcmeState, CertRow, ChallengeRow, DomainState, HostDb, HostDbError, NewDomain, NewToken,
    NewUser, NewVersion, Role, Session, SessionTimes,
};
use sqlx::postgres::PgPool;
use sqlx::sqlite::SqlitePool;

use mtasts_testkit::services::unique;

#[derive(Clone, Copy, Debug)]
pub(crate) enum Kind {
    Sqlite,
    Postgres,
}

/// What a case gets: the database, its URL (to open a second instance, as a second node
/// would) and a raw pool on the same tables.
pub(crate) struct Ctx {
    pub(crate) db: HostDb,
    pub(crate) url: String,
    /// Unique per test: advisory locks are server-wide, so lock names carry it.
    tag: String,
    pub(crate) raw: Raw,
}

#[derive(Clone)]
pub(crate) enum Raw {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

impl Raw {
    pub(crate) async fn execute(&self, statement: &'static str) {
        match self {
            Raw::Sqlite(pool) => sqlx::query(statement).execute(pool).await.map(drop),
            Raw::Postgres(pool) => sqlx::query(statement).execute(pool).await.map(drop),
        }
        .unwrap();
    }
}

/// Opens a fresh database of `kind`, runs `case` on it (in a task, so a failing case still
/// gets its PostgreSQL schema dropped) and cleans up.
pub(crate) async fn run<F, Fut>(kind: Kind, case: F)
where
    F: FnOnce(Ctx) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let tag = unique("host_test_");
    match kind {
        Kind::Sqlite => {
            let dir = tempfile::tempdir().unwrap();
            let url = format!("sqlite:{}", dir.path().join("host.db").display());
            let db = HostDb::open(&url).await.unwrap();
            let raw = SqlitePool::connect(&url).await.unwrap();
            let outcome = tokio::spawn(case(Ctx {
                db: db.clone(),
                url,
                tag,
                raw: Raw::Sqlite(raw.clone()),
            }))
            .await;
            db.close().await;
            raw.close().await;
            if let Err(e) = outcome {
                std::panic::resume_unwind(e.into_panic());
            }
        }
        Kind::Postgres => {
            let Some(schema) = crate::schema::Schema::create(&tag).await else {
                return;
            };
            let outcome = match HostDb::open(&schema.url).await {
                Ok(db) => {
                    let outcome = tokio::spawn(case(Ctx {
                        db: db.clone(),
                        url: schema.url.clone(),
                        tag: tag.clone(),
                        raw: Raw::Postgres(schema.raw.clone()),
                    }))
                    .await;
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

// Tenants, users, API tokens, sessions and settings.
#[path = "host_tenancy.rs"]
mod tenancy;

// Node liveness rows.
#[path = "host_nodes.rs"]
mod nodes;

// Keyset pages of domains and versions.
#[path = "host_pages.rs"]
mod pages;

// Restore, claims, moving a domain.
#[path = "host_names.rs"]
mod names;

// Alerts: settings, open alerts, notifications, delegation records.
#[path = "host_alerts.rs"]
mod alerts;

/// A policy version created at `now`.
fn version(policy_id: &str, now: i64) -> NewVersion {
    NewVersion {
        policy_id: policy_id.to_string(),
        mode: "enforce".to_string(),
        mx: vec!["mx1.example.net".to_string(), "*.example.net".to_string()],
        max_age: 86400,
        body: format!(
            "version: STSv1\r\nmode: enforce\r\nmx: mx1.example.net\r\nmx: *.example.net\r\n\
             max_age: 86400\r\n# {policy_id}\r\n"
        ),
        now,
    }
}

/// Runs `op` and checks the generation moved by exactly `by`.
async fn bumps<T>(db: &HostDb, by: u64, op: impl Future<Output = T>) -> T {
    let before = db.generation().await.unwrap();
    let out = op.await;
    let after = db.generation().await.unwrap();
    assert_eq!(
        after,
        before + by,
        "generation {before} → {after}, expected +{by}"
    );
    out
}

fn conflict<T: std::fmt::Debug>(result: Result<T, HostDbError>) {
    assert!(
        matches!(result, Err(HostDbError::Conflict(_))),
        "expected Conflict, got {result:?}"
    );
}

fn invalid<T: std::fmt::Debug>(result: Result<T, HostDbError>) {
    assert!(
        matches!(result, Err(HostDbError::Invalid(_))),
        "expected Invalid, got {result:?}"
    );
}

fn not_found<T: std::fmt::Debug>(result: Result<T, HostDbError>) {
    assert!(
        matches!(result, Err(HostDbError::NotFound)),
        "expected NotFound, got {result:?}"
    );
}

/// A tenant with a hosted domain `name`, for cases about what hangs off a domain.
pub(crate) async fn hosted(db: &HostDb, name: &str) -> (i64, i64) {
    let tenant = db
        .create_tenant(&format!("tenant of {name}"))
        .await
        .unwrap();
    let (domain, _) = db
        .create_domain(
            NewDomain {
                tenant_id: tenant.id,
                name: name.to_string(),
                rua: None,
                reports_to_service: true,
            },
            version("v1", 1000),
        )
        .await
        .unwrap();
    (tenant.id, domain.id)
}

/// How many host migrations there are for `database`: every one is applied at open.
fn migration_files(database: &str) -> i64 {
    let dir = format!("{}/migrations/host/{database}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_dir(dir).unwrap().count() as i64
}

mod cases {
    use super::*;

    both_databases!(crate::host::run, crate::host::Kind;
        fresh_database,
        domains_and_versions,
        publishing,
        removal_and_cascade,
        service_certificate,
        load_state_snapshot,
        load_state_is_consistent_under_writes,
        certificates_and_acme,
        challenges,
        locks,
        oversized_inputs,
        corrupt_rows,
    );

    pub(crate) async fn fresh_database(ctx: Ctx) {
        let db = &ctx.db;
        assert_eq!(db.generation().await.unwrap(), 0);
        let state = db.load_state().await.unwrap();
        assert_eq!(state.generation, 0);
        assert!(state.domains.is_empty() && state.certificates.is_empty());
        assert!(db.list_tenants().await.unwrap().is_empty());
        assert_eq!(db.count_admin_tokens().await.unwrap(), 0);

        // Reopening migrates nothing twice and sees the same data.
        db.create_tenant("kept").await.unwrap();
        let again = HostDb::open(&ctx.url).await.unwrap();
        assert_eq!(again.backend(), db.backend());
        // A tenant serves nothing: creating one does not move the generation.
        assert_eq!(again.generation().await.unwrap(), 0);
        assert!(again.tenant_by_name("kept").await.unwrap().is_some());
        again.close().await;

        // The host migrations are recorded in their own table.
        match &ctx.raw {
            Raw::Sqlite(pool) => {
                assert_eq!(db.backend(), "sqlite");
                let applied: i64 =
                    sqlx::query_scalar("SELECT COUNT(*) FROM _mtasts_host_migrations")
                        .fetch_one(pool)
                        .await
                        .unwrap();
                assert_eq!(applied, migration_files("sqlite"));
                let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
                    .fetch_one(pool)
                    .await
                    .unwrap();
                assert_eq!(mode, "wal");
            }
            Raw::Postgres(pool) => {
                assert_eq!(db.backend(), "postgres");
                let applied: i64 =
                    sqlx::query_scalar("SELECT COUNT(*) FROM _mtasts_host_migrations")
                        .fetch_one(pool)
                        .await
                        .unwrap();
                assert_eq!(applied, migration_files("postgres"));
            }
        }
    }

    pub(crate) async fn domains_and_versions(ctx: Ctx) {
        let db = &ctx.db;
        let t1 = db.create_tenant("one").await.unwrap();
        let t2 = db.create_tenant("two").await.unwrap();
        let (domain, v1) = bumps(
            db,
            1,
            db.create_domain(
                NewDomain {
                    tenant_id: t1.id,
                    name: "Example.COM.".into(),
                    rua: Some("mailto:tlsrpt@example.com".into()),
                    reports_to_service: true,
                },
                version("20250101a", 1000),
            ),
        )
        .await
        .unwrap();
        let generation = db.generation().await.unwrap();
        assert_eq!(domain.name, "example.com");
        assert_eq!(domain.tenant_id, t1.id);
        assert_eq!(domain.state, DomainState::Active);
        assert_eq!(domain.rua.as_deref(), Some("mailto:tlsrpt@example.com"));
        assert_eq!(domain.created_at, 1000);
        assert_eq!(domain.latest_version, 1);
        assert_eq!(domain.published_version, None);
        assert_eq!(domain.remove_after, None);
        assert_eq!(
            (domain.verification.as_ref(), domain.verified_at),
            (None, None)
        );
        assert_eq!(v1.domain_id, domain.id);
        assert_eq!(v1.version, 1);
        assert_eq!(v1.created_generation as u64, generation);
        assert_eq!(v1.mx, version("x", 0).mx);
        assert_eq!((v1.mode.as_str(), v1.max_age), ("enforce", 86400));
        assert_eq!(v1.body, version("20250101a", 0).body);
        assert_eq!(v1.published_at, None);

        // Names are unique across tenants, whatever their spelling.
        bumps(db, 0, async {
            for name in ["example.com", "EXAMPLE.com.", "example.COM"] {
                conflict(
                    db.create_domain(
                        NewDomain {
                            tenant_id: t2.id,
                            name: name.into(),
                            rua: None,
                            reports_to_service: true,
                        },
                        version("a", 1),
                    )
                    .await,
                );
            }
            not_found(
                db.create_domain(
                    NewDomain {
                        tenant_id: 9999,
                        name: "orphan.example".into(),
                        rua: None,
                        reports_to_service: true,
                    },
                    version("a", 1),
                )
                .await,
            );
            invalid(
                db.create_domain(
                    NewDomain {
                        tenant_id: t2.id,
                        name: "bücher.example".into(),
                        rua: None,
                        reports_to_service: true,
                    },
                    version("a", 1),
                )
                .await,
            );
        })
        .await;
        let (other, _) = db
            .create_domain(
                NewDomain {
                    tenant_id: t2.id,
                    name: "another.example".into(),
                    rua: None,
                    reports_to_service: true,
                },
                version("a", 1),
            )
            .await
            .unwrap();

        bumps(db, 0, async {
            assert_eq!(
                db.domain("EXAMPLE.com.").await.unwrap(),
                Some(domain.clone())
            );
            assert_eq!(
                db.domain_by_id(domain.id).await.unwrap(),
                Some(domain.clone())
            );
            assert_eq!(db.domain("missing.example").await.unwrap(), None);
            assert_eq!(db.domain_by_id(9999).await.unwrap(), None);
            assert_eq!(
                db.list_domains(None).await.unwrap(),
                vec![other.clone(), domain.clone()]
            );
            assert_eq!(
                db.list_domains(Some(t1.id)).await.unwrap(),
                vec![domain.clone()]
            );
            assert!(db.list_domains(Some(9999)).await.unwrap().is_empty());
        })
        .await;

        // Versions count up; each records the generation that created it.
        let v2 = bumps(db, 1, db.add_version(domain.id, version("20250102a", 2000)))
            .await
            .unwrap();
        assert_eq!(v2.version, 2);
        assert_eq!(v2.created_generation as u64, db.generation().await.unwrap());
        let v3 = db
            .add_version(domain.id, version("20250103a", 3000))
            .await
            .unwrap();
        assert_eq!(v3.version, 3);
        assert!(v3.created_generation > v2.created_generation);
        assert_eq!(v3.created_at, 3000);

        // A policy id is never reused within a domain (but may be in another one); a refused
        // version leaves nothing behind.
        bumps(db, 0, async {
            conflict(db.add_version(domain.id, version("20250102a", 4000)).await);
            not_found(db.add_version(9999, version("x", 1)).await);
        })
        .await;
        assert_eq!(
            db.domain_by_id(domain.id)
                .await
                .unwrap()
                .unwrap()
                .latest_version,
            3
        );
        db.add_version(other.id, version("20250102a", 1))
            .await
            .unwrap();

        let versions = db.versions(domain.id).await.unwrap();
        assert_eq!(versions, vec![v3.clone(), v2.clone(), v1.clone()]);
        not_found(db.versions(9999).await);

        // The rua and the verification result.
        bumps(db, 1, db.set_rua(domain.id, None)).await.unwrap();
        assert_eq!(db.domain_by_id(domain.id).await.unwrap().unwrap().rua, None);
        bumps(db, 1, db.set_rua(domain.id, Some("mailto:a@b.example")))
            .await
            .unwrap();
        assert_eq!(
            db.domain_by_id(domain.id)
                .await
                .unwrap()
                .unwrap()
                .rua
                .as_deref(),
            Some("mailto:a@b.example")
        );
        not_found(db.set_rua(9999, None).await);

        // Whether the service's own addresses are published: on by default, a change the
        // listeners serve (so a new generation), read back on both drivers.
        assert!(
            db.domain_by_id(domain.id)
                .await
                .unwrap()
                .unwrap()
                .reports_to_service
        );
        bumps(db, 1, db.set_reports_to_service(domain.id, false))
            .await
            .unwrap();
        let off = db.domain_by_id(domain.id).await.unwrap().unwrap();
        assert!(!off.reports_to_service);
        assert!(
            db.list_domains(Some(t1.id))
                .await
                .unwrap()
                .iter()
                .any(|d| d.id == domain.id && !d.reports_to_service),
            "the list reads the same column"
        );
        bumps(db, 1, db.set_reports_to_service(domain.id, true))
            .await
            .unwrap();
        assert!(
            db.domain_by_id(domain.id)
                .await
                .unwrap()
                .unwrap()
                .reports_to_service
        );
        not_found(db.set_reports_to_service(9999, false).await);
        let json = r#"{"sts":"ok","tlsrpt":"missing"}"#;
        // The verification result is bookkeeping no listener serves: no bump.
        bumps(db, 0, db.set_verification(domain.id, json, 7000))
            .await
            .unwrap();
        let checked = db.domain_by_id(domain.id).await.unwrap().unwrap();
        assert_eq!(checked.verification.as_deref(), Some(json));
        assert_eq!(checked.verified_at, Some(7000));
        bumps(db, 0, async {
            invalid(db.set_verification(domain.id, "{not json", 1).await);
            not_found(db.set_verification(9999, "{}", 1).await);
        })
        .await;
    }

    pub(crate) async fn publishing(ctx: Ctx) {
        let db = &ctx.db;
        let (_, id) = hosted(db, "example.com").await;
        db.add_version(id, version("v2", 2000)).await.unwrap();
        db.add_version(id, version("v3", 3000)).await.unwrap();

        bumps(db, 1, db.publish_version(id, 2, 5000)).await.unwrap();
        let domain = db.domain_by_id(id).await.unwrap().unwrap();
        assert_eq!(domain.published_version, Some(2));
        let published_at = |versions: &[mtasts_store::host::PolicyVersion], n: i64| {
            versions
                .iter()
                .find(|v| v.version == n)
                .unwrap()
                .published_at
        };
        let versions = db.versions(id).await.unwrap();
        assert_eq!(published_at(&versions, 2), Some(5000));
        assert_eq!(published_at(&versions, 3), None);

        // Publishing again keeps the first publication time.
        bumps(db, 1, db.publish_version(id, 2, 6000)).await.unwrap();
        assert_eq!(published_at(&db.versions(id).await.unwrap(), 2), Some(5000));

        db.publish_version(id, 3, 7000).await.unwrap();
        assert_eq!(
            db.domain_by_id(id)
                .await
                .unwrap()
                .unwrap()
                .published_version,
            Some(3)
        );
        bumps(db, 0, async {
            conflict(db.publish_version(id, 1, 8000).await);
            not_found(db.publish_version(id, 4, 8000).await);
            not_found(db.publish_version(9999, 1, 8000).await);
        })
        .await;
        assert_eq!(
            db.domain_by_id(id)
                .await
                .unwrap()
                .unwrap()
                .published_version,
            Some(3)
        );
    }

    pub(crate) async fn removal_and_cascade(ctx: Ctx) {
        let db = &ctx.db;
        let (tenant_id, id) = hosted(db, "leaving.example").await;
        let (_, stays) = hosted(db, "staying.example").await;
        db.put_certificate(cert("leaving.example", 1))
            .await
            .unwrap();
        db.put_certificate(cert("staying.example", 1))
            .await
            .unwrap();
        db.set_acme_state(AcmeState {
            domain: "leaving.example".into(),
            failures: 2,
            next_attempt_at: 10,
            last_error: Some("rate limited".into()),
        })
        .await
        .unwrap();
        db.put_challenge(http01("tok-leaving", "leaving.example", i64::MAX))
            .await
            .unwrap();
        db.put_challenge(http01("tok-staying", "staying.example", i64::MAX))
            .await
            .unwrap();

        let none = NewVersion {
            mode: "none".into(),
            mx: vec![],
            ..version("removal", 5000)
        };
        let removal = bumps(db, 1, db.start_removal(id, 9000, none.clone()))
            .await
            .unwrap();
        assert_eq!(removal.version, 2);
        assert_eq!(removal.mode, "none");
        assert!(removal.mx.is_empty());
        let domain = db.domain_by_id(id).await.unwrap().unwrap();
        assert_eq!(domain.state, DomainState::Removing);
        assert_eq!(domain.remove_after, Some(9000));
        assert_eq!(domain.latest_version, 2);

        bumps(db, 0, async {
            conflict(db.start_removal(id, 9500, version("again", 1)).await);
            not_found(db.start_removal(9999, 1, version("x", 1)).await);
            assert!(db.domains_due_for_removal(8999).await.unwrap().is_empty());
            assert_eq!(
                db.domains_due_for_removal(9000).await.unwrap(),
                vec![domain.clone()]
            );
        })
        .await;

        bumps(db, 1, db.delete_domain(id)).await.unwrap();
        assert_eq!(db.domain_by_id(id).await.unwrap(), None);
        not_found(db.versions(id).await);
        assert_eq!(db.certificate("leaving.example").await.unwrap(), None);
        assert_eq!(db.acme_state("leaving.example").await.unwrap(), None);
        let tokens: Vec<String> = db
            .challenges(0)
            .await
            .unwrap()
            .into_iter()
            .map(|c| c.token)
            .collect();
        assert_eq!(tokens, vec!["tok-staying".to_string()]);
        // The other domain keeps everything.
        assert!(db.certificate("staying.example").await.unwrap().is_some());
        assert_eq!(db.versions(stays).await.unwrap().len(), 1);
        bumps(db, 0, async { not_found(db.delete_domain(id).await) }).await;
        assert!(
            db.domains_due_for_removal(i64::MAX)
                .await
                .unwrap()
                .is_empty()
        );

        // The name is free again, for any tenant.
        let (again, first) = db
            .create_domain(
                NewDomain {
                    tenant_id,
                    name: "leaving.example".into(),
                    rua: None,
                    reports_to_service: true,
                },
                version("removal", 10_000),
            )
            .await
            .unwrap();
        assert_ne!(again.id, id, "ids are not reused");
        assert_eq!(first.version, 1);
    }

    pub(crate) async fn load_state_snapshot(ctx: Ctx) {
        let db = &ctx.db;
        let (_, a) = hosted(db, "a.example").await;
        let (_, b) = hosted(db, "b.example").await;
        db.add_version(a, version("v2", 2000)).await.unwrap();
        db.publish_version(a, 1, 2500).await.unwrap();
        db.put_certificate(cert("b.example", 7)).await.unwrap();
        db.put_challenge(http01("live", "a.example", i64::MAX))
            .await
            .unwrap();
        db.put_challenge(http01("expired", "a.example", 1))
            .await
            .unwrap();

        let state = bumps(db, 0, db.load_state()).await.unwrap();
        assert_eq!(state.generation, db.generation().await.unwrap());
        assert_eq!(state.domains.len(), 2);
        let (da, va, pa) = &state.domains[0];
        assert_eq!((da.id, da.name.as_str()), (a, "a.example"));
        assert_eq!((va.version, va.policy_id.as_str()), (2, "v2"));
        assert_eq!(pa.as_deref(), Some("v1"));
        let (db_, vb, pb) = &state.domains[1];
        assert_eq!((db_.id, vb.version, pb), (b, 1, &None));
        assert_eq!(state.certificates, vec![cert("b.example", 7)]);
        let tokens: Vec<&str> = state.challenges.iter().map(|c| c.token.as_str()).collect();
        assert_eq!(tokens, vec!["live"], "expired challenges are left out");
    }

    pub(crate) async fn load_state_is_consistent_under_writes(ctx: Ctx) {
        let db = ctx.db.clone();
        let (_, id) = hosted(&db, "busy.example").await;
        // One writer adds versions while the loader reads: every state must show exactly the
        // newest version whose creating generation it includes.
        let writer = {
            let db = db.clone();
            tokio::spawn(async move {
                let mut created = vec![];
                for n in 2..=25 {
                    let v = db
                        .add_version(id, version(&format!("v{n}"), n))
                        .await
                        .unwrap();
                    created.push((v.created_generation as u64, v.version));
                }
                created
            })
        };
        let mut states = vec![];
        while !writer.is_finished() {
            states.push(db.load_state().await.unwrap());
        }
        states.push(db.load_state().await.unwrap());
        let mut created = writer.await.unwrap();
        created.insert(0, (1, 1)); // hosted(): the tenant does not bump, the domain is 1
        for state in &states {
            let expected = created
                .iter()
                .filter(|(g, _)| *g <= state.generation)
                .map(|(_, v)| *v)
                .max()
                .unwrap();
            let (domain, latest, _) = &state.domains[0];
            assert_eq!(
                latest.version, expected,
                "at generation {}",
                state.generation
            );
            assert_eq!(domain.latest_version, expected);
        }
        assert!(states.len() >= 2);
    }

    pub(crate) async fn certificates_and_acme(ctx: Ctx) {
        let db = &ctx.db;
        hosted(db, "b.example").await;
        hosted(db, "a.example").await;
        bumps(db, 1, db.put_certificate(cert("b.example", 1)))
            .await
            .unwrap();
        db.put_certificate(cert("A.example.", 1)).await.unwrap();
        bumps(db, 1, db.put_certificate(cert("b.example", 2)))
            .await
            .unwrap();
        bumps(db, 0, async {
            assert_eq!(
                db.certificate("b.example").await.unwrap(),
                Some(cert("b.example", 2))
            );
            assert_eq!(db.certificate("c.example").await.unwrap(), None);
            assert_eq!(
                db.certificates().await.unwrap(),
                vec![cert("a.example", 1), cert("b.example", 2)]
            );
            not_found(db.put_certificate(cert("unhosted.example", 1)).await);
        })
        .await;

        assert_eq!(db.acme_state("a.example").await.unwrap(), None);
        let state = AcmeState {
            domain: "a.example".into(),
            failures: 3,
            next_attempt_at: 12_345,
            last_error: Some("é".repeat(3000)),
        };
        // The scheduler's bookkeeping and account are not served: no bump.
        bumps(db, 0, db.set_acme_state(state.clone()))
            .await
            .unwrap();
        let stored = db.acme_state("a.example").await.unwrap().unwrap();
        assert_eq!((stored.failures, stored.next_attempt_at), (3, 12_345));
        let error = stored.last_error.unwrap();
        assert_eq!(error.len(), mtasts_store::host::MAX_ERROR_BYTES);
        assert!(
            error.chars().all(|c| c == 'é'),
            "cut at a character boundary"
        );
        let cleared = AcmeState {
            failures: 0,
            last_error: None,
            ..state
        };
        db.set_acme_state(cleared.clone()).await.unwrap();
        assert_eq!(db.acme_state("a.example").await.unwrap(), Some(cleared));
        not_found(
            db.set_acme_state(AcmeState {
                domain: "unhosted.example".into(),
                failures: 0,
                next_attempt_at: 0,
                last_error: None,
            })
            .await,
        );

        let directory = "https://acme.example/directory";
        assert_eq!(db.acme_account(directory).await.unwrap(), None);
        bumps(db, 0, db.put_acme_account(directory, r#"{"id":"1"}"#))
            .await
            .unwrap();
        db.put_acme_account(directory, r#"{"id":"2"}"#)
            .await
            .unwrap();
        assert_eq!(
            db.acme_account(directory).await.unwrap().as_deref(),
            Some(r#"{"id":"2"}"#)
        );
        assert_eq!(
            db.acme_account("https://other.example/").await.unwrap(),
            None
        );
    }

    /// The service's own certificate (the report host, no hosted domain): stored, read and
    /// listed like a domain's, with its ACME state and challenges; the hosted-only writes
    /// still refuse the name, and removing a domain leaves it alone.
    pub(crate) async fn service_certificate(ctx: Ctx) {
        let db = &ctx.db;
        let service = "reports.zone.example";
        let (_, id) = hosted(db, "a.example").await;
        bumps(db, 0, async {
            not_found(db.put_certificate(cert(service, 1)).await);
            not_found(
                db.set_acme_state(AcmeState {
                    domain: service.into(),
                    failures: 0,
                    next_attempt_at: 0,
                    last_error: None,
                })
                .await,
            );
            not_found(db.put_challenge(http01("s0", service, 10)).await);
        })
        .await;
        bumps(db, 1, db.put_service_certificate(cert(service, 1)))
            .await
            .unwrap();
        db.put_service_certificate(cert(service, 2)).await.unwrap();
        assert_eq!(
            db.certificate(service).await.unwrap(),
            Some(cert(service, 2))
        );
        db.put_certificate(cert("a.example", 1)).await.unwrap();
        assert_eq!(
            db.certificates().await.unwrap(),
            vec![cert("a.example", 1), cert(service, 2)]
        );
        let state = AcmeState {
            domain: service.into(),
            failures: 1,
            next_attempt_at: 77,
            last_error: Some("rate limited".into()),
        };
        bumps(db, 0, db.set_service_acme_state(state.clone()))
            .await
            .unwrap();
        assert_eq!(db.acme_state(service).await.unwrap(), Some(state));
        bumps(db, 1, db.put_service_challenge(http01("s1", service, 5000)))
            .await
            .unwrap();
        db.put_challenge(http01("a1", "a.example", 5000))
            .await
            .unwrap();
        assert_eq!(db.challenges(0).await.unwrap().len(), 2);
        // The loaded state carries it to the nodes.
        let state = db.load_state().await.unwrap();
        assert!(state.certificates.iter().any(|c| c.domain == service));

        // Deleting the hosted domain takes its rows (the trigger), not the service's.
        db.delete_domain(id).await.unwrap();
        assert_eq!(db.certificate("a.example").await.unwrap(), None);
        assert!(db.certificate(service).await.unwrap().is_some());
        assert!(db.acme_state(service).await.unwrap().is_some());
        let tokens: Vec<String> = db
            .challenges(0)
            .await
            .unwrap()
            .into_iter()
            .map(|c| c.token)
            .collect();
        assert_eq!(tokens, vec!["s1".to_string()]);
    }

    pub(crate) async fn challenges(ctx: Ctx) {
        let db = &ctx.db;
        hosted(db, "example.com").await;
        bumps(db, 1, db.put_challenge(http01("t1", "example.com", 1000)))
            .await
            .unwrap();
        let alpn = ChallengeRow {
            token: "t2".into(),
            domain: "example.com".into(),
            kind: "tls-alpn-01".into(),
            key_authorization: "t2.thumbprint".into(),
            cert_pem: Some("-----BEGIN CERTIFICATE-----\n…".into()),
            key_pem: Some("-----BEGIN PRIVATE KEY-----\n…".into()),
            expires_at: 2000,
        };
        db.put_challenge(alpn.clone()).await.unwrap();
        bumps(db, 0, async {
            assert_eq!(
                db.challenges(999).await.unwrap(),
                vec![http01("t1", "example.com", 1000), alpn.clone()]
            );
            assert_eq!(db.challenges(1000).await.unwrap(), vec![alpn.clone()]);
            assert!(db.challenges(2000).await.unwrap().is_empty());
        })
        .await;

        // Replacing by token.
        db.put_challenge(http01("t1", "example.com", 5000))
            .await
            .unwrap();
        assert_eq!(db.challenges(2000).await.unwrap().len(), 1);

        assert!(bumps(db, 1, db.delete_challenge("t1")).await.unwrap());
        assert!(!bumps(db, 0, db.delete_challenge("t1")).await.unwrap());
        bumps(db, 0, async {
            not_found(db.put_challenge(http01("t3", "unhosted.example", 1)).await);
            invalid(
                db.put_challenge(ChallengeRow {
                    kind: "dns-01".into(),
                    ..http01("t4", "example.com", 1)
                })
                .await,
            );
            invalid(
                db.put_challenge(ChallengeRow {
                    cert_pem: None,
                    ..alpn.clone()
                })
                .await,
            );
        })
        .await;
    }

    pub(crate) async fn locks(ctx: Ctx) {
        let db = &ctx.db;
        let name = format!("{}:acme:example.com", ctx.tag);
        let other_name = format!("{}:acme:example.net", ctx.tag);
        // A second instance with its own pool, as a second serve node would have (on SQLite,
        // the same process: the locks are per database file).
        let second = HostDb::open(&ctx.url).await.unwrap();

        let mut guard = bumps(db, 0, db.try_lock(&name)).await.unwrap().unwrap();
        assert_eq!(guard.name(), name);
        assert!(guard.is_held().await.unwrap());
        assert!(db.try_lock(&name).await.unwrap().is_none(), "same instance");
        assert!(
            second.try_lock(&name).await.unwrap().is_none(),
            "other instance"
        );
        let other = second.try_lock(&other_name).await.unwrap().unwrap();
        assert!(db.try_lock(&other_name).await.unwrap().is_none());

        // Dropping the guard releases the lock (on PostgreSQL on a spawned task: wait a bit).
        drop(guard);
        let retaken = take_within_2s(&second, &name)
            .await
            .expect("the lock is free after its guard was dropped");
        assert!(db.try_lock(&name).await.unwrap().is_none());

        // `release` frees it before returning.
        retaken.release().await;
        guard = db.try_lock(&name).await.unwrap().unwrap();
        other.release().await;
        let again = db.try_lock(&other_name).await.unwrap().unwrap();
        drop(again);

        // A lock dies with its session (a crashed node frees its locks).
        if let Raw::Postgres(raw) = &ctx.raw {
            // The advisory key, computed here independently: FNV-1a 64 of the namespaced name.
            let key = format!("mtasts-host-lock:{name}")
                .bytes()
                .fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
                    (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
                });
            let terminated: Vec<bool> = sqlx::query_scalar(
                "SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory' \
                 AND granted AND classid::bigint = $1 AND objid::bigint = $2 AND objsubid = 1",
            )
            .bind(i64::try_from(key >> 32).unwrap())
            .bind(i64::try_from(key & 0xffff_ffff).unwrap())
            .fetch_all(raw)
            .await
            .unwrap();
            assert_eq!(terminated, vec![true], "exactly one session holds the lock");
            let mut gone = false;
            for _ in 0..100 {
                if !guard.is_held().await.unwrap() {
                    gone = true;
                    break;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            assert!(gone, "is_held notices the lost session");
            // The server drops the locks as the terminated backend exits, just after telling
            // the client: poll.
            assert!(
                take_within_2s(&second, &name).await.is_some(),
                "another node takes the lock of a dead session"
            );
        }
        drop(guard);
        invalid(db.try_lock("").await);
        second.close().await;
    }

    pub(crate) async fn oversized_inputs(ctx: Ctx) {
        let db = &ctx.db;
        let (tenant_id, id) = hosted(db, "example.com").await;
        let long = |n: usize| "a".repeat(n);
        bumps(db, 0, async {
            invalid(db.create_tenant(&long(254)).await);
            invalid(
                db.create_user(NewUser {
                    tenant_id: None,
                    email: format!("{}@example.com", long(250)),
                    password_hash: "h".into(),
                    role: Role::Admin,
                })
                .await,
            );
            invalid(
                db.create_user(NewUser {
                    tenant_id: None,
                    email: "a@example.com".into(),
                    password_hash: long(513),
                    role: Role::Admin,
                })
                .await,
            );
            invalid(
                db.create_token(NewToken {
                    tenant_id: None,
                    role: Role::Admin,
                    label: long(254),
                    token_hash: "h".into(),
                    expires_at: None,
                })
                .await,
            );
            let name = format!("{}.example", long(250));
            invalid(
                db.create_domain(
                    NewDomain {
                        tenant_id,
                        name,
                        rua: None,
                        reports_to_service: true,
                    },
                    version("a", 1),
                )
                .await,
            );
            invalid(
                db.create_domain(
                    NewDomain {
                        tenant_id,
                        name: "rua.example".into(),
                        rua: Some(long(1025)),
                        reports_to_service: true,
                    },
                    version("a", 1),
                )
                .await,
            );
            let body = NewVersion {
                body: "x".repeat(64 * 1024 + 1),
                ..version("big", 1)
            };
            invalid(db.add_version(id, body).await);
            invalid(db.add_version(id, version(&long(33), 1)).await);
            let many_mx = NewVersion {
                mx: vec!["mx.example".into(); 65],
                ..version("many", 1)
            };
            invalid(db.add_version(id, many_mx).await);
            let bad_mode = NewVersion {
                mode: "off".into(),
                ..version("mode", 1)
            };
            invalid(db.add_version(id, bad_mode).await);
            invalid(db.set_rua(id, Some(&long(1025))).await);
            let json = format!("\"{}\"", long(64 * 1024));
            invalid(db.set_verification(id, &json, 1).await);
            invalid(
                db.put_certificate(CertRow {
                    chain_pem: long(64 * 1024 + 1),
                    ..cert("example.com", 1)
                })
                .await,
            );
            invalid(db.put_challenge(http01(&long(513), "example.com", 1)).await);
            invalid(db.heartbeat(&long(254), 0, 1).await);
            invalid(db.put_acme_account(&long(2049), "{}").await);
            invalid(db.try_lock(&long(513)).await);
        })
        .await;
        // The largest accepted body round-trips whole.
        let max = NewVersion {
            body: "x".repeat(64 * 1024),
            ..version("max", 1)
        };
        let stored = db.add_version(id, max.clone()).await.unwrap();
        assert_eq!(stored.body, max.body);
    }

    pub(crate) async fn corrupt_rows(ctx: Ctx) {
        let db = &ctx.db;
        let (_, id) = hosted(db, "example.com").await;
        ctx.raw
            .execute("UPDATE host_policy_versions SET mx = 'not json'")
            .await;
        assert!(matches!(
            db.versions(id).await,
            Err(HostDbError::Corrupt(_))
        ));
        assert!(matches!(
            db.load_state().await,
            Err(HostDbError::Corrupt(_))
        ));
    }
}

/// Tries to take lock `name` for up to two seconds (a lock is released asynchronously when its
/// guard is dropped or its session dies).
async fn take_within_2s(db: &HostDb, name: &str) -> Option<mtasts_store::host::LockGuard> {
    for _ in 0..100 {
        if let Some(guard) = db.try_lock(name).await.unwrap() {
            return Some(guard);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    None
}

pub(crate) fn cert(domain: &str, serial: i64) -> CertRow {
    CertRow {
        domain: domain
            .to_ascii_lowercase()
            .trim_end_matches('.')
            .to_string(),
        chain_pem: format!("-----BEGIN CERTIFICATE-----\nchain {serial}\n"),
        key_pem: format!("-----BEGIN PRIVATE KEY-----\nkey {serial}\n"),
        not_before: 1000 * serial,
        not_after: 1000 * serial + 7_776_000,
        issued_by: "https://acme.example/directory".into(),
        updated_at: 1000 * serial,
    }
}

fn http01(token: &str, domain: &str, expires_at: i64) -> ChallengeRow {
    ChallengeRow {
        token: token.into(),
        domain: domain.into(),
        kind: "http-01".into(),
        key_authorization: format!("{}.thumbprint", &token[..token.len().min(100)]),
        cert_pem: None,
        key_pem: None,
        expires_at,
    }
}

#[tokio::test]
async fn unreachable_and_unknown_databases() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let refused = HostDb::open(&format!("postgres://postgres@127.0.0.1:{port}/test")).await;
    assert!(
        matches!(refused, Err(HostDbError::Unavailable(_))),
        "{refused:?}"
    );
    let missing_dir = HostDb::open("sqlite:/nonexistent-dir-mtasts/host.db").await;
    assert!(
        matches!(missing_dir, Err(HostDbError::Unavailable(_))),
        "{missing_dir:?}"
    );
    let unknown = HostDb::open("mysql://localhost/db").await;
    assert!(
        matches!(unknown, Err(HostDbError::Invalid(_))),
        "{unknown:?}"
    );
}

#[tokio::test]
async fn in_memory_sqlite_works() {
    let db = HostDb::open("sqlite::memory:").await.unwrap();
    let (_, id) = hosted(&db, "example.com").await;
    assert_eq!(db.versions(id).await.unwrap().len(), 1);
    // Locks of two in-memory databases are independent.
    let other = HostDb::open("sqlite::memory:").await.unwrap();
    let _a = db.try_lock("x").await.unwrap().unwrap();
    let _b = other.try_lock("x").await.unwrap().unwrap();
}

#[tokio::test]
async fn sqlite_locks_are_per_database_file() {
    let dir = tempfile::tempdir().unwrap();
    let plain = HostDb::open(&format!("sqlite:{}", dir.path().join("a.db").display()))
        .await
        .unwrap();
    // Another spelling of the same file shares its locks; another file does not.
    let spelled = HostDb::open(&format!("sqlite:{}/./a.db", dir.path().display()))
        .await
        .unwrap();
    let other = HostDb::open(&format!("sqlite:{}", dir.path().join("b.db").display()))
        .await
        .unwrap();
    let guard = plain.try_lock("x").await.unwrap().unwrap();
    assert!(spelled.try_lock("x").await.unwrap().is_none());
    assert!(other.try_lock("x").await.unwrap().is_some());
    drop(guard);
    // SQLite locks are released synchronously.
    assert!(spelled.try_lock("x").await.unwrap().is_some());
}

/// Debug output (logs, panics, `{:?}` in tracing fields) never carries key or secret material:
/// private keys, password and token hashes, session id hashes and CSRF tokens.
#[test]
fn debug_leaves_out_secrets() {
    const SECRET: &str = "SECRET-MATERIAL";
    let user = mtasts_store::host::User {
        id: 7,
        tenant_id: Some(3),
        email: "u@example.com".into(),
        password_hash: SECRET.into(),
        role: Role::Owner,
    };
    let new_user = NewUser {
        tenant_id: Some(3),
        email: "u@example.com".into(),
        password_hash: SECRET.into(),
        role: Role::Owner,
    };
    let token = mtasts_store::host::ApiToken {
        id: 9,
        tenant_id: None,
        role: Role::Admin,
        label: "ci".into(),
        token_hash: SECRET.into(),
        created_at: 1,
        last_used: Some(2),
        expires_at: Some(3),
    };
    let new_token = NewToken {
        tenant_id: None,
        role: Role::Admin,
        label: "ci".into(),
        token_hash: SECRET.into(),
        expires_at: None,
    };
    let session = Session {
        id_hash: SECRET.into(),
        user_id: 7,
        csrf_token: format!("{SECRET}-csrf"),
        expires_at: 99,
    };
    let cert = CertRow {
        key_pem: SECRET.into(),
        ..cert("example.com", 1)
    };
    let challenge = ChallengeRow {
        token: "tok".into(),
        domain: "example.com".into(),
        kind: "tls-alpn-01".into(),
        key_authorization: "tok.thumbprint".into(),
        cert_pem: Some("-----BEGIN CERTIFICATE-----".into()),
        key_pem: Some(SECRET.into()),
        expires_at: 5,
    };
    let state = mtasts_store::host::HostState {
        generation: 1,
        domains: vec![],
        certificates: vec![cert.clone()],
        challenges: vec![challenge.clone()],
    };
    for (shown, expected) in [
        (format!("{user:?}"), "u@example.com"),
        (format!("{new_user:?}"), "u@example.com"),
        (format!("{token:?}"), "\"ci\""),
        (format!("{new_token:?}"), "\"ci\""),
        (format!("{session:?}"), "user_id: 7"),
        (format!("{cert:?}"), "not_after"),
        (format!("{challenge:?}"), "tok.thumbprint"),
        (format!("{state:#?}"), "example.com"),
    ] {
        assert!(!shown.contains(SECRET), "{shown}");
        assert!(shown.contains(expected), "{shown}");
    }
}
