//! A backend that cannot be reached gives `Unavailable` quickly, so the daemon can fall back
//! to memory; a bad URL is a configuration error.

use std::time::{Duration, Instant};

use mtasts_store::StoreError;
use tokio::net::TcpListener;

/// Generous upper bound: CONNECT_TIMEOUT (3 s) plus scheduling slack.
const QUICKLY: Duration = Duration::from_secs(8);

async fn expect_unavailable(url: &str) {
    let started = Instant::now();
    let result = mtasts_store::open(url).await;
    let elapsed = started.elapsed();
    match result {
        Err(StoreError::Unavailable(message)) => {
            assert!(
                elapsed < QUICKLY,
                "{url}: Unavailable only after {elapsed:?}: {message}"
            );
            eprintln!("{url}: Unavailable after {elapsed:?}: {message}");
        }
        Err(other) => panic!("{url}: expected Unavailable, got {other}"),
        Ok(store) => panic!("{url}: expected Unavailable, opened {}", store.backend()),
    }
}

/// A TCP server that accepts connections and never says anything.
async fn silent_server() -> (String, tokio::task::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let task = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            held.push(stream);
        }
    });
    (addr, task)
}

/// A port nothing listens on (bound, then released).
async fn closed_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    listener.local_addr().unwrap().port()
}

#[tokio::test]
async fn redis_refused_is_unavailable() {
    expect_unavailable("redis://127.0.0.1:1").await;
}

#[tokio::test]
async fn postgres_refused_is_unavailable() {
    let port = closed_port().await;
    expect_unavailable(&format!("postgres://postgres@127.0.0.1:{port}/test")).await;
}

#[tokio::test]
async fn redis_silent_is_unavailable() {
    let (addr, task) = silent_server().await;
    expect_unavailable(&format!("redis://{addr}")).await;
    task.abort();
}

#[tokio::test]
async fn postgres_silent_is_unavailable() {
    let (addr, task) = silent_server().await;
    expect_unavailable(&format!("postgres://postgres@{addr}/test")).await;
    task.abort();
}

#[tokio::test]
async fn sqlite_in_missing_directory_is_unavailable() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!(
        "sqlite:{}",
        dir.path().join("no/such/dir/cache.db").display()
    );
    expect_unavailable(&url).await;
}

#[tokio::test]
async fn unknown_urls_are_config_errors() {
    for url in ["", "ftp://example.com", "mysql://localhost/db", "memoryx"] {
        match mtasts_store::open(url).await {
            Err(StoreError::Config(_)) => {}
            Err(other) => panic!("{url:?}: expected Config, got {other}"),
            Ok(store) => panic!("{url:?}: expected Config, opened {}", store.backend()),
        }
    }
    assert!(matches!(
        mtasts_store::open("redis://:::bad").await,
        Err(StoreError::Config(_))
    ));
}
