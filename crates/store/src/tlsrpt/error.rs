//! Why an outgoing TLS-report database operation failed, and how driver errors map onto that.

use thiserror::Error;

/// Why a [`super::TlsrptDb`] operation failed.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum TlsrptDbError {
    /// The caller passed a value the database does not accept (a URL it does not understand, a
    /// text over its cap, a count past what the database holds): nothing was stored.
    #[error("invalid input: {0}")]
    Invalid(String),
    /// The database cannot be reached or did not answer in time (transient): nothing was stored.
    #[error("TLS-report database unavailable: {0}")]
    Unavailable(String),
    /// The transaction collided with a concurrent one (PostgreSQL: a deadlock or a
    /// serialization failure; SQLite: busy past the timeout) and was rolled back: nothing was
    /// stored, and trying again is safe. Writes try again themselves first.
    #[error("TLS-report database conflict, rolled back: {0}")]
    Conflict(String),
    /// The database holds something this code cannot read, or was migrated by another version
    /// of it.
    #[error("TLS-report database holds corrupt data: {0}")]
    Corrupt(String),
}

/// Maps a driver error: undecodable data is `Corrupt`, a broken constraint `Invalid`, a
/// collision `Conflict`, everything else (I/O, timeouts, server trouble) `Unavailable`.
pub(super) fn db_error(err: sqlx::Error) -> TlsrptDbError {
    use sqlx::Error as E;
    if let Some(db) = err.as_database_error()
        && let Some(code) = db.code()
        && matches!(&*code, "40P01" | "40001" | "5" | "6" | "261" | "517")
    {
        return TlsrptDbError::Conflict(db.message().to_string());
    }
    if let Some(db) = err.as_database_error()
        && (db.is_unique_violation() || db.is_check_violation() || db.is_foreign_key_violation())
    {
        return TlsrptDbError::Invalid(db.message().to_string());
    }
    match err {
        E::Configuration(e) => TlsrptDbError::Invalid(format!("database URL: {e}")),
        E::RowNotFound
        | E::ColumnDecode { .. }
        | E::Decode(_)
        | E::ColumnNotFound(_)
        | E::ColumnIndexOutOfBounds { .. }
        | E::TypeNotFound { .. } => TlsrptDbError::Corrupt(err.to_string()),
        other => TlsrptDbError::Unavailable(other.to_string()),
    }
}
