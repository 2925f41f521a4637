-- The outgoing TLS-report database (mtasts_store::tlsrpt): the results the resolver collects,
-- the reports built from them and their deliveries. Times are Unix seconds; days are the start
-- of a UTC day; counts are non-negative. Long texts (records, policy and failure keys) are
-- identified by their SHA-256 (`*_hash`), so that unique keys stay small on PostgreSQL.

-- One row per (day, recipient domain, TLSRPT record): one report each.
CREATE TABLE tlsrpt_groups (
    id INTEGER PRIMARY KEY,
    day INTEGER NOT NULL,
    domain TEXT NOT NULL,
    record TEXT NOT NULL,
    record_hash BLOB NOT NULL,
    UNIQUE (day, domain, record_hash)
);

-- The counts of one policy within a group.
CREATE TABLE tlsrpt_policies (
    id INTEGER PRIMARY KEY,
    grp INTEGER NOT NULL REFERENCES tlsrpt_groups (id) ON DELETE CASCADE,
    policy TEXT NOT NULL,
    policy_hash BLOB NOT NULL,
    successes INTEGER NOT NULL DEFAULT 0 CHECK (successes >= 0),
    failures INTEGER NOT NULL DEFAULT 0 CHECK (failures >= 0),
    UNIQUE (grp, policy_hash)
);

-- The failure details of one policy.
CREATE TABLE tlsrpt_details (
    policy INTEGER NOT NULL REFERENCES tlsrpt_policies (id) ON DELETE CASCADE,
    detail TEXT NOT NULL,
    detail_hash BLOB NOT NULL,
    count INTEGER NOT NULL CHECK (count >= 0),
    PRIMARY KEY (policy, detail_hash)
);

-- Days whose reports have all been built.
CREATE TABLE tlsrpt_days (
    day INTEGER PRIMARY KEY
);

-- Built reports: at most one per (day, domain, record), whichever node built it first.
CREATE TABLE tlsrpt_reports (
    id INTEGER PRIMARY KEY,
    day INTEGER NOT NULL,
    domain TEXT NOT NULL,
    record TEXT NOT NULL,
    record_hash BLOB NOT NULL,
    report_id TEXT NOT NULL,
    file_name TEXT NOT NULL,
    json_bytes INTEGER NOT NULL,
    gz BLOB NOT NULL,
    UNIQUE (day, domain, record_hash)
);

-- The outbox: one row per (report, rua destination).
CREATE TABLE tlsrpt_deliveries (
    id INTEGER PRIMARY KEY,
    report INTEGER NOT NULL REFERENCES tlsrpt_reports (id) ON DELETE CASCADE,
    destination TEXT NOT NULL,
    state TEXT NOT NULL DEFAULT 'pending',
    attempts INTEGER NOT NULL DEFAULT 0,
    first_try INTEGER NOT NULL,
    next_try INTEGER NOT NULL,
    give_up_at INTEGER NOT NULL,
    lease_node TEXT,
    lease_until INTEGER NOT NULL DEFAULT 0,
    last_attempt INTEGER,
    last_error TEXT,
    UNIQUE (report, destination)
);
CREATE INDEX tlsrpt_deliveries_due ON tlsrpt_deliveries (state, next_try);
CREATE INDEX tlsrpt_deliveries_last ON tlsrpt_deliveries (last_attempt);

-- Per destination: consecutive reports given up, and suppression.
CREATE TABLE tlsrpt_destinations (
    destination TEXT PRIMARY KEY,
    gave_up_in_row INTEGER NOT NULL DEFAULT 0,
    suppressed_until INTEGER,
    reason TEXT
);
