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
use crate::merge::{self, FieldMeta, Identity, Incoming, Plan, RecordState};
use crate::model::{
    ChangeEvent, ChangeOp, Fields, ObjectSchema, RecordId, SourceVersion, WorkspaceConfig,
};
use crate::store::{self, ts};
use crate::transform::normalize_match_key;
use crate::workspace::Workspace;

/// Tunables; tests shrink the delays.
#[derive(Debug, Clone)]
pub struct Settings {
    pub batch_size: usize,
    pub send_batch: usize,
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
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            batch_size: 2_000,
            send_batch: 200,
            send_concurrency: 8,
            backoff_base: Duration::from_millis(500),
            backoff_cap: Duration::from_secs(300),
            idle_poll: Duration::from_millis(100),
            metrics_every: Duration::from_secs(5),
            summary_every: Duration::from_secs(60),
            http: crate::server::HttpTimeouts::default(),
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
    pub inbox_ready: Notify,
    pub outbox_ready: Notify,
    /// While paused, events are still received and stored, but not applied or delivered.
    pub paused: std::sync::atomic::AtomicBool,
    /// Reconciliation runs being worked on in this process (one worker per run).
    pub reconciling: std::sync::Mutex<std::collections::HashSet<i64>>,
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
                inbox_ready: Notify::new(),
                outbox_ready: Notify::new(),
                paused: std::sync::atomic::AtomicBool::new(false),
                reconciling: std::sync::Mutex::new(std::collections::HashSet::new()),
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
        // They may have reached the system: they count as attempted, so they are re-sent
        // unchanged (never merged into) and the record's events wait for their outcome.
        // A create among them is looked up in its target before it is sent again.
        let moved = sqlx::query(
            "UPDATE outbox SET status = 'pending', attempts = attempts + 1, outcome_unknown = 1 WHERE status = 'in_flight'",
        )
            .execute(&self.inner.pool)
            .await?
            .rows_affected();
        if moved > 0 {
            tracing::info!(
                writes = moved,
                "resuming writes that were in flight when the engine stopped"
            );
        }
        Ok(())
    }

    /// Stores one change event durably. Duplicates (same system and event key) are counted
    /// and not applied again.
    pub async fn ingest(&self, event: &ChangeEvent) -> Result<IngestOutcome> {
        let outcomes = self.ingest_many(std::slice::from_ref(event)).await?;
        outcomes
            .into_iter()
            .next()
            .ok_or_else(|| EngineError::Invalid("no event".into()))
    }

    /// Stores change events durably in one transaction: all or none.
    pub async fn ingest_many(&self, events: &[ChangeEvent]) -> Result<Vec<IngestOutcome>> {
        self.check_events(events)?;
        let _guard = self.inner.write_lock.lock().await;
        let mut tx = crate::store::begin_write(&self.inner.pool).await?;
        let outcomes = self.insert_events(&mut tx, events).await?;
        tx.commit().await?;
        drop(_guard);
        self.inner.inbox_ready.notify_one();
        Ok(outcomes)
    }

    pub(crate) fn check_events(&self, events: &[ChangeEvent]) -> Result<()> {
        let ws = self.workspace();
        for e in events {
            if ws.system(&e.system).is_none() {
                return Err(EngineError::NotFound(format!("system '{}'", e.system)));
            }
            if ws.object(&e.object).is_none() {
                return Err(EngineError::NotFound(format!("object '{}'", e.object)));
            }
            if e.external_id.is_empty() || e.event_key.is_empty() {
                return Err(EngineError::Invalid(
                    "an event needs an external_id and an event_key".into(),
                ));
            }
        }
        Ok(())
    }

    /// Inserts checked events into the inbox inside the caller's transaction.
    pub(crate) async fn insert_events(
        &self,
        tx: &mut SqliteConnection,
        events: &[ChangeEvent],
    ) -> Result<Vec<IngestOutcome>> {
        let now = ts(self.now());
        let payloads = events
            .iter()
            .map(|e| serde_json::to_string(&e.record))
            .collect::<Result<Vec<_>, _>>()?;
        // Many events per statement: each statement is a round trip to SQLite's thread.
        // RETURNING gives each row's id and how many times its key was seen; its order is not
        // promised, so rows are matched back by key, a key repeated in one call in the order
        // its duplicate count rose.
        let mut returned: HashMap<(String, String), Vec<(i64, i64)>> = HashMap::new();
        for (chunk, payloads) in events
            .chunks(INGEST_ROWS_PER_STATEMENT)
            .zip(payloads.chunks(INGEST_ROWS_PER_STATEMENT))
        {
            let mut q: sqlx::QueryBuilder<sqlx::Sqlite> = sqlx::QueryBuilder::new(
                "INSERT INTO inbox (system_id, event_key, object, external_id, op, payload, source_version, etag, source_ts, received_at) ",
            );
            q.push_values(chunk.iter().zip(payloads), |mut row, (e, payload)| {
                row.push_bind(&e.system)
                    .push_bind(&e.event_key)
                    .push_bind(&e.object)
                    .push_bind(&e.external_id)
                    .push_bind(e.op.as_str())
                    .push_bind(payload)
                    .push_bind(e.version)
                    .push_bind(&e.etag)
                    .push_bind(e.source_ts.map(ts))
                    .push_bind(&now);
            });
            q.push(
                " ON CONFLICT(system_id, event_key) DO UPDATE SET duplicates = duplicates + 1
                 RETURNING id, duplicates, system_id, event_key",
            );
            let rows = q
                .build()
                .persistent(chunk.len() == INGEST_ROWS_PER_STATEMENT || chunk.len() == 1)
                .fetch_all(&mut *tx)
                .await?;
            for row in rows {
                returned
                    .entry((row.get(2), row.get(3)))
                    .or_default()
                    .push((row.get(0), row.get(1)));
            }
        }
        for seen in returned.values_mut() {
            // Popped from the end: the lowest count first.
            seen.sort_by_key(|(_, dups)| std::cmp::Reverse(*dups));
        }
        let mut outcomes = Vec::with_capacity(events.len());
        let mut duplicates = 0;
        for e in events {
            let (id, dups) = returned
                .get_mut(&(e.system.clone(), e.event_key.clone()))
                .and_then(Vec::pop)
                .ok_or_else(|| {
                    EngineError::Invalid(format!("event '{}' was not stored", e.event_key))
                })?;
            if dups > 0 {
                duplicates += 1;
                outcomes.push(IngestOutcome::Duplicate(id));
            } else {
                outcomes.push(IngestOutcome::Accepted(id));
            }
        }
        store::bump(
            tx,
            "events_in",
            i64::try_from(events.len()).unwrap_or(i64::MAX),
        )
        .await?;
        store::bump(tx, "duplicates", duplicates).await?;
        Ok(outcomes)
    }

    /// Applies one batch of pending inbox events. Returns how many events it took.
    pub async fn process_inbox(&self) -> Result<usize> {
        let _guard = self.inner.write_lock.lock().await;
        let rows = sqlx::query(
            "SELECT id, system_id, event_key, object, external_id, op, payload, source_version, etag, source_ts, received_at
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
        let mut tx = crate::store::begin_write(&self.inner.pool).await?;
        let mut batch = Batch::new(&ws, now, self.capabilities());
        let events = rows
            .iter()
            .map(InboxEvent::from_row)
            .collect::<Result<Vec<_>>>()?;
        batch.preload_links(&mut tx, &events).await?;
        for event in &events {
            batch.apply(&mut tx, event).await?;
        }
        batch.finish(&mut tx).await?;
        tx.commit().await?;
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
        let mut conn = self.inner.pool.acquire().await?;
        store::insert_audit(&mut conn, audit, self.now()).await
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
        for system in self.workspace().config.systems.iter().map(|s| s.id.clone()) {
            if let Some(interval) = self.connector(&system).and_then(|c| c.poll_interval()) {
                let poller = self.clone();
                let token = cancel.clone();
                let id = system.clone();
                tasks.push(tokio::spawn(async move {
                    poller.poll_loop(id, interval, token).await
                }));
            }
            if let Some(schedule) = self.connector(&system).and_then(|c| c.reconcile_schedule()) {
                let reconciler = self.clone();
                let token = cancel.clone();
                let id = system.clone();
                tasks.push(tokio::spawn(async move {
                    reconciler
                        .reconcile_loop(id, schedule.interval, token)
                        .await
                }));
            }
            let sender = self.clone();
            let token = cancel.clone();
            tasks.push(tokio::spawn(async move {
                sender.sender_loop(system, token).await
            }));
        }
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
        RunningEngine { cancel, tasks }
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

    async fn sender_loop(&self, system: String, cancel: CancellationToken) {
        while !cancel.is_cancelled() {
            let result = if self.is_paused() {
                Ok(0)
            } else {
                self.deliver(&system).await
            };
            match result {
                Ok(n) if n > 0 => continue,
                Ok(_) => {}
                Err(e) => tracing::error!(system, error = %e, "delivering writes failed; retrying"),
            }
            tokio::select! {
                () = cancel.cancelled() => break,
                () = self.inner.outbox_ready.notified() => {}
                () = tokio::time::sleep(self.inner.settings.idle_poll) => {}
            }
        }
    }
}

/// Handle of a started engine: cancels its tasks and waits for them, bounded.
pub struct RunningEngine {
    cancel: CancellationToken,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl RunningEngine {
    /// Stops taking new work, lets the current batch and in-flight sends finish, and waits at
    /// most `grace`. Anything abandoned is safe: an uncommitted batch is re-applied and an
    /// in-flight write re-sent (same idempotency key) on the next start.
    pub async fn shutdown(mut self, grace: Duration) {
        self.cancel.cancel();
        let all = futures::future::join_all(std::mem::take(&mut self.tasks));
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
/// Inbox rows per INSERT: ten values a row, far below SQLite's limit of 32,766.
const INGEST_ROWS_PER_STATEMENT: usize = 500;

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
}

impl InboxEvent {
    fn from_row(row: &sqlx::sqlite::SqliteRow) -> Result<Self> {
        let payload: String = row.get("payload");
        let op: String = row.get("op");
        let source_ts: Option<String> = row.get("source_ts");
        let received: String = row.get("received_at");
        let event_key: String = row.get("event_key");
        Ok(Self {
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
    /// Source versions seen, per link, written when the batch finishes; what is read from
    /// SQLite before then is overlaid with them.
    pending_versions: HashMap<(String, String, String), (RecordId, SourceVersion)>,
    /// Concurrency tokens events carried, per link, written when the batch finishes.
    pending_etags: HashMap<(String, String, String), String>,
    /// Records this batch created, with whether the batch deleted them again: ids are handed
    /// out from `next_record_id` and the rows written at finish (foreign keys are checked at
    /// commit meanwhile). The batch holds SQLite's write lock, so no other writer takes an id.
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
    match_key_rows: HashMap<(String, String, String), Vec<(RecordId, Vec<String>)>>,
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

impl<'w> Batch<'w> {
    pub(crate) fn new(
        ws: &'w Workspace,
        now: DateTime<Utc>,
        caps: HashMap<String, crate::connector::Capabilities>,
    ) -> Self {
        Self {
            ws,
            now,
            caps,
            records: HashMap::new(),
            links: HashMap::new(),
            noops: 0,
            stale: 0,
            wrote: false,
            origin_at: None,
            audit: Vec::new(),
            inbox_outcomes: Vec::new(),
            unknown_writes: None,
            awaiting_event: None,
            pending_versions: HashMap::new(),
            pending_etags: HashMap::new(),
            new_records: BTreeMap::new(),
            next_record_id: None,
            new_links: BTreeMap::new(),
            changed_match_keys: HashMap::new(),
            match_key_index: HashMap::new(),
            inbound: HashMap::new(),
            match_key_rows: HashMap::new(),
        }
    }

    async fn link(
        &mut self,
        conn: &mut SqliteConnection,
        system: &str,
        object: &str,
        external_id: &str,
    ) -> Result<Option<LinkInfo>> {
        let key = (system.to_owned(), object.to_owned(), external_id.to_owned());
        if let Some(l) = self.links.get(&key) {
            return Ok(l.clone());
        }
        let row = sqlx::query(
            "SELECT record_id, last_version FROM links WHERE system_id = ? AND object = ? AND external_id = ? AND deleted = 0",
        )
        .bind(system)
        .bind(object)
        .bind(external_id)
        .fetch_optional(&mut *conn)
        .await?;
        let info = row.map(|r| LinkInfo {
            record_id: r.get(0),
            last_version: self.with_pending_version(&key, r.get(1)),
        });
        self.links.insert(key, info.clone());
        Ok(info)
    }

    /// A stored last version, raised by one this batch has seen but not written yet.
    fn with_pending_version(
        &self,
        key: &(String, String, String),
        stored: Option<SourceVersion>,
    ) -> Option<SourceVersion> {
        match (stored, self.pending_versions.get(key)) {
            (Some(a), Some((_, b))) => Some(a.max(*b)),
            (None, Some((_, b))) => Some(*b),
            (stored, None) => stored,
        }
    }

    /// Looks up the links of a batch's events in a few statements instead of one per event.
    async fn preload_links(
        &mut self,
        conn: &mut SqliteConnection,
        events: &[InboxEvent],
    ) -> Result<()> {
        let keys: BTreeSet<(String, String, String)> = events
            .iter()
            .map(|e| (e.system.clone(), e.object.clone(), e.external_id.clone()))
            .filter(|k| !self.links.contains_key(k))
            .collect();
        let keys: Vec<_> = keys.into_iter().collect();
        // Three values a key: far below SQLite's limit of 32,766 per statement.
        for chunk in keys.chunks(1000) {
            let mut q: sqlx::QueryBuilder<sqlx::Sqlite> = sqlx::QueryBuilder::new(
                "SELECT system_id, object, external_id, record_id, last_version FROM links
                 WHERE deleted = 0 AND (system_id, object, external_id) IN (VALUES ",
            );
            let mut rows = q.separated(", ");
            for (system, object, external_id) in chunk {
                rows.push("(")
                    .push_bind_unseparated(system.clone())
                    .push_unseparated(", ")
                    .push_bind_unseparated(object.clone())
                    .push_unseparated(", ")
                    .push_bind_unseparated(external_id.clone())
                    .push_unseparated(")");
            }
            rows.push_unseparated(")");
            let found = q.build().persistent(false).fetch_all(&mut *conn).await?;
            for key in chunk {
                self.links.insert(key.clone(), None);
            }
            for r in found {
                let key = (r.get(0), r.get(1), r.get(2));
                let last_version = self.with_pending_version(&key, r.get(4));
                self.links.insert(
                    key,
                    Some(LinkInfo {
                        record_id: r.get(3),
                        last_version,
                    }),
                );
            }
        }
        // And the records those links point at, as loading them one by one would find them
        // (the batch holds the engine's write lock: nothing else changes them meanwhile).
        let records: BTreeSet<RecordId> = events
            .iter()
            .filter_map(|e| {
                let key = (e.system.clone(), e.object.clone(), e.external_id.clone());
                self.links.get(&key)?.as_ref().map(|l| l.record_id)
            })
            .filter(|id| !self.records.contains_key(id))
            .collect();
        let records: Vec<RecordId> = records.into_iter().collect();
        self.preload_records(conn, &records).await?;
        self.preload_match_keys(conn, events).await
    }

    /// Loads these records' state in a few statements, unless the batch holds them already.
    pub(crate) async fn preload_records(
        &mut self,
        conn: &mut SqliteConnection,
        ids: &[RecordId],
    ) -> Result<()> {
        let missing: Vec<RecordId> = ids
            .iter()
            .copied()
            .filter(|id| !self.records.contains_key(id))
            .collect();
        let loaded = load_records(conn, &missing).await?;
        self.records.extend(loaded);
        Ok(())
    }

    pub(crate) async fn load(
        &mut self,
        conn: &mut SqliteConnection,
        record_id: RecordId,
    ) -> Result<&mut CachedRecord> {
        match self.records.entry(record_id) {
            std::collections::hash_map::Entry::Occupied(e) => Ok(e.into_mut()),
            std::collections::hash_map::Entry::Vacant(e) => {
                let mut loaded = load_record(conn, record_id).await?;
                for ((system, _, _), (record, version)) in &self.pending_versions {
                    if *record == record_id {
                        let stored = loaded.versions.get(system).copied().flatten();
                        let raised = stored.map_or(*version, |s| s.max(*version));
                        loaded.versions.insert(system.clone(), Some(raised));
                    }
                }
                Ok(e.insert(loaded))
            }
        }
    }

    /// Records an inbox event's outcome, written when the batch finishes.
    fn set_inbox(&mut self, id: i64, status: &'static str, detail: Option<Value>) -> Result<()> {
        self.inbox_outcomes
            .push((id, status, detail.map(|d| d.to_string())));
        Ok(())
    }

    async fn apply(&mut self, conn: &mut SqliteConnection, event: &InboxEvent) -> Result<()> {
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
                .unwrap_or_else(|| mapping.read(ctx.object, &event.payload))
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

    /// The first write per (record, system) whose outcome is unknown: attempted and not
    /// answered, being replayed, or given up on after retries.
    async fn unknown_writes(
        &mut self,
        conn: &mut SqliteConnection,
    ) -> Result<&HashMap<(RecordId, String), i64>> {
        if self.unknown_writes.is_none() {
            let rows = sqlx::query(
                "SELECT record_id, system_id, id FROM outbox
                   WHERE status IN ('pending', 'in_flight') AND attempts > 0
                 UNION ALL
                 SELECT o.record_id, o.system_id, o.id FROM dead_letters d JOIN outbox o ON o.id = d.outbox_id
                   WHERE d.status = 'replaying' AND o.status IN ('pending', 'in_flight')
                 UNION ALL
                 SELECT o.record_id, o.system_id, o.id FROM dead_letters d JOIN outbox o ON o.id = d.outbox_id
                   WHERE d.status = 'dead' AND d.error_class = 'retries_exhausted' AND o.status = 'dead'",
            )
            .fetch_all(&mut *conn)
            .await?;
            let mut map: HashMap<(RecordId, String), i64> = HashMap::new();
            for r in rows {
                let id: i64 = r.get(2);
                map.entry((r.get(0), r.get(1)))
                    .and_modify(|first| *first = (*first).min(id))
                    .or_insert(id);
            }
            self.unknown_writes = Some(map);
        }
        Ok(self.unknown_writes.get_or_insert_with(HashMap::new))
    }

    /// (record, system) pairs with writes refused while awaiting that system's events.
    async fn awaiting_event(
        &mut self,
        conn: &mut SqliteConnection,
    ) -> Result<&BTreeSet<(RecordId, String)>> {
        if self.awaiting_event.is_none() {
            let rows = sqlx::query(
                "SELECT record_id, system_id FROM outbox WHERE status = 'superseded' AND last_error = 'awaiting_event'",
            )
            .fetch_all(&mut *conn)
            .await?;
            self.awaiting_event = Some(rows.iter().map(|r| (r.get(0), r.get(1))).collect());
        }
        Ok(self.awaiting_event.get_or_insert_with(BTreeSet::new))
    }

    /// Links an external id to a record: in the batch's cache now, in SQLite at finish.
    fn insert_link(&mut self, system: &str, object: &str, external_id: &str, record_id: RecordId) {
        let key = (system.to_owned(), object.to_owned(), external_id.to_owned());
        self.new_links.insert(key.clone(), record_id);
        self.links.insert(
            key,
            Some(LinkInfo {
                record_id,
                last_version: None,
            }),
        );
    }

    /// A new record of `object`: its id now, its row at finish.
    async fn new_record(&mut self, conn: &mut SqliteConnection, object: &str) -> Result<RecordId> {
        let id = match self.next_record_id {
            Some(id) => id,
            None => {
                // Links, golden records and writes refer to the record before its row exists.
                sqlx::query("PRAGMA defer_foreign_keys = ON")
                    .execute(&mut *conn)
                    .await?;
                let max: Option<RecordId> = sqlx::query_scalar("SELECT MAX(id) FROM records")
                    .fetch_one(&mut *conn)
                    .await?;
                max.unwrap_or(0) + 1
            }
        };
        self.next_record_id = Some(id + 1);
        self.new_records.insert(id, (object.to_owned(), false));
        Ok(id)
    }

    /// Records of `object` whose match key `key` is `value`, as this batch leaves them (its
    /// own changes included). With `not_linked_in`, only live records that system does not
    /// hold; without, any record (a reference may name a deleted one).
    async fn match_key_holders(
        &self,
        conn: &mut SqliteConnection,
        object: &str,
        key: &str,
        value: &str,
        not_linked_in: Option<&str>,
    ) -> Result<BTreeSet<RecordId>> {
        let preloaded = not_linked_in.and_then(|system| {
            self.match_key_rows
                .get(&(object.to_owned(), key.to_owned(), value.to_owned()))
                .map(|rows| {
                    rows.iter()
                        .filter(|(_, systems)| !systems.iter().any(|s| s == system))
                        .map(|(id, _)| *id)
                        .collect::<Vec<_>>()
                })
        });
        let ids = match preloaded {
            Some(ids) => ids,
            None => {
                sqlx::query_scalar(
                    "SELECT m.record_id FROM match_keys m
                     WHERE m.object = ?1 AND m.key_field = ?2 AND m.key_value = ?3
                       AND (?4 IS NULL OR NOT EXISTS (SELECT 1 FROM records r WHERE r.id = m.record_id AND r.deleted = 1))
                       AND NOT EXISTS (SELECT 1 FROM links l WHERE l.record_id = m.record_id AND l.system_id = ?4 AND l.deleted = 0)",
                )
                .bind(object)
                .bind(key)
                .bind(value)
                .bind(not_linked_in)
                .fetch_all(&mut *conn)
                .await?
            }
        };
        // SQLite's rows for keys this batch changed are out of date: the batch's own stand.
        let mut found: BTreeSet<RecordId> = ids
            .into_iter()
            .filter(|id| !self.changed_match_keys.contains_key(&(*id, key.to_owned())))
            .collect();
        if let Some(changed) =
            self.match_key_index
                .get(&(object.to_owned(), key.to_owned(), value.to_owned()))
        {
            found.extend(changed.iter().copied().filter(|id| {
                not_linked_in.is_none()
                    || !self
                        .new_records
                        .get(id)
                        .is_some_and(|(_, deleted)| *deleted)
            }));
        }
        // Links this batch made are not in SQLite yet.
        if let Some(system) = not_linked_in {
            found.retain(|id| {
                !self
                    .records
                    .get(id)
                    .is_some_and(|r| r.external.contains_key(system))
            });
        }
        Ok(found)
    }

    /// Reads first-contact events' values, and looks up the records their match keys name, for
    /// the whole batch in one statement per object instead of one per key and event.
    async fn preload_match_keys(
        &mut self,
        conn: &mut SqliteConnection,
        events: &[InboxEvent],
    ) -> Result<()> {
        let ws = self.ws;
        let mut wanted: BTreeMap<String, BTreeSet<(String, String)>> = BTreeMap::new();
        for e in events {
            let key = (e.system.clone(), e.object.clone(), e.external_id.clone());
            if e.op != ChangeOp::Upsert || !matches!(self.links.get(&key), Some(None)) {
                continue;
            }
            let (Some(schema), Some(mapping)) =
                (ws.object(&e.object), ws.mapping(&e.system, &e.object))
            else {
                continue;
            };
            let inbound = mapping.read(schema, &e.payload);
            for k in &schema.match_keys {
                if let Some(v) = inbound.values.get(k).and_then(normalize_match_key) {
                    wanted
                        .entry(e.object.clone())
                        .or_default()
                        .insert((k.clone(), v));
                }
            }
            self.inbound.insert(e.id, inbound);
        }
        for (object, keys) in wanted {
            let keys: Vec<_> = keys.into_iter().collect();
            // Two values a key: far below SQLite's limit per statement.
            for chunk in keys.chunks(1000) {
                let mut q: sqlx::QueryBuilder<sqlx::Sqlite> = sqlx::QueryBuilder::new(
                    "SELECT m.key_field, m.key_value, m.record_id,
                       (SELECT json_group_array(l.system_id) FROM links l WHERE l.record_id = m.record_id AND l.deleted = 0)
                     FROM match_keys m
                     WHERE NOT EXISTS (SELECT 1 FROM records r WHERE r.id = m.record_id AND r.deleted = 1)
                       AND m.object = ",
                );
                q.push_bind(object.clone())
                    .push(" AND (m.key_field, m.key_value) IN (VALUES ");
                let mut rows = q.separated(", ");
                for (k, v) in chunk {
                    rows.push("(")
                        .push_bind_unseparated(k.clone())
                        .push_unseparated(", ")
                        .push_bind_unseparated(v.clone())
                        .push_unseparated(")");
                }
                rows.push_unseparated(")");
                for (k, v) in chunk {
                    self.match_key_rows
                        .insert((object.clone(), k.clone(), v.clone()), Vec::new());
                }
                for row in q.build().persistent(false).fetch_all(&mut *conn).await? {
                    let systems: Vec<String> = serde_json::from_str(&row.get::<String, _>(3))?;
                    if let Some(found) =
                        self.match_key_rows
                            .get_mut(&(object.clone(), row.get(0), row.get(1)))
                    {
                        found.push((row.get(2), systems));
                    }
                }
            }
        }
        Ok(())
    }

    /// Notes a record's match key `key` as `value` now; written at finish.
    fn set_match_key(
        &mut self,
        object: &str,
        record_id: RecordId,
        key: &str,
        value: Option<String>,
    ) {
        if let Some((_, Some(before))) = self.changed_match_keys.get(&(record_id, key.to_owned()))
            && let Some(ids) =
                self.match_key_index
                    .get_mut(&(object.to_owned(), key.to_owned(), before.clone()))
        {
            ids.remove(&record_id);
        }
        if let Some(v) = &value {
            self.match_key_index
                .entry((object.to_owned(), key.to_owned(), v.clone()))
                .or_default()
                .insert(record_id);
        }
        self.changed_match_keys
            .insert((record_id, key.to_owned()), (object.to_owned(), value));
    }

    /// Notes the source version an event carried; written when the batch finishes.
    fn set_version(
        &mut self,
        system: &str,
        object: &str,
        external_id: &str,
        record_id: RecordId,
        version: SourceVersion,
    ) {
        let key = (system.to_owned(), object.to_owned(), external_id.to_owned());
        self.pending_versions
            .entry(key.clone())
            .and_modify(|(record, v)| {
                *record = record_id;
                *v = (*v).max(version);
            })
            .or_insert((record_id, version));
        if let Some(Some(l)) = self.links.get_mut(&key) {
            l.last_version = Some(l.last_version.map_or(version, |v| v.max(version)));
        }
        if let Some(r) = self.records.get_mut(&record_id) {
            r.versions.insert(system.to_owned(), Some(version));
        }
    }

    /// Records of this object that match the incoming values on any match key and that the
    /// reporting system does not hold yet.
    async fn candidates(
        &self,
        conn: &mut SqliteConnection,
        schema: &ObjectSchema,
        system: &str,
        values: &Fields,
    ) -> Result<BTreeSet<RecordId>> {
        let mut found = BTreeSet::new();
        for key in &schema.match_keys {
            let Some(value) = values.get(key).and_then(normalize_match_key) else {
                continue;
            };
            found.extend(
                self.match_key_holders(conn, &schema.name, key, &value, Some(system))
                    .await?,
            );
        }
        Ok(found)
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
            let key = idempotency_key(&[
                &record_id.to_string(),
                target,
                "delete",
                external_id,
                origin,
            ]);
            let inserted: Option<i64> = sqlx::query_scalar(
                "INSERT OR IGNORE INTO outbox (system_id, record_id, object, op, external_id, canonical, payload, idempotency_key, next_attempt_at, rule, created_at)
                 VALUES (?, ?, ?, 'delete', ?, '{}', '{}', ?, ?, 'delete:propagate', ?) RETURNING id",
            )
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

    /// Renders and queues a write of `fields` (values from the golden record) to `target`,
    /// merging it into a write to the same target that has not been sent yet. An update
    /// carries only what the target does not hold already, unless `force` (a re-push, a
    /// re-plan after a fix) writes every field asked for.
    #[allow(clippy::too_many_arguments)]
    async fn enqueue_write(
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
        let now_s = ts(self.now);
        let record_id = state.record_id;
        let queued: Vec<QueuedWrite> = self
            .load(conn, record_id)
            .await?
            .queued
            .get(target)
            .cloned()
            .unwrap_or_default();
        let pending = queued.iter().rev().find(|w| w.open_to_merge());
        let mut all_fields = fields.clone();
        let mut all_base = base.clone();
        let external = &links.external;
        let linked = external.contains_key(target);
        let mut op = if linked { "update" } else { "create" };
        if !linked {
            if queued.iter().any(QueuedWrite::creating) {
                // The record is being created there: this becomes an update once it is linked.
                op = "update";
            }
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
            all_fields.retain(|f| {
                !state.held.contains(f)
                    && (force
                        || held_there.get(f).unwrap_or(&Value::Null)
                            != state.golden.get(f).unwrap_or(&Value::Null))
            });
            if all_fields.is_empty() {
                if let Some(w) = pending {
                    let id = w.id;
                    sqlx::query("UPDATE outbox SET status = 'superseded', last_error = 'the target already holds these values' WHERE id = ?")
                        .bind(id)
                        .execute(&mut *conn)
                        .await?;
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
        let id = match pending {
            Some(w) => {
                sqlx::query(
                    "UPDATE outbox SET op = ?, external_id = ?, canonical = ?, payload = ?, ops = ?, base = ?, if_match = ?,
                       idempotency_key = ? WHERE id = ?",
                )
                .bind(op)
                .bind(&external_id)
                .bind(&canonical_json)
                .bind(&payload_json)
                .bind(&ops_json)
                .bind(&base_json)
                .bind(if_match)
                .bind(&key)
                .bind(w.id)
                .execute(&mut *conn)
                .await?;
                w.id
            }
            None => {
                sqlx::query_scalar(
                    "INSERT INTO outbox (system_id, record_id, object, op, external_id, canonical, payload, ops, base, if_match,
                       idempotency_key, next_attempt_at, rule, created_at, origin_at)
                     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
                )
                .bind(target)
                .bind(record_id)
                .bind(&schema.name)
                .bind(op)
                .bind(&external_id)
                .bind(&canonical_json)
                .bind(&payload_json)
                .bind(&ops_json)
                .bind(&base_json)
                .bind(if_match)
                .bind(&key)
                .bind(&now_s)
                .bind(rule)
                .bind(&now_s)
                .bind(ts(self.origin_at.unwrap_or(self.now)))
                .fetch_one(&mut *conn)
                .await?
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
    async fn plan_for_target(
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

    /// Persists the golden records and shadows the batch changed, and its counters.
    pub(crate) async fn finish(&mut self, conn: &mut SqliteConnection) -> Result<()> {
        self.flush_new_rows(conn).await?;
        let now_s = ts(self.now);
        let mut golden_rows: Vec<(RecordId, String, String)> = Vec::new();
        let mut shadow_rows: Vec<(String, RecordId, String)> = Vec::new();
        for (record_id, cached) in &mut self.records {
            if cached.dirty_golden {
                golden_rows.push((
                    *record_id,
                    serde_json::to_string(&cached.state.golden)?,
                    serde_json::to_string(&cached.state.meta)?,
                ));
                cached.dirty_golden = false;
            }
            for system in std::mem::take(&mut cached.dirty_shadows) {
                let fields = cached
                    .state
                    .shadows
                    .get(&system)
                    .cloned()
                    .unwrap_or_default();
                shadow_rows.push((system, *record_id, serde_json::to_string(&fields)?));
            }
        }
        // Many records per statement (four values a row, far below SQLite's limit).
        for chunk in golden_rows.chunks(500) {
            let mut q: sqlx::QueryBuilder<sqlx::Sqlite> = sqlx::QueryBuilder::new(
                "INSERT INTO golden (record_id, fields, meta, updated_at) ",
            );
            q.push_values(chunk, |mut row, (record_id, fields, meta)| {
                row.push_bind(*record_id)
                    .push_bind(fields.clone())
                    .push_bind(meta.clone())
                    .push_bind(now_s.clone());
            });
            q.push(
                " ON CONFLICT(record_id) DO UPDATE SET fields = excluded.fields, meta = excluded.meta, updated_at = excluded.updated_at",
            );
            q.build()
                .persistent(chunk.len() == 1)
                .execute(&mut *conn)
                .await?;
        }
        for chunk in shadow_rows.chunks(500) {
            let mut q: sqlx::QueryBuilder<sqlx::Sqlite> = sqlx::QueryBuilder::new(
                "INSERT INTO shadows (system_id, record_id, fields, updated_at) ",
            );
            q.push_values(chunk, |mut row, (system, record_id, fields)| {
                row.push_bind(system.clone())
                    .push_bind(*record_id)
                    .push_bind(fields.clone())
                    .push_bind(now_s.clone());
            });
            q.push(
                " ON CONFLICT(system_id, record_id) DO UPDATE SET fields = excluded.fields, updated_at = excluded.updated_at",
            );
            q.build()
                .persistent(chunk.len() == 1)
                .execute(&mut *conn)
                .await?;
        }
        store::bump(conn, "noops", self.noops).await?;
        store::bump(conn, "stale", self.stale).await?;
        self.noops = 0;
        self.stale = 0;
        store::insert_audit(conn, &std::mem::take(&mut self.audit), self.now).await?;
        self.flush_versions(conn).await?;
        self.flush_etags(conn).await?;
        self.flush_inbox_outcomes(conn, &now_s).await
    }

    /// Writes the records, links and match keys the batch made, many rows per statement.
    async fn flush_new_rows(&mut self, conn: &mut SqliteConnection) -> Result<()> {
        let now_s = ts(self.now);
        let records: Vec<_> = std::mem::take(&mut self.new_records).into_iter().collect();
        // Four values a row, far below SQLite's limit of 32,766 per statement.
        for chunk in records.chunks(1000) {
            let mut q: sqlx::QueryBuilder<sqlx::Sqlite> =
                sqlx::QueryBuilder::new("INSERT INTO records (id, object, deleted, created_at) ");
            q.push_values(chunk, |mut row, (id, (object, deleted))| {
                row.push_bind(*id)
                    .push_bind(object.clone())
                    .push_bind(*deleted)
                    .push_bind(now_s.clone());
            });
            q.build()
                .persistent(chunk.len() == 1)
                .execute(&mut *conn)
                .await?;
        }
        let links: Vec<_> = std::mem::take(&mut self.new_links).into_iter().collect();
        for chunk in links.chunks(1000) {
            let mut q: sqlx::QueryBuilder<sqlx::Sqlite> = sqlx::QueryBuilder::new(
                "INSERT INTO links (system_id, object, external_id, record_id, created_at) ",
            );
            q.push_values(
                chunk,
                |mut row, ((system, object, external_id), record_id)| {
                    row.push_bind(system.clone())
                        .push_bind(object.clone())
                        .push_bind(external_id.clone())
                        .push_bind(*record_id)
                        .push_bind(now_s.clone());
                },
            );
            q.push(
                " ON CONFLICT(system_id, object, external_id) DO UPDATE SET record_id = excluded.record_id, deleted = 0",
            );
            q.build()
                .persistent(chunk.len() == 1)
                .execute(&mut *conn)
                .await?;
        }
        let keys: Vec<_> = std::mem::take(&mut self.changed_match_keys)
            .into_iter()
            .collect();
        self.match_key_index.clear();
        // What was looked up before these rows and unlinks reached SQLite is out of date.
        self.match_key_rows.clear();
        for chunk in keys.chunks(1000) {
            let mut q: sqlx::QueryBuilder<sqlx::Sqlite> = sqlx::QueryBuilder::new(
                "DELETE FROM match_keys WHERE (record_id, key_field) IN (VALUES ",
            );
            let mut rows = q.separated(", ");
            for ((record_id, key), _) in chunk {
                rows.push("(")
                    .push_bind_unseparated(*record_id)
                    .push_unseparated(", ")
                    .push_bind_unseparated(key.clone())
                    .push_unseparated(")");
            }
            rows.push_unseparated(")");
            q.build().persistent(false).execute(&mut *conn).await?;
            let now: Vec<_> = chunk
                .iter()
                .filter_map(|((record_id, key), (object, value))| {
                    value.as_ref().map(|v| (record_id, key, object, v))
                })
                .collect();
            if now.is_empty() {
                continue;
            }
            let mut q: sqlx::QueryBuilder<sqlx::Sqlite> = sqlx::QueryBuilder::new(
                "INSERT OR IGNORE INTO match_keys (object, key_field, key_value, record_id) ",
            );
            q.push_values(now, |mut row, (record_id, key, object, value)| {
                row.push_bind(object.clone())
                    .push_bind(key.clone())
                    .push_bind(value.clone())
                    .push_bind(*record_id);
            });
            q.build().persistent(false).execute(&mut *conn).await?;
        }
        Ok(())
    }

    /// Writes the source versions seen, many links per statement; a stored version is never
    /// lowered.
    async fn flush_versions(&mut self, conn: &mut SqliteConnection) -> Result<()> {
        let pending: Vec<_> = std::mem::take(&mut self.pending_versions)
            .into_iter()
            .map(|(link, (_, version))| (link, version))
            .collect();
        store::update_links(
            conn,
            "last_version = MAX(COALESCE(links.last_version, v.column4), v.column4)",
            &pending,
        )
        .await
    }

    /// Writes the concurrency tokens the batch's events carried, many links per statement.
    async fn flush_etags(&mut self, conn: &mut SqliteConnection) -> Result<()> {
        let pending: Vec<_> = std::mem::take(&mut self.pending_etags)
            .into_iter()
            .collect();
        store::update_links(conn, "etag = v.column4", &pending).await
    }

    /// Writes the events' outcomes: those without a detail many ids per statement.
    async fn flush_inbox_outcomes(&mut self, conn: &mut SqliteConnection, now: &str) -> Result<()> {
        let outcomes = std::mem::take(&mut self.inbox_outcomes);
        let mut plain: BTreeMap<&'static str, Vec<i64>> = BTreeMap::new();
        for (id, status, detail) in outcomes {
            match detail {
                None => plain.entry(status).or_default().push(id),
                Some(detail) => {
                    sqlx::query(
                        "UPDATE inbox SET status = ?, processed_at = ?, detail = ? WHERE id = ?",
                    )
                    .bind(status)
                    .bind(now)
                    .bind(detail)
                    .bind(id)
                    .execute(&mut *conn)
                    .await?;
                }
            }
        }
        for (status, ids) in plain {
            for chunk in ids.chunks(INBOX_IDS_PER_UPDATE) {
                let mut q: sqlx::QueryBuilder<sqlx::Sqlite> =
                    sqlx::QueryBuilder::new("UPDATE inbox SET status = ");
                q.push_bind(status)
                    .push(", processed_at = ")
                    .push_bind(now)
                    .push(", detail = NULL WHERE id IN ");
                store::push_id_list(&mut q, chunk);
                q.build().persistent(false).execute(&mut *conn).await?;
            }
        }
        Ok(())
    }
}

/// Ids per `UPDATE inbox … WHERE id IN (…)` (SQLite allows 32,766 bound values).
const INBOX_IDS_PER_UPDATE: usize = 1000;

/// Loads a record's full state: golden, shadows, links, held fields, writes in flight.
async fn load_record(conn: &mut SqliteConnection, record_id: RecordId) -> Result<CachedRecord> {
    let mut loaded = load_records(conn, &[record_id]).await?;
    Ok(loaded
        .remove(&record_id)
        .unwrap_or_else(|| CachedRecord::empty(record_id)))
}

/// Loads the full state of many records, five statements per thousand records.
async fn load_records(
    conn: &mut SqliteConnection,
    ids: &[RecordId],
) -> Result<HashMap<RecordId, CachedRecord>> {
    let mut out: HashMap<RecordId, CachedRecord> = ids
        .iter()
        .map(|&record_id| (record_id, CachedRecord::empty(record_id)))
        .collect();
    for chunk in ids.chunks(1000) {
        let fetch = |sql: &str| {
            let mut q: sqlx::QueryBuilder<sqlx::Sqlite> = sqlx::QueryBuilder::new(sql);
            q.push(" record_id IN ");
            store::push_id_list(&mut q, chunk);
            q
        };
        // Statement texts vary with the chunk's length: only a single record's stay prepared.
        let keep = chunk.len() == 1;
        let mut q = fetch("SELECT record_id, fields, meta FROM golden WHERE");
        for row in q.build().persistent(keep).fetch_all(&mut *conn).await? {
            let Some(r) = out.get_mut(&row.get::<RecordId, _>(0)) else {
                continue;
            };
            r.state.golden = serde_json::from_str(&row.get::<String, _>(1))?;
            r.state.meta =
                serde_json::from_str::<BTreeMap<String, FieldMeta>>(&row.get::<String, _>(2))?;
        }
        let mut q = fetch("SELECT record_id, system_id, fields FROM shadows WHERE");
        for row in q.build().persistent(keep).fetch_all(&mut *conn).await? {
            let Some(r) = out.get_mut(&row.get::<RecordId, _>(0)) else {
                continue;
            };
            r.state
                .shadows
                .insert(row.get(1), serde_json::from_str(&row.get::<String, _>(2))?);
        }
        let mut q = fetch(
            "SELECT record_id, system_id, external_id, last_version, etag FROM links WHERE deleted = 0 AND",
        );
        for row in q.build().persistent(keep).fetch_all(&mut *conn).await? {
            let Some(r) = out.get_mut(&row.get::<RecordId, _>(0)) else {
                continue;
            };
            let system: String = row.get(1);
            r.state.linked.insert(system.clone());
            r.external.insert(system.clone(), row.get::<String, _>(2));
            r.versions
                .insert(system.clone(), row.get::<Option<i64>, _>(3));
            r.etags.insert(system, row.get::<Option<String>, _>(4));
        }
        let mut q = fetch(
            // `+` keeps the planner on the record index rather than the one of all open exceptions.
            "SELECT record_id, field FROM exceptions WHERE +status = 'open' AND field IS NOT NULL
               AND +kind IN ('conflict', 'non_owner_change') AND",
        );
        for row in q.build().persistent(keep).fetch_all(&mut *conn).await? {
            if let Some(r) = out.get_mut(&row.get::<RecordId, _>(0)) {
                r.state.held.insert(row.get(1));
            }
        }
        let mut q = fetch(
            "SELECT record_id, system_id, id, op, status, attempts,
                    EXISTS (SELECT 1 FROM dead_letters d WHERE d.outbox_id = outbox.id), canonical, base
             FROM outbox WHERE status IN ('pending', 'in_flight', 'dead') AND",
        );
        q.push(" ORDER BY id");
        for row in q.build().persistent(keep).fetch_all(&mut *conn).await? {
            let Some(r) = out.get_mut(&row.get::<RecordId, _>(0)) else {
                continue;
            };
            let base: Option<String> = row.get(8);
            let write = QueuedWrite {
                id: row.get(2),
                op: row.get(3),
                status: row.get(4),
                attempts: row.get(5),
                dead_letter: row.get(6),
                canonical: serde_json::from_str(&row.get::<String, _>(7))?,
                base: base
                    .as_deref()
                    .map(serde_json::from_str)
                    .transpose()?
                    .unwrap_or_default(),
            };
            r.queued.entry(row.get(1)).or_default().push(write);
        }
    }
    for r in out.values_mut() {
        let targets: Vec<String> = r.queued.keys().cloned().collect();
        for target in targets {
            r.refresh_outgoing(&target);
        }
    }
    Ok(out)
}

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
