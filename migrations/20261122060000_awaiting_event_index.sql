-- Writes a system refused (412) that wait for that system's next event: the applier looks
-- them up once per batch instead of once per event.
CREATE INDEX outbox_awaiting_event ON outbox(record_id, system_id)
    WHERE status = 'superseded' AND last_error = 'awaiting_event';
