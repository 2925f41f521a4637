//! The delegated DNS authority: answers for the service zone `Z` over UDP and TCP.
//!
//! Domain owners CNAME `_mta-sts.<d>` and `_smtp._tls.<d>` into `Z` (RFC 8461 §8.2); this
//! server is the authority for `Z` and answers from the current [`Snapshot`], loaded once per
//! query, so a domain added or removed in the database is visible on the next query after the
//! node's loader swapped the snapshot. What it answers is decided by [`zone::ZoneView`], a
//! pure function of the question and the snapshot; this module is the hickory-server glue.
//!
//! It is not a resolver: names outside `Z` are REFUSED and RA is never set.
//!
//! [`Snapshot`]: crate::snapshot::Snapshot

pub mod zone;

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hickory_proto::op::{Edns, Header, HeaderCounts, Metadata, OpCode, ResponseCode};
use hickory_proto::rr::Record;
use hickory_server::Server;
use hickory_server::net::runtime::Time;
use hickory_server::server::{Request, RequestHandler, ResponseHandler, ResponseInfo};
use hickory_server::zone_handler::MessageResponseBuilder;
use tokio::net::{TcpListener, UdpSocket};

use crate::snapshot::{SnapshotHandle, ZoneSettings};
use zone::{ZoneError, ZoneView};

/// How long a TCP connection may stay idle between queries before the server closes it.
pub const TCP_IDLE_TIMEOUT: Duration = Duration::from_secs(10);

/// The largest UDP answer sent, whatever the client advertises: the DNS Flag Day 2020 value,
/// which avoids IP fragmentation; larger answers are truncated and the client retries over TCP.
pub const MAX_UDP_PAYLOAD: u16 = 1232;

/// Responses queued per TCP connection. Queries on one connection are answered one after the
/// other, so a short queue suffices.
const TCP_RESPONSE_QUEUE: usize = 16;

/// Checks that `settings` describe a zone the authority can serve (its own names fit the DNS
/// length limits). [`DnsAuthority::start`] panics on settings this rejects, so call it when
/// parsing the configuration.
pub fn check_settings(settings: &ZoneSettings) -> Result<(), ZoneError> {
    ZoneView::new(settings, Arc::default()).map(|_| ())
}

/// Why [`DnsAuthority::shutdown`] reports a failure: a listener had already stopped on its own
/// (its socket failed) before the shutdown.
#[derive(Debug, thiserror::Error)]
#[error("the DNS authority's listener failed: {0}")]
pub struct ShutdownError(String);

/// A running DNS authority for the service zone. Stops when dropped or by
/// [`DnsAuthority::shutdown`].
pub struct DnsAuthority {
    server: Server<ZoneHandler>,
}

impl std::fmt::Debug for DnsAuthority {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DnsAuthority").finish_non_exhaustive()
    }
}

impl DnsAuthority {
    /// Serves the zone of `settings` on the bound `udp` socket and `tcp` listener (normally
    /// the same address, port 53), answering each query from `snapshot.load()`.
    ///
    /// TCP connections are closed after [`TCP_IDLE_TIMEOUT`] without a query; UDP answers
    /// are limited to the client's EDNS buffer size (512 bytes without EDNS), at most
    /// [`MAX_UDP_PAYLOAD`], and truncated (TC) beyond it.
    ///
    /// # Panics
    ///
    /// Outside a Tokio runtime, and when [`check_settings`] rejects `settings`.
    pub fn start(
        udp: UdpSocket,
        tcp: TcpListener,
        settings: ZoneSettings,
        snapshot: SnapshotHandle,
    ) -> DnsAuthority {
        let initial = ZoneView::new(&settings, snapshot.load_full())
            .unwrap_or_else(|e| panic!("cannot serve the DNS zone: {e}"));
        let handler = ZoneHandler {
            settings,
            snapshot,
            view: Mutex::new(Arc::new(initial)),
        };
        let mut server = Server::new(handler);
        server.register_socket(udp);
        server.register_listener(tcp, TCP_IDLE_TIMEOUT, TCP_RESPONSE_QUEUE);
        DnsAuthority { server }
    }

    /// Stops accepting queries and waits until the listeners have stopped; connections in
    /// progress are dropped.
    pub async fn shutdown(mut self) -> Result<(), ShutdownError> {
        self.server
            .shutdown_gracefully()
            .await
            .map_err(|e| ShutdownError(e.to_string()))
    }
}

/// The hickory request handler: decodes the question, asks the [`ZoneView`], encodes.
struct ZoneHandler {
    settings: ZoneSettings,
    snapshot: SnapshotHandle,
    /// The view of the most recent snapshot seen, rebuilt when the snapshot changes.
    view: Mutex<Arc<ZoneView>>,
}

impl ZoneHandler {
    /// The view of the current snapshot. The lock is held only to read or replace the cached
    /// view, never while a view is built, so queries do not wait on each other.
    fn view(&self) -> Result<Arc<ZoneView>, ZoneError> {
        let snapshot = self.snapshot.load_full();
        {
            let cached = self.view.lock().unwrap_or_else(|p| p.into_inner());
            if Arc::ptr_eq(cached.snapshot(), &snapshot) {
                return Ok(Arc::clone(&cached));
            }
        }
        // Two queries racing past a swap may both build; each answers from the snapshot it
        // loaded, and a stale cache entry is replaced by the next query.
        let fresh = Arc::new(ZoneView::new(&self.settings, snapshot)?);
        *self.view.lock().unwrap_or_else(|p| p.into_inner()) = Arc::clone(&fresh);
        Ok(fresh)
    }

    async fn answer<R: ResponseHandler>(&self, request: &Request, mut handle: R) -> ResponseInfo {
        let mut metadata = Metadata::response_from_request(&request.metadata);
        // RFC 6891 §6.1.1: answer EDNS with EDNS. Our OPT advertises the size we use for UDP
        // answers, which hickory's encoder also takes as the truncation limit.
        let response_edns = request.edns.as_ref().map(|edns| {
            let mut ours = Edns::new();
            ours.set_max_payload(edns.max_payload().clamp(512, MAX_UDP_PAYLOAD));
            ours.set_version(0);
            ours
        });
        let reply = Reply {
            request,
            edns: response_edns.as_ref(),
        };
        if request.edns.as_ref().is_some_and(|edns| edns.version() > 0) {
            metadata.response_code = ResponseCode::BADVERS;
            return reply
                .send(&mut handle, metadata, &zone::Answer::empty())
                .await;
        }
        if request.metadata.op_code != OpCode::Query {
            metadata.response_code = ResponseCode::NotImp;
            return reply
                .send(&mut handle, metadata, &zone::Answer::empty())
                .await;
        }
        let [query] = request.queries.queries() else {
            // No question, or several (which no server answers: RFC 9619).
            metadata.response_code = ResponseCode::FormErr;
            return reply
                .send(&mut handle, metadata, &zone::Answer::empty())
                .await;
        };
        let answer = match self.view() {
            // This node lost the database: its records may be behind what other nodes
            // publish, so it answers nothing rather than something old.
            Ok(view) if !view.snapshot().is_fresh() => {
                let mut failed = zone::Answer::empty();
                failed.code = ResponseCode::ServFail;
                failed
            }
            Ok(view) => view.answer(
                query.original().name(),
                query.query_type(),
                query.query_class(),
            ),
            Err(e) => {
                // `start` checked the settings, which never change, so this cannot happen.
                tracing::error!(error = %e, "cannot build the DNS zone");
                let mut failed = zone::Answer::empty();
                failed.code = ResponseCode::ServFail;
                failed
            }
        };
        metadata.response_code = answer.code;
        metadata.authoritative = answer.authoritative;
        reply.send(&mut handle, metadata, &answer).await
    }
}

/// What every response to one request shares: its question section and EDNS.
struct Reply<'r> {
    request: &'r Request,
    edns: Option<&'r Edns>,
}

impl Reply<'_> {
    async fn send<R: ResponseHandler>(
        &self,
        handle: &mut R,
        metadata: Metadata,
        answer: &zone::Answer,
    ) -> ResponseInfo {
        let builder = MessageResponseBuilder::new(&self.request.queries, self.edns);
        let response = builder.build(
            metadata,
            answer.answers.iter(),
            answer.authority.iter(),
            std::iter::empty::<&Record>(),
            answer.additionals.iter(),
        );
        match handle.send_response(response).await {
            Ok(info) => info,
            Err(e) => {
                tracing::debug!(error = %e, "the DNS authority could not send a response");
                let mut failed = metadata;
                failed.response_code = ResponseCode::ServFail;
                ResponseInfo::from(Header {
                    metadata: failed,
                    counts: HeaderCounts::default(),
                })
            }
        }
    }
}

// `RequestHandler` is declared with `#[async_trait]`; this is its expansion written out (as in
// the testkit), so the crate does not need the macro.
impl RequestHandler for ZoneHandler {
    fn handle_request<'life0, 'life1, 'async_trait, R, T>(
        &'life0 self,
        request: &'life1 Request,
        response_handle: R,
    ) -> Pin<Box<dyn Future<Output = ResponseInfo> + Send + 'async_trait>>
    where
        R: 'async_trait + ResponseHandler,
        T: 'async_trait + Time,
        'life0: 'async_trait,
        'life1: 'async_trait,
        Self: 'async_trait,
    {
        Box::pin(self.answer(request, response_handle))
    }
}
