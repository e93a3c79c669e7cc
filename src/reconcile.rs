//! Reconciliation: a system's full listing compared with what the engine knows of it (its
//! links and shadows), so that what polling and webhooks never report is still seen.
//!
//! - A listed record whose values its shadow does not explain becomes a change event; one the
//!   engine never linked becomes a first-contact event. The merge decides from there.
//! - A record linked before the run started that the listing never showed, and that a read by
//!   id confirms gone, becomes a delete event, handled by the object's delete policy.
//! - A run that finds more than `max_delete_share` of the linked records gone deletes nothing:
//!   it waits for an admin to confirm (or dismiss), with an exception and a warning saying so.
//!
//! Runs are resumable: each page's events, the ids it saw and the next page token commit in
//! one transaction, and a run left `running` by a crash picks up from its page.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use serde::Serialize;
use serde_json::{Value, json};
use sqlx::{Row, SqliteConnection};
use tokio_util::sync::CancellationToken;

use crate::audit::{Actor, AuditEntry, Direction};
use crate::connector::{Connector, FetchedRecord};
use crate::connectors::rest::event_from_fetched;
use crate::error::{EngineError, Result};
use crate::model::{ChangeEvent, ChangeOp, Fields, RecordId};
use crate::runtime::{Engine, insert_exception};
use crate::store::{self, parse_ts, ts};

/// One reconciliation run of one system's object, as the console shows it.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct ReconcileRun {
    pub id: i64,
    pub system: String,
    pub object: String,
    /// `schedule`, `resume`, or the person who asked for it.
    pub trigger: String,
    /// `running`, `needs_confirmation`, `done`, `failed` or `dismissed`.
    pub status: String,
    pub started_at: String,
    pub updated_at: String,
    pub finished_at: Option<String>,
    pub listed: u64,
    /// How many records the system says it holds, when it says.
    pub total: Option<u64>,
    /// Listed records whose values the engine's shadows did not explain (queued as changes).
    pub changed: u64,
    /// Listed records the engine had never linked (queued as first contacts).
    pub unknown: u64,
    /// Records linked to this system when the run started.
    pub linked: u64,
    /// Linked records the listing no longer has (confirmed by a read by id).
    pub vanished: u64,
    /// Delete events queued.
    pub deleted: u64,
    pub max_delete_share: f64,
    /// Seconds left at the run's rate, while it lists and the total is known.
    pub eta_secs: Option<f64>,
    pub error: Option<String>,
    /// Who confirmed or dismissed a run that waited for an admin.
    pub decided_by: Option<String>,
    pub message: String,
}

/// What one page of a listing held, against what the engine knows.
#[derive(Debug, Default)]
struct PageFindings {
    events: Vec<ChangeEvent>,
    seen: Vec<String>,
    changed: u64,
    unknown: u64,
}

/// How soon a run paused by an unavailable system is picked up again.
pub const RESUME_AFTER: Duration = Duration::from_secs(30);

const RUN_COLUMNS: &str = "SELECT id, system_id, object, trigger, status, started_at, updated_at, finished_at,
    listed, total, changed, unknown, linked, vanished, deleted, max_delete_share, error, decided_by, page_token
    FROM reconcile_runs";

fn run_from_row(row: &sqlx::sqlite::SqliteRow) -> ReconcileRun {
    let count = |name: &str| u64::try_from(row.get::<i64, _>(name)).unwrap_or(0);
    let mut run = ReconcileRun {
        id: row.get("id"),
        system: row.get("system_id"),
        object: row.get("object"),
        trigger: row.get("trigger"),
        status: row.get("status"),
        started_at: row.get("started_at"),
        updated_at: row.get("updated_at"),
        finished_at: row.get("finished_at"),
        listed: count("listed"),
        total: row
            .get::<Option<i64>, _>("total")
            .and_then(|t| u64::try_from(t).ok()),
        changed: count("changed"),
        unknown: count("unknown"),
        linked: count("linked"),
        vanished: count("vanished"),
        deleted: count("deleted"),
        max_delete_share: row.get("max_delete_share"),
        eta_secs: None,
        error: row.get("error"),
        decided_by: row.get("decided_by"),
        message: String::new(),
    };
    run.eta_secs = eta(&run);
    run.message = describe(&run);
    run
}

/// Seconds left at the rate so far, while listing with a known total.
fn eta(run: &ReconcileRun) -> Option<f64> {
    if run.status != "running" {
        return None;
    }
    let total = run.total?;
    let started = parse_ts(&run.started_at)?;
    let updated = parse_ts(&run.updated_at)?;
    let secs = (updated - started).num_milliseconds() as f64 / 1000.0;
    if run.listed == 0 || secs <= 0.0 {
        return None;
    }
    let rate = run.listed as f64 / secs;
    Some(total.saturating_sub(run.listed) as f64 / rate)
}

fn describe(run: &ReconcileRun) -> String {
    let share = if run.linked == 0 {
        0.0
    } else {
        run.vanished as f64 / run.linked as f64
    };
    match run.status.as_str() {
        "running" => format!(
            "listing {}: {} of {} records",
            run.system,
            run.listed,
            run.total.map_or_else(|| "?".to_owned(), |t| t.to_string())
        ),
        "needs_confirmation" => format!(
            "{} of {} linked records ({:.0}%) are gone from {}, more than the {:.0}% one run may \
             delete: nothing was deleted; an admin confirms the deletes or dismisses them",
            run.vanished,
            run.linked,
            share * 100.0,
            run.system,
            run.max_delete_share * 100.0
        ),
        "failed" => format!(
            "failed: {}",
            run.error.as_deref().unwrap_or("unknown error")
        ),
        "dismissed" => format!(
            "{} vanished records were kept, by {}",
            run.vanished,
            run.decided_by.as_deref().unwrap_or("an admin")
        ),
        _ => format!(
            "listed {}: {} changed, {} new, {} deleted",
            run.listed, run.changed, run.unknown, run.deleted
        ),
    }
}

impl Engine {
    /// Starts a run for each object `system` maps, or returns the run already under way.
    pub async fn begin_reconcile(&self, system: &str, trigger: &str) -> Result<Vec<i64>> {
        let ws = self.workspace();
        ws.system(system)
            .ok_or_else(|| EngineError::NotFound(format!("system '{system}'")))?;
        let connector = self
            .connector(system)
            .ok_or_else(|| EngineError::Invalid(format!("system '{system}' has no connector")))?;
        let schedule = connector.reconcile_schedule().ok_or_else(|| {
            EngineError::Invalid(format!("system '{system}' cannot list its records"))
        })?;
        let objects: Vec<String> = ws
            .config
            .mappings
            .iter()
            .filter(|m| m.system == system)
            .map(|m| m.object.clone())
            .collect();
        let now_s = ts(self.now());
        let _guard = self.inner.write_lock.lock().await;
        let mut tx = self.pool().begin().await?;
        let mut ids = Vec::with_capacity(objects.len());
        for object in objects {
            let running: Option<i64> = sqlx::query_scalar(
                "SELECT id FROM reconcile_runs WHERE system_id = ? AND object = ? AND status = 'running'",
            )
            .bind(system)
            .bind(&object)
            .fetch_optional(&mut *tx)
            .await?;
            if let Some(id) = running {
                ids.push(id);
                continue;
            }
            let linked: i64 = sqlx::query_scalar(
                "SELECT COUNT(*) FROM links WHERE system_id = ? AND object = ? AND deleted = 0",
            )
            .bind(system)
            .bind(&object)
            .fetch_one(&mut *tx)
            .await?;
            let id: i64 = sqlx::query_scalar(
                "INSERT INTO reconcile_runs (system_id, object, trigger, status, started_at, updated_at, linked, max_delete_share)
                 VALUES (?, ?, ?, 'running', ?, ?, ?, ?) RETURNING id",
            )
            .bind(system)
            .bind(&object)
            .bind(trigger)
            .bind(&now_s)
            .bind(&now_s)
            .bind(linked)
            .bind(schedule.max_delete_share)
            .fetch_one(&mut *tx)
            .await?;
            ids.push(id);
        }
        tx.commit().await?;
        Ok(ids)
    }

    /// Starts (or picks up) a reconciliation of `system` and runs it to its end.
    pub async fn reconcile(
        &self,
        system: &str,
        trigger: &str,
        on_page: impl FnMut(&ReconcileRun),
    ) -> Result<Vec<ReconcileRun>> {
        let ids = self.begin_reconcile(system, trigger).await?;
        self.run_reconcile(&ids, on_page).await
    }

    /// Runs the given runs to their end in the background of a request: a run paused by an
    /// unavailable system is tried again every [`RESUME_AFTER`], at most 20 times.
    pub async fn finish_reconcile(&self, ids: &[i64]) -> Result<Vec<ReconcileRun>> {
        let mut runs = self.run_reconcile(ids, |_| {}).await?;
        for _ in 0..20 {
            let paused: Vec<i64> = runs
                .iter()
                .filter(|r| r.status == "running")
                .map(|r| r.id)
                .collect();
            if paused.is_empty() {
                break;
            }
            tokio::time::sleep(RESUME_AFTER).await;
            runs = self.run_reconcile(&paused, |_| {}).await?;
        }
        Ok(runs)
    }

    /// Runs the given runs to their end (each from where it stands). A run already being
    /// worked on in this process is left to that worker and reported as it stands.
    pub async fn run_reconcile(
        &self,
        ids: &[i64],
        mut on_page: impl FnMut(&ReconcileRun),
    ) -> Result<Vec<ReconcileRun>> {
        let mut out = Vec::with_capacity(ids.len());
        for &id in ids {
            let mine = self
                .inner
                .reconciling
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .insert(id);
            if !mine {
                out.push(self.reconcile_run(id).await?);
                continue;
            }
            let result = self.drive_run(id, &mut on_page).await;
            self.inner
                .reconciling
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .remove(&id);
            out.push(result?);
        }
        Ok(out)
    }

    async fn drive_run(
        &self,
        id: i64,
        on_page: &mut impl FnMut(&ReconcileRun),
    ) -> Result<ReconcileRun> {
        let run = self.reconcile_run(id).await?;
        if run.status != "running" {
            return Ok(run);
        }
        let connector = self.connector(&run.system).ok_or_else(|| {
            EngineError::Invalid(format!("system '{}' has no connector", run.system))
        })?;
        match self.list_pages(id, connector.as_ref(), on_page).await {
            Ok(()) => self.conclude(id, connector.as_ref()).await,
            Err(EngineError::Connector(e)) if e.is_retryable() => {
                // Picked up from its page soon (see `reconcile_loop`), or when started again.
                tracing::warn!(
                    system = %run.system, run = id, code = "reconcile_unavailable", error = %e,
                    "reconciliation paused: the system is unavailable; it resumes from its page"
                );
                sqlx::query("UPDATE reconcile_runs SET error = ?, updated_at = ? WHERE id = ?")
                    .bind(format!(
                        "paused: {e}; it resumes from page {} on its own within {} s, or when started again",
                        run.listed,
                        RESUME_AFTER.as_secs()
                    ))
                    .bind(ts(self.now()))
                    .bind(id)
                    .execute(self.pool())
                    .await?;
                self.reconcile_run(id).await
            }
            Err(e) => {
                let message = e.to_string();
                sqlx::query(
                    "UPDATE reconcile_runs SET status = 'failed', error = ?, updated_at = ?, finished_at = ? WHERE id = ?",
                )
                .bind(&message)
                .bind(ts(self.now()))
                .bind(ts(self.now()))
                .bind(id)
                .execute(self.pool())
                .await?;
                tracing::warn!(
                    system = %run.system, run = id, code = "reconcile_failed", error = %message,
                    "reconciliation failed"
                );
                self.reconcile_run(id).await
            }
        }
    }

    /// Lists the rest of a run's pages, committing each page's findings with the run's place.
    async fn list_pages(
        &self,
        id: i64,
        connector: &dyn Connector,
        on_page: &mut impl FnMut(&ReconcileRun),
    ) -> Result<()> {
        let row = sqlx::query(&format!("{RUN_COLUMNS} WHERE id = ?"))
            .bind(id)
            .fetch_one(self.pool())
            .await?;
        let run = run_from_row(&row);
        let mut token: Option<String> = row.get("page_token");
        let listing_done: i64 =
            sqlx::query_scalar("SELECT listing_done FROM reconcile_runs WHERE id = ?")
                .bind(id)
                .fetch_one(self.pool())
                .await?;
        if listing_done != 0 {
            return Ok(());
        }
        let limiter = self.limiter(&run.system);
        loop {
            if let Some(l) = &limiter {
                l.acquire().await;
            }
            let page = connector
                .list_page(&run.object, token.as_deref())
                .await
                .map_err(EngineError::Connector)?;
            let findings = self
                .page_findings(id, &run.system, &run.object, page.records)
                .await?;
            let done = page.next.is_none();
            {
                let _guard = self.inner.write_lock.lock().await;
                let mut tx = self.pool().begin().await?;
                self.insert_events(&mut tx, &findings.events).await?;
                for chunk in findings.seen.chunks(500) {
                    let mut q: sqlx::QueryBuilder<sqlx::Sqlite> = sqlx::QueryBuilder::new(
                        "INSERT OR IGNORE INTO reconcile_seen (run_id, external_id) ",
                    );
                    q.push_values(chunk, |mut b, external_id| {
                        b.push_bind(id).push_bind(external_id.clone());
                    });
                    q.build().persistent(false).execute(&mut *tx).await?;
                }
                sqlx::query(
                    "UPDATE reconcile_runs SET page_token = ?, listing_done = ?, listed = listed + ?,
                       changed = changed + ?, unknown = unknown + ?, total = COALESCE(?, total), updated_at = ?,
                       error = NULL
                     WHERE id = ?",
                )
                .bind(if done { None } else { page.next.clone() })
                .bind(i64::from(done))
                .bind(i64::try_from(findings.seen.len()).unwrap_or(i64::MAX))
                .bind(i64::try_from(findings.changed).unwrap_or(i64::MAX))
                .bind(i64::try_from(findings.unknown).unwrap_or(i64::MAX))
                .bind(page.total.and_then(|t| i64::try_from(t).ok()))
                .bind(ts(self.now()))
                .bind(id)
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
            }
            if !findings.events.is_empty() {
                self.inner.inbox_ready.notify_one();
            }
            on_page(&self.reconcile_run(id).await?);
            if done {
                return Ok(());
            }
            token = page.next;
        }
    }

    /// Which listed records the engine's shadows do not explain.
    async fn page_findings(
        &self,
        run: i64,
        system: &str,
        object: &str,
        records: Vec<FetchedRecord>,
    ) -> Result<PageFindings> {
        let ws = self.workspace();
        let (Some(schema), Some(mapping)) = (ws.object(object), ws.mapping(system, object)) else {
            return Err(EngineError::Invalid(format!(
                "system '{system}' has no mapping for {object}"
            )));
        };
        let ids: Vec<String> = records.iter().map(|r| r.external_id.clone()).collect();
        let mut conn = self.pool().acquire().await?;
        let links = linked_records(&mut conn, system, object, &ids).await?;
        let record_ids: Vec<RecordId> = links.values().copied().collect();
        let shadows = shadows_of(&mut conn, system, &record_ids).await?;
        drop(conn);
        let empty = Fields::new();
        let mut findings = PageFindings::default();
        for record in records {
            findings.seen.push(record.external_id.clone());
            let differs = match links.get(&record.external_id) {
                None => {
                    findings.unknown += 1;
                    true
                }
                Some(record_id) => {
                    let shadow = shadows.get(record_id).unwrap_or(&empty);
                    let mut inbound = mapping.read(schema, &record.record);
                    inbound.settle(shadow, shadow);
                    let changed = inbound
                        .values
                        .iter()
                        .any(|(f, v)| shadow.get(f).unwrap_or(&Value::Null) != v);
                    findings.changed += u64::from(changed);
                    changed
                }
            };
            if differs {
                let mut event = event_from_fetched(system, object, record);
                event.event_key = format!("reconcile:{run}:{}", event.event_key);
                findings.events.push(event);
            }
        }
        Ok(findings)
    }

    /// After the listing: linked records it never showed are confirmed gone one by one, then
    /// deleted by their object's policy, or held for an admin when they are too many.
    async fn conclude(&self, id: i64, connector: &dyn Connector) -> Result<ReconcileRun> {
        let run = self.reconcile_run(id).await?;
        let missing = self.unseen_links(&run).await?;
        let limit = (run.max_delete_share * run.linked as f64).floor();
        if missing.len() as f64 > limit && !missing.is_empty() {
            return self.hold_for_confirmation(&run, missing.len()).await;
        }
        let gone = confirm_gone(connector, &run.object, missing).await?;
        self.queue_deletes(&run, &gone, None).await
    }

    /// Linked records created before the run that the run never saw.
    async fn unseen_links(&self, run: &ReconcileRun) -> Result<Vec<String>> {
        Ok(sqlx::query_scalar(
            "SELECT l.external_id FROM links l
             WHERE l.system_id = ? AND l.object = ? AND l.deleted = 0 AND l.created_at < ?
               AND NOT EXISTS (SELECT 1 FROM reconcile_seen s WHERE s.run_id = ? AND s.external_id = l.external_id)
             ORDER BY l.external_id",
        )
        .bind(&run.system)
        .bind(&run.object)
        .bind(&run.started_at)
        .bind(run.id)
        .fetch_all(self.pool())
        .await?)
    }

    async fn hold_for_confirmation(
        &self,
        run: &ReconcileRun,
        vanished: usize,
    ) -> Result<ReconcileRun> {
        let now = self.now();
        let now_s = ts(now);
        let vanished = i64::try_from(vanished).unwrap_or(i64::MAX);
        let _guard = self.inner.write_lock.lock().await;
        let mut tx = self.pool().begin().await?;
        sqlx::query(
            "UPDATE reconcile_runs SET status = 'needs_confirmation', vanished = ?, updated_at = ? WHERE id = ?",
        )
        .bind(vanished)
        .bind(&now_s)
        .bind(run.id)
        .execute(&mut *tx)
        .await?;
        let held = ReconcileRun {
            status: "needs_confirmation".into(),
            vanished: u64::try_from(vanished).unwrap_or(0),
            ..run.clone()
        };
        let message = describe(&held);
        let detail = json!({
            "run": run.id,
            "vanished": vanished,
            "linked": run.linked,
            "max_delete_share": run.max_delete_share,
            "message": message,
        });
        insert_exception(
            &mut tx,
            "reconcile_guard",
            &run.object,
            None,
            Some(&run.system),
            None,
            None,
            &detail,
            &now_s,
        )
        .await?;
        store::insert_audit(
            &mut tx,
            &[AuditEntry::engine("reconcile:guard", Direction::In)
                .system(&run.system)
                .detail(detail)],
            now,
        )
        .await?;
        tx.commit().await?;
        tracing::warn!(
            system = %run.system, run = run.id, code = "reconcile_guard", vanished, linked = run.linked,
            "reconciliation found too many records gone: nothing deleted until an admin confirms"
        );
        self.reconcile_run(run.id).await
    }

    /// Queues a delete event for each record confirmed gone, and closes the run.
    async fn queue_deletes(
        &self,
        run: &ReconcileRun,
        gone: &[String],
        actor: Option<&Actor>,
    ) -> Result<ReconcileRun> {
        let now = self.now();
        let now_s = ts(now);
        let events: Vec<ChangeEvent> = gone
            .iter()
            .map(|external_id| ChangeEvent {
                system: run.system.clone(),
                object: run.object.clone(),
                external_id: external_id.clone(),
                op: ChangeOp::Delete,
                record: serde_json::Map::new(),
                version: None,
                etag: None,
                source_ts: Some(now),
                event_key: format!("reconcile-delete:{}:{external_id}", run.id),
            })
            .collect();
        let deleted = i64::try_from(events.len()).unwrap_or(i64::MAX);
        let _guard = self.inner.write_lock.lock().await;
        let mut tx = self.pool().begin().await?;
        self.insert_events(&mut tx, &events).await?;
        sqlx::query(
            "UPDATE reconcile_runs SET status = 'done', vanished = MAX(vanished, ?), deleted = ?, decided_by = ?,
               updated_at = ?, finished_at = ? WHERE id = ?",
        )
        .bind(deleted)
        .bind(deleted)
        .bind(actor.map(|a| a.name.clone()))
        .bind(&now_s)
        .bind(&now_s)
        .bind(run.id)
        .execute(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM reconcile_seen WHERE run_id = ?")
            .bind(run.id)
            .execute(&mut *tx)
            .await?;
        let mut entry = AuditEntry::engine(
            if actor.is_some() {
                "reconcile:confirmed"
            } else {
                "reconcile:done"
            },
            Direction::In,
        )
        .system(&run.system)
        .detail(json!({
            "run": run.id, "listed": run.listed, "changed": run.changed, "unknown": run.unknown,
            "deleted": deleted, "gone": gone,
        }));
        if let Some(a) = actor {
            entry = entry.by(a.clone());
            close_guard_exception(&mut tx, run.id, "resolved", a, "confirmed", &now_s).await?;
        }
        store::insert_audit(&mut tx, &[entry], now).await?;
        tx.commit().await?;
        drop(_guard);
        if !events.is_empty() {
            self.inner.inbox_ready.notify_one();
        }
        tracing::info!(
            system = %run.system, run = run.id, listed = run.listed, changed = run.changed,
            unknown = run.unknown, deleted, "reconciliation done"
        );
        self.reconcile_run(run.id).await
    }

    /// An admin confirms the deletes a run held back: the records still gone are deleted.
    pub async fn confirm_reconcile(&self, id: i64, actor: &Actor) -> Result<ReconcileRun> {
        let run = self.reconcile_run(id).await?;
        if run.status != "needs_confirmation" {
            return Err(EngineError::Conflict(format!(
                "reconciliation {id} is {}, not waiting for a confirmation",
                run.status
            )));
        }
        let connector = self.connector(&run.system).ok_or_else(|| {
            EngineError::Invalid(format!("system '{}' has no connector", run.system))
        })?;
        let missing = self.unseen_links(&run).await?;
        let gone = confirm_gone(connector.as_ref(), &run.object, missing).await?;
        self.queue_deletes(&run, &gone, Some(actor)).await
    }

    /// An admin keeps the records a run found gone: nothing is deleted.
    pub async fn dismiss_reconcile(
        &self,
        id: i64,
        note: &str,
        actor: &Actor,
    ) -> Result<ReconcileRun> {
        let run = self.reconcile_run(id).await?;
        if run.status != "needs_confirmation" {
            return Err(EngineError::Conflict(format!(
                "reconciliation {id} is {}, not waiting for a confirmation",
                run.status
            )));
        }
        let now = self.now();
        let now_s = ts(now);
        let _guard = self.inner.write_lock.lock().await;
        let mut tx = self.pool().begin().await?;
        sqlx::query(
            "UPDATE reconcile_runs SET status = 'dismissed', decided_by = ?, updated_at = ?, finished_at = ? WHERE id = ?",
        )
        .bind(&actor.name)
        .bind(&now_s)
        .bind(&now_s)
        .bind(id)
        .execute(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM reconcile_seen WHERE run_id = ?")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        close_guard_exception(&mut tx, id, "discarded", actor, note, &now_s).await?;
        store::insert_audit(
            &mut tx,
            &[
                AuditEntry::engine("reconcile:dismissed", Direction::Internal)
                    .by(actor.clone())
                    .system(&run.system)
                    .detail(json!({ "run": id, "vanished": run.vanished, "note": note })),
            ],
            now,
        )
        .await?;
        tx.commit().await?;
        drop(_guard);
        self.reconcile_run(id).await
    }

    pub async fn reconcile_run(&self, id: i64) -> Result<ReconcileRun> {
        let row = sqlx::query(&format!("{RUN_COLUMNS} WHERE id = ?"))
            .bind(id)
            .fetch_optional(self.pool())
            .await?
            .ok_or_else(|| EngineError::NotFound(format!("reconciliation {id}")))?;
        Ok(run_from_row(&row))
    }

    /// The newest runs first, of one system or all.
    pub async fn reconcile_runs(
        &self,
        system: Option<&str>,
        limit: i64,
    ) -> Result<Vec<ReconcileRun>> {
        let rows = sqlx::query(&format!(
            "{RUN_COLUMNS} WHERE (? IS NULL OR system_id = ?) ORDER BY id DESC LIMIT ?"
        ))
        .bind(system)
        .bind(system)
        .bind(limit.clamp(1, 1000))
        .fetch_all(self.pool())
        .await?;
        Ok(rows.iter().map(run_from_row).collect())
    }

    /// Runs of `system` left running (by a crash or a pause).
    async fn unfinished_runs(&self, system: &str) -> Result<Vec<i64>> {
        Ok(sqlx::query_scalar(
            "SELECT id FROM reconcile_runs WHERE system_id = ? AND status = 'running' ORDER BY id",
        )
        .bind(system)
        .fetch_all(self.pool())
        .await?)
    }

    /// Picks up unfinished runs at once, then reconciles `system` every `interval` until
    /// cancelled. A run paused because the system was unavailable is picked up again after
    /// [`RESUME_AFTER`]. Failures are logged; the next tick tries again.
    pub(crate) async fn reconcile_loop(
        &self,
        system: String,
        interval: Option<Duration>,
        cancel: CancellationToken,
    ) {
        let mut scheduled = false;
        loop {
            if !self.is_paused() {
                let unfinished = match self.unfinished_runs(&system).await {
                    Ok(ids) => ids,
                    Err(e) => {
                        tracing::warn!(system, error = %e, "could not look for unfinished reconciliations");
                        Vec::new()
                    }
                };
                let result = if !unfinished.is_empty() {
                    self.run_reconcile(&unfinished, |_| {}).await.map(|_| ())
                } else if scheduled {
                    self.reconcile(&system, "schedule", |_| {})
                        .await
                        .map(|_| ())
                } else {
                    Ok(())
                };
                if let Err(e) = result {
                    tracing::warn!(system, code = "reconcile_failed", error = %e, "reconciliation failed");
                }
            }
            let paused = self
                .unfinished_runs(&system)
                .await
                .is_ok_and(|ids| !ids.is_empty());
            let wait = match (paused, interval) {
                (true, Some(i)) => RESUME_AFTER.min(i),
                (true, None) => RESUME_AFTER,
                (false, Some(i)) => i,
                (false, None) => return,
            };
            scheduled = !paused;
            tokio::select! {
                () = cancel.cancelled() => return,
                () = tokio::time::sleep(wait) => {}
            }
        }
    }
}

/// Links of these external ids: external id -> record.
async fn linked_records(
    conn: &mut SqliteConnection,
    system: &str,
    object: &str,
    ids: &[String],
) -> Result<HashMap<String, RecordId>> {
    let mut out = HashMap::with_capacity(ids.len());
    for chunk in ids.chunks(500) {
        let mut q: sqlx::QueryBuilder<sqlx::Sqlite> = sqlx::QueryBuilder::new(
            "SELECT external_id, record_id FROM links WHERE deleted = 0 AND system_id = ",
        );
        q.push_bind(system.to_owned())
            .push(" AND object = ")
            .push_bind(object.to_owned())
            .push(" AND external_id IN (");
        let mut list = q.separated(", ");
        for id in chunk {
            list.push_bind(id.clone());
        }
        list.push_unseparated(")");
        for row in q.build().persistent(false).fetch_all(&mut *conn).await? {
            out.insert(row.get(0), row.get(1));
        }
    }
    Ok(out)
}

/// The system's shadows of these records.
async fn shadows_of(
    conn: &mut SqliteConnection,
    system: &str,
    records: &[RecordId],
) -> Result<BTreeMap<RecordId, Fields>> {
    let mut out = BTreeMap::new();
    for chunk in records.chunks(1000) {
        let mut q: sqlx::QueryBuilder<sqlx::Sqlite> =
            sqlx::QueryBuilder::new("SELECT record_id, fields FROM shadows WHERE system_id = ");
        q.push_bind(system.to_owned()).push(" AND record_id IN ");
        store::push_id_list(&mut q, chunk);
        for row in q.build().persistent(false).fetch_all(&mut *conn).await? {
            out.insert(row.get(0), serde_json::from_str(&row.get::<String, _>(1))?);
        }
    }
    Ok(out)
}

/// The records a listing missed that a read by id confirms gone: paging can skip a record
/// while others are deleted or added, and that must never delete it.
async fn confirm_gone(
    connector: &dyn Connector,
    object: &str,
    missing: Vec<String>,
) -> Result<Vec<String>> {
    let mut gone = Vec::with_capacity(missing.len());
    for external_id in missing {
        match connector.get(object, &external_id).await {
            Ok(None) => gone.push(external_id),
            Ok(Some(_)) => {}
            Err(e) => return Err(EngineError::Connector(e)),
        }
    }
    Ok(gone)
}

async fn close_guard_exception(
    tx: &mut SqliteConnection,
    run: i64,
    status: &str,
    actor: &Actor,
    resolution: &str,
    now: &str,
) -> Result<()> {
    sqlx::query(
        "UPDATE exceptions SET status = ?, resolved_at = ?, resolved_by = ?, resolution = ?, updated_at = ?
         WHERE kind = 'reconcile_guard' AND status = 'open' AND json_extract(detail, '$.run') = ?",
    )
    .bind(status)
    .bind(now)
    .bind(&actor.name)
    .bind(resolution)
    .bind(now)
    .bind(run)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// Whether a run is over.
pub fn finished(run: &ReconcileRun) -> bool {
    run.status != "running"
}
