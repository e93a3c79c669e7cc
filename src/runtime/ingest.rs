//! Ingest: change events checked and stored durably in the inbox, many per statement, with
//! duplicates (same system and event key) counted and answered as such. Callers that arrive
//! while a write transaction is open are stored together in the next one (group commit), so
//! many webhooks at once cost one transaction, not one each.

use std::collections::{BTreeMap, HashSet};

use super::*;

/// Inbox rows per INSERT: ten values a row, far below SQLite's limit of 32,766.
const INGEST_ROWS_PER_STATEMENT: usize = 500;

/// Keys read back per statement after storing: one JSON array bound, one aggregated row back.
const INGEST_KEYS_PER_LOOKUP: usize = 5000;

/// One caller's events waiting to be stored, and where its outcomes go.
pub(crate) struct WaitingEvents {
    events: Vec<ChangeEvent>,
    answer: tokio::sync::oneshot::Sender<Result<Vec<IngestOutcome>>>,
}

/// Callers waiting for the next ingest transaction, in arrival order.
#[derive(Default)]
pub(crate) struct IngestQueue(std::sync::Mutex<Vec<WaitingEvents>>);

impl IngestQueue {
    fn push(&self, waiting: WaitingEvents) {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(waiting);
    }

    fn take(&self) -> Vec<WaitingEvents> {
        std::mem::take(
            &mut *self
                .0
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        )
    }
}

impl Engine {
    /// Stores one change event durably. Duplicates (same system and event key) are counted
    /// and not applied again.
    pub async fn ingest(&self, event: &ChangeEvent) -> Result<IngestOutcome> {
        let outcomes = self.ingest_many(std::slice::from_ref(event)).await?;
        outcomes
            .into_iter()
            .next()
            .ok_or_else(|| EngineError::Invalid("no event".into()))
    }

    /// Stores change events durably in one transaction: all or none. Answers once they are
    /// committed, possibly together with other callers' events.
    pub async fn ingest_many(&self, events: &[ChangeEvent]) -> Result<Vec<IngestOutcome>> {
        self.check_events(events)?;
        let (answer, mut outcome) = tokio::sync::oneshot::channel();
        self.inner.ingest_queue.push(WaitingEvents {
            events: events.to_vec(),
            answer,
        });
        // Without the engine's write lock: an event touches only the inbox and counters, which
        // no batch reads while it plans, so storing it waits for SQLite's write lock alone,
        // held only while a batch writes what it decided.
        let writer = self.inner.sqlite_writer.lock().await;
        // Stored meanwhile by the caller before, with its own.
        if let Ok(stored) = outcome.try_recv() {
            return stored;
        }
        let group = self.inner.ingest_queue.take();
        self.store_group(group).await;
        drop(writer);
        self.inner.inbox_ready.notify_one();
        // Only a caller storing the group that was cancelled midway drops an answer: its
        // transaction rolled back, so nothing of ours was stored.
        outcome.await.map_err(|_| {
            EngineError::Store(sqlx::Error::Protocol(
                "the transaction storing these events was abandoned; send them again".into(),
            ))
        })?
    }

    /// Stores waiting callers' events in one transaction and answers each. If it fails, each
    /// caller's events are tried again alone, so one bad group member fails only itself.
    async fn store_group(&self, mut group: Vec<WaitingEvents>) {
        // The events move out of their callers' entries, in order: no copy on this path.
        let lens: Vec<usize> = group.iter().map(|w| w.events.len()).collect();
        let mut all: Vec<ChangeEvent> = group
            .iter_mut()
            .flat_map(|w| std::mem::take(&mut w.events))
            .collect();
        match self.store_events(&all).await {
            Ok(mut outcomes) => {
                for (waiting, len) in group.into_iter().zip(lens) {
                    let rest = outcomes.split_off(len);
                    let own = std::mem::replace(&mut outcomes, rest);
                    // A caller that went away has nothing to be told; its events are stored.
                    let _ = waiting.answer.send(Ok(own));
                }
            }
            Err(e) if group.len() == 1 => {
                if let Some(waiting) = group.into_iter().next() {
                    let _ = waiting.answer.send(Err(e));
                }
            }
            Err(_) => {
                for (waiting, len) in group.into_iter().zip(lens) {
                    let own: Vec<ChangeEvent> = all.drain(..len).collect();
                    let alone = self.store_events(&own).await;
                    let _ = waiting.answer.send(alone);
                }
            }
        }
    }

    async fn store_events(&self, events: &[ChangeEvent]) -> Result<Vec<IngestOutcome>> {
        let mut tx = crate::store::begin_write(&self.inner.pool).await?;
        let outcomes = self.insert_events(&mut tx, events).await?;
        tx.commit().await?;
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
            q.push(" ON CONFLICT(system_id, event_key) DO UPDATE SET duplicates = duplicates + 1");
            q.build()
                .persistent(chunk.len() == INGEST_ROWS_PER_STATEMENT || chunk.len() == 1)
                .execute(&mut *tx)
                .await?;
        }
        let outcomes = stored_outcomes(tx, events).await?;
        // Per system, for the Prometheus endpoint's labels.
        let mut per_system: BTreeMap<&str, (i64, i64)> = BTreeMap::new();
        for (e, outcome) in events.iter().zip(&outcomes) {
            let counts = per_system.entry(e.system.as_str()).or_default();
            counts.0 += 1;
            counts.1 += i64::from(matches!(outcome, IngestOutcome::Duplicate(_)));
        }
        for (system, (received, duplicates)) in per_system {
            store::bump_for(tx, "events_in", system, received).await?;
            store::bump_for(tx, "duplicates", system, duplicates).await?;
        }
        Ok(outcomes)
    }
}

/// Each event's row id, and whether it was new or a duplicate, read back after the upserts in
/// one aggregated row per few thousand keys: RETURNING hands every row across from SQLite's
/// thread on its own. A key seen `k` times in this call and counted `d` times in all was new
/// at its first occurrence here exactly when `d == k - 1`; later occurrences are duplicates.
async fn stored_outcomes(
    tx: &mut SqliteConnection,
    events: &[ChangeEvent],
) -> Result<Vec<IngestOutcome>> {
    let mut seen_here: HashMap<(&str, &str), i64> = HashMap::new();
    for e in events {
        *seen_here
            .entry((e.system.as_str(), e.event_key.as_str()))
            .or_default() += 1;
    }
    let keys: Vec<(&str, &str)> = seen_here.keys().copied().collect();
    let mut stored: HashMap<(&str, &str), (i64, i64)> = HashMap::with_capacity(keys.len());
    for chunk in keys.chunks(INGEST_KEYS_PER_LOOKUP) {
        let found: Option<String> = sqlx::query_scalar(
            "SELECT json_group_array(json_array(k.key, i.id, i.duplicates))
             FROM json_each(?) AS k CROSS JOIN inbox i
               ON i.system_id = k.value->>0 AND i.event_key = k.value->>1",
        )
        .bind(serde_json::to_string(chunk)?)
        .fetch_one(&mut *tx)
        .await?;
        let rows: Vec<(usize, i64, i64)> = serde_json::from_str(found.as_deref().unwrap_or("[]"))?;
        for (index, id, duplicates) in rows {
            if let Some(key) = chunk.get(index) {
                stored.insert(*key, (id, duplicates));
            }
        }
    }
    // Only a key's first occurrence here can be new: the rest found it stored.
    let mut answered: HashSet<(&str, &str)> = HashSet::with_capacity(keys.len());
    let mut outcomes = Vec::with_capacity(events.len());
    for e in events {
        let key = (e.system.as_str(), e.event_key.as_str());
        let (id, duplicates) = stored.get(&key).copied().ok_or_else(|| {
            EngineError::Invalid(format!("event '{}' was not stored", e.event_key))
        })?;
        let new_here = seen_here.get(&key).is_some_and(|k| duplicates == k - 1);
        outcomes.push(if answered.insert(key) && new_here {
            IngestOutcome::Accepted(id)
        } else {
            IngestOutcome::Duplicate(id)
        });
    }
    Ok(outcomes)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use serde_json::json;

    use crate::model::{ChangeEvent, ChangeOp};
    use crate::runtime::{Engine, EngineOptions};
    use crate::secrets::{Layered, MemorySecrets};

    async fn engine(dir: &std::path::Path) -> Engine {
        let engine = Engine::open(
            &dir.join("state.db"),
            EngineOptions {
                secrets: Arc::new(Layered {
                    over: Arc::new(MemorySecrets::new()),
                    under: EngineOptions::default().secrets,
                }),
                ..EngineOptions::default()
            },
        )
        .await
        .expect("engine opens");
        engine
            .apply_workspace(&crate::selfcheck::workspace(
                "http://127.0.0.1:9",
                "http://127.0.0.1:9",
            ))
            .await
            .expect("workspace");
        engine
    }

    fn event(external_id: &str, key: &str) -> ChangeEvent {
        ChangeEvent {
            system: "hris".into(),
            object: "employee".into(),
            external_id: external_id.into(),
            op: ChangeOp::Upsert,
            record: json!({ "id": external_id })
                .as_object()
                .cloned()
                .unwrap_or_default(),
            version: None,
            etag: None,
            source_ts: None,
            event_key: key.into(),
        }
    }

    /// Callers that wait while a write transaction is open are stored together; each still
    /// gets its own outcomes, in its own order, and a key another caller stored first is a
    /// duplicate.
    #[tokio::test]
    async fn callers_stored_together_each_get_their_own_outcomes() {
        let dir = tempfile::tempdir().expect("temp dir");
        let engine = engine(dir.path()).await;
        let busy = engine.inner.sqlite_writer.lock().await;
        let mut callers = Vec::new();
        for n in 0..40 {
            let engine = engine.clone();
            callers.push(tokio::spawn(async move {
                // Callers 20.. resend the first caller's second key.
                let events = if n < 20 {
                    vec![
                        event(&format!("H{n}"), &format!("a{n}")),
                        event(&format!("H{n}"), &format!("b{n}")),
                    ]
                } else {
                    vec![event(&format!("H{n}"), &format!("a{n}")), event("H0", "b0")]
                };
                (n, engine.ingest_many(&events).await)
            }));
            tokio::task::yield_now().await;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        drop(busy);
        for caller in callers {
            let (n, outcomes) = caller.await.expect("joins");
            let outcomes = outcomes.expect("stored");
            assert_eq!(outcomes.len(), 2, "one outcome per event of caller {n}");
            let id = |o: &crate::IngestOutcome| match o {
                crate::IngestOutcome::Accepted(id) | crate::IngestOutcome::Duplicate(id) => *id,
            };
            let key: String = sqlx::query_scalar("SELECT event_key FROM inbox WHERE id = ?")
                .bind(id(&outcomes[0]))
                .fetch_one(engine.pool())
                .await
                .expect("row");
            assert_eq!(
                key,
                format!("a{n}"),
                "caller {n}'s first outcome is its own first event"
            );
            assert!(matches!(outcomes[0], crate::IngestOutcome::Accepted(_)));
            if n < 20 {
                assert!(
                    matches!(outcomes[1], crate::IngestOutcome::Accepted(_)),
                    "caller {n}'s own key is new"
                );
            } else {
                assert!(
                    matches!(outcomes[1], crate::IngestOutcome::Duplicate(_)),
                    "a key the first caller stored is a duplicate for caller {n}"
                );
            }
        }
        let rows: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM inbox")
            .fetch_one(engine.pool())
            .await
            .expect("count");
        assert_eq!(rows, 60, "every distinct key is stored once");
    }

    /// A batch holds the engine's write lock from its first read to its commit. Webhooks are
    /// answered only once their events are stored, so storing one must not wait for a batch
    /// to finish planning: only for SQLite's write lock, which a batch takes to write.
    #[tokio::test]
    async fn an_event_is_stored_while_a_batch_holds_the_engine_write_lock() {
        let dir = tempfile::tempdir().expect("temp dir");
        let engine = engine(dir.path()).await;
        let planning = engine.inner.write_lock.lock().await;
        let event = event("H1", "k1");
        let stored = tokio::time::timeout(Duration::from_secs(5), engine.ingest(&event)).await;
        drop(planning);
        assert!(
            matches!(stored, Ok(Ok(crate::IngestOutcome::Accepted(_)))),
            "an event is stored while a batch plans, not after it: {stored:?}"
        );
    }
}
