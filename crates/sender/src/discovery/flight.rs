//! Single flight: however many lookups of one domain arrive together, one discovery runs and
//! they all get its outcome.
//!
//! The discovery runs as its own task, so it completes and fills the cache even if every
//! waiter gives up. At most `max_discoveries` run at once (a semaphore); beyond
//! [`MAX_PENDING_PER_PERMIT`] × `max_discoveries` distinct domains waiting, a new domain is
//! refused at once rather than queued without bound.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use futures::FutureExt;
use futures::future::{BoxFuture, Shared};
use tokio::sync::Semaphore;

use super::outcome::StsOutcome;

/// Distinct domains allowed to wait for a discovery slot, per slot.
pub const MAX_PENDING_PER_PERMIT: usize = 16;

/// A running discovery, joinable by any number of lookups.
pub(crate) type Flight = Shared<BoxFuture<'static, Arc<StsOutcome>>>;

/// The discoveries running or waiting for a slot, by domain.
pub(crate) struct Flights {
    running: Mutex<HashMap<String, Flight>>,
    permits: Arc<Semaphore>,
    slots: usize,
}

/// Too many distinct domains are already waiting for a discovery slot.
#[derive(Debug)]
pub(crate) struct Busy;

impl Flights {
    /// Room for `slots` discoveries at once.
    pub(crate) fn new(slots: usize) -> Arc<Flights> {
        let slots = slots.max(1);
        Arc::new(Flights {
            running: Mutex::new(HashMap::new()),
            permits: Arc::new(Semaphore::new(slots)),
            slots,
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Flight>> {
        self.running.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The running discovery of `domain`, or a new one running `discover` once a slot is
    /// free.
    pub(crate) fn join<F>(self: &Arc<Self>, domain: &str, discover: F) -> Result<Flight, Busy>
    where
        F: FnOnce() -> BoxFuture<'static, StsOutcome> + Send + 'static,
    {
        let mut running = self.lock();
        if let Some(flight) = running.get(domain) {
            return Ok(flight.clone());
        }
        if running.len() >= self.slots * MAX_PENDING_PER_PERMIT {
            return Err(Busy);
        }
        let this = self.clone();
        let owned = domain.to_string();
        let task = tokio::spawn(async move {
            let outcome = match this.permits.clone().acquire_owned().await {
                Ok(_permit) => discover().await,
                // The semaphore is never closed.
                Err(_) => StsOutcome::none(&owned, true),
            };
            this.lock().remove(&owned);
            Arc::new(outcome)
        });
        let owned = domain.to_string();
        let flight = async move {
            match task.await {
                Ok(outcome) => outcome,
                Err(e) => {
                    tracing::error!(domain = %owned, error = %e, "MTA-STS discovery task failed");
                    Arc::new(StsOutcome::none(&owned, true))
                }
            }
        }
        .boxed()
        .shared();
        running.insert(domain.to_string(), flight.clone());
        Ok(flight)
    }
}
