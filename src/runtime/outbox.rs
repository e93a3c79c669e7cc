//! The writes a batch queues, kept in memory until it finishes: new outbox rows with ids the
//! batch hands out, later changes merged into rows already stored, and rows superseded. They
//! reach SQLite at [`Batch::finish`] in a few statements per kind, inside the batch's write
//! transaction, so planning a write issues no statement and the applier's transaction lasts
//! only as long as writing what it decided.

use super::*;

/// A new outbox row, as it will be inserted.
pub(super) struct NewOutboxRow {
    pub system_id: String,
    pub record_id: RecordId,
    pub object: String,
    pub rule: &'static str,
    /// When the change that caused it reached the engine.
    pub origin_at: String,
    /// Superseded before it was ever stored: kept, as a stored one would be, with the reason.
    pub superseded: Option<&'static str>,
    pub contents: OutboxContents,
}

/// What a queued write carries, the part a later change merged into it replaces.
pub(super) struct OutboxContents {
    pub op: String,
    pub external_id: Option<String>,
    pub canonical: String,
    pub payload: String,
    pub ops: String,
    pub base: String,
    pub if_match: Option<SourceVersion>,
    pub idempotency_key: String,
}

impl OutboxContents {
    /// Binds the contents, from `op` to `idempotency_key`, in the order the outbox's INSERT
    /// and its UPDATE list them.
    fn bind<'a>(
        &'a self,
        row: &mut sqlx::query_builder::Separated<'_, 'a, sqlx::Sqlite, &'static str>,
    ) {
        row.push_bind(&self.op)
            .push_bind(&self.external_id)
            .push_bind(&self.canonical)
            .push_bind(&self.payload)
            .push_bind(&self.ops)
            .push_bind(&self.base)
            .push_bind(self.if_match)
            .push_bind(&self.idempotency_key);
    }
}

/// What the batch will write to the outbox.
#[derive(Default)]
pub(super) struct OutboxChanges {
    next_id: Option<i64>,
    new_rows: BTreeMap<i64, NewOutboxRow>,
    rewrites: BTreeMap<i64, OutboxContents>,
    superseded: BTreeMap<i64, &'static str>,
}

/// Twelve values a row: far below SQLite's limit of 32,766 per statement.
const ROWS_PER_STATEMENT: usize = 1000;

impl OutboxChanges {
    /// Queues a new row and returns its id. Ids follow the largest stored one, as SQLite
    /// would give them; only writers holding the engine's write lock add outbox rows, and a
    /// batch holds it from its first id to its commit.
    pub(super) async fn insert(
        &mut self,
        conn: &mut SqliteConnection,
        row: NewOutboxRow,
    ) -> Result<i64> {
        let id = self.take_id(conn).await?;
        self.new_rows.insert(id, row);
        Ok(id)
    }

    /// The next id, for a row the batch inserts itself.
    pub(super) async fn take_id(&mut self, conn: &mut SqliteConnection) -> Result<i64> {
        let id = match self.next_id {
            Some(id) => id,
            None => {
                let max: Option<i64> = sqlx::query_scalar("SELECT MAX(id) FROM outbox")
                    .fetch_one(&mut *conn)
                    .await?;
                max.unwrap_or(0) + 1
            }
        };
        self.next_id = Some(id + 1);
        Ok(id)
    }

    /// Replaces a queued row's contents: the batch's own row in place, a stored one at finish.
    pub(super) fn rewrite(&mut self, id: i64, contents: OutboxContents) {
        match self.new_rows.get_mut(&id) {
            Some(row) => row.contents = contents,
            None => {
                self.rewrites.insert(id, contents);
            }
        }
    }

    /// Marks a queued row superseded, with the reason.
    pub(super) fn supersede(&mut self, id: i64, reason: &'static str) {
        match self.new_rows.get_mut(&id) {
            Some(row) => row.superseded = Some(reason),
            None => {
                self.superseded.insert(id, reason);
            }
        }
    }

    /// The systems this batch queues new updates or deletes for: the breakers to check. (A
    /// change merged into a queued write is about a record already counted.)
    pub(super) fn overwriting_systems(&self) -> BTreeSet<String> {
        self.new_rows
            .values()
            .filter(|r| r.superseded.is_none() && r.contents.op != "create")
            .map(|r| r.system_id.clone())
            .collect()
    }

    /// Writes everything queued: new rows, then changes to stored rows, then supersessions.
    pub(super) async fn flush(&mut self, conn: &mut SqliteConnection, now: &str) -> Result<()> {
        let new_rows: Vec<_> = std::mem::take(&mut self.new_rows).into_iter().collect();
        for chunk in new_rows.chunks(ROWS_PER_STATEMENT / 2) {
            let mut q: sqlx::QueryBuilder<sqlx::Sqlite> = sqlx::QueryBuilder::new(
                "INSERT INTO outbox (id, system_id, record_id, object, op, external_id, canonical, payload, ops, base, if_match,
                   idempotency_key, next_attempt_at, rule, created_at, origin_at, status, last_error) ",
            );
            q.push_values(chunk, |mut b, (id, row)| {
                b.push_bind(*id)
                    .push_bind(&row.system_id)
                    .push_bind(row.record_id)
                    .push_bind(&row.object);
                row.contents.bind(&mut b);
                b.push_bind(now)
                    .push_bind(row.rule)
                    .push_bind(now)
                    .push_bind(&row.origin_at)
                    .push_bind(if row.superseded.is_some() {
                        "superseded"
                    } else {
                        "pending"
                    })
                    .push_bind(row.superseded);
            });
            q.build()
                .persistent(chunk.len() == 1)
                .execute(&mut *conn)
                .await?;
        }
        let rewrites: Vec<_> = std::mem::take(&mut self.rewrites).into_iter().collect();
        for chunk in rewrites.chunks(ROWS_PER_STATEMENT / 2) {
            let mut q: sqlx::QueryBuilder<sqlx::Sqlite> = sqlx::QueryBuilder::new(
                "UPDATE outbox SET op = v.column2, external_id = v.column3, canonical = v.column4, payload = v.column5,
                   ops = v.column6, base = v.column7, if_match = v.column8, idempotency_key = v.column9
                 FROM (",
            );
            q.push_values(chunk, |mut row, (id, w)| {
                row.push_bind(*id);
                w.bind(&mut row);
            });
            q.push(") AS v WHERE outbox.id = v.column1");
            q.build().persistent(false).execute(&mut *conn).await?;
        }
        let mut superseded: BTreeMap<&'static str, Vec<i64>> = BTreeMap::new();
        for (id, reason) in std::mem::take(&mut self.superseded) {
            superseded.entry(reason).or_default().push(id);
        }
        for (reason, ids) in superseded {
            for chunk in ids.chunks(ROWS_PER_STATEMENT) {
                let mut q: sqlx::QueryBuilder<sqlx::Sqlite> = sqlx::QueryBuilder::new(
                    "UPDATE outbox SET status = 'superseded', last_error = ",
                );
                q.push_bind(reason).push(" WHERE id IN ");
                store::push_id_list(&mut q, chunk)?;
                q.build().execute(&mut *conn).await?;
            }
        }
        Ok(())
    }
}
