-- Every failed attempt of a write, so a dead letter shows its timeline: when each attempt
-- was made, what the system answered, and when the next was due. Kept as long as the write.
CREATE TABLE write_attempts (
    id        INTEGER PRIMARY KEY,
    outbox_id INTEGER NOT NULL,
    attempt   INTEGER NOT NULL,
    at        TEXT NOT NULL,
    status    INTEGER,
    message   TEXT NOT NULL,
    -- When the next attempt was due; NULL when this one was the last (a dead letter).
    retry_at  TEXT
);
CREATE INDEX write_attempts_by_write ON write_attempts(outbox_id, attempt);
