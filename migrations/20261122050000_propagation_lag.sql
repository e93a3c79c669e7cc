-- Propagation lag: when the change a write carries reached the engine (the inbox event's
-- arrival; a steward's decision or a replay for writes they cause). Older writes have none and
-- are measured from when they were queued. The index serves "writes sent lately, per system".
ALTER TABLE outbox ADD COLUMN origin_at TEXT;
CREATE INDEX outbox_sent ON outbox(system_id, sent_at) WHERE status = 'sent';
