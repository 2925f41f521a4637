//! Socketmap requests and keys: `parse_request` and `classify_key` never panic, and a domain
//! they produce is normalised (classifying it again, bare or bracketed with a port, gives
//! itself).
#![no_main]

use libfuzzer_sys::fuzz_target;
use mtasts_proto::socketmap::{NextHop, classify_key, parse_request};

fuzz_target!(|data: &[u8]| {
    let Ok(request) = parse_request(data) else {
        return;
    };
    match classify_key(&request.key) {
        NextHop::Domain(domain) => {
            assert!(!domain.is_empty() && domain.len() <= 253);
            assert!(
                domain.bytes().all(|b| b.is_ascii_lowercase()
                    || b.is_ascii_digit()
                    || b == b'-'
                    || b == b'.'),
                "{domain:?}"
            );
            assert_eq!(classify_key(&domain), NextHop::Domain(domain.clone()));
            assert_eq!(
                classify_key(&format!("[{domain}]:25")),
                NextHop::Domain(domain.clone())
            );
            assert_eq!(classify_key(&format!(".{domain}")), NextHop::ParentProbe);
        }
        NextHop::Invalid(key) => assert_eq!(key, request.key),
        NextHop::ParentProbe | NextHop::AddressLiteral => {}
    }
});
