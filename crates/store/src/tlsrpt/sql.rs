//! The statements of the outgoing TLS-report database.

/// The table that records applied migrations of this database, apart from the others' tables.
pub(super) const MIGRATIONS_TABLE: &str = "_mtasts_tlsrpt_migrations";
