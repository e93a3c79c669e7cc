-- A system's writes are `live` (NULL: sent as they are planned) or held in a `plan` for an
-- admin to review and enable. Systems from before stay live.
ALTER TABLE systems ADD COLUMN writes TEXT CHECK (writes IS NULL OR writes IN ('live', 'plan'));
