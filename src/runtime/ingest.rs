//! Ingest: change events checked and stored durably in the inbox, many per statement, with
//! duplicates (same system and event key) counted and answered as such.

use super::*;

/// Inbox rows per INSERT: ten values a row, far below SQLite's limit of 32,766.
const INGEST_ROWS_PER_STATEMENT: usize = 500;

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

    /// Stores change events durably in one transaction: all or none.
    pub async fn ingest_many(&self, events: &[ChangeEvent]) -> Result<Vec<IngestOutcome>> {
        self.check_events(events)?;
        // Without the engine's write lock: an event touches only the inbox and counters, which
        // no batch reads while it plans, so storing it waits for SQLite's write lock alone,
        // held only while a batch writes what it decided.
        let writer = self.inner.sqlite_writer.lock().await;
        let mut tx = crate::store::begin_write(&self.inner.pool).await?;
        let outcomes = self.insert_events(&mut tx, events).await?;
        tx.commit().await?;
        drop(writer);
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
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use serde_json::json;

    use crate::model::{ChangeEvent, ChangeOp};
    use crate::runtime::{Engine, EngineOptions};
    use crate::secrets::{Layered, MemorySecrets};

    /// A batch holds the engine's write lock from its first read to its commit. Webhooks are
    /// answered only once their events are stored, so storing one must not wait for a batch
    /// to finish planning: only for SQLite's write lock, which a batch takes to write.
    #[tokio::test]
    async fn an_event_is_stored_while_a_batch_holds_the_engine_write_lock() {
        let dir = tempfile::tempdir().expect("temp dir");
        let engine = Engine::open(
            &dir.path().join("state.db"),
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
        let planning = engine.inner.write_lock.lock().await;
        let event = ChangeEvent {
            system: "hris".into(),
            object: "employee".into(),
            external_id: "H1".into(),
            op: ChangeOp::Upsert,
            record: json!({ "id": "H1" })
                .as_object()
                .cloned()
                .unwrap_or_default(),
            version: None,
            etag: None,
            source_ts: None,
            event_key: "k1".into(),
        };
        let stored = tokio::time::timeout(Duration::from_secs(5), engine.ingest(&event)).await;
        drop(planning);
        assert!(
            matches!(stored, Ok(Ok(crate::IngestOutcome::Accepted(_)))),
            "an event is stored while a batch plans, not after it: {stored:?}"
        );
    }
}
