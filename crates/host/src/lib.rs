//! `mtasts serve`: self-hosted, multi-tenant MTA-STS hosting (RFC 8461 §8.2, §8.3).
//!
//! A domain owner publishes three CNAMEs once (see
//! [`mtasts_proto::hosted::delegation`]); from then on this crate serves the policy over HTTPS
//! with an ACME certificate for `mta-sts.<domain>`, answers the delegated TXT records from its
//! own DNS zone, and lets the owner change modes through an API and a dashboard.
//!
//! * [`snapshot`] — the immutable picture every listener answers from.
//! * [`policy_host`] — the HTTPS policy host (`mta-sts.<d>`, TLS-ALPN-01) and the HTTP-01
//!   listener.
//! * [`acme`] — ACME certificates for `mta-sts.<domain>` (HTTP-01 / TLS-ALPN-01 through a
//!   challenge board), the renewal and retry policy.

pub mod acme;
pub mod policy_host;
pub mod snapshot;
