//! Effective-dated changes in the runtime: holding the values an event dates in the future
//! (as [`crate::effective`] decides), keeping writes of those fields away from the system that
//! dated them, releasing each change into the inbox when its date comes, and listing them.
//!
//! A released change is an inbox event of its system whose values are the held ones, applied
//! in arrival order like any other: merged against the record as it is on the date, so a
//! change another system made meanwhile is a conflict judged then, by the field's policy.

use std::collections::BTreeSet;

use serde::Serialize;

use super::*;
use crate::effective::{self, Step, Timing, Waiting};
use crate::mapping::{FieldError, Inbound};
use crate::model::Mapping;

/// A change whose date has come: id, system, object, external id, record, date as written, instant.
type DueChange = (
    i64,
    String,
    String,
    String,
    Option<RecordId>,
    String,
    String,
);

/// Released changes per transaction; the rest follow with the next batch.
const RELEASE_PER_BATCH: i64 = 1000;

/// A change waiting for its date, as a batch knows it.
#[derive(Debug, Clone)]
pub(crate) struct WaitingRow {
    id: i64,
    record_id: Option<RecordId>,
    waiting: Waiting,
}

/// Where a waiting change is found: its system, object and external id.
type WaitingKey = (String, String, String);

const WAITING_COLUMNS: &str = "id, system_id, object, external_id, record_id, effective_at, fields";

/// The waiting changes a batch knows: by (system, object, external id), and the fields each
/// holds back by (record, system). Either every waiting change (`complete`, when few wait),
/// or those looked up so far, absent ones included (`None`, an empty set).
#[derive(Debug, Default)]
pub(crate) struct ScheduledCache {
    complete: bool,
    by_key: HashMap<WaitingKey, Option<WaitingRow>>,
    by_record: HashMap<(RecordId, String), BTreeSet<String>>,
}

impl ScheduledCache {
    fn insert(&mut self, key: WaitingKey, row: WaitingRow) {
        if let Some(r) = row.record_id {
            self.by_record.insert(
                (r, key.0.clone()),
                row.waiting.values.keys().cloned().collect(),
            );
        }
        self.by_key.insert(key, Some(row));
    }

    fn remove(&mut self, key: &WaitingKey) {
        let Some(row) = self.by_key.insert(key.clone(), None).flatten() else {
            return;
        };
        if let Some(r) = row.record_id {
            self.by_record.insert((r, key.0.clone()), BTreeSet::new());
        }
    }
}

fn waiting_row(r: &sqlx::sqlite::SqliteRow) -> Result<(WaitingKey, WaitingRow)> {
    let at: String = r.get(5);
    let fields: String = r.get(6);
    Ok((
        (r.get(1), r.get(2), r.get(3)),
        WaitingRow {
            id: r.get(0),
            record_id: r.get(4),
            waiting: Waiting {
                at: store::parse_ts(&at).unwrap_or_default(),
                values: serde_json::from_str(&fields)?,
            },
        },
    ))
}

/// What an event's effective date leaves for the merge.
pub(super) enum Dated {
    /// Merge what is left of the event, then write to its system the golden values of these
    /// fields (a change that waited for them was dropped, and writes of them were held back).
    Go { converge: BTreeSet<String> },
    /// The whole event waits (a record not linked yet): nothing to merge now.
    Held(i64),
}

impl Batch<'_> {
    async fn scheduled_cache(
        &mut self,
        conn: &mut SqliteConnection,
    ) -> Result<&mut ScheduledCache> {
        if self.scheduled.is_none() {
            // Past the setting, a batch looks up only the records it touches: loading 20,000
            // waiting changes per batch made updates three times slower (the throughput bench
            // with CONCORD_BENCH_WAITING).
            let up_to = i64::try_from(self.load_all_waiting_up_to).unwrap_or(i64::MAX);
            let waiting: i64 = sqlx::query_scalar(
                "SELECT COUNT(*) FROM (SELECT 1 FROM scheduled_changes
                 WHERE status = 'scheduled' LIMIT ? + 1)",
            )
            .bind(up_to)
            .fetch_one(&mut *conn)
            .await?;
            let mut cache = ScheduledCache::default();
            if waiting <= up_to {
                cache.complete = true;
                let rows = sqlx::query(&format!(
                    "SELECT {WAITING_COLUMNS} FROM scheduled_changes WHERE status = 'scheduled'"
                ))
                .fetch_all(&mut *conn)
                .await?;
                for r in &rows {
                    let (key, row) = waiting_row(r)?;
                    cache.insert(key, row);
                }
            }
            self.scheduled = Some(cache);
        }
        Ok(self.scheduled.get_or_insert_with(ScheduledCache::default))
    }

    /// The change `key` has waiting, if any.
    async fn waiting_for(
        &mut self,
        conn: &mut SqliteConnection,
        key: &WaitingKey,
    ) -> Result<Option<WaitingRow>> {
        let cache = self.scheduled_cache(conn).await?;
        if let Some(known) = cache.by_key.get(key) {
            return Ok(known.clone());
        }
        if cache.complete {
            return Ok(None);
        }
        let row = sqlx::query(&format!(
            "SELECT {WAITING_COLUMNS} FROM scheduled_changes
             WHERE system_id = ? AND object = ? AND external_id = ? AND status = 'scheduled'"
        ))
        .bind(&key.0)
        .bind(&key.1)
        .bind(&key.2)
        .fetch_optional(&mut *conn)
        .await?;
        let found = row.as_ref().map(waiting_row).transpose()?.map(|(_, w)| w);
        let cache = self.scheduled_cache(conn).await?;
        match &found {
            Some(w) => cache.insert(key.clone(), w.clone()),
            None => {
                cache.by_key.insert(key.clone(), None);
            }
        }
        Ok(found)
    }

    /// The fields of `record` that `system` has dated in the future: writes of them to that
    /// system wait, since they would overwrite the value it holds for that date.
    pub(super) async fn scheduled_fields(
        &mut self,
        conn: &mut SqliteConnection,
        record: RecordId,
        system: &str,
    ) -> Result<BTreeSet<String>> {
        let at = (record, system.to_owned());
        let cache = self.scheduled_cache(conn).await?;
        if let Some(fields) = cache.by_record.get(&at) {
            return Ok(fields.clone());
        }
        if cache.complete {
            return Ok(BTreeSet::new());
        }
        let rows: Vec<String> = sqlx::query_scalar(
            "SELECT fields FROM scheduled_changes
             WHERE record_id = ? AND system_id = ? AND status = 'scheduled'",
        )
        .bind(record)
        .bind(system)
        .fetch_all(&mut *conn)
        .await?;
        let mut fields = BTreeSet::new();
        for held in rows {
            fields.extend(serde_json::from_str::<Fields>(&held)?.into_keys());
        }
        self.scheduled_cache(conn)
            .await?
            .by_record
            .insert(at, fields.clone());
        Ok(fields)
    }

    /// Splits off what an upsert dates in the future and holds it; drops a waiting change the
    /// event supersedes. Released changes and undated events pass untouched.
    ///
    /// `record` is the record the event is about, and whether the system is linked to it yet
    /// (else it is the one record its match keys find, which the event is about to link). A
    /// linked system's dated values are compared with what it last held; a system linking now
    /// is taken to hold the golden values until the date, so its dated values wait and the
    /// rest of the event links it now. An event no record matches waits whole.
    pub(super) async fn hold_effective_dated(
        &mut self,
        conn: &mut SqliteConnection,
        event: &InboxEvent,
        mapping: &Mapping,
        record: Option<(RecordId, bool)>,
        inbound: &mut Inbound,
    ) -> Result<Dated> {
        let record_id = record.map(|(r, _)| r);
        let mut converge = BTreeSet::new();
        let (Some(dated), None, ChangeOp::Upsert) =
            (&mapping.effective_date, &event.scheduled, event.op)
        else {
            return Ok(Dated::Go { converge });
        };
        let timing = effective::timing(dated, &event.payload, self.now);
        let governed = effective::governed(dated, mapping.reads());
        if let Timing::Invalid { value, message } = &timing {
            let fields: Vec<String> = governed
                .iter()
                .filter(|f| inbound.values.remove(*f).is_some())
                .cloned()
                .collect();
            if !fields.is_empty() {
                inbound.errors.push(FieldError {
                    fields,
                    paths: vec![dated.path.clone()],
                    value: value.clone(),
                    message: format!("{message}; the values it dates wait for a readable date"),
                });
            }
            return Ok(Dated::Go { converge });
        }
        if timing == Timing::Undated {
            return Ok(Dated::Go { converge });
        }
        let mut reference = Fields::new();
        let held = match (&timing, record) {
            (Timing::Future { .. }, Some((r, linked))) => {
                let state = &self.load(conn, r).await?.state;
                reference = if linked {
                    state
                        .shadows
                        .get(&event.system)
                        .cloned()
                        .unwrap_or_default()
                } else {
                    state.golden.clone()
                };
                let present: Vec<String> = governed
                    .iter()
                    .filter(|f| inbound.values.contains_key(*f))
                    .cloned()
                    .collect();
                let held = effective::split_held(&mut inbound.values, &governed, Some(&reference));
                if !linked {
                    // Linking now: the system's shadow starts at the golden values, so that on
                    // the date its change is a change, not a conflict with what it never said.
                    for f in present {
                        let v = reference.get(&f).cloned().unwrap_or(Value::Null);
                        inbound.values.insert(f, v);
                    }
                }
                held
            }
            (Timing::Future { .. }, None) => {
                effective::split_held(&mut inbound.values, &governed, None)
            }
            _ => Fields::new(),
        };
        let key = (
            event.system.clone(),
            event.object.clone(),
            event.external_id.clone(),
        );
        let waiting = self.waiting_for(conn, &key).await?;
        match effective::decide(&timing, &held, waiting.as_ref().map(|w| &w.waiting)) {
            Step::Keep => match waiting {
                Some(w) if record_id.is_none() && !held.is_empty() => Ok(Dated::Held(w.id)),
                _ => Ok(Dated::Go { converge }),
            },
            Step::Supersede(reason) => {
                if let Some(w) = waiting {
                    self.supersede_scheduled(conn, &key, &w, &reason).await?;
                    if record_id.is_some() {
                        converge.extend(w.waiting.values.into_keys());
                    }
                }
                Ok(Dated::Go { converge })
            }
            Step::Schedule => {
                let Timing::Future { at, date } = &timing else {
                    return Ok(Dated::Go { converge });
                };
                if let Some(w) = waiting {
                    let reason = format!("replaced by the system's later change dated {date}");
                    self.supersede_scheduled(conn, &key, &w, &reason).await?;
                    if record_id.is_some() {
                        converge.extend(
                            w.waiting
                                .values
                                .into_keys()
                                .filter(|f| !held.contains_key(f)),
                        );
                    }
                }
                let base: Fields = held
                    .keys()
                    .map(|f| (f.clone(), reference.get(f).cloned().unwrap_or(Value::Null)))
                    .collect();
                let id = self
                    .insert_scheduled(conn, event, record_id, (*at, date), (&held, &base))
                    .await?;
                match record_id {
                    None => Ok(Dated::Held(id)),
                    Some(_) => Ok(Dated::Go { converge }),
                }
            }
        }
    }

    async fn insert_scheduled(
        &mut self,
        conn: &mut SqliteConnection,
        event: &InboxEvent,
        record_id: Option<RecordId>,
        (at, date): (DateTime<Utc>, &str),
        (held, base): (&Fields, &Fields),
    ) -> Result<i64> {
        let now_s = ts(self.now);
        self.begin_writing(conn).await?;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO scheduled_changes (system_id, object, external_id, record_id, effective_date, effective_at, fields, base, inbox_id, created_at, updated_at)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
        )
        .bind(&event.system)
        .bind(&event.object)
        .bind(&event.external_id)
        .bind(record_id)
        .bind(date)
        .bind(ts(at))
        .bind(serde_json::to_string(held)?)
        .bind(serde_json::to_string(base)?)
        .bind(event.id)
        .bind(&now_s)
        .bind(&now_s)
        .fetch_one(&mut *conn)
        .await?;
        let mut entry = AuditEntry::engine("schedule:held", Direction::In)
            .system(&event.system)
            .detail(json!({
                "scheduled": id,
                "effective": date,
                "external_id": event.external_id,
                "fields": held.keys().collect::<Vec<_>>(),
            }));
        if let Some(r) = record_id {
            entry = entry.record(&event.object, r);
        }
        self.audit.push(entry);
        let key = (
            event.system.clone(),
            event.object.clone(),
            event.external_id.clone(),
        );
        let row = WaitingRow {
            id,
            record_id,
            waiting: Waiting {
                at,
                values: held.clone(),
            },
        };
        self.scheduled_cache(conn).await?.insert(key, row);
        Ok(id)
    }

    async fn supersede_scheduled(
        &mut self,
        conn: &mut SqliteConnection,
        key: &(String, String, String),
        waiting: &WaitingRow,
        reason: &str,
    ) -> Result<()> {
        let now_s = ts(self.now);
        self.begin_writing(conn).await?;
        sqlx::query(
            "UPDATE scheduled_changes SET status = 'superseded', reason = ?, updated_at = ?
             WHERE id = ? AND status = 'scheduled'",
        )
        .bind(reason)
        .bind(&now_s)
        .bind(waiting.id)
        .execute(&mut *conn)
        .await?;
        let mut entry = AuditEntry::engine("schedule:superseded", Direction::In)
            .system(&key.0)
            .detail(json!({ "scheduled": waiting.id, "external_id": key.2, "reason": reason }));
        if let Some(r) = waiting.record_id {
            entry = entry.record(&key.1, r);
        }
        self.audit.push(entry);
        self.scheduled_cache(conn).await?.remove(key);
        Ok(())
    }
}

impl Engine {
    /// Moves the changes whose effective date has come into the inbox, each as an event of
    /// its system (audited), in one transaction. Returns how many.
    pub(crate) async fn release_due_changes(&self) -> Result<usize> {
        let now = self.now();
        let now_s = ts(now);
        let due: Vec<DueChange> = sqlx::query_as(
            "SELECT id, system_id, object, external_id, record_id, effective_date, effective_at
                 FROM scheduled_changes WHERE status = 'scheduled' AND effective_at <= ?
                 ORDER BY effective_at, id LIMIT ?",
        )
        .bind(&now_s)
        .bind(RELEASE_PER_BATCH)
        .fetch_all(&self.inner.pool)
        .await?;
        if due.is_empty() {
            return Ok(0);
        }
        let _writer = self.inner.sqlite_writer.lock().await;
        let mut tx = store::begin_write(&self.inner.pool).await?;
        let mut audit = Vec::with_capacity(due.len());
        for (id, system, object, external_id, record_id, date, at) in &due {
            let inbox_id: i64 = sqlx::query_scalar(
                "INSERT INTO inbox (system_id, event_key, object, external_id, op, payload, source_ts, received_at, scheduled_change_id)
                 VALUES (?, ?, ?, ?, 'upsert', '{}', ?, ?, ?)
                 ON CONFLICT(system_id, event_key) DO UPDATE SET duplicates = duplicates + 1
                 RETURNING id",
            )
            .bind(system)
            .bind(format!("concord-scheduled:{id}"))
            .bind(object)
            .bind(external_id)
            .bind(at)
            .bind(&now_s)
            .bind(id)
            .fetch_one(&mut *tx)
            .await?;
            sqlx::query(
                "UPDATE scheduled_changes SET status = 'released', released_at = ?, released_inbox_id = ?, updated_at = ?
                 WHERE id = ? AND status = 'scheduled'",
            )
            .bind(&now_s)
            .bind(inbox_id)
            .bind(&now_s)
            .bind(id)
            .execute(&mut *tx)
            .await?;
            let mut entry = AuditEntry::engine("schedule:released", Direction::In)
                .system(system)
                .detail(json!({ "scheduled": id, "effective": date, "external_id": external_id }));
            if let Some(r) = record_id {
                entry = entry.record(object, *r);
            }
            audit.push(entry);
        }
        store::insert_audit(&mut tx, &audit, now).await?;
        tx.commit().await?;
        tracing::info!(
            changes = due.len(),
            "effective-dated changes released on their date"
        );
        Ok(due.len())
    }

    /// Scheduled changes, newest effective date last for waiting ones, with what each held.
    pub async fn scheduled_changes(&self, filter: &ScheduledFilter) -> Result<ScheduledPage> {
        let status = filter.status.unwrap_or_default().as_str();
        let limit = filter.limit.unwrap_or(100).clamp(1, 1000);
        let offset = filter.offset.unwrap_or(0).max(0);
        let rows = sqlx::query(
            "SELECT s.id, s.system_id, s.object, s.external_id, s.record_id, s.effective_date, s.effective_at,
                    s.fields, s.base, s.status, s.reason, s.created_at, s.released_at, i.status, i.detail
             FROM scheduled_changes s LEFT JOIN inbox i ON i.id = s.released_inbox_id
             WHERE (? = 'all' OR s.status = ?) AND (? IS NULL OR s.system_id = ?)
             ORDER BY s.effective_at, s.id LIMIT ? OFFSET ?",
        )
        .bind(status)
        .bind(status)
        .bind(&filter.system)
        .bind(&filter.system)
        .bind(limit)
        .bind(offset)
        .fetch_all(&self.inner.pool)
        .await?;
        let ws = self.workspace();
        let mut items = Vec::with_capacity(rows.len());
        for r in rows {
            let object: String = r.get(2);
            let record_id: Option<RecordId> = r.get(4);
            let values: Fields = serde_json::from_str(&r.get::<String, _>(7))?;
            let base: Fields = serde_json::from_str(&r.get::<String, _>(8))?;
            let currency = match (ws.object(&object), record_id) {
                (Some(schema), Some(r)) => {
                    let golden = self
                        .record_view(r)
                        .await
                        .map(|v| v.golden)
                        .unwrap_or_default();
                    let mut merged = golden;
                    merged.extend(values.clone());
                    values.keys().find_map(|f| schema.currency_of(f, &merged))
                }
                (Some(schema), None) => values.keys().find_map(|f| schema.currency_of(f, &values)),
                _ => None,
            };
            let detail: Option<String> = r.get(14);
            items.push(ScheduledChange {
                id: r.get(0),
                system: r.get(1),
                object,
                external_id: r.get(3),
                record_id,
                effective_date: r.get(5),
                effective_at: r.get(6),
                values,
                base,
                currency,
                status: r.get(9),
                reason: r.get(10),
                created_at: r.get(11),
                released_at: r.get(12),
                outcome: r.get(13),
                outcome_detail: detail.and_then(|d| serde_json::from_str(&d).ok()),
            });
        }
        let counts: Vec<(String, i64)> =
            sqlx::query_as("SELECT status, COUNT(*) FROM scheduled_changes GROUP BY status")
                .fetch_all(&self.inner.pool)
                .await?;
        let count = |s: &str| {
            counts
                .iter()
                .find(|(k, _)| k == s)
                .map_or(0, |(_, n)| u64::try_from(*n).unwrap_or(0))
        };
        Ok(ScheduledPage {
            items,
            scheduled: count("scheduled"),
            released: count("released"),
            superseded: count("superseded"),
        })
    }
}

/// Which scheduled changes to list, by state.
#[derive(
    Debug, Default, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum ScheduledStatus {
    /// Waiting for their date.
    #[default]
    Scheduled,
    /// In the inbox since their date came.
    Released,
    /// Dropped: the system changed its word before the date.
    Superseded,
    All,
}

impl ScheduledStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Scheduled => "scheduled",
            Self::Released => "released",
            Self::Superseded => "superseded",
            Self::All => "all",
        }
    }
}

/// Which scheduled changes to list.
#[derive(Debug, Default, Clone, serde::Deserialize, utoipa::IntoParams, utoipa::ToSchema)]
#[into_params(parameter_in = Query)]
pub struct ScheduledFilter {
    /// Waiting ones (the default), released, superseded, or all.
    pub status: Option<ScheduledStatus>,
    #[param(min_length = 1)]
    pub system: Option<String>,
    /// At most this many (1000 at most; 100 by default).
    #[param(minimum = 1, maximum = 10000)]
    pub limit: Option<i64>,
    #[param(minimum = 0, maximum = 1000000000)]
    pub offset: Option<i64>,
}

/// A change a system dated in the future.
#[derive(Debug, Clone, Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct ScheduledChange {
    pub id: i64,
    pub system: String,
    pub object: String,
    pub external_id: String,
    /// None while the record is not linked yet (it joins on its date).
    pub record_id: Option<RecordId>,
    /// The system's text for the date, and the instant it stands for.
    pub effective_date: String,
    pub effective_at: String,
    /// The canonical values held until then.
    #[schema(value_type = Object)]
    pub values: Fields,
    /// What the system held of those fields when they were held.
    #[schema(value_type = Object)]
    pub base: Fields,
    /// The currency of a money value among them.
    pub currency: Option<String>,
    /// `scheduled`, `released` or `superseded`.
    pub status: String,
    /// Why a superseded change was dropped.
    pub reason: Option<String>,
    pub created_at: String,
    pub released_at: Option<String>,
    /// What became of a released change's event: `pending`, `applied`, `held`, `failed`.
    pub outcome: Option<String>,
    #[schema(value_type = Option<Object>)]
    pub outcome_detail: Option<Value>,
}

/// A page of scheduled changes, and how many there are in each state.
#[derive(Debug, Clone, Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct ScheduledPage {
    pub items: Vec<ScheduledChange>,
    pub scheduled: u64,
    pub released: u64,
    pub superseded: u64,
}
