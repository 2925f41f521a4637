//! The report pages over real stored reports: samples from `shared/samples` (an RFC 8460
//! report with failures, a Google report without, two DMARC aggregate reports) are given new
//! days, organizations and domains and stored through the report core's intake into the
//! dashboard's own database, as the HTTPS and SMTP intakes do; then the pages are read as
//! each tenant would.

use axum::http::StatusCode;
use mtasts_proto::readiness::date::day_start;
use mtasts_report::Limits;
use mtasts_report::intake::Intake;
use std::num::NonZeroU32;

use mtasts_host::auth::hash_password;
use mtasts_store::host::{NewDomain, NewUser, NewVersion, Role};
use mtasts_store::reports::Inserted;
use serde_json::{Value, json};

use crate::dashboard::harness::{Harness, PASSWORD, Reply, Session};

/// The domain whose MX fails (certificate expired, no STARTTLS, validation failure), every day.
pub(crate) const FAILING: &str = "company-y.example";
/// The domain with ten clean days from two organizations, in `testing`: ready to enforce.
pub(crate) const READY: &str = "ready.example";
/// The other tenant's domain.
pub(crate) const THEIRS: &str = "beta.example";
/// An organization name that would run script if it were not escaped.
pub(crate) const HOSTILE: &str = r#"<img src=x onerror=alert(1)>"Evil" & Co"#;
/// Days of reports stored, ending yesterday.
pub(crate) const DAYS: i64 = 10;

const DAY: i64 = 86_400;

/// What [`seed`] stored.
pub(crate) struct Seeded {
    /// Today's start, Unix seconds.
    pub(crate) today: i64,
    /// The id of the report whose organization is [`HOSTILE`].
    pub(crate) hostile_report: i64,
    /// The id of a report of the other tenant's domain.
    pub(crate) theirs_report: i64,
    /// The id of the DMARC report that failed.
    pub(crate) dmarc_report: i64,
    /// The id of the report about a domain nobody hosts.
    pub(crate) nobodys: i64,
}

fn sample(path: &str) -> Option<Vec<u8>> {
    let dir = mtasts_testkit::services::samples_dir()?;
    Some(std::fs::read(dir.join(path)).unwrap())
}

fn iso(unix: i64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp(unix).unwrap();
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap()
}

/// A TLS report made from `template` for `domain`, one day, from `organization`.
fn tls_report(template: &Value, organization: &str, domain: &str, day: i64, mode: &str) -> Vec<u8> {
    let mut report = template.clone();
    report["organization-name"] = json!(organization);
    report["report-id"] = json!(format!("{organization}-{domain}-{day}"));
    report["date-range"] = json!({
        "start-datetime": iso(day),
        "end-datetime": iso(day + DAY - 1),
    });
    for policy in report["policies"].as_array_mut().unwrap() {
        let p = &mut policy["policy"];
        p["policy-domain"] = json!(domain);
        p["policy-string"] = json!([
            "version: STSv1",
            format!("mode: {mode}"),
            format!("mx: *.mail.{domain}"),
            "max_age: 86400"
        ]);
        p["mx-host"] = json!([format!("*.mail.{domain}")]);
        if let Some(details) = policy["failure-details"].as_array_mut() {
            for d in details {
                if let Some(mx) = d["receiving-mx-hostname"].as_str() {
                    let host = mx.split(".mail.").next().unwrap().to_owned();
                    d["receiving-mx-hostname"] = json!(format!("{host}.mail.{domain}"));
                }
            }
        }
    }
    serde_json::to_vec_pretty(&report).unwrap()
}

/// A DMARC report made from an XML sample: its domain, organization, id, day and `p` replaced,
/// each record's count set to `count`.
fn dmarc_xml(
    template: &str,
    from: &str,
    organization: &str,
    domain: &str,
    day: i64,
    count: u64,
) -> Vec<u8> {
    let begin = between(template, "<begin>", "</begin>");
    let end = between(template, "<end>", "</end>");
    let org = between(template, "<org_name>", "</org_name>");
    let id = between(template, "<report_id>", "</report_id>");
    let p = between(template, "<p>", "</p>");
    let xml_count = between(template, "<count>", "</count>");
    template
        .replace(
            &format!("<begin>{begin}</begin>"),
            &format!("<begin>{day}</begin>"),
        )
        .replace(
            &format!("<end>{end}</end>"),
            &format!("<end>{}</end>", day + DAY - 1),
        )
        .replace(
            &format!("<org_name>{org}</org_name>"),
            &format!("<org_name>{organization}</org_name>"),
        )
        .replace(
            &format!("<report_id>{id}</report_id>"),
            &format!("<report_id>{organization}-{domain}-{day}</report_id>"),
        )
        .replace(&format!("<p>{p}</p>"), "<p>none</p>")
        .replace(
            &format!("<count>{xml_count}</count>"),
            &format!("<count>{count}</count>"),
        )
        .replace(from, domain)
        .into_bytes()
}

fn between<'a>(text: &'a str, open: &str, close: &str) -> &'a str {
    let start = text.find(open).unwrap() + open.len();
    let end = start + text[start..].find(close).unwrap();
    &text[start..end]
}

async fn host(h: &Harness, tenant_id: i64, name: &str) {
    let body =
        format!("version: STSv1\r\nmode: testing\r\nmx: *.mail.{name}\r\nmax_age: 86400\r\n");
    h.state
        .db
        .create_domain(
            NewDomain {
                tenant_id,
                name: name.to_owned(),
                rua: None,
                reports_to_service: true,
            },
            NewVersion {
                policy_id: "20261201T000000".to_owned(),
                mode: "testing".to_owned(),
                mx: vec![format!("*.mail.{name}")],
                max_age: 86_400,
                body,
                now: h.state.now(),
            },
        )
        .await
        .unwrap();
}

/// Hosts [`FAILING`] and [`READY`] for alpha and [`THEIRS`] for beta, and stores [`DAYS`] days
/// of reports for each through the intake. `None` without the samples.
pub(crate) async fn seed(h: &Harness) -> Option<Seeded> {
    let failing = sample("tlsrpt/mta-sts-exporter/rfc-errata-6241.json")?;
    let clean = sample("tlsrpt/mta-sts-exporter/google.json")?;
    let pass_xml = String::from_utf8(sample("dmarc/dmarc-report-viewer/google.xml")?).unwrap();
    let fail_xml = String::from_utf8(sample("dmarc/dmarc-report-viewer/hardfail.xml")?).unwrap();
    let failing: Value = serde_json::from_slice(&failing).unwrap();
    let clean: Value = serde_json::from_slice(&clean).unwrap();

    host(h, h.alpha.id, FAILING).await;
    host(h, h.alpha.id, READY).await;
    host(h, h.beta.id, THEIRS).await;
    let reports = h
        .state
        .reports
        .clone()
        .expect("the harness opens the reports database");
    let intake = Intake::new(reports, Limits::default());
    let now = h.state.now();
    let today = day_start(now);
    let store = async |bytes: Vec<u8>| -> i64 {
        let outcome = intake.input(&bytes, "test", now).await.unwrap();
        assert_eq!(outcome.new, 1, "{outcome:?}");
        match outcome.reports[0] {
            Inserted::New(id) | Inserted::Duplicate(id) => id,
        }
    };
    let mut theirs_report = 0;
    let mut dmarc_report = 0;
    for back in 1..=DAYS {
        let day = today - back * DAY;
        store(tls_report(&failing, "Company-X", FAILING, day, "testing")).await;
        for org in ["Google Inc.", "Microsoft Corporation"] {
            store(tls_report(&clean, org, READY, day, "testing")).await;
        }
        theirs_report = store(tls_report(&clean, "Google Inc.", THEIRS, day, "testing")).await;
        store(dmarc_xml(
            &pass_xml,
            "foo-bar.io",
            "google.com",
            FAILING,
            day,
            120,
        ))
        .await;
        dmarc_report = store(dmarc_xml(
            &fail_xml,
            "mydomain.org",
            "Yahoo",
            FAILING,
            day,
            7,
        ))
        .await;
    }
    // A real report, as it came, about a domain nobody hosts here (example.com).
    let nobodys = store(sample("tlsrpt/mta-sts-exporter/google.json")?).await;
    // One more report from an organization whose name is markup.
    let hostile_report = store(tls_report(
        &clean,
        HOSTILE,
        FAILING,
        today - 2 * DAY,
        "testing",
    ))
    .await;
    Some(Seeded {
        today,
        hostile_report,
        theirs_report,
        dmarc_report,
        nobodys,
    })
}

async fn alpha(h: &Harness) -> Session {
    h.login(&h.alpha.owner_email, PASSWORD).await
}

async fn beta(h: &Harness) -> Session {
    h.login(&h.beta.owner_email, PASSWORD).await
}

#[track_caller]
fn ok(reply: &Reply) -> &str {
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    &reply.body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_tls_page_charts_a_domains_sessions_and_failures() {
    let h = Harness::start().await;
    let Some(seeded) = seed(&h).await else {
        return;
    };
    let session = alpha(&h).await;
    let page = h
        .get(&format!("/domains/{FAILING}/reports"), &session)
        .await;
    let body = ok(&page);
    // Ten days of 5,326 successful and 303 failed sessions, plus the hostile org's 53.
    assert!(
        body.contains("53,313 successful and 3,030 failed sessions in the last 30 days"),
        "{body}"
    );
    // The daily chart: a bar part per day and kind, a tooltip each.
    let yesterday = mtasts_proto::readiness::date::iso_day(seeded.today - DAY);
    assert!(
        body.contains(&format!("<title>{yesterday}: 303 failed sessions</title>")),
        "{body}"
    );
    assert!(body.contains(&format!(
        "<title>{yesterday}: 5,326 successful sessions</title>"
    )));
    // Failures by result type, MX, receiving IP, organization and sending IP.
    for text in [
        "starttls-not-supported: 2,000 failed sessions",
        "certificate-expired: 1,000 failed sessions",
        "validation-failure: 30 failed sessions",
        "mx2.mail.company-y.example: 2,000 failed sessions",
        "203.0.113.56: 2,000 failed sessions",
        "Company-X: 3,030 failed sessions",
        "198.51.100.62: 30 failed sessions",
    ] {
        assert!(
            body.contains(&format!("<title>{text}</title>")),
            "{text}: {body}"
        );
    }
    // The organization's name from the network is text, never markup.
    assert!(!body.contains("<img"), "{body}");
    assert!(body.contains("&lt;img src=x onerror=alert(1)&gt;&quot;Evil&quot; &amp; Co"));
    // The list links every report; readiness names the failures and offers no button.
    assert!(body.contains(&format!(r#"href="/reports/{}""#, seeded.hostile_report)));
    assert_eq!(
        body.matches(r#"<tr class="report-row">"#).count(),
        11,
        "{body}"
    );
    assert!(body.contains("badge level bad"), "fix first: {body}");
    assert!(!body.contains("Switch to enforce"));

    // Longer windows; a window the page does not offer is refused.
    let year = h
        .get(&format!("/domains/{FAILING}/reports?days=365"), &session)
        .await;
    assert!(ok(&year).contains("in the last 365 days"));
    assert!(
        year.body
            .contains(r#"class="window current" aria-current="page">365 days"#)
    );
    let bad = h
        .get(&format!("/domains/{FAILING}/reports?days=7"), &session)
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dmarc_page_shows_dispositions_sources_and_what_enforcing_would_do() {
    let h = Harness::start().await;
    if seed(&h).await.is_none() {
        return;
    }
    let session = alpha(&h).await;
    let page = h.get(&format!("/domains/{FAILING}/dmarc"), &session).await;
    let body = ok(&page);
    // 10 days × (120 passing + 7 failing) messages.
    assert!(
        body.contains("1,270 messages in the last 30 days, 1,200 passed DMARC"),
        "{body}"
    );
    assert!(body.contains("DMARC pass rate: 94.4% pass"), "{body}");
    assert!(body.contains("Messages per day by disposition"));
    // The failing source: what quarantine and reject would hit.
    let row = body
        .split(r#"<tr class="source-row">"#)
        .find(|r| r.starts_with("<td><code>42.42.42.42</code>"))
        .unwrap_or_else(|| panic!("no row for the failing source: {body}"));
    assert!(row.contains("<td>70</td>"), "{row}");
    assert!(row.contains(r#"<span class="hurt">70</span>"#), "{row}");
    let good = body
        .split(r#"<tr class="source-row">"#)
        .find(|r| r.starts_with("<td><code>1.2.3.4</code>"))
        .unwrap();
    assert!(good.contains("1,200 (100%)"), "{good}");
    assert!(body.contains("Next step"), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_report_page_shows_the_document_escaped() {
    let h = Harness::start().await;
    let Some(seeded) = seed(&h).await else {
        return;
    };
    let session = alpha(&h).await;
    let page = h
        .get(&format!("/reports/{}", seeded.hostile_report), &session)
        .await;
    let body = ok(&page);
    assert!(!body.contains("<img"), "{body}");
    assert!(body.contains("TLS report from &lt;img"));
    // The raw JSON is in a <pre>, its quotes escaped.
    assert!(body.contains(r#"<pre class="document">"#));
    assert!(
        body.contains("&quot;organization-name&quot;: &quot;&lt;img"),
        "{body}"
    );
    let dmarc = h
        .get(&format!("/reports/{}", seeded.dmarc_report), &session)
        .await;
    assert!(ok(&dmarc).contains("&lt;source_ip&gt;42.42.42.42&lt;/source_ip&gt;"));
    // A report that came by mail shows its delivery, DKIM included, escaped.
    let reports = h.state.reports.clone().unwrap();
    let clean: Value = serde_json::from_slice(
        &sample("tlsrpt/mta-sts-exporter/google.json").expect("seeded from the same samples"),
    )
    .unwrap();
    let mailed = Intake::new(reports.clone(), Limits::default())
        .input(
            &tls_report(&clean, "Mailer", READY, day_start(h.state.now()), "testing"),
            "smtp:192.0.2.25",
            h.state.now(),
        )
        .await
        .unwrap();
    let Inserted::New(mailed_id) = mailed.reports[0] else {
        panic!("{mailed:?}");
    };
    let dkim = json!([{"result": "pass", "domain": "mailer.example", "selector": "s1"}]);
    reports
        .add_arrival(&mtasts_store::reports::NewArrival {
            input: mailed.input,
            channel: "smtp",
            peer_ip: "192.0.2.25",
            helo: "<b>mx</b>",
            mail_from: "noreply@mailer.example",
            recipients: &["tlsrpt@reports.example".to_owned()],
            tls_version: Some("TLSv1.3"),
            tls_cipher: None,
            dkim: &dkim,
            reports: &mailed.reports,
            received_at: h.state.now(),
        })
        .await
        .unwrap();
    let page = h.get(&format!("/reports/{mailed_id}"), &session).await;
    let body = ok(&page);
    assert!(body.contains("How it arrived (mail)"), "{body}");
    assert!(body.contains("pass (d=mailer.example, s=s1)"), "{body}");
    assert!(
        body.contains("&lt;b&gt;mx&lt;/b&gt;") && !body.contains("<b>mx"),
        "{body}"
    );
    assert!(body.contains("TLSv1.3"), "{body}");
    let hostile = h
        .get(&format!("/reports/{}", seeded.hostile_report), &session)
        .await;
    assert!(
        !ok(&hostile).contains("How it arrived"),
        "not mailed: no such section"
    );
    let missing = h.get("/reports/999999", &session).await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    let word = h.get("/reports/abc", &session).await;
    assert_eq!(word.status, StatusCode::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_tenant_sees_none_of_it() {
    let h = Harness::start().await;
    let Some(seeded) = seed(&h).await else {
        return;
    };
    let theirs = beta(&h).await;
    for path in [
        format!("/domains/{FAILING}/reports"),
        format!("/domains/{FAILING}/dmarc"),
        format!("/reports/{}", seeded.hostile_report),
        format!("/reports/{}", seeded.dmarc_report),
    ] {
        let reply = h.get(&path, &theirs).await;
        assert_eq!(reply.status, StatusCode::NOT_FOUND, "{path}");
        assert!(!reply.body.contains("Company-X"), "{path}");
    }
    // Their own domain and report they do see; the list shows only their domain's health.
    let own = h
        .get(&format!("/reports/{}", seeded.theirs_report), &theirs)
        .await;
    ok(&own);
    // Their domain has no DMARC report: the page says so instead of drawing empty charts.
    let empty = h.get(&format!("/domains/{THEIRS}/dmarc"), &theirs).await;
    assert!(
        ok(&empty).contains("No reports yet for these days."),
        "{}",
        empty.body
    );
    assert!(
        !empty.body.contains("<svg class=\"chart-svg\""),
        "{}",
        empty.body
    );
    let list = h.get("/", &theirs).await;
    assert!(ok(&list).contains(THEIRS));
    assert!(!list.body.contains(FAILING));
    let mine = alpha(&h).await;
    let not_mine = h
        .get(&format!("/reports/{}", seeded.theirs_report), &mine)
        .await;
    assert_eq!(not_mine.status, StatusCode::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_overview_shows_each_domains_health() {
    let h = Harness::start().await;
    if seed(&h).await.is_none() {
        return;
    }
    let session = alpha(&h).await;
    let list = h.get("/", &session).await;
    let body = ok(&list);
    let row = |name: &str| -> String {
        body.split(r#"<tr class="domain-row">"#)
            .find(|r| r.contains(&format!(r#"href="/domains/{name}""#)))
            .unwrap_or_else(|| panic!("no row for {name}: {body}"))
            .to_owned()
    };
    let failing = row(FAILING);
    assert!(failing.contains("badge level bad"), "{failing}");
    assert!(failing.contains("53,313 ok"), "{failing}");
    assert!(failing.contains("3,030 failed"), "{failing}");
    assert!(failing.contains("DMARC 94.4% pass"), "{failing}");
    let ready = row(READY);
    assert!(ready.contains("badge level ok"), "{ready}");
    assert!(ready.contains("1,060 ok"), "{ready}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn switch_to_enforce_is_one_button_when_it_is_safe() {
    let h = Harness::start().await;
    if seed(&h).await.is_none() {
        return;
    }
    let session = alpha(&h).await;
    let page = h.get(&format!("/domains/{READY}"), &session).await;
    let body = ok(&page);
    assert!(
        body.contains("20 reports from 2 organizations over 10 days, 0 failures."),
        "{body}"
    );
    assert_eq!(body.matches("Switch to enforce").count(), 1, "{body}");
    let tls = h.get(&format!("/domains/{READY}/reports"), &session).await;
    assert!(ok(&tls).contains("Switch to enforce"));
    // Not for the failing domain, nor for an account that cannot change anything.
    let failing = h.get(&format!("/domains/{FAILING}"), &session).await;
    assert!(!ok(&failing).contains("Switch to enforce"));
    h.state
        .db
        .create_user(NewUser {
            tenant_id: Some(h.alpha.id),
            email: "viewer@alpha.example".to_owned(),
            password_hash: hash_password(PASSWORD, NonZeroU32::new(1_000).unwrap()),
            role: Role::ReadOnly,
        })
        .await
        .unwrap();
    let viewer = h.login("viewer@alpha.example", PASSWORD).await;
    let read_only = h.get(&format!("/domains/{READY}"), &viewer).await;
    assert!(ok(&read_only).contains("20 reports from 2 organizations"));
    assert!(!read_only.body.contains("Switch to enforce"));

    // The button's form, as the browser would submit it.
    let form = button_fields(body);
    let fields: Vec<(&str, &str)> = form
        .iter()
        .filter(|(k, _)| k != "csrf")
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let reply = h
        .post(&format!("/domains/{READY}"), &session, &fields)
        .await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER, "{}", reply.body);
    let domain = h.state.db.domain(READY).await.unwrap().unwrap();
    let versions = h.state.db.versions(domain.id).await.unwrap();
    assert_eq!(versions[0].mode, "enforce");
    assert_eq!(versions[0].mx, [format!("*.mail.{READY}")]);
    assert_eq!(versions[0].max_age, 86_400);
    // Now enforced: no button.
    let after = h.get(&format!("/domains/{READY}"), &session).await;
    assert!(!ok(&after).contains("Switch to enforce"));
}

/// The hidden fields of the "Switch to enforce" form, unescaped.
fn button_fields(body: &str) -> Vec<(String, String)> {
    let start = body
        .find(r#"<form method="post" action="/domains/ready.example" class="enforce">"#)
        .unwrap();
    let form = &body[start..start + body[start..].find("</form>").unwrap()];
    form.split("<input type=\"hidden\" name=\"")
        .skip(1)
        .map(|f| {
            let name = f.split('"').next().unwrap().to_owned();
            let value = between(f, "value=\"", "\"")
                .replace("&quot;", "\"")
                .replace("&lt;", "<")
                .replace("&gt;", ">")
                .replace("&#39;", "'")
                .replace("&amp;", "&");
            (name, value)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn administrators_see_the_reports_nobody_hosts() {
    let h = Harness::start().await;
    let Some(seeded) = seed(&h).await else {
        return;
    };
    let admin = h.login("", &h.admin_token).await;
    let list = h.get("/reports", &admin).await;
    let body = ok(&list);
    assert!(
        body.contains(r#"<a href="/reports">Reports nobody's</a>"#),
        "{body}"
    );
    assert_eq!(
        body.matches(r#"<tr class="report-row">"#).count(),
        1,
        "{body}"
    );
    assert!(body.contains(&format!(
        r#"href="/reports/{}">Google Inc.</a>"#,
        seeded.nobodys
    )));
    assert!(body.contains("<td>example.com</td>"), "{body}");
    let report = h.get(&format!("/reports/{}", seeded.nobodys), &admin).await;
    assert!(ok(&report).contains("2024-02-17T00:00:00Z_example.com"));
    // A tenant has no such list, nor that report.
    let owner = alpha(&h).await;
    let refused = h.get("/reports", &owner).await;
    assert_eq!(refused.status, StatusCode::NOT_FOUND);
    assert!(!refused.body.contains("Reports nobody's</a>"));
    let theirs = h.get(&format!("/reports/{}", seeded.nobodys), &owner).await;
    assert_eq!(theirs.status, StatusCode::NOT_FOUND);
    let bad = h.get("/reports?cursor=nonsense", &admin).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
}
