//! The connector interface: how the engine reads from and writes to a system.
//!
//! Connectors classify their failures so delivery knows what to do: retry (timeouts, 5xx, 429
//! with `Retry-After`), give up at once (4xx: the system rejected the data), or treat a
//! version mismatch (412) as a conflict signal that re-reads the record.

use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::model::SourceVersion;

/// What a system supports; the engine adapts its writes to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Capabilities {
    /// Updates may carry only the changed fields (PATCH); otherwise the full record is sent,
    /// as last read with the changes applied.
    pub partial_update: bool,
    /// Writes can be made conditional on the record's concurrency token (`If-Match` with its
    /// ETag, or its version field); a changed record refuses them (412). Without it, the
    /// engine reads a record before writing it and compares.
    pub versioned_writes: bool,
    pub delete: bool,
    pub webhooks: bool,
    pub incremental: bool,
    /// The connector writes each assignment at its own path (a SCIM PatchOp, say), touching
    /// nothing else: a nested or array path needs no composing onto the record as last read.
    #[serde(default)]
    pub path_writes: bool,
}

impl Default for Capabilities {
    fn default() -> Self {
        Self {
            partial_update: true,
            versioned_writes: false,
            delete: true,
            webhooks: false,
            incremental: false,
            path_writes: false,
        }
    }
}

/// When a system is reconciled, and how many deletes one run may make without an admin.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ReconcileSchedule {
    /// Time between scheduled runs; None: on demand only.
    pub interval: Option<Duration>,
    /// A run that finds more than this share of the linked records gone deletes nothing and
    /// waits for an admin to confirm.
    pub max_delete_share: f64,
}

/// One write, in the target's shapes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WriteRequest {
    pub object: String,
    pub payload: Map<String, Value>,
    /// The same key on every attempt and every replay of this write.
    pub idempotency_key: String,
    /// Only apply if the record still has this concurrency token (opaque: an ETag exactly as
    /// the system sent it, weak or strong, or a version field's value as JSON text).
    pub if_match: Option<String>,
    /// The change as (system path, value) assignments, for connectors that write by path
    /// ([`Capabilities::path_writes`]); empty for creates and deletes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub assignments: Vec<(String, Value)>,
}

/// What a successful write returned.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WriteOutcome {
    pub external_id: String,
    /// The record's ordering version after the write, when the system reports one.
    pub version: Option<SourceVersion>,
    /// The record's concurrency token after the write, when the system reports one.
    #[serde(default)]
    pub etag: Option<String>,
}

/// A record read from a system.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FetchedRecord {
    pub external_id: String,
    pub record: Map<String, Value>,
    /// An ordering version (stale-event detection): a numeric version field, or the
    /// modification time in microseconds. Never derived from an ETag.
    pub version: Option<SourceVersion>,
    /// The concurrency token to send back with a write (opaque; see [`WriteRequest::if_match`]).
    #[serde(default)]
    pub etag: Option<String>,
    /// The record's modification time or version as the system writes it (incremental cursor).
    #[serde(default)]
    pub modified: Option<String>,
}

/// One page of a listing.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Page {
    pub records: Vec<FetchedRecord>,
    /// Opaque token for the next page; None on the last page.
    pub next: Option<String>,
    /// How many records the whole listing has, when the system says.
    pub total: Option<u64>,
    /// The system's own time when it answered (its `Date` header), when it says: a listing
    /// that takes several pages must not move its cursor past the moment it began.
    #[serde(default)]
    pub server_time: Option<chrono::DateTime<chrono::Utc>>,
    /// Records deleted in the system (external ids), when it says which (a change table).
    #[serde(default)]
    pub deleted: Vec<String>,
    /// The incremental cursor after this page, when the connector keeps its own (a change
    /// table's sequence) instead of the records' modification times.
    #[serde(default)]
    pub cursor: Option<String>,
}

/// Why a webhook was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum WebhookError {
    /// Missing or wrong signature, or a timestamp outside the tolerance: 401, nothing stored.
    #[error("{0}")]
    Unauthorized(String),
    /// The body is not what the system's webhook config describes: 400, nothing stored.
    #[error("{0}")]
    Malformed(String),
    /// This system is not configured for webhooks.
    #[error("{0}")]
    NotSupported(String),
}

/// A connector failure, classified.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ConnectorError {
    /// Worth retrying: timeout, connection failure, 5xx, 429.
    #[error("{system} is unavailable ({message})")]
    Retryable {
        system: String,
        status: Option<u16>,
        retry_after: Option<Duration>,
        message: String,
    },
    /// The system refused the write; retrying the same request cannot succeed.
    #[error("{system} rejected the request with {status}: {body}")]
    Rejected {
        system: String,
        status: u16,
        body: String,
    },
    /// The record changed in the system since the version we wrote against (412).
    #[error("{system} holds a newer version of the record")]
    VersionConflict { system: String },
    /// The record does not exist in the system (404 on update or delete).
    #[error("{system} has no record {external_id}")]
    NotFound { system: String, external_id: String },
    /// The connector is misconfigured; nothing was sent.
    #[error("{0}")]
    Config(String),
}

impl ConnectorError {
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Retryable { .. })
    }

    /// Classifies an HTTP status the way delivery needs it.
    pub fn from_status(
        system: &str,
        status: u16,
        retry_after: Option<Duration>,
        body: String,
    ) -> Self {
        match status {
            412 => Self::VersionConflict {
                system: system.to_owned(),
            },
            408 | 425 | 429 | 500..=599 => Self::Retryable {
                system: system.to_owned(),
                status: Some(status),
                retry_after,
                message: truncate(&body, 500),
            },
            _ => Self::Rejected {
                system: system.to_owned(),
                status,
                body: truncate(&body, 4000),
            },
        }
    }
}

pub(crate) fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_owned();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

/// How the engine talks to one system.
#[async_trait]
pub trait Connector: Send + Sync {
    fn capabilities(&self) -> Capabilities {
        Capabilities::default()
    }
    /// How long a request may take before this connector gives up on it: its timeout. After a
    /// restart, a write that was in flight is looked up or sent again no sooner, since an
    /// attempt the stopped engine made may still be on its way to the system, and a lookup
    /// made before it lands would find nothing. An in-process connector has nothing on the way.
    fn request_timeout(&self) -> Duration {
        Duration::ZERO
    }
    /// One page of the full listing of `object`, from the start when `page` is None.
    async fn list_page(&self, object: &str, page: Option<&str>) -> Result<Page, ConnectorError> {
        let _ = (object, page);
        Err(ConnectorError::Config(
            "this connector cannot list records".into(),
        ))
    }
    /// One page of the records of `object` changed at or after `since` (a cursor the connector
    /// produced from [`FetchedRecord::modified`]).
    async fn changes_page(
        &self,
        object: &str,
        since: &str,
        page: Option<&str>,
    ) -> Result<Page, ConnectorError> {
        let _ = (object, since, page);
        Err(ConnectorError::Config(
            "this connector cannot list changes".into(),
        ))
    }
    /// Attribute paths the system's own schema declares for `object`, for the mapper to list
    /// beside those seen in sample records (fields no sample holds yet). Empty when the system
    /// publishes no schema.
    async fn declared_fields(&self, object: &str) -> Result<Vec<String>, ConnectorError> {
        let _ = object;
        Ok(Vec::new())
    }
    /// The cursor for "changed since `time`", for a listing that found no record to take one
    /// from (an empty system): without it every later poll would list everything again. None
    /// when the connector's cursor is not a time it can write.
    fn cursor_at(&self, object: &str, time: chrono::DateTime<chrono::Utc>) -> Option<String> {
        let _ = (object, time);
        None
    }
    /// Verifies and parses a webhook delivery into change events.
    fn parse_webhook(
        &self,
        headers: &http::HeaderMap,
        body: &[u8],
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<Vec<crate::model::ChangeEvent>, WebhookError> {
        let _ = (headers, body, now);
        Err(WebhookError::NotSupported(
            "this system sends no webhooks".into(),
        ))
    }
    /// How often to poll for changes, if at all.
    fn poll_interval(&self) -> Option<Duration> {
        None
    }
    /// Woken when the system announces a change (PostgreSQL's LISTEN/NOTIFY): the poll loop
    /// polls at once instead of waiting for the interval.
    fn change_signal(&self) -> Option<std::sync::Arc<tokio::sync::Notify>> {
        None
    }
    /// When full listings are compared with what the engine knows (None: this connector
    /// cannot list, so it is never reconciled).
    fn reconcile_schedule(&self) -> Option<ReconcileSchedule> {
        None
    }
    async fn create(&self, write: &WriteRequest) -> Result<WriteOutcome, ConnectorError>;
    async fn update(
        &self,
        external_id: &str,
        write: &WriteRequest,
    ) -> Result<WriteOutcome, ConnectorError>;
    async fn delete(
        &self,
        external_id: &str,
        write: &WriteRequest,
    ) -> Result<WriteOutcome, ConnectorError>;
    async fn get(
        &self,
        object: &str,
        external_id: &str,
    ) -> Result<Option<FetchedRecord>, ConnectorError>;
    /// The records of `object` whose value at each system path equals the given value (the
    /// object's match keys, in the system's shapes): how a create whose outcome is unknown is
    /// looked up before it is sent again. The default pages through the whole listing.
    async fn find(
        &self,
        object: &str,
        criteria: &[(String, Value)],
    ) -> Result<Vec<FetchedRecord>, ConnectorError> {
        find_by_listing(self, object, criteria).await
    }
    /// How a write is sent, for previews and dead letters: method and path (the body is the
    /// request's payload). None when the connector has no such notion.
    fn describe_write(
        &self,
        op: &str,
        external_id: Option<&str>,
        object: &str,
    ) -> Option<(String, String)> {
        let _ = (op, external_id, object);
        None
    }
}

/// Pages through a listing and keeps the records matching every criterion.
pub async fn find_by_listing<C: Connector + ?Sized>(
    connector: &C,
    object: &str,
    criteria: &[(String, Value)],
) -> Result<Vec<FetchedRecord>, ConnectorError> {
    find_in_pages(object, criteria, |token: Option<String>| async move {
        connector.list_page(object, token.as_deref()).await
    })
    .await
}

/// Follows pages from `next_page` (given the previous page's token) and keeps the records
/// matching every criterion. At most 10,000 pages: a listing that does not end is an error,
/// not a hang.
pub async fn find_in_pages<F, Fut>(
    object: &str,
    criteria: &[(String, Value)],
    mut next_page: F,
) -> Result<Vec<FetchedRecord>, ConnectorError>
where
    F: FnMut(Option<String>) -> Fut,
    Fut: std::future::Future<Output = Result<Page, ConnectorError>>,
{
    let mut found = Vec::new();
    let mut token: Option<String> = None;
    for _ in 0..10_000 {
        let page = next_page(token.take()).await?;
        found.extend(
            page.records
                .into_iter()
                .filter(|r| matches_criteria(&r.record, criteria)),
        );
        match page.next {
            Some(next) => token = Some(next),
            None => return Ok(found),
        }
    }
    Err(ConnectorError::Config(format!(
        "the listing of {object} did not end after 10,000 pages"
    )))
}

/// Whether a record holds every (path, value) criterion; numbers compare by value and text
/// ignores case and surrounding spaces, as match keys do.
pub fn matches_criteria(record: &Map<String, Value>, criteria: &[(String, Value)]) -> bool {
    !criteria.is_empty()
        && criteria.iter().all(|(path, wanted)| {
            crate::mapping::get_path(record, path).is_some_and(|held| same_key(held, wanted))
        })
}

fn same_key(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::String(x), Value::String(y)) => x.trim().eq_ignore_ascii_case(y.trim()),
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        (Value::String(x), Value::Number(y)) | (Value::Number(y), Value::String(x)) => {
            x.trim() == y.to_string()
        }
        _ => a == b,
    }
}
