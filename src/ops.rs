//! The engine API for people: stewards list and resolve exceptions (with four-eyes approval
//! where a field requires it), support staff list, preview, replay and discard dead letters,
//! and anyone may read the audit and a record's lineage. The console API exposes these
//! functions as they are; each change commits with its audit entry in one transaction.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sqlx::{QueryBuilder, Row, Sqlite};

use crate::approvals::ApprovalStep;
use crate::audit::{Actor, AuditEntry, Direction};
use crate::error::{EngineError, Result};
use crate::merge;
use crate::model::{Fields, RecordId};
use crate::runtime::Engine;
use crate::store::{self, ts};
use crate::transform::validate_canonical;

/// Which exceptions to list.
#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ExceptionFilter {
    pub kind: Option<String>,
    pub system: Option<String>,
    pub field: Option<String>,
    /// `open` (default), `resolved`, `discarded`, or `all`.
    pub status: Option<String>,
    pub record_id: Option<RecordId>,
    /// Only exceptions opened before this time.
    pub opened_before: Option<DateTime<Utc>>,
    /// Only those a first approver has approved and that await a second person (`true`), or
    /// only those that do not (`false`).
    #[serde(default)]
    pub awaiting_approval: Option<bool>,
    /// Only these exceptions (a selection).
    #[serde(default)]
    pub ids: Option<Vec<i64>>,
    pub limit: Option<i64>,
    pub offset: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ExceptionView {
    pub id: i64,
    pub kind: String,
    pub object: String,
    pub record_id: Option<RecordId>,
    pub system: Option<String>,
    pub field: Option<String>,
    pub status: String,
    pub detail: Value,
    pub created_at: String,
    pub updated_at: String,
    pub resolved_by: Option<String>,
    pub resolution: Option<Value>,
    /// For a money field: its currency (an ISO 4217 code), to show `$80,500.00`.
    #[serde(default)]
    pub currency: Option<String>,
}

/// What a steward picks as the field's value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "choose", content = "value", rename_all = "snake_case")]
pub enum Choice {
    /// The value all systems last agreed on.
    Base,
    /// The golden record's current value.
    Golden,
    /// What one system holds.
    System(String),
    /// A value the steward types.
    Custom(Value),
    /// The value a first approver chose, on a field that needs four eyes: the second
    /// approval of exactly that value.
    Approved,
}

/// What a steward decides about a record one system deleted (a `delete_review` exception).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum DeleteDecision {
    /// Delete the record in every other system too.
    DeleteEverywhere,
    /// Keep it elsewhere but set a status field, e.g. `status` = `terminated`.
    Deactivate { field: String, value: Value },
    /// Keep it everywhere else as it is; the deleting system is unlinked.
    Keep,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ResolveOutcome {
    Applied,
    /// The field needs a second person: this approval is recorded, nothing is written yet.
    AwaitingSecondApproval,
}

/// Which dead letters to list or replay (also the list route's query parameters).
#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::ToSchema, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DeadLetterFilter {
    pub system: Option<String>,
    pub error_class: Option<String>,
    /// `dead` (default), `replaying`, `replayed`, `discarded`, or `all`.
    pub status: Option<String>,
    pub record_id: Option<RecordId>,
    #[param(minimum = 1, maximum = 10000)]
    #[schema(minimum = 1, maximum = 10000)]
    pub limit: Option<i64>,
    #[param(minimum = 0, maximum = 1000000000)]
    #[schema(minimum = 0, maximum = 1000000000)]
    pub offset: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct DeadLetterView {
    pub id: i64,
    pub kind: String,
    pub system: String,
    pub record_id: Option<RecordId>,
    pub error_class: String,
    pub response_status: Option<i64>,
    pub response_body: Option<String>,
    pub attempts: i64,
    pub status: String,
    pub created_at: String,
    /// When its status last changed (a replay or a discard).
    pub updated_at: String,
    /// Who replayed or discarded it.
    pub actor: Option<String>,
    /// Why it was discarded.
    pub discard_reason: Option<String>,
    pub op: Option<String>,
    pub idempotency_key: Option<String>,
    /// The object the write was about.
    pub object: Option<String>,
    /// The HTTP request that failed, as it was sent (method, path, body).
    pub request: Option<crate::delivery::send::SentRequest>,
    /// Why, in the system's own words (from its answer; see [`crate::dead_letter_causes`]).
    #[serde(default)]
    pub message: Option<String>,
    /// The system fields its answer names.
    #[serde(default)]
    pub fields: Vec<String>,
    /// Whether replaying as it is fails the same way: the record or the mapping must change.
    #[serde(default)]
    pub fails_again: bool,
    /// Each failed attempt of the write, oldest first (given for one dead letter, not in lists).
    #[serde(default)]
    pub attempt_log: Vec<WriteAttempt>,
}

/// One failed attempt of a write.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema, sqlx::FromRow)]
pub struct WriteAttempt {
    pub attempt: i64,
    pub at: String,
    /// The system's HTTP status, when it answered.
    pub status: Option<i64>,
    pub message: String,
    /// When the next attempt was due; none after the last.
    pub retry_at: Option<String>,
}

/// One field of a replay preview: what the target holds, what would be written, the base.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PreviewField {
    pub field: String,
    pub current: Value,
    pub write: Value,
    pub base: Value,
    /// Whether writing changes what the target holds, decided before any masking (a masked
    /// value still shows as changed or not).
    #[serde(default)]
    pub changes: bool,
    /// Whether the value written differs from the base (or from what the failed write had).
    #[serde(default)]
    pub differs_from_base: bool,
}

impl PreviewField {
    pub fn new(field: &str, current: Value, write: Value, base: Value) -> Self {
        Self {
            field: field.to_owned(),
            changes: current != write,
            differs_from_base: base != write,
            current,
            write,
            base,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ReplayPreview {
    pub dead_letter: i64,
    pub system: String,
    /// The object the write is about (which fields are sensitive depends on it).
    pub object: String,
    pub op: String,
    pub fields: Vec<PreviewField>,
    /// The request that failed, as it was sent; replaying sends it again unchanged.
    pub sent: Option<crate::delivery::send::SentRequest>,
    /// What planning it again from the current golden record and mapping would send instead.
    pub replan: Option<crate::replan::ReplanPreview>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ReplayOutcome {
    Queued,
    /// Already replayed (or being replayed): nothing is sent again.
    AlreadyReplayed,
    Discarded,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AuditRow {
    pub id: i64,
    pub at: String,
    pub actor: String,
    pub actor_role: Option<String>,
    /// The acting principal's stable id (`tok_…`), when a console token acted.
    #[serde(default)]
    pub actor_id: Option<String>,
    pub system: Option<String>,
    pub direction: String,
    pub record_id: Option<RecordId>,
    pub object: Option<String>,
    pub field: Option<String>,
    pub before: Option<Value>,
    pub after: Option<Value>,
    pub rule: String,
    pub detail: Option<Value>,
}

const EXCEPTION_COLUMNS: &str = "SELECT id, kind, object, record_id, system_id, field, status, detail, created_at, \
     updated_at, resolved_by, resolution FROM exceptions";

fn exception_view(r: &sqlx::sqlite::SqliteRow) -> ExceptionView {
    ExceptionView {
        id: r.get("id"),
        kind: r.get("kind"),
        object: r.get("object"),
        record_id: r.get("record_id"),
        system: r.get("system_id"),
        field: r.get("field"),
        status: r.get("status"),
        detail: parse_json(r.get("detail")).unwrap_or(Value::Null),
        created_at: r.get("created_at"),
        updated_at: r.get("updated_at"),
        resolved_by: r.get("resolved_by"),
        resolution: parse_json(r.get("resolution")),
        currency: None,
    }
}

const DEAD_LETTER_COLUMNS: &str = "SELECT d.id, d.kind, d.system_id, d.record_id, d.error_class, \
     d.response_status, d.response_body, d.attempts, d.status, d.created_at, d.updated_at, d.actor, \
     d.discard_reason, d.request, o.object, o.op, o.idempotency_key \
     FROM dead_letters d LEFT JOIN outbox o ON o.id = d.outbox_id";

fn dead_letter_view(r: &sqlx::sqlite::SqliteRow) -> DeadLetterView {
    DeadLetterView {
        id: r.get("id"),
        kind: r.get("kind"),
        system: r.get("system_id"),
        record_id: r.get("record_id"),
        error_class: r.get("error_class"),
        response_status: r.get("response_status"),
        response_body: r.get("response_body"),
        attempts: r.get("attempts"),
        status: r.get("status"),
        created_at: r.get("created_at"),
        updated_at: r.get("updated_at"),
        actor: r.get("actor"),
        discard_reason: r.get("discard_reason"),
        op: r.get("op"),
        idempotency_key: r.get("idempotency_key"),
        object: r.get("object"),
        request: r
            .get::<Option<String>, _>("request")
            .and_then(|text| serde_json::from_str(&text).ok()),
        message: None,
        fields: Vec::new(),
        fails_again: false,
        attempt_log: Vec::new(),
    }
    .explained(None)
}

/// A dead letter explained with the error-message pointer its system's config names, if any.
fn explained(ws: &crate::workspace::Workspace, view: DeadLetterView) -> DeadLetterView {
    let pointer = ws
        .system(&view.system)
        .and_then(|s| s.config.get("error_message_pointer"))
        .and_then(Value::as_str)
        .map(str::to_owned);
    match pointer {
        Some(p) => view.explained(Some(&p)),
        None => view,
    }
}

impl DeadLetterView {
    /// Fills in the readable message, the fields named and whether a replay fails again, from
    /// the system's answer; `pointer` is where the system's config says its message is.
    pub fn explained(mut self, pointer: Option<&str>) -> Self {
        let body = self.response_body.as_deref().unwrap_or_default();
        self.message = crate::dead_letter_causes::readable_message(body, pointer);
        self.fields = crate::dead_letter_causes::named_fields(body);
        self.fails_again =
            crate::dead_letter_causes::fails_again(&self.error_class, self.response_status);
        self
    }
}

/// The WHERE clause of an exception list or count (the query ends before it).
fn push_exception_filter(q: &mut QueryBuilder<'_, Sqlite>, filter: &ExceptionFilter) {
    q.push(" WHERE 1 = 1");
    match filter.status.as_deref().unwrap_or("open") {
        "all" => {}
        status => {
            q.push(" AND status = ").push_bind(status.to_owned());
        }
    }
    if let Some(k) = &filter.kind {
        q.push(" AND kind = ").push_bind(k.clone());
    }
    if let Some(s) = &filter.system {
        q.push(" AND system_id = ").push_bind(s.clone());
    }
    if let Some(f) = &filter.field {
        q.push(" AND field = ").push_bind(f.clone());
    }
    if let Some(r) = filter.record_id {
        q.push(" AND record_id = ").push_bind(r);
    }
    if let Some(before) = filter.opened_before {
        q.push(" AND created_at < ").push_bind(ts(before));
    }
    if let Some(ids) = &filter.ids {
        // One bound JSON array, however long the selection (no limit on bound parameters).
        q.push(" AND id IN (SELECT value FROM json_each(")
            .push_bind(serde_json::to_string(ids).unwrap_or_else(|_| "[]".into()))
            .push("))");
    }
    match filter.awaiting_approval {
        Some(true) => {
            q.push(" AND json_extract(detail, '$.approval') IS NOT NULL");
        }
        Some(false) => {
            q.push(" AND json_extract(detail, '$.approval') IS NULL");
        }
        None => {}
    }
}

/// The WHERE clause of a dead-letter list or count (the table is aliased `d`).
fn push_dead_letter_filter(q: &mut QueryBuilder<'_, Sqlite>, filter: &DeadLetterFilter) {
    q.push(" WHERE 1 = 1");
    match filter.status.as_deref().unwrap_or("dead") {
        "all" => {}
        status => {
            q.push(" AND d.status = ").push_bind(status.to_owned());
        }
    }
    if let Some(s) = &filter.system {
        q.push(" AND d.system_id = ").push_bind(s.clone());
    }
    if let Some(c) = &filter.error_class {
        q.push(" AND d.error_class = ").push_bind(c.clone());
    }
    if let Some(r) = filter.record_id {
        q.push(" AND d.record_id = ").push_bind(r);
    }
}

/// An audit row as the API shows it.
pub(crate) fn audit_row(r: &sqlx::sqlite::SqliteRow) -> AuditRow {
    AuditRow {
        id: r.get("id"),
        at: r.get("at"),
        actor: r.get("actor"),
        actor_role: r.get("actor_role"),
        actor_id: r.try_get("actor_id").ok().flatten(),
        system: r.get("system_id"),
        direction: r.get("direction"),
        record_id: r.get("record_id"),
        object: r.get("object"),
        field: r.get("field"),
        before: parse_json(r.get("before")),
        after: parse_json(r.get("after")),
        rule: r.get("rule"),
        detail: parse_json(r.get("detail")),
    }
}

/// Null, an empty string or one of only whitespace.
fn is_empty_value(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::String(s) => s.trim().is_empty(),
        _ => false,
    }
}

/// Whether `value` may resolve exception `id` on `field`: it must be valid for the field's
/// type, and an empty value never resolves a required or sensitive field (it would write the
/// emptiness into every system: a salary of null in payroll).
pub(crate) fn check_resolution(
    schema: &crate::model::ObjectSchema,
    policy: &crate::model::FieldPolicy,
    id: i64,
    field: &str,
    choice: &Choice,
    value: &Value,
) -> Result<()> {
    let def = schema.field(field);
    if let (Some(def), false) = (def, value.is_null()) {
        validate_canonical(def.field_type, value)
            .map_err(|e| EngineError::Invalid(format!("{field}: {e}")))?;
    }
    if is_empty_value(value) {
        let why = if def.is_some_and(|d| d.required) {
            Some("required")
        } else if def.is_some_and(|d| d.sensitive) || policy.sensitive {
            Some("sensitive")
        } else {
            None
        };
        if let Some(why) = why {
            return Err(EngineError::Invalid(format!(
                "{field} is {why}: exception {id} cannot be resolved to an empty value \
                 (the chosen {} value is empty); choose or enter a value",
                choice_name(choice)
            )));
        }
    }
    Ok(())
}

fn choice_name(choice: &Choice) -> String {
    match choice {
        Choice::Base => "base".into(),
        Choice::Golden => "golden".into(),
        Choice::System(s) => format!("'{s}'"),
        Choice::Custom(_) => "custom".into(),
        Choice::Approved => "approved".into(),
    }
}

fn parse_json(s: Option<String>) -> Option<Value> {
    s.and_then(|s| serde_json::from_str(&s).ok())
}

impl Engine {
    pub async fn list_exceptions(&self, filter: &ExceptionFilter) -> Result<Vec<ExceptionView>> {
        let mut q: QueryBuilder<Sqlite> = QueryBuilder::new(EXCEPTION_COLUMNS);
        push_exception_filter(&mut q, filter);
        q.push(" ORDER BY id LIMIT ")
            .push_bind(filter.limit.unwrap_or(100).clamp(1, 10_000));
        q.push(" OFFSET ")
            .push_bind(filter.offset.unwrap_or(0).max(0));
        let rows = q.build().fetch_all(self.pool()).await?;
        Ok(rows.iter().map(exception_view).collect())
    }

    /// How many exceptions match `filter`, whatever its limit and offset (a list's total).
    pub async fn count_exceptions(&self, filter: &ExceptionFilter) -> Result<i64> {
        let mut q: QueryBuilder<Sqlite> = QueryBuilder::new("SELECT COUNT(*) FROM exceptions");
        push_exception_filter(&mut q, filter);
        Ok(q.build_query_scalar().fetch_one(self.pool()).await?)
    }

    pub async fn exception(&self, id: i64) -> Result<ExceptionView> {
        let row = sqlx::query(&format!("{EXCEPTION_COLUMNS} WHERE id = ?"))
            .bind(id)
            .fetch_optional(self.pool())
            .await?
            .ok_or_else(|| EngineError::NotFound(format!("exception {id}")))?;
        Ok(exception_view(&row))
    }

    /// Resolves a field exception (conflict, non-owner change, validation) with a chosen value.
    /// The value becomes golden and is written to every system that holds something else.
    /// Fields that need four eyes take two approvals of the same value by different people.
    pub async fn resolve_exception(
        &self,
        id: i64,
        choice: &Choice,
        note: &str,
        actor: &Actor,
    ) -> Result<ResolveOutcome> {
        self.resolve_as_shown(id, choice, note, actor, None).await
    }

    /// [`Engine::resolve_exception`], for a person who was shown the values first (a bulk
    /// preview): when the field's golden value or the chosen value is no longer what they
    /// saw, nothing is written. The approval, the resolution and their audit entries name
    /// the digest of what was shown.
    pub(crate) async fn resolve_as_shown(
        &self,
        id: i64,
        choice: &Choice,
        note: &str,
        actor: &Actor,
        shown: Option<&crate::approvals::Shown>,
    ) -> Result<ResolveOutcome> {
        // Held from the first read: two people resolving the same exception at once are
        // decided one after the other, each on what the other left.
        let _guard = self.inner.write_lock.lock().await;
        let exception = self.exception(id).await?;
        if exception.status != "open" {
            return Err(EngineError::Conflict(format!(
                "exception {id} is already {}",
                exception.status
            )));
        }
        let (Some(record_id), Some(field)) = (exception.record_id, exception.field.clone()) else {
            return Err(EngineError::Invalid(format!(
                "exception {id} ({}) is not about one field; use its own resolution",
                exception.kind
            )));
        };
        let ws = self.workspace();
        let schema = ws
            .object(&exception.object)
            .ok_or_else(|| EngineError::NotFound(format!("object '{}'", exception.object)))?
            .clone();
        let golden = self.golden(record_id).await?;
        let value = crate::approvals::chosen_value(&exception, &field, choice, &golden)?;
        if let Some(shown) = shown {
            let current = golden.get(&field).cloned().unwrap_or(Value::Null);
            if current != shown.current || value != shown.chosen {
                return Err(EngineError::Conflict(format!(
                    "exception {id} changed since it was shown: {field} now holds another value \
                     or the choice gives another; review it again"
                )));
            }
        }
        let policy = ws.policy(&exception.object, &field);
        check_resolution(&schema, &policy, id, &field, choice, &value)?;
        let now = self.now();
        let now_s = ts(now);
        let shown_digest = shown.map(|s| s.digest.as_str());
        let mut tx = crate::store::begin_write(self.pool()).await?;
        let step = crate::approvals::approval_step(policy.four_eyes, &exception, actor, &value);
        match step {
            ApprovalStep::SamePerson => {
                return Err(EngineError::Conflict(format!(
                    "{field} needs a second person: {} already approved this resolution",
                    actor.name
                )));
            }
            ApprovalStep::First => {
                let approval = json!({ "value": value, "by": actor.name, "by_id": actor.id, "role": actor.role, "at": now_s, "note": note, "shown": shown_digest });
                sqlx::query("UPDATE exceptions SET detail = json_set(detail, '$.approval', json(?)), updated_at = ? WHERE id = ?")
                    .bind(approval.to_string())
                    .bind(&now_s)
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
                store::insert_audit(
                    &mut tx,
                    &[
                        AuditEntry::engine("resolution:first_approval", Direction::Internal)
                            .by(actor.clone())
                            .record(&exception.object, record_id)
                            .field(&field, golden.get(&field), Some(&value))
                            .detail(
                                json!({ "exception": id, "note": note, "shown": shown_digest }),
                            ),
                    ],
                    now,
                )
                .await?;
                tx.commit().await?;
                return Ok(ResolveOutcome::AwaitingSecondApproval);
            }
            ApprovalStep::Second | ApprovalStep::Apply => {}
        }
        let empty = BTreeMap::new();
        let ctx = ws
            .merge_context(&exception.object, &empty)
            .ok_or_else(|| EngineError::NotFound(format!("object '{}'", exception.object)))?;
        let mut batch = self.batch(&ws, now);
        // The field is released by this resolution.
        let cached = batch.load(&mut tx, record_id).await?;
        cached.state.held.remove(&field);
        let state = cached.state.clone();
        let rule = format!("resolution:{}", exception.kind);
        let mut plan = merge::resolve(&ctx, &state, &field, &value, actor, &rule, now);
        if let Some(a) = plan.audit.first_mut() {
            a.detail = Some(
                json!({ "exception": id, "note": note, "choice": choice, "shown": shown_digest,
                "first_approval": exception.detail.get("approval") }),
            );
        }
        batch
            .apply_plan(&mut tx, &schema, record_id, &plan, &format!("resolve:{id}"))
            .await?;
        batch.finish(&mut tx).await?;
        let resolution = json!({ "value": value, "choice": choice, "note": note, "role": actor.role,
            "shown": shown_digest });
        sqlx::query(
            "UPDATE exceptions SET status = 'resolved', resolved_at = ?, resolved_by = ?, resolution = ?, updated_at = ? WHERE id = ?",
        )
        .bind(&now_s)
        .bind(&actor.name)
        .bind(resolution.to_string())
        .bind(&now_s)
        .bind(id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        drop(_guard);
        self.inner.outbox_ready.notify_waiters();
        Ok(ResolveOutcome::Applied)
    }

    /// Closes an exception without changing any value (e.g. fixed at the source).
    pub async fn dismiss_exception(&self, id: i64, note: &str, actor: &Actor) -> Result<()> {
        let exception = self.exception(id).await?;
        if exception.status != "open" {
            return Err(EngineError::Conflict(format!(
                "exception {id} is already {}",
                exception.status
            )));
        }
        if note.trim().is_empty() {
            return Err(EngineError::Invalid(
                "dismissing an exception needs a note saying why".into(),
            ));
        }
        if exception.kind == "reconcile_guard" {
            return Err(EngineError::Conflict(format!(
                "exception {id} holds deletes a reconciliation found: an admin confirms or \
                 dismisses that run (POST /api/reconciliations/{}/confirm or /dismiss)",
                exception.detail.get("run").cloned().unwrap_or(Value::Null)
            )));
        }
        let now = self.now();
        let _guard = self.inner.write_lock.lock().await;
        let mut tx = crate::store::begin_write(self.pool()).await?;
        if exception.kind == "unstable_record" {
            // Its writes get their full share of re-reads again.
            sqlx::query("UPDATE links SET rereads = 0 WHERE record_id = ? AND system_id = ?")
                .bind(exception.record_id)
                .bind(&exception.system)
                .execute(&mut *tx)
                .await?;
        }
        sqlx::query(
            "UPDATE exceptions SET status = 'discarded', resolved_at = ?, resolved_by = ?, resolution = ?, updated_at = ? WHERE id = ?",
        )
        .bind(ts(now))
        .bind(&actor.name)
        .bind(json!({ "note": note, "dismissed": true }).to_string())
        .bind(ts(now))
        .bind(id)
        .execute(&mut *tx)
        .await?;
        let mut entry = AuditEntry::engine("exception:dismissed", Direction::Internal)
            .by(actor.clone())
            .detail(json!({ "exception": id, "note": note }));
        entry.record_id = exception.record_id;
        entry.object = Some(exception.object.clone());
        entry.field = exception.field.clone();
        store::insert_audit(&mut tx, &[entry], now).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Carries out a steward's decision on a record one system deleted: the delete is planned
    /// again under the chosen policy (the same merge that applies delete policies), written in
    /// one transaction with the exception's resolution and an audit entry naming the steward.
    pub async fn decide_delete(
        &self,
        id: i64,
        decision: &DeleteDecision,
        note: &str,
        actor: &Actor,
    ) -> Result<()> {
        let exception = self.exception(id).await?;
        if exception.kind != "delete_review" {
            return Err(EngineError::Invalid(format!(
                "exception {id} is a {}, not a delete under review",
                exception.kind
            )));
        }
        if exception.status != "open" {
            return Err(EngineError::Conflict(format!(
                "exception {id} is already {}",
                exception.status
            )));
        }
        let (Some(record_id), Some(system)) = (exception.record_id, exception.system.clone())
        else {
            return Err(EngineError::Invalid(format!(
                "exception {id} names no record or system"
            )));
        };
        let ws = self.workspace();
        let base_schema = ws
            .object(&exception.object)
            .ok_or_else(|| EngineError::NotFound(format!("object '{}'", exception.object)))?;
        let policy = match decision {
            DeleteDecision::DeleteEverywhere => crate::model::DeletePolicy::Propagate,
            DeleteDecision::Keep => crate::model::DeletePolicy::Ignore,
            DeleteDecision::Deactivate { field, value } => {
                let def = base_schema.field(field).ok_or_else(|| {
                    EngineError::Invalid(format!(
                        "{} has no field '{field}' to deactivate with",
                        exception.object
                    ))
                })?;
                validate_canonical(def.field_type, value)
                    .map_err(|e| EngineError::Invalid(format!("{field}: {e}")))?;
                crate::model::DeletePolicy::Deactivate {
                    field: field.clone(),
                    value: value.clone(),
                }
            }
        };
        let schema = crate::model::ObjectSchema {
            delete_policy: policy,
            ..base_schema.clone()
        };
        let empty = BTreeMap::new();
        let base_ctx = ws
            .merge_context(&exception.object, &empty)
            .ok_or_else(|| EngineError::NotFound(format!("object '{}'", exception.object)))?;
        let ctx = merge::MergeContext {
            object: &schema,
            ..base_ctx
        };
        let now = self.now();
        let now_s = ts(now);
        let _guard = self.inner.write_lock.lock().await;
        let mut tx = crate::store::begin_write(self.pool()).await?;
        let mut batch = self.batch(&ws, now);
        let state = batch.load(&mut tx, record_id).await?.state.clone();
        let mut plan = merge::delete(&ctx, &state, &system, now);
        for entry in &mut plan.audit {
            entry.actor = actor.clone();
            entry.direction = Direction::Internal;
            entry.detail = Some(json!({ "exception": id, "note": note, "decision": decision }));
        }
        batch
            .apply_plan(
                &mut tx,
                base_schema,
                record_id,
                &plan,
                &format!("delete-review:{id}"),
            )
            .await?;
        batch.finish(&mut tx).await?;
        sqlx::query(
            "UPDATE exceptions SET status = 'resolved', resolved_at = ?, resolved_by = ?, resolution = ?, updated_at = ? WHERE id = ?",
        )
        .bind(&now_s)
        .bind(&actor.name)
        .bind(json!({ "decision": decision, "note": note, "role": actor.role }).to_string())
        .bind(&now_s)
        .bind(id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        drop(_guard);
        self.inner.outbox_ready.notify_waiters();
        Ok(())
    }

    /// Resolves an ambiguous first-contact match: link the held event's record to one of the
    /// candidates (`Some(record)`), or create a new record (`None`). The event is then applied.
    pub async fn resolve_match(
        &self,
        id: i64,
        link_to: Option<RecordId>,
        actor: &Actor,
    ) -> Result<()> {
        let exception = self.exception(id).await?;
        if exception.kind != "ambiguous_match" || exception.status != "open" {
            return Err(EngineError::Conflict(format!(
                "exception {id} is not an open ambiguous match"
            )));
        }
        let inbox_id: i64 = sqlx::query_scalar("SELECT inbox_id FROM exceptions WHERE id = ?")
            .bind(id)
            .fetch_one(self.pool())
            .await?;
        let event = sqlx::query("SELECT system_id, object, external_id FROM inbox WHERE id = ?")
            .bind(inbox_id)
            .fetch_one(self.pool())
            .await?;
        let (system, object, external_id): (String, String, String) =
            (event.get(0), event.get(1), event.get(2));
        if let Some(r) = link_to {
            let taken: i64 = sqlx::query_scalar(
                "SELECT COUNT(*) FROM links WHERE record_id = ? AND system_id = ? AND deleted = 0",
            )
            .bind(r)
            .bind(&system)
            .fetch_one(self.pool())
            .await?;
            if taken > 0 {
                return Err(EngineError::Conflict(format!(
                    "record {r} is already linked to a record in {system}; pick another or create a new one"
                )));
            }
        }
        let now = self.now();
        let now_s = ts(now);
        let _guard = self.inner.write_lock.lock().await;
        let mut tx = crate::store::begin_write(self.pool()).await?;
        let record_id = match link_to {
            Some(r) => r,
            None => {
                sqlx::query_scalar(
                    "INSERT INTO records (object, created_at) VALUES (?, ?) RETURNING id",
                )
                .bind(&object)
                .bind(&now_s)
                .fetch_one(&mut *tx)
                .await?
            }
        };
        sqlx::query(
            "INSERT INTO links (system_id, object, external_id, record_id, created_at) VALUES (?, ?, ?, ?, ?)
             ON CONFLICT(system_id, object, external_id) DO UPDATE SET record_id = excluded.record_id, deleted = 0",
        )
        .bind(&system)
        .bind(&object)
        .bind(&external_id)
        .bind(record_id)
        .bind(&now_s)
        .execute(&mut *tx)
        .await?;
        sqlx::query("UPDATE inbox SET status = 'pending' WHERE id = ?")
            .bind(inbox_id)
            .execute(&mut *tx)
            .await?;
        sqlx::query("UPDATE exceptions SET status = 'resolved', resolved_at = ?, resolved_by = ?, resolution = ?, updated_at = ? WHERE id = ?")
            .bind(&now_s)
            .bind(&actor.name)
            .bind(json!({ "link_to": link_to, "record_id": record_id }).to_string())
            .bind(&now_s)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        store::insert_audit(
            &mut tx,
            &[AuditEntry::engine("resolution:ambiguous_match", Direction::Internal)
                .by(actor.clone())
                .system(&system)
                .record(&object, record_id)
                .detail(json!({ "exception": id, "external_id": external_id, "created": link_to.is_none() }))],
            now,
        )
        .await?;
        tx.commit().await?;
        drop(_guard);
        self.inner.inbox_ready.notify_one();
        Ok(())
    }

    pub async fn list_dead_letters(
        &self,
        filter: &DeadLetterFilter,
    ) -> Result<Vec<DeadLetterView>> {
        let mut q: QueryBuilder<Sqlite> = QueryBuilder::new(DEAD_LETTER_COLUMNS);
        push_dead_letter_filter(&mut q, filter);
        q.push(" ORDER BY d.id LIMIT ")
            .push_bind(filter.limit.unwrap_or(100).clamp(1, 10_000));
        q.push(" OFFSET ")
            .push_bind(filter.offset.unwrap_or(0).max(0));
        let rows = q.build().fetch_all(self.pool()).await?;
        let ws = self.workspace();
        Ok(rows
            .iter()
            .map(|r| explained(&ws, dead_letter_view(r)))
            .collect())
    }

    /// How many dead letters match `filter`, whatever its limit and offset (a list's total).
    pub async fn count_dead_letters(&self, filter: &DeadLetterFilter) -> Result<i64> {
        let mut q: QueryBuilder<Sqlite> = QueryBuilder::new("SELECT COUNT(*) FROM dead_letters d");
        push_dead_letter_filter(&mut q, filter);
        Ok(q.build_query_scalar().fetch_one(self.pool()).await?)
    }

    /// One dead letter, whatever its status.
    pub async fn dead_letter(&self, id: i64) -> Result<DeadLetterView> {
        let row = sqlx::query(&format!("{DEAD_LETTER_COLUMNS} WHERE d.id = ?"))
            .bind(id)
            .fetch_optional(self.pool())
            .await?
            .ok_or_else(|| EngineError::NotFound(format!("dead letter {id}")))?;
        let mut view = explained(&self.workspace(), dead_letter_view(&row));
        view.attempt_log = sqlx::query_as(
            "SELECT a.attempt, a.at, a.status, a.message, a.retry_at FROM write_attempts a
             WHERE a.outbox_id = (SELECT outbox_id FROM dead_letters WHERE id = ?) ORDER BY a.id",
        )
        .bind(id)
        .fetch_all(self.pool())
        .await?;
        Ok(view)
    }

    /// What replaying a dead letter would change in its target: per field, what the target
    /// holds now (as last known), what would be written, and the base it was planned against.
    pub async fn replay_preview(&self, id: i64) -> Result<ReplayPreview> {
        let row = sqlx::query(
            "SELECT d.system_id, d.record_id, o.op, o.canonical, o.base,
                    COALESCE(o.object, i.object, 'employee') AS object, d.request FROM dead_letters d
             LEFT JOIN outbox o ON o.id = d.outbox_id LEFT JOIN inbox i ON i.id = d.inbox_id WHERE d.id = ?",
        )
        .bind(id)
        .fetch_optional(self.pool())
        .await?
        .ok_or_else(|| EngineError::NotFound(format!("dead letter {id}")))?;
        let system: String = row.get(0);
        let record_id: Option<RecordId> = row.get(1);
        let op: Option<String> = row.get(2);
        let canonical: Fields = serde_json::from_str(
            &row.get::<Option<String>, _>(3)
                .unwrap_or_else(|| "{}".into()),
        )?;
        let base: Fields = serde_json::from_str(
            &row.get::<Option<String>, _>(4)
                .unwrap_or_else(|| "{}".into()),
        )?;
        let shadow: Fields = match record_id {
            Some(r) => {
                let s: Option<String> = sqlx::query_scalar(
                    "SELECT fields FROM shadows WHERE system_id = ? AND record_id = ?",
                )
                .bind(&system)
                .bind(r)
                .fetch_optional(self.pool())
                .await?;
                s.map(|s| serde_json::from_str(&s))
                    .transpose()?
                    .unwrap_or_default()
            }
            None => Fields::new(),
        };
        let fields = canonical
            .iter()
            .map(|(f, v)| {
                PreviewField::new(
                    f,
                    shadow.get(f).cloned().unwrap_or(Value::Null),
                    v.clone(),
                    base.get(f).cloned().unwrap_or(Value::Null),
                )
            })
            .collect();
        let sent: Option<String> = row.get("request");
        Ok(ReplayPreview {
            dead_letter: id,
            system,
            object: row.get("object"),
            op: op.unwrap_or_else(|| "event".into()),
            fields,
            sent: sent.and_then(|text| serde_json::from_str(&text).ok()),
            replan: self.replan_preview(id).await?,
        })
    }

    /// Re-sends a dead letter with its original idempotency key. Replaying one that is already
    /// replayed or under way sends nothing.
    pub async fn replay(&self, id: i64, actor: &Actor) -> Result<ReplayOutcome> {
        let now = self.now();
        let now_s = ts(now);
        let _guard = self.inner.write_lock.lock().await;
        let mut tx = crate::store::begin_write(self.pool()).await?;
        let row = sqlx::query("SELECT kind, status, outbox_id, inbox_id, system_id, record_id FROM dead_letters WHERE id = ?")
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or_else(|| EngineError::NotFound(format!("dead letter {id}")))?;
        let status: String = row.get("status");
        match status.as_str() {
            "replaying" | "replayed" => return Ok(ReplayOutcome::AlreadyReplayed),
            "discarded" => return Ok(ReplayOutcome::Discarded),
            _ => {}
        }
        let kind: String = row.get("kind");
        let system: String = row.get("system_id");
        let record_id: Option<RecordId> = row.get("record_id");
        if kind == "write" {
            let outbox_id: i64 = row.get("outbox_id");
            // A create whose record has since been created there becomes an update.
            sqlx::query(
                "UPDATE outbox SET status = 'pending', attempts = 0, next_attempt_at = ?, last_error = NULL,
                   op = CASE WHEN op = 'create' AND EXISTS (SELECT 1 FROM links l WHERE l.record_id = outbox.record_id
                                AND l.system_id = outbox.system_id AND l.deleted = 0) THEN 'update' ELSE op END
                 WHERE id = ?",
            )
            .bind(&now_s)
            .bind(outbox_id)
            .execute(&mut *tx)
            .await?;
            sqlx::query("UPDATE dead_letters SET status = 'replaying', actor = ?, updated_at = ? WHERE id = ?")
                .bind(&actor.name)
                .bind(&now_s)
                .bind(id)
                .execute(&mut *tx)
                .await?;
        } else {
            let inbox_id: i64 = row.get("inbox_id");
            sqlx::query("UPDATE inbox SET status = 'pending' WHERE id = ?")
                .bind(inbox_id)
                .execute(&mut *tx)
                .await?;
            sqlx::query("UPDATE dead_letters SET status = 'replayed', actor = ?, updated_at = ? WHERE id = ?")
                .bind(&actor.name)
                .bind(&now_s)
                .bind(id)
                .execute(&mut *tx)
                .await?;
        }
        let mut entry = AuditEntry::engine("dead_letter:replay", Direction::Internal)
            .by(actor.clone())
            .system(&system)
            .detail(json!({ "dead_letter": id }));
        entry.record_id = record_id;
        store::insert_audit(&mut tx, &[entry], now).await?;
        tx.commit().await?;
        drop(_guard);
        self.inner.outbox_ready.notify_waiters();
        self.inner.inbox_ready.notify_one();
        Ok(ReplayOutcome::Queued)
    }

    /// Replays every dead letter the filter selects. Returns how many were queued.
    pub async fn replay_matching(&self, filter: &DeadLetterFilter, actor: &Actor) -> Result<usize> {
        let filter = DeadLetterFilter {
            status: Some("dead".into()),
            limit: Some(filter.limit.unwrap_or(10_000)),
            ..filter.clone()
        };
        let mut queued = 0;
        for dl in self.list_dead_letters(&filter).await? {
            if self.replay(dl.id, actor).await? == ReplayOutcome::Queued {
                queued += 1;
            }
        }
        Ok(queued)
    }

    /// Gives up on a dead letter, with a reason.
    pub async fn discard_dead_letter(&self, id: i64, reason: &str, actor: &Actor) -> Result<()> {
        if reason.trim().is_empty() {
            return Err(EngineError::Invalid(
                "discarding a dead letter needs a reason".into(),
            ));
        }
        let now = self.now();
        let _guard = self.inner.write_lock.lock().await;
        let mut tx = crate::store::begin_write(self.pool()).await?;
        let changed = sqlx::query(
            "UPDATE dead_letters SET status = 'discarded', discard_reason = ?, actor = ?, updated_at = ? WHERE id = ? AND status = 'dead'",
        )
        .bind(reason)
        .bind(&actor.name)
        .bind(ts(now))
        .bind(id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if changed == 0 {
            return Err(EngineError::Conflict(format!(
                "dead letter {id} does not exist or is not dead"
            )));
        }
        // Events held while this write's outcome was unknown are applied now.
        sqlx::query(
            "UPDATE inbox SET status = 'pending' WHERE status = 'held' AND json_extract(detail, '$.awaiting_write') =
               (SELECT outbox_id FROM dead_letters WHERE id = ?)",
        )
        .bind(id)
        .execute(&mut *tx)
        .await?;
        store::insert_audit(
            &mut tx,
            &[
                AuditEntry::engine("dead_letter:discard", Direction::Internal)
                    .by(actor.clone())
                    .detail(json!({ "dead_letter": id, "reason": reason })),
            ],
            now,
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The golden record's values.
    pub async fn golden(&self, record_id: RecordId) -> Result<Fields> {
        let fields: Option<String> =
            sqlx::query_scalar("SELECT fields FROM golden WHERE record_id = ?")
                .bind(record_id)
                .fetch_optional(self.pool())
                .await?;
        Ok(fields
            .map(|f| serde_json::from_str(&f))
            .transpose()?
            .unwrap_or_default())
    }

    /// The record a system's record is linked to.
    pub async fn record_for(
        &self,
        system: &str,
        object: &str,
        external_id: &str,
    ) -> Result<Option<RecordId>> {
        Ok(sqlx::query_scalar("SELECT record_id FROM links WHERE system_id = ? AND object = ? AND external_id = ? AND deleted = 0")
            .bind(system)
            .bind(object)
            .bind(external_id)
            .fetch_optional(self.pool())
            .await?)
    }

    /// A record's audit trail, optionally for one field: the lineage of its values.
    pub async fn audit_for(
        &self,
        record_id: RecordId,
        field: Option<&str>,
    ) -> Result<Vec<AuditRow>> {
        let rows = sqlx::query(
            "SELECT id, at, actor, actor_role, system_id, direction, record_id, object, field, before, after, rule, detail
             FROM audit WHERE record_id = ? AND (? IS NULL OR field = ? OR field IS NULL) ORDER BY id",
        )
        .bind(record_id)
        .bind(field)
        .bind(field)
        .fetch_all(self.pool())
        .await?;
        Ok(rows.iter().map(audit_row).collect())
    }

    /// A named counter (`noops`, `duplicates`, `stale`, `retries`, `events_in`, `events_out`...).
    pub async fn counter(&self, name: &str) -> Result<i64> {
        store::counter(self.pool(), name).await
    }
}
