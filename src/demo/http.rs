//! What the demo systems share as HTTP servers: serving until cancelled, JSON error bodies,
//! JSON merge patches, entity tags, a clock that never repeats a modification time,
//! idempotency keys, and request counters.

use std::collections::{BTreeMap, HashMap};

use axum::Router;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Duration, DurationRound, Utc};
use serde_json::{Map, Value};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// Serves `app` on `listener` in the background until `cancel` is cancelled.
pub(crate) fn serve_until(listener: TcpListener, app: Router, cancel: CancellationToken) {
    tokio::spawn(async move {
        let _ = axum::serve(listener, app)
            .with_graceful_shutdown(async move { cancel.cancelled().await })
            .await;
    });
}

/// A JSON response with a status.
pub(crate) fn json_response(status: StatusCode, body: Value) -> Response {
    (status, axum::Json(body)).into_response()
}

/// A JSON response with a status and one extra header.
pub(crate) fn with_header(mut response: Response, name: &'static str, value: &str) -> Response {
    if let Ok(v) = HeaderValue::from_str(value) {
        response.headers_mut().insert(name, v);
    }
    response
}

/// Whether an `If-Match` or `If-None-Match` header (`*`, or a list of entity tags, weak or
/// strong) names the tag `"<version>"`, compared weakly (RFC 9110 §8.8.3.2): `W/"3"` and `"3"`
/// match each other.
pub(crate) fn etag_matches(header: &str, version: impl std::fmt::Display) -> bool {
    let version = version.to_string();
    header
        .split(',')
        .map(str::trim)
        .any(|tag| tag == "*" || tag.strip_prefix("W/").unwrap_or(tag).trim_matches('"') == version)
}

/// Parses a request body as a JSON object, or answers 400.
pub(crate) fn parse_object(body: &[u8]) -> Result<Map<String, Value>, String> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err("the body must be a JSON object".into()),
        Err(e) => Err(format!("the body is not JSON: {e}")),
    }
}

/// RFC 7386 merge patch, except that `null` is stored (people clear fields) rather than removing
/// the key: nested objects are merged, everything else replaced.
pub(crate) fn merge_patch(target: &mut Map<String, Value>, patch: Map<String, Value>) {
    for (k, v) in patch {
        match (target.get_mut(&k), v) {
            (Some(Value::Object(existing)), Value::Object(inner)) => merge_patch(existing, inner),
            (_, v) => {
                target.insert(k, v);
            }
        }
    }
}

/// Hands out modification times that only move forward (millisecond precision), so that
/// "changed since" listings and last-write-wins never see two changes at one instant.
#[derive(Debug, Clone)]
pub(crate) struct MonotonicClock {
    last: DateTime<Utc>,
}

impl Default for MonotonicClock {
    fn default() -> Self {
        Self {
            last: DateTime::<Utc>::MIN_UTC,
        }
    }
}

impl MonotonicClock {
    pub fn tick(&mut self) -> DateTime<Utc> {
        let now = Utc::now();
        let now = now.duration_trunc(Duration::milliseconds(1)).unwrap_or(now);
        self.last = if now > self.last {
            now
        } else {
            self.last + Duration::milliseconds(1)
        };
        self.last
    }
}

/// The first response to each `Idempotency-Key`, replayed for repeats.
#[derive(Debug, Default)]
pub(crate) struct Idempotency {
    seen: HashMap<String, (u16, Value)>,
}

impl Idempotency {
    pub fn key(headers: &HeaderMap) -> Option<String> {
        headers
            .get("idempotency-key")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    }

    pub fn replay(&self, key: Option<&String>) -> Option<Response> {
        let (status, body) = self.seen.get(key?)?;
        let status = StatusCode::from_u16(*status).unwrap_or(StatusCode::OK);
        Some(json_response(status, body.clone()))
    }

    pub fn remember(&mut self, key: Option<String>, status: StatusCode, body: &Value) {
        if let Some(k) = key {
            self.seen.insert(k, (status.as_u16(), body.clone()));
        }
    }
}

/// Requests a system answered, by status code.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RequestStats {
    pub by_status: BTreeMap<u16, u64>,
    /// Responses delayed on purpose.
    pub slow: u64,
}

impl RequestStats {
    pub(crate) fn count(&mut self, status: StatusCode) {
        *self.by_status.entry(status.as_u16()).or_default() += 1;
    }

    pub fn total(&self) -> u64 {
        self.by_status.values().sum()
    }

    pub fn with_status(&self, status: u16) -> u64 {
        self.by_status.get(&status).copied().unwrap_or(0)
    }
}

/// Whether `s` is a valid date in `format`.
pub(crate) fn is_date(s: &str, format: &str) -> bool {
    chrono::NaiveDate::parse_from_str(s, format).is_ok()
}

/// A field error as both systems report it: `(field, message)`.
pub(crate) type FieldProblem = (String, String);

pub(crate) fn problem(field: &str, message: impl Into<String>) -> FieldProblem {
    (field.to_owned(), message.into())
}
