//! Replay after a fix: a dead write planned again from the current golden record through the
//! current mapping (not re-sent as it was stored), its preview showing the request that would
//! go out, and re-pushing records to a system (one, a filtered set, or all).
//!
//! Both plan through the same path as every other write ([`crate::runtime::Batch`]), so what
//! goes out is rendered, coalesced, validated and delivered like any write, with its own
//! idempotency key, and audited with the person who asked.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sqlx::Row;

use crate::audit::{Actor, AuditEntry, Direction};
use crate::delivery::send::{SentRequest, needs_read};
use crate::error::{EngineError, Result};
use crate::mapping::plain_top_level;
use crate::model::{Fields, RecordId};
use crate::ops::PreviewField;
use crate::runtime::Engine;
use crate::store::{self, ts};

/// What planning a dead write again would send now.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ReplanPreview {
    /// `create` or `update`, as it would be planned now.
    pub op: String,
    /// Per field: what the target holds (as last known), what would be written now, and the
    /// value the failed write carried.
    pub fields: Vec<PreviewField>,
    /// Method, path and body, when the connector describes its requests.
    pub request: Option<SentRequest>,
    /// How the body is completed when it is sent, when it is.
    pub note: Option<String>,
}

/// What a re-plan did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ReplanOutcome {
    /// `queued`, `nothing_to_write` (the target already holds the values), `already_replayed`
    /// or `discarded`.
    pub outcome: String,
    /// The new write, when one was queued.
    pub outbox_id: Option<i64>,
}

/// Which records to push to a system again.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RepushSelection {
    /// The object (default: every object the system maps).
    #[serde(default)]
    pub object: Option<String>,
    /// These records.
    #[serde(default)]
    pub record_ids: Vec<RecordId>,
    /// Records whose golden value of each field equals the given one (canonical values), e.g.
    /// `{"department": "Finance"}`.
    #[serde(default)]
    pub filter: BTreeMap<String, Value>,
    /// Every record (needed when neither ids nor a filter narrow it down).
    #[serde(default)]
    pub all: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RepushOutcome {
    /// Records the selection matched.
    pub matched: u64,
    /// Writes queued (one per record; a record with a write waiting gets it merged in).
    pub queued: u64,
}

/// Records planned per transaction: the engine's write lock is released between chunks.
const REPUSH_CHUNK: usize = 500;
/// Records read per page while selecting.
const CANDIDATE_PAGE: usize = 5_000;

impl RepushSelection {
    fn check(&self) -> Result<()> {
        if !self.all && self.record_ids.is_empty() && self.filter.is_empty() {
            return Err(EngineError::Invalid(
                "say which records to push: record ids, a filter, or all".into(),
            ));
        }
        Ok(())
    }

    fn matches(&self, record_id: RecordId, golden: &Fields) -> bool {
        (self.record_ids.is_empty() || self.record_ids.contains(&record_id))
            && self
                .filter
                .iter()
                .all(|(f, v)| golden.get(f).unwrap_or(&Value::Null) == v)
    }
}

/// A dead write's row, as re-planning needs it.
struct DeadWrite {
    status: String,
    outbox_id: i64,
    system: String,
    record_id: RecordId,
    object: String,
    op: String,
    canonical: Fields,
    base: Fields,
}

impl Engine {
    async fn dead_write(&self, id: i64) -> Result<DeadWrite> {
        let row = sqlx::query(
            "SELECT d.kind, d.status, d.outbox_id, d.system_id, o.record_id, o.object, o.op, o.canonical, o.base
             FROM dead_letters d LEFT JOIN outbox o ON o.id = d.outbox_id WHERE d.id = ?",
        )
        .bind(id)
        .fetch_optional(self.pool())
        .await?
        .ok_or_else(|| EngineError::NotFound(format!("dead letter {id}")))?;
        let kind: String = row.get("kind");
        let outbox_id: Option<i64> = row.get("outbox_id");
        let (Some(outbox_id), "write") = (outbox_id, kind.as_str()) else {
            return Err(EngineError::Invalid(format!(
                "dead letter {id} is an event: replay applies it again through the current mapping"
            )));
        };
        Ok(DeadWrite {
            status: row.get("status"),
            outbox_id,
            system: row.get("system_id"),
            record_id: row.get("record_id"),
            object: row.get("object"),
            op: row.get("op"),
            canonical: serde_json::from_str(&row.get::<String, _>("canonical"))?,
            base: serde_json::from_str(&row.get::<String, _>("base"))?,
        })
    }

    /// What planning a dead write again would send now, or None for an event.
    pub async fn replan_preview(&self, id: i64) -> Result<Option<ReplanPreview>> {
        let dead = match self.dead_write(id).await {
            Ok(d) => d,
            Err(EngineError::Invalid(_)) => return Ok(None),
            Err(e) => return Err(e),
        };
        let ws = self.workspace();
        let Some(mapping) = ws.mapping(&dead.system, &dead.object) else {
            return Ok(None);
        };
        let golden = self.golden(dead.record_id).await?;
        let link: Option<(String, Option<String>)> = sqlx::query_as(
            "SELECT external_id, etag FROM links WHERE record_id = ? AND system_id = ? AND deleted = 0",
        )
        .bind(dead.record_id)
        .bind(&dead.system)
        .fetch_optional(self.pool())
        .await?;
        let shadow: Fields = sqlx::query_scalar::<_, String>(
            "SELECT fields FROM shadows WHERE system_id = ? AND record_id = ?",
        )
        .bind(&dead.system)
        .bind(dead.record_id)
        .fetch_optional(self.pool())
        .await?
        .map(|s| serde_json::from_str(&s))
        .transpose()?
        .unwrap_or_default();
        let op = if link.is_some() { "update" } else { "create" };
        let fields: BTreeSet<String> = if op == "create" {
            mapping.writes()
        } else {
            dead.canonical.keys().cloned().collect()
        };
        let rendered = mapping.render(&fields, &golden, op == "create");
        let connector = self.connector(&dead.system);
        let (body, problem) = match rendered {
            Ok((assignments, payload)) => {
                let note = connector.as_ref().and_then(|c| {
                    let caps = c.capabilities();
                    let etag = link.as_ref().and_then(|l| l.1.as_deref());
                    (op == "update" && needs_read(&caps, etag, &assignments)).then(|| {
                        if !caps.partial_update {
                            format!("{} is read just before sending; the body is the record as read with these values set (a full replace keeps what the mapping does not touch)", dead.system)
                        } else if !plain_top_level(&assignments) {
                            format!("{} is read just before sending; each nested object or array in the body goes whole, as read, with these values set", dead.system)
                        } else {
                            format!("{} is read just before sending, and nothing is written if a field changed there since the engine last read it", dead.system)
                        }
                    })
                });
                (Some(payload), note)
            }
            Err(errors) => (
                None,
                Some(
                    errors
                        .iter()
                        .map(|e| format!("{}: {}", e.paths.join(", "), e.message))
                        .collect::<Vec<_>>()
                        .join("; "),
                ),
            ),
        };
        let request = connector.as_ref().and_then(|c| {
            c.describe_write(op, link.as_ref().map(|l| l.0.as_str()), &dead.object)
                .map(|(method, path)| SentRequest {
                    method,
                    path,
                    body: body.clone(),
                })
        });
        let preview_fields = fields
            .iter()
            .map(|f| {
                PreviewField::new(
                    f,
                    shadow.get(f).cloned().unwrap_or(Value::Null),
                    golden.get(f).cloned().unwrap_or(Value::Null),
                    dead.canonical.get(f).cloned().unwrap_or(Value::Null),
                )
            })
            .collect();
        Ok(Some(ReplanPreview {
            op: op.to_owned(),
            fields: preview_fields,
            request,
            note: problem,
        }))
    }

    /// Plans a dead write again from the current golden record through the current mapping
    /// (after a mapping or data fix), as a new write; the dead letter is settled as replayed.
    pub async fn replan_dead_letter(&self, id: i64, actor: &Actor) -> Result<ReplanOutcome> {
        let dead = self.dead_write(id).await?;
        match dead.status.as_str() {
            "replaying" | "replayed" => {
                return Ok(ReplanOutcome {
                    outcome: "already_replayed".into(),
                    outbox_id: None,
                });
            }
            "discarded" => {
                return Ok(ReplanOutcome {
                    outcome: "discarded".into(),
                    outbox_id: None,
                });
            }
            _ => {}
        }
        let now = self.now();
        let now_s = ts(now);
        let ws = self.workspace();
        let _guard = self.inner.write_lock.lock().await;
        let mut tx = crate::store::begin_write(self.pool()).await?;
        let settled = sqlx::query(
            "UPDATE dead_letters SET status = 'replayed', actor = ?, updated_at = ? WHERE id = ? AND status = 'dead'",
        )
        .bind(&actor.name)
        .bind(&now_s)
        .bind(id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if settled == 0 {
            return Ok(ReplanOutcome {
                outcome: "already_replayed".into(),
                outbox_id: None,
            });
        }
        sqlx::query("UPDATE outbox SET status = 'superseded', last_error = ? WHERE id = ?")
            .bind(format!(
                "planned again by {} (dead letter {id})",
                actor.name
            ))
            .bind(dead.outbox_id)
            .execute(&mut *tx)
            .await?;
        let before: Option<i64> = sqlx::query_scalar("SELECT MAX(id) FROM outbox")
            .fetch_one(&mut *tx)
            .await?;
        let mut batch = self.batch(&ws, now);
        let fields: BTreeSet<String> = if dead.op == "create" {
            ws.mapping(&dead.system, &dead.object)
                .map(|m| m.writes())
                .unwrap_or_default()
        } else {
            dead.canonical.keys().cloned().collect()
        };
        batch
            .rewrite(
                &mut tx,
                &dead.object,
                dead.record_id,
                &dead.system,
                &fields,
                &format!("replan:{id}"),
            )
            .await?;
        batch.finish(&mut tx).await?;
        let outbox_id: Option<i64> = sqlx::query_scalar(
            "SELECT MAX(id) FROM outbox WHERE record_id = ? AND system_id = ? AND status = 'pending' AND id > ?",
        )
        .bind(dead.record_id)
        .bind(&dead.system)
        .bind(before.unwrap_or(0))
        .fetch_one(&mut *tx)
        .await?;
        // Events held while the dead write's outcome was unknown are applied now.
        sqlx::query(
            "UPDATE inbox SET status = 'pending' WHERE status = 'held' AND json_extract(detail, '$.awaiting_write') = ?",
        )
        .bind(dead.outbox_id)
        .execute(&mut *tx)
        .await?;
        store::insert_audit(
            &mut tx,
            &[
                AuditEntry::engine("dead_letter:replan", Direction::Internal)
                    .by(actor.clone())
                    .system(&dead.system)
                    .record(&dead.object, dead.record_id)
                    .detail(json!({
                        "dead_letter": id,
                        "outbox_id": outbox_id,
                        "failed_values": dead.canonical,
                        "failed_base": dead.base,
                    })),
            ],
            now,
        )
        .await?;
        tx.commit().await?;
        drop(_guard);
        self.inner.outbox_ready.notify_waiters();
        self.inner.inbox_ready.notify_one();
        Ok(ReplanOutcome {
            outcome: if outbox_id.is_some() {
                "queued"
            } else {
                "nothing_to_write"
            }
            .into(),
            outbox_id,
        })
    }

    /// Pushes records to `system` again: every field its mapping writes, from the golden
    /// record, whatever the engine believes the system holds. A record the system does not
    /// hold is created there.
    pub async fn repush(
        &self,
        system: &str,
        selection: &RepushSelection,
        actor: &Actor,
    ) -> Result<RepushOutcome> {
        selection.check()?;
        let ws = self.workspace();
        ws.system(system)
            .ok_or_else(|| EngineError::NotFound(format!("system '{system}'")))?;
        let objects: Vec<String> = ws
            .config
            .mappings
            .iter()
            .filter(|m| m.system == system)
            .filter(|m| selection.object.as_ref().is_none_or(|o| *o == m.object))
            .map(|m| m.object.clone())
            .collect();
        if objects.is_empty() {
            return Err(EngineError::Invalid(format!(
                "system '{system}' maps no {}",
                selection.object.as_deref().unwrap_or("object")
            )));
        }
        let mut outcome = RepushOutcome {
            matched: 0,
            queued: 0,
        };
        let origin = format!("repush:{}:{}", actor.name, ts(self.now()));
        for object in objects {
            let fields = ws
                .mapping(system, &object)
                .map(|m| m.writes())
                .unwrap_or_default();
            // A page of candidates at a time: a system of a million records is never held
            // in memory at once.
            let mut after: RecordId = 0;
            while let Some((last, matched)) = self
                .repush_candidates(
                    &object,
                    |id, golden| {
                        (selection.record_ids.is_empty() || selection.record_ids.contains(&id))
                            && selection.matches(id, golden)
                    },
                    after,
                )
                .await?
            {
                after = last;
                outcome.matched += matched.len() as u64;
                for chunk in matched.chunks(REPUSH_CHUNK) {
                    outcome.queued += self
                        .repush_chunk(system, &object, chunk, &fields, &origin, true)
                        .await?;
                }
            }
        }
        let now = self.now();
        let _guard = self.inner.write_lock.lock().await;
        let mut tx = crate::store::begin_write(self.pool()).await?;
        store::insert_audit(
            &mut tx,
            &[AuditEntry::engine("repush", Direction::Out)
                .by(actor.clone())
                .system(system)
                .detail(json!({ "selection": selection, "matched": outcome.matched, "queued": outcome.queued }))],
            now,
        )
        .await?;
        tx.commit().await?;
        drop(_guard);
        self.inner.outbox_ready.notify_waiters();
        Ok(outcome)
    }

    /// Plans, for every record of `object` that `system` holds, a write of `fields` through
    /// the current mapping: what a changed mapping would write there. The number queued.
    pub async fn plan_mapping_change(
        &self,
        system: &str,
        object: &str,
        fields: &BTreeSet<String>,
        actor: &Actor,
    ) -> Result<u64> {
        let origin = format!("mapping:{}:{}", actor.name, ts(self.now()));
        let mut queued = 0;
        let mut after: RecordId = 0;
        loop {
            let linked: Vec<RecordId> = sqlx::query_scalar(
                "SELECT r.id FROM records r JOIN links l ON l.record_id = r.id
                 WHERE r.object = ? AND r.deleted = 0 AND l.system_id = ? AND l.deleted = 0 AND r.id > ?
                 ORDER BY r.id LIMIT ?",
            )
            .bind(object)
            .bind(system)
            .bind(after)
            .bind(i64::try_from(REPUSH_CHUNK).unwrap_or(500))
            .fetch_all(self.pool())
            .await?;
            let Some(&last) = linked.last() else {
                return Ok(queued);
            };
            after = last;
            queued += self
                .repush_chunk(system, object, &linked, fields, &origin, true)
                .await?;
        }
    }

    /// After `system`'s pilot scope changed from `before`: every record the scope admits now
    /// and did not before gets what the system lacks of it (created there if it holds no such
    /// record). The number of writes queued.
    pub async fn plan_pilot_widening(
        &self,
        system: &str,
        before: &crate::model::SystemConfig,
        actor: &Actor,
    ) -> Result<u64> {
        let ws = self.workspace();
        let Some(now_config) = ws.system(system).cloned() else {
            return Ok(0);
        };
        let origin = format!("pilot:{}:{}", actor.name, ts(self.now()));
        let newly_admitted =
            |_: RecordId, golden: &Fields| now_config.admits(golden) && !before.admits(golden);
        let mut queued = 0;
        for mapping in ws.config.mappings.iter().filter(|m| m.system == system) {
            let fields = mapping.writes();
            let mut after: RecordId = 0;
            while let Some((last, admitted)) = self
                .repush_candidates(&mapping.object, newly_admitted, after)
                .await?
            {
                after = last;
                for chunk in admitted.chunks(REPUSH_CHUNK) {
                    queued += self
                        .repush_chunk(system, &mapping.object, chunk, &fields, &origin, false)
                        .await?;
                }
            }
        }
        Ok(queued)
    }

    /// The next page of live records of `object` after `after`: the last id looked at and
    /// those `wanted` picks by id and golden record; None when there are no more.
    async fn repush_candidates(
        &self,
        object: &str,
        wanted: impl Fn(RecordId, &Fields) -> bool,
        after: RecordId,
    ) -> Result<Option<(RecordId, Vec<RecordId>)>> {
        let rows = sqlx::query(
            "SELECT r.id, g.fields FROM records r JOIN golden g ON g.record_id = r.id
             WHERE r.object = ? AND r.deleted = 0 AND r.id > ? ORDER BY r.id LIMIT ?",
        )
        .bind(object)
        .bind(after)
        .bind(i64::try_from(CANDIDATE_PAGE).unwrap_or(i64::MAX))
        .fetch_all(self.pool())
        .await?;
        let Some(last) = rows.last().map(|r| r.get::<RecordId, _>(0)) else {
            return Ok(None);
        };
        let mut matched = Vec::new();
        for row in rows {
            let id: RecordId = row.get(0);
            let golden: Fields = serde_json::from_str(&row.get::<String, _>(1))?;
            if wanted(id, &golden) {
                matched.push(id);
            }
        }
        Ok(Some((last, matched)))
    }

    async fn repush_chunk(
        &self,
        system: &str,
        object: &str,
        records: &[RecordId],
        fields: &BTreeSet<String>,
        origin: &str,
        force: bool,
    ) -> Result<u64> {
        let ws = self.workspace();
        let now = self.now();
        let _guard = self.inner.write_lock.lock().await;
        let mut tx = crate::store::begin_write(self.pool()).await?;
        let before: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM outbox WHERE system_id = ? AND status = 'pending'",
        )
        .bind(system)
        .fetch_one(&mut *tx)
        .await?;
        let mut batch = self.batch(&ws, now);
        batch.preload_records(&mut tx, records).await?;
        for &record_id in records {
            if force {
                batch
                    .rewrite(&mut tx, object, record_id, system, fields, origin)
                    .await?;
            } else {
                batch
                    .converge_target(&mut tx, object, record_id, system, fields, origin)
                    .await?;
            }
        }
        batch.finish(&mut tx).await?;
        let after: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM outbox WHERE system_id = ? AND status = 'pending'",
        )
        .bind(system)
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        // Writes merged into ones already waiting are not new; each record still gets one.
        Ok(u64::try_from(after - before).unwrap_or(0))
    }
}
