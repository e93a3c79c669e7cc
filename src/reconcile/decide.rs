//! Deciding what a finished listing means: linked records it never showed are read by id
//! one by one and, when gone, deleted by their object's policy, unless more are gone than one
//! run may delete; then nothing is deleted until an admin confirms or dismisses the run.

use serde_json::json;
use sqlx::SqliteConnection;

use super::{ReconcileRun, describe};
use crate::audit::{Actor, AuditEntry, Direction};
use crate::connector::Connector;
use crate::error::{EngineError, Result};
use crate::model::{ChangeEvent, ChangeOp};
use crate::runtime::{Engine, insert_exception};
use crate::store::{self, ts};

impl Engine {
    /// After the listing: linked records it never showed are confirmed gone one by one, then
    /// deleted by their object's policy, or held for an admin when they are too many.
    pub(super) async fn conclude(
        &self,
        id: i64,
        connector: &dyn Connector,
    ) -> Result<ReconcileRun> {
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
        let mut tx = crate::store::begin_write(self.pool()).await?;
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
        let mut tx = crate::store::begin_write(self.pool()).await?;
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
        let mut tx = crate::store::begin_write(self.pool()).await?;
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
