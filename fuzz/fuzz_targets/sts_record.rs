//! `_mta-sts` TXT record: the RRset selection over arbitrary bytes, then the strict parser and
//! its Display round-trip.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mtasts_proto::sts::record::{StsRecord, select};
use mtasts_proto::txt::{Selection, TxtRr};

fuzz_target!(|data: &[u8]| {
    // Split the input into character-strings at 0xFF and into RRs at 0xFE.
    let rrset: Vec<TxtRr> = data
        .split(|b| *b == 0xfe)
        .map(|rr| TxtRr(rr.split(|b| *b == 0xff).map(<[u8]>::to_vec).collect()))
        .collect();
    if let Selection::Found { record, .. } = select(&rrset) {
        assert_eq!(StsRecord::parse(&record.to_string()), Ok(record));
    }
    if let Ok(text) = std::str::from_utf8(data)
        && let Ok(record) = StsRecord::parse(text)
    {
        assert_eq!(StsRecord::parse(&record.to_string()), Ok(record));
    }
});
