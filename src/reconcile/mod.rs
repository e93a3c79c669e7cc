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
use serde_json::Value;
use sqlx::{Row, SqliteConnection};
use tokio_util::sync::CancellationToken;

use crate::connector::{Connector, FetchedRecord};
use crate::connectors::rest::event_from_fetched;
use crate::error::{EngineError, Result};
use crate::model::{ChangeEvent, Fields, RecordId};
use crate::runtime::Engine;
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

mod decide;

/// How soon a run paused by an unavailable system is picked up again.
pub const RESUME_AFTER: Duration = Duration::from_secs(30);

const RUN_COLUMNS: &str = "SELECT id, system_id, object, trigger, status, started_at, updated_at, finished_at,
    listed, total, changed, unknown, linked, vanished, deleted, max_delete_share, error, decided_by, page_token,
    listing_done FROM reconcile_runs";

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

pub(crate) fn describe(run: &ReconcileRun) -> String {
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
        let mut tx = crate::store::begin_write(self.pool()).await?;
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
        if row.get::<i64, _>("listing_done") != 0 {
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
                let mut tx = crate::store::begin_write(self.pool()).await?;
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

    /// Whether `system` was ever listed to its end, by a reconciliation or by polling.
    async fn listed_in_full(&self, system: &str) -> Result<bool> {
        Ok(sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM reconcile_runs WHERE system_id = ?1 AND listing_done = 1)
                 OR EXISTS (SELECT 1 FROM poll_cursors WHERE system_id = ?1 AND listing_done = 1)",
        )
        .bind(system)
        .fetch_one(self.pool())
        .await?)
    }

    /// Picks up unfinished runs at once, then reconciles `system` every `interval` until
    /// cancelled. A system never listed in full is listed at once: its creates wait for that
    /// listing, which would otherwise come only after a whole interval. A run paused because
    /// the system was unavailable is picked up again after [`RESUME_AFTER`]. Failures are
    /// logged; the next tick tries again.
    pub(crate) async fn reconcile_loop(
        &self,
        system: String,
        interval: Option<Duration>,
        cancel: CancellationToken,
    ) {
        let mut scheduled =
            interval.is_some() && !self.listed_in_full(&system).await.unwrap_or(true);
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
        store::push_id_list(&mut q, chunk)?;
        for row in q.build().fetch_all(&mut *conn).await? {
            out.insert(row.get(0), serde_json::from_str(&row.get::<String, _>(1))?);
        }
    }
    Ok(out)
}

/// Whether a run is over.
pub fn finished(run: &ReconcileRun) -> bool {
    run.status != "running"
}
