-- Effective-dated changes: values a system dated in the future wait here until their date,
-- then enter the inbox as a change from that system (released) and are merged as of then.
CREATE TABLE scheduled_changes (
    id                INTEGER PRIMARY KEY,
    system_id         TEXT NOT NULL,
    object            TEXT NOT NULL,
    external_id       TEXT NOT NULL,
    -- NULL while the record is not linked yet: it is held whole and joins on its date.
    record_id         INTEGER,
    -- The system's text for the date, and the instant it stands for (as every timestamp here).
    effective_date    TEXT NOT NULL,
    effective_at      TEXT NOT NULL,
    -- Canonical values held, and what the system held of those fields when they were.
    fields            TEXT NOT NULL,
    base              TEXT NOT NULL DEFAULT '{}',
    status            TEXT NOT NULL DEFAULT 'scheduled'
                      CHECK (status IN ('scheduled', 'released', 'superseded')),
    reason            TEXT,
    -- The event that brought the change, and the one that released it.
    inbox_id          INTEGER,
    released_inbox_id INTEGER,
    created_at        TEXT NOT NULL,
    updated_at        TEXT NOT NULL,
    released_at       TEXT
);
CREATE INDEX scheduled_changes_due ON scheduled_changes(effective_at) WHERE status = 'scheduled';
CREATE UNIQUE INDEX scheduled_changes_one_waiting
    ON scheduled_changes(system_id, object, external_id) WHERE status = 'scheduled';
CREATE INDEX scheduled_changes_by_status ON scheduled_changes(status, effective_at);

-- A released change's event reads its values from here, not from a payload.
ALTER TABLE inbox ADD COLUMN scheduled_change_id INTEGER;
