//! A TCP proxy on loopback that a test can cut and restore: a network failure between the
//! code under test and a real server (PostgreSQL, Redis, …) without touching the server.
//!
//! [`TcpProxy::start`] listens on `127.0.0.1:0` and relays every connection to one upstream
//! address, byte for byte. [`TcpProxy::cut`] closes every relayed connection at once and
//! from then on closes each new connection as soon as it is accepted (the client sees the
//! connection reset or closed, as when a server goes away); [`TcpProxy::restore`] relays
//! again. The listening port stays the same throughout, so the client's configuration never
//! changes.
//!
//! ```no_run
//! # async fn demo() {
//! use mtasts_testkit::proxy::TcpProxy;
//!
//! let proxy = TcpProxy::start("127.0.0.1:6379".parse().unwrap()).await;
//! let url = format!("redis://{}/", proxy.addr());
//! // … connect the code under test to `url`, then:
//! proxy.cut();
//! // … the server is "gone"; later:
//! proxy.restore();
//! # }
//! ```

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::task::{AbortHandle, JoinHandle};

/// Time limit for connecting to the upstream server; the client's connection is closed
/// when it runs out.
pub const UPSTREAM_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// A cuttable TCP relay to one upstream address (see the module docs). Dropping it stops
/// the relay and closes every connection.
pub struct TcpProxy {
    addr: SocketAddr,
    upstream: SocketAddr,
    shared: Arc<Shared>,
    accept: JoinHandle<()>,
}

#[derive(Default)]
struct Shared {
    /// The relay tasks of open connections, and whether the proxy is cut. One lock for both,
    /// so no connection accepted before a cut survives it.
    state: Mutex<State>,
    /// Connections relayed so far.
    relayed: AtomicUsize,
    /// Connections closed at once because the proxy was cut.
    refused: AtomicUsize,
}

#[derive(Default)]
struct State {
    cut: bool,
    relays: Vec<AbortHandle>,
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl TcpProxy {
    /// Starts a proxy on `127.0.0.1` (a port chosen by the system) relaying to `upstream`.
    /// Panics if it cannot listen (a broken test machine).
    pub async fn start(upstream: SocketAddr) -> TcpProxy {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .await
            .expect("test proxy: cannot listen on 127.0.0.1");
        let addr = listener.local_addr().expect("test proxy: no local address");
        let shared = Arc::new(Shared::default());
        let accept = tokio::spawn(accept_loop(listener, upstream, shared.clone()));
        TcpProxy {
            addr,
            upstream,
            shared,
            accept,
        }
    }

    /// The address clients connect to.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The address connections are relayed to.
    pub fn upstream(&self) -> SocketAddr {
        self.upstream
    }

    /// Closes every open connection and closes new ones as soon as they are accepted, until
    /// [`TcpProxy::restore`].
    pub fn cut(&self) {
        let relays = {
            let mut state = self.shared.lock();
            state.cut = true;
            std::mem::take(&mut state.relays)
        };
        for relay in relays {
            // Dropping the relay task drops (closes) both of its sockets.
            relay.abort();
        }
    }

    /// Relays new connections again.
    pub fn restore(&self) {
        self.shared.lock().cut = false;
    }

    /// Whether the proxy is cut.
    pub fn is_cut(&self) -> bool {
        self.shared.lock().cut
    }

    /// Connections being relayed now.
    pub fn open_connections(&self) -> usize {
        let mut state = self.shared.lock();
        state.relays.retain(|relay| !relay.is_finished());
        state.relays.len()
    }

    /// Connections relayed since the start.
    pub fn relayed(&self) -> usize {
        self.shared.relayed.load(Ordering::SeqCst)
    }

    /// Connections closed at once because the proxy was cut.
    pub fn refused(&self) -> usize {
        self.shared.refused.load(Ordering::SeqCst)
    }
}

impl Drop for TcpProxy {
    fn drop(&mut self) {
        self.accept.abort();
        for relay in std::mem::take(&mut self.shared.lock().relays) {
            relay.abort();
        }
    }
}

async fn accept_loop(listener: TcpListener, upstream: SocketAddr, shared: Arc<Shared>) {
    loop {
        let client = match listener.accept().await {
            Ok((client, _)) => client,
            Err(e) => {
                // Out of file descriptors and the like: wait a little instead of spinning.
                tracing::warn!(error = %e, "test proxy: accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let mut state = shared.lock();
        if state.cut {
            shared.refused.fetch_add(1, Ordering::SeqCst);
            // Close without a graceful shutdown: the client sees a reset, as from a host
            // that is gone (a plain close would also do; a reset is quicker to notice).
            let _ = client.set_zero_linger();
            drop(client);
            continue;
        }
        shared.relayed.fetch_add(1, Ordering::SeqCst);
        state.relays.retain(|relay| !relay.is_finished());
        let relay = tokio::spawn(relay(client, upstream));
        state.relays.push(relay.abort_handle());
    }
}

/// Copies bytes both ways until either side closes.
async fn relay(mut client: TcpStream, upstream: SocketAddr) {
    let mut server =
        match tokio::time::timeout(UPSTREAM_CONNECT_TIMEOUT, TcpStream::connect(upstream)).await {
            Ok(Ok(server)) => server,
            Ok(Err(e)) => {
                tracing::debug!(%upstream, error = %e, "test proxy: upstream refused");
                return;
            }
            Err(_) => {
                tracing::debug!(%upstream, "test proxy: upstream connect timed out");
                return;
            }
        };
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    const T: Duration = Duration::from_secs(5);

    /// An echo server on loopback.
    async fn echo_server() -> (SocketAddr, JoinHandle<()>) {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let (mut read, mut write) = stream.split();
                    let _ = tokio::io::copy(&mut read, &mut write).await;
                });
            }
        });
        (addr, task)
    }

    async fn round_trip(stream: &mut TcpStream, text: &[u8]) -> std::io::Result<Vec<u8>> {
        stream.write_all(text).await?;
        let mut buf = vec![0u8; text.len()];
        tokio::time::timeout(T, stream.read_exact(&mut buf))
            .await
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "no echo"))??;
        Ok(buf)
    }

    /// Whether the connection is closed: a read ends (EOF or an error) within the limit.
    async fn closed(stream: &mut TcpStream) -> bool {
        let mut buf = [0u8; 16];
        matches!(
            tokio::time::timeout(T, stream.read(&mut buf)).await,
            Ok(Ok(0)) | Ok(Err(_))
        )
    }

    #[tokio::test]
    async fn relays_cuts_and_restores() {
        let (upstream, _server) = echo_server().await;
        let proxy = TcpProxy::start(upstream).await;
        assert_eq!(proxy.upstream(), upstream);
        assert!(proxy.addr().ip().is_loopback());

        let mut first = TcpStream::connect(proxy.addr()).await.unwrap();
        assert_eq!(round_trip(&mut first, b"hello").await.unwrap(), b"hello");
        assert_eq!(proxy.relayed(), 1);
        assert_eq!(proxy.open_connections(), 1);

        proxy.cut();
        assert!(proxy.is_cut());
        // The open connection is closed…
        assert!(closed(&mut first).await);
        assert_eq!(proxy.open_connections(), 0);
        // …and new ones are closed as soon as they are accepted.
        let mut refused = TcpStream::connect(proxy.addr()).await.unwrap();
        assert!(closed(&mut refused).await);
        assert_eq!(proxy.refused(), 1);
        assert_eq!(proxy.relayed(), 1);

        proxy.restore();
        assert!(!proxy.is_cut());
        let mut again = TcpStream::connect(proxy.addr()).await.unwrap();
        assert_eq!(round_trip(&mut again, b"back").await.unwrap(), b"back");
        assert_eq!(proxy.relayed(), 2);
    }

    #[tokio::test]
    async fn an_unreachable_upstream_closes_the_client() {
        // A port nobody listens on: bind one and let it go.
        let unused = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .await
            .unwrap()
            .local_addr()
            .unwrap();
        let proxy = TcpProxy::start(unused).await;
        let mut client = TcpStream::connect(proxy.addr()).await.unwrap();
        assert!(closed(&mut client).await);
    }

    #[tokio::test]
    async fn dropping_the_proxy_closes_its_connections() {
        let (upstream, _server) = echo_server().await;
        let proxy = TcpProxy::start(upstream).await;
        let mut client = TcpStream::connect(proxy.addr()).await.unwrap();
        assert_eq!(round_trip(&mut client, b"x").await.unwrap(), b"x");
        drop(proxy);
        assert!(closed(&mut client).await);
    }
}
