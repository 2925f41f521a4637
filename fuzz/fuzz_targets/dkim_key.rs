//! DKIM key records: the tag list, base64 and the DER key parser over arbitrary input.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mtasts_proto::dkim;
use mtasts_proto::txt::TxtRr;

fuzz_target!(|data: &[u8]| {
    let _ = dkim::evaluate("s1", "example.com", &[TxtRr(vec![data.to_vec()])]);
    // Behind a valid prefix, so the input reaches the base64 and DER readers more often.
    let record = format!("v=DKIM1; k=rsa; p={}", String::from_utf8_lossy(data));
    let _ = dkim::DkimKey::parse(&record);
});
