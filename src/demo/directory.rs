//! "Acme Directory": the demo's identity provider, a SCIM 2.0 (RFC 7643, RFC 7644) server on
//! 127.0.0.1 that owns people's work e-mail and phone, as Okta or Entra ID would.
//!
//! - everything is under `/scim/v2` and needs `Authorization: Bearer <token>` (401 otherwise);
//!   bodies are `application/scim+json` (plain `application/json` is taken too), at most
//!   256 KiB (413 beyond);
//! - discovery: `GET /ServiceProviderConfig` (patch, filter, sort and etag supported, bulk not),
//!   `/ResourceTypes` (User with the enterprise extension, Group) and `/Schemas`;
//! - `/Users` and `/Groups`: `POST` (201, `Location`, `ETag`), `GET` one (`ETag`; 304 for a
//!   matching `If-None-Match`), `GET` a list (`filter`, `startIndex` from 1, `count` up to 200,
//!   `sortBy`/`sortOrder`; otherwise in the order created), `PUT` (replaces every writable
//!   attribute: what is not sent is gone; `id` and `meta` stay), `PATCH` (a `PatchOp` message,
//!   see [`patch`]), `DELETE` (204; a deleted user leaves their groups);
//! - every resource has `meta.created`, `meta.lastModified` (RFC 3339 with milliseconds, later
//!   with every change) and `meta.version`, a weak ETag `W/"n"` that `If-Match` on writes is
//!   compared with (weakly; `*` matches anything): 412 when it moved on. A write that changes
//!   nothing keeps the version and the modification time;
//! - `userName` is unique whatever its case (409 `uniqueness`); errors are SCIM Error messages
//!   with a `scimType` where RFC 7644 §3.12 has one (`invalidSyntax`, `invalidValue`,
//!   `invalidFilter`, `invalidPath`, `noTarget`, `mutability`, `uniqueness`);
//! - group members must be users or groups of the directory; a member's `display` and a
//!   manager's `displayName` are filled in from the user they refer to;
//! - people's own edits in the directory's screens ([`Directory::edit_user`]) are changes like
//!   any other, with a new version and modification time; it sends no webhooks: it is polled.

mod filter;
mod listing;
mod patch;
mod schema;
mod seed;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Path, Query, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use chrono::{DateTime, Utc};
use rand::SeedableRng;
use rand::rngs::StdRng;
use serde_json::{Map, Value, json};
use subtle::ConstantTimeEq;
use tokio_util::sync::CancellationToken;

use self::schema::{ENTERPRISE, ERROR, Resource};
use self::seed::SeedResource;
pub use self::seed::{DirectorySeed, seed};
use super::http::{MonotonicClock, RequestStats, etag_matches, serve_until, with_header};
use super::people::rfc3339;

/// Where the SCIM API lives on the server.
pub const BASE_PATH: &str = "/scim/v2";
pub const SCIM_JSON: &str = "application/scim+json";
/// The largest request body taken.
pub const BODY_LIMIT: usize = 256 * 1024;

/// A SCIM error (RFC 7644 §3.12).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ScimError {
    status: StatusCode,
    scim_type: Option<&'static str>,
    detail: String,
}

impl ScimError {
    fn new(status: StatusCode, scim_type: Option<&'static str>, detail: impl Into<String>) -> Self {
        Self {
            status,
            scim_type,
            detail: detail.into(),
        }
    }

    pub(crate) fn bad_request(scim_type: &'static str, detail: String) -> Self {
        Self::new(StatusCode::BAD_REQUEST, Some(scim_type), detail)
    }

    fn not_found(resource: Resource, id: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            None,
            format!("no {} with id {id}", resource.name()),
        )
    }
}

impl IntoResponse for ScimError {
    fn into_response(self) -> Response {
        let mut body = json!({ "schemas": [ERROR], "status": self.status.as_u16().to_string() });
        if let Some(t) = self.scim_type {
            body["scimType"] = json!(t);
        }
        body["detail"] = json!(self.detail);
        scim_json(self.status, &body)
    }
}

fn scim_json(status: StatusCode, body: &Value) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, SCIM_JSON)],
        body.to_string(),
    )
        .into_response()
}

/// A resource as the directory keeps it: its writable attributes (canonical names, extension
/// attributes under their URN) and its metadata.
#[derive(Debug, Clone)]
struct Stored {
    id: String,
    body: Map<String, Value>,
    version: u64,
    created: DateTime<Utc>,
    modified: DateTime<Utc>,
}

impl Stored {
    fn etag(&self) -> String {
        format!("W/\"{}\"", self.version)
    }
}

/// The users or the groups, in the order they were created.
#[derive(Debug, Default)]
struct Collection {
    by_order: BTreeMap<u64, Stored>,
    order_of: HashMap<String, u64>,
    next: u64,
}

impl Collection {
    fn insert(&mut self, stored: Stored) {
        self.next += 1;
        self.order_of.insert(stored.id.clone(), self.next);
        self.by_order.insert(self.next, stored);
    }

    fn get(&self, id: &str) -> Option<&Stored> {
        self.by_order.get(self.order_of.get(id)?)
    }

    fn get_mut(&mut self, id: &str) -> Option<&mut Stored> {
        self.by_order.get_mut(self.order_of.get(id)?)
    }

    fn remove(&mut self, id: &str) -> Option<Stored> {
        self.by_order.remove(&self.order_of.remove(id)?)
    }

    fn iter(&self) -> impl Iterator<Item = &Stored> {
        self.by_order.values()
    }
}

#[derive(Debug)]
struct Store {
    users: Collection,
    groups: Collection,
    clock: MonotonicClock,
    stats: RequestStats,
    ids: StdRng,
}

impl Store {
    fn of(&self, resource: Resource) -> &Collection {
        match resource {
            Resource::User => &self.users,
            Resource::Group => &self.groups,
        }
    }

    fn of_mut(&mut self, resource: Resource) -> &mut Collection {
        match resource {
            Resource::User => &mut self.users,
            Resource::Group => &mut self.groups,
        }
    }
}

struct Inner {
    store: Mutex<Store>,
    token: String,
    addr: SocketAddr,
}

/// A running Acme Directory. Cheap to clone.
#[derive(Clone)]
pub struct Directory {
    inner: Arc<Inner>,
}

/// Everything the directory holds, as its API answers it, in the order created.
#[derive(Debug, Clone, PartialEq)]
pub struct DirectorySnapshot {
    pub users: Vec<Value>,
    pub groups: Vec<Value>,
}

impl Directory {
    /// Starts the directory on 127.0.0.1, serving `seed` to clients that present `token`, until
    /// `cancel` is cancelled.
    pub async fn start(
        token: String,
        seed: DirectorySeed,
        cancel: CancellationToken,
    ) -> std::io::Result<Self> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let mut store = Store {
            users: Collection::default(),
            groups: Collection::default(),
            clock: MonotonicClock::default(),
            stats: RequestStats::default(),
            ids: StdRng::seed_from_u64(seed.ids),
        };
        let keep = |s: SeedResource| Stored {
            id: s.id,
            body: s.body,
            version: 1,
            created: s.created,
            modified: s.modified,
        };
        seed.users
            .into_iter()
            .for_each(|s| store.users.insert(keep(s)));
        seed.groups
            .into_iter()
            .for_each(|s| store.groups.insert(keep(s)));
        let directory = Self {
            inner: Arc::new(Inner {
                store: Mutex::new(store),
                token,
                addr,
            }),
        };
        let api = Router::new()
            .route("/ServiceProviderConfig", get(service_provider_config))
            .route("/ResourceTypes", get(resource_types))
            .route("/ResourceTypes/{name}", get(resource_type))
            .route("/Schemas", get(schemas))
            .route("/Schemas/{id}", get(schema))
            .merge(resource_routes(Resource::User))
            .merge(resource_routes(Resource::Group))
            .method_not_allowed_fallback(|| async {
                ScimError::new(
                    StatusCode::METHOD_NOT_ALLOWED,
                    None,
                    "the endpoint does not take this method",
                )
            });
        let app = Router::new()
            .nest(BASE_PATH, api)
            .fallback(|| async { ScimError::new(StatusCode::NOT_FOUND, None, "no such endpoint") })
            .layer(DefaultBodyLimit::max(BODY_LIMIT))
            .layer(axum::middleware::from_fn_with_state(
                directory.clone(),
                gate,
            ))
            .with_state(directory.clone());
        serve_until(listener, app, cancel);
        Ok(directory)
    }

    pub fn addr(&self) -> SocketAddr {
        self.inner.addr
    }

    /// The SCIM base URL, `http://127.0.0.1:<port>/scim/v2`.
    pub fn base_url(&self) -> String {
        format!("http://{}{BASE_PATH}", self.inner.addr)
    }

    fn lock(&self) -> MutexGuard<'_, Store> {
        self.inner.store.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn stats(&self) -> RequestStats {
        self.lock().stats.clone()
    }

    /// Users in the directory.
    pub fn len(&self) -> usize {
        self.lock().users.by_order.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Every user and group, as `GET` answers them.
    pub fn snapshot(&self) -> DirectorySnapshot {
        let store = self.lock();
        let base = self.base_url();
        let all = |r: Resource| {
            store
                .of(r)
                .iter()
                .map(|s| render(r, s, &base))
                .collect::<Vec<_>>()
        };
        DirectorySnapshot {
            users: all(Resource::User),
            groups: all(Resource::Group),
        }
    }

    /// One user, as `GET` answers it.
    pub fn user(&self, id: &str) -> Option<Value> {
        let store = self.lock();
        let s = store.users.get(id)?;
        Some(render(Resource::User, s, &self.base_url()))
    }

    /// The id of the user with this enterprise employee number.
    pub fn user_id_by_employee(&self, employee_number: &str) -> Option<String> {
        self.lock()
            .users
            .iter()
            .find(|s| {
                s.body
                    .get(ENTERPRISE)
                    .and_then(|e| e.get("employeeNumber"))
                    .and_then(Value::as_str)
                    == Some(employee_number)
            })
            .map(|s| s.id.clone())
    }

    /// Someone edits a user in the directory's screens: `edit` gets the attributes as the
    /// directory keeps them (canonical names, the enterprise extension's under its URN, no
    /// `id`/`meta`), unchecked. A change gets a new version and modification time. Returns false
    /// when there is no such user.
    pub fn edit_user(&self, id: &str, edit: impl FnOnce(&mut Map<String, Value>)) -> bool {
        self.edit(Resource::User, id, edit)
    }

    /// As [`Self::edit_user`], for a group.
    pub fn edit_group(&self, id: &str, edit: impl FnOnce(&mut Map<String, Value>)) -> bool {
        self.edit(Resource::Group, id, edit)
    }

    fn edit(
        &self,
        resource: Resource,
        id: &str,
        edit: impl FnOnce(&mut Map<String, Value>),
    ) -> bool {
        let mut store = self.lock();
        let Some(mut body) = store.of(resource).get(id).map(|s| s.body.clone()) else {
            return false;
        };
        edit(&mut body);
        commit(&mut store, resource, id, body);
        true
    }

    /// The API's gate: a bearer token equal to the directory's.
    fn authorized(&self, headers: &HeaderMap) -> bool {
        headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .is_some_and(|(_, token)| {
                bool::from(token.trim().as_bytes().ct_eq(self.inner.token.as_bytes()))
            })
    }
}

/// Checks the bearer token of every request, and counts the answers.
async fn gate(State(d): State<Directory>, request: Request, next: Next) -> Response {
    let response = if d.authorized(request.headers()) {
        next.run(request).await
    } else {
        with_header(
            ScimError::new(
                StatusCode::UNAUTHORIZED,
                None,
                "a valid bearer token is required: Authorization: Bearer <token>",
            )
            .into_response(),
            "www-authenticate",
            "Bearer realm=\"Acme Directory\"",
        )
    };
    d.lock().stats.count(response.status());
    response
}

/// Replaces a resource's attributes; a change bumps its version and modification time.
fn commit(store: &mut Store, resource: Resource, id: &str, body: Map<String, Value>) {
    let at = store.clock.tick();
    if let Some(s) = store.of_mut(resource).get_mut(id)
        && s.body != body
    {
        s.body = body;
        s.version += 1;
        s.modified = at;
    }
}

/// A resource as the API answers it: `schemas`, `id`, its attributes, `meta`; group members
/// with their `$ref`.
fn render(resource: Resource, s: &Stored, base: &str) -> Value {
    let mut schemas = vec![json!(resource.schema())];
    schemas.extend(
        resource
            .extensions()
            .iter()
            .filter(|u| s.body.contains_key(**u))
            .map(|u| json!(u)),
    );
    let mut out = Map::new();
    out.insert("schemas".into(), Value::Array(schemas));
    out.insert("id".into(), json!(s.id));
    for (k, v) in &s.body {
        let mut v = v.clone();
        if k == "members"
            && let Value::Array(members) = &mut v
        {
            for m in members.iter_mut().filter_map(Value::as_object_mut) {
                let kind = m.get("type").and_then(Value::as_str).unwrap_or("User");
                let endpoint = if kind == "Group" { "Groups" } else { "Users" };
                let id = m.get("value").and_then(Value::as_str).unwrap_or_default();
                let r = json!(format!("{base}/{endpoint}/{id}"));
                m.insert("$ref".into(), r);
            }
        }
        out.insert(k.clone(), v);
    }
    out.insert(
        "meta".into(),
        json!({
            "resourceType": resource.name(),
            "created": rfc3339(s.created),
            "lastModified": rfc3339(s.modified),
            "location": format!("{base}{}/{}", resource.endpoint(), s.id),
            "version": s.etag(),
        }),
    );
    Value::Object(out)
}

fn resource_routes(r: Resource) -> Router<Directory> {
    type Params = Query<HashMap<String, String>>;
    type Body = Result<Bytes, BytesRejection>;
    Router::new()
        .route(
            r.endpoint(),
            get(move |d: State<Directory>, q: Params| listing::list(d, r, q))
                .post(move |d: State<Directory>, h: HeaderMap, b: Body| create(d, r, h, b)),
        )
        .route(
            &format!("{}/{{id}}", r.endpoint()),
            get(move |d: State<Directory>, id: Path<String>, h: HeaderMap| get_one(d, r, id, h))
                .put(
                    move |d: State<Directory>, id: Path<String>, h: HeaderMap, b: Body| {
                        write(d, r, id, h, b, false)
                    },
                )
                .patch(
                    move |d: State<Directory>, id: Path<String>, h: HeaderMap, b: Body| {
                        write(d, r, id, h, b, true)
                    },
                )
                .delete(move |d: State<Directory>, id: Path<String>, h: HeaderMap| {
                    delete(d, r, id, h)
                }),
        )
}

async fn service_provider_config(State(d): State<Directory>) -> Response {
    scim_json(
        StatusCode::OK,
        &schema::service_provider_config(&d.base_url()),
    )
}

async fn resource_types(State(d): State<Directory>) -> Response {
    let base = d.base_url();
    let all = [Resource::User, Resource::Group].map(|r| schema::resource_type(r, &base));
    scim_json(StatusCode::OK, &listing::list_response(all.to_vec()))
}

async fn resource_type(State(d): State<Directory>, Path(name): Path<String>) -> Response {
    [Resource::User, Resource::Group]
        .into_iter()
        .find(|r| r.name().eq_ignore_ascii_case(&name))
        .map_or_else(
            || {
                ScimError::new(
                    StatusCode::NOT_FOUND,
                    None,
                    format!("no resource type {name}"),
                )
                .into_response()
            },
            |r| scim_json(StatusCode::OK, &schema::resource_type(r, &d.base_url())),
        )
}

async fn schemas(State(d): State<Directory>) -> Response {
    scim_json(
        StatusCode::OK,
        &listing::list_response(schema::schemas(&d.base_url())),
    )
}

async fn schema(State(d): State<Directory>, Path(id): Path<String>) -> Response {
    schema::schemas(&d.base_url())
        .into_iter()
        .find(|s| {
            s["id"]
                .as_str()
                .is_some_and(|s| s.eq_ignore_ascii_case(&id))
        })
        .map_or_else(
            || {
                ScimError::new(StatusCode::NOT_FOUND, None, format!("no schema {id}"))
                    .into_response()
            },
            |s| scim_json(StatusCode::OK, &s),
        )
}

/// A resource's answer, with its `ETag` (and `Location` when created).
fn answer(resource: Resource, s: &Stored, base: &str, status: StatusCode) -> Response {
    let body = render(resource, s, base);
    let mut r = with_header(scim_json(status, &body), "etag", &s.etag());
    if status == StatusCode::CREATED {
        r = with_header(
            r,
            "location",
            &format!("{base}{}/{}", resource.endpoint(), s.id),
        );
    }
    r
}

async fn get_one(
    State(d): State<Directory>,
    resource: Resource,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let store = d.lock();
    let Some(s) = store.of(resource).get(&id) else {
        return ScimError::not_found(resource, &id).into_response();
    };
    let unchanged = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| etag_matches(v, s.version));
    if unchanged {
        return with_header(StatusCode::NOT_MODIFIED.into_response(), "etag", &s.etag());
    }
    answer(resource, s, &d.base_url(), StatusCode::OK)
}

/// A request body: JSON (SCIM's or plain), an object, within the size limit.
fn read_body(
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Map<String, Value>, ScimError> {
    if let Some(ct) = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    {
        let mime = ct
            .split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase();
        if !(mime == "application/json" || mime == SCIM_JSON || mime.ends_with("+json")) {
            return Err(ScimError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                None,
                format!("bodies are {SCIM_JSON} (or application/json), not {mime}"),
            ));
        }
    }
    let body = body.map_err(|e| {
        ScimError::new(
            e.status(),
            None,
            if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                format!("the body is larger than {BODY_LIMIT} bytes")
            } else {
                e.body_text()
            },
        )
    })?;
    match serde_json::from_slice::<Value>(&body) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err(ScimError::bad_request(
            "invalidSyntax",
            "the body must be a JSON object".into(),
        )),
        Err(e) => Err(ScimError::bad_request(
            "invalidSyntax",
            format!("the body is not JSON: {e}"),
        )),
    }
}

/// What every write checks and completes once the attributes are read: `userName` unique, at
/// most one primary value per attribute, members that exist (with their `display`), a
/// manager's `displayName`.
fn complete(
    store: &Store,
    resource: Resource,
    id: Option<&str>,
    body: &mut Map<String, Value>,
) -> Result<(), ScimError> {
    schema::check_required(resource, body)?;
    for (name, v) in body.iter() {
        if let Value::Array(items) = v {
            let primaries = items
                .iter()
                .filter(|i| i.get("primary") == Some(&Value::Bool(true)))
                .count();
            if primaries > 1 {
                return Err(ScimError::bad_request(
                    "invalidValue",
                    format!("{name}: primary is true for at most one value"),
                ));
            }
        }
    }
    let display = |s: &Stored| {
        s.body
            .get("displayName")
            .or_else(|| s.body.get("userName"))
            .cloned()
    };
    match resource {
        Resource::User => {
            let name = body
                .get("userName")
                .and_then(Value::as_str)
                .unwrap_or_default();
            let taken = store
                .users
                .iter()
                .any(|u| Some(u.id.as_str()) != id && user_name(u).eq_ignore_ascii_case(name));
            if taken {
                return Err(ScimError::new(
                    StatusCode::CONFLICT,
                    Some("uniqueness"),
                    format!("userName {name} is taken"),
                ));
            }
            if let Some(Value::Object(m)) =
                body.get_mut(ENTERPRISE).and_then(|e| e.get_mut("manager"))
            {
                let manager = m.get("value").and_then(Value::as_str);
                match manager.and_then(|v| store.users.get(v)).and_then(display) {
                    Some(name) => m.insert("displayName".into(), name),
                    None => m.remove("displayName"),
                };
            }
        }
        Resource::Group => {
            if let Some(Value::Array(members)) = body.get_mut("members") {
                for m in members.iter_mut().filter_map(Value::as_object_mut) {
                    let value = m.get("value").and_then(Value::as_str).unwrap_or_default();
                    let (kind, found) = match store.users.get(value) {
                        Some(u) => ("User", Some(u)),
                        None => ("Group", store.groups.get(value)),
                    };
                    let Some(found) = found.filter(|_| Some(value) != id) else {
                        return Err(ScimError::bad_request(
                            "invalidValue",
                            format!("member {value} is not a user or group of this directory"),
                        ));
                    };
                    if let Some(name) = display(found) {
                        m.insert("display".into(), name);
                    }
                    m.insert("type".into(), json!(kind));
                    m.remove("$ref");
                }
            }
        }
    }
    Ok(())
}

fn user_name(s: &Stored) -> &str {
    s.body
        .get("userName")
        .and_then(Value::as_str)
        .unwrap_or_default()
}

async fn create(
    State(d): State<Directory>,
    resource: Resource,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let created = read_body(&headers, body).and_then(|b| {
        let mut body = schema::read_resource(resource, b)?;
        let mut store = d.lock();
        complete(&store, resource, None, &mut body)?;
        let at = store.clock.tick();
        let id = seed::uuid(&mut store.ids);
        let stored = Stored {
            id,
            body,
            version: 1,
            created: at,
            modified: at,
        };
        store.of_mut(resource).insert(stored.clone());
        Ok(stored)
    });
    match created {
        Ok(s) => answer(resource, &s, &d.base_url(), StatusCode::CREATED),
        Err(e) => e.into_response(),
    }
}

/// `If-Match` against the resource's version: 412 when it moved on.
fn precondition(headers: &HeaderMap, s: &Stored) -> Result<(), ScimError> {
    match headers.get(header::IF_MATCH).and_then(|v| v.to_str().ok()) {
        Some(tags) if !etag_matches(tags, s.version) => Err(ScimError::new(
            StatusCode::PRECONDITION_FAILED,
            None,
            format!(
                "If-Match {tags} does not match the current version {}",
                s.etag()
            ),
        )),
        _ => Ok(()),
    }
}

/// PUT (replace) and PATCH.
async fn write(
    State(d): State<Directory>,
    resource: Resource,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
    patching: bool,
) -> Response {
    let mut store = d.lock();
    let written = (|| {
        let current = store
            .of(resource)
            .get(&id)
            .ok_or_else(|| ScimError::not_found(resource, &id))?;
        precondition(&headers, current)?;
        let request = read_body(&headers, body)?;
        let mut next = if patching {
            let mut next = current.body.clone();
            patch::apply(resource, &mut next, &request)?;
            next
        } else {
            schema::read_resource(resource, request)?
        };
        complete(&store, resource, Some(&id), &mut next)?;
        commit(&mut store, resource, &id, next);
        store
            .of(resource)
            .get(&id)
            .cloned()
            .ok_or_else(|| ScimError::not_found(resource, &id))
    })();
    match written {
        Ok(s) => answer(resource, &s, &d.base_url(), StatusCode::OK),
        Err(e) => e.into_response(),
    }
}

async fn delete(
    State(d): State<Directory>,
    resource: Resource,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let mut store = d.lock();
    let Some(current) = store.of(resource).get(&id) else {
        return ScimError::not_found(resource, &id).into_response();
    };
    if let Err(e) = precondition(&headers, current) {
        return e.into_response();
    }
    store.of_mut(resource).remove(&id);
    // Whoever is deleted leaves the groups they were in.
    let holding: Vec<(String, Map<String, Value>)> = store
        .groups
        .iter()
        .filter_map(|g| {
            let Some(Value::Array(members)) = g.body.get("members") else {
                return None;
            };
            let kept: Vec<Value> = members
                .iter()
                .filter(|m| m.get("value").and_then(Value::as_str) != Some(id.as_str()))
                .cloned()
                .collect();
            (kept.len() != members.len()).then(|| {
                let mut body = g.body.clone();
                if kept.is_empty() {
                    body.remove("members");
                } else {
                    body.insert("members".into(), Value::Array(kept));
                }
                (g.id.clone(), body)
            })
        })
        .collect();
    for (group, body) in holding {
        commit(&mut store, Resource::Group, &group, body);
    }
    StatusCode::NO_CONTENT.into_response()
}
