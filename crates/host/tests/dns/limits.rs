//! What the probe of issue 10 found at the authority's edges: UDP answers too big for the
//! client's buffer (with and without EDNS) must be whole messages with TC set, and questions
//! of class CH or ANY are refused over UDP and TCP. Checked on the raw bytes, with
//! hickory-proto, and with the real `dig` when it is installed.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::{DNSClass, RecordType};
use hickory_proto::serialize::binary::{BinDecodable, BinDecoder};
use mtasts_testkit::services::{self, Service};

use crate::dns::client::*;

/// A TLSRPT value that fits a 1232-byte EDNS answer but not 512 bytes without EDNS.
fn medium_tlsrpt() -> String {
    format!("v=TLSRPTv1; rua=mailto:{}@example.com", "r".repeat(560))
}

/// Decodes `bytes` as one whole DNS message: every byte belongs to a section the header
/// counts (no partial record, nothing after the last counted record).
#[track_caller]
fn whole_message(bytes: &[u8]) -> Message {
    let mut decoder = BinDecoder::new(bytes);
    let message = Message::read(&mut decoder).unwrap_or_else(|e| panic!("undecodable: {e}"));
    assert_eq!(
        decoder.len(),
        0,
        "{} bytes after the last counted record of {message:?}",
        decoder.len()
    );
    message
}

/// Asks `qname` TXT over UDP and returns the raw answer.
async fn udp_raw(server: SocketAddr, qname: &str, edns: bool) -> Vec<u8> {
    let request = query(qname, RecordType::TXT, edns);
    raw_udp(server, &request.to_vec().unwrap(), T)
        .await
        .expect("a UDP answer")
}

#[tokio::test]
async fn truncated_udp_answers_are_whole_messages_with_tc() {
    let dns = start_default().await;
    dns.snapshot.store(Arc::new(snapshot_of(
        42,
        vec![
            hosted("medium.example", None, Some(&medium_tlsrpt())),
            hosted("long.example", None, Some(&long_tlsrpt())),
        ],
    )));
    let medium = "_smtp._tls.medium.example.t1.hosted.test.";
    let long = "_smtp._tls.long.example.t1.hosted.test.";
    // (name, EDNS, the limit the answer must keep to)
    for (qname, edns, limit) in [(medium, false, 512), (long, false, 512), (long, true, 1232)] {
        let bytes = udp_raw(dns.addr, qname, edns).await;
        assert!(
            bytes.len() <= limit,
            "{qname} edns {edns}: {} bytes",
            bytes.len()
        );
        let answer = whole_message(&bytes);
        assert!(answer.metadata.truncation, "{qname} edns {edns}: TC");
        assert!(answer.answers.is_empty(), "{qname} edns {edns}");
        assert!(answer.authorities.is_empty(), "{qname} edns {edns}");
        assert!(answer.additionals.is_empty(), "{qname} edns {edns}");
        assert_eq!(
            answer.edns.is_some(),
            edns,
            "{qname}: EDNS answered with EDNS"
        );
        assert_eq!(answer.metadata.response_code, ResponseCode::NoError);
        assert_eq!(answer.queries.len(), 1);
        assert_eq!(answer.queries[0].name(), &name(qname));
    }
    // What fits is answered whole, without TC, and TCP carries what UDP cannot.
    let fits = whole_message(&udp_raw(dns.addr, medium, true).await);
    assert!(!fits.metadata.truncation);
    assert_eq!(txt_strings(&fits)[0].concat(), medium_tlsrpt().as_bytes());
    for qname in [medium, long] {
        let full = tcp(dns.addr, &query(qname, RecordType::TXT, false)).await;
        assert!(!full.metadata.truncation);
        assert_eq!(full.answers.len(), 1);
    }
}

/// Glue that does not fit is left out without TC (RFC 2181 §9): the answer is complete.
#[tokio::test]
async fn glue_that_does_not_fit_is_left_out_without_tc() {
    let ips: Vec<String> = (1..=30).map(|i| format!("2001:db8::{i:x}")).collect();
    let ips: Vec<&str> = ips.iter().map(String::as_str).collect();
    let dns = start(settings(&ips), fixture_snapshot(41)).await;
    let request = query("hosted.test.", RecordType::NS, false);
    let bytes = raw_udp(dns.addr, &request.to_vec().unwrap(), T)
        .await
        .unwrap();
    assert!(bytes.len() <= 512);
    let answer = whole_message(&bytes);
    assert!(!answer.metadata.truncation);
    assert_eq!(rdata_of(&answer, RecordType::NS), ["ns.hosted.test."]);
    assert!(answer.additionals.is_empty(), "{:?}", answer.additionals);
    // With room for it (EDNS), the glue is there.
    let with_edns = udp(dns.addr, &query("hosted.test.", RecordType::NS, true)).await;
    assert_eq!(with_edns.additionals.len(), 30);
    // The apex's own 30 addresses are the answer itself: they do not fit 512 bytes.
    let request = query("hosted.test.", RecordType::AAAA, false);
    let bytes = raw_udp(dns.addr, &request.to_vec().unwrap(), T)
        .await
        .unwrap();
    let answer = whole_message(&bytes);
    assert!(answer.metadata.truncation);
    assert!(answer.answers.is_empty());
}

/// A question of `class` for `qname`, raw.
fn question_of_class(qname: &str, qtype: RecordType, class: DNSClass) -> Message {
    let mut message = query(qname, qtype, false);
    message.queries[0].set_query_class(class);
    message
}

#[tokio::test]
async fn classes_ch_and_any_are_refused_over_udp_and_tcp() {
    let dns = start_default().await;
    let questions = [
        ("version.bind.", RecordType::TXT, DNSClass::CH),
        ("hostname.bind.", RecordType::TXT, DNSClass::CH),
        ("hosted.test.", RecordType::SOA, DNSClass::CH),
        ("hosted.test.", RecordType::SOA, DNSClass::ANY),
        ("hosted.test.", RecordType::ANY, DNSClass::ANY),
        (
            "_mta-sts.example.com.t1.hosted.test.",
            RecordType::TXT,
            DNSClass::ANY,
        ),
        ("hosted.test.", RecordType::SOA, DNSClass::HS),
        ("hosted.test.", RecordType::SOA, DNSClass::NONE),
    ];
    for (qname, qtype, class) in questions {
        let request = question_of_class(qname, qtype, class);
        let bytes = request.to_vec().unwrap();
        let over_udp = raw_udp(dns.addr, &bytes, T).await.unwrap();
        let over_tcp = raw_tcp(dns.addr, &bytes, T).await.unwrap();
        for answer in [whole_message(&over_udp), whole_message(&over_tcp)] {
            assert_eq!(
                answer.metadata.response_code,
                ResponseCode::Refused,
                "{qname} {qtype} {class}"
            );
            assert!(answer.answers.is_empty(), "{qname} {qtype} {class}");
            assert!(!answer.metadata.authoritative, "{qname} {qtype} {class}");
            assert_eq!(answer.metadata.id, request.metadata.id);
            assert_eq!(answer.queries, request.queries, "the question is echoed");
        }
    }
    // Class IN still answers.
    let soa = both(dns.addr, "hosted.test.", RecordType::SOA).await;
    assert_eq!(soa.metadata.response_code, ResponseCode::NoError);
}

/// Runs `dig @server -p port args…` and returns its output.
async fn dig(server: SocketAddr, args: &[&str]) -> String {
    let mut all = vec![
        format!("@{}", server.ip()),
        "-p".to_string(),
        server.port().to_string(),
        "+tries=1".to_string(),
        "+time=3".to_string(),
    ];
    all.extend(args.iter().map(|a| a.to_string()));
    let output = tokio::time::timeout(
        Duration::from_secs(20),
        tokio::task::spawn_blocking(move || {
            std::process::Command::new("dig")
                .args(&all)
                .stdin(std::process::Stdio::null())
                .output()
                .unwrap()
        }),
    )
    .await
    .expect("dig finishes")
    .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "{text}");
    text
}

#[tokio::test]
async fn dig_reads_the_truncated_answer_and_the_refusals() {
    if !services::command_or_skip(Service::Dig, "dig", &["-v"]) {
        return;
    }
    let dns = start_default().await;
    dns.snapshot.store(Arc::new(snapshot_of(
        42,
        vec![hosted("medium.example", None, Some(&medium_tlsrpt()))],
    )));
    // Without EDNS, and without falling back to TCP: dig shows the UDP answer itself.
    let out = dig(
        dns.addr,
        &[
            "+noedns",
            "+ignore",
            "+norecurse",
            "_smtp._tls.medium.example.t1.hosted.test.",
            "TXT",
        ],
    )
    .await;
    assert!(out.contains("status: NOERROR"), "{out}");
    assert!(out.contains("flags: qr aa tc;"), "{out}");
    assert!(
        out.contains("ANSWER: 0, AUTHORITY: 0, ADDITIONAL: 0"),
        "{out}"
    );
    let lower = out.to_ascii_lowercase();
    assert!(!lower.contains("malformed"), "{out}");
    assert!(!lower.contains("garbage"), "{out}");
    assert!(!lower.contains("warning"), "{out}");
    // dig's own fallback to TCP gets the whole record.
    let out = dig(
        dns.addr,
        &[
            "+noedns",
            "+norecurse",
            "_smtp._tls.medium.example.t1.hosted.test.",
            "TXT",
        ],
    )
    .await;
    assert!(out.contains("ANSWER: 1,"), "{out}");
    assert!(out.contains("rrrrrrrr"), "{out}");

    for transport in ["+notcp", "+tcp"] {
        let out = dig(dns.addr, &[transport, "CH", "TXT", "version.bind"]).await;
        assert!(out.contains("status: REFUSED"), "{transport}: {out}");
        assert!(out.contains("ANSWER: 0,"), "{transport}: {out}");
        let out = dig(dns.addr, &[transport, "-c", "ANY", "SOA", "hosted.test."]).await;
        assert!(out.contains("status: REFUSED"), "{transport}: {out}");
    }
}
