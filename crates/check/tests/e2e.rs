//! End-to-end tests of the checker against the loopback internet of `mtasts-testkit`: real DNS,
//! HTTPS and SMTP servers, only the DNS server, trust roots and ports swapped. Every finding code
//! of the output contract is produced here at least once.

use std::sync::Arc;
use std::time::Duration;

use mtasts_check::report::{DomainReport, PolicyStatus, TlsRptStatus};
use mtasts_check::{CheckOptions, Checker, Verdict};
use mtasts_net::dns::{DnsConfig, HickoryDns};
use mtasts_net::fetch::{FetchConfig, PolicyFetcher};
use mtasts_net::smtp::{ProbeConfig, SmtpProber};
use mtasts_proto::Severity;
use mtasts_testkit::smtp::{Greeting, MxHostSpec, MxTls, Starttls};
use mtasts_testkit::{CertSpec, Fault, PolicyHostSpec, PolicyResponse, TestNet};

const TIMEOUT: Duration = Duration::from_secs(2);

fn checker(net: &TestNet, timeout: Duration) -> Checker {
    mtasts_net::install_crypto_provider();
    let dns = Arc::new(
        HickoryDns::new(&DnsConfig {
            servers: Some(vec![net.dns_addr()]),
            timeout,
        })
        .expect("DNS client"),
    );
    let roots = net.root_store();
    let fetcher = PolicyFetcher::new(
        FetchConfig {
            timeout,
            roots: roots.clone(),
            port: net.https_port(),
            max_bytes: mtasts_proto::sts::POLICY_MAX_BYTES,
        },
        dns.clone(),
    );
    let prober = SmtpProber::new(ProbeConfig {
        timeout,
        roots,
        port: net.smtp_port(),
        helo_name: "checker.test".into(),
    });
    Checker::new(
        dns,
        Arc::new(fetcher),
        Arc::new(prober),
        CheckOptions::default(),
    )
}

fn policy_text(mode: &str, mx: &[&str]) -> String {
    let mut text = format!("version: STSv1\nmode: {mode}\n");
    for m in mx {
        text.push_str(&format!("mx: {m}\n"));
    }
    text.push_str("max_age: 604800\n");
    text
}

/// A domain with one good MX host, a valid policy in `mode` covering it, TLS-RPT and SPF.
async fn good_domain(net: &TestNet, domain: &str, mode: &str) {
    let mx = format!("mx.{domain}");
    net.zone().add_mx(domain, 10, &mx);
    net.zone().add_txt(domain, &["v=spf1 mx -all"]);
    net.add_mx_host(&mx, MxHostSpec::default()).await;
    net.add_sts_domain(domain, &policy_text(mode, &[&mx]), "v=STSv1; id=20261122")
        .await;
    net.zone().add_txt(
        &format!("_smtp._tls.{domain}"),
        &[&format!("v=TLSRPTv1; rua=mailto:tlsrpt@{domain}")],
    );
    add_dmarc(net, domain);
}

/// A DMARC record with nothing to report, so these tests see only MTA-STS and TLS-RPT
/// findings (the DMARC stage is tested in `tests/dmarc.rs`).
fn add_dmarc(net: &TestNet, domain: &str) {
    net.zone().add_txt(
        &format!("_dmarc.{domain}"),
        &[&format!("v=DMARC1; p=reject; rua=mailto:dmarc@{domain}")],
    );
}

/// A domain whose MX host behaves as `spec` says, under a valid policy in `mode`.
async fn domain_with_mx(net: &TestNet, domain: &str, mode: &str, spec: MxHostSpec) {
    let mx = format!("mx.{domain}");
    net.zone().add_mx(domain, 10, &mx);
    net.zone().add_txt(domain, &["v=spf1 mx -all"]);
    net.add_mx_host(&mx, spec).await;
    net.add_sts_domain(domain, &policy_text(mode, &[&mx]), "v=STSv1; id=1")
        .await;
    net.zone().add_txt(
        &format!("_smtp._tls.{domain}"),
        &[&format!("v=TLSRPTv1; rua=mailto:tlsrpt@{domain}")],
    );
    add_dmarc(net, domain);
}

/// A good domain whose policy host answers `spec` instead.
async fn domain_with_policy_host(net: &TestNet, domain: &str, spec: PolicyHostSpec) {
    good_domain(net, domain, "enforce").await;
    net.set_policy_host(domain, spec);
}

fn codes(r: &DomainReport) -> Vec<&str> {
    r.findings.iter().map(|f| f.code.as_str()).collect()
}

fn finding<'a>(r: &'a DomainReport, code: &str) -> &'a mtasts_check::Finding {
    r.findings
        .iter()
        .find(|f| f.code == code)
        .unwrap_or_else(|| panic!("no {code} in {:#?}", r.findings))
}

fn json(r: &DomainReport) -> serde_json::Value {
    serde_json::to_value(r).expect("report serializes")
}

#[tokio::test]
async fn good_enforce_domain_passes_with_every_field() {
    let net = TestNet::start().await;
    good_domain(&net, "good.test", "enforce").await;
    let r = checker(&net, TIMEOUT).check("Good.Test.").await;
    assert_eq!(r.domain, "good.test");
    assert_eq!(r.verdict, Verdict::Pass, "{:#?}", r.findings);
    assert!(
        r.findings.iter().all(|f| f.severity == Severity::Info),
        "{:#?}",
        r.findings
    );
    let v = json(&r);
    assert_eq!(v["verdict"], "pass");
    assert_eq!(v["policy"]["status"], "valid");
    assert_eq!(v["policy"]["mode"], "enforce");
    assert_eq!(v["policy"]["mx"], serde_json::json!(["mx.good.test"]));
    assert_eq!(v["policy"]["max_age"], 604800);
    assert_eq!(v["policy"]["record"]["id"], "20261122");
    assert_eq!(v["policy"]["record"]["raw"], "v=STSv1; id=20261122");
    assert!(
        v["policy"]["raw"]
            .as_str()
            .unwrap()
            .starts_with("version: STSv1")
    );
    assert_eq!(v["policy"]["sender_log"], "STSFetchResult.VALID");
    assert_eq!(v["policy"]["result_type"], serde_json::Value::Null);
    let mx = &v["mx_hosts"][0];
    assert_eq!(mx["name"], "mx.good.test");
    assert_eq!(mx["preference"], 10);
    assert_eq!(mx["covered"], true);
    let addr = &mx["addresses"][0];
    assert_eq!(addr["starttls"], true);
    assert_eq!(addr["tls_version"], "TLSv1.3");
    assert_eq!(addr["certificate"]["valid"], true);
    assert_eq!(
        addr["certificate"]["names"],
        serde_json::json!(["mx.good.test"])
    );
    assert!(
        addr["certificate"]["not_after"]
            .as_str()
            .unwrap()
            .ends_with('Z')
    );
    assert_eq!(v["tlsrpt"]["status"], "valid");
    assert_eq!(
        v["tlsrpt"]["rua"],
        serde_json::json!(["mailto:tlsrpt@good.test"])
    );
}

#[tokio::test]
async fn record_problems() {
    let net = TestNet::start().await;
    let c = checker(&net, TIMEOUT);
    good_domain(&net, "missing.test", "enforce").await;
    net.zone().remove("_mta-sts.missing.test");
    let r = c.check("missing.test").await;
    assert_eq!(r.verdict, Verdict::Fail);
    assert_eq!(r.policy.status, PolicyStatus::None);
    assert_eq!(r.policy.sender_log, "STSFetchResult.NONE");
    assert!(r.policy.record.is_none() && r.policy.mode.is_none());
    assert_eq!(finding(&r, "sts-record-missing").severity, Severity::Error);
    // Without a policy, coverage is unknown.
    assert_eq!(r.mx_hosts[0].covered, None);

    good_domain(&net, "multiple.test", "enforce").await;
    net.zone()
        .add_txt("_mta-sts.multiple.test", &["v=STSv1; id=20261123"]);
    let r = c.check("multiple.test").await;
    assert_eq!(r.policy.status, PolicyStatus::None);
    finding(&r, "sts-record-multiple");

    good_domain(&net, "invalid.test", "enforce").await;
    net.zone().remove("_mta-sts.invalid.test");
    net.zone()
        .add_txt("_mta-sts.invalid.test", &["v=STSv1; id=2026-11-22"]);
    let r = c.check("invalid.test").await;
    assert_eq!(r.policy.status, PolicyStatus::None);
    finding(&r, "sts-record-invalid");

    good_domain(&net, "servfail.test", "enforce").await;
    net.zone()
        .set_fault("_mta-sts.servfail.test", Fault::ServFail);
    let r = c.check("servfail.test").await;
    assert_eq!(r.policy.status, PolicyStatus::TempError);
    assert_eq!(r.verdict, Verdict::Fail);
    finding(&r, "sts-dns-error");
    assert!(
        !codes(&r).contains(&"sts-record-missing"),
        "a DNS failure is not a missing record"
    );

    // Multi-string records are concatenated (C22); whitespace the grammar allows (C13) and
    // repeated fields (C20) are noted but do not lower the verdict (the output contract).
    good_domain(&net, "split.test", "enforce").await;
    net.zone().remove("_mta-sts.split.test");
    net.zone().add_txt(
        "_mta-sts.split.test",
        &["v=STSv1 ; id=2026", "1122; id=other"],
    );
    let r = c.check("split.test").await;
    assert_eq!(r.policy.status, PolicyStatus::Valid, "{:#?}", r.findings);
    assert_eq!(r.policy.record.as_ref().unwrap().id, "20261122");
    assert_eq!(r.verdict, Verdict::Pass, "{:#?}", r.findings);
    assert_eq!(
        finding(&r, "record-space-before-semicolon").severity,
        Severity::Info
    );
    assert_eq!(
        finding(&r, "record-duplicate-field").severity,
        Severity::Info
    );
}

/// Issue 8: TXT records at `_mta-sts` that do not start with `v=STSv1` are discarded by senders
/// (RFC 8461 §3.1), so they are notes and do not lower the verdict.
#[tokio::test]
async fn issue8_discarded_txt_records_do_not_lower_the_verdict() {
    let net = TestNet::start().await;
    let c = checker(&net, TIMEOUT);
    good_domain(&net, "discarded.test", "enforce").await;
    net.zone()
        .add_txt("_mta-sts.discarded.test", &["google-site-verification=abc"]);
    net.zone()
        .add_txt("_mta-sts.discarded.test", &["V=STSv1; id=old"]);
    let r = c.check("discarded.test").await;
    assert_eq!(r.policy.status, PolicyStatus::Valid, "{:#?}", r.findings);
    assert_eq!(r.verdict, Verdict::Pass, "{:#?}", r.findings);
    assert_eq!(finding(&r, "record-unrelated-txt").severity, Severity::Info);
    assert_eq!(finding(&r, "record-version-case").severity, Severity::Info);
}

/// Issue 8: the report shows the policy's `mx` patterns as published; matching ignores case.
#[tokio::test]
async fn issue8_mx_patterns_are_shown_as_published() {
    let net = TestNet::start().await;
    let c = checker(&net, TIMEOUT);
    good_domain(&net, "published.test", "enforce").await;
    let body = policy_text("enforce", &["MX.Published.test", "*.Old.Published.TEST"]);
    net.set_policy_host(
        "published.test",
        PolicyHostSpec::new(PolicyResponse::policy(body)),
    );
    let r = c.check("published.test").await;
    assert_eq!(r.policy.mx, ["MX.Published.test", "*.Old.Published.TEST"]);
    assert_eq!(r.mx_hosts[0].covered, Some(true));
    assert_eq!(r.verdict, Verdict::Pass, "{:#?}", r.findings);
    assert!(
        finding(&r, "policy-mx-unused")
            .message
            .contains("`mx: *.Old.Published.TEST`"),
        "{:#?}",
        r.findings
    );
}

#[tokio::test]
async fn ignorable_policy_quirks_do_not_lower_the_verdict() {
    let net = TestNet::start().await;
    let c = checker(&net, TIMEOUT);
    good_domain(&net, "quirks.test", "enforce").await;
    let body = "version: STSv1\r\nmode: enforce\r\nmode: testing\r\nfoo: bar baz\nmx: mx.quirks.test   \nmax_age: 604800\nmax_age: 1\n";
    net.set_policy_host(
        "quirks.test",
        PolicyHostSpec::new(PolicyResponse::policy(body)),
    );
    let r = c.check("quirks.test").await;
    assert_eq!(r.verdict, Verdict::Pass, "{:#?}", r.findings);
    assert_eq!(
        (r.policy.mode.as_deref(), r.policy.max_age),
        (Some("enforce"), Some(604800))
    );
    assert_eq!(finding(&r, "policy-duplicate-key").severity, Severity::Info);

    // Blank lines are outside the grammar and strict senders (mox) reject them: a warning.
    let blank = format!("{}\n", policy_text("enforce", &["mx.quirks.test"]));
    net.set_policy_host(
        "quirks.test",
        PolicyHostSpec::new(PolicyResponse::policy(blank)),
    );
    let r = c.check("quirks.test").await;
    assert_eq!(r.verdict, Verdict::Warn, "{:#?}", r.findings);
    assert_eq!(finding(&r, "policy-blank-line").severity, Severity::Warning);
}

#[tokio::test]
async fn policy_fetch_problems() {
    let net = TestNet::start().await;
    let c = checker(&net, TIMEOUT);
    let cases: Vec<(&str, PolicyHostSpec, &str, PolicyStatus, &str)> = vec![
        (
            "status.test",
            PolicyHostSpec::new(PolicyResponse::status(404)),
            "policy-http-status",
            PolicyStatus::FetchError,
            "sts-policy-fetch-error",
        ),
        (
            "redirect.test",
            PolicyHostSpec::new(PolicyResponse::redirect(301, "https://www.redirect.test/")),
            "policy-redirect",
            PolicyStatus::FetchError,
            "sts-policy-fetch-error",
        ),
        (
            "ctype.test",
            PolicyHostSpec::new(
                PolicyResponse::policy(policy_text("enforce", &["mx.ctype.test"]))
                    .content_type(Some("text/html")),
            ),
            "policy-content-type",
            PolicyStatus::FetchError,
            "sts-policy-fetch-error",
        ),
        (
            "large.test",
            PolicyHostSpec::new(PolicyResponse::oversized(100 * 1024)),
            "policy-too-large",
            PolicyStatus::FetchError,
            "sts-policy-fetch-error",
        ),
        (
            "expired.test",
            PolicyHostSpec::with_cert(
                CertSpec::Expired,
                PolicyResponse::policy(policy_text("enforce", &["mx.expired.test"])),
            ),
            "policy-certificate-expired",
            PolicyStatus::WebpkiInvalid,
            "sts-webpki-invalid",
        ),
        (
            "name.test",
            PolicyHostSpec::with_cert(
                CertSpec::WrongName("www.name.test".into()),
                PolicyResponse::policy(policy_text("enforce", &["mx.name.test"])),
            ),
            "policy-certificate-name-mismatch",
            PolicyStatus::WebpkiInvalid,
            "sts-webpki-invalid",
        ),
        (
            "cnonly.test",
            PolicyHostSpec::with_cert(
                CertSpec::CnOnly,
                PolicyResponse::policy(policy_text("enforce", &["mx.cnonly.test"])),
            ),
            "policy-certificate-name-mismatch",
            PolicyStatus::WebpkiInvalid,
            "sts-webpki-invalid",
        ),
        (
            "selfsigned.test",
            PolicyHostSpec::with_cert(
                CertSpec::SelfSigned,
                PolicyResponse::policy(policy_text("enforce", &["mx.selfsigned.test"])),
            ),
            "policy-certificate-untrusted",
            PolicyStatus::WebpkiInvalid,
            "sts-webpki-invalid",
        ),
        (
            "syntax.test",
            PolicyHostSpec::new(PolicyResponse::policy(
                "version: STSv1\nmode: enforce\nmx: mx.syntax.test\nmax_age: +86400\n",
            )),
            "policy-syntax",
            PolicyStatus::Invalid,
            "sts-policy-invalid",
        ),
    ];
    for (domain, spec, code, status, result) in cases {
        domain_with_policy_host(&net, domain, spec).await;
        let r = c.check(domain).await;
        assert_eq!(r.verdict, Verdict::Fail, "{domain}: {:#?}", r.findings);
        assert_eq!(r.policy.status, status, "{domain}: {:#?}", r.findings);
        assert_eq!(r.policy.result_type.as_deref(), Some(result), "{domain}");
        assert_eq!(
            r.policy.sender_log, "STSFetchResult.FETCH_ERROR",
            "{domain}"
        );
        let f = finding(&r, code);
        assert_eq!(f.severity, Severity::Error, "{domain}");
        assert_eq!(
            f.result_type.as_ref().map(|r| r.as_str()),
            Some(result),
            "{domain}"
        );
        assert!(
            r.policy.mode.is_none() && r.policy.max_age.is_none(),
            "{domain}"
        );
    }
    let r = c.check("redirect.test").await;
    assert!(
        finding(&r, "policy-redirect")
            .message
            .contains("https://www.redirect.test/")
    );
    let r = c.check("name.test").await;
    assert_eq!(
        r.policy.certificate.as_ref().unwrap().names,
        ["www.name.test"]
    );
    let r = c.check("syntax.test").await;
    assert!(r.policy.raw.as_deref().unwrap().contains("+86400"));
}

#[tokio::test]
async fn policy_host_without_address_or_listener() {
    let net = TestNet::start().await;
    let c = checker(&net, TIMEOUT);
    good_domain(&net, "noaddr.test", "enforce").await;
    net.zone().remove("mta-sts.noaddr.test");
    let r = c.check("noaddr.test").await;
    assert_eq!(r.policy.status, PolicyStatus::FetchError);
    assert!(
        finding(&r, "policy-fetch-failed")
            .message
            .contains("has no address")
    );

    good_domain(&net, "refused.test", "enforce").await;
    net.zone().remove("mta-sts.refused.test");
    net.zone().add_ip("mta-sts.refused.test", net.next_ip());
    let r = c.check("refused.test").await;
    assert_eq!(r.policy.status, PolicyStatus::FetchError);
    finding(&r, "policy-fetch-failed");
}

#[tokio::test]
async fn policy_timeout() {
    let net = TestNet::start().await;
    let c = checker(&net, Duration::from_millis(800));
    domain_with_policy_host(
        &net,
        "slow.test",
        PolicyHostSpec::new(
            PolicyResponse::policy(policy_text("enforce", &["mx.slow.test"]))
                .header_delay(Duration::from_secs(5)),
        ),
    )
    .await;
    let r = c.check("slow.test").await;
    assert_eq!(r.policy.status, PolicyStatus::FetchError);
    assert_eq!(
        finding(&r, "policy-timeout")
            .result_type
            .as_ref()
            .map(|r| r.as_str()),
        Some("sts-policy-fetch-error")
    );
}

#[tokio::test]
async fn testing_and_none_modes_warn() {
    let net = TestNet::start().await;
    let c = checker(&net, TIMEOUT);
    good_domain(&net, "testing.test", "testing").await;
    let r = c.check("testing.test").await;
    assert_eq!(r.verdict, Verdict::Warn, "{:#?}", r.findings);
    assert_eq!(r.policy.mode.as_deref(), Some("testing"));
    assert_eq!(
        finding(&r, "policy-mode-testing").severity,
        Severity::Warning
    );

    net.zone().add_mx("none.test", 10, "mx.none.test");
    net.add_mx_host("mx.none.test", MxHostSpec::default()).await;
    net.add_sts_domain(
        "none.test",
        "version: STSv1\nmode: none\nmax_age: 86400\n",
        "v=STSv1; id=9",
    )
    .await;
    net.zone().add_txt(
        "_smtp._tls.none.test",
        &["v=TLSRPTv1; rua=mailto:t@none.test"],
    );
    let r = c.check("none.test").await;
    assert_eq!(r.verdict, Verdict::Warn, "{:#?}", r.findings);
    assert_eq!(r.policy.mode.as_deref(), Some("none"));
    finding(&r, "policy-mode-none");
}

#[tokio::test]
async fn mx_coverage() {
    let net = TestNet::start().await;
    let c = checker(&net, TIMEOUT);
    net.zone().add_mx("cover.test", 10, "mx.cover.test");
    net.zone().add_mx("cover.test", 20, "a.b.backup.cover.test");
    net.add_mx_host("mx.cover.test", MxHostSpec::default())
        .await;
    net.add_mx_host("a.b.backup.cover.test", MxHostSpec::default())
        .await;
    net.add_sts_domain(
        "cover.test",
        &policy_text("enforce", &["mx.cover.test", "*.backup.cover.test"]),
        "v=STSv1; id=1",
    )
    .await;
    net.zone().add_txt(
        "_smtp._tls.cover.test",
        &["v=TLSRPTv1; rua=mailto:t@cover.test"],
    );
    let r = c.check("cover.test").await;
    assert_eq!(r.verdict, Verdict::Fail);
    let f = finding(&r, "mx-not-covered");
    assert_eq!(
        (f.severity, f.host.as_deref()),
        (Severity::Error, Some("a.b.backup.cover.test"))
    );
    assert_eq!(
        f.result_type.as_ref().map(|r| r.as_str()),
        Some("validation-failure")
    );
    assert_eq!(
        r.mx_hosts.iter().map(|m| m.covered).collect::<Vec<_>>(),
        [Some(true), Some(false)]
    );
}

#[tokio::test]
async fn mx_tls_problems_under_enforce() {
    let net = TestNet::start().await;
    let c = checker(&net, TIMEOUT);
    let cases: Vec<(&str, MxHostSpec, &str, Option<&str>)> = vec![
        (
            "nostarttls.test",
            MxHostSpec {
                starttls: Starttls::NotOffered,
                ..Default::default()
            },
            "mx-starttls-missing",
            Some("starttls-not-supported"),
        ),
        (
            "refusedtls.test",
            MxHostSpec {
                starttls: Starttls::Refused,
                ..Default::default()
            },
            "mx-starttls-missing",
            Some("starttls-not-supported"),
        ),
        (
            "tls10.test",
            MxHostSpec {
                tls: MxTls::Tls10Only,
                ..Default::default()
            },
            "mx-tls-version",
            Some("validation-failure"),
        ),
        (
            "mxexpired.test",
            MxHostSpec {
                cert: CertSpec::Expired,
                ..Default::default()
            },
            "mx-certificate-expired",
            Some("certificate-expired"),
        ),
        (
            "mxname.test",
            MxHostSpec {
                cert: CertSpec::WrongName("other.test".into()),
                ..Default::default()
            },
            "mx-certificate-name-mismatch",
            Some("certificate-host-mismatch"),
        ),
        (
            "mxuntrusted.test",
            MxHostSpec {
                cert: CertSpec::UntrustedIssuer,
                ..Default::default()
            },
            "mx-certificate-untrusted",
            Some("certificate-not-trusted"),
        ),
        (
            "mxchain.test",
            MxHostSpec {
                cert: CertSpec::MissingIntermediate,
                ..Default::default()
            },
            "mx-certificate-untrusted",
            Some("certificate-not-trusted"),
        ),
    ];
    for (domain, spec, code, result) in cases {
        domain_with_mx(&net, domain, "enforce", spec).await;
        let r = c.check(domain).await;
        assert_eq!(r.verdict, Verdict::Fail, "{domain}: {:#?}", r.findings);
        assert_eq!(r.policy.status, PolicyStatus::Valid, "{domain}");
        let f = finding(&r, code);
        assert_eq!(f.severity, Severity::Error, "{domain}");
        assert_eq!(
            f.result_type.as_ref().map(|r| r.as_str()),
            result,
            "{domain}"
        );
        assert_eq!(f.host.as_deref(), Some(format!("mx.{domain}").as_str()));
    }
    let r = c.check("tls10.test").await;
    assert_eq!(
        r.mx_hosts[0].addresses[0].tls_version.as_deref(),
        Some("TLSv1.0")
    );
    let r = c.check("mxexpired.test").await;
    let cert = r.mx_hosts[0].addresses[0].certificate.as_ref().unwrap();
    assert!(!cert.valid && cert.error.is_some());
    assert_eq!(
        r.mx_hosts[0].addresses[0].tls_version.as_deref(),
        Some("TLSv1.3")
    );
}

#[tokio::test]
async fn mx_problems_under_testing_only_warn() {
    let net = TestNet::start().await;
    let c = checker(&net, TIMEOUT);
    domain_with_mx(
        &net,
        "soft.test",
        "testing",
        MxHostSpec {
            cert: CertSpec::Expired,
            ..Default::default()
        },
    )
    .await;
    let r = c.check("soft.test").await;
    assert_eq!(r.verdict, Verdict::Warn, "{:#?}", r.findings);
    assert_eq!(
        finding(&r, "mx-certificate-expired").severity,
        Severity::Warning
    );
}

#[tokio::test]
async fn unreachable_mx_hosts() {
    let net = TestNet::start().await;
    let c = checker(&net, TIMEOUT);
    good_domain(&net, "unreach.test", "enforce").await;
    net.zone().add_mx("unreach.test", 20, "down.unreach.test");
    net.zone().add_ip("down.unreach.test", net.next_ip());
    net.zone().add_mx("unreach.test", 30, "noaddr.unreach.test");
    net.zone().add_mx("unreach.test", 40, "reject.unreach.test");
    net.add_mx_host(
        "reject.unreach.test",
        MxHostSpec {
            greeting: Greeting::Reject,
            ..Default::default()
        },
    )
    .await;
    net.add_sts_domain(
        "unreach.test",
        &policy_text("enforce", &["*.unreach.test"]),
        "v=STSv1; id=2",
    )
    .await;
    let r = c.check("unreach.test").await;
    let hosts: Vec<&str> = r
        .findings
        .iter()
        .filter(|f| f.code == "mx-unreachable")
        .filter_map(|f| f.host.as_deref())
        .collect();
    assert!(hosts.contains(&"down.unreach.test"), "{:#?}", r.findings);
    assert!(hosts.contains(&"noaddr.unreach.test"), "{:#?}", r.findings);
    assert!(hosts.contains(&"reject.unreach.test"), "{:#?}", r.findings);
    assert_eq!(r.mx_hosts.len(), 4);
}

#[tokio::test]
async fn tlsrpt_problems() {
    let net = TestNet::start().await;
    let c = checker(&net, TIMEOUT);
    good_domain(&net, "rptmissing.test", "enforce").await;
    net.zone().remove("_smtp._tls.rptmissing.test");
    let r = c.check("rptmissing.test").await;
    assert_eq!(
        (r.verdict, r.tlsrpt.status),
        (Verdict::Warn, TlsRptStatus::None)
    );
    finding(&r, "tlsrpt-record-missing");

    good_domain(&net, "rptmulti.test", "enforce").await;
    net.zone().add_txt(
        "_smtp._tls.rptmulti.test",
        &["v=TLSRPTv1; rua=mailto:other@rptmulti.test"],
    );
    let r = c.check("rptmulti.test").await;
    assert_eq!(r.tlsrpt.status, TlsRptStatus::Invalid);
    finding(&r, "tlsrpt-record-multiple");

    good_domain(&net, "rptinvalid.test", "enforce").await;
    net.zone().remove("_smtp._tls.rptinvalid.test");
    net.zone().add_txt(
        "_smtp._tls.rptinvalid.test",
        &["v=TLSRPTv1; rua=tlsrpt@rptinvalid.test"],
    );
    let r = c.check("rptinvalid.test").await;
    assert_eq!(r.tlsrpt.status, TlsRptStatus::Invalid);
    finding(&r, "tlsrpt-record-invalid");
}

#[tokio::test]
async fn implicit_and_null_mx_and_dane() {
    let net = TestNet::start().await;
    let c = checker(&net, TIMEOUT);
    // No MX: the domain itself is the MX (C77).
    net.add_mx_host("implicit.test", MxHostSpec::default())
        .await;
    net.add_sts_domain(
        "implicit.test",
        &policy_text("enforce", &["implicit.test"]),
        "v=STSv1; id=3",
    )
    .await;
    net.zone().add_txt(
        "_smtp._tls.implicit.test",
        &["v=TLSRPTv1; rua=mailto:t@implicit.test"],
    );
    net.zone()
        .add_tlsa("_25._tcp.implicit.test", 3, 1, 1, &[0xab; 32]);
    net.zone().add_txt("implicit.test", &["v=spf1 a -all"]);
    add_dmarc(&net, "implicit.test");
    let r = c.check("implicit.test").await;
    assert_eq!(r.verdict, Verdict::Pass, "{:#?}", r.findings);
    assert_eq!(r.mx_hosts[0].preference, None);
    assert_eq!(r.mx_hosts[0].tlsa_records, Some(1));
    finding(&r, "mx-implicit");
    finding(&r, "dane-tlsa-present");

    net.zone().add_null_mx("nullmx.test");
    let r = c.check("nullmx.test").await;
    finding(&r, "mx-null");
    assert!(r.mx_hosts.is_empty());
}
