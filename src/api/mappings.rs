//! Mappings in the console: saving a system's mapping of an object (confirmed when it would
//! remove every rule), and previewing a mapping on sample records, or its effect on every
//! record (what-if), before it is saved. Each save is validated as a whole workspace and
//! audited with its before and after.

use super::*;
use crate::model::WritesMode;

/// Saving a mapping.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct MappingSaveQuery {
    /// Carry out a change that removes every rule.
    #[serde(default)]
    pub confirm: bool,
    /// Keep writing to the system at once. By default a change to what a live system's
    /// mapping writes puts the system's writes in a plan for review.
    #[serde(default)]
    pub keep_writing: bool,
}

impl input::Checked for MappingSaveQuery {
    fn check(&self) -> Result<(), String> {
        Ok(())
    }
}

#[utoipa::path(put, path = "/api/mappings/{system}/{object}", request_body = Mapping,
    params(("system" = String, Path), ("object" = String, Path), MappingSaveQuery),
    responses((status = 200, body = WorkspaceConfig), (status = 403, description = "not an admin"),
              (status = 409, body = admin::ConfirmationRequired, description = "would remove every rule of a mapping: confirm with ?confirm=true"),
              (status = 422, description = "invalid config")),
    security(("token" = [])))]
pub(super) async fn put_mapping(
    State(c): State<Console>,
    who: Principal,
    ApiPath((system, object)): ApiPath<(String, String)>,
    ApiQuery(q): ApiQuery<MappingSaveQuery>,
    ApiJson(mapping): ApiJson<Mapping>,
) -> Result<Json<WorkspaceConfig>, Refusal> {
    if mapping.system != system || mapping.object != object {
        return Err(ApiError(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_input",
            "the body's system/object differ from the URL's".into(),
        )
        .into());
    }
    let mut config = c.engine.workspace().config.clone();
    let after = serde_json::to_value(&mapping).ok();
    let emptying = mapping.rules.is_empty();
    let rewritten = {
        let current = config
            .mappings
            .iter()
            .find(|m| m.system == system && m.object == object);
        mapping.rewritten_since(current)
    };
    let before = match config
        .mappings
        .iter_mut()
        .find(|m| m.system == system && m.object == object)
    {
        Some(m) => Some(std::mem::replace(m, mapping)),
        None => {
            config.mappings.push(mapping);
            None
        }
    };
    let removal = before
        .as_ref()
        .filter(|b| emptying && !b.rules.is_empty())
        .map(|b| Removal {
            kind: "mapping_rules".into(),
            system: Some(system.clone()),
            object: Some(object.clone()),
            count: b.rules.len(),
            fields: b.reads().into_iter().collect(),
            ..Removal::default()
        });
    if let Some(removal) = &removal {
        require_confirmation(
            q.confirm,
            format!(
                "this removes all {} rules of the {system} {object} mapping: {system} would no longer be read or written",
                removal.count
            ),
            removal,
        )?;
    }
    let entry = config_entry(
        &who,
        "mapping_saved",
        before.as_ref().and_then(|b| serde_json::to_value(b).ok()),
        after,
        json!({ "confirmed": removal.is_some() && q.confirm, "removes": removal }),
    )
    .system(&system);
    let entry = AuditEntry {
        object: Some(object.clone()),
        ..entry
    };
    let mut entries = vec![entry];
    // What the changed rules write is planned for every record the system holds; a live
    // system's writes are held meanwhile, for an admin to review the plan and enable it.
    let hold = !rewritten.is_empty() && !q.keep_writing;
    if hold
        && let Some(s) = config
            .systems
            .iter_mut()
            .find(|s| s.id == system && !s.writes_held())
    {
        let before = serde_json::to_value(&*s).ok();
        s.writes = Some(WritesMode::Plan);
        entries.push(
            config_entry(
                &who,
                "writes_held",
                before,
                serde_json::to_value(&*s).ok(),
                json!({ "reason": "mapping_changed", "object": object, "fields": rewritten }),
            )
            .system(&system),
        );
    }
    c.engine.apply_workspace_audited(&config, &entries).await?;
    if !rewritten.is_empty() {
        let engine = c.engine.clone();
        let actor = who.actor();
        tokio::spawn(async move {
            if let Err(e) = engine
                .plan_mapping_change(&system, &object, &rewritten, &actor)
                .await
            {
                tracing::error!(system, object, error = %e, "could not plan the changed mapping's writes");
            }
        });
    }
    Ok(Json(config))
}

#[utoipa::path(post, path = "/api/mappings/what-if", request_body = Mapping,
    responses((status = 200, body = crate::whatif::WhatIf), (status = 404, description = "no such system or object"),
        (status = 422, description = "invalid mapping")),
    security(("token" = [])))]
pub(super) async fn what_if_mapping(
    State(c): State<Console>,
    ApiJson(candidate): ApiJson<Mapping>,
) -> ApiResult<crate::whatif::WhatIf> {
    // The candidate must be a valid mapping of the workspace it would be saved into.
    let mut config = c.engine.workspace().config.clone();
    match config
        .mappings
        .iter_mut()
        .find(|m| m.system == candidate.system && m.object == candidate.object)
    {
        Some(m) => *m = candidate.clone(),
        None => config.mappings.push(candidate.clone()),
    }
    crate::workspace::Workspace::new(config)?;
    Ok(Json(c.engine.what_if_mapping(&candidate).await?))
}

#[utoipa::path(post, path = "/api/mappings/preview", request_body = PreviewRequest,
    responses((status = 200, body = PreviewResponse), (status = 404, description = "no such object")), security(("token" = [])))]
pub(super) async fn preview_mapping(
    State(c): State<Console>,
    ApiJson(req): ApiJson<PreviewRequest>,
) -> ApiResult<PreviewResponse> {
    let ws = c.engine.workspace();
    let schema = ws.object(&req.mapping.object).ok_or_else(|| {
        ApiError(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("object '{}' not found", req.mapping.object),
        )
    })?;
    for (i, rule) in req.mapping.rules.iter().enumerate() {
        for (j, path) in rule.system.iter().enumerate() {
            crate::path::SystemPath::parse(path).map_err(|e| {
                ApiError(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "invalid_config",
                    format!("rules[{i}].system[{j}]: {e}"),
                )
            })?;
        }
        rule.transform.validate().map_err(|e| {
            ApiError(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_config",
                format!("rules[{i}].transform: {e}"),
            )
        })?;
    }
    let inbound = req.mapping.read(schema, &req.record);
    let writable = req.mapping.writes();
    let read_only: Vec<String> = req.mapping.reads().difference(&writable).cloned().collect();
    let written = req
        .mapping
        .write(&writable, &inbound.values, false)
        .unwrap_or_default();
    Ok(Json(PreviewResponse {
        canonical: inbound.values,
        errors: inbound
            .errors
            .iter()
            .map(|e| serde_json::to_value(e).unwrap_or(Value::Null))
            .collect(),
        written,
        read_only,
    }))
}
