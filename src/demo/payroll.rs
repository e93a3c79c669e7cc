//! "Acme Payroll": the demo's payroll provider, an HTTP server on 127.0.0.1 with an API
//! different from the HRIS's in every way that matters to a sync engine.
//!
//! - `POST /oauth/token` (form: `grant_type=client_credentials`, `client_id`, `client_secret`)
//!   issues Bearer tokens that expire after five minutes; every other route needs one;
//! - `GET /v2/employees?limit=&cursor=&modified_after=` pages with an opaque cursor:
//!   `{"items": [...], "next_cursor": "..." | null}`, the count in `X-Total-Count`;
//! - `GET/PUT/PATCH/DELETE /v2/employees/{id}`, `POST /v2/employees`; writes carry the
//!   record's `row_version` in the body and get 412 when it moved on; invalid writes get 422
//!   (payroll only pays US phone numbers and salaries up to $500,000);
//! - no webhooks: it must be polled;
//! - 25 requests a second, then 429 with `Retry-After: 1`; and, as real providers do, it fails a
//!   small share of requests (503, 429) and answers some slowly, in a sequence fixed by the seed.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use chrono::{DateTime, Utc};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Map, Value, json};
use tokio_util::sync::CancellationToken;

use super::http::{
    FieldProblem, Idempotency, MonotonicClock, RequestStats, is_date, json_response, merge_patch,
    parse_object, problem, serve_until, with_header,
};
use super::people::rfc3339;

pub(crate) const COLLECTION: &str = "/v2/employees";
pub(crate) const TOKEN_PATH: &str = "/oauth/token";
pub(crate) const CLIENT_ID: &str = "concord-demo";
/// Requests a second the API serves before answering 429.
pub const RATE_LIMIT: f64 = 25.0;
/// The largest salary payroll takes, in cents ($500,000).
pub const SALARY_CAP_CENTS: i64 = 50_000_000;
const TOKEN_TTL_SECS: u64 = 300;
const PAY_FREQUENCIES: [&str; 4] = ["weekly", "biweekly", "semimonthly", "monthly"];

/// How often the API misbehaves on its own.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Flakiness {
    pub unavailable: f64,
    pub throttled: f64,
    pub slow: f64,
    pub slow_by: Duration,
}

impl Default for Flakiness {
    fn default() -> Self {
        Self {
            unavailable: 0.03,
            throttled: 0.01,
            slow: 0.02,
            slow_by: Duration::from_millis(1500),
        }
    }
}

#[derive(Debug, Clone)]
struct Employee {
    record: Map<String, Value>,
    version: i64,
    modified: DateTime<Utc>,
}

#[derive(Debug)]
struct Store {
    /// Employee number (the digits of `P-5001`) -> employee.
    employees: BTreeMap<u64, Employee>,
    next_id: u64,
    clock: MonotonicClock,
    idempotency: Idempotency,
    stats: RequestStats,
    tokens: HashMap<String, Instant>,
    /// Token bucket of the rate limit.
    bucket: f64,
    bucket_at: Instant,
    chaos: StdRng,
    token_rng: StdRng,
    /// When the records last changed, and when a listing last showed them.
    last_change: Instant,
    last_listing: Instant,
}

struct Inner {
    store: Mutex<Store>,
    client_secret: String,
    flakiness: Flakiness,
    addr: SocketAddr,
}

/// A running Acme Payroll. Cheap to clone.
#[derive(Clone)]
pub struct Payroll {
    inner: Arc<Inner>,
}

/// An employee as payroll's screens see it: id and record.
pub type EmployeeRecord = (String, Map<String, Value>);

impl Payroll {
    /// Starts payroll on 127.0.0.1 with `seed` employees (records without id/version, with
    /// the time each was last modified). `seed_value` fixes its sequence of failures.
    pub(crate) async fn start(
        client_secret: String,
        seed_value: u64,
        flakiness: Flakiness,
        seed: Vec<(Map<String, Value>, DateTime<Utc>)>,
        cancel: CancellationToken,
    ) -> std::io::Result<Self> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let now = Instant::now();
        let mut store = Store {
            employees: BTreeMap::new(),
            next_id: 5001,
            clock: MonotonicClock::default(),
            idempotency: Idempotency::default(),
            stats: RequestStats::default(),
            tokens: HashMap::new(),
            bucket: RATE_LIMIT,
            bucket_at: now,
            chaos: StdRng::seed_from_u64(seed_value ^ 0x9A7_0011),
            token_rng: StdRng::seed_from_u64(seed_value ^ 0x7_0CE2),
            last_change: now,
            last_listing: now,
        };
        for (mut record, modified) in seed {
            let n = store.next_id;
            store.next_id += 1;
            stamp(&mut record, n, 1, modified);
            store.employees.insert(
                n,
                Employee {
                    record,
                    version: 1,
                    modified,
                },
            );
        }
        let payroll = Self {
            inner: Arc::new(Inner {
                store: Mutex::new(store),
                client_secret,
                flakiness,
                addr,
            }),
        };
        let app = Router::new()
            .route(TOKEN_PATH, post(token))
            .route(COLLECTION, get(list).post(create))
            .route(
                &format!("{COLLECTION}/{{id}}"),
                get(get_one).put(put).patch(patch).delete(delete),
            )
            .with_state(payroll.clone());
        serve_until(listener, app, cancel);
        Ok(payroll)
    }

    pub fn base_url(&self) -> String {
        format!("http://{}", self.inner.addr)
    }

    fn lock(&self) -> MutexGuard<'_, Store> {
        self.inner.store.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Every employee, in id order.
    pub fn records(&self) -> Vec<EmployeeRecord> {
        self.lock()
            .employees
            .iter()
            .map(|(n, e)| (employee_id(*n), e.record.clone()))
            .collect()
    }

    pub fn record(&self, id: &str) -> Option<Map<String, Value>> {
        let n = parse_id(id)?;
        self.lock().employees.get(&n).map(|e| e.record.clone())
    }

    /// The employee with this employee number.
    pub fn by_employee(&self, emp_no: &str) -> Option<EmployeeRecord> {
        self.lock()
            .employees
            .iter()
            .find(|(_, e)| e.record.get("emp_no").and_then(Value::as_str) == Some(emp_no))
            .map(|(n, e)| (employee_id(*n), e.record.clone()))
    }

    pub fn len(&self) -> usize {
        self.lock().employees.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn stats(&self) -> RequestStats {
        self.lock().stats.clone()
    }

    /// Whether a successful listing was served after the last change (a poller has seen
    /// everything), and how long ago the last change was.
    pub fn listed_since_last_change(&self) -> (bool, Duration) {
        let store = self.lock();
        (
            store.last_listing > store.last_change,
            store.last_change.elapsed(),
        )
    }

    /// Someone edits an employee in payroll's screens: no validation, a new row version.
    /// Returns false when there is no such employee.
    pub fn ui_edit(&self, id: &str, edit: impl FnOnce(&mut Map<String, Value>)) -> bool {
        let Some(n) = parse_id(id) else {
            return false;
        };
        let mut store = self.lock();
        let at = store.clock.tick();
        let Some(employee) = store.employees.get_mut(&n) else {
            return false;
        };
        edit(&mut employee.record);
        employee.version += 1;
        employee.modified = at;
        let version = employee.version;
        stamp(&mut employee.record, n, version, at);
        store.last_change = Instant::now();
        true
    }

    /// Someone adds an employee in payroll's screens. Returns the new id.
    pub fn ui_create(&self, mut record: Map<String, Value>) -> String {
        let mut store = self.lock();
        let at = store.clock.tick();
        let n = store.next_id;
        store.next_id += 1;
        stamp(&mut record, n, 1, at);
        store.employees.insert(
            n,
            Employee {
                record,
                version: 1,
                modified: at,
            },
        );
        store.last_change = Instant::now();
        employee_id(n)
    }

    /// The gate every `/v2` request passes: a live token, the rate limit, then the API's own
    /// bad moments. Returns how long to stall before answering.
    fn gate(&self, headers: &HeaderMap) -> Result<Option<Duration>, Box<Response>> {
        let mut store = self.lock();
        let token = headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim);
        let valid = token
            .and_then(|t| store.tokens.get(t))
            .is_some_and(|expiry| *expiry > Instant::now());
        if !valid {
            let r = with_header(
                json_response(
                    StatusCode::UNAUTHORIZED,
                    json!({ "error": "invalid_token", "error_description": "a valid Bearer token is required" }),
                ),
                "www-authenticate",
                "Bearer error=\"invalid_token\"",
            );
            store.stats.count(StatusCode::UNAUTHORIZED);
            return Err(Box::new(r));
        }
        let now = Instant::now();
        let refill = now.duration_since(store.bucket_at).as_secs_f64() * RATE_LIMIT;
        store.bucket = (store.bucket + refill).min(RATE_LIMIT);
        store.bucket_at = now;
        if store.bucket < 1.0 {
            store.stats.count(StatusCode::TOO_MANY_REQUESTS);
            return Err(Box::new(throttled(
                "rate limit of 25 requests per second exceeded",
            )));
        }
        store.bucket -= 1.0;
        let f = self.inner.flakiness;
        let roll: f64 = store.chaos.r#gen();
        if roll < f.unavailable {
            store.stats.count(StatusCode::SERVICE_UNAVAILABLE);
            return Err(Box::new(json_response(
                StatusCode::SERVICE_UNAVAILABLE,
                json!({ "error": "service_unavailable", "message": "payroll is busy; try again" }),
            )));
        }
        if roll < f.unavailable + f.throttled {
            store.stats.count(StatusCode::TOO_MANY_REQUESTS);
            return Err(Box::new(throttled("too many requests for this client")));
        }
        if roll < f.unavailable + f.throttled + f.slow {
            store.stats.slow += 1;
            return Ok(Some(f.slow_by));
        }
        Ok(None)
    }

    fn answer(&self, store: &mut Store, response: Response) -> Response {
        store.stats.count(response.status());
        response
    }
}

fn throttled(message: &str) -> Response {
    with_header(
        json_response(
            StatusCode::TOO_MANY_REQUESTS,
            json!({ "error": "rate_limited", "message": message }),
        ),
        "retry-after",
        "1",
    )
}

fn employee_id(n: u64) -> String {
    format!("P-{n}")
}

fn parse_id(id: &str) -> Option<u64> {
    id.strip_prefix("P-")?.parse().ok()
}

fn stamp(record: &mut Map<String, Value>, n: u64, version: i64, at: DateTime<Utc>) {
    record.insert("id".into(), Value::String(employee_id(n)));
    record.insert("modified_at".into(), Value::String(rfc3339(at)));
    record.insert("row_version".into(), json!(version));
}

fn error(status: StatusCode, code: &str, message: &str) -> Response {
    json_response(status, json!({ "error": code, "message": message }))
}

fn invalid(problems: &[FieldProblem]) -> Response {
    json_response(
        StatusCode::UNPROCESSABLE_ENTITY,
        json!({
            "error": "validation_failed",
            "message": problems.iter().map(|(_, m)| m.as_str()).collect::<Vec<_>>().join("; "),
            "fields": problems.iter().map(|(f, m)| json!({ "field": f, "message": m })).collect::<Vec<_>>(),
        }),
    )
}

fn is_us_e164(s: &str) -> bool {
    s.len() == 12 && s.starts_with("+1") && s[2..].bytes().all(|b| b.is_ascii_digit())
}

/// The API's rules for the fields a write carries; `creating` also needs the essentials.
fn validate(body: &Map<String, Value>, creating: bool) -> Vec<FieldProblem> {
    let mut problems = Vec::new();
    let text = |k: &str| body.get(k).and_then(Value::as_str);
    for required in ["emp_no", "first_name", "last_name"] {
        if (creating || body.contains_key(required))
            && text(required).is_none_or(|s| s.trim().is_empty())
        {
            problems.push(problem(required, format!("{required} is required")));
        }
    }
    if creating && body.get("hire_date").is_none_or(Value::is_null) {
        problems.push(problem("hire_date", "hire_date is required"));
    }
    if let Some(v) = body.get("state")
        && !matches!(v.as_i64(), Some(0 | 1))
    {
        problems.push(problem("state", "state must be 1 (active) or 0 (inactive)"));
    }
    for date in ["hire_date", "termination_date"] {
        match body.get(date) {
            None | Some(Value::Null) => {}
            Some(Value::String(s)) if is_date(s, "%Y-%m-%d") => {}
            Some(other) => problems.push(problem(
                date,
                format!("{date} must be an ISO date (YYYY-MM-DD), got {other}"),
            )),
        }
    }
    match body.get("phone") {
        None | Some(Value::Null) => {}
        Some(Value::String(s)) if is_us_e164(s) => {}
        Some(other) => problems.push(problem(
            "phone",
            format!("phone must be a US number in E.164 form (+1XXXXXXXXXX), got {other}"),
        )),
    }
    match body.get("salary_cents") {
        None | Some(Value::Null) => {}
        Some(v) => match v.as_i64() {
            Some(c) if (0..=SALARY_CAP_CENTS).contains(&c) => {}
            // The amount is not echoed: pay is sensitive.
            Some(c) if c > SALARY_CAP_CENTS => problems.push(problem(
                "salary_cents",
                "salary_cents exceeds the payroll limit of $500,000 a year; pay above the \
                 limit needs a manual off-cycle run",
            )),
            _ => problems.push(problem(
                "salary_cents",
                "salary_cents must be a whole number of cents",
            )),
        },
    }
    if let Some(v) = body.get("currency")
        && v.as_str() != Some("USD")
    {
        problems.push(problem("currency", "payroll pays in USD only"));
    }
    if let Some(v) = body.get("pay_frequency")
        && !v.as_str().is_some_and(|s| PAY_FREQUENCIES.contains(&s))
    {
        problems.push(problem(
            "pay_frequency",
            format!(
                "pay_frequency must be one of {}",
                PAY_FREQUENCIES.join(", ")
            ),
        ));
    }
    if let Some(Value::Object(bank)) = body.get("bank")
        && let Some(routing) = bank.get("routing_number").filter(|v| !v.is_null())
        && !routing
            .as_str()
            .is_some_and(|r| r.len() == 9 && r.bytes().all(|b| b.is_ascii_digit()))
    {
        problems.push(problem(
            "bank.routing_number",
            "routing_number must have nine digits",
        ));
    }
    problems
}

fn strip_read_only(body: &mut Map<String, Value>) {
    for k in ["id", "modified_at"] {
        body.remove(k);
    }
}

async fn stall(wait: Option<Duration>) {
    if let Some(w) = wait {
        tokio::time::sleep(w).await;
    }
}

async fn token(State(p): State<Payroll>, body: Bytes) -> Response {
    let form: HashMap<String, String> = url::form_urlencoded::parse(&body).into_owned().collect();
    let mut store = p.lock();
    if form.get("grant_type").map(String::as_str) != Some("client_credentials") {
        let r = json_response(
            StatusCode::BAD_REQUEST,
            json!({ "error": "unsupported_grant_type" }),
        );
        return p.answer(&mut store, r);
    }
    if form.get("client_id").map(String::as_str) != Some(CLIENT_ID)
        || form.get("client_secret") != Some(&p.inner.client_secret)
    {
        let r = json_response(
            StatusCode::UNAUTHORIZED,
            json!({ "error": "invalid_client" }),
        );
        return p.answer(&mut store, r);
    }
    let token = format!("pt_{:032x}", store.token_rng.r#gen::<u128>());
    let expiry = Instant::now() + Duration::from_secs(TOKEN_TTL_SECS);
    store.tokens.retain(|_, e| *e > Instant::now());
    store.tokens.insert(token.clone(), expiry);
    let r = json_response(
        StatusCode::OK,
        json!({ "access_token": token, "token_type": "Bearer", "expires_in": TOKEN_TTL_SECS }),
    );
    p.answer(&mut store, r)
}

/// A listing cursor: the (modification time, id) of the last item shown.
fn encode_cursor(modified: DateTime<Utc>, n: u64) -> String {
    hex::encode(format!("{}|{n}", modified.timestamp_micros()))
}

fn decode_cursor(cursor: &str) -> Option<(i64, u64)> {
    let text = String::from_utf8(hex::decode(cursor).ok()?).ok()?;
    let (m, n) = text.split_once('|')?;
    Some((m.parse().ok()?, n.parse().ok()?))
}

async fn list(
    State(p): State<Payroll>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let wait = match p.gate(&headers) {
        Ok(w) => w,
        Err(r) => return *r,
    };
    stall(wait).await;
    let mut store = p.lock();
    let limit: usize = q
        .get("limit")
        .and_then(|l| l.parse().ok())
        .unwrap_or(50)
        .clamp(1, 200);
    let since = match q.get("modified_after") {
        None => None,
        Some(s) => match DateTime::parse_from_rfc3339(s) {
            Ok(t) => Some(t.with_timezone(&Utc)),
            Err(_) => {
                let r = error(
                    StatusCode::BAD_REQUEST,
                    "invalid_parameter",
                    "modified_after must be an RFC 3339 time",
                );
                return p.answer(&mut store, r);
            }
        },
    };
    let after = match q.get("cursor") {
        None => None,
        Some(c) => match decode_cursor(c) {
            Some(k) => Some(k),
            None => {
                let r = error(StatusCode::BAD_REQUEST, "invalid_cursor", "unknown cursor");
                return p.answer(&mut store, r);
            }
        },
    };
    let mut matching: Vec<(i64, u64, &Employee)> = store
        .employees
        .iter()
        .filter(|(_, e)| since.is_none_or(|s| e.modified >= s))
        .map(|(n, e)| (e.modified.timestamp_micros(), *n, e))
        .collect();
    matching.sort_by_key(|(m, n, _)| (*m, *n));
    let total = matching.len();
    let rest: Vec<&(i64, u64, &Employee)> = matching
        .iter()
        .filter(|(m, n, _)| after.is_none_or(|a| (*m, *n) > a))
        .collect();
    let page: Vec<&(i64, u64, &Employee)> = rest.iter().take(limit).copied().collect();
    let next = if rest.len() > limit {
        page.last().map(|(_, n, e)| encode_cursor(e.modified, *n))
    } else {
        None
    };
    let items: Vec<Value> = page
        .iter()
        .map(|(_, _, e)| Value::Object(e.record.clone()))
        .collect();
    store.last_listing = Instant::now();
    let r = with_header(
        json_response(
            StatusCode::OK,
            json!({ "items": items, "next_cursor": next }),
        ),
        "x-total-count",
        &total.to_string(),
    );
    p.answer(&mut store, r)
}

async fn get_one(State(p): State<Payroll>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    let wait = match p.gate(&headers) {
        Ok(w) => w,
        Err(r) => return *r,
    };
    stall(wait).await;
    let mut store = p.lock();
    let found = parse_id(&id).and_then(|n| store.employees.get(&n)).cloned();
    let r = match found {
        Some(e) => json_response(StatusCode::OK, Value::Object(e.record)),
        None => error(StatusCode::NOT_FOUND, "not_found", "no such employee"),
    };
    p.answer(&mut store, r)
}

async fn create(State(p): State<Payroll>, headers: HeaderMap, body: Bytes) -> Response {
    let wait = match p.gate(&headers) {
        Ok(w) => w,
        Err(r) => return *r,
    };
    stall(wait).await;
    let key = Idempotency::key(&headers);
    let mut store = p.lock();
    if let Some(r) = store.idempotency.replay(key.as_ref()) {
        return p.answer(&mut store, r);
    }
    let mut body = match parse_object(&body) {
        Ok(b) => b,
        Err(m) => {
            let r = error(StatusCode::BAD_REQUEST, "invalid_json", &m);
            return p.answer(&mut store, r);
        }
    };
    strip_read_only(&mut body);
    body.remove("row_version");
    let problems = validate(&body, true);
    if !problems.is_empty() {
        let r = invalid(&problems);
        return p.answer(&mut store, r);
    }
    let emp_no = body.get("emp_no").cloned();
    if store
        .employees
        .values()
        .any(|e| e.record.get("emp_no") == emp_no.as_ref())
    {
        let r = error(
            StatusCode::CONFLICT,
            "duplicate_employee",
            "an employee with this emp_no exists",
        );
        return p.answer(&mut store, r);
    }
    let at = store.clock.tick();
    let n = store.next_id;
    store.next_id += 1;
    let mut record = Map::new();
    merge_patch(&mut record, body);
    stamp(&mut record, n, 1, at);
    store.employees.insert(
        n,
        Employee {
            record: record.clone(),
            version: 1,
            modified: at,
        },
    );
    store.last_change = Instant::now();
    let value = Value::Object(record);
    store.idempotency.remember(key, StatusCode::CREATED, &value);
    let r = json_response(StatusCode::CREATED, value);
    p.answer(&mut store, r)
}

/// PATCH merges the body into the record, PUT replaces it; both check `row_version`.
async fn write(p: Payroll, headers: HeaderMap, id: String, body: Bytes, replace: bool) -> Response {
    let wait = match p.gate(&headers) {
        Ok(w) => w,
        Err(r) => return *r,
    };
    stall(wait).await;
    let key = Idempotency::key(&headers);
    let mut store = p.lock();
    if let Some(r) = store.idempotency.replay(key.as_ref()) {
        return p.answer(&mut store, r);
    }
    let Some(n) = parse_id(&id).filter(|n| store.employees.contains_key(n)) else {
        let r = error(StatusCode::NOT_FOUND, "not_found", "no such employee");
        return p.answer(&mut store, r);
    };
    let mut body = match parse_object(&body) {
        Ok(b) => b,
        Err(m) => {
            let r = error(StatusCode::BAD_REQUEST, "invalid_json", &m);
            return p.answer(&mut store, r);
        }
    };
    let current = store.employees.get(&n).map_or(0, |e| e.version);
    match body.remove("row_version") {
        None | Some(Value::Null) => {}
        Some(v) if v.as_i64() == Some(current) => {}
        Some(v) => {
            let r = json_response(
                StatusCode::PRECONDITION_FAILED,
                json!({ "error": "row_version_mismatch", "message": format!("row_version {v} is stale"), "current_row_version": current }),
            );
            return p.answer(&mut store, r);
        }
    }
    strip_read_only(&mut body);
    let problems = validate(&body, replace);
    if !problems.is_empty() {
        let r = invalid(&problems);
        return p.answer(&mut store, r);
    }
    let at = store.clock.tick();
    let Some(employee) = store.employees.get_mut(&n) else {
        let r = error(StatusCode::NOT_FOUND, "not_found", "no such employee");
        return p.answer(&mut store, r);
    };
    if replace {
        employee.record.clear();
    }
    merge_patch(&mut employee.record, body);
    employee.version += 1;
    employee.modified = at;
    let version = employee.version;
    stamp(&mut employee.record, n, version, at);
    let value = Value::Object(employee.record.clone());
    store.last_change = Instant::now();
    store.idempotency.remember(key, StatusCode::OK, &value);
    let r = json_response(StatusCode::OK, value);
    p.answer(&mut store, r)
}

async fn patch(
    State(p): State<Payroll>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    write(p, headers, id, body, false).await
}

async fn put(
    State(p): State<Payroll>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    write(p, headers, id, body, true).await
}

async fn delete(State(p): State<Payroll>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    let wait = match p.gate(&headers) {
        Ok(w) => w,
        Err(r) => return *r,
    };
    stall(wait).await;
    let mut store = p.lock();
    let removed = parse_id(&id).and_then(|n| store.employees.remove(&n));
    let r = match removed {
        Some(_) => {
            store.last_change = Instant::now();
            json_response(StatusCode::OK, json!({ "id": id, "deleted": true }))
        }
        None => error(StatusCode::NOT_FOUND, "not_found", "no such employee"),
    };
    p.answer(&mut store, r)
}
