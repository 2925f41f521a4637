//! The DKIM selectors DMARC reports have seen signing for a domain: which key records
//! `mtasts serve` checks when it verifies the domain (the owner rarely lists them all).

use super::prepare::domain_key;
use super::{OP_TIMEOUT, ReportDb, ReportDbError, bounded, error::db_error, unsigned};

/// Selectors returned at most, whatever the caller asks.
pub const MAX_SELECTORS: u32 = 64;

/// One selector seen signing for a domain (d= the domain) in DMARC reports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SelectorSeen {
    /// The selector, lowercased.
    pub selector: String,
    /// Messages the reports counted as signed with it.
    pub messages: u64,
    /// The end of the newest report naming it (Unix seconds).
    pub last_seen: i64,
}

const SELECTORS_OF: &str = "SELECT s.selector, CAST(SUM(s.messages) AS BIGINT), MAX(r.end_at) \
     FROM report_dkim_selectors s JOIN report_reports r ON r.id = s.report \
     WHERE s.domain = $1 AND r.end_at >= $2 \
     GROUP BY s.selector ORDER BY 2 DESC, s.selector LIMIT $3";

impl ReportDb {
    /// The selectors DMARC reports ending at or after `since` name for signatures whose
    /// signing domain is `domain` (any case, trailing dot allowed), most messages first, at
    /// most `limit` (and [`MAX_SELECTORS`]).
    pub async fn dkim_selectors_of(
        &self,
        domain: &str,
        since: i64,
        limit: u32,
    ) -> Result<Vec<SelectorSeen>, ReportDbError> {
        let key = domain_key(domain);
        let limit = i64::from(limit.min(MAX_SELECTORS));
        let rows: Vec<(String, i64, i64)> = bounded(OP_TIMEOUT, async {
            Ok(with_pool!(self, |pool| {
                sqlx::query_as(SELECTORS_OF)
                    .bind(&key)
                    .bind(since)
                    .bind(limit)
                    .fetch_all(pool)
                    .await
                    .map_err(db_error)?
            }))
        })
        .await?;
        rows.into_iter()
            .map(|(selector, messages, last_seen)| {
                Ok(SelectorSeen {
                    selector,
                    messages: unsigned("selector messages", messages)?,
                    last_seen,
                })
            })
            .collect()
    }
}
