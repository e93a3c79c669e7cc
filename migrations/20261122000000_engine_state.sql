-- Concord engine state. Forward-only: never edit once landed; add a new timestamped file instead.

-- Configuration ----------------------------------------------------------------------------

CREATE TABLE systems (
    id              TEXT PRIMARY KEY,
    name            TEXT NOT NULL,
    connector       TEXT NOT NULL,
    config          TEXT NOT NULL DEFAULT '{}',      -- connector config (JSON); never holds a secret
    rate_limit_per_sec REAL,
    max_attempts    INTEGER NOT NULL DEFAULT 8,
    paused          INTEGER NOT NULL DEFAULT 0,
    created_at      TEXT NOT NULL
);

CREATE TABLE objects (
    name            TEXT PRIMARY KEY,
    schema          TEXT NOT NULL,                   -- canonical schema (JSON: fields, match keys, delete policy)
    updated_at      TEXT NOT NULL
);

CREATE TABLE mappings (
    system_id       TEXT NOT NULL REFERENCES systems(id) ON DELETE CASCADE,
    object          TEXT NOT NULL REFERENCES objects(name) ON DELETE CASCADE,
    spec            TEXT NOT NULL,                   -- JSON: rules (canonical fields <-> system paths + transform)
    updated_at      TEXT NOT NULL,
    PRIMARY KEY (system_id, object)
);

CREATE TABLE field_policies (
    object          TEXT NOT NULL REFERENCES objects(name) ON DELETE CASCADE,
    field           TEXT NOT NULL,
    policy          TEXT NOT NULL,                   -- JSON: owner/writers, conflict, non_owner, sensitive, four_eyes
    updated_at      TEXT NOT NULL,
    PRIMARY KEY (object, field)
);

-- Records ----------------------------------------------------------------------------------

CREATE TABLE records (
    id              INTEGER PRIMARY KEY,
    object          TEXT NOT NULL REFERENCES objects(name),
    deleted         INTEGER NOT NULL DEFAULT 0,
    created_at      TEXT NOT NULL
);

-- Golden record: the agreed canonical value of each field, and per field who set it and when.
CREATE TABLE golden (
    record_id       INTEGER PRIMARY KEY REFERENCES records(id),
    fields          TEXT NOT NULL,                   -- JSON object field -> canonical value
    meta            TEXT NOT NULL,                   -- JSON object field -> {ts, by}
    updated_at      TEXT NOT NULL
);

-- Identity map.
CREATE TABLE links (
    system_id       TEXT NOT NULL REFERENCES systems(id),
    object          TEXT NOT NULL,
    external_id     TEXT NOT NULL,
    record_id       INTEGER NOT NULL REFERENCES records(id),
    last_version    INTEGER,                         -- last applied source version (stale detection)
    deleted         INTEGER NOT NULL DEFAULT 0,
    created_at      TEXT NOT NULL,
    PRIMARY KEY (system_id, object, external_id)
);
CREATE INDEX links_by_record ON links(record_id, system_id);

-- Shadow: per system, per record, the canonical value of each field that system was last known to hold.
CREATE TABLE shadows (
    system_id       TEXT NOT NULL REFERENCES systems(id),
    record_id       INTEGER NOT NULL REFERENCES records(id),
    fields          TEXT NOT NULL,
    updated_at      TEXT NOT NULL,
    PRIMARY KEY (system_id, record_id)
);

-- Normalised match-key values of golden records, for first-contact identity matching.
CREATE TABLE match_keys (
    object          TEXT NOT NULL,
    key_field       TEXT NOT NULL,
    key_value       TEXT NOT NULL,
    record_id       INTEGER NOT NULL REFERENCES records(id),
    PRIMARY KEY (object, key_field, key_value, record_id)
);
CREATE INDEX match_keys_by_record ON match_keys(record_id);

-- Queues -----------------------------------------------------------------------------------

CREATE TABLE inbox (
    id              INTEGER PRIMARY KEY,
    system_id       TEXT NOT NULL REFERENCES systems(id),
    event_key       TEXT NOT NULL,
    object          TEXT NOT NULL,
    external_id     TEXT NOT NULL,
    op              TEXT NOT NULL CHECK (op IN ('upsert', 'delete')),
    payload         TEXT NOT NULL,                   -- the system's own field shapes (JSON), mapped when applied
    source_version  INTEGER,
    source_ts       TEXT,
    received_at     TEXT NOT NULL,
    status          TEXT NOT NULL DEFAULT 'pending'
                    CHECK (status IN ('pending', 'applied', 'stale', 'held', 'failed')),
    duplicates      INTEGER NOT NULL DEFAULT 0,
    processed_at    TEXT,
    detail          TEXT,
    UNIQUE (system_id, event_key)
);
CREATE INDEX inbox_pending ON inbox(status, id) WHERE status = 'pending';

CREATE TABLE outbox (
    id              INTEGER PRIMARY KEY,
    system_id       TEXT NOT NULL REFERENCES systems(id),
    record_id       INTEGER NOT NULL REFERENCES records(id),
    object          TEXT NOT NULL,
    op              TEXT NOT NULL CHECK (op IN ('create', 'update', 'delete')),
    external_id     TEXT,
    canonical       TEXT NOT NULL,                   -- JSON field -> canonical value being written
    payload         TEXT NOT NULL,                   -- JSON in the target's shapes
    base            TEXT NOT NULL DEFAULT '{}',      -- JSON field -> the target's value when planned (replay preview)
    if_match        INTEGER,
    idempotency_key TEXT NOT NULL,
    status          TEXT NOT NULL DEFAULT 'pending'
                    CHECK (status IN ('pending', 'in_flight', 'sent', 'dead', 'superseded')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TEXT NOT NULL,
    last_error      TEXT,
    rule            TEXT NOT NULL,
    created_at      TEXT NOT NULL,
    sent_at         TEXT
);
CREATE UNIQUE INDEX outbox_idempotency ON outbox(idempotency_key);
CREATE INDEX outbox_due ON outbox(system_id, status, next_attempt_at) WHERE status IN ('pending', 'in_flight');
CREATE INDEX outbox_by_record ON outbox(record_id, system_id, status);

CREATE TABLE exceptions (
    id              INTEGER PRIMARY KEY,
    kind            TEXT NOT NULL,                   -- conflict | non_owner_change | validation | ambiguous_match | delete_review | ...
    object          TEXT NOT NULL,
    record_id       INTEGER REFERENCES records(id),
    system_id       TEXT,
    field           TEXT,
    inbox_id        INTEGER REFERENCES inbox(id),
    status          TEXT NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'resolved', 'discarded')),
    detail          TEXT NOT NULL,                   -- JSON: base, golden, values per system, message
    created_at      TEXT NOT NULL,
    updated_at      TEXT NOT NULL,
    resolved_at     TEXT,
    resolved_by     TEXT,
    resolution      TEXT
);
CREATE INDEX exceptions_open ON exceptions(status, kind);
CREATE INDEX exceptions_by_record ON exceptions(record_id, field, status);

CREATE TABLE dead_letters (
    id              INTEGER PRIMARY KEY,
    kind            TEXT NOT NULL CHECK (kind IN ('write', 'event')),
    outbox_id       INTEGER REFERENCES outbox(id),
    inbox_id        INTEGER REFERENCES inbox(id),
    system_id       TEXT NOT NULL,
    record_id       INTEGER,
    error_class     TEXT NOT NULL,                   -- validation | rejected | retries_exhausted | mapping | ...
    response_status INTEGER,
    response_body   TEXT,
    attempts        INTEGER NOT NULL DEFAULT 0,
    status          TEXT NOT NULL DEFAULT 'dead' CHECK (status IN ('dead', 'replaying', 'replayed', 'discarded')),
    created_at      TEXT NOT NULL,
    updated_at      TEXT NOT NULL,
    discard_reason  TEXT,
    actor           TEXT
);
CREATE INDEX dead_letters_status ON dead_letters(status, system_id);

-- Audit: append-only; triggers refuse any update or delete.
CREATE TABLE audit (
    id              INTEGER PRIMARY KEY,
    at              TEXT NOT NULL,
    actor           TEXT NOT NULL,                   -- 'engine' or a person
    actor_role      TEXT,
    system_id       TEXT,
    direction       TEXT NOT NULL CHECK (direction IN ('in', 'out', 'internal')),
    record_id       INTEGER,
    object          TEXT,
    field           TEXT,
    before          TEXT,
    after           TEXT,
    rule            TEXT NOT NULL,
    detail          TEXT
);
CREATE INDEX audit_by_record ON audit(record_id, field, id);
CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit
BEGIN SELECT RAISE(ABORT, 'audit is append-only'); END;
CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit
BEGIN SELECT RAISE(ABORT, 'audit is append-only'); END;

-- Counters for no-ops, duplicates and other events that are counted rather than audited.
CREATE TABLE counters (
    name            TEXT PRIMARY KEY,
    value           INTEGER NOT NULL
);
