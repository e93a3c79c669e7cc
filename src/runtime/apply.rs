//! Applying one event: the checks before merging (mapping, ordering, writes of unknown
//! outcome, first-contact identity), the merge itself (pure, in `merge`), and the plan's
//! effects on the batch's state.

use super::*;

impl Batch<'_> {
    pub(super) async fn apply(
        &mut self,
        conn: &mut SqliteConnection,
        event: &InboxEvent,
    ) -> Result<()> {
        self.origin_at = event.received_at;
        let now_s = ts(self.now);
        let ws = self.ws;
        let empty = BTreeMap::new();
        let (Some(ctx), Some(mapping)) = (
            ws.merge_context(&event.object, &empty),
            ws.mapping(&event.system, &event.object),
        ) else {
            let message = format!(
                "no mapping for system '{}' and object '{}'",
                event.system, event.object
            );
            self.set_inbox(event.id, "failed", Some(json!({ "message": message })))?;
            self.begin_writing(conn).await?;
            sqlx::query(
                "INSERT INTO dead_letters (kind, inbox_id, system_id, error_class, response_body, created_at, updated_at)
                 VALUES ('event', ?, ?, 'mapping', ?, ?, ?)",
            )
            .bind(event.id)
            .bind(&event.system)
            .bind(&message)
            .bind(&now_s)
            .bind(&now_s)
            .execute(&mut *conn)
            .await?;
            return Ok(());
        };
        let link = self
            .link(conn, &event.system, &event.object, &event.external_id)
            .await?;
        if let (Some(l), Some(v)) = (&link, event.version)
            && l.last_version.is_some_and(|last| v < last)
        {
            self.stale += 1;
            if event.repair {
                // A re-read overtaken by a newer version: its values are out of date, but the
                // write it was meant to repair still has to be planned again.
                let record_id = l.record_id;
                let cached = self.load(conn, record_id).await?;
                let shadow = cached
                    .state
                    .shadows
                    .get(&event.system)
                    .cloned()
                    .unwrap_or_default();
                let values: Fields = mapping
                    .writes()
                    .into_iter()
                    .map(|f| {
                        let v = shadow.get(&f).cloned().unwrap_or(Value::Null);
                        (f, v)
                    })
                    .collect();
                let incoming = Incoming {
                    system: event.system.clone(),
                    values,
                    source_ts: event.source_ts,
                    repair: true,
                };
                let plan = merge::merge(&ctx, &cached.state, &incoming);
                self.apply_plan(
                    conn,
                    ctx.object,
                    record_id,
                    &plan,
                    &format!("inbox:{}", event.id),
                )
                .await?;
            }
            let detail = json!({ "version": v, "last_applied": l.last_version });
            return self.set_inbox(event.id, "stale", Some(detail));
        }
        // While a write to this system for this record has an unknown outcome (attempted and
        // not answered, or given up on after retries), its events wait: they may be its echo.
        let mut inbound = if event.op == ChangeOp::Upsert {
            self.inbound
                .remove(&event.id)
                .unwrap_or_else(|| event.read(mapping, ctx.object))
        } else {
            crate::mapping::Inbound::default()
        };
        // First contact: the records the event's match keys point at (used again below).
        let first_contact = if link.is_none() && event.op == ChangeOp::Upsert {
            Some(
                self.candidates(conn, ctx.object, &event.system, &inbound.values)
                    .await?,
            )
        } else {
            None
        };
        let hold_record = match (&link, &first_contact) {
            (Some(l), _) => Some(l.record_id),
            (None, Some(candidates)) if candidates.len() == 1 => candidates.first().copied(),
            _ => None,
        };
        if let Some(r) = hold_record {
            let unknown = self
                .unknown_writes(conn)
                .await?
                .get(&(r, event.system.clone()))
                .copied();
            if let Some(outbox_id) = unknown {
                return self.set_inbox(
                    event.id,
                    "held",
                    Some(json!({ "awaiting_write": outbox_id })),
                );
            }
        }
        // A value several codes share (a lossy enum table) means what the system last agreed
        // to, or what is agreed now, when it is one of them: reading it back is no change.
        if let Some(r) = hold_record
            && !inbound.alternatives.is_empty()
        {
            let cached = self.load(conn, r).await?;
            let empty = Fields::new();
            let shadow = cached.state.shadows.get(&event.system).unwrap_or(&empty);
            inbound.settle(shadow, &cached.state.golden);
        }
        // Values dated in the future wait for their date; the rest applies now.
        let about = match (&link, hold_record) {
            (Some(l), _) => Some((l.record_id, true)),
            (None, Some(r)) => Some((r, false)),
            (None, None) => None,
        };
        let converge_after = match self
            .hold_effective_dated(conn, event, mapping, about, &mut inbound)
            .await?
        {
            schedule::Dated::Held(id) => {
                return self.set_inbox(event.id, "applied", Some(json!({ "scheduled": id })));
            }
            schedule::Dated::Go { converge } => converge,
        };
        let incoming = Incoming {
            system: event.system.clone(),
            values: inbound.values,
            source_ts: event.source_ts,
            repair: event.repair,
        };

        let (record_id, mut plan) = match (event.op, link) {
            (ChangeOp::Delete, None) => {
                let entry = AuditEntry::engine("delete:unknown_record", Direction::In)
                    .system(&event.system)
                    .detail(json!({ "external_id": event.external_id }));
                self.audit.push(entry);
                return self.set_inbox(event.id, "applied", None);
            }
            (ChangeOp::Delete, Some(l)) => {
                let now = self.now;
                let cached = self.load(conn, l.record_id).await?;
                (
                    l.record_id,
                    merge::delete(&ctx, &cached.state, &event.system, now),
                )
            }
            (ChangeOp::Upsert, Some(l)) => {
                let cached = self.load(conn, l.record_id).await?;
                (l.record_id, merge::merge(&ctx, &cached.state, &incoming))
            }
            (ChangeOp::Upsert, None) => {
                let candidates = first_contact.unwrap_or_default();
                match merge::decide_identity(&candidates) {
                    Identity::Ambiguous(ids) => {
                        let detail = json!({
                            "external_id": event.external_id,
                            "candidates": ids,
                            "message": format!(
                                "{} record {} matches {} existing records; a steward picks one or creates a new one",
                                event.system, event.external_id, ids.len()
                            ),
                        });
                        self.begin_writing(conn).await?;
                        insert_exception(
                            conn,
                            "ambiguous_match",
                            &event.object,
                            None,
                            Some(&event.system),
                            None,
                            Some(event.id),
                            &detail,
                            &now_s,
                        )
                        .await?;
                        let entry =
                            AuditEntry::engine("first_contact:ambiguous", Direction::Internal)
                                .system(&event.system)
                                .detail(detail);
                        self.audit.push(entry);
                        return self.set_inbox(event.id, "held", None);
                    }
                    Identity::Link(record_id) => {
                        self.insert_link(
                            &event.system,
                            &event.object,
                            &event.external_id,
                            record_id,
                        );
                        let cached = self.load(conn, record_id).await?;
                        cached.state.linked.insert(event.system.clone());
                        cached
                            .external
                            .insert(event.system.clone(), event.external_id.clone());
                        let mut plan = merge::merge(&ctx, &cached.state, &incoming);
                        plan.audit.insert(
                            0,
                            AuditEntry::engine("first_contact:linked", Direction::In)
                                .system(&event.system)
                                .record(&event.object, record_id)
                                .detail(json!({ "external_id": event.external_id })),
                        );
                        (record_id, plan)
                    }
                    Identity::Create => {
                        let record_id = self.new_record(conn, &event.object).await?;
                        self.insert_link(
                            &event.system,
                            &event.object,
                            &event.external_id,
                            record_id,
                        );
                        let mut state = RecordState {
                            record_id,
                            ..RecordState::default()
                        };
                        state.linked.insert(event.system.clone());
                        let mut external = BTreeMap::new();
                        external.insert(event.system.clone(), event.external_id.clone());
                        self.records.insert(
                            record_id,
                            CachedRecord {
                                dirty_golden: true,
                                external,
                                state,
                                ..CachedRecord::empty(record_id)
                            },
                        );
                        (record_id, merge::create(&ctx, record_id, &incoming))
                    }
                }
            }
        };
        for error in &inbound.errors {
            let detail = json!({
                "paths": error.paths,
                "value": error.value,
                "message": error.message,
                "direction": "in",
            });
            let field = error.fields.first().cloned();
            plan.exceptions.push(merge::PlannedException {
                kind: "validation".into(),
                system: Some(event.system.clone()),
                field,
                holds: false,
                detail: detail.clone(),
            });
            plan.audit.push(
                AuditEntry::engine("validation:rejected_value", Direction::In)
                    .system(&event.system)
                    .record(&event.object, record_id)
                    .detail(detail),
            );
        }
        if let Some(v) = event.version {
            self.set_version(
                &event.system,
                &event.object,
                &event.external_id,
                record_id,
                v,
            );
        }
        if let Some(etag) = &event.etag {
            let key = (
                event.system.clone(),
                event.object.clone(),
                event.external_id.clone(),
            );
            self.pending_etags.insert(key, etag.clone());
            if let Some(r) = self.records.get_mut(&record_id) {
                r.etags.insert(event.system.clone(), Some(etag.clone()));
            }
        }
        self.apply_plan(
            conn,
            ctx.object,
            record_id,
            &plan,
            &format!("inbox:{}", event.id),
        )
        .await?;
        if !converge_after.is_empty() {
            self.converge_target(
                conn,
                &event.object,
                record_id,
                &event.system,
                &converge_after,
                &format!("inbox:{}", event.id),
            )
            .await?;
        }
        // Writes refused (412) while waiting for this system's events: plan them again.
        if !self
            .awaiting_event(conn)
            .await?
            .contains(&(record_id, event.system.clone()))
        {
            return self.set_inbox(event.id, "applied", None);
        }
        let waiting = sqlx::query(
            "SELECT id, canonical FROM outbox WHERE record_id = ? AND system_id = ? AND status = 'superseded' AND last_error = 'awaiting_event'",
        )
        .bind(record_id)
        .bind(&event.system)
        .fetch_all(&mut *conn)
        .await?;
        for row in waiting {
            let id: i64 = row.get(0);
            let canonical: String = row.get(1);
            let fields: Fields = serde_json::from_str(&canonical)?;
            self.begin_writing(conn).await?;
            sqlx::query("UPDATE outbox SET last_error = 'awaiting_event:done' WHERE id = ?")
                .bind(id)
                .execute(&mut *conn)
                .await?;
            let fields: BTreeSet<String> = fields.into_keys().collect();
            self.converge_target(
                conn,
                &event.object,
                record_id,
                &event.system,
                &fields,
                &format!("await:{id}"),
            )
            .await?;
        }
        self.set_inbox(event.id, "applied", None)
    }
    /// Writes a plan's effects: state, exceptions, audit, outbox rows.
    pub(crate) async fn apply_plan(
        &mut self,
        conn: &mut SqliteConnection,
        schema: &ObjectSchema,
        record_id: RecordId,
        plan: &Plan,
        origin: &str,
    ) -> Result<()> {
        let now = self.now;
        let now_s = ts(now);
        self.noops += i64::try_from(plan.noops).unwrap_or(0);
        let cached = self.load(conn, record_id).await?;
        // Match keys as they were, so that only those the plan changes are rewritten.
        let keys_before: BTreeMap<&String, Option<String>> = schema
            .match_keys
            .iter()
            .filter(|k| plan.golden.contains_key(*k))
            .map(|k| (k, cached.state.golden.get(k).and_then(normalize_match_key)))
            .collect();
        plan.apply_to(&mut cached.state);
        if !plan.golden.is_empty() {
            cached.dirty_golden = true;
        }
        cached.dirty_shadows.extend(plan.shadows.keys().cloned());
        for s in &plan.unlink {
            cached.external.remove(s);
        }
        let state = cached.state.clone();
        let links = cached.links_of();
        let external = links.external.clone();

        // Match keys follow the golden record.
        for (key, before) in keys_before {
            let after = state.golden.get(key).and_then(normalize_match_key);
            if after == before {
                continue;
            }
            self.set_match_key(&schema.name, record_id, key, after);
        }
        for e in &plan.exceptions {
            if e.kind == "validation"
                && let Some(system) = e.system.as_deref()
                && open_validation_exists(conn, record_id, system, e.field.as_deref(), &e.detail)
                    .await?
            {
                continue;
            }
            self.begin_writing(conn).await?;
            insert_exception(
                conn,
                &e.kind,
                &schema.name,
                Some(record_id),
                e.system.as_deref(),
                e.field.as_deref(),
                None,
                &e.detail,
                &now_s,
            )
            .await?;
        }
        for h in &plan.held_updates {
            self.begin_writing(conn).await?;
            sqlx::query(
                "UPDATE exceptions SET detail = json_set(detail, '$.values.' || ?, json(?)), updated_at = ?
                 WHERE record_id = ? AND field = ? AND status = 'open' AND kind IN ('conflict', 'non_owner_change')",
            )
            .bind(format!("\"{}\"", h.system))
            .bind(h.value.to_string())
            .bind(&now_s)
            .bind(record_id)
            .bind(&h.field)
            .execute(&mut *conn)
            .await?;
        }
        self.audit.extend(plan.audit.iter().cloned());
        if plan.delete_record {
            match self.new_records.get_mut(&record_id) {
                Some((_, deleted)) => *deleted = true,
                None => {
                    self.begin_writing(conn).await?;
                    sqlx::query("UPDATE records SET deleted = 1 WHERE id = ?")
                        .bind(record_id)
                        .execute(&mut *conn)
                        .await?;
                    self.match_key_rows.clear();
                }
            }
        }
        if !plan.unlink.is_empty() {
            // Rare: the links this batch made go to SQLite first, so the update sees them.
            self.flush_new_rows(conn).await?;
        }
        for s in &plan.unlink {
            sqlx::query("UPDATE links SET deleted = 1 WHERE record_id = ? AND system_id = ?")
                .bind(record_id)
                .bind(s)
                .execute(&mut *conn)
                .await?;
            self.links
                .retain(|_, l| !matches!(l, Some(info) if info.record_id == record_id));
        }
        // Writes the plan asks for, and queued writes to other targets whose values the plan
        // changed (they are re-rendered from the golden record, or dropped if no longer needed).
        let mut targets = plan.writes.clone();
        for (target, fields) in &state.outgoing {
            let touched = fields.keys().any(|f| {
                plan.golden.contains_key(f)
                    || plan.shadows.get(target).is_some_and(|s| s.contains_key(f))
            });
            if touched {
                targets.entry(target.clone()).or_default();
            }
        }
        for (target, fields) in &targets {
            let base = plan.write_bases.get(target).cloned().unwrap_or_default();
            let state = self.load(conn, record_id).await?.state.clone();
            self.enqueue_write(
                conn, schema, &state, &links, target, fields, &base, origin, false,
            )
            .await?;
        }
        for target in &plan.deletes {
            let Some(external_id) = external.get(target) else {
                continue;
            };
            let ws = self.ws;
            let golden = &self.load(conn, record_id).await?.state.golden;
            if ws.system(target).is_some_and(|s| !s.admits(golden)) {
                continue;
            }
            let key = idempotency_key(&[
                &record_id.to_string(),
                target,
                "delete",
                external_id,
                origin,
            ]);
            self.begin_writing(conn).await?;
            let id = self.outbox.take_id(conn).await?;
            let inserted: Option<i64> = sqlx::query_scalar(
                "INSERT OR IGNORE INTO outbox (id, system_id, record_id, object, op, external_id, canonical, payload, idempotency_key, next_attempt_at, rule, created_at)
                 VALUES (?, ?, ?, ?, 'delete', ?, '{}', '{}', ?, ?, 'delete:propagate', ?) RETURNING id",
            )
            .bind(id)
            .bind(target)
            .bind(record_id)
            .bind(&schema.name)
            .bind(external_id)
            .bind(key)
            .bind(&now_s)
            .bind(&now_s)
            .fetch_optional(&mut *conn)
            .await?;
            if let (Some(id), Some(cached)) = (inserted, self.records.get_mut(&record_id)) {
                cached
                    .queued
                    .entry(target.clone())
                    .or_default()
                    .push(QueuedWrite {
                        id,
                        op: "delete".into(),
                        status: "pending".into(),
                        attempts: 0,
                        dead_letter: false,
                        canonical: Fields::new(),
                        base: Fields::new(),
                    });
            }
            self.wrote = true;
        }
        Ok(())
    }
}
