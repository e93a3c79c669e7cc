//! Console routes that repair what polling and delivery could not: dead writes planned again
//! after a fix, records pushed to a system again, reconciliations (started, watched,
//! confirmed or dismissed), and mappings checked against the system's own records.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::auth::Principal;
use super::{ApiJson, ApiPath, ApiQuery, ApiResult, Console, NoteRequest};
use crate::mapping::PathProblem;
use crate::model::Mapping;
use crate::reconcile::ReconcileRun;
use crate::replan::{ReplanOutcome, RepushOutcome, RepushSelection};
use crate::server::ApiError;

pub(super) fn router() -> Router<Console> {
    Router::new()
        .route("/api/dead-letters/{id}/replan", post(replan))
        .route("/api/systems/{id}/repush", post(repush))
        .route("/api/systems/{id}/reconcile", post(start_reconcile))
        .route("/api/reconciliations", get(list_reconciliations))
        .route("/api/reconciliations/{id}", get(get_reconciliation))
        .route("/api/reconciliations/{id}/confirm", post(confirm))
        .route("/api/reconciliations/{id}/dismiss", post(dismiss))
        .route("/api/mappings/check", post(check_mapping))
}

#[utoipa::path(post, path = "/api/dead-letters/{id}/replan", params(("id" = i64, Path)),
    responses((status = 200, body = ReplanOutcome), (status = 404, description = "no such dead letter"),
              (status = 422, description = "an event: replay it instead")),
    security(("token" = [])))]
pub(super) async fn replan(
    State(c): State<Console>,
    who: Principal,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<ReplanOutcome> {
    Ok(Json(c.engine.replan_dead_letter(id, &who.actor()).await?))
}

#[utoipa::path(post, path = "/api/systems/{id}/repush", request_body = RepushSelection, params(("id" = String, Path)),
    responses((status = 200, body = RepushOutcome), (status = 404, description = "no such system"),
              (status = 422, description = "no selection")),
    security(("token" = [])))]
pub(super) async fn repush(
    State(c): State<Console>,
    who: Principal,
    ApiPath(id): ApiPath<String>,
    ApiJson(selection): ApiJson<RepushSelection>,
) -> ApiResult<RepushOutcome> {
    Ok(Json(c.engine.repush(&id, &selection, &who.actor()).await?))
}

/// Runs started (or already under way): they go on in the background; poll
/// `GET /api/reconciliations/{id}` for progress.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReconcileStarted {
    pub runs: Vec<ReconcileRun>,
}

#[utoipa::path(post, path = "/api/systems/{id}/reconcile", params(("id" = String, Path)),
    responses((status = 202, body = ReconcileStarted), (status = 404, description = "no such system"),
              (status = 422, description = "the system cannot list its records")),
    security(("token" = [])))]
pub(super) async fn start_reconcile(
    State(c): State<Console>,
    who: Principal,
    ApiPath(id): ApiPath<String>,
) -> Result<(StatusCode, Json<ReconcileStarted>), ApiError> {
    let ids = c.engine.begin_reconcile(&id, &who.name).await?;
    let engine = c.engine.clone();
    let worker_ids = ids.clone();
    tokio::spawn(async move {
        if let Err(e) = engine.finish_reconcile(&worker_ids).await {
            tracing::warn!(code = "reconcile_failed", error = %e, "reconciliation failed");
        }
    });
    let mut runs = Vec::with_capacity(ids.len());
    for run in ids {
        runs.push(c.engine.reconcile_run(run).await?);
    }
    Ok((StatusCode::ACCEPTED, Json(ReconcileStarted { runs })))
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ReconcileQuery {
    pub system: Option<String>,
    /// At most this many, newest first (default 50).
    #[param(minimum = 1, maximum = 10000)]
    pub limit: Option<i64>,
}

impl super::input::Checked for ReconcileQuery {
    fn check(&self) -> Result<(), String> {
        super::input::page(self.limit, None)
    }
}

#[utoipa::path(get, path = "/api/reconciliations", params(ReconcileQuery),
    responses((status = 200, body = Vec<ReconcileRun>)), security(("token" = [])))]
pub(super) async fn list_reconciliations(
    State(c): State<Console>,
    ApiQuery(q): ApiQuery<ReconcileQuery>,
) -> ApiResult<Vec<ReconcileRun>> {
    Ok(Json(
        c.engine
            .reconcile_runs(q.system.as_deref(), q.limit.unwrap_or(50))
            .await?,
    ))
}

#[utoipa::path(get, path = "/api/reconciliations/{id}", params(("id" = i64, Path)),
    responses((status = 200, body = ReconcileRun), (status = 404, description = "no such run")),
    security(("token" = [])))]
pub(super) async fn get_reconciliation(
    State(c): State<Console>,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<ReconcileRun> {
    Ok(Json(c.engine.reconcile_run(id).await?))
}

#[utoipa::path(post, path = "/api/reconciliations/{id}/confirm", params(("id" = i64, Path)),
    responses((status = 200, body = ReconcileRun), (status = 409, description = "not waiting for a confirmation")),
    security(("token" = [])))]
pub(super) async fn confirm(
    State(c): State<Console>,
    who: Principal,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<ReconcileRun> {
    Ok(Json(c.engine.confirm_reconcile(id, &who.actor()).await?))
}

#[utoipa::path(post, path = "/api/reconciliations/{id}/dismiss", request_body = NoteRequest, params(("id" = i64, Path)),
    responses((status = 200, body = ReconcileRun), (status = 409, description = "not waiting for a confirmation")),
    security(("token" = [])))]
pub(super) async fn dismiss(
    State(c): State<Console>,
    who: Principal,
    ApiPath(id): ApiPath<i64>,
    ApiJson(req): ApiJson<NoteRequest>,
) -> ApiResult<ReconcileRun> {
    Ok(Json(
        c.engine
            .dismiss_reconcile(id, &req.note, &who.actor())
            .await?,
    ))
}

/// A mapping's paths against the records the system holds.
#[derive(Debug, Serialize, ToSchema)]
pub struct MappingCheck {
    /// Records of the system's first page the paths were tried on.
    pub sample_count: usize,
    /// Reading paths (and selectors) that match none of them, with why.
    pub problems: Vec<PathProblem>,
}

#[utoipa::path(post, path = "/api/mappings/check", request_body = Mapping,
    responses((status = 200, body = MappingCheck), (status = 404, description = "no such system, or an object it does not declare"),
              (status = 502, description = "the system did not answer")),
    security(("token" = [])))]
pub(super) async fn check_mapping(
    State(c): State<Console>,
    ApiJson(mapping): ApiJson<Mapping>,
) -> ApiResult<MappingCheck> {
    let connector = c.engine.connector(&mapping.system).ok_or_else(|| {
        ApiError(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("system '{}' has no connector", mapping.system),
        )
    })?;
    let system = super::systems::saved_system(&c, &mapping.system)?;
    let object = super::systems::object_to_probe(&c, &system, Some(mapping.object.clone()))
        .ok_or_else(|| {
            ApiError(
                StatusCode::NOT_FOUND,
                "not_found",
                format!(
                    "system '{}' declares no object '{}'",
                    mapping.system, mapping.object
                ),
            )
        })?;
    c.engine.pace(&mapping.system).await;
    let page = super::systems::first_page(connector.as_ref(), &object)
        .await
        .map_err(|e| match e {
            crate::connector::ConnectorError::Config(m) => {
                ApiError(StatusCode::UNPROCESSABLE_ENTITY, "invalid_config", m)
            }
            other => ApiError(
                StatusCode::BAD_GATEWAY,
                "connector_error",
                other.to_string(),
            ),
        })?;
    let samples: Vec<_> = page.records.into_iter().map(|r| r.record).collect();
    Ok(Json(MappingCheck {
        sample_count: samples.len(),
        problems: mapping.unmatched_paths(&samples),
    }))
}
