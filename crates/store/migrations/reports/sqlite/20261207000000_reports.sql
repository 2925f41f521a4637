-- The received-reports database (mtasts_store::reports). See the module docs for what each table
-- holds. Times are Unix seconds; counts are non-negative.

-- Every input as received (a file, a mail message), gzip-compressed by the caller, once per content.
CREATE TABLE report_inputs (
    id INTEGER PRIMARY KEY,
    sha256 TEXT NOT NULL UNIQUE,
    source TEXT NOT NULL,
    received_at INTEGER NOT NULL,
    size INTEGER NOT NULL,
    data BLOB NOT NULL,
    arrivals INTEGER NOT NULL DEFAULT 1
);

-- One row per report, identified by (kind, organization, report_id, begin_at, end_at).
CREATE TABLE report_reports (
    id INTEGER PRIMARY KEY,
    kind TEXT NOT NULL,
    organization TEXT NOT NULL,
    report_id TEXT NOT NULL,
    begin_at INTEGER NOT NULL,
    end_at INTEGER NOT NULL,
    domains TEXT NOT NULL,
    source TEXT NOT NULL,
    received_at INTEGER NOT NULL,
    duplicates INTEGER NOT NULL DEFAULT 0,
    success INTEGER NOT NULL,
    failure INTEGER NOT NULL,
    normalized TEXT NOT NULL,
    raw BLOB NOT NULL,
    UNIQUE (kind, organization, report_id, begin_at, end_at)
);
CREATE INDEX report_reports_begin ON report_reports (begin_at);

-- A report's counts per domain: what its daily rollup rows were made from.
CREATE TABLE report_domains (
    report INTEGER NOT NULL REFERENCES report_reports (id) ON DELETE CASCADE,
    domain TEXT NOT NULL,
    success INTEGER NOT NULL,
    failure INTEGER NOT NULL,
    messages INTEGER NOT NULL,
    dmarc_pass INTEGER NOT NULL,
    dkim_pass INTEGER NOT NULL,
    spf_pass INTEGER NOT NULL,
    disp_none INTEGER NOT NULL,
    quarantine INTEGER NOT NULL,
    reject INTEGER NOT NULL,
    PRIMARY KEY (report, domain)
);
CREATE INDEX report_domains_domain ON report_domains (domain);

-- The policies a report names (TLS: each policies entry; DMARC: policy_published).
CREATE TABLE report_policies (
    report INTEGER NOT NULL REFERENCES report_reports (id) ON DELETE CASCADE,
    idx INTEGER NOT NULL,
    kind TEXT NOT NULL,
    domain TEXT NOT NULL,
    policy TEXT NOT NULL,
    p TEXT,
    pct INTEGER,
    strings TEXT NOT NULL,
    mx TEXT NOT NULL,
    success INTEGER NOT NULL,
    failure INTEGER NOT NULL,
    seen_at INTEGER NOT NULL,
    PRIMARY KEY (report, idx)
);
CREATE INDEX report_policies_domain ON report_policies (domain);

-- TLS-RPT failure details.
CREATE TABLE report_tls_failures (
    report INTEGER NOT NULL REFERENCES report_reports (id) ON DELETE CASCADE,
    idx INTEGER NOT NULL,
    policy_idx INTEGER NOT NULL,
    domain TEXT NOT NULL,
    result TEXT NOT NULL,
    count INTEGER NOT NULL,
    sending_ip TEXT,
    receiving_mx TEXT,
    receiving_helo TEXT,
    receiving_ip TEXT,
    additional_info TEXT,
    reason_code TEXT,
    PRIMARY KEY (report, idx)
);
CREATE INDEX report_tls_failures_domain ON report_tls_failures (domain);

-- DMARC records (the first MAX_RECORDS of a report; its counts include all).
CREATE TABLE report_dmarc_records (
    report INTEGER NOT NULL REFERENCES report_reports (id) ON DELETE CASCADE,
    idx INTEGER NOT NULL,
    domain TEXT NOT NULL,
    source_ip TEXT NOT NULL,
    count INTEGER NOT NULL,
    disposition TEXT NOT NULL,
    dkim TEXT,
    spf TEXT,
    header_from TEXT,
    envelope_from TEXT,
    envelope_to TEXT,
    PRIMARY KEY (report, idx)
);
CREATE INDEX report_dmarc_records_domain ON report_dmarc_records (domain);

-- Daily rollups per (kind, domain, UTC day, organization), kept in step with report_domains.
CREATE TABLE report_daily (
    kind TEXT NOT NULL,
    domain TEXT NOT NULL,
    day INTEGER NOT NULL,
    organization TEXT NOT NULL,
    reports INTEGER NOT NULL,
    success INTEGER NOT NULL,
    failure INTEGER NOT NULL,
    messages INTEGER NOT NULL,
    dmarc_pass INTEGER NOT NULL,
    dkim_pass INTEGER NOT NULL,
    spf_pass INTEGER NOT NULL,
    disp_none INTEGER NOT NULL,
    quarantine INTEGER NOT NULL,
    reject INTEGER NOT NULL,
    PRIMARY KEY (kind, domain, day, organization)
);
CREATE INDEX report_daily_day ON report_daily (day);

-- What could not be read, with the input it came from (so reparse can read it again).
CREATE TABLE report_errors (
    id INTEGER PRIMARY KEY,
    input INTEGER NOT NULL REFERENCES report_inputs (id) ON DELETE CASCADE,
    source TEXT NOT NULL,
    code TEXT NOT NULL,
    message TEXT NOT NULL,
    received_at INTEGER NOT NULL
);
CREATE INDEX report_errors_input ON report_errors (input);
