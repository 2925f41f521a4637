//! The `mtasts check --json` output contract (`shared/spec/check-output.md`).
//!
//! Field names here are stable: monitoring scripts depend on them. Fields may be added, never
//! renamed or removed.

use std::net::IpAddr;

use mtasts_proto::Severity;
use mtasts_proto::dkim::{KeyStatus, KeyType};
use mtasts_proto::spf::{SpfNode, SpfStatus};
use serde::Serialize;

use crate::finding::Finding;

/// The overall outcome for one domain.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// A valid `enforce` policy, every MX covered and TLS-valid, a valid TLS-RPT record.
    Pass,
    /// The policy works but protection or reporting is incomplete.
    Warn,
    /// A sender honouring MTA-STS gets no policy, or enforce-mode senders refuse a real MX.
    Fail,
}

impl Verdict {
    /// `fail` if any finding is an error, else `warn` if any is a warning, else `pass`.
    pub fn from_findings(findings: &[Finding]) -> Self {
        if findings.iter().any(|f| f.severity == Severity::Error) {
            Verdict::Fail
        } else if findings.iter().any(|f| f.severity == Severity::Warning) {
            Verdict::Warn
        } else {
            Verdict::Pass
        }
    }

    /// `pass`, `warn` or `fail`.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Pass => "pass",
            Verdict::Warn => "warn",
            Verdict::Fail => "fail",
        }
    }
}

/// Everything the checker found about one domain.
#[derive(Clone, Debug, Serialize)]
pub struct DomainReport {
    /// The domain as normalised (lowercase A-labels, no trailing dot).
    pub domain: String,
    /// Derived from the findings.
    pub verdict: Verdict,
    /// The MTA-STS policy as a sender discovers it.
    pub policy: PolicyReport,
    /// Every MX host with its addresses.
    pub mx_hosts: Vec<MxHostReport>,
    /// The TLS-RPT record.
    pub tlsrpt: TlsRptReport,
    /// The DMARC record (RFC 7489, RFC 9989); `null` when the stage did not run.
    pub dmarc: Option<crate::report_dmarc::DmarcReport>,
    /// The SPF record and its evaluation tree; `null` when the spf stage did not run.
    pub spf: Option<SpfReport>,
    /// The DKIM keys of the selectors given; `null` when the dkim stage did not run.
    pub dkim: Option<DkimReport>,
    /// Every problem and note, errors first.
    pub findings: Vec<Finding>,
}

/// `policy.status` values, aligned with RFC 8460 result types.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum PolicyStatus {
    /// Exactly one valid record and a valid policy over valid HTTPS.
    Valid,
    /// No usable `_mta-sts` record: a sender skips MTA-STS.
    None,
    /// The `_mta-sts` lookup failed temporarily: a sender would use its cache.
    TempError,
    /// The policy could not be fetched (`sts-policy-fetch-error`).
    FetchError,
    /// The policy host certificate is not valid for `mta-sts.<domain>` (`sts-webpki-invalid`).
    WebpkiInvalid,
    /// The body was fetched but is not a valid policy (`sts-policy-invalid`).
    Invalid,
}

impl PolicyStatus {
    /// The contract's spelling: `valid`, `none`, `temp-error`, `fetch-error`,
    /// `webpki-invalid`, `invalid`.
    pub fn as_str(self) -> &'static str {
        match self {
            PolicyStatus::Valid => "valid",
            PolicyStatus::None => "none",
            PolicyStatus::TempError => "temp-error",
            PolicyStatus::FetchError => "fetch-error",
            PolicyStatus::WebpkiInvalid => "webpki-invalid",
            PolicyStatus::Invalid => "invalid",
        }
    }
}

/// The `_mta-sts` record as found.
#[derive(Clone, Debug, Serialize)]
pub struct RecordReport {
    /// The record text.
    pub raw: String,
    /// The policy id.
    pub id: String,
}

/// The `policy` object.
#[derive(Clone, Debug, Serialize)]
pub struct PolicyReport {
    /// See [`PolicyStatus`].
    pub status: PolicyStatus,
    /// The usable record; `null` when there is none.
    pub record: Option<RecordReport>,
    /// `enforce`, `testing`, `none`; `null` without a valid policy.
    pub mode: Option<String>,
    /// The policy `mx` patterns as published (letters in the case the policy wrote them;
    /// matching ignores case); empty without a valid policy.
    pub mx: Vec<String>,
    /// `max_age` in seconds; `null` without a valid policy.
    pub max_age: Option<u32>,
    /// The fetched body when one was fetched, else `null`.
    pub raw: Option<String>,
    /// The RFC 8460 result type a sender reports for this discovery, `null` when none applies
    /// (a valid policy, or no policy at all).
    pub result_type: Option<String>,
    /// How postfix-mta-sts-resolver would log this discovery (`STSFetchResult.…`).
    pub sender_log: String,
    /// The policy URL.
    pub url: Option<String>,
    /// The policy host address the answer came from.
    pub ip: Option<IpAddr>,
    /// The HTTP status received.
    pub http_status: Option<u16>,
    /// The policy host certificate.
    pub certificate: Option<CertificateReport>,
}

/// One MX host.
#[derive(Clone, Debug, Serialize)]
pub struct MxHostReport {
    /// The exchange name (lowercase, no trailing dot).
    pub name: String,
    /// The MX preference; `null` for the implicit MX (the domain itself).
    pub preference: Option<u16>,
    /// Matched by a policy `mx` pattern; `null` when there is no policy.
    pub covered: Option<bool>,
    /// The number of TLSA records at `_25._tcp.<name>`; `null` when the lookup failed.
    pub tlsa_records: Option<usize>,
    /// Every A/AAAA address, probed.
    pub addresses: Vec<AddressReport>,
}

/// One probed MX address.
#[derive(Clone, Debug, Serialize)]
pub struct AddressReport {
    /// The address.
    pub ip: IpAddr,
    /// Whether EHLO offered STARTTLS; `null` when EHLO was not reached.
    pub starttls: Option<bool>,
    /// The negotiated (or, for legacy-only servers, offered) TLS version.
    pub tls_version: Option<String>,
    /// The cipher suite.
    pub cipher: Option<String>,
    /// The certificate.
    pub certificate: Option<CertificateReport>,
    /// Why the probe stopped short of a valid modern TLS session, if it did.
    pub error: Option<String>,
}

/// A certificate and its WebPKI validation outcome.
#[derive(Clone, Debug, Serialize)]
pub struct CertificateReport {
    /// Valid for the expected name, trusted and current.
    pub valid: bool,
    /// subjectAltName DNS names.
    pub names: Vec<String>,
    /// End of validity, RFC 3339.
    pub not_after: Option<String>,
    /// Start of validity, RFC 3339.
    pub not_before: Option<String>,
    /// The issuer.
    pub issuer: Option<String>,
    /// Why it is not valid; `null` when valid.
    pub error: Option<String>,
}

/// `tlsrpt.status` values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TlsRptStatus {
    /// Exactly one valid record.
    Valid,
    /// No record (or the lookup failed: see the findings).
    None,
    /// A record that does not parse, or several records.
    Invalid,
}

impl TlsRptStatus {
    /// `valid`, `none` or `invalid`.
    pub fn as_str(self) -> &'static str {
        match self {
            TlsRptStatus::Valid => "valid",
            TlsRptStatus::None => "none",
            TlsRptStatus::Invalid => "invalid",
        }
    }
}

/// The `tlsrpt` object.
#[derive(Clone, Debug, Serialize)]
pub struct TlsRptReport {
    /// See [`TlsRptStatus`].
    pub status: TlsRptStatus,
    /// Reporting URIs of a valid record.
    pub rua: Vec<String>,
    /// The record text(s) found.
    pub raw: Vec<String>,
}

/// The `spf` object (RFC 7208).
#[derive(Clone, Debug, Serialize)]
pub struct SpfReport {
    /// `valid`, `none`, `permerror` or `temperror`: what receivers get for mail from a host
    /// the record does not list (the `all` result aside).
    pub status: SpfStatus,
    /// The `v=spf1` record at the domain, when there is exactly one.
    pub record: Option<String>,
    /// DNS-lookup terms in the whole tree (include, a, mx, ptr, exists, redirect).
    pub dns_lookups: usize,
    /// The limit receivers apply (10).
    pub dns_lookup_limit: usize,
    /// Lookups in the tree that found nothing.
    pub void_lookups: usize,
    /// The limit receivers apply (2).
    pub void_lookup_limit: usize,
    /// The record and every include and redirect target, nested.
    pub tree: SpfNode,
}

/// The `dkim` object (RFC 6376).
#[derive(Clone, Debug, Serialize)]
pub struct DkimReport {
    /// One entry per selector checked, in the order given.
    pub selectors: Vec<DkimKeyReport>,
}

/// One selector's key record.
#[derive(Clone, Debug, Serialize)]
pub struct DkimKeyReport {
    /// The selector.
    pub selector: String,
    /// `<selector>._domainkey.<domain>`.
    pub name: String,
    /// `valid`, `missing`, `revoked`, `invalid` or `temp-error`.
    pub status: KeyStatus,
    /// The record text (the first, when several).
    pub raw: Option<String>,
    /// `rsa` or `ed25519`, when the record parses.
    pub key_type: Option<KeyType>,
    /// Key size in bits (RSA modulus; 256 for Ed25519).
    pub bits: Option<usize>,
    /// `t=y`: the domain is testing DKIM.
    pub testing: bool,
}
