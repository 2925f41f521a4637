-- Whether the service names itself in a hosted domain's `_smtp._tls` rua (its HTTPS intake and,
-- when mail intake runs, its mailbox), besides the owner's own rua. Existing domains get the
-- service's address: that is what hosting them here now means.
ALTER TABLE host_domains ADD COLUMN reports_to_service INTEGER NOT NULL DEFAULT 1
    CHECK (reports_to_service IN (0, 1));
