//! Change capture for `sql` systems: the SQL that installs the change table and triggers,
//! shown to an admin first (`GET /api/systems/{id}/change-capture`), and installed only when
//! an admin asks (`POST`), as an audited configuration change. Nothing is installed otherwise.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;

use super::auth::Principal;
use super::systems::saved_system;
use super::{ApiPath, Console};
use crate::connector::ConnectorError;
use crate::connectors::sql::{CaptureStatus, SqlConnector};
use crate::server::ApiError;

pub(super) fn router() -> Router<Console> {
    Router::new().route(
        "/api/systems/{id}/change-capture",
        get(capture_status).post(install_capture),
    )
}

/// The saved `sql` system `id`, built with the engine's secrets and origin bindings.
fn connector(c: &Console, id: &str) -> Result<SqlConnector, ApiError> {
    let system = saved_system(c, id)?;
    if system.connector != "sql" {
        return Err(ApiError(
            StatusCode::UNPROCESSABLE_ENTITY,
            "not_sql",
            format!("system '{id}' is not a sql system; only databases have change capture"),
        ));
    }
    SqlConnector::from_config_with(
        &system,
        c.engine.inner.secrets.clone(),
        c.engine.secret_origins(),
    )
    .map_err(refused)
}

fn refused(e: ConnectorError) -> ApiError {
    match e {
        ConnectorError::Config(m) => {
            ApiError(StatusCode::UNPROCESSABLE_ENTITY, "invalid_config", m)
        }
        other => ApiError(
            StatusCode::BAD_GATEWAY,
            "connector_error",
            other.to_string(),
        ),
    }
}

#[utoipa::path(get, path = "/api/systems/{id}/change-capture", params(("id" = String, Path)),
    responses((status = 200, body = CaptureStatus, description = "The SQL an install runs, and whether it is installed."),
              (status = 422, description = "not a sql system, or its config cannot be used"),
              (status = 502, description = "the database did not answer")),
    security(("token" = [])))]
pub(super) async fn capture_status(
    State(c): State<Console>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<CaptureStatus>, ApiError> {
    let connector = connector(&c, &id)?;
    connector.capture_status().await.map(Json).map_err(refused)
}

#[utoipa::path(post, path = "/api/systems/{id}/change-capture", params(("id" = String, Path)),
    responses((status = 200, body = CaptureStatus, description = "Installed: the statements GET shows ran in one transaction."),
              (status = 422, description = "not a sql system, or no object asks for change capture"),
              (status = 502, description = "the database did not answer, or refused the statements")),
    security(("token" = [])))]
pub(super) async fn install_capture(
    State(c): State<Console>,
    who: Principal,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<CaptureStatus>, ApiError> {
    let connector = connector(&c, &id)?;
    let before = connector.capture_status().await.map_err(refused)?;
    let after = connector.install_capture().await.map_err(refused)?;
    let entry = super::admin::config_entry(
        &who,
        "change_capture_installed",
        Some(json!({ "installed": before.installed })),
        Some(json!({ "installed": after.installed })),
        json!({ "sql": after.sql, "objects": after.objects }),
    )
    .system(&id);
    c.engine.record_audit(&[entry]).await?;
    Ok(Json(after))
}
