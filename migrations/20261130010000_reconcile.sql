-- Reconciliation: a full listing of one system's object compared with the links and shadows.
-- A run is resumable: each page's events, the ids it saw and the next page token commit
-- together. Records linked before the run started that it never saw (and that a read by id
-- confirms gone) become delete events, unless they are more than max_delete_share of the
-- linked records: then nothing is deleted until an admin confirms.
CREATE TABLE reconcile_runs (
    id               INTEGER PRIMARY KEY,
    system_id        TEXT NOT NULL REFERENCES systems(id) ON DELETE CASCADE,
    object           TEXT NOT NULL,
    trigger          TEXT NOT NULL,                  -- 'schedule', 'resume', or who asked
    status           TEXT NOT NULL CHECK (status IN ('running', 'needs_confirmation', 'done', 'failed', 'dismissed')),
    started_at       TEXT NOT NULL,
    updated_at       TEXT NOT NULL,
    finished_at      TEXT,
    page_token       TEXT,
    listing_done     INTEGER NOT NULL DEFAULT 0,
    listed           INTEGER NOT NULL DEFAULT 0,
    total            INTEGER,
    changed          INTEGER NOT NULL DEFAULT 0,     -- records whose values the shadows did not explain
    unknown          INTEGER NOT NULL DEFAULT 0,     -- records the engine had never linked
    linked           INTEGER NOT NULL DEFAULT 0,     -- linked records when the run started
    vanished         INTEGER NOT NULL DEFAULT 0,
    deleted          INTEGER NOT NULL DEFAULT 0,     -- delete events queued
    max_delete_share REAL NOT NULL,
    error            TEXT,
    decided_by       TEXT
);
CREATE INDEX reconcile_runs_by_system ON reconcile_runs(system_id, object, id);

CREATE TABLE reconcile_seen (
    run_id      INTEGER NOT NULL REFERENCES reconcile_runs(id) ON DELETE CASCADE,
    external_id TEXT NOT NULL,
    PRIMARY KEY (run_id, external_id)
) WITHOUT ROWID;
