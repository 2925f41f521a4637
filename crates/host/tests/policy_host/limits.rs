//! The connection cap and the timeouts, with small limits so the tests stay quick.

use std::time::{Duration, Instant};

use mtasts_host::policy_host::ListenerLimits;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use crate::policy_host::common::*;

/// Far above the configured timeouts: only "closed at all" is asserted, not how fast.
const CLOSED_WITHIN: Duration = Duration::from_secs(5);

#[tokio::test]
async fn connections_beyond_the_cap_are_closed() {
    let site = Site::start_with(ListenerLimits {
        max_connections: 2,
        handshake_timeout: Duration::from_secs(60),
        // Nothing is quiet long enough to make room for a newcomer (see the next test).
        evict_after: Duration::from_secs(60),
        ..ListenerLimits::default()
    })
    .await;
    // Two silent connections hold both slots (their handshakes wait).
    let first = TcpStream::connect(site.addr).await.unwrap();
    let _second = TcpStream::connect(site.addr).await.unwrap();
    // The third is accepted after them and closed at once.
    let mut third = TcpStream::connect(site.addr).await.unwrap();
    let closed = read_to_close(&mut third, CLOSED_WITHIN).await;
    assert_eq!(
        closed,
        Some(Vec::new()),
        "the third connection is closed without a word"
    );
    let refused = site
        .tls("mta-sts.a.example", true, &[b"h2"], Trust::TestCa)
        .await;
    assert!(refused.is_err());

    // Freeing a slot lets a client in again.
    drop(first);
    let deadline = Instant::now() + CLOSED_WITHIN;
    loop {
        match site.fetch("a.example").await.outcome {
            Ok(policy) => {
                assert_eq!(policy.body, POLICY_A.as_bytes());
                break;
            }
            Err(e) => {
                assert!(Instant::now() < deadline, "no slot came free: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

#[tokio::test]
async fn at_the_cap_the_longest_idle_connection_makes_room() {
    let site = Site::start_with(ListenerLimits {
        max_connections: 2,
        handshake_timeout: Duration::from_secs(60),
        evict_after: Duration::from_millis(200),
        ..ListenerLimits::default()
    })
    .await;
    // Two silent connections hold both slots, long enough to count as idle.
    let mut first = TcpStream::connect(site.addr).await.unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    let _second = TcpStream::connect(site.addr).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    // A sender is served at once, and the oldest idle connection is the one closed for it.
    let started = Instant::now();
    let policy = site.fetch("a.example").await.outcome.unwrap();
    assert_eq!(policy.body, POLICY_A.as_bytes());
    assert!(started.elapsed() < CLOSED_WITHIN);
    assert_eq!(
        read_to_close(&mut first, CLOSED_WITHIN).await,
        Some(Vec::new())
    );
}

#[tokio::test]
async fn a_client_that_never_starts_the_handshake_is_closed() {
    let site = Site::start_with(short_limits()).await;
    let mut tcp = TcpStream::connect(site.addr).await.unwrap();
    assert!(read_to_close(&mut tcp, CLOSED_WITHIN).await.is_some());
}

#[tokio::test]
async fn a_client_that_sends_no_request_is_closed() {
    let site = Site::start_with(short_limits()).await;
    for alpn in [&b"http/1.1"[..], b"h2"] {
        let mut tls = site
            .tls("mta-sts.a.example", true, &[alpn], Trust::TestCa)
            .await
            .unwrap();
        let closed = read_to_close(&mut tls, CLOSED_WITHIN).await;
        assert!(closed.is_some(), "{}", String::from_utf8_lossy(alpn));
    }
    // No ALPN: the version is detected from the first bytes, which never come.
    let mut tls = site
        .tls("mta-sts.a.example", true, &[], Trust::TestCa)
        .await
        .unwrap();
    assert!(read_to_close(&mut tls, CLOSED_WITHIN).await.is_some());
}

#[tokio::test]
async fn a_request_head_trickled_forever_is_cut_off() {
    let site = Site::start_with(short_limits()).await;
    let mut tls = site
        .tls("mta-sts.a.example", true, &[b"http/1.1"], Trust::TestCa)
        .await
        .unwrap();
    tls.write_all(b"GET /.well-known/mta-sts.txt HTTP/1.1\r\nHost: mta-sts.a.example\r\n")
        .await
        .unwrap();
    let started = Instant::now();
    // Keep the connection busy (so the idle timeout never fires) without finishing the head.
    loop {
        if tls.write_all(b"X-Slow: 1\r\n").await.is_err() {
            break;
        }
        let mut byte = [0u8; 1];
        match tokio::time::timeout(
            Duration::from_millis(50),
            tokio::io::AsyncReadExt::read(&mut tls, &mut byte),
        )
        .await
        {
            Ok(_) => break,
            Err(_) => assert!(started.elapsed() < CLOSED_WITHIN, "still open"),
        }
    }
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed() {
    let site = Site::start_with(short_limits()).await;
    for alpn in [&b"http/1.1"[..], b"h2"] {
        let mut tls = site
            .tls("mta-sts.a.example", true, &[alpn], Trust::TestCa)
            .await
            .unwrap();
        if alpn == b"http/1.1" {
            tls.write_all(
                format!("GET {POLICY_PATH} HTTP/1.1\r\nHost: mta-sts.a.example\r\n\r\n").as_bytes(),
            )
            .await
            .unwrap();
        } else {
            // The client preface and an empty SETTINGS frame: a live, idle HTTP/2 connection.
            tls.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00")
                .await
                .unwrap();
        }
        let answer = read_to_close(&mut tls, CLOSED_WITHIN)
            .await
            .expect("closed once idle");
        if alpn == b"http/1.1" {
            assert_eq!(parse_response(&answer).body, POLICY_A.as_bytes());
        } else {
            // SETTINGS, its ACK, then GOAWAY (type 7) before the close.
            assert!(answer.len() >= 9, "{answer:?}");
            assert!(has_h2_frame(&answer, 0x7), "no GOAWAY in {answer:?}");
        }
    }
}

/// Whether the HTTP/2 frames in `bytes` include one of type `kind`.
fn has_h2_frame(bytes: &[u8], kind: u8) -> bool {
    let mut rest = bytes;
    while rest.len() >= 9 {
        let len = (usize::from(rest[0]) << 16) | (usize::from(rest[1]) << 8) | usize::from(rest[2]);
        if rest[3] == kind {
            return true;
        }
        rest = rest.get(9 + len..).unwrap_or(&[]);
    }
    false
}

#[tokio::test]
async fn connection_slots_come_back_after_timeouts() {
    let site = Site::start_with(ListenerLimits {
        max_connections: 1,
        ..short_limits()
    })
    .await;
    // Silent clients time out one after the other; each frees the slot for the next.
    for _ in 0..3 {
        let mut tcp = TcpStream::connect(site.addr).await.unwrap();
        assert!(read_to_close(&mut tcp, CLOSED_WITHIN).await.is_some());
    }
    let deadline = Instant::now() + CLOSED_WITHIN;
    while site.fetch("a.example").await.outcome.is_err() {
        assert!(Instant::now() < deadline, "the slot never came back");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
