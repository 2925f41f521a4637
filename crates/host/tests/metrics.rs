//! `mtasts serve --metrics-listen`: the counters move when a real client (curl, dig, a strict
//! sender, Pebble, an SMTP client mailing a report, a webhook receiving its alert) uses the
//! daemon, read back over HTTP by curl as Prometheus would; and the Grafana dashboards in
//! contrib/grafana name only metrics the two daemons really expose (both scraped live), with a
//! panel for every one of them.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::http::{Method, StatusCode};
use mtasts_host::config::ServeConfig;
use mtasts_host::serve::Serve;
use mtasts_testkit::TestNet;
use mtasts_testkit::services::{self, Service};
use mtasts_testkit::smtp::MxHostSpec;
use serde_json::{Value, json};

use mtasts_proto::hosted::delegation::Delegation;
use mtasts_proto::hosted::reporting::{ReportAddresses, TLSRPT_PATH};

use crate::serve::harness::{
    Ports, ZONE, api, config, delegate, eventually, fetch_policy, pebble, resolver,
};
use crate::support;

/// curl with `args`; the status code and the body.
async fn curl_status(args: Vec<String>) -> (String, String) {
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new("curl")
            .args(["-s", "--max-time", "5", "-w", "\n%{http_code}"])
            .args(&args)
            .output()
    })
    .await
    .unwrap()
    .expect("curl runs");
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", "000"));
    (code.to_owned(), body.to_owned())
}

/// curl with `args`; the body on a 200.
async fn curl(args: Vec<String>) -> Option<String> {
    let (code, body) = curl_status(args).await;
    (code == "200").then_some(body)
}

/// The exposition at `http://addr/metrics`.
async fn scrape(addr: SocketAddr) -> String {
    eventually("a scrape of /metrics", Duration::from_secs(10), || {
        curl(vec![format!("http://{addr}/metrics")])
    })
    .await
}

/// Every sample of an exposition: series (name and labels as written) → value.
fn samples(exposition: &str) -> BTreeMap<String, f64> {
    exposition
        .lines()
        .filter(|line| !line.starts_with('#') && !line.is_empty())
        .filter_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            Some((series.to_owned(), value.parse().ok()?))
        })
        .collect()
}

fn sample(exposition: &str, series: &str) -> f64 {
    *samples(exposition)
        .get(series)
        .unwrap_or_else(|| panic!("{series} missing from\n{exposition}"))
}

/// The metric families of an exposition (`# TYPE name type`): name → type.
fn families(exposition: &str) -> BTreeMap<String, String> {
    exposition
        .lines()
        .filter_map(|line| line.strip_prefix("# TYPE "))
        .filter_map(|rest| {
            let (name, kind) = rest.split_once(' ')?;
            Some((name.to_owned(), kind.to_owned()))
        })
        .collect()
}

/// The family a sample name belongs to (OpenMetrics suffixes by type), if the exposition
/// has it.
fn family_of<'f>(families: &'f BTreeMap<String, String>, sample: &str) -> Option<&'f str> {
    families.iter().find_map(|(name, kind)| {
        let suffixes: &[&str] = match kind.as_str() {
            "counter" => &["_total", "_created"],
            "histogram" => &["_bucket", "_sum", "_count", "_created"],
            "gauge" => &[""],
            _ => &["", "_total"],
        };
        let rest = sample.strip_prefix(name.as_str())?;
        suffixes.contains(&rest).then_some(name.as_str())
    })
}

fn grafana_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../contrib/grafana")
}

/// The metric names (identifiers starting with `prefix`) in a PromQL expression.
fn metric_names(expr: &str, prefix: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut rest = expr;
    while let Some(start) = rest.find(prefix) {
        let boundary = rest[..start]
            .chars()
            .next_back()
            .is_none_or(|c| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'));
        let tail = &rest[start..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
            .unwrap_or(tail.len());
        if boundary {
            names.push(tail[..end].to_owned());
        }
        rest = &tail[end..];
    }
    names
}

/// Checks one dashboard JSON model against the exposition of its daemon: it parses, takes
/// its Prometheus data source from a variable, every query names only metrics the daemon
/// exposes, and every metric family has a panel.
fn check_dashboard(file: &str, exposition: &str, prefix: &str) {
    let path = grafana_dir().join(file);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
    let dashboard: Value =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{file} is not JSON: {e}"));
    assert!(dashboard["uid"].as_str().is_some_and(|u| !u.is_empty()));
    assert!(dashboard["title"].as_str().is_some_and(|t| !t.is_empty()));
    let variables = dashboard["templating"]["list"].as_array().unwrap();
    assert!(
        variables.iter().any(|v| v["name"] == "datasource"
            && v["type"] == "datasource"
            && v["query"] == "prometheus"),
        "{file}: no Prometheus data source variable"
    );
    let families = families(exposition);
    assert!(!families.is_empty(), "{exposition}");
    let mut used = std::collections::BTreeSet::new();
    let mut ids = std::collections::BTreeSet::new();
    let panels = dashboard["panels"].as_array().unwrap();
    for panel in panels {
        let title = panel["title"].as_str().unwrap();
        assert!(
            ids.insert(panel["id"].as_u64().unwrap()),
            "{file}: {title}: id"
        );
        assert_eq!(
            panel["datasource"]["uid"], "${datasource}",
            "{file}: {title}"
        );
        let grid = &panel["gridPos"];
        assert!(
            grid["x"].as_u64().unwrap() + grid["w"].as_u64().unwrap() <= 24,
            "{file}: {title}: wider than the grid"
        );
        let targets = panel["targets"].as_array().unwrap();
        assert!(!targets.is_empty(), "{file}: {title}: no query");
        for target in targets {
            let expr = target["expr"].as_str().unwrap();
            let names = metric_names(expr, prefix);
            assert!(!names.is_empty(), "{file}: {title}: {expr} names no metric");
            for name in names {
                let family = family_of(&families, &name).unwrap_or_else(|| {
                    panic!("{file}: {title}: {name} is not exposed; the daemon has {families:?}")
                });
                used.insert(family.to_owned());
            }
        }
    }
    let unused: Vec<_> = families.keys().filter(|f| !used.contains(*f)).collect();
    assert!(unused.is_empty(), "{file}: no panel for {unused:?}");
}

fn free_port() -> u16 {
    mtasts_testkit::free_port(Ipv4Addr::LOCALHOST.into(), &[]).unwrap()
}

/// A serve node on loopback without ACME, with its metrics listener.
async fn plain_serve(dir: &std::path::Path) -> Serve {
    let local = SocketAddr::from((Ipv4Addr::LOCALHOST, 0));
    Serve::start(ServeConfig {
        database: Some(format!("sqlite:{}", dir.join("serve.db").display())),
        data_dir: dir.to_path_buf(),
        zone: "hosted.test".to_owned(),
        public_ip: vec![IpAddr::from(Ipv4Addr::LOCALHOST)],
        https_listen: vec![local],
        http_listen: vec![local],
        dns_listen: vec![local],
        api_listen: local,
        acme_directory: String::new(),
        password_iterations: 1000,
        metrics_listen: Some(local),
        smtp_listen: Vec::new(),
        ..ServeConfig::default()
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn counters_move_with_policy_requests_dns_queries_and_acme_orders() {
    if !services::command_or_skip(Service::Curl, "curl", &["--version"])
        || !services::command_or_skip(Service::Dig, "dig", &["-v"])
    {
        return;
    }
    let net = TestNet::start().await;
    let ip = net.next_ip();
    let ports = Ports::pick(ip).await;
    let Some(pebble) = pebble(&net, ports).await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let database = format!("sqlite:{}", dir.path().join("serve.db").display());
    let serve = Serve::start(ServeConfig {
        metrics_listen: Some(SocketAddr::new(ip, 0)),
        ..config(&net, ip, ports, database, &pebble, dir.path())
    })
    .await
    .unwrap();
    let metrics = serve.addrs().metrics.expect("metrics_listen was set");
    let admin = serve.admin_token().unwrap().to_owned();

    // Before anything happened: every counter at zero, no domain, a fresh snapshot.
    let before = scrape(metrics).await;
    assert_eq!(
        sample(
            &before,
            "mtasts_serve_policy_requests_total{outcome=\"served\"}"
        ),
        0.0
    );
    assert_eq!(
        sample(
            &before,
            "mtasts_serve_acme_orders_total{outcome=\"issued\"}"
        ),
        0.0
    );
    assert_eq!(sample(&before, "mtasts_serve_snapshot_fresh"), 1.0);

    net.add_mx_host("mail.example.com", MxHostSpec::default())
        .await;
    net.zone().add_mx("example.com", 10, "mail.example.com");
    support::api::create_tenant(serve.addrs().api, &admin, "acme").await;
    let owner =
        support::api::create_token(serve.addrs().api, &admin, "acme", "owner", "test").await;
    let (status, body) = api(
        &serve,
        Method::POST,
        "/api/v1/domains",
        &owner,
        Some(json!({"domain": "example.com", "mode": "testing"})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    delegate(&net, &serve, "example.com", serve.addrs().dns[0]).await;

    // A strict sender fetches the policy once Pebble issued the certificate.
    let dns = resolver(&net);
    eventually(
        "the policy over HTTPS with an ACME certificate",
        Duration::from_secs(60),
        || async {
            fetch_policy(dns.clone(), &pebble, ports.https, "example.com")
                .await
                .ok()
        },
    )
    .await;

    // curl asks the policy host for a path it does not serve.
    let https = serve.addrs().https[0];
    let resolve = format!("mta-sts.example.com:{}:{}", https.port(), https.ip());
    let missing = curl(vec![
        "-k".into(),
        "--resolve".into(),
        resolve,
        format!("https://mta-sts.example.com:{}/nothing-here", https.port()),
    ])
    .await;
    assert!(missing.is_none(), "a 404 was expected");

    // dig: a name of the zone, one it does not have, one outside it.
    let authority = serve.addrs().dns[0];
    for name in [
        "policy.hosted.test.",
        "nothing.hosted.test.",
        "example.org.",
    ] {
        let output = tokio::process::Command::new("dig")
            .args([
                &format!("@{}", authority.ip()),
                "-p",
                &authority.port().to_string(),
                "+norecurse",
                "+tries=1",
                "+time=3",
                name,
                "A",
            ])
            .output()
            .await
            .unwrap();
        assert!(output.status.success(), "dig {name}");
    }

    // A real TLS report posted twice to the intake: stored once, then a duplicate.
    if let Some(samples) = services::samples_dir() {
        let host = ReportAddresses::new(&Delegation::new(ZONE).unwrap())
            .host()
            .to_owned();
        let file = samples.join("tlsrpt/mta-sts-exporter/google.json");
        for want in ["201", "200"] {
            let (code, body) = curl_status(vec![
                "-k".into(),
                "--resolve".into(),
                format!("{host}:{}:{}", https.port(), https.ip()),
                "--data-binary".into(),
                format!("@{}", file.display()),
                "-H".into(),
                "Content-Type: application/tlsrpt+json".into(),
                format!("https://{host}:{}{TLSRPT_PATH}", https.port()),
            ])
            .await;
            assert_eq!(code, want, "{body}");
        }
    }

    // The service's own certificate (reports.hosted.test and its policy host) is ordered
    // once the zone answers for those names; its expiry joins the hosted domains'.
    let service_days = eventually(
        "the service certificate's expiry in /metrics",
        Duration::from_secs(60),
        || async {
            samples(&scrape(metrics).await)
                .get("mtasts_serve_certificate_expiry_days{domain=\"reports.hosted.test\"}")
                .copied()
        },
    )
    .await;
    assert!(service_days > 1.0, "{service_days}");

    let after = scrape(metrics).await;
    let value = |series: &str| sample(&after, series);
    assert!(value("mtasts_serve_policy_requests_total{outcome=\"served\"}") >= 1.0);
    assert!(value("mtasts_serve_policy_requests_total{outcome=\"not_found\"}") >= 1.0);
    assert!(value("mtasts_serve_dns_queries_total{outcome=\"answered\"}") >= 1.0);
    assert!(value("mtasts_serve_dns_queries_total{outcome=\"nxdomain\"}") >= 1.0);
    assert!(value("mtasts_serve_dns_queries_total{outcome=\"refused\"}") >= 1.0);
    // The domain's certificate, and the service's own for the report host when it was due.
    assert!(value("mtasts_serve_acme_orders_total{outcome=\"issued\"}") >= 1.0);
    assert_eq!(
        value("mtasts_serve_acme_orders_total{outcome=\"failed\"}"),
        0.0
    );
    assert_eq!(value("mtasts_serve_domains"), 1.0);
    // Pebble's certificates last for years; the gauge counts days from now.
    let days = value("mtasts_serve_certificate_expiry_days{domain=\"example.com\"}");
    assert!(days > 1.0, "{days}");
    if services::samples_dir().is_some() {
        for outcome in ["new", "duplicate"] {
            assert_eq!(
                value(&format!(
                    "mtasts_serve_reports_received_total{{channel=\"https\",outcome=\"{outcome}\"}}"
                )),
                1.0,
                "{outcome}"
            );
        }
    }
    // Nothing was sent or refused yet: zero, but present for dashboards.
    assert_eq!(
        value("mtasts_serve_reports_received_total{channel=\"https\",outcome=\"refused\"}"),
        0.0
    );
    assert_eq!(
        value("mtasts_serve_alerts_sent_total{channel=\"webhook\",outcome=\"sent\"}"),
        0.0
    );
    serve.shutdown().await;
}

/// A TLS report mail as senders build it (RFC 8460 §5.3): multipart/report with the JSON
/// report as an `application/tlsrpt+json` part, base64 in lines of 76.
fn report_mail(report: &[u8]) -> Vec<u8> {
    use base64::Engine as _;
    let encoded = base64::engine::general_purpose::STANDARD.encode(report);
    let lines: Vec<&str> = encoded
        .as_bytes()
        .chunks(76)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect();
    format!(
        "From: tlsrpt@sender.example\r\n\
         To: tlsrpt@reports.hosted.test\r\n\
         Subject: Report Domain: company-y.example Submitter: sender.example Report-ID: <metrics@sender.example>\r\n\
         Message-ID: <metrics@sender.example>\r\n\
         TLS-Report-Domain: company-y.example\r\n\
         TLS-Report-Submitter: sender.example\r\n\
         MIME-Version: 1.0\r\n\
         Content-Type: multipart/report; report-type=\"tlsrpt\"; boundary=\"part\"\r\n\
         \r\n\
         --part\r\n\
         Content-Type: text/plain; charset=us-ascii\r\n\
         \r\n\
         A TLS report for company-y.example.\r\n\
         --part\r\n\
         Content-Type: application/tlsrpt+json\r\n\
         Content-Transfer-Encoding: base64\r\n\
         Content-Disposition: attachment; filename=\"sender.example!company-y.example!1!2.json\"\r\n\
         \r\n\
         {}\r\n\
         --part--\r\n",
        lines.join("\r\n")
    )
    .into_bytes()
}

/// The SMTP channel and the alerts: a report mailed to the intake counts as a new `smtp`
/// report, and the alert it raises (an MX the policy does not cover), delivered to the
/// tenant's webhook, as a `webhook` alert sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mailed_report_and_the_alert_it_raises_are_counted() {
    if !services::command_or_skip(Service::Curl, "curl", &["--version"]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let local = SocketAddr::from((Ipv4Addr::LOCALHOST, 0));
    let serve = Serve::start(ServeConfig {
        database: Some(format!("sqlite:{}", dir.path().join("serve.db").display())),
        data_dir: dir.path().to_path_buf(),
        zone: "hosted.test".to_owned(),
        public_ip: vec![IpAddr::from(Ipv4Addr::LOCALHOST)],
        https_listen: vec![local],
        http_listen: vec![local],
        dns_listen: vec![local],
        smtp_listen: vec![local],
        api_listen: local,
        metrics_listen: Some(local),
        acme_directory: String::new(),
        // Nothing answers there: the domain's MX lookups fail fast, which alerts do not need.
        dns: vec!["127.0.0.1:9".parse().unwrap()],
        password_iterations: 1000,
        alert_allow_private_targets: true,
        alert_interval: 1,
        ..ServeConfig::default()
    })
    .await
    .unwrap();
    let metrics = serve.addrs().metrics.unwrap();
    let admin = serve.admin_token().unwrap().to_owned();
    let api_addr = serve.addrs().api;
    support::api::create_tenant(api_addr, &admin, "acme").await;
    let owner = support::api::create_token(api_addr, &admin, "acme", "owner", "owner").await;
    let (status, body) = support::api::call(
        api_addr,
        Method::POST,
        "/api/v1/domains",
        &owner,
        Some(json!({"domain": "company-y.example", "mode": "testing",
            "mx": ["mx1.company-y.example"]})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let hook = crate::alerts::harness::Hook::start().await;
    let (status, body) = support::api::call(
        api_addr,
        Method::PUT,
        "/api/v1/alert-settings",
        &owner,
        Some(json!({"webhook_url": hook.url()})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");

    let before = scrape(metrics).await;
    for series in [
        "mtasts_serve_reports_received_total{channel=\"smtp\",outcome=\"new\"}",
        "mtasts_serve_alerts_sent_total{channel=\"webhook\",outcome=\"sent\"}",
    ] {
        assert_eq!(sample(&before, series), 0.0, "{series}");
    }

    // The report by mail, as a sender's MTA delivers it.
    let mut smtp = crate::mail::harness::Client::connect(serve.addrs().smtp[0]).await;
    smtp.expect(220).await;
    smtp.command("EHLO mta.sender.example", 250).await;
    let (code, text) = smtp
        .send_mail(&report_mail(&crate::alerts::serve::report_for_yesterday()))
        .await;
    assert_eq!(code, 250, "{text}");
    assert!(text.contains("1 new report"), "{text}");
    smtp.command("QUIT", 221).await;
    let mailed = scrape(metrics).await;
    assert_eq!(
        sample(
            &mailed,
            "mtasts_serve_reports_received_total{channel=\"smtp\",outcome=\"new\"}"
        ),
        1.0
    );
    assert_eq!(
        sample(
            &mailed,
            "mtasts_serve_reports_received_total{channel=\"https\",outcome=\"new\"}"
        ),
        0.0,
        "counted under its own channel only"
    );

    // The alert rounds (every second here) deliver to the webhook and count each delivery
    // once the receiver answered: the counter catches up with what the receiver got.
    let uncovered = |received: &[crate::alerts::harness::Received]| {
        received.iter().any(|r| {
            serde_json::from_slice::<Value>(&r.body).unwrap()["alert"]["kind"] == "uncovered-mx"
        })
    };
    let sent = eventually(
        "the uncovered MX's webhook, counted in /metrics",
        Duration::from_secs(20),
        || async {
            let delivered = hook.received();
            if !uncovered(&delivered) {
                return None;
            }
            let text = scrape(metrics).await;
            let sent = sample(
                &text,
                "mtasts_serve_alerts_sent_total{channel=\"webhook\",outcome=\"sent\"}",
            );
            (sent == delivered.len() as f64).then_some(text)
        },
    )
    .await;
    // Every delivery answered 200: none counted as failed.
    assert_eq!(
        sample(
            &sent,
            "mtasts_serve_alerts_sent_total{channel=\"webhook\",outcome=\"failed\"}"
        ),
        0.0
    );
    assert_eq!(
        sample(
            &sent,
            "mtasts_serve_alerts_sent_total{channel=\"email\",outcome=\"sent\"}"
        ),
        0.0,
        "no e-mail was configured"
    );
    serve.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_metrics_listen_nothing_listens_and_other_paths_are_not_found() {
    if !services::command_or_skip(Service::Curl, "curl", &["--version"]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let local = SocketAddr::from((Ipv4Addr::LOCALHOST, 0));
    let serve = Serve::start(ServeConfig {
        database: Some(format!("sqlite:{}", dir.path().join("serve.db").display())),
        data_dir: dir.path().to_path_buf(),
        zone: "hosted.test".to_owned(),
        public_ip: vec![IpAddr::from(Ipv4Addr::LOCALHOST)],
        https_listen: vec![local],
        http_listen: vec![local],
        dns_listen: vec![local],
        api_listen: local,
        acme_directory: String::new(),
        password_iterations: 1000,
        smtp_listen: Vec::new(),
        ..ServeConfig::default()
    })
    .await
    .unwrap();
    assert_eq!(serve.addrs().metrics, None);
    // The API listener does not serve metrics (they are for the operator's network only).
    assert!(
        curl(vec![format!("http://{}/metrics", serve.addrs().api)])
            .await
            .is_none()
    );
    serve.shutdown().await;

    let dir = tempfile::tempdir().unwrap();
    let serve = plain_serve(dir.path()).await;
    let metrics = serve.addrs().metrics.unwrap();
    assert!(!scrape(metrics).await.is_empty());
    assert!(
        curl(vec![format!("http://{metrics}/other")])
            .await
            .is_none()
    );
    serve.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grafana_dashboards_chart_every_metric_the_daemons_expose() {
    if !services::command_or_skip(Service::Curl, "curl", &["--version"]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let serve = plain_serve(dir.path()).await;
    let serve_text = scrape(serve.addrs().metrics.unwrap()).await;
    check_dashboard("mtasts-serve.json", &serve_text, "mtasts_serve_");
    serve.shutdown().await;

    // The resolver as `mtasts resolver` runs it, with its HTTP endpoint.
    let http = free_port();
    let socketmap = free_port();
    let resolver_dir = tempfile::tempdir().unwrap();
    let config = mtasts_sender::config::Config::from_toml_str(&format!(
        "data_dir = \"{}\"\n[socketmap]\ntcp = [\"127.0.0.1:{socketmap}\"]\n[http]\nlisten = [\"127.0.0.1:{http}\"]\n",
        resolver_dir.path().display()
    ))
    .unwrap();
    let server = mtasts_sender::server::bind(config, None).await.unwrap();
    let shutdown = tokio_util::sync::CancellationToken::new();
    let running = tokio::spawn(server.run(shutdown.clone(), Arc::new(tokio::sync::Notify::new())));
    let live = scrape(SocketAddr::from((Ipv4Addr::LOCALHOST, http))).await;
    // A family appears in the exposition once it has a series, and some only do after rare
    // events (a refresh run, a socketmap error): the resolver's registry with every family
    // touched lists them all; the live scrape must show nothing outside it.
    let registry = resolver_registry();
    let known = families(&registry);
    for family in families(&live).keys() {
        assert!(known.contains_key(family), "{family} is not in {known:?}");
    }
    assert!(
        live.contains("# TYPE mtasts_store_fallback gauge"),
        "{live}"
    );
    // The resolver's families are all prefixed `mtasts_`; the serve ones `mtasts_serve_`.
    check_dashboard("mtasts-resolver.json", &registry, "mtasts_");
    assert!(!live.contains("mtasts_serve_"));
    shutdown.cancel();
    running.await.unwrap().unwrap();
}

/// The exposition of the resolver's registry with one series in every family.
fn resolver_registry() -> String {
    use mtasts_sender::metrics::{
        DiscoveryLabels, KindLabels, LookupLabels, Metrics, OutcomeLabels, ProtocolLabels,
        ResultLabels,
    };
    let metrics = Metrics::new();
    metrics.lookup_answered("socketmap", "ok", "cache", 0.001);
    metrics.cache_result("hit");
    metrics
        .lookups
        .get_or_create(&LookupLabels {
            protocol: "http",
            answer: "ok",
            source: "fresh",
        })
        .inc();
    metrics
        .lookup_duration
        .get_or_create(&ProtocolLabels { protocol: "http" })
        .observe(0.01);
    metrics
        .cache
        .get_or_create(&ResultLabels { result: "miss" })
        .inc();
    metrics
        .discoveries
        .get_or_create(&DiscoveryLabels {
            outcome: "policy",
            result_type: String::new(),
        })
        .inc();
    metrics
        .refreshes
        .get_or_create(&OutcomeLabels { outcome: "policy" })
        .inc();
    metrics.store_fallback.set(0);
    metrics.store_fallback_transitions.inc();
    metrics
        .connections
        .get_or_create(&ProtocolLabels {
            protocol: "socketmap",
        })
        .set(1);
    metrics
        .socketmap_errors
        .get_or_create(&KindLabels { kind: "timeout" })
        .inc();
    metrics.encode()
}

#[test]
fn metric_names_are_found_in_expressions() {
    assert_eq!(
        metric_names(
            "sum by (le) (rate(mtasts_a_bucket{x=\"mtasts_no\"}[5m])) / mtasts_b",
            "mtasts_"
        ),
        // A label value is a name too as far as this scan goes; the families check rejects
        // it, so quoting a metric name in a label is caught rather than missed.
        vec!["mtasts_a_bucket", "mtasts_no", "mtasts_b"]
    );
    let families: BTreeMap<String, String> = [
        ("mtasts_a".to_owned(), "histogram".to_owned()),
        ("mtasts_c".to_owned(), "counter".to_owned()),
        ("mtasts_g".to_owned(), "gauge".to_owned()),
    ]
    .into();
    assert_eq!(family_of(&families, "mtasts_a_bucket"), Some("mtasts_a"));
    assert_eq!(family_of(&families, "mtasts_c_total"), Some("mtasts_c"));
    assert_eq!(family_of(&families, "mtasts_c"), None);
    assert_eq!(family_of(&families, "mtasts_g"), Some("mtasts_g"));
    assert_eq!(family_of(&families, "mtasts_g_total"), None);
}
