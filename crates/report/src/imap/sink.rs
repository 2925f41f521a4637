//! Where fetched messages go: the [`MessageSink`] the IMAP side hands each message to, and
//! which must have stored it durably before it answers `Ok` — only then is the message marked
//! as processed in the mailbox.

use std::future::Future;

use crate::FoundError;

/// Stores the reports found in one mail message.
///
/// `Ok` means durably stored (committed): the message is then marked processed. An `Err`
/// leaves it unmarked, to be fetched again by the next run; the IMAP side stops there rather
/// than skip ahead, since a store that fails once (a database away) usually fails for the
/// next message too.
pub trait MessageSink: Send + Sync {
    /// Stores the reports of `message`, labelled `source` (the message's IMAP URL with its
    /// UIDVALIDITY and UID), received at `received_at` (Unix seconds).
    fn accept(
        &self,
        message: &[u8],
        source: &str,
        received_at: i64,
    ) -> impl Future<Output = Result<Accepted, SinkError>> + Send;

    /// Records that the message at `source` was not read: `error` says why (code
    /// `too-large` for a message above the size limit). `Ok` means durably recorded; the
    /// message is then marked processed like the others, so it is not refused again on every run.
    fn refuse(
        &self,
        error: &FoundError,
        received_at: i64,
    ) -> impl Future<Output = Result<(), SinkError>> + Send;
}

/// What storing one message gave.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Accepted {
    /// Reports stored for the first time.
    pub new: u64,
    /// Reports that were already stored.
    pub duplicate: u64,
    /// Parts of the message that could not be read (stored as errors).
    pub errors: Vec<FoundError>,
}

impl Accepted {
    /// An outcome with these counts.
    pub fn new(new: u64, duplicate: u64, errors: Vec<FoundError>) -> Self {
        Accepted {
            new,
            duplicate,
            errors,
        }
    }
}

/// The sink could not store a message.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct SinkError(#[source] pub Box<dyn std::error::Error + Send + Sync>);

impl SinkError {
    /// Wraps the store's own error.
    pub fn new(error: impl std::error::Error + Send + Sync + 'static) -> Self {
        SinkError(Box::new(error))
    }
}

/// The reports database as a sink: [`crate::intake::Intake::input`] per message (one
/// transaction, committed before it returns).
impl MessageSink for crate::intake::Intake {
    async fn accept(
        &self,
        message: &[u8],
        source: &str,
        received_at: i64,
    ) -> Result<Accepted, SinkError> {
        let outcome = self
            .input(message, source, received_at)
            .await
            .map_err(SinkError::new)?;
        Ok(Accepted::new(
            outcome.new,
            outcome.duplicate,
            outcome.errors,
        ))
    }

    /// Stores the error with an empty input in place of the message (it was not fetched): the
    /// error shows among the others in `report list`/`summary`, and `reparse`, which has
    /// nothing to read again, leaves it as it is. The input is told apart from other messages'
    /// by the hash of a text naming the message.
    async fn refuse(&self, error: &FoundError, received_at: i64) -> Result<(), SinkError> {
        let text = format!("mtasts report fetch: not fetched: {}", error.source);
        let sha256: [u8; 32] =
            aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, text.as_bytes())
                .as_ref()
                .try_into()
                .unwrap_or([0; 32]);
        let gzip = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        // Finishing into a Vec cannot fail.
        let gzip = gzip.finish().unwrap_or_default();
        let input = mtasts_store::reports::NewInput {
            sha256,
            source: &error.source,
            received_at,
            size: 0,
            gzip: &gzip,
        };
        let errors = [mtasts_store::reports::NewError {
            source: &error.source,
            code: error.code.as_str(),
            message: &error.message,
        }];
        self.db()
            .store(&input, &[], &errors)
            .await
            .map_err(SinkError::new)?;
        Ok(())
    }
}
