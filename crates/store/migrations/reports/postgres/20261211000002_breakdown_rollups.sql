-- Breakdown rollups (mtasts_store::reports::rollup): the TLS failure details, the DMARC sources
-- and the policies seen, per domain and UTC day, kept in step with the stored reports exactly
-- like report_daily (spread over a report's days by mtasts_proto::rollup, taken away on
-- reparse, rows deleted when no report is left) and, like it, never deleted by retention.
-- Labels are cut to 255 bytes; absent ones are '' (key columns cannot be NULL).

-- report_daily learns how many reports begin on each day (so that "reports in a window"
-- counts each report once: those covering its first day plus those beginning after it) and
-- the latest arrival of a report beginning on the day (a maximum, never lowered).
ALTER TABLE report_daily ADD COLUMN begun BIGINT NOT NULL DEFAULT 0;
ALTER TABLE report_daily ADD COLUMN last_received BIGINT NOT NULL DEFAULT 0;
-- From the reports still stored, by their begin day (the floor of begin_at to a UTC day;
-- `%` truncates towards zero, hence the double modulo).
UPDATE report_daily SET begun = s.n, last_received = s.latest
FROM (SELECT r.kind AS kind, d.domain AS domain, r.organization AS organization,
             r.begin_at - (((r.begin_at % 86400) + 86400) % 86400) AS day,
             COUNT(*) AS n, MAX(r.received_at) AS latest
      FROM report_domains d JOIN report_reports r ON r.id = d.report
      GROUP BY r.kind, d.domain, r.organization,
               r.begin_at - (((r.begin_at % 86400) + 86400) % 86400)) AS s
WHERE report_daily.kind = s.kind AND report_daily.domain = s.domain
  AND report_daily.organization = s.organization AND report_daily.day = s.day;
-- Rows left with no report are found without a scan.
CREATE INDEX report_daily_empty ON report_daily (day) WHERE reports <= 0;

-- Failed TLS sessions per (domain, day, organization, result type, receiving MX, receiving IP,
-- sending IP); `reports` counts the reports covering the day with that key.
CREATE TABLE report_daily_tls_failures (
    domain TEXT NOT NULL,
    day BIGINT NOT NULL,
    organization TEXT NOT NULL,
    result TEXT NOT NULL,
    receiving_mx TEXT NOT NULL,
    receiving_ip TEXT NOT NULL,
    sending_ip TEXT NOT NULL,
    reports BIGINT NOT NULL,
    count BIGINT NOT NULL,
    PRIMARY KEY (domain, day, organization, result, receiving_mx, receiving_ip, sending_ip)
);
CREATE INDEX report_daily_tls_failures_empty ON report_daily_tls_failures (day)
    WHERE reports <= 0;

-- DMARC messages per (domain, day, source IP, header-from), with the same columns as
-- report_daily's DMARC part.
CREATE TABLE report_daily_dmarc_sources (
    domain TEXT NOT NULL,
    day BIGINT NOT NULL,
    source_ip TEXT NOT NULL,
    header_from TEXT NOT NULL,
    reports BIGINT NOT NULL,
    messages BIGINT NOT NULL,
    dmarc_pass BIGINT NOT NULL,
    dkim_pass BIGINT NOT NULL,
    spf_pass BIGINT NOT NULL,
    disp_none BIGINT NOT NULL,
    quarantine BIGINT NOT NULL,
    reject BIGINT NOT NULL,
    PRIMARY KEY (domain, day, source_ip, header_from)
);
CREATE INDEX report_daily_dmarc_sources_empty ON report_daily_dmarc_sources (day)
    WHERE reports <= 0;

-- The policies reports showed per (domain, day, kind, label, p, pct: -1 when absent), with the
-- latest end of a report counted (a maximum, never lowered).
CREATE TABLE report_daily_policies (
    domain TEXT NOT NULL,
    day BIGINT NOT NULL,
    kind TEXT NOT NULL,
    policy TEXT NOT NULL,
    p TEXT NOT NULL,
    pct BIGINT NOT NULL,
    reports BIGINT NOT NULL,
    seen_at BIGINT NOT NULL,
    PRIMARY KEY (domain, day, kind, policy, p, pct)
);
CREATE INDEX report_daily_policies_empty ON report_daily_policies (day) WHERE reports <= 0;

-- The breakdowns of the reports stored until now are backfilled when the database is next
-- opened (mtasts_store::reports::backfill), exactly as a report being stored is spread: this
-- row says up to which report id, and how far the backfill got. It is deleted when done.
CREATE TABLE report_rollup_backfill (
    id BIGINT PRIMARY KEY CHECK (id = 1),
    next_id BIGINT NOT NULL,
    max_id BIGINT NOT NULL
);
INSERT INTO report_rollup_backfill (id, next_id, max_id)
SELECT 1, 0, COALESCE(MAX(id), 0) FROM report_reports;
