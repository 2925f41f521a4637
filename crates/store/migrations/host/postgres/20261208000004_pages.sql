-- Keyset pagination of the domain list (mtasts serve's API and dashboard). Pages are in byte
-- order (COLLATE "C"), the order SQLite uses, whatever the database's collation: these indexes
-- serve that order, for every tenant and for one.
CREATE INDEX host_domains_name_bytes ON host_domains (name COLLATE "C");
CREATE INDEX host_domains_tenant_name ON host_domains (tenant_id, name COLLATE "C");
