//! The checker: runs the stages for one domain, concurrently where they are independent.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use futures::stream;
use mtasts_net::dns::{DnsError, DnsLookup};
use mtasts_net::fetch::{FetchReport, PolicyFetch};
use mtasts_net::smtp::{ProbeReport, SmtpProbe};
use mtasts_proto::Severity;
use mtasts_proto::domain::normalize_domain;

use crate::finding::{Finding, Stage};
use crate::report::{
    DomainReport, MxHostReport, PolicyReport, PolicyStatus, RecordReport, TlsRptReport,
    TlsRptStatus, Verdict,
};
use crate::stages::mx::Candidate;
use crate::stages::policy::{PolicyOutcome, certificate_report};
use crate::stages::{Enforcement, mx, policy, record, tls, tlsrpt};

mod dmarc;
mod spf_dkim;

/// Knobs of a check.
#[derive(Clone, Debug)]
pub struct CheckOptions {
    /// A hard limit for one domain, on top of the per-step timeouts of the network layer, so
    /// no domain can hold a bulk run forever.
    pub deadline: Duration,
    /// At most this many addresses are probed per MX host.
    pub max_addresses_per_host: usize,
    /// At most this many SMTP probes run at once for one domain.
    pub probe_concurrency: usize,
    /// The stages to run (`--only`).
    pub stages: crate::StageSet,
    /// DKIM selectors whose key records are checked at every domain (`--dkim-selector`).
    pub dkim_selectors: Vec<String>,
}

impl Default for CheckOptions {
    fn default() -> Self {
        CheckOptions {
            deadline: Duration::from_secs(60),
            max_addresses_per_host: 8,
            probe_concurrency: 16,
            stages: crate::StageSet::all(),
            dkim_selectors: Vec::new(),
        }
    }
}

/// The checker engine. Cheap to share: wrap it in an `Arc` for bulk runs.
pub struct Checker {
    dns: Arc<dyn DnsLookup>,
    fetcher: Arc<dyn PolicyFetch>,
    prober: Arc<dyn SmtpProbe>,
    options: CheckOptions,
}

struct HostObservation {
    candidate: Candidate,
    addresses: Result<Vec<IpAddr>, DnsError>,
    tlsa: Result<usize, DnsError>,
    probes: Vec<ProbeReport>,
}

impl Checker {
    /// A checker observing through these edges.
    pub fn new(
        dns: Arc<dyn DnsLookup>,
        fetcher: Arc<dyn PolicyFetch>,
        prober: Arc<dyn SmtpProbe>,
        options: CheckOptions,
    ) -> Self {
        Checker {
            dns,
            fetcher,
            prober,
            options,
        }
    }

    /// The options this checker runs with.
    pub fn options(&self) -> &CheckOptions {
        &self.options
    }

    /// Checks one domain (any case, trailing dot and U-labels accepted).
    pub async fn check(&self, input: &str) -> DomainReport {
        self.check_with_selectors(input, &self.options.dkim_selectors)
            .await
    }

    /// Checks one domain, with these DKIM selectors instead of the configured ones (for
    /// `mtasts serve`, which knows the selectors seen in the domain's DMARC reports).
    pub async fn check_with_selectors(&self, input: &str, selectors: &[String]) -> DomainReport {
        let domain = match normalize_domain(input) {
            Ok(domain) => domain,
            Err(e) => {
                let finding = Finding::new(
                    Stage::Mx,
                    Severity::Error,
                    "domain-invalid",
                    format!("{input:?} is not a valid domain name: {e}."),
                    "Give a domain name such as example.com.",
                    "RFC 8461 §3.4",
                );
                return assemble(
                    input.trim().to_owned(),
                    empty_policy(PolicyStatus::None, None),
                    Vec::new(),
                    none_tlsrpt(),
                    vec![finding],
                );
            }
        };
        let work = self.check_domain(&domain, selectors);
        match tokio::time::timeout(self.options.deadline, work).await {
            Ok(report) => report,
            Err(_) => {
                let finding = Finding::new(
                    Stage::Mx,
                    Severity::Error,
                    "check-timeout",
                    format!(
                        "The check of {domain} did not finish within {} seconds.",
                        self.options.deadline.as_secs()
                    ),
                    "Run the check again with a longer --timeout; look for name servers or hosts that do not answer.",
                    "RFC 8461 §3.3",
                );
                assemble(
                    domain,
                    empty_policy(PolicyStatus::None, None),
                    Vec::new(),
                    none_tlsrpt(),
                    vec![finding],
                )
            }
        }
    }

    async fn check_domain(&self, domain: &str, selectors: &[String]) -> DomainReport {
        let stages = self.options.stages;
        let transport = async {
            if stages.mta_sts || stages.tlsrpt {
                Some(self.check_transport(domain).await)
            } else {
                None
            }
        };
        let dmarc = async {
            if stages.dmarc {
                Some(self.observe_dmarc(domain).await)
            } else {
                None
            }
        };
        let (transport, dmarc, auth) =
            tokio::join!(transport, dmarc, self.check_spf_dkim(domain, selectors));
        let (policy, mx_hosts, tlsrpt, mut findings) = transport.unwrap_or_else(|| {
            (
                empty_policy(PolicyStatus::None, None),
                Vec::new(),
                none_tlsrpt(),
                Vec::new(),
            )
        });
        let dmarc = dmarc.map(|(report, dmarc_findings)| {
            findings.extend(dmarc_findings);
            report
        });
        findings.extend(auth.findings);
        let mut report = assemble(domain.to_owned(), policy, mx_hosts, tlsrpt, findings);
        report.dmarc = dmarc;
        report.spf = auth.spf;
        report.dkim = auth.dkim;
        report
    }

    /// The MTA-STS and TLS-RPT stages (either may be off): the policy, MX hosts, TLS-RPT
    /// record and their findings.
    async fn check_transport(
        &self,
        domain: &str,
    ) -> (PolicyReport, Vec<MxHostReport>, TlsRptReport, Vec<Finding>) {
        let stages = self.options.stages;
        let sts_name = mtasts_proto::sts::record_name(domain);
        let rpt_name = mtasts_proto::tlsrpt::record_name(domain);
        if !stages.mta_sts {
            let (tlsrpt, findings) = tlsrpt::evaluate(domain, &self.dns.txt(&rpt_name).await);
            let policy = empty_policy(PolicyStatus::None, None);
            return (policy, Vec::new(), tlsrpt, findings);
        }
        let (mx_answer, sts_answer, rpt_answer) = tokio::join!(
            self.dns.mx(domain),
            self.dns.txt(&sts_name),
            self.dns.txt(&rpt_name)
        );

        let mut findings = Vec::new();
        let record = record::evaluate(domain, &sts_answer);
        findings.extend(record.findings.iter().cloned());
        let mx_outcome = mx::evaluate(domain, &mx_answer);
        findings.extend(mx_outcome.findings.iter().cloned());

        // The policy fetch and the MX probes are independent; run them side by side.
        let fetch = async {
            match &record.record {
                Some(_) => Some(self.fetcher.fetch(domain).await),
                None => None,
            }
        };
        let (fetch_report, hosts) = tokio::join!(fetch, self.observe_hosts(&mx_outcome.candidates));

        let outcome = fetch_report.as_ref().map(|f| policy::evaluate(domain, f));
        if let Some(outcome) = &outcome {
            findings.extend(outcome.findings.iter().cloned());
        }
        let policy_report = policy_report(domain, &record, fetch_report.as_ref(), outcome.as_ref());
        let valid_policy = outcome.as_ref().and_then(|o| o.policy.as_ref());
        let enforcement = Enforcement::from_mode(valid_policy.map(|p| p.mode));

        let candidates: Vec<Candidate> = hosts.iter().map(|h| h.candidate.clone()).collect();
        let covered = match valid_policy {
            Some(p) => {
                let (covered, coverage_findings) =
                    mx::coverage(domain, p, enforcement, &candidates);
                findings.extend(coverage_findings);
                covered.into_iter().map(Some).collect()
            }
            None => vec![None; candidates.len()],
        };
        let mut mx_hosts = Vec::new();
        for (host, covered) in hosts.into_iter().zip(covered) {
            let name = host.candidate.name.clone();
            let mut addresses = Vec::new();
            if let Err(e) = &host.addresses {
                findings.push(tls::no_address(&name, e));
            }
            for probe in &host.probes {
                let (address, probe_findings) = tls::evaluate(probe, enforcement);
                addresses.push(address);
                findings.extend(probe_findings);
            }
            if let Ok(n) = host.tlsa
                && n > 0
            {
                findings.push(Finding::new(
                    Stage::Dane,
                    Severity::Info,
                    "dane-tlsa-present",
                    format!("MX host {name} publishes {n} TLSA record(s) at _25._tcp.{name}. Where they are DNSSEC-signed, DANE-capable senders validate {name} with DANE, and MTA-STS must not override a failing DANE validation (RFC 8461 §2)."),
                    "Keep the TLSA records in step with the MX certificate (publish the new key before rolling it).",
                    "RFC 8461 §2",
                ).with_host(name.clone()));
            }
            mx_hosts.push(MxHostReport {
                name,
                preference: host.candidate.preference,
                covered,
                tlsa_records: host.tlsa.ok(),
                addresses,
            });
        }

        let tlsrpt = if stages.tlsrpt {
            let (tlsrpt, tlsrpt_findings) = tlsrpt::evaluate(domain, &rpt_answer);
            findings.extend(tlsrpt_findings);
            tlsrpt
        } else {
            none_tlsrpt()
        };
        (policy_report, mx_hosts, tlsrpt, findings)
    }

    /// Looks up every candidate's addresses and TLSA records, then probes every address.
    async fn observe_hosts(&self, candidates: &[Candidate]) -> Vec<HostObservation> {
        let lookups = candidates.iter().map(|c| async move {
            let tlsa_name = format!("_25._tcp.{}", c.name);
            let (addresses, tlsa) = tokio::join!(self.dns.ip(&c.name), self.dns.tlsa(&tlsa_name));
            let addresses = addresses.map(|mut a| {
                a.truncate(self.options.max_addresses_per_host);
                a
            });
            let tlsa = match tlsa {
                Ok(records) => Ok(records.len()),
                Err(e) if e.is_not_found() => Ok(0),
                Err(e) => Err(e),
            };
            (c.clone(), addresses, tlsa)
        });
        let resolved = futures::future::join_all(lookups).await;
        let jobs: Vec<(usize, String, IpAddr)> = resolved
            .iter()
            .enumerate()
            .flat_map(|(i, (c, addresses, _))| {
                addresses
                    .iter()
                    .flatten()
                    .map(move |ip| (i, c.name.clone(), *ip))
            })
            .collect();
        let probes: Vec<(usize, ProbeReport)> = stream::iter(jobs)
            .map(|(i, host, ip)| async move { (i, self.prober.probe(&host, ip).await) })
            .buffered(self.options.probe_concurrency.max(1))
            .collect()
            .await;
        let mut observations: Vec<HostObservation> = resolved
            .into_iter()
            .map(|(candidate, addresses, tlsa)| HostObservation {
                candidate,
                addresses,
                tlsa,
                probes: Vec::new(),
            })
            .collect();
        for (i, probe) in probes {
            observations[i].probes.push(probe);
        }
        observations
    }
}

fn policy_report(
    domain: &str,
    record: &record::RecordOutcome,
    fetch: Option<&FetchReport>,
    outcome: Option<&PolicyOutcome>,
) -> PolicyReport {
    let record_report = record.record.as_ref().map(|(r, raw)| RecordReport {
        raw: raw.clone(),
        id: r.id.to_string(),
    });
    let status = outcome
        .map(|o| o.status)
        .or(record.status)
        .unwrap_or(PolicyStatus::None);
    let policy = outcome.and_then(|o| o.policy.as_ref());
    let problem = fetch.and_then(|f| match &f.outcome {
        Err(mtasts_net::fetch::FetchError::Certificate(p)) => Some(p),
        _ => None,
    });
    PolicyReport {
        status,
        record: record_report,
        mode: policy.map(|p| p.mode.to_string()),
        mx: policy
            .map(|p| p.mx.iter().map(|m| m.published().into_owned()).collect())
            .unwrap_or_default(),
        max_age: policy.map(|p| p.max_age.seconds()),
        raw: outcome.and_then(|o| o.raw.clone()),
        result_type: outcome
            .and_then(|o| o.result_type.as_ref())
            .map(|r| r.to_string()),
        sender_log: sender_log(status).to_owned(),
        url: Some(mtasts_proto::sts::policy_url(domain)),
        ip: fetch.and_then(|f| f.ip),
        http_status: fetch.and_then(|f| f.status),
        certificate: fetch.and_then(|f| certificate_report(f.certificate.as_ref(), problem)),
    }
}

/// What postfix-mta-sts-resolver logs for this discovery outcome, so users can match their
/// mail logs ("MTA-STS policy missing: STSFetchResult.NONE") to a finding.
fn sender_log(status: PolicyStatus) -> &'static str {
    match status {
        PolicyStatus::Valid => "STSFetchResult.VALID",
        PolicyStatus::None => "STSFetchResult.NONE",
        PolicyStatus::TempError
        | PolicyStatus::FetchError
        | PolicyStatus::WebpkiInvalid
        | PolicyStatus::Invalid => "STSFetchResult.FETCH_ERROR",
    }
}

fn empty_policy(status: PolicyStatus, url: Option<String>) -> PolicyReport {
    PolicyReport {
        status,
        record: None,
        mode: None,
        mx: Vec::new(),
        max_age: None,
        raw: None,
        result_type: None,
        sender_log: sender_log(status).to_owned(),
        url,
        ip: None,
        http_status: None,
        certificate: None,
    }
}

fn none_tlsrpt() -> TlsRptReport {
    TlsRptReport {
        status: TlsRptStatus::None,
        rua: Vec::new(),
        raw: Vec::new(),
    }
}

fn assemble(
    domain: String,
    policy: PolicyReport,
    mx_hosts: Vec<MxHostReport>,
    tlsrpt: TlsRptReport,
    mut findings: Vec<Finding>,
) -> DomainReport {
    let rank = |s: Severity| match s {
        Severity::Error => 0,
        Severity::Warning => 1,
        Severity::Info => 2,
    };
    findings.sort_by_key(|f| (rank(f.severity), f.stage));
    let verdict = Verdict::from_findings(&findings);
    let findings = cap_repeats(findings);
    DomainReport {
        domain,
        verdict,
        policy,
        mx_hosts,
        tlsrpt,
        dmarc: None,
        spf: None,
        dkim: None,
        findings,
    }
}

/// At most this many findings with the same code and severity are kept, so a hostile policy
/// (64 KiB of blank lines) cannot turn into tens of thousands of findings.
pub(crate) const MAX_FINDINGS_PER_CODE: usize = 20;

/// Keeps the first [`MAX_FINDINGS_PER_CODE`] findings of each code and severity and adds one
/// `findings-truncated` note per code that lost some. The verdict is computed before this.
fn cap_repeats(findings: Vec<Finding>) -> Vec<Finding> {
    let mut seen: std::collections::HashMap<(String, Severity), usize> =
        std::collections::HashMap::new();
    let mut kept = Vec::new();
    let mut dropped: Vec<(String, Stage, usize)> = Vec::new();
    for f in findings {
        let n = seen.entry((f.code.clone(), f.severity)).or_insert(0);
        *n += 1;
        if *n <= MAX_FINDINGS_PER_CODE {
            kept.push(f);
        } else if let Some(entry) = dropped.iter_mut().find(|(code, _, _)| *code == f.code) {
            entry.2 += 1;
        } else {
            dropped.push((f.code.clone(), f.stage, 1));
        }
    }
    for (code, stage, count) in dropped {
        kept.push(Finding::new(
            stage,
            Severity::Info,
            "findings-truncated",
            format!("{count} more {code} findings were left out of this report."),
            format!("Fix the {code} findings shown; the others are of the same kind."),
            "",
        ));
    }
    kept
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_findings_are_capped_and_counted() {
        let many: Vec<Finding> = (0..100)
            .map(|i| {
                Finding::new(
                    Stage::Policy,
                    Severity::Warning,
                    "policy-blank-line",
                    format!("line {i}"),
                    "",
                    "",
                )
            })
            .chain([Finding::new(
                Stage::Mx,
                Severity::Error,
                "mx-dns-error",
                "",
                "",
                "",
            )])
            .collect();
        let report = assemble(
            "x.test".into(),
            empty_policy(PolicyStatus::None, None),
            Vec::new(),
            none_tlsrpt(),
            many,
        );
        assert_eq!(report.verdict, Verdict::Fail);
        let blank = report
            .findings
            .iter()
            .filter(|f| f.code == "policy-blank-line")
            .count();
        assert_eq!(blank, MAX_FINDINGS_PER_CODE);
        let note = report
            .findings
            .iter()
            .find(|f| f.code == "findings-truncated")
            .unwrap();
        assert!(
            note.message.starts_with("80 more policy-blank-line"),
            "{}",
            note.message
        );
        assert!(report.findings.iter().any(|f| f.code == "mx-dns-error"));
    }
}
