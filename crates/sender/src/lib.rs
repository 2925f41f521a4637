//! The mtasts resolver daemon (sender side): answers Postfix `smtp_tls_policy_maps` lookups
//! over the socketmap protocol, and the same decision over HTTP/JSON.
//!
//! Work in progress; see `docs/dev/resolver-contract.md` §3.

pub mod clock;
pub mod config;
pub mod fallback;
pub mod metrics;
pub mod settings;
pub mod socketmap;
