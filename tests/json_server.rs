//! Concord against a real third-party REST system: json-server 0.17.4 (pinned in
//! tests/fixtures/json-server, installed by scripts/setup.sh), started by each test on a
//! throwaway copy of the 55-employee seed and killed by PID when the test ends (pass or fail).
//!
//! json-server is configured only through the declarative `rest` connector config: `_page` /
//! `_limit` paging (or its `Link` headers), `X-Total-Count`, and incremental polling with
//! `?updatedAt_gte=` (the fixture's stamp.js sets `updatedAt` on every write and logs each
//! request line to stdout, which the tests read). The other side is a Concord-side HTTP system
//! (`LoopbackSystem`) that posts a webhook for every change. The tests prove the initial sync
//! with transformed values, paging through every page, incremental polling that re-sends
//! nothing else, and changes flowing both ways without echo loops.

mod common;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use common::json_server::{JsonServer, fixture_dir, seed_of};

use concord::Engine;
use concord::loopback::LoopbackSystem;
use concord::model::WorkspaceConfig;
use concord::poll::ListingProgress;
use serde_json::{Map, Value, json};
use tempfile::TempDir;
use tokio_util::sync::CancellationToken;

const EMPLOYEES: usize = 55;

/// The 55-employee seed.
fn seed_file() -> PathBuf {
    fixture_dir().join("db.json")
}

/// The seed, as committed.
fn seed() -> Vec<Map<String, Value>> {
    seed_of(&seed_file())
}

/// The `rest` config of json-server with `_page`/`_limit` paging.
fn page_style(base: &str) -> Value {
    json!({
        "base_url": base,
        "objects": { "employee": {
            "path": "/employees",
            "pagination": { "style": "page", "page_param": "_page", "size_param": "_limit", "size": 10 },
            "total_header": "X-Total-Count",
            "modified_field": "updatedAt",
            "incremental": { "style": "param", "param": "updatedAt_gte", "format": "rfc3339" }
        } },
        "poll": { "interval_secs": 0.2 }
    })
}

/// The same system paged by json-server's `Link` headers. json-server sends them only when
/// the request has `_page`, so the listing asks for the first page with a fixed parameter.
fn link_style(base: &str) -> Value {
    json!({
        "base_url": base,
        "objects": { "employee": {
            "path": "/employees",
            "params": { "_page": "1" },
            "pagination": { "style": "link_header", "size_param": "_limit", "size": 10 },
            "total_header": "X-Total-Count",
            "modified_field": "updatedAt",
            "incremental": { "style": "param", "param": "updatedAt_gte", "format": "rfc3339" }
        } },
        "poll": { "interval_secs": 0.2 }
    })
}

/// json-server (`js`: camelCase fields, ISO dates, status codes) and the hub (full names, US
/// dates, status words). No ownership: either side may change any field, the later one wins.
fn workspace(js: Value, hub_url: &str) -> WorkspaceConfig {
    serde_json::from_value(json!({
        "systems": [
            { "id": "js", "name": "json-server", "connector": "rest", "config": js },
            { "id": "hub", "name": "Hub", "connector": "rest", "webhook_secret": "hub-webhook",
              "config": { "base_url": hub_url, "objects": { "employee": {
                  "path": "/employees", "version_field": "version", "concurrency": { "style": "etag" } } } } }
        ],
        "objects": [concord::schema::employee()],
        "mappings": [
            { "system": "js", "object": "employee", "rules": [
                { "canonical": ["employee_number"], "system": ["employeeNumber"] },
                { "canonical": ["given_name"], "system": ["firstName"] },
                { "canonical": ["family_name"], "system": ["lastName"] },
                { "canonical": ["work_email"], "system": ["email"] },
                { "canonical": ["employment_status"], "system": ["status"], "transform": { "kind": "enum", "table": [
                    { "system": "ACTIVE", "canonical": "active" },
                    { "system": "LEAVE", "canonical": "on_leave" },
                    { "system": "TERMINATED", "canonical": "terminated" } ] } },
                { "canonical": ["hire_date"], "system": ["hireDate"], "transform": { "kind": "date", "format": "%Y-%m-%d" } },
                { "canonical": ["job_title"], "system": ["title"] }
            ]},
            { "system": "hub", "object": "employee", "rules": [
                { "canonical": ["employee_number"], "system": ["employee_id"] },
                { "canonical": ["given_name", "family_name"], "system": ["full_name"], "transform": { "kind": "full_name" } },
                { "canonical": ["work_email"], "system": ["email"] },
                { "canonical": ["employment_status"], "system": ["status"], "transform": { "kind": "enum", "table": [
                    { "system": "Active", "canonical": "active" },
                    { "system": "On Leave", "canonical": "on_leave" },
                    { "system": "Terminated", "canonical": "terminated" } ] } },
                { "canonical": ["hire_date"], "system": ["hire_date"], "transform": { "kind": "date", "format": "%m/%d/%Y" } },
                { "canonical": ["job_title"], "system": ["title"] }
            ]}
        ]
    }))
    .expect("a valid workspace")
}

/// json-server, the engine on a real SQLite file with its webhook server, and the hub.
struct Setup {
    js: JsonServer,
    hub: LoopbackSystem,
    engine: Engine,
    _dir: TempDir,
    cancel: CancellationToken,
}

impl Setup {
    async fn start(config: fn(&str) -> Value) -> Self {
        Self::start_on(
            config,
            std::sync::Arc::new(concord::clock::SystemClock),
            |_| {},
        )
        .await
    }

    /// Like [`Setup::start`], on `clock`, with the workspace changed by `customize`.
    async fn start_on(
        config: fn(&str) -> Value,
        clock: std::sync::Arc<dyn concord::clock::Clock>,
        customize: impl FnOnce(&mut WorkspaceConfig),
    ) -> Self {
        let js = JsonServer::start(&seed_file()).await;
        let dir = tempfile::tempdir().expect("temp dir");
        let (engine, secrets) = common::open_engine_on(dir.path(), clock).await;
        let cancel = CancellationToken::new();
        let (addr, _) = concord::server::spawn_loopback(engine.clone(), 0, cancel.clone())
            .await
            .expect("webhook server");
        let hub = LoopbackSystem::start(
            "hub",
            "employee",
            "/employees",
            Some(format!("http://{addr}/hooks/hub")),
        )
        .await
        .expect("hub starts");
        common::trust_hooks(&secrets, "hub", &hub);
        let mut ws = workspace(config(js.base()), &hub.base_url());
        customize(&mut ws);
        engine
            .apply_workspace(&ws)
            .await
            .expect("workspace applies");
        Self {
            js,
            hub,
            engine,
            _dir: dir,
            cancel,
        }
    }

    /// Waits until the hub's webhooks are accepted and the inbox and outbox are empty.
    async fn settle(&self) {
        common::settle(&self.engine, &[&self.hub], Duration::from_secs(60)).await;
    }

    async fn pending(&self) -> i64 {
        common::pending(&self.engine).await
    }

    /// The hub's record of an employee number.
    fn hub_employee(&self, number: &str) -> (String, Map<String, Value>) {
        self.hub
            .records()
            .into_iter()
            .find(|(_, r)| r.get("employee_id") == Some(&json!(number)))
            .unwrap_or_else(|| panic!("the hub holds employee {number}"))
    }

    async fn dead_letters(&self) -> i64 {
        sqlx::query_scalar("SELECT COUNT(*) FROM dead_letters")
            .fetch_one(self.engine.pool())
            .await
            .expect("count")
    }
}

impl Drop for Setup {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

/// Every seed employee reached the hub with its values transformed to the hub's shapes.
fn assert_transformed_into_hub(s: &Setup) {
    let hub = s.hub.records();
    assert_eq!(
        hub.len(),
        EMPLOYEES,
        "every json-server employee reaches the hub"
    );
    for e in seed() {
        let number = e["employeeNumber"].as_str().expect("a number");
        let (_, h) = s.hub_employee(number);
        assert_eq!(
            h["full_name"],
            json!(format!(
                "{} {}",
                e["firstName"].as_str().unwrap_or_default(),
                e["lastName"].as_str().unwrap_or_default()
            )),
            "{number}: first and last name are joined into the hub's full name"
        );
        let status = if e["status"] == json!("LEAVE") {
            "On Leave"
        } else {
            "Active"
        };
        assert_eq!(
            h["status"],
            json!(status),
            "{number}: the status code becomes the hub's status word"
        );
        let hire = chrono::NaiveDate::parse_from_str(
            e["hireDate"].as_str().unwrap_or_default(),
            "%Y-%m-%d",
        )
        .expect("an ISO date");
        assert_eq!(
            h["hire_date"],
            json!(hire.format("%m/%d/%Y").to_string()),
            "{number}: the ISO hire date becomes a US date"
        );
        assert_eq!(h["email"], e["email"], "{number}: the email is copied");
        assert!(
            !h.contains_key("updatedAt") && !h.contains_key("firstName"),
            "{number}: only mapped fields reach the hub: {h:?}"
        );
    }
}

#[tokio::test]
async fn json_server_initial_sync_incremental_polling_and_two_way_changes() {
    let s = Setup::start(page_style).await;
    let probes = s.js.requests().len();

    // Initial sync: six pages of ten (the last of five), progress after each.
    let mut progress: Vec<ListingProgress> = Vec::new();
    let report = s
        .engine
        .poll("js", |p| progress.push(p.clone()))
        .await
        .expect("the initial listing works");
    assert_eq!(report.fetched, EMPLOYEES as u64, "all employees are listed");
    assert_eq!(report.pages, 6, "55 employees at 10 a page are 6 pages");
    assert_eq!(
        progress.iter().map(|p| p.listed).collect::<Vec<_>>(),
        vec![10, 20, 30, 40, 50, 55],
        "progress is reported after every page"
    );
    assert!(
        progress.iter().all(|p| p.total == Some(EMPLOYEES as u64)),
        "the total comes from json-server's X-Total-Count"
    );
    assert!(
        progress.last().is_some_and(|p| p.done),
        "the listing ends after the last page"
    );
    let expected: Vec<String> = (1..=6)
        .map(|p| format!("GET /employees?_page={p}&_limit=10"))
        .collect();
    assert_eq!(
        s.js.requests()[probes..],
        expected,
        "every page is asked for once, in order, and nothing after the last"
    );

    s.settle().await;
    assert_transformed_into_hub(&s);
    assert_eq!(
        s.hub.stats().writes_applied,
        EMPLOYEES as u64,
        "the hub receives one create per employee and nothing else"
    );

    // Someone edits employee 7 directly in json-server; the next poll asks only for changes.
    s.js.patch(7, json!({ "title": "Senior Analyst" })).await;
    let before = s.js.requests().len();
    let report = s.engine.poll("js", |_| {}).await.expect("incremental poll");
    assert!(
        report.listing.is_empty(),
        "after the initial listing, polls are incremental"
    );
    assert_eq!(
        s.js.requests()[before..],
        ["GET /employees?updatedAt_gte=2024-01-01T00:00:55.000Z&_page=1&_limit=10".to_owned()],
        "the poll asks for records changed since the newest one seen, in json-server's format"
    );
    assert_eq!(
        report.fetched, 2,
        "only the edited employee and the one at the cursor come back"
    );
    s.settle().await;
    assert_eq!(
        s.hub_employee("E0007").1["title"],
        json!("Senior Analyst"),
        "the direct edit in json-server reaches the hub"
    );
    assert_eq!(
        s.hub.stats().writes_applied,
        EMPLOYEES as u64 + 1,
        "the change is the only write: nothing else is re-sent"
    );

    // A change in the hub reaches json-server, in json-server's shapes.
    let before = s.js.requests().len();
    let (hub_id, _) = s.hub_employee("E0007");
    s.hub.edit(
        &hub_id,
        json!({ "email": "given7@new.example", "status": "On Leave" }),
    );
    s.settle().await;
    let seven = s.js.get(7).await;
    assert_eq!(
        seven["email"],
        json!("given7@new.example"),
        "the hub's change reaches json-server"
    );
    assert_eq!(
        seven["status"],
        json!("LEAVE"),
        "the hub's status word becomes json-server's code"
    );
    assert_eq!(
        seven["title"],
        json!("Senior Analyst"),
        "fields the hub did not change are left alone"
    );
    assert_eq!(
        s.js.writes_since(before),
        vec!["PATCH /employees/7".to_owned()],
        "json-server receives exactly one write"
    );

    // The next poll sees that write come back from json-server: an echo, not a change.
    let writes = s.hub.stats().writes_applied;
    s.engine.poll("js", |_| {}).await.expect("incremental poll");
    s.settle().await;
    s.engine.poll("js", |_| {}).await.expect("incremental poll");
    s.settle().await;
    assert_eq!(
        s.hub.stats().writes_applied,
        writes,
        "echoes from json-server write nothing to the hub"
    );
    assert_eq!(
        s.js.writes_since(before).len(),
        1,
        "no echo loop: json-server got no further writes"
    );
    assert_eq!(s.dead_letters().await, 0, "nothing failed");
}

#[tokio::test]
async fn json_server_link_headers_page_the_listing_and_the_changes() {
    let s = Setup::start(link_style).await;
    let probes = s.js.requests().len();

    let report = s.engine.poll("js", |_| {}).await.expect("initial listing");
    assert_eq!(report.fetched, EMPLOYEES as u64, "all employees are listed");
    let expected: Vec<String> = (1..=6)
        .map(|p| format!("GET /employees?_page={p}&_limit=10"))
        .collect();
    assert_eq!(
        s.js.requests()[probes..],
        expected,
        "the connector follows json-server's rel=next links to the last page"
    );
    s.settle().await;
    assert_transformed_into_hub(&s);

    // Twelve direct edits: with the record at the cursor, thirteen changes on two pages.
    for id in 1..=12 {
        s.js.patch(id, json!({ "title": "Manager" })).await;
    }
    let before = s.js.requests().len();
    let report = s.engine.poll("js", |_| {}).await.expect("incremental poll");
    assert_eq!(
        report.fetched, 13,
        "the twelve edits and the record at the cursor"
    );
    assert_eq!(
        s.js.requests()[before..],
        [1, 2].map(|p| format!(
            "GET /employees?_page={p}&updatedAt_gte=2024-01-01T00:00:55.000Z&_limit=10"
        )),
        "the changes are paged by the Link headers too, keeping the filter"
    );
    s.settle().await;
    for n in 1..=12 {
        assert_eq!(
            s.hub_employee(&format!("E{n:04}")).1["title"],
            json!("Manager"),
            "E{n:04}: every direct edit reaches the hub"
        );
    }
    assert_eq!(
        s.hub.stats().writes_applied,
        EMPLOYEES as u64 + 12,
        "one write per edited employee, nothing re-sent"
    );

    // A hub change is written to json-server through the configured item path.
    let (hub_id, _) = s.hub_employee("E0030");
    s.hub
        .edit(&hub_id, json!({ "full_name": "Given30 Renamed" }));
    s.settle().await;
    assert_eq!(
        s.js.get(30).await["lastName"],
        json!("Renamed"),
        "the hub's rename reaches json-server's lastName"
    );
    assert_eq!(s.dead_letters().await, 0, "nothing failed");
}

#[tokio::test]
async fn json_server_is_polled_on_its_configured_interval_by_the_running_engine() {
    let s = Setup::start(page_style).await;
    let running = s.engine.start(s.cancel.clone());

    let deadline = Instant::now() + Duration::from_secs(30);
    while s.hub.records().len() < EMPLOYEES || s.pending().await > 0 {
        assert!(
            Instant::now() < deadline,
            "timed out after 30 s waiting for the initial sync"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    s.js.patch(21, json!({ "lastName": "Polled" })).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    while s.hub_employee("E0021").1["full_name"] != json!("Given21 Polled") {
        assert!(
            Instant::now() < deadline,
            "timed out after 30 s waiting for the direct edit to be polled"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let (hub_id, _) = s.hub_employee("E0022");
    s.hub.edit(&hub_id, json!({ "title": "Director" }));
    let deadline = Instant::now() + Duration::from_secs(30);
    while s.js.get(22).await["title"] != json!("Director") {
        assert!(
            Instant::now() < deadline,
            "timed out after 30 s waiting for the hub's change to reach json-server"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // Quiet systems are still polled, on the configured interval.
    let polls = || {
        s.js.requests()
            .iter()
            .filter(|r| r.starts_with("GET /employees?updatedAt_gte="))
            .count()
    };
    let before = polls();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let during = polls() - before;
    assert!(
        (2..=8).contains(&during),
        "an interval of 0.2 s means about 5 polls a second, not {during}"
    );
    running.shutdown(Duration::from_secs(5)).await;
    assert_eq!(
        s.hub.stats().writes_applied,
        EMPLOYEES as u64 + 1,
        "the hub got the initial creates and the one polled change"
    );
}

/// The running engine (streaming delivery, polling every 0.2 s): one employee is edited in
/// json-server and in the hub within one poll interval, in different fields, three times
/// over. Both edits end up in both systems each time: the write to json-server reads the
/// record first and never sends back a value it has not seen.
#[tokio::test]
async fn json_server_edits_on_both_sides_within_one_poll_both_survive_under_the_running_engine() {
    let s = Setup::start(page_style).await;
    let running = s.engine.start(s.cancel.clone());
    let deadline = Instant::now() + Duration::from_secs(30);
    while s.hub.records().len() < EMPLOYEES || s.pending().await > 0 {
        assert!(
            Instant::now() < deadline,
            "timed out after 30 s waiting for the initial sync"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (hub_id, _) = s.hub_employee("E0031");
    for round in 1..=3 {
        let (family, title) = (format!("Both{round}"), format!("Lead {round}"));
        s.hub.edit(&hub_id, json!({ "title": title }));
        s.js.patch(31, json!({ "lastName": family })).await;
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let js = s.js.get(31).await;
            let hub = s.hub_employee("E0031").1;
            if js["title"] == json!(title)
                && js["lastName"] == json!(family)
                && hub["title"] == json!(title)
                && hub["full_name"] == json!(format!("Given31 {family}"))
                && s.pending().await == 0
            {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "round {round}: edits of different fields on both sides within one poll \
                 both reach both systems; json-server {js:?}, hub {hub:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    running.shutdown(Duration::from_secs(5)).await;
    assert_eq!(s.dead_letters().await, 0, "nothing failed");
    let js = s.js.get(31).await;
    assert_eq!(
        (js["title"].clone(), js["lastName"].clone()),
        (json!("Lead 3"), json!("Both3")),
        "json-server keeps both last edits after the engine stops"
    );
}

/// A json-server saved into the workspace while the engine runs is polled and written to at
/// once (its loops start with the save, not at the next restart), and when it stops
/// answering, the dashboard calls it failing with the error, never healthy.
#[tokio::test]
async fn json_server_saved_while_the_engine_runs_syncs_at_once_and_is_failing_when_it_stops_answering()
 {
    let mut s = Setup::start(page_style).await;
    let full = workspace(page_style(s.js.base()), &s.hub.base_url());
    let mut hub_only = full.clone();
    hub_only.systems.retain(|x| x.id == "hub");
    hub_only.mappings.retain(|m| m.system == "hub");
    s.engine
        .apply_workspace(&hub_only)
        .await
        .expect("hub alone");
    let running = s.engine.start(s.cancel.clone());
    s.engine
        .apply_workspace(&full)
        .await
        .expect("json-server added while running");

    let deadline = Instant::now() + Duration::from_secs(30);
    while s.hub.records().len() < EMPLOYEES || s.pending().await > 0 {
        assert!(
            Instant::now() < deadline,
            "a system saved while the engine runs is listed at once: the hub holds {} of {EMPLOYEES} after 30 s",
            s.hub.records().len()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (hub_id, _) = s.hub_employee("E0007");
    s.hub.edit(&hub_id, json!({ "title": "Controller" }));
    let deadline = Instant::now() + Duration::from_secs(30);
    while s.js.get(7).await["title"] != json!("Controller") {
        assert!(
            Instant::now() < deadline,
            "writes to a system saved while the engine runs leave at once"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let health = |m: &concord::api::Metrics| {
        m.per_system
            .iter()
            .find(|h| h.system == "js")
            .cloned()
            .expect("json-server's health")
    };
    // The value can land in json-server a moment before the engine commits that it was sent:
    // healthy once the write is acknowledged.
    let deadline = Instant::now() + Duration::from_secs(10);
    let js = loop {
        let js = health(&s.engine.metrics().await.expect("metrics"));
        if js.state == concord::health::SystemState::Healthy || Instant::now() >= deadline {
            break js;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(
        js.state,
        concord::health::SystemState::Healthy,
        "a system that reads and writes is healthy once its writes are acknowledged: {js:?}"
    );
    assert!(js.last_read_at.is_some(), "its last read is shown: {js:?}");

    s.js.kill();
    s.hub.edit(&hub_id, json!({ "title": "CFO" }));
    let deadline = Instant::now() + Duration::from_secs(20);
    let js = loop {
        let js = health(&s.engine.metrics().await.expect("metrics"));
        if js.state == concord::health::SystemState::Failing {
            break js;
        }
        assert!(
            Instant::now() < deadline,
            "a system that stopped answering is failing within 20 s, not {js:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(
        js.reason.starts_with("reading it fails"),
        "the verdict says reads fail: {js:?}"
    );
    assert!(
        js.last_error.as_deref().is_some_and(|e| !e.is_empty()),
        "the error is shown beside it: {js:?}"
    );
    running.shutdown(Duration::from_secs(5)).await;
}

/// json-server connected in plan mode (as the console saves a new system) is listed and
/// linked while nothing at all is written to it. Its plan lists each write with its field
/// diffs, and enabling (an admin, audited) sends exactly those writes and no other.
#[tokio::test]
async fn json_server_in_plan_mode_gets_no_write_until_enabled_then_exactly_its_plan() {
    use concord::api::auth::{Principal, Role, Tokens};
    let s = Setup::start(page_style).await;
    let mut planned = workspace(page_style(s.js.base()), &s.hub.base_url());
    for system in &mut planned.systems {
        if system.id == "js" {
            system.writes = Some(concord::model::WritesMode::Plan);
        }
    }
    s.engine
        .apply_workspace(&planned)
        .await
        .expect("json-server in plan mode");
    let running = s.engine.start(s.cancel.clone());
    let tokens = std::sync::Arc::new(Tokens::default());
    let admin = tokens.issue(Principal::new("ana", Role::Admin));
    let (base, client) = common::serve_console(&s.engine, tokens, "concord-plan-test").await;

    let deadline = Instant::now() + Duration::from_secs(30);
    while s.hub.records().len() < EMPLOYEES {
        assert!(
            Instant::now() < deadline,
            "a system in plan mode is still read: its employees reach the hub"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let titles = [
        ("E0003", 3, "VP Sales"),
        ("E0010", 10, "Counsel"),
        ("E0020", 20, "Architect"),
    ];
    for (number, _, title) in titles {
        let (hub_id, _) = s.hub_employee(number);
        s.hub.edit(&hub_id, json!({ "title": title }));
    }
    s.hub.edit(
        "NEW1",
        json!({ "employee_id": "E9001", "full_name": "Nova Planned", "email": "nova@example.com",
                "status": "Active", "hire_date": "01/02/2024", "title": "Analyst" }),
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    let plan = loop {
        let plan: Value = client
            .get(format!("{base}/api/systems/js/plan"))
            .bearer_auth(&admin)
            .send()
            .await
            .expect("plan")
            .json()
            .await
            .expect("plan json");
        if plan["counts"]["creates"] == json!(1) && plan["counts"]["updates"] == json!(3) {
            break plan;
        }
        assert!(
            Instant::now() < deadline,
            "the hub's changes are planned for json-server: {plan}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(
        s.js.engine_writes(),
        Vec::<String>::new(),
        "nothing is written to a system in plan mode"
    );
    assert_eq!(plan["writes"], json!("plan"));
    let items = plan["items"].as_array().expect("items");
    for (number, id, title) in titles {
        let write = items
            .iter()
            .find(|w| w["op"] == json!("update") && w["external_id"] == json!(id.to_string()))
            .unwrap_or_else(|| panic!("a planned update of {number}: {plan}"));
        let was = seed()
            .into_iter()
            .find(|r| r["id"] == json!(id) || r["id"] == json!(id.to_string()))
            .map(|r| r["title"].clone())
            .expect("the seed employee");
        assert_eq!(
            write["fields"],
            json!([{ "field": "job_title", "from": was, "to": title }]),
            "the plan shows the field, its value in json-server now and the value it would get"
        );
    }
    let csv = client
        .get(format!("{base}/api/systems/js/plan.csv"))
        .bearer_auth(&admin)
        .send()
        .await
        .expect("csv")
        .text()
        .await
        .expect("csv text");
    assert!(
        csv.starts_with("op,record_id,object,external_id,field,from,to\r\n")
            && csv.contains(",job_title,")
            && csv.contains(",Counsel\r\n"),
        "the plan downloads as CSV: {csv}"
    );

    // The admin enables what they reviewed; a stale review is refused.
    let enable = |seen: Value| {
        client
            .post(format!("{base}/api/systems/js/enable"))
            .bearer_auth(&admin)
            .json(&json!({ "seen": seen }))
            .send()
    };
    let stale = enable(json!({ "creates": 0, "updates": 3, "deletes": 0 }))
        .await
        .expect("enable");
    assert_eq!(
        stale.status(),
        reqwest::StatusCode::CONFLICT,
        "enabling a plan other than the one reviewed is refused"
    );
    let enabled = enable(plan["counts"].clone()).await.expect("enable");
    assert_eq!(enabled.status(), reqwest::StatusCode::OK);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let mut done =
            s.js.all()
                .await
                .iter()
                .any(|r| r["employeeNumber"] == json!("E9001"));
        for (_, id, title) in titles {
            done &= s.js.get(id).await["title"] == json!(title);
        }
        if done {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "enabling sends the planned writes: {:?}",
            s.js.engine_writes()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(600)).await;
    let writes = s.js.engine_writes();
    assert_eq!(
        (
            writes.iter().filter(|w| w.starts_with("POST ")).count(),
            writes.iter().filter(|w| !w.starts_with("POST ")).count()
        ),
        (1, 3),
        "enabling sends exactly the plan, one create and three updates: {writes:?}"
    );
    let audited: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM audit WHERE rule = 'config:writes_enabled' AND system_id = 'js'
           AND actor = 'ana' AND json_extract(detail, '$.updates') = 3",
    )
    .fetch_one(s.engine.pool())
    .await
    .expect("audit");
    assert_eq!(
        audited, 1,
        "enabling is audited with who and the plan's counts"
    );
    running.shutdown(Duration::from_secs(5)).await;
}

/// GETs or POSTs the console as `token`: the status and the JSON body.
async fn console(
    client: &reqwest::Client,
    base: &str,
    token: &str,
    post: Option<Value>,
    path: &str,
) -> (u16, Value) {
    let request = match post {
        Some(body) => client.post(format!("{base}{path}")).json(&body),
        None => client.get(format!("{base}{path}")),
    };
    let response = request
        .bearer_auth(token)
        .send()
        .await
        .expect("console answers");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn json_server_breaker_holds_writes_past_the_share_not_at_it_until_an_admin_decides() {
    use concord::api::auth::{Principal, Role, Tokens};
    let s = Setup::start(page_style).await;
    // More than 20% of json-server's 55 employees (12 or more) within ten minutes trips it.
    let mut guarded = workspace(page_style(s.js.base()), &s.hub.base_url());
    for system in &mut guarded.systems {
        if system.id == "js" {
            system.breaker = Some(concord::model::BreakerConfig {
                enabled: true,
                max_share: 0.2,
                min_records: 1,
                window_secs: 600,
            });
        }
    }
    s.engine.apply_workspace(&guarded).await.expect("workspace");
    let _running = s.engine.start(s.cancel.clone());
    let tokens = std::sync::Arc::new(Tokens::default());
    let admin = tokens.issue(Principal::new("ana", Role::Admin));
    let steward = tokens.issue(Principal::new("sam", Role::Steward));
    let (base, client) = common::serve_console(&s.engine, tokens, "concord-breaker-test").await;
    let get = |path: &'static str| console(&client, &base, &admin, None, path);

    let deadline = Instant::now() + Duration::from_secs(30);
    while s.hub.records().len() < EMPLOYEES {
        assert!(
            Instant::now() < deadline,
            "json-server's employees reach the hub"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let wait_for_writes = |n: usize, why: &'static str| {
        let js = &s.js;
        async move {
            let deadline = Instant::now() + Duration::from_secs(30);
            while js.engine_writes().len() < n {
                assert!(Instant::now() < deadline, "{why}: {:?}", js.engine_writes());
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    };
    let before = s.js.engine_writes().len();
    let retitle = |from: usize, to: usize, title: &'static str| {
        for n in from..=to {
            let (hub_id, _) = s.hub_employee(&format!("E{n:04}"));
            s.hub
                .edit(&hub_id, json!({ "title": format!("{title} {n}") }));
        }
    };

    // 11 of 55 is 20%, not more: every write is sent.
    retitle(1, 11, "Retitled");
    wait_for_writes(before + 11, "eleven updates at the share are all sent").await;
    let (_, breaker) = get("/api/systems/js/breaker").await;
    assert_eq!(
        breaker["open"],
        Value::Null,
        "at the share the breaker stays closed: {breaker}"
    );
    assert_eq!(
        breaker["tally"]["overwrites"],
        json!(11),
        "it counted the eleven: {breaker}"
    );
    assert_eq!(
        breaker["tally"]["linked"],
        json!(55),
        "of 55 linked records: {breaker}"
    );

    // A twelfth is more than 20% of 55: the breaker trips and json-server gets nothing more.
    retitle(12, 12, "Retitled");
    let deadline = Instant::now() + Duration::from_secs(30);
    let trip = loop {
        let (_, breaker) = get("/api/systems/js/breaker").await;
        if !breaker["open"].is_null() {
            break breaker["open"].clone();
        }
        assert!(
            Instant::now() < deadline,
            "the twelfth record trips the breaker: {breaker}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(
        (trip["overwrites"].clone(), trip["linked"].clone()),
        (json!(12), json!(55)),
        "{trip}"
    );
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(
        s.js.engine_writes().len(),
        before + 11,
        "the write over the line is held, not sent"
    );
    assert_eq!(
        s.js.get(12).await["title"],
        seed()[11]["title"],
        "json-server keeps its value"
    );
    let (_, metrics) = get("/api/metrics").await;
    let js_health = metrics["per_system"]
        .as_array()
        .and_then(|all| all.iter().find(|h| h["system"] == json!("js")).cloned())
        .expect("json-server's health");
    assert_eq!(
        js_health["state"],
        json!("held"),
        "the dashboard says why nothing leaves: {js_health}"
    );
    assert_eq!(
        metrics["breakers"][0]["system"],
        json!("js"),
        "the banner's source lists it: {metrics}"
    );
    let (_, plan) = get("/api/systems/js/plan").await;
    assert_eq!(
        plan["counts"]["updates"],
        json!(1),
        "the held write is reviewable: {plan}"
    );
    assert_eq!(
        plan["breaker"]["id"], trip["id"],
        "the plan says the breaker holds it: {plan}"
    );

    // Only an admin decides, on the writes they reviewed.
    let (status, _) = console(
        &client,
        &base,
        &steward,
        Some(json!({})),
        "/api/systems/js/breaker/confirm",
    )
    .await;
    assert_eq!(status, 403, "a steward cannot release held writes");
    let stale = json!({ "seen": { "creates": 0, "updates": 0, "deletes": 0 } });
    let (status, body) = console(
        &client,
        &base,
        &admin,
        Some(stale),
        "/api/systems/js/breaker/confirm",
    )
    .await;
    assert_eq!(
        (status, body["code"].clone()),
        (409, json!("plan_changed")),
        "{body}"
    );
    let seen = json!({ "seen": plan["counts"], "note": "the retitling was planned" });
    let (status, body) = console(
        &client,
        &base,
        &admin,
        Some(seen),
        "/api/systems/js/breaker/confirm",
    )
    .await;
    assert_eq!(status, 200, "{body}");
    wait_for_writes(before + 12, "a confirmed write is sent").await;
    let deadline = Instant::now() + Duration::from_secs(30);
    while s.js.get(12).await["title"] != json!("Retitled 12") {
        assert!(
            Instant::now() < deadline,
            "the confirmed title reaches json-server"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // The writes that trip judged are not counted again: 12 more trip it anew, and the
    // admin discards what is held then. Nothing held is ever sent.
    retitle(13, 24, "Mistaken");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (_, breaker) = get("/api/systems/js/breaker").await;
        if !breaker["open"].is_null() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "twelve more records trip it again: {breaker}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let sent = s.js.engine_writes().len();
    let (_, plan) = get("/api/systems/js/plan").await;
    let held = plan["counts"]["updates"].as_u64().expect("a count");
    assert!(
        held >= 1,
        "at least the write over the line is held: {plan}"
    );
    assert_eq!(
        sent - (before + 12) + held as usize,
        12,
        "each of the twelve is sent or held"
    );
    let (status, body) = console(
        &client,
        &base,
        &admin,
        Some(json!({})),
        "/api/systems/js/breaker/discard",
    )
    .await;
    assert_eq!(
        (status, body["code"].clone()),
        (422, json!("note_required")),
        "{body}"
    );
    let (status, body) = console(
        &client,
        &base,
        &admin,
        Some(json!({ "note": "a bad import" })),
        "/api/systems/js/breaker/discard",
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["discarded"],
        json!(held),
        "every held update is discarded: {body}"
    );
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(
        s.js.engine_writes().len(),
        sent,
        "a discarded write is never sent"
    );
    let (_, plan) = get("/api/systems/js/plan").await;
    assert_eq!(
        plan["counts"]["updates"],
        json!(0),
        "nothing is held any more: {plan}"
    );

    // A decision covers the writes the admin reviewed. Writes queued while they reviewed are
    // judged afresh: thirteen more records (over the share on their own) trip it again and
    // wait, while the twelve reviewed are sent.
    // Waits until the breaker holds writes and each of `touched` retitled records since
    // `since` writes is either sent or held: the plan as the admin then sees it.
    let settled = |touched: usize, since: usize, why: &'static str| {
        let get = &get;
        let js = &s.js;
        async move {
            let deadline = Instant::now() + Duration::from_secs(30);
            loop {
                let (_, plan) = get("/api/systems/js/plan").await;
                let held = plan["counts"]["updates"].as_u64().unwrap_or(0) as usize;
                let sent = js.engine_writes().len() - since;
                if !plan["breaker"].is_null() && held + sent == touched {
                    return plan;
                }
                assert!(Instant::now() < deadline, "{why}: {sent} sent, {plan}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    };
    let sent = s.js.engine_writes().len();
    retitle(25, 36, "Reviewed");
    let reviewed = settled(12, sent, "twelve retitled records trip it").await;
    retitle(37, 49, "Unreviewed");
    settled(
        25,
        sent,
        "the thirteen queued during the review are held too",
    )
    .await;
    let (status, body) = console(
        &client,
        &base,
        &admin,
        Some(json!({ "seen": reviewed["counts"], "note": "reviewed twelve" })),
        "/api/systems/js/breaker/confirm",
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["queued_since_review"],
        json!(13),
        "the decision names the writes queued since the review: {body}"
    );
    assert_eq!(
        body["tripped_again"]["overwrites"],
        json!(13),
        "thirteen unreviewed records over the share trip the breaker again: {body}"
    );
    wait_for_writes(sent + 12, "the twelve reviewed writes are sent").await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    let written: Vec<String> = s.js.engine_writes().into_iter().skip(sent).collect();
    assert_eq!(
        written.len(),
        12,
        "only the reviewed writes leave, never the unreviewed ones: {written:?}"
    );
    assert!(
        written
            .iter()
            .all(|w| (37..=49).all(|n| !w.ends_with(&format!("/employees/{n}")))),
        "no record retitled during the review is written: {written:?}"
    );
    assert_eq!(
        s.js.get(37).await["title"],
        seed()[36]["title"],
        "json-server keeps its value until the new trip is decided"
    );
    let (status, body) = console(
        &client,
        &base,
        &admin,
        Some(json!({ "note": "not ours" })),
        "/api/systems/js/breaker/discard",
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["discarded"], json!(13), "{body}");

    // A few writes queued during a review (within the share on their own) flow with it.
    let sent = s.js.engine_writes().len();
    retitle(1, 12, "Third");
    let reviewed = settled(12, sent, "twelve records trip it once more").await;
    retitle(13, 14, "Third");
    settled(14, sent, "two more are held with them").await;
    let (status, body) = console(
        &client,
        &base,
        &admin,
        Some(json!({ "seen": reviewed["counts"] })),
        "/api/systems/js/breaker/confirm",
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        (
            body["queued_since_review"].clone(),
            body["tripped_again"].clone()
        ),
        (json!(2), Value::Null),
        "two writes are within the share: they are judged and flow: {body}"
    );
    wait_for_writes(
        sent + 14,
        "the reviewed twelve and the two judged since are sent",
    )
    .await;

    let (_, audit) = get("/api/audit?system=js&limit=1000").await;
    let rules: Vec<&str> = audit
        .as_array()
        .expect("audit rows")
        .iter()
        .filter_map(|r| r["rule"].as_str())
        .filter(|r| r.starts_with("breaker:"))
        .collect();
    assert_eq!(
        rules,
        [
            "breaker:confirmed",
            "breaker:tripped",
            "breaker:discarded",
            "breaker:tripped",
            "breaker:confirmed",
            "breaker:tripped",
            "breaker:discarded",
            "breaker:tripped",
            "breaker:confirmed",
            "breaker:tripped"
        ],
        "each trip and each decision is audited, newest first"
    );
}

#[tokio::test]
async fn json_server_mapping_change_is_planned_for_every_record_and_written_only_when_enabled() {
    use concord::api::auth::{Principal, Role, Tokens};
    let s = Setup::start(page_style).await;
    // json-server's breaker is on: the plan rewrites every employee, far over its share.
    let mut guarded = workspace(page_style(s.js.base()), &s.hub.base_url());
    for system in &mut guarded.systems {
        if system.id == "js" {
            system.breaker = Some(concord::model::BreakerConfig {
                enabled: true,
                max_share: 0.2,
                min_records: 1,
                window_secs: 600,
            });
        }
    }
    s.engine.apply_workspace(&guarded).await.expect("workspace");
    let _running = s.engine.start(s.cancel.clone());
    let tokens = std::sync::Arc::new(Tokens::default());
    let admin = tokens.issue(Principal::new("ana", Role::Admin));
    let (base, client) = common::serve_console(&s.engine, tokens, "concord-remap-test").await;
    let deadline = Instant::now() + Duration::from_secs(30);
    while s.hub.records().len() < EMPLOYEES {
        assert!(
            Instant::now() < deadline,
            "json-server's employees reach the hub"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let before = s.js.engine_writes().len();

    // json-server gets a second copy of the work e-mail, under a new key.
    let mut mapping = serde_json::to_value(
        s.engine
            .workspace()
            .config
            .mappings
            .iter()
            .find(|m| m.system == "js")
            .expect("the js mapping"),
    )
    .expect("json");
    mapping["rules"]
        .as_array_mut()
        .expect("rules")
        .push(json!({ "canonical": ["work_email"], "system": ["contactEmail"] }));
    // What-if, before saving: json-server would get a new key for every employee.
    let (status, what_if) = console(
        &client,
        &base,
        &admin,
        Some(mapping.clone()),
        "/api/mappings/what-if",
    )
    .await;
    assert_eq!(status, 200, "{what_if}");
    assert_eq!(
        (
            what_if["records"].clone(),
            what_if["changed_records"].clone(),
            what_if["unwritten_paths"].clone()
        ),
        (json!(EMPLOYEES), json!(EMPLOYEES), json!([])),
        "every employee json-server holds would change, and no path stops being written: {what_if}"
    );
    let changes = what_if["changes"].as_array().expect("changes");
    assert_eq!(changes.len(), 1, "one path changes: {what_if}");
    assert_eq!(
        (changes[0]["path"].clone(), changes[0]["records"].clone()),
        (json!("contactEmail"), json!(EMPLOYEES))
    );
    let samples = changes[0]["samples"].as_array().expect("samples").clone();
    assert!(!samples.is_empty(), "with samples: {what_if}");
    assert_eq!(
        s.js.engine_writes().len(),
        before,
        "trying a mapping writes nothing"
    );

    let saved = client
        .put(format!("{base}/api/mappings/js/employee"))
        .bearer_auth(&admin)
        .json(&mapping)
        .send()
        .await
        .expect("save");
    assert_eq!(saved.status().as_u16(), 200, "the mapping is saved");
    let js = s.engine.workspace().system("js").cloned().expect("js");
    assert!(
        js.writes_held(),
        "a changed mapping holds the system's writes in a plan"
    );

    let deadline = Instant::now() + Duration::from_secs(30);
    let plan = loop {
        let (_, plan) = console(
            &client,
            &base,
            &admin,
            None,
            "/api/systems/js/plan?limit=1000",
        )
        .await;
        if plan["counts"]["updates"] == json!(EMPLOYEES) {
            break plan;
        }
        assert!(
            Instant::now() < deadline,
            "every record json-server holds is planned: {}",
            plan["counts"]
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    for write in plan["items"].as_array().expect("items") {
        let fields: Vec<&str> = write["fields"]
            .as_array()
            .expect("fields")
            .iter()
            .filter_map(|f| f["field"].as_str())
            .collect();
        assert_eq!(
            fields,
            ["work_email"],
            "only the changed rule's field is planned: {write}"
        );
    }
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(
        s.js.engine_writes().len(),
        before,
        "nothing is written before the plan is enabled"
    );
    let (_, audit) = console(
        &client,
        &base,
        &admin,
        None,
        "/api/audit?system=js&limit=100",
    )
    .await;
    assert!(
        audit
            .as_array()
            .expect("rows")
            .iter()
            .any(|r| r["rule"] == json!("config:writes_held")
                && r["detail"]["reason"] == json!("mapping_changed")),
        "holding the writes is audited with its reason: {audit}"
    );

    assert!(
        !plan["breaker"].is_null(),
        "the planned rewrite of every employee trips the breaker too: {}",
        plan["breaker"]
    );
    let (status, body) = console(
        &client,
        &base,
        &admin,
        Some(json!({ "seen": plan["counts"] })),
        "/api/systems/js/enable",
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let (_, breaker) = console(&client, &base, &admin, None, "/api/systems/js/breaker").await;
    assert_eq!(
        (
            breaker["open"].clone(),
            breaker["trips"][0]["status"].clone(),
            breaker["trips"][0]["decided_by"].clone()
        ),
        (Value::Null, json!("confirmed"), json!("ana")),
        "enabling the reviewed plan confirms the trip its writes caused: {breaker}"
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    for e in seed() {
        let id = e["id"].as_u64().expect("an id");
        loop {
            let held = s.js.get(id).await;
            if held.get("contactEmail") == Some(&e["email"]) {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "employee {id} gets its e-mail under the new key: {held:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    assert_eq!(
        s.js.engine_writes().len(),
        before + EMPLOYEES,
        "enabling sends exactly the plan: one write per employee"
    );
    for sample in &samples {
        let id: u64 = sample["external_id"]
            .as_str()
            .and_then(|i| i.parse().ok())
            .expect("an id");
        assert_eq!(
            s.js.get(id).await.get("contactEmail"),
            Some(&sample["to"]),
            "what-if showed what saving wrote: {sample}"
        );
    }
}

#[tokio::test]
async fn json_server_pilot_scope_gets_only_its_records_until_widened_then_only_what_they_lack() {
    use concord::api::auth::{Principal, Role, Tokens};
    let s = Setup::start(page_style).await;
    let mut piloted = workspace(page_style(s.js.base()), &s.hub.base_url());
    for system in &mut piloted.systems {
        if system.id == "js" {
            system.pilot = Some(
                [(
                    "employee_number".to_owned(),
                    vec![json!("E0001"), json!("E0002")],
                )]
                .into(),
            );
        }
    }
    s.engine.apply_workspace(&piloted).await.expect("workspace");
    let _running = s.engine.start(s.cancel.clone());
    let tokens = std::sync::Arc::new(Tokens::default());
    let admin = tokens.issue(Principal::new("ana", Role::Admin));
    let (base, client) = common::serve_console(&s.engine, tokens, "concord-pilot-test").await;
    let deadline = Instant::now() + Duration::from_secs(30);
    while s.hub.records().len() < EMPLOYEES {
        assert!(
            Instant::now() < deadline,
            "a piloted system is still read: its employees reach the hub"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let before = s.js.engine_writes().len();
    let title_in_js = |id: u64| {
        let js = &s.js;
        async move { js.get(id).await["title"].clone() }
    };

    // Four people change title in the hub; two are in the pilot.
    for n in 1..=4 {
        let (hub_id, _) = s.hub_employee(&format!("E{n:04}"));
        s.hub
            .edit(&hub_id, json!({ "title": format!("Pilot {n}") }));
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while title_in_js(2).await != json!("Pilot 2") || title_in_js(1).await != json!("Pilot 1") {
        assert!(
            Instant::now() < deadline,
            "records in the pilot reach json-server"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    s.settle().await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        s.js.engine_writes().len(),
        before + 2,
        "only the two records in the pilot are written"
    );
    for id in [3, 4] {
        assert_eq!(
            title_in_js(id).await,
            seed()[id as usize - 1]["title"],
            "employee {id} is outside the pilot: untouched"
        );
    }

    // Widening the scope (removing it) sends the newly admitted records what json-server
    // lacks of them: the two new titles, and nothing for the 51 that already agree.
    let mut widened = s.engine.workspace().system("js").cloned().expect("js");
    widened.pilot = None;
    let saved = client
        .put(format!("{base}/api/systems/js"))
        .bearer_auth(&admin)
        .json(&widened)
        .send()
        .await
        .expect("save");
    assert_eq!(saved.status().as_u16(), 200, "the widened system is saved");
    let deadline = Instant::now() + Duration::from_secs(30);
    while title_in_js(3).await != json!("Pilot 3") || title_in_js(4).await != json!("Pilot 4") {
        assert!(
            Instant::now() < deadline,
            "widening sends the admitted records' changes"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    s.settle().await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        s.js.engine_writes().len(),
        before + 4,
        "widening writes only what the newly admitted records lack"
    );
}

/// json-server dates pay in `payEffective`; the hub takes pay as it is. Pay is the field the
/// date governs: a title changed in the same edit is effective at once.
fn dated_pay(ws: &mut WorkspaceConfig) {
    for m in &mut ws.mappings {
        let path = if m.system == "js" {
            "payRate"
        } else {
            "pay_rate"
        };
        m.rules.push(
            serde_json::from_value(json!({ "canonical": ["pay_rate"], "system": [path] }))
                .expect("a rule"),
        );
        if m.system == "js" {
            m.effective_date = Some(concord::model::EffectiveDate {
                path: "payEffective".into(),
                fields: vec!["pay_rate".into()],
                time_zone: None,
            });
        }
    }
}

#[tokio::test]
async fn json_server_pay_dated_in_the_future_waits_for_its_date_then_applies_and_is_judged_then() {
    use concord::runtime::{ScheduledFilter, ScheduledStatus};
    let clock = concord::clock::ManualClock::new(chrono::Utc::now());
    let s = Setup::start_on(page_style, std::sync::Arc::new(clock.clone()), dated_pay).await;
    let _running = s.engine.start(s.cancel.clone());
    let deadline = Instant::now() + Duration::from_secs(30);
    while s.hub.records().len() < EMPLOYEES || s.pending().await > 0 {
        assert!(Instant::now() < deadline, "the initial sync finishes");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let date = (clock_now(&clock) + chrono::Duration::days(10))
        .date_naive()
        .to_string();
    let hub_pay = |number: &str| s.hub_employee(number).1.get("pay_rate").cloned();
    let scheduled = |status| {
        let engine = s.engine.clone();
        async move {
            engine
                .scheduled_changes(&ScheduledFilter {
                    status: Some(status),
                    ..Default::default()
                })
                .await
                .expect("scheduled changes list")
        }
    };

    // A rise for E0001 with a new title, a rise for E0002, and a rise under a date that is
    // not one for E0003: all entered in json-server today.
    s.js.patch(
        1,
        json!({ "payRate": "85000", "payEffective": date, "title": "Senior Analyst" }),
    )
    .await;
    s.js.patch(2, json!({ "payRate": "90000", "payEffective": date }))
        .await;
    s.js.patch(
        3,
        json!({ "payRate": "60000", "payEffective": "next month" }),
    )
    .await;
    let rejections = || async {
        let messages: Vec<String> = sqlx::query_scalar(
            "SELECT json_extract(detail, '$.message') FROM exceptions WHERE kind = 'validation' AND status = 'open'",
        )
        .fetch_all(s.engine.pool())
        .await
        .expect("exceptions");
        messages
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while s.hub_employee("E0001").1["title"] != json!("Senior Analyst")
        || scheduled(ScheduledStatus::Scheduled).await.scheduled < 2
        || rejections().await.is_empty()
    {
        assert!(
            Instant::now() < deadline,
            "the undated part of the edit (the title) reaches the hub at once, and the three \
             edits are read"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    s.settle().await;
    assert_eq!(hub_pay("E0001"), None, "E0001's rise waits for its date");
    assert_eq!(hub_pay("E0002"), None, "E0002's rise waits for its date");
    assert_eq!(
        hub_pay("E0003"),
        None,
        "a rise under an unreadable date is not applied"
    );
    let waiting = scheduled(ScheduledStatus::Scheduled).await;
    assert_eq!(
        waiting.scheduled, 2,
        "two changes wait: {:?}",
        waiting.items
    );
    assert_eq!(
        waiting
            .items
            .iter()
            .map(|c| (
                c.external_id.clone(),
                c.values.get("pay_rate").cloned(),
                c.effective_date.clone()
            ))
            .collect::<Vec<_>>(),
        vec![
            ("1".to_owned(), Some(json!("85000")), date.clone()),
            ("2".to_owned(), Some(json!("90000")), date.clone()),
        ],
        "each waiting change holds the dated value under the system's date"
    );
    let rejected = rejections().await;
    assert!(
        rejected
            .iter()
            .any(|m| m.contains("payEffective: 'next month' is not a date")),
        "an unreadable date opens an exception naming it: {rejected:?}"
    );

    // Before the date, the hub changes E0002's pay. The golden record and the hub take it,
    // but json-server keeps the value it dated: writing the hub's value there would
    // overwrite the rise.
    let (hub_2, _) = s.hub_employee("E0002");
    s.hub.edit(&hub_2, json!({ "pay_rate": "70000" }));
    s.settle().await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    s.settle().await;
    assert_eq!(
        s.js.get(2).await["payRate"],
        json!("90000"),
        "a write of a field json-server dated in the future waits: its rise survives"
    );
    assert!(
        !s.js
            .engine_writes()
            .iter()
            .any(|w| w.contains("/employees/2")),
        "nothing is written to E0002 in json-server before the date: {:?}",
        s.js.engine_writes()
    );
    // A poll that reads the same dated values again schedules nothing new.
    s.js.patch(1, json!({ "lastName": "Family1b" })).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    while s.hub_employee("E0001").1["full_name"] != json!("Given1 Family1b") {
        assert!(Instant::now() < deadline, "the name change reaches the hub");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    s.settle().await;
    let again = scheduled(ScheduledStatus::All).await;
    assert_eq!(
        (again.scheduled, again.superseded),
        (2, 0),
        "re-reading the same dated rise keeps the one waiting change"
    );

    // The date comes.
    clock.advance(chrono::Duration::days(11));
    let deadline = Instant::now() + Duration::from_secs(30);
    while hub_pay("E0001") != Some(json!("85000")) || hub_pay("E0002") != Some(json!("90000")) {
        assert!(
            Instant::now() < deadline,
            "on their date both rises reach the hub; E0001 {:?}, E0002 {:?}",
            hub_pay("E0001"),
            hub_pay("E0002")
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    s.settle().await;
    let released = scheduled(ScheduledStatus::Released).await;
    assert_eq!(released.released, 2, "both changes were released");
    assert!(
        released
            .items
            .iter()
            .all(|c| c.outcome.as_deref() == Some("applied")),
        "each released change's event was applied: {:?}",
        released.items
    );
    assert_eq!(
        s.js.get(2).await["payRate"],
        json!("90000"),
        "json-server keeps its rise"
    );
    let record_2 = s
        .engine
        .record_for("js", "employee", "2")
        .await
        .expect("lookup")
        .expect("E0002 is linked");
    let rules: Vec<String> = sqlx::query_scalar(
        "SELECT rule FROM audit WHERE record_id = ? AND (field = 'pay_rate' OR rule LIKE 'schedule:%') ORDER BY id",
    )
    .bind(record_2)
    .fetch_all(s.engine.pool())
    .await
    .expect("audit");
    assert!(
        rules.iter().any(|r| r == "schedule:held")
            && rules.iter().any(|r| r == "schedule:released")
            && rules
                .iter()
                .any(|r| r == "rule4:conflict:last_write_wins:incoming_won"),
        "the audit holds the rise, releases it, and judges the hub's change as a conflict on \
         the date (the later-dated rise wins): {rules:?}"
    );
    assert_eq!(s.dead_letters().await, 0, "nothing failed");
}

fn clock_now(clock: &concord::clock::ManualClock) -> chrono::DateTime<chrono::Utc> {
    use concord::clock::Clock;
    clock.now()
}

/// Titles are decided by a steward when both sides change one.
fn titles_by_steward(ws: &mut WorkspaceConfig) {
    ws.policies = vec![
        serde_json::from_value(json!({ "object": "employee", "fields": [
            { "field": "job_title", "conflict": "manual" }
        ] }))
        .expect("policies"),
    ];
}

#[tokio::test]
async fn json_server_ownership_what_if_shows_exactly_what_saving_then_decides_and_writes() {
    use concord::api::auth::{Principal, Role, Tokens};
    let s = Setup::start_on(
        page_style,
        std::sync::Arc::new(concord::clock::SystemClock),
        titles_by_steward,
    )
    .await;
    s.engine.poll("js", |_| {}).await.expect("initial listing");
    s.settle().await;
    let tokens = std::sync::Arc::new(Tokens::default());
    let admin = tokens.issue(Principal::new("ana", Role::Admin));
    let (base, client) = common::serve_console(&s.engine, tokens, "concord-policy-test").await;

    // Three people get a new title in both systems before either change is seen: each is a
    // conflict held for a steward.
    for n in 1..=3u64 {
        let (hub_id, _) = s.hub_employee(&format!("E{n:04}"));
        s.hub.edit(&hub_id, json!({ "title": format!("Hub {n}") }));
        s.js.patch(n, json!({ "title": format!("Js {n}") })).await;
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while s.hub.hooks_pending() > 0 {
        assert!(Instant::now() < deadline, "the hub's webhooks are accepted");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    s.engine.poll("js", |_| {}).await.expect("incremental poll");
    s.settle().await;
    let held: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM exceptions WHERE kind = 'conflict' AND field = 'job_title' AND status = 'open'",
    )
    .fetch_one(s.engine.pool())
    .await
    .expect("count");
    assert_eq!(held, 3, "three title conflicts wait for a steward");
    let hub_writes = s.hub.stats().writes_applied;
    let js_writes = s.js.engine_writes().len();

    // What if json-server owned titles?
    let draft = json!([{ "field": "job_title", "owner": "js", "conflict": "owner_wins" }]);
    let (status, what_if) = console(
        &client,
        &base,
        &admin,
        Some(draft.clone()),
        "/api/policies/employee/what-if",
    )
    .await;
    assert_eq!(status, 200, "the what-if answers: {what_if}");
    assert_eq!(
        what_if["decided"].as_array().map(Vec::len),
        Some(3),
        "the draft decides the three held conflicts: {what_if}"
    );
    assert_eq!(
        what_if["writes"],
        json!([{ "system": "hub", "field": "job_title", "count": 3, "samples": (1..=3).map(|n| json!({
            "record_id": what_if["decided"][n - 1]["record_id"],
            "from": format!("Hub {n}"), "to": format!("Js {n}") })).collect::<Vec<_>>() }]),
        "only the hub would be written: json-server's title, over the hub's"
    );
    assert_eq!(what_if["still_held"], json!(0), "nothing stays held");
    s.settle().await;
    assert_eq!(
        (s.hub.stats().writes_applied, s.js.engine_writes().len()),
        (hub_writes, js_writes),
        "a what-if writes nothing"
    );

    // Saving the draft and deciding what it decides does exactly that.
    let saved = client
        .put(format!("{base}/api/policies/employee?redecide=true"))
        .bearer_auth(&admin)
        .json(&draft)
        .send()
        .await
        .expect("save");
    assert_eq!(saved.status().as_u16(), 200, "the policies are saved");
    assert_eq!(
        saved
            .headers()
            .get("x-decided")
            .and_then(|v| v.to_str().ok()),
        Some("3"),
        "the save decides the three conflicts"
    );
    s.settle().await;
    for n in 1..=3u64 {
        assert_eq!(
            s.hub_employee(&format!("E{n:04}")).1["title"],
            json!(format!("Js {n}")),
            "E{n:04}: the hub gets json-server's title, as the what-if said"
        );
        assert_eq!(
            s.js.get(n).await["title"],
            json!(format!("Js {n}")),
            "E{n:04}: json-server keeps its own"
        );
    }
    assert_eq!(
        (
            s.hub.stats().writes_applied - hub_writes,
            s.js.engine_writes().len() - js_writes
        ),
        (3, 0),
        "saving writes what the what-if counted and nothing more"
    );
    let (_, after) = console(
        &client,
        &base,
        &admin,
        Some(draft),
        "/api/policies/employee/what-if",
    )
    .await;
    assert_eq!(
        (after["changes"].clone(), after["decided"].clone()),
        (json!([]), json!([])),
        "once saved, the same draft changes nothing"
    );
}
