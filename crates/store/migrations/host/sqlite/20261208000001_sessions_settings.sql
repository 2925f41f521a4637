-- Dashboard sessions end after an idle time and can all be ended for one user: when each
-- was made and last used (rows from before this migration read as never used, so they end).
ALTER TABLE host_sessions ADD COLUMN created_at INTEGER NOT NULL DEFAULT 0;
ALTER TABLE host_sessions ADD COLUMN last_seen  INTEGER NOT NULL DEFAULT 0;
CREATE INDEX host_sessions_user_id ON host_sessions (user_id);

-- Values every node shares, written once (e.g. the login form's CSRF key).
CREATE TABLE host_settings (
    name  TEXT NOT NULL PRIMARY KEY,
    value TEXT NOT NULL
);
