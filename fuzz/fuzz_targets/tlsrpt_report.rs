//! TLS report JSON: `TlsReport::parse` on raw bytes never panics, is deterministic, classes every error
//! with a contract code, and keeps its invariants on what it accepts.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mtasts_proto::tlsrpt::report::{MAX_COUNT, TlsReport};

fuzz_target!(|data: &[u8]| {
    let first = TlsReport::parse(data);
    assert_eq!(first, TlsReport::parse(data), "parse is not deterministic");
    match first {
        Ok(report) => {
            assert!(report.begin.unix_seconds() <= report.end.unix_seconds());
            for policy in &report.policies {
                assert!(policy.success <= MAX_COUNT && policy.failure <= MAX_COUNT);
                for detail in &policy.failures {
                    assert!(detail.count <= MAX_COUNT);
                }
            }
        }
        Err(e) => assert!(
            matches!(e.code(), "malformed" | "invalid" | "too-large"),
            "{e}"
        ),
    }
});
