//! The `mtasts` binary as users and scripts run it: flags, output formats, exit codes.

use std::process::{Command, Output};

use mtasts_testkit::TestNet;
use mtasts_testkit::smtp::MxHostSpec;

#[path = "cli/contract.rs"]
mod contract;

fn mtasts(net: Option<&TestNet>, args: &[&str]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_mtasts"));
    cmd.args(args)
        .env_remove("SSL_CERT_FILE")
        .env("NO_COLOR", "1");
    if let Some(net) = net {
        cmd.args(["--dns", &net.dns_addr().to_string()])
            .args(["--ca-file", net.ca_file().to_str().unwrap()])
            .arg("--no-builtin-roots")
            .args(["--timeout", "2"])
            .args(["--https-port", &net.https_port().to_string()])
            .args(["--smtp-port", &net.smtp_port().to_string()]);
    }
    cmd.output().expect("run mtasts")
}

async fn publish(net: &TestNet, domain: &str, mode: &str, tlsrpt: bool) {
    let mx = format!("mx.{domain}");
    net.zone().add_mx(domain, 10, &mx);
    net.zone().add_txt(domain, &["v=spf1 mx -all"]);
    net.add_mx_host(&mx, MxHostSpec::default()).await;
    let policy = format!("version: STSv1\nmode: {mode}\nmx: {mx}\nmax_age: 604800\n");
    net.add_sts_domain(domain, &policy, "v=STSv1; id=1").await;
    if tlsrpt {
        net.zone().add_txt(
            &format!("_smtp._tls.{domain}"),
            &[&format!("v=TLSRPTv1; rua=mailto:r@{domain}")],
        );
    } // A DMARC record with nothing to report (issue 13), so the verdicts below are MTA-STS's.
    net.zone().add_txt(
        &format!("_dmarc.{domain}"),
        &[&format!("v=DMARC1; p=reject; rua=mailto:d@{domain}")],
    );
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Runs each `(arguments, exit code)` row and checks the code: the exit-code contract
/// (0 pass or warn, 1 fail or `--strict` warn, 2 usage or runtime error) as a table.
fn assert_exit_codes(net: Option<&TestNet>, cases: &[(&[&str], i32)]) {
    for (args, code) in cases {
        let o = mtasts(net, args);
        assert_eq!(
            o.status.code(),
            Some(*code),
            "mtasts {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&o.stderr)
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn json_output_and_exit_codes() {
    let net = TestNet::start().await;
    publish(&net, "pass.test", "enforce", true).await;
    publish(&net, "warn.test", "testing", true).await;

    let o = mtasts(Some(&net), &["check", "--json", "pass.test"]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    // Every field of the contract is present with the contract's types, and no other.
    let report = contract::one(&o.stdout);
    let address = &report.mx_hosts[0].addresses[0];
    assert!(address.certificate.is_some(), "missing address certificate");
    assert_eq!(report.verdict, contract::Verdict::Pass);

    assert_exit_codes(
        Some(&net),
        &[
            (&["check", "--json", "warn.test"], 0),
            // --strict makes warn exit 1.
            (&["check", "--json", "--strict", "warn.test"], 1),
        ],
    );

    let o = mtasts(
        Some(&net),
        &["check", "--json", "pass.test", "missing.test"],
    );
    assert_eq!(o.status.code(), Some(1));
    let reports = contract::many(&o.stdout);
    assert_eq!(reports.len(), 2, "several domains give an array");
    assert_eq!(reports[1].verdict, contract::Verdict::Fail);
    assert_eq!(reports[1].policy.status, contract::PolicyStatus::None);
}

#[tokio::test(flavor = "multi_thread")]
async fn bulk_jsonl_and_csv_from_a_file() {
    let net = TestNet::start().await;
    publish(&net, "a.test", "enforce", true).await;
    publish(&net, "b.test", "testing", false).await;
    let dir = tempfile::tempdir().unwrap();
    let list = dir.path().join("domains.txt");
    std::fs::write(&list, "# bulk\na.test\nb.test\nc.test\n").unwrap();

    let o = mtasts(
        Some(&net),
        &[
            "check",
            "--jsonl",
            "--concurrency",
            "2",
            "--file",
            list.to_str().unwrap(),
        ],
    );
    assert_eq!(o.status.code(), Some(1));
    let lines = contract::lines(&o.stdout);
    let summary: Vec<(&str, contract::Verdict)> = lines
        .iter()
        .map(|r| (r.domain.as_str(), r.verdict))
        .collect();
    use contract::Verdict::{Fail, Pass, Warn};
    assert_eq!(
        summary,
        [("a.test", Pass), ("b.test", Warn), ("c.test", Fail)]
    );

    let o = mtasts(
        Some(&net),
        &["check", "--csv", "--file", list.to_str().unwrap()],
    );
    let text = stdout(&o);
    let rows: Vec<&str> = text.lines().collect();
    assert_eq!(
        rows[0],
        "domain,verdict,policy_status,mode,max_age,id,mx_hosts,tlsrpt_status,errors,warnings,\
         dmarc_status,dmarc_policy,spf_status,spf_dns_lookups,spf_void_lookups,dkim_keys"
    );
    assert!(rows[1].contains(",valid,reject,"), "{}", rows[1]);
    assert!(rows[3].contains(",none,,"), "{}", rows[3]);
    assert!(
        rows[1].starts_with("a.test,pass,valid,enforce,604800,1,mx.a.test,valid,,"),
        "{}",
        rows[1]
    );
    assert!(
        rows[2].contains("policy-mode-testing") && rows[2].contains("tlsrpt-record-missing"),
        "{}",
        rows[2]
    );
    assert!(rows[3].starts_with("c.test,fail,none,"), "{}", rows[3]);
}

#[tokio::test(flavor = "multi_thread")]
async fn human_output_groups_findings_with_fixes() {
    let net = TestNet::start().await;
    publish(&net, "human.test", "testing", false).await;
    let o = mtasts(Some(&net), &["check", "human.test"]);
    let text = stdout(&o);
    assert!(text.starts_with("human.test WARN"), "{text}");
    assert!(text.contains("Policy file"), "{text}");
    assert!(text.contains("policy-mode-testing"), "{text}");
    assert!(text.contains("fix: "), "{text}");
    assert!(
        text.contains("a sending server logs: STSFetchResult.VALID"),
        "{text}"
    );
    assert!(!text.contains('\x1b'), "no colour with NO_COLOR");
    assert!(
        text.contains("DMARC valid, p=reject at _dmarc.human.test"),
        "{text}"
    );

    let o = mtasts(Some(&net), &["check", "none.test"]);
    assert!(stdout(&o).contains("STSFetchResult.NONE"));
}

#[test]
fn usage_errors_exit_2() {
    assert_exit_codes(
        None,
        &[
            (&["check"], 2),
            (&["check", "--json", "--csv", "x.test"], 2),
            (&["check", "--timeout", "-1", "x.test"], 2),
            (&["check", "--ca-file", "/nonexistent.pem", "x.test"], 2),
            (&["frobnicate"], 2),
        ],
    );
}

#[test]
fn generate_prints_records_that_parse() {
    let o = mtasts(
        None,
        &[
            "generate",
            "Example.COM",
            "--mode",
            "enforce",
            "--mx",
            "mail.example.com",
            "--mx",
            "*.mx.example.net",
            "--max-age",
            "1209600",
            "--id",
            "abc123",
            "--rua",
            "https://r.example.com/v1",
            "--json",
        ],
    );
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        v["policy_url"],
        "https://mta-sts.example.com/.well-known/mta-sts.txt"
    );
    let policy = v["policy"].as_str().unwrap();
    assert_eq!(
        policy,
        "version: STSv1\r\nmode: enforce\r\nmx: mail.example.com\r\nmx: *.mx.example.net\r\nmax_age: 1209600\r\n"
    );
    let parsed = mtasts_proto::sts::policy::Policy::parse(policy).unwrap();
    assert_eq!(parsed.mx.len(), 2);
    assert_eq!(v["records"][0]["name"], "_mta-sts.example.com");
    let sts = v["records"][0]["value"].as_str().unwrap();
    assert_eq!(
        mtasts_proto::sts::record::StsRecord::parse(sts)
            .unwrap()
            .id
            .as_str(),
        "abc123"
    );
    let rpt = v["records"][1]["value"].as_str().unwrap();
    assert!(
        mtasts_proto::tlsrpt::record::TlsRptRecord::parse(rpt).is_ok(),
        "{rpt}"
    );

    // A fresh id is a timestamp; the text output shows the records and the nginx snippet.
    let o = mtasts(
        None,
        &["generate", "example.com", "--mx", "mail.example.com"],
    );
    let text = stdout(&o);
    assert!(
        text.contains("_mta-sts.example.com.\t3600\tIN\tTXT\t\"v=STSv1; id=20"),
        "{text}"
    );
    assert!(text.contains("mode: testing"), "{text}");
    assert!(text.contains("server_name mta-sts.example.com;"), "{text}");

    let mx = ["generate", "example.com", "--mx", "m.example.com"];
    assert_exit_codes(
        None,
        &[
            (&["generate", "example.com", "--mx", "*.*.example.com"], 2),
            (&[&mx[..], &["--id", "a-b"]].concat(), 2),
            (&[&mx[..], &["--max-age", "31557601"]].concat(), 2),
            (&[&mx[..], &["--rua", "r@example.com"]].concat(), 2),
        ],
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn generate_looks_up_mx_hosts() {
    let net = TestNet::start().await;
    net.zone().add_mx("gen.test", 10, "mx1.gen.test");
    net.zone().add_mx("gen.test", 20, "mx2.gen.test");
    let o = mtasts(Some(&net), &["generate", "gen.test", "--json"]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(
        v["policy"]
            .as_str()
            .unwrap()
            .contains("mx: mx1.gen.test\r\nmx: mx2.gen.test\r\n")
    );
}

// SPF and DKIM: --only, --dkim-selector, their JSON, CSV and human output.

#[tokio::test(flavor = "multi_thread")]
async fn check_spf_and_dkim_only() {
    let net = TestNet::start().await;
    let z = net.zone();
    z.add_txt("auth.test", &["v=spf1 include:_spf.auth.test ?all"]);
    z.add_txt("_spf.auth.test", &["v=spf1 a:gone.auth.test -all"]);
    z.add_txt(
        "ed._domainkey.auth.test",
        &["v=DKIM1; k=ed25519; p=ycQEtA6HV0IKDIVNKz0Dr5ro/Lj3SXIU9LBQYXROI1Q="],
    );
    let args = [
        "check",
        "--json",
        "--only",
        "spf,dkim",
        "--dkim-selector",
        "ed",
        "--dkim-selector",
        "Gone",
        "auth.test",
    ];
    let o = mtasts(Some(&net), &args);
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    let r = contract::one(&o.stdout);
    let spf = r.spf.as_ref().expect("spf section");
    assert_eq!(spf.status, contract::SpfStatus::Valid);
    assert_eq!((spf.dns_lookups, spf.void_lookups), (2, 1));
    let include = spf.tree.terms[0].target.as_ref().expect("include followed");
    assert_eq!(include.domain, "_spf.auth.test");
    assert!(include.terms[0].void);
    let dkim = r.dkim.as_ref().expect("dkim section");
    let keys: Vec<(&str, contract::DkimStatus)> = dkim
        .selectors
        .iter()
        .map(|k| (k.selector.as_str(), k.status))
        .collect();
    assert_eq!(
        keys,
        [
            ("ed", contract::DkimStatus::Valid),
            ("gone", contract::DkimStatus::Missing)
        ]
    );
    // Only the selected stages ran: no MTA-STS or TLS-RPT findings.
    assert!(
        r.findings
            .iter()
            .all(|f| matches!(f.stage, contract::Stage::Spf | contract::Stage::Dkim)),
        "{:?}",
        r.findings
    );
    assert!(r.mx_hosts.is_empty());

    let o = mtasts(
        Some(&net),
        &[
            "check",
            "--csv",
            "--only",
            "spf,dkim",
            "--dkim-selector",
            "ed",
            "auth.test",
        ],
    );
    let text = stdout(&o);
    let rows: Vec<&str> = text.lines().collect();
    assert!(
        rows[0].ends_with(
            ",errors,warnings,dmarc_status,dmarc_policy,spf_status,spf_dns_lookups,spf_void_lookups,dkim_keys"
        ),
        "{}",
        rows[0]
    );
    assert!(rows[1].ends_with(",valid,2,1,ed:valid"), "{}", rows[1]);

    let o = mtasts(Some(&net), &["check", "--only", "spf", "auth.test"]);
    let text = stdout(&o);
    assert!(
        text.contains("SPF valid, 2/10 DNS lookups, 1/2 void lookups"),
        "{text}"
    );
    assert!(
        text.contains("  include:_spf.auth.test [lookup 1]"),
        "{text}"
    );
    assert!(
        text.contains("_spf.auth.test: v=spf1 a:gone.auth.test -all"),
        "{text}"
    );
    assert!(text.contains("spf-all-neutral"), "{text}");
    // The sections of stages that did not run are not shown as "nothing found".
    assert!(
        !text.contains("TLS-RPT") && !text.contains("a sending server logs"),
        "{text}"
    );

    assert_exit_codes(
        None,
        &[
            (&["check", "--only", "spf,dane", "x.test"], 2),
            (&["check", "--dkim-selector", "a..b", "x.test"], 2),
        ],
    );
}

/// Issue 13: `generate dmarc` prints a record the checker's parser reads back, the §7.1
/// authorization for an outside report address, and the next step.
#[test]
fn generate_dmarc_prints_the_record_and_the_next_step() {
    let o = mtasts(
        None,
        &[
            "generate",
            "dmarc",
            "Example.COM",
            "--policy",
            "quarantine",
            "--rua",
            "mailto:d@reports.example.net",
            "--json",
        ],
    );
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["records"][0]["name"], "_dmarc.example.com");
    let text = v["records"][0]["value"].as_str().unwrap();
    assert_eq!(
        text,
        "v=DMARC1; p=quarantine; rua=mailto:d@reports.example.net"
    );
    let parsed = mtasts_proto::dmarc::record::parse(text);
    assert!(parsed.diagnostics.is_empty(), "{:#?}", parsed.diagnostics);
    assert_eq!(
        v["authorizations"][0]["name"],
        "example.com._report._dmarc.reports.example.net"
    );
    assert!(v["next_step"].as_str().unwrap().contains("p=reject"));

    let o = mtasts(None, &["generate", "dmarc", "example.com"]);
    let text = stdout(&o);
    assert!(
        text.contains(
            "_dmarc.example.com.\t3600\tIN\tTXT\t\"v=DMARC1; p=none; rua=mailto:dmarc@example.com\""
        ),
        "{text}"
    );
    assert!(text.contains("Next step: "), "{text}");
    assert_exit_codes(
        None,
        &[
            (
                &["generate", "dmarc", "example.com", "--policy", "block"],
                2,
            ),
            (
                &[
                    "generate",
                    "dmarc",
                    "example.com",
                    "--rua",
                    "https://r.example/",
                ],
                2,
            ),
            (
                &[
                    "generate",
                    "dmarc",
                    "example.com",
                    "--rua",
                    "dmarc@example.com",
                ],
                2,
            ),
        ],
    );
}
