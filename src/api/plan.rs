//! A system's plan in the console: the writes held for a system in plan mode as counts and
//! browsable rows, the same as CSV, and enabling its writes (admins, audited). Values of
//! fields the caller may not see are masked in both.

use std::collections::HashMap;

use axum::http::header;
use axum::response::{IntoResponse, Response};

use super::*;
use crate::model::WritesMode;
use crate::plan::{PlanCounts, PlanView, PlannedWrite};

/// One kind of planned write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PlanOp {
    Create,
    Update,
    Delete,
}

impl PlanOp {
    fn as_str(self) -> &'static str {
        match self {
            Self::Create => "create",
            Self::Update => "update",
            Self::Delete => "delete",
        }
    }
}

/// Which planned writes to list.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PlanQuery {
    /// Only writes of this kind (default: all).
    #[param(inline)]
    pub op: Option<PlanOp>,
    #[param(minimum = 1, maximum = 10000)]
    pub limit: Option<i64>,
    #[param(minimum = 0, maximum = 1000000000)]
    pub offset: Option<i64>,
}

impl input::Checked for PlanQuery {
    fn check(&self) -> Result<(), String> {
        input::page(self.limit, self.offset)
    }
}

/// Enabling a system's writes.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct EnableWrites {
    /// The counts of the plan the admin reviewed: when given and the plan has changed since
    /// (other writes were planned meanwhile), nothing is enabled and the answer is 409.
    #[serde(default)]
    pub seen: Option<PlanCounts>,
}

/// What enabling sent on its way.
#[derive(Debug, Serialize, ToSchema)]
pub struct WritesEnabled {
    pub system: String,
    /// The plan that is now being sent.
    pub counts: PlanCounts,
}

pub(super) fn known_system(c: &Console, id: &str) -> Result<crate::model::SystemConfig, ApiError> {
    c.engine.workspace().system(id).cloned().ok_or_else(|| {
        ApiError(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("no system '{id}'"),
        )
    })
}

/// Masks the values of fields `who` may not see.
fn mask(c: &Console, who: &Principal, items: &mut [PlannedWrite]) {
    let mut hidden: HashMap<String, Vec<String>> = HashMap::new();
    for w in items {
        let fields = hidden
            .entry(w.object.clone())
            .or_insert_with(|| mask::hidden_fields(&c.engine, &w.object, who));
        for f in &mut w.fields {
            if fields.contains(&f.field) {
                for v in [&mut f.from, &mut f.to] {
                    if !v.is_null() {
                        *v = Value::String(mask::MASK.into());
                    }
                }
            }
        }
    }
}

#[utoipa::path(get, path = "/api/systems/{id}/plan", params(("id" = String, Path), PlanQuery),
    responses((status = 200, body = PlanView), (status = 404, description = "no such system")),
    security(("token" = [])))]
pub(super) async fn plan(
    State(c): State<Console>,
    who: Principal,
    ApiPath(id): ApiPath<String>,
    ApiQuery(q): ApiQuery<PlanQuery>,
) -> ApiResult<PlanView> {
    let system = known_system(&c, &id)?;
    let counts = c.engine.plan_counts(&id).await?;
    let mut items = c
        .engine
        .planned_writes(
            &id,
            q.op.map(PlanOp::as_str),
            q.limit.unwrap_or(100),
            q.offset.unwrap_or(0),
        )
        .await?;
    mask(&c, &who, &mut items);
    let breaker = c
        .engine
        .breaker_trips(&id, 1)
        .await?
        .into_iter()
        .find(|t| t.status == "open");
    Ok(Json(PlanView {
        breaker,
        system: id,
        writes: system.writes.unwrap_or(WritesMode::Live),
        counts,
        items,
    }))
}

/// The most rows a CSV download holds.
const CSV_WRITES: i64 = 100_000;

#[utoipa::path(get, path = "/api/systems/{id}/plan.csv", params(("id" = String, Path)),
    responses((status = 200, content_type = "text/csv", body = String, description = "one row per field of each planned write: op,record_id,object,external_id,field,from,to"),
        (status = 404, description = "no such system")),
    security(("token" = [])))]
pub(super) async fn plan_csv(
    State(c): State<Console>,
    who: Principal,
    ApiPath(id): ApiPath<String>,
) -> Result<Response, ApiError> {
    known_system(&c, &id)?;
    let mut items = c.engine.planned_writes(&id, None, CSV_WRITES, 0).await?;
    mask(&c, &who, &mut items);
    let disposition = format!("attachment; filename=\"plan-{id}.csv\"");
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        crate::plan::to_csv(&items),
    )
        .into_response())
}

#[utoipa::path(post, path = "/api/systems/{id}/enable", params(("id" = String, Path)), request_body = EnableWrites,
    responses((status = 200, body = WritesEnabled), (status = 404, description = "no such system"),
        (status = 409, description = "writes are already enabled, or the plan changed since it was reviewed")),
    security(("token" = [])))]
pub(super) async fn enable(
    State(c): State<Console>,
    who: Principal,
    ApiPath(id): ApiPath<String>,
    ApiJson(req): ApiJson<EnableWrites>,
) -> ApiResult<WritesEnabled> {
    let system = known_system(&c, &id)?;
    if !system.writes_held() {
        return Err(ApiError(
            StatusCode::CONFLICT,
            "conflict",
            format!("writes to '{id}' are already enabled"),
        ));
    }
    let counts = c.engine.plan_counts(&id).await?;
    if let Some(seen) = &req.seen
        && !seen.same_writes(&counts)
    {
        return Err(ApiError(
            StatusCode::CONFLICT,
            "plan_changed",
            format!(
                "the plan changed since it was reviewed: it now holds {} creates, {} updates and {} deletes; review it again",
                counts.creates, counts.updates, counts.deletes
            ),
        ));
    }
    let mut config = c.engine.workspace().config.clone();
    let before = serde_json::to_value(&system).ok();
    let mut enabled = system;
    enabled.writes = Some(WritesMode::Live);
    let after = serde_json::to_value(&enabled).ok();
    if let Some(s) = config.systems.iter_mut().find(|s| s.id == id) {
        *s = enabled;
    }
    let entry = config_entry(
        &who,
        "writes_enabled",
        before,
        after,
        serde_json::to_value(counts).unwrap_or(Value::Null),
    )
    .system(&id);
    c.engine.apply_workspace_audited(&config, &[entry]).await?;
    // The writes a plan holds count toward the circuit breaker, which may have tripped on
    // them: the admin has just reviewed exactly those writes, so enabling confirms the trip.
    if c.engine
        .breaker_trips(&id, 1)
        .await?
        .first()
        .is_some_and(|t| t.status == "open")
    {
        c.engine
            .decide_breaker(
                &id,
                crate::breaker::BreakerDecision::Confirm,
                "the held writes were reviewed in the plan and enabled",
                &who.actor(),
                None,
            )
            .await?;
    }
    Ok(Json(WritesEnabled { system: id, counts }))
}
