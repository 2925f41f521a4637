//! The one accept loop of the mtasts daemons.
//!
//! Every listener of `mtasts resolver` (the Postfix socketmap over TCP and UNIX sockets, the
//! HTTP lookups) and of `mtasts serve` (the HTTPS policy host, ACME HTTP-01, the API and
//! dashboard, the DNS authority's TCP side) runs on [`Server`]; the SMTP listener and the
//! report-intake endpoint are meant to as well. One policy for all of them:
//!
//! * **A permit before `accept`.** At most [`ConnectionLimits::max_connections`] connections
//!   are served at once; at the cap the loop accepts one more client and makes room for it
//!   (below), and accepts nothing else until it has, so it never spins and never holds more
//!   than one connection it is not serving.
//! * **Room for newcomers.** When full, the connection that has been quiet the longest (no
//!   byte moved for at least [`ConnectionLimits::evict_after`]) is asked to close, and the new
//!   client takes its place: idle connections from one busy or hostile client cannot lock
//!   everyone else out. If no connection is quiet enough, the newcomer waits up to
//!   [`ConnectionLimits::admit_wait`] for a free slot and is closed otherwise.
//! * **Per-client cap.** A client (an IP address; every UNIX-socket peer counts as one client)
//!   holds at most [`ConnectionLimits::max_per_client`] connections; beyond it, its own
//!   longest-idle connection makes room, or the newcomer is closed.
//! * **Idle limit on bytes moved.** A connection on which no byte moved for
//!   [`ConnectionLimits::idle_timeout`] is asked to close, whatever the protocol: this also
//!   ends HTTP/2 connections that never send a request, which hyper keeps open by itself.
//! * **Graceful stops.** Every stop (idle, eviction, shutdown) first asks the connection to
//!   finish: the handler sees [`ConnectionContext::stopped`] and ends after its current
//!   request. One that has not ended [`ConnectionLimits::drain_grace`] later is dropped.
//! * **Accept errors pause, never end the loop.** Out of file descriptors (EMFILE) and the
//!   like pause the loop with a short exponential backoff (capped); they are logged at a
//!   bounded rate, with the count of the ones not logged.
//! * **Shutdown on a [`CancellationToken`]**: stop accepting (the listening socket is closed),
//!   stop every connection gracefully, and complete once they are gone
//!   ([`Server::wait`]).
//!
//! [`files`] raises the open-files limit at daemon start and sizes the caps below it;
//! [`http`] serves hyper connections and axum routers on the loop.
//!
//! [`CancellationToken`]: tokio_util::sync::CancellationToken

mod accept;
pub mod files;
pub mod http;
mod limits;
mod registry;
mod stream;

pub use accept::{ConnectionContext, Server, StopReason};
pub use limits::ConnectionLimits;
pub use stream::{Listener, Peer, Stream};
