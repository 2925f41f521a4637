-- Claims: a tenant proving control of a domain (possibly hosted by another tenant) with a TXT
-- record `_mtasts-claim.<domain>` = `mtasts-claim=<token>`. One open claim per tenant and name;
-- expired claims are purged when the tenant asks for another, so the table stays bounded.
CREATE TABLE host_domain_claims (
    tenant_id  BIGINT  NOT NULL REFERENCES host_tenants (id) ON DELETE CASCADE,
    domain     TEXT    NOT NULL,
    token      TEXT    NOT NULL,
    created_at BIGINT  NOT NULL,
    expires_at BIGINT  NOT NULL,
    PRIMARY KEY (tenant_id, domain)
);
CREATE INDEX host_domain_claims_expires_at ON host_domain_claims (expires_at);
