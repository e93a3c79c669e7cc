//! The console API: every engine operation the UI needs, over HTTP on loopback, under `/api`.
//! Each route checks the caller's role; errors are `{code, message}` with a fitting status;
//! sensitive values are masked for roles that may not see them. The OpenAPI document is
//! generated from these handlers and types (`/api/openapi.json`), and the UI's TypeScript
//! types are generated from that document.

mod admin;
mod approvals;
pub mod auth;
mod breaker;
mod config_history;
mod dead_letters;
mod doc;
mod exceptions;
mod input;
mod mappings;
mod mask;
mod metrics;
mod plan;
mod policies;
mod prometheus;
mod records;
mod repair;
mod scheduled;
mod secrets;
mod sql;
mod systems;
pub mod token_store;

pub use doc::ApiDoc;
pub(crate) use input::{ApiJson, ApiPath, ApiQuery};
pub use metrics::{Metrics, MetricsSample, SystemHealth, percentile};

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post, put};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use sqlx::Row;
use utoipa::{IntoParams, ToSchema};

use crate::audit::AuditEntry;
use crate::model::{
    FieldPolicy, Fields, Mapping, ObjectPolicies, RecordId, SystemConfig, WorkspaceConfig,
};
use crate::ops::{
    AuditRow, Choice, DeadLetterFilter, DeadLetterView, DeleteDecision, ExceptionFilter,
    ExceptionView, ReplayOutcome, ReplayPreview, ResolveOutcome,
};
use crate::runtime::Engine;
use crate::secrets::{Secret, SharedSecrets};
use crate::server::ApiError;
use admin::{Refusal, Removal, config_entry, require_confirmation};
use auth::{Access, HasTokens, Principal, Role, Tokens};
use mask::Redactor;

/// Shared state of the console API.
#[derive(Clone)]
pub struct Console {
    pub engine: Engine,
    pub tokens: Arc<Tokens>,
    pub secrets: SharedSecrets,
}

impl HasTokens for Console {
    fn tokens(&self) -> &Tokens {
        &self.tokens
    }
}

type ApiResult<T> = Result<Json<T>, ApiError>;

/// A page of a list, with the number of items that match the filter in `X-Total-Count`.
type Listed<T> = ([(axum::http::HeaderName, String); 1], Json<Vec<T>>);

const AUDIT_COUNT_CAP: i64 = 100_000;

fn listed<T>(items: Vec<T>, total: i64) -> Listed<T> {
    (
        [(
            axum::http::HeaderName::from_static("x-total-count"),
            total.to_string(),
        )],
        Json(items),
    )
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct NewToken {
    pub name: String,
    pub role: Role,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct IssuedToken {
    pub token: String,
    pub principal: Principal,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct SecretValue {
    pub value: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ConnectionTest {
    pub ok: bool,
    pub message: String,
    /// The object listed.
    pub object: Option<String>,
    /// Records shown as samples (at most 5 of the first page).
    pub sample_count: usize,
    /// Records the first page held.
    #[serde(default)]
    pub page_count: usize,
    /// Records the whole listing has, when the system says.
    #[serde(default)]
    pub total: Option<u64>,
    /// Whether more pages follow the first.
    #[serde(default)]
    pub more_pages: bool,
    /// Field paths seen in the samples, with an example value each.
    pub fields: BTreeMap<String, Value>,
    pub samples: Vec<Value>,
}

impl ConnectionTest {
    fn failed(object: Option<&str>, message: String) -> Self {
        Self {
            ok: false,
            message,
            object: object.map(str::to_owned),
            sample_count: 0,
            page_count: 0,
            total: None,
            more_pages: false,
            fields: BTreeMap::new(),
            samples: Vec::new(),
        }
    }
}

/// A system's config to try before it is saved.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct UnsavedSystemTest {
    pub system: SystemConfig,
    /// Which object to list (default: the first the config declares).
    pub object: Option<String>,
    /// Secret values entered again for this test only (secret name -> value): needed when the
    /// draft sends a stored secret to an address it was not saved for. Used for this one
    /// request; never stored or logged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secrets: Option<BTreeMap<String, String>>,
}

impl std::fmt::Debug for UnsavedSystemTest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UnsavedSystemTest")
            .field("system", &self.system)
            .field("object", &self.object)
            .field(
                "secrets",
                &self.secrets.as_ref().map(|s| s.keys().collect::<Vec<_>>()),
            )
            .finish()
    }
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ObjectQuery {
    /// Which object to list (default: the first the system maps).
    #[param(min_length = 1)]
    pub object: Option<String>,
}

impl input::Checked for ObjectQuery {
    fn check(&self) -> Result<(), String> {
        input::not_empty("object", self.object.as_deref())
    }
}

/// Whether a secret is in the OS keychain; its value is never sent.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct SecretStatus {
    pub name: String,
    pub stored: bool,
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RecordLookup {
    /// The system whose id you know.
    #[param(min_length = 1)]
    pub system: String,
    /// The record's id in that system.
    #[param(min_length = 1)]
    pub external_id: String,
}

impl input::Checked for RecordLookup {
    fn check(&self) -> Result<(), String> {
        input::not_empty("system", Some(&self.system))?;
        input::not_empty("external_id", Some(&self.external_id))
    }
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Discovery {
    pub object: String,
    /// Field paths seen in the sample records, with an example value each.
    pub fields: BTreeMap<String, Value>,
    pub samples: Vec<Value>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct PreviewRequest {
    pub mapping: Mapping,
    /// A record as the system holds it.
    pub record: Map<String, Value>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct PreviewResponse {
    /// The record read through the mapping, as canonical values.
    #[schema(value_type = Object)]
    pub canonical: Fields,
    /// Per field, why it could not be read.
    pub errors: Vec<Value>,
    /// The canonical values written back through the mapping, as the system would hold them.
    pub written: Map<String, Value>,
    /// Canonical fields the mapping cannot write (irreversible transforms).
    pub read_only: Vec<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ResolveRequest {
    pub choice: Choice,
    #[serde(default)]
    pub note: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct NoteRequest {
    pub note: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DeleteDecisionRequest {
    pub decision: DeleteDecision,
    #[serde(default)]
    pub note: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct MatchRequest {
    /// Link to this record; absent: create a new one.
    pub link_to: Option<RecordId>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ReplayResponse {
    pub outcome: ReplayOutcome,
}

/// Dead letters a person selected, to replay in one request.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReplaySelection {
    /// At most 1000 ids.
    pub ids: Vec<i64>,
}

/// What replaying one selected dead letter did: its outcome, or why it could not.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct SelectedReplay {
    pub id: i64,
    pub outcome: Option<ReplayOutcome>,
    pub error: Option<ErrorBody>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct SelectionReplayResponse {
    /// In the order of the request's ids.
    pub results: Vec<SelectedReplay>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct BatchReplayResponse {
    pub queued: usize,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct DiscardRequest {
    pub reason: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ResolveResponse {
    pub outcome: ResolveOutcome,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct RecordView {
    pub id: RecordId,
    pub object: String,
    pub deleted: bool,
    #[schema(value_type = Object)]
    pub golden: Fields,
    /// System -> its external id.
    pub links: BTreeMap<String, String>,
    /// System -> what it was last known to hold.
    #[schema(value_type = Object)]
    pub shadows: BTreeMap<String, Fields>,
}

#[derive(Debug, Default, Serialize, Deserialize, ToSchema, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    pub record_id: Option<RecordId>,
    pub field: Option<String>,
    pub actor: Option<String>,
    pub system: Option<String>,
    /// RFC 3339; entries at or after.
    #[param(format = DateTime)]
    pub since: Option<String>,
    /// RFC 3339; entries before.
    #[param(format = DateTime)]
    pub until: Option<String>,
    /// At most this many, newest first (default 100).
    #[param(minimum = 1, maximum = 10000)]
    pub limit: Option<i64>,
    #[param(minimum = 0, maximum = 1000000000)]
    pub offset: Option<i64>,
}

impl input::Checked for AuditQuery {
    fn check(&self) -> Result<(), String> {
        input::rfc3339("since", self.since.as_deref())?;
        input::rfc3339("until", self.until.as_deref())?;
        input::page(self.limit, self.offset)
    }
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ExceptionQuery {
    pub kind: Option<String>,
    pub system: Option<String>,
    pub field: Option<String>,
    pub status: Option<String>,
    pub record_id: Option<RecordId>,
    /// Only exceptions older than this many seconds (at most a century).
    #[param(minimum = 0, maximum = 3153600000_i64)]
    pub older_than_secs: Option<i64>,
    /// Only those awaiting a second person's approval (`true`), or only those not (`false`).
    pub awaiting_approval: Option<bool>,
    #[param(minimum = 1, maximum = 10000)]
    pub limit: Option<i64>,
    #[param(minimum = 0, maximum = 1000000000)]
    pub offset: Option<i64>,
}

impl input::Checked for ExceptionQuery {
    fn check(&self) -> Result<(), String> {
        input::in_range(
            "older_than_secs",
            self.older_than_secs,
            0,
            input::MAX_AGE_SECS,
        )?;
        input::page(self.limit, self.offset)
    }
}

impl ExceptionQuery {
    fn filter(self, now: chrono::DateTime<chrono::Utc>) -> ExceptionFilter {
        ExceptionFilter {
            kind: self.kind,
            system: self.system,
            field: self.field,
            status: self.status,
            record_id: self.record_id,
            awaiting_approval: self.awaiting_approval,
            ids: None,
            // Checked against MAX_AGE_SECS before: no overflow.
            opened_before: self
                .older_than_secs
                .and_then(chrono::Duration::try_seconds)
                .and_then(|age| now.checked_sub_signed(age)),
            limit: self.limit,
            offset: self.offset,
        }
    }
}

#[utoipa::path(get, path = "/api/me", responses((status = 200, body = Principal)), security(("token" = [])))]
async fn me(who: Principal) -> Json<Principal> {
    Json(who)
}

#[utoipa::path(post, path = "/api/tokens", request_body = NewToken,
    responses((status = 200, body = IssuedToken), (status = 403, description = "not an admin"),
              (status = 422, description = "an empty name, or one with control characters")),
    security(("token" = [])))]
async fn issue_token(
    State(c): State<Console>,
    who: Principal,
    ApiJson(req): ApiJson<NewToken>,
) -> ApiResult<IssuedToken> {
    let name = auth::check_name(&req.name)
        .map_err(|m| ApiError(StatusCode::UNPROCESSABLE_ENTITY, "invalid_input", m))?;
    let (token, principal) = c
        .tokens
        .issue_by(Principal::new(name, req.role), Some(&who.id));
    if let Some(info) = c.tokens.get(&principal.id) {
        let kept = token_store::keep(
            &c.engine,
            &c.tokens,
            &info.id,
            &admin::token_issued(&who, &info),
        )
        .await;
        if let Err(e) = kept {
            // Not kept, not handed out: the token must not work for this launch only.
            c.tokens.revoke(&info.id);
            return Err(e.into());
        }
    }
    Ok(Json(IssuedToken { token, principal }))
}

#[utoipa::path(get, path = "/api/workspace", responses((status = 200, body = WorkspaceConfig)), security(("token" = [])))]
async fn get_workspace(State(c): State<Console>) -> Json<WorkspaceConfig> {
    Json(c.engine.workspace().config.clone())
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct EngineState {
    pub paused: bool,
}

#[utoipa::path(put, path = "/api/engine", request_body = EngineState,
    responses((status = 200, body = EngineState), (status = 403, description = "not an admin")), security(("token" = [])))]
async fn put_engine(
    State(c): State<Console>,
    who: Principal,
    ApiJson(state): ApiJson<EngineState>,
) -> ApiResult<EngineState> {
    let was = c.engine.is_paused();
    c.engine.set_paused(state.paused);
    tracing::info!(by = %who.name, paused = state.paused, "sync paused state changed");
    let entry = config_entry(
        &who,
        if state.paused { "paused" } else { "resumed" },
        Some(json!({ "paused": was })),
        Some(json!({ "paused": state.paused })),
        json!({ "changed": was != state.paused }),
    );
    c.engine.record_audit(&[entry]).await?;
    Ok(Json(EngineState {
        paused: c.engine.is_paused(),
    }))
}

/// Every error's body.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    /// Stable and machine-readable, e.g. `forbidden`, `invalid_config`, `not_found`.
    pub code: String,
    /// For people: what went wrong and, where it helps, what to do.
    pub message: String,
}

/// The desktop window loads the UI from the app's own origin and calls the API on loopback;
/// only those origins may make cross-origin calls (and they still need the token).
fn desktop_cors() -> tower_http::cors::CorsLayer {
    use axum::http::{HeaderValue, Method, header};
    let origins = [
        "tauri://localhost",
        "http://tauri.localhost",
        "https://tauri.localhost",
    ]
    .map(HeaderValue::from_static);
    tower_http::cors::CorsLayer::new()
        .allow_origin(origins)
        .allow_methods([Method::GET, Method::POST, Method::PUT, Method::DELETE])
        .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE])
        // Lists' totals, and what an ownership save decided, which the window reads like a
        // browser on the same origin does.
        .expose_headers([
            header::HeaderName::from_static("x-total-count"),
            header::HeaderName::from_static("x-decided"),
        ])
}

const ADMIN_ONLY: &[Role] = &[];

/// Every console route and who may call it. [`router`] checks each request against this table
/// before its handler reads anything (a route missing here is refused, never open), and the
/// OpenAPI document lists each operation's roles from it.
#[rustfmt::skip]
pub const ROUTES: &[(&str, &str, Access)] = &[
    ("GET", "/api/openapi.json", Access::Public),
    ("GET", "/api/me", Access::Read),
    ("POST", "/api/tokens", Access::Roles(ADMIN_ONLY, "issue tokens")),
    ("GET", "/api/workspace", Access::Read),
    ("POST", "/api/systems/test", Access::Roles(ADMIN_ONLY, "test connections")),
    ("PUT", "/api/systems/{id}", Access::Roles(ADMIN_ONLY, "edit systems")),
    ("POST", "/api/systems/{id}/test", Access::Roles(ADMIN_ONLY, "test connections")),
    ("GET", "/api/systems/{id}/discover", Access::Roles(ADMIN_ONLY, "discover schemas")),
    ("GET", "/api/objects/{object}/golden-sample", Access::Roles(ADMIN_ONLY, "discover schemas")),
    ("GET", "/api/secrets/{name}", Access::Roles(ADMIN_ONLY, "look up secrets")),
    ("PUT", "/api/secrets/{name}", Access::Roles(ADMIN_ONLY, "store secrets")),
    ("DELETE", "/api/secrets/{name}", Access::Roles(ADMIN_ONLY, "delete secrets")),
    ("POST", "/api/mappings/preview", Access::Roles(ADMIN_ONLY, "try mappings")),
    ("POST", "/api/mappings/what-if", Access::Roles(ADMIN_ONLY, "try mappings")),
    ("PUT", "/api/mappings/{system}/{object}", Access::Roles(ADMIN_ONLY, "edit mappings")),
    ("PUT", "/api/policies/{object}", Access::Roles(ADMIN_ONLY, "edit ownership")),
    ("POST", "/api/policies/{object}/what-if", Access::Roles(ADMIN_ONLY, "try ownership")),
    ("GET", "/api/exceptions", Access::Read),
    ("POST", "/api/exceptions/bulk-resolve", Access::Roles(&[Role::Steward], "resolve exceptions")),
    ("POST", "/api/exceptions/bulk-resolve/preview", Access::Roles(&[Role::Steward], "resolve exceptions")),
    ("GET", "/api/approvals", Access::Read),
    ("GET", "/api/scheduled", Access::Read),
    ("GET", "/api/exceptions/{id}", Access::Read),
    ("POST", "/api/exceptions/{id}/resolve", Access::Roles(&[Role::Steward], "resolve exceptions")),
    ("POST", "/api/exceptions/{id}/dismiss", Access::Roles(&[Role::Steward], "dismiss exceptions")),
    ("POST", "/api/exceptions/{id}/match", Access::Roles(&[Role::Steward], "resolve matches")),
    ("POST", "/api/exceptions/{id}/delete-decision", Access::Roles(&[Role::Steward], "decide deletes")),
    ("GET", "/api/dead-letters", Access::Read),
    ("GET", "/api/dead-letters/causes", Access::Read),
    ("POST", "/api/dead-letters/discard-selected", Access::Roles(&[Role::Support], "discard dead letters")),
    ("POST", "/api/dead-letters/replay", Access::Roles(&[Role::Support], "replay dead letters")),
    ("POST", "/api/dead-letters/replay-selected", Access::Roles(&[Role::Support], "replay dead letters")),
    ("GET", "/api/dead-letters/{id}", Access::Read),
    ("GET", "/api/dead-letters/{id}/preview", Access::Read),
    ("POST", "/api/dead-letters/{id}/replay", Access::Roles(&[Role::Support], "replay dead letters")),
    ("POST", "/api/dead-letters/{id}/discard", Access::Roles(&[Role::Support], "discard dead letters")),
    ("GET", "/api/systems/{id}/plan", Access::Read),
    ("GET", "/api/systems/{id}/plan.csv", Access::Read),
    ("POST", "/api/systems/{id}/enable", Access::Roles(ADMIN_ONLY, "enable a system's writes")),
    ("GET", "/api/systems/{id}/breaker", Access::Read),
    ("GET", "/api/config/history", Access::Read),
    ("GET", "/api/config/history/{id}", Access::Read),
    ("POST", "/api/config/history/{id}/restore", Access::Roles(ADMIN_ONLY, "restore configuration")),
    ("POST", "/api/systems/{id}/breaker/confirm", Access::Roles(ADMIN_ONLY, "confirm writes held by the circuit breaker")),
    ("POST", "/api/systems/{id}/breaker/discard", Access::Roles(ADMIN_ONLY, "discard writes held by the circuit breaker")),
    ("GET", "/api/audit", Access::Read),
    ("GET", "/api/audit/chain", Access::Read),
    ("GET", "/api/records", Access::Read),
    ("GET", "/api/records/{id}", Access::Read),
    ("GET", "/api/metrics", Access::Read),
    ("GET", "/metrics", Access::Roles(&[Role::Steward, Role::Support, Role::Viewer, Role::Scrape], "read metrics")),
    ("GET", "/api/metrics/history", Access::Read),
    ("PUT", "/api/engine", Access::Roles(ADMIN_ONLY, "pause or resume sync")),
    ("POST", "/api/dead-letters/{id}/replan", Access::Roles(&[Role::Support], "plan dead letters again")),
    ("POST", "/api/systems/{id}/repush", Access::Roles(&[Role::Support], "push records again")),
    ("POST", "/api/systems/{id}/reconcile", Access::Roles(&[Role::Support], "reconcile systems")),
    ("GET", "/api/reconciliations", Access::Read),
    ("GET", "/api/reconciliations/{id}", Access::Read),
    ("POST", "/api/reconciliations/{id}/confirm", Access::Roles(ADMIN_ONLY, "confirm deletes found by reconciliation")),
    ("POST", "/api/reconciliations/{id}/dismiss", Access::Roles(ADMIN_ONLY, "dismiss deletes found by reconciliation")),
    ("POST", "/api/mappings/check", Access::Roles(ADMIN_ONLY, "check mappings")),
    ("GET", "/api/tokens", Access::Roles(ADMIN_ONLY, "list tokens")),
    ("DELETE", "/api/tokens/{id}", Access::Roles(ADMIN_ONLY, "revoke tokens")),
    ("DELETE", "/api/systems/{id}", Access::Roles(ADMIN_ONLY, "remove systems")),
    ("GET", "/api/systems/{id}/change-capture", Access::Roles(ADMIN_ONLY, "read change capture")),
    ("POST", "/api/systems/{id}/change-capture", Access::Roles(ADMIN_ONLY, "install change capture")),
];

/// The rule for a request, by its method and the route it matched.
pub fn route_access(method: &str, route: &str) -> Option<Access> {
    if route == "/api/{*rest}" {
        return Some(Access::Public);
    }
    let method = if method == "HEAD" { "GET" } else { method };
    ROUTES
        .iter()
        .find(|(m, p, _)| *m == method && *p == route)
        .map(|(_, _, a)| *a)
}

/// Checks the caller against [`ROUTES`] and hands the handler who it is; a 401 or 403 goes back
/// before the body is read.
async fn authorize(
    State(c): State<Console>,
    route: Option<axum::extract::MatchedPath>,
    mut req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let route = route.as_ref().map_or("", |r| r.as_str());
    let Some(access) = route_access(req.method().as_str(), route) else {
        tracing::error!(method = %req.method(), route, "console route without an access rule");
        return ApiError(
            StatusCode::INTERNAL_SERVER_ERROR,
            "no_access_rule",
            "this route has no access rule; it is refused".into(),
        )
        .into_response();
    };
    if access == Access::Public {
        return next.run(req).await;
    }
    let who = match auth::authenticate(req.headers(), &c.tokens) {
        Ok(who) => who,
        Err(e) => return e.into_response(),
    };
    if let Access::Roles(roles, what) = access
        && let Err(e) = who.require(roles, what)
    {
        return e.into_response();
    }
    if access == Access::Read && who.role == Role::Scrape {
        return ApiError(
            StatusCode::FORBIDDEN,
            "forbidden",
            "a scrape token may only read /metrics".into(),
        )
        .into_response();
    }
    req.extensions_mut().insert(who);
    next.run(req).await
}

/// The console API router, to be mounted at the server root (routes start with `/api`).
pub fn router(console: Console) -> Router {
    Router::new()
        .route("/api/openapi.json", get(doc::openapi_json))
        .route("/metrics", get(prometheus::prometheus_metrics))
        .route("/api/me", get(me))
        .route("/api/tokens", post(issue_token))
        .route("/api/workspace", get(get_workspace))
        .route("/api/systems/test", post(systems::test_unsaved_system))
        .route("/api/systems/{id}", put(systems::put_system))
        .route("/api/systems/{id}/test", post(systems::test_system))
        .route("/api/systems/{id}/discover", get(systems::discover))
        .route(
            "/api/objects/{object}/golden-sample",
            get(records::golden_sample),
        )
        .route(
            "/api/secrets/{name}",
            get(secrets::secret_status)
                .put(secrets::put_secret)
                .delete(secrets::delete_secret),
        )
        .route("/api/mappings/preview", post(mappings::preview_mapping))
        .route("/api/mappings/what-if", post(mappings::what_if_mapping))
        .route(
            "/api/mappings/{system}/{object}",
            put(mappings::put_mapping),
        )
        .route("/api/policies/{object}", put(policies::put_policies))
        .route(
            "/api/policies/{object}/what-if",
            post(policies::what_if_policies),
        )
        .route("/api/exceptions", get(exceptions::list_exceptions))
        .route(
            "/api/exceptions/bulk-resolve",
            post(approvals::bulk_resolve),
        )
        .route(
            "/api/exceptions/bulk-resolve/preview",
            post(approvals::bulk_preview),
        )
        .route("/api/approvals", get(approvals::approval_queue))
        .route("/api/scheduled", get(scheduled::scheduled_changes))
        .route("/api/exceptions/{id}", get(exceptions::get_exception))
        .route(
            "/api/exceptions/{id}/resolve",
            post(exceptions::resolve_exception),
        )
        .route(
            "/api/exceptions/{id}/dismiss",
            post(exceptions::dismiss_exception),
        )
        .route(
            "/api/exceptions/{id}/match",
            post(exceptions::resolve_match),
        )
        .route(
            "/api/exceptions/{id}/delete-decision",
            post(exceptions::decide_delete),
        )
        .route("/api/dead-letters", get(dead_letters::list_dead_letters))
        .route(
            "/api/dead-letters/causes",
            get(dead_letters::dead_letter_causes),
        )
        .route(
            "/api/dead-letters/discard-selected",
            post(dead_letters::discard_selected),
        )
        .route(
            "/api/dead-letters/replay",
            post(dead_letters::replay_matching),
        )
        .route(
            "/api/dead-letters/replay-selected",
            post(dead_letters::replay_selected),
        )
        .route("/api/dead-letters/{id}", get(dead_letters::get_dead_letter))
        .route(
            "/api/dead-letters/{id}/preview",
            get(dead_letters::preview_replay),
        )
        .route("/api/dead-letters/{id}/replay", post(dead_letters::replay))
        .route(
            "/api/dead-letters/{id}/discard",
            post(dead_letters::discard),
        )
        .route("/api/systems/{id}/plan", get(plan::plan))
        .route("/api/systems/{id}/plan.csv", get(plan::plan_csv))
        .route("/api/systems/{id}/enable", post(plan::enable))
        .route("/api/systems/{id}/breaker", get(breaker::breaker_state))
        .route("/api/config/history", get(config_history::history))
        .route("/api/config/history/{id}", get(config_history::version))
        .route(
            "/api/config/history/{id}/restore",
            post(config_history::restore),
        )
        .route(
            "/api/systems/{id}/breaker/confirm",
            post(breaker::confirm_held_writes),
        )
        .route(
            "/api/systems/{id}/breaker/discard",
            post(breaker::discard_held_writes),
        )
        .route("/api/audit", get(records::audit))
        .route("/api/audit/chain", get(records::audit_chain))
        .route("/api/records", get(records::find_record))
        .route("/api/records/{id}", get(records::record))
        .route("/api/metrics", get(metrics::metrics))
        .route("/api/metrics/history", get(metrics::metrics_history))
        .route("/api/engine", put(put_engine))
        .merge(repair::router())
        .merge(admin::router())
        .merge(sql::router())
        .route(
            "/api/{*rest}",
            axum::routing::any(|| async { not_found_json() }),
        )
        .route_layer(axum::middleware::from_fn_with_state(
            console.clone(),
            authorize,
        ))
        .method_not_allowed_fallback(|method: axum::http::Method| async move {
            ApiError(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                format!("this route does not take {method}"),
            )
        })
        .layer(desktop_cors())
        .with_state(console)
}

impl Engine {
    /// Audit search by record, field, actor, system and time, newest first.
    pub async fn search_audit(&self, q: &AuditQuery) -> crate::Result<Vec<AuditRow>> {
        let mut b: sqlx::QueryBuilder<sqlx::Sqlite> = sqlx::QueryBuilder::new(
            "SELECT id, at, actor, actor_role, actor_id, system_id, direction, record_id, object, field, before, after, rule, detail
             FROM audit",
        );
        push_audit_filter(&mut b, q);
        b.push(" ORDER BY id DESC LIMIT ")
            .push_bind(q.limit.unwrap_or(100).clamp(1, 10_000));
        b.push(" OFFSET ").push_bind(q.offset.unwrap_or(0).max(0));
        let rows = b.build().fetch_all(self.pool()).await?;
        Ok(rows.iter().map(crate::ops::audit_row).collect())
    }

    /// How many audit entries match, counted up to `cap` (the audit grows without bound, and
    /// a list needs to know "many", not the exact figure past a point).
    pub async fn count_audit(&self, q: &AuditQuery, cap: i64) -> crate::Result<i64> {
        let mut b: sqlx::QueryBuilder<sqlx::Sqlite> =
            sqlx::QueryBuilder::new("SELECT COUNT(*) FROM (SELECT 1 FROM audit");
        push_audit_filter(&mut b, q);
        b.push(" LIMIT ").push_bind(cap).push(")");
        Ok(b.build_query_scalar().fetch_one(self.pool()).await?)
    }

    /// The record linked to `external_id` in `system`, if any.
    pub async fn record_linked(
        &self,
        system: &str,
        external_id: &str,
    ) -> crate::Result<Option<RecordId>> {
        Ok(sqlx::query_scalar(
            "SELECT record_id FROM links WHERE system_id = ? AND external_id = ?
             ORDER BY deleted LIMIT 1",
        )
        .bind(system)
        .bind(external_id)
        .fetch_optional(self.pool())
        .await?)
    }

    /// The golden values of `object`'s newest `limit` live records.
    pub async fn golden_sample(&self, object: &str, limit: i64) -> crate::Result<Vec<Fields>> {
        let rows: Vec<String> = sqlx::query_scalar(
            "SELECT g.fields FROM golden g JOIN records r ON r.id = g.record_id
             WHERE r.object = ? AND r.deleted = 0 ORDER BY g.record_id DESC LIMIT ?",
        )
        .bind(object)
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        Ok(rows
            .iter()
            .filter_map(|fields| serde_json::from_str(fields).ok())
            .collect())
    }

    /// A record's golden values, links and shadows.
    pub async fn record_view(&self, id: RecordId) -> crate::Result<RecordView> {
        let row = sqlx::query("SELECT object, deleted FROM records WHERE id = ?")
            .bind(id)
            .fetch_optional(self.pool())
            .await?
            .ok_or_else(|| crate::EngineError::NotFound(format!("record {id}")))?;
        let mut links = BTreeMap::new();
        for r in sqlx::query(
            "SELECT system_id, external_id FROM links WHERE record_id = ? AND deleted = 0",
        )
        .bind(id)
        .fetch_all(self.pool())
        .await?
        {
            links.insert(r.get(0), r.get(1));
        }
        let mut shadows = BTreeMap::new();
        for r in sqlx::query("SELECT system_id, fields FROM shadows WHERE record_id = ?")
            .bind(id)
            .fetch_all(self.pool())
            .await?
        {
            let fields: String = r.get(1);
            shadows.insert(r.get(0), serde_json::from_str(&fields)?);
        }
        Ok(RecordView {
            id,
            object: row.get(0),
            deleted: row.get::<i64, _>(1) != 0,
            golden: self.golden(id).await?,
            links,
            shadows,
        })
    }
}

/// The WHERE clause of an audit search or count.
fn push_audit_filter(b: &mut sqlx::QueryBuilder<'_, sqlx::Sqlite>, q: &AuditQuery) {
    b.push(" WHERE 1 = 1");
    if let Some(r) = q.record_id {
        b.push(" AND record_id = ").push_bind(r);
    }
    if let Some(f) = &q.field {
        b.push(" AND field = ").push_bind(f.clone());
    }
    if let Some(a) = &q.actor {
        // A name, or a principal's id (`tok_…`).
        b.push(" AND (actor = ")
            .push_bind(a.clone())
            .push(" OR actor_id = ")
            .push_bind(a.clone())
            .push(")");
    }
    if let Some(s) = &q.system {
        b.push(" AND system_id = ").push_bind(s.clone());
    }
    if let Some(s) = &q.since {
        b.push(" AND at >= ").push_bind(s.clone());
    }
    if let Some(u) = &q.until {
        b.push(" AND at < ").push_bind(u.clone());
    }
}

/// Everything an HTTP client may not reach without a token answers in JSON.
pub fn not_found_json() -> (StatusCode, Json<Value>) {
    (
        StatusCode::NOT_FOUND,
        Json(json!({ "code": "not_found", "message": "no such route" })),
    )
}
