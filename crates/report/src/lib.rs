//! The I/O layer of `mtasts report`: finds SMTP TLS reports (RFC 8460) and DMARC aggregate reports
//! (RFC 7489 Appendix C, RFC 9990) inside the containers they travel in — mail messages (multiparts,
//! base64 / quoted-printable, attached messages), mbox files, gzip, zip — and bare JSON / XML, and hands
//! their bytes to the pure parsers of `mtasts-proto` ([`mtasts_proto::tlsrpt::report::TlsReport::parse`],
//! [`mtasts_proto::dmarc::parse`]).
//!
//! The kind of every piece is decided by its content (gzip and zip magic bytes, `{` for JSON, `<` for XML and
//! then the root element, mail headers, an mbox `From ` line), never by a file name. Every size, count and
//! depth is capped by [`Limits`]; a gzip or zip bomb stops at [`Limits::max_report_bytes`] while inflating,
//! never allocating past it. One bad piece never stops the others: it becomes a [`Found::Error`] with the
//! output contract's error [`Code`] (`shared/spec/report-output.md`).
//!
//! ```
//! use mtasts_report::{Found, Limits, walk};
//! let json = br#"{"organization-name": "Example", "report-id": "r1",
//!   "date-range": {"start-datetime": "2024-03-25T00:00:00Z", "end-datetime": "2024-03-25T23:59:59Z"},
//!   "policies": [{"policy": {"policy-type": "sts", "policy-domain": "example.com"},
//!                 "summary": {"total-successful-session-count": 5, "total-failure-session-count": 0}}]}"#;
//! let found = walk(json, "report.json", &Limits::default());
//! assert!(matches!(&found[..], [Found::TlsRpt { source, .. }] if source == "report.json"));
//! let found = walk(b"\x1f\x8b not really gzip", "x.gz", &Limits::default());
//! assert!(matches!(&found[..], [Found::Error(e)] if e.code.as_str() == "malformed"));
//! ```
//!
//! [`walk_path`] reads a file, or every file below a directory (a Maildir's `cur/` and `new/` included);
//! a bare XML file, or a gzip of one, is read streaming (a DMARC report of a million records in flat
//! memory), with the same items the in-memory [`walk`] gives.
//!
//! Around the walk: [`evidence`] builds what `mtasts_proto::readiness` judges from the stored
//! rows (for `mtasts report summary` and `mtasts serve` alike); [`output`] writes the output contract's JSON objects
//! (`shared/spec/report-output.md`); [`intake`] stores an input with every report and error it
//! holds in the reports database (`mtasts_store::reports`), once, in one transaction, and reads
//! stored inputs again (`reparse`); [`imap`] fetches messages from a mailbox and marks each one only
//! after [`intake`] committed it (`mtasts report fetch`).
//!
//! The walk and the output read no clock and do no logging; [`imap`] logs reconnections and reads
//! the clock to stamp each message it receives. The flags live in the binary.

pub mod evidence;
pub mod imap;
pub mod intake;
pub mod output;
mod path;
mod stream;
mod walk;

pub use path::walk_path;

pub use walk::{
    Code, DEFAULT_MAX_DEPTH, DEFAULT_MAX_FILES, DEFAULT_MAX_INPUT_BYTES, DEFAULT_MAX_PARTS,
    DEFAULT_MAX_REPORT_BYTES, DEFAULT_MAX_TOTAL_BYTES, DEFAULT_MAX_ZIP_ENTRIES, Found, FoundError,
    Limits, MAX_MIME_CONTAINERS, walk,
};
