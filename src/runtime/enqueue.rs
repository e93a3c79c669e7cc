//! Writes to targets: rendering the golden record through a target's mapping and queueing
//! the write, merged into one not yet sent, for new changes, re-pushes and convergence.

use super::*;

impl Batch<'_> {
    /// Renders and queues a write of `fields` (values from the golden record) to `target`,
    /// merging it into a write to the same target that has not been sent yet. An update
    /// carries only what the target does not hold already, unless `force` (a re-push, a
    /// re-plan after a fix) writes every field asked for.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn enqueue_write(
        &mut self,
        conn: &mut SqliteConnection,
        schema: &ObjectSchema,
        state: &RecordState,
        links: &RecordLinks,
        target: &str,
        fields: &BTreeSet<String>,
        base: &Fields,
        origin: &str,
        force: bool,
    ) -> Result<()> {
        let ws = self.ws;
        let Some(mapping) = ws.mapping(target, &schema.name) else {
            return Ok(());
        };
        if ws.system(target).is_some_and(|s| !s.admits(&state.golden)) {
            // Outside the system's pilot scope: it gets nothing until the scope admits it.
            return Ok(());
        }
        let now_s = ts(self.now);
        let record_id = state.record_id;
        let dated_there = self.scheduled_fields(conn, record_id, target).await?;
        // Only the write this one may merge into is copied out of the cache.
        let queued = self.load(conn, record_id).await?.queued.get(target);
        let pending: Option<QueuedWrite> = queued
            .and_then(|q| q.iter().rev().find(|w| w.open_to_merge()))
            .cloned();
        let creating = queued.is_some_and(|q| q.iter().any(QueuedWrite::creating));
        let pending = pending.as_ref();
        let mut all_fields = fields.clone();
        let mut all_base = base.clone();
        let external = &links.external;
        let linked = external.contains_key(target);
        let mut op = if linked { "update" } else { "create" };
        if !linked && creating {
            // The record is being created there: this becomes an update once it is linked.
            op = "update";
        }
        if let Some(w) = pending {
            all_fields.extend(w.canonical.keys().cloned());
            for (k, v) in &w.base {
                all_base.insert(k.clone(), v.clone());
            }
            if w.op == "create" && !linked {
                op = "create";
            }
        }
        if op == "update" {
            // Only what the target does not hold already, and nothing a steward holds.
            let empty = Fields::new();
            let held_there = state.shadows.get(target).unwrap_or(&empty);
            // Nor what the target dated in the future: it would overwrite the dated value.
            all_fields.retain(|f| {
                !state.held.contains(f)
                    && !dated_there.contains(f)
                    && (force
                        || held_there.get(f).unwrap_or(&Value::Null)
                            != state.golden.get(f).unwrap_or(&Value::Null))
            });
            if all_fields.is_empty() {
                if let Some(w) = pending {
                    let id = w.id;
                    self.outbox
                        .supersede(id, "the target already holds these values");
                    if let Some(cached) = self.records.get_mut(&record_id) {
                        if let Some(q) = cached.queued.get_mut(target) {
                            q.retain(|w| w.id != id);
                        }
                        cached.refresh_outgoing(target);
                    }
                }
                return Ok(());
            }
        }
        let full = op == "create" || !self.caps.get(target).is_none_or(|c| c.partial_update);
        let render_fields: BTreeSet<String> = if op == "create" {
            mapping.writes()
        } else {
            all_fields.clone()
        };
        let mut errors = Vec::new();
        if op == "create" {
            for def in schema
                .fields
                .iter()
                .filter(|f| f.required && render_fields.contains(&f.name))
            {
                if state.golden.get(&def.name).is_none_or(Value::is_null) {
                    errors.push((
                        Some(def.name.clone()),
                        format!(
                            "cannot create the record in {target}: required field {} is empty",
                            def.name
                        ),
                    ));
                }
            }
        }
        for def in schema
            .fields
            .iter()
            .filter(|f| f.references.is_some() && render_fields.contains(&f.name))
        {
            let Some(value) = state.golden.get(&def.name).and_then(normalize_match_key) else {
                continue;
            };
            let referred = def.references.as_deref().unwrap_or_default();
            let Some(key) = ws.object(referred).and_then(|o| o.match_keys.first()) else {
                continue;
            };
            if self
                .match_key_holders(conn, referred, key, &value, None)
                .await?
                .is_empty()
            {
                errors.push((
                    Some(def.name.clone()),
                    format!("{}: no {referred} with {key} '{value}' exists", def.name),
                ));
            }
        }
        let mut render_fields = render_fields;
        let rendered = match mapping.render(&render_fields, &state.golden, full) {
            Ok(p) => Some(p),
            Err(field_errors) => {
                let mut refused = BTreeSet::new();
                for e in field_errors {
                    refused.extend(e.fields.iter().cloned());
                    errors.push((
                        e.fields.first().cloned(),
                        format!(
                            "cannot write {} to {target}: {}",
                            e.paths.join(", "),
                            e.message
                        ),
                    ));
                }
                // An update still carries the fields the target can take: one refused value
                // must not hold back the others.
                render_fields.retain(|f| !refused.contains(f));
                if op == "update" && !render_fields.is_empty() {
                    mapping.render(&render_fields, &state.golden, full).ok()
                } else {
                    None
                }
            }
        };
        if !errors.is_empty() {
            for (field, message) in &errors {
                let detail = json!({ "message": message, "direction": "out", "op": op });
                if open_validation_exists(conn, record_id, target, field.as_deref(), &detail)
                    .await?
                {
                    continue;
                }
                self.begin_writing(conn).await?;
                insert_exception(
                    conn,
                    "validation",
                    &schema.name,
                    Some(record_id),
                    Some(target),
                    field.as_deref(),
                    None,
                    &detail,
                    &now_s,
                )
                .await?;
                self.audit.push(
                    AuditEntry::engine("validation:write_refused", Direction::Out)
                        .system(target)
                        .record(&schema.name, record_id)
                        .detail(detail),
                );
            }
            if op == "create" || rendered.is_none() {
                return Ok(());
            }
        }
        let Some((assignments, payload)) = rendered else {
            return Ok(());
        };
        let ops_json = serde_json::to_string(&assignments)?;
        let canonical: Fields = render_fields
            .iter()
            .map(|f| {
                (
                    f.clone(),
                    state.golden.get(f).cloned().unwrap_or(Value::Null),
                )
            })
            .collect();
        let canonical_json = serde_json::to_string(&canonical)?;
        let if_match = links.versions.get(target).copied().flatten();
        // The token the write was planned against tells writes apart in their key; the sender
        // sends the link's token as it is when the write goes out.
        let planned_etag = links.etags.get(target).cloned().flatten();
        let external_id = external.get(target).cloned();
        let key = idempotency_key(&[
            &record_id.to_string(),
            target,
            op,
            &canonical_json,
            &if_match.map(|v| v.to_string()).unwrap_or_default(),
            planned_etag.as_deref().unwrap_or_default(),
            origin,
        ]);
        let rule = "propagate";
        let payload_json = serde_json::to_string(&payload)?;
        let base_json = serde_json::to_string(&all_base)?;
        let contents = outbox::OutboxContents {
            op: op.to_owned(),
            external_id,
            canonical: canonical_json,
            payload: payload_json,
            ops: ops_json,
            base: base_json,
            if_match,
            idempotency_key: key,
        };
        let id = match pending {
            Some(w) => {
                self.outbox.rewrite(w.id, contents);
                w.id
            }
            None => {
                let row = outbox::NewOutboxRow {
                    system_id: target.to_owned(),
                    record_id,
                    object: schema.name.clone(),
                    rule,
                    origin_at: ts(self.origin_at.unwrap_or(self.now)),
                    superseded: None,
                    contents,
                };
                self.outbox.insert(conn, row).await?
            }
        };
        let write = QueuedWrite {
            id,
            op: op.to_owned(),
            status: "pending".into(),
            attempts: 0,
            dead_letter: false,
            canonical,
            base: all_base,
        };
        if let Some(cached) = self.records.get_mut(&record_id) {
            let q = cached.queued.entry(target.to_owned()).or_default();
            match q.iter_mut().find(|w| w.id == id) {
                Some(existing) => *existing = write,
                None => q.push(write),
            }
            cached.refresh_outgoing(target);
        }
        self.wrote = true;
        Ok(())
    }
    /// Plans a write of `fields` to `target` from the golden record through the current
    /// mapping, whatever the target's shadow says (a re-push, or a dead letter planned again
    /// after a fix). A record the target does not hold is created there.
    pub(crate) async fn rewrite(
        &mut self,
        conn: &mut SqliteConnection,
        object: &str,
        record_id: RecordId,
        target: &str,
        fields: &BTreeSet<String>,
        origin: &str,
    ) -> Result<()> {
        self.plan_for_target(conn, object, record_id, target, fields, origin, true)
            .await
    }
    /// After a write to `target` succeeded: if the golden record moved on while it was on its
    /// way, the fields that still differ are queued again.
    pub(crate) async fn converge_target(
        &mut self,
        conn: &mut SqliteConnection,
        object: &str,
        record_id: RecordId,
        target: &str,
        fields: &BTreeSet<String>,
        origin: &str,
    ) -> Result<()> {
        self.plan_for_target(conn, object, record_id, target, fields, origin, false)
            .await
    }
    /// Queues a write of `fields` to `target`: all of them when `force`, else those the target
    /// does not hold already (and no held one).
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn plan_for_target(
        &mut self,
        conn: &mut SqliteConnection,
        object: &str,
        record_id: RecordId,
        target: &str,
        fields: &BTreeSet<String>,
        origin: &str,
        force: bool,
    ) -> Result<()> {
        let ws = self.ws;
        let Some(schema) = ws.object(object) else {
            return Ok(());
        };
        let cached = self.load(conn, record_id).await?;
        let state = cached.state.clone();
        let links = cached.links_of();
        let empty = Fields::new();
        let held_there = state.shadows.get(target).unwrap_or(&empty);
        let planned: BTreeSet<String> = fields
            .iter()
            .filter(|f| {
                force
                    || (!state.held.contains(*f)
                        && held_there.get(*f).unwrap_or(&Value::Null)
                            != state.golden.get(*f).unwrap_or(&Value::Null))
            })
            .cloned()
            .collect();
        if planned.is_empty() {
            return Ok(());
        }
        self.enqueue_write(
            conn,
            schema,
            &state,
            &links,
            target,
            &planned,
            &Fields::new(),
            origin,
            force,
        )
        .await
    }
}
