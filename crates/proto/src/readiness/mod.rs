//! Whether a domain is ready to enforce: plain-language verdicts from received reports.
//!
//! MTA-STS is published in `testing` so that the owner can read senders' TLS reports
//! (RFC 8460) and switch to `enforce` only once nothing fails; DMARC climbs from `p=none` to
//! `p=reject` the same way. This module turns what the reports say, already counted per day,
//! organization, failure and source by whoever stored them, into one [`Verdict`] per domain:
//! a [`Level`] a program can act on, a headline an owner reads, and details. It knows neither
//! the command line nor the database (`mtasts report summary` and `mtasts serve` both call it),
//! and takes "now" as an argument.
//!
//! # The TLS-RPT rule ([`tls::assess`])
//!
//! Sessions are counted per UTC day and reporting organization; failures are grouped by result
//! type and receiving MX (across organizations). With *latest* the newest day with sessions:
//!
//! 1. **No data** — no day with sessions.
//! 2. **Fix** — a failure reported on the latest day: it is still happening. The headline names
//!    the biggest one (`certificate-expired at mail2 since 3 Dec: renew the certificate of
//!    mail2.example.com before enforcing`); under `enforce` it says senders are refusing mail.
//! 3. **Wait** — a failure in the [`tls::RECENT_DAYS`] (7) days up to latest, but not on it:
//!    it looks fixed; enforce once a full week has passed without it. Under `enforce` this is
//!    **Enforced** with the failure named.
//! 4. **Wait** — the latest day is more than [`tls::STALE_DAYS`] (3) days before today: the
//!    reports stopped, so they say nothing about today (senders send each UTC day's report
//!    within hours; three days absorb retries and a weekend's quiet).
//! 5. **Enforced** — the policy senders saw is `enforce`, and nothing failed recently.
//! 6. **Wait** — fewer than [`tls::MIN_DAYS`] (7) days with sessions: a week covers weekday and
//!    weekend traffic, certificate renewals by cron and the senders that only write now and then.
//! 7. **Wait** — fewer than [`tls::MIN_ORGANIZATIONS`] (2) reporting organizations: one sender
//!    validates with one TLS stack and one view of DNS; a second independent one (Google and
//!    Microsoft send most reports) shows the result is not one sender's quirk.
//! 8. **Fix** — senders found no policy (`no-policy-found`): there is nothing to enforce yet;
//!    **Wait** under `mode: none` (a policy being withdrawn).
//! 9. **Ready** — `no failures from 7 organizations over 14 days: enforce is safe`.
//!
//! Failures older than the recent window are shown as `fixed since` the day after they were
//! last seen. A failure at a receiving MX that the policy's `mx` lines do not match says the
//! policy's MX list is incomplete, whatever its result type. Each result type has its own
//! advice ([`tls::advice`]).
//!
//! # The DMARC rule ([`dmarc::assess`])
//!
//! A message fails DMARC when neither DKIM nor SPF passed *aligned* (the report's
//! `policy_evaluated`). The pass rate is passing messages over all; `p=quarantine` would
//! have sent every failing message to spam and `p=reject` would have refused it (at `pct=100`;
//! what receivers did under the published policy is in the dispositions). The levels:
//! **No data**; **Enforced** under `p=reject`; **Wait** with fewer than [`tls::MIN_DAYS`]
//! days or [`tls::MIN_ORGANIZATIONS`] organizations reporting; **Review** when some sources
//! fail (they may be the domain's own unaligned services — a newsletter tool without DKIM — or
//! forgers, which only the owner can tell: `97.2% pass; 3 sources fail: 1,204 messages would be
//! rejected (198.51.100.7 …)`); **Ready** when every message passed.

use std::fmt;

use serde::Serialize;

pub mod date;
pub mod dmarc;
pub mod number;
pub mod tls;

/// What a domain owner should do next, as a program reads it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum Level {
    /// Already enforced (`mode: enforce`, `p=reject`) and nothing fails now.
    Enforced,
    /// Something fails now: fix it first.
    Fix,
    /// No reports at all.
    NoData,
    /// Enforcing is safe.
    Ready,
    /// Some sources fail, and only the owner can tell whether they are its own (DMARC).
    Review,
    /// Not enough evidence yet, or a failure that looks fixed: wait for more reports.
    Wait,
}

impl Level {
    /// `enforced`, `fix`, `no-data`, `ready`, `review`, `wait`.
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Enforced => "enforced",
            Level::Fix => "fix",
            Level::NoData => "no-data",
            Level::Ready => "ready",
            Level::Review => "review",
            Level::Wait => "wait",
        }
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The plain-language verdict for one domain.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Verdict {
    /// What to do, for programs.
    pub level: Level,
    /// One sentence: what the reports say and what to do.
    pub headline: String,
    /// The evidence and every other problem, one sentence each.
    pub details: Vec<String>,
}
