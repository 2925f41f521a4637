-- The MTA-STS policy cache (mtasts-store). One row per policy domain.
CREATE TABLE IF NOT EXISTS sts_policy_cache (
    domain          TEXT    NOT NULL PRIMARY KEY,
    kind            TEXT    NOT NULL CHECK (kind IN ('policy', 'no_policy')),
    policy_id       TEXT,
    body            TEXT,
    fetched_at      INTEGER,
    no_policy_until INTEGER,
    last_failure    INTEGER,
    last_used       INTEGER NOT NULL
);
