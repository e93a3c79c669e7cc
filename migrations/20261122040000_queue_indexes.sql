-- Indexes for the delivery round's hot lookups: due writes per system, events held for a
-- write's outcome, and a write's dead letter. Without them each round scans history.
CREATE INDEX outbox_pending ON outbox(system_id, id) WHERE status = 'pending';
CREATE INDEX inbox_held ON inbox(id) WHERE status = 'held';
CREATE INDEX dead_letters_by_outbox ON dead_letters(outbox_id);
