-- Keyset pagination of the domain list (mtasts serve's API and dashboard): one tenant's
-- domains in name order straight from an index. The UNIQUE index on name already serves the
-- list of every tenant; SQLite's default BINARY collation is byte order.
CREATE INDEX host_domains_tenant_name ON host_domains (tenant_id, name);
