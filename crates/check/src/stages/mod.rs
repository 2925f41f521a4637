//! The checker's stages as pure functions: observations in, report fields and findings out.
//!
//! Each stage takes what `mtasts-net` observed (DNS answers, a fetch report, probe reports)
//! and decides, with `mtasts-proto`, what it means for a sender. Nothing here does I/O, so
//! every mapping is unit-tested without a network.

pub mod dkim;
pub mod dmarc;
pub mod mx;
pub mod policy;
pub mod record;
pub mod spf;
pub mod tls;
pub mod tlsrpt;

use mtasts_proto::Severity;
use mtasts_proto::sts::policy::Mode;

/// How strictly a sender applies the domain's policy, which sets the severity of MX problems.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Enforcement {
    /// `mode: enforce`: a failing MX is refused (errors).
    Enforce,
    /// `mode: testing`: failures are reported, mail still flows (warnings).
    Testing,
    /// `mode: none`: the policy is being withdrawn; MX problems are notes.
    Withdrawn,
    /// No usable policy: MX TLS problems are plain opportunistic-TLS weaknesses (warnings).
    NoPolicy,
}

impl Enforcement {
    /// From the mode of a valid policy, or `None` for no policy.
    pub fn from_mode(mode: Option<Mode>) -> Self {
        match mode {
            Some(Mode::Enforce) => Enforcement::Enforce,
            Some(Mode::Testing) => Enforcement::Testing,
            Some(Mode::None) => Enforcement::Withdrawn,
            None => Enforcement::NoPolicy,
        }
    }

    /// The severity of an MX TLS failure under this enforcement.
    pub fn tls_failure_severity(self) -> Severity {
        match self {
            Enforcement::Enforce => Severity::Error,
            Enforcement::Testing | Enforcement::NoPolicy => Severity::Warning,
            Enforcement::Withdrawn => Severity::Info,
        }
    }

    /// What a sender does with a failing MX, for messages.
    pub fn consequence(self) -> &'static str {
        match self {
            Enforcement::Enforce => "senders enforcing MTA-STS will not deliver to it",
            Enforcement::Testing => {
                "in testing mode senders still deliver but report the failure; under enforce they would refuse this MX"
            }
            Enforcement::Withdrawn => "the policy is in mode none, so senders ignore this",
            Enforcement::NoPolicy => {
                "without an MTA-STS policy senders fall back to unauthenticated opportunistic TLS"
            }
        }
    }
}

#[cfg(test)]
mod tests;
