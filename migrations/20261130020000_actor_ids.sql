-- Who acted, by a stable id as well as a display name: the console token's id (`tok_…`).
-- Names can be issued twice or differ by a space; ids cannot. Older rows keep NULL.
ALTER TABLE audit ADD COLUMN actor_id TEXT;
CREATE INDEX audit_by_actor_id ON audit(actor_id, id) WHERE actor_id IS NOT NULL;

-- A system removed from the workspace keeps its row (its links, queue and audit refer to it)
-- but is no longer loaded; saving it again brings it back.
ALTER TABLE systems ADD COLUMN removed_at TEXT;
