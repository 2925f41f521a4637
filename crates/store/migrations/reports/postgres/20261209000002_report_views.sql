-- Indexes for mtasts serve's report views and retention (mtasts_store::reports::scope and
-- ::retention): rollups by domain whatever the kind, reports and inputs by age.
CREATE INDEX report_daily_domain ON report_daily (domain, day);
CREATE INDEX report_reports_end ON report_reports (end_at);
CREATE INDEX report_inputs_received ON report_inputs (received_at);
