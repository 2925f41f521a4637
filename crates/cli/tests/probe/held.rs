//! What held before issue 10 and must keep holding: tenant isolation on every endpoint, the
//! dashboard's CSRF and XSS defences, malformed DNS over UDP and TCP, HTTP/2 floods on the
//! policy host, and `kill -9` in the middle of writes.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use serde_json::json;

use super::harness::{Site, ZONE};
use super::http::{self, Browser};
use super::{h2, wire};

#[test]
fn another_tenant_gets_404_on_every_domain_endpoint_and_no_tenant_administration() {
    let mut site = Site::new("");
    let serve = site.start();
    serve.tenant("alpha");
    serve.tenant("beta");
    let alpha = serve.token("alpha", "owner");
    let beta = serve.token("beta", "owner");
    let beta_readonly = serve.token("beta", "readonly");
    let added = serve.add_domain(&alpha, "alpha.example");
    assert_eq!(added.status, 201, "{}", added.text());
    let unknown = http::api(
        serve.api,
        "GET",
        "/api/v1/domains/nowhere.example",
        Some(&beta),
        None,
    );
    assert_eq!(unknown.status, 404);

    for token in [&beta, &beta_readonly] {
        let patch = json!({"mode": "enforce"});
        for (method, path, body) in [
            ("GET", "/api/v1/domains/alpha.example", None),
            ("PATCH", "/api/v1/domains/alpha.example", Some(&patch)),
            ("DELETE", "/api/v1/domains/alpha.example", None),
            ("GET", "/api/v1/domains/alpha.example/versions", None),
            ("POST", "/api/v1/domains/alpha.example/verify", None),
        ] {
            let reply = http::api(serve.api, method, path, Some(token), body);
            assert_eq!(reply.status, 404, "{method} {path}: {}", reply.text());
            // Exactly what a domain that does not exist answers: nothing to tell them apart.
            assert_eq!(reply.json(), unknown.json(), "{method} {path}");
        }
        let list = http::api(serve.api, "GET", "/api/v1/domains", Some(token), None);
        assert_eq!(list.status, 200);
        assert!(!list.text().contains("alpha.example"), "{}", list.text());
        // Tenant administration is for administrators only.
        for (method, path, body) in [
            ("GET", "/api/v1/tenants", None),
            ("POST", "/api/v1/tenants", Some(json!({"name": "gamma"}))),
            (
                "POST",
                "/api/v1/tenants/alpha/tokens",
                Some(json!({"role": "owner", "label": "x"})),
            ),
            (
                "POST",
                "/api/v1/tenants/alpha/users",
                Some(
                    json!({"email": "x@alpha.example", "password": "long enough password", "role": "owner"}),
                ),
            ),
        ] {
            let reply = http::api(serve.api, method, path, Some(token), body.as_ref());
            assert!(
                matches!(reply.status, 403 | 404),
                "{method} {path}: {} {}",
                reply.status,
                reply.text()
            );
        }
    }
    // Nothing changed for alpha.
    let detail = http::api(
        serve.api,
        "GET",
        "/api/v1/domains/alpha.example",
        Some(&alpha),
        None,
    );
    assert_eq!(detail.json()["mode"], "testing");
    assert_eq!(detail.json()["state"], "active");

    // The dashboard applies the same rule.
    let mut browser = Browser::new(serve.api);
    let login = browser.login("", &beta);
    assert_eq!(login.status, 303, "{}", login.text());
    assert_eq!(browser.get("/domains/alpha.example").status, 404);
    let csrf = browser.csrf_of("/");
    let change = browser.post(
        "/domains/alpha.example",
        &[
            ("csrf", &csrf),
            ("mode", "enforce"),
            ("mx", "mx.alpha.example"),
            ("max_age", "86400"),
            ("rua", ""),
        ],
    );
    assert_eq!(change.status, 404, "{}", change.text());
    let remove = browser.post("/domains/alpha.example/remove", &[("csrf", &csrf)]);
    assert_eq!(remove.status, 404, "{}", remove.text());
    assert!(serve.stop(), "SIGTERM ends serve cleanly");
}

#[test]
fn dashboard_refuses_forged_posts_and_escapes_what_it_shows() {
    let mut site = Site::new("");
    let serve = site.start();
    serve.tenant("alpha");
    let owner = serve.token("alpha", "owner");
    let mut browser = Browser::new(serve.api);
    let login = browser.login("", &owner);
    assert_eq!(login.status, 303, "{}", login.text());
    let csrf = browser.csrf_of("/");
    let add = |domain: &str| {
        vec![
            ("domain", domain.to_owned()),
            ("mode", "testing".to_owned()),
            ("mx", format!("mx.{domain}")),
            ("max_age", String::new()),
            ("rua", String::new()),
        ]
    };
    let fields = |extra: &[(&'static str, String)], csrf: Option<&str>| {
        let mut all: Vec<(&'static str, String)> = extra.to_vec();
        if let Some(csrf) = csrf {
            all.push(("csrf", csrf.to_owned()));
        }
        all
    };
    let post = |browser: &mut Browser, all: &[(&'static str, String)], headers: &[(&str, &str)]| {
        let pairs: Vec<(&str, &str)> = all.iter().map(|(k, v)| (*k, v.as_str())).collect();
        browser.post_with("/domains", &pairs, headers)
    };
    let forged = [
        (fields(&add("a.example"), None), vec![]),
        (fields(&add("a.example"), Some("0123456789abcdef")), vec![]),
        (
            fields(&add("a.example"), Some(&csrf)),
            vec![("Origin", "http://evil.example")],
        ),
        (
            fields(&add("a.example"), Some(&csrf)),
            vec![("Origin", "null"), ("Sec-Fetch-Site", "cross-site")],
        ),
    ];
    for (all, headers) in &forged {
        let reply = post(&mut browser, all, headers);
        assert_eq!(reply.status, 403, "{headers:?}: {}", reply.text());
        assert!(reply.header("content-security-policy").is_some());
    }
    // None of them added anything; the real form does.
    let list = http::api(serve.api, "GET", "/api/v1/domains", Some(&owner), None);
    assert!(!list.text().contains("a.example"), "{}", list.text());
    let origin = format!("http://{}", serve.api);
    let real = post(
        &mut browser,
        &fields(&add("a.example"), Some(&csrf)),
        &[("Origin", &origin), ("Sec-Fetch-Site", "same-origin")],
    );
    assert_eq!(real.status, 303, "{}", real.text());

    // Script in what the pages echo back comes out as text.
    let script = "<script>alert(1)</script>";
    let mut hostile = add(&format!("{script}.example"));
    hostile[4].1 = format!("mailto:{script}@a.example");
    let echoed = post(&mut browser, &fields(&hostile, Some(&csrf)), &[]);
    assert_eq!(echoed.status, 400, "{}", echoed.text());
    let rua = json!({"rua": format!("mailto:tls@a.example?{script}")});
    let _ = http::api(
        serve.api,
        "PATCH",
        "/api/v1/domains/a.example",
        Some(&owner),
        Some(&rua),
    );
    for page in [echoed, browser.get("/"), browser.get("/domains/a.example")] {
        let text = page.text();
        assert!(!text.contains("<script"), "{text}");
        let csp = page.header("content-security-policy").unwrap_or("");
        assert!(csp.contains("default-src 'none'"), "{csp}");
        assert_eq!(page.header("x-frame-options"), Some("DENY"));
    }
    assert!(serve.stop());
}

/// Packets no resolver sends, over UDP and TCP.
fn malformed() -> Vec<Vec<u8>> {
    let mut garbage = Vec::new();
    let mut x: u32 = 0x1234_5678;
    for _ in 0..600 {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        garbage.push(x as u8);
    }
    // A header claiming 65,535 of everything, and nothing after it.
    let counts = vec![
        0xab, 0xcd, 0x01, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    ];
    // A name of 200 one-byte labels (longer than 255 bytes), and one of 127 labels of 63.
    let mut many_labels = wire::query(7, "", wire::SOA, wire::IN, None);
    many_labels.truncate(12);
    for _ in 0..200 {
        many_labels.extend_from_slice(&[1, b'a']);
    }
    many_labels.extend_from_slice(&[0, 0, 6, 0, 1]);
    let mut long_labels = many_labels[..12].to_vec();
    for _ in 0..127 {
        long_labels.push(63);
        long_labels.extend_from_slice(&[b'b'; 63]);
    }
    long_labels.extend_from_slice(&[0, 0, 16, 0, 1]);
    // A compression pointer to itself.
    let mut looping = many_labels[..12].to_vec();
    looping.extend_from_slice(&[0xc0, 12, 0, 16, 0, 1]);
    // A question cut in the middle of a label.
    let cut = wire::query(8, ZONE, wire::SOA, wire::IN, None)[..17].to_vec();
    // An OPT record with a huge, lying RDLENGTH.
    let mut opt = wire::query(9, ZONE, wire::SOA, wire::IN, Some(4096));
    let n = opt.len();
    opt[n - 2] = 0xff;
    opt[n - 1] = 0xff;
    vec![
        Vec::new(),
        garbage[..5].to_vec(),
        garbage.clone(),
        counts,
        many_labels,
        long_labels,
        looping,
        cut,
        opt,
    ]
}

#[test]
fn malformed_dns_over_udp_and_tcp_gets_no_crash_and_answers_continue() {
    let mut site = Site::new("");
    let mut serve = site.start();
    assert!(wire::still_answers(serve.dns, ZONE));
    // No answer is as good as FORMERR here: wait briefly.
    let wait = Duration::from_millis(300);
    for packet in malformed() {
        // Whatever comes back must at least be a well-formed message.
        if let Some(answer) = wire::udp_within(serve.dns, &packet, wait) {
            wire::parse(&answer).unwrap_or_else(|e| panic!("{packet:?}: {e}"));
        }
        if let Some(answer) = wire::tcp_within(serve.dns, &packet, wait) {
            wire::parse(&answer).unwrap_or_else(|e| panic!("{packet:?}: {e}"));
        }
    }
    // TCP framing lies: a length longer than what follows (then the close), a zero length,
    // garbage as the length, a 65,535-byte frame of garbage.
    for raw in [
        vec![0xff, 0xff, 1, 2, 3],
        vec![0, 0, 0, 0],
        vec![0x00, 0x05, 0xde, 0xad, 0xbe, 0xef, 0x00],
        {
            let mut big = vec![0xff, 0xff];
            big.extend(std::iter::repeat_n(0x3f, 65_535));
            big
        },
    ] {
        let _ = wire::tcp_raw(serve.dns, &raw, wait);
    }
    // The largest UDP datagram there is.
    let _ = wire::udp_within(serve.dns, &vec![0x3f; 65_507], wait);
    assert!(serve.alive(), "{}", serve.output());
    assert!(wire::still_answers(serve.dns, ZONE), "{}", serve.output());
    assert!(serve.stop());
}

#[test]
fn http2_floods_on_the_policy_host_leave_it_answering() {
    let mut site = Site::new("");
    let mut serve = site.start();
    let host = "mta-sts.flood.test";
    assert!(h2::policy_host_answers(serve.https, host));

    // The raw client speaks HTTP/2: one request, one answer (HEADERS).
    let mut tls = h2::connect(serve.https, host, b"h2").unwrap();
    assert_eq!(tls.conn.alpn_protocol(), Some(&b"h2"[..]));
    let mut one = h2::preface();
    one.extend(h2::get(1, host));
    let answer = h2::write_then_drain(&mut tls, &one, Duration::from_secs(1));
    assert!(h2::frame_types(&answer).contains(&1), "{answer:?}");
    drop(tls);

    // Rapid reset: 5,000 streams opened and cancelled at once.
    let mut tls = h2::connect(serve.https, host, b"h2").unwrap();
    let mut flood = h2::preface();
    for i in 0..5_000u32 {
        flood.extend(h2::get(2 * i + 1, host));
        flood.extend(h2::reset(2 * i + 1));
    }
    let answer = h2::write_then_drain(&mut tls, &flood, Duration::from_secs(3));
    let types = h2::frame_types(&answer);
    // Not 5,000 answers: the server ends the connection (GOAWAY) long before.
    assert!(types.contains(&7), "{types:?}");
    assert!(types.iter().filter(|t| **t == 1).count() < 5_000);
    drop(tls);

    // Far more concurrent streams than allowed (100), never reset.
    let mut tls = h2::connect(serve.https, host, b"h2").unwrap();
    let mut flood = h2::preface();
    for i in 0..1_000u32 {
        flood.extend(h2::get(2 * i + 1, host));
    }
    let answer = h2::write_then_drain(&mut tls, &flood, Duration::from_secs(3));
    let types = h2::frame_types(&answer);
    // Refused streams (RST_STREAM) or the connection ended (GOAWAY), not a thousand answers.
    assert!(types.contains(&3) || types.contains(&7), "{types:?}");
    drop(tls);

    // The API port speaks HTTP/1.1 only: an HTTP/2 preface there is refused, not served.
    let reply = http::exchange(serve.api, &h2::preface());
    assert!(reply.is_err() || reply.as_ref().is_ok_and(|r| r.status >= 400));

    assert!(serve.alive(), "{}", serve.output());
    assert!(h2::policy_host_answers(serve.https, host));
    let me = http::api(serve.api, "GET", "/api/v1/me", Some(&serve.admin), None);
    assert_eq!(me.status, 200);
    assert!(serve.stop());
}

#[test]
fn kill_9_during_writes_loses_no_acknowledged_change() {
    const WRITERS: usize = 3;
    const ACKNOWLEDGED: usize = 300;
    let mut site = Site::new("");
    let serve = site.start();
    serve.tenant("alpha");
    // One token per writer: 100 writes each stay inside one token's burst of API calls.
    let writers: Vec<(String, String)> = (0..WRITERS)
        .map(|n| {
            let token = serve.token("alpha", "owner");
            let domain = format!("w{n}.example");
            assert_eq!(serve.add_domain(&token, &domain).status, 201);
            (token, domain)
        })
        .collect();
    let acked = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let api = serve.api;
    let handles: Vec<_> = writers
        .iter()
        .cloned()
        .map(|(token, domain)| {
            let acked = acked.clone();
            let stop = stop.clone();
            std::thread::spawn(move || {
                // Each write sets max_age to the next number; returns the last acknowledged.
                let mut last = 0;
                for i in 1..=200u64 {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    let body = json!({ "max_age": 100_000 + i }).to_string();
                    let auth = format!("Bearer {token}");
                    let reply = http::try_request(
                        api,
                        "PATCH",
                        &format!("/api/v1/domains/{domain}"),
                        &[
                            ("Authorization", &auth),
                            ("Content-Type", "application/json"),
                        ],
                        body.as_bytes(),
                    );
                    match reply {
                        Ok(r) if r.status == 200 => {
                            last = i;
                            acked.fetch_add(1, Ordering::SeqCst);
                        }
                        Ok(r) => panic!("PATCH {domain}: {} {}", r.status, r.text()),
                        // The server was killed under this write.
                        Err(_) => break,
                    }
                }
                last
            })
        })
        .collect();
    assert!(
        serve.wait_until(Duration::from_secs(40), || acked.load(Ordering::SeqCst)
            >= ACKNOWLEDGED)
    );
    // Writes are still in flight: kill the server under them.
    serve.kill9();
    stop.store(true, Ordering::Relaxed);
    let lasts: Vec<u64> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    assert!(lasts.iter().sum::<u64>() as usize >= ACKNOWLEDGED);

    let serve = site.start();
    for ((token, domain), last) in writers.iter().zip(&lasts) {
        let detail = http::api(
            serve.api,
            "GET",
            &format!("/api/v1/domains/{domain}"),
            Some(token),
            None,
        );
        assert_eq!(detail.status, 200, "{}", detail.text());
        let max_age = detail.json()["max_age"].as_u64().unwrap();
        // The last acknowledged write, or the one that was in flight when the server died.
        assert!(
            max_age == 100_000 + last || max_age == 100_000 + last + 1,
            "{domain}: max_age {max_age}, last acknowledged {}",
            100_000 + last
        );
        // Every acknowledged write is a version of the history (plus the first one).
        let versions = all_versions(&serve, token, domain);
        for i in 1..=*last {
            assert!(
                versions.contains(&(100_000 + i)),
                "{domain}: the acknowledged max_age {} is not in the history",
                100_000 + i
            );
        }
    }
    assert!(serve.stop());
}

/// Every version's max_age of `domain`, following `next_cursor` when the list is paginated.
fn all_versions(serve: &super::harness::Running, token: &str, domain: &str) -> Vec<u64> {
    let mut out = Vec::new();
    let mut path = format!("/api/v1/domains/{domain}/versions?limit=500");
    for _ in 0..100 {
        let page = http::api(serve.api, "GET", &path, Some(token), None);
        assert_eq!(page.status, 200, "{}", page.text());
        let json = page.json();
        for version in json["versions"].as_array().unwrap() {
            out.extend(version["max_age"].as_u64());
        }
        match json["next_cursor"].as_str() {
            Some(cursor) => {
                path = format!("/api/v1/domains/{domain}/versions?limit=500&cursor={cursor}")
            }
            None => break,
        }
    }
    out
}
