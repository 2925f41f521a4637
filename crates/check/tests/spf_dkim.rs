//! End-to-end tests of the SPF and DKIM stages: private test domains served by the testkit's
//! real DNS server on loopback (faults included), checked through the real DNS client.

use std::sync::Arc;
use std::time::Duration;

use mtasts_check::report::DomainReport;
use mtasts_check::{CheckOptions, Checker, StageSet, Verdict};
use mtasts_net::dns::{DnsConfig, HickoryDns};
use mtasts_net::fetch::{FetchConfig, PolicyFetcher};
use mtasts_net::smtp::{ProbeConfig, SmtpProber};
use mtasts_proto::Severity;
use mtasts_testkit::{Fault, TestNet};

/// Keys generated with `openssl genrsa 1024|2048 | openssl rsa -pubout -outform DER | base64`
/// and `openssl genpkey -algorithm ed25519` (the last 32 octets of the public key).
const RSA1024: &str = "MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQC+WCkD2uEMoVqjKpV5wGJ5SJhkVjZbOk0xhw1JXSC0ldr74hbLGE1wzdWc0RjLntr19YnrFq9sVcu8S2GyUXCCn+z9tdsgFkbIMXE+WaVNA60+DEH5XNVzm/tWkPU/l1nCmeo/vFcfJQOce2U5gCL39eogaviXV8yfBtOnlgpxJwIDAQAB";
const RSA2048: &str = "MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA10XA86bysYz99iZliaS2FUK6vD9VjMghLwo/tm6W7guMvbF8j8Ge4uXbhRZyGkf5nMBkYHApcxBp2QkzQnokZN6vFhz3g5DL2f0ELP7oWVc8NXzqt7x/IG+/LFqicJWLCVka66GUVp4DNV92k+YJTD/Dgn0RY9KuHsqc5eETTJNLpnj21nNgnnp67YEK9JhZZXX1/fsdFLq79sEgGezNifqFu3wmMC9MjxyCp/IL7ApghiHPXTixo3pS2ZDYLqoUvvZP2DKJ6HRHBpQJimqmYaue6aBO7Et5Cms1XBG/6v3s3vcyXxa2lozjbwkZc2s1uCCAnLNL0O+fxN+EvSrydQIDAQAB";
const ED25519: &str = "ycQEtA6HV0IKDIVNKz0Dr5ro/Lj3SXIU9LBQYXROI1Q=";

fn checker(net: &TestNet, stages: &str, selectors: &[&str]) -> Checker {
    checker_with_deadline(net, stages, selectors, CheckOptions::default().deadline)
}

fn checker_with_deadline(
    net: &TestNet,
    stages: &str,
    selectors: &[&str],
    deadline: Duration,
) -> Checker {
    mtasts_net::install_crypto_provider();
    let timeout = Duration::from_secs(2);
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
    let options = CheckOptions {
        stages: stages.parse::<StageSet>().expect("stages"),
        dkim_selectors: selectors.iter().map(|s| s.to_string()).collect(),
        deadline,
        ..CheckOptions::default()
    };
    Checker::new(dns, Arc::new(fetcher), Arc::new(prober), options)
}

fn codes(r: &DomainReport) -> Vec<&str> {
    r.findings.iter().map(|f| f.code.as_str()).collect()
}

fn severity(r: &DomainReport, code: &str) -> Severity {
    r.findings
        .iter()
        .find(|f| f.code == code)
        .unwrap_or_else(|| panic!("no {code} in {:#?}", r.findings))
        .severity
}

fn spf_json(r: &DomainReport) -> serde_json::Value {
    serde_json::to_value(r).expect("serializes")["spf"].clone()
}

#[tokio::test]
async fn spf_valid_tree_with_include_and_redirect() {
    let net = TestNet::start().await;
    let z = net.zone();
    z.add_txt(
        "good.test",
        &["v=spf1 mx include:_spf.provider.test redirect=_spf.good.test"],
    );
    z.add_txt("good.test", &["unrelated=1"]);
    z.add_mx("good.test", 10, "mx.good.test");
    z.add_txt(
        "_spf.provider.test",
        &["v=spf1 ip4:192.0.2.0/24 a:out.provider.test ?all"],
    );
    z.add_a("out.provider.test", "192.0.2.9".parse().unwrap());
    // A record split over two character-strings is read concatenated (RFC 7208 §3.3).
    z.add_txt("_spf.good.test", &["v=spf1 ip6:2001:db8::/32 ", "-all"]);
    let r = checker(&net, "spf", &[]).check("good.test").await;
    assert_eq!(r.verdict, Verdict::Pass, "{:#?}", r.findings);
    let spf = r.spf.as_ref().unwrap();
    assert_eq!(spf.status.as_str(), "valid");
    assert_eq!((spf.dns_lookups, spf.void_lookups), (4, 0));
    let v = spf_json(&r);
    assert_eq!(
        v["record"],
        "v=spf1 mx include:_spf.provider.test redirect=_spf.good.test"
    );
    assert_eq!(
        v["tree"]["terms"][1]["target"]["domain"],
        "_spf.provider.test"
    );
    assert_eq!(
        v["tree"]["terms"][1]["target"]["terms"][1]["note"],
        "1 address(s)"
    );
    assert_eq!(v["tree"]["terms"][2]["target"]["via"], "redirect");
    assert_eq!(
        v["tree"]["terms"][2]["target"]["records"][0],
        "v=spf1 ip6:2001:db8::/32 -all"
    );
    // Only the SPF stage ran.
    assert!(r.dkim.is_none());
    assert!(r.mx_hosts.is_empty());
}

#[tokio::test]
async fn spf_missing_multiple_invalid() {
    let net = TestNet::start().await;
    let z = net.zone();
    z.add_txt("multi.test", &["v=spf1 -all"]);
    z.add_txt("multi.test", &["v=spf1 mx -all"]);
    z.add_txt("bad.test", &["v=spf1 ip4:192.0.2.0/33 -all"]);
    z.add_a("nospf.test", "192.0.2.1".parse().unwrap());
    let c = checker(&net, "spf", &[]);

    let r = c.check("nospf.test").await;
    assert_eq!(codes(&r), ["spf-record-missing"]);
    assert_eq!(r.verdict, Verdict::Warn);
    assert_eq!(r.spf.as_ref().unwrap().status.as_str(), "none");

    let r = c.check("multi.test").await;
    assert_eq!(codes(&r), ["spf-record-multiple"]);
    assert_eq!(r.verdict, Verdict::Fail);
    assert_eq!(r.spf.as_ref().unwrap().status.as_str(), "permerror");

    let r = c.check("bad.test").await;
    assert_eq!(codes(&r), ["spf-record-invalid"]);
    assert!(
        r.findings[0].message.contains("/33"),
        "{}",
        r.findings[0].message
    );
}

#[tokio::test]
async fn spf_lookup_limit_void_lookups_and_loops() {
    let net = TestNet::start().await;
    let z = net.zone();
    // 4 includes of 3 lookups each, plus the includes themselves: 16 lookups.
    z.add_txt(
        "many.test",
        &["v=spf1 include:p1.many.test include:p2.many.test include:p3.many.test include:p4.many.test -all"],
    );
    for i in 1..=4 {
        z.add_txt(
            &format!("p{i}.many.test"),
            &["v=spf1 a mx exists:%{d} ~all"],
        );
        z.add_a(&format!("p{i}.many.test"), "192.0.2.1".parse().unwrap());
        z.add_mx(&format!("p{i}.many.test"), 10, "mx.many.test");
    }
    z.add_txt(
        "void.test",
        &["v=spf1 a:gone1.void.test mx:gone2.void.test exists:gone3.void.test -all"],
    );
    z.add_txt("loop.test", &["v=spf1 include:back.loop.test -all"]);
    z.add_txt("back.loop.test", &["v=spf1 include:loop.test -all"]);
    z.add_txt("hole.test", &["v=spf1 include:nothing.hole.test -all"]);
    let c = checker(&net, "spf", &[]);

    let r = c.check("many.test").await;
    assert_eq!(r.spf.as_ref().unwrap().dns_lookups, 16);
    assert_eq!(codes(&r), ["spf-lookup-limit"]);
    assert_eq!(r.verdict, Verdict::Fail);
    assert!(
        r.findings[0]
            .message
            .contains("the 11th is \"mx\" in the record of p3.many.test"),
        "{}",
        r.findings[0].message
    );

    let r = c.check("void.test").await;
    assert_eq!(r.spf.as_ref().unwrap().void_lookups, 3);
    assert!(
        codes(&r).contains(&"spf-void-lookup-limit"),
        "{:?}",
        codes(&r)
    );
    assert_eq!(severity(&r, "spf-void-lookup"), Severity::Warning);
    assert_eq!(r.spf.as_ref().unwrap().status.as_str(), "permerror");

    let r = c.check("loop.test").await;
    assert_eq!(codes(&r), ["spf-loop"]);

    let r = c.check("hole.test").await;
    assert_eq!(codes(&r), ["spf-include-missing"]);
}

#[tokio::test]
async fn spf_temporary_failures_are_reported_as_such() {
    let net = TestNet::start().await;
    let z = net.zone();
    z.add_txt("flaky.test", &["v=spf1 include:down.flaky.test -all"]);
    z.add_txt("down.flaky.test", &["v=spf1 -all"]);
    z.set_fault("down.flaky.test", Fault::ServFail);
    z.add_txt("servfail.test", &["v=spf1 -all"]);
    z.set_fault("servfail.test", Fault::ServFail);
    let c = checker(&net, "spf", &[]);

    let r = c.check("flaky.test").await;
    assert_eq!(codes(&r), ["spf-dns-error"]);
    assert_eq!(r.spf.as_ref().unwrap().status.as_str(), "temperror");
    assert!(
        r.findings[0].message.contains("SERVFAIL"),
        "{}",
        r.findings[0].message
    );

    let r = c.check("servfail.test").await;
    assert_eq!(codes(&r), ["spf-dns-error"]);
    assert_eq!(r.verdict, Verdict::Fail);
}

#[tokio::test]
async fn spf_all_qualifiers_and_ptr() {
    let net = TestNet::start().await;
    let z = net.zone();
    z.add_txt("open.test", &["v=spf1 +all"]);
    z.add_txt("neutral.test", &["v=spf1 ptr ?all"]);
    z.add_txt("noall.test", &["v=spf1 ip4:192.0.2.1"]);
    let c = checker(&net, "spf", &[]);
    let r = c.check("open.test").await;
    assert_eq!(codes(&r), ["spf-all-pass"]);
    assert_eq!(r.verdict, Verdict::Fail);
    let r = c.check("neutral.test").await;
    assert_eq!(codes(&r), ["spf-ptr", "spf-all-neutral"]);
    assert_eq!(r.verdict, Verdict::Warn);
    let r = c.check("noall.test").await;
    assert_eq!(codes(&r), ["spf-all-missing"]);
}

#[tokio::test]
async fn dkim_keys_of_every_kind() {
    let net = TestNet::start().await;
    let z = net.zone();
    let long = |name: &str, text: String| z.add_txt_long(name, &text);
    long(
        "k2048._domainkey.keys.test",
        format!("v=DKIM1; k=rsa; p={RSA2048}"),
    );
    long(
        "k1024._domainkey.keys.test",
        format!("v=DKIM1; k=rsa; p={RSA1024}"),
    );
    long(
        "ed._domainkey.keys.test",
        format!("v=DKIM1; k=ed25519; p={ED25519}"),
    );
    z.add_txt("old._domainkey.keys.test", &["v=DKIM1; k=rsa; p="]);
    z.add_txt("flaky._domainkey.keys.test", &["v=DKIM1; p="]);
    z.set_fault("flaky._domainkey.keys.test", Fault::ServFail);
    let selectors = ["k2048", "k1024", "ed", "old", "gone", "flaky"];
    let r = checker(&net, "dkim", &selectors).check("keys.test").await;
    let dkim = r.dkim.as_ref().expect("dkim section");
    let summary: Vec<(&str, String, Option<usize>)> = dkim
        .selectors
        .iter()
        .map(|k| {
            let status = serde_json::to_value(k.status)
                .unwrap()
                .as_str()
                .unwrap()
                .to_owned();
            (k.selector.as_str(), status, k.bits)
        })
        .collect();
    assert_eq!(
        summary,
        [
            ("k2048", "valid".to_owned(), Some(2048)),
            ("k1024", "valid".to_owned(), Some(1024)),
            ("ed", "valid".to_owned(), Some(256)),
            ("old", "revoked".to_owned(), None),
            ("gone", "missing".to_owned(), None),
            ("flaky", "temp-error".to_owned(), None),
        ]
    );
    assert_eq!(severity(&r, "dkim-key-short"), Severity::Warning);
    assert_eq!(severity(&r, "dkim-key-revoked"), Severity::Warning);
    assert_eq!(severity(&r, "dkim-key-missing"), Severity::Error);
    assert_eq!(severity(&r, "dkim-dns-error"), Severity::Error);
    assert_eq!(severity(&r, "dkim-key-ed25519"), Severity::Info);
    assert_eq!(r.verdict, Verdict::Fail);
    let v = serde_json::to_value(&r).unwrap();
    assert_eq!(v["dkim"]["selectors"][2]["key_type"], "ed25519");
    assert_eq!(
        v["dkim"]["selectors"][0]["name"],
        "k2048._domainkey.keys.test"
    );
    assert!(v["spf"].is_null());
}

#[tokio::test]
async fn every_stage_by_default() {
    let net = TestNet::start().await;
    net.zone().add_txt("all.test", &["v=spf1 -all"]);
    let r = checker(&net, "mta-sts,tlsrpt,dmarc,spf,dkim", &[])
        .check("all.test")
        .await;
    assert!(r.spf.is_some());
    assert_eq!(r.dkim.as_ref().map(|d| d.selectors.len()), Some(0));
    assert!(codes(&r).contains(&"sts-record-missing"));
    assert!(codes(&r).contains(&"tlsrpt-record-missing"));
    assert!(
        !codes(&r).iter().any(|c| c.starts_with("spf-")),
        "{:?}",
        codes(&r)
    );
    let only_rpt = checker(&net, "tlsrpt", &[]).check("all.test").await;
    assert_eq!(codes(&only_rpt), ["tlsrpt-record-missing"]);
    assert!(only_rpt.spf.is_none() && only_rpt.dkim.is_none());
}

#[tokio::test]
async fn a_tree_of_silent_name_servers_does_not_cost_the_check_its_deadline() {
    let net = TestNet::start().await;
    let z = net.zone();
    z.add_txt(
        "slow.test",
        &["v=spf1 include:a.slow.test include:b.slow.test include:c.slow.test -all"],
    );
    for name in ["a.slow.test", "b.slow.test", "c.slow.test"] {
        z.add_txt(name, &["v=spf1 -all"]);
        z.set_fault(name, Fault::Drop);
    }
    // Each lookup may take the 2 s DNS timeout; the SPF walk gets half of the 4 s deadline.
    let c = checker_with_deadline(&net, "spf,tlsrpt", &[], Duration::from_secs(4));
    let started = std::time::Instant::now();
    let r = c.check("slow.test").await;
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );
    assert!(!codes(&r).contains(&"check-timeout"), "{:?}", codes(&r));
    assert!(
        codes(&r).contains(&"tlsrpt-record-missing"),
        "{:?}",
        codes(&r)
    );
    assert_eq!(r.spf.as_ref().unwrap().status.as_str(), "temperror");
    assert!(
        r.findings.iter().any(|f| f.message.contains("time budget")),
        "{:#?}",
        r.findings
    );
}
