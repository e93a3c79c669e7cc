//! A small, real HTTP record store on 127.0.0.1: the system Concord syncs in its self-check and
//! tests. It keeps records with versions, honours `Idempotency-Key` (a repeated key returns
//! the first response and applies nothing) and `If-Match` (412 when the record moved on),
//! counts what it receives, fails on purpose when told to, and posts a webhook to the engine
//! for every change, retrying until the engine accepts it: a record's webhooks in order,
//! different records' side by side ([`WEBHOOK_LANES`]). Its webhooks carry
//! `Authorization: Bearer <hook_token>`: the engine accepts them once the system's
//! `webhook_secret` names a secret holding that token.
//!
//! A benchmark can watch it work through [`LoopbackSystem::observe`]: each write applied and
//! each webhook answered is reported with the instant it happened.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Map, Value, json};
use tokio::sync::mpsc;

/// A failure to answer with, instead of handling a write.
#[derive(Debug, Clone, PartialEq)]
pub struct Failure {
    pub status: u16,
    pub retry_after: Option<u64>,
    pub body: String,
}

#[derive(Debug, Default)]
struct Store {
    /// By id, in id order: listings page through them.
    records: BTreeMap<String, (Map<String, Value>, i64)>,
    next_id: u64,
    version_clock: i64,
    /// Idempotency key -> (status, body) of the first response.
    seen_keys: HashMap<String, (u16, Value)>,
    requests_per_key: HashMap<String, u32>,
    writes_applied: u64,
    write_requests: u64,
    scripted: VecDeque<Failure>,
    deleted: Vec<String>,
    /// Records whose writes are held this long before they are handled.
    stalls: HashMap<String, Duration>,
}

/// What a system reports to its observer, as it happens.
#[derive(Debug, Clone)]
pub enum Observed {
    /// A create or update sent to the system was applied: the record as it is now, and the
    /// instant it changed (taken under the store's lock, just before the answer is sent).
    Write {
        id: String,
        record: Map<String, Value>,
        at: Instant,
    },
    /// A webhook was answered: its event key, when its first attempt started, when the last
    /// attempt was answered, and that answer's status (`None`: no answer, it was given up).
    Hook {
        event_key: String,
        posted: Instant,
        answered: Instant,
        status: Option<u16>,
    },
}

/// Where a system reports what it does, once someone observes it.
type Observer = Arc<OnceLock<mpsc::UnboundedSender<Observed>>>;

#[derive(Clone)]
pub struct LoopbackSystem {
    name: String,
    object: String,
    addr: SocketAddr,
    store: Arc<Mutex<Store>>,
    hooks: Option<mpsc::UnboundedSender<Value>>,
    /// Webhooks emitted and not yet accepted by the engine.
    hooks_pending: Arc<std::sync::atomic::AtomicUsize>,
    /// The bearer secret sent with every webhook.
    hook_token: Arc<str>,
    /// Unset (nothing is reported) until [`LoopbackSystem::observe`] is called.
    observer: Observer,
}

/// What a system has seen, for assertions.
#[derive(Debug, Clone, PartialEq)]
pub struct Stats {
    pub writes_applied: u64,
    pub write_requests: u64,
    /// Requests that repeated an idempotency key already applied.
    pub repeated_keys: u64,
    pub max_requests_per_key: u32,
}

impl LoopbackSystem {
    /// Starts a system serving `/{collection}` for `object`. With `webhook_url`, every change
    /// is posted there as a change event.
    pub async fn start(
        name: &str,
        object: &str,
        collection: &str,
        webhook_url: Option<String>,
    ) -> std::io::Result<Self> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let hooks_pending = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let hook_token: Arc<str> = {
            use rand::Rng;
            let bytes: [u8; 24] = rand::thread_rng().r#gen();
            hex::encode(bytes).into()
        };
        let observer = Observer::default();
        let hooks = webhook_url.map(|url| {
            let (tx, rx) = mpsc::unbounded_channel();
            tokio::spawn(post_hooks(
                url,
                hook_token.clone(),
                rx,
                hooks_pending.clone(),
                observer.clone(),
            ));
            tx
        });
        let system = Self {
            name: name.to_owned(),
            object: object.to_owned(),
            addr,
            store: Arc::new(Mutex::new(Store::default())),
            hooks,
            hooks_pending,
            hook_token,
            observer,
        };
        let app = Router::new()
            .route(collection, get(list).post(create))
            .route(
                &format!("{collection}/{{id}}"),
                get(get_one).patch(patch).put(put).delete(delete),
            )
            .with_state(system.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(system)
    }

    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The bearer secret this system's webhooks carry: store it under the name the system's
    /// `webhook_secret` gives, in the engine's secret store.
    pub fn hook_token(&self) -> crate::secrets::Secret {
        crate::secrets::Secret::new(&*self.hook_token)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Store> {
        self.store.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The next `n` writes fail with `status` (and `Retry-After` seconds, if given).
    pub fn fail_next(&self, n: usize, status: u16, retry_after: Option<u64>) {
        let mut store = self.lock();
        for _ in 0..n {
            store.scripted.push_back(Failure {
                status,
                retry_after,
                body: json!({ "error": format!("injected failure {status}") }).to_string(),
            });
        }
    }

    /// The next write fails with `status` and this body, as a system that echoes the
    /// offending record in its error.
    pub fn fail_next_with(&self, status: u16, body: Value) {
        self.lock().scripted.push_back(Failure {
            status,
            retry_after: None,
            body: body.to_string(),
        });
    }

    /// Writes to record `id` are held `delay` before they are handled, as a system that is
    /// slow on one record (a lock, a long validation) would hold them.
    pub fn stall_writes_to(&self, id: &str, delay: Duration) {
        self.lock().stalls.insert(id.to_owned(), delay);
    }

    async fn stall(&self, id: &str) {
        let delay = self.lock().stalls.get(id).copied();
        if let Some(delay) = delay {
            tokio::time::sleep(delay).await;
        }
    }

    pub fn record(&self, id: &str) -> Option<Map<String, Value>> {
        self.lock().records.get(id).map(|(r, _)| r.clone())
    }

    /// How many records the system holds (without copying them).
    pub fn len(&self) -> usize {
        self.lock().records.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn records(&self) -> Vec<(String, Map<String, Value>)> {
        let mut all: Vec<_> = self
            .lock()
            .records
            .iter()
            .map(|(k, (r, _))| (k.clone(), r.clone()))
            .collect();
        all.sort_by(|a, b| a.0.cmp(&b.0));
        all
    }

    pub fn was_deleted(&self, id: &str) -> bool {
        self.lock().deleted.iter().any(|d| d == id)
    }

    pub fn stats(&self) -> Stats {
        let store = self.lock();
        Stats {
            writes_applied: store.writes_applied,
            write_requests: store.write_requests,
            repeated_keys: store
                .requests_per_key
                .values()
                .map(|n| u64::from(n.saturating_sub(1)))
                .sum(),
            max_requests_per_key: store.requests_per_key.values().copied().max().unwrap_or(0),
        }
    }

    /// A person edits a record in this system (creating it if `id` is new): fields are merged,
    /// the version moves on, and a webhook goes out.
    pub fn edit(&self, id: &str, fields: Value) -> i64 {
        let event = {
            let mut store = self.lock();
            store.version_clock += 1;
            let version = store.version_clock;
            let entry = store
                .records
                .entry(id.to_owned())
                .or_insert_with(|| (Map::new(), 0));
            if let Value::Object(f) = fields {
                for (k, v) in f {
                    entry.0.insert(k, v);
                }
            }
            entry.0.insert("id".into(), Value::String(id.to_owned()));
            entry.0.insert("version".into(), json!(version));
            entry.1 = version;
            self.event("upsert", id, &entry.0.clone(), version)
        };
        self.emit(event.clone());
        event["version"].as_i64().unwrap_or_default()
    }

    /// Records the system held before Concord was connected: stored with a version, no webhook.
    pub fn seed(&self, records: impl IntoIterator<Item = (String, Map<String, Value>)>) {
        let mut store = self.lock();
        for (id, mut fields) in records {
            store.version_clock += 1;
            let version = store.version_clock;
            fields.insert("id".into(), Value::String(id.clone()));
            fields.insert("version".into(), json!(version));
            store.records.insert(id, (fields, version));
        }
    }

    /// A person deletes a record in this system.
    pub fn remove(&self, id: &str) {
        let event = {
            let mut store = self.lock();
            store.version_clock += 1;
            let version = store.version_clock;
            store.records.remove(id);
            store.deleted.push(id.to_owned());
            self.event("delete", id, &Map::new(), version)
        };
        self.emit(event);
    }

    /// Re-sends the last webhook of a record (a duplicate delivery).
    pub fn resend(&self, id: &str) {
        let event = {
            let store = self.lock();
            store
                .records
                .get(id)
                .map(|(r, v)| self.event("upsert", id, r, *v))
        };
        if let Some(e) = event {
            self.emit(e);
        }
    }

    fn event(&self, op: &str, id: &str, record: &Map<String, Value>, version: i64) -> Value {
        json!({
            "object": self.object,
            "external_id": id,
            "op": op,
            "record": record,
            "version": version,
            "etag": format!("\"{version}\""),
            "source_ts": chrono::Utc::now(),
            "event_key": format!("{}:{id}:v{version}", self.name),
        })
    }

    fn emit(&self, event: Value) {
        if let Some(tx) = &self.hooks {
            self.hooks_pending
                .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            if tx.send(event).is_err() {
                self.hooks_pending
                    .fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
            }
        }
    }

    /// From now on, every write this system applies and every webhook it has answered is
    /// reported on the returned channel, which the caller must keep draining. A system has one
    /// observer: a second call returns `None`.
    pub fn observe(&self) -> Option<mpsc::UnboundedReceiver<Observed>> {
        let (tx, rx) = mpsc::unbounded_channel();
        self.observer.set(tx).ok()?;
        Some(rx)
    }

    /// Webhooks emitted that the engine has not accepted yet.
    pub fn hooks_pending(&self) -> usize {
        self.hooks_pending.load(std::sync::atomic::Ordering::SeqCst)
    }

    fn apply_write(
        &self,
        headers: &HeaderMap,
        id: Option<&str>,
        body: Option<Map<String, Value>>,
        replace: bool,
        delete: bool,
    ) -> Response {
        let key = headers
            .get("idempotency-key")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let if_match = headers
            .get("if-match")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim_matches('"').parse::<i64>().ok());
        let mut observed = None;
        let (status, value, event) = {
            let mut store = self.lock();
            store.write_requests += 1;
            if let Some(k) = &key {
                *store.requests_per_key.entry(k.clone()).or_default() += 1;
                if let Some((status, body)) = store.seen_keys.get(k) {
                    let status = StatusCode::from_u16(*status).unwrap_or(StatusCode::OK);
                    return (status, Json(body.clone())).into_response();
                }
            }
            if let Some(f) = store.scripted.pop_front() {
                let mut response = (
                    StatusCode::from_u16(f.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
                    f.body,
                )
                    .into_response();
                if let Some(secs) = f.retry_after
                    && let Ok(v) = secs.to_string().parse()
                {
                    response.headers_mut().insert("retry-after", v);
                }
                return response;
            }
            let current = id.and_then(|id| store.records.get(id).map(|(_, v)| *v));
            if id.is_some() && current.is_none() {
                return (
                    StatusCode::NOT_FOUND,
                    Json(json!({ "error": "no such record" })),
                )
                    .into_response();
            }
            if let (Some(expected), Some(current)) = (if_match, current)
                && expected != current
            {
                return (
                    StatusCode::PRECONDITION_FAILED,
                    Json(json!({ "error": "version mismatch", "current": current })),
                )
                    .into_response();
            }
            store.version_clock += 1;
            let version = store.version_clock;
            store.writes_applied += 1;
            let (status, value, event) = if delete {
                let id = id.unwrap_or_default().to_owned();
                store.records.remove(&id);
                store.deleted.push(id.clone());
                (
                    StatusCode::OK,
                    json!({ "id": id, "version": version }),
                    self.event("delete", &id, &Map::new(), version),
                )
            } else {
                let id = match id {
                    Some(id) => id.to_owned(),
                    None => {
                        store.next_id += 1;
                        format!("{}-{}", self.name, store.next_id)
                    }
                };
                let entry = store
                    .records
                    .entry(id.clone())
                    .or_insert_with(|| (Map::new(), 0));
                if replace {
                    entry.0.clear();
                }
                for (k, v) in body.unwrap_or_default() {
                    entry.0.insert(k, v);
                }
                entry.0.insert("id".into(), Value::String(id.clone()));
                entry.0.insert("version".into(), json!(version));
                entry.1 = version;
                let record = entry.0.clone();
                if self.observer.get().is_some() {
                    observed = Some(Observed::Write {
                        id: id.clone(),
                        record: record.clone(),
                        at: Instant::now(),
                    });
                }
                let status = if current.is_none() {
                    StatusCode::CREATED
                } else {
                    StatusCode::OK
                };
                (
                    status,
                    Value::Object(record.clone()),
                    self.event("upsert", &id, &record, version),
                )
            };
            if let Some(k) = key {
                store.seen_keys.insert(k, (status.as_u16(), value.clone()));
            }
            (status, value, event)
        };
        if let (Some(o), Some(tx)) = (observed, self.observer.get()) {
            let _ = tx.send(o);
        }
        self.emit(event);
        (status, Json(value)).into_response()
    }
}

/// Webhooks a system posts at once, each lane in order: a record's changes always take the
/// same lane, so they arrive in the order they happened, while changes to different records
/// do not wait for each other, as with the webhook senders of the systems Concord syncs.
pub const WEBHOOK_LANES: usize = 8;

/// Spreads webhooks over [`WEBHOOK_LANES`] lanes by record id; each lane posts its own in
/// order, retrying each until the engine accepts it (bounded).
async fn post_hooks(
    url: String,
    token: Arc<str>,
    mut rx: mpsc::UnboundedReceiver<Value>,
    pending: Arc<std::sync::atomic::AtomicUsize>,
    observer: Observer,
) {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap_or_default();
    let lanes: Vec<mpsc::UnboundedSender<Value>> = (0..WEBHOOK_LANES)
        .map(|_| {
            let (tx, lane) = mpsc::unbounded_channel();
            tokio::spawn(post_lane(
                client.clone(),
                url.clone(),
                token.clone(),
                lane,
                pending.clone(),
                observer.clone(),
            ));
            tx
        })
        .collect();
    while let Some(event) = rx.recv().await {
        let lane = lane_of(event["external_id"].as_str().unwrap_or_default());
        if lanes[lane].send(event).is_err() {
            pending.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
        }
    }
}

/// The lane of a record's webhooks: the same for every change of one record.
fn lane_of(external_id: &str) -> usize {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    external_id.hash(&mut hasher);
    usize::try_from(hasher.finish() % WEBHOOK_LANES as u64).unwrap_or(0)
}

/// Posts one lane's webhooks in order; each is retried until the engine accepts it (bounded).
async fn post_lane(
    client: reqwest::Client,
    url: String,
    token: Arc<str>,
    mut rx: mpsc::UnboundedReceiver<Value>,
    pending: Arc<std::sync::atomic::AtomicUsize>,
    observer: Observer,
) {
    while let Some(event) = rx.recv().await {
        let posted = Instant::now();
        let mut status = None;
        for attempt in 0..2_400u32 {
            match client
                .post(&url)
                .bearer_auth(&token)
                .json(&event)
                .send()
                .await
            {
                Ok(r) if r.status().is_success() || r.status().is_client_error() => {
                    status = Some(r.status().as_u16());
                    break;
                }
                _ => {
                    tokio::time::sleep(Duration::from_millis(25 + u64::from(attempt.min(8)) * 25))
                        .await
                }
            }
        }
        if let Some(tx) = observer.get() {
            let _ = tx.send(Observed::Hook {
                event_key: event["event_key"].as_str().unwrap_or_default().to_owned(),
                posted,
                answered: Instant::now(),
                status,
            });
        }
        pending.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
    }
}

/// `?offset=&limit=` pages a listing (in id order); without `limit` it is whole.
#[derive(Debug, serde::Deserialize)]
struct Page {
    offset: Option<usize>,
    limit: Option<usize>,
}

async fn list(State(s): State<LoopbackSystem>, Query(page): Query<Page>) -> Json<Value> {
    let store = s.lock();
    // Records are copied only once they are in the page: copying the ones skipped made
    // listing a million records in pages take time in the square of their number.
    let all = store.records.values();
    let page: Vec<Value> = match page.limit {
        Some(limit) => all
            .skip(page.offset.unwrap_or(0))
            .take(limit)
            .map(|(r, _)| Value::Object(r.clone()))
            .collect(),
        None => all.map(|(r, _)| Value::Object(r.clone())).collect(),
    };
    Json(Value::Array(page))
}

async fn get_one(State(s): State<LoopbackSystem>, Path(id): Path<String>) -> Response {
    match s.record(&id) {
        Some(r) => Json(Value::Object(r)).into_response(),
        None => (
            StatusCode::NOT_FOUND,
            Json(json!({ "error": "no such record" })),
        )
            .into_response(),
    }
}

async fn create(
    State(s): State<LoopbackSystem>,
    headers: HeaderMap,
    Json(body): Json<Map<String, Value>>,
) -> Response {
    s.apply_write(&headers, None, Some(body), false, false)
}

async fn patch(
    State(s): State<LoopbackSystem>,
    Path(id): Path<String>,
    headers: HeaderMap,
    Json(body): Json<Map<String, Value>>,
) -> Response {
    s.stall(&id).await;
    s.apply_write(&headers, Some(&id), Some(body), false, false)
}

async fn put(
    State(s): State<LoopbackSystem>,
    Path(id): Path<String>,
    headers: HeaderMap,
    Json(body): Json<Map<String, Value>>,
) -> Response {
    s.stall(&id).await;
    s.apply_write(&headers, Some(&id), Some(body), true, false)
}

async fn delete(
    State(s): State<LoopbackSystem>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    s.stall(&id).await;
    s.apply_write(&headers, Some(&id), None, false, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_observer_hears_applied_writes_and_answered_webhooks() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("binds");
        let hooks = listener.local_addr().expect("has an address");
        tokio::spawn(async move {
            let app = Router::new().route(
                "/hook",
                axum::routing::post(|| async { StatusCode::ACCEPTED }),
            );
            let _ = axum::serve(listener, app).await;
        });
        let system = LoopbackSystem::start(
            "s",
            "employee",
            "/employees",
            Some(format!("http://{hooks}/hook")),
        )
        .await
        .expect("starts");
        let mut observed = system.observe().expect("the first observer");
        assert!(system.observe().is_none(), "a system has one observer");

        // A person's edit is not a write sent to the system: only its webhook is reported.
        let version = system.edit("A", json!({ "name": "before" }));
        let response = reqwest::Client::new()
            .patch(format!("{}/employees/A", system.base_url()))
            .json(&json!({ "name": "after" }))
            .send()
            .await
            .expect("the write is answered");
        assert!(response.status().is_success());

        let (mut hooks, mut writes) = (Vec::new(), Vec::new());
        while hooks.len() < 2 || writes.is_empty() {
            let next = tokio::time::timeout(Duration::from_secs(30), observed.recv())
                .await
                .expect("reported before the guard runs out")
                .expect("the channel stays open");
            match next {
                Observed::Hook {
                    event_key,
                    posted,
                    answered,
                    status,
                } => {
                    assert!(answered >= posted);
                    assert_eq!(status, Some(202));
                    hooks.push(event_key);
                }
                Observed::Write { id, record, .. } => writes.push((id, record["name"].clone())),
            }
        }
        assert_eq!(hooks[0], format!("s:A:v{version}"));
        assert_eq!(writes, vec![("A".to_owned(), json!("after"))]);
    }
}
