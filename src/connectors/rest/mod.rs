//! The declarative `rest` connector: one JSON document per system says where its records are,
//! how to page through them, how to ask for changes, how to write, how it authenticates, and
//! how its webhooks are signed. Validated on load with messages that name the bad key.
//!
//! Secrets (API keys, passwords, client secrets, webhook keys) are named in the config and
//! read from the OS keychain when needed. OAuth2 access tokens are cached and refreshed
//! before they expire, or at once when the system answers 401.

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use reqwest::{Method, StatusCode};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::Sha256;
use tokio::sync::Mutex;

use crate::connector::{
    Capabilities, Connector, ConnectorError, FetchedRecord, Page, WebhookError, WriteOutcome,
    WriteRequest,
};
use crate::mapping::{get_path, set_path};
use crate::model::{ChangeEvent, ChangeOp, SystemConfig};
use crate::secrets::{Secret, SharedSecrets};

mod auth;
mod config;
mod read;
#[cfg(test)]
mod tests;
mod write;

pub use auth::sign_webhook;
pub use config::*;
use read::*;
pub use read::{capped_cursor, event_from_fetched, later_cursor, parse_time};
use write::*;

#[derive(Debug, Clone)]
struct CachedToken {
    token: Secret,
    expires_at: DateTime<Utc>,
}

pub struct RestConnector {
    system: String,
    config: RestConfig,
    client: reqwest::Client,
    secrets: SharedSecrets,
    /// Which origin each stored secret may be sent to.
    origins: std::sync::Arc<dyn crate::secrets::OriginPolicy>,
    token: Mutex<Option<CachedToken>>,
}

type HmacSha256 = Hmac<Sha256>;

/// Response body and headers we need after a request.
pub(crate) struct Reply {
    pub(crate) status: StatusCode,
    pub(crate) body: Option<Value>,
    pub(crate) headers: reqwest::header::HeaderMap,
}

impl Reply {
    /// The record a get/create/update answered with (at the object's `record_pointer`), and
    /// the `ETag` header.
    fn record(&self, o: &ObjectEndpoints) -> (Option<Map<String, Value>>, Option<String>) {
        let etag = self
            .headers
            .get(reqwest::header::ETAG)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let record = self
            .body
            .as_ref()
            .and_then(|b| {
                if o.record_pointer.is_empty() {
                    Some(b)
                } else {
                    b.pointer(&o.record_pointer)
                }
            })
            .and_then(Value::as_object)
            .cloned();
        (record, etag)
    }
}

impl RestConnector {
    /// A connector whose secrets may go to the origins its own config declares for them.
    pub fn from_config(
        system: &SystemConfig,
        secrets: SharedSecrets,
    ) -> Result<Self, ConnectorError> {
        Self::from_config_with(
            system,
            secrets,
            std::sync::Arc::new(crate::secrets::AsConfigured),
        )
    }

    /// A connector whose secrets go only where `origins` allows (the engine: the origin each
    /// secret was saved for).
    pub fn from_config_with(
        system: &SystemConfig,
        secrets: SharedSecrets,
        origins: std::sync::Arc<dyn crate::secrets::OriginPolicy>,
    ) -> Result<Self, ConnectorError> {
        let config = RestConfig::parse(&system.id, &system.config)?;
        let user_agent = config
            .user_agent
            .clone()
            .unwrap_or_else(|| concat!("concord/", env!("CARGO_PKG_VERSION")).to_owned());
        let client = reqwest::Client::builder()
            .timeout(Duration::from_millis(config.timeout_ms))
            .user_agent(user_agent)
            .use_rustls_tls()
            .build()
            .map_err(|e| ConnectorError::Config(format!("system {}: {e}", system.id)))?;
        Ok(Self {
            system: system.id.clone(),
            config,
            client,
            secrets,
            origins,
            token: Mutex::new(None),
        })
    }

    pub(crate) fn object(&self, object: &str) -> Result<&ObjectEndpoints, ConnectorError> {
        self.config.objects.get(object).ok_or_else(|| {
            ConnectorError::Config(format!(
                "system {}: no endpoints for object '{object}'",
                self.system
            ))
        })
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}{path}", self.config.base_url.trim_end_matches('/'))
    }

    pub(crate) fn item_path(o: &ObjectEndpoints, template: Option<&str>, id: &str) -> String {
        let default_item = format!("{}/{{id}}", o.path);
        let template = template.or(o.item_path.as_deref()).unwrap_or(&default_item);
        template.replace(
            "{id}",
            &url::form_urlencoded::byte_serialize(id.as_bytes()).collect::<String>(),
        )
    }

    fn transport_error(&self, e: &reqwest::Error) -> ConnectorError {
        ConnectorError::Retryable {
            system: self.system.clone(),
            status: None,
            retry_after: None,
            message: if e.is_timeout() {
                "timed out".into()
            } else if e.is_connect() {
                "could not connect".into()
            } else {
                "the request failed".into()
            },
        }
    }

    /// Sends a request (authenticated; with a fresh OAuth2 token once on a 401) and classifies
    /// the outcome. 404 is returned to the caller, other failures become errors.
    pub(crate) async fn send(
        &self,
        method: Method,
        url: &str,
        query: &[(String, String)],
        body: Option<&Map<String, Value>>,
        headers: &[(&str, String)],
    ) -> Result<Reply, ConnectorError> {
        let oauth = matches!(self.config.auth, Auth::Oauth2ClientCredentials { .. });
        for attempt in 0..2 {
            let mut request = self.client.request(method.clone(), url).query(query);
            for (k, v) in headers {
                request = request.header(*k, v);
            }
            if let Some(b) = body {
                request = request.json(b);
            }
            let request = self.authorize(request, url, attempt > 0).await?;
            let response = request.send().await.map_err(|e| self.transport_error(&e))?;
            let status = response.status();
            if status == StatusCode::UNAUTHORIZED && oauth && attempt == 0 {
                continue;
            }
            let response_headers = response.headers().clone();
            let retry_after = response_headers
                .get(reqwest::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(parse_retry_after);
            let text = response
                .text()
                .await
                .map_err(|e| self.transport_error(&e))?;
            if status == StatusCode::NOT_FOUND {
                return Ok(Reply {
                    status,
                    body: None,
                    headers: response_headers,
                });
            }
            if !status.is_success() {
                return Err(ConnectorError::from_status(
                    &self.system,
                    status.as_u16(),
                    retry_after,
                    text,
                ));
            }
            let body = if text.trim().is_empty() {
                None
            } else {
                serde_json::from_str(&text).ok()
            };
            return Ok(Reply {
                status,
                body,
                headers: response_headers,
            });
        }
        Err(ConnectorError::Rejected {
            system: self.system.clone(),
            status: 401,
            body: "the system refused our credentials".into(),
        })
    }
}

/// `Retry-After` as seconds or an HTTP date.
pub fn parse_retry_after(value: &str) -> Option<Duration> {
    if let Ok(secs) = value.trim().parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = DateTime::parse_from_rfc2822(value.trim()).ok()?;
    let wait = at.with_timezone(&Utc) - Utc::now();
    wait.to_std().ok().or(Some(Duration::ZERO))
}

#[async_trait]
impl Connector for RestConnector {
    fn request_timeout(&self) -> Duration {
        Duration::from_millis(self.config.timeout_ms)
    }

    fn capabilities(&self) -> Capabilities {
        let any = self.config.objects.values().next();
        Capabilities {
            partial_update: any.is_none_or(|o| o.update.method.eq_ignore_ascii_case("PATCH")),
            versioned_writes: any.is_some_and(|o| o.concurrency != Concurrency::None),
            delete: any.is_some_and(|o| o.delete.is_some()),
            webhooks: self.config.webhooks.is_some(),
            incremental: any.is_some_and(|o| o.incremental.is_some()),
            path_writes: false,
        }
    }

    fn cursor_at(&self, object: &str, time: DateTime<Utc>) -> Option<String> {
        let format = match self.config.objects.get(object)?.incremental.as_ref()? {
            Incremental::Param { format, .. } | Incremental::Filter { format, .. } => *format,
        };
        match format {
            TimeFormat::Raw => None,
            TimeFormat::Rfc3339 => Some(time.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)),
            TimeFormat::Unix => Some(time.timestamp().to_string()),
            TimeFormat::UnixMs => Some(time.timestamp_millis().to_string()),
        }
    }

    fn poll_interval(&self) -> Option<Duration> {
        self.config
            .poll
            .as_ref()
            .map(|p| Duration::from_secs_f64(p.interval_secs))
    }

    fn reconcile_schedule(&self) -> Option<crate::connector::ReconcileSchedule> {
        let configured = self.config.reconcile.as_ref();
        let secs = match configured {
            Some(r) => r.interval_secs,
            // A polled system that sends no webhooks reports no deletes: reconcile by default.
            None if self.config.poll.is_some() && self.config.webhooks.is_none() => {
                DEFAULT_RECONCILE_SECS
            }
            None => 0.0,
        };
        Some(crate::connector::ReconcileSchedule {
            interval: (secs > 0.0).then(|| Duration::from_secs_f64(secs)),
            max_delete_share: configured.map_or(default_max_delete_share(), |r| r.max_delete_share),
        })
    }

    async fn find(
        &self,
        object: &str,
        criteria: &[(String, Value)],
    ) -> Result<Vec<FetchedRecord>, ConnectorError> {
        let o = self.object(object)?;
        let Some(lookup) = &o.lookup else {
            return crate::connector::find_by_listing(self, object, criteria).await;
        };
        let text = |v: &Value| match v {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        let extra: Vec<(String, String)> = match lookup {
            Lookup::Param => criteria
                .iter()
                .map(|(path, value)| (path.replace('/', "."), text(value)))
                .collect(),
            Lookup::Filter { param, template } => criteria
                .first()
                .map(|(path, value)| {
                    let clause = template
                        .replace("{path}", &path.replace('/', "."))
                        .replace("{value}", &text(value).replace('"', "\\\""));
                    vec![(param.clone(), clause)]
                })
                .unwrap_or_default(),
        };
        // The system's answer narrows the search; the criteria are still checked here, since
        // filters can be looser (prefix or case-insensitive matches).
        crate::connector::find_in_pages(object, criteria, |token: Option<String>| {
            let extra = extra.clone();
            async move { self.list(object, token.as_deref(), extra).await }
        })
        .await
    }

    fn describe_write(
        &self,
        op: &str,
        external_id: Option<&str>,
        object: &str,
    ) -> Option<(String, String)> {
        let o = self.config.objects.get(object)?;
        let id = external_id.unwrap_or("{id}");
        Some(match op {
            "create" => (
                o.create.method.to_ascii_uppercase(),
                o.create.path.clone().unwrap_or_else(|| o.path.clone()),
            ),
            "delete" => {
                let endpoint = o.delete.as_ref()?;
                (
                    endpoint.method.to_ascii_uppercase(),
                    Self::item_path(o, endpoint.path.as_deref(), id),
                )
            }
            _ => (
                o.update.method.to_ascii_uppercase(),
                Self::item_path(o, o.update.path.as_deref(), id),
            ),
        })
    }

    async fn list_page(&self, object: &str, page: Option<&str>) -> Result<Page, ConnectorError> {
        self.list(object, page, Vec::new()).await
    }

    async fn changes_page(
        &self,
        object: &str,
        since: &str,
        page: Option<&str>,
    ) -> Result<Page, ConnectorError> {
        let o = self.object(object)?;
        let extra = match &o.incremental {
            None => return self.list(object, page, Vec::new()).await,
            Some(Incremental::Param { param, format }) => {
                vec![(param.clone(), format_since(since, *format))]
            }
            Some(Incremental::Filter {
                param,
                template,
                format,
            }) => {
                vec![(
                    param.clone(),
                    template.replace("{since}", &format_since(since, *format)),
                )]
            }
        };
        self.list(object, page, extra).await
    }

    async fn create(&self, write: &WriteRequest) -> Result<WriteOutcome, ConnectorError> {
        let o = self.object(&write.object)?;
        let path = o.create.path.clone().unwrap_or_else(|| o.path.clone());
        let method = Method::from_bytes(o.create.method.as_bytes()).unwrap_or(Method::POST);
        let reply = self
            .send(
                method,
                &self.url(&path),
                &[],
                Some(&write.payload),
                &self.write_headers(o, write),
            )
            .await?;
        if reply.status == StatusCode::NOT_FOUND {
            return Err(ConnectorError::Config(format!(
                "system {}: {path} answered 404",
                self.system
            )));
        }
        self.outcome(o, reply, None)
    }

    async fn update(
        &self,
        external_id: &str,
        write: &WriteRequest,
    ) -> Result<WriteOutcome, ConnectorError> {
        let o = self.object(&write.object)?;
        let path = Self::item_path(o, o.update.path.as_deref(), external_id);
        let method = Method::from_bytes(o.update.method.as_bytes()).unwrap_or(Method::PATCH);
        let body = self.write_body(o, write);
        let reply = match self
            .send(
                method,
                &self.url(&path),
                &[],
                Some(&body),
                &self.write_headers(o, write),
            )
            .await
        {
            // Systems that take the version in the body commonly answer a stale one with 409
            // (CouchDB's _rev, Kubernetes' resourceVersion): the record changed, read it again.
            Err(ConnectorError::Rejected { status: 409, .. })
                if write.if_match.is_some()
                    && matches!(o.concurrency, Concurrency::VersionField { .. }) =>
            {
                return Err(ConnectorError::VersionConflict {
                    system: self.system.clone(),
                });
            }
            other => other?,
        };
        if reply.status == StatusCode::NOT_FOUND {
            return Err(ConnectorError::NotFound {
                system: self.system.clone(),
                external_id: external_id.into(),
            });
        }
        self.outcome(o, reply, Some(external_id))
    }

    async fn delete(
        &self,
        external_id: &str,
        write: &WriteRequest,
    ) -> Result<WriteOutcome, ConnectorError> {
        let o = self.object(&write.object)?;
        let Some(endpoint) = &o.delete else {
            return Err(ConnectorError::Rejected {
                system: self.system.clone(),
                status: 405,
                body: "this system takes no deletes".into(),
            });
        };
        let path = Self::item_path(o, endpoint.path.as_deref(), external_id);
        let method = Method::from_bytes(endpoint.method.as_bytes()).unwrap_or(Method::DELETE);
        // A record already gone is what a delete wants: 404 is success.
        self.send(
            method,
            &self.url(&path),
            &[],
            None,
            &self.write_headers(o, write),
        )
        .await?;
        Ok(WriteOutcome {
            external_id: external_id.into(),
            version: None,
            etag: None,
        })
    }

    async fn get(
        &self,
        object: &str,
        external_id: &str,
    ) -> Result<Option<FetchedRecord>, ConnectorError> {
        let o = self.object(object)?;
        let path = Self::item_path(o, None, external_id);
        let reply = self
            .send(Method::GET, &self.url(&path), &[], None, &[])
            .await?;
        if reply.status == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        let (record, etag) = reply.record(o);
        record
            .map(|r| self.fetched(o, r, etag.as_deref()))
            .transpose()
    }

    fn parse_webhook(
        &self,
        headers: &http::HeaderMap,
        body: &[u8],
        now: DateTime<Utc>,
    ) -> Result<Vec<ChangeEvent>, WebhookError> {
        let Some(w) = &self.config.webhooks else {
            return Err(WebhookError::NotSupported(format!(
                "system {} sends no webhooks",
                self.system
            )));
        };
        self.verify_signature(w, headers, body, now)?;
        let malformed = |m: String| WebhookError::Malformed(m);
        let json: Value = serde_json::from_slice(body)
            .map_err(|e| malformed(format!("the webhook body is not JSON: {e}")))?;
        let events: Vec<&Value> = match &w.events_pointer {
            Some(p) => json
                .pointer(p)
                .and_then(Value::as_array)
                .ok_or_else(|| malformed(format!("no events array at '{p}'")))?
                .iter()
                .collect(),
            None => vec![&json],
        };
        let o = self
            .object(&w.object)
            .map_err(|e| malformed(e.to_string()))?;
        let mut out = Vec::with_capacity(events.len());
        for event in events {
            let record = event
                .pointer(&w.record_pointer)
                .and_then(Value::as_object)
                .cloned()
                .ok_or_else(|| {
                    malformed(format!("an event has no record at '{}'", w.record_pointer))
                })?;
            let deleted = w
                .op_pointer
                .as_deref()
                .and_then(|p| event.pointer(p))
                .and_then(Value::as_str)
                .is_some_and(|op| w.delete_values.iter().any(|d| d == op));
            let fetched = self
                .fetched(o, record, None)
                .map_err(|e| malformed(e.to_string()))?;
            let occurred = w
                .occurred_at_pointer
                .as_deref()
                .and_then(|p| event.pointer(p))
                .and_then(|v| match v {
                    Value::String(s) => parse_time(s),
                    Value::Number(n) => n.as_i64().and_then(|n| parse_time(&n.to_string())),
                    _ => None,
                });
            let source_ts = fetched
                .modified
                .as_deref()
                .and_then(parse_time)
                .or(occurred);
            let event_key = w
                .event_key_pointer
                .as_deref()
                .and_then(|p| event.pointer(p))
                .map(|v| match v {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                })
                .unwrap_or_else(|| {
                    format!(
                        "hook:{}:{}",
                        fetched.external_id,
                        fetched.version.map_or_else(
                            || crate::runtime::idempotency_key(&[&event.to_string()]),
                            |v| v.to_string()
                        )
                    )
                });
            out.push(ChangeEvent {
                system: self.system.clone(),
                object: w.object.clone(),
                external_id: fetched.external_id,
                op: if deleted {
                    ChangeOp::Delete
                } else {
                    ChangeOp::Upsert
                },
                record: fetched.record,
                version: fetched.version,
                etag: fetched.etag,
                source_ts,
                event_key,
            });
        }
        Ok(out)
    }
}
