//! Results held in memory until the writer commits them: counted per (UTC day, recipient
//! domain, TLSRPT record, policy key), with failure details counted per failure key, so a
//! burst of identical results costs one row update, not one per result.
//!
//! Bounded: at most `max_results` results and about [`MAX_PENDING_KEY_BYTES`] of key text
//! are held (including a batch being written); a result beyond either is refused, and the
//! caller counts it as dropped. A batch whose commit failed comes back ([`Pending::restore`])
//! and stays counted, so a database outage fills the bound instead of memory.

use std::collections::HashMap;
use std::sync::Mutex;

use mtasts_proto::tlsrpt::session::SessionResult;
use mtasts_store::tlsrpt::ResultRow;

/// Most bytes of key text (domains, records, policy and failure keys) held at once.
pub const MAX_PENDING_KEY_BYTES: usize = 64 * 1024 * 1024;

/// Per-group counts before they are committed.
#[derive(Debug, Default)]
struct Counts {
    successes: u64,
    failures: u64,
    details: HashMap<String, u64>,
}

/// The key of one aggregated row.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct GroupKey {
    day: i64,
    domain: String,
    record: String,
    policy: String,
}

impl GroupKey {
    fn bytes(&self) -> usize {
        self.domain.len() + self.record.len() + self.policy.len()
    }
}

#[derive(Debug, Default)]
struct Inner {
    groups: HashMap<GroupKey, Counts>,
    /// Results held: in `groups` plus in batches being written.
    results: usize,
    /// Results in `groups` only (what the next batch will carry).
    waiting: usize,
    /// Key bytes held, in `groups` and in batches being written.
    bytes: usize,
}

/// A batch taken for writing: the rows, and what they hold against the bounds.
#[derive(Debug)]
pub struct Batch {
    /// The rows to commit.
    pub rows: Vec<ResultRow>,
    /// Results aggregated into the rows.
    pub results: usize,
    bytes: usize,
}

/// Why a result was not taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// The bound on results or key bytes is reached (the database is behind or away).
    Full,
}

impl Refused {
    /// The `kind` label of the dropped-datagram counter.
    pub fn kind(self) -> &'static str {
        match self {
            Refused::Full => "backlog",
        }
    }
}

/// What [`Pending::add`] took.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Added {
    /// Policies reported as successful.
    pub successes: u64,
    /// Policies reported as failed.
    pub failures: u64,
    /// Results waiting for the next batch, this one included.
    pub waiting: usize,
    /// Results held (waiting or being written), this one included.
    pub held: usize,
}

/// The results not yet committed. Shared by the receiver (adds) and the writer (takes).
#[derive(Debug)]
pub struct Pending {
    inner: Mutex<Inner>,
    max_results: usize,
    max_bytes: usize,
}

impl Pending {
    /// An empty set holding at most `max_results` results.
    pub fn new(max_results: usize) -> Self {
        Self::with_byte_limit(max_results, MAX_PENDING_KEY_BYTES)
    }

    /// An empty set with both bounds given.
    pub fn with_byte_limit(max_results: usize, max_bytes: usize) -> Self {
        Pending {
            inner: Mutex::new(Inner::default()),
            max_results: max_results.max(1),
            max_bytes,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // Only plain counters are updated under the lock: a panic cannot leave them torn
        // in a way worse than losing the counts, so a poisoned lock is used as is.
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Counts one result that arrived on `day` (start of its UTC day).
    pub fn add(&self, day: i64, result: &SessionResult) -> Result<Added, Refused> {
        let mut added = Added {
            successes: 0,
            failures: 0,
            waiting: 0,
            held: 0,
        };
        let mut inner = self.lock();
        if result.policies.is_empty() {
            // Nothing to count (no policy, no summary); it holds nothing either.
            added.waiting = inner.waiting;
            added.held = inner.results;
            return Ok(added);
        }
        if inner.results >= self.max_results || inner.bytes >= self.max_bytes {
            return Err(Refused::Full);
        }
        for policy in &result.policies {
            let key = GroupKey {
                day,
                domain: result.domain.clone(),
                record: result.record.clone(),
                policy: policy.policy.to_key(),
            };
            let mut new_bytes = 0;
            if !inner.groups.contains_key(&key) {
                new_bytes += key.bytes();
            }
            let entry = inner.groups.entry(key).or_default();
            if policy.failed {
                entry.failures += 1;
                added.failures += 1;
            } else {
                entry.successes += 1;
                added.successes += 1;
            }
            for failure in &policy.failures {
                let detail = failure.to_key();
                match entry.details.get_mut(&detail) {
                    Some(count) => *count += 1,
                    None => {
                        new_bytes += detail.len();
                        entry.details.insert(detail, 1);
                    }
                }
            }
            inner.bytes += new_bytes;
        }
        inner.results += 1;
        inner.waiting += 1;
        added.waiting = inner.waiting;
        added.held = inner.results;
        Ok(added)
    }

    /// Takes everything waiting as one batch (None when nothing waits). The results stay
    /// counted against the bound until [`Pending::committed`] or [`Pending::restore`].
    pub fn take(&self) -> Option<Batch> {
        // Only the swap happens under the lock: the receiver is never held up while the
        // rows are built.
        let (groups, results) = {
            let mut inner = self.lock();
            if inner.groups.is_empty() {
                return None;
            }
            (
                std::mem::take(&mut inner.groups),
                std::mem::take(&mut inner.waiting),
            )
        };
        let mut bytes = 0;
        let rows = groups
            .into_iter()
            .map(|(key, counts)| {
                bytes += key.bytes();
                let mut details: Vec<(String, u64)> = counts.details.into_iter().collect();
                bytes += details.iter().map(|(k, _)| k.len()).sum::<usize>();
                // A stable order keeps the row locks of concurrent writers (a fleet on one
                // PostgreSQL) in the same order: no deadlocks between batches.
                details.sort_unstable();
                ResultRow {
                    day: key.day,
                    domain: key.domain,
                    record: key.record,
                    policy: key.policy,
                    successes: counts.successes,
                    failures: counts.failures,
                    details,
                }
            })
            .collect::<Vec<_>>();
        let mut rows = rows;
        rows.sort_unstable_by(|a, b| {
            (a.day, &a.domain, &a.record, &a.policy).cmp(&(b.day, &b.domain, &b.record, &b.policy))
        });
        Some(Batch {
            rows,
            results,
            bytes,
        })
    }

    /// The batch is committed: its results no longer count against the bounds.
    pub fn committed(&self, batch: &Batch) {
        let mut inner = self.lock();
        inner.results = inner.results.saturating_sub(batch.results);
        inner.bytes = inner.bytes.saturating_sub(batch.bytes);
    }

    /// The batch could not be committed: its counts go back to wait for the next attempt
    /// (merged with what arrived meanwhile; they stay counted against the bounds).
    pub fn restore(&self, batch: Batch) {
        let mut inner = self.lock();
        let mut bytes_now = 0;
        for row in batch.rows {
            let key = GroupKey {
                day: row.day,
                domain: row.domain,
                record: row.record,
                policy: row.policy,
            };
            let key_bytes = key.bytes();
            let existed = inner.groups.contains_key(&key);
            let entry = inner.groups.entry(key).or_default();
            if !existed {
                bytes_now += key_bytes;
            }
            entry.successes += row.successes;
            entry.failures += row.failures;
            for (detail, count) in row.details {
                match entry.details.get_mut(&detail) {
                    Some(c) => *c += count,
                    None => {
                        bytes_now += detail.len();
                        entry.details.insert(detail, count);
                    }
                }
            }
        }
        inner.waiting += batch.results;
        // Keys merged into groups that arrived meanwhile are no longer held twice.
        inner.bytes = inner.bytes.saturating_sub(batch.bytes) + bytes_now;
    }

    /// Results held (waiting or being written).
    pub fn held(&self) -> usize {
        self.lock().results
    }

    /// Results waiting for the next batch.
    pub fn waiting(&self) -> usize {
        self.lock().waiting
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mtasts_proto::tlsrpt::datagram::parse_datagram;

    const DAY: i64 = 1_796_083_200;

    fn result(domain: &str, policy_type: u16, failed: bool, code: Option<u16>) -> SessionResult {
        let details = match code {
            Some(c) => format!(
                r#","failure-details":[{{"c":{c},"s": "192.0.2.1","n": "mx.{domain}"}}],"t":1"#
            ),
            None => String::new(),
        };
        let text = format!(
            r#"{{"dpv": "1","d": "{domain}","pr": "v=TLSRPTv1; rua=mailto:r@{domain}","policies":[{{"policy-type":{policy_type},"policy-domain": "{domain}"{details},"f":{}}}]}}"#,
            u8::from(failed)
        );
        parse_datagram(text.as_bytes()).unwrap()
    }

    fn totals(rows: &[ResultRow]) -> (u64, u64, u64) {
        rows.iter().fold((0, 0, 0), |(s, f, d), r| {
            (
                s + r.successes,
                f + r.failures,
                d + r.details.iter().map(|(_, c)| c).sum::<u64>(),
            )
        })
    }

    #[test]
    fn identical_results_share_a_row_and_details_are_counted() {
        let pending = Pending::new(100);
        for _ in 0..3 {
            pending
                .add(DAY, &result("a.example", 2, false, None))
                .unwrap();
        }
        for _ in 0..2 {
            pending
                .add(DAY, &result("a.example", 2, true, Some(204)))
                .unwrap();
        }
        pending
            .add(DAY, &result("b.example", 1, true, Some(205)))
            .unwrap();
        pending
            .add(DAY + 86_400, &result("a.example", 2, false, None))
            .unwrap();
        assert_eq!(pending.waiting(), 7);
        let batch = pending.take().unwrap();
        assert_eq!(batch.results, 7);
        // (day, a, sts), (day, b, tlsa), (next day, a, sts)
        assert_eq!(batch.rows.len(), 3);
        assert_eq!(totals(&batch.rows), (4, 3, 3));
        let a = &batch.rows[0];
        assert_eq!((a.day, a.domain.as_str()), (DAY, "a.example"));
        assert_eq!((a.successes, a.failures), (3, 2));
        assert_eq!(a.details.len(), 1);
        assert_eq!(a.details[0].1, 2);
        assert!(pending.take().is_none());
        assert_eq!(pending.held(), 7);
        pending.committed(&batch);
        assert_eq!(pending.held(), 0);
    }

    #[test]
    fn beyond_the_bound_results_are_refused_until_a_commit() {
        let pending = Pending::new(2);
        pending
            .add(DAY, &result("a.example", 2, false, None))
            .unwrap();
        pending
            .add(DAY, &result("a.example", 2, false, None))
            .unwrap();
        assert_eq!(
            pending.add(DAY, &result("a.example", 2, false, None)),
            Err(Refused::Full)
        );
        let batch = pending.take().unwrap();
        // Still held while being written.
        assert_eq!(
            pending.add(DAY, &result("a.example", 2, false, None)),
            Err(Refused::Full)
        );
        pending.committed(&batch);
        pending
            .add(DAY, &result("a.example", 2, false, None))
            .unwrap();
    }

    #[test]
    fn a_failed_batch_merges_back_with_what_arrived_meanwhile() {
        let pending = Pending::new(100);
        pending
            .add(DAY, &result("a.example", 2, true, Some(201)))
            .unwrap();
        pending
            .add(DAY, &result("a.example", 9, false, None))
            .unwrap();
        let batch = pending.take().unwrap();
        pending
            .add(DAY, &result("a.example", 2, true, Some(201)))
            .unwrap();
        pending.restore(batch);
        assert_eq!(pending.waiting(), 3);
        assert_eq!(pending.held(), 3);
        let batch = pending.take().unwrap();
        assert_eq!(batch.rows.len(), 2);
        assert_eq!(totals(&batch.rows), (1, 2, 2));
        pending.committed(&batch);
        assert_eq!(pending.held(), 0);
        // Key bytes return to zero too: the bound does not leak.
        assert_eq!(pending.lock().bytes, 0);
    }

    #[test]
    fn the_key_byte_bound_refuses_too() {
        let pending = Pending::with_byte_limit(1000, 10);
        pending
            .add(DAY, &result("a.example", 2, false, None))
            .unwrap();
        assert_eq!(
            pending.add(DAY, &result("b.example", 2, false, None)),
            Err(Refused::Full)
        );
    }
}
