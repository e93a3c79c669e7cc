//! Writing what a batch decided: golden records, shadows, new records, links and match keys,
//! versions, tokens, outbox rows, audit and inbox outcomes, many rows per statement, when it
//! finishes.

use super::*;

impl Batch<'_> {
    /// Persists the golden records and shadows the batch changed, and its counters.
    pub(crate) async fn finish(&mut self, conn: &mut SqliteConnection) -> Result<()> {
        self.flush_new_rows(conn).await?;
        let now_s = ts(self.now);
        let overwriting = self.outbox.overwriting_systems();
        self.outbox.flush(conn, &now_s).await?;
        // In the transaction that queues the writes: a run over the line is held before
        // delivery can claim any of them.
        crate::breaker::check(
            conn,
            self.ws,
            &self.breaker,
            overwriting.iter().map(String::as_str),
            self.now,
        )
        .await?;
        let mut golden_rows: Vec<(RecordId, String, String)> = Vec::new();
        let mut shadow_rows: Vec<(String, RecordId, String)> = Vec::new();
        for (record_id, cached) in &mut self.records {
            if cached.dirty_golden {
                golden_rows.push((
                    *record_id,
                    serde_json::to_string(&cached.state.golden)?,
                    crate::golden_meta::encode(&cached.state.meta)?,
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
    pub(super) async fn flush_new_rows(&mut self, conn: &mut SqliteConnection) -> Result<()> {
        self.begin_writing(conn).await?;
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
            // The record ids first, so that SQLite finds the rows through match_keys_by_record:
            // the row-value test alone made it read the whole table.
            let mut q: sqlx::QueryBuilder<sqlx::Sqlite> =
                sqlx::QueryBuilder::new("DELETE FROM match_keys WHERE record_id IN ");
            let ids: Vec<RecordId> = chunk.iter().map(|((record_id, _), _)| *record_id).collect();
            store::push_id_list(&mut q, &ids)?;
            q.push(" AND (record_id, key_field) IN (");
            q.push_values(chunk, |mut row, ((record_id, key), _)| {
                row.push_bind(*record_id).push_bind(key.clone());
            });
            q.push(")");
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
    pub(super) async fn flush_versions(&mut self, conn: &mut SqliteConnection) -> Result<()> {
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
    pub(super) async fn flush_etags(&mut self, conn: &mut SqliteConnection) -> Result<()> {
        let pending: Vec<_> = std::mem::take(&mut self.pending_etags)
            .into_iter()
            .collect();
        store::update_links(conn, "etag = v.column4", &pending).await
    }
    /// Writes the events' outcomes: those without a detail many ids per statement.
    pub(super) async fn flush_inbox_outcomes(
        &mut self,
        conn: &mut SqliteConnection,
        now: &str,
    ) -> Result<()> {
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
                store::push_id_list(&mut q, chunk)?;
                q.build().execute(&mut *conn).await?;
            }
        }
        Ok(())
    }
}
