//! History retention: how long the engine keeps what it no longer needs to sync (events it
//! applied, writes a system acknowledged, dated changes released or dropped, dashboard
//! samples), and the compaction that drops
//! the rest so the state file stays the size of the records it keeps in agreement.
//!
//! The audit is never compacted. Anything a steward or support may still act on stays however
//! old it is: events and writes a dead letter or an exception points at, held and pending
//! events, writes not yet acknowledged, and refused writes waiting for a system's event. The
//! newest row of the inbox and of the outbox is also kept: SQLite numbers a new row after the
//! highest one present, and ids name writes' origins (`inbox:17`), so they are never reused.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::error::Result;
use crate::runtime::Engine;
use crate::store::ts;

/// How long history is kept. Settable per deployment (`concord run --keep-events-days`, …).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// Applied and stale inbox events, and dated changes released or superseded this long
    /// ago. A system that re-sends an event older than this is not recognised as a duplicate;
    /// its version or timestamp still keeps it from undoing newer values where the system
    /// reports one.
    pub events: Duration,
    /// Writes the target acknowledged, and writes superseded by a later one.
    pub sent_writes: Duration,
    /// The dashboard's metric samples.
    pub metrics: Duration,
    /// How often the running engine compacts.
    pub every: Duration,
}

const DAY: Duration = Duration::from_secs(24 * 60 * 60);

impl Default for Retention {
    fn default() -> Self {
        Self {
            events: 14 * DAY,
            sent_writes: 14 * DAY,
            metrics: 7 * DAY,
            every: Duration::from_secs(60 * 60),
        }
    }
}

/// What one compaction removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Compacted {
    pub events: u64,
    pub sent_writes: u64,
    pub metric_samples: u64,
    pub scheduled_changes: u64,
}

impl Compacted {
    pub fn total(&self) -> u64 {
        self.events + self.sent_writes + self.metric_samples + self.scheduled_changes
    }
}

/// Rows deleted per transaction, so a compaction never holds the write lock for long.
const CHUNK: i64 = 5_000;

/// Applied or stale events processed before the cutoff that nothing points at.
const EXPIRED_EVENTS: &str = "DELETE FROM inbox WHERE id IN (
    SELECT i.id FROM inbox i
    WHERE i.status IN ('applied', 'stale') AND i.processed_at < ?
      AND i.id < (SELECT MAX(id) FROM inbox)
      AND NOT EXISTS (SELECT 1 FROM exceptions e WHERE e.inbox_id = i.id)
      AND NOT EXISTS (SELECT 1 FROM dead_letters d WHERE d.inbox_id = i.id)
    LIMIT ?)";

/// Acknowledged or superseded writes finished before the cutoff that nothing points at. A
/// superseded write still waiting for its system's event is planned again when that event
/// comes, so it stays.
const EXPIRED_WRITES: &str = "DELETE FROM outbox WHERE id IN (
    SELECT o.id FROM outbox o
    WHERE o.status IN ('sent', 'superseded') AND COALESCE(o.sent_at, o.created_at) < ?
      AND COALESCE(o.last_error, '') <> 'awaiting_event'
      AND o.id < (SELECT MAX(id) FROM outbox)
      AND NOT EXISTS (SELECT 1 FROM dead_letters d WHERE d.outbox_id = o.id)
    LIMIT ?)";

/// Attempts of writes that are gone (compacted above).
const EXPIRED_ATTEMPTS: &str = "DELETE FROM write_attempts WHERE id IN (
    SELECT a.id FROM write_attempts a
    WHERE a.at < ? AND NOT EXISTS (SELECT 1 FROM outbox o WHERE o.id = a.outbox_id)
    LIMIT ?)";

/// Dated changes released or superseded before the cutoff, once the event that released them
/// is gone too (an event still held or pointed at reads its values from its change). A change
/// still waiting for its date stays however old it is.
const EXPIRED_SCHEDULED: &str = "DELETE FROM scheduled_changes WHERE id IN (
    SELECT s.id FROM scheduled_changes s
    WHERE s.status IN ('released', 'superseded') AND s.updated_at < ?
      AND NOT EXISTS (SELECT 1 FROM inbox i WHERE i.id = s.released_inbox_id)
    LIMIT ?)";

const EXPIRED_SAMPLES: &str =
    "DELETE FROM metrics_samples WHERE at IN (SELECT at FROM metrics_samples WHERE at < ? LIMIT ?)";

impl Engine {
    /// Drops the history older than `retention` allows (see the module's notes for what is
    /// always kept), in short transactions, then hands freed pages back to the file system
    /// where the file allows it (`auto_vacuum = incremental`, which new state files have).
    pub async fn compact_history(&self, retention: &Retention) -> Result<Compacted> {
        let now = self.now();
        let cutoff = |keep: Duration| -> String {
            let keep = chrono::Duration::from_std(keep).unwrap_or(chrono::Duration::MAX);
            ts(now
                .checked_sub_signed(keep)
                .unwrap_or(DateTime::<Utc>::MIN_UTC))
        };
        let done = Compacted {
            events: self
                .delete_in_chunks(EXPIRED_EVENTS, &cutoff(retention.events))
                .await?,
            sent_writes: self
                .delete_in_chunks(EXPIRED_WRITES, &cutoff(retention.sent_writes))
                .await?,
            metric_samples: self
                .delete_in_chunks(EXPIRED_SAMPLES, &cutoff(retention.metrics))
                .await?,
            // After the events: a released change goes once its event has.
            scheduled_changes: self
                .delete_in_chunks(EXPIRED_SCHEDULED, &cutoff(retention.events))
                .await?,
        };
        // Counted with nothing: they go with the writes counted above.
        self.delete_in_chunks(EXPIRED_ATTEMPTS, &cutoff(retention.sent_writes))
            .await?;
        if done.total() > 0 {
            let _guard = self.inner.write_lock.lock().await;
            let mut tx = crate::store::begin_write(self.pool()).await?;
            let removed = i64::try_from(done.total()).unwrap_or(i64::MAX);
            crate::store::bump(&mut tx, "history_compacted", removed).await?;
            tx.commit().await?;
            sqlx::query("PRAGMA incremental_vacuum")
                .execute(self.pool())
                .await?;
        }
        Ok(done)
    }

    /// Rewrites the state file without its free pages, and empties the write-ahead log. It
    /// takes the write lock for as long as the copy takes (seconds per GB): for maintenance,
    /// not for the running engine. Files made before incremental vacuuming became the default
    /// take it up here.
    pub async fn vacuum(&self) -> Result<()> {
        let _guard = self.inner.write_lock.lock().await;
        let mut conn = self.pool().acquire().await?;
        sqlx::query("VACUUM").execute(&mut *conn).await?;
        sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
            .execute(&mut *conn)
            .await?;
        Ok(())
    }

    async fn delete_in_chunks(&self, sql: &str, cutoff: &str) -> Result<u64> {
        let mut deleted = 0;
        loop {
            let _guard = self.inner.write_lock.lock().await;
            let mut tx = crate::store::begin_write(self.pool()).await?;
            let n = sqlx::query(sql)
                .bind(cutoff)
                .bind(CHUNK)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            tx.commit().await?;
            deleted += n;
            if n < u64::try_from(CHUNK).unwrap_or(u64::MAX) {
                return Ok(deleted);
            }
        }
    }
}
