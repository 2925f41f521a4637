//! Item 7 of issue 10, DNS and node rows: a UDP answer too big for a client without EDNS is a
//! well-formed truncated message, classes CH and ANY are refused, and rows of nodes gone for
//! longer than `node_retention` are deleted while live nodes' rows stay.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::json;

use super::harness::{self, Site, ZONE};
use super::{http, wire};

#[test]
fn a_udp_answer_too_big_without_edns_is_truncated_and_well_formed() {
    let mut site = Site::new("");
    let serve = site.start();
    serve.tenant("alpha");
    let owner = serve.token("alpha", "owner");
    // Four report URIs of ~240 characters: a TLS-RPT TXT record of about 1,000 bytes.
    let rua = (1..=4)
        .map(|n| format!("https://tlsrpt{n}.example/{}", "r".repeat(220)))
        .collect::<Vec<_>>()
        .join(",");
    let body =
        json!({"domain": "big.example", "mode": "testing", "mx": ["mx.big.example"], "rua": rua});
    let added = http::api(
        serve.api,
        "POST",
        "/api/v1/domains",
        Some(&owner),
        Some(&body),
    );
    assert_eq!(added.status, 201, "{}", added.text());
    let records = added.json()["records"].as_array().cloned().unwrap();
    let tlsrpt = records
        .iter()
        .find(|r| r["kind"] == "tlsrpt")
        .expect("a TLS-RPT record");
    let name = tlsrpt["target"]
        .as_str()
        .unwrap()
        .trim_end_matches('.')
        .to_owned();
    let sts = records
        .iter()
        .find(|r| r["kind"] == "sts_record")
        .and_then(|r| r["target"].as_str())
        .unwrap()
        .trim_end_matches('.')
        .to_owned();

    // Over TCP the whole record comes back, once the node has loaded the domain.
    let whole = query_until_answered(serve.dns, &name);
    let text: Vec<u8> = whole.answer_data[0].clone();
    assert!(text.len() > 900, "{} bytes of TXT", text.len());

    // UDP without EDNS: 512 bytes at most, TC set, and the counts match what is there.
    let raw = wire::udp(
        serve.dns,
        &wire::query(41, &name, wire::TXT, wire::IN, None),
    )
    .unwrap();
    assert!(raw.len() <= 512, "{} bytes", raw.len());
    let small = wire::parse(&raw).unwrap_or_else(|e| panic!("malformed truncated answer: {e}"));
    assert!(small.truncated, "{small:?}");
    assert_eq!(small.id, 41);
    assert_eq!(usize::from(small.counts[0]), small.answer_types.len());
    assert!(small.answer_types.iter().all(|t| *t == wire::TXT));
    // With EDNS the record fits.
    let raw = wire::udp(
        serve.dns,
        &wire::query(42, &name, wire::TXT, wire::IN, Some(1232)),
    )
    .unwrap();
    let big = wire::parse(&raw).unwrap_or_else(|e| panic!("{e}"));
    assert!(!big.truncated);
    assert_eq!(big.answer_types, [wire::TXT]);
    assert_eq!(big.answer_data[0], text);
    // A small answer without EDNS is not truncated (once the policy id is published).
    query_until_answered(serve.dns, &sts);
    let raw = wire::udp(serve.dns, &wire::query(43, &sts, wire::TXT, wire::IN, None)).unwrap();
    let sts = wire::parse(&raw).unwrap_or_else(|e| panic!("{e}"));
    assert!(!sts.truncated);
    assert_eq!(sts.answer_types, [wire::TXT]);
    assert!(serve.stop());
}

/// Asks over TCP until the answer has a record (at most 10 s).
fn query_until_answered(addr: std::net::SocketAddr, name: &str) -> wire::Answer {
    for _ in 0..100 {
        if let Some(raw) = wire::tcp(addr, &wire::query(40, name, wire::TXT, wire::IN, None)) {
            let answer = wire::parse(&raw).unwrap_or_else(|e| panic!("{e}"));
            if !answer.answer_types.is_empty() {
                return answer;
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("{name} never answered");
}

#[test]
fn queries_of_class_ch_or_any_are_refused() {
    let mut site = Site::new("");
    let serve = site.start();
    let ask = |name: &str, qtype: u16, class: u16| {
        let q = wire::query(7, name, qtype, class, None);
        let udp = wire::parse(&wire::udp(serve.dns, &q).expect("an answer over UDP")).unwrap();
        let tcp = wire::parse(&wire::tcp(serve.dns, &q).expect("an answer over TCP")).unwrap();
        assert_eq!(udp.rcode, tcp.rcode);
        udp
    };
    assert_eq!(ask(ZONE, wire::SOA, wire::IN).rcode, 0);
    for (name, qtype, class) in [
        ("version.bind", wire::TXT, wire::CH),
        ("hostname.bind", wire::TXT, wire::CH),
        (ZONE, wire::SOA, wire::CH),
        (ZONE, wire::SOA, wire::ANY),
        (ZONE, wire::TXT, wire::ANY),
    ] {
        let answer = ask(name, qtype, class);
        assert_eq!(
            answer.rcode,
            wire::REFUSED,
            "{name} {qtype} class {class}: {answer:?}"
        );
        assert!(answer.answer_types.is_empty(), "{answer:?}");
    }
    assert!(serve.stop());
}

#[test]
fn rows_of_nodes_gone_longer_than_the_retention_are_deleted() {
    let mut site = Site::new("node_retention = 600\npending_verify_interval = 1");
    let serve = site.start();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let db = site.database();
    harness::sqlite(
        &db,
        &format!(
            "INSERT INTO host_nodes (node_id, loaded_generation, last_seen, started_at) VALUES \
             ('gone-node', 0, {}, {}), ('resting-node', 0, {}, {}) RETURNING node_id",
            now - 100_000,
            now - 200_000,
            now - 120,
            now - 1_000
        ),
    );
    let nodes = || harness::sqlite(&db, "SELECT node_id FROM host_nodes ORDER BY node_id");
    let deleted = serve.wait_until(Duration::from_secs(20), || {
        !nodes().contains(&"gone-node".to_owned())
    });
    assert!(deleted, "{:?}", nodes());
    // Not yet past the retention, and this live node itself: kept.
    let left = nodes();
    assert!(left.contains(&"resting-node".to_owned()), "{left:?}");
    assert!(left.contains(&"probe".to_owned()), "{left:?}");
    assert!(serve.stop());
}
