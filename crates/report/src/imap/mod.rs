//! Report intake from an IMAP mailbox (`mtasts report fetch`): every message not yet processed
//! is fetched, handed to a [`MessageSink`] (the reports database), and marked processed only
//! once the sink has stored it.
//!
//! # The rules
//!
//! * **TLS always.** `imaps://` speaks TLS from the first byte; `imap://` requires STARTTLS and
//!   fails when the server does not offer it. The certificate is verified against the roots in
//!   [`FetchConfig::roots`]; there is no way to skip that.
//! * **Marked only after stored.** A message is marked ([`Processed`]) after [`MessageSink`]
//!   answered `Ok` for it, never before. A crash between the two imports it again on the next
//!   run, and the store counts its reports as duplicates; nothing is lost and nothing counted
//!   twice. A sink error stops the run with the messages before it marked and that one not.
//! * **Which messages.** `flag` (the default) sets the keyword [`KEYWORD`] and fetches the
//!   messages without it (`UID SEARCH UNDELETED UNKEYWORD $MtastsImported`), so the mailbox is
//!   otherwise untouched (not even `\Seen`: bodies are fetched with `BODY.PEEK`); a mailbox whose
//!   `PERMANENTFLAGS` cannot keep a new keyword is refused, since every run would re-import all
//!   of it. `move:FOLDER` moves processed messages there (`UID MOVE`, or copy, delete and
//!   expunge without MOVE; the folder is created when missing) and `delete` deletes and
//!   expunges them; both fetch every undeleted message.
//! * **Bounded.** A message whose `RFC822.SIZE` is above [`FetchConfig::max_message_bytes`] is
//!   not fetched: it is recorded through [`MessageSink::refuse`] as a `too-large` error and marked
//!   like the others, so it is not retried forever (raise the limit and clear the keyword, or
//!   move it back, to read it). Server lines are capped at 1 MiB and literals at the message
//!   limit while they are read (a server lying about a size cannot make us allocate more),
//!   every command has a deadline ([`FetchConfig::timeout`], plus time for the bytes of a
//!   body batch at 64 KiB/s), and searches cover windows of UIDs so no answer grows with the
//!   mailbox.
//! * **Batches.** UIDs are searched once per pass, sizes fetched 500 at a time, bodies up to
//!   16 MiB (or one message) or 100 messages per `UID FETCH`, and marks set per batch: a
//!   pass costs a few commands per hundred messages, never a listing per message.
//! * **UIDVALIDITY.** Nothing is remembered between runs but the marks in the mailbox, so a
//!   new UIDVALIDITY (a rebuilt mailbox) needs nothing special: unmarked messages are fetched
//!   again and their reports come back as duplicates. Each message's source label carries
//!   UIDVALIDITY and UID: `imaps://USER@HOST/MAILBOX#UIDVALIDITY.UID`. In `watch` mode the
//!   position reached is kept per UIDVALIDITY and dropped when it changes.
//! * **Watch.** [`watch`] runs a pass, then waits in IDLE (re-issued every 5 minutes, or polls
//!   every 30 s on a server without IDLE), and runs a pass over the new UIDs when the server
//!   says something changed. A dropped connection is reopened with backoff (1 s doubling to 5
//!   min); only the first connection's failure (a wrong password, say) is returned. The
//!   shutdown future ends it at once: whatever was in flight is either stored and not marked
//!   (a duplicate next time) or not stored at all.

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use mtasts_proto::imap_url::ImapUrl;
use rustls::RootCertStore;

use crate::FoundError;

mod connect;
mod framing;
mod pass;
mod sink;
mod watch;

pub use sink::{Accepted, MessageSink, SinkError};
pub use watch::watch;

/// The keyword `flag` mode sets on processed messages.
pub const KEYWORD: &str = "$MtastsImported";

/// The default [`FetchConfig::max_message_bytes`]: 64 MiB.
pub const DEFAULT_MAX_MESSAGE_BYTES: u64 = 64 * 1024 * 1024;

/// The default [`FetchConfig::timeout`].
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

/// What happens to a message once its reports are stored.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Processed {
    /// Set the keyword [`KEYWORD`] (`flag`).
    Flag,
    /// Move it to this folder (`move:FOLDER`; UTF-8, sent as modified UTF-7).
    Move(String),
    /// Delete and expunge it (`delete`).
    Delete,
}

impl FromStr for Processed {
    type Err = String;

    /// `flag`, `move:FOLDER` or `delete`.
    fn from_str(text: &str) -> Result<Self, String> {
        match text {
            "flag" => Ok(Processed::Flag),
            "delete" => Ok(Processed::Delete),
            _ => match text.strip_prefix("move:") {
                Some(folder) if !folder.is_empty() && !folder.chars().any(char::is_control) => {
                    Ok(Processed::Move(folder.to_owned()))
                }
                _ => Err(format!("{text:?} is not flag, move:FOLDER or delete")),
            },
        }
    }
}

/// Where to fetch from and how. Its `Debug` leaves the password out.
#[derive(Clone)]
#[non_exhaustive]
pub struct FetchConfig {
    /// The mailbox.
    pub url: ImapUrl,
    /// The password of [`ImapUrl::user`].
    pub password: String,
    /// The roots the server's certificate must chain to.
    pub roots: Arc<RootCertStore>,
    /// What to do with processed messages.
    pub processed: Processed,
    /// The largest message fetched. Default [`DEFAULT_MAX_MESSAGE_BYTES`].
    pub max_message_bytes: u64,
    /// The deadline of each step. Default [`DEFAULT_TIMEOUT`].
    pub timeout: Duration,
}

impl std::fmt::Debug for FetchConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FetchConfig")
            .field("url", &self.url.to_string())
            .field("password", &"<redacted>")
            .field("roots", &self.roots.len())
            .field("processed", &self.processed)
            .field("max_message_bytes", &self.max_message_bytes)
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl FetchConfig {
    /// A configuration with the default marking, size limit and timeout.
    pub fn new(url: ImapUrl, password: String, roots: Arc<RootCertStore>) -> Self {
        FetchConfig {
            url,
            password,
            roots,
            processed: Processed::Flag,
            max_message_bytes: DEFAULT_MAX_MESSAGE_BYTES,
            timeout: DEFAULT_TIMEOUT,
        }
    }
}

/// What a run did so far.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Counts {
    /// Messages stored (or refused as too large) and marked.
    pub messages: u64,
    /// Reports stored for the first time.
    pub new: u64,
    /// Reports that were already stored.
    pub duplicate: u64,
    /// Unreadable parts and refused messages.
    pub errors: Vec<FoundError>,
}

/// Why fetching stopped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FetchError {
    /// No TCP connection.
    #[error("cannot connect: {0}")]
    Connect(String),
    /// The connection broke or the server said goodbye.
    #[error("the connection was lost: {0}")]
    Connection(String),
    /// The TLS handshake failed (a certificate refused, say).
    #[error("TLS failed: {0}")]
    Tls(String),
    /// `imap://` and the server refused STARTTLS.
    #[error(
        "the server does not offer STARTTLS, required by imap:// (use imaps:// for TLS from the start): {0}"
    )]
    NoStartTls(String),
    /// LOGIN refused.
    #[error("login refused: {0}")]
    Login(String),
    /// The mailbox cannot be selected, or the move folder used.
    #[error("mailbox {0}")]
    Mailbox(String),
    /// `flag` mode on a mailbox that cannot keep [`KEYWORD`].
    #[error("the mailbox cannot keep the keyword {KEYWORD}; use --processed move:FOLDER or delete")]
    KeywordsNotKept,
    /// The server answered something unexpected.
    #[error("IMAP error: {0}")]
    Protocol(String),
    /// A step took too long.
    #[error("{0} took longer than {1:?}")]
    Timeout(&'static str, Duration),
    /// The sink could not store a message; it stays unmarked.
    #[error("{message}: not stored (left unmarked, fetched again next time): {error}")]
    Store {
        /// The message's source label.
        message: String,
        /// Why.
        #[source]
        error: SinkError,
    },
}

impl FetchError {
    fn from_imap(step: &str, error: async_imap::error::Error) -> Self {
        use async_imap::error::Error;
        match error {
            Error::Io(e) => FetchError::Connection(short(&format!("{step}: {e}"))),
            Error::ConnectionLost => FetchError::Connection(format!("{step}: connection lost")),
            other => FetchError::Protocol(short(&format!("{step}: {other}"))),
        }
    }
}

/// Fetches every unprocessed message once, storing and marking them (one pass).
pub async fn fetch<S: MessageSink>(
    config: &FetchConfig,
    sink: &S,
    counts: &mut Counts,
) -> Result<(), FetchError> {
    let mut session = connect::open(config).await?;
    let caps = pass::Capabilities::read(&mut session, config).await?;
    pass::prepare(&mut session, config).await?;
    let state = pass::select(&mut session, config).await?;
    pass::run(&mut session, config, &caps, &state, 1, sink, counts).await?;
    // The marks are set; a failed LOGOUT changes nothing.
    let _ = tokio::time::timeout(config.timeout, session.logout()).await;
    Ok(())
}

/// `text` cut to 300 characters: server answers and async-imap's parse errors can quote
/// whole buffers.
fn short(text: &str) -> String {
    const MAX: usize = 300;
    match text.char_indices().nth(MAX) {
        Some((i, _)) => format!("{}…", &text[..i]),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_leaves_the_password_out() {
        let url = ImapUrl::parse("imaps://r@h.example/INBOX").unwrap();
        let config = FetchConfig::new(url, "hunter2".into(), Arc::new(RootCertStore::empty()));
        let text = format!("{config:?}");
        assert!(!text.contains("hunter2"), "{text}");
        assert!(text.contains("imaps://r@h.example/INBOX"), "{text}");
    }

    #[test]
    fn processed_modes_parse() {
        assert_eq!("flag".parse(), Ok(Processed::Flag));
        assert_eq!("delete".parse(), Ok(Processed::Delete));
        assert_eq!("move:Done".parse(), Ok(Processed::Move("Done".into())));
        assert!("move:".parse::<Processed>().is_err());
        assert!("Flag".parse::<Processed>().is_err());
    }

    #[test]
    fn long_server_text_is_cut() {
        let long = "é".repeat(1000);
        let cut = short(&long);
        assert_eq!(cut.chars().count(), 301);
        assert!(cut.ends_with('…'));
        assert_eq!(short("short"), "short");
    }
}
