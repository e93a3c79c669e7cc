//! Exceptions in the console: the steward's queue (listing, one exception, its values masked by
//! role), resolving one (four eyes where the field asks for them; many at once is in
//! `approvals`), dismissing one, and
//! deciding a held delete or an ambiguous match.

use super::*;

#[utoipa::path(get, path = "/api/exceptions", params(ExceptionQuery),
    responses((status = 200, body = Vec<ExceptionView>, headers(("X-Total-Count" = i64, description = "How many items match the filter, whatever the limit and offset.")))),
    security(("token" = [])))]
pub(super) async fn list_exceptions(
    State(c): State<Console>,
    who: Principal,
    ApiQuery(q): ApiQuery<ExceptionQuery>,
) -> Result<Listed<ExceptionView>, ApiError> {
    let filter = q.filter(c.engine.now());
    let mut list = c.engine.list_exceptions(&filter).await?;
    let total = c.engine.count_exceptions(&filter).await?;
    let mut redactor = Redactor::new(&c.engine, &who);
    for e in &mut list {
        approvals::with_currency(&c, e).await?;
        redactor.exception(e).await;
    }
    Ok(listed(list, total))
}

#[utoipa::path(get, path = "/api/exceptions/{id}", params(("id" = i64, Path)),
    responses((status = 200, body = ExceptionView), (status = 404, description = "no such exception")), security(("token" = [])))]
pub(super) async fn get_exception(
    State(c): State<Console>,
    who: Principal,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<ExceptionView> {
    let mut e = c.engine.exception(id).await?;
    approvals::with_currency(&c, &mut e).await?;
    Redactor::new(&c.engine, &who).exception(&mut e).await;
    Ok(Json(e))
}

#[utoipa::path(post, path = "/api/exceptions/{id}/resolve", request_body = ResolveRequest, params(("id" = i64, Path)),
    responses((status = 200, body = ResolveResponse), (status = 403, description = "not a steward"), (status = 409, description = "already resolved or same approver")),
    security(("token" = [])))]
pub(super) async fn resolve_exception(
    State(c): State<Console>,
    who: Principal,
    ApiPath(id): ApiPath<i64>,
    ApiJson(req): ApiJson<ResolveRequest>,
) -> ApiResult<ResolveResponse> {
    let outcome = c
        .engine
        .resolve_exception(id, &req.choice, &req.note, &who.actor())
        .await?;
    Ok(Json(ResolveResponse { outcome }))
}

#[utoipa::path(post, path = "/api/exceptions/{id}/dismiss", request_body = NoteRequest, params(("id" = i64, Path)),
    responses((status = 204, description = "dismissed")), security(("token" = [])))]
pub(super) async fn dismiss_exception(
    State(c): State<Console>,
    who: Principal,
    ApiPath(id): ApiPath<i64>,
    ApiJson(req): ApiJson<NoteRequest>,
) -> Result<StatusCode, ApiError> {
    c.engine
        .dismiss_exception(id, &req.note, &who.actor())
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/api/exceptions/{id}/delete-decision", request_body = DeleteDecisionRequest, params(("id" = i64, Path)),
    responses((status = 204, description = "carried out"), (status = 409, description = "already resolved"),
        (status = 422, description = "not a delete under review, or an invalid deactivation value")),
    security(("token" = [])))]
pub(super) async fn decide_delete(
    State(c): State<Console>,
    who: Principal,
    ApiPath(id): ApiPath<i64>,
    ApiJson(req): ApiJson<DeleteDecisionRequest>,
) -> Result<StatusCode, ApiError> {
    c.engine
        .decide_delete(id, &req.decision, &req.note, &who.actor())
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/api/exceptions/{id}/match", request_body = MatchRequest, params(("id" = i64, Path)),
    responses((status = 204, description = "linked or created")), security(("token" = [])))]
pub(super) async fn resolve_match(
    State(c): State<Console>,
    who: Principal,
    ApiPath(id): ApiPath<i64>,
    ApiJson(req): ApiJson<MatchRequest>,
) -> Result<StatusCode, ApiError> {
    c.engine
        .resolve_match(id, req.link_to, &who.actor())
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
