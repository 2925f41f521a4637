//! The output contract of `mtasts report` (`shared/spec/report-output.md`): one JSON object per
//! report found and one per unreadable input.
//!
//! [`output`] borrows a [`Found`] and serializes it with the contract's field names in the contract's
//! order (struct declaration order; the workspace's `serde_json` has no `preserve_order`, so a
//! [`serde_json::Value`] sorts its keys — [`to_value`] is for inspecting, [`write_jsonl`] for printing).
//! Nothing is copied: a DMARC report's records are serialized one by one as they are written.
//!
//! Choices the contract leaves open:
//! - every key is always present, `null` where the report leaves a value out (a script tests a value,
//!   never whether a key exists);
//! - `dispositions` always has `pass` (RFC 9990's fourth disposition) beside `none`, `quarantine` and
//!   `reject`, 0 when no message had it — adding a field is allowed, and a fixed shape is easier to use;
//! - DMARC `organization` is `null` when the report has none (noted as `missing-organization`);
//! - TLS-RPT policy and result types are written as sent (the contract keeps unknown ones as sent);
//!   DMARC words are lowercased by the reader already.

use std::fmt::Display;
use std::io::{self, Write};

use mtasts_proto::dmarc::{self, Record};
use mtasts_proto::tlsrpt::report::{FailureDetail, PolicyReport, TlsReport, UtcTime};
use serde::{Serialize, Serializer};

use crate::walk::{Found, FoundError};

/// The contract's object for `found`, ready to serialize in the contract's key order. With `summary`,
/// a DMARC report's `records` key is left out (the counts stay).
pub fn output(found: &Found, summary: bool) -> Output<'_> {
    match found {
        Found::TlsRpt { source, report, .. } => Output::TlsRpt(TlsRptOut::new(source, report)),
        Found::Dmarc { source, report, .. } => {
            Output::Dmarc(DmarcOut::new(source, report, summary))
        }
        Found::Error(error) => Output::Error(ErrorOut::new(error)),
    }
}

/// The contract's object for `found` as a [`serde_json::Value`] (keys sorted; see the module doc).
pub fn to_value(found: &Found, summary: bool) -> serde_json::Value {
    // Invariant: every object here has string keys and finite numbers, the only things
    // serde_json refuses, so serializing into a Value cannot fail.
    serde_json::to_value(output(found, summary)).expect("the output objects always serialize")
}

/// Writes the contract's object for `found` as one line of JSON (JSON Lines), keys in contract order.
///
/// # Errors
///
/// The error of `out` (a broken pipe, a full disk).
pub fn write_jsonl(found: &Found, summary: bool, out: &mut impl Write) -> io::Result<()> {
    serde_json::to_writer(&mut *out, &output(found, summary))?;
    out.write_all(b"\n")
}

/// One contract object, borrowing from the [`Found`] it describes.
#[derive(Debug, Serialize)]
#[serde(untagged)]
#[non_exhaustive]
pub enum Output<'a> {
    /// `{"kind": "tlsrpt", …}`.
    TlsRpt(TlsRptOut<'a>),
    /// `{"kind": "dmarc", …}`.
    Dmarc(DmarcOut<'a>),
    /// `{"kind": "error", …}`.
    Error(ErrorOut<'a>),
}

/// The contract's SMTP TLS report object.
#[derive(Debug, Serialize)]
pub struct TlsRptOut<'a> {
    kind: &'static str,
    source: &'a str,
    organization: &'a str,
    report_id: &'a str,
    contact: Option<&'a str>,
    #[serde(serialize_with = "display")]
    begin: UtcTime,
    #[serde(serialize_with = "display")]
    end: UtcTime,
    policies: Each<'a, PolicyReport, PolicyOut<'a>>,
    notes: Vec<NoteOut<'a>>,
}

impl<'a> TlsRptOut<'a> {
    fn new(source: &'a str, report: &'a TlsReport) -> Self {
        Self {
            kind: "tlsrpt",
            source,
            organization: &report.organization,
            report_id: &report.report_id,
            contact: report.contact.as_deref(),
            begin: report.begin,
            end: report.end,
            policies: Each::new(&report.policies, PolicyOut::new),
            notes: report
                .notes
                .iter()
                .map(|n| NoteOut {
                    code: n.code.as_str(),
                    message: &n.message,
                })
                .collect(),
        }
    }
}

#[derive(Debug, Serialize)]
struct PolicyOut<'a> {
    #[serde(rename = "type")]
    policy_type: &'a str,
    domain: Option<&'a str>,
    strings: &'a [String],
    mx: &'a [String],
    success: u64,
    failure: u64,
    failures: Each<'a, FailureDetail, FailureOut<'a>>,
}

impl<'a> PolicyOut<'a> {
    fn new(p: &'a PolicyReport) -> Self {
        Self {
            policy_type: p.policy_type.as_str(),
            domain: p.domain.as_deref(),
            strings: &p.strings,
            mx: &p.mx,
            success: p.success,
            failure: p.failure,
            failures: Each::new(&p.failures, FailureOut::new),
        }
    }
}

#[derive(Debug, Serialize)]
struct FailureOut<'a> {
    result: &'a str,
    count: u64,
    sending_ip: Option<&'a str>,
    receiving_mx: Option<&'a str>,
    receiving_helo: Option<&'a str>,
    receiving_ip: Option<&'a str>,
    additional_info: Option<&'a str>,
    reason_code: Option<&'a str>,
}

impl<'a> FailureOut<'a> {
    fn new(f: &'a FailureDetail) -> Self {
        Self {
            result: f.result.as_str(),
            count: f.count,
            sending_ip: f.sending_ip.as_deref(),
            receiving_mx: f.receiving_mx.as_deref(),
            receiving_helo: f.receiving_helo.as_deref(),
            receiving_ip: f.receiving_ip.as_deref(),
            additional_info: f.additional_info.as_deref(),
            reason_code: f.reason_code.as_deref(),
        }
    }
}

/// The contract's DMARC aggregate report object.
#[derive(Debug, Serialize)]
pub struct DmarcOut<'a> {
    kind: &'static str,
    source: &'a str,
    organization: Option<&'a str>,
    report_id: &'a str,
    contact: Option<&'a str>,
    #[serde(serialize_with = "display")]
    begin: UnixTime,
    #[serde(serialize_with = "display")]
    end: UnixTime,
    policy: PolicyPublishedOut<'a>,
    rows: u64,
    messages: u64,
    dmarc_pass: u64,
    dkim_pass: u64,
    spf_pass: u64,
    dispositions: DispositionsOut,
    #[serde(skip_serializing_if = "Option::is_none")]
    records: Option<Each<'a, Record, RecordOut<'a>>>,
    notes: Vec<NoteOut<'a>>,
}

impl<'a> DmarcOut<'a> {
    fn new(source: &'a str, report: &'a dmarc::Report, summary: bool) -> Self {
        let p = &report.policy;
        let d = report.dispositions;
        Self {
            kind: "dmarc",
            source,
            organization: report.organization.as_deref(),
            report_id: &report.report_id,
            contact: report.contact.as_deref(),
            begin: UnixTime(report.begin),
            end: UnixTime(report.end),
            policy: PolicyPublishedOut {
                domain: p.domain.as_deref(),
                p: p.p.as_deref(),
                sp: p.sp.as_deref(),
                np: p.np.as_deref(),
                adkim: p.adkim.as_deref(),
                aspf: p.aspf.as_deref(),
                pct: p.pct,
                testing: p.testing.as_deref(),
            },
            rows: report.rows,
            messages: report.messages,
            dmarc_pass: report.dmarc_pass,
            dkim_pass: report.dkim_pass,
            spf_pass: report.spf_pass,
            dispositions: DispositionsOut {
                none: d.none,
                quarantine: d.quarantine,
                reject: d.reject,
                pass: d.pass,
            },
            records: (!summary).then(|| Each::new(&report.records, RecordOut::new)),
            notes: report
                .notes
                .iter()
                .map(|n| NoteOut {
                    code: n.code.as_str(),
                    message: &n.message,
                })
                .collect(),
        }
    }
}

#[derive(Debug, Serialize)]
struct PolicyPublishedOut<'a> {
    domain: Option<&'a str>,
    p: Option<&'a str>,
    sp: Option<&'a str>,
    np: Option<&'a str>,
    adkim: Option<&'a str>,
    aspf: Option<&'a str>,
    pct: Option<u8>,
    testing: Option<&'a str>,
}

#[derive(Debug, Serialize)]
struct DispositionsOut {
    none: u64,
    quarantine: u64,
    reject: u64,
    pass: u64,
}

#[derive(Debug, Serialize)]
struct RecordOut<'a> {
    source_ip: &'a str,
    count: u64,
    disposition: &'static str,
    dkim: Option<&'a str>,
    spf: Option<&'a str>,
    header_from: Option<&'a str>,
    envelope_from: Option<&'a str>,
    envelope_to: Option<&'a str>,
    reasons: Vec<ReasonOut<'a>>,
    auth_dkim: Vec<AuthDkimOut<'a>>,
    auth_spf: Vec<AuthSpfOut<'a>>,
}

impl<'a> RecordOut<'a> {
    fn new(r: &'a Record) -> Self {
        Self {
            source_ip: &r.source_ip,
            count: r.count,
            disposition: r.disposition.as_str(),
            dkim: r.dkim.as_deref(),
            spf: r.spf.as_deref(),
            header_from: r.header_from.as_deref(),
            envelope_from: r.envelope_from.as_deref(),
            envelope_to: r.envelope_to.as_deref(),
            reasons: r
                .reasons
                .iter()
                .map(|x| ReasonOut {
                    kind: x.kind.as_deref(),
                    comment: x.comment.as_deref(),
                })
                .collect(),
            auth_dkim: r
                .auth_dkim
                .iter()
                .map(|x| AuthDkimOut {
                    domain: x.domain.as_deref(),
                    selector: x.selector.as_deref(),
                    result: x.result.as_deref(),
                })
                .collect(),
            auth_spf: r
                .auth_spf
                .iter()
                .map(|x| AuthSpfOut {
                    domain: x.domain.as_deref(),
                    scope: x.scope.as_deref(),
                    result: x.result.as_deref(),
                })
                .collect(),
        }
    }
}

#[derive(Debug, Serialize)]
struct ReasonOut<'a> {
    #[serde(rename = "type")]
    kind: Option<&'a str>,
    comment: Option<&'a str>,
}

#[derive(Debug, Serialize)]
struct AuthDkimOut<'a> {
    domain: Option<&'a str>,
    selector: Option<&'a str>,
    result: Option<&'a str>,
}

#[derive(Debug, Serialize)]
struct AuthSpfOut<'a> {
    domain: Option<&'a str>,
    scope: Option<&'a str>,
    result: Option<&'a str>,
}

#[derive(Debug, Serialize)]
struct NoteOut<'a> {
    code: &'static str,
    message: &'a str,
}

/// The contract's object for an input that could not be read.
#[derive(Debug, Serialize)]
pub struct ErrorOut<'a> {
    kind: &'static str,
    source: &'a str,
    code: &'static str,
    error: &'a str,
}

impl<'a> ErrorOut<'a> {
    fn new(e: &'a FoundError) -> Self {
        Self {
            kind: "error",
            source: &e.source,
            code: e.code.as_str(),
            error: &e.message,
        }
    }
}

/// A list serialized by mapping each item as it is written, so that a report's 50,000 records are
/// never copied into a second list.
struct Each<'a, T, O> {
    items: &'a [T],
    map: fn(&'a T) -> O,
}

impl<'a, T, O> Each<'a, T, O> {
    fn new(items: &'a [T], map: fn(&'a T) -> O) -> Self {
        Self { items, map }
    }
}

impl<T, O: Serialize> Serialize for Each<'_, T, O> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.items.iter().map(self.map))
    }
}

impl<T, O> std::fmt::Debug for Each<'_, T, O> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "[{} items]", self.items.len())
    }
}

fn display<S: Serializer>(value: &impl Display, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.collect_str(value)
}

/// A DMARC `date_range` bound (Unix seconds), written as RFC 3339 in UTC. The DMARC reader refuses
/// timestamps past [`dmarc::MAX_TIMESTAMP`] (9999-12-31T23:59:59Z), the last instant a [`UtcTime`]
/// holds, so the bare number is never written in practice.
#[derive(Clone, Copy, Debug)]
struct UnixTime(u64);

impl Display for UnixTime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match i64::try_from(self.0)
            .ok()
            .and_then(UtcTime::from_unix_seconds)
        {
            Some(time) => time.fmt(f),
            None => self.0.fmt(f),
        }
    }
}
