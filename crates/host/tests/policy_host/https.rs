//! Serving policies: the strict fetcher, routing, certificates, snapshot swaps, shutdown.

use std::time::{Duration, Instant};

use mtasts_net::fetch::FetchError;
use mtasts_proto::sts::policy::{Mode, Policy};
use tokio::io::AsyncWriteExt;

use crate::policy_host::common::*;

#[tokio::test]
async fn the_strict_fetcher_gets_and_parses_each_policy() {
    let site = Site::start().await;
    for (domain, body, mode) in [
        ("a.example", POLICY_A, Mode::Enforce),
        ("b.example", POLICY_B, Mode::Testing),
    ] {
        let report = site.fetch(domain).await;
        let fetched = report.outcome.unwrap_or_else(|e| panic!("{domain}: {e}"));
        assert_eq!(fetched.body, body.as_bytes(), "{domain}");
        assert_eq!(fetched.content_type.as_deref(), Some("text/plain"));
        assert_eq!(report.status, Some(200));
        assert_eq!(report.tls_version.as_deref(), Some("TLSv1.3"));
        let cert = report.certificate.expect("certificate info");
        assert_eq!(cert.dns_names, vec![format!("mta-sts.{domain}")]);
        let policy = Policy::parse(std::str::from_utf8(&fetched.body).unwrap()).unwrap();
        assert_eq!(policy.mode, mode);
    }
}

#[tokio::test]
async fn a_domain_without_a_certificate_gets_the_fallback_and_fails_webpki() {
    let site = Site::start().await;
    let report = site.fetch("c.example").await;
    assert!(
        matches!(report.outcome, Err(FetchError::Certificate(_))),
        "{:?}",
        report.outcome
    );
    assert_eq!(
        report.certificate.expect("certificate info").dns_names,
        vec![FALLBACK_NAME.to_string()]
    );
}

#[tokio::test]
async fn unknown_names_and_no_sni_get_the_fallback_certificate_and_an_http_answer() {
    let site = Site::start().await;
    for (sni, send_sni) in [
        ("mta-sts.unknown.example", true),
        (FALLBACK_NAME, true),
        ("mta-sts.a.example", false),
    ] {
        let mut tls = site
            .tls(sni, send_sni, &[b"http/1.1"], Trust::Any)
            .await
            .unwrap_or_else(|e| panic!("{sni} (SNI sent: {send_sni}): {e}"));
        assert_eq!(dns_names(&peer_cert(&tls)), vec![FALLBACK_NAME.to_string()]);
        let response = exchange(&mut tls, &get(POLICY_PATH, "mta-sts.unknown.example")).await;
        assert_eq!(response.status, 404, "{sni}");
        assert_eq!(response.header("content-type"), Some("text/plain"));
        assert_eq!(response.header("location"), None);
    }
    // Without SNI the Host decides (the fallback certificate already failed any real sender).
    let mut tls = site
        .tls("mta-sts.a.example", false, &[b"http/1.1"], Trust::Any)
        .await
        .unwrap();
    let response = exchange(&mut tls, &get(POLICY_PATH, "mta-sts.a.example")).await;
    assert_eq!(response.status, 200);
    assert_eq!(response.body, POLICY_A.as_bytes());
}

#[tokio::test]
async fn headers_of_the_policy_response() {
    let site = Site::start().await;
    let response = site
        .http1("mta-sts.a.example", &get(POLICY_PATH, "mta-sts.a.example"))
        .await;
    assert_eq!(response.status_line, "HTTP/1.1 200 OK");
    assert_eq!(response.header("content-type"), Some("text/plain"));
    assert_eq!(response.header("x-content-type-options"), Some("nosniff"));
    assert_eq!(response.header("cache-control"), Some("no-store"));
    assert_eq!(
        response.header("content-length"),
        Some(POLICY_A.len().to_string().as_str())
    );
    assert_eq!(response.body, POLICY_A.as_bytes());

    let head = site
        .http1(
            "mta-sts.a.example",
            &request("HEAD", POLICY_PATH, "mta-sts.a.example"),
        )
        .await;
    assert_eq!(head.status, 200);
    assert_eq!(
        head.header("content-length"),
        Some(POLICY_A.len().to_string().as_str())
    );
    assert!(head.body.is_empty());
}

#[tokio::test]
async fn proxy_max_age_is_opt_in() {
    let site = Site::start_with(mtasts_host::policy_host::ListenerLimits {
        proxy_max_age: Some(60),
        ..Default::default()
    })
    .await;
    let response = site
        .http1("mta-sts.a.example", &get(POLICY_PATH, "mta-sts.a.example"))
        .await;
    assert_eq!(response.header("cache-control"), Some("max-age=60"));
}

#[tokio::test]
async fn paths_methods_hosts_and_never_a_redirect() {
    let site = Site::start().await;
    let sni = "mta-sts.a.example";
    let host = "mta-sts.a.example";
    let port = site.addr.port();
    let cases: Vec<(String, u16)> = vec![
        (get(POLICY_PATH, host), 200),
        (get(POLICY_PATH, &format!("MTA-STS.A.example:{port}")), 200),
        (get(&format!("{POLICY_PATH}?id=1"), host), 200),
        (get("/", host), 404),
        (get("/mta-sts.txt", host), 404),
        (get("/.well-known/mta-sts.txt/", host), 404),
        (get("/.well-known/MTA-STS.txt", host), 404),
        (get("/.well-known", host), 404),
        (get(POLICY_PATH, "a.example"), 404),
        (get(POLICY_PATH, "www.a.example"), 404),
        (get(POLICY_PATH, "mta-sts.unknown.example"), 404),
        (
            "GET /.well-known/mta-sts.txt HTTP/1.0\r\n\r\n".to_string(),
            404,
        ),
        (request("POST", POLICY_PATH, host), 405),
        (request("PUT", POLICY_PATH, host), 405),
        (request("DELETE", POLICY_PATH, host), 405),
        (request("OPTIONS", POLICY_PATH, host), 405),
        (request("POST", "/", host), 404),
        // A POST with a body that is never read.
        (
            format!(
                "POST {POLICY_PATH} HTTP/1.1\r\nHost: {host}\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello"
            ),
            405,
        ),
        // Absolute form: the URI's authority is the target, not the Host header.
        (
            format!(
                "GET https://{host}{POLICY_PATH} HTTP/1.1\r\nHost: other.example\r\nConnection: close\r\n\r\n"
            ),
            200,
        ),
    ];
    for (request, status) in cases {
        let response = site.http1(sni, &request).await;
        assert_eq!(response.status, status, "{request:?}");
        assert_eq!(response.header("location"), None, "{request:?}");
        assert_eq!(response.header("content-type"), Some("text/plain"));
        assert_eq!(response.header("x-content-type-options"), Some("nosniff"));
        if status == 405 {
            assert_eq!(response.header("allow"), Some("GET, HEAD"));
        }
        if status != 200 {
            assert_eq!(response.header("cache-control"), Some("no-store"));
        }
    }
}

#[tokio::test]
async fn sni_and_host_must_agree() {
    let site = Site::start().await;
    let response = site
        .http1("mta-sts.a.example", &get(POLICY_PATH, "mta-sts.b.example"))
        .await;
    assert_eq!(response.status, 421);
    assert!(response.body.starts_with(b"misdirected"));
    let response = site
        .http1("mta-sts.b.example", &get(POLICY_PATH, "mta-sts.b.example"))
        .await;
    assert_eq!(response.status, 200);
    assert_eq!(response.body, POLICY_B.as_bytes());
}

#[tokio::test]
async fn keep_alive_serves_many_requests_on_one_connection() {
    let site = Site::start().await;
    let mut tls = site
        .tls("mta-sts.a.example", true, &[b"http/1.1"], Trust::TestCa)
        .await
        .unwrap();
    // Three pipelined requests, the last one closing.
    let keep = format!("GET {POLICY_PATH} HTTP/1.1\r\nHost: mta-sts.a.example\r\n\r\n");
    tls.write_all(format!("{keep}{keep}{}", get(POLICY_PATH, "mta-sts.a.example")).as_bytes())
        .await
        .unwrap();
    let raw = read_to_close(&mut tls, Duration::from_secs(10))
        .await
        .unwrap();
    let text = String::from_utf8(raw).unwrap();
    assert_eq!(text.matches("HTTP/1.1 200 OK\r\n").count(), 3, "{text}");
    assert_eq!(text.matches(POLICY_A).count(), 3, "{text}");
}

#[tokio::test]
async fn a_snapshot_swap_changes_body_and_certificate_without_restart() {
    let site = Site::start().await;
    let tls = site
        .tls("mta-sts.a.example", true, &[b"h2"], Trust::TestCa)
        .await
        .unwrap();
    assert_eq!(peer_cert(&tls), site.a_cert.chain[0]);
    drop(tls);

    let (new_cert, new_key) = issue(&site.net, "mta-sts.a.example");
    let new_body = "version: STSv1\r\nmode: testing\r\nmx: mx2.a.example\r\nmax_age: 3600\r\n";
    site.update(|s| {
        let a = s.domains.get_mut("a.example").unwrap();
        a.policy_body = new_body.into();
        a.certificate = Some(new_key);
        s.domains.remove("b.example");
    });

    let report = site.fetch("a.example").await;
    assert_eq!(report.outcome.unwrap().body, new_body.as_bytes());
    let tls = site
        .tls("mta-sts.a.example", true, &[b"h2"], Trust::TestCa)
        .await
        .unwrap();
    assert_eq!(peer_cert(&tls), new_cert.chain[0]);
    // A removed domain: fallback certificate, then 404.
    assert!(matches!(
        site.fetch("b.example").await.outcome,
        Err(FetchError::Certificate(_))
    ));
    let mut tls = site
        .tls("mta-sts.b.example", true, &[b"http/1.1"], Trust::Any)
        .await
        .unwrap();
    let response = exchange(&mut tls, &get(POLICY_PATH, "mta-sts.b.example")).await;
    assert_eq!(response.status, 404);
}

#[tokio::test]
async fn tls_1_2_and_1_3_both_resume() {
    let site = Site::start().await;
    for (version, name) in [
        (&rustls::version::TLS13, "TLSv1_3"),
        (&rustls::version::TLS12, "TLSv1_2"),
    ] {
        // One client configuration, hence one session store: the second connection resumes
        // (a ticket under TLS 1.3, a ticket or the session cache under TLS 1.2).
        let provider = std::sync::Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let mut config = rustls::ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(&[version])
            .unwrap()
            .with_root_certificates(site.net.root_store())
            .with_no_client_auth();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        let connector = tokio_rustls::TlsConnector::from(std::sync::Arc::new(config));
        let server_name = rustls::pki_types::ServerName::try_from("mta-sts.a.example").unwrap();
        let mut kinds = Vec::new();
        for _ in 0..2 {
            let tcp = tokio::net::TcpStream::connect(site.addr).await.unwrap();
            let mut tls = connector.connect(server_name.clone(), tcp).await.unwrap();
            let session = tls.get_ref().1;
            assert_eq!(format!("{:?}", session.protocol_version().unwrap()), name);
            let response = exchange(&mut tls, &get(POLICY_PATH, "mta-sts.a.example")).await;
            assert_eq!(response.status, 200);
            assert_eq!(response.body, POLICY_A.as_bytes());
            kinds.push(tls.get_ref().1.handshake_kind());
        }
        assert_eq!(
            kinds,
            vec![
                Some(rustls::HandshakeKind::Full),
                Some(rustls::HandshakeKind::Resumed)
            ],
            "{name}"
        );
    }
}

#[tokio::test]
async fn garbage_never_disturbs_other_connections() {
    let site = Site::start().await;
    // Not TLS at all.
    let mut raw = tokio::net::TcpStream::connect(site.addr).await.unwrap();
    raw.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    assert!(
        read_to_close(&mut raw, Duration::from_secs(5))
            .await
            .is_some()
    );
    // TLS, then not HTTP.
    let mut tls = site
        .tls("mta-sts.a.example", true, &[b"http/1.1"], Trust::TestCa)
        .await
        .unwrap();
    tls.write_all(b"\x00\x01\x02 nonsense \xff\r\n\r\n")
        .await
        .unwrap();
    let answer = read_to_close(&mut tls, Duration::from_secs(5))
        .await
        .unwrap();
    assert!(
        answer.is_empty() || answer.starts_with(b"HTTP/1.1 400"),
        "{answer:?}"
    );
    // An oversized request head.
    let mut tls = site
        .tls("mta-sts.a.example", true, &[b"http/1.1"], Trust::TestCa)
        .await
        .unwrap();
    let big = format!(
        "GET {POLICY_PATH} HTTP/1.1\r\nHost: mta-sts.a.example\r\nX-Big: {}\r\n\r\n",
        "a".repeat(64 * 1024)
    );
    let _ = tls.write_all(big.as_bytes()).await;
    let answer = read_to_close(&mut tls, Duration::from_secs(5))
        .await
        .unwrap();
    assert!(
        answer.is_empty() || answer.starts_with(b"HTTP/1.1 431"),
        "{:?}",
        String::from_utf8_lossy(&answer)
    );
    // HTTP/2 negotiated, then garbage instead of the preface.
    let mut tls = site
        .tls("mta-sts.a.example", true, &[b"h2"], Trust::TestCa)
        .await
        .unwrap();
    tls.write_all(b"this is not the HTTP/2 preface\r\n\r\n")
        .await
        .unwrap();
    assert!(
        read_to_close(&mut tls, Duration::from_secs(5))
            .await
            .is_some()
    );
    // A handshake abandoned half-way.
    let mut half = tokio::net::TcpStream::connect(site.addr).await.unwrap();
    half.write_all(&[0x16, 0x03, 0x01, 0x02, 0x00, 0x01])
        .await
        .unwrap();
    drop(half);

    let report = site.fetch("a.example").await;
    assert_eq!(report.outcome.unwrap().body, POLICY_A.as_bytes());
}

#[tokio::test]
async fn graceful_shutdown_closes_idle_connections_and_stops_accepting() {
    let mut site = Site::start_with(mtasts_host::policy_host::ListenerLimits {
        shutdown_grace: Duration::from_secs(30),
        ..Default::default()
    })
    .await;
    let mut tls = site
        .tls("mta-sts.a.example", true, &[b"http/1.1"], Trust::TestCa)
        .await
        .unwrap();
    tls.write_all(
        format!("GET {POLICY_PATH} HTTP/1.1\r\nHost: mta-sts.a.example\r\n\r\n").as_bytes(),
    )
    .await
    .unwrap();
    let mut first = [0u8; 15];
    tokio::io::AsyncReadExt::read_exact(&mut tls, &mut first)
        .await
        .unwrap();
    assert_eq!(&first, b"HTTP/1.1 200 OK");

    let host = site.host.take().unwrap();
    let started = Instant::now();
    host.shutdown().await;
    // The kept-alive connection was idle, so nothing waited for the grace period.
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "{:?}",
        started.elapsed()
    );
    let rest = read_to_close(&mut tls, Duration::from_secs(5)).await;
    assert!(rest.is_some(), "the idle connection was closed");
    assert!(tokio::net::TcpStream::connect(site.addr).await.is_err());
}

#[tokio::test]
async fn http2_post_with_an_unfinished_body_gets_its_405() {
    use bytes::Bytes;
    use futures::StreamExt;
    use http_body_util::{BodyExt, Either, Empty, StreamBody};
    use hyper::body::Frame;

    let site = Site::start().await;
    let tls = site
        .tls("mta-sts.a.example", true, &[b"h2"], Trust::TestCa)
        .await
        .unwrap();
    let (mut sender, connection) = hyper::client::conn::http2::handshake(
        hyper_util::rt::TokioExecutor::new(),
        hyper_util::rt::TokioIo::new(tls),
    )
    .await
    .unwrap();
    tokio::spawn(connection);
    // A body that starts and never ends: the answer must not wait for it, and must reach
    // the client intact (END_STREAM first, then RST_STREAM NO_ERROR).
    let upload = futures::stream::iter([Ok::<_, std::convert::Infallible>(Frame::data(
        Bytes::from_static(b"x=1"),
    ))])
    .chain(futures::stream::pending());
    let request = hyper::Request::post(format!("https://mta-sts.a.example{POLICY_PATH}"))
        .body(Either::Left(StreamBody::new(upload)))
        .unwrap();
    let response = tokio::time::timeout(Duration::from_secs(10), sender.send_request(request))
        .await
        .expect("answered without the whole body")
        .unwrap();
    assert_eq!(response.status(), 405);
    assert_eq!(response.headers()["allow"], "GET, HEAD");
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(body, "method not allowed\n");

    // The connection is still good for the next request.
    let request = hyper::Request::get(format!("https://mta-sts.a.example{POLICY_PATH}"))
        .body(Either::Right(Empty::<Bytes>::new()))
        .unwrap();
    let response = sender.send_request(request).await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.version(), hyper::Version::HTTP_2);
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(body, POLICY_A.as_bytes());
}

/// The report host's own policy at `mta-sts.reports.<zone>`, under the service certificate,
/// which is also presented for `reports.<zone>`; the strict fetcher accepts it.
#[tokio::test]
async fn the_report_host_serves_its_own_policy_under_the_service_certificate() {
    let site = Site::start().await;
    let policy_host = format!("mta-sts.reports.{ZONE}");
    let report_host = format!("reports.{ZONE}");
    // Before the service certificate exists: the fallback, which no sender accepts.
    site.net.zone().add_ip(&policy_host, site.ip());
    let report = site.fetch(&report_host).await;
    assert!(
        matches!(report.outcome, Err(FetchError::Certificate(_))),
        "{:?}",
        report.outcome
    );

    let (service_cert, service_key) = issue(&site.net, &policy_host);
    site.update(|s| s.service_certificate = Some(service_key));
    let report = site.fetch(&report_host).await;
    let fetched = report.outcome.expect("the own policy");
    let policy = Policy::parse(std::str::from_utf8(&fetched.body).unwrap()).unwrap();
    assert_eq!(policy.mode, Mode::Testing);
    assert_eq!(
        policy
            .mx
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>(),
        vec![report_host.clone()]
    );
    assert_eq!(policy.max_age.seconds(), 86_400);
    assert!(std::str::from_utf8(&fetched.body).unwrap().contains("\r\n"));
    assert_eq!(fetched.content_type.as_deref(), Some("text/plain"));

    // The same certificate for the report host's own name (the HTTPS intake and STARTTLS).
    for sni in [report_host.as_str(), policy_host.as_str()] {
        let tls = site
            .tls(sni, true, &[b"http/1.1"], Trust::Any)
            .await
            .expect("handshake");
        assert_eq!(peer_cert(&tls), service_cert.chain[0], "{sni}");
    }
    // Hosted domains keep their own certificates.
    let tls = site
        .tls("mta-sts.a.example", true, &[b"http/1.1"], Trust::TestCa)
        .await
        .expect("handshake");
    assert_eq!(peer_cert(&tls), site.a_cert.chain[0]);
}
