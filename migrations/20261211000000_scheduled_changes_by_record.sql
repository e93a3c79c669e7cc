-- With many changes waiting for their dates (year-end rises), a batch looks up only the
-- records it writes: the fields a system has dated, by record and system.
CREATE INDEX scheduled_changes_waiting_by_record
    ON scheduled_changes(record_id, system_id) WHERE status = 'scheduled';
