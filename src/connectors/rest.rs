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

/// A system reached over HTTP, described as data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RestConfig {
    pub base_url: String,
    #[serde(default)]
    pub auth: Auth,
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
    #[serde(default)]
    pub user_agent: Option<String>,
    /// Object name -> where and how its records are read and written.
    pub objects: BTreeMap<String, ObjectEndpoints>,
    #[serde(default)]
    pub webhooks: Option<WebhookConfig>,
    #[serde(default)]
    pub poll: Option<PollConfig>,
    /// Full listings compared with what the engine knows (missed changes, deletes). Polled
    /// systems without webhooks reconcile every 600 s unless this says otherwise.
    #[serde(default)]
    pub reconcile: Option<ReconcileConfig>,
}

fn default_timeout_ms() -> u64 {
    10_000
}

/// How requests authenticate. `secret` names a keychain entry, never the value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema, Default)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Auth {
    #[default]
    None,
    /// The secret in a header, e.g. `X-API-Key: <secret>`.
    ApiKey {
        header: String,
        secret: String,
        #[serde(default)]
        prefix: Option<String>,
    },
    /// `Authorization: Bearer <secret>`.
    Bearer { secret: String },
    /// HTTP basic auth with the secret as password.
    Basic { username: String, secret: String },
    /// OAuth2 client credentials: a token from `token_url`, refreshed before it expires.
    Oauth2ClientCredentials {
        token_url: String,
        client_id: String,
        secret: String,
        #[serde(default)]
        scope: Option<String>,
    },
}

/// Where one object's records live and how they page, change and are written.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ObjectEndpoints {
    /// Collection path, e.g. `/employees` (listing, and creates unless `create.path` is set).
    pub path: String,
    /// Fixed query parameters of every listing request (e.g. `{"_page": "1"}` for a system that
    /// sends `Link` headers only when asked for a page).
    #[serde(default)]
    pub params: BTreeMap<String, String>,
    /// One record's path; `{id}` is replaced. Default `{path}/{id}`.
    #[serde(default)]
    pub item_path: Option<String>,
    /// JSON pointer to the records array in a listing response; "" when the body is the array.
    #[serde(default)]
    pub records_pointer: String,
    /// JSON pointer to the record in get/create/update responses; "" when the body is it.
    #[serde(default)]
    pub record_pointer: String,
    #[serde(default)]
    pub pagination: Pagination,
    /// Path of the id in a record (`/`-separated).
    #[serde(default = "default_id_field")]
    pub id_field: String,
    /// Integer version field of a record (stale-event detection and concurrency).
    #[serde(default)]
    pub version_field: Option<String>,
    /// Modification-time field of a record (the incremental cursor, and last-write-wins time).
    #[serde(default)]
    pub modified_field: Option<String>,
    #[serde(default)]
    pub incremental: Option<Incremental>,
    #[serde(default)]
    pub concurrency: Concurrency,
    #[serde(default = "default_create")]
    pub create: Endpoint,
    #[serde(default = "default_update")]
    pub update: Endpoint,
    /// None: the system does not take deletes.
    #[serde(default = "default_delete")]
    pub delete: Option<Endpoint>,
    /// JSON pointer to the total count in a listing response, or a header (`X-Total-Count`).
    #[serde(default)]
    pub total_pointer: Option<String>,
    #[serde(default)]
    pub total_header: Option<String>,
    /// How to look records up by their match keys (before re-sending a create whose outcome
    /// is unknown). Absent: the whole listing is searched.
    #[serde(default)]
    pub lookup: Option<Lookup>,
}

/// Asking the system for the records whose match key has a value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "style", rename_all = "snake_case", deny_unknown_fields)]
pub enum Lookup {
    /// `?{path}={value}` for each match key's system path (json-server and many REST APIs).
    Param,
    /// `?{param}={template}` with `{path}` and `{value}` replaced, e.g.
    /// `filter={path} eq "{value}"` (SCIM, OData).
    Filter { param: String, template: String },
}

fn default_id_field() -> String {
    "id".into()
}

fn default_create() -> Endpoint {
    Endpoint {
        method: "POST".into(),
        path: None,
    }
}

fn default_update() -> Endpoint {
    Endpoint {
        method: "PATCH".into(),
        path: None,
    }
}

#[allow(clippy::unnecessary_wraps)]
fn default_delete() -> Option<Endpoint> {
    Some(Endpoint {
        method: "DELETE".into(),
        path: None,
    })
}

/// A method and an optional path (`{id}` replaced).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Endpoint {
    pub method: String,
    #[serde(default)]
    pub path: Option<String>,
}

/// How a listing pages.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema, Default)]
#[serde(tag = "style", rename_all = "snake_case", deny_unknown_fields)]
pub enum Pagination {
    /// One response holds everything.
    #[default]
    None,
    /// `?page=N&size=M`, until a page comes back short.
    Page {
        page_param: String,
        size_param: String,
        size: u32,
        #[serde(default = "one")]
        first_page: u32,
    },
    /// `?offset=N&limit=M`, until a page comes back short. `first_offset` is the index of the
    /// first record: 0, or 1 for systems that count from one (SCIM's `startIndex`).
    Offset {
        offset_param: String,
        limit_param: String,
        limit: u32,
        #[serde(default)]
        first_offset: u32,
    },
    /// `?cursor=TOKEN`, the next token at a JSON pointer in the response; absent or null ends.
    Cursor {
        cursor_param: String,
        next_pointer: String,
        #[serde(default)]
        size_param: Option<String>,
        #[serde(default)]
        size: Option<u32>,
    },
    /// RFC 8288 `Link: <url>; rel="next"` headers.
    LinkHeader {
        #[serde(default)]
        size_param: Option<String>,
        #[serde(default)]
        size: Option<u32>,
    },
}

fn one() -> u32 {
    1
}

/// How to ask for records changed since a cursor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "style", rename_all = "snake_case", deny_unknown_fields)]
pub enum Incremental {
    /// `?{param}={since}`, the since value in `format`.
    Param {
        param: String,
        #[serde(default)]
        format: TimeFormat,
    },
    /// `?{param}={template}` with `{since}` replaced, e.g. `modified_at ge '{since}'`.
    Filter {
        param: String,
        template: String,
        #[serde(default)]
        format: TimeFormat,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema, Default)]
#[serde(rename_all = "snake_case")]
pub enum TimeFormat {
    /// As the record's modified field holds it.
    #[default]
    Raw,
    Rfc3339,
    Unix,
    UnixMs,
}

/// Optimistic concurrency for writes. The token is opaque: it is sent back exactly as the
/// system gave it, never parsed or compared as a number.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema, Default)]
#[serde(tag = "style", rename_all = "snake_case", deny_unknown_fields)]
pub enum Concurrency {
    /// The system has none: the engine reads a record before writing it and compares.
    #[default]
    None,
    /// `If-Match: <etag>` with the `ETag` header as the system sent it (weak `W/"…"` or
    /// strong), or, without the header, the `version_field`'s value as an entity tag.
    Etag,
    /// The `version_field`'s value (any JSON type) is sent back in the body, in this field.
    VersionField { field: String },
}

/// How the system signs and shapes its webhooks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    /// Keychain name of the signing key.
    pub secret: String,
    pub signature_header: String,
    /// Text before the hex digest in the signature header, e.g. `sha256=`.
    #[serde(default)]
    pub signature_prefix: String,
    /// Header with the unix time of signing; required with a tolerance.
    #[serde(default)]
    pub timestamp_header: Option<String>,
    #[serde(default = "default_tolerance")]
    pub tolerance_secs: u64,
    /// What is signed: the raw body, or `{timestamp}.{raw body}`.
    #[serde(default)]
    pub signed_payload: SignedPayload,
    /// The object the webhooks are about.
    pub object: String,
    /// JSON pointer to an array of events; absent: the body is one event.
    #[serde(default)]
    pub events_pointer: Option<String>,
    /// JSON pointers inside one event.
    pub record_pointer: String,
    #[serde(default)]
    pub event_key_pointer: Option<String>,
    #[serde(default)]
    pub op_pointer: Option<String>,
    /// Values at `op_pointer` that mean the record was deleted.
    #[serde(default)]
    pub delete_values: Vec<String>,
    /// JSON pointer to the event time, when the record carries no modified field.
    #[serde(default)]
    pub occurred_at_pointer: Option<String>,
}

fn default_tolerance() -> u64 {
    300
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema, Default)]
#[serde(rename_all = "snake_case")]
pub enum SignedPayload {
    Body,
    #[default]
    TimestampDotBody,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PollConfig {
    pub interval_secs: f64,
}

/// When to compare a full listing with what the engine knows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReconcileConfig {
    /// Seconds between runs; 0 turns scheduled runs off (on-demand runs still work).
    pub interval_secs: f64,
    /// If more than this share of the linked records vanished in one run, nothing is deleted
    /// and an admin is asked to confirm (default 0.1).
    #[serde(default = "default_max_delete_share")]
    pub max_delete_share: f64,
}

fn default_max_delete_share() -> f64 {
    0.1
}

/// Seconds between reconciliations of a polled system without webhooks, when its config
/// sets none.
pub const DEFAULT_RECONCILE_SECS: f64 = 600.0;

impl RestConfig {
    /// Parses and validates a config; errors name the key at fault (`objects.employee.pagination.size`).
    pub fn parse(system: &str, config: &Value) -> Result<Self, ConnectorError> {
        let bad = |m: String| ConnectorError::Config(format!("system {system}: {m}"));
        let parsed: Self = serde_path_to_error::deserialize(config.clone())
            .map_err(|e| bad(format!("config key '{}': {}", e.path(), e.inner())))?;
        let base = url::Url::parse(&parsed.base_url).map_err(|e| {
            bad(format!(
                "config key 'base_url': '{}' is not a URL ({e})",
                parsed.base_url
            ))
        })?;
        if !matches!(base.scheme(), "http" | "https") {
            return Err(bad("config key 'base_url': use http or https".into()));
        }
        if parsed.timeout_ms == 0 {
            return Err(bad("config key 'timeout_ms': must be positive".into()));
        }
        if parsed.objects.is_empty() {
            return Err(bad("config key 'objects': name at least one object".into()));
        }
        for (name, o) in &parsed.objects {
            let at = |k: &str| format!("config key 'objects.{name}.{k}'");
            if !o.path.starts_with('/') {
                return Err(bad(format!("{}: must start with '/'", at("path"))));
            }
            if o.path.contains('?') {
                return Err(bad(format!(
                    "{}: put query parameters in 'params', not in the path",
                    at("path")
                )));
            }
            for (k, pointer) in [
                ("records_pointer", &o.records_pointer),
                ("record_pointer", &o.record_pointer),
            ] {
                if !pointer.is_empty() && !pointer.starts_with('/') {
                    return Err(bad(format!(
                        "{}: a JSON pointer starts with '/' (or is empty)",
                        at(k)
                    )));
                }
            }
            for (k, e) in [
                ("create", Some(&o.create)),
                ("update", Some(&o.update)),
                ("delete", o.delete.as_ref()),
            ] {
                if let Some(e) = e
                    && Method::from_bytes(e.method.as_bytes()).is_err()
                {
                    return Err(bad(format!(
                        "{}: '{}' is not an HTTP method",
                        at(&format!("{k}.method")),
                        e.method
                    )));
                }
            }
            match &o.pagination {
                Pagination::Page { size: 0, .. } => {
                    return Err(bad(format!("{}: must be positive", at("pagination.size"))));
                }
                Pagination::Offset { limit: 0, .. } => {
                    return Err(bad(format!("{}: must be positive", at("pagination.limit"))));
                }
                _ => {}
            }
            if o.incremental.is_some() && o.modified_field.is_none() {
                return Err(bad(format!(
                    "{}: incremental changes need the record's modified_field",
                    at("incremental")
                )));
            }
            if matches!(o.concurrency, Concurrency::VersionField { .. })
                && o.version_field.is_none()
            {
                return Err(bad(format!(
                    "{}: a version sent in the body needs the record's version_field",
                    at("concurrency")
                )));
            }
        }
        if let Some(w) = &parsed.webhooks {
            if !parsed.objects.contains_key(&w.object) {
                return Err(bad(format!(
                    "config key 'webhooks.object': '{}' is not in objects",
                    w.object
                )));
            }
            if w.tolerance_secs > 0
                && w.timestamp_header.is_none()
                && w.signed_payload == SignedPayload::TimestampDotBody
            {
                return Err(bad(
                    "config key 'webhooks.timestamp_header': needed to check the timestamp".into(),
                ));
            }
        }
        if let Some(p) = &parsed.poll
            && !(p.interval_secs.is_finite() && p.interval_secs > 0.0)
        {
            return Err(bad(
                "config key 'poll.interval_secs': must be positive".into()
            ));
        }
        if let Some(r) = &parsed.reconcile {
            if !(r.interval_secs.is_finite() && r.interval_secs >= 0.0) {
                return Err(bad(
                    "config key 'reconcile.interval_secs': must be 0 (off) or positive".into(),
                ));
            }
            if !(r.max_delete_share.is_finite() && (0.0..=1.0).contains(&r.max_delete_share)) {
                return Err(bad(
                    "config key 'reconcile.max_delete_share': must be between 0 and 1".into(),
                ));
            }
        }
        Ok(parsed)
    }
}

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

/// A URL's origin, `scheme://host:port` (the port always written), or None if it has none.
pub fn origin_of(url: &str) -> Option<String> {
    let u = url::Url::parse(url).ok()?;
    let host = u.host_str()?;
    let port = u.port_or_known_default()?;
    Some(format!(
        "{}://{}:{port}",
        u.scheme(),
        host.to_ascii_lowercase()
    ))
}

impl RestConfig {
    /// The secrets this config sends, each with the origin it is sent to: the auth secret to
    /// the base URL (an OAuth2 client secret to the token URL). A webhook signing key is
    /// never sent, so it is not listed.
    pub fn sent_secrets(&self) -> Vec<(String, String)> {
        let base = origin_of(&self.base_url).unwrap_or_default();
        match &self.auth {
            Auth::None => Vec::new(),
            Auth::ApiKey { secret, .. } | Auth::Bearer { secret } | Auth::Basic { secret, .. } => {
                vec![(secret.clone(), base)]
            }
            Auth::Oauth2ClientCredentials {
                token_url, secret, ..
            } => {
                let origin = if token_url.starts_with("http") {
                    origin_of(token_url).unwrap_or_default()
                } else {
                    base
                };
                vec![(secret.clone(), origin)]
            }
        }
    }
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

    fn secret(&self, name: &str) -> Result<Secret, ConnectorError> {
        self.secrets
            .get(name)
            .map_err(|e| ConnectorError::Config(format!("system {}: {e}", self.system)))
    }

    /// The secret `name`, to be sent to `url`: only if `url` is on the origin the config
    /// declares for it, and that origin is the one the secret was saved for.
    fn secret_for(&self, name: &str, url: &str) -> Result<Secret, ConnectorError> {
        let declared = self
            .config
            .sent_secrets()
            .into_iter()
            .find(|(n, _)| n == name)
            .map(|(_, o)| o);
        let target = origin_of(url);
        let Some(origin) = declared.filter(|d| Some(d) == target.as_ref()) else {
            return Err(ConnectorError::Config(format!(
                "system {}: the secret '{name}' is not sent to {} (only to the address its \
                 config names)",
                self.system,
                target.as_deref().unwrap_or("an address without an origin")
            )));
        };
        if !self.origins.allows(name, &origin) {
            return Err(ConnectorError::Config(format!(
                "system {}: re-enter the secret '{name}' to use it with {origin} (a stored \
                 secret is only sent to the address it was saved for)",
                self.system
            )));
        }
        self.secret(name)
    }

    async fn bearer_token(&self, force_refresh: bool) -> Result<Secret, ConnectorError> {
        let Auth::Oauth2ClientCredentials {
            token_url,
            client_id,
            secret,
            scope,
        } = &self.config.auth
        else {
            return Err(ConnectorError::Config("not an OAuth2 system".into()));
        };
        let mut cached = self.token.lock().await;
        if let Some(t) = cached.as_ref()
            && !force_refresh
            && t.expires_at > Utc::now() + chrono::Duration::seconds(30)
        {
            return Ok(t.token.clone());
        }
        let url = if token_url.starts_with("http") {
            token_url.clone()
        } else {
            self.url(token_url)
        };
        let client_secret = self.secret_for(secret, &url)?;
        let mut form = vec![
            ("grant_type", "client_credentials".to_owned()),
            ("client_id", client_id.clone()),
            ("client_secret", client_secret.expose().to_owned()),
        ];
        if let Some(s) = scope {
            form.push(("scope", s.clone()));
        }
        let response = self
            .client
            .post(url)
            .form(&form)
            .send()
            .await
            .map_err(|e| self.transport_error(&e))?;
        let status = response.status();
        let body = response.text().await.unwrap_or_default();
        if !status.is_success() {
            return Err(
                match ConnectorError::from_status(
                    &self.system,
                    status.as_u16(),
                    None,
                    String::new(),
                ) {
                    ConnectorError::Rejected { system, status, .. } => ConnectorError::Rejected {
                        system,
                        status,
                        body: "the token endpoint refused the client credentials".into(),
                    },
                    other => other,
                },
            );
        }
        let json: Value = serde_json::from_str(&body).map_err(|_| ConnectorError::Rejected {
            system: self.system.clone(),
            status: status.as_u16(),
            body: "the token endpoint's answer is not JSON".into(),
        })?;
        let token = json
            .get("access_token")
            .and_then(Value::as_str)
            .ok_or_else(|| ConnectorError::Rejected {
                system: self.system.clone(),
                status: status.as_u16(),
                body: "the token endpoint's answer has no access_token".into(),
            })?;
        let expires_in = json
            .get("expires_in")
            .and_then(Value::as_i64)
            .unwrap_or(3600);
        let token = Secret::new(token);
        *cached = Some(CachedToken {
            token: token.clone(),
            expires_at: Utc::now() + chrono::Duration::seconds(expires_in),
        });
        Ok(token)
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

    async fn authorize(
        &self,
        request: reqwest::RequestBuilder,
        url: &str,
        refresh: bool,
    ) -> Result<reqwest::RequestBuilder, ConnectorError> {
        Ok(match &self.config.auth {
            Auth::None => request,
            Auth::ApiKey {
                header,
                secret,
                prefix,
            } => {
                let value = self.secret_for(secret, url)?;
                request.header(
                    header.as_str(),
                    format!("{}{}", prefix.as_deref().unwrap_or(""), value.expose()),
                )
            }
            Auth::Bearer { secret } => request.bearer_auth(self.secret_for(secret, url)?.expose()),
            Auth::Basic { username, secret } => {
                request.basic_auth(username, Some(self.secret_for(secret, url)?.expose()))
            }
            Auth::Oauth2ClientCredentials { .. } => {
                // The access token is the token endpoint's answer for this system: it goes
                // only to the system's own origin.
                if origin_of(url) != origin_of(&self.config.base_url) {
                    return Err(ConnectorError::Config(format!(
                        "system {}: the access token is only sent to the system's base_url",
                        self.system
                    )));
                }
                request.bearer_auth(self.bearer_token(refresh).await?.expose())
            }
        })
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

    fn fetched(
        &self,
        o: &ObjectEndpoints,
        record: Map<String, Value>,
        etag: Option<&str>,
    ) -> Result<FetchedRecord, ConnectorError> {
        let external_id = get_path(&record, &o.id_field)
            .and_then(|v| match v {
                Value::String(s) if !s.is_empty() => Some(s.clone()),
                Value::Number(n) => Some(n.to_string()),
                _ => None,
            })
            .ok_or_else(|| ConnectorError::Rejected {
                system: self.system.clone(),
                status: 200,
                body: format!("a record has no '{}'", o.id_field),
            })?;
        let version_value = o
            .version_field
            .as_deref()
            .and_then(|f| get_path(&record, f));
        // Ordering comes from a numeric version or the modification time, never from an ETag:
        // entity tags are opaque (`W/"a1b2"` orders nothing).
        let version = version_value
            .and_then(|v| match v {
                Value::Number(n) => n.as_i64(),
                Value::String(s) => s.trim().parse().ok(),
                _ => None,
            })
            .or_else(|| {
                self.modified(o, &record)
                    .and_then(|m| parse_time(&m))
                    .map(|t| t.timestamp_micros())
            });
        let token = match &o.concurrency {
            Concurrency::None => None,
            Concurrency::Etag => etag
                .map(|e| e.trim().to_owned())
                .filter(|e| !e.is_empty())
                .or_else(|| version_value.and_then(entity_tag)),
            Concurrency::VersionField { .. } => {
                version_value.filter(|v| !v.is_null()).map(Value::to_string)
            }
        };
        let modified = self.modified(o, &record);
        Ok(FetchedRecord {
            external_id,
            record,
            version,
            etag: token,
            modified,
        })
    }

    fn modified(&self, o: &ObjectEndpoints, record: &Map<String, Value>) -> Option<String> {
        let field = o.modified_field.as_deref()?;
        match get_path(record, field)? {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        }
    }

    fn page_from(
        &self,
        o: &ObjectEndpoints,
        reply: Reply,
        current: u64,
    ) -> Result<Page, ConnectorError> {
        let body = reply.body.unwrap_or(Value::Null);
        let records = if o.records_pointer.is_empty() {
            Some(&body)
        } else {
            body.pointer(&o.records_pointer)
        };
        let records =
            records
                .and_then(Value::as_array)
                .ok_or_else(|| ConnectorError::Rejected {
                    system: self.system.clone(),
                    status: reply.status.as_u16(),
                    body: format!(
                        "the listing has no records array at '{}'",
                        o.records_pointer
                    ),
                })?;
        let count = records.len() as u64;
        let mut fetched = Vec::with_capacity(records.len());
        for r in records {
            if let Value::Object(map) = r {
                fetched.push(self.fetched(o, map.clone(), None)?);
            }
        }
        let total = o
            .total_pointer
            .as_deref()
            .and_then(|p| body.pointer(p))
            .and_then(Value::as_u64)
            .or_else(|| {
                o.total_header
                    .as_deref()
                    .and_then(|h| reply.headers.get(h))
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse().ok())
            });
        let next = match &o.pagination {
            Pagination::None => None,
            Pagination::Page {
                size, first_page, ..
            } => {
                // With a total, the last full page is the last; without one, a short page is.
                let pages = current.saturating_sub(u64::from(*first_page)) + 1;
                let more = match total {
                    Some(t) => count > 0 && pages * u64::from(*size) < t,
                    None => count >= u64::from(*size),
                };
                more.then(|| (current + 1).to_string())
            }
            Pagination::Offset {
                limit,
                first_offset,
                ..
            } => {
                // With a total, a server that pages smaller than asked is followed to the end;
                // without one, a short page is the last.
                let seen = current.saturating_sub(u64::from(*first_offset)) + count;
                let more = match total {
                    Some(t) => count > 0 && seen < t,
                    None => count >= u64::from(*limit),
                };
                more.then(|| (current + count).to_string())
            }
            Pagination::Cursor { next_pointer, .. } => {
                body.pointer(next_pointer).and_then(|v| match v {
                    Value::String(s) if !s.is_empty() => Some(s.clone()),
                    Value::Number(n) => Some(n.to_string()),
                    _ => None,
                })
            }
            Pagination::LinkHeader { .. } => reply
                .headers
                .get_all(reqwest::header::LINK)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .find_map(next_link),
        };
        let server_time = reply
            .headers
            .get(reqwest::header::DATE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| DateTime::parse_from_rfc2822(v.trim()).ok())
            .map(|t| t.with_timezone(&Utc));
        Ok(Page {
            records: fetched,
            next,
            total,
            server_time,
            ..Page::default()
        })
    }

    /// Lists one page; `page` is the token the previous page returned.
    pub(crate) async fn list(
        &self,
        object: &str,
        page: Option<&str>,
        extra: Vec<(String, String)>,
    ) -> Result<Page, ConnectorError> {
        let o = self.object(object)?;
        let mut query: Vec<(String, String)> = o
            .params
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        query.extend(extra);
        let mut url = self.url(&o.path);
        let mut current = 0u64;
        match &o.pagination {
            Pagination::None => {}
            Pagination::Page {
                page_param,
                size_param,
                size,
                first_page,
            } => {
                current = page
                    .and_then(|p| p.parse().ok())
                    .unwrap_or(u64::from(*first_page));
                query.push((page_param.clone(), current.to_string()));
                query.push((size_param.clone(), size.to_string()));
            }
            Pagination::Offset {
                offset_param,
                limit_param,
                limit,
                first_offset,
            } => {
                current = page
                    .and_then(|p| p.parse().ok())
                    .unwrap_or(u64::from(*first_offset));
                query.push((offset_param.clone(), current.to_string()));
                query.push((limit_param.clone(), limit.to_string()));
            }
            Pagination::Cursor {
                cursor_param,
                size_param,
                size,
                ..
            } => {
                if let Some(p) = page {
                    query.push((cursor_param.clone(), p.to_owned()));
                }
                if let (Some(param), Some(size)) = (size_param, size) {
                    query.push((param.clone(), size.to_string()));
                }
            }
            Pagination::LinkHeader { size_param, size } => match page {
                // The next link is a complete URL that already carries every parameter.
                Some(next) => {
                    url = if next.starts_with("http") {
                        next.to_owned()
                    } else {
                        self.url(next)
                    };
                    query.clear();
                }
                None => {
                    if let (Some(param), Some(size)) = (size_param, size) {
                        query.push((param.clone(), size.to_string()));
                    }
                }
            },
        }
        let reply = self.send(Method::GET, &url, &query, None, &[]).await?;
        if reply.status == StatusCode::NOT_FOUND {
            return Err(ConnectorError::Config(format!(
                "system {}: {} answered 404",
                self.system, o.path
            )));
        }
        self.page_from(o, reply, current)
    }

    fn write_body(&self, o: &ObjectEndpoints, write: &WriteRequest) -> Map<String, Value> {
        let mut body = write.payload.clone();
        if let (Concurrency::VersionField { field }, Some(token)) =
            (&o.concurrency, write.if_match.as_deref())
        {
            // The token is the version field's value as JSON text; anything else is sent as text.
            let value = serde_json::from_str(token).unwrap_or_else(|_| Value::from(token));
            set_path(&mut body, field, value);
        }
        body
    }

    fn write_headers(
        &self,
        o: &ObjectEndpoints,
        write: &WriteRequest,
    ) -> Vec<(&'static str, String)> {
        let mut headers = vec![("Idempotency-Key", write.idempotency_key.clone())];
        if let (Concurrency::Etag, Some(token)) = (&o.concurrency, write.if_match.as_deref()) {
            headers.push(("If-Match", token.to_owned()));
        }
        headers
    }

    pub(crate) fn outcome(
        &self,
        o: &ObjectEndpoints,
        reply: Reply,
        fallback_id: Option<&str>,
    ) -> Result<WriteOutcome, ConnectorError> {
        let (record, etag) = reply.record(o);
        let header_token = || match o.concurrency {
            Concurrency::Etag => etag.clone(),
            _ => None,
        };
        match (record, fallback_id) {
            (Some(r), fallback) => match self.fetched(o, r, etag.as_deref()) {
                Ok(f) => Ok(WriteOutcome {
                    external_id: f.external_id,
                    version: f.version,
                    etag: f.etag,
                }),
                Err(e) => fallback.map_or(Err(e), |id| {
                    Ok(WriteOutcome {
                        external_id: id.to_owned(),
                        version: None,
                        etag: header_token(),
                    })
                }),
            },
            (None, Some(id)) => Ok(WriteOutcome {
                external_id: id.to_owned(),
                version: None,
                etag: header_token(),
            }),
            (None, None) => Err(ConnectorError::Rejected {
                system: self.system.clone(),
                status: reply.status.as_u16(),
                body: "the create response carries no record".into(),
            }),
        }
    }

    fn verify_signature(
        &self,
        w: &WebhookConfig,
        headers: &http::HeaderMap,
        body: &[u8],
        now: DateTime<Utc>,
    ) -> Result<(), WebhookError> {
        let unauthorized = |m: &str| WebhookError::Unauthorized(m.to_owned());
        let signature = headers
            .get(w.signature_header.as_str())
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| unauthorized("the webhook is not signed"))?;
        let digest = signature
            .trim()
            .strip_prefix(w.signature_prefix.as_str())
            .unwrap_or(signature.trim());
        let expected =
            hex::decode(digest).map_err(|_| unauthorized("the webhook signature is not hex"))?;
        let timestamp = match &w.timestamp_header {
            Some(h) => {
                let raw = headers
                    .get(h.as_str())
                    .and_then(|v| v.to_str().ok())
                    .ok_or_else(|| unauthorized("the webhook has no timestamp"))?;
                let secs: i64 = raw
                    .trim()
                    .parse()
                    .map_err(|_| unauthorized("the webhook timestamp is not a number"))?;
                let age = (now.timestamp() - secs).unsigned_abs();
                if w.tolerance_secs > 0 && age > w.tolerance_secs {
                    return Err(unauthorized(
                        "the webhook timestamp is outside the tolerance (replayed or clock skew)",
                    ));
                }
                Some(raw.trim().to_owned())
            }
            None => None,
        };
        let key = self
            .secrets
            .get(&w.secret)
            .map_err(|e| WebhookError::Unauthorized(e.to_string()))?;
        let mut mac = HmacSha256::new_from_slice(key.expose().as_bytes())
            .map_err(|_| unauthorized("the webhook key is unusable"))?;
        if let (SignedPayload::TimestampDotBody, Some(ts)) = (w.signed_payload, &timestamp) {
            mac.update(ts.as_bytes());
            mac.update(b".");
        }
        mac.update(body);
        mac.verify_slice(&expected)
            .map_err(|_| unauthorized("the webhook signature does not match"))
    }
}

/// A version field's value as an entity tag: text that already is one (`"3"`, `W/"3"`) is
/// kept as it is, anything else is quoted.
fn entity_tag(value: &Value) -> Option<String> {
    let text = match value {
        Value::String(s) => s.trim().to_owned(),
        Value::Number(n) => n.to_string(),
        _ => return None,
    };
    if text.is_empty() {
        return None;
    }
    if text.starts_with('"') || text.starts_with("W/\"") {
        Some(text)
    } else {
        Some(format!("\"{text}\""))
    }
}

/// Signs a webhook body the way [`WebhookConfig`] with `timestamp_dot_body` expects; for
/// systems built on Concord and for tests.
pub fn sign_webhook(key: &str, timestamp: i64, body: &[u8]) -> String {
    let mut mac = match HmacSha256::new_from_slice(key.as_bytes()) {
        Ok(m) => m,
        Err(_) => return String::new(),
    };
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

fn next_link(header: &str) -> Option<String> {
    header.split(',').find_map(|part| {
        let (target, params) = part.split_once(';')?;
        let is_next = params.split(';').any(|p| {
            let p = p.trim().replace(' ', "");
            p == "rel=\"next\"" || p == "rel=next"
        });
        is_next.then(|| {
            target
                .trim()
                .trim_start_matches('<')
                .trim_end_matches('>')
                .to_owned()
        })
    })
}

/// A modification time as RFC 3339, or seconds or milliseconds since the epoch.
pub fn parse_time(s: &str) -> Option<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.with_timezone(&Utc));
    }
    let n: i64 = s.parse().ok()?;
    // Seconds or milliseconds since the epoch.
    if n > 100_000_000_000 {
        DateTime::from_timestamp_millis(n)
    } else {
        DateTime::from_timestamp(n, 0)
    }
}

fn format_since(since: &str, format: TimeFormat) -> String {
    match (format, parse_time(since)) {
        (TimeFormat::Raw, _) | (_, None) => since.to_owned(),
        (TimeFormat::Rfc3339, Some(t)) => t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        (TimeFormat::Unix, Some(t)) => t.timestamp().to_string(),
        (TimeFormat::UnixMs, Some(t)) => t.timestamp_millis().to_string(),
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

/// A polled or listed record as a change event.
pub fn event_from_fetched(system: &str, object: &str, record: FetchedRecord) -> ChangeEvent {
    let stamp = record
        .version
        .map(|v| v.to_string())
        .or_else(|| record.modified.clone())
        .unwrap_or_else(|| {
            crate::runtime::idempotency_key(&[&Value::Object(record.record.clone()).to_string()])
        });
    ChangeEvent {
        system: system.to_owned(),
        object: object.to_owned(),
        event_key: format!("poll:{}:{stamp}", record.external_id),
        source_ts: record.modified.as_deref().and_then(parse_time),
        external_id: record.external_id,
        op: ChangeOp::Upsert,
        record: record.record,
        version: record.version,
        etag: record.etag,
    }
}

/// A cursor no later than `cap`, in the shape the cursor has (RFC 3339, or seconds or
/// milliseconds since the epoch). A listing read over several pages caps its cursor at the
/// moment it began: a record changed on a page already read carries a later time than the
/// records on the pages after it, and must be asked for again.
pub fn capped_cursor(cursor: &str, cap: DateTime<Utc>) -> String {
    match parse_time(cursor) {
        Some(t) if t > cap => {
            if DateTime::parse_from_rfc3339(cursor).is_ok() {
                cap.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
            } else if cursor
                .trim()
                .parse::<i64>()
                .is_ok_and(|n| n > 100_000_000_000)
            {
                cap.timestamp_millis().to_string()
            } else {
                cap.timestamp().to_string()
            }
        }
        _ => cursor.to_owned(),
    }
}

/// The cursor to keep after seeing `modified` (the greatest modification seen).
pub fn later_cursor(current: Option<&str>, modified: &str) -> String {
    match current {
        None => modified.to_owned(),
        Some(c) => match (parse_time(c), parse_time(modified)) {
            (Some(a), Some(b)) => {
                if b > a {
                    modified.to_owned()
                } else {
                    c.to_owned()
                }
            }
            _ => {
                if modified > c {
                    modified.to_owned()
                } else {
                    c.to_owned()
                }
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_link_header_yields_the_next_page() {
        let h = r#"<http://x/items?_page=1>; rel="first", <http://x/items?_page=3>; rel="next", <http://x/items?_page=9>; rel="last""#;
        assert_eq!(
            next_link(h).as_deref(),
            Some("http://x/items?_page=3"),
            "rel=next is followed"
        );
        assert_eq!(
            next_link(r#"<http://x/items?_page=1>; rel="first""#),
            None,
            "no next on the last page"
        );
    }

    #[test]
    fn config_errors_name_the_bad_key() {
        let bad = serde_json::json!({
            "base_url": "http://127.0.0.1:1",
            "objects": { "employee": { "path": "/e", "pagination": { "style": "page", "page_param": "p", "size_param": "s", "size": "ten" } } }
        });
        let err = RestConfig::parse("hris", &bad)
            .expect_err("size must be a number")
            .to_string();
        assert!(
            err.contains("objects.employee.pagination"),
            "the message names the key: {err}"
        );
        let unknown = serde_json::json!({ "base_url": "http://127.0.0.1:1", "objcts": {} });
        let err = RestConfig::parse("hris", &unknown)
            .expect_err("unknown key")
            .to_string();
        assert!(err.contains("objcts"), "an unknown key is named: {err}");
    }

    #[test]
    fn a_cursor_is_capped_at_the_start_of_its_listing_in_its_own_shape() {
        let cap = DateTime::parse_from_rfc3339("2026-01-02T00:00:00Z")
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or_default();
        assert_eq!(
            capped_cursor("2026-01-03T10:00:00.000Z", cap),
            "2026-01-02T00:00:00.000Z",
            "a cursor past the listing's start is brought back to it"
        );
        assert_eq!(
            capped_cursor("2026-01-01T10:00:00.000Z", cap),
            "2026-01-01T10:00:00.000Z",
            "an earlier cursor is kept as it is"
        );
        assert_eq!(
            capped_cursor("1767398400000", cap),
            cap.timestamp_millis().to_string(),
            "milliseconds stay milliseconds"
        );
    }

    #[test]
    fn cursors_only_move_forward() {
        assert_eq!(
            later_cursor(Some("2026-01-02T00:00:00Z"), "2026-01-01T00:00:00Z"),
            "2026-01-02T00:00:00Z"
        );
        assert_eq!(
            later_cursor(Some("2026-01-02T00:00:00Z"), "2026-01-03T00:00:00Z"),
            "2026-01-03T00:00:00Z"
        );
        assert_eq!(later_cursor(None, "17"), "17");
    }
}
