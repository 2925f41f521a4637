//! The delegated DNS authority over real sockets on loopback: every record type and negative
//! case, the header flags, snapshot swaps, size limits, malformed input, and the delegation
//! as a resolver sees it through the testkit's "internet" DNS (`forward.rs`).

mod client;
mod forward;
mod limits;
mod node_rows;

use std::sync::Arc;
use std::time::Duration;

use hickory_proto::op::{Edns, Message, OpCode, ResponseCode};
use hickory_proto::rr::{RData, RecordType};
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

use client::*;
use mtasts_host::dns::{DnsAuthority, TCP_IDLE_TIMEOUT, check_settings};
use mtasts_testkit::services::{self, Service};

#[tokio::test]
async fn apex_serves_soa_and_ns_authoritatively() {
    let dns = start_default().await;
    let soa = both(dns.addr, "hosted.test.", RecordType::SOA).await;
    assert_eq!(soa.metadata.response_code, ResponseCode::NoError);
    assert!(soa.metadata.authoritative);
    assert!(!soa.metadata.recursion_available);
    assert!(!soa.metadata.authentic_data);
    assert_eq!(soa.answers.len(), 1);
    let RData::SOA(data) = &soa.answers[0].data else {
        panic!("not an SOA: {:?}", soa.answers)
    };
    assert_eq!(data.mname, name("ns.hosted.test."));
    assert_eq!(data.rname, name("hostmaster.hosted.test."));
    assert_eq!(data.serial, 41);
    assert_eq!(data.minimum, TTL);
    assert_eq!(soa.answers[0].ttl, TTL);
    assert!(soa.authorities.is_empty());

    let ns = both(dns.addr, "hosted.test.", RecordType::NS).await;
    assert!(ns.metadata.authoritative);
    assert_eq!(rdata_of(&ns, RecordType::NS), ["ns.hosted.test."]);
    let mut glue: Vec<String> = ns.additionals.iter().map(|r| r.data.to_string()).collect();
    glue.sort();
    assert_eq!(glue, ["192.0.2.10", "2001:db8::10"]);

    // SOA, NS, and the apex's own A and AAAA (it can be a policy host: see zone.rs).
    let any = both(dns.addr, "hosted.test.", RecordType::ANY).await;
    assert_eq!(any.answers.len(), 4);
    let mut apex: Vec<String> = rdata_of(
        &both(dns.addr, "hosted.test.", RecordType::A).await,
        RecordType::A,
    );
    apex.sort();
    assert_eq!(apex, ["192.0.2.10"]);
    assert_negative(
        &both(dns.addr, "hosted.test.", RecordType::TXT).await,
        ResponseCode::NoError,
    );
}

#[tokio::test]
async fn name_server_and_policy_host_resolve_to_the_public_addresses() {
    let dns = start_default().await;
    for host in ["ns.hosted.test.", "policy.hosted.test."] {
        let a = both(dns.addr, host, RecordType::A).await;
        assert!(a.metadata.authoritative);
        assert_eq!(rdata_of(&a, RecordType::A), ["192.0.2.10"]);
        assert!(a.answers.iter().all(|r| r.ttl == TTL));
        let aaaa = both(dns.addr, host, RecordType::AAAA).await;
        assert_eq!(rdata_of(&aaaa, RecordType::AAAA), ["2001:db8::10"]);
        let any = both(dns.addr, host, RecordType::ANY).await;
        assert_eq!(any.answers.len(), 2);
        assert_negative(
            &both(dns.addr, host, RecordType::TXT).await,
            ResponseCode::NoError,
        );
        // We own no CNAMEs: a CNAME question never matches.
        assert_negative(
            &both(dns.addr, host, RecordType::CNAME).await,
            ResponseCode::NoError,
        );
    }
}

#[tokio::test]
async fn sts_and_tlsrpt_records_come_from_the_snapshot() {
    let dns = start_default().await;
    let sts = both(
        dns.addr,
        "_mta-sts.example.com.t1.hosted.test.",
        RecordType::TXT,
    )
    .await;
    assert!(sts.metadata.authoritative);
    assert_eq!(
        txt_strings(&sts),
        vec![vec![b"v=STSv1; id=20240101T000000".to_vec()]]
    );
    let tlsrpt = both(
        dns.addr,
        "_smtp._tls.example.com.t1.hosted.test.",
        RecordType::TXT,
    )
    .await;
    assert_eq!(txt_strings(&tlsrpt), vec![vec![TLSRPT.as_bytes().to_vec()]]);

    // Hosted, but no id has reached every node yet / no rua: the names exist, empty.
    for name in [
        "_mta-sts.pending.example.t1.hosted.test.",
        "_smtp._tls.pending.example.t1.hosted.test.",
    ] {
        assert_negative(
            &both(dns.addr, name, RecordType::TXT).await,
            ResponseCode::NoError,
        );
    }
}

/// The TXT names exist only under the label of the tenant hosting the domain.
#[tokio::test]
async fn another_tenants_label_is_nxdomain() {
    let dns = start_default().await;
    let owner = both(
        dns.addr,
        "_mta-sts.example.com.t1.hosted.test.",
        RecordType::TXT,
    )
    .await;
    assert_eq!(owner.metadata.response_code, ResponseCode::NoError);
    assert_eq!(
        txt_strings(&owner),
        vec![vec![b"v=STSv1; id=20240101T000000".to_vec()]]
    );
    for qname in [
        "_mta-sts.example.com.t2.hosted.test.",
        "_smtp._tls.example.com.t2.hosted.test.",
        "_mta-sts.example.com.t01.hosted.test.",
        "example.com.t2.hosted.test.",
        "t2.hosted.test.",
        // The untenanted names are gone.
        "_mta-sts.example.com.hosted.test.",
        "_smtp._tls.example.com.hosted.test.",
    ] {
        let answer = both(dns.addr, qname, RecordType::TXT).await;
        assert_negative(&answer, ResponseCode::NXDomain);
        assert_eq!(soa_serial(&answer.authorities), Some(41), "{qname}");
    }
}

#[tokio::test]
async fn negative_answers_carry_the_soa() {
    let dns = start_default().await;
    for (qname, qtype, code) in [
        // Empty non-terminals exist.
        (
            "example.com.t1.hosted.test.",
            RecordType::TXT,
            ResponseCode::NoError,
        ),
        ("com.t1.hosted.test.", RecordType::A, ResponseCode::NoError),
        (
            "_tls.example.com.t1.hosted.test.",
            RecordType::TXT,
            ResponseCode::NoError,
        ),
        // Existing names, other types.
        (
            "_mta-sts.example.com.t1.hosted.test.",
            RecordType::A,
            ResponseCode::NoError,
        ),
        (
            "_mta-sts.example.com.t1.hosted.test.",
            RecordType::CNAME,
            ResponseCode::NoError,
        ),
        // Names that do not exist.
        ("nope.hosted.test.", RecordType::A, ResponseCode::NXDomain),
        (
            "_mta-sts.unknown.example.t1.hosted.test.",
            RecordType::TXT,
            ResponseCode::NXDomain,
        ),
        (
            "www.example.com.t1.hosted.test.",
            RecordType::A,
            ResponseCode::NXDomain,
        ),
        ("*.hosted.test.", RecordType::TXT, ResponseCode::NXDomain),
        (
            "_mta-sts.hosted.test.",
            RecordType::TXT,
            ResponseCode::NXDomain,
        ),
    ] {
        let answer = both(dns.addr, qname, qtype).await;
        assert_negative(&answer, code);
        assert_eq!(soa_serial(&answer.authorities), Some(41), "{qname}");
    }
}

#[tokio::test]
async fn names_outside_the_zone_are_refused() {
    let dns = start_default().await;
    for qname in [
        "example.com.",
        "_mta-sts.example.com.",
        "evilhosted.test.",
        "test.",
        ".",
    ] {
        let answer = both(dns.addr, qname, RecordType::TXT).await;
        assert_eq!(answer.metadata.response_code, ResponseCode::Refused);
        assert!(!answer.metadata.authoritative);
        assert!(!answer.metadata.recursion_available);
        assert!(answer.answers.is_empty() && answer.authorities.is_empty());
    }
}

#[tokio::test]
async fn matching_ignores_case_and_the_answer_echoes_it() {
    let dns = start_default().await;
    let qname = "_MTA-STS.Example.COM.t1.hosted.test.";
    let answer = both(dns.addr, qname, RecordType::TXT).await;
    assert_eq!(answer.queries[0].name().to_string(), qname);
    assert_eq!(answer.answers[0].name.to_string(), qname);
    assert_eq!(
        txt_strings(&answer),
        vec![vec![b"v=STSv1; id=20240101T000000".to_vec()]]
    );
}

#[tokio::test]
async fn long_txt_is_split_and_truncated_over_udp() {
    let dns = start_default().await;
    let value = long_tlsrpt();
    assert!(value.len() > 1232, "the fixture must exceed one UDP answer");
    let qname = "_smtp._tls.long.example.t1.hosted.test.";

    // Too big for UDP even with EDNS: TC and the answer dropped, the client retries on TCP.
    for edns in [true, false] {
        let truncated = udp(dns.addr, &query(qname, RecordType::TXT, edns)).await;
        assert!(truncated.metadata.truncation, "edns {edns}");
        assert!(truncated.answers.is_empty());
        assert_eq!(truncated.edns.is_some(), edns);
    }
    let full = tcp(dns.addr, &query(qname, RecordType::TXT, false)).await;
    assert!(!full.metadata.truncation);
    let strings = &txt_strings(&full)[0];
    assert!(strings.len() >= 6);
    assert!(strings.iter().all(|s| s.len() <= 255));
    assert_eq!(strings.concat(), value.as_bytes());

    // A 600-byte value fits a 1232-byte EDNS answer but not 512 bytes without EDNS.
    let medium = format!("v=TLSRPTv1; rua=mailto:{}@example.com", "r".repeat(560));
    dns.snapshot.store(Arc::new(snapshot_of(
        42,
        vec![hosted("medium.example", None, Some(&medium))],
    )));
    let qname = "_smtp._tls.medium.example.t1.hosted.test.";
    let with_edns = udp(dns.addr, &query(qname, RecordType::TXT, true)).await;
    assert!(!with_edns.metadata.truncation);
    assert_eq!(txt_strings(&with_edns)[0].len(), 3);
    assert_eq!(txt_strings(&with_edns)[0].concat(), medium.as_bytes());
    let edns = with_edns.edns.as_ref().unwrap();
    assert!(edns.max_payload() <= 1232);
    assert_eq!(edns.version(), 0);
    let without = udp(dns.addr, &query(qname, RecordType::TXT, false)).await;
    assert!(without.metadata.truncation);
}

#[tokio::test]
async fn a_new_snapshot_is_visible_on_the_next_query() {
    let dns = start_default().await;
    let serial = |m: &Message| soa_serial(&m.answers);
    let before = both(dns.addr, "hosted.test.", RecordType::SOA).await;
    assert_eq!(serial(&before), Some(41));
    let new_sts = "_mta-sts.new.example.t1.hosted.test.";
    assert_negative(
        &both(dns.addr, new_sts, RecordType::TXT).await,
        ResponseCode::NXDomain,
    );

    // example.com removed, new.example added, the generation bumped.
    dns.snapshot.store(Arc::new(snapshot_of(
        42,
        vec![hosted("new.example", Some("n1"), Some(TLSRPT))],
    )));
    let after = both(dns.addr, "hosted.test.", RecordType::SOA).await;
    assert_eq!(serial(&after), Some(42));
    assert_eq!(
        txt_strings(&both(dns.addr, new_sts, RecordType::TXT).await),
        vec![vec![b"v=STSv1; id=n1".to_vec()]]
    );
    let gone = both(
        dns.addr,
        "_mta-sts.example.com.t1.hosted.test.",
        RecordType::TXT,
    )
    .await;
    assert_negative(&gone, ResponseCode::NXDomain);
    assert_eq!(soa_serial(&gone.authorities), Some(42));

    // The id changes when the loader publishes a new version.
    dns.snapshot.store(Arc::new(snapshot_of(
        43,
        vec![hosted("new.example", Some("n2"), None)],
    )));
    assert_eq!(
        txt_strings(&both(dns.addr, new_sts, RecordType::TXT).await),
        vec![vec![b"v=STSv1; id=n2".to_vec()]]
    );
    assert_negative(
        &both(
            dns.addr,
            "_smtp._tls.new.example.t1.hosted.test.",
            RecordType::TXT,
        )
        .await,
        ResponseCode::NoError,
    );

    // The serial is the generation truncated to 32 bits.
    dns.snapshot
        .store(Arc::new(snapshot_of((1 << 32) + 7, Vec::new())));
    let wrapped = both(dns.addr, "hosted.test.", RecordType::SOA).await;
    assert_eq!(serial(&wrapped), Some(7));
}

#[tokio::test]
async fn odd_messages_get_error_codes_not_crashes() {
    let dns = start_default().await;

    // No question: FORMERR.
    let mut empty = Message::query();
    empty.metadata.id = 7;
    let answer = Message::from_vec(
        &raw_udp(dns.addr, &empty.to_vec().unwrap(), T)
            .await
            .unwrap(),
    )
    .unwrap();
    assert_eq!(answer.metadata.response_code, ResponseCode::FormErr);
    assert!(!answer.metadata.authoritative);

    // Two questions: FORMERR.
    let mut two = query("hosted.test.", RecordType::SOA, false);
    two.add_query(hickory_proto::op::Query::query(
        name("ns.hosted.test."),
        RecordType::A,
    ));
    let answer =
        Message::from_vec(&raw_udp(dns.addr, &two.to_vec().unwrap(), T).await.unwrap()).unwrap();
    assert_eq!(answer.metadata.response_code, ResponseCode::FormErr);

    // Other opcodes: NOTIMP.
    for op in [OpCode::Status, OpCode::Notify, OpCode::Update] {
        let mut message = query("hosted.test.", RecordType::SOA, false);
        message.metadata.op_code = op;
        let answer = udp(dns.addr, &message).await;
        assert_eq!(
            answer.metadata.response_code,
            ResponseCode::NotImp,
            "{op:?}"
        );
        assert!(answer.answers.is_empty());
    }

    // An EDNS version we do not speak: BADVERS (RFC 6891 §6.1.3).
    let mut message = query("hosted.test.", RecordType::SOA, false);
    let mut edns = Edns::new();
    edns.set_version(1);
    message.set_edns(edns);
    let answer = udp(dns.addr, &message).await;
    // RCODE 16 is BADVERS with an OPT record; hickory decodes the number as BADSIG.
    assert_eq!(u16::from(answer.metadata.response_code), 16);
    assert_eq!(answer.edns.as_ref().map(|e| e.version()), Some(0));
    assert!(answer.answers.is_empty());

    // Zone transfers and other classes are refused.
    let axfr = tcp(dns.addr, &query("hosted.test.", RecordType::AXFR, false)).await;
    assert_eq!(axfr.metadata.response_code, ResponseCode::Refused);
    let mut chaos = query("version.bind.", RecordType::TXT, false);
    chaos.queries[0].set_query_class(hickory_proto::rr::DNSClass::CH);
    assert_eq!(
        udp(dns.addr, &chaos).await.metadata.response_code,
        ResponseCode::Refused
    );

    // Garbage, truncated headers and a message claiming to be a response: no answer, or an
    // error; the server keeps serving.
    let valid = query("hosted.test.", RecordType::SOA, false)
        .to_vec()
        .unwrap();
    let mut inputs: Vec<Vec<u8>> = vec![
        vec![],
        vec![0],
        vec![0xff; 11],
        vec![0xff; 12],
        vec![0xff; 512],
        valid[..valid.len() - 3].to_vec(),
    ];
    let mut response_bit = valid.clone();
    response_bit[2] |= 0x80;
    inputs.push(response_bit);
    let mut compression_loop = valid[..12].to_vec();
    compression_loop[5] = 1; // QDCOUNT 1
    compression_loop.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1]);
    inputs.push(compression_loop);
    for (i, input) in inputs.iter().enumerate() {
        if let Some(bytes) = raw_udp(dns.addr, input, Duration::from_millis(300)).await
            && let Ok(answer) = Message::from_vec(&bytes)
        {
            assert_ne!(
                answer.metadata.response_code,
                ResponseCode::NoError,
                "input {i}"
            );
        }
        let _ = raw_tcp(dns.addr, input, Duration::from_millis(300)).await;
    }
    let still = both(dns.addr, "hosted.test.", RecordType::SOA).await;
    assert_eq!(soa_serial(&still.answers), Some(41));
}

#[tokio::test]
async fn several_queries_share_one_tcp_connection_until_it_idles_out() {
    let dns = start_default().await;
    let mut stream = TcpStream::connect(dns.addr).await.unwrap();
    for qname in ["hosted.test.", "ns.hosted.test.", "nope.hosted.test."] {
        let request = query(qname, RecordType::A, false);
        let bytes = tcp_exchange(&mut stream, &request.to_vec().unwrap(), T)
            .await
            .expect("an answer on the open connection");
        assert_eq!(
            Message::from_vec(&bytes).unwrap().metadata.id,
            request.metadata.id
        );
    }
    // Idle: the server hangs up after its timeout, not before half of it.
    let started = tokio::time::Instant::now();
    let mut buf = [0u8; 1];
    let read = tokio::time::timeout(TCP_IDLE_TIMEOUT + T, stream.read(&mut buf))
        .await
        .expect("the idle connection was not closed");
    assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
    assert!(started.elapsed() >= TCP_IDLE_TIMEOUT / 2);
}

#[tokio::test]
async fn a_tcp_query_that_never_completes_is_cut_off() {
    let dns = start_default().await;
    let mut stream = TcpStream::connect(dns.addr).await.unwrap();
    // Announces 100 bytes, sends 10, then waits: the server hangs up after its limit.
    tokio::io::AsyncWriteExt::write_all(&mut stream, &[0, 100, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10])
        .await
        .unwrap();
    let started = tokio::time::Instant::now();
    let mut buf = [0u8; 1];
    let read = tokio::time::timeout(TCP_IDLE_TIMEOUT + T, stream.read(&mut buf))
        .await
        .expect("the incomplete query was not cut off");
    assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
    assert!(started.elapsed() >= TCP_IDLE_TIMEOUT / 2);
    // Other clients are answered meanwhile and after.
    let soa = both(dns.addr, "hosted.test.", RecordType::SOA).await;
    assert_eq!(soa_serial(&soa.answers), Some(41));
}

#[tokio::test]
async fn the_authority_stops_on_shutdown_and_on_drop() {
    let mut dns = start_default().await;
    let authority = dns.authority.take().unwrap();
    assert!(format!("{authority:?}").contains("DnsAuthority"));
    authority.shutdown().await.unwrap();
    let request = query("hosted.test.", RecordType::SOA, false)
        .to_vec()
        .unwrap();
    assert!(
        raw_udp(dns.addr, &request, Duration::from_millis(500))
            .await
            .is_none()
    );
    assert!(TcpStream::connect(dns.addr).await.is_err());

    let (udp_socket, tcp_listener, addr) = bind_pair().await;
    let authority = DnsAuthority::start(
        udp_socket,
        tcp_listener,
        settings(&["192.0.2.1"]),
        mtasts_host::snapshot::handle(fixture_snapshot(1)),
    );
    assert!(raw_udp(addr, &request, T).await.is_some());
    drop(authority);
    // The listener tasks are aborted asynchronously; give them a moment.
    let deadline = tokio::time::Instant::now() + T;
    while TcpStream::connect(addr).await.is_ok() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "still listening after drop"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[test]
fn an_overlong_zone_is_rejected_up_front() {
    let label = "a".repeat(60);
    let mut s = settings(&[]);
    s.delegation =
        mtasts_proto::hosted::delegation::Delegation::new(&[label.as_str(); 4].join(".")).unwrap();
    assert!(check_settings(&s).is_err());
    assert!(check_settings(&settings(&["192.0.2.1"])).is_ok());
}

/// One run of the real `dig` against the authority, when it is installed.
#[tokio::test]
async fn dig_sees_an_authoritative_answer() {
    if !services::command_or_skip(Service::Dig, "dig", &["-v"]) {
        return;
    }
    let dns = start_default().await;
    let addr = dns.addr;
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new("dig")
            .args([
                &format!("@{}", addr.ip()),
                "-p",
                &addr.port().to_string(),
                "+norecurse",
                "+tries=1",
                "+time=3",
                "_mta-sts.example.com.t1.hosted.test.",
                "TXT",
            ])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}");
    assert!(stdout.contains("status: NOERROR"), "{stdout}");
    assert!(stdout.contains(" aa"), "{stdout}");
    assert!(
        stdout.contains("\"v=STSv1; id=20240101T000000\""),
        "{stdout}"
    );
}

/// The real `dig` reads the report host's records: its MX, its own MTA-STS and TLS-RPT
/// records, and a hosted domain's DMARC authorization (NXDOMAIN for a domain not hosted).
#[tokio::test]
async fn dig_sees_the_report_host() {
    if !services::command_or_skip(Service::Dig, "dig", &["-v"]) {
        return;
    }
    let dns = start_default().await;
    let addr = dns.addr;
    let dig = |name: &'static str, qtype: &'static str| async move {
        let output = tokio::task::spawn_blocking(move || {
            std::process::Command::new("dig")
                .args([
                    &format!("@{}", addr.ip()),
                    "-p",
                    &addr.port().to_string(),
                    "+norecurse",
                    "+tries=1",
                    "+time=3",
                    name,
                    qtype,
                ])
                .output()
                .unwrap()
        })
        .await
        .unwrap();
        assert!(output.status.success());
        String::from_utf8_lossy(&output.stdout).into_owned()
    };
    let mx = dig("reports.hosted.test.", "MX").await;
    assert!(mx.contains("status: NOERROR") && mx.contains(" aa"), "{mx}");
    assert!(mx.contains("\tMX\t10 reports.hosted.test."), "{mx}");
    let a = dig("mta-sts.reports.hosted.test.", "A").await;
    assert!(a.contains("192.0.2.10"), "{a}");
    let sts = dig("_mta-sts.reports.hosted.test.", "TXT").await;
    assert!(sts.contains("\"v=STSv1; id="), "{sts}");
    let rpt = dig("_smtp._tls.reports.hosted.test.", "TXT").await;
    assert!(
        rpt.contains(
            "\"v=TLSRPTv1; rua=mailto:tlsrpt@reports.hosted.test,https://reports.hosted.test/tlsrpt\""
        ),
        "{rpt}"
    );
    let dmarc = dig("example.com._report._dmarc.reports.hosted.test.", "TXT").await;
    assert!(dmarc.contains("\"v=DMARC1\""), "{dmarc}");
    let other = dig("example.net._report._dmarc.reports.hosted.test.", "TXT").await;
    assert!(other.contains("status: NXDOMAIN"), "{other}");
}

#[tokio::test]
async fn a_node_cut_off_from_the_database_answers_servfail_not_old_records() {
    use mtasts_host::snapshot::Freshness;
    let freshness = Arc::new(Freshness::new());
    let mut snapshot = fixture_snapshot(41);
    snapshot.freshness = Some(freshness.clone());
    let dns = start(settings(&["192.0.2.10"]), snapshot).await;
    // Never reported in (or the report is too old): nothing is answered.
    let stale = both(
        dns.addr,
        "_mta-sts.example.com.t1.hosted.test.",
        RecordType::TXT,
    )
    .await;
    assert_eq!(stale.metadata.response_code, ResponseCode::ServFail);
    assert!(stale.answers.is_empty());
    // A fresh report lets it answer again.
    freshness.extend_to(std::time::Instant::now() + Duration::from_secs(30));
    let fresh = both(
        dns.addr,
        "_mta-sts.example.com.t1.hosted.test.",
        RecordType::TXT,
    )
    .await;
    assert_eq!(fresh.metadata.response_code, ResponseCode::NoError);
    assert_eq!(fresh.answers.len(), 1);
}
