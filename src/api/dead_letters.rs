//! Dead letters in the console: listing them, one with the request that failed, a preview of
//! what a replay would send, replaying one, a filter's worth or a selection (at most
//! [`MAX_SELECTED_REPLAYS`]), discarding one or a selection with a reason, and the failures
//! grouped by cause (see [`crate::dead_letter_causes`]).

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
    check_selection(req.ids.len())?;
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

/// A selection holds 1 to [`MAX_SELECTED_REPLAYS`] dead letters.
fn check_selection(n: usize) -> Result<(), ApiError> {
    if n == 0 || n > MAX_SELECTED_REPLAYS {
        return Err(ApiError(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_input",
            format!("select 1 to {MAX_SELECTED_REPLAYS} dead letters (got {n})"),
        ));
    }
    Ok(())
}

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

/// Which failures to group.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CauseQuery {
    #[param(min_length = 1)]
    pub system: Option<String>,
}

impl input::Checked for CauseQuery {
    fn check(&self) -> Result<(), String> {
        input::not_empty("system", self.system.as_deref())
    }
}

/// Dead letters looked at when grouping, the oldest first.
const MAX_GROUPED: i64 = 10_000;

#[utoipa::path(get, path = "/api/dead-letters/causes", params(CauseQuery),
    responses((status = 200, body = Vec<crate::dead_letter_causes::Cause>)), security(("token" = [])))]
pub(super) async fn dead_letter_causes(
    State(c): State<Console>,
    who: Principal,
    ApiQuery(q): ApiQuery<CauseQuery>,
) -> ApiResult<Vec<crate::dead_letter_causes::Cause>> {
    let letters = c
        .engine
        .list_dead_letters(&DeadLetterFilter {
            system: q.system,
            limit: Some(MAX_GROUPED),
            ..Default::default()
        })
        .await?;
    let mut causes = crate::dead_letter_causes::group(&letters);
    let mut redactor = Redactor::new(&c.engine, &who);
    if !redactor.sees_all() {
        for cause in &mut causes {
            // The message is the newest failure's: masked with that record's values.
            let object = cause.object.clone().unwrap_or_else(|| "employee".into());
            if let Some(record) = cause.newest_record {
                redactor
                    .scrub_message(&object, record, &mut cause.message)
                    .await;
            }
        }
    }
    Ok(Json(causes))
}

/// Dead letters a person selected, to discard in one request, and why.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DiscardSelection {
    /// At most 1000 ids.
    pub ids: Vec<i64>,
    pub reason: String,
}

/// What discarding a selection did.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct SelectionDiscardResponse {
    pub discarded: u64,
    /// The ids that could not be discarded, with why.
    pub failed: Vec<SelectedReplay>,
}

#[utoipa::path(post, path = "/api/dead-letters/discard-selected", request_body = DiscardSelection,
    responses((status = 200, body = SelectionDiscardResponse), (status = 422, description = "no ids, more than 1000, or no reason")),
    security(("token" = [])))]
pub(super) async fn discard_selected(
    State(c): State<Console>,
    who: Principal,
    ApiJson(req): ApiJson<DiscardSelection>,
) -> ApiResult<SelectionDiscardResponse> {
    check_selection(req.ids.len())?;
    if req.reason.trim().is_empty() {
        return Err(ApiError(
            StatusCode::UNPROCESSABLE_ENTITY,
            "reason_required",
            "discarding dead letters needs a reason".into(),
        ));
    }
    let actor = who.actor();
    let mut discarded = 0;
    let mut failed = Vec::new();
    for id in req.ids {
        match c.engine.discard_dead_letter(id, &req.reason, &actor).await {
            Ok(()) => discarded += 1,
            Err(e) => {
                let e = ApiError::from(e);
                failed.push(SelectedReplay {
                    id,
                    outcome: None,
                    error: Some(ErrorBody {
                        code: e.1.to_owned(),
                        message: e.2,
                    }),
                });
            }
        }
    }
    Ok(Json(SelectionDiscardResponse { discarded, failed }))
}
