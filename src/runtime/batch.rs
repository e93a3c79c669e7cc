//! What one batch knows while it applies: the records, links and queued writes it loaded (in
//! a few statements for the whole batch), the ids, links and match keys it made and has not
//! written yet, and the lookups of identity (links, match-key candidates) over both.

use super::*;

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
            scheduled: None,
            load_all_waiting_up_to: Settings::default().load_all_waiting_up_to,
            pending_versions: HashMap::new(),
            pending_etags: HashMap::new(),
            new_records: BTreeMap::new(),
            next_record_id: None,
            new_links: BTreeMap::new(),
            changed_match_keys: HashMap::new(),
            match_key_index: HashMap::new(),
            inbound: HashMap::new(),
            match_key_rows: HashMap::new(),
            outbox: outbox::OutboxChanges::default(),
            breaker: crate::model::BreakerConfig::default(),
            in_transaction: true,
            writer: None,
            writer_guard: None,
        }
    }
    /// A batch whose connection is not in a transaction yet: it reads without one (it holds
    /// the engine's write lock, so nothing it reads changes meanwhile) and begins its write
    /// transaction when it first writes.
    pub(crate) fn outside_transaction(mut self, writer: Arc<Mutex<()>>) -> Self {
        self.in_transaction = false;
        self.writer = Some(writer);
        self
    }
    /// Opens the batch's write transaction unless it is open: every statement that writes
    /// goes through here first, so the batch commits all of it or none.
    pub(super) async fn begin_writing(&mut self, conn: &mut SqliteConnection) -> Result<()> {
        if self.in_transaction {
            return Ok(());
        }
        if let Some(writer) = &self.writer {
            self.writer_guard = Some(writer.clone().lock_owned().await);
        }
        sqlx::query("BEGIN IMMEDIATE").execute(&mut *conn).await?;
        self.in_transaction = true;
        // Links, golden records and writes refer to new records before their rows exist.
        sqlx::query("PRAGMA defer_foreign_keys = ON")
            .execute(&mut *conn)
            .await?;
        Ok(())
    }
    pub(super) async fn link(
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
    pub(super) fn with_pending_version(
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
    pub(super) async fn preload_links(
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
        for chunk in keys.chunks(1000) {
            // Each link is looked up by its key, from the keys bound as one JSON array (one
            // statement text for every batch, prepared once): `(system_id, object, external_id)
            // IN (VALUES …)` made SQLite read the whole table, on every batch.
            let found = sqlx::query(
                "SELECT l.system_id, l.object, l.external_id, l.record_id, l.last_version
                 FROM json_each(?) AS k CROSS JOIN links l ON l.system_id = k.value->>0
                   AND l.object = k.value->>1 AND l.external_id = k.value->>2
                 WHERE l.deleted = 0",
            )
            .bind(serde_json::to_string(chunk)?)
            .fetch_all(&mut *conn)
            .await?;
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
        self.preload_match_keys(conn, events).await?;
        // And the records first contacts match, which they are linked to or merged with: one
        // by one, each cost five statements (a create's echo that comes in before the create's
        // outcome is committed is such a first contact).
        let candidates: BTreeSet<RecordId> = self
            .match_key_rows
            .values()
            .flatten()
            .map(|(record_id, _)| *record_id)
            .filter(|id| !self.records.contains_key(id))
            .collect();
        let candidates: Vec<RecordId> = candidates.into_iter().collect();
        self.preload_records(conn, &candidates).await
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
    pub(super) fn set_inbox(
        &mut self,
        id: i64,
        status: &'static str,
        detail: Option<Value>,
    ) -> Result<()> {
        self.inbox_outcomes
            .push((id, status, detail.map(|d| d.to_string())));
        Ok(())
    }
    /// The first write per (record, system) whose outcome is unknown: attempted and not
    /// answered, being replayed, or given up on after retries.
    pub(super) async fn unknown_writes(
        &mut self,
        conn: &mut SqliteConnection,
    ) -> Result<&HashMap<(RecordId, String), i64>> {
        if self.unknown_writes.is_none() {
            let rows = sqlx::query(UNKNOWN_WRITES).fetch_all(&mut *conn).await?;
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
    pub(super) async fn awaiting_event(
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
    pub(super) fn insert_link(
        &mut self,
        system: &str,
        object: &str,
        external_id: &str,
        record_id: RecordId,
    ) {
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
    pub(super) async fn new_record(
        &mut self,
        conn: &mut SqliteConnection,
        object: &str,
    ) -> Result<RecordId> {
        let id = match self.next_record_id {
            Some(id) => id,
            None => {
                // Links, golden records and writes refer to the record before its row exists
                // (a batch outside a transaction sets this when it begins one).
                if self.in_transaction {
                    sqlx::query("PRAGMA defer_foreign_keys = ON")
                        .execute(&mut *conn)
                        .await?;
                }
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
    pub(super) async fn match_key_holders(
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
    pub(super) async fn preload_match_keys(
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
            let inbound = e.read(mapping, schema);
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
            for chunk in keys.chunks(1000) {
                // Each key is looked up in the key's index, from the keys bound as one JSON
                // array: `(key_field, key_value) IN (VALUES …)` made SQLite read every match
                // key of the object instead.
                let q = sqlx::query(
                    "SELECT m.key_field, m.key_value, m.record_id,
                       (SELECT json_group_array(l.system_id) FROM links l WHERE l.record_id = m.record_id AND l.deleted = 0)
                     FROM json_each(?1) AS k CROSS JOIN match_keys m ON m.object = ?2
                       AND m.key_field = k.value->>0 AND m.key_value = k.value->>1
                     WHERE NOT EXISTS (SELECT 1 FROM records r WHERE r.id = m.record_id AND r.deleted = 1)",
                )
                .bind(serde_json::to_string(chunk)?)
                .bind(object.clone());
                for (k, v) in chunk {
                    self.match_key_rows
                        .insert((object.clone(), k.clone(), v.clone()), Vec::new());
                }
                for row in q.fetch_all(&mut *conn).await? {
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
    pub(super) fn set_match_key(
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
    pub(super) fn set_version(
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
    pub(super) async fn candidates(
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
}

/// Loads a record's full state: golden, shadows, links, held fields, writes in flight.
pub(super) async fn load_record(
    conn: &mut SqliteConnection,
    record_id: RecordId,
) -> Result<CachedRecord> {
    let mut loaded = load_records(conn, &[record_id]).await?;
    Ok(loaded
        .remove(&record_id)
        .unwrap_or_else(|| CachedRecord::empty(record_id)))
}

/// The writes whose outcome is unknown, read by every batch that plans a write: through the
/// index of attempted writes only, never the whole queue (an initial sync queues hundreds of
/// thousands of creates, none attempted yet).
const UNKNOWN_WRITES: &str = "SELECT record_id, system_id, id FROM outbox
       WHERE status IN ('pending', 'in_flight') AND attempts > 0
     UNION ALL
     SELECT o.record_id, o.system_id, o.id FROM dead_letters d JOIN outbox o ON o.id = d.outbox_id
       WHERE d.status = 'replaying' AND o.status IN ('pending', 'in_flight')
     UNION ALL
     SELECT o.record_id, o.system_id, o.id FROM dead_letters d JOIN outbox o ON o.id = d.outbox_id
       WHERE d.status = 'dead' AND d.error_class = 'retries_exhausted' AND o.status = 'dead'";

/// Loads the full state of many records, five statements per thousand records.
pub(super) async fn load_records(
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
            store::push_id_list(&mut q, chunk).map(|()| q)
        };
        let mut q = fetch("SELECT record_id, fields, meta FROM golden WHERE")?;
        for row in q.build().fetch_all(&mut *conn).await? {
            let Some(r) = out.get_mut(&row.get::<RecordId, _>(0)) else {
                continue;
            };
            r.state.golden = serde_json::from_str(&row.get::<String, _>(1))?;
            r.state.meta = crate::golden_meta::decode(&row.get::<String, _>(2))?;
        }
        let mut q = fetch("SELECT record_id, system_id, fields FROM shadows WHERE")?;
        for row in q.build().fetch_all(&mut *conn).await? {
            let Some(r) = out.get_mut(&row.get::<RecordId, _>(0)) else {
                continue;
            };
            r.state
                .shadows
                .insert(row.get(1), serde_json::from_str(&row.get::<String, _>(2))?);
        }
        let mut q = fetch(
            "SELECT record_id, system_id, external_id, last_version, etag FROM links WHERE deleted = 0 AND",
        )?;
        for row in q.build().fetch_all(&mut *conn).await? {
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
        )?;
        for row in q.build().fetch_all(&mut *conn).await? {
            if let Some(r) = out.get_mut(&row.get::<RecordId, _>(0)) {
                r.state.held.insert(row.get(1));
            }
        }
        let mut q = fetch(
            "SELECT record_id, system_id, id, op, status, attempts,
                    EXISTS (SELECT 1 FROM dead_letters d WHERE d.outbox_id = outbox.id), canonical, base
             FROM outbox WHERE status IN ('pending', 'in_flight', 'dead') AND",
        )?;
        q.push(" ORDER BY id");
        for row in q.build().fetch_all(&mut *conn).await? {
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

#[cfg(test)]
mod tests {
    /// Every batch that plans a write reads the writes whose outcome is unknown. It must find
    /// them without walking the queue: during an initial sync of a million people, reading
    /// every queued create on each batch slowed the creates to about 120 a second.
    #[tokio::test]
    async fn the_unknown_writes_are_read_through_their_own_index_not_the_whole_queue() {
        let dir = tempfile::tempdir().expect("temp dir");
        let pool = crate::store::open(&dir.path().join("state.db"))
            .await
            .expect("opens");
        let plan: Vec<String> =
            sqlx::query(&format!("EXPLAIN QUERY PLAN {}", super::UNKNOWN_WRITES))
                .fetch_all(&pool)
                .await
                .expect("explains")
                .iter()
                .map(|row| sqlx::Row::get::<String, _>(row, 3))
                .collect();
        let queued = plan
            .iter()
            .find(|step| step.contains(" outbox"))
            .expect("the plan reads the outbox");
        assert!(
            queued.contains("USING INDEX outbox_attempted"),
            "queued writes are read through the index of attempted writes only: {plan:?}"
        );
        pool.close().await;
    }
}
