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
//! UDP runs on hickory-server's socket loop. TCP runs on the shared accept loop of
//! `mtasts-listen` (connection cap, per-client cap, idle limit, room made by closing the
//! longest-idle connection, graceful drain), because hickory's `register_listener` has its
//! own accept loop with none of those: `serve_tcp` reads the 2-byte length-prefixed
//! messages (RFC 1035 §4.2.2; each must arrive within [`TCP_IDLE_TIMEOUT`]) and answers them
//! through the same [`RequestHandler`] as UDP, decoding them as hickory's loop does
//! ([`Request::from_bytes`]; fewer than 12 bytes: no answer; undecodable after the header:
//! FORMERR; a response: ignored).
//!
//! [`Snapshot`]: crate::snapshot::Snapshot

pub mod zone;

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::{FutureExt, StreamExt};
use hickory_proto::op::{Edns, Header, HeaderCounts, MessageType, Metadata, OpCode, ResponseCode};
use hickory_proto::rr::Record;
use hickory_proto::serialize::binary::{BinDecodable, BinDecoder, BinEncoder};
use hickory_server::Server;
use hickory_server::net::BufDnsStreamHandle;
use hickory_server::net::runtime::{Time, TokioTime};
use hickory_server::net::xfer::Protocol;
use hickory_server::server::{
    Request, RequestHandler, ResponseHandle, ResponseHandler, ResponseInfo,
};
use hickory_server::zone_handler::{MessageResponseBuilder, Queries};
use mtasts_listen::{ConnectionContext, ConnectionLimits, Stream};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, UdpSocket};
use tokio_util::sync::CancellationToken;

use crate::metrics::ServeMetrics;
use crate::snapshot::{SnapshotHandle, ZoneSettings};
use zone::{ZoneError, ZoneView};

/// How long a TCP connection may stay idle between queries before the server closes it.
pub const TCP_IDLE_TIMEOUT: Duration = Duration::from_secs(10);

/// The largest UDP answer sent, whatever the client advertises: the DNS Flag Day 2020 value,
/// which avoids IP fragmentation; larger answers are truncated and the client retries over TCP.
pub const MAX_UDP_PAYLOAD: u16 = 1232;

/// Responses queued per TCP query: one answer, or a few for a transfer.
const TCP_RESPONSE_QUEUE: usize = 16;

/// The connection limits of the TCP side by default: the shared loop's defaults with the DNS
/// idle limit.
pub fn tcp_limits() -> ConnectionLimits {
    ConnectionLimits {
        idle_timeout: TCP_IDLE_TIMEOUT,
        drain_grace: Duration::from_secs(2),
        ..ConnectionLimits::default()
    }
}

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
    udp: Server<Authority>,
    tcp: mtasts_listen::Server,
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
    /// [`MAX_UDP_PAYLOAD`]; beyond it the glue is left out, and when the rest still does not
    /// fit the answer is the question alone with TC set (never part of a record).
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
        Self::start_with_limits(udp, tcp, settings, snapshot, tcp_limits())
    }

    /// Like [`DnsAuthority::start`], with chosen connection limits for the TCP side.
    ///
    /// # Panics
    ///
    /// As [`DnsAuthority::start`].
    pub fn start_with_limits(
        udp: UdpSocket,
        tcp: TcpListener,
        settings: ZoneSettings,
        snapshot: SnapshotHandle,
        limits: ConnectionLimits,
    ) -> DnsAuthority {
        Self::start_with_metrics(
            udp,
            tcp,
            settings,
            snapshot,
            limits,
            ServeMetrics::default(),
        )
    }

    /// Like [`DnsAuthority::start_with_limits`], counting every answer into `metrics`
    /// (`dns_query`, by response code: [`outcome`]).
    ///
    /// # Panics
    ///
    /// As [`DnsAuthority::start`].
    pub fn start_with_metrics(
        udp: UdpSocket,
        tcp: TcpListener,
        settings: ZoneSettings,
        snapshot: SnapshotHandle,
        limits: ConnectionLimits,
        metrics: ServeMetrics,
    ) -> DnsAuthority {
        let initial = ZoneView::new(&settings, snapshot.load_full())
            .unwrap_or_else(|e| panic!("cannot serve the DNS zone: {e}"));
        let handler = Authority(Arc::new(ZoneHandler {
            settings,
            snapshot,
            view: Mutex::new(Arc::new(initial)),
            metrics,
        }));
        let tcp_handler = handler.clone();
        let tcp = mtasts_listen::Server::spawn(
            tcp,
            limits,
            &CancellationToken::new(),
            move |stream, context| serve_tcp(stream, context, tcp_handler.clone()),
        );
        let mut udp_server = Server::new(handler);
        udp_server.register_socket(udp);
        DnsAuthority {
            udp: udp_server,
            tcp,
        }
    }

    /// Stops accepting queries and waits until the listeners have stopped; TCP connections
    /// finish the query in progress.
    pub async fn shutdown(mut self) -> Result<(), ShutdownError> {
        self.tcp.shutdown().await;
        self.udp
            .shutdown_gracefully()
            .await
            .map_err(|e| ShutdownError(e.to_string()))
    }
}

/// One DNS-over-TCP connection: length-prefixed queries, answered one after the other, until
/// the client closes, a query does not arrive in time, or the loop stops the connection.
async fn serve_tcp(stream: Stream, context: ConnectionContext, handler: Authority) {
    let Some(peer) = context.peer().addr() else {
        return;
    };
    let (mut reader, mut writer) = tokio::io::split(stream);
    loop {
        let mut prefix = [0u8; 2];
        tokio::select! {
            biased;
            () = context.stopped() => return,
            read = reader.read_exact(&mut prefix) => if read.is_err() { return },
        }
        let mut message = vec![0u8; usize::from(u16::from_be_bytes(prefix))];
        match tokio::time::timeout(TCP_IDLE_TIMEOUT, reader.read_exact(&mut message)).await {
            Ok(Ok(_)) => {}
            _ => return,
        }
        let (sender, mut answers) = BufDnsStreamHandle::with_buffer_size(peer, TCP_RESPONSE_QUEUE);
        let response = ResponseHandle::new(peer, sender, Protocol::Tcp);
        handle_message(&handler, message, peer, response).await;
        while let Some(Some(answer)) = answers.next().now_or_never() {
            let bytes = answer.bytes();
            let Ok(len) = u16::try_from(bytes.len()) else {
                continue;
            };
            let write = async {
                writer.write_all(&len.to_be_bytes()).await?;
                writer.write_all(bytes).await?;
                writer.flush().await
            };
            match tokio::time::timeout(TCP_IDLE_TIMEOUT, write).await {
                Ok(Ok(())) => {}
                _ => return,
            }
        }
        if context.is_stopped() {
            return;
        }
    }
}

/// Decodes one query as hickory's own loops do and hands it to the handler.
async fn handle_message(
    handler: &Authority,
    message: Vec<u8>,
    peer: std::net::SocketAddr,
    mut response: ResponseHandle,
) {
    let Ok(header) = Header::read(&mut BinDecoder::new(&message)) else {
        // Shorter than a header: not a query, and there is nothing to answer to.
        return;
    };
    let request = match Request::from_bytes(message, peer, Protocol::Tcp) {
        Ok(request) => request,
        Err(error) => {
            tracing::debug!(%error, "undecodable DNS query over TCP");
            // Zero questions: reading them consumes nothing and cannot fail.
            let Ok(queries) = Queries::read(&mut BinDecoder::new(&[]), 0) else {
                return;
            };
            let builder = MessageResponseBuilder::new(&queries, None);
            handler.0.metrics.dns_query(outcome(ResponseCode::FormErr));
            let _ = response
                .send_response(builder.error_msg(&header, ResponseCode::FormErr))
                .await;
            return;
        }
    };
    // Never answer a response (reflection).
    if request.metadata.message_type == MessageType::Response {
        return;
    }
    handler
        .handle_request::<_, TokioTime>(&request, response)
        .await;
}

/// The hickory request handler: decodes the question, asks the [`ZoneView`], encodes.
struct ZoneHandler {
    settings: ZoneSettings,
    snapshot: SnapshotHandle,
    /// The view of the most recent snapshot seen, rebuilt when the snapshot changes.
    view: Mutex<Arc<ZoneView>>,
    metrics: ServeMetrics,
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

/// How much of an [`zone::Answer`] goes into the message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fit {
    /// Every section.
    All,
    /// Everything but the additional section (glue), which a client can ask for itself:
    /// leaving it out is no reason for TC (RFC 2181 §9).
    WithoutAdditionals,
    /// No records, TC set: the client asks again over TCP (RFC 1035 §4.2.1, RFC 2181 §9).
    Truncated,
}

impl Reply<'_> {
    /// The largest message the client takes: over UDP its EDNS size (ours, already clamped to
    /// [`MAX_UDP_PAYLOAD`]), 512 bytes without EDNS; over TCP the 2-byte length prefix.
    fn size_limit(&self) -> u16 {
        match (self.request.protocol(), self.edns) {
            (Protocol::Udp, Some(edns)) => edns.max_payload().max(512),
            (Protocol::Udp, None) => 512,
            _ => u16::MAX,
        }
    }

    /// How much of `answer` fits [`Reply::size_limit`], found by encoding it as it will be
    /// sent. hickory's own encoder stops at the limit, but leaves the bytes of the record that
    /// did not fit after the message (the counts then disagree with the bytes), so an answer
    /// is only ever handed to it when it fits whole.
    fn fit(&self, metadata: Metadata, answer: &zone::Answer) -> Fit {
        let limit = self.size_limit();
        let fits = |additionals: &[Record]| {
            let mut bytes = Vec::with_capacity(usize::from(limit.min(4096)));
            let mut encoder = BinEncoder::new(&mut bytes);
            encoder.set_max_size(limit);
            MessageResponseBuilder::new(&self.request.queries, self.edns)
                .build(
                    metadata,
                    answer.answers.iter(),
                    answer.authority.iter(),
                    std::iter::empty::<&Record>(),
                    additionals.iter(),
                )
                .destructive_emit(&mut encoder)
                .is_ok_and(|info| !info.truncation)
        };
        if fits(&answer.additionals) {
            Fit::All
        } else if !answer.additionals.is_empty() && fits(&[]) {
            Fit::WithoutAdditionals
        } else {
            Fit::Truncated
        }
    }

    async fn send<R: ResponseHandler>(
        &self,
        handle: &mut R,
        mut metadata: Metadata,
        answer: &zone::Answer,
    ) -> ResponseInfo {
        let fit = self.fit(metadata, answer);
        let none: &[Record] = &[];
        let (answers, authority) = match fit {
            Fit::Truncated => (none, none),
            _ => (&answer.answers[..], &answer.authority[..]),
        };
        let additionals = match fit {
            Fit::All => &answer.additionals[..],
            _ => none,
        };
        metadata.truncation = fit == Fit::Truncated;
        let builder = MessageResponseBuilder::new(&self.request.queries, self.edns);
        let response = builder.build(
            metadata,
            answers.iter(),
            authority.iter(),
            std::iter::empty::<&Record>(),
            additionals.iter(),
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

/// The handler shared by the UDP and TCP sides.
#[derive(Clone)]
struct Authority(Arc<ZoneHandler>);

// `RequestHandler` is declared with `#[async_trait]`; this is its expansion written out (as in
// the testkit), so the crate does not need the macro.
impl RequestHandler for Authority {
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
        Box::pin(async move {
            let info = self.0.answer(request, response_handle).await;
            self.0.metrics.dns_query(outcome(info.response_code));
            info
        })
    }
}

/// The `outcome` label of a DNS answer in the metrics: `answered` for NOERROR (NODATA
/// included), otherwise the response code in lower case (`other` for codes the authority
/// never sends).
pub fn outcome(code: ResponseCode) -> &'static str {
    match code {
        ResponseCode::NoError => "answered",
        ResponseCode::NXDomain => "nxdomain",
        ResponseCode::Refused => "refused",
        ResponseCode::ServFail => "servfail",
        ResponseCode::FormErr => "formerr",
        ResponseCode::NotImp => "notimp",
        ResponseCode::BADVERS => "badvers",
        _ => "other",
    }
}
