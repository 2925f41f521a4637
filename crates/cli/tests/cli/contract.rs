//! The `check --json` / `--jsonl` contract as test-side types (shared/spec/check-output.md plus
//! the fields docs/check-output.md marks *added*). Deserialising refuses an unknown field, a
//! missing field, a retyped field and an unknown enum spelling, so any change to the output
//! shows up here first; a new field is added here and in the docs in the same change.

// Every field is here to pin the contract; each test reads only the ones it asserts on.
#![allow(dead_code)]

use std::net::IpAddr;

use serde::{Deserialize, Deserializer};

/// A field that must be present and may be `null` (serde lets a plain `Option` be missing).
fn nullable<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d)
}

/// One domain's report.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Report {
    pub(crate) domain: String,
    pub(crate) verdict: Verdict,
    pub(crate) policy: Policy,
    pub(crate) mx_hosts: Vec<MxHost>,
    pub(crate) tlsrpt: TlsRpt,
    /// Added by issue 13; `null` when the stage did not run.
    #[serde(deserialize_with = "nullable")]
    pub(crate) dmarc: Option<Dmarc>,
    #[serde(deserialize_with = "nullable")]
    pub(crate) spf: Option<Spf>,
    #[serde(deserialize_with = "nullable")]
    pub(crate) dkim: Option<Dkim>,
    pub(crate) findings: Vec<Finding>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Verdict {
    Pass,
    Warn,
    Fail,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum PolicyStatus {
    Valid,
    None,
    TempError,
    FetchError,
    WebpkiInvalid,
    Invalid,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Policy {
    pub(crate) status: PolicyStatus,
    #[serde(deserialize_with = "nullable")]
    pub(crate) record: Option<Record>,
    #[serde(deserialize_with = "nullable")]
    pub(crate) mode: Option<Mode>,
    pub(crate) mx: Vec<String>,
    #[serde(deserialize_with = "nullable")]
    pub(crate) max_age: Option<u32>,
    #[serde(deserialize_with = "nullable")]
    pub(crate) raw: Option<String>,
    #[serde(deserialize_with = "nullable")]
    pub(crate) result_type: Option<String>,
    pub(crate) sender_log: String,
    #[serde(deserialize_with = "nullable")]
    pub(crate) url: Option<String>,
    #[serde(deserialize_with = "nullable")]
    pub(crate) ip: Option<IpAddr>,
    #[serde(deserialize_with = "nullable")]
    pub(crate) http_status: Option<u16>,
    #[serde(deserialize_with = "nullable")]
    pub(crate) certificate: Option<Certificate>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Mode {
    Enforce,
    Testing,
    None,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Record {
    pub(crate) raw: String,
    pub(crate) id: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct MxHost {
    pub(crate) name: String,
    #[serde(deserialize_with = "nullable")]
    pub(crate) preference: Option<u16>,
    #[serde(deserialize_with = "nullable")]
    pub(crate) covered: Option<bool>,
    #[serde(deserialize_with = "nullable")]
    pub(crate) tlsa_records: Option<usize>,
    pub(crate) addresses: Vec<Address>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Address {
    pub(crate) ip: IpAddr,
    #[serde(deserialize_with = "nullable")]
    pub(crate) starttls: Option<bool>,
    #[serde(deserialize_with = "nullable")]
    pub(crate) tls_version: Option<String>,
    #[serde(deserialize_with = "nullable")]
    pub(crate) cipher: Option<String>,
    #[serde(deserialize_with = "nullable")]
    pub(crate) certificate: Option<Certificate>,
    #[serde(deserialize_with = "nullable")]
    pub(crate) error: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Certificate {
    pub(crate) valid: bool,
    pub(crate) names: Vec<String>,
    #[serde(deserialize_with = "nullable")]
    pub(crate) not_after: Option<String>,
    #[serde(deserialize_with = "nullable")]
    pub(crate) not_before: Option<String>,
    #[serde(deserialize_with = "nullable")]
    pub(crate) issuer: Option<String>,
    #[serde(deserialize_with = "nullable")]
    pub(crate) error: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum TlsRptStatus {
    Valid,
    None,
    Invalid,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct TlsRpt {
    pub(crate) status: TlsRptStatus,
    pub(crate) rua: Vec<String>,
    pub(crate) raw: Vec<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Severity {
    Error,
    Warning,
    Info,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum Stage {
    Mx,
    StsRecord,
    PolicyFetch,
    Policy,
    MxTls,
    TlsRpt,
    Dane,
    Dmarc,
    Spf,
    Dkim,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Finding {
    pub(crate) severity: Severity,
    pub(crate) code: String,
    pub(crate) message: String,
    pub(crate) fix: String,
    pub(crate) rule: String,
    #[serde(deserialize_with = "nullable")]
    pub(crate) result_type: Option<String>,
    pub(crate) stage: Stage,
    /// Per-MX findings only: absent otherwise.
    #[serde(default)]
    pub(crate) host: Option<String>,
    /// `policy-syntax` only: absent otherwise.
    #[serde(default)]
    pub(crate) detail: Option<String>,
}

// SPF and DKIM sections (docs/check-output.md, `spf` and `dkim`).

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum SpfStatus {
    Valid,
    None,
    Permerror,
    Temperror,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Spf {
    pub(crate) status: SpfStatus,
    #[serde(deserialize_with = "nullable")]
    pub(crate) record: Option<String>,
    pub(crate) dns_lookups: usize,
    pub(crate) dns_lookup_limit: usize,
    pub(crate) void_lookups: usize,
    pub(crate) void_lookup_limit: usize,
    pub(crate) tree: SpfNode,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum SpfVia {
    Root,
    Include,
    Redirect,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum SpfNodeStatus {
    Pending,
    Valid,
    None,
    Multiple,
    Invalid,
    TempError,
    NotFollowed,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SpfNode {
    pub(crate) domain: String,
    pub(crate) via: SpfVia,
    pub(crate) status: SpfNodeStatus,
    pub(crate) records: Vec<String>,
    #[serde(deserialize_with = "nullable")]
    pub(crate) error: Option<String>,
    pub(crate) terms: Vec<SpfTerm>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SpfTerm {
    pub(crate) term: String,
    #[serde(deserialize_with = "nullable")]
    pub(crate) lookup: Option<usize>,
    pub(crate) void: bool,
    #[serde(deserialize_with = "nullable")]
    pub(crate) note: Option<String>,
    #[serde(deserialize_with = "nullable")]
    pub(crate) target: Option<Box<SpfNode>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Dkim {
    pub(crate) selectors: Vec<DkimKey>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum DkimStatus {
    Valid,
    Missing,
    Revoked,
    Invalid,
    TempError,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum DkimKeyType {
    Rsa,
    Ed25519,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct DkimKey {
    pub(crate) selector: String,
    pub(crate) name: String,
    pub(crate) status: DkimStatus,
    #[serde(deserialize_with = "nullable")]
    pub(crate) raw: Option<String>,
    #[serde(deserialize_with = "nullable")]
    pub(crate) key_type: Option<DkimKeyType>,
    #[serde(deserialize_with = "nullable")]
    pub(crate) bits: Option<usize>,
    pub(crate) testing: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum DmarcStatus {
    Valid,
    None,
    Invalid,
    TempError,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Dmarc {
    pub(crate) status: DmarcStatus,
    #[serde(deserialize_with = "nullable")]
    pub(crate) policy: Option<DmarcPolicy>,
    #[serde(deserialize_with = "nullable")]
    pub(crate) record: Option<DmarcRecord>,
    pub(crate) raw: Vec<String>,
    pub(crate) rfc7489: DmarcDiscovery,
    pub(crate) rfc9989: DmarcDiscovery,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum DmarcPolicy {
    None,
    Quarantine,
    Reject,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct DmarcRecord {
    pub(crate) domain: String,
    pub(crate) raw: String,
    #[serde(deserialize_with = "nullable")]
    pub(crate) p: Option<DmarcPolicy>,
    #[serde(deserialize_with = "nullable")]
    pub(crate) sp: Option<DmarcPolicy>,
    #[serde(deserialize_with = "nullable")]
    pub(crate) np: Option<DmarcPolicy>,
    pub(crate) adkim: String,
    pub(crate) aspf: String,
    pub(crate) pct: u8,
    pub(crate) fo: Vec<String>,
    pub(crate) psd: String,
    pub(crate) testing: bool,
    pub(crate) rua: Vec<DmarcUri>,
    pub(crate) ruf: Vec<DmarcUri>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct DmarcUri {
    pub(crate) uri: String,
    #[serde(deserialize_with = "nullable")]
    pub(crate) destination: Option<String>,
    pub(crate) external: bool,
    #[serde(deserialize_with = "nullable")]
    pub(crate) authorization: Option<String>,
    #[serde(deserialize_with = "nullable")]
    pub(crate) authorized: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct DmarcDiscovery {
    pub(crate) outcome: String,
    pub(crate) queried: Vec<String>,
    pub(crate) organizational_domain: String,
    #[serde(deserialize_with = "nullable")]
    pub(crate) record_domain: Option<String>,
    #[serde(deserialize_with = "nullable")]
    pub(crate) policy: Option<DmarcPolicy>,
}

/// The output as `T`, or a panic naming the broken contract and showing the output.
fn parse<T: serde::de::DeserializeOwned>(stdout: &[u8]) -> T {
    serde_json::from_slice(stdout).unwrap_or_else(|e| {
        panic!(
            "output breaks the contract ({e}):\n{}",
            String::from_utf8_lossy(stdout)
        )
    })
}

/// `check --json` with one domain: one object.
pub(crate) fn one(stdout: &[u8]) -> Report {
    parse(stdout)
}

/// `check --json` with several domains: an array.
pub(crate) fn many(stdout: &[u8]) -> Vec<Report> {
    parse(stdout)
}

/// `check --jsonl`: one object per line.
pub(crate) fn lines(stdout: &[u8]) -> Vec<Report> {
    String::from_utf8_lossy(stdout)
        .lines()
        .map(|line| one(line.as_bytes()))
        .collect()
}

#[test]
fn unknown_missing_and_retyped_fields_are_refused() {
    let good = r#"{"valid": true, "names": [], "not_after": null, "not_before": null, "issuer": null, "error": null}"#;
    assert!(serde_json::from_str::<Certificate>(good).is_ok());
    let unknown = good.replace("\"error\": null", "\"error\": null, \"new\": 1");
    assert!(serde_json::from_str::<Certificate>(&unknown).is_err());
    let missing = good.replace(", \"error\": null", "");
    assert!(serde_json::from_str::<Certificate>(&missing).is_err());
    let retyped = good.replace("\"valid\": true", "\"valid\": \"yes\"");
    assert!(serde_json::from_str::<Certificate>(&retyped).is_err());
    assert!(serde_json::from_str::<Verdict>("\"ok\"").is_err());
}
