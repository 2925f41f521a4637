//! The values the reports database takes and returns.

use std::fmt;
use std::str::FromStr;

use mtasts_proto::dmarc;
use mtasts_proto::tlsrpt::report::TlsReport;

/// The kind of a report.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    /// An SMTP TLS report (RFC 8460).
    TlsRpt,
    /// A DMARC aggregate report (RFC 7489 Appendix C, RFC 9990).
    Dmarc,
}

impl Kind {
    /// The contract's word: `tlsrpt` or `dmarc` (also what the database stores).
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::TlsRpt => "tlsrpt",
            Kind::Dmarc => "dmarc",
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A word other than `tlsrpt` or `dmarc`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown report kind {0:?}: expected tlsrpt or dmarc")]
pub struct UnknownKind(pub String);

impl FromStr for Kind {
    type Err = UnknownKind;

    fn from_str(s: &str) -> Result<Kind, UnknownKind> {
        match s {
            "tlsrpt" => Ok(Kind::TlsRpt),
            "dmarc" => Ok(Kind::Dmarc),
            other => Err(UnknownKind(other.chars().take(32).collect())),
        }
    }
}

/// Which reports a read looks at; every field `None` means all.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Filter {
    /// Only reports naming this domain (a TLS policy domain or DMARC `policy_published/domain`),
    /// compared lowercased without a trailing dot.
    pub domain: Option<String>,
    /// Unix seconds: only reports (days) that end after it.
    pub since: Option<i64>,
    /// Unix seconds: only reports (days) that begin before it.
    pub until: Option<i64>,
    /// Only reports of this kind.
    pub kind: Option<Kind>,
}

/// One stored report, as listed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReportRow {
    /// The database's id (for `show`).
    pub id: i64,
    /// Its kind.
    pub kind: Kind,
    /// The reporting organization (`""` when a DMARC report names none).
    pub organization: String,
    /// The sender's report id.
    pub report_id: String,
    /// The date range's begin, Unix seconds.
    pub begin: i64,
    /// The date range's end, Unix seconds.
    pub end: i64,
    /// The domains it is about, sorted (`""` for a TLS policy without a domain).
    pub domains: Vec<String>,
    /// Where it first arrived (the contract's `source`).
    pub source: String,
    /// When it first arrived, Unix seconds.
    pub received_at: i64,
    /// How many more times it arrived.
    pub duplicates: u64,
    /// TLS: successful sessions; DMARC: messages that passed DMARC.
    pub success: u64,
    /// TLS: failed sessions; DMARC: messages that did not pass DMARC.
    pub failure: u64,
}

/// One stored report with its documents.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredReport {
    /// What [`super::ReportDb::list`] shows of it.
    pub row: ReportRow,
    /// The output contract's JSON object, with the records.
    pub normalized: String,
    /// The report document (JSON or XML) as found, gzip-compressed by the caller that stored it.
    pub raw: Vec<u8>,
}

/// The rollup of one (kind, domain, UTC day, organization). A report whose range spans several
/// days is spread over them (`mtasts_proto::rollup`); `reports` counts it on every day it covers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DailyRow {
    /// The reports' kind.
    pub kind: Kind,
    /// The domain.
    pub domain: String,
    /// The day's start, Unix seconds at 00:00 UTC.
    pub day: i64,
    /// The reporting organization.
    pub organization: String,
    /// How many reports cover this day.
    pub reports: u64,
    /// TLS: successful sessions; DMARC: messages that passed DMARC.
    pub success: u64,
    /// TLS: failed sessions; DMARC: messages that did not pass DMARC.
    pub failure: u64,
    /// DMARC: messages.
    pub messages: u64,
    /// DMARC: messages passing DMARC (aligned DKIM or SPF).
    pub dmarc_pass: u64,
    /// DMARC: messages whose policy-evaluated DKIM passed.
    pub dkim_pass: u64,
    /// DMARC: messages whose policy-evaluated SPF passed.
    pub spf_pass: u64,
    /// DMARC: messages with disposition `none` (and RFC 9990 `pass`).
    pub none: u64,
    /// DMARC: messages quarantined.
    pub quarantine: u64,
    /// DMARC: messages rejected.
    pub reject: u64,
}

/// TLS failure details grouped by (domain, result type, receiving MX, organization).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FailureGroup {
    /// The policy domain.
    pub domain: String,
    /// The result type, as sent.
    pub result: String,
    /// The receiving MX host name, when the details named one.
    pub receiving_mx: Option<String>,
    /// The reporting organization.
    pub organization: String,
    /// Failed sessions.
    pub count: u64,
    /// The UTC day (Unix seconds at 00:00) of the earliest report's begin.
    pub first_day: i64,
    /// The UTC day of the latest report's end.
    pub last_day: i64,
}

/// DMARC records grouped by (domain, source IP, header-from).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SourceGroup {
    /// The policy domain.
    pub domain: String,
    /// The sending IP, as sent.
    pub source_ip: String,
    /// `identifiers/header_from` (`""` when absent).
    pub header_from: String,
    /// Messages.
    pub messages: u64,
    /// Messages passing DMARC.
    pub dmarc_pass: u64,
    /// Messages whose policy-evaluated DKIM passed.
    pub dkim_pass: u64,
    /// Messages whose policy-evaluated SPF passed.
    pub spf_pass: u64,
    /// Disposition `none` (and RFC 9990 `pass`).
    pub none: u64,
    /// Disposition `quarantine`.
    pub quarantine: u64,
    /// Disposition `reject`.
    pub reject: u64,
}

/// The latest policy seen for a (kind, domain), by report end.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PolicySeen {
    /// The kind of report that showed it.
    pub kind: Kind,
    /// The domain.
    pub domain: String,
    /// TLS: `sts testing`, `sts enforce`, `sts none`, `sts` (no mode line), `tlsa`,
    /// `no-policy-found` or another type as sent; DMARC: `p=none`, `p=quarantine`, `p=reject`
    /// (`p=?` when the report leaves it out).
    pub policy: String,
    /// TLS: the STS mode; DMARC: `p`.
    pub p: Option<String>,
    /// DMARC: `pct`.
    pub pct: Option<u32>,
    /// The end of the latest report showing it, Unix seconds.
    pub last_seen: i64,
}

/// A stored input (or part of one) that could not be read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ErrorRow {
    /// The database's id.
    pub id: i64,
    /// The contract's `source`.
    pub source: String,
    /// The contract's `code`.
    pub code: String,
    /// What was wrong.
    pub message: String,
    /// When its input arrived, Unix seconds.
    pub received_at: i64,
}

/// An input to store: the bytes as received (a file, a mail message), compressed by the caller.
#[derive(Clone, Copy, Debug)]
pub struct NewInput<'a> {
    /// SHA-256 of the bytes as received (before compression): the input's identity.
    pub sha256: [u8; 32],
    /// Its label (path, `-`, `imaps://…#UID`).
    pub source: &'a str,
    /// When it arrived, Unix seconds.
    pub received_at: i64,
    /// Its size as received, in bytes.
    pub size: u64,
    /// The bytes as received, gzip-compressed.
    pub gzip: &'a [u8],
}

/// The parsed report of a [`NewReport`].
#[derive(Clone, Copy, Debug)]
pub enum Content<'a> {
    /// An SMTP TLS report.
    TlsRpt(&'a TlsReport),
    /// A DMARC aggregate report (its records, as many as were kept).
    Dmarc(&'a dmarc::Report),
}

/// A report to store.
#[derive(Clone, Copy, Debug)]
pub struct NewReport<'a> {
    /// Where it was found (the contract's `source`).
    pub source: &'a str,
    /// The report.
    pub content: Content<'a>,
    /// The output contract's JSON object for it, with the records.
    pub normalized: &'a str,
    /// The report document (JSON or XML) as found, gzip-compressed by the caller (as inputs
    /// are: the store keeps bytes, it does not compress).
    pub raw: &'a [u8],
}

/// A piece of an input that could not be read.
#[derive(Clone, Copy, Debug)]
pub struct NewError<'a> {
    /// The contract's `source`.
    pub source: &'a str,
    /// The contract's `code`.
    pub code: &'a str,
    /// What was wrong.
    pub message: &'a str,
}

/// What [`super::ReportDb::store`] did, committed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stored {
    /// The input's id.
    pub input: i64,
    /// False when the same bytes had been stored before (its errors were stored then).
    pub input_new: bool,
    /// Per report, in order: whether it was new.
    pub reports: Vec<Inserted>,
}

/// What storing one report did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Inserted {
    /// Stored under this id.
    New(i64),
    /// Already stored under this id; its `duplicates` went up (not during a reparse).
    Duplicate(i64),
}

/// A stored input, for reparsing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredInput {
    /// The database's id.
    pub id: i64,
    /// Its label.
    pub source: String,
    /// When it arrived.
    pub received_at: i64,
    /// The bytes as received, gzip-compressed.
    pub gzip: Vec<u8>,
}
