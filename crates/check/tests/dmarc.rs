//! End-to-end tests of the DMARC stage: private test domains on the testkit DNS server
//! (real DNS over loopback), checked by the whole engine. Covers the organizational-domain
//! fallback, the RFC 9989 tree walk with `psd`, several records, bad tags, report
//! authorization present and missing, and temporary DNS failures.

use std::sync::Arc;
use std::time::Duration;

use mtasts_check::report::DomainReport;
use mtasts_check::{CheckOptions, Checker, Verdict};
use mtasts_net::dns::{DnsConfig, HickoryDns};
use mtasts_net::fetch::{FetchConfig, PolicyFetcher};
use mtasts_net::smtp::{ProbeConfig, SmtpProber};
use mtasts_proto::Severity;
use mtasts_testkit::smtp::MxHostSpec;
use mtasts_testkit::{Fault, TestNet};

const TIMEOUT: Duration = Duration::from_secs(2);

fn checker(net: &TestNet) -> Checker {
    mtasts_net::install_crypto_provider();
    let dns = Arc::new(
        HickoryDns::new(&DnsConfig {
            servers: Some(vec![net.dns_addr()]),
            timeout: TIMEOUT,
        })
        .expect("DNS client"),
    );
    let roots = net.root_store();
    let fetcher = PolicyFetcher::new(
        FetchConfig {
            timeout: TIMEOUT,
            roots: roots.clone(),
            port: net.https_port(),
            max_bytes: mtasts_proto::sts::POLICY_MAX_BYTES,
        },
        dns.clone(),
    );
    let prober = SmtpProber::new(ProbeConfig {
        timeout: TIMEOUT,
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

/// A domain that passes every MTA-STS, TLS-RPT and SPF check, so only DMARC findings remain.
async fn mail_domain(net: &TestNet, domain: &str) {
    let mx = format!("mx.{domain}");
    net.zone().add_mx(domain, 10, &mx);
    net.add_mx_host(&mx, MxHostSpec::default()).await;
    let policy = format!("version: STSv1\nmode: enforce\nmx: {mx}\nmax_age: 604800\n");
    net.add_sts_domain(domain, &policy, "v=STSv1; id=1").await;
    net.zone().add_txt(
        &format!("_smtp._tls.{domain}"),
        &[&format!("v=TLSRPTv1; rua=mailto:tlsrpt@{domain}")],
    );
    net.zone().add_txt(domain, &["v=spf1 mx -all"]);
}

/// Publishes each text as its own TXT RR at `_dmarc.<domain>`.
fn dmarc(net: &TestNet, domain: &str, records: &[&str]) {
    for record in records {
        net.zone().add_txt(&format!("_dmarc.{domain}"), &[record]);
    }
}

fn codes(r: &DomainReport) -> Vec<&str> {
    r.findings
        .iter()
        .filter(|f| f.stage == mtasts_check::Stage::Dmarc)
        .map(|f| f.code.as_str())
        .collect()
}

fn severity(r: &DomainReport, code: &str) -> Severity {
    r.findings
        .iter()
        .find(|f| f.code == code)
        .unwrap_or_else(|| panic!("no {code} in {:#?}", r.findings))
        .severity
}

fn json(r: &DomainReport) -> serde_json::Value {
    serde_json::to_value(r).expect("report serializes")
}

#[tokio::test]
async fn reject_policy_passes_and_fills_the_dmarc_section() {
    let net = TestNet::start().await;
    mail_domain(&net, "good.test").await;
    dmarc(
        &net,
        "good.test",
        &["v=DMARC1; p=reject; adkim=s; rua=mailto:dmarc@good.test"],
    );
    let r = checker(&net).check("good.test").await;
    assert_eq!(r.verdict, Verdict::Pass, "{:#?}", r.findings);
    let v = json(&r);
    let d = &v["dmarc"];
    assert_eq!(d["status"], "valid");
    assert_eq!(d["policy"], "reject");
    assert_eq!(d["record"]["domain"], "good.test");
    assert_eq!(d["record"]["adkim"], "s");
    assert_eq!(d["record"]["rua"][0]["uri"], "mailto:dmarc@good.test");
    assert_eq!(d["record"]["rua"][0]["external"], false);
    assert_eq!(
        d["rfc7489"]["queried"],
        serde_json::json!(["_dmarc.good.test"])
    );
    assert_eq!(
        d["rfc9989"]["queried"],
        serde_json::json!(["_dmarc.good.test", "_dmarc.test"])
    );
    assert_eq!(d["rfc9989"]["organizational_domain"], "good.test");
}

#[tokio::test]
async fn missing_record_warns() {
    let net = TestNet::start().await;
    mail_domain(&net, "nodmarc.test").await;
    let r = checker(&net).check("nodmarc.test").await;
    assert_eq!(r.verdict, Verdict::Warn, "{:#?}", r.findings);
    assert_eq!(codes(&r), ["dmarc-record-missing"]);
    assert_eq!(json(&r)["dmarc"]["status"], "none");
    assert_eq!(json(&r)["dmarc"]["record"], serde_json::Value::Null);
}

#[tokio::test]
async fn subdomain_falls_back_to_the_organizational_domain() {
    let net = TestNet::start().await;
    mail_domain(&net, "mail.corp.test").await;
    dmarc(
        &net,
        "corp.test",
        &["v=DMARC1; p=reject; sp=quarantine; rua=mailto:dmarc@corp.test"],
    );
    let r = checker(&net).check("mail.corp.test").await;
    let v = json(&r);
    assert_eq!(v["dmarc"]["policy"], "quarantine");
    assert_eq!(v["dmarc"]["record"]["domain"], "corp.test");
    assert_eq!(
        v["dmarc"]["rfc7489"]["queried"],
        serde_json::json!(["_dmarc.mail.corp.test", "_dmarc.corp.test"])
    );
    assert_eq!(v["dmarc"]["rfc9989"]["record_domain"], "corp.test");
    assert!(codes(&r).contains(&"dmarc-policy-inherited"));
    assert_eq!(severity(&r, "dmarc-policy-quarantine"), Severity::Info);
    assert_eq!(r.verdict, Verdict::Pass, "{:#?}", r.findings);
}

#[tokio::test]
async fn tree_walk_with_psd_and_an_intermediate_record() {
    let net = TestNet::start().await;
    mail_domain(&net, "a.dept.org.test").await;
    // An intermediate record RFC 7489 receivers never see (they jump to org.test).
    dmarc(
        &net,
        "dept.org.test",
        &["v=DMARC1; p=none; psd=n; rua=mailto:d@dept.org.test"],
    );
    dmarc(
        &net,
        "org.test",
        &["v=DMARC1; p=reject; rua=mailto:d@org.test"],
    );
    let r = checker(&net).check("a.dept.org.test").await;
    let v = json(&r);
    assert_eq!(v["dmarc"]["rfc7489"]["record_domain"], "org.test");
    assert_eq!(v["dmarc"]["rfc7489"]["policy"], "reject");
    assert_eq!(v["dmarc"]["rfc9989"]["record_domain"], "dept.org.test");
    assert_eq!(v["dmarc"]["rfc9989"]["policy"], "none");
    assert_eq!(
        v["dmarc"]["rfc9989"]["organizational_domain"],
        "dept.org.test"
    );
    // psd=n ends the walk: neither org.test nor test is asked by an RFC 9989 receiver.
    assert_eq!(
        v["dmarc"]["rfc9989"]["queried"],
        serde_json::json!(["_dmarc.a.dept.org.test", "_dmarc.dept.org.test"])
    );
    assert_eq!(severity(&r, "dmarc-receivers-disagree"), Severity::Warning);
    // The checker asked every name either receiver asks.
    let asked: Vec<String> = net
        .zone()
        .queries()
        .into_iter()
        .map(|(name, _)| name.trim_end_matches('.').to_ascii_lowercase())
        .collect();
    for name in [
        "_dmarc.a.dept.org.test",
        "_dmarc.dept.org.test",
        "_dmarc.org.test",
    ] {
        assert!(asked.iter().any(|a| a == name), "{name} not in {asked:?}");
    }
}

#[tokio::test]
async fn several_records_and_bad_tags_fail() {
    let net = TestNet::start().await;
    mail_domain(&net, "two.test").await;
    dmarc(
        &net,
        "two.test",
        &["v=DMARC1; p=reject", "v=DMARC1; p=none"],
    );
    mail_domain(&net, "bad.test").await;
    dmarc(
        &net,
        "bad.test",
        &["v=DMARC1; p=reject; pct=150; adkim=x; rua=dmarc@bad.test; foo=bar"],
    );
    mail_domain(&net, "dup.test").await;
    dmarc(&net, "dup.test", &["v=DMARC1; p=none; p=reject"]);
    let checker = checker(&net);

    let r = checker.check("two.test").await;
    assert_eq!(r.verdict, Verdict::Fail);
    assert_eq!(severity(&r, "dmarc-record-multiple"), Severity::Error);
    assert_eq!(json(&r)["dmarc"]["status"], "invalid");
    assert_eq!(json(&r)["dmarc"]["raw"].as_array().unwrap().len(), 2);

    let r = checker.check("bad.test").await;
    assert_eq!(r.verdict, Verdict::Fail);
    let invalid = r
        .findings
        .iter()
        .filter(|f| f.code == "dmarc-tag-invalid")
        .count();
    assert_eq!(invalid, 2, "{:#?}", r.findings);
    assert_eq!(severity(&r, "dmarc-uri-invalid"), Severity::Error);
    assert_eq!(severity(&r, "dmarc-tag-unknown"), Severity::Info);
    assert_eq!(json(&r)["dmarc"]["record"]["pct"], 100);

    let r = checker.check("dup.test").await;
    assert_eq!(severity(&r, "dmarc-tag-duplicate"), Severity::Error);
    assert_eq!(severity(&r, "dmarc-record-invalid"), Severity::Error);
}

#[tokio::test]
async fn external_report_destination_authorization() {
    let net = TestNet::start().await;
    mail_domain(&net, "ext.test").await;
    dmarc(
        &net,
        "ext.test",
        &["v=DMARC1; p=reject; rua=mailto:a@reports.yes.test,mailto:b@reports.no.test"],
    );
    net.zone()
        .add_txt("ext.test._report._dmarc.reports.yes.test", &["v=DMARC1"]);
    let r = checker(&net).check("ext.test").await;
    let v = json(&r);
    let rua = &v["dmarc"]["record"]["rua"];
    assert_eq!(rua[0]["external"], true);
    assert_eq!(
        rua[0]["authorization"],
        "ext.test._report._dmarc.reports.yes.test"
    );
    assert_eq!(rua[0]["authorized"], true);
    assert_eq!(rua[1]["authorized"], false);
    assert_eq!(codes(&r), ["dmarc-report-authorization-missing"]);
    assert_eq!(r.verdict, Verdict::Warn);
}

#[tokio::test]
async fn temporary_dns_failures() {
    let net = TestNet::start().await;
    mail_domain(&net, "flaky.test").await;
    net.zone().set_fault("_dmarc.flaky.test", Fault::ServFail);
    mail_domain(&net, "authflaky.test").await;
    dmarc(
        &net,
        "authflaky.test",
        &["v=DMARC1; p=reject; rua=mailto:a@reports.other.test"],
    );
    net.zone().set_fault(
        "authflaky.test._report._dmarc.reports.other.test",
        Fault::Refused,
    );
    let checker = checker(&net);
    let r = checker.check("flaky.test").await;
    assert_eq!(codes(&r), ["dmarc-dns-error"]);
    assert_eq!(r.verdict, Verdict::Fail);
    assert_eq!(json(&r)["dmarc"]["status"], "temp-error");

    let r = checker.check("authflaky.test").await;
    assert_eq!(codes(&r), ["dmarc-report-authorization-dns-error"]);
    assert_eq!(
        json(&r)["dmarc"]["record"]["rua"][0]["authorized"],
        serde_json::Value::Null
    );
}
