//! The `_dmarc` TXT record stage (RFC 7489, RFC 9989): which record applies to the domain for
//! each kind of receiver, every tag, the policy's next safe step, and the §7.1 authorization of
//! report destinations outside the domain.
//!
//! The engine looks up [`names_to_query`](mtasts_proto::dmarc::discovery::names_to_query),
//! hands the answers to [`Answers::new`], looks up [`authorization_names`] and calls
//! [`evaluate`].

use std::sync::LazyLock;

use mtasts_net::dns::DnsError;
use mtasts_proto::Severity;
use mtasts_proto::dmarc::discovery::{self, Answer, Discovery, Outcome, organizational_domain};
use mtasts_proto::dmarc::record::{
    self, DmarcRecord, Psd, RecordSet, ReportUri, RequestedPolicy, authorization_name, record_name,
};
use mtasts_proto::txt::TxtRr;

use crate::finding::{Finding, Stage};
use crate::report_dmarc::{
    DiscoveryReport, DmarcRecordReport, DmarcReport, DmarcStatus, ReportUriReport,
};

const RULE: &str = "RFC 7489 §6.6.3";
const RULE_BIS: &str = "RFC 9989";
const RULE_AUTH: &str = "RFC 7489 §7.1";

/// At most this many external report destinations are looked up per domain.
pub const MAX_AUTHORIZATIONS: usize = 8;

static MISSING: LazyLock<RecordSet> = LazyLock::new(|| RecordSet::Missing {
    diagnostics: Vec::new(),
});

/// The `_dmarc` answers of one domain, each RRset selected.
pub struct Answers {
    sets: Vec<(String, Result<RecordSet, DnsError>)>,
}

impl Answers {
    /// From the lookups of `_dmarc` names. NXDOMAIN and NODATA are "no record"; other errors
    /// are temporary.
    pub fn new(answers: Vec<(String, Result<Vec<TxtRr>, DnsError>)>) -> Self {
        let sets = answers
            .into_iter()
            .map(|(name, answer)| {
                let set = match answer {
                    Ok(rrset) => Ok(record::select(&rrset)),
                    Err(e) if e.is_not_found() => Ok(RecordSet::Missing {
                        diagnostics: Vec::new(),
                    }),
                    Err(e) => Err(e),
                };
                (name, set)
            })
            .collect();
        Answers { sets }
    }

    fn get(&self, name: &str) -> Option<&Result<RecordSet, DnsError>> {
        self.sets.iter().find(|(n, _)| n == name).map(|(_, s)| s)
    }

    /// The answer for a `_dmarc` name; a name never looked up counts as no record.
    fn answer(&self, name: &str) -> Answer<'_> {
        match self.get(name) {
            Some(Ok(set)) => Answer::Found(set),
            Some(Err(_)) => Answer::TempError,
            None => Answer::Found(&MISSING),
        }
    }

    fn set_at(&self, domain: &str) -> Option<&RecordSet> {
        match self.get(&record_name(domain)) {
            Some(Ok(set)) => Some(set),
            _ => None,
        }
    }

    fn error_at(&self, domain: &str) -> Option<&DnsError> {
        match self.get(&record_name(domain)) {
            Some(Err(e)) => Some(e),
            _ => None,
        }
    }
}

/// Both receivers' discoveries.
struct Discoveries {
    old: Discovery,
    bis: Discovery,
}

fn discover(domain: &str, answers: &Answers) -> Discoveries {
    Discoveries {
        old: discovery::rfc7489(domain, |n: &str| answers.answer(n)),
        bis: discovery::rfc9989(domain, |n: &str| answers.answer(n)),
    }
}

/// The record in use and its domain: RFC 7489 receivers' choice, else RFC 9989 receivers'.
fn record_in_use<'a>(d: &Discoveries, answers: &'a Answers) -> Option<(String, &'a RecordSet)> {
    [&d.old, &d.bis].into_iter().find_map(|disc| {
        let domain = disc.record_domain.as_ref()?;
        let set = answers.set_at(domain)?;
        set.one().map(|_| (domain.clone(), set))
    })
}

/// A destination outside the record domain's organizational domain (RFC 7489 §7.1).
fn external(record_domain: &str, destination: &str) -> bool {
    organizational_domain(record_domain) != organizational_domain(destination)
}

/// The §7.1 authorization names to look up for the record in use (at most
/// [`MAX_AUTHORIZATIONS`], without repeats).
pub fn authorization_names(domain: &str, answers: &Answers) -> Vec<String> {
    let d = discover(domain, answers);
    let Some((record_domain, set)) = record_in_use(&d, answers) else {
        return Vec::new();
    };
    let record = set.one().expect("record_in_use returns a single record");
    let mut names = Vec::new();
    for uri in record.rua.iter().chain(&record.ruf) {
        if let Some(dest) = &uri.destination
            && external(&record_domain, dest)
        {
            let name = authorization_name(&record_domain, dest);
            if !names.contains(&name) && names.len() < MAX_AUTHORIZATIONS {
                names.push(name);
            }
        }
    }
    names
}

fn discovery_report(d: &Discovery) -> DiscoveryReport {
    DiscoveryReport {
        outcome: d.outcome.as_str().to_owned(),
        queried: d.queried.clone(),
        organizational_domain: d.organizational_domain.clone(),
        record_domain: d.record_domain.clone(),
        policy: d.policy.map(|p| p.as_str().to_owned()),
    }
}

fn finding(severity: Severity, code: &str, message: String, fix: String, rule: &str) -> Finding {
    Finding::new(Stage::Dmarc, severity, code, message, fix, rule)
}

fn example_record(domain: &str, policy: RequestedPolicy) -> String {
    let text = record::record_text(policy, &[format!("mailto:dmarc@{domain}")]);
    format!("{} TXT \"{text}\"", record_name(domain))
}

/// Evaluates the answers for one domain. `authorizations` holds the lookups of
/// [`authorization_names`].
pub fn evaluate(
    domain: &str,
    answers: &Answers,
    authorizations: &[(String, Result<Vec<TxtRr>, DnsError>)],
) -> (DmarcReport, Vec<Finding>) {
    let d = discover(domain, answers);
    let mut findings = Vec::new();
    let own = answers.set_at(domain);
    let raw = match own {
        Some(RecordSet::One { raw, .. }) => vec![raw.clone()],
        Some(RecordSet::Multiple { raws, .. }) => raws.clone(),
        _ => Vec::new(),
    };
    // Notes on what else is published at _dmarc.<domain>.
    if let Some(
        RecordSet::Missing { diagnostics }
        | RecordSet::One { diagnostics, .. }
        | RecordSet::Multiple { diagnostics, .. },
    ) = own
    {
        findings.extend(
            diagnostics
                .iter()
                .map(|diag| Finding::from_diagnostic(Stage::Dmarc, diag, None)),
        );
    }

    let status = match d.old.outcome {
        Outcome::Applied => DmarcStatus::Valid,
        Outcome::NoRecord => DmarcStatus::None,
        Outcome::Ignored | Outcome::Multiple => DmarcStatus::Invalid,
        Outcome::TempError => DmarcStatus::TempError,
    };
    discovery_findings(domain, answers, &d, &mut findings);

    let in_use = record_in_use(&d, answers);
    let record_report = in_use.as_ref().and_then(|(record_domain, set)| {
        let RecordSet::One { raw, parsed, .. } = set else {
            return None;
        };
        findings.extend(
            parsed
                .diagnostics
                .iter()
                .map(|diag| Finding::from_diagnostic(Stage::Dmarc, diag, None)),
        );
        let r = &parsed.record;
        policy_findings(domain, record_domain, r, &d, &mut findings);
        let uris = |list: &[ReportUri], findings: &mut Vec<Finding>, tag: &str| {
            list.iter()
                .map(|u| uri_report(record_domain, u, authorizations, findings, tag))
                .collect()
        };
        let rua = uris(&r.rua, &mut findings, "rua");
        let ruf = uris(&r.ruf, &mut findings, "ruf");
        Some(DmarcRecordReport {
            domain: record_domain.clone(),
            raw: raw.clone(),
            p: r.p.map(|p| p.as_str().to_owned()),
            sp: r.sp.map(|p| p.as_str().to_owned()),
            np: r.np.map(|p| p.as_str().to_owned()),
            adkim: if r.adkim_strict { "s" } else { "r" }.to_owned(),
            aspf: if r.aspf_strict { "s" } else { "r" }.to_owned(),
            pct: r.pct,
            fo: r.fo.clone(),
            psd: match r.psd {
                Psd::Yes => "y",
                Psd::No => "n",
                Psd::Unknown => "u",
            }
            .to_owned(),
            testing: r.testing,
            rua,
            ruf,
        })
    });
    let report = DmarcReport {
        status,
        policy: d.old.policy.map(|p| p.as_str().to_owned()),
        record: record_report,
        raw,
        rfc7489: discovery_report(&d.old),
        rfc9989: discovery_report(&d.bis),
    };
    (report, findings)
}

/// Findings about how the record was found (missing, several, ignored, DNS errors, the two
/// kinds of receivers disagreeing).
fn discovery_findings(
    domain: &str,
    answers: &Answers,
    d: &Discoveries,
    findings: &mut Vec<Finding>,
) {
    let name = record_name(domain);
    if d.old.outcome == Outcome::TempError || d.bis.outcome == Outcome::TempError {
        let failed: Vec<String> = d
            .old
            .queried
            .iter()
            .chain(&d.bis.queried)
            .filter_map(|n| match answers.get(n) {
                Some(Err(e)) => Some(format!("{n} ({e})")),
                _ => None,
            })
            .fold(Vec::new(), |mut acc, n| {
                if !acc.contains(&n) {
                    acc.push(n);
                }
                acc
            });
        findings.push(finding(
            Severity::Error,
            "dmarc-dns-error",
            format!(
                "The TXT lookup of {} failed temporarily: receivers cannot find the DMARC policy and report a temperror; some defer the mail ({RULE}).",
                failed.join(", ")
            ),
            format!(
                "Make sure every authoritative name server answers TXT queries for {name} and its parents (NXDOMAIN or an answer, never SERVFAIL or a timeout)."
            ),
            RULE,
        ));
        return;
    }
    if (d.old.outcome, d.bis.outcome) == (Outcome::NoRecord, Outcome::NoRecord) {
        findings.push(finding(
                Severity::Warning,
                "dmarc-record-missing",
                format!(
                    "No DMARC record at {name} or at its organizational domain {}: receivers apply no DMARC policy, so anyone can send mail with this domain in From:, and you get no reports about who does (RFC 7489 §6.6.3). Google and Yahoo require DMARC of bulk senders.",
                    d.old.organizational_domain
                ),
                format!(
                    "Publish {} (`mtasts generate dmarc {domain}` prints it), read the aggregate reports, then move to quarantine and reject.",
                    example_record(domain, RequestedPolicy::None)
                ),
                RULE,
            ));
    }
    if let Some(RecordSet::Multiple { raws, .. }) = answers.set_at(domain) {
        let bis = match (&d.bis.record_domain, d.bis.outcome) {
            (Some(at), Outcome::Applied) => {
                format!("RFC 9989 receivers discard them and use the record of {at}")
            }
            _ => "RFC 9989 receivers discard them too".to_owned(),
        };
        findings.push(finding(
            Severity::Error,
            "dmarc-record-multiple",
            format!(
                "{} TXT records at {name} start with v=DMARC1 ({}): RFC 7489 receivers apply no DMARC policy; {bis} (RFC 7489 §6.6.3 step 5).",
                raws.len(),
                raws.iter().map(|r| format!("{r:?}")).collect::<Vec<_>>().join(", ")
            ),
            "Keep exactly one v=DMARC1 record at the name: merge the tags you need into it.".to_owned(),
            RULE,
        ));
    } else if d.old.outcome == Outcome::Multiple
        && let Some(at) = &d.old.record_domain
    {
        findings.push(finding(
            Severity::Error,
            "dmarc-record-multiple",
            format!(
                "Several TXT records at {} start with v=DMARC1: RFC 7489 receivers, which look there for {domain}, apply no DMARC policy (RFC 7489 §6.6.3 step 5).",
                record_name(at)
            ),
            format!("Keep exactly one v=DMARC1 record at {}.", record_name(at)),
            RULE,
        ));
    }
    if d.old.outcome == Outcome::Ignored || d.bis.outcome == Outcome::Ignored {
        let at = d
            .old
            .record_domain
            .clone()
            .or_else(|| d.bis.record_domain.clone())
            .unwrap_or_else(|| domain.to_owned());
        let who = match (d.old.outcome, d.bis.outcome) {
            (Outcome::Ignored, Outcome::Ignored) => "Receivers ignore it",
            (Outcome::Ignored, _) => {
                "RFC 7489 receivers ignore it (RFC 9989 receivers apply p=none)"
            }
            _ => "RFC 9989 receivers ignore it",
        };
        findings.push(finding(
            Severity::Error,
            "dmarc-record-invalid",
            format!(
                "The DMARC record at {} cannot be used: it has a repeated tag, or no valid p= and no valid rua=. {who}, so the domain has no DMARC policy ({RULE} step 6).",
                record_name(&at)
            ),
            format!(
                "Publish one well-formed record, for example {}.",
                example_record(&at, RequestedPolicy::None)
            ),
            RULE,
        ));
    }
    // Receivers that both apply no policy treat the mail alike, whichever (unusable) record
    // each stopped at: several records at the domain are "no policy" to both (RFC 7489
    // §6.6.3 step 5, RFC 9989 §4.10), so that is no disagreement.
    let disagree = match (d.old.policy, d.bis.policy) {
        (None, None) => false,
        (old, bis) => old != bis || d.old.record_domain != d.bis.record_domain,
    };
    if disagree {
        let describe = |disc: &Discovery| match (&disc.record_domain, disc.policy) {
            (Some(at), Some(p)) => format!("p={p} from {}", record_name(at)),
            (Some(at), None) => format!("no policy ({} is not usable)", record_name(at)),
            (None, _) => "no policy".to_owned(),
        };
        findings.push(finding(
            Severity::Warning,
            "dmarc-receivers-disagree",
            format!(
                "Receivers disagree about {domain}: RFC 7489 receivers (Public Suffix List, organizational domain {}) apply {}; RFC 9989 receivers (DNS tree walk, organizational domain {}) apply {}.",
                d.old.organizational_domain,
                describe(&d.old),
                d.bis.organizational_domain,
                describe(&d.bis)
            ),
            format!(
                "Publish one record at {name} so that both kinds of receivers use the same policy."
            ),
            RULE_BIS,
        ));
    }
    if answers.error_at(domain).is_none()
        && matches!(answers.set_at(domain), Some(RecordSet::Missing { .. }))
        && let (Some(at), Some(p)) = (&d.old.record_domain, d.old.policy)
        && at != domain
    {
        findings.push(finding(
            Severity::Info,
            "dmarc-policy-inherited",
            format!(
                "{domain} has no record of its own: receivers use the record of {at} and apply its subdomain policy, p={p} ({RULE})."
            ),
            format!(
                "Nothing to do if {at}'s sp= suits {domain}; publish a record at {name} to set its own policy."
            ),
            RULE,
        ));
    }
}

/// Findings about the strength of the policy in use, with the next safe step.
fn policy_findings(
    domain: &str,
    record_domain: &str,
    r: &DmarcRecord,
    d: &Discoveries,
    findings: &mut Vec<Finding>,
) {
    let Some(policy) = d.old.policy.or(d.bis.policy) else {
        return;
    };
    let at = record_name(record_domain);
    let reports = if r.rua.is_empty() {
        format!("Add rua=mailto:dmarc@{record_domain} to get reports. ")
    } else {
        String::new()
    };
    match policy {
        RequestedPolicy::None => findings.push(finding(
            Severity::Warning,
            "dmarc-policy-none",
            format!(
                "The DMARC policy for {domain} is p=none: receivers only report, and mail that forges the domain is still delivered ({at})."
            ),
            format!("{reports}{}", record::next_step_advice(policy, domain)),
            "RFC 7489 §6.3",
        )),
        RequestedPolicy::Quarantine => findings.push(finding(
            Severity::Info,
            "dmarc-policy-quarantine",
            format!(
                "The DMARC policy for {domain} is p=quarantine: failing mail goes to spam folders ({at})."
            ),
            format!("{reports}{}", record::next_step_advice(policy, domain)),
            "RFC 7489 §6.3",
        )),
        RequestedPolicy::Reject => {}
    }
    if r.pct_given && r.pct < 100 && policy != RequestedPolicy::None {
        let lower = match policy {
            RequestedPolicy::Reject => "quarantine",
            _ => "none",
        };
        findings.push(finding(
            Severity::Warning,
            "dmarc-pct-partial",
            format!(
                "pct={} at {at}: RFC 7489 receivers apply p={policy} to only {}% of failing mail and p={lower} to the rest; RFC 9989 removed pct, so its receivers apply p={policy} to all of it.",
                r.pct, r.pct
            ),
            "Raise pct step by step (25, 50, 100) while the reports stay clean, then remove pct= (100 is the default); to test a policy under RFC 9989 use t=y.".to_owned(),
            "RFC 7489 §6.3, RFC 9989",
        ));
    }
    if r.testing && policy != RequestedPolicy::None {
        findings.push(finding(
            Severity::Warning,
            "dmarc-testing",
            format!(
                "t=y at {at}: RFC 9989 receivers treat p={policy} as one step lower while testing (RFC 7489 receivers ignore t)."
            ),
            "Remove t=y (or set t=n) once the reports show no legitimate mail failing.".to_owned(),
            RULE_BIS,
        ));
    }
    if record_domain == domain
        && policy != RequestedPolicy::None
        && r.sp == Some(RequestedPolicy::None)
    {
        findings.push(finding(
            Severity::Warning,
            "dmarc-subdomain-policy-none",
            format!(
                "sp=none at {at}: subdomains of {domain} without their own record are not protected, although {domain} has p={policy}."
            ),
            format!(
                "Publish sp=quarantine (or remove sp= so p={policy} covers subdomains) after checking the reports for mail from subdomains."
            ),
            "RFC 7489 §6.3",
        ));
    }
    if r.rua.is_empty() {
        let severity = if policy == RequestedPolicy::None {
            Severity::Warning
        } else {
            Severity::Info
        };
        findings.push(finding(
            severity,
            "dmarc-rua-missing",
            format!(
                "The record at {at} has no rua=: no receiver sends aggregate reports, so you cannot see which sources fail before tightening the policy."
            ),
            format!("Add rua=mailto:dmarc@{record_domain} (or an address at a report service that authorizes it)."),
            "RFC 7489 §7.2",
        ));
    }
}

/// One report URI with its authorization, and a finding when it does not work.
fn uri_report(
    record_domain: &str,
    uri: &ReportUri,
    authorizations: &[(String, Result<Vec<TxtRr>, DnsError>)],
    findings: &mut Vec<Finding>,
    tag: &str,
) -> ReportUriReport {
    let mut report = ReportUriReport {
        uri: uri.uri.clone(),
        destination: uri.destination.clone(),
        external: false,
        authorization: None,
        authorized: None,
    };
    let Some(dest) = &uri.destination else {
        return report;
    };
    if !external(record_domain, dest) {
        return report;
    }
    let name = authorization_name(record_domain, dest);
    report.external = true;
    report.authorization = Some(name.clone());
    let answer = authorizations
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, a)| a);
    match answer {
        Some(Ok(rrset)) if rrset.iter().any(|rr| record::is_candidate(&String::from_utf8_lossy(&rr.concat()))) => {
            report.authorized = Some(true);
        }
        Some(Ok(_)) => {
            report.authorized = Some(false);
            findings.push(unauthorized(record_domain, dest, &name, &uri.uri, tag));
        }
        Some(Err(e)) if e.is_not_found() => {
            report.authorized = Some(false);
            findings.push(unauthorized(record_domain, dest, &name, &uri.uri, tag));
        }
        Some(Err(e)) => findings.push(finding(
            Severity::Warning,
            "dmarc-report-authorization-dns-error",
            format!(
                "The TXT lookup of {name}, which authorizes {dest} to receive the {tag} reports of {record_domain}, failed temporarily ({e}); receivers that cannot verify it send no reports there ({RULE_AUTH})."
            ),
            format!("Ask the operator of {dest} to make sure its name servers answer TXT queries for {name}."),
            RULE_AUTH,
        )),
        // More destinations than the lookup limit: not checked.
        None => {}
    }
    report
}

fn unauthorized(record_domain: &str, dest: &str, name: &str, uri: &str, tag: &str) -> Finding {
    finding(
        Severity::Warning,
        "dmarc-report-authorization-missing",
        format!(
            "{tag}={uri} sends reports outside {record_domain}, but {dest} publishes no v=DMARC1 record at {name}: receivers do not send the reports there ({RULE_AUTH})."
        ),
        format!(
            "Ask the operator of {dest} to publish {name} TXT \"v=DMARC1\", or use a report address inside {record_domain}."
        ),
        RULE_AUTH,
    )
}

#[cfg(test)]
#[path = "dmarc_tests.rs"]
mod tests;
