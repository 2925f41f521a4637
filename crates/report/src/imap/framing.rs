//! Bounds on what an IMAP server may send: the length of a line, of a literal, and of one whole
//! response. async-imap grows its read buffer until a response parses (up to 512 MiB), so a
//! server that never ends a line, or announces a huge literal, would make us allocate; this
//! layer counts the bytes as they arrive and fails the read first.
//!
//! [`Framing`] is the pure counter (IMAP4rev1 response framing: lines end in CRLF; a line
//! ending in `{N}` or `{N+}` is followed by N bytes of literal data, after which the same
//! response continues). [`Bounded`] applies it to a stream's reads.

use std::fmt;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// The longest line (outside literals) a server may send: a `UID SEARCH` answer over a window of
/// [`super::pass::SEARCH_WINDOW`] UIDs is far below it.
pub(crate) const MAX_LINE: usize = 1024 * 1024;

/// How much a response may hold beyond its largest literal (the lines around it).
pub(crate) const RESPONSE_SLACK: u64 = 4 * 1024 * 1024;

/// A server response broke a bound.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum FramingError {
    /// A line longer than the limit.
    Line(usize),
    /// A literal announced larger than the limit.
    Literal(u64, u64),
    /// One response (its lines and literals together) larger than the limit.
    Response(u64),
}

impl fmt::Display for FramingError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FramingError::Line(max) => write!(f, "the server sent a line longer than {max} bytes"),
            FramingError::Literal(n, max) => write!(
                f,
                "the server announced {n} bytes of data, more than the {max} allowed"
            ),
            FramingError::Response(max) => {
                write!(f, "the server sent a response larger than {max} bytes")
            }
        }
    }
}

/// Counts a server's bytes against the bounds.
#[derive(Clone, Debug)]
pub(crate) struct Framing {
    max_line: usize,
    max_literal: u64,
    max_response: u64,
    line_len: usize,
    literal_left: u64,
    response_len: u64,
    /// The end of the current line, enough to see a `{N+}` literal announcement.
    tail: Vec<u8>,
    /// Whether the start of the current line fell out of `tail`.
    truncated: bool,
}

/// `{` + 20 digits + `+}` + CR.
const TAIL: usize = 24;

impl Framing {
    /// Bounds: lines of `max_line` bytes, literals of `max_literal`, responses of
    /// `max_literal` + [`RESPONSE_SLACK`].
    pub(crate) fn new(max_line: usize, max_literal: u64) -> Self {
        Framing {
            max_line,
            max_literal,
            max_response: max_literal.saturating_add(RESPONSE_SLACK),
            line_len: 0,
            literal_left: 0,
            response_len: 0,
            tail: Vec::with_capacity(TAIL),
            truncated: false,
        }
    }

    /// Counts `bytes`, the next ones the server sent.
    pub(crate) fn feed(&mut self, mut bytes: &[u8]) -> Result<(), FramingError> {
        while !bytes.is_empty() {
            if self.literal_left > 0 {
                let n = usize::try_from(self.literal_left)
                    .unwrap_or(usize::MAX)
                    .min(bytes.len());
                self.literal_left -= n as u64;
                self.count_response(n)?;
                bytes = &bytes[n..];
                continue;
            }
            let end = bytes.iter().position(|&b| b == b'\n');
            let n = end.map_or(bytes.len(), |i| i + 1);
            let chunk = &bytes[..n];
            self.line_len += n;
            if self.line_len > self.max_line {
                return Err(FramingError::Line(self.max_line));
            }
            self.count_response(n)?;
            let keep = chunk.len().min(TAIL);
            if self.tail.len() + keep > TAIL {
                let drop = self.tail.len() + keep - TAIL;
                self.tail.drain(..drop.min(self.tail.len()));
                self.truncated = true;
            }
            if keep < chunk.len() {
                self.truncated = true;
            }
            self.tail.extend_from_slice(&chunk[chunk.len() - keep..]);
            if end.is_some() {
                match literal_announced(&self.tail, self.truncated) {
                    Some(size) if size > self.max_literal => {
                        return Err(FramingError::Literal(size, self.max_literal));
                    }
                    Some(size) => self.literal_left = size,
                    // A line that announces nothing ends the response.
                    None => self.response_len = 0,
                }
                self.line_len = 0;
                self.tail.clear();
                self.truncated = false;
            }
            bytes = &bytes[n..];
        }
        Ok(())
    }

    fn count_response(&mut self, n: usize) -> Result<(), FramingError> {
        self.response_len += n as u64;
        if self.response_len > self.max_response {
            return Err(FramingError::Response(self.max_response));
        }
        Ok(())
    }
}

/// The size of the literal a line (ending in LF) announces: `…{123}\r\n` or `…{123+}\r\n`.
/// When the digits run past the kept `tail` (`truncated`), the size is taken as unbounded:
/// leading zeros must not hide a literal the IMAP parser would see.
fn literal_announced(tail: &[u8], truncated: bool) -> Option<u64> {
    let line = tail.strip_suffix(b"\n")?;
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let inner = line.strip_suffix(b"}")?;
    let inner = inner.strip_suffix(b"+").unwrap_or(inner);
    let Some(open) = inner.iter().rposition(|&b| b == b'{') else {
        let all_digits = !inner.is_empty() && inner.iter().all(u8::is_ascii_digit);
        return (truncated && all_digits).then_some(u64::MAX);
    };
    let digits = &inner[open + 1..];
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    // Too many digits for a u64 is larger than any bound.
    Some(
        std::str::from_utf8(digits)
            .ok()?
            .parse::<u64>()
            .unwrap_or(u64::MAX),
    )
}

/// A stream whose reads are counted by a [`Framing`]; a broken bound is an
/// `InvalidData` error (and every later read fails too).
#[derive(Debug)]
pub(crate) struct Bounded<S> {
    inner: S,
    framing: Framing,
    broken: Option<FramingError>,
}

impl<S> Bounded<S> {
    pub(crate) fn new(inner: S, framing: Framing) -> Self {
        Bounded {
            inner,
            framing,
            broken: None,
        }
    }

    /// The stream, for STARTTLS (what async-imap buffered past the `OK` is dropped with it,
    /// as RFC 3207-style upgrades require).
    pub(crate) fn into_inner(self) -> S {
        self.inner
    }
}

fn invalid(e: &FramingError) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e.to_string())
}

impl<S: AsyncRead + Unpin> AsyncRead for Bounded<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if let Some(e) = &self.broken {
            return Poll::Ready(Err(invalid(e)));
        }
        let before = buf.filled().len();
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                if let Err(e) = this.framing.feed(&buf.filled()[before..]) {
                    // A failed read hands out no bytes.
                    buf.set_filled(before);
                    let error = invalid(&e);
                    this.broken = Some(e);
                    return Poll::Ready(Err(error));
                }
                Poll::Ready(Ok(()))
            }
            other => other,
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Bounded<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed_all(framing: &mut Framing, text: &[u8], chunk: usize) -> Result<(), FramingError> {
        text.chunks(chunk.max(1)).try_for_each(|c| framing.feed(c))
    }

    #[test]
    fn ordinary_responses_pass_in_any_chunking() {
        let text = b"* OK [CAPABILITY IMAP4rev1] ready\r\n* 1 FETCH (UID 7 BODY[] {5}\r\nhello)\r\na1 OK done\r\n";
        for chunk in 1..text.len() {
            let mut f = Framing::new(64, 10);
            feed_all(&mut f, text, chunk).unwrap();
            assert_eq!((f.line_len, f.literal_left, f.response_len), (0, 0, 0));
        }
    }

    #[test]
    fn a_literal_may_hold_line_ends_and_exceed_the_line_limit() {
        let mut text = b"* 1 FETCH (BODY[] {100}\r\n".to_vec();
        text.extend(std::iter::repeat_n(b'x', 50));
        text.extend(b"\r\n");
        text.extend(std::iter::repeat_n(b'y', 48));
        text.extend(b")\r\n");
        let mut f = Framing::new(32, 100);
        feed_all(&mut f, &text, 7).unwrap();
    }

    #[test]
    fn a_long_line_is_refused() {
        let mut f = Framing::new(16, 100);
        assert_eq!(
            f.feed(b"* SEARCH 1 2 3 4 5 6 7 8"),
            Err(FramingError::Line(16))
        );
        // A line without an end is refused as it grows, not when it ends.
        let mut f = Framing::new(16, 100);
        let err = (0..100).find_map(|_| f.feed(b"xx").err());
        assert_eq!(err, Some(FramingError::Line(16)));
    }

    #[test]
    fn a_large_literal_is_refused_when_announced() {
        let mut f = Framing::new(64, 10);
        assert_eq!(
            f.feed(b"* 1 FETCH (BODY[] {11}\r\n"),
            Err(FramingError::Literal(11, 10))
        );
        let mut f = Framing::new(64, 10);
        assert_eq!(
            f.feed(b"* 1 FETCH (BODY[] {99999999999999999999999}\r\n"),
            Err(FramingError::Literal(u64::MAX, 10))
        );
        let mut f = Framing::new(128, 10);
        assert_eq!(
            f.feed(b"* 1 FETCH (BODY[] {00000000000000000000000000000000000000000005}\r\n"),
            Err(FramingError::Literal(u64::MAX, 10))
        );
        let mut f = Framing::new(64, 10);
        assert_eq!(
            f.feed(b"* 1 FETCH (BODY[] {11+}\r\n"),
            Err(FramingError::Literal(11, 10))
        );
    }

    #[test]
    fn many_small_literals_in_one_response_are_bounded() {
        let mut f = Framing::new(64, 10);
        f.max_response = 100;
        let err = (0..100).find_map(|_| f.feed(b"(X {8}\r\n12345678").err());
        assert_eq!(err, Some(FramingError::Response(100)));
    }

    #[test]
    fn braces_that_are_not_literals() {
        for line in [
            &b"* OK {abc}\r\n"[..],
            b"* OK {}\r\n",
            b"* OK {12} trailing\r\n",
        ] {
            let mut f = Framing::new(64, 10);
            f.feed(line).unwrap();
            assert_eq!(f.literal_left, 0, "{:?}", String::from_utf8_lossy(line));
        }
        // A bare LF ends a line too.
        let mut f = Framing::new(64, 10);
        f.feed(b"* X {3}\nabc)\n").unwrap();
        assert_eq!((f.literal_left, f.line_len), (0, 0));
    }

    #[tokio::test]
    async fn bounded_stream_fails_reads_past_the_bound() {
        use tokio::io::AsyncReadExt;
        let data: &[u8] = b"* OK fine\r\n* 1 FETCH (BODY[] {999}\r\n";
        let mut stream = Bounded::new(data, Framing::new(64, 10));
        let mut out = Vec::new();
        let err = stream.read_to_end(&mut out).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        assert!(err.to_string().contains("999 bytes"), "{err}");
        // Broken stays broken.
        assert!(stream.read(&mut [0u8; 4]).await.is_err());
    }
}
