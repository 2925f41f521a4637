//! Listeners, accepted streams and their traffic counter: what the loop hands a handler.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream, UnixListener, UnixStream};
use tokio::time::Instant;

/// A bound listening socket.
#[derive(Debug)]
pub enum Listener {
    /// A TCP listener.
    Tcp(TcpListener),
    /// A UNIX-domain stream listener.
    Unix(UnixListener),
}

impl From<TcpListener> for Listener {
    fn from(listener: TcpListener) -> Self {
        Listener::Tcp(listener)
    }
}

impl From<UnixListener> for Listener {
    fn from(listener: UnixListener) -> Self {
        Listener::Unix(listener)
    }
}

impl Listener {
    /// The TCP address it listens on (`None` for a UNIX socket).
    pub fn local_addr(&self) -> Option<SocketAddr> {
        match self {
            Listener::Tcp(l) => l.local_addr().ok(),
            Listener::Unix(_) => None,
        }
    }

    pub(crate) async fn accept(&self) -> io::Result<(Socket, Peer)> {
        match self {
            Listener::Tcp(l) => {
                let (stream, addr) = l.accept().await?;
                // Replies are small writes; Nagle would only delay them.
                let _ = stream.set_nodelay(true);
                Ok((Socket::Tcp(stream), Peer::Tcp(addr)))
            }
            Listener::Unix(l) => {
                let (stream, _) = l.accept().await?;
                Ok((Socket::Unix(stream), Peer::Unix))
            }
        }
    }
}

/// Who is on the other end of a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Peer {
    /// A TCP client.
    Tcp(SocketAddr),
    /// A process on this host, over a UNIX socket.
    Unix,
}

impl Peer {
    /// The TCP client's address.
    pub fn addr(&self) -> Option<SocketAddr> {
        match self {
            Peer::Tcp(addr) => Some(*addr),
            Peer::Unix => None,
        }
    }

    /// The key of the per-client cap: the IP address (IPv4-mapped IPv6 counts as IPv4), or
    /// one key for every UNIX peer.
    pub(crate) fn client(&self) -> Option<IpAddr> {
        match self {
            Peer::Tcp(addr) => Some(addr.ip().to_canonical()),
            Peer::Unix => None,
        }
    }
}

#[derive(Debug)]
pub(crate) enum Socket {
    Tcp(TcpStream),
    Unix(UnixStream),
}

/// A clock read on every I/O call, so it must be cheap: the time in milliseconds since the
/// listener started, refreshed by the loop every [`Clock::RESOLUTION`] rather than read from
/// the system per call.
#[derive(Debug)]
pub(crate) struct Clock {
    epoch: Instant,
    now_ms: AtomicU64,
}

impl Clock {
    /// How stale the cheap reading may be.
    pub(crate) const RESOLUTION: Duration = Duration::from_millis(100);

    pub(crate) fn new() -> Self {
        Clock {
            epoch: Instant::now(),
            now_ms: AtomicU64::new(0),
        }
    }

    /// The exact time, which also refreshes the cheap reading.
    pub(crate) fn now_ms(&self) -> u64 {
        let now = u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.now_ms.fetch_max(now, Ordering::Relaxed);
        now
    }

    fn cheap_ms(&self) -> u64 {
        self.now_ms.load(Ordering::Relaxed)
    }
}

/// When a byte last moved on one connection (by the listener's [`Clock`]): the idle limit and
/// the choice of which connection to close are based on it.
#[derive(Debug)]
pub(crate) struct Activity {
    last_ms: AtomicU64,
    clock: Arc<Clock>,
}

impl Activity {
    pub(crate) fn new(clock: Arc<Clock>) -> Self {
        Activity {
            last_ms: AtomicU64::new(clock.now_ms()),
            clock,
        }
    }

    pub(crate) fn touch(&self) {
        self.last_ms.store(self.clock.cheap_ms(), Ordering::Relaxed);
    }

    /// How long no byte has moved, as of `now_ms`.
    pub(crate) fn quiet_ms(&self, now_ms: u64) -> u64 {
        now_ms.saturating_sub(self.last_ms.load(Ordering::Relaxed))
    }
}

/// An accepted connection (TCP or UNIX) whose traffic is counted for the idle limit. Wrap
/// anything layered on it (TLS) around this, so that the bytes counted are the wire's.
#[derive(Debug)]
pub struct Stream {
    socket: Socket,
    activity: Arc<Activity>,
}

impl Stream {
    pub(crate) fn new(socket: Socket, activity: Arc<Activity>) -> Self {
        Stream { socket, activity }
    }

    /// The TCP stream, when it is one.
    pub fn tcp(&self) -> Option<&TcpStream> {
        match &self.socket {
            Socket::Tcp(s) => Some(s),
            Socket::Unix(_) => None,
        }
    }
}

macro_rules! both {
    ($self:expr, $s:ident => $e:expr) => {
        match &mut $self.socket {
            Socket::Tcp($s) => $e,
            Socket::Unix($s) => $e,
        }
    };
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let result = both!(this, s => Pin::new(s).poll_read(cx, buf));
        if buf.filled().len() != before {
            this.activity.touch();
        }
        result
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let result = both!(this, s => Pin::new(s).poll_write(cx, buf));
        if matches!(result, Poll::Ready(Ok(n)) if n > 0) {
            this.activity.touch();
        }
        result
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let result = both!(this, s => Pin::new(s).poll_write_vectored(cx, bufs));
        if matches!(result, Poll::Ready(Ok(n)) if n > 0) {
            this.activity.touch();
        }
        result
    }

    fn is_write_vectored(&self) -> bool {
        match &self.socket {
            Socket::Tcp(s) => s.is_write_vectored(),
            Socket::Unix(s) => s.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        both!(this, s => Pin::new(s).poll_flush(cx))
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        both!(this, s => Pin::new(s).poll_shutdown(cx))
    }
}
