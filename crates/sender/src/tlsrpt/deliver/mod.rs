//! Delivering one stored report to one destination (a `rua` URI): [`https`] POSTs it,
//! [`mail`] mails it DKIM-signed. [`Deliver`] is the one trait the outbox talks to.

pub mod https;
pub mod mail;

use futures::future::BoxFuture;
use mtasts_proto::tlsrpt::record::ReportUri;
use mtasts_store::tlsrpt::StoredReport;

/// How one attempt ended, seen from the outbox.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Attempt {
    /// The destination took the report (2xx, or SMTP 250 after the data); holds a note for
    /// the log (the status, the server's queue reply).
    Delivered(String),
    /// It did not; `permanent` when trying again cannot help (a refused private address, a
    /// 5xx SMTP answer, a rua that does not parse).
    Failed {
        /// Why, for the log and the outbox.
        error: String,
        /// Whether retrying is pointless.
        permanent: bool,
    },
}

impl Attempt {
    pub(crate) fn retry(error: impl Into<String>) -> Attempt {
        Attempt::Failed {
            error: error.into(),
            permanent: false,
        }
    }

    pub(crate) fn refused(error: impl Into<String>) -> Attempt {
        Attempt::Failed {
            error: error.into(),
            permanent: true,
        }
    }
}

/// Delivers a report to a destination.
pub trait Deliver: Send + Sync {
    /// One attempt to hand `report` to `destination`; `now` dates a mail.
    fn deliver<'a>(
        &'a self,
        destination: &'a str,
        report: &'a StoredReport,
        now: i64,
    ) -> BoxFuture<'a, Attempt>;
}

/// The metrics label of a destination: `https` or `mailto` (anything else counts as `other`;
/// the outbox only holds URIs that parsed).
pub fn scheme(destination: &str) -> &'static str {
    match ReportUri::parse(destination) {
        Ok(ReportUri::Https(_)) => "https",
        Ok(ReportUri::Mailto(_)) => "mailto",
        Err(_) => "other",
    }
}

/// Both transports: picks one by the URI's scheme.
pub struct Deliverer {
    /// HTTPS POSTs.
    pub https: https::HttpsDelivery,
    /// Report mail; `Err` says why mail is not configured (then `mailto:` attempts fail and
    /// are retried, so fixing the configuration within `retry_for` still delivers).
    pub mail: Result<mail::MailDelivery, String>,
}

impl Deliver for Deliverer {
    fn deliver<'a>(
        &'a self,
        destination: &'a str,
        report: &'a StoredReport,
        now: i64,
    ) -> BoxFuture<'a, Attempt> {
        Box::pin(async move {
            match ReportUri::parse(destination) {
                Ok(ReportUri::Https(uri)) => self.https.post(&uri, &report.gz).await,
                Ok(ReportUri::Mailto(uri)) => match &self.mail {
                    Ok(mail) => mail.send(&uri, report, now).await,
                    Err(why) => Attempt::retry(why.clone()),
                },
                Err(e) => Attempt::refused(format!("{destination}: {e}")),
            }
        })
    }
}
