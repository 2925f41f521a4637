//! The plain-HTTP listener the API and dashboard run on: client addresses reach the handlers,
//! and slow or silent clients are cut off like on the policy host.

use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use axum::routing::get;
use mtasts_host::policy_host::AppListener;
use mtasts_testkit::TestNet;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};

use super::common::{read_to_close, short_limits};

async fn start() -> AppListener {
    let net = TestNet::start().await;
    let listener = TcpListener::bind(SocketAddr::new(net.next_ip(), 0))
        .await
        .unwrap();
    let router = Router::new().route(
        "/peer",
        get(|ConnectInfo(peer): ConnectInfo<SocketAddr>| async move { peer.ip().to_string() }),
    );
    AppListener::start(listener, router, short_limits())
}

#[tokio::test]
async fn handlers_see_the_client_address() {
    let app = start().await;
    let addr = app.local_addr().unwrap();
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    let local = tcp.local_addr().unwrap();
    tcp.write_all(b"GET /peer HTTP/1.1\r\nHost: api\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let answer = read_to_close(&mut tcp, Duration::from_secs(5))
        .await
        .unwrap();
    let text = String::from_utf8_lossy(&answer);
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(text.ends_with(&local.ip().to_string()), "{text}");
    app.shutdown().await;
}

#[tokio::test]
async fn a_silent_or_trickling_client_is_cut_off() {
    let app = start().await;
    let addr = app.local_addr().unwrap();
    let mut silent = TcpStream::connect(addr).await.unwrap();
    assert!(
        read_to_close(&mut silent, Duration::from_secs(5))
            .await
            .is_some()
    );
    let mut trickle = TcpStream::connect(addr).await.unwrap();
    trickle.write_all(b"GET /peer HTTP/1.1\r\n").await.unwrap();
    let cut = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            if trickle.write_all(b"X-A: b\r\n").await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    assert!(cut.is_ok(), "a request head that never ends is cut off");
}
