//! The ACME HTTP-01 listener.

use std::sync::Arc;
use std::time::Duration;

use mtasts_host::policy_host::{Http01, ListenerLimits};
use mtasts_host::snapshot::{Snapshot, handle};
use tokio::net::{TcpListener, TcpStream};

use crate::policy_host::common::*;

async fn start(
    limits: ListenerLimits,
) -> (
    mtasts_testkit::TestNet,
    Http01,
    std::net::SocketAddr,
    mtasts_host::snapshot::SnapshotHandle,
) {
    let net = mtasts_testkit::TestNet::start().await;
    let listener = TcpListener::bind((net.next_ip(), 0)).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let mut snapshot = Snapshot::default();
    snapshot
        .challenges
        .http01
        .insert("Tok-en_1".to_string(), "Tok-en_1.thumbprint".to_string());
    let snapshot = handle(snapshot);
    let server = Http01::start_with_limits(listener, snapshot.clone(), limits);
    assert_eq!(server.local_addr(), Some(addr));
    (net, server, addr, snapshot)
}

async fn ask(addr: std::net::SocketAddr, request: &str) -> HttpResponse {
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    exchange(&mut tcp, request).await
}

#[tokio::test]
async fn http01_answers_known_tokens_and_404s_everything_else() {
    let (_net, _server, addr, snapshot) = start(ListenerLimits::default()).await;
    let host = "mta-sts.a.example";
    let ok = ask(addr, &get("/.well-known/acme-challenge/Tok-en_1", host)).await;
    assert_eq!(ok.status_line, "HTTP/1.1 200 OK");
    assert_eq!(ok.header("content-type"), Some("application/octet-stream"));
    assert_eq!(ok.body, b"Tok-en_1.thumbprint");

    for request in [
        get("/.well-known/acme-challenge/unknown", host),
        get("/.well-known/acme-challenge/", host),
        get("/.well-known/acme-challenge/Tok-en_1/", host),
        get(POLICY_PATH, host),
        get("/", host),
        request("POST", "/.well-known/acme-challenge/Tok-en_1", host),
        request("PUT", "/.well-known/acme-challenge/Tok-en_1", host),
    ] {
        let response = ask(addr, &request).await;
        assert_eq!(response.status, 404, "{request:?}");
        assert_eq!(response.header("location"), None, "{request:?}");
        assert_eq!(response.header("content-type"), Some("text/plain"));
    }

    // A new snapshot's challenges are answered at once; withdrawn ones are gone.
    let mut next = Snapshot::clone(&snapshot.load());
    next.challenges.http01.clear();
    next.challenges
        .http01
        .insert("second".to_string(), "second.thumbprint".to_string());
    snapshot.store(Arc::new(next));
    let ok = ask(addr, &get("/.well-known/acme-challenge/second", host)).await;
    assert_eq!(ok.body, b"second.thumbprint");
    let gone = ask(addr, &get("/.well-known/acme-challenge/Tok-en_1", host)).await;
    assert_eq!(gone.status, 404);
}

#[tokio::test]
async fn http01_closes_silent_clients_and_shuts_down() {
    let (_net, server, addr, _snapshot) = start(short_limits()).await;
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    assert!(
        read_to_close(&mut tcp, Duration::from_secs(5))
            .await
            .is_some()
    );
    // Still serving others.
    let ok = ask(addr, &get("/.well-known/acme-challenge/Tok-en_1", "x")).await;
    assert_eq!(ok.status, 200);
    server.shutdown().await;
    assert!(TcpStream::connect(addr).await.is_err());
}
