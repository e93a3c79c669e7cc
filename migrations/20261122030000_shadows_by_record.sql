-- Loading a record's state reads every system's shadow of it: index shadows by record
-- (the primary key starts with the system, so that lookup scanned the table).
CREATE INDEX shadows_by_record ON shadows(record_id);
