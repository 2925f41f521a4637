//! Findings: one problem (or note) about a domain, with its fix.

use mtasts_proto::{Diagnostic, ResultType, Severity};
use serde::Serialize;

/// The part of the check a finding belongs to, for grouping human output.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Stage {
    /// MX records of the domain.
    Mx,
    /// The `_mta-sts` TXT record.
    StsRecord,
    /// Fetching the policy over HTTPS, and the policy host certificate.
    PolicyFetch,
    /// The policy body.
    Policy,
    /// MX host coverage by the policy and per-address SMTP/TLS.
    MxTls,
    /// The `_smtp._tls` TXT record.
    TlsRpt,
    /// DANE (TLSA) presence.
    Dane,
    /// The `_dmarc` TXT record (RFC 7489, RFC 9989).
    Dmarc,
    /// The SPF record and its evaluation tree (RFC 7208).
    Spf,
    /// DKIM key records of the selectors given (RFC 6376).
    Dkim,
}

impl Stage {
    /// A heading for human output.
    pub fn title(self) -> &'static str {
        match self {
            Stage::Mx => "MX records",
            Stage::StsRecord => "MTA-STS record (_mta-sts TXT)",
            Stage::PolicyFetch => "Policy fetch (HTTPS)",
            Stage::Policy => "Policy file",
            Stage::MxTls => "MX hosts: coverage, STARTTLS and certificates",
            Stage::TlsRpt => "TLS reporting (_smtp._tls TXT)",
            Stage::Dane => "DANE",
            Stage::Dmarc => "DMARC (_dmarc TXT)",
            Stage::Spf => "SPF (TXT v=spf1)",
            Stage::Dkim => "DKIM keys (<selector>._domainkey TXT)",
        }
    }
}

/// One finding.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// `error`, `warning` or `info`.
    #[serde(serialize_with = "serialize_severity")]
    pub severity: Severity,
    /// A stable code from the contract (e.g. `mx-not-covered`) or a documented addition.
    pub code: String,
    /// What is wrong, citing the RFC section.
    pub message: String,
    /// What to change.
    pub fix: String,
    /// The RFC rule, e.g. `RFC 8461 §3.3`.
    pub rule: String,
    /// The RFC 8460 result type a sender would report for this, when there is one.
    #[serde(serialize_with = "serialize_result_type")]
    pub result_type: Option<ResultType>,
    /// Where in the check this was found.
    pub stage: Stage,
    /// The MX host (and address) concerned, for per-MX findings.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// A finer code under a contract code, e.g. `policy-bom` under `policy-syntax`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

impl Finding {
    /// A finding without result type or host.
    pub fn new(
        stage: Stage,
        severity: Severity,
        code: &str,
        message: impl Into<String>,
        fix: impl Into<String>,
        rule: &str,
    ) -> Self {
        Finding {
            severity,
            code: code.to_owned(),
            message: message.into(),
            fix: fix.into(),
            rule: rule.to_owned(),
            result_type: None,
            stage,
            host: None,
            detail: None,
        }
    }

    /// Sets the result type a sender would log.
    pub fn with_result(mut self, result_type: ResultType) -> Self {
        self.result_type = Some(result_type);
        self
    }

    /// Sets the host concerned.
    pub fn with_host(mut self, host: impl Into<String>) -> Self {
        self.host = Some(host.into());
        self
    }

    /// A finding from a proto diagnostic, keeping its code unless `code` overrides it.
    pub fn from_diagnostic(stage: Stage, diagnostic: &Diagnostic, code: Option<&str>) -> Self {
        let message = match diagnostic.line {
            Some(line) => format!("line {line}: {}", diagnostic.message),
            None => diagnostic.message.clone(),
        };
        let mut finding = Finding::new(
            stage,
            diagnostic.severity,
            code.unwrap_or(diagnostic.code),
            message,
            diagnostic.fix.clone(),
            diagnostic.rule,
        );
        if code.is_some_and(|c| c != diagnostic.code) {
            finding.detail = Some(diagnostic.code.to_owned());
        }
        finding
    }
}

fn serialize_severity<S: serde::Serializer>(s: &Severity, ser: S) -> Result<S::Ok, S::Error> {
    ser.serialize_str(s.as_str())
}

fn serialize_result_type<S: serde::Serializer>(
    r: &Option<ResultType>,
    ser: S,
) -> Result<S::Ok, S::Error> {
    match r {
        Some(r) => ser.serialize_str(r.as_str()),
        None => ser.serialize_none(),
    }
}
