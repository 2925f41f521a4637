//! Bounded dashboard pages and writes: the domain list and a domain's history show 50 rows a
//! page with a "Next page" link, so 1,000 domains or 2,000 versions make a small page; every
//! change spends the principal's budget of API calls (429 with `Retry-After` beyond it).

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use mtasts_host::ratelimit::Rate;
use mtasts_host::state::{ApiLimits, PrincipalKey};
use mtasts_store::host::{HostDb, NewDomain, NewVersion};

use crate::dashboard::harness::{Harness, PASSWORD, Reply};

/// Far below the 1.15 MB a list of ~930 domains made when it showed them all.
const MAX_PAGE_BYTES: usize = 100 * 1024;

fn version(policy_id: &str, max_age: i64) -> NewVersion {
    NewVersion {
        policy_id: policy_id.to_owned(),
        mode: "testing".to_owned(),
        mx: vec!["mx.example.net".to_owned()],
        max_age,
        body: format!(
            "version: STSv1\r\nmode: testing\r\nmx: mx.example.net\r\nmax_age: {max_age}\r\n"
        ),
        now: 1_800_000_000,
    }
}

async fn host(db: &HostDb, tenant_id: i64, name: &str) -> i64 {
    db.create_domain(
        NewDomain {
            tenant_id,
            name: name.to_owned(),
            rua: None,
            reports_to_service: true,
        },
        version("v1", 86_400),
    )
    .await
    .unwrap()
    .0
    .id
}

/// The target of the page's "Next page" link, if it has one.
fn next_link(page: &Reply) -> Option<String> {
    let at = page.body.find(r#"class="next-page""#)?;
    let start = page.body[..at].rfind("href=\"")? + "href=\"".len();
    let end = start + page.body[start..].find('"')?;
    Some(page.body[start..end].replace("&amp;", "&"))
}

/// The domains a list page shows.
fn listed(page: &Reply) -> Vec<String> {
    page.body
        .split(r#"<tr class="domain-row"><td><a href="/domains/"#)
        .skip(1)
        .map(|row| row.split('"').next().unwrap().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_domains_make_small_pages() {
    let h = Harness::start().await;
    let mut names = BTreeSet::new();
    for i in 0..1_000 {
        let name = format!("d{i:04}.pages.example");
        host(&h.state.db, h.alpha.id, &name).await;
        names.insert(name);
    }
    host(&h.state.db, h.beta.id, "theirs.pages.example").await;
    let session = h.login(&h.alpha.owner_email, PASSWORD).await;

    let first = h.get("/", &session).await;
    assert_eq!(first.status, StatusCode::OK);
    assert!(
        first.body.len() < MAX_PAGE_BYTES,
        "{} bytes",
        first.body.len()
    );
    assert_eq!(listed(&first).len(), 50);
    assert!(!first.body.contains("First page"));

    // Following "Next page" walks every domain once, in order, 50 at a time.
    let mut seen = listed(&first);
    let mut link = next_link(&first);
    let mut pages = 1;
    while let Some(href) = link {
        assert!(href.starts_with("/?cursor="), "{href}");
        let page = h.get(&href, &session).await;
        assert_eq!(page.status, StatusCode::OK, "{href}");
        assert!(page.body.len() < MAX_PAGE_BYTES);
        assert!(
            page.body
                .contains(r#"<a href="/" class="first-page">First page</a>"#)
        );
        let rows = listed(&page);
        assert!(!rows.is_empty() && rows.len() <= 50);
        seen.extend(rows);
        link = next_link(&page);
        pages += 1;
        assert!(pages <= 25, "the pages never end");
    }
    assert_eq!(pages, 20);
    assert_eq!(seen, names.into_iter().collect::<Vec<_>>());

    // A link this dashboard did not make is a 400 page, not an error or a guess.
    for bad in ["/?cursor=zz", "/?cursor=", "/?cursor=a&cursor=b"] {
        let page = h.get(bad, &session).await;
        assert_eq!(page.status, StatusCode::BAD_REQUEST, "{bad}");
        assert!(page.body.contains("page link is not valid"), "{bad}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_thousand_versions_make_small_pages() {
    let h = Harness::start().await;
    let db = &h.state.db;
    let id = host(db, h.alpha.id, "history.pages.example").await;
    for n in 2..=2_000 {
        db.add_version(id, version(&format!("v{n}"), 86_400 + n))
            .await
            .unwrap();
    }
    let session = h.login(&h.alpha.owner_email, PASSWORD).await;
    let page = h.get("/domains/history.pages.example", &session).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        page.body.len() < MAX_PAGE_BYTES,
        "{} bytes",
        page.body.len()
    );
    assert_eq!(page.body.matches(r#"class="version-row""#).count(), 50);
    assert!(page.body.contains("<td>2000</td>") && page.body.contains("<td>1951</td>"));
    assert!(!page.body.contains("<td>1950</td>"));

    let href = next_link(&page).expect("a next page");
    assert!(
        href.starts_with("/domains/history.pages.example?cursor="),
        "{href}"
    );
    let second = h.get(&href, &session).await;
    assert_eq!(second.status, StatusCode::OK);
    assert_eq!(second.body.matches(r#"class="version-row""#).count(), 50);
    assert!(second.body.contains("<td>1950</td>") && second.body.contains("<td>1901</td>"));
    assert!(!second.body.contains("<td>1951</td>"));
    assert!(second.body.contains("First page"));
    // The domain's own facts are the newest version's on every page.
    assert!(second.body.contains("max_age: 88400"));

    let bad = h
        .get("/domains/history.pages.example?cursor=00", &session)
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
}

/// 2,000 changes through one session: after the burst every one is refused with 429 and
/// `Retry-After`, in the same budget the session's token spends on API calls.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_writes_share_the_api_rate_limit() {
    const BURST: u32 = 5;
    let h = Harness::start_with(ApiLimits {
        api: Rate {
            burst: BURST,
            refill_every: Duration::from_secs(600),
        },
        ..ApiLimits::default()
    })
    .await;
    host(&h.state.db, h.alpha.id, "limited.pages.example").await;
    let session = h.login(&h.alpha.owner_email, PASSWORD).await;
    let mut accepted = 0;
    let mut last = None;
    for i in 0..2_000 {
        let max_age = (86_401 + i).to_string();
        let reply = h
            .post(
                "/domains/limited.pages.example",
                &session,
                &[
                    ("mode", "testing"),
                    ("mx", "mx.example.net"),
                    ("max_age", &max_age),
                ],
            )
            .await;
        match reply.status {
            StatusCode::SEE_OTHER => accepted += 1,
            StatusCode::TOO_MANY_REQUESTS => last = Some(reply),
            other => panic!("change {i}: {other}: {}", reply.body),
        }
    }
    assert_eq!(accepted, BURST);
    let refused = last.expect("changes were refused");
    let retry: u64 = refused.headers["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=600).contains(&retry), "{retry}");
    assert!(refused.body.contains("Try again in"), "{}", refused.body);
    let domain = h
        .state
        .db
        .domain("limited.pages.example")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(domain.latest_version, 1 + i64::from(BURST));
    // Other writes are refused too; reading and logging out are not limited.
    let add = h
        .post(
            "/domains",
            &session,
            &[
                ("domain", "more.pages.example"),
                ("mode", "testing"),
                ("mx", "mx.example.net"),
            ],
        )
        .await;
    assert_eq!(add.status, StatusCode::TOO_MANY_REQUESTS);
    let remove = h
        .post("/domains/limited.pages.example/remove", &session, &[])
        .await;
    assert_eq!(remove.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(h.get("/", &session).await.status, StatusCode::OK);
    assert_eq!(
        h.post("/logout", &session, &[]).await.status,
        StatusCode::SEE_OTHER
    );

    // Another user has a budget of its own.
    let other = h.login(&h.beta.owner_email, PASSWORD).await;
    let add = h
        .post(
            "/domains",
            &other,
            &[
                ("domain", "beta.pages.example"),
                ("mode", "testing"),
                ("mx", "mx.example.net"),
            ],
        )
        .await;
    assert_eq!(add.status, StatusCode::SEE_OTHER, "{}", add.body);

    // A token's dashboard session spends the token's API budget.
    let admin = h.login("", &h.admin_token).await;
    for i in 0..BURST {
        let reply = h
            .post(
                "/domains",
                &admin,
                &[
                    ("domain", &format!("admin{i}.pages.example")),
                    ("tenant", "alpha"),
                    ("mode", "testing"),
                    ("mx", "mx.example.net"),
                ],
            )
            .await;
        assert_eq!(reply.status, StatusCode::SEE_OTHER, "{}", reply.body);
    }
    let token = h
        .state
        .db
        .tokens(None)
        .await
        .unwrap()
        .into_iter()
        .find(|t| t.tenant_id.is_none())
        .unwrap();
    assert!(
        h.state
            .limiters
            .api
            .check(&PrincipalKey::Token(token.id), Instant::now())
            .is_err(),
        "the API would refuse the token now"
    );
}
