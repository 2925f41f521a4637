//! Integration tests of mtasts-host, as one test binary (one link instead of six): a module per
//! component, over real sockets on loopback, and one shared harness, [`support`].
//!
//! - `acme`: the ACME issuer against a real Pebble;
//! - `alerts`: alert rules over real reports, signed webhooks, e-mail, the alerts page and API;
//! - `api`: the REST API over SQLite and PostgreSQL;
//! - `dashboard`: the dashboard over HTTP and in headless Chromium;
//! - `dns`: the delegated DNS authority;
//! - `mail`: the SMTP intake of report mail;
//! - `metrics`: `/metrics` of a running serve, and the Grafana dashboards of both daemons;
//! - `policy_host`: the HTTPS policy host, HTTP-01 and the API/dashboard listener;
//! - `serve`: `mtasts serve` end to end, and two nodes on one PostgreSQL.
//!
//! A missing optional service (PostgreSQL, Pebble, Chromium, `dig`, `curl`) skips its tests
//! with a message, or fails them under `MTASTS_REQUIRE_SERVICES=1`
//! (`mtasts_testkit::services`).

mod acme;
mod alerts;
mod api;
mod dashboard;
mod dns;
mod mail;
mod metrics;
mod policy_host;
mod serve;
mod support;
