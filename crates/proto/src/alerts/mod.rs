//! Alerts of the hosting service: from what the reports and the delegation checks say about a
//! hosted domain to the alerts its owner is told about, and when to tell them.
//!
//! The rules ([`rules::evaluate`]) take one domain's evidence, already counted by whoever
//! stored it, and an explicit `now`; each [`Alert`] says what happened, since when, and the
//! fix. Whether an alert is opened, kept, re-notified or resolved is [`suppression::step`];
//! how often a failed delivery is retried is [`suppression::retry_delay`]. What is sent — the
//! webhook's JSON and the e-mail's text — and the webhook's signature header are
//! [`notice`] and [`signature`]. The HMAC itself is computed by the caller (this crate holds no
//! cryptography).
//!
//! The kinds ([`AlertKind`]):
//!
//! | kind | fires when |
//! |---|---|
//! | `failure-rate` | the failed share of TLS sessions on the latest reported day is at or over the tenant's threshold (default 5%), with at least the tenant's minimum sessions (default 20) |
//! | `new-failure-type` | a failure result type was reported in the last [`RECENT_DAYS`] days that no report named in the 30 days before |
//! | `sts-policy` | senders report `sts-policy-fetch-error`, `sts-policy-invalid` or `sts-webpki-invalid`: they cannot fetch the policy |
//! | `uncovered-mx` | senders reached an MX host (`receiving-mx-hostname`) that the current policy's `mx` lines do not match |
//! | `reporter-silent` | an organization that reported on at least [`SILENT_AFTER_DAYS`] days sent nothing for [`SILENT_DAYS`] days |
//! | `delegation-broken` | a delegated record that verified no longer does |

pub mod notice;
pub mod rules;
pub mod signature;
pub mod suppression;
pub mod target;

use std::fmt;
use std::str::FromStr;

use serde::Serialize;

/// Days before today whose reports count as "now": a report for day D arrives on D+1, so the
/// latest two days are the current picture.
pub const RECENT_DAYS: i64 = 2;
/// How far back a failure type counts as already known (rule `new-failure-type`).
pub const KNOWN_DAYS: i64 = 30;
/// Days with reports after which an organization is expected to keep reporting.
pub const SILENT_AFTER_DAYS: usize = 7;
/// Days without a report after which a regular reporter counts as silent.
pub const SILENT_DAYS: i64 = 3;
/// How many days of reports the rules look at (the longest rule's window, with room).
pub const EVIDENCE_DAYS: i64 = KNOWN_DAYS + RECENT_DAYS + 8;

/// The first second of the evidence the rules need at `now` ([`EVIDENCE_DAYS`] back).
pub fn evidence_since(now: i64) -> i64 {
    crate::calendar::day_of(now) - EVIDENCE_DAYS * crate::calendar::DAY
}

/// What an alert is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum AlertKind {
    /// A delegated record that verified no longer does.
    DelegationBroken,
    /// The failed share of TLS sessions is over the threshold.
    FailureRate,
    /// A failure result type not seen in the previous 30 days.
    NewFailureType,
    /// A regular reporting organization stopped sending.
    ReporterSilent,
    /// Senders cannot fetch the policy (`sts-policy-*`, `sts-webpki-invalid`).
    StsPolicy,
    /// Senders reach an MX host the policy does not cover.
    UncoveredMx,
}

impl AlertKind {
    /// Every kind, in the order of the table above.
    pub const ALL: [AlertKind; 6] = [
        AlertKind::FailureRate,
        AlertKind::NewFailureType,
        AlertKind::StsPolicy,
        AlertKind::UncoveredMx,
        AlertKind::ReporterSilent,
        AlertKind::DelegationBroken,
    ];

    /// The stored and published name, e.g. `failure-rate`.
    pub fn as_str(self) -> &'static str {
        match self {
            AlertKind::DelegationBroken => "delegation-broken",
            AlertKind::FailureRate => "failure-rate",
            AlertKind::NewFailureType => "new-failure-type",
            AlertKind::ReporterSilent => "reporter-silent",
            AlertKind::StsPolicy => "sts-policy",
            AlertKind::UncoveredMx => "uncovered-mx",
        }
    }
}

impl fmt::Display for AlertKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A name that is not an [`AlertKind`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown alert kind {0:?}")]
pub struct UnknownAlertKind(pub String);

impl FromStr for AlertKind {
    type Err = UnknownAlertKind;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        AlertKind::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| UnknownAlertKind(s.chars().take(40).collect()))
    }
}

/// One condition that holds now for a domain.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Alert {
    /// What it is about.
    pub kind: AlertKind,
    /// The hosted domain.
    pub domain: String,
    /// What tells two alerts of one kind and domain apart (the result type, the MX host, the
    /// organization, the record); `""` when there is one per domain.
    pub key: String,
    /// One line, for a subject or a list.
    pub title: String,
    /// What happened, in a sentence or two.
    pub what: String,
    /// Since when (Unix seconds; the first day it was seen).
    pub since: i64,
    /// What to do about it.
    pub fix: String,
}

/// A tenant's thresholds (defaults: [`Thresholds::default`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Thresholds {
    /// Failed sessions per thousand at which `failure-rate` fires (default 50: 5%).
    pub failure_permille: u32,
    /// Fewest sessions on the day for `failure-rate` to judge (default 20).
    pub min_sessions: u64,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            failure_permille: DEFAULT_FAILURE_PERMILLE,
            min_sessions: DEFAULT_MIN_SESSIONS,
        }
    }
}

/// The default `failure-rate` threshold: 5%.
pub const DEFAULT_FAILURE_PERMILLE: u32 = 50;
/// The default fewest sessions for `failure-rate`.
pub const DEFAULT_MIN_SESSIONS: u64 = 20;
