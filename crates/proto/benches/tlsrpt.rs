//! The pure cost of the TLS-RPT sender side on one core, without sockets or a database: how
//! many libtlsrpt datagrams `parse_datagram` reads per second (Postfix-shaped: one STS policy,
//! a success or one failure detail), and how long `build_report` takes for many domains' daily
//! reports. Not a test: run it by hand (`cargo bench -p mtasts-proto --bench tlsrpt`, see
//! docs/benchmarks.md).
//!
//! Environment:
//! - `TLSRPT_BENCH_DATAGRAMS` (default 1000000): datagrams parsed per run.
//! - `TLSRPT_BENCH_DOMAINS` (default 10000): reports built per run.
//! - `TLSRPT_BENCH_RUNS` (default 5): runs; the fastest is printed.

use std::time::{Duration, Instant};

use mtasts_proto::ResultType;
use mtasts_proto::tlsrpt::datagram::parse_datagram;
use mtasts_proto::tlsrpt::outgoing::{
    AggregatedPolicy, DEFAULT_MAX_REPORT_BYTES, ReportMeta, build_report, report_id,
};
use mtasts_proto::tlsrpt::report::PolicyType;
use mtasts_proto::tlsrpt::session::{FailureKey, PolicyKey};
use mtasts_testkit::libtlsrpt::{DeliveryRequest, Failure, POLICY_STS};

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn best(runs: usize, mut f: impl FnMut()) -> Duration {
    (0..runs)
        .map(|_| {
            let start = Instant::now();
            f();
            start.elapsed()
        })
        .min()
        .unwrap_or_default()
}

/// What Postfix sends for domain `i`: every tenth delivery failed with one detail.
fn datagram(i: usize) -> Vec<u8> {
    let domain = format!("d{}.example", i % 1000);
    let mut dr = DeliveryRequest::new(
        domain.as_bytes(),
        format!("v=TLSRPTv1; rua=mailto:tlsrpt@{domain}").as_bytes(),
    );
    dr.init_policy(POLICY_STS, Some(domain.as_bytes()));
    for line in [
        &b"version: STSv1"[..],
        b"mode: enforce",
        b"mx: *.mx.example.net",
        b"max_age: 604800",
    ] {
        dr.add_policy_string(line);
    }
    dr.add_mx_host_pattern(b"*.mx.example.net");
    if i.is_multiple_of(10) {
        dr.add_failure(&Failure {
            code: 203,
            sending_mta_ip: Some(b"192.0.2.25"),
            receiving_mx_hostname: Some(b"a.mx.example.net"),
            receiving_ip: Some(b"198.51.100.7"),
            failure_reason_code: Some(b"unable to get local issuer certificate"),
            ..Failure::default()
        });
        dr.finish_policy(1);
    } else {
        dr.finish_policy(0);
    }
    dr.finish()
}

fn main() {
    let count: usize = env_or("TLSRPT_BENCH_DATAGRAMS", 1_000_000);
    let domains: usize = env_or("TLSRPT_BENCH_DOMAINS", 10_000);
    let runs: usize = env_or("TLSRPT_BENCH_RUNS", 5);

    let datagrams: Vec<Vec<u8>> = (0..1000).map(datagram).collect();
    let bytes: usize = datagrams.iter().map(Vec::len).sum::<usize>() / datagrams.len();
    let mut failed = 0usize;
    let elapsed = best(runs, || {
        failed = 0;
        for i in 0..count {
            let result = parse_datagram(&datagrams[i % datagrams.len()]).expect("valid datagram");
            failed += usize::from(result.policies[0].failed);
        }
    });
    println!(
        "parse_datagram: {count} datagrams ({bytes} bytes on average, {failed} failures) in {:.3} s: {:.0} datagrams/s",
        elapsed.as_secs_f64(),
        count as f64 / elapsed.as_secs_f64()
    );

    let policy = PolicyKey {
        policy_type: PolicyType::Sts,
        domain: None,
        strings: vec![
            "version: STSv1".into(),
            "mode: enforce".into(),
            "mx: *.mx.example.net".into(),
            "max_age: 604800".into(),
        ],
        mx: vec!["*.mx.example.net".into()],
    };
    let details: Vec<(FailureKey, u64)> = (0..5)
        .map(|i| {
            (
                FailureKey {
                    result_type: ResultType::CertificateNotTrusted,
                    sending_ip: Some(format!("192.0.2.{i}")),
                    receiving_mx: Some("a.mx.example.net".into()),
                    receiving_helo: None,
                    receiving_ip: Some("198.51.100.7".into()),
                    additional: None,
                    reason_code: Some("unable to get local issuer certificate".into()),
                },
                i + 1,
            )
        })
        .collect();
    let day = 1_796_601_600;
    let mut total_bytes = 0usize;
    let elapsed = best(runs, || {
        total_bytes = 0;
        for d in 0..domains {
            let domain = format!("d{d}.example");
            let record = format!("v=TLSRPTv1; rua=mailto:tlsrpt@{domain}");
            let meta = ReportMeta {
                organization: "Example Mail".into(),
                contact: "tlsrpt@sender.example".into(),
                day,
                report_id: report_id(day, &domain, &record, "sender.example"),
                domain,
            };
            let policies = [AggregatedPolicy {
                policy: policy.clone(),
                successes: 1000,
                failures: 15,
                details: details.clone(),
            }];
            let built = build_report(&meta, &policies, DEFAULT_MAX_REPORT_BYTES).expect("builds");
            total_bytes += built.json.len();
        }
    });
    println!(
        "build_report: {domains} reports ({} bytes of JSON on average) in {:.3} s: {:.1} µs per report",
        total_bytes / domains.max(1),
        elapsed.as_secs_f64(),
        elapsed.as_secs_f64() * 1e6 / domains.max(1) as f64
    );
}
