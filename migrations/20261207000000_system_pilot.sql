-- A system's pilot scope (JSON: canonical field -> the values admitted, NULL for none): only
-- records whose golden values match are written to the system until the scope is widened.
ALTER TABLE systems ADD COLUMN pilot TEXT;
