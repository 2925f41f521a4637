//! The dashboard over HTTP with a plain hyper client.

use std::time::Duration;

use axum::http::{Method, StatusCode};
use mtasts_host::ratelimit::Rate;
use mtasts_host::state::ApiLimits;

use crate::dashboard::harness::{Harness, PASSWORD, Session, form};

const SECURITY_HEADERS: [(&str, &str); 5] = [
    (
        "content-security-policy",
        "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    ),
    ("x-frame-options", "DENY"),
    ("x-content-type-options", "nosniff"),
    ("referrer-policy", "no-referrer"),
    ("cache-control", "no-store"),
];

#[track_caller]
fn assert_security_headers(reply: &crate::dashboard::harness::Reply, what: &str) {
    for (name, value) in SECURITY_HEADERS {
        assert_eq!(
            reply.headers.get(name).and_then(|v| v.to_str().ok()),
            Some(value),
            "{name} on {what}"
        );
    }
}

async fn add(h: &Harness, session: &Session, domain: &str, mode: &str, mx: &str) -> String {
    let reply = h
        .post(
            "/domains",
            session,
            &[
                ("domain", domain),
                ("mode", mode),
                ("mx", mx),
                ("max_age", "86400"),
            ],
        )
        .await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER, "{}", reply.body);
    reply.location().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_by_password_and_by_token_and_logout() {
    let h = Harness::start().await;
    // Not logged in: every page leads to the login form.
    let home = h.send(Method::GET, "/", &[], None).await;
    assert_eq!(home.status, StatusCode::SEE_OTHER);
    assert_eq!(home.location(), "/login");

    let wrong = h
        .login_reply(&h.alpha.owner_email, "not the password")
        .await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert!(
        wrong
            .body
            .contains("Wrong e-mail address, password or token")
    );
    assert!(wrong.set_cookie("mtasts_session").is_none());

    let reply = h.login_reply(&h.alpha.owner_email, PASSWORD).await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER, "{}", reply.body);
    assert_eq!(reply.location(), "/");
    let cookie = reply.set_cookie("mtasts_session").unwrap();
    let value = cookie
        .split(';')
        .next()
        .unwrap()
        .trim_start_matches("mtasts_session=");
    assert_eq!(value.len(), 64, "32 random bytes in hex: {cookie}");
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/", "Max-Age=43200"] {
        assert!(cookie.contains(attribute), "{attribute} missing: {cookie}");
    }
    assert!(
        !cookie.contains("Secure"),
        "no https public URL configured: {cookie}"
    );

    let session = h.login(&h.alpha.owner_email, PASSWORD).await;
    let home = h.get("/", &session).await;
    assert!(home.body.contains(&h.alpha.owner_email));
    assert!(home.body.contains("(owner)"));

    // The first-start administrator has only a token: empty e-mail, token as the password.
    let admin = h.login("", &h.admin_token).await;
    let home = h.get("/", &admin).await;
    assert!(home.body.contains("API token #1"), "{}", home.body);
    assert!(home.body.contains("(admin)"));
    assert!(
        home.body.contains(r#"name="tenant""#),
        "administrators choose the tenant"
    );
    let bad_token = h
        .login_reply("", "mtasts_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
        .await;
    assert_eq!(bad_token.status, StatusCode::UNAUTHORIZED);

    let out = h.post("/logout", &session, &[]).await;
    assert_eq!(out.status, StatusCode::SEE_OTHER);
    assert!(
        out.set_cookie("mtasts_session")
            .unwrap()
            .contains("Max-Age=0")
    );
    let after = h.get("/", &session).await;
    assert_eq!(
        after.status,
        StatusCode::SEE_OTHER,
        "the session is gone server-side"
    );
    // The administrator's separate session is untouched.
    assert_eq!(h.get("/", &admin).await.status, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn posts_need_the_csrf_token_and_this_origin() {
    let h = Harness::start().await;
    let session = h.login(&h.alpha.owner_email, PASSWORD).await;
    let fields = [
        ("domain", "csrf.example"),
        ("mode", "testing"),
        ("mx", "mx.csrf.example"),
    ];
    let origin = h.url("");

    let mut without: Vec<(&str, &str)> = fields.to_vec();
    let missing = h
        .send(
            Method::POST,
            "/domains",
            &[("cookie", &session.cookie), ("origin", &origin)],
            Some(form(&without)),
        )
        .await;
    assert_eq!(missing.status, StatusCode::FORBIDDEN, "missing token");
    assert_security_headers(&missing, "a CSRF refusal");

    let wrong_token = "0".repeat(64);
    without.insert(0, ("csrf", &wrong_token));
    let wrong = h
        .send(
            Method::POST,
            "/domains",
            &[("cookie", &session.cookie), ("origin", &origin)],
            Some(form(&without)),
        )
        .await;
    assert_eq!(wrong.status, StatusCode::FORBIDDEN, "wrong token");

    let mut right: Vec<(&str, &str)> = vec![("csrf", &session.csrf)];
    right.extend_from_slice(&fields);
    let cross = h
        .send(
            Method::POST,
            "/domains",
            &[
                ("cookie", &session.cookie),
                ("origin", "http://evil.example"),
            ],
            Some(form(&right)),
        )
        .await;
    assert_eq!(cross.status, StatusCode::FORBIDDEN, "cross-origin");
    assert_security_headers(&cross, "an Origin refusal");

    // A sandboxed or no-referrer cross-site page sends `Origin: null`; the browser's
    // Sec-Fetch-Site says where the form really came from.
    let null_cross = h
        .send(
            Method::POST,
            "/domains",
            &[
                ("cookie", &session.cookie),
                ("origin", "null"),
                ("sec-fetch-site", "cross-site"),
            ],
            Some(form(&right)),
        )
        .await;
    assert_eq!(
        null_cross.status,
        StatusCode::FORBIDDEN,
        "null origin, cross-site"
    );

    // Another session's token is not this session's token.
    let other = h.login(&h.beta.owner_email, PASSWORD).await;
    let mut borrowed: Vec<(&str, &str)> = vec![("csrf", &other.csrf)];
    borrowed.extend_from_slice(&fields);
    let reply = h
        .send(
            Method::POST,
            "/domains",
            &[("cookie", &session.cookie)],
            Some(form(&borrowed)),
        )
        .await;
    assert_eq!(
        reply.status,
        StatusCode::FORBIDDEN,
        "another session's token"
    );

    // Nothing was created by the refused POSTs.
    assert!(h.state.db.domain("csrf.example").await.unwrap().is_none());

    // A login POST without the login form's cookie is refused too (login CSRF).
    let login = h
        .send(
            Method::POST,
            "/login",
            &[],
            Some(form(&[
                ("csrf", "x"),
                ("email", &h.alpha.owner_email),
                ("password", PASSWORD),
            ])),
        )
        .await;
    assert_eq!(login.status, StatusCode::FORBIDDEN);

    // The same POST with the token and this host's Origin works.
    let ok = h.post("/domains", &session, &fields).await;
    assert_eq!(ok.status, StatusCode::SEE_OTHER, "{}", ok.body);
    assert!(h.state.db.domain("csrf.example").await.unwrap().is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_response_carries_the_security_headers() {
    let h = Harness::start().await;
    let session = h.login(&h.alpha.owner_email, PASSWORD).await;
    let login = h.send(Method::GET, "/login", &[], None).await;
    assert_security_headers(&login, "/login");
    assert!(
        login
            .set_cookie("mtasts_login")
            .unwrap()
            .contains("HttpOnly")
    );
    let redirect = h.send(Method::GET, "/", &[], None).await;
    assert_security_headers(&redirect, "a redirect");
    let home = h.get("/", &session).await;
    assert_security_headers(&home, "/");
    assert_eq!(
        home.headers.get("content-type").unwrap(),
        "text/html; charset=utf-8"
    );
    assert!(!home.body.contains("<script"), "no script at all");
    assert!(
        !home.body.contains("style="),
        "no inline styles (the CSP forbids them)"
    );
    let css = h.get("/static/style.css", &session).await;
    assert_eq!(css.status, StatusCode::OK);
    assert_eq!(
        css.headers.get("content-type").unwrap(),
        "text/css; charset=utf-8"
    );
    assert_security_headers(&css, "the stylesheet");
    let missing = h.get("/domains/nothing.example", &session).await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert_security_headers(&missing, "a 404 page");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_values_are_escaped_and_errors_shown_in_the_form() {
    let h = Harness::start().await;
    let session = h.login(&h.alpha.owner_email, PASSWORD).await;
    let hostile = r#""><script>alert(1)</script>"#;
    let reply = h
        .post(
            "/domains",
            &session,
            &[("domain", hostile), ("mode", "testing"), ("mx", hostile)],
        )
        .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{}", reply.body);
    assert!(!reply.body.contains("<script>"), "{}", reply.body);
    assert!(reply.body.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert!(
        reply.body.contains(r#"value="&quot;&gt;&lt;script&gt;"#),
        "the field keeps the input, escaped"
    );
    assert!(reply.body.contains(r#"class="error""#), "{}", reply.body);
    assert!(
        reply.body.contains("<strong>domain</strong>"),
        "the field is named"
    );
    assert!(
        !reply.body.trim_start().starts_with('{'),
        "a page, not JSON"
    );

    // A rule error from the policy builder, shown with its rule in the form.
    let reply = h
        .post(
            "/domains",
            &session,
            &[
                ("domain", "rules.example"),
                ("mode", "enforce"),
                ("mx", "192.0.2.1"),
            ],
        )
        .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert!(reply.body.contains("<strong>mx</strong>"), "{}", reply.body);
    assert!(reply.body.contains("RFC 8461 §4.1"), "{}", reply.body);
    let reply = h
        .post(
            "/domains",
            &session,
            &[
                ("domain", "rules.example"),
                ("mode", "enforce"),
                ("mx", "mx.rules.example"),
                ("max_age", "soon"),
            ],
        )
        .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert!(
        reply.body.contains("<strong>max_age</strong>"),
        "{}",
        reply.body
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_tenants_domain_is_not_found() {
    let h = Harness::start().await;
    let alpha = h.login(&h.alpha.owner_email, PASSWORD).await;
    let beta = h.login(&h.beta.owner_email, PASSWORD).await;
    add(
        &h,
        &beta,
        "beta-only.example",
        "testing",
        "mx.beta-only.example",
    )
    .await;

    let list = h.get("/", &alpha).await;
    assert!(!list.body.contains("beta-only.example"));
    let page = h.get("/domains/beta-only.example", &alpha).await;
    assert_eq!(page.status, StatusCode::NOT_FOUND);
    let unknown = h.get("/domains/never-hosted.example", &alpha).await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    assert_eq!(
        page.body, unknown.body,
        "indistinguishable from a domain that does not exist"
    );
    let change = h
        .post(
            "/domains/beta-only.example",
            &alpha,
            &[("mode", "enforce"), ("mx", "mx.beta-only.example")],
        )
        .await;
    assert_eq!(change.status, StatusCode::NOT_FOUND);
    let remove = h
        .post("/domains/beta-only.example/remove", &alpha, &[])
        .await;
    assert_eq!(remove.status, StatusCode::NOT_FOUND);
    // Adding it is not "already hosted" either: nothing tells that another tenant hosts it.
    let taken = h
        .post(
            "/domains",
            &alpha,
            &[
                ("domain", "beta-only.example"),
                ("mode", "testing"),
                ("mx", "mx.x.example"),
            ],
        )
        .await;
    assert_eq!(taken.status, StatusCode::NOT_FOUND);
    assert_eq!(
        taken.body, unknown.body,
        "as for any domain alpha cannot see"
    );
    assert!(!taken.body.contains("already hosted"), "{}", taken.body);

    let domain = h
        .state
        .db
        .domain("beta-only.example")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(domain.tenant_id, h.beta.id);
    assert_eq!(
        h.state.db.versions(domain.id).await.unwrap().len(),
        1,
        "unchanged"
    );

    // The administrator sees every tenant.
    let admin = h.login("", &h.admin_token).await;
    assert!(h.get("/", &admin).await.body.contains("beta-only.example"));
    assert_eq!(
        h.get("/domains/beta-only.example", &admin).await.status,
        StatusCode::OK
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn add_change_and_remove_a_domain() {
    let h = Harness::start().await;
    let session = h.login(&h.alpha.owner_email, PASSWORD).await;
    let location = add(
        &h,
        &session,
        "Shop.Example",
        "testing",
        "mx1.shop.example\r\n*.mx.shop.example",
    )
    .await;
    assert_eq!(location, "/domains/shop.example");

    let page = h.get(&location, &session).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        page.body
            .contains("mode: testing\nmx: mx1.shop.example\nmx: *.mx.shop.example\nmax_age: 86400"),
        "{}",
        page.body
    );
    // The TXT targets carry the label of the tenant hosting the domain.
    let tenant_id = h
        .state
        .db
        .domain("shop.example")
        .await
        .unwrap()
        .unwrap()
        .tenant_id;
    assert!(
        page.body.contains(&format!(
            "_mta-sts.shop.example.t{tenant_id}.mta-sts.provider.test."
        )),
        "{}",
        page.body
    );
    assert!(page.body.contains("policy.mta-sts.provider.test."));
    // Records are named in words, not by the API's internal names (issue 8).
    assert!(
        page.body.contains("<td>MTA-STS record</td>"),
        "{}",
        page.body
    );
    assert!(page.body.contains("<td>Policy host</td>"), "{}", page.body);
    assert!(!page.body.contains("sts_record"), "{}", page.body);
    assert!(!page.body.contains("policy_host"), "{}", page.body);
    assert!(
        page.body
            .contains(r#"<span class="badge neutral">unchecked</span>"#)
    );
    assert!(
        page.body
            .contains(r#"<span class="badge warn">pending</span>"#),
        "not published yet"
    );
    assert!(page.body.contains("§8.3"), "the removal is explained");
    assert_eq!(page.body.matches(r#"class="version-row""#).count(), 1);

    let list = h.get("/", &session).await;
    assert!(
        list.body
            .contains(r#"<a href="/domains/shop.example">shop.example</a>"#)
    );
    assert_eq!(list.body.matches(r#"class="domain-row""#).count(), 1);
    assert!(list.body.contains("MTA-STS record"), "{}", list.body);
    assert!(list.body.contains("Policy host"), "{}", list.body);
    assert!(!list.body.contains("sts_record"), "{}", list.body);
    assert!(!list.body.contains("policy_host"), "{}", list.body);

    // Without mx the domain's MX records are used.
    h.net
        .zone()
        .add_mx("lookup.example", 10, "mail.lookup.example");
    let location = add(&h, &session, "lookup.example", "testing", "").await;
    let page = h.get(&location, &session).await;
    assert!(
        page.body.contains("mx: mail.lookup.example"),
        "{}",
        page.body
    );

    // Changing the mode makes a new version with a new id.
    let reply = h
        .post(
            "/domains/shop.example",
            &session,
            &[
                ("mode", "enforce"),
                ("mx", "mx1.shop.example\n*.mx.shop.example"),
                ("max_age", "86400"),
            ],
        )
        .await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER, "{}", reply.body);
    let page = h.get("/domains/shop.example", &session).await;
    assert!(page.body.contains("mode: enforce"));
    assert_eq!(page.body.matches(r#"class="version-row""#).count(), 2);
    let domain = h.state.db.domain("shop.example").await.unwrap().unwrap();
    let versions = h.state.db.versions(domain.id).await.unwrap();
    assert_eq!(versions.len(), 2);
    assert_eq!(versions[0].mode, "enforce");
    assert_ne!(versions[0].policy_id, versions[1].policy_id);

    // An invalid change is shown in the form, with what was typed; nothing changes.
    let reply = h
        .post(
            "/domains/shop.example",
            &session,
            &[("mode", "enforce"), ("mx", ""), ("max_age", "86400")],
        )
        .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert!(reply.body.contains("<strong>mx</strong>"), "{}", reply.body);
    assert_eq!(h.state.db.versions(domain.id).await.unwrap().len(), 2);

    // A TLS-RPT report address: the fourth CNAME appears, the policy keeps its version.
    let tlsrpt_target = &format!("_smtp._tls.shop.example.t{tenant_id}.mta-sts.provider.test.");
    assert!(
        page.body.contains(r#"name="rua" value="""#),
        "{}",
        page.body
    );
    assert!(!page.body.contains(tlsrpt_target));
    let same_policy = [
        ("mode", "enforce"),
        ("mx", "mx1.shop.example\n*.mx.shop.example"),
        ("max_age", "86400"),
    ];
    let with_rua = |rua: &'static str| {
        let mut fields = same_policy.to_vec();
        fields.push(("rua", rua));
        fields
    };
    let reply = h
        .post(
            "/domains/shop.example",
            &session,
            &with_rua(" mailto:tlsrpt@shop.example , https://reports.shop.example/v1\r\n"),
        )
        .await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER, "{}", reply.body);
    let page = h.get("/domains/shop.example", &session).await;
    let rua = "mailto:tlsrpt@shop.example,https://reports.shop.example/v1";
    assert!(
        page.body.contains(&format!("<dd><code>{rua}</code></dd>")),
        "shown on the detail page: {}",
        page.body
    );
    assert!(
        page.body.contains(&format!(r#"name="rua" value="{rua}""#)),
        "and in the change form"
    );
    assert!(page.body.contains(tlsrpt_target), "{}", page.body);
    assert!(
        page.body.contains("<td>TLS-RPT record</td>"),
        "{}",
        page.body
    );
    assert_eq!(page.body.matches(r#"class="version-row""#).count(), 2);
    let stored = h.state.db.domain("shop.example").await.unwrap().unwrap();
    assert_eq!(stored.rua.as_deref(), Some(rua));
    assert_eq!(h.state.db.versions(domain.id).await.unwrap().len(), 2);

    // An invalid one is shown in the form with its rule, as typed; the stored one stays.
    let reply = h
        .post(
            "/domains/shop.example",
            &session,
            &with_rua("http://reports.shop.example/<v1>"),
        )
        .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{}", reply.body);
    assert!(
        reply.body.contains("<strong>rua</strong>"),
        "{}",
        reply.body
    );
    assert!(reply.body.contains("RFC 8460 §3"), "{}", reply.body);
    assert!(
        reply
            .body
            .contains(r#"value="http://reports.shop.example/&lt;v1&gt;""#),
        "{}",
        reply.body
    );
    let stored = h.state.db.domain("shop.example").await.unwrap().unwrap();
    assert_eq!(stored.rua.as_deref(), Some(rua));

    // Emptying the field removes it, and the fourth CNAME with it.
    let reply = h
        .post("/domains/shop.example", &session, &with_rua(" "))
        .await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER, "{}", reply.body);
    let page = h.get("/domains/shop.example", &session).await;
    assert!(!page.body.contains(tlsrpt_target), "{}", page.body);
    assert!(
        page.body
            .contains("none (no <code>_smtp._tls</code> record)")
    );
    let stored = h.state.db.domain("shop.example").await.unwrap().unwrap();
    assert_eq!(stored.rua, None);
    assert_eq!(h.state.db.versions(domain.id).await.unwrap().len(), 2);

    // Added with one from the add form.
    let reply = h
        .post(
            "/domains",
            &session,
            &[
                ("domain", "reports.example"),
                ("mode", "testing"),
                ("mx", "mx.reports.example"),
                ("rua", "mailto:tlsrpt@reports.example"),
            ],
        )
        .await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER, "{}", reply.body);
    let page = h.get(reply.location(), &session).await;
    assert!(
        page.body
            .contains("<dd><code>mailto:tlsrpt@reports.example</code></dd>"),
        "{}",
        page.body
    );
    let tenant_id = h
        .state
        .db
        .domain("reports.example")
        .await
        .unwrap()
        .unwrap()
        .tenant_id;
    assert!(page.body.contains(&format!(
        "_smtp._tls.reports.example.t{tenant_id}.mta-sts.provider.test."
    )));
    let reply = h
        .post(
            "/domains",
            &session,
            &[
                ("domain", "badrua.example"),
                ("mode", "testing"),
                ("mx", "mx.badrua.example"),
                ("rua", "mailto:"),
            ],
        )
        .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{}", reply.body);
    assert!(
        reply.body.contains("<strong>rua</strong>"),
        "{}",
        reply.body
    );
    assert!(reply.body.contains(r#"name="rua" value="mailto:""#));
    assert!(h.state.db.domain("badrua.example").await.unwrap().is_none());

    // Removal: mode none first, the domain stays as "removing".
    let reply = h.post("/domains/shop.example/remove", &session, &[]).await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER, "{}", reply.body);
    let page = h.get("/domains/shop.example", &session).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        page.body
            .contains(r#"<span class="badge warn">removing</span>"#)
    );
    assert!(page.body.contains("mode: none"));
    assert!(
        page.body
            .contains("Removing: a <code>mode: none</code> policy is served until")
    );
    assert!(
        !page.body.contains("Save changes"),
        "a removing domain cannot change"
    );
    assert_eq!(page.body.matches(r#"class="version-row""#).count(), 3);
    let list = h.get("/", &session).await;
    assert!(list.body.contains("removing"));

    // Cancel the removal: the policy before it returns as a fourth version.
    assert!(
        page.body
            .contains(r#"<form method="post" action="/domains/shop.example/restore">"#),
        "{}",
        page.body
    );
    let reply = h.post("/domains/shop.example/restore", &session, &[]).await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER, "{}", reply.body);
    let page = h.get("/domains/shop.example", &session).await;
    assert!(page.body.contains("Save changes"), "active again");
    assert!(!page.body.contains("Cancel removal"));
    assert_eq!(page.body.matches(r#"class="version-row""#).count(), 4);
    let again = h.post("/domains/shop.example/restore", &session, &[]).await;
    assert_eq!(again.status, StatusCode::CONFLICT);
    assert!(again.body.contains("not being removed"), "{}", again.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logins_are_rate_limited_per_client() {
    let h = Harness::start_with(ApiLimits {
        login: Rate {
            burst: 2,
            refill_every: Duration::from_secs(600),
        },
        ..ApiLimits::default()
    })
    .await;
    for _ in 0..2 {
        let reply = h.login_reply(&h.alpha.owner_email, "wrong").await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    }
    let refused = h.login_reply(&h.alpha.owner_email, PASSWORD).await;
    assert_eq!(
        refused.status,
        StatusCode::TOO_MANY_REQUESTS,
        "{}",
        refused.body
    );
    assert!(refused.headers.get("retry-after").is_some());
    assert!(refused.body.contains("Too many"));
    assert!(refused.set_cookie("mtasts_session").is_none());
    // Token logins share the limit.
    let refused = h.login_reply("", &h.admin_token).await;
    assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS);
}

/// The report address: the add form's checkbox is on by default and sends the reports to the
/// service; the domain page says which addresses are in effect, shows the published `rua`,
/// the DMARC address to add and the authorization record; unticking keeps only the owner's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_domain_page_says_where_reports_go() {
    let h = Harness::start().await;
    let session = h.login(&h.alpha.owner_email, PASSWORD).await;
    let list = h.get("/", &session).await;
    assert!(
        list.body
            .contains(r#"<input type="checkbox" name="reports_to_service" value="on" checked>"#),
        "{}",
        list.body
    );
    let reply = h
        .post(
            "/domains",
            &session,
            &[
                ("domain", "mail.example"),
                ("mode", "testing"),
                ("mx", "mx.mail.example"),
                ("reports_to_service", "on"),
            ],
        )
        .await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER, "{}", reply.body);
    let page = h.get("/domains/mail.example", &session).await;
    let zone = "mta-sts.provider.test";
    let service = format!("mailto:tlsrpt@reports.{zone},https://reports.{zone}/tlsrpt");
    assert!(
        page.body.contains("Reports go to this service."),
        "{}",
        page.body
    );
    assert!(
        page.body
            .contains(&format!("<dd><code>{service}</code></dd>")),
        "{}",
        page.body
    );
    assert!(
        page.body.contains("<td>TLS-RPT record</td>"),
        "{}",
        page.body
    );
    assert!(
        page.body
            .contains(&format!("<code>mailto:dmarc@reports.{zone}</code>")),
        "{}",
        page.body
    );
    assert!(
        page.body.contains(&format!(
            "<code>mail.example._report._dmarc.reports.{zone}. TXT \"v=DMARC1\"</code>"
        )),
        "{}",
        page.body
    );
    assert!(
        page.body
            .contains(r#"<input type="checkbox" name="reports_to_service" value="on" checked>"#),
        "the change form shows the setting: {}",
        page.body
    );

    // Both: the service first, then the owner's.
    let policy = [
        ("mode", "testing"),
        ("mx", "mx.mail.example"),
        ("max_age", "604800"),
    ];
    let mut both = policy.to_vec();
    both.extend([
        ("rua", "mailto:me@mail.example"),
        ("reports_to_service", "on"),
    ]);
    let reply = h.post("/domains/mail.example", &session, &both).await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER, "{}", reply.body);
    let page = h.get("/domains/mail.example", &session).await;
    assert!(
        page.body.contains(
            "Reports go to this service and to your own address <code>mailto:me@mail.example</code>."
        ),
        "{}",
        page.body
    );
    assert!(
        page.body
            .contains(&format!("<code>{service},mailto:me@mail.example</code>")),
        "{}",
        page.body
    );

    // Unticked: only the owner's; then without a rua of their own, nowhere.
    let mut own = policy.to_vec();
    own.push(("rua", "mailto:me@mail.example"));
    let reply = h.post("/domains/mail.example", &session, &own).await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER, "{}", reply.body);
    let page = h.get("/domains/mail.example", &session).await;
    assert!(
        page.body
            .contains("Reports go only to your own address <code>mailto:me@mail.example</code>"),
        "{}",
        page.body
    );
    assert!(
        page.body
            .contains(r#"<input type="checkbox" name="reports_to_service" value="on">"#),
        "{}",
        page.body
    );
    let stored = h.state.db.domain("mail.example").await.unwrap().unwrap();
    assert!(!stored.reports_to_service);
    let mut nowhere = policy.to_vec();
    nowhere.push(("rua", ""));
    let reply = h.post("/domains/mail.example", &session, &nowhere).await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER, "{}", reply.body);
    let page = h.get("/domains/mail.example", &session).await;
    assert!(page.body.contains("Reports go nowhere"), "{}", page.body);
    assert!(
        !page.body.contains("<td>TLS-RPT record</td>"),
        "{}",
        page.body
    );
    // The DMARC address is shown whatever the TLS-RPT choice.
    assert!(page.body.contains(&format!("mailto:dmarc@reports.{zone}")));
}
