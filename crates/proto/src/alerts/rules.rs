//! The six rules: one domain's evidence and `now` in, the alerts that hold now out.
//!
//! The evidence is what the reports database already counts (daily rollups per organization,
//! failure groups with their first and last day) plus the current policy's `mx` patterns and
//! what the delegation checks remember ([`RecordMemory`]). Days are UTC midnights in Unix
//! seconds ([`crate::calendar::day_of`]).

use std::collections::{BTreeMap, BTreeSet};

use crate::calendar::{DAY, day_of};
use crate::readiness::date::iso_day;
use crate::readiness::number::percent;
use crate::readiness::tls::advice;
use crate::result_type::ResultType;
use crate::sts::mx_pattern::MxPattern;

use super::{
    Alert, AlertKind, KNOWN_DAYS, RECENT_DAYS, SILENT_AFTER_DAYS, SILENT_DAYS, Thresholds,
};

/// Sessions one organization reported for one day.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsDay {
    /// The day (UTC midnight, Unix seconds).
    pub day: i64,
    /// The reporting organization.
    pub organization: String,
    /// Successful sessions.
    pub success: u64,
    /// Failed sessions.
    pub failure: u64,
}

/// Failed sessions grouped by result type, receiving MX and organization.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FailureSeen {
    /// The result type as reported (`certificate-expired`).
    pub result: String,
    /// The `receiving-mx-hostname`, when reported.
    pub receiving_mx: Option<String>,
    /// The reporting organization.
    pub organization: String,
    /// Failed sessions.
    pub count: u64,
    /// The first day of the reports naming it.
    pub first_day: i64,
    /// The last day of the reports naming it.
    pub last_day: i64,
}

/// What the delegation checks remember of one delegated record of a domain.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RecordMemory {
    /// The last check that found it verified (Unix seconds).
    pub verified_at: Option<i64>,
    /// The first check after that which did not (Unix seconds); `None` while it verifies.
    pub failing_since: Option<i64>,
    /// What the failing check saw.
    pub detail: String,
    /// What it says to change.
    pub fix: String,
}

impl RecordMemory {
    /// The memory after a check at `checked_at` that found the record verified or not, with
    /// what it saw and what to change. A check that decided nothing (a temporary DNS error)
    /// is not passed here.
    pub fn after_check(
        mut self,
        verified: bool,
        checked_at: i64,
        detail: &str,
        fix: &str,
    ) -> RecordMemory {
        if verified {
            self.verified_at = Some(checked_at.max(self.verified_at.unwrap_or(i64::MIN)));
            self.failing_since = None;
            self.detail.clear();
            self.fix.clear();
        } else if self.verified_at.is_some() {
            self.failing_since.get_or_insert(checked_at);
            detail.clone_into(&mut self.detail);
            fix.clone_into(&mut self.fix);
        }
        self
    }

    /// Whether the record verified once and does not now.
    pub fn broken(&self) -> bool {
        self.verified_at.is_some() && self.failing_since.is_some()
    }
}

/// Everything the rules know about one domain.
#[derive(Clone, Copy, Debug)]
pub struct Evidence<'a> {
    /// The hosted domain.
    pub domain: &'a str,
    /// TLS sessions per day and organization, over at least [`super::EVIDENCE_DAYS`] days.
    pub days: &'a [TlsDay],
    /// TLS failure groups over the same days.
    pub failures: &'a [FailureSeen],
    /// The `mx` patterns of the policy served now; `None` when there is none (or `mode: none`).
    pub mx: Option<&'a [MxPattern]>,
    /// The delegated records by name (`_mta-sts.example.com`) with what the checks remember.
    pub records: &'a [(String, RecordMemory)],
}

/// The alerts that hold for `evidence` at `now`, in kind order, then by key.
pub fn evaluate(evidence: &Evidence<'_>, thresholds: Thresholds, now: i64) -> Vec<Alert> {
    let today = day_of(now);
    let recent = today - RECENT_DAYS * DAY;
    let mut out = Vec::new();
    out.extend(failure_rate(evidence, thresholds, recent));
    out.extend(new_failure_types(evidence, recent));
    out.extend(sts_policy(evidence, recent));
    out.extend(uncovered_mx(evidence, recent));
    out.extend(silent_reporters(evidence, today));
    out.extend(broken_records(evidence));
    out.sort_by(|a, b| (a.kind, &a.key).cmp(&(b.kind, &b.key)));
    out
}

/// Sessions per day, over all organizations, oldest first.
fn day_totals(days: &[TlsDay]) -> BTreeMap<i64, (u64, u64)> {
    let mut totals: BTreeMap<i64, (u64, u64)> = BTreeMap::new();
    for d in days {
        let t = totals.entry(d.day).or_default();
        t.0 = t.0.saturating_add(d.success);
        t.1 = t.1.saturating_add(d.failure);
    }
    totals
}

fn over_threshold(success: u64, failure: u64, thresholds: Thresholds) -> bool {
    let total = success.saturating_add(failure);
    total > 0
        && total >= thresholds.min_sessions
        && u128::from(failure) * 1000 >= u128::from(thresholds.failure_permille) * u128::from(total)
}

/// `failure-rate`: judged on the latest day with sessions, if it is recent; `since` is the
/// first day of the run of days over the threshold that ends there.
fn failure_rate(evidence: &Evidence<'_>, thresholds: Thresholds, recent: i64) -> Option<Alert> {
    let totals = day_totals(evidence.days);
    let (&latest, &(success, failure)) = totals.iter().next_back()?;
    if latest < recent || !over_threshold(success, failure, thresholds) {
        return None;
    }
    let since = totals
        .iter()
        .rev()
        .take_while(|(_, (s, f))| over_threshold(*s, *f, thresholds))
        .last()
        .map_or(latest, |(day, _)| *day);
    let share = percent(failure, success.saturating_add(failure)).unwrap_or_default();
    let threshold = percent(u64::from(thresholds.failure_permille), 1000).unwrap_or_default();
    let domain = evidence.domain;
    let top = evidence
        .failures
        .iter()
        .filter(|f| f.last_day >= recent)
        .max_by_key(|f| f.count);
    let fix = match top {
        Some(f) => advice(&result_type(&f.result), f.receiving_mx.as_deref(), domain),
        None => format!("read the failure details of {domain}'s latest TLS reports"),
    };
    Some(Alert {
        kind: AlertKind::FailureRate,
        domain: domain.to_owned(),
        key: String::new(),
        title: format!("{share} of TLS sessions to {domain} failed"),
        what: format!(
            "senders reported {failure} failed of {} TLS sessions to {domain} on {} \
             ({share}; the alert threshold is {threshold})",
            success.saturating_add(failure),
            iso_day(latest)
        ),
        since,
        fix,
    })
}

/// Per result type: the first and last day and the failed sessions, over the recent groups
/// only or over all.
fn by_result<'a>(
    failures: impl Iterator<Item = &'a FailureSeen>,
) -> BTreeMap<&'a str, (i64, i64, u64, Option<&'a str>)> {
    let mut out: BTreeMap<&str, (i64, i64, u64, Option<&str>)> = BTreeMap::new();
    for f in failures {
        let e = out
            .entry(f.result.as_str())
            .or_insert((f.first_day, f.last_day, 0, None));
        e.0 = e.0.min(f.first_day);
        e.1 = e.1.max(f.last_day);
        e.2 = e.2.saturating_add(f.count);
        if e.3.is_none() {
            e.3 = f.receiving_mx.as_deref();
        }
    }
    out
}

/// `new-failure-type`: a result type reported recently that no report in the
/// [`KNOWN_DAYS`] days before its first recent day named.
fn new_failure_types(evidence: &Evidence<'_>, recent: i64) -> Vec<Alert> {
    let domain = evidence.domain;
    let recent_types = by_result(evidence.failures.iter().filter(|f| f.last_day >= recent));
    let mut out = Vec::new();
    for (result, (first, _, count, mx)) in recent_types {
        let known_from = first - KNOWN_DAYS * DAY;
        let known = evidence
            .failures
            .iter()
            .any(|f| f.result == result && f.first_day < first && f.last_day >= known_from);
        // Seen long enough to be more than "new" (within the recent window) is not new either.
        if known || first < recent {
            continue;
        }
        out.push(Alert {
            kind: AlertKind::NewFailureType,
            domain: domain.to_owned(),
            key: result.to_owned(),
            title: format!("new TLS failure for {domain}: {result}"),
            what: format!(
                "senders reported {count} sessions to {domain} failing with {result}, \
                 which no report named in the {KNOWN_DAYS} days before {}",
                iso_day(first)
            ),
            since: first,
            fix: advice(&result_type(result), mx, domain),
        });
    }
    out
}

/// `sts-policy`: a recent `sts-policy-*` or `sts-webpki-invalid` failure.
fn sts_policy(evidence: &Evidence<'_>, recent: i64) -> Vec<Alert> {
    let domain = evidence.domain;
    by_result(
        evidence
            .failures
            .iter()
            .filter(|f| f.last_day >= recent && is_policy_failure(&f.result)),
    )
    .into_iter()
    .map(|(result, (first, last, count, _))| Alert {
        kind: AlertKind::StsPolicy,
        domain: domain.to_owned(),
        key: result.to_owned(),
        title: format!("senders cannot use the MTA-STS policy of {domain} ({result})"),
        what: format!(
            "senders reported {count} sessions to {domain} with {result} from {} to {}: they \
             could not fetch or use https://mta-sts.{domain}/.well-known/mta-sts.txt, so the \
             policy protects nothing for them",
            iso_day(first),
            iso_day(last)
        ),
        since: first,
        fix: advice(&result_type(result), None, domain),
    })
    .collect()
}

/// Whether `result` says the sender could not fetch or trust the policy.
pub fn is_policy_failure(result: &str) -> bool {
    result.starts_with("sts-policy-") || result == "sts-webpki-invalid"
}

/// `uncovered-mx`: a receiving MX of a recent failure that no `mx` pattern matches.
fn uncovered_mx(evidence: &Evidence<'_>, recent: i64) -> Vec<Alert> {
    let Some(patterns) = evidence.mx else {
        return Vec::new();
    };
    let domain = evidence.domain;
    let mut hosts: BTreeMap<String, (i64, u64)> = BTreeMap::new();
    for f in evidence.failures.iter().filter(|f| f.last_day >= recent) {
        let Some(mx) = f.receiving_mx.as_deref() else {
            continue;
        };
        let host = mx.trim_end_matches('.').to_ascii_lowercase();
        if host.is_empty() || patterns.iter().any(|p| p.matches(&host)) {
            continue;
        }
        let e = hosts.entry(host).or_insert((f.first_day, 0));
        e.0 = e.0.min(f.first_day);
        e.1 = e.1.saturating_add(f.count);
    }
    let published: Vec<String> = patterns
        .iter()
        .map(|p| p.published().into_owned())
        .collect();
    hosts
        .into_iter()
        .map(|(host, (first, count))| Alert {
            kind: AlertKind::UncoveredMx,
            domain: domain.to_owned(),
            title: format!("{host} is not in the MTA-STS policy of {domain}"),
            what: format!(
                "senders reached {host} for {domain} ({count} failed sessions), but the \
                 policy's mx lines ({}) do not match it: under enforce they refuse to deliver \
                 there",
                published.join(", ")
            ),
            since: first,
            fix: format!(
                "add mx: {host} to the policy of {domain}, or remove {host} from {domain}'s MX \
                 records"
            ),
            key: host,
        })
        .collect()
}

/// `reporter-silent`: an organization with reports on at least [`SILENT_AFTER_DAYS`] days
/// whose last day is [`SILENT_DAYS`] full days or more before yesterday (yesterday's report
/// may still be on its way).
fn silent_reporters(evidence: &Evidence<'_>, today: i64) -> Vec<Alert> {
    let domain = evidence.domain;
    let mut days: BTreeMap<&str, BTreeSet<i64>> = BTreeMap::new();
    for d in evidence.days {
        days.entry(d.organization.as_str())
            .or_default()
            .insert(d.day);
    }
    let mut out = Vec::new();
    for (organization, days) in days {
        let Some(&last) = days.last() else {
            continue;
        };
        if days.len() < SILENT_AFTER_DAYS || today - last <= SILENT_DAYS * DAY {
            continue;
        }
        out.push(Alert {
            kind: AlertKind::ReporterSilent,
            domain: domain.to_owned(),
            key: organization.to_owned(),
            title: format!("{organization} stopped sending TLS reports for {domain}"),
            what: format!(
                "{organization} reported on {} days, the last for {}, and nothing since",
                days.len(),
                iso_day(last)
            ),
            since: last + DAY,
            fix: format!(
                "check that _smtp._tls.{domain} still publishes the service's rua (the \
                 dashboard's verification says) and that the report intake accepts mail and \
                 HTTPS; a sender that stopped sending mail to {domain} also stops reporting"
            ),
        });
    }
    out
}

/// `delegation-broken`: a record that verified once and does not now.
fn broken_records(evidence: &Evidence<'_>) -> Vec<Alert> {
    let domain = evidence.domain;
    evidence
        .records
        .iter()
        .filter(|(_, memory)| memory.broken())
        .map(|(record, memory)| {
            let since = memory.failing_since.unwrap_or_default();
            let detail = if memory.detail.is_empty() {
                "it no longer points at the service".to_owned()
            } else {
                memory.detail.clone()
            };
            Alert {
                kind: AlertKind::DelegationBroken,
                domain: domain.to_owned(),
                key: record.clone(),
                title: format!("{record} stopped verifying"),
                what: format!(
                    "{record} verified on {}, but not since {}: {detail}",
                    iso_day(memory.verified_at.unwrap_or_default()),
                    iso_day(since)
                ),
                since,
                fix: if memory.fix.is_empty() {
                    format!("publish {record} as the dashboard shows it")
                } else {
                    memory.fix.clone()
                },
            }
        })
        .collect()
}

fn result_type(result: &str) -> ResultType {
    match result.parse() {
        Ok(r) => r,
        Err(never) => match never {},
    }
}

#[cfg(test)]
#[path = "rules_tests.rs"]
mod tests;
