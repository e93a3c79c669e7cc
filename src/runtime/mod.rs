//! The engine runtime: inbox -> merge -> outbox, on tokio, with every state change and queue
//! move of a batch committed in one SQLite transaction.
//!
//! Ingest stores a change event durably before it is acknowledged. The applier takes pending
//! events in arrival order in batches; events of one record are merged in order against the
//! state the previous one left, and the batch's plans commit together (golden, shadows,
//! links, exceptions, outbox rows, audit, inbox status). Delivery lives in
//! [`crate::delivery`]. A crash at any point leaves either the whole batch or none of it.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};
use sqlx::{Row, SqliteConnection, SqlitePool};
use tokio::sync::{Mutex, Notify};
use tokio_util::sync::CancellationToken;

use crate::audit::{AuditEntry, Direction};
use crate::clock::{Clock, Jitter, SystemClock};
use crate::connector::Connector;
use crate::error::{EngineError, Result};
use crate::merge::{self, Identity, Incoming, Plan, RecordState};
use crate::model::{
    ChangeEvent, ChangeOp, Fields, ObjectSchema, RecordId, SourceVersion, WorkspaceConfig,
};
use crate::store::{self, ts};
use crate::transform::normalize_match_key;
use crate::workspace::Workspace;

mod apply;
mod batch;
mod enqueue;
mod flush;
mod ingest;
mod loops;
mod outbox;
mod schedule;

pub use schedule::{ScheduledChange, ScheduledFilter, ScheduledPage, ScheduledStatus};

/// Tunables; tests shrink the delays.
#[derive(Debug, Clone)]
pub struct Settings {
    pub batch_size: usize,
    /// Writes a system may have claimed and not yet committed. Claimed writes keep leaving
    /// while an applier batch holds the engine's write lock (outcomes wait for it, sends do
    /// not), so this is how many writes can go out during one batch.
    pub send_batch: usize,
    /// Writes a system may have in flight at once.
    pub send_concurrency: usize,
    pub backoff_base: Duration,
    pub backoff_cap: Duration,
    pub idle_poll: Duration,
    /// How often the dashboard's metrics are sampled.
    pub metrics_every: Duration,
    /// How often a summary line is logged.
    pub summary_every: Duration,
    /// How long the HTTP server (webhooks, console) waits for slow clients.
    pub http: crate::server::HttpTimeouts,
    /// How long history (applied events, acknowledged writes, metric samples) is kept.
    pub retention: crate::retention::Retention,
    /// The circuit breaker of a system whose config sets none.
    pub breaker: crate::model::BreakerConfig,
    /// Up to this many changes waiting for their dates, a batch loads them all with one query;
    /// past it (year-end rises dated for thousands of people), it looks up, by index, only the
    /// records it touches.
    pub load_all_waiting_up_to: usize,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            batch_size: 2_000,
            send_batch: 1_000,
            send_concurrency: 8,
            backoff_base: Duration::from_millis(500),
            backoff_cap: Duration::from_secs(300),
            idle_poll: Duration::from_millis(100),
            metrics_every: Duration::from_secs(5),
            summary_every: Duration::from_secs(60),
            http: crate::server::HttpTimeouts::default(),
            retention: crate::retention::Retention::default(),
            breaker: crate::model::BreakerConfig::default(),
            load_all_waiting_up_to: 500,
        }
    }
}

/// How the engine is built: its clock, jitter and tunables.
pub struct EngineOptions {
    pub clock: Arc<dyn Clock>,
    pub jitter: Jitter,
    pub settings: Settings,
    /// Where connectors look up their secrets by name.
    pub secrets: crate::secrets::SharedSecrets,
}

impl Default for EngineOptions {
    fn default() -> Self {
        Self {
            clock: Arc::new(SystemClock),
            jitter: Jitter::from_entropy(),
            settings: Settings::default(),
            secrets: Arc::new(crate::secrets::Keychain::default()),
        }
    }
}

/// What ingesting one event did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IngestOutcome {
    Accepted(i64),
    /// The (system, event key) was seen before; recorded, not applied again.
    Duplicate(i64),
}

/// The sync engine. Cheap to clone; all clones share state.
#[derive(Clone)]
pub struct Engine {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub pool: SqlitePool,
    pub clock: Arc<dyn Clock>,
    pub jitter: Jitter,
    pub settings: Settings,
    pub secrets: crate::secrets::SharedSecrets,
    /// The origin each stored secret was saved for; connectors send a secret only there.
    pub origins: Arc<crate::secrets::OriginBindings>,
    pub workspace: RwLock<Arc<Workspace>>,
    pub connectors: RwLock<HashMap<String, Arc<dyn Connector>>>,
    pub limiters: std::sync::Mutex<HashMap<String, Arc<crate::delivery::RateLimiter>>>,
    /// SQLite has one writer; taking this before a write transaction avoids busy upgrades.
    pub write_lock: Mutex<()>,
    /// Held for the length of a write transaction by the writers that run often (storing
    /// events, an applier batch writing what it decided, a delivery round's claim and commit),
    /// so they queue here in order and are woken at once, instead of in SQLite's busy handler,
    /// which sleeps up to 100 ms between tries. Taken after `write_lock`, never before it.
    pub sqlite_writer: Arc<Mutex<()>>,
    /// Events waiting to be stored together in the next ingest transaction.
    pub ingest_queue: ingest::IngestQueue,
    pub inbox_ready: Notify,
    pub outbox_ready: Notify,
    /// While paused, events are still received and stored, but not applied or delivered.
    pub paused: std::sync::atomic::AtomicBool,
    /// Reconciliation runs being worked on in this process (one worker per run).
    pub reconciling: std::sync::Mutex<std::collections::HashSet<i64>>,
    /// How each system's reads (polls) went since this process started, for its health.
    pub reads: std::sync::Mutex<HashMap<String, crate::health::ReadHealth>>,
    /// Each system's loops, once started.
    pub system_loops: std::sync::Mutex<Option<loops::SystemLoops>>,
    /// What is measured in process for Prometheus (propagation lag).
    pub telemetry: crate::telemetry::Telemetry,
}

impl Engine {
    /// Opens the SQLite file (migrating it), loads the workspace stored in it, and puts
    /// writes left in flight by a crash back in the queue.
    pub async fn open(path: &Path, options: EngineOptions) -> Result<Self> {
        let pool = store::open(path).await?;
        let config = store::load_workspace(&pool).await?;
        let workspace = Workspace::new(config)?;
        let origins = Arc::new(crate::secrets::OriginBindings::load(&pool).await?);
        let engine = Self {
            inner: Arc::new(Inner {
                origins,
                pool,
                clock: options.clock,
                jitter: options.jitter,
                settings: options.settings,
                secrets: options.secrets,
                workspace: RwLock::new(Arc::new(workspace)),
                connectors: RwLock::new(HashMap::new()),
                limiters: std::sync::Mutex::new(HashMap::new()),
                write_lock: Mutex::new(()),
                sqlite_writer: Arc::new(Mutex::new(())),
                ingest_queue: ingest::IngestQueue::default(),
                inbox_ready: Notify::new(),
                outbox_ready: Notify::new(),
                paused: std::sync::atomic::AtomicBool::new(false),
                reconciling: std::sync::Mutex::new(std::collections::HashSet::new()),
                reads: std::sync::Mutex::new(HashMap::new()),
                telemetry: crate::telemetry::Telemetry::default(),
                system_loops: std::sync::Mutex::new(None),
            }),
        };
        // A state file from before secrets were bound: its saved systems' secrets are bound
        // to where they already point.
        engine.bind_secrets(&engine.workspace().config).await?;
        let built = engine.build_connectors(&engine.workspace())?;
        engine.install_connectors(built);
        engine.recover().await?;
        Ok(engine)
    }

    pub fn pool(&self) -> &SqlitePool {
        &self.inner.pool
    }

    pub fn now(&self) -> DateTime<Utc> {
        self.inner.clock.now()
    }

    /// What is measured in process for Prometheus.
    pub fn telemetry(&self) -> &crate::telemetry::Telemetry {
        &self.inner.telemetry
    }

    pub fn workspace(&self) -> Arc<Workspace> {
        match self.inner.workspace.read() {
            Ok(w) => w.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Validates a workspace config, stores it, and makes it current.
    pub async fn apply_workspace(&self, config: &WorkspaceConfig) -> Result<()> {
        self.apply_workspace_audited(config, &[]).await
    }

    /// [`Engine::apply_workspace`], writing `audit` (who changed what) in the same
    /// transaction as the stored config: a change is never stored without its entry.
    pub async fn apply_workspace_audited(
        &self,
        config: &WorkspaceConfig,
        audit: &[crate::audit::AuditEntry],
    ) -> Result<()> {
        let workspace = Workspace::new(config.clone())?;
        // Connectors are built first: a config they refuse is never stored nor made current.
        let built = self.build_connectors(&workspace)?;
        {
            let _guard = self.inner.write_lock.lock().await;
            let now = self.now();
            let mut tx = crate::store::begin_write(&self.inner.pool).await?;
            store::save_workspace_in(&mut tx, config, now).await?;
            // Systems left out of the config are removed: kept (history refers to them) but
            // no longer loaded.
            let mut q: sqlx::QueryBuilder<sqlx::Sqlite> = sqlx::QueryBuilder::new(
                "UPDATE systems SET removed_at = CASE WHEN id IN (SELECT value FROM json_each(",
            );
            let ids: Vec<&str> = config.systems.iter().map(|s| s.id.as_str()).collect();
            q.push_bind(serde_json::to_string(&ids)?)
                .push(")) THEN NULL ELSE COALESCE(removed_at, ")
                .push_bind(store::ts(now))
                .push(") END");
            q.build().execute(&mut *tx).await?;
            store::insert_audit(&mut tx, audit, now).await?;
            tx.commit().await?;
            self.bind_secrets(config).await?;
        }
        match self.inner.workspace.write() {
            Ok(mut w) => *w = Arc::new(workspace),
            Err(poisoned) => *poisoned.into_inner() = Arc::new(workspace),
        }
        self.install_connectors(built);
        self.sync_system_loops();
        Ok(())
    }

    /// The origins each secret a system sends was saved for: a secret not bound yet is bound
    /// to the origin of the first saved system that names it; a bound one stays where it is.
    async fn bind_secrets(&self, config: &WorkspaceConfig) -> Result<()> {
        let now = store::ts(self.now());
        for system in &config.systems {
            for (name, origin) in crate::connectors::sent_secrets(system) {
                self.inner
                    .origins
                    .bind_if_unbound(&self.inner.pool, &name, &origin, &now)
                    .await?;
            }
        }
        Ok(())
    }

    /// Where the stored secrets may be sent.
    pub fn secret_origins(&self) -> Arc<crate::secrets::OriginBindings> {
        self.inner.origins.clone()
    }

    fn build_connectors(&self, ws: &Workspace) -> Result<Vec<(String, Arc<dyn Connector>)>> {
        let mut built = Vec::new();
        for system in &ws.config.systems {
            // A config a connector refuses is the admin's to fix (422), not an engine fault.
            let connector = crate::connectors::build_with(
                system,
                &self.inner.secrets,
                self.inner.origins.clone(),
            )
            .map_err(|e| match e {
                crate::connector::ConnectorError::Config(m) => EngineError::Config(m),
                other => other.into(),
            })?;
            if let Some(c) = connector {
                built.push((system.id.clone(), c));
            }
        }
        Ok(built)
    }

    fn install_connectors(&self, built: Vec<(String, Arc<dyn Connector>)>) {
        let mut connectors = self
            .inner
            .connectors
            .write()
            .unwrap_or_else(|p| p.into_inner());
        for (id, c) in built {
            connectors.insert(id, c);
        }
        // Rate limits may have changed with the config.
        self.inner
            .limiters
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
    }

    /// Registers the connector of a system whose config says `external` (tests, embedders).
    pub fn register_connector(&self, system: &str, connector: Arc<dyn Connector>) {
        let mut connectors = self
            .inner
            .connectors
            .write()
            .unwrap_or_else(|p| p.into_inner());
        connectors.insert(system.to_owned(), connector);
    }

    pub fn connector(&self, system: &str) -> Option<Arc<dyn Connector>> {
        self.inner
            .connectors
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(system)
            .cloned()
    }

    /// After a crash: writes that were in flight go back to pending (they are re-sent with the
    /// same idempotency key), replays that were under way stay under way.
    async fn recover(&self) -> Result<()> {
        let _guard = self.inner.write_lock.lock().await;
        let now = self.now();
        // An attempt the stopped engine made may still be on its way (held in a proxy, queued
        // in the system): each waits out its system's request timeout, so that a lookup does
        // not miss a create that lands after it, and a re-sent write is not overwritten by
        // its own older attempt.
        let waits: Vec<(String, String)> = self
            .inner
            .connectors
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .filter(|(_, c)| !c.request_timeout().is_zero())
            .map(|(system, c)| {
                let wait = chrono::Duration::from_std(c.request_timeout()).unwrap_or_default();
                (system.clone(), ts(now + wait))
            })
            .collect();
        let mut tx = self.inner.pool.begin().await?;
        for (system, not_before) in &waits {
            sqlx::query(
                "UPDATE outbox SET next_attempt_at = MAX(next_attempt_at, ?)
                 WHERE status = 'in_flight' AND system_id = ?",
            )
            .bind(not_before)
            .bind(system)
            .execute(&mut *tx)
            .await?;
        }
        let moved = crate::delivery::requeue_possibly_sent(&mut *tx, None).await?;
        tx.commit().await?;
        if moved > 0 {
            tracing::info!(
                writes = moved,
                "resuming writes that were in flight when the engine stopped, each once its \
                 system's request timeout has passed"
            );
        }
        Ok(())
    }

    /// Applies one batch of pending inbox events. Returns how many events it took.
    pub async fn process_inbox(&self) -> Result<usize> {
        let _guard = self.inner.write_lock.lock().await;
        // Changes whose effective date has come join the inbox first, behind what is there.
        self.release_due_changes().await?;
        let rows = sqlx::query(
            "SELECT id, system_id, event_key, object, external_id, op, payload, source_version, etag, source_ts, received_at,
               scheduled_change_id,
               CASE WHEN scheduled_change_id IS NULL THEN NULL
                    ELSE (SELECT fields FROM scheduled_changes s WHERE s.id = inbox.scheduled_change_id) END AS scheduled_fields
             FROM inbox WHERE status = 'pending' ORDER BY id LIMIT ?",
        )
        .bind(i64::try_from(self.inner.settings.batch_size).unwrap_or(1000))
        .fetch_all(&self.inner.pool)
        .await?;
        if rows.is_empty() {
            return Ok(0);
        }
        let ws = self.workspace();
        let now = self.now();
        // Planning reads without a transaction; SQLite's write lock is taken only to write
        // what the batch decided, so webhooks are stored meanwhile instead of waiting for it.
        let mut conn = store::LazyWriteConnection::acquire(&self.inner.pool).await?;
        let mut batch = self
            .batch(&ws, now)
            .outside_transaction(self.inner.sqlite_writer.clone());
        let events = rows
            .iter()
            .map(InboxEvent::from_row)
            .collect::<Result<Vec<_>>>()?;
        conn.arm();
        batch.preload_links(conn.connection(), &events).await?;
        for event in &events {
            batch.apply(conn.connection(), event).await?;
        }
        batch.finish(conn.connection()).await?;
        conn.commit().await?;
        drop(batch.writer_guard.take());
        drop(_guard);
        if batch.wrote {
            self.inner.outbox_ready.notify_waiters();
        }
        // Freeing a batch's thousands of cached records costs as much as applying a tenth of
        // them: done beside the next batch rather than before it.
        let taken = rows.len();
        let cached = std::mem::take(&mut batch.records);
        drop(tokio::task::spawn_blocking(move || {
            drop((cached, events, rows))
        }));
        Ok(taken)
    }

    /// A batch of changes over `ws` at `now`, with the connectors' capabilities and the
    /// default circuit breaker.
    pub(crate) fn batch<'w>(&self, ws: &'w Workspace, now: DateTime<Utc>) -> Batch<'w> {
        let mut batch = Batch::new(ws, now, self.capabilities());
        batch.breaker = self.inner.settings.breaker;
        batch.load_all_waiting_up_to = self.inner.settings.load_all_waiting_up_to;
        batch
    }

    pub(crate) fn capabilities(&self) -> HashMap<String, crate::connector::Capabilities> {
        self.inner
            .connectors
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .map(|(k, c)| (k.clone(), c.capabilities()))
            .collect()
    }

    /// Processes the inbox and delivers the outbox until both are empty (waiting for retries
    /// that are due within `timeout`). For tests, one-shot runs and the benchmark.
    pub async fn run_until_idle(&self, timeout: Duration) -> Result<()> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            while self.process_inbox().await? > 0 {}
            let mut sent = 0;
            for system in self
                .workspace()
                .config
                .systems
                .iter()
                .map(|s| s.id.clone())
                .collect::<Vec<_>>()
            {
                sent += self.deliver(&system).await?;
            }
            if sent > 0 {
                continue;
            }
            let pending_inbox: i64 =
                sqlx::query_scalar("SELECT COUNT(*) FROM inbox WHERE status = 'pending'")
                    .fetch_one(&self.inner.pool)
                    .await?;
            let next_due: Option<String> = sqlx::query_scalar(
                "SELECT MIN(next_attempt_at) FROM outbox WHERE status IN ('pending', 'in_flight')",
            )
            .fetch_one(&self.inner.pool)
            .await?;
            if pending_inbox == 0 && next_due.is_none() {
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(EngineError::Conflict(format!(
                    "not idle after {timeout:?}: {pending_inbox} events pending, next write due {next_due:?}"
                )));
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Pauses or resumes applying and delivering (events keep arriving into the inbox).
    pub fn set_paused(&self, paused: bool) {
        self.inner
            .paused
            .store(paused, std::sync::atomic::Ordering::SeqCst);
        if !paused {
            self.inner.inbox_ready.notify_one();
            self.inner.outbox_ready.notify_waiters();
        }
    }

    /// Writes audit entries that go with no stored change of their own (tokens, secrets,
    /// pausing).
    pub async fn record_audit(&self, audit: &[crate::audit::AuditEntry]) -> Result<()> {
        let _guard = self.inner.write_lock.lock().await;
        let mut tx = store::begin_write(&self.inner.pool).await?;
        store::insert_audit(&mut tx, audit, self.now()).await?;
        Ok(tx.commit().await?)
    }

    pub fn is_paused(&self) -> bool {
        self.inner.paused.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Starts the applier and one sender per system on tokio; they stop when `cancel` fires.
    pub fn start(&self, cancel: CancellationToken) -> RunningEngine {
        let mut tasks = Vec::new();
        let applier = self.clone();
        let token = cancel.clone();
        tasks.push(tokio::spawn(
            async move { applier.applier_loop(token).await },
        ));
        *self
            .inner
            .system_loops
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) =
            Some(loops::SystemLoops::new(cancel.clone()));
        self.sync_system_loops();
        let summarizer = self.clone();
        let token = cancel.clone();
        let every = self.inner.settings.summary_every;
        tasks.push(tokio::spawn(async move {
            summarizer.summary_loop(every, token).await
        }));
        let sampler = self.clone();
        let token = cancel.clone();
        tasks.push(tokio::spawn(async move {
            let mut tick = tokio::time::interval(sampler.inner.settings.metrics_every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
            loop {
                tokio::select! {
                    () = token.cancelled() => break,
                    _ = tick.tick() => {
                        if let Err(e) = sampler.sample_metrics().await {
                            tracing::warn!(error = %e, "could not sample metrics");
                        }
                    }
                }
            }
        }));
        let compactor = self.clone();
        let token = cancel.clone();
        tasks.push(tokio::spawn(async move {
            compactor.compaction_loop(token).await
        }));
        RunningEngine {
            engine: self.clone(),
            cancel,
            tasks,
        }
    }

    /// Compacts history on the retention's schedule, the first time soon after start.
    async fn compaction_loop(&self, cancel: CancellationToken) {
        let retention = self.inner.settings.retention;
        let mut tick = tokio::time::interval(retention.every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = cancel.cancelled() => break,
                _ = tick.tick() => match self.compact_history(&retention).await {
                    Ok(done) if done.total() > 0 => tracing::info!(
                        events = done.events,
                        sent_writes = done.sent_writes,
                        metric_samples = done.metric_samples,
                        scheduled_changes = done.scheduled_changes,
                        "compacted history past its retention"
                    ),
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "could not compact history"),
                },
            }
        }
    }

    async fn applier_loop(&self, cancel: CancellationToken) {
        while !cancel.is_cancelled() {
            let result = if self.is_paused() {
                Ok(0)
            } else {
                self.process_inbox().await
            };
            match result {
                Ok(n) if n > 0 => continue,
                Ok(_) => {}
                Err(e) => tracing::error!(error = %e, "applying inbox events failed; retrying"),
            }
            tokio::select! {
                () = cancel.cancelled() => break,
                () = self.inner.inbox_ready.notified() => {}
                () = tokio::time::sleep(self.inner.settings.idle_poll) => {}
            }
        }
    }
}

/// Handle of a started engine: cancels its tasks and waits for them, bounded.
pub struct RunningEngine {
    engine: Engine,
    cancel: CancellationToken,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl RunningEngine {
    /// Stops taking new work, lets the current batch and in-flight sends finish, and waits at
    /// most `grace`. Anything abandoned is safe: an uncommitted batch is re-applied and an
    /// in-flight write re-sent (same idempotency key) on the next start.
    pub async fn shutdown(mut self, grace: Duration) {
        self.cancel.cancel();
        let mut tasks = std::mem::take(&mut self.tasks);
        if let Some(mut loops) = self
            .engine
            .inner
            .system_loops
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take()
        {
            tasks.extend(loops.take_tasks());
        }
        let all = futures::future::join_all(tasks);
        if tokio::time::timeout(grace, all).await.is_err() {
            tracing::warn!("shutdown grace period ran out; unfinished work resumes on next start");
        }
    }
}

impl Drop for RunningEngine {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

/// Event keys of records re-read after a write was refused as out of date.
pub(crate) const REFETCH_PREFIX: &str = "concord-refetch:";

/// A pending inbox row.
struct InboxEvent {
    id: i64,
    system: String,
    object: String,
    external_id: String,
    op: ChangeOp,
    payload: Map<String, Value>,
    version: Option<SourceVersion>,
    etag: Option<String>,
    source_ts: DateTime<Utc>,
    /// When the engine stored it: where the propagation lag of the writes it causes starts.
    received_at: Option<DateTime<Utc>>,
    repair: bool,
    /// A scheduled change released on its date: its id and the canonical values it holds,
    /// which stand in for a payload read through the mapping.
    scheduled: Option<(i64, Fields)>,
}

impl InboxEvent {
    /// The canonical values this event carries: a released change's held values, else the
    /// payload read through the system's mapping.
    fn read(
        &self,
        mapping: &crate::model::Mapping,
        schema: &ObjectSchema,
    ) -> crate::mapping::Inbound {
        match &self.scheduled {
            Some((_, values)) => crate::mapping::Inbound {
                values: values.clone(),
                ..Default::default()
            },
            None => mapping.read(schema, &self.payload),
        }
    }

    fn from_row(row: &sqlx::sqlite::SqliteRow) -> Result<Self> {
        let payload: String = row.get("payload");
        let op: String = row.get("op");
        let source_ts: Option<String> = row.get("source_ts");
        let received: String = row.get("received_at");
        let event_key: String = row.get("event_key");
        let scheduled_id: Option<i64> = row.get("scheduled_change_id");
        let scheduled_fields: Option<String> = row.get("scheduled_fields");
        let scheduled = match (scheduled_id, scheduled_fields) {
            (Some(id), Some(fields)) => Some((id, serde_json::from_str(&fields)?)),
            (Some(id), None) => Some((id, Fields::new())),
            _ => None,
        };
        Ok(Self {
            scheduled,
            repair: event_key.starts_with(REFETCH_PREFIX),
            id: row.get("id"),
            system: row.get("system_id"),
            object: row.get("object"),
            external_id: row.get("external_id"),
            op: if op == "delete" {
                ChangeOp::Delete
            } else {
                ChangeOp::Upsert
            },
            payload: serde_json::from_str(&payload)?,
            version: row.get("source_version"),
            etag: row.get("etag"),
            source_ts: source_ts
                .as_deref()
                .and_then(store::parse_ts)
                .or_else(|| store::parse_ts(&received))
                .unwrap_or_default(),
            received_at: store::parse_ts(&received),
        })
    }
}

/// A record a match-key value names, with the systems that hold it.
type MatchKeyHolder = (RecordId, Vec<String>);

/// A link as the runtime caches it.
#[derive(Debug, Clone)]
struct LinkInfo {
    record_id: RecordId,
    last_version: Option<SourceVersion>,
}

/// The state of one batch: caches of records and links it has touched, so consecutive events
/// of one record see each other's effects before the batch commits.
pub(crate) struct Batch<'w> {
    ws: &'w Workspace,
    /// The circuit breaker of systems whose config sets none.
    breaker: crate::model::BreakerConfig,
    now: DateTime<Utc>,
    caps: HashMap<String, crate::connector::Capabilities>,
    records: HashMap<RecordId, CachedRecord>,
    links: HashMap<(String, String, String), Option<LinkInfo>>,
    noops: i64,
    stale: i64,
    pub wrote: bool,
    /// When the change being applied reached the engine (None: it happens now, e.g. a
    /// steward's decision); written on the writes it queues, to measure propagation lag.
    origin_at: Option<DateTime<Utc>>,
    /// Audit entries and inbox outcomes, written at [`Batch::finish`] many rows per
    /// statement (nothing reads them before the batch commits).
    audit: Vec<AuditEntry>,
    inbox_outcomes: Vec<(i64, &'static str, Option<String>)>,
    /// Per (record, system), the first write whose outcome is unknown, and the records with
    /// writes refused while awaiting that system's events: loaded once per batch (only
    /// delivery adds to either, and it waits for the batch's lock).
    unknown_writes: Option<HashMap<(RecordId, String), i64>>,
    awaiting_event: Option<BTreeSet<(RecordId, String)>>,
    /// Per (record, system), the fields a change waiting for its effective date holds back:
    /// loaded once per batch (or looked up per record, when many wait), kept current as the
    /// batch schedules. Writes of those fields to
    /// that system wait too, as they would overwrite the value it has dated.
    scheduled: Option<schedule::ScheduledCache>,
    /// Up to how many waiting changes [`Batch::scheduled`] loads whole (see [`Settings`]).
    load_all_waiting_up_to: usize,
    /// Source versions seen, per link, written when the batch finishes; what is read from
    /// SQLite before then is overlaid with them.
    pending_versions: HashMap<(String, String, String), (RecordId, SourceVersion)>,
    /// Concurrency tokens events carried, per link, written when the batch finishes.
    pending_etags: HashMap<(String, String, String), String>,
    /// Records this batch created, with whether the batch deleted them again: ids are handed
    /// out from `next_record_id` and the rows written at finish (foreign keys are checked at
    /// commit meanwhile). The batch holds the engine's write lock, so no other writer takes an id.
    new_records: BTreeMap<RecordId, (String, bool)>,
    next_record_id: Option<RecordId>,
    /// Links this batch made, written at finish: (system, object, external id) -> record.
    new_links: BTreeMap<(String, String, String), RecordId>,
    /// Match keys this batch changed, written at finish: per (record, key field), the object
    /// and the value now; and the same as an index from (object, key field, value).
    changed_match_keys: HashMap<(RecordId, String), (String, Option<String>)>,
    match_key_index: HashMap<(String, String, String), BTreeSet<RecordId>>,
    /// What first-contact events read, per inbox id, and the records their match keys found
    /// in SQLite with the systems holding each: looked up for the whole batch at once.
    inbound: HashMap<i64, crate::mapping::Inbound>,
    match_key_rows: HashMap<(String, String, String), Vec<MatchKeyHolder>>,
    /// Outbox rows queued, changed or superseded, written at finish.
    outbox: outbox::OutboxChanges,
    /// Whether the connection the batch is given has its write transaction open. The applier
    /// opens it only when the batch first writes (at finish, unless a rare step writes at
    /// once), so events keep arriving while it plans; see [`Batch::begin_writing`].
    in_transaction: bool,
    /// The engine's `sqlite_writer`, for a batch that begins its own transaction, and the
    /// turn taken on it while the transaction is open.
    writer: Option<Arc<Mutex<()>>>,
    writer_guard: Option<tokio::sync::OwnedMutexGuard<()>>,
}

pub(crate) struct CachedRecord {
    pub(crate) state: RecordState,
    /// System -> external id.
    external: BTreeMap<String, String>,
    versions: BTreeMap<String, Option<SourceVersion>>,
    /// System -> the record's concurrency token there, as last seen.
    etags: BTreeMap<String, Option<String>>,
    dirty_golden: bool,
    dirty_shadows: BTreeSet<String>,
    /// Per target, the record's writes that are not final (pending, in flight or dead), in
    /// queue order: loaded with the record and kept current by the batch, so planning a write
    /// asks SQLite nothing.
    queued: BTreeMap<String, Vec<QueuedWrite>>,
}

/// A write in the outbox that is not final, as the batch knows it.
#[derive(Debug, Clone)]
struct QueuedWrite {
    id: i64,
    op: String,
    status: String,
    attempts: i64,
    /// Whether a dead letter points at it (failed for good, or being replayed).
    dead_letter: bool,
    canonical: Fields,
    base: Fields,
}

impl QueuedWrite {
    /// Still waiting for its first attempt: later changes may be merged into it.
    fn open_to_merge(&self) -> bool {
        self.status == "pending" && self.op != "delete" && self.attempts == 0 && !self.dead_letter
    }

    /// A create already attempted (or failed): the record is being created there.
    fn creating(&self) -> bool {
        self.op == "create"
            && (matches!(self.status.as_str(), "in_flight" | "dead")
                || (self.status == "pending" && (self.attempts > 0 || self.dead_letter)))
    }

    /// On its way to the target: queued or in flight.
    fn outgoing(&self) -> bool {
        matches!(self.status.as_str(), "pending" | "in_flight")
    }
}

impl CachedRecord {
    /// What is on its way to `target`: every queued or in-flight write, in order.
    fn refresh_outgoing(&mut self, target: &str) {
        let mut outgoing = Fields::new();
        for w in self.queued.get(target).into_iter().flatten() {
            if w.outgoing() {
                outgoing.extend(w.canonical.iter().map(|(k, v)| (k.clone(), v.clone())));
            }
        }
        if outgoing.is_empty() {
            self.state.outgoing.remove(target);
        } else {
            self.state.outgoing.insert(target.to_owned(), outgoing);
        }
    }
}

/// Where a record is held: per system, its external id, ordering version and token.
#[derive(Debug, Clone, Default)]
pub(crate) struct RecordLinks {
    external: BTreeMap<String, String>,
    versions: BTreeMap<String, Option<SourceVersion>>,
    etags: BTreeMap<String, Option<String>>,
}

impl CachedRecord {
    fn links_of(&self) -> RecordLinks {
        RecordLinks {
            external: self.external.clone(),
            versions: self.versions.clone(),
            etags: self.etags.clone(),
        }
    }

    /// A record with no stored state yet.
    fn empty(record_id: RecordId) -> Self {
        Self {
            state: RecordState {
                record_id,
                ..RecordState::default()
            },
            external: BTreeMap::new(),
            versions: BTreeMap::new(),
            etags: BTreeMap::new(),
            dirty_golden: false,
            dirty_shadows: BTreeSet::new(),
            queued: BTreeMap::new(),
        }
    }
}

/// Ids per `UPDATE inbox … WHERE id IN (…)` (SQLite allows 32,766 bound values).
const INBOX_IDS_PER_UPDATE: usize = 1000;

/// Whether the same validation problem (record, system, field, message) is already open: a
/// value read again, or a write planned again, does not open a second exception.
async fn open_validation_exists(
    conn: &mut SqliteConnection,
    record_id: RecordId,
    system: &str,
    field: Option<&str>,
    detail: &Value,
) -> Result<bool> {
    let message = detail
        .get("message")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let found: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM exceptions WHERE kind = 'validation' AND status = 'open' AND record_id = ?
           AND system_id = ? AND field IS ? AND json_extract(detail, '$.message') = ?",
    )
    .bind(record_id)
    .bind(system)
    .bind(field)
    .bind(message)
    .fetch_one(&mut *conn)
    .await?;
    Ok(found > 0)
}

#[allow(clippy::too_many_arguments)]
pub(crate) async fn insert_exception(
    conn: &mut SqliteConnection,
    kind: &str,
    object: &str,
    record_id: Option<RecordId>,
    system: Option<&str>,
    field: Option<&str>,
    inbox_id: Option<i64>,
    detail: &Value,
    now: &str,
) -> Result<i64> {
    // Loud failures: every exception opened is one structured line (never a value: they may
    // be sensitive).
    tracing::warn!(
        system = system.unwrap_or("-"),
        record = record_id,
        code = kind,
        field = field.unwrap_or("-"),
        object,
        "exception opened"
    );
    Ok(sqlx::query_scalar(
        "INSERT INTO exceptions (kind, object, record_id, system_id, field, inbox_id, detail, created_at, updated_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
    )
    .bind(kind)
    .bind(object)
    .bind(record_id)
    .bind(system)
    .bind(field)
    .bind(inbox_id)
    .bind(detail.to_string())
    .bind(now)
    .bind(now)
    .fetch_one(&mut *conn)
    .await?)
}

/// Idempotency key of a write: a hash of what identifies it (record, target, operation,
/// values, the version written against, and what caused it).
pub fn idempotency_key(parts: &[&str]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p.as_bytes());
        h.update([0u8]);
    }
    hex::encode(&h.finalize()[..16])
}
