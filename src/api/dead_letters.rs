//! Dead letters in the console: listing them, one with the request that failed, a preview of
//! what a replay would send, replaying one, a filter's worth or a selection (at most
//! [`MAX_SELECTED_REPLAYS`]), and discarding one with a reason.

use super::*;

#[utoipa::path(get, path = "/api/dead-letters", params(DeadLetterFilter),
    responses((status = 200, body = Vec<DeadLetterView>, headers(("X-Total-Count" = i64, description = "How many items match the filter, whatever the limit and offset.")))),
    security(("token" = [])))]
pub(super) async fn list_dead_letters(
    State(c): State<Console>,
    who: Principal,
    ApiQuery(q): ApiQuery<DeadLetterFilter>,
) -> Result<Listed<DeadLetterView>, ApiError> {
    let mut list = c.engine.list_dead_letters(&q).await?;
    let mut redactor = Redactor::new(&c.engine, &who);
    for dl in &mut list {
        redactor.dead_letter(dl).await;
    }
    let total = c.engine.count_dead_letters(&q).await?;
    Ok(listed(list, total))
}

#[utoipa::path(get, path = "/api/dead-letters/{id}", params(("id" = i64, Path)),
    responses((status = 200, body = DeadLetterView), (status = 404, description = "no such dead letter")),
    security(("token" = [])))]
pub(super) async fn get_dead_letter(
    State(c): State<Console>,
    who: Principal,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<DeadLetterView> {
    let mut dl = c.engine.dead_letter(id).await?;
    Redactor::new(&c.engine, &who).dead_letter(&mut dl).await;
    Ok(Json(dl))
}

#[utoipa::path(get, path = "/api/dead-letters/{id}/preview", params(("id" = i64, Path)),
    responses((status = 200, body = ReplayPreview)), security(("token" = [])))]
pub(super) async fn preview_replay(
    State(c): State<Console>,
    who: Principal,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<ReplayPreview> {
    let mut preview = c.engine.replay_preview(id).await?;
    let record = c.engine.dead_letter(id).await?.record_id;
    Redactor::new(&c.engine, &who)
        .replay_preview(&mut preview, record)
        .await;
    Ok(Json(preview))
}

#[utoipa::path(post, path = "/api/dead-letters/{id}/replay", params(("id" = i64, Path)),
    responses((status = 200, body = ReplayResponse), (status = 403, description = "not support")), security(("token" = [])))]
pub(super) async fn replay(
    State(c): State<Console>,
    who: Principal,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<ReplayResponse> {
    Ok(Json(ReplayResponse {
        outcome: c.engine.replay(id, &who.actor()).await?,
    }))
}

#[utoipa::path(post, path = "/api/dead-letters/replay", request_body = DeadLetterFilter,
    responses((status = 200, body = BatchReplayResponse)), security(("token" = [])))]
pub(super) async fn replay_matching(
    State(c): State<Console>,
    who: Principal,
    ApiJson(filter): ApiJson<DeadLetterFilter>,
) -> ApiResult<BatchReplayResponse> {
    input::Checked::check(&filter)
        .map_err(|m| ApiError(StatusCode::UNPROCESSABLE_ENTITY, "invalid_input", m))?;
    Ok(Json(BatchReplayResponse {
        queued: c.engine.replay_matching(&filter, &who.actor()).await?,
    }))
}

#[utoipa::path(post, path = "/api/dead-letters/replay-selected", request_body = ReplaySelection,
    responses((status = 200, body = SelectionReplayResponse), (status = 422, description = "no ids, or more than 1000")),
    security(("token" = [])))]
pub(super) async fn replay_selected(
    State(c): State<Console>,
    who: Principal,
    ApiJson(req): ApiJson<ReplaySelection>,
) -> ApiResult<SelectionReplayResponse> {
    if req.ids.is_empty() || req.ids.len() > MAX_SELECTED_REPLAYS {
        return Err(ApiError(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_input",
            format!(
                "select 1 to {MAX_SELECTED_REPLAYS} dead letters (got {})",
                req.ids.len()
            ),
        ));
    }
    let actor = who.actor();
    let mut results = Vec::with_capacity(req.ids.len());
    // Each in its own transaction, as one by one: one refusal does not undo the others.
    for id in req.ids {
        let (outcome, error) = match c.engine.replay(id, &actor).await {
            Ok(outcome) => (Some(outcome), None),
            Err(e) => {
                let e = ApiError::from(e);
                (
                    None,
                    Some(ErrorBody {
                        code: e.1.to_owned(),
                        message: e.2,
                    }),
                )
            }
        };
        results.push(SelectedReplay { id, outcome, error });
    }
    Ok(Json(SelectionReplayResponse { results }))
}

const MAX_SELECTED_REPLAYS: usize = 1000;

#[utoipa::path(post, path = "/api/dead-letters/{id}/discard", request_body = DiscardRequest, params(("id" = i64, Path)),
    responses((status = 204, description = "discarded")), security(("token" = [])))]
pub(super) async fn discard(
    State(c): State<Console>,
    who: Principal,
    ApiPath(id): ApiPath<i64>,
    ApiJson(req): ApiJson<DiscardRequest>,
) -> Result<StatusCode, ApiError> {
    c.engine
        .discard_dead_letter(id, &req.reason, &who.actor())
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
