//! Keyset pages of `HostDb`: domains by name (every tenant or one) and a domain's versions
//! newest first, on SQLite and PostgreSQL.

use mtasts_store::host::{Domain, HostDb, HostDbError, NewDomain};

use super::{Ctx, Raw, not_found, version};

both_databases!(crate::host::run, crate::host::Kind;
    domain_pages, version_pages);

/// Names whose byte order differs from what a language collation would give (`-` and `.`
/// before digits and letters, digits before letters), all created at the same second.
const NAMES: [&str; 10] = [
    "ab.example",
    "a_b.example",
    "a-b.example",
    "a.example",
    "a0.example",
    "b.example",
    "zz.example",
    "xn--bcher-kva.example",
    "a.b.example",
    "z-9.example",
];

async fn add(db: &HostDb, tenant_id: i64, name: &str) -> Domain {
    db.create_domain(
        NewDomain {
            tenant_id,
            name: name.to_owned(),
            rua: None,
            reports_to_service: true,
        },
        version("v1", 1000),
    )
    .await
    .unwrap()
    .0
}

/// Every page of size `limit`, following each page's last name, checking each page's size.
async fn all_pages(db: &HostDb, tenant_id: Option<i64>, limit: u32) -> Vec<Vec<String>> {
    let mut pages = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = db
            .domains_page(tenant_id, after.as_deref(), limit)
            .await
            .unwrap();
        assert!(page.len() <= limit as usize);
        if page.is_empty() {
            return pages;
        }
        after = page.last().map(|d| d.name.clone());
        pages.push(page.into_iter().map(|d| d.name).collect());
        assert!(pages.len() <= 100, "the pages never end");
    }
}

async fn domain_pages(ctx: Ctx) {
    let db = &ctx.db;
    if let Raw::Postgres(pool) = &ctx.raw {
        // A language collation sorts `_` before digits (bytes: after them) and may ignore
        // punctuation; pages must still come in byte order. Servers without ICU keep theirs.
        let icu: Option<String> = sqlx::query_scalar(
            "SELECT collname::text FROM pg_collation WHERE collname = 'en-US-x-icu'",
        )
        .fetch_optional(pool)
        .await
        .unwrap();
        if icu.is_some() {
            sqlx::query(
                r#"ALTER TABLE host_domains ALTER COLUMN name TYPE TEXT COLLATE "en-US-x-icu""#,
            )
            .execute(pool)
            .await
            .unwrap();
        }
    }
    let one = db.create_tenant("one").await.unwrap();
    let two = db.create_tenant("two").await.unwrap();
    // Alternate the tenants so that neither's names are contiguous in the table.
    for (i, name) in NAMES.iter().enumerate() {
        let tenant = if i % 2 == 0 { one.id } else { two.id };
        add(db, tenant, name).await;
    }
    let mut bytes: Vec<String> = NAMES.iter().map(|n| n.to_string()).collect();
    bytes.sort();
    // Byte order, the order `list_domains` has always had.
    let listed: Vec<String> = db
        .list_domains(None)
        .await
        .unwrap()
        .into_iter()
        .map(|d| d.name)
        .collect();
    assert_eq!(listed, bytes);

    let pages = all_pages(db, None, 2).await;
    assert_eq!(pages.len(), 5);
    assert_eq!(
        pages.iter().map(Vec::len).collect::<Vec<_>>(),
        [2, 2, 2, 2, 2]
    );
    assert_eq!(pages.concat(), bytes);
    assert_eq!(pages[0], ["a-b.example", "a.b.example"]);
    assert_eq!(pages[1], ["a.example", "a0.example"]);
    assert_eq!(pages[2][0], "a_b.example");
    // One page holds all when it is large enough; a page of 0 is empty.
    assert_eq!(all_pages(db, None, 500).await, vec![bytes.clone()]);
    assert!(db.domains_page(None, None, 0).await.unwrap().is_empty());

    // The tenant filter: only that tenant's names, in the same order.
    for tenant in [&one, &two] {
        let theirs: Vec<String> = db
            .list_domains(Some(tenant.id))
            .await
            .unwrap()
            .into_iter()
            .map(|d| d.name)
            .collect();
        assert!(!theirs.is_empty());
        for limit in [1, 3, 100] {
            assert_eq!(all_pages(db, Some(tenant.id), limit).await.concat(), theirs);
        }
    }
    assert!(all_pages(db, Some(9999), 10).await.is_empty());

    // A page starts after the name given, whether or not it still exists, in any spelling.
    let after_a = db.domains_page(None, Some("A.Example."), 3).await.unwrap();
    let names: Vec<&str> = after_a.iter().map(|d| d.name.as_str()).collect();
    assert_eq!(names, ["a0.example", "a_b.example", "ab.example"]);
    let gone = db.domain("a0.example").await.unwrap().unwrap();
    db.delete_domain(gone.id).await.unwrap();
    let after_gone = db.domains_page(None, Some("a0.example"), 1).await.unwrap();
    assert_eq!(after_gone[0].name, "a_b.example");
    let after_last = db.domains_page(None, Some("zz.example"), 10).await.unwrap();
    assert!(after_last.is_empty());

    // What is not a domain name is refused, not searched for.
    for bad in ["", ".", "exa mple.com", "bücher.example", &"a".repeat(300)] {
        let result = db.domains_page(None, Some(bad), 10).await;
        assert!(
            matches!(result, Err(HostDbError::Invalid(_))),
            "{bad:?}: {result:?}"
        );
    }
}

async fn version_pages(ctx: Ctx) {
    let db = &ctx.db;
    let tenant = db.create_tenant("versions").await.unwrap();
    let domain = add(db, tenant.id, "versions.example").await;
    let other = add(db, tenant.id, "other.example").await;
    // Versions made in one second: their order is their number's.
    for n in 2..=7 {
        db.add_version(domain.id, version(&format!("v{n}"), 1000))
            .await
            .unwrap();
    }
    db.add_version(other.id, version("o2", 1000)).await.unwrap();

    let all = db.versions(domain.id).await.unwrap();
    assert_eq!(all.len(), 7);
    let mut pages = Vec::new();
    let mut before = None;
    loop {
        let page = db.versions_page(domain.id, before, 3).await.unwrap();
        if page.is_empty() {
            break;
        }
        assert!(page.len() <= 3);
        before = page.last().map(|v| v.version);
        pages.push(page);
    }
    let numbers: Vec<Vec<i64>> = pages
        .iter()
        .map(|p| p.iter().map(|v| v.version).collect())
        .collect();
    assert_eq!(numbers, [vec![7, 6, 5], vec![4, 3, 2], vec![1]]);
    assert_eq!(pages.concat(), all);
    assert!(pages.iter().flatten().all(|v| v.domain_id == domain.id));

    assert_eq!(
        db.versions_page(domain.id, Some(3), 500).await.unwrap(),
        all[5..].to_vec()
    );
    assert!(
        db.versions_page(domain.id, Some(1), 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        db.versions_page(domain.id, None, 0)
            .await
            .unwrap()
            .is_empty()
    );
    not_found(db.versions_page(9999, None, 10).await);
    not_found(db.versions_page(9999, Some(5), 10).await);

    // One version by number.
    assert_eq!(
        db.version(domain.id, 3).await.unwrap().as_ref(),
        Some(&all[4])
    );
    assert_eq!(db.version(domain.id, 8).await.unwrap(), None);
    assert_eq!(db.version(9999, 1).await.unwrap(), None);

    // Any limit is taken (the store caps it at MAX_PAGE_ROWS).
    let capped = db.versions_page(domain.id, None, u32::MAX).await.unwrap();
    assert_eq!(capped.len(), 7);
}
