//! Live verification of a hosted domain: are the owner's three CNAMEs in place, and what does
//! the checker engine see from outside?
//!
//! The record assessment is pure ([`assess_sts`], [`assess_policy_host`], [`assess_tlsrpt`]);
//! [`inspect_domain`] feeds it real lookups and adds the checker's verdict and findings.

use std::net::IpAddr;
use std::time::Duration;

use mtasts_check::Checker;
use mtasts_net::dns::{DnsError, DnsLookup};
use mtasts_proto::hosted::delegation::{Delegation, RecordKind};
use mtasts_proto::txt::{Selection, TxtRr};
use mtasts_proto::{Severity, sts, tlsrpt};

use crate::verification::{
    CheckFinding, CheckSummary, RecordCheck, RecordChecks, RecordStatus, Verification,
};

fn check(status: RecordStatus, detail: String, fix: Option<String>) -> RecordCheck {
    RecordCheck {
        status,
        detail: Some(detail),
        fix,
    }
}

fn cname_fix(name: &str, target: &str, replace: bool) -> Option<String> {
    let replace = if replace {
        " and remove the records published there now"
    } else {
        ""
    };
    Some(format!("publish {name}. CNAME {target}.{replace}"))
}

/// The TXT RRset found, or the record's outcome when there is none to judge.
fn found_txt<'a>(
    name: &str,
    target: &str,
    lookup: &'a Result<Vec<TxtRr>, DnsError>,
) -> Result<&'a [TxtRr], RecordCheck> {
    match lookup {
        Ok(rrset) => Ok(rrset),
        Err(e) if e.is_not_found() => Err(check(
            RecordStatus::Missing,
            format!("no record at {name}"),
            cname_fix(name, target, false),
        )),
        Err(e) => Err(check(
            RecordStatus::Unchecked,
            format!("DNS lookup failed: {e}"),
            None,
        )),
    }
}

/// `_mta-sts.<domain>`: verified when the TXT found carries one of `known_ids` (the ids the
/// service has published for this domain, newest first; an older one is a cache still
/// catching up).
pub fn assess_sts(
    name: &str,
    target: &str,
    lookup: &Result<Vec<TxtRr>, DnsError>,
    known_ids: &[String],
) -> RecordCheck {
    let rrset = match found_txt(name, target, lookup) {
        Ok(rrset) => rrset,
        Err(outcome) => return outcome,
    };
    match sts::record::select(rrset) {
        Selection::Found { record, .. } if known_ids.iter().any(|id| id == record.id.as_str()) => {
            check(
                RecordStatus::Verified,
                format!("v=STSv1; id={} served by the service", record.id.as_str()),
                None,
            )
        }
        Selection::Found { raw, .. } => check(
            RecordStatus::Wrong,
            format!("{name} has its own record {raw:?}, not the service's"),
            cname_fix(name, target, true),
        ),
        Selection::Missing { .. } => check(
            RecordStatus::Missing,
            format!("no v=STSv1 record at {name}"),
            cname_fix(name, target, true),
        ),
        Selection::Invalid { raw, error, .. } => check(
            RecordStatus::Wrong,
            format!("{name} has an invalid record {raw:?}: {error}"),
            cname_fix(name, target, true),
        ),
        Selection::Multiple { raws, .. } => check(
            RecordStatus::Wrong,
            format!(
                "{name} has {} v=STSv1 records; senders then see no policy",
                raws.len()
            ),
            cname_fix(name, target, true),
        ),
    }
}

/// `mta-sts.<domain>`: verified when it resolves to the service's addresses and nothing else.
pub fn assess_policy_host(
    name: &str,
    target: &str,
    lookup: &Result<Vec<IpAddr>, DnsError>,
    public_ips: &[IpAddr],
) -> RecordCheck {
    match lookup {
        Ok(addresses)
            if !addresses.is_empty() && addresses.iter().all(|a| public_ips.contains(a)) =>
        {
            check(
                RecordStatus::Verified,
                format!("{name} resolves to the service"),
                None,
            )
        }
        Ok(addresses) => {
            let list: Vec<String> = addresses.iter().map(IpAddr::to_string).collect();
            check(
                RecordStatus::Wrong,
                format!(
                    "{name} resolves to {}, not only to the service",
                    list.join(", ")
                ),
                cname_fix(name, target, true),
            )
        }
        Err(e) if e.is_not_found() => check(
            RecordStatus::Missing,
            format!("{name} does not resolve"),
            cname_fix(name, target, false),
        ),
        Err(e) => check(
            RecordStatus::Unchecked,
            format!("DNS lookup failed: {e}"),
            None,
        ),
    }
}

/// `_smtp._tls.<domain>`: verified when the TXT found is the one the service publishes;
/// `expected` is `None` when no TLS-RPT record is published (the owner sends reports neither
/// to the service nor to an address of their own), and then nothing is required.
pub fn assess_tlsrpt(
    name: &str,
    target: &str,
    lookup: &Result<Vec<TxtRr>, DnsError>,
    expected: Option<&str>,
) -> RecordCheck {
    let Some(expected) = expected else {
        return check(
            RecordStatus::Unchecked,
            "no TLS-RPT record is published: reports go neither to this service nor to an \
             address (rua) of the owner"
                .to_owned(),
            None,
        );
    };
    let rrset = match found_txt(name, target, lookup) {
        Ok(rrset) => rrset,
        Err(outcome) => return outcome,
    };
    match tlsrpt::record::select(rrset) {
        Selection::Found { raw, .. } if raw == expected => check(
            RecordStatus::Verified,
            format!("{raw} served by the service"),
            None,
        ),
        Selection::Found { raw, .. } => check(
            RecordStatus::Wrong,
            format!("{name} has its own record {raw:?}, not the service's"),
            cname_fix(name, target, true),
        ),
        _ => check(
            RecordStatus::Missing,
            format!("no valid v=TLSRPTv1 record at {name}"),
            cname_fix(name, target, true),
        ),
    }
}

/// What [`inspect_domain`] needs to know about the domain.
pub struct VerifyInput<'a> {
    /// The policy domain.
    pub domain: &'a str,
    /// The tenant hosting it: the TXT targets carry its label.
    pub tenant_id: i64,
    /// Ids the service published for it, newest first.
    pub known_ids: &'a [String],
    /// The `_smtp._tls` value the service serves for it, if any.
    pub tlsrpt: Option<&'a str>,
    /// The DKIM selectors whose key records the checker looks up.
    pub dkim_selectors: &'a [String],
}

/// Looks up the three delegated names and, once the policy host points here, runs the
/// checker engine (bounded by `deadline`).
pub async fn inspect_domain(
    dns: &dyn DnsLookup,
    checker: Option<&Checker>,
    delegation: &Delegation,
    public_ips: &[IpAddr],
    input: VerifyInput<'_>,
    now: i64,
    deadline: Duration,
) -> Verification {
    let domain = input.domain;
    let [sts_rec, host_rec, rpt_rec] = delegation.records(domain, input.tenant_id);
    let (sts_lookup, host_lookup, rpt_lookup) = tokio::join!(
        dns.txt(&sts_rec.name),
        dns.ip(&host_rec.name),
        dns.txt(&rpt_rec.name)
    );
    let host = assess_policy_host(&host_rec.name, &host_rec.target, &host_lookup, public_ips);
    let points_here = host.status == RecordStatus::Verified;
    let mut records = RecordChecks::default();
    records.set(
        RecordKind::StsRecord,
        assess_sts(&sts_rec.name, &sts_rec.target, &sts_lookup, input.known_ids),
    );
    records.set(RecordKind::PolicyHost, host);
    records.set(
        RecordKind::TlsRpt,
        assess_tlsrpt(&rpt_rec.name, &rpt_rec.target, &rpt_lookup, input.tlsrpt),
    );
    // Until the policy host points here the records are what matters, and a checker run
    // (SMTP probes of the owner's MX hosts) can take a minute: skip it.
    let check = match checker.filter(|_| points_here) {
        Some(checker) => tokio::time::timeout(
            deadline,
            checker.check_with_selectors(domain, input.dkim_selectors),
        )
        .await
        .ok()
        .map(|report| summarize(&report, input.dkim_selectors)),
        None => None,
    };
    Verification {
        checked_at: now,
        records,
        points_here,
        check,
    }
}

fn summarize(report: &mtasts_check::report::DomainReport, selectors: &[String]) -> CheckSummary {
    let mut findings: Vec<CheckFinding> = report
        .findings
        .iter()
        .filter(|f| f.severity != Severity::Info)
        .map(|f| CheckFinding {
            severity: f.severity,
            code: f.code.clone(),
            message: f.message.clone(),
            fix: f.fix.clone(),
            stage: serde_json::to_value(f.stage)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned)),
        })
        .collect();
    findings.sort_by_key(|f| f.severity);
    CheckSummary {
        verdict: report.verdict,
        findings,
        dkim_selectors: selectors.to_vec(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NAME: &str = "_mta-sts.example.com";
    const TARGET: &str = "_mta-sts.example.com.t1.hosted.test";

    fn ids() -> Vec<String> {
        vec!["20261122T120000".to_owned(), "20261121T080000".to_owned()]
    }

    #[test]
    fn sts_record_states() {
        let ours = Ok(vec![TxtRr::single("v=STSv1; id=20261122T120000")]);
        assert_eq!(
            assess_sts(NAME, TARGET, &ours, &ids()).status,
            RecordStatus::Verified
        );
        let older = Ok(vec![TxtRr::single("v=STSv1; id=20261121T080000")]);
        assert_eq!(
            assess_sts(NAME, TARGET, &older, &ids()).status,
            RecordStatus::Verified
        );
        let theirs = Ok(vec![TxtRr::single("v=STSv1; id=selfhosted1")]);
        let wrong = assess_sts(NAME, TARGET, &theirs, &ids());
        assert_eq!(wrong.status, RecordStatus::Wrong);
        assert!(
            wrong
                .fix
                .unwrap()
                .contains("CNAME _mta-sts.example.com.t1.hosted.test.")
        );
        let two = Ok(vec![
            TxtRr::single("v=STSv1; id=20261122T120000"),
            TxtRr::single("v=STSv1; id=other"),
        ]);
        assert_eq!(
            assess_sts(NAME, TARGET, &two, &ids()).status,
            RecordStatus::Wrong
        );
        let spf = Ok(vec![TxtRr::single("v=spf1 -all")]);
        assert_eq!(
            assess_sts(NAME, TARGET, &spf, &ids()).status,
            RecordStatus::Missing
        );
        let none = Err(DnsError::NxDomain);
        let missing = assess_sts(NAME, TARGET, &none, &ids());
        assert_eq!(missing.status, RecordStatus::Missing);
        assert_eq!(
            missing.fix.as_deref(),
            Some("publish _mta-sts.example.com. CNAME _mta-sts.example.com.t1.hosted.test.")
        );
        let temp = Err(DnsError::Timeout);
        assert_eq!(
            assess_sts(NAME, TARGET, &temp, &ids()).status,
            RecordStatus::Unchecked
        );
    }

    #[test]
    fn policy_host_states() {
        let service: Vec<IpAddr> = vec![
            "192.0.2.10".parse().unwrap(),
            "2001:db8::10".parse().unwrap(),
        ];
        let here = Ok(vec![service[0]]);
        assert_eq!(
            assess_policy_host("mta-sts.example.com", "policy.hosted.test", &here, &service).status,
            RecordStatus::Verified
        );
        let mixed = Ok(vec![service[0], "198.51.100.1".parse().unwrap()]);
        assert_eq!(
            assess_policy_host(
                "mta-sts.example.com",
                "policy.hosted.test",
                &mixed,
                &service
            )
            .status,
            RecordStatus::Wrong
        );
        let nothing = Err(DnsError::NoData);
        assert_eq!(
            assess_policy_host(
                "mta-sts.example.com",
                "policy.hosted.test",
                &nothing,
                &service
            )
            .status,
            RecordStatus::Missing
        );
    }

    #[test]
    fn tlsrpt_states() {
        let expected = "v=TLSRPTv1; rua=mailto:tls@example.com";
        let name = "_smtp._tls.example.com";
        let target = "_smtp._tls.example.com.t1.hosted.test";
        let ours = Ok(vec![TxtRr::single(expected)]);
        assert_eq!(
            assess_tlsrpt(name, target, &ours, Some(expected)).status,
            RecordStatus::Verified
        );
        let theirs = Ok(vec![TxtRr::single("v=TLSRPTv1; rua=mailto:x@example.org")]);
        assert_eq!(
            assess_tlsrpt(name, target, &theirs, Some(expected)).status,
            RecordStatus::Wrong
        );
        assert_eq!(
            assess_tlsrpt(name, target, &ours, None).status,
            RecordStatus::Unchecked
        );
        let none = Err(DnsError::NxDomain);
        assert_eq!(
            assess_tlsrpt(name, target, &none, Some(expected)).status,
            RecordStatus::Missing
        );
    }
}
