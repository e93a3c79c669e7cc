-- Never overwrite a change the engine has not seen.
-- links.etag: the record's concurrency token as the system last gave it (an ETag exactly as
--   sent, weak or strong, or a version field's value as JSON text); opaque, never ordered.
-- links.rereads: re-reads of the record in a row after a write found it changed (412, or a
--   read before writing); reset by a successful write. Bounded by systems.max_rereads.
-- outbox.ops: the write as (system path, value) assignments, so it can be applied onto the
--   record as last read (nested objects, arrays, full replaces keep what is not mapped).
-- dead_letters.request: the HTTP request that failed (method, path, body), as sent.
ALTER TABLE links ADD COLUMN etag TEXT;
ALTER TABLE links ADD COLUMN rereads INTEGER NOT NULL DEFAULT 0;
ALTER TABLE outbox ADD COLUMN ops TEXT;
ALTER TABLE dead_letters ADD COLUMN request TEXT;
ALTER TABLE systems ADD COLUMN max_rereads INTEGER NOT NULL DEFAULT 5;
-- outbox.outcome_unknown: the last attempt may have reached the system without an answer (in
--   flight at a crash, a timeout, a dropped connection). A create in that state is looked up
--   in the target by its match keys before it is sent again.
ALTER TABLE outbox ADD COLUMN outcome_unknown INTEGER NOT NULL DEFAULT 0;
-- inbox.etag: the concurrency token an event carried, kept on the link when it is applied.
ALTER TABLE inbox ADD COLUMN etag TEXT;
-- poll_cursors.listing_done_at: when the initial listing finished. Creates to the system wait
--   until it has, and until the events that listing received are applied (its records are
--   linked first, or they would be created twice).
ALTER TABLE poll_cursors ADD COLUMN listing_done_at TEXT;
UPDATE poll_cursors SET listing_done_at = updated_at WHERE listing_done = 1;
