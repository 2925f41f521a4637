//! MTA-STS, RFC 8461.

pub mod cache;
pub mod mx_pattern;
pub mod policy;
pub mod record;

/// The policy body size limit a sender enforces (8461 §3.3 suggests 64 KB).
pub const POLICY_MAX_BYTES: usize = 64 * 1024;
/// The policy path on `mta-sts.<domain>` (8461 §3.2).
pub const POLICY_PATH: &str = "/.well-known/mta-sts.txt";

/// The policy host for a (normalised) policy domain: `mta-sts.<domain>`.
pub fn policy_host(domain: &str) -> String {
    format!("mta-sts.{domain}")
}

/// The policy URL for a (normalised) policy domain.
pub fn policy_url(domain: &str) -> String {
    format!("https://mta-sts.{domain}{POLICY_PATH}")
}

/// The TXT record name for a (normalised) policy domain: `_mta-sts.<domain>`.
pub fn record_name(domain: &str) -> String {
    format!("_mta-sts.{domain}")
}
