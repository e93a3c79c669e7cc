//! Secrets in the OS keychain, by name: whether one is stored, storing one (bound to the address
//! of the saved systems that name it), and removing one. A value never leaves the keychain
//! through the console, and never reaches the audit.

use super::*;
#[utoipa::path(get, path = "/api/secrets/{name}", params(("name" = String, Path)),
    responses((status = 200, body = SecretStatus), (status = 503, description = "the keychain is unavailable")),
    security(("token" = [])))]
pub(super) async fn secret_status(
    State(c): State<Console>,
    ApiPath(name): ApiPath<String>,
) -> ApiResult<SecretStatus> {
    // The value is read only to learn that it exists; it never leaves this function.
    let stored = match c.secrets.get(&name) {
        Ok(_) => true,
        Err(crate::secrets::SecretError::Missing(_)) => false,
        Err(e) => return Err(keychain_unavailable(e)),
    };
    Ok(Json(SecretStatus { name, stored }))
}

#[utoipa::path(delete, path = "/api/secrets/{name}", params(("name" = String, Path)),
    responses((status = 503, description = "the keychain is unavailable"), (status = 204, description = "removed from the OS keychain (or was not there)")),
    security(("token" = [])))]
pub(super) async fn delete_secret(
    State(c): State<Console>,
    who: Principal,
    ApiPath(name): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    c.secrets.delete(&name).map_err(keychain_unavailable)?;
    c.engine
        .secret_origins()
        .rebind(
            c.engine.pool(),
            &name,
            None,
            &crate::store::ts(c.engine.now()),
        )
        .await
        .map_err(|e| ApiError::from(crate::error::EngineError::from(e)))?;
    // The name only: a secret's value never reaches the audit.
    let entry = config_entry(&who, "secret_removed", None, None, json!({ "name": name }));
    c.engine.record_audit(&[entry]).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub(super) fn keychain_unavailable(e: crate::secrets::SecretError) -> ApiError {
    ApiError(
        StatusCode::SERVICE_UNAVAILABLE,
        "keychain_unavailable",
        e.to_string(),
    )
}

#[utoipa::path(put, path = "/api/secrets/{name}", request_body = SecretValue, params(("name" = String, Path)),
    responses((status = 503, description = "the keychain is unavailable"), (status = 204, description = "stored in the OS keychain")), security(("token" = [])))]
pub(super) async fn put_secret(
    State(c): State<Console>,
    who: Principal,
    ApiPath(name): ApiPath<String>,
    ApiJson(body): ApiJson<SecretValue>,
) -> Result<StatusCode, ApiError> {
    if body.value.is_empty() {
        return Err(ApiError(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_input",
            "the secret is empty".into(),
        ));
    }
    c.secrets
        .set(&name, &Secret::new(body.value))
        .map_err(keychain_unavailable)?;
    // A value entered again is for the saved systems that name it now, at their address.
    let origins: std::collections::BTreeSet<String> = c
        .engine
        .workspace()
        .config
        .systems
        .iter()
        .flat_map(crate::connectors::sent_secrets)
        .filter(|(n, _)| *n == name)
        .map(|(_, o)| o)
        .collect();
    let origin = (origins.len() == 1)
        .then(|| origins.into_iter().next())
        .flatten();
    c.engine
        .secret_origins()
        .rebind(
            c.engine.pool(),
            &name,
            origin.as_deref(),
            &crate::store::ts(c.engine.now()),
        )
        .await
        .map_err(|e| ApiError::from(crate::error::EngineError::from(e)))?;
    // The name only: a secret's value never reaches the audit.
    let entry = config_entry(&who, "secret_stored", None, None, json!({ "name": name }));
    c.engine.record_audit(&[entry]).await?;
    Ok(StatusCode::NO_CONTENT)
}
