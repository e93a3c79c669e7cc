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

/// How many golden records of an object the mapper reads.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct GoldenSampleQuery {
    /// How many records, newest first (1 to 100; default 25).
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<i64>,
}

impl input::Checked for GoldenSampleQuery {
    fn check(&self) -> Result<(), String> {
        input::in_range("limit", self.limit, 1, 100)
    }
}

/// Golden values of an object's newest records.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct GoldenSample {
    pub object: String,
    /// Each record's golden values, sensitive ones masked for roles that may not see them.
    #[schema(value_type = Vec<Object>)]
    pub records: Vec<Fields>,
}

/// The golden values of an object's newest records: the mapper compares a system's sample
/// values with them to suggest which of its fields holds which canonical field.
#[utoipa::path(get, path = "/api/objects/{object}/golden-sample", params(("object" = String, Path), GoldenSampleQuery),
    responses((status = 200, body = GoldenSample), (status = 404, description = "no such object")),
    security(("token" = [])))]
pub(super) async fn golden_sample(
    State(c): State<Console>,
    who: Principal,
    ApiPath(object): ApiPath<String>,
    ApiQuery(q): ApiQuery<GoldenSampleQuery>,
) -> ApiResult<GoldenSample> {
    if c.engine.workspace().object(&object).is_none() {
        return Err(ApiError(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("no object '{object}'"),
        ));
    }
    let mut records = c
        .engine
        .golden_sample(&object, q.limit.unwrap_or(25))
        .await?;
    let mut redactor = Redactor::new(&c.engine, &who);
    for fields in &mut records {
        redactor.fields(&object, fields);
    }
    Ok(Json(GoldenSample { object, records }))
}
