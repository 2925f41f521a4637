//! The TLS-RPT verdict: is it safe to switch a domain's MTA-STS policy to `enforce`? The rule
//! is in the [module docs](super).

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use super::date::{DAY, day_start, short_day};
use super::number::thousands;
use super::{Level, Verdict};
use crate::ResultType;
use crate::sts::mx_pattern::MxPattern;
use crate::sts::policy::Mode;

/// Days with sessions needed before enforcing: one week.
pub const MIN_DAYS: usize = 7;
/// Reporting organizations needed before enforcing.
pub const MIN_ORGANIZATIONS: usize = 2;
/// A failure last seen within this many days up to the newest report still blocks.
pub const RECENT_DAYS: i64 = 7;
/// Reports older than this many days before today say nothing about today.
pub const STALE_DAYS: i64 = 3;

/// The result type of failed sessions a sender counted without any failure details.
pub const UNSPECIFIED: &str = "unspecified";

/// Sessions one organization reported for one UTC day.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsDay {
    /// The day, Unix seconds at 00:00 UTC.
    pub day: i64,
    /// `organization-name`.
    pub organization: String,
    /// Successful sessions.
    pub success: u64,
    /// Failed sessions.
    pub failure: u64,
}

/// Failed sessions of one result type at one receiving MX, from one organization.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsFailure {
    /// The result type.
    pub result: ResultType,
    /// `receiving-mx-hostname`, when the sender gave it.
    pub receiving_mx: Option<String>,
    /// `organization-name`.
    pub organization: String,
    /// Failed sessions.
    pub count: u64,
    /// The first day it was reported (Unix seconds at 00:00 UTC).
    pub first_day: i64,
    /// The last day it was reported.
    pub last_day: i64,
}

/// The policy senders saw, from the newest report.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum Published {
    /// `sts` with `mode: enforce`.
    Enforce,
    /// `no-policy-found`.
    NoPolicy,
    /// `sts` with `mode: none`.
    None,
    /// `sts` with `mode: testing`.
    Testing,
    /// Not known (only `tlsa` policies, or no policy string).
    Unknown,
}

impl Published {
    /// Reads a policy label `TYPE [MODE]` as stored per report policy: `sts testing`,
    /// `sts enforce`, `no-policy-found`, `tlsa`.
    pub fn from_label(label: &str) -> Published {
        let mut words = label.split_whitespace();
        match (words.next(), words.next()) {
            (Some("no-policy-found"), _) => Published::NoPolicy,
            (Some("sts"), Some(mode)) => Published::from_mode(mode.parse().ok()),
            _ => Published::Unknown,
        }
    }

    /// The `sts` policy mode, when known.
    pub fn from_mode(mode: Option<Mode>) -> Published {
        match mode {
            Some(Mode::Enforce) => Published::Enforce,
            Some(Mode::Testing) => Published::Testing,
            Some(Mode::None) => Published::None,
            None => Published::Unknown,
        }
    }
}

/// Everything known about one domain's TLS reports.
#[derive(Clone, Debug)]
pub struct TlsEvidence {
    /// The policy domain.
    pub domain: String,
    /// Sessions per day and organization.
    pub days: Vec<TlsDay>,
    /// Failure groups.
    pub failures: Vec<TlsFailure>,
    /// The policy senders saw most recently.
    pub published: Published,
    /// The `mx` patterns of that policy (empty when not known: the MX list is then not judged).
    pub mx: Vec<MxPattern>,
    /// Now, Unix seconds.
    pub now: i64,
}

/// Whether a problem still happens.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum State {
    /// Reported on the newest day with sessions.
    Current,
    /// Reported in the recent window but not on the newest day: looks fixed, not yet proven.
    Settling,
    /// Not reported for longer than the recent window.
    Fixed,
}

/// One result type at one receiving MX, across organizations.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Problem {
    /// The result type.
    #[serde(serialize_with = "as_str")]
    pub result: ResultType,
    /// The receiving MX, when reported.
    pub receiving_mx: Option<String>,
    /// Whether the policy's `mx` lines match that MX (`None`: no MX or no patterns known).
    pub mx_in_policy: Option<bool>,
    /// The organizations that reported it.
    pub organizations: Vec<String>,
    /// Failed sessions.
    pub count: u64,
    /// First day reported.
    pub first_day: i64,
    /// Last day reported.
    pub last_day: i64,
    /// Whether it still happens.
    pub state: State,
    /// What to do about it.
    pub advice: String,
}

/// The verdict and the problems behind it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct TlsAssessment {
    /// The domain.
    pub domain: String,
    /// What to do.
    pub verdict: Verdict,
    /// Days with sessions.
    pub days: usize,
    /// Organizations that reported sessions.
    pub organizations: Vec<String>,
    /// Successful sessions.
    pub success: u64,
    /// Failed sessions.
    pub failure: u64,
    /// Failures by result type and MX, most sessions first.
    pub problems: Vec<Problem>,
}

/// Applies the TLS-RPT rule of the [module docs](super).
pub fn assess(evidence: &TlsEvidence) -> TlsAssessment {
    let TlsEvidence {
        domain,
        days,
        failures,
        published,
        mx,
        now,
    } = evidence;
    let active: Vec<&TlsDay> = days
        .iter()
        .filter(|d| d.success > 0 || d.failure > 0)
        .collect();
    let day_set: BTreeSet<i64> = active.iter().map(|d| d.day).collect();
    let organizations: BTreeSet<&str> = active.iter().map(|d| d.organization.as_str()).collect();
    let success = active
        .iter()
        .map(|d| d.success)
        .fold(0, u64::saturating_add);
    let failure = active
        .iter()
        .map(|d| d.failure)
        .fold(0, u64::saturating_add);
    let mut out = TlsAssessment {
        domain: domain.clone(),
        verdict: Verdict {
            level: Level::NoData,
            headline: format!(
                "no TLS reports for {domain}: senders send them to the rua of _smtp._tls.{domain}"
            ),
            details: vec![format!(
                "check the TLS-RPT record with `mtasts check {domain}`; reports arrive a day after the traffic"
            )],
        },
        days: day_set.len(),
        organizations: organizations.iter().map(|o| (*o).to_owned()).collect(),
        success,
        failure,
        problems: Vec::new(),
    };
    let (Some(&first), Some(&latest)) = (day_set.first(), day_set.last()) else {
        return out;
    };
    let today = day_start(*now);
    let day = |d: i64| short_day(d, *now);

    out.problems = problems(domain, failures, days, mx, latest);
    let mut details = vec![format!(
        "{} successful and {} failed sessions on {} {} ({} to {}) from {}",
        thousands(success),
        thousands(failure),
        day_set.len(),
        plural(day_set.len(), "day", "days"),
        day(first),
        day(latest),
        list_names(&out.organizations)
    )];
    for p in &out.problems {
        details.push(describe_detail(p, domain, *now));
    }
    let enforced = *published == Published::Enforce;
    let current: Vec<&Problem> = out
        .problems
        .iter()
        .filter(|p| p.state == State::Current)
        .collect();
    let settling: Vec<&Problem> = out
        .problems
        .iter()
        .filter(|p| p.state == State::Settling)
        .collect();
    let more = |n: usize| match n {
        0 => String::new(),
        n => format!(" (and {n} more {})", plural(n, "problem", "problems")),
    };
    let (level, headline) = if let Some(p) = current.first() {
        let what = format!("{} since {}", short_problem(p, domain), day(p.first_day));
        if enforced {
            (
                Level::Fix,
                format!(
                    "enforced and failing: {what}: senders defer or refuse this mail; {}{}",
                    p.advice,
                    more(current.len() - 1)
                ),
            )
        } else {
            (
                Level::Fix,
                format!(
                    "{what}: {} before enforcing{}",
                    p.advice,
                    more(current.len() - 1)
                ),
            )
        }
    } else if let Some(p) = settling.first() {
        let clear = day(p.last_day + RECENT_DAYS * DAY);
        if enforced {
            (
                Level::Enforced,
                format!(
                    "enforced; {} last seen {}, none since",
                    short_problem(p, domain),
                    day(p.last_day)
                ),
            )
        } else {
            (
                Level::Wait,
                format!(
                    "{} last seen {}: it looks fixed; enforce after {clear} if it does not come back{}",
                    short_problem(p, domain),
                    day(p.last_day),
                    more(settling.len() - 1)
                ),
            )
        }
    } else if today - latest > STALE_DAYS * DAY {
        (
            Level::Wait,
            format!(
                "no reports since {}: they say nothing about today; check that senders still reach the rua of _smtp._tls.{domain}",
                day(latest)
            ),
        )
    } else if enforced {
        (
            Level::Enforced,
            format!(
                "enforced; no failures from {} over {}",
                count_of(organizations.len(), "organization", "organizations"),
                count_of(day_set.len(), "day", "days")
            ),
        )
    } else if day_set.len() < MIN_DAYS {
        let missing = MIN_DAYS - day_set.len();
        (
            Level::Wait,
            format!(
                "only {} of reports: wait for {missing} more {} before enforcing",
                count_of(day_set.len(), "day", "days"),
                plural(missing, "day", "days")
            ),
        )
    } else if organizations.len() < MIN_ORGANIZATIONS {
        (
            Level::Wait,
            format!(
                "reports from only one organization ({}): wait for a second sender's before enforcing",
                list_names(&out.organizations)
            ),
        )
    } else if *published == Published::NoPolicy {
        (
            Level::Fix,
            format!(
                "senders found no MTA-STS policy for {domain}: publish one in testing mode (mtasts generate {domain}), then wait for a week of reports"
            ),
        )
    } else if *published == Published::None {
        (
            Level::Wait,
            "the policy is in mode none (being withdrawn): senders ignore it; publish mode testing to start again"
                .to_owned(),
        )
    } else {
        (
            Level::Ready,
            format!(
                "no failures from {} over {}: enforce is safe",
                count_of(organizations.len(), "organization", "organizations"),
                count_of(day_set.len(), "day", "days")
            ),
        )
    };
    out.verdict = Verdict {
        level,
        headline,
        details,
    };
    out
}

/// What to do about `result` at `mx` (when known) for `domain`.
pub fn advice(result: &ResultType, mx: Option<&str>, domain: &str) -> String {
    let at = mx.unwrap_or("the MX host");
    match result {
        ResultType::CertificateExpired => format!("renew the certificate of {at}"),
        ResultType::CertificateHostMismatch => {
            format!("the certificate of {at} does not name it: add {at} to the certificate")
        }
        ResultType::CertificateNotTrusted => format!(
            "the certificate of {at} is not trusted: use one from a public CA and serve the full chain"
        ),
        ResultType::DaneRequired => format!(
            "senders require DANE but found no DNSSEC-signed TLSA records for {at}: publish them"
        ),
        ResultType::DnssecInvalid => format!(
            "DNSSEC validation failed for {domain}'s records: fix the zone's signatures or DS record"
        ),
        ResultType::StarttlsNotSupported => format!("{at} does not offer STARTTLS: enable it"),
        ResultType::StsPolicyFetchError => format!(
            "senders could not fetch https://mta-sts.{domain}/.well-known/mta-sts.txt: fix the policy host"
        ),
        ResultType::StsPolicyInvalid => format!(
            "the policy at mta-sts.{domain} is invalid: fix it (mtasts check {domain} says how)"
        ),
        ResultType::StsWebpkiInvalid => format!(
            "the certificate of mta-sts.{domain} is not valid: fix the policy host's certificate"
        ),
        ResultType::TlsaInvalid => format!(
            "the TLSA records of {at} do not match its certificate: update them (publish the next key's TLSA before a rollover)"
        ),
        ResultType::ValidationFailure => format!(
            "senders could not validate {at} against the policy: check its certificate and that the policy's mx lines name it"
        ),
        ResultType::Other(s) if s == UNSPECIFIED => {
            "senders counted failed sessions without saying why: read the reports' failure details"
                .to_owned()
        }
        ResultType::Other(s) => format!("senders report {s}: read the reports' failure details"),
    }
}

/// Merges the failure groups by (result, MX) across organizations and decides their state.
fn problems(
    domain: &str,
    failures: &[TlsFailure],
    days: &[TlsDay],
    mx: &[MxPattern],
    latest: i64,
) -> Vec<Problem> {
    let mut merged: BTreeMap<(String, Option<String>), Problem> = BTreeMap::new();
    let mut add =
        |result: &ResultType, receiving_mx: Option<&str>, org: &str, count, first, last| {
            let receiving_mx = receiving_mx.map(|m| m.trim_end_matches('.').to_ascii_lowercase());
            let key = (result.as_str().to_owned(), receiving_mx.clone());
            let p = merged.entry(key).or_insert_with(|| Problem {
                result: result.clone(),
                mx_in_policy: match &receiving_mx {
                    Some(host) if !mx.is_empty() => Some(mx.iter().any(|p| p.matches(host))),
                    _ => None,
                },
                receiving_mx,
                organizations: Vec::new(),
                count: 0,
                first_day: first,
                last_day: last,
                state: State::Fixed,
                advice: String::new(),
            });
            if !p.organizations.iter().any(|o| o == org) {
                p.organizations.push(org.to_owned());
            }
            p.count = p.count.saturating_add(count);
            p.first_day = p.first_day.min(first);
            p.last_day = p.last_day.max(last);
        };
    for f in failures.iter().filter(|f| f.count > 0) {
        add(
            &f.result,
            f.receiving_mx.as_deref(),
            &f.organization,
            f.count,
            f.first_day,
            f.last_day,
        );
    }
    // Failed sessions a sender counted without any failure details still fail.
    if failures.iter().all(|f| f.count == 0) {
        for d in days.iter().filter(|d| d.failure > 0) {
            add(
                &ResultType::Other(UNSPECIFIED.to_owned()),
                None,
                &d.organization,
                d.failure,
                d.day,
                d.day,
            );
        }
    }
    let recent = latest - (RECENT_DAYS - 1) * DAY;
    let mut out: Vec<Problem> = merged.into_values().collect();
    for p in &mut out {
        p.organizations.sort();
        // Failed sessions are sessions: a failure cannot be newer than the newest day with
        // sessions. A group's last day can be when a report ends at the next midnight
        // (`00:00:00Z`, exclusive, as Mail.ru sends), which adds a day without sessions.
        p.last_day = p.last_day.min(latest);
        p.first_day = p.first_day.min(p.last_day);
        p.state = if p.last_day >= latest {
            State::Current
        } else if p.last_day >= recent {
            State::Settling
        } else {
            State::Fixed
        };
        p.advice = match (p.mx_in_policy, &p.receiving_mx) {
            (Some(false), Some(host)) => format!(
                "{host} is not in the policy's mx list: add it (or a pattern that covers it) to the policy, or stop using it as an MX"
            ),
            _ => advice(&p.result, p.receiving_mx.as_deref(), domain),
        };
    }
    out.sort_by(|a, b| {
        a.state
            .cmp(&b.state)
            .then(b.count.cmp(&a.count))
            .then(a.result.as_str().cmp(b.result.as_str()))
            .then(a.receiving_mx.cmp(&b.receiving_mx))
    });
    out
}

/// `certificate-expired at mail2` (the MX without the domain's own suffix).
fn short_problem(p: &Problem, domain: &str) -> String {
    let result = p.result.as_str();
    match &p.receiving_mx {
        Some(mx) => {
            let short = mx
                .strip_suffix(domain)
                .and_then(|s| s.strip_suffix('.'))
                .filter(|s| !s.is_empty())
                .unwrap_or(mx);
            format!("{result} at {short}")
        }
        None => result.to_owned(),
    }
}

fn describe_detail(p: &Problem, domain: &str, now: i64) -> String {
    let what = short_problem(p, domain);
    let orgs = list_names(&p.organizations);
    let sessions = count_of_u64(p.count, "failed session", "failed sessions");
    match p.state {
        State::Fixed => format!(
            "{what}: fixed since {} ({sessions} from {} to {}, reported by {orgs})",
            short_day(p.last_day + DAY, now),
            short_day(p.first_day, now),
            short_day(p.last_day, now)
        ),
        State::Current | State::Settling => format!(
            "{what}: {sessions} from {} to {}, reported by {orgs}: {}",
            short_day(p.first_day, now),
            short_day(p.last_day, now),
            p.advice
        ),
    }
}

/// `Google Inc., Microsoft Corporation and 3 others`.
fn list_names(names: &[String]) -> String {
    const SHOWN: usize = 3;
    match names.len() {
        0 => "no one".to_owned(),
        n if n <= SHOWN => names.join(", "),
        n => format!(
            "{} and {} {}",
            names[..SHOWN].join(", "),
            n - SHOWN,
            plural(n - SHOWN, "other", "others")
        ),
    }
}

fn plural<'a>(n: usize, one: &'a str, many: &'a str) -> &'a str {
    if n == 1 { one } else { many }
}

fn count_of(n: usize, one: &str, many: &str) -> String {
    format!("{} {}", thousands(n as u64), plural(n, one, many))
}

fn count_of_u64(n: u64, one: &str, many: &str) -> String {
    format!("{} {}", thousands(n), if n == 1 { one } else { many })
}

fn as_str<S: serde::Serializer>(r: &ResultType, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(r.as_str())
}

#[cfg(test)]
#[path = "tls_tests.rs"]
mod tests;
