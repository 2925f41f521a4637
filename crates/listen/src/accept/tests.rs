//! The loop's policy on loopback: caps, eviction, per-client caps, idle limit, drain.

use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream, UnixListener, UnixStream};
use tokio_util::sync::CancellationToken;

use super::*;

/// Answers each line with the same line, until the client closes or the loop asks it to stop
/// (between lines). A line `slow` takes 300 ms to answer; `stuck` never is.
async fn echo(stream: Stream, context: ConnectionContext) {
    let mut lines = BufReader::new(stream);
    loop {
        let mut line = String::new();
        let read = tokio::select! {
            biased;
            () = context.stopped() => return,
            read = lines.read_line(&mut line) => read,
        };
        match read {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        match line.trim() {
            "slow" => tokio::time::sleep(Duration::from_millis(300)).await,
            "stuck" => std::future::pending::<()>().await,
            _ => {}
        }
        if lines.get_mut().write_all(line.as_bytes()).await.is_err() {
            return;
        }
    }
}

fn limits() -> ConnectionLimits {
    ConnectionLimits {
        max_connections: 3,
        evict_after: Duration::from_millis(100),
        ..ConnectionLimits::default()
    }
}

async fn start(limits: ConnectionLimits) -> (Server, SocketAddr, CancellationToken) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let token = CancellationToken::new();
    let server = Server::spawn(listener, limits, &token, echo);
    let addr = server.local_addr().unwrap();
    (server, addr, token)
}

/// Sends a line and reads the answer (`None`: the connection closed).
async fn ask<S: AsyncReadExt + AsyncWriteExt + Unpin>(
    stream: &mut S,
    line: &str,
) -> Option<String> {
    stream
        .write_all(format!("{line}\n").as_bytes())
        .await
        .ok()?;
    let mut answer = vec![0u8; line.len() + 1];
    let mut got = 0;
    while got < answer.len() {
        match tokio::time::timeout(Duration::from_secs(5), stream.read(&mut answer[got..])).await {
            Ok(Ok(0)) | Ok(Err(_)) => return None,
            Ok(Ok(n)) => got += n,
            Err(_) => panic!("no answer within 5 s"),
        }
    }
    Some(String::from_utf8(answer).unwrap().trim_end().to_owned())
}

/// Whether the server closed the connection within `within`.
async fn closed_within(stream: &mut TcpStream, within: Duration) -> bool {
    let mut byte = [0u8; 1];
    matches!(
        tokio::time::timeout(within, stream.read(&mut byte)).await,
        Ok(Ok(0)) | Ok(Err(_))
    )
}

#[tokio::test]
async fn serves_tcp_and_unix_clients() {
    let (_server, addr, _token) = start(limits()).await;
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    assert_eq!(ask(&mut tcp, "hello").await.as_deref(), Some("hello"));

    let dir = std::env::temp_dir().join(format!("mtasts-listen-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("unix.sock");
    let _ = std::fs::remove_file(&path);
    let token = CancellationToken::new();
    let server = Server::spawn(UnixListener::bind(&path).unwrap(), limits(), &token, echo);
    assert_eq!(server.local_addr(), None);
    let mut unix = UnixStream::connect(&path).await.unwrap();
    assert_eq!(
        ask(&mut unix, "over unix").await.as_deref(),
        Some("over unix")
    );
    token.cancel();
    server.wait().await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn when_full_the_longest_idle_connection_makes_room_for_a_new_client() {
    let (server, addr, _token) = start(limits()).await;
    let mut idle = Vec::new();
    for i in 0..3 {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        assert_eq!(
            ask(&mut stream, &format!("c{i}")).await,
            Some(format!("c{i}"))
        );
        idle.push(stream);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(server.open_connections(), 3);
    tokio::time::sleep(Duration::from_millis(150)).await;
    // A new client is served at once, not after the others' idle limit (60 s).
    let mut newcomer = TcpStream::connect(addr).await.unwrap();
    let started = Instant::now();
    assert_eq!(ask(&mut newcomer, "new").await.as_deref(), Some("new"));
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    // The oldest idle connection was closed for it; the others stay.
    assert!(closed_within(&mut idle[0], Duration::from_secs(2)).await);
    for stream in &mut idle[1..] {
        assert_eq!(ask(stream, "still").await.as_deref(), Some("still"));
    }
    assert_eq!(server.open_connections(), 3);
}

#[tokio::test]
async fn at_the_cap_with_no_idle_connection_a_newcomer_is_closed_or_waits() {
    // Busy connections (fresh ones, below `evict_after`) are not closed for a newcomer.
    let (_server, addr, _token) = start(ConnectionLimits {
        max_connections: 1,
        evict_after: Duration::from_secs(60),
        ..ConnectionLimits::default()
    })
    .await;
    let mut first = TcpStream::connect(addr).await.unwrap();
    assert!(ask(&mut first, "a").await.is_some());
    let mut second = TcpStream::connect(addr).await.unwrap();
    assert!(closed_within(&mut second, Duration::from_secs(2)).await);
    assert!(ask(&mut first, "b").await.is_some());

    // With an admission wait, the newcomer gets the first slot that frees.
    let (_server, addr, _token) = start(ConnectionLimits {
        max_connections: 1,
        evict_after: Duration::from_secs(60),
        admit_wait: Duration::from_secs(10),
        ..ConnectionLimits::default()
    })
    .await;
    let mut first = TcpStream::connect(addr).await.unwrap();
    assert!(ask(&mut first, "a").await.is_some());
    let mut second = TcpStream::connect(addr).await.unwrap();
    second.write_all(b"b\n").await.unwrap();
    let mut byte = [0u8; 1];
    let early = tokio::time::timeout(Duration::from_millis(200), second.read(&mut byte)).await;
    assert!(early.is_err(), "served beyond the cap");
    drop(first);
    let mut answer = [0u8; 2];
    second.read_exact(&mut answer).await.unwrap();
    assert_eq!(&answer, b"b\n");
}

#[tokio::test]
async fn a_client_at_its_cap_makes_room_with_its_own_oldest_connection() {
    let (_server, addr, _token) = start(ConnectionLimits {
        max_connections: 10,
        max_per_client: 2,
        evict_after: Duration::from_millis(50),
        ..ConnectionLimits::default()
    })
    .await;
    let mut first = TcpStream::connect(addr).await.unwrap();
    assert!(ask(&mut first, "1").await.is_some());
    let mut second = TcpStream::connect(addr).await.unwrap();
    assert!(ask(&mut second, "2").await.is_some());
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut third = TcpStream::connect(addr).await.unwrap();
    assert_eq!(ask(&mut third, "3").await.as_deref(), Some("3"));
    assert!(closed_within(&mut first, Duration::from_secs(2)).await);
    assert_eq!(ask(&mut second, "2").await.as_deref(), Some("2"));
    // With nothing quiet enough to close, a fourth is refused: the client stays at its cap.
    let mut fourth = TcpStream::connect(addr).await.unwrap();
    assert!(closed_within(&mut fourth, Duration::from_secs(2)).await);
}

#[tokio::test]
async fn a_connection_without_traffic_is_closed_at_the_idle_limit() {
    let (_server, addr, _token) = start(ConnectionLimits {
        idle_timeout: Duration::from_millis(200),
        ..limits()
    })
    .await;
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let started = Instant::now();
    // Traffic keeps it open past the limit…
    for _ in 0..4 {
        assert!(ask(&mut stream, "ping").await.is_some());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // …and silence closes it.
    assert!(closed_within(&mut stream, Duration::from_secs(2)).await);
    assert!(started.elapsed() >= Duration::from_millis(400));
}

#[tokio::test]
async fn shutdown_finishes_requests_in_progress_then_drops_the_rest() {
    let (server, addr, token) = start(ConnectionLimits {
        drain_grace: Duration::from_millis(500),
        ..limits()
    })
    .await;
    let mut idle = TcpStream::connect(addr).await.unwrap();
    assert!(ask(&mut idle, "x").await.is_some());
    let mut slow = TcpStream::connect(addr).await.unwrap();
    slow.write_all(b"slow\n").await.unwrap();
    let mut stuck = TcpStream::connect(addr).await.unwrap();
    stuck.write_all(b"stuck\n").await.unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;

    let started = Instant::now();
    token.cancel();
    // The idle connection closes at once (well before the 500 ms grace), the slow request is
    // answered, then closed.
    assert!(closed_within(&mut idle, Duration::from_millis(400)).await);
    let mut answer = [0u8; 5];
    slow.read_exact(&mut answer).await.unwrap();
    assert_eq!(&answer, b"slow\n");
    assert!(closed_within(&mut slow, Duration::from_secs(2)).await);
    // The stuck one is dropped at the end of the grace period; then `wait` completes.
    server.wait().await;
    let elapsed = started.elapsed();
    assert!(elapsed >= Duration::from_millis(450), "{elapsed:?}");
    assert!(elapsed < Duration::from_secs(3), "{elapsed:?}");
    assert!(closed_within(&mut stuck, Duration::from_secs(1)).await);
    assert!(TcpStream::connect(addr).await.is_err(), "still accepting");
}

#[tokio::test(start_paused = true)]
async fn accept_errors_are_logged_at_a_bounded_rate() {
    let mut log = ErrorLog::default();
    let error = io::Error::from_raw_os_error(rustix::io::Errno::MFILE.raw_os_error());
    assert!(is_out_of_files(&error));
    for _ in 0..100 {
        log.record(&error, ACCEPT_PAUSE_MAX);
        tokio::time::advance(Duration::from_millis(10)).await;
    }
    assert_eq!(log.suppressed, 99);
    tokio::time::advance(ACCEPT_LOG_INTERVAL).await;
    log.record(&error, ACCEPT_PAUSE_MAX);
    assert_eq!(log.suppressed, 0);
}

#[tokio::test]
async fn every_unix_peer_counts_as_one_client() {
    let dir = std::env::temp_dir().join(format!("mtasts-listen-one-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("unix.sock");
    let _ = std::fs::remove_file(&path);
    let token = CancellationToken::new();
    let limits = ConnectionLimits {
        max_connections: 10,
        max_per_client: 1,
        evict_after: Duration::from_millis(50),
        ..ConnectionLimits::default()
    };
    let _server = Server::spawn(UnixListener::bind(&path).unwrap(), limits, &token, echo);
    let mut first = UnixStream::connect(&path).await.unwrap();
    assert!(ask(&mut first, "1").await.is_some());
    tokio::time::sleep(Duration::from_millis(100)).await;
    // Another process, same client: it takes the first one's place.
    let mut second = UnixStream::connect(&path).await.unwrap();
    assert_eq!(ask(&mut second, "2").await.as_deref(), Some("2"));
    let mut byte = [0u8; 1];
    let closed = tokio::time::timeout(Duration::from_secs(2), first.read(&mut byte)).await;
    assert!(matches!(closed, Ok(Ok(0)) | Ok(Err(_))), "{closed:?}");
    let _ = std::fs::remove_dir_all(&dir);
}
