//! Committing a delivery round: every outcome of the round and the state it implies (outbox
//! status, links, shadows, dead letters, exceptions, re-read records queued as inbound changes,
//! audit) in one transaction, so a crash leaves all of it or none.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use serde_json::json;
use sqlx::SqliteConnection;

use super::send::{Claimed, Outcome, Reread, SentRequest};
use crate::audit::{AuditEntry, Direction};
use crate::clock::backoff;
use crate::connector::{ConnectorError, FetchedRecord, WriteOutcome};
use crate::error::Result;
use crate::model::RecordId;
use crate::runtime::{Engine, REFETCH_PREFIX, insert_exception};
use crate::store::{self, ts};

/// Why a write failed for good, as its dead letter says.
struct DeadWrite<'a> {
    class: &'a str,
    status: Option<i64>,
    /// The outbox row's last error.
    message: &'a str,
    /// The system's response (or the engine's reason).
    body: &'a str,
    request: Option<&'a SentRequest>,
}

/// A link a create made: (object, external id, record, version, token).
type NewLink = (String, String, RecordId, Option<i64>, Option<String>);

/// What a round has decided so far, written together when it finishes.
struct Round<'e> {
    engine: &'e Engine,
    system: &'e str,
    now: DateTime<Utc>,
    now_s: String,
    max_attempts: i64,
    max_rereads: i64,
    sent: i64,
    refetched: bool,
    /// Writes whose target now holds their values: (outbox id, record, object, fields).
    delivered: Vec<(i64, RecordId, String, BTreeSet<String>)>,
    sent_ids: Vec<i64>,
    sent_audit: Vec<AuditEntry>,
    /// Links whose version and concurrency token follow a successful write (their re-read
    /// count starts again): (object, external id, version, token).
    link_updates: Vec<(String, String, Option<i64>, Option<String>)>,
    /// Links made by creates, and the values the target now holds (merged into its shadow),
    /// written many rows per statement: (object, external id, record, version, token) and
    /// (record, fields as JSON), in the order the writes were answered.
    new_links: Vec<NewLink>,
    shadow_patches: Vec<(RecordId, String)>,
}

impl Engine {
    /// Writes the outcomes of sent writes and what they imply, in `tx` (the caller holds the
    /// engine's write lock). Returns whether a re-read record was queued as an inbound change,
    /// for the applier to be woken once `tx` commits.
    pub(super) async fn commit_outcomes(
        &self,
        tx: &mut SqliteConnection,
        system: &str,
        results: Vec<(Claimed, Outcome)>,
    ) -> Result<bool> {
        let now = self.now();
        let ws = self.workspace();
        let config = ws.system(system);
        let mut round = Round {
            engine: self,
            system,
            now,
            now_s: ts(now),
            max_attempts: i64::from(config.map_or(8, |s| s.max_attempts)),
            max_rereads: i64::from(config.map_or(5, |s| s.max_rereads)),
            sent: 0,
            refetched: false,
            delivered: Vec::new(),
            sent_ids: Vec::new(),
            sent_audit: Vec::new(),
            link_updates: Vec::new(),
            new_links: Vec::new(),
            shadow_patches: Vec::new(),
        };
        for (row, outcome) in results {
            if !matches!(outcome, Outcome::Sent { .. }) || row.op == "delete" {
                // The rare outcomes read and change links and shadows one by one: they see
                // the successful writes before them.
                round.flush_sent(&mut *tx).await?;
            }
            match outcome {
                Outcome::Waiting => round.waiting(&mut *tx, &row).await?,
                Outcome::Sent {
                    outcome,
                    found_existing,
                } => round.sent(&mut *tx, &row, &outcome, found_existing).await?,
                Outcome::AwaitEvents => round.await_events(&mut *tx, &row).await?,
                Outcome::Refetched(record, why) => {
                    round.refetched(&mut *tx, &row, record, &why).await?;
                }
                Outcome::Failed { error, request } => {
                    round
                        .failed(&mut *tx, &row, &error, request.as_ref())
                        .await?;
                }
            }
        }
        round.finish(&mut *tx).await?;
        Ok(round.refetched)
    }
}

impl Round<'_> {
    async fn waiting(&mut self, tx: &mut SqliteConnection, row: &Claimed) -> Result<()> {
        let later = ts(self.now + chrono::Duration::milliseconds(200));
        sqlx::query("UPDATE outbox SET status = 'pending', next_attempt_at = ? WHERE id = ?")
            .bind(later)
            .bind(row.id)
            .execute(&mut *tx)
            .await?;
        Ok(())
    }

    async fn sent(
        &mut self,
        tx: &mut SqliteConnection,
        row: &Claimed,
        result: &WriteOutcome,
        found_existing: bool,
    ) -> Result<()> {
        self.sent += 1;
        self.sent_ids.push(row.id);
        let system = self.system;
        if row.op == "delete" {
            sqlx::query("UPDATE links SET deleted = 1 WHERE record_id = ? AND system_id = ?")
                .bind(row.record_id)
                .bind(system)
                .execute(&mut *tx)
                .await?;
            self.sent_audit.push(
                AuditEntry::engine("delivered:delete", Direction::Out)
                    .system(system)
                    .record(&row.object, row.record_id),
            );
            return Ok(());
        }
        self.delivered.push((
            row.id,
            row.record_id,
            row.object.clone(),
            row.canonical.keys().cloned().collect(),
        ));
        if row.op == "create" {
            self.new_links.push((
                row.object.clone(),
                result.external_id.clone(),
                row.record_id,
                result.version,
                result.etag.clone(),
            ));
        }
        self.link_updates.push((
            row.object.clone(),
            result.external_id.clone(),
            result.version,
            result.etag.clone(),
        ));
        self.shadow_patches
            .push((row.record_id, serde_json::to_string(&row.canonical)?));
        if found_existing {
            self.sent_audit.push(
                AuditEntry::engine("delivered:create:found_existing", Direction::Out)
                    .system(system)
                    .record(&row.object, row.record_id)
                    .detail(json!({
                        "external_id": result.external_id,
                        "message": "an earlier attempt of this create had reached the system: the record found by its match keys is linked, nothing is created twice",
                    })),
            );
        }
        self.sent_audit.extend(row.canonical.iter().map(|(f, v)| {
            AuditEntry::engine(format!("delivered:{}", row.op), Direction::Out)
                .system(system)
                .record(&row.object, row.record_id)
                .field(f, row.base.get(f), Some(v))
        }));
        Ok(())
    }

    async fn await_events(&mut self, tx: &mut SqliteConnection, row: &Claimed) -> Result<()> {
        if self.reread_limit_passed(tx, row).await? {
            return self.trip_guard(tx, row, &Reread::VersionConflict).await;
        }
        sqlx::query("UPDATE outbox SET status = 'superseded', attempts = attempts + 1, last_error = 'awaiting_event' WHERE id = ?")
            .bind(row.id)
            .execute(&mut *tx)
            .await?;
        self.settle_replay(tx, row.id).await?;
        let last: Option<i64> = sqlx::query_scalar(
            "SELECT last_version FROM links WHERE record_id = ? AND system_id = ? AND deleted = 0",
        )
        .bind(row.record_id)
        .bind(self.system)
        .fetch_optional(&mut *tx)
        .await?
        .flatten();
        if last.is_some_and(|l| row.if_match.is_none_or(|m| l > m)) {
            // The events it waits for were applied already: plan again now.
            sqlx::query("UPDATE outbox SET last_error = 'awaiting_event:done' WHERE id = ?")
                .bind(row.id)
                .execute(&mut *tx)
                .await?;
            self.delivered.push((
                row.id,
                row.record_id,
                row.object.clone(),
                row.canonical.keys().cloned().collect(),
            ));
        }
        Ok(())
    }

    /// The record changed in the target: the write is superseded, the record as read is queued
    /// as an inbound change that re-plans it, unless it keeps changing.
    async fn refetched(
        &mut self,
        tx: &mut SqliteConnection,
        row: &Claimed,
        record: Option<FetchedRecord>,
        why: &Reread,
    ) -> Result<()> {
        self.refetched = true;
        if self.reread_limit_passed(tx, row).await? {
            return self.trip_guard(tx, row, why).await;
        }
        let (rule, message, detail) = match why {
            Reread::VersionConflict => (
                "delivery:version_conflict",
                "the target holds a newer version (412); re-read and merged again".to_owned(),
                json!({ "if_match": row.etag, "outbox_id": row.id }),
            ),
            Reread::ChangedBeforeWrite(fields) => (
                "delivery:changed_before_write",
                format!(
                    "read before writing: {} changed in the target since the engine last read it; merged again",
                    fields.join(", ")
                ),
                json!({ "fields": fields, "outbox_id": row.id }),
            ),
        };
        sqlx::query("UPDATE outbox SET status = 'superseded', attempts = attempts + 1, last_error = ? WHERE id = ?")
            .bind(&message)
            .bind(row.id)
            .execute(&mut *tx)
            .await?;
        self.settle_replay(tx, row.id).await?;
        store::insert_audit(
            tx,
            &[AuditEntry::engine(rule, Direction::Out)
                .system(self.system)
                .record(&row.object, row.record_id)
                .detail(detail)],
            self.now,
        )
        .await?;
        if let Some(fetched) = record {
            // The change happened when the target says it did: last-write-wins compares that.
            let source_ts = fetched
                .modified
                .as_deref()
                .and_then(crate::connectors::rest::parse_time)
                .map_or_else(|| self.now_s.clone(), ts);
            sqlx::query(
                "INSERT OR IGNORE INTO inbox (system_id, event_key, object, external_id, op, payload, source_version, etag, source_ts, received_at)
                 VALUES (?, ?, ?, ?, 'upsert', ?, ?, ?, ?, ?)",
            )
            .bind(self.system)
            .bind(format!(
                "{REFETCH_PREFIX}{}:{}",
                row.id,
                fetched.version.unwrap_or_default()
            ))
            .bind(&row.object)
            .bind(&fetched.external_id)
            .bind(serde_json::to_string(&fetched.record)?)
            .bind(fetched.version)
            .bind(&fetched.etag)
            .bind(source_ts)
            .bind(&self.now_s)
            .execute(&mut *tx)
            .await?;
        }
        Ok(())
    }

    /// Counts one more re-read of the record; true when that passes the system's limit.
    async fn reread_limit_passed(&self, tx: &mut SqliteConnection, row: &Claimed) -> Result<bool> {
        let rereads: Option<i64> = sqlx::query_scalar(
            "UPDATE links SET rereads = rereads + 1 WHERE record_id = ? AND system_id = ? AND deleted = 0
             RETURNING rereads",
        )
        .bind(row.record_id)
        .bind(self.system)
        .fetch_optional(&mut *tx)
        .await?;
        Ok(rereads.is_some_and(|n| n > self.max_rereads))
    }

    /// The loop guard: the record changed under every write in a row. The write becomes a dead
    /// letter, an exception says so, and nothing is re-read or re-sent until the record is
    /// written successfully or a person resolves the exception.
    async fn trip_guard(
        &mut self,
        tx: &mut SqliteConnection,
        row: &Claimed,
        why: &Reread,
    ) -> Result<()> {
        let system = self.system;
        let cause = match why {
            Reread::VersionConflict => "every write was refused as out of date (412)".to_owned(),
            Reread::ChangedBeforeWrite(fields) => {
                format!("{} changed before every write", fields.join(", "))
            }
        };
        let message = format!(
            "this record keeps changing under us in {system}: re-read {} times in a row and {cause}; \
             the write is held as a dead letter",
            self.max_rereads
        );
        let status = matches!(why, Reread::VersionConflict).then_some(412);
        let dead = DeadWrite {
            class: "keeps_changing",
            status,
            message: &message,
            body: &message,
            request: None,
        };
        self.dead_letter(tx, row, &dead).await?;
        let open: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM exceptions WHERE kind = 'unstable_record' AND status = 'open'
               AND record_id = ? AND system_id = ?",
        )
        .bind(row.record_id)
        .bind(system)
        .fetch_one(&mut *tx)
        .await?;
        if open == 0 {
            let detail =
                json!({ "message": message, "outbox_id": row.id, "rereads": self.max_rereads });
            insert_exception(
                tx,
                "unstable_record",
                &row.object,
                Some(row.record_id),
                Some(system),
                None,
                None,
                &detail,
                &self.now_s,
            )
            .await?;
        }
        tracing::warn!(
            system,
            record = row.record_id,
            code = "keeps_changing",
            rereads = self.max_rereads,
            "loop guard: the record keeps changing under our writes; stopped and opened an exception"
        );
        store::insert_audit(
            tx,
            &[AuditEntry::engine("delivery:loop_guard", Direction::Out)
                .system(system)
                .record(&row.object, row.record_id)
                .detail(json!({ "message": message, "outbox_id": row.id }))],
            self.now,
        )
        .await
    }

    async fn failed(
        &mut self,
        tx: &mut SqliteConnection,
        row: &Claimed,
        error: &ConnectorError,
        request: Option<&SentRequest>,
    ) -> Result<()> {
        let attempts = row.attempts + 1;
        let message = error.to_string();
        let exhausted = attempts >= self.max_attempts;
        let answered = match error {
            ConnectorError::Rejected { status, .. } => Some(i64::from(*status)),
            ConnectorError::Retryable { status, .. } => status.map(i64::from),
            ConnectorError::NotFound { .. } => Some(404),
            ConnectorError::VersionConflict { .. } => Some(412),
            _ => None,
        };
        if let (
            ConnectorError::Retryable {
                retry_after,
                status,
                ..
            },
            false,
        ) = (error, exhausted)
        {
            let settings = &self.engine.inner.settings;
            let wait = backoff(
                u32::try_from(attempts).unwrap_or(u32::MAX),
                settings.backoff_base,
                settings.backoff_cap,
                &self.engine.inner.jitter,
            )
            .max(retry_after.unwrap_or_default());
            let next = self.now + chrono::Duration::from_std(wait).unwrap_or_default();
            // No answer at all: the write may have reached the system.
            let unknown = status.is_none();
            sqlx::query(
                "UPDATE outbox SET status = 'pending', attempts = ?, next_attempt_at = ?, last_error = ?,
                   outcome_unknown = MAX(outcome_unknown, ?) WHERE id = ?",
            )
            .bind(attempts)
            .bind(ts(next))
            .bind(&message)
            .bind(i64::from(unknown))
            .bind(row.id)
            .execute(&mut *tx)
            .await?;
            self.attempt_failed(tx, row.id, attempts, answered, &message, Some(next))
                .await?;
            return store::bump_for(tx, "retries", self.system, 1).await;
        }
        self.attempt_failed(tx, row.id, attempts, answered, &message, None)
            .await?;
        let (class, status, body) = match error {
            ConnectorError::Rejected { status, body, .. } => {
                let class = match *status {
                    400 | 422 => "validation",
                    412 => "token_refused",
                    _ => "rejected",
                };
                (class, Some(i64::from(*status)), body.clone())
            }
            ConnectorError::Retryable {
                status, message, ..
            } => ("retries_exhausted", status.map(i64::from), message.clone()),
            ConnectorError::NotFound { .. } => ("not_found", Some(404), message.clone()),
            ConnectorError::VersionConflict { .. } => {
                ("version_conflict", Some(412), message.clone())
            }
            ConnectorError::Config(m) => ("config", None, m.clone()),
        };
        let dead = DeadWrite {
            class,
            status,
            message: &message,
            body: &body,
            request,
        };
        self.dead_letter(tx, row, &dead).await
    }

    /// Records a write as a dead letter (or again, if it was one being replayed), audited and
    /// logged.
    /// Notes a failed attempt for the write's timeline (shown with its dead letter).
    async fn attempt_failed(
        &self,
        tx: &mut SqliteConnection,
        outbox_id: i64,
        attempt: i64,
        status: Option<i64>,
        message: &str,
        retry_at: Option<DateTime<Utc>>,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO write_attempts (outbox_id, attempt, at, status, message, retry_at) VALUES (?, ?, ?, ?, ?, ?)",
        )
        .bind(outbox_id)
        .bind(attempt)
        .bind(&self.now_s)
        .bind(status)
        .bind(crate::health::shorten(message))
        .bind(retry_at.map(ts))
        .execute(&mut *tx)
        .await?;
        Ok(())
    }

    async fn dead_letter(
        &self,
        tx: &mut SqliteConnection,
        row: &Claimed,
        dead: &DeadWrite<'_>,
    ) -> Result<()> {
        let system = self.system;
        let DeadWrite {
            class,
            status,
            body,
            ..
        } = *dead;
        let attempts = row.attempts + 1;
        sqlx::query("UPDATE outbox SET status = 'dead', attempts = ?, last_error = ? WHERE id = ?")
            .bind(attempts)
            .bind(dead.message)
            .bind(row.id)
            .execute(&mut *tx)
            .await?;
        let request = dead.request.map(serde_json::to_string).transpose()?;
        let existing: Option<i64> =
            sqlx::query_scalar("SELECT id FROM dead_letters WHERE outbox_id = ?")
                .bind(row.id)
                .fetch_optional(&mut *tx)
                .await?;
        match existing {
            Some(id) => {
                sqlx::query(
                    "UPDATE dead_letters SET status = 'dead', error_class = ?, response_status = ?, response_body = ?,
                       request = COALESCE(?, request), attempts = attempts + ?, updated_at = ? WHERE id = ?",
                )
                .bind(class)
                .bind(status)
                .bind(body)
                .bind(&request)
                .bind(attempts)
                .bind(&self.now_s)
                .bind(id)
                .execute(&mut *tx)
                .await?;
            }
            None => {
                sqlx::query(
                    "INSERT INTO dead_letters (kind, outbox_id, system_id, record_id, error_class, response_status, response_body, request, attempts, created_at, updated_at)
                     VALUES ('write', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                )
                .bind(row.id)
                .bind(system)
                .bind(row.record_id)
                .bind(class)
                .bind(status)
                .bind(body)
                .bind(&request)
                .bind(attempts)
                .bind(&self.now_s)
                .bind(&self.now_s)
                .execute(&mut *tx)
                .await?;
            }
        }
        tracing::warn!(
            system,
            record = row.record_id,
            code = class,
            status,
            op = %row.op,
            "write failed for good: moved to the dead letters"
        );
        store::insert_audit(
            tx,
            &[AuditEntry::engine(format!("dead_letter:{class}"), Direction::Out)
                .system(system)
                .record(&row.object, row.record_id)
                .detail(json!({ "status": status, "response": body, "attempts": attempts, "outbox_id": row.id }))],
            self.now,
        )
        .await?;
        store::bump_for(tx, "dead_letters", system, 1).await
    }

    /// A write being replayed has settled one way or another: its dead letter is replayed.
    async fn settle_replay(&self, tx: &mut SqliteConnection, outbox_id: i64) -> Result<()> {
        sqlx::query("UPDATE dead_letters SET status = 'replayed', updated_at = ? WHERE outbox_id = ? AND status = 'replaying'")
            .bind(&self.now_s)
            .bind(outbox_id)
            .execute(&mut *tx)
            .await?;
        Ok(())
    }

    /// Writes what the round collected: sent writes and their audit, link versions and
    /// tokens, the records delivered writes leave behind, held events, counters.
    /// Writes the links and shadows of the successful writes so far.
    async fn flush_sent(&mut self, tx: &mut SqliteConnection) -> Result<()> {
        let system = self.system;
        // Seven values a row, far below SQLite's limit of 32,766 per statement.
        for chunk in std::mem::take(&mut self.new_links).chunks(1000) {
            let mut q: sqlx::QueryBuilder<sqlx::Sqlite> = sqlx::QueryBuilder::new(
                "INSERT INTO links (system_id, object, external_id, record_id, last_version, etag, created_at) ",
            );
            q.push_values(
                chunk,
                |mut row, (object, external_id, record_id, version, etag)| {
                    row.push_bind(system)
                        .push_bind(object.clone())
                        .push_bind(external_id.clone())
                        .push_bind(*record_id)
                        .push_bind(*version)
                        .push_bind(etag.clone())
                        .push_bind(self.now_s.clone());
                },
            );
            q.push(
                " ON CONFLICT(system_id, object, external_id) DO UPDATE SET record_id = excluded.record_id, deleted = 0",
            );
            q.build()
                .persistent(chunk.len() == 1)
                .execute(&mut *tx)
                .await?;
        }
        // Rows of one statement are applied in order: a record written twice in a round has
        // both patches merged, the later last.
        for chunk in std::mem::take(&mut self.shadow_patches).chunks(1000) {
            let mut q: sqlx::QueryBuilder<sqlx::Sqlite> = sqlx::QueryBuilder::new(
                "INSERT INTO shadows (system_id, record_id, fields, updated_at) ",
            );
            q.push_values(chunk, |mut row, (record_id, fields)| {
                row.push_bind(system)
                    .push_bind(*record_id)
                    .push_bind(fields.clone())
                    .push_bind(self.now_s.clone());
            });
            q.push(
                " ON CONFLICT(system_id, record_id) DO UPDATE SET fields = json_patch(fields, excluded.fields),
                   updated_at = excluded.updated_at",
            );
            q.build()
                .persistent(chunk.len() == 1)
                .execute(&mut *tx)
                .await?;
        }
        Ok(())
    }

    async fn finish(&mut self, tx: &mut SqliteConnection) -> Result<()> {
        self.flush_sent(tx).await?;
        let system = self.system;
        for chunk in self.sent_ids.chunks(1000) {
            let mut q: sqlx::QueryBuilder<sqlx::Sqlite> = sqlx::QueryBuilder::new(
                "UPDATE outbox SET status = 'sent', attempts = attempts + 1, last_error = NULL, outcome_unknown = 0, sent_at = ",
            );
            q.push_bind(self.now_s.clone()).push(" WHERE id IN ");
            store::push_id_list(&mut q, chunk)?;
            q.push(" RETURNING COALESCE(origin_at, created_at)");
            let origins: Vec<String> = q.build_query_scalar().fetch_all(&mut *tx).await?;
            // Observed before the commit: a commit that fails sends the write again, and its
            // lag is observed again then (rare, and the later figure is the true one).
            let lag = self
                .engine
                .inner
                .telemetry
                .propagation_lag
                .with_label_values(&[system]);
            for origin in origins.iter().filter_map(|o| store::parse_ts(o)) {
                lag.observe(((self.now - origin).num_milliseconds().max(0)) as f64 / 1000.0);
            }
            let mut q: sqlx::QueryBuilder<sqlx::Sqlite> = sqlx::QueryBuilder::new(
                "UPDATE dead_letters SET status = 'replayed', updated_at = ",
            );
            q.push_bind(self.now_s.clone())
                .push(" WHERE status = 'replaying' AND outbox_id IN ");
            store::push_id_list(&mut q, chunk)?;
            q.build().execute(&mut *tx).await?;
        }
        // Four values a link, far below SQLite's limit per statement.
        for chunk in self.link_updates.chunks(1000) {
            let mut q: sqlx::QueryBuilder<sqlx::Sqlite> = sqlx::QueryBuilder::new(
                "UPDATE links SET etag = v.column4, rereads = 0,
                   last_version = CASE WHEN v.column3 IS NULL THEN links.last_version
                                       ELSE MAX(COALESCE(links.last_version, v.column3), v.column3) END
                 FROM (VALUES ",
            );
            let mut rows = q.separated(", ");
            for (object, external_id, version, etag) in chunk {
                rows.push("(")
                    .push_bind_unseparated(object.clone())
                    .push_unseparated(", ")
                    .push_bind_unseparated(external_id.clone())
                    .push_unseparated(", ")
                    .push_bind_unseparated(*version)
                    .push_unseparated(", ")
                    .push_bind_unseparated(etag.clone())
                    .push_unseparated(")");
            }
            rows.push_unseparated(") AS v WHERE links.system_id = ");
            q.push_bind(system)
                .push(" AND links.object = v.column1 AND links.external_id = v.column2");
            q.build().persistent(false).execute(&mut *tx).await?;
        }
        store::insert_audit(tx, &std::mem::take(&mut self.sent_audit), self.now).await?;
        if !self.delivered.is_empty() {
            let ws = self.engine.workspace();
            let mut batch = self.engine.batch(&ws, self.now);
            let records: BTreeSet<RecordId> = self.delivered.iter().map(|d| d.1).collect();
            batch
                .preload_records(tx, &records.into_iter().collect::<Vec<_>>())
                .await?;
            for (outbox_id, record_id, object, fields) in &self.delivered {
                batch
                    .converge_target(
                        tx,
                        object,
                        *record_id,
                        system,
                        fields,
                        &format!("converge:{outbox_id}"),
                    )
                    .await?;
            }
            batch.finish(tx).await?;
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
        store::bump_for(tx, "events_out", system, self.sent).await?;
        Ok(())
    }
}
