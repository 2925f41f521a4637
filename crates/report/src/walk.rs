//! The walker: opens containers recursively (gzip, zip, mail, mbox) and parses the reports it meets.

use std::io::{Cursor, Read};

use mail_parser::{MessageParser, MimeHeaders, PartType};
use mtasts_proto::dmarc::{self, Mode};
use mtasts_proto::tlsrpt::report::TlsReport;

/// Default [`Limits::max_report_bytes`]: 64 MiB, the contract's `--max-report-bytes`.
pub const DEFAULT_MAX_REPORT_BYTES: u64 = 64 * 1024 * 1024;
/// Default [`Limits::max_zip_entries`].
pub const DEFAULT_MAX_ZIP_ENTRIES: usize = 1_000;
/// Default [`Limits::max_depth`].
pub const DEFAULT_MAX_DEPTH: usize = 8;
/// Default [`Limits::max_parts`].
pub const DEFAULT_MAX_PARTS: usize = 10_000;
/// The most `message/` and `multipart/` media types one mail message may mention before it is parsed:
/// the MIME parser nests attached messages on the stack, so a message nested thousands deep is refused
/// (`too-large`) before it is parsed. Real report mail has fewer than ten.
pub const MAX_MIME_CONTAINERS: usize = 1_000;
/// Default [`Limits::max_total_bytes`]: 256 MiB.
pub const DEFAULT_MAX_TOTAL_BYTES: u64 = 256 * 1024 * 1024;
/// Default [`Limits::max_input_bytes`]: 256 MiB.
pub const DEFAULT_MAX_INPUT_BYTES: u64 = 256 * 1024 * 1024;
/// Default [`Limits::max_files`].
pub const DEFAULT_MAX_FILES: usize = 100_000;

/// The caps of one [`walk`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Limits {
    /// The most bytes one decompressed stream (a gzip member or a zip entry) may inflate to.
    pub max_report_bytes: u64,
    /// The most bytes all decompressed streams of one input may inflate to together (a zip of many
    /// large entries, or nested containers, cannot multiply [`Limits::max_report_bytes`]).
    pub max_total_bytes: u64,
    /// The most entries one zip archive may hold.
    pub max_zip_entries: usize,
    /// The deepest nesting of containers (gzip, zip, mail, attached message, multipart) below the input.
    pub max_depth: usize,
    /// The most pieces (MIME parts, zip entries, mbox messages, streams) looked at in one input.
    pub max_parts: usize,
    /// The largest file [`crate::walk_path`] reads (an mbox may be larger than one report).
    pub max_input_bytes: u64,
    /// The most files [`crate::walk_path`] reads below one directory.
    pub max_files: usize,
    /// How DMARC reports are read (summary counts only, or with their records).
    pub dmarc_mode: Mode,
    /// Keep each report's document bytes (the JSON or XML, decompressed) in [`Found`], for storage.
    pub keep_raw: bool,
}

impl Limits {
    /// The default limits with `max_report_bytes` set to `bytes` (`--max-report-bytes`), and the
    /// per-input limits raised to at least as much, so that one report of that size can be read.
    pub fn with_max_report_bytes(bytes: u64) -> Self {
        let mut limits = Self::default();
        limits.max_report_bytes = bytes;
        limits.max_total_bytes = limits.max_total_bytes.max(bytes);
        limits.max_input_bytes = limits.max_input_bytes.max(bytes);
        limits
    }

    /// [`Limits::max_report_bytes`] as a length in memory.
    pub(crate) fn report_cap(&self) -> usize {
        usize::try_from(self.max_report_bytes).unwrap_or(usize::MAX)
    }
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_report_bytes: DEFAULT_MAX_REPORT_BYTES,
            max_total_bytes: DEFAULT_MAX_TOTAL_BYTES,
            max_zip_entries: DEFAULT_MAX_ZIP_ENTRIES,
            max_depth: DEFAULT_MAX_DEPTH,
            max_parts: DEFAULT_MAX_PARTS,
            max_input_bytes: DEFAULT_MAX_INPUT_BYTES,
            max_files: DEFAULT_MAX_FILES,
            dmarc_mode: Mode::Full,
            keep_raw: false,
        }
    }
}

/// The contract's error class of a piece that could not be read.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Code {
    /// No report inside.
    Unrecognized,
    /// Not valid JSON / XML / MIME / gzip / zip.
    Malformed,
    /// Well-formed, but not a report.
    Invalid,
    /// A size, count, nesting or entry limit was reached.
    TooLarge,
    /// For example an encrypted zip entry.
    Unsupported,
}

impl Code {
    /// The contract's word: `unrecognized`, `malformed`, `invalid`, `too-large` or `unsupported`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unrecognized => "unrecognized",
            Self::Malformed => "malformed",
            Self::Invalid => "invalid",
            Self::TooLarge => "too-large",
            Self::Unsupported => "unsupported",
        }
    }

    pub(crate) fn from_word(word: &str) -> Self {
        match word {
            "unrecognized" => Self::Unrecognized,
            "invalid" => Self::Invalid,
            "too-large" => Self::TooLarge,
            "unsupported" => Self::Unsupported,
            _ => Self::Malformed,
        }
    }
}

/// A piece that could not be read: where, why, and the contract's class.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct FoundError {
    /// The input label, then `#` and the MIME part / zip entry / mbox message index, per level.
    pub source: String,
    /// The contract's error class.
    pub code: Code,
    /// What was wrong and where.
    pub message: String,
}

impl FoundError {
    /// An error of class `code` at `source` (for callers that refuse a piece before any walk,
    /// as `fetch` refuses an oversized message).
    pub fn new(source: impl Into<String>, code: Code, message: impl Into<String>) -> Self {
        FoundError {
            source: source.into(),
            code,
            message: message.into(),
        }
    }
}

/// One thing found in an input: a report, or an error.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum Found {
    /// An SMTP TLS report.
    TlsRpt {
        /// Where it was found (see [`FoundError::source`]).
        source: String,
        /// The report.
        report: Box<TlsReport>,
        /// The document's bytes (decompressed), when [`Limits::keep_raw`] is set.
        raw: Option<Vec<u8>>,
    },
    /// A DMARC aggregate report.
    Dmarc {
        /// Where it was found (see [`FoundError::source`]).
        source: String,
        /// The report.
        report: Box<dmarc::Report>,
        /// The document's bytes (decompressed), when [`Limits::keep_raw`] is set.
        raw: Option<Vec<u8>>,
    },
    /// A piece that could not be read.
    Error(FoundError),
}

impl Found {
    /// Where this was found.
    pub fn source(&self) -> &str {
        match self {
            Self::TlsRpt { source, .. } | Self::Dmarc { source, .. } => source,
            Self::Error(e) => &e.source,
        }
    }
}

struct Ctx<'a> {
    limits: &'a Limits,
    parts: usize,
    inflated: u64,
    out: Vec<Found>,
}

/// Why a stream (`what`) stopped inflating: past what one input may inflate to in all
/// (`total`, [`Limits::max_total_bytes`]) or past the per-stream limit (`--max-report-bytes`).
pub(crate) fn inflated_past(what: &str, total: bool, limits: &Limits) -> String {
    if total {
        let limit = human(limits.max_total_bytes);
        format!("{what} inflates past the {limit} one input may inflate to (max_total_bytes)")
    } else {
        let limit = human(limits.max_report_bytes);
        format!("{what} inflates past the {limit} limit (--max-report-bytes)")
    }
}

/// Why a compressed stream (`what`) could not be read.
pub(crate) fn not_valid(what: &str, e: &std::io::Error) -> String {
    format!("{what} is not valid: {e}")
}

impl Ctx<'_> {
    fn error(&mut self, source: &str, code: Code, message: impl Into<String>) {
        self.out.push(Found::Error(FoundError {
            source: source.to_owned(),
            code,
            message: message.into(),
        }));
    }

    /// True (after one error) when `depth` is past the nesting limit.
    fn too_deep(&mut self, source: &str, depth: usize) -> bool {
        let max = self.limits.max_depth;
        if depth > max {
            self.error(
                source,
                Code::TooLarge,
                format!("containers nested deeper than {max} (max_depth)"),
            );
        }
        depth > max
    }

    /// Decompresses `reader` (`what` names it in messages) within both byte limits.
    fn inflate(&mut self, reader: impl Read, what: &str) -> Result<Vec<u8>, (Code, String)> {
        let per_stream = self.limits.max_report_bytes;
        let total = self.limits.max_total_bytes;
        let max = per_stream.min(total.saturating_sub(self.inflated));
        match read_capped(reader, max) {
            Ok(Some(bytes)) => {
                self.inflated = self.inflated.saturating_add(bytes.len() as u64);
                Ok(bytes)
            }
            Ok(None) => {
                if max < per_stream {
                    self.inflated = total;
                }
                Err((
                    Code::TooLarge,
                    inflated_past(what, max < per_stream, self.limits),
                ))
            }
            Err(e) => Err((Code::Malformed, not_valid(what, &e))),
        }
    }

    /// Counts one more piece; false (and one error) when the limit is passed.
    fn count(&mut self, source: &str) -> bool {
        self.parts += 1;
        if self.parts == self.limits.max_parts + 1 {
            let max = self.limits.max_parts;
            self.error(
                source,
                Code::TooLarge,
                format!("more than {max} parts in one input (max_parts)"),
            );
        }
        self.parts <= self.limits.max_parts
    }
}

/// Finds every report in `input` (labelled `source`), opening containers within `limits`.
///
/// Returns the reports and the errors in input order; an input that holds nothing recognisable gives
/// one `unrecognized` error.
pub fn walk(input: &[u8], source: &str, limits: &Limits) -> Vec<Found> {
    let mut ctx = Ctx {
        limits,
        parts: 0,
        inflated: 0,
        out: Vec::new(),
    };
    visit(input, source, 0, &mut ctx);
    if ctx.out.is_empty() {
        ctx.error(source, Code::Unrecognized, "no TLS or DMARC report found");
    }
    ctx.out
}

/// What the first bytes say a piece is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Sniff {
    Gzip,
    Zip,
    Json,
    Xml,
    Mbox,
    Mail,
    Unknown,
}

fn sniff(bytes: &[u8]) -> Sniff {
    if bytes.starts_with(&[0x1f, 0x8b]) {
        return Sniff::Gzip;
    }
    if bytes.starts_with(b"PK\x03\x04") || bytes.starts_with(b"PK\x05\x06") {
        return Sniff::Zip;
    }
    if bytes.starts_with(b"From ") {
        return Sniff::Mbox;
    }
    let text = bytes.strip_prefix(b"\xef\xbb\xbf").unwrap_or(bytes);
    match text.iter().find(|b| !b.is_ascii_whitespace()) {
        Some(b'{') => return Sniff::Json,
        Some(b'<') => return Sniff::Xml,
        _ => {}
    }
    if looks_like_header(bytes) {
        Sniff::Mail
    } else {
        Sniff::Unknown
    }
}

/// A first line of the form `Name: value` (RFC 5322 field name: printable ASCII but `:`).
fn looks_like_header(bytes: &[u8]) -> bool {
    let name_len = bytes
        .iter()
        .take_while(|&&b| (33..=126).contains(&b) && b != b':')
        .count();
    name_len > 0 && bytes.get(name_len) == Some(&b':')
}

fn visit(bytes: &[u8], source: &str, depth: usize, ctx: &mut Ctx<'_>) {
    if ctx.too_deep(source, depth) || !ctx.count(source) {
        return;
    }
    match sniff(bytes) {
        Sniff::Gzip => gunzip(bytes, source, depth, ctx),
        Sniff::Zip => unzip(bytes, source, depth, ctx),
        Sniff::Json => match TlsReport::parse_within(bytes, ctx.limits.report_cap()) {
            Ok(report) => ctx.out.push(Found::TlsRpt {
                source: source.to_owned(),
                report: Box::new(report),
                raw: ctx.limits.keep_raw.then(|| bytes.to_vec()),
            }),
            Err(e) => ctx.error(
                source,
                Code::from_word(e.code()),
                format!("TLS report: {e}"),
            ),
        },
        Sniff::Xml => {
            match dmarc::parse_within(bytes, ctx.limits.dmarc_mode, ctx.limits.max_report_bytes) {
                Ok(report) => ctx.out.push(Found::Dmarc {
                    source: source.to_owned(),
                    report: Box::new(report),
                    raw: ctx.limits.keep_raw.then(|| bytes.to_vec()),
                }),
                Err(e) => ctx.error(
                    source,
                    Code::from_word(e.code()),
                    format!("DMARC report: {e}"),
                ),
            }
        }
        Sniff::Mbox => mbox(bytes, source, depth, ctx),
        Sniff::Mail => mail(bytes, source, depth, ctx),
        Sniff::Unknown if bytes.is_empty() => ctx.error(source, Code::Unrecognized, "empty input"),
        Sniff::Unknown => ctx.error(
            source,
            Code::Unrecognized,
            "not gzip, zip, JSON, XML, a mail message or an mbox",
        ),
    }
}

/// Reads at most `max` bytes from `reader`; `Ok(None)` when there are more.
pub(crate) fn read_capped(reader: impl Read, max: u64) -> std::io::Result<Option<Vec<u8>>> {
    let mut out = Vec::new();
    reader.take(max.saturating_add(1)).read_to_end(&mut out)?;
    Ok(if out.len() as u64 > max {
        None
    } else {
        Some(out)
    })
}

pub(crate) fn human(bytes: u64) -> String {
    if bytes >= 1 << 20 && bytes.is_multiple_of(1 << 20) {
        format!("{} MiB", bytes >> 20)
    } else {
        format!("{bytes} bytes")
    }
}

/// One gzip member; bytes after it (a stray CRLF, as Mimecast sends) are ignored.
fn gunzip(bytes: &[u8], source: &str, depth: usize, ctx: &mut Ctx<'_>) {
    match ctx.inflate(flate2::read::GzDecoder::new(bytes), "the gzip stream") {
        Ok(inner) => visit(&inner, source, depth + 1, ctx),
        Err((code, message)) => ctx.error(source, code, message),
    }
}

fn unzip(bytes: &[u8], source: &str, depth: usize, ctx: &mut Ctx<'_>) {
    let mut archive = match zip::ZipArchive::new(Cursor::new(bytes)) {
        Ok(a) => a,
        Err(e) => {
            return ctx.error(
                source,
                Code::Malformed,
                format!("not a valid zip archive: {e}"),
            );
        }
    };
    let max_entries = ctx.limits.max_zip_entries;
    if archive.len() > max_entries {
        let n = archive.len();
        return ctx.error(
            source,
            Code::TooLarge,
            format!("the zip archive has {n} entries, more than {max_entries} (max_zip_entries)"),
        );
    }
    for index in 0..archive.len() {
        let label = format!("{source}#{index}");
        let (is_dir, encrypted) = match archive.by_index_raw(index) {
            Ok(entry) if entry.name().is_ok_and(|n| is_finder_metadata(&n)) => continue,
            Ok(entry) => (entry.is_dir(), entry.encrypted()),
            Err(e) => {
                ctx.error(&label, Code::Malformed, format!("zip entry {index}: {e}"));
                continue;
            }
        };
        if is_dir {
            continue;
        }
        if encrypted {
            ctx.error(
                &label,
                Code::Unsupported,
                format!("zip entry {index} is encrypted"),
            );
            continue;
        }
        let read = match archive.by_index(index) {
            Ok(entry) => ctx.inflate(entry, &format!("zip entry {index}")),
            Err(zip::result::ZipError::UnsupportedArchive(what)) => {
                ctx.error(
                    &label,
                    Code::Unsupported,
                    format!("zip entry {index}: {what}"),
                );
                continue;
            }
            Err(e) => {
                ctx.error(&label, Code::Malformed, format!("zip entry {index}: {e}"));
                continue;
            }
        };
        match read {
            Ok(inner) => visit(&inner, &label, depth + 1, ctx),
            Err((code, message)) => ctx.error(&label, code, message),
        }
    }
}

/// True for what macOS's Finder adds to the archives it makes (`__MACOSX/`, `._name`,
/// `.DS_Store`): metadata beside the report, never a report and never worth an error.
fn is_finder_metadata(name: &str) -> bool {
    let file = name.rsplit('/').next().unwrap_or(name);
    name.starts_with("__MACOSX/") || file.starts_with("._") || file == ".DS_Store"
}

/// Splits an mbox on lines that begin with `From ` and reads each message.
fn mbox(bytes: &[u8], source: &str, depth: usize, ctx: &mut Ctx<'_>) {
    let mut starts = vec![0];
    let mut at = 0;
    while let Some(pos) = bytes[at..].windows(6).position(|w| w == b"\nFrom ") {
        starts.push(at + pos + 1);
        at += pos + 1;
    }
    for (index, &start) in starts.iter().enumerate() {
        let end = starts.get(index + 1).copied().unwrap_or(bytes.len());
        let message = &bytes[start..end];
        // Drop the `From ` separator line itself.
        let body = match message.iter().position(|&b| b == b'\n') {
            Some(nl) => &message[nl + 1..],
            None => &[][..],
        };
        let label = format!("{source}#{index}");
        if ctx.too_deep(&label, depth + 1) {
            continue;
        }
        if !ctx.count(&label) {
            return;
        }
        mail(body, &label, depth + 1, ctx);
    }
}

/// Media types whose bodies are never reports (text bodies, delivery status, headers).
fn skipped_type(ctype: &str, subtype: &str) -> bool {
    matches!(
        (ctype, subtype),
        ("text", "html")
            | ("text", "rfc822-headers")
            | ("message", "delivery-status")
            | ("message", "feedback-report")
    )
}

fn mail(bytes: &[u8], source: &str, depth: usize, ctx: &mut Ctx<'_>) {
    let containers = bytes
        .windows(8)
        .filter(|w| w.eq_ignore_ascii_case(b"message/") || w[..7].eq_ignore_ascii_case(b"multipar"))
        .count();
    if containers > MAX_MIME_CONTAINERS {
        return ctx.error(
            source,
            Code::TooLarge,
            format!("the mail message names more than {MAX_MIME_CONTAINERS} multiparts or attached messages (MAX_MIME_CONTAINERS)"),
        );
    }
    // mail-parser 0.11.9 has a `debug_assert!` that a broken multipart/report reaches: where
    // debug assertions are on (tests, fuzzing) it panics. A failure inside the parser is a
    // malformed message, never a crash of the walk.
    let parsed = std::panic::catch_unwind(|| MessageParser::default().parse(bytes));
    let Ok(parsed) = parsed else {
        return ctx.error(
            source,
            Code::Malformed,
            "the mail parser failed on this message",
        );
    };
    let Some(message) = parsed else {
        return ctx.error(source, Code::Malformed, "not a valid mail message");
    };
    let before = ctx.out.len();
    mail_part(&message, 0, source, depth, ctx);
    if ctx.out.len() == before {
        ctx.error(
            source,
            Code::Unrecognized,
            "the mail message holds no TLS or DMARC report",
        );
    }
}

/// The transfer-decoded bytes of a text part, before any charset conversion: a gzip or zip that a sender
/// labelled `text/*` survives. `None` for other parts, or when the raw body cannot be decoded.
fn text_as_bytes(
    message: &mail_parser::Message<'_>,
    part: &mail_parser::MessagePart<'_>,
) -> Option<Vec<u8>> {
    use mail_parser::decoders::{base64::base64_decode, quoted_printable::quoted_printable_decode};
    if !matches!(part.body, PartType::Text(_)) {
        return None;
    }
    let raw = message
        .raw_message
        .get(part.offset_body as usize..part.offset_end as usize)?;
    match part.encoding {
        mail_parser::Encoding::Base64 => base64_decode(raw),
        mail_parser::Encoding::QuotedPrintable => quoted_printable_decode(raw),
        mail_parser::Encoding::None => None,
    }
    .filter(|bytes| matches!(sniff(bytes), Sniff::Gzip | Sniff::Zip))
}

/// Walks part `index` of `message` and, for a multipart, its children (`depth` counts the nesting).
fn mail_part(
    message: &mail_parser::Message<'_>,
    index: usize,
    source: &str,
    depth: usize,
    ctx: &mut Ctx<'_>,
) {
    let Some(part) = message.parts.get(index) else {
        return;
    };
    if ctx.too_deep(source, depth) {
        return;
    }
    let label = format!("{source}#{index}");
    match &part.body {
        PartType::Multipart(children) => {
            for &child in children {
                if !ctx.count(&label) {
                    return;
                }
                mail_part(message, child as usize, source, depth + 1, ctx);
            }
        }
        PartType::Message(inner) => {
            if !ctx.count(&label) {
                return;
            }
            mail_part(inner, 0, &label, depth + 1, ctx);
        }
        _ => {
            if let Some(ct) = part.content_type() {
                let ctype = ct.ctype().to_ascii_lowercase();
                let subtype = ct.subtype().unwrap_or("").to_ascii_lowercase();
                if skipped_type(&ctype, &subtype) {
                    return;
                }
            }
            let decoded = text_as_bytes(message, part);
            let contents = decoded.as_deref().unwrap_or_else(|| part.contents());
            // The top-level part of a single-part message is the message itself: label it as such.
            let label = if index == 0 { source.to_owned() } else { label };
            match sniff(contents) {
                Sniff::Gzip | Sniff::Zip | Sniff::Json | Sniff::Xml => {
                    visit(contents, &label, depth + 1, ctx)
                }
                // Text bodies and anything else that does not look like a report are not reports.
                _ => {}
            }
        }
    }
}
