//! The streaming reader: quick-xml events folded straight into a [`Report`], one element path at a time,
//! with no document tree and (in summary mode) no per-record memory kept after its `</record>`.

mod path;

use std::io::{BufRead, Cursor, Read};

use quick_xml::Reader;
use quick_xml::events::Event;

use self::path::Path;
use super::report::{
    AuthDkim, AuthSpf, Disposition, Note, NoteCode, PolicyPublished, Reason, Record, Report,
};
use super::{
    DmarcError, MAX_DEPTH, MAX_ITEMS_PER_RECORD, MAX_NOTES, MAX_RECORDS, MAX_ROW_COUNT,
    MAX_TEXT_BYTES, MAX_TIMESTAMP, REPORT_MAX_BYTES,
};

/// Whether [`parse`] keeps the records or only their counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Mode {
    /// Counts only; memory does not grow with the number of records.
    #[default]
    Summary,
    /// Counts and records: the first [`MAX_RECORDS`](super::MAX_RECORDS) records are kept, the counts
    /// include every record, and a `records-truncated` note says when some were dropped.
    Full,
}

/// Reads one DMARC aggregate report from its XML bytes (a UTF-8 BOM is allowed), at most
/// [`REPORT_MAX_BYTES`](super::REPORT_MAX_BYTES) of them.
///
/// # Errors
/// [`DmarcError`]: not well-formed XML, a DOCTYPE, not a `feedback` document, missing, repeated or invalid
/// required values, or a limit reached.
pub fn parse(xml: &[u8], mode: Mode) -> Result<Report, DmarcError> {
    parse_within(xml, mode, REPORT_MAX_BYTES as u64)
}

/// As [`parse`], with the caller's size limit instead of the default (`--max-report-bytes`).
///
/// # Errors
/// As [`parse`].
pub fn parse_within(xml: &[u8], mode: Mode, max_bytes: u64) -> Result<Report, DmarcError> {
    if xml.len() as u64 > max_bytes {
        return Err(too_large("the XML document", max_bytes));
    }
    // The document is whole: quick-xml's slice reader lends each event out of it, where the stream
    // reader would copy every event into a buffer first. The events and offsets are the same.
    let mut state = State {
        mode,
        ..State::default()
    };
    let mut reader = Reader::from_reader(xml.strip_prefix(BYTE_ORDER_MARK).unwrap_or(xml));
    loop {
        let offset = reader.buffer_position();
        let event = reader
            .read_event()
            .map_err(|e| read_error(e, reader.error_position(), offset))?;
        if state.apply(event, offset)? {
            return state.finish(offset);
        }
    }
}

/// Reads one DMARC aggregate report from a byte stream (for example a decompressor), event by event: the
/// document is never held whole, and at most [`REPORT_MAX_BYTES`](super::REPORT_MAX_BYTES) are read.
///
/// # Errors
/// As [`parse`], and [`DmarcError::Read`] when the stream itself fails.
pub fn parse_reader<R: BufRead>(input: R, mode: Mode) -> Result<Report, DmarcError> {
    parse_reader_within(input, mode, REPORT_MAX_BYTES as u64)
}

/// As [`parse_reader`], reading at most `max_bytes` (`--max-report-bytes`).
///
/// # Errors
/// As [`parse_reader`].
pub fn parse_reader_within<R: BufRead>(
    input: R,
    mode: Mode,
    max_bytes: u64,
) -> Result<Report, DmarcError> {
    let limit = max_bytes;
    let mut state = State {
        mode,
        ..State::default()
    };
    let input = without_byte_order_mark(input)?;
    let mut reader = Reader::from_reader(input.take(limit + 1));
    let mut buf = Vec::new();
    loop {
        buf.clear();
        let offset = reader.buffer_position();
        let event = reader
            .read_event_into(&mut buf)
            .map_err(|e| read_error(e, reader.error_position(), offset));
        if reader.buffer_position() > limit {
            return Err(too_large("the XML document", limit));
        }
        if state.apply(event?, offset)? {
            return state.finish(offset);
        }
    }
}

/// The UTF-8 byte order mark, which may start a document.
const BYTE_ORDER_MARK: &[u8] = b"\xEF\xBB\xBF";

/// A failure of quick-xml as the reader's error: the stream's own failure, or not well-formed XML at the
/// place quick-xml stopped (`error_position`), never before the event began (`offset`).
fn read_error(e: quick_xml::Error, error_position: u64, offset: u64) -> DmarcError {
    match e {
        quick_xml::Error::Io(io) => DmarcError::Read(io.to_string()),
        e => DmarcError::Malformed {
            offset: error_position.max(offset),
            reason: e.to_string(),
        },
    }
}

/// Whether `text` is empty once trimmed, answered without `trim` for the common all-ASCII case (the
/// indentation between elements).
fn blank(text: &str) -> bool {
    text.bytes().all(|b| b.is_ascii_whitespace()) || text.trim().is_empty()
}

/// The five predefined XML entities.
fn predefined(name: &str) -> Option<char> {
    match name {
        "lt" => Some('<'),
        "gt" => Some('>'),
        "amp" => Some('&'),
        "apos" => Some('\''),
        "quot" => Some('"'),
        _ => None,
    }
}

/// `input` without a leading UTF-8 byte order mark. quick-xml recognises the mark only when it
/// arrives in one read, so a stream whose first reads are shorter (a decompressor, a slow pipe)
/// would make it text outside the root element: the first three bytes are read here, whole.
fn without_byte_order_mark<R: BufRead>(
    mut input: R,
) -> Result<std::io::Chain<Cursor<Vec<u8>>, R>, DmarcError> {
    let mut head = [0u8; 3];
    let mut got = 0;
    while got < head.len() {
        match input.read(&mut head[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(DmarcError::Read(e.to_string())),
        }
    }
    let kept = if &head[..got] == BYTE_ORDER_MARK {
        &[][..]
    } else {
        &head[..got]
    };
    Ok(Cursor::new(kept.to_vec()).chain(input))
}

fn too_large(what: &'static str, limit: impl TryInto<u64>) -> DmarcError {
    DmarcError::TooLarge {
        what,
        limit: limit.try_into().unwrap_or(u64::MAX),
    }
}

fn bad(field: &'static str, value: &str) -> DmarcError {
    DmarcError::BadValue {
        field,
        value: value.chars().take(64).collect(),
    }
}

/// A value that may be given once: `seen` tells a repeat from a first empty value.
#[derive(Debug, Default)]
struct Once {
    seen: bool,
    value: Option<String>,
}

impl Once {
    fn set(&mut self, field: &'static str, text: &str) -> Result<(), DmarcError> {
        if std::mem::replace(&mut self.seen, true) {
            return Err(DmarcError::Duplicate(field));
        }
        let text = text.trim();
        self.value = (!text.is_empty()).then(|| text.to_owned());
        Ok(())
    }
}

/// The record being read.
#[derive(Debug, Default)]
struct RecordDraft {
    source_ip: Once,
    count: Once,
    disposition: Once,
    dkim: Once,
    spf: Once,
    header_from: Once,
    envelope_from: Once,
    envelope_to: Once,
    reasons: Vec<Reason>,
    auth_dkim: Vec<AuthDkim>,
    auth_spf: Vec<AuthSpf>,
    reason: [Once; 2],
    dkim_item: [Once; 3],
    spf_item: [Once; 3],
}

/// Everything the reader tracks between events.
#[derive(Debug, Default)]
struct State {
    mode: Mode,
    path: Path,
    text: String,
    root_done: bool,
    org: Once,
    email: Once,
    report_id: Once,
    begin: Once,
    end: Once,
    version: Once,
    policy_seen: bool,
    policy: [Once; 8],
    record: Option<RecordDraft>,
    report: Report,
}

/// `policy_published` children (local name, path for errors), in the order of `State::policy`.
const POLICY_FIELDS: [(&str, &str); 8] = [
    ("domain", "policy_published/domain"),
    ("p", "policy_published/p"),
    ("sp", "policy_published/sp"),
    ("np", "policy_published/np"),
    ("adkim", "policy_published/adkim"),
    ("aspf", "policy_published/aspf"),
    ("pct", "policy_published/pct"),
    ("testing", "policy_published/testing"),
];

/// `auth_results/dkim` children, in the order of `RecordDraft::dkim_item`.
const DKIM_FIELDS: [(&str, &str); 3] = [
    ("domain", "record/auth_results/dkim/domain"),
    ("selector", "record/auth_results/dkim/selector"),
    ("result", "record/auth_results/dkim/result"),
];

/// `auth_results/spf` children, in the order of `RecordDraft::spf_item`.
const SPF_FIELDS: [(&str, &str); 3] = [
    ("domain", "record/auth_results/spf/domain"),
    ("scope", "record/auth_results/spf/scope"),
    ("result", "record/auth_results/spf/result"),
];

/// Sets the slot of `leaf` in a group of once-only children described by `fields`; other leaves are skipped.
fn set_leaf<const N: usize>(
    slots: &mut [Once; N],
    fields: &[(&str, &'static str); N],
    leaf: &str,
    text: &str,
) -> Result<(), DmarcError> {
    match fields.iter().position(|(name, _)| *name == leaf) {
        Some(i) => slots[i].set(fields[i].1, text),
        None => Ok(()),
    }
}

impl State {
    fn note(&mut self, code: NoteCode, message: String) {
        let notes = &mut self.report.notes;
        if notes.len() < MAX_NOTES && !notes.iter().any(|n| n.code == code) {
            notes.push(Note { code, message });
        }
    }

    /// Lowercases a result or policy word, noting the first one that was not.
    fn lower(&mut self, field: &'static str, value: Option<String>) -> Option<String> {
        let mut value = value?;
        if value.bytes().any(|b| b.is_ascii_uppercase()) {
            self.note(
                NoteCode::UppercaseWord,
                format!("{field} {value:?} was not in lowercase; read as lowercase"),
            );
        }
        value.make_ascii_lowercase();
        Some(value)
    }

    /// Folds one event (which began at `offset`) into the state; `true` at the end of the input.
    #[inline(always)]
    fn apply(&mut self, event: Event<'_>, offset: u64) -> Result<bool, DmarcError> {
        match event {
            Event::Start(e) => self.start(e.local_name().as_ref(), offset)?,
            Event::Empty(e) => {
                self.start(e.local_name().as_ref(), offset)?;
                self.end(offset)?;
            }
            Event::End(_) => self.end(offset)?,
            Event::Text(t) => self.text(&t, offset)?,
            Event::CData(t) => self.text(&t, offset)?,
            Event::GeneralRef(r) => {
                let resolved = match r.resolve_char_ref() {
                    Ok(Some(c)) => c,
                    Ok(None) => {
                        predefined(&r).ok_or_else(|| DmarcError::UnknownEntity(r.to_string()))?
                    }
                    Err(e) => {
                        return Err(DmarcError::Malformed {
                            offset,
                            reason: e.to_string(),
                        });
                    }
                };
                self.text(resolved.encode_utf8(&mut [0; 4]), offset)?;
            }
            Event::Decl(d) => {
                if let Some(Ok(enc)) = d.encoding() {
                    let enc = enc.to_ascii_lowercase();
                    if !matches!(enc.as_str(), "utf-8" | "utf8" | "us-ascii" | "ascii") {
                        return Err(DmarcError::UnsupportedEncoding(enc));
                    }
                }
            }
            Event::DocType(_) => return Err(DmarcError::Doctype),
            Event::Comment(_) | Event::PI(_) => {}
            Event::Eof => return Ok(true),
        }
        Ok(false)
    }

    fn start(&mut self, name: &str, offset: u64) -> Result<(), DmarcError> {
        if self.root_done {
            return Err(DmarcError::Malformed {
                offset,
                reason: "an element after the root element".to_owned(),
            });
        }
        if self.path.depth() >= MAX_DEPTH {
            return Err(too_large("element nesting", MAX_DEPTH));
        }
        if name.len() > MAX_TEXT_BYTES {
            return Err(too_large("an element name", MAX_TEXT_BYTES));
        }
        if self.path.depth() == 0 && name != "feedback" {
            return Err(DmarcError::NotAReport(name.chars().take(64).collect()));
        }
        if !blank(&self.text) {
            self.stray();
        }
        self.text.clear();
        self.path.push(name);
        let open = self.path.snapshot();
        match open.below_root() {
            ["policy_published"] if std::mem::replace(&mut self.policy_seen, true) => {
                return Err(DmarcError::Duplicate("policy_published"));
            }
            ["record"] => self.record = Some(RecordDraft::default()),
            ["record", "row", "policy_evaluated", "reason"] => {
                if let Some(r) = self.record.as_mut() {
                    r.reason = Default::default();
                }
            }
            ["record", "auth_results", "dkim"] => {
                if let Some(r) = self.record.as_mut() {
                    r.dkim_item = Default::default();
                }
            }
            ["record", "auth_results", "spf"] => {
                if let Some(r) = self.record.as_mut() {
                    r.spf_item = Default::default();
                }
            }
            _ => {}
        }
        Ok(())
    }

    fn stray(&mut self) {
        let at = self.path.innermost().unwrap_or_default().to_owned();
        self.note(
            NoteCode::StrayText,
            format!("text between elements inside <{at}> was ignored"),
        );
    }

    fn text(&mut self, text: &str, offset: u64) -> Result<(), DmarcError> {
        if self.path.depth() == 0 {
            if blank(text) {
                return Ok(());
            }
            return Err(DmarcError::Malformed {
                offset,
                reason: "text outside the root element".to_owned(),
            });
        }
        if self.text.len() + text.len() > MAX_TEXT_BYTES {
            return Err(too_large("the text of one element", MAX_TEXT_BYTES));
        }
        self.text.push_str(text);
        Ok(())
    }

    fn end(&mut self, offset: u64) -> Result<(), DmarcError> {
        if self.path.depth() == 0 {
            return Err(DmarcError::Malformed {
                offset,
                reason: "an end tag without a start tag".to_owned(),
            });
        }
        let open = self.path.snapshot();
        let had_child = self.path.innermost_has_child();
        // The text buffer is lent out and given back, so its allocation serves every element.
        let text = std::mem::take(&mut self.text);
        if had_child && !blank(&text) {
            self.stray();
        }
        self.path.pop();
        let done = if self.path.depth() == 0 {
            self.root_done = true;
            Ok(())
        } else {
            self.element(open.below_root(), if had_child { "" } else { &text })
        };
        self.text = text;
        self.text.clear();
        done
    }

    /// An element below the root has ended: `rel` is its path below `feedback`, `text` its text (empty
    /// when it had child elements).
    fn element(&mut self, rel: &[&str], text: &str) -> Result<(), DmarcError> {
        match rel {
            ["report_metadata", "org_name"] => self.org.set("report_metadata/org_name", text)?,
            ["report_metadata", "email"] => self.email.set("report_metadata/email", text)?,
            ["report_metadata", "report_id"] => {
                self.report_id.set("report_metadata/report_id", text)?
            }
            ["report_metadata", "date_range", "begin"] => {
                self.begin.set("report_metadata/date_range/begin", text)?;
            }
            ["report_metadata", "date_range", "end"] => {
                self.end.set("report_metadata/date_range/end", text)?;
            }
            ["version"] => self.version.set("version", text)?,
            ["policy_published", leaf] => set_leaf(&mut self.policy, &POLICY_FIELDS, leaf, text)?,
            ["record"] => self.finish_record()?,
            ["record", rest @ ..] => {
                let Some(r) = self.record.as_mut() else {
                    return Ok(());
                };
                record_leaf(r, rest, text)?;
            }
            _ => {}
        }
        Ok(())
    }

    fn finish_record(&mut self) -> Result<(), DmarcError> {
        let Some(d) = self.record.take() else {
            return Ok(());
        };
        let source_ip = d
            .source_ip
            .value
            .ok_or(DmarcError::Missing("record/row/source_ip"))?;
        if source_ip.parse::<std::net::IpAddr>().is_err() {
            self.note(
                NoteCode::BadSourceIp,
                format!(
                    "source_ip {:?} is not an IP address; kept as sent",
                    cut(&source_ip)
                ),
            );
        }
        let count_text = d
            .count
            .value
            .ok_or(DmarcError::Missing("record/row/count"))?;
        let count = count_text
            .parse::<u64>()
            .ok()
            .filter(|c| *c <= MAX_ROW_COUNT)
            .ok_or_else(|| bad("record/row/count", &count_text))?;
        let disposition_text = d.disposition.value.ok_or(DmarcError::Missing(
            "record/row/policy_evaluated/disposition",
        ))?;
        let disposition = Disposition::parse(&disposition_text)
            .ok_or_else(|| bad("record/row/policy_evaluated/disposition", &disposition_text))?;
        if disposition_text.bytes().any(|b| b.is_ascii_uppercase()) {
            self.lower(
                "record/row/policy_evaluated/disposition",
                Some(disposition_text),
            );
        }
        let dkim = self.lower("record/row/policy_evaluated/dkim", d.dkim.value);
        let spf = self.lower("record/row/policy_evaluated/spf", d.spf.value);
        let dkim_pass = dkim.as_deref() == Some("pass");
        let spf_pass = spf.as_deref() == Some("pass");
        let overflow = || DmarcError::TooLarge {
            what: "the sum of row counts",
            limit: u64::MAX,
        };
        let r = &mut self.report;
        r.rows = r.rows.checked_add(1).ok_or_else(overflow)?;
        r.messages = r.messages.checked_add(count).ok_or_else(overflow)?;
        if dkim_pass || spf_pass {
            r.dmarc_pass += count; // never above messages
        }
        if dkim_pass {
            r.dkim_pass += count; // never above messages
        }
        if spf_pass {
            r.spf_pass += count; // never above messages
        }
        r.dispositions
            .add(disposition, count)
            .ok_or_else(overflow)?;
        // Words are lowercased (and noted) in both modes, so both carry the same notes.
        let mut reasons = d.reasons;
        for reason in &mut reasons {
            reason.kind = self.lower(
                "record/row/policy_evaluated/reason/type",
                reason.kind.take(),
            );
        }
        let mut auth_dkim = d.auth_dkim;
        for a in &mut auth_dkim {
            a.result = self.lower("record/auth_results/dkim/result", a.result.take());
        }
        let mut auth_spf = d.auth_spf;
        for a in &mut auth_spf {
            a.scope = self.lower("record/auth_results/spf/scope", a.scope.take());
            a.result = self.lower("record/auth_results/spf/result", a.result.take());
        }
        if self.mode == Mode::Full {
            // Past MAX_RECORDS the counts go on and the records are dropped: the report's totals stay
            // exact, and memory stays bounded.
            if self.report.records.len() >= MAX_RECORDS {
                let noted = self
                    .report
                    .notes
                    .iter()
                    .any(|n| n.code == NoteCode::RecordsTruncated);
                if !noted {
                    self.note(
                        NoteCode::RecordsTruncated,
                        format!(
                            "the report has more than {MAX_RECORDS} records; only the first \
                             {MAX_RECORDS} are kept, the counts include all"
                        ),
                    );
                }
                return Ok(());
            }
            self.report.records.push(Record {
                source_ip,
                count,
                disposition,
                dkim,
                spf,
                reasons,
                header_from: d.header_from.value,
                envelope_from: d.envelope_from.value,
                envelope_to: d.envelope_to.value,
                auth_dkim,
                auth_spf,
            });
        }
        Ok(())
    }

    fn finish(mut self, offset: u64) -> Result<Report, DmarcError> {
        if !self.root_done {
            let reason = match self.path.innermost() {
                None => "no root element".to_owned(),
                Some(open) => format!("the input ends inside <{}>", cut(open)),
            };
            return Err(DmarcError::Malformed { offset, reason });
        }
        let report_id = self
            .report_id
            .value
            .take()
            .ok_or(DmarcError::Missing("report_metadata/report_id"))?;
        let begin = timestamp("report_metadata/date_range/begin", self.begin.value.take())?;
        let end = timestamp("report_metadata/date_range/end", self.end.value.take())?;
        if end < begin {
            return Err(bad("report_metadata/date_range/end", &end.to_string()));
        }
        if !self.policy_seen {
            return Err(DmarcError::Missing("policy_published"));
        }
        let [domain, p, sp, np, adkim, aspf, pct, testing] =
            std::mem::take(&mut self.policy).map(|o| o.value);
        let pct = match pct {
            None => None,
            Some(t) => Some(
                t.parse::<u8>()
                    .ok()
                    .filter(|p| *p <= 100)
                    .ok_or_else(|| bad("policy_published/pct", &t))?,
            ),
        };
        let policy = PolicyPublished {
            domain,
            p: self.lower("policy_published/p", p),
            sp: self.lower("policy_published/sp", sp),
            np: self.lower("policy_published/np", np),
            adkim: self.lower("policy_published/adkim", adkim),
            aspf: self.lower("policy_published/aspf", aspf),
            pct,
            testing: self.lower("policy_published/testing", testing),
        };
        let organization = self.org.value.take();
        if organization.is_none() {
            self.note(
                NoteCode::MissingOrganization,
                "report_metadata/org_name is empty or absent".to_owned(),
            );
        }
        let mut report = self.report;
        report.organization = organization;
        report.report_id = report_id;
        report.contact = self.email.value;
        report.begin = begin;
        report.end = end;
        report.version = self.version.value;
        report.policy = policy;
        Ok(report)
    }
}

/// A leaf (or item end) below `record`; `rest` is the path after `record`.
fn record_leaf(r: &mut RecordDraft, rest: &[&str], text: &str) -> Result<(), DmarcError> {
    match rest {
        ["row", "source_ip"] => r.source_ip.set("record/row/source_ip", text)?,
        ["row", "count"] => r.count.set("record/row/count", text)?,
        ["row", "policy_evaluated", "disposition"] => {
            r.disposition
                .set("record/row/policy_evaluated/disposition", text)?;
        }
        ["row", "policy_evaluated", "dkim"] => {
            r.dkim.set("record/row/policy_evaluated/dkim", text)?
        }
        ["row", "policy_evaluated", "spf"] => r.spf.set("record/row/policy_evaluated/spf", text)?,
        ["row", "policy_evaluated", "reason", "type"] => {
            r.reason[0].set("record/row/policy_evaluated/reason/type", text)?;
        }
        ["row", "policy_evaluated", "reason", "comment"] => {
            r.reason[1].set("record/row/policy_evaluated/reason/comment", text)?;
        }
        ["row", "policy_evaluated", "reason"] => {
            let [kind, comment] = std::mem::take(&mut r.reason).map(|o| o.value);
            push(
                &mut r.reasons,
                Reason { kind, comment },
                "reason entries in one record",
            )?;
        }
        ["identifiers", "header_from"] => {
            r.header_from.set("record/identifiers/header_from", text)?
        }
        ["identifiers", "envelope_from"] => {
            r.envelope_from
                .set("record/identifiers/envelope_from", text)?;
        }
        ["identifiers", "envelope_to"] => {
            r.envelope_to.set("record/identifiers/envelope_to", text)?
        }
        ["auth_results", "dkim", leaf] => set_leaf(&mut r.dkim_item, &DKIM_FIELDS, leaf, text)?,
        ["auth_results", "spf", leaf] => set_leaf(&mut r.spf_item, &SPF_FIELDS, leaf, text)?,
        ["auth_results", "dkim"] => {
            let [domain, selector, result] = std::mem::take(&mut r.dkim_item).map(|o| o.value);
            let item = AuthDkim {
                domain,
                selector,
                result,
            };
            push(
                &mut r.auth_dkim,
                item,
                "auth_results/dkim entries in one record",
            )?;
        }
        ["auth_results", "spf"] => {
            let [domain, scope, result] = std::mem::take(&mut r.spf_item).map(|o| o.value);
            let item = AuthSpf {
                domain,
                scope,
                result,
            };
            push(
                &mut r.auth_spf,
                item,
                "auth_results/spf entries in one record",
            )?;
        }
        _ => {}
    }
    Ok(())
}

fn push<T>(list: &mut Vec<T>, item: T, what: &'static str) -> Result<(), DmarcError> {
    if list.len() >= MAX_ITEMS_PER_RECORD {
        return Err(too_large(what, MAX_ITEMS_PER_RECORD));
    }
    list.push(item);
    Ok(())
}

fn timestamp(field: &'static str, text: Option<String>) -> Result<u64, DmarcError> {
    let text = text.ok_or(DmarcError::Missing(field))?;
    text.parse::<u64>()
        .ok()
        .filter(|t| *t <= MAX_TIMESTAMP)
        .ok_or_else(|| bad(field, &text))
}

fn cut(s: &str) -> String {
    s.chars().take(64).collect()
}
