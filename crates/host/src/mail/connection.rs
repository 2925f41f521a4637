//! One SMTP connection: reads lines within the caps and time limits, feeds them to the
//! protocol's [`Session`], writes its replies, runs STARTTLS and reads messages.
//!
//! Bytes a client sent ahead of STARTTLS are dropped with the plain-text reader (RFC 3207
//! §6: nothing said before TLS may be taken as said inside it). Replies are flushed when no
//! pipelined command is waiting (RFC 2920).

use std::io;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use mtasts_listen::{ConnectionContext, Stream};
use mtasts_proto::smtp_server::{
    Action, DataOutcome, DataReader, DataStep, MAX_LINE_BYTES, Reply, Session,
};
use tokio::io::{
    AsyncBufRead, AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader, ReadBuf,
};
use tokio::time::Instant;
use tokio_rustls::server::TlsStream;

use super::Shared;
use super::deliver::Received;

/// The most bytes of an over-long command line read (and dropped) before giving up on the
/// client.
const MAX_DISCARD_BYTES: usize = 64 * 1024;
/// The largest piece of a message line read at once (lines longer than this are read in
/// pieces; the message cap bounds the total).
const DATA_SEGMENT_BYTES: usize = 64 * 1024;
/// How long writing one reply may take.
const WRITE_TIMEOUT: Duration = Duration::from_secs(30);
/// How long the TLS handshake may take.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(30);

/// The connection, plain or after STARTTLS (`Gone` only while the handshake owns it).
enum Transport {
    Plain(Stream),
    Tls(Box<TlsStream<Stream>>),
    Gone,
}

fn gone() -> io::Error {
    io::Error::new(
        io::ErrorKind::NotConnected,
        "the connection is in a TLS handshake",
    )
}

impl AsyncRead for Transport {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Transport::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Transport::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
            Transport::Gone => Poll::Ready(Err(gone())),
        }
    }
}

impl AsyncWrite for Transport {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Transport::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Transport::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
            Transport::Gone => Poll::Ready(Err(gone())),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Transport::Plain(s) => Pin::new(s).poll_flush(cx),
            Transport::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
            Transport::Gone => Poll::Ready(Err(gone())),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Transport::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Transport::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
            Transport::Gone => Poll::Ready(Err(gone())),
        }
    }
}

/// Why a connection ended early (logged at debug level).
enum End {
    Io(io::Error),
    Timeout,
    Closed,
}

impl From<io::Error> for End {
    fn from(e: io::Error) -> Self {
        End::Io(e)
    }
}

/// Serves one connection to its end.
pub(crate) async fn serve(shared: Arc<Shared>, stream: Stream, ctx: ConnectionContext) {
    let Some(peer) = ctx.peer().addr().map(|a| a.ip().to_canonical()) else {
        return;
    };
    let mut conn = Conn {
        reader: BufReader::new(Transport::Plain(stream)),
        shared,
        peer,
    };
    let Some(_admitted) = conn.shared.clients.admit(peer) else {
        conn.shared
            .deliver
            .metrics()
            .report_received("smtp", "refused");
        let _ = conn.write(&Session::too_many_connections(), true).await;
        return;
    };
    match conn.run(&ctx).await {
        Ok(()) => {}
        Err(End::Timeout) => {
            let _ = conn.write(&Session::timeout(), true).await;
            tracing::debug!(%peer, "smtp: timeout");
        }
        Err(End::Io(e)) => tracing::debug!(%peer, error = %e, "smtp: connection failed"),
        Err(End::Closed) => tracing::debug!(%peer, "smtp: client left"),
    }
    let _ = conn.reader.get_mut().shutdown().await;
}

struct Conn {
    reader: BufReader<Transport>,
    shared: Arc<Shared>,
    peer: IpAddr,
}

impl Conn {
    async fn run(&mut self, ctx: &ConnectionContext) -> Result<(), End> {
        let certificate = self.shared.certificates.certificate();
        let mut session = Session::new(
            self.shared.addresses.clone(),
            self.shared.config.limits.clone(),
            certificate.is_some(),
        );
        self.write(&session.greeting(), true).await?;
        let mut line = Vec::with_capacity(MAX_LINE_BYTES);
        loop {
            line.clear();
            let read = tokio::select! {
                biased;
                () = ctx.stopped() => {
                    self.write(&Session::shutting_down(), true).await?;
                    return Ok(());
                }
                read = self.read_command(&mut line) => read?,
            };
            let action = match read {
                Line::Complete => session.command(&line),
                Line::TooLong => session.line_too_long(),
                Line::Eof => return Err(End::Closed),
            };
            match action {
                Action::Reply(reply) => {
                    let flush = self.reader.buffer().is_empty();
                    self.write(&reply, flush).await?;
                }
                Action::Close(reply) => {
                    self.write(&reply, true).await?;
                    return Ok(());
                }
                Action::StartTls(reply) => {
                    let Some(certificate) = certificate.clone() else {
                        return Err(End::Closed);
                    };
                    self.write(&reply, true).await?;
                    self.start_tls(certificate).await?;
                    session.tls_started();
                }
                Action::Data(reply) => {
                    self.write(&reply, true).await?;
                    let outcome = self.data(&session).await?;
                    let Action::Reply(reply) = session.data_ended(outcome) else {
                        return Err(End::Closed);
                    };
                    let flush = self.reader.buffer().is_empty();
                    self.write(&reply, flush).await?;
                }
            }
        }
    }

    /// Reads the message after `354`, stores it when it is within the cap, and says how
    /// that went. The sender's end of data is always read first.
    async fn data(&mut self, session: &Session) -> Result<DataOutcome, End> {
        let timeout = self.shared.config.timeout;
        let deadline = Instant::now() + timeout * super::DATA_TIMEOUT_FACTOR;
        let mut data = DataReader::new(session.limits().max_message_bytes);
        let mut segment = Vec::with_capacity(1024);
        loop {
            segment.clear();
            let step_deadline = deadline.min(Instant::now() + timeout);
            let eof = tokio::time::timeout_at(
                step_deadline,
                read_segment(&mut self.reader, DATA_SEGMENT_BYTES, &mut segment),
            )
            .await
            .map_err(|_| End::Timeout)??;
            if eof {
                // A sender gone mid-message: nothing is stored, nothing acknowledged.
                return Err(End::Closed);
            }
            if data.push(&segment) == DataStep::End {
                break;
            }
        }
        let Some(message) = data.into_message() else {
            self.shared
                .deliver
                .metrics()
                .report_received("smtp", "refused");
            return Ok(DataOutcome::TooLarge);
        };
        let received = Received {
            peer: self.peer,
            helo: session.helo().unwrap_or_default().to_owned(),
            envelope: session.envelope().clone(),
            tls: self.tls_info(),
            message,
            received_at: now(),
        };
        match self.shared.deliver.deliver(&received).await {
            Ok(delivered) => {
                // Counted per message, like the HTTPS intake counts per POST.
                let outcome = &delivered.outcome;
                let counted = if outcome.new > 0 {
                    "new"
                } else if outcome.duplicate > 0 {
                    "duplicate"
                } else {
                    "invalid"
                };
                self.shared
                    .deliver
                    .metrics()
                    .report_received("smtp", counted);
                tracing::info!(
                    peer = %self.peer,
                    input = delivered.outcome.input,
                    new = delivered.outcome.new,
                    duplicate = delivered.outcome.duplicate,
                    errors = delivered.outcome.errors.len(),
                    "smtp: message stored"
                );
                Ok(DataOutcome::Committed(delivered.summary()))
            }
            Err(e) => {
                self.shared
                    .deliver
                    .metrics()
                    .report_received("smtp", "error");
                tracing::warn!(peer = %self.peer, error = %e, "smtp: message not stored");
                Ok(DataOutcome::Unavailable)
            }
        }
    }

    /// Reads one command line; an over-long one is read to its end (within
    /// [`MAX_DISCARD_BYTES`]) and reported as such.
    async fn read_command(&mut self, line: &mut Vec<u8>) -> Result<Line, End> {
        let timeout = self.shared.config.timeout;
        let eof = tokio::time::timeout(
            timeout,
            read_segment(&mut self.reader, MAX_LINE_BYTES, line),
        )
        .await
        .map_err(|_| End::Timeout)??;
        if eof {
            return Ok(Line::Eof);
        }
        if line.ends_with(b"\n") {
            return Ok(Line::Complete);
        }
        let mut discarded = line.len();
        let mut rest = Vec::new();
        loop {
            rest.clear();
            let eof = tokio::time::timeout(
                timeout,
                read_segment(&mut self.reader, MAX_LINE_BYTES, &mut rest),
            )
            .await
            .map_err(|_| End::Timeout)??;
            discarded += rest.len();
            if eof || discarded > MAX_DISCARD_BYTES {
                return Err(End::Closed);
            }
            if rest.ends_with(b"\n") {
                return Ok(Line::TooLong);
            }
        }
    }

    async fn start_tls(&mut self, certificate: Arc<rustls::sign::CertifiedKey>) -> Result<(), End> {
        let acceptor = tokio_rustls::TlsAcceptor::from(super::tls::server_config(certificate));
        // Replacing the reader drops whatever the client pipelined after STARTTLS.
        let reader = std::mem::replace(&mut self.reader, BufReader::new(Transport::Gone));
        let Transport::Plain(stream) = reader.into_inner() else {
            return Err(End::Closed);
        };
        let tls = tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream))
            .await
            .map_err(|_| End::Closed)??;
        self.reader = BufReader::new(Transport::Tls(Box::new(tls)));
        Ok(())
    }

    fn tls_info(&self) -> Option<(String, String)> {
        match self.reader.get_ref() {
            Transport::Plain(_) | Transport::Gone => None,
            Transport::Tls(tls) => {
                let (_, conn) = tls.get_ref();
                let version = conn
                    .protocol_version()
                    .map(|v| match v {
                        rustls::ProtocolVersion::TLSv1_3 => "TLSv1.3".to_owned(),
                        rustls::ProtocolVersion::TLSv1_2 => "TLSv1.2".to_owned(),
                        other => format!("{other:?}"),
                    })
                    .unwrap_or_default();
                let cipher = conn
                    .negotiated_cipher_suite()
                    .map(|c| format!("{:?}", c.suite()))
                    .unwrap_or_default();
                Some((version, cipher))
            }
        }
    }

    async fn write(&mut self, reply: &Reply, flush: bool) -> Result<(), End> {
        let bytes = reply.to_bytes();
        let out = self.reader.get_mut();
        tokio::time::timeout(WRITE_TIMEOUT, async {
            out.write_all(&bytes).await?;
            if flush {
                out.flush().await?;
            }
            Ok::<_, io::Error>(())
        })
        .await
        .map_err(|_| End::Timeout)??;
        Ok(())
    }
}

/// What reading a command line found.
enum Line {
    Complete,
    TooLong,
    Eof,
}

/// Appends to `out` up to and including the next LF, or until `out` holds `cap` bytes.
/// Returns true at the end of the stream with nothing read.
async fn read_segment<R: AsyncBufRead + Unpin>(
    reader: &mut R,
    cap: usize,
    out: &mut Vec<u8>,
) -> io::Result<bool> {
    loop {
        let buf = reader.fill_buf().await?;
        if buf.is_empty() {
            return Ok(out.is_empty());
        }
        let room = cap.saturating_sub(out.len());
        let take = &buf[..buf.len().min(room)];
        let (used, done) = match take.iter().position(|&b| b == b'\n') {
            Some(i) => (i + 1, true),
            None => (take.len(), take.len() == room),
        };
        out.extend_from_slice(&take[..used]);
        reader.consume(used);
        if done {
            return Ok(false);
        }
    }
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}
