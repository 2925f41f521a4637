//! `fetch --watch`: stay connected, wait in IDLE, import as mail arrives, reconnect with
//! backoff when the connection drops, stop when the shutdown future completes.

use std::time::Duration;

use async_imap::Session;

use super::connect::{self, Stream, step};
use super::pass::{self, Capabilities};
use super::{Counts, FetchConfig, FetchError, MessageSink};

/// How long one IDLE lasts before it is re-issued (RFC 2177 asks for less than 29 minutes; a
/// shorter one also notices a silently dead connection sooner).
const IDLE_REFRESH: Duration = Duration::from_secs(5 * 60);
/// How often a server without IDLE is polled.
const POLL_INTERVAL: Duration = Duration::from_secs(30);
/// The first wait before reconnecting; it doubles up to [`BACKOFF_MAX`].
const BACKOFF_MIN: Duration = Duration::from_secs(1);
const BACKOFF_MAX: Duration = Duration::from_secs(5 * 60);

/// Imports what is in the mailbox, then what arrives, until `shutdown` completes (then
/// `Ok`). Only a failure of the first connection (before the mailbox was selected once) is
/// returned; later failures are logged and the connection reopened.
pub async fn watch<S: MessageSink>(
    config: &FetchConfig,
    sink: &S,
    counts: &mut Counts,
    shutdown: impl Future<Output = ()>,
) -> Result<(), FetchError> {
    tokio::pin!(shutdown);
    let mut position: Option<(u32, u32)> = None;
    let mut ever_selected = false;
    let mut backoff = BACKOFF_MIN;
    loop {
        let (mut selected, mut passed) = (false, false);
        let result = tokio::select! {
            r = session(config, sink, counts, &mut position, &mut selected, &mut passed) => r,
            () = &mut shutdown => return Ok(()),
        };
        let error = match result {
            Ok(()) => FetchError::Connection("the server ended the session".into()),
            Err(e) => e,
        };
        if !ever_selected && !selected {
            return Err(error);
        }
        ever_selected = true;
        // Only a session that got through a pass resets the wait: a store that is down
        // fails every pass, and must not be retried every second.
        if passed {
            backoff = BACKOFF_MIN;
        }
        tracing::warn!(%error, ?backoff, "IMAP session ended; reconnecting");
        tokio::select! {
            () = tokio::time::sleep(backoff) => {}
            () = &mut shutdown => return Ok(()),
        }
        backoff = (backoff * 2).min(BACKOFF_MAX);
    }
}

/// One connection: passes separated by IDLE (or polling) until something fails.
/// `position` is (UIDVALIDITY, the UID below which every message was handled).
async fn session<S: MessageSink>(
    config: &FetchConfig,
    sink: &S,
    counts: &mut Counts,
    position: &mut Option<(u32, u32)>,
    selected: &mut bool,
    passed: &mut bool,
) -> Result<(), FetchError> {
    let mut session = connect::open(config).await?;
    let caps = Capabilities::read(&mut session, config).await?;
    pass::prepare(&mut session, config).await?;
    let mut state = pass::select(&mut session, config).await?;
    *selected = true;
    tracing::info!(mailbox = %config.url, "watching");
    loop {
        let from = match *position {
            Some((validity, below)) if validity == state.uid_validity => below,
            _ => 1,
        };
        let below = pass::run(&mut session, config, &caps, &state, from, sink, counts).await?;
        *position = Some((state.uid_validity, below));
        *passed = true;
        session = wait(session, config, &caps).await?;
        // A fresh SELECT gives the new UIDNEXT, and UIDVALIDITY should it have changed.
        state = pass::select(&mut session, config).await?;
    }
}

/// Waits until the server reports a change (IDLE) or the refresh time passes.
async fn wait(
    session: Session<Stream>,
    config: &FetchConfig,
    caps: &Capabilities,
) -> Result<Session<Stream>, FetchError> {
    if !caps.idle {
        tokio::time::sleep(POLL_INTERVAL).await;
        return Ok(session);
    }
    let mut handle = session.idle();
    step(config.timeout, "IDLE", handle.init())
        .await?
        .map_err(|e| FetchError::from_imap("IDLE", e))?;
    {
        let (idle, _stop) = handle.wait_with_timeout(IDLE_REFRESH);
        idle.await.map_err(|e| FetchError::from_imap("IDLE", e))?;
    }
    step(config.timeout, "DONE", handle.done())
        .await?
        .map_err(|e| FetchError::from_imap("DONE", e))
}
