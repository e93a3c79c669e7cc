//! Configuration history in the console: the versions of systems, mappings and ownership (each
//! change with what it changed), and restoring one (admins), audited as a save of that target
//! that names the version it restored.

use super::*;
use crate::config_history::{ConfigVersion, HistoryQuery};

/// Which state of a version to restore.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RestoreQuery {
    /// `true`: undo the change (restore the config before it); default: restore the config
    /// after it.
    #[serde(default)]
    pub undo: bool,
}

impl input::Checked for RestoreQuery {
    fn check(&self) -> Result<(), String> {
        Ok(())
    }
}

impl input::Checked for HistoryQuery {
    fn check(&self) -> Result<(), String> {
        input::page(self.limit, self.offset)
    }
}

#[utoipa::path(get, path = "/api/config/history", params(HistoryQuery),
    responses((status = 200, body = Vec<ConfigVersion>)), security(("token" = [])))]
pub(super) async fn history(
    State(c): State<Console>,
    ApiQuery(q): ApiQuery<HistoryQuery>,
) -> ApiResult<Vec<ConfigVersion>> {
    Ok(Json(c.engine.config_history(&q).await?))
}

#[utoipa::path(get, path = "/api/config/history/{id}", params(("id" = i64, Path)),
    responses((status = 200, body = ConfigVersion), (status = 404, description = "no such version")),
    security(("token" = [])))]
pub(super) async fn version(
    State(c): State<Console>,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<ConfigVersion> {
    Ok(Json(c.engine.config_version(id).await?))
}

#[utoipa::path(post, path = "/api/config/history/{id}/restore", params(("id" = i64, Path), RestoreQuery),
    responses((status = 200, body = WorkspaceConfig), (status = 404, description = "no such version"),
        (status = 422, description = "the version removed its target, or it is no longer valid with the rest of the workspace")),
    security(("token" = [])))]
pub(super) async fn restore(
    State(c): State<Console>,
    who: Principal,
    ApiPath(id): ApiPath<i64>,
    ApiQuery(q): ApiQuery<RestoreQuery>,
) -> ApiResult<WorkspaceConfig> {
    let version = c.engine.config_version(id).await?;
    let (config, restored, current) =
        crate::config_history::restored(&c.engine.workspace().config, &version, q.undo)?;
    let mut entry = config_entry(
        &who,
        version.kind.saved_rule(),
        current,
        Some(restored),
        json!({ "restored_from": id, "undo": q.undo }),
    );
    match version.kind {
        crate::config_history::ConfigKind::System => entry = entry.system(&version.target),
        crate::config_history::ConfigKind::Mapping => {
            if let Some((system, object)) = version.target.split_once('/') {
                entry = entry.system(system);
                entry.object = Some(object.to_owned());
            }
        }
        crate::config_history::ConfigKind::Policies => entry.object = Some(version.target.clone()),
    }
    c.engine.apply_workspace_audited(&config, &[entry]).await?;
    Ok(Json(config))
}
