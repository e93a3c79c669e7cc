-- The writes whose outcome is unknown (queued or in flight, attempted at least once) are read
-- by every applier batch that plans a write. Without an index of their own, SQLite walked
-- every queued write through outbox_due and read each row for its attempt count: with the
-- 400,000 creates an initial sync of a million people queues, each batch read them all.
CREATE INDEX outbox_attempted ON outbox(record_id, system_id, id)
    WHERE status IN ('pending', 'in_flight') AND attempts > 0;
