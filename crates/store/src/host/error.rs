//! Why a hosting-database operation failed, and how driver errors map onto that.

use thiserror::Error;

/// Why a [`super::HostDb`] operation failed.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum HostDbError {
    /// The row the operation is about (or one it refers to) does not exist.
    #[error("not found")]
    NotFound,
    /// The operation would break a uniqueness rule (a second tenant, domain, e-mail address or
    /// token hash of the same name) or the domain's state forbids it.
    #[error("conflict: {0}")]
    Conflict(String),
    /// The caller passed a value the database does not accept (too long, malformed, or a
    /// database URL it does not understand).
    #[error("invalid input: {0}")]
    Invalid(String),
    /// The database cannot be reached or did not answer in time (transient).
    #[error("hosting database unavailable: {0}")]
    Unavailable(String),
    /// The database holds something this code cannot read, or was migrated by another
    /// version of it.
    #[error("hosting database holds corrupt data: {0}")]
    Corrupt(String),
    /// A secret could not be sealed or opened: most often, it is sealed under a key that is
    /// not configured ([`super::SealError::UnknownKey`]).
    #[error("secrets at rest: {0}")]
    Sealed(#[from] super::SealError),
}

/// Maps a driver error: constraint violations become what the caller did wrong, undecodable
/// data is `Corrupt`, everything else (I/O, timeouts, server trouble) is `Unavailable`.
pub(super) fn db_error(err: sqlx::Error) -> HostDbError {
    use sqlx::Error as E;
    if let Some(db) = err.as_database_error() {
        if db.is_unique_violation() {
            return HostDbError::Conflict(db.message().to_string());
        }
        if db.is_foreign_key_violation() {
            return HostDbError::NotFound;
        }
        if db.is_check_violation() {
            return HostDbError::Invalid(db.message().to_string());
        }
    }
    match err {
        E::RowNotFound => HostDbError::NotFound,
        E::Configuration(e) => HostDbError::Invalid(format!("database URL: {e}")),
        E::ColumnDecode { .. }
        | E::Decode(_)
        | E::ColumnNotFound(_)
        | E::ColumnIndexOutOfBounds { .. }
        | E::TypeNotFound { .. } => HostDbError::Corrupt(err.to_string()),
        other => HostDbError::Unavailable(other.to_string()),
    }
}

/// Like [`db_error`], with a message naming the duplicate when a uniqueness rule is broken
/// (the driver's message names only the constraint).
pub(super) fn conflict_as(
    what: impl FnOnce() -> String,
) -> impl FnOnce(sqlx::Error) -> HostDbError {
    move |err| match err.as_database_error() {
        Some(db) if db.is_unique_violation() => HostDbError::Conflict(what()),
        _ => db_error(err),
    }
}
