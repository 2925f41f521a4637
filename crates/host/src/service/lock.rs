//! The per-domain change lock: two concurrent changes of one domain must not both derive
//! their policy id from the same previous version.

use std::time::Duration;

use tokio::sync::OwnedSemaphorePermit;

use super::error::ServiceError;
use crate::state::AppState;

/// How long a change waits for its domain's lock (and for a permit to hold one).
const LOCK_WAIT: Duration = Duration::from_secs(3);
/// How often it tries the lock meanwhile.
const LOCK_RETRY: Duration = Duration::from_millis(100);
/// The `Retry-After` of a change refused because another holds the lock: changes take well
/// under a second, so by then the lock is most likely free.
pub(super) const BUSY_RETRY_AFTER: u64 = 1;

/// A held per-domain change lock and the permit it holds it with (see [`lock_domain`]). The
/// lock is released before the permit (fields drop in order).
pub(super) struct DomainLock {
    _guard: mtasts_store::host::LockGuard,
    _permit: OwnedSemaphorePermit,
}

/// Holds the per-domain change lock, so two concurrent changes cannot both derive their
/// policy id from the same previous version (equal ids would hide the second change from
/// senders, RFC 8461 §3.1). Waits a little before answering [`ServiceError::Busy`].
///
/// Each held lock keeps a pooled database connection (PostgreSQL), so at most
/// [`crate::state::DOMAIN_LOCK_PERMITS`] are held by this process at once: a change first
/// takes a permit ([`AppState::domain_locks`]), and gives it back while it waits for a lock
/// another change holds. No permit within the wait is [`ServiceError::Overloaded`] (503 with
/// `Retry-After`).
pub(super) async fn lock_domain(state: &AppState, name: &str) -> Result<DomainLock, ServiceError> {
    let lock = format!("api-domain:{name}");
    let deadline = tokio::time::Instant::now() + LOCK_WAIT;
    loop {
        let permit =
            match tokio::time::timeout_at(deadline, state.domain_locks.clone().acquire_owned())
                .await
            {
                Ok(Ok(permit)) => permit,
                Ok(Err(_)) => {
                    return Err(ServiceError::Internal(
                        "the domain lock permits were closed".to_owned(),
                    ));
                }
                Err(_) => {
                    return Err(ServiceError::Overloaded {
                        message: format!(
                            "too many changes are in progress; {name} was not changed, try again"
                        ),
                        retry_after: BUSY_RETRY_AFTER,
                    });
                }
            };
        if let Some(guard) = state.db.try_lock(&lock).await? {
            return Ok(DomainLock {
                _guard: guard,
                _permit: permit,
            });
        }
        // Waiting for another change of this domain must not keep others from theirs.
        drop(permit);
        if tokio::time::Instant::now() + LOCK_RETRY > deadline {
            return Err(ServiceError::Busy {
                message: format!("another change to {name} is in progress; try again"),
                retry_after: BUSY_RETRY_AFTER,
            });
        }
        tokio::time::sleep(LOCK_RETRY).await;
    }
}
