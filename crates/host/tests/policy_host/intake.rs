//! The HTTPS report intake (`POST https://reports.<zone>/tlsrpt`) over real TLS on loopback,
//! into a real reports database: real senders' samples (gzip and JSON) through curl,
//! duplicates counted once, and every bound (size, decompression, time, rate, concurrency,
//! database failure) with raw requests.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use flate2::Compression;
use flate2::write::GzEncoder;
use mtasts_host::client_addr::TrustedProxies;
use mtasts_host::policy_host::{IntakeLimits, PolicyHost, ReportIntake};
use mtasts_host::ratelimit::Rate;
use mtasts_host::snapshot::{Snapshot, ZoneSettings, handle};
use mtasts_proto::hosted::delegation::Delegation;
use mtasts_proto::hosted::reporting::{ReportAddresses, TLSRPT_PATH};
use mtasts_store::reports::{Filter, ReportDb};
use mtasts_testkit::TestNet;
use mtasts_testkit::services::{self, Service};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;

use crate::policy_host::common::*;

/// The report host of [`ZONE`].
fn report_host() -> String {
    ReportAddresses::new(&Delegation::new(ZONE).unwrap())
        .host()
        .to_string()
}

/// A real sender's report from `../shared/samples/tlsrpt`.
fn sample(path: &str) -> Vec<u8> {
    let file = services::samples_dir()
        .expect("shared/samples beside the work tree")
        .join("tlsrpt")
        .join(path);
    std::fs::read(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()))
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = GzEncoder::new(Vec::new(), Compression::default());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

/// A policy host with a report intake into a fresh SQLite reports database.
struct Intake {
    net: TestNet,
    addr: SocketAddr,
    db: ReportDb,
    _host: PolicyHost,
    _dir: tempfile::TempDir,
}

impl Intake {
    async fn start(limits: IntakeLimits) -> Intake {
        Self::start_behind(limits, TrustedProxies::default()).await
    }

    async fn start_behind(limits: IntakeLimits, proxies: TrustedProxies) -> Intake {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite:{}", dir.path().join("reports.db").display());
        let db = ReportDb::open(&url)
            .await
            .expect("open the reports database");
        Self::start_on(db, limits, proxies, dir).await
    }

    async fn start_on(
        db: ReportDb,
        limits: IntakeLimits,
        proxies: TrustedProxies,
        dir: tempfile::TempDir,
    ) -> Intake {
        let net = TestNet::start().await;
        let ip = net.next_ip();
        let listener = TcpListener::bind((ip, 0)).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (_, a_key) = issue(&net, "mta-sts.a.example");
        let (_, service_key) = issue(&net, &report_host());
        let mut snapshot = Snapshot {
            generation: 1,
            service_certificate: Some(service_key),
            ..Default::default()
        };
        let a = hosted("a.example", POLICY_A, Some(a_key));
        snapshot.domains.insert(a.name.clone(), a);
        let settings = ZoneSettings {
            delegation: Delegation::new(ZONE).unwrap(),
            public_ips: vec![ip],
            ttl: 300,
            report_mail: false,
            own_policy_mode: mtasts_proto::sts::policy::Mode::Testing,
        };
        let intake = std::sync::Arc::new(ReportIntake::with_db(db.clone(), limits, proxies));
        let host = PolicyHost::start_with_intake(
            listener,
            handle(snapshot),
            settings,
            short_limits(),
            Some(intake),
        );
        Intake {
            net,
            addr,
            db,
            _host: host,
            _dir: dir,
        }
    }

    /// Sends `head` (request line and headers, without the blank line) and `body` on a fresh
    /// verified TLS connection for `sni`, and reads the response.
    async fn send(&self, sni: &str, head: &str, body: &[u8]) -> HttpResponse {
        let mut tls = self.tls(sni).await;
        let mut request = format!("{head}\r\nConnection: close\r\n\r\n").into_bytes();
        request.extend_from_slice(body);
        tls.write_all(&request).await.unwrap();
        tls.flush().await.unwrap();
        let raw = read_to_close(&mut tls, Duration::from_secs(10))
            .await
            .expect("a response");
        parse_response(&raw)
    }

    async fn tls(&self, sni: &str) -> tokio_rustls::client::TlsStream<tokio::net::TcpStream> {
        let tcp = tokio::net::TcpStream::connect(self.addr).await.unwrap();
        let mut config = client_config(Trust::TestCa, &self.net);
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        let name = rustls::pki_types::ServerName::try_from(sni.to_string()).unwrap();
        tokio_rustls::TlsConnector::from(std::sync::Arc::new(config))
            .connect(name, tcp)
            .await
            .expect("TLS handshake with the service certificate")
    }

    /// A POST of `body` to the intake with `content_type`.
    async fn post(&self, content_type: &str, body: &[u8]) -> HttpResponse {
        let host = report_host();
        let head = format!(
            "POST {TLSRPT_PATH} HTTP/1.1\r\nHost: {host}\r\nContent-Type: {content_type}\r\nContent-Length: {}",
            body.len()
        );
        self.send(&host, &head, body).await
    }

    async fn reports(&self) -> Vec<mtasts_store::reports::ReportRow> {
        self.db.list(&Filter::default(), 100).await.unwrap()
    }
}

fn limits() -> IntakeLimits {
    IntakeLimits::default()
}

fn text(response: &HttpResponse) -> String {
    String::from_utf8_lossy(&response.body).into_owned()
}

/// `curl` with `args`, or `None` (and a note) when curl is not installed.
async fn curl(args: &[&str]) -> Option<std::process::Output> {
    match tokio::process::Command::new("curl")
        .args(args)
        .output()
        .await
    {
        Ok(output) => Some(output),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            services::skip(Service::Curl, &format_args!("curl is not installed ({e})"));
            None
        }
        Err(e) => panic!("cannot run curl: {e}"),
    }
}

#[tokio::test]
async fn curl_posts_real_reports_gzip_and_json_and_a_repeat_counts_once() {
    let site = Intake::start(limits()).await;
    let dir = tempfile::tempdir().unwrap();
    let google = dir.path().join("google.json.gz");
    std::fs::write(&google, gzip(&sample("mta-sts-exporter/google.json"))).unwrap();
    let microsoft = dir.path().join("microsoft.json");
    std::fs::write(&microsoft, sample("mta-sts-exporter/microsoft.json")).unwrap();
    let host = report_host();
    let port = site.addr.port();
    let resolve = format!("{host}:{port}:{}", site.addr.ip());
    let url = format!("https://{host}:{port}{TLSRPT_PATH}");
    let ca = site.net.ca_file();
    let post = |file: PathBuf, content_type: &'static str, version: &'static str| {
        let (resolve, url, ca) = (resolve.clone(), url.clone(), ca.clone());
        async move {
            let data = format!("@{}", file.display());
            let header = format!("Content-Type: {content_type}");
            curl(&[
                "--silent",
                "--show-error",
                version,
                "--cacert",
                ca.to_str().unwrap(),
                "--resolve",
                &resolve,
                "--data-binary",
                &data,
                "-H",
                &header,
                "--write-out",
                "%{http_code}",
                "--output",
                "/dev/null",
                &url,
            ])
            .await
            .map(|out| {
                assert!(
                    out.status.success(),
                    "{}",
                    String::from_utf8_lossy(&out.stderr)
                );
                String::from_utf8_lossy(&out.stdout).into_owned()
            })
        }
    };
    let Some(code) = post(google.clone(), "application/tlsrpt+gzip", "--http2").await else {
        return;
    };
    assert_eq!(code, "201");
    let code = post(microsoft, "application/tlsrpt+json", "--http1.1").await;
    assert_eq!(code.as_deref(), Some("201"));
    // The same report again, over the other HTTP version: success, stored once.
    let code = post(google, "application/tlsrpt+gzip", "--http1.1").await;
    assert_eq!(code.as_deref(), Some("200"));
    let reports = site.reports().await;
    assert_eq!(reports.len(), 2, "{reports:#?}");
    let google = reports
        .iter()
        .find(|r| r.organization == "Google Inc.")
        .expect("Google's report is stored");
    assert_eq!(google.duplicates, 1);
    assert!(google.source.starts_with("https:127."), "{}", google.source);
    let microsoft = reports
        .iter()
        .find(|r| r.organization.starts_with("Microsoft"))
        .expect("Microsoft's report is stored");
    assert_eq!(microsoft.duplicates, 0);
}

#[tokio::test]
async fn what_real_senders_label_their_reports_is_accepted() {
    let site = Intake::start(limits()).await;
    let json = sample("parsedmarc/smtp_tls.json");
    // +gzip on plain JSON, JSON types on gzip, the bare and the generic types, none at all.
    let response = site.post("application/tlsrpt+gzip", &json).await;
    assert_eq!(response.status, 201, "{}", text(&response));
    assert!(text(&response).contains("1 new"));
    let rfc = gzip(&sample("parsedmarc/rfc8460.json"));
    let response = site.post("application/json; charset=utf-8", &rfc).await;
    assert_eq!(response.status, 201, "{}", text(&response));
    let mail_ru = sample("parsedmarc/mail.ru.json");
    let response = site.post("application/tlsrpt", &mail_ru).await;
    assert_eq!(response.status, 201, "{}", text(&response));
    let host = report_host();
    let head = format!(
        "POST {TLSRPT_PATH} HTTP/1.1\r\nHost: {host}\r\nContent-Length: {}",
        json.len()
    );
    let response = site.send(&host, &head, &json).await;
    assert_eq!(response.status, 200, "{}", text(&response));
    assert!(text(&response).contains("1 duplicate"));
    assert_eq!(
        response.header("content-type"),
        Some("text/plain; charset=utf-8")
    );
    assert_eq!(site.reports().await.len(), 3);
}

#[tokio::test]
async fn the_report_host_routes_by_host_and_sni() {
    let site = Intake::start(limits()).await;
    let host = report_host();
    let json = sample("mta-sts-exporter/rfc.json");
    let post_to = |path: &str, authority: &str| {
        format!(
            "POST {path} HTTP/1.1\r\nHost: {authority}\r\nContent-Type: application/tlsrpt+json\r\nContent-Length: {}",
            json.len()
        )
    };
    // The service certificate is presented for the report host (the handshake verifies it).
    let response = site
        .send(
            &host,
            &format!("GET {TLSRPT_PATH} HTTP/1.1\r\nHost: {host}"),
            b"",
        )
        .await;
    assert_eq!(response.status, 405);
    assert_eq!(response.header("allow"), Some("POST"));
    let response = site.send(&host, &post_to("/tlsrpt/", &host), &json).await;
    assert_eq!(response.status, 404);
    let response = site
        .send(&host, &post_to("/.well-known/mta-sts.txt", &host), &json)
        .await;
    assert_eq!(response.status, 404);
    // A session for one name, a request for the other: 421 both ways.
    let response = site
        .send(
            &host,
            "GET /.well-known/mta-sts.txt HTTP/1.1\r\nHost: mta-sts.a.example",
            b"",
        )
        .await;
    assert_eq!(response.status, 421);
    let response = site
        .send("mta-sts.a.example", &post_to(TLSRPT_PATH, &host), &json)
        .await;
    assert_eq!(response.status, 421);
    // The intake path on a policy host is nothing.
    let response = site
        .send(
            "mta-sts.a.example",
            &post_to(TLSRPT_PATH, "mta-sts.a.example"),
            &json,
        )
        .await;
    assert_eq!(response.status, 404);
    // The policy host still serves policies.
    let response = site
        .send(
            "mta-sts.a.example",
            "GET /.well-known/mta-sts.txt HTTP/1.1\r\nHost: mta-sts.a.example",
            b"",
        )
        .await;
    assert_eq!(response.status, 200);
    assert_eq!(response.body, POLICY_A.as_bytes());
    assert!(site.reports().await.is_empty());
    // The certificate the report host presents is the service's.
    let tls = site.tls(&host).await;
    assert_eq!(dns_names(&peer_cert(&tls)), vec![host.clone()]);
}

#[tokio::test]
async fn oversized_bodies_and_zip_bombs_are_refused() {
    let site = Intake::start(IntakeLimits {
        max_body_bytes: 64 * 1024,
        ..limits()
    })
    .await;
    let host = report_host();
    // Refused on the declared length alone: no byte of the body is sent.
    let head = format!(
        "POST {TLSRPT_PATH} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/tlsrpt+gzip\r\nContent-Length: {}",
        64 * 1024 + 1
    );
    let response = site.send(&host, &head, b"").await;
    assert_eq!(response.status, 413, "{}", text(&response));
    // A chunked body that grows past the cap.
    let mut chunked = Vec::new();
    for _ in 0..5 {
        chunked.extend_from_slice(format!("{:x}\r\n", 16 * 1024).as_bytes());
        chunked.extend_from_slice(&[b' '; 16 * 1024]);
        chunked.extend_from_slice(b"\r\n");
    }
    chunked.extend_from_slice(b"0\r\n\r\n");
    let head = format!(
        "POST {TLSRPT_PATH} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/tlsrpt+json\r\nTransfer-Encoding: chunked"
    );
    let response = site.send(&host, &head, &chunked).await;
    assert_eq!(response.status, 413, "{}", text(&response));
    // 8 MiB that compress to a few kilobytes.
    let mut bomb = b"{\"organization-name\": \"".to_vec();
    bomb.resize(8 * 1024 * 1024, b'a');
    let bomb = gzip(&bomb);
    assert!(bomb.len() < 64 * 1024);
    let response = site.post("application/tlsrpt+gzip", &bomb).await;
    assert_eq!(response.status, 413, "{}", text(&response));
    assert!(
        text(&response).contains("decompressed"),
        "{}",
        text(&response)
    );
    // Nothing became a report; the bomb's input is kept with its error for an administrator.
    assert!(site.reports().await.is_empty());
    let errors = site.db.errors(&Filter::default(), 10).await.unwrap();
    assert_eq!(errors.len(), 1, "{errors:#?}");
    assert_eq!(errors[0].code, "too-large");
}

#[tokio::test]
async fn bodies_without_a_report_are_refused_and_kept() {
    let site = Intake::start(limits()).await;
    let response = site.post("text/html", b"<html></html>").await;
    assert_eq!(response.status, 415, "{}", text(&response));
    let response = site.post("application/tlsrpt+json", b"hello").await;
    assert_eq!(response.status, 400);
    assert!(text(&response).contains("neither gzip nor JSON"));
    let response = site.post("application/tlsrpt+json", b"").await;
    assert_eq!(response.status, 400);
    assert!(text(&response).contains("empty"));
    // JSON, but not a report: stored with its error, refused.
    let response = site
        .post("application/tlsrpt+json", br#"{"hello": "world"}"#)
        .await;
    assert_eq!(response.status, 400, "{}", text(&response));
    assert!(text(&response).contains("no readable TLS report"));
    assert!(site.reports().await.is_empty());
    let errors = site.db.errors(&Filter::default(), 10).await.unwrap();
    assert_eq!(errors.len(), 1, "{errors:#?}");
    assert!(
        errors[0].source.starts_with("https:127."),
        "{}",
        errors[0].source
    );
}

#[tokio::test]
async fn a_client_over_its_rate_gets_429() {
    let site = Intake::start(IntakeLimits {
        rate: Rate::per_minute(2, 1),
        ..limits()
    })
    .await;
    let json = sample("mta-sts-exporter/rfc.json");
    for status in [201, 200] {
        assert_eq!(
            site.post("application/tlsrpt+json", &json).await.status,
            status
        );
    }
    let response = site.post("application/tlsrpt+json", &json).await;
    assert_eq!(response.status, 429);
    let retry: u64 = response.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
    // The refused POST was not stored: one report, one duplicate.
    let reports = site.reports().await;
    assert_eq!(reports.len(), 1);
    assert_eq!(reports[0].duplicates, 1);
}

#[tokio::test]
async fn behind_a_trusted_proxy_the_forwarded_client_is_counted_and_recorded() {
    let proxies = TrustedProxies::new(vec!["127.0.0.0/8".parse().unwrap()]);
    let site = Intake::start_behind(
        IntakeLimits {
            rate: Rate::per_minute(1, 1),
            ..limits()
        },
        proxies,
    )
    .await;
    let host = report_host();
    let post_from = |client: &str, body: &[u8]| {
        format!(
            "POST {TLSRPT_PATH} HTTP/1.1\r\nHost: {host}\r\nX-Forwarded-For: {client}\r\nContent-Type: application/tlsrpt+json\r\nContent-Length: {}",
            body.len()
        )
    };
    let rfc = sample("mta-sts-exporter/rfc.json");
    let google = sample("mta-sts-exporter/google.json");
    let response = site
        .send(&host, &post_from("203.0.113.9", &rfc), &rfc)
        .await;
    assert_eq!(response.status, 201, "{}", text(&response));
    // Each forwarded client has its own budget.
    let response = site
        .send(&host, &post_from("203.0.113.9", &google), &google)
        .await;
    assert_eq!(response.status, 429);
    let response = site
        .send(&host, &post_from("198.51.100.7", &google), &google)
        .await;
    assert_eq!(response.status, 201, "{}", text(&response));
    let mut sources: Vec<String> = site.reports().await.into_iter().map(|r| r.source).collect();
    sources.sort();
    assert_eq!(sources, ["https:198.51.100.7", "https:203.0.113.9"]);
}

#[tokio::test]
async fn a_slow_body_gets_408_and_a_full_intake_503() {
    let site = Intake::start(IntakeLimits {
        body_timeout: Duration::from_millis(500),
        max_concurrent: 1,
        ..limits()
    })
    .await;
    let host = report_host();
    // The first POST sends half its body and stalls, holding the one intake slot.
    let mut slow = site.tls(&host).await;
    slow.write_all(
        format!(
            "POST {TLSRPT_PATH} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/tlsrpt+json\r\nContent-Length: 100\r\n\r\n{{\"organ"
        )
        .as_bytes(),
    )
    .await
    .unwrap();
    slow.flush().await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let json = sample("mta-sts-exporter/rfc.json");
    let response = site.post("application/tlsrpt+json", &json).await;
    assert_eq!(response.status, 503, "{}", text(&response));
    assert!(response.header("retry-after").is_some());
    let raw = read_to_close(&mut slow, Duration::from_secs(5))
        .await
        .expect("an answer to the slow POST");
    assert_eq!(parse_response(&raw).status, 408);
    // The slot is free again.
    let response = site.post("application/tlsrpt+json", &json).await;
    assert_eq!(response.status, 201, "{}", text(&response));
}

#[tokio::test]
async fn a_database_failure_acknowledges_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite:{}", dir.path().join("reports.db").display());
    let db = ReportDb::open(&url).await.unwrap();
    let site = Intake::start_on(db.clone(), limits(), TrustedProxies::default(), dir).await;
    db.close().await;
    let json = sample("mta-sts-exporter/rfc.json");
    let response = site.post("application/tlsrpt+json", &json).await;
    assert_eq!(response.status, 503, "{}", text(&response));
    assert_eq!(response.header("retry-after"), Some("60"));
    // Nothing was stored: the sender retries later.
    let reopened = ReportDb::open(&url).await.unwrap();
    assert!(
        reopened
            .list(&Filter::default(), 10)
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn curl_gets_413_for_an_oversized_upload() {
    let site = Intake::start(IntakeLimits {
        max_body_bytes: 64 * 1024,
        ..limits()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let big = dir.path().join("big.json");
    std::fs::write(&big, vec![b' '; 2 * 1024 * 1024]).unwrap();
    let host = report_host();
    let port = site.addr.port();
    let resolve = format!("{host}:{port}:{}", site.addr.ip());
    let url = format!("https://{host}:{port}{TLSRPT_PATH}");
    let ca = site.net.ca_file();
    let data = format!("@{}", big.display());
    // HTTP/1.1 only: curl 7.88 reports the RST_STREAM NO_ERROR that follows an early
    // HTTP/2 answer to an unfinished upload as a failure (RFC 9113 §8.1 says it must not);
    // `http2_gets_413_before_the_body` covers HTTP/2 with a conforming client.
    for version in ["--http1.1"] {
        let Some(out) = curl(&[
            "--silent",
            "--show-error",
            version,
            "--cacert",
            ca.to_str().unwrap(),
            "--resolve",
            &resolve,
            "--data-binary",
            &data,
            "-H",
            "Content-Type: application/tlsrpt+json",
            "--write-out",
            "%{http_code}",
            "--output",
            "/dev/null",
            &url,
        ])
        .await
        else {
            return;
        };
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{version}: {stderr}");
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            "413",
            "{version}: {stderr}"
        );
    }
    assert!(
        site.db
            .errors(&Filter::default(), 10)
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn http2_gets_413_before_the_body() {
    use futures::StreamExt;
    use http_body_util::{BodyExt, StreamBody};
    use hyper::body::{Bytes, Frame};

    let site = Intake::start(IntakeLimits {
        max_body_bytes: 64 * 1024,
        ..limits()
    })
    .await;
    let host = report_host();
    let mut config = client_config(Trust::TestCa, &site.net);
    config.alpn_protocols = vec![b"h2".to_vec()];
    let tcp = tokio::net::TcpStream::connect(site.addr).await.unwrap();
    let name = rustls::pki_types::ServerName::try_from(host.clone()).unwrap();
    let tls = tokio_rustls::TlsConnector::from(std::sync::Arc::new(config))
        .connect(name, tcp)
        .await
        .unwrap();
    let (mut sender, connection) = hyper::client::conn::http2::handshake(
        hyper_util::rt::TokioExecutor::new(),
        hyper_util::rt::TokioIo::new(tls),
    )
    .await
    .unwrap();
    tokio::spawn(connection);
    // A declared length over the cap and a body that never ends: the answer must not wait.
    let upload = futures::stream::iter([Ok::<_, std::convert::Infallible>(Frame::data(
        Bytes::from_static(b"{"),
    ))])
    .chain(futures::stream::pending());
    let request = hyper::Request::post(format!("https://{host}{TLSRPT_PATH}"))
        .header("content-type", "application/tlsrpt+json")
        .header("content-length", 1024 * 1024)
        .body(StreamBody::new(upload))
        .unwrap();
    let response = tokio::time::timeout(Duration::from_secs(10), sender.send_request(request))
        .await
        .expect("answered without the body")
        .unwrap();
    assert_eq!(response.status(), 413);
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert!(String::from_utf8_lossy(&body).contains("larger than 65536"));
}
