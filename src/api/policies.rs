//! Ownership in the console: saving an object's field policies (confirmed when it would
//! remove every rule), and trying a draft first: what it would decide now of the items the
//! current rules hold for a person, per field and system with samples. Saving with
//! `?redecide=true` decides exactly those, each as a resolution by the admin who saved.

use super::*;
use crate::policy_whatif::PolicyWhatIf;

/// Saving an object's policies.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PolicySaveQuery {
    /// Carry out a change that removes every rule.
    #[serde(default)]
    pub confirm: bool,
    /// Also decide what the saved rules decide of the conflicts and quarantined changes held
    /// for a person on the fields they change (as `POST /api/policies/{object}/what-if` shows).
    #[serde(default)]
    pub redecide: bool,
}

impl super::input::Checked for PolicySaveQuery {
    fn check(&self) -> Result<(), String> {
        Ok(())
    }
}

#[utoipa::path(post, path = "/api/policies/{object}/what-if", request_body = Vec<FieldPolicy>, params(("object" = String, Path)),
    responses((status = 200, body = PolicyWhatIf), (status = 404, description = "no such object"),
        (status = 422, description = "invalid policies")),
    security(("token" = [])))]
pub(super) async fn what_if_policies(
    State(c): State<Console>,
    ApiPath(object): ApiPath<String>,
    ApiJson(draft): ApiJson<Vec<FieldPolicy>>,
) -> ApiResult<PolicyWhatIf> {
    let mut config = c.engine.workspace().config.clone();
    if !config.objects.iter().any(|o| o.name == object) {
        return Err(ApiError(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("object '{object}' not found"),
        ));
    }
    // The draft must be valid policies of the workspace it would be saved into.
    match config.policies.iter_mut().find(|p| p.object == object) {
        Some(p) => p.fields = draft.clone(),
        None => config.policies.push(ObjectPolicies {
            object: object.clone(),
            fields: draft.clone(),
        }),
    }
    crate::workspace::Workspace::new(config)?;
    Ok(Json(c.engine.what_if_policies(&object, &draft).await?))
}

#[utoipa::path(put, path = "/api/policies/{object}", request_body = Vec<FieldPolicy>, params(("object" = String, Path), PolicySaveQuery),
    responses((status = 200, body = WorkspaceConfig, headers(("X-Decided" = i64, description = "Held items the saved rules decided (with `redecide`)."))),
              (status = 409, body = admin::ConfirmationRequired, description = "would remove every ownership rule of the object: confirm with ?confirm=true"),
              (status = 422, description = "invalid config")),
    security(("token" = [])))]
pub(super) async fn put_policies(
    State(c): State<Console>,
    who: Principal,
    ApiPath(object): ApiPath<String>,
    ApiQuery(q): ApiQuery<PolicySaveQuery>,
    ApiJson(fields): ApiJson<Vec<FieldPolicy>>,
) -> Result<([(&'static str, String); 1], Json<WorkspaceConfig>), Refusal> {
    let before_rules = c.engine.workspace().policies_of(&object);
    let mut config = c.engine.workspace().config.clone();
    let after = serde_json::to_value(&fields).ok();
    let emptying = fields.is_empty();
    let before = match config.policies.iter_mut().find(|p| p.object == object) {
        Some(p) => Some(std::mem::replace(&mut p.fields, fields)),
        None => {
            config.policies.push(ObjectPolicies {
                object: object.clone(),
                fields,
            });
            None
        }
    };
    let removal = before
        .as_ref()
        .filter(|b| emptying && !b.is_empty())
        .map(|b| Removal {
            kind: "policies".into(),
            object: Some(object.clone()),
            count: b.len(),
            fields: b.iter().map(|f| f.field.clone()).collect(),
            ..Removal::default()
        });
    if let Some(removal) = &removal {
        require_confirmation(
            q.confirm,
            format!(
                "this removes the ownership rules of all {} {object} fields ({})",
                removal.count,
                removal.fields.join(", ")
            ),
            removal,
        )?;
    }
    let entry = config_entry(
        &who,
        "policies_saved",
        before.as_ref().and_then(|b| serde_json::to_value(b).ok()),
        after,
        json!({ "confirmed": removal.is_some() && q.confirm, "removes": removal }),
    );
    let object_name = object.clone();
    let entry = AuditEntry {
        object: Some(object),
        ..entry
    };
    c.engine.apply_workspace_audited(&config, &[entry]).await?;
    let mut decided = 0;
    if q.redecide {
        let (done, failed) = c
            .engine
            .redecide_held(&object_name, &before_rules, &who.actor())
            .await?;
        decided = done.decided.len() - failed.len();
        for reason in &failed {
            tracing::warn!(object = %object_name, %reason, "a held item the saved rules decide was not resolved");
        }
    }
    Ok(([("x-decided", decided.to_string())], Json(config)))
}
