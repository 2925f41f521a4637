//! `mx` pattern parsing, Display round-trip, and matching against arbitrary host names.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mtasts_proto::sts::mx_pattern::MxPattern;

fuzz_target!(|data: &str| {
    // "pattern\nhost": the part before the first newline is the pattern.
    let (pattern, host) = data.split_once('\n').unwrap_or((data, data));
    if let Ok(parsed) = pattern.parse::<MxPattern>() {
        assert_eq!(parsed.to_string().parse::<MxPattern>(), Ok(parsed.clone()));
        let _ = parsed.matches(host);
        let _ = parsed.looks_like_ip();
        if !parsed.is_wildcard() {
            assert!(parsed.matches(&parsed.to_string()));
        }
    }
});
