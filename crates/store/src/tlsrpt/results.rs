//! Collected results: adding a batch, the days waiting for their reports, and a day's groups
//! (what each report is built from).

use std::collections::{BTreeMap, HashMap};

use super::{
    BATCH_ROWS, DayGroup, MAX_KEY_BYTES, MAX_PAGE, MAX_RECORD_BYTES, OP_TIMEOUT, PolicyRow,
    ResultRow, TlsrptDb, TlsrptDbError, bounded, capped, check_day, error::db_error, hash,
    retrying, signed, sql, unsigned, write_limit,
};

impl ResultRow {
    /// Whether the database accepts this row: its day is the start of a UTC day, every text
    /// is within its cap and every count fits the database. A collector drops (and counts)
    /// rows that fail this rather than losing the whole batch.
    pub fn check(&self) -> Result<(), TlsrptDbError> {
        check_day(self.day)?;
        capped("domain", &self.domain, crate::MAX_DOMAIN_BYTES)?;
        capped("record", &self.record, MAX_RECORD_BYTES)?;
        capped("policy key", &self.policy, MAX_KEY_BYTES)?;
        signed("successes", self.successes)?;
        signed("failures", self.failures)?;
        for (detail, count) in &self.details {
            capped("failure key", detail, MAX_KEY_BYTES)?;
            signed("failure count", *count)?;
        }
        Ok(())
    }
}

/// A group's identity: (day, domain, SHA-256 of the record).
type GroupKey = (i64, String, Vec<u8>);
/// A failure detail's identity: (group, SHA-256 of the policy key, SHA-256 of the detail key).
type DetailKey = (GroupKey, Vec<u8>, Vec<u8>);

/// A batch summed up before it is written: each group, policy and detail once (PostgreSQL
/// refuses to upsert one row twice in a statement), in key order, so that concurrent writers
/// lock rows in the same order (no deadlock).
#[derive(Default)]
struct Summed<'a> {
    /// Group key → record text.
    groups: BTreeMap<GroupKey, &'a str>,
    /// (group key, policy hash) → (policy key, successes, failures).
    policies: BTreeMap<(GroupKey, Vec<u8>), (&'a str, i64, i64)>,
    /// (group key, policy hash, detail hash) → (failure key, count).
    details: BTreeMap<DetailKey, (&'a str, i64)>,
}

fn sum(batch: &[ResultRow]) -> Result<Summed<'_>, TlsrptDbError> {
    let mut summed = Summed::default();
    for row in batch {
        row.check()?;
        let group: GroupKey = (row.day, row.domain.clone(), hash(&row.record));
        summed.groups.entry(group.clone()).or_insert(&row.record);
        let policy_hash = hash(&row.policy);
        let entry = summed
            .policies
            .entry((group.clone(), policy_hash.clone()))
            .or_insert((&row.policy, 0, 0));
        entry.1 = add(entry.1, row.successes)?;
        entry.2 = add(entry.2, row.failures)?;
        for (detail, count) in &row.details {
            let entry = summed
                .details
                .entry((group.clone(), policy_hash.clone(), hash(detail)))
                .or_insert((detail, 0));
            entry.1 = add(entry.1, *count)?;
        }
    }
    Ok(summed)
}

/// `sum + more`, refused past what the database holds.
fn add(sum: i64, more: u64) -> Result<i64, TlsrptDbError> {
    sum.checked_add(signed("count", more)?)
        .ok_or_else(|| TlsrptDbError::Invalid("a count of the batch is too large".into()))
}

impl TlsrptDb {
    /// Adds a batch of counted results in ONE transaction: each (day, domain, record, policy)
    /// adds its successes and failures, each failure detail its count, to what is stored
    /// (rows repeated in the batch are summed first). `Ok` means committed (see the module
    /// docs on durability); on an error nothing is stored, and a row over a cap fails the
    /// whole batch with [`TlsrptDbError::Invalid`] ([`ResultRow::check`] finds such rows first).
    pub async fn record(&self, batch: &[ResultRow]) -> Result<(), TlsrptDbError> {
        if batch.is_empty() {
            return Ok(());
        }
        let summed = sum(batch)?;
        let rows = summed.groups.len() + summed.policies.len() + summed.details.len();
        retrying(|| bounded(write_limit(rows), self.record_once(&summed))).await
    }

    /// One attempt of [`TlsrptDb::record`].
    async fn record_once(&self, summed: &Summed<'_>) -> Result<(), TlsrptDbError> {
        with_pool!(self, |pool| {
            let mut tx = pool
                .begin_with(self.backend.begin_write())
                .await
                .map_err(db_error)?;
            let groups: Vec<_> = summed.groups.iter().collect();
            let mut group_ids: HashMap<GroupKey, i64> = HashMap::with_capacity(groups.len());
            for chunk in groups.chunks(BATCH_ROWS) {
                let mut builder = sqlx::QueryBuilder::new(sql::UPSERT_GROUPS);
                builder.push_values(chunk, |mut b, (key, record)| {
                    b.push_bind(key.0)
                        .push_bind(key.1.clone())
                        .push_bind(record.to_string())
                        .push_bind(key.2.clone());
                });
                builder.push(sql::UPSERT_GROUPS_TAIL);
                let returned: Vec<(i64, i64, String, Vec<u8>)> = builder
                    .build_query_as()
                    .fetch_all(&mut *tx)
                    .await
                    .map_err(db_error)?;
                for (id, day, domain, record_hash) in returned {
                    group_ids.insert((day, domain, record_hash), id);
                }
            }
            let group_id = |key: &GroupKey| {
                group_ids.get(key).copied().ok_or_else(|| {
                    TlsrptDbError::Corrupt(format!("the group of {} was not returned", key.1))
                })
            };
            let mut policies = Vec::with_capacity(summed.policies.len());
            for ((group, policy_hash), value) in &summed.policies {
                policies.push((group_id(group)?, policy_hash, value));
            }
            let mut policy_ids: HashMap<(i64, Vec<u8>), i64> =
                HashMap::with_capacity(policies.len());
            for chunk in policies.chunks(BATCH_ROWS) {
                let mut builder = sqlx::QueryBuilder::new(sql::UPSERT_POLICIES);
                builder.push_values(chunk, |mut b, (grp, policy_hash, value)| {
                    b.push_bind(*grp)
                        .push_bind(value.0.to_string())
                        .push_bind((*policy_hash).clone())
                        .push_bind(value.1)
                        .push_bind(value.2);
                });
                builder.push(sql::UPSERT_POLICIES_TAIL);
                let returned: Vec<(i64, i64, Vec<u8>)> = builder
                    .build_query_as()
                    .fetch_all(&mut *tx)
                    .await
                    .map_err(db_error)?;
                for (id, grp, policy_hash) in returned {
                    policy_ids.insert((grp, policy_hash), id);
                }
            }
            let mut details = Vec::with_capacity(summed.details.len());
            for ((group, policy_hash, detail_hash), value) in &summed.details {
                let key = (group_id(group)?, policy_hash.clone());
                let policy = policy_ids.get(&key).copied().ok_or_else(|| {
                    TlsrptDbError::Corrupt(format!("a policy of {} was not returned", group.1))
                })?;
                details.push((policy, detail_hash, value));
            }
            for chunk in details.chunks(BATCH_ROWS) {
                let mut builder = sqlx::QueryBuilder::new(sql::UPSERT_DETAILS);
                builder.push_values(chunk, |mut b, (policy, detail_hash, value)| {
                    b.push_bind(*policy)
                        .push_bind(value.0.to_string())
                        .push_bind((*detail_hash).clone())
                        .push_bind(value.1);
                });
                builder.push(sql::UPSERT_DETAILS_TAIL);
                builder.build().execute(&mut *tx).await.map_err(db_error)?;
            }
            tx.commit().await.map_err(db_error)?;
            Ok(())
        })
    }

    /// UTC days (start, Unix seconds, ascending) that have results and whose reports are not
    /// all built yet ([`TlsrptDb::mark_day_done`]), ended at or before `before`.
    pub async fn pending_days(&self, before: i64) -> Result<Vec<i64>, TlsrptDbError> {
        bounded(OP_TIMEOUT, async {
            with_pool!(self, |pool| sqlx::query_scalar(sql::PENDING_DAYS)
                .bind(before.saturating_sub(super::DAY))
                .fetch_all(pool)
                .await
                .map_err(db_error))
        })
        .await
    }

    /// A page of the (domain, record) groups with results on `day`, each with its aggregated
    /// policies (sorted by key, their details too), in (domain, record) byte order, starting
    /// after `after` (the last group of the previous page), at most `limit` (capped at
    /// [`MAX_PAGE`]). A page shorter than `limit` is the last. The page is read in one
    /// snapshot, so a policy's details add up with its counts.
    pub async fn day_groups(
        &self,
        day: i64,
        after: Option<(&str, &str)>,
        limit: usize,
    ) -> Result<Vec<DayGroup>, TlsrptDbError> {
        check_day(day)?;
        let limit = limit.clamp(1, MAX_PAGE) as i64;
        bounded(write_limit(limit as usize * 4), async {
            with_pool!(self, |pool| {
                let mut tx = pool
                    .begin_with(self.backend.begin_read())
                    .await
                    .map_err(db_error)?;
                let groups: Vec<(i64, String, String)> = match after {
                    None => sqlx::query_as(sql::GROUPS_FIRST)
                        .bind(day)
                        .bind(limit)
                        .fetch_all(&mut *tx)
                        .await
                        .map_err(db_error)?,
                    Some((domain, record)) => sqlx::query_as(sql::GROUPS_AFTER)
                        .bind(day)
                        .bind(domain)
                        .bind(record)
                        .bind(limit)
                        .fetch_all(&mut *tx)
                        .await
                        .map_err(db_error)?,
                };
                let ids: Vec<i64> = groups.iter().map(|g| g.0).collect();
                let mut policies: Vec<(i64, i64, String, i64, i64)> = Vec::new();
                let mut details: Vec<(i64, String, i64)> = Vec::new();
                for chunk in ids.chunks(BATCH_ROWS) {
                    let mut builder = sqlx::QueryBuilder::new(sql::POLICIES_OF);
                    let mut list = builder.separated(", ");
                    for id in chunk {
                        list.push_bind(*id);
                    }
                    builder.push(")");
                    policies.extend(
                        builder
                            .build_query_as::<(i64, i64, String, i64, i64)>()
                            .fetch_all(&mut *tx)
                            .await
                            .map_err(db_error)?,
                    );
                    let mut builder = sqlx::QueryBuilder::new(sql::DETAILS_OF);
                    let mut list = builder.separated(", ");
                    for id in chunk {
                        list.push_bind(*id);
                    }
                    builder.push(")");
                    details.extend(
                        builder
                            .build_query_as::<(i64, String, i64)>()
                            .fetch_all(&mut *tx)
                            .await
                            .map_err(db_error)?,
                    );
                }
                tx.commit().await.map_err(db_error)?;
                assemble(groups, policies, details)
            })
        })
        .await
    }

    /// Notes that every report of `day` is built: the day is no longer pending.
    pub async fn mark_day_done(&self, day: i64) -> Result<(), TlsrptDbError> {
        check_day(day)?;
        bounded(OP_TIMEOUT, async {
            with_pool!(self, |pool| sqlx::query(sql::DAY_DONE)
                .bind(day)
                .execute(pool)
                .await
                .map(|_| ())
                .map_err(db_error))
        })
        .await
    }
}

/// The groups of a page with their policies (policy id, group id, key, successes, failures)
/// and details (policy id, key, count), sorted.
fn assemble(
    groups: Vec<(i64, String, String)>,
    policies: Vec<(i64, i64, String, i64, i64)>,
    details: Vec<(i64, String, i64)>,
) -> Result<Vec<DayGroup>, TlsrptDbError> {
    let mut details_of: HashMap<i64, Vec<(String, u64)>> = HashMap::new();
    for (policy, key, count) in details {
        details_of
            .entry(policy)
            .or_default()
            .push((key, unsigned("failure count", count)?));
    }
    let mut policies_of: HashMap<i64, Vec<PolicyRow>> = HashMap::new();
    for (id, grp, policy, successes, failures) in policies {
        let mut details = details_of.remove(&id).unwrap_or_default();
        details.sort();
        policies_of.entry(grp).or_default().push(PolicyRow {
            policy,
            successes: unsigned("successes", successes)?,
            failures: unsigned("failures", failures)?,
            details,
        });
    }
    // In the order the database returned (the page order).
    Ok(groups
        .into_iter()
        .map(|(id, domain, record)| {
            let mut policies = policies_of.remove(&id).unwrap_or_default();
            policies.sort_by(|a, b| a.policy.cmp(&b.policy));
            DayGroup {
                domain,
                record,
                policies,
            }
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(domain: &str, policy: &str, ok: u64, details: &[(&str, u64)]) -> ResultRow {
        ResultRow {
            day: 86_400 * 19_000,
            domain: domain.into(),
            record: "v=TLSRPTv1; rua=mailto:r@x".into(),
            policy: policy.into(),
            successes: ok,
            failures: details.iter().map(|d| d.1).sum(),
            details: details.iter().map(|(k, n)| (k.to_string(), *n)).collect(),
        }
    }

    #[test]
    fn a_batch_is_summed_once_per_row_in_key_order() {
        let batch = [
            row("b.example", "p1", 1, &[("e1", 2)]),
            row("a.example", "p1", 5, &[]),
            row("b.example", "p1", 3, &[("e1", 1), ("e2", 4)]),
            row("b.example", "p2", 1, &[]),
        ];
        let summed = sum(&batch).unwrap();
        let domains: Vec<&str> = summed.groups.keys().map(|k| k.1.as_str()).collect();
        assert_eq!(domains, ["a.example", "b.example"]);
        let policies: Vec<(&str, &str, i64, i64)> = summed
            .policies
            .iter()
            .map(|((g, _), v)| (g.1.as_str(), v.0, v.1, v.2))
            .collect();
        assert_eq!(policies.len(), 3);
        assert!(policies.contains(&("a.example", "p1", 5, 0)));
        assert!(policies.contains(&("b.example", "p1", 4, 7)));
        assert!(policies.contains(&("b.example", "p2", 1, 0)));
        let mut details: Vec<(&str, i64)> = summed.details.values().copied().collect();
        details.sort();
        assert_eq!(details, [("e1", 3), ("e2", 4)]);
    }

    #[test]
    fn sums_past_the_database_are_refused() {
        let mut a = row("a.example", "p", 0, &[]);
        a.successes = i64::MAX as u64;
        let b = row("a.example", "p", 1, &[]);
        assert!(matches!(sum(&[a, b]), Err(TlsrptDbError::Invalid(_))));
    }
}
