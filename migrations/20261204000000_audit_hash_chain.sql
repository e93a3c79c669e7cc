-- The audit becomes a hash chain. Each entry carries a SHA-256 over its own fields and the
-- hash of the entry before it (computed by the engine as it appends), so that anyone holding
-- the file who edits, removes or inserts an entry, even after dropping the triggers below,
-- breaks the chain at that entry: `concord audit verify` names it.
ALTER TABLE audit ADD COLUMN hash BLOB;

-- Entries written before the chain existed are sealed once, in order, by the engine's next
-- open. That is the only update the audit ever allows: setting the hash of such an entry,
-- while it has none, and nothing else.
CREATE TABLE audit_chain_legacy (through_id INTEGER NOT NULL);
INSERT INTO audit_chain_legacy (through_id) SELECT COALESCE(MAX(id), 0) FROM audit;
CREATE TRIGGER audit_chain_legacy_no_insert BEFORE INSERT ON audit_chain_legacy
BEGIN SELECT RAISE(ABORT, 'the audit chain''s legacy boundary is fixed'); END;
CREATE TRIGGER audit_chain_legacy_no_update BEFORE UPDATE ON audit_chain_legacy
BEGIN SELECT RAISE(ABORT, 'the audit chain''s legacy boundary is fixed'); END;
CREATE TRIGGER audit_chain_legacy_no_delete BEFORE DELETE ON audit_chain_legacy
BEGIN SELECT RAISE(ABORT, 'the audit chain''s legacy boundary is fixed'); END;

DROP TRIGGER audit_no_update;
CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit
WHEN OLD.hash IS NOT NULL
  OR NEW.hash IS NULL
  OR OLD.id > (SELECT through_id FROM audit_chain_legacy)
  OR NEW.id IS NOT OLD.id OR NEW.at IS NOT OLD.at OR NEW.actor IS NOT OLD.actor
  OR NEW.actor_role IS NOT OLD.actor_role OR NEW.actor_id IS NOT OLD.actor_id
  OR NEW.system_id IS NOT OLD.system_id OR NEW.direction IS NOT OLD.direction
  OR NEW.record_id IS NOT OLD.record_id OR NEW.object IS NOT OLD.object
  OR NEW.field IS NOT OLD.field OR NEW.before IS NOT OLD.before OR NEW.after IS NOT OLD.after
  OR NEW.rule IS NOT OLD.rule OR NEW.detail IS NOT OLD.detail
BEGIN SELECT RAISE(ABORT, 'audit is append-only'); END;
