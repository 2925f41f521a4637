-- mtasts serve (hosted MTA-STS): the shared state of every serve node. Times are Unix seconds.
-- Identity columns: a deleted row's id is never handed out again (ids appear in API URLs).

-- One row: bumped by every mutation, polled by the nodes to know when to reload.
CREATE TABLE host_generation (
    id    BIGINT  NOT NULL PRIMARY KEY CHECK (id = 1),
    value BIGINT  NOT NULL
);
INSERT INTO host_generation (id, value) VALUES (1, 0);

CREATE TABLE host_tenants (
    id         BIGINT  NOT NULL GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name       TEXT    NOT NULL UNIQUE,
    created_at BIGINT  NOT NULL
);

CREATE TABLE host_users (
    id            BIGINT  NOT NULL GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id     BIGINT  REFERENCES host_tenants (id),
    email         TEXT    NOT NULL UNIQUE,
    password_hash TEXT    NOT NULL,
    role          TEXT    NOT NULL CHECK (role IN ('admin', 'owner', 'readonly'))
);

CREATE TABLE host_api_tokens (
    id         BIGINT  NOT NULL GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id  BIGINT  REFERENCES host_tenants (id),
    role       TEXT    NOT NULL CHECK (role IN ('admin', 'owner', 'readonly')),
    label      TEXT    NOT NULL,
    token_hash TEXT    NOT NULL UNIQUE,
    created_at BIGINT  NOT NULL,
    last_used  BIGINT
);

CREATE TABLE host_sessions (
    id_hash    TEXT    NOT NULL PRIMARY KEY,
    user_id    BIGINT  NOT NULL REFERENCES host_users (id) ON DELETE CASCADE,
    csrf_token TEXT    NOT NULL,
    expires_at BIGINT  NOT NULL
);
CREATE INDEX host_sessions_expires_at ON host_sessions (expires_at);

CREATE TABLE host_domains (
    id                BIGINT  NOT NULL GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id         BIGINT  NOT NULL REFERENCES host_tenants (id),
    name              TEXT    NOT NULL UNIQUE,
    state             TEXT    NOT NULL CHECK (state IN ('active', 'removing')),
    rua               TEXT,
    created_at        BIGINT  NOT NULL,
    remove_after      BIGINT,
    latest_version    BIGINT  NOT NULL,
    published_version BIGINT,
    verification      TEXT,
    verified_at       BIGINT
);
CREATE INDEX host_domains_tenant_id ON host_domains (tenant_id);

CREATE TABLE host_policy_versions (
    domain_id          BIGINT  NOT NULL REFERENCES host_domains (id) ON DELETE CASCADE,
    version            BIGINT  NOT NULL,
    policy_id          TEXT    NOT NULL,
    mode               TEXT    NOT NULL CHECK (mode IN ('enforce', 'testing', 'none')),
    mx                 TEXT    NOT NULL,
    max_age            BIGINT  NOT NULL,
    body               TEXT    NOT NULL,
    created_at         BIGINT  NOT NULL,
    created_generation BIGINT  NOT NULL,
    published_at       BIGINT,
    PRIMARY KEY (domain_id, version),
    UNIQUE (domain_id, policy_id)
);

CREATE TABLE host_nodes (
    node_id           TEXT    NOT NULL PRIMARY KEY,
    loaded_generation BIGINT  NOT NULL,
    last_seen         BIGINT  NOT NULL,
    started_at        BIGINT  NOT NULL
);

-- Keyed by the hosted domain's name (not the mta-sts. host), so removing the domain removes
-- what ACME left behind.
CREATE TABLE host_certificates (
    domain     TEXT    NOT NULL PRIMARY KEY REFERENCES host_domains (name) ON DELETE CASCADE,
    chain_pem  TEXT    NOT NULL,
    key_pem    TEXT    NOT NULL,
    not_before BIGINT  NOT NULL,
    not_after  BIGINT  NOT NULL,
    issued_by  TEXT    NOT NULL,
    updated_at BIGINT  NOT NULL
);

CREATE TABLE host_acme_states (
    domain          TEXT    NOT NULL PRIMARY KEY REFERENCES host_domains (name) ON DELETE CASCADE,
    failures        BIGINT  NOT NULL,
    next_attempt_at BIGINT  NOT NULL,
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
    expires_at        BIGINT  NOT NULL
);
CREATE INDEX host_challenges_domain ON host_challenges (domain);
