//! The statements of the reports database. Written once for both drivers: `$N` placeholders,
//! `RETURNING` and `ON CONFLICT` mean the same in SQLite and PostgreSQL. Sums are cast to
//! BIGINT (PostgreSQL sums BIGINT into NUMERIC).

/// The table that records applied report migrations, apart from the other databases' tables.
pub(super) const MIGRATIONS_TABLE: &str = "_mtasts_reports_migrations";

macro_rules! report_columns {
    () => {
        "r.id, r.kind, r.organization, r.report_id, r.begin_at, r.end_at, r.domains, r.source, \
         r.received_at, r.duplicates, r.success, r.failure"
    };
}

/// The common filter on `report_reports r`: `$1` domain, `$2` since, `$3` until, `$4` kind.
macro_rules! report_filter {
    () => {
        "($1 IS NULL OR EXISTS (SELECT 1 FROM report_domains d WHERE d.report = r.id \
         AND d.domain = $1)) AND ($2 IS NULL OR r.end_at >= $2) \
         AND ($3 IS NULL OR r.begin_at < $3) AND ($4 IS NULL OR r.kind = $4)"
    };
}

// Inputs.
pub(super) const INSERT_INPUT: &str = "INSERT INTO report_inputs \
     (sha256, source, received_at, size, data) VALUES ($1, $2, $3, $4, $5) \
     ON CONFLICT (sha256) DO NOTHING RETURNING id";
pub(super) const INPUT_AGAIN: &str =
    "UPDATE report_inputs SET arrivals = arrivals + 1 WHERE sha256 = $1 RETURNING id";
pub(super) const INPUT_IDS: &str = "SELECT id FROM report_inputs ORDER BY id";
pub(super) const INPUT: &str =
    "SELECT id, source, received_at, data FROM report_inputs WHERE id = $1";

// Reports.
pub(super) const INSERT_REPORT: &str = "INSERT INTO report_reports \
     (kind, organization, report_id, begin_at, end_at, domains, source, received_at, success, \
     failure, normalized, raw) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) \
     ON CONFLICT (kind, organization, report_id, begin_at, end_at) DO NOTHING RETURNING id";
pub(super) const REPORT_AGAIN: &str = "UPDATE report_reports \
     SET duplicates = duplicates + $6 WHERE kind = $1 AND organization = $2 AND report_id = $3 \
     AND begin_at = $4 AND end_at = $5 RETURNING id";
pub(super) const REPORT_IDS: &str = "SELECT id FROM report_reports ORDER BY id";
pub(super) const LIST: &str = concat!(
    "SELECT ",
    report_columns!(),
    " FROM report_reports r WHERE ",
    report_filter!(),
    " ORDER BY r.begin_at DESC, r.id DESC LIMIT $5"
);
/// The head of a scoped list (`mtasts_store::reports::ReportDb::reports_page`): conditions
/// are appended with `AND`.
pub(super) const SCOPED_LIST: &str = concat!(
    "SELECT ",
    report_columns!(),
    " FROM report_reports r WHERE 1 = 1"
);
pub(super) const GET: &str = concat!(
    "SELECT ",
    report_columns!(),
    ", r.normalized, r.raw FROM report_reports r WHERE r.id = $1"
);
pub(super) const OLD_NORMALIZED: &str = "SELECT normalized FROM report_reports WHERE id = $1";
pub(super) const UPDATE_REPORT: &str = "UPDATE report_reports SET kind = $2, organization = $3, \
     report_id = $4, begin_at = $5, end_at = $6, domains = $7, success = $8, failure = $9, \
     normalized = $10, raw = $11 WHERE id = $1";
pub(super) const DELETE_DOMAINS: &str = "DELETE FROM report_domains WHERE report = $1";
pub(super) const DELETE_POLICIES: &str = "DELETE FROM report_policies WHERE report = $1";
pub(super) const DELETE_FAILURES: &str = "DELETE FROM report_tls_failures WHERE report = $1";
pub(super) const DELETE_RECORDS: &str = "DELETE FROM report_dmarc_records WHERE report = $1";
pub(super) const DELETE_SELECTORS: &str = "DELETE FROM report_dkim_selectors WHERE report = $1";

// Child rows (multi-row inserts: the VALUES lists are added by the builder).
pub(super) const INSERT_DOMAINS: &str = "INSERT INTO report_domains (report, domain, success, \
     failure, messages, dmarc_pass, dkim_pass, spf_pass, disp_none, quarantine, reject) ";
pub(super) const INSERT_POLICIES: &str = "INSERT INTO report_policies (report, idx, kind, domain, \
     policy, p, pct, strings, mx, success, failure, seen_at) ";
pub(super) const INSERT_FAILURES: &str = "INSERT INTO report_tls_failures (report, idx, \
     policy_idx, domain, result, count, sending_ip, receiving_mx, receiving_helo, receiving_ip, \
     additional_info, reason_code) ";
pub(super) const INSERT_RECORDS: &str = "INSERT INTO report_dmarc_records (report, idx, domain, \
     source_ip, count, disposition, dkim, spf, header_from, envelope_from, envelope_to) ";
pub(super) const INSERT_SELECTORS: &str =
    "INSERT INTO report_dkim_selectors (report, domain, selector, messages) ";
pub(super) const UPSERT_DAILY: &str = "INSERT INTO report_daily (kind, domain, day, \
     organization, reports, success, failure, messages, dmarc_pass, dkim_pass, spf_pass, \
     disp_none, quarantine, reject, begun, last_received) ";
pub(super) const UPSERT_DAILY_TAIL: &str = " ON CONFLICT (kind, domain, day, organization) \
     DO UPDATE SET reports = report_daily.reports + excluded.reports, \
     success = report_daily.success + excluded.success, \
     failure = report_daily.failure + excluded.failure, \
     messages = report_daily.messages + excluded.messages, \
     dmarc_pass = report_daily.dmarc_pass + excluded.dmarc_pass, \
     dkim_pass = report_daily.dkim_pass + excluded.dkim_pass, \
     spf_pass = report_daily.spf_pass + excluded.spf_pass, \
     disp_none = report_daily.disp_none + excluded.disp_none, \
     quarantine = report_daily.quarantine + excluded.quarantine, \
     reject = report_daily.reject + excluded.reject, \
     begun = report_daily.begun + excluded.begun, \
     last_received = CASE WHEN excluded.last_received > report_daily.last_received \
     THEN excluded.last_received ELSE report_daily.last_received END";
// The deletes of rows left with no report use the partial indexes on `reports <= 0`: they
// touch only such rows, never scan the table.
pub(super) const DELETE_EMPTY_DAILY: &str = "DELETE FROM report_daily WHERE reports <= 0";
pub(super) const UPSERT_TLS: &str = "INSERT INTO report_daily_tls_failures (domain, day, \
     organization, result, receiving_mx, receiving_ip, sending_ip, reports, count) ";
pub(super) const UPSERT_TLS_TAIL: &str = " ON CONFLICT (domain, day, organization, result, \
     receiving_mx, receiving_ip, sending_ip) DO UPDATE SET \
     reports = report_daily_tls_failures.reports + excluded.reports, \
     count = report_daily_tls_failures.count + excluded.count";
pub(super) const DELETE_EMPTY_TLS: &str =
    "DELETE FROM report_daily_tls_failures WHERE reports <= 0";
pub(super) const UPSERT_DMARC: &str = "INSERT INTO report_daily_dmarc_sources (domain, day, \
     source_ip, header_from, reports, messages, dmarc_pass, dkim_pass, spf_pass, disp_none, \
     quarantine, reject) ";
pub(super) const UPSERT_DMARC_TAIL: &str = " ON CONFLICT (domain, day, source_ip, header_from) \
     DO UPDATE SET reports = report_daily_dmarc_sources.reports + excluded.reports, \
     messages = report_daily_dmarc_sources.messages + excluded.messages, \
     dmarc_pass = report_daily_dmarc_sources.dmarc_pass + excluded.dmarc_pass, \
     dkim_pass = report_daily_dmarc_sources.dkim_pass + excluded.dkim_pass, \
     spf_pass = report_daily_dmarc_sources.spf_pass + excluded.spf_pass, \
     disp_none = report_daily_dmarc_sources.disp_none + excluded.disp_none, \
     quarantine = report_daily_dmarc_sources.quarantine + excluded.quarantine, \
     reject = report_daily_dmarc_sources.reject + excluded.reject";
pub(super) const DELETE_EMPTY_DMARC: &str =
    "DELETE FROM report_daily_dmarc_sources WHERE reports <= 0";
pub(super) const UPSERT_POLICIES: &str = "INSERT INTO report_daily_policies (domain, day, kind, \
     policy, p, pct, reports, seen_at) ";
pub(super) const UPSERT_POLICIES_TAIL: &str = " ON CONFLICT (domain, day, kind, policy, p, pct) \
     DO UPDATE SET reports = report_daily_policies.reports + excluded.reports, \
     seen_at = CASE WHEN excluded.seen_at > report_daily_policies.seen_at \
     THEN excluded.seen_at ELSE report_daily_policies.seen_at END";
pub(super) const DELETE_EMPTY_POLICIES: &str =
    "DELETE FROM report_daily_policies WHERE reports <= 0";

// A stored report's rows read back for the rollups (to take a replaced report away, or to
// backfill): every report with an id in [$1, $2].
pub(super) const ROLLUP_REPORTS: &str = "SELECT id, kind, organization, begin_at, end_at, \
     received_at FROM report_reports WHERE id BETWEEN $1 AND $2 ORDER BY id";
pub(super) const ROLLUP_DOMAINS: &str = "SELECT report, domain, success, failure, messages, \
     dmarc_pass, dkim_pass, spf_pass, disp_none, quarantine, reject FROM report_domains \
     WHERE report BETWEEN $1 AND $2";
pub(super) const ROLLUP_FAILURES: &str = "SELECT report, domain, result, count, receiving_mx, \
     receiving_ip, sending_ip FROM report_tls_failures WHERE report BETWEEN $1 AND $2";
pub(super) const ROLLUP_RECORDS: &str = "SELECT report, domain, source_ip, count, disposition, \
     dkim, spf, header_from FROM report_dmarc_records WHERE report BETWEEN $1 AND $2";
pub(super) const ROLLUP_POLICIES: &str = "SELECT report, domain, policy, p, pct \
     FROM report_policies WHERE report BETWEEN $1 AND $2";

// The breakdown rollups' backfill (mtasts_store::reports::backfill): the one marker row.
pub(super) const BACKFILL_CLAIM: &str = "UPDATE report_rollup_backfill SET next_id = next_id \
     WHERE id = 1 RETURNING next_id, max_id";
pub(super) const BACKFILL_BATCH: &str = "SELECT r.id, \
     (SELECT COUNT(*) FROM report_tls_failures f WHERE f.report = r.id) \
     + (SELECT COUNT(*) FROM report_dmarc_records d WHERE d.report = r.id) \
     + (SELECT COUNT(*) FROM report_policies p WHERE p.report = r.id) \
     FROM report_reports r WHERE r.id > $1 AND r.id <= $2 ORDER BY r.id LIMIT $3";
pub(super) const BACKFILL_ADVANCE: &str =
    "UPDATE report_rollup_backfill SET next_id = $1 WHERE id = 1";
pub(super) const BACKFILL_DONE: &str = "DELETE FROM report_rollup_backfill WHERE id = 1";

// Errors.
pub(super) const INSERT_ERRORS: &str =
    "INSERT INTO report_errors (input, source, code, message, received_at) ";
pub(super) const DELETE_ERRORS: &str = "DELETE FROM report_errors WHERE input = $1";
pub(super) const COUNT_ERRORS: &str = "SELECT COUNT(*) FROM report_errors WHERE input = $1";
pub(super) const ERRORS: &str = "SELECT id, source, code, message, received_at \
     FROM report_errors WHERE ($1 IS NULL OR received_at >= $1) \
     AND ($2 IS NULL OR received_at < $2) ORDER BY received_at DESC, id DESC LIMIT $3";

// Summaries.
pub(super) const DAILY: &str = "SELECT kind, domain, day, organization, reports, success, \
     failure, messages, dmarc_pass, dkim_pass, spf_pass, disp_none, quarantine, reject \
     FROM report_daily WHERE ($1 IS NULL OR domain = $1) AND ($2 IS NULL OR day + 86400 > $2) \
     AND ($3 IS NULL OR day < $3) AND ($4 IS NULL OR kind = $4)";
// A report covers [begin, end): its last day is the day of `end - 1`, so an end at the next
// midnight (Mail.ru's exclusive end) is not a day of its own, as in `mtasts_proto::rollup`.
pub(super) const TLS_FAILURES: &str = "SELECT f.domain, f.result, f.receiving_mx, r.organization, \
     CAST(SUM(f.count) AS BIGINT), MIN(r.begin_at - (r.begin_at % 86400)), \
     MAX(CASE WHEN r.end_at > r.begin_at THEN (r.end_at - 1) - ((r.end_at - 1) % 86400) \
     ELSE r.begin_at - (r.begin_at % 86400) END) \
     FROM report_tls_failures f JOIN report_reports r ON r.id = f.report \
     WHERE ($1 IS NULL OR f.domain = $1) AND ($2 IS NULL OR r.end_at >= $2) \
     AND ($3 IS NULL OR r.begin_at < $3) AND ($4 IS NULL OR r.kind = $4) \
     GROUP BY f.domain, f.result, f.receiving_mx, r.organization";
pub(super) const DMARC_SOURCES: &str = "SELECT d.domain, d.source_ip, \
     COALESCE(d.header_from, ''), CAST(SUM(d.count) AS BIGINT), \
     CAST(SUM(CASE WHEN d.dkim = 'pass' OR d.spf = 'pass' THEN d.count ELSE 0 END) AS BIGINT), \
     CAST(SUM(CASE WHEN d.dkim = 'pass' THEN d.count ELSE 0 END) AS BIGINT), \
     CAST(SUM(CASE WHEN d.spf = 'pass' THEN d.count ELSE 0 END) AS BIGINT), \
     CAST(SUM(CASE WHEN d.disposition IN ('none', 'pass') THEN d.count ELSE 0 END) AS BIGINT), \
     CAST(SUM(CASE WHEN d.disposition = 'quarantine' THEN d.count ELSE 0 END) AS BIGINT), \
     CAST(SUM(CASE WHEN d.disposition = 'reject' THEN d.count ELSE 0 END) AS BIGINT) \
     FROM report_dmarc_records d JOIN report_reports r ON r.id = d.report \
     WHERE ($1 IS NULL OR d.domain = $1) AND ($2 IS NULL OR r.end_at >= $2) \
     AND ($3 IS NULL OR r.begin_at < $3) AND ($4 IS NULL OR r.kind = $4) \
     GROUP BY d.domain, d.source_ip, COALESCE(d.header_from, '')";
pub(super) const POLICIES: &str = "SELECT p.kind, p.domain, p.policy, p.p, p.pct, p.seen_at \
     FROM report_policies p JOIN report_reports r ON r.id = p.report \
     WHERE ($1 IS NULL OR p.domain = $1) AND ($2 IS NULL OR r.end_at >= $2) \
     AND ($3 IS NULL OR r.begin_at < $3) AND ($4 IS NULL OR p.kind = $4)";
