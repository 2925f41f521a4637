//! The typed DMARC aggregate report: metadata, the published policy, the folded counts of the output
//! contract, the records (full mode only) and the notes on what was repaired.

/// A DMARC aggregate report as read. Result words and policy words are lowercased (`PASS` is `pass`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Report {
    /// `report_metadata/org_name`; `None` when empty or absent (noted as `missing-organization`).
    pub organization: Option<String>,
    /// `report_metadata/report_id` (required, never empty).
    pub report_id: String,
    /// `report_metadata/email`; `None` when empty or absent.
    pub contact: Option<String>,
    /// `report_metadata/date_range/begin`, Unix seconds.
    pub begin: u64,
    /// `report_metadata/date_range/end`, Unix seconds (not before `begin`).
    pub end: u64,
    /// `version`, as sent, when present.
    pub version: Option<String>,
    /// `policy_published`.
    pub policy: PolicyPublished,
    /// Number of `record` elements.
    pub rows: u64,
    /// Sum of the rows' `count`.
    pub messages: u64,
    /// Messages whose `policy_evaluated` `dkim` or `spf` is `pass`.
    pub dmarc_pass: u64,
    /// Messages whose `policy_evaluated/dkim` is `pass`.
    pub dkim_pass: u64,
    /// Messages whose `policy_evaluated/spf` is `pass`.
    pub spf_pass: u64,
    /// Messages per `policy_evaluated/disposition`.
    pub dispositions: Dispositions,
    /// The records, in document order; always empty in summary mode.
    pub records: Vec<Record>,
    /// What was repaired or is worth saying, at most one per code.
    pub notes: Vec<Note>,
}

/// `policy_published`, as published; `None` where the report leaves a field out (or sends it empty).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct PolicyPublished {
    /// `domain`.
    pub domain: Option<String>,
    /// `p`, lowercased.
    pub p: Option<String>,
    /// `sp`, lowercased.
    pub sp: Option<String>,
    /// `np` (RFC 9990), lowercased.
    pub np: Option<String>,
    /// `adkim`, lowercased.
    pub adkim: Option<String>,
    /// `aspf`, lowercased.
    pub aspf: Option<String>,
    /// `pct` (RFC 7489), 0 to 100.
    pub pct: Option<u8>,
    /// `testing` (RFC 9990), lowercased (`y` / `n`).
    pub testing: Option<String>,
}

/// Messages per disposition (RFC 7489 `none` / `quarantine` / `reject`, RFC 9990 adds `pass`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Dispositions {
    /// `none`.
    pub none: u64,
    /// `quarantine`.
    pub quarantine: u64,
    /// `reject`.
    pub reject: u64,
    /// `pass` (RFC 9990 only).
    pub pass: u64,
}

impl Dispositions {
    /// Adds `count` messages to `disposition`'s bucket; `None` on overflow.
    pub(crate) fn add(&mut self, disposition: Disposition, count: u64) -> Option<()> {
        let slot = match disposition {
            Disposition::None => &mut self.none,
            Disposition::Quarantine => &mut self.quarantine,
            Disposition::Reject => &mut self.reject,
            Disposition::Pass => &mut self.pass,
        };
        *slot = slot.checked_add(count)?;
        Some(())
    }
}

/// `policy_evaluated/disposition` (RFC 7489 Appendix C `DispositionType`, RFC 9990 adds `pass`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Disposition {
    /// `none`.
    None,
    /// `quarantine`.
    Quarantine,
    /// `reject`.
    Reject,
    /// `pass` (RFC 9990).
    Pass,
}

impl Disposition {
    /// Reads a disposition word, ignoring ASCII case; `None` for any other word.
    pub fn parse(word: &str) -> Option<Self> {
        match word.to_ascii_lowercase().as_str() {
            "none" => Some(Self::None),
            "quarantine" => Some(Self::Quarantine),
            "reject" => Some(Self::Reject),
            "pass" => Some(Self::Pass),
            _ => None,
        }
    }

    /// The contract's word.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Quarantine => "quarantine",
            Self::Reject => "reject",
            Self::Pass => "pass",
        }
    }
}

/// One `record`: a row, its identifiers and its authentication results.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Record {
    /// `row/source_ip`, as sent (a value that is not an IP address is kept and noted).
    pub source_ip: String,
    /// `row/count`.
    pub count: u64,
    /// `row/policy_evaluated/disposition`.
    pub disposition: Disposition,
    /// `row/policy_evaluated/dkim`, lowercased.
    pub dkim: Option<String>,
    /// `row/policy_evaluated/spf`, lowercased.
    pub spf: Option<String>,
    /// `row/policy_evaluated/reason`, in order.
    pub reasons: Vec<Reason>,
    /// `identifiers/header_from`.
    pub header_from: Option<String>,
    /// `identifiers/envelope_from`.
    pub envelope_from: Option<String>,
    /// `identifiers/envelope_to`.
    pub envelope_to: Option<String>,
    /// `auth_results/dkim`, in order.
    pub auth_dkim: Vec<AuthDkim>,
    /// `auth_results/spf`, in order.
    pub auth_spf: Vec<AuthSpf>,
}

/// `policy_evaluated/reason` (a policy override).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Reason {
    /// `type`, lowercased (`forwarded`, `local_policy`, … or any word as sent).
    pub kind: Option<String>,
    /// `comment`.
    pub comment: Option<String>,
}

/// `auth_results/dkim`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct AuthDkim {
    /// `domain`.
    pub domain: Option<String>,
    /// `selector`.
    pub selector: Option<String>,
    /// `result`, lowercased.
    pub result: Option<String>,
}

/// `auth_results/spf`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct AuthSpf {
    /// `domain`.
    pub domain: Option<String>,
    /// `scope`, lowercased (`mfrom`, `helo`).
    pub scope: Option<String>,
    /// `result`, lowercased.
    pub result: Option<String>,
}

/// A repair or remark attached to a report (the contract's `notes`).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Note {
    /// What kind of repair.
    pub code: NoteCode,
    /// A sentence for people, naming the first place it happened.
    pub message: String,
}

/// The kinds of notes a DMARC report can carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum NoteCode {
    /// `org_name` is empty or absent.
    MissingOrganization,
    /// Text stood between elements where only elements belong (mixed content); it was ignored.
    StrayText,
    /// A `source_ip` is not an IP address; it is kept as sent.
    BadSourceIp,
    /// A result or policy word was not in lowercase; it was lowercased.
    UppercaseWord,
    /// Full mode kept only the first [`MAX_RECORDS`](super::MAX_RECORDS) records; the counts include all.
    RecordsTruncated,
}

impl NoteCode {
    /// The contract's code.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::MissingOrganization => "missing-organization",
            Self::StrayText => "stray-text",
            Self::BadSourceIp => "bad-source-ip",
            Self::UppercaseWord => "uppercase-word",
            Self::RecordsTruncated => "records-truncated",
        }
    }
}
