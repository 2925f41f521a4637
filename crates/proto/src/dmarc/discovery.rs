//! Which DMARC record applies to a domain, as the two kinds of receivers find it:
//!
//! * **RFC 7489** (§6.6.3, §3.2): `_dmarc.<domain>`; only when no record is there, the
//!   organizational domain from the Public Suffix List (the `psl` crate's built-in copy).
//!   Several records at the domain end discovery: no fallback.
//! * **RFC 9989** (the DNS tree walk): `_dmarc.<domain>`, then one label less at a time up to
//!   the top-level domain, except that a name of eight or more labels jumps straight to its
//!   last seven; at most eight queries. Several records at one name are all discarded and the
//!   walk goes on. The policy is the first record found; the organizational domain is the
//!   name of a `psd=n` record, the name one label below a `psd=y` record, else the
//!   shortest name with a record, else the domain itself.
//!
//! A record found above the domain applies its `sp` (else `p`). Nothing here does I/O: the
//! caller looks up [`names_to_query`] and hands the answers in.

use super::record::{DmarcRecord, Psd, RecordSet, RequestedPolicy, record_name};

/// The most names a tree walk queries (RFC 9989).
pub const MAX_WALK_QUERIES: usize = 8;

/// The RFC 7489 organizational domain: the registrable domain by the Public Suffix List, or the
/// domain itself when it is a public suffix (or under no known suffix rule).
pub fn organizational_domain(domain: &str) -> String {
    match psl::domain(domain.as_bytes()) {
        Some(d) => String::from_utf8_lossy(d.as_bytes()).into_owned(),
        None => domain.to_owned(),
    }
}

/// The domains an RFC 9989 tree walk visits for `domain`, in order (without `_dmarc.`).
pub fn tree_walk(domain: &str) -> Vec<String> {
    let labels: Vec<&str> = domain.split('.').filter(|l| !l.is_empty()).collect();
    let mut walk = vec![labels.join(".")];
    let mut count = labels.len();
    if count >= MAX_WALK_QUERIES {
        count = MAX_WALK_QUERIES - 1;
    } else {
        count = count.saturating_sub(1);
    }
    while count >= 1 {
        walk.push(labels[labels.len() - count..].join("."));
        count -= 1;
    }
    walk
}

/// Every `_dmarc` name a checker must look up to answer for both kinds of receivers.
pub fn names_to_query(domain: &str) -> Vec<String> {
    let mut domains = tree_walk(domain);
    let org = organizational_domain(domain);
    if !domains.contains(&org) {
        domains.push(org);
    }
    domains.iter().map(|d| record_name(d)).collect()
}

/// The answer for one `_dmarc` name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Answer<'a> {
    /// The name exists or not; the RRset as selected (possibly [`RecordSet::Missing`]).
    Found(&'a RecordSet),
    /// The lookup failed temporarily (SERVFAIL, timeout).
    TempError,
}

/// How discovery ended for one kind of receiver.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// A record was found and its policy applies.
    Applied,
    /// A record was found but the receiver ignores it (RFC 7489: no valid `p` and no valid
    /// `rua`; either: a repeated tag).
    Ignored,
    /// No record: DMARC is not applied.
    NoRecord,
    /// Several records where discovery stopped (RFC 7489): DMARC is not applied.
    Multiple,
    /// A lookup failed temporarily: the receiver cannot decide (DMARC `temperror`).
    TempError,
}

impl Outcome {
    /// `applied`, `ignored`, `no-record`, `multiple`, `temp-error`.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Applied => "applied",
            Outcome::Ignored => "ignored",
            Outcome::NoRecord => "no-record",
            Outcome::Multiple => "multiple",
            Outcome::TempError => "temp-error",
        }
    }
}

/// What one kind of receiver does for the domain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Discovery {
    /// The `_dmarc` names the receiver queries, in order, as far as it gets.
    pub queried: Vec<String>,
    /// The organizational domain.
    pub organizational_domain: String,
    /// Where the record used was found (a domain, without `_dmarc.`).
    pub record_domain: Option<String>,
    /// The policy applied to mail from the domain.
    pub policy: Option<RequestedPolicy>,
    /// How discovery ended.
    pub outcome: Outcome,
}

fn answer<'a, F>(lookup: &F, domain: &str) -> Answer<'a>
where
    F: Fn(&str) -> Answer<'a>,
{
    lookup(&record_name(domain))
}

fn policy_for(
    record: &DmarcRecord,
    own: Option<RequestedPolicy>,
    at_domain: bool,
) -> Option<RequestedPolicy> {
    if at_domain {
        own
    } else {
        record.subdomain_policy(own)
    }
}

/// RFC 7489 §6.6.3 for `domain`, with `lookup` answering `_dmarc` names.
pub fn rfc7489<'a, F>(domain: &str, lookup: F) -> Discovery
where
    F: Fn(&str) -> Answer<'a>,
{
    let org = organizational_domain(domain);
    let mut discovery = Discovery {
        queried: vec![record_name(domain)],
        organizational_domain: org.clone(),
        record_domain: None,
        policy: None,
        outcome: Outcome::NoRecord,
    };
    let mut at = domain.to_owned();
    let mut set = answer(&lookup, domain);
    if matches!(set, Answer::Found(RecordSet::Missing { .. })) && org != domain {
        discovery.queried.push(record_name(&org));
        set = answer(&lookup, &org);
        at = org;
    }
    match set {
        Answer::TempError => discovery.outcome = Outcome::TempError,
        Answer::Found(RecordSet::Missing { .. }) => {}
        Answer::Found(RecordSet::Multiple { .. }) => {
            discovery.outcome = Outcome::Multiple;
            discovery.record_domain = Some(at);
        }
        Answer::Found(RecordSet::One { parsed, .. }) => {
            let record = &parsed.record;
            discovery.policy = policy_for(record, record.policy_7489(), at == domain);
            discovery.outcome = if discovery.policy.is_some() {
                Outcome::Applied
            } else {
                Outcome::Ignored
            };
            discovery.record_domain = Some(at);
        }
    }
    discovery
}

/// The RFC 9989 tree walk for `domain`, with `lookup` answering `_dmarc` names.
pub fn rfc9989<'a, F>(domain: &str, lookup: F) -> Discovery
where
    F: Fn(&str) -> Answer<'a>,
{
    let walk = tree_walk(domain);
    let mut discovery = Discovery {
        queried: Vec::new(),
        organizational_domain: domain.to_owned(),
        record_domain: None,
        policy: None,
        outcome: Outcome::NoRecord,
    };
    // Policy discovery: the first name with exactly one record.
    for target in &walk {
        discovery.queried.push(record_name(target));
        match answer(&lookup, target) {
            Answer::TempError => {
                discovery.outcome = Outcome::TempError;
                break;
            }
            Answer::Found(RecordSet::One { parsed, .. }) => {
                let record = &parsed.record;
                discovery.policy = policy_for(record, record.policy_9989(), target == domain);
                discovery.outcome = if discovery.policy.is_some() {
                    Outcome::Applied
                } else {
                    Outcome::Ignored
                };
                discovery.record_domain = Some(target.clone());
                break;
            }
            Answer::Found(_) => {}
        }
    }
    discovery.organizational_domain = organizational_domain_9989(domain, &walk, &lookup);
    // The organizational-domain walk goes on past the policy record.
    for target in &walk {
        let name = record_name(target);
        if !discovery.queried.contains(&name) {
            discovery.queried.push(name);
        }
        if let Answer::Found(RecordSet::One { parsed, .. }) = answer(&lookup, target)
            && parsed.record.psd != Psd::Unknown
        {
            break;
        }
    }
    discovery
}

/// The RFC 9989 organizational domain: see the module documentation. A temporary failure on
/// the way is read as "no record there".
fn organizational_domain_9989<'a, F>(domain: &str, walk: &[String], lookup: &F) -> String
where
    F: Fn(&str) -> Answer<'a>,
{
    let mut shortest_with_record: Option<&String> = None;
    for target in walk {
        let Answer::Found(RecordSet::One { parsed, .. }) = answer(lookup, target) else {
            continue;
        };
        match parsed.record.psd {
            Psd::No => return target.clone(),
            Psd::Yes => {
                if target == domain {
                    return domain.to_owned();
                }
                let below = target.split('.').count() + 1;
                let labels: Vec<&str> = domain.split('.').collect();
                return labels[labels.len().saturating_sub(below)..].join(".");
            }
            Psd::Unknown => shortest_with_record = Some(target),
        }
    }
    shortest_with_record
        .cloned()
        .unwrap_or_else(|| domain.to_owned())
}

#[cfg(test)]
#[path = "discovery_tests.rs"]
mod tests;
