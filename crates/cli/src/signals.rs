//! The one signal-handling path of the daemons (`resolver` and `serve`).
//!
//! SIGTERM and SIGINT cancel the daemon's token (it drains and exits); SIGHUP, for a daemon
//! that reloads, notifies its reload. The handlers are installed when [`install`] returns, so
//! call it before announcing the start: a signal sent right after the announcement must find
//! them (the binary tests raced on this).

use std::sync::Arc;

use anyhow::Context;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// Installs the handlers: SIGTERM/SIGINT cancel `shutdown`; SIGHUP notifies `reload` when
/// given (and is left at its default otherwise). Must be called inside a Tokio runtime.
pub(crate) fn install(
    shutdown: CancellationToken,
    reload: Option<Arc<Notify>>,
) -> anyhow::Result<()> {
    let mut term = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    let mut int = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
    let mut hup = match reload {
        Some(reload) => Some((
            signal(SignalKind::hangup()).context("installing the SIGHUP handler")?,
            reload,
        )),
        None => None,
    };
    tokio::spawn(async move {
        loop {
            let hangup = async {
                match &mut hup {
                    Some((hup, reload)) => {
                        hup.recv().await;
                        Some(reload.clone())
                    }
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = term.recv() => { tracing::info!("SIGTERM: shutting down"); break; }
                _ = int.recv() => { tracing::info!("SIGINT: shutting down"); break; }
                Some(reload) = hangup => {
                    tracing::info!("SIGHUP: reloading the configuration");
                    reload.notify_one();
                }
            }
        }
        shutdown.cancel();
    });
    Ok(())
}
