//! The DMARC verdict: the pass rate, what `p=quarantine` and `p=reject` would have done to the
//! failing messages, and whether raising the policy is safe. The rule is in the
//! [module docs](super).

use std::collections::BTreeSet;

use serde::Serialize;

use super::date::{DAY, day_start, short_day};
use super::number::{percent, thousands};
use super::tls::{MIN_DAYS, MIN_ORGANIZATIONS, STALE_DAYS};
use super::{Level, Verdict};

/// Failing sources named in a headline; the details name up to [`DETAIL_SOURCES`].
const HEADLINE_SOURCES: usize = 2;
/// Failing sources described in the details.
pub const DETAIL_SOURCES: usize = 10;

/// Messages one organization reported for one UTC day.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DmarcDay {
    /// The day, Unix seconds at 00:00 UTC.
    pub day: i64,
    /// `org_name`.
    pub organization: String,
    /// Messages.
    pub messages: u64,
    /// Messages passing DMARC.
    pub dmarc_pass: u64,
}

/// Messages from one source IP with one header-from domain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DmarcSource {
    /// `source_ip`.
    pub source_ip: String,
    /// `header_from`.
    pub header_from: String,
    /// Messages.
    pub messages: u64,
    /// Messages whose aligned DKIM or SPF passed.
    pub dmarc_pass: u64,
    /// Messages whose aligned DKIM passed.
    pub dkim_pass: u64,
    /// Messages whose aligned SPF passed.
    pub spf_pass: u64,
}

/// Everything known about one domain's DMARC aggregate reports.
#[derive(Clone, Debug)]
pub struct DmarcEvidence {
    /// The policy domain.
    pub domain: String,
    /// Messages per day and organization.
    pub days: Vec<DmarcDay>,
    /// Messages per source.
    pub sources: Vec<DmarcSource>,
    /// The published `p` of the newest report (`none`, `quarantine`, `reject`), when known.
    pub p: Option<String>,
    /// Now, Unix seconds.
    pub now: i64,
}

/// A source some of whose messages fail DMARC.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct FailingSource {
    /// `source_ip`.
    pub source_ip: String,
    /// `header_from`.
    pub header_from: String,
    /// Messages.
    pub messages: u64,
    /// Messages failing DMARC.
    pub failing: u64,
    /// Messages whose aligned DKIM passed.
    pub dkim_pass: u64,
    /// Messages whose aligned SPF passed.
    pub spf_pass: u64,
}

/// The verdict and the numbers behind it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct DmarcAssessment {
    /// The domain.
    pub domain: String,
    /// What to do.
    pub verdict: Verdict,
    /// The published `p`.
    pub p: Option<String>,
    /// Days with messages.
    pub days: usize,
    /// Organizations that reported messages.
    pub organizations: Vec<String>,
    /// Messages.
    pub messages: u64,
    /// Messages passing DMARC.
    pub dmarc_pass: u64,
    /// `97.2%`, `None` without messages.
    pub pass_rate: Option<String>,
    /// Messages that `p=quarantine` would have sent to spam (at `pct=100`).
    pub would_quarantine: u64,
    /// Messages that `p=reject` would have refused (at `pct=100`).
    pub would_reject: u64,
    /// Sources with failing messages, most failing first.
    pub failing_sources: Vec<FailingSource>,
}

/// Applies the DMARC rule of the [module docs](super).
pub fn assess(evidence: &DmarcEvidence) -> DmarcAssessment {
    let DmarcEvidence {
        domain,
        days,
        sources,
        p,
        now,
    } = evidence;
    let active: Vec<&DmarcDay> = days.iter().filter(|d| d.messages > 0).collect();
    let day_set: BTreeSet<i64> = active.iter().map(|d| d.day).collect();
    let organizations: BTreeSet<&str> = active.iter().map(|d| d.organization.as_str()).collect();
    let messages = active
        .iter()
        .map(|d| d.messages)
        .fold(0, u64::saturating_add);
    let dmarc_pass = active
        .iter()
        .map(|d| d.dmarc_pass.min(d.messages))
        .fold(0, u64::saturating_add);
    let failing = messages - dmarc_pass;
    let mut failing_sources: Vec<FailingSource> = sources
        .iter()
        .filter(|s| s.messages > s.dmarc_pass)
        .map(|s| FailingSource {
            source_ip: s.source_ip.clone(),
            header_from: s.header_from.clone(),
            messages: s.messages,
            failing: s.messages - s.dmarc_pass,
            dkim_pass: s.dkim_pass,
            spf_pass: s.spf_pass,
        })
        .collect();
    failing_sources.sort_by(|a, b| {
        b.failing
            .cmp(&a.failing)
            .then_with(|| a.source_ip.cmp(&b.source_ip))
            .then_with(|| a.header_from.cmp(&b.header_from))
    });
    let p = p.as_deref().map(str::to_ascii_lowercase);
    let pass_rate = percent(dmarc_pass, messages);
    let mut out = DmarcAssessment {
        domain: domain.clone(),
        verdict: Verdict {
            level: Level::NoData,
            headline: format!(
                "no DMARC reports for {domain}: receivers send them to the rua of _dmarc.{domain}"
            ),
            details: Vec::new(),
        },
        p: p.clone(),
        days: day_set.len(),
        organizations: organizations.iter().map(|o| (*o).to_owned()).collect(),
        messages,
        dmarc_pass,
        pass_rate: pass_rate.clone(),
        would_quarantine: failing,
        would_reject: failing,
        failing_sources,
    };
    let (Some(&first), Some(&latest), Some(rate)) = (day_set.first(), day_set.last(), pass_rate)
    else {
        return out;
    };
    let day = |d: i64| short_day(d, *now);
    let source_count = sources.iter().filter(|s| s.messages > 0).count();
    let mut details = vec![format!(
        "{} {} from {} on {} ({} to {}) reported by {}: {} pass DMARC ({rate})",
        thousands(messages),
        plural(messages, "message", "messages"),
        count(source_count as u64, "source", "sources"),
        count(day_set.len() as u64, "day", "days"),
        day(first),
        day(latest),
        count(organizations.len() as u64, "organization", "organizations"),
        thousands(dmarc_pass),
    )];
    for s in out.failing_sources.iter().take(DETAIL_SOURCES) {
        let mut line = format!(
            "{} ({}): {} of {} {} (aligned DKIM passed {}, SPF {})",
            s.source_ip,
            s.header_from,
            thousands(s.failing),
            count(s.messages, "message", "messages"),
            plural(s.failing, "fails", "fail"),
            thousands(s.dkim_pass),
            thousands(s.spf_pass)
        );
        if s.failing < s.messages {
            line.push_str(": some of its mail passes, so it is likely yours (forwarded, a mailing list, or a missing DKIM signature)");
        }
        details.push(line);
    }
    if out.failing_sources.len() > DETAIL_SOURCES {
        details.push(format!(
            "and {} more failing sources",
            thousands((out.failing_sources.len() - DETAIL_SOURCES) as u64)
        ));
    }
    let failing_named = || {
        let names: Vec<&str> = out
            .failing_sources
            .iter()
            .take(HEADLINE_SOURCES)
            .map(|s| s.source_ip.as_str())
            .collect();
        let ellipsis = if out.failing_sources.len() > HEADLINE_SOURCES {
            " …"
        } else {
            ""
        };
        format!("{}{ellipsis}", names.join(", "))
    };
    let failing_count = out.failing_sources.len() as u64;
    let today = day_start(*now);
    let (level, headline) = if p.as_deref() == Some("reject") {
        if failing == 0 {
            (
                Level::Enforced,
                format!(
                    "p=reject; {rate} pass from {}",
                    count(source_count as u64, "source", "sources")
                ),
            )
        } else {
            (
                Level::Enforced,
                format!(
                    "p=reject; {rate} pass; {} from {} ({}) failed and {} subject to rejection",
                    count(failing, "message", "messages"),
                    count(failing_count, "source", "sources"),
                    failing_named(),
                    plural(failing, "was", "were")
                ),
            )
        }
    } else if today - latest > STALE_DAYS * DAY {
        (
            Level::Wait,
            format!(
                "no reports since {}: they say nothing about today; check that receivers still reach the rua of _dmarc.{domain}",
                day(latest)
            ),
        )
    } else if day_set.len() < MIN_DAYS {
        let missing = MIN_DAYS - day_set.len();
        (
            Level::Wait,
            format!(
                "{rate} pass over only {} of reports: wait for {missing} more {} before raising the policy",
                count(day_set.len() as u64, "day", "days"),
                plural(missing as u64, "day", "days")
            ),
        )
    } else if organizations.len() < MIN_ORGANIZATIONS {
        (
            Level::Wait,
            format!(
                "{rate} pass, but reports from only one organization ({}): wait for a second receiver's",
                out.organizations.join(", ")
            ),
        )
    } else if failing > 0 {
        let fate = if p.as_deref() == Some("quarantine") {
            "rejected"
        } else {
            "quarantined or rejected"
        };
        (
            Level::Review,
            format!(
                "{rate} pass; {} {}: {} would be {fate} ({}): check that none is yours before raising the policy",
                count(failing_count, "source", "sources"),
                if failing_count == 1 { "fails" } else { "fail" },
                count(failing, "message", "messages"),
                failing_named()
            ),
        )
    } else {
        let next = if p.as_deref() == Some("quarantine") {
            "p=reject is safe"
        } else {
            "p=quarantine, then p=reject, are safe"
        };
        (
            Level::Ready,
            format!(
                "{rate} pass from {} over {}: {next}",
                count(organizations.len() as u64, "organization", "organizations"),
                count(day_set.len() as u64, "day", "days")
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

fn plural<'a>(n: u64, one: &'a str, many: &'a str) -> &'a str {
    if n == 1 { one } else { many }
}

fn count(n: u64, one: &str, many: &str) -> String {
    format!("{} {}", thousands(n), plural(n, one, many))
}

#[cfg(test)]
#[path = "dmarc_tests.rs"]
mod tests;
