-- How each input came in over the network (mtasts_store::reports::arrivals): one row per
-- accepted message or upload, with the client, the envelope, TLS and DKIM as seen, and the
-- reports found in it. An input received twice (a sender's retry) has two arrivals.
CREATE TABLE report_arrivals (
    id INTEGER PRIMARY KEY,
    input INTEGER NOT NULL REFERENCES report_inputs (id) ON DELETE CASCADE,
    channel TEXT NOT NULL,
    peer_ip TEXT NOT NULL,
    helo TEXT NOT NULL,
    mail_from TEXT NOT NULL,
    -- JSON array of the accepted recipients.
    recipients TEXT NOT NULL,
    tls_version TEXT,
    tls_cipher TEXT,
    -- JSON array: one object per DKIM signature (domain, selector, result, reason).
    dkim TEXT NOT NULL,
    -- How many reports (new or duplicate) the input held: 0 marks mail for an administrator.
    report_count INTEGER NOT NULL,
    received_at INTEGER NOT NULL
);
CREATE INDEX report_arrivals_input ON report_arrivals (input);
CREATE INDEX report_arrivals_without_reports ON report_arrivals (report_count, received_at);

-- The reports each arrival carried.
CREATE TABLE report_arrival_reports (
    arrival INTEGER NOT NULL REFERENCES report_arrivals (id) ON DELETE CASCADE,
    report INTEGER NOT NULL REFERENCES report_reports (id) ON DELETE CASCADE,
    PRIMARY KEY (arrival, report)
);
CREATE INDEX report_arrival_reports_report ON report_arrival_reports (report);
