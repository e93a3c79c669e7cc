//! Convergence: a property-based test of DESIGN.md's sync semantics ("Sync semantics",
//! "Loops, duplicates, order", "Delivery, failure, replay").
//!
//! Each case builds a workspace of 2 or 3 in-memory systems (connector `external`) that sync one
//! object, `person`, field by field. People create up to two records, then a random interleaving
//! runs of:
//!
//! - people editing records in any system that holds them (every change bumps the record's
//!   version and queues a change event carrying the full record);
//! - change events reaching the engine late, interleaved across systems, duplicated, and
//!   sometimes out of order (the newest event of a record first, its older ones later: stale);
//! - the engine applying its inbox and delivering its outbox, while the systems fail requests at
//!   random: 503s (retried, then dead letters once the system's `max_attempts` is spent), 422s
//!   (dead letters at once), and writes that are applied but whose response is lost (retried
//!   with the same idempotency key, which applies nothing the second time);
//! - support replaying dead letters.
//!
//! The systems honour `If-Match` (a write against an old version is refused with 412) and
//! idempotency keys. At the end failures stop, every queued event is delivered, every dead letter
//! is replayed, and the engine runs until nothing moves. Then the outcome is checked against a
//! small reference model of the semantics, computed from the edits alone:
//!
//! - `name` (every system writes it, `last_write_wins`) and `email` (`a` and `b` write it,
//!   `last_write_wins`; a change from `c` is reverted): the value of the edit with the latest
//!   source timestamp among the systems allowed to write the field, else the value the record was
//!   created with;
//! - `dept` (owned by `a`) and `title` (owned by the last system), `owner_wins`, other systems'
//!   changes reverted: the owner's latest value, else the value the record was created with;
//!
//! every system must hold exactly that value and so must the golden record; no record may exist
//! twice in a system; no exception may be open (every conflict here is decided by a rule); no
//! dead letter may be left; a repeated event must be recorded as a duplicate.
//!
//! Why this model is what DESIGN.md promises, and what the generator avoids so that it stays so:
//!
//! - Values written to last-write-wins fields are unique within a case. Rule 5 ("both sides
//!   arrived at the same value") leaves the golden value's timestamp alone, so with repeated
//!   values the winner would depend on the order in which the engine happens to see the edits,
//!   and a change X -> Y -> X made between two events the engine sees would be no change at all.
//!   With unique values every change reaches the merge as a change, with its own source time: a
//!   clean change is always later than the golden value it replaces (the system received that
//!   value before changing it, and If-Match keeps the engine from writing over an unseen
//!   change), and a conflict is decided by the source times; so the latest edit wins.
//! - Owned fields use a three-letter alphabet: only the owner changes their golden value and the
//!   owner never conflicts, so repeats are harmless, and they exercise the "golden value goes back
//!   to an earlier value" paths (queued writes that must be dropped or re-rendered).
//! - Events of one record from one system are delivered in order, except the deliberate
//!   out-of-order deliveries, which only skip older events whose changes the delivered event
//!   carries with a source time that is still right for the model: echoes of the engine's own
//!   writes, edits of owned fields, and edits of the same field. The creation is never skipped
//!   (a non-owner's edit must not pass for a creation value).
//!
//! Every case is deterministic: the engine's clock is a test clock shared with the systems (each
//! reading moves it on, so source times are strictly increasing and retries come due), jitter and
//! failures are seeded, and the proptest input holds the seed.
//!
//! Case count: `CONCORD_PROPTEST_CASES` (default 200, what CI runs);
//! `CONCORD_PROPTEST_CASES=5000 cargo test --test convergence` runs thousands, and
//! `PROPTEST_RNG_SEED` fixes proptest's own seed. `CONCORD_CONVERGENCE_STATS=1` (with
//! `--nocapture`) prints what the cases exercised (412s, dead letters, stale events, conflicts,
//! reverts, ...); `CONCORD_CONVERGENCE_TRACE=1` prints the trace of passing cases too. Failures
//! are not persisted to a regression file: the minimal failing case is printed with its trace,
//! and the bugs found are pinned as plain tests at the end of this file.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, TimeZone, Utc};
use concord::audit::Actor;
use concord::clock::{Clock, Jitter};
use concord::connector::{
    Capabilities, Connector, ConnectorError, FetchedRecord, WriteOutcome, WriteRequest,
};
use concord::model::{ChangeEvent, ChangeOp, SourceVersion, WorkspaceConfig};
use concord::ops::{DeadLetterFilter, ExceptionFilter};
use concord::{Engine, EngineOptions, IngestOutcome, Settings};
use proptest::prelude::*;
use proptest::test_runner::{Config as ProptestConfig, TestCaseError};
use serde_json::{Map, Value, json};

const OBJECT: &str = "person";
const SYSTEM_IDS: [&str; 3] = ["a", "b", "c"];
/// Logical records per case; record `r` has the match key `r{r}`.
const RECORDS: usize = 2;
/// Values of owned fields: few, so the golden value often goes back to an earlier one.
const OWNED_VALUES: [&str; 3] = ["x", "y", "z"];
/// Prefixes of last-write-wins values; a sequence number makes each value unique.
const LWW_PREFIXES: [&str; 4] = ["p", "q", "s", "t"];

// ------------------------------------------------------------------------------------------
// The workspace and the reference model
// ------------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    Key,
    Name,
    Email,
    Dept,
    Title,
}

const FIELDS: [Field; 5] = [
    Field::Key,
    Field::Name,
    Field::Email,
    Field::Dept,
    Field::Title,
];
const EDITABLE: [Field; 4] = [Field::Name, Field::Email, Field::Dept, Field::Title];

impl Field {
    fn name(self) -> &'static str {
        match self {
            Self::Key => "key",
            Self::Name => "name",
            Self::Email => "email",
            Self::Dept => "dept",
            Self::Title => "title",
        }
    }

    fn index(self) -> usize {
        FIELDS.iter().position(|f| *f == self).unwrap_or(0)
    }

    fn owned(self) -> bool {
        matches!(self, Self::Dept | Self::Title)
    }

    /// Systems (by index) whose changes to this field count, in a workspace of `n` systems.
    fn writers(self, n: usize) -> Vec<usize> {
        match self {
            Self::Key | Self::Name => (0..n).collect(),
            Self::Email => vec![0, 1],
            Self::Dept => vec![0],
            Self::Title => vec![n - 1],
        }
    }

    /// The rule the convergence check states for this field.
    fn rule(self, n: usize) -> String {
        match self {
            Self::Key => "the match key never changes after creation".into(),
            Self::Name => "after quiescence every system holds the last write of a \
                           last-write-wins field (the edit with the latest source timestamp)"
                .into(),
            Self::Email => format!(
                "after quiescence every system holds the last write of a last-write-wins field \
                 among the systems allowed to write it ({}); other systems' changes are reverted",
                self.writers(n)
                    .iter()
                    .map(|s| SYSTEM_IDS[*s])
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            Self::Dept | Self::Title => format!(
                "after quiescence every system holds the owner's ({}) latest value of an \
                 owner_wins field; other systems' changes are reverted",
                SYSTEM_IDS[self.writers(n)[0]]
            ),
        }
    }
}

/// Where a system keeps a canonical field: `a` under the canonical name, the others renamed.
fn path(system: usize, field: Field) -> String {
    match system {
        0 => field.name().to_owned(),
        s => format!("{}_{}", SYSTEM_IDS[s], field.name()),
    }
}

fn workspace(n: usize, max_attempts: u32) -> WorkspaceConfig {
    let systems: Vec<Value> = (0..n)
        .map(|s| {
            json!({ "id": SYSTEM_IDS[s], "name": format!("System {}", SYSTEM_IDS[s]),
                    "connector": "external", "max_attempts": max_attempts })
        })
        .collect();
    let mappings: Vec<Value> = (0..n)
        .map(|s| {
            let rules: Vec<Value> = FIELDS
                .iter()
                .map(|f| json!({ "canonical": [f.name()], "system": [path(s, *f)] }))
                .collect();
            json!({ "system": SYSTEM_IDS[s], "object": OBJECT, "rules": rules })
        })
        .collect();
    let config = json!({
        "systems": systems,
        "objects": [{
            "name": OBJECT,
            "fields": FIELDS.iter().map(|f| json!({ "name": f.name(), "type": "string" })).collect::<Vec<_>>(),
            "match_keys": ["key"],
        }],
        "mappings": mappings,
        "policies": [{ "object": OBJECT, "fields": [
            { "field": "name", "conflict": "last_write_wins" },
            { "field": "email", "writers": ["a", "b"], "conflict": "last_write_wins", "non_owner": "revert" },
            { "field": "dept", "owner": "a", "conflict": "owner_wins", "non_owner": "revert" },
            { "field": "title", "owner": SYSTEM_IDS[n - 1], "conflict": "owner_wins" },
        ]}],
    });
    serde_json::from_value(config).unwrap_or_else(|e| panic!("test workspace is invalid: {e}"))
}

#[derive(Debug, Clone)]
struct ModelEdit {
    ts: DateTime<Utc>,
    system: usize,
    field: Field,
    value: String,
}

#[derive(Debug, Clone)]
struct ModelRecord {
    creator: usize,
    created: DateTime<Utc>,
    initial: [String; 5],
    edits: Vec<ModelEdit>,
}

impl ModelRecord {
    /// The value the semantics promise once everything has settled: the latest (by source
    /// timestamp) of the creation and the edits of systems whose changes count for the field.
    fn expected(&self, field: Field, n: usize) -> String {
        let writers = field.writers(n);
        let mut best = (self.created, self.initial[field.index()].clone());
        for e in &self.edits {
            if e.field == field && writers.contains(&e.system) && e.ts > best.0 {
                best = (e.ts, e.value.clone());
            }
        }
        best.1
    }

    fn history(&self, field: Field, start: DateTime<Utc>) -> String {
        let mut out = format!(
            "created by {} at {}: {:?}",
            SYSTEM_IDS[self.creator],
            ms(start, self.created),
            self.initial[field.index()]
        );
        for e in self.edits.iter().filter(|e| e.field == field) {
            let _ = write!(
                out,
                "; {} at {}: {:?}",
                SYSTEM_IDS[e.system],
                ms(start, e.ts),
                e.value
            );
        }
        out
    }
}

fn ms(start: DateTime<Utc>, at: DateTime<Utc>) -> String {
    format!("t+{}ms", (at - start).num_milliseconds())
}

// ------------------------------------------------------------------------------------------
// Time, randomness, trace
// ------------------------------------------------------------------------------------------

/// The engine's clock, shared with the systems and the people editing them: every reading
/// moves it on by `tick`, so source timestamps are strictly increasing and a run is
/// deterministic. Retries become due as the engine works; `advance` jumps ahead.
#[derive(Debug)]
struct TestClock {
    start: DateTime<Utc>,
    state: Mutex<(DateTime<Utc>, chrono::Duration)>,
}

impl TestClock {
    fn new() -> Self {
        let start = Utc
            .with_ymd_and_hms(2030, 1, 1, 0, 0, 0)
            .single()
            .unwrap_or_default();
        Self {
            start,
            state: Mutex::new((start, chrono::Duration::milliseconds(1))),
        }
    }

    fn lock(&self) -> MutexGuard<'_, (DateTime<Utc>, chrono::Duration)> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn advance(&self, by: chrono::Duration) {
        self.lock().0 += by;
    }

    fn set_tick(&self, tick: chrono::Duration) {
        self.lock().1 = tick;
    }
}

impl Clock for TestClock {
    fn now(&self) -> DateTime<Utc> {
        let mut s = self.lock();
        let tick = s.1;
        s.0 += tick;
        s.0
    }
}

/// SplitMix64: a tiny seeded generator for failure injection.
#[derive(Debug)]
struct Rng(u64);

impl Rng {
    fn percent(&mut self) -> u32 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        u32::try_from(z % 100).unwrap_or(0)
    }
}

/// What happened, in order, for the failure message.
#[derive(Debug, Clone, Default)]
struct Trace(Arc<Mutex<Vec<String>>>);

impl Trace {
    fn push(&self, line: String) {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).push(line);
    }

    fn render(&self) -> String {
        let lines = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let mut out = String::new();
        for l in lines.iter() {
            let _ = writeln!(out, "  {l}");
        }
        out
    }
}

// ------------------------------------------------------------------------------------------
// An in-memory system
// ------------------------------------------------------------------------------------------

/// Failure rates, in percent of requests while failures are on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Failures {
    /// 503 before applying anything.
    unavailable: u32,
    /// 422: the write is refused for good.
    rejected: u32,
    /// The write is applied, then the response is lost (a timeout, for the engine).
    lost_response: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cause {
    /// A person created the record.
    Created,
    /// A person changed one field.
    Edit(Field),
    /// One of the engine's writes (create or update).
    Write,
}

#[derive(Debug, Clone)]
struct Queued {
    record: usize,
    cause: Cause,
    event: ChangeEvent,
}

#[derive(Debug, Clone)]
struct MemRecord {
    fields: Map<String, Value>,
    version: SourceVersion,
    /// When the record last changed.
    modified: DateTime<Utc>,
}

#[derive(Debug, Default, Clone, Copy)]
struct MemStats {
    creates_applied: u64,
    updates_applied: u64,
    repeated_keys: u64,
    version_conflicts: u64,
    unconditional_updates: u64,
}

#[derive(Debug)]
struct MemState {
    records: BTreeMap<String, MemRecord>,
    next_id: u64,
    /// One version counter per system, across its records.
    version: SourceVersion,
    /// Idempotency key -> outcome of the write it applied.
    applied: HashMap<String, WriteOutcome>,
    /// Change events not yet delivered to the engine, in the order they happened.
    queue: Vec<Queued>,
    delivered: Vec<ChangeEvent>,
    rng: Rng,
    failures: Failures,
    failing: bool,
    /// Scripted answers to the next write requests, before any random failure.
    script: Vec<Scripted>,
    stats: MemStats,
}

struct MemSystem {
    index: usize,
    clock: Arc<TestClock>,
    trace: Trace,
    state: Mutex<MemState>,
}

impl MemSystem {
    fn new(
        index: usize,
        clock: Arc<TestClock>,
        trace: Trace,
        failures: Failures,
        seed: u64,
    ) -> Self {
        Self {
            index,
            clock,
            trace,
            state: Mutex::new(MemState {
                records: BTreeMap::new(),
                next_id: 0,
                version: 0,
                applied: HashMap::new(),
                queue: Vec::new(),
                delivered: Vec::new(),
                rng: Rng(seed ^ (index as u64).wrapping_mul(0x5851_F42D_4C95_7F2D)),
                failures,
                failing: true,
                script: Vec::new(),
                stats: MemStats::default(),
            }),
        }
    }

    fn id(&self) -> &'static str {
        SYSTEM_IDS[self.index]
    }

    fn lock(&self) -> MutexGuard<'_, MemState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn log(&self, line: String) {
        let at = ms(self.clock.start, self.clock.lock().0);
        self.trace.push(format!("{at} {}: {line}", self.id()));
    }

    /// The logical record a system record is, by its match key.
    fn record_of(&self, fields: &Map<String, Value>) -> usize {
        fields
            .get(&path(self.index, Field::Key))
            .and_then(Value::as_str)
            .and_then(|k| k.strip_prefix('r'))
            .and_then(|n| n.parse().ok())
            .unwrap_or(usize::MAX)
    }

    /// External ids of the records holding logical record `record`.
    fn find(&self, record: usize) -> Vec<String> {
        self.lock()
            .records
            .iter()
            .filter(|(_, r)| self.record_of(&r.fields) == record)
            .map(|(id, _)| id.clone())
            .collect()
    }

    fn value(&self, external_id: &str, field: Field) -> Option<Value> {
        self.lock()
            .records
            .get(external_id)
            .and_then(|r| r.fields.get(&path(self.index, field)).cloned())
    }

    /// Bumps the version of `external_id` (creating it if new) after `change`, and queues the
    /// change event. Returns the version and the source timestamp.
    fn commit(
        &self,
        s: &mut MemState,
        external_id: &str,
        change: &Map<String, Value>,
        cause: Cause,
    ) -> (SourceVersion, DateTime<Utc>) {
        let ts = self.clock.now();
        s.version += 1;
        let version = s.version;
        let record = s
            .records
            .entry(external_id.to_owned())
            .or_insert_with(|| MemRecord {
                fields: Map::new(),
                version: 0,
                modified: ts,
            });
        for (k, v) in change {
            record.fields.insert(k.clone(), v.clone());
        }
        record.version = version;
        record.modified = ts;
        let fields = record.fields.clone();
        let event = ChangeEvent {
            system: self.id().to_owned(),
            object: OBJECT.to_owned(),
            external_id: external_id.to_owned(),
            op: ChangeOp::Upsert,
            record: fields.clone(),
            version: Some(version),
            etag: Some(etag_of(version)),
            source_ts: Some(ts),
            event_key: format!("{}:{external_id}:v{version}", self.id()),
        };
        let record = self.record_of(&fields);
        s.queue.push(Queued {
            record,
            cause,
            event,
        });
        (version, ts)
    }

    /// A person creates a record. Returns its external id and the source timestamp.
    fn user_create(&self, fields: Map<String, Value>) -> (String, DateTime<Utc>) {
        let mut s = self.lock();
        s.next_id += 1;
        let id = format!("{}{}", self.id(), s.next_id);
        let (version, ts) = self.commit(&mut s, &id, &fields, Cause::Created);
        drop(s);
        self.log(format!(
            "person creates {id} v{version} {}",
            Value::Object(fields)
        ));
        (id, ts)
    }

    /// A person changes one field of a record. Returns the source timestamp.
    fn user_edit(&self, external_id: &str, field: Field, value: &str) -> DateTime<Utc> {
        let mut change = Map::new();
        change.insert(path(self.index, field), Value::String(value.to_owned()));
        let mut s = self.lock();
        let (version, ts) = self.commit(&mut s, external_id, &change, Cause::Edit(field));
        drop(s);
        self.log(format!(
            "person sets {external_id}.{} = {value:?} (v{version})",
            field.name()
        ));
        ts
    }

    fn set_failing(&self, failing: bool) {
        self.lock().failing = failing;
    }

    fn write(
        &self,
        external_id: Option<&str>,
        w: &WriteRequest,
    ) -> Result<WriteOutcome, ConnectorError> {
        let op = external_id.map_or_else(|| "create".to_owned(), |id| format!("update {id}"));
        let what = format!(
            "{op} if_match={:?} {} key={}",
            w.if_match,
            Value::Object(w.payload.clone()),
            &w.idempotency_key[..8.min(w.idempotency_key.len())]
        );
        let mut s = self.lock();
        if let Some(outcome) = s.applied.get(&w.idempotency_key).cloned() {
            s.stats.repeated_keys += 1;
            drop(s);
            self.log(format!(
                "{what} -> repeated key, nothing applied, first outcome {} v{:?}",
                outcome.external_id, outcome.version
            ));
            return Ok(outcome);
        }
        let failures = s.failures;
        let scripted = (!s.script.is_empty()).then(|| s.script.remove(0));
        // Thresholds (percent) and the roll that decide this request.
        let (unavailable, rejected, roll) = match scripted {
            Some(Scripted::Rejected) => (0, 100, Some(0)),
            Some(Scripted::LostResponse) => (0, 0, None),
            None if s.failing => (
                failures.unavailable,
                failures.rejected,
                Some(s.rng.percent()),
            ),
            None => (0, 0, None),
        };
        if let Some(roll) = roll {
            if roll < unavailable {
                drop(s);
                self.log(format!("{what} -> 503 (injected)"));
                return Err(ConnectorError::Retryable {
                    system: self.id().to_owned(),
                    status: Some(503),
                    retry_after: None,
                    message: "injected: service unavailable".into(),
                });
            }
            if roll < unavailable + rejected {
                drop(s);
                self.log(format!("{what} -> 422 (injected)"));
                return Err(ConnectorError::Rejected {
                    system: self.id().to_owned(),
                    status: 422,
                    body: "injected: validation failed".into(),
                });
            }
        }
        let id = match external_id {
            Some(id) => {
                let Some(current) = s.records.get(id).map(|r| r.version) else {
                    drop(s);
                    self.log(format!("{what} -> 404"));
                    return Err(ConnectorError::NotFound {
                        system: self.id().to_owned(),
                        external_id: id.to_owned(),
                    });
                };
                match &w.if_match {
                    Some(expected) if *expected != etag_of(current) => {
                        s.stats.version_conflicts += 1;
                        drop(s);
                        self.log(format!("{what} -> 412 (record is at v{current})"));
                        return Err(ConnectorError::VersionConflict {
                            system: self.id().to_owned(),
                        });
                    }
                    Some(_) => {}
                    None => s.stats.unconditional_updates += 1,
                }
                s.stats.updates_applied += 1;
                id.to_owned()
            }
            None => {
                s.next_id += 1;
                s.stats.creates_applied += 1;
                format!("{}{}", self.id(), s.next_id)
            }
        };
        let (version, _) = self.commit(&mut s, &id, &w.payload, Cause::Write);
        let outcome = WriteOutcome {
            external_id: id.clone(),
            version: Some(version),
            etag: Some(etag_of(version)),
        };
        s.applied.insert(w.idempotency_key.clone(), outcome.clone());
        let lost = scripted == Some(Scripted::LostResponse)
            || (scripted.is_none() && s.failing && s.rng.percent() < failures.lost_response);
        drop(s);
        if lost {
            self.log(format!(
                "{what} -> applied as {id} v{version}, response lost"
            ));
            return Err(ConnectorError::Retryable {
                system: self.id().to_owned(),
                status: None,
                retry_after: None,
                message: "injected: timed out waiting for the response".into(),
            });
        }
        self.log(format!("{what} -> applied as {id} v{version}"));
        Ok(outcome)
    }
}

/// A record's concurrency token: a weak ETag that is not a number, so that nothing in the
/// engine can get away with parsing or ordering tokens.
fn etag_of(version: i64) -> String {
    format!("W/\"r{version}x\"")
}

/// The record as `get` returns it: its fields, version, token and modification time.
fn fetched(external_id: &str, r: MemRecord) -> FetchedRecord {
    let fetched = json!({
        "external_id": external_id,
        "record": r.fields,
        "version": r.version,
        "etag": etag_of(r.version),
        "modified": r.modified,
    });
    serde_json::from_value(fetched).unwrap_or_else(|e| panic!("a FetchedRecord: {e}"))
}

#[async_trait]
impl Connector for MemSystem {
    fn capabilities(&self) -> Capabilities {
        Capabilities {
            partial_update: true,
            versioned_writes: true,
            delete: false,
            webhooks: true,
            incremental: false,
            path_writes: false,
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
        self.log(format!("delete {external_id} -> 405"));
        Err(ConnectorError::Rejected {
            system: self.id().to_owned(),
            status: 405,
            body: "this test never deletes".into(),
        })
    }

    async fn get(
        &self,
        _object: &str,
        external_id: &str,
    ) -> Result<Option<FetchedRecord>, ConnectorError> {
        let mut s = self.lock();
        if s.failing {
            let roll = s.rng.percent();
            if roll < s.failures.unavailable / 2 {
                drop(s);
                self.log(format!("get {external_id} -> 503 (injected)"));
                return Err(ConnectorError::Retryable {
                    system: self.id().to_owned(),
                    status: Some(503),
                    retry_after: None,
                    message: "injected: service unavailable".into(),
                });
            }
        }
        let found = s.records.get(external_id).cloned();
        drop(s);
        self.log(format!(
            "get {external_id} -> {}",
            found.as_ref().map_or_else(
                || "404".to_owned(),
                |r| format!("v{} {}", r.version, Value::Object(r.fields.clone()))
            )
        ));
        Ok(found.map(|r| fetched(external_id, r)))
    }
}

// ------------------------------------------------------------------------------------------
// Operations and the harness that runs them
// ------------------------------------------------------------------------------------------

#[derive(Debug, Clone)]
enum Op {
    /// A person in `system` creates logical record `record` (if no system holds it yet).
    Create {
        system: usize,
        record: usize,
        values: [u8; 4],
    },
    /// A person in `system` changes one field of `record` (if the system holds it).
    Edit {
        system: usize,
        record: usize,
        field: usize,
        value: u8,
    },
    /// The oldest `count` queued events of `system` reach the engine.
    Deliver { system: usize, count: usize },
    /// The newest queued event of `record` in `system` reaches the engine before the older
    /// ones (which become stale), when that loses nothing the model counts on.
    Jump { system: usize, record: usize },
    /// An event `system` delivered before is delivered again.
    Duplicate {
        system: usize,
        pick: prop::sample::Index,
    },
    /// The engine applies its inbox.
    Process,
    /// Time passes, then the engine runs one delivery round to `system`.
    Send { system: usize, wait_ms: u8 },
    /// Support replays every dead letter.
    Replay,
    /// Everything moves once: every queued event is delivered, the inbox applied, and one
    /// delivery round runs to every system.
    Sync,
    /// The next write request to `system` fails this way (for the pinned regression cases).
    FailNext { system: usize, failure: Scripted },
}

/// A scripted answer to the next write request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scripted {
    Rejected,
    LostResponse,
}

#[derive(Debug, Clone)]
struct Case {
    systems: usize,
    max_attempts: u32,
    failures: Failures,
    seed: u64,
    /// Records people create before anything else happens: (system, initial values).
    creates: Vec<(usize, [u8; 4])>,
    ops: Vec<Op>,
}

fn op_strategy() -> impl Strategy<Value = Op> {
    prop_oneof![
        2 => (0..3usize, 0..RECORDS, prop::array::uniform4(0..12u8))
            .prop_map(|(system, record, values)| Op::Create { system, record, values }),
        8 => (0..3usize, 0..RECORDS, 0..EDITABLE.len(), 0..12u8)
            .prop_map(|(system, record, field, value)| Op::Edit { system, record, field, value }),
        5 => (0..3usize, 1..4usize).prop_map(|(system, count)| Op::Deliver { system, count }),
        1 => (0..3usize, 0..RECORDS).prop_map(|(system, record)| Op::Jump { system, record }),
        1 => (0..3usize, any::<prop::sample::Index>())
            .prop_map(|(system, pick)| Op::Duplicate { system, pick }),
        3 => Just(Op::Process),
        5 => (0..3usize, 0..8u8).prop_map(|(system, wait_ms)| Op::Send { system, wait_ms }),
        1 => Just(Op::Replay),
        2 => Just(Op::Sync),
    ]
}

fn failures_strategy() -> impl Strategy<Value = Failures> {
    prop_oneof![
        1 => Just(Failures { unavailable: 0, rejected: 0, lost_response: 0 }),
        2 => Just(Failures { unavailable: 15, rejected: 3, lost_response: 8 }),
        2 => Just(Failures { unavailable: 40, rejected: 6, lost_response: 15 }),
    ]
}

fn case_strategy() -> impl Strategy<Value = Case> {
    (
        2..=3usize,
        3..=5u32,
        failures_strategy(),
        any::<u64>(),
        prop::collection::vec((0..3usize, prop::array::uniform4(0..12u8)), 0..=RECORDS),
        prop::collection::vec(op_strategy(), 1..80),
    )
        .prop_map(
            |(systems, max_attempts, failures, seed, creates, ops)| Case {
                systems,
                max_attempts,
                failures,
                seed,
                creates,
                ops,
            },
        )
}

struct Harness {
    engine: Engine,
    clock: Arc<TestClock>,
    trace: Trace,
    systems: Vec<Arc<MemSystem>>,
    records: Vec<Option<ModelRecord>>,
    /// Makes last-write-wins values unique.
    seq: u64,
    _dir: tempfile::TempDir,
}

fn support() -> Actor {
    Actor::person("support", "support")
}

impl Harness {
    async fn new(case: &Case) -> Result<Self, String> {
        let dir = tempfile::tempdir().map_err(|e| format!("tempdir: {e}"))?;
        let clock = Arc::new(TestClock::new());
        let trace = Trace::default();
        let settings = Settings {
            backoff_base: Duration::from_millis(1),
            backoff_cap: Duration::from_millis(5),
            idle_poll: Duration::from_millis(5),
            ..Default::default()
        };
        let engine = Engine::open(
            &dir.path().join("concord.db"),
            EngineOptions {
                clock: clock.clone(),
                jitter: Jitter::seeded(case.seed),
                settings,
                ..EngineOptions::default()
            },
        )
        .await
        .map_err(|e| format!("opening the engine: {e}"))?;
        engine
            .apply_workspace(&workspace(case.systems, case.max_attempts))
            .await
            .map_err(|e| format!("applying the workspace: {e}"))?;
        let systems: Vec<Arc<MemSystem>> = (0..case.systems)
            .map(|i| {
                Arc::new(MemSystem::new(
                    i,
                    clock.clone(),
                    trace.clone(),
                    case.failures,
                    case.seed,
                ))
            })
            .collect();
        for s in &systems {
            engine.register_connector(s.id(), s.clone());
        }
        Ok(Self {
            engine,
            clock,
            trace,
            systems,
            records: vec![None; RECORDS],
            seq: 0,
            _dir: dir,
        })
    }

    fn n(&self) -> usize {
        self.systems.len()
    }

    fn log(&self, line: String) {
        let at = ms(self.clock.start, self.clock.lock().0);
        self.trace.push(format!("{at} {line}"));
    }

    fn value_for(&mut self, field: Field, pick: u8) -> String {
        if field.owned() {
            OWNED_VALUES[usize::from(pick) % OWNED_VALUES.len()].to_owned()
        } else {
            self.seq += 1;
            format!(
                "{}{}",
                LWW_PREFIXES[usize::from(pick) % LWW_PREFIXES.len()],
                self.seq
            )
        }
    }

    async fn ingest(&self, system: usize, event: &ChangeEvent, first: bool) -> Result<(), String> {
        let outcome = self
            .engine
            .ingest(event)
            .await
            .map_err(|e| format!("ingest of {}: {e}", event.event_key))?;
        self.log(format!(
            "engine <- {} ({}) {:?}",
            event.event_key, SYSTEM_IDS[system], outcome
        ));
        match (first, outcome) {
            (true, IngestOutcome::Accepted(_)) | (false, IngestOutcome::Duplicate(_)) => Ok(()),
            (true, IngestOutcome::Duplicate(_)) => Err(format!(
                "a change event seen for the first time must be accepted: {}",
                event.event_key
            )),
            (false, IngestOutcome::Accepted(_)) => Err(format!(
                "an event delivered twice (same system and event key) must be recorded as a \
                 duplicate, not applied again: {}",
                event.event_key
            )),
        }
    }

    /// Delivers up to `count` of `system`'s oldest queued events, in order.
    async fn deliver_events(&self, system: usize, count: usize) -> Result<usize, String> {
        let events: Vec<Queued> = {
            let mut s = self.systems[system].lock();
            let k = count.min(s.queue.len());
            s.queue.drain(..k).collect()
        };
        for q in &events {
            self.ingest(system, &q.event, true).await?;
            self.systems[system].lock().delivered.push(q.event.clone());
        }
        Ok(events.len())
    }

    /// Delivers the newest queued event of `record` from `system` ahead of the older ones, if
    /// every older one it makes stale is an echo of an engine write, an edit of an owned field,
    /// or an edit of the same field: their changes then reach the engine with a source
    /// timestamp that is still right for what the model counts.
    async fn jump(&self, system: usize, record: usize) -> Result<(), String> {
        let picked = {
            let mut s = self.systems[system].lock();
            let mine: Vec<usize> = (0..s.queue.len())
                .filter(|i| s.queue[*i].record == record)
                .collect();
            let Some(&last) = mine.last() else {
                return Ok(());
            };
            let Cause::Edit(field) = s.queue[last].cause else {
                return Ok(());
            };
            let safe = mine[..mine.len() - 1]
                .iter()
                .all(|i| match s.queue[*i].cause {
                    Cause::Write => true,
                    Cause::Edit(g) => g == field || g.owned(),
                    // The first event the engine sees of a record is its creation, whoever
                    // made it: a non-owner's later edit must not pass for a creation value.
                    Cause::Created => false,
                });
            if !safe || mine.len() < 2 {
                return Ok(());
            }
            s.queue.remove(last)
        };
        self.log(format!(
            "out of order: {} delivered before older events of r{record}",
            picked.event.event_key
        ));
        self.ingest(system, &picked.event, true).await?;
        self.systems[system]
            .lock()
            .delivered
            .push(picked.event.clone());
        Ok(())
    }

    async fn step(&mut self, op: &Op) -> Result<(), String> {
        let n = self.n();
        match op {
            Op::Create {
                system,
                record,
                values,
            } => {
                let (s, r) = (system % n, *record);
                if self.records[r].is_some() {
                    return Ok(());
                }
                let mut initial: [String; 5] = Default::default();
                let mut fields = Map::new();
                for (i, f) in FIELDS.iter().enumerate() {
                    let v = match f {
                        Field::Key => format!("r{r}"),
                        _ => self.value_for(*f, values[i - 1]),
                    };
                    fields.insert(path(s, *f), Value::String(v.clone()));
                    initial[i] = v;
                }
                let (_, ts) = self.systems[s].user_create(fields);
                self.records[r] = Some(ModelRecord {
                    creator: s,
                    created: ts,
                    initial,
                    edits: Vec::new(),
                });
            }
            Op::Edit {
                system,
                record,
                field,
                value,
            } => {
                let (s, r, f) = (system % n, *record, EDITABLE[field % EDITABLE.len()]);
                let Some(external_id) = self.systems[s].find(r).into_iter().next() else {
                    return Ok(());
                };
                let value = self.value_for(f, *value);
                let ts = self.systems[s].user_edit(&external_id, f, &value);
                let Some(model) = self.records[r].as_mut() else {
                    return Err(format!(
                        "{} holds r{r}, which nobody created",
                        SYSTEM_IDS[s]
                    ));
                };
                model.edits.push(ModelEdit {
                    ts,
                    system: s,
                    field: f,
                    value,
                });
            }
            Op::Deliver { system, count } => {
                self.deliver_events(system % n, *count).await?;
            }
            Op::Jump { system, record } => self.jump(system % n, *record).await?,
            Op::Duplicate { system, pick } => {
                let s = system % n;
                let event = {
                    let st = self.systems[s].lock();
                    if st.delivered.is_empty() {
                        return Ok(());
                    }
                    st.delivered[pick.index(st.delivered.len())].clone()
                };
                self.log(format!("duplicate delivery of {}", event.event_key));
                self.ingest(s, &event, false).await?;
            }
            Op::Process => {
                let applied = self
                    .engine
                    .process_inbox()
                    .await
                    .map_err(|e| format!("process_inbox: {e}"))?;
                self.log(format!("engine applied {applied} inbox events"));
            }
            Op::Send { system, wait_ms } => {
                let s = system % n;
                self.clock
                    .advance(chrono::Duration::milliseconds(i64::from(*wait_ms)));
                let sent = self
                    .engine
                    .deliver(SYSTEM_IDS[s])
                    .await
                    .map_err(|e| format!("deliver to {}: {e}", SYSTEM_IDS[s]))?;
                self.log(format!(
                    "engine delivery round to {}: {sent} writes",
                    SYSTEM_IDS[s]
                ));
            }
            Op::Replay => {
                let queued = self
                    .engine
                    .replay_matching(&DeadLetterFilter::default(), &support())
                    .await
                    .map_err(|e| format!("replay_matching: {e}"))?;
                self.log(format!("support replays {queued} dead letters"));
            }
            Op::Sync => {
                for s in 0..n {
                    self.deliver_events(s, usize::MAX).await?;
                }
                Box::pin(self.step(&Op::Process)).await?;
                for s in 0..n {
                    Box::pin(self.step(&Op::Send {
                        system: s,
                        wait_ms: 0,
                    }))
                    .await?;
                }
            }
            Op::FailNext { system, failure } => {
                self.systems[system % n].lock().script.push(*failure);
            }
        }
        Ok(())
    }

    /// Failures stop; events are delivered, dead letters replayed and the engine run until
    /// nothing moves.
    async fn settle(&self) -> Result<(), String> {
        for s in &self.systems {
            s.set_failing(false);
        }
        self.log("failures stop; settling".into());
        // Let retries and "waiting for the create" rows come due quickly.
        self.clock.set_tick(chrono::Duration::milliseconds(25));
        for _ in 0..50 {
            let mut moved = 0;
            for s in 0..self.n() {
                moved += self.deliver_events(s, usize::MAX).await?;
            }
            let replayed = self
                .engine
                .replay_matching(&DeadLetterFilter::default(), &support())
                .await
                .map_err(|e| format!("replay_matching: {e}"))?;
            if replayed > 0 {
                self.log(format!("support replays {replayed} dead letters"));
            }
            moved += replayed;
            self.engine
                .run_until_idle(Duration::from_secs(30))
                .await
                .map_err(|e| format!("once failures stop, the engine must reach idle: {e}"))?;
            let queued: usize = self.systems.iter().map(|s| s.lock().queue.len()).sum();
            if moved == 0 && queued == 0 {
                return Ok(());
            }
        }
        Err(
            "once failures stop, events and writes must stop within 50 rounds (a write loop?)"
                .into(),
        )
    }

    async fn audit_lines(&self, record_id: i64, field: Field) -> String {
        let rows = self
            .engine
            .audit_for(record_id, Some(field.name()))
            .await
            .unwrap_or_default();
        let mut out = String::new();
        for r in rows {
            let _ = writeln!(
                out,
                "    {} {} {} {:?} -> {:?} {}",
                r.rule,
                r.system.unwrap_or_default(),
                r.direction,
                r.before,
                r.after,
                r.detail.map(|d| d.to_string()).unwrap_or_default()
            );
        }
        out
    }

    /// The convergence check against the reference model.
    async fn check(&self) -> Result<(), String> {
        let n = self.n();
        let exceptions = self
            .engine
            .list_exceptions(&ExceptionFilter::default())
            .await
            .map_err(|e| format!("list_exceptions: {e}"))?;
        if !exceptions.is_empty() {
            return Err(format!(
                "every conflict under last_write_wins / owner_wins (non-owner: revert) is decided \
                 by rule, so no exception may be open; open: {:#?}",
                exceptions
                    .iter()
                    .map(|e| (&e.kind, &e.system, &e.field, &e.detail))
                    .collect::<Vec<_>>()
            ));
        }
        let dead = self
            .engine
            .list_dead_letters(&DeadLetterFilter::default())
            .await
            .map_err(|e| format!("list_dead_letters: {e}"))?;
        if !dead.is_empty() {
            return Err(format!(
                "once failures stop and dead letters are replayed, none may be left: {dead:#?}"
            ));
        }
        let created = self.records.iter().filter(|r| r.is_some()).count();
        for (s, system) in self.systems.iter().enumerate() {
            let held = system.lock().records.len();
            if held != created {
                return Err(format!(
                    "after quiescence every system holds each record exactly once: {} holds {held} \
                     records, {created} were created",
                    SYSTEM_IDS[s]
                ));
            }
        }
        for (r, model) in self.records.iter().enumerate() {
            let Some(model) = model else { continue };
            let creator = &self.systems[model.creator];
            let ids = creator.find(r);
            let [creator_id] = ids.as_slice() else {
                return Err(format!(
                    "{} created r{r} once but holds it as {ids:?}",
                    creator.id()
                ));
            };
            let record_id = self
                .engine
                .record_for(creator.id(), OBJECT, creator_id)
                .await
                .map_err(|e| format!("record_for: {e}"))?
                .ok_or_else(|| format!("the engine has no record for r{r} ({creator_id})"))?;
            let golden = self
                .engine
                .golden(record_id)
                .await
                .map_err(|e| format!("golden: {e}"))?;
            for field in FIELDS {
                let expected = Value::String(model.expected(field, n));
                let mut wrong = Vec::new();
                for system in &self.systems {
                    let ids = system.find(r);
                    let [id] = ids.as_slice() else {
                        return Err(format!(
                            "after quiescence every system holds each record exactly once: {} \
                             holds r{r} as {ids:?}",
                            system.id()
                        ));
                    };
                    let actual = system.value(id, field).unwrap_or(Value::Null);
                    if actual != expected {
                        wrong.push(format!("{} ({id}) holds {actual}", system.id()));
                    }
                }
                let golden_value = golden.get(field.name()).cloned().unwrap_or(Value::Null);
                if golden_value != expected {
                    wrong.push(format!("the golden record holds {golden_value}"));
                }
                if !wrong.is_empty() {
                    return Err(format!(
                        "{}\n  record r{r}, field {}: expected {expected}, but {}\n  edits: {}\n  \
                         engine audit of the field:\n{}",
                        field.rule(n),
                        field.name(),
                        wrong.join(", "),
                        model.history(field, self.clock.start),
                        self.audit_lines(record_id, field).await
                    ));
                }
            }
        }
        Ok(())
    }
}

/// What the cases exercised, summed (printed with `CONCORD_CONVERGENCE_STATS=1` and
/// `--nocapture`, to see that the generator reaches the interesting paths).
static COVERAGE: Mutex<Coverage> = Mutex::new(Coverage {
    cases: 0,
    seen: BTreeMap::new(),
});

/// Per counter: the sum over cases, and the number of cases where it was not zero.
struct Coverage {
    cases: u64,
    seen: BTreeMap<String, (u64, u64)>,
}

impl Harness {
    async fn record_coverage(&self) {
        let mut seen: BTreeMap<String, u64> = BTreeMap::new();
        for s in &self.systems {
            let st = s.lock().stats;
            *seen
                .entry("system: 412 version conflicts".into())
                .or_default() += st.version_conflicts;
            *seen
                .entry("system: repeated idempotency keys".into())
                .or_default() += st.repeated_keys;
            *seen
                .entry("system: updates without If-Match".into())
                .or_default() += st.unconditional_updates;
            *seen.entry("system: creates applied".into()).or_default() += st.creates_applied;
            *seen.entry("system: updates applied".into()).or_default() += st.updates_applied;
        }
        for c in ["stale", "duplicates", "retries", "dead_letters", "noops"] {
            let v = self.engine.counter(c).await.unwrap_or_default();
            seen.insert(format!("engine: {c}"), u64::try_from(v).unwrap_or(0));
        }
        let rules: Vec<(String, i64)> = sqlx::query_as(
            "SELECT rule, COUNT(*) FROM audit WHERE rule LIKE 'rule%' OR rule LIKE 'repair%' \
             OR rule LIKE 'first_contact%' OR rule LIKE 'dead_letter%' GROUP BY rule",
        )
        .fetch_all(self.engine.pool())
        .await
        .unwrap_or_default();
        for (rule, count) in rules {
            seen.insert(format!("audit: {rule}"), u64::try_from(count).unwrap_or(0));
        }
        let mut cov = COVERAGE.lock().unwrap_or_else(|p| p.into_inner());
        cov.cases += 1;
        for (k, v) in seen {
            let e = cov.seen.entry(k).or_default();
            e.0 += v;
            e.1 += u64::from(v > 0);
        }
        if std::env::var_os("CONCORD_CONVERGENCE_STATS").is_some() && cov.cases.is_multiple_of(50) {
            let mut out = format!("after {} cases (total, cases with any):\n", cov.cases);
            for (k, (total, cases)) in &cov.seen {
                let _ = writeln!(out, "  {k:<55} {total:>7} {cases:>5}");
            }
            eprintln!("{out}");
        }
    }
}

async fn run_case(case: &Case) -> Result<(), String> {
    let mut h = Harness::new(case).await?;
    let result = async {
        for (record, (system, values)) in case.creates.iter().enumerate() {
            h.step(&Op::Create {
                system: *system,
                record,
                values: *values,
            })
            .await?;
        }
        for op in &case.ops {
            h.step(op).await?;
        }
        h.settle().await?;
        h.check().await?;
        h.record_coverage().await;
        Ok::<(), String>(())
    }
    .await;
    if result.is_ok() && std::env::var_os("CONCORD_CONVERGENCE_TRACE").is_some() {
        eprintln!("trace:\n{}", h.trace.render());
    }
    result.map_err(|e| format!("{e}\n\ntrace:\n{}", h.trace.render()))
}

fn cases() -> u32 {
    std::env::var("CONCORD_PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200)
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("building a tokio runtime: {e}"))
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: cases(),
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn edits_on_several_systems_with_failing_deliveries_converge(case in case_strategy()) {
        runtime().block_on(run_case(&case)).map_err(TestCaseError::fail)?;
    }
}

// ------------------------------------------------------------------------------------------
// Pinned cases: minimal interleavings the property found, kept as plain tests
// ------------------------------------------------------------------------------------------

fn pinned(systems: usize, ops: Vec<Op>) {
    let case = Case {
        systems,
        max_attempts: 4,
        failures: Failures {
            unavailable: 0,
            rejected: 0,
            lost_response: 0,
        },
        seed: 1,
        creates: Vec::new(),
        ops,
    };
    if let Err(e) = runtime().block_on(run_case(&case)) {
        panic!("{e}");
    }
}

/// Record r0 exists in a and b, agreed. b changes `name` first, a changes it a moment later;
/// the engine sees a's change first and writes it to b, which refuses (412: b moved on). The
/// engine re-reads b and merges b's value as if it had been written at the time of the
/// re-read, so b's older edit beats a's newer one under last_write_wins.
#[test]
fn a_reread_after_412_keeps_the_source_time_of_the_change_it_finds() {
    pinned(
        2,
        vec![
            Op::Create {
                system: 0,
                record: 0,
                values: [0; 4],
            },
            Op::Sync,
            Op::Deliver {
                system: 1,
                count: 9,
            },
            Op::Process,
            Op::Edit {
                system: 1,
                record: 0,
                field: 0,
                value: 1,
            },
            Op::Edit {
                system: 0,
                record: 0,
                field: 0,
                value: 2,
            },
            Op::Deliver {
                system: 0,
                count: 9,
            },
            Op::Process,
            Op::Send {
                system: 1,
                wait_ms: 0,
            },
        ],
    );
}

/// The create of r0 in b is applied but its response is lost, so it stays queued for a retry.
/// a then changes `name`; the engine re-renders the queued create with the new value and a new
/// idempotency key. The retry is now a different request: b creates the record a second time.
#[test]
fn a_write_whose_outcome_is_unknown_is_retried_unchanged() {
    pinned(
        2,
        vec![
            Op::Create {
                system: 0,
                record: 0,
                values: [0; 4],
            },
            Op::Deliver {
                system: 0,
                count: 9,
            },
            Op::Process,
            Op::FailNext {
                system: 1,
                failure: Scripted::LostResponse,
            },
            Op::Send {
                system: 1,
                wait_ms: 0,
            },
            Op::Edit {
                system: 0,
                record: 0,
                field: 0,
                value: 1,
            },
            Op::Deliver {
                system: 0,
                count: 9,
            },
            Op::Process,
            Op::Send {
                system: 1,
                wait_ms: 10,
            },
        ],
    );
}

/// As above, but a changes `name` just before the create goes out (with the old value), and
/// b's change event for the applied create reaches the engine before the retry: the engine no
/// longer recognises its own write (the queued one now carries a's new value), links b's record
/// by match key and takes b's `name` (the old value the engine itself wrote there) as b's own
/// change, made when the create was applied: later than a's edit, so it wins last_write_wins
/// and a's edit is lost everywhere.
#[test]
fn the_echo_of_a_write_whose_response_was_lost_is_not_a_change() {
    pinned(
        2,
        vec![
            Op::Create {
                system: 0,
                record: 0,
                values: [0; 4],
            },
            Op::Deliver {
                system: 0,
                count: 9,
            },
            Op::Process,
            Op::Edit {
                system: 0,
                record: 0,
                field: 0,
                value: 1,
            },
            Op::FailNext {
                system: 1,
                failure: Scripted::LostResponse,
            },
            Op::Send {
                system: 1,
                wait_ms: 0,
            },
            Op::Deliver {
                system: 0,
                count: 9,
            },
            Op::Deliver {
                system: 1,
                count: 9,
            },
            Op::Process,
        ],
    );
}

/// A write of a's new `name` to b is refused (422) and becomes a dead letter. A person in b then
/// changes `dept`, which a owns: the engine queues a revert. Support replays the dead letter,
/// which goes first and is refused as out of date (412); the engine re-reads b, but before the
/// re-read is applied the revert goes through and moves b's version on. The re-read is then
/// skipped as stale, and with it the repair it carried: b never gets the new `name`.
#[test]
fn a_reread_overtaken_by_another_write_still_repairs() {
    pinned(
        2,
        vec![
            Op::Create {
                system: 0,
                record: 0,
                values: [0; 4],
            },
            Op::Sync,
            Op::Deliver {
                system: 1,
                count: 9,
            },
            Op::Process,
            Op::Edit {
                system: 0,
                record: 0,
                field: 0,
                value: 1,
            },
            Op::Deliver {
                system: 0,
                count: 9,
            },
            Op::Process,
            Op::FailNext {
                system: 1,
                failure: Scripted::Rejected,
            },
            Op::Send {
                system: 1,
                wait_ms: 0,
            },
            Op::Edit {
                system: 1,
                record: 0,
                field: 2,
                value: 1,
            },
            Op::Deliver {
                system: 1,
                count: 9,
            },
            Op::Process,
            Op::Replay,
            Op::Send {
                system: 1,
                wait_ms: 0,
            },
            Op::Send {
                system: 1,
                wait_ms: 0,
            },
        ],
    );
}

/// a owns `dept`. a changes it from z to x, changes `name`, and changes `dept` back to z; in the
/// meantime a person in b sets `dept` to x. The engine takes a's three events in one batch: the
/// queued write to b first carries dept x and name, then dept is dropped from it (b already
/// holds z). The batch's record of what is on its way to b still says dept x, so b's own change
/// to x passes for the echo of that write: it is never reverted.
#[test]
fn a_field_dropped_from_a_queued_write_is_no_longer_expected_back() {
    pinned(
        2,
        vec![
            Op::Create {
                system: 0,
                record: 0,
                values: [0, 0, 2, 0],
            },
            Op::Sync,
            Op::Deliver {
                system: 1,
                count: 9,
            },
            Op::Process,
            Op::Edit {
                system: 0,
                record: 0,
                field: 2,
                value: 0,
            },
            Op::Edit {
                system: 0,
                record: 0,
                field: 0,
                value: 0,
            },
            Op::Edit {
                system: 1,
                record: 0,
                field: 2,
                value: 0,
            },
            Op::Edit {
                system: 0,
                record: 0,
                field: 2,
                value: 2,
            },
            Op::Deliver {
                system: 0,
                count: 9,
            },
            Op::Deliver {
                system: 1,
                count: 9,
            },
            Op::Process,
        ],
    );
}
