//! Bulk resolution and four eyes in the console: the preview of a bulk set (each record's
//! values, current → chosen, and what deciding would do), the bulk resolution that must name
//! the preview it was shown when a field needs four eyes, and the queue of resolutions
//! awaiting a second person, with how many await the caller.

use super::*;
use crate::approvals::{BULK_LIMIT, BulkItem, BulkPreview, BulkStep};

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct BulkResolveRequest {
    pub filter: ExceptionFilter,
    /// The rule applied to each: a system's value, the golden value, the base, or (for a
    /// second approval) the value the first approver chose.
    pub choice: Choice,
    #[serde(default)]
    pub note: String,
    /// The digest of the preview the caller was shown (`POST
    /// /api/exceptions/bulk-resolve/preview` with the same filter and choice). Required when
    /// any exception in the set needs four eyes; when given, a set that changed since is
    /// refused and nothing is written.
    #[serde(default)]
    pub shown: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct BulkPreviewRequest {
    pub filter: ExceptionFilter,
    pub choice: Choice,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct BulkOutcome {
    pub applied: usize,
    pub awaiting_second_approval: usize,
    pub failed: Vec<String>,
    /// Open exceptions still matching the filter afterwards (one call takes at most its
    /// `limit`, 1000 by default; call again for the rest).
    #[serde(default)]
    pub remaining: i64,
}

/// The resolutions awaiting a second person.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ApprovalQueue {
    /// Each awaiting resolution as the caller would decide it: `second_approval` when they may
    /// approve it, `refused` when they gave the first approval themselves.
    pub items: Vec<BulkItem>,
    /// How many the caller may approve.
    pub awaiting_you: usize,
    /// How many the caller approved first, awaiting someone else.
    pub awaiting_others: usize,
}

/// How many items of a set would be approved (first or second) on a four-eyes field: those
/// need the preview their person was shown. Items every rule refuses approve nothing.
fn approvals_in(preview: &BulkPreview) -> usize {
    preview.count(BulkStep::FirstApproval) + preview.count(BulkStep::SecondApproval)
}

fn bulk_filter(filter: ExceptionFilter) -> ExceptionFilter {
    ExceptionFilter {
        status: Some("open".into()),
        limit: Some(filter.limit.unwrap_or(BULK_LIMIT)),
        ..filter
    }
}

/// Masks the values of the items whose field the caller may not see.
async fn mask_items(c: &Console, who: &Principal, items: &mut [BulkItem]) {
    let mut redactor = Redactor::new(&c.engine, who);
    for item in items {
        redactor.bulk_item(item).await;
    }
}

/// Fills the currency of each exception about a money field.
pub(super) async fn with_currency(c: &Console, e: &mut ExceptionView) -> Result<(), ApiError> {
    if let Some(field) = &e.field {
        e.currency = c
            .engine
            .money_currency(&e.object, field, e.record_id)
            .await?;
    }
    Ok(())
}

#[utoipa::path(post, path = "/api/exceptions/bulk-resolve/preview", request_body = BulkPreviewRequest,
    responses((status = 200, body = BulkPreview)), security(("token" = [])))]
pub(super) async fn bulk_preview(
    State(c): State<Console>,
    who: Principal,
    ApiJson(req): ApiJson<BulkPreviewRequest>,
) -> ApiResult<BulkPreview> {
    let mut preview = c
        .engine
        .bulk_preview(&bulk_filter(req.filter), &req.choice, &who.actor())
        .await?;
    mask_items(&c, &who, &mut preview.items).await;
    Ok(Json(preview))
}

#[utoipa::path(post, path = "/api/exceptions/bulk-resolve", request_body = BulkResolveRequest,
    responses((status = 200, body = BulkOutcome),
        (status = 409, description = "the set changed since its preview was shown (`preview_changed`)"),
        (status = 428, description = "the set holds a four-eyes field and no preview was shown (`preview_required`)")),
    security(("token" = [])))]
pub(super) async fn bulk_resolve(
    State(c): State<Console>,
    who: Principal,
    ApiJson(req): ApiJson<BulkResolveRequest>,
) -> ApiResult<BulkOutcome> {
    let filter = bulk_filter(req.filter);
    let actor = who.actor();
    let preview = c.engine.bulk_preview(&filter, &req.choice, &actor).await?;
    match &req.shown {
        None if approvals_in(&preview) > 0 => {
            return Err(ApiError(
                StatusCode::PRECONDITION_REQUIRED,
                "preview_required",
                format!(
                    "{} of these exceptions need four eyes: preview the set (POST \
                     /api/exceptions/bulk-resolve/preview) and send its digest as `shown`, so \
                     the values approved are the values seen",
                    approvals_in(&preview)
                ),
            ));
        }
        Some(shown) if *shown != preview.digest => {
            return Err(ApiError(
                StatusCode::CONFLICT,
                "preview_changed",
                "the exceptions or their values changed since the preview was shown; nothing \
                 was resolved: preview again"
                    .into(),
            ));
        }
        _ => {}
    }
    // Without a preview named (no four eyes in the set), each is resolved on the values it
    // holds when it is written.
    let done = c
        .engine
        .resolve_set(
            &preview,
            &req.choice,
            &req.note,
            &actor,
            req.shown.is_some(),
        )
        .await?;
    Ok(Json(BulkOutcome {
        applied: done.applied,
        awaiting_second_approval: done.awaiting_second_approval,
        failed: done.failed,
        remaining: c.engine.count_exceptions(&filter).await?,
    }))
}

#[utoipa::path(get, path = "/api/approvals", responses((status = 200, body = ApprovalQueue)), security(("token" = [])))]
pub(super) async fn approval_queue(
    State(c): State<Console>,
    who: Principal,
) -> ApiResult<ApprovalQueue> {
    let filter = ExceptionFilter {
        awaiting_approval: Some(true),
        limit: Some(BULK_LIMIT),
        ..Default::default()
    };
    let mut preview = c
        .engine
        .bulk_preview(&filter, &Choice::Approved, &who.actor())
        .await?;
    let awaiting_you = preview.count(BulkStep::SecondApproval);
    let awaiting_others = preview.count(BulkStep::Refused);
    mask_items(&c, &who, &mut preview.items).await;
    Ok(Json(ApprovalQueue {
        items: preview.items,
        awaiting_you,
        awaiting_others,
    }))
}
