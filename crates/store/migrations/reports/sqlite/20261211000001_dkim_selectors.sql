-- The DKIM selectors a DMARC report's auth_results name, per signing domain (d=), with the
-- messages signed so: what mtasts serve checks the domain's key records with.
CREATE TABLE report_dkim_selectors (
    report INTEGER NOT NULL REFERENCES report_reports (id) ON DELETE CASCADE,
    domain TEXT NOT NULL,
    selector TEXT NOT NULL,
    messages INTEGER NOT NULL,
    PRIMARY KEY (report, domain, selector)
);
CREATE INDEX report_dkim_selectors_domain ON report_dkim_selectors (domain);
