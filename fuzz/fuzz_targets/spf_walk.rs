//! SPF: the record parser over arbitrary text, and the tree walk answered from the input (each
//! query gets the next chunk as its TXT answer), which must end within its lookup cap.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mtasts_proto::spf::{Answer, DnsFailure, Query, SpfRecord, SpfWalk, Step};
use mtasts_proto::txt::TxtRr;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = SpfRecord::parse(text);
    }
    let mut chunks = data.split(|b| *b == 0xfe);
    let mut walk = SpfWalk::new("example.com");
    let mut steps = 0;
    while let Step::Query(query) = walk.step() {
        steps += 1;
        assert!(steps <= 200, "the walk does not end");
        let chunk = chunks.next();
        let answer = match (query, chunk) {
            (_, None) => Answer::Txt(Err(DnsFailure::NotFound)),
            (Query::Txt(_), Some(c)) => Answer::Txt(Ok(vec![TxtRr(vec![c.to_vec()])])),
            (Query::Mx(_), Some(c)) => Answer::Mx(Ok(vec![String::new(); c.len() % 16])),
            (Query::Addresses { .. }, Some(c)) if c.is_empty() => {
                Answer::Addresses(Err(DnsFailure::Temporary("x".into())))
            }
            (Query::Addresses { .. }, Some(_)) => Answer::Addresses(Ok(Vec::new())),
        };
        walk.answer(answer);
    }
    let _ = walk.finish();
});
