//! Secrets at rest in the hosting database: sealed columns hold no plaintext and read back,
//! a missing or wrong key is named, resealing and key rotation (SQLite and PostgreSQL); and
//! the file modes of every SQLite database.

use std::os::unix::fs::PermissionsExt;

use mtasts_store::host::{ChallengeRow, HostDb, HostDbError, SealError, Sealer, SecretKey};

use crate::host::{Ctx, Kind, Raw, cert, hosted, run};

const DIRECTORY: &str = "https://acme.example/directory";
const ACCOUNT: &str = r#"{"id":"https://acme.example/acct/1","key_pkcs8":"MIGHAgEAMBMG"}"#;

fn key(byte: u8) -> SecretKey {
    SecretKey::from_hex(&format!("{byte:02x}").repeat(32)).unwrap()
}

fn sealer(current: u8, previous: &[u8]) -> Sealer {
    let previous: Vec<SecretKey> = previous.iter().map(|b| key(*b)).collect();
    Sealer::new(&key(current), &previous)
}

fn alpn(token: &str, domain: &str) -> ChallengeRow {
    ChallengeRow {
        token: token.into(),
        domain: domain.into(),
        kind: "tls-alpn-01".into(),
        key_authorization: format!("{token}.thumbprint"),
        cert_pem: Some("-----BEGIN CERTIFICATE-----\nalpn\n".into()),
        key_pem: Some("-----BEGIN PRIVATE KEY-----\nalpn key\n".into()),
        expires_at: i64::MAX,
    }
}

/// The three secret columns as stored, one row each.
async fn stored(raw: &Raw) -> [String; 3] {
    const QUERIES: [&str; 3] = [
        "SELECT key_pem FROM host_certificates WHERE domain = 'a.example'",
        "SELECT credentials_json FROM host_acme_accounts",
        "SELECT key_pem FROM host_challenges WHERE token = 'tok'",
    ];
    let mut out: [String; 3] = Default::default();
    for (slot, query) in out.iter_mut().zip(QUERIES) {
        *slot = match raw {
            Raw::Sqlite(pool) => sqlx::query_scalar(query).fetch_one(pool).await.unwrap(),
            Raw::Postgres(pool) => sqlx::query_scalar(query).fetch_one(pool).await.unwrap(),
        };
    }
    out
}

/// One certificate, one ACME account and one TLS-ALPN-01 challenge, written through `db`.
async fn write_secrets(db: &HostDb) {
    hosted(db, "a.example").await;
    hosted(db, "b.example").await;
    db.put_certificate(cert("a.example", 1)).await.unwrap();
    db.put_certificate(cert("b.example", 2)).await.unwrap();
    db.put_acme_account(DIRECTORY, ACCOUNT).await.unwrap();
    db.put_challenge(alpn("tok", "a.example")).await.unwrap();
}

/// Every secret reads back as written, through every reader.
async fn reads_back(db: &HostDb) {
    assert_eq!(
        db.certificate("a.example").await.unwrap(),
        Some(cert("a.example", 1))
    );
    assert_eq!(
        db.certificates().await.unwrap(),
        vec![cert("a.example", 1), cert("b.example", 2)]
    );
    assert_eq!(
        db.acme_account(DIRECTORY).await.unwrap().as_deref(),
        Some(ACCOUNT)
    );
    assert_eq!(
        db.challenges(0).await.unwrap(),
        vec![alpn("tok", "a.example")]
    );
    let state = db.load_state().await.unwrap();
    assert_eq!(
        state.certificates,
        vec![cert("a.example", 1), cert("b.example", 2)]
    );
    assert_eq!(state.challenges, vec![alpn("tok", "a.example")]);
}

fn unknown_key(result: Result<impl std::fmt::Debug, HostDbError>, id: &str) {
    match result {
        Err(HostDbError::Sealed(SealError::UnknownKey { key_id })) => assert_eq!(key_id, id),
        other => panic!("expected the unknown key {id}, got {other:?}"),
    }
}

async fn sealed_rows_hold_no_plaintext(ctx: Ctx) {
    let db = ctx.db.clone().with_secret_keys(sealer(1, &[]));
    write_secrets(&db).await;
    let prefix = format!("mtasts-sealed:v1:{}:", key(1).id());
    for value in stored(&ctx.raw).await {
        assert!(value.starts_with(&prefix), "{value}");
        assert!(!value.contains("PRIVATE KEY"), "{value}");
        assert!(!value.contains("key_pkcs8"), "{value}");
    }
    reads_back(&db).await;
    // Already sealed under the current key: nothing to do.
    assert_eq!(db.reseal_secrets().await.unwrap(), 0);

    // Without the key, or with another one, every reader names the key it needs.
    for other in [
        ctx.db.clone(),
        ctx.db.clone().with_secret_keys(sealer(2, &[])),
    ] {
        unknown_key(other.certificate("a.example").await, key(1).id());
        unknown_key(other.certificates().await, key(1).id());
        unknown_key(other.acme_account(DIRECTORY).await, key(1).id());
        unknown_key(other.challenges(0).await, key(1).id());
        unknown_key(other.load_state().await, key(1).id());
        unknown_key(other.reseal_secrets().await, key(1).id());
    }

    // A sealed key copied into another row does not open there.
    ctx.raw
        .execute(
            "UPDATE host_certificates SET key_pem = \
             (SELECT key_pem FROM host_certificates WHERE domain = 'a.example') \
             WHERE domain = 'b.example'",
        )
        .await;
    assert!(matches!(
        db.certificate("b.example").await,
        Err(HostDbError::Sealed(SealError::Undecryptable { .. }))
    ));
}

async fn secrets_are_resealed_and_keys_rotate(ctx: Ctx) {
    // Written before any key was configured: plaintext, read by anyone.
    write_secrets(&ctx.db).await;
    assert!(stored(&ctx.raw).await[0].contains("PRIVATE KEY"));
    assert_eq!(ctx.db.reseal_secrets().await.unwrap(), 0);

    // A key is configured: every secret is sealed under it, once.
    let first = ctx.db.clone().with_secret_keys(sealer(1, &[]));
    reads_back(&first).await;
    assert_eq!(first.reseal_secrets().await.unwrap(), 4);
    assert_eq!(first.reseal_secrets().await.unwrap(), 0);
    for value in stored(&ctx.raw).await {
        assert!(first.sealer().unwrap().is_current(&value), "{value}");
    }
    reads_back(&first).await;

    // Rotation: the new key current, the old one previous; resealing moves everything over.
    let rotating = ctx.db.clone().with_secret_keys(sealer(2, &[1]));
    reads_back(&rotating).await;
    assert_eq!(rotating.reseal_secrets().await.unwrap(), 4);
    let prefix = format!("mtasts-sealed:v1:{}:", key(2).id());
    for value in stored(&ctx.raw).await {
        assert!(value.starts_with(&prefix), "{value}");
    }
    // The old key can now go; the old key alone no longer opens anything.
    let rotated = ctx.db.clone().with_secret_keys(sealer(2, &[]));
    assert_eq!(rotated.reseal_secrets().await.unwrap(), 0);
    reads_back(&rotated).await;
    unknown_key(first.certificate("a.example").await, key(2).id());
}

both_databases!(super::run, super::Kind;

    sealed_rows_hold_no_plaintext,
    secrets_are_resealed_and_keys_rotate
);

fn mode(path: &std::path::Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// A new SQLite database, its `-wal` and `-shm` are private whatever the umask (the test
/// process runs under the usual 022, which made them 0644 before).
#[tokio::test]
async fn a_new_sqlite_database_is_private() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("serve.db");
    let db = HostDb::open(&format!("sqlite:{}", path.display()))
        .await
        .unwrap();
    hosted(&db, "a.example").await;
    for name in ["serve.db", "serve.db-wal", "serve.db-shm"] {
        let file = dir.path().join(name);
        assert!(file.exists(), "{name}");
        assert_eq!(mode(&file), 0o600, "{name}");
    }
    db.close().await;

    // The other SQLite databases are opened the same way.
    let reports = dir.path().join("reports.db");
    let store = mtasts_store::reports::ReportDb::open(&format!("sqlite:{}", reports.display()))
        .await
        .unwrap();
    drop(store);
    assert_eq!(mode(&reports), 0o600);
}

/// An existing database (and its `-wal`/`-shm`) that group or others could read is tightened
/// when it is opened.
#[tokio::test]
async fn an_existing_readable_sqlite_database_is_tightened() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("serve.db");
    let url = format!("sqlite:{}", path.display());
    HostDb::open(&url).await.unwrap().close().await;
    let wal = dir.path().join("serve.db-wal");
    std::fs::write(&wal, b"").unwrap();
    for file in [&path, &wal] {
        std::fs::set_permissions(file, std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    let db = HostDb::open(&url).await.unwrap();
    assert_eq!(mode(&path), 0o600);
    assert_eq!(mode(&wal), 0o600);
    db.close().await;
}
