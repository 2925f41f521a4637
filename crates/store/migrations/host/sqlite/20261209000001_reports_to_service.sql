-- Whether the service names itself in a hosted domain's `_smtp._tls` rua (its HTTPS intake and,
-- when mail intake runs, its mailbox), besides the owner's own rua. Existing domains get the
-- service's address: that is what hosting them here now means.
ALTER TABLE host_domains ADD COLUMN reports_to_service INTEGER NOT NULL DEFAULT 1
    CHECK (reports_to_service IN (0, 1));

-- The service's own certificate (`reports.<zone>`, also valid for `mta-sts.reports.<zone>`),
-- its ACME state and its challenges are kept under the report host's name, which is no hosted
-- domain: the three tables lose their foreign key to host_domains (SQLite cannot drop one, so
-- they are rebuilt; the store checks that other names are hosted), and a trigger deletes a
-- hosted domain's rows with it, as the cascade did.
CREATE TABLE host_certificates_new (
    domain     TEXT    NOT NULL PRIMARY KEY,
    chain_pem  TEXT    NOT NULL,
    key_pem    TEXT    NOT NULL,
    not_before INTEGER NOT NULL,
    not_after  INTEGER NOT NULL,
    issued_by  TEXT    NOT NULL,
    updated_at INTEGER NOT NULL
);
INSERT INTO host_certificates_new (domain, chain_pem, key_pem, not_before, not_after,
    issued_by, updated_at)
    SELECT domain, chain_pem, key_pem, not_before, not_after, issued_by, updated_at
    FROM host_certificates;
DROP TABLE host_certificates;
ALTER TABLE host_certificates_new RENAME TO host_certificates;

CREATE TABLE host_acme_states_new (
    domain          TEXT    NOT NULL PRIMARY KEY,
    failures        INTEGER NOT NULL,
    next_attempt_at INTEGER NOT NULL,
    last_error      TEXT
);
INSERT INTO host_acme_states_new (domain, failures, next_attempt_at, last_error)
    SELECT domain, failures, next_attempt_at, last_error FROM host_acme_states;
DROP TABLE host_acme_states;
ALTER TABLE host_acme_states_new RENAME TO host_acme_states;

CREATE TABLE host_challenges_new (
    token             TEXT    NOT NULL PRIMARY KEY,
    domain            TEXT    NOT NULL,
    kind              TEXT    NOT NULL CHECK (kind IN ('http-01', 'tls-alpn-01')),
    key_authorization TEXT    NOT NULL,
    cert_pem          TEXT,
    key_pem           TEXT,
    expires_at        INTEGER NOT NULL
);
INSERT INTO host_challenges_new (token, domain, kind, key_authorization, cert_pem, key_pem,
    expires_at)
    SELECT token, domain, kind, key_authorization, cert_pem, key_pem, expires_at
    FROM host_challenges;
DROP TABLE host_challenges;
ALTER TABLE host_challenges_new RENAME TO host_challenges;
CREATE INDEX host_challenges_domain ON host_challenges (domain);

CREATE TRIGGER host_domains_forget AFTER DELETE ON host_domains
BEGIN
    DELETE FROM host_certificates WHERE domain = OLD.name;
    DELETE FROM host_acme_states WHERE domain = OLD.name;
    DELETE FROM host_challenges WHERE domain = OLD.name;
END;
