//! Systems in the console: saving one (validated by its connector, audited), and asking a
//! system, saved or not yet, whether it answers and what its records hold (a connection test,
//! and the fields a mapper offers: paths seen in samples plus what its schema declares).

use super::*;
#[utoipa::path(put, path = "/api/systems/{id}", request_body = SystemConfig,
    params(("id" = String, Path)), responses((status = 200, body = WorkspaceConfig), (status = 422, description = "invalid config")),
    security(("token" = [])))]
pub(super) async fn put_system(
    State(c): State<Console>,
    who: Principal,
    ApiPath(id): ApiPath<String>,
    ApiJson(system): ApiJson<SystemConfig>,
) -> ApiResult<WorkspaceConfig> {
    if system.id != id {
        return Err(ApiError(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_input",
            "the body's id differs from the URL's".into(),
        ));
    }
    crate::connectors::validate(&system).map_err(|e| {
        ApiError(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_config",
            e.to_string(),
        )
    })?;
    let mut config = c.engine.workspace().config.clone();
    let mut system = system;
    if system.writes.is_none() {
        // A new system starts in plan mode: read, linked and planned for, written to only
        // once an admin has seen the plan and enabled it. A saved one keeps its mode.
        system.writes = match config.systems.iter().find(|s| s.id == id) {
            Some(saved) => saved.writes,
            None => Some(crate::model::WritesMode::Plan),
        };
    }
    let after = serde_json::to_value(&system).ok();
    let before = match config.systems.iter_mut().find(|s| s.id == id) {
        Some(s) => Some(std::mem::replace(s, system)),
        None => {
            config.systems.push(system);
            None
        }
    };
    let entry = config_entry(
        &who,
        "system_saved",
        before.as_ref().and_then(|b| serde_json::to_value(b).ok()),
        after,
        json!({ "created": before.is_none() }),
    )
    .system(&id);
    c.engine.apply_workspace_audited(&config, &[entry]).await?;
    // A widened pilot scope: the records it admits now get what the system lacks of them.
    if let Some(before) = before.filter(|b| {
        b.pilot.is_some() && {
            let now = config.systems.iter().find(|s| s.id == id);
            now.is_some_and(|n| n.pilot != b.pilot)
        }
    }) {
        let engine = c.engine.clone();
        let actor = who.actor();
        tokio::spawn(async move {
            if let Err(e) = engine.plan_pilot_widening(&id, &before, &actor).await {
                tracing::error!(system = %id, error = %e, "could not plan the records a widened pilot admits");
            }
        });
    }
    Ok(Json(config))
}

/// The object a test or discovery lists: the one asked for, else the first the system maps,
/// else the first its connector config declares.
pub(super) fn object_to_probe(
    c: &Console,
    system: &SystemConfig,
    asked: Option<String>,
) -> Option<String> {
    if let Some(object) = asked {
        // Only an object the system declares: an unknown name is never sent to the system.
        let mapped = c
            .engine
            .workspace()
            .config
            .mappings
            .iter()
            .any(|m| m.system == system.id && m.object == object);
        let declared = system
            .config
            .get("objects")
            .and_then(Value::as_object)
            .is_some_and(|o| o.contains_key(&object));
        return (mapped || declared).then_some(object);
    }
    c.engine
        .workspace()
        .config
        .mappings
        .iter()
        .find(|m| m.system == system.id)
        .map(|m| m.object.clone())
        .or_else(|| {
            system
                .config
                .get("objects")
                .and_then(Value::as_object)
                .and_then(|o| o.keys().next().cloned())
        })
}

/// Lists the first page of `object`: whether the system answers, and what its records hold.
/// The first page of `object`, tried again (up to three times in all, waiting as the system
/// asks, at most 2 s) while the system says it is busy: a person asking once should not see
/// a transient 503 or 429 that delivery and polling would simply have retried.
pub(crate) async fn first_page(
    connector: &dyn crate::connector::Connector,
    object: &str,
) -> Result<crate::connector::Page, crate::connector::ConnectorError> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        match connector.list_page(object, None).await {
            Err(crate::connector::ConnectorError::Retryable { retry_after, .. }) if attempt < 3 => {
                let wait = retry_after
                    .unwrap_or(std::time::Duration::from_millis(250 * attempt))
                    .min(std::time::Duration::from_secs(2));
                tokio::time::sleep(wait).await;
            }
            other => return other,
        }
    }
}

pub(super) async fn probe(
    connector: &dyn crate::connector::Connector,
    object: &str,
) -> ConnectionTest {
    described(connector, object, first_page(connector, object).await).await
}

/// What a first page (or the failure to read one) says, as a connection test.
async fn described(
    connector: &dyn crate::connector::Connector,
    object: &str,
    page: Result<crate::connector::Page, crate::connector::ConnectorError>,
) -> ConnectionTest {
    match page {
        Ok(page) => {
            let page_count = page.records.len();
            let (total, more_pages) = (page.total, page.next.is_some());
            let samples: Vec<Value> = page
                .records
                .into_iter()
                .take(5)
                .map(|r| Value::Object(r.record))
                .collect();
            // Attributes the system declares that no sample holds yet are listed too, empty.
            let mut fields = field_examples(&samples);
            for path in connector.declared_fields(object).await.unwrap_or_default() {
                fields.entry(path).or_insert(Value::Null);
            }
            ConnectionTest {
                ok: true,
                message: listing_message(object, page_count, samples.len(), total, more_pages),
                object: Some(object.to_owned()),
                sample_count: samples.len(),
                page_count,
                total,
                more_pages,
                fields,
                samples,
            }
        }
        Err(e) => ConnectionTest::failed(Some(object), e.to_string()),
    }
}

/// What a connection test read, in words: how many records the first page held, of how many,
/// and how many are shown.
fn listing_message(
    object: &str,
    page: usize,
    shown: usize,
    total: Option<u64>,
    more_pages: bool,
) -> String {
    let records = |n: usize| {
        if n == 1 {
            "record".to_owned()
        } else {
            "records".to_owned()
        }
    };
    let of = match (total, more_pages) {
        (Some(t), _) => format!(" of {t}"),
        (None, true) => "; more pages follow".into(),
        (None, false) => String::new(),
    };
    let showing = if shown < page {
        format!("; showing the first {shown}")
    } else {
        String::new()
    };
    format!(
        "connected: the first page of {object} held {page} {}{of}{showing}",
        records(page)
    )
}

/// Field paths (JSON-pointer style, `a/b` for nested) seen in sample records, with the first
/// non-null example of each.
pub(super) fn field_examples(samples: &[Value]) -> BTreeMap<String, Value> {
    fn walk(prefix: &str, map: &Map<String, Value>, out: &mut BTreeMap<String, Value>) {
        for (k, v) in map {
            let path = if prefix.is_empty() {
                k.clone()
            } else {
                format!("{prefix}/{k}")
            };
            match v {
                Value::Object(inner) => walk(&path, inner, out),
                other => {
                    let slot = out.entry(path).or_insert(Value::Null);
                    if slot.is_null() {
                        *slot = other.clone();
                    }
                }
            }
        }
    }
    let mut fields = BTreeMap::new();
    for s in samples {
        if let Value::Object(m) = s {
            walk("", m, &mut fields);
        }
    }
    fields
}

pub(super) fn saved_system(c: &Console, id: &str) -> Result<SystemConfig, ApiError> {
    c.engine.workspace().system(id).cloned().ok_or_else(|| {
        ApiError(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("system '{id}' not found"),
        )
    })
}

#[utoipa::path(post, path = "/api/systems/{id}/test", params(("id" = String, Path), ObjectQuery),
    responses((status = 200, body = ConnectionTest)), security(("token" = [])))]
pub(super) async fn test_system(
    State(c): State<Console>,
    ApiPath(id): ApiPath<String>,
    ApiQuery(q): ApiQuery<ObjectQuery>,
) -> ApiResult<ConnectionTest> {
    let system = saved_system(&c, &id)?;
    let Some(object) = object_to_probe(&c, &system, q.object) else {
        return Ok(Json(ConnectionTest::failed(
            None,
            format!("system '{id}' declares no object to list"),
        )));
    };
    let Some(connector) = c.engine.connector(&id) else {
        return Ok(Json(ConnectionTest::failed(
            Some(&object),
            format!("system '{id}' has no connector the console can call"),
        )));
    };
    c.engine.pace(&id).await;
    Ok(Json(probe(connector.as_ref(), &object).await))
}

#[utoipa::path(post, path = "/api/systems/test", request_body = UnsavedSystemTest,
    responses((status = 200, body = ConnectionTest), (status = 422, description = "invalid config")),
    security(("token" = [])))]
pub(super) async fn test_unsaved_system(
    State(c): State<Console>,
    ApiJson(req): ApiJson<UnsavedSystemTest>,
) -> ApiResult<ConnectionTest> {
    let system = req.system;
    if !crate::connectors::testable(&system.connector) {
        return Err(ApiError(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_input",
            format!(
                "systems of the '{}' connector cannot be tested before they are saved",
                system.connector
            ),
        ));
    }
    crate::connectors::validate(&system).map_err(|e| {
        ApiError(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_config",
            e.to_string(),
        )
    })?;
    let Some(object) = object_to_probe(&c, &system, req.object) else {
        return Ok(Json(ConnectionTest::failed(
            None,
            "the config declares no object to list".into(),
        )));
    };
    // A stored secret goes only to the origin it was saved for; one entered again with this
    // request may go where the draft says, for this test only.
    let entered = std::sync::Arc::new(crate::secrets::MemorySecrets::new());
    for (name, value) in req.secrets.iter().flatten() {
        if !value.is_empty() {
            let _ = crate::secrets::SecretStore::set(&*entered, name, &Secret::new(value.clone()));
        }
    }
    let saved = c.engine.secret_origins();
    for (name, origin) in crate::connectors::sent_secrets(&system) {
        if !entered.holds(&name) && !crate::secrets::OriginPolicy::allows(&*saved, &name, &origin) {
            return Ok(Json(ConnectionTest::failed(
                Some(&object),
                format!(
                    "re-enter the secret '{name}' to test against a new address ({origin}): \
                     a stored secret is only sent to the address it was saved for"
                ),
            )));
        }
    }
    let policy = std::sync::Arc::new(crate::secrets::Reentered {
        names: req
            .secrets
            .iter()
            .flatten()
            .filter(|(_, v)| !v.is_empty())
            .map(|(k, _)| k.clone())
            .collect(),
        saved,
    });
    let secrets: SharedSecrets = std::sync::Arc::new(crate::secrets::Layered {
        over: entered,
        under: c.secrets.clone(),
    });
    // Built for this test only: nothing is stored and the running engine is untouched.
    match crate::connectors::build_with(&system, &secrets, policy) {
        Ok(Some(connector)) => Ok(Json(probe(connector.as_ref(), &object).await)),
        Ok(None) => Ok(Json(ConnectionTest::failed(
            Some(&object),
            "this connector cannot be tested before it is saved".into(),
        ))),
        Err(e) => Ok(Json(ConnectionTest::failed(Some(&object), e.to_string()))),
    }
}

#[utoipa::path(get, path = "/api/systems/{id}/discover", params(("id" = String, Path), ObjectQuery),
    responses((status = 200, body = Discovery), (status = 429, description = "the system is rate limiting reads: try again shortly"),
        (status = 502, description = "the system did not answer")),
    security(("token" = [])))]
pub(super) async fn discover(
    State(c): State<Console>,
    ApiPath(id): ApiPath<String>,
    ApiQuery(q): ApiQuery<ObjectQuery>,
) -> ApiResult<Discovery> {
    let system = saved_system(&c, &id)?;
    let object = object_to_probe(&c, &system, q.object).ok_or_else(|| {
        ApiError(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("system '{id}' declares no object"),
        )
    })?;
    let connector = c.engine.connector(&id).ok_or_else(|| {
        ApiError(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("system '{id}' has no connector the console can call"),
        )
    })?;
    c.engine.pace(&id).await;
    let page = first_page(connector.as_ref(), &object).await;
    // The system asks for fewer requests (it answered 429 three times): so does the console.
    if let Err(
        e @ crate::connector::ConnectorError::Retryable {
            status: Some(429), ..
        },
    ) = &page
    {
        return Err(ApiError(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            format!("{e}; read its fields again in a moment"),
        ));
    }
    let test = described(connector.as_ref(), &object, page).await;
    if !test.ok {
        return Err(ApiError(
            StatusCode::BAD_GATEWAY,
            "connector_error",
            test.message,
        ));
    }
    Ok(Json(Discovery {
        object,
        fields: test.fields,
        samples: test.samples,
    }))
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_connection_test_says_what_the_page_held_not_the_sample_size() {
        assert_eq!(
            super::listing_message("employee", 25, 5, Some(55), true),
            "connected: the first page of employee held 25 records of 55; showing the first 5"
        );
        assert_eq!(
            super::listing_message("employee", 25, 5, None, true),
            "connected: the first page of employee held 25 records; more pages follow; showing the first 5"
        );
        assert_eq!(
            super::listing_message("employee", 1, 1, None, false),
            "connected: the first page of employee held 1 record"
        );
    }
}
