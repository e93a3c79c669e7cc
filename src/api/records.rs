//! The audit and records in the console: searching the audit, and a record's golden values,
//! shadows and lineage, by id or by a system's id, masked for the caller's role.

use super::*;

#[utoipa::path(get, path = "/api/audit", params(AuditQuery),
    responses((status = 200, body = Vec<AuditRow>, headers(("X-Total-Count" = i64, description = "How many entries match the filter, counted up to 100000 (100000 means at least that many).")))),
    security(("token" = [])))]
pub(super) async fn audit(
    State(c): State<Console>,
    who: Principal,
    ApiQuery(q): ApiQuery<AuditQuery>,
) -> Result<Listed<AuditRow>, ApiError> {
    let mut rows = c.engine.search_audit(&q).await?;
    let total = c.engine.count_audit(&q, AUDIT_COUNT_CAP).await?;
    let mut redactor = Redactor::new(&c.engine, &who);
    // Every record's sensitive values first, so that masking a page searches for all of them
    // in one pass per text.
    for r in &rows {
        let object = r.object.as_deref().unwrap_or("employee");
        redactor.learn_record(object, r.record_id).await;
    }
    for r in &mut rows {
        redactor.audit_row(r).await;
    }
    Ok(listed(rows, total))
}

/// Whether the audit's hash chain holds: every entry's hash recomputed from its fields and the
/// entry before it, from the first entry to the last.
#[utoipa::path(get, path = "/api/audit/chain",
    responses((status = 200, body = crate::audit_chain::ChainReport)), security(("token" = [])))]
pub(super) async fn audit_chain(
    State(c): State<Console>,
    _who: Principal,
) -> ApiResult<crate::audit_chain::ChainReport> {
    Ok(Json(c.engine.verify_audit_chain().await?))
}

#[utoipa::path(get, path = "/api/records/{id}", params(("id" = i64, Path)),
    responses((status = 200, body = RecordView), (status = 404, description = "no such record")), security(("token" = [])))]
pub(super) async fn record(
    State(c): State<Console>,
    who: Principal,
    ApiPath(id): ApiPath<RecordId>,
) -> ApiResult<RecordView> {
    masked_record(&c, id, &who).await
}

#[utoipa::path(get, path = "/api/records", params(RecordLookup),
    responses((status = 200, body = RecordView), (status = 404, description = "no record is linked to that id")),
    security(("token" = [])))]
pub(super) async fn find_record(
    State(c): State<Console>,
    who: Principal,
    ApiQuery(q): ApiQuery<RecordLookup>,
) -> ApiResult<RecordView> {
    let id = c
        .engine
        .record_linked(&q.system, &q.external_id)
        .await?
        .ok_or_else(|| {
            ApiError(
                StatusCode::NOT_FOUND,
                "not_found",
                format!("no record is linked to {} id '{}'", q.system, q.external_id),
            )
        })?;
    masked_record(&c, id, &who).await
}

/// A record as the caller may see it.
async fn masked_record(c: &Console, id: RecordId, who: &Principal) -> ApiResult<RecordView> {
    let mut view = c.engine.record_view(id).await?;
    let mut redactor = Redactor::new(&c.engine, who);
    redactor.fields(&view.object, &mut view.golden);
    for shadow in view.shadows.values_mut() {
        redactor.fields(&view.object, shadow);
    }
    Ok(Json(view))
}
