//! [`ConnectionLimits`]: the caps and time limits a listener applies to its connections.

use std::time::Duration;

/// The caps and time limits of one listener. `ConnectionLimits::default()` suits a public
/// service; daemons size [`max_connections`](Self::max_connections) below their open-files
/// limit with [`crate::files::OpenFiles`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// Most connections served at once. Default 1024.
    pub max_connections: usize,
    /// Most connections of one client (IP address; all UNIX-socket peers are one client).
    /// Default 256.
    pub max_per_client: usize,
    /// A connection on which no byte moved for this long is asked to close (noticed within
    /// 1.25 × this; traffic is stamped with a clock of 0.1 s resolution). Default 60 s. Must
    /// not be zero.
    pub idle_timeout: Duration,
    /// A connection quiet for at least this long may be closed to make room for a new client
    /// when the listener (or that client) is at its cap. Default 1 s.
    pub evict_after: Duration,
    /// At the cap with no connection quiet enough to close, how long a new client waits for a
    /// free slot before it is closed. Default 0 (closed at once: the client retries or tries
    /// another address).
    pub admit_wait: Duration,
    /// After a connection is asked to close (idle, evicted, shutdown), how long it may take to
    /// finish its current request before it is dropped. Default 5 s.
    pub drain_grace: Duration,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        ConnectionLimits {
            max_connections: 1024,
            max_per_client: 256,
            idle_timeout: Duration::from_secs(60),
            evict_after: Duration::from_secs(1),
            admit_wait: Duration::ZERO,
            drain_grace: Duration::from_secs(5),
        }
    }
}
