//! Conformance of the running engine against a real system without concurrency control:
//! json-server 0.17.4 (pinned) as BOTH systems `a` and `b`, two processes, each on its own copy
//! of tests/fixtures/json-server/people.json (30 employees with a nested `contact` object whose
//! `fax` is never mapped). Only polling (every second, incremental by `updatedAt_gte`, paged with
//! `_page`/`_limit`); no webhooks, no ETags, no version field. json-server ignores `If-Match`,
//! so the engine reads a record before every write and merges anything that changed there
//! before writing.
//!
//! The engine runs for real (`Engine::start`: its poll loops, applier and senders) on a SQLite
//! file. People edit records directly in json-server while it runs:
//!
//! - races: the same record's `title` is edited in one system and then in the other 50–300 ms
//!   later (always less than the poll interval), under `last_write_wins`, `owner_wins` and
//!   `manual`, in both orders; the outcome is read back through json-server's own API and
//!   explained from the audit;
//! - nested members: a write of `contact/email` or `contact/mobile` keeps the other members of
//!   `contact` (including the unmapped `fax`), and only records that need a write get one;
//! - paging: a record edited while the engine is between two pages of a change listing is
//!   found by a later poll (a pass-through proxy makes the edits at exactly that moment).
//!
//! What no client can prevent on such a system is counted apart, never excused silently: an
//! edit that reaches json-server after the engine's read and before its write is overwritten
//! unseen. A race ends that way only when json-server's request log proves it (for that record,
//! the engine's read, then the edit, then the engine's write) and both systems hold the edit the
//! engine wrote; every other race must end as its policy says.
//!
//! The tests of this file run one at a time (each starts two node processes and an engine; the
//! races are about timing), and each prints its figures (`cargo test --test conformance --
//! --nocapture`).

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use common::json_server::{JsonServer, fixture_dir, is_direct_edit, seed_of};
use concord::Engine;
use concord::model::{RecordId, WorkspaceConfig};
use concord::ops::{AuditRow, ExceptionFilter, ExceptionView};
use concord::runtime::RunningEngine;
use serde_json::{Map, Value, json};
use tempfile::TempDir;
use tokio_util::sync::CancellationToken;

/// Employees in people.json.
const PEOPLE: u64 = 30;
/// How often the engine polls each json-server.
const POLL_SECS: f64 = 1.0;
/// Gaps between the two edits of a race: from 50 to 300 ms, always below the poll interval.
const MIN_GAP_MS: u64 = 50;
const MAX_GAP_MS: u64 = 300;

/// One test at a time (see the module comment).
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn people_file() -> PathBuf {
    fixture_dir().join("people.json")
}

/// people.json as committed, by id.
fn seed() -> BTreeMap<u64, Map<String, Value>> {
    seed_of(&people_file())
        .into_iter()
        .map(|e| {
            let id = e["id"]
                .as_u64()
                .expect("every seed employee has a numeric id");
            (id, e)
        })
        .collect()
}

/// The `rest` config of one json-server: paged listing, incremental polling by `updatedAt`,
/// no concurrency control (json-server has none).
fn rest(base: &str) -> Value {
    json!({
        "base_url": base,
        "objects": { "employee": {
            "path": "/employees",
            "pagination": { "style": "page", "page_param": "_page", "size_param": "_limit", "size": 10 },
            "total_header": "X-Total-Count",
            "modified_field": "updatedAt",
            "incremental": { "style": "param", "param": "updatedAt_gte", "format": "rfc3339" }
        } },
        "poll": { "interval_secs": POLL_SECS }
    })
}

/// json-server's employee, the same on both sides.
fn mapping(system: &str) -> Value {
    json!({ "system": system, "object": "employee", "rules": [
        { "canonical": ["employee_number"], "system": ["employeeNumber"] },
        { "canonical": ["given_name"], "system": ["firstName"] },
        { "canonical": ["family_name"], "system": ["lastName"] },
        { "canonical": ["job_title"], "system": ["title"] },
        { "canonical": ["work_email"], "system": ["contact/email"] },
        { "canonical": ["mobile_phone"], "system": ["contact/mobile"] }
    ]})
}

/// Systems `a` and `b` (two json-servers), the canonical employee matched by employee number,
/// and the given field policies (none: every field is open, last write wins).
fn workspace(a: &str, b: &str, policies: &[Value]) -> WorkspaceConfig {
    let mut employee = concord::schema::employee();
    employee.match_keys = vec!["employee_number".into()];
    let policies = if policies.is_empty() {
        json!([])
    } else {
        json!([{ "object": "employee", "fields": policies }])
    };
    serde_json::from_value(json!({
        "systems": [
            { "id": "a", "name": "json-server A", "connector": "rest", "config": rest(a) },
            { "id": "b", "name": "json-server B", "connector": "rest", "config": rest(b) }
        ],
        "objects": [employee],
        "mappings": [mapping("a"), mapping("b")],
        "policies": policies
    }))
    .expect("a valid workspace")
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    A,
    B,
}

impl Side {
    fn id(self) -> &'static str {
        match self {
            Side::A => "a",
            Side::B => "b",
        }
    }

    fn other(self) -> Self {
        match self {
            Side::A => Side::B,
            Side::B => Side::A,
        }
    }
}

/// Two json-servers and the running engine between them.
struct Pair {
    a: JsonServer,
    b: JsonServer,
    engine: Engine,
    running: Option<RunningEngine>,
    cancel: CancellationToken,
    _dir: TempDir,
}

impl Pair {
    /// Starts both json-servers on people.json and the engine on a SQLite file, and waits
    /// (at most 30 s) until both initial listings are linked record by record.
    async fn start(policies: &[Value]) -> Self {
        let people = people_file();
        let (a, b) = tokio::join!(JsonServer::start(&people), JsonServer::start(&people));
        let dir = tempfile::tempdir().expect("temp dir");
        let engine = common::open_engine(dir.path()).await;
        engine
            .apply_workspace(&workspace(a.base(), b.base(), policies))
            .await
            .expect("workspace applies");
        let cancel = CancellationToken::new();
        let running = engine.start(cancel.clone());
        let pair = Self {
            a,
            b,
            engine,
            running: Some(running),
            cancel,
            _dir: dir,
        };
        pair.initial_sync().await;
        pair
    }

    fn server(&self, side: Side) -> &JsonServer {
        match side {
            Side::A => &self.a,
            Side::B => &self.b,
        }
    }

    async fn scalar(&self, sql: &str) -> i64 {
        sqlx::query_scalar(sql)
            .fetch_one(self.engine.pool())
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
    }

    /// Events not applied yet and writes not delivered yet.
    async fn backlog(&self) -> i64 {
        self.scalar(
            "SELECT (SELECT COUNT(*) FROM inbox WHERE status IN ('pending', 'held'))
                  + (SELECT COUNT(*) FROM outbox WHERE status IN ('pending', 'in_flight'))",
        )
        .await
    }

    async fn dead_letters(&self) -> i64 {
        self.scalar("SELECT COUNT(*) FROM dead_letters").await
    }

    async fn open_exceptions(&self, kind: Option<&str>) -> Vec<ExceptionView> {
        self.engine
            .list_exceptions(&ExceptionFilter {
                kind: kind.map(str::to_owned),
                ..ExceptionFilter::default()
            })
            .await
            .expect("exceptions")
    }

    /// Both listings done, every employee of each side linked to one record, nothing pending,
    /// nothing created in either json-server.
    async fn initial_sync(&self) {
        let started = Instant::now();
        let deadline = started + Duration::from_secs(30);
        loop {
            let listed = self
                .scalar("SELECT COUNT(*) FROM poll_cursors WHERE listing_done = 1")
                .await;
            let links = self
                .scalar("SELECT COUNT(*) FROM links WHERE deleted = 0")
                .await;
            let records = self.scalar("SELECT COUNT(*) FROM records").await;
            let backlog = self.backlog().await;
            if listed == 2 && links == 2 * PEOPLE as i64 && backlog == 0 {
                assert_eq!(
                    records, PEOPLE as i64,
                    "the two copies of each employee are linked to one record by employee number"
                );
                break;
            }
            assert!(
                Instant::now() < deadline,
                "timed out after 30 s waiting for the initial sync: {listed} of 2 listings done, \
                 {links} of {} links, {records} records, backlog {backlog}",
                2 * PEOPLE
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        for side in [Side::A, Side::B] {
            assert_eq!(
                self.server(side).engine_writes(),
                Vec::<String>::new(),
                "the initial sync writes nothing to {}: both sides already agree",
                side.id()
            );
        }
        assert_eq!(
            self.open_exceptions(None).await.len(),
            0,
            "the seed is valid on both sides: no exception"
        );
        println!(
            "initial sync of 2 x {PEOPLE} employees linked in {:.1} s",
            started.elapsed().as_secs_f64()
        );
    }

    /// Incremental polls a json-server has received so far.
    fn polls(&self, side: Side) -> usize {
        self.server(side)
            .requests()
            .iter()
            .filter(|r| r.starts_with("GET /employees?updatedAt_gte="))
            .count()
    }

    /// Waits (at most `limit`) until nothing is pending in the engine, `unsettled` (the
    /// employees not yet as expected) is empty, and both stay so while each json-server is
    /// polled twice more: a change still on its way would have been found by those polls. On
    /// timeout, the employees still unsettled are diagnosed on `field`.
    async fn settle(
        &self,
        what: &str,
        limit: Duration,
        field: &str,
        unsettled: impl AsyncFn() -> Vec<u64>,
    ) -> Duration {
        let started = Instant::now();
        let deadline = started + limit;
        let mut quiet_since: Option<(usize, usize)> = None;
        loop {
            let backlog = self.backlog().await;
            let left = unsettled().await;
            match (backlog == 0 && left.is_empty(), quiet_since) {
                (false, _) => quiet_since = None,
                (true, None) => quiet_since = Some((self.polls(Side::A), self.polls(Side::B))),
                (true, Some((a, b))) => {
                    if self.polls(Side::A) >= a + 2 && self.polls(Side::B) >= b + 2 {
                        return started.elapsed();
                    }
                }
            }
            if Instant::now() >= deadline {
                let mut why = String::new();
                for id in left.iter().take(5) {
                    why += &format!("\n employee {id}:{}", self.diagnose(*id, field).await);
                }
                panic!(
                    "timed out after {limit:?} waiting until {what}: engine backlog {backlog}, \
                     employees not there yet {left:?}{why}"
                );
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    async fn record(&self, id: u64) -> RecordId {
        self.engine
            .record_for("a", "employee", &id.to_string())
            .await
            .expect("lookup")
            .unwrap_or_else(|| panic!("a:{id} is linked to a record"))
    }

    async fn audit(&self, id: u64, field: &str) -> Vec<AuditRow> {
        let record = self.record(id).await;
        self.engine
            .audit_for(record, Some(field))
            .await
            .expect("audit")
    }

    async fn titles(&self, id: u64) -> (Value, Value) {
        let (a, b) = tokio::join!(self.a.get(id), self.b.get(id));
        (a["title"].clone(), b["title"].clone())
    }

    /// Every employee's title in a and in b, by id (one listing per side).
    async fn all_titles(&self) -> BTreeMap<u64, (Value, Value)> {
        let (a, b) = tokio::join!(self.a.all(), self.b.all());
        let by_id = |records: Vec<Map<String, Value>>| -> BTreeMap<u64, Value> {
            records
                .into_iter()
                .filter_map(|r| Some((r.get("id")?.as_u64()?, r.get("title")?.clone())))
                .collect()
        };
        let (a, mut b) = (by_id(a), by_id(b));
        a.into_iter()
            .filter_map(|(id, t)| Some((id, (t, b.remove(&id)?))))
            .collect()
    }

    /// json-server has no concurrency control: the engine reads a record right before writing
    /// it, and an edit that reaches json-server after that read and before the write is
    /// overwritten without the engine ever seeing it. No client can prevent that on such a
    /// system; the request log proves when it happened: for the race's record, the second side
    /// got the engine's read, then the second edit, then the engine's write, one after another.
    fn edited_between_read_and_write(&self, race: &Race) -> bool {
        let path = format!("/employees/{}", race.id);
        let (read, edit, write) = (
            format!("GET {path}"),
            format!("PATCH {path}?{}", common::json_server::DIRECT_EDIT),
            format!("PATCH {path}"),
        );
        let lines: Vec<String> = self
            .server(race.first.other())
            .requests()
            .into_iter()
            .filter(|r| {
                r.split_once(' ').is_some_and(|(method, uri)| {
                    (uri == path || uri.starts_with(&format!("{path}?")))
                        && !(method == "GET" && is_direct_edit(r))
                })
            })
            .collect();
        lines
            .windows(3)
            .any(|w| w[0] == read && w[1] == edit && w[2] == write)
    }

    /// Whether a race ended with its second edit lost in that window: both systems hold the
    /// first edit and the log shows the second one arrive between the engine's read and write.
    fn lost_between_read_and_write(&self, race: &Race, titles: &(Value, Value)) -> bool {
        let first = json!(race.first_value);
        titles.0 == first && titles.1 == first && self.edited_between_read_and_write(race)
    }

    /// What the engine and both json-servers say about one employee's `field`: its audit,
    /// and every request each json-server got for that employee.
    async fn diagnose(&self, id: u64, field: &str) -> String {
        let mut out = String::new();
        let record = self.record(id).await;
        let golden = self.engine.golden(record).await.expect("golden");
        out += &format!(
            "\n  record {record}: golden {field} = {}",
            golden.get(field).unwrap_or(&Value::Null)
        );
        for row in self.audit(id, field).await {
            out += &format!(
                "\n  audit #{} {} {} [{}] {}: {} -> {} {}",
                row.id,
                row.at,
                row.direction,
                row.system.as_deref().unwrap_or("-"),
                row.rule,
                row.before.unwrap_or(Value::Null),
                row.after.unwrap_or(Value::Null),
                row.detail.unwrap_or(Value::Null)
            );
        }
        for side in [Side::A, Side::B] {
            let now = self.server(side).get(id).await;
            out += &format!("\n  {} holds {}", side.id(), Value::Object(now));
        }
        for side in [Side::A, Side::B] {
            let path = format!("/employees/{id}");
            let lines: Vec<String> = self
                .server(side)
                .requests()
                .into_iter()
                .filter(|r| {
                    r.split_once(' ')
                        .is_some_and(|(_, u)| u == path || u.starts_with(&format!("{path}?")))
                })
                .collect();
            out += &format!("\n  {} got: {}", side.id(), lines.join(" | "));
        }
        // What each side's polls brought in for this employee, and where its cursor is.
        let events = sqlx::query_as::<_, (String, String, String, Option<String>, Option<String>)>(
            "SELECT system_id, event_key, status, source_ts, detail FROM inbox
             WHERE object = 'employee' AND external_id = ? ORDER BY id",
        )
        .bind(id.to_string())
        .fetch_all(self.engine.pool())
        .await
        .expect("inbox rows");
        for (system, key, status, at, detail) in events {
            out += &format!(
                "\n  inbox [{system}] {key} {status} source_ts {} {}",
                at.unwrap_or_default(),
                detail.unwrap_or_default()
            );
        }
        let cursors = sqlx::query_as::<_, (String, Option<String>)>(
            "SELECT system_id, cursor FROM poll_cursors ORDER BY system_id",
        )
        .fetch_all(self.engine.pool())
        .await
        .expect("poll cursors");
        for (system, cursor) in cursors {
            out += &format!("\n  poll cursor [{system}] {}", cursor.unwrap_or_default());
        }
        // The polls around each direct edit of this employee, in the order json-server saw them.
        for side in [Side::A, Side::B] {
            let edit = format!("PATCH /employees/{id}?{}", common::json_server::DIRECT_EDIT);
            let lines: Vec<String> = self
                .server(side)
                .requests()
                .into_iter()
                .filter(|r| r.starts_with("GET /employees?") || *r == edit)
                .collect();
            if let Some(at) = lines.iter().position(|r| *r == edit) {
                let around = &lines[at.saturating_sub(3)..(at + 4).min(lines.len())];
                out += &format!(
                    "\n  {} polls around the edit: {}",
                    side.id(),
                    around.join(" | ")
                );
            }
        }
        out
    }

    async fn shutdown(mut self) {
        if let Some(running) = self.running.take() {
            running.shutdown(Duration::from_secs(5)).await;
        }
    }
}

impl Drop for Pair {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

/// One race on one record: `first` edits the title, the other side edits it `gap` later.
#[derive(Debug, Clone)]
struct Race {
    id: u64,
    first: Side,
    /// When the race starts, from the start of the burst.
    start: Duration,
    gap: Duration,
    first_value: String,
    second_value: String,
}

impl Race {
    fn value(&self, side: Side) -> &str {
        if side == self.first {
            &self.first_value
        } else {
            &self.second_value
        }
    }
}

/// `count` races on employees 1..=count, half with `a` first, half with `b` first, their starts
/// spread over about two poll intervals so they meet the engine's polls at every phase.
fn races(count: u64, label: &str) -> Vec<Race> {
    (1..=count)
        .map(|id| {
            let first = if id % 2 == 1 { Side::A } else { Side::B };
            let gap = MIN_GAP_MS + (id * 53) % (MAX_GAP_MS - MIN_GAP_MS + 1);
            Race {
                id,
                first,
                start: Duration::from_millis((id - 1) * 2_000 / count),
                gap: Duration::from_millis(gap),
                first_value: format!("{label} {id} first by {}", first.id()),
                second_value: format!("{label} {id} second by {}", first.other().id()),
            }
        })
        .collect()
}

/// Runs the races (all at once, each on its own record) while the engine runs, and checks each
/// was one: the second edit reached its json-server after the first, within the poll interval.
async fn run_races(pair: &Pair, races: &[Race]) {
    let started = Instant::now();
    let runs = races.iter().map(|race| async move {
        tokio::time::sleep(race.start).await;
        let first = pair
            .server(race.first)
            .patch(race.id, json!({ "title": race.first_value }))
            .await;
        tokio::time::sleep(race.gap).await;
        let second = pair
            .server(race.first.other())
            .patch(race.id, json!({ "title": race.second_value }))
            .await;
        let stamp = |r: &Map<String, Value>| {
            r.get("updatedAt")
                .and_then(Value::as_str)
                .and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok())
                .unwrap_or_else(|| panic!("json-server stamped employee {} on write", race.id))
        };
        let apart = stamp(&second) - stamp(&first);
        assert!(
            apart > chrono::TimeDelta::zero()
                && apart < chrono::TimeDelta::milliseconds((POLL_SECS * 1000.0) as i64),
            "race {}: the edits must be less than a poll interval apart to be a race, they were \
             {} ms apart",
            race.id,
            apart.num_milliseconds()
        );
    });
    futures::future::join_all(runs).await;
    println!(
        "{} races fired in {:.1} s (gaps {MIN_GAP_MS}-{MAX_GAP_MS} ms, poll interval {POLL_SECS} s)",
        races.len(),
        started.elapsed().as_secs_f64()
    );
}

/// Whether `value` is or holds the string `s`.
fn holds_str(value: &Value, s: &str) -> bool {
    match value {
        Value::String(x) => x == s,
        Value::Array(items) => items.iter().any(|v| holds_str(v, s)),
        Value::Object(map) => map.values().any(|v| holds_str(v, s)),
        _ => false,
    }
}

/// Whether an audit row carries `s` in its before, after or detail.
fn mentions(row: &AuditRow, s: &str) -> bool {
    [&row.before, &row.after, &row.detail]
        .into_iter()
        .any(|v| v.as_ref().is_some_and(|v| holds_str(v, s)))
}

fn is(value: Option<&Value>, s: &str) -> bool {
    value.is_some_and(|v| v == &json!(s))
}

fn count_rule(rows: &[AuditRow], prefix: &str) -> usize {
    rows.iter().filter(|r| r.rule.starts_with(prefix)).count()
}

/// The audit proves the engine wrote the first edit to the other side before the second edit
/// happened there: the write was delivered, and the second edit came in as a clean change
/// from the first value.
fn sequential(rows: &[AuditRow], race: &Race) -> bool {
    let second = race.first.other().id();
    let delivered = rows.iter().any(|r| {
        r.rule == "delivered:update"
            && r.system.as_deref() == Some(second)
            && is(r.after.as_ref(), &race.first_value)
    });
    let clean = rows.iter().any(|r| {
        r.rule == "rule3:clean_change"
            && r.system.as_deref() == Some(second)
            && is(r.before.as_ref(), &race.first_value)
            && is(r.after.as_ref(), &race.second_value)
    });
    delivered && clean && count_rule(rows, "rule4:conflict:") == 0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn races_under_last_write_wins_end_with_the_later_edit_in_both_systems() {
    let _serial = SERIAL.lock().await;
    let started = Instant::now();
    let pair = Pair::start(&[]).await;
    let races = races(20, "LWW");
    run_races(&pair, &races).await;

    let settled = pair
        .settle(
            "both systems hold the later edit of every race",
            Duration::from_secs(45),
            "job_title",
            async || {
                let titles = pair.all_titles().await;
                races
                    .iter()
                    .filter(|race| {
                        let later = json!(race.second_value);
                        titles.get(&race.id).is_none_or(|t| {
                            *t != (later.clone(), later)
                                && !pair.lost_between_read_and_write(race, t)
                        })
                    })
                    .map(|race| race.id)
                    .collect()
            },
        )
        .await;

    let (mut conflicts, mut sequentials, mut rereads, mut lost) = (0, 0, 0, 0);
    for race in &races {
        let (a, b) = pair.titles(race.id).await;
        let rows = pair.audit(race.id, "job_title").await;
        let why = pair.diagnose(race.id, "job_title").await;
        if pair.lost_between_read_and_write(race, &(a.clone(), b.clone())) {
            println!(
                "race {}: the second edit reached {} between the engine's read and its write, \
                 and was overwritten unseen (json-server has no concurrency control){why}",
                race.id,
                race.first.other().id()
            );
            lost += 1;
            continue;
        }
        assert!(
            a == json!(race.second_value) && b == json!(race.second_value),
            "race {} ({} first, {:?} apart): under last_write_wins the later edit ends up in both \
             systems; a holds {a}, b holds {b}{why}",
            race.id,
            race.first.id(),
            race.gap
        );
        for value in [&race.first_value, &race.second_value] {
            assert!(
                rows.iter().any(|r| mentions(r, value)),
                "race {}: the audit of job_title carries both edits, not {value:?}{why}",
                race.id
            );
        }
        let second = race.first.other().id();
        let explained = rows.iter().any(|r| {
            let by_second = r.system.as_deref() == Some(second);
            match r.rule.as_str() {
                "rule3:clean_change" | "rule4:conflict:last_write_wins:incoming_won" => {
                    by_second && is(r.after.as_ref(), &race.second_value)
                }
                "rule4:conflict:last_write_wins:golden_kept" => {
                    is(r.after.as_ref(), &race.second_value)
                        && r.detail
                            .as_ref()
                            .is_some_and(|d| is(d.get("rejected"), &race.first_value))
                }
                _ => false,
            }
        });
        assert!(
            explained,
            "race {}: an audit row explains why the later edit won (rule3:clean_change or \
             rule4:conflict:last_write_wins:*){why}",
            race.id
        );
        if count_rule(&rows, "rule4:conflict:last_write_wins:") > 0 {
            conflicts += 1;
        } else {
            assert!(
                sequential(&rows, race),
                "race {}: without a conflict rule, the audit shows the first edit written to \
                 the other side before the second edit{why}",
                race.id
            );
            sequentials += 1;
        }
        rereads += count_rule(&rows, "delivery:changed_before_write");
    }
    assert_eq!(
        pair.dead_letters().await,
        0,
        "no write failed: racing edits are merged, never dead letters"
    );
    assert_eq!(
        pair.open_exceptions(None).await.len(),
        0,
        "last_write_wins decides every race without a steward"
    );
    let seed = seed();
    for id in (races.len() as u64 + 1)..=PEOPLE {
        let (a, b) = pair.titles(id).await;
        assert!(
            a == seed[&id]["title"] && b == seed[&id]["title"],
            "employee {id} was in no race: its title is untouched in both systems"
        );
    }
    for side in [Side::A, Side::B] {
        assert!(
            pair.server(side)
                .engine_writes()
                .iter()
                .all(|w| w.starts_with("PATCH ")),
            "the engine only updates {}: nothing is created or deleted",
            side.id()
        );
    }
    println!(
        "last_write_wins: {} races ({} with a first, {} with b first): {conflicts} decided by a \
         conflict rule, {sequentials} sequential (the first edit was written before the second), \
         {lost} lost between the engine's read and write; {rereads} writes found the record \
         changed when read before writing; settled {:.1} s after the burst; {:.1} s in all",
        races.len(),
        races.iter().filter(|r| r.first == Side::A).count(),
        races.iter().filter(|r| r.first == Side::B).count(),
        settled.as_secs_f64(),
        started.elapsed().as_secs_f64()
    );
    pair.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn races_under_owner_wins_end_with_the_owners_edit_in_both_systems() {
    let _serial = SERIAL.lock().await;
    let started = Instant::now();
    let pair = Pair::start(&[json!({
        "field": "job_title", "owner": "a", "conflict": "owner_wins"
    })])
    .await;
    let races = races(12, "Owner");
    run_races(&pair, &races).await;

    let settled = pair
        .settle(
            "both systems hold a's edit of every race",
            Duration::from_secs(45),
            "job_title",
            async || {
                let titles = pair.all_titles().await;
                races
                    .iter()
                    .filter(|race| {
                        let owners = json!(race.value(Side::A));
                        titles
                            .get(&race.id)
                            .is_none_or(|t| *t != (owners.clone(), owners))
                    })
                    .map(|race| race.id)
                    .collect()
            },
        )
        .await;

    let (mut reverts, mut rereads, mut lost) = (0, 0, 0);
    for race in &races {
        let (a, b) = pair.titles(race.id).await;
        let owners = race.value(Side::A);
        let theirs = race.value(Side::B);
        let why = pair.diagnose(race.id, "job_title").await;
        assert!(
            a == json!(owners) && b == json!(owners),
            "race {} ({} first): under owner_wins the owner's (a's) edit ends up in both systems, \
             b's is reverted; a holds {a}, b holds {b}{why}",
            race.id,
            race.first.id()
        );
        if pair.lost_between_read_and_write(race, &(a, b)) {
            println!(
                "race {}: b's edit reached b between the engine's read and its write of a's \
                 edit, and was overwritten unseen (json-server has no concurrency control){why}",
                race.id
            );
            lost += 1;
            continue;
        }
        let rows = pair.audit(race.id, "job_title").await;
        let reverted = rows.iter().any(|r| {
            r.system.as_deref() == Some("b")
                && match r.rule.as_str() {
                    "rule3:non_owner:revert" => is(r.after.as_ref(), theirs),
                    rule if rule.starts_with("rule4:conflict:owner_wins:") => {
                        r.detail
                            .as_ref()
                            .is_some_and(|d| is(d.get("rejected"), theirs))
                            || is(r.after.as_ref(), theirs)
                    }
                    _ => false,
                }
        });
        assert!(
            reverted,
            "race {}: the audit shows b's edit {theirs:?} reverted (rule3:non_owner:revert or \
             rule4:conflict:owner_wins:*){why}",
            race.id
        );
        reverts += count_rule(&rows, "rule3:non_owner:revert");
        rereads += count_rule(&rows, "delivery:changed_before_write");
    }
    assert_eq!(
        pair.dead_letters().await,
        0,
        "no write failed: racing edits are merged, never dead letters"
    );
    println!(
        "owner_wins: {} races ({} with a first, {} with b first): a's edit won every time, \
         {reverts} non-owner reverts audited, {lost} of b's edits lost between the engine's read \
         and write; {rereads} writes found the record changed when read before writing; settled \
         {:.1} s after the burst; {:.1} s in all",
        races.len(),
        races.iter().filter(|r| r.first == Side::A).count(),
        races.iter().filter(|r| r.first == Side::B).count(),
        settled.as_secs_f64(),
        started.elapsed().as_secs_f64()
    );
    pair.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn races_under_manual_hold_the_field_and_overwrite_nothing() {
    let _serial = SERIAL.lock().await;
    let started = Instant::now();
    let pair = Pair::start(&[json!({ "field": "job_title", "conflict": "manual" })]).await;
    let races = races(12, "Manual");
    run_races(&pair, &races).await;

    // Each race ends held (each system keeps its own edit) or, if the first edit was written
    // before the second happened, with the later edit in both.
    let settled = pair
        .settle(
            "every race is held or has the later edit in both systems",
            Duration::from_secs(45),
            "job_title",
            async || {
                let titles = pair.all_titles().await;
                races
                    .iter()
                    .filter(|race| {
                        let held = (json!(race.value(Side::A)), json!(race.value(Side::B)));
                        let later = (json!(race.second_value), json!(race.second_value));
                        !titles.get(&race.id).is_some_and(|t| {
                            *t == held || *t == later || pair.lost_between_read_and_write(race, t)
                        })
                    })
                    .map(|race| race.id)
                    .collect()
            },
        )
        .await;

    let (mut held, mut sequentials, mut lost) = (0, 0, 0);
    for race in &races {
        let record = pair.record(race.id).await;
        let (a, b) = pair.titles(race.id).await;
        let rows = pair.audit(race.id, "job_title").await;
        let why = pair.diagnose(race.id, "job_title").await;
        if pair.lost_between_read_and_write(race, &(a.clone(), b.clone())) {
            println!(
                "race {}: the second edit reached {} between the engine's read and its write, \
                 and was overwritten unseen (json-server has no concurrency control){why}",
                race.id,
                race.first.other().id()
            );
            lost += 1;
            continue;
        }
        let open: Vec<ExceptionView> = pair
            .open_exceptions(Some("conflict"))
            .await
            .into_iter()
            .filter(|e| e.record_id == Some(record) && e.field.as_deref() == Some("job_title"))
            .collect();
        if sequential(&rows, race) {
            assert!(
                a == json!(race.second_value) && b == json!(race.second_value),
                "race {}: the first edit was written before the second, so under manual the \
                 later edit is a clean change and ends up in both systems; a holds {a}, b holds \
                 {b}{why}",
                race.id
            );
            assert!(
                open.is_empty(),
                "race {}: a sequential change opens no conflict{why}",
                race.id
            );
            sequentials += 1;
            continue;
        }
        assert_eq!(
            open.len(),
            1,
            "race {}: under manual, a race that was not sequential opens one conflict exception \
             on job_title{why}",
            race.id
        );
        for value in [&race.first_value, &race.second_value] {
            assert!(
                holds_str(&open[0].detail, value),
                "race {}: the conflict's detail carries both edits, not {value:?}: {}{why}",
                race.id,
                open[0].detail
            );
        }
        assert!(
            a == json!(race.value(Side::A)) && b == json!(race.value(Side::B)),
            "race {}: under manual the field is held and nothing is overwritten: each system \
             keeps its own edit; a holds {a}, b holds {b}{why}",
            race.id
        );
        assert!(
            rows.iter().any(|r| r.rule == "rule4:conflict:manual:held"),
            "race {}: the audit shows the field held (rule4:conflict:manual:held){why}",
            race.id
        );
        held += 1;
    }
    assert!(
        held > 0,
        "at least one of {} races under manual is a real conflict (the second edit came before \
         the first was written); all were sequential",
        races.len()
    );
    assert_eq!(
        pair.dead_letters().await,
        0,
        "no write failed: racing edits are merged or held, never dead letters"
    );
    println!(
        "manual: {} races ({} with a first, {} with b first): {held} held as conflicts (each \
         system kept its own edit), {sequentials} sequential (the later edit in both), {lost} \
         lost between the engine's read and write; settled {:.1} s after the burst; {:.1} s in \
         all",
        races.len(),
        races.iter().filter(|r| r.first == Side::A).count(),
        races.iter().filter(|r| r.first == Side::B).count(),
        settled.as_secs_f64(),
        started.elapsed().as_secs_f64()
    );
    pair.shutdown().await;
}

/// What one employee should hold in both systems after the nested test's edits.
#[derive(Debug, Clone, PartialEq)]
struct Expected {
    title: Value,
    email: Value,
    mobile: Value,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nested_contact_members_survive_every_write_and_only_edited_records_are_written() {
    let _serial = SERIAL.lock().await;
    let started = Instant::now();
    let pair = Pair::start(&[]).await;
    let seed = seed();

    // a edits contact.email of 1-8, b edits contact.mobile of 9-16, a edits the title of 17-22,
    // and 23-26 get both a new email in a and a new mobile in b (two members of one nested
    // object, changed on both sides at once). 27-30 are left alone.
    let email_in_a: BTreeSet<u64> = (1..=8).chain(23..=26).collect();
    let mobile_in_b: BTreeSet<u64> = (9..=16).chain(23..=26).collect();
    let title_in_a: BTreeSet<u64> = (17..=22).collect();
    let new_email = |id: u64| format!("person{id}.new@acme.example");
    let new_mobile = |id: u64| format!("+1415555{:04}", 200 + id);
    let new_title = |id: u64| format!("Nested {id} title by a");

    // A person edits a nested member through json-server's one-level PATCH: the whole
    // `contact` object as read, with one member changed.
    let edit_contact = async |server: &JsonServer, id: u64, member: &str, value: String| {
        let mut contact = server.get(id).await["contact"].clone();
        contact[member] = json!(value);
        server.patch(id, json!({ "contact": contact })).await;
    };
    for id in 1..=PEOPLE {
        if email_in_a.contains(&id) {
            edit_contact(&pair.a, id, "email", new_email(id)).await;
        }
        if mobile_in_b.contains(&id) {
            edit_contact(&pair.b, id, "mobile", new_mobile(id)).await;
        }
        if title_in_a.contains(&id) {
            pair.a.patch(id, json!({ "title": new_title(id) })).await;
        }
    }

    let expected: BTreeMap<u64, Expected> = (1..=PEOPLE)
        .map(|id| {
            let s = &seed[&id];
            let e = Expected {
                title: if title_in_a.contains(&id) {
                    json!(new_title(id))
                } else {
                    s["title"].clone()
                },
                email: if email_in_a.contains(&id) {
                    json!(new_email(id))
                } else {
                    s["contact"]["email"].clone()
                },
                mobile: if mobile_in_b.contains(&id) {
                    json!(new_mobile(id))
                } else {
                    s["contact"]["mobile"].clone()
                },
            };
            (id, e)
        })
        .collect();
    let holds = |r: &Map<String, Value>, e: &Expected| {
        r["title"] == e.title
            && r["contact"]["email"] == e.email
            && r["contact"]["mobile"] == e.mobile
    };

    let settled = pair
        .settle(
            "both systems hold every edit",
            Duration::from_secs(45),
            "work_email",
            async || {
                let (a, b) = tokio::join!(pair.a.all(), pair.b.all());
                (1..=PEOPLE)
                    .filter(|id| {
                        let e = &expected[id];
                        let at = |records: &[Map<String, Value>]| {
                            records
                                .iter()
                                .find(|r| r["id"] == json!(id))
                                .is_some_and(|r| holds(r, e))
                        };
                        !(at(&a) && at(&b))
                    })
                    .collect()
            },
        )
        .await;

    for side in [Side::A, Side::B] {
        for id in 1..=PEOPLE {
            let r = pair.server(side).get(id).await;
            let s = &seed[&id];
            let e = &expected[&id];
            let why = || format!("\n  {} holds {}", side.id(), Value::Object(r.clone()));
            assert!(
                holds(&r, e),
                "employee {id}: {} holds every edit made on either side (title {}, email {}, \
                 mobile {}){}",
                side.id(),
                e.title,
                e.email,
                e.mobile,
                why()
            );
            assert_eq!(
                r["contact"]["fax"],
                s["contact"]["fax"],
                "employee {id}: the unmapped contact.fax survives every write to {}{}",
                side.id(),
                why()
            );
            let contact_keys: BTreeSet<&String> = r["contact"]
                .as_object()
                .map(|c| c.keys().collect())
                .unwrap_or_default();
            let seed_keys: BTreeSet<&String> = s["contact"]
                .as_object()
                .map(|c| c.keys().collect())
                .unwrap_or_default();
            assert_eq!(
                contact_keys,
                seed_keys,
                "employee {id}: contact keeps exactly its members in {}{}",
                side.id(),
                why()
            );
            for key in ["employeeNumber", "firstName", "lastName", "status"] {
                assert_eq!(
                    r[key],
                    s[key],
                    "employee {id}: {key}, which nobody edited, is unchanged in {}{}",
                    side.id(),
                    why()
                );
            }
        }
    }

    // Only records edited on the other side were written, and each once.
    let needs: BTreeMap<&str, BTreeSet<u64>> = BTreeMap::from([
        ("a", mobile_in_b.clone()),
        (
            "b",
            email_in_a
                .union(&title_in_a)
                .copied()
                .collect::<BTreeSet<u64>>(),
        ),
    ]);
    let mut figures = Vec::new();
    for side in [Side::A, Side::B] {
        let writes = pair.server(side).engine_writes();
        let mut per_record: BTreeMap<u64, usize> = BTreeMap::new();
        for w in &writes {
            let id = w
                .strip_prefix("PATCH /employees/")
                .or_else(|| w.strip_prefix("PUT /employees/"))
                .and_then(|id| id.parse::<u64>().ok())
                .unwrap_or_else(|| {
                    panic!(
                        "the engine only updates existing employees in {}, it sent {w}",
                        side.id()
                    )
                });
            *per_record.entry(id).or_default() += 1;
        }
        let written: BTreeSet<u64> = per_record.keys().copied().collect();
        assert_eq!(
            &written,
            &needs[side.id()],
            "the engine writes to {} exactly the records edited on the other side, no untouched \
             record: {writes:?}",
            side.id()
        );
        let twice: Vec<(&u64, &usize)> = per_record.iter().filter(|(_, n)| **n > 1).collect();
        assert!(
            twice.is_empty(),
            "each record is written to {} once: {twice:?}",
            side.id()
        );
        figures.push(format!(
            "{} writes to {} ({} records)",
            writes.len(),
            side.id(),
            written.len()
        ));
    }
    assert_eq!(pair.dead_letters().await, 0, "no write failed");
    assert_eq!(
        pair.open_exceptions(None).await.len(),
        0,
        "changes to different members of contact are no conflict"
    );
    println!(
        "nested: {} edits in a, {} in b; {}; contact.fax intact in all {PEOPLE} records of both \
         systems; settled {:.1} s after the edits; {:.1} s in all",
        email_in_a.len() + title_in_a.len(),
        mobile_in_b.len(),
        figures.join(", "),
        settled.as_secs_f64(),
        started.elapsed().as_secs_f64()
    );
    pair.shutdown().await;
}

/// A pass-through HTTP proxy in front of a json-server. Once armed, right before it forwards
/// the second page of a change listing (`updatedAt_gte=…&_page=2`), it makes direct edits in
/// that json-server: people editing records while the engine pages through the changes.
struct PagingProxy {
    base: String,
    state: std::sync::Arc<ProxyState>,
    cancel: CancellationToken,
}

struct ProxyState {
    target: String,
    client: reqwest::Client,
    /// The edits to make before the next second page: (employee id, fields).
    between_pages: tokio::sync::Mutex<Option<Vec<(u64, Value)>>>,
    /// Stamps (`updatedAt`) json-server gave those edits, once made.
    made: std::sync::Mutex<Vec<(u64, String)>>,
}

impl PagingProxy {
    async fn start(target: &str) -> Self {
        let state = std::sync::Arc::new(ProxyState {
            target: target.to_owned(),
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(5))
                .build()
                .expect("http client"),
            between_pages: tokio::sync::Mutex::new(None),
            made: std::sync::Mutex::new(Vec::new()),
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a port for the proxy");
        let addr = listener.local_addr().expect("the proxy's address");
        let cancel = CancellationToken::new();
        let app = axum::Router::new()
            .fallback(forward)
            .with_state(state.clone());
        let stop = cancel.clone();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(stop.cancelled_owned())
                .await;
        });
        Self {
            base: format!("http://{addr}"),
            state,
            cancel,
        }
    }

    async fn arm(&self, edits: Vec<(u64, Value)>) {
        *self.state.between_pages.lock().await = Some(edits);
    }

    fn made(&self) -> Vec<(u64, String)> {
        self.state
            .made
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

impl Drop for PagingProxy {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

async fn forward(
    axum::extract::State(state): axum::extract::State<std::sync::Arc<ProxyState>>,
    request: axum::extract::Request,
) -> axum::response::Response {
    let uri = request
        .uri()
        .path_and_query()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_default();
    let second_page = uri.starts_with("/employees?")
        && uri.contains("updatedAt_gte=")
        && uri.split(['?', '&']).any(|p| p == "_page=2");
    let edits = if second_page {
        state.between_pages.lock().await.take()
    } else {
        None
    };
    for (id, fields) in edits.unwrap_or_default() {
        let stored: Map<String, Value> = state
            .client
            .patch(format!(
                "{}/employees/{id}?{}",
                state.target,
                common::json_server::DIRECT_EDIT
            ))
            .json(&fields)
            .send()
            .await
            .expect("json-server takes the edit made between pages")
            .json()
            .await
            .expect("the edited record");
        let stamp = stored
            .get("updatedAt")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        state
            .made
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push((id, stamp));
        // Distinct stamps: the next edit is strictly later.
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let method = request.method().clone();
    let headers = request.headers().clone();
    let body = axum::body::to_bytes(request.into_body(), 1 << 20)
        .await
        .expect("a request body under 1 MiB");
    let mut outgoing = state
        .client
        .request(method, format!("{}{uri}", state.target))
        .body(body);
    for (name, value) in &headers {
        if name != http::header::HOST && name != http::header::CONTENT_LENGTH {
            outgoing = outgoing.header(name, value);
        }
    }
    let reply = outgoing
        .send()
        .await
        .expect("json-server answers the proxy");
    let status = reply.status();
    let reply_headers = reply.headers().clone();
    let bytes = reply.bytes().await.expect("json-server's answer");
    let mut response = axum::response::Response::new(axum::body::Body::from(bytes));
    *response.status_mut() = status;
    for (name, value) in &reply_headers {
        if name != http::header::TRANSFER_ENCODING && name != http::header::CONTENT_LENGTH {
            response.headers_mut().append(name, value.clone());
        }
    }
    response
}

/// Polling by `updatedAt_gte` pages through the changes since the cursor. A record edited
/// while the engine is between two pages, on a page it has already read, is on none of the
/// pages it reads next; it must still be found by a later poll, whatever stamps the later
/// pages carry.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_made_while_the_engine_pages_through_changes_is_found_by_a_later_poll() {
    let _serial = SERIAL.lock().await;
    let people = people_file();
    let (a, b) = tokio::join!(JsonServer::start(&people), JsonServer::start(&people));
    let proxy = PagingProxy::start(b.base()).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let engine = common::open_engine(dir.path()).await;
    engine
        .apply_workspace(&workspace(a.base(), &proxy.base, &[]))
        .await
        .expect("workspace applies");
    let idle = async || {
        engine
            .run_until_idle(Duration::from_secs(30))
            .await
            .expect("the engine goes idle within 30 s");
    };
    for system in ["a", "b"] {
        engine
            .poll(system, |_| {})
            .await
            .expect("the initial listing works");
    }
    idle().await;

    // Twelve edits in b: its next change listing has two pages (1-10, then 11, 12 and the
    // record at the cursor). While the engine is between them, someone edits employee 2 (on
    // the page already read) and then employee 15 (on the page still to come).
    for id in 1..=12 {
        b.patch(id, json!({ "title": format!("Paged {id}") })).await;
    }
    let between = "Edited between pages";
    proxy
        .arm(vec![
            (2, json!({ "title": between })),
            (15, json!({ "title": between })),
        ])
        .await;
    engine.poll("b", |_| {}).await.expect("incremental poll");
    let made = proxy.made();
    assert_eq!(
        made.iter().map(|(id, _)| *id).collect::<Vec<_>>(),
        vec![2, 15],
        "the two edits were made between the pages of one change listing"
    );
    idle().await;
    // Later polls, with time for anything still due.
    for _ in 0..3 {
        engine.poll("b", |_| {}).await.expect("incremental poll");
        idle().await;
    }

    let polls: Vec<String> = b
        .requests()
        .into_iter()
        .filter(|r| r.starts_with("GET /employees?updatedAt_gte=") || is_direct_edit(r))
        .filter(|r| !r.starts_with("GET /employees/"))
        .collect();
    let cursor: Option<String> =
        sqlx::query_scalar("SELECT cursor FROM poll_cursors WHERE system_id = 'b'")
            .fetch_one(engine.pool())
            .await
            .expect("b's cursor");
    let why = format!(
        "\n  edits between pages (id, stamp): {made:?}\n  b's cursor now: {cursor:?}\n  b got: {}",
        polls.join("\n         ")
    );
    for id in 1..=12 {
        let expected = if id == 2 {
            json!(between)
        } else {
            json!(format!("Paged {id}"))
        };
        assert_eq!(
            a.get(id).await["title"],
            expected,
            "employee {id}: b's edit reaches a{why}"
        );
    }
    assert_eq!(
        a.get(15).await["title"],
        json!(between),
        "employee 15, edited before b's second page was read, reaches a{why}"
    );
    assert_eq!(
        a.get(2).await["title"],
        json!(between),
        "employee 2, edited in b while the engine was between two pages of b's changes, on the \
         page already read, is found by a later poll and reaches a (a poll cursor past an edit \
         it never read loses that edit until the next reconciliation){why}"
    );
}
