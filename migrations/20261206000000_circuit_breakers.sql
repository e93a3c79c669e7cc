-- A system's circuit breaker: its settings (JSON, NULL for the defaults) on the system, and
-- each time it tripped. While a trip is `open`, nothing is sent to the system; an admin
-- `confirmed` the held writes (sent) or `discarded` them. Writes queued up to `through_outbox`
-- were judged by that trip: the next one counts only later writes.
ALTER TABLE systems ADD COLUMN breaker TEXT;

CREATE TABLE breaker_trips (
    id              INTEGER PRIMARY KEY,
    system_id       TEXT NOT NULL REFERENCES systems(id),
    status          TEXT NOT NULL CHECK (status IN ('open', 'confirmed', 'discarded')),
    overwrites      INTEGER NOT NULL,  -- records with updates queued in the window
    deletes         INTEGER NOT NULL,  -- records with deletes queued in the window
    linked          INTEGER NOT NULL,  -- records linked in the system when it tripped
    max_share       REAL NOT NULL,
    window_secs     INTEGER NOT NULL,
    through_outbox  INTEGER NOT NULL,  -- the last outbox id this trip judged
    tripped_at      TEXT NOT NULL,
    decided_at      TEXT,
    decided_by      TEXT,
    note            TEXT
);
CREATE UNIQUE INDEX breaker_trips_one_open ON breaker_trips(system_id) WHERE status = 'open';
CREATE INDEX breaker_trips_by_system ON breaker_trips(system_id, id);

-- The writes that overwrite or delete, by system and time: what a breaker counts.
CREATE INDEX outbox_overwrites ON outbox(system_id, created_at) WHERE op != 'create';
