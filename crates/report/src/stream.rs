//! Reading one large gzip or XML stream without holding it whole (a DMARC report of a million records).
//!
//! [`crate::walk_path`] hands every regular file here first. A file that is a bare XML document, or a gzip
//! whose content is one, is read through [`mtasts_proto::dmarc::parse_reader_within`] straight from the file (and
//! the decompressor): nothing grows with the document, so with [`Mode::Summary`](mtasts_proto::dmarc::Mode)
//! memory stays flat however many records the report has. Everything else (JSON, zip, mail, mbox, a gzip of
//! anything but XML) and every walk that keeps the document bytes ([`Limits::keep_raw`]) is left to the
//! in-memory walker, which the caller runs on the whole file instead.
//!
//! The answer is the one [`crate::walk`] gives for the same bytes, item for item and word for word: the
//! same source label, the same limits applied in the same order (the file against `max_input_bytes`, the
//! inflated stream against `max_report_bytes` / `max_total_bytes`, the document against `max_report_bytes`,
//! then the parser's own caps), the same error codes and messages (the messages are written here a second
//! time, word for word, and `tests/stream.rs` compares every item with the in-memory walker's). Because the in-memory walker inflates a gzip whole before it parses, a stream
//! that fails (corrupt, truncated, past the limit) is reported as such even when the XML already failed
//! earlier: after the parser stops, the rest of the stream is read (within the same cap) and discarded.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Cursor, Read};
use std::path::Path;

use mtasts_proto::dmarc::{self, DmarcError};

use crate::walk::{Code, Found, FoundError, Limits, inflated_past, not_valid};

/// How many bytes are looked at before deciding whether a file (or its gzip content) is XML.
const PEEK_BYTES: usize = 8 * 1024;
/// The read buffer between the file, the decompressor and the XML reader.
const BUFFER_BYTES: usize = 64 * 1024;

/// Reads the file at `path` (of `len` bytes, as its metadata says) as a streamed DMARC report.
///
/// `Ok(None)` means "not streamed": the caller reads the file whole and walks it in memory, which gives
/// the answer for every case this function does not take (and the very same answer for those it does).
///
/// # Errors
///
/// The file cannot be opened or read (not the decompressor failing: that is a `malformed` item).
pub(crate) fn walk_file(path: &Path, len: u64, limits: &Limits) -> io::Result<Option<Found>> {
    // The in-memory walker counts the file as part 1 at depth 0 and a gzip's content as part 2 at depth 1;
    // with limits that small it must be the one to say so.
    if limits.keep_raw || limits.max_parts < 2 || limits.max_depth < 1 {
        return Ok(None);
    }
    if len > limits.max_input_bytes {
        return Ok(None);
    }
    let source = path.display().to_string();
    let file = Capped::new(File::open(path)?, limits.max_input_bytes);
    let mut file = BufReader::with_capacity(BUFFER_BYTES, file);
    if file.fill_buf()?.starts_with(&[0x1f, 0x8b]) {
        gzip(file, &source, limits)
    } else {
        bare(file, &source, limits)
    }
}

/// A bare XML file: parsed as it is read.
fn bare(
    mut file: BufReader<Capped<File>>,
    source: &str,
    limits: &Limits,
) -> io::Result<Option<Found>> {
    let Some(head) = peek_xml(&mut file) else {
        return Ok(None);
    };
    let result = dmarc::parse_reader_within(
        BufReader::with_capacity(BUFFER_BYTES, Cursor::new(head).chain(&mut file)),
        limits.dmarc_mode,
        limits.max_report_bytes,
    );
    drain(&mut file);
    let file = file.into_inner();
    if let Some(e) = file.failed {
        return Err(e);
    }
    if file.over {
        // The file grew past max_input_bytes while it was read: let the in-memory path say so.
        return Ok(None);
    }
    Ok(Some(found(result, source)))
}

/// A gzip file: its content, when it is XML, parsed as it is inflated.
fn gzip(file: BufReader<Capped<File>>, source: &str, limits: &Limits) -> io::Result<Option<Found>> {
    let per_stream = limits.max_report_bytes;
    let cap = per_stream.min(limits.max_total_bytes);
    // One gzip member, as the in-memory walker reads it: bytes after it (a stray CRLF) are ignored.
    let inflated = Capped::new(flate2::bufread::GzDecoder::new(file), cap);
    let mut inflated = BufReader::with_capacity(BUFFER_BYTES, inflated);
    let Some(head) = peek_xml(&mut inflated) else {
        return Ok(None);
    };
    let result = dmarc::parse_reader_within(
        BufReader::with_capacity(BUFFER_BYTES, Cursor::new(head).chain(&mut inflated)),
        limits.dmarc_mode,
        limits.max_report_bytes,
    );
    drain(&mut inflated);
    let inflated = inflated.into_inner();
    let file = inflated.inner.into_inner().into_inner();
    if let Some(e) = file.failed {
        return Err(e);
    }
    if file.over {
        return Ok(None);
    }
    let stream_error = |code, message| {
        Found::Error(FoundError {
            source: source.to_owned(),
            code,
            message,
        })
    };
    let what = "the gzip stream";
    if inflated.over {
        let message = inflated_past(what, cap < per_stream, limits);
        return Ok(Some(stream_error(Code::TooLarge, message)));
    }
    if let Some(e) = inflated.failed {
        return Ok(Some(stream_error(Code::Malformed, not_valid(what, &e))));
    }
    Ok(Some(found(result, source)))
}

/// The first bytes of `reader` when they start an XML document as the walker's sniffing sees it (after an
/// optional UTF-8 byte order mark, the first byte that is not ASCII white space is `<`); `None` otherwise,
/// or when the reader fails or stops before saying.
fn peek_xml(reader: &mut impl Read) -> Option<Vec<u8>> {
    let mut head = Vec::with_capacity(PEEK_BYTES);
    reader
        .by_ref()
        .take(PEEK_BYTES as u64)
        .read_to_end(&mut head)
        .ok()?;
    let text = head.strip_prefix(b"\xef\xbb\xbf").unwrap_or(&head);
    match text.iter().find(|b| !b.is_ascii_whitespace()) {
        Some(b'<') => Some(head),
        _ => None,
    }
}

/// Reads what is left of `reader` and throws it away; the [`Capped`] below records how that ended.
fn drain(reader: &mut impl Read) {
    let _ = io::copy(reader, &mut io::sink());
}

/// The walker's item for the parser's answer.
fn found(result: Result<dmarc::Report, DmarcError>, source: &str) -> Found {
    match result {
        Ok(report) => Found::Dmarc {
            source: source.to_owned(),
            report: Box::new(report),
            raw: None,
        },
        Err(e) => Found::Error(FoundError {
            source: source.to_owned(),
            code: Code::from_word(e.code()),
            message: format!("DMARC report: {e}"),
        }),
    }
}

/// A reader that delivers at most `max` bytes and remembers how it ended: `over` once a byte past `max`
/// arrives (it then fails every read), `failed` with the underlying error when the source fails.
struct Capped<R> {
    inner: R,
    max: u64,
    read: u64,
    over: bool,
    failed: Option<io::Error>,
}

impl<R> Capped<R> {
    fn new(inner: R, max: u64) -> Self {
        Self {
            inner,
            max,
            read: 0,
            over: false,
            failed: None,
        }
    }

    fn stopped() -> io::Error {
        io::Error::other("the stream stopped at its limit")
    }
}

impl<R: Read> Read for Capped<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.over || self.failed.is_some() {
            return Err(Self::stopped());
        }
        // Never ask for more than one byte past the limit: that byte is the proof there is more.
        let room = self.max.saturating_sub(self.read).saturating_add(1);
        let want = buf.len().min(usize::try_from(room).unwrap_or(usize::MAX));
        let n = loop {
            match self.inner.read(&mut buf[..want]) {
                Ok(n) => break n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    let copy = io::Error::new(e.kind(), e.to_string());
                    self.failed = Some(e);
                    return Err(copy);
                }
            }
        };
        self.read += n as u64;
        if self.read > self.max {
            self.over = true;
            return Err(Self::stopped());
        }
        Ok(n)
    }
}
