-- API tokens may end: expires_at is Unix seconds, NULL for a token that never expires. An
-- expired token is refused like an unknown one. Revoking a token deletes its row.
ALTER TABLE host_api_tokens ADD COLUMN expires_at BIGINT;
