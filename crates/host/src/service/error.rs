//! Why a service operation was refused, and the access checks every operation starts with.

use mtasts_proto::hosted::policy_input::FieldError;
use mtasts_store::host::HostDbError;
use thiserror::Error;

use crate::auth::Principal;

/// Why an operation was refused.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum ServiceError {
    /// No such object, or one the principal may not see.
    #[error("not found")]
    NotFound,
    /// The principal sees the object but may not change it (read-only).
    #[error("this token is read-only")]
    Forbidden,
    /// A field breaks a rule.
    #[error("{0}")]
    Invalid(FieldError),
    /// The change collides with the current state (name taken, removal under way, a
    /// concurrent change).
    #[error("{0}")]
    Conflict(String),
    /// Another change of the same object is in progress (its change lock is held); the same
    /// request may succeed after `retry_after` seconds.
    #[error("{message}")]
    Busy {
        /// For people: what is busy.
        message: String,
        /// Seconds to wait before retrying.
        retry_after: u64,
    },
    /// Too many changes are in progress in this process to start another (every domain-lock
    /// permit is held); the request may succeed after `retry_after` seconds.
    #[error("{message}")]
    Overloaded {
        /// For people: what was not done.
        message: String,
        /// Seconds to wait before retrying.
        retry_after: u64,
    },
    /// The database or DNS could not answer now; retrying later may work.
    #[error("{0}")]
    Unavailable(String),
    /// Our own bug or corrupt data; retrying will not help.
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<HostDbError> for ServiceError {
    fn from(e: HostDbError) -> Self {
        match e {
            HostDbError::NotFound => ServiceError::NotFound,
            HostDbError::Conflict(m) => ServiceError::Conflict(m),
            HostDbError::Unavailable(m) => ServiceError::Unavailable(m),
            // The database refusing what we validated, or rows it cannot read: not the
            // client's fault either way.
            HostDbError::Invalid(m) | HostDbError::Corrupt(m) => ServiceError::Internal(m),
            other => ServiceError::Internal(other.to_string()),
        }
    }
}

pub(super) fn invalid(
    field: &'static str,
    rule: &'static str,
    message: impl Into<String>,
) -> ServiceError {
    ServiceError::Invalid(FieldError {
        field,
        rule,
        message: message.into(),
    })
}

pub(super) fn require_write(who: &Principal) -> Result<(), ServiceError> {
    if who.can_write() {
        Ok(())
    } else {
        Err(ServiceError::Forbidden)
    }
}

pub(super) fn require_admin(who: &Principal) -> Result<(), ServiceError> {
    // Tenant administration does not exist for anyone else, as far as they can tell.
    if who.is_admin() {
        Ok(())
    } else {
        Err(ServiceError::NotFound)
    }
}
