//! The strict policy fetcher against testkit's HTTPS policy hosts.

use std::net::IpAddr;
use std::time::Duration;

use mtasts_net::cert::CertProblem;
use mtasts_net::dns::DnsError;
use mtasts_net::fetch::{FetchConfig, FetchError, FetchReport, PolicyFetch, PolicyFetcher};
use mtasts_net::trust::TrustConfig;
use mtasts_proto::ResultType;
use mtasts_testkit::{
    BodyFraming, CertSpec, Fault, PolicyHostSpec, PolicyResponse, TestNet, TlsVersions,
};

use crate::util::{dns_client, fetcher};

const DOMAIN: &str = "example.com";
const HOST: &str = "mta-sts.example.com";
const POLICY: &str = "version: STSv1\nmode: enforce\nmx: mail.example.com\nmax_age: 86400\n";
const POLICY_CRLF: &str =
    "version: STSv1\r\nmode: enforce\r\nmx: *.example.com\r\nmax_age: 604800\r\n";
const T: Duration = Duration::from_secs(10);
const SHORT: Duration = Duration::from_secs(1);

/// Serves `spec` for `example.com` and fetches it.
async fn serve_and_fetch(
    spec: PolicyHostSpec,
    timeout: Duration,
) -> (TestNet, IpAddr, FetchReport) {
    let net = TestNet::start().await;
    let ip = net.add_policy_host(DOMAIN, spec).await;
    let report = fetcher(&net, timeout).fetch(DOMAIN).await;
    (net, ip, report)
}

async fn fetch_response(response: PolicyResponse) -> FetchReport {
    serve_and_fetch(PolicyHostSpec::new(response), T).await.2
}

async fn fetch_cert(cert: CertSpec) -> FetchReport {
    serve_and_fetch(
        PolicyHostSpec::with_cert(cert, PolicyResponse::policy(POLICY)),
        T,
    )
    .await
    .2
}

fn body(report: &FetchReport) -> &[u8] {
    match &report.outcome {
        Ok(policy) => &policy.body,
        Err(e) => panic!("fetch failed: {e:?} ({report:?})"),
    }
}

fn error(report: &FetchReport) -> &FetchError {
    match &report.outcome {
        Ok(policy) => panic!("fetch succeeded: {policy:?}"),
        Err(e) => e,
    }
}

// ---- success -------------------------------------------------------------------------------

#[tokio::test]
async fn success_fills_the_report() {
    let (net, ip, report) =
        serve_and_fetch(PolicyHostSpec::new(PolicyResponse::policy(POLICY)), T).await;
    assert_eq!(body(&report), POLICY.as_bytes());
    let policy = report.outcome.as_ref().unwrap();
    assert_eq!(policy.content_type.as_deref(), Some("text/plain"));
    assert_eq!(
        report.url,
        format!(
            "https://{HOST}:{}/.well-known/mta-sts.txt",
            net.https_port()
        )
    );
    assert_eq!(report.addresses, vec![ip]);
    assert_eq!(report.ip, Some(ip));
    assert_eq!(report.status, Some(200));
    assert_eq!(report.tls_version.as_deref(), Some("TLSv1.3"));
    let cert = report.certificate.as_ref().expect("certificate facts");
    assert_eq!(cert.dns_names, vec![HOST.to_string()]);
    assert_eq!(cert.common_name.as_deref(), Some(HOST));
    assert!(cert.issuer.contains("mtasts test root"), "{}", cert.issuer);
    assert_eq!(cert.chain_len, 1);
    assert!(cert.not_before < time::OffsetDateTime::now_utc());
    assert!(cert.not_after > time::OffsetDateTime::now_utc());
}

#[tokio::test]
async fn success_with_crlf_lines() {
    let report = fetch_response(PolicyResponse::policy(POLICY_CRLF)).await;
    assert_eq!(body(&report), POLICY_CRLF.as_bytes());
}

#[tokio::test]
async fn the_request_is_strict() {
    let (net, _, report) =
        serve_and_fetch(PolicyHostSpec::new(PolicyResponse::policy(POLICY)), T).await;
    body(&report);
    let requests = net.policy_requests();
    assert_eq!(requests.len(), 1);
    let request = &requests[0];
    assert_eq!(request.sni, HOST);
    assert_eq!(request.method, "GET");
    assert_eq!(request.target, "/.well-known/mta-sts.txt");
    assert_eq!(request.version, "HTTP/1.1");
    assert_eq!(
        request.header("host"),
        Some(format!("{HOST}:{}", net.https_port()).as_str())
    );
    assert_eq!(request.header("connection"), Some("close"));
    assert_eq!(request.header("accept-encoding"), None);
    assert!(
        request
            .headers
            .iter()
            .all(|(name, _)| !name.to_ascii_lowercase().starts_with("if-")),
        "{:?}",
        request.headers
    );
}

#[tokio::test]
async fn content_type_with_parameters_is_fine() {
    let ct = "Text/Plain; charset=UTF-8";
    let report = fetch_response(PolicyResponse::policy(POLICY).content_type(Some(ct))).await;
    assert_eq!(body(&report), POLICY.as_bytes());
    assert_eq!(report.outcome.unwrap().content_type.as_deref(), Some(ct));
}

#[tokio::test]
async fn missing_content_type_is_accepted() {
    let report = fetch_response(PolicyResponse::policy(POLICY).content_type(None)).await;
    assert_eq!(body(&report), POLICY.as_bytes());
    assert_eq!(report.outcome.unwrap().content_type, None);
}

#[tokio::test]
async fn other_content_types_are_rejected() {
    for ct in ["text/html; charset=utf-8", "application/octet-stream"] {
        let report = fetch_response(PolicyResponse::policy(POLICY).content_type(Some(ct))).await;
        assert_eq!(error(&report), &FetchError::ContentType(ct.to_string()));
        assert_eq!(
            error(&report).result_type(),
            ResultType::StsPolicyFetchError
        );
    }
}

#[tokio::test]
async fn gzip_is_decoded() {
    let report = fetch_response(PolicyResponse::policy(POLICY_CRLF).gzip()).await;
    assert_eq!(body(&report), POLICY_CRLF.as_bytes());
}

#[tokio::test]
async fn gzip_bomb_hits_the_cap() {
    // 1 MiB decoded, about 1 KiB on the wire.
    let report = fetch_response(PolicyResponse::oversized(1024 * 1024).gzip()).await;
    assert_eq!(error(&report), &FetchError::TooLarge(64 * 1024));
}

#[tokio::test]
async fn unsupported_content_encoding_is_an_http_error() {
    let report =
        fetch_response(PolicyResponse::policy(POLICY).header("Content-Encoding", "br")).await;
    assert!(matches!(error(&report), FetchError::Http(_)), "{report:?}");
}

#[tokio::test]
async fn chunked_and_close_delimited_bodies() {
    for framing in [BodyFraming::Chunked, BodyFraming::CloseDelimited] {
        let report = fetch_response(PolicyResponse::policy(POLICY).framing(framing)).await;
        assert_eq!(body(&report), POLICY.as_bytes(), "{framing:?}");
    }
}

#[tokio::test]
async fn tls12_only_host() {
    let spec = PolicyHostSpec {
        tls: TlsVersions::Tls12Only,
        ..PolicyHostSpec::new(PolicyResponse::policy(POLICY))
    };
    let (_, _, report) = serve_and_fetch(spec, T).await;
    assert_eq!(body(&report), POLICY.as_bytes());
    assert_eq!(report.tls_version.as_deref(), Some("TLSv1.2"));
}

#[tokio::test]
async fn trust_from_a_ca_file() {
    let net = TestNet::start().await;
    net.add_sts_domain(DOMAIN, POLICY, "v=STSv1; id=1").await;
    let roots = TrustConfig {
        builtin_roots: false,
        ca_files: vec![net.ca_file()],
    }
    .root_store()
    .unwrap();
    let mut config = FetchConfig::new(roots);
    config.port = net.https_port();
    let report = PolicyFetcher::new(config, dns_client(&net, T))
        .fetch(DOMAIN)
        .await;
    assert_eq!(body(&report), POLICY.as_bytes());
    // The built-in roots alone do not trust the test CA.
    let mut config = FetchConfig::new(TrustConfig::default().root_store().unwrap());
    config.port = net.https_port();
    let report = PolicyFetcher::new(config, dns_client(&net, T))
        .fetch(DOMAIN)
        .await;
    assert!(matches!(
        error(&report),
        FetchError::Certificate(CertProblem::Untrusted { .. })
    ));
}

#[tokio::test]
async fn delegated_policy_host_via_cname() {
    let net = TestNet::start().await;
    let ip = net.next_ip();
    net.start_https_listener(ip).await;
    net.zone()
        .add_cname("mta-sts.customer.example", "policy.provider.example");
    net.zone().add_ip("policy.provider.example", ip);
    net.set_policy_host(
        "customer.example",
        PolicyHostSpec::new(PolicyResponse::policy(POLICY)),
    );
    let report = fetcher(&net, T).fetch("customer.example").await;
    assert_eq!(body(&report), POLICY.as_bytes());
    // C36: the provider only has a certificate for its own name.
    let wrong = CertSpec::WrongName("policy.provider.example".into());
    net.set_policy_host(
        "customer.example",
        PolicyHostSpec::with_cert(wrong, PolicyResponse::policy(POLICY)),
    );
    let report = fetcher(&net, T).fetch("customer.example").await;
    assert_eq!(
        error(&report),
        &FetchError::Certificate(CertProblem::NameMismatch {
            expected: "mta-sts.customer.example".into()
        })
    );
}

#[tokio::test]
async fn the_next_address_is_tried_when_one_refuses() {
    let net = TestNet::start().await;
    let dead = net.next_ip();
    net.zone().add_ip(HOST, dead);
    let live = net
        .add_policy_host(DOMAIN, PolicyHostSpec::new(PolicyResponse::policy(POLICY)))
        .await;
    let report = fetcher(&net, T).fetch(DOMAIN).await;
    assert_eq!(body(&report), POLICY.as_bytes());
    assert_eq!(report.addresses, vec![dead, live]);
    assert_eq!(report.ip, Some(live));
}

// ---- size --------------------------------------------------------------------------------

#[tokio::test]
async fn body_at_the_cap_is_fine() {
    let report = fetch_response(PolicyResponse::oversized(64 * 1024)).await;
    assert_eq!(body(&report).len(), 64 * 1024);
}

#[tokio::test]
async fn oversized_body_with_content_length() {
    let report = fetch_response(PolicyResponse::oversized(100 * 1024)).await;
    assert_eq!(error(&report), &FetchError::TooLarge(64 * 1024));
    assert_eq!(report.status, Some(200));
}

#[tokio::test]
async fn oversized_body_without_content_length() {
    for framing in [BodyFraming::Chunked, BodyFraming::CloseDelimited] {
        let report = fetch_response(PolicyResponse::oversized(100 * 1024).framing(framing)).await;
        assert_eq!(
            error(&report),
            &FetchError::TooLarge(64 * 1024),
            "{framing:?}"
        );
    }
}

#[tokio::test]
async fn a_smaller_cap_is_honoured() {
    let net = TestNet::start().await;
    net.add_sts_domain(DOMAIN, POLICY, "v=STSv1; id=1").await;
    let mut config = FetchConfig::new(net.root_store());
    config.port = net.https_port();
    config.max_bytes = 10;
    let report = PolicyFetcher::new(config, dns_client(&net, T))
        .fetch(DOMAIN)
        .await;
    assert_eq!(error(&report), &FetchError::TooLarge(10));
}

// ---- timeouts ----------------------------------------------------------------------------

#[tokio::test]
async fn slow_headers_time_out() {
    let spec =
        PolicyHostSpec::new(PolicyResponse::policy(POLICY).header_delay(Duration::from_secs(5)));
    let (_, ip, report) = serve_and_fetch(spec, SHORT).await;
    assert_eq!(error(&report), &FetchError::Timeout(SHORT));
    assert_eq!(
        error(&report).result_type(),
        ResultType::StsPolicyFetchError
    );
    // What was learnt before the deadline is kept.
    assert_eq!(report.ip, Some(ip));
    assert_eq!(report.tls_version.as_deref(), Some("TLSv1.3"));
    assert!(report.certificate.is_some());
    assert_eq!(report.status, None);
}

#[tokio::test]
async fn slow_body_times_out() {
    let spec =
        PolicyHostSpec::new(PolicyResponse::policy(POLICY).trickle(Duration::from_millis(100)));
    let (_, _, report) = serve_and_fetch(spec, SHORT).await;
    assert_eq!(error(&report), &FetchError::Timeout(SHORT));
    assert_eq!(report.status, Some(200));
}

#[tokio::test]
async fn silent_server_times_out() {
    let net = TestNet::start().await;
    let ip = net.next_ip();
    // Accepts TCP connections and never says a word.
    let listener = tokio::net::TcpListener::bind((ip, net.https_port()))
        .await
        .unwrap();
    let _hold = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((tcp, _)) = listener.accept().await {
            held.push(tcp);
        }
    });
    net.zone().add_ip(HOST, ip);
    let report = fetcher(&net, SHORT).fetch(DOMAIN).await;
    assert_eq!(error(&report), &FetchError::Timeout(SHORT));
    assert_eq!(report.certificate, None);
}

// ---- HTTP status -------------------------------------------------------------------------

#[tokio::test]
async fn redirects_are_not_followed() {
    for status in [301, 302] {
        let location = "https://www.example.com/.well-known/mta-sts.txt";
        let report = fetch_response(PolicyResponse::redirect(status, location)).await;
        assert_eq!(
            error(&report),
            &FetchError::Redirect {
                status,
                location: Some(location.to_string())
            }
        );
        assert_eq!(report.status, Some(status));
    }
}

#[tokio::test]
async fn redirect_without_location() {
    let report = fetch_response(PolicyResponse::status(307)).await;
    assert_eq!(
        error(&report),
        &FetchError::Redirect {
            status: 307,
            location: None
        }
    );
}

#[tokio::test]
async fn statuses_other_than_200_fail() {
    for status in [204, 404, 500] {
        let report = fetch_response(PolicyResponse::status(status)).await;
        assert_eq!(error(&report), &FetchError::Status(status));
        assert_eq!(report.status, Some(status));
        assert_eq!(
            error(&report).result_type(),
            ResultType::StsPolicyFetchError
        );
    }
}

// ---- malformed HTTP ------------------------------------------------------------------------

#[tokio::test]
async fn garbage_is_an_http_error() {
    let report = fetch_response(PolicyResponse::raw(b"SSH-2.0-OpenSSH_9.6\r\n\r\n".to_vec())).await;
    assert!(matches!(error(&report), FetchError::Http(_)), "{report:?}");
    assert_eq!(report.status, None);
}

#[tokio::test]
async fn truncated_body_is_an_http_error() {
    let raw = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 100\r\n\r\nversion: STSv1\r\n";
    let report = fetch_response(PolicyResponse::raw(raw.to_vec())).await;
    assert!(matches!(error(&report), FetchError::Http(_)), "{report:?}");
}

#[tokio::test]
async fn huge_header_is_bounded() {
    let huge = "x".repeat(100 * 1024);
    let report = fetch_response(PolicyResponse::policy(POLICY).header("X-Filler", &huge)).await;
    assert!(matches!(error(&report), FetchError::Http(_)), "{report:?}");
}

#[tokio::test]
async fn many_headers_are_bounded() {
    let mut response = PolicyResponse::policy(POLICY);
    for i in 0..500 {
        response = response.header(&format!("X-H{i}"), "1");
    }
    let report = fetch_response(response).await;
    assert!(matches!(error(&report), FetchError::Http(_)), "{report:?}");
}

// ---- DNS and connection ---------------------------------------------------------------------

#[tokio::test]
async fn policy_host_without_address() {
    let net = TestNet::start().await;
    net.zone()
        .add_txt("_mta-sts.example.com", &["v=STSv1; id=1"]);
    let report = fetcher(&net, T).fetch(DOMAIN).await;
    assert_eq!(error(&report), &FetchError::Dns(DnsError::NxDomain));
    assert!(report.addresses.is_empty() && report.ip.is_none());
    // The name exists, without addresses.
    net.zone().add_txt(HOST, &["not an address"]);
    let report = fetcher(&net, T).fetch(DOMAIN).await;
    assert_eq!(error(&report), &FetchError::Dns(DnsError::NoData));
}

#[tokio::test]
async fn policy_host_lookup_fails() {
    let net = TestNet::start().await;
    net.zone().set_fault(HOST, Fault::ServFail);
    let report = fetcher(&net, T).fetch(DOMAIN).await;
    assert!(
        matches!(error(&report), FetchError::Dns(DnsError::ServerFailure(_))),
        "{report:?}"
    );
}

#[tokio::test]
async fn connection_refused() {
    let net = TestNet::start().await;
    let ip = net.next_ip();
    net.zone().add_ip(HOST, ip);
    let report = fetcher(&net, T).fetch(DOMAIN).await;
    assert!(
        matches!(error(&report), FetchError::Connect(_)),
        "{report:?}"
    );
    assert_eq!(report.ip, Some(ip));
    assert_eq!(
        error(&report).result_type(),
        ResultType::StsPolicyFetchError
    );
}

#[tokio::test]
async fn unknown_sni_fails_the_handshake() {
    let net = TestNet::start().await;
    let ip = net.next_ip();
    net.start_https_listener(ip).await;
    net.zone().add_ip(HOST, ip);
    let report = fetcher(&net, T).fetch(DOMAIN).await;
    assert!(matches!(error(&report), FetchError::Tls(_)), "{report:?}");
    assert_eq!(report.certificate, None);
}

// ---- certificates --------------------------------------------------------------------------

fn cert_problem(report: &FetchReport) -> &CertProblem {
    match error(report) {
        FetchError::Certificate(problem) => {
            assert_eq!(error(report).result_type(), ResultType::StsWebpkiInvalid);
            assert!(
                report.certificate.is_some(),
                "the invalid certificate is described"
            );
            assert_eq!(report.status, None);
            problem
        }
        other => panic!("expected a certificate problem, got {other:?}"),
    }
}

#[tokio::test]
async fn expired_certificate() {
    let report = fetch_cert(CertSpec::Expired).await;
    assert_eq!(cert_problem(&report), &CertProblem::Expired);
    let cert = report.certificate.unwrap();
    assert!(cert.not_after < time::OffsetDateTime::now_utc());
    assert_eq!(cert.dns_names, vec![HOST.to_string()]);
}

#[tokio::test]
async fn not_yet_valid_certificate() {
    let report = fetch_cert(CertSpec::NotYetValid).await;
    assert_eq!(cert_problem(&report), &CertProblem::NotYetValid);
    assert!(report.certificate.unwrap().not_before > time::OffsetDateTime::now_utc());
}

#[tokio::test]
async fn wrong_name_certificate() {
    let report = fetch_cert(CertSpec::WrongName("www.example.com".into())).await;
    assert_eq!(
        cert_problem(&report),
        &CertProblem::NameMismatch {
            expected: HOST.into()
        }
    );
    assert_eq!(
        report.certificate.unwrap().dns_names,
        vec!["www.example.com".to_string()]
    );
}

#[tokio::test]
async fn cn_only_certificate() {
    let report = fetch_cert(CertSpec::CnOnly).await;
    assert_eq!(
        cert_problem(&report),
        &CertProblem::NameMismatch {
            expected: HOST.into()
        }
    );
    let cert = report.certificate.unwrap();
    assert!(cert.dns_names.is_empty());
    assert_eq!(cert.common_name.as_deref(), Some(HOST));
}

#[tokio::test]
async fn self_signed_certificate() {
    let report = fetch_cert(CertSpec::SelfSigned).await;
    assert!(matches!(
        cert_problem(&report),
        CertProblem::Untrusted { .. }
    ));
}

#[tokio::test]
async fn untrusted_issuer() {
    let report = fetch_cert(CertSpec::UntrustedIssuer).await;
    assert!(matches!(
        cert_problem(&report),
        CertProblem::Untrusted { .. }
    ));
    assert!(
        report
            .certificate
            .unwrap()
            .issuer
            .contains("untrusted rogue root")
    );
}

#[tokio::test]
async fn missing_intermediate() {
    let report = fetch_cert(CertSpec::MissingIntermediate).await;
    assert!(matches!(
        cert_problem(&report),
        CertProblem::Untrusted { .. }
    ));
    assert_eq!(report.certificate.unwrap().chain_len, 1);
}

#[tokio::test]
async fn wildcard_certificate_is_fine() {
    let report = fetch_cert(CertSpec::Wildcard).await;
    assert_eq!(body(&report), POLICY.as_bytes());
    assert_eq!(
        report.certificate.unwrap().dns_names,
        vec!["*.example.com".to_string()]
    );
}

#[tokio::test]
async fn certificate_via_intermediate_is_fine() {
    let report = fetch_cert(CertSpec::ViaIntermediate).await;
    assert_eq!(body(&report), POLICY.as_bytes());
    let cert = report.certificate.unwrap();
    assert_eq!(cert.chain_len, 2);
    assert!(
        cert.issuer.contains("mtasts test intermediate"),
        "{}",
        cert.issuer
    );
}

#[tokio::test]
async fn empty_trust_store_trusts_nothing() {
    let net = TestNet::start().await;
    net.add_sts_domain(DOMAIN, POLICY, "v=STSv1; id=1").await;
    let mut config = FetchConfig::new(std::sync::Arc::new(rustls::RootCertStore::empty()));
    config.port = net.https_port();
    let report = PolicyFetcher::new(config, dns_client(&net, T))
        .fetch(DOMAIN)
        .await;
    assert!(matches!(
        cert_problem(&report),
        CertProblem::Untrusted { .. }
    ));
}
