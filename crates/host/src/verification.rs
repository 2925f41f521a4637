//! The one verification type: what the serve node found when it looked at a hosted domain
//! from outside (the owner's three CNAMEs and, once the policy host points here, the
//! checker's verdict), stored per domain and shown by the API and the dashboard.
//!
//! The node produces it ([`crate::node::verify`]), the database keeps it as JSON
//! (`domains.verification`), and [`crate::service`] reads it back for the views. The stored
//! JSON and the API's `verification` member are the serialisation of [`Verification`]:
//!
//! ```json
//! {
//!   "checked_at": 1764000000,
//!   "records": {
//!     "sts_record":  {"status": "verified", "detail": "…", "fix": null},
//!     "policy_host": {"status": "missing", "detail": "mta-sts.example.com does not resolve",
//!                     "fix": "publish mta-sts.example.com. CNAME policy.zone."},
//!     "tlsrpt":      {"status": "wrong", "detail": "…", "fix": "…"}
//!   },
//!   "points_here": false,
//!   "check": {"verdict": "warn",
//!             "findings": [{"severity": "warning", "code": "…", "message": "…", "fix": "…"}]}
//! }
//! ```
//!
//! The verdict and severities are the checker's own [`Verdict`] and [`Severity`], written with
//! the names `mtasts check --json` uses. The serve node knows the checker only through
//! [`DomainVerifier`] and [`CheckSummary`]: the HTTP side never runs a check itself.

use futures::future::BoxFuture;
use mtasts_check::report::Verdict;
use mtasts_proto::Severity;
use mtasts_proto::hosted::delegation::RecordKind;
use mtasts_store::host::HostDbError;
use serde::{Deserialize, Serialize};
use thiserror::Error;

/// The stored result of one verification of a hosted domain.
///
/// Every member has a default, so a result stored by an older version (fewer members) still
/// reads; members it does not know are ignored.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Verification {
    /// When it ran (Unix seconds).
    #[serde(default)]
    pub checked_at: i64,
    /// The outcome per delegated record.
    #[serde(default)]
    pub records: RecordChecks,
    /// `mta-sts.<domain>` resolves to the service's public addresses only: ACME can validate.
    #[serde(default)]
    pub points_here: bool,
    /// What the checker engine saw, when it ran (only once the policy host points here).
    #[serde(default)]
    pub check: Option<CheckSummary>,
}

impl Verification {
    /// The JSON kept in `domains.verification`.
    pub fn to_stored(&self) -> String {
        // Only structs, strings, numbers and enums with string names: nothing serde_json
        // refuses (such as a map with non-string keys).
        serde_json::to_string(self).expect("a Verification always serialises")
    }

    /// Reads the JSON kept in `domains.verification`; `None` when it is not a verification
    /// (then the domain counts as never verified).
    pub fn from_stored(json: &str) -> Option<Self> {
        serde_json::from_str(json).ok()
    }
}

/// The outcome for each of the three delegated records, under the names of
/// [`RecordKind::as_str`]. A record without an entry has not been checked.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordChecks {
    /// `_mta-sts.<domain>` ([`RecordKind::StsRecord`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sts_record: Option<RecordCheck>,
    /// `mta-sts.<domain>` ([`RecordKind::PolicyHost`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy_host: Option<RecordCheck>,
    /// `_smtp._tls.<domain>` ([`RecordKind::TlsRpt`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tlsrpt: Option<RecordCheck>,
}

impl RecordChecks {
    /// The outcome for `kind`, if it was checked.
    pub fn get(&self, kind: RecordKind) -> Option<&RecordCheck> {
        self.slot(kind).as_ref()
    }

    /// Records the outcome for `kind`.
    pub fn set(&mut self, kind: RecordKind, check: RecordCheck) {
        *self.slot_mut(kind) = Some(check);
    }

    fn slot(&self, kind: RecordKind) -> &Option<RecordCheck> {
        match kind {
            RecordKind::StsRecord => &self.sts_record,
            RecordKind::PolicyHost => &self.policy_host,
            RecordKind::TlsRpt => &self.tlsrpt,
        }
    }

    fn slot_mut(&mut self, kind: RecordKind) -> &mut Option<RecordCheck> {
        match kind {
            RecordKind::StsRecord => &mut self.sts_record,
            RecordKind::PolicyHost => &mut self.policy_host,
            RecordKind::TlsRpt => &mut self.tlsrpt,
        }
    }
}

/// The verification of one record.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordCheck {
    /// What was found.
    pub status: RecordStatus,
    /// What the verifier saw, for people.
    #[serde(default)]
    pub detail: Option<String>,
    /// What to change, for people.
    #[serde(default)]
    pub fix: Option<String>,
}

/// A delegated record's verification outcome.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RecordStatus {
    /// The record the service serves is found at the owner's name.
    Verified,
    /// No record at the owner's name.
    Missing,
    /// Something else is there (another target, the owner's own record).
    Wrong,
    /// Not decided: never checked, a temporary DNS error, or nothing to check (no report
    /// address).
    #[default]
    Unchecked,
}

impl RecordStatus {
    /// `verified`, `missing`, `wrong` or `unchecked`, as in the JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            RecordStatus::Verified => "verified",
            RecordStatus::Missing => "missing",
            RecordStatus::Wrong => "wrong",
            RecordStatus::Unchecked => "unchecked",
        }
    }
}

/// The checker engine's verdict, compacted for storage.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckSummary {
    /// The checker's verdict (`pass`, `warn` or `fail` in JSON).
    #[serde(with = "verdict_name")]
    pub verdict: Verdict,
    /// Errors and warnings, most severe first (informational findings left out).
    pub findings: Vec<CheckFinding>,
    /// The DKIM selectors whose key records were checked (the configured ones and those
    /// seen in the domain's DMARC reports); absent in results stored before they were.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dkim_selectors: Vec<String>,
}

/// One checker finding.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckFinding {
    /// The checker's severity (`error` or `warning` in JSON).
    #[serde(with = "severity_name")]
    pub severity: Severity,
    /// The stable finding code.
    pub code: String,
    /// What is wrong.
    pub message: String,
    /// How to fix it.
    pub fix: String,
    /// The checker stage it comes from (`dmarc`, `mx-tls`, …, as in `mtasts check --json`);
    /// absent in results stored before it was recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stage: Option<String>,
}

/// Why a verification could not run; the stored result then stays as it was.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum VerifyError {
    /// The domain is not (or no longer) hosted.
    #[error("{0} is not hosted")]
    NotHosted(String),
    /// The database could not say what the service publishes for the domain.
    #[error("reading the domain: {0}")]
    Database(#[from] HostDbError),
}

/// Checks a domain's delegation now. `mtasts serve` wires it to the node, which runs the
/// checker engine; this is the only way the API and the dashboard reach the checker.
pub trait DomainVerifier: Send + Sync {
    /// Verifies `domain` (normalised). The caller stores the result; an `Err` leaves the
    /// stored result as it was.
    fn verify<'a>(&'a self, domain: &'a str) -> BoxFuture<'a, Result<Verification, VerifyError>>;
}

/// [`Verdict`] by the name `mtasts check --json` gives it.
mod verdict_name {
    use mtasts_check::report::Verdict;
    use serde::{Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(verdict: &Verdict, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(verdict.as_str())
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Verdict, D::Error> {
        super::one_of(
            d,
            &[Verdict::Pass, Verdict::Warn, Verdict::Fail],
            Verdict::as_str,
        )
    }
}

/// [`Severity`] by the name `mtasts check --json` gives it.
mod severity_name {
    use mtasts_proto::Severity;
    use serde::{Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(severity: &Severity, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(severity.as_str())
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Severity, D::Error> {
        let all = [Severity::Error, Severity::Warning, Severity::Info];
        super::one_of(d, &all, Severity::as_str)
    }
}

/// The one of `all` whose `name` is the string read: the checker's enums have names but
/// no serde of their own.
fn one_of<'de, D, T>(d: D, all: &[T], name: fn(T) -> &'static str) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Copy,
{
    let read = String::deserialize(d)?;
    all.iter()
        .copied()
        .find(|&v| name(v) == read)
        .ok_or_else(|| {
            let names: Vec<&str> = all.iter().map(|&v| name(v)).collect();
            serde::de::Error::custom(format_args!(
                "unknown name {read:?}, expected one of {}",
                names.join(", ")
            ))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The stored format is the one earlier versions wrote: a round trip through JSON
    /// keeps every member and its spelling.
    #[test]
    fn stored_json_round_trips() {
        let stored = r#"{"checked_at":1764000000,"records":{"policy_host":{"status":"verified","detail":"mta-sts.example.com resolves to the service","fix":null},"sts_record":{"status":"wrong","detail":"d","fix":"f"},"tlsrpt":{"status":"unchecked","detail":"no report address (rua) is configured for this domain","fix":null}},"points_here":true,"check":{"verdict":"warn","findings":[{"severity":"error","code":"c1","message":"m","fix":"x"},{"severity":"warning","code":"c2","message":"m","fix":"x"}]}}"#;
        let parsed: Verification = serde_json::from_str(stored).unwrap();
        assert_eq!(
            parsed.records.get(RecordKind::StsRecord).unwrap().status,
            RecordStatus::Wrong
        );
        let check = parsed.check.as_ref().unwrap();
        assert_eq!(check.verdict, Verdict::Warn);
        assert_eq!(check.findings[1].severity, Severity::Warning);
        let again: serde_json::Value = serde_json::to_value(&parsed).unwrap();
        assert_eq!(
            again,
            serde_json::from_str::<serde_json::Value>(stored).unwrap()
        );
    }

    #[test]
    fn missing_members_default_and_unknown_names_are_refused() {
        let parsed: Verification =
            serde_json::from_str(r#"{"records":{"sts_record":{"status":"missing"}}}"#).unwrap();
        assert!(!parsed.points_here);
        assert_eq!(parsed.check, None);
        assert_eq!(parsed.records.get(RecordKind::PolicyHost), None);
        assert!(
            serde_json::from_str::<Verification>(r#"{"check":{"verdict":"ok","findings":[]}}"#)
                .is_err()
        );
    }
}
