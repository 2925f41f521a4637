//! The hosted-policy service (`mtasts serve`): the pure decisions behind delegated MTA-STS
//! hosting (RFC 8461 §8.1–§8.3).
//!
//! * [`delegation`] — the names a domain owner points at the service and the names the
//!   service's own DNS zone answers for.
pub mod delegation;
