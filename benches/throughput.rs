//! Throughput of the engine on this machine, printed as figures (nothing is asserted).
//!
//! `cargo bench --bench throughput` measures, on real SQLite files in a temporary directory
//! (WAL, `synchronous = NORMAL`, as the engine opens them):
//!
//! 1. **Ingest**: change events stored durably with [`Engine::ingest_many`], in chunks.
//! 2. **Apply**: draining the inbox with [`Engine::process_inbox`] until it returns 0, per kind
//!    of event, on the self-check's HR workspace (HRIS and payroll, employee object, real
//!    transforms and ownership policies):
//!    - creates: first contact from the HRIS (golden record, links, match keys, a create queued
//!      for payroll);
//!    - updates: full-record webhooks with one or two fields changed, from both sides, two per
//!      record so that queued writes coalesce;
//!    - no-op echoes: each system re-sending the record as it holds it after our writes.
//!
//!    Between the phases the queued writes are delivered through an in-process connector (no
//!    HTTP), so the records are linked in both systems as in steady state; that delivery is
//!    timed too, as the engine's own cost of a write.
//! 3. **Raw SQLite**: the same inbox rows inserted with plain sqlx into a table of the same
//!    shape, in transactions of the same size: the ceiling ingest can be compared with. Once
//!    with one row per INSERT, as ingest does, and once with 100 rows per INSERT, which shows
//!    what each statement's hop to sqlx's SQLite worker thread costs on this machine. Best of
//!    three runs each, as a ceiling should be.
//! 4. **Delivery over HTTP**: creates sent to a [`LoopbackSystem`] on 127.0.0.1 (rate limit
//!    off) by [`Engine::deliver`] rounds until the outbox is empty.
//!
//! The process's user and system CPU time is printed per apply phase. A last, smaller run (a
//! tenth of the events, at most 10000) with sqlx's statement log on counts the statements
//! each step issues per event and how long SQLite spent executing them: the rest of a step's
//! time is Rust code and the round trips to the SQLite thread.
//!
//! Environment: `CONCORD_BENCH_EVENTS` (default 100000; 40% creates, 40% updates, 20% echoes),
//! `CONCORD_BENCH_BATCH` (applier batch size, default 2000), `CONCORD_BENCH_CHUNK` (events
//! per `ingest_many` and rows per raw transaction, default 5000), `CONCORD_BENCH_WRITES` (HTTP
//! delivery, default 5000; 0 skips it), `CONCORD_BENCH_PROFILE=0` skips the statement count,
//! `CONCORD_BENCH_DIR` places the SQLite files (default: the system temp dir),
//! `CONCORD_BENCH_WAITING` plants that many dated changes waiting for a date a year ahead
//! (other people's year-end rises) before the updates, so their cost to each batch shows.

mod common;

use std::collections::HashMap;
use std::path::Path;
use std::str::FromStr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail, ensure};
use async_trait::async_trait;
use concord::connector::{
    Capabilities, Connector, ConnectorError, FetchedRecord, WriteOutcome, WriteRequest,
};
use concord::loopback::LoopbackSystem;
use concord::model::{ChangeEvent, ChangeOp, WorkspaceConfig};
use concord::{Engine, EngineOptions, IngestOutcome, Settings};
use serde_json::{Map, Value, json};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

#[global_allocator]
static ALLOCATOR: concord::Allocator = concord::Allocator;

/// Knobs, from the environment.
#[derive(Debug, Clone, Copy)]
struct Config {
    events: usize,
    batch: usize,
    chunk: usize,
    http_writes: usize,
    profile: bool,
    waiting: usize,
}

impl Config {
    fn from_env() -> Result<Self> {
        Ok(Self {
            events: common::env_or("CONCORD_BENCH_EVENTS", 100_000)?.max(10),
            batch: common::env_or("CONCORD_BENCH_BATCH", 2_000)?.max(1),
            chunk: common::env_or("CONCORD_BENCH_CHUNK", 5_000)?.max(1),
            http_writes: common::env_or("CONCORD_BENCH_WRITES", 5_000)?,
            profile: common::env_or("CONCORD_BENCH_PROFILE", 1)? != 0,
            waiting: common::env_or("CONCORD_BENCH_WAITING", 0)?,
        })
    }
}

/// How many events of each kind a run applies.
#[derive(Debug, Clone, Copy)]
struct Mix {
    creates: usize,
    updates: usize,
    echoes: usize,
}

impl Mix {
    fn of(total: usize) -> Self {
        let creates = total * 2 / 5;
        let updates = total * 2 / 5;
        Self {
            creates,
            updates,
            echoes: total - creates - updates,
        }
    }

    fn total(self) -> usize {
        self.creates + self.updates + self.echoes
    }
}

// ---------------------------------------------------------------------------------------------
// An in-memory system: the records people edit (producing full-record webhooks) and the
// connector the engine writes to, with versions like the loopback system, but no HTTP.

#[derive(Default)]
struct Records {
    by_id: HashMap<String, (Map<String, Value>, i64)>,
    version_clock: i64,
    next_id: u64,
}

#[derive(Clone)]
struct MemorySystem {
    name: &'static str,
    id_prefix: &'static str,
    records: Arc<Mutex<Records>>,
}

impl MemorySystem {
    fn new(name: &'static str, id_prefix: &'static str) -> Self {
        Self {
            name,
            id_prefix,
            records: Arc::default(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Records> {
        self.records.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn event(&self, id: &str, record: Map<String, Value>, version: i64, tag: &str) -> ChangeEvent {
        ChangeEvent {
            system: self.name.to_owned(),
            object: "employee".to_owned(),
            external_id: id.to_owned(),
            op: ChangeOp::Upsert,
            record,
            version: Some(version),
            etag: Some(format!("\"{version}\"")),
            source_ts: Some(chrono::Utc::now()),
            event_key: format!("{}:{id}:v{version}{tag}", self.name),
        }
    }

    /// A person edits (or creates) a record: fields merge, the version moves on, and the
    /// webhook carries the whole record.
    fn edit(&self, id: &str, fields: Value) -> ChangeEvent {
        let (record, version) = {
            let mut store = self.lock();
            store.version_clock += 1;
            let version = store.version_clock;
            let entry = store.by_id.entry(id.to_owned()).or_default();
            if let Value::Object(fields) = fields {
                entry.0.extend(fields);
            }
            entry.0.insert("id".into(), json!(id));
            entry.0.insert("version".into(), json!(version));
            entry.1 = version;
            (entry.0.clone(), version)
        };
        self.event(id, record, version, "")
    }

    /// The record as the system holds it now, sent again (a re-delivery, a poll, the webhook
    /// of one of our own writes).
    fn echo(&self, id: &str, tag: &str) -> Result<ChangeEvent> {
        let (record, version) = self
            .lock()
            .by_id
            .get(id)
            .cloned()
            .with_context(|| format!("{} has no record {id}", self.name))?;
        Ok(self.event(id, record, version, tag))
    }

    fn field(&self, id: &str, field: &str) -> Option<Value> {
        self.lock().by_id.get(id)?.0.get(field).cloned()
    }

    fn ids_by(&self, field: &str) -> HashMap<String, String> {
        self.lock()
            .by_id
            .iter()
            .filter_map(|(id, (r, _))| Some((r.get(field)?.as_str()?.to_owned(), id.clone())))
            .collect()
    }

    fn write(
        &self,
        id: Option<&str>,
        write: &WriteRequest,
    ) -> Result<WriteOutcome, ConnectorError> {
        let mut store = self.lock();
        store.version_clock += 1;
        let version = store.version_clock;
        let id = match id {
            Some(id) if !store.by_id.contains_key(id) => {
                return Err(ConnectorError::NotFound {
                    system: self.name.to_owned(),
                    external_id: id.to_owned(),
                });
            }
            Some(id) => id.to_owned(),
            None => {
                store.next_id += 1;
                format!("{}{:06}", self.id_prefix, store.next_id)
            }
        };
        if let (Some(expected), Some((_, current))) = (&write.if_match, store.by_id.get(&id))
            && *expected != format!("\"{current}\"")
        {
            return Err(ConnectorError::VersionConflict {
                system: self.name.to_owned(),
            });
        }
        let entry = store.by_id.entry(id.clone()).or_default();
        entry.0.extend(write.payload.clone());
        entry.0.insert("id".into(), json!(id));
        entry.0.insert("version".into(), json!(version));
        entry.1 = version;
        Ok(WriteOutcome {
            external_id: id,
            version: Some(version),
            etag: Some(format!("\"{version}\"")),
        })
    }
}

#[async_trait]
impl Connector for MemorySystem {
    /// Writes carry `If-Match` with the record's token, as a system with ETags takes them.
    fn capabilities(&self) -> Capabilities {
        Capabilities {
            versioned_writes: true,
            ..Capabilities::default()
        }
    }

    async fn create(&self, write: &WriteRequest) -> Result<WriteOutcome, ConnectorError> {
        self.write(None, write)
    }

    async fn update(
        &self,
        external_id: &str,
        write: &WriteRequest,
    ) -> Result<WriteOutcome, ConnectorError> {
        self.write(Some(external_id), write)
    }

    async fn delete(
        &self,
        external_id: &str,
        _write: &WriteRequest,
    ) -> Result<WriteOutcome, ConnectorError> {
        let version = {
            let mut store = self.lock();
            store.by_id.remove(external_id);
            store.version_clock += 1;
            store.version_clock
        };
        Ok(WriteOutcome {
            external_id: external_id.to_owned(),
            version: Some(version),
            etag: None,
        })
    }

    async fn get(
        &self,
        _object: &str,
        external_id: &str,
    ) -> Result<Option<FetchedRecord>, ConnectorError> {
        let Some((record, version)) = self.lock().by_id.get(external_id).cloned() else {
            return Ok(None);
        };
        // Built through serde, so fields added to `FetchedRecord` with defaults need nothing here.
        serde_json::from_value(json!({
            "external_id": external_id,
            "record": record,
            "version": version,
            "etag": format!("\"{version}\""),
        }))
        .map(Some)
        .map_err(|e| ConnectorError::Config(format!("{}: {e}", self.name)))
    }
}

// ---------------------------------------------------------------------------------------------
// The workload.

fn hris_id(i: usize) -> String {
    format!("H{i:06}")
}

fn employee_number(i: usize) -> String {
    format!("E{i:06}")
}

/// The HRIS record of a new hire.
fn new_hire(i: usize) -> Value {
    json!({
        "employee_id": employee_number(i),
        "full_name": format!("Given{i} Family{i}"),
        "email": format!("person{i}@acme.example"),
        "phone": format!("(415) 555-{:04}", i % 10_000),
        "status": "Active",
        "hire_date": format!("{:02}/{:02}/20{:02}", 1 + i % 12, 1 + i % 28, 10 + i % 15),
        "title": "Analyst",
        "department": "Finance",
    })
}

/// Visits `0..n` in a scattered but repeatable order (a stride coprime with `n`).
fn scatter(j: usize, n: usize) -> usize {
    const STRIDE: usize = 7_919;
    if n.is_multiple_of(STRIDE) {
        j % n
    } else {
        (j % n) * STRIDE % n
    }
}

/// The engine under test, its two systems, and every event ingested (for the raw comparison).
struct Scenario {
    engine: Engine,
    hris: MemorySystem,
    payroll: MemorySystem,
    chunk: usize,
    records: usize,
    payroll_ids: Vec<String>,
    raw_rows: Option<Vec<RawRow>>,
}

/// One inbox row, as the engine stores it.
struct RawRow {
    system_id: String,
    event_key: String,
    object: String,
    external_id: String,
    op: &'static str,
    payload: String,
    version: Option<i64>,
    source_ts: Option<String>,
}

/// One measured step: how many events (or rows, or writes) and how long it took.
#[derive(Debug, Clone, Copy, Default)]
struct Timing {
    events: usize,
    elapsed: Duration,
    /// CPU time of the whole process meanwhile (user, system), where the OS reports it.
    cpu: Cpu,
}

/// User and system CPU seconds of this process, from `/proc/self/stat` (Linux; zero elsewhere).
#[derive(Debug, Clone, Copy, Default)]
struct Cpu {
    user: f64,
    system: f64,
}

impl Cpu {
    fn now() -> Self {
        // Fields 14 and 15 (utime, stime) in clock ticks of 1/100 s; the name in field 2 may
        // hold spaces, so counting starts after its closing parenthesis.
        let ticks = |stat: &str, field: usize| -> Option<f64> {
            let rest = &stat[stat.rfind(')')? + 1..];
            rest.split_whitespace().nth(field - 3)?.parse().ok()
        };
        std::fs::read_to_string("/proc/self/stat")
            .ok()
            .and_then(|stat| {
                Some(Self {
                    user: ticks(&stat, 14)? / 100.0,
                    system: ticks(&stat, 15)? / 100.0,
                })
            })
            .unwrap_or_default()
    }

    fn since(self, start: Self) -> Self {
        Self {
            user: self.user - start.user,
            system: self.system - start.system,
        }
    }
}

impl Timing {
    fn rate(self) -> f64 {
        per_second(self.events, self.elapsed)
    }

    fn add(&mut self, other: Self) {
        self.events += other.events;
        self.elapsed += other.elapsed;
        self.cpu.user += other.cpu.user;
        self.cpu.system += other.cpu.system;
    }
}

fn per_second(n: usize, elapsed: Duration) -> f64 {
    n as f64 / elapsed.as_secs_f64().max(1e-9)
}

/// The self-check workspace, with systems whose connectors the program registers itself.
fn workspace(external: bool) -> WorkspaceConfig {
    let mut config = concord::selfcheck::workspace("http://127.0.0.1:9", "http://127.0.0.1:9");
    for system in &mut config.systems {
        system.rate_limit_per_sec = None;
        if external {
            system.connector = "external".into();
        }
    }
    config
}

impl Scenario {
    async fn open(dir: &Path, batch: usize, chunk: usize, keep_raw: bool) -> Result<Self> {
        let engine = Engine::open(
            &dir.join("state.db"),
            EngineOptions {
                settings: Settings {
                    batch_size: batch,
                    breaker: common::counting_breaker(),
                    ..Settings::default()
                },
                ..EngineOptions::default()
            },
        )
        .await?;
        engine.apply_workspace(&workspace(true)).await?;
        let hris = MemorySystem::new("hris", "H");
        let payroll = MemorySystem::new("payroll", "P");
        engine.register_connector("hris", Arc::new(hris.clone()));
        engine.register_connector("payroll", Arc::new(payroll.clone()));
        Ok(Self {
            engine,
            hris,
            payroll,
            chunk,
            records: 0,
            payroll_ids: Vec::new(),
            raw_rows: keep_raw.then(Vec::new),
        })
    }

    /// Stores events with `ingest_many`, `chunk` at a time; returns the time it took.
    async fn ingest(&mut self, events: &[ChangeEvent]) -> Result<Timing> {
        let cpu = Cpu::now();
        let started = Instant::now();
        let mut duplicates = 0;
        for chunk in events.chunks(self.chunk) {
            for outcome in self.engine.ingest_many(chunk).await? {
                if matches!(outcome, IngestOutcome::Duplicate(_)) {
                    duplicates += 1;
                }
            }
        }
        let elapsed = started.elapsed();
        let cpu = Cpu::now().since(cpu);
        ensure!(
            duplicates == 0,
            "{duplicates} events were taken as duplicates"
        );
        if let Some(rows) = &mut self.raw_rows {
            for e in events {
                rows.push(RawRow {
                    system_id: e.system.clone(),
                    event_key: e.event_key.clone(),
                    object: e.object.clone(),
                    external_id: e.external_id.clone(),
                    op: e.op.as_str(),
                    payload: serde_json::to_string(&e.record)?,
                    version: e.version,
                    source_ts: e.source_ts.map(concord::store::ts),
                });
            }
        }
        Ok(Timing {
            events: events.len(),
            elapsed,
            cpu,
        })
    }

    /// Drains the inbox with `process_inbox` until it returns 0.
    async fn apply(&self, expected: usize) -> Result<Timing> {
        let cpu = Cpu::now();
        let started = Instant::now();
        let mut applied = 0;
        loop {
            let n = self.engine.process_inbox().await?;
            if n == 0 {
                break;
            }
            applied += n;
        }
        let elapsed = started.elapsed();
        let cpu = Cpu::now().since(cpu);
        ensure!(
            applied == expected,
            "applied {applied} events, expected {expected}"
        );
        Ok(Timing {
            events: applied,
            elapsed,
            cpu,
        })
    }

    /// Delivers every queued write through the in-process connectors.
    async fn deliver(&self) -> Result<Timing> {
        let started = Instant::now();
        let mut writes = 0;
        loop {
            let n = self.engine.deliver("payroll").await? + self.engine.deliver("hris").await?;
            if n == 0 {
                break;
            }
            writes += n;
        }
        let elapsed = started.elapsed();
        let left = self
            .count("SELECT COUNT(*) FROM outbox WHERE status IN ('pending', 'in_flight')")
            .await?;
        ensure!(left == 0, "{left} writes are still queued after delivery");
        Ok(Timing {
            events: writes,
            elapsed,
            cpu: Cpu::default(),
        })
    }

    /// `n` dated changes of people the bench never edits, waiting for a date a year ahead.
    async fn plant_waiting(&self, n: usize) -> Result<()> {
        let mut tx = self.engine.pool().begin().await?;
        for i in 0..n {
            sqlx::query(
                "INSERT INTO scheduled_changes (system_id, object, external_id, effective_date,
                     effective_at, fields, created_at, updated_at)
                 VALUES ('hris', 'employee', ?, '2099-01-01', '2099-01-01T00:00:00.000000Z',
                     '{\"pay_rate\":\"90000.00\"}', '2026-12-01T00:00:00.000000Z',
                     '2026-12-01T00:00:00.000000Z')",
            )
            .bind(format!("waiting-{i}"))
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn count(&self, sql: &str) -> Result<usize> {
        let n: i64 = sqlx::query_scalar(sql)
            .fetch_one(self.engine.pool())
            .await?;
        Ok(usize::try_from(n)?)
    }

    /// New hires in the HRIS, seen by the engine for the first time.
    fn create_events(&mut self, n: usize) -> Vec<ChangeEvent> {
        let first = self.records;
        self.records += n;
        (first..first + n)
            .map(|i| self.hris.edit(&hris_id(i), new_hire(i)))
            .collect()
    }

    /// After the creates reached payroll: which payroll record holds which employee.
    fn index_payroll(&mut self) -> Result<()> {
        let by_number = self.payroll.ids_by("emp_no");
        self.payroll_ids = (0..self.records)
            .map(|i| {
                by_number
                    .get(&employee_number(i))
                    .cloned()
                    .with_context(|| format!("employee {i} never reached payroll"))
            })
            .collect::<Result<_>>()?;
        Ok(())
    }

    /// Edits on both sides, two per record (so a queued write takes a second change), full
    /// records as webhooks carry them. Most change a field the other system maps.
    fn update_events(&self, n: usize) -> Vec<ChangeEvent> {
        let records = self.records.max(1);
        let touched = n.div_ceil(2).clamp(1, records);
        (0..n)
            .map(|k| {
                let rec = scatter(k % touched, records);
                let round = k / touched;
                let (hris, payroll) = (&self.hris, &self.payroll);
                let (hid, pid) = (hris_id(rec), &self.payroll_ids[rec]);
                let hris_phone = format!("(415) 555-{:04}", (rec * 7 + 1 + round * 13) % 10_000);
                let payroll_phone =
                    format!("+1415555{:04}", (rec * 3 + 5_000 + round * 17) % 10_000);
                let on_leave = hris.field(&hid, "status") == Some(json!("On Leave"));
                let (system, id, fields) = match (rec * 7 + round) % 8 {
                    // HRIS-only fields: the golden record changes, nothing is written.
                    0 => (
                        hris,
                        &hid,
                        json!({ "title": format!("Senior Analyst {round}") }),
                    ),
                    1 => (hris, &hid, json!({ "department": format!("Dept {round}") })),
                    // Fields payroll maps: a write to payroll is queued (or coalesced).
                    2 => (hris, &hid, json!({ "phone": hris_phone })),
                    3 => (
                        hris,
                        &hid,
                        json!({ "email": format!("p{rec}.r{round}@acme.example") }),
                    ),
                    4 => (
                        hris,
                        &hid,
                        json!({ "status": if on_leave { "Active" } else { "On Leave" } }),
                    ),
                    5 => (
                        hris,
                        &hid,
                        json!({ "full_name": format!("Given{rec} Name{round}") }),
                    ),
                    // Payroll: its own pay rate (nothing to write), a phone (written to HRIS).
                    6 => (
                        payroll,
                        pid,
                        json!({ "salary_cents": 5_000_000 + rec + round * 101 }),
                    ),
                    _ => (payroll, pid, json!({ "phone": payroll_phone })),
                };
                system.edit(id, fields)
            })
            .collect()
    }

    /// Each system sends a record again as it holds it after our writes: nothing to do.
    fn echo_events(&self, n: usize) -> Result<Vec<ChangeEvent>> {
        let records = self.records.max(1);
        (0..n)
            .map(|k| {
                let rec = scatter(k / 2, records);
                let tag = format!(":echo{k}");
                if k % 2 == 0 {
                    self.payroll.echo(&self.payroll_ids[rec], &tag)
                } else {
                    self.hris.echo(&hris_id(rec), &tag)
                }
            })
            .collect()
    }
}

/// The figures of one run.
#[derive(Debug, Default)]
struct Figures {
    ingest: Timing,
    creates: Timing,
    updates: Timing,
    echoes: Timing,
    delivery: Timing,
    outbox_creates: usize,
    outbox_updates: usize,
    update_writes: usize,
    echo_side_effects: usize,
    exceptions: usize,
    not_applied: usize,
    db_bytes: u64,
    records: i64,
    /// Bytes per table (indexes included), largest first.
    tables: Vec<(String, i64)>,
    /// The same once all history is compacted (retention 0): what records cost to keep.
    compacted_tables: Vec<(String, i64)>,
    compact_time: Duration,
}

/// The whole apply benchmark: creates, delivery, updates, delivery, echoes. `checkpoint` is
/// called with `None` before each measured step and with its name and timing after it.
async fn run_engine(
    s: &mut Scenario,
    mix: Mix,
    waiting: usize,
    mut checkpoint: impl FnMut(Option<(&str, Timing)>),
) -> Result<Figures> {
    let mut f = Figures::default();

    let events = s.create_events(mix.creates);
    f.ingest.add(s.ingest(&events).await?);
    drop(events);
    checkpoint(None);
    f.creates = s.apply(mix.creates).await?;
    checkpoint(Some(("apply: creates", f.creates)));
    f.outbox_creates = s.count("SELECT COUNT(*) FROM outbox").await?;
    checkpoint(None);
    let writes = s.deliver().await?;
    checkpoint(Some(("delivery of the creates", writes)));
    f.delivery.add(writes);
    s.index_payroll()?;
    s.plant_waiting(waiting).await?;

    let events = s.update_events(mix.updates);
    f.ingest.add(s.ingest(&events).await?);
    drop(events);
    let before = s.count("SELECT COUNT(*) FROM outbox").await?;
    checkpoint(None);
    f.updates = s.apply(mix.updates).await?;
    checkpoint(Some(("apply: updates", f.updates)));
    f.outbox_updates = s.count("SELECT COUNT(*) FROM outbox").await? - before;
    checkpoint(None);
    let writes = s.deliver().await?;
    checkpoint(Some(("delivery of the updates", writes)));
    f.update_writes = writes.events;
    f.delivery.add(writes);

    let events = s.echo_events(mix.echoes)?;
    f.ingest.add(s.ingest(&events).await?);
    drop(events);
    let side_effects = "SELECT (SELECT COUNT(*) FROM outbox) + (SELECT COUNT(*) FROM audit)
                        + (SELECT COUNT(*) FROM exceptions)";
    let before = s.count(side_effects).await?;
    checkpoint(None);
    f.echoes = s.apply(mix.echoes).await?;
    checkpoint(Some(("apply: no-op echoes", f.echoes)));
    f.echo_side_effects = s.count(side_effects).await? - before;

    f.exceptions = s.count("SELECT COUNT(*) FROM exceptions").await?;
    f.not_applied = s
        .count("SELECT COUNT(*) FROM inbox WHERE status != 'applied'")
        .await?;
    Ok(f)
}

// ---------------------------------------------------------------------------------------------
// Raw SQLite: the ceiling.

/// Inserts `rows` into a fresh inbox-shaped table, `chunk` rows per transaction and
/// `per_statement` rows per INSERT (1: one statement per row, as `ingest_many` does).
async fn raw_insert(
    path: &Path,
    rows: &[RawRow],
    chunk: usize,
    per_statement: usize,
) -> Result<Timing> {
    let options = SqliteConnectOptions::from_str(&format!("sqlite://{}", path.display()))?
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Normal)
        .foreign_keys(true)
        .busy_timeout(Duration::from_secs(30))
        .pragma("cache_size", "-65536")
        .pragma("temp_store", "memory");
    let pool = SqlitePoolOptions::new()
        .max_connections(1)
        .connect_with(options)
        .await?;
    // The inbox table of the engine's migration, without the foreign key to `systems`.
    for ddl in [
        "CREATE TABLE inbox (
            id              INTEGER PRIMARY KEY,
            system_id       TEXT NOT NULL,
            event_key       TEXT NOT NULL,
            object          TEXT NOT NULL,
            external_id     TEXT NOT NULL,
            op              TEXT NOT NULL CHECK (op IN ('upsert', 'delete')),
            payload         TEXT NOT NULL,
            source_version  INTEGER,
            source_ts       TEXT,
            received_at     TEXT NOT NULL,
            status          TEXT NOT NULL DEFAULT 'pending'
                            CHECK (status IN ('pending', 'applied', 'stale', 'held', 'failed')),
            duplicates      INTEGER NOT NULL DEFAULT 0,
            processed_at    TEXT,
            detail          TEXT,
            UNIQUE (system_id, event_key)
        )",
        "CREATE INDEX inbox_pending ON inbox(status, id) WHERE status = 'pending'",
    ] {
        sqlx::query(ddl).execute(&pool).await?;
    }
    let started = Instant::now();
    for chunk in rows.chunks(chunk) {
        let received_at = concord::store::ts(chrono::Utc::now());
        let mut tx = pool.begin().await?;
        for group in chunk.chunks(per_statement.max(1)) {
            let mut insert = sqlx::QueryBuilder::new(
                "INSERT INTO inbox (system_id, event_key, object, external_id, op, payload, \
                 source_version, source_ts, received_at) ",
            );
            insert.push_values(group, |mut b, r| {
                b.push_bind(&r.system_id)
                    .push_bind(&r.event_key)
                    .push_bind(&r.object)
                    .push_bind(&r.external_id)
                    .push_bind(r.op)
                    .push_bind(&r.payload)
                    .push_bind(r.version)
                    .push_bind(&r.source_ts)
                    .push_bind(&received_at);
            });
            insert.build().execute(&mut *tx).await?;
        }
        tx.commit().await?;
    }
    let elapsed = started.elapsed();
    pool.close().await;
    Ok(Timing {
        events: rows.len(),
        elapsed,
        cpu: Cpu::default(),
    })
}

// ---------------------------------------------------------------------------------------------
// Delivery over HTTP.

async fn http_delivery(dir: &Path, writes: usize, chunk: usize) -> Result<(Timing, Settings)> {
    let settings = Settings {
        breaker: common::counting_breaker(),
        ..Settings::default()
    };
    let engine = Engine::open(
        &dir.join("http.db"),
        EngineOptions {
            settings: settings.clone(),
            ..EngineOptions::default()
        },
    )
    .await?;
    let payroll = LoopbackSystem::start("payroll", "employee", "/employees", None).await?;
    let mut config = workspace(false);
    config.systems = config
        .systems
        .into_iter()
        .map(|mut s| {
            if s.id == "payroll" {
                s.config["base_url"] = json!(payroll.base_url());
            }
            s
        })
        .collect();
    engine.apply_workspace(&config).await?;
    let hris = MemorySystem::new("hris", "H");
    let events: Vec<ChangeEvent> = (0..writes)
        .map(|i| hris.edit(&hris_id(i), new_hire(i)))
        .collect();
    for c in events.chunks(chunk) {
        engine.ingest_many(c).await?;
    }
    while engine.process_inbox().await? > 0 {}

    let started = Instant::now();
    let mut sent = 0;
    loop {
        let n = engine.deliver("payroll").await?;
        if n == 0 {
            break;
        }
        sent += n;
    }
    let elapsed = started.elapsed();
    let applied = payroll.stats().writes_applied;
    if usize::try_from(applied)? != writes || sent != writes {
        bail!("payroll applied {applied} writes and the engine sent {sent}; expected {writes}");
    }
    Ok((
        Timing {
            events: sent,
            elapsed,
            cpu: Cpu::default(),
        },
        settings,
    ))
}

// ---------------------------------------------------------------------------------------------
// Statement count: sqlx logs every statement (target `sqlx::query`, with its elapsed time);
// a global subscriber tallies them. Installed only for the last, untimed pass.

mod statements {
    use std::collections::HashMap;
    use std::sync::{Mutex, PoisonError};

    use tracing::field::{Field, Visit};
    use tracing::subscriber::Interest;
    use tracing::{Event, Metadata, Subscriber};
    use tracing_subscriber::layer::{Context, Layer};

    /// Statement -> (executions, seconds).
    pub type Tally = HashMap<String, (u64, f64)>;

    static TALLY: Mutex<Option<Tally>> = Mutex::new(None);

    pub struct Counter;

    const TARGET: &str = "sqlx::query";

    #[derive(Default)]
    struct Fields {
        summary: String,
        statement: String,
        secs: f64,
    }

    impl Visit for Fields {
        fn record_str(&mut self, field: &Field, value: &str) {
            match field.name() {
                "summary" => value.clone_into(&mut self.summary),
                "db.statement" => value.clone_into(&mut self.statement),
                _ => {}
            }
        }

        fn record_f64(&mut self, field: &Field, value: f64) {
            if field.name() == "elapsed_secs" {
                self.secs = value;
            }
        }

        fn record_debug(&mut self, _field: &Field, _value: &dyn std::fmt::Debug) {}
    }

    impl<S: Subscriber> Layer<S> for Counter {
        fn register_callsite(&self, metadata: &'static Metadata<'static>) -> Interest {
            if metadata.target() == TARGET {
                Interest::always()
            } else {
                Interest::never()
            }
        }

        fn enabled(&self, metadata: &Metadata<'_>, _ctx: Context<'_, S>) -> bool {
            metadata.target() == TARGET
        }

        fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
            let mut fields = Fields::default();
            event.record(&mut fields);
            let text = if fields.statement.trim().is_empty() {
                &fields.summary
            } else {
                &fields.statement
            };
            let mut key: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
            if key.len() > 96 {
                let mut end = 93;
                while !key.is_char_boundary(end) {
                    end -= 1;
                }
                key.truncate(end);
                key.push_str("...");
            }
            let mut tally = TALLY.lock().unwrap_or_else(PoisonError::into_inner);
            let entry = tally.get_or_insert_with(Tally::new).entry(key).or_default();
            entry.0 += 1;
            entry.1 += fields.secs;
        }
    }

    pub fn install() -> anyhow::Result<()> {
        use tracing_subscriber::layer::SubscriberExt;
        tracing::subscriber::set_global_default(tracing_subscriber::registry().with(Counter))?;
        Ok(())
    }

    /// What was counted since the last call.
    pub fn take() -> Tally {
        TALLY
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
            .unwrap_or_default()
    }
}

// ---------------------------------------------------------------------------------------------

fn thousands(n: f64) -> String {
    let digits = (n.round() as u64).to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn row(label: &str, rate: f64, unit: &str, note: &str) {
    println!("  {label:<32}{:>12} {unit:<10}{note}", thousands(rate));
}

/// Records in the state, and the bytes each table takes with its indexes (SQLite's `dbstat`).
async fn table_sizes(pool: &sqlx::SqlitePool) -> Result<(i64, Vec<(String, i64)>)> {
    let records: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM records")
        .fetch_one(pool)
        .await?;
    let tables: Vec<(String, i64)> = sqlx::query_as(
        "SELECT COALESCE(m.tbl_name, d.name), SUM(d.pgsize) FROM dbstat d
         LEFT JOIN sqlite_master m ON m.name = d.name
         GROUP BY 1 ORDER BY 2 DESC",
    )
    .fetch_all(pool)
    .await?;
    Ok((records, tables))
}

fn file_size(path: &Path) -> u64 {
    ["", "-wal"]
        .iter()
        .filter_map(|suffix| std::fs::metadata(format!("{}{suffix}", path.display())).ok())
        .map(|m| m.len())
        .sum()
}

#[tokio::main]
async fn main() -> Result<()> {
    let config = Config::from_env()?;
    let mix = Mix::of(config.events);
    let dir = common::state_dir("concord-bench-")?;
    let build = common::BUILD;
    println!(
        "concord throughput: {} events ({} creates, {} updates, {} no-op echoes), batch {}, \
         ingest chunk {}, {build}",
        config.events, mix.creates, mix.updates, mix.echoes, config.batch, config.chunk
    );
    println!(
        "  SQLite files in {} ({} CPUs, load average {})",
        dir.path().display(),
        std::thread::available_parallelism().map_or(1, usize::from),
        common::load_average()
    );

    let engine_dir = dir.path().join("engine");
    std::fs::create_dir_all(&engine_dir)?;
    let mut scenario = Scenario::open(&engine_dir, config.batch, config.chunk, true).await?;
    let version: String = sqlx::query_scalar("SELECT sqlite_version()")
        .fetch_one(scenario.engine.pool())
        .await?;
    if config.waiting > 0 {
        println!(
            "  {} dated changes wait during the updates and echoes",
            config.waiting
        );
    }
    let mut figures = run_engine(&mut scenario, mix, config.waiting, |_| {}).await?;
    figures.db_bytes = file_size(&engine_dir.join("state.db"));
    (figures.records, figures.tables) = table_sizes(scenario.engine.pool()).await?;
    let started = Instant::now();
    let keep_nothing = concord::retention::Retention {
        events: Duration::ZERO,
        sent_writes: Duration::ZERO,
        metrics: Duration::ZERO,
        ..Default::default()
    };
    scenario.engine.compact_history(&keep_nothing).await?;
    figures.compact_time = started.elapsed();
    (_, figures.compacted_tables) = table_sizes(scenario.engine.pool()).await?;
    let raw_rows = scenario.raw_rows.take().unwrap_or_default();
    drop(scenario);

    // A ceiling: the best of three runs, each into a fresh file.
    let (mut raw, mut raw_multi) = (Timing::default(), Timing::default());
    for attempt in 0..3 {
        for (per_statement, best) in [(1, &mut raw), (100, &mut raw_multi)] {
            let path = dir.path().join(format!("raw-{per_statement}-{attempt}.db"));
            let t = raw_insert(&path, &raw_rows, config.chunk, per_statement).await?;
            if t.rate() > best.rate() {
                *best = t;
            }
            for suffix in ["", "-wal", "-shm"] {
                let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
            }
        }
    }
    drop(raw_rows);

    let http = if config.http_writes > 0 {
        Some(http_delivery(dir.path(), config.http_writes, config.chunk).await?)
    } else {
        None
    };

    let f = &figures;
    let mut overall = f.creates;
    overall.add(f.updates);
    overall.add(f.echoes);
    println!();
    println!(
        "concord throughput ({} events, batch {}, {build}, SQLite {version})",
        config.events, config.batch
    );
    row(
        "ingest (durable)",
        f.ingest.rate(),
        "events/s",
        &format!("chunks of {}", config.chunk),
    );
    row(
        "apply: creates",
        f.creates.rate(),
        "events/s",
        &format!(
            "{} golden records, {} creates queued",
            f.creates.events, f.outbox_creates
        ),
    );
    row(
        "apply: updates",
        f.updates.rate(),
        "events/s",
        &format!(
            "{} outbox rows for {} events (coalesced)",
            f.outbox_updates, f.updates.events
        ),
    );
    row(
        "apply: no-op echoes",
        f.echoes.rate(),
        "events/s",
        &format!("{} rows written besides the inbox", f.echo_side_effects),
    );
    row("apply: overall", overall.rate(), "events/s", "");
    row(
        "raw sqlite insert",
        raw.rate(),
        "rows/s",
        &format!(
            "same rows, transactions of {}, 1 row per INSERT, best of 3",
            config.chunk
        ),
    );
    row(
        "raw sqlite, multi-row INSERT",
        raw_multi.rate(),
        "rows/s",
        "same, 100 rows per INSERT (fewer hops to the SQLite thread)",
    );
    println!(
        "  {:<32}{:>11.1}% (target: at least 30%)",
        "apply overall / raw multi-row",
        100.0 * overall.rate() / raw_multi.rate().max(1e-9)
    );
    row(
        "delivery, in-process",
        f.delivery.rate(),
        "writes/s",
        &format!(
            "{} writes ({} after updates), no HTTP: the engine's own cost",
            f.delivery.events, f.update_writes
        ),
    );
    if let Some((t, s)) = &http {
        row(
            "delivery over HTTP",
            t.rate(),
            "writes/s",
            &format!(
                "{} creates to a loopback system, {} per round, {} concurrent",
                t.events, s.send_batch, s.send_concurrency
            ),
        );
    }
    println!(
        "  load average now {} (other work on the machine skews every figure)",
        common::load_average()
    );
    println!(
        "  state: {:.1} MB on disk; {} exceptions, {} events not applied",
        f.db_bytes as f64 / 1e6,
        f.exceptions,
        f.not_applied
    );
    let per_record = |bytes: i64| bytes as f64 / f.records.max(1) as f64;
    let total: i64 = f.tables.iter().map(|(_, b)| b).sum();
    println!(
        "  state per record: {:.0} bytes over {} records; by table (indexes included):",
        per_record(total),
        f.records
    );
    let print_tables = |tables: &[(String, i64)]| {
        for (table, bytes) in tables.iter().filter(|(_, b)| per_record(*b) >= 5.0) {
            println!(
                "    {table:<16} {:>8.1} MB  {:>6.0} bytes per record",
                *bytes as f64 / 1e6,
                per_record(*bytes)
            );
        }
    };
    print_tables(&f.tables);
    let compacted: i64 = f.compacted_tables.iter().map(|(_, b)| b).sum();
    println!(
        "  state per record once history is compacted (retention 0, {:.2} s): {:.0} bytes; \
         by table (indexes included):",
        f.compact_time.as_secs_f64(),
        per_record(compacted)
    );
    print_tables(&f.compacted_tables);

    println!("  CPU of the process while ingesting and applying (wall = time measured above):");
    for (phase, t) in [
        ("ingest", f.ingest),
        ("creates", f.creates),
        ("updates", f.updates),
        ("no-op echoes", f.echoes),
    ] {
        println!(
            "    {phase:<14} wall {:>6.2} s  user {:>6.2} s  system {:>6.2} s  \
             ({:.0} us per event, {:.0} us of CPU)",
            t.elapsed.as_secs_f64(),
            t.cpu.user,
            t.cpu.system,
            1e6 * t.elapsed.as_secs_f64() / t.events.max(1) as f64,
            1e6 * (t.cpu.user + t.cpu.system) / t.events.max(1) as f64
        );
    }

    if config.profile {
        statement_profile(dir.path(), config).await?;
    }
    Ok(())
}

/// A small run with sqlx's statement log on: statements per event and where SQLite time goes.
async fn statement_profile(dir: &Path, config: Config) -> Result<()> {
    let n = (config.events / 10).clamp(10, 10_000);
    let mix = Mix::of(n);
    let profile_dir = dir.join("profile");
    std::fs::create_dir_all(&profile_dir)?;
    let mut scenario = Scenario::open(&profile_dir, config.batch, config.chunk, false).await?;
    statements::install()?;
    let mut steps: Vec<(String, Timing, statements::Tally)> = Vec::new();
    run_engine(&mut scenario, mix, config.waiting, |step| {
        let tally = statements::take();
        if let Some((name, timing)) = step {
            steps.push((name.to_owned(), timing, tally));
        }
    })
    .await?;
    println!();
    println!(
        "SQL statements per step ({} events; a separate run with sqlx's statement log on)",
        mix.total()
    );
    for (name, timing, tally) in &steps {
        let unit = if name.starts_with("delivery") {
            "write"
        } else {
            "event"
        };
        let units = timing.events.max(1) as f64;
        let statements = tally.values().map(|(c, _)| c).sum::<u64>() as f64;
        let secs: f64 = tally.values().map(|(_, s)| s).sum();
        println!(
            "  {name}: {:.1} statements per {unit}; SQLite executing {:.0}% of {:.2?}",
            statements / units,
            100.0 * secs / timing.elapsed.as_secs_f64().max(1e-9),
            timing.elapsed
        );
        let mut top: Vec<_> = tally.iter().collect();
        top.sort_by(|a, b| b.1.1.total_cmp(&a.1.1));
        for (sql, (count, secs)) in top.into_iter().take(6) {
            let per = *count as f64 / units;
            println!("    {per:>5.2}/{unit:<5} {:>7.1} ms  {sql}", secs * 1e3);
        }
    }
    Ok(())
}
