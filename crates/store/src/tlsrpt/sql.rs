//! The statements of the outgoing TLS-report database.

/// The table that records applied migrations of this database, apart from the others' tables.
pub(super) const MIGRATIONS_TABLE: &str = "_mtasts_tlsrpt_migrations";

// Results. The upserts' VALUES lists are added by the builder; a no-op update on a group
// makes RETURNING give existing rows too (DO NOTHING returns only new ones).
pub(super) const UPSERT_GROUPS: &str =
    "INSERT INTO tlsrpt_groups (day, domain, record, record_hash) ";
pub(super) const UPSERT_GROUPS_TAIL: &str = " ON CONFLICT (day, domain, record_hash) \
     DO UPDATE SET day = excluded.day RETURNING id, day, domain, record_hash";
pub(super) const UPSERT_POLICIES: &str =
    "INSERT INTO tlsrpt_policies (grp, policy, policy_hash, successes, failures) ";
pub(super) const UPSERT_POLICIES_TAIL: &str = " ON CONFLICT (grp, policy_hash) DO UPDATE \
     SET successes = tlsrpt_policies.successes + excluded.successes, \
     failures = tlsrpt_policies.failures + excluded.failures RETURNING id, grp, policy_hash";
pub(super) const UPSERT_DETAILS: &str =
    "INSERT INTO tlsrpt_details (policy, detail, detail_hash, count) ";
pub(super) const UPSERT_DETAILS_TAIL: &str = " ON CONFLICT (policy, detail_hash) DO UPDATE \
     SET count = tlsrpt_details.count + excluded.count";

/// `$1`: the latest day start that has ended.
pub(super) const PENDING_DAYS: &str = "SELECT DISTINCT g.day FROM tlsrpt_groups g \
     WHERE g.day <= $1 AND NOT EXISTS (SELECT 1 FROM tlsrpt_days d WHERE d.day = g.day) \
     ORDER BY g.day";
pub(super) const DAY_DONE: &str =
    "INSERT INTO tlsrpt_days (day) VALUES ($1) ON CONFLICT (day) DO NOTHING";

// A day's groups in (domain, record) byte order (PostgreSQL's columns are COLLATE "C"); the
// `domain >= $2` bound lets the (day, domain, …) index start the page.
pub(super) const GROUPS_FIRST: &str = "SELECT id, domain, record FROM tlsrpt_groups \
     WHERE day = $1 ORDER BY domain, record LIMIT $2";
pub(super) const GROUPS_AFTER: &str = "SELECT id, domain, record FROM tlsrpt_groups \
     WHERE day = $1 AND domain >= $2 AND (domain > $2 OR record > $3) \
     ORDER BY domain, record LIMIT $4";
/// Followed by a list of group ids and `)`.
pub(super) const POLICIES_OF: &str =
    "SELECT id, grp, policy, successes, failures FROM tlsrpt_policies WHERE grp IN (";
/// Followed by a list of group ids and `)`.
pub(super) const DETAILS_OF: &str = "SELECT d.policy, d.detail, d.count FROM tlsrpt_details d \
     JOIN tlsrpt_policies p ON p.id = d.policy WHERE p.grp IN (";

// Reports and their outbox.
pub(super) const INSERT_REPORT: &str = "INSERT INTO tlsrpt_reports (day, domain, record, \
     record_hash, report_id, file_name, json_bytes, gz) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
     ON CONFLICT (day, domain, record_hash) DO NOTHING RETURNING id";
pub(super) const REPORT_ID_OF: &str =
    "SELECT id FROM tlsrpt_reports WHERE day = $1 AND domain = $2 AND record_hash = $3";
pub(super) const INSERT_DELIVERIES: &str =
    "INSERT INTO tlsrpt_deliveries (report, destination, first_try, next_try, give_up_at) ";
pub(super) const REPORT: &str = "SELECT id, day, domain, record, report_id, file_name, \
     json_bytes, gz FROM tlsrpt_reports WHERE id = $1";
pub(super) const REPORTS_OF_DAY: &str = "SELECT id, day, domain, record, report_id, file_name, \
     json_bytes, gz FROM tlsrpt_reports WHERE day = $1";
macro_rules! destination_columns {
    () => {
        "x.id, x.report, x.destination, x.state, x.attempts, x.next_try, x.give_up_at, \
         x.last_attempt, x.last_error"
    };
}
pub(super) const DESTINATIONS_OF: &str = concat!(
    "SELECT ",
    destination_columns!(),
    " FROM tlsrpt_deliveries x WHERE x.report = $1"
);
pub(super) const DESTINATIONS_OF_DAY: &str = concat!(
    "SELECT ",
    destination_columns!(),
    " FROM tlsrpt_deliveries x JOIN tlsrpt_reports r ON r.id = x.report WHERE r.day = $1"
);

// Leasing: `$1` node, `$2` lease end, `$3` now, `$4` limit. The outer conditions repeat the
// inner ones: on PostgreSQL a row updated by a concurrent lease meanwhile is checked again
// against them (and SKIP LOCKED passes over rows another lease is taking).
pub(super) const LEASE_SQLITE: &str = "UPDATE tlsrpt_deliveries \
     SET lease_node = $1, lease_until = $2 WHERE id IN (SELECT id FROM tlsrpt_deliveries \
     WHERE state = 'pending' AND next_try <= $3 AND lease_until <= $3 \
     ORDER BY next_try, id LIMIT $4) AND state = 'pending' AND lease_until <= $3 \
     RETURNING id, report, destination, attempts, first_try, give_up_at, next_try";
// A CTE, not `id IN (…)`: with `IN`, PostgreSQL 15 leased 3 deliveries for a LIMIT of 2 (the
// locking subquery is not run once; the lease test shows it), while a CTE is.
pub(super) const LEASE_POSTGRES: &str = "WITH due AS (SELECT id FROM tlsrpt_deliveries \
     WHERE state = 'pending' AND next_try <= $3 AND lease_until <= $3 \
     ORDER BY next_try, id LIMIT $4 FOR UPDATE SKIP LOCKED) \
     UPDATE tlsrpt_deliveries x SET lease_node = $1, lease_until = $2 FROM due \
     WHERE x.id = due.id AND x.state = 'pending' AND x.lease_until <= $3 \
     RETURNING x.id, x.report, x.destination, x.attempts, x.first_try, x.give_up_at, x.next_try";

// Finishing an attempt: `$1` id, `$2` now; only a pending delivery changes.
pub(super) const DELIVERED: &str = "UPDATE tlsrpt_deliveries SET state = 'delivered', \
     attempts = attempts + 1, last_attempt = $2, last_error = NULL, lease_node = NULL, \
     lease_until = 0 WHERE id = $1 AND state = 'pending' RETURNING destination";
/// `$3` error, `$4` next try.
pub(super) const RETRY: &str = "UPDATE tlsrpt_deliveries SET attempts = attempts + 1, \
     last_attempt = $2, last_error = $3, next_try = $4, lease_node = NULL, lease_until = 0 \
     WHERE id = $1 AND state = 'pending' RETURNING destination";
/// `$3` error.
pub(super) const GAVE_UP: &str = "UPDATE tlsrpt_deliveries SET state = 'gave_up', \
     attempts = attempts + 1, last_attempt = $2, last_error = $3, lease_node = NULL, \
     lease_until = 0 WHERE id = $1 AND state = 'pending' RETURNING destination";
pub(super) const DESTINATION_DELIVERED: &str = "INSERT INTO tlsrpt_destinations \
     (destination, gave_up_in_row) VALUES ($1, 0) \
     ON CONFLICT (destination) DO UPDATE SET gave_up_in_row = 0";
pub(super) const DESTINATION_GAVE_UP: &str = "INSERT INTO tlsrpt_destinations \
     (destination, gave_up_in_row) VALUES ($1, 1) ON CONFLICT (destination) \
     DO UPDATE SET gave_up_in_row = tlsrpt_destinations.gave_up_in_row + 1";
pub(super) const SUPPRESS: &str = "INSERT INTO tlsrpt_destinations \
     (destination, gave_up_in_row, suppressed_until, reason) VALUES ($1, 0, $2, $3) \
     ON CONFLICT (destination) DO UPDATE SET gave_up_in_row = 0, \
     suppressed_until = excluded.suppressed_until, reason = excluded.reason";
pub(super) const SUPPRESSED_UNTIL: &str =
    "SELECT suppressed_until FROM tlsrpt_destinations WHERE destination = $1";
pub(super) const GAVE_UP_IN_ROW: &str =
    "SELECT gave_up_in_row FROM tlsrpt_destinations WHERE destination = $1";
pub(super) const RESCHEDULE_DAY: &str = "UPDATE tlsrpt_deliveries SET next_try = $2 \
     WHERE state = 'pending' AND report IN (SELECT id FROM tlsrpt_reports WHERE day = $1)";

// Status: `$1` is today (counters) or now (outbox, suppression), `$2` a limit.
pub(super) const TODAY_COUNTS: &str = "SELECT CAST(COALESCE(SUM(p.successes), 0) AS BIGINT), \
     CAST(COALESCE(SUM(p.failures), 0) AS BIGINT) FROM tlsrpt_policies p \
     JOIN tlsrpt_groups g ON g.id = p.grp WHERE g.day = $1";
pub(super) const TODAY_GROUPS: &str = "SELECT COUNT(*) FROM tlsrpt_groups WHERE day = $1";
pub(super) const PENDING_DAY_COUNT: &str = "SELECT COUNT(DISTINCT g.day) FROM tlsrpt_groups g \
     WHERE g.day <= $1 AND NOT EXISTS (SELECT 1 FROM tlsrpt_days d WHERE d.day = g.day)";
pub(super) const OUTBOX: &str = "SELECT state, COUNT(*), \
     CAST(COALESCE(SUM(CASE WHEN next_try <= $1 THEN 1 ELSE 0 END), 0) AS BIGINT), \
     CAST(COALESCE(SUM(CASE WHEN lease_until > $1 THEN 1 ELSE 0 END), 0) AS BIGINT) \
     FROM tlsrpt_deliveries GROUP BY state";
macro_rules! event_columns {
    () => {
        "SELECT x.id, r.day, r.domain, x.destination, x.state, x.attempts, x.last_attempt, \
         x.last_error FROM tlsrpt_deliveries x JOIN tlsrpt_reports r ON r.id = x.report \
         WHERE x.last_attempt IS NOT NULL"
    };
}
pub(super) const RECENT: &str = concat!(
    event_columns!(),
    " ORDER BY x.last_attempt DESC, x.id DESC LIMIT $1"
);
pub(super) const RECENT_FAILURES: &str = concat!(
    event_columns!(),
    " AND x.last_error IS NOT NULL ORDER BY x.last_attempt DESC, x.id DESC LIMIT $1"
);
pub(super) const SUPPRESSED: &str = "SELECT destination, suppressed_until, COALESCE(reason, '') \
     FROM tlsrpt_destinations WHERE suppressed_until > $1";

// Retention: `$1` the first day kept, `$2` rows per statement.
pub(super) const PRUNE_GROUPS: &str = "DELETE FROM tlsrpt_groups WHERE id IN \
     (SELECT id FROM tlsrpt_groups WHERE day < $1 ORDER BY id LIMIT $2)";
// A report with a delivery still being tried is kept until it is delivered or given up.
pub(super) const PRUNE_REPORTS: &str = "DELETE FROM tlsrpt_reports WHERE id IN \
     (SELECT r.id FROM tlsrpt_reports r WHERE r.day < $1 AND NOT EXISTS \
     (SELECT 1 FROM tlsrpt_deliveries x WHERE x.report = r.id AND x.state = 'pending') \
     ORDER BY r.id LIMIT $2)";
pub(super) const PRUNE_DAYS: &str = "DELETE FROM tlsrpt_days WHERE day < $1";
// A destination that is not failing and no longer suppressed has nothing worth keeping.
pub(super) const PRUNE_DESTINATIONS: &str = "DELETE FROM tlsrpt_destinations \
     WHERE gave_up_in_row = 0 AND (suppressed_until IS NULL OR suppressed_until < $1)";
