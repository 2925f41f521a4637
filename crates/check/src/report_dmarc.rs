//! The `dmarc` object of the `mtasts check --json` contract (docs/check-output.md): the
//! `_dmarc` record that applies to the domain, which record each kind of receiver uses, and
//! where aggregate and failure reports go. Fields may be added, never renamed or removed.

use serde::Serialize;

/// `dmarc.status` values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum DmarcStatus {
    /// A record applies to mail from the domain (its own, or inherited from a parent).
    Valid,
    /// No record applies: receivers do not apply DMARC to the domain.
    None,
    /// A record is there but receivers do not use it (several records, a repeated tag, no
    /// valid `p` and no valid `rua`).
    Invalid,
    /// A lookup failed temporarily: receivers cannot decide (DMARC `temperror`).
    TempError,
}

impl DmarcStatus {
    /// `valid`, `none`, `invalid` or `temp-error`.
    pub fn as_str(self) -> &'static str {
        match self {
            DmarcStatus::Valid => "valid",
            DmarcStatus::None => "none",
            DmarcStatus::Invalid => "invalid",
            DmarcStatus::TempError => "temp-error",
        }
    }
}

/// The `dmarc` object.
#[derive(Clone, Debug, Serialize)]
pub struct DmarcReport {
    /// See [`DmarcStatus`] (as an RFC 7489 receiver sees it; see `rfc9989` for the other).
    pub status: DmarcStatus,
    /// The policy applied to mail from the domain that fails DMARC (`none`, `quarantine`,
    /// `reject`) by an RFC 7489 receiver, `null` when none applies.
    pub policy: Option<String>,
    /// The record in use (RFC 7489 receivers' choice, else RFC 9989 receivers'), `null` when
    /// there is none.
    pub record: Option<DmarcRecordReport>,
    /// Every `v=DMARC1` record text at `_dmarc.<domain>` itself.
    pub raw: Vec<String>,
    /// How an RFC 7489 receiver (Public Suffix List) discovers the policy.
    pub rfc7489: DiscoveryReport,
    /// How an RFC 9989 receiver (DNS tree walk) discovers the policy.
    pub rfc9989: DiscoveryReport,
}

/// The record in use, its tags as receivers read them.
#[derive(Clone, Debug, Serialize)]
pub struct DmarcRecordReport {
    /// The domain whose `_dmarc` name holds it (the checked domain or a parent).
    pub domain: String,
    /// The record text.
    pub raw: String,
    /// `p`, `null` when absent or invalid.
    pub p: Option<String>,
    /// `sp`, `null` when absent or invalid.
    pub sp: Option<String>,
    /// `np`, `null` when absent or invalid.
    pub np: Option<String>,
    /// `adkim`: `r` or `s`.
    pub adkim: String,
    /// `aspf`: `r` or `s`.
    pub aspf: String,
    /// `pct` (100 when absent; RFC 9989 receivers ignore it).
    pub pct: u8,
    /// `fo` options.
    pub fo: Vec<String>,
    /// `psd`: `y`, `n` or `u`.
    pub psd: String,
    /// `t=y`.
    pub testing: bool,
    /// Aggregate report URIs.
    pub rua: Vec<ReportUriReport>,
    /// Failure report URIs.
    pub ruf: Vec<ReportUriReport>,
}

/// One `rua`/`ruf` URI and its RFC 7489 §7.1 authorization.
#[derive(Clone, Debug, Serialize)]
pub struct ReportUriReport {
    /// The URI.
    pub uri: String,
    /// The destination host (the domain of a `mailto:` address), `null` for other schemes.
    pub destination: Option<String>,
    /// The destination is outside the record domain's organizational domain, so it must
    /// authorize the reports.
    pub external: bool,
    /// `<domain>._report._dmarc.<destination>` for an external destination, else `null`.
    pub authorization: Option<String>,
    /// Whether a `v=DMARC1` record is published there; `null` when not external or when the
    /// lookup failed.
    pub authorized: Option<bool>,
}

/// One kind of receiver's discovery.
#[derive(Clone, Debug, Serialize)]
pub struct DiscoveryReport {
    /// `applied`, `ignored`, `no-record`, `multiple` or `temp-error`.
    pub outcome: String,
    /// The `_dmarc` names it queries, in order.
    pub queried: Vec<String>,
    /// The organizational domain it determines.
    pub organizational_domain: String,
    /// The domain whose record it uses, `null` for none.
    pub record_domain: Option<String>,
    /// The policy it applies to mail from the domain, `null` for none.
    pub policy: Option<String>,
}
