//! The report routes: reports stored the way `mtasts report import --database` stores them
//! (`Intake::input` on the serve database) come back through the API with the numbers that
//! were stored, duplicates counted once, each tenant seeing only the reports of the domains
//! it hosts and administrators the reports nobody hosts.

use axum::http::{Method, StatusCode, header};
use mtasts_host::node::retention::Retention;
use mtasts_proto::readiness::date::DAY;
use mtasts_proto::tlsrpt::report::UtcTime;
use mtasts_report::Limits;
use mtasts_report::intake::Intake;
use serde_json::Value;

use crate::api::harness::{Backend, Harness, T0};
use crate::support::http;

crate::api::on_both_databases!(
    tls_numbers_are_what_was_stored_and_other_tenants_see_none,
    dmarc_sources_and_the_next_step,
    readiness_says_enforce_is_safe_after_a_clean_week,
    the_report_list_pages_and_filters,
    unhosted_reports_are_on_the_administrators_list,
    bad_queries_are_refused,
    a_mailed_report_shows_how_it_arrived,
    a_report_naming_two_tenants_domains_shows_each_its_part,
);

/// 00:00 UTC of the harness clock's day (2027-01-15).
const TODAY: i64 = T0 - T0 % DAY;

fn rfc3339(t: i64) -> String {
    UtcTime::from_unix_seconds(t).unwrap().to_string()
}

/// A failure detail: result type, sessions, receiving MX, receiving IP, sending IP.
type Failure<'a> = (&'a str, u64, &'a str, &'a str, &'a str);

/// A TLS report (RFC 8460) of one day for `domain`'s testing policy with mx1 and *.mx.
fn tls_json(
    org: &str,
    id: &str,
    domain: &str,
    day: i64,
    success: u64,
    failures: &[Failure<'_>],
) -> String {
    let failed: u64 = failures.iter().map(|f| f.1).sum();
    let details: Vec<String> = failures
        .iter()
        .map(|(result, count, mx, rip, sip)| {
            format!(
                r#"{{"result-type": "{result}", "failed-session-count": {count},
                    "receiving-mx-hostname": "{mx}", "receiving-ip": "{rip}",
                    "sending-mta-ip": "{sip}"}}"#
            )
        })
        .collect();
    format!(
        r#"{{"organization-name": "{org}", "report-id": "{id}",
          "date-range": {{"start-datetime": "{}", "end-datetime": "{}"}},
          "contact-info": "tlsrpt@{org}",
          "policies": [{{
            "policy": {{"policy-type": "sts", "policy-domain": "{domain}",
              "policy-string": ["version: STSv1", "mode: testing", "mx: mx1.{domain}",
                "mx: *.mx.{domain}", "max_age: 86400"],
              "mx-host": ["mx1.{domain}", "*.mx.{domain}"]}},
            "summary": {{"total-successful-session-count": {success},
              "total-failure-session-count": {failed}}},
            "failure-details": [{}]}}]}}"#,
        rfc3339(day),
        rfc3339(day + DAY - 1),
        details.join(", ")
    )
}

/// A DMARC aggregate report of one day for `domain` (`p=none`): 40 aligned messages from
/// 192.0.2.10 and 5 failing ones from 198.51.100.7.
fn dmarc_xml(org: &str, id: &str, domain: &str, day: i64) -> String {
    let record = |ip: &str, count: u32, verdict: &str| {
        format!(
            "<record><row><source_ip>{ip}</source_ip><count>{count}</count><policy_evaluated>\
             <disposition>none</disposition><dkim>{verdict}</dkim><spf>{verdict}</spf>\
             </policy_evaluated></row><identifiers><header_from>{domain}</header_from>\
             </identifiers><auth_results><spf><domain>{domain}</domain><result>{verdict}</result>\
             </spf></auth_results></record>"
        )
    };
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<feedback><report_metadata>\
         <org_name>{org}</org_name><email>dmarc@{org}</email><report_id>{id}</report_id>\
         <date_range><begin>{}</begin><end>{}</end></date_range></report_metadata>\
         <policy_published><domain>{domain}</domain><adkim>r</adkim><aspf>r</aspf><p>none</p>\
         <sp>none</sp><pct>100</pct></policy_published>{}{}</feedback>",
        day,
        day + DAY - 1,
        record("192.0.2.10", 40, "pass"),
        record("198.51.100.7", 5, "fail"),
    )
}

/// Stores `bytes` as `mtasts report import --database <the serve database>` does.
async fn import(h: &Harness, bytes: &str, source: &str) -> Vec<i64> {
    let intake = Intake::new(h.state.reports.clone().unwrap(), Limits::default());
    let outcome = intake.input(bytes.as_bytes(), source, T0).await.unwrap();
    assert!(outcome.errors.is_empty(), "{:?}", outcome.errors);
    outcome
        .reports
        .iter()
        .map(|r| match r {
            mtasts_store::reports::Inserted::New(id)
            | mtasts_store::reports::Inserted::Duplicate(id) => *id,
        })
        .collect()
}

async fn ok(h: &Harness, path: &str, token: &str) -> Value {
    let reply = h.get(path, token).await;
    assert_eq!(reply.status, StatusCode::OK, "{path}: {}", reply.json);
    reply.json
}

fn labels(list: &Value) -> Vec<(String, u64)> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["label"].as_str().unwrap().to_owned(),
                c["count"].as_u64().unwrap(),
            )
        })
        .collect()
}

async fn tls_numbers_are_what_was_stored_and_other_tenants_see_none(h: Harness) {
    let a = h.tenant("a").await;
    let b = h.tenant("b").await;
    let domain = h.domain("tls");
    h.hosted(&a.owner, &domain, "testing").await;
    let other = h.domain("other");
    h.hosted(&b.owner, &other, "testing").await;
    let mx1 = format!("mx1.{domain}");
    let mx2 = format!("mx2.{domain}");
    let google = tls_json(
        &format!("google-{}", h.tag),
        "g-1",
        &domain,
        TODAY - DAY,
        900,
        &[
            ("certificate-expired", 7, &mx1, "192.0.2.1", "203.0.113.5"),
            (
                "starttls-not-supported",
                3,
                &mx2,
                "192.0.2.2",
                "203.0.113.5",
            ),
        ],
    );
    let microsoft = tls_json(
        &format!("microsoft-{}", h.tag),
        "m-1",
        &domain,
        TODAY - 3 * DAY,
        50,
        &[("certificate-expired", 2, &mx1, "192.0.2.1", "203.0.113.9")],
    );
    let ids = import(&h, &google, "mbox#1").await;
    import(&h, &microsoft, "mbox#2").await;
    // The same report again, in other bytes (a sender's retry by another channel): once.
    let again = import(&h, &format!("{google}\n"), "https").await;
    assert_eq!(again, ids);

    let view = ok(
        &h,
        &format!("/api/v1/domains/{domain}/reports/tls?days=30"),
        &a.readonly,
    )
    .await;
    assert_eq!(view["domain"], domain);
    assert_eq!(view["window"], 30);
    assert_eq!(view["success"], 950);
    assert_eq!(view["failure"], 12);
    let days = view["days"].as_array().unwrap();
    assert_eq!(days.len(), 30, "every day, zeros included");
    assert_eq!(days[29]["day"], TODAY);
    assert_eq!(
        (days[28]["success"].as_u64(), days[28]["failure"].as_u64()),
        (Some(900), Some(10))
    );
    assert_eq!(
        (days[26]["success"].as_u64(), days[26]["failure"].as_u64()),
        (Some(50), Some(2))
    );
    assert_eq!(days[27]["success"], 0);
    assert_eq!(
        labels(&view["by_result"]),
        [
            ("certificate-expired".to_owned(), 9),
            ("starttls-not-supported".to_owned(), 3)
        ]
    );
    assert_eq!(labels(&view["by_mx"]), [(mx1.clone(), 9), (mx2.clone(), 3)]);
    assert_eq!(
        labels(&view["by_receiving_ip"]),
        [("192.0.2.1".to_owned(), 9), ("192.0.2.2".to_owned(), 3)]
    );
    assert_eq!(
        labels(&view["by_sending_ip"]),
        [
            ("203.0.113.5".to_owned(), 10),
            ("203.0.113.9".to_owned(), 2)
        ]
    );
    let orgs = view["by_organization"].as_array().unwrap();
    assert_eq!(orgs.len(), 2);
    assert_eq!(orgs[0]["organization"], format!("google-{}", h.tag));
    assert_eq!(
        (orgs[0]["reports"].as_u64(), orgs[0]["failure"].as_u64()),
        (Some(1), Some(10))
    );
    let reports = view["reports"].as_array().unwrap();
    assert_eq!(reports.len(), 2);
    assert_eq!(reports[0]["report_id"], "g-1");
    assert_eq!(reports[0]["duplicates"], 1, "stored once, counted once");
    assert_eq!(reports[0]["kind"], "tlsrpt");

    // The 7-day window does not exist; 90 holds the same numbers.
    let wide = ok(
        &h,
        &format!("/api/v1/domains/{domain}/reports/tls?days=90"),
        &a.owner,
    )
    .await;
    assert_eq!(
        (
            wide["success"].as_u64(),
            wide["days"].as_array().unwrap().len()
        ),
        (Some(950), 90)
    );

    // One report whole, and its document as received.
    let id = ids[0];
    let detail = ok(&h, &format!("/api/v1/reports/{id}"), &a.readonly).await;
    assert_eq!(detail["summary"]["id"], id);
    assert_eq!(detail["raw"], google);
    assert_eq!(detail["raw_content_type"], "application/tlsrpt+json");
    assert_eq!(detail["report"]["report_id"], "g-1", "{}", detail["report"]);
    assert_eq!(
        detail["arrivals"],
        Value::Array(Vec::new()),
        "imported, not mailed"
    );
    let raw = http::send(
        h.addr,
        http::json_request(
            Method::GET,
            &format!("/api/v1/reports/{id}/raw"),
            Some(&a.owner),
            None,
        ),
    )
    .await;
    assert_eq!(raw.status, StatusCode::OK);
    assert_eq!(raw.body, google.as_bytes());
    assert_eq!(raw.headers[header::CONTENT_TYPE], "application/tlsrpt+json");
    assert!(
        raw.headers[header::CONTENT_DISPOSITION]
            .to_str()
            .unwrap()
            .starts_with("attachment")
    );

    // The overview.
    let health = ok(&h, "/api/v1/health", &a.owner).await;
    let rows = health["domains"].as_array().unwrap();
    assert_eq!(rows.len(), 1, "{health}");
    assert_eq!(rows[0]["domain"], domain);
    assert_eq!(rows[0]["mode"], "testing");
    assert_eq!(
        (
            rows[0]["tls_success"].as_u64(),
            rows[0]["tls_failure"].as_u64()
        ),
        (Some(950), Some(12))
    );
    assert_eq!(rows[0]["last_report_at"], T0);
    assert_eq!(rows[0]["level"], "fix", "{}", rows[0]);

    // Another tenant sees none of it.
    for path in [
        format!("/api/v1/domains/{domain}/reports/tls"),
        format!("/api/v1/domains/{domain}/reports/dmarc"),
        format!("/api/v1/domains/{domain}/readiness"),
        format!("/api/v1/reports?domain={domain}"),
        format!("/api/v1/reports/{id}"),
        format!("/api/v1/reports/{id}/raw"),
    ] {
        let reply = h.get(&path, &b.owner).await;
        reply.assert_error(StatusCode::NOT_FOUND, "not_found");
    }
    let list = ok(&h, "/api/v1/reports", &b.owner).await;
    assert_eq!(list["reports"], Value::Array(Vec::new()));
    let health = ok(&h, "/api/v1/health", &b.owner).await;
    assert_eq!(health["domains"][0]["domain"], other);
    assert_eq!(health["domains"][0]["tls_success"], 0);
    assert_eq!(health["domains"][0]["level"], "no-data");
    // The administrators' list of unhosted reports does not hold a hosted domain's reports;
    // tenants have no such list.
    h.get("/api/v1/admin/reports/unowned", &a.owner)
        .await
        .assert_error(StatusCode::NOT_FOUND, "not_found");

    // Retention deletes the raw reports, and the charts keep their numbers (SQLite only: the
    // PostgreSQL database is shared with concurrent tests; the store tests cover both).
    if h.backend == Backend::Sqlite {
        let retention = Retention {
            db: h.state.db.clone(),
            reports: h.state.reports.clone().unwrap(),
            days: 1,
        };
        // A day after today began: both reports ended more than a day before; the inputs
        // arrived today and stay until they are a day old.
        let purged = retention.run_once(TODAY + DAY).await.unwrap().unwrap();
        assert_eq!((purged.reports, purged.inputs), (2, 0));
        let purged = retention.run_once(T0 + DAY + 1).await.unwrap().unwrap();
        assert_eq!((purged.reports, purged.inputs), (0, 3));
        let after = ok(
            &h,
            &format!("/api/v1/domains/{domain}/reports/tls"),
            &a.owner,
        )
        .await;
        assert_eq!(after["days"], view["days"]);
        assert_eq!(
            (after["success"].as_u64(), after["failure"].as_u64()),
            (Some(950), Some(12))
        );
        assert_eq!(after["reports"], Value::Array(Vec::new()));
        h.get(&format!("/api/v1/reports/{id}"), &a.owner)
            .await
            .assert_error(StatusCode::NOT_FOUND, "not_found");
    }
    h.cleanup().await;
}

async fn dmarc_sources_and_the_next_step(h: Harness) {
    let a = h.tenant("a").await;
    let domain = h.domain("dmarc");
    h.hosted(&a.owner, &domain, "testing").await;
    let org = format!("yahoo-{}", h.tag);
    let first = import(
        &h,
        &dmarc_xml(&org, "y-1", &domain, TODAY - 2 * DAY),
        "mbox#1",
    )
    .await;
    import(&h, &dmarc_xml(&org, "y-2", &domain, TODAY - DAY), "mbox#2").await;

    let view = ok(
        &h,
        &format!("/api/v1/domains/{domain}/reports/dmarc"),
        &a.owner,
    )
    .await;
    assert_eq!(
        (view["messages"].as_u64(), view["pass"].as_u64()),
        (Some(90), Some(80))
    );
    assert_eq!(view["published_p"], "none");
    let days = view["days"].as_array().unwrap();
    assert_eq!(days.len(), 30);
    assert_eq!(days[28]["messages"], 45);
    assert_eq!(days[28]["none"], 45);
    let sources = view["sources"].as_array().unwrap();
    assert_eq!(sources.len(), 2);
    assert_eq!(sources[0]["source_ip"], "198.51.100.7", "worst first");
    assert_eq!(
        (
            sources[0]["messages"].as_u64(),
            sources[0]["if_reject"].as_u64()
        ),
        (Some(10), Some(10))
    );
    assert_eq!(sources[1]["source_ip"], "192.0.2.10");
    assert_eq!(
        (
            sources[1]["pass"].as_u64(),
            sources[1]["if_quarantine"].as_u64()
        ),
        (Some(80), Some(0))
    );
    assert_eq!(sources[1]["dkim_aligned"], 80);
    assert_eq!(view["reports"].as_array().unwrap().len(), 2);

    let readiness = ok(&h, &format!("/api/v1/domains/{domain}/readiness"), &a.owner).await;
    let dmarc = &readiness["dmarc"];
    assert_eq!(dmarc["published_p"], "none");
    assert_eq!(dmarc["next_step"], "quarantine");
    assert_eq!(dmarc["hurt"][0]["source_ip"], "198.51.100.7");
    assert_eq!(dmarc["hurt"].as_array().unwrap().len(), 1);
    assert!(!dmarc["headline"].as_str().unwrap().is_empty());
    assert_eq!(readiness["tls"]["level"], "no-data");

    // The document as received is the XML.
    let raw = http::send(
        h.addr,
        http::json_request(
            Method::GET,
            &format!("/api/v1/reports/{}/raw", first[0]),
            Some(&a.owner),
            None,
        ),
    )
    .await;
    assert_eq!(raw.status, StatusCode::OK);
    assert_eq!(raw.headers[header::CONTENT_TYPE], "application/xml");
    assert!(raw.body.starts_with(b"<?xml"));
    h.cleanup().await;
}

async fn readiness_says_enforce_is_safe_after_a_clean_week(h: Harness) {
    let a = h.tenant("a").await;
    let domain = h.domain("ready");
    h.hosted(&a.owner, &domain, "testing").await;
    for org in ["google", "microsoft"] {
        let org = format!("{org}-{}", h.tag);
        for back in 1..=8 {
            let json = tls_json(
                &org,
                &format!("r{back}"),
                &domain,
                TODAY - back * DAY,
                100,
                &[],
            );
            import(&h, &json, "mbox").await;
        }
    }
    let reply = ok(
        &h,
        &format!("/api/v1/domains/{domain}/readiness?days=90"),
        &a.readonly,
    )
    .await;
    let tls = &reply["tls"];
    assert_eq!(reply["window"], 90);
    assert_eq!(tls["mode"], "testing");
    assert_eq!(tls["level"], "ready", "{tls}");
    assert_eq!(tls["enforce_safe"], true);
    assert_eq!(
        (tls["reports"].as_u64(), tls["organizations"].as_u64()),
        (Some(16), Some(2))
    );
    assert_eq!(
        (tls["days"].as_u64(), tls["failures"].as_u64()),
        (Some(8), Some(0))
    );
    assert!(
        tls["headline"].as_str().unwrap().contains("enforce"),
        "{tls}"
    );
    assert_eq!(reply["dmarc"], Value::Null);

    // Once enforcing, it is no longer a switch to make.
    h.patch(
        &format!("/api/v1/domains/{domain}"),
        &a.owner,
        serde_json::json!({"mode": "enforce"}),
    )
    .await;
    let reply = ok(&h, &format!("/api/v1/domains/{domain}/readiness"), &a.owner).await;
    assert_eq!(reply["tls"]["mode"], "enforce");
    assert_eq!(reply["tls"]["enforce_safe"], false);
    h.cleanup().await;
}

async fn the_report_list_pages_and_filters(h: Harness) {
    let a = h.tenant("a").await;
    let domain = h.domain("list");
    let second = h.domain("second");
    h.hosted(&a.owner, &domain, "testing").await;
    h.hosted(&a.owner, &second, "testing").await;
    let org = format!("org-{}", h.tag);
    for back in 1..=3 {
        import(
            &h,
            &tls_json(
                &org,
                &format!("l{back}"),
                &domain,
                TODAY - back * DAY,
                1,
                &[],
            ),
            "x",
        )
        .await;
    }
    import(&h, &dmarc_xml(&org, "d1", &second, TODAY - DAY), "x").await;

    let mut seen = Vec::new();
    let mut path = "/api/v1/reports?limit=2".to_owned();
    loop {
        let page = ok(&h, &path, &a.readonly).await;
        let items = page["reports"].as_array().unwrap();
        assert!(items.len() <= 2);
        seen.extend(
            items
                .iter()
                .map(|r| r["report_id"].as_str().unwrap().to_owned()),
        );
        match page["next_cursor"].as_str() {
            Some(next) => path = format!("/api/v1/reports?limit=2&cursor={next}"),
            None => break,
        }
    }
    // Newest begin first; the DMARC report and l1 began on the same day (higher id first).
    assert_eq!(seen, ["d1", "l1", "l2", "l3"]);
    let tls_only = ok(&h, "/api/v1/reports?kind=tlsrpt", &a.owner).await;
    assert_eq!(tls_only["reports"].as_array().unwrap().len(), 3);
    let one = ok(&h, &format!("/api/v1/reports?domain={second}"), &a.owner).await;
    assert_eq!(one["reports"][0]["report_id"], "d1");
    assert_eq!(one["reports"][0]["domains"][0], second);
    // The administrator sees them all too.
    let admin = ok(
        &h,
        &format!("/api/v1/reports?domain={}", domain.to_uppercase()),
        &h.admin,
    )
    .await;
    assert_eq!(admin["reports"].as_array().unwrap().len(), 3);
    // A cursor of another list is refused.
    let versions = mtasts_proto::hosted::cursor::Cursor::VersionsBefore(3).encode();
    h.get(&format!("/api/v1/reports?cursor={versions}"), &a.owner)
        .await
        .assert_invalid("cursor");
    h.cleanup().await;
}

async fn unhosted_reports_are_on_the_administrators_list(h: Harness) {
    let a = h.tenant("a").await;
    let hosted = h.domain("hosted");
    h.hosted(&a.owner, &hosted, "testing").await;
    let nobody = h.domain("nobody");
    let org = format!("org-{}", h.tag);
    import(&h, &tls_json(&org, "u1", &nobody, TODAY - DAY, 5, &[]), "x").await;
    import(&h, &tls_json(&org, "h1", &hosted, TODAY - DAY, 5, &[]), "x").await;

    // The shared PostgreSQL database may hold other runs' reports: page until found.
    let mut mine = Vec::new();
    let mut path = "/api/v1/admin/reports/unowned?limit=500".to_owned();
    for _ in 0..100 {
        let page = ok(&h, &path, &h.admin).await;
        for r in page["reports"].as_array().unwrap() {
            if r["organization"] == org {
                mine.push(r["report_id"].as_str().unwrap().to_owned());
            }
        }
        match page["next_cursor"].as_str() {
            Some(next) => path = format!("/api/v1/admin/reports/unowned?limit=500&cursor={next}"),
            None => break,
        }
    }
    assert_eq!(mine, ["u1"]);
    // A tenant's list holds only its domain's report; once the domain is hosted, its report
    // leaves the administrators' list and joins the tenant's.
    let list = ok(&h, "/api/v1/reports", &a.owner).await;
    assert_eq!(list["reports"].as_array().unwrap().len(), 1);
    h.hosted(&a.owner, &nobody, "testing").await;
    let list = ok(&h, "/api/v1/reports", &a.owner).await;
    assert_eq!(list["reports"].as_array().unwrap().len(), 2);
    let page = ok(
        &h,
        "/api/v1/admin/reports/unowned?kind=tlsrpt&limit=500",
        &h.admin,
    )
    .await;
    assert!(
        !page["reports"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["organization"] == org),
        "{page}"
    );
    h.cleanup().await;
}

async fn bad_queries_are_refused(h: Harness) {
    let a = h.tenant("a").await;
    let domain = h.domain("bad");
    h.hosted(&a.owner, &domain, "testing").await;
    for (query, field) in [
        ("days=31", "days"),
        ("days=", "days"),
        ("days=30&days=90", "days"),
    ] {
        h.get(
            &format!("/api/v1/domains/{domain}/reports/tls?{query}"),
            &a.owner,
        )
        .await
        .assert_invalid(field);
    }
    h.get("/api/v1/reports?kind=mail", &a.owner)
        .await
        .assert_invalid("kind");
    h.get("/api/v1/reports?limit=0", &a.owner)
        .await
        .assert_invalid("limit");
    for id in ["0", "-1", "x", "99999999999999999999"] {
        h.get(&format!("/api/v1/reports/{id}"), &a.owner)
            .await
            .assert_error(StatusCode::NOT_FOUND, "not_found");
    }
    h.get("/api/v1/domains/not-hosted.example/reports/tls", &a.owner)
        .await
        .assert_error(StatusCode::NOT_FOUND, "not_found");
    h.cleanup().await;
}

/// A report that came by mail carries its deliveries (client, TLS, DKIM results) in its
/// detail, for its own tenant only.
async fn a_mailed_report_shows_how_it_arrived(h: Harness) {
    let a = h.tenant("a").await;
    let b = h.tenant("b").await;
    let domain = h.domain("mailed");
    h.hosted(&a.owner, &domain, "testing").await;
    let report = tls_json(
        &format!("mailer-{}", h.tag),
        "m-1",
        &domain,
        TODAY - DAY,
        10,
        &[],
    );
    let db = h.state.reports.clone().unwrap();
    let outcome = Intake::new(db.clone(), Limits::default())
        .input(report.as_bytes(), "smtp:192.0.2.25", T0)
        .await
        .unwrap();
    let id = match outcome.reports[0] {
        mtasts_store::reports::Inserted::New(id) => id,
        other => panic!("{other:?}"),
    };
    let dkim =
        serde_json::json!([{"result": "pass", "domain": "mailer.example", "selector": "s1"}]);
    let recipients = vec!["tlsrpt@reports.example".to_owned()];
    db.add_arrival(&mtasts_store::reports::NewArrival {
        input: outcome.input,
        channel: "smtp",
        peer_ip: "192.0.2.25",
        helo: "mx.mailer.example",
        mail_from: "noreply@mailer.example",
        recipients: &recipients,
        tls_version: Some("TLSv1.3"),
        tls_cipher: Some("TLS13_AES_256_GCM_SHA384"),
        dkim: &dkim,
        reports: &outcome.reports,
        received_at: T0,
    })
    .await
    .unwrap();
    let detail = ok(&h, &format!("/api/v1/reports/{id}"), &a.owner).await;
    let arrivals = detail["arrivals"].as_array().unwrap();
    assert_eq!(arrivals.len(), 1, "{detail}");
    assert_eq!(arrivals[0]["peer_ip"], "192.0.2.25");
    assert_eq!(arrivals[0]["mail_from"], "noreply@mailer.example");
    assert_eq!(arrivals[0]["tls"]["version"], "TLSv1.3");
    assert_eq!(arrivals[0]["dkim"], dkim);
    h.get(&format!("/api/v1/reports/{id}"), &b.owner)
        .await
        .assert_error(StatusCode::NOT_FOUND, "not_found");
    h.cleanup().await;
}

/// A sender put two tenants' domains in one TLS report: each tenant sees its own policy, its
/// counts and a raw document without the other's; an administrator sees the whole report.
async fn a_report_naming_two_tenants_domains_shows_each_its_part(h: Harness) {
    let a = h.tenant("a").await;
    let b = h.tenant("b").await;
    let mine = h.domain("mine");
    let theirs = h.domain("theirs");
    h.hosted(&a.owner, &mine, "testing").await;
    h.hosted(&b.owner, &theirs, "testing").await;
    let one = tls_json("org", "both-1", &mine, TODAY - DAY, 10, &[]);
    let two = tls_json("org", "both-1", &theirs, TODAY - DAY, 500, &[]);
    // The second document's policy appended to the first's list.
    let mut doc: Value = serde_json::from_str(&one).unwrap();
    let other: Value = serde_json::from_str(&two).unwrap();
    doc["organization-name"] = Value::from(format!("org-{}", h.tag));
    doc["policies"]
        .as_array_mut()
        .unwrap()
        .push(other["policies"][0].clone());
    let ids = import(&h, &doc.to_string(), "mbox#9").await;
    let id = ids[0];

    for (token, own, other, success) in [
        (&a.owner, &mine, &theirs, 10),
        (&b.owner, &theirs, &mine, 500),
    ] {
        let detail = ok(&h, &format!("/api/v1/reports/{id}"), token).await;
        assert_eq!(
            detail["summary"]["domains"],
            serde_json::json!([own]),
            "{detail}"
        );
        assert_eq!(detail["summary"]["success"], success, "{detail}");
        assert_eq!(detail["report"]["policies"].as_array().unwrap().len(), 1);
        let text = detail.to_string();
        assert!(!text.contains(other.as_str()), "{text}");
        let raw = http::send(
            h.addr,
            http::json_request(
                Method::GET,
                &format!("/api/v1/reports/{id}/raw"),
                Some(token),
                None,
            ),
        )
        .await;
        assert_eq!(raw.status, StatusCode::OK);
        let raw: Value = serde_json::from_slice(&raw.body).unwrap();
        assert_eq!(raw["policies"].as_array().unwrap().len(), 1, "{raw}");
        assert_eq!(raw["policies"][0]["policy"]["policy-domain"], own.as_str());
        let list = ok(&h, "/api/v1/reports", token).await;
        let listed = &list["reports"][0];
        assert_eq!(listed["id"], id, "{list}");
        assert_eq!(listed["domains"], serde_json::json!([own]), "{list}");
        assert_eq!(listed["success"], success, "{list}");
    }
    let whole = ok(&h, &format!("/api/v1/reports/{id}"), &h.admin).await;
    assert_eq!(whole["summary"]["success"], 510, "{whole}");
    assert_eq!(whole["summary"]["domains"].as_array().unwrap().len(), 2);
    assert_eq!(whole["report"]["policies"].as_array().unwrap().len(), 2);
    h.cleanup().await;
}
