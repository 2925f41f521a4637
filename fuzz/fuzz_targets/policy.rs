//! Policy body: `analyze` on raw bytes, its invariants, and the serializer round-trip.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mtasts_proto::Severity;
use mtasts_proto::sts::policy::{Policy, analyze};

fuzz_target!(|data: &[u8]| {
    let analysis = analyze(data);
    let has_error = analysis
        .diagnostics
        .iter()
        .any(|d| d.severity == Severity::Error);
    assert_eq!(has_error, analysis.policy.is_none());
    if let Ok(text) = std::str::from_utf8(data) {
        assert_eq!(Policy::parse(text).ok(), analysis.policy);
    }
    if let Some(policy) = analysis.policy {
        assert_eq!(Policy::parse(&policy.to_text("\r\n")), Ok(policy));
    }
});
