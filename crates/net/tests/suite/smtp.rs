//! The SMTP STARTTLS prober against testkit's loopback MX hosts: one test per behaviour.

use std::net::SocketAddr;
use std::time::Duration;

use mtasts_net::cert::CertProblem;
use mtasts_net::smtp::{ProbeConfig, ProbeError, ProbeReport, SmtpProbe, SmtpProber};
use mtasts_testkit::smtp::{Greeting, Handshake, MxHostSpec, MxServer, MxTls, Starttls};
use mtasts_testkit::{CertSpec, TestCa, random_loopback};

const HOST: &str = "mx1.example.test";

/// Starts a host as `spec` says and probes it with `timeout` per step.
async fn probe_with(spec: MxHostSpec, host: &str, timeout: Duration) -> ProbeReport {
    mtasts_net::install_crypto_provider();
    let ca = TestCa::new();
    let server = MxServer::start(SocketAddr::new(random_loopback(), 0), HOST, spec, &ca)
        .await
        .expect("start the test MX");
    let prober = SmtpProber::new(ProbeConfig {
        timeout,
        roots: ca.root_store(),
        port: server.addr().port(),
        helo_name: "probe.mtasts.test".to_owned(),
    });
    prober.probe(host, server.addr().ip()).await
}

async fn probe(spec: MxHostSpec) -> ProbeReport {
    probe_with(spec, HOST, Duration::from_secs(10)).await
}

async fn probe_cert(cert: CertSpec) -> ProbeReport {
    probe(MxHostSpec {
        cert,
        ..Default::default()
    })
    .await
}

/// The report of a completed modern handshake; panics with the report otherwise.
fn session(report: &ProbeReport) -> &mtasts_net::smtp::TlsSession {
    report
        .tls
        .as_ref()
        .unwrap_or_else(|| panic!("no TLS session: {report:#?}"))
}

#[tokio::test]
async fn good_host_speaks_tls13_with_a_valid_certificate() {
    let report = probe(MxHostSpec::default()).await;
    assert_eq!(report.error, None, "{report:#?}");
    assert_eq!(report.host, HOST);
    assert!(
        report
            .banner
            .as_deref()
            .is_some_and(|b| b.starts_with("220 ")),
        "{report:#?}"
    );
    assert_eq!(report.starttls_offered, Some(true));
    for keyword in ["PIPELINING", "STARTTLS", "SIZE", "8BITMIME"] {
        assert!(
            report.ehlo_keywords.iter().any(|k| k == keyword),
            "{keyword}: {report:#?}"
        );
    }
    let tls = session(&report);
    assert_eq!(tls.version, "TLSv1.3");
    assert!(
        tls.cipher
            .as_deref()
            .is_some_and(|c| c.starts_with("TLS_AES_") || c.starts_with("TLS_CHACHA20"))
    );
    assert_eq!(tls.validation, Ok(()));
    let cert = tls.certificate.as_ref().expect("certificate facts");
    assert_eq!(cert.dns_names, [HOST]);
    assert_eq!(cert.chain_len, 1);
}

#[tokio::test]
async fn tls12_only_host_is_reported_as_tls12() {
    let report = probe(MxHostSpec {
        tls: MxTls::Tls12Only,
        ..Default::default()
    })
    .await;
    assert_eq!(report.error, None, "{report:#?}");
    let tls = session(&report);
    assert_eq!(tls.version, "TLSv1.2");
    assert!(
        tls.cipher
            .as_deref()
            .is_some_and(|c| c.starts_with("TLS_ECDHE_")),
        "{tls:?}"
    );
    assert_eq!(tls.validation, Ok(()));
}

#[tokio::test]
async fn tls13_only_host_is_reported_as_tls13() {
    let report = probe(MxHostSpec {
        tls: MxTls::Tls13Only,
        ..Default::default()
    })
    .await;
    assert_eq!(report.error, None, "{report:#?}");
    assert_eq!(session(&report).version, "TLSv1.3");
}

#[tokio::test]
async fn tls10_only_host_is_legacy_with_certificate_facts() {
    let report = probe(MxHostSpec {
        tls: MxTls::Tls10Only,
        ..Default::default()
    })
    .await;
    assert_eq!(
        report.error,
        Some(ProbeError::LegacyTls("TLSv1.0".to_owned())),
        "{report:#?}"
    );
    assert_eq!(report.starttls_offered, Some(true));
    let tls = session(&report);
    assert_eq!(tls.version, "TLSv1.0");
    assert!(
        tls.cipher.as_deref().is_some_and(|c| c.contains("_CBC_")),
        "{tls:?}"
    );
    assert_eq!(
        tls.certificate.as_ref().map(|c| c.dns_names.clone()),
        Some(vec![HOST.to_owned()])
    );
    assert_eq!(tls.validation, Ok(()));
}

#[tokio::test]
async fn tls11_only_host_is_legacy() {
    let report = probe(MxHostSpec {
        tls: MxTls::Tls11Only,
        ..Default::default()
    })
    .await;
    assert_eq!(
        report.error,
        Some(ProbeError::LegacyTls("TLSv1.1".to_owned())),
        "{report:#?}"
    );
    let tls = session(&report);
    assert_eq!(tls.version, "TLSv1.1");
    assert!(tls.certificate.is_some());
    assert_eq!(tls.validation, Ok(()));
}

#[tokio::test]
async fn legacy_host_certificate_is_validated_too() {
    let spec = MxHostSpec {
        tls: MxTls::Tls10Only,
        cert: CertSpec::Expired,
        ..Default::default()
    };
    let report = probe(spec).await;
    assert_eq!(
        report.error,
        Some(ProbeError::LegacyTls("TLSv1.0".to_owned())),
        "{report:#?}"
    );
    assert_eq!(session(&report).validation, Err(CertProblem::Expired));
    let spec = MxHostSpec {
        tls: MxTls::Tls11Only,
        cert: CertSpec::ViaIntermediate,
        ..Default::default()
    };
    let report = probe(spec).await;
    let tls = session(&report);
    assert_eq!(tls.validation, Ok(()), "{report:#?}");
    assert_eq!(tls.certificate.as_ref().map(|c| c.chain_len), Some(2));
}

#[tokio::test]
async fn missing_starttls_is_reported() {
    let report = probe(MxHostSpec {
        starttls: Starttls::NotOffered,
        ..Default::default()
    })
    .await;
    assert_eq!(report.error, Some(ProbeError::StarttlsNotOffered));
    assert_eq!(report.starttls_offered, Some(false));
    assert!(report.ehlo_keywords.iter().any(|k| k == "PIPELINING"));
    assert!(report.tls.is_none());
}

#[tokio::test]
async fn refused_starttls_is_reported() {
    let report = probe(MxHostSpec {
        starttls: Starttls::Refused,
        ..Default::default()
    })
    .await;
    assert!(
        matches!(&report.error, Some(ProbeError::StarttlsRefused(reply)) if reply.starts_with("454 ")),
        "{report:#?}"
    );
    assert_eq!(report.starttls_offered, Some(true));
    assert!(report.tls.is_none());
}

#[tokio::test]
async fn rejecting_greeting_is_a_banner_error() {
    let report = probe(MxHostSpec {
        greeting: Greeting::Reject,
        ..Default::default()
    })
    .await;
    assert!(
        matches!(&report.error, Some(ProbeError::Banner(b)) if b.starts_with("554 ")),
        "{report:#?}"
    );
    assert!(
        report
            .banner
            .as_deref()
            .is_some_and(|b| b.starts_with("554 "))
    );
    assert_eq!(report.starttls_offered, None);
}

#[tokio::test]
async fn garbage_greeting_is_a_banner_error() {
    let report = probe(MxHostSpec {
        greeting: Greeting::Garbage,
        ..Default::default()
    })
    .await;
    assert!(
        matches!(&report.error, Some(ProbeError::Banner(b)) if b.contains("SSH-2.0")),
        "{report:#?}"
    );
    assert!(
        report
            .banner
            .as_deref()
            .is_some_and(|b| b.starts_with("SSH-2.0"))
    );
    assert_eq!(report.starttls_offered, None);
}

#[tokio::test]
async fn silent_server_times_out() {
    let spec = MxHostSpec {
        greeting: Greeting::Silent,
        ..Default::default()
    };
    let report = probe_with(spec, HOST, Duration::from_secs(1)).await;
    assert_eq!(
        report.error,
        Some(ProbeError::Timeout("the greeting")),
        "{report:#?}"
    );
    assert_eq!(report.banner, None);
}

#[tokio::test]
async fn close_after_greeting_is_a_protocol_error() {
    let report = probe(MxHostSpec {
        greeting: Greeting::CloseAfterGreeting,
        ..Default::default()
    })
    .await;
    assert!(
        matches!(report.error, Some(ProbeError::Protocol(_))),
        "{report:#?}"
    );
    assert!(report.banner.is_some());
    assert_eq!(report.starttls_offered, None);
}

#[tokio::test]
async fn endless_line_is_cut_off() {
    let report = probe(MxHostSpec {
        greeting: Greeting::EndlessLine,
        ..Default::default()
    })
    .await;
    assert!(
        matches!(&report.error, Some(ProbeError::Protocol(e)) if e.contains("longer than")),
        "{report:#?}"
    );
}

#[tokio::test]
async fn multi_line_greeting_and_ehlo_are_read_whole() {
    let report = probe(MxHostSpec {
        greeting: Greeting::MultiLine,
        ..Default::default()
    })
    .await;
    assert_eq!(report.error, None, "{report:#?}");
    assert_eq!(report.banner.as_deref().map(|b| b.lines().count()), Some(3));
    assert!(report.ehlo_keywords.len() >= 4);
}

#[tokio::test]
async fn stalled_handshake_times_out() {
    let spec = MxHostSpec {
        handshake: Handshake::Stall,
        ..Default::default()
    };
    let report = probe_with(spec, HOST, Duration::from_secs(1)).await;
    assert_eq!(
        report.error,
        Some(ProbeError::Timeout("the TLS handshake")),
        "{report:#?}"
    );
    assert!(report.tls.is_none());
}

#[tokio::test]
async fn slow_handshake_within_the_timeout_completes() {
    let spec = MxHostSpec {
        handshake: Handshake::Delay(Duration::from_millis(200)),
        ..Default::default()
    };
    let report = probe(spec).await;
    assert_eq!(report.error, None, "{report:#?}");
    assert_eq!(session(&report).version, "TLSv1.3");
}

#[tokio::test]
async fn trailing_dot_is_not_part_of_the_name() {
    let report = probe_with(
        MxHostSpec::default(),
        "mx1.example.test.",
        Duration::from_secs(10),
    )
    .await;
    assert_eq!(report.error, None, "{report:#?}");
    assert_eq!(session(&report).validation, Ok(()));
}

#[tokio::test]
async fn expired_certificate() {
    let report = probe_cert(CertSpec::Expired).await;
    assert_eq!(report.error, None, "{report:#?}");
    let tls = session(&report);
    assert_eq!(tls.version, "TLSv1.3");
    assert_eq!(tls.validation, Err(CertProblem::Expired));
    assert!(
        tls.certificate
            .as_ref()
            .is_some_and(|c| c.not_after < time::OffsetDateTime::now_utc())
    );
}

#[tokio::test]
async fn not_yet_valid_certificate() {
    let report = probe_cert(CertSpec::NotYetValid).await;
    let tls = session(&report);
    assert_eq!(tls.validation, Err(CertProblem::NotYetValid), "{report:#?}");
    assert!(
        tls.certificate
            .as_ref()
            .is_some_and(|c| c.not_before > time::OffsetDateTime::now_utc())
    );
}

#[tokio::test]
async fn wrong_name_certificate() {
    let report = probe_cert(CertSpec::WrongName("other.example.test".to_owned())).await;
    let tls = session(&report);
    assert_eq!(
        tls.validation,
        Err(CertProblem::NameMismatch {
            expected: HOST.to_owned()
        }),
        "{report:#?}"
    );
    assert_eq!(
        tls.certificate.as_ref().map(|c| c.dns_names.clone()),
        Some(vec!["other.example.test".to_owned()])
    );
}

#[tokio::test]
async fn cn_only_certificate_fails_the_san_requirement() {
    let report = probe_cert(CertSpec::CnOnly).await;
    let tls = session(&report);
    assert_eq!(
        tls.validation,
        Err(CertProblem::NameMismatch {
            expected: HOST.to_owned()
        }),
        "{report:#?}"
    );
    let cert = tls.certificate.as_ref().expect("certificate facts");
    assert!(cert.dns_names.is_empty());
    assert_eq!(cert.common_name.as_deref(), Some(HOST));
}

#[tokio::test]
async fn self_signed_certificate() {
    let report = probe_cert(CertSpec::SelfSigned).await;
    let tls = session(&report);
    assert!(
        matches!(tls.validation, Err(CertProblem::Untrusted { .. })),
        "{report:#?}"
    );
    assert!(
        tls.certificate
            .as_ref()
            .is_some_and(|c| c.issuer.contains(HOST))
    );
}

#[tokio::test]
async fn untrusted_issuer() {
    let report = probe_cert(CertSpec::UntrustedIssuer).await;
    let tls = session(&report);
    assert!(
        matches!(tls.validation, Err(CertProblem::Untrusted { .. })),
        "{report:#?}"
    );
    assert!(
        tls.certificate
            .as_ref()
            .is_some_and(|c| c.issuer.contains("untrusted rogue root"))
    );
}

#[tokio::test]
async fn missing_intermediate() {
    let report = probe_cert(CertSpec::MissingIntermediate).await;
    let tls = session(&report);
    assert!(
        matches!(tls.validation, Err(CertProblem::Untrusted { .. })),
        "{report:#?}"
    );
    let cert = tls.certificate.as_ref().expect("certificate facts");
    assert!(cert.issuer.contains("mtasts test intermediate"));
    assert_eq!(cert.chain_len, 1);
}

#[tokio::test]
async fn intermediate_served_and_wildcard_are_valid() {
    let report = probe_cert(CertSpec::ViaIntermediate).await;
    let tls = session(&report);
    assert_eq!(tls.validation, Ok(()), "{report:#?}");
    assert_eq!(tls.certificate.as_ref().map(|c| c.chain_len), Some(2));
    let report = probe_cert(CertSpec::Wildcard).await;
    assert_eq!(session(&report).validation, Ok(()), "{report:#?}");
}

#[tokio::test]
async fn connection_refused() {
    mtasts_net::install_crypto_provider();
    let ip = random_loopback();
    let port = {
        let listener = std::net::TcpListener::bind(SocketAddr::new(ip, 0)).expect("bind");
        listener.local_addr().expect("local addr").port()
    };
    let prober = SmtpProber::new(ProbeConfig {
        timeout: Duration::from_secs(5),
        roots: TestCa::new().root_store(),
        port,
        helo_name: "probe.mtasts.test".to_owned(),
    });
    let report = prober.probe(HOST, ip).await;
    assert!(
        matches!(report.error, Some(ProbeError::Connect(_))),
        "{report:#?}"
    );
    assert_eq!(report.banner, None);
    assert!(report.tls.is_none());
}

#[tokio::test]
async fn one_prober_serves_concurrent_probes() {
    mtasts_net::install_crypto_provider();
    let ca = TestCa::new();
    let ip = random_loopback();
    let good = MxServer::start(SocketAddr::new(ip, 0), HOST, MxHostSpec::default(), &ca)
        .await
        .expect("start");
    let prober = SmtpProber::new(ProbeConfig {
        timeout: Duration::from_secs(10),
        roots: ca.root_store(),
        port: good.addr().port(),
        helo_name: "probe.mtasts.test".to_owned(),
    });
    let probes = (0..8).map(|_| {
        let prober = prober.clone();
        tokio::spawn(async move { prober.probe(HOST, ip).await })
    });
    for report in futures::future::join_all(probes).await {
        let report = report.expect("probe task");
        assert_eq!(report.error, None, "{report:#?}");
    }
}
