//! Administration of the console itself: the tokens issued since launch (listed, revoked),
//! systems removed from the workspace, and the rules every configuration change follows: it
//! is an audit entry with its actor and the old and new config, and a change that removes
//! something others depend on (a mapping's rules, an object's ownership rules, a system with
//! linked records) answers 409 `confirmation_required` with what it would remove until it is
//! asked again with `?confirm=true`.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::{IntoParams, ToSchema};

use super::auth::{Principal, Role, TokenInfo};
use super::{ApiPath, ApiQuery, Console};
use crate::audit::{AuditEntry, Direction};
use crate::error::EngineError;
use crate::model::WorkspaceConfig;
use crate::server::ApiError;

pub(super) fn router() -> Router<Console> {
    Router::new()
        .route("/api/tokens", get(list_tokens))
        .route("/api/tokens/{id}", delete(revoke_token))
        .route("/api/systems/{id}", delete(delete_system))
}

/// `?confirm=true`: go ahead with a change that removes something.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ConfirmQuery {
    /// Carry out a change that removes rules, policies or a system with linked records.
    #[serde(default)]
    pub confirm: bool,
}

impl super::input::Checked for ConfirmQuery {
    fn check(&self) -> Result<(), String> {
        Ok(())
    }
}

/// What a change would remove.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Removal {
    /// `mapping_rules`, `policies` or `system`.
    pub kind: String,
    pub system: Option<String>,
    pub object: Option<String>,
    /// Mapping rules, or field policies, that would go.
    #[serde(default)]
    pub count: usize,
    /// Canonical fields no longer mapped, or whose ownership rules would go.
    #[serde(default)]
    pub fields: Vec<String>,
    /// Records linked to the system (removing it stops syncing them).
    #[serde(default)]
    pub linked_records: i64,
    /// Mappings removed with the system (`system/object`).
    #[serde(default)]
    pub mappings: Vec<String>,
}

/// The 409 of a change that needs `?confirm=true`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ConfirmationRequired {
    /// Always `confirmation_required`.
    pub code: String,
    pub message: String,
    pub removes: Removal,
}

/// A handler's refusal: the usual `{code, message}`, or a confirmation to ask for.
pub enum Refusal {
    Api(ApiError),
    Confirm(Box<ConfirmationRequired>),
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        match self {
            Self::Api(e) => e.into_response(),
            Self::Confirm(c) => (StatusCode::CONFLICT, Json(*c)).into_response(),
        }
    }
}

impl From<ApiError> for Refusal {
    fn from(e: ApiError) -> Self {
        Self::Api(e)
    }
}

impl From<EngineError> for Refusal {
    fn from(e: EngineError) -> Self {
        Self::Api(e.into())
    }
}

/// Refuses `removal` unless the caller confirmed it.
pub(super) fn require_confirmation(
    confirmed: bool,
    message: String,
    removal: &Removal,
) -> Result<(), Refusal> {
    if confirmed {
        return Ok(());
    }
    Err(Refusal::Confirm(Box::new(ConfirmationRequired {
        code: "confirmation_required".into(),
        message: format!("{message}; send the request again with ?confirm=true to go ahead"),
        removes: removal.clone(),
    })))
}

/// The audit entry of a configuration change by `who`: `config:<what>` with the old and new
/// config (`before`/`after`) and, in `detail`, whatever else tells the change apart.
pub(super) fn config_entry(
    who: &Principal,
    what: &str,
    before: Option<Value>,
    after: Option<Value>,
    detail: Value,
) -> AuditEntry {
    let mut entry = AuditEntry::engine(format!("config:{what}"), Direction::Internal)
        .by(who.actor())
        .detail(detail);
    entry.before = before;
    entry.after = after;
    entry
}

fn token_value(t: &TokenInfo) -> Value {
    serde_json::to_value(t).unwrap_or(Value::Null)
}

/// The audit entry of a token issued by `who`.
pub(super) fn token_issued(who: &Principal, issued: &TokenInfo) -> AuditEntry {
    config_entry(
        who,
        "token_issued",
        None,
        Some(token_value(issued)),
        json!({ "token_id": issued.id, "name": issued.name, "role": issued.role }),
    )
}

#[utoipa::path(get, path = "/api/tokens",
    responses((status = 200, body = Vec<TokenInfo>, description = "Every live token, oldest first; never a secret.")),
    security(("token" = [])))]
pub(super) async fn list_tokens(State(c): State<Console>) -> Json<Vec<TokenInfo>> {
    Json(c.tokens.list())
}

#[utoipa::path(delete, path = "/api/tokens/{id}", params(("id" = String, Path, description = "The token's id (`tok_…`), not the token")),
    responses((status = 204, description = "revoked: requests presenting it get 401 from now on"),
              (status = 404, description = "no live token has this id"),
              (status = 409, description = "the caller's own token, or the last admin token")),
    security(("token" = [])))]
pub(super) async fn revoke_token(
    State(c): State<Console>,
    who: Principal,
    ApiPath(id): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    let Some(token) = c.tokens.get(&id) else {
        return Err(ApiError(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("no live token has the id '{id}'"),
        ));
    };
    if token.id == who.id {
        return Err(ApiError(
            StatusCode::CONFLICT,
            "cannot_revoke_own_token",
            "this is the token you are signed in with; revoke it from another admin's token".into(),
        ));
    }
    let admins = c
        .tokens
        .list()
        .iter()
        .filter(|t| t.role == Role::Admin)
        .count();
    if token.role == Role::Admin && admins <= 1 {
        return Err(ApiError(
            StatusCode::CONFLICT,
            "last_admin_token",
            "the last admin token cannot be revoked: nobody could administer the engine until it restarts".into(),
        ));
    }
    let audit = config_entry(
        &who,
        "token_revoked",
        Some(token_value(&token)),
        None,
        json!({ "token_id": token.id, "name": token.name, "role": token.role }),
    );
    // Forgotten in the state file first: a token revoked here must not come back at restart.
    super::token_store::forget(&c.engine, &id, &audit).await?;
    c.tokens.revoke(&id);
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(delete, path = "/api/systems/{id}", params(("id" = String, Path), ConfirmQuery),
    responses((status = 200, body = WorkspaceConfig, description = "removed, with its mappings"),
              (status = 404, description = "no such system"),
              (status = 409, body = ConfirmationRequired, description = "the system has linked records: confirm with ?confirm=true"),
              (status = 422, description = "the rest of the config still names the system (ownership rules)")),
    security(("token" = [])))]
pub(super) async fn delete_system(
    State(c): State<Console>,
    who: Principal,
    ApiPath(id): ApiPath<String>,
    ApiQuery(q): ApiQuery<ConfirmQuery>,
) -> Result<Json<WorkspaceConfig>, Refusal> {
    let mut config = c.engine.workspace().config.clone();
    let Some(at) = config.systems.iter().position(|s| s.id == id) else {
        return Err(ApiError(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("system '{id}' not found"),
        )
        .into());
    };
    let removed = config.systems.remove(at);
    let linked_records: i64 = sqlx::query_scalar(
        "SELECT COUNT(DISTINCT record_id) FROM links WHERE system_id = ? AND deleted = 0",
    )
    .bind(&id)
    .fetch_one(c.engine.pool())
    .await
    .map_err(EngineError::from)?;
    let mappings: Vec<String> = config
        .mappings
        .iter()
        .filter(|m| m.system == id)
        .map(|m| format!("{}/{}", m.system, m.object))
        .collect();
    config.mappings.retain(|m| m.system != id);
    let removal = Removal {
        kind: "system".into(),
        system: Some(id.clone()),
        object: None,
        count: mappings.len(),
        fields: Vec::new(),
        linked_records,
        mappings,
    };
    if linked_records > 0 {
        require_confirmation(
            q.confirm,
            format!(
                "system '{id}' has {linked_records} linked records; removing it stops syncing them"
            ),
            &removal,
        )?;
    }
    let entry = config_entry(
        &who,
        "system_removed",
        serde_json::to_value(&removed).ok(),
        None,
        json!({ "confirmed": q.confirm, "removes": removal }),
    )
    .system(&id);
    c.engine.apply_workspace_audited(&config, &[entry]).await?;
    Ok(Json(config))
}
