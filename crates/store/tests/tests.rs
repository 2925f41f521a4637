//! Integration tests of mtasts-store: one binary, one module per concern. PostgreSQL and Redis
//! are the local test servers (`mtasts_testkit::services`); a missing one skips its tests with
//! a message, or fails them under `MTASTS_REQUIRE_SERVICES=1`.

#[path = "suite/conformance.rs"]
mod conformance;
#[path = "suite/host.rs"]
mod host;
#[path = "suite/reports.rs"]
mod reports;
#[path = "suite/schema.rs"]
mod schema;
#[path = "suite/secrets.rs"]
mod secrets;
#[path = "suite/unavailable.rs"]
mod unavailable;
