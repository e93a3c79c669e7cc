//! Writes never overwrite a change the engine has not seen, against real HTTP servers that
//! guard their records in different ways, and no record that keeps changing can make the
//! engine loop.
//!
//! Each test starts a small axum server on 127.0.0.1 with an in-memory store that logs every
//! request it answers (method, path, `If-Match`, body, status, and the token it gave back),
//! wires it as the `rest` system `vendor` of a workspace whose other side (`source`) is a
//! Concord-side [`LoopbackSystem`] that posts a webhook for every change, and drives the
//! engine on a real SQLite file. The servers:
//!
//! - [`Style::WeakEtag`]: SCIM-like, an opaque weak `ETag` (`W/"<random hex>"`) that changes on
//!   every write; an update must carry it in `If-Match` exactly, else 412;
//! - [`Style::ChangesOnRead`]: the same, and every read of a record moves it on right after
//!   answering (a counter field and the ETag), so the token a read gives is always stale;
//! - [`Style::StrongOnly`]: weak ETags, but `If-Match` is compared strongly (RFC 7232), so a
//!   weak tag never matches;
//! - [`Style::TitleChangesOnRead`]: no concurrency control at all, and a mapped field (the
//!   title) changes on every read;
//! - [`Style::RevField`]: a `rev` string in the body (`2026-11-30T05:00:00.123Z#7`) that a write
//!   must send back unchanged, else 412 or 409.
//!
//! Every server refuses requests past a fixed budget, so a livelock fails a test instead of
//! running on; every wait is bounded.

mod common;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use chrono::{SecondsFormat, Utc};
use concord::Engine;
use concord::loopback::LoopbackSystem;
use concord::model::{RecordId, WorkspaceConfig};
use concord::ops::{DeadLetterFilter, ExceptionFilter};
use serde_json::{Map, Value, json};
use tempfile::TempDir;
use tokio_util::sync::CancellationToken;

/// The record every test syncs, as the vendor system calls it.
const V1: &str = "V1";
const V1_PATH: &str = "/employees/V1";
/// Requests a test server answers before it refuses everything (400): a loop that would run
/// on is cut off and shows in the counts.
const BUDGET: usize = 300;

// ---------------------------------------------------------------------------------------------
// The test servers.

#[derive(Clone, Copy, Debug, PartialEq)]
enum Style {
    WeakEtag,
    ChangesOnRead,
    StrongOnly,
    TitleChangesOnRead,
    /// A stale `rev` is answered with this status.
    RevField {
        conflict: u16,
    },
}

impl Style {
    fn sends_etags(self) -> bool {
        matches!(
            self,
            Style::WeakEtag | Style::ChangesOnRead | Style::StrongOnly
        )
    }
}

/// One request as a test server answered it.
#[derive(Debug, Clone)]
struct Seen {
    method: String,
    path: String,
    if_match: Option<String>,
    body: Option<Value>,
    status: u16,
    /// The concurrency token the answer gave for the record: its `ETag` header, or the `rev`
    /// in its body.
    gave: Option<String>,
}

struct Entry {
    fields: Map<String, Value>,
    etag: String,
    changes: u64,
}

#[derive(Default)]
struct Store {
    records: BTreeMap<String, Entry>,
    log: Vec<Seen>,
    next_id: u32,
}

#[derive(Clone)]
struct Server {
    style: Style,
    store: Arc<Mutex<Store>>,
    base: String,
}

fn stamp() -> String {
    Utc::now().to_rfc3339_opts(SecondsFormat::Micros, true)
}

fn weak_etag() -> String {
    format!("W/\"{:016x}\"", rand::random::<u64>())
}

impl Entry {
    /// The record moved on: a new ETag, modification time and (for `rev` systems) revision.
    fn touch(&mut self, style: Style) {
        self.changes += 1;
        self.etag = weak_etag();
        self.fields.insert("modified".into(), json!(stamp()));
        if matches!(style, Style::RevField { .. }) {
            let at = Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true);
            self.fields
                .insert("rev".into(), json!(format!("{at}#{}", self.changes)));
        }
    }

    /// The token an answer carrying this record gives.
    fn token(&self, style: Style) -> Option<String> {
        match style {
            Style::RevField { .. } => self
                .fields
                .get("rev")
                .and_then(Value::as_str)
                .map(str::to_owned),
            s if s.sends_etags() => Some(self.etag.clone()),
            _ => None,
        }
    }
}

impl Server {
    async fn start(style: Style) -> Self {
        let mut server = Self {
            style,
            store: Arc::default(),
            base: String::new(),
        };
        let router = Router::new()
            .route("/employees", get(list).post(create))
            .route("/employees/{id}", get(get_one).patch(patch))
            .with_state(server.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a free port on 127.0.0.1");
        let addr = listener.local_addr().expect("bound address");
        tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        server.base = format!("http://{addr}");
        server
    }

    fn lock(&self) -> MutexGuard<'_, Store> {
        self.store.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A person changes a record directly in the system (creating it if new): the record
    /// moves on (new ETag, modification time, revision); the engine is not told.
    fn edit(&self, id: &str, fields: Value) {
        let mut store = self.lock();
        let entry = store.records.entry(id.to_owned()).or_insert_with(|| Entry {
            fields: Map::new(),
            etag: String::new(),
            changes: 0,
        });
        for (k, v) in fields.as_object().cloned().unwrap_or_default() {
            entry.fields.insert(k, v);
        }
        entry.fields.insert("id".into(), json!(id));
        entry.touch(self.style);
    }

    fn record(&self, id: &str) -> Map<String, Value> {
        self.lock()
            .records
            .get(id)
            .map(|e| e.fields.clone())
            .unwrap_or_default()
    }

    fn etag(&self, id: &str) -> String {
        self.lock()
            .records
            .get(id)
            .map(|e| e.etag.clone())
            .unwrap_or_default()
    }

    /// The requests the server answered about one record (by path), in order.
    fn requests_for(&self, path: &str) -> Vec<Seen> {
        self.lock()
            .log
            .iter()
            .filter(|s| s.path == path)
            .cloned()
            .collect()
    }

    fn all_requests(&self) -> Vec<Seen> {
        self.lock().log.clone()
    }
}

/// Logs a request and builds its answer: the record with its ETag header (for the styles that
/// send one), or an error.
fn answer(
    store: &mut Store,
    style: Style,
    seen: Seen,
    record: Option<&Entry>,
    status: StatusCode,
) -> Response {
    let etag = record
        .filter(|_| style.sends_etags() && status.is_success())
        .map(|e| e.etag.clone());
    let body = match record {
        Some(e) if status.is_success() => Value::Object(e.fields.clone()),
        Some(e) => json!({ "error": "precondition failed", "current": e.token(style) }),
        None => json!({ "error": "no such record" }),
    };
    store.log.push(Seen {
        status: status.as_u16(),
        gave: record
            .filter(|_| status.is_success())
            .and_then(|e| e.token(style)),
        ..seen
    });
    let mut response = (status, Json(body)).into_response();
    if let Some(tag) = etag.and_then(|t| t.parse().ok()) {
        response.headers_mut().insert("etag", tag);
    }
    response
}

/// Past the budget every request is refused with a 400: the engine dead-letters the write
/// instead of going on.
fn over_budget(store: &mut Store, seen: Seen) -> Option<Response> {
    if store.log.len() < BUDGET {
        return None;
    }
    store.log.push(Seen {
        status: 400,
        ..seen
    });
    Some(
        (
            StatusCode::BAD_REQUEST,
            Json(json!({ "error": "request budget exhausted" })),
        )
            .into_response(),
    )
}

fn if_match(headers: &HeaderMap) -> Option<String> {
    headers
        .get("if-match")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

async fn list(State(s): State<Server>) -> Response {
    let mut store = s.lock();
    let seen = Seen {
        method: "GET".into(),
        path: "/employees".into(),
        if_match: None,
        body: None,
        status: 200,
        gave: None,
    };
    if let Some(refused) = over_budget(&mut store, seen.clone()) {
        return refused;
    }
    let records: Vec<Value> = store
        .records
        .values()
        .map(|e| Value::Object(e.fields.clone()))
        .collect();
    store.log.push(seen);
    Json(Value::Array(records)).into_response()
}

async fn create(
    State(s): State<Server>,
    headers: HeaderMap,
    Json(body): Json<Map<String, Value>>,
) -> Response {
    let id = {
        let mut store = s.lock();
        store.next_id += 1;
        format!("N{}", store.next_id)
    };
    let seen = Seen {
        method: "POST".into(),
        path: "/employees".into(),
        if_match: if_match(&headers),
        body: Some(Value::Object(body.clone())),
        status: 201,
        gave: None,
    };
    if let Some(refused) = over_budget(&mut s.lock(), seen.clone()) {
        return refused;
    }
    s.edit(&id, Value::Object(body));
    let mut store = s.lock();
    let entry = store.records.remove(&id);
    let response = answer(
        &mut store,
        s.style,
        seen,
        entry.as_ref(),
        StatusCode::CREATED,
    );
    if let Some(e) = entry {
        store.records.insert(id, e);
    }
    response
}

async fn get_one(State(s): State<Server>, Path(id): Path<String>, headers: HeaderMap) -> Response {
    let mut store = s.lock();
    let seen = Seen {
        method: "GET".into(),
        path: format!("/employees/{id}"),
        if_match: if_match(&headers),
        body: None,
        status: 200,
        gave: None,
    };
    if let Some(refused) = over_budget(&mut store, seen.clone()) {
        return refused;
    }
    let Some(mut entry) = store.records.remove(&id) else {
        return answer(&mut store, s.style, seen, None, StatusCode::NOT_FOUND);
    };
    if s.style == Style::TitleChangesOnRead {
        // A mapped field changes on every read (a process elsewhere keeps rewriting it).
        let title = entry
            .fields
            .get("title")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let base = title.split(" (read ").next().unwrap_or_default().to_owned();
        entry.fields.insert(
            "title".into(),
            json!(format!("{base} (read {})", entry.changes + 1)),
        );
        entry.touch(s.style);
    }
    let response = answer(&mut store, s.style, seen, Some(&entry), StatusCode::OK);
    if s.style == Style::ChangesOnRead {
        // Right after answering, the record moves on: the token just given is already stale.
        let reads = entry
            .fields
            .get("reads")
            .and_then(Value::as_u64)
            .unwrap_or(0);
        entry.fields.insert("reads".into(), json!(reads + 1));
        entry.touch(s.style);
    }
    store.records.insert(id, entry);
    response
}

async fn patch(
    State(s): State<Server>,
    Path(id): Path<String>,
    headers: HeaderMap,
    Json(mut body): Json<Map<String, Value>>,
) -> Response {
    let mut store = s.lock();
    let tag = if_match(&headers);
    let seen = Seen {
        method: "PATCH".into(),
        path: format!("/employees/{id}"),
        if_match: tag.clone(),
        body: Some(Value::Object(body.clone())),
        status: 200,
        gave: None,
    };
    if let Some(refused) = over_budget(&mut store, seen.clone()) {
        return refused;
    }
    let Some(mut entry) = store.records.remove(&id) else {
        return answer(&mut store, s.style, seen, None, StatusCode::NOT_FOUND);
    };
    let current = entry.token(s.style);
    let refused = match s.style {
        // Weak comparison: the tag exactly as given.
        Style::WeakEtag | Style::ChangesOnRead => {
            (tag != current).then_some(StatusCode::PRECONDITION_FAILED)
        }
        // Strong comparison (RFC 7232 section 3.1): a weak tag never matches.
        Style::StrongOnly => (tag.as_deref().is_none_or(|t| t.starts_with("W/")) || tag != current)
            .then_some(StatusCode::PRECONDITION_FAILED),
        Style::TitleChangesOnRead => None,
        Style::RevField { conflict } => {
            let sent = body.remove("rev");
            (sent.as_ref().and_then(Value::as_str) != current.as_deref())
                .then(|| StatusCode::from_u16(conflict).unwrap_or(StatusCode::CONFLICT))
        }
    };
    let response = match refused {
        Some(status) => answer(&mut store, s.style, seen, Some(&entry), status),
        None => {
            for (k, v) in body {
                entry.fields.insert(k, v);
            }
            entry.touch(s.style);
            answer(&mut store, s.style, seen, Some(&entry), StatusCode::OK)
        }
    };
    store.records.insert(id, entry);
    response
}

// ---------------------------------------------------------------------------------------------
// Request counts.

fn count(seen: &[Seen], method: &str) -> usize {
    seen.iter().filter(|s| s.method == method).count()
}

fn count_status(seen: &[Seen], status: u16) -> usize {
    seen.iter().filter(|s| s.status == status).count()
}

fn summary(seen: &[Seen]) -> String {
    let sequence: Vec<String> = seen
        .iter()
        .map(|s| format!("{} {}", s.method, s.status))
        .collect();
    format!(
        "GET {}, PATCH {}, POST {} ({} requests: {})",
        count(seen, "GET"),
        count(seen, "PATCH"),
        count(seen, "POST"),
        seen.len(),
        sequence.join(", ")
    )
}

// ---------------------------------------------------------------------------------------------
// The engine and the other side.

/// The `rest` config of the server under test: `modified` is the record's modification time
/// (for last-write-wins and ordering).
fn vendor_config(url: &str, concurrency: Option<Value>, version_field: Option<&str>) -> Value {
    let mut object = json!({ "path": "/employees", "modified_field": "modified" });
    if let Some(c) = concurrency {
        object["concurrency"] = c;
    }
    if let Some(v) = version_field {
        object["version_field"] = json!(v);
    }
    json!({ "base_url": url, "objects": { "employee": object } })
}

/// The vendor system (fields `emp_no`, `first`, `last`, `email`, `title`) and the Concord-side
/// `source` (fields `employee_id`, `full_name`, `email`, `title`).
fn workspace(
    vendor: Value,
    max_rereads: Option<u32>,
    source_url: &str,
    policies: Value,
) -> WorkspaceConfig {
    let mut vendor_system =
        json!({ "id": "vendor", "name": "Vendor", "connector": "rest", "config": vendor });
    if let Some(m) = max_rereads {
        vendor_system["max_rereads"] = json!(m);
    }
    serde_json::from_value(json!({
        "systems": [
            vendor_system,
            { "id": "source", "name": "Source", "connector": "rest", "webhook_secret": "source-webhook",
              "config": { "base_url": source_url, "objects": { "employee": {
                  "path": "/employees", "version_field": "version", "concurrency": { "style": "etag" } } } } }
        ],
        "objects": [concord::schema::employee()],
        "mappings": [
            { "system": "vendor", "object": "employee", "rules": [
                { "canonical": ["employee_number"], "system": ["emp_no"] },
                { "canonical": ["given_name"], "system": ["first"] },
                { "canonical": ["family_name"], "system": ["last"] },
                { "canonical": ["work_email"], "system": ["email"] },
                { "canonical": ["job_title"], "system": ["title"] }
            ]},
            { "system": "source", "object": "employee", "rules": [
                { "canonical": ["employee_number"], "system": ["employee_id"] },
                { "canonical": ["given_name", "family_name"], "system": ["full_name"], "transform": { "kind": "full_name" } },
                { "canonical": ["work_email"], "system": ["email"] },
                { "canonical": ["job_title"], "system": ["title"] }
            ]}
        ],
        "policies": policies,
    }))
    .expect("a valid workspace")
}

/// Captures the engine's log lines of one test (the test's runtime runs on its own thread).
#[derive(Clone, Default)]
struct LogBuf(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for LogBuf {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl LogBuf {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap_or_else(|p| p.into_inner())).into_owned()
    }
}

/// The server under test holding `V1`, the engine on a real SQLite file with its webhook
/// server, and the other side holding the same employee (created there by the engine).
struct Setup {
    server: Server,
    source: LoopbackSystem,
    source_id: String,
    engine: Engine,
    record: RecordId,
    _dir: TempDir,
    cancel: CancellationToken,
}

impl Setup {
    async fn start(
        style: Style,
        concurrency: Option<Value>,
        version_field: Option<&str>,
        max_rereads: Option<u32>,
        policies: Value,
    ) -> Self {
        let server = Server::start(style).await;
        server.edit(
            V1,
            json!({ "emp_no": "E1", "first": "Ada", "last": "Lovelace",
                    "email": "ada@vendor.example", "title": "Engineer" }),
        );
        let dir = tempfile::tempdir().expect("temp dir");
        let (engine, secrets) = common::open_engine_with_secrets(dir.path()).await;
        let cancel = CancellationToken::new();
        let (addr, _) = concord::server::spawn_loopback(engine.clone(), 0, cancel.clone())
            .await
            .expect("webhook server");
        let source = LoopbackSystem::start(
            "source",
            "employee",
            "/employees",
            Some(format!("http://{addr}/hooks/source")),
        )
        .await
        .expect("source starts");
        common::trust_hooks(&secrets, "source", &source);
        engine
            .apply_workspace(&workspace(
                vendor_config(&server.base, concurrency, version_field),
                max_rereads,
                &source.base_url(),
                policies,
            ))
            .await
            .expect("workspace applies");
        // The engine learns V1 from the listing and creates the employee in the other side.
        engine.poll("vendor", |_| {}).await.expect("poll");
        let mut setup = Self {
            server,
            source,
            source_id: String::new(),
            engine,
            record: 0,
            _dir: dir,
            cancel,
        };
        setup.settle().await;
        let (source_id, _) = setup
            .source
            .records()
            .into_iter()
            .next()
            .expect("the employee is created in the other side");
        setup.source_id = source_id;
        setup.record = setup
            .engine
            .record_for("vendor", "employee", V1)
            .await
            .expect("lookup")
            .expect("V1 is linked to a record");
        setup
    }

    async fn scalar(&self, sql: &str) -> i64 {
        sqlx::query_scalar(sql)
            .fetch_one(self.engine.pool())
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
    }

    /// Waits until the other side's webhooks are accepted (stored, not applied).
    async fn hooks_accepted(&self) {
        let deadline = Instant::now() + Duration::from_secs(15);
        while self.source.hooks_pending() > 0 {
            assert!(Instant::now() < deadline, "webhooks did not drain in 15 s");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Drives the engine until the webhooks are accepted and the inbox and outbox are empty.
    async fn settle(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            self.hooks_accepted().await;
            self.engine
                .run_until_idle(Duration::from_secs(15))
                .await
                .expect("the engine goes idle");
            tokio::time::sleep(Duration::from_millis(20)).await;
            let pending = self
                .scalar("SELECT COUNT(*) FROM inbox WHERE status = 'pending'")
                .await;
            if self.source.hooks_pending() == 0 && pending == 0 {
                return;
            }
            assert!(Instant::now() < deadline, "the systems did not go quiet");
        }
    }

    /// The other side changes the employee.
    fn source_edit(&self, fields: Value) {
        self.source.edit(&self.source_id, fields);
    }

    fn source_record(&self) -> Map<String, Value> {
        self.source.record(&self.source_id).unwrap_or_default()
    }

    async fn rules(&self) -> Vec<String> {
        self.engine
            .audit_for(self.record, None)
            .await
            .expect("audit")
            .into_iter()
            .map(|a| a.rule)
            .collect()
    }

    async fn dead_letters(&self, class: &str) -> Vec<concord::ops::DeadLetterView> {
        self.engine
            .list_dead_letters(&DeadLetterFilter {
                system: Some("vendor".into()),
                error_class: Some(class.into()),
                ..DeadLetterFilter::default()
            })
            .await
            .expect("dead letters")
    }

    async fn open_unstable(&self) -> Vec<concord::ops::ExceptionView> {
        self.engine
            .list_exceptions(&ExceptionFilter {
                kind: Some("unstable_record".into()),
                record_id: Some(self.record),
                ..ExceptionFilter::default()
            })
            .await
            .expect("exceptions")
    }

    /// Waits (bounded) until `n` writes to the vendor are dead letters of `class`, and the
    /// engine has nothing more to do.
    async fn wait_dead_letters(&self, class: &str, n: i64) {
        let deadline = Instant::now() + Duration::from_secs(20);
        let sql = format!(
            "SELECT COUNT(*) FROM dead_letters WHERE system_id = 'vendor' AND error_class = '{class}'"
        );
        while self.scalar(&sql).await < n {
            assert!(
                Instant::now() < deadline,
                "no {n}th '{class}' dead letter within 20 s; vendor saw: {}",
                summary(&self.server.requests_for(V1_PATH))
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        while self
            .scalar(
                "SELECT (SELECT COUNT(*) FROM inbox WHERE status = 'pending')
                      + (SELECT COUNT(*) FROM outbox WHERE status IN ('pending', 'in_flight'))",
            )
            .await
            > 0
        {
            assert!(Instant::now() < deadline, "the engine did not go idle");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

impl Drop for Setup {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

/// An ETag-guarded (weak, opaque) server whose record the engine has written once, so the
/// engine holds the token that write gave back.
async fn scim_after_one_write() -> Setup {
    let s = Setup::start(
        Style::WeakEtag,
        Some(json!({ "style": "etag" })),
        None,
        None,
        json!([]),
    )
    .await;
    s.source_edit(json!({ "title": "Senior Engineer" }));
    s.settle().await;
    assert_eq!(
        s.server.record(V1)["title"],
        json!("Senior Engineer"),
        "the first change reaches the vendor"
    );
    s
}

// ---------------------------------------------------------------------------------------------
// 1. Opaque weak ETags (SCIM-like).

#[tokio::test]
async fn a_weak_etag_is_sent_back_exactly_as_the_server_gave_it() {
    let s = Setup::start(
        Style::WeakEtag,
        Some(json!({ "style": "etag" })),
        None,
        None,
        json!([]),
    )
    .await;
    s.source_edit(json!({ "email": "ada@new.example" }));
    s.settle().await;
    s.source_edit(json!({ "title": "Senior Engineer" }));
    s.settle().await;
    s.source_edit(json!({ "email": "ada.lovelace@new.example" }));
    s.settle().await;

    let seen = s.server.requests_for(V1_PATH);
    println!("weak etag, three changes: {}", summary(&seen));
    let v1 = s.server.record(V1);
    assert_eq!(
        (v1["email"].clone(), v1["title"].clone()),
        (json!("ada.lovelace@new.example"), json!("Senior Engineer")),
        "every change from the other side reaches the server"
    );
    let writes: Vec<&Seen> = seen.iter().filter(|r| r.method == "PATCH").collect();
    assert_eq!(writes.len(), 3, "one write per change: {}", summary(&seen));
    for (i, request) in seen.iter().enumerate() {
        if request.method != "PATCH" {
            continue;
        }
        let last_given = seen[..i].iter().rev().find_map(|r| r.gave.clone());
        assert!(
            request.if_match.is_some(),
            "an update to a system with ETags always carries If-Match: {request:?}"
        );
        assert_eq!(
            request.if_match,
            last_given,
            "a weak ETag is sent back exactly as the server gave it (byte for byte, W/ and \
             quotes kept): write {i} of {}",
            summary(&seen)
        );
        assert!(
            request
                .if_match
                .as_deref()
                .is_some_and(|t| t.starts_with("W/\"") && t.ends_with('"')),
            "the tag is the weak tag itself, never parsed or re-quoted: {request:?}"
        );
        assert_eq!(request.status, 200, "a matching If-Match is taken");
    }
    assert!(
        s.server
            .all_requests()
            .iter()
            .filter(|r| r.method == "PATCH" || r.method == "PUT")
            .all(|r| r.if_match.is_some()),
        "no write is ever sent without If-Match"
    );
    assert_eq!(
        count_status(&seen, 412),
        0,
        "with no concurrent change nothing is refused"
    );
}

#[tokio::test]
async fn a_persons_edit_of_another_field_survives_a_412_and_both_edits_are_kept() {
    let s = scim_after_one_write().await;
    let before = s.server.requests_for(V1_PATH).len();

    // A person edits the title in the server; before the engine has seen it, the other side
    // changes the email of the same employee.
    s.server.edit(V1, json!({ "title": "CTO" }));
    s.source_edit(json!({ "email": "ada@new.example" }));
    s.settle().await;

    let seen: Vec<Seen> = s.server.requests_for(V1_PATH).split_off(before);
    println!(
        "weak etag, concurrent edit of another field: {}",
        summary(&seen)
    );
    assert_eq!(
        count_status(&seen, 412),
        1,
        "exactly one write is refused as out of date: {}",
        summary(&seen)
    );
    let sequence: Vec<String> = seen
        .iter()
        .map(|r| format!("{} {}", r.method, r.status))
        .collect();
    assert_eq!(
        sequence,
        ["PATCH 412", "GET 200", "PATCH 200"],
        "after a 412 the engine re-reads the record and writes again with the new tag"
    );
    assert_eq!(
        seen[2].if_match, seen[1].gave,
        "the repeat carries the ETag the re-read gave, exactly"
    );
    let v1 = s.server.record(V1);
    assert_eq!(
        v1["title"],
        json!("CTO"),
        "the person's edit in the server is not overwritten"
    );
    assert_eq!(
        v1["email"],
        json!("ada@new.example"),
        "the other side's change reaches the server"
    );
    assert_eq!(
        s.source_record()["title"],
        json!("CTO"),
        "the person's edit, merged as an inbound change, reaches the other side"
    );
    let rules = s.rules().await;
    assert!(
        rules.iter().any(|r| r == "delivery:version_conflict"),
        "the 412 is audited as delivery:version_conflict: {rules:?}"
    );
    assert!(
        s.dead_letters("keeps_changing").await.is_empty() && s.open_unstable().await.is_empty(),
        "one re-read is no loop: no dead letter, no exception"
    );
}

/// The same field edited in the server by a person and in the other side: last-write-wins by
/// source time (the server's `modified`, the other side's event time). `person_first`: the
/// person edits before the other side does.
async fn check_same_field(person_first: bool) -> (Setup, Vec<Seen>) {
    let s = scim_after_one_write().await;
    let before = s.server.requests_for(V1_PATH).len();
    if person_first {
        s.server
            .edit(V1, json!({ "email": "person@vendor.example" }));
        tokio::time::sleep(Duration::from_millis(20)).await;
        s.source_edit(json!({ "email": "other@source.example" }));
    } else {
        s.source_edit(json!({ "email": "other@source.example" }));
        // The other side's change is stored (not yet applied) before the person edits.
        s.hooks_accepted().await;
        tokio::time::sleep(Duration::from_millis(20)).await;
        s.server
            .edit(V1, json!({ "email": "person@vendor.example" }));
    }
    s.settle().await;
    let seen: Vec<Seen> = s.server.requests_for(V1_PATH).split_off(before);
    assert_eq!(
        count_status(&seen, 412),
        1,
        "the stale write is refused once: {}",
        summary(&seen)
    );
    let rules = s.rules().await;
    assert!(
        rules.iter().any(|r| r == "delivery:version_conflict"),
        "the 412 is audited: {rules:?}"
    );
    (s, seen)
}

#[tokio::test]
async fn the_same_field_edited_on_both_sides_goes_to_the_later_edit_the_other_side() {
    let (s, seen) = check_same_field(true).await;
    println!(
        "weak etag, same field, the other side later: {}",
        summary(&seen)
    );
    assert_eq!(
        s.server.record(V1)["email"],
        json!("other@source.example"),
        "last_write_wins: the other side changed the email after the person did, so its value \
         is written over the person's (seen, merged, and decided by policy)"
    );
    assert_eq!(
        s.source_record()["email"],
        json!("other@source.example"),
        "the other side keeps its value"
    );
    let audit = s
        .engine
        .audit_for(s.record, Some("work_email"))
        .await
        .expect("audit");
    let decided = audit
        .iter()
        .find(|a| a.rule == "rule4:conflict:last_write_wins:golden_kept")
        .unwrap_or_else(|| {
            panic!(
                "the audit names the rule that decided: {:?}",
                audit.iter().map(|a| &a.rule).collect::<Vec<_>>()
            )
        });
    assert_eq!(
        decided.detail.as_ref().and_then(|d| d.get("rejected")),
        Some(&json!("person@vendor.example")),
        "the audit keeps the person's value that lost"
    );
    assert_eq!(
        seen.iter()
            .filter(|r| r.method == "PATCH" && r.status == 200)
            .count(),
        1,
        "one write applied, against the record as re-read: {}",
        summary(&seen)
    );
}

#[tokio::test]
async fn the_same_field_edited_on_both_sides_goes_to_the_later_edit_the_person() {
    let (s, seen) = check_same_field(false).await;
    println!(
        "weak etag, same field, the person later: {}",
        summary(&seen)
    );
    assert_eq!(
        s.server.record(V1)["email"],
        json!("person@vendor.example"),
        "last_write_wins: the person changed the email after the other side did, so the \
         person's value stays in the server"
    );
    assert_eq!(
        s.source_record()["email"],
        json!("person@vendor.example"),
        "and the person's value reaches the other side"
    );
    let rules: Vec<String> = s
        .engine
        .audit_for(s.record, Some("work_email"))
        .await
        .expect("audit")
        .into_iter()
        .map(|a| a.rule)
        .collect();
    assert!(
        rules
            .iter()
            .any(|r| r == "rule4:conflict:last_write_wins:incoming_won"),
        "the audit names the rule that decided: {rules:?}"
    );
    assert_eq!(
        seen.iter()
            .filter(|r| r.method == "PATCH" && r.status == 200)
            .count(),
        0,
        "nothing is written over the person's later value: {}",
        summary(&seen)
    );
}

// ---------------------------------------------------------------------------------------------
// 2-4. Records that keep changing: the loop guard.

struct GuardCase {
    name: &'static str,
    style: Style,
    concurrency: Option<Value>,
    max_rereads: Option<u32>,
    policies: Value,
    /// What the other side changes (twice: a first write, and one after the guard tripped).
    first: Value,
    second: Value,
    /// The audit rule of each re-read below the limit.
    reread_rule: &'static str,
    /// Whether each round sends a write (false: the read before writing finds the change).
    writes: bool,
    /// Whether the record really moves on between reads (false: the server refuses every
    /// write, the record stays as it is).
    record_moves: bool,
}

/// The record changes under every write: the engine re-reads at most `max_rereads` times in
/// a row, then stops (dead letter, one exception, audit, warning) and sends nothing more.
async fn check_loop_guard(case: GuardCase) {
    let logs = LogBuf::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .with_max_level(tracing::Level::WARN)
        .finish();
    let _log_guard = tracing::subscriber::set_default(subscriber);

    let name = case.name;
    let max = i64::from(case.max_rereads.unwrap_or(5));
    let limit = usize::try_from(max).unwrap_or(usize::MAX);
    let s = Setup::start(
        case.style,
        case.concurrency.clone(),
        None,
        case.max_rereads,
        case.policies.clone(),
    )
    .await;
    assert!(
        s.server.requests_for(V1_PATH).is_empty(),
        "{name}: the initial sync only lists"
    );
    let running = s.engine.start(s.cancel.child_token());
    s.source_edit(case.first.clone());
    s.wait_dead_letters("keeps_changing", 1).await;

    let tripped = s.server.requests_for(V1_PATH);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let later = s.server.requests_for(V1_PATH);
    println!("{name}: until the guard tripped: {}", summary(&tripped));
    assert_eq!(
        later.len(),
        tripped.len(),
        "{name}: a record that keeps changing stops after max_rereads re-reads: no livelock \
         (no request for it in the 2 s after the guard tripped; new: {})",
        summary(&later[tripped.len()..])
    );
    assert!(
        tripped.len() < BUDGET,
        "{name}: the server's request budget was never reached"
    );
    let (gets, patches) = (count(&tripped, "GET"), count(&tripped, "PATCH"));
    if case.writes {
        assert!(
            patches <= limit + 1 && gets <= limit + 2,
            "{name}: a record that keeps changing stops after max_rereads ({max}) re-reads: at \
             most {} writes and {} reads (one read before the first write, the token being \
             unknown), not {}",
            limit + 1,
            limit + 2,
            summary(&tripped)
        );
        assert!(
            patches >= 1,
            "{name}: the write is tried: {}",
            summary(&tripped)
        );
    } else {
        assert!(
            patches == 0 && gets <= limit + 1,
            "{name}: a record that keeps changing stops after max_rereads ({max}) re-reads: at \
             most {} reads and nothing written over the changes, not {}",
            limit + 1,
            summary(&tripped)
        );
    }

    let tags: Vec<&str> = tripped.iter().filter_map(|r| r.gave.as_deref()).collect();
    if !case.record_moves {
        // The server refused every weak tag; the record itself never moved on.
        let current = s.server.etag(V1);
        assert!(
            tags.iter().all(|t| *t == current)
                && tripped
                    .iter()
                    .filter(|r| r.method == "PATCH")
                    .all(|r| r.if_match.as_deref() == Some(current.as_str())),
            "{name}: every read gave the same weak tag {current} and every write sent it \
             back exactly: {tripped:?}"
        );
        println!(
            "{name}: the record never changed: every read gave {current}, every write sent it and got 412"
        );
    }

    let dead = s.dead_letters("keeps_changing").await;
    assert_eq!(
        dead.len(),
        1,
        "{name}: the write becomes one dead letter with error_class keeps_changing"
    );
    assert_eq!(
        dead[0].record_id,
        Some(s.record),
        "{name}: the dead letter is the record's"
    );
    let exceptions = s.open_unstable().await;
    assert_eq!(
        exceptions.len(),
        1,
        "{name}: exactly one open unstable_record exception for the record: {exceptions:?}"
    );
    assert_eq!(exceptions[0].system.as_deref(), Some("vendor"));
    let rules = s.rules().await;
    let rereads = rules.iter().filter(|r| *r == case.reread_rule).count();
    assert_eq!(
        i64::try_from(rereads).unwrap_or(i64::MAX),
        max,
        "{name}: each of the {max} re-reads allowed is audited as {}: {rules:?}",
        case.reread_rule
    );
    assert_eq!(
        rules.iter().filter(|r| *r == "delivery:loop_guard").count(),
        1,
        "{name}: the guard is audited once as delivery:loop_guard"
    );
    let log = logs.text();
    assert!(
        log.lines().any(|l| l.contains("WARN")
            && l.contains("loop guard")
            && l.contains("keeps_changing")),
        "{name}: the guard logs a warning naming keeps_changing: {log}"
    );

    // Another change to the same record: no new loop, no second exception.
    s.source_edit(case.second.clone());
    s.wait_dead_letters("keeps_changing", 2).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let after = s.server.requests_for(V1_PATH);
    let more = &after[later.len()..];
    println!(
        "{name}: a second change after the guard tripped: {}",
        summary(more)
    );
    assert!(
        more.len() <= 2,
        "{name}: past the guard, a new write to the record gets one attempt and is held, not \
         re-read again and again: {}",
        summary(more)
    );
    assert_eq!(
        s.open_unstable().await.len(),
        1,
        "{name}: still one open unstable_record exception (one, not one per write)"
    );
    running.shutdown(Duration::from_secs(2)).await;
}

#[tokio::test]
async fn a_record_that_changes_on_every_read_stops_after_max_rereads_no_livelock() {
    check_loop_guard(GuardCase {
        name: "changes on every read, etag",
        style: Style::ChangesOnRead,
        concurrency: Some(json!({ "style": "etag" })),
        max_rereads: None,
        policies: json!([]),
        first: json!({ "email": "ada@new.example" }),
        second: json!({ "email": "ada.again@new.example" }),
        reread_rule: "delivery:version_conflict",
        writes: true,
        record_moves: true,
    })
    .await;
}

#[tokio::test]
async fn max_rereads_on_the_system_config_lowers_the_bound() {
    check_loop_guard(GuardCase {
        name: "changes on every read, etag, max_rereads 2",
        style: Style::ChangesOnRead,
        concurrency: Some(json!({ "style": "etag" })),
        max_rereads: Some(2),
        policies: json!([]),
        first: json!({ "email": "ada@new.example" }),
        second: json!({ "email": "ada.again@new.example" }),
        reread_rule: "delivery:version_conflict",
        writes: true,
        record_moves: true,
    })
    .await;
}

#[tokio::test]
async fn a_mapped_field_changing_on_every_read_without_concurrency_control_trips_the_guard() {
    check_loop_guard(GuardCase {
        name: "no concurrency control, title changes on every read",
        style: Style::TitleChangesOnRead,
        concurrency: None,
        max_rereads: None,
        // The title is the other side's: a different title in the vendor is written back.
        policies: json!([{ "object": "employee", "fields": [
            { "field": "job_title", "owner": "source", "conflict": "owner_wins", "non_owner": "revert" }
        ]}]),
        first: json!({ "title": "Principal Engineer" }),
        second: json!({ "title": "Distinguished Engineer" }),
        reread_rule: "delivery:changed_before_write",
        writes: false,
        record_moves: true,
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_refuses_its_own_weak_etags_is_a_dead_letter_at_once_no_livelock() {
    let name = "strong comparison refuses weak If-Match";
    let s = Setup::start(
        Style::StrongOnly,
        Some(json!({ "style": "etag" })),
        None,
        None,
        json!([]),
    )
    .await;
    let running = s.engine.start(s.cancel.child_token());
    s.source_edit(json!({ "email": "ada@new.example" }));
    s.wait_dead_letters("token_refused", 1).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let seen = s.server.requests_for(V1_PATH);
    println!("{name}: {}", summary(&seen));
    assert_eq!(
        (count(&seen, "GET"), count(&seen, "PATCH")),
        (2, 1),
        "{name}: a 412 whose re-read shows the very token the write carried is the system \
         refusing its own token: one read for the token, one write, one read to see it did not \
         change, then nothing (no re-read loop): {}",
        summary(&seen)
    );
    let dead = s.dead_letters("token_refused").await;
    assert_eq!(
        dead.len(),
        1,
        "{name}: one dead letter, class token_refused"
    );
    let request = dead[0]
        .request
        .as_ref()
        .expect("the dead letter keeps the request that was refused");
    assert_eq!(
        (request.method.as_str(), request.path.as_str()),
        ("PATCH", V1_PATH),
        "{name}: the dead letter shows the request as it was sent"
    );
    assert!(
        dead[0]
            .response_body
            .as_deref()
            .is_some_and(|b| b.contains("refuses its own concurrency token")),
        "{name}: the dead letter says why: {:?}",
        dead[0].response_body
    );
    assert!(
        s.open_unstable().await.is_empty(),
        "{name}: the record is not changing: no unstable_record exception"
    );
    running.shutdown(Duration::from_secs(5)).await;
}

// ---------------------------------------------------------------------------------------------
// 5. A version field holding a string.

async fn check_rev_field(conflict: u16) {
    let s = Setup::start(
        Style::RevField { conflict },
        Some(json!({ "style": "version_field", "field": "rev" })),
        Some("rev"),
        None,
        json!([]),
    )
    .await;
    let listed_rev = s.server.record(V1)["rev"].clone();
    assert!(
        listed_rev.as_str().is_some_and(|r| r.contains('#')),
        "the server's revision is a string like 2026-11-30T05:00:00.123Z#7: {listed_rev}"
    );

    // A person edits the title (the revision moves on); the engine, holding the listed
    // revision, writes the other side's new email.
    s.server.edit(V1, json!({ "title": "CTO" }));
    s.source_edit(json!({ "email": "ada@new.example" }));
    s.settle().await;

    let seen = s.server.requests_for(V1_PATH);
    println!(
        "rev field, conflict answered {conflict}: {}",
        summary(&seen)
    );
    let writes: Vec<&Seen> = seen.iter().filter(|r| r.method == "PATCH").collect();
    assert!(
        !writes.is_empty(),
        "the change is written: {}",
        summary(&seen)
    );
    assert_eq!(
        writes[0].body.as_ref().and_then(|b| b.get("rev")),
        Some(&listed_rev),
        "the write body carries rev exactly as read (a string, not a number or re-quoted text)"
    );
    assert_eq!(
        writes[0].status, conflict,
        "the stale revision is refused with {conflict}"
    );
    let sequence: Vec<String> = seen
        .iter()
        .map(|r| format!("{} {}", r.method, r.status))
        .collect();
    // What the engine made of the refusal, for the failure message.
    let dead: Vec<String> = s
        .engine
        .list_dead_letters(&DeadLetterFilter {
            status: Some("all".into()),
            ..DeadLetterFilter::default()
        })
        .await
        .expect("dead letters")
        .into_iter()
        .map(|d| {
            format!(
                "{} {} status={:?} body={:?}",
                d.system,
                d.error_class,
                d.response_status,
                d.response_body.unwrap_or_default()
            )
        })
        .collect();
    let rules = s.rules().await;
    assert_eq!(
        sequence,
        [
            format!("PATCH {conflict}"),
            "GET 200".to_owned(),
            "PATCH 200".to_owned()
        ],
        "a write refused ({conflict}) for a stale revision is re-read and retried once; the \
         engine instead left: dead letters {dead:?}, audit {rules:?}, server record {:?}",
        s.server.record(V1)
    );
    assert_eq!(
        seen[2].body.as_ref().and_then(|b| b.get("rev")).cloned(),
        seen[1].gave.clone().map(Value::from),
        "the retry carries the revision the re-read gave, exactly"
    );
    let v1 = s.server.record(V1);
    assert_eq!(
        (v1["title"].clone(), v1["email"].clone()),
        (json!("CTO"), json!("ada@new.example")),
        "no lost update: the person's title and the other side's email are both kept"
    );
    assert_eq!(
        s.scalar("SELECT COUNT(*) FROM dead_letters").await,
        0,
        "a stale revision is a conflict to merge, not a dead letter"
    );
}

#[tokio::test]
async fn a_string_version_field_is_sent_back_as_read_and_a_412_is_re_read_and_retried() {
    check_rev_field(412).await;
}

#[tokio::test]
async fn a_string_version_field_is_sent_back_as_read_and_a_409_is_re_read_and_retried() {
    check_rev_field(409).await;
}
