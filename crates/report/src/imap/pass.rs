//! One pass over the mailbox: search the unprocessed UIDs window by window, fetch sizes then
//! bodies in batches, hand each message to the sink, and mark the stored ones per batch.

use std::time::Duration;

use async_imap::Session;
use async_imap::types::Flag;
use futures::TryStreamExt;
use mtasts_proto::imap_url::encode_modified_utf7;

use super::connect::{Stream, step};
use super::{Counts, FetchConfig, FetchError, KEYWORD, MessageSink, Processed, short};
use crate::intake::unix_now;
use crate::{Code, FoundError};

/// UIDs per search: the answer line stays far below the line limit (11 bytes per UID).
pub(crate) const SEARCH_WINDOW: u32 = 20_000;
/// UIDs per size query.
const SIZE_BATCH: usize = 500;
/// Bytes of bodies per `UID FETCH` (one message when it alone is larger).
const BODY_BATCH_BYTES: u64 = 16 * 1024 * 1024;
/// Messages per `UID FETCH` of bodies.
const BODY_BATCH_MESSAGES: usize = 100;
/// The slowest transfer a body batch is allowed before its deadline.
const MIN_BYTES_PER_SECOND: u64 = 64 * 1024;

/// What the server can do that changes how we mark.
#[derive(Clone, Debug, Default)]
pub(crate) struct Capabilities {
    pub(crate) idle: bool,
    move_: bool,
    uidplus: bool,
}

impl Capabilities {
    pub(crate) async fn read(
        session: &mut Session<Stream>,
        config: &FetchConfig,
    ) -> Result<Self, FetchError> {
        let caps = step(config.timeout, "CAPABILITY", session.capabilities())
            .await?
            .map_err(|e| FetchError::from_imap("CAPABILITY", e))?;
        Ok(Capabilities {
            idle: caps.has_str("IDLE"),
            move_: caps.has_str("MOVE"),
            uidplus: caps.has_str("UIDPLUS"),
        })
    }
}

/// The selected mailbox.
#[derive(Clone, Debug)]
pub(crate) struct Selected {
    pub(crate) uid_validity: u32,
    pub(crate) uid_next: Option<u32>,
}

/// For `move:`, makes sure the folder exists (once per session).
pub(crate) async fn prepare(
    session: &mut Session<Stream>,
    config: &FetchConfig,
) -> Result<(), FetchError> {
    if let Processed::Move(folder) = &config.processed {
        // Creating an existing folder fails harmlessly; a folder that cannot be used makes
        // the first move fail, with the server's reason.
        let _ = step(
            config.timeout,
            "CREATE",
            session.create(encode_modified_utf7(folder)),
        )
        .await?;
    }
    Ok(())
}

/// Selects the mailbox.
pub(crate) async fn select(
    session: &mut Session<Stream>,
    config: &FetchConfig,
) -> Result<Selected, FetchError> {
    let name = config.url.mailbox_wire();
    let mailbox = step(config.timeout, "SELECT", session.select(&name))
        .await?
        .map_err(|e| match e {
            async_imap::error::Error::No(m) | async_imap::error::Error::Bad(m) => {
                FetchError::Mailbox(short(&format!("{}: {m}", config.url.mailbox)))
            }
            other => FetchError::from_imap("SELECT", other),
        })?;
    let uid_validity = mailbox.uid_validity.ok_or_else(|| {
        FetchError::Protocol("the server gave no UIDVALIDITY for the mailbox".into())
    })?;
    if config.processed == Processed::Flag {
        let keeps = mailbox.permanent_flags.iter().any(|f| match f {
            Flag::MayCreate => true,
            Flag::Custom(name) => name.eq_ignore_ascii_case(KEYWORD),
            _ => false,
        });
        if !keeps {
            return Err(FetchError::KeywordsNotKept);
        }
    }
    Ok(Selected {
        uid_validity,
        uid_next: mailbox.uid_next,
    })
}

/// One pass over the UIDs from `from` on. Returns the UID below which every message was
/// handled (for the next pass of `watch`).
pub(crate) async fn run<S: MessageSink>(
    session: &mut Session<Stream>,
    config: &FetchConfig,
    caps: &Capabilities,
    selected: &Selected,
    from: u32,
    sink: &S,
    counts: &mut Counts,
) -> Result<u32, FetchError> {
    let criteria = match config.processed {
        Processed::Flag => format!("UNDELETED UNKEYWORD {KEYWORD}"),
        _ => "UNDELETED".to_owned(),
    };
    let mut done_below = from;
    match selected.uid_next {
        Some(next) => {
            let mut lo = from.max(1);
            while lo < next {
                let hi = lo.saturating_add(SEARCH_WINDOW - 1).min(next - 1);
                let uids = search(session, config, &format!("UID {lo}:{hi} {criteria}")).await?;
                let uids: Vec<u32> = uids.into_iter().filter(|u| (lo..=hi).contains(u)).collect();
                process(session, config, caps, selected, &uids, sink, counts).await?;
                done_below = hi + 1;
                lo = hi.saturating_add(1);
                if hi == u32::MAX {
                    break;
                }
            }
        }
        None => {
            let lo = from.max(1);
            let uids = search(session, config, &format!("UID {lo}:* {criteria}")).await?;
            let uids: Vec<u32> = uids.into_iter().filter(|u| *u >= lo).collect();
            process(session, config, caps, selected, &uids, sink, counts).await?;
            if let Some(max) = uids.iter().max() {
                done_below = max.saturating_add(1);
            }
        }
    }
    Ok(done_below)
}

async fn search(
    session: &mut Session<Stream>,
    config: &FetchConfig,
    query: &str,
) -> Result<Vec<u32>, FetchError> {
    let found = step(config.timeout, "UID SEARCH", session.uid_search(query))
        .await?
        .map_err(|e| FetchError::from_imap("UID SEARCH", e))?;
    let mut uids: Vec<u32> = found.into_iter().collect();
    uids.sort_unstable();
    Ok(uids)
}

/// Sizes, then bodies, then marks, for `uids` (ascending).
async fn process<S: MessageSink>(
    session: &mut Session<Stream>,
    config: &FetchConfig,
    caps: &Capabilities,
    selected: &Selected,
    uids: &[u32],
    sink: &S,
    counts: &mut Counts,
) -> Result<(), FetchError> {
    for chunk in uids.chunks(SIZE_BATCH) {
        let sizes = fetch_sizes(session, config, chunk).await?;
        let (fits, too_large): (Vec<_>, Vec<_>) = sizes
            .into_iter()
            .partition(|(_, size)| u64::from(*size) <= config.max_message_bytes);
        let mut done = Vec::new();
        for (uid, size) in too_large {
            let result = refuse(config, selected, sink, uid, u64::from(size), counts).await;
            if let Err(e) = result {
                mark(session, config, caps, &done).await?;
                return Err(e);
            }
            done.push(uid);
        }
        mark(session, config, caps, &done).await?;
        for batch in body_batches(&fits) {
            let bodies = fetch_bodies(session, config, &batch).await?;
            let mut done = Vec::new();
            for (uid, body) in bodies {
                let source = config.url.message_source(selected.uid_validity, uid);
                let result = if body.len() as u64 > config.max_message_bytes {
                    refuse(config, selected, sink, uid, body.len() as u64, counts).await
                } else {
                    match sink.accept(&body, &source, unix_now()).await {
                        Ok(accepted) => {
                            counts.messages += 1;
                            counts.new += accepted.new;
                            counts.duplicate += accepted.duplicate;
                            counts.errors.extend(accepted.errors);
                            tracing::debug!(%source, new = accepted.new, "message stored");
                            Ok(())
                        }
                        Err(error) => Err(FetchError::Store {
                            message: source,
                            error,
                        }),
                    }
                };
                if let Err(e) = result {
                    mark(session, config, caps, &done).await?;
                    return Err(e);
                }
                done.push(uid);
            }
            mark(session, config, caps, &done).await?;
        }
    }
    Ok(())
}

async fn refuse<S: MessageSink>(
    config: &FetchConfig,
    selected: &Selected,
    sink: &S,
    uid: u32,
    size: u64,
    counts: &mut Counts,
) -> Result<(), FetchError> {
    let source = config.url.message_source(selected.uid_validity, uid);
    let error = FoundError {
        source: source.clone(),
        code: Code::TooLarge,
        message: format!(
            "the message is {size} bytes, more than --max-message-bytes {}; not fetched",
            config.max_message_bytes
        ),
    };
    sink.refuse(&error, unix_now())
        .await
        .map_err(|error| FetchError::Store {
            message: source,
            error,
        })?;
    counts.messages += 1;
    counts.errors.push(error);
    Ok(())
}

async fn fetch_sizes(
    session: &mut Session<Stream>,
    config: &FetchConfig,
    uids: &[u32],
) -> Result<Vec<(u32, u32)>, FetchError> {
    let set = uid_set(uids);
    let fetches = step(config.timeout, "UID FETCH (RFC822.SIZE)", async {
        session
            .uid_fetch(&set, "(UID RFC822.SIZE)")
            .await?
            .try_collect::<Vec<_>>()
            .await
    })
    .await?
    .map_err(|e| FetchError::from_imap("UID FETCH", e))?;
    // A server that leaves out a size gets the message fetched alone, still bounded by the
    // literal limit while it is read.
    let unknown = u32::try_from(config.max_message_bytes).unwrap_or(u32::MAX);
    let mut sizes: Vec<(u32, u32)> = fetches
        .iter()
        .filter_map(|f| Some((f.uid?, f.size.unwrap_or(unknown))))
        .filter(|(uid, _)| uids.binary_search(uid).is_ok())
        .collect();
    sizes.sort_unstable();
    sizes.dedup_by_key(|(uid, _)| *uid);
    Ok(sizes)
}

/// Groups `(uid, size)` into body fetches of at most [`BODY_BATCH_BYTES`] (or one message)
/// and [`BODY_BATCH_MESSAGES`].
fn body_batches(sizes: &[(u32, u32)]) -> Vec<Vec<(u32, u32)>> {
    let mut batches = Vec::new();
    let mut batch: Vec<(u32, u32)> = Vec::new();
    let mut bytes = 0u64;
    for &(uid, size) in sizes {
        let size64 = u64::from(size);
        if !batch.is_empty()
            && (bytes + size64 > BODY_BATCH_BYTES || batch.len() >= BODY_BATCH_MESSAGES)
        {
            batches.push(std::mem::take(&mut batch));
            bytes = 0;
        }
        batch.push((uid, size));
        bytes += size64;
    }
    if !batch.is_empty() {
        batches.push(batch);
    }
    batches
}

async fn fetch_bodies(
    session: &mut Session<Stream>,
    config: &FetchConfig,
    batch: &[(u32, u32)],
) -> Result<Vec<(u32, Vec<u8>)>, FetchError> {
    let uids: Vec<u32> = batch.iter().map(|(u, _)| *u).collect();
    let bytes: u64 = batch.iter().map(|(_, s)| u64::from(*s)).sum();
    let deadline = config.timeout + Duration::from_secs(bytes / MIN_BYTES_PER_SECOND);
    let set = uid_set(&uids);
    let fetches = step(deadline, "UID FETCH (BODY.PEEK[])", async {
        session
            .uid_fetch(&set, "(UID BODY.PEEK[])")
            .await?
            .try_collect::<Vec<_>>()
            .await
    })
    .await?
    .map_err(|e| FetchError::from_imap("UID FETCH", e))?;
    let mut bodies: Vec<(u32, Vec<u8>)> = fetches
        .iter()
        .filter_map(|f| Some((f.uid?, f.body()?.to_vec())))
        .filter(|(uid, _)| uids.binary_search(uid).is_ok())
        .collect();
    bodies.sort_by_key(|(uid, _)| *uid);
    bodies.dedup_by_key(|(uid, _)| *uid);
    Ok(bodies)
}

/// Marks `uids` processed as configured.
async fn mark(
    session: &mut Session<Stream>,
    config: &FetchConfig,
    caps: &Capabilities,
    uids: &[u32],
) -> Result<(), FetchError> {
    if uids.is_empty() {
        return Ok(());
    }
    let set = uid_set(uids);
    let t = config.timeout;
    match &config.processed {
        Processed::Flag => store(session, t, &set, &format!("+FLAGS.SILENT ({KEYWORD})")).await,
        Processed::Move(folder) => {
            let folder = encode_modified_utf7(folder);
            if caps.move_ {
                step(t, "UID MOVE", session.uid_mv(&set, &folder))
                    .await?
                    .map_err(|e| move_error(folder_name(config), e))
            } else {
                step(t, "UID COPY", session.uid_copy(&set, &folder))
                    .await?
                    .map_err(|e| move_error(folder_name(config), e))?;
                store(session, t, &set, "+FLAGS.SILENT (\\Deleted)").await?;
                expunge(session, t, caps, &set).await
            }
        }
        Processed::Delete => {
            store(session, t, &set, "+FLAGS.SILENT (\\Deleted)").await?;
            expunge(session, t, caps, &set).await
        }
    }
}

fn folder_name(config: &FetchConfig) -> &str {
    match &config.processed {
        Processed::Move(folder) => folder,
        _ => "",
    }
}

fn move_error(folder: &str, error: async_imap::error::Error) -> FetchError {
    match error {
        async_imap::error::Error::No(m) | async_imap::error::Error::Bad(m) => {
            FetchError::Mailbox(short(&format!("{folder}: {m}")))
        }
        other => FetchError::from_imap("UID MOVE", other),
    }
}

async fn store(
    session: &mut Session<Stream>,
    timeout: Duration,
    set: &str,
    what: &str,
) -> Result<(), FetchError> {
    step(timeout, "UID STORE", async {
        session
            .uid_store(set, what)
            .await?
            .try_collect::<Vec<_>>()
            .await
    })
    .await?
    .map_err(|e| FetchError::from_imap("UID STORE", e))?;
    Ok(())
}

/// Expunges `set` (`UID EXPUNGE` with UIDPLUS; else `EXPUNGE`, which also removes other
/// messages someone marked `\Deleted`).
async fn expunge(
    session: &mut Session<Stream>,
    timeout: Duration,
    caps: &Capabilities,
    set: &str,
) -> Result<(), FetchError> {
    step(timeout, "EXPUNGE", async {
        if caps.uidplus {
            session
                .uid_expunge(set)
                .await?
                .try_collect::<Vec<_>>()
                .await
        } else {
            session.expunge().await?.try_collect::<Vec<_>>().await
        }
    })
    .await?
    .map_err(|e| FetchError::from_imap("EXPUNGE", e))?;
    Ok(())
}

/// `uids` (ascending) as an IMAP sequence set: `1:3,7,9:10`.
fn uid_set(uids: &[u32]) -> String {
    let mut out = String::new();
    let mut i = 0;
    while i < uids.len() {
        let start = uids[i];
        let mut end = start;
        while i + 1 < uids.len() && uids[i + 1] == end.wrapping_add(1) {
            i += 1;
            end = uids[i];
        }
        if !out.is_empty() {
            out.push(',');
        }
        if start == end {
            out.push_str(&start.to_string());
        } else {
            out.push_str(&format!("{start}:{end}"));
        }
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uid_sets_compress_runs() {
        assert_eq!(uid_set(&[]), "");
        assert_eq!(uid_set(&[5]), "5");
        assert_eq!(uid_set(&[1, 2, 3, 7, 9, 10]), "1:3,7,9:10");
        assert_eq!(
            uid_set(&[u32::MAX - 1, u32::MAX]),
            format!("{}:{}", u32::MAX - 1, u32::MAX)
        );
    }

    #[test]
    fn body_batches_respect_bytes_and_counts() {
        let mb = 1024 * 1024;
        let sizes = [(1, 10 * mb), (2, 10 * mb), (3, 40 * mb), (4, 1), (5, 1)];
        let batches = body_batches(&sizes);
        let uids: Vec<Vec<u32>> = batches
            .iter()
            .map(|b| b.iter().map(|(u, _)| *u).collect())
            .collect();
        // 10+10 > 16 MiB: apart; a 40 MiB message goes alone.
        assert_eq!(uids, vec![vec![1], vec![2], vec![3], vec![4, 5]]);
        let many: Vec<(u32, u32)> = (1..=250).map(|u| (u, 10)).collect();
        let lens: Vec<usize> = body_batches(&many).iter().map(Vec::len).collect();
        assert_eq!(lens, vec![100, 100, 50]);
    }
}
