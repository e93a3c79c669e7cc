-- Shadows and match keys are stored in their primary key's order (WITHOUT ROWID): as rowid
-- tables each row was kept twice, once in the table and once in the index of its key, and
-- each insert updated both. Shadows are keyed by record first, so loading a record's shadows
-- needs no index of its own. Same columns and constraints as before. (Links stay a rowid
-- table: without statistics, SQLite then searched a link by its system alone rather than by
-- record and system, through links_by_record.)

CREATE TABLE shadows_keyed (
    record_id       INTEGER NOT NULL REFERENCES records(id),
    system_id       TEXT NOT NULL REFERENCES systems(id),
    fields          TEXT NOT NULL,
    updated_at      TEXT NOT NULL,
    PRIMARY KEY (record_id, system_id)
) WITHOUT ROWID;
INSERT INTO shadows_keyed (record_id, system_id, fields, updated_at)
    SELECT record_id, system_id, fields, updated_at FROM shadows;
DROP TABLE shadows;
ALTER TABLE shadows_keyed RENAME TO shadows;

CREATE TABLE match_keys_keyed (
    object          TEXT NOT NULL,
    key_field       TEXT NOT NULL,
    key_value       TEXT NOT NULL,
    record_id       INTEGER NOT NULL REFERENCES records(id),
    PRIMARY KEY (object, key_field, key_value, record_id)
) WITHOUT ROWID;
INSERT INTO match_keys_keyed (object, key_field, key_value, record_id)
    SELECT object, key_field, key_value, record_id FROM match_keys;
DROP TABLE match_keys;
ALTER TABLE match_keys_keyed RENAME TO match_keys;
CREATE INDEX match_keys_by_record ON match_keys(record_id);
