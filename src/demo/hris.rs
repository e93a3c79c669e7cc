//! "Acme HRIS": the demo's system of record for people, an HTTP server on 127.0.0.1.
//!
//! - `GET /api/v1/workers?page=&per_page=&updated_since=` lists workers as
//!   `{"data": [...], "meta": {"page", "per_page", "total"}}`;
//! - `GET /api/v1/workers/{id}` answers one worker with `ETag: "<version>"`;
//! - `POST /api/v1/workers` hires, `PATCH /api/v1/workers/{id}` edits (with `If-Match`: 412
//!   when the worker moved on), `DELETE /api/v1/workers/{id}` removes;
//! - every request needs `X-API-Key`; invalid writes get 422 with a JSON error naming the field;
//! - every change, whether made through the API or in the HRIS's own screens (the simulator),
//!   is posted as a signed webhook (`X-Acme-Timestamp`, `X-Acme-Signature: sha256=<HMAC of
//!   "{timestamp}.{body}">`) to the engine, in order, retried until accepted (bounded).
//!
//! The screens validate less than the API: people can type a hire date of "13/45/2024" there.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::get;
use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::http::{
    FieldProblem, Idempotency, MonotonicClock, RequestStats, etag_matches, is_date, json_response,
    merge_patch, parse_object, problem, serve_until, with_header,
};
use super::people::rfc3339;

pub(crate) const COLLECTION: &str = "/api/v1/workers";
pub(crate) const STATUSES: [&str; 3] = ["Active", "On Leave", "Terminated"];

#[derive(Debug, Clone)]
struct Worker {
    record: Map<String, Value>,
    version: i64,
    updated: DateTime<Utc>,
}

#[derive(Debug, Default)]
struct Store {
    /// Worker number (the digits of `W-1001`) -> worker.
    workers: BTreeMap<u64, Worker>,
    next_id: u64,
    next_event: u64,
    clock: MonotonicClock,
    idempotency: Idempotency,
    stats: RequestStats,
    /// Webhooks that were given up on (the engine kept refusing them).
    hooks_dropped: u64,
}

struct Inner {
    store: Mutex<Store>,
    api_key: String,
    webhook_key: String,
    hooks: mpsc::UnboundedSender<Value>,
    hooks_pending: AtomicUsize,
    addr: SocketAddr,
}

/// A running Acme HRIS. Cheap to clone.
#[derive(Clone)]
pub struct Hris {
    inner: Arc<Inner>,
}

/// A worker as the HRIS's screens see it: id and record.
pub type WorkerRecord = (String, Map<String, Value>);

impl Hris {
    /// Starts the HRIS on 127.0.0.1 with `seed` workers (records without id/version, with the
    /// time each was last updated), posting webhooks to `webhook_url`.
    pub(crate) async fn start(
        api_key: String,
        webhook_key: String,
        webhook_url: String,
        seed: Vec<(Map<String, Value>, DateTime<Utc>)>,
        cancel: CancellationToken,
    ) -> std::io::Result<Self> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let (tx, rx) = mpsc::unbounded_channel();
        let mut store = Store {
            next_id: 1001,
            ..Store::default()
        };
        for (mut record, updated) in seed {
            let n = store.next_id;
            store.next_id += 1;
            stamp(&mut record, n, 1, updated);
            store.workers.insert(
                n,
                Worker {
                    record,
                    version: 1,
                    updated,
                },
            );
        }
        let hris = Self {
            inner: Arc::new(Inner {
                store: Mutex::new(store),
                api_key,
                webhook_key,
                hooks: tx,
                hooks_pending: AtomicUsize::new(0),
                addr,
            }),
        };
        tokio::spawn(post_webhooks(hris.clone(), webhook_url, rx, cancel.clone()));
        let app = Router::new()
            .route(COLLECTION, get(list).post(create))
            .route(
                &format!("{COLLECTION}/{{id}}"),
                get(get_one).patch(patch).delete(delete),
            )
            .with_state(hris.clone());
        serve_until(listener, app, cancel);
        Ok(hris)
    }

    pub fn base_url(&self) -> String {
        format!("http://{}", self.inner.addr)
    }

    fn lock(&self) -> MutexGuard<'_, Store> {
        self.inner.store.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Every worker, in id order.
    pub fn records(&self) -> Vec<WorkerRecord> {
        self.lock()
            .workers
            .iter()
            .map(|(n, w)| (worker_id(*n), w.record.clone()))
            .collect()
    }

    pub fn record(&self, id: &str) -> Option<Map<String, Value>> {
        let n = parse_id(id)?;
        self.lock().workers.get(&n).map(|w| w.record.clone())
    }

    /// The worker with this employee number.
    pub fn by_employee(&self, employee_id: &str) -> Option<WorkerRecord> {
        self.lock()
            .workers
            .iter()
            .find(|(_, w)| w.record.get("employee_id").and_then(Value::as_str) == Some(employee_id))
            .map(|(n, w)| (worker_id(*n), w.record.clone()))
    }

    pub fn len(&self) -> usize {
        self.lock().workers.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn stats(&self) -> RequestStats {
        self.lock().stats.clone()
    }

    /// Webhooks emitted that the engine has not accepted yet.
    pub fn hooks_pending(&self) -> usize {
        self.inner.hooks_pending.load(Ordering::SeqCst)
    }

    pub fn hooks_dropped(&self) -> u64 {
        self.lock().hooks_dropped
    }

    /// Someone edits a worker in the HRIS's screens: no validation, a new version, a webhook.
    /// Returns false when there is no such worker.
    pub fn ui_edit(&self, id: &str, edit: impl FnOnce(&mut Map<String, Value>)) -> bool {
        let Some(n) = parse_id(id) else {
            return false;
        };
        let event = {
            let mut store = self.lock();
            let at = store.clock.tick();
            let Some(worker) = store.workers.get_mut(&n) else {
                return false;
            };
            edit(&mut worker.record);
            worker.version += 1;
            worker.updated = at;
            let version = worker.version;
            stamp(&mut worker.record, n, version, at);
            let record = worker.record.clone();
            event(&mut store, "worker.updated", record, at)
        };
        self.emit(event);
        true
    }

    /// Someone hires a worker in the HRIS's screens. Returns the new worker id.
    pub fn ui_create(&self, mut record: Map<String, Value>) -> String {
        let (id, event) = {
            let mut store = self.lock();
            let at = store.clock.tick();
            let n = store.next_id;
            store.next_id += 1;
            stamp(&mut record, n, 1, at);
            store.workers.insert(
                n,
                Worker {
                    record: record.clone(),
                    version: 1,
                    updated: at,
                },
            );
            (
                worker_id(n),
                event(&mut store, "worker.created", record, at),
            )
        };
        self.emit(event);
        id
    }

    fn emit(&self, event: Value) {
        self.inner.hooks_pending.fetch_add(1, Ordering::SeqCst);
        if self.inner.hooks.send(event).is_err() {
            self.inner.hooks_pending.fetch_sub(1, Ordering::SeqCst);
        }
    }

    /// The API's gate: a valid `X-API-Key`.
    fn authorized(&self, headers: &HeaderMap) -> Result<(), Box<Response>> {
        let given = headers.get("x-api-key").and_then(|v| v.to_str().ok());
        if given == Some(self.inner.api_key.as_str()) {
            return Ok(());
        }
        let response = error(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "a valid X-API-Key header is required",
        );
        self.lock().stats.count(StatusCode::UNAUTHORIZED);
        Err(Box::new(response))
    }

    fn answer(&self, store: &mut Store, response: Response) -> Response {
        store.stats.count(response.status());
        response
    }
}

fn worker_id(n: u64) -> String {
    format!("W-{n}")
}

fn parse_id(id: &str) -> Option<u64> {
    id.strip_prefix("W-")?.parse().ok()
}

fn stamp(record: &mut Map<String, Value>, n: u64, version: i64, at: DateTime<Utc>) {
    record.insert("id".into(), Value::String(worker_id(n)));
    record.insert("updated_at".into(), Value::String(rfc3339(at)));
    record.insert("version".into(), json!(version));
}

fn event(store: &mut Store, kind: &str, record: Map<String, Value>, at: DateTime<Utc>) -> Value {
    store.next_event += 1;
    json!({
        "id": format!("evt_{:08}", store.next_event),
        "type": kind,
        "occurred_at": rfc3339(at),
        "data": record,
    })
}

fn error(status: StatusCode, code: &str, message: &str) -> Response {
    json_response(
        status,
        json!({ "error": { "code": code, "message": message } }),
    )
}

fn invalid(problems: &[FieldProblem]) -> Response {
    let first = problems.first().cloned().unwrap_or_default();
    json_response(
        StatusCode::UNPROCESSABLE_ENTITY,
        json!({ "error": {
            "code": "invalid_field",
            "field": first.0,
            "message": first.1,
            "details": problems.iter().map(|(f, m)| json!({ "field": f, "message": m })).collect::<Vec<_>>(),
        } }),
    )
}

fn with_etag(response: Response, version: i64) -> Response {
    with_header(response, "etag", &format!("\"{version}\""))
}

/// The API's rules for the fields a write carries (the screens skip them).
fn validate(store: &Store, body: &Map<String, Value>, creating: bool) -> Vec<FieldProblem> {
    let mut problems = Vec::new();
    let text = |k: &str| body.get(k).and_then(Value::as_str);
    for required in ["employee_id", "full_name"] {
        let present = body.contains_key(required);
        if (creating || present) && text(required).is_none_or(|s| s.trim().is_empty()) {
            problems.push(problem(required, format!("{required} is required")));
        }
    }
    if let Some(v) = body.get("status")
        && !v.as_str().is_some_and(|s| STATUSES.contains(&s))
    {
        problems.push(problem(
            "status",
            format!("status must be one of {}", STATUSES.join(", ")),
        ));
    }
    for date in ["hire_date", "termination_date"] {
        match body.get(date) {
            None | Some(Value::Null) => {}
            Some(Value::String(s)) if is_date(s, "%m/%d/%Y") => {}
            Some(other) => problems.push(problem(
                date,
                format!("{date} must be a date as MM/DD/YYYY, got {other}"),
            )),
        }
    }
    if let Some(v) = body.get("salary") {
        let ok = v.as_str().is_some_and(|s| {
            let (whole, cents) = s.split_once('.').unwrap_or((s, "00"));
            !whole.is_empty()
                && whole.bytes().all(|b| b.is_ascii_digit())
                && cents.len() <= 2
                && cents.bytes().all(|b| b.is_ascii_digit())
        });
        if !ok {
            problems.push(problem(
                "salary",
                "salary must be a decimal string such as \"85000.00\"",
            ));
        }
    }
    if let Some(v) = body.get("work_email")
        && !v.as_str().is_some_and(|s| s.contains('@'))
    {
        problems.push(problem("work_email", "work_email must be an email address"));
    }
    if let Some(Value::String(manager)) = body.get("manager_id") {
        let exists = store
            .workers
            .values()
            .any(|w| w.record.get("employee_id").and_then(Value::as_str) == Some(manager.as_str()));
        if !exists {
            problems.push(problem(
                "manager_id",
                format!("manager_id {manager} is not an employee"),
            ));
        }
    }
    if let Some(v) = body.get("home_address")
        && !v.is_object()
    {
        problems.push(problem("home_address", "home_address must be an object"));
    }
    problems
}

/// Fields the API never takes from a client.
fn strip_read_only(body: &mut Map<String, Value>) {
    for k in ["id", "version", "updated_at"] {
        body.remove(k);
    }
}

async fn list(
    State(h): State<Hris>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    if let Err(r) = h.authorized(&headers) {
        return *r;
    }
    let mut store = h.lock();
    let page: usize = q
        .get("page")
        .and_then(|p| p.parse().ok())
        .unwrap_or(1)
        .max(1);
    let per_page: usize = q
        .get("per_page")
        .and_then(|p| p.parse().ok())
        .unwrap_or(25)
        .clamp(1, 200);
    let since = match q.get("updated_since") {
        None => None,
        Some(s) => match DateTime::parse_from_rfc3339(s) {
            Ok(t) => Some(t.with_timezone(&Utc)),
            Err(_) => {
                let r = error(
                    StatusCode::BAD_REQUEST,
                    "invalid_parameter",
                    "updated_since must be an RFC 3339 time",
                );
                return h.answer(&mut store, r);
            }
        },
    };
    let mut matching: Vec<(&u64, &Worker)> = store
        .workers
        .iter()
        .filter(|(_, w)| since.is_none_or(|s| w.updated >= s))
        .collect();
    if since.is_some() {
        matching.sort_by_key(|(n, w)| (w.updated, **n));
    }
    let total = matching.len();
    let data: Vec<Value> = matching
        .iter()
        .skip((page - 1).saturating_mul(per_page))
        .take(per_page)
        .map(|(_, w)| Value::Object(w.record.clone()))
        .collect();
    let r = json_response(
        StatusCode::OK,
        json!({ "data": data, "meta": { "page": page, "per_page": per_page, "total": total } }),
    );
    h.answer(&mut store, r)
}

async fn get_one(State(h): State<Hris>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    if let Err(r) = h.authorized(&headers) {
        return *r;
    }
    let mut store = h.lock();
    let found = parse_id(&id).and_then(|n| store.workers.get(&n)).cloned();
    let r = match found {
        Some(w) => with_etag(
            json_response(StatusCode::OK, Value::Object(w.record)),
            w.version,
        ),
        None => error(StatusCode::NOT_FOUND, "not_found", "no such worker"),
    };
    h.answer(&mut store, r)
}

async fn create(State(h): State<Hris>, headers: HeaderMap, body: Bytes) -> Response {
    if let Err(r) = h.authorized(&headers) {
        return *r;
    }
    let key = Idempotency::key(&headers);
    let (response, hook) = {
        let mut store = h.lock();
        if let Some(r) = store.idempotency.replay(key.as_ref()) {
            return h.answer(&mut store, r);
        }
        let mut body = match parse_object(&body) {
            Ok(b) => b,
            Err(m) => {
                let r = error(StatusCode::BAD_REQUEST, "invalid_json", &m);
                return h.answer(&mut store, r);
            }
        };
        strip_read_only(&mut body);
        let problems = validate(&store, &body, true);
        if !problems.is_empty() {
            let r = invalid(&problems);
            return h.answer(&mut store, r);
        }
        let employee = body.get("employee_id").cloned();
        if store
            .workers
            .values()
            .any(|w| w.record.get("employee_id") == employee.as_ref())
        {
            let r = error(
                StatusCode::CONFLICT,
                "duplicate",
                "a worker with this employee_id exists",
            );
            return h.answer(&mut store, r);
        }
        let at = store.clock.tick();
        let n = store.next_id;
        store.next_id += 1;
        let mut record = Map::new();
        merge_patch(&mut record, body);
        stamp(&mut record, n, 1, at);
        store.workers.insert(
            n,
            Worker {
                record: record.clone(),
                version: 1,
                updated: at,
            },
        );
        let value = Value::Object(record.clone());
        store.idempotency.remember(key, StatusCode::CREATED, &value);
        let hook = event(&mut store, "worker.created", record, at);
        let r = with_etag(json_response(StatusCode::CREATED, value), 1);
        (h.answer(&mut store, r), hook)
    };
    h.emit(hook);
    response
}

async fn patch(
    State(h): State<Hris>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    if let Err(r) = h.authorized(&headers) {
        return *r;
    }
    let key = Idempotency::key(&headers);
    let if_match = headers
        .get("if-match")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let (response, hook) = {
        let mut store = h.lock();
        if let Some(r) = store.idempotency.replay(key.as_ref()) {
            return h.answer(&mut store, r);
        }
        let Some(n) = parse_id(&id).filter(|n| store.workers.contains_key(n)) else {
            let r = error(StatusCode::NOT_FOUND, "not_found", "no such worker");
            return h.answer(&mut store, r);
        };
        let mut body = match parse_object(&body) {
            Ok(b) => b,
            Err(m) => {
                let r = error(StatusCode::BAD_REQUEST, "invalid_json", &m);
                return h.answer(&mut store, r);
            }
        };
        let current = store.workers.get(&n).map_or(0, |w| w.version);
        if let Some(tags) = &if_match
            && !etag_matches(tags, current)
        {
            let r = with_etag(
                error(
                    StatusCode::PRECONDITION_FAILED,
                    "version_mismatch",
                    &format!("the worker is at version {current}"),
                ),
                current,
            );
            return h.answer(&mut store, r);
        }
        strip_read_only(&mut body);
        let problems = validate(&store, &body, false);
        if !problems.is_empty() {
            let r = invalid(&problems);
            return h.answer(&mut store, r);
        }
        let at = store.clock.tick();
        let Some(worker) = store.workers.get_mut(&n) else {
            let r = error(StatusCode::NOT_FOUND, "not_found", "no such worker");
            return h.answer(&mut store, r);
        };
        merge_patch(&mut worker.record, body);
        worker.version += 1;
        worker.updated = at;
        let version = worker.version;
        stamp(&mut worker.record, n, version, at);
        let record = worker.record.clone();
        let value = Value::Object(record.clone());
        store.idempotency.remember(key, StatusCode::OK, &value);
        let hook = event(&mut store, "worker.updated", record, at);
        let r = with_etag(json_response(StatusCode::OK, value), version);
        (h.answer(&mut store, r), hook)
    };
    h.emit(hook);
    response
}

async fn delete(State(h): State<Hris>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    if let Err(r) = h.authorized(&headers) {
        return *r;
    }
    let (response, hook) = {
        let mut store = h.lock();
        let removed = parse_id(&id).and_then(|n| store.workers.remove(&n));
        let Some(worker) = removed else {
            let r = error(StatusCode::NOT_FOUND, "not_found", "no such worker");
            return h.answer(&mut store, r);
        };
        let at = store.clock.tick();
        let hook = event(&mut store, "worker.deleted", worker.record, at);
        let r = json_response(StatusCode::OK, json!({ "id": id, "deleted": true }));
        (h.answer(&mut store, r), hook)
    };
    h.emit(hook);
    response
}

/// Posts webhooks in order, each retried with backoff until the engine accepts it (2xx); a
/// refusal (4xx) or two minutes of failures drops it, as real systems do.
async fn post_webhooks(
    hris: Hris,
    url: String,
    mut rx: mpsc::UnboundedReceiver<Value>,
    cancel: CancellationToken,
) {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap_or_default();
    loop {
        let event = tokio::select! {
            () = cancel.cancelled() => return,
            e = rx.recv() => match e { Some(e) => e, None => return },
        };
        let body = event.to_string();
        let started = tokio::time::Instant::now();
        let mut attempt = 0u32;
        let delivered = loop {
            let ts = Utc::now().timestamp();
            let signature =
                crate::connectors::rest::sign_webhook(&hris.inner.webhook_key, ts, body.as_bytes());
            let sent = client
                .post(&url)
                .header("content-type", "application/json")
                .header("x-acme-timestamp", ts.to_string())
                .header("x-acme-signature", format!("sha256={signature}"))
                .body(body.clone())
                .send()
                .await;
            match sent {
                Ok(r) if r.status().is_success() => break true,
                Ok(r) if r.status().is_client_error() => {
                    tracing::warn!(status = %r.status(), "Acme HRIS: the engine refused a webhook");
                    break false;
                }
                _ => {}
            }
            if started.elapsed() > Duration::from_secs(120) {
                break false;
            }
            attempt += 1;
            let wait = Duration::from_millis(50u64.saturating_mul(1 << attempt.min(5)));
            tokio::select! {
                () = cancel.cancelled() => return,
                () = tokio::time::sleep(wait) => {}
            }
        };
        if !delivered {
            hris.lock().hooks_dropped += 1;
        }
        hris.inner.hooks_pending.fetch_sub(1, Ordering::SeqCst);
    }
}
