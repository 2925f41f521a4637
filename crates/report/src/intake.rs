//! Storing what was found: the walk's reports and errors into the reports database, counted as new,
//! duplicate or error (`mtasts report import`, `reparse`, `fetch`).
//!
//! [`Intake::input`] takes one input as received (a file, a mail message, standard input): it walks
//! it (on a blocking thread: walking is CPU work), compresses it with gzip, hashes it (SHA-256, the
//! input's identity), renders every report's contract object (`crate::output`, records included),
//! and stores the input, every report and every error in **one transaction**
//! ([`ReportDb::store`]). It returns only once all of it is committed, so a caller that marks the
//! input as done afterwards (an IMAP message flagged) never loses a report: a crash in between
//! stores it again next time, where it counts as a duplicate.
//!
//! [`Intake::reparse`] reads everything again with this version's readers: every stored input is
//! walked again (reports not stored yet are stored — an input an older version could not read
//! becomes reports — and the input's errors are replaced by the new ones), then every stored
//! report's document is read again and its rows rewritten when its contract object changed.

use std::fs;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use aws_lc_rs::digest::{SHA256, digest};
use flate2::Compression;
use flate2::read::GzDecoder;
use flate2::write::GzEncoder;
use mtasts_proto::dmarc::{self, Mode};
use mtasts_proto::tlsrpt::report::TlsReport;
use mtasts_store::reports::{
    Content, Inserted, Kind, NewError, NewInput, NewReport, ReportDb, ReportDbError, StoredInput,
    StoredReport,
};

use crate::walk::{Code, Found, FoundError, Limits, read_capped, walk};

/// Stores inputs into a [`ReportDb`] with fixed [`Limits`] (cheap to clone).
#[derive(Clone, Debug)]
pub struct Intake {
    db: ReportDb,
    limits: Limits,
}

/// What storing one input did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Outcome {
    /// Reports stored for the first time.
    pub new: u64,
    /// Reports stored before (their duplicate count went up).
    pub duplicate: u64,
    /// The pieces that could not be read (stored with the input when it was new).
    pub errors: Vec<FoundError>,
    /// False when the same bytes had been stored before.
    pub input_new: bool,
    /// The stored input's id (the same id when the same bytes arrive again).
    pub input: i64,
    /// The ids of the reports, in the order found, each new or duplicate.
    pub reports: Vec<Inserted>,
}

/// What [`Intake::reparse`] did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Reparsed {
    /// Stored inputs walked again.
    pub inputs: u64,
    /// Reports found in them that were not stored yet (an older version could not read them).
    pub new: u64,
    /// Stored errors before, over all inputs.
    pub errors_before: u64,
    /// Errors now, over all inputs.
    pub errors_after: u64,
    /// Stored reports read again.
    pub reports: u64,
    /// Reports whose contract object changed (rows and rollups rewritten).
    pub updated: u64,
    /// Reports whose document this version cannot read (kept as stored): `(id, why)`.
    pub unreadable: Vec<(i64, String)>,
}

/// An input walked and ready to store (built on a blocking thread).
struct Walked {
    sha256: [u8; 32],
    gzip: Vec<u8>,
    found: Vec<Found>,
    normalized: Vec<Option<String>>,
    /// Each report's document, gzip-compressed (empty for an error).
    documents: Vec<Vec<u8>>,
}

impl Intake {
    /// Stores into `db` with `limits`; DMARC records are always kept (the full mode) and every
    /// report's document too, whatever `limits` says, since storage needs them.
    pub fn new(db: ReportDb, mut limits: Limits) -> Intake {
        limits.keep_raw = true;
        limits.dmarc_mode = Mode::Full;
        Intake { db, limits }
    }

    /// The database.
    pub fn db(&self) -> &ReportDb {
        &self.db
    }

    /// The limits every input is walked with.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Walks `bytes` (one input as received, labelled `source`) and stores it with every report
    /// and error found, as of `received_at` (Unix seconds). Returns once everything is
    /// committed.
    ///
    /// # Errors
    ///
    /// The database's error; then nothing of this input is stored.
    pub async fn input(
        &self,
        bytes: &[u8],
        source: &str,
        received_at: i64,
    ) -> Result<Outcome, ReportDbError> {
        let size = bytes.len() as u64;
        let walked = {
            let bytes = bytes.to_vec();
            let source = source.to_owned();
            let limits = self.limits.clone();
            blocking(move || walk_input(&bytes, &source, &limits)).await?
        };
        let reports = new_reports(&walked.found, &walked.normalized, &walked.documents);
        let errors: Vec<&FoundError> = walked
            .found
            .iter()
            .filter_map(|f| match f {
                Found::Error(e) => Some(e),
                _ => None,
            })
            .collect();
        let new_errors: Vec<NewError<'_>> = errors.iter().map(|e| new_error(e)).collect();
        let stored = self
            .db
            .store(
                &NewInput {
                    sha256: walked.sha256,
                    source,
                    received_at,
                    size,
                    gzip: &walked.gzip,
                },
                &reports,
                &new_errors,
            )
            .await?;
        let new = stored
            .reports
            .iter()
            .filter(|r| matches!(r, Inserted::New(_)))
            .count() as u64;
        Ok(Outcome {
            new,
            duplicate: stored.reports.len() as u64 - new,
            errors: errors.into_iter().cloned().collect(),
            input_new: stored.input_new,
            input: stored.input,
            reports: stored.reports,
        })
    }

    /// Reads every stored input and report again with this version's readers (see the module
    /// docs).
    ///
    /// # Errors
    ///
    /// The database's error; what was rewritten before it stays rewritten (each input and each
    /// report is its own transaction, and reparsing again is harmless).
    pub async fn reparse(&self) -> Result<Reparsed, ReportDbError> {
        let mut out = Reparsed::default();
        for id in self.db.input_ids().await? {
            let Some(input) = self.db.input(id).await? else {
                continue;
            };
            let limits = self.limits.clone();
            let source = input.source.clone();
            let gzip = input.gzip.clone();
            let walked = blocking(move || match gunzip(&gzip, limits.max_input_bytes) {
                // Nothing was kept to read again (a message `fetch` refused before fetching it;
                // an empty file): its stored error stays as it is.
                Ok(bytes) if bytes.is_empty() => None,
                Ok(bytes) => Some(walk_input(&bytes, &source, &limits)),
                Err(message) => Some(Walked {
                    sha256: [0; 32],
                    gzip: Vec::new(),
                    found: vec![Found::Error(FoundError {
                        source: source.clone(),
                        code: Code::Malformed,
                        message,
                    })],
                    normalized: vec![None],
                    documents: vec![Vec::new()],
                }),
            })
            .await?;
            let Some(walked) = walked else {
                continue;
            };
            out.inputs += 1;
            let reports = new_reports(&walked.found, &walked.normalized, &walked.documents);
            let errors: Vec<NewError<'_>> = walked
                .found
                .iter()
                .filter_map(|f| match f {
                    Found::Error(e) => Some(new_error(e)),
                    _ => None,
                })
                .collect();
            out.errors_after += errors.len() as u64;
            let (inserted, before) = self
                .db
                .restore_input(
                    &StoredInput {
                        gzip: Vec::new(),
                        ..input
                    },
                    &reports,
                    &errors,
                )
                .await?;
            out.errors_before += before;
            out.new += inserted
                .iter()
                .filter(|r| matches!(r, Inserted::New(_)))
                .count() as u64;
        }
        for id in self.db.report_ids().await? {
            let Some(stored) = self.db.get(id).await? else {
                continue;
            };
            out.reports += 1;
            let kind = stored.row.kind;
            let source = stored.row.source.clone();
            let stored_document = stored.raw;
            let limits = self.limits.clone();
            let read = blocking(move || {
                let raw = gunzip(&stored_document, limits.max_report_bytes)?;
                let found = read_document(kind, raw, source, &limits)?;
                let prepared = (normalized(&found), document(&found));
                Ok::<_, String>((found, prepared))
            })
            .await?;
            let (found, (normalized, document)) = match read {
                Ok(read) => read,
                Err(why) => {
                    out.unreadable.push((id, why));
                    continue;
                }
            };
            let normalized = [normalized];
            let documents = [document];
            let reports = new_reports(std::slice::from_ref(&found), &normalized, &documents);
            if let Some(report) = reports.first()
                && self.db.replace_report(id, report).await?
            {
                out.updated += 1;
            }
        }
        Ok(out)
    }
}

/// The files below `path` that [`Intake::input`] stores one by one (for a file, itself): every
/// regular file, sorted by name, symbolic links below the top not followed, within
/// [`Limits::max_files`] and [`Limits::max_depth`]; what is past a limit comes back as a
/// `too-large` error instead.
///
/// # Errors
///
/// The I/O error, with the path in its message, when `path` or a directory below it cannot be
/// opened or listed.
pub fn input_files(path: &Path, limits: &Limits) -> io::Result<(Vec<PathBuf>, Vec<FoundError>)> {
    let mut files = Vec::new();
    let mut errors = Vec::new();
    list(path, 0, limits, &mut files, &mut errors)?;
    Ok((files, errors))
}

/// Reads one input file whole, within [`Limits::max_input_bytes`]; a larger one is a
/// `too-large` error (nothing is stored of it).
///
/// # Errors
///
/// The I/O error, with the path in its message.
pub fn read_input(
    reader: impl Read,
    source: &str,
    limits: &Limits,
) -> io::Result<Result<Vec<u8>, FoundError>> {
    let max = limits.max_input_bytes;
    Ok(match read_capped(reader, max)? {
        Some(bytes) => Ok(bytes),
        None => Err(FoundError {
            source: source.to_owned(),
            code: Code::TooLarge,
            message: format!("the input is larger than the {max}-byte limit (max_input_bytes)"),
        }),
    })
}

/// This machine's clock in Unix seconds: when an input arrived (the `now` of
/// [`Intake::input`]); 0 before 1970, `i64::MAX` past it.
pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

fn list(
    path: &Path,
    depth: usize,
    limits: &Limits,
    files: &mut Vec<PathBuf>,
    errors: &mut Vec<FoundError>,
) -> io::Result<()> {
    let with_path = |e: io::Error| io::Error::new(e.kind(), format!("{}: {e}", path.display()));
    let meta = if depth == 0 {
        fs::metadata(path).map_err(with_path)?
    } else {
        fs::symlink_metadata(path).map_err(with_path)?
    };
    if meta.is_dir() {
        if depth > limits.max_depth {
            errors.push(FoundError {
                source: path.display().to_string(),
                code: Code::TooLarge,
                message: format!(
                    "directories nested deeper than {} (max_depth)",
                    limits.max_depth
                ),
            });
            return Ok(());
        }
        let mut entries: Vec<PathBuf> = fs::read_dir(path)
            .map_err(with_path)?
            .map(|e| e.map(|e| e.path()))
            .collect::<io::Result<_>>()
            .map_err(with_path)?;
        entries.sort();
        for entry in entries {
            list(&entry, depth + 1, limits, files, errors)?;
        }
        return Ok(());
    }
    if !meta.is_file() {
        return Ok(());
    }
    if files.len() >= limits.max_files {
        if !errors.iter().any(|e| e.message.contains("(max_files)")) {
            errors.push(FoundError {
                source: path.display().to_string(),
                code: Code::TooLarge,
                message: format!(
                    "more than {} files (max_files); the rest are not read",
                    limits.max_files
                ),
            });
        }
        return Ok(());
    }
    files.push(path.to_path_buf());
    Ok(())
}

/// Runs CPU work on the blocking pool; a panic there (a bug) is an error, not a crash.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, ReportDbError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| ReportDbError::Invalid(format!("reading the input failed: {e}")))
}

fn walk_input(bytes: &[u8], source: &str, limits: &Limits) -> Walked {
    let sha256: [u8; 32] = digest(&SHA256, bytes)
        .as_ref()
        .try_into()
        .unwrap_or([0; 32]);
    let found = walk(bytes, source, limits);
    let normalized = found.iter().map(normalized).collect();
    let documents = found.iter().map(document).collect();
    Walked {
        sha256,
        gzip: gzip(bytes),
        found,
        normalized,
        documents,
    }
}

/// The contract object of a report, records included; `None` for an error.
fn normalized(found: &Found) -> Option<String> {
    match found {
        Found::Error(_) => None,
        // Invariant (see `crate::output::to_value`): the output objects always serialize.
        _ => serde_json::to_string(&crate::output::output(found, false)).ok(),
    }
}

/// A report's document as stored: gzip-compressed (empty for an error).
fn document(found: &Found) -> Vec<u8> {
    match found {
        Found::TlsRpt { raw, .. } | Found::Dmarc { raw, .. } => {
            gzip(raw.as_deref().unwrap_or_default())
        }
        Found::Error(_) => Vec::new(),
    }
}

/// A stored report's document as it was found (decompressed), at most
/// [`Limits::max_report_bytes`]: what `mtasts report show --raw` prints.
///
/// # Errors
///
/// What is wrong with the stored bytes (they do not decompress, or inflate past the limit).
pub fn stored_document(stored: &StoredReport, limits: &Limits) -> Result<Vec<u8>, String> {
    gunzip(&stored.raw, limits.max_report_bytes)
}

/// A stored input (a mail message, a posted body, a file) as it was received
/// (decompressed), at most [`Limits::max_input_bytes`]: how an administrator gets back the
/// mail that held no report.
///
/// # Errors
///
/// What is wrong with the stored bytes (they do not decompress, or inflate past the limit).
pub fn stored_input(stored: &StoredInput, limits: &Limits) -> Result<Vec<u8>, String> {
    gunzip(&stored.gzip, limits.max_input_bytes)
}

fn new_reports<'a>(
    found: &'a [Found],
    normalized: &'a [Option<String>],
    documents: &'a [Vec<u8>],
) -> Vec<NewReport<'a>> {
    found
        .iter()
        .zip(normalized)
        .zip(documents)
        .filter_map(|((f, n), document)| {
            let normalized = n.as_deref()?;
            match f {
                Found::TlsRpt { source, report, .. } => Some(NewReport {
                    source,
                    content: Content::TlsRpt(report),
                    normalized,
                    raw: document,
                }),
                Found::Dmarc { source, report, .. } => Some(NewReport {
                    source,
                    content: Content::Dmarc(report),
                    normalized,
                    raw: document,
                }),
                Found::Error(_) => None,
            }
        })
        .collect()
}

fn new_error(e: &FoundError) -> NewError<'_> {
    NewError {
        source: &e.source,
        code: e.code.as_str(),
        message: &e.message,
    }
}

/// A stored report's document read again by its kind's reader.
fn read_document(
    kind: Kind,
    raw: Vec<u8>,
    source: String,
    limits: &Limits,
) -> Result<Found, String> {
    match kind {
        Kind::TlsRpt => match TlsReport::parse_within(&raw, limits.report_cap()) {
            Ok(report) => Ok(Found::TlsRpt {
                source,
                report: Box::new(report),
                raw: Some(raw),
            }),
            Err(e) => Err(e.to_string()),
        },
        Kind::Dmarc => match dmarc::parse_within(&raw, Mode::Full, limits.max_report_bytes) {
            Ok(report) => Ok(Found::Dmarc {
                source,
                report: Box::new(report),
                raw: Some(raw),
            }),
            Err(e) => Err(e.to_string()),
        },
    }
}

/// `bytes` gzip-compressed (level 6: inputs are mostly text and compress about tenfold).
fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = GzEncoder::new(
        Vec::with_capacity(bytes.len() / 4 + 64),
        Compression::default(),
    );
    // Writing into a Vec cannot fail.
    let _ = encoder.write_all(bytes);
    encoder.finish().unwrap_or_default()
}

/// Stored bytes (an input or a document) decompressed, at most `max` bytes.
fn gunzip(gzip: &[u8], max: u64) -> Result<Vec<u8>, String> {
    match read_capped(GzDecoder::new(gzip).take(max.saturating_add(1)), max) {
        Ok(Some(bytes)) => Ok(bytes),
        Ok(None) => Err(format!("the stored bytes inflate past {max} bytes")),
        Err(e) => Err(format!("the stored bytes do not decompress: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gzip_round_trips_within_the_limit() {
        let data = b"{\"a\": 1}".repeat(1000);
        let packed = gzip(&data);
        assert!(packed.len() < data.len() / 10);
        assert_eq!(gunzip(&packed, 8000).unwrap(), data);
        assert!(gunzip(&packed, 7999).unwrap_err().contains("7999"));
        assert!(gunzip(b"junk", 10).is_err());
    }

    #[test]
    fn a_stored_input_comes_back_as_received() {
        let message = b"From: a@sender.test\r\nSubject: no report\r\n\r\nhello\r\n".repeat(50);
        let stored = StoredInput {
            id: 1,
            source: "smtp".to_owned(),
            received_at: 0,
            gzip: gzip(&message),
        };
        assert_eq!(stored_input(&stored, &Limits::default()).unwrap(), message);
        let small = Limits {
            max_input_bytes: message.len() as u64 - 1,
            ..Limits::default()
        };
        assert!(stored_input(&stored, &small).is_err());
    }
}
