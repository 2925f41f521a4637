//! TLS-RPT for the sending side (RFC 8460): results collected from MTAs are aggregated per UTC
//! day in the store; after each day ends the reports are built, kept in a persistent outbox and
//! delivered to every `rua` of each recipient domain.
//!
//! The protocol rules (report JSON, file names, the report mail) live in
//! `mtasts_proto::tlsrpt`; persistence in `mtasts_store::tlsrpt`; this module is the wiring:
//! [`config`] (the `[tlsrpt]` section).

pub mod collect;
pub mod config;

pub use config::{StarttlsMode, TlsrptConfig, TlsrptMailConfig};
