//! The RFC 8460 §4.4 report JSON of one (day, recipient domain, TLSRPT record), within a size
//! cap (C144): over it, the failure details with the smallest counts are left out (the
//! summaries stay exact), which is what a reader needs least.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::calendar::DAY;
use crate::tlsrpt::report::{MAX_COUNT, MAX_FAILURE_DETAILS, MAX_POLICIES, UtcTime};
use crate::tlsrpt::session::{FailureKey, KeyError, PolicyKey, push_json_string};

/// The default cap on a report's uncompressed JSON, in bytes (C144; Stalwart's default too).
pub const DEFAULT_MAX_REPORT_BYTES: usize = 5 * 1024 * 1024;

/// One policy's counts for the day, as the store aggregated them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AggregatedPolicy {
    /// The policy.
    pub policy: PolicyKey,
    /// Sessions that succeeded under it (`total-successful-session-count`).
    pub successes: u64,
    /// Sessions that failed under it (`total-failure-session-count`).
    pub failures: u64,
    /// Failure details with their counts (`failed-session-count`); the same key may repeat
    /// (it is summed).
    pub details: Vec<(FailureKey, u64)>,
}

impl AggregatedPolicy {
    /// The policy from stored keys ([`PolicyKey::to_key`], [`FailureKey::to_key`]), as the store
    /// keeps them; a key that is not canonical is an error.
    pub fn from_keys(
        policy: &str,
        successes: u64,
        failures: u64,
        details: &[(String, u64)],
    ) -> Result<Self, KeyError> {
        Ok(AggregatedPolicy {
            policy: PolicyKey::from_key(policy)?,
            successes,
            failures,
            details: details
                .iter()
                .map(|(key, count)| Ok((FailureKey::from_key(key)?, *count)))
                .collect::<Result<_, KeyError>>()?,
        })
    }
}

/// What the report says about itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReportMeta {
    /// `organization-name`.
    pub organization: String,
    /// `contact-info` (an e-mail address); its domain is the submitter.
    pub contact: String,
    /// Start of the UTC day (Unix seconds, a multiple of 86400).
    pub day: i64,
    /// The recipient domain the report is for (the `policy-domain` of a policy that has none).
    pub domain: String,
    /// `report-id` ([`super::report_id`]).
    pub report_id: String,
}

/// A built report.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BuiltReport {
    /// The report JSON (UTF-8, compact).
    pub json: String,
    /// How many failure-details entries were left out to stay within the size cap (or
    /// [`MAX_FAILURE_DETAILS`]).
    pub details_dropped: usize,
}

/// Why no report could be built.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// Even without any failure details the report exceeds the cap.
    #[error("the report is {size} bytes without failure details, above the {limit}-byte cap")]
    TooLarge {
        /// Its size without details.
        size: usize,
        /// The cap.
        limit: usize,
    },
    /// More distinct policies than a report may hold.
    #[error("{count} policies, more than the {MAX_POLICIES} a report may hold")]
    TooManyPolicies {
        /// How many.
        count: usize,
    },
    /// A count above 2^53 − 1 (I-JSON's exact integers, RFC 7493 §2.2).
    #[error("a session count of {count} is above {MAX_COUNT}")]
    CountTooLarge {
        /// The count.
        count: u64,
    },
    /// A required text is empty or the day is not a UTC midnight in years 0000–9999.
    #[error("{0}")]
    BadMeta(&'static str),
}

/// One policy ready to write: its key text, summary and details (sorted, rendered).
struct Entry {
    policy: PolicyKey,
    successes: u64,
    failures: u64,
    /// `(count, key, rendered entry)`, count descending then key ascending.
    details: Vec<(u64, String)>,
}

/// Builds the report JSON: RFC 8460 names exactly, every member the RFC names (`mx-host` only
/// when the policy has patterns, `failure-details` always, empty when there are none);
/// `date-range` is `DAYT00:00:00Z` to
/// `DAYT23:59:59Z`; policies sorted by their canonical key (equal keys merged, counts summed);
/// failure details sorted by count, largest first. Over `max_bytes`, failure details with the
/// smallest counts are left out until it fits, and [`BuiltReport::details_dropped`] says how
/// many.
pub fn build_report(
    meta: &ReportMeta,
    policies: &[AggregatedPolicy],
    max_bytes: usize,
) -> Result<BuiltReport, BuildError> {
    if meta.organization.trim().is_empty() {
        return Err(BuildError::BadMeta("organization-name is empty"));
    }
    if meta.contact.trim().is_empty() {
        return Err(BuildError::BadMeta("contact-info is empty"));
    }
    if meta.report_id.is_empty() {
        return Err(BuildError::BadMeta("report-id is empty"));
    }
    if meta.domain.is_empty() {
        return Err(BuildError::BadMeta("the report domain is empty"));
    }
    let (Some(begin), Some(end)) = (
        UtcTime::from_unix_seconds(meta.day),
        UtcTime::from_unix_seconds(meta.day.saturating_add(DAY - 1)),
    ) else {
        return Err(BuildError::BadMeta("the day is outside years 0000-9999"));
    };
    if meta.day.rem_euclid(DAY) != 0 {
        return Err(BuildError::BadMeta(
            "the day does not start at UTC midnight",
        ));
    }

    let mut entries = merge(meta, policies)?;
    let mut dropped = 0;
    // The reader's limit on details per report (MAX_FAILURE_DETAILS) is a cap too.
    let total: usize = entries.iter().map(|e| e.details.len()).sum();
    let mut order = drop_order(&entries);
    let mut excess = total.saturating_sub(MAX_FAILURE_DETAILS);
    let mut kept: Vec<usize> = entries.iter().map(|e| e.details.len()).collect();
    let mut size = render(meta, begin, end, &entries, &kept).len();
    let mut next = 0;
    while excess > 0 || size > max_bytes {
        let Some(&(policy, detail)) = order.get(next) else {
            return Err(BuildError::TooLarge {
                size,
                limit: max_bytes,
            });
        };
        next += 1;
        // Details are removed from each policy's end (its smallest), so `detail` is the last kept.
        debug_assert_eq!(detail + 1, kept[policy]);
        let len = entries[policy].details[detail].1.len();
        // The entry and its separating comma (the first entry has none after it leaves).
        size -= if kept[policy] > 1 { len + 1 } else { len };
        kept[policy] -= 1;
        dropped += 1;
        excess = excess.saturating_sub(1);
    }
    order.clear();
    for (entry, &k) in entries.iter_mut().zip(&kept) {
        entry.details.truncate(k);
    }
    let json = render(meta, begin, end, &entries, &kept);
    debug_assert_eq!(json.len(), size);
    Ok(BuiltReport {
        json,
        details_dropped: dropped,
    })
}

/// Policies merged by key and sorted; details merged by key, rendered and sorted.
fn merge(meta: &ReportMeta, policies: &[AggregatedPolicy]) -> Result<Vec<Entry>, BuildError> {
    type Details = BTreeMap<String, u64>;
    let mut by_key: BTreeMap<String, (PolicyKey, u64, u64, Details)> = BTreeMap::new();
    for p in policies {
        let mut policy = p.policy.clone();
        if policy.domain.is_none() {
            policy.domain = Some(meta.domain.clone());
        }
        let slot = by_key
            .entry(policy.to_key())
            .or_insert_with(|| (policy, 0, 0, BTreeMap::new()));
        slot.1 = add(slot.1, p.successes)?;
        slot.2 = add(slot.2, p.failures)?;
        for (failure, count) in &p.details {
            let mut members = String::from("{");
            failure.write_members(&mut members);
            let total = slot.3.entry(members).or_insert(0);
            *total = add(*total, *count)?;
        }
    }
    if by_key.len() > MAX_POLICIES {
        return Err(BuildError::TooManyPolicies {
            count: by_key.len(),
        });
    }
    Ok(by_key
        .into_values()
        .map(|(policy, successes, failures, details)| {
            let mut details: Vec<(u64, String)> = details
                .into_iter()
                .filter(|(_, count)| *count > 0)
                .map(|(members, count)| {
                    (
                        count,
                        format!("{members},\"failed-session-count\":{count}}}"),
                    )
                })
                .collect();
            // Stable: equal counts keep the key order of the BTreeMap.
            details.sort_by_key(|d| std::cmp::Reverse(d.0));
            Entry {
                policy,
                successes,
                failures,
                details,
            }
        })
        .collect())
}

fn add(a: u64, b: u64) -> Result<u64, BuildError> {
    match a.checked_add(b) {
        Some(sum) if sum <= MAX_COUNT => Ok(sum),
        _ => Err(BuildError::CountTooLarge {
            count: a.saturating_add(b),
        }),
    }
}

/// Which details go first when the report is too large: smallest count first; among equal
/// counts the one written last. Each policy's details leave from its end.
fn drop_order(entries: &[Entry]) -> Vec<(usize, usize)> {
    let mut order: Vec<(usize, usize)> = entries
        .iter()
        .enumerate()
        .flat_map(|(p, e)| (0..e.details.len()).map(move |d| (p, d)))
        .collect();
    order.sort_by(|&(pa, da), &(pb, db)| {
        let (ca, cb) = (entries[pa].details[da].0, entries[pb].details[db].0);
        ca.cmp(&cb).then(pb.cmp(&pa)).then(db.cmp(&da))
    });
    order
}

fn render(
    meta: &ReportMeta,
    begin: UtcTime,
    end: UtcTime,
    entries: &[Entry],
    kept: &[usize],
) -> String {
    let mut out = String::with_capacity(256);
    out.push_str(r#"{"organization-name":"#);
    push_json_string(&mut out, &meta.organization);
    let _ = write!(
        out,
        r#","date-range":{{"start-datetime":"{begin}","end-datetime":"{end}"}},"contact-info":"#
    );
    push_json_string(&mut out, &meta.contact);
    out.push_str(r#","report-id":"#);
    push_json_string(&mut out, &meta.report_id);
    out.push_str(r#","policies":["#);
    for (i, (entry, &k)) in entries.iter().zip(kept).enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(r#"{"policy":{"#);
        entry.policy.write_members(&mut out);
        let _ = write!(
            out,
            r#"}},"summary":{{"total-successful-session-count":{},"total-failure-session-count":{}}}"#,
            entry.successes, entry.failures
        );
        // Always written, empty too: RFC 8460 marks no member optional but two (C122), and
        // schema validators expect it.
        out.push_str(r#","failure-details":["#);
        for (j, (_, rendered)) in entry.details[..k].iter().enumerate() {
            if j > 0 {
                out.push(',');
            }
            out.push_str(rendered);
        }
        out.push(']');
        out.push('}');
    }
    out.push_str("]}");
    out
}
