//! The hosted-policy service (`mtasts serve`): the pure decisions behind delegated MTA-STS
//! hosting (RFC 8461 §8.1–§8.3).
//!
//! * [`claim`] — proving control of a domain another tenant hosts (a TXT record).
//! * [`cursor`] — page sizes and the opaque cursors of paginated lists.
//! * [`delegation`] — the names a domain owner points at the service and the names the
//!   service's own DNS zone answers for.
//! * [`policy_input`] — owner input (the domain's name, mode, mx, max_age, the TLS-RPT rua)
//!   to a hostable name, a servable policy and record, or an error naming the field and the
//!   rule.
//! * [`versions`] — policy ids and when a new id may be published (body first, then id).
//! * [`reporting`] — the service's own report addresses (HTTPS, mail, DMARC authorization)
//!   and the records that make them work.
//! * [`removal`] — how long a removed domain must keep serving `mode: none`.

pub mod claim;
pub mod cursor;
pub mod delegation;
pub mod policy_input;
pub mod removal;
pub mod reporting;
pub mod versions;
