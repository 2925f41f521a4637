-- mtasts serve (hosted MTA-STS): the shared state of every serve node. Times are Unix seconds.
-- AUTOINCREMENT so a deleted row's id is never handed out again (ids appear in API URLs).

-- One row: bumped by every mutation, polled by the nodes to know when to reload.
CREATE TABLE host_generation (
    id    INTEGER NOT NULL PRIMARY KEY CHECK (id = 1),
    value INTEGER NOT NULL
);
INSERT INTO host_generation (id, value) VALUES (1, 0);

CREATE TABLE host_tenants (
    id         INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    name       TEXT    NOT NULL UNIQUE,
    created_at INTEGER NOT NULL
);

CREATE TABLE host_users (
    id            INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    tenant_id     INTEGER REFERENCES host_tenants (id),
    email         TEXT    NOT NULL UNIQUE,
    password_hash TEXT    NOT NULL,
    role          TEXT    NOT NULL CHECK (role IN ('admin', 'owner', 'readonly'))
);

CREATE TABLE host_api_tokens (
    id         INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    tenant_id  INTEGER REFERENCES host_tenants (id),
    role       TEXT    NOT NULL CHECK (role IN ('admin', 'owner', 'readonly')),
    label      TEXT    NOT NULL,
    token_hash TEXT    NOT NULL UNIQUE,
    created_at INTEGER NOT NULL,
    last_used  INTEGER
);

CREATE TABLE host_sessions (
    id_hash    TEXT    NOT NULL PRIMARY KEY,
    user_id    INTEGER NOT NULL REFERENCES host_users (id) ON DELETE CASCADE,
    csrf_token TEXT    NOT NULL,
    expires_at INTEGER NOT NULL
);
CREATE INDEX host_sessions_expires_at ON host_sessions (expires_at);

CREATE TABLE host_domains (
    id                INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    tenant_id         INTEGER NOT NULL REFERENCES host_tenants (id),
    name              TEXT    NOT NULL UNIQUE,
    state             TEXT    NOT NULL CHECK (state IN ('active', 'removing')),
    rua               TEXT,
    created_at        INTEGER NOT NULL,
    remove_after      INTEGER,
    latest_version    INTEGER NOT NULL,
    published_version INTEGER,
    verification      TEXT,
    verified_at       INTEGER
);
CREATE INDEX host_domains_tenant_id ON host_domains (tenant_id);

CREATE TABLE host_policy_versions (
    domain_id          INTEGER NOT NULL REFERENCES host_domains (id) ON DELETE CASCADE,
    version            INTEGER NOT NULL,
    policy_id          TEXT    NOT NULL,
    mode               TEXT    NOT NULL CHECK (mode IN ('enforce', 'testing', 'none')),
    mx                 TEXT    NOT NULL,
    max_age            INTEGER NOT NULL,
    body               TEXT    NOT NULL,
    created_at         INTEGER NOT NULL,
    created_generation INTEGER NOT NULL,
    published_at       INTEGER,
    PRIMARY KEY (domain_id, version),
    UNIQUE (domain_id, policy_id)
);

CREATE TABLE host_nodes (
    node_id           TEXT    NOT NULL PRIMARY KEY,
    loaded_generation INTEGER NOT NULL,
    last_seen         INTEGER NOT NULL,
    started_at        INTEGER NOT NULL
);

-- Keyed by the hosted domain's name (not the mta-sts. host), so removing the domain removes
-- what ACME left behind.
CREATE TABLE host_certificates (
    domain     TEXT    NOT NULL PRIMARY KEY REFERENCES host_domains (name) ON DELETE CASCADE,
    chain_pem  TEXT    NOT NULL,
    key_pem    TEXT    NOT NULL,
    not_before INTEGER NOT NULL,
    not_after  INTEGER NOT NULL,
    issued_by  TEXT    NOT NULL,
    updated_at INTEGER NOT NULL
);

CREATE TABLE host_acme_states (
    domain          TEXT    NOT NULL PRIMARY KEY REFERENCES host_domains (name) ON DELETE CASCADE,
    failures        INTEGER NOT NULL,
    next_attempt_at INTEGER NOT NULL,
    last_error      TEXT
);

CREATE TABLE host_acme_accounts (
    directory_url    TEXT NOT NULL PRIMARY KEY,
    credentials_json TEXT NOT NULL
);

CREATE TABLE host_challenges (
    token             TEXT    NOT NULL PRIMARY KEY,
    domain            TEXT    NOT NULL REFERENCES host_domains (name) ON DELETE CASCADE,
    kind              TEXT    NOT NULL CHECK (kind IN ('http-01', 'tls-alpn-01')),
    key_authorization TEXT    NOT NULL,
    cert_pem          TEXT,
    key_pem           TEXT,
    expires_at        INTEGER NOT NULL
);
CREATE INDEX host_challenges_domain ON host_challenges (domain);
