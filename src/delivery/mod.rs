//! Delivery: the outbox sender. Per system, it claims due writes (one per record at a time,
//! in order), sends them through the system's connector under its rate limit ([`send`]), and
//! commits each outcome with the state it implies, in one transaction per round ([`commit`]):
//!
//! - success: the write is marked sent, the target's shadow, link version and concurrency
//!   token follow, audit;
//! - retryable (timeout, 5xx, 429): retried with exponential backoff and jitter, never sooner
//!   than `Retry-After`; after the system's attempt limit it becomes a dead letter;
//! - rejected (other 4xx): a dead letter at once, with the system's response and the request;
//! - the record changed in the target (412, or a read before writing found it changed): it is
//!   merged again as an inbound change and the write planned again; nothing is overwritten.
//!   Re-reads in a row are bounded: past the system's limit the write becomes a dead letter and
//!   an exception says the record keeps changing.
//!
//! A crash between sending and committing re-sends the write with the same idempotency key;
//! a create is looked up in the target first.

mod commit;
mod pipeline;
pub mod send;

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use governor::{
    Quota, RateLimiter as Governor, clock::DefaultClock, state::InMemoryState, state::NotKeyed,
};
use sqlx::Row;

use crate::error::Result;
use crate::runtime::Engine;
use crate::store::{self, ts};
use send::{Claimed, Outcome, assignments_from_payload, send_one};

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

    /// Waits for the system's rate limit, as delivery and polling do: what the console asks
    /// of a system (a test, a discovery, a mapping check) counts against the same budget.
    pub async fn pace(&self, system: &str) {
        if let Some(limiter) = self.limiter(system) {
            limiter.acquire().await;
        }
    }

    /// One delivery round for one system: claims the due writes, sends them all, commits their
    /// outcomes together. Returns how many writes it sent (successfully or not). The running
    /// engine streams instead ([`Engine::delivery_loop`]); a round is for one-shot runs and tests.
    pub async fn deliver(&self, system: &str) -> Result<usize> {
        let Some(connector) = self.connector(system) else {
            return Ok(0);
        };
        let claimed = self
            .commit_and_claim(system, Vec::new(), self.inner.settings.send_batch)
            .await?;
        if claimed.is_empty() {
            return Ok(0);
        }
        let limiter = self.limiter(system);
        let concurrency = self.inner.settings.send_concurrency.max(1);
        let ws = self.workspace();
        let results: Vec<(Claimed, Outcome)> = futures::stream::iter(claimed)
            .map(|row| {
                let connector = connector.clone();
                let limiter = limiter.clone();
                let ws = ws.clone();
                async move {
                    if let Some(l) = &limiter {
                        l.acquire().await;
                    }
                    let outcome = send_one(connector.as_ref(), &ws, system, &row).await;
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
        self.commit_and_claim(system, results, 0).await?;
        Ok(sent)
    }

    /// Commits the outcomes that came in and claims up to `limit` more, in one transaction
    /// (either may be empty).
    pub(super) async fn commit_and_claim(
        &self,
        system: &str,
        results: Vec<(Claimed, Outcome)>,
        limit: usize,
    ) -> Result<Vec<Claimed>> {
        let connector = self.connector(system);
        let _guard = self.inner.write_lock.lock().await;
        let _writer = self.inner.sqlite_writer.lock().await;
        let mut tx = store::begin_write(&self.inner.pool).await?;
        let refetched = if results.is_empty() {
            false
        } else {
            self.commit_outcomes(&mut tx, system, results).await?
        };
        let claimed = match &connector {
            Some(connector) => {
                self.claim(&mut tx, system, connector.as_ref(), limit)
                    .await?
            }
            None => Vec::new(),
        };
        tx.commit().await?;
        if refetched {
            self.inner.inbox_ready.notify_one();
        }
        Ok(claimed)
    }

    /// The objects of a listed system that take no creates yet: until a full listing of it
    /// has finished (the initial poll listing, or a reconciliation) and the events that
    /// listing received are applied, its records may not be linked yet, and a create would
    /// make them twice.
    /// Whether `system`'s writes wait in a plan for an admin to enable them.
    pub fn writes_held(&self, system: &str) -> bool {
        self.workspace()
            .system(system)
            .is_some_and(crate::model::SystemConfig::writes_held)
    }

    /// The objects whose creates to `system` wait: a system the engine lists (polled, or
    /// reconciled on a schedule) gets no creates before a first full listing is done, since
    /// the records it already holds must be linked first, or they would be created twice.
    pub(crate) async fn creates_held(
        &self,
        conn: &mut sqlx::SqliteConnection,
        system: &str,
        connector: &dyn crate::connector::Connector,
    ) -> Result<Vec<String>> {
        let listed = connector.poll_interval().is_some()
            || connector
                .reconcile_schedule()
                .is_some_and(|r| r.interval.is_some());
        if !listed {
            return Ok(Vec::new());
        }
        self.objects_holding_creates(conn, system).await
    }

    async fn objects_holding_creates(
        &self,
        tx: &mut sqlx::SqliteConnection,
        system: &str,
    ) -> Result<Vec<String>> {
        let ws = self.workspace();
        let mut held = Vec::new();
        for object in ws
            .config
            .mappings
            .iter()
            .filter(|m| m.system == system)
            .map(|m| &m.object)
        {
            let listed_at: Option<String> = sqlx::query_scalar(
                "SELECT MAX(t) FROM (
                   SELECT COALESCE(listing_done_at, updated_at) AS t FROM poll_cursors
                     WHERE system_id = ?1 AND object = ?2 AND listing_done = 1
                   UNION ALL
                   SELECT COALESCE(finished_at, updated_at) FROM reconcile_runs
                     WHERE system_id = ?1 AND object = ?2 AND listing_done = 1)",
            )
            .bind(system)
            .bind(object)
            .fetch_one(&mut *tx)
            .await?;
            let waiting = match &listed_at {
                None => true,
                Some(at) => sqlx::query_scalar::<_, i64>(
                    "SELECT EXISTS (SELECT 1 FROM inbox WHERE status = 'pending' AND system_id = ?
                       AND object = ? AND received_at <= ?)",
                )
                .bind(system)
                .bind(object)
                .bind(at)
                .fetch_one(&mut *tx)
                .await?
                    != 0,
            };
            if waiting {
                held.push(object.clone());
            }
        }
        Ok(held)
    }

    /// Marks due writes in flight, at most `limit`: the oldest pending write of each record
    /// that has nothing else in flight to this system. The caller holds the engine's write lock
    /// and has `tx` open.
    async fn claim(
        &self,
        tx: &mut sqlx::SqliteConnection,
        system: &str,
        connector: &dyn crate::connector::Connector,
        limit: usize,
    ) -> Result<Vec<Claimed>> {
        if limit == 0 || self.writes_held(system) {
            return Ok(Vec::new());
        }
        // An open trip holds every write its predecessors did not judge and release.
        let sendable_through = crate::breaker::sendable_through(&mut *tx, system).await?;
        if sendable_through == 0 {
            return Ok(Vec::new());
        }
        let now = self.now();
        let held = self.creates_held(&mut *tx, system, connector).await?;
        let rows = sqlx::query(
            "SELECT o.id, o.record_id, o.object, o.op, COALESCE(o.external_id, l.external_id) AS external_id,
                    o.canonical, o.payload, o.ops, o.base, o.if_match, o.idempotency_key, o.attempts,
                    o.outcome_unknown, l.etag AS link_etag, s.fields AS shadow
             FROM outbox o
             LEFT JOIN links l ON l.record_id = o.record_id AND l.system_id = o.system_id AND l.deleted = 0
             LEFT JOIN shadows s ON s.system_id = o.system_id AND s.record_id = o.record_id
             WHERE o.system_id = ? AND o.status = 'pending' AND o.next_attempt_at <= ?
               AND NOT EXISTS (SELECT 1 FROM outbox p WHERE p.system_id = o.system_id AND p.record_id = o.record_id
                               AND (p.status = 'in_flight' OR (p.status = 'pending' AND p.id < o.id)))
               AND NOT (o.op = 'create' AND o.object IN (SELECT value FROM json_each(?)))
               AND o.id <= ?
             ORDER BY o.id LIMIT ?",
        )
        .bind(system)
        .bind(ts(now))
        .bind(serde_json::to_string(&held)?)
        .bind(sendable_through)
        .bind(i64::try_from(limit).unwrap_or(100))
        .fetch_all(&mut *tx)
        .await?;
        let mut claimed = Vec::with_capacity(rows.len());
        for row in rows {
            let canonical: String = row.get("canonical");
            let payload: serde_json::Map<String, serde_json::Value> =
                serde_json::from_str(&row.get::<String, _>("payload"))?;
            let ops = match row.get::<Option<String>, _>("ops") {
                Some(ops) => serde_json::from_str(&ops)?,
                None => assignments_from_payload(&payload),
            };
            let base: String = row.get("base");
            let shadow: Option<String> = row.get("shadow");
            let c = Claimed {
                id: row.get("id"),
                record_id: row.get("record_id"),
                object: row.get("object"),
                op: row.get("op"),
                external_id: row.get("external_id"),
                canonical: serde_json::from_str(&canonical)?,
                payload,
                ops,
                base: serde_json::from_str(&base)?,
                if_match: row.get("if_match"),
                etag: row.get("link_etag"),
                shadow: shadow
                    .map(|s| serde_json::from_str(&s))
                    .transpose()?
                    .unwrap_or_default(),
                idempotency_key: row.get("idempotency_key"),
                attempts: row.get("attempts"),
                outcome_unknown: row.get::<i64, _>("outcome_unknown") != 0,
            };
            claimed.push(c);
        }
        // One statement per thousand claimed writes, not one each.
        for chunk in claimed.chunks(1000) {
            let mut q: sqlx::QueryBuilder<sqlx::Sqlite> =
                sqlx::QueryBuilder::new("UPDATE outbox SET status = 'in_flight' WHERE id IN ");
            store::push_id_list(&mut q, &chunk.iter().map(|c| c.id).collect::<Vec<_>>())?;
            q.build().execute(&mut *tx).await?;
        }
        Ok(claimed)
    }
}

/// Puts writes left in flight back in the queue as possibly sent (all of them, or those of
/// `ids`): they count as attempted and are re-sent unchanged, never merged into, and the
/// record's events wait for their outcome; a create among them is looked up in its target
/// before it is sent again. After a crash, and when a delivery's outcome could not be committed.
pub(crate) async fn requeue_possibly_sent(
    db: impl sqlx::SqliteExecutor<'_>,
    ids: Option<&[i64]>,
) -> Result<u64> {
    let mut q: sqlx::QueryBuilder<sqlx::Sqlite> = sqlx::QueryBuilder::new(
        "UPDATE outbox SET status = 'pending', attempts = attempts + 1, outcome_unknown = 1
         WHERE status = 'in_flight'",
    );
    if let Some(ids) = ids {
        q.push(" AND id IN ");
        store::push_id_list(&mut q, ids)?;
    }
    Ok(q.build().execute(db).await?.rows_affected())
}
