-- Incremental polling: per system and object, the greatest modification seen, and whether the
-- initial full listing has completed (it resumes from its page token after a restart).
CREATE TABLE poll_cursors (
    system_id       TEXT NOT NULL REFERENCES systems(id) ON DELETE CASCADE,
    object          TEXT NOT NULL,
    cursor          TEXT,
    listing_done    INTEGER NOT NULL DEFAULT 0,
    listing_page    TEXT,
    listed          INTEGER NOT NULL DEFAULT 0,
    updated_at      TEXT NOT NULL,
    PRIMARY KEY (system_id, object)
);
