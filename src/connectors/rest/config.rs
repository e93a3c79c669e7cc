//! The `rest` connector's configuration: endpoints, pagination, incremental reads, writes,
//! authentication, webhooks, polling and reconciliation, validated on load with messages that
//! name the bad key.

use super::*;

/// A system reached over HTTP, described as data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RestConfig {
    /// The API's base URL, e.g. `https://api.example.com/v1`; object paths are below it.
    pub base_url: String,
    /// How requests authenticate (none by default); secrets by keychain name.
    #[serde(default)]
    pub auth: Auth,
    /// How long one request may take, in milliseconds (default 10,000).
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
    /// The `User-Agent` header sent (default `concord/` and the version).
    #[serde(default)]
    pub user_agent: Option<String>,
    /// Object name -> where and how its records are read and written.
    pub objects: BTreeMap<String, ObjectEndpoints>,
    /// Signed webhooks the system sends to `/hooks/{system}`, and how to read them.
    #[serde(default)]
    pub webhooks: Option<WebhookConfig>,
    /// How often the system is polled for changes.
    #[serde(default)]
    pub poll: Option<PollConfig>,
    /// Full listings compared with what the engine knows (missed changes, deletes). Polled
    /// systems without webhooks reconcile every 600 s unless this says otherwise.
    #[serde(default)]
    pub reconcile: Option<ReconcileConfig>,
    /// Where the system's error answers keep their readable message (a JSON pointer such as
    /// `/result/reason`), when not in `message`, `detail`, `error_description` or `errors`.
    #[serde(default)]
    pub error_message_pointer: Option<String>,
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
    /// A response header holding the total count of a listing (e.g. `X-Total-Count`).
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
    /// The HTTP method: `POST`, `PUT`, `PATCH` or `DELETE`.
    pub method: String,
    /// The path below the base URL, with `{id}` for the record's id (default: the object's
    /// `path` for creates, its `item_path` or `path/{id}` for updates and deletes).
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
    /// The header carrying the HMAC-SHA256 signature (hex), e.g. `X-Signature`.
    pub signature_header: String,
    /// Text before the hex digest in the signature header, e.g. `sha256=`.
    #[serde(default)]
    pub signature_prefix: String,
    /// Header with the unix time of signing; required with a tolerance.
    #[serde(default)]
    pub timestamp_header: Option<String>,
    /// How old a signed timestamp may be, in seconds, before the webhook is refused as a
    /// replay (default 300).
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
    /// JSON pointer to the event's unique id, so a delivery sent twice is applied once
    /// (absent: the record's id with its version, or a hash of the event).
    #[serde(default)]
    pub event_key_pointer: Option<String>,
    /// JSON pointer to the event's type, compared with `delete_values`.
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
    /// Seconds between polls for changes (fractions allowed).
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

pub(super) fn default_max_delete_share() -> f64 {
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
