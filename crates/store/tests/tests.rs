//! Integration tests of mtasts-store: one binary, one module per concern.

#[path = "suite/conformance.rs"]
mod conformance;
#[path = "suite/services.rs"]
mod services;
#[path = "suite/unavailable.rs"]
mod unavailable;
