-- Alerts of mtasts serve (issue 11 item 7): per-tenant settings, the alerts (one open row per
-- tenant, domain, kind and key; resolved rows are kept as history), the notifications still
-- to deliver or delivered (a persistent outbox: deliveries survive a restart), and what the
-- delegation checks remember of each delegated record (verified once, failing since).
CREATE TABLE host_alert_settings (
    tenant_id        INTEGER NOT NULL PRIMARY KEY REFERENCES host_tenants (id) ON DELETE CASCADE,
    webhook_url      TEXT,
    webhook_secret   TEXT,
    email_to         TEXT    NOT NULL DEFAULT '',
    failure_permille INTEGER NOT NULL,
    min_sessions     INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL
);

CREATE TABLE host_alerts (
    id          INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    tenant_id   INTEGER NOT NULL REFERENCES host_tenants (id) ON DELETE CASCADE,
    domain      TEXT    NOT NULL,
    kind        TEXT    NOT NULL,
    alert_key   TEXT    NOT NULL,
    title       TEXT    NOT NULL,
    what        TEXT    NOT NULL,
    fix         TEXT    NOT NULL,
    since       INTEGER NOT NULL,
    first_seen  INTEGER NOT NULL,
    last_seen   INTEGER NOT NULL,
    notified_at INTEGER,
    resolved_at INTEGER
);
CREATE UNIQUE INDEX host_alerts_open ON host_alerts (tenant_id, domain, kind, alert_key)
    WHERE resolved_at IS NULL;
CREATE INDEX host_alerts_tenant ON host_alerts (tenant_id, id);

CREATE TABLE host_alert_deliveries (
    id              INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    alert_id        INTEGER NOT NULL REFERENCES host_alerts (id) ON DELETE CASCADE,
    channel         TEXT    NOT NULL CHECK (channel IN ('webhook', 'email')),
    event           TEXT    NOT NULL CHECK (event IN ('opened', 'reminder', 'resolved')),
    state           TEXT    NOT NULL CHECK (state IN ('pending', 'sent', 'failed')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    last_error      TEXT,
    created_at      INTEGER NOT NULL,
    done_at         INTEGER
);
CREATE INDEX host_alert_deliveries_due ON host_alert_deliveries (state, next_attempt_at);
CREATE INDEX host_alert_deliveries_alert ON host_alert_deliveries (alert_id);

CREATE TABLE host_alert_records (
    domain        TEXT    NOT NULL,
    record        TEXT    NOT NULL,
    verified_at   INTEGER,
    failing_since INTEGER,
    detail        TEXT    NOT NULL DEFAULT '',
    fix           TEXT    NOT NULL DEFAULT '',
    PRIMARY KEY (domain, record)
);
