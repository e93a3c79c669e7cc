//! A JSON-over-HTTP connector: one collection URL per object, records addressed by id,
//! versions in a record field, writes carrying `Idempotency-Key` and `If-Match`.

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;
use reqwest::{Method, StatusCode};
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::connector::{
    Capabilities, Connector, ConnectorError, FetchedRecord, WriteOutcome, WriteRequest,
};
use crate::model::{SourceVersion, SystemConfig};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RestConfig {
    pub base_url: String,
    /// Object name -> collection path, e.g. `{"employee": "/employees"}`.
    pub collections: BTreeMap<String, String>,
    #[serde(default = "default_id_field")]
    pub id_field: String,
    /// Record field holding an integer version, if the system keeps one.
    #[serde(default)]
    pub version_field: Option<String>,
    #[serde(default)]
    pub versioned_writes: bool,
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
    #[serde(default)]
    pub partial_update: Option<bool>,
}

fn default_id_field() -> String {
    "id".into()
}

fn default_timeout_ms() -> u64 {
    10_000
}

pub struct RestConnector {
    system: String,
    config: RestConfig,
    client: reqwest::Client,
}

impl RestConnector {
    pub fn from_config(system: &SystemConfig) -> Result<Self, ConnectorError> {
        let config: RestConfig = serde_json::from_value(system.config.clone()).map_err(|e| {
            ConnectorError::Config(format!("system {}: invalid rest config: {e}", system.id))
        })?;
        let client = reqwest::Client::builder()
            .timeout(Duration::from_millis(config.timeout_ms))
            .user_agent(concat!("concord/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| ConnectorError::Config(format!("system {}: {e}", system.id)))?;
        Ok(Self {
            system: system.id.clone(),
            config,
            client,
        })
    }

    fn url(&self, object: &str, id: Option<&str>) -> Result<String, ConnectorError> {
        let collection = self.config.collections.get(object).ok_or_else(|| {
            ConnectorError::Config(format!(
                "system {}: no collection for object '{object}'",
                self.system
            ))
        })?;
        let base = self.config.base_url.trim_end_matches('/');
        Ok(match id {
            Some(id) => format!("{base}{collection}/{id}"),
            None => format!("{base}{collection}"),
        })
    }

    fn version_of(&self, record: &Map<String, Value>) -> Option<SourceVersion> {
        let field = self.config.version_field.as_deref()?;
        match record.get(field)? {
            Value::Number(n) => n.as_i64(),
            Value::String(s) => s.parse().ok(),
            _ => None,
        }
    }

    async fn send(
        &self,
        method: Method,
        url: String,
        write: Option<&WriteRequest>,
    ) -> Result<(StatusCode, Option<Map<String, Value>>), ConnectorError> {
        let mut request = self.client.request(method, url);
        if let Some(write) = write {
            request = request.header("Idempotency-Key", &write.idempotency_key);
            if let (true, Some(v)) = (self.config.versioned_writes, write.if_match) {
                request = request.header("If-Match", format!("\"{v}\""));
            }
            if !write.payload.is_empty() {
                request = request.json(&write.payload);
            }
        }
        let response = request
            .send()
            .await
            .map_err(|e| ConnectorError::Retryable {
                system: self.system.clone(),
                status: None,
                retry_after: None,
                message: if e.is_timeout() {
                    "timed out".into()
                } else {
                    e.to_string()
                },
            })?;
        let status = response.status();
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(parse_retry_after);
        let body = response.text().await.unwrap_or_default();
        if status == StatusCode::NOT_FOUND {
            return Ok((status, None));
        }
        if !status.is_success() {
            return Err(ConnectorError::from_status(
                &self.system,
                status.as_u16(),
                retry_after,
                body,
            ));
        }
        let record = serde_json::from_str::<Value>(&body)
            .ok()
            .and_then(|v| match v {
                Value::Object(map) => Some(map),
                _ => None,
            });
        Ok((status, record))
    }

    fn outcome(
        &self,
        fallback_id: Option<&str>,
        record: Option<Map<String, Value>>,
    ) -> Result<WriteOutcome, ConnectorError> {
        let record = record.unwrap_or_default();
        let id = record
            .get(&self.config.id_field)
            .map(|v| match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            })
            .or_else(|| fallback_id.map(str::to_owned))
            .ok_or_else(|| ConnectorError::Rejected {
                system: self.system.clone(),
                status: 200,
                body: format!("the response carries no '{}'", self.config.id_field),
            })?;
        Ok(WriteOutcome {
            external_id: id,
            version: self.version_of(&record),
        })
    }
}

/// `Retry-After` as seconds or an HTTP date.
pub fn parse_retry_after(value: &str) -> Option<Duration> {
    if let Ok(secs) = value.trim().parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = chrono::DateTime::parse_from_rfc2822(value.trim()).ok()?;
    let wait = at.with_timezone(&chrono::Utc) - chrono::Utc::now();
    wait.to_std().ok().or(Some(Duration::ZERO))
}

#[async_trait]
impl Connector for RestConnector {
    fn capabilities(&self) -> Capabilities {
        Capabilities {
            partial_update: self.config.partial_update.unwrap_or(true),
            versioned_writes: self.config.versioned_writes,
            ..Capabilities::default()
        }
    }

    async fn create(&self, write: &WriteRequest) -> Result<WriteOutcome, ConnectorError> {
        let (status, record) = self
            .send(Method::POST, self.url(&write.object, None)?, Some(write))
            .await?;
        if status == StatusCode::NOT_FOUND {
            return Err(ConnectorError::Config(format!(
                "system {}: collection not found",
                self.system
            )));
        }
        self.outcome(None, record)
    }

    async fn update(
        &self,
        external_id: &str,
        write: &WriteRequest,
    ) -> Result<WriteOutcome, ConnectorError> {
        let method = if self.capabilities().partial_update {
            Method::PATCH
        } else {
            Method::PUT
        };
        let (status, record) = self
            .send(
                method,
                self.url(&write.object, Some(external_id))?,
                Some(write),
            )
            .await?;
        if status == StatusCode::NOT_FOUND {
            return Err(ConnectorError::NotFound {
                system: self.system.clone(),
                external_id: external_id.into(),
            });
        }
        self.outcome(Some(external_id), record)
    }

    async fn delete(
        &self,
        external_id: &str,
        write: &WriteRequest,
    ) -> Result<WriteOutcome, ConnectorError> {
        // A record already gone is what a delete wants.
        let (_, record) = self
            .send(
                Method::DELETE,
                self.url(&write.object, Some(external_id))?,
                Some(write),
            )
            .await?;
        Ok(WriteOutcome {
            external_id: external_id.into(),
            version: record.as_ref().and_then(|r| self.version_of(r)),
        })
    }

    async fn get(
        &self,
        object: &str,
        external_id: &str,
    ) -> Result<Option<FetchedRecord>, ConnectorError> {
        let (_, record) = self
            .send(Method::GET, self.url(object, Some(external_id))?, None)
            .await?;
        Ok(record.map(|record| FetchedRecord {
            external_id: external_id.into(),
            version: self.version_of(&record),
            record,
        }))
    }
}
