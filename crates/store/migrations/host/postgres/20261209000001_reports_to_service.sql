-- Whether the service names itself in a hosted domain's `_smtp._tls` rua (its HTTPS intake and,
-- when mail intake runs, its mailbox), besides the owner's own rua. Existing domains get the
-- service's address: that is what hosting them here now means.
ALTER TABLE host_domains ADD COLUMN reports_to_service BOOLEAN NOT NULL DEFAULT TRUE;

-- The service's own certificate (`reports.<zone>`, also valid for `mta-sts.reports.<zone>`),
-- its ACME state and its challenges are kept under the report host's name, which is no hosted
-- domain: the three tables lose their foreign key to host_domains (the store checks that other
-- names are hosted), and a trigger deletes a hosted domain's rows with it, as the cascade did.
ALTER TABLE host_certificates DROP CONSTRAINT host_certificates_domain_fkey;
ALTER TABLE host_acme_states DROP CONSTRAINT host_acme_states_domain_fkey;
ALTER TABLE host_challenges DROP CONSTRAINT host_challenges_domain_fkey;

CREATE FUNCTION host_domains_forget() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM host_certificates WHERE domain = OLD.name;
    DELETE FROM host_acme_states WHERE domain = OLD.name;
    DELETE FROM host_challenges WHERE domain = OLD.name;
    RETURN OLD;
END
$$;
CREATE TRIGGER host_domains_forget AFTER DELETE ON host_domains
    FOR EACH ROW EXECUTE FUNCTION host_domains_forget();
