//! `_smtp._tls` TXT record: the RRset selection over arbitrary bytes, then the strict parser
//! and its Display round-trip.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mtasts_proto::tlsrpt::record::{TlsRptRecord, select};
use mtasts_proto::txt::{Selection, TxtRr};

fuzz_target!(|data: &[u8]| {
    let rrset: Vec<TxtRr> = data
        .split(|b| *b == 0xfe)
        .map(|rr| TxtRr(rr.split(|b| *b == 0xff).map(<[u8]>::to_vec).collect()))
        .collect();
    if let Selection::Found { record, .. } = select(&rrset) {
        assert_eq!(TlsRptRecord::parse(&record.to_string()), Ok(record));
    }
    if let Ok(text) = std::str::from_utf8(data)
        && let Ok(record) = TlsRptRecord::parse(text)
    {
        assert_eq!(TlsRptRecord::parse(&record.to_string()), Ok(record));
    }
});
