//! Bulk-check benchmark: `mtasts check --jsonl --file` over N testkit domains, and the same
//! fixture checked by checkdmarc when asked to. Reports domains per second and the peak
//! resident memory of each checker process. Not a test: run it by hand (see
//! docs/benchmarks.md).
//!
//! Environment:
//! - `BENCH_DOMAINS` (default 1000): how many domains the fixture has.
//! - `BENCH_CONCURRENCY` (default 64): mtasts `--concurrency`.
//! - `BENCH_ONLY` (default: every stage): mtasts `--only`, e.g. `mta-sts,tlsrpt` for the
//!   stages that existed before SPF and DKIM, to measure what those cost.
//! - `BENCH_CHECKDMARC` (path to the checkdmarc command): also run checkdmarc. It cannot be told
//!   other ports, so the fixture then binds 53, 443 and 25 on loopback (needs root).

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use mtasts_testkit::smtp::MxHostSpec;
use mtasts_testkit::{CertSpec, PolicyHostSpec, PolicyResponse, Ports, TestNet};

const MX_POOL: usize = 40;

fn main() {
    let domains: usize = env_or("BENCH_DOMAINS", 1000);
    let concurrency: usize = env_or("BENCH_CONCURRENCY", 64);
    let checkdmarc = std::env::var("BENCH_CHECKDMARC").ok();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let ports = if checkdmarc.is_some() {
        Ports::standard()
    } else {
        Ports::default()
    };
    let net = runtime.block_on(fixture(domains, ports));
    let dir = tempfile::tempdir().expect("temp dir");
    let list = dir.path().join("domains.txt");
    let names: Vec<String> = (0..domains).map(domain).collect();
    std::fs::write(&list, names.join("\n") + "\n").expect("write domain list");
    println!(
        "fixture: {domains} domains, {MX_POOL} shared MX hosts, DNS at {}",
        net.dns_addr()
    );

    let mut base = mtasts_args(&net);
    if let Ok(only) = std::env::var("BENCH_ONLY")
        && !only.is_empty()
    {
        base.extend(["--only".into(), only]);
    }
    for concurrency in [concurrency, 1] {
        let mut args = base.clone();
        args.extend([
            "--concurrency".into(),
            concurrency.to_string(),
            "--file".into(),
            list.display().to_string(),
        ]);
        let (elapsed, peak, stdout) =
            measure(Command::new(env!("CARGO_BIN_EXE_mtasts")).args(&args));
        report(
            &format!("mtasts check --jsonl --concurrency {concurrency}"),
            domains,
            elapsed,
            peak,
        );
        let verdicts = tally(&stdout);
        println!("    verdicts: {verdicts}");
        assert_eq!(
            verdicts,
            expected_tally(domains),
            "the checker's verdicts do not match the fixture"
        );
    }
    if let Some(checkdmarc) = checkdmarc {
        let ns = net.dns_addr().ip().to_string();
        // checkdmarc fetches policies with Python requests, which resolves names through the
        // system resolver, not its -n server: give it a private mount namespace whose
        // /etc/resolv.conf names the fixture's DNS server (the network namespace is unchanged).
        let resolv = dir.path().join("resolv.conf");
        std::fs::write(&resolv, format!("nameserver {ns}\n")).expect("write resolv.conf");
        for (label, tls) in [("checkdmarc", false), ("checkdmarc --check-mx-tls", true)] {
            let mut cmd = Command::new("unshare");
            cmd.args([
                "-m",
                "sh",
                "-c",
                "mount --bind \"$0\" /etc/resolv.conf && exec \"$@\"",
            ])
            .arg(&resolv)
            .arg(&checkdmarc)
            .args(["-n", &ns, "-t", "5", "-f", "json"])
            .arg(&list);
            if tls {
                cmd.arg("--check-mx-tls");
            }
            cmd.env("REQUESTS_CA_BUNDLE", net.ca_file())
                .env("SSL_CERT_FILE", net.ca_file());
            let (elapsed, peak, stdout) = measure(&mut cmd);
            report(
                &format!("{label} (sequential; it has no concurrency option)"),
                domains,
                elapsed,
                peak,
            );
            println!("    {}", tally_checkdmarc(&stdout));
        }
    }
}

fn domain(i: usize) -> String {
    format!("d{i}.bench.test")
}

/// Most domains are good enforce domains; every 20 domains, one each lacks the record, is in
/// testing, has an expired policy certificate, serves an invalid policy, or lacks TLS-RPT.
async fn fixture(domains: usize, ports: Ports) -> TestNet {
    let net = TestNet::start_with_ports(ports)
        .await
        .expect("start the fixture TestNet");
    for k in 0..MX_POOL {
        net.add_mx_host(&format!("mx{k}.provider.test"), MxHostSpec::default())
            .await;
    }
    net.zone().add_txt(
        "_spf.provider.test",
        &["v=spf1 ip4:192.0.2.0/24 ip6:2001:db8::/32 ~all"],
    );
    let https_ip = net.next_ip();
    net.start_https_listener(https_ip).await;
    let enforce = "version: STSv1\nmode: enforce\nmx: *.provider.test\nmax_age: 604800\n";
    for i in 0..domains {
        let d = domain(i);
        let zone = net.zone();
        zone.add_mx(&d, 10, &format!("mx{}.provider.test", i % MX_POOL));
        zone.add_mx(&d, 20, &format!("mx{}.provider.test", (i + 1) % MX_POOL));
        zone.add_ip(&format!("mta-sts.{d}"), https_ip);
        // SPF through the provider's include, as most domains publish it: two TXT lookups
        // and one MX lookup per domain.
        zone.add_txt(&d, &["v=spf1 mx include:_spf.provider.test -all"]);
        let variant = i % 20;
        if variant != 0 {
            zone.add_txt(&format!("_mta-sts.{d}"), &["v=STSv1; id=20261122"]);
        }
        if variant != 4 {
            zone.add_txt(
                &format!("_smtp._tls.{d}"),
                &[&format!("v=TLSRPTv1; rua=mailto:tlsrpt@{d}")],
            );
        }
        // Every domain publishes a DMARC record with nothing to report (issue 13), so the
        // tally stays that of the MTA-STS variants; the checker still looks up the record,
        // its parents up to the top-level domain.
        zone.add_txt(
            &format!("_dmarc.{d}"),
            &[&format!("v=DMARC1; p=reject; rua=mailto:dmarc@{d}")],
        );
        let spec = match variant {
            1 => PolicyHostSpec::new(PolicyResponse::policy(
                enforce.replace("enforce", "testing"),
            )),
            2 => PolicyHostSpec::with_cert(CertSpec::Expired, PolicyResponse::policy(enforce)),
            3 => PolicyHostSpec::new(PolicyResponse::policy(
                enforce.replace("max_age: 604800", "max_age: 1e6"),
            )),
            _ => PolicyHostSpec::new(PolicyResponse::policy(enforce)),
        };
        net.set_policy_host(&d, spec);
    }
    net
}

fn mtasts_args(net: &TestNet) -> Vec<String> {
    vec![
        "check".into(),
        "--jsonl".into(),
        "--timeout".into(),
        "5".into(),
        "--dns".into(),
        net.dns_addr().to_string(),
        "--ca-file".into(),
        net.ca_file().display().to_string(),
        "--no-builtin-roots".into(),
        "--https-port".into(),
        net.https_port().to_string(),
        "--smtp-port".into(),
        net.smtp_port().to_string(),
    ]
}

/// Runs the command to completion, sampling its peak resident set (VmHWM) from /proc.
fn measure(cmd: &mut Command) -> (Duration, u64, Vec<u8>) {
    let start = Instant::now();
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn checker");
    let pid = child.id();
    let mut stdout = child.stdout.take().expect("piped stdout");
    let reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        std::io::Read::read_to_end(&mut stdout, &mut buf).ok();
        buf
    });
    let mut peak = 0;
    loop {
        if let Some(hwm) = vm_hwm_kib(pid) {
            peak = peak.max(hwm);
        }
        if child.try_wait().expect("wait").is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let elapsed = start.elapsed();
    (elapsed, peak, reader.join().unwrap_or_default())
}

fn vm_hwm_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn report(label: &str, count: usize, elapsed: Duration, peak_kib: u64) {
    println!(
        "{label}: {count} domains in {:.2} s = {:.1} domains/s, peak RSS {:.1} MiB",
        elapsed.as_secs_f64(),
        count as f64 / elapsed.as_secs_f64(),
        peak_kib as f64 / 1024.0
    );
}

fn tally(jsonl: &[u8]) -> String {
    let mut counts = std::collections::BTreeMap::new();
    for line in String::from_utf8_lossy(jsonl).lines() {
        let verdict = serde_json::from_str::<serde_json::Value>(line)
            .ok()
            .and_then(|v| v["verdict"].as_str().map(str::to_owned))
            .unwrap_or_else(|| "unparsable".into());
        *counts.entry(verdict).or_insert(0) += 1;
    }
    counts
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The verdicts the fixture is built to produce (see [`fixture`]).
fn expected_tally(domains: usize) -> String {
    let (mut fail, mut pass, mut warn) = (0, 0, 0);
    for i in 0..domains {
        match i % 20 {
            0 | 2 | 3 => fail += 1,
            1 | 4 => warn += 1,
            _ => pass += 1,
        }
    }
    [("fail", fail), ("pass", pass), ("warn", warn)]
        .iter()
        .filter(|(_, n)| *n > 0)
        .map(|(k, n)| format!("{k}={n}"))
        .collect::<Vec<_>>()
        .join(" ")
}

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// How many domains checkdmarc found a valid MTA-STS policy and TLS-RPT record for: proof it
/// really reached the fixture's DNS and HTTPS hosts.
fn tally_checkdmarc(json: &[u8]) -> String {
    let Ok(serde_json::Value::Array(items)) = serde_json::from_slice::<serde_json::Value>(json)
    else {
        return format!("unparsable output ({} bytes)", json.len());
    };
    let valid = |key: &str| {
        items
            .iter()
            .filter(|d| d[key]["valid"] == serde_json::Value::Bool(true))
            .count()
    };
    let mut errors = std::collections::BTreeMap::new();
    for error in items.iter().filter_map(|d| d["mta_sts"]["error"].as_str()) {
        *errors
            .entry(error.chars().take(90).collect::<String>())
            .or_insert(0) += 1;
    }
    format!(
        "{} results: mta_sts valid for {}, smtp_tls_reporting valid for {}; mta_sts errors: {errors:?}",
        items.len(),
        valid("mta_sts"),
        valid("smtp_tls_reporting")
    )
}
