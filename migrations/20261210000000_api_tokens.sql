-- Tokens issued through the console API, kept across restarts. Only the SHA-256 digest of a
-- token's secret is stored; the secret is shown once, when it is issued. A revoked token's row
-- is deleted (the audit keeps that it was issued and revoked). The launch's own token is never
-- stored: each launch makes a new one.
CREATE TABLE api_tokens (
    id            TEXT PRIMARY KEY,
    secret_sha256 TEXT NOT NULL UNIQUE,
    name          TEXT NOT NULL,
    role          TEXT NOT NULL,
    issued_at     TEXT NOT NULL,
    issued_by     TEXT,
    last_used_at  TEXT
);
