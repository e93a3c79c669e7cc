//! Delivery: the outbox sender. Per system, it claims due writes (one per record at a time,
//! in order), sends them through the system's connector under its rate limit, and commits
//! each outcome with the state it implies, in one transaction per round:
//!
//! - success: the write is marked sent, the target's shadow and link version follow, audit;
//! - retryable (timeout, 5xx, 429): retried with exponential backoff and jitter, never sooner
//!   than `Retry-After`; after the system's attempt limit it becomes a dead letter;
//! - rejected (other 4xx): a dead letter at once, with the system's response;
//! - version conflict (412): the record is re-read and merged again; nothing is overwritten.
//!
//! A crash between sending and committing re-sends the write with the same idempotency key.

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::StreamExt;
use governor::{
    Quota, RateLimiter as Governor, clock::DefaultClock, state::InMemoryState, state::NotKeyed,
};
use serde_json::{Value, json};
use sqlx::Row;

use crate::audit::{AuditEntry, Direction};
use crate::clock::backoff;
use crate::connector::{ConnectorError, FetchedRecord, WriteOutcome, WriteRequest};
use crate::error::Result;
use crate::model::{Fields, RecordId, SourceVersion};
use crate::runtime::{Batch, Engine, REFETCH_PREFIX};
use crate::store::{self, ts};

/// A per-system limit on requests per second (GCRA, from `governor`).
pub struct RateLimiter(Governor<NotKeyed, InMemoryState, DefaultClock>);

impl RateLimiter {
    pub fn per_second(rate: f64) -> Option<Self> {
        if !(rate.is_finite() && rate > 0.0) {
            return None;
        }
        let period = Duration::from_secs_f64(1.0 / rate);
        let quota = Quota::with_period(period)?.allow_burst(NonZeroU32::MIN);
        Some(Self(Governor::direct(quota)))
    }

    pub async fn acquire(&self) {
        self.0.until_ready().await;
    }
}

/// A claimed outbox row.
#[derive(Debug, Clone)]
struct Claimed {
    id: i64,
    record_id: RecordId,
    object: String,
    op: String,
    external_id: Option<String>,
    canonical: Fields,
    payload: serde_json::Map<String, Value>,
    base: Fields,
    if_match: Option<SourceVersion>,
    idempotency_key: String,
    attempts: i64,
}

enum Outcome {
    Sent(WriteOutcome),
    Failed(ConnectorError),
    /// 412: the record as it is now in the target (or None if it is gone).
    Refetched(Option<FetchedRecord>),
    /// The write waits for its record to be created in the target first.
    Waiting,
    /// 412 from a system that sends change events: wait for them instead of re-reading.
    AwaitEvents,
}

impl Engine {
    pub(crate) fn limiter(&self, system: &str) -> Option<Arc<RateLimiter>> {
        let rate = self.workspace().system(system)?.rate_limit_per_sec?;
        let mut limiters = self
            .inner
            .limiters
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if let Some(l) = limiters.get(system) {
            return Some(l.clone());
        }
        let limiter = Arc::new(RateLimiter::per_second(rate)?);
        limiters.insert(system.to_owned(), limiter.clone());
        Some(limiter)
    }

    /// One delivery round for one system. Returns how many writes it sent (successfully or not).
    pub async fn deliver(&self, system: &str) -> Result<usize> {
        let Some(connector) = self.connector(system) else {
            return Ok(0);
        };
        let now = self.now();
        // A polled system gets no creates before its initial listing is done: the records it
        // already holds must be linked first, or they would be created twice.
        let hold_creates = connector.poll_interval().is_some();
        let claimed = self.claim(system, now, hold_creates).await?;
        if claimed.is_empty() {
            return Ok(0);
        }
        let limiter = self.limiter(system);
        let concurrency = self.inner.settings.send_concurrency.max(1);
        let results: Vec<(Claimed, Outcome)> = futures::stream::iter(claimed)
            .map(|row| {
                let connector = connector.clone();
                let limiter = limiter.clone();
                async move {
                    if let Some(l) = &limiter {
                        l.acquire().await;
                    }
                    let outcome = send_one(connector.as_ref(), &row).await;
                    (row, outcome)
                }
            })
            .buffer_unordered(concurrency)
            .collect()
            .await;
        let sent = results
            .iter()
            .filter(|(_, o)| !matches!(o, Outcome::Waiting))
            .count();
        self.commit_round(system, results).await?;
        Ok(sent)
    }

    /// Marks due writes in flight: the oldest pending write of each record that has nothing
    /// else in flight to this system.
    async fn claim(
        &self,
        system: &str,
        now: DateTime<Utc>,
        hold_creates: bool,
    ) -> Result<Vec<Claimed>> {
        let _guard = self.inner.write_lock.lock().await;
        let mut tx = self.inner.pool.begin().await?;
        let rows = sqlx::query(
            "SELECT o.id, o.record_id, o.object, o.op, COALESCE(o.external_id, l.external_id) AS external_id,
                    o.canonical, o.payload, o.base, o.if_match, o.idempotency_key, o.attempts
             FROM outbox o
             LEFT JOIN links l ON l.record_id = o.record_id AND l.system_id = o.system_id AND l.deleted = 0
             WHERE o.system_id = ? AND o.status = 'pending' AND o.next_attempt_at <= ?
               AND NOT EXISTS (SELECT 1 FROM outbox p WHERE p.system_id = o.system_id AND p.record_id = o.record_id
                               AND (p.status = 'in_flight' OR (p.status = 'pending' AND p.id < o.id)))
               AND NOT (? AND o.op = 'create' AND NOT EXISTS (
                   SELECT 1 FROM poll_cursors c WHERE c.system_id = o.system_id AND c.object = o.object AND c.listing_done = 1))
             ORDER BY o.id LIMIT ?",
        )
        .bind(system)
        .bind(ts(now))
        .bind(hold_creates)
        .bind(i64::try_from(self.inner.settings.send_batch).unwrap_or(100))
        .fetch_all(&mut *tx)
        .await?;
        let mut claimed = Vec::with_capacity(rows.len());
        for row in rows {
            let canonical: String = row.get("canonical");
            let payload: String = row.get("payload");
            let base: String = row.get("base");
            let c = Claimed {
                id: row.get("id"),
                record_id: row.get("record_id"),
                object: row.get("object"),
                op: row.get("op"),
                external_id: row.get("external_id"),
                canonical: serde_json::from_str(&canonical)?,
                payload: serde_json::from_str(&payload)?,
                base: serde_json::from_str(&base)?,
                if_match: row.get("if_match"),
                idempotency_key: row.get("idempotency_key"),
                attempts: row.get("attempts"),
            };
            claimed.push(c);
        }
        // One statement per thousand claimed writes, not one each.
        for chunk in claimed.chunks(1000) {
            let mut q: sqlx::QueryBuilder<sqlx::Sqlite> =
                sqlx::QueryBuilder::new("UPDATE outbox SET status = 'in_flight' WHERE id IN ");
            store::push_id_list(&mut q, &chunk.iter().map(|c| c.id).collect::<Vec<_>>());
            q.build().persistent(false).execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(claimed)
    }

    async fn commit_round(&self, system: &str, results: Vec<(Claimed, Outcome)>) -> Result<()> {
        let now = self.now();
        let now_s = ts(now);
        let max_attempts = i64::from(
            self.workspace()
                .system(system)
                .map_or(8, |s| s.max_attempts),
        );
        let _guard = self.inner.write_lock.lock().await;
        let mut tx = self.inner.pool.begin().await?;
        let mut sent = 0i64;
        let mut refetched = false;
        let mut delivered: Vec<(i64, RecordId, String, std::collections::BTreeSet<String>)> =
            Vec::new();
        // Written once for the round, after the loop: ids of sent writes, and their audit.
        let mut sent_ids: Vec<i64> = Vec::new();
        let mut sent_audit: Vec<AuditEntry> = Vec::new();
        for (row, outcome) in results {
            match outcome {
                Outcome::Waiting => {
                    let later = ts(now + chrono::Duration::milliseconds(200));
                    sqlx::query(
                        "UPDATE outbox SET status = 'pending', next_attempt_at = ? WHERE id = ?",
                    )
                    .bind(later)
                    .bind(row.id)
                    .execute(&mut *tx)
                    .await?;
                }
                Outcome::Sent(result) => {
                    sent += 1;
                    if row.op != "delete" {
                        delivered.push((
                            row.id,
                            row.record_id,
                            row.object.clone(),
                            row.canonical.keys().cloned().collect(),
                        ));
                    }
                    sent_ids.push(row.id);
                    if row.op == "delete" {
                        sqlx::query(
                            "UPDATE links SET deleted = 1 WHERE record_id = ? AND system_id = ?",
                        )
                        .bind(row.record_id)
                        .bind(system)
                        .execute(&mut *tx)
                        .await?;
                    } else {
                        if row.op == "create" {
                            sqlx::query(
                                "INSERT INTO links (system_id, object, external_id, record_id, last_version, created_at)
                                 VALUES (?, ?, ?, ?, ?, ?)
                                 ON CONFLICT(system_id, object, external_id) DO UPDATE SET record_id = excluded.record_id, deleted = 0",
                            )
                            .bind(system)
                            .bind(&row.object)
                            .bind(&result.external_id)
                            .bind(row.record_id)
                            .bind(result.version)
                            .bind(&now_s)
                            .execute(&mut *tx)
                            .await?;
                        }
                        if let Some(v) = result.version {
                            sqlx::query(
                                "UPDATE links SET last_version = MAX(COALESCE(last_version, ?), ?)
                                 WHERE system_id = ? AND object = ? AND external_id = ?",
                            )
                            .bind(v)
                            .bind(v)
                            .bind(system)
                            .bind(&row.object)
                            .bind(&result.external_id)
                            .execute(&mut *tx)
                            .await?;
                        }
                        sqlx::query(
                            "INSERT INTO shadows (system_id, record_id, fields, updated_at) VALUES (?, ?, ?, ?)
                             ON CONFLICT(system_id, record_id) DO UPDATE SET fields = json_patch(fields, excluded.fields),
                               updated_at = excluded.updated_at",
                        )
                        .bind(system)
                        .bind(row.record_id)
                        .bind(serde_json::to_string(&row.canonical)?)
                        .bind(&now_s)
                        .execute(&mut *tx)
                        .await?;
                    }
                    let entries: Vec<AuditEntry> = if row.op == "delete" {
                        vec![
                            AuditEntry::engine("delivered:delete", Direction::Out)
                                .system(system)
                                .record(&row.object, row.record_id),
                        ]
                    } else {
                        row.canonical
                            .iter()
                            .map(|(f, v)| {
                                AuditEntry::engine(format!("delivered:{}", row.op), Direction::Out)
                                    .system(system)
                                    .record(&row.object, row.record_id)
                                    .field(f, row.base.get(f), Some(v))
                            })
                            .collect()
                    };
                    sent_audit.extend(entries);
                }
                Outcome::AwaitEvents => {
                    sqlx::query("UPDATE outbox SET status = 'superseded', attempts = attempts + 1, last_error = 'awaiting_event' WHERE id = ?")
                        .bind(row.id)
                        .execute(&mut *tx)
                        .await?;
                    sqlx::query("UPDATE dead_letters SET status = 'replayed', updated_at = ? WHERE outbox_id = ? AND status = 'replaying'")
                        .bind(&now_s)
                        .bind(row.id)
                        .execute(&mut *tx)
                        .await?;
                    let last: Option<i64> = sqlx::query_scalar(
                        "SELECT last_version FROM links WHERE record_id = ? AND system_id = ? AND deleted = 0",
                    )
                    .bind(row.record_id)
                    .bind(system)
                    .fetch_optional(&mut *tx)
                    .await?
                    .flatten();
                    if last.is_some_and(|l| row.if_match.is_none_or(|m| l > m)) {
                        sqlx::query(
                            "UPDATE outbox SET last_error = 'awaiting_event:done' WHERE id = ?",
                        )
                        .bind(row.id)
                        .execute(&mut *tx)
                        .await?;
                        delivered.push((
                            row.id,
                            row.record_id,
                            row.object.clone(),
                            row.canonical.keys().cloned().collect(),
                        ));
                    }
                }
                Outcome::Refetched(record) => {
                    refetched = true;
                    sqlx::query("UPDATE outbox SET status = 'superseded', attempts = attempts + 1, last_error = ? WHERE id = ?")
                        .bind("the target holds a newer version (412); re-read and merged again")
                        .bind(row.id)
                        .execute(&mut *tx)
                        .await?;
                    sqlx::query("UPDATE dead_letters SET status = 'replayed', updated_at = ? WHERE outbox_id = ? AND status = 'replaying'")
                        .bind(&now_s)
                        .bind(row.id)
                        .execute(&mut *tx)
                        .await?;
                    store::insert_audit(
                        &mut tx,
                        &[
                            AuditEntry::engine("delivery:version_conflict", Direction::Out)
                                .system(system)
                                .record(&row.object, row.record_id)
                                .detail(json!({ "if_match": row.if_match, "outbox_id": row.id })),
                        ],
                        now,
                    )
                    .await?;
                    if let Some(fetched) = record {
                        sqlx::query(
                            "INSERT OR IGNORE INTO inbox (system_id, event_key, object, external_id, op, payload, source_version, source_ts, received_at)
                             VALUES (?, ?, ?, ?, 'upsert', ?, ?, ?, ?)",
                        )
                        .bind(system)
                        .bind(format!("{REFETCH_PREFIX}{}:{}", row.id, fetched.version.unwrap_or_default()))
                        .bind(&row.object)
                        .bind(&fetched.external_id)
                        .bind(serde_json::to_string(&fetched.record)?)
                        .bind(fetched.version)
                        .bind(&now_s)
                        .bind(&now_s)
                        .execute(&mut *tx)
                        .await?;
                    }
                }
                Outcome::Failed(error) => {
                    let attempts = row.attempts + 1;
                    let message = error.to_string();
                    let exhausted = attempts >= max_attempts;
                    if error.is_retryable() && !exhausted {
                        let retry_after = match &error {
                            ConnectorError::Retryable { retry_after, .. } => *retry_after,
                            _ => None,
                        };
                        let wait = backoff(
                            u32::try_from(attempts).unwrap_or(u32::MAX),
                            self.inner.settings.backoff_base,
                            self.inner.settings.backoff_cap,
                            &self.inner.jitter,
                        )
                        .max(retry_after.unwrap_or_default());
                        let next = now + chrono::Duration::from_std(wait).unwrap_or_default();
                        sqlx::query("UPDATE outbox SET status = 'pending', attempts = ?, next_attempt_at = ?, last_error = ? WHERE id = ?")
                            .bind(attempts)
                            .bind(ts(next))
                            .bind(&message)
                            .bind(row.id)
                            .execute(&mut *tx)
                            .await?;
                        store::bump(&mut tx, "retries", 1).await?;
                        continue;
                    }
                    let (class, status, body) = match &error {
                        ConnectorError::Rejected { status, body, .. } => {
                            let class = if *status == 422 || *status == 400 {
                                "validation"
                            } else {
                                "rejected"
                            };
                            (class, Some(i64::from(*status)), body.clone())
                        }
                        ConnectorError::Retryable {
                            status, message, ..
                        } => ("retries_exhausted", status.map(i64::from), message.clone()),
                        ConnectorError::NotFound { .. } => {
                            ("not_found", Some(404), message.clone())
                        }
                        ConnectorError::VersionConflict { .. } => {
                            ("version_conflict", Some(412), message.clone())
                        }
                        ConnectorError::Config(m) => ("config", None, m.clone()),
                    };
                    sqlx::query("UPDATE outbox SET status = 'dead', attempts = ?, last_error = ? WHERE id = ?")
                        .bind(attempts)
                        .bind(&message)
                        .bind(row.id)
                        .execute(&mut *tx)
                        .await?;
                    let existing: Option<i64> =
                        sqlx::query_scalar("SELECT id FROM dead_letters WHERE outbox_id = ?")
                            .bind(row.id)
                            .fetch_optional(&mut *tx)
                            .await?;
                    match existing {
                        Some(id) => {
                            sqlx::query(
                                "UPDATE dead_letters SET status = 'dead', error_class = ?, response_status = ?, response_body = ?,
                                   attempts = attempts + ?, updated_at = ? WHERE id = ?",
                            )
                            .bind(class)
                            .bind(status)
                            .bind(&body)
                            .bind(attempts)
                            .bind(&now_s)
                            .bind(id)
                            .execute(&mut *tx)
                            .await?;
                        }
                        None => {
                            sqlx::query(
                                "INSERT INTO dead_letters (kind, outbox_id, system_id, record_id, error_class, response_status, response_body, attempts, created_at, updated_at)
                                 VALUES ('write', ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                            )
                            .bind(row.id)
                            .bind(system)
                            .bind(row.record_id)
                            .bind(class)
                            .bind(status)
                            .bind(&body)
                            .bind(attempts)
                            .bind(&now_s)
                            .bind(&now_s)
                            .execute(&mut *tx)
                            .await?;
                        }
                    }
                    store::insert_audit(
                        &mut tx,
                        &[AuditEntry::engine(format!("dead_letter:{class}"), Direction::Out)
                            .system(system)
                            .record(&row.object, row.record_id)
                            .detail(json!({ "status": status, "response": body, "attempts": attempts, "outbox_id": row.id }))],
                        now,
                    )
                    .await?;
                    store::bump(&mut tx, "dead_letters", 1).await?;
                }
            }
        }
        for chunk in sent_ids.chunks(1000) {
            let mut q: sqlx::QueryBuilder<sqlx::Sqlite> = sqlx::QueryBuilder::new(
                "UPDATE outbox SET status = 'sent', attempts = attempts + 1, last_error = NULL, sent_at = ",
            );
            q.push_bind(now_s.clone()).push(" WHERE id IN ");
            store::push_id_list(&mut q, chunk);
            q.build().persistent(false).execute(&mut *tx).await?;
            let mut q: sqlx::QueryBuilder<sqlx::Sqlite> = sqlx::QueryBuilder::new(
                "UPDATE dead_letters SET status = 'replayed', updated_at = ",
            );
            q.push_bind(now_s.clone())
                .push(" WHERE status = 'replaying' AND outbox_id IN ");
            store::push_id_list(&mut q, chunk);
            q.build().persistent(false).execute(&mut *tx).await?;
        }
        store::insert_audit(&mut tx, &sent_audit, now).await?;
        if !delivered.is_empty() {
            let ws = self.workspace();
            let mut batch = Batch::new(&ws, now, self.capabilities());
            let records: std::collections::BTreeSet<RecordId> = delivered
                .iter()
                .map(|(_, record_id, _, _)| *record_id)
                .collect();
            batch
                .preload_records(&mut tx, &records.into_iter().collect::<Vec<_>>())
                .await?;
            for (outbox_id, record_id, object, fields) in &delivered {
                batch
                    .converge_target(
                        &mut tx,
                        object,
                        *record_id,
                        system,
                        fields,
                        &format!("converge:{outbox_id}"),
                    )
                    .await?;
            }
            batch.finish(&mut tx).await?;
        }
        // Events held while a write's outcome was unknown go back to the queue once it is known.
        sqlx::query(
            "UPDATE inbox SET status = 'pending' WHERE status = 'held' AND json_extract(detail, '$.awaiting_write') IN (
               SELECT o.id FROM outbox o WHERE o.system_id = ? AND (o.status IN ('sent', 'superseded')
                 OR (o.status = 'dead' AND NOT EXISTS (SELECT 1 FROM dead_letters d WHERE d.outbox_id = o.id
                                                       AND d.error_class = 'retries_exhausted'))))",
        )
        .bind(system)
        .execute(&mut *tx)
        .await?;
        store::bump(&mut tx, "events_out", sent).await?;
        tx.commit().await?;
        drop(_guard);
        if refetched {
            self.inner.inbox_ready.notify_one();
        }
        Ok(())
    }
}

async fn send_one(connector: &dyn crate::connector::Connector, row: &Claimed) -> Outcome {
    let write = WriteRequest {
        object: row.object.clone(),
        payload: row.payload.clone(),
        idempotency_key: row.idempotency_key.clone(),
        if_match: row.if_match,
    };
    let result = match (row.op.as_str(), row.external_id.as_deref()) {
        ("create", _) => connector.create(&write).await,
        ("update", Some(id)) => connector.update(id, &write).await,
        ("delete", Some(id)) => connector.delete(id, &write).await,
        _ => return Outcome::Waiting,
    };
    match result {
        Ok(outcome) => Outcome::Sent(outcome),
        Err(ConnectorError::VersionConflict { .. }) if connector.capabilities().webhooks => {
            Outcome::AwaitEvents
        }
        Err(ConnectorError::VersionConflict { .. }) => match row.external_id.as_deref() {
            Some(id) => match connector.get(&row.object, id).await {
                Ok(record) => Outcome::Refetched(record),
                Err(e) => Outcome::Failed(e),
            },
            None => Outcome::Failed(ConnectorError::VersionConflict {
                system: String::new(),
            }),
        },
        Err(e) => Outcome::Failed(e),
    }
}
