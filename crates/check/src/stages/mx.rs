//! MX records and their coverage by the policy (RFC 8461 §4.1; RFC 5321 §5.1; RFC 7505).

use mtasts_net::dns::{DnsError, MxRecord};
use mtasts_proto::sts::policy::Policy;
use mtasts_proto::{ResultType, Severity};

use super::Enforcement;
use crate::finding::{Finding, Stage};

/// At most this many MX hosts are examined, so a hostile zone cannot make a check unbounded.
pub const MAX_MX_HOSTS: usize = 16;

/// One candidate MX host.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Candidate {
    /// Lowercase, no trailing dot.
    pub name: String,
    /// `None` for the implicit MX (the domain itself).
    pub preference: Option<u16>,
}

/// What the MX stage decided.
#[derive(Clone, Debug)]
pub struct MxOutcome {
    /// The hosts to examine, by preference.
    pub candidates: Vec<Candidate>,
    /// The domain publishes a null MX: it accepts no mail.
    pub null_mx: bool,
    /// Findings.
    pub findings: Vec<Finding>,
}

/// Turns the MX answer into candidates (implicit MX when there is none, C77).
pub fn evaluate(domain: &str, answer: &Result<Vec<MxRecord>, DnsError>) -> MxOutcome {
    let mut findings = Vec::new();
    let mut records = match answer {
        Ok(records) => records.clone(),
        Err(DnsError::NoData) => {
            findings.push(Finding::new(
                Stage::Mx,
                Severity::Info,
                "mx-implicit",
                format!("{domain} has no MX records, so senders deliver to {domain} itself (implicit MX, RFC 5321 §5.1); the policy must list {domain} as an mx."),
                format!("Publish MX records for {domain} if it receives mail elsewhere."),
                "RFC 5321 §5.1",
            ));
            vec![MxRecord {
                preference: 0,
                exchange: domain.to_owned(),
            }]
        }
        Err(DnsError::NxDomain) => {
            findings.push(Finding::new(
                Stage::Mx,
                Severity::Error,
                "mx-domain-missing",
                format!("{domain} does not exist in DNS (NXDOMAIN)."),
                "Check the spelling of the domain, or its delegation at the parent zone.",
                "RFC 1035",
            ));
            return MxOutcome {
                candidates: Vec::new(),
                null_mx: false,
                findings,
            };
        }
        Err(e) => {
            findings.push(Finding::new(
                Stage::Mx,
                Severity::Error,
                "mx-dns-error",
                format!("The MX lookup for {domain} failed temporarily ({e}); senders defer mail until it works."),
                format!("Make sure every authoritative name server of {domain} answers MX queries."),
                "RFC 5321 §5.1",
            ));
            return MxOutcome {
                candidates: Vec::new(),
                null_mx: false,
                findings,
            };
        }
    };
    if records.iter().any(|r| r.exchange.is_empty()) {
        findings.push(Finding::new(
            Stage::Mx,
            Severity::Info,
            "mx-null",
            format!("{domain} publishes a null MX (RFC 7505): it accepts no mail, so MTA-STS has nothing to protect."),
            "Nothing to do if the domain sends no mail; otherwise replace the null MX with real MX records.",
            "RFC 7505",
        ));
        return MxOutcome {
            candidates: Vec::new(),
            null_mx: true,
            findings,
        };
    }
    records.sort_by(|a, b| {
        a.preference
            .cmp(&b.preference)
            .then_with(|| a.exchange.cmp(&b.exchange))
    });
    records.dedup_by(|a, b| a.exchange == b.exchange);
    if records.len() > MAX_MX_HOSTS {
        findings.push(Finding::new(
            Stage::Mx,
            Severity::Info,
            "mx-truncated",
            format!(
                "{domain} has {} MX hosts; only the {MAX_MX_HOSTS} most preferred were examined.",
                records.len()
            ),
            "Nothing to fix; check the remaining hosts separately if they matter.",
            "RFC 5321 §5.1",
        ));
        records.truncate(MAX_MX_HOSTS);
    }
    let implicit = matches!(answer, Err(DnsError::NoData));
    let candidates = records
        .into_iter()
        .map(|r| Candidate {
            name: r.exchange,
            preference: (!implicit).then_some(r.preference),
        })
        .collect();
    MxOutcome {
        candidates,
        null_mx: false,
        findings,
    }
}

/// Matches every candidate against the policy's `mx` patterns. Returns `covered` per candidate
/// and the findings: uncovered hosts (C78), and patterns that match no MX (C79).
pub fn coverage(
    domain: &str,
    policy: &Policy,
    enforcement: Enforcement,
    candidates: &[Candidate],
) -> (Vec<bool>, Vec<Finding>) {
    let covered: Vec<bool> = candidates
        .iter()
        .map(|c| policy.mx.iter().any(|p| p.matches(&c.name)))
        .collect();
    let mut findings = Vec::new();
    let patterns = policy
        .mx
        .iter()
        .map(|p| p.published())
        .collect::<Vec<_>>()
        .join(", ");
    for (candidate, covered) in candidates.iter().zip(&covered) {
        if *covered {
            continue;
        }
        let severity = match enforcement {
            Enforcement::Enforce => Severity::Error,
            Enforcement::Testing => Severity::Warning,
            Enforcement::Withdrawn | Enforcement::NoPolicy => Severity::Info,
        };
        let hint = wildcard_hint(&candidate.name, policy);
        findings.push(
            Finding::new(
                Stage::MxTls,
                severity,
                "mx-not-covered",
                format!("MX host {} matches no mx pattern of the policy ({patterns}); {} (RFC 8461 §4.1).{hint}", candidate.name, enforcement.consequence()),
                format!("Add `mx: {}` to the policy at {} and publish a new id in _mta-sts.{domain}.", candidate.name, mtasts_proto::sts::policy_url(domain)),
                "RFC 8461 §4.1",
            )
            .with_result(ResultType::ValidationFailure)
            .with_host(candidate.name.clone()),
        );
    }
    for pattern in &policy.mx {
        if !candidates.iter().any(|c| pattern.matches(&c.name)) && !candidates.is_empty() {
            findings.push(Finding::new(
                Stage::Policy,
                Severity::Info,
                "policy-mx-unused",
                format!("The policy pattern `mx: {}` matches none of the current MX hosts.", pattern.published()),
                "Remove stale mx lines once no cached policy needs them (keep them during an MX migration).",
                "RFC 8461 §4.1",
            ));
        }
    }
    (covered, findings)
}

/// Explains the common near-misses: `*.x` does not cover `x`, and covers exactly one label.
fn wildcard_hint(host: &str, policy: &Policy) -> String {
    for pattern in policy.mx.iter().filter(|p| p.is_wildcard()) {
        let suffix = pattern.domain();
        if host == suffix {
            return format!(" Note: `*.{suffix}` does not cover {suffix} itself.");
        }
        if host.ends_with(&format!(".{suffix}")) {
            return format!(" Note: `*.{suffix}` covers exactly one label; {host} has more.");
        }
    }
    String::new()
}
