//! `mtasts serve`: self-hosted, multi-tenant MTA-STS hosting (RFC 8461 §8.2, §8.3).
//!
//! A domain owner publishes three CNAMEs once (see
//! [`mtasts_proto::hosted::delegation`]); from then on this crate serves the policy over HTTPS
//! with an ACME certificate for `mta-sts.<domain>`, answers the delegated TXT records from its
//! own DNS zone, and lets the owner change modes through an API and a dashboard.
//!
//! * [`snapshot`] — the immutable picture every listener answers from.
//! * [`dns`] — the authoritative DNS server for the delegated zone (the `_mta-sts` and
//!   `_smtp._tls` TXT records, the policy host's addresses).
//! * [`acme`] — ACME certificates for `mta-sts.<domain>` (HTTP-01 / TLS-ALPN-01 through a
//!   challenge board), the renewal and retry policy.
//! * [`policy_host`] — the HTTPS policy host (`mta-sts.<d>`, TLS-ALPN-01) and the HTTP-01
//!   listener.
//! * [`auth`] — API tokens, password hashes and who a request acts as.
//! * [`client_addr`] — the client address behind trusted reverse proxies, for per-client limits.
//! * [`ratelimit`] — keyed token buckets for authentication failures and API calls.
//! * [`state`] — what the API and the dashboard share ([`state::AppState`]).
//! * [`service`] — domain and tenant operations, independent of HTTP.
//! * [`verification`] — the one typed result of verifying a domain, stored per domain and
//!   shown by the API and the dashboard, and the [`verification::DomainVerifier`] trait.
//! * [`api`] — the REST API under `/api/v1`.
//! * [`node`] — keeps the snapshot in step with the database; promotion, removal,
//!   verification and certificate orders.
//! * [`serve`] — one process with every listener; [`config`] — its settings.
//! * [`secrets`] — secrets at rest: sealing keys, a private data directory, the first admin
//!   token's file.
//! * [`dashboard`] — the server-rendered web dashboard for domain owners.
//! * [`metrics`] — Prometheus metrics, served on `metrics_listen`.
//! * [`alerts`] — alerts per tenant and domain from the reports and delegation checks,
//!   delivered by signed webhook and e-mail.
//!
//! **Invariant:** the HTTP side (API, dashboard, service) knows the checker only through
//! [`verification::DomainVerifier`]; `mtasts serve` wires the node, which owns the checker
//! engine, behind it. Only [`serve`] (which builds the checker) and [`node`] (which runs it)
//! call `mtasts-check`; [`verification`] borrows its verdict and severity types.

pub mod acme;
pub mod alerts;
pub mod api;
pub mod auth;
pub mod client_addr;
pub mod config;
pub mod dashboard;
pub mod dns;
pub mod mail;
pub mod metrics;
pub mod node;
pub mod policy_host;
pub mod ratelimit;
pub mod secrets;
pub mod serve;
pub mod service;
pub mod snapshot;
pub mod state;
pub mod verification;
